"""The host collector (costmodel/measure/collector/costmodel-collect): probe list, detection, bpftrace program.

bpftrace's own check (``bpftrace -d``: parse, semantic analysis and code generation without
attaching) runs when bpftrace is installed (``make test`` installs it with apt). The probe
list is always compared with the documented one.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from costmodel.measure.ingest import parse_collector

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "costmodel" / "measure" / "collector" / "costmodel-collect"
FORMAT_DOC = ROOT / "docs" / "collector-format.md"


def _load():
    loader = importlib.machinery.SourceFileLoader("costmodel_collect", str(SCRIPT))
    spec = importlib.util.spec_from_loader("costmodel_collect", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["costmodel_collect"] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


collect = _load()


def documented_probes() -> set[tuple[str, str, int, bool]]:
    text = FORMAT_DOC.read_text()
    table = text.split("<!-- probe-list", 1)[1].split("\n\n", 1)[0]
    rows = set()
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            rows.add((cells[0].strip("`"), cells[1], int(cells[2]), cells[3] == "yes"))
    return rows


def test_probe_list_is_the_documented_one():
    script = {(p.spec, p.role, p.rank, p.fallback) for p in collect.PROBES}
    documented = documented_probes()
    assert len(documented) == 10
    assert script == documented


def test_probe_list_covers_the_domain_probe_points():
    # shared/domain.md §8 names these kprobes and exported fallbacks.
    names = {p.name for p in collect.PROBES}
    for name in ("kvm_gmem_convert_execute_work", "kvm_gmem_split_folio_in_filemap",
                 "kvm_gmem_merge_folio_in_filemap", "guestmem_hugetlb_split_folio",
                 "guestmem_hugetlb_merge_folio", "hugetlb_vmemmap_restore_folio",
                 "hugetlb_vmemmap_optimize_folio", "kvm:kvm_vm_set_mem_attributes",
                 "kvm:kvm_userspace_exit"):
        assert name in names
    fallbacks = {p.name for p in collect.PROBES if p.fallback}
    assert fallbacks == {"hugetlb_vmemmap_restore_folio", "hugetlb_vmemmap_optimize_folio"}


def fake_kernel(tmp_path: Path, functions, events=(), kallsyms=None, filter_file=True):
    """A tracefs directory and a kallsyms file describing a kernel."""
    tracefs = tmp_path / "tracing"
    (tracefs / "events").mkdir(parents=True)
    for event in events:
        (tracefs / "events" / Path(*event.split(":"))).mkdir(parents=True)
    if filter_file:
        (tracefs / "available_filter_functions").write_text(
            "".join(f"{name} [kvm]\n" if name.startswith("kvm") else f"{name}\n" for name in functions))
    syms = tmp_path / "kallsyms"
    names = functions if kallsyms is None else kallsyms
    syms.write_text("".join(f"ffffffff81000000 t {name}\n" for name in names))
    return str(syms), str(tracefs)


ALL_KPROBES = [p.name for p in collect.PROBES if p.kind == "kprobe"]
ALL_EVENTS = [p.name for p in collect.PROBES if p.kind == "tracepoint"]


def statuses(found):
    return {a.probe.name: a.status for a in found}


def test_detect_every_probe_point(tmp_path):
    syms, tracefs = fake_kernel(tmp_path, ALL_KPROBES, ALL_EVENTS)
    found = collect.detect(syms, tracefs)
    assert set(statuses(found).values()) == {"present"}
    assert len(collect.usable(found)) == len(collect.PROBES)


def test_detect_fallback_only_kernel(tmp_path):
    # guest_memfd functions inlined or cloned: only the exported vmemmap functions are left.
    syms, tracefs = fake_kernel(
        tmp_path, ["hugetlb_vmemmap_restore_folio", "hugetlb_vmemmap_optimize_folio",
                   "kvm_gmem_split_folio_in_filemap.isra.0"], ["kvm:kvm_userspace_exit"])
    found = statuses(collect.detect(syms, tracefs))
    assert found["hugetlb_vmemmap_restore_folio"] == "present"
    assert found["hugetlb_vmemmap_optimize_folio"] == "present"
    assert found["kvm_gmem_split_folio_in_filemap"] == "clone"
    assert found["kvm_gmem_merge_folio_in_filemap"] == "missing"
    assert found["kvm:kvm_vm_set_mem_attributes"] == "missing"
    assert found["kvm:kvm_userspace_exit"] == "present"


def test_detect_untraceable_and_kallsyms_fallback(tmp_path):
    # In kallsyms but not traceable (notrace): not used.
    syms, tracefs = fake_kernel(tmp_path, ["hugetlb_vmemmap_restore_folio"],
                                kallsyms=["hugetlb_vmemmap_restore_folio", "hugetlb_vmemmap_optimize_folio"])
    found = statuses(collect.detect(syms, tracefs))
    assert found["hugetlb_vmemmap_optimize_folio"] == "untraceable"
    # Without a readable available_filter_functions, kallsyms is the evidence.
    syms2, tracefs2 = fake_kernel(tmp_path / "b", [], kallsyms=["hugetlb_vmemmap_optimize_folio"],
                                  filter_file=False)
    found2 = statuses(collect.detect(syms2, tracefs2))
    assert found2["hugetlb_vmemmap_optimize_folio"] == "present"


def test_check_says_which_probes_and_fails_without_split_probes(tmp_path, capsys):
    syms, tracefs = fake_kernel(tmp_path, ["hugetlb_vmemmap_restore_folio"])
    status = collect.main(["--check", "--kallsyms", syms, "--tracefs", tracefs])
    out, err = capsys.readouterr()
    assert status == 1
    assert re.search(r"kprobe:hugetlb_vmemmap_restore_folio\s+split\s+used", out)
    assert re.search(r"kprobe:kvm_gmem_merge_folio_in_filemap\s+merge\s+missing", out)
    assert "cannot count merge" in err


def test_generated_program_filters_on_the_pid_and_times_each_probe(tmp_path):
    program = collect.generate(list(collect.PROBES), 4242)
    for probe in collect.PROBES:
        assert f"{probe.spec} /pid == 4242/" in program
        if probe.kind == "kprobe":
            assert f"kretprobe:{probe.name} " in program
    assert program.count("nsecs") >= 2 * 7


def test_header_names_the_probes_it_used(tmp_path):
    syms, tracefs = fake_kernel(tmp_path, ["hugetlb_vmemmap_restore_folio", "hugetlb_vmemmap_optimize_folio"])
    found = collect.detect(syms, tracefs)
    lines = collect.header_lines("r1", 7, found, hugepage="2M", tsc_hz=None, kernel="6.x",
                                 host="h", started="2026-01-01T00:00:00Z", hvo="0")
    assert "fallback=1" in lines[0] and "hvo=0" in lines[0]
    assert parse_collector("\n".join(lines), "h").runs["r1"].hvo == "off"
    assert "probes=kprobe:hugetlb_vmemmap_restore_folio,kprobe:hugetlb_vmemmap_optimize_folio" in lines[0]
    assert "tsc_hz=unknown" in lines[0]
    assert sum(" probe " in line for line in lines) == len(collect.PROBES)


def test_writer_and_reader_agree():
    """Lines the collector writes are read back to the same numbers by costmodel ingest."""
    probes = list(collect.PROBES)
    found = [collect.Availability(p, "present") for p in probes]
    maps = {
        "@n_convert1": {"1,4096": 10, "0,2097152": 4}, "@ns_convert1": {"1,4096": 5000, "0,2097152": 900},
        "@n_split1": 6, "@ns_split1": 700, "@other_split1": 1,
        "@n_split3": 6, "@ns_split3": 300,
        "@n_merge1": 2, "@ns_merge1": 200,
        "@n_attributes1": {"1,8192": 3},
        "@n_exit1": {"3": 11}, "@n_vmgexit1": {str(0x80000010): 9},
    }
    text = "\n".join(
        collect.header_lines("run-x", 9, found, hugepage="1G", tsc_hz=2e9, kernel="6.x", host="h",
                             started="2026-01-01T00:00:00Z")
        + [collect.line("begin", run="run-x", pid=9, probes=len(probes))]
        + collect.totals_lines("run-x", 9, probes, maps)
        + [collect.line("end", run="run-x", pid=9, elapsed_ns=123)])
    parsed = parse_collector(text, "written")
    run = parsed.runs["run-x"]
    assert run.complete and run.tsc_hz == 2e9 and run.hugepage == "1G"
    assert run.split_count == 6 and run.merge_count == 2
    assert run.split_probe == "kprobe:kvm_gmem_split_folio_in_filemap"
    assert run.split_merge_ns == 900
    assert run.conversion_ops == 14 and run.conversion_ns == 5900
    assert run.conversion_bytes("to_shared") == 40960
    assert run.attributes == {("to_private", 8192): 3}
    assert run.exits == {3: 11} and run.vmgexits == {0x80000010: 9}
    assert run.splits["kprobe:kvm_gmem_split_folio_in_filemap"].other == 1
    assert not parsed.unknown_records


FAKE_BPFTRACE = textwrap.dedent("""\
    #!{python}
    import json, signal, sys, time
    stop = []
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    script = open(sys.argv[-1]).read()
    assert "/pid == " in script
    print(json.dumps({{"type": "attached_probes", "data": {{"probes": 4}}}}), flush=True)
    print(json.dumps({{"type": "printf", "data": "attached\\n"}}), flush=True)
    while not stop:
        time.sleep(0.05)
    print(json.dumps({{"type": "map", "data": {{"@n_split3": 622}}}}), flush=True)
    print(json.dumps({{"type": "map", "data": {{"@ns_split3": 9300000}}}}), flush=True)
    print(json.dumps({{"type": "map", "data": {{"@n_merge3": 30}}}}), flush=True)
    print(json.dumps({{"type": "map", "data": {{"@ns_merge3": 450000}}}}), flush=True)
""")


def fallback_host(tmp_path):
    """A stand-in bpftrace and a kernel that has only the fallback (vmemmap) probes."""
    fake = tmp_path / "bpftrace"
    fake.write_text(FAKE_BPFTRACE.format(python=sys.executable))
    fake.chmod(0o755)
    syms, tracefs = fake_kernel(tmp_path, ["hugetlb_vmemmap_restore_folio", "hugetlb_vmemmap_optimize_folio"])
    return fake, syms, tracefs


def test_wrapper_runs_bpftrace_until_the_guest_exits(tmp_path):
    """End to end with a stand-in for bpftrace: header, begin, totals, end."""
    fake, syms, tracefs = fallback_host(tmp_path)
    guest = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    out = tmp_path / "run.collect"
    try:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--pid", str(guest.pid), "--run-id", "fake-run", "--hugepage", "2M",
             "--tsc-hz", "2.4e9", "--bpftrace", str(fake), "--kallsyms", syms, "--tracefs", tracefs,
             "--output", str(out)], capture_output=True, text=True, timeout=60)
    finally:
        guest.kill()
        guest.wait()
    assert done.returncode == 0, done.stderr
    run = parse_collector(out.read_text(), str(out)).runs["fake-run"]
    assert run.complete and run.began and run.fallback
    assert (run.split_count, run.merge_count, run.vmemmap_ns) == (622, 30, 9750000)
    assert run.tsc_hz == 2.4e9


bpftrace = shutil.which("bpftrace")
needs_bpftrace = pytest.mark.skipif(bpftrace is None, reason="bpftrace not installed (make test installs it)")


def bpftrace_check(tmp_path: Path, program: str) -> subprocess.CompletedProcess:
    path = tmp_path / "program.bt"
    path.write_text(program)
    return subprocess.run([bpftrace, "-d", str(path)], capture_output=True, text=True, timeout=120)


def _errors(done: subprocess.CompletedProcess) -> list[str]:
    text = done.stdout + done.stderr
    # bpftrace warns about memlock limits and unreadable tracefs files in a sandbox: not ours.
    return [line for line in re.findall(r"ERROR: .*", text)
            if "RLIMIT_MEMLOCK" not in line and "available_filter_functions" not in line]


@needs_bpftrace
@pytest.mark.parametrize("selection", ["all-kprobes", "fallback-only", "single-split-merge"])
def test_bpftrace_accepts_the_kprobe_programs(tmp_path, selection):
    """Full check (parse, semantics, codegen): kprobes need no kernel to be checked."""
    probes = [p for p in collect.PROBES if p.kind == "kprobe"]
    if selection == "fallback-only":
        probes = [p for p in probes if p.fallback]
    elif selection == "single-split-merge":
        probes = [p for p in probes if p.rank == 2]
    done = bpftrace_check(tmp_path, collect.generate(probes, 4242))
    assert done.returncode == 0, _errors(done) or done.stderr[-2000:]
    assert not _errors(done)


@needs_bpftrace
def test_bpftrace_parses_the_program_with_tracepoints(tmp_path):
    """Tracepoints are checked against the kernel's event formats; where the sandbox kernel
    has none, bpftrace must still get past parsing (its only complaint: event not found)."""
    done = bpftrace_check(tmp_path, collect.generate(list(collect.PROBES), 4242))
    errors = _errors(done)
    assert "syntax error" not in done.stderr
    if done.returncode != 0:
        assert errors and all("tracepoint not found" in e for e in errors), errors


@needs_bpftrace
def test_bpftrace_check_can_fail(tmp_path):
    """The check above is not vacuous: a broken program is rejected."""
    program = collect.generate([collect.PROBES[1]], 1).replace("count();", "count(;", 1)
    done = bpftrace_check(tmp_path, program)
    assert done.returncode != 0
    assert "syntax error" in (done.stdout + done.stderr)


def test_sigint_prints_the_totals_while_the_guest_still_runs(tmp_path):
    """The sweep stops the collector before the guest: one SIGINT, totals and end line."""
    fake, syms, tracefs = fallback_host(tmp_path)
    guest = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    out = tmp_path / "run.collect"
    try:
        collector = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--pid", str(guest.pid), "--run-id", "stopped", "--bpftrace", str(fake),
             "--kallsyms", syms, "--tracefs", tracefs, "--output", str(out)], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while " begin " not in (out.read_text() if out.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.05)
        collector.send_signal(signal.SIGINT)
        _, err = collector.communicate(timeout=30)
        assert collector.returncode == 0, err
        assert guest.poll() is None  # the guest was not touched
    finally:
        guest.kill()
        guest.wait()
    run = parse_collector(out.read_text(), str(out)).runs["stopped"]
    assert run.complete and run.split_count == 622 and run.hugepage is None


def _in_private_tracefs(command: str) -> subprocess.CompletedProcess | None:
    """Run ``command`` in a private mount namespace with tracefs mounted, if allowed here."""
    if shutil.which("unshare") is None:
        return None
    script = f"mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || exit 97; {command}"
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    return None if done.returncode == 97 or "unshare failed" in done.stderr else done


@needs_bpftrace
def test_bpftrace_checks_tracepoint_fields_where_the_kernel_has_the_events(tmp_path):
    """Where this kernel has the kvm events, bpftrace checks the fields the program reads
    (args->reason, args->exit_reason, …) against their format files."""
    events = [p for p in collect.PROBES if p.kind == "tracepoint"]
    listing = _in_private_tracefs("ls /sys/kernel/tracing/events/kvm")
    if listing is None or listing.returncode != 0:
        pytest.skip("tracefs cannot be mounted here")
    present = [p for p in events if p.name.split(":")[1] in listing.stdout.split()]
    if not present:
        pytest.skip("this kernel has none of the kvm events")
    path = tmp_path / "tp.bt"
    path.write_text(collect.generate(present, 4242))
    done = _in_private_tracefs(f"{bpftrace} -d {path}")
    assert done is not None and done.returncode == 0, _errors(done) or done.stderr[-2000:]
