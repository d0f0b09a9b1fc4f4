"""Small SymPy functions the closed form needs, each printed for NumPy and for cards.

:class:`Where` is a two-way choice on a condition. SymPy's ``Piecewise`` canonicalises its
conditions into sets when built or substituted (slow, and it recurses without end on the
layout's address comparisons); ``Where`` keeps the condition as written, lambdifies to
``numpy.where`` and prints as a ``cases`` block.
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import log2 as _log2


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

    def chain(self) -> list[tuple[sp.Basic, sp.Expr]]:
        """(condition, value) pairs of this choice and the choices nested in its otherwise
        branch, the last with condition ``True``: one cases block instead of nested ones."""
        pairs, node = [], self
        while isinstance(node, Where):
            pairs.append((node.args[0], node.args[1]))
            node = node.args[2]
        return pairs + [(sp.true, node)]

    def _latex(self, printer):
        rows = [f"{printer._print(v)} & " + (r"\text{otherwise}" if c is sp.true else printer._print(c))
                for c, v in self.chain()]
        return r"\begin{cases} %s \end{cases}" % r" \\ ".join(rows)

    def _sympystr(self, printer):
        condition, then, otherwise = (printer._print(a) for a in self.args)
        return f"({then} if {condition} else {otherwise})"

    def _pretty(self, printer):
        return printer._print(sp.Piecewise(*((v, c) for c, v in self.chain()), evaluate=False))


class log2(_log2):
    """Base-2 logarithm that cards print as log₂ with its argument laid out (SymPy's codegen
    ``log2`` prints the argument as plain text)."""

    def _pretty(self, printer):
        return printer._print(sp.Function("log₂")(*self.args))

    def _latex(self, printer):
        return r"\log_{2}\left(%s\right)" % printer._print(self.args[0])
