"""Dataset files: reading CSV and Parquet, writing them atomically, appending runs."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from costmodel.data.arrow import stored_by_arrow
from costmodel.data.contract import FORMATS, DataError, Said, columns
from costmodel.data.validate import _blank, validate
from costmodel.files import atomic_write_bytes, atomic_write_text


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


def _read_csv_bytes(path: Path) -> pd.DataFrame | None:
    """A CSV file without carriage returns, parsed from its bytes (a text copy of a large file
    costs several times its size in memory); None when it has a carriage return or is not
    UTF-8, so the text path reads it (and words the error) as it always has."""
    raw = path.read_bytes()
    if b"\r" in raw:
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        raise DataError(str(path), Said("an empty file"), "a header line naming the columns, then one row per run")
    del text
    frame = _read_plain_csv(raw)
    if frame is None:
        frame = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", dtype=str, keep_default_na=False, na_filter=False,
                            skipinitialspace=True)
    physical = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)  # as text: a BOM holds no newline
    if physical == len(frame) + 1:  # _csv_lines' common case, counted on the bytes
        lines = list(range(2, len(frame) + 2))
    else:
        lines = _csv_lines(raw.decode("utf-8-sig"), len(frame))
    frame.index = pd.Index(lines, name="line")
    return frame


#: Files from this size on are parsed by pyarrow's CSV reader when they are plain. [B]
ARROW_MIN_BYTES = 1 << 20


def _read_plain_csv(raw: bytes) -> pd.DataFrame | None:
    """A large *plain* CSV file (no quotes, no cell starting with a blank, no NUL byte, no
    byte-order mark, distinct non-empty column names) read by pyarrow's CSV reader
    into the frame ``pd.read_csv(..., dtype=str, keep_default_na=False, na_filter=False,
    skipinitialspace=True)`` gives (the same strings, the same column dtype), without a
    Python object per cell. None for any other file, or when pyarrow refuses it (a row with
    another number of fields): pandas reads it, and words its errors, as it always has."""
    if len(raw) < ARROW_MIN_BYTES or raw.startswith(b"\xef\xbb\xbf") or b'"' in raw or b"\x00" in raw:
        return None
    end = raw.find(b"\n")
    names = raw[:end if end >= 0 else len(raw)].decode("utf-8").split(",")
    if len(set(names)) != len(names) or not all(names) or any(n[0] in " \t" for n in names):
        return None
    dtype = pd.Series([], dtype=str).dtype  # what read_csv(dtype=str) makes: str (pandas 3) or object
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        from pyarrow import csv as arrow_csv

        table = arrow_csv.read_csv(io.BytesIO(raw), read_options=arrow_csv.ReadOptions(use_threads=True),
                                   parse_options=arrow_csv.ParseOptions(newlines_in_values=False),
                                   convert_options=arrow_csv.ConvertOptions(
                                       column_types={name: pa.large_string() for name in names},  # pandas' own
                                       strings_can_be_null=False, quoted_strings_can_be_null=False))
        if table.column_names != names or any(pc.any(pc.starts_with(column, blank)).as_py()
                                                for column in table.columns for blank in (" ", "\t")):
            return None  # a cell starting with a blank (skipinitialspace would drop it)
        mapper = {pa.large_string(): dtype}.get if isinstance(dtype, pd.StringDtype) else None
        frame = table.to_pandas(types_mapper=mapper, self_destruct=True)
        del table
    except (ImportError, ValueError, TypeError, OSError, ArithmeticError):  # pyarrow.ArrowInvalid is a ValueError
        return None
    if not all(d == dtype for d in frame.dtypes):
        return None
    return frame


#: Largest dataset file read (a million runs of CSV is ≈150 MiB). [B]
MAX_FILE_BYTES = 512 * 1024 * 1024
#: Most runs a dataset may hold. [rows]
MAX_ROWS = 1_000_000


def _parquet_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A Parquet file's columns as :func:`validate` takes them: Python objects with None for
    unknown, except the contract's columns stored as NumPy numbers or booleans, or as
    pyarrow text, which are kept as they are: validation parses each distinct value of those
    as the same Python scalar (and checks large text in Arrow) without an object per cell."""
    known = columns()
    frame = frame.copy(deep=False)
    for i, name in enumerate(frame.columns):
        series = frame.iloc[:, i]
        dtype = series.dtype
        if name in known and ((isinstance(dtype, np.dtype) and dtype.kind in "ifb") or stored_by_arrow(series)):
            continue
        frame.isetitem(i, series.astype(object).where(series.notna(), None))
    return frame


def _read(path: Path) -> pd.DataFrame:
    kind = _kind(path)
    if not path.exists():
        raise DataError(str(path), Said("no such file"), "a readable .csv or .parquet file")
    if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        raise DataError(str(path), Said(f"a file of {path.stat().st_size} bytes"),
                        f"a dataset of at most {MAX_FILE_BYTES // 1024 // 1024} MiB")
    try:
        if kind == "csv":
            frame = _read_csv_bytes(path)
            if frame is None:  # carriage returns or bad UTF-8: read as text (newlines translated, errors worded)
                text = path.read_text(encoding="utf-8-sig")
                if not text.strip():
                    raise DataError(str(path), Said("an empty file"),
                                    "a header line naming the columns, then one row per run")
                frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                                    skipinitialspace=True)
                frame.index = pd.Index(_csv_lines(text, len(frame)), name="line")
        else:
            frame = _parquet_cells(pd.read_parquet(path))
            frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    except DataError:
        raise
    except UnicodeDecodeError as error:
        raise DataError(str(path), f"bytes that are not UTF-8 text at offset {error.start}", "a UTF-8 CSV file") from None
    except pd.errors.ParserError as error:
        raise DataError(str(path), str(error).strip(), "a CSV file with the same number of fields on every line") from None
    except (OSError, ValueError, ImportError) as error:
        raise DataError(str(path), f"{type(error).__name__}: {error}".splitlines()[0], f"a readable {kind} file") from None
    if len(frame) > MAX_ROWS:
        raise DataError(str(path), Said(f"{len(frame)} rows"), f"a dataset of at most {MAX_ROWS} runs")
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

    The per-row hashes are those of ``pd.util.hash_pandas_object(frame.astype(object).where(frame.notna(),
    None), index=False)`` (the digest is recorded in fits and calibrations: it stays what it was),
    computed from each column's distinct values without the object copy of the frame
    (:func:`_column_hashes`; ``tests/test_data.py`` compares the two).
    """
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(_combined(frame).tobytes())
    return digest.hexdigest()


def _column_hashes(column: pd.Series) -> np.ndarray:
    """pandas' hash of each cell of ``column.astype(object).where(column.notna(), None)``. [uint64]

    pandas hashes an object column as a categorical (``hash_array(..., categorize=True)``):
    the categories, an :class:`~pandas.Index` of the distinct Python values, are hashed once
    and each cell takes its category's hash; an unknown cell hashes to the largest uint64.
    The same here, from the column's own distinct values (no object copy of every cell).
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    values = np.asarray(pd.Index(np.asarray(uniques, dtype=object)).array)  # the categories, as pandas makes them
    hashed = pd.util.hash_array(values, categorize=False)
    return np.append(hashed, np.iinfo(np.uint64).max)[codes]  # code -1 (unknown): the last slot


def _combined(frame: pd.DataFrame) -> np.ndarray:
    """The columns' hashes combined row by row as pandas combines them (CPython's tuple hash). [uint64]"""
    n, k = len(frame), len(frame.columns)
    out = np.full(n, 0x345678, dtype=np.uint64)
    if k == 0:
        return out + np.uint64(97531)
    multiplier = np.uint64(1000003)
    for i in range(k):
        out ^= _column_hashes(frame.iloc[:, i])
        out *= multiplier
        multiplier += np.uint64(82520 + 2 * (k - i))
    return out + np.uint64(97531)


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


def append(path: str | os.PathLike, rows, key: str = "run_id", *, old: pd.DataFrame | None = None,
           reload: bool = True) -> pd.DataFrame:
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
    old : DataFrame, optional
        The file's runs as :func:`load` returned them, when the caller has read them
        already (the file is then not read again).
    reload : bool
        Return the dataset as read back from the file (the default), or, False, the
        merged runs as they were validated and written (the file is not read again).

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
    if old is not None or path.exists():
        old = load(path) if old is None else old
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
    return load(path) if reload else combined
