"""Run time replayed as seeded events with per-hugepage state (docs/runtime.md).

After a simulated boot (:func:`costmodel.simulate.boot.replay`, the same seed), each
hugepage has a state: split or not, the 4 KiB pages of it that are shared, and whether the
nested page tables still map it at 4 KiB. The workload (:class:`~costmodel.workload.Workload`)
becomes events in time over its duration: dynamic SWIOTLB pools and staging buffers at the
start, accelerator memory once (kept) or per job (allocated and freed), coherent churn,
flips and attestation requests
at uniform times, as many as the rates say over the duration (rounded at random). Each to-shared
conversion splits the hugepages it touches that are not split yet; each to-private one
merges a hugepage whose last shared page it frees (domain.md §4). Freed hugepages are
reused first (the page allocator's per-CPU lists hand back the last page freed).

Like the boot simulator, this module never imports the closed form or SymPy; it follows
the same rules event by event, so the closed form's expectations can be checked against
its means (benchmarks/validate_runtime.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from costmodel.shape import VmShape
from costmodel.simulate.boot import replay
from costmodel.simulate.count import count
from costmodel.simulate.layout import Parameters
from costmodel.units import PAGE_SIZE, MiB
from costmodel.workload import Workload, chunk_ops

PMD = 2 * MiB
DYNAMIC_POOL = 4 * MiB
PSC_ENTRIES = 64
#: Points of the huge-mapped fraction's time series.
SAMPLES = 65


@dataclass(frozen=True)
class RuntimeParameters:
    """The run-time coefficients (defaults as in costmodel/model/variables.py) and the host."""

    churn_isolated_share: float = 1.0
    accelerator_scatter_share: float = 0.0
    promotion: bool = False


@dataclass(frozen=True)
class RuntimeRun:
    """One seeded boot and run."""

    boot_splits: int
    boot_merges: int
    splits: int
    merges: int
    conversion_ops: int
    #: Seconds since boot and the fraction of guest memory mapped huge then. [s], [1]
    times: np.ndarray
    huge_mapped_fraction: np.ndarray


conversion_ops = chunk_ops  # one aligned block's conversion operations (domain.md §5)


class _State:
    """Per-hugepage state and the run-time allocator over the free hugepages."""

    def __init__(self, ram_pages: int, low_pages: int, permanent: np.ndarray, mapped_small: np.ndarray,
                 promote: bool):
        self.shared = np.zeros(ram_pages, dtype=np.int64)
        self.shared[permanent] = 1 << 40  # boot's permanent shared pages: never merge
        self.small = np.zeros(ram_pages, dtype=bool)
        self.small[mapped_small] = True
        self.free = np.flatnonzero(self.shared == 0)
        self.low_free = self.free[self.free < low_pages][::-1]  # from the top of low RAM down
        self.cursor = self.low_cursor = 0
        self.recycled: list[int] = []
        self.promote = promote
        self.splits = self.merges = 0

    def fresh(self, low: bool = False) -> int | None:
        """A hugepage with nothing shared in it (the last freed first), or None when none is left."""
        while not low and self.recycled:
            page = self.recycled.pop()
            if self.shared[page] == 0:
                return page
        pool, attr = (self.low_free, "low_cursor") if low else (self.free, "cursor")
        while getattr(self, attr) < len(pool):
            page = int(pool[getattr(self, attr)])
            setattr(self, attr, getattr(self, attr) + 1)
            if self.shared[page] == 0:
                return page
        return None

    def convert(self, page: int, pages: int) -> None:
        if self.shared[page] == 0:
            self.splits += 1
            self.small[page] = True
        self.shared[page] += pages

    def revert(self, page: int, pages: int) -> None:
        self.shared[page] -= pages
        if self.shared[page] == 0:
            self.merges += 1
            if self.promote:
                self.small[page] = False
            self.recycled.append(page)


class _Packer:
    """Naturally aligned blocks packed back to back into fresh hugepages, across calls: the
    buddy allocator keeps splitting the block it split last, so consecutive allocations share
    it whichever device makes them [code mm/page_alloc.c __rmqueue_smallest(), expand()]."""

    def __init__(self, state: _State, H: int, low: bool = False):
        self.state, self.H, self.low = state, H, low
        self.page: int | None = None
        self.used = H

    def take(self, size: int, count_: int) -> list[tuple[int, int]]:
        """``count_`` blocks of ``size`` bytes: (hugepage, 4 KiB pages) pieces, fewer when no
        fresh hugepage is left."""
        H, pieces = self.H, []
        if size >= H:  # whole hugepages of their own
            for _ in range(count_ * (size // H)):
                page = self.state.fresh(self.low)
                if page is None:
                    break
                pieces.append((page, H // PAGE_SIZE))
            return pieces
        left = count_
        while left:
            self.used = -(-self.used // size) * size  # natural alignment
            if self.page is None or self.used >= H:
                page = self.state.fresh(self.low)
                if page is None:
                    break
                self.page, self.used = page, 0
            n = min(left, (H - self.used) // size)
            pieces.append((self.page, n * size // PAGE_SIZE))
            self.used += n * size
            left -= n
        return pieces


def replay_runtime(shape: VmShape, workload: Workload, seed: int | None = 0, params: Parameters | None = None,
                   runtime: RuntimeParameters | None = None) -> RuntimeRun:
    """One boot of ``shape`` (seed as :func:`costmodel.simulate.boot`) and ``workload`` after it."""
    runtime = runtime or RuntimeParameters()
    H, M = int(shape.hugepage_bytes), int(shape.memory_bytes)
    is_snp = shape.platform == "snp"
    booted = replay(shape, params, None if seed is None else np.random.default_rng(seed))
    rng = np.random.default_rng([0 if seed is None else seed, 10])
    counted = count(booted.conversions, H)
    columns = workload.to_columns()
    T, J = columns["duration_seconds"], int(columns["jobs"])

    def draws(mean: float) -> int:
        """Events of a rate over the run: the workload states the rate, so the count is it,
        rounded at random to a neighbour whole number (mean exact); the times are uniform."""
        whole = math.floor(mean)
        return whole + int(rng.random() < mean - whole) if seed is not None else int(round(mean))

    overflow = max(0, int(columns["io_in_flight_bytes"]) - booted.swiotlb_bytes)
    pools = math.ceil(overflow / DYNAMIC_POOL) if workload.swiotlb_dynamic else 0
    n_churn = draws(columns["churn_per_second"] * T + columns["churn_per_job"] * J)
    n_flip = draws(columns["flip_rate"] * T)
    n_attest = draws(columns["attestation_rate"] * T) if is_snp else 0
    block = PAGE_SIZE * 2 ** math.ceil(math.log2(math.ceil(columns["churn_bytes"] / PAGE_SIZE)))
    kept = [a for a in workload.accelerators if not a.tdisp]
    ops = (pools * conversion_ops(DYNAMIC_POOL, is_snp) + int(columns["accelerator_staging_buffers"])
           * conversion_ops(PMD, is_snp) + (max(J, 1) + J) * sum(a.count * (a.unprotected_bytes // a.chunk_bytes)
                                                                 * conversion_ops(a.chunk_bytes, is_snp) for a in kept)
           + 2 * n_churn * conversion_ops(block, is_snp) + 2 * n_attest + 2 * n_flip)
    if H <= PAGE_SIZE:
        flat = np.ones(2)
        return RuntimeRun(0, 0, 0, 0, ops, np.array([0.0, T]), flat * 0)
    permanent = counted.pages[~counted.merged]
    state = _State(M // H, int(shape.effective_lowmem) // H, permanent, counted.pages, runtime.promotion and is_snp)
    held: list[tuple[int, int]] = []
    # at the start: dynamic pools (low RAM), staging buffers, then kept accelerator memory
    for page, pages in _Packer(state, H, low=True).take(DYNAMIC_POOL, pools):
        state.convert(page, pages)
    for page, pages in _Packer(state, H).take(PMD, int(columns["accelerator_staging_buffers"])):
        state.convert(page, pages)

    def accelerator_memory() -> list[tuple[int, int]]:
        pieces = []
        packer = _Packer(state, H)  # every device's memory from the same allocator
        for a in kept:
            chunks = a.count * (a.unprotected_bytes // a.chunk_bytes)
            if a.chunk_bytes >= H:
                pieces += packer.take(a.chunk_bytes, chunks)
                continue
            scattered = int(rng.binomial(chunks, runtime.accelerator_scatter_share)) if seed is not None else \
                round(chunks * runtime.accelerator_scatter_share)
            pieces += packer.take(a.chunk_bytes, chunks - scattered)
            free = np.flatnonzero(state.shared == 0)
            if scattered and len(free):
                for page in rng.choice(free, size=scattered, replace=True):
                    pieces.append((int(page), a.chunk_bytes // PAGE_SIZE))
        for page, pages in pieces:
            state.convert(page, pages)
        return pieces

    events: list[tuple[float, int, str]] = []
    if J == 0:
        held = accelerator_memory()
    else:
        events += [(T * j / J, 0, "job") for j in range(J)]
    # churn cycles and flips: whether each lands in a hugepage of its own is drawn per event;
    # an isolated one splits and merges the hugepage the last one freed (per-CPU lists), so
    # after the first the state is the same again and the rest are counted in bulk
    isolated_churn = int(rng.binomial(n_churn, runtime.churn_isolated_share)) if seed is not None else \
        round(n_churn * runtime.churn_isolated_share)
    isolated_flips = n_flip if workload.flip_isolated else 0
    events += [(float(rng.uniform(0, T)) if T else 0.0, 1, "churn")] * (1 if isolated_churn else 0)
    events += [(float(rng.uniform(0, T)) if T else 0.0, 2, "flip")] * (1 if isolated_flips else 0)
    events.sort()
    times, fractions = [0.0], [1 - state.small.sum() * H / M]
    for t, _, kind in events:
        if kind == "job":
            for page, pages in accelerator_memory()[::-1]:
                state.revert(page, pages)
        else:
            repeats = isolated_churn if kind == "churn" else isolated_flips
            before = (state.splits, state.merges)
            pieces = _Packer(state, H).take(block if kind == "churn" else PAGE_SIZE, 1)
            for page, pages in pieces:
                state.convert(page, pages)
            for page, pages in pieces[::-1]:
                state.revert(page, pages)
            state.splits += (repeats - 1) * (state.splits - before[0])
            state.merges += (repeats - 1) * (state.merges - before[1])
        times.append(t)
        fractions.append(1 - state.small.sum() * H / M)
    del held
    times.append(T)
    fractions.append(1 - state.small.sum() * H / M)
    grid = np.linspace(0, T, SAMPLES)
    series = np.asarray(fractions)[np.searchsorted(np.asarray(times), grid, side="right") - 1]
    return RuntimeRun(counted.splits, counted.merges, state.splits, state.merges, ops, grid, series)


@dataclass(frozen=True)
class RuntimeDistribution:
    """Run-time totals over seeds: means and the mean huge-mapped fraction over time."""

    splits: np.ndarray
    merges: np.ndarray
    conversion_ops: np.ndarray
    times: np.ndarray
    huge_mapped_fraction: np.ndarray

    def to_dict(self) -> dict:
        return {"runtime_splits": float(self.splits.mean()), "runtime_merges": float(self.merges.mean()),
                "runtime_conversion_ops": float(self.conversion_ops.mean()),
                "runtime_splits_p05": float(np.percentile(self.splits, 5)),
                "runtime_splits_p95": float(np.percentile(self.splits, 95)),
                "huge_mapped_fraction_over_time": {"seconds": self.times.tolist(),
                                                   "fraction": self.huge_mapped_fraction.tolist()}}


def simulate_runtime(shape: VmShape, workload: Workload, seeds: int = 20, *, first_seed: int = 0,
                     runtime: RuntimeParameters | None = None, deterministic: bool = False) -> RuntimeDistribution:
    """:func:`replay_runtime` over ``seeds`` seeds (``deterministic``: once, without randomness)."""
    seed_list = [None] if deterministic else range(first_seed, first_seed + seeds)
    runs = [replay_runtime(shape, workload, s, runtime=runtime) for s in seed_list]
    return RuntimeDistribution(np.array([r.splits for r in runs]), np.array([r.merges for r in runs]),
                               np.array([r.conversion_ops for r in runs]), runs[0].times,
                               np.mean([r.huge_mapped_fraction for r in runs], axis=0))
