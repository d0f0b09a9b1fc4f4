"""The formula card of a discovered model, in the formats of :mod:`costmodel.reporting.cards`.

A card shows the formula (numbers to four significant digits; the model file keeps full
precision), each coefficient with its 95 % interval, how well the formula cross-validates
against the repeat spread, the runner-up formulas, predictions with their intervals and
extrapolation flags, the warnings, and the provenance (data file and SHA-256).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from costmodel import __version__, parse
from costmodel.discover.space import latex_name
from costmodel.errors import Argument
from costmodel.render import escape
from costmodel.render.numbers import format_statistic

if TYPE_CHECKING:  # annotations only: the model module imports this one to show itself
    from costmodel.discover.model import Discovered

#: Card formats, as ``costmodel formula --format`` takes them.
FORMATS = ("text", "markdown", "latex")
DIGITS = 4


def _interval(c) -> str:
    return (f"{format_statistic(c.value, DIGITS)} ± {format_statistic((c.ci_high - c.ci_low) / 2, 2)} "
            f"(95 % CI {format_statistic(c.ci_low, DIGITS)} … {format_statistic(c.ci_high, DIGITS)})")


def _error(model: Discovered, value: float | None) -> str:
    if value is None:
        return "n/a"
    if model.errors == "relative":
        return f"{format_statistic(100 * value, 3)} %"
    return f"{format_statistic(value * model.scale, 3)} (absolute)"


def fit_line(model: Discovered) -> str:
    """Cross-validated error against the repeat spread, in one sentence."""
    text = f"leave-one-configuration-out error {_error(model, model.cv_error)} ({model.errors} errors)"
    if model.noise is not None:
        text += f"; repeat spread of the means {_error(model, model.noise)}"
    lack = model.lack_of_fit
    if lack:
        text += f"; lack-of-fit F = {format_statistic(lack['F'], 3)}, p = {format_statistic(lack['p'], 2)}"
    return text


def provenance(model: Discovered) -> str:
    d = model.data
    bits = [f"data {d.get('source', '?')} ({d.get('format', '?')}, {d.get('rows', '?')} measurements, "
            f"{d.get('configurations', '?')} configurations)"]
    if d.get("sha256"):
        bits.append(f"sha256 {d['sha256']}")
    s = model.search
    if s:
        bits.append(f"search {s.get('seconds', '?')} s, {s.get('models_fitted', '?')} models")
    bits.append(f"costmodel {__version__} discover")
    return "; ".join(bits)


def _prediction_text(model: Discovered, p) -> str:
    where = ", ".join(f"{k}={v:g}" for k, v in p.at.items())
    out = (f"{where}: {format_statistic(p.value, DIGITS)} (95 % PI {format_statistic(p.pi_low, DIGITS)} … "
           f"{format_statistic(p.pi_high, DIGITS)})")
    return out + (f"  extrapolation: {', '.join(p.extrapolation)}" if p.extrapolation else "")


def _text(model: Discovered) -> str:
    out = [f"{model.target}: discovered formula against {', '.join(model.inputs)}", "",
           f"  {model.target} = {model.formula('text', DIGITS)}", "", "coefficients (95 % CI)"]
    width = max(len(c.term) for c in model.coefficients)
    out += [f"  {c.name:<4} {c.term:<{width}}  {_interval(c)}" for c in model.coefficients]
    out += ["", fit_line(model)]
    if model.alternatives:
        out += ["", "alternatives (score: cross-validated error × parameter penalty; lower is better)",
                f"  0. {model.formula('text', DIGITS)}  score {format_statistic(model.score, 3)}"]
        out += [f"  {i}. {a.formula}  score {format_statistic(a.score, 3)}, cv {_error(model, a.cv_error)}, "
                f"{a.parameters} parameters" for i, a in enumerate(model.alternatives, 1)]
    if model.predictions:
        out += ["", "predictions"] + [f"  {_prediction_text(model, p)}" for p in model.predictions]
    if model.warnings:
        out += ["", "warnings"] + [f"  - {w}" for w in model.warnings]
    out += ["", provenance(model)]
    return "\n".join(out) + "\n"


def _markdown(model: Discovered) -> str:
    e = html.escape
    out = [f"### `{e(model.target)}`: discovered formula against {', '.join(f'`{e(n)}`' for n in model.inputs)}", "",
           "$$", f"{_latex_target(model)} = {model.formula('latex', DIGITS)}", "$$", "",
           "| | term | value ± half-width (95 % CI) |", "|---|---|---|"]
    out += [f"| {c.name} | {e(c.term)} | {e(_interval(c))} |" for c in model.coefficients]
    out += ["", e(fit_line(model)), ""]
    if model.alternatives:
        out += ["| rank | formula | score | cv | parameters |", "|---|---|---|---|---|",
                f"| 0 (chosen) | {e(model.formula('text', DIGITS))} | {format_statistic(model.score, 3)} | "
                f"{_error(model, model.cv_error)} | {len(model.coefficients)} |"]
        out += [f"| {i} | {e(a.formula)} | {format_statistic(a.score, 3)} | {_error(model, a.cv_error)} | "
                f"{a.parameters} |" for i, a in enumerate(model.alternatives, 1)]
        out.append("")
    if model.predictions:
        out += ["| at | value | 95 % PI | extrapolation |", "|---|---|---|---|"]
        out += [f"| {e(', '.join(f'{k}={v:g}' for k, v in p.at.items()))} | {format_statistic(p.value, DIGITS)} | "
                f"{format_statistic(p.pi_low, DIGITS)} … {format_statistic(p.pi_high, DIGITS)} | "
                f"{e(', '.join(p.extrapolation)) or '–'} |" for p in model.predictions]
        out.append("")
    out += [f"- **warning:** {e(w)}" for w in model.warnings]
    out += ["", f"<sub>{e(provenance(model))}</sub>", ""]
    return "\n".join(out)


def _latex_target(model: Discovered) -> str:

    return latex_name(model.target)


def _latex(model: Discovered) -> str:
    out = [f"% costmodel discover: {escape.latex_comment(model.target)} against "
           f"{escape.latex_comment(', '.join(model.inputs))}",
           f"% {escape.latex_comment(provenance(model))}", "\\begin{align*}",
           f"  {_latex_target(model)} &= {model.formula('latex', DIGITS)}", "\\end{align*}", "",
           "\\begin{tabular}{lll}", "\\hline", " & term & value (95 \\% CI) \\\\", "\\hline"]
    out += [f"{c.name} & {escape.latex(c.term)} & {escape.latex(_interval(c))} \\\\" for c in model.coefficients]
    out += ["\\hline", "\\end{tabular}", "", f"\\par\\noindent{{\\footnotesize {escape.latex(fit_line(model))}}}", ""]
    return "\n".join(out).replace("·", "$\\cdot$").replace("±", "$\\pm$").replace("…", "\\ldots{}")


def card(model: Discovered, fmt: str = "text") -> str:
    """The card of ``model`` in ``fmt`` (``text``, ``markdown`` or ``latex``)."""
    fmt = parse.choice(fmt, FORMATS, Argument("format"))
    return {"text": _text, "markdown": _markdown, "latex": _latex}[fmt](model)
