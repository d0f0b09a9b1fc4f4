"""Checks of large text columns in Arrow, for :mod:`costmodel.data.validate`.

A file read in bulk (pyarrow's CSV reader, or Parquet) keeps its text in pyarrow; checking
a million cells one Python object at a time costs seconds. These functions give the
validation's results for such columns from Arrow's compute functions, or None where the
cell-by-cell rules must decide (and word the errors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def stored_by_arrow(series: pd.Series) -> bool:
    """Whether ``series`` is pandas text that pyarrow stores."""
    dtype = series.dtype
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def parse(series: pd.Series, kind: str, maximum: float):
    """``_parse_series`` (:mod:`costmodel.data.validate`) of a pyarrow-stored str column of
    ``text`` or ``measure`` cells, without a Python object per cell; None (the cell-by-cell
    rules decide) for any other column, or when a cell is not plainly what the rules accept.

    - text: blank cells (``v.strip() == ""``) become unknown, every other cell is kept as
      written; a blank cell is empty or starts with a character outside ``!``–``~`` (ASCII's
      printable non-blanks), and those few are confirmed in Python; a column of blanks only
      is left to the cell rules;
    - measure: the column parsed by Arrow (correctly rounded, as ``float(text)``) when every
      cell is a finite number within ±``maximum``, or empty; a cell Arrow does not read, NaN, an
      infinity or an out-of-range value goes to the cell rules (which word the error)."""
    if kind not in ("text", "measure") or not stored_by_arrow(series):
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    column = pa.array(series.array)
    if kind == "text":
        first = pc.utf8_slice_codeunits(column, 0, 1)  # "" when empty; compared as bytes
        candidate = pc.fill_null(pc.or_(pc.less(first, "!"), pc.greater(first, "~")), True)
        blank = np.asarray(candidate.to_numpy(zero_copy_only=False), dtype=bool)
        proposed = np.flatnonzero(blank)
        if len(proposed):
            blank[proposed] = [v is None or not v or v.isspace() for v in column.take(proposed).to_pylist()]
            if blank.all():
                return None  # no text at all: the cell rules leave the column as objects
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            column = pc.if_else(pa.array(blank), pa.scalar(None, column.type), column)
        return series.dtype.__from_arrow__(column), np.zeros(len(series), dtype=bool)
    try:
        numbers = pc.cast(pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    values = numbers.to_numpy(zero_copy_only=False).astype(float)  # unknown (null): NaN
    known = values[~np.isnan(values)]
    if numbers.null_count + len(known) != len(values) or not np.all(np.abs(known) <= maximum):
        return None  # a NaN or infinity written out, or a value out of range
    return values, np.zeros(len(series), dtype=bool)  # floats, NaN unknown: as _typed makes them


def repeats(series: pd.Series, known: int) -> bool:
    """Whether two known cells of ``series`` hold the same value (``known``: how many are
    known); counted in Arrow when pyarrow stores the column, else by pandas."""
    if not stored_by_arrow(series):
        return bool(series[series.notna().to_numpy()].duplicated().any())
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.count_distinct(pa.array(series.array), mode="only_valid").as_py() != known
