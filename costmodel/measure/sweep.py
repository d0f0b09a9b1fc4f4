"""The sweep driver: measure a list of VM shapes on the host, one guest at a time.

For each shape (vCPUs, memory, virtqueues, hugepage size) and repetition it

1. starts the guest from the user's QEMU command line (a template with placeholders such
   as ``{memory}``, ``{vcpus}``, ``{hugepage}``), paused (``-S``) when the template gives a
   QMP socket (``{qmp_socket}``);
2. starts the collector (``costmodel/measure/collector/costmodel-collect``) on QEMU's process id and waits
   until it has attached its probes (its ``begin`` line), then lets the guest run (QMP
   ``cont``), so no conversion of early boot is missed;
3. waits for boot: a regular expression (``--boot-marker``) in the guest console file (or
   QEMU's own output), within ``--boot-timeout`` seconds, then ``--settle`` seconds more so
   run-time merges are counted;
4. stops the collector (SIGINT: it prints its totals), then the guest (QMP ``quit``, else
   SIGTERM) — in that order, so merges done while freeing guest memory at exit are not
   counted as run-time merges;
5. ingests the collector output, QEMU trace and console log into the dataset
   (:func:`costmodel.measure.ingest.ingest`: validated, de-duplicated by run id, atomic).

:func:`describe` prints exactly what would run, without running anything (``--dry-run``).
A failed run (no boot, collector error) is reported and the sweep goes on with the next.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import string
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from costmodel import parse, units
from costmodel.errors import Argument, InputError, closest
from costmodel.render import numbers
from costmodel.shape import VmShape

#: Placeholders a QEMU command-line template may use, and what they become.
PLACEHOLDERS = {
    "memory": "guest memory in QEMU's -m form (16G, or 1536M when not whole GiB)",
    "memory_bytes": "guest memory in bytes",
    "memory_mib": "guest memory in MiB",
    "vcpus": "vCPUs (-smp)",
    "virtqueues": "virtqueues of the shape (for num-queues= of the device under test)",
    "hugepage": "hugepage size: 2M or 1G (4K: none)",
    "hugepage_bytes": "hugepage size in bytes",
    "platform": "snp or tdx",
    "run_id": "the run's id",
    "out": "the output directory",
    "console_file": "where the guest console should go (-serial file:{console_file})",
    "trace_file": "where QEMU's trace should go (-trace enable=kvm_convert_memory,file={trace_file})",
    "qmp_socket": "a QMP socket path (-qmp unix:{qmp_socket},server=on,wait=off); with -S the "
                  "guest starts only once the collector is attached",
}

DEFAULT_BOOT_MARKER = r"login:|Startup finished|Run /sbin/init|Run /init"


@dataclass
class RunPlan:
    """Everything one run will do: commands and files."""

    run_id: str
    shape: VmShape
    qemu: list[str]
    collector: list[str]
    files: dict[str, Path]
    paused: bool
    ingest: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    run_id: str
    ok: bool
    message: str
    rows: int = 0


# --------------------------------------------------------------------------- shapes
#: Most runs one sweep plans (each boots a guest: 10,000 is weeks of machine time).
MAX_RUNS = 10_000
_SHAPE_KEYS = ("vcpus", "memory", "virtqueues", "hugepage")


def _values(value, parse_one, where):
    if isinstance(value, (list, tuple)):
        return [parse_one(v, where) for v in value]
    if isinstance(value, str):
        return parse.grid(value, parse_one, where)
    return [parse_one(value, where)]


def _expand(entry: dict, where: str) -> list[VmShape]:
    if not isinstance(entry, dict):
        raise InputError(where, entry, "a mapping with vcpus, memory, hugepage and optionally virtqueues")
    unknown = [k for k in entry if k not in _SHAPE_KEYS]
    if unknown:
        raise InputError(f"{where}, key {unknown[0]!r}", unknown[0],
                         "one of " + ", ".join(closest(str(unknown[0]), _SHAPE_KEYS, n=4)))
    for key in ("vcpus", "memory", "hugepage"):
        if entry.get(key) in (None, ""):
            raise InputError(f"{where}, key {key!r}", "nothing", f"a value for {key}")
    grid = [
        _values(entry["vcpus"], parse.count, f"{where}, vcpus"),
        _values(entry["memory"], parse.size, f"{where}, memory"),
        _values(entry["hugepage"], parse.hugepage, f"{where}, hugepage"),
        [None] if entry.get("virtqueues") in (None, "") else
        _values(entry["virtqueues"], parse.count, f"{where}, virtqueues"),
    ]
    combinations = math.prod(len(values) for values in grid)
    if combinations > MAX_RUNS:
        raise InputError(where, f"{combinations} combinations", f"at most {MAX_RUNS} shapes in a sweep")
    return [VmShape(vcpus=v, memory_bytes=m, hugepage_bytes=h, virtqueues=q) for v, m, h, q in itertools.product(*grid)]


def load_shapes(path) -> list[VmShape]:
    """Read shapes from YAML (a list, or ``shapes:`` with a list) or CSV (one shape a row).

    In YAML a value may be a list or a range (``vcpus: 1:16:x2``): the entry expands to every
    combination. Duplicates are kept once, in first-seen order.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of a name
    except OSError as error:
        raise InputError(str(path), error.strerror or "unreadable", "a YAML or CSV file of VM shapes") from None
    except UnicodeDecodeError as error:
        raise InputError(str(path), f"bytes that are not UTF-8 text at offset {error.start}",
                         "a YAML or CSV file of VM shapes") from None
    shapes: list[VmShape] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        for number, record in enumerate(reader, start=2):
            entry = {k.strip(): (v or "").strip() for k, v in record.items() if k}
            shapes += _expand(entry, f"{path}:{number}")
            if len(shapes) > MAX_RUNS:
                raise InputError(str(path), f"more than {MAX_RUNS} shapes", f"at most {MAX_RUNS} shapes in a sweep")
    else:
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise InputError(where, getattr(error, "problem", "invalid YAML"), "YAML: a list of shapes") from None
        parse.yaml_budget(loaded, str(path))
        if isinstance(loaded, dict) and "shapes" in loaded:
            loaded = loaded["shapes"]
        if not isinstance(loaded, list) or not loaded:
            raise InputError(str(path), type(loaded).__name__, "a non-empty list of shapes (or shapes: [...])")
        for number, entry in enumerate(loaded, start=1):
            shapes += _expand(entry, f"{path}, shape {number}")
            if len(shapes) > MAX_RUNS:
                raise InputError(str(path), f"more than {MAX_RUNS} shapes", f"at most {MAX_RUNS} shapes in a sweep")
    unique = list(dict.fromkeys(shapes))
    if not unique:
        raise InputError(str(path), "no shapes", "at least one shape")
    return unique


# --------------------------------------------------------------------------- template
def load_template(text: str, where: str = Argument("template")) -> list[str]:
    """Split a QEMU command line (shell syntax; ``\\``-newlines and ``#`` comments allowed)."""
    text = re.sub(r"\\\r?\n", " ", text)  # line continuations
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError as error:
        raise InputError(where, str(error), "a command line in shell syntax") from None
    if not tokens:
        raise InputError(where, "an empty command", "a QEMU command line")
    for token in tokens:
        for _, name, spec, conv in string.Formatter().parse(token):
            if name is None:
                continue
            if name not in PLACEHOLDERS or spec or conv:
                raise InputError(f"{where}, {{{name}}}", name,
                                 "one of the placeholders " + ", ".join(
                                     "{" + n + "}" for n in closest(name, PLACEHOLDERS, n=3))
                                 + " (write {{ and }} for literal braces)")
    return tokens


def _memory_arg(size: int) -> str:
    return f"{size // units.GiB}G" if size % units.GiB == 0 else f"{size // units.MiB}M"


def run_id_for(prefix: str, platform: str, shape: VmShape, repeat: int) -> str:
    queues = f"-{shape.virtqueues}q" if shape.virtqueues is not None else ""
    return (f"{prefix}-{platform}-{_memory_arg(shape.memory_bytes)}-{shape.vcpus}v{queues}-"
            f"{numbers.format_hugepage(shape.hugepage_bytes)}-r{repeat}")


def plan(shapes, template: list[str], *, platform: str, out_dir, dataset, collector,
         prefix: str = "sweep", repeat: int = 1, tsc_hz: float | None = None,
         max_runs: int = MAX_RUNS) -> list[RunPlan]:
    """The runs a sweep will make, in order (shapes × repetitions), at most ``max_runs``."""
    platform = parse.platform(platform, Argument("platform"))
    repeat = parse.count(repeat, Argument("repeat"), maximum=max_runs)
    if len(shapes) * repeat > max_runs:
        raise InputError(Argument("repeat"), repeat, f"at most {max_runs} runs in all ({len(shapes)} shapes × "
                         f"{repeat} repetitions asked for; raise the limit with --max-runs if you mean it)")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:+-]*", prefix):
        raise InputError(Argument("prefix"), prefix, "letters, digits and ._:+- (a run id prefix)")
    out_dir = Path(out_dir)
    plans = []
    for shape in shapes:
        for k in range(1, repeat + 1):
            rid = run_id_for(prefix, platform, shape, k)
            files = {"collect": out_dir / f"{rid}.collect", "trace_file": out_dir / f"{rid}.qemu-trace.log",
                     "console_file": out_dir / f"{rid}.console.log", "qemu_log": out_dir / f"{rid}.qemu.log",
                     "collector_log": out_dir / f"{rid}.collector.log", "qmp_socket": out_dir / f"{rid}.qmp"}
            values = {
                "memory": _memory_arg(shape.memory_bytes), "memory_bytes": shape.memory_bytes,
                "memory_mib": shape.memory_bytes // units.MiB, "vcpus": shape.vcpus,
                "virtqueues": "" if shape.virtqueues is None else shape.virtqueues,
                "hugepage": numbers.format_hugepage(shape.hugepage_bytes),
                "hugepage_bytes": shape.hugepage_bytes, "platform": platform, "run_id": rid,
                "out": out_dir, "console_file": files["console_file"], "trace_file": files["trace_file"],
                "qmp_socket": files["qmp_socket"],
            }
            used = {name for token in template for _, name, _, _ in string.Formatter().parse(token) if name}
            if "virtqueues" in used and shape.virtqueues is None:
                raise InputError("shapes", f"a shape without virtqueues ({rid})",
                                 "virtqueues in every shape: the template uses {virtqueues}")
            qemu = [token.format(**values) for token in template]
            command = [str(collector), "--pid", "{QEMU_PID}", "--run-id", rid, "--hugepage",
                       numbers.format_hugepage(shape.hugepage_bytes), "--output", str(files["collect"])]
            if tsc_hz:
                command += ["--tsc-hz", f"{tsc_hz:.0f}"]
            ingest = ["costmodel", "ingest", str(files["collect"])]
            if "trace_file" in used:
                ingest.append(str(files["trace_file"]))
            if "console_file" in used:
                ingest.append(str(files["console_file"]))
            ingest += ["--platform", platform, "--memory", str(shape.memory_bytes), "--vcpus", str(shape.vcpus)]
            if shape.virtqueues is not None:
                ingest += ["--virtqueues", str(shape.virtqueues)]
            ingest += ["--hugepage", numbers.format_hugepage(shape.hugepage_bytes)]
            if tsc_hz:
                ingest += ["--tsc-hz", f"{tsc_hz:.0f}"]
            ingest += ["-o", str(dataset)]
            plans.append(RunPlan(rid, shape, qemu, command, files, "qmp_socket" in used, ingest))
    ids = [p.run_id for p in plans]
    if len(set(ids)) != len(ids):  # pragma: no cover - shapes are de-duplicated
        raise InputError("shapes", "two runs with one id", "distinct shapes")
    return plans


def describe(plans: list[RunPlan], *, boot_marker: str, boot_timeout: float, settle: float) -> str:
    """What a sweep would run, as shell-like text (``--dry-run``)."""
    out = []
    for i, p in enumerate(plans, start=1):
        s = p.shape
        out.append(f"# run {i}/{len(plans)}: {p.run_id} (vCPUs {s.vcpus}, memory {numbers.format_size(s.memory_bytes)}, "
                   f"virtqueues {s.virtqueues if s.virtqueues is not None else 'default'}, "
                   f"hugepage {numbers.format_hugepage(s.hugepage_bytes)})")
        out.append(shlex.join(p.qemu) + f" >{shlex.quote(str(p.files['qemu_log']))} 2>&1 &")
        out.append(shlex.join(p.collector).replace("'{QEMU_PID}'", "$!").replace("{QEMU_PID}", "$!")
                   + f" 2>{shlex.quote(str(p.files['collector_log']))} &")
        out.append(f"# wait for the collector's 'begin' line in {p.files['collect']}")
        if p.paused:
            out.append(f"# QMP cont on {p.files['qmp_socket']} (the guest was started paused with -S)")
        watched = p.files["console_file"] if any(str(p.files["console_file"]) in t for t in p.qemu) \
            else p.files["qemu_log"]
        out.append(f"# wait up to {boot_timeout:g} s for /{boot_marker}/ in {watched}, then {settle:g} s")
        out.append("# stop the collector (SIGINT: it prints its totals), then the guest: "
                   + ("QMP quit" if p.paused else "SIGTERM"))
        out.append(shlex.join(p.ingest))
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- running
class Qmp:
    """A minimal QMP client: greeting, ``qmp_capabilities``, then one command at a time."""

    def __init__(self, path, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buffer = b""
        self._read()  # greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QMP socket closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def command(self, name: str) -> dict:
        self.sock.sendall(json.dumps({"execute": name}).encode() + b"\n")
        while True:
            reply = self._read()
            if "return" in reply or "error" in reply:
                if "error" in reply:
                    raise RuntimeError(f"QMP {name}: {reply['error'].get('desc', reply['error'])}")
                return reply
            # asynchronous events ({"event": ...}) are skipped

    def close(self):
        self.sock.close()


def _wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _contains(path: Path, pattern: re.Pattern) -> bool:
    try:
        return bool(pattern.search(path.read_text(errors="replace")))
    except OSError:
        return False


def _stop(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def execute(run: RunPlan, *, dataset, platform: str, boot_marker: str, boot_timeout: float,
            settle: float, attach_timeout: float = 60.0, tsc_hz: float | None = None,
            log=print) -> RunResult:
    """Run one planned measurement and ingest it. Never raises for a failed run."""
    from costmodel.measure import ingest as ingest_lib
    from costmodel.measure.ingest.dmesg import looks_like_dmesg
    from costmodel.measure.ingest.qemu import looks_like_qemu_trace

    marker = re.compile(boot_marker)
    files = run.files
    files["collect"].parent.mkdir(parents=True, exist_ok=True)
    for key in ("collect", "trace_file", "console_file", "qmp_socket"):
        files[key].unlink(missing_ok=True)
    with open(files["qemu_log"], "w") as qemu_log, open(files["collector_log"], "w") as collector_log:
        try:
            qemu = subprocess.Popen(run.qemu, stdout=qemu_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as error:
            return RunResult(run.run_id, False, f"cannot start {run.qemu[0]!r}: {error.strerror or error}")
        command = [str(qemu.pid) if t == "{QEMU_PID}" else t for t in run.collector]
        collector = None
        qmp = None
        try:
            try:
                collector = subprocess.Popen(command, stdout=collector_log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
            except OSError as error:
                return RunResult(run.run_id, False, f"cannot start the collector {command[0]!r}: {error.strerror or error}")
            began = re.compile(r"^costmodel-collect/1 begin ", re.MULTILINE)
            if not _wait_for(lambda: _contains(files["collect"], began) or collector.poll() is not None,
                             attach_timeout) or not _contains(files["collect"], began):
                return RunResult(run.run_id, False, f"the collector did not attach within {attach_timeout:g} s "
                                 f"(see {files['collector_log']})")
            if run.paused:
                if not _wait_for(lambda: files["qmp_socket"].exists() or qemu.poll() is not None, 30):
                    return RunResult(run.run_id, False, f"no QMP socket {files['qmp_socket']}")
                qmp = Qmp(files["qmp_socket"])
                qmp.command("cont")
            watched = files["console_file"] if any(str(files["console_file"]) in t for t in run.qemu) \
                else files["qemu_log"]
            booted = _wait_for(lambda: _contains(watched, marker) or qemu.poll() is not None, boot_timeout)
            if qemu.poll() is not None:
                return RunResult(run.run_id, False, f"QEMU exited with status {qemu.returncode} before "
                                 f"/{boot_marker}/ appeared (see {files['qemu_log']})")
            if not booted:
                return RunResult(run.run_id, False, f"no /{boot_marker}/ in {watched} within {boot_timeout:g} s")
            time.sleep(settle)
            # Totals before teardown: freeing guest_memfd at exit merges hugepages too
            # (kvm_gmem_merge_truncate_indices), and those are not run-time merges.
            collector.send_signal(signal.SIGINT)
            try:
                collector.wait(120)
            except subprocess.TimeoutExpired:
                return RunResult(run.run_id, False, "the collector did not print its totals within "
                                 f"120 s of SIGINT (see {files['collector_log']})")
            if collector.returncode != 0:
                return RunResult(run.run_id, False, f"the collector exited with status {collector.returncode} "
                                 f"(see {files['collector_log']})")
            if qmp is not None:
                try:
                    qmp.command("quit")
                    qemu.wait(30)
                except (OSError, ConnectionError, RuntimeError, subprocess.TimeoutExpired):
                    pass
            _stop(qemu, 30)  # SIGTERM when QMP is not there or did not work
        finally:
            if qmp is not None:
                qmp.close()
            _stop(qemu, 10)
            if collector is not None:
                _stop(collector, 10)
    inputs = [files["collect"]]
    for key, looks in (("trace_file", looks_like_qemu_trace), ("console_file", looks_like_dmesg)):
        if files[key].exists() and looks(files[key].read_text(errors="replace")):
            inputs.append(files[key])
    if files["trace_file"] not in inputs and looks_like_qemu_trace(files["qemu_log"].read_text(errors="replace")):
        inputs.append(files["qemu_log"])  # log backend writing to stderr
    shape = run.shape.replace(platform=platform)
    try:
        result = ingest_lib.ingest(inputs, dataset, shape, tsc_hz=tsc_hz)
    except InputError as error:
        return RunResult(run.run_id, False, f"ingest failed: {error}")
    for message in result.messages:
        log(f"{run.run_id}: warning: {message}")
    return RunResult(run.run_id, True, f"{len(result.rows)} row(s) in {dataset}", len(result.rows))


def default_collector() -> str:
    """The collector shipped in the package (``costmodel/measure/collector/costmodel-collect``),
    else one on PATH."""
    from costmodel.measure.collector import SCRIPT

    if SCRIPT.exists() and os.access(SCRIPT, os.X_OK):
        return str(SCRIPT)
    return shutil.which("costmodel-collect") or "costmodel-collect"


def check_collector(collector: str) -> None:
    """Fail early (before any guest starts) when the collector cannot be run."""
    if not (Path(collector).is_file() and os.access(collector, os.X_OK)) and not shutil.which(collector):
        raise InputError(Argument("collector"), collector, "an executable collector (costmodel/measure/collector/costmodel-collect)")
