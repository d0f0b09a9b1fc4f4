"""Batches: one report per entry of a sweep file, rendered in parallel worker processes.

Each worker keeps one warm kernel (:class:`~costmodel.reporting.execute.WarmKernel`), so
later reports skip the kernel start and the imports; a worker that dies fails only the
entry it held. The batch ends with ``index.html`` (:mod:`~costmodel.reporting.index`).
"""

from __future__ import annotations

import csv
import itertools
import multiprocessing
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from costmodel.errors import InputError
from costmodel.reporting.execute import ReportError, WarmKernel
from costmodel.reporting.export import FORMATS, parse_formats
from costmodel.reporting.index import write_index
from costmodel.reporting.notebooks import (
    check_parameters,
    notebook_parameters,
    notebook_path,
    read_notebook,
    report_name,
)
from costmodel.reporting.report import render


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
