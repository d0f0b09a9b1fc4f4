"""Statistics of a fit: covariance, standard errors, goodness of fit, and model forms compared.

:func:`statistics` turns a :class:`~costmodel.fitting.solve.Solution` into the coefficient
covariance (from the weighted Jacobian and the residual variance; coefficients on a bound
are fixed there and their trade-offs named), leverages, and :class:`FitStatistics`: R²,
RMSE, leave-one-out RMSE, AIC, AICc, BIC. :func:`compare_forms` ranks the model forms by AIC
with Akaike weights.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from costmodel.fitting.solve import Solution
from costmodel.model.variables import QUANTITIES
from costmodel.render.numbers import format_statistic as fmt
from costmodel.uncertainty import typical_size

#: Confidence level of every interval.
LEVEL = 0.95
#: Relative standard error above which a fitted coefficient is called poorly determined.
POORLY_DETERMINED = 1.0
#: Support for a model given its ΔAIC (Burnham & Anderson, Model Selection and Multimodel
#: Inference, 2nd ed. 2002, §2.6: ≤ 2 substantial, 4–7 considerably less, > 10 essentially none).
SUPPORT = ((2.0, "substantial support for both"), (4.0, "some support for the other"),
           (7.0, "considerably less support for the other"), (10.0, "little support for the other"),
           (math.inf, "essentially no support for the other"))


@dataclass(frozen=True)
class FitStatistics:
    """Goodness of fit of one target. RMSEs in the target's unit; ``residual_scale`` in
    ``residual_scale_unit`` (a fraction of the value for relative errors)."""

    r2: float | None
    rmse: float
    rmse_relative: float | None
    loo_rmse: float | None
    loo_method: str
    aic: float
    aicc: float | None
    bic: float
    residual_scale: float
    residual_scale_unit: str
    dof: int
    n_rows: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Statistics:
    """Everything :func:`statistics` computes for one solution."""

    covariance: np.ndarray
    stderr: np.ndarray
    fit: FitStatistics
    leverage: np.ndarray
    #: standard error of each coefficient on a bound before it was fixed there
    bound_spread: dict
    #: coefficient on a bound → [(correlated coefficient, correlation)]
    bound_partners: dict


def statistics(solution: Solution, y_all: np.ndarray, errors: str, target: str) -> Statistics:
    """Covariance, standard errors, leverages and goodness of fit of ``solution``.

    Computed once per solution and measurements (a fit compares the forms, then reports the
    chosen one): a second call with the same ``y_all``, ``errors``, ``target`` and the
    coefficients on a bound the first one left returns the first result, which is what it
    would compute again (the first call's only change to ``solution`` is that list)."""
    cached = solution.computed_statistics
    if (cached is not None and cached[0] is y_all and cached[1:4] == (errors, target, tuple(solution.at_bound))):
        return cached[4]
    result = _statistics(solution, y_all, errors, target)
    solution.computed_statistics = (y_all, errors, target, tuple(solution.at_bound), result)
    return result


def _statistics(solution: Solution, y_all: np.ndarray, errors: str, target: str) -> Statistics:
    rows = solution.rows
    y, f, w = y_all[rows], solution.fitted[rows], solution.weights[rows]
    jac = solution.jacobian[rows]
    n, p = len(y), len(solution.free)
    dof = n - p
    rw = (y - f) / w
    rss = float(np.sum(rw**2))
    s2 = rss / dof

    def covariance_of(interior):
        scale = np.array([typical_size(solution.free[j], solution.values[solution.free[j]]) for j in interior])
        q, r = np.linalg.qr(jac[:, interior] * scale / w[:, None])
        r_inv = np.linalg.pinv(r)
        return scale, q, r_inv, s2 * (r_inv @ r_inv.T) * np.outer(scale, scale)

    # a coefficient the solver left within a thousandth of a standard error of a bound is on it
    _, _, _, first = covariance_of(list(range(p)))
    for j, name in enumerate(solution.free):
        low, high = QUANTITIES[name].bounds
        value, spread = solution.values[name], math.sqrt(max(first[j, j], 0.0))
        if min(value - low, high - value) <= 1e-3 * spread and name not in solution.at_bound:
            solution.at_bound.append(name)
    interior = [j for j, name in enumerate(solution.free) if name not in solution.at_bound]
    bound_spread = {name: math.sqrt(max(first[j, j], 0.0)) for j, name in enumerate(solution.free)
                    if name in solution.at_bound}
    spreads = np.sqrt(np.clip(np.diag(first), 1e-300, None))
    correlation = first / np.outer(spreads, spreads)
    bound_partners = {name: [(solution.free[k], float(correlation[j, k])) for k in interior
                             if abs(correlation[j, k]) > 0.5]
                      for j, name in enumerate(solution.free) if name in solution.at_bound}
    scale, q, r_inv, covariance = covariance_of(interior)
    if solution.held_jacobian is not None:
        # two-step estimator: d(fitted coefficients)/d(held) = −(JᵀWJ)⁻¹JᵀW·J_held; add its
        # contribution of the held coefficients' covariance (from the fits that set them)
        sensitivity = r_inv @ q.T @ (solution.held_jacobian[rows] / w[:, None])
        sensitivity *= scale[:, None]
        covariance = covariance + sensitivity @ solution.held_covariance @ sensitivity.T
    full = np.zeros((p, p))  # coefficients on a bound: no variance (treated as exact)
    full[np.ix_(interior, interior)] = covariance
    covariance = full
    stderr = np.sqrt(np.clip(np.diag(covariance), 0, None))
    leverage = np.clip(np.sum(q**2, axis=1), 0.0, 1.0)
    residual = y - f
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        loo = np.where(leverage < 1 - 1e-10, rw / (1 - leverage), np.inf) * w
    if solution.loo_prediction is not None:
        loo = y - solution.loo_prediction[rows]
    loglik = -0.5 * n * (math.log(2 * math.pi * max(rss, 1e-300) / n) + 1) - float(np.sum(np.log(w)))
    k = p + 1  # the coefficients and the residual scale
    fit = FitStatistics(
        r2=(1 - float(np.sum(residual**2)) / ss_tot) if ss_tot > 0 else None,
        rmse=float(math.sqrt(np.mean(residual**2))),
        rmse_relative=float(math.sqrt(np.mean((residual / np.where(y != 0, y, np.nan)) ** 2))) if np.all(y != 0) else None,
        loo_rmse=float(math.sqrt(np.mean(loo**2))) if np.all(np.isfinite(loo)) else None,
        loo_method=("exact (hat matrix)" if solution.linear else
                    f"exact ({n} refits)" if solution.loo_prediction is not None else
                    "first-order (hat matrix of the Jacobian)"),
        aic=2 * k - 2 * loglik,
        aicc=(2 * k - 2 * loglik + 2 * k * (k + 1) / (n - k - 1)) if n - k - 1 > 0 else None,
        bic=k * math.log(n) - 2 * loglik,
        residual_scale=math.sqrt(s2),
        residual_scale_unit="fraction of the value" if errors == "relative" else QUANTITIES[target].unit,
        dof=dof,
        n_rows=n,
    )
    return Statistics(covariance, stderr, fit, leverage, bound_spread, bound_partners)


@dataclass
class FormEntry:
    """One model form fitted to the same runs: its score, or why it could not be fitted."""

    form: str
    n_free: int | None = None
    aic: float | None = None
    bic: float | None = None
    loo_rmse: float | None = None
    rmse: float | None = None
    #: the first form with an identical closed form of the target (its fit is shared)
    same_as: str | None = None
    error: str | None = None
    delta_aic: float | None = None
    akaike_weight: float | None = None

    @property
    def fitted(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        if not self.fitted:
            return {"form": self.form, "error": self.error}
        out = {"form": self.form, "n_free": self.n_free, "aic": self.aic, "bic": self.bic,
               "loo_rmse": self.loo_rmse, "rmse": self.rmse, "same_as": self.same_as}
        if self.delta_aic is not None:
            out["delta_aic"], out["akaike_weight"] = self.delta_aic, self.akaike_weight
        return out


@dataclass
class FormComparison:
    """The model forms fitted to one target's runs, best first, and what the data say."""

    forms: list[FormEntry] = field(default_factory=list)
    preferred: str | None = None
    statement: str = ""

    def to_dict(self) -> dict:
        return {"forms": [e.to_dict() for e in self.forms], "preferred": self.preferred, "statement": self.statement}


def compare_forms(entries: list[FormEntry], chosen: str) -> FormComparison:
    """Rank fitted forms by AIC (then LOO RMSE), with ΔAIC, Akaike weights and a sentence."""
    fitted = [e for e in entries if e.fitted]
    if not fitted:
        return FormComparison(entries, None, "no model form could be fitted")
    best = min(fitted, key=lambda e: (e.aic, e.loo_rmse if e.loo_rmse is not None else math.inf))
    total = sum(math.exp(-(e.aic - best.aic) / 2) for e in fitted)
    for e in fitted:
        e.delta_aic = e.aic - best.aic
        e.akaike_weight = math.exp(-e.delta_aic / 2) / total
    entries.sort(key=lambda e: (e.delta_aic if e.delta_aic is not None else math.inf, e.form))
    runner_up = next((e for e in entries if e.fitted and e.form != best.form), None)
    if runner_up is None:
        statement = f"only {best.form} could be fitted"
    else:
        delta = runner_up.delta_aic
        phrase = next(text for limit, text in SUPPORT if delta <= limit)
        statement = (f"the data prefer {best.form} over {runner_up.form}: ΔAIC {fmt(delta, 3)} "
                     f"({phrase}; Akaike weight {fmt(best.akaike_weight, 2)}), leave-one-out RMSE "
                     f"{fmt(best.loo_rmse)} vs {fmt(runner_up.loo_rmse)}")
        if best.form != chosen:
            statement += f"; the fit above uses {chosen} (form {best.form} is the preferred one)"
    return FormComparison(entries, best.form, statement)
