"""End to end on the samples, from the command line: ingest → fit → report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from costmodel import data
from costmodel.cli import main
from costmodel.files import sha256_file

SAMPLES = Path(__file__).resolve().parent / "samples"

#: (files, shape flags): four shapes from the labelled samples.
RUNS = [
    (["collector-gmem.collect", "qemu-trace.log", "guest-dmesg.txt"],
     ["--memory", "16GiB", "--vcpus", "16", "--virtqueues", "19"]),
    (["collector-two-runs.collect"], ["--memory", "8GiB", "--vcpus", "8", "--virtqueues", "11"]),
    (["collector-fallback.collect"], ["--memory", "32GiB", "--vcpus", "32", "--virtqueues", "35"]),
    (["collector-unknown.collect"], ["--memory", "16GiB", "--vcpus", "16", "--virtqueues", "19"]),
]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    dataset, calibration = work / "runs.csv", work / "cal.json"
    for files, shape in RUNS:
        status = main(["ingest", *[str(SAMPLES / f) for f in files], "--platform", "snp", *shape,
                       "-o", str(dataset)])
        assert status == 0
    assert main(["fit", str(dataset), "--target", "splits", "--no-alternatives", "-o", str(calibration)]) == 0
    return work, dataset, calibration


def test_ingest_then_fit(fitted, capsys):
    _, dataset, calibration = fitted
    frame = data.load(dataset)
    assert len(frame) == 5 and frame["splits"].notna().all()
    written = json.loads(calibration.read_text())
    text = json.dumps(written)
    # the calibration names the dataset it was fitted to
    assert sha256_file(dataset) in text
    assert "fitted" in text


has_report = importlib.util.find_spec("costmodel.cli.report") is not None


@pytest.mark.notebook
@pytest.mark.skipif(not has_report, reason="costmodel report is not there yet")
def test_fit_then_report(fitted):
    work, dataset, calibration = fitted
    out = work / "reports"
    status = main(["report", "-p", "data", str(dataset), "-p", "calibration", str(calibration),
                   "-p", "memory", "16GiB", "-p", "vcpus", "16", "--to", "html", "-o", str(out)])
    assert status == 0
    [page] = out.glob("*.html")
    html = page.read_text()
    assert sha256_file(dataset) in html  # the report says which data it was compared with
    assert "cal.json" in html
