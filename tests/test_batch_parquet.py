"""Big closed-form grids (issue 12): `costmodel predict -o FILE.parquet` computes and writes the grid
in chunks, and the file holds exactly what `predict_grid` gives in one frame."""

import pandas as pd
import pyarrow.parquet as pq
import pytest

from costmodel import files, results
from costmodel.cli import main as cli_main

GRID = {"memory_bytes": [2**30 * m for m in (1, 4, 16, 64)], "vcpus": list(range(1, 41)),
        "hugepage_bytes": [2**21, 2**30], "platform": ["snp", "tdx"]}


def _comparable(frame):
    return frame.reset_index(drop=True).astype({c: str for c in frame.columns if frame[c].dtype.name in
                                                ("category", "object", "string", "str")})


def test_chunks_are_the_whole_grid_in_order(tmp_path, reference_calibration):
    whole = results.predict_grid(GRID, ["status_quo", "guest_pooling"], calibration=reference_calibration)
    chunks = list(results.predict_grid_chunks(GRID, ["status_quo", "guest_pooling"],
                                              calibration=reference_calibration, rows=100))
    assert [len(c) for c in chunks] == ([100] * 6 + [40]) * 2
    path = tmp_path / "grid.parquet"
    assert files.write_parquet_chunks(path, iter(chunks)) == len(whole) == 1280
    assert pq.ParquetFile(path).metadata.num_row_groups == 14, "written as it came, chunk by chunk"
    pd.testing.assert_frame_equal(_comparable(pd.read_parquet(path)), _comparable(whole), check_dtype=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.parquet"], "no temporary left"


def test_a_failure_midway_leaves_no_file(tmp_path, reference_calibration):
    def frames():
        yield from results.predict_grid_chunks(GRID, calibration=reference_calibration, rows=50)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        files.write_parquet_chunks(tmp_path / "grid.parquet", frames())
    assert list(tmp_path.iterdir()) == []


def test_cli_predict_writes_parquet(tmp_path, capsys):
    path = tmp_path / "g.parquet"
    assert cli_main(["predict", "--memory", "4G:64G:x2", "--vcpus", "1:8:+1", "--hugepage", "2M,1G",
                     "-o", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: 80 configurations"
    frame = pd.read_parquet(path)
    assert len(frame) == 80 and {"splits", "merges", "conversion_cycles"} <= set(frame.columns)
    assert cli_main(["predict", "-o", str(tmp_path / "g.csv")]) == 2
    assert "--output: got" in capsys.readouterr().err
