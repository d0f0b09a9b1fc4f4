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
from costmodel.shape import SHAPE_COLUMNS, check_columns, device_allocations, devices_spec, resolve_devices
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


#: Below this many configurations the NumPy program runs (no kernel compile for small calls).
FUSED_MIN_ROWS = 50_000


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

    def __call__(self, inputs: Mapping[str, np.ndarray], coefficients: Mapping[str, object]) -> dict[str, np.ndarray]:
        """Outputs by name. A coefficient is a value, an array per configuration, or a pair
        ``(tdx, snp)`` chosen per configuration by ``is_snp``."""
        shape = np.shape(inputs["memory_bytes"])
        from costmodel import fused

        use = self.fused if self.fused is not None else int(np.prod(shape)) >= FUSED_MIN_ROWS
        if use and fused.available():
            return self._fused(inputs, coefficients, shape)
        args = {n: inputs[n] for n in INPUTS}
        args.update({c: _per_row(coefficients[c], inputs["is_snp"]) for c in COEFFICIENTS})
        values = self.function(**args)
        return {n: np.broadcast_to(np.asarray(v, dtype=float), shape) for n, v in zip(self.outputs, values)}

    def _fused(self, inputs, coefficients, shape) -> dict[str, np.ndarray]:
        from costmodel import fused

        kernel, every = fused_kernel(self.form, self.scenario)
        n = int(np.prod(shape))
        arrays = [np.ascontiguousarray(np.broadcast_to(np.asarray(inputs[x], dtype=float), shape)).reshape(-1)
                  for x in INPUTS]
        values, modes = fused.coefficient_arrays(coefficients, COEFFICIENTS, n)
        slots = np.full(len(every), -1, dtype=np.int64)
        for r, name in enumerate(self.outputs):
            slots[every.index(name)] = r
        out = np.empty((len(self.outputs), n))
        fused.run(kernel, n, *arrays, *values, modes, slots, out)
        return {name: out[r].reshape(shape) for r, name in enumerate(self.outputs)}


@lru_cache(maxsize=16)
def fused_kernel(form: str = "default", scenario: str = "status_quo"):
    """``(kernel, outputs)``: the fused loop over every output of :func:`available_outputs`
    (one compile per model version, form and scenario; numba caches it on disk)."""
    from costmodel import fused

    every = tuple(available_outputs(form))

    def generate():
        steps = plan(every, form, scenario)
        return fused.kernel_source(steps.steps, steps.results, INPUTS, COEFFICIENTS)

    return fused.kernel_for(generate, cache.key("fused", form, scenario)), every


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


def _blank(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def _parse_column(array: np.ndarray, parse_one, name: str, optional: bool = False) -> np.ndarray:
    """Numbers stay numbers (checked vectorised); text is parsed element by element."""
    if array.dtype.kind in "iuf":
        return array.astype(float)
    if array.dtype.kind == "b":
        return array.astype(float)
    out = np.empty(array.shape, dtype=float)
    for i, value in enumerate(array):
        if optional and _blank(value):
            out[i] = np.nan
        else:
            out[i] = parse_one(value, f"configuration {i}, {name}")
    return out


def _check(array: np.ndarray, bad: np.ndarray, name: str, expected: str):
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"configuration {i}, {name}", array[i].item() if hasattr(array[i], "item") else array[i], expected)


def _grouped(keys: np.ndarray, compute) -> np.ndarray:
    """``compute(key_row)`` once per distinct row of ``keys``, gathered back to every row."""
    # NaN (an unset optional input) never equals itself: np.unique would keep every such row
    # apart, so group on a sentinel and hand compute() the NaN back
    missing = np.isnan(keys)
    filled = np.where(missing, -1.0, keys)
    inverse = _dense_inverse(filled)
    if inverse is None:
        _, inverse = np.unique(filled, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    count = int(inverse.max()) + 1 if len(inverse) else 0
    first = np.zeros(count, dtype=np.intp)
    first[inverse[::-1]] = np.arange(len(keys))[::-1]
    unique = keys[first]
    values = np.array([compute(row) for row in unique], dtype=float).reshape(len(unique), -1)
    return values[inverse]


def _dense_inverse(keys: np.ndarray, limit: int = 1 << 24) -> np.ndarray | None:
    """Group numbers (in first-seen-free, sorted order like np.unique) without a sort when
    every column holds small whole numbers ≥ -1: one mixed-radix code per row and a table.
    None when the keys do not fit (the caller sorts)."""
    if not len(keys):
        return np.zeros(0, dtype=np.intp)
    low, high = keys.min(axis=0), keys.max(axis=0)
    spans = high - low + 1
    if not (np.all(np.isfinite(spans)) and np.prod(spans) <= limit and np.all(keys == np.round(keys))):
        return None
    code = np.zeros(len(keys), dtype=np.int64)
    for column, lo, span in zip(keys.T, low, spans):
        code = code * int(span) + (column - lo).astype(np.int64)
    present = np.zeros(int(np.prod(spans)), dtype=bool)
    present[code] = True
    table = np.cumsum(present) - 1  # rank of each present code: the order np.unique gives
    return table[code]


def _device_totals(devices, boot_cpus: int) -> tuple[int, int, int]:
    """Coherent bytes, allocations and virtqueues of ``devices`` at ``boot_cpus`` boot vCPUs."""
    sizes = device_allocations(devices, boot_cpus)
    return sum(sizes), len(sizes), sum(kernel.virtqueue_count(d, boot_cpus) for d in devices)


def _affine(totals, x: np.ndarray, compute) -> bool:
    """Fill ``totals`` (rows × 3) with ``compute(x)`` where every total is affine in x (the
    queues a device makes grow by a fixed set per boot vCPU or per virtqueue): two points
    and a third to check; False (nothing filled) when they are not on a line."""
    at = [np.array(compute(v), dtype=float) for v in (1, 2, 3)]
    slope = at[1] - at[0]
    if not np.array_equal(at[2] - at[1], slope):
        return False
    totals[:] = at[0] + (x[:, None] - 1) * slope
    return True


def _device_columns(parsed, spec_index, virtqueues, boot):
    """Per configuration: (coherent bytes, allocations, virtqueues) as columns, and the
    device specs in effect. Vectorised: per distinct spec, the totals are affine in the
    boot vCPUs (or, for the virtqueues shortcut, in the virtqueues)."""
    n = len(spec_index)
    totals = np.zeros((n, 3))
    specs = np.empty(n, dtype=object)
    shortcut = ~np.isnan(virtqueues)
    for code in np.unique(spec_index, return_index=True)[0]:  # (without return_*, NumPy 2.4 imports numpy.ma)
        devices = parsed[int(code)]
        rows = spec_index == code
        if devices is not None:
            groups = [(rows, lambda b, d=devices: _device_totals(d, b), boot, devices)]
        else:  # no specs: the virtqueues shortcut where given, else QEMU's default devices
            defaults = kernel.default_devices()
            groups = [(rows & shortcut, lambda q: _device_totals(resolve_devices(None, q), 1), virtqueues, None),
                      (rows & ~shortcut, lambda b: _device_totals(defaults, b), boot, defaults)]
        for mask, compute, x, found in groups:
            if not mask.any():
                continue
            part = np.zeros((int(mask.sum()), 3))
            if not _affine(part, x[mask], compute):
                part = _grouped(x[mask][:, None], lambda row: compute(int(row[0])))
            totals[mask] = part
            if found is not None:
                specs[mask] = devices_spec(found)
            else:
                queues, where = np.unique(x[mask], return_inverse=True)
                names = np.array([devices_spec(resolve_devices(None, int(q))) for q in queues], dtype=object)
                specs[mask] = names[where.reshape(-1)]
    return totals, specs


def configurations(configs) -> dict[str, np.ndarray]:
    """Validate VM shapes and resolve them to the model's inputs.

    ``configs`` is a DataFrame whose columns are fields of :class:`~costmodel.shape.VmShape`
    (``memory_bytes``, ``vcpus``, ``hugepage_bytes`` and ``platform`` required), or a
    mapping of those names to scalars or sequences. Sizes may be text (``16GiB``), devices
    ``;``-separated ``--device`` specs; empty or NaN optional columns take the defaults.
    Returns arrays keyed by every name of :data:`INPUTS`, and the shape's columns resolved:
    ``platform``, ``virtqueues`` (the devices' virtqueues), ``boot_vcpus``, ``devices`` (the
    device specs in effect); ``swiotlb_bytes`` is the model's output, the SWIOTLB the kernel
    ends up with.
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

    memory = _parse_column(raw["memory_bytes"], parse.size, "memory_bytes")
    _check(memory, ~np.isfinite(memory) | (memory <= 0), "memory_bytes", parse.SIZE_FORMS + " (> 0)")
    vcpus = _parse_column(raw["vcpus"], parse.count, "vcpus")
    _check(vcpus, ~(np.isfinite(vcpus) & (vcpus >= 1) & (vcpus == np.round(vcpus))), "vcpus", "a whole number ≥ 1")
    hugepage = _parse_column(raw["hugepage_bytes"], parse.hugepage, "hugepage_bytes")
    _check(hugepage, ~np.isin(hugepage, HUGEPAGE_SIZES), "hugepage_bytes", "one of 4K, 2M, 1G")
    platform = raw["platform"]
    is_snp = platform == "snp"
    if not (is_snp | (platform == "tdx")).all():  # lower-case only when needed: 1e6 strings cost
        platform = np.char.lower(platform.astype(str))
        _check(raw["platform"], ~np.isin(platform, parse.PLATFORMS), "platform", "one of " + ", ".join(parse.PLATFORMS))
        is_snp = platform == "snp"

    def optional(name, parse_one, default=np.nan):
        if name not in raw:
            return np.full(n, default)
        values = _parse_column(raw[name], parse_one, name, optional=True)
        return np.where(np.isnan(values), default, values)

    virtqueues = optional("virtqueues", parse.count)
    swiotlb = optional("swiotlb_bytes", parse.size)
    boot = optional("boot_vcpus", parse.count)
    nodes = optional("numa_nodes", parse.count, 1.0)
    lowmem = optional("lowmem_bytes", parse.size)
    kaslr = optional("kaslr", parse.boolean, 1.0)
    svsm = optional("svsm", parse.boolean, 0.0)
    pools = optional("atomic_pools", parse.boolean, 1.0)
    for name, values in (("virtqueues", virtqueues), ("boot_vcpus", boot), ("numa_nodes", nodes)):
        _check(values, ~np.isnan(values) & ((values < 1) | (values != np.round(values))), name, "a whole number ≥ 1")
    _check(swiotlb, swiotlb <= 0, "swiotlb_bytes", parse.SIZE_FORMS + " (> 0) or empty")
    check_columns({"memory_bytes": memory, "vcpus": vcpus, "hugepage_bytes": hugepage, "boot_vcpus": boot,
                   "numa_nodes": nodes, "lowmem_bytes": lowmem, "swiotlb_bytes": swiotlb, "svsm": svsm,
                   "platform": np.where(is_snp, "snp", "tdx")}, where="" if n > 1 else "")
    lowmem = np.where(np.isnan(lowmem), np.where(memory < kernel.Q35_LOWMEM_LIMIT, memory, kernel.Q35_LOWMEM_SPLIT),
                      lowmem)
    boot = np.where(np.isnan(boot), vcpus, boot)

    # devices: given specs, the virtqueues shortcut, or QEMU's default set
    specs = raw.get("devices")
    if specs is None:  # no devices column: one code for every row, no per-row work
        spec_codes, spec_index = np.array([""]), np.zeros(n, dtype=np.intp)
    else:
        specs = np.array(["" if _blank(v) else (v if isinstance(v, str) else ";".join(d.spec() for d in v))
                          for v in specs], dtype=object)
        both = (specs != "") & ~np.isnan(virtqueues)
        _check(virtqueues, both, "virtqueues", "either devices or the virtqueues shortcut, not both")
        spec_codes, spec_index = np.unique(specs.astype(str), return_inverse=True)
    parsed = [tuple(parse.device(d, f"devices {str(s)!r}") for d in s.split(";") if d) if s else None for s in spec_codes]

    device, specs = _device_columns(parsed, spec_index.reshape(-1), virtqueues, boot)

    workload = {}  # the run-time inputs (costmodel.workload): absent, the boot-only defaults
    for name, default in WORKLOAD_DEFAULTS.items():
        workload[name] = optional(name, rate, default)
        _check(workload[name], ~np.isfinite(workload[name]) | (workload[name] < 0), name, "a number ≥ 0")
    upa = kernel.percpu_units_per_atom_array(vcpus, nodes).astype(float)
    return {
        "memory_bytes": memory, "vcpus": vcpus, "numa_nodes": nodes, "lowmem_bytes": lowmem,
        "hugepage_bytes": hugepage, "is_snp": is_snp.astype(float), "swiotlb_request_bytes": np.nan_to_num(swiotlb),
        "device_bytes": device[:, 0], "device_allocations": device[:, 1], "percpu_units_per_atom": upa,
        "kaslr": kaslr, "svsm": svsm, "atomic_pools": pools, **workload,
        # the shape as given, resolved where the model resolves it (for frames and datasets)
        "platform": np.where(is_snp, "snp", "tdx"), "virtqueues": device[:, 2], "boot_vcpus": boot, "devices": specs,
    }

