"""Small SymPy functions the closed form needs, each printed for NumPy and for cards.

:class:`Where` is a two-way choice on a condition. SymPy's ``Piecewise`` canonicalises its
conditions into sets when built or substituted (slow, and it recurses without end on the
layout's address comparisons); ``Where`` keeps the condition as written, lambdifies to
``numpy.where`` and prints as a ``cases`` block.
"""

from __future__ import annotations

import sympy as sp


class Where(sp.Function):
    """``Where(condition, then, otherwise)``: ``then`` where the condition holds."""

    nargs = 3
    #: its branches are real numbers (or ±∞), so Min/Max may compare it
    is_extended_real = True

    @classmethod
    def eval(cls, condition, then, otherwise):
        if condition is sp.true:
            return then
        if condition is sp.false:
            return otherwise
        if then == otherwise:
            return then
        return None

    def _numpycode(self, printer):
        condition, then, otherwise = (printer._print(a) for a in self.args)
        return f"numpy.where({condition}, {then}, {otherwise})"

    def _latex(self, printer):
        condition, then, otherwise = (printer._print(a) for a in self.args)
        return r"\begin{cases} %s & %s \\ %s & \text{otherwise} \end{cases}" % (then, condition, otherwise)

    def _sympystr(self, printer):
        condition, then, otherwise = (printer._print(a) for a in self.args)
        return f"({then} if {condition} else {otherwise})"

    def _pretty(self, printer):
        return printer._print(sp.Piecewise((self.args[1], self.args[0]), (self.args[2], True), evaluate=False))
