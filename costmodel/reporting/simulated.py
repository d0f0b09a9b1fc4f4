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

#: Boots per configuration for a report's bands (≈1 ms each on the reference guest).
SEEDS = 16


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
    both (rows that describe the same guest share their boots). [1]"""
    from costmodel.reporting.sections import shape_of
    from costmodel.simulate import simulate

    params = _parameters(calibration)
    low, high = np.full((2, len(frame)), np.nan), np.full((2, len(frame)), np.nan)
    done: dict = {}
    for i, row in enumerate(frame.to_dict("records")):
        shape = shape_of(row)
        if shape not in done:
            distribution = simulate(shape, seeds, params)
            done[shape] = [(s.p05, s.p95) for s in (distribution.split_summary, distribution.merge_summary)]
        for k, (p05, p95) in enumerate(done[shape]):
            low[k, i], high[k, i] = p05, p95
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
