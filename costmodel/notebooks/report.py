# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# <!-- The reference report of costmodel: one VM shape, every section the library can say about it.
#      Run with `costmodel report -p memory 16GiB -p hugepage 1G …` (papermill) or open in JupyterLab.
#      This notebook only calls costmodel; every number comes from the library. -->

# %% tags=["parameters"]
memory = "16GiB"  # guest memory: 16GiB, 16G, 512MiB, … (binary units as QEMU -m)
vcpus = 16  # possible vCPUs
boot_vcpus = None  # vCPUs online at boot; None: all of them
numa_nodes = 1  # NUMA nodes, 1-8
lowmem = None  # RAM below 4 GiB; None: q35's split
devices = None  # --device specs joined by semicolons; None: one virtio-blk and one virtio-net
virtqueues = None  # shortcut for one virtio device with this many queues (instead of devices)
hugepage = "2M"  # guest_memfd hugepage size: 4K (none), 2M or 1G
platform = "snp"  # snp (AMD SEV-SNP) or tdx (Intel TDX)
kaslr = True  # physical KASLR
svsm = False  # SEV-SNP under an SVSM
atomic_pools = True  # the kernel builds the DMA atomic pools
scenario = "status_quo"  # status_quo, guest_pooling, host_promotion, struct_page_less
calibration = None  # calibration JSON file; None: derived from the published reference
data = None  # optional measurements file (CSV/Parquet) to compare with the model

# %%
import pandas as pd
from IPython.display import HTML, Image, Markdown, display

import costmodel.reporting.accelerators as accelerators
from costmodel import calibration as calibration_module
from costmodel import results
from costmodel.evaluate import evaluate
from costmodel.model import scenarios
from costmodel.reporting import cards, figures, plots, sections, simulated
from costmodel.shape import VmShape

# Same value forms and checks as `costmodel predict`: errors name the parameter.
shape = VmShape.parse(memory=memory, vcpus=vcpus, boot_vcpus=boot_vcpus, numa_nodes=numa_nodes, lowmem=lowmem,
                      devices=None if devices in (None, "", "None") else devices,
                      virtqueues=None if virtqueues in (None, "", "None") else virtqueues, hugepage=hugepage,
                      platform=platform, kaslr=kaslr, svsm=svsm, atomic_pools=atomic_pools, where="parameters")
scenario = scenarios.get(scenario).name
cal = calibration_module.load_or_default(calibration)
prediction = results.predict(shape=shape, scenario=scenario, calibration=cal)
point = prediction.to_dict()
hugepage_bytes, platform = shape.hugepage_bytes, shape.platform
plots.style()
display(Markdown(sections.title_block(point, scenarios.get(scenario).title, cal)))

# %% [markdown]
# ## Configuration

# %%
display(HTML(sections.configuration_table(point, cal, calibration, data, shape=shape)))

# %% [markdown]
# ## Key numbers

# %%
display(HTML(sections.key_numbers_table(point)))
for note in results.Prediction(pd.Series(point), cal).notes:  # e.g. TDX on borrowed SEV-SNP coefficients
    display(Markdown(f"**Note.** {note}."))

# %% [markdown]
# ## Formula card
#
# The closed form of the split count and the intermediates it uses, with this calibration's
# coefficients. `costmodel formula --target splits` writes out the per-node and per-cluster
# definitions and the equations with the numbers bound.

# %%
card = cards.card_text("splits", calibration=cal, scenario=scenario, fmt="markdown", platform=platform,
                       hugepage=hugepage_bytes, compact=True)  # kept on disk per calibration and configuration
display(Markdown(sections.formula_card(card)))

# %% [markdown]
# ## Splits by source
#
# Which shared regions force the splits. The SWIOTLB bounce pool is converted whole, so it
# splits every hugepage it touches; the small sources share hugepages when they land close
# together (the occupancy term of the formula), so their counts are expected values.

# %%
parts = prediction.breakdown()
figures.show(figures.splits_by_source, parts, point["splits"])  # each figure from its inputs alone, drawn once per host
display(HTML(sections.frame_table(parts.assign(share=parts["splits"] / max(point["splits"], 1e-12)),
                                {"label": "source", "splits": "hugepages split [1]", "share": "share [%]"},
                                formats={"splits": "expected", "share": "pct"})))

# %% [markdown]
# ## Scaling with vCPUs, memory, NUMA nodes and device queues
#
# Splits and merges as one input varies and the others stay at this configuration, for
# 2 MiB and 1 GiB pages; inputs left to their defaults follow (boot vCPUs and virtio-blk
# queues follow the vCPUs, low memory and the SWIOTLB the memory). The star marks this
# configuration. Lines are the closed form's expectation; the shaded band is the placement
# simulator's 5–95 % over 16 seeded boots of the same guest (`costmodel simulate`), an
# independent replay of the allocators.

# %%
sweeps = sections.scaling_grids(shape)
frames = {x: sweep.evaluate(cal, scenario) for x, sweep in sweeps.items()}
simulated_bands = {x: simulated.bands(frame, cal) for x, frame in frames.items()}  # splits and merges: one set of boots
reference = dict(point, queue_size=None) if point["hugepage_bytes"] in sections.SCALING_HUGEPAGES else None
figures.show(figures.scaling, frames, simulated_bands, reference)

# %% [markdown]
# ## Guest-physical map
#
# Where this guest's shared memory lands, from one seeded boot of the placement simulator:
# each split hugepage coloured by the source that split it (each counted once, at the first
# source that touches it); hatched pages merge back.

# %%
if shape.hugepage_bytes > 4096:
    png, alt = simulated.map_png(shape, cal)
    display(Image(data=png, format="png", alt=alt))
else:
    display(Markdown("With 4 KiB pages nothing splits: no map."))

# %% [markdown]
# ## Conversion-cycle budget
#
# Cycles spent handling private↔shared conversions, and how many of them go to splitting
# and merging hugepages, at this configuration for each hugepage size.

# %%
sizes = sections.compared_hugepages(point["hugepage_bytes"])
by_size = evaluate(sections.configuration_frame(point, hugepage_bytes=sizes), cal, scenario, sections.BUDGET_OUTPUTS)
display(HTML(sections.frame_table(by_size, {
    "hugepage_bytes": "hugepage", "splits": "splits [1]", "merges": "merges [1]",
    "conversion_ops": "conversion operations [1]", "split_merge_cycles": "split/merge [cycles]",
    "conversion_cycles": "all conversions [cycles]", "split_merge_share": "split/merge share"})))
figures.show(figures.budget, by_size)

# %% [markdown]
# ## vmemmap footprint and huge-mapped fraction
#
# Each split undoes the HugeTLB vmemmap optimisation of its page; a struct page-less
# guest_memfd would keep struct pages only for shared memory. A split hugepage is also
# mapped at 4 KiB in the nested page tables.

# %%
display(HTML(sections.frame_table(by_size, {
    "hugepage_bytes": "hugepage", "shared_bytes": "shared memory", "vmemmap_bytes": "vmemmap after splits",
    "pageless_saving_bytes": "saved by struct page-less", "huge_mapped_fraction": "still huge-mapped"})))
figures.show(figures.footprint, by_size)

# %% [markdown]
# ## Scenarios side by side
#
# The same configuration under each what-if the model knows, for 2 MiB and 1 GiB pages.

# %%
compared = sections.compare_scenarios(point, cal, shape=shape)
display(HTML(sections.scenario_table(compared, point["hugepage_bytes"])))
titles = {s.name: s.title for s in scenarios.SCENARIOS.values()}
figures.show(figures.scenarios, compared, titles)
display(Markdown(sections.scenario_notes()))

# %% [markdown]
# ## Accelerators: the same VM with 0 to 8 GPUs
#
# What GPUs in confidential-computing mode convert after boot: unprotected system memory
# converted chunk by chunk, 2 MiB staging buffers, memory kept or allocated per job, and the
# same GPUs accepted under TDISP (first table, per GPU). In the second table the first row is
# the boot, the same VM in every case; the other rows are what each case adds after boot,
# except the last two columns, boot and run together (docs/runtime.md;
# `costmodel predict --accelerator gpu:count=8,unprotected=1GiB --duration 1h` gives one case
# from a shell).

# %%
gpus = accelerators.family(shape, cal, scenario)
display(HTML(accelerators.inputs_table(gpus)))
display(HTML(accelerators.results_table(gpus)))
figures.show(figures.accelerators, gpus)
display(Markdown(accelerators.reading(gpus)))
display(Markdown(accelerators.boot_merges(gpus)))
display(Markdown(accelerators.notes(gpus)))

# %% [markdown]
# ## Measurements

# %%
if data:
    comparison = sections.compare_with_data(data, cal, scenario)
    display(Markdown(comparison.text))
    if comparison.frame is not None and len(comparison.frame):
        display(HTML(comparison.table))
        for target in [t for t in comparison.targets if t in ("splits", "merges")]:
            figures.show(figures.measured, comparison.frame, target)
else:
    display(Markdown("No data file given (parameter `data`): the report shows the model alone. "
                     "Pass `-p data FILE` to compare it with measurements."))

# %% [markdown]
# ## Provenance

# %%
display(HTML(sections.provenance_table(
    parameters=dict(memory=memory, vcpus=vcpus, boot_vcpus=boot_vcpus, numa_nodes=numa_nodes, lowmem=lowmem,
                    devices=devices, virtqueues=virtqueues, hugepage=hugepage, platform=platform, kaslr=kaslr,
                    svsm=svsm, atomic_pools=atomic_pools, scenario=scenario, calibration=calibration, data=data),
    calibration=cal, data=data)))

# %% tags=["summary"]
display({"application/json": sections.summary(point)}, raw=True)
