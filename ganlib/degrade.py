"""Degradations: how low-resolution inputs are made from high-resolution images.

The SR literature makes LR images with MATLAB's ``imresize(hr, 1/scale, 'bicubic')``: Keys'
cubic kernel (a = -0.5), widened by ``scale`` when downscaling (antialiasing), mirrored
("symmetric") borders, and the result rounded to uint8. PyTorch's ``interpolate`` differs in the
kernel (a = -0.75) and has no antialiasing for bicubic upscaling, which moves PSNR by tenths of a
dB. We use the ``resize_right`` package, which implements MATLAB's definition, with the
symmetric padding MATLAB uses; tests check it against the kernel formula and the published Set5
bicubic figure.
"""

from __future__ import annotations

import numpy as np
import torch
from resize_right import interp_methods, resize


def _as_hwc_float(img) -> tuple[np.ndarray, bool]:
    """uint8 (3, H, W) tensor / (H, W, 3) array, or float [0, 1] -> float64 (H, W, C) in [0, 255]."""
    is_tensor = isinstance(img, torch.Tensor)
    arr = img.detach().cpu().numpy() if is_tensor else np.asarray(img)
    if is_tensor:
        if arr.ndim != 3:
            raise ValueError(f"Expected one image (C, H, W), got shape {arr.shape}.")
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"Expected one image (H, W, C), got shape {arr.shape}.")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64), is_tensor
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"Images must be uint8 or float in [0, 1], got dtype {arr.dtype}.")
    if not np.isfinite(arr).all():
        raise ValueError("The image contains NaN or inf values.")
    if arr.size and (arr.min() < -1e-6 or arr.max() > 1 + 1e-6):
        raise ValueError(
            f"Float images must be in [0, 1], got values in [{arr.min():.3f}, {arr.max():.3f}]. "
            "Convert model outputs with ganlib.images.to_unit_range, or pass uint8."
        )
    return arr.astype(np.float64) * 255.0, is_tensor


def imresize(img, scale: float) -> torch.Tensor:
    """MATLAB-compatible bicubic resize of one image, quantised to uint8.

    Args:
        img: uint8 tensor (C, H, W), uint8 array (H, W, C), or float in [0, 1] of either layout.
        scale: Output size / input size, e.g. 1/4 to make an x4 LR image, 4 to upscale it back.

    Returns:
        uint8 tensor (C, round(H*scale), round(W*scale)).
    """
    if not (isinstance(scale, int | float) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}.")
    arr, _ = _as_hwc_float(img)
    h, w = arr.shape[:2]
    out_h, out_w = round(h * scale), round(w * scale)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"A {h}x{w} image is too small to resize by {scale}.")
    out = resize(
        arr,
        scale_factors=[scale, scale, 1],
        out_shape=[out_h, out_w, arr.shape[2]],
        interp_method=interp_methods.cubic,
        antialiasing=True,
        pad_mode="symmetric",
    )
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


def modcrop(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop (C, H, W) so H and W are multiples of ``scale`` (bottom/right rows go), as SR papers do."""
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}.")
    h, w = img.shape[-2:]
    if h < scale or w < scale:
        raise ValueError(f"A {h}x{w} image is smaller than the scale factor {scale}.")
    return img[..., : h - h % scale, : w - w % scale]


def make_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The LR input for an HR image under the SR protocol: MATLAB bicubic 1/scale, uint8.

    ``hr`` must already have sides divisible by ``scale`` (see :func:`modcrop`).
    """
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}.")
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(
            f"HR size {h}x{w} is not divisible by the scale {scale}; crop it first with "
            f"ganlib.degrade.modcrop(hr, {scale})."
        )
    return imresize(hr, 1.0 / scale)
