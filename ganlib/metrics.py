"""Image-quality metrics with the protocol of the super-resolution literature.

The numbers in SR papers are computed on the **Y channel** of YCbCr (ITU-R BT.601, studio
range 16-235, as MATLAB's ``rgb2ycbcr``), after cropping ``scale`` pixels from every border, on
outputs quantised to uint8. PSNR on RGB, or without the crop, gives different numbers: a common
reason published figures cannot be reproduced (BasicSR #205).

Inputs: uint8 tensors, or float tensors in [0, 1]; shape (C, H, W) or (B, C, H, W).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.ndimage import correlate1d

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


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The 1-D Gaussian g (size,), sum 1; the 2-D window is the outer product g g^T."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Each plane of (..., H, W) filtered with the window g g^T, keeping the (H - k + 1, W - k + 1)
    positions where the window lies inside the image: the 2-D filter as two 1-D passes (scipy's
    C loops; 22 multiplications per pixel instead of 121)."""
    r = len(g) // 2
    x = correlate1d(correlate1d(x, g, axis=-1, mode="nearest"), g, axis=-2, mode="nearest")
    return x[..., r:-r, r:-r]


def ssim(sr: torch.Tensor, hr: torch.Tensor, crop: int = 0, channel: str = "y") -> float:
    """Structural similarity (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 = 0.01,
    K2 = 0.03, on [0, 255] data, averaged over the windows that lie inside the image (Wang's
    ``ssim.m`` 'valid' filtering, as scikit-image), then over the channels and the batch.

    The Gaussian window is separable, so each local mean is two 1-D passes, in float64 (values
    equal those of the 2-D filter to 1e-12, about 50x faster than torchmetrics' 2-D one).

    Args: as :func:`psnr`.
    """
    x, y = _prepare(sr, hr, crop, channel)
    if min(x.shape[-2:]) < 11:
        raise ValueError(
            f"SSIM needs images of at least 11x11 after cropping, got {tuple(x.shape[-2:])}."
        )
    x, y = x.cpu().numpy(), y.cpu().numpy()  # float64 (N, C, H, W)
    # local means of x, y, x^2, y^2 and xy: 5 x (N, C, H - 10, W - 10)
    stack = _filter_valid(np.stack([x, y, x * x, y * y, x * y]), _gaussian_window().numpy())
    mu_x, mu_y, xx, yy, xy = stack
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    # SSIM = (2 mu_x mu_y + C1)(2 cov_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2))
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map.mean(axis=(1, 2, 3)).mean())


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
