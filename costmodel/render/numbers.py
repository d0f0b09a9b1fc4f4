"""Numbers for people: sizes in binary units, counts, shares, cycles.

The one place the project formats a number for a reader (terminal tables, reports, cards,
index pages). Machine outputs (JSON, CSV) keep their values, except that :func:`rounded`
strips float noise (``622.0000000000001`` → ``622``) from what JSON prints.
"""

from __future__ import annotations

import math

import numpy as np

from costmodel.model.variables import QUANTITIES
from costmodel.units import GiB, KiB, MiB, TiB


def format_size(size_bytes: float) -> str:
    """Format bytes with the largest binary unit that keeps a short number (``16 GiB``)."""
    size = float(size_bytes)
    for unit, factor in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(size) >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value.is_integer() else f"{value:.3g} {unit}"
    return f"{size:.0f} B"


def format_hugepage(size_bytes: int) -> str:
    """Short hugepage label used in file names and tables: ``4K``, ``2M``, ``1G``."""
    return {4 * KiB: "4K", 2 * MiB: "2M", GiB: "1G"}.get(int(size_bytes), format_size(size_bytes))


def unit_of(name: str) -> str:
    """The unit of a named quantity or configuration column (``B``, ``cycles``, ``1``)."""
    if name in QUANTITIES:
        return QUANTITIES[name].unit
    return {"platform": "", "scenario": ""}.get(name, "1")


def format_value(name: str, value) -> str:
    """Format ``value`` of quantity ``name`` for people: ``16 GiB``, ``622``, ``7.00 %``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "on" if value else "off"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    unit = unit_of(name)
    if name == "hugepage_bytes":
        return format_hugepage(value)
    if unit == "B":
        return format_size(value)
    if name.endswith("_share") or name.endswith("_fraction"):
        return f"{100 * value:.2f} %"
    if unit == "cycles" and value == 0:
        return "0 cycles"
    if unit == "cycles":
        return f"{value:.3e} cycles".replace("e+0", "e").replace("e+", "e")
    if abs(value) >= 1e5:
        return f"{value:.3e}".replace("e+0", "e").replace("e+", "e")
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.4g}" if abs(value) >= 1 else f"{value:.3g}"


def format_plain(value: float) -> str:
    """A number on a chart or in a table cell without a unit: ``16,384``, ``597``, ``6.75``, ``0``."""
    if not np.isfinite(value):
        return ""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def format_significant(value: float, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits (``82.98``, ``1.9e+05``)."""
    return f"{value:.{digits}g}"


def format_statistic(value: float | None, digits: int = 4) -> str:
    """A fitted value or statistic: ``n/a`` when undefined, ``digits`` significant digits,
    scientific notation outside [1e-3, 1e6)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e6:
        return f"{value:.{digits}g}"
    return f"{value:.{digits - 1}e}"


#: Significant digits :func:`rounded` keeps: far below any input's precision, far above float noise.
ROUNDED_DIGITS = 9


def rounded(value, digits: int = ROUNDED_DIGITS):
    """``value`` without float noise, for JSON a person or a script reads: rounded to
    ``digits`` significant digits, an ``int`` when that is integral (``622.0000000000001`` →
    ``622``, ``29.999999999999993`` → ``30``, ``0.0`` → ``0``, ``0.06999999980841783`` → ``0.0699999998``).
    Non-floats (strings, bools, ints, None) and non-finite floats are returned as they are."""
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        return value.item() if isinstance(value, np.bool_) else value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if not isinstance(value, (float, np.floating)):
        return value
    value = float(value)
    if not math.isfinite(value):
        return value
    if value == 0:  # 0.0 and -0.0 print as 0, like every other whole number
        return 0
    out = float(f"{value:.{digits}g}")
    return int(out) if out.is_integer() and abs(out) < 2**53 else out


def json_safe(obj):
    """``obj`` for strict JSON: non-finite floats (NaN, ±Infinity) as None, NumPy scalars as
    Python numbers, keys as text, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj
