"""The closed-form model: SymPy symbols and expressions only (no numbers bound, no I/O).

Every named quantity of :mod:`costmodel.model.variables` that is an intermediate or an
output is defined here by one expression in terms of inputs, coefficients, switches and
*earlier* named quantities, so a formula card can show ``splits = …`` followed by
``where …`` lines, and :meth:`CostModel.expand` gives the fully substituted closed form for
evaluation. The structure follows docs/placement.md, each rule traceable to domain.md:

* **Layout** (§3): q35 keeps L bytes below 4 GiB; NUMA node i's RAM ends at e_i; its
  memblock stack (memmap, the 2 MiB-aligned per-CPU group G_i, SNP's GHCB slots below it)
  sits at its top T_i, below the firmware's reservation for the node ending at L.
* **Placement** (§4): the SWIOTLB block ends at X_S (the lowest memblock allocation at the
  top of low RAM); the atomic pools are naturally aligned blocks below the tops of ZONE_DMA,
  node 0's DMA32 memory and node 0's free memory; the small coherent allocations (device
  queues, messages) pack below the kernel pool; unexplained pages spread over low RAM,
  transient pages over the first Z_tr of RAM above 4 GiB.
* **Counting** (§5): each cluster covers the hugepages ⌊first byte/H⌋ … ⌊last byte/H⌋;
  guest_memfd splits each hugepage once, so splits are the union of the ranges
  (:mod:`costmodel.model.union`); KASLR's random image slot adds the chance that
  ``.bss..decrypted`` lands in a hugepage no cluster split. Transient-only hugepages merge.
* **Cost** (§2, §5, §9): a split or merge costs a fixed part plus a part per 4 KiB
  sub-page; conversion operations are the requests the sources make plus a fitted rest.
* **Footprint** (§6): vmemmap with HVO, restored by splits; struct page-less alternative.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import sympy as sp

from costmodel.errors import InputError, closest
from costmodel.model.forms import FORMS, ModelForm  # noqa: F401 - ModelForm re-exported
from costmodel.model.functions import Where, log2
from costmodel.model.runtime import boot_merges, runtime_definitions
from costmodel.model.union import NewPages
from costmodel.model.variables import BY_SYMBOL, CLUSTERS, NODES, symbol
from costmodel.units import PAGE_SIZE, GiB, KiB, MiB

#: struct page size [B] (Documentation/mm/vmemmap_dedup.rst).
STRUCT_PAGE_BYTES = 64
#: The firmware's end inside its last 2 MiB (any page strictly inside gives the same counts,
#: docs/placement.md §3), and the room memblock leaves below the SWIOTLB [B].
FIRMWARE_JITTER = PAGE_SIZE
SWIOTLB_FLOOR = 128 * MiB
FOUR_GIB = 4 * GiB
ZONE_DMA_END = 16 * MiB
KERNEL_LOAD = 16 * MiB
PMD = 2 * MiB


def _s(name: str) -> sp.Symbol:
    return symbol(name)


def pow2ceil(x: sp.Expr) -> sp.Expr:
    """Smallest power of two ≥ x (x ≥ 1)."""
    return 2 ** sp.ceiling(log2(x))


def swiotlb_rule(memory: sp.Expr, cpus: sp.Expr, request: sp.Expr = 0) -> sp.Expr:
    """SWIOTLB size the kernel picks for a confidential guest, before placement. [B]

    ``clamp(6 % of memory, 64 MiB, 1 GiB)`` (or ``swiotlb=``) in 2 KiB slabs, at least 128
    slabs per area with an area per possible CPU rounded to a power of two, the slab count
    rounded up to a power of two (domain.md §3, §9; docs/placement.md §2).
    """
    wanted = Where(request > 0, request, sp.Min(GiB, sp.Max(64 * MiB, sp.Rational(6, 100) * memory)))
    segment = 128 * 2 * KiB
    return pow2ceil(sp.Max(segment * sp.ceiling(wanted / segment), segment * pow2ceil(cpus)))


def atomic_pool_rule(totalram: sp.Expr) -> sp.Expr:
    """Size of each atomic DMA pool for ``totalram`` bytes of managed RAM. [B]"""
    pages = 128 * KiB * totalram / GiB / PAGE_SIZE
    return sp.Min(4 * MiB, sp.Max(128 * KiB, PAGE_SIZE * pow2ceil(pages)))


def _pages(first: sp.Expr, end: sp.Expr, H: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Hugepage indices of the first and last byte of [first, end)."""
    return sp.floor(first / H), sp.floor((end - 1) / H)


def _when(condition, value, otherwise=sp.oo):
    return Where(condition, value, otherwise)


CONTIGUOUS = len(CLUSTERS) - 2


class CostModel:
    """The named expressions of one model form.

    Parameters
    ----------
    form : str
        A key of :data:`FORMS`.
    """

    def __init__(self, form: str = "default"):
        if form not in FORMS:
            raise InputError("model form", form, "one of " + ", ".join(closest(form, FORMS)))
        self.form_name = form
        self.form = FORMS[form]

    @cached_property
    def definitions(self) -> dict[str, sp.Expr]:
        """Each intermediate and output, by name, in dependency order.

        Built without SymPy's automatic evaluation: Min, Max and floor would otherwise try to
        decide every comparison between addresses symbolically (a second of assumptions
        queries, and nothing gained: the values are only known per shape).
        """
        with sp.evaluate(False):
            return self._build()

    def _build(self) -> dict[str, sp.Expr]:
        M, N, K, L, H, sigma = (_s(n) for n in ("memory_bytes", "vcpus", "numa_nodes", "lowmem_bytes",
                                                 "hugepage_bytes", "is_snp"))
        S_req, D_dev, A_dev, upsilon, kappa, svsm, pi = (_s(n) for n in (
            "swiotlb_request_bytes", "device_bytes", "device_allocations", "percpu_units_per_atom", "kaslr", "svsm",
            "atomic_pools"))
        psi, lam, chi = _s("promotion"), _s("pageless"), _s("pooling")
        c = {n: _s(n) for n in ("remainder_regions", "transient_regions", "transient_span_bytes",
                                "firmware_reserved_bytes", "kernel_bss_offset_bytes", "kernel_image_bytes",
                                "split_fixed_cycles", "split_subpage_cycles", "vmemmap_cycle_share",
                                "conversion_ops_fixed", "conversion_op_cycles", "tdx_4k_mapped_hugepages")}
        S, P, m, u, g, W = (_s(n) for n in ("swiotlb_bytes", "atomic_pool_bytes", "node_memory_bytes",
                                            "percpu_unit_bytes", "ghcb_slot_bytes", "coherent_bytes"))
        X_S, X_32, X_K, a_32, X_C, X_R, X_T, Z_T = (_s(n) for n in (
            "swiotlb_end_bytes", "dma32_top_bytes", "kernel_pool_top_bytes", "dma32_pool_bytes",
            "coherent_top_bytes", "remainder_top_bytes", "transient_base_bytes", "transient_span_ram_bytes"))
        e = [_s(f"node_end_bytes_{i}") for i in range(NODES)]
        Ni = [_s(f"node_cpus_{i}") for i in range(NODES)]

        G = [_s(f"percpu_group_bytes_{i}") for i in range(NODES)]
        b = [_s(f"node_stack_bytes_{i}") for i in range(NODES)]
        U, U_tr, E, C_src, B_RAM = (_s(n) for n in ("permanent_hugepages", "transient_hugepages",
                                                     "split_merge_event_cycles", "source_conversion_ops",
                                                     "ram_hugepages"))
        s, m_merge, C, Ysm, Y, D = (_s(n) for n in ("splits", "merges", "conversion_ops", "split_merge_cycles",
                                                     "conversion_cycles", "shared_bytes"))
        Vsp, Vpl = _s("vmemmap_structpage_bytes"), _s("vmemmap_pageless_bytes")
        huge = H > PAGE_SIZE  # 4 KiB "hugepages" are plain pages: nothing splits
        F = PMD * sp.ceiling(c["firmware_reserved_bytes"] / PMD)  # the reservation in whole 2 MiB pages
        tdx = 1 - sigma
        pi_K = _s("kernel_pool")
        pools = 2 * pi + pi_K  # the DMA and DMA32 pools always, the kernel pool with RAM above 4 GiB

        d: dict[str, sp.Expr] = {}
        # --- layout (docs/placement.md §3) ---------------------------------------------------
        d["node_memory_bytes"] = 8 * MiB * sp.floor(M / (8 * MiB * K))
        d["percpu_unit_bytes"] = PMD / upsilon
        d["ghcb_slot_bytes"] = 12 * KiB + 4 * KiB * svsm
        for i in range(NODES):
            d.update({f"{family}_{i}": expr for family, expr in self.node(i).items()})
        # --- placement (§4) ------------------------------------------------------------------
        end = L - F - FIRMWARE_JITTER
        for i in reversed(range(NODES)):  # below the stack of the node whose RAM ends at L, if one does
            end = Where(sp.Eq(e[i], L) & (K > i), b[i], end)
        d["swiotlb_end_bytes"] = end
        rule = swiotlb_rule(M, N, S_req)
        room = sp.Max(X_S - SWIOTLB_FLOOR, MiB)
        d["swiotlb_bytes"] = rule / 2 ** sp.Max(0, sp.ceiling(log2(rule / room)))
        memmaps = sum(Where(K > i, sp.ceiling((e[i] - (e[i - 1] if i else 0)) / (128 * MiB)) * PMD, 0)
                      for i in range(NODES))
        # the GFP_KERNEL pool only when ZONE_NORMAL has memory [code, kernel/dma/pool.c
        # dma_atomic_pool_init(): has_managed_zone(ZONE_NORMAL)]
        d["kernel_pool"] = Where(M > L, pi, 0)
        d["atomic_pool_bytes"] = atomic_pool_rule(M - S - memmaps - F - c["kernel_image_bytes"])
        d["dma32_top_bytes"] = Where(e[0] >= L, X_S - S, b[0])
        d["dma32_pool_bytes"] = P * sp.floor((X_32 - P) / P)
        d["kernel_pool_top_bytes"] = Where(e[0] > L, b[0], Where(pi > 0, a_32, X_32))
        d["coherent_top_bytes"] = Where(pi_K > 0, P * sp.floor((X_K - P) / P), X_K)
        kvmclock = Where(N > 64, PAGE_SIZE * sp.ceiling(64 * (N - 64) / PAGE_SIZE), 0)
        d["coherent_bytes"] = D_dev + sigma * (2 * PAGE_SIZE + kvmclock) + tdx * 8 * KiB
        d["remainder_top_bytes"] = sp.Min(
            X_S - S, _when(pi > 0, a_32), _when(e[0] <= L, X_C - W),
            *[_when((e[i] < L) & (K > i), b[i]) for i in range(NODES)])
        d["transient_base_bytes"] = Where(M > L, FOUR_GIB, ZONE_DMA_END)
        d["transient_span_ram_bytes"] = Where(M > L, sp.Min(c["transient_span_bytes"], M - L), sp.Min(c["transient_span_bytes"], L - ZONE_DMA_END))
        d["ram_hugepages"] = M / H
        # --- the clusters and their union (§5) -----------------------------------------------
        pooled_end = PMD * sp.floor(X_S / PMD)  # guest pooling: a 2 MiB-aligned SWIOTLB
        swiotlb_end = Where(chi > 0, pooled_end, X_S)
        coherent_lo = Where(chi > 0, PMD * sp.floor(X_C / PMD) - PMD * sp.ceiling((W + pi_K * P) / PMD), X_C - W)
        coherent_end = Where(chi > 0, PMD * sp.floor(X_C / PMD), X_C + pi_K * P)
        bss = KERNEL_LOAD + c["kernel_bss_offset_bytes"]
        ranges = [
            (*_pages(swiotlb_end - S, swiotlb_end, H), 1),
            (*_pages(ZONE_DMA_END - P, ZONE_DMA_END, H), pi),
            (*_pages(a_32, a_32 + P, H), pi),
            (*_pages(coherent_lo, coherent_end, H), Where(W + pi_K * P > 0, 1, 0)),
            *[(*_pages(b[i], G[i] + (Ni[i] - 1) * u + PAGE_SIZE, H), Where(K > i, sigma, 0))
              for i in range(NODES)],
            (*_pages(bss, bss + PAGE_SIZE, H), sigma * (1 - kappa)),
        ]
        spread = []
        for first, end, count in ((ZONE_DMA_END, X_R, c["remainder_regions"]),
                                  (X_T, X_T + Z_T, c["transient_regions"])):
            lo, hi = _pages(first, end, H)
            span = sp.Max(1, hi - lo + 1)
            spread.append((lo, hi, Where(end > first, sp.Min(1, count / span), 0)))
        args = []
        for name, (first, last, weight) in zip(CLUSTERS, (*ranges, *spread)):
            d[f"first_page_{name}"], d[f"last_page_{name}"], d[f"weight_{name}"] = first, last, weight
            args += [_s(f"first_page_{name}"), _s(f"last_page_{name}"), _s(f"weight_{name}")]
        for j, name in enumerate(CLUSTERS):
            d[f"cluster_hugepages_{name}"] = NewPages(j, CONTIGUOUS, *args)
        nu = [_s(f"cluster_hugepages_{name}") for name in CLUSTERS]
        covered = sp.Add(*nu)
        lucky = kappa * sigma * sp.Max(0, 1 - covered / B_RAM)  # KASLR: .bss..decrypted in an unsplit hugepage
        d["permanent_hugepages"] = sp.Add(*nu[:-1]) + lucky
        # a transient hugepage the image's .bss..decrypted also lands in stays split
        d["transient_hugepages"] = nu[-1] * (1 - kappa * sigma / B_RAM)
        d["splits"] = Where(huge, U + nu[-1], 0)
        boot_merges(d)
        # --- cost (§2, §5, §9) -----------------------------------------------------------------
        d["split_merge_event_cycles"] = c["split_fixed_cycles"] + c["split_subpage_cycles"] * (
            1 - lam * c["vmemmap_cycle_share"]) * H / PAGE_SIZE
        d["split_merge_cycles"] = (s + m_merge) * E
        psc = 64  # entries per SNP page-state-change request [code __set_pages_state()]
        snp_swiotlb = Where(chi > 0, sp.ceiling(S / PMD / psc), sp.ceiling((S / PMD + PMD / PAGE_SIZE - 1) / psc))
        snp_pool = Where(P >= PMD, sp.ceiling(P / PMD / psc), sp.ceiling(P / PAGE_SIZE / psc))
        snp_ops = (snp_swiotlb + pools * snp_pool + N + 3 * N + 1 + Where(N > 64, 1, 0) + 2)
        tdx_ops = sp.ceiling(S / PMD) + pools * sp.ceiling(P / PMD) + 1
        d["source_conversion_ops"] = (sigma * snp_ops + tdx * tdx_ops + A_dev + c["remainder_regions"]
                                      + 2 * c["transient_regions"])
        d["conversion_ops"] = C_src + c["conversion_ops_fixed"]
        d["conversion_cycles"] = c["conversion_op_cycles"] * C + Ysm
        d["split_merge_share"] = Ysm / Y
        # --- footprint (§6) --------------------------------------------------------------------
        d["shared_bytes"] = (S + pools * P + W + sigma * (2 * N * PAGE_SIZE + PAGE_SIZE)
                             + PAGE_SIZE * c["remainder_regions"])
        hvo_kept = sp.Min(H / STRUCT_PAGE_BYTES, PAGE_SIZE)  # vmemmap kept per hugepage
        d["vmemmap_unsplit_bytes"] = (M / H) * hvo_kept
        d["vmemmap_structpage_bytes"] = _s("vmemmap_unsplit_bytes") + (s - m_merge) * (H / STRUCT_PAGE_BYTES - hvo_kept)
        d["vmemmap_pageless_bytes"] = D / STRUCT_PAGE_BYTES
        d["vmemmap_bytes"] = (1 - lam) * Vsp + lam * Vpl
        d["pageless_saving_bytes"] = Vsp - Vpl
        d["huge_mapped_fraction"] = Where(huge, sp.Max(0, 1 - (s - psi * sigma * m_merge + tdx * c["tdx_4k_mapped_hugepages"]) * H / M), 0)
        runtime_definitions(d)  # run time (docs/runtime.md)
        self._nu = dict(zip(CLUSTERS, nu))
        self._lucky = lucky
        return {name: sp.sympify(expr) for name, expr in d.items()}

    def node(self, i: int | sp.Symbol) -> dict[str, sp.Expr]:
        """The per-node definitions of node ``i`` (0–7), or of a symbolic ``i`` (for cards). [B], [1]

        Node i's RAM ends at e_i (QEMU's split: the last node takes the rest); its CPUs are
        spread evenly; its memblock stack's top T_i is the node's top in guest-physical
        addresses (below the firmware's reservation when the node ends at L); the memmap
        (2 MiB per 128 MiB section) lies below T_i, the per-CPU group G_i below that, and
        SNP's GHCB slots below the group, down to b_i (docs/placement.md §4.2).
        """
        M, N, K, L, sigma = (_s(n) for n in ("memory_bytes", "vcpus", "numa_nodes", "lowmem_bytes", "is_snp"))
        m, u, g, upsilon = (_s(n) for n in ("node_memory_bytes", "percpu_unit_bytes", "ghcb_slot_bytes",
                                            "percpu_units_per_atom"))
        F = PMD * sp.ceiling(_s("firmware_reserved_bytes") / PMD)

        def own(family):
            if isinstance(i, int):
                return _s(f"{family}_{i}")
            return sp.Symbol(str(_s(f"{family}_0"))[:-1] + str(i), real=True)

        if isinstance(i, int):
            previous = _s(f"node_end_bytes_{i - 1}") if i else sp.Integer(0)
        else:
            previous = sp.Symbol(str(_s("node_end_bytes_0"))[:-1] + f"{{{i} - 1}}", real=True)
        e, n_cpus, T, G = own("node_end_bytes"), own("node_cpus"), own("node_stack_top_bytes"), own("percpu_group_bytes")
        memmap = sp.ceiling((e - previous) / (128 * MiB)) * PMD
        del u
        return {
            "node_end_bytes": Where(K <= i + 1, M, (i + 1) * m),
            "node_cpus": sp.floor(N / K) + Where(sp.Mod(N, K) > i, 1, 0),
            "node_stack_top_bytes": Where(sp.Eq(e, L), e - F - FIRMWARE_JITTER, Where(e < L, e, e + FOUR_GIB - L)),
            "percpu_group_bytes": PMD * sp.floor((T - memmap) / PMD) - PMD * sp.ceiling(n_cpus / upsilon),
            "node_stack_bytes": G - sigma * n_cpus * g,
        }

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
        # otherwise re-simplify every Min/Max it rebuilds
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
        definition with evaluation on, so terms like (1 − 0·φ) vanish and an override that
        mentions its own symbol is not substituted into itself.
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

    def cluster_splits(self) -> dict[str, sp.Expr]:
        """Hugepages each cluster adds to the union (``ν_c``), by cluster name. [1]"""
        self.definitions  # noqa: B018 - builds self._nu
        return dict(self._nu)

    def splits_by_source(self) -> dict[str, sp.Expr]:
        """Splits attributed to each source of :mod:`costmodel.model.sources`, summing to
        ``splits`` (for H > 4 KiB). [1]

        Each hugepage belongs to the cluster that starts lowest among those touching it; a
        cluster's hugepages are shared among its parts in proportion to the hugepages each
        spans (node 0's coherent cluster: the kernel atomic pool and the small allocations;
        node stacks: per-CPU data and GHCB pages), and the small allocations' among device
        queues and messages in proportion to their bytes.
        """
        nu = self.cluster_splits()
        H, P, W, D_dev = (_s(n) for n in ("hugepage_bytes", "atomic_pool_bytes", "coherent_bytes", "device_bytes"))
        u, g = _s("percpu_unit_bytes"), _s("ghcb_slot_bytes")
        pi_K = _s("kernel_pool")
        huge = H > PAGE_SIZE

        def share(part, whole):
            return Where(whole > 0, part / whole, 0)

        X_C = _s("coherent_top_bytes")
        pool_pages = pi_K * (sp.floor((X_C + P - 1) / H) - sp.floor(X_C / H) + 1)
        small_pages = sp.floor((X_C - 1) / H) - sp.floor((X_C - W) / H) + 1
        coherent_pages = pool_pages + small_pages
        percpu = ghcb = sp.Integer(0)
        for i in range(NODES):
            Ni = _s(f"node_cpus_{i}")
            own_percpu = sp.floor((Ni - 1) * u / H) + 1
            own_ghcb = sp.floor((Ni * g - 1) / H) + 1
            percpu += nu[f"node_stack_{i}"] * share(own_percpu, own_percpu + own_ghcb)
            ghcb += nu[f"node_stack_{i}"] * share(own_ghcb, own_percpu + own_ghcb)
        small = nu["coherent"] * share(small_pages, coherent_pages)
        parts = {
            "swiotlb": nu["swiotlb"],
            "atomic_pool_dma": nu["atomic_pool_dma"],
            "atomic_pool_dma32": nu["atomic_pool_dma32"],
            "atomic_pool_kernel": nu["coherent"] * share(pool_pages, coherent_pages),
            "devices": small * share(D_dev, W),
            "guest_messages": small * share(W - D_dev, W),
            "percpu": percpu,
            "ghcb": ghcb,
            "bss_decrypted": nu["bss_decrypted"] + self._lucky,
            "remainder": nu["remainder"],
            "transient": nu["transient"],
        }
        return {k: Where(huge, v, 0) for k, v in parts.items()}

    def __repr__(self) -> str:
        return f"CostModel(form={self.form_name!r})"


@lru_cache(maxsize=None)
def model_for(form: str = "default") -> CostModel:
    """The one :class:`CostModel` of ``form`` in this process: its definitions are built
    once and never change, so every caller can share them."""
    return CostModel(form)
