"""The compiled model as a fit evaluates it: in two stages, and at many points at once.

A fit moves a few free coefficients and keeps the runs' inputs and every other coefficient
where they are, so most of the compiled program (:func:`costmodel.compiled.compile_outputs`)
computes the same arrays at every step of the solver. :func:`staged` splits the program's
straight-line assignments in two: the *fixed* stage (everything that does not depend on a
free coefficient), run once per fit, and the *free* stage, run at every point the solver
or a finite difference asks for. :class:`Evaluator` runs the free stage at several points
in one NumPy call, the configurations repeated once per point and each free coefficient an
array per row.

Two rules move more into the fixed stage: the largest subexpressions of a free-stage
statement that read no free value are computed there once (:class:`_Hoist`); and the
union's value of a contiguous cluster, which does not read the spread clusters' densities
(:mod:`costmodel.model.union_values`), is a fixed-stage statement when nothing else it reads
moves (:func:`_contiguous_union`), so a fit of the densities redoes only their weighting.

Both stages are exact: every operation is the program's own, on the same operands, and
NumPy computes elementwise, so each value is bit for bit the one a call of the whole program
gives (``tests/test_fit_outputs.py`` and ``tests/test_union_values.py`` check it for every
target and form). The split is read from the program's syntax tree (:mod:`ast`), without
SymPy; a program that is not straight-line assignments is evaluated whole, as before.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Most rows one batched call evaluates (points × configurations); more points are split
#: into several calls so the repeated arrays stay small. [rows]
BATCH_ROWS = 1 << 18


@dataclass(frozen=True)
class Staged:
    """A program split at the free coefficients ``free``.

    ``fixed(**inputs, **coefficients)`` returns the values named ``handed`` (program
    arguments and fixed-stage results the free stage reads, or returns); ``moving(*handed,
    *free)`` returns the program's outputs.
    """

    free: tuple[str, ...]
    handed: tuple[str, ...]
    fixed: object
    moving: object


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def staged(source: str, free: tuple[str, ...], namespace: Mapping | None = None) -> Staged | None:
    """``source`` (a compiled program) split at ``free``; None when it is not straight-line
    ``name = expression`` statements ending in ``return (names,)``. ``namespace`` holds what
    the program refers to (NumPy, the union function)."""
    split = _split(source, tuple(free))
    if split is None:
        return None
    code, handed = split
    scope = dict(namespace or {})
    exec(code, scope)  # noqa: S102 - the program's own statements, regrouped
    return Staged(tuple(free), handed, scope["fixed"], scope["moving"])


#: The union function of the compiled programs (:func:`costmodel.model.union_values.new_pages`).
UNION = "new_pages"


def _contiguous_union(value: ast.expr) -> ast.expr:
    """``value``, or, when it is the union's value of a contiguous cluster (``new_pages(j, c,
    …)`` with ``j < c``), the same call with the spread clusters' densities replaced by 0:
    a contiguous cluster's new hugepages do not read them, so the call can run in the fixed
    stage although a free coefficient moves the densities."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == UNION
            and not value.keywords and len(value.args) >= 2 and not any(isinstance(a, ast.Starred) for a in value.args)
            and all(isinstance(a, ast.Constant) and type(a.value) is int for a in value.args[:2])):
        return value
    j, contiguous = value.args[0].value, value.args[1].value
    if not 0 <= j < contiguous:
        return value
    args = [ast.Constant(0.0) if i >= 2 + 3 * contiguous and (i - 2) % 3 == 2 else a for i, a in enumerate(value.args)]
    return ast.Call(value.func, args, [])


class _Hoist(ast.NodeTransformer):
    """Moves the largest subexpressions of the free stage's statements that read no moving
    name (and some name besides the modules) into the fixed stage, as ``prefix<i>``."""

    MODULES = {"numpy", "functools"}
    #: never hoisted (not arrays a batch repeats, or names bound inside) nor entered
    OPAQUE = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    #: hoisted whole or not entered (their parts are evaluated only on some conditions)
    CONDITIONAL = (ast.IfExp, ast.BoolOp)

    def __init__(self, moving: set[str], prefix: str):
        self.moving, self.prefix, self.hoisted = moving, prefix, []

    def visit(self, node):
        if isinstance(node, self.OPAQUE):
            return node
        names = _names(node) if isinstance(node, ast.expr) else set()
        if (not isinstance(node, (ast.Name, ast.Constant, ast.Attribute, ast.List, ast.Tuple, ast.Starred))
                and isinstance(node, ast.expr) and names - self.MODULES and not names & self.moving):
            name = f"{self.prefix}{len(self.hoisted)}"
            self.hoisted.append(ast.Assign([ast.Name(name, ast.Store())], node))
            return ast.Name(name, ast.Load())
        return node if isinstance(node, self.CONDITIONAL) else self.generic_visit(node)


@lru_cache(maxsize=256)
def _split(source: str, free: tuple[str, ...]):
    """The two stages' code object and the names handed from one to the other."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        return None
    function = tree.body[0]
    *body, last = function.body
    params = [a.arg for a in function.args.args]
    if not (isinstance(last, ast.Return) and isinstance(last.value, ast.Tuple)
            and all(isinstance(e, ast.Name) for e in last.value.elts)):
        return None
    if not all(isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) for s in body):
        return None
    if not set(free) <= set(params):
        return None
    moving_names = set(free)
    fixed_body, moving_body = [], []
    for statement in body:
        contiguous = _contiguous_union(statement.value)
        if _names(contiguous) & moving_names:
            moving_names.add(statement.targets[0].id)
            moving_body.append(statement)
        else:
            fixed_body.append(ast.Assign(statement.targets, contiguous))
    prefix, taken = "_fixed_", _names(tree)
    while any(n.startswith(prefix) for n in taken):
        prefix = "_" + prefix
    hoist = _Hoist(moving_names, prefix)
    moving_body = [ast.Assign(s.targets, hoist.visit(s.value)) for s in moving_body]
    fixed_body += hoist.hoisted
    known = set(params) | {s.targets[0].id for s in fixed_body}
    outputs = [e.id for e in last.value.elts]
    read = set().union(*(_names(s.value) for s in moving_body)) if moving_body else set()
    handed = tuple(sorted((read | set(outputs)) & known - moving_names))

    def tuple_of(names):
        return ast.Tuple([ast.Name(n, ast.Load()) for n in names] , ast.Load())

    def arguments(names):
        return ast.arguments(posonlyargs=[], args=[ast.arg(n) for n in names], kwonlyargs=[], kw_defaults=[],
                             defaults=[])

    fixed = ast.FunctionDef("fixed", arguments(params), fixed_body + [ast.Return(tuple_of(handed))], [], None, None)
    moving = ast.FunctionDef("moving", arguments(list(handed) + list(free)),
                             moving_body + [ast.Return(tuple_of(outputs))], [], None, None)
    module = ast.fix_missing_locations(ast.Module([fixed, moving], type_ignores=[]))
    return compile(module, "<costmodel fit stages>", "exec"), handed


def _per_row(value, is_snp):
    """A coefficient pair ``(tdx, snp)`` chosen per configuration, as the compiled model does."""
    if isinstance(value, tuple):
        return np.where(np.asarray(is_snp) > 0, value[1], value[0])
    return value


class Evaluator:
    """One output of a compiled program at the configurations ``inputs``, as a function of
    the free coefficients' values, the other coefficients fixed at ``coefficients``.

    ``at(values)`` is one point; ``many(points)`` several (rows: points), evaluated together.
    Falls back to calling the whole program per point when it cannot be staged, or when
    the compiled model would take another path (the fused loop on large inputs).
    """

    def __init__(self, compiled, output: str, inputs: Mapping[str, np.ndarray], coefficients: Mapping,
                 free: Sequence[str], input_names: Sequence[str], coefficient_names: Sequence[str],
                 whole: bool = False):
        self.compiled, self.output, self.inputs = compiled, output, inputs
        self.coefficients, self.free = dict(coefficients), tuple(free)
        self.rows = int(np.size(inputs["memory_bytes"]))
        function = compiled.function
        namespace = getattr(function, "__globals__", None)
        stages = None if whole else staged(compiled.source, self.free, namespace)
        self.stages = stages
        self._handed: dict[int, tuple] = {}
        if stages is not None:
            is_snp = inputs["is_snp"]
            args = {n: inputs[n] for n in input_names}
            args.update({c: _per_row(self.coefficients[c], is_snp) for c in coefficient_names})
            values = stages.fixed(**args)
            self._handed[1] = tuple(values)

    def _whole(self, values) -> np.ndarray:
        coefficients = {**self.coefficients, **dict(zip(self.free, map(float, values)))}
        return np.asarray(self.compiled(self.inputs, coefficients)[self.output], dtype=float)

    def _repeated(self, k: int) -> tuple:
        if k not in self._handed:
            self._handed[k] = tuple(np.tile(v, k) if isinstance(v, np.ndarray) and v.shape == (self.rows,) else v
                                    for v in self._handed[1])
        return self._handed[k]

    def _output(self, value, k: int) -> np.ndarray:
        if type(value) is np.ndarray and value.dtype == np.float64 and value.shape == (k * self.rows,):
            view = value.view()  # what the conversion below gives: the values, read-only
            view.flags.writeable = False
            return view
        return np.asarray(np.broadcast_to(np.asarray(value, dtype=float), (k * self.rows,)), dtype=float)

    def at(self, values) -> np.ndarray:
        if self.stages is None:
            return self._whole(values)
        out = self.stages.moving(*self._handed[1], *map(float, values))
        return self._output(out[0], 1)

    def many(self, points) -> np.ndarray:
        points = np.asarray(points, dtype=float).reshape(-1, len(self.free))
        if self.stages is None or len(points) == 1:
            return np.stack([self.at(p) for p in points]) if len(points) else np.zeros((0, self.rows))
        per_call = max(1, BATCH_ROWS // max(self.rows, 1))
        blocks = []
        for start in range(0, len(points), per_call):
            chunk = points[start:start + per_call]
            k = len(chunk)
            if k == 1:
                blocks.append(self.at(chunk[0])[None, :])
                continue
            free = [np.repeat(chunk[:, j], self.rows) for j in range(len(self.free))]
            out = self.stages.moving(*self._repeated(k), *free)
            blocks.append(self._output(out[0], k).reshape(k, self.rows))
        return np.concatenate(blocks)
