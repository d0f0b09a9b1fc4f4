"""What a Dask worker runs for a batch: one warm kernel per worker (a plugin) and the report task.

:class:`WarmKernels` is a ``distributed`` worker plugin. Its ``setup`` returns at once and
starts, in a thread of the worker, a :class:`~costmodel.reporting.execute.WarmKernel` that
imports what the notebook imports (its top-level ``import`` lines), while the worker itself
imports nbconvert and WeasyPrint and lays out a tiny page; the first report waits only for
what is not ready yet, and every later one finds all of it warm. ``teardown`` closes the
kernel. :func:`build_report` renders one report on that kernel and returns its files as
bytes (:class:`~costmodel.reporting.report.Built`), or :class:`Failed` saying why; the
client writes them, so workers need no shared filesystem.
"""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distributed import WorkerPlugin, get_worker

from costmodel.errors import InputError
from costmodel.reporting.execute import ReportError, WarmKernel, _warm_exporters
from costmodel.reporting.notebooks import NOTEBOOKS_DIR, notebook_path, read_notebook
from costmodel.reporting.report import Built, build

PLUGIN = "costmodel-warm-kernel"


@dataclass
class Failed:
    """A report a worker could not render: the error as people read it."""

    error: str
    seconds: float = 0.0


def notebook_reference(path: Path) -> str:
    """How a worker finds the notebook: a shipped one by name (its own installed copy), any other by path."""
    path = Path(path).resolve()
    return path.stem if path.parent == NOTEBOOKS_DIR.resolve() else str(path)


def imports_of(notebook) -> str:
    """The notebook's top-level ``import`` statements, one per line (what a warm kernel preloads)."""
    lines = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics: not ours to preload
            continue
        lines += [ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    return "\n".join(dict.fromkeys(lines))


class WarmKernels(WorkerPlugin):
    """One warm kernel per worker, started (with the notebook's imports) when the worker takes the plugin."""

    name = PLUGIN

    def __init__(self, notebook: str, exporters: Sequence[str] = ("html",)):
        self.notebook = notebook
        self.exporters = tuple(exporters)
        self._kernel: WarmKernel | None = None
        self._error: BaseException | None = None
        self._ready: threading.Thread | None = None

    def setup(self, worker=None) -> None:
        self._ready = threading.Thread(target=self._start, name="costmodel-warm-kernel", daemon=True)
        self._ready.start()

    def _start(self) -> None:
        try:
            path = notebook_path(self.notebook)
            self._kernel = WarmKernel(path.parent)
            preload = imports_of(read_notebook(path))
            waiter = threading.Thread(target=self._preload, args=(preload,), daemon=True)
            waiter.start()
            _warm_exporters(self.exporters)  # here while the kernel imports in its own process
            waiter.join()
        except BaseException as error:  # noqa: BLE001 - reported by the first report that needs the kernel
            self._error = error

    def _preload(self, code: str) -> None:
        if not code:
            return
        client = self._kernel.manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            client.execute_interactive(code, silent=True, store_history=False, timeout=300)
        finally:
            client.stop_channels()

    def kernel(self) -> WarmKernel:
        """The worker's kernel, once started; raises what stopped it from starting."""
        if self._ready is not None:
            self._ready.join()
        if self._error is not None:
            raise RuntimeError(f"the worker's kernel did not start: {type(self._error).__name__}: {self._error}")
        return self._kernel

    def teardown(self, worker=None) -> None:
        if self._ready is not None:
            self._ready.join(timeout=60)
        if self._kernel is not None:
            self._kernel.close()
            self._kernel = None


def build_report(parameters: dict, name: str, notebook: str, formats: Sequence[str], pdf_engine: str,
                 client_identity: tuple[str, str]) -> Built | Failed:
    """Render one report on this worker's warm kernel; its files come back as bytes."""
    from costmodel.cluster import identity

    start = time.perf_counter()
    worker = get_worker()
    ours = identity()
    if ours != tuple(client_identity):
        return Failed(f"worker {worker.address} runs costmodel {ours[0]} (code {ours[1][:12]}); expected "
                      f"{client_identity[0]} (code {client_identity[1][:12]}) as on the client")
    try:
        plugin = worker.plugins.get(PLUGIN)
        kernel = plugin.kernel() if plugin is not None else None
        return build(parameters, notebook, formats, pdf_engine, name, kernel=kernel)
    except (InputError, ReportError) as error:
        return Failed(str(error), time.perf_counter() - start)
    except Exception as error:  # noqa: BLE001 - one report's failure must not stop the batch
        return Failed(f"{type(error).__name__}: {error}", time.perf_counter() - start)
