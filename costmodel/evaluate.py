"""Evaluate the model over scalars, arrays or frames: the public API of the compiled model.

:func:`evaluate` returns a DataFrame (one row per configuration, one column per output in
its unit); :func:`evaluate_arrays` plain NumPy arrays for large grids. Coefficients come
from a :class:`~costmodel.calibration.Calibration`, the default one when none is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from costmodel.calibration import default
from costmodel.compiled import CONFIG_COLUMNS, compile_outputs, configurations
from costmodel.model.variables import OUTPUTS


def evaluate_arrays(
    configs,
    calibration=None,
    scenario: str = "status_quo",
    outputs: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Like :func:`evaluate`, but returns plain NumPy arrays keyed by name (the fast path
    for large grids: no DataFrame is built). Includes the resolved configuration arrays."""
    cal = calibration if calibration is not None else default()
    arrays = configurations(configs)
    names = tuple(outputs) if outputs is not None else tuple(["swiotlb_bytes", *OUTPUTS])
    if "swiotlb_bytes" not in names:
        names = ("swiotlb_bytes", *names)
    values = compile_outputs(names, cal.form, scenario)(arrays, cal.values)
    return {**{c: arrays[c] for c in CONFIG_COLUMNS if c != "swiotlb_bytes"}, **values}


def evaluate(
    configs,
    calibration=None,
    scenario: str = "status_quo",
    outputs: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Evaluate the model over configurations.

    Parameters
    ----------
    configs : DataFrame or mapping
        One configuration per row (see :func:`configurations`); scalars broadcast.
    calibration : Calibration, optional
        Coefficient values; the default calibration derived from the published reference.
    scenario : str
        A key of :data:`costmodel.model.scenarios.SCENARIOS`.
    outputs : sequence of str, optional
        Names from :func:`available_outputs`; default: every output of the model.

    Returns
    -------
    DataFrame
        The configuration columns (virtqueues and swiotlb_bytes resolved), the scenario,
        and one column per output, in the outputs' units (see :mod:`costmodel.model.variables`).
    """
    values = evaluate_arrays(configs, calibration, scenario, outputs)
    frame = pd.DataFrame({c: values.pop(c).astype("int64") for c in ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes")})
    platform = values.pop("platform")
    frame["platform"] = pd.Categorical.from_codes((platform == "snp").astype("int8"), ["tdx", "snp"])
    frame["scenario"] = pd.Categorical.from_codes(np.zeros(len(frame), dtype="int8"), [scenario])
    frame["swiotlb_bytes"] = values.pop("swiotlb_bytes").astype("int64")
    for name, array in values.items():
        frame[name] = array
    return frame
