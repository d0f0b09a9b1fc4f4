"""Search time of ``costmodel discover`` for 1, 2, 3 and 4 inputs, and its far-point error.

Each case: 5 values of every input (2, 4, 8, 16, 32; a full grid), 5 repeats per point,
2 % multiplicative noise (seeded), a planted formula in which one input has different
exponents in different terms. Times are of :func:`costmodel.discover.discover` on
measurements already in memory (no file reading), on one core (BLAS threads pinned to 1
before NumPy loads): the median of 3 runs, the cases interleaved, as wall time and as the
process's CPU time (what one core spends, whatever else the machine runs). The far-point
error is the largest relative miss at 4× and 16× the largest measured value of every input.

Beside it, for two inputs, the shared-exponent form of Extra-P's multi-parameter models
(each input one shape, shared by every term: c0 + c1·f(p) + c2·g(q) + c3·f(p)·g(q) and its
subsets; emulated here with the same exponents, not Extra-P itself) and its far-point error.

Floor (issue 13): the 3-input search under 2 s on one core. The last line is one JSON object.
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import itertools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from costmodel.discover import discover, from_frame  # noqa: E402
from costmodel.discover.space import FACTOR_SHAPES, Factor  # noqa: E402

VALUES = 2.0 ** np.arange(1, 6)
REPEATS, NOISE, RUNS = 5, 0.02, 3
FLOOR_3_INPUTS_S = 2.0
FAR = (4, 16)

#: Planted formulas by number of inputs (x0 = a, x1 = b, …).
TRUTH = {
    1: ("3 + 2·a·log2(a) + 0.25·a²", lambda x: 3 + 2 * x[:, 0] * np.log2(x[:, 0]) + 0.25 * x[:, 0] ** 2),
    2: ("5 + 2·a·log2(a) + 0.5·a²·b", lambda x: 5 + 2 * x[:, 0] * np.log2(x[:, 0]) + 0.5 * x[:, 0] ** 2 * x[:, 1]),
    3: ("1 + a·b^(1/2) + 0.2·c^(3/2)·log2(a)",
        lambda x: 1 + x[:, 0] * np.sqrt(x[:, 1]) + 0.2 * x[:, 2] ** 1.5 * np.log2(x[:, 0])),
    4: ("10 + a·b + 3·c·log2(e) + 0.5·a^2",
        lambda x: 10 + x[:, 0] * x[:, 1] + 3 * x[:, 2] * np.log2(x[:, 3]) + 0.5 * x[:, 0] ** 2),
}


def case(d: int):
    rng = np.random.default_rng(d)
    x = np.repeat(np.array(list(itertools.product(VALUES, repeat=d))), REPEATS, axis=0)
    truth = TRUTH[d][1]
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(d)])
    frame["y"] = truth(x) * (1 + NOISE * rng.standard_normal(len(x)))
    far = np.array([[f * VALUES[-1]] * d for f in FAR])
    return from_frame(frame, "y"), far, truth(far)


def shared_exponent_far_error(measurements, far, exact) -> float:
    x, y = measurements.x, measurements.y
    best = (np.inf, None)
    for sp, sq in itertools.product(FACTOR_SHAPES, FACTOR_SHAPES):
        f, g = Factor(0, *sp).values(x), Factor(1, *sq).values(x)
        full = np.column_stack([np.ones(len(x)), f, g, f * g]) / y[:, None]
        ff, gf = Factor(0, *sp).values(far), Factor(1, *sq).values(far)
        full_far = np.column_stack([np.ones(len(far)), ff, gf, ff * gf])
        for subset in ([0, 1, 2, 3], [0, 1, 3], [0, 2, 3], [1, 2, 3], [0, 3], [1, 3], [2, 3], [3]):
            c, *_ = np.linalg.lstsq(full[:, subset], np.ones(len(x)), rcond=None)
            rss = float(np.sum((full[:, subset] @ c - 1) ** 2))
            if rss < best[0]:
                best = (rss, full_far[:, subset] @ c)
    return float(np.max(np.abs(best[1] / exact - 1)))


def main() -> dict:
    cases = {d: case(d) for d in TRUTH}
    wall = {d: [] for d in cases}
    cpu = {d: [] for d in cases}
    found = {}
    for _ in range(RUNS):
        for d, (measurements, far, exact) in cases.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            model = discover(measurements, at=[dict(zip(measurements.inputs, row)) for row in far])
            wall[d].append(time.perf_counter() - start)
            cpu[d].append(time.process_time() - start_cpu)
            found[d] = model
    result = {"floor_3_inputs_s": FLOOR_3_INPUTS_S, "values_per_input": len(VALUES), "repeats": REPEATS,
              "noise": NOISE, "cases": {}}
    print(f"{'inputs':>6} {'points':>6} {'wall s':>7} {'cpu s':>6} {'far err':>8}  formula found (truth)")
    for d, (measurements, far, exact) in cases.items():
        model = found[d]
        error = max(abs(p.value / e - 1) for p, e in zip(model.predictions, exact))
        entry = {"wall_s": round(statistics.median(wall[d]), 3), "cpu_s": round(statistics.median(cpu[d]), 3),
                 "far_error": round(error, 5), "formula": model.formula("text", 4), "truth": TRUTH[d][0],
                 "configurations": int(len(VALUES) ** d)}
        if d == 2:
            entry["shared_exponent_far_error"] = round(shared_exponent_far_error(measurements, far, exact), 5)
        result["cases"][str(d)] = entry
        print(f"{d:>6} {entry['configurations']:>6} {entry['wall_s']:>7.2f} {entry['cpu_s']:>6.2f} "
              f"{100 * error:>7.2f}%  {entry['formula']}  ({TRUTH[d][0]})")
    shared = result["cases"]["2"]["shared_exponent_far_error"]
    print(f"2 inputs, shared-exponent form (Extra-P-like, emulated): far error {100 * shared:.1f} % "
          f"vs {100 * result['cases']['2']['far_error']:.2f} %")
    cpu3 = result["cases"]["3"]["cpu_s"]
    result["floor_met"] = cpu3 < FLOOR_3_INPUTS_S
    print(f"3 inputs: {cpu3:.2f} s of one core (floor {FLOOR_3_INPUTS_S} s): {'met' if result['floor_met'] else 'MISSED'}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
