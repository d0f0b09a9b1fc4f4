"""Figures drawn from library frames, checked on the axes (no kernel, Agg backend)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from costmodel import results  # noqa: E402
from costmodel.evaluate import evaluate  # noqa: E402
from costmodel.reporting import plots, sections  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def point(reference_calibration):
    return results.predict("16GiB", 16, "2M", "snp", calibration=reference_calibration)


def test_splits_by_source_sorted_with_values_and_log_axis(point):
    ax = plots.splits_by_source(point.breakdown(), total=point.to_dict()["splits"])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "SWIOTLB bounce pool", "largest source on top"
    assert "kvmclock" not in labels, "sources with no split are left out"
    assert ax.get_xscale() == "log" and "[1]" in ax.get_xlabel()
    assert "total 622" in ax.get_title()
    assert any(t.get_text().strip() == "513" for t in ax.texts)
    assert not any(t.get_text().strip() in ("0", "0.0", "0.00") for t in ax.texts), "no zero printed"


def test_splits_by_source_values_never_left_of_the_axis(point):
    """A value smaller than the axis' left end is printed at that end, right of the labels."""
    parts = point.breakdown()
    parts.loc[parts["source"] == "guest_messages", "splits"] = 0.006  # a trace, 5 decades below SWIOTLB
    ax = plots.splits_by_source(parts)
    left = ax.get_xlim()[0]
    assert all(t.get_position()[0] >= left for t in ax.texts)
    assert any(t.get_text().strip() == "< 0.01" for t in ax.texts)


def test_figures_go_out_as_2x_png_with_alt_text(point, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **_: shown.append(obj))
    fig, ax = plots.figure(height=3.0)
    plots.splits_by_source(point.breakdown(), ax, total=622)
    plots.show(fig)
    image = shown[0]
    assert image.retina and image.alt.startswith("Figure. Splits by source (total 622): x hugepages split")
    assert image.width == pytest.approx(7.0 * plots.PNG_DPI / 2, abs=2), "shown at half its pixels"
    assert not plt.fignum_exists(fig.number), "closed: the inline backend does not show it again"


def test_scaling_marks_the_configuration_and_labels_units(point, reference_calibration):
    data = point.to_dict()
    sweep = sections.scaling_grids(data)["vcpus"]
    grid = sweep.configs
    frame = sweep.evaluate(reference_calibration)
    ax = plots.scaling(frame, "vcpus", "splits", reference=data)
    assert ax.get_xlabel() == "vCPUs [1]" and ax.get_ylabel() == "hugepages split [1]"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log", "2 MiB and 1 GiB counts both readable"
    star = [c for c in ax.collections if c.get_label() == "this configuration"]
    assert len(star) == 1 and np.allclose(star[0].get_offsets()[0], [16, 622])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "2 MiB pages" in legend and "1 GiB pages" in legend
    box = ax.get_legend().get_window_extent(ax.figure.canvas.get_renderer())
    assert box.y0 >= ax.get_window_extent().y1 - 1, "legend above the axes, off the data"
    assert sorted(set(grid["hugepage_bytes"])) == [2 * 1024**2, 1024**3]
    assert grid["boot_vcpus"].isna().all(), "boot vCPUs follow the swept vCPUs"


@pytest.mark.parametrize("x", ["numa_nodes", "queue_size"])
def test_numa_and_queue_size_sweeps(point, reference_calibration, x):
    sweep = sections.scaling_grids(point.to_dict())[x]
    frame = sweep.evaluate(reference_calibration)
    assert x in frame and len(set(frame[x])) >= 4
    if x == "numa_nodes":
        assert sorted(set(frame["numa_nodes"])) == [1, 2, 4, 8]
    else:
        assert set(frame["devices"]) >= {"virtio-blk:size=64;virtio-net:size=64",
                                         "virtio-blk:size=1024;virtio-net:size=1024"}
    ax = plots.scaling(frame, x, "splits")
    assert ax.get_xlabel() == plots.LABELS[x]


def test_scaling_memory_axis_is_in_gib(point, reference_calibration):
    data = point.to_dict()
    frame = sections.scaling_grids(data)["memory_bytes"].evaluate(reference_calibration)
    ax = plots.scaling(frame, "memory_bytes", "merges", reference=data, legend=False)
    assert ax.get_xlabel() == "guest memory [GiB]" and ax.get_legend() is None
    assert np.allclose(ax.collections[-1].get_offsets()[0], [16, 30])


def test_cycle_budget_stacks_to_the_total_and_prints_the_share(reference_calibration, point):
    frame = evaluate(sections.configuration_frame(point.to_dict(), hugepage_bytes=[2 * 1024**2, 1024**3]),
                     reference_calibration, outputs=sections.BUDGET_OUTPUTS)
    ax = plots.cycle_budget(frame)
    tops = {}
    for bar in ax.patches:
        tops[bar.get_x()] = max(tops.get(bar.get_x(), 0), bar.get_y() + bar.get_height())
    assert np.allclose(sorted(tops.values()), sorted(frame["conversion_cycles"]))
    assert [t.get_text() for t in ax.texts] == [f"{100 * v:.1f} %" for v in frame["split_merge_share"]]
    assert ax.texts[0].get_text() == "7.0 %"  # the published 2 MiB share
    assert ax.get_ylabel() == "conversion cycles [cycles]"


def test_footprint_and_huge_mapped_in_people_units(reference_calibration, point):
    frame = evaluate(sections.configuration_frame(point.to_dict(), hugepage_bytes=[2 * 1024**2]),
                     reference_calibration, outputs=sections.BUDGET_OUTPUTS)
    ax = plots.footprint(frame)
    assert ax.get_ylabel() == "memory [MiB]"
    assert ax.patches[0].get_height() == pytest.approx(frame["vmemmap_bytes"].iloc[0] / 1024**2)
    ax = plots.huge_mapped(frame)
    assert ax.patches[0].get_height() == pytest.approx(100 * frame["huge_mapped_fraction"].iloc[0])
    assert ax.texts[0].get_text() == "92.4 %"


def test_scenarios_grouped_by_hugepage(reference_calibration, point):
    frame = sections.compare_scenarios(point.to_dict(), reference_calibration)
    ax = plots.scenarios(frame, "splits", titles={"status_quo": "Status quo"})
    assert len(ax.patches) == 4 * 2
    assert ax.get_xticklabels()[0].get_text() == "Status quo"
    assert ax.get_ylabel() == "hugepages split [1]"
    legend = ax.get_legend().get_window_extent(ax.figure.canvas.get_renderer())
    assert legend.y0 >= ax.get_window_extent().y1 - 1, "legend above the bars"


def test_measured_against_predicted_marks_extrapolation_and_intervals():
    frame = pd.DataFrame({"splits": [600.0, 6.0, 700.0], "splits_predicted": [622.0, 6.0, 690.0],
                          "splits_pi_low": [580.0, 4.0, 600.0], "splits_pi_high": [660.0, 8.0, 780.0],
                          "extrapolation": ["", "", "vcpus"]})
    ax = plots.predicted_vs_measured(frame, "splits")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "outside the fitted range" in labels and "prediction interval" in labels
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "predicted hugepages split [1]"
    ax = plots.residuals(frame, "splits")
    low, high = ax.get_ylim()
    assert low < -22 and high > 10 and low == -high
