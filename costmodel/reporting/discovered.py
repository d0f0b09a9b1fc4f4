"""What the discover notebook shows of a discovered formula: fit, residuals, far-point intervals.

The notebook ``costmodel/notebooks/discover.py`` calls these; each figure function takes
``ax=`` like those of :mod:`costmodel.reporting.plots`. Numbers come from
:class:`costmodel.discover.Discovered` (its predictions and intervals).
"""

from __future__ import annotations

import numpy as np

#: Multiples of the largest measured value of every input shown in the far-point figure.
FAR_FACTORS = (1, 2, 4, 8, 16)


def measurements_of(model):
    """The measurements a model was found from, re-read from its recorded source (None when
    the file is gone or changed since: its SHA-256 no longer matches)."""
    from pathlib import Path

    from costmodel.discover import read
    from costmodel.files import sha256_file

    source = model.data.get("path") or model.data.get("source")
    if not source or not Path(source).is_file():
        return None
    if model.data.get("sha256") and sha256_file(source) != model.data["sha256"]:
        return None
    return read(source, model.target, list(model.inputs))


def fit(model, measurements, ax=None):
    """Measured means (with their spread) against the formula, one point per configuration."""
    from costmodel.discover.points import aggregate
    from costmodel.reporting.plots import figure

    if ax is None:
        _, ax = figure()
    points = aggregate(measurements.x, measurements.y)
    fitted = model.evaluate(points.x)
    ax.errorbar(fitted, points.mean, yerr=points.sd, fmt="o", ms=3, lw=0.8, label="measured mean ± sd")
    low, high = float(np.min([fitted.min(), points.mean.min()])), float(np.max([fitted.max(), points.mean.max()]))
    ax.plot([low, high], [low, high], color="0.4", lw=0.8, label="formula = measured")
    if low > 0:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(f"formula [{model.target}]")
    ax.set_ylabel(f"measured [{model.target}]")
    ax.legend(fontsize=7)
    return ax


def residuals(model, measurements, ax=None):
    """Each configuration's miss (relative or absolute, as the search judged) against the formula."""
    from costmodel.discover.points import aggregate
    from costmodel.reporting.plots import figure

    if ax is None:
        _, ax = figure()
    points = aggregate(measurements.x, measurements.y)
    fitted = model.evaluate(points.x)
    if model.errors == "relative":
        miss, label = 100 * (points.mean - fitted) / points.mean, "miss of the mean [% of it]"
    else:
        miss, label = points.mean - fitted, f"miss of the mean [{model.target}]"
    ax.axhline(0, color="0.4", lw=0.8)
    ax.plot(fitted, miss, "o", ms=3)
    if fitted.min() > 0:
        ax.set_xscale("log")
    ax.set_xlabel(f"formula [{model.target}]")
    ax.set_ylabel(label)
    return ax


def far_points(model, factors=FAR_FACTORS) -> list[dict]:
    """Points at ``factors`` × the largest measured value of every input."""
    return [{n: f * model.input_ranges[n][1] for n in model.inputs} for f in factors]


def far(model, ax=None, factors=FAR_FACTORS):
    """The formula and its 95 % prediction interval from the largest measured point out to 16×
    (every input scaled together), with the runner-ups' formulas beside it."""
    from sympy import Symbol, lambdify, parse_expr

    from costmodel.reporting.plots import figure

    if ax is None:
        _, ax = figure()
    predictions = model.predict(far_points(model, factors))
    values = np.array([p.value for p in predictions])
    ax.fill_between(factors, [p.pi_low for p in predictions], [p.pi_high for p in predictions], alpha=0.25,
                    label="95 % prediction interval")
    ax.plot(factors, values, "o-", label="chosen formula")
    symbols = [Symbol(s) for s in model.symbols]
    local = {s.name: s for s in symbols}
    for i, alternative in enumerate(model.alternatives[:3], 1):
        function = lambdify(symbols, parse_expr(alternative.formula_sympy, local_dict=local), "numpy")
        shown = [float(function(*[f * model.input_ranges[n][1] for n in model.inputs])) for f in factors]
        ax.plot(factors, shown, "--", lw=0.9, label=f"runner-up {i}")
    ax.set_xscale("log", base=2)
    if np.all(values > 0):
        ax.set_yscale("log")
    ax.set_xlabel("× the largest measured value of every input")
    ax.set_ylabel(model.target)
    ax.legend(fontsize=7)
    return ax
