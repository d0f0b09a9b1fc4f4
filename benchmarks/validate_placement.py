"""Closed form against the placement simulator over random VM shapes (issue 15, "What must hold").

Draws ``--shapes`` shapes (seeded): memory 1 GiB–4 TiB (log-uniform, whole GiB), possible
vCPUs 1–512 (boot vCPUs fewer on a fifth of them), NUMA nodes 1–8, 1–32 devices of every
kind with queue sizes 256/1024 and split or packed rings, 2 MiB and 1 GiB pages, SNP and
TDX, KASLR on or off. For each, the simulator's mean over ``--seeds`` boots is compared with
the closed form (``costmodel.results``, default calibration; the simulator gets the same
coefficients). Prints the median and 95th percentile of the relative error of splits and
merges, the share of shapes within the bar (5 % or ±2 hugepages, whichever is larger), and
the worst shapes with the sources that disagree. The last line is one JSON object.

Issue 15's bar: median |error| ≤ 2 %, 95th percentile within 5 % or ±2 hugepages.

    python benchmarks/validate_placement.py [--shapes 1000] [--seeds 32] [--seed 0] [--worst 10]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from costmodel import calibration, results
from costmodel.errors import InputError
from costmodel.model.kernel import Device
from costmodel.shape import VmShape
from costmodel.simulate import SOURCE_NAMES, Parameters, simulate
from costmodel.units import GiB, MiB

KINDS = ("virtio-blk", "virtio-net", "virtio-scsi", "virtio-vsock", "nvme", "virtio")


def random_device(rng) -> Device:
    kind = str(rng.choice(KINDS))
    queues = None if rng.random() < 0.4 or kind == "virtio-vsock" else int(rng.integers(1, 65))
    size = None if kind == "virtio-vsock" else int(rng.choice([256, 1024]))
    layout = "packed" if kind != "nvme" and rng.random() < 0.3 else "split"
    return Device(kind, queues, size, layout)


def random_shape(rng) -> VmShape:
    """One shape the model accepts (redrawn until it does)."""
    while True:
        memory = int(round(np.exp(rng.uniform(0, np.log(4096))))) * GiB
        vcpus = int(np.clip(round(np.exp(rng.uniform(0, np.log(512)))), 1, 512))
        nodes = int(rng.integers(1, 9))
        if nodes > vcpus or memory / nodes < 256 * MiB:
            continue
        platform = str(rng.choice(["snp", "tdx"]))
        devices = tuple(random_device(rng) for _ in range(int(rng.integers(1, 33)))) if rng.random() < 0.8 else None
        try:
            return VmShape(memory_bytes=memory, vcpus=vcpus, numa_nodes=nodes, platform=platform, devices=devices,
                           boot_vcpus=int(rng.integers(1, vcpus + 1)) if rng.random() < 0.2 else None,
                           hugepage_bytes=int(rng.choice([2 * MiB, GiB])), kaslr=bool(rng.random() < 0.8),
                           svsm=platform == "snp" and bool(rng.random() < 0.1),
                           atomic_pools=bool(rng.random() < 0.9))
        except InputError:
            continue


def describe(shape: VmShape) -> str:
    devices = "default devices" if shape.devices is None else f"{len(shape.devices)} devices"
    boot = f" (boot {shape.boot_vcpus})" if shape.boot_vcpus else ""
    return (f"{shape.memory_bytes // GiB} GiB {shape.platform} {shape.vcpus} vCPUs{boot} {shape.numa_nodes} nodes "
            f"{'1G' if shape.hugepage_bytes == GiB else '2M'} {devices}"
            f"{'' if shape.kaslr else ' nokaslr'}{' svsm' if shape.svsm else ''}"
            f"{'' if shape.atomic_pools else ' no-pools'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worst", type=int, default=10)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    cal = calibration.default()
    params = Parameters.from_mapping(cal.values)
    shapes = []
    while len(shapes) < args.shapes:
        shape = random_shape(rng)
        try:  # a shape the kernel could not boot (per-CPU groups larger than a node) is skipped
            dist = simulate(shape, args.seeds, params)
        except InputError:
            continue
        shapes.append((shape, dist))
    t0 = time.perf_counter()
    frame = results.evaluate_with_breakdown(pd.DataFrame([s.to_columns() for s, _ in shapes]), cal)
    closed_seconds = time.perf_counter() - t0

    sim_splits = np.array([d.splits.mean() for _, d in shapes])
    sim_merges = np.array([d.merges.mean() for _, d in shapes])
    cf_splits, cf_merges = frame["splits"].to_numpy(), frame["merges"].to_numpy()
    sim_sources = np.array([d.by_source.mean(axis=0) for _, d in shapes])
    cf_sources = np.stack([frame[f"splits_from_{n}"].to_numpy() for n in SOURCE_NAMES], axis=1)

    def stats(cf, sim):
        diff = cf - sim
        rel = np.abs(diff) / np.maximum(sim, 1)
        tolerance = np.maximum(0.05 * sim, 2.0)
        return {"median_rel": float(np.median(rel)), "p95_rel": float(np.percentile(rel, 95)),
                "p95_abs": float(np.percentile(np.abs(diff), 95)),
                "within_bar": float(np.mean(np.abs(diff) <= tolerance)),
                "p95_of_error_over_bar": float(np.percentile(np.abs(diff) / tolerance, 95))}

    report = {"shapes": len(shapes), "seeds": args.seeds, "splits": stats(cf_splits, sim_splits),
              "merges": stats(cf_merges, sim_merges)}
    print(f"{len(shapes)} shapes × {args.seeds} seeds (closed form: {closed_seconds:.2f} s for all)")
    for what in ("splits", "merges"):
        s = report[what]
        print(f"{what:>7}: median |error| {100 * s['median_rel']:.2f} %, p95 {100 * s['p95_rel']:.2f} % "
              f"(p95 |diff| {s['p95_abs']:.2f} hugepages); within 5 % or ±2: {100 * s['within_bar']:.1f} %; "
              f"p95 error/bar {s['p95_of_error_over_bar']:.2f} (≤ 1 passes)")
    hugepages = np.array([s.hugepage_bytes for s, _ in shapes])
    platforms = np.array([s.platform for s, _ in shapes])
    for label, subset in (("2 MiB", hugepages == 2 * MiB), ("1 GiB", hugepages == GiB),
                          ("SNP", platforms == "snp"), ("TDX", platforms == "tdx")):
        part = {what: stats(cf[subset], sim[subset]) for what, cf, sim in
                (("splits", cf_splits, sim_splits), ("merges", cf_merges, sim_merges))}
        report[label] = part
        print(f"  {label:>5} ({int(subset.sum())} shapes): splits median {100 * part['splits']['median_rel']:.2f} %, "
              f"p95 {100 * part['splits']['p95_rel']:.2f} % (|diff| {part['splits']['p95_abs']:.2f}); merges median "
              f"{100 * part['merges']['median_rel']:.2f} %, p95 {100 * part['merges']['p95_rel']:.2f} % "
              f"(|diff| {part['merges']['p95_abs']:.2f})")
    badness = np.abs(cf_splits - sim_splits) / np.maximum(0.05 * sim_splits, 2.0)
    badness += np.abs(cf_merges - sim_merges) / np.maximum(0.05 * sim_merges, 2.0)
    print(f"\nworst {args.worst} shapes (closed form − simulator):")
    for i in np.argsort(-badness)[: args.worst]:
        shape = shapes[i][0]
        diffs = cf_sources[i] - sim_sources[i]
        parts = ", ".join(f"{SOURCE_NAMES[j]} {diffs[j]:+.2f}" for j in np.argsort(-np.abs(diffs))
                          if abs(diffs[j]) >= 0.25)
        print(f"  {describe(shape)}\n    splits {cf_splits[i]:.2f} vs {sim_splits[i]:.2f}, merges {cf_merges[i]:.2f}"
              f" vs {sim_merges[i]:.2f}; by source: {parts or '–'}")
    report["worst"] = [{"shape": describe(shapes[i][0]), "splits": [round(float(cf_splits[i]), 2),
                                                                    round(float(sim_splits[i]), 2)],
                        "merges": [round(float(cf_merges[i]), 2), round(float(sim_merges[i]), 2)]}
                       for i in np.argsort(-badness)[: args.worst]]
    print(json.dumps(report, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
