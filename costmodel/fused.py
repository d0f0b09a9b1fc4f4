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


def exp2(y):
    """``2.0**y`` [1], exactly: by the exponent's bits (``ldexp``) when ``y`` is a whole
    number in the normal range, where the power is exactly representable (so equal to what
    ``2.0**y`` returns, which is within an ulp of it); ``2.0**y`` itself otherwise."""
    if -1022.0 <= y <= 1023.0 and np.floor(y) == y:
        return math.ldexp(1.0, int(y))
    return 2.0**y


def ceil_log2(x):
    """``np.ceil(np.log2(x))`` [1], exactly: for ``x = m·2ᵉ`` (``frexp``, ``0.5 ≤ m < 1``) it is
    ``e - 1`` when ``m = 0.5`` (log2 of a power of two is exact) and ``e`` when ``m`` is clearly
    above 0.5 (log2 then lies in (e - 1, e), well above ``e - 1``: at least 2⁻²⁹/ln 2 away, a
    million times an ulp of any exponent; -0.0 for e = 0, as ``np.ceil`` rounds up to it); the
    library's log2 decides the few values just above a power of two, and zero, negative and
    non-finite ``x``."""
    if 0.0 < x < math.inf:
        m, e = math.frexp(x)
        if m == 0.5:
            return float(e - 1)
        if m > 0.5 + 2.0**-30:
            return float(e) if e != 0 else -0.0  # ceil of a log2 in (-1, 0) is -0.0
    return np.ceil(np.log2(x))


@lru_cache(maxsize=1)
def _jitted_helpers():
    """:func:`exp2` and :func:`ceil_log2` compiled (inlined into the kernel by LLVM)."""
    import numba

    jit = numba.njit(cache=True, nogil=True, error_model="numpy")
    return {"exp2_jit": jit(exp2), "ceil_log2_jit": jit(ceil_log2)}


@lru_cache(maxsize=1)
def _jitted_union_row():
    """:func:`union_row` compiled (numba imported only when a fused kernel is loaded)."""
    global _covered
    import numba

    jit = numba.njit(cache=True, nogil=True)
    _covered = jit(_covered)  # union_row calls it by this global name: numba needs it compiled
    return jit(union_row)


def _fill(words, keys, ids, codes, first, start, k):
    """Rows ``start…`` of :func:`distinct_words` into the table ``keys``/``ids`` (ids -1:
    empty); returns ``(next row, distinct so far)``, early when the table is half full."""
    size = keys.shape[0]
    for i in range(start, words.shape[0]):
        word = words[i]
        slot = np.int64((word * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & (size - 1)
        while True:
            j = ids[slot]
            if j < 0:
                keys[slot] = word
                ids[slot] = k
                first[k] = i
                codes[i] = k
                k += 1
                if 2 * k > size:
                    return i + 1, k
                break
            if keys[slot] == word:
                codes[i] = j
                break
            slot = (slot + 1) & (size - 1)
    return words.shape[0], k


def distinct_words(words):
    """``(first, codes)`` of an array of 64-bit words: ``first`` the index of each distinct
    word's first row, in order of appearance, ``codes[i]`` the number of row i's word in
    ``first``. An open-addressing table (numba) that doubles when half full; no sort."""
    fill = _jitted_fill()
    n = len(words)
    codes, first = np.empty(n, np.int64), np.empty(n, np.int64)
    size, i, k = 64, 0, 0
    while True:
        keys, ids = np.zeros(size, np.uint64), np.full(size, -1, np.int64)
        if k:  # the words found so far, numbered as before
            fill(words[first[:k]], keys, ids, np.empty(k, np.int64), np.empty(k, np.int64), 0, 0)
        i, k = fill(words, keys, ids, codes, first, i, k)
        if i >= n:
            return first[:k], codes
        size *= 2


@lru_cache(maxsize=1)
def _jitted_fill():
    import numba

    return numba.njit(cache=True, nogil=True)(_fill)


def distinct_objects(array: np.ndarray):
    """``(first, codes)`` of :func:`distinct_words` over the identities of an object array's
    cells (the addresses it holds, read without touching the objects): a text column of 10⁶
    cells holding a few distinct strings is grouped in milliseconds. Cells that are equal but
    distinct objects fall in different groups: the caller merges those by value. None when
    numba is not available."""
    if not available() or array.dtype != object or array.ndim != 1:
        return None
    import ctypes

    array = np.ascontiguousarray(array)
    words = np.ctypeslib.as_array(ctypes.cast(array.ctypes.data, ctypes.POINTER(ctypes.c_uint64)), (len(array),))
    return distinct_words(words)


def __getattr__(name: str):
    if name == "union_row_jit":  # what generated kernels import
        return _jitted_union_row()
    if name in ("exp2_jit", "ceil_log2_jit"):
        return _jitted_helpers()[name]
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


def call(kernel, every, outputs, inputs, coefficients, shape, out, offset: int) -> bool:
    """Run ``kernel`` (over the outputs ``every``) on ``inputs`` and ``coefficients`` (values in
    the kernel's order) for ``outputs``, into columns ``[offset, offset + n)`` of ``out``. An
    input of one value for every row (a scalar, a broadcast view) is passed as that value with
    step 0. False when a row is outside what the kernel's exact shortcuts hold for."""
    n = int(np.prod(shape))
    arrays, steps = [], np.ones(len(inputs), dtype=np.int64)
    for j, given in enumerate(inputs):
        value = np.asarray(given, dtype=float)
        if value.size and (value.ndim == 0 or not any(value.strides)):  # one value for every row
            arrays.append(value.reshape(-1)[:1].copy())
            steps[j] = 0
        else:
            arrays.append(np.ascontiguousarray(np.broadcast_to(value, shape)).reshape(-1))
    values, modes = coefficient_arrays(dict(enumerate(coefficients)), range(len(coefficients)), n)
    slots = np.full(len(every), -1, dtype=np.int64)
    for r, name in enumerate(outputs):
        slots[every.index(name)] = r
    inexact = np.zeros(1, dtype=np.int64)
    run(kernel, n, *arrays, *values, steps, modes, slots, out, offset, inexact)
    return not inexact[0]


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
#: Inputs that are whole powers of two [B] (hugepages are 4 KiB, 2 MiB or 1 GiB): ``x / h`` is
#: computed as ``x * (1 / h)``, bit for bit the same number (both are ``x · 2⁻ᵏ`` correctly
#: rounded) for a multiplication's cost instead of a division's. A row where one is not
#: a power of two is flagged and the caller evaluates the call with the NumPy program.
POWER_OF_TWO_INPUTS = ("hugepage_bytes",)


def kernel_source(steps, results, inputs, coefficients) -> str:
    """Python source of the fused kernel for a :class:`costmodel.compiled.Plan`'s ``steps``
    and ``results``: ``rows(start, stop, n, <inputs>, <coefficients>, steps, modes, slots, out,
    offset, inexact)`` reads input j of row i at ``a_j[i * steps[j]]`` (step 0: one value for
    every row, the model's default of an input not given, never materialised per row), and fills
    ``out[slots[r], offset + i]`` with result r of configuration i in ``[start, stop)`` (results
    with ``slots[r] < 0`` are skipped: one kernel serves any choice of outputs); ``inexact[0]`` is
    set to 1 when a row's :data:`POWER_OF_TWO_INPUTS` are not powers of two (the kernel's
    numbers then are not the model's: the caller uses the NumPy program).

    The loop body is the plan printed, then rewritten by :mod:`costmodel.fused_source` (common
    subexpressions computed once, exact cheaper forms of divisions by powers of two and of
    ``2**ceil(log2 x)``): every rewrite keeps the same operations on the same operands, so
    the numbers are bit for bit those of the plan as printed."""
    from costmodel import fused_source

    body = fused_source.loop_body(steps, results, POWER_OF_TWO_INPUTS)
    args = ", ".join(["n", *(f"a_{x}" for x in inputs), *(f"c_{x}" for x in coefficients),
                      "steps", "modes", "slots", "out", "offset", "inexact"])
    pow2 = [x for x in POWER_OF_TWO_INPUTS if x in inputs]
    lines = [
        '"""Generated by costmodel.fused from the model\'s definitions: do not edit."""',
        "import math",
        "",
        "import numba",
        "import numpy as np",
        "",
        "from costmodel.fused import ceil_log2_jit as _ceil_log2",
        "from costmodel.fused import exp2_jit as _exp2",
        "from costmodel.fused import union_row_jit as union_row",
        "",
        "",
        "@numba.njit(cache=True, nogil=True, error_model='numpy')",
        f"def rows(start, stop, {args}):",
        *(f"    m_{x} = modes[{j}]" for j, x in enumerate(coefficients)),
        *(f"    u_{x} = steps[{j}]" for j, x in enumerate(inputs)),
        *(f"    s_{r} = slots[{r}]" for r in range(len(results))),
        *body.scratch,
        "    for i in range(start, stop):",
        *(f"        {x} = a_{x}[i * u_{x}]" for x in inputs),
        *(f"        _inv_{x} = 1.0 / {x}" for x in pow2),
        *(f"        if not _power_of_two({x}):\n            inexact[0] = 1" for x in pow2),
        *(f"        {x} = c_{x}[0 if m_{x} == 0 else (i if m_{x} == 2 else int(is_snp))]" for x in coefficients),
        *("        " + line for line in body.lines),
        "",
        "",
        "@numba.njit(cache=True, nogil=True, error_model='numpy')",
        "def _power_of_two(x):",
        "    if not (1.0 <= x <= 4611686018427387904.0) or x != np.floor(x):",
        "        return False",
        "    k = int(x)",
        "    return (k & (k - 1)) == 0",
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
