"""Counting each hugepage once: the union of the clusters' hugepage ranges.

Every cluster of shared memory c covers a range of hugepage indices ``[ℓ_c, h_c]``
(floors of its first and last byte over H). guest_memfd splits a hugepage once however
many clusters touch it (domain.md §4), so the split count is the size of the union of the
ranges. :class:`NewPages` is cluster j's share of that union: the hugepages of its range
that no cluster before it *in address order* covers. Two clusters are not contiguous but
spread (the remainder and transient pages, docs/placement.md §4.6–4.7): their share is
their density ``d`` (touched hugepages per hugepage of range) times the hugepages of
their range no contiguous cluster covers.

``ν_j`` is a function of the ranges, written with floors, minima and maxima of the
cluster bounds (a sort by ℓ and a running maximum of h); it is evaluated with NumPy
(:func:`new_pages`). In SymPy it is the opaque function :class:`NewPages`, printed as
``ν_j`` in formula cards.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

#: Clusters from this index on are spread (density-weighted), not contiguous.
SPREAD = "spread"


class NewPages(sp.Function):
    """``NewPages(j, n_contiguous, ℓ_0, h_0, w_0, …)``: hugepages cluster j adds to the union.

    Arguments after ``j`` and the number of contiguous clusters come in triples per cluster:
    first and last hugepage index and a weight (contiguous clusters: 1 when present, 0 when
    not; spread clusters: their density).
    """

    is_extended_real = True

    @classmethod
    def eval(cls, *args):
        return None  # never simplified symbolically

    def _latex(self, printer):
        return r"\nu_{%s}" % printer._print(self.args[0])

    def _sympystr(self, printer):
        return f"ν_{self.args[0]}"

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(f"ν_{self.args[0]}")


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
