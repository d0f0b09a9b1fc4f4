"""Whole-process latency of the ``costmodel`` command against the interpreter's floors.

Interleaved runs (each round runs every command once, in a shuffled order, so load drifts hit
all alike) of: ``python -c pass``, ``python -c "import numpy"``, ``costmodel --help``, a warm
``costmodel predict`` (its caches filled by a first run), a warm grid ``predict --table``, a
cold ``predict`` (a fresh cache directory each time), a warm ``costmodel fit`` on the shipped
128-row sample and a warm ``costmodel formula``. Prints medians and the ratios to
``import numpy``; floors (issue 9): predict warm < 0.5 s and ≤ 2× ``import numpy``,
``--help`` < 0.3 s, cold predict < 3 s, fit on the sample < 1.5 s warm.

``--compare DIR`` also runs every costmodel command from another source tree (``DIR`` on
``PYTHONPATH``, e.g. ``git archive main | tar -x -C DIR``) in the same rounds, so before and
after share the machine's load; its medians are printed beside, prefixed ``base_``.

Bytecode is written and used as an installed wheel would (``PYTHONDONTWRITEBYTECODE`` is
cleared for the child processes; a first run compiles it). The machine's load average is
printed with the medians. The last line is one JSON object.
Run: ``python benchmarks/bench_cli.py [ROUNDS] [--compare DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 5
COSTMODEL = [sys.executable, "-m", "costmodel"]
FLOORS = {"help_s": 0.3, "predict_warm_s": 0.5, "predict_warm_over_numpy": 2.0, "predict_cold_s": 3.0,
          "fit_warm_s": 1.5}
HEAVY = ("sympy", "pandas", "scipy", "pyarrow", "numba")
GRID = ["--memory", "4G:64G:x2", "--platform", "snp,tdx", "--table"]


def _sample() -> str:
    from costmodel.samples import SYNTHETIC_RUNS

    return str(SYNTHETIC_RUNS)


def _env(cache_dir: str, source: str | None = None) -> dict:
    env = {**os.environ, "COSTMODEL_CACHE_DIR": cache_dir}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if source:
        env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


#: Children run here, not in a checkout (``-m`` puts the working directory first on sys.path).
NEUTRAL = tempfile.gettempdir()


def _run(argv, env=None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, cwd=NEUTRAL)
    return time.perf_counter() - start


def _modules_on_predict(env) -> list[str]:
    """Heavy third-party modules a warm predict imports."""
    code = ("import sys; from costmodel.cli import main; "
            "import io, contextlib; f = io.StringIO()\n"
            "with contextlib.redirect_stdout(f): main(['predict'])\n"
            f"print('imports:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=NEUTRAL).stdout
    line = [x for x in out.splitlines() if x.startswith("imports:")][-1]
    return [m for m in line[len("imports:"):].split(",") if m]


def _commands(env, label: str, sample: str) -> dict:
    """The costmodel commands of one source tree (``label`` prefixes their names)."""
    def cold_predict():
        return _run([*COSTMODEL, "predict"], {**env, "COSTMODEL_CACHE_DIR": tempfile.mkdtemp(prefix="cm-cold-")})

    return {
        f"{label}help_s": lambda: _run([*COSTMODEL, "--help"], env),
        f"{label}predict_warm_s": lambda: _run([*COSTMODEL, "predict"], env),
        f"{label}predict_grid_warm_s": lambda: _run([*COSTMODEL, "predict", *GRID], env),
        f"{label}predict_cold_s": cold_predict,
        f"{label}fit_warm_s": lambda: _run([*COSTMODEL, "fit", sample, "--target", "splits"], env),
        f"{label}formula_warm_s": lambda: _run([*COSTMODEL, "formula"], env),
    }


def main(rounds: int = ROUNDS, compare: str | None = None, seed: int = 0) -> dict:
    sample = _sample()
    trees = {"": _env(tempfile.mkdtemp(prefix="costmodel-bench-warm-"))}
    if compare:
        trees["base_"] = _env(tempfile.mkdtemp(prefix="costmodel-bench-base-"), str(Path(compare).resolve()))
    work = {"python_s": lambda: _run([sys.executable, "-c", "pass"]),
            "import_numpy_s": lambda: _run([sys.executable, "-c", "import numpy"])}
    for label, env in trees.items():
        commands = _commands(env, label, sample)
        for name, fn in commands.items():  # fill the caches (and write bytecode): the first run is not timed
            if "cold" not in name:
                fn()
        work.update(commands)
    order = list(work)
    rng = random.Random(seed)
    times = {k: [] for k in work}
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            times[name].append(work[name]())
    median = {k: round(statistics.median(v), 3) for k, v in times.items()}
    numpy_s = median["import_numpy_s"]
    result = {**median, "load_average": [round(x, 1) for x in os.getloadavg()], "rounds": rounds,
              "over_numpy": {k[:-2]: round(v / numpy_s, 2) for k, v in median.items() if k != "import_numpy_s"},
              "warm_predict_imports": _modules_on_predict(trees[""]), "floors": FLOORS}
    if compare:
        result["base_warm_predict_imports"] = _modules_on_predict(trees["base_"])
        result["speedup"] = {k: round(median["base_" + k] / median[k], 2) for k in median if "base_" + k in median}
    for name in sorted(work, key=lambda n: (n.startswith("base_"), n)):
        print(f"{name[:-2]:>24}: {median[name]:.3f} s (×{median[name] / numpy_s:.2f} import numpy)")
    print("load average:", " ".join(str(x) for x in result["load_average"]))
    print("warm predict imports:", ", ".join(result["warm_predict_imports"]) or f"none of {'/'.join(HEAVY)}")
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("rounds", nargs="?", type=int, default=ROUNDS)
    cli.add_argument("--compare", metavar="DIR", help="another source tree to time in the same rounds")
    options = cli.parse_args()
    main(options.rounds, options.compare)
