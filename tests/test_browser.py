"""The real JupyterLab UI: run notebook 01 through the browser, widgets included.

Starts JupyterLab on a loopback port with a token, opens a copy of notebook 01 in headless
Chromium (Debian's package, driven by Playwright; never a downloaded browser), runs all cells
from the Run menu in the smoke profile, and checks that no cell raised, that the live training
view drew its figure (a screenshot goes to ``runs/browser-test/``) and that moving the
latent-interpolation slider changes the image. ``.ci/run`` installs chromium when it is missing.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime

import nbformat
import pytest

from ganlib.course import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOK = "01_gan_basics.ipynb"
# Flags that keep Chromium from calling home on a machine without internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [pytest.mark.browser, pytest.mark.notebook]


def _missing() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e .[test])"
    if CHROMIUM is None:
        return "Chromium is not installed (Debian: apt-get install chromium; .ci/run does this)"
    return ""


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebooks; yields (url, root)."""
    if why := _missing():
        if os.environ.get("CI"):
            pytest.fail(f"The browser test must run in CI: {why}.")
        pytest.skip(why)
    root = tmp_path / "lab"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    # Render every cell (JupyterLab 4 otherwise only renders the cells in view).
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = os.urandom(12).hex()
    env = os.environ | {
        "GANLIB_PROFILE": "smoke",
        "GANLIB_RESULTS_DIR": str(tmp_path / "results"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
    }
    log = open(tmp_path / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.allow_root=True",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        "JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()
                    )
                time.sleep(0.5)
        yield url, token, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _cell(page, text: str):
    """The code cell whose source contains ``text``."""
    return page.locator(".jp-CodeCell").filter(has_text=text).first


def test_notebook_runs_in_jupyterlab_with_widgets(lab):
    from playwright.sync_api import expect, sync_playwright

    url, token, root = lab
    shots = REPO / "runs" / "browser-test" / datetime.now().strftime("%Y%m%d-%H%M%S")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/notebooks/{NOTEBOOK}?token={token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
            # The page renders cells progressively: count them from the file, and wait until
            # every one of them is in the page before running, so "Run All" sees them all.
            n_code = sum(
                c.cell_type == "code"
                for c in nbformat.read(root / "notebooks" / NOTEBOOK, as_version=4).cells
            )
            page.wait_for_function(
                f"() => document.querySelectorAll('.jp-Notebook .jp-CodeCell').length >= {n_code}",
                timeout=120_000,
            )
            # Wait for the kernel before running (its status shows in the toolbar).
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-Notebook-ExecutionIndicator')]"
                ".some(e => e.getAttribute('data-status') === 'idle')",
                timeout=120_000,
            )
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
            # Done when no prompt is queued or running ("[*]:"), stably, after something ran.
            page.wait_for_function(
                """() => {
                    const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                        .map(e => e.textContent.trim());
                    const busy = p.some(t => t.includes('*'));
                    const ran = p.filter(t => /\\[\\d+\\]/.test(t)).length;
                    window.__stable = (!busy && ran > 0) ? (window.__stable || 0) + 1 : 0;
                    return window.__stable > 10;
                }""",
                polling=500,
                timeout=600_000,
            )
            page.screenshot(path=str(shots / "notebook.png"), full_page=False)
            page.keyboard.press("Control+s")
            time.sleep(2)

            # The live training view of the MLP GAN drew its figure.
            live = _cell(page, "view = LiveView(").locator(".jp-OutputArea-output img").first
            expect(live).to_be_visible(timeout=10_000)
            live.scroll_into_view_if_needed()
            live.screenshot(path=str(shots / "live_view.png"))

            # The interpolation slider changes the displayed image.
            widget = _cell(page, "interpolation_widget(dcgan")
            image = widget.locator(".widget-image").first
            expect(image).to_be_visible(timeout=30_000)
            image.scroll_into_view_if_needed()
            before = image.screenshot(path=str(shots / "slider_before.png"))
            handle = widget.locator(".noUi-handle").first
            handle.focus()
            for _ in range(10):  # 10 steps of 0.05: t goes from 0 to 0.5
                page.keyboard.press("ArrowRight")
            expect(widget.locator(".widget-readout").first).to_have_text("0.50", timeout=10_000)
            time.sleep(3)  # the kernel redraws G(z_t) and sends the new PNG
            after = image.screenshot(path=str(shots / "slider_after.png"))
        finally:
            browser.close()

    saved = nbformat.read(root / "notebooks" / NOTEBOOK, as_version=4)
    code = [c for c in saved.cells if c.cell_type == "code"]
    errors = [
        f"cell {i}: {o.ename}: {o.evalue}"
        for i, c in enumerate(code)
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors, f"cells raised in JupyterLab: {errors}"
    not_run = [i for i, c in enumerate(code) if c.execution_count is None]
    assert len(code) == n_code, f"the saved notebook has {len(code)} code cells, not {n_code}"
    assert not not_run, f"code cells that did not run: {not_run}"
    assert before != after, "moving the slider did not change the image"
    print(f"screenshots in {shots}")
