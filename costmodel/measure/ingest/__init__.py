"""Turn host and guest measurement output into rows of the dataset schema.

Three inputs are understood, told apart by content (a file may hold more than one):

- the collector's ``costmodel-collect/1`` lines (``costmodel/measure/collector/costmodel-collect``, format in
  ``docs/collector-format.md``): split/merge counts and times, conversion counts and times;
- QEMU's ``kvm_convert_memory`` trace events: conversions and bytes by direction;
- the guest's boot log (dmesg, or a serial console capture): SWIOTLB size and placement,
  atomic DMA pools.

One row is made per run. Collector lines carry their run id; a QEMU trace or guest log
belongs to the only run, or — with several runs — to the run whose id its file name starts
with (the sweep driver names them ``RUN_ID.qemu-trace.log``, ``RUN_ID.console.log``).

The VM shape (platform, memory, vCPUs, virtqueues, hugepage size) is not in the output and
is given by the caller. :func:`ingest` validates the rows and appends them to a dataset
through :func:`costmodel.data.append` (de-duplicated by run id, written atomically).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from costmodel import parse
from costmodel.errors import Argument, InputError
from costmodel.measure.ingest.collector import (
    CollectorFile,
    CollectorRun,
    parse_collector,
)
from costmodel.measure.ingest.dmesg import GuestDmesg, looks_like_dmesg, parse_dmesg
from costmodel.measure.ingest.qemu import (
    QemuTrace,
    looks_like_qemu_trace,
    parse_qemu_trace,
)
from costmodel.shape import VmShape, devices_spec

__all__ = [
    "Inputs", "read_inputs", "build_rows", "ingest", "IngestResult",
    "parse_collector", "parse_qemu_trace", "parse_dmesg",
    "CollectorFile", "CollectorRun", "QemuTrace", "GuestDmesg",
]

#: Column order of the rows made here: the dataset schema first, extras after.
SCHEMA_COLUMNS = ["platform", "memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "boot_vcpus", "numa_nodes",
                  "lowmem_bytes", "devices", "kaslr", "svsm", "atomic_pools",
                  "splits", "merges", "conversion_ops", "conversion_cycles",
                  "split_merge_cycles", "source", "date", "kernel", "notes", "run_id"]
EXTRA_COLUMNS = ["split_merge_event_cycles", "conversion_op_cycles", "conversion_ns",
                 "split_merge_ns", "vmemmap_ns", "tsc_hz", "split_probe", "merge_probe",
                 "splits_other_processes", "merges_other_processes",
                 "to_shared_bytes", "to_private_bytes", "qemu_conversions",
                 "qemu_to_shared_bytes", "qemu_to_private_bytes", "swiotlb_bytes",
                 "swiotlb_start", "atomic_pool_bytes", "atomic_pool_count", "hypercall_exits",
                 "psc_vmgexits", "guest_kernel"]

#: SVM_VMGEXIT_PSC: the GHCB page state change request (arch/x86/include/uapi/asm/svm.h).
VMGEXIT_PSC = 0x80000010
#: KVM_EXIT_HYPERCALL (include/uapi/linux/kvm.h): carries KVM_HC_MAP_GPA_RANGE.
EXIT_HYPERCALL = 3

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$")


@dataclass
class Inputs:
    """Everything read from a set of files, before it is turned into rows."""

    collector: list[CollectorFile] = field(default_factory=list)
    qemu: list[QemuTrace] = field(default_factory=list)
    dmesg: list[GuestDmesg] = field(default_factory=list)
    detected: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def runs(self) -> dict[str, CollectorRun]:
        out: dict[str, CollectorRun] = {}
        for cf in self.collector:
            for run_id, run in cf.runs.items():
                if run_id in out:
                    raise InputError(f"{cf.path}:{run.lines[0]}", run_id,
                                     f"a run id not already used in {out[run_id].path} "
                                     f"(line {out[run_id].lines[0]}); one run per id")
                out[run_id] = run
        return out


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(str(path), "no such file", "an existing collector output, QEMU trace "
                         "or guest dmesg file") from None
    except OSError as error:
        raise InputError(str(path), error.strerror or str(error), "a readable file") from None
    return data.decode("utf-8", errors="replace")


def read_inputs(paths) -> Inputs:
    """Read and classify files by content; ``Inputs.detected`` says what each one was.

    Raises
    ------
    InputError
        A file that is none of the three kinds, or a malformed collector line.
    """
    inputs = Inputs()
    if not paths:
        raise InputError("OUTPUT", "no files", "one or more collector, QEMU trace or dmesg files")
    for raw in paths:
        path = Path(raw)
        text = _read_text(path)
        kinds = []
        # A kind counts only when lines of it were read, not when its name is mentioned.
        if re.search(r"^\s*costmodel-collect/", text, re.MULTILINE):
            parsed = parse_collector(text, str(path))
            inputs.collector.append(parsed)
            inputs.messages += parsed.messages
            kinds.append(f"collector output ({len(parsed.runs)} run(s): "
                         + ", ".join(sorted(parsed.runs)) + ")")
        hint = ""
        if looks_like_qemu_trace(text):
            trace = parse_qemu_trace(text, str(path))
            if trace.events:
                inputs.qemu.append(trace)
                inputs.messages += trace.messages
                kinds.append(f"QEMU trace ({trace.events} kvm_convert_memory events)")
            elif trace.malformed:
                hint = (f" ({len(trace.malformed)} line(s) name kvm_convert_memory, none of the form "
                        "'kvm_convert_memory start 0x… size 0x… private_to_shared', first at line "
                        f"{trace.malformed[0]})")
        if looks_like_dmesg(text):
            log = parse_dmesg(text, str(path))
            if any(b.kernel or b.swiotlb_bytes or b.atomic_pools or b.encryption for b in log.boots):
                inputs.dmesg.append(log)
                inputs.messages += log.messages
                kinds.append(f"guest dmesg ({len(log.boots)} boot(s))")
        if not kinds:
            raise InputError(str(path), "a file of unknown kind",
                             "collector output (lines starting 'costmodel-collect/1'), a QEMU "
                             "trace with kvm_convert_memory events, or a guest dmesg with "
                             "'software IO TLB' lines" + hint)
        inputs.detected.append(f"{path}: " + "; ".join(kinds))
    return inputs


def _owner(path: str, run_ids: list[str]) -> str | None:
    """The run a QEMU trace or guest log belongs to, by file name (longest id first)."""
    name = Path(path).name
    for run_id in sorted(run_ids, key=len, reverse=True):
        if name.startswith(run_id) and (len(name) == len(run_id) or not name[len(run_id)].isalnum()):
            return run_id
    return None


def _attach(items, run_ids: list[str], what: str) -> dict[str, object]:
    attached: dict[str, object] = {}
    for item in items:
        if len(run_ids) == 1:
            owner = run_ids[0]
        else:
            owner = _owner(item.path, run_ids)
            if owner is None:
                raise InputError(item.path, Path(item.path).name,
                                 f"a {what} whose file name starts with one of the run ids "
                                 f"({', '.join(sorted(run_ids))}), e.g. {sorted(run_ids)[0]}"
                                 f".{'qemu-trace' if what == 'QEMU trace' else 'console'}.log, "
                                 "when the inputs hold several runs")
        if owner in attached:
            raise InputError(item.path, f"a second {what} for run {owner!r}",
                             f"one {what} per run (the first is {attached[owner].path})")
        attached[owner] = item
    return attached


def _cycles(ns, tsc_hz, digits: int = 0):
    """Nanoseconds → cycles at ``tsc_hz``, rounded (whole cycles for totals). [cycles]"""
    if ns is None or tsc_hz is None:
        return math.nan
    value = round(ns * tsc_hz / 1e9, digits)
    return int(value) if digits == 0 else value


def _nan(value):
    return math.nan if value is None else value


def _date(run: CollectorRun) -> str:
    if re.match(r"\d{4}-\d{2}-\d{2}", run.started or ""):
        return run.started[:10]
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")


def build_rows(inputs: Inputs, shape: VmShape, *, run_id: str | None = None,
               tsc_hz: float | None = None, skip_truncated: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """One dataset row per run.

    Parameters
    ----------
    inputs : Inputs
        From :func:`read_inputs`.
    shape : VmShape
        The VM shape every run measured; ``hugepage_bytes`` None takes each run's from its
        collector header.
    run_id : str, optional
        Name of the run when there is exactly one (overrides the collector's).
    tsc_hz : float, optional
        TSC frequency for ns → cycles; default: each run's header. [Hz]
    skip_truncated : bool
        Leave out runs without an ``end`` line (with a message) instead of failing.

    Returns
    -------
    (DataFrame, list of str)
        Rows (schema columns first, then extras) and messages for the user.

    Raises
    ------
    InputError
        A truncated run (unless skipped), files that cannot be matched to runs, a bad run
        id, no hugepage size anywhere.
    """
    messages = list(inputs.messages)
    runs = inputs.runs
    if tsc_hz is not None and not (tsc_hz > 0 and math.isfinite(tsc_hz)):
        raise InputError(Argument("tsc_hz"), tsc_hz, "a TSC frequency in Hz greater than zero, e.g. 2.4e9")
    for rid, run in sorted(runs.items()):
        if not run.complete:
            where = f"{run.path}:{run.lines[1]}"
            if skip_truncated:
                messages.append(f"{where}: run {rid!r} is truncated (no end line): left out")
                continue
            why = ("truncated output: the collector stopped before printing all totals" if run.began
                   else "no begin line either: the collector never attached its probes")
            raise InputError(where, f"run {rid!r} without an end line ({why})",
                             "a complete run; re-measure, or pass --skip-truncated to ingest "
                             "the complete runs only")
    runs = {rid: run for rid, run in runs.items() if run.complete}
    if not runs:
        found = ", ".join(Path(p.path).name for p in inputs.collector + inputs.qemu + inputs.dmesg)
        raise InputError("OUTPUT", f"no complete collector run (in {found})",
                         "collector output with at least one complete run: a QEMU trace or "
                         "guest log only adds detail to a run, it measures no splits")
    ids = sorted(runs)
    if run_id is not None:
        if not _RUN_ID.match(run_id):
            raise InputError(Argument("run_id"), run_id, "letters, digits and ._:+- (no spaces, ≤ 128)")
        if len(ids) > 1:
            raise InputError(Argument("run_id"), run_id, f"no --run-id when the inputs hold several runs "
                             f"({', '.join(ids)}); each keeps its own")
        runs = {run_id: runs[ids[0]]}
        ids = [run_id]
    qemu = _attach(inputs.qemu, ids, "QEMU trace")
    dmesg = _attach(inputs.dmesg, ids, "guest dmesg")
    rows = []
    for rid in ids:
        run = runs.get(rid)
        rows.append(_row(rid, run, qemu.get(rid), dmesg.get(rid), shape, tsc_hz, messages))
    frame = pd.DataFrame(rows, columns=SCHEMA_COLUMNS + EXTRA_COLUMNS)
    return frame, messages


def _row(rid, run, trace, log, shape: VmShape, tsc_hz, messages) -> dict:
    notes = []
    hugepage = shape.hugepage_bytes
    if run.hugepage:
        recorded = parse.hugepage(run.hugepage, f"{run.path}:{run.lines[0]} hugepage")
        if hugepage is not None and hugepage != recorded:
            raise InputError(Argument("hugepage"), shape.hugepage_bytes,
                             f"the size the collector recorded for run {rid!r} "
                             f"({run.hugepage}, {run.path}:{run.lines[0]}), or leave --hugepage out")
        hugepage = recorded
    if hugepage is None:
        raise InputError(Argument("hugepage"), "nothing", f"the guest_memfd hugepage size of run {rid!r} "
                         "(2M or 1G): the collector header does not say it")
    row = dict.fromkeys(SCHEMA_COLUMNS + EXTRA_COLUMNS, math.nan)
    row.update(platform=shape.platform, memory_bytes=shape.memory_bytes, vcpus=shape.vcpus,
               virtqueues=_nan(shape.virtqueues), hugepage_bytes=hugepage, run_id=rid,
               boot_vcpus=_nan(shape.boot_vcpus), numa_nodes=shape.numa_nodes, lowmem_bytes=_nan(shape.lowmem_bytes),
               devices=devices_spec(shape.devices), kaslr=shape.kaslr, svsm=shape.svsm,
               atomic_pools=shape.atomic_pools, swiotlb_bytes=_nan(shape.swiotlb_bytes))
    sources = []
    clock = tsc_hz or run.tsc_hz
    if clock is None and (run.conversions or run.splits):
        messages.append(f"{run.path}: run {rid!r} has tsc_hz=unknown and no --tsc-hz: "
                        "cycle columns left empty (times kept in *_ns columns)")
    splits, merges = run.split_count, run.merge_count
    sm_ns, conv_ns, ops = run.split_merge_ns, run.conversion_ns, run.conversion_ops
    row.update(
        splits=_nan(splits), merges=_nan(merges), conversion_ops=_nan(ops),
        conversion_ns=_nan(conv_ns), split_merge_ns=_nan(sm_ns), vmemmap_ns=_nan(run.vmemmap_ns),
        conversion_cycles=_cycles(conv_ns, clock), split_merge_cycles=_cycles(sm_ns, clock),
        tsc_hz=_nan(clock), split_probe=run.split_probe or "", merge_probe=run.merge_probe or "",
        splits_other_processes=_nan(run.splits[run.split_probe].other if run.split_probe else None),
        merges_other_processes=_nan(run.merges[run.merge_probe].other if run.merge_probe else None),
        kernel=run.kernel, date=_date(run),
    )
    if run.conversion_probed:
        row.update(to_shared_bytes=run.conversion_bytes("to_shared"),
                   to_private_bytes=run.conversion_bytes("to_private"))
    events = (splits or 0) + (merges or 0)
    if sm_ns is not None and events:
        row["split_merge_event_cycles"] = _cycles(sm_ns / events, clock, 1)
    if conv_ns is not None and ops:
        if conv_ns >= (sm_ns or 0):
            # The plain conversion op: its time without the split/merge work inside it.
            row["conversion_op_cycles"] = _cycles((conv_ns - (sm_ns or 0)) / ops, clock, 1)
        else:
            messages.append(f"{run.path}: run {rid!r}: split/merge time ({sm_ns} ns) exceeds "
                            f"conversion time ({conv_ns} ns), so some splits/merges happened "
                            "outside conversions (e.g. at teardown); conversion_op_cycles left empty")
    if run.exits:
        row["hypercall_exits"] = run.exits.get(EXIT_HYPERCALL, 0)
    if run.vmgexits:
        row["psc_vmgexits"] = run.vmgexits.get(VMGEXIT_PSC, 0)
    sources.append(f"{Path(run.path).name} lines {run.lines[0]}-{run.lines[1]}")
    notes.append(f"host {run.host or '?'} pid {run.pid}, HugeTLB vmemmap optimisation {run.hvo}; "
                 f"split probe {run.split_probe or 'none'}, merge probe {run.merge_probe or 'none'}")
    if run.timing_is_vmemmap_only:
        notes.append("fallback probes only: split/merge time not measured (vmemmap part in vmemmap_ns)")
    if not run.conversion_probed:
        notes.append("no conversion probe: conversion_ops and conversion_cycles empty")
    if trace is not None:
        row.update(qemu_conversions=sum(trace.conversions.values()),
                   qemu_to_shared_bytes=trace.bytes["to_shared"],
                   qemu_to_private_bytes=trace.bytes["to_private"])
        sources.append(Path(trace.path).name)
    if log is not None:
        boot = log.last
        row.update(swiotlb_bytes=_nan(boot.swiotlb_bytes) if boot.swiotlb_bytes else row["swiotlb_bytes"], swiotlb_start=_nan(boot.swiotlb_start),
                   atomic_pool_bytes=_nan(boot.atomic_pool_bytes),
                   atomic_pool_count=len(boot.atomic_pools) if boot.atomic_pools else math.nan,
                   **({"atomic_pools": True} if boot.atomic_pools else {}),  # the shape input: pools were built
                   guest_kernel=boot.kernel)
        sources.append(Path(log.path).name)
        if boot.kernel:
            notes.append(f"guest kernel {boot.kernel}")
    row["source"] = "costmodel ingest: " + ", ".join(sources)
    row["notes"] = "; ".join(notes)
    for key in ("split_probe", "merge_probe", "guest_kernel"):
        if isinstance(row[key], float):
            row[key] = ""
    return row


@dataclass
class IngestResult:
    """What :func:`ingest` did: the rows it made, what the dataset holds now, messages."""

    rows: pd.DataFrame
    dataset: Path
    appended: int
    replaced: int
    detected: list[str]
    messages: list[str]


def ingest(paths, dataset, shape: VmShape, *, run_id: str | None = None,
           tsc_hz: float | None = None, skip_truncated: bool = False) -> IngestResult:
    """Read output files, make one row per run and append them to ``dataset``.

    Appending goes through :func:`costmodel.data.append`: the rows are validated against the
    schema, rows with the same run id are replaced (de-duplication), and the file is written
    atomically — on any error nothing is appended.
    """
    from costmodel import data  # the dataset schema (issue 3)

    inputs = read_inputs(paths)
    rows, messages = build_rows(inputs, shape, run_id=run_id, tsc_hz=tsc_hz,
                                skip_truncated=skip_truncated)
    dataset = Path(dataset)
    before = set()
    old = None
    if dataset.exists():  # read once: append() merges into these runs
        old = data.load(dataset)
        before = set(old["run_id"].astype(str))
    data.append(dataset, rows, key="run_id", old=old, reload=False)
    replaced = len(before & set(rows["run_id"].astype(str)))
    return IngestResult(rows, dataset, len(rows) - replaced, replaced, inputs.detected, messages)

