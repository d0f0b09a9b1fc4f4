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

import sympy as sp

from costmodel.model.union_values import new_pages  # noqa: F401 - the NumPy value, re-exported

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
