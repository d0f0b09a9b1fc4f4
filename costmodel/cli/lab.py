"""``costmodel lab``: JupyterLab on ``costmodel/notebooks/``, the jupytext ``.py`` files opening as notebooks."""

from __future__ import annotations

import importlib.util
import os
import sys

EXIT_MISSING = 3


def register(subparsers):
    p = subparsers.add_parser(
        "lab", help="open JupyterLab on costmodel/notebooks/ (needs the lab extra)",
        description="Start JupyterLab in costmodel/notebooks/ with the venv's python3 kernel. The notebooks are "
        "jupytext percent scripts (report.py, explore.py, fit.py): jupytext opens them as notebooks "
        "and saves them back as scripts. Needs: pip install 'costmodel[lab]'.")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--port", type=int, default=None, help="port (default JupyterLab's, 8888)")
    p.add_argument("lab_args", nargs="*", metavar="ARG", help="more arguments for jupyter lab (after --)")
    p.set_defaults(run=run)
    return p


def command(args) -> list[str]:
    """The JupyterLab command line this run starts (tested without starting it)."""
    from costmodel.reporting.notebooks import NOTEBOOKS_DIR

    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={NOTEBOOKS_DIR}",
           "--LabApp.default_url=/lab/tree/report.py"]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers run as root; JupyterLab refuses without it
        cmd.append("--allow-root")
    if args.port:
        cmd.append(f"--port={args.port}")
    return cmd + list(args.lab_args)


#: JupyterLab setting that opens ``.py`` files with jupytext's notebook view on a click.
VIEWER_SETTING = ("@jupyterlab/docmanager-extension:plugin", "defaultViewers", {"python": "Jupytext Notebook"})


def settings_overrides(prefix: str | None = None):
    """Make ``.py`` notebooks open as notebooks: merge the setting into this environment's
    ``share/jupyter/lab/settings/overrides.json`` (the venv's, never the user's home)."""
    import json
    from pathlib import Path

    from costmodel.files import atomic_write_text

    path = Path(prefix or sys.prefix, "share", "jupyter", "lab", "settings", "overrides.json")
    try:
        current = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        return None  # an unreadable file of the user's: leave it alone
    plugin, key, value = VIEWER_SETTING
    viewers = current.setdefault(plugin, {}).setdefault(key, {})
    if all(viewers.get(k) == v for k, v in value.items()):
        return path
    viewers.update(value)
    return atomic_write_text(path, json.dumps(current, indent=2, sort_keys=True) + "\n")


def run(args) -> int:
    missing = [m for m in ("jupyterlab", "jupytext") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"costmodel lab: error: {', '.join(missing)} not installed; install the lab extra: "
              "pip install 'costmodel[lab]' (in this project: .venv/bin/pip install -e '.[lab]')", file=sys.stderr)
        return EXIT_MISSING
    settings_overrides()
    env = dict(os.environ, JUPYTER_PREFER_ENV_PATH="1")  # the venv's kernel and settings, not the home's
    cmd = command(args)
    sys.stdout.flush()
    # become JupyterLab: Ctrl-C and signals reach it directly, no process is left behind
    os.execve(cmd[0], cmd, env)
    return 0  # not reached
