"""Fit the model's free coefficients to measured runs, with intervals a design review accepts.

For one measured target (``splits``, ``merges``, ``conversion_ops``, ``conversion_cycles``,
``split_merge_cycles``) and one model form, :func:`fit`:

1. takes the coefficients the target's closed form depends on under the status quo
   (:meth:`costmodel.model.CostModel.coefficients`), minus those the data cannot determine:
   coefficients that enter only through a step function (⌈u·N/H⌉), coefficients that change
   no prediction on these runs, and coefficients collinear with others (rank of the
   Jacobian, column-scaled). Those are *held* at the starting calibration's values and named
   in the warnings. More free coefficients than distinct configurations is refused;
2. solves a target that is linear in its free coefficients (checked with SymPy) exactly, as
   bounded linear least squares (``scipy.optimize.lsq_linear``); any other by bounded
   nonlinear least squares (``scipy.optimize.least_squares``, trust-region reflective), with
   the coefficient bounds of :mod:`costmodel.model.variables` (counts and cycles non-negative);
3. weights runs by their expected size (``errors="relative"``: the noise is a fraction of
   the value, as for counts and cycles that span orders of magnitude), by iteratively
   reweighted least squares, or not at all (``errors="absolute"``);
4. reports standard errors from the Jacobian and the residual variance, 95 % confidence
   intervals (t distribution), 95 % prediction intervals for new configurations (delta
   method plus residual variance), R², RMSE, leave-one-out RMSE, AIC and BIC, and how the
   other model forms of :data:`costmodel.model.FORMS` fit the same data.

:func:`annotate` adds prediction intervals and an extrapolation flag to frames evaluated with
a fitted calibration (what ``costmodel predict`` and the reports show).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import sympy as sp
from scipy import optimize, stats

from costmodel import parse
from costmodel import __version__, calibration as calibration_module, data as data_module
from costmodel.model import scenarios
from costmodel.evaluate import compile_outputs, configurations
from costmodel.model import FORMS, model_for
from costmodel.errors import InputError, closest
from costmodel.model.variables import BY_SYMBOL, COEFFICIENTS, QUANTITIES, symbol

#: Targets a fit can be made to (the measured columns of the dataset).
TARGETS = data_module.TARGETS
#: Noise models: ``relative`` (noise proportional to the value) or ``absolute``.
ERRORS = ("relative", "absolute")
#: Confidence level of every interval.
LEVEL = 0.95
#: Inputs whose fitted range is recorded for extrapolation checks.
RANGE_INPUTS = ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "platform", "swiotlb_bytes")
#: Inputs a user may fill in for runs where they are unknown (``--assume vcpus=16``).
ASSUMABLE = ("vcpus", "virtqueues", "swiotlb_bytes")
#: Nonlinear fits of at most this many runs get leave-one-out by refitting (else first order).
LOO_EXACT_MAX = 40
#: Relative singular value below which a (column-scaled) Jacobian is rank deficient.
RANK_TOLERANCE = 1e-7
#: Relative standard error above which a fitted coefficient is called poorly determined.
POORLY_DETERMINED = 1.0
#: Support for a model given its ΔAIC (Burnham & Anderson, Model Selection and Multimodel
#: Inference, 2nd ed. 2002, §2.6: ≤ 2 substantial, 4–7 considerably less, > 10 essentially none).
_SUPPORT = ((2.0, "substantial support for both"), (4.0, "some support for the other"),
            (7.0, "considerably less support for the other"), (10.0, "little support for the other"),
            (math.inf, "essentially no support for the other"))

_SCENARIO = "status_quo"


# --- symbolic facts about a target ---------------------------------------------------------------


@lru_cache(maxsize=64)
def _expression(form: str, target: str, scenario: str = _SCENARIO) -> sp.Expr:
    return model_for(form).expand(target, dict(scenarios.get(scenario).overrides))


@lru_cache(maxsize=64)
def candidate_coefficients(target: str, form: str = "default", scenario: str = _SCENARIO) -> tuple[str, ...]:
    """Coefficients the closed form of ``target`` depends on, in registry order."""
    free = _expression(form, target, scenario).free_symbols
    return tuple(c for c in COEFFICIENTS if symbol(c) in free)


@lru_cache(maxsize=64)
def step_only(target: str, form: str = "default", scenario: str = _SCENARIO) -> tuple[str, ...]:
    """Coefficients that enter ``target`` only inside ⌈·⌉ or ⌊·⌋ (piecewise constant).

    Least squares cannot move them (their derivative is zero almost everywhere), so a fit
    holds them and says so.
    """
    expr = _expression(form, target, scenario)
    found = []
    for name in candidate_coefficients(target, form, scenario):
        sym = symbol(name)
        steps = {a: sp.Dummy() for a in expr.atoms(sp.ceiling, sp.floor) if sym in a.free_symbols}
        if steps and sym not in expr.xreplace(steps).free_symbols:
            found.append(name)
    return tuple(found)


@lru_cache(maxsize=256)
def is_linear(target: str, free: tuple[str, ...], form: str = "default", scenario: str = _SCENARIO) -> bool:
    """Whether ``target`` is affine in the ``free`` coefficients (checked with SymPy).

    True when every first derivative with respect to a free coefficient is free of all
    free coefficients and of unevaluated derivatives (step functions, kinks).
    """
    expr = _expression(form, target, scenario)
    symbols = {symbol(n) for n in free}
    for name in free:
        derivative = sp.diff(expr, symbol(name))
        if derivative.has(sp.Derivative) or derivative.free_symbols & symbols:
            return False
    return True


@lru_cache(maxsize=64)
def _same_expression_forms(target: str, scenario: str = _SCENARIO) -> dict[str, str]:
    """Form → first form with an identical closed form of ``target``."""
    seen: dict[sp.Expr, str] = {}
    out = {}
    for form in FORMS:
        expr = _expression(form, target, scenario)
        out[form] = seen.setdefault(expr, form)
    return out


# --- data preparation -----------------------------------------------------------------------------


@dataclass
class _Runs:
    """The runs used for one target: arrays for the model and where each came from."""

    where: str
    sha256: str
    frame: pd.DataFrame  # the used rows (validated)
    arrays: dict
    y: np.ndarray
    places: list[str]
    notes: list[str]
    assumed: dict
    n_configurations: int

    def place(self, i: int) -> str:
        return self.places[i]


def _load(data_source) -> tuple[pd.DataFrame, str, str]:
    if isinstance(data_source, pd.DataFrame):
        frame = data_module.validate(data_source, "data")
        return frame, "data", data_module.frame_sha256(frame)
    path = Path(data_source)
    frame = data_module.load(path)
    return frame, str(path), data_module.sha256(path)


def _parse_assume(assume: Mapping | None) -> dict:
    out = {}
    for name, value in (assume or {}).items():
        if name not in ASSUMABLE:
            raise InputError("--assume", name, "one of " + ", ".join(closest(name, ASSUMABLE, len(ASSUMABLE))))
        parse_one = parse.size if name == "swiotlb_bytes" else parse.count
        out[name] = parse_one(value, f"--assume {name}")
    return out


def _prepare(data_source, target: str, assume: Mapping | None) -> _Runs:
    if target not in TARGETS:
        raise InputError("--target", target, "one of " + ", ".join(closest(target, TARGETS, len(TARGETS))))
    assume = _parse_assume(assume)
    frame, where, digest = _load(data_source)
    place_kind = "line" if frame.index.name == "line" else "row"
    if target not in frame:
        raise data_module.DataError(where, data_module._Said(f"no column {target!r} (columns: {', '.join(frame.columns)})"),
                                    f"a column of measured {target}")
    used = frame[frame[target].notna()].copy()
    notes = []
    skipped = len(frame) - len(used)
    if skipped:
        notes.append(f"{skipped} of {len(frame)} runs have no {target} value and are not used")
    for name, value in assume.items():
        if name in used:
            unknown = used[name].isna()
            if unknown.any():
                notes.append(f"{name} assumed {value} for {int(unknown.sum())} runs where it is unknown (--assume)")
            used[name] = used[name].astype("Float64").fillna(value)
        else:
            used[name] = value
            notes.append(f"{name} assumed {value} for every run (--assume)")
    if used["vcpus"].isna().any():
        label = used.index[used["vcpus"].isna().to_numpy()][0]
        raise data_module.DataError(
            f"{where}, {place_kind} {label}, column vcpus", data_module._Said("an empty cell (unknown)"),
            "a known vCPU count for every run used in the fit (or an explicit assumption: --assume vcpus=16)")
    if len(used) == 0:
        raise data_module.DataError(where, data_module._Said(f"no run with a {target} value"), f"runs with measured {target}")
    if len(used) < 2:
        raise data_module.DataError(where, data_module._Said(f"1 run with a {target} value"),
                                    "at least 2 runs, and more runs than coefficients to fit")
    columns = {c: used[c] for c in ("memory_bytes", "vcpus", "hugepage_bytes", "platform")}
    for optional in ("virtqueues", "swiotlb_bytes"):
        if optional in used:
            columns[optional] = used[optional].astype("Float64").astype(float).to_numpy()
    columns["vcpus"] = used["vcpus"].astype("Float64").astype(float).to_numpy()
    columns["platform"] = used["platform"].astype(str).to_numpy()
    arrays = configurations(columns)
    keys = np.column_stack([arrays[k] for k in ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes",
                                                "is_snp", "swiotlb_override")])
    n_configurations = len(np.unique(keys, axis=0))
    places = [f"{where}, {place_kind} {label}" for label in used.index]
    return _Runs(where, digest, used, arrays, used[target].to_numpy(dtype=float), places, notes, assume,
                 n_configurations)


def _input_ranges(runs: _Runs) -> dict:
    a = runs.arrays
    swiotlb = compile_outputs(("swiotlb_bytes",), "default", _SCENARIO)(a, calibration_module.assumed().values)["swiotlb_bytes"]
    ranges = {}
    for name, values in (("memory_bytes", a["memory_bytes"]), ("vcpus", a["vcpus"]), ("virtqueues", a["virtqueues"]),
                         ("swiotlb_bytes", swiotlb)):
        ranges[name] = [int(np.min(values)), int(np.max(values))]
    ranges["hugepage_bytes"] = sorted({int(v) for v in a["hugepage_bytes"]})
    ranges["platform"] = sorted({str(v) for v in a["platform"]})
    return ranges


# --- the numerical core -------------------------------------------------------------------------


@dataclass
class _Solution:
    form: str
    free: list[str]
    held: dict  # name -> reason
    values: dict  # every coefficient
    fitted: np.ndarray
    weights: np.ndarray
    jacobian: np.ndarray  # d fitted / d value, unweighted, free order
    linear: bool
    rows: np.ndarray  # boolean mask of the runs used
    warnings: list[str]
    nfev: int = 0
    #: free coefficients the solution put on a bound (no interval: treated as exact)
    at_bound: list = field(default_factory=list)
    #: held coefficients with a known covariance (fitted earlier), and d fitted / d them
    uncertain_held: list = field(default_factory=list)
    held_jacobian: np.ndarray | None = None
    held_covariance: np.ndarray | None = None
    #: for small nonlinear fits: each run's prediction from a refit without it
    loo_prediction: np.ndarray | None = None


def _known_uncertainty(cal: calibration_module.Calibration) -> tuple[list[str], np.ndarray]:
    """Coefficients the calibration carries a covariance for (earlier fits), with it."""
    names: list[str] = []
    blocks: list[tuple[list[str], np.ndarray]] = []
    for info in (cal.extra or {}).get("fits", {}).values():
        free = list(info.get("free", []))
        covariance = np.asarray(info.get("covariance", []), dtype=float)
        if free and covariance.shape == (len(free), len(free)):
            blocks.append((free, covariance))
            names += [n for n in free if n not in names]
    names += [n for n in COEFFICIENTS if n in cal.stderr and n not in names]
    matrix = np.zeros((len(names), len(names)))
    for n in names:
        if n in cal.stderr and cal.stderr[n] is not None:
            matrix[names.index(n), names.index(n)] = float(cal.stderr[n]) ** 2
    for free, covariance in blocks:  # later fits win where they overlap
        index = [names.index(n) for n in free]
        matrix[np.ix_(index, index)] = covariance
    return names, matrix


class _Problem:
    """One target, one form, one set of runs: the model as a function of free values.

    The model is evaluated once per *distinct* configuration and gathered back to the runs,
    so replicated runs cost nothing extra (100,000 runs of 100 shapes evaluate 100 rows).
    """

    def __init__(self, runs: _Runs, target: str, form: str, base: dict):
        self.runs, self.target, self.form = runs, target, form
        self.compiled = compile_outputs((target,), form, _SCENARIO)
        self.base = dict(base)
        keys = np.column_stack([runs.arrays[k] for k in _KEY])
        _, first, self.inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        self.inverse = self.inverse.reshape(-1)
        self.unique = {k: (v[first] if isinstance(v, np.ndarray) and v.shape == (len(runs.y),) else v)
                       for k, v in runs.arrays.items()}
        self.nfev = 0

    def distinct(self, free: Sequence[str], values: np.ndarray) -> np.ndarray:
        """The target at each distinct configuration."""
        self.nfev += 1
        coefficients = {**self.base, **dict(zip(free, map(float, values)))}
        return np.asarray(self.compiled(self.unique, coefficients)[self.target], dtype=float)

    def model(self, free: Sequence[str], values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        distinct = self.distinct(free, values)
        return distinct[self.inverse if rows is None else self.inverse[rows]]

    def jacobian(self, free: Sequence[str], values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Central differences, step relative to each value (or its typical size).

        A column that comes out exactly zero is retried with larger steps, so a coefficient
        at 0 (an additive count) is not mistaken for one without effect.
        """
        values = np.asarray(values, dtype=float)
        columns = []
        for j, name in enumerate(free):
            base_step = 1e-6 * max(abs(values[j]), _scale(name, values[j]))
            for factor in (1.0, 1e3, 1e6):
                step = base_step * factor
                up, down = values.copy(), values.copy()
                up[j] += step
                down[j] -= step
                column = (self.model(free, up, rows) - self.model(free, down, rows)) / (2 * step)
                if np.any(column != 0):
                    break
            columns.append(column)
        n = len(self.inverse) if rows is None else int(np.count_nonzero(rows))
        return np.column_stack(columns) if columns else np.zeros((n, 0))


_KEY = ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "is_snp", "swiotlb_override")


def _scale(name: str, value: float) -> float:
    default = QUANTITIES[name].default or 0.0
    return abs(value) if value else (abs(default) if default else 1.0)


def _bounds(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    lower = np.array([QUANTITIES[n].bounds[0] for n in names], dtype=float)
    upper = np.array([QUANTITIES[n].bounds[1] for n in names], dtype=float)
    return lower, upper


def _inside(values: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    span = np.where(np.isfinite(upper), upper - lower, np.abs(values) + 1.0)
    return np.clip(values, lower + 1e-6 * span, np.where(np.isfinite(upper), upper - 1e-6 * span, np.inf))


def _independent(jw: np.ndarray, names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Greedy in registry order: keep a coefficient when it raises the Jacobian's rank."""
    norms = np.linalg.norm(jw, axis=0)
    safe = np.where((norms > 0) & np.isfinite(norms), norms, 1.0)
    r_factor = np.linalg.qr(np.nan_to_num(jw / safe), mode="r")  # one QR; each trial is a small SVD
    kept, dropped = [], {}
    for j, name in enumerate(names):
        if not np.any(jw[:, j]) or not np.isfinite(norms[j]):  # exact: finite differences of an unused input
            dropped[name] = "changes no prediction on these runs"
            continue
        trial = kept + [name]
        columns = r_factor[:, [names.index(k) for k in trial]]  # same singular values as jw's columns
        singular = np.linalg.svd(columns, compute_uv=False)
        if singular[-1] < RANK_TOLERANCE * singular[0]:
            basis = r_factor[:, [names.index(k) for k in kept]]
            coef, *_ = np.linalg.lstsq(basis, columns[:, -1], rcond=None)
            partners = [kept[i] for i in np.argsort(-np.abs(coef)) if abs(coef[i]) > 1e-3][:3]
            dropped[name] = "collinear with " + ", ".join(partners) + " on these runs"
        else:
            kept.append(name)
    return kept, dropped


def _initial_weights(y: np.ndarray, f0: np.ndarray, errors: str, inverse: np.ndarray) -> np.ndarray:
    """Per-run noise scale: 1 (absolute), or the configuration's mean value (relative).

    Constant within a configuration, so that replicated runs can be pooled exactly.
    """
    if errors == "absolute":
        return np.ones_like(y)
    counts = np.bincount(inverse)
    mean = (np.bincount(inverse, weights=y) / np.maximum(counts, 1))[inverse]
    w = np.where(mean > 0, mean, f0)
    floor = 1e-9 * max(float(np.max(np.abs(y))), 1.0)
    return np.maximum(w, floor)


def _solve(problem: _Problem, free: list[str], start: np.ndarray, weights: np.ndarray, rows: np.ndarray,
           linear: bool, starts: int) -> np.ndarray:
    """Weighted least squares with fixed weights; returns the free values.

    Runs of one configuration share the model value and the weight, so they are pooled:
    Σ over runs of ((f − y)/w)² equals Σ over configurations of n·((f − ȳ)/w)² plus a
    constant, and the minimiser is the same.
    """
    groups, member = np.unique(problem.inverse[rows], return_inverse=True)
    member = member.reshape(-1)
    counts = np.bincount(member)
    mean = np.bincount(member, weights=problem.runs.y[rows]) / counts
    w = (np.bincount(member, weights=weights[rows]) / counts) / np.sqrt(counts)
    lower, upper = _bounds(free)
    scale = np.array([_scale(n, v) for n, v in zip(free, start)])

    def model(values):
        return problem.distinct(free, values)[groups]

    if linear:
        f0 = model(np.zeros(len(free)))
        design = np.column_stack([model(np.eye(len(free))[j]) - f0 for j in range(len(free))])
        a = design * scale / w[:, None]
        b = (mean - f0) / w
        result = optimize.lsq_linear(a, b, bounds=(lower / scale, upper / scale), method="bvls", tol=1e-12)
        return result.x * scale, result.active_mask != 0

    def residuals(x):
        return (model(x * scale) - mean) / w

    lo, hi = lower / scale, upper / scale
    candidates = [_inside(start, lower, upper) / scale]
    if starts > 1:
        wide = ~np.isfinite(upper) | (upper > 100 * np.maximum(lower, 1e-300))
        x0 = candidates[0]
        for factor, quantile in ((0.5, 0.25), (2.0, 0.75)):
            alt = np.where(wide, x0 * factor, (lower + quantile * (upper - lower)) / scale)
            candidates.append(_inside(alt * scale, lower, upper) / scale)
    best = None
    for x0 in candidates[:starts]:
        result = optimize.least_squares(residuals, x0, bounds=(lo, hi), method="trf", x_scale="jac",
                                        xtol=1e-10, ftol=1e-10, gtol=1e-10, max_nfev=60 * (len(free) + 1))
        if best is None or result.cost < best.cost * (1 - 1e-9):
            best = result
    return best.x * scale, best.active_mask != 0


def _reweighted(problem: _Problem, free: list[str], values: np.ndarray, rows: np.ndarray, linear: bool,
                errors: str, starts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve; with relative errors re-solve with weights = fitted values until they settle."""
    y = problem.runs.y
    weights = _initial_weights(y, problem.model(free, values), errors, problem.inverse)
    for outer in range(12):
        values, active = _solve(problem, free, values, weights, rows, linear, starts if outer == 0 else 1)
        if errors == "absolute":
            break
        fitted = problem.model(free, values)
        new = _initial_weights(np.where(fitted > 0, fitted, y), fitted, errors, problem.inverse)
        settled = np.max(np.abs(new[rows] / weights[rows] - 1.0)) < 1e-6
        weights = new
        if settled:
            break
    return values, active, weights


def _leave_one_out(problem: _Problem, free: list[str], values: np.ndarray, rows: np.ndarray,
                   errors: str) -> np.ndarray:
    """Each used run's prediction from a refit without it (NaN for runs not used)."""
    prediction = np.full(len(problem.runs.y), np.nan)
    for i in np.flatnonzero(rows):
        without = rows.copy()
        without[i] = False
        refit, _, _ = _reweighted(problem, free, values.copy(), without, False, errors, 1)
        prediction[i] = problem.model(free, refit)[i]
    return prediction


def _fit_form(runs: _Runs, target: str, form: str, base: dict, hold: Mapping[str, str] | Sequence[str], errors: str,
              starts: int = 3, known: tuple[list[str], np.ndarray] = ([], np.zeros((0, 0))),
              loo: str = "auto") -> _Solution:
    """Choose the free coefficients, solve, re-check identifiability at the solution."""
    problem = _Problem(runs, target, form, base)
    candidates = list(candidate_coefficients(target, form))
    warnings: list[str] = []
    held: dict[str, str] = {}
    for name in candidates:
        if name in hold:
            held[name] = hold[name] if isinstance(hold, Mapping) else "held on request (--hold)"
    if candidates and all(n in held for n in candidates):
        raise InputError("--hold", ", ".join(candidates),
                         f"at least one coefficient of {target} left free (every one is held: nothing to fit)")
    for name in step_only(target, form):
        if name not in held:
            held[name] = ("enters only through a step function (⌈·⌉), which least squares cannot move; "
                          "a fit cannot determine it")
    depth = _depth(target, form)
    free = sorted((n for n in candidates if n not in held), key=lambda n: (depth.get(n, 99), COEFFICIENTS.index(n)))
    lower, upper = _bounds(free)
    start = _inside(np.array([base[n] for n in free], dtype=float), lower, upper)

    f0 = problem.model(free, start)
    rows = np.ones(len(runs.y), dtype=bool)
    jac0 = problem.jacobian(free, start)
    structural = (f0 == 0) & np.all(jac0 == 0, axis=1) if free else (f0 == 0)
    if structural.any():
        zero_measured = structural & (runs.y == 0)
        if zero_measured.any():
            rows &= ~zero_measured
            warnings.append(f"{int(zero_measured.sum())} runs where the model gives 0 {target} whatever the "
                            f"coefficients (e.g. 4 KiB pages) and 0 was measured: consistent, not used in the fit")
        odd = structural & (runs.y > 0)
        if odd.any():
            first = int(np.flatnonzero(odd)[0])
            warnings.append(f"{int(odd.sum())} runs measured {target} > 0 where the model gives 0 whatever the "
                            f"coefficients (first: {runs.place(first)}); they stay in the fit as misfit")
    weights = _initial_weights(runs.y, f0, errors, problem.inverse)

    def check(values_free: np.ndarray, names: list[str], when: str) -> list[str]:
        if not names:
            return names
        jac = problem.jacobian(names, values_free)[rows]
        scale = np.array([_scale(n, v) for n, v in zip(names, values_free)])
        kept, dropped = _independent(jac * scale / weights[rows][:, None], names)
        for name, reason in dropped.items():
            held[name] = f"{reason} ({when}); held at the starting calibration's value"
        return kept

    n_configurations = len(np.unique(np.column_stack([
        runs.arrays[k][rows] for k in ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "is_snp", "swiotlb_override")]),
        axis=0))
    acting = [n for j, n in enumerate(free) if np.any(jac0[rows][:, j])]
    if len(acting) > n_configurations:  # refuse before the rank check would quietly hold most of them
        free = acting
        raise data_module.DataError(
            runs.where, data_module._Said(f"{n_configurations} distinct configurations for {len(free)} coefficients"),
            f"at least as many distinct VM shapes as coefficients to fit ({', '.join(free)}); measure more shapes "
            f"(see docs/fitting.md) or hold some with --hold NAME")
    free = check(start, free, "at the starting values")
    if not free:
        raise data_module.DataError(
            runs.where, data_module._Said(f"runs that determine no coefficient of {target} ({_held_text(held)})"),
            "runs that vary the inputs the coefficients act on (see docs/fitting.md)")
    n_used = int(rows.sum())
    if n_used <= len(free):
        raise data_module.DataError(
            runs.where, data_module._Said(f"{n_used} runs for {len(free)} coefficients ({', '.join(free)})"),
            "more runs than coefficients (at least one degree of freedom for the residual variance)")

    values = np.array([base[n] for n in free], dtype=float)
    for _ in range(4):  # re-check identifiability at the solution; hold and refit if it changed
        linear = is_linear(target, tuple(free), form)
        values = _inside(np.array([base[n] for n in free], dtype=float), *_bounds(free))
        values, active, weights = _reweighted(problem, free, values, rows, linear, errors, starts)
        kept = check(values, free, "at the fitted values")
        if kept == free:
            break
        free = kept
        if not free:
            raise data_module.DataError(runs.where, data_module._Said(f"runs that determine no coefficient of {target}"),
                                        "runs that vary the inputs the coefficients act on (see docs/fitting.md)")
    order = sorted(range(len(free)), key=lambda j: COEFFICIENTS.index(free[j]))
    free, values, active = [free[j] for j in order], values[order], active[order]
    fitted = problem.model(free, values)
    jacobian = problem.jacobian(free, values)
    all_values = {**base, **dict(zip(free, map(float, values)))}
    solution = _Solution(form, free, held, all_values, fitted, weights, jacobian, linear, rows, warnings, problem.nfev,
                         at_bound=[n for n, a in zip(free, active) if a])
    if not linear and (loo == "exact" or (loo == "auto" and int(rows.sum()) <= LOO_EXACT_MAX)):
        solution.loo_prediction = _leave_one_out(problem, free, values, rows, errors)
    names, matrix = known
    uncertain = [n for n in held if n in names and matrix[names.index(n), names.index(n)] > 0]
    if uncertain:  # their uncertainty carries over into the coefficients fitted here
        problem.base = dict(all_values)
        solution.uncertain_held = uncertain
        solution.held_jacobian = problem.jacobian(uncertain, np.array([all_values[n] for n in uncertain]))
        index = [names.index(n) for n in uncertain]
        solution.held_covariance = matrix[np.ix_(index, index)]
    return solution


@lru_cache(maxsize=64)
def _depth_cached(target: str, form: str) -> tuple:
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


def _depth(target: str, form: str) -> dict[str, int]:
    """How many definitions away from ``target`` each coefficient enters.

    When coefficients are collinear on the data, the one closest to the target is kept
    free (for ``split_merge_cycles``: the cycle costs, not the region counts that
    ``splits`` and ``merges`` determine better).
    """
    return dict(_depth_cached(target, form))


def _held_text(held: dict) -> str:
    return "; ".join(f"{n}: {r}" for n, r in held.items()) or "none"


# --- statistics ----------------------------------------------------------------------------------


@dataclass
class _Statistics:
    covariance: np.ndarray
    stderr: np.ndarray
    residual_scale: float
    dof: int
    metrics: dict
    leverage: np.ndarray
    bound_spread: dict  # standard error before coefficients on a bound were fixed there
    bound_partners: dict  # coefficient on a bound → [(correlated coefficient, correlation)]


def _statistics(solution: _Solution, y_all: np.ndarray, errors: str, target: str) -> _Statistics:
    rows = solution.rows
    y, f, w = y_all[rows], solution.fitted[rows], solution.weights[rows]
    jac = solution.jacobian[rows]
    n, p = len(y), len(solution.free)
    dof = n - p
    rw = (y - f) / w
    rss = float(np.sum(rw**2))
    s2 = rss / dof
    def covariance_of(interior):
        scale = np.array([_scale(solution.free[j], solution.values[solution.free[j]]) for j in interior])
        q, r = np.linalg.qr(jac[:, interior] * scale / w[:, None])
        r_inv = np.linalg.pinv(r)
        return scale, q, r_inv, s2 * (r_inv @ r_inv.T) * np.outer(scale, scale)

    # a coefficient the solver left within a thousandth of a standard error of a bound is on it
    _, _, _, first = covariance_of(list(range(p)))
    for j, name in enumerate(solution.free):
        low, high = QUANTITIES[name].bounds
        value, spread = solution.values[name], math.sqrt(max(first[j, j], 0.0))
        if min(value - low, high - value) <= 1e-3 * spread and name not in solution.at_bound:
            solution.at_bound.append(name)
    interior = [j for j, name in enumerate(solution.free) if name not in solution.at_bound]
    bound_spread = {name: math.sqrt(max(first[j, j], 0.0)) for j, name in enumerate(solution.free)
                    if name in solution.at_bound}
    spreads = np.sqrt(np.clip(np.diag(first), 1e-300, None))
    correlation = first / np.outer(spreads, spreads)
    bound_partners = {name: [(solution.free[k], float(correlation[j, k])) for k in interior
                             if abs(correlation[j, k]) > 0.5]
                      for j, name in enumerate(solution.free) if name in solution.at_bound}
    scale, q, r_inv, covariance = covariance_of(interior)
    if solution.held_jacobian is not None:
        # two-step estimator: d(fitted coefficients)/d(held) = −(JᵀWJ)⁻¹JᵀW·J_held; add its
        # contribution of the held coefficients' covariance (from the fits that set them)
        sensitivity = r_inv @ q.T @ (solution.held_jacobian[rows] / w[:, None])
        sensitivity *= scale[:, None]
        covariance = covariance + sensitivity @ solution.held_covariance @ sensitivity.T
    full = np.zeros((p, p))  # coefficients on a bound: no variance (treated as exact)
    full[np.ix_(interior, interior)] = covariance
    covariance = full
    stderr = np.sqrt(np.clip(np.diag(covariance), 0, None))
    leverage = np.clip(np.sum(q**2, axis=1), 0.0, 1.0)
    residual = y - f
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        loo = np.where(leverage < 1 - 1e-10, rw / (1 - leverage), np.inf) * w
    if solution.loo_prediction is not None:
        loo = y - solution.loo_prediction[rows]
    loglik = -0.5 * n * (math.log(2 * math.pi * max(rss, 1e-300) / n) + 1) - float(np.sum(np.log(w)))
    k = p + 1  # the coefficients and the residual scale
    metrics = {
        "r2": (1 - float(np.sum(residual**2)) / ss_tot) if ss_tot > 0 else None,
        "rmse": float(math.sqrt(np.mean(residual**2))),
        "rmse_relative": float(math.sqrt(np.mean((residual / np.where(y != 0, y, np.nan)) ** 2))) if np.all(y != 0) else None,
        "loo_rmse": float(math.sqrt(np.mean(loo**2))) if np.all(np.isfinite(loo)) else None,
        "loo_method": ("exact (hat matrix)" if solution.linear else
                       f"exact ({n} refits)" if solution.loo_prediction is not None else
                       "first-order (hat matrix of the Jacobian)"),
        "aic": 2 * k - 2 * loglik,
        "aicc": (2 * k - 2 * loglik + 2 * k * (k + 1) / (n - k - 1)) if n - k - 1 > 0 else None,
        "bic": k * math.log(n) - 2 * loglik,
        "residual_scale": math.sqrt(s2),
        "residual_scale_unit": "fraction of the value" if errors == "relative" else QUANTITIES[target].unit,
        "dof": dof,
        "n_rows": n,
    }
    return _Statistics(covariance, stderr, math.sqrt(s2), dof, metrics, leverage, bound_spread, bound_partners)


# --- the result ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e6:
        text = f"{value:.{digits}g}"
    else:
        text = f"{value:.{digits - 1}e}"
    return text


@dataclass
class FitResult:
    """What :func:`fit` found: coefficients with intervals, goodness of fit, alternatives.

    Fitted attributes end in ``_``. :meth:`to_dict` is the ``costmodel fit --json`` object,
    :meth:`to_calibration` the calibration ``predict``, ``formula`` and reports accept.
    """

    target: str
    form: str
    errors: str
    level: float
    coefficients_: dict
    stderr_: dict
    ci_low_: dict
    ci_high_: dict
    held_: dict
    free_: list
    covariance_: np.ndarray
    residual_scale_: float
    dof_: int
    n_rows_: int
    n_configurations_: int
    metrics_: dict
    alternatives_: dict
    warnings_: list
    method_: str
    input_ranges_: dict
    data_: str
    data_sha256_: str
    assumed_: dict
    calibration_: calibration_module.Calibration = field(repr=False)
    fitted_: np.ndarray = field(repr=False)
    measured_: np.ndarray = field(repr=False)
    places_: list = field(repr=False, default_factory=list)
    runs_: pd.DataFrame | None = field(repr=False, default=None)

    # --- exports ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The ``--json`` object (sorted keys when dumped; every number finite or null)."""
        coefficients = {}
        for name in self.free_:
            coefficients[name] = {"value": self.coefficients_[name], "stderr": self.stderr_[name],
                                  "ci_low": self.ci_low_[name], "ci_high": self.ci_high_[name],
                                  "unit": QUANTITIES[name].unit, "origin": "fitted"}
        held = {name: {"value": self.calibration_.values[name], "unit": QUANTITIES[name].unit, "origin": "held",
                       "reason": reason} for name, reason in self.held_.items()}
        return _finite({
            "target": self.target, "model": self.form, "scenario": _SCENARIO, "errors": self.errors,
            "level": self.level, "method": self.method_, "model_version": __version__,
            "data": self.data_, "data_sha256": self.data_sha256_, "n_rows": self.n_rows_,
            "n_configurations": self.n_configurations_, "assumed_inputs": self.assumed_,
            "coefficients": coefficients, "held": held, "metrics": self.metrics_,
            "alternatives": self.alternatives_, "warnings": list(self.warnings_),
            "input_ranges": self.input_ranges_,
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def fit_info(self) -> dict:
        """What prediction intervals and extrapolation checks need (``extra["fit"]``)."""
        return _finite({
            "target": self.target, "form": self.form, "scenario": _SCENARIO, "errors": self.errors,
            "level": self.level, "free": list(self.free_),
            "values": {n: self.coefficients_[n] for n in self.free_},
            "covariance": [[float(v) for v in row] for row in self.covariance_],
            "residual_scale": self.residual_scale_, "dof": self.dof_, "input_ranges": self.input_ranges_,
            "data": self.data_, "data_sha256": self.data_sha256_, "n_rows": self.n_rows_,
            "held": sorted(self.held_), "model_version": __version__,
            "metrics": {k: self.metrics_[k] for k in ("r2", "rmse", "loo_rmse", "aic", "bic")},
        })

    def to_calibration(self) -> calibration_module.Calibration:
        """A calibration with the fitted values and intervals, the rest from the starting one.

        Coefficients fitted here have origin ``fitted`` (with stderr and interval); those
        the target depends on but the data could not determine have origin ``held``.
        Earlier fits in the starting calibration (same model form) are kept in
        ``extra["fits"]``, so fitting targets one after another accumulates them.
        """
        base = self.calibration_
        same_form = base.form == self.form
        values = {**base.values, **self.coefficients_}
        origin = {**base.origin} if same_form else {c: base.origin.get(c, "assumed") for c in COEFFICIENTS}
        stderr, low, high = (dict(t) if same_form else {} for t in (base.stderr, base.ci_low, base.ci_high))
        for name in self.held_:
            if origin.get(name) != "fitted":
                origin[name] = "held"
        for name in self.free_:
            origin[name] = "fitted"
            for table in (stderr, low, high):
                table.pop(name, None)
            if self.stderr_[name] is not None:
                stderr[name] = self.stderr_[name]
            low[name], high[name] = self.ci_low_[name], self.ci_high_[name]
        info = self.fit_info()
        extra = dict(base.extra) if same_form else {}
        fits = dict(extra.get("fits", {}))
        fits[self.target] = info
        extra["fits"] = dict(sorted(fits.items()))
        extra["fit"] = info
        provenance = {
            "method": f"fitted to measured {self.target} ({self.method_.split(' (')[0]}, {self.errors} errors)",
            "target": self.target, "form": self.form, "data": self.data_, "data_sha256": self.data_sha256_,
            "model_version": __version__, "n_rows": self.n_rows_, "errors": self.errors,
            "level": self.level, "assumed_inputs": self.assumed_,
            "starting_calibration": base.provenance.get("method", ""),
            "targets_fitted": sorted(fits),
        }
        return calibration_module.Calibration(values, self.form, origin, stderr, low, high, provenance, extra)

    def predict(self, configs, scenario: str = _SCENARIO, outputs: Sequence[str] | None = None) -> pd.DataFrame:
        """Evaluate with the fitted calibration and add the prediction interval and extrapolation."""
        from costmodel.evaluate import evaluate

        cal = self.to_calibration()
        names = list(outputs) if outputs is not None else [self.target]
        if self.target not in names:
            names.append(self.target)
        return annotate(evaluate(configs, cal, scenario=scenario, outputs=names), cal)

    def to_frame(self) -> pd.DataFrame:
        """The fitted runs: inputs, measured ``<target>``, ``<target>_predicted``, the 95 %
        prediction interval, the residual and the extrapolation flag (empty: inside).

        What :func:`costmodel.reporting.plots.predicted_vs_measured` and
        :func:`costmodel.reporting.plots.residuals` draw.
        """
        runs = self.runs_
        inputs = [c for c in ("platform", "memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "swiotlb_bytes")
                  if c in runs]
        configs = {c: (runs[c].astype("Float64").astype(float).to_numpy() if c != "platform"
                       else runs[c].astype(str).to_numpy()) for c in inputs}
        for name, value in self.assumed_.items():
            if name in configs:
                configs[name] = np.where(np.isnan(configs[name]), float(value), configs[name])
            else:
                configs[name] = np.full(len(runs), float(value))
        predicted = self.predict(configs)
        out = runs[inputs].copy()
        out[self.target] = self.measured_
        out[f"{self.target}_predicted"] = predicted[self.target].to_numpy()
        for suffix in ("_pi_low", "_pi_high"):
            out[self.target + suffix] = predicted[self.target + suffix].to_numpy()
        out["residual"] = out[self.target] - out[f"{self.target}_predicted"]
        out["extrapolation"] = predicted["extrapolation"].to_numpy()
        return out

    def plot(self, ax=None):
        """Measured against predicted with prediction intervals (returns the axes)."""
        from costmodel.reporting import plots
        return plots.predicted_vs_measured(self.to_frame(), self.target, ax=ax)

    # --- reading --------------------------------------------------------------------------
    def coefficient_table(self) -> pd.DataFrame:
        rows = []
        for name in self.free_:
            rows.append({"coefficient": name, "value": self.coefficients_[name], "stderr": self.stderr_[name],
                         "ci_low": self.ci_low_[name], "ci_high": self.ci_high_[name],
                         "unit": QUANTITIES[name].unit, "origin": "fitted"})
        for name in self.held_:
            rows.append({"coefficient": name, "value": self.calibration_.values[name], "stderr": None,
                         "ci_low": None, "ci_high": None, "unit": QUANTITIES[name].unit, "origin": "held"})
        return pd.DataFrame(rows)

    def to_text(self) -> str:
        """The readable report ``costmodel fit`` prints."""
        m = self.metrics_
        unit = QUANTITIES[self.target].unit
        unit_text = "" if unit == "1" else f" {unit}"
        lines = [
            f"Fit of {self.target} — model form {self.form}, {self.errors} errors, {int(self.level * 100)} % intervals",
            f"data: {self.data_} (sha256 {self.data_sha256_[:16]}…), {self.n_rows_} runs, "
            f"{self.n_configurations_} distinct configurations",
            f"method: {self.method_}; {len(self.free_)} free coefficients, {self.dof_} residual degrees of freedom",
            "",
        ]
        header = ("coefficient", "value", f"± {int(self.level * 100)} %", "interval", "unit", "origin")
        body = []
        for name in self.free_:
            if self.stderr_[name] is None:
                body.append((name, _fmt(self.coefficients_[name]), "on a bound",
                             f"[{_fmt(self.ci_low_[name])}, {_fmt(self.ci_high_[name])}]", QUANTITIES[name].unit,
                             "fitted"))
                continue
            half = self.stderr_[name] * float(stats.t.ppf(0.5 + self.level / 2, self.dof_))
            body.append((name, _fmt(self.coefficients_[name]), "± " + _fmt(half, 2),
                         f"[{_fmt(self.ci_low_[name])}, {_fmt(self.ci_high_[name])}]", QUANTITIES[name].unit, "fitted"))
        for name in self.held_:
            body.append((name, _fmt(self.calibration_.values[name]), "", "", QUANTITIES[name].unit, "held"))
        widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
        for row in [header, *body]:
            lines.append("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        lines += ["", "goodness of fit:",
                  f"  R² {_fmt(m['r2'])}, RMSE {_fmt(m['rmse'])}{unit_text}, leave-one-out RMSE {_fmt(m['loo_rmse'])}{unit_text}"
                  f" ({m['loo_method']})",
                  f"  AIC {_fmt(m['aic'], 6)}, BIC {_fmt(m['bic'], 6)}, residual scale {_fmt(m['residual_scale'])}"
                  + (" (fraction of the value)" if self.errors == "relative" else unit_text)]
        alt = self.alternatives_
        if alt.get("forms"):
            lines += ["", "model forms compared on these runs:"]
            header = ("form", "free", "ΔAIC", "weight", "LOO RMSE")
            body = []
            for entry in alt["forms"]:
                if "error" in entry:
                    body.append((entry["form"], "", "", "", "not fitted: " + entry["error"]))
                else:
                    body.append((entry["form"], str(entry["n_free"]), _fmt(entry["delta_aic"], 3),
                                 _fmt(entry["akaike_weight"], 2), _fmt(entry["loo_rmse"])))
            widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
            for row in [header, *body]:
                lines.append("  " + "  ".join(str(c).ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        if alt.get("statement"):
            lines.append("  " + alt["statement"])
        if self.held_:
            lines += ["", "held (not determined by these runs):"]
            lines += [f"  {name} = {_fmt(self.calibration_.values[name])} {QUANTITIES[name].unit}: {reason}"
                      for name, reason in self.held_.items()]
        shown = [w for w in self.warnings_ if not any(w.startswith(f"{n} held at ") for n in self.held_)]
        if shown:  # held coefficients are listed above already
            lines += ["", "warnings:"] + [f"  - {w}" for w in shown]
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        table = self.coefficient_table()
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
                r.coefficient, _fmt(r.value), "" if r.stderr is None or pd.isna(r.stderr) else _fmt(r.stderr, 2),
                "" if r.ci_low is None or pd.isna(r.ci_low) else f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]",
                r.unit, r.origin)) + "</tr>" for r in table.itertuples())
        m = self.metrics_
        warn = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings_)
        statement = html.escape(self.alternatives_.get("statement", ""))
        return (f"<div><strong>Fit of {html.escape(self.target)}</strong> — form {html.escape(self.form)}, "
                f"{self.n_rows_} runs, {self.n_configurations_} configurations, {html.escape(self.method_)}"
                "<table><thead><tr><th>coefficient</th><th>value</th><th>std. error</th>"
                f"<th>{int(self.level * 100)} % CI</th><th>unit</th><th>origin</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>"
                f"<p>R² {_fmt(m['r2'])}, RMSE {_fmt(m['rmse'])}, LOO RMSE {_fmt(m['loo_rmse'])}, "
                f"AIC {_fmt(m['aic'], 6)}, BIC {_fmt(m['bic'], 6)}</p>"
                f"<p>{statement}</p>" + (f"<ul>{warn}</ul>" if warn else "") + "</div>")


def _finite(obj):
    """Replace non-finite floats by None and NumPy scalars by Python ones, recursively."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


# --- the public function --------------------------------------------------------------------------


def _result(runs: _Runs, solution: _Solution, target: str, errors: str, level: float,
            base: calibration_module.Calibration, alternatives: dict) -> FitResult:
    st = _statistics(solution, runs.y, errors, target)
    t = float(stats.t.ppf(0.5 + level / 2, st.dof))
    warnings = list(runs.notes) + list(solution.warnings)
    coefficients, stderr, low, high = {}, {}, {}, {}
    for j, name in enumerate(solution.free):
        value = solution.values[name]
        lo_bound, hi_bound = QUANTITIES[name].bounds
        coefficients[name] = value
        if name in solution.at_bound:
            side = "lower" if abs(value - lo_bound) <= abs(hi_bound - value) else "upper"
            coefficients[name] = value = lo_bound if side == "lower" else hi_bound  # within 1e-3 SE of it
            reach = t * st.bound_spread.get(name, math.inf)
            stderr[name] = None
            low[name], high[name] = ((value, min(value + reach, hi_bound)) if side == "lower"
                                     else (max(value - reach, lo_bound), value))
            warnings.append(f"{name} = {_fmt(value)} is on its {side} bound: the data push it to its physical "
                            f"limit or past it; its interval [{_fmt(low[name])}, {_fmt(high[name])}] is one-sided, "
                            "and it counts as exact in the other intervals and in prediction intervals "
                            "(hold it at a measured value if one is known)")
            partners = st.bound_partners.get(name, [])
            if partners:
                listed = ", ".join(f"{other} (correlation {corr:+.2f})" for other, corr in partners)
                warnings.append(f"{name} trades off against {listed} on these runs: their intervals assume "
                                f"{name} = {_fmt(value)} and are too narrow if it is not")
            continue
        stderr[name] = float(st.stderr[j])
        low[name], high[name] = value - t * stderr[name], value + t * stderr[name]
        if low[name] < lo_bound or high[name] > hi_bound:
            low[name], high[name] = max(low[name], lo_bound), min(high[name], hi_bound)
            shown_high = _fmt(hi_bound) if math.isfinite(hi_bound) else "∞"
            warnings.append(f"{name}: interval cut at its physical bounds [{_fmt(lo_bound)}, {shown_high}]")
        if stderr[name] > POORLY_DETERMINED * abs(value):
            warnings.append(f"{name} is poorly determined (standard error {_fmt(stderr[name], 2)} vs value "
                            f"{_fmt(value)}): measure shapes that vary what it acts on (docs/fitting.md)")
    for name, reason in solution.held.items():
        if "(--hold" not in reason:
            warnings.append(f"{name} held at {_fmt(base.values[name])} {QUANTITIES[name].unit}: {reason}")
    if solution.uncertain_held:
        warnings.append("intervals include the uncertainty of coefficients held at earlier fits' values ("
                        + ", ".join(solution.uncertain_held) + "); other held values are taken as exact")
    if st.metrics["loo_rmse"] is None:
        alone = [runs.place(i) for i in np.flatnonzero(solution.rows)[st.leverage >= 1 - 1e-10]][:3]
        warnings.append("leave-one-out RMSE undefined: a run alone determines a coefficient ("
                        + ", ".join(alone) + ")")
    used = solution.rows
    method = ("linear least squares, exact (scipy.optimize.lsq_linear, bounded)" if solution.linear
              else "nonlinear least squares (scipy.optimize.least_squares, trust-region reflective, bounded)")
    if errors == "relative":
        method += ", weights 1/value (iteratively reweighted)"
    ranges_runs = _Runs(runs.where, runs.sha256, runs.frame, {k: (v[used] if isinstance(v, np.ndarray) else v)
                                                               for k, v in runs.arrays.items()},
                        runs.y[used], runs.places, runs.notes, runs.assumed, runs.n_configurations)
    return FitResult(
        target=target, form=solution.form, errors=errors, level=level, coefficients_=coefficients,
        stderr_=stderr, ci_low_=low, ci_high_=high, held_=dict(solution.held), free_=list(solution.free),
        covariance_=st.covariance, residual_scale_=st.residual_scale, dof_=st.dof, n_rows_=int(used.sum()),
        n_configurations_=runs.n_configurations, metrics_=st.metrics, alternatives_=alternatives,
        warnings_=warnings, method_=method, input_ranges_=_input_ranges(ranges_runs), data_=runs.where,
        data_sha256_=runs.sha256, assumed_=dict(runs.assumed), calibration_=base,
        fitted_=solution.fitted[used], measured_=runs.y[used], places_=[p for p, u in zip(runs.places, used) if u],
        runs_=runs.frame[used],
    )


def _compare(entries: list[dict], chosen: str) -> dict:
    fitted = [e for e in entries if "error" not in e]
    if not fitted:
        return {"forms": entries, "preferred": None, "statement": "no model form could be fitted"}
    best = min(fitted, key=lambda e: (e["aic"], e["loo_rmse"] if e["loo_rmse"] is not None else math.inf))
    total = sum(math.exp(-(e["aic"] - best["aic"]) / 2) for e in fitted)
    for e in fitted:
        e["delta_aic"] = e["aic"] - best["aic"]
        e["akaike_weight"] = math.exp(-e["delta_aic"] / 2) / total
    entries.sort(key=lambda e: (e.get("delta_aic", math.inf), e["form"]))
    runner_up = next((e for e in entries if "error" not in e and e["form"] != best["form"]), None)
    if runner_up is None:
        statement = f"only {best['form']} could be fitted"
    else:
        delta = runner_up["delta_aic"]
        phrase = next(text for limit, text in _SUPPORT if delta <= limit)
        statement = (f"the data prefer {best['form']} over {runner_up['form']}: ΔAIC {_fmt(delta, 3)} "
                     f"({phrase}; Akaike weight {_fmt(best['akaike_weight'], 2)}), leave-one-out RMSE "
                     f"{_fmt(best['loo_rmse'])} vs {_fmt(runner_up['loo_rmse'])}")
        if best["form"] != chosen:
            statement += f"; the fit above uses {chosen} (--model {best['form']} to use the preferred form)"
    return {"forms": entries, "preferred": best["form"], "statement": statement}


def fit(
    data,
    target: str,
    form: str = "default",
    calibration: calibration_module.Calibration | None = None,
    *,
    hold: Iterable[str] = (),
    hold_fitted: bool = False,
    assume: Mapping[str, object] | None = None,
    errors: str = "relative",
    alternatives: bool = True,
    level: float = LEVEL,
    loo: str = "auto",
) -> FitResult:
    """Fit the free coefficients of ``target`` to measured runs.

    Parameters
    ----------
    data : path-like or DataFrame
        Runs in the dataset schema (docs/data-schema.md); a path is read with
        :func:`costmodel.data.load`. Runs without a value for ``target`` are skipped.
    target : str
        One of :data:`TARGETS`.
    form : str
        A key of :data:`costmodel.model.FORMS`, or ``"auto"``: fit every form and keep the
        one with the lowest AIC.
    calibration : Calibration, optional
        Starting values, and the values of every coefficient not fitted (default: the
        calibration derived from the published reference). Never modified.
    hold : iterable of str
        Coefficients to keep at the calibration's values.
    hold_fitted : bool
        Also keep every coefficient the calibration has already fitted (to another
        target): fit targets one after another, each adding its own coefficients.
    assume : mapping, optional
        Values for inputs unknown in some runs (``{"vcpus": 16}``), recorded in the result.
    errors : {"relative", "absolute"}
        Noise model: standard deviation proportional to the value (weights 1/value,
        iteratively reweighted) or constant.
    alternatives : bool
        Also fit the other model forms and compare them (ΔAIC, Akaike weights, LOO RMSE).
    level : float
        Confidence level of the intervals. [1]
    loo : {"auto", "exact", "first-order"}
        Leave-one-out for nonlinear targets: refit without each run (``exact``), or the
        hat-matrix approximation (``first-order``); ``auto`` refits up to
        :data:`LOO_EXACT_MAX` runs. Linear targets are always exact.

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        Bad data (a :class:`~costmodel.data.DataError` naming file, line and column), an
        unknown target, form or coefficient, or data that determine no coefficient, fewer
        distinct configurations than coefficients, or no more runs than coefficients.
    """
    if errors not in ERRORS:
        raise InputError("--errors", errors, "one of " + ", ".join(ERRORS))
    if loo not in ("auto", "exact", "first-order"):
        raise InputError("loo", loo, "one of auto, exact, first-order")
    if not 0 < level < 1:
        raise InputError("level", level, "a confidence level between 0 and 1")
    forms = list(FORMS)
    if form != "auto" and form not in FORMS:
        raise InputError("--model", form, "one of auto, " + ", ".join(closest(form, forms, len(forms))))
    hold = list(hold)
    for name in hold:
        if name not in COEFFICIENTS:
            raise InputError("--hold", name, "coefficient names such as " + ", ".join(closest(name, COEFFICIENTS, 3)))
    base = calibration if calibration is not None else calibration_module.default()
    hold = {name: "held on request (--hold)" for name in hold}
    if hold_fitted:
        hold.update({c: "fitted to an earlier target (--hold-fitted)" for c in COEFFICIENTS
                     if base.origin.get(c) == "fitted" and c not in hold})
    runs = _prepare(data, target, assume)
    ignored = [h for h, why in hold.items()
               if "--hold)" in why and not any(h in candidate_coefficients(target, f) for f in FORMS)]
    if ignored:
        runs.notes.append(f"--hold {', '.join(ignored)}: not a coefficient of {target}; nothing to hold")

    known = _known_uncertainty(base)
    solutions: dict[str, _Solution] = {}
    entries: list[dict] = []
    same = _same_expression_forms(target)
    chosen_forms = forms if (alternatives or form == "auto") else [form]
    errors_by_form: dict[str, InputError] = {}
    for name in chosen_forms:
        if same[name] != name and same[name] in solutions:
            solutions[name] = solutions[same[name]]
        else:
            try:
                solutions[name] = _fit_form(runs, target, name, base.values, hold, errors, known=known, loo=loo)
            except InputError as error:
                errors_by_form[name] = error
                entries.append({"form": name, "error": str(error.found) + "; expected " + error.expected})
                continue
        sol = solutions[name]
        metrics = _statistics(sol, runs.y, errors, target).metrics
        entries.append({"form": name, "n_free": len(sol.free), "aic": metrics["aic"], "bic": metrics["bic"],
                        "loo_rmse": metrics["loo_rmse"], "rmse": metrics["rmse"],
                        "same_as": same[name] if same[name] != name else None})
    if form == "auto":
        fitted = [e for e in entries if "error" not in e]
        if not fitted:
            raise next(iter(errors_by_form.values()))
        form = min(fitted, key=lambda e: e["aic"])["form"]
    if form in errors_by_form:
        raise errors_by_form[form]
    comparison = _compare(entries, form) if len(chosen_forms) > 1 else {"forms": [], "preferred": None, "statement": ""}
    if len(chosen_forms) > 1 and len({same[f] for f in chosen_forms}) == 1:
        comparison["statement"] = f"all model forms give the same closed form of {target}: nothing to compare"
        comparison["preferred"] = None
    base_for_result = base if base.form == form else calibration_module.Calibration(
        dict(base.values), form, dict(base.origin), dict(base.stderr), dict(base.ci_low), dict(base.ci_high),
        dict(base.provenance), {})
    return _result(runs, solutions[form], target, errors, level, base_for_result, comparison)


# --- predictions with a fitted calibration ------------------------------------------------------


def _fits(cal: calibration_module.Calibration) -> dict:
    extra = cal.extra or {}
    fits = dict(extra.get("fits") or {})
    if not fits and extra.get("fit"):
        fits[extra["fit"]["target"]] = extra["fit"]
    return fits


def extrapolation(frame: pd.DataFrame, ranges: Mapping) -> pd.Series:
    """Comma-separated inputs of each row outside the fitted ``ranges`` ("" when none)."""
    flags = [[] for _ in range(len(frame))]
    for name in RANGE_INPUTS:
        if name not in ranges or name not in frame:
            continue
        allowed = ranges[name]
        values = frame[name].to_numpy()
        if name in ("hugepage_bytes", "platform"):
            outside = ~np.isin(np.asarray(values).astype(str if name == "platform" else float),
                               np.asarray(allowed, dtype=str if name == "platform" else float))
        else:
            low, high = allowed
            numbers = np.asarray(values, dtype=float)
            outside = (numbers < low * (1 - 1e-12)) | (numbers > high * (1 + 1e-12))
        for i in np.flatnonzero(outside):
            flags[i].append(name)
    return pd.Series([",".join(f) for f in flags], index=frame.index, dtype=object)


def annotate(frame: pd.DataFrame, calibration: calibration_module.Calibration) -> pd.DataFrame:
    """Add prediction intervals and an extrapolation flag to an evaluated frame.

    For every target fitted in ``calibration`` (``extra["fits"]``) that is a column of
    ``frame`` (as :func:`costmodel.evaluate.evaluate` returns it), adds
    ``<target>_pi_low`` and ``<target>_pi_high``: the prediction interval for a new run at
    that configuration (coefficient covariance by the delta method plus the residual
    variance, t quantile with the fit's degrees of freedom, low end cut at 0). Adds
    ``extrapolation``: the inputs outside the range of the fitted runs, comma-separated
    ("" when inside). A calibration without fits returns the frame unchanged.
    """
    fits = _fits(calibration)
    if not fits:
        return frame
    out = frame.copy()
    flags = pd.Series([""] * len(out), index=out.index, dtype=object)
    scenario_column = out["scenario"] if "scenario" in out else pd.Series(_SCENARIO, index=out.index)
    for target, info in fits.items():
        outside = extrapolation(out, info.get("input_ranges", {}))
        flags = pd.Series([",".join(dict.fromkeys([*a.split(","), *b.split(",")]).keys() - {""})
                           if (a or b) else "" for a, b in zip(flags, outside)], index=out.index, dtype=object)
        if target not in out:
            continue
        low = np.full(len(out), np.nan)
        high = np.full(len(out), np.nan)
        free = list(info["free"])
        covariance = np.asarray(info["covariance"], dtype=float)
        t = float(stats.t.ppf(0.5 + info.get("level", LEVEL) / 2, info["dof"]))
        for scenario in pd.unique(scenario_column):
            mask = (scenario_column == scenario).to_numpy()
            columns = {c: out.loc[mask, c].to_numpy() for c in ("memory_bytes", "vcpus", "virtqueues",
                                                               "hugepage_bytes", "platform") if c in out}
            if "swiotlb_bytes" in out:
                columns["swiotlb_bytes"] = out.loc[mask, "swiotlb_bytes"].to_numpy(dtype=float)
            columns["platform"] = np.asarray(columns["platform"]).astype(str)
            arrays = configurations(columns)
            compiled = compile_outputs((target,), calibration.form, str(scenario))
            values = dict(calibration.values)
            center = np.asarray(compiled(arrays, values)[target], dtype=float)
            gradient = []
            for name in free:
                step = 1e-6 * max(abs(values[name]), _scale(name, values[name]) * 1e-3)
                up, down = dict(values), dict(values)
                up[name] += step
                down[name] -= step
                gradient.append((np.asarray(compiled(arrays, up)[target]) - np.asarray(compiled(arrays, down)[target])) / (2 * step))
            g = np.column_stack(gradient) if gradient else np.zeros((len(center), 0))
            variance = np.einsum("ij,jk,ik->i", g, covariance, g) if gradient else np.zeros(len(center))
            noise = info["residual_scale"] * (np.abs(center) if info.get("errors", "relative") == "relative" else 1.0)
            half = t * np.sqrt(variance + noise**2)
            low[mask] = np.maximum(center - half, 0.0)
            high[mask] = center + half
        position = out.columns.get_loc(target) + 1
        out.insert(position, f"{target}_pi_low", low)
        out.insert(position + 1, f"{target}_pi_high", high)
    out["extrapolation"] = [",".join(n for n in RANGE_INPUTS if n in f.split(",")) for f in flags]
    return out


# --- synthetic runs ---------------------------------------------------------------------------


def simulate(
    configs,
    calibration: calibration_module.Calibration | None = None,
    targets: Sequence[str] = TARGETS,
    noise: float = 0.05,
    seed: int = 0,
    replicates: int = 1,
    scenario: str = _SCENARIO,
    whole: bool = False,
) -> pd.DataFrame:
    """Synthetic runs from the model with known coefficients and seeded noise.

    For experiment design (will these shapes determine the coefficients?) and for tests:
    each target is the model's value times ``1 + noise·z`` (z standard normal, seeded),
    cut at 0. Rows are labelled synthetic in ``source`` and ``notes``.

    Parameters
    ----------
    configs : DataFrame or mapping
        VM shapes (see :func:`costmodel.evaluate.configurations`).
    calibration : Calibration, optional
        The true coefficients (default: the default calibration).
    targets : sequence of str
        Which measured columns to produce.
    noise : float
        Relative standard deviation of the noise. [1]
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    replicates : int
        Runs per configuration.
    whole : bool
        Round every measured value to a whole number, as counters report them.

    Returns
    -------
    DataFrame
        Runs in the dataset schema, validated.
    """
    from costmodel.evaluate import evaluate

    cal = calibration if calibration is not None else calibration_module.default()
    evaluated = evaluate(configs, cal, scenario=scenario, outputs=list(targets))
    evaluated = evaluated.loc[evaluated.index.repeat(replicates)].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "platform": evaluated["platform"].astype(str).to_numpy(),
        "memory_bytes": evaluated["memory_bytes"].to_numpy(),
        "vcpus": evaluated["vcpus"].to_numpy(),
        "virtqueues": evaluated["virtqueues"].to_numpy(),
        "hugepage_bytes": evaluated["hugepage_bytes"].to_numpy(),
    })
    for target in targets:
        truth = evaluated[target].to_numpy(dtype=float)
        noisy = np.maximum(truth * (1.0 + noise * rng.standard_normal(len(truth))), 0.0)
        frame[target] = np.round(noisy) if whole else noisy
    frame["run_id"] = [f"synthetic-{seed}-{i}" for i in range(len(frame))]
    frame["source"] = f"synthetic: costmodel.fitting.fit.simulate(noise={noise}, seed={seed})"
    frame["notes"] = "synthetic, not a measurement"
    return data_module.validate(frame, "simulated runs")
