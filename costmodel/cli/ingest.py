"""``costmodel ingest``: collector output, QEMU traces and guest dmesg → dataset rows."""

from __future__ import annotations

import sys

from costmodel.cli import _shape


def register(subparsers):
    p = subparsers.add_parser(
        "ingest", help="turn collector output, QEMU traces and guest dmesg into dataset rows",
        description="Read the host collector's output (costmodel-collect/1 lines), QEMU "
        "kvm_convert_memory trace events and the guest's boot log, in any mix (the kind of each "
        "file is told from its content), make one row per run and append the rows to DATASET "
        "(CSV or Parquet): validated, de-duplicated by run id (a re-ingested run replaces its "
        "row), written atomically. On any error nothing is appended.",
        epilog="Formats: docs/collector-format.md. With several runs in the inputs, a QEMU trace or "
        "guest log belongs to the run whose id its file name starts with (RUN_ID.qemu-trace.log).")
    p.add_argument("outputs", nargs="+", metavar="OUTPUT", help="collector output, QEMU trace or guest dmesg file")
    p.add_argument("--platform", required=True, metavar="NAME", help="snp or tdx")
    p.add_argument("--memory", required=True, metavar="SIZE", help="guest memory (16GiB, 16G, bytes)")
    p.add_argument("--vcpus", required=True, metavar="N", help="possible vCPUs of the guest")
    p.add_argument("--hugepage", default=None, metavar="SIZE",
                   help="guest_memfd hugepage size, 2M or 1G (default: from the collector header)")
    _shape.add_placement_arguments(p)
    p.add_argument("--run-id", default=None, metavar="ID", help="name of the run (only when the inputs hold one)")
    p.add_argument("--tsc-hz", default=None, metavar="HZ",
                   help="TSC frequency for ns → cycles (default: the collector header's tsc_hz)")
    p.add_argument("--skip-truncated", action="store_true",
                   help="leave out runs without an end line instead of failing")
    p.add_argument("-o", "--output", dest="dataset", required=True, metavar="DATASET",
                   help="dataset to append to (.csv or .parquet; created when absent)")
    p.add_argument("--dry-run", action="store_true", help="print the rows instead of appending them")
    p.set_defaults(run=run)
    return p


def _tsc(text):
    import math

    from costmodel.errors import InputError

    if text is None:
        return None
    expected = "a frequency in Hz above 0, e.g. 2.4e9"
    try:
        value = float(text)
    except ValueError:
        raise InputError("--tsc-hz", text, expected) from None
    if not (math.isfinite(value) and 0 < value <= 1e12):
        raise InputError("--tsc-hz", text, expected + " (at most 1e12)")
    return value


def run(args) -> int:
    from costmodel import files
    from costmodel.measure import ingest as lib
    from costmodel.shape import VmShape
    tsc_hz = _tsc(args.tsc_hz)
    if not args.dry_run:  # before reading anything: never into the package's data, never a directory
        files.check_output(args.dataset, "-o")
    shape = VmShape.parse(platform=args.platform, memory=args.memory, vcpus=args.vcpus, virtqueues=args.virtqueues,
                          hugepage=args.hugepage, boot_vcpus=args.boot_vcpus, numa_nodes=args.numa_nodes,
                          lowmem=args.lowmem, devices=args.devices, swiotlb=args.swiotlb, kaslr=args.kaslr,
                          svsm=args.svsm, atomic_pools=args.atomic_pools)
    if not args.hugepage:  # each run's collector header says it
        shape = shape.replace(hugepage_bytes=None)
    if args.dry_run:
        inputs = lib.read_inputs(args.outputs)
        rows, messages = lib.build_rows(inputs, shape, run_id=args.run_id, tsc_hz=tsc_hz,
                                        skip_truncated=args.skip_truncated)
        detected = inputs.detected
    else:
        result = lib.ingest(args.outputs, args.dataset, shape, run_id=args.run_id,
                            tsc_hz=tsc_hz, skip_truncated=args.skip_truncated)
        rows, messages, detected = result.rows, result.messages, result.detected
    for line in detected:
        print(f"costmodel ingest: {line}", file=sys.stderr)
    for line in messages:
        print(f"costmodel ingest: warning: {line}", file=sys.stderr)
    if args.dry_run:
        rows.to_csv(sys.stdout, index=False)
        return 0
    print(f"{args.dataset}: {result.appended} run(s) added, {result.replaced} replaced "
          f"({', '.join(map(str, rows['run_id']))})")
    return 0
