"""Reading measurements for ``costmodel discover``: any numeric columns, and Extra-P's files.

* **CSV and Parquet** (by extension): one row per measurement; the target and the inputs
  are columns. Cells are numbers (sizes such as ``16GiB`` are read as bytes); rows whose
  target cell is empty are left out and counted.
* **Extra-P text format** (any other extension, recognised by its ``PARAMETER`` line):
  ``PARAMETER`` names, ``POINTS`` coordinates, then ``REGION`` / ``METRIC`` blocks of one
  ``DATA`` line per point, each with one value per repetition. Several regions and metrics
  per file; the target is ``REGION/METRIC`` (``REGION`` alone when it has one metric).
* **Extra-P JSON Lines** (``.jsonl``): one object per line, ``{"params": {...}, "value":
  v or [v, ...], "callpath": ..., "metric": ...}``.

The two Extra-P formats follow Extra-P's ``docs/file-formats.md`` (github.com/extra-p/extrap),
the contract users of that tool already write to. Every error names the file and the line
(or row and column) and says what was expected.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from costmodel import errors, parse
from costmodel.errors import Argument, InputError
from costmodel.files import sha256_file

#: At most this many inputs (the search grows with each one).
MAX_INPUTS = 4
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass
class Measurements:
    """Measured values of one target against its inputs, one row per measurement."""

    target: str
    inputs: tuple[str, ...]
    #: inputs, one column each, one row per measurement [units of the inputs]
    x: np.ndarray
    #: the target [its unit]
    y: np.ndarray
    source: str = "frame"
    format: str = "frame"
    sha256: str | None = None
    #: what the reader left out or assumed, for the report
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.x = np.asarray(self.x, dtype=float).reshape(len(self.y), len(self.inputs))
        self.y = np.asarray(self.y, dtype=float)


def from_frame(frame, target: str, inputs=None, source: str = "frame") -> Measurements:
    """Measurements from a pandas DataFrame (what the readers of tables use)."""
    return _from_columns({c: frame[c].tolist() for c in frame.columns}, list(range(1, len(frame) + 1)),
                         "row", target, inputs, source, "frame", None)


def read(path: str | os.PathLike, target: str, inputs=None) -> Measurements:
    """Read ``target`` and its inputs from ``path`` (CSV, Parquet, Extra-P text or JSON Lines).

    ``inputs`` (names, or a comma-separated string) defaults to every other numeric
    column (or every Extra-P parameter) that takes more than one value.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(Argument("data"), str(path), "an existing CSV, Parquet, Extra-P text or JSON Lines file")
    if isinstance(inputs, str):
        inputs = [s.strip() for s in inputs.split(",") if s.strip()]
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return _read_table(path, target, inputs)
    if suffix == ".jsonl":
        return _read_jsonl(path, target, inputs)
    text = _text(path)
    first = next((line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    if first.split(maxsplit=1)[:1] == ["PARAMETER"]:
        return _read_extrap_text(path, text, target, inputs)
    raise InputError(str(path), f"a {suffix or 'suffix-less'} file starting {first[:40]!r}",
                     "a .csv, .parquet or .jsonl file, or an Extra-P text file (first line PARAMETER …)")


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(str(path), f"bytes that are not UTF-8 text at offset {error.start}", "a UTF-8 text file") from None


def _number(value, where: str) -> float | None:
    """A cell as a number; None when empty. Sizes (``16GiB``) count as bytes."""
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise InputError(where, value, "a number")
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if math.isnan(number):
            return None
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            try:
                number = float(parse.size(text, where))
            except InputError:
                raise InputError(where, text, "a number") from None
    if not math.isfinite(number):
        raise InputError(where, value, "a finite number")
    return number


def _read_table(path: Path, target: str, inputs) -> Measurements:
    from costmodel.data.files import _read

    frame = _read(path)
    place = frame.index.name or "row"
    columns = {str(c): frame[c].tolist() for c in frame.columns}
    return _from_columns(columns, frame.index.tolist(), place, target, inputs, str(path),
                         "csv" if path.suffix.lower() == ".csv" else "parquet", sha256_file(path))


def _from_columns(columns: dict, places: list, place: str, target: str, inputs, source: str, kind: str,
                  sha256: str | None) -> Measurements:
    names = list(columns)
    if target not in columns:
        raise InputError(Argument("target"), target, "a column of " + source + ": "
                         + ", ".join(errors.closest(target, names, len(names))))
    notes = []
    if inputs is None:
        chosen = []
        for name in names:
            if name == target:
                continue
            parsed = [_number_or_none(c) for c in columns[name]]
            filled = [v for v in parsed if v is not None]
            if not filled or filled[0] is _TEXT:
                notes.append(f"column {name} left out: not numeric")
                continue
            if any(v is _TEXT for v in filled):  # numbers, then text: a typo, not a text column
                _column(columns[name], places, place, name, source)
            if len(set(filled)) < 2:
                notes.append(f"column {name} left out: one value")
                continue
            chosen.append(name)
        if not chosen:
            raise InputError(source, f"no numeric column besides {target} that takes two or more values",
                             "at least one input column (choose them with inputs)")
        if len(chosen) > MAX_INPUTS:
            raise InputError(Argument("inputs"), ",".join(chosen), f"at most {MAX_INPUTS} inputs; name them")
        inputs = chosen
    inputs = list(inputs)
    for name in inputs:
        if name not in columns:
            raise InputError(Argument("inputs"), name, "a column of " + source + ": "
                             + ", ".join(errors.closest(name, [n for n in names if n != target], len(names))))
    if target in inputs:
        raise InputError(Argument("inputs"), target, "columns other than the target")
    if len(set(inputs)) != len(inputs) or not inputs:
        raise InputError(Argument("inputs"), ",".join(inputs), "one or more distinct column names")
    if len(inputs) > MAX_INPUTS:
        raise InputError(Argument("inputs"), ",".join(inputs), f"at most {MAX_INPUTS} inputs")
    y = _column(columns[target], places, place, target, source)
    x = np.column_stack([_column(columns[n], places, place, n, source) for n in inputs])
    keep = ~np.isnan(y)
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} rows without a value of {target} left out")
    missing = np.isnan(x) & keep[:, None]
    if missing.any():
        row, col = np.argwhere(missing)[0]
        raise InputError(f"{source}, {place} {places[row]}, column {inputs[col]}", _Said("an empty cell"),
                         "a number (every measurement needs every input)")
    return _checked(Measurements(target, tuple(inputs), x[keep], y[keep], source, kind, sha256, notes),
                    [places[i] for i in np.flatnonzero(keep)], place)


class _Said(str):
    def __repr__(self):
        return str(self)


_TEXT = object()


def _number_or_none(cell):
    try:
        return _number(cell, "")
    except InputError:
        return _TEXT


def _column(cells: list, places: list, place: str, name: str, source: str) -> np.ndarray:
    out = np.empty(len(cells))
    for i, cell in enumerate(cells):
        number = _number(cell, f"{source}, {place} {places[i]}, column {name}")
        out[i] = np.nan if number is None else number
    return out


def _checked(m: Measurements, places: list, place: str) -> Measurements:
    """Inputs must be positive (terms take log2 and fractional powers) and vary."""
    for j, name in enumerate(m.inputs):
        bad = np.flatnonzero(m.x[:, j] <= 0)
        if len(bad):
            where = f"{m.source}, {place} {places[bad[0]]}, column {name}" if places else f"{m.source}, input {name}"
            raise InputError(where, _number_text(m.x[bad[0], j]),
                             "a positive value (the formulas take log2 and fractional powers of every input; "
                             "shift the column or leave it out of the inputs)")
        if len(np.unique(m.x[:, j])) < 2:
            raise InputError(f"{m.source}, column {name}", _Said(f"one value ({_number_text(m.x[0, j])})"),
                             "two or more distinct values of every input")
    if len(m.y) == 0:
        raise InputError(m.source, _Said("no measurements"), f"rows with a value of {m.target}")
    return m


def _number_text(value: float) -> _Said:
    return _Said(str(int(value)) if float(value).is_integer() else repr(float(value)))


# --- Extra-P text format ---------------------------------------------------------------------

_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"


def _points(rest: str, n_parameters: int, where: str) -> list[tuple[float, ...]]:
    """Coordinates of a POINTS line: ``(20 1) (30 1)``, ``((20) (1))`` or, for one parameter, ``20 30``."""
    if "(" not in rest:
        values = rest.split()
        if n_parameters != 1:
            raise InputError(where, rest.strip(), f"points in parentheses, {n_parameters} coordinates each")
        return [(_extrap_number(v, where),) for v in values]
    points, depth, current, token = [], 0, [], ""
    for char in rest + " ":
        if char in "() \t":
            if token:
                if depth == 0:
                    raise InputError(where, token, "coordinates inside parentheses")
                current.append(_extrap_number(token, where))
                token = ""
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raise InputError(where, rest.strip(), "balanced parentheses")
                if depth == 0:
                    points.append(tuple(current))
                    current = []
        else:
            token += char
    if depth:
        raise InputError(where, rest.strip(), "balanced parentheses")
    for point in points:
        if len(point) != n_parameters:
            raise InputError(where, "(" + " ".join(map(str, point)) + ")",
                             f"{n_parameters} coordinate{'s' if n_parameters > 1 else ''} per point, one per PARAMETER")
    return points


def _extrap_number(token: str, where: str) -> float:
    if not re.fullmatch(_NUMBER, token):
        raise InputError(where, token, "a number")
    return float(token)


def _read_extrap_text(path: Path, text: str, target: str, inputs) -> Measurements:
    parameters: list[str] = []
    points: list[tuple[float, ...]] = []
    series: dict[str, list[tuple[int, list[float]]]] = {}
    region = metric = None
    block: tuple[str, int] | None = None  # (series key, line of REGION/METRIC) of the DATA lines that follow

    def close(block):
        if block and len(series[block[0]]) % len(points):
            raise InputError(f"{path}, line {block[1]}", _Said(f"{len(series[block[0]]) % len(points)} DATA lines"),
                             f"one DATA line per point ({len(points)}) after each REGION/METRIC")

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}, line {number}"
        keyword, _, rest = line.partition(" ")
        if keyword == "PARAMETER":
            if points:
                raise InputError(where, "PARAMETER after POINTS", "every PARAMETER line before the POINTS")
            names = rest.split()
            if not names:
                raise InputError(where, line, "PARAMETER followed by one or more names")
            parameters += names
        elif keyword == "POINTS":
            if not parameters:
                raise InputError(where, "POINTS before any PARAMETER", "PARAMETER lines first")
            if series:
                raise InputError(where, "POINTS after DATA", "every POINTS line before the first REGION")
            points += _points(rest, len(parameters), where)
        elif keyword in ("REGION", "METRIC"):
            if not points:
                raise InputError(where, f"{keyword} before any POINTS", "PARAMETER and POINTS lines first")
            if not rest.strip():
                raise InputError(where, line, f"{keyword} followed by a name")
            close(block)
            if keyword == "REGION":
                region = rest.strip()
            else:
                metric = rest.strip()
            block = None
        elif keyword == "DATA":
            if region is None:
                raise InputError(where, "DATA before any REGION", "a REGION line before the DATA lines")
            values = [_extrap_number(v, where) for v in rest.split()]
            if not values:
                raise InputError(where, line, "DATA followed by one or more values")
            key = f"{region}/{metric}" if metric is not None else region
            if block is None or block[0] != key:
                block = (key, number)
                series.setdefault(key, [])
            series[key].append((number, values))
        else:
            raise InputError(where, keyword[:40], "a line starting PARAMETER, POINTS, REGION, METRIC, DATA or #")
    close(block)
    if not parameters or not points or not series:
        missing = [k for k, v in (("PARAMETER", parameters), ("POINTS", points), ("DATA", series)) if not v]
        raise InputError(str(path), _Said(f"no {', '.join(missing)} lines"), "an Extra-P text file: PARAMETER, POINTS, "
                         "REGION, DATA")
    if len(set(parameters)) != len(parameters):
        raise InputError(str(path), " ".join(parameters), "distinct PARAMETER names")
    key = _series_key(target, list(series), str(path))
    rows = series[key]
    if len(rows) != len(points):
        raise InputError(f"{path}, line {rows[0][0]}", _Said(f"{len(rows)} DATA lines for {key}"),
                         f"one DATA line per point ({len(points)})")
    x = [point for point, (_, values) in zip(points, rows) for _ in values]
    y = [v for _, values in rows for v in values]
    return _select(parameters, np.array(x, dtype=float), np.array(y), key, inputs, str(path), "extrap-text",
                   sha256_file(path), notes=[])


def _series_key(target: str, keys: list[str], source: str) -> str:
    if target in keys:
        return target
    regions = [k for k in keys if k.rsplit("/", 1)[0] == target]
    if len(regions) == 1:
        return regions[0]
    raise InputError(Argument("target"), target, f"REGION/METRIC of {source}: "
                     + ", ".join(errors.closest(target, keys, min(len(keys), 8))))


def _select(parameters, x, y, key, inputs, source, kind, sha256, notes) -> Measurements:
    if inputs is None:
        inputs = [p for j, p in enumerate(parameters) if len(np.unique(x[:, j])) > 1]
        left = [p for p in parameters if p not in inputs]
        if left:
            notes.append("parameters left out (one value): " + ", ".join(left))
        if len(inputs) > MAX_INPUTS:
            raise InputError(Argument("inputs"), ",".join(inputs), f"at most {MAX_INPUTS} inputs; name them")
    for name in inputs:
        if name not in parameters:
            raise InputError(Argument("inputs"), name, f"a parameter of {source}: "
                             + ", ".join(errors.closest(name, parameters, len(parameters))))
    if len(inputs) > MAX_INPUTS or not inputs:
        raise InputError(Argument("inputs"), ",".join(inputs), f"one to {MAX_INPUTS} inputs")
    columns = [parameters.index(n) for n in inputs]
    return _checked(Measurements(key, tuple(inputs), x[:, columns], y, source, kind, sha256, notes), [], "")


# --- Extra-P JSON Lines ------------------------------------------------------------------------

def _read_jsonl(path: Path, target: str, inputs) -> Measurements:
    series: dict[str, list[tuple[dict, float]]] = {}
    names: list[str] | None = None
    for number, raw in enumerate(_text(path).splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            raise InputError(where, raw.strip()[:40], f"one JSON object per line ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("params"), dict) or "value" not in record:
            raise InputError(where, raw.strip()[:40], 'an object with "params" (a map of numbers) and "value"')
        params = record["params"]
        if names is None:
            names = list(params)
        elif set(params) != set(names):
            raise InputError(where, ",".join(params), "the same parameters on every line: " + ",".join(names))
        point = {k: _json_number(v, f"{where}, params {k}") for k, v in params.items()}
        values = record["value"] if isinstance(record["value"], list) else [record["value"]]
        if not values:
            raise InputError(f"{where}, value", "[]", "a number or a list of numbers")
        key = "/".join(str(record[k]) for k in ("callpath", "metric") if k in record) or "value"
        for v in values:
            series.setdefault(key, []).append((point, _json_number(v, f"{where}, value")))
    if names is None:
        raise InputError(str(path), _Said("no measurements"), "one JSON object per line")
    only = next(iter(series))
    key = only if len(series) == 1 and target in (only, "value") else _series_key(target, list(series), str(path))
    rows = series[key]
    x = np.array([[p[n] for n in names] for p, _ in rows], dtype=float)
    y = np.array([v for _, v in rows])
    return _select(names, x, y, key, inputs, str(path), "jsonl", sha256_file(path), notes=[])


def _json_number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(where, value, "a finite number")
    return float(value)
