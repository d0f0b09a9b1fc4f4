"""The closed form of run time: what the guest converts after boot (docs/runtime.md).

:func:`runtime_definitions` adds the run-time intermediates and outputs to the boot-time
definitions of :class:`~costmodel.model.closed_form.CostModel`, each by one expression in
inputs, coefficients and earlier names, so the formula cards and the compiled program treat
them like the rest. Every term traces to domain.md §9 ("Run-time conversions",
"Accelerators"):

* **SWIOTLB overflow** (``swiotlb_find_slots()``, ``swiotlb_dyn_alloc()`` [code]): in-flight
  bounce buffering beyond the pool adds, with ``CONFIG_SWIOTLB_DYNAMIC``, permanent pools of
  at most 4 MiB below 4 GiB (each 2^order pages, so naturally aligned); without it the
  requests wait and the shortfall is reported instead.
* **Coherent churn**: an allocate-and-free cycle converts its 2^order pages to shared and
  back; where the hugepage holds nothing else shared (share θ_c) it splits and merges.
* **Accelerators** (``nv_alloc_system_pages()`` [code]): unprotected system memory is
  converted chunk by chunk; chunks of a hugepage or more are aligned blocks, smaller ones
  pack (or, for the share θ_a, scatter over the free hugepages); 2 MiB staging buffers are
  kept. A device accepted under TDISP converts nothing (it is left out of the inputs).
* **Attestation**: SNP's certificate buffer is decrypted and re-encrypted per request; it
  sits beside the request and response pages, whose hugepage stays split, so it costs two
  conversion operations and no split [assumed placement, docs/runtime.md].
* **Flips**: a round trip of the same page is two conversion operations; it splits and
  merges only when the page's hugepage holds nothing else shared.
* **Firmware**: OVMF's reserved shared pool, released at ExitBootServices, explains some of
  the boot merges; without the release those hugepages stay split.
"""

from __future__ import annotations

import sympy as sp

from costmodel.model.functions import Where, log2
from costmodel.model.kernel import KERNEL_ALIGN, KERNEL_LOAD
from costmodel.model.variables import symbol
from costmodel.units import PAGE_SIZE, MiB

#: Largest pool swiotlb_dyn_alloc() adds: 2^MAX_PAGE_ORDER pages [B] (domain.md §9).
DYNAMIC_POOL_BYTES = 4 * MiB
PMD = 2 * MiB
#: Entries per SNP page-state-change request [code __set_pages_state()].
PSC_ENTRIES = 64
#: The SWIOTLB's floor, as the placement model takes it (docs/placement.md §4.3). [B]
SWIOTLB_FLOOR = 128 * MiB


def conversion_ops(size: sp.Expr, is_snp: sp.Expr) -> sp.Expr:
    """Conversion operations one aligned block of ``size`` bytes takes. [1]

    SNP: page-state-change requests of 64 entries, 2 MiB entries when the block is 2 MiB
    or more; TDX: MapGPA exits of at most 2 MiB (domain.md §5).
    """
    snp = Where(size >= PMD, sp.ceiling(size / PMD / PSC_ENTRIES), sp.ceiling(size / PAGE_SIZE / PSC_ENTRIES))
    return is_snp * snp + (1 - is_snp) * sp.ceiling(size / PMD)


def swiotlb_cut_share(size: sp.Expr) -> sp.Expr:
    """The share of boots whose kernel image leaves no free low RAM piece of ``size`` bytes for
    the SWIOTLB. [1]

    KASLR draws the image's 2 MiB slot uniformly among the slots where it fits in free RAM
    (at or above 16 MiB, below the firmware's reservation, and above 4 GiB) [code
    arch/x86/boot/compressed/kaslr.c find_random_phys_addr()]; memblock does not move it, so
    the SWIOTLB (top-down between 128 MiB and its end X_S, memblock_alloc_low()) sees two
    pieces. Both are shorter than ``size`` when the image starts in (X_S − I − size,
    128 MiB + size); the slot count there, over all slots, is the share (lengths / 2 MiB: within
    a slot of the exact count).
    """
    s_ = symbol
    L, M, I_img, X_S = s_("lowmem_bytes"), s_("memory_bytes"), s_("kernel_image_bytes"), s_("swiotlb_end_bytes")
    low_top = L - PMD * sp.ceiling(s_("firmware_reserved_bytes") / PMD) - PAGE_SIZE  # free low RAM ends here
    slots = (sp.Max(0, sp.floor((low_top - KERNEL_LOAD - I_img) / KERNEL_ALIGN) + 1)
             + Where(M > L, sp.Max(0, sp.floor((M - L - I_img) / KERNEL_ALIGN) + 1), 0))
    inside = sp.Max(0, sp.Min(SWIOTLB_FLOOR + size, low_top - I_img) - sp.Max(X_S - I_img - size, KERNEL_LOAD))
    return s_("kaslr") * inside / KERNEL_ALIGN / sp.Max(1, slots)


def boot_merges(d: dict) -> None:
    """The boot merges, with the share the firmware pool's release explains (domain.md §9
    firmware: "a candidate source of the ≈30 merges"). With the release (the default, as in
    the reference guest) ``merges`` is the transient hugepages as before; without it the
    pool's hugepages stay split."""
    s_ = symbol
    H, U_tr, rho, Z_fw = (s_(n) for n in ("hugepage_bytes", "transient_hugepages", "firmware_release",
                                          "firmware_pool_bytes"))
    huge = H > PAGE_SIZE
    # a block of Z bytes at a uniformly random 4 KiB offset touches 1 + (Z - 4 KiB)/H hugepages on average
    d["firmware_pool_hugepages"] = Where(huge, 1 + (Z_fw - PAGE_SIZE) / H, 0)
    explained = sp.Min(U_tr, s_("firmware_pool_hugepages"))
    d["merges"] = Where(huge, U_tr - (1 - rho) * explained, 0)
    d["merges_from_firmware"] = Where(huge, rho * explained, 0)
    d["merges_unexplained"] = s_("merges") - s_("merges_from_firmware")


def runtime_definitions(d: dict) -> None:
    """Add the run-time definitions to ``d`` (after the boot definitions)."""
    s_ = symbol
    H, M, L, sigma = s_("hugepage_bytes"), s_("memory_bytes"), s_("lowmem_bytes"), s_("is_snp")
    S, U, U_tr, B_RAM, E = (s_(n) for n in ("swiotlb_bytes", "permanent_hugepages", "transient_hugepages",
                                            "ram_hugepages", "split_merge_event_cycles"))
    Q, dyn, r_c, r_cj, z_c = (s_(n) for n in ("io_in_flight_bytes", "swiotlb_dynamic", "churn_per_second",
                                              "churn_per_job", "churn_bytes"))
    A_u, n_ch, K_st, r_at, rho = (s_(n) for n in ("accelerator_unprotected_bytes", "accelerator_chunks",
                                                  "accelerator_staging_buffers", "attestation_rate",
                                                  "firmware_release"))
    r_f, iota, T, J = (s_(n) for n in ("flip_rate", "flip_isolated", "duration_seconds", "jobs"))
    theta_c, theta_a, Z_fw = (s_(n) for n in ("churn_isolated_share", "accelerator_scatter_share",
                                              "firmware_pool_bytes"))
    psi = s_("promotion")
    n_fw, E_io, n_dyn, nu_dyn, B_free = (s_(n) for n in ("firmware_pool_hugepages", "swiotlb_overflow_bytes",
                                                         "dynamic_pools", "dynamic_pool_hugepages",
                                                         "free_hugepages"))
    n_c, a_c, h_c, h_a, h_st, n_f = (s_(n) for n in ("churn_cycles", "churn_block_bytes", "churn_hugepages",
                                                     "accelerator_hugepages", "staging_hugepages", "flips"))
    s, m, C, Y, Ysm = (s_(n) for n in ("splits", "merges", "conversion_ops", "conversion_cycles",
                                       "split_merge_cycles"))
    s_rt, m_rt, C_rt, Y_rt, Ysm_rt = (s_(n) for n in ("runtime_splits", "runtime_merges", "runtime_conversion_ops",
                                                      "runtime_conversion_cycles", "runtime_split_merge_cycles"))
    huge = H > PAGE_SIZE
    c_op, a_tdx = s_("conversion_op_cycles"), s_("tdx_4k_mapped_hugepages")

    # --- SWIOTLB overflow ----------------------------------------------------------------------
    # The boot's pool as the run finds it: S, or S/2, S/4 in the boots where KASLR's image cut the
    # free low RAM into pieces shorter than S (swiotlb_memblock_alloc() halves until one fits;
    # docs/placement.md). Boot outputs keep S; the run takes its overflow over the halvings.
    d["swiotlb_halved_share"] = swiotlb_cut_share(S)
    cut, cut_twice = s_("swiotlb_halved_share"), swiotlb_cut_share(S / 2)
    pools_of = [(1 - cut, S), (cut - cut_twice, S / 2), (cut_twice, S / 4)]
    d["swiotlb_overflow_bytes"] = sum(share * sp.Max(0, Q - size) for share, size in pools_of)
    d["swiotlb_shortfall_bytes"] = (1 - dyn) * E_io
    d["dynamic_pools"] = dyn * sum(share * sp.ceiling(sp.Max(0, Q - size) / DYNAMIC_POOL_BYTES)
                                   for share, size in pools_of)
    # hugepages still split after boot: the permanent ones and the transient ones that do not
    # merge back (KASLR's .bss..decrypted in one, or the firmware pool kept), i.e. splits - merges
    d["free_hugepages"] = sp.Max(0, B_RAM - (s - m))
    # ≤ 4 MiB pools, naturally aligned, in low hugepages nothing keeps split (a halved SWIOTLB
    # leaves (S - size)/H more of them)
    d["dynamic_pool_hugepages"] = sum(
        share * sp.Min(dyn * sp.ceiling(sp.ceiling(sp.Max(0, Q - size) / DYNAMIC_POOL_BYTES) * DYNAMIC_POOL_BYTES / H),
                       sp.Max(0, L / H - U + (S - size) / H))
        for share, size in pools_of)
    # --- churn, accelerators, flips -------------------------------------------------------------
    d["churn_cycles"] = r_c * T + r_cj * J
    d["churn_block_bytes"] = PAGE_SIZE * 2 ** sp.ceiling(log2(sp.ceiling(z_c / PAGE_SIZE)))
    d["churn_hugepages"] = theta_c * sp.Max(1, a_c / H)
    small = n_ch * H > A_u  # chunks smaller than a hugepage
    spread = sp.Max(1, B_free) * (1 - sp.exp(-n_ch / sp.Max(1, B_free)))
    # in the order they are allocated: dynamic pools, staging buffers, then unprotected memory,
    # each capped at the hugepages still free
    d["staging_hugepages"] = sp.Min(sp.ceiling(K_st * PMD / H), sp.Max(0, B_free - nu_dyn))
    d["accelerator_hugepages"] = sp.Min(sp.Max(0, B_free - nu_dyn - h_st),
                                        Where(small, (1 - theta_a) * sp.ceiling(A_u / H) + theta_a * spread, A_u / H))
    d["flips"] = r_f * T
    # churn and isolated flips need a hugepage nothing else holds: none may be left once the
    # kept allocations are made (then they land in split hugepages: conversions, no splits)
    d["run_free_hugepages"] = sp.Max(0, B_free - nu_dyn - h_st - Where(J > 0, 0, h_a))
    room = s_("run_free_hugepages")
    # the expected free count is fractional (KASLR, the firmware's end): below one, it is the
    # chance that one is left
    d["isolated_churn_hugepages"] = h_c * sp.Min(1, room / sp.Max(1, a_c / H))
    d["isolated_flip_hugepages"] = iota * sp.Min(1, room)
    allocations = Where(J > 0, J, 1)  # accelerator memory: allocated once and kept, or once per job
    frees = Where(J > 0, J, 0)
    g_c, g_f = s_("isolated_churn_hugepages"), s_("isolated_flip_hugepages")
    d["runtime_splits"] = Where(huge, nu_dyn + h_st + allocations * h_a + n_c * g_c + g_f * n_f, 0)
    d["runtime_merges"] = Where(huge, frees * h_a + n_c * g_c + g_f * n_f, 0)
    chunk_ops = sigma * s_("accelerator_chunk_ops_snp") + (1 - sigma) * s_("accelerator_chunk_ops_tdx")
    d["runtime_conversion_ops"] = (n_dyn * conversion_ops(DYNAMIC_POOL_BYTES, sigma)
                                   + K_st * conversion_ops(PMD, sigma)
                                   + (allocations + frees) * chunk_ops
                                   + 2 * n_c * conversion_ops(a_c, sigma)
                                   + 2 * sigma * r_at * T + 2 * n_f)
    d["runtime_split_merge_cycles"] = (s_rt + m_rt) * E
    d["runtime_conversion_cycles"] = c_op * C_rt + Ysm_rt
    d["steady_split_rate"] = Where(huge, r_c * g_c + g_f * r_f, 0)
    d["steady_conversion_ops_rate"] = 2 * r_c * conversion_ops(a_c, sigma) + 2 * sigma * r_at + 2 * r_f
    # --- boot and run time together -------------------------------------------------------------
    d["total_splits"] = s + s_rt
    d["total_merges"] = m + m_rt
    d["total_conversion_ops"] = C + C_rt
    d["total_conversion_cycles"] = Y + Y_rt
    d["total_split_merge_share"] = (Ysm + Ysm_rt) / (Y + Y_rt)
    promoted = psi * sigma  # merged hugepages mapped huge again (host promotion, never on TDX)
    held = (s - promoted * m + (1 - sigma) * a_tdx + nu_dyn + h_st + Where(J > 0, 1 - promoted, 1) * h_a
            + (1 - promoted) * (g_c * sp.Min(1, n_c) + g_f * sp.Min(1, n_f)))
    d["final_huge_mapped_fraction"] = Where(huge, sp.Max(0, 1 - held * H / M), 0)
