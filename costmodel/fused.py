"""The compiled model as one fused loop: every configuration computed start to finish in
registers, compiled with numba, run on several threads over chunks of configurations.

The NumPy program of :mod:`costmodel.compiled` makes one temporary array per operation
and counts the hugepage union with argsorts over the whole grid: at 10⁶ configurations it
is memory-bound (tens of 80 MB temporaries). This module prints the *same* plan
(:func:`costmodel.compiled.plan`: the model's definitions in dependency order) as scalar
statements inside a ``for`` loop over configurations, the union of the clusters' hugepage
ranges as a small per-row sort and merge (:func:`union_row`, the scalar twin of
:func:`costmodel.model.union.new_pages`), and compiles it with numba.

Why numba: it compiles the generated Python source as is (no second language to print),
releases the GIL (``nogil``) so threads run chunks in parallel, and caches the machine code on disk
(``cache=True``) so a process pays the compile once per model version. (``prange`` was
tried: its parallel transform made the compile of this long loop body minutes long.) The source is
written to the costmodel cache directory (:mod:`costmodel.cache`) because numba's cache is
keyed on a source file. Without numba (:func:`available` is False) the NumPy program is used.

Coefficients are passed as one array per coefficient with a mode: a single value, a value
per platform (TDX at index 0, SEV-SNP at 1, chosen by ``is_snp``), or a value per
configuration.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from functools import lru_cache

import numpy as np

#: Rows per piece of work (a multiple keeps pieces cache-friendly), and from how many rows
#: the loop runs on several threads (a piece of :data:`costmodel.evaluate.PIECE` does).
CHUNK = 16384
PARALLEL_ROWS = 65_536
#: Coefficient modes.
SCALAR, PER_PLATFORM, PER_ROW = 0, 1, 2


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether numba can be imported (``COSTMODEL_FUSED=0`` turns the fused loop off)."""
    import os

    if os.environ.get("COSTMODEL_FUSED", "1") == "0":
        return False
    return importlib.util.find_spec("numba") is not None


def union_row(contiguous, k, lo, hi, w, out, order, start):
    """Hugepages each of ``k`` clusters adds to the union, into ``out[:k]`` (one row of
    :func:`costmodel.model.union.new_pages`, same arithmetic). ``order`` and ``start`` are
    scratch of length ≥ k."""
    # contiguous clusters: stable insertion sort of the present ones by first hugepage
    m = 0
    for c in range(contiguous):
        out[c] = 0.0
        if w[c] > 0 and hi[c] >= lo[c]:
            p = m
            while p > 0 and lo[order[p - 1]] > lo[c]:
                order[p] = order[p - 1]
                p -= 1
            order[p] = c
            m += 1
    reach = -math.inf
    for p in range(m):
        c = order[p]
        s = max(lo[c], reach + 1)
        start[c] = s
        out[c] = max(0.0, hi[c] - s + 1)
        reach = max(reach, hi[c])
    for j in range(contiguous, k):
        first, last = lo[j], hi[j]
        density = min(max(w[j], 0.0), 1.0)
        size = max(0.0, last - first + 1)
        free = 0.0
        if size > 0:
            free = size - _covered(first, last, m, order, hi, start, out)
        share = density * free
        for i in range(contiguous, j):
            a, b = max(first, lo[i]), min(last, hi[i])
            if b >= a:
                overlap = (b - a + 1) - _covered(a, b, m, order, hi, start, out)
                share -= density * min(max(w[i], 0.0), 1.0) * overlap
        out[j] = max(0.0, share)


def _covered(first, last, m, order, hi, start, gained):
    """Hugepages of [first, last] the contiguous clusters' new parts cover."""
    total = 0.0
    for p in range(m):
        c = order[p]
        if gained[c] > 0:
            part = min(hi[c], last) - max(start[c], first) + 1
            if part > 0:
                total += part
    return total


@lru_cache(maxsize=1)
def _jitted_union_row():
    """:func:`union_row` compiled (numba imported only when a fused kernel is loaded)."""
    global _covered
    import numba

    jit = numba.njit(cache=True, nogil=True)
    _covered = jit(_covered)  # union_row calls it by this global name: numba needs it compiled
    return jit(union_row)


def __getattr__(name: str):
    if name == "union_row_jit":  # what generated kernels import
        return _jitted_union_row()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _load_module(path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def kernel_for(generate, entry_key: str):
    """The compiled kernel of the source ``generate()`` prints, kept as a file in the cache
    directory (numba's on-disk cache is keyed on it), or in a temporary one when the cache
    is off or read-only. A file that fails to load is generated again."""
    import tempfile
    from pathlib import Path

    from costmodel import cache

    name = f"costmodel_fused_{entry_key[:24]}"
    if name in sys.modules:
        return sys.modules[name].rows
    folder = cache.directory() / "fused" if cache.enabled() else None
    if folder is not None and (folder / f"{name}.py").exists():
        try:
            return _load_module(folder / f"{name}.py", name).rows
        except Exception:  # damaged: generated again below
            sys.modules.pop(name, None)
    source = generate()
    from costmodel.files import atomic_write_text

    try:
        if folder is None:
            raise OSError("cache off")
        atomic_write_text(folder / f"{name}.py", source)
    except OSError:
        folder = Path(tempfile.mkdtemp(prefix="costmodel-fused-"))
        (folder / f"{name}.py").write_text(source)
    return _load_module(folder / f"{name}.py", name).rows


def coefficient_arrays(coefficients, names, n: int):
    """``(values, modes)`` for the kernel: each coefficient as a float array and its mode.
    A value per platform is given as a pair ``(tdx, snp)`` in a tuple."""
    values, modes = [], []
    for name in names:
        v = coefficients[name]
        if isinstance(v, tuple):
            values.append(np.asarray(v, dtype=float))
            modes.append(PER_PLATFORM)
        elif np.ndim(v) == 0:
            values.append(np.full(1, float(v)))
            modes.append(SCALAR)
        else:
            array = np.ascontiguousarray(v, dtype=float).reshape(-1)
            if array.size == 1:
                values.append(array)
                modes.append(SCALAR)
            else:
                if array.size != n:
                    raise ValueError(f"coefficient {name}: {array.size} values for {n} configurations")
                values.append(array)
                modes.append(PER_ROW)
    return values, np.asarray(modes, dtype=np.int64)


# --- code generation (SymPy: only when a kernel is not cached) ------------------------------------
def kernel_source(steps, results, inputs, coefficients) -> str:
    """Python source of the fused kernel for a :class:`costmodel.compiled.Plan`'s ``steps``
    and ``results``: ``rows(start, stop, n, <inputs>, <coefficients>, modes, slots, out)``
    fills ``out[slots[r], i]`` with result r of configuration i in ``[start, stop)`` (results with ``slots[r] < 0``
    are skipped: one kernel serves every choice of outputs)."""
    import sympy as sp
    from sympy.printing.pycode import PythonCodePrinter

    from costmodel.model.union import NewPages

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

    printer = Printer({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False})
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
                scratch.append(f"        _lo{g} = np.empty({k}); _hi{g} = np.empty({k}); _w{g} = np.empty({k})")
                scratch.append(f"        _nu{g} = np.empty({k}); _ord{g} = np.empty({k}, np.int64); _st{g} = np.empty({k})")
                for c in range(k):
                    lo, hi, w = (printer.doprint(a) for a in args[3 * c: 3 * c + 3])
                    body.append(f"            _lo{g}[{c}] = {lo}; _hi{g}[{c}] = {hi}; _w{g}[{c}] = {w}")
                body.append(f"            union_row({contiguous}, {k}, _lo{g}, _hi{g}, _w{g}, _nu{g}, _ord{g}, _st{g})")
            g, _ = groups[key]
            replace[atom] = sp.Symbol(f"_nu{g}[{int(atom.args[0])}]")
        return expr.xreplace(replace) if replace else expr

    for name, expr in steps:
        body.append(f"            {name} = {printer.doprint(unions(expr))}")
    for r, expr in enumerate(results):
        body.append(f"            if slots[{r}] >= 0:")
        body.append(f"                out[slots[{r}], i] = {printer.doprint(unions(expr))}")
    args = ", ".join(["n", *(f"a_{x}" for x in inputs), *(f"c_{x}" for x in coefficients), "modes", "slots", "out"])
    lines = [
        '"""Generated by costmodel.fused from the model\'s definitions: do not edit."""',
        "import math",
        "",
        "import numba",
        "import numpy as np",
        "",
        "from costmodel.fused import union_row_jit as union_row",
        "",
        "",
        "@numba.njit(cache=True, nogil=True)",
        f"def rows(start, stop, {args}):",
        *(f"    m_{x} = modes[{j}]" for j, x in enumerate(coefficients)),
        *(line[4:] for line in scratch),
        "    for i in range(start, stop):",
        *(line[4:] for line in (f"            {x} = a_{x}[i]" for x in inputs)),
        *(line[4:] for line in (f"            {x} = c_{x}[0 if m_{x} == 0 else (i if m_{x} == 2 else int(is_snp))]"
                                for x in coefficients)),
        *(line[4:] for line in body),
        "",
    ]
    return "\n".join(lines)


def threads() -> int:
    """Worker threads for the fused loop: ``COSTMODEL_THREADS``, else the usable cores."""
    import os

    if os.environ.get("COSTMODEL_THREADS"):
        return max(1, int(os.environ["COSTMODEL_THREADS"]))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run(rows, n: int, *args) -> None:
    """``rows(start, stop, n, *args)`` over ``[0, n)``: in one call below ``PARALLEL_ROWS``,
    else in chunks of ``CHUNK`` rows on :func:`threads` threads (the kernel releases the GIL)."""
    workers = threads()
    if n < PARALLEL_ROWS or workers == 1:
        rows(0, n, n, *args)
        return
    from concurrent.futures import ThreadPoolExecutor

    step = max(CHUNK, -(-n // (8 * workers)) // CHUNK * CHUNK)  # a few pieces per worker: balance
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(rows, start, min(n, start + step), n, *args) for start in range(0, n, step)]:
            future.result()
