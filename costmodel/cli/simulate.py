"""``costmodel simulate``: the placement simulator's distribution of splits and merges for a
VM shape (or a grid), beside the closed form's value.

The simulator (:mod:`costmodel.simulate`) never imports the closed form; this command does,
lazily, only to print its value beside the simulated one.
"""

from __future__ import annotations

import itertools
import json

from costmodel import parse
from costmodel.cli._shape import add_shape_arguments, shape_grid
from costmodel.cli._workload import add_workload_arguments, workload_from
from costmodel.errors import Argument, InputError

MAX_SEEDS = 1_000_000


def register(subparsers):
    p = subparsers.add_parser(
        "simulate", help="simulate where shared memory lands and count split/merged hugepages (many seeds)",
        description="Replay a confidential guest's boot allocator by allocator (docs/placement.md): lay out "
        "guest memory as QEMU does, place each source of shared memory as the kernel's allocators do, apply "
        "guest_memfd's split/merge rule, and repeat over seeded boots (KASLR, the firmware's end). Prints the "
        "mean and 5th/95th percentiles of splits and merges, in total and per source, beside the closed form. "
        "Shape flags as for 'costmodel predict'.")
    add_shape_arguments(p)
    add_workload_arguments(p)
    p.add_argument("--seeds", default="100", metavar="N", help="seeded boots per shape (default 100)")
    p.add_argument("--first-seed", dest="first_seed", default="0", metavar="S", help="first seed (default 0)")
    p.add_argument("--deterministic", action="store_true",
                   help="no randomness: the kernel at 16 MiB, the firmware ending on a 2 MiB boundary")
    p.add_argument("--json", action="store_true", help="JSON: one object per shape (sorted keys), one per line")
    p.add_argument("--map", default=None, metavar="FILE",
                   help="draw the guest-physical map of the first seed's boot (FILE.png or FILE.svg)")
    grid = p.add_argument_group("grids on a Dask cluster (needs the cluster extra)")
    grid.add_argument("--grid", default=None, metavar="FILE",
                      help="simulate every shape of a sweep shape file (YAML or CSV, as 'costmodel sweep' reads; "
                      "the other shape flags apply to each) on a Dask cluster; needs -o")
    grid.add_argument("-o", "--output", default=None, metavar="FILE.parquet",
                      help="with --grid: one row per shape (distribution summaries); rerunning resumes")
    grid.add_argument("--scheduler", default=None, metavar="ADDR",
                      help="with --grid: an existing Dask scheduler (tcp://HOST:8786); default a local cluster")
    grid.add_argument("--jobs", default=None, metavar="N", help="with --grid: local worker processes (default: cores)")
    p.set_defaults(run=run)
    return p


def shapes_of(grid: dict) -> list:
    """Every combination of the grid's values as a VmShape (shape-column order, memory outermost)."""
    from costmodel.shape import SHAPE_COLUMNS, VmShape

    columns = [c for c in SHAPE_COLUMNS if c in grid]
    out = []
    for values in itertools.product(*(grid[c] for c in columns)):
        fields = dict(zip(columns, values))
        if fields.get("devices"):
            fields["devices"] = tuple(parse.device(d, Argument("devices")) for d in fields["devices"].split(";"))
        out.append(VmShape(**fields))
    return out


def closed_form(shape) -> dict:
    """The closed form's splits, merges and splits by source for ``shape`` (loads SymPy)."""
    from costmodel import results

    prediction = results.predict(shape=shape)
    row = prediction.to_dict()
    by_source = {r["source"]: float(r["splits"]) for _, r in prediction.breakdown().iterrows()}
    return {"closed_form_splits": float(row["splits"]), "closed_form_merges": float(row["merges"]),
            "closed_form_splits_by_source": by_source}


def table(dist, model: dict) -> str:
    """The distribution as a readable table, with the closed form's column."""
    from costmodel.model.sources import BY_NAME
    from costmodel.render import numbers

    shape = dist.shape
    head = (f"{numbers.format_size(shape.memory_bytes)} {shape.platform.upper()}, {shape.vcpus} vCPUs, "
            f"{numbers.format_hugepage(shape.hugepage_bytes)} hugepages, {len(dist.seeds)} "
            + ("deterministic boot(s)" if dist.deterministic else f"seeds from {dist.seeds[0]}"))
    rows = [("splits", dist.split_summary, model["closed_form_splits"]),
            ("merges", dist.merge_summary, model["closed_form_merges"])]
    sources = dist.source_summaries()
    parts = [(BY_NAME[k].label, v, model["closed_form_splits_by_source"].get(k, 0.0)) for k, v in sources.items()]
    width = max(len(label) for label, _, _ in rows + parts) + 2

    def line(label, s, cf):
        return f"{label:<{width}}{s.mean:>9.2f}{s.p05:>8.0f}{s.p95:>8.0f}{cf:>13.2f}"

    lines = [head, "", f"{'':<{width}}{'mean':>9}{'p05':>8}{'p95':>8}{'closed form':>13}"]
    lines += [line(*r) for r in rows]
    lines += ["", "split hugepages by source (each counted once, at the first source that touches it)"]
    lines += [line("  " + label, s, cf) for label, s, cf in parts]
    return "\n".join(lines)


def runtime_of(shape, workload, seeds: int, first_seed: int, deterministic: bool) -> dict:
    """The run-time replay's means beside the closed form's (empty without a workload)."""
    from costmodel import results
    from costmodel.simulate.runtime import simulate_runtime
    from costmodel.workload import Workload

    if workload == Workload():
        return {}
    dist = simulate_runtime(shape, workload, seeds, first_seed=first_seed, deterministic=deterministic)
    row = results.predict(shape=shape, workload=workload).to_dict()
    names = ("runtime_splits", "runtime_merges", "runtime_conversion_ops")
    return {"runtime": dist.to_dict(), "closed_form_runtime": {n: float(row[n]) for n in (*names,
            "total_splits", "total_merges", "swiotlb_shortfall_bytes", "final_huge_mapped_fraction")}}


def runtime_table(run_time: dict) -> str:
    if not run_time:
        return ""
    sim, cf = run_time["runtime"], run_time["closed_form_runtime"]
    lines = ["", "run time (after boot)", f"{'':<26}{'mean':>12}{'closed form':>14}"]
    for name in ("runtime_splits", "runtime_merges", "runtime_conversion_ops"):
        lines.append(f"{name:<26}{sim[name]:>12.1f}{cf[name]:>14.1f}")
    fraction = sim["huge_mapped_fraction_over_time"]
    lines.append(f"huge-mapped fraction       {fraction['fraction'][0]:.4f} at the start, "
                 f"{fraction['fraction'][-1]:.4f} at {fraction['seconds'][-1]:g} s")
    return "\n".join(lines)


def grid_shapes(args) -> list:
    """The sweep file's shapes, each combined with every value the other shape flags give."""
    from costmodel.measure.sweep import load_shapes

    combos = shapes_of({k: v for k, v in shape_grid(args).items()
                        if k not in ("memory_bytes", "vcpus", "hugepage_bytes", "virtqueues")})
    fixed = ("memory_bytes", "vcpus", "hugepage_bytes", "virtqueues")
    out = []
    for shape in load_shapes(args.grid):
        for combo in combos:
            changes = {k: v for k, v in combo.to_dict().items() if k not in fixed}
            out.append(shape.replace(**changes))
    return out


def run_grid(args, seeds: int, first_seed: int) -> int:
    from costmodel.simulate_grid import Connecting
    from costmodel.simulate_grid import run_grid as run_on_cluster

    if not args.output:
        raise InputError(Argument("output"), "nothing", "an output file (-o results.parquet) with --grid")
    if not args.output.lower().endswith(".parquet"):
        raise InputError(Argument("output"), args.output, "a file name ending in .parquet")
    if args.map or args.json:
        raise InputError(Argument("grid"), args.grid, "no --map or --json with --grid (the results go to -o)")
    jobs = parse.count(args.jobs, Argument("jobs")) if args.jobs is not None else None
    if jobs is not None and args.scheduler:
        raise InputError(Argument("jobs"), jobs, "no worker count with an existing scheduler (it has its own workers)")
    # the cluster starts (its workers import) while this process reads the sweep and imports what that needs
    with Connecting(args.scheduler, jobs) as cluster:
        written = run_on_cluster(grid_shapes(args), args.output, seeds, first_seed=first_seed,
                                 deterministic=args.deterministic, cluster=cluster)
    print(f"costmodel simulate: wrote {written}")
    return 0


def run(args) -> int:
    from costmodel.simulate import boot, count, simulate

    seeds = parse.count(args.seeds, Argument("seeds"))
    if seeds > MAX_SEEDS:
        raise InputError(Argument("seeds"), seeds, f"at most {MAX_SEEDS:,} seeds")
    first_seed = parse.count(args.first_seed, Argument("first_seed"), minimum=0)
    if args.grid:
        return run_grid(args, seeds, first_seed)
    if args.output or args.scheduler or args.jobs:
        raise InputError(Argument("grid"), "nothing", "a sweep shape file (--grid FILE) with -o, --scheduler or --jobs")
    if args.map:
        from costmodel.simulate.plot import FORMATS

        if not args.map.lower().endswith(FORMATS):
            raise InputError(Argument("map"), args.map, "a file name ending in .png or .svg")
    shapes = shapes_of(shape_grid(args))
    if args.map and len(shapes) > 1:
        raise InputError(Argument("map"), args.map, "one shape (the map draws one boot); the flags ask for "
                         f"{len(shapes)}")
    workload = workload_from(args)
    for i, shape in enumerate(shapes):
        dist = simulate(shape, seeds, first_seed=first_seed, deterministic=args.deterministic)
        model = closed_form(shape)
        run_time = runtime_of(shape, workload, seeds, first_seed, args.deterministic)
        if args.json:
            print(json.dumps({**dist.to_dict(), **model, **run_time}, sort_keys=True))
        else:
            print(("\n" if i else "") + table(dist, model) + runtime_table(run_time))
        if args.map:
            from costmodel.simulate.plot import draw_map

            one = boot(shape, None if args.deterministic else first_seed)
            written = draw_map(one, count(one.conversions, shape.hugepage_bytes), args.map)
            if not args.json:
                print(f"\nmap of seed {'(deterministic)' if args.deterministic else first_seed}: {written}")
    return 0
