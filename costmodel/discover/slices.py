"""Which shapes of one input the measurements need, read from slices of the grid.

Fix every input but one, ``x``: the measurements along ``x`` (a *slice*) follow
``c₀ + Σ c_s · s(x)`` for the shapes ``s`` of ``x`` that occur in any term of the formula,
with coefficients that depend on the fixed inputs (the terms without ``x`` fold into
``c₀``). So the set of shapes of ``x`` is the set under which every slice is a linear
combination: :func:`shape_sets` tries every set of up to three shapes at once on all
slices (each slice with its own coefficients) and ranks them by leave-one-out error,
summed over the slices, with the same parameter penalty as the search. The terms of the
formula are then products of these shapes across inputs (:mod:`costmodel.discover.search`).

Slices need several measured values of ``x`` at one setting of the other inputs, as a
grid of experiments has; inputs without such slices get no shape set, and the search
falls back to building terms against the residual.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from costmodel.discover.space import FACTOR_SHAPES, Factor

#: Shapes of one input tried together in a slice (the formula has at most three terms).
MAX_SHAPES = 3
#: Leave-one-out errors below this count as exact: the Gram form of the residuals loses
#: half the digits of float64, so 1e-6 of the slices' scale is rounding, not misfit.
FLOOR = 1e-6
#: Subsets scored per batch (bounds memory).
BATCH = 8192


@lru_cache(maxsize=None)
def subsets(size: int) -> np.ndarray:
    """Every set of ``size`` shape indices, one row each."""
    return np.array(list(itertools.combinations(range(len(FACTOR_SHAPES)), size)), dtype=np.intp).reshape(-1, size)


def _slices(x: np.ndarray, j: int) -> dict[tuple, list[np.ndarray]]:
    """Indices of the points of each slice along input ``j``, grouped by the slice's values of ``j``."""
    others = np.delete(x, j, axis=1)
    if others.shape[1]:
        _, group = np.unique(others, axis=0, return_inverse=True)
        group = group.reshape(-1)
    else:
        group = np.zeros(len(x), dtype=int)
    patterns: dict[tuple, list[np.ndarray]] = {}
    for g in np.unique(group):
        members = np.flatnonzero(group == g)
        members = members[np.argsort(x[members, j], kind="stable")]
        patterns.setdefault(tuple(x[members, j]), []).append(members)
    return patterns


def shape_sets(x: np.ndarray, mean: np.ndarray, relative: bool, j: int, penalty: float, keep: int = 6) -> list[tuple[tuple[int, ...], float]]:
    """The ``keep`` best sets of shapes of input ``j`` (indices into ``FACTOR_SHAPES``), best
    first, with their penalised leave-one-out error; empty when there are no slices."""
    press = {size: np.zeros(len(subsets(size))) for size in range(1, MAX_SHAPES + 1)}
    points = dict.fromkeys(press, 0)
    for values, members in _slices(x, j).items():
        m = len(values)
        if m < 3 or len(set(values)) < m:
            continue
        y = np.column_stack([mean[idx] for idx in members])  # m × slices
        # one weight per position: relative errors, taking the slices as alike in shape
        weight = 1 / np.exp(np.mean(np.log(np.abs(y)), axis=1)) if relative else np.ones(m)
        yw = weight[:, None] * y
        norms = np.linalg.norm(yw, axis=0)
        yw = yw[:, norms > 0] / norms[norms > 0]
        if not yw.shape[1]:
            continue
        gram = yw @ yw.T
        column = np.array(values, dtype=float)[:, None]
        shapes = weight[:, None] * np.column_stack([Factor(0, i, k).values(column) for i, k in FACTOR_SHAPES])
        constant = weight / np.linalg.norm(weight)
        shapes = shapes / np.linalg.norm(shapes, axis=0)
        for size in press:
            if m < size + 2:
                continue
            combos = subsets(size)
            for start in range(0, len(combos), BATCH):
                chunk = combos[start:start + BATCH]
                design = np.concatenate([np.broadcast_to(constant[None, :, None], (len(chunk), m, 1)),
                                         np.transpose(shapes[:, chunk], (1, 0, 2))], axis=2)
                press[size][start:start + len(chunk)] += _press(design, gram)
            points[size] += m * yw.shape[1]
    ranked = []
    for size, values in press.items():
        if not points[size]:
            continue
        cv = np.sqrt(np.clip(values, 0, None) / points[size])
        score = np.maximum(cv, FLOOR) * (1 + penalty * size)
        best = np.argsort(score, kind="stable")[:keep]
        ranked += [(tuple(int(s) for s in subsets(size)[b]), float(score[b])) for b in best if np.isfinite(score[b])]
    ranked.sort(key=lambda item: (item[1], len(item[0]), item[0]))
    return ranked[:keep]


def _press(design: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """Leave-one-out sum of squares of each design over all slices, from their Gram matrix
    (``gram = Y Yᵀ``, so the cost does not grow with the number of slices); inf when a
    design is degenerate or a point determines its own fit."""
    q, r = np.linalg.qr(design)
    diagonal = np.abs(np.diagonal(r, axis1=1, axis2=2))
    leverage = np.sum(q**2, axis=2)
    m = design.shape[1]
    residual_maker = np.eye(m)[None] - q @ np.transpose(q, (0, 2, 1))
    spread = np.einsum("cij,jk,cik->ci", residual_maker, gram, residual_maker)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sum(spread / (1 - leverage) ** 2, axis=1)
    bad = (np.min(diagonal, axis=1) < 1e-9) | np.any(leverage > 1 - 1e-9, axis=1) | ~np.isfinite(out)
    return np.where(bad, np.inf, out)
