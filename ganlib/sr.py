"""The super-resolution evaluation protocol, SR checkpoints, and inference on uint8 images.

Protocol (as in SRCNN, VDSR, SRGAN and their tables): crop the HR image to a multiple of the
scale, make the LR image with MATLAB-style bicubic downscaling (``ganlib.degrade``), upscale it,
quantise to uint8, and compare PSNR/SSIM on the Y channel with ``scale`` border pixels removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ganlib.checkpoint import load_checkpoint, load_module_state, save_checkpoint
from ganlib.degrade import imresize, make_lr, modcrop
from ganlib.images import list_images, load_image, to_model_range, to_unit_range
from ganlib.metrics import psnr, ssim
from ganlib.models.sr import SR_MODELS

Upscaler = Callable[[torch.Tensor], torch.Tensor]  # uint8 (3, h, w) -> uint8 (3, h*s, w*s)


def bicubic_upscaler(scale: int) -> Upscaler:
    """The baseline every SR table starts with: MATLAB bicubic upscaling."""
    return lambda lr: imresize(lr, scale)


def save_sr_model(
    path: str | Path, model: nn.Module, name: str, kwargs: dict, meta: dict | None = None
) -> Path:
    """Save an SR network with what is needed to rebuild it: ``SR_MODELS[name](**kwargs)``."""
    if name not in SR_MODELS:
        raise ValueError(f"Unknown SR model {name!r}; known: {', '.join(SR_MODELS)}.")
    return save_checkpoint(
        path,
        {
            "kind": "sr-model",
            "model": name,
            "kwargs": dict(kwargs),
            "G": model.state_dict(),
            "meta": meta or {},
        },
    )


def load_sr_model(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild and load an SR network saved by :func:`save_sr_model` (read with weights_only)."""
    state = load_checkpoint(path)
    if state.get("kind") != "sr-model":
        raise ValueError(
            f"{path} is a ganlib checkpoint but not an SR model (kind {state.get('kind', 'GAN training run')!r}). "
            "Save SR networks with ganlib.sr.save_sr_model."
        )
    if state["model"] not in SR_MODELS:
        raise ValueError(
            f"{path} holds a {state['model']!r} model, which this ganlib does not know."
        )
    model = SR_MODELS[state["model"]](**state["kwargs"])
    load_module_state(model, state["G"], name=state["model"], source=str(path))
    return model.to(device).eval()


def model_upscaler(model: nn.Module, device: torch.device | str = "cpu") -> Upscaler:
    """Wrap a network (model range [-1, 1]) as a uint8 -> uint8 upscaler."""
    scale = model.scale
    device = torch.device(device)

    @torch.no_grad()
    def upscale(lr: torch.Tensor) -> torch.Tensor:
        x = imresize(lr, scale) if getattr(model, "pre_upsample", False) else lr
        y = model(to_model_range(x[None]).to(device))
        return (to_unit_range(y)[0] * 255.0).round().byte().cpu()

    return upscale


def evaluate_sr(
    upscale: Upscaler, images: list[tuple[str, torch.Tensor]], scale: int, channel: str = "y"
) -> list[dict]:
    """PSNR/SSIM of ``upscale`` on HR ``images`` under the protocol; one row per image."""
    rows = []
    for name, hr in images:
        hr = modcrop(hr, scale)
        lr = make_lr(hr, scale)
        sr = upscale(lr)
        if sr.shape != hr.shape or sr.dtype != torch.uint8:
            raise ValueError(
                f"The upscaler returned {sr.dtype} {tuple(sr.shape)} for {name}; expected uint8 {tuple(hr.shape)}."
            )
        rows.append(
            {
                "image": name,
                "psnr": psnr(sr, hr, crop=scale, channel=channel),
                "ssim": ssim(sr, hr, crop=scale, channel=channel),
            }
        )
    return rows


def load_hr_folder(folder: str | Path, scale: int) -> list[tuple[str, torch.Tensor]]:
    """Every image in ``folder`` as HR input, with a clear error for files too small for ``scale``."""
    min_size = 2 * scale + 11  # survives the border crop and still fits an SSIM window
    return [(p.stem, load_image(p, min_size=min_size)) for p in list_images(folder)]


def format_sr_table(rows: list[dict], title: str) -> str:
    lines = [title, f"{'image':<20} {'PSNR (dB)':>10} {'SSIM':>8}"]
    lines += [f"{r['image']:<20} {r['psnr']:>10.2f} {r['ssim']:>8.4f}" for r in rows]
    mean_psnr = sum(r["psnr"] for r in rows) / len(rows)
    mean_ssim = sum(r["ssim"] for r in rows) / len(rows)
    lines.append(f"mean PSNR {mean_psnr:.2f} dB  SSIM {mean_ssim:.4f}")
    return "\n".join(lines)
