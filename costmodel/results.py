"""Result objects: :func:`predict` and :func:`predict_grid`, and the :class:`Prediction` they return.

:func:`predict` evaluates one configuration and returns a :class:`Prediction`, which knows
how to show itself: ``to_dict()`` (the JSON object of ``costmodel predict --json``),
``to_frame()``, ``breakdown()`` (splits by source), ``to_text()`` and ``_repr_html_()``
for notebooks. Numbers are formatted for people by :mod:`costmodel.render.numbers`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from costmodel.compiled import CONFIG_COLUMNS, SOURCE_PREFIX
from costmodel.errors import Argument, InputError
from costmodel.evaluate import _BOOLEAN, _INTEGER, evaluate, evaluate_arrays
from costmodel.model import sources
from costmodel.model.variables import OUTPUTS, QUANTITIES
from costmodel.render import numbers
from costmodel.shape import SHAPE_COLUMNS, VmShape
from costmodel.workload import WORKLOAD_INPUTS, Workload

if TYPE_CHECKING:  # pandas is imported where a DataFrame is built, never on `costmodel predict`'s path
    import pandas as pd

#: Keys of a prediction's dict, in order: the configuration, then every output.
CONFIG_KEYS = (*CONFIG_COLUMNS, "scenario")
PREDICTION_KEYS = CONFIG_KEYS + tuple(OUTPUTS)
#: The sources of the per-source breakdown, in the order of the closed form's
#: ``CostModel.splits_by_source()`` (tests/test_cli_light.py checks they agree), so naming the
#: ``splits_from_<source>`` outputs needs no SymPy.
SOURCE_NAMES = tuple(s.name for s in sources.SOURCES)

def source_label(key: str) -> str:
    """Human label of a per-source split key (``swiotlb``, ``ghcb``, …)."""
    return sources.BY_NAME[key].label


@dataclass
class Prediction:
    """The model's outputs for one configuration under one scenario and calibration."""

    #: One configuration's values by name: a row of a DataFrame, or a dict (:meth:`Columns.row`).
    row: Mapping
    calibration: object

    def to_dict(self) -> dict:
        """Configuration and outputs as plain Python values (the ``--json`` object)."""
        out = {}
        for key in PREDICTION_KEYS:
            value = self.row[key]
            out[key] = value.item() if hasattr(value, "item") else value
        for key in self.row.keys():
            if key.endswith(("_pi_low", "_pi_high")) or key == "extrapolation":
                value = self.row[key]
                out[key] = value.item() if hasattr(value, "item") else value
        if self.notes:
            out["notes"] = self.notes
        return out

    @property
    def notes(self) -> list[str]:
        """What the reader must know to use the numbers (a TDX prediction on borrowed SEV-SNP
        coefficients)."""
        from costmodel.calibration.values import TDX_BORROWED

        borrowed = str(self.row["platform"]) == "tdx" and getattr(self.calibration, "tdx_borrowed", False)
        return [TDX_BORROWED] if borrowed else []

    def _quantities(self) -> list[dict]:
        """:meth:`to_frame`'s rows, as dicts (no pandas)."""
        rows = []
        for key, value in self.to_dict().items():
            if key == "notes":
                continue
            meaning = QUANTITIES[key].meaning if key in QUANTITIES else key.replace("_", " ")
            rows.append({"quantity": key, "value": value, "shown": numbers.format_value(key, value),
                         "unit": numbers.unit_of(key), "meaning": meaning})
        return rows

    def _sources(self) -> list[dict]:
        """:meth:`breakdown`'s rows, as dicts (no pandas)."""
        return [{"source": key[len(SOURCE_PREFIX):], "label": source_label(key[len(SOURCE_PREFIX):]),
                 "splits": float(self.row[key])}
                for key in self.row.keys() if key.startswith(SOURCE_PREFIX)]

    def to_frame(self) -> pd.DataFrame:
        """One row per quantity: name, value, formatted value, unit, meaning."""
        import pandas as pd

        return pd.DataFrame(self._quantities())

    def breakdown(self) -> pd.DataFrame:
        """Splits attributed to each source (sums to ``splits``)."""
        import pandas as pd

        return pd.DataFrame(self._sources())

    def to_text(self) -> str:
        """A readable two-column table, then the splits by source."""
        quantities = self._quantities()
        width = max(len(r["quantity"]) for r in quantities)
        lines = [f"{r['quantity']:<{width}}  {r['shown']}" for r in quantities]
        lines.append("")
        lines.append("splits by source")
        parts = self._sources()
        label_width = max(len(r["label"]) for r in parts)
        for r in parts:
            if r["splits"] > 0:
                lines.append(f"  {r['label']:<{label_width}}  {r['splits']:7.1f}")
        lines += ["", *(f"note: {n}" for n in self.notes)] if self.notes else []
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><code>{html.escape(r['quantity'])}</code></td><td style='text-align:right'>"
            f"{html.escape(r['shown'])}</td><td>{html.escape(r['meaning'])}</td></tr>"
            for r in self._quantities())
        return ("<table><thead><tr><th>quantity</th><th>value</th><th>meaning</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")


def predict(memory=None, vcpus=None, hugepage=None, platform=None, virtqueues=None, swiotlb=None, *,
            shape: VmShape | None = None, workload: Workload | None = None, scenario: str = "status_quo",
            calibration=None) -> Prediction:
    """Predict one configuration: a :class:`~costmodel.shape.VmShape`, or its fields in the
    forms users type (what is not given is the reference guest's: 16 GiB, 16 vCPUs, 2 MiB
    pages, SEV-SNP).

    Parameters
    ----------
    memory : int or str
        Guest memory. [B] (``16GiB`` and the other forms of :func:`parse.size`)
    vcpus : int
        Possible vCPUs. [1]
    hugepage : int or str
        guest_memfd hugepage size, ``4K``, ``2M`` or ``1G``. [B]
    platform : str
        ``snp`` or ``tdx``.
    virtqueues : int, optional
        Virtqueues [1]; default vCPUs + 3 (QEMU's virtio-blk and virtio-net defaults).
    swiotlb : int or str, optional
        SWIOTLB pool size override [B]; default the kernel's rule.
    shape : VmShape, optional
        The whole shape at once (then the field arguments must not be given).
    workload : Workload, optional
        What the guest does after boot (docs/runtime.md); default boot only.
    scenario : str
        A key of :data:`costmodel.model.scenarios.SCENARIOS`.
    calibration : Calibration, optional
        Default: derived from the published reference.
    """
    from costmodel import calibration as calibration_module

    cal = calibration if calibration is not None else calibration_module.default()
    if shape is None:
        shape = VmShape.parse(memory=memory, vcpus=vcpus, hugepage=hugepage, platform=platform,
                              virtqueues=virtqueues, swiotlb=swiotlb)
    elif any(v is not None for v in (memory, vcpus, hugepage, platform, virtqueues, swiotlb)):
        raise InputError(Argument("shape"), "a shape and its fields", "either shape= or the fields, not both")
    config = {k: v for k, v in shape.to_columns().items()}
    config.update((workload or Workload()).to_columns())
    frame = evaluate_with_breakdown(config, cal, scenario)
    return Prediction(frame.iloc[0], cal)


def _breakdown_names() -> list[str]:
    """What :func:`evaluate_with_breakdown` computes: every output and the splits by source."""
    return ["swiotlb_bytes", *OUTPUTS, *(SOURCE_PREFIX + k for k in SOURCE_NAMES)]


def evaluate_with_breakdown(configs, calibration, scenario: str = "status_quo") -> pd.DataFrame:
    """:func:`evaluate` with every output, the splits by source, and (for a fitted
    calibration) prediction intervals and extrapolation flags."""
    frame = evaluate(configs, calibration, scenario, _breakdown_names())
    if calibration.fits:
        from costmodel.uncertainty import annotate

        frame = annotate(frame, calibration)
    return frame


def predict_grid(grid: Mapping[str, Sequence], scenario: Sequence[str] = ("status_quo",),
                 calibration=None) -> pd.DataFrame:
    """Every combination of the given values, evaluated; one row per configuration.

    ``grid`` maps shape columns (:data:`~costmodel.shape.SHAPE_COLUMNS`) to sequences of
    values, already parsed; columns not given take their defaults. Rows are ordered as
    nested loops in the shape's column order (memory outermost), then by scenario.
    """
    import itertools

    from costmodel import calibration as calibration_module
    from costmodel.model import scenarios as scenario_module

    cal = calibration if calibration is not None else calibration_module.default()
    columns = _grid_columns(grid)
    rows = list(itertools.product(*(list(grid[c]) for c in columns)))
    configs = _grid_frame(rows, columns)
    frames = [evaluate_with_breakdown(configs, cal, scenario_module.get(s).name) for s in scenario]
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def _grid_columns(grid: Mapping[str, Sequence]) -> list[str]:
    """The grid's columns in evaluation order; anything but shape columns and workload inputs is refused."""
    unknown = [k for k in grid if k not in SHAPE_COLUMNS and k not in WORKLOAD_INPUTS]
    if unknown:
        raise InputError(Argument("grid"), unknown[0], "shape columns: " + ", ".join(SHAPE_COLUMNS)
                         + " or workload inputs: " + ", ".join(WORKLOAD_INPUTS))
    return [c for c in (*SHAPE_COLUMNS, *WORKLOAD_INPUTS) if c in grid]


#: The required shape columns a grid may leave out: the reference guest's values.
_REFERENCE_SHAPE = (("memory_bytes", 16 * 2**30), ("vcpus", 16), ("hugepage_bytes", 2 * 2**20), ("platform", "snp"))


def _grid_frame(rows, columns: list[str]) -> pd.DataFrame:
    """Grid combinations as a frame; the required shape columns not in the grid take the
    reference guest's values."""
    import pandas as pd

    configs = pd.DataFrame(rows, columns=columns)
    for required, default in _REFERENCE_SHAPE:
        if required not in configs:
            configs[required] = default
    return configs


def _grid_arrays(rows, columns: list[str]) -> dict:
    """:func:`_grid_frame` as a mapping of column → array (no pandas): numbers stay numbers,
    a column holding text or None is an object array (parsed per value, as the frame's is)."""
    configs: dict = {}
    for j, column in enumerate(columns):
        values = [row[j] for row in rows]
        mixed = any(isinstance(v, str) or v is None for v in values)
        configs[column] = np.array(values, dtype=object) if mixed else np.asarray(values)
    for required, default in _REFERENCE_SHAPE:
        configs.setdefault(required, default)
    return configs


def predict_grid_chunks(grid: Mapping[str, Sequence], scenario: Sequence[str] = ("status_quo",), calibration=None,
                        rows: int = 200_000):
    """:func:`predict_grid` in frames of at most ``rows`` configurations, in the same order.

    For grids larger than memory (``costmodel predict -o grid.parquet`` writes each frame as
    it comes): the combinations are produced lazily, one chunk at a time, scenario outermost
    as :func:`predict_grid` orders them.
    """
    import itertools

    from costmodel import calibration as calibration_module
    from costmodel.model import scenarios as scenario_module

    cal = calibration if calibration is not None else calibration_module.default()
    columns = _grid_columns(grid)
    names = [scenario_module.get(s).name for s in scenario]
    for name in names:
        combinations = itertools.product(*(list(grid[c]) for c in columns))
        while chunk := list(itertools.islice(combinations, rows)):
            configs = _grid_frame(chunk, columns)
            yield evaluate_with_breakdown(configs, cal, name)


@dataclass(frozen=True)
class Columns:
    """Evaluated configurations without pandas: one NumPy array per column, the columns and
    values of :func:`predict_grid`'s frame (``costmodel predict`` prints from these)."""

    data: dict

    def __len__(self) -> int:
        return len(self.data["memory_bytes"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def __contains__(self, name: str) -> bool:
        return name in self.data

    @property
    def names(self) -> list[str]:
        return list(self.data)

    def row(self, i: int) -> dict:
        """Configuration ``i``'s values by name (a :class:`Prediction`'s ``row``)."""
        return {name: values[i] for name, values in self.data.items()}


def evaluate_columns(configs, calibration, scenario: str = "status_quo") -> Columns:
    """:func:`evaluate_with_breakdown` as :class:`Columns`, typed as its frame is: shape
    integers as int64, switches as bool, platform, scenario and devices as text. A fitted
    calibration's intervals need the frame (pandas); the rest is NumPy alone."""
    if calibration.fits:
        frame = evaluate_with_breakdown(configs, calibration, scenario)
        return Columns({c: frame[c].to_numpy() for c in frame.columns})
    values = evaluate_arrays(configs, calibration, scenario, _breakdown_names())
    n = len(values["memory_bytes"])
    data = {}
    for column in CONFIG_COLUMNS:  # as costmodel.evaluate.evaluate types them
        array = values.pop(column)
        if column == "platform":
            data[column] = np.where(np.asarray(array) == "snp", "snp", "tdx").astype(object)
        elif column in _INTEGER:
            data[column] = np.asarray(array, dtype=float).round().astype("int64")
        elif column in _BOOLEAN:
            data[column] = np.asarray(array, dtype=float) > 0
        else:
            data[column] = np.asarray(array)
    data["scenario"] = np.full(n, scenario, dtype=object)
    data.update((name, np.broadcast_to(np.asarray(array), (n,))) for name, array in values.items())
    return Columns(data)


def predict_columns(grid: Mapping[str, Sequence], scenario: Sequence[str] = ("status_quo",),
                    calibration=None) -> Columns:
    """:func:`predict_grid` without pandas: the same rows, columns and values as
    :class:`Columns`."""
    import itertools

    from costmodel import calibration as calibration_module
    from costmodel.model import scenarios as scenario_module

    cal = calibration if calibration is not None else calibration_module.default()
    columns = _grid_columns(grid)
    rows = list(itertools.product(*(list(grid[c]) for c in columns)))
    configs = _grid_arrays(rows, columns)
    parts = [evaluate_columns(configs, cal, scenario_module.get(s).name) for s in scenario]
    if len(parts) == 1:
        return parts[0]
    return Columns({name: np.concatenate([p[name] for p in parts]) for name in parts[0].names})


def predict_family(family: str = "accelerators", shape: VmShape | None = None, scenario: str = "status_quo",
                   calibration=None) -> pd.DataFrame:
    """One row per case of a workload family (:data:`costmodel.model.scenarios.FAMILIES`) for
    the same ``shape`` (default the reference guest): boot, run-time and total outputs side
    by side."""
    from costmodel import calibration as calibration_module
    from costmodel.model import scenarios as scenario_module
    from costmodel.workload import accelerator

    if family not in scenario_module.FAMILIES:
        raise InputError(Argument("family"), family, "one of " + ", ".join(scenario_module.FAMILIES))
    cal = calibration if calibration is not None else calibration_module.default()
    shape = shape or VmShape()
    cases = scenario_module.FAMILIES[family]
    rows = []
    for case in cases:
        workload = Workload(accelerators=tuple(accelerator(a, Argument("family")) for a in case.accelerators),
                            duration_seconds=case.duration_seconds, jobs=case.jobs)
        rows.append({**shape.to_columns(), **workload.to_columns()})
    import pandas as pd

    frame = evaluate_with_breakdown(pd.DataFrame(rows).dropna(axis=1), cal, scenario)
    frame.insert(0, "case", [c.name for c in cases])
    frame.insert(1, "title", [c.title for c in cases])
    return frame
