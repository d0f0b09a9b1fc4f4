"""Validation of measured runs in two pandera stages built from the contract.

1. *form*: every cell parses (sizes such as ``16GiB``, whole counts, non-negative numbers,
   a known platform, an ISO date); failure cases keep the text the user wrote;
2. *values*: the parsed frame meets the ranges and enumerations, run ids are unique, no
   row is a copy of another, every row measured something.

Errors name the file, the line as an editor counts it (CSV; ``row`` for Parquet and
in-memory frames), the column, what was found and what was expected.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd

from costmodel import errors, parse
from costmodel.data import arrow
from costmodel.data.contract import REQUIRED, TARGETS, DataError, Said, columns
from costmodel.errors import InputError


def _blank(value) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


#: Largest measured value a cell may hold: 1e18 cycles is ten years of a 3 GHz core, far past
#: any boot; beyond it sums and fits overflow. [1, cycles]
MAX_MEASURE = 1e18


def _measure(value, where: str) -> float:
    expected = f"a number from 0 to {MAX_MEASURE:.0e} (empty when unknown)"
    if isinstance(value, bool):
        raise InputError(where, value, expected)
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            raise InputError(where, text, expected) from None
        if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise InputError(where, text, expected)
    if not math.isfinite(number) or abs(number) > MAX_MEASURE:
        raise InputError(where, value, expected)
    return number


def _date(value, where: str) -> str:
    text = str(value).strip()
    try:
        if len(text) == 10:
            _dt.date.fromisoformat(text)
        else:
            _dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(where, text, "an ISO 8601 date such as 2025-07-11 (empty when unknown)") from None
    return text


def _text(value, where: str) -> str:
    return str(value)


def _devices(value, where: str) -> str:
    """A ``;``-separated list of ``--device`` specs, each checked; kept as written."""
    text = str(value).strip()
    for spec in text.split(";"):
        if spec.strip():
            parse.device(spec.strip(), where)
    return text


#: x-parse kind → (parser(value, where), what the cell must look like)
_PARSERS: dict[str, tuple[Callable, str]] = {
    "platform": (parse.platform, "one of snp, tdx (AMD SEV-SNP, Intel TDX)"),
    "size": (parse.size, parse.SIZE_FORMS),
    "hugepage": (parse.hugepage, "one of 4K, 2M, 1G (4K means no hugepages) or their bytes"),
    "count": (lambda v, w: parse.count(v, w, minimum=0), "a whole number (empty when unknown)"),
    "measure": (_measure, f"a number from 0 to {MAX_MEASURE:.0e} (empty when unknown)"),
    "date": (_date, "an ISO 8601 date such as 2025-07-11 (empty when unknown)"),
    "text": (_text, "text"),
    "devices": (_devices, "device specs separated by ';', each KIND[:queues=N,size=N] (empty: QEMU's usual set)"),
    "boolean": (parse.boolean, "true or false (also yes/no, on/off, 1/0; empty: the default)"),
}


def _parse_series(series: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse every cell, each distinct value once; returns values (None when blank) and a 'bad' mask.

    A large text column that pyarrow stores (a file read in bulk) is checked in Arrow
    (:func:`costmodel.data.arrow.parse`): text values come back as that column with blanks
    made unknown, measured values as floats with NaN for unknown (what :func:`_typed` makes
    of either)."""
    fast = arrow.parse(series, kind, MAX_MEASURE) if len(series) >= ARROW_MIN_ROWS else None
    if fast is not None:
        return fast
    parse = _PARSERS[kind][0]
    if kind == "measure" and series.dtype.kind in "iuf":  # numbers already: check them vectorised
        numbers = series.to_numpy(dtype=float)
        values = np.where(np.isnan(numbers), None, numbers).astype(object)
        return values, np.isinf(numbers) | (np.abs(numbers) > MAX_MEASURE)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    parsed = np.empty(len(uniques) + 1, dtype=object)  # the last slot is for NA (code -1)
    failed = np.zeros(len(uniques) + 1, dtype=bool)
    values = uniques.tolist() if hasattr(uniques, "tolist") else list(uniques)
    text_dtype = pd.api.types.is_string_dtype(uniques.dtype) and uniques.dtype != object  # every value a str
    if not _parse_text_cells(values, kind, parsed, failed, text_dtype):
        for i, value in enumerate(values):
            if _blank(value):
                continue
            try:
                parsed[i] = parse(value, "cell")
            except InputError:
                failed[i] = True
    return parsed[codes], failed[codes]


#: Text columns from this many runs on are checked in Arrow when pyarrow stores them. [rows]
ARROW_MIN_ROWS = 1 << 16


def _parse_text_cells(values: list, kind: str, parsed: np.ndarray, failed: np.ndarray, text_dtype: bool = False) -> bool:
    """Text and measured numbers written as text (a large CSV: a distinct value per run),
    parsed in bulk with the per-cell rules' results; False (nothing filled) when a value
    is not text or a number does not parse, so that the cell-by-cell parse finds it.
    ``text_dtype``: the values come from a string column (every one a str)."""
    if kind not in ("text", "measure") or len(values) < 64:
        return False
    if not text_dtype and not all(type(v) is str for v in values):
        return False
    blank = _blank_texts(values)
    cells = np.array(values, dtype=object)
    if kind == "text":  # str(value) of a str is itself
        parsed[:-1] = cells
        parsed[:-1][blank] = None
        return True
    try:
        numbers = cells[~blank].astype(float)  # float(text), as _measure reads a cell
    except (TypeError, ValueError):
        return False
    slots = np.flatnonzero(~blank)
    bad = ~np.isfinite(numbers) | (np.abs(numbers) > MAX_MEASURE)
    parsed[slots] = numbers.tolist()
    parsed[slots[bad]] = None  # as a cell that raised
    failed[slots] = bad
    return True


def _blank_texts(values: list) -> np.ndarray:
    """``v.strip() == ""`` for each str: NumPy's string functions (same whitespace as Python's)
    propose, Python confirms the few proposed."""
    string_dtype = getattr(np.dtypes, "StringDType", None)
    if string_dtype is None:
        return np.array([not v or v.isspace() for v in values], dtype=bool)
    marks = np.array(values, dtype=string_dtype())
    blank = (np.strings.str_len(marks) == 0) | np.strings.isspace(marks)
    proposed = np.flatnonzero(blank)
    blank[proposed] = [not values[i] or values[i].isspace() for i in proposed]
    return blank


def _pandera():
    import pandera.pandas as pa

    return pa


def _form_schema(parsed: dict[str, tuple[np.ndarray, np.ndarray]], index: pd.Index):
    """Stage 1: every cell of a known column parses (``parsed``: column → values, bad mask)."""
    pa = _pandera()
    spec = {}
    for name, column in columns().items():
        kind = column["x-parse"]
        required_cell = not (isinstance(column["type"], list) and "null" in column["type"])
        expected = _PARSERS[kind][1] if not required_cell else _PARSERS[kind][1] + " (required)"

        def parses(series, name=name, required_cell=required_cell):
            values, bad = parsed[name]
            if required_cell:
                bad = bad | np.equal(values, None)
            return pd.Series(~bad, index=index).reindex(series.index)

        spec[name] = pa.Column(None, checks=[pa.Check(parses, error=expected, ignore_na=False)], nullable=True,
                               required=name in REQUIRED, coerce=False)
    return pa.DataFrameSchema(spec, strict=False)


@lru_cache(maxsize=1)
def _value_schema():
    """Stage 2: ranges, enumerations and frame-wide rules on the parsed frame."""
    pa = _pandera()
    spec = {}
    for name, column in columns().items():
        checks = []
        if "enum" in column:
            shown = ", ".join(str(v) for v in column["enum"])
            if column["x-parse"] == "hugepage":
                shown = "4K, 2M or 1G (4096, 2097152, 1073741824 bytes)"
            checks.append(pa.Check.isin(column["enum"], error=f"one of {shown}"))
        if "minimum" in column:
            checks.append(pa.Check.ge(column["minimum"], error=f"a value ≥ {column['minimum']}"
                                      + (" (empty when unknown)" if "null" in column["type"] else "")))
        spec[name] = pa.Column(None, checks=checks, nullable=True, required=False)

    def unique_ids(frame):
        if "run_id" not in frame:
            return pd.Series(True, index=frame.index)
        ids = frame["run_id"]
        return ~(ids.notna() & ids.duplicated(keep="first"))

    def no_copies(frame):
        return ~frame.duplicated(keep="first")

    def measured_something(frame):
        present = [t for t in TARGETS if t in frame]
        if not present:
            return pd.Series(False, index=frame.index)
        return frame[present].notna().any(axis=1)

    checks = [
        pa.Check(unique_ids, error="run_id: a run id not used on an earlier line"),
        pa.Check(no_copies, error="a run not already in the file (a repeated measurement differs in "
                                  "run_id, date or measured values)"),
        pa.Check(measured_something, error="at least one measured value of " + ", ".join(TARGETS)),
    ]
    return pa.DataFrameSchema(spec, checks=checks, strict=False)


def _place(index_value, index_name: str | None) -> str:
    if index_name == "line":
        return f"line {index_value}"
    return f"row {index_value}"


def _translate(error, frame: pd.DataFrame, where: str, stage: str) -> DataError:
    """Turn pandera's failure cases into a DataError naming file, line and column."""
    cases = error.failure_cases
    problems = []
    index_name = frame.index.name
    known = list(columns())
    seen = set()
    for case in cases.itertuples(index=False):
        check = str(case.check)
        frame_level = case.schema_context == "DataFrameSchema"
        column = case.column if isinstance(case.column, str) and not frame_level else None
        if frame_level and check != "column_in_dataframe":
            if (check, case.index) in seen:
                continue  # pandera repeats a frame-level failure once per column
            seen.add((check, case.index))
        if check == "column_in_dataframe":
            missing = str(case.failure_case)
            hint = errors.closest(missing, [c for c in frame.columns if c not in known] or list(frame.columns), 1)
            problems.append((f"{where}", Said(f"no column {missing!r} (columns: {', '.join(map(str, frame.columns))})"),
                             f"the columns {', '.join(REQUIRED)}" + (f"; is {hint[0]!r} meant to be {missing!r}?" if hint else "")))
            continue
        if case.index is None or (isinstance(case.index, float) and math.isnan(case.index)):
            continue  # dtype or frame-level summaries carry no row
        place = _place(case.index, index_name)
        if column is None:  # frame-level check
            if check.startswith("run_id:"):
                value = frame.loc[case.index, "run_id"]
                first = frame.index[(frame["run_id"] == value).to_numpy()][0]
                problems.append((f"{where}, {place}, column run_id", Said(f"{value!r} (also on {_place(first, index_name)})"),
                                 check.split(": ", 1)[1]))
            elif check.startswith("a run not already"):
                hashes = pd.util.hash_pandas_object(frame.astype(str), index=False)
                first = hashes.index[(hashes == hashes.loc[case.index]).to_numpy()][0]
                problems.append((f"{where}, {place}", Said(f"a copy of {_place(first, index_name)}"), check))
            else:
                problems.append((f"{where}, {place}", Said("no measured value"), check))
            continue
        found = case.failure_case
        if stage == "form":
            found = frame.loc[case.index, column] if case.index in frame.index else found
            if _blank(found):
                found = Said("an empty cell")
        expected = check
        if column == "platform" and not _blank(found):
            expected = "one of " + ", ".join(errors.closest(str(found).strip().lower(), parse.PLATFORMS, 2))
            expected += " (snp: AMD SEV-SNP, tdx: Intel TDX)"
        problems.append((f"{where}, {place}, column {column}", found.item() if hasattr(found, "item") else found, expected))
    # file-level problems first, then in file order
    problems.sort(key=lambda p: (", line " in p[0] or ", row " in p[0], _order(p[0])))
    if not problems:
        return DataError(where, Said("data the schema rejected"), "data meeting docs/data-schema.md")
    first = problems[0]
    return DataError(*first, problems=problems)


def _order(where: str) -> int:
    for token in (", line ", ", row "):
        if token in where:
            rest = where.split(token, 1)[1].split(",", 1)[0]
            try:
                return int(rest)
            except ValueError:
                return 0
    return 0


def _typed(values: np.ndarray, kind: str, column: dict):
    if not isinstance(values, np.ndarray):  # a str column kept as read (arrow.parse): blanks already unknown
        return values.copy()
    if kind == "measure" and values.dtype.kind == "f":  # floats already (arrow.parse): NaN unknown
        return values.astype("float64")
    missing = np.equal(values, None)
    if kind in ("size", "hugepage", "count"):
        if "null" in column["type"]:
            return pd.arrays.IntegerArray(np.where(missing, 0, values).astype("int64"), missing)
        return values.astype("int64")
    if kind == "measure":
        return np.where(missing, np.nan, values).astype("float64")
    out = values.copy()
    out[missing] = pd.NA
    return out


def _with_index(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.index.name in ("line", "row") and frame.index.is_unique:
        return frame
    frame = frame.reset_index(drop=True)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


def validate(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check a frame of runs against the contract and return it normalised.

    Parameters
    ----------
    frame : DataFrame
        One row per run; cells may be text (``16GiB``, ``snp``) or numbers; empty, None
        or NaN means unknown.
    where : str
        Named in errors (a file name, or ``rows`` for rows built in memory).

    Returns
    -------
    DataFrame
        Sizes in bytes (int64), ``vcpus``/``virtqueues``/``swiotlb_bytes`` as nullable
        Int64, platform in lower case, measured values as float64 (NaN when unknown),
        text columns with NA when unknown; other columns kept as they are. Indexed by
        line (``line``) or row (``row``, counted from 1).

    Raises
    ------
    DataError
        Naming the file, line/row and column of every problem (the first one in the
        message), what was found and what was expected.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(where, type(frame).__name__, "a table of runs (a pandas DataFrame)")
    if frame.columns.duplicated().any():
        name = frame.columns[frame.columns.duplicated()][0]
        raise DataError(where, Said(f"column {name!r} twice"), "each column once")
    if len(frame) == 0:
        raise DataError(where, Said("no rows"), "at least one run (one row per measured run)")
    frame = _with_index(frame.copy())
    frame.columns = [str(c).strip() for c in frame.columns]
    parsed = {name: _parse_series(frame[name], column["x-parse"]) for name, column in columns().items() if name in frame}
    if not _form_passes(parsed, frame):  # pandera finds and words every problem
        pa = _pandera()
        try:
            _form_schema(parsed, frame.index).validate(frame, lazy=True)
        except pa.errors.SchemaErrors as error:
            raise _translate(error, frame, where, "form") from None
    if not any(t in frame for t in TARGETS):
        raise DataError(where, Said(f"no measured column (columns: {', '.join(frame.columns)})"),
                        "at least one of " + ", ".join(TARGETS))
    out = frame.copy(deep=False)  # frame is this function's own copy: its columns are replaced, not changed
    for name, column in columns().items():
        if name in out:
            out[name] = _typed(parsed[name][0], column["x-parse"], column)
    for name in out.columns:  # unknown extra columns: blanks become NA, values kept
        if name not in columns() and out[name].dtype == object:
            out[name] = [pd.NA if _blank(v) else v for v in out[name].tolist()]
    if not _values_pass(out):
        pa = _pandera()
        try:
            _value_schema().validate(out, lazy=True)
        except pa.errors.SchemaErrors as error:
            raise _translate(error, out, where, "values") from None
    return out


# --- the same checks, vectorised: when they all pass, pandera has nothing to say ------------------
def _form_passes(parsed: dict, frame: pd.DataFrame) -> bool:
    """True when stage 1 would pass: every required column there, every cell parsed (and
    every cell of a column that must have one filled). Anything else goes to pandera."""
    if any(name not in frame for name in REQUIRED):
        return False
    for name, column in columns().items():
        if name not in parsed:
            continue
        values, bad = parsed[name]
        if bad.any():
            return False
        if not (isinstance(column["type"], list) and "null" in column["type"]) and np.equal(values, None).any():
            return False
    return True


def _column_passes(series: pd.Series, column: dict) -> bool:
    """The column's enumeration and minimum hold for every known cell (in NumPy for the numbers
    :func:`_typed` makes, int64, Int64 or float64; in pandas for the rest)."""
    if "enum" not in column and "minimum" not in column:
        return True
    dtype = series.dtype
    if isinstance(dtype, pd.Int64Dtype) or (isinstance(dtype, np.dtype) and dtype.kind in "if"):
        known = series.dropna().to_numpy(dtype=getattr(dtype, "numpy_dtype", dtype))
    else:
        known = series[series.notna().to_numpy()]
    if "enum" in column and not np.asarray(known.isin(column["enum"]) if isinstance(known, pd.Series)
                                           else np.isin(known, column["enum"])).all():
        return False
    return "minimum" not in column or bool((known >= column["minimum"]).all())


def _values_pass(frame: pd.DataFrame) -> bool:
    """True when stage 2 would pass: enumerations and minimums (unknown cells aside), unique
    run ids, no copied row, something measured in every row. False (pandera decides, and
    words the errors) when any check fails or cannot be made here."""
    try:
        for name, column in columns().items():
            if name not in frame:
                continue
            if not _column_passes(frame[name], column):
                return False
        if "run_id" in frame:
            ids = frame["run_id"]
            present = ids.notna().to_numpy()
            if arrow.repeats(ids, int(present.sum())) if len(ids) >= ARROW_MIN_ROWS else _repeated(ids, present):
                return False
            distinct_ids = bool(present.all())
        else:
            distinct_ids = False
        # rows with distinct run ids cannot be copies of each other
        if not distinct_ids and frame.duplicated(keep="first").any():
            return False
        present = [t for t in TARGETS if t in frame]
        return bool(present) and bool(np.logical_or.reduce([frame[t].notna().to_numpy() for t in present]).all())
    except (TypeError, ValueError):
        return False


def _repeated(series: pd.Series, present: np.ndarray) -> bool:
    """Whether two known cells hold the same value (Python's equality, as pandas' ``duplicated``)."""
    known = series.to_numpy(dtype=object)[present]
    return len(set(known.tolist())) != len(known)
