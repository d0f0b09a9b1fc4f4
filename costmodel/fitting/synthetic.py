"""Synthetic runs from the model with known coefficients: for experiment design and tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from costmodel import data as data_module
from costmodel.calibration import Calibration, default
from costmodel.fitting.runs import TARGETS
from costmodel.fitting.structure import SCENARIO


def synthetic_runs(
    configs,
    calibration: Calibration | None = None,
    targets: Sequence[str] = TARGETS,
    noise: float = 0.05,
    seed: int = 0,
    replicates: int = 1,
    scenario: str = SCENARIO,
    whole: bool = False,
) -> pd.DataFrame:
    """Synthetic runs from the model with known coefficients and seeded noise.

    For experiment design (will these shapes determine the coefficients?) and for tests:
    each target is the model's value times ``1 + noise·z`` (z standard normal, seeded),
    cut at 0. Rows are labelled synthetic in ``source`` and ``notes``.

    Parameters
    ----------
    configs : DataFrame or mapping
        VM shapes (see :func:`costmodel.compiled.configurations`).
    calibration : Calibration, optional
        The true coefficients (default: the default calibration).
    targets : sequence of str
        Which measured columns to produce.
    noise : float
        Relative standard deviation of the noise. [1]
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    replicates : int
        Runs per configuration.
    whole : bool
        Round every measured value to a whole number, as counters report them.

    Returns
    -------
    DataFrame
        Runs in the dataset schema, validated.
    """
    from costmodel.evaluate import evaluate

    cal = calibration if calibration is not None else default()
    evaluated = evaluate(configs, cal, scenario=scenario, outputs=list(targets))
    evaluated = evaluated.loc[evaluated.index.repeat(replicates)].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    given = set(configs.columns if hasattr(configs, "columns") else configs)
    frame = pd.DataFrame({c: evaluated[c].to_numpy() for c in ("platform", "memory_bytes", "vcpus", "hugepage_bytes")})
    frame["platform"] = frame["platform"].astype(str)
    # the shape as given, resolved: devices stand for the virtqueues when they were given
    for column in ("boot_vcpus", "numa_nodes", "lowmem_bytes", "kaslr", "svsm", "atomic_pools"):
        if column in given:
            frame[column] = evaluated[column].to_numpy()
    if "devices" in given:
        frame["devices"] = evaluated["devices"].astype(str).to_numpy()
    else:
        frame["virtqueues"] = evaluated["virtqueues"].to_numpy()
    for target in targets:
        truth = evaluated[target].to_numpy(dtype=float)
        noisy = np.maximum(truth * (1.0 + noise * rng.standard_normal(len(truth))), 0.0)
        frame[target] = np.round(noisy) if whole else noisy
    frame["run_id"] = [f"synthetic-{seed}-{i}" for i in range(len(frame))]
    frame["source"] = f"synthetic: costmodel.fitting.synthetic_runs(noise={noise}, seed={seed})"
    frame["notes"] = "synthetic, not a measurement"
    return data_module.validate(frame, "simulated runs")
