"""The NumPy value of the union (:class:`costmodel.model.union.NewPages`): per cluster,
the hugepages of its range no earlier cluster covers.

SymPy-free, so the compiled model (:mod:`costmodel.compiled`) runs from its cached program
with NumPy alone; :mod:`costmodel.model.union` documents the rule and holds the symbol.
"""

from __future__ import annotations

import numpy as np

_LAST: dict = {"key": None, "value": None, "refs": None}


def _union(contiguous: int, args: tuple) -> np.ndarray:
    """Per-cluster new hugepages, shape (rows, clusters)."""
    k = len(args) // 3
    arrays = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in args])
    shape = arrays[0].shape
    flat = [a.reshape(-1) for a in arrays]
    n = flat[0].size
    lo = np.stack(flat[0::3], axis=1)
    hi = np.stack(flat[1::3], axis=1)
    weight = np.stack(flat[2::3], axis=1)
    out = np.zeros((n, k))
    # contiguous clusters: sort by first hugepage, count what lies above the running maximum
    clo, chi, cw = lo[:, :contiguous], hi[:, :contiguous], weight[:, :contiguous]
    present = (cw > 0) & (chi >= clo)
    clo = np.where(present, clo, np.inf)
    chi = np.where(present, chi, -np.inf)
    order = np.argsort(clo, axis=1, kind="stable")
    slo = np.take_along_axis(clo, order, axis=1)
    shi = np.take_along_axis(chi, order, axis=1)
    reach = np.maximum.accumulate(shi, axis=1)
    before = np.concatenate([np.full((n, 1), -np.inf), reach[:, :-1]], axis=1)
    start = np.maximum(slo, before + 1)  # first hugepage of the cluster no earlier one covers
    with np.errstate(invalid="ignore"):
        gained = np.where(np.isfinite(slo), np.maximum(0.0, shi - start + 1), 0.0)
    np.put_along_axis(out[:, :contiguous], order, gained, axis=1)

    def covered(first, last):
        """Hugepages of [first, last] the contiguous clusters cover (their disjoint new parts)."""
        with np.errstate(invalid="ignore"):
            parts = np.minimum(shi, last[:, None]) - np.maximum(start, first[:, None]) + 1
        return np.where((gained > 0) & (parts > 0), parts, 0.0).sum(axis=1)

    spread = list(range(contiguous, k))
    free = {}
    for j in spread:
        first, last, density = lo[:, j], hi[:, j], np.clip(weight[:, j], 0.0, 1.0)
        size = np.maximum(0.0, last - first + 1)
        free[j] = np.where(size > 0, size - covered(first, last), 0.0)
        share = density * free[j]
        for i in spread[: spread.index(j)]:  # an earlier spread cluster takes its density of the overlap
            first_i, last_i = lo[:, i], hi[:, i]
            a, b = np.maximum(first, first_i), np.minimum(last, last_i)
            overlap = np.where(b >= a, (b - a + 1) - covered(a, b), 0.0)
            share -= density * np.clip(weight[:, i], 0.0, 1.0) * overlap
        out[:, j] = np.maximum(0.0, share)
    return out.reshape(shape + (k,))


def new_pages(j, contiguous, *args):
    """NumPy value of :class:`NewPages` (the union is computed once per set of arguments)."""
    key = (int(contiguous),) + tuple(id(a) for a in args)
    if _LAST["key"] != key:
        _LAST["value"] = _union(int(contiguous), args)
        _LAST["key"], _LAST["refs"] = key, args  # the references keep the ids from being reused
    return _LAST["value"][..., int(j)]
