"""Formula cards under every scenario and format agree with the model's own expansion."""

import itertools

import numpy as np
import pytest
import sympy as sp

from costmodel import calibration
from costmodel.model import model_for, scenarios
from costmodel.model.variables import BY_SYMBOL, OUTPUTS, QUANTITIES
from costmodel.reporting import cards


def _substituted(card: cards.Card) -> sp.Expr:
    """The card's target with its ``where`` lines substituted back in, last first."""
    expr = card.definitions[card.target]
    with sp.evaluate(False):  # substitution only, as CostModel.expand does
        for name in reversed(card.where):
            expr = expr.xreplace({QUANTITIES[name].symbol: card.definitions[name]})
    return expr


def _points(expr_a: sp.Expr, expr_b: sp.Expr, n: int = 6) -> list[dict]:
    """Random positive values for every free symbol of both expressions (seeded)."""
    rng = np.random.default_rng(0)
    symbols = sorted(expr_a.free_symbols | expr_b.free_symbols, key=str)
    sizes = {"M": [4 * 2**30, 16 * 2**30, 256 * 2**30], "H": [2 * 2**20, 2**30], "sigma": [0, 1]}
    out = []
    for _ in range(n):
        point = {}
        for sym in symbols:
            name = str(sym)
            if name in sizes:
                point[sym] = sp.Integer(int(rng.choice(sizes[name])))
            elif QUANTITIES[BY_SYMBOL[sym].name].kind == "switch":
                point[sym] = sp.Integer(int(rng.integers(0, 2)))
            else:
                point[sym] = sp.Rational(int(rng.integers(1, 64)) * 4096, 7)
        out.append(point)
    return out


@pytest.mark.parametrize("scenario", list(scenarios.SCENARIOS))
def test_cards_restate_the_models_expansion(scenario):
    cal = calibration.default()
    model = model_for(cal.form)
    overrides = dict(scenarios.get(scenario).overrides)
    for target in OUTPUTS:
        card = cards.Card(target, cal, scenario)
        ours = _substituted(card)
        theirs = model.expand(target, overrides)
        symbols = sorted(ours.free_symbols | theirs.free_symbols, key=str)
        f_ours, f_theirs = (sp.lambdify(symbols, e, modules="numpy") for e in (ours, theirs))
        for point in _points(ours, theirs, 4):
            args = [float(point[s]) for s in symbols]
            assert f_ours(*args) == pytest.approx(f_theirs(*args), rel=1e-9, abs=1e-9), (target, scenario, point)


@pytest.mark.parametrize("scenario, fmt", list(itertools.product(scenarios.SCENARIOS, cards.FORMATS)))
def test_cards_render_in_every_format_without_nested_piecewise(scenario, fmt):
    cal = calibration.default()
    text = cards.card("splits", cal, scenario, fmt)
    content = cards.Card("splits", cal, scenario)
    for name in [content.target, *content.where]:
        definition = content.definitions[name]
        # a Piecewise never holds another Piecewise in a branch value (the doubled binding did)
        for piecewise in definition.atoms(sp.Piecewise):
            assert not any(branch.has(sp.Piecewise) for branch, _ in piecewise.args), (name, definition)
    assert f"scenario {scenario}" in text
    symbol_text = {"text": lambda s: sp.pretty(s, use_unicode=True), "markdown": sp.latex, "latex": sp.latex}[fmt]
    for name in content.where:
        assert symbol_text(QUANTITIES[name].symbol) in text, (name, fmt)


def test_guest_pooling_swiotlb_term_is_a_single_piecewise():
    card = cards.Card("splits", calibration.default(), "guest_pooling")
    h_s = card.definitions["swiotlb_hugepages"]
    (piecewise,) = h_s.atoms(sp.Piecewise)
    assert [str(v) for v, _ in piecewise.args] == ["0", "delta"]
