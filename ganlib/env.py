"""Profile, device and seed: the three facts printed at the top of every notebook.

The profile is one switch, ``GANLIB_PROFILE``:

- ``smoke``: proves every code path (CI, <= 2 min per notebook on 2 CPU cores).
- ``quick``: a CPU laptop, <= 10 min per notebook, results visibly meaningful.
- ``full``: one GPU, the quality targets of the course.
- ``auto`` (default): ``full`` when CUDA is available, else ``quick``.
"""

from __future__ import annotations

import json
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

PROFILES = ("smoke", "quick", "full")
TIMINGS = Path(__file__).with_name("timings.json")


def resolve_profile(profile: str | None = None) -> str:
    """Return the active profile: ``smoke``, ``quick`` or ``full``.

    Args:
        profile: A profile name, ``"auto"``, or None to read ``GANLIB_PROFILE`` (default ``auto``).
    """
    name = (profile or os.environ.get("GANLIB_PROFILE") or "auto").strip().lower()
    if name == "auto":
        return "full" if torch.cuda.is_available() else "quick"
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}. Use one of {', '.join(PROFILES)} or 'auto', "
            f"e.g. `GANLIB_PROFILE=quick make course`."
        )
    return name


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then CPU; anything else is passed to torch.device."""
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available here. "
                "Use device='auto' (or 'cpu'); on Colab, Runtime > Change runtime type > GPU."
            )
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def describe(profile: str, device: torch.device, seed: int, notebook: str | None = None) -> str:
    """The lines for the top of a notebook: profile, device, seed and versions; with ``notebook``
    (e.g. ``"01_gan_basics"``) also how long the run will take (:func:`estimate`)."""
    where = str(device)
    if device.type == "cuda":
        where += f" ({torch.cuda.get_device_name(device)})"
    elif device.type == "cpu":
        where += (
            f" ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
        )
    line = f"profile={profile} | device={where} | seed={seed} | torch {torch.__version__}"
    return line if notebook is None else f"{line}\n{estimate(notebook, profile, device)}"


def estimate(notebook: str, profile: str, device: torch.device) -> str:
    """How long ``notebook`` takes in ``profile`` on this kind of device, from measured runs
    (``ganlib/timings.json``), marked as an estimate; says so when no run was measured."""
    timings = json.loads(TIMINGS.read_text())
    measured = timings["minutes"].get(notebook, {}).get(profile, {})
    devices = timings["devices"]
    line = f"estimate for the {profile} profile: "
    if device.type in measured:
        minutes = measured[device.type]
        took = f"{minutes:.0f} min" if minutes >= 1 else f"{minutes * 60:.0f} s"
        line += f"about {took} (measured on {devices[device.type]}; other machines differ)"
    else:
        line += f"none, it was not timed on a {device.type} device yet"
        if measured:
            line += " (" + ", ".join(f"{m:.0f} min on {devices[d]}" for d, m in measured.items())
            line += ")"
    if profile == "full" and device.type not in measured:
        line += "; full trains much longer than quick and may take hours"
    auto = os.environ.get("GANLIB_PROFILE", "auto").strip().lower() == "auto"
    if auto and profile == resolve_profile("auto"):
        gpu = "a GPU is" if device.type == "cuda" else "no GPU is"
        line += f". 'auto' chose {profile} because {gpu} present"
        if profile == "full":
            line += "; for minutes instead, set GANLIB_PROFILE=quick and restart the kernel"
    return line + "."


def default_checkpoint_root(default: str = "../checkpoints") -> str:
    """Where notebooks keep checkpoints: ``$GANLIB_CHECKPOINT_ROOT`` (set on Colab to a Google
    Drive folder by :func:`ganlib.colab.setup_colab`), else ``default``."""
    return os.environ.get("GANLIB_CHECKPOINT_ROOT") or default
