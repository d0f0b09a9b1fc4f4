"""``costmodel discover``: a defensible closed form from measurements when no mechanism is known.

Not every measured quantity has a mechanistic model (conversion cycles on a new platform,
boot time against guest size, a kernel patch's effect on a counter). :func:`discover` finds
one in the performance-model normal form (PMNF) and the domain's own shapes:

* :mod:`~costmodel.discover.readers`: CSV/Parquet with any numeric columns, Extra-P's text
  and JSON Lines files;
* :mod:`~costmodel.discover.space`: the terms (products of ``x^i · log2(x)^j``, each term with
  its own exponents; ``⌈x/c⌉``, clamps, a step) and how they are written;
* :mod:`~costmodel.discover.slices`: which shapes each input needs, read from grid slices;
* :mod:`~costmodel.discover.search`: repeats → means, relative or absolute errors, the
  search and the cross-validated, penalised choice;
* :mod:`~costmodel.discover.final`, :mod:`~costmodel.discover.model`: the final fit,
  intervals, predictions, warnings and the model file;
* :mod:`~costmodel.discover.card`: the formula card of a discovered model.

``docs/discover.md`` describes the method and its limits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from costmodel.discover.model import Discovered, Prediction, load
from costmodel.discover.readers import Measurements, from_frame, read
from costmodel.errors import Argument, InputError

__all__ = ["discover", "Discovered", "Prediction", "Measurements", "load", "read", "from_frame", "MAX_TERMS"]

#: Most terms (besides the constant) a formula may have.
MAX_TERMS = 4


def discover(data: str | os.PathLike | Measurements, target: str | None = None, inputs=None,
             at: Iterable = (), max_terms: int = 3, errors: str = "auto", top: int = 5,
             domain: bool = True) -> Discovered:
    """Find the formula of ``target`` against ``inputs`` that the measurements support.

    Parameters
    ----------
    data : path or Measurements
        A CSV/Parquet file (any numeric columns), an Extra-P text file or a JSON Lines file
        (``target`` is then ``REGION/METRIC``), or measurements already read.
    target : str
        The measured column (or Extra-P series).
    inputs : list of str or str, optional
        Up to four input columns; default every other numeric column that varies.
    at : iterable of str or mapping
        Points to predict at, ``"p=512,q=8"`` or ``{"p": 512, "q": 8}``; each gets a value,
        a 95 % prediction interval and the inputs it extrapolates in.
    max_terms : int
        Most terms besides the constant (1 to :data:`MAX_TERMS`).
    errors : str
        ``auto`` (relative when the data span a factor of 10 or more), ``relative`` or ``absolute``.
    top : int
        Runner-up formulas to report.
    domain : bool
        Include the domain shapes (ceil, min/max clamps, step) in the search.
    """
    from costmodel.discover.final import extrapolation_warnings, finish, parse_at
    from costmodel.discover.search import Search, aggregate, choose_errors

    if isinstance(max_terms, bool) or not isinstance(max_terms, int) or not 1 <= max_terms <= MAX_TERMS:
        raise InputError(Argument("max_terms"), max_terms, f"a whole number from 1 to {MAX_TERMS}")
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise InputError(Argument("top"), top, "a whole number ≥ 0")
    if isinstance(data, Measurements):
        measurements = data
    else:
        if target is None:
            raise InputError(Argument("target"), None, "the measured column (or REGION/METRIC of an Extra-P file)")
        measurements = read(data, target, inputs)
    points = [parse_at(a, measurements.inputs) for a in ([at] if isinstance(at, (str, dict)) else at)]
    aggregated = aggregate(measurements.x, measurements.y)
    if len(aggregated.mean) < 3:
        raise InputError(measurements.source, f"{len(aggregated.mean)} distinct configuration"
                         f"{'s' if len(aggregated.mean) != 1 else ''} of {', '.join(measurements.inputs)}",
                         "at least 3 (the smallest formula has one coefficient, and leaving one configuration "
                         "out must leave two)")
    mode = choose_errors(aggregated, errors)
    start = time.perf_counter()
    search = Search(aggregated, mode, max_terms, domain)
    ranked = search.select(search.run())
    if not ranked:
        raise InputError(measurements.source, f"{len(aggregated.mean)} configurations no formula could be fitted to",
                         "configurations that determine at least a one-term formula")
    model = finish(measurements, aggregated, search, ranked, top, time.perf_counter() - start)
    if points:
        model.predictions = model.predict(points)
        model.warnings += extrapolation_warnings(model)
    return model
