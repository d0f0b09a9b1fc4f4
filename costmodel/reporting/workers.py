"""What a Dask worker runs for a batch: one warm kernel per worker (a plugin) and the report task.

:class:`WarmKernels` is a ``distributed`` worker plugin. Its ``setup`` returns at once and
starts, in a thread of the worker, a :class:`~costmodel.reporting.execute.WarmKernel` that
imports what the notebook imports (its top-level ``import`` lines), while the worker itself
imports nbconvert and WeasyPrint and lays out a tiny page; the first report waits only for
what is not ready yet, and every later one finds all of it warm. ``teardown`` closes the
kernels. :func:`build_report` renders one report on that kernel and returns its files as
bytes (:class:`~costmodel.reporting.report.Built`), or :class:`Failed` saying why; the
client writes them, so workers need no shared filesystem.
"""

from __future__ import annotations

import ast
import contextlib
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

#: Plugin names start with this (:func:`plugin_name`).
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


def plugin_name(token: str) -> str:
    """The plugin's name for one batch (several batches may share a cluster, each with its kernels)."""
    return f"{PLUGIN}-{token}"


class WarmKernels(WorkerPlugin):
    """Warm kernels on a worker: one started (with the notebook's imports) when the worker takes the plugin.

    A task takes a kernel (:meth:`acquire`) and gives it back (:meth:`release`); a worker
    with more than one thread starts another kernel when all are busy, so no two reports
    ever share one. The batch removes the plugin when it ends (``teardown``), which closes
    the kernels.
    """

    def __init__(self, notebook: str, exporters: Sequence[str], name: str):
        self.notebook = notebook
        self.exporters = tuple(exporters)
        self.name = name
        self._lock = threading.Lock()
        self._idle: list[WarmKernel] = []
        self._busy: dict[object, WarmKernel] = {}
        #: Tasks interrupted before they held a kernel (still waiting for the warm one).
        self._interrupted: set = set()
        self._starting: threading.Thread | None = None
        self._closed = False

    def __getstate__(self):
        return {"notebook": self.notebook, "exporters": self.exporters, "name": self.name}

    def __setstate__(self, state):
        self.__init__(**state)

    def setup(self, worker=None) -> None:
        self._starting = threading.Thread(target=self._start_warm, name="costmodel-warm-kernel", daemon=True)
        self._starting.start()

    def _cwd(self) -> Path:
        return notebook_path(self.notebook).parent

    def _start_warm(self) -> None:
        """Start a kernel and import what the notebook imports; meanwhile warm the exporters here."""
        try:
            path = notebook_path(self.notebook)
            kernel = WarmKernel(path.parent)
        except Exception:  # noqa: BLE001 - the first report starts one itself and says why it cannot
            return
        preload = threading.Thread(target=_preload, args=(kernel, imports_of(read_notebook(path))), daemon=True)
        preload.start()
        with contextlib.suppress(Exception):  # only a warm-up: the export itself reports its errors
            _warm_exporters(self.exporters)
        preload.join()
        with self._lock:
            self._idle.append(kernel)

    def acquire(self, key) -> WarmKernel:
        """A kernel for the task ``key``: the warm one when it is idle, else a new one."""
        with self._lock:
            starting, self._starting = self._starting, None
        if starting is not None:
            starting.join()
        with self._lock:
            kernel = self._idle.pop() if self._idle else None
        if kernel is None:
            kernel = WarmKernel(self._cwd())
        with self._lock:
            self._busy[key] = kernel
            interrupted = key in self._interrupted
            self._interrupted.discard(key)
        if interrupted:  # an interrupt that came while it waited must not be lost
            raise Interrupted("the batch was interrupted before this report started")
        return kernel

    def release(self, key) -> None:
        """The task ``key`` is done with its kernel: kept for the next, or closed after :meth:`teardown`."""
        with self._lock:
            kernel = self._busy.pop(key, None)
            if kernel is not None and not self._closed:
                self._idle.append(kernel)
                return
        if kernel is not None:
            kernel.close()

    def interrupt(self, keys) -> list:
        """Interrupt the kernels running the tasks ``keys`` (a cancelled batch); returns those found."""
        with self._lock:
            found = {key: self._busy[key] for key in keys if key in self._busy}
            self._interrupted.update(key for key in keys if key not in found)
        if found:
            threading.Thread(target=self._keep_interrupting, args=(found,), name="costmodel-interrupt",
                             daemon=True).start()
        return list(found)

    def _keep_interrupting(self, found: dict, period: float = 0.5, limit: float = 120.0) -> None:
        """Interrupt each task's kernel every ``period`` [s] until the task lets it go (at most
        ``limit`` [s]): a kernel between cells, or not yet running the first, ignores SIGINT, so
        one interrupt sent then would be lost and the report would run on."""
        import time

        deadline = time.monotonic() + limit
        pending = dict(found)
        while pending and time.monotonic() < deadline:
            with self._lock:  # the kernel is still this task's while the interrupt is sent
                for key, kernel in list(pending.items()):
                    if self._busy.get(key) is not kernel:
                        del pending[key]
                        continue
                    with contextlib.suppress(Exception):
                        kernel.manager.interrupt_kernel()
            time.sleep(period)

    async def teardown(self, worker=None) -> None:
        """Close the idle kernels and interrupt the busy ones (their tasks close them), off the event loop."""
        import asyncio

        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            starting, self._starting = self._starting, None
        if starting is not None:
            starting.join(timeout=120)
        with self._lock:
            idle, busy = self._idle, list(self._busy.values())
            self._idle = []
        for kernel in busy:
            with contextlib.suppress(Exception):
                kernel.manager.interrupt_kernel()
        for kernel in idle:
            with contextlib.suppress(Exception):
                kernel.close()


class Interrupted(Exception):
    """A report whose batch was interrupted before it held a kernel."""


def _preload(kernel: WarmKernel, code: str) -> None:
    """Run ``code`` on the kernel (imports: what ``%reset -f`` keeps for every later report)."""
    if not code:
        return
    client = kernel.manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        client.execute_interactive(code, silent=True, store_history=False, timeout=300)
    except Exception:  # noqa: BLE001 - the report runs the same imports and says what failed
        pass
    finally:
        client.stop_channels()


def interrupt(plugin: str, keys, dask_worker=None) -> list:
    """On a worker (``client.run``): interrupt the kernels running the tasks ``keys``."""
    found = dask_worker.plugins.get(plugin)
    return found.interrupt(keys) if found is not None else []


def build_report(parameters: dict, name: str, notebook: str, formats: Sequence[str], pdf_engine: str,
                 client_identity: tuple[str, str], plugin: str) -> Built | Failed:
    """Render one report on this worker's warm kernel; its files come back as bytes."""
    from costmodel.cluster import identity

    start = time.perf_counter()
    worker = get_worker()
    ours = identity()
    if ours != tuple(client_identity):
        return Failed(f"worker {worker.address} runs costmodel {ours[0]} (code {ours[1][:12]}); expected "
                      f"{client_identity[0]} (code {client_identity[1][:12]}) as on the client")
    kernels = worker.plugins.get(plugin)
    key = worker.get_current_task()
    try:
        kernel = kernels.acquire(key) if kernels is not None else None
        return build(parameters, notebook, formats, pdf_engine, name, kernel=kernel)
    except (InputError, ReportError) as error:
        return Failed(str(error), time.perf_counter() - start)
    except Exception as error:  # noqa: BLE001 - one report's failure must not stop the batch
        return Failed(f"{type(error).__name__}: {error}", time.perf_counter() - start)
    finally:
        if kernels is not None:
            kernels.release(key)
