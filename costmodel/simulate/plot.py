"""The guest-physical map of one simulated boot: every split hugepage, coloured by the source
it is attributed to, one lane per source; a panel for RAM below 4 GiB and one per NUMA node
above it; hugepages that merged back are hatched. Matplotlib, PNG (1280 px wide) or SVG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from costmodel.errors import Argument, InputError
from costmodel.simulate.boot import Boot
from costmodel.simulate.count import SOURCE_NAMES, TRANSIENT, HugepageCount
from costmodel.simulate.layout import FOUR_GIB
from costmodel.units import GiB

FORMATS = (".png", ".svg")
WIDTH_INCHES, DPI = 12.8, 100
LABEL = {2 * 1024**2: "2 MiB", GiB: "1 GiB"}


def _runs(pages: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive hugepage indices as (first, count) runs."""
    if not pages.size:
        return []
    cut = np.flatnonzero(np.diff(pages) != 1) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [pages.size]])
    return [(int(pages[a]), int(b - a)) for a, b in zip(starts, ends)]


def panels(boot: Boot) -> list[tuple[str, int, int]]:
    """(title, first GPA, end GPA) of each panel: low RAM, then each node's RAM above 4 GiB. [B]"""
    out = [(f"RAM below 4 GiB (0–{boot.layout.lowmem / GiB:.3g} GiB)", 0, boot.layout.lowmem)]
    for node in boot.layout.nodes:
        for lo, hi in node.pieces:
            if lo >= FOUR_GIB:
                out.append((f"node {node.index} above 4 GiB ({lo / GiB:.4g}–{hi / GiB:.4g} GiB)", lo, hi))
    return out


def draw_map(boot: Boot, counted: HugepageCount, path: str | Path) -> Path:
    """Write the map of ``boot`` (whose hugepages ``counted`` holds) to ``path`` (.png or .svg)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InputError(Argument("map"), str(path), "a file name ending in .png or .svg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    H = counted.hugepage_bytes
    owners = [i for i in range(len(SOURCE_NAMES)) if np.any(counted.owner == i)] or [0]
    colours = {i: plt.get_cmap("tab20")(k % 20) for k, i in enumerate(owners)}
    areas = panels(boot)
    fig, axes = plt.subplots(len(areas), 1, figsize=(WIDTH_INCHES, 0.6 + 0.32 * len(owners) * len(areas) + 0.5),
                             dpi=DPI, squeeze=False)
    gpa_of_page = boot.layout.gpa(counted.pages * H)
    for ax, (title, lo, hi) in zip(axes[:, 0], areas):
        inside = (gpa_of_page >= lo) & (gpa_of_page < hi)
        for lane, owner in enumerate(owners):
            mine = inside & (counted.owner == owner)
            pages = counted.pages[mine]
            for first, n in _runs(pages):
                start = float(boot.layout.gpa(first * H)) / GiB
                merged = owner == TRANSIENT
                ax.broken_barh([(start, n * H / GiB)], (lane - 0.4, 0.8), facecolors=colours[owner],
                               edgecolor="black" if merged else colours[owner], linewidth=0.8,
                               hatch="////" if merged else None)
        ax.set_xlim(lo / GiB, hi / GiB)
        ax.set_ylim(-0.6, len(owners) - 0.4)
        ax.set_yticks(range(len(owners)), [SOURCE_NAMES[i] for i in owners], fontsize=7)
        ax.set_title(title, fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    axes[-1, 0].set_xlabel("guest-physical address [GiB]   (hatched: merged back)", fontsize=8)
    shape = boot.shape
    fig.suptitle(f"{shape.memory_bytes / GiB:.4g} GiB {shape.platform.upper()}, {shape.vcpus} vCPUs, "
                 f"{LABEL.get(H, f'{H} B')} hugepages: {counted.splits} split, {counted.merges} merged", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=path.suffix.lower()[1:])
    plt.close(fig)
    return path
