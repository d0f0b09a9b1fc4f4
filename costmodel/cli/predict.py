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
    # NumPy columns, not a DataFrame: a warm predict imports no pandas (tests/test_cli_light.py)
    columns = results.predict_columns(grid, chosen, calibration=cal)
    single = len(columns) == 1
    if single and not (args.csv or args.table):
        prediction = results.Prediction(columns.row(0), cal)
        print(json_line(clean(prediction.to_dict())) if args.json else prediction.to_text())
        return 0
    if args.json:
        for i in range(len(columns)):
            print(json_line(clean(results.Prediction(columns.row(i), cal).to_dict())))
    elif args.csv:
        keys = list(results.PREDICTION_KEYS) + [c for c in columns.names if c not in results.PREDICTION_KEYS]
        sys.stdout.write(csv_text(columns, keys))
    else:
        print(table(columns))
        if (columns["platform"].astype(str) == "tdx").any() and cal.tdx_borrowed:
            from costmodel.calibration.values import TDX_BORROWED

            print(f"\nnote (tdx rows): {TDX_BORROWED}")
    return 0


#: How ``--csv`` prints floats (full precision for scripts; the same as pandas' float_format).
CSV_FLOAT = "%.10g"


def _csv_cells(values) -> list[str]:
    """One column's CSV cells: integers whole, floats with :data:`CSV_FLOAT` (empty for NaN),
    booleans ``True``/``False``, text as it is (empty for None)."""
    array = __import__("numpy").asarray(values)
    if array.dtype.kind == "f":
        return ["" if v != v else CSV_FLOAT % v for v in array.tolist()]
    if array.dtype.kind in "iub":
        return [str(v) for v in array.tolist()]
    return ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in array.tolist()]


def csv_text(columns, keys: list[str]) -> str:
    """The ``--csv`` text: a header, then one row per configuration (minimal quoting, ``\\n``)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(keys)
    writer.writerows(zip(*(_csv_cells(columns[k]) for k in keys)))
    return out.getvalue()


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


def table(columns) -> str:
    """The ``--table`` text: columns every row shares are said once above the table; the
    varying ones, formatted for people, below (fits :data:`TABLE_WIDTH` characters).
    ``columns``: :class:`costmodel.results.Columns` (or a DataFrame)."""
    from costmodel.render import numbers

    names = list(columns.names if hasattr(columns, "names") else columns.columns)
    # a fitted calibration adds <target>_pi_low/_pi_high and extrapolation: show them too
    fitted = [c for c in names if c.endswith(("_pi_low", "_pi_high")) or c == "extrapolation"]
    runtime = (list(RUNTIME_COLUMNS) if (__import__("numpy").asarray(columns["total_conversion_cycles"])
                                          != __import__("numpy").asarray(columns["conversion_cycles"])).any() else [])
    shown_columns = (list(SUMMARY_COLUMNS) + runtime + [c for c in ("numa_nodes", "boot_vcpus", "devices") if c in names]
                     + fitted)
    shown = {}
    for column in shown_columns:
        unit_of = column.rsplit("_pi_", 1)[0] if "_pi_" in column else column
        shown[column] = [numbers.format_value(unit_of, v) for v in _python_values(columns[column])]
    rows = len(next(iter(shown.values())))
    constant = [c for c in shown_columns if len(set(shown[c])) == 1 and rows > 1]
    varying = [c for c in shown_columns if c not in constant]
    lines = []
    if constant:
        items = [f"{HEADERS.get(c, c)} {shown[c][0]}" for c in constant]
        line = "all rows:"
        for item in items:
            if len(line) + len(item) + 2 > TABLE_WIDTH:
                lines.append(line.rstrip(","))
                line = "         "
            line += f" {item},"
        lines.append(line.rstrip(","))
    lines.append(text_table([HEADERS.get(c, c) for c in varying], [shown[c] for c in varying], TABLE_WIDTH))
    return "\n".join(lines)


def _python_values(values) -> list:
    """A column's values as a DataFrame column iterates them: NumPy scalars (bool as
    ``numpy.bool_``), text as ``str``."""
    import numpy as np

    array = np.asarray(values)
    if array.dtype.kind == "O":
        return list(array)
    return [array[i] for i in range(len(array))]


def text_table(headers: list[str], cells: list[list[str]], width: int) -> str:
    """Text columns right-aligned under right-aligned headers, one space apart, wrapped into
    blocks of at most ``width`` characters (each block but the last ending in `` \\``): the
    layout of pandas' ``DataFrame.to_string(index=False, line_width=width)`` for text
    columns, without pandas."""
    columns = []
    for header, values in zip(headers, cells):
        size = max(len(header), *(len(v) for v in values)) if values else len(header)
        columns.append([header.rjust(size)] + [v.rjust(size) for v in values])
    if not columns:
        return ""
    widths = [len(c[0]) for c in columns]
    bins, used = [], 0
    for i, w in enumerate(widths):  # pandas' _binify: room for the ' \\' of a wrapped block
        used += w + 1
        if i > 0 and used + (1 if i == len(widths) - 1 else 2) > width:
            bins.append(i)
            used = w + 1
    bins.append(len(widths))
    blocks, start = [], 0
    rows = len(columns[0])
    for b, end in enumerate(bins):
        block = columns[start:end]
        if len(bins) > 1:
            block = block + [[" \\"] + ["  "] * (rows - 1) if b < len(bins) - 1 else [" "] * rows]
        blocks.append(_adjoin(block))
        start = end
    return "\n\n".join(blocks)


def _adjoin(columns: list[list[str]]) -> str:
    """Columns side by side, one space apart (every column but the last padded to its width)."""
    widths = [max(len(v) for v in c) + 1 for c in columns[:-1]] + [max(len(v) for v in columns[-1])]
    return "\n".join("".join(v.ljust(w) for v, w in zip(line, widths)) for line in zip(*columns))
