"""The accelerators section of the report and the explore notebook (issue 10, docs/runtime.md).

The same VM with 0, 1, 4 and 8 GPUs, TDISP on and off, staging buffers and unprotected
memory of several sizes, side by side (:data:`costmodel.model.scenarios.ACCELERATORS`,
evaluated by :func:`costmodel.results.predict_family`): boot and run time apart, as a table,
a figure and one sentence saying what a platform engineer should read from it. Like
:mod:`~costmodel.reporting.sections`, nothing here is computed in a notebook.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd

from costmodel.render import numbers

#: Where the family's rules come from (docs/runtime.md rule 3), as Markdown.
SOURCES = ("domain.md §9 'Accelerators': NVIDIA confidential-computing mode, `nv_alloc_system_pages()` in "
           "`kernel-open/nvidia/nv-vm.c` (unprotected memory decrypted with `set_memory_decrypted()`, page by page "
           "when not contiguous); UVM staging buffers of 2 MiB (`UVM_CONF_COMPUTING_DMA_BUFFER_SIZE`, alignment "
           "unverified); TDISP / TDX Connect / SEV-TIO ('PCI/TSM: TEE I/O infrastructure' v2, Mar 2026, not merged): "
           "an accepted device DMAs into private memory and converts nothing")


@dataclass(frozen=True)
class Panel:
    """One panel of the figure: a boot column, a run-time column and how to show them."""

    title: str
    boot: str
    run: str
    label: str
    log: bool = True
    percent: bool = False


PANELS = (
    Panel("Splits", "splits", "runtime_splits", "hugepages split [1]"),
    Panel("Merges", "merges", "runtime_merges", "hugepages merged back [1]"),
    Panel("Conversion operations", "conversion_ops", "runtime_conversion_ops", "conversion operations [1]"),
    Panel("Conversion cycles", "conversion_cycles", "runtime_conversion_cycles", "conversion cycles [cycles]"),
    Panel("Split/merge share", "split_merge_share", "runtime_split_merge_share",
          "share of conversion cycles [%]", log=False, percent=True),
    Panel("Huge-mapped memory", "huge_mapped_fraction", "final_huge_mapped_fraction",
          "guest memory mapped huge [%]", log=False, percent=True),
)
BOOT_COLOR, RUN_COLOR = "#9ecae1", "#d62728"


def family(shape=None, calibration=None, scenario: str = "status_quo") -> pd.DataFrame:
    """The accelerators family for ``shape``: one row per case, the model's boot, run-time
    and total outputs, the case's inputs per GPU (``gpus``, ``unprotected_bytes``,
    ``chunk_bytes``, ``staging``, ``tdisp``, ``jobs``, ``duration_seconds``) and the run time's own
    split/merge share."""
    from costmodel import results
    from costmodel.model.scenarios import ACCELERATORS
    from costmodel.workload import accelerator

    frame = results.predict_family("accelerators", shape=shape, scenario=scenario, calibration=calibration)
    inputs = []
    for case in ACCELERATORS:
        devices = [accelerator(spec) for spec in case.accelerators]
        first = devices[0] if devices else None
        inputs.append({"label": case.label, "gpus": sum(d.count for d in devices),
                       "unprotected_bytes": first.unprotected_bytes if first else 0,
                       "chunk_bytes": first.chunk_bytes if first and first.unprotected_bytes else np.nan,
                       "staging": first.staging if first else 0, "tdisp": bool(first and first.tdisp),
                       "jobs": case.jobs, "duration_seconds": case.duration_seconds})
    frame = pd.concat([frame, pd.DataFrame(inputs, index=frame.index)], axis=1)
    cycles = frame["runtime_conversion_cycles"].to_numpy(dtype=float)
    frame["runtime_split_merge_share"] = np.divide(frame["runtime_split_merge_cycles"].to_numpy(dtype=float), cycles,
                                                   out=np.zeros_like(cycles), where=cycles > 0)
    return frame


def inputs_table(frame: pd.DataFrame) -> str:
    """HTML table: what each case is (per GPU)."""
    from costmodel.reporting.sections import frame_table

    shown = frame.assign(
        unprotected_bytes=[numbers.format_size(v) if v else "0" for v in frame["unprotected_bytes"]],
        chunk_bytes=["–" if np.isnan(v) else numbers.format_size(v) for v in frame["chunk_bytes"]],
        tdisp=["on" if t else "off" for t in frame["tdisp"]],
        jobs=[f"per job, {j:.0f} jobs" if j else "once, kept" for j in frame["jobs"]])
    return frame_table(shown, {"label": "case", "gpus": "GPUs [1]", "unprotected_bytes": "unprotected memory per GPU",
                               "chunk_bytes": "converted in chunks of", "staging": "2 MiB staging buffers per GPU [1]",
                               "tdisp": "TDISP", "jobs": "allocated"},
                       formats={"gpus": "{:.0f}", "staging": "{:.0f}"})


#: The results table's columns: (boot column, run-time column, header).
RESULT_COLUMNS = (
    ("splits", "runtime_splits", "splits [1]"),
    ("merges", "runtime_merges", "merges [1]"),
    ("conversion_ops", "runtime_conversion_ops", "conversion operations [1]"),
    ("conversion_cycles", "runtime_conversion_cycles", "conversion [cycles]"),
    ("split_merge_share", "runtime_split_merge_share", "split/merge share of these cycles"),
    ("split_merge_share", "total_split_merge_share", "split/merge share, boot and run"),
    ("huge_mapped_fraction", "final_huge_mapped_fraction", "guest memory mapped huge"),
)


def results_table(frame: pd.DataFrame) -> str:
    """HTML table: the boot once (the same VM in every case), then each case's run time; the
    last two columns are boot and run together (total share, huge-mapped memory at the end)."""
    from costmodel.reporting.sections import frame_table

    first = frame.iloc[0]
    rows = [{"label": "boot (every case)", **{f"c{k}": first[boot] for k, (boot, _, _) in enumerate(RESULT_COLUMNS)}}]
    rows += [{"label": label, **{f"c{k}": record[run] for k, (_, run, _) in enumerate(RESULT_COLUMNS)}}
             for label, (_, record) in zip(frame["label"], frame.iterrows())]
    shown = pd.DataFrame(rows)
    formats = {}
    for k, (boot, _, _) in enumerate(RESULT_COLUMNS):
        if boot in ("split_merge_share", "huge_mapped_fraction"):
            formats[f"c{k}"] = "pct"
        elif boot == "conversion_cycles":
            shown[f"c{k}"] = [numbers.format_value(boot, v).replace(" cycles", "") for v in shown[f"c{k}"]]
        else:
            formats[f"c{k}"] = "expected"
    return frame_table(shown, {"label": "case", **{f"c{k}": header for k, (_, _, header) in enumerate(RESULT_COLUMNS)}},
                       formats=formats)


def _value(panel: Panel, value: float) -> str:
    if panel.percent:
        return f"{value:.1f} %"
    if "cycles" in panel.label:
        return numbers.format_value("conversion_cycles", value).replace(" cycles", "")
    return numbers.format_plain(value)


def draw(frame: pd.DataFrame, axes) -> None:
    """Horizontal bars per case and panel (:data:`PANELS`): boot beside run time, values printed.
    ``axes``: a flat sequence of at least ``len(PANELS)`` axes; the first column carries the labels."""
    labels = [textwrap.fill(text, 22) for text in frame["label"]]
    positions = np.arange(len(frame))[::-1]
    height = 0.38
    run_time = _duration(frame)
    for k, (ax, panel) in enumerate(zip(axes, PANELS)):
        scale = 100 if panel.percent else 1
        boot = frame[panel.boot].to_numpy(dtype=float) * scale
        run = frame[panel.run].to_numpy(dtype=float) * scale
        ax.barh(positions + height / 2, boot, height, color=BOOT_COLOR, label="boot (after boot)")
        ax.barh(positions - height / 2, run, height, color=RUN_COLOR, label=f"run time ({run_time}; at its end)")
        top = float(np.nanmax(np.concatenate([boot, run]))) if len(frame) else 1.0
        if panel.log:
            ax.set_xscale("log")
            low = max(float(np.nanmin(np.concatenate([boot, run])[np.concatenate([boot, run]) > 0], initial=top)) / 4,
                      0.5)
            ax.set_xlim(low, max(top, 1) * 60)
        else:
            ax.set_xlim(0, max(top, 1e-9) * 1.35)
        left = ax.get_xlim()[0]
        for p, b, r in zip(positions, boot, run):
            ax.text(max(b, left), p + height / 2, " " + _value(panel, b), va="center", fontsize=6)
            ax.text(max(r, left), p - height / 2, " " + _value(panel, r), va="center", fontsize=6)
        ax.set_yticks(positions)
        ax.set_yticklabels(labels if k % 3 == 0 else [], fontsize=7)
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel(panel.label + (" (log scale)" if panel.log else ""), fontsize=7)
        ax.tick_params(axis="x", labelsize=7)


def figure(frame: pd.DataFrame):
    """The section's figure (2 × 3 panels, A4 column wide, one legend above); returns ``(fig, axes)``."""
    from costmodel.reporting import plots

    fig, axes = plots.figure(ncols=3, nrows=2, width=7.2, height=3.4)
    draw(frame, axes.flat)
    plots.figure_legend(fig, axes[0][0])
    return fig, axes


def _duration(frame: pd.DataFrame) -> str:
    """The run time the family covers, for people (``1 h``, ``10 min``, ``45 s``)."""
    seconds = float(frame["duration_seconds"].max()) if "duration_seconds" in frame else 0.0
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:g} s"


def reading(frame: pd.DataFrame) -> str:
    """Markdown: what a platform engineer should read from the family, with this guest's numbers."""
    rows = frame.set_index("case")

    def get(case: str, column: str) -> float:
        return float(rows.loc[case, column])

    def count(value: float) -> str:
        return f"{value:,.0f}"

    def pct(value: float) -> str:
        return f"{100 * value:.1f} %"

    tdisp = get("gpu_8_tdisp", "runtime_conversion_ops") + get("gpu_8_tdisp", "runtime_splits")
    if get("gpu_0", "hugepage_bytes") <= 4096:
        return (f"**What to read from it.** With 4 KiB pages nothing splits or merges; GPUs add conversion "
                f"operations only ({count(get('gpu_8', 'runtime_conversion_ops'))} for 8 GPUs in 4 KiB chunks, "
                f"{count(get('gpu_8_2m_chunks', 'runtime_conversion_ops'))} in 2 MiB ones).")
    return (
        f"**What to read from it.** Boot splits {count(get('gpu_0', 'splits'))} hugepages whatever the GPUs. "
        f"After boot, GPUs in confidential-computing mode with "
        f"{numbers.format_size(get('gpu_8', 'unprotected_bytes'))} of unprotected memory each add "
        f"{count(get('gpu_1', 'runtime_splits'))}, {count(get('gpu_4', 'runtime_splits'))} and "
        f"{count(get('gpu_8', 'runtime_splits'))} splits with 1, 4 and 8 devices, and the memory still mapped huge "
        f"falls from {pct(get('gpu_0', 'final_huge_mapped_fraction'))} to "
        f"{pct(get('gpu_8', 'final_huge_mapped_fraction'))}. The unprotected size sets the splits "
        f"({count(get('gpu_8_256m', 'runtime_splits'))} with "
        f"{numbers.format_size(get('gpu_8_256m', 'unprotected_bytes'))} each); the chunk size sets the conversion "
        f"operations ({count(get('gpu_8', 'runtime_conversion_ops'))} in 4 KiB chunks, "
        f"{count(get('gpu_8_2m_chunks', 'runtime_conversion_ops'))} in 2 MiB ones). Memory kept for the VM's life "
        f"splits once and never merges; allocated and freed per job, the same GPUs split "
        f"{count(get('gpu_8_per_job', 'runtime_splits'))} and merge {count(get('gpu_8_per_job', 'runtime_merges'))} "
        f"times in {count(get('gpu_8_per_job', 'jobs'))} jobs. "
        + ("Devices accepted under TDISP convert nothing. " if tdisp == 0 else "")
        + "So: size the unprotected memory to what the GPUs need, allocate it once in large chunks, and prefer "
          "TDISP where the platform offers it."
    )


def boot_merges(frame: pd.DataFrame) -> str:
    """Markdown: what the boot merges in the table are (issue 10: named sources, or what is
    still unexplained)."""
    first = frame.iloc[0]
    merges, firmware, rest = (float(first[k]) for k in ("merges", "merges_from_firmware", "merges_unexplained"))
    if merges == 0:
        return "With these pages the boot merges nothing back."
    return (f"**The boot's {numbers.format_plain(merges)} merges.** {firmware:.1f} of them are the firmware's "
            f"reserved shared pool (edk2 PR #3784, ≈5.6 MiB in blocks of 4 KiB to 2 MiB), released at ExitBootServices "
            f"[unverified, domain.md §9]; the other {rest:.1f} have no named source: they are the fitted transient "
            f"pages. Probe-time churn (rings freed and re-allocated by a device reset) could explain them, but "
            f"nothing published counts it (docs/runtime.md, 'The ≈30 boot merges').")


def notes(frame: pd.DataFrame) -> str:
    """Markdown: the run time covered, the cost rules and where the rules come from."""
    return (f"Run-time totals cover {_duration(frame)} after boot; unprotected memory and staging buffers are "
            f"allocated at the start and kept, except in the per-job case. Each run-time split or merge costs the "
            f"boot's split/merge event, each conversion operation the calibrated operation cost (docs/runtime.md "
            f"rules 3 and 6). The run-time split/merge share is of the run's own conversion cycles; the total "
            f"share, of boot and run together. *Sources: {SOURCES}.*")
