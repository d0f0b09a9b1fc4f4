"""The two boot-time allocators, as intervals (docs/placement.md §4).

* :class:`Memblock` — the early allocator: RAM minus reserved ranges; an allocation takes
  the highest free range that fits below a limit, its start aligned down (memblock's default
  top-down policy) [code, mm/memblock.c memblock_find_in_range_node(), __memblock_find_range_top_down()].
  Node allocations that do not fit on their node retry anywhere
  [code, memblock_alloc_range_nid(): "retry with NUMA_NO_NODE"].
* :class:`PageAllocator` — what memblock leaves free, handed out per (node, zone) from a
  cursor that only moves down: each block is naturally aligned (``alloc_pages(order)``) and
  lies directly below the previous one, as docs/placement.md §4.4–4.5 place them; a zone
  with no room falls back to the next zone of the GFP mask, then to the other nodes
  (the kernel's node-ordered zonelist) [code, mm/page_alloc.c build_zonelists()].
"""

from __future__ import annotations

import numpy as np

from costmodel.units import PAGE_SIZE as PAGE
from costmodel.units import GiB, MiB

ZONE_DMA_END = 16 * MiB
FOUR_GIB = 4 * GiB
#: Zones: name → guest-physical range [B].
ZONES = {"dma": (0, ZONE_DMA_END), "dma32": (ZONE_DMA_END, FOUR_GIB), "normal": (FOUR_GIB, 1 << 62)}
#: The zones an allocation may use, by GFP mask, in fallback order [code, gfp_zone(), zonelists].
GFP = {"dma": ("dma",), "dma32": ("dma32", "dma"), "kernel": ("normal", "dma32", "dma")}


def subtract(ranges, holes) -> list[tuple[int, int]]:
    """``ranges`` minus ``holes`` (both lists of [start, end)), ascending, empty pieces dropped."""
    out = []
    holes = sorted(holes)
    for lo, hi in sorted(ranges):
        cursor = lo
        for h_lo, h_hi in holes:
            if h_hi <= cursor or h_lo >= hi:
                continue
            if h_lo > cursor:
                out.append((cursor, h_lo))
            cursor = max(cursor, h_hi)
            if cursor >= hi:
                break
        if cursor < hi:
            out.append((cursor, hi))
    return out


def intersect(ranges, lo: int, hi: int) -> list[tuple[int, int]]:
    """``ranges`` clipped to [lo, hi)."""
    return [(max(a, lo), min(b, hi)) for a, b in ranges if min(b, hi) > max(a, lo)]


def intersect_all(ranges, others) -> list[tuple[int, int]]:
    """``ranges`` ∩ ``others`` (both lists of [start, end)), ascending."""
    return sorted(piece for a, b in others for piece in intersect(ranges, a, b))


class Memblock:
    """Early boot memory: RAM ranges and what is reserved in them (guest-physical) [B]."""

    def __init__(self, ram):
        self.ram = sorted(ram)
        self.reserved: list[tuple[int, int]] = []

    def reserve(self, start: int, end: int) -> None:
        if end > start:
            self.reserved.append((int(start), int(end)))

    def release(self, start: int, end: int) -> None:
        """Give [start, end) back (``memblock_free()``): no longer reserved."""
        if end > start:
            self.reserved = subtract(self.reserved, [(int(start), int(end))])

    def free(self, lo: int = 0, hi: int = 1 << 62) -> list[tuple[int, int]]:
        """Free RAM in [lo, hi), ascending."""
        return subtract(intersect(self.ram, lo, hi), self.reserved)

    def alloc(self, size: int, align: int, lo: int = 0, hi: int = 1 << 62, within=None) -> int | None:
        """Top-down: the highest ``align``-aligned start whose [start, start+size) is free in
        [lo, hi) (and inside ``within``, a list of ranges, when given); reserved. None if none fits."""
        base = self.ram if within is None else intersect_all(self.ram, within)
        ranges = subtract(intersect(base, lo, hi), self.reserved)
        for a, b in reversed(ranges):
            start = (b - size) // align * align
            if start >= a:
                self.reserve(start, start + size)
                return start
        return None

    def alloc_node(self, size: int, align: int, pieces) -> int:
        """On the node (its guest-physical ``pieces``) if it fits, else anywhere."""
        start = self.alloc(size, align, within=pieces)
        if start is None:
            start = self.alloc(size, align)
        if start is None:
            raise MemoryError(f"memblock: no room for {size} bytes")
        return start


class FreeLists:
    """What both page allocators share: runs of blocks (free lists first, then the subclass's
    ``_from_cursor``), single blocks and sequences of sizes, the zones a GFP mask may use, node by node (its own first), and
    free lists of naturally aligned blocks per (node, zone) in ``self.holes``."""

    holes: dict
    nodes: int

    def alloc(self, size: int, gfp: str = "kernel", node: int = 0) -> int:
        """One naturally aligned block of ``size`` bytes (a power of two of pages)."""
        return int(self.alloc_run(size, 1, gfp, node)[0])

    def alloc_sequence(self, sizes, gfp: str = "kernel", node: int = 0) -> np.ndarray:
        """Blocks of the given sizes in order (runs of one size at once). [B]"""
        sizes = np.asarray(sizes, dtype=np.int64)
        if not sizes.size:
            return np.zeros(0, dtype=np.int64)
        cut = np.flatnonzero(np.diff(sizes)) + 1
        bounds = np.concatenate([[0], cut, [sizes.size]])
        return np.concatenate([self.alloc_run(int(sizes[a]), int(b - a), gfp, node)
                               for a, b in zip(bounds[:-1], bounds[1:])])

    def alloc_run(self, size: int, count: int, gfp: str = "kernel", node: int = 0) -> np.ndarray:
        """``count`` blocks of ``size`` bytes: free-list blocks first, then from the subclass's
        cursor (``_from_cursor``), zone by zone in the GFP mask's order. [B]"""
        out = []
        left = count
        for key in self._order(gfp, node):
            while left:
                hole = self._take_hole(key, size)
                if hole is not None:
                    out.append(np.array([hole], dtype=np.int64))
                    left -= 1
                    continue
                blocks = self._from_cursor(key, size, left)
                if blocks is None:
                    break
                out.append(blocks)
                left -= len(blocks)
            if not left:
                break
        if left:
            raise MemoryError(f"page allocator: no room for {left} blocks of {size} bytes")
        return np.concatenate(out)

    def _order(self, gfp: str, node: int):
        for n in [node] + [i for i in range(self.nodes) if i != node]:
            for zone in GFP[gfp]:
                yield (n, zone)

    def _add_gap(self, key, lo: int, hi: int) -> None:
        """Put [lo, hi) on the free lists as naturally aligned blocks of whole pages."""
        lo = -(-lo // PAGE) * PAGE
        holes = self.holes[key]
        while hi - lo >= PAGE:
            size = lo & -lo if lo else 1 << 62
            while size > hi - lo:
                size //= 2
            holes.setdefault(size, []).append(lo)
            lo += size


class PageAllocator(FreeLists):
    """Blocks of 2^order pages below a falling cursor per (node, zone), reusing holes [B].

    ``free`` is what memblock left (guest-physical); ``nodes`` each node's pieces. A block is
    naturally aligned, so one placed below a smaller one can leave a gap; the gap's aligned
    pieces (not the room above a range's first block, which docs/placement.md §4.4–4.5 leave
    unused: each cluster starts directly below the allocation above it) go to a free list that later blocks of their size or smaller take first, highest
    first, splitting a larger piece as the buddy allocator splits a block
    [code, mm/page_alloc.c __rmqueue_smallest(), expand()]. So blocks pack back to back
    (docs/placement.md §4.5: "a few pages of padding at most").
    """

    def __init__(self, free, nodes):
        self.ranges = {}  # (node, zone) → free ranges, descending
        for i, pieces in enumerate(nodes):
            on_node = [piece for a, b in pieces for piece in intersect(free, a, b)]
            for zone, (lo, hi) in ZONES.items():
                self.ranges[(i, zone)] = sorted(intersect(on_node, lo, hi), reverse=True)
        self.cursor = {key: (0, r[0][1]) if r else None for key, r in self.ranges.items()}
        self.holes: dict = {key: {} for key in self.ranges}  # (node, zone) → size → starts
        self.nodes = len(nodes)

    def _take_hole(self, key, size: int) -> int | None:
        """The highest free-list block of ``size``, split from the smallest larger one if need be."""
        holes = self.holes[key]
        fitting = [t for t, starts in holes.items() if t >= size and starts]
        if not fitting:
            return None
        t = min(fitting)
        starts = holes[t]
        b = max(starts)
        starts.remove(b)
        piece = size
        while piece < t:  # the rest of the block, below the part taken, as smaller buddies
            holes.setdefault(piece, []).append(b + t - 2 * piece)
            piece *= 2
        return b + t - size

    def _from_cursor(self, key, size: int, count: int) -> np.ndarray | None:
        """Up to ``count`` blocks below the cursor, each directly below the previous; None when
        the zone is full. [B]"""
        while self.cursor[key] is not None:
            index, top = self.cursor[key]
            lo = self.ranges[key][index][0]
            first = (top - size) // size * size
            if first < lo:  # this range is full: the next one down
                nxt = index + 1
                self.cursor[key] = (nxt, self.ranges[key][nxt][1]) if nxt < len(self.ranges[key]) else None
                continue
            if top != self.ranges[key][index][1]:  # the first block of a range sits directly below its top
                self._add_gap(key, first + size, top)
            take = min(count, (first - lo) // size + 1)
            self.cursor[key] = (index, first - size * (take - 1))
            return first - size * np.arange(take, dtype=np.int64)
        return None
