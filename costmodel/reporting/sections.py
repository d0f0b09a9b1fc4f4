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
                  "conversion_ops", "shared_bytes", "vmemmap_bytes", "pageless_saving_bytes",
                  "huge_mapped_fraction")


_NUMERIC = re.compile(r"^(<b>)?[-+−–]?[0-9.,]+(e[-+]?[0-9]+)?( ?[%A-Za-z]+| cycles)?(</b>)?$")


def _rows_table(rows: Iterable[Sequence[str]], header: Sequence[str] | None = None, klass: str = "") -> str:
    head = "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>" if header else ""
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if _NUMERIC.match(str(c)) else f"<td>{c}</td>"
                                    for c in row) + "</tr>" for row in rows)
    return f'<table class="{klass}">{head}<tbody>{body}</tbody></table>'


PLATFORM_NAMES = {"snp": "AMD SEV-SNP", "tdx": "Intel TDX"}


def title_block(point: Mapping, scenario_title: str, calibration) -> str:
    """The report's title (Markdown): the VM shape in words."""
    nodes = int(point.get("numa_nodes") or 1)
    return (f"# Hugepage split/merge cost: {PLATFORM_NAMES[point['platform']]}, "
            f"{numbers.format_size(point['memory_bytes'])}, {point['vcpus']} vCPUs"
            + (f", {nodes} NUMA nodes" if nodes > 1 else "")
            + f", {numbers.format_size(point['hugepage_bytes'])} pages\n\n"
            f"*Scenario: {scenario_title}. guest_memfd backed by HugeTLB; private↔shared conversions "
            f"split hugepages to 4 KiB. costmodel {__version__}, calibration: "
            f"{escape.markdown(calibration.provenance.get('method', 'custom'))}.*")


def _given(shape, field: str) -> str:
    """`` (given)`` or `` (default)`` after a value, by whether the shape set ``field``."""
    if shape is None:
        return ""
    return " (given)" if getattr(shape, field) is not None else " (default)"


def devices_text(shape) -> str:
    """The guest's devices in words: ``virtio-blk (16 queues × 256), virtio-net (1 queue pair × 256)``."""
    from costmodel.model import kernel

    parts = []
    for device in shape.effective_devices:
        sizes = kernel.device_queue_allocations(device, shape.effective_boot_vcpus)
        parts.append(f"{device.spec()} ({len(sizes)} coherent allocations)")
    return ", ".join(parts)


def configuration_table(point: Mapping, calibration, calibration_path=None, data_path=None, shape=None) -> str:
    """HTML table of the configuration: the given inputs and what they resolve to.

    ``shape`` (the :class:`~costmodel.shape.VmShape` asked for) marks each input given or
    defaulted and lists the devices with their queues.
    """
    onoff = {True: "on", False: "off"}
    devices = devices_text(shape) if shape is not None else str(point.get("devices") or "QEMU default")
    rows = [
        ("platform", PLATFORM_NAMES[point["platform"]]),
        ("guest memory", numbers.format_value("memory_bytes", point["memory_bytes"])),
        ("RAM below 4 GiB", numbers.format_value("lowmem_bytes", point["lowmem_bytes"]) + _given(shape, "lowmem_bytes")),
        ("vCPUs (possible)", str(point["vcpus"])),
        ("vCPUs online at boot", str(point["boot_vcpus"]) + _given(shape, "boot_vcpus")),
        ("NUMA nodes", str(point["numa_nodes"])),
        ("devices", devices + _given(shape, "devices")),
        ("virtqueues", f"{point['virtqueues']}"),
        ("hugepage size", numbers.format_value("memory_bytes", point["hugepage_bytes"])),
        ("SWIOTLB pool", numbers.format_value("swiotlb_bytes", point["swiotlb_bytes"])
         + (" (given)" if shape is not None and shape.swiotlb_bytes is not None else
            " (kernel rule: 6 % of memory, power of two, 64 MiB … 1 GiB, within low RAM)")),
        ("KASLR, SVSM, atomic DMA pools", ", ".join(onoff[bool(point[k])] for k in ("kaslr", "svsm", "atomic_pools"))),
        ("scenario", point["scenario"]),
        ("calibration", html.escape(str(calibration_path)) if calibration_path else
         "default: solved from the published reference (costmodel/reference/roth-2025-07.csv)"),
        ("data", html.escape(Path(str(data_path)).name) if data_path else "none"),
    ]
    return _rows_table([(html.escape(k), v if k in ("calibration", "data") else html.escape(v)) for k, v in rows],
                       ("input", "value"), "config")


KEY_NUMBERS = ("splits", "merges", "conversion_ops", "split_merge_cycles", "conversion_cycles", "split_merge_share",
               "shared_bytes", "vmemmap_unsplit_bytes", "vmemmap_bytes", "pageless_saving_bytes",
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


def formula_card(card_markdown: str) -> str:
    """A Markdown card for a report page: headings one level down, and its formulas in a
    ``formula-card`` block that print keeps on one page (the coefficient table after it
    may break like any table)."""
    text = demote_headings(card_markdown)
    split = text.find("\n| symbol |")
    head, rest = (text, "") if split < 0 else (text[:split], text[split:])
    return '<div class="formula-card">\n\n' + head.strip() + "\n\n</div>\n" + rest


def demote_headings(markdown: str, levels: int = 1) -> str:
    """Push Markdown headings down ``levels`` levels, so an embedded card nests in a section."""
    return re.sub(r"^(#{1,5}) ", lambda m: "#" * (len(m[1]) + levels) + " ", markdown, flags=re.M)


def frame_table(frame, columns: Mapping[str, str], formats: Mapping[str, str] | None = None) -> str:
    """HTML table of ``columns`` (name → header) of ``frame``, values formatted for people.

    ``formats`` overrides a column's formatting: a ``str.format`` pattern, ``pct`` or
    ``expected`` (an expected count: one decimal below 10, whole above, "< 0.05" for a
    trace, so a share beside it never reads against a printed 0.0).
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
            elif pattern == "expected":
                text = expected_count(value)
            elif pattern:
                text = pattern.format(value)
            else:
                text = numbers.format_value(column, value)
            cells.append(html.escape(text))
        rows.append(cells)
    return _rows_table(rows, list(columns.values()))


def expected_count(value: float) -> str:
    """An expected count for people: ``513``, ``0.92``, ``< 0.01``, ``0``."""
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) < 0.01:
        return "< 0.01"
    if abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.0f}"


def _powers_of_two(low: int, high: int, include: int) -> list[int]:
    values = {2**k for k in range(int(np.log2(low)), int(np.log2(high)) + 1)}
    return sorted(values | {int(include)})


def shape_of(point: Mapping):
    """The :class:`~costmodel.shape.VmShape` of a prediction's dict, with every input as resolved."""
    from costmodel.model import kernel
    from costmodel.shape import SHAPE_COLUMNS, VmShape, devices_spec

    values = {k: (point[k].item() if hasattr(point[k], "item") else point[k]) for k in SHAPE_COLUMNS if k in point}
    # inputs at the value their default resolves to stay defaults, so sweeps let them follow
    if values.get("boot_vcpus") == values["vcpus"]:
        values["boot_vcpus"] = None
    if values.get("devices") == devices_spec(kernel.default_devices()):
        values["devices"] = None
    lowmem = values.get("lowmem_bytes")
    return VmShape.parse(lowmem=None if lowmem == kernel.q35_lowmem(values["memory_bytes"]) else lowmem,memory=values["memory_bytes"], vcpus=values["vcpus"], hugepage=values["hugepage_bytes"],
                         platform=values["platform"], boot_vcpus=values.get("boot_vcpus"),
                         numa_nodes=values.get("numa_nodes"), devices=values.get("devices"),
                         kaslr=values.get("kaslr"), svsm=values.get("svsm"), atomic_pools=values.get("atomic_pools"))


def _as_shape(shape_or_point):
    from costmodel.shape import VmShape

    return shape_or_point if isinstance(shape_or_point, VmShape) else shape_of(shape_or_point)


def configuration_frame(shape, **columns):
    """A one-configuration frame of a :class:`~costmodel.shape.VmShape` (or a prediction's
    dict); keyword lists vary a column. Lists given for several columns are combined as a grid.
    Inputs the shape left to their defaults stay defaults (None), so they follow the swept ones.
    """
    import pandas as pd

    base = {k: [v] for k, v in _as_shape(shape).to_columns().items()}
    base.update({k: list(v) for k, v in columns.items()})
    grid = list(itertools.product(*base.values()))
    return pd.DataFrame(grid, columns=list(base)).astype(object).where(lambda f: f.notna(), None)


@dataclass
class Sweep:
    """One scaling sweep: configurations where one input varies, and that input's values.

    ``x`` names the swept input (a shape column, or ``queue_size`` for the devices' queue
    size); ``values`` holds it per configuration, in the frame's row order.
    """

    x: str
    configs: object
    values: list

    def evaluate(self, calibration, scenario: str = "status_quo"):
        """The configurations evaluated (every output, splits by source), with the ``x`` column."""
        from costmodel.results import evaluate_with_breakdown

        frame = evaluate_with_breakdown(self.configs, calibration, scenario)
        frame[self.x] = self.values
        return frame


#: Queue sizes (ring entries) the device sweep goes through; virtio allows powers of two to 32768.
QUEUE_SIZES = (64, 128, 256, 512, 1024, 2048, 4096)


def scaling_grids(shape) -> dict[str, Sweep]:
    """The scaling sweeps of a report: vCPUs, memory, NUMA nodes and the devices' queue size.

    Each sweep keeps the other inputs at this shape (a :class:`~costmodel.shape.VmShape` or
    a prediction's dict), for 2 MiB and 1 GiB pages. Inputs the shape left to their defaults
    follow the swept one (boot vCPUs and the virtio-blk queues follow the vCPUs, low memory
    and the SWIOTLB follow the memory); values the shape rules out (fewer vCPUs than NUMA
    nodes, less than 256 MiB per node) are left out.
    """
    from costmodel.shape import MIN_NODE_MEMORY, Device

    shape = _as_shape(shape)
    nodes = shape.numa_nodes
    vcpus = [v for v in _powers_of_two(1, 256, shape.vcpus) if v >= nodes and (shape.boot_vcpus or 0) <= v]
    memory = [m * units.GiB for m in _powers_of_two(1, 1024, max(1, shape.memory_bytes // units.GiB))]
    if shape.memory_bytes % units.GiB:
        memory = sorted(set(memory) | {shape.memory_bytes})
    memory = [m for m in memory if m >= nodes * MIN_NODE_MEMORY and m >= (shape.lowmem_bytes or 0)
              and m >= (shape.swiotlb_bytes or 0)]
    node_counts = [k for k in (1, 2, 4, 8) if k <= shape.vcpus and shape.memory_bytes / k >= MIN_NODE_MEMORY]
    if nodes not in node_counts:
        node_counts = sorted(set(node_counts) | {nodes})
    devices = shape.effective_devices
    sizes = sorted(set(QUEUE_SIZES) | {d.size for d in devices if d.size})

    def frame(**columns):
        return configuration_frame(shape, hugepage_bytes=SCALING_HUGEPAGES, **columns)

    def sweep(x, configs, column):
        return Sweep(x, configs, [v for v in configs[column]])

    by_size = {size: ";".join(Device(d.kind, d.queues, size, d.layout).spec() for d in devices) for size in sizes}
    size_of = {spec: size for size, spec in by_size.items()}
    queue_frame = frame(devices=[by_size[s] for s in sizes], virtqueues=[None])
    queue = Sweep("queue_size", queue_frame, [size_of[spec] for spec in queue_frame["devices"]])
    return {
        "vcpus": sweep("vcpus", frame(vcpus=vcpus), "vcpus"),
        "memory_bytes": sweep("memory_bytes", frame(memory_bytes=memory), "memory_bytes"),
        "numa_nodes": sweep("numa_nodes", frame(numa_nodes=node_counts), "numa_nodes"),
        "queue_size": queue,
    }


def compared_hugepages(hugepage_bytes: int) -> list[int]:
    """The sizes the budget and footprint sections show: 2 MiB, 1 GiB and this one."""
    return sorted(set(SCALING_HUGEPAGES) | {int(hugepage_bytes)})


def compare_scenarios(point: Mapping, calibration, shape=None):
    """Every scenario at this configuration, for 2 MiB and 1 GiB pages (and this size)."""
    import pandas as pd

    from costmodel.evaluate import evaluate
    from costmodel.model.scenarios import SCENARIOS

    grid = configuration_frame(shape if shape is not None else point,
                               hugepage_bytes=compared_hugepages(point["hugepage_bytes"]))
    # this report's own scenario reuses the budget section's compiled outputs (a superset)
    frames = [evaluate(grid, calibration, name, BUDGET_OUTPUTS if name == point.get("scenario") else SCENARIO_OUTPUTS)
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
    """The key numbers a batch index shows, as plain JSON values without float noise
    (:func:`costmodel.render.numbers.rounded`: 9 significant digits, integral counts as ints)."""
    from costmodel.shape import SHAPE_COLUMNS

    keys = (*SHAPE_COLUMNS, "scenario") + SUMMARY_KEYS
    return {k: numbers.rounded(point[k].item() if hasattr(point[k], "item") else point[k]) for k in keys if k in point}


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
    from costmodel.fitting.runs import shape_columns

    lines = []
    assumed_vcpus, why = REFERENCE_ASSUMED_INPUTS["vcpus"]
    unknown = frame["vcpus"].isna().to_numpy()
    if unknown.any():
        where = ", ".join(str(v) for v in frame.loc[unknown, line])
        lines.append(f"vCPUs unknown on {line} {where}: assumed {assumed_vcpus} ({why}).")
    configs = shape_columns(frame)  # unknown optional cells stay unknown: the defaults apply
    configs["vcpus"] = np.where(np.isnan(configs["vcpus"]), float(assumed_vcpus), configs["vcpus"])
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
        out[column] = np.asarray(configs[column])
    return out
