"""Run time (docs/runtime.md): the workload, its closed form and its CLI flags.

Boot-only predictions are unchanged without a workload (against outputs recorded from the
model before run time was added; the 1 GiB guests' rows re-recorded when the kernel atomic
pool became conditional on RAM above 4 GiB, docs/placement.md §9 (b)); the properties of issue 10 hold (Hypothesis).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costmodel import evaluate as ev
from costmodel.cli import main
from costmodel.errors import InputError
from costmodel.units import GiB, KiB, MiB
from costmodel.workload import Accelerator, Workload, accelerator

BOOT_OUTPUTS = ["splits", "merges", "conversion_ops", "split_merge_cycles", "conversion_cycles", "split_merge_share",
                "shared_bytes", "vmemmap_unsplit_bytes", "vmemmap_bytes", "pageless_saving_bytes",
                "huge_mapped_fraction"]
RUNTIME = ["runtime_splits", "runtime_merges", "runtime_conversion_ops", "runtime_conversion_cycles",
           "total_splits", "total_merges", "total_conversion_ops", "total_conversion_cycles"]


def test_boot_only_outputs_unchanged_on_a_grid():
    """Every boot output, under every scenario, equals the value recorded before run time."""
    baseline = pd.read_csv(Path(__file__).parent / "data" / "boot-baseline.csv")
    for scenario, expected in baseline.groupby("scenario", sort=False):
        configs = expected[["memory_bytes", "vcpus", "hugepage_bytes", "platform", "numa_nodes"]].reset_index(drop=True)
        got = ev.evaluate(configs, scenario=scenario)
        for name in BOOT_OUTPUTS:
            np.testing.assert_allclose(got[name].to_numpy(), expected[name].to_numpy(), rtol=1e-9, atol=1e-9,
                                       err_msg=f"{scenario} {name}")
        np.testing.assert_array_equal(got["runtime_splits"].to_numpy(), 0)
        np.testing.assert_array_equal(got["runtime_conversion_ops"].to_numpy(), 0)
        np.testing.assert_allclose(got["total_splits"], got["splits"])
        np.testing.assert_allclose(got["final_huge_mapped_fraction"], got["huge_mapped_fraction"])


def run_workload(workload: Workload, memory=16 * GiB, vcpus=16, hugepage=2 * MiB, platform="snp",
                 scenario="status_quo", swiotlb=None, **shape):
    config = {"memory_bytes": memory, "vcpus": vcpus, "hugepage_bytes": hugepage, "platform": platform,
              **shape, **workload.to_columns()}
    if swiotlb:
        config["swiotlb_bytes"] = swiotlb
    return ev.evaluate(config, scenario=scenario).iloc[0]


memory = st.sampled_from([2 * GiB, 4 * GiB, 16 * GiB, 64 * GiB])
hugepage = st.sampled_from([2 * MiB, GiB])
platform = st.sampled_from(["snp", "tdx"])
gpu = st.builds(Accelerator, count=st.integers(1, 8), unprotected_bytes=st.sampled_from([0, 64 * MiB, GiB]),
                chunk_bytes=st.sampled_from([4 * KiB, 64 * KiB, 2 * MiB]), staging=st.integers(0, 16))
workloads = st.builds(
    Workload, io_in_flight_bytes=st.sampled_from([0, 256 * MiB, 2 * GiB]), swiotlb_dynamic=st.booleans(),
    churn_per_second=st.sampled_from([0.0, 0.5, 20.0]), churn_bytes=st.sampled_from([4 * KiB, 64 * KiB, 4 * MiB]),
    accelerators=st.lists(gpu, max_size=2).map(tuple), attestations_per_second=st.sampled_from([0.0, 1.0]),
    flip_rate=st.sampled_from([0.0, 3.0]), flip_isolated=st.booleans(), duration_seconds=st.sampled_from([0.0, 60.0, 3600.0]),
    jobs=st.integers(0, 5), firmware_release=st.booleans())


@given(workloads, memory, hugepage, platform)
def test_tdisp_device_adds_no_conversions(workload, m, h, p):
    tdisp = Workload(**{**workload.__dict__, "accelerators": workload.accelerators + (
        Accelerator(count=4, unprotected_bytes=GiB, staging=8, tdisp=True),)})
    a, b = run_workload(workload, m, hugepage=h, platform=p), run_workload(tdisp, m, hugepage=h, platform=p)
    for name in RUNTIME:
        assert a[name] == b[name], name


@given(workloads, memory, hugepage, platform, st.sampled_from([64 * MiB, 512 * MiB, 4 * GiB]))
def test_more_io_in_flight_never_lowers_splits(workload, m, h, p, more):
    # churn and isolated flips split only while a free hugepage is left: dynamic pools that
    # take the last ones lower their split events (docs/runtime.md), so they are left out here
    workload = Workload(**{**workload.__dict__, "churn_per_second": 0.0, "flip_isolated": False})
    base = run_workload(workload, m, hugepage=h, platform=p)
    grown = run_workload(Workload(**{**workload.__dict__, "io_in_flight_bytes": workload.io_in_flight_bytes + more}),
                         m, hugepage=h, platform=p)
    assert grown["total_splits"] >= base["total_splits"]
    assert grown["swiotlb_shortfall_bytes"] >= base["swiotlb_shortfall_bytes"]


@given(workloads, memory, hugepage, platform, st.sampled_from([0.1, 10.0, 1000.0]))
def test_flips_on_split_pages_add_cycles_not_splits(workload, m, h, p, rate):
    shared = {**workload.__dict__, "flip_isolated": False, "duration_seconds": 60.0}
    base = run_workload(Workload(**shared), m, hugepage=h, platform=p)
    flipped = run_workload(Workload(**{**shared, "flip_rate": shared["flip_rate"] + rate}), m, hugepage=h, platform=p)
    assert flipped["runtime_splits"] == base["runtime_splits"]
    assert flipped["runtime_merges"] == base["runtime_merges"]
    assert flipped["runtime_conversion_cycles"] > base["runtime_conversion_cycles"]


@given(workloads, memory, hugepage, platform, st.sampled_from(["status_quo", "host_promotion", "struct_page_less"]))
def test_merges_never_exceed_splits(workload, m, h, p, scenario):
    row = run_workload(workload, m, hugepage=h, platform=p, scenario=scenario)
    assert row["runtime_merges"] <= row["runtime_splits"] + 1e-9
    assert row["total_merges"] <= row["total_splits"] + 1e-9
    assert 0 <= row["final_huge_mapped_fraction"] <= row["huge_mapped_fraction"] + 1e-12


@given(workloads, memory, hugepage, platform)
def test_run_time_totals_linear_in_duration_once_steady(workload, m, h, p):
    rows = [run_workload(Workload(**{**workload.__dict__, "duration_seconds": t}), m, hugepage=h, platform=p)
            for t in (600.0, 1200.0, 1800.0)]
    for name in ("runtime_splits", "runtime_merges", "runtime_conversion_ops", "runtime_conversion_cycles"):
        first, second = rows[1][name] - rows[0][name], rows[2][name] - rows[1][name]
        assert second == pytest.approx(first, rel=1e-9, abs=1e-6), name
    assert rows[1]["runtime_splits"] - rows[0]["runtime_splits"] == pytest.approx(600 * rows[0]["steady_split_rate"])


def test_dynamic_swiotlb_adds_pools_or_reports_the_shortfall():
    fixed = {"kaslr": False}  # the image at 16 MiB: the SWIOTLB is never halved
    io = Workload(io_in_flight_bytes=GiB + 40 * MiB)
    waiting = run_workload(io, **fixed)
    assert waiting["swiotlb_shortfall_bytes"] == 40 * MiB and waiting["runtime_splits"] == 0
    dynamic = Workload(io_in_flight_bytes=GiB + 40 * MiB, swiotlb_dynamic=True)
    grown = run_workload(dynamic, **fixed)
    assert grown["swiotlb_shortfall_bytes"] == 0
    assert grown["runtime_splits"] == 20  # ten 4 MiB pools, two 2 MiB hugepages each
    assert grown["runtime_merges"] == 0  # the pools are permanent
    # with KASLR, a share p of boots has a 512 MiB pool: 128 more pools, 256 more hugepages
    p = ev.evaluate({"memory_bytes": 16 * GiB, "vcpus": 16, "hugepage_bytes": 2 * MiB, "platform": "snp"},
                    outputs=["swiotlb_halved_share"]).iloc[0]["swiotlb_halved_share"]
    assert 0.01 < p < 0.02
    assert run_workload(io)["swiotlb_shortfall_bytes"] == pytest.approx(40 * MiB + p * 512 * MiB)
    assert run_workload(dynamic)["runtime_splits"] == pytest.approx(20 + p * 256)


def test_firmware_release_names_part_of_the_merges():
    boot = run_workload(Workload())
    assert boot["merges"] == pytest.approx(30, abs=0.5)
    assert 3 < boot["merges_from_firmware"] < 5  # ≈5.6 MiB over 2 MiB pages
    assert boot["merges_from_firmware"] + boot["merges_unexplained"] == pytest.approx(boot["merges"])
    kept = run_workload(Workload(firmware_release=False))
    assert kept["merges"] == pytest.approx(boot["merges"] - boot["merges_from_firmware"])
    assert kept["splits"] == boot["splits"]


def test_host_promotion_restores_merged_run_time_hugepages():
    jobs = Workload(accelerators=(Accelerator(count=1, unprotected_bytes=GiB),), jobs=3)
    quo, promoted = run_workload(jobs), run_workload(jobs, scenario="host_promotion")
    assert quo["runtime_merges"] == promoted["runtime_merges"] == 3 * 512
    assert promoted["final_huge_mapped_fraction"] > quo["final_huge_mapped_fraction"]
    tdx = run_workload(jobs, platform="tdx", scenario="host_promotion")
    assert tdx["final_huge_mapped_fraction"] == pytest.approx(run_workload(jobs, platform="tdx")["final_huge_mapped_fraction"])
    pageless = run_workload(jobs, scenario="struct_page_less")
    assert pageless["runtime_split_merge_cycles"] < quo["runtime_split_merge_cycles"]


@pytest.mark.parametrize("spec, message", [
    ("gpu:count=2,unprotected=1GiB,colour=red", "keys count"),
    ("gpu:unprotected=1MiB,chunk=2MiB", "at most the unprotected size"),
    ("gpu:chunk=3KiB", "power of two"),
    ("tpu:count=1", "gpu["),
])
def test_bad_accelerator_specs(spec, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[")):
        accelerator(spec)


@pytest.mark.parametrize("argv, flag", [
    (["--churn", "-3"], "--churn"), (["--flip-rate", "-1"], "--flip-rate"), (["--attestations", "x"], "--attestations"),
    (["--duration", "-5m"], "--duration"), (["--accelerator", "gpu:cont=8"], "--accelerator"),
    (["--accelerator", "gpu:unprotected=1MiB,chunk=2MiB"], "--accelerator"), (["--io-in-flight", "-1G"], "--io-in-flight"),
])
def test_bad_workload_flags_exit_2_with_one_line(capsys, argv, flag):
    assert main(["predict", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err


def test_predict_accelerator_json(capsys):
    assert main(["predict", "--accelerator", "gpu:count=8,unprotected=4GiB", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["splits"] == pytest.approx(622, abs=31)  # boot unchanged
    assert data["runtime_splits"] > 1000 and data["runtime_merges"] == 0
    assert data["total_splits"] == pytest.approx(data["splits"] + data["runtime_splits"])
    assert data["runtime_conversion_ops"] == 8 * 4 * GiB / (4 * KiB)  # page by page


def test_predict_tdisp_accelerator_is_boot_only(capsys):
    assert main(["predict", "--accelerator", "gpu:count=8,unprotected=4GiB,tdisp=1", "--duration", "1h", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runtime_splits"] == 0 and data["runtime_conversion_ops"] == 0


def test_predict_workload_table(capsys):
    assert main(["predict", "--memory", "8GiB,16GiB", "--churn", "10:size=64KiB", "--duration", "10m", "--table"]) == 0
    out = capsys.readouterr().out
    assert "runtime_splits" in out and "6000" in out.replace(",", "")


def test_replay_matches_closed_form_on_examples():
    from costmodel.shape import VmShape
    from costmodel.simulate.runtime import simulate_runtime

    cases = [
        (VmShape(), Workload(accelerators=(Accelerator(count=2, unprotected_bytes=GiB, staging=16),), jobs=3)),
        (VmShape(), Workload(io_in_flight_bytes=2 * GiB, swiotlb_dynamic=True)),
        (VmShape(memory_bytes=4 * GiB, platform="tdx"),
         Workload(churn_per_second=5, churn_bytes=4 * MiB, duration_seconds=100, attestations_per_second=1)),
        (VmShape(memory_bytes=16 * GiB, hugepage_bytes=GiB), Workload(churn_per_second=5, duration_seconds=100)),
    ]
    for shape, workload in cases:
        sim = simulate_runtime(shape, workload, 4).to_dict()
        model = run_workload(workload, shape.memory_bytes, hugepage=shape.hugepage_bytes, platform=shape.platform)
        for name in ("runtime_splits", "runtime_merges"):
            assert abs(sim[name] - model[name]) <= max(2, 0.05 * sim[name]), (name, sim[name], model[name])
        series = sim["huge_mapped_fraction_over_time"]["fraction"]
        assert all(0 <= f <= 1 for f in series) and series[-1] <= series[0] + 1e-12


def test_simulate_cli_takes_the_workload(capsys):
    assert main(["simulate", "--accelerator", "gpu:count=8,unprotected=4GiB", "--seeds", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runtime"]["runtime_splits"] == pytest.approx(data["closed_form_runtime"]["runtime_splits"], abs=2)
    assert main(["simulate", "--churn", "-1"]) == 2


def test_accelerators_family_side_by_side():
    from costmodel.results import predict_family

    frame = predict_family("accelerators").set_index("case")
    assert frame.loc["gpu_0", "runtime_splits"] == 0 and frame.loc["gpu_8_tdisp", "runtime_conversion_ops"] == 0
    assert frame.loc["gpu_1", "runtime_splits"] < frame.loc["gpu_4", "runtime_splits"] < frame.loc["gpu_8", "runtime_splits"]
    assert frame.loc["gpu_8_2m_chunks", "runtime_conversion_ops"] < frame.loc["gpu_8", "runtime_conversion_ops"]
    assert (frame["splits"] == frame.loc["gpu_0", "splits"]).all()  # boot is the same VM


def test_kaslr_halved_swiotlb_share_matches_the_placement_simulator():
    """The run's SWIOTLB is halved in the boots whose KASLR image leaves no free low piece of S
    bytes (docs/runtime.md rule 1): the closed form's share against 400 simulated boots."""
    from costmodel.shape import VmShape
    from costmodel.simulate.boot import replay

    shape = VmShape(memory_bytes=2 * GiB, vcpus=4, swiotlb_bytes=GiB)
    sizes = np.array([replay(shape, None, np.random.default_rng(seed)).swiotlb_bytes for seed in range(400)])
    halved = float((sizes < GiB).mean())
    model = ev.evaluate({**shape.to_columns(), "swiotlb_bytes": GiB}, outputs=["swiotlb_halved_share"]).iloc[0]
    assert 0.1 < model["swiotlb_halved_share"] < 0.2
    assert abs(halved - model["swiotlb_halved_share"]) < 0.06  # binomial sd over 400 boots ≈ 0.018
    # 1.5 GiB in flight: the overflow is 512 MiB in a full-size boot, 1 GiB in a halved one
    row = run_workload(Workload(io_in_flight_bytes=GiB + 512 * MiB), memory=2 * GiB, vcpus=4, swiotlb=GiB)
    share = model["swiotlb_halved_share"]
    assert row["swiotlb_shortfall_bytes"] == pytest.approx((1 - share) * 512 * MiB + share * GiB)
    reference = run_workload(Workload(io_in_flight_bytes=GiB, swiotlb_dynamic=True))
    assert 3 < reference["runtime_splits"] < 5  # ≈1.6 % of boots add 256 hugepages of pools


def test_replay_packs_every_devices_accelerator_memory_together():
    from costmodel.shape import VmShape
    from costmodel.simulate.runtime import simulate_runtime

    two = Workload(accelerators=(Accelerator(count=8, unprotected_bytes=4 * MiB, chunk_bytes=4 * MiB),
                                 Accelerator(count=8, unprotected_bytes=4 * MiB, chunk_bytes=64 * KiB)), jobs=2)
    shape = VmShape(hugepage_bytes=GiB, platform="tdx")
    sim = simulate_runtime(shape, two, 3).to_dict()
    model = run_workload(two, hugepage=GiB, platform="tdx")
    assert sim["runtime_splits"] == model["runtime_splits"] == 2  # 64 MiB in one 1 GiB hugepage per job
    assert sim["runtime_merges"] == model["runtime_merges"] == 2


def test_churn_splits_only_where_a_boot_left_a_free_hugepage():
    """A 4 GiB guest with 1 GiB pages keeps one hugepage free in about 3 boots of 4 (KASLR's
    .bss..decrypted lands in the other's transient hugepage): every churn cycle splits it, or
    none does."""
    from costmodel.shape import VmShape
    from costmodel.simulate.runtime import simulate_runtime

    shape = VmShape(memory_bytes=4 * GiB, vcpus=4, hugepage_bytes=GiB)
    churn = Workload(churn_per_second=1.0, duration_seconds=100.0)
    config = {"memory_bytes": 4 * GiB, "vcpus": 4, "hugepage_bytes": GiB, "platform": "snp", **churn.to_columns()}
    model = ev.evaluate(config, outputs=["free_hugepages", "ram_hugepages", "splits", "merges", "runtime_splits"]).iloc[0]
    assert model["free_hugepages"] == pytest.approx(model["ram_hugepages"] - model["splits"] + model["merges"])
    assert 0 < model["free_hugepages"] < 1
    sim = simulate_runtime(shape, churn, 120)
    share = float((sim.splits > 0).mean())
    assert set(np.unique(sim.splits)) <= {0, 100}
    assert abs(share - model["free_hugepages"]) < 0.15  # binomial sd over 120 seeds ≈ 0.04
    assert model["runtime_splits"] == pytest.approx(100 * model["free_hugepages"])


@pytest.mark.parametrize("argv, flag", [
    (["--churn", "-3"], "--churn"), (["--flip-rate", "-1"], "--flip-rate"),
    (["--accelerator", "gpu:cont=8"], "--accelerator"), (["--accelerator", "gpu:unprotected=1MiB,chunk=2MiB"],
                                                         "--accelerator"),
    (["--duration", "soon"], "--duration"),
])
def test_bad_workload_flags_exit_2_with_one_line_in_simulate(capsys, argv, flag):
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err


@pytest.mark.parametrize("command", ["predict", "simulate"])
def test_accelerator_json_from_the_shell(command):
    """`costmodel predict|simulate --accelerator gpu:count=8,unprotected=4GiB --json` as a user
    types it: the installed script, a JSON document on stdout, nothing on stderr."""
    import subprocess
    import sys

    script = Path(sys.executable).with_name("costmodel")
    args = [str(script), command, "--accelerator", "gpu:count=8,unprotected=4GiB", "--json"]
    if command == "simulate":
        args += ["--seeds", "3"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    data = json.loads(done.stdout)
    runtime = data if command == "predict" else data["runtime"]
    # 8 × 4 GiB cannot fit in a 16 GiB guest: every hugepage left free after boot splits
    assert 7000 < runtime["runtime_splits"] <= 8192 - 500
    if command == "predict":
        assert runtime["runtime_splits"] == pytest.approx(8192 - data["splits"] + data["merges"])
    if command == "simulate":
        assert runtime["runtime_splits"] == pytest.approx(data["closed_form_runtime"]["runtime_splits"], abs=2)
