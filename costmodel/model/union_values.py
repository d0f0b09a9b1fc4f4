"""The NumPy value of the union (:class:`costmodel.model.union.NewPages`): per cluster,
the hugepages of its range no earlier cluster covers.

SymPy-free, so the compiled model (:mod:`costmodel.compiled`) runs from its cached program
with NumPy alone; :mod:`costmodel.model.union` documents the rule and holds the symbol.

The work is in two parts. :func:`_coverage` does the interval arithmetic (sorting the
contiguous clusters by first hugepage, the running maximum of their last one, what each
spread range keeps outside them and shares with earlier spread ranges); it reads the ranges
and the contiguous clusters' weights, never the spread clusters' densities. :func:`_weighted`
then weights the spread clusters' hugepages by their densities. A fit moves the densities
(``remainder_regions``, ``transient_regions``) and nothing else the union reads, so
:func:`new_pages` keeps the last few coverages, keyed by the identity of the arrays they
were computed from, and redoes only the weighting (the same operations, in the same order:
the values are bit for bit those of one computation).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

#: Coverages kept (a fit evaluates one set of ranges, repeated for a few batch sizes).
KEEP = 4


@dataclass(frozen=True)
class Coverage:
    """The union's interval arithmetic for ``rows`` configurations of ``clusters`` clusters,
    the first ``contiguous`` contiguous, the rest spread. [hugepages]"""

    shape: tuple  # the broadcast shape of the arguments
    clusters: int
    contiguous: int
    gained: tuple  # new hugepages of each contiguous cluster, each of ``shape``
    free: np.ndarray  # (spread, rows): hugepages of each spread range no contiguous cluster covers
    overlap: np.ndarray  # (spread, spread, rows): [j, i] of i < j, their shared hugepages outside those


def _coverage(contiguous: int, args: tuple) -> Coverage:
    """The part of the union that does not read the spread clusters' densities."""
    k = len(args) // 3
    arrays = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in args])
    shape = arrays[0].shape
    flat = [a.reshape(-1) for a in arrays]
    n = flat[0].size
    lo = np.stack(flat[0::3], axis=1)
    hi = np.stack(flat[1::3], axis=1)
    weight = np.stack(flat[2:3 * contiguous:3], axis=1) if contiguous else np.zeros((n, 0))
    gained_out = np.zeros((n, contiguous))
    # contiguous clusters: sort by first hugepage, count what lies above the running maximum
    clo, chi = lo[:, :contiguous], hi[:, :contiguous]
    present = (weight > 0) & (chi >= clo)
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
    np.put_along_axis(gained_out, order, gained, axis=1)

    def covered(first, last):
        """Hugepages of [first, last] the contiguous clusters cover (their disjoint new parts)."""
        with np.errstate(invalid="ignore"):
            parts = np.minimum(shi, last[:, None]) - np.maximum(start, first[:, None]) + 1
        return np.where((gained > 0) & (parts > 0), parts, 0.0).sum(axis=1)

    spread = k - contiguous
    free = np.zeros((spread, n))
    overlap = np.zeros((spread, spread, n))
    for s in range(spread):
        first, last = lo[:, contiguous + s], hi[:, contiguous + s]
        size = np.maximum(0.0, last - first + 1)
        free[s] = np.where(size > 0, size - covered(first, last), 0.0)
        for i in range(s):  # an earlier spread cluster takes its density of the overlap
            a = np.maximum(first, lo[:, contiguous + i])
            b = np.minimum(last, hi[:, contiguous + i])
            overlap[s, i] = np.where(b >= a, (b - a + 1) - covered(a, b), 0.0)
    return Coverage(shape, k, contiguous, tuple(g.reshape(shape) for g in gained_out.T.copy()), free, overlap)


def _flat(value, shape: tuple) -> np.ndarray:
    """``value`` as floats broadcast to ``shape``, flattened."""
    array = np.asarray(value, dtype=float)
    return (array if array.shape == shape else np.broadcast_to(array, shape)).reshape(-1)


def _weighted(coverage: Coverage, args: tuple) -> tuple:
    """Per-cluster new hugepages, each of the arguments' shape."""
    density = [np.clip(_flat(w, coverage.shape), 0.0, 1.0) for w in args[3 * coverage.contiguous + 2::3]]
    shares = []
    for s, d in enumerate(density):
        share = d * coverage.free[s]
        for i in range(s):
            share -= d * density[i] * coverage.overlap[s, i]
        shares.append(np.maximum(0.0, share).reshape(coverage.shape))
    return coverage.gained + tuple(shares)


def _union(contiguous: int, args: tuple) -> np.ndarray:
    """Per-cluster new hugepages, shape (rows, clusters)."""
    return np.stack(_weighted(_coverage(contiguous, args), args), axis=-1)


def _same(args: tuple, refs: tuple) -> bool:
    return len(args) == len(refs) and all(map(operator.is_, args, refs))


class _Memo:
    """The last union value, and the last few coverages, by the identity of their arguments
    (the references are kept, so an identity is never reused while it is a key)."""

    def __init__(self):
        self.last: tuple = (None, (), None)  # contiguous, arguments, value
        self.coverages: list[tuple[int, tuple, tuple, Coverage]] = []  # contiguous, ranges, densities' shapes

    def union(self, contiguous: int, args: tuple) -> tuple:
        if self.last[0] == contiguous and _same(args, self.last[1]):
            return self.last[2]
        ranges = args[:3 * contiguous] + tuple(a for i, a in enumerate(args[3 * contiguous:]) if i % 3 != 2)
        shapes = tuple(np.shape(w) for w in args[3 * contiguous + 2::3])
        for c, refs, densities, coverage in self.coverages:
            if c == contiguous and densities == shapes and _same(ranges, refs):
                break
        else:
            coverage = _coverage(contiguous, args)
            self.coverages = [(contiguous, ranges, shapes, coverage)] + self.coverages[:KEEP - 1]
        value = _weighted(coverage, args)
        self.last = (contiguous, args, value)
        return value


_MEMO = _Memo()


def new_pages(j, contiguous, *args):
    """NumPy value of :class:`NewPages` (the union is computed once per set of arguments)."""
    return _MEMO.union(int(contiguous), args)[int(j)]
