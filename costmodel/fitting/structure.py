"""What the symbolic model says about a target before any data is seen.

Which coefficients a target's closed form depends on, which of them enter only through a
step function (least squares cannot move those), whether the target is affine in the free
coefficients (then the fit is exact linear least squares), which model forms give the same
closed form, and how deep in the definitions each coefficient enters.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from costmodel.model import FORMS, model_for, scenarios
from costmodel.model.variables import BY_SYMBOL, COEFFICIENTS, QUANTITIES, symbol

#: Fits are made to the status quo (measurements come from unmodified guests and hosts).
SCENARIO = "status_quo"


@lru_cache(maxsize=64)
def expression(form: str, target: str, scenario: str = SCENARIO) -> sp.Expr:
    """The closed form of ``target`` in inputs and coefficients."""
    return model_for(form).expand(target, dict(scenarios.get(scenario).overrides))


@lru_cache(maxsize=64)
def candidate_coefficients(target: str, form: str = "default", scenario: str = SCENARIO) -> tuple[str, ...]:
    """Coefficients the closed form of ``target`` depends on, in registry order."""
    free = expression(form, target, scenario).free_symbols
    return tuple(c for c in COEFFICIENTS if symbol(c) in free)


@lru_cache(maxsize=64)
def step_only(target: str, form: str = "default", scenario: str = SCENARIO) -> tuple[str, ...]:
    """Coefficients that enter ``target`` only inside ⌈·⌉ or ⌊·⌋ (piecewise constant).

    Least squares cannot move them (their derivative is zero almost everywhere), so a fit
    holds them and says so.
    """
    expr = expression(form, target, scenario)
    found = []
    for name in candidate_coefficients(target, form, scenario):
        sym = symbol(name)
        steps = {a: sp.Dummy() for a in expr.atoms(sp.ceiling, sp.floor) if sym in a.free_symbols}
        if steps and sym not in expr.xreplace(steps).free_symbols:
            found.append(name)
    return tuple(found)


@lru_cache(maxsize=256)
def is_linear(target: str, free: tuple[str, ...], form: str = "default", scenario: str = SCENARIO) -> bool:
    """Whether ``target`` is affine in the ``free`` coefficients (checked with SymPy).

    True when every first derivative with respect to a free coefficient is free of all
    free coefficients and of unevaluated derivatives (step functions, kinks).
    """
    expr = expression(form, target, scenario)
    symbols = {symbol(n) for n in free}
    for name in free:
        derivative = sp.diff(expr, symbol(name))
        if derivative.has(sp.Derivative) or derivative.free_symbols & symbols:
            return False
    return True


@lru_cache(maxsize=64)
def same_expression_forms(target: str, scenario: str = SCENARIO) -> dict[str, str]:
    """Form → first form with an identical closed form of ``target``."""
    seen: dict[sp.Expr, str] = {}
    out = {}
    for form in FORMS:
        expr = expression(form, target, scenario)
        out[form] = seen.setdefault(expr, form)
    return out


@lru_cache(maxsize=64)
def _depth_items(target: str, form: str) -> tuple:
    model = model_for(form)
    depth, frontier, seen = {}, [target], {target}
    level = 0
    while frontier:
        level += 1
        following = []
        for name in frontier:
            for sym in model.definitions[name].free_symbols:
                other = BY_SYMBOL[sym].name
                if other in seen:
                    continue
                seen.add(other)
                if other in model.definitions:
                    following.append(other)
                elif QUANTITIES[other].kind == "coefficient":
                    depth[other] = level
        frontier = following
    return tuple(sorted(depth.items()))


def depth(target: str, form: str) -> dict[str, int]:
    """How many definitions away from ``target`` each coefficient enters.

    When coefficients are collinear on the data, the one closest to the target is kept
    free (for ``split_merge_cycles``: the cycle costs, not the region counts that
    ``splits`` and ``merges`` determine better).
    """
    return dict(_depth_items(target, form))
