"""One report against its floor: ``costmodel report`` as a user runs it, a fresh process each time.

- floor: the same command on a notebook whose only cell imports the third-party packages the
  report needs (NumPy, pandas, Matplotlib with pyplot, SymPy for the formula card, IPython's
  display; seaborn's theme comes from the on-disk cache, reporting/theme.py), exported
  to HTML and PDF: the interpreter, the CLI, the kernel's start,
  those imports, nbconvert and WeasyPrint and the export of a nearly empty page. None of
  costmodel's own modules is imported in the kernel, so the project's own import time is
  counted on the report's side (issue 9);
- the reference report (``costmodel report``, HTML + PDF) with a warm on-disk cache (compiled
  model, default calibration, laid-out formulas and their print forms, drawn figures: what
  every later report of the same configuration finds on a host);
- the same report warm but printed again (every kind above in the cache except the printed
  PDF, ``report-pdf``): what the PDF cache alone saves;
- the same report cold: none of the report's own content in the cache (no laid-out formula,
  no print form, no figure, no simulator band, no formula card, no printed PDF: the first report of a
  configuration on a host; the compiled model and the default calibration stay, as every
  ``costmodel`` command fills them). Figures, bands and cards are keyed on their inputs, so
  another configuration's report computes its own: its time lies between the two.

The three alternate (``REPEAT`` rounds, the order rotated each round) so a change in the
machine's load hits all alike; medians are compared. All runs use a cache directory of their
own, warmed once before the rounds. The load average is printed beside the figures.

Goal (issue 9): one HTML+PDF report <= 1.5x the floor. The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
GOAL = 1.5
#: The cache kinds that hold a report's own content (formulas, their print forms, figures).
REPORT_CONTENT = ("math-svg", "math-print", "figure-png", "report-figure", "report-bands", "report-card", "report-pdf")

#: The third-party packages the report's kernel needs, and nothing of costmodel's.
FLOOR_NOTEBOOK = '''\
# %%
import matplotlib.pyplot
import numpy
import pandas
import sympy
from IPython.display import HTML, Image, Markdown, display

display(Markdown("# floor"))
'''


def run(arguments: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (the command and every process it waited for) of one command. [s]"""
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "costmodel", *arguments], stdout=output,
                                   stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"costmodel {' '.join(arguments)} failed ({process.returncode}): "
                               f"{output.read().decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        tmp = Path(tmp)
        floor_notebook = tmp / "floor.py"
        floor_notebook.write_text(FLOOR_NOTEBOOK)
        warm_cache, cold_cache = tmp / "cache", tmp / "cache-cold"
        env = dict(os.environ, COSTMODEL_CACHE_DIR=str(warm_cache), COSTMODEL_CACHE="1")
        cold_env = dict(env, COSTMODEL_CACHE_DIR=str(cold_cache))
        printed_cache = tmp / "cache-printed"
        printed_env = dict(env, COSTMODEL_CACHE_DIR=str(printed_cache))
        common = ["--to", "html,pdf", "--no-progress"]
        cases = {
            "floor": (["report", "--notebook", str(floor_notebook), "-o", str(tmp / "floor"), *common], env),
            "report": (["report", "-o", str(tmp / "report"), *common], env),
            "report_printed": (["report", "-o", str(tmp / "report-printed"), *common], printed_env),
            "report_cold": (["report", "-o", str(tmp / "report-cold"), *common], cold_env),
        }
        for name in ("floor", "report"):  # warm the OS file cache and the on-disk cache, not measured
            run(cases[name][0], env)
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        loads = []
        names = list(cases)
        for repeat in range(REPEAT):
            for name in names[repeat % len(names):] + names[:repeat % len(names)]:  # rotated order
                if name == "report_cold":  # the warm cache without the report's own content
                    shutil.rmtree(cold_cache, ignore_errors=True)
                    shutil.copytree(warm_cache, cold_cache, ignore=shutil.ignore_patterns(*REPORT_CONTENT))
                if name == "report_printed":  # the warm cache without the printed PDF
                    shutil.rmtree(printed_cache, ignore_errors=True)
                    shutil.copytree(warm_cache, printed_cache, ignore=shutil.ignore_patterns("report-pdf"))
                loads.append(os.getloadavg()[0])
                wall, cpu = run(*cases[name])
                runs[name].append((wall, cpu))
                print(f"{name:17s} {wall:6.2f} s wall, {cpu:6.2f} s CPU (load average {loads[-1]:.1f})", flush=True)
    wall = {name: median(r[0] for r in values) for name, values in runs.items()}
    cpu = {name: median(r[1] for r in values) for name, values in runs.items()}
    ratio, cold_ratio = wall["report"] / wall["floor"], wall["report_cold"] / wall["floor"]
    cpu_ratio = cpu["report"] / cpu["floor"]  # steadier than wall time on a loaded machine
    print(f"medians of {REPEAT} interleaved runs (load average {min(loads):.1f}-{max(loads):.1f}, {os.cpu_count()} cores):")
    print(f"  floor (kernel + third-party imports, HTML+PDF of a nearly empty page): {wall['floor']:6.2f} s "
          f"({cpu['floor']:.2f} s CPU)")
    print(f"  one report, HTML + PDF, warm cache:        {wall['report']:6.2f} s ({cpu['report']:.2f} s CPU) "
          f"= {ratio:.2f}x the floor (goal <= {GOAL}x)")
    print(f"  one report, warm but the PDF printed again: {wall['report_printed']:6.2f} s "
          f"({cpu['report_printed']:.2f} s CPU) = {wall['report_printed'] / wall['floor']:.2f}x the floor "
          f"({cpu['report_printed'] / cpu['floor']:.2f}x CPU)")
    print(f"  one report, cold (no formula or figure cached): {wall['report_cold']:6.2f} s "
          f"({cpu['report_cold']:.2f} s CPU) = {cold_ratio:.2f}x the floor")
    print(f"  CPU time, report vs floor: {cpu_ratio:.2f}x warm, {cpu['report_cold'] / cpu['floor']:.2f}x cold")
    result = {
        "floor_s": round(wall["floor"], 3), "report_html_pdf_s": round(wall["report"], 3),
        "report_html_pdf_cold_s": round(wall["report_cold"], 3),
        "report_html_pdf_printed_s": round(wall["report_printed"], 3),
        "report_printed_cpu_s": round(cpu["report_printed"], 3),
        "report_printed_vs_floor": round(wall["report_printed"] / wall["floor"], 3),
        "floor_cpu_s": round(cpu["floor"], 3), "report_cpu_s": round(cpu["report"], 3),
        "report_cold_cpu_s": round(cpu["report_cold"], 3),
        "report_vs_floor": round(ratio, 3), "report_vs_floor_cpu": round(cpu_ratio, 3), "report_cold_vs_floor": round(cold_ratio, 3),
        "report_cold_vs_floor_cpu": round(cpu["report_cold"] / cpu["floor"], 3),
        "report_vs_floor_goal": GOAL, "report_vs_floor_ok": ratio <= GOAL, "repeat": REPEAT,
        "load_average_min": round(min(loads), 2), "load_average_max": round(max(loads), 2), "cpus": os.cpu_count(),
    }
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
