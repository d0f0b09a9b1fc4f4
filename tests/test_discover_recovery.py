"""costmodel discover finds planted formulas (issue 13's bars), and says so when it cannot.

Cases are generated here, seeded: 1–4 inputs on grids of powers of two, 5 repeats per
point, multiplicative noise 0–5 %, 1–3 terms drawn from the whole hypothesis space (every
exponent, log powers 0–2, products over up to all inputs, an input with different
exponents in different terms) with or without a constant, plus domain-shaped cases.
Coefficients make every term worth 20–100 % of the others at the grid's centre (a term
the data cannot see cannot be recovered). "Far" is 4× and 16× the largest measured value
of every input.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.discover import discover, from_frame
from costmodel.discover.space import EXPONENTS, Factor, Term

#: Grid values per input (powers of two from 2), by number of inputs.
VALUES = {1: 9, 2: 6, 3: 5, 4: 4}
REPEATS = 5
FAR = (4, 16)


def planted(seed: int, noise: float, inputs: int | None = None, log_powers=(0, 0, 1, 2)):
    """A random formula from the hypothesis space and seeded measurements of it."""
    rng = np.random.default_rng(seed)
    d = inputs or int(rng.integers(1, 5))
    count = int(rng.integers(1, 4))
    terms: list[Term] = []
    while len(terms) < count:
        chosen = sorted(rng.choice(d, int(rng.integers(1, d + 1)), replace=False))
        factors = []
        for j in chosen:
            while True:
                shape = (EXPONENTS[int(rng.integers(0, len(EXPONENTS)))], int(rng.choice(log_powers)))
                if shape != (0, 0):
                    break
            factors.append(Factor(int(j), *shape))
        term = Term(tuple(factors))
        if term not in terms:
            terms.append(term)
    if rng.random() < 0.5:
        terms.append(Term(()))
    values = 2.0 ** np.arange(1, VALUES[d] + 1)
    centre = np.full((1, d), np.sqrt(values[0] * values[-1]))
    coefficients = [rng.uniform(0.2, 1.0) * 100 / t.values(centre)[0] for t in terms]
    return measure(terms, coefficients, values, d, noise, rng)


def measure(terms, coefficients, values, d, noise, rng):
    x = np.repeat(np.array(list(itertools.product(*[values] * d)), dtype=float), REPEATS, axis=0)

    def truth(points):
        return sum(c * t.values(points) for c, t in zip(coefficients, terms))

    y = truth(x) * (1 + noise * rng.standard_normal(len(x)))
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(d)])
    frame["y"] = y
    return terms, truth, from_frame(frame, "y"), values


def far_points(values, d):
    return [{f"x{j}": f * values[-1] for j in range(d)} for f in FAR]


def check(seed: int, noise: float, inputs: int | None = None):
    """Discover the planted formula; return (recovered, model, truth at the far points)."""
    terms, truth, measurements, values = planted(seed, noise, inputs)
    d = len(measurements.inputs)
    model = discover(measurements, at=far_points(values, d))
    recovered = set(model.terms) == set(terms)
    exact = [float(truth(np.array([[p[f"x{j}"] for j in range(d)]]))[0]) for p in far_points(values, d)]
    return recovered, model, exact


def assert_accurate(model, exact):
    """Within 2 % at 4× and 16×; the truth inside the 95 % prediction interval at 4×."""
    for p, value in zip(model.predictions, exact):
        assert abs(p.value / value - 1) <= 0.02, (model.formula("text"), p.value, value)
    four = model.predictions[0]
    assert four.pi_low <= exact[0] <= four.pi_high, (model.formula("text"), four, exact[0])
    assert all(p.extrapolation == list(model.inputs) for p in model.predictions)


@settings(max_examples=8)
@given(seed=st.integers(0, 10**6), inputs=st.integers(1, 3))
def test_noise_free_planted_formulas_are_recovered_exactly(seed, inputs):
    recovered, model, exact = check(seed, 0.0, inputs)
    assert recovered, model.formula("text")
    assert_accurate(model, exact)


def test_noise_free_four_inputs_are_recovered_exactly():
    recovered, model, exact = check(11, 0.0, 4)
    assert recovered, model.formula("text")
    assert_accurate(model, exact)


@settings(max_examples=8)
@given(seed=st.integers(0, 10**6), inputs=st.integers(1, 3), noise=st.floats(0.005, 0.05))
def test_noisy_planted_formulas_where_recovered_extrapolate_within_two_percent(seed, inputs, noise):
    recovered, model, exact = check(seed, noise, inputs)
    if recovered:
        assert_accurate(model, exact)


def test_most_noisy_planted_formulas_are_recovered():
    """Seeded suite, noise spread over 0.5–5 %: most recovered (7 of these 12 when written:
    the misses are near-collinear shapes such as x^(3/4) for x^(1/2)·log2(x), which 9 noisy
    values cannot tell apart), and every recovered one accurate far out."""
    cases = [(seed, 0.005 + 0.045 * k / 11, 1 + seed % 3) for k, seed in enumerate(range(100, 112))]
    recovered = 0
    for seed, noise, inputs in cases:
        ok, model, exact = check(seed, noise, inputs)
        if ok:
            recovered += 1
            assert_accurate(model, exact)
    assert recovered >= 7, recovered


def _domain(kind: str, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.repeat(np.arange(3.0, 60.0, 4.0), REPEATS)
    if kind == "ceil":
        truth = lambda v: 7 + 3 * np.ceil(v / 5)  # noqa: E731
    else:
        truth = lambda v: 10 + 3 * np.minimum(v, 31)  # noqa: E731
    frame = pd.DataFrame({"x": x, "y": truth(x) * (1 + noise * rng.standard_normal(len(x)))})
    return truth, discover(from_frame(frame, "y"), at=[{"x": 4 * x.max()}, {"x": 16 * x.max()}])


def test_a_ceiling_is_recovered_with_its_divisor():
    for noise in (0.0, 0.01):
        truth, model = _domain("ceil", noise)
        kinds = sorted(getattr(t, "kind", "pmnf") for t in model.terms)
        assert kinds == ["ceil", "pmnf"], model.formula("text")
        ceiling = next(t for t in model.terms if getattr(t, "kind", "") == "ceil")
        assert ceiling.interval[0] <= 5 < ceiling.interval[1]
        assert ceiling.threshold == 5
        for p in model.predictions:
            assert abs(p.value / truth(p.at["x"]) - 1) <= 0.02


def test_a_clamp_with_its_threshold_inside_the_range_is_recovered():
    for noise in (0.0, 0.02):
        truth, model = _domain("min", noise)
        clamp = next((t for t in model.terms if getattr(t, "kind", "") == "min"), None)
        assert clamp is not None, model.formula("text")
        assert abs(clamp.threshold - 31) <= (1e-6 if noise == 0 else 1.5)
        threshold = next(c for c in model.coefficients if c.name.startswith("t"))
        assert threshold.ci_low <= 31 <= threshold.ci_high
        for p in model.predictions:
            assert abs(p.value / truth(p.at["x"]) - 1) <= 0.02
            assert p.pi_low <= truth(p.at["x"]) <= p.pi_high


def _shared_exponent_fit(x, y, far):
    """The best formula of Extra-P's multi-parameter form, where each input has one shape
    shared by every term: c0 + c1·f(p) + c2·g(q) + c3·f(p)·g(q), any subset of the terms,
    f and g from the same shapes (chosen by relative residual, as that tool does)."""
    from costmodel.discover.space import FACTOR_SHAPES

    best = (np.inf, None)
    weights = 1 / y
    for sp_, sq in itertools.product(FACTOR_SHAPES, FACTOR_SHAPES):
        f, g = Factor(0, *sp_).values(x), Factor(1, *sq).values(x)
        ff, gf = Factor(0, *sp_).values(far), Factor(1, *sq).values(far)
        full = np.column_stack([np.ones(len(x)), f, g, f * g])
        full_far = np.column_stack([np.ones(len(far)), ff, gf, ff * gf])
        for subset in ([0, 1, 2, 3], [0, 1, 3], [0, 2, 3], [1, 2, 3], [0, 3], [1, 3], [2, 3], [3]):
            a = full[:, subset] * weights[:, None]
            c, *_ = np.linalg.lstsq(a, np.ones(len(x)), rcond=None)
            rss = float(np.sum((a @ c - 1) ** 2))
            if rss < best[0]:
                best = (rss, full_far[:, subset] @ c)
    return best[1]


def test_a_shape_one_shared_exponent_per_input_gets_wrong_is_recovered():
    """p appears as p³ in one term and as p·q in another: a formula with one shape per input
    shared by all terms cannot say that and misses far out (by about 55 % here); discover
    recovers it and is within 2 %."""
    rng = np.random.default_rng(7)
    values = 2.0 ** np.arange(1, 7)
    x = np.repeat(np.array(list(itertools.product(values, values)), dtype=float), REPEATS, axis=0)
    p3 = Term((Factor(0, Fraction(3), 0),))
    pq = Term((Factor(0, Fraction(1), 0), Factor(1, Fraction(1), 0)))
    truth = lambda v: p3.values(v) + 30 * pq.values(v)  # noqa: E731
    y = truth(x) * (1 + 0.02 * rng.standard_normal(len(x)))
    far = np.array([[f * values[-1]] * 2 for f in FAR])
    shared = _shared_exponent_fit(x, y, far)
    assert np.max(np.abs(shared / truth(far) - 1)) > 0.3  # the shared-exponent form misses
    frame = pd.DataFrame({"p": x[:, 0], "q": x[:, 1], "t": y})
    model = discover(from_frame(frame, "t"), at=[{"p": v[0], "q": v[1]} for v in far])
    for p, exact in zip(model.predictions, truth(far)):
        assert abs(p.value / exact - 1) <= 0.02, model.formula("text")
    assert {p3, pq} <= set(model.terms), model.formula("text")


def test_pure_noise_around_a_constant_gives_a_constant():
    rng = np.random.default_rng(3)
    values = 2.0 ** np.arange(1, 7)
    x = np.repeat(np.array(list(itertools.product(values, values)), dtype=float), REPEATS, axis=0)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": 100 * (1 + 0.05 * rng.standard_normal(len(x)))})
    model = discover(from_frame(frame, "y"))
    assert model.terms == (Term(()),), model.formula("text")
    assert not any("misses" in w for w in model.warnings)


def test_a_formula_outside_the_space_gets_a_poor_score_and_a_warning():
    rng = np.random.default_rng(5)
    x = np.repeat(np.arange(1.0, 41.0, 3.0), REPEATS)
    frame = pd.DataFrame({"x": x, "y": np.exp(x / 6) * (1 + 0.01 * rng.standard_normal(len(x)))})
    model = discover(from_frame(frame, "y"), at=[{"x": 160}])
    assert model.cv_error > 3 * model.noise
    assert any("outside the hypothesis space" in w for w in model.warnings), model.warnings
    assert any(w.startswith("extrapolation:") for w in model.warnings)
