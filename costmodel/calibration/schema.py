"""Reading a calibration file as untrusted input: bytes → JSON → checked fields.

Calibrations are shared ("cite fitted formulas"), so a file may come from anyone. Reading
one never runs past a budget (:data:`MAX_FILE_BYTES`, :data:`MAX_DEPTH`,
:data:`MAX_STRING`, :data:`MAX_ITEMS`), never takes ``NaN``/``Infinity`` or a number that
overflows a double, never takes ``true`` for 1, and checks every field's type and range:
coefficient values within the bounds :mod:`costmodel.model.variables` declares, standard
errors and intervals finite, provenance an object of plain values, fit records whole. A
failure raises :class:`~costmodel.errors.InputError` naming the file and the field.
Strings are kept as written; whoever shows them escapes them (:mod:`costmodel.render.escape`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

from costmodel.errors import Argument, InputError, closest

#: A calibration file is a few kilobytes; anything past this is not one. [B]
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Nesting of objects and lists the file may have (a fit record's covariance is at depth 6).
MAX_DEPTH = 12
#: Longest string a field may hold (a data file's path, a method's description). [characters]
MAX_STRING = 4096
#: Most entries an object or list may hold.
MAX_ITEMS = 1000
#: Digits a JSON integer may have (more cannot be a count or a value of this model).
_MAX_DIGITS = 30


class _Refused(ValueError):
    """Raised inside ``json.loads`` hooks; turned into an InputError naming the file."""


def _constant(name: str):
    raise _Refused(f"{name} (not a JSON number)")


def _integer(text: str):
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _float(text: str):
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"{text[:40]} (beyond a double's range)")
    return value


def read_json(path: str | Path) -> object:
    """The JSON in ``path``, within the budgets; errors name the file (and line, column)."""
    path = Path(path)
    expected = "a costmodel calibration file (JSON)"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise InputError(Argument("calibration"), str(path), f"a readable calibration file ({error.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(str(path), f"a file over {MAX_FILE_BYTES // 1024 // 1024} MiB",
                         f"{expected} of at most {MAX_FILE_BYTES // 1024 // 1024} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(str(path), f"bytes that are not UTF-8 text at offset {error.start}", expected) from None
    try:
        loaded = json.loads(text, parse_constant=_constant, parse_int=_integer, parse_float=_float)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}:{error.colno}", error.msg, "valid JSON") from None
    except _Refused as error:
        raise InputError(str(path), str(error), "finite JSON numbers (no NaN, Infinity or numbers beyond a double)") from None
    except RecursionError:
        raise InputError(str(path), "nesting too deep to read", f"{expected} nested at most {MAX_DEPTH} levels") from None
    except ValueError as error:
        raise InputError(str(path), str(error).splitlines()[0][:200], expected) from None
    _check_budget(loaded, str(path), 0)
    return loaded


def _check_budget(value, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InputError(where, "nesting too deep", f"a calibration nested at most {MAX_DEPTH} levels")
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise InputError(where, f"a string of {len(value)} characters", f"strings of at most {MAX_STRING} characters")
    elif isinstance(value, (dict, list)):
        if len(value) > MAX_ITEMS:
            raise InputError(where, f"{len(value)} entries", f"at most {MAX_ITEMS} entries per object or list")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            _check_budget(item, f"{where}.{key}" if isinstance(value, dict) else f"{where}[{key}]", depth + 1)


# --- field checks ---------------------------------------------------------------------------
def kind(value) -> str:
    """What a JSON value is, in words (for 'got …')."""
    return {bool: "a boolean", type(None): "null", str: "a string", dict: "an object",
            list: "a list"}.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def number(value, where: str, low: float = -math.inf, high: float = math.inf, what: str = "a finite number") -> float:
    """A finite number (not a boolean) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(where, value if isinstance(value, str) else kind(value), what)
    try:
        as_float = float(value)
    except OverflowError:
        raise InputError(where, f"an integer of {len(str(abs(value)))} digits", what) from None
    if not math.isfinite(as_float):
        raise InputError(where, value, what)
    if not low <= as_float <= high:
        raise InputError(where, value, f"{what} from {low:g} to {high:g}")
    return as_float


def optional_number(value, where: str, low: float = -math.inf, high: float = math.inf) -> float | None:
    return None if value is None else number(value, where, low, high)


def whole(value, where: str, low: int = 0, high: int = 2**63 - 1) -> int:
    """A whole number (``126`` or ``126.0``, not ``true``) in ``[low, high]``."""
    what = f"a whole number from {low} to {high}"
    as_float = number(value, where, what=what)
    if not as_float.is_integer() or not low <= as_float <= high:
        raise InputError(where, value, what)
    return int(value)


def text(value, where: str, default: str | None = None) -> str:
    """A string (``default`` when absent/null and a default is given)."""
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise InputError(where, kind(value), "a string")
    return value


def one_of(value, choices, where: str, default: str | None = None) -> str:
    value = text(value, where, default)
    if value not in choices:
        raise InputError(where, value, "one of " + ", ".join(closest(value, list(choices), len(choices))))
    return value


def mapping(value, where: str, expected: str, default: dict | None = None) -> dict:
    if value is None and default is not None:
        return default
    if not isinstance(value, dict):
        raise InputError(where, kind(value), expected)
    return value


def name_list(value, names, where: str, default: list | None = None) -> tuple[str, ...]:
    """A list of distinct names from ``names``."""
    if value is None and default is not None:
        value = default
    if not isinstance(value, list):
        raise InputError(where, kind(value), "a list of names")
    for item in value:
        if not isinstance(item, str) or item not in names:
            shown = item if isinstance(item, str) else kind(item)
            raise InputError(where, shown, "names among " + ", ".join(closest(str(shown), list(names), 5)))
    if len(set(value)) != len(value):
        raise InputError(where, value, "each name once")
    return tuple(value)


_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256(value, where: str) -> str:
    value = text(value, where, "")
    if value and not _SHA256.fullmatch(value):
        raise InputError(where, value, "a SHA-256 digest (64 lower-case hex digits) or empty")
    return value


def plain_json(value, where: str, depth: int = 0):
    """A value of a free-form field (provenance): strings, finite numbers, booleans, null,
    and lists/objects of them at most 3 levels deep."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return number(value, where)
    if depth >= 3:
        raise InputError(where, kind(value), "a plain value (nesting at most 3 levels)")
    if isinstance(value, list):
        return [plain_json(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    return {str(k): plain_json(v, f"{where}.{k}", depth + 1) for k, v in value.items()}


#: Provenance fields the project writes and shows, with the type each must have.
_PROVENANCE_TEXT = ("method", "data", "form", "errors", "target", "starting_calibration", "model_version", "note")


def provenance(value, where: str) -> dict:
    """The provenance object: known fields typed, the rest plain JSON values."""
    value = mapping(value, where, "an object (method, data, data_sha256, …)", default={})
    out = plain_json(value, where)
    for key in _PROVENANCE_TEXT:
        if key in out:
            text(out[key], f"{where}.{key}")
    if "data_sha256" in out:
        sha256(out["data_sha256"], f"{where}.data_sha256")
    if "level" in out:
        number(out["level"], f"{where}.level", 0.0, 1.0)
    if "n_rows" in out:
        whole(out["n_rows"], f"{where}.n_rows")
    return out


#: Inputs whose fitted range is the set of values seen, not an interval.
CATEGORICAL_INPUTS = ("platform", "hugepage_bytes")


def input_ranges(value, where: str) -> dict:
    """``{input: [low, high]}``: numbers with low ≤ high; for the categorical inputs
    (``platform``, ``hugepage_bytes``) the list of values seen."""
    value = mapping(value, where, "an object of input → [low, high]", default={})
    out = {}
    for name, span in value.items():
        here = f"{where}.{name}"
        if name in CATEGORICAL_INPUTS:
            if not isinstance(span, list) or not 1 <= len(span) <= 8:
                raise InputError(here, kind(span), "a list of the values seen (1 to 8)")
            out[name] = [text(v, f"{here}[{i}]") if name == "platform" else number(v, f"{here}[{i}]")
                         for i, v in enumerate(span)]
            continue
        if not isinstance(span, list) or len(span) != 2:
            raise InputError(here, kind(span), "a list [low, high]")
        if all(isinstance(v, str) for v in span):
            out[name] = list(span)
            continue
        low, high = number(span[0], f"{here}[0]"), number(span[1], f"{here}[1]")
        if low > high:
            raise InputError(here, span, "low ≤ high")
        out[name] = [span[0], span[1]]
    return out


def metrics(value, where: str) -> dict:
    """``{metric: number or null}``."""
    value = mapping(value, where, "an object of metric → number", default={})
    return {name: optional_number(v, f"{where}.{name}") for name, v in value.items()}


def values_of(value, names: Mapping, where: str) -> dict:
    """``{coefficient: value}`` with names from ``names``, each finite."""
    value = mapping(value, where, "an object of coefficient → value", default={})
    for name in value:
        if name not in names:
            raise InputError(where, name, "coefficient names: " + ", ".join(closest(name, list(names), 5)))
    return {name: number(v, f"{where}.{name}") for name, v in value.items()}
