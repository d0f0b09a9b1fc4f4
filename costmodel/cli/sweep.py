"""``costmodel sweep``: measure a list of VM shapes on this host and ingest each run."""

from __future__ import annotations

import sys


def register(subparsers):
    from costmodel.measure.sweep import DEFAULT_BOOT_MARKER, PLACEHOLDERS

    p = subparsers.add_parser(
        "sweep", help="run the guest for each VM shape under the collector and ingest the runs",
        description="For each VM shape in SHAPES (YAML or CSV: vcpus, memory, virtqueues, hugepage), "
        "start the guest from your QEMU command line TEMPLATE, run the collector on it, wait for boot, "
        "stop the guest and append the run to DATASET. Needs root and bpftrace on a host with a "
        "guest_memfd hugepage kernel; --dry-run prints what it would run and runs nothing. "
        "See docs/runbook.md.",
        epilog="Template placeholders: " + "; ".join(f"{{{k}}}: {v}" for k, v in PLACEHOLDERS.items()))
    p.add_argument("shapes", metavar="SHAPES", help="YAML or CSV file of VM shapes")
    p.add_argument("--template", required=True, metavar="FILE",
                   help="file holding the QEMU command line with placeholders (shell syntax)")
    p.add_argument("--platform", required=True, metavar="NAME", help="snp or tdx")
    p.add_argument("-o", "--output", dest="dataset", required=True, metavar="DATASET",
                   help="dataset the runs are appended to (.csv or .parquet)")
    p.add_argument("--out", default="sweep-output", metavar="DIR",
                   help="directory for the collector output, traces and logs (default sweep-output)")
    p.add_argument("--prefix", default="sweep", metavar="TEXT",
                   help="run id prefix, e.g. host7-2026-01-05 (default sweep); a run id seen again "
                   "replaces its row")
    p.add_argument("--repeat", default="1", metavar="N", help="runs per shape (default 1)")
    p.add_argument("--max-runs", dest="max_runs", default=None, metavar="N",
                   help="most runs the sweep may plan, shapes × repeats (default 10000)")
    p.add_argument("--collector", default=None, metavar="PATH",
                   help="collector executable (default: the one shipped in the package)")
    p.add_argument("--boot-marker", default=DEFAULT_BOOT_MARKER, metavar="REGEX",
                   help=f"regular expression that marks a booted guest (default {DEFAULT_BOOT_MARKER!r})")
    p.add_argument("--boot-timeout", default=300.0, type=float, metavar="S", help="seconds to wait for it (default 300)")
    p.add_argument("--settle", default=10.0, type=float, metavar="S",
                   help="seconds to keep the booted guest running, for run-time merges (default 10)")
    p.add_argument("--attach-timeout", default=60.0, type=float, metavar="S",
                   help="seconds to wait for the collector to attach (default 60)")
    p.add_argument("--tsc-hz", default=None, type=float, metavar="HZ", help="TSC frequency for ns → cycles")
    p.add_argument("--dry-run", action="store_true", help="print what would run; run nothing")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    import re
    from pathlib import Path

    from costmodel import parse
    from costmodel.errors import InputError
    from costmodel.measure import sweep

    try:
        re.compile(args.boot_marker)
    except re.error as error:
        raise InputError("--boot-marker", args.boot_marker, f"a regular expression ({error})") from None
    if args.tsc_hz is not None and not (0 < args.tsc_hz <= 1e12):  # NaN fails too
        raise InputError("--tsc-hz", args.tsc_hz, "a frequency in Hz above 0, e.g. 2.4e9 (at most 1e12)")
    for flag, value in (("--boot-timeout", args.boot_timeout), ("--settle", args.settle),
                        ("--attach-timeout", args.attach_timeout)):
        if not value >= 0:
            raise InputError(flag, value, "seconds ≥ 0")
    try:
        template_text = Path(args.template).read_text()
    except OSError as error:
        raise InputError("--template", args.template, f"a readable file ({error.strerror})") from None
    template = sweep.load_template(template_text, args.template)
    shapes = sweep.load_shapes(args.shapes)
    collector = args.collector or sweep.default_collector()
    plans = sweep.plan(shapes, template, platform=args.platform, out_dir=args.out, dataset=args.dataset,
                       collector=collector, prefix=args.prefix, repeat=args.repeat, tsc_hz=args.tsc_hz,
                       max_runs=parse.count(args.max_runs, "--max-runs") if args.max_runs else sweep.MAX_RUNS)
    if any(p.paused for p in plans) and "-S" not in template:
        print("costmodel sweep: warning: the template has {qmp_socket} but no -S: the guest starts "
              "before the collector attaches, so the first conversions may be missed", file=sys.stderr)
    if not any(p.paused for p in plans):
        print("costmodel sweep: warning: the template has no {qmp_socket} (with -S): the guest starts "
              "before the collector attaches, so the first conversions may be missed", file=sys.stderr)
    if args.dry_run:
        print(sweep.describe(plans, boot_marker=args.boot_marker, boot_timeout=args.boot_timeout,
                             settle=args.settle), end="")
        return 0
    sweep.check_collector(collector)
    failed = 0
    for i, planned in enumerate(plans, start=1):
        print(f"costmodel sweep: run {i}/{len(plans)}: {planned.run_id}", file=sys.stderr, flush=True)
        result = sweep.execute(planned, dataset=args.dataset, platform=args.platform,
                               boot_marker=args.boot_marker, boot_timeout=args.boot_timeout,
                               settle=args.settle, attach_timeout=args.attach_timeout,
                               tsc_hz=args.tsc_hz,
                               log=lambda m: print(f"costmodel sweep: {m}", file=sys.stderr))
        state = "ok" if result.ok else "FAILED"
        print(f"{planned.run_id}: {state}: {result.message}", flush=True)
        failed += not result.ok
    print(f"costmodel sweep: {len(plans) - failed} of {len(plans)} run(s) ingested into {args.dataset}",
          file=sys.stderr)
    return 1 if failed else 0
