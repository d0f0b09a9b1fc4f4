"""The page allocator as the kernel runs it at boot: lowest free blocks first (an option,
:class:`~costmodel.simulate.rules.KernelRules` ``page_order="bottom_up"``).

``memblock_free_all()`` frees RAM in ascending address order, each block to the tail of its
free list (``__free_pages_core()`` → ``__free_pages_ok(..., FPI_TO_TAIL)``, Linux ≥ 5.10), so
each free list is sorted low to high and the allocator takes its head
(``get_page_from_free_area()``). An unmovable allocation with no unmovable block free falls
back to the largest movable block, the lowest 4 MiB block of the zone, and ``expand()``
keeps its lower half for the caller: allocations pack **upwards** from the bottom of each
zone [code, mm/mm_init.c, mm/page_alloc.c __rmqueue_smallest(), __rmqueue_fallback(), expand()].

Modelled as a cursor per (node, zone) that only moves up, from the first 4 MiB-aligned free
block of the zone's lowest range that holds one: each block naturally aligned, directly above
the previous; the gaps alignment leaves go to a free list that later blocks of their size or
smaller take first, lowest first, splitting a larger gap as the buddy allocator does. Not
modelled: what the kernel allocated before (slab, page tables — they shift ZONE_NORMAL's
blocks up by some MiB), per-CPU page lists holding freed pages, page shuffling.
"""

from __future__ import annotations

import numpy as np

from costmodel.simulate.allocators import ZONES, FreeLists, intersect
from costmodel.simulate.rules import MAX_ORDER_BYTES


class BottomUpPageAllocator(FreeLists):
    """Blocks of 2^order pages above a rising cursor per (node, zone), reusing alignment gaps [B].

    The same interface as :class:`~costmodel.simulate.allocators.PageAllocator`.
    """

    def __init__(self, free, nodes, early: int = 0):
        self.ranges = {}  # (node, zone) → free ranges, ascending
        self.nodes = len(nodes)
        for i, pieces in enumerate(nodes):
            on_node = [piece for a, b in pieces for piece in intersect(free, a, b)]
            for zone, (lo, hi) in ZONES.items():
                self.ranges[(i, zone)] = sorted(intersect(on_node, lo, hi))
        self.cursor = {key: self._start(r, 0) for key, r in self.ranges.items()}
        first = next((key for key in self._order("kernel", 0) if self.ranges[key]), None)
        if early and first is not None:  # the kernel's own earlier allocations, skipped
            self.cursor[first] = self._skip(self.ranges[first], early)
        self.holes: dict = {key: {} for key in self.ranges}  # (node, zone) → size → starts

    def _start(self, ranges, index: int):
        """(range index, address) where the cursor enters range ``index``: its first 4 MiB block
        (the fallback claims the largest free block, lowest first), else the range start; None
        past the last range."""
        if index >= len(ranges):
            return None
        lo, hi = ranges[index]
        block = -(-lo // MAX_ORDER_BYTES) * MAX_ORDER_BYTES
        return (index, block if block + MAX_ORDER_BYTES <= hi else lo)

    def _skip(self, ranges, early: int):
        """The cursor after ``early`` bytes taken from the bottom of ``ranges``, at the next 4 MiB block."""
        for index, (lo, hi) in enumerate(ranges):
            start = -(-lo // MAX_ORDER_BYTES) * MAX_ORDER_BYTES
            if start + early + MAX_ORDER_BYTES <= hi:
                return (index, -(-(start + early) // MAX_ORDER_BYTES) * MAX_ORDER_BYTES)
            early -= max(0, hi - start)
        return None

    def _take_hole(self, key, size: int) -> int | None:
        """The lowest free-list block of ``size``, split from the smallest larger one if need be."""
        holes = self.holes[key]
        fitting = [t for t, starts in holes.items() if t >= size and starts]
        if not fitting:
            return None
        t = min(fitting)
        starts = holes[t]
        b = min(starts)
        starts.remove(b)
        piece = size
        while piece < t:  # expand(): the caller keeps the low part, the upper buddies go back
            holes.setdefault(piece, []).append(b + piece)
            piece *= 2
        return b

    def _from_cursor(self, key, size: int, count: int) -> np.ndarray | None:
        """Up to ``count`` blocks above the cursor, each directly above the previous; None when
        the zone is full. [B]"""
        while self.cursor[key] is not None:
            index, bottom = self.cursor[key]
            hi = self.ranges[key][index][1]
            first = -(-bottom // size) * size
            if first + size > hi:  # this range is full: the next one up
                self.cursor[key] = self._start(self.ranges[key], index + 1)
                continue
            self._add_gap(key, bottom, first)
            take = min(count, (hi - first) // size)
            self.cursor[key] = (index, first + size * take)
            return first + size * np.arange(take, dtype=np.int64)
        return None
