"""Parsers of measurement output and `costmodel ingest` (samples in tests/samples/)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from costmodel import data
from costmodel.cli import main
from costmodel.errors import InputError
from costmodel.measure.ingest import (
    build_rows,
    ingest,
    parse_collector,
    parse_dmesg,
    parse_qemu_trace,
    read_inputs,
)
from costmodel.shape import VmShape
from costmodel.units import GiB, MiB

SAMPLES = Path(__file__).resolve().parent / "samples"
SHAPE = VmShape.parse(platform="snp", memory="16GiB", vcpus=16, virtqueues=19).replace(hugepage_bytes=None)


def sample(name: str) -> str:
    return str(SAMPLES / name)


def rows_of(*names, shape=SHAPE, **kw):
    return build_rows(read_inputs([sample(n) for n in names]), shape, **kw)


def test_samples_are_labelled_as_samples():
    for path in SAMPLES.glob("*"):
        if path.name != "README.md":
            assert "SAMPLE" in path.read_text().splitlines()[0], path.name


# --- collector output -------------------------------------------------------------------------
def test_complete_run_gives_counts_and_cycles():
    rows, messages = rows_of("collector-gmem.collect")
    row = rows.iloc[0]
    assert row["run_id"] == "sample-snp-16g-2m"
    assert (row["splits"], row["merges"]) == (622, 30)
    assert row["conversion_ops"] == 2_800_000 + 8000 + 200_000 + 512
    # ns × tsc_hz from the header (2.4 GHz)
    assert row["conversion_cycles"] == 435_000_000 * 2.4
    assert row["split_merge_cycles"] == (28_500_000 + 1_400_000) * 2.4
    assert row["split_probe"] == "kprobe:kvm_gmem_split_folio_in_filemap"
    assert row["vmemmap_ns"] == 9_300_000 + 450_000
    assert row["split_merge_event_cycles"] == pytest.approx(29_900_000 * 2.4 / 652, abs=0.05)
    assert row["hypercall_exits"] == 4100 and row["psc_vmgexits"] == 3900
    assert row["kernel"] == "6.15.0-rc6-gmem-rfc2" and row["date"] == "2026-01-05"
    assert row["hugepage_bytes"] == 2 * MiB
    assert "HugeTLB vmemmap optimisation on" in row["notes"]
    assert messages == []


def test_fallback_only_kernel_parses_the_same():
    full, _ = rows_of("collector-gmem.collect")
    fallback, _ = rows_of("collector-fallback.collect")
    assert (fallback.iloc[0]["splits"], fallback.iloc[0]["merges"]) == (full.iloc[0]["splits"], full.iloc[0]["merges"])
    assert fallback.iloc[0]["split_probe"] == "kprobe:hugetlb_vmemmap_restore_folio"
    # vmemmap time alone is not split/merge time: left empty, kept as vmemmap_ns
    assert math.isnan(fallback.iloc[0]["split_merge_cycles"])
    assert fallback.iloc[0]["vmemmap_ns"] == full.iloc[0]["vmemmap_ns"]
    assert "fallback probes only" in fallback.iloc[0]["notes"]


def test_two_runs_mixed_in_one_file_give_two_rows():
    rows, _ = rows_of("collector-two-runs.collect")
    by_run = rows.set_index("run_id")
    assert list(by_run.index) == ["sample-a", "sample-b"]
    assert by_run.loc["sample-a", ["splits", "merges", "conversion_ops"]].tolist() == [540, 20, 1000]
    assert by_run.loc["sample-b", ["splits", "merges", "conversion_ops"]].tolist() == [560, 25, 2000]


def test_truncated_output_is_an_error_that_says_so():
    with pytest.raises(InputError) as error:
        rows_of("collector-truncated.collect")
    message = str(error.value)
    assert "collector-truncated.collect:6" in message
    assert "truncated" in message and "sample-cut" in message


def test_truncated_run_can_be_left_out(tmp_path):
    mixed = tmp_path / "mixed.collect"
    mixed.write_text((SAMPLES / "collector-two-runs.collect").read_text()
                     + (SAMPLES / "collector-truncated.collect").read_text())
    rows, messages = build_rows(read_inputs([mixed]), SHAPE, skip_truncated=True)
    assert sorted(rows["run_id"]) == ["sample-a", "sample-b"]
    assert any("sample-cut" in m and "truncated" in m for m in messages)


def test_unknown_event_lines_are_skipped_with_a_count():
    rows, messages = rows_of("collector-unknown.collect", tsc_hz=2e9)
    assert (rows.iloc[0]["splits"], rows.iloc[0]["merges"]) == (6, 2)
    assert rows.iloc[0]["hugepage_bytes"] == GiB  # from the header
    assert rows.iloc[0]["conversion_cycles"] == 160_000_000 * 2  # --tsc-hz used
    [warning] = [m for m in messages if "unknown record" in m]
    assert "skipped 2 line(s)" in warning and "histogram" in warning


def test_without_tsc_frequency_cycles_stay_empty():
    rows, messages = rows_of("collector-unknown.collect")
    assert math.isnan(rows.iloc[0]["conversion_cycles"])
    assert rows.iloc[0]["conversion_ns"] == 160_000_000
    assert any("tsc_hz=unknown" in m for m in messages)


@pytest.mark.parametrize("line, expected", [
    ("costmodel-collect/2 header run=a pid=1", "version 1"),
    ("costmodel-collect/1 split run=a probe=kprobe:x count=many ns=1", "count= a whole number"),
    ("costmodel-collect/1 split run=a probe=kprobe:x ns=1", "missing count"),
    ("costmodel-collect/1 split run=zz probe=kprobe:x count=1 ns=1", "header line for run 'zz'"),
    ("costmodel-collect/1 convert run=a probe=kprobe:x direction=sideways bytes=1 count=1 ns=1", "direction="),
    ("costmodel-collect/1 split run=a probe=kprobe:x count=1 ns", "key=value"),
])
def test_malformed_lines_name_file_and_line(line, expected):
    header = "costmodel-collect/1 header run=a pid=1 kernel=k unit=ns tsc_hz=unknown hugepage=2M"
    with pytest.raises(InputError) as error:
        parse_collector(f"{header}\nnoise\n{line}\n", "f.collect")
    assert str(error.value).startswith("f.collect:3: got")
    assert expected in str(error.value)


def test_same_run_id_twice_is_an_error(tmp_path):
    twice = tmp_path / "twice.collect"
    twice.write_text((SAMPLES / "collector-gmem.collect").read_text() * 2)
    with pytest.raises(InputError, match="one header per run"):
        read_inputs([twice])


# --- QEMU trace and guest dmesg ---------------------------------------------------------------
def test_qemu_trace_counts_conversions_by_direction():
    trace = parse_qemu_trace((SAMPLES / "qemu-trace.log").read_text(), "qemu-trace.log")
    assert trace.conversions == {"to_shared": 4, "to_private": 2}
    assert trace.bytes == {"to_shared": 0x40000000 + 3 * 0x1000, "to_private": 0x1000 + 0x200000}
    assert trace.events == 6 and not trace.malformed


def test_qemu_trace_reports_malformed_event_lines():
    trace = parse_qemu_trace("kvm_convert_memory start 0x1000 size 0x1000 private_to_shared\n"
                             "kvm_convert_memory start zzz\n", "t.log")
    assert trace.events == 1 and trace.malformed == [2]
    assert "line 2" in trace.messages[0]


def test_dmesg_gives_swiotlb_and_atomic_pools():
    log = parse_dmesg((SAMPLES / "guest-dmesg.txt").read_text(), "guest-dmesg.txt")
    boot = log.last
    assert boot.swiotlb_bytes == GiB and boot.swiotlb_start == 0x7BE00000
    assert boot.swiotlb_roundup_bytes == 1024 * MiB and boot.swiotlb_adjusted_bytes == 983 * MiB
    assert boot.atomic_pools == [(2 * MiB, "GFP_KERNEL"), (2 * MiB, "GFP_KERNEL|GFP_DMA"),
                                 (2 * MiB, "GFP_KERNEL|GFP_DMA32")]
    assert "SEV-SNP" in boot.encryption and log.messages == []


def test_dmesg_with_two_boots_keeps_the_last_and_says_so():
    text = ("[0.0] Linux version 6.1\n[0.1] software IO TLB: mapped [mem 0x1000-0x4001000] (64MB)\n"
            "<6>[0.0] Linux version 6.2\n<6>[0.1] DMA: preallocated 256 KiB pool for atomic allocations\n"
            "<6>[0.1] software IO TLB: SWIOTLB bounce buffer size roundup to 512MB\n")
    log = parse_dmesg(text, "two.txt")
    assert len(log.boots) == 2 and log.last.kernel == "6.2"
    assert log.last.swiotlb_bytes == 512 * MiB and log.last.atomic_pools == [(256 * 1024, "")]
    assert "2 boots" in log.messages[0]


def test_mixed_inputs_join_into_one_row():
    rows, _ = rows_of("collector-gmem.collect", "qemu-trace.log", "guest-dmesg.txt")
    row = rows.iloc[0]
    assert row["qemu_conversions"] == 6 and row["swiotlb_bytes"] == GiB
    assert row["atomic_pool_bytes"] == 6 * MiB and row["guest_kernel"] == "6.15.0-rc6"
    assert "qemu-trace.log" in row["source"] and "guest-dmesg.txt" in row["source"]


def test_kind_is_told_from_content():
    inputs = read_inputs([sample("qemu-trace.log"), sample("guest-dmesg.txt"), sample("collector-gmem.collect")])
    assert [d.split(": ", 1)[1].split(" (")[0] for d in inputs.detected] == \
        ["QEMU trace", "guest dmesg", "collector output"]
    with pytest.raises(InputError, match="unknown kind"):
        read_inputs([sample("README.md")])  # mentions the formats, holds none


def test_traces_go_to_the_run_their_name_starts_with(tmp_path):
    shutil.copy(SAMPLES / "qemu-trace.log", tmp_path / "sample-b.qemu-trace.log")
    shutil.copy(SAMPLES / "guest-dmesg.txt", tmp_path / "trace-of-someone.log")
    rows, _ = build_rows(read_inputs([sample("collector-two-runs.collect"), tmp_path / "sample-b.qemu-trace.log"]), SHAPE)
    by_run = rows.set_index("run_id")
    assert by_run.loc["sample-b", "qemu_conversions"] == 6
    assert math.isnan(by_run.loc["sample-a", "qemu_conversions"])
    with pytest.raises(InputError, match="file name starts with one of the run ids"):
        build_rows(read_inputs([sample("collector-two-runs.collect"), tmp_path / "trace-of-someone.log"]), SHAPE)


def test_trace_alone_is_not_a_run():
    with pytest.raises(InputError, match="no complete collector run"):
        rows_of("qemu-trace.log")


def test_hugepage_must_agree_with_the_header():
    with pytest.raises(InputError, match="--hugepage"):
        rows_of("collector-gmem.collect", shape=VmShape.parse(platform="snp", memory="16GiB", vcpus=16, hugepage="1G"))


def test_run_id_renames_a_single_run_only():
    rows, _ = rows_of("collector-gmem.collect", run_id="host7-a")
    assert rows.iloc[0]["run_id"] == "host7-a"
    with pytest.raises(InputError, match="several runs"):
        rows_of("collector-two-runs.collect", run_id="x")


# --- appending to a dataset --------------------------------------------------------------------
def test_ingest_appends_validated_rows_and_deduplicates(tmp_path):
    dataset = tmp_path / "runs.csv"
    first = ingest([sample("collector-gmem.collect"), sample("guest-dmesg.txt")], dataset, SHAPE)
    assert (first.appended, first.replaced) == (1, 0)
    second = ingest([sample("collector-two-runs.collect")], dataset, VmShape.parse(platform="snp", memory="8GiB", vcpus=8).replace(hugepage_bytes=None))
    assert (second.appended, second.replaced) == (2, 0)
    again = ingest([sample("collector-gmem.collect")], dataset, SHAPE)
    assert (again.appended, again.replaced) == (0, 1)
    frame = data.load(dataset)
    assert list(frame["run_id"]) == ["sample-snp-16g-2m", "sample-a", "sample-b"]
    assert frame.loc[frame["run_id"] == "sample-a", "memory_bytes"].item() == 8 * GiB
    for column in data.TARGETS:
        assert column in frame


def test_ingest_writes_parquet_too(tmp_path):
    dataset = tmp_path / "runs.parquet"
    ingest([sample("collector-fallback.collect")], dataset, SHAPE)
    frame = pd.read_parquet(dataset)
    assert frame["splits"].tolist() == [622]


def test_nothing_is_appended_on_error(tmp_path):
    dataset = tmp_path / "runs.csv"
    ingest([sample("collector-gmem.collect")], dataset, SHAPE)
    before = dataset.read_bytes()
    with pytest.raises(InputError):
        ingest([sample("collector-two-runs.collect"), sample("collector-truncated.collect")], dataset, SHAPE)
    assert dataset.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.csv"]  # no temporary left


# --- command line -------------------------------------------------------------------------------
def test_cli_ingest(tmp_path, capsys):
    dataset = tmp_path / "runs.csv"
    status = main(["ingest", sample("collector-two-runs.collect"), "--platform", "snp", "--memory", "16G",
                   "--vcpus", "8", "--virtqueues", "11", "-o", str(dataset)])
    out, err = capsys.readouterr()
    assert status == 0
    assert "2 run(s) added" in out
    assert "collector output (2 run(s): sample-a, sample-b)" in err
    assert data.load(dataset)["virtqueues"].tolist() == [11, 11]


def test_cli_ingest_error_is_one_line(tmp_path, capsys):
    status = main(["ingest", sample("collector-truncated.collect"), "--platform", "snp", "--memory", "16G",
                   "--vcpus", "8", "-o", str(tmp_path / "runs.csv")])
    _, err = capsys.readouterr()
    assert status == 2
    assert err.count("\n") == 1 and "truncated" in err
    assert not (tmp_path / "runs.csv").exists()


def test_cli_ingest_dry_run_writes_nothing(tmp_path, capsys):
    status = main(["ingest", sample("collector-unknown.collect"), "--platform", "tdx", "--memory", "4G",
                   "--vcpus", "2", "--tsc-hz", "2e9", "-o", str(tmp_path / "runs.csv"), "--dry-run"])
    out, err = capsys.readouterr()
    assert status == 0 and "sample-unknown" in out and "warning: " in err
    assert not (tmp_path / "runs.csv").exists()


def test_cli_ingest_bad_shape_names_the_flag(tmp_path, capsys):
    status = main(["ingest", sample("collector-gmem.collect"), "--platform", "sev", "--memory", "16G",
                   "--vcpus", "8", "-o", str(tmp_path / "runs.csv")])
    assert status == 2 and "--platform" in capsys.readouterr().err


def test_a_collector_that_never_attached_is_named_as_such(tmp_path):
    text = "\n".join((SAMPLES / "collector-gmem.collect").read_text().splitlines()[:12]) + "\n"
    never = tmp_path / "never.collect"
    never.write_text(text)  # header and probe lines only: bpftrace failed to attach
    with pytest.raises(InputError, match="never attached its probes"):
        build_rows(read_inputs([never]), SHAPE)


def test_an_attached_probe_that_saw_nothing_counts_zero():
    text = "\n".join([
        "costmodel-collect/1 header run=z pid=1 kernel=k unit=ns tsc_hz=1000000000 hugepage=2M",
        "costmodel-collect/1 probe run=z role=convert rank=1 name=kprobe:kvm_gmem_convert_execute_work status=used",
        "costmodel-collect/1 probe run=z role=split rank=1 name=kprobe:kvm_gmem_split_folio_in_filemap status=used",
        "costmodel-collect/1 begin run=z pid=1 probes=2",
        "costmodel-collect/1 split run=z pid=1 probe=kprobe:kvm_gmem_split_folio_in_filemap count=0 ns=0 other=0",
        "costmodel-collect/1 end run=z pid=1 elapsed_ns=1"])
    run = parse_collector(text, "z.collect").runs["z"]
    assert (run.conversion_ops, run.conversion_ns, run.split_count, run.merge_count) == (0, 0, 0, None)


def test_the_documented_example_parses():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "collector-format.md").read_text()
    example = doc.split("## Example", 1)[1].split("```", 2)[1]
    run = parse_collector(example, "docs/collector-format.md").runs["snp-16g-2m"]
    assert run.complete and run.split_count == 622 and run.hvo == "on" and run.conversion_ops == 120000
