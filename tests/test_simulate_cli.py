"""costmodel simulate through main(): the table, JSON, the map, the shared shape flags and one-line errors
(grids on a cluster: tests/test_simulate_grid.py)."""

import argparse
import json

import pytest

from costmodel.cli import build_parser, main


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _subparser(name):
    parser = build_parser()
    action = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    return action.choices[name]


def test_shape_flags_are_predicts_flags_with_the_same_dests():
    from costmodel.cli import _shape

    shared = argparse.ArgumentParser()
    _shape.add_shape_arguments(shared)
    wanted = {(o, a.dest) for a in shared._actions for o in a.option_strings if a.dest != "help"}

    def flags(name):
        return {(o, a.dest) for a in _subparser(name)._actions for o in a.option_strings}

    assert wanted <= flags("simulate") and wanted <= flags("predict")
    assert len(wanted) > 10


def test_json_has_the_distribution_and_the_closed_form(capsys):
    status, out, _ = run(capsys, "simulate", "--seeds", "20", "--json")
    data = json.loads(out)
    assert status == 0
    assert {"splits", "splits_p05", "splits_p95", "merges", "splits_by_source", "closed_form_splits",
            "closed_form_merges", "shape", "parameters"} <= set(data)
    assert list(data) == sorted(data)
    assert 590 <= data["splits"] <= 653 and data["merges"] == 30 and data["seeds"] == 20
    assert abs(data["closed_form_splits"] - 622) < 31
    assert sum(data["splits_by_source"].values()) == pytest.approx(data["splits"])


def test_deterministic_reference_is_620_and_30(capsys):
    status, out, _ = run(capsys, "simulate", "--deterministic", "--seeds", "3", "--json")
    data = json.loads(out)
    assert status == 0 and data["splits"] == data["splits_p05"] == data["splits_p95"] == 620 and data["merges"] == 30


def test_table_shows_each_source_beside_the_closed_form(capsys):
    status, out, _ = run(capsys, "simulate", "--seeds", "5", "--hugepage", "1G", "--platform", "tdx")
    assert status == 0
    assert "closed form" in out and "SWIOTLB bounce pool" in out and "transient" in out and "p95" in out


def test_a_grid_prints_one_object_per_shape(capsys):
    status, out, _ = run(capsys, "simulate", "--seeds", "2", "--vcpus", "4,8", "--device", "nvme:queues=2",
                         "--device", "virtio-net", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [d["shape"]["vcpus"] for d in lines] == [4, 8]
    assert lines[0]["shape"]["devices"] == "nvme:queues=2;virtio-net"


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_map_is_written(capsys, tmp_path, suffix, magic):
    path = tmp_path / f"map{suffix}"
    status, out, _ = run(capsys, "simulate", "--seeds", "2", "--numa-nodes", "2", "--map", str(path))
    assert status == 0 and path.read_bytes().startswith(magic) and str(path) in out
    if suffix == ".png":
        import struct

        width = struct.unpack(">I", path.read_bytes()[16:20])[0]
        assert width == 1280


@pytest.mark.parametrize("argv, flag", [
    (["--map", "out.pdf"], "--map"),
    (["--seeds", "0"], "--seeds"),
    (["--device", "virtio-foo"], "--device"),
    (["--device", "virtio-blk:queues=0"], "--device"),
    (["--device", "virtio-blk:size=300"], "--device"),
    (["--device", "virtio-net:layout=ring"], "--device"),
    (["--numa-nodes", "4", "--vcpus", "2"], "--numa-nodes"),
    (["--lowmem", "5G"], "--lowmem"),
    (["--memory", "512M", "--vcpus", "4096"], "--memory"),
    (["--map", "m.png", "--vcpus", "1,2"], "--map"),
])
def test_bad_input_is_one_line_status_2(capsys, argv, flag):
    status, out, err = run(capsys, "simulate", "--seeds", "1", *argv)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and flag in err


def test_grid_needs_an_output_and_output_needs_a_grid(capsys, tmp_path):
    sweep = tmp_path / "shapes.yaml"
    sweep.write_text("- {vcpus: 4, memory: 4GiB, hugepage: 2M}\n")
    status, _, err = run(capsys, "simulate", "--grid", str(sweep))
    assert status == 2 and "--output" in err
    status, _, err = run(capsys, "simulate", "-o", str(tmp_path / "x.parquet"))
    assert status == 2 and "--grid" in err
    status, _, err = run(capsys, "simulate", "--grid", str(sweep), "-o", str(tmp_path / "x.csv"))
    assert status == 2 and "--output" in err and ".parquet" in err
    status, _, err = run(capsys, "simulate", "--grid", str(sweep), "-o", str(tmp_path / "x.parquet"), "--jobs", "2",
                         "--scheduler", "tcp://127.0.0.1:9")
    assert status == 2 and "--jobs" in err and not (tmp_path / "x.parquet.parts").exists()
