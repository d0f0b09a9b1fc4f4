"""Scenarios: substitutions on the model's expressions, never copies of them (domain.md §7).

Each scenario maps quantity names to replacements: a switch's value, a coefficient's
expression, or an intermediate's new definition. :meth:`CostModel.expand` applies them.
TDX vs SNP is not a scenario but the ``platform`` input; larger bounce pools for
accelerators are the ``swiotlb_bytes`` input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from costmodel.errors import InputError, closest
from costmodel.model.variables import symbol
from costmodel.units import MiB


@dataclass(frozen=True)
class Scenario:
    """One what-if, as substitutions on named quantities."""

    name: str
    title: str
    description: str
    source: str
    overrides: dict = field(default_factory=dict, hash=False, compare=False)


_BASE = {"promotion": 0, "pageless": 0}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("status_quo", "Status quo",
                 "Splits go to 4 KiB on every to-shared conversion; merged hugepages stay "
                 "mapped at 4 KiB in the nested page tables.",
                 "domain.md §4, §7", dict(_BASE)),
        Scenario("guest_pooling", "Guest 2 MiB pooling",
                 "The guest carves shared memory from 2 MiB-aligned pools (all dma_alloc_*, "
                 "SWIOTLB 2 MiB-aligned): rings, atomic pools and message buffers come from "
                 "the pool; GHCB, per-CPU data, .bss..decrypted and firmware still split.",
                 "domain.md §7; Annapurve, '[RFC V1 0/5] x86: CVMs: Align memory conversions "
                 "to 2M granularity', Jan 2024",
                 {**_BASE, "ring_regions": 0, "atomic_pool_regions": 0, "message_regions": 0,
                  # aligned to 2 MiB: no straddle at 2 MiB pages, still possible at 1 GiB
                  "swiotlb_misalignment": sp.Piecewise(
                      (0, symbol("hugepage_bytes") <= 2 * MiB),
                      (symbol("swiotlb_misalignment"), True))}),
        Scenario("host_promotion", "Host promotion",
                 "The host re-promotes hugepages that merged back to private, so they are "
                 "mapped huge again.",
                 "domain.md §7; Roth, Message-ID 20250712001055.3in2lnjz6zljydq2@amd.com",
                 {"promotion": 1, "pageless": 0}),
        Scenario("struct_page_less", "struct page-less guest_memfd",
                 "Private memory has no struct pages: vmemmap only for shared memory, and no "
                 "vmemmap restore/optimize on the split/merge path.",
                 "domain.md §6; Annapurve's reply in the seed thread",
                 {"promotion": 0, "pageless": 1}),
    )
}


def get(name: str) -> Scenario:
    """The scenario called ``name``; the error lists the closest names."""
    if name not in SCENARIOS:
        raise InputError("scenario", name, "one of " + ", ".join(closest(name, SCENARIOS, len(SCENARIOS))))
    return SCENARIOS[name]
