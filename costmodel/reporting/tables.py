"""Evaluation frames for people: :func:`styled` shows a frame of
:func:`costmodel.evaluate.evaluate` with units in the headers and every value formatted by
:mod:`costmodel.render.numbers` (``16 GiB``, ``622``, ``7.00 %``, ``1.044e9 cycles``),
while the frame itself keeps full precision for computing.
"""

from __future__ import annotations

from costmodel.render import numbers


def header(column: str) -> str:
    """A column's header with its unit: ``splits [1]``, ``memory_bytes [B]``, ``platform``."""
    unit = numbers.unit_of(column)
    if column.endswith(("_share", "_fraction")):
        unit = "%"
    return f"{column} [{unit}]" if unit else column


def styled(frame, columns=None):
    """A pandas ``Styler`` of ``frame`` (or of its ``columns``) for notebooks and HTML:
    values formatted for people, units in the headers, numbers right-aligned, no index.

    >>> from costmodel.evaluate import evaluate
    >>> styled(evaluate({"memory_bytes": 16 * 2**30, "vcpus": [8, 16]}))  # doctest: +SKIP
    """
    shown = frame[list(columns)] if columns is not None else frame
    formats = {c: (lambda v, c=c: numbers.format_value(c, v)) for c in shown.columns}
    numeric = [c for c in shown.columns if shown[c].dtype.kind in "iuf"]
    return (shown.style.format(formats)
            .format_index(header, axis=1)
            .hide(axis="index")
            .set_properties(subset=numeric, **{"text-align": "right"}))
