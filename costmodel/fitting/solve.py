"""The numerical core of a fit: choose the free coefficients, solve, check what the data
determine.

:func:`fit_form` fits one target under one model form: it holds coefficients the caller
asked to hold and those the data cannot determine (step functions, no effect on these runs,
collinear with others: the rank of the column-scaled Jacobian), solves by bounded linear
least squares when the target is affine in the free coefficients and by bounded nonlinear
least squares otherwise, with weights for relative errors found by iterative reweighting,
and re-checks identifiability at the solution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from costmodel import data as data_module
from costmodel.compiled import FUSED_MIN_ROWS, INPUTS, compile_outputs
from costmodel.errors import Argument, InputError
from costmodel.fitting.holds import Hold, HoldReason
from costmodel.fitting.program import Evaluator
from costmodel.fitting.runs import Runs
from costmodel.fitting.structure import (
    SCENARIO,
    candidate_coefficients,
    depth,
    is_linear,
    step_only,
)
from costmodel.model.variables import COEFFICIENTS, QUANTITIES
from costmodel.uncertainty import jacobian, typical_size

#: Nonlinear fits of at most this many runs get leave-one-out by refitting (else first order).
LOO_EXACT_MAX = 40
#: Relative singular value below which a (column-scaled) Jacobian is rank deficient.
RANK_TOLERANCE = 1e-7


@dataclass
class Solution:
    """What :func:`fit_form` found for one target and form."""

    form: str
    free: list[str]
    held: dict[str, Hold]
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
    #: :func:`costmodel.fitting.statistics.statistics` of this solution, with what it was computed for
    computed_statistics: tuple | None = field(default=None, repr=False)


def known_uncertainty(cal) -> tuple[list[str], np.ndarray]:
    """Coefficients the calibration carries a covariance for (earlier fits), with it."""
    names: list[str] = []
    blocks: list[tuple[list[str], np.ndarray]] = []
    for record in cal.fits.values():
        free = list(record.free)
        covariance = np.asarray(record.covariance, dtype=float)
        if free and covariance.shape == (len(free), len(free)):
            blocks.append((free, covariance))
            names += [n for n in free if n not in names]
    stderr = {n: c.stderr for n, c in cal.coefficients.items() if c.stderr is not None}
    names += [n for n in COEFFICIENTS if n in stderr and n not in names]
    matrix = np.zeros((len(names), len(names)))
    for n in names:
        if n in stderr:
            matrix[names.index(n), names.index(n)] = float(stderr[n]) ** 2
    for free, covariance in blocks:  # later fits win where they overlap
        index = [names.index(n) for n in free]
        matrix[np.ix_(index, index)] = covariance
    return names, matrix


class Problem:
    """One target, one form, one set of runs: the model as a function of free values.

    The model is evaluated once per *distinct* configuration and gathered back to the runs,
    so replicated runs cost nothing extra (100,000 runs of 100 shapes evaluate 100 rows);
    the part of the program the free coefficients do not reach is computed once per set of
    free coefficients, and several points (a finite difference) in one call
    (:mod:`costmodel.fitting.program`), each value exactly as the whole program gives it.
    """

    def __init__(self, runs: Runs, target: str, form: str, base: dict):
        self.runs, self.target, self.form = runs, target, form
        self.compiled = compile_outputs((target,), form, SCENARIO)
        self._base = dict(base)
        first, self.inverse = runs.groups()
        self.unique = runs.configuration_arrays()
        # the compiled model takes its fused loop from this many rows on: keep its path
        self._whole = len(first) >= FUSED_MIN_ROWS
        self._evaluators: dict[tuple, Evaluator] = {}
        self.nfev = 0

    @property
    def base(self) -> dict:
        return self._base

    @base.setter
    def base(self, values: dict) -> None:
        self._base = dict(values)
        self._evaluators.clear()

    def _evaluator(self, free: Sequence[str]) -> Evaluator:
        key = tuple(free)
        if key not in self._evaluators:
            self._evaluators[key] = Evaluator(self.compiled, self.target, self.unique, self._base, key, INPUTS,
                                              COEFFICIENTS, whole=self._whole)
        return self._evaluators[key]

    def distinct(self, free: Sequence[str], values: np.ndarray) -> np.ndarray:
        """The target at each distinct configuration."""
        self.nfev += 1
        return self._evaluator(free).at(values)

    def distinct_many(self, free: Sequence[str], points) -> np.ndarray:
        """The target at each distinct configuration (columns) for each point (rows)."""
        points = np.asarray(points, dtype=float).reshape(-1, len(free))
        self.nfev += len(points)
        return self._evaluator(free).many(points)

    def model(self, free: Sequence[str], values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        distinct = self.distinct(free, values)
        return distinct[self.inverse if rows is None else self.inverse[rows]]

    def jacobian(self, free: Sequence[str], values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """d model / d free values at ``values`` (:func:`costmodel.uncertainty.jacobian`)."""
        n = len(self.inverse) if rows is None else int(np.count_nonzero(rows))
        if not len(free):
            return np.zeros((n, 0))
        # point by point: a few points, each evaluated as one (the union's coverage of one
        # point is kept; a batch of four would compute its own), the same values
        return jacobian(lambda v: self.model(free, v, rows), list(free), values)


#: SciPy's relative step of forward differences (``approx_derivative``, ``"2-point"``). [1]
RELATIVE_STEP = float(np.finfo(np.float64).eps ** 0.5)


def forward_differences(x: np.ndarray, f0: np.ndarray, lower: np.ndarray, upper: np.ndarray, many) -> np.ndarray:
    """d f / d x by forward differences as ``scipy.optimize.least_squares(jac="2-point")`` takes
    them, the same operations in the same order (``tests/test_fit_outputs.py`` compares):
    step ``sqrt(eps)·sign(x)·max(1, |x|)`` (sign +1 at 0); a step that leaves the bounds
    turned back when it fits on the other side, else the room to the farther bound; the
    difference quotient over ``(x + h) − x``. ``many(points)`` evaluates f at each row of
    ``points`` (one call). Returns the (rows, len(x)) matrix, laid out as SciPy's
    (Fortran order: a transposed C array)."""
    steps = []  # per coefficient, in Python floats: IEEE doubles, the same operations as NumPy's
    for value, low, high in zip(x.tolist(), lower.tolist(), upper.tolist()):
        h = RELATIVE_STEP * (1.0 if value >= 0 else -1.0) * max(1.0, abs(value))
        below, above = value - low, high - value
        fits = abs(h) <= max(below, above)
        if fits and not low <= value + h <= high:
            h = -h
        elif not fits:
            h = above if above >= below else -below
        steps.append(h)
    h = np.array(steps)
    points = np.repeat(x[None, :], len(x), axis=0)
    points[np.diag_indices(len(x))] = x + h
    values = many(points)
    transposed = np.empty((len(x), f0.size))
    for i in range(len(x)):
        transposed[i] = (values[i] - f0) / ((x[i] + h[i]) - x[i])
    return transposed.T


def bounds(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    lower = np.array([QUANTITIES[n].bounds[0] for n in names], dtype=float)
    upper = np.array([QUANTITIES[n].bounds[1] for n in names], dtype=float)
    return lower, upper


def _inside(values: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    span = np.where(np.isfinite(upper), upper - lower, np.abs(values) + 1.0)
    return np.clip(values, lower + 1e-6 * span, np.where(np.isfinite(upper), upper - 1e-6 * span, np.inf))


def _independent(jw: np.ndarray, names: list[str]) -> tuple[list[str], dict[str, Hold]]:
    """Greedy in registry order: keep a coefficient when it raises the Jacobian's rank."""
    norms = np.linalg.norm(jw, axis=0)
    safe = np.where((norms > 0) & np.isfinite(norms), norms, 1.0)
    r_factor = np.linalg.qr(np.nan_to_num(jw / safe), mode="r")  # one QR; each trial is a small SVD
    kept, dropped = [], {}
    for j, name in enumerate(names):
        if not np.any(jw[:, j]) or not np.isfinite(norms[j]):  # exact: finite differences of an unused input
            dropped[name] = Hold(HoldReason.NO_EFFECT)
            continue
        trial = kept + [name]
        columns = r_factor[:, [names.index(k) for k in trial]]  # same singular values as jw's columns
        singular = np.linalg.svd(columns, compute_uv=False)
        if singular[-1] < RANK_TOLERANCE * singular[0]:
            basis = r_factor[:, [names.index(k) for k in kept]]
            coef, *_ = np.linalg.lstsq(basis, columns[:, -1], rcond=None)
            partners = [kept[i] for i in np.argsort(-np.abs(coef)) if abs(coef[i]) > 1e-3][:3]
            dropped[name] = Hold(HoldReason.COLLINEAR, tuple(partners), name=name)
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


def _solve(problem: Problem, free: list[str], start: np.ndarray, weights: np.ndarray, rows: np.ndarray,
           linear: bool, starts: int) -> np.ndarray:
    """Weighted least squares with fixed weights; returns the free values.

    Runs of one configuration share the model value and the weight, so they are pooled:
    Σ over runs of ((f − y)/w)² equals Σ over configurations of n·((f − ȳ)/w)² plus a
    constant, and the minimiser is the same.
    """
    member = problem.inverse if rows.all() else problem.inverse[rows]
    counts = np.bincount(member)
    if counts.all():  # every configuration has a run: np.unique's groups are 0, 1, …, and each run's is its own
        groups = np.arange(len(counts))
    else:
        groups, member = np.unique(member, return_inverse=True)
        member = member.reshape(-1)
        counts = np.bincount(member)
    mean = np.bincount(member, weights=problem.runs.y[rows]) / counts
    w = (np.bincount(member, weights=weights[rows]) / counts) / np.sqrt(counts)
    lower, upper = bounds(free)
    scale = np.array([typical_size(n, v) for n, v in zip(free, start)])

    def model(values):
        return problem.distinct(free, values)[groups]

    if linear:  # the value at 0 and at each unit vector, in one call
        at = problem.distinct_many(free, np.vstack([np.zeros(len(free)), np.eye(len(free))]))[:, groups]
        f0 = at[0]
        design = np.column_stack([at[1 + j] - f0 for j in range(len(free))])
        a = design * scale / w[:, None]
        b = (mean - f0) / w
        result = optimize.lsq_linear(a, b, bounds=(lower / scale, upper / scale), method="bvls", tol=1e-12)
        return result.x * scale, result.active_mask != 0

    evaluated: dict[bytes, np.ndarray] = {}  # the residuals at the last point: SciPy differentiates there

    def residuals(x):
        value = (model(x * scale) - mean) / w
        evaluated.clear()
        evaluated[x.tobytes()] = value.copy()
        return value

    lo, hi = lower / scale, upper / scale

    def jacobian(x):
        """Forward differences, SciPy's own (``jac="2-point"``: the step ``sqrt(eps)·max(1, |x|)``
        signed as ``x``, turned back, or shortened to the room left, at a bound), with every point
        in one call and without SciPy's machinery around it: the same matrix, bit for bit."""
        x = np.asarray(x, dtype=float)
        f0 = evaluated.get(x.tobytes())
        if f0 is None:
            f0 = residuals(x)
        return forward_differences(x, f0, lo, hi, lambda points: (problem.distinct_many(free, points * scale)[:, groups]
                                                                  - mean) / w)

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
        result = optimize.least_squares(residuals, x0, jac=jacobian, bounds=(lo, hi), method="trf", x_scale="jac",
                                        xtol=1e-10, ftol=1e-10, gtol=1e-10, max_nfev=60 * (len(free) + 1))
        if best is None or result.cost < best.cost * (1 - 1e-9):
            best = result
    return best.x * scale, best.active_mask != 0


def _reweighted(problem: Problem, free: list[str], values: np.ndarray, rows: np.ndarray, linear: bool,
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


def _leave_one_out(problem: Problem, free: list[str], values: np.ndarray, rows: np.ndarray,
                   errors: str) -> np.ndarray:
    """Each used run's prediction from a refit without it (NaN for runs not used)."""
    prediction = np.full(len(problem.runs.y), np.nan)
    for i in np.flatnonzero(rows):
        without = rows.copy()
        without[i] = False
        refit, _, _ = _reweighted(problem, free, values.copy(), without, False, errors, 1)
        prediction[i] = problem.model(free, refit)[i]
    return prediction


def fit_form(runs: Runs, target: str, form: str, base: dict, hold: Mapping[str, Hold], errors: str,
           starts: int = 3, known: tuple[list[str], np.ndarray] = ([], np.zeros((0, 0))),
           loo: str = "auto") -> Solution:
    """Choose the free coefficients, solve, re-check identifiability at the solution."""
    problem = Problem(runs, target, form, base)
    candidates = list(candidate_coefficients(target, form))
    warnings: list[str] = []
    held: dict[str, Hold] = {}
    for name in candidates:
        if name in hold:
            held[name] = hold[name]
    if candidates and all(n in held for n in candidates):
        raise InputError(Argument("hold"), ", ".join(candidates),
                         f"at least one coefficient of {target} left free (every one is held: nothing to fit)")
    for name in step_only(target, form):
        if name not in held:
            held[name] = Hold(HoldReason.STEP_ONLY)
    levels = depth(target, form)
    free = sorted((n for n in candidates if n not in held), key=lambda n: (levels.get(n, 99), COEFFICIENTS.index(n)))
    lower, upper = bounds(free)
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
        scale = np.array([typical_size(n, v) for n, v in zip(names, values_free)])
        kept, dropped = _independent(jac * scale / weights[rows][:, None], names)
        for name, reason in dropped.items():
            held[name] = Hold(reason.reason, reason.partners, when, name)
        return kept

    n_configurations = len(np.unique(problem.inverse[rows]))
    acting = [n for j, n in enumerate(free) if np.any(jac0[rows][:, j])]
    if len(acting) > n_configurations:  # refuse before the rank check would quietly hold most of them
        free = acting
        raise data_module.DataError(
            runs.where, data_module.Said(f"{n_configurations} distinct configurations for {len(free)} coefficients"),
            f"at least as many distinct VM shapes as coefficients to fit ({', '.join(free)}); measure more shapes "
            f"(see docs/fitting.md) or hold some (--hold NAME; hold=[...] in Python)")
    free = check(start, free, "at the starting values")
    if not free:
        raise data_module.DataError(
            runs.where, data_module.Said(f"runs that determine no coefficient of {target} ({held_text(held)})"),
            "runs that vary the inputs the coefficients act on (see docs/fitting.md)")
    n_used = int(rows.sum())
    if n_used <= len(free):
        raise data_module.DataError(
            runs.where, data_module.Said(f"{n_used} runs for {len(free)} coefficients ({', '.join(free)})"),
            "more runs than coefficients (at least one degree of freedom for the residual variance)")

    values = np.array([base[n] for n in free], dtype=float)
    for _ in range(4):  # re-check identifiability at the solution; hold and refit if it changed
        linear = is_linear(target, tuple(free), form)
        values = _inside(np.array([base[n] for n in free], dtype=float), *bounds(free))
        values, active, weights = _reweighted(problem, free, values, rows, linear, errors, starts)
        kept = check(values, free, "at the fitted values")
        if kept == free:
            break
        free = kept
        if not free:
            raise data_module.DataError(runs.where, data_module.Said(f"runs that determine no coefficient of {target}"),
                                        "runs that vary the inputs the coefficients act on (see docs/fitting.md)")
    order = sorted(range(len(free)), key=lambda j: COEFFICIENTS.index(free[j]))
    free, values, active = [free[j] for j in order], values[order], active[order]
    fitted = problem.model(free, values)
    jacobian = problem.jacobian(free, values)
    all_values = {**base, **dict(zip(free, map(float, values)))}
    solution = Solution(form, free, held, all_values, fitted, weights, jacobian, linear, rows, warnings, problem.nfev,
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


def held_text(held: Mapping[str, Hold]) -> str:
    return "; ".join(f"{n}: {h.text()}" for n, h in held.items()) or "none"
