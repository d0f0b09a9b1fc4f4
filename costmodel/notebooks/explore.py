# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore the split/merge cost model
#
# Move the controls: the numbers, the splits by source and the scaling curves follow.
# Open with `costmodel lab`. Everything shown is computed by `costmodel`; this notebook
# only wires controls to it. The first run compiles the model (a few seconds); moving a
# control then takes a fraction of a second.

# %% tags=["parameters"]
memory = "16GiB"  # starting guest memory
vcpus = 16  # starting possible vCPUs
hugepage = "2M"  # starting hugepage size: 4K, 2M or 1G
platform = "snp"  # snp or tdx
scenario = "status_quo"  # status_quo, guest_pooling, host_promotion, struct_page_less
calibration = None  # calibration JSON file; None: derived from the published reference

# %%
import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import HTML, display

from costmodel import calibration as calibration_module
from costmodel import parse, results, units
from costmodel.model import scenarios
from costmodel.render import numbers
from costmodel.reporting import plots, sections

plots.style()
cal = calibration_module.load_or_default(calibration)
GiB = units.GiB
memory_choices = [(numbers.format_size(2**k * GiB), 2**k * GiB) for k in range(0, 11)]
start_memory = parse.size(memory, "parameter memory")
if start_memory not in dict(memory_choices).values():
    memory_choices = sorted(memory_choices + [(numbers.format_size(start_memory), start_memory)], key=lambda c: c[1])

controls = dict(
    memory_bytes=widgets.SelectionSlider(options=memory_choices, value=start_memory, description="memory"),
    vcpus=widgets.IntSlider(value=parse.count(vcpus, "parameter vcpus"), min=1, max=256, description="vCPUs"),
    virtqueues=widgets.IntSlider(value=0, min=0, max=256, description="virtqueues",
                                 tooltip="0: vCPUs + 3, as QEMU gives by default"),
    hugepage_bytes=widgets.ToggleButtons(options=[("4 KiB", 4 * units.KiB), ("2 MiB", 2 * units.MiB), ("1 GiB", GiB)],
                                         value=parse.hugepage(hugepage, "parameter hugepage"), description="hugepage"),
    platform=widgets.ToggleButtons(options=[("SEV-SNP", "snp"), ("TDX", "tdx")],
                                   value=parse.platform(platform, "parameter platform"), description="platform"),
    scenario=widgets.Dropdown(options=[(s.title, s.name) for s in scenarios.SCENARIOS.values()],
                              value=scenarios.get(scenario).name, description="scenario"),
)


def show(memory_bytes, vcpus, virtqueues, hugepage_bytes, platform, scenario):
    prediction = results.predict(memory_bytes, vcpus, hugepage_bytes, platform, virtqueues=virtqueues or None,
                                 scenario=scenario, calibration=cal)
    point = prediction.to_dict()
    display(HTML(sections.key_numbers_table(point)))
    fig, axes = plots.figure(ncols=2, height=3.0, width=10)
    plots.splits_by_source(prediction.breakdown(), axes[0], total=point["splits"])
    grid = sections.scaling_grids(point, virtqueues_given=bool(virtqueues))["vcpus"]
    reference = point if point["hugepage_bytes"] in sections.SCALING_HUGEPAGES else None
    plots.scaling(results.evaluate_with_breakdown(grid, cal, scenario), "vcpus", "splits", axes[1], reference=reference)
    plt.show()


output = widgets.interactive_output(show, controls)
display(widgets.VBox([widgets.HBox([controls["memory_bytes"], controls["vcpus"], controls["virtqueues"]]),
                      widgets.HBox([controls["hugepage_bytes"], controls["platform"]]), controls["scenario"], output]))

# %% [markdown]
# The same numbers from a shell: `costmodel predict --memory 16GiB --vcpus 16 --hugepage 2M`;
# a report to attach to a review: `costmodel report -p memory 16GiB -p hugepage 1G`.
