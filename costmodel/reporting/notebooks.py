"""The report notebooks: where they are, how they are read, and their parameters.

The notebooks are jupytext percent scripts shipped in ``costmodel/notebooks/``; a report may
also run a user's own ``.py`` or ``.ipynb``. Parameters are those of the cell tagged
``parameters``; the known ones are checked as ``costmodel predict`` checks its flags.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from costmodel import errors, parse
from costmodel.errors import Argument, InputError
from costmodel.render import numbers

#: The installed package (a checkout or site-packages): notebooks ship inside it.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = PACKAGE_DIR / "notebooks"


#: The kernel the venv's ipykernel provides; never registered in the user's home.
KERNEL = "python3"


def available_notebooks() -> list[str]:
    """Names of the notebooks in ``costmodel/notebooks/`` (``report``, ``explore``, ``fit``)."""
    return sorted({p.stem for p in NOTEBOOKS_DIR.glob("*.py")} | {p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")})


def notebook_path(notebook: str | os.PathLike) -> Path:
    """The file of a notebook given by name (``report``) or path (``.py`` or ``.ipynb``)."""
    path = Path(notebook)
    if path.suffix in (".py", ".ipynb"):
        if not path.is_file():
            raise InputError(Argument("notebook"), str(notebook), "an existing .py (jupytext percent) or .ipynb file")
        return path.resolve()
    for suffix in (".py", ".ipynb"):
        candidate = NOTEBOOKS_DIR / f"{notebook}{suffix}"
        if candidate.is_file():
            return candidate
    names = available_notebooks()
    raise InputError(Argument("notebook"), str(notebook), "one of " + ", ".join(errors.closest(str(notebook), names, len(names)))
                     + " or a path to a notebook")


def read_notebook(notebook: str | os.PathLike):
    """The notebook as an nbformat node (jupytext converts ``.py``, cells numbered ``cell-0``, …);
    kernel ``python3``."""
    import jupytext
    import nbformat

    path = notebook_path(notebook)
    nb = jupytext.read(path) if path.suffix == ".py" else nbformat.read(path, as_version=4)
    if path.suffix == ".py":  # jupytext draws cell ids at random: number them, so each run has the same
        for i, cell in enumerate(nb.cells):
            cell.id = f"cell-{i}"
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    for cell in nb.cells:  # papermill reads cell.metadata.tags on every cell
        cell.metadata.setdefault("tags", [])
    return nb


@dataclass(frozen=True)
class Parameter:
    """One parameter of a notebook's ``parameters`` cell."""

    name: str
    default: str
    help: str


def notebook_parameters(nb) -> dict[str, Parameter]:
    """The parameters declared in the cell tagged ``parameters``, in order."""
    from papermill.inspection import _infer_parameters

    return {p.name: Parameter(p.name, p.default, p.help) for p in _infer_parameters(nb, name=KERNEL, language="python")}


def _optional(parse):
    def parse_optional(value, where):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            return None
        return parse(value, where)
    return parse_optional


def _existing_file(value, where) -> str:
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise InputError(where, str(value), "an existing file")
    return str(path.resolve())


#: Most runs a report's data file may hold: each is predicted, tabled and plotted. [rows]
MAX_REPORT_DATA_ROWS = 5000
_CHECKED: dict[tuple, None] = {}


def _checked_once(path: str, check) -> None:
    """Run ``check(path)`` once per file content (name, size, mtime): report_name() and
    render() both check the parameters."""
    stat = Path(path).stat()
    key = (path, stat.st_size, stat.st_mtime_ns, check.__name__)
    if key not in _CHECKED:
        check(path)
        _CHECKED[key] = None


def _load_calibration(path: str) -> None:
    from costmodel.calibration.values import Calibration

    Calibration.load(path)


def _within_row_budget(path: str) -> None:
    with open(path, "rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    if lines > MAX_REPORT_DATA_ROWS + 1:
        raise InputError(path, f"about {lines - 1} rows", f"at most {MAX_REPORT_DATA_ROWS} runs for a report "
                         "(fit larger files with costmodel fit, or report on a subset)")


def _load_data(path: str) -> None:
    from costmodel import data

    _within_row_budget(path)
    data.load(path)


def _calibration_file(value, where) -> str:
    """An existing calibration file, read and checked here: its errors exit before a kernel starts."""
    path = _existing_file(value, where)
    _checked_once(path, _load_calibration)
    return path


def _data_file(value, where) -> str:
    """An existing data file, validated here (and within the report's row budget)."""
    path = _existing_file(value, where)
    _checked_once(path, _load_data)
    return path


def _measurements_file(value, where) -> str:
    """An existing file of measurements in any columns (the discover notebook reads it)."""
    path = _existing_file(value, where)
    _checked_once(path, _within_row_budget)
    return path


def _scenario(value, where) -> str:
    from costmodel.model.scenarios import SCENARIOS

    return parse.choice(value, list(SCENARIOS), where)


def _devices(value, where) -> str:
    """``virtio-net:queues=4;nvme`` (or a list of specs) → the canonical ``;``-separated specs."""
    items = value.split(";") if isinstance(value, str) else list(value)
    return ";".join(parse.device(item.strip(), where).spec() for item in items if str(item).strip())


#: How the report notebooks' parameters are checked and normalised (same forms as predict).
PARAMETER_PARSERS = {
    "memory": lambda v, w: numbers.format_size(parse.size(v, w)).replace(" ", ""),
    "vcpus": parse.count,
    "boot_vcpus": _optional(parse.count),
    "numa_nodes": parse.count,
    "lowmem": _optional(lambda v, w: numbers.format_size(parse.size(v, w)).replace(" ", "")),
    "devices": _optional(_devices),
    "kaslr": parse.boolean,
    "svsm": parse.boolean,
    "atomic_pools": parse.boolean,
    "virtqueues": _optional(parse.count),
    "hugepage": lambda v, w: numbers.format_hugepage(parse.hugepage(v, w)),
    "platform": parse.platform,
    "scenario": _scenario,
    "calibration": _optional(_calibration_file),
    "data": _optional(_data_file),
}


#: Notebooks whose parameters of the same name mean something else: discover's ``data`` is
#: any table of measurements, not the dataset schema.
NOTEBOOK_PARSERS = {"discover": {"data": _optional(_measurements_file)}}


def check_parameters(given: Mapping[str, object], declared: Mapping[str, Parameter],
                     where: str = "parameter", notebook: str = "") -> dict[str, object]:
    """Check names against the notebook's parameters and normalise known values.

    Unknown names raise :class:`InputError` listing the notebook's parameters, closest
    first. Values of the names in :data:`PARAMETER_PARSERS` are parsed as ``predict``
    parses them and passed on in canonical form (``16GiB``, ``2M``); others pass as given.
    """
    out = {}
    for name, value in given.items():
        if name not in declared:
            names = list(declared)
            raise InputError(where, name, "a parameter of the notebook: "
                             + (", ".join(errors.closest(name, names, len(names))) if names else "(it declares none)"))
        parse = NOTEBOOK_PARSERS.get(notebook, {}).get(name, PARAMETER_PARSERS.get(name))
        out[name] = parse(value, f"{where} {name}") if parse else _coerce(value, declared[name], f"{where} {name}")
    return out


def _coerce(value, parameter: Parameter, where: str):
    """Text from the command line or a CSV, typed like the parameter's default.

    ``-p size 41`` gives 41 when the default is a number, as papermill's own ``-p`` does;
    text stays text for text defaults.
    """
    if not isinstance(value, str):
        return value
    default = _literal(parameter.default)
    text = value.strip()
    if isinstance(default, bool):
        if text.lower() in ("true", "yes", "1", "false", "no", "0"):
            return text.lower() in ("true", "yes", "1")
        raise InputError(where, value, "true or false")
    if isinstance(default, (int, float)):
        try:
            number = float(text)
        except ValueError:
            raise InputError(where, value, f"a number (the default is {parameter.default})") from None
        return int(number) if isinstance(default, int) and number.is_integer() else number
    if default is None:
        literal = _literal(text)
        return literal if isinstance(literal, (int, float)) or literal is None else value
    return value


def _slug(text: object) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "_", str(text)).strip("_") or "x"


def report_name(notebook: str, parameters: Mapping[str, object], declared: Mapping[str, Parameter]) -> str:
    """The file stem a report's parameters give it (``snp-16GiB-16vcpu-2M-status_quo``).

    Defaults fill what is not given, so the name says the whole configuration. Notebooks
    other than ``report`` are named ``NAME-key_value-…`` from the parameters given.
    """
    if Path(notebook).stem == "report":
        values = {n: _literal(p.default) for n, p in declared.items()}
        values.update(parameters)
        values = check_parameters(values, declared, notebook=Path(notebook).stem)
        parts = [values["platform"], values["memory"], f"{values['vcpus']}vcpu", values["hugepage"], values["scenario"]]
        if values.get("virtqueues") is not None:
            parts.append(f"{values['virtqueues']}vq")
        # the placement inputs, only where they differ from the default guest
        if values.get("boot_vcpus") is not None:
            parts.append(f"{values['boot_vcpus']}boot")
        if (values.get("numa_nodes") or 1) != 1:
            parts.append(f"{values['numa_nodes']}node")
        if values.get("lowmem"):
            parts.append(f"lowmem{values['lowmem']}")
        if values.get("devices"):
            parts.append(values["devices"].replace(";", "+").replace(":", "_").replace("=", ""))
        parts += [flag for key, flag, default in (("kaslr", "nokaslr", True), ("svsm", "svsm", False),
                                                  ("atomic_pools", "nopools", True))
                  if key in values and values[key] != default]
        for key in ("calibration", "data"):
            if values.get(key):
                parts.append(f"{key}_{Path(values[key]).stem}")
        return "-".join(_slug(p) for p in parts)
    parts = [Path(notebook).stem] + [f"{k}_{v}" for k, v in sorted(parameters.items())]
    return "-".join(_slug(p) for p in parts)


def _literal(text: str):
    """A parameter cell's default as a value (``'16GiB'`` → ``16GiB``, ``None`` → None)."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _pretty(path: Path) -> str:
    try:
        return "costmodel/" + path.relative_to(PACKAGE_DIR).as_posix()
    except ValueError:
        return str(path)
