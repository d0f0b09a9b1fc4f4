"""``costmodel fit DATA --target T``: fit the model's free coefficients to measured runs."""

from __future__ import annotations

import sys
from pathlib import Path

from costmodel.errors import InputError
from costmodel.reference import DIRECTORY

#: Paths a fit must never overwrite: the shipped reference data.
_SHIPPED = DIRECTORY


def register(subparsers) -> None:
    from costmodel.data import TARGETS

    parser = subparsers.add_parser(
        "fit",
        help="fit the model's coefficients to measured runs, with intervals",
        description="Fit the free coefficients of one target to measured runs (CSV or Parquet, "
        "schema in docs/data-schema.md): coefficients with standard errors and 95 % intervals, "
        "R², RMSE, leave-one-out RMSE, AIC/BIC, a comparison of the model forms, and the "
        "coefficients the data cannot determine. Writes a calibration file with -o; never "
        "edits the shipped default.",
    )
    parser.add_argument("data", metavar="DATA", help="measured runs (.csv or .parquet)")
    parser.add_argument("--target", required=True, metavar="TARGET",
                        help="measured quantity to fit: " + ", ".join(TARGETS))
    parser.add_argument("--model", dest="form", default="default", metavar="NAME",
                        help="model form (default: the placement model) or auto: the form the data prefer "
                        "(lowest AIC)")
    parser.add_argument("--calibration", metavar="FILE",
                        help="starting values and values of the coefficients not fitted "
                        "(default: the calibration derived from the published reference); a "
                        "calibration fitted to another target keeps that fit")
    parser.add_argument("--hold", action="append", default=[], metavar="NAME[,NAME]",
                        help="keep these coefficients at the calibration's values")
    parser.add_argument("--hold-fitted", action="store_true",
                        help="keep every coefficient --calibration has already fitted (to fit targets "
                        "one after another: splits, merges, conversion_ops, then the cycles)")
    parser.add_argument("--assume", action="append", default=[], metavar="INPUT=VALUE",
                        help="value for an input unknown in some runs (e.g. vcpus=16); recorded")
    parser.add_argument("--errors", default="relative", metavar="MODEL",
                        help="noise model: relative (default; noise proportional to the value) or absolute")
    parser.add_argument("--platform", default="all", metavar="NAME",
                        help="fit only that platform's runs: snp, or tdx (fills the calibration's TDX set, "
                        "which otherwise borrows SEV-SNP's); default all: one set for both")
    parser.add_argument("--no-alternatives", dest="alternatives", action="store_false",
                        help="do not fit and compare the other model forms")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the fitted calibration (JSON) here")
    parser.set_defaults(run=run)


def _assumptions(items: list[str]) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InputError("--assume", item, "INPUT=VALUE, e.g. vcpus=16")
        out[name.strip()] = value.strip()
    return out


def _check_output(output: str, data: str) -> Path:
    path = Path(output)
    resolved = path.resolve()
    if resolved == Path(data).resolve():
        raise InputError("-o", output, "a calibration file other than the data being fitted")
    if resolved.is_relative_to(_SHIPPED):
        raise InputError("-o", output, f"a path outside {_SHIPPED} (the shipped reference is never edited)")
    if path.suffix.lower() != ".json":
        raise InputError("-o", output, "a .json calibration file")
    from costmodel import files

    return files.check_output(path, "-o")


def run(args) -> int:
    from costmodel import calibration, fitting
    output = _check_output(args.output, args.data) if args.output else None
    hold = [name.strip() for item in args.hold for name in item.split(",") if name.strip()]
    start = calibration.load_or_default(args.calibration)
    result = fitting.fit(args.data, args.target, form=args.form, calibration=start, hold=hold,
                     hold_fitted=args.hold_fitted,
                     assume=_assumptions(args.assume), errors=args.errors, alternatives=args.alternatives,
                     platform=args.platform)
    if output is not None:
        result.to_calibration().save(output)
    if args.json:
        sys.stdout.write(result.to_json())
    else:
        sys.stdout.write(result.to_text())
        if output is not None:
            sys.stdout.write(f"\ncalibration written to {output}\n")
    return 0
