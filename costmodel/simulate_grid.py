"""Simulator grids on Dask: many shapes, their distributions in one Parquet file, resumable (issue 12).

Each task simulates a run of consecutive shapes (:func:`simulate_chunk`) on a worker of a
cluster (:mod:`costmodel.cluster`: a local cluster or an existing scheduler, one task per
worker thread at a time) and returns one row per shape: the shape's columns, the seeds,
and the mean, 5th and 95th percentile of splits, merges and each source's split hugepages.

- **Chunks by cost** (:func:`plan`): each shape's cost is estimated in boots
  (:func:`cost`); tasks are cut in shape order, large first and smaller towards the end
  (guided self-scheduling: each takes a share of what is left), within
  [:data:`SMALLEST`, :data:`LARGEST`] boots. Few tasks keep the scheduling and the part
  writes small; small last tasks leave no worker idle while another finishes a big one.
- **Resumable by shape**: each finished task's rows are written at once, atomically, to
  ``OUT.parts/<run key>.<chunk key>.parquet`` with each shape's key. A rerun with the same
  seeds and parameters reads the parts first and simulates only the shapes not in them,
  whatever the chunking was, so neither a kill nor another worker count loses work.
- **No serial tail**: the rows come back to the client as each task ends; the output is
  written once, from memory, in shape order, and the parts removed.

A shape's numbers depend only on the shape, its seeds and the parameters (each boot is
seeded by its own seed number), never on the chunking or the worker: a grid equals the
serial run of the same shapes (:func:`simulate_chunk` over all of them, in-process).
This module never imports pandas or SymPy; the workers run only the simulator.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
from pathlib import Path

from costmodel.errors import Argument, InputError
from costmodel.shape import VmShape

#: The smallest and largest task, in boots (one seed of the reference guest ≈ 0.7 ms of CPU): small
#: enough that a kill loses little and the last tasks balance the workers, large enough that scheduling
#: (≈ 10 ms a task) and writing a part (a few ms) stay small beside the simulation.
SMALLEST = 400
LARGEST = 20_000
#: Each task takes 1/(GUIDED × worker threads) of the boots still to hand out.
GUIDED = 2
#: The column of the parts that names each row's shape (not in the output).
SHAPE_KEY = "shape_key"
#: Dask settings of a local cluster started for a grid. Dask's statistical profiler samples each worker
#: thread's stack every 10 ms: 12-15 % more CPU per simulated boot (measured: 1.15-1.36 s against
#: 1.00-1.07 s a task); its event loops' health check ticks every 20 ms: an idle worker used 3 % of a
#: core, 0.7 % at 1 s. A grid needs neither (the dashboard's profile page stays empty).
LEAN = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s"}


def simulate_chunk(shapes: list[VmShape], seeds: int, first_seed: int, deterministic: bool,
                   params: dict) -> list[dict]:
    """One row per shape: its columns, the seed settings and the distribution's summaries (runs on a worker)."""
    from costmodel.simulate import Parameters, simulate

    rows = []
    for shape in shapes:
        d = simulate(shape, seeds, Parameters(**params), first_seed=first_seed, deterministic=deterministic)
        row = dict(shape.to_columns())
        row.update(seeds=seeds, first_seed=first_seed, deterministic=deterministic)
        for name, summary in (("splits", d.split_summary), ("merges", d.merge_summary)):
            row.update({name: summary.mean, f"{name}_p05": summary.p05, f"{name}_p95": summary.p95})
        for source, summary in d.source_summaries().items():
            row.update({f"splits_{source}": summary.mean, f"splits_{source}_p05": summary.p05,
                        f"splits_{source}_p95": summary.p95})
        rows.append(row)
    return rows


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:20]


def shape_key(shape: VmShape) -> str:
    """A name for the shape's columns (stable across processes and runs)."""
    return _digest(shape.to_columns())


def run_key(seeds: int, first_seed: int, deterministic: bool, params: dict) -> str:
    """A name for what every shape of a grid shares: the seeds and the simulator's parameters."""
    return _digest([seeds, first_seed, deterministic, params])


def cost(shape: VmShape, seeds: int, deterministic: bool) -> float:
    """Estimated work of simulating ``shape``, in boots of the reference guest. [1]

    A boot costs about the same from 4 GiB to 4 TiB and 8 to 512 vCPUs (0.4–1.3 ms on the
    development machine); more NUMA nodes and more device queues cost a little more each.
    """
    devices = len(shape.devices) if shape.devices else 2
    per_boot = 1.0 + 0.1 * (shape.numa_nodes or 1) + shape.vcpus / 2048 + 0.1 * devices
    return (1 if deterministic else seeds) * per_boot


def plan(costs: list[float], threads: int, *, guided: int = GUIDED, smallest: float = SMALLEST,
         largest: float = LARGEST) -> list[range]:
    """Consecutive index ranges covering ``costs``: each worth ``left / (guided × threads)``, clamped."""
    chunks, start, left = [], 0, float(sum(costs))
    while start < len(costs):
        want = min(max(left / (guided * max(1, threads)), smallest), largest)
        end, worth = start, 0.0
        while end < len(costs) and (end == start or worth + costs[end] <= want):
            worth += costs[end]
            end += 1
        chunks.append(range(start, end))
        left -= worth
        start = end
    return chunks


class Connecting:
    """A cluster started (or attached, and its versions checked) in a background thread.

    The caller goes on with its own start-up (reading the sweep, importing what that needs)
    while the scheduler and the workers start and import theirs; :meth:`get` waits for it.
    Use it as a context manager: leaving closes the cluster (after it finished starting).
    """

    def __init__(self, scheduler=None, workers: int | None = None):
        self._cluster = self._error = None
        self._thread = threading.Thread(target=self._connect, args=(scheduler, workers), daemon=True,
                                        name="costmodel-connect")
        self._thread.start()

    def _connect(self, scheduler, workers) -> None:
        from costmodel import cluster as cluster_module

        try:
            try:
                import dask
                import distributed  # noqa: F401 - its defaults loaded before LEAN is set over them
            except ImportError:
                raise cluster_module.MissingExtra() from None
            with dask.config.set(LEAN if scheduler is None else {}):  # the workers' nannies take it as they start
                self._cluster = cluster_module.connect(scheduler, workers)
            cluster_module.check_versions(self._cluster.client)
        except BaseException as error:  # noqa: BLE001 - handed to the caller by get()
            self._error = error

    def get(self):
        """The :class:`costmodel.cluster.Cluster`, once started; raises what starting it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._cluster

    def close(self) -> None:
        self._thread.join()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> Connecting:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _write(table, path: Path) -> None:
    """Write a Parquet file atomically: a temporary file beside ``path``, then a rename."""
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _finished(parts: Path, run: str) -> dict[str, dict]:
    """Rows of earlier runs with the same seeds and parameters, by shape key."""
    import pyarrow.parquet as pq

    done = {}
    for path in sorted(parts.glob(f"{run}.*.parquet")):
        for row in pq.read_table(path).to_pylist():
            done[row.pop(SHAPE_KEY)] = row
    return done


def run_grid(shapes: list[VmShape], out, seeds: int, *, first_seed: int = 0, deterministic: bool = False,
             params=None, scheduler=None, workers: int | None = None, cluster: Connecting | None = None,
             chunk: int | None = None, progress: bool = True) -> Path:
    """Simulate every shape on a Dask cluster and write one Parquet row per shape to ``out``. [1]

    The cluster: ``scheduler`` (an address or a ``distributed.Client``) or a local one with
    ``workers`` processes, started when there is work left; or ``cluster``, one already starting
    (:class:`Connecting`, left open). ``chunk``: shapes per task (default: cut by estimated
    cost, :func:`plan`); it changes no number.
    """
    import pyarrow as pa

    from costmodel.simulate import Parameters

    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise InputError(Argument("output"), str(out), "a file name ending in .parquet")
    if not shapes:
        raise InputError(Argument("grid"), "no shapes", "at least one shape")
    if cluster is not None and (scheduler is not None or workers is not None):
        raise InputError(Argument("cluster"), "a cluster and a scheduler or workers", "one of them")
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise InputError(Argument("chunk"), chunk, "a whole number of shapes ≥ 1")
    params = (params or Parameters()).to_dict()
    run = run_key(seeds, first_seed, deterministic, params)
    parts = out.with_name(out.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    keys = [shape_key(s) for s in shapes]
    rows = _finished(parts, run)
    first = {key: i for i, key in reversed(list(enumerate(keys)))}  # a shape listed twice is simulated once
    todo = [i for i, key in enumerate(keys) if key not in rows and first[key] == i]
    if todo:
        settings = (seeds, first_seed, deterministic, params)
        if cluster is not None:
            _simulate(cluster.get(), shapes, keys, todo, rows, parts, run, settings, chunk=chunk, progress=progress)
        else:
            with Connecting(scheduler, workers) as connecting:
                _simulate(connecting.get(), shapes, keys, todo, rows, parts, run, settings, chunk=chunk,
                          progress=progress)
    _write(pa.Table.from_pylist([rows[key] for key in keys]), out)
    shutil.rmtree(parts, ignore_errors=True)
    return out


def _simulate(cluster, shapes, keys, todo, rows, parts, run, settings, *, chunk, progress) -> None:
    """Simulate the shapes ``todo`` (indices) on the cluster; each task's rows into ``rows`` and a part file."""
    import pyarrow as pa

    from costmodel import cluster as cluster_module

    seeds, _, deterministic, _ = settings
    if progress:
        print(f"costmodel simulate: {cluster_module.describe(cluster)}", file=sys.stderr, flush=True)
    if chunk is None:
        ranges = plan([cost(shapes[i], seeds, deterministic) for i in todo], cluster.threads())
    else:
        ranges = [range(i, min(i + chunk, len(todo))) for i in range(0, len(todo), chunk)]
    chunks = [[todo[j] for j in r] for r in ranges]
    bar = cluster_module.Progress(len(shapes), "shapes", "shape", initial=len(shapes) - len(todo),
                                  disable=not progress)
    names = [f"{run}.{_digest([keys[i] for i in c])}" for c in chunks]
    tasks = [cluster_module.Task(n, simulate_chunk, ([shapes[i] for i in c], *settings), key=f"simulate-{name}")
             for n, (c, name) in enumerate(zip(chunks, names))]
    bounded = cluster_module.Bounded(cluster, tasks, on_change=lambda running: bar.now(
        f"shapes {chunks[t.label][0] + 1}–{chunks[t.label][-1] + 1}" for t in running))
    try:
        for task, future in bounded:
            done = [{SHAPE_KEY: keys[i], **row} for i, row in zip(chunks[task.label], future.result())]
            _write(pa.Table.from_pylist(done), parts / f"{names[task.label]}.parquet")
            for row in done:
                rows[row.pop(SHAPE_KEY)] = row
            bar.update(len(done))
    except BaseException:
        bounded.cancel()
        raise
    finally:
        bar.close()
