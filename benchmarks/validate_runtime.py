"""Closed form against the run-time replay over random workload × shape combinations (issue 10).

Draws ``--combinations`` pairs (seeded): shapes of 2–256 GiB, 1–64 vCPUs, 2 MiB or 1 GiB
pages, SNP or TDX; workloads with I/O in flight up to 3 GiB (CONFIG_SWIOTLB_DYNAMIC on or
off), coherent churn (0–50 per second, 4 KiB–4 MiB), 0–8 GPUs (unprotected 0–4 GiB, chunks
4 KiB–4 MiB, 0–32 staging buffers, TDISP on or off), attestation requests, flips (isolated
or not), 0–2 h and 0–5 jobs. For each, the replay's mean over ``--seeds`` seeds
(:func:`costmodel.simulate.runtime.simulate_runtime`) is compared with the closed form's
run-time splits and merges (default calibration). The bar: within 5 % or ±2 hugepages,
whichever is larger. Prints the share within the bar, the worst combinations, and one JSON
line. Conversion operations are reported beside.

Some combinations hinge on a rare or all-or-nothing event of the boot: a KASLR slot that
halves the SWIOTLB (≈1.6 % of boots of a 16 GiB guest, 256 hugepages of dynamic pools when
it happens), or whether a 4 GiB guest with 1 GiB pages has its one free hugepage left (≈75 %
of boots; every churn cycle splits it, or none). Twenty seeds estimate such a mean to ±10 %
or worse (or see no halving at all), so a combination outside the bar is replayed again with
``--more-seeds`` seeds (a better estimate of the same mean, the bar unchanged); the share
within the bar after the first 20 seeds is printed too, and each worst case shows the
replay mean's standard error.

    python benchmarks/validate_runtime.py [--combinations 600] [--seeds 20] [--more-seeds 400] [--seed 0]
                                          [--worst 8]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from costmodel import evaluate
from costmodel.shape import VmShape
from costmodel.simulate.runtime import simulate_runtime
from costmodel.units import GiB, KiB, MiB
from costmodel.workload import Accelerator, Workload


def random_pair(rng) -> tuple[VmShape, Workload]:
    memory = int(2 ** rng.integers(1, 9)) * GiB
    shape = VmShape(memory_bytes=memory, vcpus=int(rng.choice([1, 4, 16, 64])),
                    hugepage_bytes=int(rng.choice([2 * MiB, GiB])), platform=str(rng.choice(["snp", "tdx"])))
    gpus = []
    for _ in range(int(rng.choice([0, 0, 1, 2]))):
        chunk = int(rng.choice([4 * KiB, 64 * KiB, 2 * MiB, 4 * MiB]))
        unprotected = int(rng.choice([0, 1, 16, 256, 1024])) * 4 * MiB
        gpus.append(Accelerator(count=int(rng.choice([1, 4, 8])), unprotected_bytes=unprotected, chunk_bytes=chunk,
                                staging=int(rng.integers(0, 33)), tdisp=bool(rng.random() < 0.25)))
    workload = Workload(
        io_in_flight_bytes=int(rng.choice([0, 256, 1024, 1536, 3072])) * MiB, swiotlb_dynamic=bool(rng.random() < 0.5),
        churn_per_second=float(rng.choice([0, 0.5, 5, 50])), churn_bytes=int(rng.choice([4, 64, 1024, 4096])) * KiB,
        accelerators=tuple(gpus), attestations_per_second=float(rng.choice([0, 0.1, 2])),
        flip_rate=float(rng.choice([0, 1, 20])), flip_isolated=bool(rng.random() < 0.5),
        duration_seconds=float(rng.choice([0, 60, 600, 7200])), jobs=int(rng.integers(0, 6)))
    return shape, workload


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--combinations", type=int, default=600)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--more-seeds", type=int, default=400,
                   help="seeds for a combination outside the bar after --seeds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worst", type=int, default=8)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    pairs = [random_pair(rng) for _ in range(args.combinations)]
    configs = pd.DataFrame([{**s.to_columns(), **w.to_columns()} for s, w in pairs])
    configs = configs[[c for c in configs.columns if configs[c].notna().all()]]
    started = time.perf_counter()
    model = evaluate.evaluate(configs, outputs=["runtime_splits", "runtime_merges", "runtime_conversion_ops"])
    rows = []
    names = ("runtime_splits", "runtime_merges", "runtime_conversion_ops")
    for i, (shape, workload) in enumerate(pairs):
        row = {"i": i, "shape": f"{shape.memory_bytes // GiB}G/{shape.vcpus}cpu/{shape.hugepage_bytes // MiB}M/"
               f"{shape.platform}", "workload": workload.spec()}
        cf = {name: float(model[name].iloc[i]) for name in names}
        for seeds in (args.seeds, args.more_seeds):
            sim = simulate_runtime(shape, workload, seeds, first_seed=1000 * i)
            samples = {"runtime_splits": sim.splits, "runtime_merges": sim.merges,
                       "runtime_conversion_ops": sim.conversion_ops}
            for name in names:
                mean = float(samples[name].mean())
                row[name], row[name + "_cf"] = mean, cf[name]
                row[name + "_se"] = float(samples[name].std(ddof=1) / np.sqrt(seeds)) if seeds > 1 else 0.0
                row[name + "_ok"] = abs(cf[name] - mean) <= max(2.0, 0.05 * abs(mean))
                row[name + "_rel"] = abs(cf[name] - mean) / max(abs(mean), 1.0)
            row["seeds"] = seeds
            ok = row["runtime_splits_ok"] and row["runtime_merges_ok"]
            if seeds == args.seeds:
                row["ok_first"] = ok
            if ok:
                break
        rows.append(row)
    frame = pd.DataFrame(rows)
    elapsed = time.perf_counter() - started
    ok = frame["runtime_splits_ok"] & frame["runtime_merges_ok"]
    print(f"{len(frame)} workload × shape combinations, {args.seeds} seeds each "
          f"({(frame['seeds'] > args.seeds).sum()} replayed with {args.more_seeds}), {elapsed:.0f} s")
    print(f"splits and merges within the bar after {args.seeds} seeds: {frame['ok_first'].mean():.1%}; "
          f"after replaying: {ok.mean():.1%}")
    for name in ("runtime_splits", "runtime_merges", "runtime_conversion_ops"):
        print(f"{name:<24} within 5 % or ±2: {frame[name + '_ok'].mean():7.1%}   "
              f"median |rel| {frame[name + '_rel'].median():.4f}   max |rel| {frame[name + '_rel'].max():.4f}")
    frame["worst"] = frame[["runtime_splits_rel", "runtime_merges_rel"]].max(axis=1)
    frame["miss"] = ~ok
    print(f"\nworst {args.worst}, those outside the bar first (splits, merges: replay mean ± its standard error "
          f"vs closed form)")
    for _, r in frame.sort_values(["miss", "worst"], ascending=False).head(args.worst).iterrows():
        print(f"  {'MISS' if r['miss'] else 'ok  '} #{r['i']:<4} {r['shape']:<22} splits {r['runtime_splits']:9.1f} ±{r['runtime_splits_se']:<6.1f} vs "
              f"{r['runtime_splits_cf']:9.1f}  merges {r['runtime_merges']:9.1f} ±{r['runtime_merges_se']:<6.1f} vs "
              f"{r['runtime_merges_cf']:9.1f}  ({r['seeds']} seeds)  {r['workload'][:80]}")
    print(json.dumps({"combinations": len(frame), "within_bar": float(ok.mean()),
                      "within_bar_first_seeds": float(frame["ok_first"].mean()),
                      "worst_split_rel": float(frame["runtime_splits_rel"].max()),
                      "worst_merge_rel": float(frame["runtime_merges_rel"].max()),
                      "ops_within_bar": float(frame["runtime_conversion_ops_ok"].mean())}))


if __name__ == "__main__":
    main()
