"""What the symbolic model says about a target before any data is seen.

Which coefficients a target depends on, which of them enter only through a step function
(least squares cannot move those), whether the target is affine in the free coefficients
(then the fit is exact linear least squares), and how deep in the definitions each
coefficient enters. All of it is read from the named definitions of
:mod:`costmodel.model` as a graph, never from the expanded closed form (which repeats every
shared intermediate and runs to millions of operations).

Reading them takes SymPy a second per process (building the forms' definitions), and they
depend only on the code, so :func:`facts` keeps every answer a fit asks for (per target and
scenario: the coefficients, the step-only ones, their depths, linearity for every set of
smooth coefficients, the forms that coincide) in memory and on disk (:mod:`costmodel.cache`,
keyed by the package's source and library versions; a stale entry is never read). A process
that finds them there imports no SymPy for them.
"""

from __future__ import annotations

import itertools
import json
import math
from functools import lru_cache

from costmodel import cache
from costmodel.model.variables import COEFFICIENTS, QUANTITIES

#: Fits are made to the status quo (measurements come from unmodified guests and hosts).
SCENARIO = "status_quo"
#: Most smooth coefficients whose every subset's linearity is kept (2^n answers).
_LINEAR_SUBSETS_MAX = 12


def _sympy():
    import sympy as sp

    return sp


def _steps():
    """Functions whose value changes in steps (or whose arguments only choose a branch)."""
    sp = _sympy()
    return (sp.floor, sp.ceiling)


def _conditions():
    """Conditions (a Symbol is a Boolean in SymPy too, so name the condition types themselves)."""
    sp = _sympy()
    return (sp.core.relational.Relational, sp.logic.boolalg.BooleanFunction, sp.logic.boolalg.BooleanAtom)


def _forms() -> tuple[str, ...]:
    from costmodel.model import FORMS

    return tuple(FORMS)


@lru_cache(maxsize=8)
def _definitions(form: str, scenario: str) -> dict:
    from costmodel.model import model_for, scenarios

    return model_for(form).definitions_under(dict(scenarios.get(scenario).overrides))


def _name(sym) -> str:
    from costmodel.model.variables import BY_SYMBOL  # made with SymPy: only on the symbolic path

    return BY_SYMBOL[sym].name


def _dependencies(target: str, form: str, scenario: str) -> frozenset[str]:
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


def _candidates(target: str, form: str, scenario: str) -> tuple[str, ...]:
    used = _dependencies(target, form, scenario)
    return tuple(c for c in COEFFICIENTS if c in used)


def _smooth_symbols(expr, steps: tuple, conditions: tuple) -> set:
    """Symbols ``expr`` depends on outside step functions and branch conditions."""
    sp = _sympy()
    if isinstance(expr, sp.Symbol):
        return {expr}
    if isinstance(expr, steps):
        return set()
    if type(expr).__name__ == "Where":  # the condition only chooses a branch
        return _smooth_symbols(expr.args[1], steps, conditions) | _smooth_symbols(expr.args[2], steps, conditions)
    out: set = set()
    for arg in expr.args:
        if isinstance(arg, sp.Basic) and not isinstance(arg, conditions):
            out |= _smooth_symbols(arg, steps, conditions)
    return out


def _step_only(target: str, form: str, scenario: str) -> tuple[str, ...]:
    definitions = _definitions(form, scenario)
    steps, conditions = _steps(), _conditions()
    smooth: set[str] = set()
    stack = [target]
    while stack:
        for sym in _smooth_symbols(definitions[stack.pop()], steps, conditions):
            name = _name(sym)
            if name not in smooth:
                smooth.add(name)
                if name in definitions:
                    stack.append(name)
    return tuple(c for c in _candidates(target, form, scenario) if c not in smooth)


def _degree(expr, free: frozenset[str], definitions: dict, memo: dict) -> float:
    """Polynomial degree of ``expr`` in the ``free`` coefficients (∞ when not polynomial)."""
    sp = _sympy()
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


def _is_linear(target: str, free: frozenset, form: str, scenario: str) -> bool:
    definitions = _definitions(form, scenario)
    return _degree(QUANTITIES[target].symbol, free, definitions, {}) <= 1


def _same_expression_forms(target: str, scenario: str) -> dict[str, str]:
    sp = _sympy()
    seen: dict[tuple, str] = {}
    out = {}
    for form in _forms():
        definitions = _definitions(form, scenario)
        key = tuple(sorted((n, sp.srepr(definitions[n])) for n in _dependencies(target, form, scenario)
                           if n in definitions))
        out[form] = seen.setdefault(key, form)
    return out


def _depth(target: str, form: str) -> dict[str, int]:
    from costmodel.model import model_for

    model = model_for(form)
    depth, frontier, seen = {}, [target], {target}
    level = 0
    while frontier:
        level += 1
        following = []
        for name in frontier:
            for sym in model.definitions[name].free_symbols:
                other = _name(sym)
                if other in seen:
                    continue
                seen.add(other)
                if other in model.definitions:
                    following.append(other)
                elif QUANTITIES[other].kind == "coefficient":
                    depth[other] = level
        frontier = following
    return dict(sorted(depth.items()))


# --- the facts a fit asks for, cached -----------------------------------------------------------
def _linear_key(free) -> str:
    return ",".join(sorted(free))


def _compute(target: str, scenario: str) -> dict:
    """Every answer the functions below give for ``target`` (from SymPy)."""
    forms = {}
    for form in _forms():
        candidates = _candidates(target, form, scenario)
        steps = _step_only(target, form, scenario)
        smooth = [c for c in candidates if c not in steps]
        linear = {}
        if len(smooth) <= _LINEAR_SUBSETS_MAX:
            for size in range(1, len(smooth) + 1):
                for subset in itertools.combinations(smooth, size):
                    linear[_linear_key(subset)] = _is_linear(target, frozenset(subset), form, scenario)
        forms[form] = {"dependencies": sorted(_dependencies(target, form, scenario)), "candidates": list(candidates),
                       "step_only": list(steps), "depth": _depth(target, form), "linear": linear}
    return {"forms": forms, "same": _same_expression_forms(target, scenario)}


@lru_cache(maxsize=64)
def facts(target: str, scenario: str = SCENARIO) -> dict:
    """What the symbolic model says about ``target``, from the cache when it is there."""
    if target not in QUANTITIES:
        raise KeyError(target)
    entry = cache.key("fit-structure", target, scenario)
    text = cache.read("fit-structure", entry)
    if text is not None:
        try:
            found = json.loads(text)
            if isinstance(found, dict) and set(found.get("forms", {})) == set(found.get("same", {})):
                return found
        except ValueError:  # a damaged entry is recomputed, never trusted
            pass
    found = _compute(target, scenario)
    cache.write("fit-structure", entry, json.dumps(found, sort_keys=True))
    return found


def _form_facts(target: str, form: str, scenario: str) -> dict | None:
    return facts(target, scenario)["forms"].get(form)


def dependencies(target: str, form: str = "default", scenario: str = SCENARIO) -> frozenset[str]:
    """Every named quantity ``target``'s definition uses, directly or through others."""
    found = _form_facts(target, form, scenario)
    return frozenset(found["dependencies"]) if found else _dependencies(target, form, scenario)


def candidate_coefficients(target: str, form: str = "default", scenario: str = SCENARIO) -> tuple[str, ...]:
    """Coefficients the closed form of ``target`` depends on, in registry order."""
    found = _form_facts(target, form, scenario)
    return tuple(found["candidates"]) if found else _candidates(target, form, scenario)


def step_only(target: str, form: str = "default", scenario: str = SCENARIO) -> tuple[str, ...]:
    """Coefficients that reach ``target`` only through ⌈·⌉, ⌊·⌋ or a branch condition.

    Least squares cannot move them (their derivative is zero almost everywhere), so a fit
    holds them and says so.
    """
    found = _form_facts(target, form, scenario)
    return tuple(found["step_only"]) if found else _step_only(target, form, scenario)


@lru_cache(maxsize=256)
def is_linear(target: str, free: tuple[str, ...], form: str = "default", scenario: str = SCENARIO) -> bool:
    """Whether ``target`` is affine in the ``free`` coefficients, read from the definitions:
    a polynomial of degree ≤ 1 in them, with no min, max, step or branch on the way."""
    found = _form_facts(target, form, scenario)
    key = _linear_key(set(free))
    if found and key in found["linear"]:
        return bool(found["linear"][key])
    return _is_linear(target, frozenset(free), form, scenario)


def same_expression_forms(target: str, scenario: str = SCENARIO) -> dict[str, str]:
    """Form → first form with the same definitions of everything ``target`` uses."""
    return dict(facts(target, scenario)["same"])


def depth(target: str, form: str) -> dict[str, int]:
    """How many definitions away from ``target`` each coefficient enters.

    When coefficients are collinear on the data, the one closest to the target is kept
    free (for ``split_merge_cycles``: the cycle costs, not the page counts that ``splits``
    and ``merges`` determine better).
    """
    found = _form_facts(target, form, SCENARIO)
    return {k: int(v) for k, v in found["depth"].items()} if found else _depth(target, form)
