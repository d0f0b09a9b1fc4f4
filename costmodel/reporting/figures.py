"""The reference report's figures, each a function of its inputs alone, shown through an
on-disk cache keyed by those inputs.

Each builder takes the frames and values the figure shows and returns the figure; it reads
nothing else (module constants aside), so the figure is a function of its arguments, the
Matplotlib settings and the code. :func:`show` keys the figure's PNG and alternative text on
exactly that (:mod:`costmodel.cache`, kind ``report-figure``): a pickle of the builder's name
and its arguments, every drawing setting, the library versions and the package's code
fingerprint (which covers this module, :mod:`~costmodel.reporting.plots` and the notebooks).
A later report with the same inputs shows the stored PNG without building the figure; any
other input builds and draws it (:func:`costmodel.reporting.plots.show`, same pixels).
Arguments that cannot be pickled are no key: the figure is built and drawn.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
from collections.abc import Callable, Mapping

from costmodel import cache
from costmodel.reporting import figcache, plots

#: The on-disk cache kind of shown figures (PNG and alternative text).
CACHE_KIND = "report-figure"


def splits_by_source(parts, total: float):
    """Splits by source (:func:`plots.splits_by_source`)."""
    fig, ax = plots.figure(height=3.0)
    plots.splits_by_source(parts, ax, total=total)
    return fig


def scaling(frames: Mapping, bands: Mapping, reference: Mapping | None):
    """Splits (top) and merges (bottom) against each swept input of ``frames``, the simulator's
    ``bands`` shaded (:class:`~costmodel.reporting.simulated.Bands` by input), ``reference``
    starred (not on the queue-size panels: several devices have no single queue size)."""
    fig, axes = plots.figure(ncols=4, nrows=2, height=2.5, width=7.2)
    for column, x in enumerate(frames):
        for row, y in enumerate(("splits", "merges")):
            here = reference if x != "queue_size" else None
            plots.scaling(frames[x], x, y, ax=axes[row][column], reference=here, legend=False, band=bands[x].of(y))
            axes[row][column].set_title(f"{y} vs {plots.LABELS[x].split(' [')[0]}", fontsize=8)
    plots.figure_legend(fig, axes[0][0])
    return fig


def budget(by_size):
    """Conversion-cycle budget and huge-mapped fraction per hugepage size."""
    fig, axes = plots.figure(ncols=2, height=2.9)
    plots.cycle_budget(by_size, axes[0])
    plots.huge_mapped(by_size, axes[1])
    return fig


def footprint(by_size):
    """vmemmap footprint per hugepage size."""
    fig, ax = plots.figure(height=2.8, width=5.0)
    plots.footprint(by_size, ax)
    return fig


def scenarios(compared, titles: Mapping[str, str]):
    """Splits, merges, split/merge share and vmemmap under each scenario."""
    fig, axes = plots.figure(ncols=2, nrows=2, height=2.6, width=7.2)
    for ax, y in zip(axes.flat, ("splits", "merges", "split_merge_share", "vmemmap_bytes")):
        plots.scenarios(compared, y, ax, titles=titles, legend=False)
    plots.figure_legend(fig, axes[0][0])
    return fig


def accelerators(gpus):
    """The accelerators section's figure (:func:`costmodel.reporting.accelerators.figure`)."""
    from costmodel.reporting import accelerators as section

    fig, _ = section.figure(gpus)
    return fig


def measured(frame, target: str):
    """Measured against predicted, and the residuals, of ``target``."""
    fig, axes = plots.figure(ncols=2, height=2.9)
    plots.predicted_vs_measured(frame, target, axes[0])
    plots.residuals(frame, target, axes[1])
    axes[0].set_title(f"{target}: measured vs predicted", fontsize=9)
    axes[1].set_title(f"{target}: residuals", fontsize=9)
    return fig


def key(build: Callable, *inputs) -> str | None:
    """The cache key of ``build(*inputs)``'s figure; None when the inputs cannot be pickled."""
    try:
        pickled = pickle.dumps((build.__module__, build.__qualname__, inputs), protocol=5)
    except Exception:  # noqa: BLE001 - an unpicklable input: the figure is built, not cached
        return None
    return figcache.key_of(hashlib.sha256(pickled).hexdigest(), "report figure")


def rendered(build: Callable, *inputs) -> tuple[bytes, str]:
    """The PNG and alternative text of ``build(*inputs)``: stored, or built, drawn and stored."""
    entry = key(build, *inputs)
    known = cache.read(CACHE_KIND, entry) if entry is not None else None
    if known is not None:
        try:
            stored = json.loads(known)
            png = base64.b64decode(stored["png"], validate=True)
            if png.startswith(figcache.PNG_SIGNATURE) and isinstance(stored["alt"], str):
                return png, stored["alt"]
        except (ValueError, KeyError, TypeError):
            pass
    import matplotlib.pyplot as plt

    fig = build(*inputs)
    plt.close(fig)
    png = plots.png(fig) if entry is None else plots.drawn_png(fig)  # keyed here already: stored once
    alt = plots.describe(fig)
    if entry is not None:
        cache.write(CACHE_KIND, entry, json.dumps({"alt": alt, "png": base64.b64encode(png).decode()}))
    return png, alt


def show(build: Callable, *inputs) -> None:
    """Display ``build(*inputs)``'s figure as :func:`costmodel.reporting.plots.show` does (a 2× PNG
    with alternative text), from the on-disk cache when these inputs were drawn before."""
    from IPython.display import Image, display

    png, alt = rendered(build, *inputs)
    display(Image(data=png, format="png", retina=True, alt=alt))
