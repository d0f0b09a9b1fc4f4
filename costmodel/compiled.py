"""The compiled model: closed forms lambdified once, and configurations resolved to arrays.

The expressions of :mod:`costmodel.model` are expanded once per (form, scenario, outputs),
compiled to one NumPy function with common-subexpression elimination, and cached in
memory and on disk (:mod:`costmodel.cache`). :func:`configurations` validates VM shapes
and broadcasts them to the arrays those functions take. Coefficients are passed in by the
caller: this module knows no calibration (:mod:`costmodel.evaluate` is the API that does).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache, reduce

import numpy as np
import sympy as sp

from costmodel import cache, errors, parse, units
from costmodel.errors import InputError
from costmodel.model import model_for, scenarios, swiotlb_rule
from costmodel.model.variables import COEFFICIENTS, symbol
from costmodel.shape import SHAPE_COLUMNS

#: The shape columns the current closed form takes (the placement inputs of VmShape join
#: when the closed form is rebuilt on them).
CONFIG_COLUMNS = tuple(c for c in SHAPE_COLUMNS if c in (
    "memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "platform", "swiotlb_bytes"))


#: QEMU's default virtqueues beyond one virtio-blk queue per vCPU: virtio-net rx, tx, ctrl.
NET_VIRTQUEUES = 3


#: Prefix of the per-source split outputs (``splits_from_swiotlb``, …).
SOURCE_PREFIX = "splits_from_"


#: The swiotlb override argument: 0 or NaN means "the kernel's rule".
_S_OVERRIDE = sp.Symbol("swiotlb_override", real=True)


_INPUT_ARGS = ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "is_snp")


#: The resolved arrays that identify a configuration: runs with equal keys are replicates.
KEY_COLUMNS = ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "is_snp", "swiotlb_override")


def configuration_keys(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """One row per configuration of :func:`configurations`' arrays, one column per key."""
    return np.column_stack([np.asarray(arrays[k], dtype=float) for k in KEY_COLUMNS])


def default_virtqueues(vcpus):
    """Virtqueues QEMU gives a guest by default: virtio-blk one per vCPU + virtio-net 3. [1]"""
    return np.asarray(vcpus) + NET_VIRTQUEUES


@dataclass(frozen=True)
class Compiled:
    """One compiled function: ``function(*inputs, swiotlb_override, *coefficients)``."""

    outputs: tuple[str, ...]
    form: str
    scenario: str
    function: object

    def __call__(self, inputs: Mapping[str, np.ndarray], coefficients: Mapping[str, float]) -> dict[str, np.ndarray]:
        args = [inputs[n] for n in _INPUT_ARGS] + [inputs["swiotlb_override"]]
        args += [coefficients[c] for c in COEFFICIENTS]
        values = self.function(*args)
        shape = np.shape(inputs["memory_bytes"])
        return {n: np.broadcast_to(np.asarray(v, dtype=float), shape) for n, v in zip(self.outputs, values)}


def available_outputs(form: str = "default") -> list[str]:
    """Every name :func:`evaluate` can return: outputs, intermediates, per-source splits."""
    model = model_for(form)
    return ["swiotlb_bytes", *model.definitions, *(SOURCE_PREFIX + k for k in model.splits_by_source())]


#: What lambdify's NumPy code may refer to; a cached function is rebuilt in this namespace.
_NAMESPACE = {**{k: getattr(np, k) for k in dir(np) if not k.startswith("_")}, "numpy": np, "reduce": reduce}


def _from_source(source: str):
    """Rebuild a lambdified function from its cached source."""
    namespace = dict(_NAMESPACE)
    exec(compile(source, "<costmodel cached model>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["_lambdifygenerated"]


def _cacheable_source(function) -> str | None:
    """The function's source, if every global it uses is the same object in _NAMESPACE."""
    names = function.__code__.co_names
    if all(n in _NAMESPACE and _NAMESPACE[n] is function.__globals__.get(n) for n in names if n in function.__globals__):
        return inspect.getsource(function)
    return None


@lru_cache(maxsize=128)
def compile_outputs(outputs: tuple[str, ...], form: str = "default", scenario: str = "status_quo") -> Compiled:
    """Expand and lambdify ``outputs`` under ``scenario``; cached in memory and on disk
    (:mod:`costmodel.cache`), since SymPy needs ~0.5 s for what NumPy runs in microseconds."""
    entry = cache.key("compiled", form, scenario, *outputs)
    source = cache.read("compiled", entry)
    if source is not None:
        try:
            return Compiled(tuple(outputs), form, scenario, _from_source(source))
        except Exception:  # a damaged entry is recomputed, never trusted
            pass
    model = model_for(form)
    overrides = dict(scenarios.get(scenario).overrides)
    by_source = model.splits_by_source()
    valid = available_outputs(form)
    unknown = [o for o in outputs if o not in valid]
    if unknown:
        raise InputError("outputs", unknown[0], "one of " + ", ".join(errors.closest(unknown[0], valid, 5)))
    exprs = []
    for name in outputs:
        if name.startswith(SOURCE_PREFIX):
            exprs.append(model.expand(by_source[name[len(SOURCE_PREFIX):]], overrides))
        else:
            exprs.append(model.expand(name, overrides))
    M, S = symbol("memory_bytes"), symbol("swiotlb_bytes")
    effective_s = sp.Piecewise((_S_OVERRIDE, _S_OVERRIDE > 0), (swiotlb_rule(M), True))
    with sp.evaluate(False):  # substitution only; see CostModel.expand
        exprs = [e.xreplace({S: effective_s}) for e in exprs]
    args = [symbol(n) for n in _INPUT_ARGS] + [_S_OVERRIDE] + [symbol(c) for c in COEFFICIENTS]
    function = sp.lambdify(args, exprs, modules="numpy", cse=True)
    source = _cacheable_source(function)
    if source is not None:
        cache.write("compiled", entry, source)
    return Compiled(tuple(outputs), form, scenario, function)


def _column(values, n: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 0:
        array = np.full(n, array.item(), dtype=array.dtype if array.dtype != object else object)
    if array.shape != (n,):
        raise InputError(name, f"{array.shape[0] if array.ndim else 1} values", f"{n} values, one per configuration")
    return array


def _parse_column(array: np.ndarray, parse, name: str, optional: bool = False) -> np.ndarray:
    """Numbers stay numbers (checked vectorised); text is parsed element by element."""
    if array.dtype.kind in "iufb" and array.dtype.kind != "b":
        return array.astype(float)
    out = np.empty(array.shape, dtype=float)
    for i, value in enumerate(array):
        if optional and (value is None or (isinstance(value, float) and np.isnan(value)) or value == ""):
            out[i] = np.nan
        else:
            out[i] = parse(value, f"configuration {i}, {name}")
    return out


def _check(array: np.ndarray, bad: np.ndarray, name: str, expected: str):
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"configuration {i}, {name}", array[i].item() if hasattr(array[i], "item") else array[i], expected)


def configurations(configs) -> dict[str, np.ndarray]:
    """Validate and broadcast configurations to equal-length arrays.

    ``configs`` is a DataFrame with :data:`CONFIG_COLUMNS`, or a mapping of those names to
    scalars or sequences. ``virtqueues`` and ``swiotlb_bytes`` may be missing or NaN:
    then derived (vCPUs + 3; the kernel's SWIOTLB rule). Sizes may be text (``16GiB``).
    Returns arrays keyed by column name, plus ``is_snp`` and ``swiotlb_override``.
    """
    if hasattr(configs, "columns") and hasattr(configs, "to_numpy"):  # a DataFrame (pandas not imported here)
        configs = {c: configs[c].to_numpy() for c in configs.columns}
    missing = [c for c in ("memory_bytes", "vcpus", "hugepage_bytes", "platform") if c not in configs]
    if missing:
        raise InputError("configuration", f"no {missing[0]}", "columns " + ", ".join(CONFIG_COLUMNS))
    lengths = {np.size(v) for v in configs.values() if np.ndim(v) > 0}
    n = max(lengths) if lengths else 1
    raw = {c: _column(configs[c], n, c) for c in CONFIG_COLUMNS if c in configs and configs[c] is not None}

    memory = _parse_column(raw["memory_bytes"], parse.size, "memory_bytes")
    _check(memory, ~(np.isfinite(memory) & (memory > 0)), "memory_bytes", parse.SIZE_FORMS + " (> 0)")
    vcpus = _parse_column(raw["vcpus"], parse.count, "vcpus")
    _check(vcpus, ~(np.isfinite(vcpus) & (vcpus >= 1) & (vcpus == np.round(vcpus))), "vcpus", "a whole number ≥ 1")
    if "virtqueues" in raw:
        queues = _parse_column(raw["virtqueues"], parse.count, "virtqueues", optional=True)
    else:
        queues = np.full(n, np.nan)
    queues = np.where(np.isnan(queues), default_virtqueues(vcpus), queues)
    _check(queues, ~((queues >= 1) & (queues == np.round(queues))), "virtqueues", "a whole number ≥ 1")
    hugepage = _parse_column(raw["hugepage_bytes"], parse.hugepage, "hugepage_bytes")
    _check(hugepage, ~np.isin(hugepage, units.HUGEPAGE_SIZES), "hugepage_bytes", "one of 4K, 2M, 1G")
    platform = raw["platform"]
    is_snp = platform == "snp"
    if not (is_snp | (platform == "tdx")).all():  # lower-case only when needed: 1e6 strings cost
        platform = np.char.lower(platform.astype(str))
        _check(raw["platform"], ~np.isin(platform, parse.PLATFORMS), "platform", "one of " + ", ".join(parse.PLATFORMS))
        is_snp = platform == "snp"
    if "swiotlb_bytes" in raw:
        swiotlb = _parse_column(raw["swiotlb_bytes"], parse.size, "swiotlb_bytes", optional=True)
        _check(swiotlb, swiotlb <= 0, "swiotlb_bytes", parse.SIZE_FORMS + " (> 0) or empty")
    else:
        swiotlb = np.full(n, np.nan)
    return {
        "memory_bytes": memory, "vcpus": vcpus, "virtqueues": queues, "hugepage_bytes": hugepage,
        "platform": platform, "is_snp": is_snp.astype(float),
        "swiotlb_override": np.nan_to_num(swiotlb, nan=0.0),
    }
