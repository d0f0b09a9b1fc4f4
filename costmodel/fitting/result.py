"""What a fit found: :class:`FitResult`, and the calibration it makes.

Fitted attributes end in ``_`` (scikit-learn's convention). A result turns into a
:class:`~costmodel.calibration.Calibration` (:meth:`FitResult.to_calibration`) that
``predict``, ``formula`` and the reports accept, predicts with intervals
(:meth:`FitResult.predict`), and shows itself as text, HTML and JSON
(:mod:`costmodel.fitting.presentation`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from costmodel import __version__
from costmodel.calibration import Calibration, Coefficient, FitRecord, Origin
from costmodel.fitting import presentation
from costmodel.fitting.holds import Hold, separating_runs
from costmodel.fitting.runs import Runs, input_ranges, shape_columns
from costmodel.fitting.solve import Solution
from costmodel.fitting.statistics import (
    POORLY_DETERMINED,
    FitStatistics,
    FormComparison,
    statistics,
)
from costmodel.fitting.structure import SCENARIO
from costmodel.model.variables import QUANTITIES
from costmodel.render.numbers import format_statistic as fmt
from costmodel.uncertainty import annotate, t_quantile


@dataclass(frozen=True)
class FitWarning:
    """Something a reader of the fit must know. ``held`` names the coefficient when the
    warning reports that the data made the fit hold it (the report lists those apart)."""

    text: str
    held: str | None = None


@dataclass
class FitResult:
    """What :func:`costmodel.fitting.fit` found: coefficients with intervals, goodness of
    fit, the coefficients held and why, and how the other model forms fit.

    ``coefficients_`` holds the fitted coefficients (origin ``fitted``) in the order of
    ``covariance_``; ``held_`` the ones the fit kept at the starting calibration's values.
    """

    target: str
    form: str
    errors: str
    level: float
    coefficients_: dict[str, Coefficient]
    held_: dict[str, Hold]
    covariance_: np.ndarray
    statistics_: FitStatistics
    n_configurations_: int
    comparison_: FormComparison
    warnings_: list[FitWarning]
    method_: str
    input_ranges_: dict
    runs_: Runs = field(repr=False)
    calibration_: Calibration = field(repr=False)
    fitted_: np.ndarray = field(repr=False)
    measured_: np.ndarray = field(repr=False)

    # --- derived -------------------------------------------------------------------------
    @property
    def free_(self) -> list[str]:
        return list(self.coefficients_)

    @property
    def values_(self) -> dict[str, float]:
        return {n: c.value for n, c in self.coefficients_.items()}

    @property
    def dof_(self) -> int:
        return self.statistics_.dof

    @property
    def n_rows_(self) -> int:
        return self.statistics_.n_rows

    @property
    def residual_scale_(self) -> float:
        return self.statistics_.residual_scale

    @property
    def data_(self) -> str:
        return self.runs_.where

    @property
    def data_sha256_(self) -> str:
        return self.runs_.sha256

    @property
    def platform_(self) -> str:
        """``snp``, ``tdx`` or ``all``: whose runs were fitted, and which coefficient set is written."""
        return self.runs_.platform

    @property
    def assumed_(self) -> dict:
        return dict(self.runs_.assumed)

    # --- exports -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The ``costmodel fit --json`` object (every number finite or null)."""
        return presentation.to_dict(self)

    def to_json(self) -> str:
        return presentation.to_json(self)

    def to_text(self) -> str:
        """The readable report ``costmodel fit`` prints."""
        return presentation.to_text(self)

    def _repr_html_(self) -> str:
        return presentation.to_html(self)

    def record(self) -> FitRecord:
        """What prediction intervals and extrapolation checks need, kept in the calibration."""
        finite = presentation.finite
        return FitRecord(
            target=self.target, form=self.form, scenario=SCENARIO, errors=self.errors, level=self.level,
            free=tuple(self.free_), values=finite(self.values_),
            covariance=tuple(tuple(row) for row in finite([[float(v) for v in row] for row in self.covariance_])),
            residual_scale=self.residual_scale_, dof=self.dof_, input_ranges=finite(self.input_ranges_),
            data=self.data_, data_sha256=self.data_sha256_, n_rows=self.n_rows_, held=tuple(sorted(self.held_)),
            model_version=__version__, platform=self.platform_,
            metrics=finite({k: getattr(self.statistics_, k) for k in ("r2", "rmse", "loo_rmse", "aic", "bic")}))

    def to_calibration(self) -> Calibration:
        """A calibration with the fitted values and intervals, the rest from the starting one.

        Coefficients fitted here have origin ``fitted`` (with stderr and interval); those
        the target depends on but the data could not determine have origin ``held``.
        Earlier fits in the starting calibration (same model form) are kept, so fitting
        targets one after another accumulates them.
        """
        base = self.calibration_
        same_form = base.form == self.form
        tdx = self.platform_ == "tdx"
        coefficients = dict(base.coefficients_for("tdx") if tdx else base.coefficients)
        if not same_form:  # intervals of another form's fit do not carry over
            coefficients = {n: Coefficient(n, c.value, c.origin) for n, c in coefficients.items()}
        for name in self.held_:
            if coefficients[name].origin is not Origin.FITTED:
                coefficients[name] = replace(coefficients[name], origin=Origin.HELD)
        coefficients.update(self.coefficients_)
        fits = dict(base.fits) if same_form else {}
        record = self.record()
        fits[record.key] = record
        fits = dict(sorted(fits.items()))
        provenance = {
            "method": f"fitted to measured {self.target} ({self.method_.split(' (')[0]}, {self.errors} errors)",
            "target": self.target, "form": self.form, "data": self.data_, "data_sha256": self.data_sha256_,
            "model_version": __version__, "n_rows": self.n_rows_, "errors": self.errors,
            "level": self.level, "assumed_inputs": self.assumed_,
            "starting_calibration": base.provenance.get("method", ""),
            "targets_fitted": sorted(fits), "platform": self.platform_,
        }
        if tdx:  # the TDX set is written; SEV-SNP's stays as it was
            return Calibration(dict(base.coefficients), self.form, provenance, fits, last_fit=record.key, tdx=coefficients)
        return Calibration(coefficients, self.form, provenance, fits, last_fit=record.key, tdx=base.tdx)

    def predict(self, configs, scenario: str = SCENARIO, outputs: Sequence[str] | None = None) -> pd.DataFrame:
        """Evaluate with the fitted calibration and add the prediction interval and extrapolation."""
        from costmodel.evaluate import evaluate

        cal = self.to_calibration()
        names = list(outputs) if outputs is not None else [self.target]
        if self.target not in names:
            names.append(self.target)
        return annotate(evaluate(configs, cal, scenario=scenario, outputs=names), cal)

    def to_frame(self) -> pd.DataFrame:
        """The fitted runs: inputs, measured ``<target>``, ``<target>_predicted``, the 95 %
        prediction interval, the residual and the extrapolation flag (empty: inside).

        What :func:`costmodel.reporting.plots.predicted_vs_measured` and
        :func:`costmodel.reporting.plots.residuals` draw.
        """
        runs = self.runs_.frame  # assumed inputs already filled in
        configs = shape_columns(runs)
        inputs = list(configs)
        predicted = self.predict(configs)
        out = runs[inputs].copy()
        out[self.target] = self.measured_
        out[f"{self.target}_predicted"] = predicted[self.target].to_numpy()
        for suffix in ("_pi_low", "_pi_high"):
            out[self.target + suffix] = predicted[self.target + suffix].to_numpy()
        out["residual"] = out[self.target] - out[f"{self.target}_predicted"]
        out["extrapolation"] = predicted["extrapolation"].to_numpy()
        return out

    def plot(self, ax=None):
        """Measured against predicted with prediction intervals (returns the axes)."""
        from costmodel.reporting import plots

        return plots.predicted_vs_measured(self.to_frame(), self.target, ax=ax)

    def coefficient_table(self) -> pd.DataFrame:
        """One row per coefficient of the target: fitted ones with intervals, then held ones."""
        rows = []
        for name, c in self.coefficients_.items():
            rows.append({"coefficient": name, "value": c.value, "stderr": c.stderr, "ci_low": c.ci_low,
                         "ci_high": c.ci_high, "unit": c.unit, "origin": c.origin.value})
        for name in self.held_:
            rows.append({"coefficient": name, "value": self.calibration_.values[name], "stderr": None,
                         "ci_low": None, "ci_high": None, "unit": QUANTITIES[name].unit, "origin": Origin.HELD.value})
        return pd.DataFrame(rows)


def build(runs: Runs, solution: Solution, target: str, errors: str, level: float, base: Calibration,
          comparison: FormComparison) -> FitResult:
    """The :class:`FitResult` of ``solution``: intervals, warnings and statistics."""
    st = statistics(solution, runs.y, errors, target)
    t = t_quantile(0.5 + level / 2, st.fit.dof)
    warnings = [FitWarning(w) for w in (*runs.notes, *solution.warnings)]
    coefficients: dict[str, Coefficient] = {}
    for j, name in enumerate(solution.free):
        value = solution.values[name]
        lo_bound, hi_bound = QUANTITIES[name].bounds
        if name in solution.at_bound:
            side = "lower" if abs(value - lo_bound) <= abs(hi_bound - value) else "upper"
            value = lo_bound if side == "lower" else hi_bound  # within 1e-3 SE of it
            reach = t * st.bound_spread.get(name, math.inf)
            low, high = ((value, min(value + reach, hi_bound)) if side == "lower"
                         else (max(value - reach, lo_bound), value))
            coefficients[name] = Coefficient(name, value, Origin.FITTED, None, low, high)
            warnings.append(FitWarning(
                f"{name} = {fmt(value)} is on its {side} bound: the data push it to its physical "
                f"limit or past it; its interval [{fmt(low)}, {fmt(high)}] is one-sided, "
                "and it counts as exact in the other intervals and in prediction intervals "
                "(hold it at a measured value if one is known)"))
            partners = st.bound_partners.get(name, [])
            if partners:
                listed = ", ".join(f"{other} (correlation {corr:+.2f})" for other, corr in partners)
                hint = separating_runs(name, tuple(other for other, _ in partners))
                warnings.append(FitWarning(f"{name} trades off against {listed} on these runs: their intervals "
                                           f"assume {name} = {fmt(value)} and are too narrow if it is not"
                                           + (f"; to separate them: {hint}" if hint else "")))
            continue
        stderr = float(st.stderr[j])
        low, high = value - t * stderr, value + t * stderr
        if low < lo_bound or high > hi_bound:
            low, high = max(low, lo_bound), min(high, hi_bound)
            shown_high = fmt(hi_bound) if math.isfinite(hi_bound) else "∞"
            warnings.append(FitWarning(f"{name}: interval cut at its physical bounds [{fmt(lo_bound)}, {shown_high}]"))
        coefficients[name] = Coefficient(name, value, Origin.FITTED, stderr, low, high)
        if stderr > POORLY_DETERMINED * abs(value):
            warnings.append(FitWarning(f"{name} is poorly determined (standard error {fmt(stderr, 2)} vs value "
                                       f"{fmt(value)}): measure shapes that vary what it acts on (docs/fitting.md)"))
    for name, hold in solution.held.items():
        if hold.determined_by_data:
            warnings.append(FitWarning(f"{name} held at {fmt(base.values[name])} {QUANTITIES[name].unit}: "
                                       f"{hold.text()}", held=name))
    if solution.uncertain_held:
        warnings.append(FitWarning("intervals include the uncertainty of coefficients held at earlier fits' values ("
                                   + ", ".join(solution.uncertain_held) + "); other held values are taken as exact"))
    if st.fit.loo_rmse is None:
        alone = [runs.place(i) for i in np.flatnonzero(solution.rows)[st.leverage >= 1 - 1e-10]][:3]
        warnings.append(FitWarning("leave-one-out RMSE undefined: a run alone determines a coefficient ("
                                   + ", ".join(alone) + ")"))
    used = solution.rows
    method = ("linear least squares, exact (scipy.optimize.lsq_linear, bounded)" if solution.linear
              else "nonlinear least squares (scipy.optimize.least_squares, trust-region reflective, bounded)")
    if errors == "relative":
        method += ", weights 1/value (iteratively reweighted)"
    used_runs = runs.subset(used)
    used_runs.frame = runs.frame[used]
    used_runs.places = (runs.places.select(used) if hasattr(runs.places, "select")
                        else [p for p, u in zip(runs.places, used) if u])
    return FitResult(
        target=target, form=solution.form, errors=errors, level=level, coefficients_=coefficients,
        held_=dict(solution.held), covariance_=st.covariance, statistics_=st.fit,
        n_configurations_=runs.n_configurations, comparison_=comparison, warnings_=warnings, method_=method,
        input_ranges_=input_ranges(used_runs), runs_=used_runs, calibration_=base,
        fitted_=solution.fitted[used], measured_=runs.y[used])

