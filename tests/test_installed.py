"""The package works installed from its wheel, outside the checkout.

The wheel is built the way a release is (sdist first, then the wheel from the sdist, so
both are checked), installed into a fresh virtual environment in a temporary directory,
and run from there: ``predict`` prints the reference numbers from the shipped reference
data, ``formula`` prints a card, ``report`` renders a notebook shipped in the package.
The new environment borrows this one's third-party packages through a ``.pth`` line
(no network, seconds instead of minutes); costmodel itself comes only from the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel installed, and a working directory outside the checkout."""
    tmp = tmp_path_factory.mktemp("installed")
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (wheel,) = dist.glob("costmodel-*.whl")
    (sdist,) = dist.glob("costmodel-*.tar.gz")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # third-party packages from this environment; its .pth files (the editable costmodel) are not read
    Path(site, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, text=True)
    work = tmp / "work"
    work.mkdir()
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment["PATH"] = f"{env_dir / 'bin'}:{environment.get('PATH', '')}"
    # the borrowed packages' data files (nbconvert's templates) stay where they were installed
    environment["JUPYTER_PATH"] = str(Path(sys.prefix, "share", "jupyter"))
    return {"bin": env_dir / "bin", "cwd": work, "env": environment, "sdist": sdist, "wheel": wheel}


def run(installed, *args, timeout=300):
    return subprocess.run([str(installed["bin"] / args[0]), *args[1:]], cwd=installed["cwd"], env=installed["env"],
                          capture_output=True, text=True, timeout=timeout)


def test_it_is_the_wheel_that_is_imported(installed):
    done = run(installed, "python", "-c", "import costmodel; print(costmodel.__file__)")
    assert done.returncode == 0, done.stderr
    assert "site-packages" in done.stdout and not done.stdout.startswith(str(ROOT) + "/costmodel")


def test_predict_prints_the_reference_numbers(installed):
    done = run(installed, "costmodel", "predict", "--json")
    assert done.returncode == 0, done.stderr
    point = json.loads(done.stdout)
    assert point["splits"] == pytest.approx(622, rel=1e-9) and point["merges"] == pytest.approx(30, rel=1e-9)


def test_formula_card(installed):
    done = run(installed, "costmodel", "formula", "--target", "splits", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert "costmodel/reference/roth-2025-07.csv" in done.stdout and "\\begin{aligned}" in done.stdout


def test_report_renders_a_shipped_notebook(installed):
    done = run(installed, "costmodel", "report", "--to", "html", "-o", "out", timeout=600)
    assert done.returncode == 0, done.stderr
    page = installed["cwd"] / "out" / "snp-16GiB-16vcpu-2M-status_quo.html"
    assert page.is_file() and "Hugepage split/merge cost" in page.read_text()


def test_sdist_and_wheel_ship_data_and_notebooks(installed):
    import tarfile
    import zipfile

    wanted = ["costmodel/reference/roth-2025-07.csv", "costmodel/notebooks/report.py", "costmodel/reporting/report.css",
              "costmodel/data/dataset.schema.json", "costmodel/samples/synthetic-runs.csv",
              "costmodel/measure/collector/costmodel-collect"]
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    assert all(w in names for w in wanted), [w for w in wanted if w not in names]
    with tarfile.open(installed["sdist"]) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    assert all(w in members for w in wanted) and "LICENSE" in members
