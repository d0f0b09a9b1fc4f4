"""Every quantity of the model, once: symbol, unit, meaning, kind, default and source.

This is the project's nomenclature. A quantity's ``name`` is the one spelling used for it
everywhere: column names in data files, JSON keys, calibration files and notebook
parameters. Units are given in square brackets in docstrings and in :attr:`Quantity.unit`.

Kinds:

``input``
    describes a VM shape; supplied per configuration.
``coefficient``
    not fixed by the kernel; bound from a calibration (derived from the published
    reference numbers, assumed, or fitted to a user's data).
``switch``
    0/1 flags that scenarios set (see :mod:`costmodel.model.scenarios`).
``intermediate`` / ``output``
    named expressions defined in :mod:`costmodel.model`.

Sources refer to sections of ``shared/domain.md`` (the facts file of this project), which
in turn names kernel files, functions and mailing-list messages. Labels follow it:
[code], [mail], [derived], [unverified].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from costmodel.units import GiB


@dataclass(frozen=True)
class Quantity:
    """One named quantity of the model.

    The registry itself is plain data (no SymPy import: ``costmodel predict`` reads units,
    kinds and defaults from it on its warm path); :attr:`symbol` is made on first use from
    ``latex`` and ``assumption``.
    """

    name: str
    #: The symbol's name, as formula cards print it (``M``, ``ell_{swiotlb}``).
    latex: str
    unit: str
    meaning: str
    kind: str
    source: str = ""
    #: For coefficients: the value used when nothing else binds it (an assumption).
    default: float | None = None
    #: For coefficients: physically admissible range (used as fit bounds, and checked when a
    #: calibration file is read). Every coefficient has a finite upper bound, so that no
    #: admissible calibration overflows an output.
    bounds: tuple[float, float] = (0.0, math.inf)
    #: For coefficients: solved from the published reference numbers by
    #: :func:`costmodel.calibration.reference_calibration` instead of assumed.
    from_reference: bool = False
    #: The SymPy assumption of :attr:`symbol`: ``positive`` (inputs, coefficients) or ``real``.
    assumption: str = "positive"

    @cached_property
    def symbol(self):
        """The SymPy symbol (SymPy interns symbols by name and assumptions: every call, in
        any process, gives the same symbol)."""
        import sympy as sp

        return sp.Symbol(self.latex, **{self.assumption: True})


def _q(name, latex, unit, meaning, kind, source="", **kw) -> Quantity:
    return Quantity(name, latex, unit, meaning, kind, source, **kw)


#: NUMA nodes the closed form follows (each node's stack is a cluster of its own).
NODES = 8


def _family(name, latex, unit, meaning, source) -> list[Quantity]:
    """One intermediate per NUMA node: ``name_0`` … ``name_7`` with symbols ``latex_0`` …
    (cards show the family once, for node i)."""
    return [Quantity(f"{name}_{i}", f"{latex}_{i}", unit, f"{meaning} (node {i})", "intermediate", source,
                     assumption="real") for i in range(NODES)]


#: The clusters of shared memory, in the order the union takes them: contiguous ones first,
#: then the two spread ones (docs/placement.md §4–§5).
CLUSTERS = ("swiotlb", "atomic_pool_dma", "atomic_pool_dma32", "coherent",
            *(f"node_stack_{i}" for i in range(NODES)), "bss_decrypted", "remainder", "transient")
CLUSTER_LABELS = {
    "swiotlb": "the SWIOTLB block", "atomic_pool_dma": "the ZONE_DMA atomic pool",
    "atomic_pool_dma32": "the DMA32 atomic pool",
    "coherent": "node 0's coherent cluster (kernel atomic pool, device queues, messages)",
    **{f"node_stack_{i}": f"node {i}'s memblock stack (GHCB pages, per-CPU data)" for i in range(NODES)},
    "bss_decrypted": ".bss..decrypted without KASLR", "remainder": "the unexplained pages (spread)",
    "transient": "the transient pages (spread)",
}


def _clusters() -> list[Quantity]:
    out = []
    for name in CLUSTERS:
        label = CLUSTER_LABELS[name]
        tag = name.replace("atomic_pool_", "pool_").replace("node_stack_", "node")
        out += [
            Quantity(f"first_page_{name}", f"ell_{{{tag}}}", "1",
                     f"first hugepage of {label}", "intermediate", "docs/placement.md §5", assumption="real"),
            Quantity(f"last_page_{name}", f"h_{{{tag}}}", "1",
                     f"last hugepage of {label}", "intermediate", "docs/placement.md §5", assumption="real"),
            Quantity(f"weight_{name}", f"w_{{{tag}}}", "1",
                     f"weight of {label}: 1 if present (0 if not), or its density if spread", "intermediate",
                     "docs/placement.md §5", assumption="real"),
        ]
    for name in CLUSTERS:
        tag = name.replace("atomic_pool_", "pool_").replace("node_stack_", "node")
        out.append(Quantity(f"cluster_hugepages_{name}", f"nu_{{{tag}}}", "1",
                            f"hugepages {CLUSTER_LABELS[name]} adds to the union", "intermediate",
                            "domain.md §4 'count each hugepage once'; costmodel/model/union.py", assumption="real"))
    return out


_QUANTITIES = [
    # --- inputs: the VM shape (docs/placement.md §1) --------------------------------
    _q("memory_bytes", "M", "B", "guest memory", "input", "domain.md §1"),
    _q("vcpus", "N", "1", "possible vCPUs", "input", "domain.md §9 'GHCB and per-CPU data scale with possible CPUs'"),
    _q("numa_nodes", "K", "1", "NUMA nodes", "input", "domain.md §9 placement: per-node groups"),
    _q("lowmem_bytes", "L", "B", "RAM below 4 GiB (q35: all of it below 2.75 GiB, else 2 GiB)", "input",
       "domain.md §9 'Guest-physical layout' [code, QEMU q35]"),
    _q("hugepage_bytes", "H", "B", "guest_memfd hugepage size (4 KiB = no hugepages)", "input", "domain.md §1"),
    _q("is_snp", "sigma", "1", "1 for AMD SEV-SNP, 0 for Intel TDX", "input", "domain.md §3 platform column, §9 TDX"),
    _q("swiotlb_request_bytes", "S_req", "B", "SWIOTLB size asked for with swiotlb= (0: the kernel's rule)",
       "input", "domain.md §3 'SWIOTLB size' [code] mem_encrypt_setup_arch()"),
    _q("device_bytes", "D_dev", "B",
       "coherent DMA the devices' queues allocate: per queue 2^order pages of vring_size (split), three "
       "allocations (packed), or an NVMe submission and completion queue", "input",
       "domain.md §9 'Virtio rings' [code] vring_alloc_queue(); docs/placement.md §2"),
    _q("device_allocations", "A_dev", "1", "coherent allocations the devices' queues make", "input",
       "domain.md §9 'Virtio rings'"),
    _q("percpu_units_per_atom", "upsilon", "1",
       "per-CPU units per 2 MiB atom, as pcpu_build_alloc_info() picks it for this many CPUs per node",
       "input", "domain.md §9 'Per-CPU unit' [code] mm/percpu.c"),
    _q("kaslr", "kappa", "1", "1 when physical KASLR places the kernel image at a random 2 MiB slot", "input",
       "domain.md §9 placement: 'the kernel image and .bss..decrypted (KASLR as seeded randomness)'"),
    _q("svsm", "varsigma", "1", "1 for SEV-SNP under an SVSM (GHCB slots 16 KiB apart)", "input",
       "domain.md §9 'GHCB with an SVSM'"),
    _q("atomic_pools", "pi", "1", "1 when the kernel builds the DMA atomic pools (AMD_MEM_ENCRYPT)", "input",
       "domain.md §9 'Atomic pools' [code, arch/x86/Kconfig]"),
    # --- inputs: the workload after boot (docs/runtime.md; domain.md §9 run-time conversions) ----
    _q("io_in_flight_bytes", "Q_io", "B", "bounce-buffered I/O in flight at the peak, over the devices not accepted "
       "under TDISP", "input", "domain.md §9 'Virtio data buffers … add conversions only when in-flight I/O exceeds "
       "the pool'"),
    _q("swiotlb_dynamic", "delta_dyn", "1", "1 when the kernel has CONFIG_SWIOTLB_DYNAMIC", "input",
       "domain.md §9 [code] kernel/dma/swiotlb.c swiotlb_find_slots(), swiotlb_dyn_alloc()"),
    _q("churn_per_second", "r_c", "1/s", "coherent allocate-and-free cycles per second (NVMe PRP pools, ring "
       "resizes, resets)", "input", "domain.md §9 'Coherent allocations per request or per queue'; 'Virtio rings': "
       "freeing re-encrypts, re-allocating converts again"),
    _q("churn_per_job", "r_cj", "1", "coherent allocate-and-free cycles per job", "input",
       "domain.md §9 'Coherent allocations per request or per queue'"),
    _q("churn_bytes", "z_c", "B", "size of one churned coherent allocation", "input",
       "domain.md §9 [code] dma_direct_alloc() allocates 2^order pages"),
    _q("accelerator_unprotected_bytes", "A_u", "B", "unprotected system memory of the accelerators not accepted "
       "under TDISP (count × size)", "input", "domain.md §9 Accelerators [code] nv_alloc_system_pages()"),
    _q("accelerator_chunks", "n_ch", "1", "separately converted chunks of that memory (size / chunk, per device)",
       "input", "domain.md §9 'non-contiguous allocations are converted page by page'"),
    _q("accelerator_chunk_ops_snp", "o_ch_snp", "1", "conversion operations of one allocation of all their chunks "
       "on SNP (page-state-change requests, per chunk)", "input", "domain.md §5; docs/runtime.md"),
    _q("accelerator_chunk_ops_tdx", "o_ch_tdx", "1", "the same on TDX (≤ 2 MiB MapGPA pieces, per chunk)", "input",
       "domain.md §5; docs/runtime.md"),
    _q("accelerator_staging_buffers", "K_st", "1", "2 MiB staging buffers of the accelerators not accepted under "
       "TDISP", "input", "domain.md §9 UVM_CONF_COMPUTING_DMA_BUFFER_SIZE"),
    _q("attestation_rate", "r_at", "1/s", "attestation (extended report) requests per second", "input",
       "domain.md §9 'SNP guest messages': the certificate buffer is converted per request"),
    _q("firmware_release", "rho_fw", "1", "1 when the firmware releases its reserved shared pool at "
       "ExitBootServices", "input", "domain.md §9 firmware: edk2 PR #3784 [unverified release]"),
    _q("flip_rate", "r_f", "1/s", "private↔shared round trips per second of the same pages", "input",
       "domain.md §9 Yan Zhao: GFNs flipped 974, 476, 156 times per boot; Roth's 'flipping the same page'"),
    _q("flip_isolated", "iota_f", "1", "1 when the flipped pages lie in hugepages nothing else keeps split",
       "input", "domain.md §4 merge when no sub-page is shared"),
    _q("duration_seconds", "T", "s", "run time after boot the totals cover", "input", "issue 10"),
    _q("jobs", "J", "1", "jobs over the run: accelerator memory allocated and freed per job (0: kept)", "input",
       "issue 10"),
    # --- coefficients solved from the published reference ----------------------------
    _q("remainder_regions", "r", "1",
       "shared pages no listed source explains (firmware, early boot), spread over low RAM", "coefficient",
       "domain.md §3 [derived] 'A fitted constant term is needed'; docs/placement.md §4.6", from_reference=True,
       default=70.0, bounds=(0.0, 1e6)),
    _q("transient_regions", "n_tr", "1",
       "pages converted to shared and back to private during boot (merge candidates)", "coefficient",
       "domain.md §2 '≈30 merged back'; §9 firmware flips; docs/placement.md §4.7", from_reference=True,
       default=30.0, bounds=(0.0, 1e6)),
    _q("split_fixed_cycles", "c_fix", "cycles", "fixed cost of one split or merge event", "coefficient",
       "domain.md §2 [derived] split/merge cost ≈ fixed + per-sub-page", from_reference=True, default=2.0e4,
       bounds=(0.0, 1e11)),  # 1e11 cycles (≈ 30 s) per event: far past any measured split (4.6e7 for 1 GiB)
    _q("split_subpage_cycles", "c_sub", "cycles", "cost of one split or merge event per 4 KiB sub-page",
       "coefficient", "domain.md §2 [derived] ≈180–220 cycles per sub-page", from_reference=True, default=180.0,
       bounds=(0.0, 1e8)),
    _q("conversion_op_cycles", "c_op", "cycles", "cost of one plain conversion operation", "coefficient",
       "domain.md §9 'Cycle calibration': the 2 MiB run's '~100×' ratio sets it", from_reference=True,
       default=1.1e3, bounds=(0.0, 1e9)),
    _q("conversion_ops_fixed", "o_fix", "1",
       "conversion operations no listed source explains (firmware, acceptance, run time)", "coefficient",
       "domain.md §9 'Nothing published says conversion ops scale with memory'", from_reference=True,
       default=9.0e5, bounds=(0.0, 1e12)),
    # --- coefficients assumed (not identifiable from the single published guest) -----
    _q("transient_span_bytes", "Z_tr", "B",
       "RAM from 4 GiB up over which the transient pages spread", "coefficient",
       "domain.md §2 '1 GiB: 2 merged' (any span of 1–2 GiB gives 2; 2 GiB taken)", default=2.0 * GiB,
       bounds=(2.0 * 1024**2, 64.0 * 1024**4)),
    _q("firmware_reserved_bytes", "F", "B", "firmware reservation at the top of low RAM (OVMF, TDVF)",
       "coefficient", "domain.md §9 firmware [unverified]: docs/placement.md §3", default=64.0 * 1024**2,
       bounds=(0.0, 1.0 * GiB)),
    _q("kernel_bss_offset_bytes", "o_bss", "B", "offset of .bss..decrypted in the kernel image", "coefficient",
       "domain.md §3 .bss..decrypted row [unverified]", default=48.0 * 1024**2, bounds=(0.0, 1.0 * GiB)),
    _q("kernel_image_bytes", "B_img", "B", "size of the kernel image (KASLR slots must hold it)", "coefficient",
       "docs/placement.md §4.1 [unverified]; used by the placement simulator", default=64.0 * 1024**2,
       bounds=(2.0 * 1024**2, 1.0 * GiB)),
    _q("vmemmap_cycle_share", "phi", "1",
       "share of per-sub-page split/merge cycles spent restoring/optimizing vmemmap", "coefficient",
       "domain.md §4 split cost, §6 struct page-less [unverified]", default=0.5, bounds=(0.0, 1.0)),
    _q("tdx_4k_mapped_hugepages", "a_TDX", "1",
       "hugepages a TD keeps mapped at 4 KiB from boot (4 KiB pages at TD build, 4 KiB ACCEPTs)", "coefficient",
       "domain.md §9 Yan Zhao: ≈2,710 4 KiB accepts per boot [derived: packed into 2 MiB pages]", default=6.0,
       bounds=(0.0, 1e6)),
    _q("churn_isolated_share", "theta_c", "1",
       "share of churned coherent allocations landing in a hugepage nothing else keeps split", "coefficient",
       "docs/runtime.md [assumed: worst case; nothing published on where run-time allocations land]", default=1.0,
       bounds=(0.0, 1.0)),
    _q("accelerator_scatter_share", "theta_a", "1",
       "share of sub-hugepage accelerator chunks scattered over free hugepages instead of packed", "coefficient",
       "domain.md §9 'can scatter over many hugepages' [unverified share]", default=0.0, bounds=(0.0, 1.0)),
    _q("firmware_pool_bytes", "Z_fw", "B", "the firmware's reserved shared pool with its private headers",
       "coefficient", "domain.md §9 firmware: edk2 PR #3784, 4×4 KiB, 8×32 KiB, 2×128 KiB, 1×1 MiB, 2×2 MiB, "
       "a 4 KiB header each [derived 5,716 KiB]", default=5716.0 * 1024, bounds=(0.0, 1.0 * GiB)),
    # --- scenario switches -------------------------------------------------------------
    _q("promotion", "psi", "1", "1 when the host re-promotes merged hugepages (never on TDX)", "switch",
       "domain.md §7 host-side promotion; §9 'promotion back to 2 MiB is not allowed' (TDX)"),
    _q("pageless", "lambda", "1", "1 when private memory has no struct pages", "switch",
       "domain.md §6 struct page-less guest_memfd"),
    _q("pooling", "chi", "1", "1 when the guest carves shared memory from 2 MiB-aligned pools", "switch",
       "domain.md §7 guest-side pooling"),
    # --- intermediates: sizes -------------------------------------------------------------
    _q("swiotlb_bytes", "S", "B", "SWIOTLB pool size after the area rule and any halving to fit low RAM",
       "intermediate", "domain.md §3 'SWIOTLB size', §9 'SWIOTLB … halved and retried … ≥ 128 slots per area'"),
    _q("atomic_pool_bytes", "P", "B", "size of each atomic DMA pool", "intermediate",
       "domain.md §3, §9 'Atomic pools' [code] dma_atomic_pool_init()"),
    _q("kernel_pool", "pi_K", "1", "1 when the kernel builds the GFP_KERNEL atomic pool: pools on, and RAM above 4 GiB",
       "intermediate", "domain.md §9 'a pool exists only if its zone has memory (2 pools when all RAM is below "
       "4 GiB)' [code] dma_atomic_pool_init()"),
    _q("node_memory_bytes", "m", "B", "RAM of each NUMA node but the last (QEMU's 8 MiB-granular split)",
       "intermediate", "docs/placement.md §3 [code, QEMU numa_default_auto_assign_ram()]"),
    _q("percpu_unit_bytes", "u", "B", "per-CPU unit: the 2 MiB atom divided by υ", "intermediate",
       "domain.md §9 'Per-CPU unit'"),
    _q("ghcb_slot_bytes", "g", "B", "distance between consecutive CPUs' GHCB pages", "intermediate",
       "domain.md §3 GHCB row [derived], §9 'GHCB with an SVSM'"),
    _q("coherent_bytes", "W", "B",
       "small coherent allocations: device queues, SNP guest messages, TDX quote buffer, kvmclock", "intermediate",
       "domain.md §9 'Rings, atomic pools and coherent buffers come from the page allocator, back to back'"),
    _q("ram_hugepages", "B_RAM", "1", "hugepages of guest RAM", "intermediate", "domain.md §1"),
    # --- intermediates: placement (docs/placement.md §4) ----------------------------------
    *_family("node_end_bytes", "e", "B", "RAM offset where the node's RAM ends", "docs/placement.md §3"),
    *_family("node_cpus", "N", "1", "possible CPUs of the node", "docs/placement.md §3"),
    *_family("node_stack_top_bytes", "T", "B", "guest-physical top of the node's memblock stack", "docs/placement.md §4.2"),
    *_family("percpu_group_bytes", "G", "B", "guest-physical start of the node's per-CPU group (2 MiB aligned)",
             "domain.md §9 'Each NUMA node gets its own group at the top of that node's memory'"),
    *_family("node_stack_bytes", "b", "B", "guest-physical bottom of the node's memblock stack",
             "docs/placement.md §4.2"),
    _q("swiotlb_end_bytes", "X_S", "B", "guest-physical end of the SWIOTLB block", "intermediate",
       "domain.md §9 'swiotlb_memblock_alloc() … memblock_alloc_low() … near the top of low RAM'"),
    _q("dma32_top_bytes", "X_32", "B", "top of node 0's free DMA32 memory when the pools are allocated",
       "intermediate", "docs/placement.md §4.4"),
    _q("kernel_pool_top_bytes", "X_K", "B", "top of node 0's free memory for GFP_KERNEL when the pools are allocated",
       "intermediate", "docs/placement.md §4.4"),
    _q("dma32_pool_bytes", "a_32", "B", "guest-physical start of the DMA32 atomic pool", "intermediate",
       "docs/placement.md §4.4"),
    _q("coherent_top_bytes", "X_C", "B", "guest-physical top of the small coherent allocations", "intermediate",
       "docs/placement.md §4.5"),
    _q("remainder_top_bytes", "X_R", "B", "end of the low-RAM span the unexplained pages spread over",
       "intermediate", "docs/placement.md §4.6"),
    _q("transient_base_bytes", "X_T", "B", "start of the span the transient pages spread over", "intermediate",
       "docs/placement.md §4.7"),
    _q("transient_span_ram_bytes", "Z_T", "B", "the transient span, capped at the RAM there", "intermediate",
       "docs/placement.md §4.7"),
    # --- intermediates: the clusters (docs/placement.md §5) ----------------------------------
    *_clusters(),
    # --- intermediates: the union and what follows -----------------------------------------
    _q("permanent_hugepages", "U", "1",
       "hugepages that clusters of shared memory touch, each counted once (expected under KASLR)",
       "intermediate", "domain.md §4 'count each hugepage once however many sources touch it'"),
    _q("transient_hugepages", "U_tr", "1", "hugepages only the transient pages touch", "intermediate",
       "domain.md §4 kvm_gmem_try_merge_folio_in_filemap()"),
    _q("split_merge_event_cycles", "E", "cycles", "cycles of one split or merge event", "intermediate",
       "domain.md §2 [derived], §4"),
    _q("source_conversion_ops", "C_src", "1",
       "conversion operations the listed sources make (page-state-change requests on SNP, ≤ 2 MiB MapGPA pieces on TDX)",
       "intermediate", "domain.md §5"),
    _q("vmemmap_structpage_bytes", "V_sp", "B", "vmemmap with struct pages (HVO, after splits)", "intermediate",
       "domain.md §6"),
    _q("vmemmap_pageless_bytes", "V_pl", "B", "vmemmap when only shared memory has struct pages", "intermediate",
       "domain.md §6 struct page-less"),
    # --- outputs -------------------------------------------------------------------------
    _q("splits", "s", "1", "hugepages split during boot", "output", "domain.md §2–§4, §9 placement"),
    _q("merges", "m_merge", "1", "split hugepages merged back during boot", "output",
       "domain.md §2, §4 kvm_gmem_try_merge_folio_in_filemap()"),
    _q("conversion_ops", "C", "1", "conversion operations", "output", "domain.md §2, §5, §9 'Cycle calibration'"),
    _q("split_merge_cycles", "Y_sm", "cycles", "cycles spent in all split and merge events", "output",
       "domain.md §2"),
    _q("conversion_cycles", "Y", "cycles", "cycles spent handling conversions, split/merge included", "output",
       "domain.md §2 kvm_gmem_convert_execute_work()"),
    _q("split_merge_share", "f_sm", "1", "share of conversion cycles spent on split/merge", "output",
       "domain.md §2 '≈7 %'"),
    _q("shared_bytes", "D", "B", "guest memory converted to shared", "output", "domain.md §3"),
    _q("vmemmap_unsplit_bytes", "V_hvo", "B", "vmemmap (struct page) memory with HVO, before any split", "output",
       "domain.md §6 Documentation/mm/vmemmap_dedup.rst"),
    _q("vmemmap_bytes", "V", "B", "vmemmap (struct page) memory after splits and merges", "output", "domain.md §6"),
    _q("pageless_saving_bytes", "V_save", "B", "vmemmap a struct page-less guest_memfd would save", "output",
       "domain.md §6"),
    _q("huge_mapped_fraction", "f_huge", "1", "fraction of guest memory still mapped with hugepages", "output",
       "domain.md §6 [derived], §9 TDX 4 KiB mappings"),
    # --- intermediates and outputs: run time (docs/runtime.md) ---------------------------
    _q("firmware_pool_hugepages", "n_fw", "1", "hugepages the firmware's shared pool touches (at a random 4 KiB "
       "offset)", "intermediate", "domain.md §9 firmware [derived]"),
    _q("swiotlb_halved_share", "p_cut", "1", "share of boots whose KASLR image slot halves the SWIOTLB (no free low "
       "RAM piece of S bytes)", "intermediate", "docs/placement.md §4.3 [code] swiotlb_memblock_alloc(), "
       "find_random_phys_addr()"),
    _q("swiotlb_overflow_bytes", "E_io", "B", "in-flight I/O beyond the SWIOTLB (expected over KASLR boots)",
       "intermediate", "domain.md §9"),
    _q("dynamic_pools", "n_dyn", "1", "permanent ≤ 4 MiB SWIOTLB pools CONFIG_SWIOTLB_DYNAMIC adds", "intermediate",
       "domain.md §9 [code] swiotlb_dyn_alloc()"),
    _q("dynamic_pool_hugepages", "nu_dyn", "1", "hugepages below 4 GiB the dynamic pools split", "intermediate",
       "domain.md §9 'permanent pools of at most 4 MiB, below 4 GiB, decrypted'"),
    _q("free_hugepages", "B_free", "1", "hugepages no boot-time shared page keeps split", "intermediate",
       "domain.md §4"),
    _q("churn_cycles", "n_c", "1", "coherent allocate-and-free cycles over the run", "intermediate", "domain.md §9"),
    _q("churn_block_bytes", "a_c", "B", "a churned allocation rounded to 2^order pages", "intermediate",
       "domain.md §9 [code] dma_direct_alloc()"),
    _q("churn_hugepages", "h_c", "1", "hugepages one churn cycle splits and merges (expected)", "intermediate",
       "domain.md §4, §9"),
    _q("accelerator_hugepages", "h_a", "1", "hugepages one allocation of the accelerators' unprotected memory "
       "splits", "intermediate", "domain.md §9 Accelerators"),
    _q("staging_hugepages", "h_st", "1", "hugepages the staging buffers split", "intermediate",
       "domain.md §9 Accelerators [unverified alignment: natural]"),
    _q("flips", "n_f", "1", "same-page round trips over the run", "intermediate", "domain.md §9"),
    _q("run_free_hugepages", "B_run", "1", "hugepages still free once the run's kept allocations are made",
       "intermediate", "docs/runtime.md"),
    _q("isolated_churn_hugepages", "g_c", "1", "hugepages a churn cycle splits and merges, if a free one is left",
       "intermediate", "docs/runtime.md"),
    _q("isolated_flip_hugepages", "g_f", "1", "hugepages a flip splits and merges, if a free one is left",
       "intermediate", "docs/runtime.md"),
    _q("runtime_split_merge_cycles", "Y_sm_rt", "cycles", "split/merge cycles over the run", "output",
       "docs/runtime.md"),
    _q("merges_from_firmware", "m_fw", "1", "boot merges the firmware pool's release explains", "output",
       "domain.md §9 firmware 'a candidate source of the ≈30 merges'"),
    _q("merges_unexplained", "m_un", "1", "boot merges no named source explains (fitted transient pages)",
       "output", "domain.md §2 '≈30 merged back'"),
    _q("swiotlb_shortfall_bytes", "E_wait", "B", "in-flight I/O beyond the SWIOTLB that waits (no "
       "CONFIG_SWIOTLB_DYNAMIC)", "output", "domain.md §9; swiotlb_find_slots() fails and the request is retried"),
    _q("runtime_splits", "s_rt", "1", "hugepages split over the run (after boot)", "output", "docs/runtime.md"),
    _q("runtime_merges", "m_rt", "1", "hugepages merged back over the run", "output", "docs/runtime.md"),
    _q("runtime_conversion_ops", "C_rt", "1", "conversion operations over the run", "output", "docs/runtime.md"),
    _q("runtime_conversion_cycles", "Y_rt", "cycles", "conversion cycles over the run, split/merge included",
       "output", "docs/runtime.md"),
    _q("steady_split_rate", "sdot", "1/s", "splits per second once steady (merges alike)", "output",
       "docs/runtime.md"),
    _q("steady_conversion_ops_rate", "Cdot", "1/s", "conversion operations per second once steady", "output",
       "docs/runtime.md"),
    _q("total_splits", "s_tot", "1", "splits, boot and run time", "output", "docs/runtime.md"),
    _q("total_merges", "m_tot", "1", "merges, boot and run time", "output", "docs/runtime.md"),
    _q("total_conversion_ops", "C_tot", "1", "conversion operations, boot and run time", "output",
       "docs/runtime.md"),
    _q("total_conversion_cycles", "Y_tot", "cycles", "conversion cycles, boot and run time", "output",
       "docs/runtime.md"),
    _q("total_split_merge_share", "f_sm_tot", "1", "share of all conversion cycles spent on split/merge",
       "output", "docs/runtime.md"),
    _q("final_huge_mapped_fraction", "f_huge_end", "1", "fraction of guest memory mapped with hugepages at the "
       "end of the run", "output", "domain.md §6 [derived], §7 host promotion, §9 TDX"),
]

QUANTITIES: dict[str, Quantity] = {q.name: q for q in _QUANTITIES}


def __getattr__(name):
    """``BY_SYMBOL`` (symbol → quantity), made on first use: it needs SymPy (PEP 562)."""
    if name == "BY_SYMBOL":
        globals()["BY_SYMBOL"] = by_symbol = {q.symbol: q for q in _QUANTITIES}
        return by_symbol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def of_kind(kind: str) -> list[Quantity]:
    """All quantities of one kind, in registry order."""
    return [q for q in _QUANTITIES if q.kind == kind]


def symbol(name: str):
    """The SymPy symbol of the quantity called ``name``."""
    return QUANTITIES[name].symbol


COEFFICIENTS = [q.name for q in of_kind("coefficient")]
OUTPUTS = [q.name for q in of_kind("output")]
