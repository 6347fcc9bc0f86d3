"""pytest set-up shared by the unit tests (tests/) and the notebooks (notebooks/, run by nbval).

``make test`` runs both: each notebook through ``pytest --nbval-lax`` in the profile of
``$GANLIB_PROFILE`` (default ``smoke``), every code cell one test item, so a report names the
failing cell. Its kernel gets a fresh checkpoint folder and results folder, and the data mirror
beside the repository when one exists; the time per notebook is printed at the end.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent / "shared" / "datasets"

# Tests never touch the network: the offline copies beside the repository serve the data.
if "GANLIB_DATA_MIRROR" not in os.environ and SHARED.is_dir():
    os.environ["GANLIB_DATA_MIRROR"] = str(SHARED)

NOTEBOOK_SECONDS: dict[str, float] = defaultdict(float)


def _is_notebook(item) -> bool:
    return item.path.suffix == ".ipynb"


def pytest_collection_modifyitems(items):
    for item in items:
        if _is_notebook(item):
            item.add_marker(pytest.mark.notebook)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    """Start each notebook's kernel (nbval does, in its first cell's setup) with the course's
    environment; the test process's own environment is restored right after."""
    if not _is_notebook(item):
        yield
        return
    run_dir = Path(tempfile.mkdtemp(prefix=f"nbval-{item.path.stem}-"))
    env = {
        "GANLIB_PROFILE": os.environ.get("GANLIB_PROFILE") or "smoke",
        "GANLIB_CHECKPOINT_ROOT": str(run_dir / "checkpoints"),
        "GANLIB_RESULTS_DIR": str(run_dir),
        "MPLBACKEND": "agg",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pytest_runtest_logreport(report):
    if report.nodeid.split("::")[0].endswith(".ipynb"):
        NOTEBOOK_SECONDS[Path(report.nodeid.split("::")[0]).stem] += report.duration


def pytest_terminal_summary(terminalreporter):
    if NOTEBOOK_SECONDS:
        profile = os.environ.get("GANLIB_PROFILE") or "smoke"
        terminalreporter.section(f"notebook durations ({profile} profile)")
        for name, seconds in sorted(NOTEBOOK_SECONDS.items()):
            terminalreporter.write_line(f"{name}: {seconds:.0f} s")
