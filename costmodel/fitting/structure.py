"""What the symbolic model says about a target before any data is seen.

Which coefficients a target depends on, which of them enter only through a step function
(least squares cannot move those), whether the target is affine in the free coefficients
(then the fit is exact linear least squares), and how deep in the definitions each
coefficient enters. All of it is read from the named definitions of
:mod:`costmodel.model` as a graph, never from the expanded closed form (which repeats every
shared intermediate and runs to millions of operations).
"""

from __future__ import annotations

import math
from functools import lru_cache

import sympy as sp

from costmodel.model import FORMS, model_for, scenarios
from costmodel.model.variables import BY_SYMBOL, COEFFICIENTS, QUANTITIES

#: Fits are made to the status quo (measurements come from unmodified guests and hosts).
SCENARIO = "status_quo"
#: Functions whose value changes in steps (or whose arguments only choose a branch).
_STEPS = (sp.floor, sp.ceiling)
#: Conditions (a Symbol is a Boolean in SymPy too, so name the condition types themselves).
_CONDITIONS = (sp.core.relational.Relational, sp.logic.boolalg.BooleanFunction, sp.logic.boolalg.BooleanAtom)


@lru_cache(maxsize=8)
def _definitions(form: str, scenario: str) -> dict[str, sp.Expr]:
    return model_for(form).definitions_under(dict(scenarios.get(scenario).overrides))


def _name(sym: sp.Symbol) -> str:
    return BY_SYMBOL[sym].name


@lru_cache(maxsize=64)
def dependencies(target: str, form: str = "default", scenario: str = SCENARIO) -> frozenset[str]:
    """Every named quantity ``target``'s definition uses, directly or through others."""
    definitions = _definitions(form, scenario)
    seen: set[str] = set()
    stack = [target]
    while stack:
        for sym in definitions[stack.pop()].free_symbols:
            name = _name(sym)
            if name not in seen:
                seen.add(name)
                if name in definitions:
                    stack.append(name)
    return frozenset(seen)


@lru_cache(maxsize=64)
def candidate_coefficients(target: str, form: str = "default", scenario: str = SCENARIO) -> tuple[str, ...]:
    """Coefficients the closed form of ``target`` depends on, in registry order."""
    used = dependencies(target, form, scenario)
    return tuple(c for c in COEFFICIENTS if c in used)


def _smooth_symbols(expr: sp.Expr) -> set[sp.Symbol]:
    """Symbols ``expr`` depends on outside step functions and branch conditions."""
    if isinstance(expr, sp.Symbol):
        return {expr}
    if isinstance(expr, _STEPS):
        return set()
    if type(expr).__name__ == "Where":  # the condition only chooses a branch
        return _smooth_symbols(expr.args[1]) | _smooth_symbols(expr.args[2])
    out: set[sp.Symbol] = set()
    for arg in expr.args:
        if isinstance(arg, sp.Basic) and not isinstance(arg, _CONDITIONS):
            out |= _smooth_symbols(arg)
    return out


@lru_cache(maxsize=64)
def step_only(target: str, form: str = "default", scenario: str = SCENARIO) -> tuple[str, ...]:
    """Coefficients that reach ``target`` only through ⌈·⌉, ⌊·⌋ or a branch condition.

    Least squares cannot move them (their derivative is zero almost everywhere), so a fit
    holds them and says so.
    """
    definitions = _definitions(form, scenario)
    smooth: set[str] = set()
    stack = [target]
    while stack:
        for sym in _smooth_symbols(definitions[stack.pop()]):
            name = _name(sym)
            if name not in smooth:
                smooth.add(name)
                if name in definitions:
                    stack.append(name)
    return tuple(c for c in candidate_coefficients(target, form, scenario) if c not in smooth)


def _degree(expr: sp.Expr, free: frozenset[str], definitions: dict, memo: dict) -> float:
    """Polynomial degree of ``expr`` in the ``free`` coefficients (∞ when not polynomial)."""
    if isinstance(expr, sp.Symbol):
        name = _name(expr)
        if name in free:
            return 1
        if name in definitions:
            if name not in memo:
                memo[name] = _degree(definitions[name], free, definitions, memo)
            return memo[name]
        return 0
    if expr.is_number:
        return 0
    if isinstance(expr, sp.Add):
        return max(_degree(a, free, definitions, memo) for a in expr.args)
    if isinstance(expr, sp.Mul):
        return sum(_degree(a, free, definitions, memo) for a in expr.args)
    if isinstance(expr, sp.Pow):
        base = _degree(expr.args[0], free, definitions, memo)
        exponent = expr.args[1]
        if _degree(exponent, free, definitions, memo):
            return math.inf
        if base == 0:
            return 0
        return base * int(exponent) if exponent.is_Integer and exponent >= 0 else math.inf
    if any(_degree(a, free, definitions, memo) for a in expr.args if isinstance(a, sp.Basic)):
        return math.inf  # Min, Max, ⌊·⌋, a branch or the union of a free coefficient
    return 0


@lru_cache(maxsize=256)
def is_linear(target: str, free: tuple[str, ...], form: str = "default", scenario: str = SCENARIO) -> bool:
    """Whether ``target`` is affine in the ``free`` coefficients, read from the definitions:
    a polynomial of degree ≤ 1 in them, with no min, max, step or branch on the way."""
    definitions = _definitions(form, scenario)
    return _degree(QUANTITIES[target].symbol, frozenset(free), definitions, {}) <= 1


@lru_cache(maxsize=64)
def same_expression_forms(target: str, scenario: str = SCENARIO) -> dict[str, str]:
    """Form → first form with the same definitions of everything ``target`` uses."""
    seen: dict[tuple, str] = {}
    out = {}
    for form in FORMS:
        definitions = _definitions(form, scenario)
        key = tuple(sorted((n, sp.srepr(definitions[n])) for n in dependencies(target, form, scenario)
                           if n in definitions))
        out[form] = seen.setdefault(key, form)
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
    free (for ``split_merge_cycles``: the cycle costs, not the page counts that ``splits``
    and ``merges`` determine better).
    """
    return dict(_depth_items(target, form))
