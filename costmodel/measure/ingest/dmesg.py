"""Reader of the guest kernel's boot messages that size its shared memory.

Lines read (wording checked in torvalds/linux):

- ``kernel/dma/swiotlb.c``: ``software IO TLB: SWIOTLB bounce buffer size adjusted to
  %luMB`` (``swiotlb_adjust_size()``, called by ``mem_encrypt_setup_arch()`` for SEV and
  TDX), ``… size roundup to %luMB`` (``swiotlb_adjust_nareas()``: power-of-two rounding),
  and ``software IO TLB: mapped [mem %pa-%pa] (%luMB)`` (the pool actually placed; the
  range end is exclusive).
- ``kernel/dma/pool.c``: ``DMA: preallocated %zu KiB %pGg pool for atomic allocations``
  (one line per atomic pool; older kernels omit the GFP flags).

Lines may carry any prefix (``[    0.000000] ``, ``<6>``, a journald or serial-console
prefix). A log with several boots (``Linux version`` lines) keeps the last boot's values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from costmodel.units import KiB, MiB

_BOOT = re.compile(r"\bLinux version (\S+)")
_ADJUSTED = re.compile(r"SWIOTLB bounce buffer size adjusted to (\d+)MB")
_ROUNDUP = re.compile(r"SWIOTLB bounce buffer size roundup to (\d+)MB")
_MAPPED = re.compile(r"software IO TLB: mapped \[mem (0x[0-9a-fA-F]+)-(0x[0-9a-fA-F]+)\] \((\d+)MB\)")
_POOL = re.compile(r"DMA: preallocated (\d+) KiB (?:(\S+) )?pool for atomic allocations")
_FEATURES = re.compile(r"Memory Encryption Features active: (.*)$")

MARKERS = ("software IO TLB", "pool for atomic allocations", "Linux version",
           "Memory Encryption Features active")


@dataclass
class GuestBoot:
    """What one boot's messages say about shared memory.

    Attributes
    ----------
    swiotlb_bytes : int or None
        SWIOTLB pool size: from the ``mapped`` range, else the ``roundup``/``adjusted``
        line. [B]
    swiotlb_start : int or None
        Guest-physical start of the pool (its hugepage alignment matters). [B]
    atomic_pools : list
        ``(bytes, gfp flags)`` of each atomic DMA pool. [B]
    """

    kernel: str = ""
    swiotlb_bytes: int | None = None
    swiotlb_start: int | None = None
    swiotlb_adjusted_bytes: int | None = None
    swiotlb_roundup_bytes: int | None = None
    atomic_pools: list = field(default_factory=list)
    encryption: str = ""

    @property
    def atomic_pool_bytes(self) -> int | None:
        return sum(b for b, _ in self.atomic_pools) if self.atomic_pools else None


@dataclass
class GuestDmesg:
    path: str
    boots: list[GuestBoot]

    @property
    def last(self) -> GuestBoot:
        return self.boots[-1]

    @property
    def messages(self) -> list[str]:
        out = []
        if len(self.boots) > 1:
            out.append(f"{self.path}: {len(self.boots)} boots in one log; using the last one")
        if self.boots and self.last.swiotlb_bytes is None:
            out.append(f"{self.path}: no SWIOTLB size line ('software IO TLB: mapped [mem …]' or "
                       "'… size roundup to …MB'); swiotlb_bytes left empty")
        return out


def looks_like_dmesg(text: str) -> bool:
    return any(marker in text for marker in MARKERS)


def parse_dmesg(text: str, path: str = "<dmesg>") -> GuestDmesg:
    """Read SWIOTLB size and placement and the atomic DMA pools from a guest's boot log."""
    boots: list[GuestBoot] = []
    current = None
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        boot = _BOOT.search(line)
        if boot or current is None:
            current = GuestBoot(kernel=boot[1] if boot else "")
            boots.append(current)
            if boot:
                continue
        if m := _MAPPED.search(line):
            start, end = int(m[1], 16), int(m[2], 16)
            current.swiotlb_start, current.swiotlb_bytes = start, end - start
        elif m := _ROUNDUP.search(line):
            current.swiotlb_roundup_bytes = int(m[1]) * MiB
        elif m := _ADJUSTED.search(line):
            current.swiotlb_adjusted_bytes = int(m[1]) * MiB
        elif m := _POOL.search(line):
            current.atomic_pools.append((int(m[1]) * KiB, m[2] or ""))
        elif m := _FEATURES.search(line):
            current.encryption = m[1].strip()
    for boot in boots:
        if boot.swiotlb_bytes is None:
            boot.swiotlb_bytes = boot.swiotlb_roundup_bytes or boot.swiotlb_adjusted_bytes
    # A leading stretch before the first "Linux version" with nothing in it is not a boot.
    boots = [b for b in boots if b.kernel or b.swiotlb_bytes or b.atomic_pools or b.encryption] or boots
    return GuestDmesg(path, boots)
