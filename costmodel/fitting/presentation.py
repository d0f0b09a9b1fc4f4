"""How a fit shows itself: the ``--json`` object, the text report, and HTML for notebooks.

Each function takes a :class:`~costmodel.fitting.result.FitResult` (whose methods call
them); this module reads it and never builds one.
"""

from __future__ import annotations

import html
import json

import pandas as pd

from costmodel import __version__
from costmodel.fitting.structure import SCENARIO
from costmodel.model.variables import QUANTITIES
from costmodel.render.numbers import format_statistic as fmt
from costmodel.render.numbers import json_safe as finite
from costmodel.uncertainty import t_quantile


def to_dict(result) -> dict:
    """The ``--json`` object (sorted keys when dumped; every number finite or null)."""
    coefficients = {name: {"value": c.value, "stderr": c.stderr, "ci_low": c.ci_low, "ci_high": c.ci_high,
                           "unit": c.unit, "origin": c.origin.value}
                    for name, c in result.coefficients_.items()}
    held = {name: {"value": result.calibration_.values[name], "unit": QUANTITIES[name].unit, "origin": "held",
                   "reason": hold.text()} for name, hold in result.held_.items()}
    return finite({
        "target": result.target, "model": result.form, "platform": result.platform_, "scenario": SCENARIO, "errors": result.errors,
        "level": result.level, "method": result.method_, "model_version": __version__,
        "data": result.data_, "data_sha256": result.data_sha256_, "n_rows": result.n_rows_,
        "n_configurations": result.n_configurations_, "assumed_inputs": result.assumed_,
        "coefficients": coefficients, "held": held, "metrics": result.statistics_.to_dict(),
        "alternatives": result.comparison_.to_dict(), "warnings": [w.text for w in result.warnings_],
        "input_ranges": result.input_ranges_,
    })


def to_json(result) -> str:
    return json.dumps(to_dict(result), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _columns(header, body) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    return ["  ".join(str(c).ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in [header, *body]]


def to_text(result) -> str:
    """The readable report ``costmodel fit`` prints."""
    m = result.statistics_
    unit = QUANTITIES[result.target].unit
    unit_text = "" if unit == "1" else f" {unit}"
    lines = [
        f"Fit of {result.target} — model form {result.form}, {result.errors} errors, {int(result.level * 100)} % intervals",
        f"data: {result.data_} (sha256 {result.data_sha256_[:16]}…), {result.n_rows_} runs, "
        f"{result.n_configurations_} distinct configurations",
        f"method: {result.method_}; {len(result.free_)} free coefficients, {result.dof_} residual degrees of freedom",
        "",
    ]
    header = ("coefficient", "value", f"± {int(result.level * 100)} %", "interval", "unit", "origin")
    body = []
    t = t_quantile(0.5 + result.level / 2, result.dof_)
    for name, c in result.coefficients_.items():
        spread = "on a bound" if c.stderr is None else "± " + fmt(c.stderr * t, 2)
        body.append((name, fmt(c.value), spread, f"[{fmt(c.ci_low)}, {fmt(c.ci_high)}]", c.unit, "fitted"))
    for name in result.held_:
        body.append((name, fmt(result.calibration_.values[name]), "", "", QUANTITIES[name].unit, "held"))
    lines += _columns(header, body)
    lines += ["", "goodness of fit:",
              f"  R² {fmt(m.r2)}, RMSE {fmt(m.rmse)}{unit_text}, leave-one-out RMSE {fmt(m.loo_rmse)}{unit_text}"
              f" ({m.loo_method})",
              f"  AIC {fmt(m.aic, 6)}, BIC {fmt(m.bic, 6)}, residual scale {fmt(m.residual_scale)}"
              + (" (fraction of the value)" if result.errors == "relative" else unit_text)]
    comparison = result.comparison_
    if comparison.forms:
        lines += ["", "model forms compared on these runs:"]
        body = []
        for entry in comparison.forms:
            if not entry.fitted:
                body.append((entry.form, "", "", "", "not fitted: " + entry.error))
            else:
                body.append((entry.form, str(entry.n_free), fmt(entry.delta_aic, 3), fmt(entry.akaike_weight, 2),
                             fmt(entry.loo_rmse)))
        lines += ["  " + line for line in _columns(("form", "free", "ΔAIC", "weight", "LOO RMSE"), body)]
    if comparison.statement:
        lines.append("  " + comparison.statement)
    if result.held_:
        lines += ["", "held (not determined by these runs):"]
        lines += [f"  {name} = {fmt(result.calibration_.values[name])} {QUANTITIES[name].unit}: {hold.text()}"
                  for name, hold in result.held_.items()]
    shown = [w.text for w in result.warnings_ if w.held is None]  # held coefficients are listed above already
    if shown:
        lines += ["", "warnings:"] + [f"  - {w}" for w in shown]
    return "\n".join(lines) + "\n"


def to_html(result) -> str:
    """A table of coefficients, the goodness of fit and the warnings, for notebooks."""
    table = result.coefficient_table()
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            r.coefficient, fmt(r.value), "" if r.stderr is None or pd.isna(r.stderr) else fmt(r.stderr, 2),
            "" if r.ci_low is None or pd.isna(r.ci_low) else f"[{fmt(r.ci_low)}, {fmt(r.ci_high)}]",
            r.unit, r.origin)) + "</tr>" for r in table.itertuples())
    m = result.statistics_
    warn = "".join(f"<li>{html.escape(w.text)}</li>" for w in result.warnings_)
    statement = html.escape(result.comparison_.statement)
    return (f"<div><strong>Fit of {html.escape(result.target)}</strong> — form {html.escape(result.form)}, "
            f"{result.n_rows_} runs, {result.n_configurations_} configurations, {html.escape(result.method_)}"
            "<table><thead><tr><th>coefficient</th><th>value</th><th>std. error</th>"
            f"<th>{int(result.level * 100)} % CI</th><th>unit</th><th>origin</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
            f"<p>R² {fmt(m.r2)}, RMSE {fmt(m.rmse)}, LOO RMSE {fmt(m.loo_rmse)}, "
            f"AIC {fmt(m.aic, 6)}, BIC {fmt(m.bic, 6)}</p>"
            f"<p>{statement}</p>" + (f"<ul>{warn}</ul>" if warn else "") + "</div>")
