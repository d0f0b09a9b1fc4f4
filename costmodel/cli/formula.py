"""``costmodel formula``: a target's closed form and its calibrated numbers, fit to cite."""

from __future__ import annotations

from costmodel.model.variables import OUTPUTS


def register(subparsers):
    p = subparsers.add_parser(
        "formula", help="print a formula card: closed form, coefficients, provenance",
        description="Print the closed form of one model output, the coefficients with the "
        "calibration's values (± 95 % interval when fitted), the formula with those numbers bound, "
        "and a provenance line.")
    p.add_argument("--target", default="splits", metavar="NAME", help="output: " + ", ".join(OUTPUTS))
    p.add_argument("--format", default="text", metavar="FMT", help="text, latex or markdown (default text)")
    p.add_argument("--calibration", default=None, metavar="FILE", help="calibration JSON (default: derived from the reference)")
    p.add_argument("--scenario", default="status_quo", metavar="NAME", help="scenario whose substitutions to show")
    p.add_argument("--platform", default=None, metavar="NAME", help="bind the platform (snp or tdx)")
    p.add_argument("--hugepage", default=None, metavar="SIZE", help="bind the hugepage size (4K, 2M, 1G)")
    p.add_argument("--model", default=None, metavar="MODEL.json",
                   help="print the card of a formula found by 'costmodel discover -o' instead")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    if args.model:
        from costmodel import discover
        from costmodel.discover.card import card

        print(card(discover.load(args.model), args.format), end="")
        return 0
    from costmodel import calibration
    from costmodel.reporting import cards
    cal = calibration.load_or_default(args.calibration)
    print(cards.card(args.target, cal, args.scenario, args.format, args.platform, args.hugepage), end="")
    return 0
