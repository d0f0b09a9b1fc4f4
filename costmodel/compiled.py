"""The compiled model: the closed form as a straight-line NumPy program, and VM shapes
resolved to the arrays it takes.

:func:`compile_outputs` prints the named definitions of :mod:`costmodel.model` that the
requested outputs need, in dependency order, one NumPy assignment each (every named
quantity computed once, as the formula card reads), under a scenario's substitutions;
the program is cached in memory and on disk (:mod:`costmodel.cache`).
:func:`configurations` validates VM shapes (:func:`costmodel.shape.check_columns`) and
resolves them to the model's inputs: the q35 low-memory split, the devices' coherent bytes,
the per-CPU units per atom. Coefficients are passed in by the caller, a value per
coefficient or an array per configuration: this module knows no calibration
(:mod:`costmodel.evaluate` is the API that does).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from costmodel import cache, parse
from costmodel.errors import InputError, closest
from costmodel.model import kernel, scenarios
from costmodel.model.union_values import new_pages
from costmodel.model.variables import COEFFICIENTS, QUANTITIES, of_kind
from costmodel.shape import (
    SHAPE_COLUMNS,
    check_columns,
    device_allocations,
    devices_spec,
    factorize,
    resolve_devices,
    units_per_atom,
)
from costmodel.units import HUGEPAGE_SIZES
from costmodel.workload import WORKLOAD_DEFAULTS, WORKLOAD_INPUTS, rate

#: Columns describing one configuration: the fields of :class:`~costmodel.shape.VmShape`.
CONFIG_COLUMNS = SHAPE_COLUMNS
#: The model's inputs, resolved per configuration (registry order): the shape's, then the
#: workload's (:data:`costmodel.workload.WORKLOAD_INPUTS`, optional columns).
INPUTS = tuple(q.name for q in of_kind("input"))
#: Prefix of the per-source split outputs (``splits_from_swiotlb``, …).
SOURCE_PREFIX = "splits_from_"
#: The resolved inputs that identify a configuration: runs with equal keys are replicates.
KEY_COLUMNS = INPUTS


def configuration_keys(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """One row per configuration of :func:`configurations`' arrays, one column per key."""
    return np.column_stack([np.asarray(arrays[k], dtype=float) for k in KEY_COLUMNS])


#: What :func:`costmodel.evaluate.evaluate` returns by default: the SWIOTLB, then every output.
DEFAULT_OUTPUTS = ("swiotlb_bytes", *(q.name for q in of_kind("output")))
#: Below this many configurations the NumPy program runs (no kernel compile for small calls).
FUSED_MIN_ROWS = 50_000
#: Configurations per chunk of the NumPy program: each of its temporaries is 128 KiB,
#: within a core's L2 cache, instead of 8 MB per temporary at 10⁶ configurations.
CHUNK_ROWS = 16384


@dataclass(frozen=True)
class Compiled:
    """One compiled program: ``function(**inputs, **coefficients)`` → a tuple of outputs.
    Large grids run the fused numba loop of the same model instead (:mod:`costmodel.fused`)
    when numba is installed; ``fused`` True or False forces one or the other."""

    outputs: tuple[str, ...]
    form: str
    scenario: str
    function: object
    source: str
    fused: bool | None = None

    def __call__(self, inputs: Mapping[str, np.ndarray], coefficients: Mapping[str, object],
                 out: np.ndarray | None = None, offset: int = 0) -> dict[str, np.ndarray]:
        """Outputs by name. A coefficient is a value, an array per configuration, or a pair
        ``(tdx, snp)`` chosen per configuration by ``is_snp``. Large grids are computed in
        chunks of :data:`CHUNK_ROWS` configurations (the NumPy program's temporaries stay
        cache-sized) into one array; ``out``, C-contiguous (outputs × columns), receives a 1-D
        grid's outputs in columns ``[offset, offset + n)``, and they are returned as views."""
        shape = np.shape(inputs["memory_bytes"])
        from costmodel import fused

        n = int(np.prod(shape))
        if out is not None and not (out.ndim == 2 and out.shape[0] == len(self.outputs) and 0 <= offset
                                    and offset + n <= out.shape[1] and out.flags.c_contiguous):
            raise ValueError(f"out: {out.shape} for {len(self.outputs)} outputs of {n} configurations at {offset}")
        use = self.fused if self.fused is not None else n >= FUSED_MIN_ROWS
        if use and fused.available():
            return self._fused(inputs, coefficients, shape, out, offset)
        if len(shape) != 1 or (n <= CHUNK_ROWS and out is None):
            return self._numpy(inputs, coefficients, shape)
        out, offset = (np.empty((len(self.outputs), n)), 0) if out is None else (out, offset)
        for start in range(0, n, CHUNK_ROWS):
            stop = min(n, start + CHUNK_ROWS)
            part = {x: _rows(inputs[x], start, stop, n) for x in INPUTS}
            values = self._numpy(part, {c: _rows(v, start, stop, n) for c, v in coefficients.items()}, (stop - start,))
            for r, name in enumerate(self.outputs):
                out[r, offset + start:offset + stop] = values[name]
        return {name: out[r, offset:offset + n] for r, name in enumerate(self.outputs)}

    def _numpy(self, inputs, coefficients, shape) -> dict[str, np.ndarray]:
        args = {n: inputs[n] for n in INPUTS}
        args.update({c: _per_row(coefficients[c], inputs["is_snp"]) for c in COEFFICIENTS})
        values = self.function(**args)
        return {n: np.broadcast_to(np.asarray(v, dtype=float), shape) for n, v in zip(self.outputs, values)}

    def _fused(self, inputs, coefficients, shape, out=None, offset: int = 0) -> dict[str, np.ndarray]:
        from costmodel import fused

        kernel, every = fused_kernel(self.form, self.scenario, self.outputs if self.outputs == DEFAULT_OUTPUTS else None)
        n = int(np.prod(shape))
        given = out
        out, offset = (np.empty((len(self.outputs), n)), 0) if out is None else (out, offset)
        if not fused.call(kernel, every, self.outputs, [inputs[x] for x in INPUTS], [coefficients[c] for c in COEFFICIENTS],
                          shape, out, offset):  # an input the kernel's exact shortcuts do not hold for
            return Compiled(self.outputs, self.form, self.scenario, self.function, self.source, False)(
                inputs, coefficients, given, offset)
        return {name: out[r, offset:offset + n].reshape(shape) for r, name in enumerate(self.outputs)}


@lru_cache(maxsize=16)
def fused_kernel(form: str = "default", scenario: str = "status_quo", outputs: tuple[str, ...] | None = None):
    """``(kernel, outputs)``: the fused loop over ``outputs``, by default every output of
    :func:`available_outputs` (one compile per model version, form, scenario and outputs;
    numba caches it on disk). :class:`Compiled` uses :data:`DEFAULT_OUTPUTS`' own kernel (a
    sixth less work per configuration) and the kernel of every output for other choices."""
    from costmodel import fused

    every = tuple(available_outputs(form)) if outputs is None else tuple(outputs)

    def generate():
        steps = plan(every, form, scenario)
        return fused.kernel_source(steps.steps, steps.results, INPUTS, COEFFICIENTS)

    key = cache.key("fused", form, scenario) if outputs is None else cache.key("fused", form, scenario, *outputs)
    return fused.kernel_for(generate, key), every


def _rows(value, start: int, stop: int, n: int):
    """Rows ``[start, stop)`` of an input or coefficient given per configuration; a value,
    a ``(tdx, snp)`` pair or an array of another length is passed as it is."""
    if isinstance(value, tuple) or np.ndim(value) != 1 or len(value) != n:
        return value
    return value[start:stop]


def _per_row(value, is_snp):
    """A coefficient for the NumPy program: a ``(tdx, snp)`` pair becomes an array per row."""
    if isinstance(value, tuple):
        return np.where(np.asarray(is_snp) > 0, value[1], value[0])
    return value


def available_outputs(form: str = "default") -> list[str]:
    """Every name :func:`costmodel.evaluate.evaluate` can return: outputs, intermediates,
    and the splits by source (``splits_from_<source>``)."""
    from costmodel.model import model_for  # the closed form (SymPy): only when a program is generated

    model = model_for(form)
    return [*model.definitions, *(SOURCE_PREFIX + k for k in model.splits_by_source())]


#: What the generated program may refer to; a cached program is rebuilt in this namespace.
_NAMESPACE = {"numpy": np, "functools": functools, "new_pages": new_pages}


def _printer():
    """A NumPy printer that prints the union function as :func:`new_pages`."""
    from sympy.printing.numpy import NumPyPrinter

    class Printer(NumPyPrinter):
        def _print_NewPages(self, expr):
            return "new_pages(" + ", ".join(self._print(a) for a in expr.args) + ")"

    return Printer({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": True})


@dataclass(frozen=True)
class Plan:
    """What a program computes, in dependency order: the named definitions the outputs
    need (``(name, expression)`` over symbols named as the registry names them), then the
    outputs' expressions. Both code generators (NumPy here, the fused loop in
    :mod:`costmodel.fused`) print from a plan, so the definitions are the one source."""

    steps: tuple[tuple[str, object], ...]  # (name, SymPy expression)
    results: tuple[object, ...]


def plan(outputs: Sequence[str], form: str, scenario: str) -> Plan:
    """The :class:`Plan` computing ``outputs`` under ``scenario``."""
    import sympy as sp

    from costmodel.model import model_for

    model = model_for(form)
    overrides = dict(scenarios.get(scenario).overrides)
    definitions = model.definitions_under(overrides)
    by_source = model.splits_by_source()
    valid = available_outputs(form)
    unknown = [o for o in outputs if o not in valid]
    if unknown:
        raise InputError("outputs", unknown[0], "one of " + ", ".join(closest(unknown[0], valid, 5)))
    targets = {}
    for name in outputs:
        if name.startswith(SOURCE_PREFIX):
            targets[name] = by_source[name[len(SOURCE_PREFIX):]].xreplace(model._bound(overrides))
        else:
            targets[name] = QUANTITIES[name].symbol
    names = {q.symbol: sp.Symbol(n) for n, q in QUANTITIES.items()}
    needed: set[str] = set()

    def need(expr):
        for sym in expr.free_symbols:
            name = str(names.get(sym, sym))
            if name in definitions and name not in needed:
                needed.add(name)
                need(definitions[name])

    for expr in targets.values():
        need(expr)
    steps = tuple((name, expr.xreplace(names)) for name, expr in definitions.items() if name in needed)
    return Plan(steps, tuple(expr.xreplace(names) for expr in targets.values()))


def _program(outputs: Sequence[str], form: str, scenario: str) -> str:
    """The Python source of the straight-line NumPy program computing ``outputs``."""
    steps = plan(outputs, form, scenario)
    printer = _printer()
    lines = ["def program(" + ", ".join(INPUTS + tuple(COEFFICIENTS)) + "):"]
    for name, expr in steps.steps:
        lines.append(f"    {name} = {printer.doprint(expr)}")
    results = []
    for expr in steps.results:
        variable = f"out_{len(results)}"
        lines.append(f"    {variable} = {printer.doprint(expr)}")
        results.append(variable)
    lines.append("    return (" + ", ".join(results) + ",)")
    return "\n".join(lines) + "\n"


def _function(source: str):
    namespace = dict(_NAMESPACE)
    exec(cache.code(source, "<costmodel compiled model>"), namespace)  # noqa: S102 - our own generated code
    return namespace["program"]


@lru_cache(maxsize=128)
def compile_outputs(outputs: tuple[str, ...], form: str = "default", scenario: str = "status_quo",
                    fused: bool | None = None) -> Compiled:
    """The program computing ``outputs`` under ``scenario``; cached in memory and on disk
    (:mod:`costmodel.cache`), since printing it takes SymPy a moment that NumPy does not.
    ``fused``: see :class:`Compiled`."""
    entry = cache.key("program", form, scenario, *outputs)
    source = cache.read("compiled", entry)
    function = None
    if source is not None:
        try:
            function = _function(source)
        except Exception:  # a damaged entry is recomputed, never trusted
            source = None
    if source is None:
        source = _program(outputs, form, scenario)
        function = _function(source)
        cache.write("compiled", entry, source)
    return Compiled(tuple(outputs), form, scenario, function, source, fused)


# --- configurations -------------------------------------------------------------------------------
def _column(values, n: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 0:
        array = np.full(n, array.item(), dtype=array.dtype if array.dtype != object else object)
    if array.shape != (n,):
        raise InputError(name, f"{array.shape[0] if array.ndim else 1} values", f"{n} values, one per configuration")
    return array


def _blank(value) -> bool:  # an unset optional cell
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def _parse_column(array: np.ndarray, parse_one, name: str, optional: bool = False, first: int = 0) -> np.ndarray:
    """Numbers stay numbers (checked vectorised); text is parsed once per distinct value.
    A value that does not parse raises the error of its first row, as a row-by-row parse would."""
    if array.dtype.kind in "iufb":
        return array.astype(float)
    uniques, codes = factorize(array)
    parsed = np.empty(len(uniques), dtype=float)
    bad = np.zeros(len(uniques), dtype=bool)
    for j, value in enumerate(uniques):
        if optional and _blank(value):
            parsed[j] = np.nan
            continue
        try:
            parsed[j] = parse_one(value, name)
        except InputError:
            bad[j] = True
    if bad.any():
        i = int(np.flatnonzero(bad[codes])[0])
        parse_one(array[i], f"configuration {first + i}, {name}")  # raises: the same message, the first row
    return parsed[codes]


def _check(array: np.ndarray, bad: np.ndarray, name: str, expected: str, first: int = 0):
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        found = array[i].item() if hasattr(array[i], "item") else array[i]
        raise InputError(f"configuration {first + i}, {name}", found, expected)


def _distinct(x: np.ndarray, table: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
    """``(values, inverse)`` of whole numbers ≥ 1 as np.unique gives them; by a table instead
    of a sort when every value is at most ``table``."""
    if len(x) and x.max() <= table:
        present = np.zeros(int(x.max()) + 1, dtype=bool)
        codes = x.astype(np.intp)
        present[codes] = True
        return np.flatnonzero(present).astype(float), (np.cumsum(present) - 1)[codes]
    values, inverse = np.unique(x, return_inverse=True)
    return values, inverse.reshape(-1)


def _grouped(x: np.ndarray, compute) -> np.ndarray:
    """``compute(v)`` (a row of totals) once per distinct whole number v of ``x``, gathered
    back to every row."""
    values, inverse = _distinct(x)
    return np.array([compute(int(v)) for v in values], dtype=float).reshape(len(values), -1)[inverse]


def _device_totals(devices, boot_cpus: int) -> tuple[int, int, int]:
    """Coherent bytes, allocations and virtqueues of ``devices`` at ``boot_cpus`` boot vCPUs."""
    sizes = device_allocations(devices, boot_cpus)
    return sum(sizes), len(sizes), sum(kernel.virtqueue_count(d, boot_cpus) for d in devices)


def _line(compute) -> tuple[np.ndarray, np.ndarray] | None:
    """``(at 1, slope)`` when every total of ``compute(x)`` is affine in x (the queues a
    device makes grow by a fixed set per boot vCPU or per virtqueue): two points and a third
    to check; None when they are not on a line."""
    at = [np.array(compute(v), dtype=float) for v in (1, 2, 3)]
    slope = at[1] - at[0]
    return (at[0], slope) if np.array_equal(at[2] - at[1], slope) else None


def _device_columns(parsed, spec_index, virtqueues, boot):
    """Per configuration: (coherent bytes, allocations, virtqueues) as rows of a (3, n)
    array, and the device specs in effect. Vectorised: one group per distinct spec (affine in
    the boot vCPUs) and one for the virtqueues shortcut (affine in the virtqueues); each
    group's line is computed once and every row is ``at 1 + (x - 1) × slope``."""
    n, k = len(spec_index), len(parsed)
    group = spec_index.astype(np.intp, copy=True)
    shortcut = ~np.isnan(virtqueues)
    blank = [j for j, d in enumerate(parsed) if d is None]
    if blank:  # rows without a spec: the virtqueues shortcut where given (group k), else QEMU's defaults
        group[shortcut & (spec_index == blank[0])] = k
    x = np.where(group == k, virtqueues, boot)
    present = np.zeros(k + 1, dtype=bool)
    present[group] = True
    start, slope = np.zeros((k + 1, 3)), np.zeros((k + 1, 3))
    names = np.empty(k + 1, dtype=object)
    curved = []  # groups whose totals are not on a line: computed per distinct x
    for g in np.flatnonzero(present):
        if g < k:
            devices = parsed[g] if parsed[g] is not None else kernel.default_devices()
            names[g] = devices_spec(devices)

            compute = functools.partial(_device_totals, devices)
        else:
            compute = lambda queues: _device_totals(resolve_devices(None, queues), 1)  # the shortcut: one device
        line = _line(compute)
        if line is None:
            curved.append((g, compute))
        else:
            start[g], slope[g] = line
    totals = np.empty((3, n))
    above = x - 1
    for c in range(3):  # take() of a contiguous column: start[group, c] (2-D indexing) is 5x slower
        np.multiply(above, np.ascontiguousarray(slope[:, c]).take(group), out=totals[c])
        np.add(np.ascontiguousarray(start[:, c]).take(group), totals[c], out=totals[c])
    for g, compute in curved:
        mask = group == g
        totals[:, mask] = _grouped(x[mask], compute).T
    specs = names[group]
    if present[k]:  # the shortcut's spec names its virtqueues
        mask = group == k
        queues, where = _distinct(x[mask])
        spelled = np.array([devices_spec(resolve_devices(None, int(q))) for q in queues], dtype=object)
        specs[mask] = spelled[where]
    return totals, specs


def _platform_column(platform: np.ndarray, first: int = 0) -> np.ndarray:
    """``is_snp`` per configuration: each distinct cell checked once (any case of ``snp``,
    ``tdx``); the error names the first row holding a value that is neither."""
    uniques, codes = factorize(platform)
    lowered = [str(u).lower() for u in uniques]
    bad = np.array([u not in parse.PLATFORMS for u in lowered], dtype=bool)
    _check(platform, bad[codes], "platform", "one of " + ", ".join(parse.PLATFORMS), first)
    return np.array([u == "snp" for u in lowered], dtype=bool)[codes]


def configurations(configs, *, first_row: int = 0) -> dict[str, np.ndarray]:
    """Validate VM shapes and resolve them to the model's inputs.

    ``configs`` is a DataFrame whose columns are fields of :class:`~costmodel.shape.VmShape`
    (``memory_bytes``, ``vcpus``, ``hugepage_bytes`` and ``platform`` required), or a
    mapping of those names to scalars or sequences. Sizes may be text (``16GiB``), devices
    ``;``-separated ``--device`` specs; empty or NaN optional columns take the defaults.
    Returns arrays keyed by every name of :data:`INPUTS`, and the shape's columns resolved:
    ``platform``, ``virtqueues`` (the devices' virtqueues), ``boot_vcpus``, ``devices`` (the
    device specs in effect); ``swiotlb_bytes`` is the model's output, the SWIOTLB the kernel
    ends up with. Errors name the configuration by its row, counted from ``first_row`` (a
    piece of a larger grid names the grid's row).
    """
    if hasattr(configs, "columns") and hasattr(configs, "to_numpy"):  # a DataFrame (pandas not imported here)
        configs = {c: configs[c].to_numpy() for c in configs.columns}
    missing = [c for c in ("memory_bytes", "vcpus", "hugepage_bytes", "platform") if c not in configs]
    if missing:
        raise InputError("configuration", f"no {missing[0]}", "columns " + ", ".join(CONFIG_COLUMNS))
    lengths = {np.size(v) for v in configs.values() if v is not None and np.ndim(v) > 0}
    n = max(lengths) if lengths else 1
    raw = {c: _column(configs[c], n, c) for c in (*CONFIG_COLUMNS, *WORKLOAD_INPUTS)
           if c in configs and configs[c] is not None}

    memory = _parse_column(raw["memory_bytes"], parse.size, "memory_bytes", first=first_row)
    _check(memory, ~np.isfinite(memory) | (memory <= 0), "memory_bytes", parse.SIZE_FORMS + " (> 0)", first_row)
    vcpus = _parse_column(raw["vcpus"], parse.count, "vcpus", first=first_row)
    _check(vcpus, ~(np.isfinite(vcpus) & (vcpus >= 1) & (vcpus == np.round(vcpus))), "vcpus", "a whole number ≥ 1",
           first_row)
    hugepage = _parse_column(raw["hugepage_bytes"], parse.hugepage, "hugepage_bytes", first=first_row)
    _check(hugepage, ~np.isin(hugepage, HUGEPAGE_SIZES), "hugepage_bytes", "one of 4K, 2M, 1G", first_row)
    is_snp = _platform_column(raw["platform"], first_row)
    platform = np.where(is_snp, "snp", "tdx")

    def optional(name, parse_one, default=np.nan, view=False):
        if name not in raw:  # ``view``: a read-only view of one value (the run-time inputs, not returned as columns)
            return np.broadcast_to(np.float64(default), (n,)) if view else np.full(n, default)
        values = _parse_column(raw[name], parse_one, name, optional=True, first=first_row)
        unset = np.isnan(values) if raw[name].dtype.kind not in "iub" else None  # whole numbers: none unset
        return np.where(unset, default, values) if unset is not None and unset.any() else values

    virtqueues = optional("virtqueues", parse.count)
    swiotlb = optional("swiotlb_bytes", parse.size, view=True)
    boot = optional("boot_vcpus", parse.count)
    nodes = optional("numa_nodes", parse.count, 1.0)
    lowmem = optional("lowmem_bytes", parse.size)
    kaslr = optional("kaslr", parse.boolean, 1.0)
    svsm = optional("svsm", parse.boolean, 0.0)
    pools = optional("atomic_pools", parse.boolean, 1.0)
    for name, values in (("virtqueues", virtqueues), ("boot_vcpus", boot), ("numa_nodes", nodes)):
        _check(values, ~np.isnan(values) & ((values < 1) | (values != np.round(values))), name, "a whole number ≥ 1",
               first_row)
    _check(swiotlb, swiotlb <= 0, "swiotlb_bytes", parse.SIZE_FORMS + " (> 0) or empty", first_row)
    check_columns({"memory_bytes": memory, "vcpus": vcpus, "hugepage_bytes": hugepage, "boot_vcpus": boot,
                   "numa_nodes": nodes, "lowmem_bytes": lowmem, "swiotlb_bytes": swiotlb, "svsm": svsm,
                   "platform": platform}, where="", first=first_row)
    lowmem = np.where(np.isnan(lowmem), np.where(memory < kernel.Q35_LOWMEM_LIMIT, memory, kernel.Q35_LOWMEM_SPLIT),
                      lowmem)
    boot = np.where(np.isnan(boot), vcpus, boot)

    # devices: given specs, the virtqueues shortcut, or QEMU's default set
    specs = raw.get("devices")
    if specs is None:  # no devices column: one code for every row, no per-row work
        spec_codes, spec_index = [""], np.zeros(n, dtype=np.intp)
    else:  # each distinct cell once: its spec text; then each distinct spec parsed once
        cells, cell_index = factorize(specs)
        texts = ["" if _blank(v) else (v if isinstance(v, str) else ";".join(d.spec() for d in v)) for v in cells]
        spec_codes, text_index = np.unique(np.array(texts, dtype=str), return_inverse=True)
        spec_index = text_index.reshape(-1)[cell_index]
        given = (spec_codes != "")[spec_index]
        _check(virtqueues, given & ~np.isnan(virtqueues), "virtqueues",
               "either devices or the virtqueues shortcut, not both", first_row)
    parsed = [tuple(parse.device(d, f"devices {str(s)!r}") for d in s.split(";") if d) if s else None for s in spec_codes]

    device, specs = _device_columns(parsed, spec_index.reshape(-1), virtqueues, boot)

    workload = {}  # the run-time inputs (costmodel.workload): absent, the boot-only defaults
    for name, default in WORKLOAD_DEFAULTS.items():
        workload[name] = optional(name, rate, default, view=True)
        if name in raw:  # the defaults need no check
            values = workload[name]
            _check(values, ~np.isfinite(values) | (values < 0), name, "a number ≥ 0", first_row)
    upa = units_per_atom(vcpus, nodes)
    return {
        "memory_bytes": memory, "vcpus": vcpus, "numa_nodes": nodes, "lowmem_bytes": lowmem,
        "hugepage_bytes": hugepage, "is_snp": is_snp.astype(float), "swiotlb_request_bytes": np.nan_to_num(swiotlb) if "swiotlb_bytes" in raw else np.broadcast_to(0.0, (n,)),
        "device_bytes": device[0], "device_allocations": device[1], "percpu_units_per_atom": upa,
        "kaslr": kaslr, "svsm": svsm, "atomic_pools": pools, **workload,
        # the shape as given, resolved where the model resolves it (for frames and datasets)
        "platform": platform, "virtqueues": device[2], "boot_vcpus": boot, "devices": specs,
    }

