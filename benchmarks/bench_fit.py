"""Fit speed and memory: medians of interleaved runs, the same work on every side.

What is timed (issue 9's goals beside each):

- in-process, after one warm-up fit per process: validation of the runs, the fit of
  ``splits`` under one model form (``alternatives=False``; goal < 50 ms at 1,000 runs) and
  the fit with the four forms compared, as ``costmodel fit`` does (goal < 150 ms at 1,000
  runs), on 10, 1,000 and 100,000 synthetic runs (seeded, 5 % noise, replicated shapes of
  both platforms and both hugepage sizes, as a user's measurements come);
- ``costmodel fit`` on the shipped 128-row sample as a whole process, warm (goal < 1.5 s),
  beside ``python -c "import numpy"``;
- 10⁶ runs read from a CSV file and fitted (one form, and four), and the same runs from a
  Parquet file (one form), each in a child process under an address-space limit of 3 GB
  (``resource.setrlimit``: a runaway fit fails there instead of starving other work), peak
  memory from the child's ``getrusage`` (goal < 10 s and < 1 GB).

Each round runs one child per source tree for the in-process cases (the current tree, and
with ``--baseline DIR`` an older checkout of the project, in alternating order), then the
whole-process cases in the same alternation; every figure is the median over rounds and
repeats. Ratios are printed (baseline / current, and current / goal) beside the load
average, since the machine is shared. The last line is one JSON object with every figure.

    .venv/bin/python benchmarks/bench_fit.py                       # the current tree
    .venv/bin/python benchmarks/bench_fit.py --baseline /tmp/old   # and an older checkout, interleaved
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10, 1_000, 100_000)
BIG = 1_000_000
#: Goals of issue 9. [s], [B]
GOALS = {"fit1_1000": 0.050, "fit4_1000": 0.150, "cli_sample": 1.5, "big_fit1": 10.0, "big_fit4": 10.0,
         "big_parquet_fit1": 10.0, "big_peak_bytes": 1e9}
#: Address-space limit of the 10⁶-run children. [B]
MEMORY_LIMIT = 3_000_000_000
#: Known coefficients of the synthetic runs (as costmodel/samples/make_samples.py uses).
TRUTH = {"remainder_regions": 60.0, "transient_regions": 20.0}
SAMPLE = "costmodel/samples/synthetic-runs.csv"


# --- the child: runs in one source tree ----------------------------------------------------------
def shapes(n: int, seed: int):
    import numpy as np
    import pandas as pd

    from costmodel.units import GiB

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "memory_bytes": rng.choice([4, 8, 16, 32, 64], n) * GiB,
        "vcpus": rng.choice([1, 2, 4, 8, 16, 32, 64], n),
        "hugepage_bytes": rng.choice([2 * 1024**2, GiB], n),
        "platform": rng.choice(["snp", "tdx"], n),
    })
    frame["virtqueues"] = frame["vcpus"] + 3 + rng.choice([0, 8], n)
    return frame


def runs(n: int, seed: int = 0):
    from costmodel import calibration, fitting

    truth = calibration.default().with_values(**TRUTH)
    return fitting.synthetic_runs(shapes(n, seed), truth, targets=["splits"], noise=0.05, seed=seed)


def child_cases(repeats: dict[int, int]) -> dict:
    """Time every in-process case, cases interleaved within each repeat."""
    from costmodel import data, fitting

    start = time.perf_counter()
    fitting.fit(runs(200, seed=99), "splits")  # the first fit of a process: compile, structure, imports
    cold = time.perf_counter() - start
    frames = {n: runs(n) for n in repeats}
    cases = {}
    for n in repeats:
        frame = frames[n]
        cases[f"validate_{n}"] = (n, lambda f=frame: data.validate(f, "runs"))
        cases[f"fit1_{n}"] = (n, lambda f=frame: fitting.fit(f, "splits", alternatives=False))
        cases[f"fit4_{n}"] = (n, lambda f=frame: fitting.fit(f, "splits"))
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(max(repeats.values())):
        for name, (n, function) in cases.items():
            if r < repeats[n]:
                t = time.perf_counter()
                function()
                times[name].append(time.perf_counter() - t)
    return {"cold_first_fit": [cold], **times}


def child_big(path: str, alternatives: bool) -> dict:
    """One fit of the 10⁶-run file (a fresh process: peak memory is the fit's own)."""
    import costmodel.fitting as fitting

    start = time.perf_counter()
    result = fitting.fit(path, "splits", alternatives=alternatives)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {"seconds": seconds, "peak_bytes": peak, "n_rows": result.n_rows_}


def write_big(path: str) -> None:
    """10⁶ runs of ``splits`` (model value per distinct shape, seeded 5 % noise) as CSV."""
    import numpy as np

    from costmodel import calibration
    from costmodel.evaluate import evaluate

    frame = shapes(BIG, seed=1)
    truth = calibration.default().with_values(**TRUTH)
    distinct = frame.drop_duplicates().reset_index(drop=True)
    value = evaluate(distinct, truth, outputs=["splits"])["splits"].to_numpy()
    joined = frame.merge(distinct.assign(truth=value), on=list(distinct.columns), how="left")
    rng = np.random.default_rng(1)
    frame["splits"] = np.maximum(joined["truth"].to_numpy() * (1 + 0.05 * rng.standard_normal(BIG)), 0.0)
    frame["run_id"] = [f"big-{i}" for i in range(BIG)]
    frame["source"] = "synthetic: benchmarks/bench_fit.py"
    frame.to_csv(path, index=False)
    frame.to_parquet(str(Path(path).with_suffix(".parquet")), index=False)


# --- the parent: rounds, interleaving, medians -----------------------------------------------------
def _env(tree: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("COSTMODEL_CACHE", None)
    return env


def _child(tree: Path, *args: str, limit: int | None = None) -> dict:
    def guard():
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    out = subprocess.run([sys.executable, __file__, "--child", *args], cwd=tree, env=_env(tree), check=True,
                         capture_output=True, text=True, preexec_fn=guard)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _process(tree: Path, argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=tree, env=_env(tree), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout of the project, timed interleaved")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="repeats per round of the cases up to 1,000 runs")
    parser.add_argument("--no-big", action="store_true", help="leave out the 10⁶-run fits")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "cases":
            result = child_cases({n: (int(rest[0]) if n <= 1000 else 1) for n in SIZES})
        elif kind == "big":
            result = child_big(rest[0], rest[1] == "4")
        else:
            write_big(rest[0])
            result = {}
        print(json.dumps(result))
        return result

    trees = {"current": ROOT}
    if args.baseline:
        trees["baseline"] = args.baseline.resolve()
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    loads = [os.getloadavg()[0]]

    def add(tree: str, name: str, values):
        samples[tree].setdefault(name, []).extend(values if isinstance(values, list) else [values])

    for name, tree in trees.items():  # warm each tree's on-disk cache once
        _process(tree, ["-m", "costmodel", "fit", SAMPLE, "--target", "splits"])
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for name in order:
            for case, values in _child(trees[name], "cases", str(args.repeats)).items():
                add(name, case, values)
        for _ in range(args.repeats):
            add("current", "import_numpy", _process(ROOT, ["-c", "import numpy"]))
            for name in order:
                add(name, "cli_sample", _process(trees[name], ["-m", "costmodel", "fit", SAMPLE, "--target", "splits"]))
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}/{args.rounds} done, load average {loads[-1]:.2f}", file=sys.stderr)
    if not args.no_big:
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "big-runs.csv")
            _child(ROOT, "write", path)
            parquet = str(Path(path).with_suffix(".parquet"))
            for kind, file, forms in (("", path, "1"), ("", path, "4"), ("parquet_", parquet, "1")):
                for name in (reversed(list(trees)) if forms == "4" else list(trees)):
                    try:
                        big = _child(trees[name], "big", file, forms, limit=MEMORY_LIMIT)
                    except subprocess.CalledProcessError as error:  # e.g. over the memory limit
                        print(f"{name}: 10^6 runs ({file}), {forms} form(s) failed: "
                              f"{error.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                        continue
                    add(name, f"big_{kind}fit{forms}", big["seconds"])
                    add(name, f"big_{kind}fit{forms}_peak_bytes", big["peak_bytes"])
                loads.append(os.getloadavg()[0])

    medians = {tree: {case: statistics.median(v) for case, v in cases.items()} for tree, cases in samples.items()}
    result = {"medians_s": medians, "n_samples": {c: len(v) for c, v in samples["current"].items()},
              "load_average": {"min": min(loads), "max": max(loads), "median": statistics.median(loads)},
              "goals": GOALS, "ratio_to_goal": {}, "ratio_baseline_to_current": {}}
    current = medians["current"]
    print(f"load average (1 min) during the runs: median {statistics.median(loads):.2f}, "
          f"range {min(loads):.2f}–{max(loads):.2f} on {os.cpu_count()} cores")
    for case in current:
        line = f"{case:>24}: current {current[case]:.4g}"
        if "baseline" in medians and case in medians["baseline"]:
            ratio = medians["baseline"][case] / current[case]
            result["ratio_baseline_to_current"][case] = ratio
            line += f", baseline {medians['baseline'][case]:.4g} (baseline/current {ratio:.2f}×)"
        goal_key = "big_peak_bytes" if case.endswith("_peak_bytes") else case
        if goal_key in GOALS:
            ratio = current[case] / GOALS[goal_key]
            result["ratio_to_goal"][case] = ratio
            line += f"; {ratio:.2f}× the goal {GOALS[goal_key]:.4g} ({'met' if ratio < 1 else 'NOT met'})"
        print(line + (" [B]" if case.endswith("_bytes") else " [s]"))
    if "import_numpy" in current and "cli_sample" in current:
        print(f"costmodel fit on the sample = {current['cli_sample'] / current['import_numpy']:.2f}× "
              "python -c 'import numpy'")
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
