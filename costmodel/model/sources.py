"""The catalogue of what a confidential guest converts to shared, and where it lands.

One :class:`Source` per row of ``shared/domain.md`` §3 as §9 corrects it: what is shared,
on which platform, by which kernel function, and the **cluster** the allocator puts it in
(docs/placement.md §4). Sources in one cluster share hugepages; clusters are counted once
each by the union (:mod:`costmodel.model.union`). The placement simulator reads this
catalogue too (never the closed form), so both count the same sources.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """One place from which guest memory becomes shared."""

    #: Key of its splits in breakdowns (``splits_from_<name>``).
    name: str
    label: str
    platforms: tuple[str, ...]
    #: The cluster it lands in (docs/placement.md §4).
    cluster: str
    what: str
    source: str


SOURCES: tuple[Source, ...] = (
    Source("swiotlb", "SWIOTLB bounce pool", ("snp", "tdx"), "low-RAM top",
           "one block of S(M, N), 4 KiB aligned, below 4 GiB, converted whole",
           "arch/x86/mm/mem_encrypt.c mem_encrypt_setup_arch(); arch/x86/kernel/pci-dma.c swiotlb_memblock_alloc()"),
    Source("atomic_pool_dma", "atomic DMA pool (ZONE_DMA)", ("snp", "tdx"), "ZONE_DMA",
           "128 KiB per GiB of totalram, power of two, 128 KiB–4 MiB, naturally aligned",
           "kernel/dma/pool.c dma_atomic_pool_init(), atomic_pool_expand()"),
    Source("atomic_pool_dma32", "atomic DMA pool (ZONE_DMA32)", ("snp", "tdx"), "low-RAM top",
           "as the DMA pool, below node 0's top of DMA32 memory", "kernel/dma/pool.c"),
    Source("atomic_pool_kernel", "atomic DMA pool (kernel)", ("snp", "tdx"), "node 0 coherent",
           "as the DMA pool, at the top of node 0's free memory", "kernel/dma/pool.c"),
    Source("devices", "device queues (virtio rings, NVMe queues)", ("snp", "tdx"), "node 0 coherent",
           "each queue's coherent allocation, back to back per device at probe time",
           "drivers/virtio/virtio_ring.c vring_alloc_queue() → dma_alloc_coherent(); drivers/nvme/host/pci.c"),
    Source("guest_messages", "guest messages, quote buffer, kvmclock", ("snp", "tdx"), "node 0 coherent",
           "SNP request and response pages; the TDX quote buffer (8 KiB); kvmclock's array beyond 64 CPUs (SNP)",
           "arch/x86/coco/sev/core.c snp_msg_alloc(); drivers/virt/coco/tdx-guest/tdx-guest.c alloc_quote_buf(); "
           "arch/x86/kernel/kvmclock.c kvmclock_init_mem()"),
    Source("percpu", "per-CPU decrypted data", ("snp",), "node stacks",
           "apf_reason, steal_time, kvm_apic_eoi: one page per possible CPU, in its per-CPU unit",
           "arch/x86/kernel/kvm.c sev_map_percpu_data(); mm/percpu.c pcpu_build_alloc_info()"),
    Source("ghcb", "GHCB pages", ("snp",), "node stacks",
           "one 4 KiB page per possible CPU, 12 KiB apart (16 KiB under an SVSM)",
           "arch/x86/coco/sev/core.c sev_es_init_vc_handling(), alloc_runtime_data()"),
    Source("bss_decrypted", ".bss..decrypted", ("snp",), "kernel image",
           "2 MiB-aligned section of the kernel image; its tail is re-encrypted, the hugepage stays split",
           "arch/x86/mm/mem_encrypt_amd.c mem_encrypt_free_decrypted_mem()"),
    Source("remainder", "unexplained (firmware, early boot)", ("snp", "tdx"), "low RAM",
           "pages no listed source explains, spread over low RAM (fitted count)",
           "domain.md §3 [derived] 'A fitted constant term is needed'"),
    Source("transient", "transient (converted back at boot)", ("snp", "tdx"), "transient span",
           "pages converted to shared and back during boot; their hugepages merge (fitted count)",
           "domain.md §2 '≈30 merged back'; §9 firmware flips"),
)

BY_NAME = {s.name: s for s in SOURCES}
