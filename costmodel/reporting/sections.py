"""What the report notebook shows: its tables, grids and comparisons, one function each.

:mod:`costmodel.reporting.report` runs notebooks and exports them; this module is their content. The
notebook ``costmodel/notebooks/report.py`` calls these functions and computes nothing itself, so every
number in a report comes from the library and is tested without starting a kernel.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from costmodel import __version__, units
from costmodel.files import sha256_file
from costmodel.render import escape, numbers
from costmodel.reporting.summary import SUMMARY_KEYS

#: Hugepage sizes the scaling and scenario sections compare.
SCALING_HUGEPAGES = (2 * units.MiB, units.GiB)
#: Outputs compared across scenarios (one compiled function per scenario).
SCENARIO_OUTPUTS = ("splits", "merges", "conversion_cycles", "split_merge_share", "vmemmap_bytes",
                    "huge_mapped_fraction")
#: Outputs of the cycle-budget and footprint sections (this scenario only).
BUDGET_OUTPUTS = ("splits", "merges", "conversion_cycles", "split_merge_cycles", "split_merge_share",
                  "split_merge_event_cycles", "shared_bytes", "vmemmap_bytes", "pageless_saving_bytes",
                  "huge_mapped_fraction")


_NUMERIC = re.compile(r"^(<b>)?[-+−–]?[0-9.,]+(e[-+]?[0-9]+)?( ?[%A-Za-z]+| cycles)?(</b>)?$")


def _rows_table(rows: Iterable[Sequence[str]], header: Sequence[str] | None = None, klass: str = "") -> str:
    head = "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>" if header else ""
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if _NUMERIC.match(str(c)) else f"<td>{c}</td>"
                                    for c in row) + "</tr>" for row in rows)
    return f'<table class="{klass}">{head}<tbody>{body}</tbody></table>'


def title_block(point: Mapping, scenario_title: str, calibration) -> str:
    """The report's title (Markdown): the VM shape in words."""
    name = {"snp": "AMD SEV-SNP", "tdx": "Intel TDX"}[point["platform"]]
    return (f"# Hugepage split/merge cost: {name}, {numbers.format_size(point['memory_bytes'])}, "
            f"{point['vcpus']} vCPUs, {numbers.format_size(point['hugepage_bytes'])} pages\n\n"
            f"*Scenario: {scenario_title}. guest_memfd backed by HugeTLB; private↔shared conversions "
            f"split hugepages to 4 KiB. costmodel {__version__}, calibration: "
            f"{escape.markdown(calibration.provenance.get('method', 'custom'))}.*")


def configuration_table(point: Mapping, calibration, calibration_path=None, data_path=None) -> str:
    """HTML table of the configuration: the given inputs and what they resolve to."""
    rows = [
        ("platform", {"snp": "AMD SEV-SNP", "tdx": "Intel TDX"}[point["platform"]]),
        ("guest memory", numbers.format_value("memory_bytes", point["memory_bytes"])),
        ("vCPUs", str(point["vcpus"])),
        ("virtqueues", f"{point['virtqueues']}"),
        ("hugepage size", numbers.format_value("memory_bytes", point["hugepage_bytes"])),
        ("SWIOTLB pool", numbers.format_value("swiotlb_bytes", point["swiotlb_bytes"]) + " (kernel rule: 6 % of memory, "
         "power of two, 64 MiB … 1 GiB)"),
        ("scenario", point["scenario"]),
        ("calibration", html.escape(str(calibration_path)) if calibration_path else
         "default: solved from the published reference (costmodel/reference/roth-2025-07.csv)"),
        ("data", html.escape(Path(str(data_path)).name) if data_path else "none"),
    ]
    return _rows_table([(html.escape(k), v if k in ("calibration", "data") else html.escape(v)) for k, v in rows],
                       ("input", "value"), "config")


KEY_NUMBERS = ("splits", "merges", "conversion_ops", "split_merge_event_cycles", "split_merge_cycles",
               "conversion_cycles", "split_merge_share", "shared_bytes", "vmemmap_bytes", "pageless_saving_bytes",
               "huge_mapped_fraction")


def key_numbers_table(point: Mapping) -> str:
    """HTML table of the outputs at this configuration, formatted for people, with meanings."""
    from costmodel.model.variables import QUANTITIES

    rows = []
    for key in KEY_NUMBERS:
        if key not in point:
            continue
        shown = numbers.format_value(key, point[key])
        low, high = point.get(f"{key}_pi_low"), point.get(f"{key}_pi_high")
        if low is not None and high is not None:
            shown += f" ({numbers.format_value(key, low)} … {numbers.format_value(key, high)})"
        rows.append((f"<code>{key}</code>", f"<b>{html.escape(shown)}</b>", html.escape(QUANTITIES[key].meaning)))
    return _rows_table(rows, ("quantity", "value", "meaning"), "key-numbers")


def demote_headings(markdown: str, levels: int = 1) -> str:
    """Push Markdown headings down ``levels`` levels, so an embedded card nests in a section."""
    return re.sub(r"^(#{1,5}) ", lambda m: "#" * (len(m[1]) + levels) + " ", markdown, flags=re.M)


def frame_table(frame, columns: Mapping[str, str], formats: Mapping[str, str] | None = None) -> str:
    """HTML table of ``columns`` (name → header) of ``frame``, values formatted for people.

    ``formats`` overrides a column's formatting: a ``str.format`` pattern or ``pct``.
    """
    rows = []
    for _, record in frame.iterrows():
        cells = []
        for column in columns:
            value = record[column]
            pattern = (formats or {}).get(column)
            if value is None or (isinstance(value, float) and np.isnan(value)) or value is getattr(np, "nan"):
                text = "–"
            elif pattern == "pct":
                text = f"{100 * float(value):.1f} %"
            elif pattern:
                text = pattern.format(value)
            else:
                text = numbers.format_value(column, value)
            cells.append(html.escape(text))
        rows.append(cells)
    return _rows_table(rows, list(columns.values()))


def _powers_of_two(low: int, high: int, include: int) -> list[int]:
    values = {2**k for k in range(int(np.log2(low)), int(np.log2(high)) + 1)}
    return sorted(values | {int(include)})


def configuration_frame(point: Mapping, **columns):
    """A one-configuration frame from a prediction's dict; keyword lists vary a column.

    Lists given for several columns are combined as a grid.
    """
    import pandas as pd

    base = {k: [point[k]] for k in ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "platform")}
    base["swiotlb_bytes"] = [np.nan]
    base.update({k: list(v) for k, v in columns.items()})
    grid = list(itertools.product(*base.values()))
    return pd.DataFrame(grid, columns=list(base))


def scaling_grids(point: Mapping, virtqueues_given: bool = False) -> dict:
    """Configurations for the scaling plots: vCPUs, memory and virtqueues swept (powers of two).

    Each sweep keeps the other inputs at this configuration, for 2 MiB and 1 GiB pages.
    Unless virtqueues were given, they follow the vCPUs as QEMU's default does.
    """
    vcpus = _powers_of_two(1, 256, point["vcpus"])
    memory = [m * units.GiB for m in _powers_of_two(1, 1024, max(1, point["memory_bytes"] // units.GiB))]
    if point["memory_bytes"] % units.GiB:
        memory = sorted(set(memory) | {point["memory_bytes"]})
    queues = _powers_of_two(1, 256, point["virtqueues"])
    follow = np.nan if not virtqueues_given else point["virtqueues"]
    return {
        "vcpus": configuration_frame(point, vcpus=vcpus, virtqueues=[follow], hugepage_bytes=SCALING_HUGEPAGES),
        "memory_bytes": configuration_frame(point, memory_bytes=memory, hugepage_bytes=SCALING_HUGEPAGES),
        "virtqueues": configuration_frame(point, virtqueues=queues, hugepage_bytes=SCALING_HUGEPAGES),
    }


def compared_hugepages(hugepage_bytes: int) -> list[int]:
    """The sizes the budget and footprint sections show: 2 MiB, 1 GiB and this one."""
    return sorted(set(SCALING_HUGEPAGES) | {int(hugepage_bytes)})


def compare_scenarios(point: Mapping, calibration):
    """Every scenario at this configuration, for 2 MiB and 1 GiB pages (and this size)."""
    import pandas as pd

    from costmodel.evaluate import evaluate
    from costmodel.model.scenarios import SCENARIOS

    grid = configuration_frame(point, hugepage_bytes=compared_hugepages(point["hugepage_bytes"]))
    # this report's own scenario reuses the budget section's compiled outputs (a superset)
    frames = [evaluate(grid, calibration, name, BUDGET_OUTPUTS if name == point["scenario"] else SCENARIO_OUTPUTS)
              [["scenario", "hugepage_bytes", *SCENARIO_OUTPUTS]] for name in SCENARIOS]
    return pd.concat(frames, ignore_index=True)


def scenario_table(frame, hugepage_bytes: int | None = None) -> str:
    """HTML table: one row per scenario and hugepage size, the key numbers side by side."""
    from costmodel.model.scenarios import SCENARIOS

    columns = {"scenario": "scenario", "hugepage_bytes": "hugepage", "splits": "splits", "merges": "merges",
               "split_merge_share": "split/merge share", "conversion_cycles": "conversion cycles",
               "vmemmap_bytes": "vmemmap", "huge_mapped_fraction": "still huge-mapped"}
    shown = frame.sort_values(["hugepage_bytes"], kind="stable").copy()
    shown["scenario"] = [SCENARIOS[s].title for s in shown["scenario"]]
    return frame_table(shown, columns)


def scenario_notes() -> str:
    """Markdown list of the scenarios: what each assumes and where it comes from."""
    from costmodel.model.scenarios import SCENARIOS

    return "\n".join(f"- **{s.title}** — {s.description} *({s.source})*" for s in SCENARIOS.values())


def summary(point: Mapping) -> dict:
    """The key numbers a batch index shows, as plain JSON values."""
    keys = ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "platform", "scenario") + SUMMARY_KEYS
    return {k: (point[k].item() if hasattr(point[k], "item") else point[k]) for k in keys if k in point}


def provenance_table(parameters: Mapping, calibration, data=None) -> str:
    """HTML table: parameters, package versions, the calibration's provenance, data SHA-256."""
    import platform as platform_module
    from importlib import metadata

    rows = [("parameters", html.escape(json.dumps({k: v for k, v in parameters.items()}, sort_keys=True, default=str)))]
    for package in ("costmodel", "sympy", "numpy", "pandas", "scipy", "matplotlib", "seaborn", "papermill", "nbconvert"):
        try:
            rows.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            rows.append((package, "not installed"))
    rows.append(("python", platform_module.python_version()))
    for key, value in sorted(calibration.provenance.items()):
        text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
        rows.append((f"calibration {key}", html.escape(text)))
    origins = {}
    for name, coefficient in calibration.coefficients.items():
        origins.setdefault(coefficient.origin.value, []).append(name)
    for origin, names in sorted(origins.items()):
        rows.append((f"coefficients {origin}", html.escape(", ".join(names))))
    if data:
        digest = sha256_file(data)
        rows.append(("data", html.escape(str(data))))
        rows.append(("data sha256", digest))
    return _rows_table([(html.escape(k), v) for k, v in rows], ("item", "value"), "provenance")


@dataclass
class Comparison:
    """Model against a data file: text (Markdown), the frame, an HTML table, targets shown."""

    text: str
    frame: object = None
    table: str = ""
    targets: tuple = ()


def compare_with_data(path, calibration, scenario: str = "status_quo") -> Comparison:
    """Predict each measured configuration of ``path`` and set prediction beside measurement.

    Reads through :func:`costmodel.data.load` (schema, units, file/line errors). Runs whose
    vCPU count is unknown get the reference assumption (16), and the text says which.
    For a fitted calibration, :func:`costmodel.fitting.fit.annotate` adds prediction intervals and
    the inputs outside the fitted range (extrapolation), both shown.
    """
    from costmodel import data as data_module
    from costmodel.calibration import REFERENCE_ASSUMED_INPUTS
    from costmodel.results import evaluate_with_breakdown

    measured = data_module.load(path)
    frame = measured.reset_index()
    line = frame.columns[0]
    configs = frame[[c for c in ("memory_bytes", "vcpus", "virtqueues", "hugepage_bytes", "platform") if c in frame]].copy()
    lines = []
    assumed_vcpus, why = REFERENCE_ASSUMED_INPUTS["vcpus"]
    unknown = configs["vcpus"].isna().to_numpy()
    if unknown.any():
        where = ", ".join(str(v) for v in frame.loc[unknown, line])
        lines.append(f"vCPUs unknown on {line} {where}: assumed {assumed_vcpus} ({why}).")
    configs["vcpus"] = configs["vcpus"].astype("Float64").fillna(assumed_vcpus).astype(float)
    configs["virtqueues"] = configs["virtqueues"].astype("Float64").astype(float) if "virtqueues" in configs else np.nan
    predicted = evaluate_with_breakdown(configs, calibration, scenario)
    targets = tuple(t for t in ("splits", "merges", "conversion_cycles", "split_merge_cycles", "split_merge_event_cycles")
                    if t in frame and frame[t].notna().any() and t in predicted)
    out = pd_frame(frame, configs)
    for target in targets:
        out[f"{target}_predicted"] = predicted[target].to_numpy(dtype=float)
        for suffix in ("_pi_low", "_pi_high"):
            if target + suffix in predicted:
                out[target + suffix] = predicted[target + suffix].to_numpy(dtype=float)
    out["extrapolation"] = predicted["extrapolation"].to_numpy() if "extrapolation" in predicted else ""
    head = [f"Data file {escape.code_span(Path(path).name)} ({len(out)} runs; sha256 `{sha256_file(path)[:16]}…`), "
            f"compared on {', '.join(targets) or 'nothing the model predicts'}."]
    flagged = [(r, e) for r, e in zip(out[line], out["extrapolation"]) if e]
    if flagged:
        items = "; ".join(f"{line} {r}: {e.replace(',', ', ')}" for r, e in flagged)
        lines.append(f'<div class="warning"><b>Extrapolation.</b> Outside the range the calibration was fitted '
                     f"on: {items}. Predictions there rest on the model's form, not on data.</div>")
    if not any(f"{t}_pi_low" in out for t in targets):
        lines.append("This calibration is not fitted to data, so predictions have no intervals; "
                     "`costmodel fit` gives a calibration with them.")
    rows = []  # one row per run and quantity: narrow enough for a page whatever was measured
    for target in targets:
        measured_values = out[target].to_numpy(dtype=float)
        residual = measured_values - out[f"{target}_predicted"].to_numpy(dtype=float)
        # a difference below 1e-9 of the value is float rounding, not a misfit
        residual = np.where(np.abs(residual) <= 1e-9 * np.abs(measured_values), 0.0, residual)
        out[f"{target}_residual"] = residual
        for k in range(len(out)):
            if np.isnan(measured_values[k]):
                continue
            interval = "–"
            if f"{target}_pi_low" in out:
                interval = f"{numbers.format_value(target, out[f'{target}_pi_low'].iloc[k])} … {numbers.format_value(target, out[f'{target}_pi_high'].iloc[k])}"
            record = out.iloc[k]
            shape = (f"{record['platform']}, {numbers.format_size(record['memory_bytes'])}, {record['vcpus']:.0f} vCPUs, "
                     f"{numbers.format_hugepage(record['hugepage_bytes'])}")
            rows.append((html.escape(str(record[line])), html.escape(shape), f"<code>{target}</code>",
                         html.escape(numbers.format_value(target, measured_values[k])),
                         html.escape(numbers.format_value(target, out[f'{target}_predicted'].iloc[k])), html.escape(interval),
                         html.escape(f"{residual[k]:.4g}"), html.escape(record["extrapolation"] or "–")))
    table = _rows_table(rows, (line, "configuration", "quantity", "measured", "predicted", "interval",
                               "residual", "outside fitted range"), "measurements")
    return Comparison("\n\n".join(head + lines), out, table, targets)


def pd_frame(frame, configs):
    """The measured frame with the configuration columns the prediction used."""
    out = frame.copy()
    for column in configs:
        out[column] = configs[column].to_numpy()
    return out
