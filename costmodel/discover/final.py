"""From the chosen candidate to a :class:`~costmodel.discover.model.Discovered` formula.

:func:`finish` refines clamp thresholds, fits the coefficients to every measurement,
computes their covariance with :func:`costmodel.uncertainty.jacobian`, tests the fit
against the spread of repeated measurements, and collects the alternatives and warnings.
"""

from __future__ import annotations

import math

import numpy as np

from costmodel.discover.model import (
    LEVEL,
    SCALE_FLOOR,
    Alternative,
    Coefficient,
    Discovered,
    check_domain,
    evaluate_terms,
    symbol_names,
    write_formula,
)
from costmodel.discover.readers import Measurements
from costmodel.discover.search import Candidate, Points, Search
from costmodel.discover.space import DomainTerm
from costmodel.errors import Argument, InputError
from costmodel.render.numbers import format_statistic

#: Lack-of-fit p-value below which the formula is said to miss the data.
LACK_OF_FIT_P = 1e-3
#: Without repeats: a cross-validated error above this share (relative, or of the data's RMS) is poor.
POOR_CV = 0.10


def _clamps(terms) -> list[int]:
    return [k for k, t in enumerate(terms) if isinstance(t, DomainTerm) and t.kind in ("min", "max")]


def refine_thresholds(terms: tuple, search: Search) -> tuple:
    """Each clamp's threshold moved to the least-squares optimum within the gap the search found."""
    from scipy.optimize import minimize_scalar

    terms = list(terms)
    points = search.points
    for k in _clamps(terms):
        low, high = terms[k].interval
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            continue

        def rss(threshold, k=k):
            trial = terms[:k] + [terms[k].with_threshold(threshold)] + terms[k + 1:]
            a = search.w[:, None] * np.column_stack([t.values(points.x) for t in trial])
            coefficients, *_ = np.linalg.lstsq(a, search.b, rcond=None)
            return float(np.sum((search.b - a @ coefficients) ** 2))

        best = minimize_scalar(rss, bounds=(low, high), method="bounded", options={"xatol": 1e-10 * max(abs(high), 1)})
        if rss(best.x) < rss(terms[k].threshold):
            terms[k] = terms[k].with_threshold(float(best.x))
    return tuple(terms)


def finish(measurements: Measurements, points: Points, search: Search, ranked: list[Candidate], top: int,
           seconds: float) -> Discovered:
    """Fit the best candidate to every measurement and describe it (see the module docstring)."""
    from scipy import stats

    from costmodel.uncertainty import jacobian

    best = ranked[0]
    terms = refine_thresholds(best.terms, search)
    x, y = measurements.x, measurements.y
    v = 1 / search.scale[points.of_row]  # per measurement: 1 / (its configuration's mean, or the RMS)
    design = np.column_stack([t.values(x) for t in terms])
    coefficients, *_ = np.linalg.lstsq(v[:, None] * design, v * y, rcond=None)
    clamps = _clamps(terms)
    values = np.concatenate([coefficients, [terms[k].threshold for k in clamps]])
    names = [f"c{k}" for k in range(len(terms))] + [f"t{k}" for k in clamps]
    residual = v * (y - evaluate_terms(terms, values, x))
    dof = len(y) - len(values)
    scale = math.sqrt(float(np.sum(residual**2)) / dof) if dof > 0 else math.nan
    scale = max(scale, SCALE_FLOOR) if dof > 0 else math.nan
    g = jacobian(lambda theta: evaluate_terms(terms, theta, x), names, values) * v[:, None]
    _, singular, vt = np.linalg.svd(g, full_matrices=False)
    keep = singular > singular[0] * 1e-13
    covariance = (vt[keep].T / singular[keep] ** 2) @ vt[keep] * scale**2 if dof > 0 else np.full((len(values),) * 2, np.nan)
    t = float(stats.t.ppf(0.5 + LEVEL / 2, dof)) if dof > 0 else math.nan
    stderr = np.sqrt(np.clip(np.diag(covariance), 0, None))
    labels = [t_.text(measurements.inputs) for t_ in terms] + [f"threshold of {terms[k].kind}" for k in clamps]
    coefficient_list = [Coefficient(n, label, float(val), float(se), float(val - t * se), float(val + t * se))
                        for n, label, val, se in zip(names, labels, values, stderr)]

    inputs, symbols = measurements.inputs, symbol_names(measurements.inputs)
    alternatives = [Alternative(write_formula(c.terms, c.coefficients, inputs, symbols, "sympy"),
                                write_formula(c.terms, c.coefficients, inputs, symbols, "text", 4),
                                c.cv, c.score, c.parameters) for c in ranked[1:top + 1]]
    noise = search.noise()
    fitted_means = evaluate_terms(terms, values, points.x)
    lack = lack_of_fit(points, search, fitted_means, len(values), stats)
    model = Discovered(
        target=measurements.target, inputs=inputs, symbols=symbols, terms=terms, coefficients=coefficient_list,
        parameters=names, covariance=covariance, residual_scale=scale, dof=dof, errors=search.errors,
        scale=float(search.scale[0]) if search.errors == "absolute" else 1.0,
        input_ranges={n: (float(x[:, j].min()), float(x[:, j].max())) for j, n in enumerate(inputs)},
        cv_error=best.cv, score=best.score, noise=noise[0] if noise else None, lack_of_fit=lack,
        alternatives=alternatives,
        data={"source": measurements.source, "path": _resolved(measurements.source),
              "format": measurements.format, "sha256": measurements.sha256,
              "rows": int(len(y)), "configurations": int(len(points.mean)),
              "repeats": [int(points.count.min()), int(points.count.max())], "notes": list(measurements.notes)},
        search={"seconds": round(seconds, 3), "models_fitted": len(search.fitted), "max_terms": search.max_size - 1,
                "penalty": search.penalty, "exponents": "multiples of 1/4 and 1/3 from 0 to 3", "log_powers": [0, 1, 2],
                "domain_shapes": bool(search.domain)})
    model.warnings = warnings(model, best, ranked, search)
    return model


def _resolved(source: str) -> str | None:
    """The data file's absolute path (so a report run elsewhere finds it), if it is a file."""
    from pathlib import Path

    path = Path(source)
    return str(path.resolve()) if source and path.is_file() else None


def lack_of_fit(points: Points, search: Search, fitted: np.ndarray, parameters: int, stats) -> dict | None:
    """F test of the means' misfit against the spread of repeats (None without repeats)."""
    repeats = points.count - 1
    df_pure, df_lack = int(np.sum(repeats)), len(points.mean) - parameters
    if df_pure <= 0 or df_lack <= 0:
        return None
    pure = float(np.sum(repeats * (points.sd / search.scale) ** 2))
    lack = float(np.sum(points.count * ((points.mean - fitted) / search.scale) ** 2))
    if pure <= (SCALE_FLOOR**2) * df_pure:  # repeats agree to rounding: any misfit beyond it counts
        statistic = math.inf if lack > (SCALE_FLOOR**2) * len(points.mean) * 1e6 else 0.0
    else:
        statistic = (lack / df_lack) / (pure / df_pure)
    p = float(stats.f.sf(statistic, df_lack, df_pure)) if math.isfinite(statistic) else 0.0
    return {"F": statistic, "p": p, "df": [df_lack, df_pure]}


def warnings(model: Discovered, best: Candidate, ranked: list[Candidate], search: Search) -> list[str]:
    """What a reader of the formula must know: misfit, ambiguity, held thresholds, data notes."""
    out = []
    unit = "" if model.errors == "relative" else " of the data's RMS"
    lack = model.lack_of_fit
    if lack and lack["p"] < LACK_OF_FIT_P:
        out.append(f"the formula misses the means by more than their repeat spread explains (lack-of-fit "
                   f"F = {format_statistic(lack['F'], 3)}, p = {format_statistic(lack['p'], 2)}; cross-validated error "
                   f"{100 * best.cv:.3g} %{unit}): the true shape may be outside the hypothesis space, and "
                   "predictions away from the measured points are less certain than their intervals say")
    elif not lack and best.cv > POOR_CV:
        out.append(f"poor cross-validation score: {100 * best.cv:.3g} %{unit} (no repeats to tell noise from misfit); "
                   "the shape may be outside the hypothesis space")
    if len(ranked) > 1:
        runner = ranked[1]
        if runner.score <= best.score * (1 + search.penalty / 2) and runner.cv > 0:
            out.append(f"ambiguous: the runner-up {write_formula(runner.terms, runner.coefficients, model.inputs, model.symbols, 'text', 3)} "
                       f"scores within {100 * (runner.score / best.score - 1):.2g} % of the chosen formula; compare "
                       "their predictions before extrapolating")
    for term in model.terms:
        if isinstance(term, DomainTerm) and term.kind in ("ceil", "step"):
            low, high = term.interval
            out.append(f"the threshold of {term.text(model.inputs)} is any value in [{low:g}, {high:g}) for these data; "
                       "the simplest is shown and held (not in the intervals)")
    if best.parameters >= len(search.points.mean) - 1:
        out.append("as many parameters as configurations but one: the fit has no room to show misfit")
    out += [f"data: {note}" for note in model.data.get("notes", [])]
    return out


def extrapolation_warnings(model: Discovered) -> list[str]:
    """One warning per prediction outside the measured range, naming how far out each input is."""
    out = []
    for p in model.predictions:
        if not p.extrapolation:
            continue
        parts = []
        for name in p.extrapolation:
            low, high = model.input_ranges[name]
            value = p.at[name]
            parts.append(f"{name} = {value:g} is {value / high:.3g}× the largest measured ({high:g})" if value > high
                         else f"{name} = {value:g} is below the smallest measured ({low:g})")
        out.append("extrapolation: " + "; ".join(parts) + " — the interval assumes the formula's shape holds there")
    return out


def parse_at(text, inputs) -> dict:
    """``p=512,q=8`` (or a mapping) → {input: value}; every input must be given, once."""
    from costmodel import parse

    where = Argument("at")
    if isinstance(text, dict):
        pairs = list(text.items())
    else:
        pairs = []
        for part in str(text).split(","):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise InputError(where, str(text), "NAME=VALUE pairs separated by commas, one per input: "
                                 + ",".join(f"{n}=…" for n in inputs))
            pairs.append((name.strip(), value.strip()))
    out = {}
    for name, value in pairs:
        if name not in inputs:
            raise InputError(where, name, "an input: " + ", ".join(inputs))
        if name in out:
            raise InputError(where, str(text), f"{name} once")
        try:
            number = float(value)
        except (TypeError, ValueError):
            try:
                number = float(parse.size(value, where))
            except InputError:
                raise InputError(where, f"{name}={value}", "a number") from None
        if not math.isfinite(number):
            raise InputError(where, f"{name}={value}", "a finite number")
        out[name] = number
    missing = [n for n in inputs if n not in out]
    if missing:
        raise InputError(where, str(text), "a value for every input (missing " + ", ".join(missing) + ")")
    return out


def check_points(model: Discovered, points: list[dict]) -> None:
    check_domain(model.terms, model.inputs, model.matrix(points), Argument("at"))
