"""Calibrations: the numbers bound to the model's coefficients, with where they came from.

The default calibration is *derived by code* from the published reference measurements in
``data/reference/`` (never typed in): the coefficients marked ``from_reference`` in
:mod:`costmodel.variables` are solved so that the model reproduces each published figure
exactly; the others keep their registry defaults (assumptions, each with its source). The
reference run's vCPU count was not published, so it is assumed
(:data:`REFERENCE_ASSUMED_INPUTS`).

A calibration file is JSON (sorted keys, stable float formatting) readable by ``predict``,
``formula`` and the reports; :mod:`costmodel.fit` writes fitted ones with intervals.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from costmodel import __version__, units
from costmodel.files import atomic_write_text
from costmodel.units import InputError
from costmodel.variables import COEFFICIENTS, QUANTITIES

FORMAT = "costmodel-calibration/1"
REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DATA = REPO_ROOT / "data" / "reference" / "roth-2025-07.csv"

#: Inputs of the reference run that were not published, and the values assumed for them.
REFERENCE_ASSUMED_INPUTS = {
    "vcpus": (16, "not published; 16 vCPUs is a common shape for a 16 GiB guest"),
    "virtqueues": (None, "not published; derived as QEMU does: vCPUs + 3 = 19"),
}


@dataclass
class Calibration:
    """Values for every coefficient of the model, with their origin and uncertainty.

    ``values`` maps each name of :data:`costmodel.variables.COEFFICIENTS` to a number in
    the coefficient's unit. ``origin`` says, per coefficient, ``reference`` (solved from the
    published numbers), ``assumed`` (registry default), ``fitted`` or ``held`` (fit could
    not determine it and kept the previous value). ``stderr``, ``ci_low``, ``ci_high`` are
    filled by fitting. ``extra`` carries what a fit needs for prediction intervals and
    extrapolation checks (covariance, residual scale, fitted input ranges).
    """

    values: dict[str, float]
    form: str = "default"
    origin: dict[str, str] = field(default_factory=dict)
    stderr: dict[str, float] = field(default_factory=dict)
    ci_low: dict[str, float] = field(default_factory=dict)
    ci_high: dict[str, float] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        missing = [c for c in COEFFICIENTS if c not in self.values]
        if missing:
            raise InputError("calibration", f"no value for {missing[0]}", "a value for every coefficient: " + ", ".join(COEFFICIENTS))
        for name, value in self.values.items():
            if name not in QUANTITIES or QUANTITIES[name].kind != "coefficient":
                raise InputError("calibration coefficient", name, "one of " + ", ".join(units.closest(name, COEFFICIENTS, 5)))
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise InputError(f"calibration coefficient {name}", value, "a finite number")
        self.values = {k: float(self.values[k]) for k in COEFFICIENTS}

    # --- files ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-ready dict (coefficients in registry order, everything else sorted)."""
        coefficients = {}
        for name in COEFFICIENTS:
            entry = {"value": self.values[name], "unit": QUANTITIES[name].unit,
                     "origin": self.origin.get(name, "assumed")}
            for key, table in (("stderr", self.stderr), ("ci_low", self.ci_low), ("ci_high", self.ci_high)):
                if name in table:
                    entry[key] = table[name]
            coefficients[name] = entry
        return {"format": FORMAT, "form": self.form, "model_version": __version__,
                "coefficients": coefficients, "provenance": self.provenance, "extra": self.extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: a failed write leaves any existing file as it was."""
        return atomic_write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, data: dict, where: str = "calibration") -> "Calibration":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise InputError(where, f"format {found!r}", f"a costmodel calibration file (format {FORMAT!r})")
        coefficients = data.get("coefficients")
        if not isinstance(coefficients, dict):
            raise InputError(f"{where}: coefficients", type(coefficients).__name__, "an object of name → {value, …}")
        from costmodel.model import FORMS

        form = data.get("form", "default")
        if form not in FORMS:
            raise InputError(f"{where}: form", form, "one of " + ", ".join(FORMS))
        values, origin, tables = {}, {}, {"stderr": {}, "ci_low": {}, "ci_high": {}}
        for name, entry in coefficients.items():
            if not isinstance(entry, dict) or "value" not in entry:
                raise InputError(f"{where}: coefficients.{name}", entry, "an object with a 'value'")
            values[name] = entry["value"]
            origin[name] = entry.get("origin", "assumed")
            for key, table in tables.items():
                if key in entry:
                    table[name] = entry[key]
        return cls(values=values, form=form, origin=origin, provenance=data.get("provenance", {}),
                   extra=data.get("extra", {}), **tables)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        """Read a calibration file; errors name the file and what is wrong."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as error:
            raise InputError("--calibration", str(path), f"a readable calibration file ({error.strerror})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}:{error.lineno}:{error.colno}", error.msg, "valid JSON") from None
        return cls.from_dict(data, where=str(path))

    def with_values(self, **values: float) -> "Calibration":
        """A copy with some coefficient values replaced (origin 'assumed' for those)."""
        return Calibration({**self.values, **values}, self.form, {**self.origin, **{k: "assumed" for k in values}},
                           dict(self.stderr), dict(self.ci_low), dict(self.ci_high), dict(self.provenance), dict(self.extra))


def assumed() -> Calibration:
    """Every coefficient at its registry default (no data used)."""
    return Calibration({c: QUANTITIES[c].default for c in COEFFICIENTS},
                       origin={c: "assumed" for c in COEFFICIENTS},
                       provenance={"method": "registry defaults"})


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
    from costmodel.evaluate import compile_outputs, configurations

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
    origin = {c: ("reference" if c in unknowns else "assumed") for c in COEFFICIENTS}
    origin["conversion_op_cycles"] = "reference"
    provenance = {
        "method": "solved exactly from published figures",
        "data": str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path),
        "data_sha256": _sha256(path),
        "assumed_inputs": {k: v[1] for k, v in REFERENCE_ASSUMED_INPUTS.items()},
        "max_relative_residual": float(f"{worst:.3g}"),
    }
    return Calibration(values, form, origin, provenance=provenance)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=4)
def default(form: str = "default") -> Calibration:
    """The default calibration: :func:`reference_calibration`, cached per process and on
    disk under a key of the code and the reference data's SHA-256 (:mod:`costmodel.cache`)."""
    from costmodel import cache

    entry = cache.key("calibration", form, _sha256(REFERENCE_DATA))
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
