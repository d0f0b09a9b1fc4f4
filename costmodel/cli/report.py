"""``costmodel report``: run a parameterised notebook and export HTML, PDF and the notebook."""

from __future__ import annotations

import sys

EXIT_FAILED = 1


def register(subparsers):
    p = subparsers.add_parser(
        "report", help="render a report (HTML, PDF, executed notebook) for one VM shape",
        description="Execute a notebook of costmodel/notebooks/ with papermill (the venv's python3 kernel) and export "
        "a self-contained HTML page (code hidden, formulas rendered, images embedded, no external URL), "
        "a PDF printed from it, and the executed notebook. File names follow from the parameters "
        "(snp-16GiB-16vcpu-2M-status_quo.html); files appear only when the whole run succeeded.",
        epilog="Report parameters take the forms of 'costmodel predict': memory 16GiB, vcpus 16, boot_vcpus 8, "
        "numa_nodes 2, lowmem 2GiB, devices 'virtio-net:queues=4;nvme', virtqueues 19, kaslr|svsm|atomic_pools on|off, "
        "hugepage 2M|1G|4K, platform snp|tdx, scenario status_quo|guest_pooling|"
        "host_promotion|struct_page_less, calibration FILE.json, data FILE.csv. "
        "Example: costmodel report -p memory 64GiB -p hugepage 1G -o reports")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="set a notebook parameter (repeatable)")
    p.add_argument("-f", "--parameters-file", metavar="FILE",
                   help="YAML map of parameters; -p values override it")
    p.add_argument("--notebook", default="report", metavar="NAME",
                   help="notebook in costmodel/notebooks/ or a path to a .py/.ipynb (default report)")
    p.add_argument("--to", default="html,pdf", metavar="FORMATS", help="html, pdf or html,pdf (default html,pdf)")
    p.add_argument("--pdf-engine", default="weasyprint", metavar="ENGINE",
                   help="weasyprint (default, no TeX) or latex (needs xelatex)")
    p.add_argument("-o", "--output", default="reports", metavar="DIR", help="output directory (default reports)")
    p.add_argument("--name", default=None, metavar="STEM", help="file name stem (default from the parameters)")
    p.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="show which cell runs (cell k of n) on stderr; the default when stderr is a terminal")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress line")
    p.set_defaults(run=run)
    return p


def read_parameters_file(path) -> dict:
    """The YAML map of a ``-f`` file; errors name the file."""
    import yaml

    from costmodel import parse
    from costmodel.errors import InputError

    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise InputError("-f", str(path), f"a readable YAML file ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise InputError(str(path), str(error).splitlines()[0], "valid YAML") from None
    parse.yaml_budget(data, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(str(path), type(data).__name__, "a YAML map of parameter names to values")
    return data


def parameters_from(args) -> dict:
    """Parameters from ``-f`` then ``-p`` (later wins), as the library receives them."""
    parameters = read_parameters_file(args.parameters_file) if args.parameters_file else {}
    for name, value in args.parameter:
        parameters[name] = value
    return parameters


def _discover_model(parameters: dict, args) -> None:
    """``-p model FILE`` (a model from 'costmodel discover -o') renders the discover notebook;
    the file is checked here and passed as an absolute path (the kernel runs elsewhere)."""
    from pathlib import Path

    from costmodel.errors import InputError

    if "model" not in parameters:
        return
    path = Path(str(parameters["model"])).expanduser()
    if not path.is_file():
        raise InputError("-p model", str(parameters["model"]), "an existing model file from costmodel discover -o")
    parameters["model"] = str(path.resolve())
    if args.notebook == "report":
        args.notebook = "discover"
    if args.name is None:
        args.name = f"discover-{path.stem}"


def progress_printer(stream=None):
    """``progress(k, n, what)`` writing ``costmodel report: cell k/n: what`` to ``stream``:
    one line rewritten in place on a terminal, a line per cell elsewhere."""
    stream = stream or sys.stderr
    live = stream.isatty()

    def progress(k: int, n: int, what: str) -> None:
        line = f"costmodel report: cell {k}/{n}: {what[:60]}" if what != "export" else \
            f"costmodel report: cell {k}/{n}: exporting"
        if live:
            stream.write("\r\x1b[K" + line)
            if what == "export":
                stream.write("\n")
        else:
            stream.write(line + "\n")
        stream.flush()

    return progress


def run(args) -> int:
    from costmodel import reporting
    parameters = parameters_from(args)
    _discover_model(parameters, args)
    if args.notebook == "discover" and args.name is None and parameters.get("data") and parameters.get("target"):
        from pathlib import Path

        args.name = f"discover-{Path(str(parameters['data'])).stem}-{parameters['target']}".replace("/", "_")
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    try:
        done = reporting.render(parameters, notebook=args.notebook, outdir=args.output, formats=args.to,
                                pdf_engine=args.pdf_engine, name=args.name,
                                progress=progress_printer() if show else None)
    except reporting.ReportError as error:
        if show and sys.stderr.isatty():
            sys.stderr.write("\n")
        print(f"costmodel report: error: the notebook failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    for kind in ("html", "pdf", "ipynb"):
        if kind in done.paths:
            print(done.paths[kind])
    print(f"costmodel report: {done.name} in {done.seconds:.1f} s", file=sys.stderr)
    return 0
