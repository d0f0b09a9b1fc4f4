"""The runs a fit uses: loaded, validated, assumptions applied, ready for the model.

:func:`prepare` reads a dataset (a file in the dataset contract, or a frame), keeps the
runs that measured the target, fills inputs the caller assumes for runs that did not
record them (and says so), and resolves each run's VM shape to the arrays the compiled
model takes. Every run keeps its place (file and line) so later messages can name it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from costmodel import data as data_module
from costmodel import parse
from costmodel.compiled import KEY_COLUMNS, compile_outputs, configuration_keys, configurations
from costmodel.errors import Argument, InputError, closest
from costmodel.files import sha256_file
from costmodel.fitting.structure import SCENARIO
from costmodel.shape import SHAPE_COLUMNS

#: Targets a fit can be made to (the measured columns of the dataset).
TARGETS = data_module.TARGETS
#: Inputs a caller may fill in for runs where they are unknown (``assume={"vcpus": 16}``).
ASSUMABLE = ("vcpus", "virtqueues", "swiotlb_bytes")


class Places(Sequence):
    """``file, line N`` (or ``row N``) of each run, made when asked for: a million runs hold
    their labels, not a million strings."""

    def __init__(self, where: str, kind: str, labels):
        self.where, self.kind, self.labels = where, kind, np.asarray(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        label = self.labels[i]
        return f"{self.where}, {self.kind} {label.item() if hasattr(label, 'item') else label}"

    def select(self, rows: np.ndarray) -> "Places":
        """The places of the runs selected by the boolean mask ``rows``."""
        return Places(self.where, self.kind, self.labels[rows])


@dataclass
class Runs:
    """The runs used for one target: arrays for the model and where each came from.

    ``where`` names the data (a file path, or ``data`` for a frame) and ``sha256`` its
    content; ``y`` holds the measured target [unit of the target]; ``places`` the file and
    line of each run; ``notes`` what was done to the data (skipped runs, assumptions).

    ``arrays`` holds :func:`~costmodel.compiled.configurations`' arrays, one row per run,
    or, when ``shape`` is given, one row per distinct VM shape and ``shape`` each run's row
    (a million runs of a few hundred shapes: the model's inputs are never spread per run);
    :meth:`run_arrays` gives them per run either way.
    """

    where: str
    #: the content's SHA-256, or a function computing it (a frame's: hashed when first asked for)
    digest: str | Callable[[], str]
    frame: pd.DataFrame  # the used rows (validated)
    arrays: dict
    y: np.ndarray
    places: Sequence[str]
    notes: list[str]
    assumed: dict
    n_configurations: int
    #: The platform the runs were restricted to (``all``: both, one shared coefficient set).
    platform: str = "all"
    #: :func:`configuration_groups` of the runs, once computed
    _groups: tuple | None = field(default=None, repr=False)
    #: each run's row of ``arrays`` (None: one row per run), and the first run of each row
    shape: np.ndarray | None = field(default=None, repr=False)
    shape_first: np.ndarray | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        if callable(self.digest):
            self.digest = self.digest()
        return self.digest

    def place(self, i: int) -> str:
        return self.places[i]

    def _rows(self) -> int:
        return len(self.y) if self.shape is None else len(self.shape_first)

    def run_arrays(self) -> dict:
        """``arrays`` with one row per run."""
        if self.shape is None:
            return self.arrays
        rows = self._rows()
        return {k: (v[self.shape] if isinstance(v, np.ndarray) and v.shape == (rows,) else v)
                for k, v in self.arrays.items()}

    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """``(first, inverse)``: the first run of each distinct configuration (in the order of
        ``np.unique(keys, axis=0)``) and each run's configuration; computed once per dataset.

        With one row per shape, the shapes are grouped (runs of one shape share its keys, so
        the groups and their order are the runs'), each run takes its shape's group and each
        group's first run is the earliest first run of its shapes."""
        if self._groups is None:
            if self.shape is None:
                self._groups = configuration_groups(self.arrays)
            elif any(np.isnan(np.asarray(self.arrays[k], dtype=float)).any() for k in KEY_COLUMNS):
                self._groups = configuration_groups(self.run_arrays())  # NaN keys: np.unique's rules, per run
            else:
                _, of_shape = configuration_groups(self.arrays)
                first = np.full(int(of_shape.max()) + 1, len(self.y), dtype=np.intp)
                np.minimum.at(first, of_shape, self.shape_first)
                self._groups = first, of_shape[self.shape].astype(np.intp)
        return self._groups

    def configuration_arrays(self) -> dict:
        """``arrays`` at the first run of each configuration (:meth:`groups`' order)."""
        first, _ = self.groups()
        rows = first if self.shape is None else self.shape[first]
        n = self._rows()
        return {k: (v[rows] if isinstance(v, np.ndarray) and v.shape == (n,) else v) for k, v in self.arrays.items()}

    def subset(self, rows: np.ndarray) -> "Runs":
        """The runs selected by the boolean mask ``rows`` (places and notes kept whole)."""
        if rows.all():  # every run: the same arrays, and the same configurations
            return Runs(self.where, self.digest, self.frame, dict(self.arrays), self.y.copy(), self.places, self.notes,
                        self.assumed, self.n_configurations, self.platform, self._groups, self.shape, self.shape_first)
        if self.shape is None:
            arrays = {k: (v[rows] if isinstance(v, np.ndarray) and v.shape == self.y.shape else v)
                      for k, v in self.arrays.items()}
            return Runs(self.where, self.digest, self.frame, arrays, self.y[rows], self.places, self.notes,
                        self.assumed, self.n_configurations, self.platform)
        kept, first, shape = np.unique(self.shape[rows], return_index=True, return_inverse=True)
        n = self._rows()
        arrays = {k: (v[kept] if isinstance(v, np.ndarray) and v.shape == (n,) else v) for k, v in self.arrays.items()}
        return Runs(self.where, self.digest, self.frame, arrays, self.y[rows], self.places, self.notes, self.assumed,
                    self.n_configurations, self.platform, shape=shape.reshape(-1), shape_first=first)


def _load(data_source) -> tuple[pd.DataFrame, str, str | Callable[[], str]]:
    if isinstance(data_source, pd.DataFrame):
        frame = data_module.validate(data_source, "data")  # a copy: the digest is of what was fitted
        return frame, "data", lambda: data_module.frame_sha256(frame)
    path = Path(data_source)
    frame = data_module.load(path)
    return frame, str(path), sha256_file(path)


def parse_assume(assume: Mapping | None) -> dict:
    """Check and parse assumed input values (``{"vcpus": "16"}`` → ``{"vcpus": 16}``)."""
    out = {}
    for name, value in (assume or {}).items():
        if name not in ASSUMABLE:
            raise InputError(Argument("assume"), name, "one of " + ", ".join(closest(name, ASSUMABLE, len(ASSUMABLE))))
        parse_one = parse.size if name == "swiotlb_bytes" else parse.count
        out[name] = parse_one(value, Argument("assume", name))
    return out


def prepare(data_source, target: str, assume: Mapping | None, platform: str = "all") -> Runs:
    """The runs of ``data_source`` that measured ``target``, ready to fit.

    Raises :class:`~costmodel.data.DataError` naming the file (and line) when the data
    cannot be fitted: no such column, fewer than two runs, an unknown vCPU count.
    """
    if target not in TARGETS:
        raise InputError(Argument("target"), target, "one of " + ", ".join(closest(target, TARGETS, len(TARGETS))))
    assume = parse_assume(assume)
    frame, where, digest = _load(data_source)
    place_kind = "line" if frame.index.name == "line" else "row"
    if target not in frame:
        raise data_module.DataError(where, data_module.Said(f"no column {target!r} (columns: {', '.join(frame.columns)})"),
                                    f"a column of measured {target}")
    used = frame[frame[target].notna()].copy()
    notes = []
    skipped = len(frame) - len(used)
    if skipped:
        notes.append(f"{skipped} of {len(frame)} runs have no {target} value and are not used")
    if platform != "all":
        other = used["platform"].astype(str) != platform
        if other.any():
            notes.append(f"{int(other.sum())} runs of another platform than {platform} are not used")
            used = used[~other]
    for name, value in assume.items():
        if name in used:
            unknown = used[name].isna()
            if unknown.any():
                notes.append(f"{name} assumed {value} for {int(unknown.sum())} runs where it is unknown")
            used[name] = used[name].astype("Float64").fillna(value)
        else:
            used[name] = value
            notes.append(f"{name} assumed {value} for every run")
    if used["vcpus"].isna().any():
        label = used.index[used["vcpus"].isna().to_numpy()][0]
        raise data_module.DataError(
            f"{where}, {place_kind} {label}, column vcpus", data_module.Said("an empty cell (unknown)"),
            "a known vCPU count for every run used in the fit (or an assumed one: --assume vcpus=16 on the "
            "command line, assume={'vcpus': 16} in Python)")
    if len(used) == 0:
        raise data_module.DataError(where, data_module.Said(f"no run with a {target} value"), f"runs with measured {target}")
    if len(used) < 2:
        raise data_module.DataError(where, data_module.Said(f"1 run with a {target} value"),
                                    "at least 2 runs, and more runs than coefficients to fit")
    arrays, shape, shape_first = _configurations(shape_columns(used))
    places = Places(where, place_kind, used.index.to_numpy())
    runs = Runs(where, digest, used, arrays, used[target].to_numpy(dtype=float), places, notes, assume, 0, platform,
                shape=shape, shape_first=shape_first)
    runs.n_configurations = len(runs.groups()[0])
    return runs


def _configurations(columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray | None,
                                                            np.ndarray | None]:
    """:func:`~costmodel.compiled.configurations` of the runs' shape columns, resolved once per
    distinct shape: ``(arrays, shape, first)``, one row of ``arrays`` per shape, ``shape`` each
    run's row and ``first`` each row's first run (it works row by row: the same arrays as
    per run). ``shape`` is None when ``arrays`` has one row per run: few runs, mostly distinct
    shapes, or an error, raised by resolving every run so that it names the run as it always has."""
    n = len(next(iter(columns.values()))) if columns else 0
    if n < 256:
        return configurations(columns), None, None
    code = np.zeros(n, dtype=np.int64)
    for values in columns.values():
        ranks, uniques = pd.factorize(values, use_na_sentinel=False)  # None and NaN: one unknown
        if (int(code.max()) + 1) * max(len(uniques), 1) >= 1 << 62:
            code = np.unique(code, return_inverse=True)[1].reshape(-1).astype(np.int64)
        code = code * max(len(uniques), 1) + ranks
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    if len(first) > n // 2:
        return configurations(columns), None, None
    try:
        distinct = configurations({k: v[first] for k, v in columns.items()})
    except InputError:
        return configurations(columns), None, None
    return distinct, inverse.reshape(-1).astype(np.intp), first


def configuration_groups(arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)`` of the distinct configurations of :func:`~costmodel.compiled.configurations`'
    arrays: exactly ``np.unique(configuration_keys(arrays), axis=0, return_index=True,
    return_inverse=True)`` (configurations sorted by their keys, column after column; the
    first run of each), without sorting rows of a dozen floats.

    Each key column that varies is coded by the rank of its value, the ranks combined into
    one whole number per run (mixed radix, most significant column first: the same order),
    and the runs grouped on that number (a table when the codes are few, else one sort).
    """
    columns = [np.asarray(arrays[k], dtype=float) for k in KEY_COLUMNS]  # configuration_keys' columns
    n = len(columns[0]) if columns else 0
    if n == 0 or any(np.isnan(c).any() for c in columns):  # NaN never equals itself: np.unique's own rules
        _, first, inverse = np.unique(configuration_keys(arrays), axis=0, return_index=True, return_inverse=True)
        return first, inverse.reshape(-1)
    code = np.zeros(n, dtype=np.int64)
    span = 1
    for column in columns:
        if column[0] == column[-1] and np.all(column == column[0]):
            continue  # the same in every run: neither orders nor separates them
        ranks, values = pd.factorize(column + 0.0, sort=True)  # + 0.0: -0.0 and 0.0 are one value, as in np.unique
        if span * len(values) >= 1 << 62:  # the combined code would overflow: renumber densely first
            _, code = np.unique(code, return_inverse=True)
            code = code.reshape(-1).astype(np.int64)
            span = int(code.max()) + 1
        code = code * len(values) + ranks
        span *= len(values)
    if span <= max(4 * n, 1 << 16):
        present = np.zeros(span, dtype=bool)
        present[code] = True
        rank = np.cumsum(present) - 1
        inverse = rank[code]
        count = int(rank[-1]) + 1
        first = np.full(count, n, dtype=np.intp)
        np.minimum.at(first, inverse, np.arange(n, dtype=np.intp))
        return first, inverse.astype(np.intp)
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def shape_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The VM-shape columns of validated runs, as :func:`~costmodel.compiled.configurations`
    reads them (unknown optional cells: None or NaN, so the defaults apply)."""
    columns = {}
    for name in SHAPE_COLUMNS:
        if name not in frame:
            continue
        column = frame[name]
        if name == "platform":
            columns[name] = column.astype(str).to_numpy()
        elif name in ("devices", "kaslr", "svsm", "atomic_pools"):
            columns[name] = column.astype(object).where(column.notna(), None).to_numpy()
        else:
            columns[name] = column.to_numpy(dtype=float, na_value=np.nan)  # as through Float64: NA is NaN
    return columns


def input_ranges(runs: Runs) -> dict:
    """The measured range of every input (extrapolation checks compare against it)."""
    from costmodel.calibration import assumed

    # the SWIOTLB the model gives a run is its configuration's: evaluate the distinct ones
    distinct = runs.configuration_arrays()
    a = runs.arrays  # a row per run, or per distinct shape of the runs: the same ranges
    swiotlb = compile_outputs(("swiotlb_bytes",), "default", SCENARIO)(distinct, assumed().values)["swiotlb_bytes"]
    ranges = {}
    for name, values in (("memory_bytes", a["memory_bytes"]), ("vcpus", a["vcpus"]), ("virtqueues", a["virtqueues"]),
                         ("numa_nodes", a["numa_nodes"]), ("swiotlb_bytes", swiotlb)):
        ranges[name] = [int(np.min(values)), int(np.max(values))]
    ranges["hugepage_bytes"] = sorted({int(v) for v in np.unique(a["hugepage_bytes"])})
    ranges["platform"] = sorted({str(v) for v in np.unique(np.asarray(a["platform"]).astype(str))})
    return ranges
