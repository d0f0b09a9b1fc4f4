"""Calibrations: the numbers bound to the model's coefficients, with where they came from.

The default calibration is *derived by code* from the published reference measurements in
``costmodel/reference/`` (never typed in): the coefficients marked ``from_reference`` in
:mod:`costmodel.model.variables` are solved so that the model reproduces each published figure
exactly; the others keep their registry defaults (assumptions, each with its source). The
reference run's vCPU count was not published, so it is assumed
(:data:`REFERENCE_ASSUMED_INPUTS`).

A calibration file is JSON (sorted keys, stable float formatting) readable by ``predict``,
``formula`` and the reports; :mod:`costmodel.fitting.fit` writes fitted ones with intervals.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path


from costmodel import errors
from costmodel import __version__
from costmodel.files import atomic_write_text
from costmodel.errors import InputError
from costmodel.model.variables import COEFFICIENTS, QUANTITIES

FORMAT = "costmodel-calibration/1"


@dataclass
class Calibration:
    """Values for every coefficient of the model, with their origin and uncertainty.

    ``values`` maps each name of :data:`costmodel.model.variables.COEFFICIENTS` to a number in
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
                raise InputError("calibration coefficient", name, "one of " + ", ".join(errors.closest(name, COEFFICIENTS, 5)))
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


def load_or_default(path: str | os.PathLike | None) -> Calibration:
    """The calibration in ``path``, or the default when ``path`` is None or empty."""
    from costmodel.calibration.reference import default

    return Calibration.load(path) if path else default()
