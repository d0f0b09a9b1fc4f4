"""The default calibration: solved by code from the published reference measurements.

The coefficients marked ``from_reference`` in :mod:`costmodel.model.variables` are solved so
that the model reproduces each published figure of ``costmodel/reference/`` exactly; the
others keep their registry defaults (assumptions, each with its source). The reference
run's vCPU count was not published, so it is assumed (:data:`REFERENCE_ASSUMED_INPUTS`).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from costmodel.calibration.values import Calibration, Origin, assumed
from costmodel.errors import InputError
from costmodel.files import sha256_file
from costmodel.model.variables import COEFFICIENTS, QUANTITIES
from costmodel.reference import DIRECTORY, REFERENCE_DATA

#: Inputs of the reference run that were not published, and the values assumed for them.
REFERENCE_ASSUMED_INPUTS = {
    "vcpus": (16, "not published; 16 vCPUs is a common shape for a 16 GiB guest"),
    "devices": (None, "not published; QEMU's usual guest: one virtio-blk (a queue per vCPU) and one virtio-net"),
}
#: Published counts solve the coefficients at the smallest hugepage size reported; at larger
#: sizes they check the placement (the 1 GiB run's 6 splits and 2 merges are not fitted).
COUNTS = ("splits", "merges")
#: (published column, what the model computes for it), for the equations and the checks.
_FIGURES = (
    ("splits", "splits"),
    ("merges", "merges"),
    ("conversion_cycles", "conversion_cycles"),
    ("split_merge_cycles", "split_merge_cycles"),
    ("split_merge_event_cycles", "split_merge_event_cycles"),
    ("split_merge_to_op_ratio", "split_merge_to_op_ratio"),
    ("conversion_op_cycles", "conversion_op_cycles"),
)
#: A published single sample, kept as a check (domain.md §9: the average op is set by the ratio).
_CHECK_ONLY = ("conversion_op_cycles",)


def _reference_rows(path: Path):
    """The reference runs (validated by :func:`costmodel.data.load`), unpublished inputs assumed."""
    from costmodel import data

    frame = data.load(path).reset_index(drop=True)
    vcpus, _ = REFERENCE_ASSUMED_INPUTS["vcpus"]
    frame["vcpus"] = frame["vcpus"].fillna(vcpus).astype(int)
    return frame


def _model_value(name: str, values: dict, coefficients: dict, i: int) -> float:
    if name == "split_merge_to_op_ratio":
        return values["split_merge_event_cycles"][i] / coefficients["conversion_op_cycles"]
    if name == "conversion_op_cycles":
        return coefficients["conversion_op_cycles"]
    return values[name][i]


def reference_calibration(path: str | os.PathLike = REFERENCE_DATA, form: str = "default") -> Calibration:
    """Solve the ``from_reference`` coefficients so the model reproduces the reference.

    Each published figure used as an equation gives a relative residual; there are as many
    as solved coefficients (the unexplained and transient page counts from the 2 MiB run's
    splits and merges, the event cost's two parts from the 7 % share and the 1 GiB event, the
    average conversion op from the "~100×" ratio, the unexplained conversion ops from the
    total cycles), so the solution is exact (residuals ≈ 0, checked). The other published
    figures (the 1 GiB run's counts, the 320-cycle sample) are recorded as checks.
    """
    # pandas and SciPy only here, on a cache miss: a warm `costmodel predict` reads the cached result
    import pandas as pd
    from scipy import optimize

    from costmodel.compiled import compile_outputs, configurations

    path = Path(path)
    rows = _reference_rows(path)
    base = assumed().values
    unknowns = [c for c in COEFFICIENTS if QUANTITIES[c].from_reference]
    columns = [c for c in ("platform", "memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "swiotlb_bytes")
               if c in rows]
    arrays = configurations({c: rows[c].astype(object).where(rows[c].notna(), None).to_numpy() if c != "platform"
                             else rows[c].astype(str).to_numpy() for c in columns})
    smallest = float(np.min(arrays["hugepage_bytes"]))
    equations, checks = [], []
    for column, name in _FIGURES:
        if column not in rows:
            continue
        for i in range(len(rows)):
            if pd.isna(rows[column][i]):
                continue
            figure = (i, column, name, float(rows[column][i]))
            is_check = column in _CHECK_ONLY or (column in COUNTS and arrays["hugepage_bytes"][i] > smallest)
            (checks if is_check else equations).append(figure)
    if len(equations) < len(unknowns):
        raise InputError(str(path), f"{len(equations)} published figures", f"at least {len(unknowns)} to solve {', '.join(unknowns)}")
    outputs = ("splits", "merges", "conversion_cycles", "split_merge_cycles", "split_merge_event_cycles")
    compiled = compile_outputs(outputs, form, "status_quo")
    scale = np.array([QUANTITIES[u].default for u in unknowns])  # solve in units of the defaults

    def evaluate(x):
        coefficients = {**base, **dict(zip(unknowns, x * scale))}
        return compiled(arrays, coefficients), coefficients

    def residuals(x):
        values, coefficients = evaluate(x)
        return np.array([_model_value(name, values, coefficients, i) / measured - 1.0
                         for i, _, name, measured in equations])

    lower = np.array([QUANTITIES[u].bounds[0] for u in unknowns]) / scale
    upper = np.array([QUANTITIES[u].bounds[1] for u in unknowns]) / scale
    solution = optimize.least_squares(residuals, np.ones(len(unknowns)), bounds=(lower, upper),
                                      xtol=1e-14, ftol=1e-14, gtol=1e-14, method="trf")
    worst = float(np.max(np.abs(residuals(solution.x))))
    if worst > 1e-6:
        raise RuntimeError(f"reference calibration did not reproduce {path.name}: worst relative residual {worst:.2e}")
    values, coefficients = evaluate(solution.x)
    origin = {c: Origin.REFERENCE if c in unknowns else Origin.ASSUMED for c in COEFFICIENTS}
    hugepage = {i: numbers_label(arrays["hugepage_bytes"][i]) for i in range(len(rows))}
    provenance = {
        "method": "solved exactly from published figures",
        "data": _shown_path(path),
        "data_sha256": sha256_file(path),
        "assumed_inputs": {k: v[1] for k, v in REFERENCE_ASSUMED_INPUTS.items()},
        "max_relative_residual": float(f"{worst:.3g}"),
        "checks": {f"{hugepage[i]} {column}": {"published": measured,
                                                "model": float(f"{_model_value(name, values, coefficients, i):.6g}")}
                   for i, column, name, measured in checks},
    }
    return Calibration.from_values(coefficients, origin, form=form, provenance=provenance)


def numbers_label(hugepage_bytes: float) -> str:
    from costmodel.render.numbers import format_hugepage

    return format_hugepage(int(hugepage_bytes))


def _shown_path(path: Path) -> str:
    """A shipped reference file by its place in the package (the same in a checkout and
    installed); any other file as given."""
    resolved = path.resolve()
    if resolved.is_relative_to(DIRECTORY.resolve()):
        return "costmodel/reference/" + resolved.relative_to(DIRECTORY.resolve()).as_posix()
    return str(path)


@lru_cache(maxsize=4)
def default(form: str = "default") -> Calibration:
    """The default calibration: :func:`reference_calibration`, cached per process and on
    disk under a key of the code and the reference data's SHA-256 (:mod:`costmodel.cache`)."""
    from costmodel import cache

    entry = cache.key("calibration", form, sha256_file(REFERENCE_DATA))
    text = cache.read("calibration", entry)
    if text is not None:
        try:
            return Calibration.from_dict(json.loads(text))
        except (ValueError, InputError):  # a damaged entry is recomputed, never trusted
            pass
    derived = reference_calibration(REFERENCE_DATA, form)
    cache.write("calibration", entry, derived.to_json())
    return derived


def load_or_default(path: str | os.PathLike | None) -> Calibration:
    """The calibration in ``path``, or the default when ``path`` is None or empty."""
    return Calibration.load(path) if path else default()
