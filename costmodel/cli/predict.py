"""``costmodel predict``: the model's outputs for one VM shape or a grid of them."""

from __future__ import annotations

import json
import math
import sys

from costmodel import parse
from costmodel.cli._shape import add_shape_arguments, shape_grid
from costmodel.cli._workload import add_workload_arguments, workload_grid

#: Most configurations one ``predict`` evaluates (shape values × scenarios): 100,000 take
#: ≈30 s and ≈0.5 GiB peak (benchmarks/predict_budget.py); --max-configurations raises it.
MAX_CONFIGURATIONS = 100_000

SUMMARY_COLUMNS = ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "platform", "scenario",
                   "splits", "merges", "split_merge_share", "conversion_cycles", "huge_mapped_fraction")
#: Shown too when a workload is given (run time after boot).
RUNTIME_COLUMNS = ("runtime_splits", "runtime_merges", "total_split_merge_share", "final_huge_mapped_fraction")


def register(subparsers):
    p = subparsers.add_parser(
        "predict", help="predict splits, merges and conversion cost for a VM shape (or a grid)",
        description="Predict hugepage splits/merges and conversion cost for a confidential VM. "
        "Every shape flag takes one value, a list (1,2,4,8) or a range START:STOP[:STEP] with "
        "STEP +k or xk (1:256:x2); several values give a grid, one row per combination. "
        "Defaults are the published reference guest (16 GiB SEV-SNP, 2 MiB pages, 16 vCPUs assumed).",
        epilog="Sizes: 16GiB, 16G, 512MiB, 4K or bytes (K/M/G/T and KiB/MiB/GiB/TiB are binary, "
        "KB/MB/GB/TB decimal). Scenarios: status_quo, guest_pooling, host_promotion, struct_page_less.")
    add_shape_arguments(p)
    add_workload_arguments(p)
    p.add_argument("--scenario", default="status_quo", metavar="NAME", help="scenario (default status_quo)")
    p.add_argument("--calibration", default=None, metavar="FILE", help="calibration JSON (default: derived from the reference)")
    p.add_argument("--max-configurations", dest="max_configurations", default=None, metavar="N",
                   help=f"most configurations to evaluate, the product of all lists and ranges (default {MAX_CONFIGURATIONS})")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="JSON: one object (one per line for a grid)")
    out.add_argument("--csv", action="store_true", help="CSV with a header, one row per configuration")
    out.add_argument("--table", action="store_true", help="a summary table, one row per configuration")
    out.add_argument("-o", "--output", default=None, metavar="FILE.parquet",
                     help="write every configuration to a Parquet file, computed and written in chunks "
                     "(for grids larger than memory)")
    p.set_defaults(run=run)
    return p


def json_line(value) -> str:
    """Strict JSON (never ``NaN``/``Infinity``), keys in the order given."""
    from costmodel.render.numbers import json_safe

    return json.dumps(json_safe(value), sort_keys=False, allow_nan=False)


def check_budget(grid: dict, scenarios: int, limit: str | None) -> int:
    """The number of configurations asked for, refused (before any work) past the budget."""
    from costmodel.errors import InputError

    budget = parse.count(limit, "--max-configurations") if limit else MAX_CONFIGURATIONS
    total = math.prod(len(values) for values in grid.values()) * scenarios
    if total > budget:
        sizes = " × ".join(f"{len(v)} {k}" for k, v in grid.items() if len(v) > 1)
        raise InputError("grid", f"{total} configurations ({sizes}{f' × {scenarios} scenarios' if scenarios > 1 else ''})",
                         f"at most {budget} (--max-configurations raises the limit; ≈5 KB of memory each)")
    return total


def run(args) -> int:
    from costmodel import calibration, results
    from costmodel.model import scenarios
    grid = {**shape_grid(args), **workload_grid(args)}
    chosen = [parse.choice(s, list(scenarios.SCENARIOS), "--scenario") for s in args.scenario.split(",")]
    check_budget(grid, len(chosen), args.max_configurations)
    cal = calibration.load_or_default(args.calibration)
    if args.output:
        return _write_parquet(args.output, results.predict_grid_chunks(grid, chosen, calibration=cal))
    frame = results.predict_grid(grid, chosen, calibration=cal)
    single = len(frame) == 1
    if single and not (args.csv or args.table):
        prediction = results.Prediction(frame.iloc[0], cal)
        print(json_line(clean(prediction.to_dict())) if args.json else prediction.to_text())
        return 0
    if args.json:
        for i in range(len(frame)):
            print(json_line(clean(results.Prediction(frame.iloc[i], cal).to_dict())))
    elif args.csv:
        keys = list(results.PREDICTION_KEYS) + [c for c in frame.columns if c not in results.PREDICTION_KEYS]
        frame[keys].to_csv(sys.stdout, index=False, float_format="%.10g")
    else:
        print(table(frame))
        if (frame["platform"].astype(str) == "tdx").any() and cal.tdx_borrowed:
            from costmodel.calibration.values import TDX_BORROWED

            print(f"\nnote (tdx rows): {TDX_BORROWED}")
    return 0


def _write_parquet(path: str, frames) -> int:
    from costmodel import files
    from costmodel.errors import InputError
    from costmodel.render import numbers

    if not path.lower().endswith(".parquet"):
        raise InputError("--output", path, "a file name ending in .parquet")
    rows = files.write_parquet_chunks(path, frames)
    print(f"{path}: {numbers.format_plain(rows)} configurations")
    return 0


def clean(record: dict) -> dict:
    """A prediction's JSON object without float noise (:func:`costmodel.render.numbers.rounded`):
    counts integral by construction print as integers, the rest keep 9 significant digits."""
    from costmodel.render import numbers


    return {k: numbers.rounded(v) for k, v in record.items()}


#: Short headers of the table (the JSON and CSV keep the full names).
HEADERS = {"memory_bytes": "memory", "hugepage_bytes": "hugepage", "virtqueues": "queues", "platform": "platform",
           "split_merge_share": "s/m share", "conversion_cycles": "conv. cycles", "huge_mapped_fraction": "huge-mapped",
           "boot_vcpus": "boot vCPUs", "numa_nodes": "nodes", "vcpus": "vCPUs"}
#: Width the table fits in. [characters]
TABLE_WIDTH = 100


def table(frame) -> str:
    """The ``--table`` text: columns every row shares are said once above the table; the
    varying ones, formatted for people, below (fits :data:`TABLE_WIDTH` characters)."""
    from costmodel.render import numbers

    # a fitted calibration adds <target>_pi_low/_pi_high and extrapolation: show them too
    fitted = [c for c in frame.columns if c.endswith(("_pi_low", "_pi_high")) or c == "extrapolation"]
    runtime = list(RUNTIME_COLUMNS) if (frame["total_conversion_cycles"] != frame["conversion_cycles"]).any() else []
    columns = (list(SUMMARY_COLUMNS) + runtime + [c for c in ("numa_nodes", "boot_vcpus", "devices") if c in frame]
               + fitted)
    shown = frame[columns].copy()
    for column in columns:
        unit_of = column.rsplit("_pi_", 1)[0] if "_pi_" in column else column
        shown[column] = [numbers.format_value(unit_of, v) for v in shown[column]]
    constant = [c for c in columns if shown[c].nunique() == 1 and len(shown) > 1]
    varying = [c for c in columns if c not in constant]
    lines = []
    if constant:
        items = [f"{HEADERS.get(c, c)} {shown[c].iloc[0]}" for c in constant]
        line = "all rows:"
        for item in items:
            if len(line) + len(item) + 2 > TABLE_WIDTH:
                lines.append(line.rstrip(","))
                line = "         "
            line += f" {item},"
        lines.append(line.rstrip(","))
    body = shown[varying].rename(columns=HEADERS)
    lines.append(body.to_string(index=False, line_width=TABLE_WIDTH))
    return "\n".join(lines)
