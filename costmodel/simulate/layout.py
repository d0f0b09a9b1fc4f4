"""The guest-physical layout the VMM builds, and the simulator's parameters (docs/placement.md §1, §3).

RAM is ``[0, L)`` below 4 GiB and ``[4 GiB, 4 GiB + M − L)`` above it (q35). NUMA nodes
take RAM in address order (QEMU's 8 MiB-granular split). Addresses here are guest-physical
(GPA); guest_memfd counts hugepages in **file offsets**, and QEMU backs the RAM above 4 GiB
at file offset L, so :meth:`Layout.offset` maps one to the other.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from costmodel.errors import Argument, InputError
from costmodel.model import kernel
from costmodel.shape import VmShape
from costmodel.units import PAGE_SIZE, GiB, MiB

FOUR_GIB = 4 * GiB
PMD = 2 * MiB
#: memblock never hands the SWIOTLB memory below this (the kernel image's default place and
#: early allocations) [assumption, docs/placement.md §4.3].
SWIOTLB_FLOOR = 128 * MiB
#: The smallest SWIOTLB the kernel halves down to before giving up [code, IO_TLB_MIN_SLABS = 1 MiB].
SWIOTLB_MIN_HALVED = 1 * MiB
#: The first MiB (real-mode, BIOS data) is reserved before memblock allocates [code, x86 reserve_real_mode(),
#: KASLR's minimum is 16 MiB anyway].
LOW_RESERVED = 1 * MiB


@dataclass(frozen=True)
class Parameters:
    """What no shape says and the simulator must assume: the fitted and assumed coefficients of
    docs/placement.md §3–§4 (the same quantities the closed form's calibration holds, by name).

    Parameters
    ----------
    remainder_regions : float
        Unexplained single-page conversions spread over low RAM (§4.6); a fraction is one
        more page with that probability. [1]
    transient_regions : float
        Pages converted to shared and back at boot (§4.7). [1]
    transient_span_bytes : int
        RAM from 4 GiB up over which the transient pages spread. [B]
    firmware_reserved_bytes : int
        The firmware's reservation at the top of low RAM, rounded up to 2 MiB (F). [B]
    kernel_image_bytes : int
        The kernel image, which KASLR must fit in one RAM range. [B]
    kernel_bss_offset_bytes : int
        Offset of the 2 MiB ``.bss..decrypted`` page inside the image. [B]
    """

    remainder_regions: float = 70.0
    transient_regions: float = 30.0
    transient_span_bytes: int = 2 * GiB
    firmware_reserved_bytes: int = 64 * MiB
    kernel_image_bytes: int = 64 * MiB
    kernel_bss_offset_bytes: int = 48 * MiB

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value) or value < 0:
                raise InputError(Argument(f.name), value, "a finite number ≥ 0")
        if self.kernel_bss_offset_bytes + PMD > self.kernel_image_bytes:
            raise InputError(Argument("kernel_bss_offset_bytes"), self.kernel_bss_offset_bytes,
                             "an offset whose 2 MiB page lies inside the kernel image")

    @classmethod
    def from_mapping(cls, values) -> "Parameters":
        """The parameters named in ``values`` (a calibration's coefficients, say); others default."""
        names = {f.name for f in fields(cls)}
        kept = {k: (float(v) if k.endswith("_regions") else int(round(float(v)))) for k, v in values.items()
                if k in names}
        return cls(**kept)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Node:
    """One NUMA node: its RAM as RAM offsets ``[start, end)``, its guest-physical pieces, its CPUs."""

    index: int
    start: int
    end: int
    cpus: int
    pieces: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Layout:
    """The VMM's guest-physical map of one shape."""

    memory: int
    lowmem: int
    nodes: tuple[Node, ...]
    #: RAM as guest-physical ranges [B].
    ram: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, shape: VmShape) -> "Layout":
        memory, lowmem = shape.memory_bytes, shape.effective_lowmem
        ram = [(0, lowmem)] + ([(FOUR_GIB, FOUR_GIB + memory - lowmem)] if memory > lowmem else [])
        nodes, start = [], 0
        cpus = kernel.node_cpus(shape.vcpus, shape.numa_nodes)
        for i, size in enumerate(kernel.node_ram(memory, shape.numa_nodes)):
            end = start + size
            nodes.append(Node(i, start, end, cpus[i], tuple(_gpa_pieces(start, end, lowmem))))
            start = end
        return cls(memory, lowmem, tuple(nodes), tuple(ram))

    def offset(self, gpa):
        """guest_memfd file offset of guest-physical address(es) ``gpa`` (RAM only). [B]"""
        gpa = np.asarray(gpa, dtype=np.int64)
        return np.where(gpa >= FOUR_GIB, gpa - FOUR_GIB + self.lowmem, gpa)

    def gpa(self, offset):
        """Guest-physical address of RAM offset(s) ``offset``. [B]"""
        offset = np.asarray(offset, dtype=np.int64)
        return np.where(offset >= self.lowmem, offset + FOUR_GIB - self.lowmem, offset)

    @property
    def top(self) -> int:
        """The end of RAM (guest-physical). [B]"""
        return self.ram[-1][1]


def _gpa_pieces(start: int, end: int, lowmem: int):
    """Guest-physical ranges of RAM offsets [start, end)."""
    if start < lowmem:
        yield (start, min(end, lowmem))
    if end > lowmem:
        lo = max(start, lowmem)
        yield (lo + FOUR_GIB - lowmem, end + FOUR_GIB - lowmem)


def firmware_range(layout: Layout, params: Parameters, jitter: int) -> tuple[int, int]:
    """The firmware's reservation at the top of low RAM: F (whole 2 MiB pages) plus ``jitter`` bytes. [B]"""
    reserved = PMD * -(-int(params.firmware_reserved_bytes) // PMD)
    return (max(LOW_RESERVED, layout.lowmem - reserved - jitter), layout.lowmem)


def draw_jitter(rng: np.random.Generator) -> int:
    """The firmware end's page offset J inside a 2 MiB page, uniform over 1…511 pages. [B]"""
    return int(rng.integers(1, PMD // PAGE_SIZE)) * PAGE_SIZE


def kaslr_slot(free: list[tuple[int, int]], image: int, rng: np.random.Generator | None) -> int:
    """Where the kernel image lands: 16 MiB without KASLR (``rng`` None), else a uniformly drawn
    2 MiB-aligned slot at or above 16 MiB where the image fits in one free RAM range
    [code, arch/x86/boot/compressed/kaslr.c find_random_phys_addr(), process_mem_region()]. [B]"""
    if rng is None:
        return kernel.KERNEL_LOAD
    starts, counts = [], []
    for lo, hi in free:
        first = max(lo, kernel.KERNEL_LOAD)
        first = -(-first // kernel.KERNEL_ALIGN) * kernel.KERNEL_ALIGN
        if hi - first >= image:
            starts.append(first)
            counts.append((hi - first - image) // kernel.KERNEL_ALIGN + 1)
    if not counts:
        return kernel.KERNEL_LOAD
    pick = int(rng.integers(0, sum(counts)))
    for first, count in zip(starts, counts):
        if pick < count:
            return first + pick * kernel.KERNEL_ALIGN
        pick -= count
    raise AssertionError("unreachable")
