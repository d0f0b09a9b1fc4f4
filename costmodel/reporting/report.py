"""One report: run a parameterised notebook and write its HTML, PDF and executed notebook.

File names follow from the parameters (``snp-16GiB-16vcpu-2M-status_quo.html``). Everything
is rendered in memory and then moved into place file by file with ``os.replace``; a failed
run leaves nothing behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from costmodel import files as files_module
from costmodel import parse
from costmodel.errors import Argument
from costmodel.reporting.execute import WarmKernel, execute
from costmodel.reporting.export import (
    FORMATS,
    PDF_ENGINES,
    parse_formats,
    to_html,
    to_pdf,
)
from costmodel.reporting.notebooks import (
    check_parameters,
    notebook_parameters,
    notebook_path,
    read_notebook,
    report_name,
)
from costmodel.reporting.summary import summary_of


@dataclass
class Rendered:
    """What :func:`render` wrote."""

    name: str
    parameters: dict
    paths: dict[str, Path]
    summary: dict = field(default_factory=dict)
    seconds: float = 0.0


def _write_all(files: Mapping[Path, bytes]) -> None:
    """Write every file beside its target first, then rename them all into place."""
    staged = []
    try:
        for target, data in files.items():
            staged.append((files_module.staged_copy(target, data), target))
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)


def _inputs(values: Mapping[str, object], outdir: Path) -> dict[str, str]:
    """Links to the files a report read (calibration, data), relative to the report."""
    from urllib.parse import quote

    return {f"{key} ({Path(str(values[key])).name})":
            quote(os.path.relpath(Path(str(values[key])).resolve(), outdir.resolve()).replace(os.sep, "/"))
            for key in ("calibration", "data") if values.get(key)}


def with_links(page: str, links: Mapping[str, str]) -> str:
    """The page with a bar of links (its PDF, its notebook, its inputs) at the top of the body."""
    import html

    if not links:
        return page
    items = " · ".join(f'<a href="{html.escape(href)}">{html.escape(label)}</a>' for label, href in links.items())
    bar = f'<nav class="report-links" aria-label="this report\'s files">This report as {items}</nav>\n'
    return page.replace("<body>\n", "<body>\n" + bar, 1)


def render(parameters: Mapping[str, object] | None = None, notebook: str | os.PathLike = "report",
           outdir: str | os.PathLike = "reports", formats: Sequence[str] = FORMATS,
           pdf_engine: str = "weasyprint", name: str | None = None, kernel: WarmKernel | None = None,
           progress=None) -> Rendered:
    """Execute ``notebook`` with ``parameters`` and write the report into ``outdir``.

    Parameters
    ----------
    parameters : mapping, optional
        Notebook parameters (``memory``, ``vcpus``, …); unknown names are an error listing
        the notebook's parameters, closest first.
    notebook : str or path
        A name in ``costmodel/notebooks/`` or a path to a ``.py``/``.ipynb`` notebook.
    outdir : path
        Where ``NAME.ipynb``, ``NAME.html`` and ``NAME.pdf`` go.
    formats : sequence of str
        ``html`` and/or ``pdf`` (the PDF is printed from the HTML); the executed
        notebook is always written.
    pdf_engine : str
        ``weasyprint`` (default, no TeX) or ``latex`` (needs ``xelatex``).
    name : str, optional
        File stem; default from the parameters (:func:`report_name`).
    kernel : WarmKernel, optional
        Run on this kernel instead of starting one (what batch workers do).
    progress : callable, optional
        ``progress(k, n, what)``: called after each of the ``n`` code cells (``what`` is the
        cell's first line), then with ``k = n`` and ``what`` ``export`` before the export.

    Returns
    -------
    Rendered
        Paths written, the key numbers and the wall time. [s]
    """
    import nbformat

    start = time.perf_counter()
    formats = parse_formats(formats)
    pdf_engine = parse.choice(pdf_engine, PDF_ENGINES, Argument("pdf_engine"))
    path = notebook_path(notebook)
    declared = notebook_parameters(read_notebook(path))
    values = check_parameters(dict(parameters or {}), declared)
    name = name or report_name(path.stem, values, declared)
    warm = ("html", "pdf") if "pdf" in formats and pdf_engine == "weasyprint" else ("html",)
    executed = execute(path, values, kernel=kernel, exporters=warm, progress=progress)
    if progress is not None:
        total = sum(c.cell_type == "code" for c in executed.cells)
        progress(total, total, "export")
    outdir = Path(outdir)
    files: dict[Path, bytes] = {outdir / f"{name}.ipynb": nbformat.writes(executed).encode()}
    page = to_html(executed) if ("html" in formats or pdf_engine == "weasyprint") else None
    if "pdf" in formats:  # printed without the links bar: on paper the links lead nowhere
        files[outdir / f"{name}.pdf"] = to_pdf(page, executed, pdf_engine)
    if "html" in formats:
        links = {"PDF": f"{name}.pdf"} if "pdf" in formats else {}
        links["notebook"] = f"{name}.ipynb"
        links.update(_inputs(values, outdir))
        files[outdir / f"{name}.html"] = with_links(page, links).encode()
    _write_all(files)
    paths = {p.suffix[1:]: p for p in files}
    return Rendered(name, values, paths, summary_of(executed), time.perf_counter() - start)
