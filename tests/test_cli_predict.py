"""costmodel predict / formula through main(): outputs, grids and one-line errors."""

import csv
import io
import json

import pytest

from costmodel import calibration
from costmodel.cli import main
from costmodel.results import PREDICTION_KEYS

REQUIRED_KEYS = {"memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "platform", "swiotlb_bytes", "splits",
                 "merges", "conversion_ops", "split_merge_cycles", "conversion_cycles", "split_merge_share",
                 "vmemmap_bytes", "huge_mapped_fraction"}


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_predict_json_reference(capsys):
    status, out, _ = run(capsys, "predict", "--memory", "16GiB", "--vcpus", "16", "--hugepage", "2M", "--json")
    data = json.loads(out)
    assert status == 0 and REQUIRED_KEYS <= set(data)
    assert data["memory_bytes"] == 16 * 2**30 and data["virtqueues"] == 19 and data["platform"] == "snp"
    assert abs(data["splits"] - 622) < 31 and 0.06 <= data["split_merge_share"] <= 0.08
    assert data["conversion_cycles"] >= data["split_merge_cycles"]


def test_predict_table_is_readable(capsys):
    status, out, _ = run(capsys, "predict", "--hugepage", "1G", "--platform", "tdx")
    assert status == 0
    assert "splits by source" in out and "SWIOTLB bounce pool" in out and "16 GiB" in out


def test_predict_grid_json_lines(capsys):
    status, out, _ = run(capsys, "predict", "--vcpus", "1:8:x2", "--hugepage", "2M,1G", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and len(rows) == 8
    assert [r["vcpus"] for r in rows] == [1, 1, 2, 2, 4, 4, 8, 8]
    assert all(REQUIRED_KEYS <= set(r) for r in rows)


def test_predict_grid_csv(capsys):
    status, out, _ = run(capsys, "predict", "--memory", "4G:64G:x2", "--csv", "--scenario", "status_quo,guest_pooling")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert status == 0 and len(rows) == 10
    assert list(rows[0])[: len(PREDICTION_KEYS)] == list(PREDICTION_KEYS)
    assert {r["scenario"] for r in rows} == {"status_quo", "guest_pooling"}


@pytest.mark.parametrize("argv, flag", [
    (["--memory", "16GB?"], "--memory"), (["--memory", "-1G"], "--memory"), (["--memory", "0"], "--memory"),
    (["--vcpus", "0"], "--vcpus"), (["--vcpus", "2.5"], "--vcpus"), (["--hugepage", "3M"], "--hugepage"),
    (["--platform", "sev"], "--platform"), (["--scenario", "pooling"], "--scenario"),
    (["--virtqueues", "x"], "--virtqueues"), (["--vcpus", "8:1"], "--vcpus"),
])
def test_bad_input_is_one_line_status_2(capsys, argv, flag):
    status, out, err = run(capsys, "predict", *argv)
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert flag in lines[0] and "got" in lines[0] and "expected" in lines[0]
    assert "Traceback" not in err


def test_unknown_flag_is_one_line_status_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", "--memroy", "16G"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1 and "--memroy" in err


def test_missing_calibration_file(capsys, tmp_path):
    status, _, err = run(capsys, "predict", "--calibration", str(tmp_path / "nope.json"))
    assert status == 2 and "--calibration" in err and "nope.json" in err


@pytest.mark.parametrize("fmt, marker", [("text", "coefficients"), ("latex", "\\begin{align*}"), ("markdown", "$$")])
def test_formula_formats(capsys, fmt, marker):
    status, out, _ = run(capsys, "formula", "--target", "splits", "--format", fmt)
    assert status == 0 and marker in out
    # the remainder coefficient, shown with 4 significant digits in its row and bound into its weight
    shown = f"{calibration.default().values['remainder_regions']:.4g}"
    row = next(line for line in out.splitlines() if "remainder_regions" in line.replace("\\_", "_"))
    assert shown in row
    symbolic, bound = (out.split("\\begin{tabular}")[0], out.split("\\end{tabular}")[1]) if fmt == "latex" else \
        out.split("calibration's numbers", 1)
    assert shown in bound and shown not in symbolic
    assert f"sha256 {calibration.default().provenance['data_sha256']}" in out


def test_formula_every_output(capsys):
    from costmodel.model.variables import OUTPUTS

    for target in OUTPUTS:
        status, out, _ = run(capsys, "formula", "--target", target, "--format", "latex", "--platform", "tdx", "--hugepage", "2M")
        assert status == 0 and out.count("\\begin{align*}") == 2, target


def test_formula_unknown_target_suggests(capsys):
    status, _, err = run(capsys, "formula", "--target", "split")
    assert status == 2 and "splits" in err.split("expected")[1].split(",")[0]


def test_predict_with_fitted_calibration_shows_intervals_everywhere(capsys, tmp_path):
    from costmodel.samples import SYNTHETIC_RUNS

    cal = tmp_path / "cal.json"
    assert main(["fit", str(SYNTHETIC_RUNS), "--target", "splits",
                 "--no-alternatives", "-o", str(cal)]) == 0
    capsys.readouterr()
    status, out, _ = run(capsys, "predict", "--memory", "8G,4096G", "--calibration", str(cal), "--table")
    lines = out.splitlines()
    assert status == 0 and "splits_pi_low" in out and "extrapolation" in out
    assert all(len(line) <= 100 for line in lines), "the table fits 100 columns"
    assert lines[0].startswith("all rows:"), "columns every row shares are said once"
    flagged = [line for line in lines if "memory_bytes" in line]
    assert len(flagged) == 1 and "4 TiB" in flagged[0]  # 4 TiB lies outside the fitted runs
    status, out, _ = run(capsys, "predict", "--calibration", str(cal), "--json")
    data = json.loads(out)
    assert data["splits_pi_low"] < data["splits"] < data["splits_pi_high"]
