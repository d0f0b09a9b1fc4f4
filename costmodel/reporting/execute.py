"""Running a report notebook: papermill with a fresh kernel, or nbclient on a warm one.

Either way a failing cell raises :class:`ReportError` with the cell's index in the source
notebook (the cells papermill and the warm kernel insert are not counted) and the
exception it raised.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from costmodel.reporting.export import to_pdf
from costmodel.reporting.mathsvg import render_math
from costmodel.reporting.notebooks import KERNEL, _pretty, notebook_path, read_notebook


class ReportError(RuntimeError):
    """A notebook failed while running; says which cell and what was raised."""

    def __init__(self, notebook: str, cell_index, ename: str, evalue: str):
        self.notebook, self.cell_index, self.ename, self.evalue = notebook, cell_index, ename, evalue
        where = f"{notebook}, cell {cell_index}" if cell_index is not None else notebook
        super().__init__(f"{where}: {ename}: {evalue}")


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
        raise _failed(path, index, source, bool(parameters), tagged, error.ename, error.evalue) from None
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
    nb.cells.pop(0)
    return nb


def _failed(path: Path, index: int | None, source: str, injected: bool, tagged: list[int], ename: str,
            evalue: str) -> ReportError:
    """The error of a failing cell, at its index in the source notebook.

    With parameters given, a cell is injected after the cell tagged ``parameters``: cells
    after it are counted one lower. The first line of the cell's source says which it is.
    """
    if index is not None and injected and tagged and index > tagged[0]:
        index -= 1
    first = _first_line(source)
    where = f"{index} ({first[:60]})" if first else index
    return ReportError(_pretty(path), where, ename, _clean(evalue))


def _first_line(source: str) -> str:
    """A cell's first non-blank line, stripped (names the cell in errors and progress)."""
    return next((line.strip() for line in source.splitlines() if line.strip()), "")


def _warm_exporters(formats: tuple[str, ...]) -> None:
    """Import nbconvert and WeasyPrint, export an empty notebook (nbconvert's templates and
    filters, ≈0.8 s the first time) and lay out a tiny page (fontconfig, Pango)."""
    from nbformat.v4 import new_notebook

    from costmodel.reporting.export import to_html

    to_html(new_notebook())
    if "pdf" in formats:
        to_pdf("<html><body><p>warm</p></body></html>", cached=False)  # the point is the font setup


def _laid_out_for_print(text: str) -> None:
    """Lay out the formulas of ``text`` and draw their print forms (both land in caches)."""
    from costmodel.reporting.mathprint import for_print

    for_print(render_math(text))


class _MathPrefetch:
    """Render a notebook's formulas in a parent thread while the kernel still runs.

    The kernel is another process, and the parent only waits on it, so the SVG layout of
    each formula (the slow part of the export) overlaps the rest of the execution. The
    results land in :func:`math_svg`'s cache, where :func:`to_html` finds them, and with a PDF to
    print their print forms in :mod:`~costmodel.reporting.mathprint`'s, where :func:`to_pdf` does.
    """

    def __init__(self, exporters: Sequence[str] = (), progress=None, total: int = 0):
        self.progress, self.total, self.done = progress, total, 0
        self.exporters = tuple(exporters)
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="math-prefetch")
        if exporters:  # the exporters' imports and font setup, also while the kernel runs
            self.pool.submit(_warm_exporters, tuple(exporters))

    def text(self, text: str) -> None:
        if "$" in text:
            self.pool.submit(_laid_out_for_print if "pdf" in self.exporters else render_math, text)

    def notebook(self, nb) -> None:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                self.text(cell.source)

    def __call__(self, cell=None, **_) -> None:  # nbclient's on_cell_executed hook
        for output in (cell or {}).get("outputs", []):
            self.text(output.get("data", {}).get("text/markdown", ""))
        source = (cell or {}).get("source", "")
        if self.progress is not None and source and source != _RESET and \
                "injected-parameters" not in (cell or {}).get("metadata", {}).get("tags", []):
            self.done += 1
            self.progress(min(self.done, self.total), self.total, _first_line(source))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def execute(notebook: str | os.PathLike, parameters: Mapping[str, object] | None = None, cwd=None,
            kernel: WarmKernel | None = None, exporters: Sequence[str] = (), progress=None):
    """Run a notebook with papermill and return the executed node.

    The kernel papermill started is stopped at once when the last cell has run (its outputs
    are all in): a graceful shutdown waits about a second for nothing the export needs.
    With ``kernel``, runs on that warm kernel instead of starting one (batches).
    ``exporters`` (``html``, ``pdf``) are prepared in a parent thread meanwhile.
    ``progress(k, n, first_line)`` is called after each of the notebook's ``n`` code cells.
    Raises :class:`ReportError` naming the failing cell (its index in the notebook) and
    the exception it raised.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from costmodel.reporting.kernelclient import PollingKernelManager

    path = notebook_path(notebook)
    nb = read_notebook(path)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    total = sum(c.cell_type == "code" for c in nb.cells)
    prefetch = _MathPrefetch(exporters, progress, total)
    prefetch.notebook(nb)
    try:
        if kernel is not None:
            return _run_on(kernel, nb, parameters or {}, path, tagged, prefetch)
        return papermill.execute_notebook(
            nb, None, parameters=dict(parameters or {}), kernel_name=KERNEL, progress_bar=False,
            cwd=str(cwd or path.parent), log_output=False, extra_arguments=_KERNEL_ARGUMENTS,
            on_cell_executed=prefetch, shutdown_kernel="immediate",
            kernel_manager_class=PollingKernelManager)
    except PapermillExecutionError as error:
        raise _failed(path, error.cell_index, str(error.source), bool(parameters), tagged, error.ename,
                      error.evalue) from None
    finally:
        prefetch.close()


def _clean(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()
