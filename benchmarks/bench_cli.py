"""Whole-process latency of the ``costmodel`` command against the interpreter's floors.

Interleaved runs (each round runs every command once, so load drifts hit all alike) of:
``python -c pass``, ``python -c "import numpy"``, ``costmodel --help``, a warm
``costmodel predict`` (its caches filled by a first run) and a cold one (a fresh cache
directory each time). Prints medians and the ratios to ``import numpy``; floors (issue 9):
predict warm < 0.5 s and ≤ 2× ``import numpy``, ``--help`` < 0.3 s, cold predict < 3 s.
The last line is one JSON object. Run: ``python benchmarks/bench_cli.py [ROUNDS]``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 5
COSTMODEL = [sys.executable, "-c", "import sys; from costmodel.cli import main; sys.exit(main())"]
FLOORS = {"help_s": 0.3, "predict_warm_s": 0.5, "predict_warm_over_numpy": 2.0, "predict_cold_s": 3.0}


def _run(argv, env=None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def _modules_on_predict(env) -> list[str]:
    """Heavy third-party modules a warm predict imports."""
    code = ("import sys; from costmodel.cli import main; "
            "import io, contextlib; f = io.StringIO()\n"
            "with contextlib.redirect_stdout(f): main(['predict'])\n"
            "print(','.join(m for m in ('sympy', 'pandas', 'scipy', 'pyarrow', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    return [m for m in out.strip().splitlines()[-1].split(",") if m]


def main(rounds: int = ROUNDS) -> dict:
    warm_dir = tempfile.mkdtemp(prefix="costmodel-bench-warm-")
    warm_env = {**os.environ, "COSTMODEL_CACHE_DIR": warm_dir}
    subprocess.run([*COSTMODEL, "predict"], check=True, stdout=subprocess.DEVNULL, env=warm_env)  # fill the cache
    work = {
        "python_s": lambda: _run([sys.executable, "-c", "pass"]),
        "import_numpy_s": lambda: _run([sys.executable, "-c", "import numpy"]),
        "help_s": lambda: _run([*COSTMODEL, "--help"], warm_env),
        "predict_warm_s": lambda: _run([*COSTMODEL, "predict"], warm_env),
        "predict_cold_s": lambda: _run([*COSTMODEL, "predict"],
                                       {**os.environ, "COSTMODEL_CACHE_DIR": tempfile.mkdtemp(prefix="cm-cold-")}),
    }
    times = {k: [] for k in work}
    for _ in range(rounds):
        for name, fn in work.items():
            times[name].append(fn())
    median = {k: round(statistics.median(v), 3) for k, v in times.items()}
    numpy_s = median["import_numpy_s"]
    result = {**median, "load_average": [round(x, 1) for x in os.getloadavg()], "rounds": rounds,
              "help_over_numpy": round(median["help_s"] / numpy_s, 2),
              "predict_warm_over_numpy": round(median["predict_warm_s"] / numpy_s, 2),
              "predict_cold_over_numpy": round(median["predict_cold_s"] / numpy_s, 2),
              "warm_predict_imports": _modules_on_predict(warm_env), "floors": FLOORS}
    for name in work:
        print(f"{name[:-2]:>16}: {median[name]:.3f} s (×{median[name] / numpy_s:.2f} import numpy)")
    print("warm predict imports:", ", ".join(result["warm_predict_imports"]) or "none of sympy/pandas/scipy/pyarrow/numba")
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS)
