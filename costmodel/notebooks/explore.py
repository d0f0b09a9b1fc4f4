# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore the split/merge cost model
#
# Move the controls: the numbers, the splits by source and the scaling curves follow.
# Open with `costmodel lab`, then Run → Run All Cells (View → Collapse All Code leaves the
# controls alone on the page). Everything shown is computed by `costmodel`; this notebook
# only wires controls to it. The first run compiles the model (a few seconds); moving a control then takes a
# fraction of a second.

# %% tags=["parameters"]
memory = "16GiB"  # starting guest memory
vcpus = 16  # starting possible vCPUs
numa_nodes = 1  # starting NUMA nodes, 1-8
net_queues = 1  # starting virtio-net queue pairs
queue_size = 256  # starting queue size of the virtio devices [entries]
hugepage = "2M"  # starting hugepage size: 4K, 2M or 1G
platform = "snp"  # snp or tdx
scenario = "status_quo"  # status_quo, guest_pooling, host_promotion, struct_page_less
calibration = None  # calibration JSON file; None: derived from the published reference

# %%
import ipywidgets as widgets
from IPython.display import HTML, Markdown, display

from costmodel import calibration as calibration_module
from costmodel import parse, results, units
from costmodel.model import kernel, scenarios
from costmodel.render import numbers
from costmodel.reporting import accelerators, plots, sections
from costmodel.shape import VmShape

plots.style()
cal = calibration_module.load_or_default(calibration)
GiB = units.GiB
memory_choices = [(numbers.format_size(2**k * GiB), 2**k * GiB) for k in range(0, 11)]
start_memory = parse.size(memory, "parameter memory")
if start_memory not in dict(memory_choices).values():
    memory_choices = sorted(memory_choices + [(numbers.format_size(start_memory), start_memory)], key=lambda c: c[1])
sizes = [2**k for k in range(4, 13)]
start_size = parse.count(queue_size, "parameter queue_size")
if start_size not in sizes:
    sizes = sorted(set(sizes) | {start_size})

wide = {"description_width": "initial"}  # whole labels ("NUMA nodes", not "NUMA no…")
controls = dict(
    memory_bytes=widgets.SelectionSlider(options=memory_choices, value=start_memory, style=wide, description="memory"),
    vcpus=widgets.IntSlider(value=parse.count(vcpus, "parameter vcpus"), min=1, max=256, style=wide, description="vCPUs"),
    numa_nodes=widgets.IntSlider(value=parse.count(numa_nodes, "parameter numa_nodes"), min=1,
                                 max=kernel.MAX_NUMA_NODES, style=wide, description="NUMA nodes"),
    net_queues=widgets.IntSlider(value=parse.count(net_queues, "parameter net_queues"), min=1, max=64,
                                 style=wide, description="net queues", tooltip="virtio-net queue pairs"),
    queue_size=widgets.SelectionSlider(options=sizes, value=start_size, style=wide, description="queue size",
                                       tooltip="entries per virtqueue of the virtio-blk and virtio-net devices"),
    hugepage_bytes=widgets.ToggleButtons(options=[("4 KiB", 4 * units.KiB), ("2 MiB", 2 * units.MiB), ("1 GiB", GiB)],
                                         value=parse.hugepage(hugepage, "parameter hugepage"), description="hugepage"),
    platform=widgets.ToggleButtons(options=[("SEV-SNP", "snp"), ("TDX", "tdx")],
                                   value=parse.platform(platform, "parameter platform"), description="platform"),
    scenario=widgets.Dropdown(options=[(s.title, s.name) for s in scenarios.SCENARIOS.values()],
                              value=scenarios.get(scenario).name, description="scenario"),
)


def shape_of(memory_bytes, vcpus, numa_nodes, net_queues, queue_size, hugepage_bytes, platform):
    """The VM shape the controls describe: QEMU's usual virtio-blk and virtio-net, resized."""
    devices = f"virtio-blk:size={queue_size};virtio-net:queues={net_queues},size={queue_size}"
    return VmShape.parse(memory=memory_bytes, vcpus=vcpus, numa_nodes=numa_nodes, devices=devices,
                         hugepage=hugepage_bytes, platform=platform, where="controls")


def show(memory_bytes, vcpus, numa_nodes, net_queues, queue_size, hugepage_bytes, platform, scenario):
    try:
        shape = shape_of(memory_bytes, vcpus, numa_nodes, net_queues, queue_size, hugepage_bytes, platform)
    except Exception as error:  # a combination the model rules out: say why, keep the controls
        display(Markdown(f"**Not a valid guest:** {error}"))
        return
    prediction = results.predict(shape=shape, scenario=scenario, calibration=cal)
    point = prediction.to_dict()
    display(HTML(sections.key_numbers_table(point)))
    fig, axes = plots.figure(ncols=2, height=3.0, width=10)
    plots.splits_by_source(prediction.breakdown(), axes[0], total=point["splits"])
    reference = point if point["hugepage_bytes"] in sections.SCALING_HUGEPAGES else None
    plots.scaling(sections.scaling_grids(shape)["vcpus"].evaluate(cal, scenario), "vcpus", "splits", axes[1],
                  reference=reference)
    plots.show(fig)
    command = (f"costmodel predict --memory {numbers.format_size(shape.memory_bytes).replace(' ', '')} "
               f"--vcpus {shape.vcpus} --numa-nodes {shape.numa_nodes} "
               + " ".join(f"--device {d.spec()}" for d in shape.devices)
               + f" --hugepage {numbers.format_hugepage(shape.hugepage_bytes)} --platform {shape.platform}"
               + (f" --scenario {scenario}" if scenario != "status_quo" else ""))
    display(Markdown(f"The same numbers from a shell: `{command}`"))


output = widgets.interactive_output(show, controls)
display(widgets.VBox([widgets.HBox([controls["memory_bytes"], controls["vcpus"], controls["numa_nodes"]]),
                      widgets.HBox([controls["net_queues"], controls["queue_size"]]),
                      widgets.HBox([controls["hugepage_bytes"], controls["platform"]]), controls["scenario"], output]))

# %% [markdown]
# ## Accelerators
#
# The guest the controls above describe, with 0, 1, 4 and 8 GPUs in confidential-computing
# mode, less unprotected memory, larger chunks, staging buffers only, memory allocated per job,
# and the same GPUs accepted under TDISP: the boot once, then what each case adds over an hour
# after boot (docs/runtime.md). One case from a shell:
# `costmodel predict --accelerator gpu:count=8,unprotected=1GiB,staging=8 --duration 1h`.


# %%
def show_accelerators(memory_bytes, vcpus, numa_nodes, net_queues, queue_size, hugepage_bytes, platform, scenario):
    try:
        shape = shape_of(memory_bytes, vcpus, numa_nodes, net_queues, queue_size, hugepage_bytes, platform)
    except Exception as error:  # the controls' cell already says why
        display(Markdown(f"**Not a valid guest:** {error}"))
        return
    gpus = accelerators.family(shape, cal, scenario)
    display(HTML(accelerators.results_table(gpus)))
    fig, _ = accelerators.figure(gpus)
    plots.show(fig)
    display(Markdown(accelerators.reading(gpus)))


display(widgets.interactive_output(show_accelerators, controls))

# %% [markdown]
# A report to attach to a review: `costmodel report -p memory 64GiB -p hugepage 1G -p numa_nodes 2`
# (all parameters: `costmodel report --help`).
