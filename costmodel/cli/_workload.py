"""The workload flags shared by ``predict`` and ``simulate`` (docs/runtime.md): what the guest
does after boot. Every flag's ``dest`` is the argument of :meth:`costmodel.workload.Workload.parse`
it sets, so a library error about that argument is shown with the flag."""

from __future__ import annotations

from costmodel.workload import WORKLOAD_INPUTS, Workload


def add_workload_arguments(p) -> None:
    """The run-time flags; without any, predictions are boot only."""
    g = p.add_argument_group("workload (run time after boot; docs/runtime.md)")
    g.add_argument("--accelerator", action="append", default=None, metavar="SPEC",
                   help="an accelerator, repeatable: gpu[:count=N,unprotected=SIZE,chunk=SIZE,staging=K,tdisp=0|1] "
                   "(chunk: power of two 4K-4M, default 4K = page by page; tdisp=1 converts nothing)")
    g.add_argument("--io-in-flight", dest="io_in_flight", action="append", default=None, metavar="SIZE",
                   help="bounce-buffered I/O in flight, repeatable per device: [LABEL=]SIZE or [LABEL=]NxSIZE")
    g.add_argument("--swiotlb-dynamic", dest="swiotlb_dynamic", action="store_true",
                   help="the kernel has CONFIG_SWIOTLB_DYNAMIC (adds <= 4 MiB pools instead of waiting)")
    g.add_argument("--churn", default=None, metavar="RATE",
                   help="coherent allocate-and-free cycles: RATE[/s|/job][:size=SIZE] (default size 4K)")
    g.add_argument("--flip-rate", dest="flip_rate", default=None, metavar="RATE",
                   help="round trips of the same pages per second: RATE[:isolated] (isolated: in hugepages "
                   "nothing else keeps split, so each splits and merges)")
    g.add_argument("--attestations", default=None, metavar="RATE", help="attestation requests per second")
    g.add_argument("--no-firmware-release", dest="firmware_release", action="store_false",
                   help="the firmware keeps its reserved shared pool after ExitBootServices")
    g.add_argument("--duration", default=None, metavar="TIME", help="run time: seconds or 30s, 10m, 2h, 1d")
    g.add_argument("--job-count", dest="job_count", default=None, metavar="N",
                   help="jobs: accelerator memory allocated and freed per job (default 0: allocated once, kept)")


def workload_from(args) -> Workload:
    """The :class:`Workload` the flags describe."""
    return Workload.parse(io_in_flight=args.io_in_flight, swiotlb_dynamic=args.swiotlb_dynamic, churn=args.churn,
                          accelerators=args.accelerator, attestations=args.attestations,
                          firmware_release=args.firmware_release, flip_rate=args.flip_rate,
                          duration=args.duration, jobs=args.job_count)


def workload_grid(args) -> dict:
    """Workload column → a list of one value (the grid's workload is one)."""
    columns = workload_from(args).to_columns()
    return {name: [columns[name]] for name in WORKLOAD_INPUTS}
