"""The kernel's and the VMM's sizing rules, as plain numbers (docs/placement.md §2–§3).

Each function reproduces one rule of the source it names, so the placement simulator can
replay a boot with them and the closed form (:mod:`costmodel.model.sources`, which states
the same rules in SymPy) can be checked against them. No SymPy here: the simulator imports
this module and never the closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from costmodel.units import PAGE_SIZE, GiB, KiB, MiB

#: Below this much RAM q35 keeps it all under 4 GiB; at or above, 2 GiB stay low [code, QEMU pc_q35_init()].
Q35_LOWMEM_LIMIT = 0xB000_0000
Q35_LOWMEM_SPLIT = 2 * GiB
#: QEMU's granularity when it splits RAM between NUMA nodes [code, numa_default_auto_assign_ram()].
NUMA_MEM_GRANULE = 8 * MiB
#: The most NUMA nodes the model follows (each node adds clusters to the closed form).
MAX_NUMA_NODES = 8
#: ZONE_DMA ends here [code, include/linux/mmzone.h MAX_DMA_PFN].
ZONE_DMA_END = 16 * MiB
#: Where the kernel image is loaded without KASLR [code, CONFIG_PHYSICAL_START].
KERNEL_LOAD = 16 * MiB
#: Alignment of the kernel image and of KASLR slots [code, CONFIG_PHYSICAL_ALIGN].
KERNEL_ALIGN = 2 * MiB
#: Memory section size and the memmap of one section [code, SECTION_SIZE_BITS = 27; 64 B struct page].
SECTION_BYTES = 128 * MiB
STRUCT_PAGE_BYTES = 64
#: Per-CPU atoms are PMD-sized on x86-64 [code, setup_percpu.c].
PERCPU_ATOM = 2 * MiB
#: A CPU's static + reserved + dynamic per-CPU data on a distribution kernel (dmesg: "percpu:
#: Embedded 64 pages/cpu") [unverified: build-dependent]; pcpu_build_alloc_info() packs units
#: of at least this size into 2 MiB atoms.
PERCPU_UNIT_MIN = 256 * KiB
#: SWIOTLB: slab size, minimum slabs per area, default clamp [code, kernel/dma/swiotlb.c, mem_encrypt.c].
IO_TLB_SIZE = 2 * KiB
IO_TLB_SEGSIZE = 128
SWIOTLB_SHARE = 0.06
SWIOTLB_MIN = 64 * MiB
SWIOTLB_MAX = 1 * GiB
#: Atomic pools: 128 KiB per GiB of totalram, clamped [code, dma_atomic_pool_init()].
ATOMIC_POOL_PER_GIB = 128 * KiB
ATOMIC_POOL_MIN = 128 * KiB
ATOMIC_POOL_MAX = 4 * MiB
#: kvmclock's boot array covers this many CPUs [code, HVC_BOOT_ARRAY_SIZE].
KVMCLOCK_BOOT_CPUS = 64
KVMCLOCK_BYTES_PER_CPU = 64
#: SNP guest message pages that stay shared: request and response [code, snp_msg_alloc()].
SNP_MESSAGE_PAGES = 2
#: TDX quote buffer [code, tdx-guest.c GET_QUOTE_BUF_SIZE].
TDX_QUOTE_BYTES = 8 * KiB
#: NVMe entry sizes and admin queue depth [code, drivers/nvme/host/pci.c].
NVME_SQ_ENTRY = 64
NVME_CQ_ENTRY = 16
NVME_ADMIN_DEPTH = 32
#: virtio-net control queue and vsock queue sizes [code, QEMU virtio-net.c, vhost-vsock].
VIRTIO_NET_CTRL_SIZE = 64
VSOCK_QUEUE_SIZE = 128
VSOCK_QUEUES = 3
#: Virtio queue sizes allowed (powers of two) [code, virtio spec; QEMU VIRTQUEUE_MAX_SIZE].
QUEUE_SIZE_MAX = 32768


def pow2ceil(x: float) -> int:
    """Smallest power of two ≥ ``x`` (1 for x ≤ 1)."""
    return 1 if x <= 1 else 1 << math.ceil(math.log2(x))


def page_order_bytes(size: float) -> int:
    """Bytes the page allocator hands out for ``size``: ``PAGE_SIZE << get_order(size)``. [B]"""
    return PAGE_SIZE * pow2ceil(math.ceil(size / PAGE_SIZE))


# --- the VMM -------------------------------------------------------------------------------------
def q35_lowmem(memory: int) -> int:
    """RAM below 4 GiB on q35 for ``memory`` bytes of RAM. [B]"""
    return memory if memory < Q35_LOWMEM_LIMIT else Q35_LOWMEM_SPLIT


def gpa(offset: int, lowmem: int) -> int:
    """Guest-physical address of the RAM byte at ``offset`` (RAM above ``lowmem`` starts at 4 GiB). [B]"""
    return offset if offset < lowmem else offset + 4 * GiB - lowmem


def node_ram(memory: int, nodes: int) -> list[int]:
    """RAM of each NUMA node: ⌊M/K⌋ rounded down to 8 MiB, the last node the rest. [B]"""
    each = (memory // nodes) // NUMA_MEM_GRANULE * NUMA_MEM_GRANULE
    return [each] * (nodes - 1) + [memory - each * (nodes - 1)]


def node_cpus(cpus: int, nodes: int) -> list[int]:
    """Possible CPUs of each node, spread evenly, the first ``cpus mod nodes`` one more. [1]"""
    return [cpus // nodes + (1 if i < cpus % nodes else 0) for i in range(nodes)]


# --- sizes -----------------------------------------------------------------------------------------
def swiotlb_bytes(memory: int, possible_cpus: int, override: int | None = None) -> int:
    """SWIOTLB pool size before placement (halving on failure is the allocator's). [B]"""
    wanted = override if override else min(SWIOTLB_MAX, max(SWIOTLB_MIN, SWIOTLB_SHARE * memory))
    slabs = math.ceil(wanted / IO_TLB_SIZE / IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE
    slabs = max(slabs, IO_TLB_SEGSIZE * pow2ceil(possible_cpus))
    return pow2ceil(slabs) * IO_TLB_SIZE


def atomic_pool_bytes(totalram: int) -> int:
    """Size of each atomic DMA pool for ``totalram`` bytes of managed RAM. [B]"""
    wanted = ATOMIC_POOL_PER_GIB * totalram / GiB
    return int(min(ATOMIC_POOL_MAX, max(ATOMIC_POOL_MIN, PAGE_SIZE * pow2ceil(wanted / PAGE_SIZE))))


def memmap_bytes(node_memory: int) -> int:
    """The memmap of a node: 2 MiB of struct page per 128 MiB section. [B]"""
    return math.ceil(node_memory / SECTION_BYTES) * (SECTION_BYTES // PAGE_SIZE) * STRUCT_PAGE_BYTES


def percpu_units_per_atom(node_cpus_list: list[int], unit_min: int) -> int:
    """``upa`` as ``pcpu_build_alloc_info()`` picks it for groups of these CPU counts. [1]"""
    alloc = math.ceil(unit_min / PERCPU_ATOM) * PERCPU_ATOM
    upa = alloc // unit_min
    while upa > 1 and (alloc % upa or (alloc // upa) % PAGE_SIZE):
        upa -= 1
    possible = sum(node_cpus_list)
    best, last_allocs = 1, math.inf
    for candidate in range(upa, 0, -1):
        if alloc % candidate or (alloc // candidate) % PAGE_SIZE:
            continue
        allocs = sum(math.ceil(n / candidate) for n in node_cpus_list if n)
        wasted = sum(math.ceil(n / candidate) * candidate - n for n in node_cpus_list if n)
        if wasted > possible // 3:
            continue
        if allocs > last_allocs:
            break
        last_allocs, best = allocs, candidate
    return best


def percpu_unit_bytes(node_cpus_list: list[int], unit_min: int) -> int:
    """One CPU's per-CPU unit: the 2 MiB atom divided by ``upa``. [B]"""
    return PERCPU_ATOM // percpu_units_per_atom(node_cpus_list, unit_min)


def vring_split_bytes(size: int) -> int:
    """``vring_size()`` of a split ring of ``size`` entries (64-byte aligned used ring). [B]"""
    return math.ceil((16 * size + 6 + 2 * size) / 64) * 64 + 6 + 8 * size


@dataclass(frozen=True)
class Device:
    """One device of the guest, as ``--device KIND:queues=Q,size=S,layout=L`` gives it.

    ``queues`` None takes the kind's default (QEMU's), ``size`` None the kind's queue size.
    """

    kind: str
    queues: int | None = None
    size: int | None = None
    layout: str = "split"

    def spec(self) -> str:
        """The device as a ``--device`` value."""
        keys = [f"{k}={v}" for k, v in (("queues", self.queues), ("size", self.size)) if v is not None]
        if self.layout != "split":
            keys.append(f"layout={self.layout}")
        return self.kind + (":" + ",".join(keys) if keys else "")


#: Device kinds: (default queues from boot vCPUs, default queue size).
DEVICE_KINDS = ("virtio-blk", "virtio-net", "virtio-scsi", "virtio-vsock", "nvme", "virtio")


def device_queue_allocations(device: Device, boot_vcpus: int) -> list[int]:
    """Bytes of each coherent allocation the device's queues make, in allocation order. [B]"""
    kind = device.kind
    if kind == "nvme":
        depth = device.size or 1024
        pairs = device.queues if device.queues is not None else boot_vcpus
        out = [page_order_bytes(NVME_SQ_ENTRY * NVME_ADMIN_DEPTH), page_order_bytes(NVME_CQ_ENTRY * NVME_ADMIN_DEPTH)]
        for _ in range(pairs):
            out += [page_order_bytes(NVME_SQ_ENTRY * depth), page_order_bytes(NVME_CQ_ENTRY * depth)]
        return out
    size = device.size or 256
    if kind == "virtio-net":
        sizes = [size] * (2 * (device.queues or 1)) + [VIRTIO_NET_CTRL_SIZE]
    elif kind == "virtio-vsock":
        sizes = [device.size or VSOCK_QUEUE_SIZE] * VSOCK_QUEUES
    elif kind == "virtio-scsi":
        sizes = [size] * ((device.queues if device.queues is not None else boot_vcpus) + 2)
    elif kind == "virtio-blk":
        sizes = [size] * (device.queues if device.queues is not None else boot_vcpus)
    else:  # generic virtio: the --virtqueues shortcut
        sizes = [size] * (device.queues or 1)
    out = []
    for q in sizes:
        if device.layout == "packed":
            out += [page_order_bytes(16 * q), PAGE_SIZE, PAGE_SIZE]
        else:
            out.append(page_order_bytes(vring_split_bytes(q)))
    return out


def virtqueue_count(device: Device, boot_vcpus: int) -> int:
    """Virtqueues of a virtio device (0 for NVMe, whose queues are not virtqueues). [1]"""
    if device.kind == "nvme":
        return 0
    if device.kind == "virtio-net":
        return 2 * (device.queues or 1) + 1
    if device.kind == "virtio-vsock":
        return VSOCK_QUEUES
    queues = device.queues if device.queues is not None else (boot_vcpus if device.kind != "virtio" else 1)
    return queues + (2 if device.kind == "virtio-scsi" else 0)


def default_devices() -> tuple[Device, ...]:
    """QEMU's usual guest: one virtio-blk disk and one virtio-net interface."""
    return (Device("virtio-blk"), Device("virtio-net"))


def percpu_units_per_atom_array(cpus, nodes, unit_min: int = PERCPU_UNIT_MIN):
    """:func:`percpu_units_per_atom` of :func:`node_cpus` ``(cpus, nodes)`` for arrays of
    configurations at once (the same choice, row by row, without a Python loop per row)."""
    import numpy as np

    cpus = np.asarray(cpus, dtype=np.int64)
    nodes = np.asarray(nodes, dtype=np.int64)
    alloc = math.ceil(unit_min / PERCPU_ATOM) * PERCPU_ATOM
    upa = alloc // unit_min
    while upa > 1 and (alloc % upa or (alloc // upa) % PAGE_SIZE):
        upa -= 1
    index = np.arange(MAX_NUMA_NODES)[None, :]
    per_node = np.where(index < nodes[:, None], cpus[:, None] // nodes[:, None]
                        + (index < (cpus % nodes)[:, None]), 0)
    best = np.ones(len(cpus), dtype=np.int64)
    last = np.full(len(cpus), np.iinfo(np.int64).max)
    done = np.zeros(len(cpus), dtype=bool)
    for candidate in range(upa, 0, -1):
        if alloc % candidate or (alloc // candidate) % PAGE_SIZE:
            continue
        units = -(-per_node // candidate)  # ceil, 0 for empty nodes
        allocs = units.sum(axis=1)
        wasted = (units * candidate - per_node).sum(axis=1)
        considered = ~done & ~(wasted > cpus // 3)
        stop = considered & (allocs > last)
        done |= stop
        take = considered & ~stop
        last = np.where(take, allocs, last)
        best = np.where(take, candidate, best)
    return best
