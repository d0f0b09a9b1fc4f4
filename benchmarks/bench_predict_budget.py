"""Peak memory of ``costmodel predict`` on the largest grid its budget allows (issue 14).

Runs ``costmodel predict --csv`` in a child process on a grid of exactly
``costmodel.cli.predict.MAX_CONFIGURATIONS`` configurations (vCPUs × memory sizes), and on
one a tenth of that, interleaved, ``REPEATS`` times each; prints the median wall time and
peak RSS of each and their ratio, with the load average (the machine is shared). Each child
runs under an address-space limit (``RLIMIT_AS``, :data:`GUARD_BYTES`): an overshoot fails
that child instead of waking the OOM killer. Goal: peak RSS under 1 GiB at the budget. The
last line is one JSON object with every figure.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

from costmodel.cli.predict import MAX_CONFIGURATIONS
from costmodel.units import GiB

REPEATS = 3
GUARD_BYTES = 4_000_000_000


def _guard():
    resource.setrlimit(resource.RLIMIT_AS, (GUARD_BYTES, GUARD_BYTES))


def argv(configurations: int) -> list[str]:
    vcpus = 100
    sizes = configurations // vcpus
    return [sys.executable, "-m", "costmodel", "predict", "--csv", "--vcpus", f"1:{vcpus}",
            "--memory", f"{GiB}:{sizes * GiB}:+{GiB}"]


def run(configurations: int) -> tuple[float, int]:
    """Wall time [s] and peak RSS [B] of one child run."""
    start = time.perf_counter()
    child = subprocess.Popen(argv(configurations), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             preexec_fn=_guard)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest so far
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"predict failed with status {child.returncode}: {' '.join(argv(configurations))}")
    return time.perf_counter() - start, usage.ru_maxrss * 1024


def main() -> None:
    load = os.getloadavg()
    sizes = {"budget": MAX_CONFIGURATIONS, "tenth": MAX_CONFIGURATIONS // 10}
    times = {k: [] for k in sizes}
    peaks = {k: [] for k in sizes}
    for _ in range(REPEATS):
        for key, n in sizes.items():
            seconds, peak = run(n)
            times[key].append(seconds)
            peaks[key].append(peak)
    figures = {key: {"configurations": n, "median_s": statistics.median(times[key]),
                     "peak_rss_bytes": max(peaks[key])} for key, n in sizes.items()}
    for key, f in figures.items():
        print(f"{key:>6}: {f['configurations']:>7} configurations  {f['median_s']:6.1f} s  "
              f"peak RSS {f['peak_rss_bytes'] / GiB:.2f} GiB")
    ratio = figures["budget"]["median_s"] / figures["tenth"]["median_s"]
    print(f"time ratio budget/tenth: {ratio:.1f} (×10 configurations)")
    print(f"goal: peak RSS at the budget under 1 GiB: {'met' if figures['budget']['peak_rss_bytes'] < GiB else 'MISSED'}")
    print(f"load average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    print(json.dumps({**figures, "ratio": ratio, "load_average_before": [round(x, 1) for x in load],
                      "load_average_after": [round(x, 1) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
