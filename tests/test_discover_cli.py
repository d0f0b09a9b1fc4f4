"""costmodel discover: readers, bad input (exit 2, one line), outputs, model file, card, report."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import sympy

from costmodel.cli import main
from costmodel.discover import discover, from_frame, load, read

VALUES = [2, 4, 8, 16, 32, 64]


def _grid_frame(seed: int = 0, noise: float = 0.01) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(p, q) for p, q in itertools.product(VALUES, VALUES) for _ in range(3)]
    frame = pd.DataFrame(rows, columns=["p", "q"])
    frame["time"] = (4 + 3 * frame.p * frame.q) * (1 + noise * rng.standard_normal(len(frame)))
    frame["host"] = "node-a"
    return frame


@pytest.fixture
def grid_csv(tmp_path):
    path = tmp_path / "runs.csv"
    _grid_frame().to_csv(path, index=False)
    return path


def run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_csv_discovery_prints_formula_intervals_and_predictions(grid_csv, capsys):
    status, out, err = run(["discover", str(grid_csv), "--target", "time", "--at", "p=256,q=256", "--json"], capsys)
    assert status == 0, err
    model = json.loads(out)
    assert model["inputs"] == ["p", "q"]  # the text column host is left out, and said so
    assert any("host" in w for w in model["warnings"])
    expr = sympy.parse_expr(model["formula_sympy"])
    value = float(expr.subs({sympy.Symbol("p"): 256, sympy.Symbol("q"): 256}))
    (prediction,) = model["predictions"]
    assert prediction["value"] == pytest.approx(value, rel=1e-9)
    assert prediction["pi_low"] < value < prediction["pi_high"]
    assert value == pytest.approx(4 + 3 * 256 * 256, rel=0.02)
    assert prediction["extrapolation"] == ["p", "q"]
    for c in model["coefficients"]:
        assert c["ci_low"] <= c["value"] <= c["ci_high"]
    assert model["latex"] and "\\," in model["latex"]
    assert len(model["alternatives"]) == 5 and all("score" in a for a in model["alternatives"])


def test_logs_are_written_base_two_for_sympy(tmp_path):
    x = np.repeat(2.0 ** np.arange(1, 10), 3)
    frame = pd.DataFrame({"n": x, "cycles": 7 * x * np.log2(x) + 100})
    model = discover(from_frame(frame, "cycles"))
    assert "log(n, 2)" in model.formula("sympy")
    expr = sympy.parse_expr(model.formula("sympy"))
    assert float(expr.subs(sympy.Symbol("n"), 1024)) == pytest.approx(7 * 1024 * 10 + 100, rel=1e-9)


def test_odd_column_names_become_symbols_sympy_reads(tmp_path):
    frame = _grid_frame().rename(columns={"p": "memory bytes", "q": "lambda"})
    path = tmp_path / "odd.csv"
    frame.to_csv(path, index=False)
    model = discover(path, "time", "memory bytes,lambda")
    assert model.symbols == ("memory_bytes", "lambda_")
    local = {s: sympy.Symbol(s) for s in model.symbols}
    expr = sympy.parse_expr(model.formula("sympy"), local_dict=local)
    assert expr.free_symbols <= set(local.values())
    assert "\\mathrm{memory bytes}" in model.formula("latex") and "\\mathrm{lambda}" in model.formula("latex")


def test_model_file_round_trips_and_formula_prints_its_card(grid_csv, tmp_path, capsys):
    out_path = tmp_path / "model.json"
    status, _, err = run(["discover", str(grid_csv), "--target", "time", "-o", str(out_path)], capsys)
    assert status == 0, err
    model = load(out_path)
    again = model.predict([{"p": 100, "q": 100}])[0]
    fresh = discover(grid_csv, "time").predict([{"p": 100, "q": 100}])[0]
    assert again.value == pytest.approx(fresh.value, rel=1e-12)
    assert again.pi_high == pytest.approx(fresh.pi_high, rel=1e-9)
    for fmt, marker in (("text", "coefficients (95 % CI)"), ("markdown", "$$"), ("latex", "\\begin{align*}")):
        status, out, err = run(["formula", "--model", str(out_path), "--format", fmt], capsys)
        assert status == 0, err
        assert marker in out and "sha256" in out


def test_parquet_is_read(tmp_path):
    path = tmp_path / "runs.parquet"
    _grid_frame().drop(columns="host").to_parquet(path)
    m = read(path, "time")
    assert m.inputs == ("p", "q") and m.format == "parquet" and len(m.y) == 3 * 36


EXTRAP = """# two regions, two metrics
PARAMETER p
PARAMETER q

POINTS ( 2 1 ) ( 4 1 ) ( 8 1 )
POINTS ( 2 2 ) ( 4 2 ) ( 8 2 )
POINTS ( 2 4 ) ( 4 4 ) ( 8 4 )

REGION solve
METRIC time
{time}
METRIC bytes
{bytes}
REGION setup
METRIC time
{setup}
"""


def _extrap_text():
    points = [(p, q) for q in (1, 2, 4) for p in (2, 4, 8)]

    def block(f):
        return "\n".join("DATA " + " ".join(repr(f(p, q) * (1 + d)) for d in (-0.01, 0.0, 0.01)) for p, q in points)

    return EXTRAP.format(time=block(lambda p, q: 2.0 * p * q + 1), bytes=block(lambda p, q: 64.0 * p),
                         setup=block(lambda p, q: 5.0 + q))


def test_extrap_text_regions_and_metrics(tmp_path):
    path = tmp_path / "exp.txt"
    path.write_text(_extrap_text())
    m = read(path, "solve/bytes")
    assert m.inputs == ("p", "q") and len(m.y) == 27 and m.format == "extrap-text"
    assert read(path, "setup").target == "setup/time"  # a region with one metric
    model = discover(path, "solve/time", at=["p=16,q=16"])
    assert model.predictions[0].value == pytest.approx(2 * 16 * 16 + 1, rel=0.02)


def test_extrap_jsonlines(tmp_path):
    path = tmp_path / "exp.jsonl"
    lines = [json.dumps({"params": {"x": x, "y": y}, "callpath": "main", "metric": "time", "value": [x * y + 1.0] * 2})
             for x, y in itertools.product([1, 2, 4, 8], [1, 2, 4, 8])]
    path.write_text("\n".join(lines) + "\n\n")
    m = read(path, "main/time")
    assert m.inputs == ("x", "y") and len(m.y) == 32
    assert read(path, "main").target == "main/time"


@pytest.mark.parametrize("case, argv_extra, expected", [
    ("text input", ["--inputs", "p,host"], "column host"),
    ("too few points", [], "distinct configuration"),
    ("zero under a log", [], "positive value"),
    ("malformed extrap", [], "line 7: got 'x'"),
    ("unknown target", [], "--target"),
    ("bad at", ["--at", "p=1"], "--at"),
])
def test_bad_input_exits_2_with_one_line(case, argv_extra, expected, tmp_path, capsys):
    frame = _grid_frame()
    path = tmp_path / "runs.csv"
    target = "time"
    if case == "too few points":
        frame = frame[(frame.p <= 4) & (frame.q == 2)]
    if case == "zero under a log":
        frame.loc[5, "q"] = 0
    if case == "unknown target":
        target = "tiem"
    frame.to_csv(path, index=False)
    if case == "malformed extrap":
        path = tmp_path / "exp.txt"
        path.write_text(_extrap_text().replace("POINTS ( 2 4 ) ( 4 4 ) ( 8 4 )", "POINTS ( 2 4 ) ( 4 x ) ( 8 4 )"))
        target = "solve/time"
    status, out, err = run(["discover", str(path), "--target", target, *argv_extra], capsys)
    assert status == 2, (out, err)
    assert err.count("\n") == 1 and expected in err, err
    assert "Traceback" not in err


@pytest.mark.notebook
def test_report_renders_the_discover_notebook_from_data_and_from_a_model(grid_csv, tmp_path, capsys):
    status, out, err = run(["report", "--notebook", "discover", "-p", "data", str(grid_csv), "-p", "target", "time",
                            "--to", "html", "-o", str(tmp_path / "a")], capsys)
    assert status == 0, err
    html = (tmp_path / "a" / "discover-runs-time.html").read_text()
    assert "Far from the measurements" in html and "95 % prediction interval" in html
    model_path = tmp_path / "model.json"
    assert main(["discover", str(grid_csv), "--target", "time", "-o", str(model_path)]) == 0
    status, out, err = run(["report", "-p", "model", str(model_path), "--to", "html", "-o", str(tmp_path / "b")], capsys)
    assert status == 0, err
    assert "Fit and residuals" in (tmp_path / "b" / "discover-model.html").read_text()
