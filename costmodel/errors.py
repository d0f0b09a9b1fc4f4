"""Errors in what a user supplied, worded as *where: got what; expected what*.

Every input a user gives (a flag, a notebook parameter, a file's cell, a calibration's field)
is checked where it enters; a failure raises :class:`InputError`, which the command line
prints as one line and turns into exit status 2, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """A value a user supplied is not of the accepted form.

    The message always reads ``WHERE: got FOUND; expected EXPECTED``.
    """

    def __init__(self, where: str, found: object, expected: str):
        self.where, self.found, self.expected = where, found, expected
        super().__init__(f"{where}: got {found!r}; expected {expected}")


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The valid names closest to ``name``, best first (for 'did you mean' hints)."""
    choices = list(choices)
    found = difflib.get_close_matches(name, choices, n=n, cutoff=0.0)
    return found or choices[:n]
