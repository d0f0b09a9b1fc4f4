"""A discovered formula: its final fit, intervals, predictions, and the model file.

The search (:mod:`costmodel.discover.search`) picks the terms; :func:`fit_final` fits their
coefficients to every measurement (weighted least squares; relative errors weight each
measurement by the inverse of its configuration's mean), and thresholds of clamps are
refined continuously within the gap between measured values that the search found.
Covariances come from the project's one finite-difference Jacobian
(:func:`costmodel.uncertainty.jacobian`) and the residual scale; intervals use the t
quantile with the fit's degrees of freedom. Thresholds of ceilings and steps are held at the
simplest value of the interval the data leave open (that interval is reported) and are
not in the covariance.

:class:`Discovered` is what ``costmodel discover`` prints and writes (``-o MODEL.json``);
:func:`load` reads it back for ``costmodel formula --model`` and the report notebook.
"""

from __future__ import annotations

import json
import keyword
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from costmodel import __version__
from costmodel.discover.space import DomainTerm, latex_name, term_from_dict
from costmodel.errors import Argument, InputError
from costmodel.files import atomic_write_text
from costmodel.render.numbers import json_safe

#: Confidence level of every interval.
LEVEL = 0.95
#: The model file's format name and version.
FORMAT, VERSION = "costmodel-discover", 1
#: Residual scales below this (relative, or of the data's RMS) are float64 rounding.
SCALE_FLOOR = 1e-9


@dataclass
class Coefficient:
    """A fitted parameter: a term's coefficient or a clamp's threshold, with its 95 % interval."""

    name: str
    term: str
    value: float
    stderr: float
    ci_low: float
    ci_high: float


@dataclass
class Prediction:
    """The formula at one point: value and 95 % prediction interval of a new measurement, and
    the inputs outside the measured range."""

    at: dict
    value: float
    pi_low: float
    pi_high: float
    extrapolation: list = field(default_factory=list)


@dataclass
class Alternative:
    """A runner-up formula and how it scored."""

    formula_sympy: str
    formula: str
    cv_error: float
    score: float
    parameters: int


@dataclass
class Discovered:
    """A formula found by ``costmodel discover``, with everything needed to use and cite it."""

    target: str
    inputs: tuple
    symbols: tuple
    terms: tuple
    coefficients: list
    #: names of the parameters in ``covariance`` order (coefficients, then fitted thresholds)
    parameters: list
    covariance: np.ndarray
    #: residual scale of one measurement: a fraction of the value (relative) or [target unit]
    residual_scale: float
    dof: int
    errors: str
    #: what an absolute error is measured against (the data's RMS) [target unit]
    scale: float
    input_ranges: dict
    cv_error: float
    score: float
    noise: float | None = None
    lack_of_fit: dict | None = None
    alternatives: list = field(default_factory=list)
    predictions: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)

    # -- evaluation -----------------------------------------------------------------------------

    @property
    def values(self) -> np.ndarray:
        """The parameter vector (coefficients, then fitted thresholds)."""
        return np.array([c.value for c in self.coefficients])

    def matrix(self, at) -> np.ndarray:
        """Points as an array (one row each, inputs in order) from mappings or an array."""
        if isinstance(at, np.ndarray):
            return np.atleast_2d(np.asarray(at, dtype=float))
        return np.array([[float(point[name]) for name in self.inputs] for point in at], dtype=float)

    def evaluate(self, x: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """The formula at the rows of ``x`` with parameters ``values`` (default: the fitted ones)."""
        values = self.values if values is None else np.asarray(values, dtype=float)
        return evaluate_terms(self.terms, values, x)

    def predict(self, at) -> list[Prediction]:
        """Value and 95 % prediction interval at each point (mappings of input name → value)."""
        from scipy import stats

        from costmodel.uncertainty import jacobian

        x = self.matrix(at)
        check_domain(self.terms, self.inputs, x, Argument("at"))
        center = self.evaluate(x)
        if self.dof > 0 and np.all(np.isfinite(self.covariance)):
            g = jacobian(lambda v: self.evaluate(x, v), self.parameters, self.values)
            variance = np.einsum("ij,jk,ik->i", g, self.covariance, g)
            noise = self.residual_scale * (np.abs(center) if self.errors == "relative" else self.scale)
            half = float(stats.t.ppf(0.5 + LEVEL / 2, self.dof)) * np.sqrt(np.maximum(variance, 0) + noise**2)
        else:
            half = np.full(len(center), np.nan)
        out = []
        for i, row in enumerate(x):
            outside = [n for n, v in zip(self.inputs, row)
                       if v < self.input_ranges[n][0] * (1 - 1e-12) or v > self.input_ranges[n][1] * (1 + 1e-12)]
            out.append(Prediction(dict(zip(self.inputs, map(float, row))), float(center[i]),
                                  float(center[i] - half[i]), float(center[i] + half[i]), outside))
        return out

    # -- writing ----------------------------------------------------------------------------------

    def formula(self, style: str = "sympy", digits: int | None = None) -> str:
        """The formula as SymPy text (full precision), ``text`` or ``latex`` (``digits`` significant)."""
        n = len(self.terms)
        return write_formula(self.terms, [c.value for c in self.coefficients[:n]], self.inputs, self.symbols,
                             style, digits)

    def to_dict(self) -> dict:
        out = {
            "format": FORMAT, "version": VERSION, "costmodel": __version__,
            "target": self.target, "inputs": list(self.inputs), "symbols": list(self.symbols),
            "formula_sympy": self.formula("sympy"), "formula": self.formula("text", 4),
            "latex": self.formula("latex", 4),
            "terms": [t.to_dict() for t in self.terms],
            "coefficients": [asdict(c) for c in self.coefficients],
            "parameters": list(self.parameters), "covariance": np.asarray(self.covariance).tolist(),
            "residual_scale": self.residual_scale,
            "residual_scale_unit": "fraction of the value" if self.errors == "relative" else "unit of the target",
            "dof": self.dof, "level": LEVEL, "errors": self.errors, "scale": self.scale,
            "input_ranges": {k: list(v) for k, v in self.input_ranges.items()},
            "cv_error": self.cv_error, "score": self.score, "noise": self.noise, "lack_of_fit": self.lack_of_fit,
            "alternatives": [asdict(a) for a in self.alternatives],
            "predictions": [asdict(p) for p in self.predictions],
            "warnings": list(self.warnings), "data": self.data, "search": self.search,
        }
        return json_safe(out)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model file (JSON) atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")


def evaluate_terms(terms, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Σ c_k · term_k(x), with the fitted thresholds of clamps after the coefficients in ``values``."""
    n = len(terms)
    out = np.zeros(len(x))
    extra = n
    for k, term in enumerate(terms):
        if isinstance(term, DomainTerm) and term.kind in ("min", "max"):
            term = term.with_threshold(values[extra])
            extra += 1
        out = out + values[k] * term.values(x)
    return out


def check_domain(terms, inputs, x: np.ndarray, where) -> None:
    """Inputs a term takes the log or a fractional power of must be positive."""
    for j, name in enumerate(inputs):
        needs = any(not isinstance(t, DomainTerm) and any(f.input == j and (f.log_power or f.exponent.denominator > 1)
                                                            for f in t.factors) for t in terms)
        bad = np.flatnonzero(x[:, j] <= 0) if needs else []
        if len(bad):
            raise InputError(where, f"{name}={x[bad[0], j]:g}",
                             f"a positive value of {name} (the formula takes log2 or a fractional power of it)")


def symbol_names(inputs) -> tuple:
    """A SymPy-readable symbol per input: the name itself when it is an identifier, else a
    cleaned one (``memory bytes`` → ``memory_bytes``), distinct from each other."""
    out = []
    for name in inputs:
        symbol = re.sub(r"\W", "_", name)
        if not symbol or symbol[0].isdigit():
            symbol = "x_" + symbol
        if keyword.iskeyword(symbol):
            symbol += "_"
        while symbol in out:
            symbol += "_"
        out.append(symbol)
    return tuple(out)


def _number(value: float, style: str, digits: int | None) -> str:
    if digits is None:
        return repr(float(value))
    text = f"{value:.{digits}g}"
    if style == "latex" and "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa} \\times 10^{{{int(exponent)}}}"
    return text


def write_formula(terms, coefficients, inputs, symbols, style: str = "sympy", digits: int | None = None) -> str:
    """Σ c_k · term_k as SymPy text (symbols, ``log(x, 2)``), plain text or LaTeX."""
    names = {"sympy": symbols, "text": inputs, "latex": [latex_name(n) for n in inputs]}[style]
    parts = []
    for c, term in zip(coefficients, terms):
        number = _number(abs(c), style, digits)
        if style == "latex":
            body = term.latex(names, lambda v: _number(v, "latex", digits or 6)) if isinstance(term, DomainTerm) \
                else term.latex(names)
            joined = number if term.is_constant else f"{number} \\, {body}"
        elif style == "text":
            body = term.text(names, lambda v: _number(v, "text", digits or 6)) if isinstance(term, DomainTerm) \
                else term.text(names)
            joined = number if term.is_constant else f"{number}·{body}"
        else:
            joined = number if term.is_constant else f"{number}*{term.sympy(names)}"
        sign = "-" if c < 0 else "+"
        parts.append((sign, joined))
    if not parts:
        return "0"
    first_sign, first = parts[0]
    text = ("-" if first_sign == "-" else "") + first
    for sign, joined in parts[1:]:
        text += f" {sign} {joined}"
    return text


def _float(value) -> float:
    return math.nan if value is None else float(value)


def load(path: str | os.PathLike) -> Discovered:
    """Read a model file written by ``costmodel discover -o``; errors name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(Argument("model"), str(path), f"a readable model file ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(str(path), str(error).splitlines()[0], "a JSON model file from costmodel discover -o") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InputError(str(path), f"format {found!r}", f"a model file from costmodel discover -o (format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise InputError(str(path), f"version {data.get('version')!r}", f"version {VERSION}")
    try:
        coefficients = [Coefficient(c["name"], c["term"], _float(c["value"]), _float(c["stderr"]),
                                    _float(c["ci_low"]), _float(c["ci_high"])) for c in data["coefficients"]]
        parameters = list(data["parameters"])
        covariance = np.array([[_float(v) for v in row] for row in data["covariance"]], dtype=float)
        covariance = covariance.reshape(len(parameters), len(parameters))
        return Discovered(
            target=data["target"], inputs=tuple(data["inputs"]), symbols=tuple(data["symbols"]),
            terms=tuple(term_from_dict(t) for t in data["terms"]), coefficients=coefficients,
            parameters=parameters, covariance=covariance, residual_scale=_float(data["residual_scale"]),
            dof=int(data["dof"]), errors=data["errors"], scale=_float(data["scale"]),
            input_ranges={k: tuple(map(float, v)) for k, v in data["input_ranges"].items()},
            cv_error=_float(data["cv_error"]), score=_float(data["score"]),
            noise=data.get("noise"), lack_of_fit=data.get("lack_of_fit"),
            alternatives=[Alternative(**a) for a in data.get("alternatives", [])],
            predictions=[Prediction(**p) for p in data.get("predictions", [])],
            warnings=list(data.get("warnings", [])), data=data.get("data", {}), search=data.get("search", {}))
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(str(path), f"{type(error).__name__}: {error}", "a complete model file from costmodel discover -o") from None
