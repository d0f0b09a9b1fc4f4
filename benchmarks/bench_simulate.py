"""Placement simulator speed: time per seeded boot (replay + count) at 16 GiB and at 4 TiB.

Shapes: the reference guest (16 GiB SNP, 16 vCPUs, 2 MiB pages, default devices); 4 TiB
with 2 MiB pages (16 vCPUs, one node); 4 TiB, 512 vCPUs, 8 NUMA nodes, 32 virtio-blk
devices (a crowded guest). Runs are interleaved (shape A, B, C, A, B, C, …) so a busy
machine slows all alike; each figure is the median of ``--repeats`` runs of ``--seeds``
seeds, wall and CPU time. Goal (issue 15): well under a second per seed at 4 TiB; the
earlier build ran about 1 ms per seed at 16 GiB and at 4 TiB. The last line is one JSON object.

    python benchmarks/bench_simulate.py [--seeds 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from costmodel.model.kernel import Device
from costmodel.shape import VmShape
from costmodel.simulate import simulate
from costmodel.units import GiB, TiB

SHAPES = {
    "16 GiB reference": VmShape(),
    "4 TiB, 16 vCPUs": VmShape(memory_bytes=4 * TiB),
    "4 TiB, 512 vCPUs, 8 nodes, 32 disks": VmShape(memory_bytes=4 * TiB, vcpus=512, numa_nodes=8,
                                                    devices=tuple(Device("virtio-blk") for _ in range(32))),
    "16 GiB reference, 1 GiB pages": VmShape(hugepage_bytes=GiB),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    wall = {name: [] for name in SHAPES}
    cpu = {name: [] for name in SHAPES}
    for shape in SHAPES.values():  # warm up (imports, the per-shape cache)
        simulate(shape, 2)
    for _ in range(args.repeats):
        for name, shape in SHAPES.items():
            w, c = time.perf_counter(), time.process_time()
            simulate(shape, args.seeds, first_seed=1000)
            wall[name].append((time.perf_counter() - w) / args.seeds)
            cpu[name].append((time.process_time() - c) / args.seeds)
    out = {}
    base = statistics.median(cpu["16 GiB reference"])
    for name in SHAPES:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        out[name] = {"wall_ms_per_seed": 1e3 * w, "cpu_ms_per_seed": 1e3 * c, "cpu_ratio_to_16gib": c / base}
        print(f"{name:<38} {1e3 * w:7.2f} ms/seed wall  {1e3 * c:7.2f} ms/seed CPU  ({c / base:.2f}× the 16 GiB guest)")
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
