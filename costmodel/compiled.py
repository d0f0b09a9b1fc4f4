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
import sympy as sp

from costmodel import cache, parse
from costmodel.errors import InputError, closest
from costmodel.model import kernel, model_for, scenarios
from costmodel.model.union import new_pages
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


@dataclass(frozen=True)
class Compiled:
    """One compiled program: ``function(**inputs, **coefficients)`` → a tuple of outputs."""

    outputs: tuple[str, ...]
    form: str
    scenario: str
    function: object
    source: str

    def __call__(self, inputs: Mapping[str, np.ndarray], coefficients: Mapping[str, object]) -> dict[str, np.ndarray]:
        args = {n: inputs[n] for n in INPUTS}
        args.update({c: coefficients[c] for c in COEFFICIENTS})
        values = self.function(**args)
        shape = np.shape(inputs["memory_bytes"])
        return {n: np.broadcast_to(np.asarray(v, dtype=float), shape) for n, v in zip(self.outputs, values)}


def available_outputs(form: str = "default") -> list[str]:
    """Every name :func:`costmodel.evaluate.evaluate` can return: outputs, intermediates,
    and the splits by source (``splits_from_<source>``)."""
    model = model_for(form)
    return [*model.definitions, *(SOURCE_PREFIX + k for k in model.splits_by_source())]


#: What the generated program may refer to; a cached program is rebuilt in this namespace.
_NAMESPACE = {"numpy": np, "functools": functools, "new_pages": new_pages}


class _Printer(sp.printing.numpy.NumPyPrinter):
    """NumPy code with the union function and the quantities under their registry names."""

    def _print_NewPages(self, expr):
        return "new_pages(" + ", ".join(self._print(a) for a in expr.args) + ")"


def _program(outputs: Sequence[str], form: str, scenario: str) -> str:
    """The Python source of the straight-line program computing ``outputs``."""
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
    printer = _Printer({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": True})
    lines = ["def program(" + ", ".join(INPUTS + tuple(COEFFICIENTS)) + "):"]
    for name, expr in definitions.items():
        if name in needed:
            lines.append(f"    {name} = {printer.doprint(expr.xreplace(names))}")
    results = []
    for name, expr in targets.items():
        variable = f"out_{len(results)}"
        lines.append(f"    {variable} = {printer.doprint(expr.xreplace(names))}")
        results.append(variable)
    lines.append("    return (" + ", ".join(results) + ",)")
    return "\n".join(lines) + "\n"


def _function(source: str):
    namespace = dict(_NAMESPACE)
    exec(compile(source, "<costmodel compiled model>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["program"]


@lru_cache(maxsize=128)
def compile_outputs(outputs: tuple[str, ...], form: str = "default", scenario: str = "status_quo") -> Compiled:
    """The program computing ``outputs`` under ``scenario``; cached in memory and on disk
    (:mod:`costmodel.cache`), since printing it takes SymPy a moment that NumPy does not."""
    entry = cache.key("program", form, scenario, *outputs)
    source = cache.read("compiled", entry)
    if source is not None:
        try:
            return Compiled(tuple(outputs), form, scenario, _function(source), source)
        except Exception:  # a damaged entry is recomputed, never trusted
            pass
    source = _program(outputs, form, scenario)
    compiled = Compiled(tuple(outputs), form, scenario, _function(source), source)
    cache.write("compiled", entry, source)
    return compiled


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
    unique, inverse = np.unique(np.where(missing, -1.0, keys), axis=0, return_inverse=True)
    first = np.zeros(len(unique), dtype=np.intp)
    first[inverse.reshape(-1)[::-1]] = np.arange(len(keys))[::-1]
    unique = keys[first]
    values = np.array([compute(row) for row in unique], dtype=float).reshape(len(unique), -1)
    return values[inverse.reshape(-1)]


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
    if specs is None:
        specs = np.full(n, "", dtype=object)
    specs = np.array(["" if _blank(v) else (v if isinstance(v, str) else ";".join(d.spec() for d in v)) for v in specs],
                     dtype=object)
    both = (specs != "") & ~np.isnan(virtqueues)
    _check(virtqueues, both, "virtqueues", "either devices or the virtqueues shortcut, not both")
    spec_codes, spec_index = np.unique(specs.astype(str), return_inverse=True)
    parsed = [tuple(parse.device(d, f"devices {str(s)!r}") for d in s.split(";") if d) if s else None for s in spec_codes]

    resolved_specs: list[str] = []

    def devices_of(row):
        code, queues, boot_cpus = int(row[0]), row[1], int(row[2])
        found = resolve_devices(parsed[code], None if np.isnan(queues) else int(queues))
        sizes = device_allocations(found, boot_cpus)
        resolved_specs.append(devices_spec(found))
        return (sum(sizes), len(sizes), sum(kernel.virtqueue_count(d, boot_cpus) for d in found),
                len(resolved_specs) - 1)

    device = _grouped(np.column_stack([spec_index.reshape(-1), virtqueues, boot]), devices_of)
    specs = np.array(resolved_specs, dtype=object)[device[:, 3].astype(int)] if n else specs

    def units_per_atom(row):
        return kernel.percpu_units_per_atom(kernel.node_cpus(int(row[0]), int(row[1])), kernel.PERCPU_UNIT_MIN)

    workload = {}  # the run-time inputs (costmodel.workload): absent, the boot-only defaults
    for name, default in WORKLOAD_DEFAULTS.items():
        workload[name] = optional(name, rate, default)
        _check(workload[name], ~np.isfinite(workload[name]) | (workload[name] < 0), name, "a number ≥ 0")
    upa = _grouped(np.column_stack([vcpus, nodes]), units_per_atom)[:, 0]
    return {
        "memory_bytes": memory, "vcpus": vcpus, "numa_nodes": nodes, "lowmem_bytes": lowmem,
        "hugepage_bytes": hugepage, "is_snp": is_snp.astype(float), "swiotlb_request_bytes": np.nan_to_num(swiotlb),
        "device_bytes": device[:, 0], "device_allocations": device[:, 1], "percpu_units_per_atom": upa,
        "kaslr": kaslr, "svsm": svsm, "atomic_pools": pools, **workload,
        # the shape as given, resolved where the model resolves it (for frames and datasets)
        "platform": np.where(is_snp, "snp", "tdx"), "virtqueues": device[:, 2], "boot_vcpus": boot, "devices": specs,
    }

