# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Fitting the model to your own measurements
#
# A walk-through: load a data file of measured runs, fit the coefficients one output
# depends on, read the intervals and warnings, compare the model with the data, and save
# a calibration that `costmodel predict`, `costmodel formula` and the reports accept.
# Without a data file, the notebook simulates one from the model (seeded noise) so every
# step can be seen. The file format is in `docs/data-schema.md`; `costmodel ingest` turns
# collector output, QEMU traces and guest dmesg into such rows.

# %% tags=["parameters"]
data = None  # measured runs (CSV/Parquet, docs/data-schema.md); None: simulate a demonstration set
target = "splits"  # output to fit: splits, merges, conversion_cycles, split_merge_cycles, …
form = "default"  # model form, or "auto" to compare the forms and keep the best (AIC)
assume_vcpus = None  # vCPUs for runs that did not record them; None: such runs are an error
save = None  # where to write the fitted calibration (JSON); None: do not write
seed = 0  # seed of the simulated demonstration set

# %%
from IPython.display import HTML, Markdown, display

from costmodel import data as data_module
from costmodel import fitting
from costmodel.files import sha256_file
from costmodel.reporting import plots, sections

plots.style()

# %% [markdown]
# ## 1. The runs
#
# One row per measured run: the VM shape (platform, memory, vCPUs, virtqueues, hugepage
# size) and what was measured. Loading validates every cell and names file, line and
# column when something is off.

# %%
if data:
    runs = data_module.load(data)
    source = f"`{data}` (sha256 `{sha256_file(data)[:16]}…`)"
else:  # a design that separates the coefficients: guests below and above 4 GiB, few and many vCPUs, both page sizes
    grid = [(m, v, h) for m in ("2GiB", "4GiB", "16GiB", "64GiB", "256GiB") for v in (4, 32) for h in ("2M", "1G")]
    shapes = {"memory_bytes": [g[0] for g in grid], "vcpus": [g[1] for g in grid],
              "hugepage_bytes": [g[2] for g in grid], "platform": "snp"}
    runs = fitting.synthetic_runs(shapes, noise=0.05, seed=seed)
    source = f"simulated from the model: {len(grid)} shapes, 5 % noise, seed {seed}"
display(Markdown(f"**{len(runs)} runs**, {source}."))
shown = runs[[c for c in ("platform", "memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", target) if c in runs]]
display(HTML(sections.frame_table(shown.reset_index(drop=True), {c: c for c in shown.columns},
                                formats={"vcpus": "{}", "virtqueues": "{}", target: "{:.4g}"})))

# %% [markdown]
# ## 2. Fit
#
# Least squares on the coefficients `target` depends on; coefficients that enter only
# through a step function, or that the runs cannot separate, are held and said so.
# Splits alone barely see the pages converted and back during boot (`transient_regions`):
# those are what merge back. So when the runs also measured merges, merges are fitted
# first and splits then fit the rest with that value held, as `costmodel fit --target
# merges` then `--target splits --hold-fitted` would.

# %%
assume = {"vcpus": assume_vcpus} if assume_vcpus else None
start = None
if target == "splits" and "merges" in runs and runs["merges"].notna().any():
    merges_fit = fitting.fit(runs, "merges", assume=assume, alternatives=False)
    start = merges_fit.to_calibration()
    display(Markdown(f"Merges first: `transient_regions` = {merges_fit.coefficients_['transient_regions'].value:.4g} "
                     "(held below)."))
result = fitting.fit(runs, target, form=form, assume=assume, alternatives=(form == "auto"), calibration=start,
                     hold=["transient_regions"] if start is not None else ())
display(result)

# %% [markdown]
# ## 3. Model against the runs
#
# Prediction intervals come from the coefficient covariance and the residual scale; runs
# outside the fitted range of inputs would be flagged as extrapolation.

# %%
calibration = result.to_calibration()
predicted = result.predict(runs.reset_index(drop=True))  # with intervals and extrapolation flags
frame = runs.reset_index(drop=True).copy()
frame[f"{target}_predicted"] = predicted[target].to_numpy()
for suffix in ("_pi_low", "_pi_high"):
    if target + suffix in predicted:
        frame[target + suffix] = predicted[target + suffix].to_numpy()
frame["extrapolation"] = predicted["extrapolation"].to_numpy() if "extrapolation" in predicted else ""
fig, axes = plots.figure(ncols=2, height=3.0)
plots.predicted_vs_measured(frame, target, axes[0])
_ = plots.residuals(frame, target, axes[1])

# %% [markdown]
# ## 4. Use the calibration

# %%
if save:
    calibration.save(save)
    display(Markdown(f"Saved to `{save}`. Use it: `costmodel predict --calibration {save}`, "
                     f"`costmodel report -p calibration {save}" + (f" -p data {data}`." if data else "`.")))
else:
    display(Markdown("Set the parameter `save` to a path to write this calibration; then "
                     "`costmodel report -p calibration PATH` renders reports with it."))
