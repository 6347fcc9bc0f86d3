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
RUN_DIRS: dict[Path, Path] = {}


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
    from ganlib.course import notebook_environment

    if item.path not in RUN_DIRS:  # one folder per notebook: its kernel starts with its first cell
        RUN_DIRS[item.path] = Path(tempfile.mkdtemp(prefix=f"nbval-{item.path.stem}-"))
    run_dir = RUN_DIRS[item.path]
    profile = os.environ.get("GANLIB_PROFILE") or "smoke"
    checkpoints = str(run_dir / "checkpoints")
    with notebook_environment(
        profile, run_dir, GANLIB_CHECKPOINT_ROOT=checkpoints, MPLBACKEND="agg"
    ):
        yield


def pytest_runtest_logreport(report):
    if report.nodeid.split("::")[0].endswith(".ipynb"):
        NOTEBOOK_SECONDS[Path(report.nodeid.split("::")[0]).stem] += report.duration


def pytest_terminal_summary(terminalreporter):
    if NOTEBOOK_SECONDS:
        profile = os.environ.get("GANLIB_PROFILE") or "smoke"
        terminalreporter.section(f"notebook durations ({profile} profile)")
        for name, seconds in sorted(NOTEBOOK_SECONDS.items()):
            terminalreporter.write_line(f"{name}: {seconds:.0f} s")
