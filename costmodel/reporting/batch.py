"""Batches: one report per entry of a sweep file, rendered on a Dask cluster.

The cluster is a local one (one single-threaded worker process per core, on 127.0.0.1)
or an existing scheduler's (:mod:`costmodel.cluster`): one code path. Each worker keeps
one warm kernel (:mod:`~costmodel.reporting.workers`), so later reports skip the kernel
start and the imports. Workers send each report back as bytes and this process writes its
files as one set (no shared filesystem needed). A worker that dies fails only the report
it held: the scheduler reruns it elsewhere, and after ``allowed_failures`` reruns it is
failed. Ctrl-C cancels what runs and what waits, lets a report being written finish, and
still writes the index. The batch ends with ``index.html`` (:mod:`~costmodel.reporting.index`).
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import math
import os
import signal
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from costmodel import files, parse
from costmodel.errors import Argument, InputError
from costmodel.reporting.export import FORMATS, PDF_ENGINES, parse_formats
from costmodel.reporting.index import write_index
from costmodel.reporting.notebooks import (
    check_parameters,
    notebook_parameters,
    notebook_path,
    read_notebook,
    report_name,
)


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
    parse.yaml_budget(data, str(path))  # an alias bomb is refused before it is walked
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
        size = math.prod(len(c) for c in choices)
        if size > MAX_ENTRIES:
            raise InputError(str(path), f"a grid of {size:,} reports", f"at most {MAX_ENTRIES:,} reports in one batch "
                             "(split the sweep)")
        return [dict(zip(keys, combo)) for combo in itertools.product(*choices)]
    raise InputError(str(path), type(data).__name__, "a list of parameter maps or a map of parameter lists (a grid)")


#: Reports in one batch at most: a grid file of a few lines can ask for millions.
MAX_ENTRIES = 10_000


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


INTERRUPTED = "not rendered: the batch was interrupted"
#: The kinds of file a batch writes (reports and index); their staged temporaries left by a killed batch are removed.
KINDS = ("html", "pdf", "ipynb", "csv", "json")


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a batch; ``outcomes`` has every entry (unfinished ones say so) and the index was written."""

    def __init__(self, outcomes: list[Outcome]):
        super().__init__(f"{sum(o.ok for o in outcomes)} of {len(outcomes)} reports written before the interrupt")
        self.outcomes = outcomes


def default_jobs() -> int:
    """One worker per core available to this process."""
    from costmodel.cluster import default_workers

    return default_workers()


@contextlib.contextmanager
def _uninterrupted():
    """Hold Ctrl-C back until the block is done (a report's files are written as one set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _died(tries: int) -> str:
    return f"the worker process rendering it died, in each of {tries} {'try' if tries == 1 else 'tries'}"


def render_batch(entries: Iterable[Mapping[str, object]], outdir: str | os.PathLike = "reports",
                 jobs: int | None = None, formats: Sequence[str] = FORMATS, notebook: str = "report",
                 pdf_engine: str = "weasyprint", progress: bool = True, scheduler=None,
                 allowed_failures: int | None = None) -> list[Outcome]:
    """Render one report per entry on a Dask cluster and write ``outdir/index.html``.

    Entries are checked first (unknown parameters, invalid values, two entries with the
    same file name); an invalid entry fails alone, the others run. Returns one
    :class:`Outcome` per entry, in entry order.

    Parameters
    ----------
    jobs : int, optional
        Worker processes of the local cluster (default: one per core). Not with ``scheduler``.
    scheduler : str or distributed.Client, optional
        Run on an existing cluster: its scheduler's address (``tcp://HOST:8786``) or a client
        on it (left open). Every worker needs the same costmodel, and any file an entry names,
        at the same path; the reports come back to this process, which writes them. The
        batch's warm kernels are closed when it ends.
    allowed_failures : int, optional
        Reruns of a report whose worker process died (default 2, so 3 tries). An existing
        scheduler keeps its own setting.

    Raises
    ------
    BatchInterrupted
        On Ctrl-C, after the index was written with what finished.
    """
    formats = parse_formats(formats)
    pdf_engine = parse.choice(pdf_engine, PDF_ENGINES, Argument("pdf_engine"))
    if jobs is not None and scheduler is not None:
        raise InputError(Argument("jobs"), jobs, "no worker count with an existing scheduler (it has its own workers)")
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise InputError(Argument("jobs"), jobs, "a whole number ≥ 1")
    path = notebook_path(notebook)
    declared = notebook_parameters(read_notebook(path))
    batch = _Batch([dict(e) for e in entries], Path(outdir), path, formats, pdf_engine, progress)
    names: dict[str, tuple[int, dict]] = {}
    for i, entry in enumerate(batch.entries, start=1):
        try:
            values = check_parameters(entry, declared, where=f"entry {i}: parameter", notebook=path.stem)
            name = report_name(path.stem, values, declared)
        except InputError as error:
            batch.outcomes[i] = Outcome(i, entry, error=str(error))
            continue
        if name in names and names[name][1] != values:
            # different inputs, one name (two calibrations called cal.json in two folders):
            # the later entry's name gets a digest of its parameters, stable for the sweep
            name = f"{name}-{_digest(values)}"
        if name in names:
            batch.outcomes[i] = Outcome(i, entry, name, error=f"entry {i}: same report as entry {names[name][0]} ({name})")
            continue
        names[name] = (i, values)
        batch.todo.append(_Entry(i, values, name))
    with _only_batch_in(batch.outdir):
        return batch.render(scheduler, None if scheduler is not None else jobs, allowed_failures)


def _digest(values: Mapping[str, object]) -> str:
    """Eight hex digits of the entry's parameters (sorted keys, as text)."""
    import hashlib
    import json

    text = json.dumps({k: str(v) for k, v in values.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@contextlib.contextmanager
def _only_batch_in(outdir: Path):
    """Lock ``outdir`` for this batch and remove the temporaries a killed batch left there."""
    try:
        with files.lock_directory(outdir):
            files.remove_staged(outdir, KINDS)
            yield
    except files.DirectoryBusy:
        raise InputError(Argument("outdir"), str(outdir), "a directory no other costmodel batch is writing into "
                         "(one is running there now)") from None


@dataclass
class _Entry:
    """A checked entry, to be rendered."""

    index: int
    values: dict
    name: str


@dataclass
class _Batch:
    """One batch under way: what was asked, what is left, what came of each entry so far."""

    entries: list[dict]
    outdir: Path
    path: Path
    formats: tuple[str, ...]
    pdf_engine: str
    progress: bool
    todo: list[_Entry] = field(default_factory=list)
    outcomes: dict[int, Outcome] = field(default_factory=dict)

    def render(self, scheduler, jobs, allowed_failures) -> list[Outcome]:
        """Render what is to do, then write the index; on Ctrl-C, index what finished and raise."""
        title = f"costmodel reports ({self.path.stem})"
        try:
            if self.todo:
                self._on_cluster(scheduler, jobs, allowed_failures)
            result = [self.outcomes[i] for i in sorted(self.outcomes)]
            with _uninterrupted():
                write_index(result, self.outdir, title=title)
        except KeyboardInterrupt:
            result = [self.outcomes.get(i) or Outcome(i, entry, error=INTERRUPTED)
                      for i, entry in enumerate(self.entries, start=1)]
            write_index(result, self.outdir, title=title)
            raise BatchInterrupted(result) from None
        return result

    def _on_cluster(self, scheduler, jobs, allowed_failures) -> None:
        """Render the entries to do on the cluster, recording each outcome once its files are written."""
        from costmodel import cluster as cluster_module
        from costmodel.reporting import workers

        exporters = ("html", "pdf") if "pdf" in self.formats and self.pdf_engine == "weasyprint" else ("html",)
        reference = workers.notebook_reference(self.path)
        bar = None
        with cluster_module.connect(scheduler, jobs, allowed_failures) as cluster:
            client = cluster.client
            token = os.urandom(4).hex()
            plugin = workers.WarmKernels(reference, exporters, workers.plugin_name(token))
            try:
                cluster_module.check_versions(client)
                client.register_plugin(plugin, name=plugin.name)
                if self.progress:
                    print(f"costmodel batch: {cluster_module.describe(cluster)}", file=sys.stderr, flush=True)
                bar = cluster_module.Progress(len(self.entries), "reports", "report", initial=len(self.outcomes),
                                              disable=not self.progress)
                identity = cluster_module.identity()
                tasks = [cluster_module.Task(entry, workers.build_report, (entry.values, entry.name, reference,
                                             self.formats, self.pdf_engine, identity, plugin.name),
                                             key=f"report-{entry.index}-{entry.name}-{token}") for entry in self.todo]
                bounded = cluster_module.Bounded(cluster, tasks,
                                                 on_change=lambda running: bar.now(t.label.name for t in running))
                try:
                    for task, future in bounded:
                        with _uninterrupted():
                            self.outcomes[task.label.index] = self._collect(task.label, future, cluster.tries)
                            bar.update()
                except KeyboardInterrupt:
                    running = [t.key for t in bounded.cancel()]
                    with contextlib.suppress(Exception):  # a cancelled report still runs on its kernel: stop it
                        client.run(workers.interrupt, plugin.name, running)
                    raise
            finally:
                if bar is not None:
                    bar.close()
                if not cluster.local:  # its kernels go with the batch (a local cluster closes as a whole)
                    with contextlib.suppress(Exception):
                        client.unregister_worker_plugin(plugin.name)

    def _collect(self, entry: _Entry, future, tries: int) -> Outcome:
        """The outcome of one finished future; a built report's files are written here, as one set."""
        from costmodel import cluster as cluster_module
        from costmodel.reporting.report import Built, write

        i, values, name = entry.index, entry.values, entry.name
        if future.status == "finished":
            result = future.result()
            future.release()
            if not isinstance(result, Built):
                return Outcome(i, values, name, error=result.error, seconds=result.seconds)
            try:
                done = write(result, self.outdir)
            except OSError as error:
                return Outcome(i, values, name, error=f"writing {self.outdir}: {error}", seconds=result.seconds)
            return Outcome(i, values, done.name, {k: str(v) for k, v in done.paths.items()}, done.summary,
                           seconds=done.seconds)
        error = future.exception() if future.status == "error" else None
        future.release()
        if cluster_module.died(error):
            return Outcome(i, values, name, error=_died(tries))
        if error is not None:
            return Outcome(i, values, name, error=f"{type(error).__name__}: {error}")
        return Outcome(i, values, name, error=f"the cluster dropped it ({future.status})")
