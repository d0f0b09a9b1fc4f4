"""Evaluate the model over scalars, arrays or frames: the public API of the compiled model.

:func:`evaluate` returns a DataFrame (one row per configuration, one column per output in
its unit); :func:`evaluate_arrays` plain NumPy arrays for large grids. Coefficients come
from a :class:`~costmodel.calibration.Calibration`, the default one when none is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from costmodel.calibration import default
from costmodel.compiled import CONFIG_COLUMNS, compile_outputs, configurations
from costmodel.model.variables import OUTPUTS

if TYPE_CHECKING:  # pandas is imported by evaluate() only: evaluate_arrays is NumPy alone
    import pandas as pd


def coefficients_by_platform(cal) -> dict:
    """Each coefficient's value, or a ``(tdx, snp)`` pair when the platforms' sets differ
    (the compiled model picks per configuration; no array per coefficient is built)."""
    if cal.tdx is None:
        return cal.values
    return {n: (cal.tdx[n].value, c.value) for n, c in cal.coefficients.items()}


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
    values = compile_outputs(names, cal.form, scenario)(arrays, coefficients_by_platform(cal))
    return {**{c: arrays[c] for c in CONFIG_COLUMNS if c != "swiotlb_bytes"}, **values}


#: Configurations per piece of :func:`iter_evaluate_arrays` (≈ 100 MB of arrays per piece).
PIECE = 1 << 19


def iter_evaluate_arrays(configs, calibration=None, scenario: str = "status_quo",
                         outputs: Sequence[str] | None = None, piece: int = PIECE):
    """:func:`evaluate_arrays` in pieces of ``piece`` configurations, yielded in order:
    memory stays bounded by a piece's arrays whatever the grid's size (write each piece to a
    file, or reduce it). ``configs`` is a mapping of column → array or scalar."""
    if hasattr(configs, "columns") and hasattr(configs, "to_numpy"):
        configs = {c: configs[c].to_numpy() for c in configs.columns}
    n = max([np.size(v) for v in configs.values() if v is not None and np.ndim(v) > 0] or [1])
    for start in range(0, n, piece):
        part = {k: (v[start:start + piece] if v is not None and np.ndim(v) > 0 else v) for k, v in configs.items()}
        yield evaluate_arrays(part, calibration, scenario, outputs)


#: How each shape column is typed in an evaluated frame.
_INTEGER = ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "swiotlb_bytes", "boot_vcpus", "numa_nodes",
            "lowmem_bytes")
_BOOLEAN = ("kaslr", "svsm", "atomic_pools")


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
        The shape's columns, resolved (low memory, devices and their virtqueues, the SWIOTLB
        the kernel ends up with), the scenario, and one column per output, in the outputs'
        units (see :mod:`costmodel.model.variables`).
    """
    import pandas as pd

    values = evaluate_arrays(configs, calibration, scenario, outputs)
    frame = pd.DataFrame(index=pd.RangeIndex(len(values["memory_bytes"])))
    for column in CONFIG_COLUMNS:  # the shape, resolved, in the shape's order
        array = values.pop(column)
        if column == "platform":
            frame[column] = pd.Categorical.from_codes((array == "snp").astype("int8"), ["tdx", "snp"])
        elif column in _INTEGER:
            frame[column] = np.asarray(array, dtype=float).round().astype("int64")
        elif column in _BOOLEAN:
            frame[column] = np.asarray(array, dtype=float) > 0
        else:
            frame[column] = array
    frame["scenario"] = pd.Categorical.from_codes(np.zeros(len(frame), dtype="int8"), [scenario])
    for name, array in values.items():
        frame[name] = array
    return frame
