"""A batch's index page: one row per report with links, parameters and key numbers.

Beside ``index.html`` it writes ``index.csv`` and ``index.json`` with the same rows (each
entry's effective parameters and key numbers, without float noise) for scripts, and the
page carries a chart of the key numbers across the entries. Headers come from the model's
registry (:data:`costmodel.model.variables.QUANTITIES`: meaning and unit); every parameter
shows the value the report used, defaults included (in grey).
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from costmodel import __version__
from costmodel.render import numbers
from costmodel.reporting.export import style
from costmodel.reporting.summary import SUMMARY_KEYS

#: Short column headers of the key numbers; the registry's meaning is the tooltip.
SHORT = {"splits": "splits", "merges": "merges", "split_merge_share": "split/merge share",
         "conversion_cycles": "conversion cycles", "vmemmap_bytes": "vmemmap", "huge_mapped_fraction": "huge-mapped"}
#: Parameter name → the registry quantity it sets (for the header's meaning and unit).
PARAMETER_QUANTITY = {"memory": "memory_bytes", "vcpus": "vcpus", "hugepage": "hugepage_bytes",
                      "numa_nodes": "numa_nodes", "lowmem": "lowmem_bytes", "boot_vcpus": "vcpus"}
#: Key numbers drawn in the index's chart (log scale: counts at 2 MiB and 1 GiB differ ~100x).
CHARTED = ("splits", "merges")


@dataclass
class Row:
    """One entry of the index: its number, report name, effective parameters and key numbers."""

    index: int
    name: str
    ok: bool
    reason: str
    parameters: dict = field(default_factory=dict)
    defaulted: set = field(default_factory=set)
    summary: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)

    def record(self) -> dict:
        """The row as plain JSON values (parameters, then key numbers)."""
        out = {"index": self.index, "name": self.name, "status": "ok" if self.ok else "failed", "error": self.reason}
        out.update({k: numbers.rounded(v) for k, v in self.parameters.items()})
        out.update({k: numbers.rounded(v) for k, v in self.summary.items() if k in SUMMARY_KEYS})
        return out


def _reason(outcome) -> str:
    """The failure without the prefixes the row already says (``entry 1 {…}: entry 1: …``)."""
    text = str(outcome.error or "")
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"^entry \d+(?: \{[^}]*\})?:\s*", "", text)
    return text


def _defaults(notebook: str = "report") -> dict:
    from costmodel.reporting.notebooks import _literal, notebook_parameters, read_notebook

    try:
        return {n: _literal(p.default) for n, p in notebook_parameters(read_notebook(notebook)).items()}
    except Exception:  # noqa: BLE001 - an index is written even if the notebook cannot be read
        return {}


def rows_of(outcomes: Sequence, defaults: Mapping[str, object] | None = None) -> list[Row]:
    """The index's rows: given parameters, the notebook's defaults for the rest."""
    defaults = dict(_defaults() if defaults is None else defaults)
    given = list(dict.fromkeys(k for o in outcomes for k in o.parameters))
    rows = []
    for o in outcomes:
        parameters, defaulted = {}, set()
        for key in given:
            if key in o.parameters:
                parameters[key] = o.parameters[key]
            else:
                parameters[key] = defaults.get(key)
                defaulted.add(key)
        rows.append(Row(o.index, o.name or "", o.ok, _reason(o), parameters, defaulted, dict(o.summary),
                        {kind: Path(p).name for kind, p in o.paths.items()}))
    return rows


def _header(key: str) -> tuple[str, str]:
    """``(label, tooltip)`` of a column from the registry."""
    from costmodel.model.variables import QUANTITIES

    name = PARAMETER_QUANTITY.get(key, key)
    if name in QUANTITIES:
        q = QUANTITIES[name]
        label = SHORT.get(key, key.replace("_", " "))
        unit = "%" if key.endswith(("_share", "_fraction")) else q.unit
        return (f"{label} [{unit}]" if unit not in ("", "B") and key in SHORT else label), q.meaning
    return key.replace("_", " "), key


def _sort_value(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return repr(float(value))
    return str(value)


def _chart(rows: Sequence[Row]) -> str:
    """An inline PNG (2x) of the charted numbers per entry, with alt text; empty without data."""
    import base64
    import io

    done = [r for r in rows if r.ok and all(k in r.summary for k in CHARTED)]
    if not done:
        return ""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 2.6), layout="constrained")
    x = np.arange(len(done))
    width = 0.8 / len(CHARTED)
    colors = ("#1f77b4", "#ff7f0e")
    for k, key in enumerate(CHARTED):
        values = np.array([float(r.summary[key]) for r in done])
        ax.bar(x + (k - (len(CHARTED) - 1) / 2) * width, np.maximum(values, 1e-3), width, label=key, color=colors[k])
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels([f"#{r.index}" for r in done], fontsize=7)
    ax.set_xlabel("entry")
    ax.set_ylabel("hugepages [1] (log scale)")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(CHARTED), frameon=False)
    ax.grid(True, axis="y", alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=200)
    plt.close(fig)
    alt = (f"Bar chart of {' and '.join(CHARTED)} (log scale) for the {len(done)} reports written, by entry number; "
           "the numbers are in the table below and in index.csv.")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<figure class="index-chart"><img src="data:image/png;base64,{data}" width="900" alt="{html.escape(alt)}">' \
           f"<figcaption>{html.escape(alt)}</figcaption></figure>"


_SORT_SCRIPT = """<script>
document.querySelectorAll("table.index th").forEach((th, column) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const up = th.dataset.order !== "up"; th.dataset.order = up ? "up" : "down";
  const key = row => row.cells[column].dataset.sort ?? row.cells[column].textContent;
  const cmp = (a, b) => { const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
    return (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y); };
  [...body.rows].sort((a, b) => up ? cmp(a, b) : cmp(b, a)).forEach(r => body.appendChild(r));
}));
</script>"""

_INDEX_CSS = """
body { max-width: 1240px; }
table.index { width: 100%; table-layout: auto; font-size: 8.5pt; }
table.index th { cursor: pointer; white-space: normal; vertical-align: bottom; }
table.index th.num, table.index td.num { text-align: right; white-space: nowrap; }
table.index td.name { max-width: 15em; }
table.index td.name code { overflow-wrap: anywhere; font-size: 7.5pt; background: none; }
table.index td.default { color: #777; font-style: italic; }
table.index td.reason { max-width: 26em; overflow-wrap: anywhere; }
.failed { color: #b00020; font-weight: bold; } tr.failed-row { background: #fff1f1; }
figure.index-chart { margin: 0.5em 0; } figure.index-chart img { max-width: 100%; height: auto; }
figure.index-chart figcaption { font-size: 8pt; color: #555; }
"""


def _title(title: str, count: int) -> str:
    match = re.fullmatch(r"costmodel reports \((.+)\)", title)
    return f"costmodel: {count} reports of the sweep {match[1]}" if match else title


def write_index(outcomes: Sequence, outdir: str | os.PathLike, title: str = "costmodel reports",
                defaults: Mapping[str, object] | None = None) -> Path:
    """Write ``outdir/index.html``, ``index.csv`` and ``index.json``: one row per entry with
    links, effective parameters (defaults from the notebook in grey) and key numbers.

    Returns the path of ``index.html``.
    """
    from costmodel.files import atomic_write_text

    outdir = Path(outdir)
    rows = rows_of(outcomes, defaults)
    keys = [k for k in SUMMARY_KEYS if any(k in r.summary for r in rows)]
    parameter_keys = list(rows[0].parameters) if rows else []
    title = _title(title, len(rows))

    heads = [("#", "entry", True), ("report", "links to the report's files", False)]
    heads += [(*_header(k), isinstance(next((r.parameters[k] for r in rows if r.parameters.get(k) is not None), ""),
                                       (int, float))) for k in parameter_keys]
    heads += [(*_header(k), True) for k in keys] + [("status", "written or why not", False)]
    body = []
    for r in rows:
        order = ("html", "pdf", "ipynb")
        links = " ".join(f'<a href="{html.escape(href)}">{kind}</a>'
                         for kind, href in sorted(r.links.items(), key=lambda kv: order.index(kv[0])
                                                  if kv[0] in order else 9))
        cells = [f'<td class="num">{r.index}</td>',
                 f'<td class="name">{links}<br><code>{html.escape(r.name or "–")}</code></td>']
        for k in parameter_keys:
            value = r.parameters.get(k)
            shown = "–" if value is None else numbers.format_value(PARAMETER_QUANTITY.get(k, k), value) \
                if not isinstance(value, str) else value
            klass = ("num " if isinstance(value, (int, float)) and not isinstance(value, bool) else "") + \
                ("default" if k in r.defaulted else "")
            cells.append(f'<td class="{klass.strip()}" data-sort="{html.escape(_sort_value(value))}"'
                         + (' title="default"' if k in r.defaulted else "") + f">{html.escape(str(shown))}</td>")
        for k in keys:
            value = r.summary.get(k)
            shown = numbers.format_value(k, value) if value is not None else "–"
            cells.append(f'<td class="num" data-sort="{html.escape(_sort_value(value))}">{html.escape(shown)}</td>')
        cells.append("<td>ok</td>" if r.ok else f'<td class="reason"><span class="failed">failed</span>: '
                     f"{html.escape(r.reason)}</td>")
        body.append("<tr" + ("" if r.ok else ' class="failed-row"') + ">" + "".join(cells) + "</tr>")
    failed = sum(not r.ok for r in rows)
    header = "".join(f'<th{" class=num" if numeric else ""} title="{html.escape(tip)}">{html.escape(label)}</th>'
                     for label, tip, numeric in heads)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{style()}{_INDEX_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{len(rows)} reports: {len(rows) - failed} written, {failed} failed. costmodel {__version__}. "
        'The same rows as <a href="index.csv">index.csv</a> and <a href="index.json">index.json</a>; '
        "click a header to sort; grey values are the notebook's defaults.</p>"
        + _chart(rows)
        + f'<table class="index"><thead><tr>{header}</tr></thead><tbody>' + "".join(body) + "</tbody></table>"
        + _SORT_SCRIPT + "</body></html>\n")
    records = [r.record() for r in rows]
    atomic_write_text(outdir / "index.json", json.dumps(records, indent=1, default=str) + "\n")
    atomic_write_text(outdir / "index.csv", _csv(records))
    return atomic_write_text(outdir / "index.html", page)


def _csv(records: list[dict]) -> str:
    import csv
    import io

    columns = list(dict.fromkeys(k for r in records for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    return buffer.getvalue()
