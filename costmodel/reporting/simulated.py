"""What the placement simulator adds to a report: the 5–95 % band of splits and merges over
seeded boots beside the closed form's expectation, and the guest-physical map of one boot.

The simulator (:mod:`costmodel.simulate`) replays the allocators independently of the closed
form; it takes the calibration's region counts and layout sizes by name, so both describe
the same guest.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from costmodel import cache

#: Boots per configuration for a report's bands (≈1 ms each on the reference guest).
SEEDS = 16
#: The on-disk cache kind of a report's bands (:func:`bands`).
CACHE_KIND = "report-bands"


def _parameters(calibration):
    from costmodel.simulate import Parameters

    return Parameters.from_mapping(calibration.values)


@dataclass(frozen=True)
class Bands:
    """The simulator's 5th and 95th percentiles of splits and merges for each configuration of
    a frame, from one set of boots per configuration. [1]"""

    splits: tuple[np.ndarray, np.ndarray]
    merges: tuple[np.ndarray, np.ndarray]

    def of(self, y: str) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` of ``y`` (``splits`` or ``merges``). [1]"""
        return {"splits": self.splits, "merges": self.merges}[y]


def bands(frame, calibration, seeds: int = SEEDS) -> Bands:
    """The simulator's 5th and 95th percentile of splits and merges for each configuration of an
    evaluated ``frame``, seeded (0 … seeds − 1). Each distinct configuration is booted once for
    both (rows that describe the same guest share their boots). The bands of a frame are kept in the
    on-disk cache (kind ``report-bands``) under its configurations, the simulator's parameters,
    the seeds and the code fingerprint (:func:`costmodel.cache.key`): a later report of the same
    configurations reads them back. [1]"""
    from costmodel.reporting.sections import shape_of
    from costmodel.simulate import simulate

    params = _parameters(calibration)
    shapes = [shape_of(row) for row in frame.to_dict("records")]
    key = cache.key("report bands", json.dumps(params.to_dict(), sort_keys=True), repr(int(seeds)),
                    *(repr(shape) for shape in shapes))
    known = _read_bands(key, len(shapes))
    if known is not None:
        return known
    low, high = np.full((2, len(frame)), np.nan), np.full((2, len(frame)), np.nan)
    done: dict = {}
    for i, shape in enumerate(shapes):
        if shape not in done:
            distribution = simulate(shape, seeds, params)
            done[shape] = [(s.p05, s.p95) for s in (distribution.split_summary, distribution.merge_summary)]
        for k, (p05, p95) in enumerate(done[shape]):
            low[k, i], high[k, i] = p05, p95
    cache.write(CACHE_KIND, key, json.dumps([low.tolist(), high.tolist()]))
    return Bands(splits=(low[0], high[0]), merges=(low[1], high[1]))


def _read_bands(key: str, rows: int) -> Bands | None:
    """Bands stored under ``key`` by an earlier report (JSON floats: exact), or None."""
    text = cache.read(CACHE_KIND, key)
    if text is None:
        return None
    try:
        low, high = (np.array(side, dtype=float) for side in json.loads(text))
    except (ValueError, TypeError):
        return None
    if low.shape != (2, rows) or high.shape != (2, rows):
        return None
    return Bands(splits=(low[0], high[0]), merges=(low[1], high[1]))


def band(frame, calibration, y: str = "splits", seeds: int = SEEDS) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's 5th and 95th percentile of ``y`` (``splits`` or ``merges``) for each
    configuration of an evaluated ``frame``, seeded (0 … seeds − 1); :func:`bands` for one. [1]"""
    return bands(frame, calibration, seeds).of(y)


def map_png(shape, calibration, seed: int = 0) -> tuple[bytes, str]:
    """The guest-physical map of one seeded boot of ``shape`` as PNG bytes (every split
    hugepage coloured by the source that split it; merged ones hatched), and its alternative
    text. Drawn once per host (:mod:`~costmodel.reporting.figcache`)."""
    from costmodel.reporting import figcache
    from costmodel.simulate import boot, count
    from costmodel.simulate.plot import draw_map

    params = _parameters(calibration)
    booted = boot(shape, seed, params)
    counted = count(booted.conversions, shape.hugepage_bytes)

    def draw() -> bytes:
        with tempfile.TemporaryDirectory() as scratch:
            return draw_map(booted, counted, Path(scratch) / "map.png").read_bytes()

    # the boot is a function of these alone (seeded), the map of the boot: drawn once per host
    key = figcache.key_of("guest-physical map", repr(shape), json.dumps(params.to_dict(), sort_keys=True), repr(seed))
    png = figcache.cached(key, draw)
    alt = (f"Guest-physical map of one simulated boot: {counted.splits} hugepages split, {counted.merges} merged "
           "back, each coloured by the source that split it")
    return png, alt
