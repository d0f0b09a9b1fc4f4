"""Evaluate the model over scalars, arrays or frames: the public API of the compiled model.

:func:`evaluate` returns a DataFrame (one row per configuration, one column per output in
its unit); :func:`evaluate_arrays` plain NumPy arrays for large grids. Coefficients come
from a :class:`~costmodel.calibration.Calibration`, the default one when none is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from costmodel.calibration import default
from costmodel.compiled import CONFIG_COLUMNS, DEFAULT_OUTPUTS, INPUTS, compile_outputs, configurations
from costmodel.model.variables import OUTPUTS  # noqa: F401 - re-exported (evaluate.OUTPUTS)

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
    for large grids: no DataFrame is built). Includes the resolved configuration arrays.

    Large grids are worked in pieces of :data:`PIECE` configurations (their temporaries stay
    small): every piece is validated and resolved first, so a bad value anywhere is reported
    before any is evaluated; then each piece is evaluated into its columns of one preallocated
    (outputs × configurations) array. (Resolving two pieces at a time on two threads was
    measured: no faster, the GIL holds it.)"""
    cal = calibration if calibration is not None else default()
    names = _names(outputs)
    program = compile_outputs(names, cal.form, scenario)
    coefficients = coefficients_by_platform(cal)
    configs = _mapping(configs)
    if isinstance(configs, Mapping) and _length(configs) > PIECE:
        return _evaluate_grid(configs, _length(configs), program, coefficients, names)
    resolved, first = [], 0
    for part in _pieces(configs, PIECE):
        resolved.append(configurations(part, first_row=first))
        first += len(resolved[-1]["memory_bytes"])
    if len(resolved) == 1:
        values = program(resolved[0], coefficients)
        return {**{c: resolved[0][c] for c in CONFIG_COLUMNS if c != "swiotlb_bytes"}, **values}
    out = np.empty((len(names), first))  # every piece's outputs written straight into their columns
    start = 0
    for k, arrays in enumerate(resolved):
        stop = start + len(arrays["memory_bytes"])
        program(arrays, coefficients, out=out, offset=start)
        resolved[k] = {c: arrays[c] for c in CONFIG_COLUMNS if c != "swiotlb_bytes"}  # the model's inputs go
        start = stop
    columns = {c: np.concatenate([arrays[c] for arrays in resolved]) for c in CONFIG_COLUMNS if c != "swiotlb_bytes"}
    return {**columns, **{name: out[r] for r, name in enumerate(names)}}


#: The shape's columns an evaluation returns (the SWIOTLB is the model's output).
_RETURNED = tuple(c for c in CONFIG_COLUMNS if c != "swiotlb_bytes")


def _evaluate_grid(configs: Mapping, n: int, program, coefficients, names) -> dict[str, np.ndarray]:
    """:func:`evaluate_arrays` of a grid of ``n`` configurations given as columns, piece by
    piece: each piece's resolved shape columns are written straight into the grid's columns
    and its other model inputs kept (a few per piece) until every piece is resolved; then each
    piece is evaluated into its columns of the outputs. The memory is the result's, plus
    those few inputs: no list of resolved pieces, no concatenation at the end."""
    columns: dict[str, np.ndarray] = {}
    kept = []
    for start in range(0, n, PIECE):
        stop = min(n, start + PIECE)
        arrays = configurations(_slice(configs, start, stop), first_row=start)
        for c in _RETURNED:
            if c not in columns:
                columns[c] = np.empty(n, dtype=arrays[c].dtype)
            columns[c][start:stop] = arrays[c]
        kept.append({x: arrays[x] for x in INPUTS if x not in columns})
    out = np.empty((len(names), n))
    for k, start in enumerate(range(0, n, PIECE)):
        stop = min(n, start + PIECE)
        inputs = {**kept[k], **{x: columns[x][start:stop] for x in INPUTS if x in columns}}
        kept[k] = None
        program(inputs, coefficients, out=out, offset=start)
    return {**columns, **{name: out[r] for r, name in enumerate(names)}}


def _names(outputs) -> tuple[str, ...]:
    names = tuple(outputs) if outputs is not None else DEFAULT_OUTPUTS
    return names if "swiotlb_bytes" in names else ("swiotlb_bytes", *names)


def _evaluate_piece(configs, cal, scenario, outputs, first_row: int) -> dict[str, np.ndarray]:
    arrays = configurations(configs, first_row=first_row)
    values = compile_outputs(_names(outputs), cal.form, scenario)(arrays, coefficients_by_platform(cal))
    return {**{c: arrays[c] for c in CONFIG_COLUMNS if c != "swiotlb_bytes"}, **values}


#: Configurations per piece of :func:`iter_evaluate_arrays` and :func:`evaluate_arrays`:
#: ≈ 70 arrays of 1 MB (the inputs, their resolution and every output), so a stream of 10⁷
#: stays under 600 MB with the imports (benchmarks/bench_evaluate.py measures it).
PIECE = 1 << 17


def iter_evaluate_arrays(configs, calibration=None, scenario: str = "status_quo",
                         outputs: Sequence[str] | None = None, piece: int = PIECE):
    """:func:`evaluate_arrays` in pieces, yielded in order: memory stays bounded by a
    piece's arrays whatever the grid's size (write each piece to a file, or reduce it).

    ``configs`` is a mapping (or DataFrame) of column → array or scalar, evaluated ``piece``
    configurations at a time, or an iterable of such mappings (a grid produced lazily),
    each evaluated as it comes. Errors name the configuration's row in the whole grid; the
    pieces before a bad one have been yielded by then."""
    cal = calibration if calibration is not None else default()
    first = 0
    for part in _pieces(configs, piece):
        values = _evaluate_piece(part, cal, scenario, outputs, first)
        first += len(values["memory_bytes"])
        yield values


def _mapping(configs):
    if hasattr(configs, "columns") and hasattr(configs, "to_numpy"):
        return {c: configs[c].to_numpy() for c in configs.columns}
    return configs


def _length(configs: Mapping) -> int:
    return max([np.size(v) for v in configs.values() if v is not None and np.ndim(v) > 0] or [1])


def _slice(configs: Mapping, start: int, stop: int) -> dict:
    return {k: (v[start:stop] if v is not None and np.ndim(v) > 0 else v) for k, v in configs.items()}


def _pieces(configs, piece: int):
    configs = _mapping(configs)
    if not isinstance(configs, Mapping):
        yield from configs
        return
    n = _length(configs)
    for start in range(0, n, piece):
        yield _slice(configs, start, start + piece)


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
