"""Scenarios: substitutions on the model's expressions, never copies of them (domain.md §7).

Each scenario maps quantity names to replacements: a switch's value, a coefficient's
expression, or an intermediate's new definition. :meth:`CostModel.expand` applies them.
TDX vs SNP is not a scenario but the ``platform`` input; larger bounce pools for
accelerators are the ``swiotlb_bytes`` input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from costmodel.errors import InputError, closest


@dataclass(frozen=True)
class Scenario:
    """One what-if, as substitutions on named quantities."""

    name: str
    title: str
    description: str
    source: str
    overrides: dict = field(default_factory=dict, hash=False, compare=False)


_BASE = {"promotion": 0, "pageless": 0, "pooling": 0}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("status_quo", "Status quo",
                 "Splits go to 4 KiB on every to-shared conversion; merged hugepages stay "
                 "mapped at 4 KiB in the nested page tables.",
                 "domain.md §4, §7", dict(_BASE)),
        Scenario("guest_pooling", "Guest 2 MiB pooling",
                 "The guest carves shared memory from 2 MiB-aligned pools (all dma_alloc_*, a "
                 "2 MiB-aligned SWIOTLB): the kernel atomic pool, device queues and messages pack into "
                 "whole 2 MiB pages; GHCB pages, per-CPU data, .bss..decrypted and firmware still split.",
                 "domain.md §7; Annapurve, '[RFC V1 0/5] x86: CVMs: Align memory conversions "
                 "to 2M granularity', Jan 2024", {**_BASE, "pooling": 1}),
        Scenario("host_promotion", "Host promotion",
                 "The host re-promotes hugepages that merged back to private, so they are "
                 "mapped huge again (not on TDX, which does not allow promotion back to 2 MiB).",
                 "domain.md §7; Roth, Message-ID 20250712001055.3in2lnjz6zljydq2@amd.com",
                 {**_BASE, "promotion": 1}),
        Scenario("struct_page_less", "struct page-less guest_memfd",
                 "Private memory has no struct pages: vmemmap only for shared memory, and no "
                 "vmemmap restore/optimize on the split/merge path.",
                 "domain.md §6; Annapurve's reply in the seed thread",
                 {**_BASE, "pageless": 1}),
    )
}


def get(name: str) -> Scenario:
    """The scenario called ``name``; the error lists the closest names."""
    if name not in SCENARIOS:
        raise InputError("scenario", name, "one of " + ", ".join(closest(name, SCENARIOS, len(SCENARIOS))))
    return SCENARIOS[name]
