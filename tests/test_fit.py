"""Fitting: round trips from known coefficients, interval coverage, held-out prediction,
identifiability, per-platform sets, calibration files and annotations."""

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
#: A NIC with deep rings beside QEMU's usual devices: separates ring bytes from the rest.
DEEP = "virtio-blk:size=256;virtio-net:queues=8,size=1024;virtio-vsock"
#: Coefficients that enter splits only through page positions (step functions).
STEPS = {"transient_span_bytes", "firmware_reserved_bytes", "kernel_bss_offset_bytes", "kernel_image_bytes"}


@pytest.fixture(scope="module")
def truth():
    """Known coefficients, interior of their bounds (the ones behind costmodel/samples)."""
    return calibration.Calibration.load(SAMPLES / "synthetic-truth.json")


def shapes(memory=(4, 8, 16, 32), vcpus=(1, 4, 16, 64), hugepages=("2M", "1G"), platforms=("snp", "tdx"),
           device_sets=2):
    rows = []
    for m, n, h, p in itertools.product(memory, vcpus, hugepages, platforms):
        for devices in ("", DEEP)[:device_sets]:
            rows.append({"memory_bytes": m * GiB, "vcpus": n, "numa_nodes": 2 if n >= 16 else 1,
                         "devices": devices or None, "hugepage_bytes": h, "platform": p})
    return pd.DataFrame(rows)


def inside(result, truth, names=None):
    names = names or result.free_
    return {n: result.coefficients_[n].ci_low <= truth.values[n] <= result.coefficients_[n].ci_high for n in names}


# --- symbolic facts ------------------------------------------------------------------------------


def test_linearity_is_decided_symbolically():
    assert fitting.is_linear("conversion_ops", ("remainder_regions", "transient_regions", "conversion_ops_fixed"))
    assert fitting.is_linear("split_merge_cycles", ("split_fixed_cycles", "split_subpage_cycles"))
    assert not fitting.is_linear("splits", ("remainder_regions", "transient_regions"))
    assert not fitting.is_linear("split_merge_cycles", ("remainder_regions", "split_fixed_cycles"))


def test_step_only_coefficients_are_found():
    assert set(fitting.step_only("splits")) == STEPS
    assert set(fitting.step_only("conversion_ops")) == {"firmware_reserved_bytes", "kernel_image_bytes"}
    assert "remainder_regions" in fitting.candidate_coefficients("splits")


# --- recovery ------------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", [0.01, 0.05])
def test_linear_target_recovers_its_coefficients_exactly_solved(truth, noise):
    runs = fitting.synthetic_runs(shapes(), truth, targets=["split_merge_cycles"], noise=noise, seed=3)
    result = fitting.fit(runs, "split_merge_cycles", calibration=truth,
                         hold=["remainder_regions", "transient_regions"], alternatives=False)
    assert result.method_.startswith("linear least squares, exact")
    assert result.free_ == ["split_fixed_cycles", "split_subpage_cycles"]
    assert all(inside(result, truth).values())
    assert abs(result.statistics_.residual_scale - noise) < 0.35 * noise  # the noise level is estimated


@pytest.mark.parametrize("seed", [4, 5])
def test_merges_then_splits_recover_the_region_counts(truth, seed):
    """Merges determine the transient regions; splits, with those held, the remainder."""
    runs = fitting.synthetic_runs(shapes(), truth, targets=["splits", "merges"], noise=0.05, seed=seed)
    merges = fitting.fit(runs, "merges", alternatives=False)
    assert merges.method_.startswith("nonlinear least squares")
    assert merges.free_ == ["transient_regions"] and all(inside(merges, truth).values())
    splits = fitting.fit(runs, "splits", calibration=merges.to_calibration(), hold_fitted=True, alternatives=False)
    assert splits.free_ == ["remainder_regions"] and all(inside(splits, truth).values())
    assert splits.held_["transient_regions"].reason is fitting.HoldReason.FITTED_EARLIER
    assert splits.held_["kernel_image_bytes"].reason is fitting.HoldReason.STEP_ONLY
    assert "step function" in splits.held_["kernel_image_bytes"].text()
    assert splits.statistics_.r2 > 0.95


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
    design = shapes(memory=(2, 4, 8, 16, 32, 64), vcpus=(4,), platforms=("snp",), device_sets=1)
    assert 0.90 <= _coverage(truth, "split_merge_cycles", ["remainder_regions", "transient_regions"], 100,
                             design) <= 0.99


def test_interval_coverage_nonlinear(truth):
    """Same for a nonlinear fit (merges: the transient regions; 80 seeds)."""
    design = shapes(memory=(4, 16), vcpus=(1, 8), platforms=("snp",), device_sets=1)
    assert 0.90 <= _coverage(truth, "merges", [], 80, design) <= 0.99


def test_held_out_larger_shapes_land_in_prediction_intervals(truth):
    small = shapes(memory=(4, 8, 16), vcpus=(1, 2, 4, 8, 16))
    large = shapes(memory=(32, 64), vcpus=(32, 64))
    runs = fitting.synthetic_runs(small, truth, targets=["splits"], noise=0.05, seed=7)
    result = fitting.fit(runs, "splits", calibration=truth, hold=["transient_regions"], alternatives=False)
    new = fitting.synthetic_runs(large, truth, targets=["splits"], noise=0.05, seed=8)
    predicted = result.predict(large)
    inside_pi = (new["splits"].to_numpy() >= predicted["splits_pi_low"].to_numpy()) & \
                (new["splits"].to_numpy() <= predicted["splits_pi_high"].to_numpy())
    assert inside_pi.mean() >= 0.9, inside_pi.mean()
    assert all(flag.startswith("memory_bytes,vcpus") for flag in predicted["extrapolation"])
    assert (predicted["splits_pi_low"] < predicted["splits"]).all() and (predicted["splits"] < predicted["splits_pi_high"]).all()


# --- identifiability ---------------------------------------------------------------------------------


def test_collinear_coefficients_are_named_held_and_told_what_separates_them(truth):
    # one memory size, 2 MiB pages only: every remainder and every transient region splits one
    # hugepage of its own, so the two counts add up and no run tells them apart
    design = shapes(memory=(16,), vcpus=(1, 4, 8, 16), hugepages=("2M",), platforms=("snp",))
    runs = fitting.synthetic_runs(design, truth, targets=["splits"], noise=0.03, seed=5)
    result = fitting.fit(runs, "splits", alternatives=False)
    hold = result.held_["transient_regions"]
    assert hold.reason is fitting.HoldReason.COLLINEAR and hold.partners == ("remainder_regions",)
    assert "collinear with remainder_regions" in hold.text() and "1 GiB hugepages" in hold.text()
    assert any(w.held == "transient_regions" and w.text.startswith("transient_regions held at")
               for w in result.warnings_)
    assert result.to_calibration().origin("transient_regions") is calibration.Origin.HELD


def test_a_coefficient_pushed_to_its_bound_names_its_partner_and_the_runs_that_would_help(truth):
    design = shapes(memory=(4, 8, 16, 32), vcpus=(8,), hugepages=("2M",), platforms=("snp",), device_sets=1)
    runs = fitting.synthetic_runs(design, truth, targets=["splits"], noise=0.03, seed=5)
    result = fitting.fit(runs, "splits", alternatives=False)
    transient = result.coefficients_["transient_regions"]
    assert transient.value == 0.0 and transient.stderr is None and transient.ci_low == 0.0 < transient.ci_high
    assert any("trades off against remainder_regions" in w.text and "fit merges first" in w.text
               for w in result.warnings_)


def test_more_coefficients_than_configurations_is_refused(truth):
    design = shapes(memory=(16,), vcpus=(4,), hugepages=("2M",), platforms=("snp",), device_sets=1)
    runs = fitting.synthetic_runs(design, truth, targets=["split_merge_cycles"], noise=0.03, seed=5, replicates=3)
    with pytest.raises(InputError, match=r"1 distinct configuration.? for 2 coefficients"):
        fitting.fit(runs, "split_merge_cycles", hold=["remainder_regions", "transient_regions"], alternatives=False)


def test_reference_needs_an_explicit_vcpu_assumption():
    from costmodel.calibration import REFERENCE_DATA

    with pytest.raises(InputError, match=r"line 2, column vcpus: got an empty cell \(unknown\).*--assume vcpus=16"):
        fitting.fit(REFERENCE_DATA, "splits", alternatives=False)
    result = fitting.fit(REFERENCE_DATA, "splits", assume={"vcpus": 16}, alternatives=False,
                         hold=["transient_regions"])
    assert result.free_ == ["remainder_regions"] and result.assumed_ == {"vcpus": 16}
    assert result.to_calibration().provenance["assumed_inputs"] == {"vcpus": 16}


def test_no_hugepages_determine_nothing(truth):
    design = shapes(hugepages=("4K",), device_sets=1)
    runs = fitting.synthetic_runs(design, truth, targets=["splits"], noise=0.03, seed=5)
    with pytest.raises(InputError, match="determine no coefficient"):
        fitting.fit(runs, "splits", alternatives=False)


def test_unknown_names_get_suggestions(truth):
    runs = fitting.synthetic_runs(shapes(device_sets=1), truth, targets=["splits"], seed=1)
    with pytest.raises(InputError, match="target: got 'split'; expected one of splits"):
        fitting.fit(runs, "split")
    with pytest.raises(InputError, match="form: got 'per-cpu'; expected one of auto, default"):
        fitting.fit(runs, "splits", form="per-cpu")
    with pytest.raises(InputError, match="hold: got 'remainder'"):
        fitting.fit(runs, "splits", hold=["remainder"])
    with pytest.raises(InputError, match="platform: got 'sev'"):
        fitting.fit(runs, "splits", platform="sev")


def test_one_form_says_there_is_nothing_to_compare(truth):
    runs = fitting.synthetic_runs(shapes(device_sets=1), truth, targets=["conversion_ops"], seed=2)
    result = fitting.fit(runs, "conversion_ops")
    assert result.comparison_.preferred is None


# --- platforms -----------------------------------------------------------------------------------


def test_a_tdx_fit_fills_the_tdx_set_and_leaves_snp_alone(truth):
    tdx_truth = truth.with_values(split_fixed_cycles=80000.0, split_subpage_cycles=90.0)
    snp = fitting.synthetic_runs(shapes(platforms=("snp",)), truth, targets=["split_merge_cycles"], seed=30)
    tdx = fitting.synthetic_runs(shapes(platforms=("tdx",)), tdx_truth, targets=["split_merge_cycles"], seed=31)
    runs = pd.concat([snp, tdx], ignore_index=True)
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    hold = ["remainder_regions", "transient_regions"]
    result = fitting.fit(runs, "split_merge_cycles", calibration=truth, hold=hold, alternatives=False, platform="tdx")
    assert result.n_rows_ == len(tdx) and result.platform_ == "tdx"
    assert all(inside(result, tdx_truth).values())
    cal = result.to_calibration()
    assert not cal.tdx_borrowed and sorted(cal.fits) == ["tdx:split_merge_cycles"]
    assert cal.values["split_fixed_cycles"] == truth.values["split_fixed_cycles"]  # SEV-SNP's set untouched
    assert cal.values_for("tdx")["split_fixed_cycles"] == pytest.approx(80000.0, rel=0.05)
    both = evaluate(shapes(memory=(16,), vcpus=(16,), hugepages=("2M",), device_sets=1), cal,
                    outputs=["split_merge_cycles"])
    ratio = both.set_index("platform")["split_merge_cycles"]
    assert ratio["tdx"] != pytest.approx(ratio["snp"], rel=0.05)
    annotated = fitting.annotate(both, cal)  # intervals for the TDX row only
    assert np.isnan(annotated.loc[annotated.platform == "snp", "split_merge_cycles_pi_low"]).all()
    assert not np.isnan(annotated.loc[annotated.platform == "tdx", "split_merge_cycles_pi_low"]).any()
    assert calibration.Calibration.from_dict(json.loads(cal.to_json())).values_for("tdx") == cal.values_for("tdx")


# --- outputs ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def splits_fit(truth):
    runs = fitting.synthetic_runs(shapes(), truth, targets=["splits"], noise=0.05, seed=11)
    return fitting.fit(runs, "splits", calibration=truth, hold=["transient_regions"])


def test_json_object_has_the_documented_keys(splits_fit):
    obj = json.loads(splits_fit.to_json())
    for key in ("target", "model", "platform", "coefficients", "held", "metrics", "data_sha256", "n_rows", "warnings"):
        assert key in obj
    assert set(obj["metrics"]) >= {"r2", "rmse", "loo_rmse", "aic", "bic"}
    for entry in obj["coefficients"].values():
        assert set(entry) >= {"value", "stderr", "ci_low", "ci_high", "unit"}
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    assert len(obj["data_sha256"]) == 64 and obj["n_rows"] == 128


def test_text_and_html_reports(splits_fit):
    text = splits_fit.to_text()
    assert "remainder_regions" in text and "± " in text and "leave-one-out RMSE" in text
    assert "held (not determined by these runs)" in text and "kernel_image_bytes" in text
    html = splits_fit._repr_html_()
    assert html.startswith("<div>") and "<table>" in html and "remainder_regions" in html


def test_calibration_file_round_trips_with_intervals_and_fit_info(tmp_path, splits_fit):
    cal = splits_fit.to_calibration()
    path = cal.save(tmp_path / "fitted.json")
    loaded = calibration.Calibration.load(path)
    assert loaded.origin("remainder_regions") is calibration.Origin.FITTED
    assert loaded.origin("kernel_image_bytes") is calibration.Origin.HELD
    assert loaded.coefficients["remainder_regions"].ci_low == pytest.approx(splits_fit.coefficients_["remainder_regions"].ci_low)
    assert loaded.provenance["data_sha256"] == splits_fit.data_sha256_
    record = loaded.fits["splits"]
    assert record.target == "splits" and list(record.free) == splits_fit.free_ and record.dof == splits_fit.dof_
    assert np.asarray(record.covariance).shape == (len(splits_fit.free_),) * 2
    assert loaded.origin("split_fixed_cycles") is splits_fit.calibration_.origin("split_fixed_cycles")  # untouched


def test_chained_fits_accumulate(truth, splits_fit):
    runs = fitting.synthetic_runs(shapes(), truth, targets=["split_merge_cycles"], noise=0.05, seed=12)
    second = fitting.fit(runs, "split_merge_cycles", calibration=splits_fit.to_calibration(), hold_fitted=True,
                         hold=["transient_regions"], alternatives=False)
    cal = second.to_calibration()
    assert sorted(cal.fits) == ["split_merge_cycles", "splits"]
    assert cal.origin("remainder_regions") is cal.origin("split_fixed_cycles") is calibration.Origin.FITTED


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
    runs = fitting.synthetic_runs(shapes(device_sets=1), truth, targets=["merges"], noise=0.05, seed=13)
    first = fitting.fit(runs, "merges", alternatives=False).to_json()
    assert fitting.fit(runs, "merges", alternatives=False).to_json() == first


def test_held_coefficients_fitted_earlier_carry_their_uncertainty(truth):
    runs = fitting.synthetic_runs(shapes(), truth, targets=["merges", "split_merge_cycles"], noise=0.05, seed=22)
    first = fitting.fit(runs, "merges", calibration=truth, alternatives=False)
    chained = fitting.fit(runs, "split_merge_cycles", calibration=first.to_calibration(), hold_fitted=True,
                          hold=["remainder_regions"], alternatives=False)
    stripped = first.to_calibration()
    stripped = calibration.Calibration.from_values(stripped.values, {n: c.origin for n, c in stripped.coefficients.items()},
                                                   form=stripped.form)
    exact = fitting.fit(runs, "split_merge_cycles", calibration=stripped, hold_fitted=True,
                        hold=["remainder_regions"], alternatives=False)
    assert chained.free_ == exact.free_ == ["split_fixed_cycles", "split_subpage_cycles"]
    assert chained.values_ == pytest.approx(exact.values_)
    assert any(chained.coefficients_[n].stderr > exact.coefficients_[n].stderr for n in chained.free_)
    assert any("include the uncertainty of coefficients held" in w.text for w in chained.warnings_)
    assert all(inside(chained, truth).values())


def test_small_nonlinear_fits_refit_for_leave_one_out(truth):
    design = shapes(memory=(4, 16), vcpus=(1, 8, 32), platforms=("snp",), device_sets=1)
    runs = fitting.synthetic_runs(design, truth, targets=["merges"], noise=0.05, seed=3)
    exact = fitting.fit(runs, "merges", calibration=truth, alternatives=False)
    approx = fitting.fit(runs, "merges", calibration=truth, alternatives=False, loo="first-order")
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
