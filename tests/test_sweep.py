"""The sweep driver: shapes, template, dry run, and whole runs with stand-ins for QEMU and
the collector (small Python scripts; no guest is ever started)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from costmodel import data
from costmodel.cli import main
from costmodel.errors import InputError
from costmodel.measure import sweep
from costmodel.shape import VmShape
from costmodel.units import GiB, MiB

SAMPLES = Path(__file__).resolve().parent / "samples"

TEMPLATE = """\
# SNP guest with hugetlb-backed guest_memfd (a comment)
qemu-system-x86_64 -S -qmp unix:{qmp_socket},server=on,wait=off \\
  -smp {vcpus} -m {memory} \\
  -device virtio-blk-pci,drive=d0,num-queues={virtqueues} \\
  -serial file:{console_file} -trace enable=kvm_convert_memory,file={trace_file}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_shapes_from_yaml_expand_lists_and_ranges(tmp_path):
    shapes = sweep.load_shapes(write(tmp_path / "s.yaml", textwrap.dedent("""\
        shapes:
          - {vcpus: [1, 4, 16], memory: 16G, virtqueues: 4, hugepage: 2M}
          - {vcpus: 4, memory: 16G, virtqueues: "1:16:x4", hugepage: 2M}
          - {vcpus: 4, memory: [8G, 32G], hugepage: [2M, 1G]}
        """)))
    assert len(shapes) == 3 + 2 + 4  # (4 vCPUs, 4 queues, 16G, 2M) appears twice, kept once
    assert shapes[0] == VmShape(vcpus=1, memory_bytes=16 * GiB, hugepage_bytes=2 * MiB, virtqueues=4)
    assert VmShape(vcpus=4, memory_bytes=32 * GiB, hugepage_bytes=GiB, virtqueues=None) in shapes


def test_shapes_from_csv(tmp_path):
    shapes = sweep.load_shapes(write(tmp_path / "s.csv", "vcpus,memory,virtqueues,hugepage\n2,4GiB,3,2M\n8,4GiB,,1G\n"))
    assert shapes == [VmShape(vcpus=2, memory_bytes=4 * GiB, hugepage_bytes=2 * MiB, virtqueues=3), VmShape(vcpus=8, memory_bytes=4 * GiB, hugepage_bytes=GiB, virtqueues=None)]


@pytest.mark.parametrize("text, expected", [
    ("- {vcpus: 2, memory: 4G, hugepage: 3M}", "shape 1, hugepage"),
    ("- {vcpu: 2, memory: 4G, hugepage: 2M}", "key 'vcpu'"),
    ("- {vcpus: 2, hugepage: 2M}", "key 'memory'"),
    ("{}", "non-empty list"),
])
def test_bad_shapes_name_the_entry(tmp_path, text, expected):
    with pytest.raises(InputError) as error:
        sweep.load_shapes(write(tmp_path / "s.yaml", text))
    assert expected in str(error.value)


def test_unknown_placeholder_suggests_the_closest():
    with pytest.raises(InputError) as error:
        sweep.load_template("qemu -smp {vcpu}")
    assert "{vcpu}" in str(error.value) and "{vcpus}" in str(error.value)


def test_template_placeholders_are_filled(tmp_path):
    tokens = sweep.load_template(TEMPLATE)
    [p] = sweep.plan([VmShape(vcpus=4, memory_bytes=1536 * MiB, hugepage_bytes=GiB, virtqueues=5)], tokens, platform="tdx", out_dir=tmp_path,
                     dataset=tmp_path / "d.csv", collector="collect", prefix="h7")
    assert p.run_id == "h7-tdx-1536M-4v-5q-1G-r1"
    assert p.qemu[:4] == ["qemu-system-x86_64", "-S", "-qmp", f"unix:{tmp_path}/{p.run_id}.qmp,server=on,wait=off"]
    assert "-m" in p.qemu and p.qemu[p.qemu.index("-m") + 1] == "1536M"
    assert "virtio-blk-pci,drive=d0,num-queues=5" in p.qemu
    assert p.paused
    assert p.collector[:3] == ["collect", "--pid", "{QEMU_PID}"]


def test_template_with_virtqueues_needs_them_in_every_shape(tmp_path):
    with pytest.raises(InputError, match="virtqueues in every shape"):
        sweep.plan([VmShape(vcpus=4, memory_bytes=GiB, hugepage_bytes=GiB)], sweep.load_template(TEMPLATE), platform="snp",
                   out_dir=tmp_path, dataset="d.csv", collector="c")


def test_dry_run_prints_every_command_and_runs_nothing(tmp_path, capsys):
    shapes = write(tmp_path / "shapes.yaml", "- {vcpus: [2, 4], memory: 16G, virtqueues: 4, hugepage: 2M}\n")
    template = write(tmp_path / "qemu.txt", TEMPLATE)
    out = tmp_path / "out"
    status = main(["sweep", str(shapes), "--template", str(template), "--platform", "snp", "-o",
                   str(tmp_path / "d.csv"), "--out", str(out), "--collector", "/nonexistent/collect",
                   "--repeat", "2", "--dry-run"])
    text = capsys.readouterr().out
    assert status == 0
    assert text.count("# run ") == 4 and "# run 4/4: sweep-snp-16G-4v-4q-2M-r2" in text
    assert text.count("qemu-system-x86_64 -S -qmp") == 4
    assert "/nonexistent/collect --pid $! --run-id sweep-snp-16G-2v-4q-2M-r1 --hugepage 2M" in text
    assert "QMP cont" in text and "QMP quit" in text and "stop the collector (SIGINT" in text
    assert ("costmodel ingest " + str(out / "sweep-snp-16G-2v-4q-2M-r1.collect")) in text
    assert "--platform snp --memory 17179869184 --vcpus 2 --virtqueues 4 --hugepage 2M -o" in text
    assert not out.exists() and not (tmp_path / "d.csv").exists()


# --- whole runs with stand-ins --------------------------------------------------------------
FAKE_QEMU = """\
#!{python}
# Stand-in for QEMU: optional QMP server; after 'cont' (or at once) it "boots": the guest
# console gets the sample dmesg and a login prompt, the trace file the sample events.
import json, os, signal, socket, sys, time
args = sys.argv[1:]
console = args[args.index("-serial") + 1].split("file:", 1)[1]
trace = args[args.index("-trace") + 1].split("file=", 1)[1]
qmp = args[args.index("-qmp") + 1].split("unix:", 1)[1].split(",")[0] if "-qmp" in args else None
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))

def boot():
    open(trace, "w").write(open({trace_sample!r}).read())
    open(console, "w").write(open({dmesg_sample!r}).read() + "\\nsample login: \\n")

if qmp is None:
    boot()
    while True:
        time.sleep(0.1)
server = socket.socket(socket.AF_UNIX)
server.bind(qmp)
server.listen(1)
conn, _ = server.accept()
conn.sendall(b'{{"QMP": {{"version": {{}}, "capabilities": []}}}}\\n')
buffer = b""
while True:
    chunk = conn.recv(4096)
    if not chunk:
        break
    buffer += chunk
    while b"\\n" in buffer:
        line, buffer = buffer.split(b"\\n", 1)
        command = json.loads(line)["execute"]
        conn.sendall(b'{{"event": "RESUME"}}\\n' if command == "cont" else b"")
        conn.sendall(b'{{"return": {{}}}}\\n')
        if command == "cont":
            boot()
        if command == "quit":
            sys.exit(0)
"""

FAKE_COLLECTOR = """\
#!{python}
# Stand-in for costmodel-collect: header and begin at once, totals on SIGINT or when the
# pid is gone (as the real one).
import argparse, signal, time
stop = []
signal.signal(signal.SIGINT, lambda *a: stop.append(1))
p = argparse.ArgumentParser()
for flag in ("--pid", "--run-id", "--hugepage", "--output", "--tsc-hz"):
    p.add_argument(flag)
a = p.parse_args()
def alive():
    try:
        return open(f"/proc/{{a.pid}}/stat").read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False
out = open(a.output, "w")
head = f"costmodel-collect/1 header run={{a.run_id}} pid={{a.pid}} kernel=fake host=fake unit=ns started=2026-01-05T00:00:00Z tsc_hz=2000000000 hugepage={{a.hugepage}} fallback=0 probes=kprobe:kvm_gmem_split_folio_in_filemap,kprobe:kvm_gmem_merge_folio_in_filemap"
out.write(head + "\\n" + f"costmodel-collect/1 begin run={{a.run_id}} pid={{a.pid}} probes=2\\n")
out.flush()
while alive() and not stop:
    time.sleep(0.05)
teardown = 100 if not alive() else 0  # stopped after QEMU: its exit-time merges counted too
for line in (f"split run={{a.run_id}} pid={{a.pid}} probe=kprobe:kvm_gmem_split_folio_in_filemap count=600 ns=1000",
             f"merge run={{a.run_id}} pid={{a.pid}} probe=kprobe:kvm_gmem_merge_folio_in_filemap count={{20 + teardown}} ns=100",
             f"end run={{a.run_id}} pid={{a.pid}} elapsed_ns=5"):
    out.write("costmodel-collect/1 " + line + "\\n")
"""


def executable(path: Path, text: str) -> Path:
    path.write_text(text.format(python=sys.executable, trace_sample=str(SAMPLES / "qemu-trace.log"),
                                dmesg_sample=str(SAMPLES / "guest-dmesg.txt")))
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("paused", [True, False], ids=["qmp-paused", "no-qmp"])
def test_sweep_runs_guest_and_collector_and_ingests(tmp_path, capsys, paused):
    fake_qemu = executable(tmp_path / "fake-qemu", FAKE_QEMU)
    collector = executable(tmp_path / "fake-collect", FAKE_COLLECTOR)
    template = TEMPLATE.replace("qemu-system-x86_64", str(fake_qemu))
    if not paused:
        template = template.replace("-S -qmp unix:{qmp_socket},server=on,wait=off ", "")
    shapes = write(tmp_path / "shapes.yaml", "- {vcpus: [2, 4], memory: 16G, virtqueues: 4, hugepage: 2M}\n")
    dataset = tmp_path / "runs.csv"
    status = main(["sweep", str(shapes), "--template", str(write(tmp_path / "qemu.txt", template)),
                   "--platform", "snp", "-o", str(dataset), "--out", str(tmp_path / "out"),
                   "--collector", str(collector), "--boot-timeout", "30", "--settle", "0",
                   "--attach-timeout", "30", "--prefix", "t"])
    out, err = capsys.readouterr()
    assert status == 0, out + err
    frame = data.load(dataset)
    assert list(frame["run_id"]) == ["t-snp-16G-2v-4q-2M-r1", "t-snp-16G-4v-4q-2M-r1"]
    assert frame["vcpus"].tolist() == [2, 4] and frame["virtqueues"].tolist() == [4, 4]
    assert frame["splits"].tolist() == [600, 600]
    assert frame["merges"].tolist() == [20, 20]  # collector stopped before the guest: no exit-time merges
    assert frame["swiotlb_bytes"].tolist() == [GiB, GiB]  # from the console log
    assert frame["qemu_conversions"].astype(int).tolist() == [6, 6]  # from the trace file (extra column)
    assert out.count(": ok: ") == 2


def test_sweep_reports_a_guest_that_never_boots(tmp_path, capsys):
    collector = executable(tmp_path / "fake-collect", FAKE_COLLECTOR)
    silent = executable(tmp_path / "silent-qemu", "#!{python}\nimport time\ntime.sleep(60)\n")
    shapes = write(tmp_path / "shapes.yaml", "- {vcpus: 1, memory: 1G, hugepage: 2M}\n")
    template = write(tmp_path / "qemu.txt", f"{silent} -serial file:{{console_file}}\n")
    status = main(["sweep", str(shapes), "--template", str(template), "--platform", "tdx",
                   "-o", str(tmp_path / "runs.csv"), "--out", str(tmp_path / "out"), "--collector", str(collector),
                   "--boot-timeout", "0.5", "--settle", "0"])
    out, _ = capsys.readouterr()
    assert status == 1
    assert "FAILED: no /" in out and "within 0.5 s" in out
    assert not (tmp_path / "runs.csv").exists()


def test_sweep_needs_an_executable_collector(tmp_path, capsys):
    shapes = write(tmp_path / "shapes.yaml", "- {vcpus: 1, memory: 1G, hugepage: 2M}\n")
    template = write(tmp_path / "qemu.txt", "true\n")
    status = main(["sweep", str(shapes), "--template", str(template), "--platform", "tdx",
                   "-o", str(tmp_path / "runs.csv"), "--collector", str(tmp_path / "missing")])
    assert status == 2 and "--collector" in capsys.readouterr().err


@pytest.mark.parametrize("platform", ["snp", "tdx"])
def test_example_shapes_and_templates_plan(platform, tmp_path):
    """The files the runbook points at stay valid: every placeholder known, every shape parsed."""
    examples = Path(sweep.__file__).resolve().parent / "collector" / "examples"
    shapes = sweep.load_shapes(examples / "shapes.yaml")
    template = sweep.load_template((examples / f"{platform}.qemu").read_text(), f"{platform}.qemu")
    plans = sweep.plan(shapes, template, platform=platform, out_dir=tmp_path, dataset="runs.csv",
                       collector="collect", repeat=3)
    assert len(plans) == 3 * len(shapes) == 3 * 26
    assert all(p.paused for p in plans)
    vcpus_axis = {p.shape.vcpus for p in plans if p.shape.virtqueues == 4 and p.shape.memory_bytes == 16 * GiB}
    assert {1, 128} <= vcpus_axis
    assert {8 * GiB, 10 * GiB} <= {p.shape.memory_bytes for p in plans}  # around the SWIOTLB cap
    assert {MiB * 2, GiB} == {p.shape.hugepage_bytes for p in plans}
