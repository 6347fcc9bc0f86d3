"""Colab: every notebook has the badge and the set-up cell; the set-up does nothing elsewhere."""

import os
import sys
import types

import nbformat
import pytest

from ganlib.colab import COLAB_CELL, colab_badge, setup_colab
from ganlib.course import REPO, find_notebooks
from ganlib.env import default_checkpoint_root

NOTEBOOKS = find_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_badge_setup_cell_and_drive_aware_checkpoints(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].source.startswith(colab_badge(path.name)), (
        f"{path.name}: the first cell must start with its Colab badge; run scripts/colab_cells.py"
    )
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == COLAB_CELL, (
        f"{path.name}: the first code cell must be ganlib.colab.COLAB_CELL; run scripts/colab_cells.py"
    )
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "checkpoint_root = default_checkpoint_root()" in params.source


def test_readme_has_a_badge_per_notebook():
    readme = (REPO / "README.md").read_text()
    missing = [p.name for p in NOTEBOOKS if colab_badge(p.name) not in readme]
    assert not missing, f"README.md lacks the Colab badge of {missing}"


def test_setup_does_nothing_outside_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("GANLIB_CHECKPOINT_ROOT", raising=False)
    assert setup_colab() is None
    assert "GANLIB_CHECKPOINT_ROOT" not in os.environ
    assert default_checkpoint_root() == "../checkpoints"


@pytest.fixture
def fake_colab(monkeypatch):
    """A stand-in for the google.colab package: records what the set-up asked of it."""
    calls = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(
        enable_custom_widget_manager=lambda: calls.append("widgets")
    )
    colab.drive = types.SimpleNamespace(mount=lambda root: calls.append(("mount", root)))
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.delenv("GANLIB_CHECKPOINT_ROOT", raising=False)
    return calls


def test_setup_on_colab_keeps_checkpoints_on_drive(fake_colab, tmp_path, capsys):
    root = setup_colab(drive_root=str(tmp_path))
    assert fake_colab == ["widgets", ("mount", str(tmp_path))]
    assert root == tmp_path / "MyDrive" / "ganlib-checkpoints" and root.is_dir()
    assert default_checkpoint_root() == str(root)
    out = capsys.readouterr().out
    assert "No GPU" in out and "Change runtime type" in out  # this machine has no GPU
    assert "resume" in out


def test_setup_on_colab_without_drive_says_what_is_lost(fake_colab, capsys):
    assert setup_colab(use_drive=False) is None
    assert fake_colab == ["widgets"] and "GANLIB_CHECKPOINT_ROOT" not in os.environ
    assert "lost" in capsys.readouterr().out


def test_a_declined_drive_mount_warns_once_and_continues(fake_colab, monkeypatch, capsys):
    def decline(root):
        raise ValueError("mount failed")  # what google.colab raises when access is declined

    monkeypatch.setattr(sys.modules["google.colab"].drive, "mount", decline)
    assert setup_colab() is None
    out = capsys.readouterr().out
    assert out.count("WARNING") == 1 and "mount failed" in out and "lost" in out
    assert "GANLIB_CHECKPOINT_ROOT" not in os.environ
    assert default_checkpoint_root() == "../checkpoints"
