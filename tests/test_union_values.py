"""The union's value (costmodel/model/union_values.py) against a count of hugepages by sets,
its cache against a fresh computation, and the fit's two stages against the whole program
when the free coefficients move the clusters' ranges (the union then runs in the free stage)."""

import importlib

import numpy as np
import pytest

from costmodel import calibration, fitting
from costmodel.compiled import compile_outputs, configurations
from costmodel.fitting import program, solve
from costmodel.fitting.runs import shape_columns
from costmodel.model import FORMS
from costmodel.model import union_values as uv
from costmodel.model.variables import COEFFICIENTS
from costmodel.samples import DIRECTORY as SAMPLES


def _random_clusters(rng, rows: int, contiguous: int, spread: int) -> list:
    args = []
    for j in range(contiguous + spread):
        first = rng.integers(-2, 30, rows).astype(float)
        last = first + rng.integers(-3, 12, rows)
        weight = rng.choice([0.0, 1.0], rows) if j < contiguous else rng.uniform(-0.2, 1.3, rows)
        args += [float(first[0]) if rng.random() < 0.2 else first, last, weight]
    return args


def _by_sets(contiguous: int, args: list, row: int) -> list[float]:
    """The rule of costmodel/model/union.py, one row, with Python sets of hugepage indices."""
    def at(a):
        return float(np.broadcast_to(a, np.shape(args[1]))[row])

    clusters = [(at(args[3 * j]), at(args[3 * j + 1]), at(args[3 * j + 2])) for j in range(len(args) // 3)]
    pages = [set(range(int(lo), int(hi) + 1)) for lo, hi, _ in clusters]
    out = [0.0] * len(clusters)
    taken: set = set()
    present = [j for j in range(contiguous) if clusters[j][2] > 0 and clusters[j][1] >= clusters[j][0]]
    for j in sorted(present, key=lambda j: clusters[j][0]):  # address order (stable)
        out[j] = float(len(pages[j] - taken))
        taken |= pages[j]
    for j in range(contiguous, len(clusters)):
        density = min(max(clusters[j][2], 0.0), 1.0)
        share = density * len(pages[j] - taken)
        for i in range(contiguous, j):
            share -= density * min(max(clusters[i][2], 0.0), 1.0) * len((pages[j] & pages[i]) - taken)
        out[j] = max(0.0, share)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_union_counts_each_hugepage_once(seed):
    rng = np.random.default_rng(seed)
    contiguous, spread, rows = int(rng.integers(0, 6)), int(rng.integers(0, 4)), 20
    args = _random_clusters(rng, rows, contiguous, spread)
    value = uv._union(contiguous, tuple(args))
    for row in range(rows):
        assert np.allclose(value[row], _by_sets(contiguous, args, row), rtol=1e-12, atol=1e-12), row


def test_cached_coverage_gives_the_fresh_value_bit_for_bit():
    """New densities on the same ranges reuse the coverage; the values are a fresh computation's."""
    rng = np.random.default_rng(7)
    contiguous, spread = 5, 3
    args = _random_clusters(rng, 40, contiguous, spread)
    uv.new_pages(0, contiguous, *args)
    for _ in range(3):
        moved = list(args)
        for j in range(contiguous, contiguous + spread):
            moved[3 * j + 2] = rng.uniform(-0.2, 1.3, 40)
        fresh = uv._union(contiguous, tuple(moved))
        for j in range(contiguous + spread):
            assert np.array_equal(uv.new_pages(j, contiguous, *moved), fresh[..., j])
    wider = [np.tile(a, 2) if isinstance(a, np.ndarray) else a for a in args]  # another shape: not the cached one
    assert uv.new_pages(contiguous, contiguous, *wider).shape == (80,)


@pytest.fixture(scope="module")
def sample_arrays():
    frame = importlib.import_module("costmodel.data").load(SAMPLES / "synthetic-runs.csv")
    return configurations(shape_columns(frame))


@pytest.mark.parametrize("target", ["splits", "conversion_ops"])
def test_staged_program_with_moving_ranges_is_the_whole_program(sample_arrays, target):
    """Every candidate coefficient free (step-only ones too: the ranges move), and the densities alone."""
    base = calibration.default().values_for("all")
    for form in FORMS:
        compiled = compile_outputs((target,), form, "status_quo")
        candidates = tuple(fitting.candidate_coefficients(target, form))
        densities = tuple(n for n in candidates if n in ("remainder_regions", "transient_regions"))
        for free in (candidates, densities):
            evaluator = program.Evaluator(compiled, target, sample_arrays, base, free, solve.INPUTS, COEFFICIENTS)
            assert evaluator.stages is not None
            points = np.array([[base[n] * (1 + 0.37 * k) for n in free] for k in range(3)])
            many = evaluator.many(points)
            for k, p in enumerate(points):
                whole = np.asarray(compiled(sample_arrays, {**base, **dict(zip(free, map(float, p)))})[target], float)
                assert np.array_equal(evaluator.at(p).view(np.int64), whole.view(np.int64)), (form, free, k)
                assert np.array_equal(many[k].view(np.int64), whole.view(np.int64)), (form, free, k)


def test_contiguous_union_call_moves_to_the_fixed_stage():
    source = ("def f(a, b, d):\n    x = new_pages(0, 1, a, b, a, a, b, d)\n    y = new_pages(1, 1, a, b, a, a, b, d)\n"
              "    z = x + y * numpy.floor(a / b)\n    return (z,)\n")
    _, handed = program._split(source, ("d",))
    assert "x" in handed and "y" not in handed  # x reads no density; y does
    assert any(n.startswith("_fixed_") for n in handed)  # numpy.floor(a / b), computed once


def test_conditional_and_local_parts_stay_in_the_free_stage():
    source = ("def f(a, d):\n    x = (numpy.sqrt(a) if d > 0 else a) + [numpy.sqrt(a) * v for v in (d,)][0]\n"
              "    return (x,)\n")
    _, handed = program._split(source, ("d",))
    assert handed == ("a",)  # nothing hoisted out of the conditional or the comprehension
    stages = program.staged(source, ("d",), {"numpy": np})
    assert stages.moving(*stages.fixed(4.0, 1.0), 1.0) == (4.0,)
