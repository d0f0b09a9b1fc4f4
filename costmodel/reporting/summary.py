"""A report's key numbers: published by the notebook in a cell tagged ``summary``, read
back with :func:`read_summary` (the supported way to get a report's numbers in a script).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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


def read_summary(path: str | os.PathLike) -> dict:
    """The key numbers of a written report: its VM shape (resolved inputs) and outputs.

    ``path`` is the report's executed notebook (``NAME.ipynb``) or its HTML or PDF (the
    notebook beside it is read). Values are plain JSON numbers without float noise:
    integral counts are ints (``"splits": 622``), the rest keep 9 significant digits.

    >>> read_summary("reports/snp-16GiB-16vcpu-2M-status_quo.html")["splits"]  # doctest: +SKIP
    622
    """
    import nbformat

    from costmodel.errors import Argument, InputError

    path = Path(path)
    notebook = path if path.suffix == ".ipynb" else path.with_suffix(".ipynb")
    try:
        nb = nbformat.read(notebook, as_version=4)
    except OSError as error:
        raise InputError(Argument("path"), str(path), f"a report's .ipynb, or its .html/.pdf with the .ipynb beside it "
                         f"({notebook.name}: {error.strerror})") from None
    except Exception as error:  # noqa: BLE001 - nbformat's errors vary by version
        raise InputError(Argument("path"), str(notebook), f"an executed notebook written by costmodel report ({error})") \
            from None
    found = summary_of(nb)
    if not found:
        raise InputError(Argument("path"), str(notebook), f"a notebook with a cell tagged '{SUMMARY_TAG}' that ran "
                         "(costmodel's report notebook has one)")
    return found
