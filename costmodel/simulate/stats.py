"""Many seeded boots of one shape: the distribution of splits and merges, in total and per source."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.errors import Argument, InputError
from costmodel.shape import VmShape
from costmodel.simulate.boot import Boot, replay
from costmodel.simulate.count import SOURCE_NAMES, count
from costmodel.simulate.layout import Parameters
from costmodel.simulate.rules import KernelRules

#: The percentiles reported beside the mean [%].
LOW, HIGH = 5, 95


@dataclass(frozen=True)
class Summary:
    """Mean and 5th/95th percentiles of one count over the seeds. [1]"""

    mean: float
    p05: float
    p95: float

    @classmethod
    def of(cls, values: np.ndarray) -> "Summary":
        values = np.asarray(values, dtype=float)
        return cls(float(values.mean()), float(np.percentile(values, LOW)), float(np.percentile(values, HIGH)))

    def to_dict(self) -> dict:
        return {"mean": self.mean, "p05": self.p05, "p95": self.p95}


@dataclass(frozen=True)
class Distribution:
    """Splits and merges of ``len(seeds)`` boots of one shape.

    ``by_source`` is (seeds × sources) in :data:`~costmodel.simulate.count.SOURCE_NAMES` order.
    """

    shape: VmShape
    params: Parameters
    seeds: tuple[int, ...]
    deterministic: bool
    splits: np.ndarray
    merges: np.ndarray
    by_source: np.ndarray
    #: Which placement rules followed the kernel instead of the spec (default: the spec).
    rules: KernelRules = KernelRules()

    @property
    def split_summary(self) -> Summary:
        return Summary.of(self.splits)

    @property
    def merge_summary(self) -> Summary:
        return Summary.of(self.merges)

    def source_summaries(self) -> dict[str, Summary]:
        """Per source, the summary of the split hugepages attributed to it."""
        return {name: Summary.of(self.by_source[:, i]) for i, name in enumerate(SOURCE_NAMES)}

    def to_dict(self) -> dict:
        """One JSON-ready object (shape, parameters, totals and per-source summaries)."""
        s, m = self.split_summary, self.merge_summary
        shape = self.shape.to_columns()
        return {
            "shape": {k: shape[k] for k in sorted(shape)},
            "parameters": self.params.to_dict(),
            "seeds": len(self.seeds),
            "first_seed": self.seeds[0],
            "deterministic": self.deterministic,
            "splits": s.mean, "splits_p05": s.p05, "splits_p95": s.p95,
            "merges": m.mean, "merges_p05": m.p05, "merges_p95": m.p95,
            "splits_by_source": {k: v.mean for k, v in self.source_summaries().items()},
            "splits_by_source_percentiles": {k: v.to_dict() for k, v in self.source_summaries().items()},
        } | ({} if self.rules.is_spec else {"rules": self.rules.to_dict()})


def boot(shape: VmShape, seed: int | None = 0, params: Parameters | None = None,
         rules: KernelRules | None = None) -> Boot:
    """One boot; ``seed`` None is the deterministic one (kernel at 16 MiB, firmware on a 2 MiB boundary);
    ``rules`` which placement rules follow the kernel (None: the spec)."""
    return replay(shape, params, None if seed is None else np.random.default_rng(seed), rules)


def simulate(shape: VmShape, seeds: int = 100, params: Parameters | None = None, *, first_seed: int = 0,
             deterministic: bool = False, rules: KernelRules | None = None) -> Distribution:
    """Boot ``shape`` once per seed (``first_seed`` … ``first_seed + seeds − 1``) and count its
    split and merged hugepages. ``deterministic``: one boot without randomness, repeated; ``rules``:
    which placement rules follow the kernel instead of the spec (None: the spec,
    docs/placement.md "Where the spec departs from the kernel")."""
    if not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise InputError(Argument("seeds"), seeds, "a whole number of seeds ≥ 1")
    params = params or Parameters()
    rules = rules or KernelRules()
    hugepage = shape.hugepage_bytes
    if hugepage is None:
        raise InputError(Argument("hugepage"), None, "a hugepage size (4K, 2M or 1G)")
    seed_list = tuple(range(first_seed, first_seed + int(seeds)))
    results = []
    if deterministic:
        once = count(replay(shape, params, None, rules).conversions, hugepage)
        results = [once] * len(seed_list)
    else:
        for seed in seed_list:
            results.append(count(replay(shape, params, np.random.default_rng(seed), rules).conversions, hugepage))
    return Distribution(
        shape, params, seed_list, deterministic,
        splits=np.array([r.splits for r in results]),
        merges=np.array([r.merges for r in results]),
        by_source=np.stack([r.by_source() for r in results]),
        rules=rules,
    )
