"""Fitting: round trips from known coefficients, interval coverage, held-out prediction,
identifiability, model-form comparison, calibration files and annotations."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from costmodel import calibration, fitting
from costmodel.errors import InputError
from costmodel.evaluate import evaluate
from costmodel.samples import DIRECTORY as SAMPLES_DIRECTORY
from costmodel.units import GiB

SAMPLES = SAMPLES_DIRECTORY


@pytest.fixture(scope="module")
def truth():
    """Known coefficients, interior of their bounds (the ones behind costmodel/samples)."""
    return calibration.Calibration.load(SAMPLES / "synthetic-truth.json")


def shapes(memory=(4, 8, 16, 32), vcpus=(1, 4, 16, 64), hugepages=("2M", "1G"), platforms=("snp", "tdx"),
           queue_sets=2):
    rows = []
    for m, n, h, p in itertools.product(memory, vcpus, hugepages, platforms):
        for extra in (0, n + 4)[:queue_sets]:
            rows.append({"memory_bytes": m * GiB, "vcpus": n, "virtqueues": n + 3 + extra, "hugepage_bytes": h,
                         "platform": p})
    return pd.DataFrame(rows)


def inside(result, truth, names=None):
    names = names or result.free_
    return {n: result.coefficients_[n].ci_low <= truth.values[n] <= result.coefficients_[n].ci_high for n in names}


# --- symbolic facts ------------------------------------------------------------------------------


def test_linearity_is_decided_symbolically():
    assert fitting.is_linear("conversion_ops", ("conversion_ops_per_gib", "conversion_ops_fixed"))
    assert not fitting.is_linear("splits", ("remainder_regions", "ring_locality"))
    # split/merge cycles are linear in the per-event costs once the counts are fixed
    assert fitting.is_linear("split_merge_cycles", ("split_fixed_cycles", "split_subpage_cycles"))
    assert not fitting.is_linear("split_merge_cycles", ("remainder_regions", "split_fixed_cycles"))


def test_step_only_coefficients_are_found():
    assert set(fitting.step_only("splits")) == {"ghcb_spacing_bytes", "percpu_unit_bytes"}
    assert fitting.step_only("splits", form="per-vcpu") == ()
    assert fitting.step_only("conversion_ops") == ()


# --- round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", [0.02, 0.10])
def test_linear_target_recovers_its_coefficients_exactly_solved(truth, noise):
    runs = fitting.synthetic_runs(shapes(), truth, targets=["conversion_ops"], noise=noise, seed=3)
    result = fitting.fit(runs, "conversion_ops", alternatives=False)
    assert result.method_.startswith("linear least squares, exact")
    assert result.free_ == ["conversion_ops_per_gib", "conversion_ops_fixed"]
    assert all(inside(result, truth).values())
    assert abs(result.statistics_.residual_scale - noise) < 0.35 * noise  # the noise level is estimated


@pytest.mark.parametrize("noise, seed", [(0.02, 4), (0.05, 2), (0.10, 3)])  # fixed seeds; a miss is a 5 % event: coverage is tested below
def test_nonlinear_splits_recover_coefficients_inside_their_intervals(truth, noise, seed):
    # δ is held: at 1 GiB pages it trades off against the placement span almost exactly
    # (both add whole hugepages), so its own interval is [0, 1] at these noise levels
    runs = fitting.synthetic_runs(shapes(), truth, targets=["splits"], noise=noise, seed=seed)
    result = fitting.fit(runs, "splits", calibration=truth, hold=["swiotlb_misalignment"], alternatives=False)
    assert result.method_.startswith("nonlinear least squares")
    assert set(result.free_) == {"remainder_regions", "placement_span_bytes", "ring_locality"}
    assert set(result.held_) == {"swiotlb_misalignment", "ghcb_spacing_bytes", "percpu_unit_bytes"}
    assert result.held_["ghcb_spacing_bytes"].reason is fitting.HoldReason.STEP_ONLY  # named, with the reason
    assert "step function" in result.held_["ghcb_spacing_bytes"].text()
    assert all(inside(result, truth).values()), result.coefficients_
    assert result.statistics_.r2 > 0.95


def test_cycles_with_counts_held_recovers_event_costs(truth):
    runs = fitting.synthetic_runs(shapes(), truth, targets=["split_merge_cycles"], noise=0.05, seed=4)
    counts = ["remainder_regions", "placement_span_bytes", "transient_regions", "transient_span_bytes",
              "swiotlb_misalignment", "ring_locality"]
    result = fitting.fit(runs, "split_merge_cycles", calibration=truth, hold=counts, alternatives=False)
    assert result.free_ == ["split_fixed_cycles", "split_subpage_cycles"]
    assert result.method_.startswith("linear")
    assert all(inside(result, truth).values())


def _coverage(truth, target, hold, seeds, design):
    hits, total = 0, 0
    for seed in range(seeds):
        runs = fitting.synthetic_runs(design, truth, targets=[target], noise=0.05, seed=1000 + seed)
        result = fitting.fit(runs, target, calibration=truth, hold=hold, alternatives=False, loo="first-order")
        flags = inside(result, truth)
        hits += sum(flags.values())
        total += len(flags)
    return hits / total


def test_interval_coverage_linear(truth):
    """95 % intervals cover the truth 90–99 % of the time (100 seeds × 2 coefficients)."""
    design = shapes(memory=(2, 4, 8, 16, 32, 64), vcpus=(4,), hugepages=("2M",), platforms=("snp",), queue_sets=1)
    assert 0.90 <= _coverage(truth, "conversion_ops", [], 100, design) <= 0.99


def test_interval_coverage_nonlinear(truth):
    """Same for a nonlinear fit (splits: remainder and ring locality; 60 seeds × 2)."""
    design = shapes(memory=(4, 16), vcpus=(1, 8, 32), hugepages=("2M",), platforms=("snp",))
    hold = ["placement_span_bytes", "swiotlb_misalignment"]
    assert 0.90 <= _coverage(truth, "splits", hold, 60, design) <= 0.99


def test_held_out_larger_shapes_land_in_prediction_intervals(truth):
    small = shapes(memory=(4, 8, 16), vcpus=(1, 2, 4, 8, 16))
    large = shapes(memory=(32, 64), vcpus=(32, 64))
    runs = fitting.synthetic_runs(small, truth, targets=["splits"], noise=0.05, seed=7)
    result = fitting.fit(runs, "splits", alternatives=False)
    new = fitting.synthetic_runs(large, truth, targets=["splits"], noise=0.05, seed=8)
    predicted = result.predict(large)
    inside_pi = (new["splits"].to_numpy() >= predicted["splits_pi_low"].to_numpy()) & \
                (new["splits"].to_numpy() <= predicted["splits_pi_high"].to_numpy())
    assert inside_pi.mean() >= 0.9, inside_pi.mean()
    assert all(flag.startswith("memory_bytes,vcpus") for flag in predicted["extrapolation"])
    assert (predicted["splits_pi_low"] < predicted["splits"]).all() and (predicted["splits"] < predicted["splits_pi_high"]).all()


# --- identifiability ---------------------------------------------------------------------------------


def test_collinear_coefficients_are_named_and_held(truth):
    # one vCPU count and one virtqueue count: ring locality acts like a constant, as the remainder does
    design = shapes(memory=(4, 8, 16, 32), vcpus=(8,), hugepages=("2M", "1G"), platforms=("snp",), queue_sets=1)
    runs = fitting.synthetic_runs(design, truth, targets=["splits"], noise=0.03, seed=5)
    result = fitting.fit(runs, "splits", alternatives=False)
    assert "ring_locality" in result.held_ and result.held_["ring_locality"].reason is fitting.HoldReason.COLLINEAR
    assert "remainder_regions" in result.held_["ring_locality"].partners
    assert "collinear with remainder_regions" in result.held_["ring_locality"].text()
    assert any(w.held == "ring_locality" and w.text.startswith("ring_locality held at") for w in result.warnings_)
    assert result.to_calibration().origin("ring_locality") is calibration.Origin.HELD


def test_more_coefficients_than_configurations_is_refused(truth):
    design = shapes(memory=(16,), vcpus=(4, 16), hugepages=("2M",), platforms=("snp",), queue_sets=1)
    runs = fitting.synthetic_runs(design, truth, targets=["splits"], noise=0.03, seed=5, replicates=3)
    with pytest.raises(InputError, match=r"2 distinct configurations for [34] coefficients"):
        fitting.fit(runs, "splits", alternatives=False)


def test_reference_needs_an_explicit_vcpu_assumption_and_then_too_few_shapes():
    from costmodel.calibration import REFERENCE_DATA

    with pytest.raises(InputError, match=r"line 2, column vcpus: got an empty cell \(unknown\).*--assume vcpus=16"):
        fitting.fit(REFERENCE_DATA, "splits", alternatives=False)
    with pytest.raises(InputError, match="2 distinct configurations"):
        fitting.fit(REFERENCE_DATA, "splits", assume={"vcpus": 16}, alternatives=False)
    result = fitting.fit(REFERENCE_DATA, "splits", assume={"vcpus": 16}, alternatives=False,
                     hold=["placement_span_bytes", "swiotlb_misalignment", "ring_locality"])
    assert result.free_ == ["remainder_regions"] and result.assumed_ == {"vcpus": 16}
    assert result.to_calibration().provenance["assumed_inputs"] == {"vcpus": 16}


def test_no_hugepages_determine_nothing(truth):
    design = shapes(hugepages=("4K",), queue_sets=1)
    runs = fitting.synthetic_runs(design, truth, targets=["splits"], noise=0.03, seed=5)
    with pytest.raises(InputError, match="determine no coefficient"):
        fitting.fit(runs, "splits", alternatives=False)


def test_unknown_names_get_suggestions(truth):
    runs = fitting.synthetic_runs(shapes(queue_sets=1), truth, targets=["splits"], seed=1)
    with pytest.raises(InputError, match="target: got 'split'; expected one of splits"):
        fitting.fit(runs, "split")
    with pytest.raises(InputError, match="form: got 'per-cpu'; expected one of auto, per-vcpu"):
        fitting.fit(runs, "splits", form="per-cpu")
    with pytest.raises(InputError, match="hold: got 'remainder'"):
        fitting.fit(runs, "splits", hold=["remainder"])


# --- model forms -------------------------------------------------------------------------------------


def test_the_true_form_is_preferred(truth):
    per_vcpu = calibration.Calibration.from_values(truth.values, form="per-vcpu")
    runs = fitting.synthetic_runs(shapes(), per_vcpu, targets=["splits"], noise=0.03, seed=9)
    result = fitting.fit(runs, "splits", calibration=truth)
    assert result.comparison_.preferred == "per-vcpu"
    assert "the data prefer per-vcpu over" in result.comparison_.statement
    forms = {e.form: e.to_dict() for e in result.comparison_.forms}
    assert forms["default"]["delta_aic"] > 10 and forms["per-vcpu"]["delta_aic"] == 0
    auto = fitting.fit(runs, "splits", form="auto", calibration=truth)
    assert auto.form == "per-vcpu"


def test_forms_that_do_not_differ_say_so(truth):
    runs = fitting.synthetic_runs(shapes(queue_sets=1), truth, targets=["conversion_ops"], seed=2)
    result = fitting.fit(runs, "conversion_ops")
    assert "nothing to compare" in result.comparison_.statement


# --- outputs ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def splits_fit(truth):
    runs = fitting.synthetic_runs(shapes(), truth, targets=["splits"], noise=0.05, seed=11)
    return fitting.fit(runs, "splits")


def test_json_object_has_the_documented_keys(splits_fit):
    obj = json.loads(splits_fit.to_json())
    for key in ("target", "model", "n_rows", "data_sha256", "coefficients", "metrics", "alternatives", "warnings"):
        assert key in obj
    assert set(obj["metrics"]) >= {"r2", "rmse", "loo_rmse", "aic", "bic"}
    for entry in obj["coefficients"].values():
        assert set(entry) >= {"value", "stderr", "ci_low", "ci_high", "unit"}
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    assert len(obj["data_sha256"]) == 64 and obj["n_rows"] == 128


def test_text_and_html_reports(splits_fit):
    text = splits_fit.to_text()
    assert "remainder_regions" in text and "± " in text and "leave-one-out RMSE" in text
    assert "held (not determined by these runs)" in text and "the data prefer" in text
    html = splits_fit._repr_html_()
    assert html.startswith("<div>") and "<table>" in html and "remainder_regions" in html


def test_calibration_file_round_trips_with_intervals_and_fit_info(tmp_path, splits_fit):
    cal = splits_fit.to_calibration()
    path = cal.save(tmp_path / "fitted.json")
    loaded = calibration.Calibration.load(path)
    assert loaded.origin("remainder_regions") is calibration.Origin.FITTED
    assert loaded.origin("ghcb_spacing_bytes") is calibration.Origin.HELD
    assert loaded.coefficients["remainder_regions"].ci_low == pytest.approx(splits_fit.coefficients_["remainder_regions"].ci_low)
    assert loaded.provenance["data_sha256"] == splits_fit.data_sha256_
    record = loaded.fits["splits"]
    assert record.target == "splits" and list(record.free) == splits_fit.free_ and record.dof == splits_fit.dof_
    assert np.asarray(record.covariance).shape == (len(splits_fit.free_),) * 2
    assert loaded.origin("split_fixed_cycles") is calibration.Origin.REFERENCE  # coefficients of other targets untouched


def test_chained_fits_accumulate(truth, splits_fit):
    runs = fitting.synthetic_runs(shapes(), truth, targets=["conversion_ops"], noise=0.05, seed=12)
    second = fitting.fit(runs, "conversion_ops", calibration=splits_fit.to_calibration(), alternatives=False)
    cal = second.to_calibration()
    assert sorted(cal.fits) == ["conversion_ops", "splits"]
    assert cal.origin("remainder_regions") is cal.origin("conversion_ops_fixed") is calibration.Origin.FITTED


def test_annotate_adds_intervals_and_extrapolation(splits_fit):
    cal = splits_fit.to_calibration()
    frame = evaluate({"memory_bytes": [16 * GiB, 256 * GiB], "vcpus": [16, 16], "hugepage_bytes": ["2M", "4K"],
                      "platform": ["snp", "snp"]}, cal, outputs=["splits", "merges"])
    out = fitting.annotate(frame, cal)
    assert list(out.columns[out.columns.get_loc("splits"):][:3]) == ["splits", "splits_pi_low", "splits_pi_high"]
    assert out.loc[0, "splits_pi_low"] < out.loc[0, "splits"] < out.loc[0, "splits_pi_high"]
    assert out.loc[0, "extrapolation"] == ""
    assert out.loc[1, "extrapolation"] == "memory_bytes,hugepage_bytes"
    assert "merges_pi_low" not in out  # merges were not fitted
    assert fitting.annotate(frame, calibration.default()) is frame  # nothing fitted: unchanged


def test_fitting_is_reproducible(truth):
    runs = fitting.synthetic_runs(shapes(queue_sets=1), truth, targets=["splits"], noise=0.05, seed=13)
    first = fitting.fit(runs, "splits", alternatives=False).to_json()
    assert fitting.fit(runs, "splits", alternatives=False).to_json() == first


def test_a_coefficient_on_its_bound_gets_a_one_sided_interval_and_its_partners_named():
    result = fitting.fit(SAMPLES / "synthetic-runs.csv", "splits", alternatives=False)
    misalignment = result.coefficients_["swiotlb_misalignment"]
    assert misalignment.value == 0.0 and misalignment.stderr is None
    assert misalignment.ci_low == 0.0 < misalignment.ci_high <= 1.0
    assert any("trades off against" in w.text and "placement_span_bytes" in w.text for w in result.warnings_)
    cal = result.to_calibration()
    assert cal.coefficients["swiotlb_misalignment"].stderr is None and cal.coefficients["swiotlb_misalignment"].ci_high > 0


def test_held_coefficients_fitted_earlier_carry_their_uncertainty(truth):
    runs = fitting.synthetic_runs(shapes(), truth, targets=["splits", "split_merge_cycles"], noise=0.05, seed=22)
    first = fitting.fit(runs, "splits", calibration=truth, hold=["swiotlb_misalignment"], alternatives=False)
    chained = fitting.fit(runs, "split_merge_cycles", calibration=first.to_calibration(), hold_fitted=True,
                      hold=["swiotlb_misalignment", "transient_regions", "transient_span_bytes"], alternatives=False)
    stripped = first.to_calibration()
    stripped = calibration.Calibration.from_values(stripped.values, {n: c.origin for n, c in stripped.coefficients.items()},
                                                   form=stripped.form)
    exact = fitting.fit(runs, "split_merge_cycles", calibration=stripped, hold_fitted=True,
                    hold=["swiotlb_misalignment", "transient_regions", "transient_span_bytes"], alternatives=False)
    assert chained.free_ == exact.free_ == ["split_fixed_cycles", "split_subpage_cycles"]
    assert chained.values_ == pytest.approx(exact.values_)
    for name in chained.free_:
        assert chained.coefficients_[name].stderr > exact.coefficients_[name].stderr
    assert any("include the uncertainty of coefficients held" in w.text for w in chained.warnings_)
    assert all(inside(chained, truth).values())


def test_small_nonlinear_fits_refit_for_leave_one_out(truth):
    design = shapes(memory=(4, 16), vcpus=(1, 8, 32), hugepages=("2M",), platforms=("snp",))
    runs = fitting.synthetic_runs(design, truth, targets=["splits"], noise=0.05, seed=3)
    exact = fitting.fit(runs, "splits", calibration=truth, hold=["placement_span_bytes", "swiotlb_misalignment"],
                    alternatives=False)
    approx = fitting.fit(runs, "splits", calibration=truth, hold=["placement_span_bytes", "swiotlb_misalignment"],
                     alternatives=False, loo="first-order")
    assert exact.statistics_.loo_method == "exact (12 refits)"
    assert approx.statistics_.loo_method.startswith("first-order")
    assert exact.statistics_.loo_rmse > exact.statistics_.rmse
    assert exact.statistics_.loo_rmse == pytest.approx(approx.statistics_.loo_rmse, rel=0.2)


def test_to_frame_lists_each_fitted_run_with_its_prediction_interval(splits_fit):
    frame = splits_fit.to_frame()
    assert len(frame) == splits_fit.n_rows_ and frame.index.name == "row"
    assert np.allclose(frame["splits_predicted"], splits_fit.fitted_)
    assert (frame["splits_pi_low"] <= frame["splits_predicted"]).all()
    assert (frame["extrapolation"] == "").all()  # the fitted runs are inside their own range
    inside_pi = (frame["splits"] >= frame["splits_pi_low"]) & (frame["splits"] <= frame["splits_pi_high"])
    assert 0.85 <= inside_pi.mean() <= 1.0
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    ax = splits_fit.plot()
    assert ax.get_xlabel().startswith("predicted")
    matplotlib.pyplot.close(ax.figure)
