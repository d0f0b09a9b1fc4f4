"""Simulator grids on Dask: many shapes, their distributions in one Parquet file, resumable (issue 12).

The shapes are cut into chunks; each chunk is one task (:mod:`costmodel.cluster`: a local
cluster or an existing scheduler, one task per worker thread) that simulates its shapes
and returns one row per shape: the shape's columns, the seeds, and the mean, 5th and 95th
percentile of splits, merges and each source's split hugepages. Each finished chunk is
written at once to ``OUT.parts/<chunk key>.parquet``; a rerun with the same shapes and
seeds skips the chunks already there, so an interrupted grid resumes where it stopped.
When every chunk is done they are joined, in shape order, into ``OUT`` and the parts are
removed.

This module drives the cluster (whose version check reads SymPy's version); the work each
task does is the simulator's alone (:func:`simulate_chunk`), which never loads SymPy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from costmodel.errors import Argument, InputError
from costmodel.shape import VmShape

#: Shapes per task.
CHUNK = 8


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


def _chunk_key(shapes, seeds, first_seed, deterministic, params) -> str:
    text = json.dumps([[s.to_columns() for s in shapes], seeds, first_seed, deterministic, params],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _write_parquet(frame, path: Path) -> None:
    """Write atomically: a temporary file beside ``path``, then a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def run_grid(shapes: list[VmShape], out, seeds: int, *, first_seed: int = 0, deterministic: bool = False,
             params=None, scheduler=None, workers: int | None = None, chunk: int = CHUNK,
             progress: bool = True) -> Path:
    """Simulate every shape on a Dask cluster and write one Parquet row per shape to ``out``. [1]"""
    import pandas as pd

    from costmodel import cluster as cluster_module
    from costmodel.simulate import Parameters

    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise InputError(Argument("output"), str(out), "a file name ending in .parquet")
    if not shapes:
        raise InputError(Argument("grid"), "no shapes", "at least one shape")
    params = (params or Parameters()).to_dict()
    parts = out.with_name(out.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    chunks = [shapes[i:i + chunk] for i in range(0, len(shapes), chunk)]
    keys = [_chunk_key(c, seeds, first_seed, deterministic, params) for c in chunks]
    todo = [i for i, key in enumerate(keys) if not (parts / f"{key}.parquet").exists()]
    if todo:
        with cluster_module.connect(scheduler, workers) as cluster:
            cluster_module.check_versions(cluster.client)
            if progress:
                print(f"costmodel simulate: {cluster_module.describe(cluster)}", file=sys.stderr, flush=True)
            bar = cluster_module.Progress(len(chunks), "shape chunks", "chunk", initial=len(chunks) - len(todo),
                                          disable=not progress)
            tasks = [cluster_module.Task(i, simulate_chunk, (chunks[i], seeds, first_seed, deterministic, params),
                                         key=f"simulate-{keys[i]}") for i in todo]
            bounded = cluster_module.Bounded(cluster, tasks, on_change=lambda running: bar.now(
                f"chunk {t.label}" for t in running))
            try:
                for task, future in bounded:
                    _write_parquet(pd.DataFrame(future.result()), parts / f"{keys[task.label]}.parquet")
                    bar.update()
            except BaseException:
                bounded.cancel()
                raise
            finally:
                bar.close()
    frame = pd.concat([pd.read_parquet(parts / f"{key}.parquet") for key in keys], ignore_index=True)
    _write_parquet(frame, out)
    shutil.rmtree(parts, ignore_errors=True)
    return out
