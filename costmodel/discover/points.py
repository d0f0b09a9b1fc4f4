"""Measurements grouped by configuration, and the errors they are judged in.

Measurements at one configuration of the inputs are one point: their mean, their spread
and their count. Where every mean has one sign and they span a factor of
:data:`RELATIVE_SPAN` or more, errors are relative (a 5 % miss at 10 counts as much as
at 10⁶); otherwise absolute, against the data's RMS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.errors import Argument, InputError

#: Errors are relative when the means span at least this factor (and share one sign).
RELATIVE_SPAN = 10.0


@dataclass
class Points:
    """Distinct configurations of the inputs and what was measured at each."""

    x: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    count: np.ndarray
    #: index of each measurement's point
    of_row: np.ndarray

    @property
    def repeated(self) -> bool:
        return bool(np.any(self.count > 1))


def aggregate(x: np.ndarray, y: np.ndarray) -> Points:
    """Group measurements by configuration: mean, sample standard deviation, count."""
    unique, inverse, count = np.unique(x, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    mean = np.bincount(inverse, weights=y) / count
    squares = np.bincount(inverse, weights=(y - mean[inverse]) ** 2)
    sd = np.sqrt(np.where(count > 1, squares / np.maximum(count - 1, 1), 0.0))
    return Points(unique, mean, sd, count, inverse)


def choose_errors(points: Points, errors: str = "auto") -> str:
    """``relative`` or ``absolute`` (``auto``: relative when the means span orders of magnitude)."""
    if errors not in ("auto", "relative", "absolute"):
        raise InputError(Argument("errors"), errors, "auto, relative or absolute")
    mean = points.mean
    one_sign = bool(np.all(mean > 0) or np.all(mean < 0))
    if errors == "relative" and not one_sign:
        raise InputError(Argument("errors"), "relative", "absolute or auto: the target is zero or changes sign")
    if errors != "auto":
        return errors
    return "relative" if one_sign and np.max(np.abs(mean)) >= RELATIVE_SPAN * np.min(np.abs(mean)) else "absolute"


def scales(points: Points, errors: str) -> np.ndarray:
    """What an error is measured against, per point: the mean (relative) or the data's RMS."""
    if errors == "relative":
        return np.abs(points.mean)
    rms = float(np.sqrt(np.mean(points.mean**2)))
    return np.full(len(points.mean), rms if rms > 0 else 1.0)
