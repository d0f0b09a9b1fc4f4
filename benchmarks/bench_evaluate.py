"""Evaluation speed: the public API against the fused-loop floor and the NumPy program.

Random shapes over every input (the set of tests/test_compiled_equivalence.py). For each
size (10⁶ and 10⁷ by default) the same work is timed, interleaved, ``REPEATS`` times and
the medians compared:

- ``api``: :func:`costmodel.evaluate.evaluate_arrays` (validation, resolution of devices
  and per-CPU units, the fused kernel; every output);
- ``floor``: the fused kernel alone on already-resolved arrays (the compiled loop the API
  cannot beat: same outputs, no validation);
- ``numpy``: the NumPy program on the same resolved arrays (the path without numba; 10⁶ only).

Peak memory of the API at each size is measured in a child process (``ru_maxrss``; the
inputs themselves are part of it). Floors (issue 9): ≥ 10⁷ shapes/s at 10⁶ and 10⁷,
within 1.5× of the fused floor, < 600 MB peak at 10⁷. The last line is one JSON object.
Run with ``python benchmarks/bench_evaluate.py [sizes...]``; report ``uptime`` with it.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_compiled_equivalence import shapes  # noqa: E402  (one definition of the random set)

from costmodel import calibration, compiled, evaluate  # noqa: E402

REPEATS = 5
FLOORS = {"shapes_per_s": 1e7, "ratio_to_fused_floor": 1.5, "peak_mb_at_1e7": 600}


def _median_times(work: dict, repeats: int) -> dict[str, float]:
    times = {k: [] for k in work}
    for _ in range(repeats):  # interleaved: load changes hit every variant alike
        for name, fn in work.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def _peak_mb(n: int) -> float:
    """Peak resident memory [MB] of a process evaluating ``n`` shapes through the API."""
    code = ("import resource, sys; sys.path.insert(0, %r); from test_compiled_equivalence import shapes; "
            "from costmodel import evaluate, calibration; cal = calibration.default(); "
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            "evaluate.evaluate_arrays(shapes(%d), cal); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, base)"
            % (str(Path(__file__).resolve().parents[1] / "tests"), n))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]) / 1024


def measure(n: int, repeats: int = REPEATS) -> dict:
    cal = calibration.default()
    cfg = shapes(n)
    arrays = compiled.configurations(cfg)
    names = tuple(["swiotlb_bytes", *evaluate.OUTPUTS])
    coefficients = evaluate.coefficients_by_platform(cal)
    fused = compiled.compile_outputs(names, cal.form, fused=True)
    fused(arrays, coefficients)  # compile (or load numba's cache) outside the timing
    work = {"api": lambda: evaluate.evaluate_arrays(cfg, cal), "floor": lambda: fused(arrays, coefficients)}
    if n <= 1_000_000:
        plain = compiled.compile_outputs(names, cal.form, fused=False)
        work["numpy"] = lambda: plain(arrays, coefficients)
    t = _median_times(work, repeats if n <= 1_000_000 else max(3, repeats // 2))
    row = {"shapes": n, **{f"{k}_s": round(v, 4) for k, v in t.items()},
           **{f"{k}_shapes_per_s": round(n / v) for k, v in t.items()},
           "ratio_api_to_fused_floor": round(t["api"] / t["floor"], 2)}
    if "numpy" in t:
        row["ratio_numpy_to_fused_floor"] = round(t["numpy"] / t["floor"], 2)
    return row


def main(sizes=(1_000_000, 10_000_000)) -> dict:
    load = os.getloadavg()
    rows = [measure(n) for n in sizes]
    peaks = {n: round(_peak_mb(n)) for n in sizes}
    for row in rows:
        n = row["shapes"]
        row["peak_mb"] = peaks[n]
        print(f"{n:>12,} shapes: API {row['api_shapes_per_s']:,}/s, fused floor {row['floor_shapes_per_s']:,}/s "
              f"(API/floor {row['ratio_api_to_fused_floor']})"
              + (f", NumPy program {row['numpy_shapes_per_s']:,}/s (×{row['ratio_numpy_to_fused_floor']} the floor)"
                 if "numpy_s" in row else "")
              + f"; peak {row['peak_mb']} MB")
    result = {"load_average": [round(x, 1) for x in load], "cpus": os.cpu_count(), "sizes": rows, "floors": FLOORS,
              "self_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main(tuple(int(float(a)) for a in sys.argv[1:]) or (1_000_000, 10_000_000))
