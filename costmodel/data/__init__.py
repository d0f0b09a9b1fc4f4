"""Measured runs: the dataset contract, loading, validation, writing and appending.

One row per measured run of a confidential guest. The contract is written down twice, in
agreement: ``costmodel/data/dataset.schema.json`` (machine-readable, a JSON Schema of one
normalised row, with units and roles as ``x-`` annotations) and ``docs/data-schema.md``.
Validation runs through pandera in two stages built from that JSON file:

1. *form*: every cell parses (sizes such as ``16GiB``, whole counts, non-negative numbers,
   a known platform, an ISO date); failure cases keep the text the user wrote;
2. *values*: the parsed frame meets the ranges and enumerations, run ids are unique, no
   row is a copy of another, every row measured something.

Errors are :class:`DataError` (an :class:`~costmodel.errors.InputError`) naming the file,
the line as an editor counts it (CSV; ``row`` for Parquet and in-memory frames), the
column, what was found and what was expected. Unknown values stay unknown (NA), never
invented. The frames :func:`load` and :func:`validate` return are indexed by that line (or
row) number, so code further down (fitting) can name it too.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import math
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from costmodel import errors, parse
from costmodel.errors import InputError
from costmodel.files import atomic_write_bytes, atomic_write_text

#: Columns every file must have (a cell of ``vcpus`` may still be empty: unknown).
REQUIRED = ("platform", "memory_bytes", "vcpus", "hugepage_bytes")
#: Measured quantities the model predicts (and :mod:`costmodel.fitting.fit` can fit).
TARGETS = ("splits", "merges", "conversion_ops", "conversion_cycles", "split_merge_cycles")
#: Where a run came from.
PROVENANCE = ("run_id", "source", "date", "kernel", "notes")
#: File types by extension.
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

_MORE_SHOWN = 3

class _Said(str):
    """A description shown as is in an error (not quoted like a value the user typed)."""

    def __repr__(self) -> str:
        return str(self)

class DataError(InputError):
    """A dataset does not meet its contract.

    ``problems`` lists every problem found as ``(where, found, expected)``; the message
    shows the first one and how many more there are, with where they are.
    """

    def __init__(self, where: str, found: object, expected: str, problems: list | None = None):
        self.problems = problems or [(where, found, expected)]
        super().__init__(where, found, expected)
        more = self.problems[1:]
        if more:
            shown = "; ".join(w for w, _, _ in more[:_MORE_SHOWN])
            extra = ", …" if len(more) > _MORE_SHOWN else ""
            self.args = (f"{self.args[0]} (and {len(more)} more: {shown}{extra})",)

    def __str__(self) -> str:
        return self.args[0]

# --- the contract ---------------------------------------------------------------------------
@lru_cache(maxsize=1)
def schema() -> dict:
    """The machine-readable contract (``costmodel/data/dataset.schema.json``)."""
    text = resources.files("costmodel.data").joinpath("dataset.schema.json").read_text()
    return json.loads(text)

def columns() -> dict[str, dict]:
    """Known columns, in schema order, each with its JSON Schema entry."""
    return dict(schema()["properties"])

# --- parsing one cell -----------------------------------------------------------------------

def _blank(value) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""

def _measure(value, where: str) -> float:
    expected = "a number ≥ 0 (empty when unknown)"
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
    if not math.isfinite(number):
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

#: x-parse kind → (parser(value, where), what the cell must look like)
_PARSERS: dict[str, tuple[Callable, str]] = {
    "platform": (parse.platform, "one of snp, tdx (AMD SEV-SNP, Intel TDX)"),
    "size": (parse.size, parse.SIZE_FORMS),
    "hugepage": (parse.hugepage, "one of 4K, 2M, 1G (4K means no hugepages) or their bytes"),
    "count": (lambda v, w: parse.count(v, w, minimum=0), "a whole number (empty when unknown)"),
    "measure": (_measure, "a number ≥ 0 (empty when unknown)"),
    "date": (_date, "an ISO 8601 date such as 2025-07-11 (empty when unknown)"),
    "text": (_text, "text"),
}

def _parse_series(series: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse every cell, each distinct value once; returns values (None when blank) and a 'bad' mask."""
    parse = _PARSERS[kind][0]
    if kind == "measure" and series.dtype.kind in "iuf":  # numbers already: check them vectorised
        numbers = series.to_numpy(dtype=float)
        values = np.where(np.isnan(numbers), None, numbers).astype(object)
        return values, np.isinf(numbers)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    parsed = np.empty(len(uniques) + 1, dtype=object)  # the last slot is for NA (code -1)
    failed = np.zeros(len(uniques) + 1, dtype=bool)
    for i, value in enumerate(uniques.tolist() if hasattr(uniques, "tolist") else list(uniques)):
        if _blank(value):
            continue
        try:
            parsed[i] = parse(value, "cell")
        except InputError:
            failed[i] = True
    return parsed[codes], failed[codes]

# --- pandera schemas built from the JSON contract -----------------------------------------------

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

# --- locating rows ------------------------------------------------------------------------------

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
            problems.append((f"{where}", _Said(f"no column {missing!r} (columns: {', '.join(map(str, frame.columns))})"),
                             f"the columns {', '.join(REQUIRED)}" + (f"; is {hint[0]!r} meant to be {missing!r}?" if hint else "")))
            continue
        if case.index is None or (isinstance(case.index, float) and math.isnan(case.index)):
            continue  # dtype or frame-level summaries carry no row
        place = _place(case.index, index_name)
        if column is None:  # frame-level check
            if check.startswith("run_id:"):
                value = frame.loc[case.index, "run_id"]
                first = frame.index[(frame["run_id"] == value).to_numpy()][0]
                problems.append((f"{where}, {place}, column run_id", _Said(f"{value!r} (also on {_place(first, index_name)})"),
                                 check.split(": ", 1)[1]))
            elif check.startswith("a run not already"):
                hashes = pd.util.hash_pandas_object(frame.astype(str), index=False)
                first = hashes.index[(hashes == hashes.loc[case.index]).to_numpy()][0]
                problems.append((f"{where}, {place}", _Said(f"a copy of {_place(first, index_name)}"), check))
            else:
                problems.append((f"{where}, {place}", _Said("no measured value"), check))
            continue
        found = case.failure_case
        if stage == "form":
            found = frame.loc[case.index, column] if case.index in frame.index else found
            if _blank(found):
                found = _Said("an empty cell")
        expected = check
        if column == "platform" and not _blank(found):
            expected = "one of " + ", ".join(errors.closest(str(found).strip().lower(), parse.PLATFORMS, 2))
            expected += " (snp: AMD SEV-SNP, tdx: Intel TDX)"
        problems.append((f"{where}, {place}, column {column}", found.item() if hasattr(found, "item") else found, expected))
    # file-level problems first, then in file order
    problems.sort(key=lambda p: (", line " in p[0] or ", row " in p[0], _order(p[0])))
    if not problems:
        return DataError(where, _Said("data the schema rejected"), "data meeting docs/data-schema.md")
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

# --- validation -------------------------------------------------------------------------------

def _typed(values: np.ndarray, kind: str, column: dict):
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
    pa = _pandera()
    if not isinstance(frame, pd.DataFrame):
        raise DataError(where, type(frame).__name__, "a table of runs (a pandas DataFrame)")
    if frame.columns.duplicated().any():
        name = frame.columns[frame.columns.duplicated()][0]
        raise DataError(where, _Said(f"column {name!r} twice"), "each column once")
    if len(frame) == 0:
        raise DataError(where, _Said("no rows"), "at least one run (one row per measured run)")
    frame = _with_index(frame.copy())
    frame.columns = [str(c).strip() for c in frame.columns]
    parsed = {name: _parse_series(frame[name], column["x-parse"]) for name, column in columns().items() if name in frame}
    try:
        _form_schema(parsed, frame.index).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        raise _translate(error, frame, where, "form") from None
    if not any(t in frame for t in TARGETS):
        raise DataError(where, _Said(f"no measured column (columns: {', '.join(frame.columns)})"),
                        "at least one of " + ", ".join(TARGETS))
    out = frame.copy()
    for name, column in columns().items():
        if name in out:
            out[name] = _typed(parsed[name][0], column["x-parse"], column)
    for name in out.columns:  # unknown extra columns: blanks become NA, values kept
        if name not in columns() and out[name].dtype == object:
            out[name] = [pd.NA if _blank(v) else v for v in out[name].tolist()]
    try:
        _value_schema().validate(out, lazy=True)
    except pa.errors.SchemaErrors as error:
        raise _translate(error, out, where, "values") from None
    return out

# --- files --------------------------------------------------------------------------------------

def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataError(str(path), f"a {suffix or 'suffix-less'} file", "a .csv or .parquet file")
    return FORMATS[suffix]

def _csv_lines(text: str, records: int) -> list[int]:
    """The line on which each record starts (header is line 1), as an editor counts."""
    physical = text.count("\n") + (0 if text.endswith("\n") else 1)
    if physical == records + 1:  # no blank lines, no line breaks inside quoted cells
        return list(range(2, records + 2))
    starts = []
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    last_end = reader.line_num
    for row in reader:
        if any(cell.strip() for cell in row):
            starts.append(last_end + 1)  # a record starts after the previous one ended
        last_end = reader.line_num
    return starts if len(starts) == records else list(range(2, records + 2))

def _read(path: Path) -> pd.DataFrame:
    kind = _kind(path)
    if not path.exists():
        raise DataError(str(path), _Said("no such file"), "a readable .csv or .parquet file")
    try:
        if kind == "csv":
            text = path.read_text(encoding="utf-8-sig")
            if not text.strip():
                raise DataError(str(path), _Said("an empty file"), "a header line naming the columns, then one row per run")
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                                skipinitialspace=True)
            frame.index = pd.Index(_csv_lines(text, len(frame)), name="line")
        else:
            frame = pd.read_parquet(path)
            frame = frame.astype(object).where(frame.notna(), None)
            frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    except DataError:
        raise
    except UnicodeDecodeError as error:
        raise DataError(str(path), f"bytes that are not UTF-8 text at offset {error.start}", "a UTF-8 CSV file") from None
    except pd.errors.ParserError as error:
        raise DataError(str(path), str(error).strip(), "a CSV file with the same number of fields on every line") from None
    except (OSError, ValueError, ImportError) as error:
        raise DataError(str(path), f"{type(error).__name__}: {error}".splitlines()[0], f"a readable {kind} file") from None
    return frame

def load(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a file of runs (CSV or Parquet, by extension).

    Parameters
    ----------
    path : path-like
        ``.csv`` (UTF-8, header line, empty cell = unknown, sizes such as ``16GiB``
        accepted) or ``.parquet`` (null = unknown).

    Returns
    -------
    DataFrame
        As :func:`validate` returns it, indexed by the line each run is on (CSV) or its
        row number (Parquet).
    """
    path = Path(path)
    return validate(_read(path), str(path))

def frame_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 identifying a validated frame's content (for frames not read from a file).

    Computed over the column names and pandas' per-row content hashes, not over file
    bytes: equal frames give equal digests, but the digest differs from :func:`~costmodel.files.sha256_file`
    of a file holding the same runs.
    """
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame.astype(object).where(frame.notna(), None), index=False)
                  .to_numpy().tobytes())
    return digest.hexdigest()

def _cell(value) -> str:
    if _blank(value):
        return ""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return str(int(value)) if value.is_integer() and abs(value) < 2**63 else repr(value)
    return str(value)

def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Known columns in schema order, then the others in their order."""
    known = [c for c in columns() if c in frame]
    return frame[known + [c for c in frame.columns if c not in known]]

def to_csv_text(frame: pd.DataFrame) -> str:
    """CSV text of a validated frame: bytes as integers, whole numbers without '.0', empty = unknown."""
    frame = ordered(frame)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(frame.columns)
    for row in zip(*(frame[c].tolist() for c in frame.columns)):
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()

def write(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Validate ``frame`` and write it atomically (CSV or Parquet by extension).

    A failed validation or write leaves any existing file untouched.
    """
    path = Path(path)
    kind = _kind(path)
    frame = ordered(validate(frame, str(path)))
    if kind == "csv":
        return atomic_write_text(path, to_csv_text(frame))
    buffer = io.BytesIO()
    frame.reset_index(drop=True).to_parquet(buffer, index=False)
    return atomic_write_bytes(path, buffer.getvalue())
    return path

def append(path: str | os.PathLike, rows, key: str = "run_id") -> pd.DataFrame:
    """Add runs to a file (created when absent), replacing runs already there by ``key``.

    Parameters
    ----------
    path : path-like
        The dataset (``.csv`` or ``.parquet``).
    rows : DataFrame, mapping or sequence of mappings
        New runs, in the same form :func:`validate` accepts.
    key : str
        Column identifying a run. A new row whose key is already in the file replaces
        that row in place (a re-ingested run); rows with an empty key are appended.

    Returns
    -------
    DataFrame
        The whole dataset as written. On any error nothing is written.
    """
    path = Path(path)
    _kind(path)
    if isinstance(rows, Mapping):
        rows = [rows]
    if not isinstance(rows, pd.DataFrame):
        rows = pd.DataFrame(list(rows))
    new = validate(rows, "new rows")
    if path.exists():
        old = load(path)
        if key in new and key in old:
            position = {k: i for i, k in enumerate(old[key].tolist()) if not _blank(k)}
            keys = new[key].tolist()
            replace = [(position[k], j) for j, k in enumerate(keys) if not _blank(k) and k in position]
            combined = pd.concat([old.reset_index(drop=True), new.reset_index(drop=True)], ignore_index=True)
            order = list(range(len(old)))
            for i, j in replace:
                order[i] = len(old) + j
            replaced = {j for _, j in replace}
            order += [len(old) + j for j in range(len(new)) if j not in replaced]
            combined = combined.iloc[order]
        else:
            combined = pd.concat([old.reset_index(drop=True), new.reset_index(drop=True)], ignore_index=True)
    else:
        combined = new.reset_index(drop=True)
    combined = combined.reset_index(drop=True)
    write(combined, path)
    return load(path)

