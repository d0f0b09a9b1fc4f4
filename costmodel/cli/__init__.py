"""The ``costmodel`` command: a thin layer over the library.

Each subcommand is a module of this package with ``register(subparsers)``, which adds its
parser and sets ``run=`` to a function ``run(args) -> int``. Modules are found by
listing the package, so adding a command is adding a file. Errors in user input
(:class:`~costmodel.errors.InputError`) print one line and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import warnings

from costmodel import __version__
from costmodel.errors import Argument, InputError

#: Order in ``costmodel --help``; commands not listed follow alphabetically.
ORDER = ("predict", "simulate", "formula", "fit", "discover", "report", "batch", "ingest", "sweep", "lab")
EXIT_INPUT = 2


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``costmodel predict: error: …``)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def command_modules() -> list[str]:
    """The subcommands: this package's modules (a directory listing; pkgutil costs an import)."""
    found = []
    for entry in os.scandir(os.path.dirname(__file__)):
        if entry.name.endswith(".py") and entry.is_file():
            found.append(entry.name[:-3])
        elif entry.is_dir() and os.path.isfile(os.path.join(entry.path, "__init__.py")):
            found.append(entry.name)
    found = [name for name in found if not name.startswith("_") and name.isidentifier()]
    return sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


#: ``add_parser("name", help="…")`` with the help one plain string literal (no escapes).
_HELP = re.compile(r"""add_parser\(\s*"(\w+)"\s*,\s*help\s*=\s*"([^"\\\n]*)"\s*[,)]""")


def _summary(name: str) -> str | None:
    """The ``help=`` line a command module gives its parser, read from its source (so the
    command list needs no import of the command's dependencies); None if not found. A plain
    literal is read with a regular expression; anything else (escapes, concatenation) by
    parsing the module (tests/test_cli_light.py checks both agree)."""
    from pathlib import Path

    try:
        text = (Path(__file__).parent / f"{name}.py").read_text()
    except OSError:
        return None
    found = _HELP.search(text)
    if found and found.group(1) == name:
        return found.group(2)
    return _summary_parsed(text)


def _summary_parsed(text: str) -> str | None:
    """:func:`_summary` by the module's syntax tree."""
    import ast

    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_parser":
            for keyword in node.keywords:
                if keyword.arg == "help" and isinstance(keyword.value, ast.Constant):
                    return keyword.value.value
    return None


def _command(argv: list[str], names: list[str]) -> str | None:
    """The subcommand ``argv`` invokes (its first word that is not an option), if any."""
    for token in argv:
        if not token.startswith("-"):
            return token if token in names else None
    return None


def build_parser(command: str | None = "*") -> Parser:
    """The parser; only ``command`` is registered in full (``"*"``: every command), the
    others by their one-line help, so ``costmodel --help`` imports no command's libraries."""
    parser = Parser(
        prog="costmodel",
        description="Cost model of hugepage split/merge on private↔shared conversion in "
        "confidential VMs (guest_memfd backed by HugeTLB; AMD SEV-SNP, Intel TDX).",
    )
    parser.add_argument("--version", action="version", version=f"costmodel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in command_modules():
        summary = None if command in ("*", name) else _summary(name)
        if summary is None:
            importlib.import_module(f"{__name__}.{name}").register(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def _value_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Long options, of every subcommand, that take a value."""
    flags: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _value_flags(sub)
        elif action.nargs != 0:
            flags |= {o for o in action.option_strings if o.startswith("--")}
    return flags


def _attach_dash_values(argv: list[str], flags: set[str]) -> list[str]:
    """``--memory -1G`` → ``--memory=-1G``, so a bad value reaches our own check (which
    names the flag) instead of argparse's 'expected one argument'."""
    out: list[str] = []
    for token in argv:
        if out and out[-1] in flags and token.startswith("-") and token not in flags and len(token) > 1:
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command)
    return None


def as_flag(error: InputError, parser: argparse.ArgumentParser | None) -> InputError:
    """The error with a library parameter (``hold``) shown as the flag that sets it (``--hold``).

    A parameter maps to the option whose ``dest`` it is; errors located anywhere else (a
    file and line, a column) are returned unchanged.
    """
    where = error.where
    if parser is None or not isinstance(where, Argument):
        return error
    for action in parser._actions:
        if action.dest == where.name and action.option_strings:
            flag = max(action.option_strings, key=len)
            return error.located(f"{flag} {where.detail}".strip())
    return error


#: Metavars of options that name a file or directory: an empty value is an error, not the default.
PATH_METAVARS = ("FILE", "DIR", "DATASET")


def check_paths(args, parser: argparse.ArgumentParser | None) -> None:
    """Refuse an empty path (``--calibration ""``), which would otherwise read as 'not given'."""
    for action in parser._actions if parser is not None else ():
        value = getattr(args, action.dest, None)
        if action.option_strings and action.metavar in PATH_METAVARS and isinstance(value, str) and not value.strip():
            raise InputError(max(action.option_strings, key=len), value,
                             "a path (leave the option out for its default)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``costmodel`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command(argv, command_modules()))
    args = parser.parse_args(_attach_dash_values(argv, _value_flags(parser)))
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        check_paths(args, _subparser(parser, args.command))
        with warnings.catch_warnings():  # 0/0 at a calibration's edge is shown as null/–, not as a numpy warning
            warnings.simplefilter("ignore", RuntimeWarning)
            return int(args.run(args) or 0)
    except InputError as error:
        error = as_flag(error, _subparser(parser, args.command))
        print(f"costmodel {args.command}: error: {error}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:  # `costmodel predict … | head`
        return 0
    except KeyboardInterrupt:
        print(f"costmodel {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
