"""`costmodel fit` in-process: output forms, the calibration file, and bad data (exit 2,
a message naming where, nothing written)."""

import json
from pathlib import Path

import pytest

from costmodel import calibration
from costmodel.cli import main
from costmodel.samples import DIRECTORY as SAMPLES_DIRECTORY

SAMPLES = SAMPLES_DIRECTORY
RUNS = SAMPLES / "synthetic-runs.csv"
HEADER = "platform,memory_bytes,vcpus,virtqueues,hugepage_bytes,splits,run_id\n"
GOOD = "".join(f"snp,{m}GiB,{n},,{h},{s},r{i}\n" for i, (m, n, h, s) in enumerate(
    [(4, 1, "2M", 200), (8, 4, "2M", 330), (16, 16, "2M", 600), (32, 64, "2M", 640), (16, 4, "1G", 5),
     (32, 16, "1G", 6), (8, 64, "2M", 420), (4, 16, "1G", 4)]))


def test_text_output_and_calibration_file(tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert main(["fit", str(RUNS), "--target", "splits", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Fit of splits") and "remainder_regions" in text and f"written to {out}" in text
    cal = calibration.Calibration.load(out)
    assert cal.origin("remainder_regions") is calibration.Origin.FITTED and "splits" in cal.fits


def test_json_output(capsys):
    assert main(["fit", str(RUNS), "--target", "conversion_ops", "--json", "--no-alternatives"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["target"] == "conversion_ops" and obj["model"] == "default" and obj["n_rows"] == 128
    assert set(obj["coefficients"]) == {"conversion_ops_fixed"} and obj["platform"] == "all"


def test_platform_flag_fits_the_tdx_set(tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert main(["fit", str(RUNS), "--target", "merges", "--platform", "tdx", "--no-alternatives", "-o", str(out)]) == 0
    assert "runs of another platform than tdx are not used" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert "tdx:merges" in saved["extra"]["fits"] and "tdx_coefficients" in saved
    assert main(["fit", str(RUNS), "--target", "merges", "--platform", "sev"]) == 2
    assert "--platform: got 'sev'" in capsys.readouterr().err


def test_fitted_calibration_feeds_formula_cards(tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert main(["fit", str(RUNS), "--target", "splits", "--no-alternatives", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["formula", "--target", "splits", "--calibration", str(out), "--format", "markdown"]) == 0
    card = capsys.readouterr().out
    assert "95 % CI" in card and "fitted" in card
    assert json.loads(out.read_text())["provenance"]["data_sha256"] in card


def test_assume_and_hold_flags(tmp_path, capsys):
    reference = Path(calibration.REFERENCE_DATA)
    code = main(["fit", str(reference), "--target", "splits", "--assume", "vcpus=16", "--no-alternatives",
                 "--hold", "transient_regions", "--json"])
    assert code == 0
    obj = json.loads(capsys.readouterr().out)
    assert list(obj["coefficients"]) == ["remainder_regions"] and obj["assumed_inputs"] == {"vcpus": 16}


BAD = {
    "missing column": ("platform,memory_bytes,hugepage_bytes,splits\nsnp,16G,2M,5\nsnp,8G,2M,4\n",
                       "got no column 'vcpus'"),
    "vcpus abc": (HEADER + GOOD + "snp,16G,abc,,2M,5,x\n", "line 10, column vcpus: got 'abc'"),
    "negative splits": (HEADER + GOOD + "snp,16G,4,,2M,-5,x\n", "line 10, column splits: got -5"),
    "NaN": (HEADER + GOOD + "snp,16G,4,,2M,NaN,x\n", "line 10, column splits: got 'NaN'"),
    "empty file": ("", "got an empty file"),
    "one row": (HEADER + "snp,16G,4,,2M,600,a\n", "got 1 run with a splits value"),
    "duplicated run": (HEADER + GOOD + GOOD.splitlines(keepends=True)[2], "line 10, column run_id: got 'r2' (also on line 4)"),
    "unknown platform": (HEADER + GOOD + "sev-snp,16G,4,,2M,5,x\n", "line 10, column platform: got 'sev-snp'; expected one of snp"),
    "too few configurations": (HEADER + "snp,16G,4,,2M,600,a\nsnp,16G,4,,2M,610,b\nsnp,16G,4,,2M,590,c\n",
                               "got 1 distinct configurations for"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_data_exits_2_names_where_and_writes_nothing(tmp_path, capsys, case):
    text, expected = BAD[case]
    path = tmp_path / "runs.csv"
    path.write_text(text)
    out = tmp_path / "cal.json"
    assert main(["fit", str(path), "--target", "splits", "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("costmodel fit: error: ") and str(path) in lines[0]
    assert expected in lines[0], lines[0]
    assert not out.exists()


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["fit", str(RUNS), "--target", "split"]) == 2
    assert "expected one of splits" in capsys.readouterr().err
    assert main(["fit", str(RUNS), "--target", "splits", "--assume", "vcpus"]) == 2
    assert "INPUT=VALUE" in capsys.readouterr().err
    assert main(["fit", str(RUNS), "--target", "splits", "--errors", "squared"]) == 2
    assert "relative, absolute" in capsys.readouterr().err


def test_never_writes_into_the_shipped_reference(capsys):
    target = Path(calibration.REFERENCE_DATA).parent / "fitted.json"
    assert main(["fit", str(RUNS), "--target", "splits", "-o", str(target)]) == 2
    assert "never edited" in capsys.readouterr().err and not target.exists()


@pytest.mark.parametrize("args, flag", [
    (["--target", "splits", "--model", "per-cpu"], "--model: got 'per-cpu'"),  # the library's argument is 'form'
    (["--target", "splits", "--hold", "remainder"], "--hold: got 'remainder'"),
    (["--target", "splits", "--assume", "vcpus=x"], "--assume vcpus: got 'x'"),
    (["--target", "split"], "--target: got 'split'"),
])
def test_library_arguments_are_shown_as_the_flags_that_set_them(capsys, args, flag):
    status = main(["fit", str(SAMPLES / "synthetic-runs.csv"), *args])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith(f"costmodel fit: error: {flag}") and err.count("\n") == 1
