"""Fit the model's free coefficients to measured runs, with intervals a design review accepts.

For one measured target (``splits``, ``merges``, ``conversion_ops``, ``conversion_cycles``,
``split_merge_cycles``) and one model form, :func:`fit`:

1. takes the coefficients the target's closed form depends on under the status quo
   (:mod:`~costmodel.fitting.structure`), minus those the data cannot determine:
   coefficients that enter only through a step function (⌈u·N/H⌉), coefficients that change
   no prediction on these runs, and coefficients collinear with others (rank of the
   Jacobian, column-scaled). Those are *held* at the starting calibration's values
   (:mod:`~costmodel.fitting.holds`) and named. More free coefficients than distinct
   configurations is refused;
2. solves a target that is linear in its free coefficients (checked with SymPy) exactly, as
   bounded linear least squares (``scipy.optimize.lsq_linear``); any other by bounded
   nonlinear least squares (``scipy.optimize.least_squares``, trust-region reflective), with
   the coefficient bounds of :mod:`costmodel.model.variables` (:mod:`~costmodel.fitting.solve`);
3. weights runs by their expected size (``errors="relative"``: the noise is a fraction of
   the value, as for counts and cycles that span orders of magnitude), by iteratively
   reweighted least squares, or not at all (``errors="absolute"``);
4. reports standard errors from the Jacobian and the residual variance, 95 % confidence
   intervals (t distribution), 95 % prediction intervals for new configurations (delta
   method plus residual variance), R², RMSE, leave-one-out RMSE, AIC and BIC
   (:mod:`~costmodel.fitting.statistics`), and how the other model forms of
   :data:`costmodel.model.FORMS` fit the same data.

The result (:mod:`~costmodel.fitting.result`) becomes a calibration; prediction intervals
for later predictions come from :mod:`costmodel.uncertainty`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from costmodel.calibration import Calibration, Origin, default
from costmodel.errors import Argument, InputError, closest
from costmodel.fitting.holds import Hold, HoldReason
from costmodel.fitting.result import FitResult, FitWarning, build
from costmodel.fitting.runs import ASSUMABLE, TARGETS, Runs, prepare
from costmodel.fitting.solve import LOO_EXACT_MAX, Solution, fit_form, known_uncertainty
from costmodel.fitting.statistics import (
    LEVEL,
    FitStatistics,
    FormComparison,
    FormEntry,
    compare_forms,
    statistics,
)
from costmodel.fitting.structure import (
    candidate_coefficients,
    is_linear,
    same_expression_forms,
    step_only,
)
from costmodel.fitting.synthetic import synthetic_runs
from costmodel.model import FORMS
from costmodel.model.variables import COEFFICIENTS
from costmodel.uncertainty import annotate, extrapolation

__all__ = ["ASSUMABLE", "ERRORS", "LEVEL", "LOO_EXACT_MAX", "TARGETS", "FitResult", "FitStatistics", "FitWarning",
           "FormComparison", "FormEntry", "Hold", "HoldReason", "Runs", "annotate", "candidate_coefficients", "extrapolation",
           "fit", "is_linear", "step_only", "synthetic_runs"]

#: Noise models: ``relative`` (noise proportional to the value) or ``absolute``.
ERRORS = ("relative", "absolute")
#: Leave-one-out methods for nonlinear targets.
LOO_METHODS = ("auto", "exact", "first-order")


def fit(
    data,
    target: str,
    form: str = "default",
    calibration: Calibration | None = None,
    *,
    hold: Iterable[str] = (),
    hold_fitted: bool = False,
    assume: Mapping[str, object] | None = None,
    errors: str = "relative",
    alternatives: bool = True,
    level: float = LEVEL,
    loo: str = "auto",
    platform: str = "all",
) -> FitResult:
    """Fit the free coefficients of ``target`` to measured runs.

    Parameters
    ----------
    data : path-like or DataFrame
        Runs in the dataset schema (docs/data-schema.md); a path is read with
        :func:`costmodel.data.load`. Runs without a value for ``target`` are skipped.
    target : str
        One of :data:`TARGETS`.
    form : str
        A key of :data:`costmodel.model.FORMS`, or ``"auto"``: fit every form and keep the
        one with the lowest AIC.
    calibration : Calibration, optional
        Starting values, and the values of every coefficient not fitted (default: the
        calibration derived from the published reference). Never modified.
    hold : iterable of str
        Coefficients to keep at the calibration's values.
    hold_fitted : bool
        Also keep every coefficient the calibration has already fitted (to another
        target): fit targets one after another, each adding its own coefficients.
    assume : mapping, optional
        Values for inputs unknown in some runs (``{"vcpus": 16}``), recorded in the result.
    errors : {"relative", "absolute"}
        Noise model: standard deviation proportional to the value (weights 1/value,
        iteratively reweighted) or constant.
    alternatives : bool
        Also fit the other model forms and compare them (ΔAIC, Akaike weights, LOO RMSE).
    level : float
        Confidence level of the intervals. [1]
    loo : {"auto", "exact", "first-order"}
        Leave-one-out for nonlinear targets: refit without each run (``exact``), or the
        hat-matrix approximation (``first-order``); ``auto`` refits up to
        :data:`LOO_EXACT_MAX` runs. Linear targets are always exact.
    platform : {"all", "snp", "tdx"}
        Fit only that platform's runs and write that platform's coefficient set (``tdx``
        fills the calibration's TDX set, which until then borrows SEV-SNP's); ``all`` fits
        one set shared by both platforms.

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        Bad data (a :class:`~costmodel.data.DataError` naming file, line and column), an
        unknown target, form or coefficient, or data that determine no coefficient, fewer
        distinct configurations than coefficients, or no more runs than coefficients.
    """
    if errors not in ERRORS:
        raise InputError(Argument("errors"), errors, "one of " + ", ".join(ERRORS))
    if loo not in LOO_METHODS:
        raise InputError(Argument("loo"), loo, "one of " + ", ".join(LOO_METHODS))
    if platform not in ("all", "snp", "tdx"):
        raise InputError(Argument("platform"), platform, "one of all, snp, tdx")
    if not 0 < level < 1:
        raise InputError(Argument("level"), level, "a confidence level between 0 and 1")
    forms = list(FORMS)
    if form != "auto" and form not in FORMS:
        raise InputError(Argument("form"), form, "one of auto, " + ", ".join(closest(form, forms, len(forms))))
    requested = list(hold)
    for name in requested:
        if name not in COEFFICIENTS:
            raise InputError(Argument("hold"), name, "coefficient names such as " + ", ".join(closest(name, COEFFICIENTS, 3)))
    base = calibration if calibration is not None else default()
    holds: dict[str, Hold] = {name: Hold(HoldReason.REQUESTED) for name in requested}
    if hold_fitted:
        holds.update({c: Hold(HoldReason.FITTED_EARLIER) for c in COEFFICIENTS
                      if base.origin(c) is Origin.FITTED and c not in holds})
    runs = prepare(data, target, assume, platform)
    ignored = [h for h in requested if not any(h in candidate_coefficients(target, f) for f in FORMS)]
    if ignored:
        runs.notes.append(f"hold {', '.join(ignored)}: not a coefficient of {target}; nothing to hold")

    known = known_uncertainty(base)
    solutions: dict[str, Solution] = {}
    entries: list[FormEntry] = []
    same = same_expression_forms(target)
    chosen_forms = forms if (alternatives or form == "auto") else [form]
    errors_by_form: dict[str, InputError] = {}
    for name in chosen_forms:
        if same[name] != name and same[name] in solutions:
            solutions[name] = solutions[same[name]]
        else:
            try:
                solutions[name] = fit_form(runs, target, name, base.values_for(platform), holds, errors, known=known, loo=loo)
            except InputError as error:
                errors_by_form[name] = error
                entries.append(FormEntry(name, error=str(error.found) + "; expected " + error.expected))
                continue
        sol = solutions[name]
        metrics = statistics(sol, runs.y, errors, target).fit
        entries.append(FormEntry(name, len(sol.free), metrics.aic, metrics.bic, metrics.loo_rmse, metrics.rmse,
                                 same[name] if same[name] != name else None))
    if form == "auto":
        fitted = [e for e in entries if e.fitted]
        if not fitted:
            raise next(iter(errors_by_form.values()))
        form = min(fitted, key=lambda e: e.aic).form
    if form in errors_by_form:
        raise errors_by_form[form]
    comparison = compare_forms(entries, form) if len(chosen_forms) > 1 else FormComparison()
    if len(chosen_forms) > 1 and len({same[f] for f in chosen_forms}) == 1:
        comparison.statement = f"all model forms give the same closed form of {target}: nothing to compare"
        comparison.preferred = None
    base_for_result = base if base.form == form else Calibration(dict(base.coefficients), form, dict(base.provenance),
                                                                 tdx=base.tdx)
    return build(runs, solutions[form], target, errors, level, base_for_result, comparison)
