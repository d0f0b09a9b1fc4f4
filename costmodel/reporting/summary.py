"""A report's key numbers: published by the notebook in a cell tagged ``summary``."""

from __future__ import annotations

import json

#: Cells with this tag carry the report's key numbers as ``application/json``; not shown.
SUMMARY_TAG = "summary"


#: Key numbers shown in a batch's index, in this order, when a report provides them.
SUMMARY_KEYS = ("splits", "merges", "split_merge_share", "conversion_cycles", "vmemmap_bytes",
                "huge_mapped_fraction")


def summary_of(nb) -> dict:
    """The key numbers a notebook published in its cell tagged ``summary``."""
    for cell in nb.cells:
        if SUMMARY_TAG in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "application/json" in data:
                    value = data["application/json"]
                    return json.loads(value) if isinstance(value, str) else dict(value)
    return {}
