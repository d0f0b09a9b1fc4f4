"""The placement simulator: a confidential guest's boot replayed allocator by allocator.

Given a :class:`~costmodel.shape.VmShape`, lay out guest-physical memory as the VMM does,
run the kernel's allocators in boot order (memblock top-down per node, ``memblock_alloc_low``
for the SWIOTLB, the page allocator for pools and rings), collect every to-shared conversion
as an interval and apply guest_memfd's split/merge rule to the hugepages they touch
(docs/placement.md, docs/simulate.md). Randomness (KASLR, the firmware's end) is seeded.

The simulator is the closed form's independent check: it never imports the closed form
(nor SymPy), and the closed form never imports it.

>>> from costmodel.shape import VmShape
>>> from costmodel.simulate import simulate
>>> d = simulate(VmShape(), seeds=1, deterministic=True)
>>> int(d.splits[0]), int(d.merges[0])
(620, 30)
"""

from costmodel.simulate.boot import Boot, Placement, replay
from costmodel.simulate.count import SOURCE_NAMES, Conversions, HugepageCount, count
from costmodel.simulate.layout import Layout, Parameters
from costmodel.simulate.rules import CORRECTIONS, KernelRules
from costmodel.simulate.stats import Distribution, Summary, boot, simulate

__all__ = ["Boot", "CORRECTIONS", "Conversions", "Distribution", "HugepageCount", "KernelRules", "Layout",
           "Parameters", "Placement", "SOURCE_NAMES", "Summary", "boot", "count", "replay", "simulate"]
