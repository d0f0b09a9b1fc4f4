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
import pandas as pd
from scipy import optimize

from costmodel.calibration.values import Calibration, Origin, assumed
from costmodel.errors import InputError
from costmodel.files import sha256_file
from costmodel.model.variables import COEFFICIENTS, QUANTITIES
from costmodel.reference import DIRECTORY, REFERENCE_DATA

#: Inputs of the reference run that were not published, and the values assumed for them.
REFERENCE_ASSUMED_INPUTS = {
    "vcpus": (16, "not published; 16 vCPUs is a common shape for a 16 GiB guest"),
    "virtqueues": (None, "not published; derived as QEMU does: vCPUs + 3 = 19"),
}


def _reference_rows(path: Path) -> pd.DataFrame:
    """The reference runs (validated by :func:`costmodel.data.load`), unpublished inputs assumed."""
    from costmodel import data

    frame = data.load(path).reset_index(drop=True)
    vcpus, _ = REFERENCE_ASSUMED_INPUTS["vcpus"]
    frame["vcpus"] = frame["vcpus"].fillna(vcpus).astype(int)
    frame["virtqueues"] = frame["virtqueues"].astype("Float64").astype(float)  # NaN: derived
    return frame


#: (published column, model quantity it measures)
_REFERENCE_TARGETS = (
    ("splits", "splits"),
    ("merges", "merges"),
    ("conversion_cycles", "conversion_cycles"),
    ("split_merge_cycles", "split_merge_cycles"),
    ("split_merge_event_cycles", "split_merge_event_cycles"),
)


def reference_calibration(path: str | os.PathLike = REFERENCE_DATA, form: str = "default") -> Calibration:
    """Solve the ``from_reference`` coefficients so the model reproduces the reference.

    Each published figure gives one equation (relative residual); there are as many
    figures as solved coefficients, so the solution is exact (residuals ≈ 0, checked).
    The plain conversion op cost is taken as published (320 cycles).
    """
    from costmodel.compiled import compile_outputs, configurations

    path = Path(path)
    rows = _reference_rows(path)
    base = assumed().values
    if "conversion_op_cycles" in rows and rows["conversion_op_cycles"].notna().any():
        base["conversion_op_cycles"] = float(rows["conversion_op_cycles"].dropna().iloc[0])
    unknowns = [c for c in COEFFICIENTS if QUANTITIES[c].from_reference]
    arrays = configurations(rows[["memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "platform"]])
    targets = [(col, qty) for col, qty in _REFERENCE_TARGETS if col in rows]
    compiled = compile_outputs(tuple(q for _, q in targets), form, "status_quo")
    equations = [(i, q, float(rows[col][i])) for col, q in targets for i in range(len(rows)) if pd.notna(rows[col][i])]
    if len(equations) < len(unknowns):
        raise InputError(str(path), f"{len(equations)} published figures", f"at least {len(unknowns)} to solve {', '.join(unknowns)}")
    scale = np.array([QUANTITIES[u].default for u in unknowns])  # solve in units of the defaults

    def residuals(x):
        values = compiled(arrays, {**base, **dict(zip(unknowns, x * scale))})
        return np.array([values[q][i] / measured - 1.0 for i, q, measured in equations])

    lower = np.array([QUANTITIES[u].bounds[0] for u in unknowns]) / scale
    upper = np.array([QUANTITIES[u].bounds[1] for u in unknowns]) / scale
    solution = optimize.least_squares(residuals, np.ones(len(unknowns)), bounds=(lower, upper),
                                      xtol=1e-14, ftol=1e-14, gtol=1e-14, method="trf")
    worst = float(np.max(np.abs(residuals(solution.x))))
    if worst > 1e-6:
        raise RuntimeError(f"reference calibration did not reproduce {path.name}: worst relative residual {worst:.2e}")
    values = {**base, **dict(zip(unknowns, (solution.x * scale).tolist()))}
    solved = {*unknowns, "conversion_op_cycles"}  # the op cost is read from the reference too
    origin = {c: Origin.REFERENCE if c in solved else Origin.ASSUMED for c in COEFFICIENTS}
    provenance = {
        "method": "solved exactly from published figures",
        "data": _shown_path(path),
        "data_sha256": sha256_file(path),
        "assumed_inputs": {k: v[1] for k, v in REFERENCE_ASSUMED_INPUTS.items()},
        "max_relative_residual": float(f"{worst:.3g}"),
    }
    return Calibration.from_values(values, origin, form=form, provenance=provenance)


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
