"""One report: run a parameterised notebook and write its HTML, PDF and executed notebook.

File names follow from the parameters (``snp-16GiB-16vcpu-2M-status_quo.html``). Everything
is rendered in memory (:func:`build`, what batch workers run) and then written as one set
(:func:`write`: all staged beside their targets, then moved into place with ``os.replace``);
a failed run leaves nothing behind.
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
    check_engine,
    parse_formats,
    to_html,
    to_ipynb,
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


@dataclass
class Built:
    """A report rendered in memory, not yet written: file contents by kind (``ipynb``, ``html``, ``pdf``).

    What a batch worker sends back to the client, which writes it (:func:`write`).
    """

    name: str
    parameters: dict
    files: dict[str, bytes]
    summary: dict = field(default_factory=dict)
    seconds: float = 0.0


def _write_all(files: Mapping[Path, bytes]) -> None:
    """Write every file beside its target first, then rename them all into place."""
    files_module.atomic_write_set(files)


def write(built: Built, outdir: str | os.PathLike) -> Rendered:
    """Write a built report's files into ``outdir`` as one set (all staged, then renamed)."""
    outdir = Path(outdir)
    files = dict(built.files)
    if "html" in files:
        links = {"PDF": f"{built.name}.pdf"} if "pdf" in files else {}
        links["notebook"] = f"{built.name}.ipynb"
        links.update(_inputs(built.parameters, outdir))
        files["html"] = with_links(files["html"].decode(), links).encode()
    targets = {outdir / f"{built.name}.{kind}": data for kind, data in files.items()}
    _write_all(targets)
    return Rendered(built.name, built.parameters, {p.suffix[1:]: p for p in targets}, built.summary, built.seconds)


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
    start = time.perf_counter()
    built = build(parameters, notebook, formats, pdf_engine, name, kernel, progress=progress, outdir=outdir)
    done = write(built, outdir)
    done.seconds = time.perf_counter() - start
    return done


def build(parameters: Mapping[str, object] | None = None, notebook: str | os.PathLike = "report",
          formats: Sequence[str] = FORMATS, pdf_engine: str = "weasyprint", name: str | None = None,
          kernel: WarmKernel | None = None, progress=None, outdir: str | os.PathLike | None = None) -> Built:
    """Execute ``notebook`` and render the report in memory; :func:`render` without the writing.

    With ``outdir``, the files it will write there are checked before the kernel starts
    (a batch's client checks them itself: workers may not see that directory)."""

    start = time.perf_counter()
    formats = parse_formats(formats)
    pdf_engine = parse.choice(pdf_engine, PDF_ENGINES, Argument("pdf_engine"))
    path = notebook_path(notebook)
    declared = notebook_parameters(read_notebook(path))
    values = check_parameters(dict(parameters or {}), declared, notebook=path.stem)
    name = files_module.check_file_name(name, Argument("name")) if name else report_name(path.stem, values, declared)
    kinds = ["ipynb", *(f for f in ("html", "pdf") if f in formats)]
    if outdir is not None:
        files_module.check_output_dir(outdir, [f"{name}.{kind}" for kind in kinds], Argument("output"),
                                      Argument("name"))
    if "pdf" in formats:
        check_engine(pdf_engine)  # a missing xelatex is found before the kernel runs
    warm = ("html", "pdf") if "pdf" in formats and pdf_engine == "weasyprint" else ("html",)
    executed = execute(path, values, kernel=kernel, exporters=warm, progress=progress)
    if progress is not None:
        total = sum(c.cell_type == "code" for c in executed.cells)
        progress(total, total, "export")
    files: dict[str, bytes] = {"ipynb": to_ipynb(executed, path.name)}
    page = to_html(executed) if ("html" in formats or pdf_engine == "weasyprint") else None
    if "pdf" in formats:  # printed without the links bar: on paper the links lead nowhere
        files["pdf"] = to_pdf(page, executed, pdf_engine)
    if "html" in formats:  # the links bar is added by write(): links to inputs depend on where it goes
        files["html"] = page.encode()
    return Built(name, values, files, summary_of(executed), time.perf_counter() - start)
