"""Uncertainty beside evaluation: derivatives, prediction intervals and extrapolation flags.

A calibration fitted to measured runs (:mod:`costmodel.fitting`) carries, per target, a
:class:`~costmodel.calibration.values.FitRecord`: the covariance of the fitted
coefficients, the residual scale and the measured input ranges. :func:`annotate` turns
that into a 95 % prediction interval for each evaluated configuration (delta method plus
residual variance) and names every input outside the measured range.

:func:`jacobian` is the one finite-difference derivative of the project: fitting uses it
for standard errors and identifiability, :func:`annotate` for the delta method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from costmodel.compiled import CONFIG_COLUMNS
from costmodel.model.variables import QUANTITIES

#: Inputs whose fitted range is recorded for extrapolation checks.
RANGE_INPUTS = CONFIG_COLUMNS
#: Relative step of the central differences (of a value, or of its typical size at 0).
STEP = 1e-6


def t_quantile(probability: float, dof: float) -> float:
    """The ``probability`` quantile of Student's t with ``dof`` degrees of freedom: the value
    ``scipy.stats.t.ppf`` gives (its ``_ppf`` is ``scipy.special.stdtrit``), without importing
    ``scipy.stats``; NaN where ``t.ppf`` gives NaN (no positive ``dof``, or ``probability``
    outside [0, 1]). [1]"""
    from scipy import special

    if not (dof > 0) or not (0 <= probability <= 1):
        return float("nan")
    if probability in (0, 1):  # the support's ends, as t.ppf gives them
        return math.inf if probability == 1 else -math.inf
    return float(special.stdtrit(dof, probability))


def typical_size(name: str, value: float) -> float:
    """The size a step in coefficient ``name`` is relative to: the value itself, else the
    registry default (names outside the registry, such as a discovered formula's, have
    none), else 1. [unit of the coefficient]"""
    quantity = QUANTITIES.get(name)
    default = (quantity.default if quantity is not None else None) or 0.0
    return abs(value) if value else (abs(default) if default else 1.0)


def jacobian(model: Callable[[np.ndarray], np.ndarray], names: Sequence[str], values: np.ndarray,
             many: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """d model / d value by central differences, one column per name.

    ``model`` maps the values of ``names`` to predictions (one per row). The step is
    :data:`STEP` times the value's :func:`typical_size`; a column that comes out exactly zero
    is retried with steps 10³ and 10⁶ times larger, so a coefficient at 0 (an additive
    count) is not mistaken for one without effect. ``many``, when given, maps several
    points (rows) to their predictions (rows) in one call, as ``model`` would one by one:
    the steps of every column are then evaluated together.
    """
    values = np.asarray(values, dtype=float)
    base_steps = [STEP * max(abs(values[j]), typical_size(name, values[j])) for j, name in enumerate(names)]
    if many is None:
        columns = []
        for j in range(len(names)):
            for factor in (1.0, 1e3, 1e6):
                column = _difference(model, values, j, base_steps[j] * factor)
                if np.any(column != 0):
                    break
            columns.append(column)
    else:
        columns = [None] * len(names)
        pending = list(range(len(names)))
        for factor in (1.0, 1e3, 1e6):
            if not pending:
                break
            steps = [base_steps[j] * factor for j in pending]
            points = []
            for j, step in zip(pending, steps):
                up, down = values.copy(), values.copy()
                up[j] += step
                down[j] -= step
                points += [up, down]
            at = np.asarray(many(np.array(points)), dtype=float)
            for i, (j, step) in enumerate(zip(pending, steps)):
                columns[j] = (at[2 * i] - at[2 * i + 1]) / (2 * step)
            pending = [j for j in pending if not np.any(columns[j] != 0)]
    if columns:
        return np.column_stack(columns)
    return np.zeros((len(np.atleast_1d(model(values))), 0))


def _difference(model, values: np.ndarray, j: int, step: float) -> np.ndarray:
    up, down = values.copy(), values.copy()
    up[j] += step
    down[j] -= step
    return (np.asarray(model(up), dtype=float) - np.asarray(model(down), dtype=float)) / (2 * step)


def extrapolation(frame: pd.DataFrame, ranges: Mapping) -> pd.Series:
    """Comma-separated inputs of each row outside the fitted ``ranges`` ("" when none)."""
    flags = [[] for _ in range(len(frame))]
    for name in RANGE_INPUTS:
        if name not in ranges or name not in frame:
            continue
        allowed = ranges[name]
        values = frame[name].to_numpy()
        if name in ("hugepage_bytes", "platform"):
            outside = ~np.isin(np.asarray(values).astype(str if name == "platform" else float),
                               np.asarray(allowed, dtype=str if name == "platform" else float))
        else:
            low, high = allowed
            numbers = np.asarray(values, dtype=float)
            outside = (numbers < low * (1 - 1e-12)) | (numbers > high * (1 + 1e-12))
        for i in np.flatnonzero(outside):
            flags[i].append(name)
    return pd.Series([",".join(f) for f in flags], index=frame.index, dtype=object)


def annotate(frame: pd.DataFrame, calibration) -> pd.DataFrame:
    """Add prediction intervals and an extrapolation flag to an evaluated frame.

    For every target fitted in ``calibration`` (its :attr:`~Calibration.fits`) that is a
    column of ``frame`` (as :func:`costmodel.evaluate.evaluate` returns it), adds
    ``<target>_pi_low`` and ``<target>_pi_high``: the prediction interval for a new run at
    that configuration (coefficient covariance by the delta method plus the residual
    variance, t quantile with the fit's degrees of freedom, low end cut at 0). Adds
    ``extrapolation``: the inputs outside the range of the fitted runs, comma-separated
    ("" when inside). A calibration without fits returns the frame unchanged.
    """
    from costmodel.compiled import compile_outputs, configurations

    if not calibration.fits:
        return frame
    out = frame.copy()
    flags = pd.Series([""] * len(out), index=out.index, dtype=object)
    scenario_column = out["scenario"] if "scenario" in out else pd.Series("status_quo", index=out.index)
    platform_column = out["platform"].astype(str).to_numpy() if "platform" in out else np.full(len(out), "snp")
    for record in calibration.fits.values():
        target = record.target
        # a platform's fit speaks for that platform's rows only
        applies = np.ones(len(out), bool) if record.platform == "all" else platform_column == record.platform
        outside = extrapolation(out, record.input_ranges).where(applies, "")
        flags = pd.Series([",".join(dict.fromkeys([*a.split(","), *b.split(",")]).keys() - {""})
                           if (a or b) else "" for a, b in zip(flags, outside)], index=out.index, dtype=object)
        if target not in out:
            continue
        low = out[f"{target}_pi_low"].to_numpy(copy=True) if f"{target}_pi_low" in out else np.full(len(out), np.nan)
        high = out[f"{target}_pi_high"].to_numpy(copy=True) if f"{target}_pi_high" in out else np.full(len(out), np.nan)
        free = list(record.free)
        covariance = np.asarray(record.covariance, dtype=float).reshape(len(free), len(free))
        t = t_quantile(0.5 + record.level / 2, record.dof)
        for scenario in pd.unique(scenario_column):
            mask = (scenario_column == scenario).to_numpy() & applies
            if not mask.any():
                continue
            # the evaluated frame holds the devices resolved: they stand for the virtqueues
            shape = [c for c in RANGE_INPUTS if c in out and not (c == "virtqueues" and "devices" in out)]
            columns = {c: out.loc[mask, c].to_numpy() for c in shape}
            if "swiotlb_bytes" in out:
                columns["swiotlb_bytes"] = out.loc[mask, "swiotlb_bytes"].to_numpy(dtype=float)
            columns["platform"] = np.asarray(columns["platform"]).astype(str)
            arrays = configurations(columns)
            compiled = compile_outputs((target,), calibration.form, str(scenario))
            values = dict(calibration.values_by_row(arrays["is_snp"]))
            fitted = calibration.values_for("tdx" if record.platform == "tdx" else "snp")
            values.update({n: fitted[n] for n in free})  # the set this fit wrote

            def model(free_values, arrays=arrays, compiled=compiled, values=values):
                return compiled(arrays, {**values, **dict(zip(free, map(float, free_values)))})[target]

            center = np.asarray(model([values[n] for n in free]), dtype=float)
            g = jacobian(model, free, np.array([values[n] for n in free]))
            variance = np.einsum("ij,jk,ik->i", g, covariance, g) if free else np.zeros(len(center))
            noise = record.residual_scale * (np.abs(center) if record.errors == "relative" else 1.0)
            half = t * np.sqrt(variance + noise**2)
            low[mask] = np.maximum(center - half, 0.0)
            high[mask] = center + half
        if f"{target}_pi_low" in out:  # a second platform's fit of the same target
            out[f"{target}_pi_low"], out[f"{target}_pi_high"] = low, high
            continue
        position = out.columns.get_loc(target) + 1
        out.insert(position, f"{target}_pi_low", low)
        out.insert(position + 1, f"{target}_pi_high", high)
    out["extrapolation"] = [",".join(n for n in RANGE_INPUTS if n in f.split(",")) for f in flags]
    return out
