"""A batch's index page: one row per report with links, parameters and key numbers."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

from costmodel import __version__
from costmodel.render import numbers
from costmodel.reporting.export import style
from costmodel.reporting.summary import SUMMARY_KEYS


def write_index(outcomes: Sequence, outdir: str | os.PathLike, title: str = "costmodel reports") -> Path:
    """Write ``outdir/index.html``: one row per entry with links, parameters and key numbers."""
    outdir = Path(outdir)
    keys = [k for k in SUMMARY_KEYS if any(k in o.summary for o in outcomes)]
    parameter_keys = list(dict.fromkeys(k for o in outcomes for k in o.parameters))
    header = ["#", "report"] + parameter_keys + keys + ["status"]
    rows = []
    for o in outcomes:
        links = " ".join(f'<a href="{html.escape(Path(p).name)}">{kind}</a>'
                         for kind, p in sorted(o.paths.items(), key=lambda kv: ("html", "pdf", "ipynb").index(kv[0])))
        cells = [str(o.index), (html.escape(o.name or "–") + "<br>" + links) if links else html.escape(o.name or "–")]
        cells += [html.escape(str(o.parameters.get(k, ""))) for k in parameter_keys]
        cells += [html.escape(numbers.format_value(k, o.summary[k])) if k in o.summary else "–" for k in keys]
        status = "ok" if o.ok else f'<span class="failed">failed</span>: {html.escape(o.error)}'
        cells.append(status)
        rows.append("<tr" + ("" if o.ok else ' class="failed-row"') + ">" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    failed = sum(not o.ok for o in outcomes)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{style()}"
        "td:nth-child(2), td:last-child { text-align: left; } .failed { color: #b00020; font-weight: bold; }"
        "tr.failed-row { background: #fff1f1; }</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{len(outcomes)} reports: {len(outcomes) - failed} written, {failed} failed. "
        f"costmodel {__version__}.</p>"
        "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></body></html>\n")
    from costmodel.files import atomic_write_text

    return atomic_write_text(outdir / "index.html", page)
