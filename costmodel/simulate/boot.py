"""One boot, replayed: where each allocator puts each source (docs/placement.md §4, steps 1–7).

:func:`replay` lays out the guest (:mod:`~costmodel.simulate.layout`), runs memblock and the
page allocator (:mod:`~costmodel.simulate.allocators`) in boot order and returns a
:class:`Boot`: every to-shared conversion as an interval, and the placements a map draws.
Randomness (the KASLR slot, the firmware end J, a fractional remainder count) comes from
one seeded generator; ``rng=None`` is the deterministic boot (kernel at 16 MiB, J = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from costmodel.errors import Argument, InputError
from costmodel.model import kernel
from costmodel.shape import VmShape, device_allocations
from costmodel.simulate.allocators import Memblock, PageAllocator, subtract
from costmodel.simulate.bottom_up import BottomUpPageAllocator
from costmodel.simulate.count import Conversions
from costmodel.simulate.layout import (
    FOUR_GIB,
    LOW_RESERVED,
    PMD,
    SWIOTLB_FLOOR,
    SWIOTLB_MIN_HALVED,
    Layout,
    Parameters,
    draw_jitter,
    firmware_range,
    kaslr_slot,
)
from costmodel.simulate.rules import KernelRules, atomic_pool_bytes_kernel
from costmodel.units import PAGE_SIZE, KiB, MiB

ZONE_DMA_END = 16 * MiB
#: GHCB runtime data per CPU: GHCB + backup GHCB (8 KiB) and a few words, page aligned, so
#: slots 12 KiB apart; an SVSM's calling-area page lands between them (16 KiB)
#: [code, arch/x86/coco/sev/core.c alloc_runtime_data(); domain.md §9 'GHCB with an SVSM'].
GHCB_SLOT = 12 * KiB
GHCB_SLOT_SVSM = 16 * KiB
#: The SVSM calling-area page allocated after each CPU's GHCB data [code, alloc_runtime_data()]. [B]
SVSM_CA_BYTES = PAGE_SIZE


@dataclass(frozen=True)
class Placement:
    """One allocation on the map: what, where (guest-physical [start, end)) [B]."""

    what: str
    start: int
    end: int


@dataclass(frozen=True)
class Boot:
    """The outcome of one simulated boot."""

    shape: VmShape
    params: Parameters
    layout: Layout
    #: Guest-physical start of the kernel image [B] and the firmware end's offset J [B].
    image: int
    jitter: int
    #: SWIOTLB size after any halving [B]; atomic pool size (0 without pools) [B].
    swiotlb_bytes: int
    atomic_pool_bytes: int
    #: Every to-shared conversion, in file offsets.
    conversions: Conversions
    #: Guest-physical placements of memblock's and the page allocator's blocks (for the map).
    placements: tuple[Placement, ...] = field(default=())
    #: Which placement rules follow the kernel instead of the spec (default: the spec).
    rules: KernelRules = field(default=KernelRules())


def _spread(lo: int, hi: int, n: int) -> np.ndarray:
    """``n`` single pages evenly over [lo, hi): page j at lo + ⌊(j + ½)(hi − lo)/n⌋, page aligned. [B]"""
    if n <= 0 or hi <= lo:
        return np.zeros(0, dtype=np.int64)
    j = np.arange(n, dtype=np.float64)
    at = lo + np.floor((j + 0.5) * ((hi - lo) / n)).astype(np.int64)
    return at // PAGE_SIZE * PAGE_SIZE


def _count_of(value: float, rng: np.random.Generator | None) -> int:
    """A fractional count: its floor, plus one with probability its fraction (rounded without rng)."""
    whole = math.floor(value)
    frac = value - whole
    if rng is None:
        return int(round(value))
    return whole + int(frac > 0 and rng.random() < frac)


@lru_cache(maxsize=32)
def _fixed(shape: VmShape) -> tuple[Layout, np.ndarray, int]:
    """What every boot of a shape shares: the layout, the devices' allocation sizes [B], the
    per-CPU units per atom [1]."""
    layout = Layout.of(shape)
    sizes = np.asarray(device_allocations(shape.effective_devices, shape.effective_boot_vcpus), dtype=np.int64)
    sizes.setflags(write=False)
    upa = kernel.percpu_units_per_atom([node.cpus for node in layout.nodes], kernel.PERCPU_UNIT_MIN)
    return layout, sizes, upa


def replay(shape: VmShape, params: Parameters | None = None, rng: np.random.Generator | None = None,
           rules: KernelRules | None = None) -> Boot:
    """Replay one boot of ``shape``; ``rng`` None for the deterministic boot; ``rules`` which placement
    rules follow the kernel instead of the spec (None: the spec). A shape whose early allocations do
    not fit in its memory is an input error (the kernel would not boot)."""
    try:
        return _replay(shape, params or Parameters(), rng, rules or KernelRules())
    except MemoryError as error:
        raise InputError(Argument("memory"), shape.memory_bytes,
                         f"enough guest memory to boot this shape ({error})") from None


def _replay(shape: VmShape, params: Parameters, rng: np.random.Generator | None, rules: KernelRules) -> Boot:
    layout, device_sizes, upa = _fixed(shape)
    snp = shape.platform == "snp"
    memblock = Memblock(layout.ram)
    placements: list[Placement] = []
    parts: list[tuple[str, np.ndarray, np.ndarray]] = []

    def place(what, start, size):
        placements.append(Placement(what, int(start), int(start + size)))

    # --- before memblock allocates: the first MiB, the firmware, the kernel image (§3, §4.1)
    memblock.reserve(0, LOW_RESERVED)
    jitter = draw_jitter(rng) if rng is not None else 0
    firmware = firmware_range(layout, params, jitter)
    memblock.reserve(*firmware)
    place("firmware", firmware[0], firmware[1] - firmware[0])
    image_bytes = int(params.kernel_image_bytes)
    image = kaslr_slot(memblock.free(), image_bytes, rng if shape.kaslr else None)
    memblock.reserve(image, image + image_bytes)
    place("kernel image", image, image_bytes)
    if snp:  # .bss..decrypted: its 2 MiB page is decrypted whole and stays split
        bss = image + int(params.kernel_bss_offset_bytes)
        parts.append(("bss_decrypted", np.array([bss]), np.array([bss + PMD])))

    # --- memblock, top-down per node: memmap, per-CPU groups, GHCB runtime data (§4.2)
    memmaps = 0
    for node in layout.nodes:
        size = kernel.memmap_bytes(node.end - node.start)
        memmaps += size
        place(f"memmap {node.index}", memblock.alloc_node(size, PMD, node.pieces), size)
    unit = kernel.PERCPU_ATOM // upa
    holes: list[tuple[int, int]] = []
    for node in layout.nodes:
        size = -(-node.cpus // upa) * kernel.PERCPU_ATOM
        group = memblock.alloc_node(size, kernel.PERCPU_ATOM, node.pieces)
        place(f"per-CPU group {node.index}", group, size)
        if snp:  # sev_map_percpu_data(): one page of each CPU's unit
            first = group + unit * np.arange(node.cpus, dtype=np.int64)
            parts.append(("percpu", first, first + PAGE_SIZE))
        if rules.ghcb_in_percpu_holes:
            holes.extend(_percpu_holes(group, size, unit, node.cpus))
    for hole in holes:  # pcpu_embed_first_chunk(): returned after every group is allocated
        memblock.release(*hole)
    if snp and rules.ghcb_in_percpu_holes:
        _ghcb_per_cpu(memblock, layout, shape.svsm, parts, place)
    elif snp:
        slot = GHCB_SLOT_SVSM if shape.svsm else GHCB_SLOT
        for node in layout.nodes:  # CPU c's slot directly below CPU c−1's; its first page is the GHCB
            size = node.cpus * slot
            block = memblock.alloc_node(size, PAGE_SIZE, node.pieces)
            place(f"GHCB slots {node.index}", block, size)
            first = block + size - slot * np.arange(1, node.cpus + 1, dtype=np.int64)
            parts.append(("ghcb", first, first + PAGE_SIZE))

    # --- SWIOTLB: memblock_alloc_low(), top-down below 4 GiB, halved until it fits (§4.3)
    swiotlb = kernel.swiotlb_bytes(shape.memory_bytes, shape.vcpus, shape.swiotlb_bytes)
    start = memblock.alloc(swiotlb, PAGE_SIZE, SWIOTLB_FLOOR, FOUR_GIB)
    while start is None and swiotlb > SWIOTLB_MIN_HALVED:
        swiotlb //= 2
        start = memblock.alloc(swiotlb, PAGE_SIZE, SWIOTLB_FLOOR, FOUR_GIB)
    if start is None:
        raise MemoryError("no room below 4 GiB for a SWIOTLB of 1 MiB")
    parts.append(("swiotlb", np.array([start]), np.array([start + swiotlb])))
    place("SWIOTLB", start, swiotlb)

    # --- the page allocator: atomic pools, then the small coherent allocations (§4.4, §4.5)
    free = memblock.free()
    if rules.page_order == "top_down" and holes:  # the spec's clusters start below the node's stack, holes and all
        free = subtract(free, holes)
    if rules.page_order == "bottom_up":
        pages = BottomUpPageAllocator(free, [node.pieces for node in layout.nodes], rules.early_page_bytes)
    else:
        pages = PageAllocator(free, [node.pieces for node in layout.nodes])
    # top-down, the page allocator's clusters lie below the SWIOTLB and bound the unexplained span
    # (§4.6); bottom-up they sit at the bottom of the zone, and the span keeps memblock's bound
    bounding = rules.page_order == "top_down"
    pool = 0
    low_starts = [start]
    if shape.atomic_pools:
        if rules.totalram_from_memblock:  # totalram_pages(): what memblock handed to the buddy allocator
            pool = atomic_pool_bytes_kernel(sum(b - a for a, b in memblock.free()))
        else:
            reserved = PMD * -(-int(params.firmware_reserved_bytes) // PMD)
            totalram = shape.memory_bytes - swiotlb - memmaps - reserved - image_bytes
            pool = kernel.atomic_pool_bytes(totalram)
        for name, gfp in _pools(memblock, layout):
            at = pages.alloc(pool, gfp)
            parts.append((name, np.array([at]), np.array([at + pool])))
            place(name.replace("_", " "), at, pool)
            if name != "atomic_pool_dma" and bounding:
                low_starts.append(at)
    small = []
    if snp:
        small.append(("guest_messages", [PAGE_SIZE] * kernel.SNP_MESSAGE_PAGES))
        if shape.vcpus > kernel.KVMCLOCK_BOOT_CPUS:
            extra = kernel.KVMCLOCK_BYTES_PER_CPU * (shape.vcpus - kernel.KVMCLOCK_BOOT_CPUS)
            small.append(("guest_messages", [kernel.page_order_bytes(extra)]))
    else:
        small.append(("guest_messages", [kernel.page_order_bytes(kernel.TDX_QUOTE_BYTES)]))
    small.append(("devices", device_sizes))
    for name, sizes in small:
        if len(sizes):
            sizes = np.asarray(sizes, dtype=np.int64)
            at = pages.alloc_sequence(sizes)
            parts.append((name, at, at + sizes))
            place(name.replace("_", " "), at.min(), int((at + sizes).max() - at.min()))
            if bounding:
                low_starts.append(int(at.min()))

    # --- unexplained pages over low RAM, below the lowest permanent allocation there (§4.6)
    stacks = [p.start for p in placements if p.what.startswith(("memmap", "per-CPU", "GHCB"))]
    above = [s for s in low_starts + stacks if ZONE_DMA_END <= s < layout.lowmem]
    top = min(above) if above else layout.lowmem
    at = _spread(ZONE_DMA_END, top, _count_of(params.remainder_regions, rng))
    parts.append(("remainder", at, at + PAGE_SIZE))

    # --- transient pages over the first Z_tr of RAM from 4 GiB (§4.7)
    if shape.memory_bytes > layout.lowmem:
        base, span = FOUR_GIB, min(params.transient_span_bytes, shape.memory_bytes - layout.lowmem)
    else:
        base, span = ZONE_DMA_END, min(params.transient_span_bytes, layout.lowmem - ZONE_DMA_END)
    at = _spread(base, base + int(span), _count_of(params.transient_regions, rng))
    parts.append(("transient", at, at + PAGE_SIZE))

    gpa = Conversions.join(parts)  # guest-physical; guest_memfd counts in file offsets
    conversions = Conversions(layout.offset(gpa.start), layout.offset(gpa.end - 1) + 1, gpa.source)
    return Boot(shape, params, layout, int(image), int(jitter), int(swiotlb), int(pool), conversions,
                tuple(placements), rules)


def _percpu_holes(group: int, size: int, unit: int, cpus: int) -> list[tuple[int, int]]:
    """What ``pcpu_embed_first_chunk()`` gives back to memblock from one group: each used unit's
    tail past the CPU's data (``unit_size − size_sum``) and every unused unit [code, mm/percpu.c]. [B]"""
    used = min(unit, kernel.PERCPU_UNIT_MIN)
    holes = [(group + i * unit + used, group + (i + 1) * unit) for i in range(cpus) if unit > used]
    if group + cpus * unit < group + size:
        holes.append((group + cpus * unit, group + size))
    return holes


def _ghcb_per_cpu(memblock: Memblock, layout: Layout, svsm: bool, parts, place) -> None:
    """``alloc_runtime_data()`` per possible CPU, in CPU order: its GHCB data (12 KiB, page aligned)
    top-down on its node — in the highest hole that fits, the per-CPU groups' returned tails
    included — then, under an SVSM, its calling-area page [code, arch/x86/coco/sev/core.c]."""
    for node in layout.nodes:
        firsts = []
        for _ in range(node.cpus):
            at = memblock.alloc_node(GHCB_SLOT, PAGE_SIZE, node.pieces)
            firsts.append(at)
            if svsm:
                memblock.alloc_node(SVSM_CA_BYTES, PAGE_SIZE, node.pieces)
        first = np.asarray(firsts, dtype=np.int64)
        parts.append(("ghcb", first, first + PAGE_SIZE))
        place(f"GHCB slots {node.index}", int(first.min()), int(first.max() + GHCB_SLOT - first.min()))


def _pools(memblock: Memblock, layout: Layout) -> list[tuple[str, str]]:
    """The atomic pools built, in order: the GFP_KERNEL pool only if ZONE_NORMAL has memory, then
    DMA and DMA32 if theirs has [code, kernel/dma/pool.c dma_atomic_pool_init()]."""
    pools = [("atomic_pool_kernel", "kernel")] if layout.top > FOUR_GIB else []
    if memblock.free(0, ZONE_DMA_END):
        pools.append(("atomic_pool_dma", "dma"))
    if memblock.free(ZONE_DMA_END, FOUR_GIB):
        pools.append(("atomic_pool_dma32", "dma32"))
    return pools
