# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A closed form found from measurements
#
# When no mechanism is known for a measured quantity, `costmodel discover` searches sums
# of terms `x^i · log2(x)^j` (every term with its own exponents) and the domain's shapes
# (`⌈x/c⌉`, clamps, steps) for the formula the measurements support, chosen by
# leave-one-configuration-out error with a penalty per parameter (`docs/discover.md`).
# Run with `costmodel report --notebook discover -p data FILE -p target COLUMN`, or
# `costmodel report -p model MODEL.json` for a model written by `costmodel discover -o`.
# Without either, the notebook makes a seeded demonstration set.

# %% tags=["parameters"]
data = None  # measurements: CSV/Parquet (any numeric columns), Extra-P text or JSON Lines; None: a demonstration set
target = None  # measured column (Extra-P: REGION/METRIC)
inputs = None  # input columns, comma-separated; None: every other numeric column that varies
model = None  # a model file from 'costmodel discover -o' (then data and target come from it)
at = None  # where to predict: each point as comma-joined input assignments, points joined by semicolons
max_terms = 3  # most terms besides the constant
seed = 0  # seed of the demonstration set

# %%
import itertools

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from costmodel import discover as discovery
from costmodel.discover.card import card
from costmodel.discover.final import parse_at
from costmodel.reporting import discovered, plots

plots.style()

# %% [markdown]
# ## 1. The measurements and the formula

# %%
points = [p.strip() for p in at.split(";") if p.strip()] if at else []
if model:
    found = discovery.load(model)
    if points:
        found.predictions = found.predict([parse_at(p, found.inputs) for p in points])
    measurements = discovered.measurements_of(found)
    source = f"model file `{model}`"
else:
    if data:
        measurements = discovery.read(data, target, inputs)
        source = f"`{data}`"
    else:
        rng = np.random.default_rng(seed)
        grid = np.repeat(np.array(list(itertools.product(2.0 ** np.arange(1, 7), repeat=2))), 5, axis=0)
        frame = pd.DataFrame(grid, columns=["p", "q"])
        frame["time"] = (5 + 2 * frame.p * np.log2(frame.p) + 0.5 * frame.p**2 * frame.q) * (
            1 + 0.02 * rng.standard_normal(len(frame)))
        measurements = discovery.from_frame(frame, "time")
        source = f"a demonstration set: 5 + 2·p·log2(p) + 0.5·p²·q, 2 % noise, seed {seed}"
    found = discovery.discover(measurements, at=points, max_terms=int(max_terms))
display(Markdown(f"From {source}."))
display(Markdown(card(found, "markdown")))

# %% [markdown]
# ## 2. Fit and residuals
#
# Each point is one configuration of the inputs: the mean of its repeated measurements
# (bars: their standard deviation) against the formula, and what the formula misses.

# %%
if measurements is not None:
    fig, axes = plots.figure(ncols=2, height=3.0)
    discovered.fit(found, measurements, axes[0])
    _ = discovered.residuals(found, measurements, axes[1])
else:
    display(Markdown("*The measurements the model was found from are not at their recorded path (or changed "
                     "since: the SHA-256 differs), so the fit is not shown.*"))

# %% [markdown]
# ## 3. Far from the measurements
#
# The formula with its 95 % prediction interval from the largest measured point of every
# input out to 16×, beside the runner-up formulas: where they part, the data did not
# decide between them and the interval assumes the chosen shape holds.

# %%
fig, ax = plots.figure(height=3.2)
_ = discovered.far(found, ax)
far = found.predict(discovered.far_points(found))
display(Markdown("| × largest | value | 95 % PI |\n|---|---|---|\n" + "\n".join(
    f"| {f} | {p.value:.4g} | {p.pi_low:.4g} … {p.pi_high:.4g} |" for f, p in zip(discovered.FAR_FACTORS, far))))
