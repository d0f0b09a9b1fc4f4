"""Long runs on Dask (``dask.distributed``): a local cluster or an existing scheduler, one code path.

:func:`connect` gives a :class:`Cluster`: without a scheduler address it starts a
``LocalCluster`` on the loopback address only, with one single-threaded worker process
per core (or as many as asked); with an address (``tcp://HOST:8786``) or a ``Client``
it attaches to that cluster. Both ways the caller gets a ``Client``, the dashboard link
and the same guarantees:

- :func:`check_versions`: every worker runs the same costmodel (version and code) as the
  client, or the run stops before it starts, naming the worker;
- :class:`Bounded`: tasks are handed out one per worker thread, as threads free up, so
  a worker holds only what it is running. When a worker process dies, the scheduler
  reruns that task elsewhere (``allowed-failures`` times more, then it fails with
  ``KilledWorker``: :func:`died`), and no other task is blamed for the death;
- :class:`Progress`: a bar per finished task naming what is running.

Everything here is generic: reports (:mod:`costmodel.reporting.batch`) and simulator grids
use it alike. Needs the ``cluster`` extra: ``pip install 'costmodel[cluster]'``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from costmodel.errors import Argument, InputError

INSTALL = "pip install 'costmodel[cluster]'"
#: Reruns after a worker died while running a task, by default; so 1 + this many tries.
ALLOWED_FAILURES = 2
#: How long an existing scheduler may take to answer, and to have a worker. [s]
CONNECT_TIMEOUT = 10.0
WORKER_TIMEOUT = 60.0
#: How long a local worker that died may take to restart before its cluster gives up on it.
LOST_WORKER_TIMEOUT = "5 minutes"


class MissingExtra(ImportError):
    """``dask.distributed`` is not installed."""

    def __init__(self):
        super().__init__(f"dask.distributed is not installed; install the cluster extra: {INSTALL}")


def _distributed():
    try:
        import distributed
    except ImportError:
        raise MissingExtra() from None
    return distributed


def default_workers() -> int:
    """One worker per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Cluster:
    """A client on a Dask cluster: one this process started (``local``) or an existing one."""

    client: object
    local: bool
    allowed_failures: int
    _cluster: object = None
    _own_client: bool = True

    @property
    def tries(self) -> int:
        """How often a task runs before a worker death fails it."""
        return self.allowed_failures + 1

    @property
    def dashboard_link(self) -> str | None:
        """The scheduler's dashboard (``None`` without bokeh)."""
        try:
            link = self.client.dashboard_link
        except Exception:  # noqa: BLE001 - no dashboard service on that scheduler
            return None
        return link or None

    def threads(self) -> int:
        """Worker threads the cluster has now."""
        return sum(self.client.nthreads().values())

    def close(self) -> None:
        if self._own_client:
            with contextlib.suppress(Exception):
                self.client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def connect(scheduler=None, workers: int | None = None, allowed_failures: int | None = None) -> Cluster:
    """A :class:`Cluster`: ``LocalCluster`` with ``workers`` processes, or the ``scheduler``'s.

    Parameters
    ----------
    scheduler : str or distributed.Client, optional
        An existing scheduler's address (``tcp://HOST:8786``) or a client on it (left open
        on close). Its workers are what it has: ``workers`` must then be ``None``.
    workers : int, optional
        Local worker processes, one thread each (default: the cores).
    allowed_failures : int, optional
        Reruns after a worker died running a task. A local cluster is started with it
        (default :data:`ALLOWED_FAILURES`); an existing scheduler keeps its own setting
        (``distributed.scheduler.allowed-failures`` where it was started), so asking for
        another value there is an error.
    """
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InputError(Argument("workers"), workers, "a whole number ≥ 1")
    if allowed_failures is not None and (not isinstance(allowed_failures, int) or allowed_failures < 0):
        raise InputError(Argument("allowed_failures"), allowed_failures, "a whole number ≥ 0")
    if scheduler is not None and workers is not None:
        raise InputError(Argument("workers"), workers, "no worker count with an existing scheduler (it has its own "
                         "workers; start them with `dask worker`)")
    distributed = _distributed()
    if scheduler is None:
        return _local(distributed, workers or default_workers(),
                      ALLOWED_FAILURES if allowed_failures is None else allowed_failures)
    if isinstance(scheduler, distributed.Client):
        client, own = scheduler, False
    else:
        client, own = _attach(distributed, str(scheduler)), True
    try:
        theirs = client.run_on_scheduler(_allowed_failures)
        if allowed_failures is not None and allowed_failures != theirs:
            raise InputError(Argument("allowed_failures"), allowed_failures,
                             f"the scheduler's own setting, {theirs} (set it where the scheduler starts: "
                             "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES)")
        try:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except TimeoutError:
            raise InputError(Argument("scheduler"), client.scheduler.address,
                             f"a scheduler with workers (none joined within {WORKER_TIMEOUT:.0f} s; "
                             "start some with `dask worker ADDRESS`)") from None
    except BaseException:
        if own:
            client.close()
        raise
    return Cluster(client, local=False, allowed_failures=int(theirs), _own_client=own)


def _allowed_failures(dask_scheduler=None) -> int:
    return int(dask_scheduler.allowed_failures)


def _attach(distributed, address: str):
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise InputError(Argument("scheduler"), address, "the address of a running Dask scheduler, such as "
                         f"tcp://HOST:8786 ({type(error).__name__}: {str(error).splitlines()[0][:160]})") from None


def _local(distributed, workers: int, allowed_failures: int) -> Cluster:
    import dask

    # worker-saturation 1.0: a worker is given no more tasks than it has threads
    settings = {"distributed.scheduler.worker-saturation": 1.0,
                "distributed.scheduler.allowed-failures": allowed_failures,
                "distributed.admin.system-monitor.gil.enabled": False}
    # The cluster object gives up on a worker that has not come back 15 s (by default) after it died, and
    # closes its nanny for good; on a busy machine a restart takes longer. It reads this when a worker
    # dies, so it is set for the process, not only while the cluster starts.
    dask.config.set({"distributed.deploy.lost-worker-timeout": LOST_WORKER_TIMEOUT})
    with dask.config.set(settings):
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", scheduler_port=0,
            dashboard_address="127.0.0.1:0" if _has_bokeh() else None, silence_logs=logging.CRITICAL,
            scheduler_kwargs={"allowed_failures": allowed_failures})
        try:
            client = distributed.Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
    return Cluster(client, local=True, allowed_failures=allowed_failures, _cluster=cluster)


# --- the same code everywhere ----------------------------------------------------------------------------------
def identity() -> tuple[str, str]:
    """This process's costmodel: (version, code fingerprint: its sources and the libraries they compile with)."""
    from costmodel import __version__, cache

    return __version__, cache.code_fingerprint()


def check_versions(client) -> None:
    """Raise :class:`InputError` unless every worker runs the client's costmodel (version and code)."""
    ours = identity()
    try:
        found = client.run(identity)
    except ImportError as error:
        raise InputError(Argument("scheduler"), f"a worker without costmodel ({error})",
                         f"costmodel {ours[0]} installed on every worker, as on this client") from None
    for worker, theirs in sorted(found.items()):
        if tuple(theirs) != ours:
            raise InputError(Argument("scheduler"), f"worker {worker} with costmodel {theirs[0]} (code {theirs[1][:12]})",
                             f"costmodel {ours[0]} (code {ours[1][:12]}) on every worker, as on this client: "
                             "install the same package everywhere")


def died(error: BaseException | None) -> bool:
    """Whether a task failed because the worker processes running it died (``KilledWorker``)."""
    if error is None:
        return False
    from distributed import KilledWorker

    return isinstance(error, KilledWorker)


# --- handing out tasks -------------------------------------------------------------------------------------------
@dataclass
class Task:
    """One call to run on a worker: ``function(*args)``, known to the caller as ``label``."""

    label: object
    function: Callable
    args: tuple = ()
    key: str | None = None


@dataclass
class Bounded:
    """Submit tasks as worker threads free up, and yield ``(task, future)`` as each finishes.

    At most one task per worker thread is submitted at a time, so a worker only ever holds
    the task it runs: when it dies, the scheduler blames (and reruns) that task alone.
    Tasks not yet submitted cost nothing to cancel (:meth:`cancel`).
    """

    cluster: Cluster
    tasks: Iterable[Task]
    #: Called with :attr:`running` whenever it changed (a task finished, others were submitted).
    on_change: Callable[[list[Task]], None] | None = None
    _pending: deque = field(default_factory=deque, init=False)
    _running: dict = field(default_factory=dict, init=False)

    def __post_init__(self):
        self._pending = deque(self.tasks)

    @property
    def running(self) -> list[Task]:
        """Submitted and not finished, in submission order."""
        return [task for task, _ in self._running.values()]

    @property
    def pending(self) -> list[Task]:
        """Not submitted yet."""
        return list(self._pending)

    def _fill(self, completed) -> None:
        client = self.cluster.client
        limit = max(1, self.cluster.threads())
        while self._pending and len(self._running) < limit:
            task = self._pending.popleft()
            future = client.submit(task.function, *task.args, key=task.key, pure=False)
            self._running[future.key] = (task, future)
            completed.add(future)
        if self.on_change is not None:
            self.on_change(self.running)

    def __iter__(self) -> Iterator[tuple[Task, object]]:
        from distributed import as_completed

        completed = as_completed(loop=self.cluster.client.loop)
        self._fill(completed)
        while self._running:
            future = next(completed)
            task, _ = self._running.pop(future.key)
            self._fill(completed)
            yield task, future

    def cancel(self) -> list[Task]:
        """Drop what was not submitted and cancel what runs; returns both, in that order: running first."""
        running = self.running
        futures = [future for _, future in self._running.values()]
        self._running.clear()
        dropped = list(self._pending)
        self._pending.clear()
        if futures:
            with contextlib.suppress(Exception):
                self.cluster.client.cancel(futures, force=True)
        return running + dropped


# --- progress ----------------------------------------------------------------------------------------------------
class Progress:
    """A bar per finished task, naming what runs now: ``reports: 25%|██▌ | 2/8 [00:20<00:51, now: a, b]``."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, disable: bool = False):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=disable, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")

    def now(self, labels: Iterable[object]) -> None:
        labels = [str(label) for label in labels]
        self.bar.set_postfix_str(("now: " + ", ".join(labels)) if labels else "", refresh=True)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def write(self, text: str) -> None:
        self.bar.write(text)

    def close(self) -> None:
        self.bar.close()


def describe(cluster: Cluster) -> str:
    """One line for people: where the work runs and the dashboard link."""
    workers = len(cluster.client.nthreads())
    where = "local cluster" if cluster.local else f"scheduler {cluster.client.scheduler.address}"
    link = cluster.dashboard_link
    dashboard = f"dashboard {link}" if link else f"no dashboard (needs bokeh: {INSTALL})"
    return f"{where}, {workers} worker{'s' if workers != 1 else ''}; {dashboard}"
