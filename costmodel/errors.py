"""Errors in what a user supplied, worded as *where: got what; expected what*.

Every input a user gives (a flag, a notebook parameter, a file's cell, a calibration's field)
is checked where it enters; a failure raises :class:`InputError`, which the command line
prints as one line and turns into exit status 2, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class Argument(str):
    """A ``where`` that names an argument of a library function (``hold``, ``form``, …).

    The library names its own parameters; the command line shows the flag that sets the
    parameter instead (``--hold``, ``--model``), found from its parser, so no library
    message names a flag. ``detail`` narrows it (``Argument("assume", "vcpus")``).
    """

    name: str
    detail: str

    def __new__(cls, name: str, detail: str = ""):
        self = super().__new__(cls, f"{name} {detail}".strip())
        self.name, self.detail = name, detail
        return self


class InputError(ValueError):
    """A value a user supplied is not of the accepted form.

    The message always reads ``WHERE: got FOUND; expected EXPECTED``.
    """

    def __init__(self, where: str, found: object, expected: str):
        self.where, self.found, self.expected = where, found, expected
        super().__init__(f"{where}: got {found!r}; expected {expected}")

    def located(self, where: str) -> "InputError":
        """The same error, said to be at ``where`` (the CLI's flag for a parameter)."""
        error = InputError.__new__(type(self))
        error.__dict__.update(self.__dict__)
        error.where = where
        ValueError.__init__(error, f"{where}: got {self.found!r}; expected {self.expected}")
        return error


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The valid names closest to ``name``, best first (for 'did you mean' hints)."""
    choices = list(choices)
    found = difflib.get_close_matches(name, choices, n=n, cutoff=0.0)
    return found or choices[:n]
