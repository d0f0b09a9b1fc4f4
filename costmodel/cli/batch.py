"""``costmodel batch``: many reports from a sweep file on a Dask cluster, with an index page."""

from __future__ import annotations

import sys

EXIT_FAILED = 1
EXIT_MISSING = 3
EXIT_INTERRUPTED = 130


def register(subparsers):
    p = subparsers.add_parser(
        "batch", help="render one report per entry of a sweep file, in parallel, with DIR/index.html",
        description="Render a report per entry of SWEEP: YAML (a list of parameter maps, or a map whose "
        "list values form a grid) or CSV (a header of parameter names, one row per report). Reports run "
        "on a Dask cluster: a local one (one worker process per core, on 127.0.0.1 only) or an existing "
        "scheduler's (--scheduler). DIR/index.html links every report with a table of its key numbers. A "
        "failing entry does not stop the others; the exit status is 1 when any failed, 130 after Ctrl-C "
        "(what finished is written and indexed).",
        epilog="Examples: examples/sweep.yaml (grid), examples/sweep.csv (rows). Several hosts: docs/scale-out.md.")
    p.add_argument("sweep", metavar="SWEEP", help="sweep file (.yaml/.yml or .csv)")
    p.add_argument("-o", "--output", dest="outdir", required=True, metavar="DIR", help="output directory")
    p.add_argument("--workers", "-j", "--jobs", dest="jobs", type=int, default=None, metavar="N",
                   help="local worker processes, one thread each (default: one per core)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="an existing Dask scheduler (tcp://HOST:8786) instead of a local cluster")
    p.add_argument("--to", default="html,pdf", metavar="FORMATS", help="html, pdf or html,pdf (default html,pdf)")
    p.add_argument("--notebook", default="report", metavar="NAME", help="notebook to run (default report)")
    p.add_argument("--pdf-engine", default="weasyprint", metavar="ENGINE", help="weasyprint (default) or latex")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    from costmodel import reporting
    from costmodel.cluster import MissingExtra

    entries = reporting.read_sweep(args.sweep)
    try:
        outcomes = reporting.render_batch(entries, args.outdir, jobs=args.jobs, formats=args.to,
                                          notebook=args.notebook, pdf_engine=args.pdf_engine,
                                          progress=not args.no_progress, scheduler=args.scheduler)
    except MissingExtra as error:
        print(f"costmodel batch: error: {error}", file=sys.stderr)
        return EXIT_MISSING
    except reporting.BatchInterrupted as interrupted:
        outcomes = interrupted.outcomes
        written = sum(o.ok for o in outcomes)
        print(f"{args.outdir}/index.html: {written} of {len(outcomes)} reports written; interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    failed = [o for o in outcomes if not o.ok]
    print(f"{args.outdir}/index.html: {len(outcomes) - len(failed)} of {len(outcomes)} reports written")
    if failed:
        print(f"costmodel batch: {len(failed)} of {len(outcomes)} failed:", file=sys.stderr)
        for o in failed:
            print(f"  entry {o.index} {o.parameters}: {o.error}", file=sys.stderr)
        return EXIT_FAILED
    return 0
