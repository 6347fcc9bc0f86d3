import json

import pytest
import torch

from ganlib.course import REPO
from ganlib.env import TIMINGS, describe, estimate, pick_device, resolve_profile


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("GANLIB_PROFILE", "smoke")
    assert resolve_profile() == "smoke"
    assert resolve_profile("full") == "full"  # an explicit argument wins


def test_auto_profile_follows_cuda(monkeypatch):
    monkeypatch.delenv("GANLIB_PROFILE", raising=False)
    expected = "full" if torch.cuda.is_available() else "quick"
    assert resolve_profile() == expected
    assert resolve_profile("AUTO") == expected


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="smoke, quick, full"):
        resolve_profile("fast")


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda")
    assert pick_device("cpu").type == "cpu"


def test_describe_mentions_profile_device_and_seed():
    line = describe("smoke", torch.device("cpu"), 7)
    assert "profile=smoke" in line and "device=cpu" in line and "seed=7" in line


def test_estimate_quotes_the_measured_minutes(monkeypatch):
    monkeypatch.setenv("GANLIB_PROFILE", "quick")
    minutes = json.loads(TIMINGS.read_text())["minutes"]["05_image_to_image"]["quick"]["cpu"]
    line = describe("quick", torch.device("cpu"), 0, notebook="05_image_to_image")
    assert line.splitlines()[0].startswith("profile=quick")
    assert f"about {minutes:.0f} min" in line and "estimate" in line and "auto" not in line


def test_auto_full_on_a_gpu_is_announced(monkeypatch):
    # 'auto' on a GPU picks full, which was never timed there: say so, and how to get minutes
    monkeypatch.delenv("GANLIB_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_profile() == "full"
    line = estimate("01_gan_basics", "full", torch.device("cuda"))
    assert "not timed on a cuda device" in line and "may take hours" in line
    assert "'auto' chose full because a GPU is present" in line and "GANLIB_PROFILE=quick" in line
    # an unknown notebook has no measurement either
    assert "none" in estimate("99_nothing", "quick", torch.device("cpu"))


def test_every_notebook_has_measured_cpu_times_and_the_readme_quotes_them():
    timings = json.loads(TIMINGS.read_text())["minutes"]
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(timings) == notebooks
    readme = (REPO / "README.md").read_text()
    for name in notebooks:
        smoke, quick = (timings[name][p]["cpu"] for p in ("smoke", "quick"))
        rows = [r for r in readme.splitlines() if r.startswith(f"| {name[:2]} ") and " min |" in r]
        row = rows[0] if len(rows) == 1 else rows
        assert f"| {smoke * 60:.0f} s | {quick:.1f} min |" in row, (name, row)
        source = (REPO / "notebooks" / f"{name}.ipynb").read_text()
        assert f'notebook=\\"{name}\\"' in source, f"{name} does not print its estimate"
