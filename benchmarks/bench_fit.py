"""Fit speed: ``costmodel.fitting.fit.fit`` in-process on 10, 1,000 and 100,000 synthetic runs.

Runs are simulated from known coefficients (seeded, 5 % noise) over random VM shapes, as a
user's measurements would come: replicated shapes, both platforms, 2 MiB and 1 GiB pages.
For each size it times, after one warm-up fit (SymPy compilation is cached per process and
reported separately as the cold start): validation of the runs, the fit of ``splits`` alone
(``alternatives=False``) and the full fit with the four model forms compared, as
``costmodel fit`` does. Floor (issue 3): 1,000 runs fit in under 0.2 s in-process. The
last line is one JSON object with every figure.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from costmodel import calibration, data, fitting
from costmodel.units import GiB

SIZES = (10, 1_000, 100_000)
FLOOR_SECONDS_1000 = 0.2
REPEATS = 3
#: Known coefficients of the synthetic runs (as costmodel/samples/make_samples.py uses).
TRUTH = {"remainder_regions": 60.0, "transient_regions": 20.0}


def runs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shapes = pd.DataFrame({
        "memory_bytes": rng.choice([4, 8, 16, 32, 64], n) * GiB,
        "vcpus": rng.choice([1, 2, 4, 8, 16, 32, 64], n),
        "hugepage_bytes": rng.choice([2 * 1024**2, GiB], n),
        "platform": rng.choice(["snp", "tdx"], n),
    })
    shapes["virtqueues"] = shapes["vcpus"] + 3 + rng.choice([0, 8], n)
    truth = calibration.default().with_values(**TRUTH)
    return fitting.synthetic_runs(shapes, truth, targets=["splits"], noise=0.05, seed=seed)


def best_of(function, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> dict:
    start = time.perf_counter()
    fitting.fit(runs(200, seed=99), "splits")  # compiles the four forms once
    cold = time.perf_counter() - start
    result = {"cold_start_s": round(cold, 3), "floor_fit_1000_s": FLOOR_SECONDS_1000, "sizes": {}}
    print(f"cold start (SymPy expansion and compilation of 4 model forms): {cold:.2f} s")
    for n in SIZES:
        frame = runs(n)
        repeats = REPEATS if n <= 1000 else 1
        t_validate = best_of(lambda: data.validate(frame, "runs"), repeats)
        t_fit = best_of(lambda: fitting.fit(frame, "splits", alternatives=False), repeats)
        t_full = best_of(lambda: fitting.fit(frame, "splits"), repeats)
        result["sizes"][str(n)] = {"validate_s": round(t_validate, 4), "fit_s": round(t_fit, 4),
                                   "fit_with_alternatives_s": round(t_full, 4),
                                   "runs_per_s": round(n / t_fit)}
        print(f"{n:>7,} runs: validate {t_validate:.3f} s, fit {t_fit:.3f} s "
              f"({n / t_fit:,.0f} runs/s), fit + 4 forms compared {t_full:.3f} s")
    t1000 = result["sizes"]["1000"]["fit_s"]
    result["ratio_fit_1000_to_floor"] = round(t1000 / FLOOR_SECONDS_1000, 3)
    result["meets_floor"] = t1000 < FLOOR_SECONDS_1000
    print(f"1,000 runs: {t1000:.3f} s = {result['ratio_fit_1000_to_floor']:.2f} × the {FLOOR_SECONDS_1000} s floor "
          f"({'met' if result['meets_floor'] else 'NOT met'}); with the form comparison "
          f"{result['sizes']['1000']['fit_with_alternatives_s'] / FLOOR_SECONDS_1000:.2f} ×")
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
