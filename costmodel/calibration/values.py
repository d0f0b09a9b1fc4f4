"""Calibrations: the numbers bound to the model's coefficients, with where they came from.

A :class:`Calibration` holds one :class:`Coefficient` per coefficient of the model (value,
origin, standard error, interval), the provenance of the whole, and one :class:`FitRecord`
per target fitted to measured data (what prediction intervals and extrapolation checks
need). The default calibration is solved by code from the published reference
(:mod:`costmodel.calibration.reference`); :mod:`costmodel.fitting` makes fitted ones.

A calibration file is JSON (sorted keys, stable float formatting) readable by ``predict``,
``formula`` and the reports; its format is written down in ``docs/fitting.md``.
"""

from __future__ import annotations

import enum
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from costmodel import __version__
from costmodel.calibration import schema
from costmodel.errors import Argument, InputError, closest
from costmodel.files import atomic_write_text
from costmodel.model.variables import COEFFICIENTS, QUANTITIES

FORMAT = "costmodel-calibration/2"
#: Files of the model before placement (ring locality, placement spans): refit, not read.
_OLD_FORMATS = ("costmodel-calibration/1",)
#: What a TDX prediction says when the calibration has no TDX coefficients of its own.
TDX_BORROWED = ("TDX prediction with SEV-SNP-calibrated coefficients: no TDX data was fitted "
                "(TDX's conversion path, secure-EPT split cost and firmware differ; fit TDX runs to replace them)")


class Origin(str, enum.Enum):
    """Where a coefficient's value came from."""

    #: solved from the published reference measurements
    REFERENCE = "reference"
    #: the registry's default (an assumption with its source)
    ASSUMED = "assumed"
    #: fitted to measured runs (with a standard error and interval)
    FITTED = "fitted"
    #: a fit depended on it but could not determine it, and kept the previous value
    HELD = "held"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Coefficient:
    """One coefficient's value in a calibration, with its origin and uncertainty.

    ``stderr`` is None for a fitted coefficient on a bound (its interval is one-sided);
    ``ci_low``/``ci_high`` bound the confidence interval at the fit's level. [unit of the
    coefficient, :attr:`unit`]
    """

    name: str
    value: float
    origin: Origin = Origin.ASSUMED
    stderr: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def unit(self) -> str:
        return QUANTITIES[self.name].unit

    @property
    def has_interval(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None

    def to_dict(self) -> dict:
        entry = {"value": self.value, "unit": self.unit, "origin": self.origin.value}
        if self.stderr is not None:
            entry["stderr"] = self.stderr
        if self.ci_low is not None:
            entry["ci_low"] = self.ci_low
        if self.ci_high is not None:
            entry["ci_high"] = self.ci_high
        return entry


@dataclass(frozen=True)
class FitRecord:
    """What a fit to one target leaves in a calibration, for prediction intervals and
    extrapolation checks on later predictions.

    ``free`` are the coefficients fitted (in the order of ``covariance``), ``residual_scale``
    the residual standard deviation (a fraction of the value for ``errors="relative"``),
    ``dof`` its degrees of freedom, ``input_ranges`` the measured range of each input.
    """

    target: str
    form: str
    scenario: str
    errors: str
    level: float
    free: tuple[str, ...]
    values: dict
    covariance: tuple[tuple[float, ...], ...]
    residual_scale: float
    dof: int
    input_ranges: dict
    data: str
    data_sha256: str
    n_rows: int
    held: tuple[str, ...]
    model_version: str
    metrics: dict
    #: The platform of the runs and of the coefficient set the fit wrote: ``snp``, ``tdx``,
    #: or ``all`` (runs of both platforms fitted with one shared set, written as SEV-SNP's).
    platform: str = "all"

    @property
    def key(self) -> str:
        """How the calibration files it: the target, prefixed ``tdx:`` for a TDX fit."""
        return self.target if self.platform in ("snp", "all") else f"{self.platform}:{self.target}"

    def to_dict(self) -> dict:
        return {"platform": self.platform, "target": self.target, "form": self.form, "scenario": self.scenario, "errors": self.errors,
                "level": self.level, "free": list(self.free), "values": dict(self.values),
                "covariance": [list(row) for row in self.covariance], "residual_scale": self.residual_scale,
                "dof": self.dof, "input_ranges": dict(self.input_ranges), "data": self.data,
                "data_sha256": self.data_sha256, "n_rows": self.n_rows, "held": list(self.held),
                "model_version": self.model_version, "metrics": dict(self.metrics)}

    @classmethod
    def from_dict(cls, data: Mapping, where: str) -> "FitRecord":
        """A fit record from a calibration file, every field checked (:mod:`~costmodel.calibration.schema`)."""
        from costmodel.model import FORMS
        from costmodel.model.scenarios import SCENARIOS
        from costmodel.model.variables import OUTPUTS
        from costmodel.parse import PLATFORMS

        if not isinstance(data, Mapping):
            raise InputError(where, schema.kind(data), "an object describing one fit")
        missing = [k for k in ("target", "free", "covariance", "residual_scale", "dof") if k not in data]
        if missing:
            raise InputError(where, f"no {missing[0]!r}", "a fit record with target, free, covariance, residual_scale, dof")
        free = schema.name_list(data["free"], COEFFICIENTS, f"{where}.free")
        covariance = data["covariance"]
        if (not isinstance(covariance, list) or len(covariance) != len(free)
                or not all(isinstance(row, list) and len(row) == len(free) for row in covariance)):
            raise InputError(f"{where}.covariance", "a malformed matrix", f"a {len(free)}×{len(free)} list of lists of numbers")
        rows = tuple(tuple(_number(v, f"{where}.covariance") for v in row) for row in covariance)
        return cls(
            target=schema.one_of(data["target"], OUTPUTS, f"{where}.target"),
            form=schema.one_of(data.get("form"), FORMS, f"{where}.form", "default"),
            scenario=schema.one_of(data.get("scenario"), SCENARIOS, f"{where}.scenario", "status_quo"),
            errors=schema.one_of(data.get("errors"), ("relative", "absolute"), f"{where}.errors", "relative"),
            level=schema.number(data.get("level", 0.95), f"{where}.level", 0.0, 1.0),
            free=free, values=schema.values_of(data.get("values"), QUANTITIES, f"{where}.values"), covariance=rows,
            residual_scale=schema.number(data["residual_scale"], f"{where}.residual_scale", 0.0),
            dof=schema.whole(data["dof"], f"{where}.dof"),
            input_ranges=schema.input_ranges(data.get("input_ranges"), f"{where}.input_ranges"),
            data=schema.text(data.get("data"), f"{where}.data", ""),
            data_sha256=schema.sha256(data.get("data_sha256"), f"{where}.data_sha256"),
            n_rows=schema.whole(data.get("n_rows", 0), f"{where}.n_rows"),
            held=schema.name_list(data.get("held"), COEFFICIENTS, f"{where}.held", []),
            model_version=schema.text(data.get("model_version"), f"{where}.model_version", ""),
            metrics=schema.metrics(data.get("metrics"), f"{where}.metrics"),
            platform=schema.one_of(data.get("platform"), ("all", *PLATFORMS), f"{where}.platform", "all"))


def _number(value, where: str) -> float:
    return schema.number(value, where)


@dataclass
class Calibration:
    """A value for every coefficient of the model, with origin and uncertainty.

    Parameters
    ----------
    coefficients : mapping of name to Coefficient
        One per name of :data:`costmodel.model.variables.COEFFICIENTS`: the SEV-SNP set, and
        TDX's too unless ``tdx`` is given.
    form : str
        The model form (:data:`costmodel.model.FORMS`) the values belong to.
    provenance : dict
        How the calibration was made: method, data file and its SHA-256, assumptions.
    fits : mapping of key to FitRecord
        The fits this calibration carries, by :attr:`FitRecord.key`, in the order made.
    tdx : mapping of name to Coefficient, optional
        TDX's own coefficient set (domain.md §9: "SNP-fitted coefficients do not transfer to
        TDX"). Without it TDX predictions use the SEV-SNP set and say so
        (:data:`TDX_BORROWED`).
    """

    coefficients: dict[str, Coefficient]
    form: str = "default"
    provenance: dict = field(default_factory=dict)
    fits: dict[str, FitRecord] = field(default_factory=dict)
    #: The target fitted last (its record is written again as ``extra.fit``).
    last_fit: str | None = None
    tdx: dict[str, Coefficient] | None = None

    def __post_init__(self):
        self.coefficients = _checked(self.coefficients, "calibration")
        if self.tdx is not None:
            self.tdx = _checked(self.tdx, "calibration (TDX)")

    @classmethod
    def from_values(cls, values: Mapping[str, float], origin: Origin | Mapping[str, Origin] = Origin.ASSUMED,
                    **kwargs) -> "Calibration":
        """A calibration of plain values, all of one origin (or one per name)."""
        def origin_of(name):
            return Origin(origin[name]) if isinstance(origin, Mapping) else Origin(origin)
        return cls({n: Coefficient(n, v, origin_of(n)) for n, v in values.items()}, **kwargs)

    @property
    def values(self) -> dict[str, float]:
        """Every coefficient's value (the SEV-SNP set), by name, in registry order."""
        return {name: c.value for name, c in self.coefficients.items()}

    def coefficients_for(self, platform: str) -> dict[str, Coefficient]:
        """The coefficient set a platform's predictions use."""
        return self.tdx if platform == "tdx" and self.tdx is not None else self.coefficients

    def values_for(self, platform: str) -> dict[str, float]:
        return {name: c.value for name, c in self.coefficients_for(platform).items()}

    @property
    def tdx_borrowed(self) -> bool:
        """True when TDX predictions use the SEV-SNP set (no TDX coefficients)."""
        return self.tdx is None

    def values_by_row(self, is_snp) -> dict:
        """Each coefficient's value per configuration: the SEV-SNP value where ``is_snp`` is
        1, TDX's where 0 (scalars when both platforms share one set)."""
        if self.tdx is None:
            return self.values
        import numpy as np

        mask = np.asarray(is_snp) > 0
        return {n: np.where(mask, c.value, self.tdx[n].value) for n, c in self.coefficients.items()}

    def origin(self, name: str) -> Origin:
        return self.coefficients[name].origin

    # --- files ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-ready dict (coefficients in registry order, everything else sorted)."""
        extra = {}
        if self.fits:
            extra["fits"] = {k: r.to_dict() for k, r in sorted(self.fits.items())}
            last = self.last_fit if self.last_fit in self.fits else next(reversed(self.fits))
            extra["fit"] = self.fits[last].to_dict()
        return {"format": FORMAT, "form": self.form, "model_version": __version__,
                "coefficients": {name: self.coefficients[name].to_dict() for name in COEFFICIENTS},
                **({"tdx_coefficients": {n: self.tdx[n].to_dict() for n in COEFFICIENTS}} if self.tdx else {}),
                "provenance": self.provenance, "extra": extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: a failed write leaves any existing file as it was."""
        return atomic_write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, data: dict, where: str = "calibration") -> "Calibration":
        if isinstance(data, dict) and data.get("format") in _OLD_FORMATS:
            raise InputError(where, f"format {data['format']!r}", f"a calibration of this model (format {FORMAT!r}): "
                             "files of the model before placement cannot be read; fit the runs again (costmodel fit)")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = f"format {data.get('format')!r}" if isinstance(data, dict) else schema.kind(data)
            raise InputError(where, found, f"a costmodel calibration file (format {FORMAT!r})")
        coefficients = data.get("coefficients")
        if not isinstance(coefficients, dict):
            raise InputError(f"{where}: coefficients", schema.kind(coefficients), "an object of name → {value, …}")
        from costmodel.model import FORMS

        form = schema.one_of(data.get("form"), FORMS, f"{where}: form", "default")
        read = _read_set(coefficients, f"{where}: coefficients")
        tdx = data.get("tdx_coefficients")
        if tdx is not None and not isinstance(tdx, dict):
            raise InputError(f"{where}: tdx_coefficients", schema.kind(tdx), "an object of name → {value, …}")
        tdx = _read_set(tdx, f"{where}: tdx_coefficients") if tdx is not None else None
        schema.text(data.get("model_version"), f"{where}: model_version", "")
        provenance = schema.provenance(data.get("provenance"), f"{where}: provenance")
        extra = schema.mapping(data.get("extra"), f"{where}: extra", "an object (fits, fit)", default={})
        fits = {}
        records = schema.mapping(extra.get("fits"), f"{where}: extra.fits", "an object of target → fit record", default={})
        for key, record in records.items():
            read_record = FitRecord.from_dict(record, f"{where}: extra.fits.{key}")
            fits[read_record.key] = read_record
        last = None
        if extra.get("fit") is not None:
            last_record = FitRecord.from_dict(extra["fit"], f"{where}: extra.fit")
            fits.setdefault(last_record.key, last_record)
            last = last_record.key
        return cls(read, form, provenance=provenance, fits=fits, last_fit=last, tdx=tdx)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        """Read a calibration file; errors name the file and what is wrong."""
        path = Path(path)
        if not str(path).strip():
            raise InputError(Argument("calibration"), str(path), "a calibration file's path (leave the option out for the default)")
        return cls.from_dict(schema.read_json(path), where=str(path))

    def with_values(self, **values: float) -> "Calibration":
        """A copy with some coefficient values replaced (origin ``assumed``, no interval, for those)."""
        coefficients = dict(self.coefficients)
        for name, value in values.items():
            coefficients[name] = Coefficient(name, value, Origin.ASSUMED)
        return Calibration(coefficients, self.form, dict(self.provenance), dict(self.fits), self.last_fit, self.tdx)


def _checked(coefficients: Mapping[str, Coefficient], where: str) -> dict[str, Coefficient]:
    """A full coefficient set, in registry order, values finite floats."""
    missing = [c for c in COEFFICIENTS if c not in coefficients]
    if missing:
        raise InputError(where, f"no value for {missing[0]}", "a value for every coefficient: " + ", ".join(COEFFICIENTS))
    for name, coefficient in coefficients.items():
        if name not in QUANTITIES or QUANTITIES[name].kind != "coefficient":
            raise InputError(f"{where} coefficient", name, "one of " + ", ".join(closest(name, COEFFICIENTS, 5)))
        value = coefficient.value
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise InputError(f"{where} coefficient {name}", value, "a finite number")
    return {c: replace(coefficients[c], value=float(coefficients[c].value)) for c in COEFFICIENTS}


def _read_set(entries: Mapping, where: str) -> dict[str, Coefficient]:
    """One coefficient set of a file: every entry's value within the registry's bounds,
    its standard error and interval finite, its unit the registry's."""
    read = {}
    for name, entry in entries.items():
        here = f"{where}.{name}"
        if name not in QUANTITIES or QUANTITIES[name].kind != "coefficient":
            raise InputError(where, name, "coefficient names: " + ", ".join(closest(name, COEFFICIENTS, 5)))
        if not isinstance(entry, dict) or "value" not in entry:
            raise InputError(here, schema.kind(entry), "an object with a 'value'")
        quantity = QUANTITIES[name]
        low, high = quantity.bounds
        value = schema.number(entry["value"], f"{here}.value", low, high,
                              f"a finite number in [{quantity.unit}] within the model's bounds")
        if "unit" in entry and entry["unit"] != quantity.unit:
            raise InputError(f"{here}.unit", entry["unit"], f"{quantity.unit!r} (the unit the model uses)")
        origin = schema.one_of(entry.get("origin"), [o.value for o in Origin], f"{here}.origin", "assumed")
        stderr = schema.optional_number(entry.get("stderr"), f"{here}.stderr", 0.0)
        ci_low = schema.optional_number(entry.get("ci_low"), f"{here}.ci_low")
        ci_high = schema.optional_number(entry.get("ci_high"), f"{here}.ci_high")
        if ci_low is not None and ci_high is not None and ci_low > ci_high:
            raise InputError(here, f"ci_low {ci_low:g} > ci_high {ci_high:g}", "ci_low ≤ ci_high")
        read[name] = Coefficient(name, value, Origin(origin), stderr, ci_low, ci_high)
    return read


def assumed() -> Calibration:
    """Every coefficient at its registry default (no data used)."""
    return Calibration.from_values({c: QUANTITIES[c].default for c in COEFFICIENTS}, Origin.ASSUMED,
                                   provenance={"method": "registry defaults"})
