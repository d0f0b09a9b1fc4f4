"""Batch speed on Dask: 8 reports with 1 worker and with 2, and the scheduling overhead per task.

- ``costmodel batch examples/sweep.yaml`` (8 reports, HTML + PDF) run as a user runs it: a
  fresh process each time, so the local cluster's start, the warm kernels' start and the
  shutdown are all counted. 1 and 2 workers alternate (``REPEAT`` runs each) and the
  medians are compared, so a change in the machine's load hits both alike. Each run's CPU
  time (the command and every process under it, from ``wait4``) over its wall time says how
  many cores were busy.
- Scheduling overhead: ``TASKS`` no-op tasks handed out one per worker thread
  (:class:`costmodel.cluster.Bounded`, what a batch does) on a 2-worker local cluster; per task.

Goal (issue 12): 2 workers >= 1.6x the 1-worker throughput on 2 cores. The last line is one
JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
TASKS = 500
GOAL = 1.6


def run_batch(workers: int, outdir: Path) -> tuple[float, float]:
    """Wall time and CPU time (the command and all it waited for) of one ``costmodel batch``. [s]"""
    command = [sys.executable, "-m", "costmodel", "batch", str(ROOT / "examples" / "sweep.yaml"), "-o", str(outdir),
               "--workers", str(workers), "--no-progress"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    out, err = process.stdout.read().decode(), process.stderr.read().decode()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 or "8 of 8 reports written" not in out:
        raise RuntimeError(f"batch with {workers} workers failed ({process.returncode}): {out}{err}")
    return wall, usage.ru_utime + usage.ru_stime


def no_op(x):
    return x


def scheduling_overhead() -> float:
    """Wall time per no-op task handed out one per thread on a 2-worker local cluster. [s]"""
    from costmodel import cluster

    with cluster.connect(workers=2) as started:
        tasks = [cluster.Task(i, no_op, (i,)) for i in range(TASKS)]
        list(cluster.Bounded(started, tasks[:20]))  # warm: the function shipped, the workers awake
        start = time.perf_counter()
        done = sum(1 for _ in cluster.Bounded(started, tasks))
        seconds = time.perf_counter() - start
    assert done == TASKS
    return seconds / TASKS


def main() -> int:
    runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    loads = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        for repeat in range(REPEAT):
            for workers in (1, 2) if repeat % 2 == 0 else (2, 1):  # interleaved, alternating order
                loads.append(os.getloadavg()[0])
                wall, cpu = run_batch(workers, Path(tmp) / f"w{workers}-{repeat}")
                runs[workers].append((wall, cpu))
                print(f"8 reports, {workers} worker{'s' if workers > 1 else ''}: {wall:6.1f} s wall, {cpu:6.1f} s CPU "
                      f"= {cpu / wall:.2f} cores busy (load average {loads[-1]:.1f})", flush=True)
    wall = {w: median(r[0] for r in runs[w]) for w in runs}
    busy = {w: median(r[1] / r[0] for r in runs[w]) for w in runs}
    cpu = {w: median(r[1] for r in runs[w]) for w in runs}
    speedup = wall[1] / wall[2]
    per_task = scheduling_overhead()
    print(f"medians of {REPEAT}: 1 worker {wall[1]:.1f} s ({busy[1]:.2f} cores busy, {cpu[1]:.1f} s CPU), "
          f"2 workers {wall[2]:.1f} s ({busy[2]:.2f} cores busy, {cpu[2]:.1f} s CPU)")
    print(f"2 workers vs 1: {speedup:.2f}x (goal >= {GOAL}x); {os.cpu_count()} cores, "
          f"load average {min(loads):.1f}-{max(loads):.1f} during the runs")
    print(f"scheduling overhead: {per_task * 1e3:.2f} ms per task ({TASKS} no-op tasks, one per worker thread)")
    result = {
        "batch8_s_1_worker": round(wall[1], 2), "batch8_s_2_workers": round(wall[2], 2),
        "cores_busy_1_worker": round(busy[1], 2), "cores_busy_2_workers": round(busy[2], 2),
        "cpu_s_1_worker": round(cpu[1], 1), "cpu_s_2_workers": round(cpu[2], 1),
        "speedup_2_workers": round(speedup, 3), "speedup_goal": GOAL, "speedup_ok": speedup >= GOAL,
        "scheduling_overhead_ms_per_task": round(per_task * 1e3, 3), "repeat": REPEAT, "cpus": os.cpu_count(),
        "load_average_min": round(min(loads), 2), "load_average_max": round(max(loads), 2),
    }
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
