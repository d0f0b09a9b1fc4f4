"""What `costmodel fit` prints on the shipped sample stays what it was, and the fast paths of
a fit compute exactly what the plain ones do.

``tests/data/fit-outputs/`` holds the text report and the ``--json`` object of a fit of each
target of ``costmodel/samples/synthetic-runs.csv`` (and two variants), written by the code
before the fit was made fast (commit bc4acde) with the data path replaced by ``DATA``. The
text must match exactly; JSON numbers to 1e-9 relative (the solvers run in floating point,
and another machine's BLAS may differ in the last digits), everything else exactly.
"""

import importlib
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from costmodel import calibration, fitting
from costmodel.compiled import KEY_COLUMNS, compile_outputs, configuration_keys, configurations
from costmodel.fitting import program, solve
from costmodel.fitting.runs import configuration_groups, shape_columns
from costmodel.model import FORMS
from costmodel.model.variables import COEFFICIENTS
from costmodel.samples import DIRECTORY as SAMPLES
from costmodel.uncertainty import jacobian, t_quantile

PINNED = Path(__file__).parent / "data" / "fit-outputs"
RUNS = SAMPLES / "synthetic-runs.csv"
CASES = {t: dict(target=t) for t in fitting.TARGETS}
CASES["merges-tdx"] = dict(target="merges", platform="tdx")
CASES["conversion_ops-absolute"] = dict(target="conversion_ops", errors="absolute")


def _close(found, expected, where=""):
    if isinstance(expected, dict):
        assert isinstance(found, dict) and sorted(found) == sorted(expected), where
        for key in expected:
            _close(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(found, list) and len(found) == len(expected), where
        for i, (f, e) in enumerate(zip(found, expected)):
            _close(f, e, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert isinstance(found, (int, float)) and math.isclose(found, expected, rel_tol=1e-9, abs_tol=1e-300), \
            f"{where}: {found!r} != {expected!r}"
    else:
        assert found == expected, f"{where}: {found!r} != {expected!r}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_prints_what_it_printed(case):
    result = fitting.fit(str(RUNS), **CASES[case])
    assert result.to_text().replace(str(RUNS), "DATA") == (PINNED / f"{case}.txt").read_text()
    _close(json.loads(result.to_json().replace(str(RUNS), "DATA")), json.loads((PINNED / f"{case}.json").read_text()))


# --- the fast paths against the plain ones -------------------------------------------------------
@pytest.fixture(scope="module")
def sample_arrays():
    frame = importlib.import_module("costmodel.data").load(RUNS)
    return configurations(shape_columns(frame))


@pytest.mark.parametrize("target", fitting.TARGETS)
def test_staged_program_is_the_whole_program_bit_for_bit(sample_arrays, target):
    """One point and several points at once, for every set of smooth coefficients."""
    base = calibration.default().values_for("all")
    for form in FORMS:
        compiled = compile_outputs((target,), form, "status_quo")
        smooth = [c for c in fitting.candidate_coefficients(target, form) if c not in fitting.step_only(target, form)]
        for free in [tuple(smooth), tuple(smooth[:1])]:
            evaluator = program.Evaluator(compiled, target, sample_arrays, base, free, solve.INPUTS, COEFFICIENTS)
            assert evaluator.stages is not None  # the program splits: this checks the fast path
            points = np.array([[base[n] * (1 + 0.1 * k) for n in free] for k in range(3)])
            whole = [compiled(sample_arrays, {**base, **dict(zip(free, map(float, p)))})[target] for p in points]
            many = evaluator.many(points)
            for k, p in enumerate(points):
                assert np.array_equal(evaluator.at(p).view(np.int64), np.asarray(whole[k], float).view(np.int64))
                assert np.array_equal(many[k].view(np.int64), np.asarray(whole[k], float).view(np.int64))


def test_unstageable_program_is_evaluated_whole(sample_arrays):
    compiled = compile_outputs(("splits",), "default", "status_quo")
    assert program.staged("x = 1\n", ("remainder_regions",)) is None
    base = calibration.default().values_for("all")
    evaluator = program.Evaluator(compiled, "splits", sample_arrays, base, ("remainder_regions",), solve.INPUTS,
                                  COEFFICIENTS, whole=True)
    assert evaluator.stages is None
    expected = compiled(sample_arrays, {**base, "remainder_regions": 70.0})["splits"]
    assert np.array_equal(evaluator.many([[70.0], [70.0]])[1], expected)


def test_batched_jacobian_is_the_one_by_one_jacobian():
    """Columns with zero derivative at the first step are retried with larger steps in both."""
    rows = np.linspace(1.0, 2.0, 7)

    def model(v):  # b moves the value from the second step size on, c from the third, d never
        return v[0] * rows + np.floor(v[1] * 1000) * rows**2 + np.floor(v[2]) * rows + 0.0 * v[3]

    values = np.array([3.0, 2.1234, 0.5, 1.0])
    names = ["a", "b", "c", "d"]
    one = jacobian(model, names, values)
    many = jacobian(model, names, values, many=lambda points: np.stack([model(p) for p in points]))
    assert np.array_equal(one, many)
    assert np.all(one[:, :3] != 0) and not np.any(one[:, 3])


def test_configuration_groups_are_np_unique():
    rng = np.random.default_rng(0)
    for n in (1, 2, 50, 3000):
        for wide in (False, True):
            arrays = {k: np.full(n, 1.0) for k in KEY_COLUMNS}
            for k in KEY_COLUMNS[: (len(KEY_COLUMNS) if wide else 4)]:  # wide: the combined code overflows
                arrays[k] = rng.choice(np.r_[-0.0, 0.0, rng.standard_normal(40 if wide else 3) * 1e12], n)
            _, first, inverse = np.unique(configuration_keys(arrays), axis=0, return_index=True, return_inverse=True)
            found_first, found_inverse = configuration_groups(arrays)
            assert np.array_equal(found_first, first) and np.array_equal(found_inverse, inverse.reshape(-1))


def test_runs_of_few_shapes_group_as_runs_one_by_one():
    """Many runs of few shapes keep a row per shape; their groups are those of the arrays
    spread per run (np.unique of the keys), also after a subset of the runs."""
    from costmodel.fitting.runs import prepare

    rng = np.random.default_rng(2)
    n = 3000
    frame = pd.DataFrame({"platform": rng.choice(["snp", "tdx"], n), "memory_bytes": rng.choice([8, 16, 64], n) * 2**30,
                          "vcpus": rng.choice([2, 4, 32], n), "hugepage_bytes": rng.choice([2**21, 2**30], n),
                          "splits": rng.uniform(1, 100, n), "run_id": [f"r{i}" for i in range(n)]})
    runs = prepare(frame, "splits", None)
    assert runs.shape is not None and len(runs.shape_first) < 40 and len(runs.shape) == n
    per_run = runs.run_arrays()
    assert all(len(v) == n for v in per_run.values() if isinstance(v, np.ndarray) and v.ndim)
    last_five = np.r_[np.zeros(n - 5, dtype=bool), np.ones(5, dtype=bool)]
    for mask in (np.ones(n, dtype=bool), rng.random(n) < 0.3, last_five):
        part = runs.subset(mask)
        keys = configuration_keys({k: (v[mask] if isinstance(v, np.ndarray) and v.shape == (n,) else v)
                                   for k, v in per_run.items()})
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        found_first, found_inverse = part.groups()
        assert np.array_equal(found_first, first) and np.array_equal(found_inverse, inverse.reshape(-1))
        assert np.array_equal(configuration_keys(part.configuration_arrays()), keys[first])


def test_t_quantile_is_scipy_stats():
    stats = pytest.importorskip("scipy.stats")
    for dof, p in itertools.product((1, 2, 7, 126, 10**6, 2.5), (0.5, 0.9, 0.975, 0.995, 1.0, 0.0)):
        assert t_quantile(p, dof) == float(stats.t.ppf(p, dof))
    assert math.isnan(t_quantile(0.975, 0)) and math.isnan(float(stats.t.ppf(0.975, 0)))


def test_bulk_parse_of_text_cells_is_the_cell_by_cell_parse(monkeypatch):
    validate = importlib.import_module("costmodel.data.validate")
    numbers = [repr(float(x)) for x in np.random.default_rng(1).standard_normal(200) * 1e3]
    odd = ["", " ", "\u2003", "\x00", " \x00 ", "1_000", " 12 ", "+3", "1e19", "nan", "-inf"]
    for kind, values in itertools.product(("measure", "text"), (numbers + odd, numbers + odd + ["abc", "\x1c"])):
        series = pd.Series(values + values[:5], dtype=str)
        fast = validate._parse_series(series, kind)
        with monkeypatch.context() as m:
            m.setattr(validate, "_parse_text_cells", lambda *args: False)
            slow = validate._parse_series(series, kind)
        assert np.array_equal(fast[1], slow[1]) and fast[1].any() == (kind == "measure")
        assert all((a is None and b is None) or (a == b and type(a) is type(b)) for a, b in zip(fast[0], slow[0]))


def test_structure_facts_come_back_from_the_cache_unchanged(tmp_path, monkeypatch):
    structure = importlib.import_module("costmodel.fitting.structure")
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path))
    structure.facts.cache_clear()
    try:
        computed = structure.facts("merges")
        assert list((tmp_path / "fit-structure").iterdir())
        structure.facts.cache_clear()
        read = structure.facts("merges")
        assert read == json.loads(json.dumps(computed)) and read["forms"]["default"]["candidates"]
        assert structure._is_linear("merges", frozenset(read["forms"]["default"]["candidates"][:1]), "default",
                                    "status_quo") == structure.is_linear("merges", tuple(read["forms"]["default"]
                                                                                        ["candidates"][:1]))
    finally:
        structure.facts.cache_clear()


def test_forward_differences_are_scipys():
    """The fit's Jacobian callable gives least_squares exactly what its own "2-point" does,
    also where a step would leave the bounds (turned back, or shortened)."""
    from scipy import optimize

    rng = np.random.default_rng(3)
    t = np.linspace(0.0, 3.0, 40)
    y = 2.5 * np.exp(-1.3 * t) + 0.4 + 0.01 * rng.standard_normal(t.size)

    def f(p):
        return p[0] * np.exp(-p[1] * t) + p[2] - y

    def many(points):
        return np.stack([f(p) for p in points])

    cases = [(np.array([1.0, 0.5, 0.0]), (np.zeros(3), np.full(3, np.inf))),
             (np.array([1.0, 0.5, 1.0 - 1e-9]), (np.array([0.0, 0.0, -1.0]), np.array([10.0, 10.0, 1.0]))),
             (np.array([1e-12, 0.5, 0.2]), (np.array([0.0, 0.0, 0.0]), np.array([3e-12, 5.0, 0.5]))),
             (np.array([-2.0, 0.5, 0.0]), (np.full(3, -np.inf), np.full(3, np.inf)))]
    for x0, (lo, hi) in cases:
        jac = lambda x: solve.forward_differences(np.asarray(x, dtype=float), f(x), lo, hi, many)  # noqa: E731
        mine = optimize.least_squares(f, x0, jac=jac, bounds=(lo, hi), method="trf", x_scale="jac", xtol=1e-10,
                                      ftol=1e-10, gtol=1e-10)
        theirs = optimize.least_squares(f, x0, bounds=(lo, hi), method="trf", x_scale="jac", xtol=1e-10, ftol=1e-10,
                                        gtol=1e-10)
        assert mine.x.tobytes() == theirs.x.tobytes() and mine.cost == theirs.cost and mine.nfev == theirs.nfev
        assert mine.jac.tobytes() == theirs.jac.tobytes()
        at = solve.forward_differences(x0.astype(float), f(x0), lo, hi, many)
        assert at.shape == (t.size, 3) and at.flags.f_contiguous


def test_a_frames_digest_is_computed_when_asked_for_and_is_the_frames():
    frame = pd.read_csv(RUNS)
    result = fitting.fit(frame, "splits", alternatives=False)
    assert callable(result.runs_.digest)  # not hashed by the fit itself
    expected = fitting.runs.data_module.frame_sha256(fitting.runs.data_module.validate(frame, "data"))
    frame.loc[1, "splits"] = 1.0  # the caller's frame changing later does not change what was fitted
    assert json.loads(result.to_json())["data_sha256"] == expected == result.runs_.sha256 == result.runs_.digest
