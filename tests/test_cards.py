"""Formula cards under every scenario and format: what they show, and what they must not."""

import itertools

import pytest
import sympy as sp

from costmodel import calibration
from costmodel.model import model_for, scenarios
from costmodel.model.variables import OUTPUTS, QUANTITIES
from costmodel.reporting import cards


@pytest.mark.parametrize("scenario", list(scenarios.SCENARIOS))
def test_cards_show_the_models_definitions(scenario):
    """Every line of a card is the model's own definition under the scenario (no copy that
    could drift), and every coefficient the target depends on is in its table."""
    cal = calibration.default()
    model = model_for(cal.form)
    definitions = model.definitions_under(dict(scenarios.get(scenario).overrides))
    for target in OUTPUTS:
        card = cards.Card(target, cal, scenario)
        lines = {str(sym): expr for sym, expr, _ in card.equations(False) if sym is not None}
        for name in [target, *[n for n in card.where if not cards._family_member(n)]]:
            assert lines[str(QUANTITIES[name].symbol)] == definitions[name], (target, name)
        used = set().union(*(definitions[n].free_symbols for n in [target, *card.where]))
        wanted = {q for q, v in QUANTITIES.items() if v.kind == "coefficient" and v.symbol in used}
        assert wanted <= set(card.coefficients), (target, wanted - set(card.coefficients))


@pytest.mark.parametrize("scenario, fmt", list(itertools.product(scenarios.SCENARIOS, cards.FORMATS)))
def test_cards_render_in_every_format_without_nested_piecewise(scenario, fmt):
    cal = calibration.default()
    text = cards.card("splits", cal, scenario, fmt)
    content = cards.Card("splits", cal, scenario)
    for symbol, definition, _ in content.equations(False):
        if symbol is None:
            continue
        for piecewise in definition.atoms(sp.Piecewise):  # a branch never holds another Piecewise
            assert not any(branch.has(sp.Piecewise) for branch, _ in piecewise.args), (symbol, definition)
    assert f"scenario {scenario}" in text
    assert "NUMA node i" in text and "clusters of shared memory" in text
    latex_symbol = {"text": None, "markdown": sp.latex, "latex": sp.latex}[fmt]
    if latex_symbol:
        assert latex_symbol(QUANTITIES["swiotlb_bytes"].symbol) in text


def test_guest_pooling_aligns_the_swiotlb():
    card = cards.Card("splits", calibration.default(), "guest_pooling")
    last = next(expr for sym, expr, _ in card.equations(False) if sym == QUANTITIES["last_page_swiotlb"].symbol)
    assert "2097152" in str(last) and "chi" not in str(last)  # the pooling switch is bound, not shown
