"""Reports and JupyterLab in a real browser: Debian's Chromium driven by Playwright.

No browser is downloaded: Playwright is pointed at ``/usr/bin/chromium`` (``make setup``
installs it with apt); without it, or without Playwright, these tests skip. Screenshots go
to ``test-artifacts/`` (or ``$COSTMODEL_TEST_ARTIFACTS``) for a person to look at.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from costmodel import reporting

pytestmark = pytest.mark.notebook

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("COSTMODEL_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium missing: `make setup` installs Debian's (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def _open(browser, url: str):
    """A 1280 px page at ``url``; the console errors and page errors it raised."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, errors


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A real report (HTML) and a batch index linking it and one failed entry."""
    out = tmp_path_factory.mktemp("reports")
    done = reporting.render({"memory": "64GiB", "numa_nodes": 2}, outdir=out, formats="html")
    failed = reporting.Outcome(2, {"memory": "zz"}, error="entry 2: parameter memory: got 'zz'; expected a size")
    ok = reporting.Outcome(1, done.parameters, done.name, dict(done.paths), done.summary)
    reporting.write_index([ok, failed], out, title="costmodel reports (browser)")
    return done.paths["html"], out / "index.html"


@pytest.mark.parametrize("which", ["report", "index"])
def test_pages_fit_1280_px_without_console_errors(browser, written, which):
    path = written[0] if which == "report" else written[1]
    page, errors = _open(browser, path.as_uri())
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(ARTIFACTS / f"{which}-1280.png"), full_page=True)
    assert width <= 1280, f"{which} is {width} px wide at 1280 px"
    assert errors == []
    images = page.evaluate("[...document.images].map(i => i.alt)")
    assert images and all(alt and "No description" not in alt for alt in images), "every image has alt text"
    if which == "index":  # sortable: a click on the splits header orders the rows
        page.click("th:has-text('splits')")
        assert page.evaluate("document.querySelector('table.index tbody tr').cells[0].textContent") == "1"
    page.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a token, on a copy of the notebooks."""
    pytest.importorskip("jupyterlab")
    from costmodel.cli import lab as lab_cli

    root = tmp_path_factory.mktemp("lab")
    for name in ("explore.py", "jupytext.toml"):
        shutil.copy(reporting.NOTEBOOKS_DIR / name, root / name)
    lab_cli.settings_overrides()  # .py opens as a notebook (the venv's settings, as `costmodel lab` does)
    token, port = secrets.token_hex(16), _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.disable_check_xsrf=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    env = dict(os.environ, JUPYTER_PREFER_ENV_PATH="1")
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.terminate()
        pytest.fail("JupyterLab did not answer on 127.0.0.1 within 120 s")
    yield base, token, root
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


def test_explore_in_jupyterlab_opens_clean_runs_and_follows_a_slider(browser, lab):
    base, token, root = lab
    before = (root / "explore.py").read_text()
    page, errors = _open(browser, f"{base}/lab/tree/explore.py?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function("window.jupyterapp && window.jupyterapp.serviceManager.isReady", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-KernelStatus", timeout=60_000)
    spec = ("(() => { const w = window.jupyterapp.shell.currentWidget;"
            " return w && w.context && w.context.sessionContext.session &&"
            " w.context.sessionContext.session.kernel ? w.context.sessionContext.session.kernel.name : ''; })()")
    page.wait_for_function(spec + " !== ''", timeout=90_000)
    page.screenshot(path=str(ARTIFACTS / "lab-explore-opened.png"))
    assert page.evaluate(spec) == "python3" and page.locator(".jp-Dialog").count() == 0, \
        "the notebook's kernel starts without asking"
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    table = page.wait_for_selector("table.key-numbers", timeout=180_000)
    first = table.inner_text()
    page.screenshot(path=str(ARTIFACTS / "lab-explore-start.png"))
    readout = page.locator(".widget-slider:has(label:text-is('vCPUs')) .widget-readout").first
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("128")
    page.keyboard.press("Enter")
    page.wait_for_function("t => document.querySelector('table.key-numbers') && "
                           "document.querySelector('table.key-numbers').innerText !== t", arg=first, timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "lab-explore-128-vcpus.png"))
    assert page.locator("table.key-numbers").inner_text() != first
    page.keyboard.press("Control+s")
    time.sleep(2)
    assert (root / "explore.py").read_text() == before, "saving wrote the file back unchanged"
    assert not [e for e in errors if "favicon" not in e], errors
    page.close()
