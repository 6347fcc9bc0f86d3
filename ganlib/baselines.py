"""The classic restoration baselines of lesson 03, from scikit-image, one image at a time.

Denoising: Gaussian and median filters, non-local means (Buades et al. 2005) and total-variation
denoising (Chambolle 2004), each with a parameter that grows with the noise level sigma (0-255
scale, :func:`baseline_parameters`). Inpainting: biharmonic interpolation (Damelin & Hoang 2018)
and the mean of the known pixels. Images are float in [0, 1], (C, H, W) with C = 1 or 3;
scikit-image is imported when a baseline runs.
"""

from __future__ import annotations

import numpy as np
import torch

from ganlib.restoration import as_unit_float, check_mask, check_sigma, composite


def _to_numpy(x: torch.Tensor) -> tuple[np.ndarray, int]:
    """One [0, 1] image (C, H, W) -> float64 (H, W) or (H, W, C) for scikit-image."""
    if x.ndim != 3:
        raise ValueError(f"Baselines restore one image (C, H, W) at a time, got {tuple(x.shape)}.")
    arr = x.detach().cpu().double().numpy()
    return (arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)), arr.shape[0]


def _to_tensor(arr: np.ndarray, channels: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(arr)).float()
    return (t[None] if channels == 1 else t.permute(2, 0, 1)).clamp(0, 1)


def baseline_parameters(sigma: float) -> dict[str, dict]:
    """Each denoising baseline's parameter for noise ``sigma`` (0-255 scale), scaled with sigma.

    The constants were tuned once by PSNR on twelve 64x64 grayscale T91 patches (training
    images, never the test sets) at sigma = 25 and 50, over a small grid per method.
    """
    sigma = check_sigma(sigma)
    s = sigma / 255.0
    return {
        # Gaussian blur std in pixels: wider for more noise (1.1 px at sigma 25, 2.0 px at 50)
        "gaussian": {"blur": 0.2 + 9.2 * s},
        # median over a disk of this radius (pixels)
        "median": {"radius": 2 if sigma <= 30 else 3},
        # non-local means: patch-similarity cut-off h = 0.7 sigma, patches 5x5, search 13x13
        "nl_means": {"h": 0.7 * s, "sigma": s, "patch_size": 5, "patch_distance": 6},
        # total variation (Chambolle): weight 0.09 at sigma 25, 0.25 at sigma 50
        "tv": {"weight": 0.09 * (sigma / 25.0) ** 1.5},
    }


def denoise_classic(noisy: torch.Tensor, method: str, sigma: float, **params) -> torch.Tensor:
    """Denoise one image (C, H, W) (float, noisy values may leave [0, 1]) with a scikit-image method.

    Args:
        noisy: The noisy image y, float (C, H, W), C = 1 or 3.
        method (str): ``"gaussian"`` | ``"median"`` | ``"nl_means"`` | ``"tv"``.
        sigma (float): The noise level on the 0-255 scale (chooses the parameter, see
            :func:`baseline_parameters`).
        **params: Override that parameter, e.g. ``weight=0.1`` for TV.

    Returns:
        The estimate in [0, 1], float32 (C, H, W).
    """
    from skimage.filters import gaussian, median
    from skimage.morphology import disk
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    table = baseline_parameters(sigma)
    if method not in table:
        raise ValueError(f"method must be one of {sorted(table)}, got {method!r}.")
    p = table[method] | params
    arr, c = _to_numpy(noisy)
    axis = None if c == 1 else -1
    if method == "gaussian":
        out = gaussian(arr, sigma=p["blur"], channel_axis=axis, preserve_range=True)
    elif method == "median":
        footprint = disk(p["radius"])
        if c == 3:
            footprint = footprint[..., None]
        out = median(np.clip(arr, 0, 1), footprint=footprint, mode="mirror")
    elif method == "nl_means":
        out = denoise_nl_means(arr, fast_mode=True, channel_axis=axis, **p)
    else:
        out = denoise_tv_chambolle(arr, weight=p["weight"], channel_axis=axis)
    return _to_tensor(out, c)


DENOISERS = ("gaussian", "median", "nl_means", "tv")


def inpaint_classic(masked: torch.Tensor, mask: torch.Tensor, method: str = "biharmonic"):
    """Fill the hole of one image (C, H, W) with a classic method; known pixels are kept.

    Args:
        masked: The image with the hole (any values there), float [0, 1] (C, H, W).
        mask: (1, H, W), 1 in the hole.
        method (str): ``"biharmonic"`` (smooth interpolation solving the biharmonic equation
            from the hole's border) or ``"mean"`` (the mean of the known pixels).
    """
    from skimage.restoration import inpaint_biharmonic

    masked = as_unit_float(masked, "masked image")
    check_mask(mask, masked)
    if method == "mean":
        known = mask.expand_as(masked) == 0
        fill = masked[known].mean() if known.any() else torch.tensor(0.5)
        return composite(fill.expand_as(masked), masked, mask)
    if method != "biharmonic":
        raise ValueError(f"method must be 'biharmonic' or 'mean', got {method!r}.")
    arr, c = _to_numpy(masked)
    out = inpaint_biharmonic(arr, mask[0].numpy().astype(bool), channel_axis=None if c == 1 else -1)
    return composite(_to_tensor(out, c), masked, mask)
