"""What the placement simulator adds to a report: the 5–95 % band of splits and merges over
seeded boots beside the closed form's expectation, and the guest-physical map of one boot.

The simulator (:mod:`costmodel.simulate`) replays the allocators independently of the closed
form; it takes the calibration's region counts and layout sizes by name, so both describe
the same guest.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

#: Boots per configuration for a report's bands (≈1 ms each on the reference guest).
SEEDS = 16


def _parameters(calibration):
    from costmodel.simulate import Parameters

    return Parameters.from_mapping(calibration.values)


def band(frame, calibration, y: str = "splits", seeds: int = SEEDS) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's 5th and 95th percentile of ``y`` (``splits`` or ``merges``) for each
    configuration of an evaluated ``frame``, seeded (0 … seeds − 1). [1]"""
    from costmodel.reporting.sections import shape_of
    from costmodel.simulate import simulate

    params = _parameters(calibration)
    low, high = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    for i, row in enumerate(frame.to_dict("records")):
        summary = getattr(simulate(shape_of(row), seeds, params), f"{y[:-1]}_summary")
        low[i], high[i] = summary.p05, summary.p95
    return low, high


def map_png(shape, calibration, seed: int = 0) -> tuple[bytes, str]:
    """The guest-physical map of one seeded boot of ``shape`` as PNG bytes (every split
    hugepage coloured by the source that split it; merged ones hatched), and its alternative
    text."""
    from costmodel.simulate import boot, count
    from costmodel.simulate.plot import draw_map

    booted = boot(shape, seed, _parameters(calibration))
    counted = count(booted.conversions, shape.hugepage_bytes)
    with tempfile.TemporaryDirectory() as scratch:
        path = draw_map(booted, counted, Path(scratch) / "map.png")
        png = path.read_bytes()
    alt = (f"Guest-physical map of one simulated boot: {counted.splits} hugepages split, {counted.merges} merged "
           "back, each coloured by the source that split it")
    return png, alt
