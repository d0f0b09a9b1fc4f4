"""``costmodel discover DATA --target COLUMN``: find a closed form the measurements support."""

from __future__ import annotations

import json


def register(subparsers):
    p = subparsers.add_parser(
        "discover", help="find a closed form (PMNF and domain shapes) from measurements",
        description="Search sums of terms x^i·log2(x)^j (each term its own exponents; i in multiples of 1/4 and "
        "1/3 up to 3, j 0-2) and the domain shapes ceil(x/c), min/max clamps and steps, for the formula of one "
        "measured column against up to four inputs. Repeated measurements become means; the choice is by "
        "leave-one-configuration-out error with a penalty per parameter (relative errors when the data span "
        "orders of magnitude). Prints the formula with 95 %% intervals, the runner-ups and warnings "
        "(docs/discover.md).",
        epilog="Reads CSV/Parquet (any numeric columns), Extra-P text files (--target REGION/METRIC) and "
        "Extra-P JSON Lines (.jsonl). Example: costmodel discover runs.csv --target cycles --inputs memory,vcpus "
        "--at memory=1T,vcpus=256 -o model.json")
    p.add_argument("data", metavar="DATA", help="measurements: .csv, .parquet, .jsonl or an Extra-P text file")
    p.add_argument("--target", required=True, metavar="COLUMN", help="the measured column (Extra-P: REGION/METRIC)")
    p.add_argument("--inputs", default=None, metavar="A,B,…",
                   help="input columns, up to 4 (default: every other numeric column that varies)")
    p.add_argument("--at", action="append", default=[], metavar="A=v,B=w",
                   help="predict here, with a 95 %% prediction interval (repeatable)")
    p.add_argument("--max-terms", type=int, default=3, metavar="N", help="most terms besides the constant (1-4, default 3)")
    p.add_argument("--errors", default="auto", metavar="KIND", help="auto (default), relative or absolute")
    p.add_argument("--top", type=int, default=5, metavar="N", help="runner-up formulas to show (default 5)")
    p.add_argument("--no-domain", dest="domain", action="store_false",
                   help="leave the domain shapes (ceil, clamps, step) out of the search")
    p.add_argument("--format", default="text", metavar="FMT", help="text (default), markdown or latex")
    p.add_argument("--json", action="store_true", help="print the model as JSON (what -o writes)")
    p.add_argument("-o", "--output", default=None, metavar="MODEL.json",
                   help="write the model file (costmodel formula --model, costmodel report -p model)")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    from costmodel.discover import discover
    from costmodel.discover.card import card

    model = discover(args.data, args.target, args.inputs, at=args.at, max_terms=args.max_terms,
                     errors=args.errors, top=args.top, domain=args.domain)
    if args.output:
        model.save(args.output)
    if args.json:
        print(json.dumps(model.to_dict(), indent=2))
    else:
        print(card(model, args.format), end="")
    return 0
