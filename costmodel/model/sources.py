"""The catalogue of what a confidential guest converts to shared (domain.md §3).

One :class:`Source` per row of the table in ``shared/domain.md`` §3. Each gives, as a SymPy
expression, how many separately placed *regions* it shares (a region is smaller than a
2 MiB hugepage, or is counted in hugepages of size H), and how many bytes it shares. The
SWIOTLB pool is special: it is one contiguous block, so it touches ⌈S/H⌉ + δ hugepages
directly, instead of being scattered (see :mod:`costmodel.model`).

Numbers that the kernel fixes appear here as literals, each with the function that fixes
it; what the kernel does not fix is a coefficient symbol from :mod:`costmodel.model.variables`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from costmodel.model.variables import symbol

M, N, Q, H, sigma = (symbol(n) for n in ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "is_snp"))
P = symbol("atomic_pool_bytes")

#: Atomic DMA pools: DMA, DMA32 and kernel [code] kernel/dma/pool.c dma_atomic_pool_init().
ATOMIC_POOL_COUNT = 3
#: SNP guest message buffers: request, response, certificates [code] snp guest messaging.
SNP_MESSAGE_BUFFERS = 3
#: Pages per virtqueue ring: vring_size(256) = 6,726 B → 2 pages [code] domain.md §3.
RING_PAGES = 2
#: Possible CPUs covered by kvmclock's boot array in .bss..decrypted [code] HVC_BOOT_ARRAY_SIZE.
KVMCLOCK_BOOT_CPUS = 64


@dataclass(frozen=True)
class Source:
    """One place from which guest memory becomes shared."""

    #: Name of the intermediate quantity holding its region count (see variables.py).
    name: str
    label: str
    platforms: tuple[str, ...]
    what: str
    source: str

    def regions(self, form: "ModelForm") -> sp.Expr:  # noqa: F821 - forward reference
        """Separately placed regions this source shares. [1]"""
        return _REGIONS[self.name](form)


def _ghcb(form):
    spacing = symbol("ghcb_spacing_bytes")
    per_cpu = N if form.percpu == "per_vcpu" else sp.ceiling(spacing * N / H)
    return sigma * per_cpu


def _percpu(form):
    unit = symbol("percpu_unit_bytes")
    per_cpu = N if form.percpu == "per_vcpu" else sp.ceiling(unit * N / H)
    return sigma * per_cpu


def _rings(form):
    if form.rings == "one_per_ring":
        return Q
    return 1 + symbol("ring_locality") * (Q - 1)


_REGIONS = {
    "ghcb_regions": _ghcb,
    "percpu_regions": _percpu,
    "bss_regions": lambda form: sigma,
    "kvmclock_regions": lambda form: sp.Min(1, sp.Max(0, N - KVMCLOCK_BOOT_CPUS)),
    "atomic_pool_regions": lambda form: ATOMIC_POOL_COUNT * sp.ceiling(P / H),
    "ring_regions": _rings,
    "message_regions": lambda form: SNP_MESSAGE_BUFFERS * sigma,
}

SOURCES: tuple[Source, ...] = (
    Source("ghcb_regions", "GHCB pages", ("snp",), "one 4 KiB page per possible CPU",
           "arch/x86/coco/sev/core.c sev_es_init_vc_handling(), alloc_runtime_data()"),
    Source("percpu_regions", "per-CPU decrypted data", ("snp",),
           "apf_reason, steal_time, kvm_apic_eoi: one page per possible CPU",
           "arch/x86/kernel/kvm.c DEFINE_PER_CPU_DECRYPTED"),
    Source("bss_regions", ".bss..decrypted", ("snp",),
           "2 MiB-aligned section; its tail is re-encrypted, the region stays split",
           "arch/x86/mm/mem_encrypt_amd.c mem_encrypt_free_decrypted_mem()"),
    Source("kvmclock_regions", "kvmclock", ("snp", "tdx"),
           "extra pvclock pages only beyond 64 possible CPUs",
           "arch/x86/kernel/kvmclock.c kvmclock_init_mem()"),
    Source("atomic_pool_regions", "atomic DMA pools", ("snp", "tdx"),
           "3 pools of 128 KiB per GiB, power of two, 128 KiB…4 MiB, naturally aligned",
           "kernel/dma/pool.c dma_atomic_pool_init(), atomic_pool_expand()"),
    Source("ring_regions", "virtio rings", ("snp", "tdx"),
           "2 pages per virtqueue (vring_size(256) = 6,726 B), coherent DMA",
           "drivers/virtio/virtio_ring.c vring_alloc_queue() → dma_alloc_coherent()"),
    Source("message_regions", "SNP guest messages", ("snp",),
           "request, response and certificate buffers",
           "drivers/virt/coco/sev-guest (snp_guest_messaging)"),
)

#: Label of the SWIOTLB block and of the fitted remainder, for breakdown tables.
SWIOTLB_LABEL = "SWIOTLB bounce pool"
REMAINDER_LABEL = "remainder (firmware, transient, unexplained)"


def shared_pages(form) -> sp.Expr:
    """4 KiB pages shared by every source but SWIOTLB and the atomic pools. [1]

    Rings: 2 pages each; SNP: GHCB and per-CPU data one page per vCPU each, and the three
    message buffers.
    """
    return RING_PAGES * Q + sigma * (2 * N + SNP_MESSAGE_BUFFERS)

