"""``costmodel predict`` on its light path: NumPy and costmodel's own modules only, and the
same bytes as before that path existed.

``tests/data/cli_before/`` holds what ``costmodel predict`` printed (JSON, CSV, table, text)
before it stopped building DataFrames (recorded from main at bc4acde with pandas' own
``to_csv``/``to_string``; the 1 GiB guests' rows of ``grid.csv``/``grid.jsonl`` re-recorded when
the model stopped counting a kernel atomic pool for guests without RAM above 4 GiB,
docs/placement.md §9 (b); the JSON files re-recorded when a zero became ``0``, not ``0.0``,
the same values); the light path must print exactly that. Not timed: the speed is
``benchmarks/bench_cli.py``'s business.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from costmodel import results
from costmodel.cli import predict as cli_predict

BEFORE = Path(__file__).parent / "data" / "cli_before"
HEAVY = ("sympy", "pandas", "scipy", "pyarrow", "numba")
GRID = ["--memory", "1G,16G,64G", "--hugepage", "2M,1G", "--platform", "snp,tdx", "--vcpus", "4,32"]
#: file in tests/data/cli_before → the arguments that printed it
RECORDED = {
    "ref_default.txt": ["predict"],
    "ref.json": ["predict", "--json"],
    "ref.csv": ["predict", "--csv"],
    "ref_table.txt": ["predict", "--table"],
    "grid.jsonl": ["predict", *GRID, "--json"],
    "grid.csv": ["predict", *GRID, "--csv"],
    "grid_table.txt": ["predict", *GRID, "--table"],
    "grid_default.txt": ["predict", *GRID],
    "grid2_table.txt": ["predict", "--memory", "4G:64G:x2", "--scenario", "status_quo,host_promotion", "--table"],
    "tdx_default.txt": ["predict", "--memory", "8G", "--platform", "tdx"],
    "tdx.json": ["predict", "--memory", "8G", "--platform", "tdx", "--json"],
    "work_table.txt": ["predict", "--memory", "16G", "--duration", "600", "--accelerator",
                       "gpu:count=1,unprotected=1GiB,chunk=4KiB,staging=8", "--table"],
    "dev.csv": ["predict", "--memory", "16G,32G", "--device", "virtio-blk:queues=4", "--device", "nvme:queues=8",
                "--csv"],
}

#: Runs each argument list through the CLI in one process, then lists the heavy modules loaded.
_CHILD = """
import contextlib, io, json, sys
from costmodel.cli import main
outputs = {}
for name, argv in json.loads(sys.argv[1]).items():
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(argv)
    outputs[name] = [status, buffer.getvalue()]
outputs["__heavy__"] = [m for m in %r if m in sys.modules]
sys.stdout.write(json.dumps(outputs))
""" % (HEAVY,)


@pytest.fixture(scope="module")
def light_run(tmp_path_factory):
    """Every recorded command, warm (its cache entries made by a first, cold run of the
    same commands: each scenario's program is compiled once), in a fresh process."""
    env = {**os.environ, "COSTMODEL_CACHE_DIR": str(tmp_path_factory.mktemp("cli-light-cache"))}
    runs = []
    for _ in ("cold", "warm"):
        out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(RECORDED)], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout))
    cold, warm = runs
    assert {k: v for k, v in cold.items() if k != "__heavy__"} == {k: v for k, v in warm.items() if k != "__heavy__"}
    return warm


def test_a_warm_predict_imports_none_of_the_heavy_libraries(light_run):
    assert light_run["__heavy__"] == []


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_the_light_path_prints_what_the_dataframe_path_printed(light_run, name):
    status, text = light_run[name]
    assert status == 0
    assert text == (BEFORE / name).read_text(), f"{name}: {' '.join(RECORDED[name])}"


def test_help_of_every_subcommand_imports_none_of_the_heavy_libraries():
    from costmodel.cli import command_modules

    code = ("import contextlib, io, sys\nfrom costmodel.cli import main\n"
            "for argv in [['--help']] + [[c, '--help'] for c in sys.argv[1:]]:\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try:\n            main(argv)\n        except SystemExit:\n            pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, *command_modules()], capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- the pieces ----------------------------------------------------------------------------------
def test_source_names_are_the_closed_forms_breakdown_in_order():
    from costmodel.model import FORMS, model_for

    for form in FORMS:
        assert tuple(model_for(form).splits_by_source()) == results.SOURCE_NAMES


def test_command_summaries_read_by_pattern_equal_the_parsed_ones():
    from costmodel import cli

    for name in cli.command_modules():
        text = (Path(cli.__file__).parent / f"{name}.py").read_text()
        assert cli._HELP.search(text), f"{name}: help= not a plain literal (the slow path would be used)"
        assert cli._summary(name) == cli._summary_parsed(text) is not None


def test_command_modules_are_the_packages_modules():
    import pkgutil

    from costmodel import cli

    expected = {m.name for m in pkgutil.iter_modules(cli.__path__) if not m.name.startswith("_")}
    assert set(cli.command_modules()) == expected


def test_columns_equal_predict_grids_frame(reference_calibration):
    grid = {"memory_bytes": [2**30, 2**34, 3 * 2**33], "vcpus": [1, 7, 64], "hugepage_bytes": [4096, 2**21, 2**30],
            "platform": ["snp", "tdx"], "virtqueues": [None, 9], "kaslr": [True, False], "duration_seconds": [600.0],
            "flip_rate": [0.0, 3.5]}
    scenarios = ("status_quo", "struct_page_less")
    frame = results.predict_grid(grid, scenarios, calibration=reference_calibration)
    columns = results.predict_columns(grid, scenarios, calibration=reference_calibration)
    assert columns.names == list(frame.columns) and len(columns) == len(frame)
    for name in frame.columns:
        expected = frame[name].astype(object if name in ("platform", "scenario") else frame[name].dtype).to_numpy()
        got = columns[name]
        if expected.dtype.kind == "f":
            assert np.array_equal(got, expected, equal_nan=True), name
        else:
            assert list(got) == list(expected), name
    for i in (0, len(frame) - 1):
        assert (results.Prediction(columns.row(i), reference_calibration).to_dict()
                == results.Prediction(frame.iloc[i], reference_calibration).to_dict())


def test_prediction_frames_still_come_from_the_library(reference_calibration):
    prediction = results.predict(calibration=reference_calibration)
    assert list(prediction.to_frame().columns) == ["quantity", "value", "shown", "unit", "meaning"]
    assert prediction.breakdown()["splits"].sum() == pytest.approx(prediction.to_dict()["splits"])
    assert "<table>" in prediction._repr_html_()


# --- the layouts pandas used to make ------------------------------------------------------------
def _random_table(rng, columns: int, rows: int):
    headers = [("h" * int(rng.integers(1, 14)))[: int(rng.integers(1, 14))] + str(i) for i in range(columns)]
    cells = [[("x" * int(rng.integers(0, 16))) + "–" * int(rng.integers(0, 2)) for _ in range(rows)]
             for _ in range(columns)]
    return headers, cells


@pytest.mark.parametrize("seed", range(12))
def test_text_table_lays_out_as_pandas_to_string(seed):
    rng = np.random.default_rng(seed)
    headers, cells = _random_table(rng, int(rng.integers(1, 16)), int(rng.integers(1, 6)))
    width = int(rng.choice([40, 80, 100]))
    frame = pd.DataFrame({h: c for h, c in zip(headers, cells)})
    assert cli_predict.text_table(headers, cells, width) == frame.to_string(index=False, line_width=width)


def test_csv_text_writes_what_pandas_to_csv_wrote():
    data = {"n": np.array([1, -2, 3], dtype="int64"), "x": np.array([0.1, np.nan, 1e300]),
            "whole": np.array([622.0, -0.0, np.inf]), "flag": np.array([True, False, True]),
            "text": np.array(["a,b", 'say "hi"', "plain"], dtype=object),
            "blank": np.array(["", None, "x"], dtype=object)}
    expected = pd.DataFrame(data).to_csv(index=False, float_format=cli_predict.CSV_FLOAT)
    assert cli_predict.csv_text(results.Columns({**data, "memory_bytes": data["n"]}), list(data)) == expected


def test_the_lazy_data_package_keeps_its_names():
    code = ("import sys\nimport costmodel.data as data\nlight = 'pandas' not in sys.modules\n"
            "import costmodel.data.files\n"
            "print(light, callable(data.validate), data.validate.__module__, data.load.__module__, data.TARGETS[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["True", "True", "costmodel.data.validate", "costmodel.data.files", "splits"]


# --- the caches a warm start reads ---------------------------------------------------------------
def test_compiled_code_is_cached_and_a_damaged_entry_compiled_again(tmp_path, monkeypatch):
    from costmodel import cache

    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path))
    source = "def f():\n    return 41 + 1\n"
    for damage in (None, b"not marshal data", b"\xe9\x00\x00\x00\x00"):  # the last: a valid marshal int
        if damage is not None:
            next((tmp_path / "code").iterdir()).write_bytes(damage)
        namespace = {}
        exec(cache.code(source, "<test>"), namespace)
        assert namespace["f"]() == 42
        assert len(list((tmp_path / "code").iterdir())) == 1


def test_the_fingerprint_memo_follows_the_modules(tmp_path, monkeypatch):
    import time

    from costmodel import cache

    package = tmp_path / "package"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "sub" / "b.py").write_text("B = 2\n")
    monkeypatch.setattr(cache, "PACKAGE_DIR", package)
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path / "cache"))

    def fingerprint():
        cache.code_fingerprint.cache_clear()
        return cache.code_fingerprint()

    try:
        first = fingerprint()
        assert len(list((tmp_path / "cache" / "fingerprint").iterdir())) == 1
        assert fingerprint() == first  # read back from the memo
        monkeypatch.setenv("COSTMODEL_CACHE", "0")
        assert fingerprint() == first  # the memo holds what hashing the files gives
        monkeypatch.delenv("COSTMODEL_CACHE")
        time.sleep(0.01)
        (package / "sub" / "b.py").write_text("B = 3\n")
        assert fingerprint() != first
    finally:
        cache.code_fingerprint.cache_clear()
