"""``costmodel lab``: JupyterLab on ``notebooks/``, the jupytext ``.py`` files opening as notebooks."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

EXIT_MISSING = 3


def register(subparsers):
    p = subparsers.add_parser(
        "lab", help="open JupyterLab on notebooks/ (needs the lab extra)",
        description="Start JupyterLab in notebooks/ with the venv's python3 kernel. The notebooks are "
        "jupytext percent scripts (report.py, explore.py, fit.py): jupytext opens them as notebooks "
        "and saves them back as scripts. Needs: pip install 'costmodel[lab]'.")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--port", type=int, default=None, help="port (default JupyterLab's, 8888)")
    p.add_argument("lab_args", nargs="*", metavar="ARG", help="more arguments for jupyter lab (after --)")
    p.set_defaults(run=run)
    return p


def command(args) -> list[str]:
    """The JupyterLab command line this run starts (tested without starting it)."""
    from costmodel.report import NOTEBOOKS_DIR

    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={NOTEBOOKS_DIR}",
           # .py percent scripts open as notebooks by default (jupytext's viewer)
           '--LabApp.default_url=/lab/tree/report.py']
    if args.no_browser:
        cmd.append("--no-browser")
    if args.port:
        cmd.append(f"--port={args.port}")
    return cmd + list(args.lab_args)


def run(args) -> int:
    missing = [m for m in ("jupyterlab", "jupytext") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"costmodel lab: error: {', '.join(missing)} not installed; install the lab extra: "
              "pip install 'costmodel[lab]' (in this project: .venv/bin/pip install -e '.[lab]')", file=sys.stderr)
        return EXIT_MISSING
    env = dict(os.environ, JUPYTER_PREFER_ENV_PATH="1")  # the venv's kernel and settings, not the home's
    return subprocess.call(command(args), env=env)
