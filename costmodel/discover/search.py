"""The search of ``costmodel discover``: which sum of terms the measurements support.

It works on configurations (:mod:`costmodel.discover.points`: means weighted by their
counts, so a fit equals one to every measurement; cross-validation leaves out whole
configurations, so a repeat never predicts itself).

1. **Library.** The shapes each input needs are read from slices of the grid
   (:mod:`costmodel.discover.slices`); their products across inputs are the library.
   The products of each input's best set are fitted together and pruned term by term
   (least significant first); every model on that path is a candidate.
2. **Beam search.** Models grow one term at a time. A new term comes from the library,
   or is built input by input (the single-input factors that most lower the residual,
   each times the factors of the other inputs that lower it further, a beam of
   :data:`TERM_BEAM` per level), or is the constant or a domain shape with its threshold
   profiled. Two-term models are also checked exhaustively over the library and the
   strongest single terms (a greedy first term can be a blend of two). The
   :data:`MODEL_BEAM` best models of each size go on to the next.
3. **Refinement.** The best models of each size descend steepest-first through
   single-term replacements (one factor's exponent or log power changed, a factor added
   or dropped, or a term proposed against the others), and again with each term dropped
   (one term may have stood in for two).
4. **Selection.** Every model is scored by its leave-one-configuration-out error (exact,
   from the hat matrix) times ``1 + penalty · (parameters − 1)``, the penalty being
   √(2/n) for n configurations (two standard errors of an RMS over them; at least
   :data:`PENALTY`): a parameter must buy that share of cross-validated error, so noise is
   not fitted. A threshold, tried at many values, is charged as a second parameter.
   Errors below the spread of the means that repeats explain (or :data:`FLOOR`, float64
   rounding, without repeats) count as that spread: no formula predicts held-out means
   better than their noise, so one that seems to has fitted it. Ties go to fewer
   parameters, then to lower exponents.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from costmodel.discover.points import Points, aggregate, choose_errors, scales  # noqa: F401 (re-exported)
from costmodel.discover.space import DOMAIN_KINDS, FACTOR_SHAPES, DomainTerm, Factor, Term, domain_values, thresholds

#: Least share of cross-validated error one more parameter must buy (see :func:`penalty_for`).
PENALTY = 0.05
#: Cross-validated errors below this (a fraction of the data's scale) are rounding, not fit.
FLOOR = 1e-9
#: Terms kept per level while a term is built input by input.
TERM_BEAM = 6
#: New terms tried on each model of the beam.
PROPOSALS = 6
#: Models of each size carried to the next size.
MODEL_BEAM = 6
#: Best models of each size refined term by term.
REFINED = 3
#: Shapes of one input in the wide library (the best set, widened by the runners-up).
POOL = 6
#: Strongest single terms added to the library for the exhaustive check of pairs.
PAIR_POOL = 120
#: Most terms in the wide library (beyond it, the best sets' products alone).
LIBRARY_MAX = 1500


def to_term(key):
    """The term a search key stands for: ``((input, shape), …)`` → :class:`Term`; domain terms are their own key."""
    if isinstance(key, DomainTerm):
        return key
    return Term(tuple(Factor(j, *FACTOR_SHAPES[s]) for j, s in key))


def to_key(term):
    if isinstance(term, DomainTerm):
        return term
    return tuple(sorted((f.input, SHAPE_INDEX[(f.exponent, f.log_power)]) for f in term.factors))


SHAPE_INDEX = {shape: i for i, shape in enumerate(FACTOR_SHAPES)}
_WEIGHTS = np.array([float(i) + k for i, k in FACTOR_SHAPES])


def _weight(key) -> float:
    return 1.5 if isinstance(key, DomainTerm) else float(sum(_WEIGHTS[s] for _, s in key))


def _sort_key(key):
    if isinstance(key, DomainTerm):
        return (2, key.input, key.kind, key.threshold)
    return (0 if not key else 1, len(key), key)


def canonical(keys) -> tuple:
    """Keys in a fixed order: the constant, PMNF terms (fewer factors first), domain terms."""
    return tuple(sorted(keys, key=_sort_key))


@dataclass
class Candidate:
    """One model the search fitted: its terms (search keys) and cross-validated error."""

    keys: tuple
    coefficients: np.ndarray
    #: RMS of the leave-one-configuration-out errors (relative, or in units of the data's RMS)
    cv: float
    #: RMS of the in-sample errors at the points, same units
    rms: float
    #: each point's leave-one-out error, same units
    loo: np.ndarray = field(repr=False, default=None)
    parameters: int = field(init=False)
    score: float = field(init=False)

    #: share of cross-validated error one more parameter must buy
    penalty: float = PENALTY
    #: errors below this count as it: rounding, or the spread of the means repeats explain
    floor: float = FLOOR

    def __post_init__(self):
        self.parameters = len(self.keys) + sum(isinstance(k, DomainTerm) for k in self.keys)
        # a threshold tried at many values costs a parameter of its own in the penalty
        charged = self.parameters + sum(isinstance(k, DomainTerm) for k in self.keys)
        self.score = max(self.cv, self.floor) * (1 + self.penalty * (charged - 1))

    @property
    def terms(self) -> tuple:
        return tuple(to_term(k) for k in self.keys)

    @property
    def rank(self):
        """Order of preference: score, then fewer parameters, then lower exponents."""
        return (self.score, self.parameters, sum(_weight(k) for k in self.keys), repr(self.keys))


class Search:
    """The search over one set of points (see the module docstring)."""

    def __init__(self, points: Points, errors: str, max_terms: int = 3, domain: bool = True):
        self.points, self.errors, self.domain = points, errors, domain
        self.n, self.d = points.x.shape
        self.scale = scales(points, errors)
        #: row weights: √count / scale, so a weighted residual² sums to the fit's objective
        self.w = np.sqrt(points.count) / self.scale
        self.b = self.w * points.mean
        self.max_size = max(1, min(max_terms + 1, self.n - 2))
        self.penalty = penalty_for(self.n)
        noise = self.noise()
        self.floor = max(FLOOR, noise[0]) if noise else FLOOR
        self.factors = [np.column_stack([Factor(j, i, k).values(points.x) for i, k in FACTOR_SHAPES])
                        for j in range(self.d)]
        self.singles = np.column_stack([self.w[:, None] * f for f in self.factors])
        self.singles_total = np.einsum("ij,ij->j", self.singles, self.singles)
        self.single_keys = [((j, s),) for j in range(self.d) for s in range(len(FACTOR_SHAPES))]
        self._columns: dict = {}
        self.fitted: dict[frozenset, Candidate | None] = {}
        self.library_keys: list = []
        self.library_columns = np.zeros((self.n, 0))
        self.domain_columns = self._domain_columns() if domain else []

    # -- columns and fits ---------------------------------------------------------------------

    def raw(self, key) -> np.ndarray:
        """A term's values at the points (unweighted)."""
        if isinstance(key, DomainTerm):
            return key.values(self.points.x)
        out = np.ones(self.n)
        for j, s in key:
            out = out * self.factors[j][:, s]
        return out

    def column(self, key) -> np.ndarray:
        """A term's values at the points, weighted."""
        column = self._columns.get(key)
        if column is None:
            column = self._columns[key] = self.w * self.raw(key)
        return column

    def basis(self, keys):
        """Orthonormal basis of the weighted model columns, and the residual it leaves."""
        if not keys:
            return None, self.b.copy()
        q, _ = np.linalg.qr(np.column_stack([self.column(k) for k in keys]))
        return q, self.b - q @ (q.T @ self.b)

    def fit(self, keys) -> Candidate | None:
        """Least squares at the points; None for a model its points cannot determine."""
        index = frozenset(keys)
        if index not in self.fitted:
            self.fitted[index] = self._fit(canonical(keys))
        return self.fitted[index]

    def _fit(self, keys) -> Candidate | None:
        if not keys or len(keys) > self.max_size:
            return None
        a = np.column_stack([self.column(k) for k in keys])
        norms = np.linalg.norm(a, axis=0)
        if np.any(norms == 0) or not np.all(np.isfinite(a)):
            return None
        q, r = np.linalg.qr(a / norms)
        if np.min(np.abs(np.diag(r))) < 1e-9:
            return None
        coefficients = np.linalg.solve(r, q.T @ self.b) / norms
        residual = self.b - q @ (q.T @ self.b)
        leverage = np.sum(q**2, axis=1)
        per_point = residual / np.sqrt(self.points.count)  # (mean − fit) / scale
        if np.any(leverage > 1 - 1e-9):
            return None
        loo = per_point / (1 - leverage)
        return Candidate(keys, coefficients, float(np.sqrt(np.mean(loo**2))), float(np.sqrt(np.mean(per_point**2))),
                         loo, self.penalty, self.floor)

    @staticmethod
    def gains(q, r: np.ndarray, columns: np.ndarray, total: np.ndarray | None = None) -> np.ndarray:
        """How much each column would lower the residual sum of squares if added to the model
        (``r`` is orthogonal to ``q``, so only the columns' part outside ``q`` counts)."""
        if total is None:
            total = np.einsum("ij,ij->j", columns, columns)
        rest = total - np.sum((q.T @ columns) ** 2, axis=0) if q is not None else total
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gain = (r @ columns) ** 2 / rest
        ok = np.isfinite(gain) & (rest > 1e-10 * total)
        return np.where(ok, gain, -np.inf)

    # -- the library: products of the shapes each input's slices need -------------------------

    def build_library(self) -> list:
        """Terms that are products of the shapes of :func:`shape_sets` (the best set of each
        input, widened by the runners-up while the library stays within the points)."""
        from costmodel.discover.slices import shape_sets

        ranked = [shape_sets(self.points.x, self.points.mean, self.errors == "relative", j, self.penalty)
                  for j in range(self.d)]
        best = [list(sets[0][0]) if sets else [] for sets in ranked]
        wide = [list(b) for b in best]
        for j, sets in enumerate(ranked):
            for shapes, _ in sets[1:]:
                extra = [s for s in shapes if s not in wide[j]]
                if len(wide[j]) + len(extra) <= POOL:
                    wide[j] += extra
        self.best_library = _products(best)
        self.library_keys = _products(wide)
        if len(self.library_keys) > LIBRARY_MAX:
            self.library_keys = self.best_library
        if self.library_keys:
            self.library_columns = np.column_stack([self.column(k) for k in self.library_keys])
            self.library_total = np.einsum("ij,ij->j", self.library_columns, self.library_columns)
        return self.library_keys

    def backward(self, keys: list) -> None:
        """Fit the whole library and drop the least significant term, repeatedly; every model
        on the way with at most ``max_size`` terms is a candidate."""
        keys = list(keys)
        while keys:
            if len(keys) <= self.max_size:
                self.fit(keys)
            if len(keys) == 1:
                return
            a = np.column_stack([self.column(k) for k in keys])
            a = a / np.linalg.norm(a, axis=0)
            q, r = np.linalg.qr(a)
            diagonal = np.abs(np.diag(r))
            if np.min(diagonal) < 1e-10:  # a column the others span: drop it first
                drop = [int(np.argmin(diagonal))]
            else:
                r_inv = np.linalg.inv(r)
                coefficients = r_inv @ (q.T @ self.b)
                t2 = coefficients**2 / np.sum(r_inv**2, axis=1)
                step = max(1, len(keys) // 8) if len(keys) > 2 * self.max_size else 1
                drop = list(np.argsort(t2, kind="stable")[:step])
            keys = [k for i, k in enumerate(keys) if i not in set(drop)]

    # -- proposing terms ----------------------------------------------------------------------

    def propose(self, keys, count: int = PROPOSALS, grow: bool = True) -> list:
        """The ``count`` terms not in ``keys`` that most lower its residual: from the library,
        the single-input factors, the constant and the domain shapes, and (``grow``) terms
        built input by input."""
        q, r = self.basis(keys)
        used = set(keys)
        found: dict = {}

        def offer(candidates, gains, best: int):
            for i in np.argsort(-gains, kind="stable")[:best + len(used)]:
                key = candidates[i]
                if np.isfinite(gains[i]) and key not in used and gains[i] > found.get(key, -np.inf):
                    found[key] = float(gains[i])

        gains = self.gains(q, r, self.singles, self.singles_total)
        offer(self.single_keys, gains, count)
        level = [self.single_keys[i] for i in np.argsort(-gains, kind="stable")[:TERM_BEAM] if np.isfinite(gains[i])]
        shapes = len(FACTOR_SHAPES)
        for _ in range(self.d - 1 if grow else 0):
            grown, blocks = [], []
            for key in level:
                base = self.column(key)
                inputs = {j for j, _ in key}
                for j in range(self.d):
                    if j not in inputs:
                        grown += [tuple(sorted(key + ((j, s),))) for s in range(shapes)]
                        blocks.append(base[:, None] * self.factors[j])
            if not grown:
                break
            grown_gains = self.gains(q, r, np.hstack(blocks))
            offer(grown, grown_gains, count)
            level = [grown[i] for i in np.argsort(-grown_gains, kind="stable")[:TERM_BEAM] if np.isfinite(grown_gains[i])]
        if self.library_keys:
            offer(self.library_keys, self.gains(q, r, self.library_columns, self.library_total), count)
        offer([()], self.gains(q, r, self.column(())[:, None]), 1)
        for candidates, columns, total in self.domain_columns:
            offer(candidates, self.gains(q, r, columns, total), 1)
        ranked = sorted(found.items(), key=lambda item: (-item[1], _weight(item[0]), _sort_key(item[0])))
        return [key for key, _ in ranked[:count]]

    def _domain_columns(self) -> list:
        """Each domain shape on each input at every threshold tried, weighted."""
        out = []
        for j in range(self.d):
            values = np.unique(self.points.x[:, j])
            for kind in DOMAIN_KINDS:
                tried, intervals = thresholds(kind, values)
                if len(tried):
                    terms = [DomainTerm(kind, j, float(t), i) for t, i in zip(tried, intervals)]
                    columns = self.w[:, None] * domain_values(kind, self.points.x[:, j], tried)
                    out.append((terms, columns, np.einsum("ij,ij->j", columns, columns)))
        return out

    def neighbour_columns(self, key):
        """Terms one step from a PMNF term (one factor changed, added or dropped), with their columns."""
        if isinstance(key, DomainTerm):
            return [], np.zeros((self.n, 0))
        keys, columns = [], []
        for j in range(self.d):
            rest = tuple(f for f in key if f[0] != j)
            base = self.column(rest)
            keys += [tuple(sorted(rest + ((j, s),))) for s in range(len(FACTOR_SHAPES))]
            columns.append(base[:, None] * self.factors[j])
            if len(rest) < len(key) and rest:
                keys.append(rest)
                columns.append(base[:, None])
        return keys, np.column_stack(columns)

    def best_pairs(self, count: int = MODEL_BEAM) -> list[tuple]:
        """The two-term models that fit best, by an exhaustive check of every pair of the
        library and of the strongest single terms (a greedy first term can be a blend of two)."""
        pool = list(dict.fromkeys(list(self.library_keys) + self.propose((), PAIR_POOL)))
        if len(pool) < 2:
            return []
        columns = np.column_stack([self.column(k) for k in pool])
        norms = np.linalg.norm(columns, axis=0)
        columns = columns / np.where(norms > 0, norms, 1)
        gram = columns.T @ columns
        g = columns.T @ self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = (g[:, None] ** 2 + g[None, :] ** 2 - 2 * g[:, None] * g[None, :] * gram) / (1 - gram**2)
        gain[np.tril_indices(len(pool))] = -np.inf
        gain[~np.isfinite(gain) | (np.abs(gram) > 1 - 1e-9)] = -np.inf
        flat = np.argsort(-gain, axis=None, kind="stable")[:count * 4]
        pairs = [canonical((pool[i], pool[j])) for i, j in zip(*np.unravel_index(flat, gain.shape)) if np.isfinite(gain[i, j])]
        return pairs

    # -- the search ---------------------------------------------------------------------------

    def run(self) -> list[Candidate]:
        """Every model fitted, best first."""
        self.build_library()
        if self.best_library and len(self.best_library) <= self.n - 2:
            self.backward(self.best_library)
        frontier = [()]
        for size in range(1, self.max_size + 1):
            children = {}
            if size == 2:
                for pair in self.best_pairs():
                    candidate = self.fit(pair)
                    if candidate is not None:
                        children[frozenset(pair)] = candidate
            for keys in frontier:
                for key in self.propose(keys):
                    child = canonical(keys + (key,))
                    candidate = self.fit(child)
                    if candidate is not None:
                        children[frozenset(child)] = candidate
            ranked = sorted(children.values(), key=lambda c: (c.cv, c.rank))
            frontier = [c.keys for c in ranked[:MODEL_BEAM]]
            if not frontier:
                break
        by_size: dict[int, list[Candidate]] = {}
        for candidate in self.candidates():
            by_size.setdefault(len(candidate.keys), []).append(candidate)
        for group in by_size.values():
            for candidate in group[:REFINED]:
                refined = self.refine(candidate)
                # a term may stand in for two: drop each in turn and refine what is left
                for key in refined.keys if len(refined.keys) > 1 else ():
                    smaller = self.fit(tuple(k for k in refined.keys if k != key))
                    if smaller is not None:
                        self.refine(smaller)
        return self.candidates()

    def candidates(self) -> list[Candidate]:
        return sorted((c for c in self.fitted.values() if c is not None and math.isfinite(c.cv)), key=lambda c: c.rank)

    def noise(self) -> tuple[float, int] | None:
        """The spread of the means that repeats alone explain (same units as ``cv``), and its
        degrees of freedom; None without repeats."""
        repeats = self.points.count - 1
        if not np.any(repeats > 0):
            return None
        pooled = float(np.sum(repeats * (self.points.sd / self.scale) ** 2) / np.sum(repeats))
        return math.sqrt(pooled * np.mean(1 / self.points.count)), int(np.sum(repeats))

    def refine(self, candidate: Candidate, sweeps: int = 6) -> Candidate:
        """Steepest descent: of all single-term replacements (a neighbour of the term, or a
        term proposed against the others), take the one that improves the score most; repeat."""
        current = candidate
        for _ in range(sweeps):
            best = current
            for key in current.keys:
                others = tuple(k for k in current.keys if k != key)
                q, r = self.basis(others)
                options, columns = self.neighbour_columns(key)
                chosen = []
                if options:
                    gains = self.gains(q, r, columns)
                    chosen = [options[i] for i in np.argsort(-gains, kind="stable")[:3] if np.isfinite(gains[i])]
                for option in dict.fromkeys(chosen + self.propose(others, 3, grow=False)):
                    if option in others or option == key:
                        continue
                    trial = self.fit(others + (option,))
                    if trial is not None and trial.rank < best.rank:
                        best = trial
            if best is current:
                break
            current = best
        return current

    def select(self, candidates: list[Candidate]) -> list[Candidate]:
        """Candidates in order of preference: by score (:attr:`Candidate.rank`)."""
        return sorted(candidates, key=lambda c: c.rank)


def penalty_for(points: int) -> float:
    """Share of cross-validated error one more parameter must buy with ``points`` configurations:
    two standard errors of an RMS error over them, √(2/n), and at least :data:`PENALTY`."""
    return max(PENALTY, math.sqrt(2 / points))


def _products(pools: list[list[int]]) -> list:
    """Every product of at most one shape per input from ``pools`` (the constant included)."""
    if not any(pools):
        return []
    choices = [[None] + list(pool) for pool in pools]
    out = []
    for combo in itertools.product(*choices):
        out.append(tuple((j, s) for j, s in enumerate(combo) if s is not None))
    return canonical(out)
