"""Report speed: the floor, one report, and batch throughput, measured in one run.

- floor: what every report pays before its content: a notebook whose only cell imports
  what the report notebook imports, run through the same path (kernel start, imports,
  export to HTML and PDF of that nearly empty page); the kernel-only part is printed too;
- one report of the reference guest: HTML only, then HTML + PDF;
- 8 reports (examples/sweep.yaml) with 1 worker and with the default workers (one per core),
  as reports per minute; and with 2 workers when that is not the default.

Goals (issue 4): one HTML+PDF report within 2.5x the floor; 8 reports with 2 workers at
>= 1.5x the 1-worker throughput. Each measurement starts with cold in-process caches
(math renderings), so reports do not borrow from each other; the floor and the single report
are the median of 3 runs. The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from costmodel import reporting  # noqa: E402

REPEAT = 3

IMPORTS_ONLY = '''\
# %% tags=["parameters"]
memory = "16GiB"
# %%
from IPython.display import HTML, Markdown, display
from costmodel import calibration as calibration_module
from costmodel import results, units
from costmodel import reporting
from costmodel.reporting import cards, plots
from costmodel.model import scenarios
from costmodel.evaluate import evaluate
import matplotlib.pyplot, seaborn  # what plots.style() imports in the report
'''


def timed(function, *args, **kwargs):
    reporting.math_svg.cache_clear()
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def main() -> int:
    jobs_default = reporting.default_jobs()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        tmp = Path(tmp)
        empty = tmp / "imports_only.py"
        empty.write_text(IMPORTS_ONLY)
        timed(reporting.execute, empty)  # warm the OS file cache once, not measured
        # single runs on a shared 2-core machine are noisy: the median of REPEAT runs each
        kernel_floor = median(timed(reporting.execute, empty)[0] for _ in range(REPEAT))
        floor = median(timed(reporting.render, {}, str(empty), tmp / "floor", ("html", "pdf"))[0] for _ in range(REPEAT))
        html_only = median(timed(reporting.render, {}, "report", tmp / "one-html", ("html",))[0] for _ in range(REPEAT))
        html_pdf = median(timed(reporting.render, {}, "report", tmp / "one-pdf", ("html", "pdf"))[0] for _ in range(REPEAT))
        print(f"floor (kernel + imports, empty notebook, HTML+PDF): {floor:6.2f} s (load average {os.getloadavg()[0]:.1f})")
        print(f"  of which kernel start + imports alone:              {kernel_floor:6.2f} s")
        print(f"one report, HTML:                                    {html_only:6.2f} s")
        print(f"one report, HTML + PDF:                              {html_pdf:6.2f} s "
              f"= {html_pdf / floor:.2f}x the floor (goal <= 2.5x)")

        entries = reporting.read_sweep(ROOT / "examples" / "sweep.yaml")[:8]
        throughput = {}
        for jobs in sorted({1, 2, jobs_default}):
            seconds, outcomes = timed(reporting.render_batch, entries, tmp / f"batch-{jobs}", jobs, ("html", "pdf"),
                                      progress=False)
            failed = [o for o in outcomes if not o.ok]
            if failed:
                print(f"batch with {jobs} workers: {len(failed)} failed: {failed[0].error}", file=sys.stderr)
                return 1
            throughput[jobs] = len(entries) / seconds * 60
            print(f"8 reports, {jobs} worker{'s' if jobs > 1 else ''}: {seconds:6.2f} s = {throughput[jobs]:5.1f} reports/min")
        speedup = throughput[2] / throughput[1]
        print(f"2 workers vs 1: {speedup:.2f}x (goal >= 1.5x); default workers here: {jobs_default} "
              f"({throughput[jobs_default] / throughput[1]:.2f}x)")

    result = {
        "floor_s": round(floor, 3), "kernel_floor_s": round(kernel_floor, 3),
        "report_html_s": round(html_only, 3), "report_html_pdf_s": round(html_pdf, 3),
        "report_vs_floor": round(html_pdf / floor, 3), "report_vs_floor_goal": 2.5,
        "report_vs_floor_ok": html_pdf / floor <= 2.5,
        "batch8_per_min_1_worker": round(throughput[1], 2), "batch8_per_min_2_workers": round(throughput[2], 2),
        "batch8_per_min_default_workers": round(throughput[jobs_default], 2), "default_workers": jobs_default,
        "speedup_2_workers": round(speedup, 3), "speedup_goal": 1.5, "speedup_ok": speedup >= 1.5,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
