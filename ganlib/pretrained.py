"""Weights trained longer than a lesson can, shipped with ganlib: ``load_pretrained(name)``.

Each model was trained by ``python scripts/pretrain.py NAME`` with the course's own data and
``fit`` loop, and saved in half precision as ``ganlib/weights/NAME.pt`` beside a model card
``NAME.json`` (data, steps, wall time, device, the exact command, and the evaluation figures
measured on the saved file). ``ganlib/weights/SHA256SUMS`` holds each file's SHA-256; loading
checks it and reads the file with ``weights_only=True``, so a changed or corrupt file is refused
and no file can run code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from ganlib.checkpoint import load_checkpoint, load_module_state

WEIGHTS_DIR = Path(__file__).parent / "weights"
MANIFEST = "SHA256SUMS"  # in WEIGHTS_DIR

PRETRAINED = {
    "srresnet_x4": "SRResNet x4 trained on T91 + BSD200 with an L1 loss (lesson 02)",
    "srgan_x4": "SRGAN-MSE x4 fine-tuned adversarially from srresnet_x4 (lesson 02)",
    "cgan_digits": "the conditional digit GAN of lesson 03, trained longer",
    "pix2pix_colour": "a pix2pix U-Net colouriser for lesson 05's task",
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest() -> dict[str, str]:
    """``{file name: SHA-256}`` from ``ganlib/weights/SHA256SUMS``."""
    path = WEIGHTS_DIR / MANIFEST
    if not path.is_file():
        return {}
    pairs = (line.split() for line in path.read_text().splitlines() if line.strip())
    return {name.lstrip("*"): digest for digest, name in pairs}


def _check_name(name: str) -> None:
    if name not in PRETRAINED:
        known = "\n".join(f"  {k}: {v}" for k, v in PRETRAINED.items())
        raise ValueError(f"No pretrained model called {name!r}. Known:\n{known}")


def weights_path(name: str) -> Path:
    """The verified path of ``NAME.pt``: it exists and matches its manifest hash."""
    _check_name(name)
    path = WEIGHTS_DIR / f"{name}.pt"
    expected = manifest().get(path.name)
    if not path.is_file() or expected is None:
        raise FileNotFoundError(
            f"The pretrained model {name!r} is not part of this ganlib installation. Train it "
            f"with `python scripts/pretrain.py {name}` from the repository root, or reinstall "
            "ganlib from the course repository."
        )
    if sha256(path) != expected:
        raise ValueError(
            f"{path} does not match its SHA-256 in {MANIFEST} (changed or corrupt). "
            "Reinstall ganlib (`pip install --force-reinstall` or a fresh clone), or retrain it "
            f"with `python scripts/pretrain.py {name}`."
        )
    return path


def model_card(name: str) -> dict:
    """How ``name`` was trained and what it measures: the ``NAME.json`` beside the weights."""
    _check_name(name)
    path = WEIGHTS_DIR / f"{name}.json"
    if not path.is_file():
        weights_path(name)  # the clear "not part of this installation" error
        raise FileNotFoundError(f"{path} is missing; reinstall ganlib.")
    return json.loads(path.read_text())


def _architectures() -> dict[str, type[nn.Module]]:
    from ganlib.models.conditional import ConditionalGenerator
    from ganlib.models.pix2pix import UNetGenerator

    return {"conditional_generator": ConditionalGenerator, "unet": UNetGenerator}


def load_pretrained(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """The pretrained network ``name`` in float32 on ``device``, in eval mode.

    SR models come back as :func:`ganlib.sr.load_sr_model` builds them (wrap them with
    :func:`ganlib.sr.model_upscaler`); ``cgan_digits`` is the generator G(z, y) and
    ``pix2pix_colour`` the U-Net generator G(x).
    """
    path = weights_path(name)
    state = load_checkpoint(path)
    if state.get("kind") == "sr-model":
        from ganlib.sr import load_sr_model

        return load_sr_model(path, device)
    archs = _architectures()
    if state.get("model") not in archs:
        raise ValueError(f"{path} holds a {state.get('model')!r} model, unknown to this ganlib.")
    model = archs[state["model"]](**state["kwargs"])
    load_module_state(model, state["G"], name=name, source=str(path))
    return model.to(device).eval()
