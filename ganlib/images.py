"""Image ranges and input checks, in one place.

Convention for the whole course: images *inside models* are float tensors in [-1, 1], shape
(B, C, H, W). Metrics and plots take [0, 1] floats (or uint8) and say so in their docstrings.
"""

from __future__ import annotations

import torch


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] -> float32 in [-1, 1]."""
    if x.dtype == torch.uint8:
        return x.float().div(127.5).sub(1.0)
    if not x.is_floating_point():
        raise ValueError(f"Expected uint8 or float images, got dtype {x.dtype}.")
    return x.float().mul(2.0).sub(1.0)


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Model range [-1, 1] -> [0, 1], clamped (generators can overshoot slightly)."""
    return x.float().add(1.0).div(2.0).clamp(0.0, 1.0)


def check_images(
    x: torch.Tensor,
    *,
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    name: str = "images",
    finite: bool = True,
) -> torch.Tensor:
    """Raise a clear ``ValueError`` unless ``x`` is a finite float batch (B, C, H, W).

    Args:
        x: The tensor to check.
        channels: Required channel count C, or None for any.
        size: Required (H, W), or None for any.
        name: What to call the tensor in the error message.
        finite: Also check for NaN/inf. This waits for the device, so model ``forward`` methods
            skip it; training catches NaN through the loss instead.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.ndim == 3 else ""
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}.{hint}")
    if channels is not None and x.shape[1] != channels:
        fix = (
            " Convert grayscale to RGB with x.expand(-1, 3, -1, -1)."
            if x.shape[1] == 1 and channels == 3
            else " Drop the alpha channel with x[:, :3]."
            if x.shape[1] == 4 and channels == 3
            else ""
        )
        raise ValueError(
            f"{name} must have {channels} channel(s), got {x.shape[1]} (shape {tuple(x.shape)}).{fix}"
        )
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} must be {size[0]}x{size[1]} pixels, got {tuple(x.shape[-2:])}.")
    if not x.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor in [-1, 1], got dtype {x.dtype}. "
            "Convert uint8 images with ganlib.images.to_model_range(x)."
        )
    if finite and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values; check the data pipeline.")
    return x
