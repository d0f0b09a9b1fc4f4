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


@dataclass(frozen=True)
class WorkloadCase:
    """One column of a workload family: the same VM with a different run-time workload.

    ``accelerators`` are ``--accelerator`` specs (:func:`costmodel.workload.accelerator`);
    ``label`` is the short name figures and tables show. Unlike :class:`Scenario`
    (substitutions on the expressions), a case only changes inputs:
    :func:`costmodel.results.predict_family` evaluates each under the report's scenario.
    """

    name: str
    title: str
    label: str
    accelerators: tuple[str, ...] = ()
    duration_seconds: float = 3600.0
    jobs: int = 0


_GPU = "unprotected=1GiB,chunk=4KiB,staging=8"
#: The accelerators family (issue 10; domain.md §7 'Accelerators', §9 Accelerators): the same
#: VM with 0, 1, 4 and 8 GPUs in NVIDIA's confidential-computing mode (unprotected memory
#: converted page by page, 2 MiB staging buffers), with less unprotected memory, larger
#: chunks, staging only, memory allocated per job, and accepted under TDISP (nothing converted).
ACCELERATORS: tuple[WorkloadCase, ...] = (
    WorkloadCase("gpu_0", "No GPU", "no GPU"),
    WorkloadCase("gpu_1", "1 GPU, 1 GiB unprotected, 4 KiB chunks, 8 staging", "1 GPU, 1 GiB",
                 (f"gpu:count=1,{_GPU}",)),
    WorkloadCase("gpu_4", "4 GPUs, 1 GiB unprotected each, 4 KiB chunks, 8 staging", "4 GPUs, 1 GiB each",
                 (f"gpu:count=4,{_GPU}",)),
    WorkloadCase("gpu_8", "8 GPUs, 1 GiB unprotected each, 4 KiB chunks, 8 staging", "8 GPUs, 1 GiB each",
                 (f"gpu:count=8,{_GPU}",)),
    WorkloadCase("gpu_8_256m", "8 GPUs, 256 MiB unprotected each, 4 KiB chunks, 8 staging",
                 "8 GPUs, 256 MiB each", ("gpu:count=8,unprotected=256MiB,chunk=4KiB,staging=8",)),
    WorkloadCase("gpu_8_2m_chunks", "8 GPUs, 2 MiB chunks", "8 GPUs, 2 MiB chunks",
                 ("gpu:count=8,unprotected=1GiB,chunk=2MiB,staging=8",)),
    WorkloadCase("gpu_8_staging_only", "8 GPUs, 32 staging buffers each, no unprotected memory",
                 "8 GPUs, staging only", ("gpu:count=8,staging=32",)),
    WorkloadCase("gpu_8_per_job", "8 GPUs, unprotected memory allocated and freed per job (10 jobs)",
                 "8 GPUs, 10 jobs", (f"gpu:count=8,{_GPU}",), jobs=10),
    WorkloadCase("gpu_8_tdisp", "8 GPUs accepted under TDISP", "8 GPUs, TDISP",
                 ("gpu:count=8,unprotected=1GiB,staging=8,tdisp=1",)),
)
FAMILIES = {"accelerators": ACCELERATORS}
