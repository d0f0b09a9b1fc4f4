"""Where the simulator may follow the Linux kernel instead of docs/placement.md (its section
"Where the spec departs from the kernel").

:class:`KernelRules` holds one switch per known departure; the default (every switch off) is
the spec, so nothing the simulator prints by default changes. Each switch is the kernel's
behaviour as read in its source:

* ``page_order="bottom_up"`` — the page allocator hands out the **lowest** free blocks first
  at boot: ``memblock_free_all()`` frees RAM to the buddy allocator in ascending order, each
  block to the tail of its free list (``__free_pages_core()`` → ``__free_pages_ok(...,
  FPI_TO_TAIL)``, since Linux 5.10), and ``__rmqueue_smallest()`` / the migratetype
  fallback take the head (``get_page_from_free_area()``); ``expand()`` keeps the lower half.
  [code, mm/mm_init.c, mm/page_alloc.c]
* ``ghcb_in_percpu_holes`` — ``pcpu_embed_first_chunk()`` gives each unit's unused tail and
  every unused unit back to memblock before ``alloc_runtime_data()`` allocates the GHCB
  runtime data one CPU at a time, so top-down memblock puts a CPU's GHCB data in those holes
  when they are large enough [code, mm/percpu.c, arch/x86/coco/sev/core.c].
* ``totalram_from_memblock`` — the atomic pool size uses ``totalram_pages()``, the pages
  memblock handed to the buddy allocator (RAM minus *every* reservation), with the kernel's
  integer arithmetic (whole 128 KiB per GiB, then the page order) [code, kernel/dma/pool.c].
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from costmodel.errors import Argument, InputError
from costmodel.model import kernel
from costmodel.units import PAGE_SIZE, GiB

#: The page allocator's orders of handing out fresh memory.
PAGE_ORDERS = ("top_down", "bottom_up")
#: The largest buddy block, 4 MiB (MAX_PAGE_ORDER 10) [code, include/linux/mmzone.h]. [B]
MAX_ORDER_BYTES = 1024 * PAGE_SIZE


@dataclass(frozen=True)
class KernelRules:
    """Which of the spec's placement rules the simulator replaces by the kernel's (all off: the spec).

    Parameters
    ----------
    page_order : str
        ``"top_down"`` (the spec: each cluster at the highest block below what is above it) or
        ``"bottom_up"`` (the kernel ≥ 5.10: the lowest free blocks of each zone first).
    ghcb_in_percpu_holes : bool
        The per-CPU groups' unused unit tails and units go back to memblock first; each CPU's
        GHCB runtime data is then its own top-down memblock allocation.
    totalram_from_memblock : bool
        The atomic pool sized from RAM minus everything memblock reserved, in the kernel's
        integer arithmetic.
    early_page_bytes : int
        With ``page_order="bottom_up"``: what the kernel's own page allocations (slab, page
        tables, …) took from the bottom of the zone GFP_KERNEL uses first on node 0 before the
        atomic pools; they shift the pools and rings up [unknown: some tens of MiB]. [B]
    """

    page_order: str = "top_down"
    ghcb_in_percpu_holes: bool = False
    totalram_from_memblock: bool = False
    early_page_bytes: int = 0

    def __post_init__(self):
        if self.page_order not in PAGE_ORDERS:
            raise InputError(Argument("page_order"), self.page_order, f"one of {', '.join(PAGE_ORDERS)}")
        for name in CORRECTIONS[1:]:
            if not isinstance(getattr(self, name), bool):
                raise InputError(Argument(name), getattr(self, name), "True or False")
        if isinstance(self.early_page_bytes, bool) or not isinstance(self.early_page_bytes, int) \
                or self.early_page_bytes < 0:
            raise InputError(Argument("early_page_bytes"), self.early_page_bytes, "a whole number of bytes ≥ 0")

    @classmethod
    def kernel(cls) -> "KernelRules":
        """Every correction at once."""
        return cls("bottom_up", True, True)

    @classmethod
    def only(cls, name: str) -> "KernelRules":
        """The spec with the one correction ``name`` (a field name) switched to the kernel's."""
        if name not in CORRECTIONS:
            raise InputError(Argument("name"), name, f"one of {', '.join(CORRECTIONS)}")
        return replace(cls(), **{name: getattr(cls.kernel(), name)})

    @property
    def is_spec(self) -> bool:
        return self == KernelRules()

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: The corrections, by field name, in the order docs/placement.md lists them ((a), (c), (d); (b) is
#: the spec's rule since December 2026).
CORRECTIONS: tuple[str, ...] = ("page_order", "ghcb_in_percpu_holes", "totalram_from_memblock")


def atomic_pool_bytes_kernel(totalram: int) -> int:
    """``dma_atomic_pool_init()``'s pool size for ``totalram`` bytes of managed RAM: whole pages of
    128 KiB per GiB (integer division), capped at 4 MiB, at least 128 KiB, then rounded up to a
    power of two of pages by ``get_order()`` in ``atomic_pool_expand()``. [B]"""
    pages = (int(totalram) // PAGE_SIZE) // (GiB // kernel.ATOMIC_POOL_PER_GIB)
    size = max(min(pages, MAX_ORDER_BYTES // PAGE_SIZE) * PAGE_SIZE, kernel.ATOMIC_POOL_MIN)
    order_pages = 1
    while order_pages * PAGE_SIZE < size:
        order_pages *= 2
    return min(order_pages * PAGE_SIZE, MAX_ORDER_BYTES)
