import pytest
import torch

from ganlib.env import describe, pick_device, resolve_profile


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
