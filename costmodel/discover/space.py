"""The hypothesis space of ``costmodel discover``: terms, their values and how they are written.

A formula is a sum of terms, each with its own coefficient:

* a **PMNF term** is a product over some of the inputs of ``x^i · log2(x)^j``, with ``i``
  in :data:`EXPONENTS` (the multiples of 1/4 and of 1/3 from 0 to 3) and ``j`` in
  :data:`LOG_POWERS` (0, 1, 2); every term has its own exponents, so one input may appear
  as ``x`` in one term and ``x² log2 x`` in another. The empty product is the constant.
* a **domain term** is one of the shapes the closed form of this project is built from,
  on one input, with one threshold fitted by profiling: ``⌈x / c⌉``, ``min(x, T)``,
  ``max(x, T)`` and the step ``[x ≥ T]``.

Terms are immutable and hashable (a model is a frozenset of them); they evaluate on input
arrays and write themselves as SymPy text (``log(x, 2)``), LaTeX and plain text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from costmodel.render import escape

#: Exponents of an input in a PMNF term: multiples of 1/4 and of 1/3 from 0 to 3.
EXPONENTS: tuple[Fraction, ...] = tuple(sorted({Fraction(k, 4) for k in range(13)} | {Fraction(k, 3) for k in range(10)}))
#: Powers of log2(x) in a PMNF term.
LOG_POWERS: tuple[int, ...] = (0, 1, 2)
#: The (exponent, log power) pairs of one input's factor; (0, 0) is "input absent".
FACTOR_SHAPES: tuple[tuple[Fraction, int], ...] = tuple((i, j) for i in EXPONENTS for j in LOG_POWERS if (i, j) != (0, 0))
#: Domain shapes: ceiling of a ratio, the two clamps, a step.
DOMAIN_KINDS = ("ceil", "min", "max", "step")
#: Largest ratio x / c a ceiling's divisor may give.
CEIL_MAX_RATIO = 32
#: Thresholds tried in each gap between measured values (clamps; refined continuously later).
CLAMP_GRID = 6


@dataclass(frozen=True, order=True)
class Factor:
    """``x_input^exponent · log2(x_input)^log_power`` (one input of a PMNF term)."""

    input: int
    exponent: Fraction
    log_power: int

    def values(self, x: np.ndarray) -> np.ndarray:
        column = x[:, self.input]
        out = np.ones(len(column)) if self.exponent == 0 else column ** float(self.exponent)
        if self.log_power:
            out = out * np.log2(column) ** self.log_power
        return out

    @property
    def weight(self) -> float:
        """How far from linear this factor is (ties between equally good models go to the lower)."""
        return float(self.exponent) + self.log_power


@dataclass(frozen=True)
class Term:
    """A PMNF term: a product of :class:`Factor`, at most one per input (none: the constant)."""

    factors: tuple[Factor, ...] = ()
    kind: str = field(default="pmnf", init=False)

    def __post_init__(self):
        object.__setattr__(self, "factors", tuple(sorted(self.factors)))

    @property
    def is_constant(self) -> bool:
        return not self.factors

    @property
    def inputs(self) -> tuple[int, ...]:
        return tuple(f.input for f in self.factors)

    @property
    def uses_log(self) -> bool:
        return any(f.log_power for f in self.factors)

    @property
    def weight(self) -> float:
        return sum(f.weight for f in self.factors)

    @property
    def thresholds(self) -> int:
        return 0

    def values(self, x: np.ndarray) -> np.ndarray:
        out = np.ones(len(x))
        for factor in self.factors:
            out = out * factor.values(x)
        return out

    def with_factor(self, factor: Factor) -> "Term":
        """This term with ``factor`` replacing the one of the same input (or added)."""
        return Term(tuple(f for f in self.factors if f.input != factor.input) + (factor,))

    def without_input(self, input_: int) -> "Term":
        return Term(tuple(f for f in self.factors if f.input != input_))

    def _written(self, names, style: "_Style") -> str:
        if self.is_constant:
            return "1"
        parts = []
        for f in self.factors:
            name = names[f.input]
            if f.exponent == 1:
                parts.append(name)
            elif f.exponent != 0:
                parts.append(style.power.format(name=name, exponent=_fraction(f.exponent, *style.fraction)))
            if f.log_power:
                parts.append((style.log if f.log_power == 1 else style.log_power).format(name=name, k=f.log_power))
        return style.join.join(parts)

    def sympy(self, names) -> str:
        """As ``sympy.parse_expr`` reads it (base-2 logs as ``log(x, 2)``)."""
        return self._written(names, _SYMPY)

    def latex(self, names) -> str:
        return self._written(names, _LATEX)

    def text(self, names) -> str:
        return self._written(names, _TEXT)

    def to_dict(self) -> dict:
        return {"kind": "pmnf", "factors": [{"input": f.input, "exponent": str(f.exponent), "log_power": f.log_power}
                                            for f in self.factors]}


@dataclass(frozen=True)
class DomainTerm:
    """A domain shape on one input with a threshold ``c`` [unit of the input].

    ``ceil``: ⌈x / c⌉; ``min``: min(x, c); ``max``: max(x, c); ``step``: 1 where x ≥ c, else 0.
    ``interval`` is the range of thresholds that give the same values at the measured points
    (ceil, step: the data cannot tell them apart; min, max: the bracket searched).
    """

    kind: str
    input: int
    threshold: float
    interval: tuple[float, float] = (math.nan, math.nan)

    def __eq__(self, other):
        return (isinstance(other, DomainTerm) and (self.kind, self.input, self.threshold)
                == (other.kind, other.input, other.threshold))

    def __hash__(self):
        return hash((self.kind, self.input, self.threshold))

    @property
    def is_constant(self) -> bool:
        return False

    @property
    def inputs(self) -> tuple[int, ...]:
        return (self.input,)

    @property
    def uses_log(self) -> bool:
        return False

    @property
    def weight(self) -> float:
        return 1.5

    @property
    def thresholds(self) -> int:
        return 1

    def with_threshold(self, threshold: float) -> "DomainTerm":
        return DomainTerm(self.kind, self.input, float(threshold), self.interval)

    def values(self, x: np.ndarray) -> np.ndarray:
        return domain_values(self.kind, x[:, self.input], self.threshold)

    def sympy(self, names) -> str:
        name, c = names[self.input], repr(float(self.threshold))
        return {"ceil": f"ceiling({name}/{c})", "min": f"Min({name}, {c})", "max": f"Max({name}, {c})",
                "step": f"Heaviside({name} - {c}, 1)"}[self.kind]

    def latex(self, names, number=None) -> str:
        name = names[self.input]
        c = number(self.threshold) if number else repr(float(self.threshold))
        return {"ceil": f"\\left\\lceil \\frac{{{name}}}{{{c}}} \\right\\rceil", "min": f"\\min({name}, {c})",
                "max": f"\\max({name}, {c})", "step": f"[{name} \\geq {c}]"}[self.kind]

    def text(self, names, number=None) -> str:
        name = names[self.input]
        c = number(self.threshold) if number else repr(float(self.threshold))
        return {"ceil": f"⌈{name}/{c}⌉", "min": f"min({name}, {c})", "max": f"max({name}, {c})",
                "step": f"[{name} ≥ {c}]"}[self.kind]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "input": self.input, "threshold": float(self.threshold),
                "interval": [float(v) for v in self.interval]}


def domain_values(kind: str, column: np.ndarray, threshold) -> np.ndarray:
    """Values of a domain shape; ``threshold`` may be an array (one column per threshold)."""
    c = np.asarray(threshold, dtype=float)
    column = column[:, None] if c.ndim else column
    if kind == "ceil":
        # a ratio within a few ulps of an integer is that integer (x = 10, c = 2.5 stays 4)
        ratio = column / c
        nearest = np.round(ratio)
        return np.where(np.abs(ratio - nearest) <= 1e-12 * np.maximum(1.0, np.abs(ratio)), nearest, np.ceil(ratio))
    if kind == "min":
        return np.minimum(column, c)
    if kind == "max":
        return np.maximum(column, c)
    return (column >= c).astype(float)


def term_from_dict(data: dict):
    """Inverse of ``to_dict`` of a term (model files)."""
    if data["kind"] == "pmnf":
        return Term(tuple(Factor(int(f["input"]), Fraction(f["exponent"]), int(f["log_power"])) for f in data["factors"]))
    low, high = data.get("interval", [math.nan, math.nan])
    return DomainTerm(data["kind"], int(data["input"]), float(data["threshold"]), (float(low), float(high)))


def _fraction(value: Fraction, wrap: str, latex: bool = False) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    if latex:
        return f"{value.numerator}/{value.denominator}"
    return wrap % f"{value.numerator}/{value.denominator}"


def simplest_in(low: float, high: float, include_low: bool = True) -> float:
    """The simplest number in [low, high) (or (low, high] when not ``include_low``): a power of two
    if one lies there, else the one with the fewest significant decimal digits, nearest the middle."""
    def inside(v):
        return (low <= v < high) if include_low else (low < v <= high)

    if low > 0:
        power = 2.0 ** math.ceil(math.log2(low))
        if inside(power) or inside(2 * power) or inside(power / 2):
            return next(p for p in (power / 2, power, 2 * power) if inside(p))
    middle = (low + high) / 2
    top = max(abs(low), abs(high), 1e-300)
    for digits in range(1, 17):
        step = 10.0 ** (math.floor(math.log10(top)) - digits + 1)
        first, last = math.ceil(low / step), math.floor(high / step)
        found = [k * step for k in range(first, last + 1) if inside(k * step)]
        if found:
            return float(min(found, key=lambda v: (abs(v - middle), v)))
    return middle


def thresholds(kind: str, values: np.ndarray) -> tuple[np.ndarray, list]:
    """Thresholds to try for a domain shape on an input's distinct ``values``, with the interval
    of thresholds each one stands for: clamps at :data:`CLAMP_GRID` points of each gap with two
    or more distinct values on either side (refined continuously later); steps at the simplest
    value of each gap; ceilings ``⌈x/c⌉`` at the simplest ``c`` of each interval in which the
    pattern of ⌈x/c⌉ over the values stays the same (``x/c`` up to :data:`CEIL_MAX_RATIO`)."""
    if kind in ("min", "max"):
        if len(values) < 4:
            return np.array([]), []
        # inside the measured range, two or more distinct values on each side
        out, intervals = [], []
        for low, high in zip(values[1:-2], values[2:-1]):
            for t in np.linspace(low, high, CLAMP_GRID, endpoint=False):
                out.append(t)
                intervals.append((float(low), float(high)))
        out.append(values[-2])
        intervals.append((float(values[-3]), float(values[-2])))
        return np.array(out), intervals
    if kind == "step":
        if len(values) < 3:
            return np.array([]), []
        gaps = list(zip(values[:-1], values[1:]))
        return (np.array([simplest_in(lo, hi, include_low=False) for lo, hi in gaps]),
                [(float(lo), float(hi)) for lo, hi in gaps])
    # ceil: the pattern of ⌈x/c⌉ over the points changes only where x/c crosses an integer
    top = values[-1]
    breaks = {v / m for v in values for m in range(1, CEIL_MAX_RATIO + 1) if top / CEIL_MAX_RATIO <= v / m <= top}
    breaks = np.array(sorted(breaks))
    if len(breaks) < 2:
        return np.array([]), []
    lows, highs = breaks[:-1], breaks[1:]
    return (np.array([simplest_in(lo, hi) for lo, hi in zip(lows, highs)]),
            [(float(lo), float(hi)) for lo, hi in zip(lows, highs)])


@dataclass(frozen=True)
class _Style:
    """How one output form writes a power, a log and a product."""

    power: str
    fraction: tuple
    log: str
    log_power: str
    join: str


_SYMPY = _Style("{name}**{exponent}", ("(%s)",), "log({name}, 2)", "log({name}, 2)**{k}", "*")
_LATEX = _Style("{name}^{{{exponent}}}", ("%s", True), "\\log_2 {name}", "\\log_2^{{{k}}} {name}", " \\, ")
_TEXT = _Style("{name}^{exponent}", ("(%s)",), "log2({name})", "log2({name})^{k}", "·")


def latex_name(name: str) -> str:
    """An input's name in LaTeX math: single letters as they are, longer names upright."""
    if re.fullmatch(r"[A-Za-z]", name):
        return name
    return "\\mathrm{" + escape.latex(name) + "}"
