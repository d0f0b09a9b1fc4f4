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

import sympy as sp

from costmodel.units import GiB, KiB


@dataclass(frozen=True)
class Quantity:
    """One named quantity of the model."""

    name: str
    symbol: sp.Symbol
    unit: str
    meaning: str
    kind: str
    source: str = ""
    #: For coefficients: the value used when nothing else binds it (an assumption).
    default: float | None = None
    #: For coefficients: physically admissible range (used as fit bounds).
    bounds: tuple[float, float] = (0.0, math.inf)
    #: For coefficients: solved from the published reference numbers by
    #: :func:`costmodel.calibration.reference_calibration` instead of assumed.
    from_reference: bool = False


def _q(name, latex, unit, meaning, kind, source="", **kw) -> Quantity:
    return Quantity(name, sp.Symbol(latex, positive=True), unit, meaning, kind, source, **kw)


_QUANTITIES = [
    # --- inputs: the VM shape -------------------------------------------------------
    _q("memory_bytes", "M", "B", "guest memory", "input", "domain.md §1"),
    _q("vcpus", "N", "1", "possible vCPUs", "input", "domain.md §3 (GHCB, per-CPU rows)"),
    _q("virtqueues", "Q", "1",
       "virtqueues (default: vCPUs + 3 = virtio-blk one per vCPU, virtio-net rx/tx/ctrl)",
       "input", "domain.md §3 'Virtqueue count' [code, QEMU]"),
    _q("hugepage_bytes", "H", "B", "guest_memfd hugepage size (4 KiB = no hugepages)",
       "input", "domain.md §1"),
    _q("is_snp", "sigma", "1", "1 for AMD SEV-SNP, 0 for Intel TDX", "input",
       "domain.md §3 platform column"),
    _q("swiotlb_bytes", "S", "B", "SWIOTLB bounce pool size (kernel rule unless overridden)",
       "input", "domain.md §3 'SWIOTLB size' [code] mem_encrypt_setup_arch()"),
    # --- coefficients solved from the published reference ----------------------------
    _q("remainder_regions", "r", "1",
       "small shared regions not explained by a listed source (firmware, transient "
       "conversions, extra devices)", "coefficient",
       "domain.md §3 [derived] '≈80–100 of the 622 unexplained'", from_reference=True,
       default=80.0, bounds=(0.0, 1e6)),
    _q("placement_span_bytes", "Z", "B",
       "span of guest-physical memory over which the small shared regions land",
       "coefficient", "domain.md §3 [derived] 1 GiB row: splits collapse into few pages",
       from_reference=True, default=4.0 * GiB, bounds=(2.0 * 1024**2, 64.0 * 1024**4)),
    _q("transient_regions", "n_tr", "1",
       "regions converted to shared and back to private during the run (merge candidates)",
       "coefficient", "domain.md §2 '≈30 merged back', §7 host-side promotion",
       from_reference=True, default=30.0, bounds=(0.0, 1e6)),
    _q("transient_span_bytes", "Z_tr", "B",
       "span of guest-physical memory over which the transient regions land",
       "coefficient", "domain.md §2 '1 GiB: 2 merged'", from_reference=True,
       default=2.0 * GiB, bounds=(2.0 * 1024**2, 64.0 * 1024**4)),
    _q("split_fixed_cycles", "c_fix", "cycles",
       "fixed cost of one split or merge event", "coefficient",
       "domain.md §2 [derived] split/merge cost ≈ fixed + per-sub-page", from_reference=True,
       default=2.0e4),
    _q("split_subpage_cycles", "c_sub", "cycles",
       "cost of one split or merge event per 4 KiB sub-page", "coefficient",
       "domain.md §2 [derived] ≈180–220 cycles per sub-page", from_reference=True,
       default=180.0),
    _q("conversion_ops_per_gib", "o_mem", "1/GiB",
       "conversion operations per GiB of guest memory (acceptance and boot conversions)",
       "coefficient", "domain.md §2 total conversion cycles; §3 'unaccepted memory'",
       from_reference=True, default=1.9e5),
    # --- coefficients assumed (not identifiable from the single published guest) -----
    _q("conversion_op_cycles", "c_op", "cycles", "cost of one plain conversion operation",
       "coefficient", "domain.md §2 [mail] '46475980 cycles vs 320'", default=320.0),
    _q("conversion_ops_fixed", "o_fix", "1",
       "conversion operations independent of guest memory", "coefficient",
       "assumed 0: one published memory size cannot separate it from o_mem", default=0.0),
    _q("swiotlb_misalignment", "delta", "1",
       "extra hugepage the SWIOTLB block touches because it is only 4 KiB-aligned",
       "coefficient", "domain.md §3 SWIOTLB row: δ = 1 when not H-aligned", default=1.0,
       bounds=(0.0, 1.0)),
    _q("ring_locality", "rho", "1",
       "fraction of virtqueue rings that land in a hugepage of their own (0: all share one)",
       "coefficient", "domain.md §3 virtio rings row '1…N_vq regions' [unverified]",
       default=1.0, bounds=(0.0, 1.0)),
    _q("ghcb_spacing_bytes", "u_ghcb", "B", "distance between consecutive vCPUs' GHCB pages",
       "coefficient", "domain.md §3 GHCB row [derived] ≈12 KiB", default=12.0 * KiB,
       bounds=(4.0 * KiB, 2.0 * 1024**2)),
    _q("percpu_unit_bytes", "u_pcpu", "B", "per-CPU unit size (spacing of per-CPU decrypted data)",
       "coefficient", "domain.md §3 per-CPU row [unverified] ≈256 KiB", default=256.0 * KiB,
       bounds=(4.0 * KiB, 2.0 * 1024**2)),
    _q("vmemmap_cycle_share", "phi", "1",
       "share of per-sub-page split/merge cycles spent restoring/optimizing vmemmap",
       "coefficient", "domain.md §4 split cost, §6 struct page-less [unverified]",
       default=0.5, bounds=(0.0, 1.0)),
    # --- scenario switches -------------------------------------------------------------
    _q("promotion", "psi", "1", "1 when the host re-promotes merged hugepages", "switch",
       "domain.md §7 host-side promotion"),
    _q("pageless", "lambda", "1", "1 when private memory has no struct pages", "switch",
       "domain.md §6 struct page-less guest_memfd"),
    # --- intermediates -----------------------------------------------------------------
    _q("atomic_pool_bytes", "P", "B", "size of each atomic DMA pool", "intermediate",
       "domain.md §3 'Atomic DMA pools' [code] dma_atomic_pool_init()"),
    _q("swiotlb_hugepages", "h_S", "1", "hugepages the SWIOTLB block touches", "intermediate",
       "domain.md §3 SWIOTLB row"),
    _q("ghcb_regions", "R_ghcb", "1", "hugepage-sized regions holding GHCB pages",
       "intermediate", "domain.md §3 GHCB row"),
    _q("percpu_regions", "R_pcpu", "1", "regions holding per-CPU decrypted data",
       "intermediate", "domain.md §3 per-CPU row"),
    _q("bss_regions", "R_bss", "1", ".bss..decrypted section regions", "intermediate",
       "domain.md §3 .bss..decrypted row"),
    _q("kvmclock_regions", "R_kvmclock", "1", "kvmclock regions beyond the boot array",
       "intermediate", "domain.md §3 kvmclock row"),
    _q("atomic_pool_regions", "R_pool", "1", "regions of the three atomic DMA pools",
       "intermediate", "domain.md §3 atomic DMA pools row"),
    _q("ring_regions", "R_ring", "1", "regions holding virtqueue rings", "intermediate",
       "domain.md §3 virtio rings row"),
    _q("message_regions", "R_msg", "1", "SNP guest message buffers", "intermediate",
       "domain.md §3 SNP guest messages row"),
    _q("small_regions", "n", "1", "small shared regions, all sources but SWIOTLB",
       "intermediate", "domain.md §3"),
    _q("placement_hugepages", "B", "1", "hugepages in the placement span", "intermediate",
       "occupancy of n regions in B hugepages (balls into bins)"),
    _q("transient_hugepages", "B_tr", "1", "hugepages in the transient span", "intermediate",
       "as B, for the transient regions"),
    _q("split_merge_event_cycles", "E", "cycles", "cycles of one split or merge event",
       "intermediate", "domain.md §2 [derived], §4"),
    _q("vmemmap_structpage_bytes", "V_sp", "B", "vmemmap with struct pages (HVO, after splits)",
       "intermediate", "domain.md §6"),
    _q("vmemmap_pageless_bytes", "V_pl", "B", "vmemmap when only shared memory has struct pages",
       "intermediate", "domain.md §6 struct page-less"),
    # --- outputs -------------------------------------------------------------------------
    _q("splits", "s", "1", "hugepages split during boot", "output", "domain.md §2–§4"),
    _q("merges", "m", "1", "split hugepages merged back during run time", "output",
       "domain.md §2, §4 kvm_gmem_try_merge_folio_in_filemap"),
    _q("conversion_ops", "C", "1", "conversion operations", "output", "domain.md §2, §5"),
    _q("split_merge_cycles", "Y_sm", "cycles", "cycles spent in all split and merge events",
       "output", "domain.md §2"),
    _q("conversion_cycles", "Y", "cycles",
       "cycles spent handling conversions, split/merge included", "output",
       "domain.md §2 kvm_gmem_convert_execute_work()"),
    _q("split_merge_share", "f_sm", "1", "share of conversion cycles spent on split/merge",
       "output", "domain.md §2 '≈7 %'"),
    _q("shared_bytes", "D", "B", "guest memory converted to shared", "output", "domain.md §3"),
    _q("vmemmap_unsplit_bytes", "V_hvo", "B", "vmemmap (struct page) memory with HVO, before any split",
       "output", "domain.md §6 Documentation/mm/vmemmap_dedup.rst"),
    _q("vmemmap_bytes", "V", "B", "vmemmap (struct page) memory after splits and merges",
       "output", "domain.md §6"),
    _q("pageless_saving_bytes", "V_save", "B",
       "vmemmap a struct page-less guest_memfd would save", "output", "domain.md §6"),
    _q("huge_mapped_fraction", "f_huge", "1",
       "fraction of guest memory still mapped with hugepages", "output", "domain.md §6 [derived]"),
]

QUANTITIES: dict[str, Quantity] = {q.name: q for q in _QUANTITIES}
BY_SYMBOL: dict[sp.Symbol, Quantity] = {q.symbol: q for q in _QUANTITIES}


def of_kind(kind: str) -> list[Quantity]:
    """All quantities of one kind, in registry order."""
    return [q for q in _QUANTITIES if q.kind == kind]


def symbol(name: str) -> sp.Symbol:
    """The SymPy symbol of the quantity called ``name``."""
    return QUANTITIES[name].symbol


COEFFICIENTS = [q.name for q in of_kind("coefficient")]
OUTPUTS = [q.name for q in of_kind("output")]
