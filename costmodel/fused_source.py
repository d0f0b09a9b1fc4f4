"""The loop body of the fused kernel (:mod:`costmodel.fused`): the plan printed as scalar
Python, then rewritten so that numba compiles less work per configuration, with every
number bit for bit unchanged.

The rewrites (on the Python syntax tree, so that each keeps an operation's operands and
their order exactly):

- common subexpressions: a subexpression written more than once (the plan inlines whole
  definitions, e.g. the SWIOTLB's size inside the SWIOTLB's rounding, and the per-node
  terms repeat in every NUMA node's sum) is computed once, into a local, before the first
  statement that reads it. The same operations on the same values give the same number;
  a subexpression inside one branch of a conditional may now be computed when that branch
  is not taken, which is harmless because the kernel is compiled with numba's
  ``error_model="numpy"`` (a division by zero gives inf or NaN, it does not raise) and
  every function it calls is pure;
- ``x / h`` for an input ``h`` of :data:`costmodel.fused.POWER_OF_TWO_INPUTS` becomes
  ``x * _inv_h`` (``_inv_h = 1 / h``): for a power of two both are the same correctly
  rounded number, and the kernel flags any row where ``h`` is not one;
- ``2.0**y`` becomes ``_exp2(y)`` and ``np.ceil(np.log2(x))`` ``_ceil_log2(x)``
  (:func:`costmodel.fused.exp2`, :func:`costmodel.fused.ceil_log2`): exact by the
  exponent's bits where that is certain, the same library calls otherwise.

Generation runs once per model version (the kernel is cached); the output is deterministic
(locals numbered in the order they are first needed).
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Body:
    """Lines of the loop body (unindented) and the scratch arrays allocated before the loop."""

    lines: tuple[str, ...]
    scratch: tuple[str, ...]


def _printer():
    from sympy.printing.pycode import PythonCodePrinter

    class Printer(PythonCodePrinter):
        """Scalar code numba compiles: floats throughout, NumPy's floor/ceil (floats, as
        the NumPy program computes them)."""

        def _print_Integer(self, expr):
            return f"{int(expr)}.0"

        def _print_floor(self, expr):
            return f"np.floor({self._print(expr.args[0])})"

        def _print_ceiling(self, expr):
            return f"np.ceil({self._print(expr.args[0])})"

        def _print_log2(self, expr):
            return f"np.log2({self._print(expr.args[0])})"

        def _print_Where(self, expr):
            condition, then, otherwise = (self._print(a) for a in expr.args)
            return f"(({then}) if ({condition}) else ({otherwise}))"

        def _print_Infinity(self, expr):
            return "np.inf"

        def _print_NegativeInfinity(self, expr):
            return "(-np.inf)"

        def _print_BooleanTrue(self, expr):
            return "True"

        def _print_BooleanFalse(self, expr):
            return "False"

    return Printer({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False})


def printed_body(steps, results) -> Body:
    """The plan as printed, before any rewrite: one assignment per step, the unions as calls of
    :func:`costmodel.fused.union_row`, then each result stored into its output slot."""
    import sympy as sp

    from costmodel.model.union import NewPages

    printer = _printer()
    body: list[str] = []
    scratch: list[str] = []
    groups: dict[tuple, tuple[int, int]] = {}  # union arguments → (group, clusters)

    def unions(expr):
        """Emit each new union ``expr`` needs; return ``expr`` with NewPages as locals."""
        replace = {}
        for atom in sorted(expr.atoms(NewPages), key=sp.default_sort_key):
            key = atom.args[1:]
            if key not in groups:
                g, contiguous, args = len(groups), int(key[0]), key[1:]
                k = len(args) // 3
                groups[key] = (g, k)
                scratch.append(f"    _lo{g} = np.empty({k}); _hi{g} = np.empty({k}); _w{g} = np.empty({k})")
                scratch.append(f"    _nu{g} = np.empty({k}); _ord{g} = np.empty({k}, np.int64); _st{g} = np.empty({k})")
                for c in range(k):
                    lo, hi, w = (printer.doprint(a) for a in args[3 * c: 3 * c + 3])
                    body.append(f"_lo{g}[{c}] = {lo}; _hi{g}[{c}] = {hi}; _w{g}[{c}] = {w}")
                body.append(f"union_row({contiguous}, {k}, _lo{g}, _hi{g}, _w{g}, _nu{g}, _ord{g}, _st{g})")
            g, _ = groups[key]
            replace[atom] = sp.Symbol(f"_nu{g}[{int(atom.args[0])}]")
        return expr.xreplace(replace) if replace else expr

    for name, expr in steps:
        body.append(f"{name} = {printer.doprint(unions(expr))}")
    for r, expr in enumerate(results):
        body.append(f"if s_{r} >= 0:\n    out[s_{r}, offset + i] = {printer.doprint(unions(expr))}")
    return Body(tuple(body), tuple(scratch))


def loop_body(steps, results, powers_of_two=()) -> Body:
    """:func:`printed_body`, rewritten (see the module docstring); ``powers_of_two``: the
    inputs divided by as :data:`costmodel.fused.POWER_OF_TWO_INPUTS` are."""
    printed = printed_body(steps, results)
    tree = ast.parse("\n".join(printed.lines))
    statements = [_Exact(powers_of_two).visit(s) for s in tree.body]
    statements = _common_subexpressions(statements)
    lines = tuple(line for s in statements for line in ast.unparse(ast.fix_missing_locations(s)).splitlines())
    return Body(lines, printed.scratch)


def _dotted(node) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _call(name: str, argument) -> ast.Call:
    return ast.Call(ast.Name(name, ast.Load()), [argument], [])


class _Exact(ast.NodeTransformer):
    """The exact cheaper forms (module docstring): divisions by powers of two, powers of two,
    and ``ceil(log2 x)``."""

    def __init__(self, powers_of_two):
        self.powers_of_two = set(powers_of_two)

    def visit_BinOp(self, node):
        node = self.generic_visit(node)
        if isinstance(node.op, ast.Div) and isinstance(node.right, ast.Name) and node.right.id in self.powers_of_two:
            return ast.BinOp(node.left, ast.Mult(), ast.Name(f"_inv_{node.right.id}", ast.Load()))
        if isinstance(node.op, ast.Pow) and isinstance(node.left, ast.Constant) and node.left.value == 2.0 \
                and isinstance(node.left.value, float):
            return _call("_exp2", node.right)
        return node

    def visit_Call(self, node):
        node = self.generic_visit(node)
        if _dotted(node.func) == "np.ceil" and len(node.args) == 1 and isinstance(node.args[0], ast.Call) \
                and _dotted(node.args[0].func) == "np.log2" and len(node.args[0].args) == 1:
            return _call("_ceil_log2", node.args[0].args[0])
        return node


#: Expression nodes that may be computed once into a local (names, constants, attribute
#: lookups and array reads stay where they are: an array element may change between reads).
_SHARED = (ast.BinOp, ast.UnaryOp, ast.Call, ast.IfExp, ast.Compare, ast.BoolOp)


def _shareable(node) -> bool:
    if not isinstance(node, _SHARED):
        return False
    inside = list(ast.walk(node))
    return any(isinstance(n, ast.Name) for n in inside) and not any(isinstance(n, ast.Subscript) for n in inside) \
        and not (isinstance(node, ast.Call) and _dotted(node.func) == "union_row")


def _values(statement):
    """The expressions a statement computes: an assignment's value, a guarded assignment's value."""
    if isinstance(statement, ast.Assign):
        return [statement]
    if isinstance(statement, ast.If) and len(statement.body) == 1 and isinstance(statement.body[0], ast.Assign):
        return [statement.body[0]]
    return []


def _common_subexpressions(statements: list) -> list:
    """Each subexpression written more than once computed once, into ``_cN``, right before
    the first statement that reads it (the statements are assigned in dependency order and
    each name is assigned once per row, so every name it reads is set by then)."""
    counts: Counter = Counter()
    for statement in statements:
        for assign in _values(statement):
            counts.update(ast.dump(n) for n in ast.walk(assign.value) if _shareable(n))
    names: dict[str, str] = {}
    result = []
    for statement in statements:
        hoisted: list = []

        def share(node):
            key = ast.dump(node) if _shareable(node) else None
            for field, value in ast.iter_fields(node):
                if isinstance(value, ast.AST):
                    setattr(node, field, share(value))
                elif isinstance(value, list):
                    setattr(node, field, [share(v) if isinstance(v, ast.AST) else v for v in value])
            if key is None or counts[key] < 2:
                return node
            if key not in names:
                names[key] = f"_c{len(names)}"
                hoisted.append(ast.Assign([ast.Name(names[key], ast.Store())], node))
            return ast.Name(names[key], ast.Load())

        for assign in _values(statement):
            assign.value = share(assign.value)
        result.extend(hoisted)
        result.append(statement)
    return result
