"""How much each known departure of the placement spec from the kernel moves the counts
(docs/placement.md, "Where the spec departs from the kernel").

For a few guests — the reference SNP guest (16 GiB, 16 vCPUs) at 2 MiB and 1 GiB, a TDX guest,
a guest with all its RAM below 4 GiB, a large guest (256 GiB, 64 vCPUs, 2 NUMA nodes), and two
guests chosen to show the smaller corrections (4 vCPUs: per-CPU units with room for the GHCB
data; 9,528 MiB: totalram just above a pool-size boundary) — boots each ``--seeds`` times under
the spec's rules, under each kernel rule alone (costmodel.simulate.KernelRules), and under all
of them, and prints the median and mean splits and merges and their change from the spec.
Bottom-up, the kernel's own earlier page allocations shift the pools and rings up by an
unknown amount; the "+early" rows spread the seeds over shifts of 0–120 MiB.
The last line is one JSON object.

    python benchmarks/placement_sensitivity.py [--seeds 50] [--first-seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from costmodel.render.numbers import format_plain
from costmodel.shape import VmShape
from costmodel.simulate import KernelRules, simulate
from costmodel.units import GiB, MiB

SHAPES = {
    "reference 2M": VmShape(),
    "reference 1G": VmShape(hugepage_bytes=GiB),
    "tdx 2M": VmShape(platform="tdx"),
    "tdx 1G": VmShape(platform="tdx", hugepage_bytes=GiB),
    "below-4G 2G 2M": VmShape(memory_bytes=2 * GiB),
    "below-4G 2G 1G": VmShape(memory_bytes=2 * GiB, hugepage_bytes=GiB),
    "large 256G/64/2N 2M": VmShape(memory_bytes=256 * GiB, vcpus=64, numa_nodes=2),
    "large 256G/64/2N 1G": VmShape(memory_bytes=256 * GiB, vcpus=64, numa_nodes=2, hugepage_bytes=GiB),
    "4 vCPUs 2M": VmShape(vcpus=4),
    "9528M 2M": VmShape(memory_bytes=9528 * MiB),
}
#: What the kernel's own page allocations may have taken below the pools before postcore
#: (unknown; "+early" rows spread the seeds evenly over these). [B]
EARLY = tuple(range(0, 128 * MiB, 8 * MiB))
ALL = dict(page_order="bottom_up", ghcb_in_percpu_holes=True, totalram_from_memblock=True)
#: Rule sets: the spec, each correction alone, (a) after 0–120 MiB of the kernel's own
#: allocations, and all together. Each is a family of rules the seeds are spread over.
RULES = {
    "spec": (KernelRules(),),
    "(a) bottom-up": (KernelRules.only("page_order"),),
    "(a) bottom-up +early": tuple(KernelRules(page_order="bottom_up", early_page_bytes=e) for e in EARLY),
    "(c) GHCB in holes": (KernelRules.only("ghcb_in_percpu_holes"),),
    "(d) totalram": (KernelRules.only("totalram_from_memblock"),),
    "all": (KernelRules.kernel(),),
    "all +early": tuple(KernelRules(**ALL, early_page_bytes=e) for e in EARLY),
}


def run(shape: VmShape, family, seeds: int, first_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits and merges of ``seeds`` boots spread evenly over the rule family (at least one each)."""
    per = max(1, seeds // len(family))
    splits, merges = [], []
    for i, rules in enumerate(family):
        d = simulate(shape, per, first_seed=first_seed + i * per, rules=rules)
        splits.append(d.splits)
        merges.append(d.merges)
    return np.concatenate(splits), np.concatenate(merges)


def _describe(family) -> dict:
    """A rule family as one object: the first rule's fields, the early shifts as a list [MiB]."""
    out = family[0].to_dict()
    out["early_page_bytes"] = [r.early_page_bytes // MiB for r in family]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.seeds} seeds per cell")
    print(f"{'shape':22s} {'rules':20s} {'splits':>8s} {'merges':>8s} {'mean s':>8s} {'mean m':>8s}"
          f" {'Δ mean s':>9s} {'Δ mean m':>9s}")
    out: dict = {}
    started = time.perf_counter()
    for shape_name, shape in SHAPES.items():
        out[shape_name] = {}
        base = None
        for rules_name, rules in RULES.items():
            splits, merges = run(shape, rules, args.seeds, args.first_seed)
            cell = {"splits_median": float(np.median(splits)), "merges_median": float(np.median(merges)),
                    "splits_mean": float(splits.mean()), "merges_mean": float(merges.mean()), "boots": int(splits.size)}
            base = base or cell
            cell["splits_mean_change"] = cell["splits_mean"] - base["splits_mean"]
            cell["merges_mean_change"] = cell["merges_mean"] - base["merges_mean"]
            out[shape_name][rules_name] = cell
            print(f"{shape_name:22s} {rules_name:20s} {format_plain(cell['splits_median']):>8s}"
                  f" {format_plain(cell['merges_median']):>8s} {cell['splits_mean']:8.2f} {cell['merges_mean']:8.2f}"
                  f" {cell['splits_mean_change']:+9.2f} {cell['merges_mean_change']:+9.2f}")
    elapsed = time.perf_counter() - started
    print(f"{elapsed:.1f} s")
    print(json.dumps({"seeds": args.seeds, "first_seed": args.first_seed, "load_average": list(load),
                      "seconds": round(elapsed, 2), "rules": {k: _describe(v) for k, v in RULES.items()},
                      "results": out}, sort_keys=True))


if __name__ == "__main__":
    main()
