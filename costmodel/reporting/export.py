"""Export an executed notebook for readers: one self-contained HTML page, and a PDF.

- **HTML** with the code hidden, formulas rendered at export time to inline SVG
  (:mod:`~costmodel.reporting.mathsvg`), images embedded as ``data:`` URIs and the style
  sheet ``report.css`` inlined: one file, no external URL, so it reads the same with the
  network off;
- **PDF** printed from that HTML by WeasyPrint (no TeX), its formulas in their lighter print
  form (:mod:`~costmodel.reporting.mathprint`); ``engine="latex"`` uses nbconvert's
  LaTeX exporter instead, where ``xelatex`` is installed.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from costmodel import __version__, parse
from costmodel.errors import Argument, InputError
from costmodel.reporting.mathsvg import _import_quietly, math_svg, render_math
from costmodel.reporting.notebooks import NOTEBOOKS_DIR
from costmodel.reporting.summary import SUMMARY_TAG

FORMATS = ("html", "pdf")
PDF_ENGINES = ("weasyprint", "latex")


#: Notebook metadata that changes from run to run (papermill's clock, Jupyter's message times).
_CLOCK_KEYS = ("start_time", "end_time", "duration")


def to_ipynb(nb, source: str) -> bytes:
    """The executed notebook as ``.ipynb`` bytes that the same inputs always reproduce.

    Papermill's and Jupyter's timestamps and durations are dropped, the cells papermill
    inserted get ids from their place (nbformat draws them at random), and the input is
    named by ``source`` (papermill records a notebook given as an object whole).
    """
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    run = nb.metadata.get("papermill")
    if run is not None:
        for key in _CLOCK_KEYS:
            run.pop(key, None)
        run["input_path"] = source
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        for key in _CLOCK_KEYS:
            cell.metadata.get("papermill", {}).pop(key, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = f"injected-parameters-{i}"
    return nbformat.writes(nb).encode()


@lru_cache(maxsize=1)
def style() -> str:
    """The report style sheet (``report.css`` beside this module), inlined into every page."""
    return (Path(__file__).resolve().parent / "report.css").read_text()


def _prepare_for_reader(nb):
    """A copy for readers: widgets in their initial state, summary cells dropped, stderr
    hidden, math rendered to SVG, cells numbered in order (their ids are random, and the
    page would differ from run to run)."""
    import copy

    from costmodel.reporting.widgets import static_widgets

    nb = copy.deepcopy(static_widgets(nb))  # widgets as the reader first saw them
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if SUMMARY_TAG in tags or "remove_cell" in tags:
            continue
        if cell.cell_type == "markdown":
            cell.source = render_math(cell.source)
        elif cell.cell_type == "code":
            outputs = []
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    continue
                data = output.get("data", {})
                if "text/markdown" in data:
                    data["text/markdown"] = render_math(data["text/markdown"])
                if "text/latex" in data and not ({"text/html", "text/markdown", "image/png", "image/svg+xml"} & set(data)):
                    latex = data["text/latex"].strip().strip("$")
                    data["text/html"] = f'<div class="math-block">{math_svg(latex)}</div>'
                outputs.append(output)
            cell.outputs = outputs
        if "id" in cell:
            cell.id = f"cell-{len(cells)}"
        cells.append(cell)
    nb.cells = cells
    return nb


def to_html(nb, title: str | None = None) -> str:
    """The executed notebook as one self-contained HTML page for readers.

    Code hidden, math as inline SVG, images as ``data:`` URIs, a small print style sheet;
    no script, no external URL.
    """
    from nbconvert import HTMLExporter

    reader = _prepare_for_reader(nb)
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, exclude_anchor_links=True)
    import logging

    logging.getLogger("traitlets").setLevel(logging.ERROR)  # "alternative text missing" on figures
    body, _ = exporter.from_notebook_node(reader)
    body = re.sub(r"<script\b.*?</script>", "", body, flags=re.S)  # widget state etc.: not for paper
    body = without_event_handlers(body)
    title = title or _title(nb)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            f"<meta name=\"generator\" content=\"costmodel {__version__}\">"
            f"<title>{html.escape(title)}</title><style>{style()}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


#: What a report page may load: its inline style and its own ``data:`` images and fonts;
#: no script (not even an event handler), no remote or local file, no form.
CSP = ("default-src 'none'; img-src data:; font-src data:; style-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'")
_TAG = re.compile(r"<[A-Za-z][^<>]*>")
_HANDLER = re.compile(r"""\s+on[A-Za-z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""")


def without_event_handlers(markup: str) -> str:
    """``markup`` with every ``on…=`` attribute (onerror, onload, …) removed from its tags:
    a second line behind escaping and the page's Content-Security-Policy."""
    return _TAG.sub(lambda tag: _HANDLER.sub("", tag[0]), markup)


def data_only_fetcher():
    """A WeasyPrint URL fetcher that loads ``data:`` URIs and refuses everything else
    (``file:``, ``http(s):``, relative paths): a report prints only what it embeds."""
    import weasyprint

    def refuse(url: str):
        raise ValueError(f"costmodel reports load only their own data: URIs; refused {url[:80]!r}")

    urls = getattr(weasyprint, "urls", None)
    if hasattr(urls, "URLFetcher"):  # WeasyPrint ≥ 68: a fetcher object
        class DataOnly(urls.URLFetcher):
            def fetch(self, url, headers=None):
                if not str(url).lower().startswith("data:"):
                    refuse(url)
                return super().fetch(url, headers)

        return DataOnly(allowed_protocols=("data",), allow_redirects=False, timeout=1)

    def fetch(url, timeout=1, ssl_context=None):  # older WeasyPrint: a function
        if not str(url).lower().startswith("data:"):
            refuse(url)
        return weasyprint.default_url_fetcher(url, timeout=timeout, ssl_context=ssl_context)

    return fetch


def _title(nb) -> str:
    """The first level-1 heading, in a Markdown cell or a Markdown output."""
    for cell in nb.cells:
        texts = [cell.source] if cell.cell_type == "markdown" else [
            o.get("data", {}).get("text/markdown", "") for o in cell.get("outputs", [])]
        for text in texts:
            match = re.search(r"^#\s+(.+)$", text, re.M)
            if match:
                return re.sub(r"[`*$\\]", "", match[1]).strip()
    return "costmodel report"


def external_references(html_text: str) -> list[str]:
    """URLs an HTML page would fetch or link to (``src``/``href``/``url()``/``@import``)."""
    pattern = re.compile(r"""(?:\b(?:src|href|srcset|data|action)\s*=\s*["']?|url\(\s*["']?|@import\s+["']?)\s*((?:https?:)?//[^"')\s>]+)""", re.I)
    return sorted(set(pattern.findall(html_text)))


def check_engine(engine: str) -> str:
    """The PDF engine, checked to be usable (``latex`` needs ``xelatex`` on PATH)."""
    engine = parse.choice(engine, PDF_ENGINES, Argument("pdf_engine"))
    if engine == "latex" and shutil.which("xelatex") is None:
        raise InputError(Argument("pdf_engine"), "latex", "xelatex on PATH (Debian: apt-get install texlive-xetex "
                         "texlive-fonts-recommended texlive-plain-generic), or the default engine weasyprint")
    return engine


def to_pdf(html_text: str | None = None, nb=None, engine: str = "weasyprint", cached: bool = True) -> bytes:
    """Print the report to PDF: WeasyPrint from the HTML, or LaTeX from the notebook.

    With ``cached``, a page WeasyPrint printed before on this host is read back from the
    on-disk cache (:mod:`~costmodel.reporting.pdfcache`: keyed on the exact page and what
    prints it).

    Raises :class:`InputError` when the LaTeX engine is asked for without ``xelatex``,
    and :class:`RuntimeError` when the engine produced an empty document.
    """
    engine = parse.choice(engine, PDF_ENGINES, Argument("pdf_engine"))
    if engine == "weasyprint":
        import logging

        weasyprint = _import_quietly("weasyprint")
        logging.getLogger("weasyprint").setLevel(logging.ERROR)
        logging.getLogger("fontTools").setLevel(logging.ERROR)
        from costmodel.reporting import pdfcache
        from costmodel.reporting.mathprint import for_print

        entry = pdfcache.key(html_text) if cached else None
        data = pdfcache.read(entry) if entry else None
        if data is None:
            data = weasyprint.HTML(string=for_print(html_text), base_url=str(NOTEBOOKS_DIR),
                                   url_fetcher=data_only_fetcher()).write_pdf()
            if entry and data and data.startswith(b"%PDF"):
                pdfcache.write(entry, data)
    else:
        check_engine(engine)
        from nbconvert import PDFExporter

        exporter = PDFExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
        reader = _prepare_for_reader(nb)
        data, _ = exporter.from_notebook_node(reader)
    if not data or not data.startswith(b"%PDF"):
        raise RuntimeError(f"the {engine} PDF engine wrote no PDF ({len(data or b'')} bytes)")
    return data


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``html,pdf`` → ``("html", "pdf")``; each checked."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = tuple(dict.fromkeys(parse.choice(i.strip().lower(), FORMATS, Argument("to")) for i in items if i.strip()))
    if not out:
        raise InputError(Argument("to"), str(text), "html, pdf or html,pdf")
    return out
