"""Numbers for people: sizes in binary units, counts, shares, cycles.

The one place the project formats a number for a reader (terminal tables, reports, cards,
index pages). Machine outputs (JSON, CSV) keep full precision and never pass through here.
"""

from __future__ import annotations

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
