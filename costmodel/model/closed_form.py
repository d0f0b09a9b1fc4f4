"""The closed-form model: SymPy symbols and expressions only (no numbers bound, no I/O).

Every named quantity of :mod:`costmodel.model.variables` that is an intermediate or an output is
defined here by one expression in terms of inputs, coefficients, switches and *earlier*
named quantities, so a formula card can show ``splits = …`` followed by ``where …`` lines,
and :meth:`CostModel.expand` can produce the fully substituted closed form for evaluation.

The structure, each line traceable to ``shared/domain.md``:

* The SWIOTLB pool S(M) is one contiguous block, 4 KiB-aligned: it touches ⌈S/H⌉ + δ
  hugepages (§3). Being fully shared does not spare a hugepage from splitting (§4).
* Every other source shares a few small *regions* (§3 table, :mod:`costmodel.model.sources`);
  together with a fitted remainder r they are n regions scattered over a placement span Z
  of guest-physical memory. n regions in B = min(M, Z)/H hugepages hit, in expectation,
  B·(1 − (1 − 1/B)^n) distinct hugepages (occupancy of bins). At 2 MiB that is ≈ n; at
  1 GiB the regions collapse into the few hugepages of the span, as the published 1 GiB
  numbers show (§2).
* A hugepage merges back only when all of it is private again (§4): the transient regions
  n_tr, scattered over their own span Z_tr, occupy the merged hugepages; the SWIOTLB
  block's hugepages stay shared and never merge.
* A split or merge costs a fixed part plus a part per 4 KiB sub-page (§2 [derived], §4).
* vmemmap: 64 B of struct page per 4 KiB; HVO keeps one 4 KiB vmemmap page per hugepage;
  a split restores the rest (§6).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import sympy as sp
from sympy.codegen.cfunctions import log2

from costmodel.model import sources
from costmodel.model.variables import BY_SYMBOL, symbol
from costmodel.units import PAGE_SIZE, GiB, KiB, MiB

#: struct page size [B] (Documentation/mm/vmemmap_dedup.rst).
STRUCT_PAGE_BYTES = 64
#: SWIOTLB default share of guest memory and clamp [B] [code] mem_encrypt_setup_arch().
SWIOTLB_SHARE = sp.Rational(6, 100)
SWIOTLB_MIN_BYTES = 64 * MiB
SWIOTLB_MAX_BYTES = 1 * GiB
#: Atomic pool: 128 KiB per GiB, clamp [128 KiB, 4 MiB] [code] dma_atomic_pool_init().
ATOMIC_POOL_PER_GIB = 128 * KiB
ATOMIC_POOL_MIN_BYTES = 128 * KiB
ATOMIC_POOL_MAX_BYTES = 4 * MiB


def swiotlb_rule(memory: sp.Expr) -> sp.Expr:
    """SWIOTLB pool size the kernel picks for a confidential guest of ``memory`` bytes. [B]

    6 % of memory, clamped to [64 MiB, 1 GiB], slab count rounded up to a power of two:
    ``mem_encrypt_setup_arch()`` and ``round_up_default_nslabs()`` (domain.md §3).
    """
    rounded = 2 ** sp.ceiling(log2(SWIOTLB_SHARE * memory))
    return sp.Min(SWIOTLB_MAX_BYTES, sp.Max(SWIOTLB_MIN_BYTES, rounded))


def atomic_pool_rule(memory: sp.Expr) -> sp.Expr:
    """Size of each atomic DMA pool for a guest of ``memory`` bytes. [B]"""
    per_memory = memory * ATOMIC_POOL_PER_GIB / GiB
    rounded = 2 ** sp.ceiling(log2(per_memory))
    return sp.Min(ATOMIC_POOL_MAX_BYTES, sp.Max(ATOMIC_POOL_MIN_BYTES, rounded))


def occupancy(regions: sp.Expr, bins: sp.Expr) -> sp.Expr:
    """Expected distinct bins hit by ``regions`` placed uniformly in ``bins`` bins. [1]"""
    return bins * (1 - (1 - 1 / bins) ** regions)


@dataclass(frozen=True)
class ModelForm:
    """Alternative structural choices the data can arbitrate between.

    ``percpu``: ``"span"`` — GHCB and per-CPU pages are packed (⌈u·N/H⌉ regions);
    ``"per_vcpu"`` — each vCPU's page is a region of its own (N regions each).
    ``rings``: ``"locality"`` — 1 + ρ(Q − 1) ring regions, ρ fitted;
    ``"one_per_ring"`` — every ring in a region of its own (Q regions).
    """

    percpu: str = "span"
    rings: str = "locality"


FORMS: dict[str, ModelForm] = {
    "default": ModelForm(),
    "per-vcpu": ModelForm(percpu="per_vcpu"),
    "no-ring-locality": ModelForm(rings="one_per_ring"),
    "per-vcpu-no-ring-locality": ModelForm(percpu="per_vcpu", rings="one_per_ring"),
}


def _s(name: str) -> sp.Symbol:
    return symbol(name)


class CostModel:
    """The named expressions of one model form.

    Parameters
    ----------
    form : str
        A key of :data:`FORMS`.
    """

    def __init__(self, form: str = "default"):
        if form not in FORMS:
            from costmodel.errors import InputError, closest

            raise InputError("model form", form, "one of " + ", ".join(closest(form, FORMS)))
        self.form_name = form
        self.form = FORMS[form]

    @cached_property
    def definitions(self) -> dict[str, sp.Expr]:
        """Each intermediate and output, by name, in dependency order."""
        M, N, Q, H, sigma, S = (_s(n) for n in (
            "memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "is_snp", "swiotlb_bytes"))
        P, hS, n, B, Btr, E = (_s(n) for n in (
            "atomic_pool_bytes", "swiotlb_hugepages", "small_regions", "placement_hugepages",
            "transient_hugepages", "split_merge_event_cycles"))
        s, m, C, Ysm, Y, D = (_s(n) for n in (
            "splits", "merges", "conversion_ops", "split_merge_cycles", "conversion_cycles",
            "shared_bytes"))
        Vsp, Vpl, psi, lam = (_s(n) for n in (
            "vmemmap_structpage_bytes", "vmemmap_pageless_bytes", "promotion", "pageless"))
        c = {name: _s(name) for name in (
            "remainder_regions", "placement_span_bytes", "transient_regions",
            "transient_span_bytes", "swiotlb_misalignment", "split_fixed_cycles",
            "split_subpage_cycles", "vmemmap_cycle_share", "conversion_ops_fixed",
            "conversion_ops_per_gib", "conversion_op_cycles")}
        huge = H > PAGE_SIZE  # 4 KiB "hugepages" are plain pages: nothing splits
        hvo_kept = sp.Min(H / STRUCT_PAGE_BYTES, PAGE_SIZE)  # vmemmap kept per hugepage

        d: dict[str, sp.Expr] = {}
        d["atomic_pool_bytes"] = atomic_pool_rule(M)
        d["swiotlb_hugepages"] = sp.ceiling(S / H) + c["swiotlb_misalignment"]
        for src in sources.SOURCES:
            d[src.name] = src.regions(self.form)
        d["small_regions"] = sp.Add(*(_s(src.name) for src in sources.SOURCES)) + c["remainder_regions"]
        d["placement_hugepages"] = sp.Max(1, sp.Min(M, c["placement_span_bytes"]) / H)
        d["transient_hugepages"] = sp.Max(1, sp.Min(M, c["transient_span_bytes"]) / H)
        d["splits"] = sp.Piecewise(
            (sp.Min(sp.ceiling(M / H), hS + occupancy(n, B)), huge), (0, True))
        # the SWIOTLB block stays shared for the guest's life: its hugepages never merge
        d["merges"] = sp.Piecewise(
            (sp.Min(sp.Max(0, s - hS), occupancy(c["transient_regions"], Btr)), huge), (0, True))
        d["split_merge_event_cycles"] = c["split_fixed_cycles"] + c["split_subpage_cycles"] * (
            1 - lam * c["vmemmap_cycle_share"]) * H / PAGE_SIZE
        d["split_merge_cycles"] = (s + m) * E
        d["conversion_ops"] = c["conversion_ops_fixed"] + c["conversion_ops_per_gib"] * M / GiB
        d["conversion_cycles"] = c["conversion_op_cycles"] * C + Ysm
        d["split_merge_share"] = Ysm / Y
        d["shared_bytes"] = S + sources.ATOMIC_POOL_COUNT * P + PAGE_SIZE * sources.shared_pages(self.form)
        d["vmemmap_unsplit_bytes"] = (M / H) * hvo_kept
        d["vmemmap_structpage_bytes"] = _s("vmemmap_unsplit_bytes") + (s - m) * (H / STRUCT_PAGE_BYTES - hvo_kept)
        d["vmemmap_pageless_bytes"] = D / STRUCT_PAGE_BYTES
        d["vmemmap_bytes"] = (1 - lam) * Vsp + lam * Vpl
        d["pageless_saving_bytes"] = Vsp - Vpl
        d["huge_mapped_fraction"] = sp.Piecewise(
            (sp.Max(0, 1 - (s - psi * m) * H / M), huge), (0, True))
        return d

    def expand(self, name_or_expr, overrides: dict[str, sp.Expr] | None = None) -> sp.Expr:
        """The closed form in inputs, coefficients and switches only.

        ``overrides`` replace named quantities before expansion (this is how scenarios are
        substitutions on the same expressions): an intermediate's definition, or a value
        or expression for a coefficient or switch.
        """
        overrides = overrides or {}
        bound = self._bound(overrides)
        definitions = self.definitions_under(overrides)
        # the expansion itself is pure substitution, done without evaluation: SymPy would
        # otherwise re-simplify every Min/Max it rebuilds (≈1 s per expansion)
        expanded: dict[sp.Symbol, sp.Expr] = {}
        with sp.evaluate(False):
            for name, expr in definitions.items():
                expanded[_s(name)] = expr.xreplace(expanded)
        if isinstance(name_or_expr, str):
            return expanded.get(_s(name_or_expr), _s(name_or_expr))
        expr = sp.sympify(name_or_expr).xreplace(bound)
        with sp.evaluate(False):
            return expr.xreplace(expanded)

    def _bound(self, overrides: dict[str, sp.Expr]) -> dict[sp.Symbol, sp.Expr]:
        """Overrides of coefficients and switches, as a substitution."""
        return {_s(k): sp.sympify(v) for k, v in overrides.items() if k not in self.definitions}

    def definitions_under(self, overrides: dict[str, sp.Expr] | None = None) -> dict[str, sp.Expr]:
        """:attr:`definitions` with a scenario's ``overrides`` applied (see :meth:`expand`).

        Switches and coefficient overrides are substituted once, simultaneously, into each
        (small) definition with evaluation on, so terms like (1 − 0·φ) vanish and an
        override that mentions its own symbol (δ → Piecewise((0, H ≤ 2 MiB), (δ, True)))
        is not substituted into itself.
        """
        overrides = overrides or {}
        bound = self._bound(overrides)
        return {name: sp.sympify(overrides.get(name, expr)).xreplace(bound) for name, expr in self.definitions.items()}

    def where(self, name: str, definitions: dict[str, sp.Expr] | None = None) -> list[str]:
        """Named intermediates that ``name``'s definition uses, directly or not, in order.

        ``definitions`` replaces :attr:`definitions` (e.g. with a scenario's substitutions
        applied, where some intermediates drop out).
        """
        definitions = self.definitions if definitions is None else definitions
        used: set[str] = set()

        def visit(n: str):
            for sym in definitions[n].free_symbols:
                other = BY_SYMBOL[sym].name
                if other in definitions and other not in used:
                    used.add(other)
                    visit(other)

        visit(name)
        return [n for n in definitions if n in used]

    def splits_by_source(self) -> dict[str, sp.Expr]:
        """Splits attributed to each source, summing to :data:`splits`. [1]

        SWIOTLB gets its ⌈S/H⌉ + δ; the scattered sources share the occupancy term in
        proportion to their region counts.
        """
        H, n, B, hS, s = (_s(x) for x in (
            "hugepage_bytes", "small_regions", "placement_hugepages", "swiotlb_hugepages", "splits"))
        scattered = occupancy(n, B)
        scale = s / (hS + scattered)  # 1 unless ⌈M/H⌉ caps the total
        parts = {"swiotlb": hS * scale}
        for src in sources.SOURCES:
            parts[src.name] = scattered * _s(src.name) / n * scale
        parts["remainder_regions"] = scattered * _s("remainder_regions") / n * scale
        return parts

    def __repr__(self) -> str:
        return f"CostModel(form={self.form_name!r})"


@lru_cache(maxsize=None)
def model_for(form: str = "default") -> CostModel:
    """The one :class:`CostModel` of ``form`` in this process: its definitions are built
    once (~20 ms of SymPy) and never change, so every caller can share them."""
    return CostModel(form)
