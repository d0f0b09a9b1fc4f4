"""Evaluation speed and memory: the public API against the fused-loop floor and the NumPy program.

Random shapes over every input, text columns included (the set of
tests/test_compiled_equivalence.py: devices specs and the virtqueues shortcut, SEV-SNP/TDX as
text, NUMA nodes, KASLR, SVSM, atomic pools). For each size the same work is timed,
interleaved in a rotating order, ``REPEATS`` times, and the medians compared; every variant returns every output
(``swiotlb_bytes`` and :data:`costmodel.model.variables.OUTPUTS`):

- ``api``: :func:`costmodel.evaluate.evaluate_arrays` on the raw columns (text parsed,
  validated, devices and per-CPU units resolved, the fused kernel);
- ``stream``: :func:`costmodel.evaluate.iter_evaluate_arrays`, the same in pieces, each piece
  reduced (the way a grid larger than memory is evaluated);
- ``floor``: the fused kernel alone on columns already resolved, plus the model's input checks
  (:func:`costmodel.shape.check_columns` on the numeric columns: the validation a hand-written
  loop would need too); text parsing and resolution are the API's own work, outside the floor;
- ``numpy``: the NumPy program (the path without numba) on the same resolved columns, with
  the same checks.

Every variant asks for the default outputs, so ``api``, ``stream`` and ``floor`` run the same
fused kernel (the one generated for those outputs). Beside the wall-time medians, each
variant's median process CPU time (all threads) is printed per shape: on a machine shared
with other sessions the wall times swing with their load, the CPU per shape much less.

At 10⁷ the inputs are evaluated in pieces (:data:`costmodel.evaluate.PIECE`): ``api`` is the
stream there, and ``floor``/``numpy`` run piece by piece, each piece resolved outside the
timing (the NumPy program, minutes at 10⁷, in the first repeat only); each repeat runs the
stream then the floor, so they are interleaved repeat by repeat. Each size runs in its own child process under an address-space limit
(``RLIMIT_AS``, :data:`GUARD_BYTES`), so an overshoot fails that child, not the machine.
Peak memory (``ru_maxrss`` of a fresh child): at 10⁶ the in-memory API on the whole grid; at
10⁷ the stream, its pieces generated lazily (the inputs of 10⁷ shapes alone are ≈ 0.9 GB, the
outputs 2.2 GB: only a stream can stay under the goal).

Goals (issue 9): ≥ 10⁷ shapes/s at 10⁶ and 10⁷, API within 1.5× of the fused floor, < 600 MB
peak at 10⁷. Run ``python benchmarks/bench_evaluate.py [sizes...]``; the load average is
printed beside the figures (the machine is shared: compare ratios). The last line is one
JSON object.
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

TESTS = str(Path(__file__).resolve().parents[1] / "tests")
REPEATS = 5
GUARD_BYTES = 4_000_000_000
IN_MEMORY_MAX = 1_000_000
FLOORS = {"shapes_per_s": 1e7, "ratio_to_fused_floor": 1.5, "peak_mb_at_1e7": 600}


def _median_times(work: dict, repeats: int, cpu: dict | None = None) -> dict[str, float]:
    """Median wall time of each variant, interleaved; ``cpu`` receives the median process CPU
    time of each (all threads: robust to other sessions' load where wall time is not)."""
    times = {k: [] for k in work}
    spent = {k: [] for k in work}
    names = list(work)
    for repeat in range(repeats):  # interleaved: load changes hit every variant alike
        # in a rotating order: the variant run right after the NumPy program (gigabytes of
        # temporaries freed, the allocator's memory given back) pays for faulting memory in
        # again, so no variant may always be that one
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            fn = work[name]
            start, used = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            spent[name].append(time.process_time() - used)
    if cpu is not None:
        cpu.update({k: statistics.median(v) for k, v in spent.items()})
    return {k: statistics.median(v) for k, v in times.items()}


def _checks(arrays):
    from costmodel.shape import check_columns

    check_columns({k: arrays[k] for k in ("memory_bytes", "vcpus", "hugepage_bytes", "boot_vcpus", "numa_nodes",
                                          "lowmem_bytes", "svsm", "platform")})


def measure(n: int, repeats: int) -> dict:
    """Medians of each variant on ``n`` shapes (run in a guarded child)."""
    sys.path.insert(0, TESTS)
    import numpy as np
    from test_compiled_equivalence import shapes

    from costmodel import calibration, compiled, evaluate

    cal = calibration.default()
    names = tuple(["swiotlb_bytes", *evaluate.OUTPUTS])
    coefficients = evaluate.coefficients_by_platform(cal)
    fused = compiled.compile_outputs(names, cal.form, fused=True)
    plain = compiled.compile_outputs(names, cal.form, fused=False)
    cfg = shapes(n)
    fused(compiled.configurations(shapes(1000)), coefficients)  # compile (or load numba's cache) outside the timing

    def stream():
        total = 0.0
        for values in evaluate.iter_evaluate_arrays(cfg, cal):
            total += float(np.sum(values["splits"]))
        return total

    cpu: dict[str, float] = {}
    if n <= IN_MEMORY_MAX:
        arrays = compiled.configurations(cfg)
        work = {"api": lambda: evaluate.evaluate_arrays(cfg, cal), "stream": stream,
                "floor": lambda: (_checks(arrays), fused(arrays, coefficients)),
                "numpy": lambda: (_checks(arrays), plain(arrays, coefficients))}
        times = _median_times(work, repeats, cpu)
    else:  # pieces: resolved outside the timing, the kernels timed piece by piece; interleaved by repeat
        spent = {k: [] for k in ("api", "floor", "numpy")}
        used = {k: [] for k in spent}
        for repeat in range(repeats):  # the NumPy program (≈ 4x the floor) in the first repeat only
            begin, cpu_begin = time.perf_counter(), time.process_time()
            stream()
            spent["api"].append(time.perf_counter() - begin)
            used["api"].append(time.process_time() - cpu_begin)
            wall, cpu_time = {"floor": 0.0, "numpy": 0.0}, {"floor": 0.0, "numpy": 0.0}
            for start in range(0, n, evaluate.PIECE):
                arrays = compiled.configurations({k: v[start:start + evaluate.PIECE] for k, v in cfg.items()})
                for name, program in (("floor", fused), ("numpy", plain))[:2 if repeat == 0 else 1]:
                    begin, cpu_begin = time.perf_counter(), time.process_time()
                    _checks(arrays)
                    program(arrays, coefficients)
                    wall[name] += time.perf_counter() - begin
                    cpu_time[name] += time.process_time() - cpu_begin
            for k in wall:
                if wall[k]:
                    spent[k].append(wall[k])
                    used[k].append(cpu_time[k])
        times = {k: statistics.median(v) for k, v in spent.items()}
        cpu = {k: statistics.median(v) for k, v in used.items()}
        times["stream"], cpu["stream"] = times["api"], cpu["api"]
    return {"shapes": n, "repeats": repeats, **{f"{k}_s": round(v, 4) for k, v in times.items()},
            **{f"{k}_shapes_per_s": round(n / v) for k, v in times.items()},
            **{f"{k}_cpu_ns_per_shape": round(v * 1e9 / n) for k, v in cpu.items()},
            "cpu_ratio_api_to_fused_floor": round(cpu["api"] / cpu["floor"], 2),
            "ratio_api_to_fused_floor": round(times["api"] / times["floor"], 2),
            "ratio_stream_to_fused_floor": round(times["stream"] / times["floor"], 2),
            "ratio_numpy_to_fused_floor": round(times["numpy"] / times["floor"], 2),
            "load_average_after": [round(x, 1) for x in os.getloadavg()]}


def peak(n: int) -> dict:
    """Peak RSS [MB] of evaluating ``n`` shapes in this (fresh, guarded) process."""
    sys.path.insert(0, TESTS)
    import numpy as np
    from test_compiled_equivalence import shapes

    from costmodel import calibration, evaluate

    cal = calibration.default()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if n <= IN_MEMORY_MAX:
        how = "evaluate_arrays, whole grid in memory"
        evaluate.evaluate_arrays(shapes(n), cal)
    else:
        how = "iter_evaluate_arrays over lazily generated pieces"
        pieces = (shapes(min(evaluate.PIECE, n - s), seed=s) for s in range(0, n, evaluate.PIECE))
        for values in evaluate.iter_evaluate_arrays(pieces, cal):
            float(np.sum(values["splits"]))
    return {"peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "imports_mb": round(base),
            "peak_how": how}


def _child(what: str, n: int, repeats: int = REPEATS) -> dict:
    def guard():
        resource.setrlimit(resource.RLIMIT_AS, (GUARD_BYTES, GUARD_BYTES))

    run = subprocess.run([sys.executable, __file__, "--child", what, str(n), str(repeats)], capture_output=True,
                         text=True, preexec_fn=guard)
    if run.returncode:
        return {"failed": f"{what} at {n}: exit {run.returncode}: {run.stderr.strip().splitlines()[-1:]}"}
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(sizes=(1_000_000, 10_000_000)) -> dict:
    load = os.getloadavg()
    rows = []
    for n in sizes:
        row = _child("measure", n, REPEATS if n <= IN_MEMORY_MAX else 3)
        row.update(_child("peak", n))
        row.setdefault("shapes", n)
        rows.append(row)
        if "failed" in row:
            print(f"{n:>12,} shapes: {row['failed']}")
            continue
        print(f"{n:>12,} shapes: API {row['api_shapes_per_s']:,}/s, stream {row['stream_shapes_per_s']:,}/s, "
              f"fused floor {row['floor_shapes_per_s']:,}/s, NumPy program {row['numpy_shapes_per_s']:,}/s; "
              f"API/floor {row['ratio_api_to_fused_floor']}, stream/floor {row['ratio_stream_to_fused_floor']}, "
              f"NumPy/floor {row['ratio_numpy_to_fused_floor']}; CPU per shape: API {row['api_cpu_ns_per_shape']} ns, "
              f"floor {row['floor_cpu_ns_per_shape']} ns (API/floor {row['cpu_ratio_api_to_fused_floor']}); "
              f"peak {row['peak_mb']} MB ({row['peak_how']}); "
              f"load {row['load_average_after']}")
    result = {"load_average_before": [round(x, 1) for x in load], "load_average_after": [round(x, 1) for x in
              os.getloadavg()], "cpus": os.cpu_count(), "sizes": rows, "floors": FLOORS,
              "guard_bytes": GUARD_BYTES}
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        what, n, repeats = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(measure(n, repeats) if what == "measure" else peak(n)))
    else:
        main(tuple(int(float(a)) for a in sys.argv[1:]) or (1_000_000, 10_000_000))
