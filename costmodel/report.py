"""Reports: run a parameterised notebook with papermill and export it, one or a batch.

A report is a notebook of ``notebooks/`` (a jupytext percent script, the source kept in
git) executed with papermill on the venv's ``python3`` kernel, then exported to

- **HTML** with the code hidden, formulas rendered at export time to inline SVG (ziamath),
  images embedded as ``data:`` URIs and a small print style sheet: one file, no external
  URL, so it reads the same with the network off;
- **PDF** printed from that HTML by WeasyPrint (no TeX); ``pdf_engine="latex"`` uses
  nbconvert's LaTeX exporter instead, where ``xelatex`` is installed;
- the executed notebook (``.ipynb``) beside them.

File names follow from the parameters (``snp-16GiB-16vcpu-2M-status_quo.html``). Everything
is rendered in memory and then moved into place file by file with ``os.replace``; a failed
run leaves nothing behind. :func:`render_batch` renders many reports in parallel processes
and writes ``index.html`` with a summary table.
"""

from __future__ import annotations

import base64
import concurrent.futures
import csv
import html
import itertools
import json
import multiprocessing
import os
import re
import shutil
import time

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from costmodel import __version__, units
from costmodel import files as files_module
from costmodel.units import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
#: The kernel the venv's ipykernel provides; never registered in the user's home.
KERNEL = "python3"
FORMATS = ("html", "pdf")
PDF_ENGINES = ("weasyprint", "latex")
#: Cells with this tag carry the report's key numbers as ``application/json``; not shown.
SUMMARY_TAG = "summary"
#: Key numbers shown in a batch's index, in this order, when a report provides them.
SUMMARY_KEYS = ("splits", "merges", "split_merge_share", "conversion_cycles", "vmemmap_bytes",
                "huge_mapped_fraction")


class ReportError(RuntimeError):
    """A notebook failed while running; says which cell and what was raised."""

    def __init__(self, notebook: str, cell_index, ename: str, evalue: str):
        self.notebook, self.cell_index, self.ename, self.evalue = notebook, cell_index, ename, evalue
        where = f"{notebook}, cell {cell_index}" if cell_index is not None else notebook
        super().__init__(f"{where}: {ename}: {evalue}")


# --- notebooks and their parameters ---------------------------------------------------------
def available_notebooks() -> list[str]:
    """Names of the notebooks in ``notebooks/`` (``report``, ``explore``, ``fit``)."""
    return sorted({p.stem for p in NOTEBOOKS_DIR.glob("*.py")} | {p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")})


def notebook_path(notebook: str | os.PathLike) -> Path:
    """The file of a notebook given by name (``report``) or path (``.py`` or ``.ipynb``)."""
    path = Path(notebook)
    if path.suffix in (".py", ".ipynb"):
        if not path.is_file():
            raise InputError("--notebook", str(notebook), "an existing .py (jupytext percent) or .ipynb file")
        return path.resolve()
    for suffix in (".py", ".ipynb"):
        candidate = NOTEBOOKS_DIR / f"{notebook}{suffix}"
        if candidate.is_file():
            return candidate
    names = available_notebooks()
    raise InputError("--notebook", str(notebook), "one of " + ", ".join(units.closest(str(notebook), names, len(names)))
                     + " or a path to a notebook")


def read_notebook(notebook: str | os.PathLike):
    """The notebook as an nbformat node (jupytext converts ``.py``); kernel ``python3``."""
    import jupytext
    import nbformat

    path = notebook_path(notebook)
    nb = jupytext.read(path) if path.suffix == ".py" else nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    for cell in nb.cells:  # papermill reads cell.metadata.tags on every cell
        cell.metadata.setdefault("tags", [])
    return nb


@dataclass(frozen=True)
class Parameter:
    """One parameter of a notebook's ``parameters`` cell."""

    name: str
    default: str
    help: str


def notebook_parameters(nb) -> dict[str, Parameter]:
    """The parameters declared in the cell tagged ``parameters``, in order."""
    from papermill.inspection import _infer_parameters

    return {p.name: Parameter(p.name, p.default, p.help) for p in _infer_parameters(nb, name=KERNEL, language="python")}


def _optional(parse):
    def parse_optional(value, where):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            return None
        return parse(value, where)
    return parse_optional


def _existing_file(value, where) -> str:
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise InputError(where, str(value), "an existing file")
    return str(path.resolve())


def _scenario(value, where) -> str:
    from costmodel.scenarios import SCENARIOS

    return units.parse_choice(value, list(SCENARIOS), where)


#: How the report notebooks' parameters are checked and normalised (same forms as predict).
PARAMETER_PARSERS = {
    "memory": lambda v, w: units.format_size(units.parse_size(v, w)).replace(" ", ""),
    "vcpus": units.parse_count,
    "virtqueues": _optional(units.parse_count),
    "hugepage": lambda v, w: units.format_hugepage(units.parse_hugepage(v, w)),
    "platform": units.parse_platform,
    "scenario": _scenario,
    "calibration": _optional(_existing_file),
    "data": _optional(_existing_file),
}


def check_parameters(given: Mapping[str, object], declared: Mapping[str, Parameter],
                     where: str = "parameter") -> dict[str, object]:
    """Check names against the notebook's parameters and normalise known values.

    Unknown names raise :class:`InputError` listing the notebook's parameters, closest
    first. Values of the names in :data:`PARAMETER_PARSERS` are parsed as ``predict``
    parses them and passed on in canonical form (``16GiB``, ``2M``); others pass as given.
    """
    out = {}
    for name, value in given.items():
        if name not in declared:
            names = list(declared)
            raise InputError(where, name, "a parameter of the notebook: "
                             + (", ".join(units.closest(name, names, len(names))) if names else "(it declares none)"))
        parse = PARAMETER_PARSERS.get(name)
        out[name] = parse(value, f"{where} {name}") if parse else _coerce(value, declared[name], f"{where} {name}")
    return out


def _coerce(value, parameter: Parameter, where: str):
    """Text from the command line or a CSV, typed like the parameter's default.

    ``-p size 41`` gives 41 when the default is a number, as papermill's own ``-p`` does;
    text stays text for text defaults.
    """
    if not isinstance(value, str):
        return value
    default = _literal(parameter.default)
    text = value.strip()
    if isinstance(default, bool):
        if text.lower() in ("true", "yes", "1", "false", "no", "0"):
            return text.lower() in ("true", "yes", "1")
        raise InputError(where, value, "true or false")
    if isinstance(default, (int, float)):
        try:
            number = float(text)
        except ValueError:
            raise InputError(where, value, f"a number (the default is {parameter.default})") from None
        return int(number) if isinstance(default, int) and number.is_integer() else number
    if default is None:
        literal = _literal(text)
        return literal if isinstance(literal, (int, float)) or literal is None else value
    return value


def _slug(text: object) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "_", str(text)).strip("_") or "x"


def report_name(notebook: str, parameters: Mapping[str, object], declared: Mapping[str, Parameter]) -> str:
    """The file stem a report's parameters give it (``snp-16GiB-16vcpu-2M-status_quo``).

    Defaults fill what is not given, so the name says the whole configuration. Notebooks
    other than ``report`` are named ``NAME-key_value-…`` from the parameters given.
    """
    if Path(notebook).stem == "report":
        values = {n: _literal(p.default) for n, p in declared.items()}
        values.update(parameters)
        values = check_parameters(values, declared)
        parts = [values["platform"], values["memory"], f"{values['vcpus']}vcpu", values["hugepage"], values["scenario"]]
        if values.get("virtqueues") is not None:
            parts.append(f"{values['virtqueues']}vq")
        for key in ("calibration", "data"):
            if values.get(key):
                parts.append(f"{key}_{Path(values[key]).stem}")
        return "-".join(_slug(p) for p in parts)
    parts = [Path(notebook).stem] + [f"{k}_{v}" for k, v in sorted(parameters.items())]
    return "-".join(_slug(p) for p in parts)


def _literal(text: str):
    """A parameter cell's default as a value (``'16GiB'`` → ``16GiB``, ``None`` → None)."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# --- execution ---------------------------------------------------------------------------------
_KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]  # local, short-lived: its TCP warning is noise
_RESET = "get_ipython().run_line_magic('reset', '-f')"


class WarmKernel:
    """A kernel kept across the reports one batch worker renders.

    Each report starts with ``%reset -f``: a fresh namespace, while the modules stay
    imported and their caches (the compiled model) stay warm, so the second report of a
    worker skips the kernel start, the imports and the compilation.
    """

    def __init__(self, cwd):
        from jupyter_client.manager import KernelManager

        self.cwd = str(cwd)
        self.manager = KernelManager(kernel_name=KERNEL)
        self.manager.start_kernel(extra_arguments=_KERNEL_ARGUMENTS, cwd=self.cwd)

    def ensure_alive(self) -> None:
        """Restart the kernel if a previous report killed it."""
        if not self.manager.is_alive():
            self.manager.restart_kernel(now=True)

    def close(self) -> None:
        if self.manager.has_kernel:
            self.manager.shutdown_kernel(now=True)


def _run_on(kernel: WarmKernel, nb, parameters: Mapping[str, object], path: Path, tagged: list[int],
            on_cell_executed=None):
    """Execute ``nb`` on a warm kernel with nbclient; papermill's parameter injection."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell
    from papermill.parameterize import parameterize_notebook

    if parameters:
        nb.metadata.setdefault("papermill", {})
        nb = parameterize_notebook(nb, dict(parameters), kernel_name=KERNEL, language="python")
    nb.cells.insert(0, new_code_cell(_RESET, metadata={"tags": []}))
    kernel.ensure_alive()
    client = NotebookClient(nb, km=kernel.manager, kernel_name=KERNEL, timeout=None, allow_errors=False,
                            on_cell_executed=on_cell_executed)
    try:
        client.execute()
    except CellExecutionError as error:
        index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                      and any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        source = nb.cells[index].source if index is not None else ""
        if index is not None:
            index -= 1  # the reset cell
            if parameters and tagged and index > tagged[0]:
                index -= 1  # the injected parameters cell
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")
        where = f"{index} ({first[:60]})" if first else index
        raise ReportError(_pretty(path), where, error.ename, _clean(error.evalue)) from None
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
    nb.cells.pop(0)
    return nb


def _warm_exporters(formats: tuple[str, ...]) -> None:
    """Import nbconvert and WeasyPrint and lay out a tiny page (fontconfig, Pango)."""
    import nbconvert  # noqa: F401

    if "pdf" in formats:
        to_pdf("<html><body><p>warm</p></body></html>")


class _MathPrefetch:
    """Render a notebook's formulas in a parent thread while the kernel still runs.

    The kernel is another process, and the parent only waits on it, so the SVG layout of
    each formula (the slow part of the export) overlaps the rest of the execution. The
    results land in :func:`math_svg`'s cache, where :func:`to_html` finds them.
    """

    def __init__(self, exporters: Sequence[str] = ()):
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="math-prefetch")
        if exporters:  # the exporters' imports and font setup, also while the kernel runs
            self.pool.submit(_warm_exporters, tuple(exporters))

    def text(self, text: str) -> None:
        if "$" in text:
            self.pool.submit(render_math, text)

    def notebook(self, nb) -> None:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                self.text(cell.source)

    def __call__(self, cell=None, **_) -> None:  # nbclient's on_cell_executed hook
        for output in (cell or {}).get("outputs", []):
            self.text(output.get("data", {}).get("text/markdown", ""))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def execute(notebook: str | os.PathLike, parameters: Mapping[str, object] | None = None, cwd=None,
            kernel: WarmKernel | None = None, exporters: Sequence[str] = ()):
    """Run a notebook with papermill and return the executed node.

    With ``kernel``, runs on that warm kernel instead of starting one (batches).
    ``exporters`` (``html``, ``pdf``) are prepared in a parent thread meanwhile.
    Raises :class:`ReportError` naming the failing cell (its index in the notebook) and
    the exception it raised.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = notebook_path(notebook)
    nb = read_notebook(path)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    prefetch = _MathPrefetch(exporters)
    prefetch.notebook(nb)
    try:
        if kernel is not None:
            return _run_on(kernel, nb, parameters or {}, path, tagged, prefetch)
        return papermill.execute_notebook(
            nb, None, parameters=dict(parameters or {}), kernel_name=KERNEL, progress_bar=False,
            cwd=str(cwd or path.parent), log_output=False, extra_arguments=_KERNEL_ARGUMENTS,
            on_cell_executed=prefetch)
    except PapermillExecutionError as error:
        # papermill inserts a cell after the parameters cell: give the index in the source
        index = error.cell_index
        if parameters and tagged and index > tagged[0]:
            index -= 1
        first = next((line.strip() for line in str(error.source).splitlines() if line.strip()), "")
        where = f"{index} ({first[:60]})" if first else index
        raise ReportError(_pretty(path), where, error.ename, _clean(error.evalue)) from None
    finally:
        prefetch.close()


def _pretty(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _clean(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()


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


def _import_quietly(name: str):
    """Import a renderer, silencing its own import-time deprecation notices.

    ziamath 0.13 opens its font with the legacy ``importlib.resources.path``; WeasyPrint
    warns when HarfBuzz-Subset is absent (``make setup`` installs it). Neither is ours to fix,
    and neither changes the output.
    """
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r"(path is deprecated|HarfBuzz)")
        return importlib.import_module(name)


# --- math: LaTeX to inline SVG at export time --------------------------------------------------
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)(?<!\\)\$")
_ALIGNED = re.compile(r"^\s*\\begin\{(aligned|align\*?)\}(.*)\\end\{\1\}\s*$", re.S)


@lru_cache(maxsize=4096)
def math_svg(latex: str, size: float = 15.0, inline: bool = False) -> str:
    """``latex`` as an ``<img>`` with an inline SVG ``data:`` URI (no network, no fonts).

    ziamath lays out TeX math in pure Python with its bundled STIX font. The image sits on
    the text baseline (``vertical-align`` from the SVG's descent). Falls back to the LaTeX
    source in ``<code>`` when ziamath cannot lay out a command, so nothing is dropped.
    """
    ziamath = _import_quietly("ziamath")
    # ziamath sets \min/\max as big operators with (empty) limits: a stray mark below them
    source = re.sub(r"\\(min|max)\b", r"\\operatorname{\1}", latex)
    try:
        svg = ziamath.Latex(source, size=size).svg()
    except Exception:  # noqa: BLE001 - unsupported TeX: show the source instead of failing
        return f'<code class="math-source">{html.escape(latex)}</code>'
    match = re.search(r'width="([0-9.]+)" height="([0-9.]+)" viewBox="([-0-9.]+) ([-0-9.]+) ', svg)
    style = ""
    if match:
        width, height, ymin = float(match[1]), float(match[2]), float(match[4])
        descent = height + ymin
        style = f' style="width:{width:.1f}px;height:{height:.1f}px;vertical-align:{-descent:.1f}px"'
    data = base64.b64encode(svg.encode()).decode()
    kind = "math-inline" if inline else "math-display"
    return f'<img class="{kind}" alt="{html.escape(latex, quote=True)}" src="data:image/svg+xml;base64,{data}"{style}>'


def _display_math(latex: str) -> str:
    """A display formula; ``aligned`` blocks become one row per line (they break across pages)."""
    match = _ALIGNED.match(latex)
    if not match:
        return f'<div class="math-block">{math_svg(latex.strip())}</div>'
    rows = []
    for line in re.split(r"\\\\\s*(?:\n|$)", match[2]):
        if not line.strip():
            continue
        left, _, right = line.partition("&")
        right = right.strip()
        relation = "="
        for rel in ("=", r"\approx", r"\le", r"\ge"):
            if right.startswith(rel):
                relation, right = rel, right[len(rel):].strip()
                break
        cells = [math_svg(left.strip()) if left.strip() else "", math_svg(relation), math_svg(right) if right else ""]
        rows.append("<tr>" + "".join(f'<td class="{c}">{v}</td>' for c, v in zip(("lhs", "rel", "rhs"), cells)) + "</tr>")
    return '<table class="math-aligned"><tbody>' + "".join(rows) + "</tbody></table>"


def render_math(text: str) -> str:
    """Replace ``$$…$$`` and ``$…$`` in Markdown/HTML text with inline SVG images."""
    text = _DISPLAY_MATH.sub(lambda m: "\n\n" + _display_math(m[1]) + "\n\n", text)
    return _INLINE_MATH.sub(lambda m: math_svg(m[1].strip(), size=13.0, inline=True), text)


def _prepare_for_reader(nb):
    """A copy for readers: summary cells dropped, stderr hidden, math rendered to SVG."""
    import copy

    nb = copy.deepcopy(nb)
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
        cells.append(cell)
    nb.cells = cells
    return nb


# --- HTML and PDF --------------------------------------------------------------------------------
STYLE = """
@page { size: A4; margin: 15mm 13mm 16mm 13mm;
        @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #666; } }
html { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10pt; color: #1a1a1a; }
body { max-width: 190mm; margin: 0 auto; padding: 0 4mm; line-height: 1.4; }
h1 { font-size: 18pt; margin: 0.2em 0 0.4em; border-bottom: 2px solid #345; padding-bottom: 0.2em; }
h2 { font-size: 13.5pt; margin: 1.2em 0 0.4em; color: #234; border-bottom: 1px solid #ccd; break-after: avoid; }
h3 { font-size: 11.5pt; margin: 1em 0 0.3em; break-after: avoid; }
p, li { orphans: 3; widows: 3; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 0.88em; background: #f3f4f6; padding: 0 2px; }
pre { white-space: pre-wrap; word-break: break-word; font-size: 8.5pt; background: #f6f7f9; padding: 4px 6px; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 8.5pt; max-width: 100%; }
th, td { border-bottom: 1px solid #d6d9de; padding: 2px 6px; text-align: left; vertical-align: top; }
td.num, .dataframe td { text-align: right; white-space: nowrap; }
th { background: #eef1f5; text-align: left; }
td { word-break: normal; overflow-wrap: break-word; }
td code { font-size: 0.85em; }
tr { break-inside: avoid; }
img { max-width: 100%; height: auto; }
.jp-OutputArea-output img, .output_png img { display: block; margin: 0.3em auto; break-inside: avoid; }
img.math-inline { display: inline; margin: 0; }
.math-block { margin: 0.5em 0; text-align: center; break-inside: avoid; }
.math-block img { max-width: 100%; height: auto !important; }
table.math-aligned { margin: 0.4em auto; font-size: 10pt; }
table.math-aligned td { border: none; padding: 1px 2px; vertical-align: middle; }
table.math-aligned td.lhs { text-align: right; }
table.math-aligned td.rel { text-align: center; }
table.math-aligned td.rhs { text-align: left; }
table.math-aligned td.rhs img { max-width: 150mm; height: auto !important; }
.math-source { white-space: pre-wrap; }
.warning, .alert-warning { border-left: 4px solid #c77c02; background: #fff6e5; padding: 4px 8px; margin: 0.5em 0; }
.note, .alert-info { border-left: 4px solid #3465a4; background: #eef3fa; padding: 4px 8px; margin: 0.5em 0; }
.footer { margin-top: 2em; font-size: 8pt; color: #666; border-top: 1px solid #ccd; padding-top: 0.3em; }
.jp-InputPrompt, .jp-OutputPrompt, .prompt { display: none; }
.jp-RenderedHTMLCommon table, .dataframe { font-size: 8.5pt; }
"""


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
    title = title or _title(nb)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"generator\" content=\"costmodel {__version__}\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


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


def to_pdf(html_text: str | None = None, nb=None, engine: str = "weasyprint") -> bytes:
    """Print the report to PDF: WeasyPrint from the HTML, or LaTeX from the notebook.

    Raises :class:`InputError` when the LaTeX engine is asked for without ``xelatex``,
    and :class:`RuntimeError` when the engine produced an empty document.
    """
    engine = units.parse_choice(engine, PDF_ENGINES, "--pdf-engine")
    if engine == "weasyprint":
        import logging

        weasyprint = _import_quietly("weasyprint")
        logging.getLogger("weasyprint").setLevel(logging.ERROR)
        logging.getLogger("fontTools").setLevel(logging.ERROR)
        data = weasyprint.HTML(string=html_text, base_url=str(REPO_ROOT)).write_pdf()
    else:
        if shutil.which("xelatex") is None:
            raise InputError("--pdf-engine", "latex", "xelatex on PATH (Debian: apt-get install texlive-xetex "
                             "texlive-fonts-recommended texlive-plain-generic), or the default engine weasyprint")
        from nbconvert import PDFExporter

        exporter = PDFExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
        reader = _prepare_for_reader(nb)
        data, _ = exporter.from_notebook_node(reader)
    if not data or not data.startswith(b"%PDF"):
        raise RuntimeError(f"the {engine} PDF engine wrote no PDF ({len(data or b'')} bytes)")
    return data


# --- one report ---------------------------------------------------------------------------------
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


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``html,pdf`` → ``("html", "pdf")``; each checked."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = tuple(dict.fromkeys(units.parse_choice(i.strip().lower(), FORMATS, "--to") for i in items if i.strip()))
    if not out:
        raise InputError("--to", str(text), "html, pdf or html,pdf")
    return out


def render(parameters: Mapping[str, object] | None = None, notebook: str | os.PathLike = "report",
           outdir: str | os.PathLike = "reports", formats: Sequence[str] = FORMATS,
           pdf_engine: str = "weasyprint", name: str | None = None, kernel: WarmKernel | None = None) -> Rendered:
    """Execute ``notebook`` with ``parameters`` and write the report into ``outdir``.

    Parameters
    ----------
    parameters : mapping, optional
        Notebook parameters (``memory``, ``vcpus``, …); unknown names are an error listing
        the notebook's parameters, closest first.
    notebook : str or path
        A name in ``notebooks/`` or a path to a ``.py``/``.ipynb`` notebook.
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

    Returns
    -------
    Rendered
        Paths written, the key numbers and the wall time. [s]
    """
    import nbformat

    start = time.perf_counter()
    formats = parse_formats(formats)
    pdf_engine = units.parse_choice(pdf_engine, PDF_ENGINES, "--pdf-engine")
    path = notebook_path(notebook)
    declared = notebook_parameters(read_notebook(path))
    values = check_parameters(dict(parameters or {}), declared)
    name = name or report_name(path.stem, values, declared)
    warm = ("html", "pdf") if "pdf" in formats and pdf_engine == "weasyprint" else ("html",)
    executed = execute(path, values, kernel=kernel, exporters=warm)
    outdir = Path(outdir)
    files: dict[Path, bytes] = {outdir / f"{name}.ipynb": nbformat.writes(executed).encode()}
    page = to_html(executed) if ("html" in formats or pdf_engine == "weasyprint") else None
    if "html" in formats:
        files[outdir / f"{name}.html"] = page.encode()
    if "pdf" in formats:
        files[outdir / f"{name}.pdf"] = to_pdf(page, executed, pdf_engine)
    _write_all(files)
    paths = {p.suffix[1:]: p for p in files}
    return Rendered(name, values, paths, summary_of(executed), time.perf_counter() - start)


# --- batches --------------------------------------------------------------------------------------
def read_sweep(path: str | os.PathLike) -> list[dict]:
    """Read a sweep file: YAML (a list of parameter maps, or a map of lists = a grid) or CSV.

    In a YAML grid every key with a list varies and the others stay fixed; entries follow
    nested loops in the file's key order. A CSV has one report per row, a header of
    parameter names; empty cells take the notebook's default.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise InputError("SWEEP", str(path), f"a readable YAML or CSV file ({error.strerror})") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows:
            raise InputError(str(path), "no rows", "a header of parameter names and one row per report")
        entries = []
        for i, row in enumerate(rows):
            if None in row:
                raise InputError(f"{path}:{i + 2}", f"{len(row) - 1 + len(row[None])} cells", f"{len(row) - 1} cells, as the header")
            entries.append({k.strip(): v.strip() for k, v in row.items() if v is not None and v.strip() != ""})
        return entries
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise InputError(where, getattr(error, "problem", str(error)), "valid YAML") from None
    if isinstance(data, dict) and set(data) == {"grid"}:
        data = data["grid"]
    if isinstance(data, list):
        for i, entry in enumerate(data):
            if not isinstance(entry, dict):
                raise InputError(f"{path}: entry {i + 1}", entry, "a map of parameter names to values")
        return [dict(e) for e in data]
    if isinstance(data, dict):
        keys = list(data)
        choices = [v if isinstance(v, list) else [v] for v in data.values()]
        for key, values in zip(keys, choices):
            if not values:
                raise InputError(f"{path}: {key}", "an empty list", "at least one value")
        return [dict(zip(keys, combo)) for combo in itertools.product(*choices)]
    raise InputError(str(path), type(data).__name__, "a list of parameter maps or a map of parameter lists (a grid)")


@dataclass
class Outcome:
    """One batch entry: what was asked, and what was written or why it failed."""

    index: int
    parameters: dict
    name: str | None = None
    paths: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def _render_entry(index: int, parameters: dict, notebook: str, outdir: str, formats, pdf_engine, name,
                  kernel: WarmKernel | None = None) -> Outcome:
    start = time.perf_counter()
    try:
        done = render(parameters, notebook, outdir, formats, pdf_engine, name, kernel=kernel)
    except (InputError, ReportError) as error:
        return Outcome(index, parameters, name, error=str(error), seconds=time.perf_counter() - start)
    except Exception as error:  # noqa: BLE001 - one entry's failure must not stop the batch
        return Outcome(index, parameters, name, error=f"{type(error).__name__}: {error}",
                       seconds=time.perf_counter() - start)
    return Outcome(index, parameters, done.name, {k: str(v) for k, v in done.paths.items()}, done.summary,
                   seconds=done.seconds)


def _worker(tasks, results, settings) -> None:
    """A batch worker process: one warm kernel, entries from ``tasks`` until ``None``."""
    kernel = None
    try:
        while (task := tasks.get()) is not None:
            i, values, name = task
            results.put(("start", i, os.getpid()))
            try:
                kernel = kernel or WarmKernel(Path(settings[0]).parent)
                outcome = _render_entry(i, values, *settings, name, kernel=kernel)
            except Exception as error:  # noqa: BLE001 - e.g. the kernel would not start
                outcome = Outcome(i, values, name, error=f"{type(error).__name__}: {error}")
            results.put(("done", i, outcome))
    finally:
        if kernel is not None:
            kernel.close()


def _run_workers(todo: list, jobs: int, settings: tuple):
    """Yield outcomes as ``jobs`` worker processes finish them; a dead worker fails its entry."""
    import queue

    context = multiprocessing.get_context("spawn")  # no fork of a parent with threads
    tasks, results = context.Queue(), context.Queue()
    for task in todo:
        tasks.put(task)
    workers = [context.Process(target=_worker, args=(tasks, results, settings), daemon=True) for _ in range(jobs)]
    for _ in workers:
        tasks.put(None)
    for worker in workers:
        worker.start()
    running: dict[int, int] = {}  # entry → worker pid
    left = {i for i, _, _ in todo}
    by_index = {i: (values, name) for i, values, name in todo}
    try:
        while left:
            try:
                kind, i, payload = results.get(timeout=1.0)
            except queue.Empty:
                alive = {w.pid for w in workers if w.is_alive()}
                for entry, pid in list(running.items()):
                    if pid not in alive:
                        running.pop(entry)
                        left.discard(entry)
                        values, name = by_index[entry]
                        yield Outcome(entry, values, name, error="the worker process died while rendering it")
                if not alive and left:
                    for entry in sorted(left):
                        values, name = by_index[entry]
                        yield Outcome(entry, values, name, error="no worker left to render it")
                    left.clear()
                continue
            if kind == "start":
                running[i] = payload
            else:
                running.pop(i, None)
                left.discard(i)
                yield payload
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()


def default_jobs() -> int:
    """One worker per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def render_batch(entries: Iterable[Mapping[str, object]], outdir: str | os.PathLike = "reports",
                 jobs: int | None = None, formats: Sequence[str] = FORMATS, notebook: str = "report",
                 pdf_engine: str = "weasyprint", progress: bool = True) -> list[Outcome]:
    """Render one report per entry in parallel processes and write ``outdir/index.html``.

    Entries are checked first (unknown parameters, invalid values, two entries with the
    same file name); an invalid entry fails alone, the others run. Returns one
    :class:`Outcome` per entry, in entry order.
    """
    from tqdm.auto import tqdm

    formats = parse_formats(formats)
    path = notebook_path(notebook)
    declared = notebook_parameters(read_notebook(path))
    outdir = Path(outdir)
    entries = [dict(e) for e in entries]
    outcomes: dict[int, Outcome] = {}
    todo, names = [], {}
    for i, entry in enumerate(entries, start=1):
        try:
            values = check_parameters(entry, declared, where=f"entry {i}: parameter")
            name = report_name(path.stem, values, declared)
        except InputError as error:
            outcomes[i] = Outcome(i, entry, error=str(error))
            continue
        if name in names:
            outcomes[i] = Outcome(i, entry, name, error=f"entry {i}: same report as entry {names[name]} ({name})")
            continue
        names[name] = i
        todo.append((i, values, name))
    jobs = max(1, min(jobs or default_jobs(), len(todo) or 1))
    bar = tqdm(total=len(entries), desc="reports", unit="report", disable=not progress, initial=len(outcomes))
    settings = (str(path), str(outdir), formats, pdf_engine)
    try:
        if jobs == 1:
            kernel = WarmKernel(path.parent) if todo else None
            try:
                for i, values, name in todo:
                    outcomes[i] = _render_entry(i, values, *settings, name, kernel=kernel)
                    bar.update()
            finally:
                if kernel is not None:
                    kernel.close()
        else:
            for outcome in _run_workers(todo, jobs, settings):
                outcomes[outcome.index] = outcome
                bar.update()
    finally:
        bar.close()
    result = [outcomes[i] for i in sorted(outcomes)]
    write_index(result, outdir, title=f"costmodel reports ({path.stem})")
    return result


def _number(key: str, value) -> str:
    try:
        from costmodel.results import format_value
    except ImportError:  # pragma: no cover - results is part of the package
        return str(value)
    return format_value(key, value)


def write_index(outcomes: Sequence[Outcome], outdir: str | os.PathLike, title: str = "costmodel reports") -> Path:
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
        cells += [html.escape(_number(k, o.summary[k])) if k in o.summary else "–" for k in keys]
        status = "ok" if o.ok else f'<span class="failed">failed</span>: {html.escape(o.error)}'
        cells.append(status)
        rows.append("<tr" + ("" if o.ok else ' class="failed-row"') + ">" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    failed = sum(not o.ok for o in outcomes)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}"
        "td:nth-child(2), td:last-child { text-align: left; } .failed { color: #b00020; font-weight: bold; }"
        "tr.failed-row { background: #fff1f1; }</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{len(outcomes)} reports: {len(outcomes) - failed} written, {failed} failed. "
        f"costmodel {__version__}.</p>"
        "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></body></html>\n")
    from costmodel.files import atomic_write_text

    return atomic_write_text(outdir / "index.html", page)
