"""Figures for reports and notebooks: each takes data (a frame from the library) and an ``ax``.

Every function draws on the given Matplotlib axes (a new one when ``ax`` is None) and
returns it, so notebooks compose them into figures and tests check them without a kernel.
Axes carry units in square brackets; scaling plots mark the configuration the report is
about. Nothing here computes model numbers: frames come from :func:`costmodel.evaluate.evaluate`,
:class:`costmodel.results.Prediction` and :mod:`costmodel.fitting.fit`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd

from costmodel import units
from costmodel.render import numbers

#: One colour per hugepage size, the same in every figure.
HUGEPAGE_COLORS = {4 * units.KiB: "#7f7f7f", 2 * units.MiB: "#1f77b4", units.GiB: "#d62728"}
REFERENCE_STYLE = dict(marker="*", s=220, color="#ffbf00", edgecolor="black", linewidth=0.8, zorder=5)

#: Axis labels with units, by column name.
LABELS = {
    "memory_bytes": "guest memory [GiB]",
    "vcpus": "vCPUs [1]",
    "virtqueues": "virtqueues [1]",
    "numa_nodes": "NUMA nodes [1]",
    "queue_size": "device queue size [entries]",
    "boot_vcpus": "vCPUs online at boot [1]",
    "splits": "hugepages split [1]",
    "merges": "hugepages merged back [1]",
    "conversion_cycles": "conversion cycles [cycles]",
    "split_merge_cycles": "split/merge cycles [cycles]",
    "split_merge_share": "split/merge share of conversion cycles [%]",
    "vmemmap_bytes": "vmemmap [MiB]",
    "pageless_saving_bytes": "struct page-less saving [MiB]",
    "huge_mapped_fraction": "memory still huge-mapped [%]",
    "shared_bytes": "shared memory [MiB]",
}
#: How a column is scaled for display (bytes to GiB/MiB, fractions to %).
SCALE = {"memory_bytes": units.GiB, "vmemmap_bytes": units.MiB, "pageless_saving_bytes": units.MiB,
         "shared_bytes": units.MiB, "split_merge_share": 0.01, "huge_mapped_fraction": 0.01}


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.5))
    return ax


def _shown(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=float) / SCALE.get(column, 1)


def hugepage_label(size_bytes) -> str:
    """``2 MiB pages`` for a legend."""
    return f"{numbers.format_size(size_bytes)} pages"


def splits_by_source(breakdown: pd.DataFrame, ax=None, total: float | None = None):
    """Horizontal bars: splits attributed to each source, largest first, values printed.

    ``breakdown`` has ``label`` and ``splits`` columns (:meth:`Prediction.breakdown`).
    Sources contributing nothing are left out; the x axis is logarithmic when one source
    dwarfs the others, so the small ones stay visible.
    """
    from costmodel.reporting.sections import expected_count

    ax = _ax(ax)
    parts = breakdown[breakdown["splits"] >= 0.005].sort_values("splits")  # a trace would print as 0.00
    values = parts["splits"].to_numpy(dtype=float)
    ax.barh(parts["label"], values, color="#4c72b0")
    if len(values) and values.max() > 50 * max(values.min(), 1e-9):
        ax.set_xscale("log")
        ax.set_xlim(max(values.min() / 3, 0.005), values.max() * 8)
    else:
        ax.set_xlim(0, (values.max() if len(values) else 1) * 1.25)
    left = ax.get_xlim()[0]
    for y, value in enumerate(values):  # the value right of its bar, never left of the axis (over the labels)
        ax.text(max(value, left), y, " " + expected_count(value), va="center", fontsize=8, clip_on=True)
    ax.set_xlabel("hugepages split [1]" + (" (log scale)" if ax.get_xscale() == "log" else ""))
    title = "Splits by source"
    if total is not None:
        title += f" (total {total:.0f})"
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=8)
    return ax


def scaling(frame: pd.DataFrame, x: str, y: str = "splits", ax=None, reference: Mapping | None = None,
            hue: str = "hugepage_bytes", log_x: bool = True, legend: bool = True, band=None):
    """Lines of ``y`` against ``x``, one per hugepage size; the configuration starred.

    Parameters
    ----------
    frame : DataFrame
        Output of :func:`costmodel.evaluate.evaluate` over a range of ``x``.
    x, y : str
        Column names (``vcpus``, ``memory_bytes``, ``virtqueues``; ``splits``, …).
    reference : mapping, optional
        The configuration to mark: its ``x``, ``y`` and ``hue`` values.
    band : (low, high) arrays, optional
        Per row of ``frame``, a range drawn shaded behind each line (the placement
        simulator's 5–95 % of ``y``, :func:`costmodel.reporting.simulated.band`).
    """
    ax = _ax(ax)
    data = pd.DataFrame({"x": _shown(frame, x), "y": _shown(frame, y),
                         "hue": [hugepage_label(h) for h in frame[hue]]})
    palette = {hugepage_label(h): c for h, c in HUGEPAGE_COLORS.items()}
    # Model curves: one exact value per x, nothing for seaborn to aggregate, and plain
    # lines draw ~0.3 s faster per report than sns.lineplot.
    if band is not None:
        scale = SCALE.get(y, 1)
        data["low"], data["high"] = np.asarray(band[0]) / scale, np.asarray(band[1]) / scale
    for label, line in data.groupby("hue", sort=False):
        line = line.sort_values("x")
        ax.plot(line["x"], line["y"], marker="o", markersize=4, color=palette.get(label), label=label)
        if band is not None:
            ax.fill_between(line["x"], line["low"], line["high"], color=palette.get(label), alpha=0.2, linewidth=0,
                            label="simulator 5–95 %" if label == next(iter(palette)) else None)
    if reference is not None:
        ax.scatter([reference[x] / SCALE.get(x, 1)], [reference[y] / SCALE.get(y, 1)], label="this configuration",
                   **REFERENCE_STYLE)
    if log_x:
        ax.set_xscale("log", base=2)
        ticks = [t for t in np.unique(data["x"]) if t > 0 and float(np.log2(t)).is_integer()]
        if len(ticks) > 6:  # every other power of two keeps the labels apart
            ticks = ticks[::2]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
    positive = data["y"][data["y"] > 0]
    if len(positive) and positive.max() > 20 * positive.min():
        ax.set_yscale("log")  # 2 MiB and 1 GiB counts differ by ~100x: both stay readable
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    if legend:  # above the axes, outside the data
        ax.legend(fontsize=7, title=None, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=3, frameon=False,
                  borderaxespad=0, handletextpad=0.3, columnspacing=1.0)
    elif ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.grid(True, alpha=0.3)
    return ax


def cycle_budget(frame: pd.DataFrame, ax=None, by: str = "hugepage_bytes"):
    """Stacked bars of conversion cycles: split/merge vs the rest, share printed on top."""
    ax = _ax(ax)
    labels = [hugepage_label(v) if by == "hugepage_bytes" else str(v) for v in frame[by]]
    split = frame["split_merge_cycles"].to_numpy(dtype=float)
    total = frame["conversion_cycles"].to_numpy(dtype=float)
    ax.bar(labels, total - split, color="#9ecae1", label="plain conversion operations")
    ax.bar(labels, split, bottom=total - split, color="#d62728", label="split and merge")
    for i, (t, share) in enumerate(zip(total, frame["split_merge_share"])):
        ax.text(i, t, f"{100 * share:.1f} %", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("conversion cycles [cycles]")
    ax.set_ylim(0, max(total.max(), 1) * 1.15)
    ax.set_title("Conversion-cycle budget", pad=22)
    _legend_above(ax)
    return ax


def footprint(frame: pd.DataFrame, ax=None, by: str = "hugepage_bytes"):
    """Bars of vmemmap now and what struct page-less memory would save. [MiB]"""
    ax = _ax(ax)
    labels = [hugepage_label(v) if by == "hugepage_bytes" else str(v) for v in frame[by]]
    positions = np.arange(len(labels))
    width = 0.38
    now = _shown(frame, "vmemmap_bytes")
    saving = _shown(frame, "pageless_saving_bytes")
    ax.bar(positions - width / 2, now, width, color="#4c72b0", label="vmemmap after splits")
    ax.bar(positions + width / 2, saving, width, color="#55a868", label="saved by struct page-less")
    for p, v in zip(positions - width / 2, now):
        ax.text(p, v, numbers.format_plain(v), ha="center", va="bottom", fontsize=7)
    for p, v in zip(positions + width / 2, saving):
        ax.text(p, v, numbers.format_plain(v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(positions)
    ax.set_xticklabels(labels)
    ax.set_ylabel("memory [MiB]")
    ax.set_ylim(0, max(now.max(), saving.max(), 1e-9) * 1.2)
    ax.set_title("vmemmap (struct page) footprint", pad=22)
    _legend_above(ax)
    return ax


def huge_mapped(frame: pd.DataFrame, ax=None, by: str = "hugepage_bytes"):
    """Bars of the share of guest memory still mapped with hugepages. [%]"""
    ax = _ax(ax)
    labels = [hugepage_label(v) if by == "hugepage_bytes" else str(v) for v in frame[by]]
    values = _shown(frame, "huge_mapped_fraction")
    colors = [HUGEPAGE_COLORS.get(v, "#4c72b0") for v in frame[by]] if by == "hugepage_bytes" else "#4c72b0"
    ax.bar(labels, values, color=colors)
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.1f} %", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel(LABELS["huge_mapped_fraction"])
    ax.set_title("Huge-mapped fraction")
    return ax


def scenarios(frame: pd.DataFrame, y: str = "splits", ax=None, titles: Mapping[str, str] | None = None,
              legend: bool = True):
    """Grouped bars of ``y`` per scenario, one bar per hugepage size (legend above the axes, or
    none: :func:`figure_legend` gives several panels one)."""
    ax = _ax(ax)
    order = list(dict.fromkeys(frame["scenario"]))
    sizes = list(dict.fromkeys(frame["hugepage_bytes"]))
    width = 0.8 / max(len(sizes), 1)
    positions = np.arange(len(order))
    top = 0.0
    for k, size in enumerate(sizes):
        part = frame[frame["hugepage_bytes"] == size].set_index("scenario").reindex(order)
        values = part[y].to_numpy(dtype=float) / SCALE.get(y, 1)
        offset = (k - (len(sizes) - 1) / 2) * width
        ax.bar(positions + offset, values, width, color=HUGEPAGE_COLORS.get(size), label=hugepage_label(size))
        for p, v in zip(positions + offset, values):
            ax.text(p, v, numbers.format_plain(v), ha="center", va="bottom", fontsize=6.5)
        top = max(top, np.nanmax(values) if len(values) else 0)
    ax.set_xticks(positions)
    ax.set_xticklabels([textwrap.fill((titles or {}).get(s, s), 12) for s in order], fontsize=7)
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_ylim(0, max(top, 1e-9) * 1.18)
    if legend:
        _legend_above(ax)
    return ax


def predicted_vs_measured(frame: pd.DataFrame, target: str = "splits", ax=None,
                          measured: str | None = None):
    """Measured against predicted, prediction intervals as error bars, y = x drawn.

    ``frame`` holds the measured column (``target``, or ``measured``), the prediction
    ``predicted_<target>`` or ``<target>_predicted``, optional ``<target>_pi_low/_pi_high``
    and an ``extrapolation`` flag (points outside the fitted range drawn hollow).
    """
    ax = _ax(ax)
    measured = measured or target
    predicted = next(c for c in (f"{target}_predicted", f"predicted_{target}") if c in frame)
    x = frame[predicted].to_numpy(dtype=float)
    y = frame[measured].to_numpy(dtype=float)
    low, high = f"{target}_pi_low", f"{target}_pi_high"
    if low in frame and high in frame:
        ax.errorbar(x, y, xerr=[x - frame[low].to_numpy(dtype=float), frame[high].to_numpy(dtype=float) - x],
                    fmt="none", ecolor="#999999", elinewidth=1, capsize=2, label="prediction interval")
    outside = (frame["extrapolation"].fillna("").astype(str).str.len() > 0).to_numpy() if "extrapolation" in frame \
        else np.zeros(len(x), bool)
    ax.scatter(x[~outside], y[~outside], color="#1f77b4", zorder=3, label="runs" if not outside.any() else "runs within the fitted range")
    if outside.any():
        ax.scatter(x[outside], y[outside], facecolor="white", edgecolor="#d62728", zorder=3, label="outside the fitted range")
    finite = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]])
    if len(finite):
        lo, hi = finite.min(), finite.max()
        if lo > 0 and hi > 20 * lo:  # counts at 2 MiB and 1 GiB differ ~100x: log-log keeps both
            ax.set_xscale("log")
            ax.set_yscale("log")
            line = np.array([lo / 1.5, hi * 1.5])
        else:
            pad = 0.05 * (hi - lo or max(abs(hi), 1))
            line = np.array([lo - pad, hi + pad])
        ax.plot(line, line, color="black", linewidth=0.8, linestyle="--", label="y = x")
    unit = LABELS.get(target, f"{target} [1]")
    ax.set_xlabel("predicted " + unit)
    ax.set_ylabel("measured " + unit)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    return ax


def residuals(frame: pd.DataFrame, target: str = "splits", ax=None, by: str | None = None,
              measured: str | None = None):
    """Residuals (measured − predicted) against the prediction or a column ``by``."""
    ax = _ax(ax)
    measured = measured or target
    predicted = next(c for c in (f"{target}_predicted", f"predicted_{target}") if c in frame)
    x = frame[by or predicted].to_numpy(dtype=float) / SCALE.get(by, 1) if by else frame[predicted].to_numpy(dtype=float)
    r = frame[measured].to_numpy(dtype=float) - frame[predicted].to_numpy(dtype=float)
    ax.axhline(0, color="black", linewidth=0.8)
    keep = np.isfinite(x) & np.isfinite(r)
    ax.scatter(x[keep], r[keep], color="#1f77b4")
    if keep.any():  # a floor on the range: exact fits should look exact, not like noise at 1e-13
        scale = np.nanmax(np.abs(frame[measured].to_numpy(dtype=float)[keep]))
        limit = max(np.abs(r[keep]).max() * 1.3, 0.02 * scale, 1e-9)
        ax.set_ylim(-limit, limit)
    if by is None and keep.any() and x[keep].min() > 0 and x[keep].max() > 20 * x[keep].min():
        ax.set_xscale("log")
    ax.set_xlabel(LABELS.get(by, by) if by else "predicted " + LABELS.get(target, f"{target} [1]"))
    ax.set_ylabel(f"residual, measured − predicted [{LABELS.get(target, '[1]').rsplit('[', 1)[-1]}")
    ax.grid(True, alpha=0.3)
    return ax


def _legend_above(ax, ncol: int = 3) -> None:
    """The legend in one row above the axes (under the title), never over the bars."""
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=ncol, frameon=False, borderaxespad=0.2,
              handletextpad=0.3, columnspacing=1.0)


def figure_legend(fig, ax) -> None:
    """One legend for a figure of panels, from ``ax``'s series, above the panels (outside the data)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncol=len(handles), fontsize=7, frameon=False)


def describe(fig) -> str:
    """Alternative text for a figure: each panel's title and axes (``Splits by source: x hugepages
    split [1] (log scale), y source``), so a reader without the image knows what it shows."""
    panels = []
    for ax in fig.get_axes():
        if not ax.get_visible() or not (ax.has_data() or ax.get_title()):
            continue
        title = ax.get_title() or "chart"
        axes = [f"{name} {label}" for name, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())) if label]
        legend = ax.get_legend()
        if legend is not None:
            axes.append("series " + ", ".join(t.get_text() for t in legend.get_texts()))
        panels.append(title + (": " + "; ".join(axes) if axes else ""))
    for legend in fig.legends:
        panels.append("Series " + ", ".join(t.get_text() for t in legend.get_texts()))
    return "Figure. " + ". ".join(panels) + "." if panels else "Figure."


#: Figures are stored at this many pixels per inch: twice the 100 px/in they are shown at, so
#: they stay sharp on HiDPI screens and in print.
PNG_DPI = 200


def png(fig, dpi: float = PNG_DPI) -> bytes:
    """``fig`` as an opaque PNG at ``dpi``, drawn once, with no metadata that changes between runs.

    ``savefig`` draws a figure with a layout engine twice (a layout pass, then the drawing);
    ``Figure.draw`` lays out and draws in one pass, to the same pixels. Figures here are
    opaque, so the alpha channel is dropped (a PDF keeps it as a second image). A figure drawn
    before on this host, identical in every respect, is read from the on-disk cache
    (:mod:`~costmodel.reporting.figcache`).
    """
    from costmodel.reporting import figcache

    return figcache.cached(figcache.figure_key(fig, dpi), lambda: drawn_png(fig, dpi))


def drawn_png(fig, dpi: float = PNG_DPI) -> bytes:
    """:func:`png` without the on-disk cache: the drawing itself."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    shown_dpi = fig.dpi
    canvas = FigureCanvasAgg(fig)
    try:
        fig.dpi = dpi
        canvas.draw()
        rgba = canvas.buffer_rgba()
        image = Image.frombuffer("RGBA", (rgba.shape[1], rgba.shape[0]), rgba, "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="png", dpi=(dpi, dpi))
    finally:
        fig.dpi = shown_dpi
    return buffer.getvalue()


def show(fig=None, alt: str | None = None) -> None:
    """Display ``fig`` (default: the current figure) as a 2× PNG with alternative text, and close it.

    The notebooks call this instead of relying on the inline backend, whose PNGs are 1× and
    carry no description into the exported HTML. The figure is closed before it is drawn,
    so nothing (IPython's or the inline backend's hooks) draws it again.
    """
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    fig = fig or plt.gcf()
    plt.close(fig)
    data = png(fig)
    display(Image(data=data, format="png", retina=True, alt=alt or describe(fig)))


def figure(ncols: int = 1, nrows: int = 1, width: float = 7.0, height: float = 3.2, **kwargs):
    """A figure sized for an A4 report column (≈ 7 in wide); returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width, height * nrows), layout="constrained", **kwargs)


def style() -> None:
    """The report style: seaborn's whitegrid (:mod:`~costmodel.reporting.theme`), compact fonts, crisp PNGs for print."""
    import matplotlib as mpl

    from costmodel.reporting import theme

    theme.apply()
    mpl.rcParams.update({"figure.dpi": 100, "savefig.dpi": PNG_DPI, "axes.titlesize": 10, "axes.labelsize": 9})
    try:  # in a notebook: figures use constrained layout, so skip the inline backend's tight-bbox redraw
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.run_line_magic("config", "InlineBackend.print_figure_kwargs = {'bbox_inches': None}")
    except ImportError:  # plain Python: nothing to configure
        pass
