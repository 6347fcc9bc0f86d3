"""Image-quality metrics with the protocol of the super-resolution literature.

The numbers in SR papers are computed on the **Y channel** of YCbCr (ITU-R BT.601, studio
range 16-235, as MATLAB's ``rgb2ycbcr``), after cropping ``scale`` pixels from every border, on
outputs quantised to uint8. PSNR on RGB, or without the crop, gives different numbers: a common
reason published figures cannot be reproduced (BasicSR #205).

Inputs: uint8 tensors, or float tensors in [0, 1]; shape (C, H, W) or (B, C, H, W).
"""

from __future__ import annotations

import math

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from ganlib.images import luma


def to_255(img: torch.Tensor, name: str = "image") -> torch.Tensor:
    """uint8 or [0, 1] float -> float64 in [0, 255], batched (B, C, H, W)."""
    if not isinstance(img, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(img).__name__}.")
    if img.ndim == 3:
        img = img.unsqueeze(0)
    if img.ndim != 4 or img.shape[1] not in (1, 3):
        raise ValueError(
            f"{name} must be (C, H, W) or (B, C, H, W) with C = 1 or 3, got {tuple(img.shape)}."
        )
    if img.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (0 images).")
    if img.shape[2] == 0 or img.shape[3] == 0:
        raise ValueError(f"{name} has no pixels: its size is {img.shape[2]}x{img.shape[3]}.")
    if img.dtype == torch.uint8:
        return img.double()
    if not img.is_floating_point():
        raise ValueError(f"{name} must be uint8 or float in [0, 1], got dtype {img.dtype}.")
    if not torch.isfinite(img).all():
        raise ValueError(f"{name} contains NaN or inf values.")
    if img.min() < -1e-6 or img.max() > 1 + 1e-6:
        raise ValueError(
            f"{name} is float with values in [{img.min():.3f}, {img.max():.3f}]; metrics take [0, 1] "
            "floats or uint8. Convert model outputs with ganlib.images.to_unit_range."
        )
    return img.double() * 255.0


def quantize(img: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] floats to the nearest of 256 levels, as saving to an 8-bit file does."""
    return (img.clamp(0, 1) * 255.0).round() / 255.0


def rgb_to_y(img255: torch.Tensor) -> torch.Tensor:
    """BT.601 luma in studio range, as MATLAB ``rgb2ycbcr``: (B, 3, H, W) in [0, 255] -> (B, 1, H, W)."""
    # Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 = 16 + 219/255 luma(R, G, B), on [0, 255]
    return 16.0 + luma(img255) * (219.0 / 255.0)


def _prepare(sr, hr, crop: int, channel: str):
    sr, hr = to_255(sr, "sr"), to_255(hr, "hr")
    if sr.shape != hr.shape:
        raise ValueError(
            f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}."
        )
    if channel not in ("y", "rgb"):
        raise ValueError(f"channel must be 'y' or 'rgb', got {channel!r}.")
    if channel == "y" and sr.shape[1] == 3:
        sr, hr = rgb_to_y(sr), rgb_to_y(hr)
    h, w = sr.shape[-2:]
    if crop and (h <= 2 * crop or w <= 2 * crop):
        raise ValueError(f"A {h}x{w} image is too small to crop {crop} pixels from each border.")
    if crop:
        sr, hr = sr[..., crop:-crop, crop:-crop], hr[..., crop:-crop, crop:-crop]
    return sr, hr


def psnr(sr: torch.Tensor, hr: torch.Tensor, crop: int = 0, channel: str = "y") -> float:
    """Peak signal-to-noise ratio in dB, averaged over the batch.

    PSNR = 10 log10(255^2 / MSE), MSE over the (Y or RGB) pixels left after the border crop.
    Identical images give ``inf``.

    Args:
        sr, hr: Restored and reference images (uint8, or float in [0, 1]).
        crop: Pixels removed from each border; the SR protocol uses the scale factor.
        channel: ``"y"`` (default, the SR protocol) or ``"rgb"``.
    """
    sr, hr = _prepare(sr, hr, crop, channel)
    mse = ((sr - hr) ** 2).mean(dim=(1, 2, 3))
    values = [math.inf if m == 0 else 10 * math.log10(255.0**2 / m) for m in mse.tolist()]
    return sum(values) / len(values)


_SSIM_CHUNK = 2  # images per SSIM computation (bounds its memory; the result does not depend on it)


def ssim(sr: torch.Tensor, hr: torch.Tensor, crop: int = 0, channel: str = "y") -> float:
    """Structural similarity (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 = 0.01,
    K2 = 0.03, on [0, 255] data, averaged over windows that lie inside the image, then over the
    batch. The SSIM map comes from torchmetrics.

    Args: as :func:`psnr`.
    """
    sr, hr = _prepare(sr, hr, crop, channel)
    if min(sr.shape[-2:]) < 11:
        raise ValueError(
            f"SSIM needs images of at least 11x11 after cropping, got {tuple(sr.shape[-2:])}."
        )
    per_image = []
    # A few images at a time: torchmetrics filters five float64 maps per image, which took 7 GB
    # for 22 images of 256x256 at once.
    for sr_chunk, hr_chunk in zip(sr.split(_SSIM_CHUNK), hr.split(_SSIM_CHUNK), strict=True):
        _, ssim_map = structural_similarity_index_measure(
            sr_chunk,
            hr_chunk,
            gaussian_kernel=True,
            sigma=1.5,
            kernel_size=11,
            data_range=255.0,
            k1=0.01,
            k2=0.03,
            return_full_image=True,
        )
        # torchmetrics averages the map over reflect-padded borders too; the standard definition
        # (Wang's ssim.m, 'valid' filtering; scikit-image) keeps only windows inside the image.
        per_image.append(ssim_map[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)))
    return float(torch.cat(per_image).mean())


@torch.no_grad()
def lpips(sr: torch.Tensor, hr: torch.Tensor, net: str = "alex") -> float:
    """LPIPS perceptual distance (Zhang et al. 2018), lower is better; computed by torchmetrics.

    Needs pretrained ImageNet backbone weights (downloaded once by torchvision); offline without
    them this raises ``ganlib.fid.WeightsUnavailable``.
    """
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    from ganlib.errors import WeightsUnavailable

    sr, hr = to_255(sr, "sr") / 255.0, to_255(hr, "hr") / 255.0
    if sr.shape != hr.shape:
        raise ValueError(
            f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}."
        )
    try:
        metric = LearnedPerceptualImagePatchSimilarity(net_type=net, normalize=True)
    except (OSError, RuntimeError) as err:
        raise WeightsUnavailable(
            f"LPIPS ({net}) needs pretrained backbone weights that could not be loaded ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). torchvision downloads them once into "
            "~/.cache/torch/hub/checkpoints; connect to the internet once, or report PSNR/SSIM only."
        ) from None
    return float(metric(sr.float(), hr.float()))
