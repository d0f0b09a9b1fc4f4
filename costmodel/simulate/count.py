"""guest_memfd's rule applied to a boot's conversions (docs/placement.md §5), with NumPy.

A hugepage splits when any to-shared conversion touches it, once however many touch it
[code, kvm_gmem_split_folio_in_filemap()]; it merges when every 4 KiB page in it is private
again [code, kvm_gmem_try_merge_folio_in_filemap()]: at the end of boot that is a hugepage
only transient conversions touched. Hugepages are counted in guest_memfd file offsets.
Each split hugepage is attributed to one source: the first, in :data:`SOURCE_NAMES` order,
that touches it (transient last, so a hugepage attributed to it is one that merged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.model.sources import SOURCES
from costmodel.units import PAGE_SIZE

#: Every source, in attribution order (the catalogue's; ``transient`` is last).
SOURCE_NAMES: tuple[str, ...] = tuple(s.name for s in SOURCES)
SOURCE_INDEX = {name: i for i, name in enumerate(SOURCE_NAMES)}
TRANSIENT = SOURCE_INDEX["transient"]
assert TRANSIENT == len(SOURCE_NAMES) - 1, "the transient source must come last"


@dataclass(frozen=True)
class Conversions:
    """To-shared conversions as parallel arrays of guest_memfd file offsets ``[start, end)`` [B]
    and the index of the source (:data:`SOURCE_NAMES`) that made each."""

    start: np.ndarray
    end: np.ndarray
    source: np.ndarray

    @classmethod
    def join(cls, parts: list[tuple[str, np.ndarray, np.ndarray]]) -> "Conversions":
        """From ``(source name, starts, ends)`` pieces."""
        starts = [np.asarray(s, dtype=np.int64).ravel() for _, s, _ in parts]
        ends = [np.asarray(e, dtype=np.int64).ravel() for _, _, e in parts]
        sources = [np.full(len(s), SOURCE_INDEX[name], dtype=np.int64) for (name, _, _), s in zip(parts, starts)]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty)
        return cls(np.concatenate(starts), np.concatenate(ends), np.concatenate(sources))

    def __len__(self) -> int:
        return len(self.start)

    def bytes_by_source(self) -> np.ndarray:
        """Bytes each source converts (overlaps counted per conversion). [B]"""
        return np.bincount(self.source, weights=self.end - self.start, minlength=len(SOURCE_NAMES))


@dataclass(frozen=True)
class HugepageCount:
    """The split hugepages of one boot."""

    hugepage_bytes: int
    #: Indices (file offset // H) of the split hugepages, ascending.
    pages: np.ndarray
    #: The source each is attributed to.
    owner: np.ndarray

    @property
    def splits(self) -> int:
        return int(self.pages.size)

    @property
    def merged(self) -> np.ndarray:
        """Per split hugepage: merged back (only transient conversions touched it)."""
        return self.owner == TRANSIENT

    @property
    def merges(self) -> int:
        return int(np.count_nonzero(self.merged))

    def by_source(self) -> np.ndarray:
        """Split hugepages attributed to each source (sums to :attr:`splits`). [1]"""
        return np.bincount(self.owner, minlength=len(SOURCE_NAMES))


def count(conversions: Conversions, hugepage_bytes: int) -> HugepageCount:
    """Apply guest_memfd's rule: every hugepage a conversion touches, once, with its owner."""
    empty = np.zeros(0, dtype=np.int64)
    if hugepage_bytes <= PAGE_SIZE or not len(conversions):  # 4 KiB: no hugepages, nothing splits
        return HugepageCount(int(hugepage_bytes), empty, empty)
    keep = conversions.end > conversions.start
    first = conversions.start[keep] // hugepage_bytes
    last = (conversions.end[keep] - 1) // hugepage_bytes
    source = conversions.source[keep]
    lengths = last - first + 1
    total = int(lengths.sum())
    # every (hugepage, source) pair, without a loop: a ramp inside each conversion's range
    base = np.repeat(first - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    pages = base + np.arange(total, dtype=np.int64)
    owners = np.repeat(source, lengths)
    key = pages * len(SOURCE_NAMES) + owners
    key = np.unique(key)  # sorted: per hugepage, its lowest-index source first
    page_of = key // len(SOURCE_NAMES)
    firsts = np.concatenate([[True], page_of[1:] != page_of[:-1]])
    return HugepageCount(int(hugepage_bytes), page_of[firsts], key[firsts] % len(SOURCE_NAMES))


def brute_force(conversions: Conversions, hugepage_bytes: int) -> tuple[int, int]:
    """Splits and merges by walking every 4 KiB page (for tests on small guests). [1]"""
    if hugepage_bytes <= PAGE_SIZE:
        return 0, 0
    touched: dict[int, set[int]] = {}
    for start, end, source in zip(conversions.start, conversions.end, conversions.source):
        for page in range(int(start) // PAGE_SIZE, -(-int(end) // PAGE_SIZE)):
            touched.setdefault(page * PAGE_SIZE // hugepage_bytes, set()).add(int(source))
    merges = sum(1 for sources in touched.values() if sources == {TRANSIENT})
    return len(touched), merges
