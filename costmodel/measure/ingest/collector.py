"""Reader of the collector's line format ``costmodel-collect/1``.

The format is documented in ``docs/collector-format.md``; the collector is
``costmodel/measure/collector/costmodel-collect``. One file may hold several runs (one per QEMU process),
interleaved or concatenated; lines are grouped by their ``run=`` field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from costmodel.errors import InputError

TAG = "costmodel-collect/"
VERSION = 1
PREFIX = f"{TAG}{VERSION} "

#: Fields each known record must carry (others are ignored, so newer /1 writers may add).
REQUIRED = {
    "header": ("run", "pid", "kernel", "unit"),
    "probe": ("run", "role", "rank", "name", "status"),
    "begin": ("run",),
    "convert": ("run", "probe", "direction", "bytes", "count", "ns"),
    "split": ("run", "probe", "count", "ns"),
    "merge": ("run", "probe", "count", "ns"),
    "attributes": ("run", "probe", "direction", "bytes", "count"),
    "exit": ("run", "probe", "reason", "count"),
    "vmgexit": ("run", "probe", "code", "count"),
    "end": ("run",),
}
INTEGER_FIELDS = ("pid", "rank", "bytes", "count", "ns", "other", "elapsed_ns", "reason")
DIRECTIONS = ("to_shared", "to_private")
UNITS = ("ns",)

_RANKED = re.compile(r"^(kprobe|tracepoint):")


@dataclass
class Timed:
    """Calls of one probed function: how many, and their summed duration. [1], [ns]"""

    count: int = 0
    ns: int = 0
    other: int = 0


@dataclass
class CollectorRun:
    """Everything the collector printed for one QEMU process.

    Attributes
    ----------
    run_id : str
        The collector's ``run=``.
    pid : int or None
        QEMU's process id.
    kernel, host, started : str
        Host kernel release, host name, start time (UTC, ISO 8601).
    tsc_hz : float or None
        TSC frequency for ns → cycles, when the collector knew it. [Hz]
    hugepage : str or None
        Hugepage size as given to the collector (``2M``, ``1G``).
    fallback : bool
        Splits/merges counted only with the vmemmap fallback probes.
    hvo : str
        HugeTLB vmemmap optimisation on the host: ``on``, ``off`` or ``unknown``.
    probes : dict
        ``probe name → (role, rank, status)`` from the ``probe`` lines.
    conversions : dict
        ``(direction, bytes) → Timed`` from ``kvm_gmem_convert_execute_work``.
    splits, merges : dict
        ``probe name → Timed``.
    attributes, exits, vmgexits : dict
        ``(direction, bytes) → count``, ``reason → count``, ``code → count``.
    complete : bool
        An ``end`` line was read.
    path : str
        File it came from; ``lines`` the first and last line numbers.
    """

    run_id: str
    path: str = ""
    lines: tuple[int, int] = (0, 0)
    pid: int | None = None
    kernel: str = ""
    host: str = ""
    started: str = ""
    tsc_hz: float | None = None
    hugepage: str | None = None
    fallback: bool = False
    hvo: str = "unknown"
    probes: dict = field(default_factory=dict)
    conversions: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)
    merges: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    exits: dict = field(default_factory=dict)
    vmgexits: dict = field(default_factory=dict)
    began: bool = False
    complete: bool = False
    elapsed_ns: int | None = None

    # ------------------------------------------------------------------ derived totals
    def _primary(self, table: dict) -> tuple[str | None, Timed | None]:
        """The lowest-rank probe of a role that reported (they call one another)."""
        if not table:
            return None, None
        name = min(table, key=lambda n: (self.probes.get(n, ("", 99, ""))[1], n))
        return name, table[name]

    @property
    def split_probe(self) -> str | None:
        return self._primary(self.splits)[0]

    @property
    def merge_probe(self) -> str | None:
        return self._primary(self.merges)[0]

    @property
    def split_count(self) -> int | None:
        timed = self._primary(self.splits)[1]
        return None if timed is None else timed.count

    @property
    def merge_count(self) -> int | None:
        timed = self._primary(self.merges)[1]
        return None if timed is None else timed.count

    @property
    def timing_is_vmemmap_only(self) -> bool:
        """Split/merge times come only from the vmemmap fallbacks (a lower bound)."""
        names = [n for n in (self.split_probe, self.merge_probe) if n]
        return bool(names) and all("hugetlb_vmemmap_" in n for n in names)

    @property
    def split_merge_ns(self) -> int | None:
        """Time in all splits and merges, from the primary probes; None with fallbacks only. [ns]"""
        if self.timing_is_vmemmap_only or (not self.splits and not self.merges):
            return None
        return sum(t.ns for t in (self._primary(self.splits)[1], self._primary(self.merges)[1]) if t)

    @property
    def vmemmap_ns(self) -> int | None:
        """Time restoring/optimizing vmemmap inside splits and merges. [ns]"""
        found = [t.ns for table in (self.splits, self.merges) for n, t in table.items()
                 if "hugetlb_vmemmap_" in n]
        return sum(found) if found else None

    @property
    def conversion_probed(self) -> bool:
        """A conversion probe was attached (then no ``convert`` line means zero calls)."""
        return bool(self.conversions) or any(
            role == "convert" and status == "used" for role, _, status in self.probes.values())

    @property
    def conversion_ops(self) -> int | None:
        return sum(t.count for t in self.conversions.values()) if self.conversion_probed else None

    @property
    def conversion_ns(self) -> int | None:
        return sum(t.ns for t in self.conversions.values()) if self.conversion_probed else None

    def conversion_bytes(self, direction: str) -> int:
        return sum(size * t.count for (d, size), t in self.conversions.items() if d == direction)


@dataclass
class CollectorFile:
    """The runs of one collector output file, and what the reader skipped."""

    path: str
    runs: dict[str, CollectorRun]
    unknown_records: dict[str, int] = field(default_factory=dict)
    foreign_lines: int = 0

    @property
    def messages(self) -> list[str]:
        out = []
        if self.unknown_records:
            kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(self.unknown_records.items()))
            total = sum(self.unknown_records.values())
            out.append(f"{self.path}: skipped {total} line(s) of unknown record type(s) "
                       f"({kinds}); expected one of {', '.join(REQUIRED)}")
        return out


def _fail(path: str, number: int, text: str, expected: str) -> InputError:
    return InputError(f"{path}:{number}", text if len(text) <= 160 else text[:157] + "...",
                      expected)


#: The largest count or duration a run may add up to (a dataset's int64 column). [1, ns]
INT64_MAX = 2**63 - 1
#: Run ids as ``costmodel-collect --run-id`` accepts them (they name files).
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$")


def _within_int64(path: str, number: int, text: str, *totals: int) -> None:
    if any(total > INT64_MAX for total in totals):
        raise _fail(path, number, text, f"counts and durations whose totals per run stay within {INT64_MAX}")


def _parse_fields(path: str, number: int, text: str, body: str) -> dict[str, str]:
    values = {}
    for token in body.split():
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise _fail(path, number, text, f"space-separated key=value fields after the record "
                        f"type (found {token!r}); see docs/collector-format.md")
        values[key] = value
    return values


def parse_collector(text: str, path: str = "<collector output>") -> CollectorFile:
    """Read collector output.

    Parameters
    ----------
    text : str
        The file's content.
    path : str
        Its name, for messages (``FILE:LINE: got …; expected …``).

    Returns
    -------
    CollectorFile
        Runs by run id, plus counts of what was skipped. Truncated runs are returned with
        ``complete=False``; deciding what to do with them is the caller's job.

    Raises
    ------
    InputError
        A line of another format version, a known record missing a required field, a
        value of the wrong form, or lines of a run before its header.
    """
    runs: dict[str, CollectorRun] = {}
    unknown: dict[str, int] = {}
    foreign = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line.startswith(TAG):
            foreign += bool(line) and not line.startswith("#")
            continue
        if not line.startswith(PREFIX):
            version = line[len(TAG):].split(" ", 1)[0]
            raise _fail(path, number, line, f"format version {VERSION} ('{PREFIX.strip()} …'); "
                        f"version {version!r} is not supported by this costmodel")
        record, _, body = line[len(PREFIX):].partition(" ")
        if record not in REQUIRED:
            unknown[record or "(empty)"] = unknown.get(record or "(empty)", 0) + 1
            continue
        values = _parse_fields(path, number, line, body)
        missing = [k for k in REQUIRED[record] if k not in values]
        if missing:
            raise _fail(path, number, line, f"a {record!r} line with field(s) "
                        + ", ".join(f"{k}=" for k in REQUIRED[record]) + f"; missing {', '.join(missing)}")
        parsed = dict(values)
        for key in INTEGER_FIELDS:
            if key in values:
                if not re.fullmatch(r"[0-9]{1,19}", values[key]) or int(values[key]) > INT64_MAX:
                    shown = values[key] if len(values[key]) <= 40 else values[key][:37] + "..."
                    raise _fail(path, number, line, f"{key}= a whole number from 0 to {INT64_MAX}, found {shown!r}")
                parsed[key] = int(values[key])
        run_id = values["run"]
        if not _RUN_ID.match(run_id):
            raise _fail(path, number, line, "run= a run id of letters, digits and . _ : + - (starting with a letter "
                        f"or digit, at most 128 characters), found {run_id[:40]!r}")
        if record == "header":
            if run_id in runs:
                raise _fail(path, number, line, f"one header per run; run {run_id!r} already "
                            f"started at line {runs[run_id].lines[0]} (use a new --run-id per run)")
            if values["unit"] not in UNITS:
                raise _fail(path, number, line, f"unit=ns, found unit={values['unit']}")
            tsc = values.get("tsc_hz", "unknown")
            try:
                tsc_hz = None if tsc in ("", "unknown") else float(tsc)
            except ValueError:
                tsc_hz = math.nan
            if tsc_hz is not None and not (math.isfinite(tsc_hz) and 0 < tsc_hz <= 1e12):
                raise _fail(path, number, line, f"tsc_hz= a frequency in Hz above 0 (e.g. 2.4e9) or 'unknown', "
                            f"found {tsc[:40]!r}")
            runs[run_id] = CollectorRun(
                run_id=run_id, path=path, lines=(number, number), pid=parsed["pid"],
                kernel=values["kernel"], host=values.get("host", ""),
                started=values.get("started", ""), tsc_hz=tsc_hz,
                hugepage=None if values.get("hugepage", "unknown") == "unknown" else values["hugepage"],
                fallback=values.get("fallback", "0") == "1",
                hvo={"1": "on", "0": "off"}.get(values.get("hvo", ""), "unknown"))
            continue
        run = runs.get(run_id)
        if run is None:
            raise _fail(path, number, line, f"a header line for run {run_id!r} before its other lines")
        if run.complete:
            raise _fail(path, number, line, f"no lines for run {run_id!r} after its end line "
                        f"(line {run.lines[1]}); two runs with one id?")
        run.lines = (run.lines[0], number)
        if record in ("convert", "attributes") and values["direction"] not in DIRECTIONS:
            raise _fail(path, number, line, f"direction= one of {', '.join(DIRECTIONS)}, "
                        f"found {values['direction']!r}")
        if record == "probe":
            if not _RANKED.match(values["name"]):
                raise _fail(path, number, line, "name=kprobe:FUNCTION or name=tracepoint:SYSTEM:EVENT")
            run.probes[values["name"]] = (values["role"], parsed["rank"], values["status"])
        elif record == "begin":
            run.began = True
        elif record == "convert":
            key = (values["direction"], parsed["bytes"])
            timed = run.conversions.setdefault(key, Timed())
            timed.count += parsed["count"]
            timed.ns += parsed["ns"]
            _within_int64(path, number, line, timed.count, timed.ns)
        elif record in ("split", "merge"):
            table = run.splits if record == "split" else run.merges
            timed = table.setdefault(values["probe"], Timed())
            timed.count += parsed["count"]
            timed.ns += parsed["ns"]
            timed.other += parsed.get("other", 0)
            _within_int64(path, number, line, timed.count, timed.ns, timed.other)
            if values["probe"] not in run.probes:
                # Rank from the documented list when the probe lines were left out.
                run.probes[values["probe"]] = (record, _documented_rank(values["probe"]), "used")
        elif record == "attributes":
            key = (values["direction"], parsed["bytes"])
            run.attributes[key] = run.attributes.get(key, 0) + parsed["count"]
            _within_int64(path, number, line, run.attributes[key])
        elif record == "exit":
            run.exits[parsed["reason"]] = run.exits.get(parsed["reason"], 0) + parsed["count"]
            _within_int64(path, number, line, run.exits[parsed["reason"]])
        elif record == "vmgexit":
            try:
                code = int(values["code"], 0)
            except ValueError:
                raise _fail(path, number, line, f"code= a number such as 0x80000010, found {values['code']!r}") from None
            run.vmgexits[code] = run.vmgexits.get(code, 0) + parsed["count"]
            _within_int64(path, number, line, run.vmgexits[code])
        elif record == "end":
            run.complete = True
            run.elapsed_ns = parsed.get("elapsed_ns")
    return CollectorFile(path, runs, unknown, foreign)


#: Rank of each documented split/merge probe point (docs/collector-format.md).
DOCUMENTED_RANKS = {
    "kprobe:kvm_gmem_split_folio_in_filemap": 1,
    "kprobe:guestmem_hugetlb_split_folio": 2,
    "kprobe:hugetlb_vmemmap_restore_folio": 3,
    "kprobe:kvm_gmem_merge_folio_in_filemap": 1,
    "kprobe:guestmem_hugetlb_merge_folio": 2,
    "kprobe:hugetlb_vmemmap_optimize_folio": 3,
}


def _documented_rank(name: str) -> int:
    return DOCUMENTED_RANKS.get(name, 9)
