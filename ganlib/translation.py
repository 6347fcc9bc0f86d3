"""Image-to-image translation tasks made from any photos, and their evaluation (notebook 05).

Tasks that work offline from any folder of photos (here crops of T91/BSD200 for training and of
Set5/Set14 for testing):

- ``"edges2photo"``: the source is a Canny edge map (black lines on white, scikit-image), the
  target the photo, as pix2pix's edges2shoes;
- ``"gray2color"``: the source is the BT.601 luma, the target the colour photo;
- ``"stylise"``: the target is :func:`stylise` (source), a fixed, known colour stylisation, so an
  *unpaired* CycleGAN can be scored against the true answer.

The methods trained on them are in their own modules: :mod:`ganlib.pix2pix` (paired) and
:mod:`ganlib.cyclegan` (unpaired). The photos (``ganlib.data.photos``), the classic pix2pix and
CycleGAN datasets (``ganlib.data.fetch_cyclegan_set``, ...) and random crops
(``ganlib.images.random_crops``) are where every lesson finds them.

Pairs are ``(target, source)`` in [-1, 1], the ``(target, input)`` order of ``ganlib.train``.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganlib.images import (
    check_images,
    list_images,
    load_image,
    luma,
    to_model_range,
    to_unit_range,
)
from ganlib.train import evaluating

TASKS = ("edges2photo", "gray2color", "stylise")
SOURCE_CHANNELS = {"edges2photo": 1, "gray2color": 1, "stylise": 3}


# --- Sources from photos ----------------------------------------------------------------------


def _check_uint8_rgb(img: torch.Tensor, name: str = "image") -> None:
    if not isinstance(img, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(img).__name__}.")
    if img.ndim != 3:
        raise ValueError(f"{name} must be one image (C, H, W), got shape {tuple(img.shape)}.")
    if img.dtype != torch.uint8:
        raise ValueError(
            f"{name} must be uint8 (C, H, W) as ganlib.images.load_image returns, got {img.dtype}."
        )
    if img.shape[0] != 3:
        fix = {
            1: " It is grayscale: repeat it, img.expand(3, -1, -1), or read the file with "
            "ganlib.images.load_image, which does.",
            4: " It has an alpha channel: drop it, img[:3], or read the file with "
            "ganlib.images.load_image, which composites it.",
        }.get(img.shape[0], "")
        raise ValueError(f"{name} must have 3 (RGB) channels, got {img.shape[0]}.{fix}")
    if min(img.shape[1:]) == 0:
        raise ValueError(f"{name} has no pixels: shape {tuple(img.shape)}.")


def canny_edges(img: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """uint8 RGB (3, H, W) -> uint8 (1, H, W) edge map: black (0) edges on white (255).

    Canny (1986) on the luma, as scikit-image computes it: Gaussian smoothing with ``sigma``,
    gradient magnitude, non-maximum suppression, hysteresis between the default thresholds.
    """
    from skimage.feature import canny

    _check_uint8_rgb(img)
    gray = luma(img)[0].numpy().astype(np.float64) / 255.0
    edges = canny(gray, sigma=sigma)
    return torch.from_numpy(np.where(edges, 0, 255).astype(np.uint8))[None]


def stylise(x: torch.Tensor) -> torch.Tensor:
    """The known stylisation of the CycleGAN task: a channel rotation and a contrast curve.

    y = s(P x), with P (R, G, B) -> (B, R, G) and s(t) = t^2 (3 - 2t) (smoothstep) on [0, 1].
    Both parts are invertible, so A -> B is a bijection that an unpaired method can in principle
    recover exactly.

    Args:
        x: uint8 (…, 3, H, W), or float in [-1, 1] (model range); returns the same dtype/range.
    """
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"stylise needs RGB images (…, 3, H, W), got shape {tuple(x.shape)}.")
    if x.ndim == 4 and len(x) > 256:  # in chunks: the float64 copy of a whole set is 8x its size
        return torch.cat([stylise(chunk) for chunk in x.split(256)])
    if x.dtype == torch.uint8:
        t = x.double() / 255.0
    elif x.is_floating_point():
        t = (x.double() + 1.0) / 2.0
    else:
        raise ValueError(f"stylise takes uint8 or float [-1, 1] images, got {x.dtype}.")
    t = torch.roll(t, shifts=1, dims=-3)  # (R, G, B) -> (B, R, G)
    # s(t) = t^2 (3 - 2t)
    t = t * t * (3.0 - 2.0 * t)
    if x.dtype == torch.uint8:
        return (t * 255.0).round().clamp(0, 255).to(torch.uint8)
    return (t * 2.0 - 1.0).to(x.dtype)


def is_grayscale(img: torch.Tensor) -> bool:
    """Whether a uint8 RGB image (3, H, W) has three equal channels (a gray photo stored as RGB)."""
    _check_uint8_rgb(img)
    return bool(torch.equal(img[0], img[1]) and torch.equal(img[1], img[2]))


def make_source(img: torch.Tensor, task: str) -> torch.Tensor:
    """The source image of ``task`` for the photo ``img`` (uint8 RGB (3, H, W)), as uint8."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}.")
    _check_uint8_rgb(img)
    if task == "edges2photo":
        return canny_edges(img)
    if task == "gray2color":
        return luma(img)
    return img


def make_target(img: torch.Tensor, task: str) -> torch.Tensor:
    """The target image of ``task`` for the photo ``img``: the photo, or its stylisation."""
    _check_uint8_rgb(img)
    return stylise(img) if task == "stylise" else img


# --- Crops and pairs --------------------------------------------------------------------------


def load_folder(folder: str | os.PathLike, min_size: int = 1) -> list[torch.Tensor]:
    """Every image of a folder as uint8 RGB (3, H, W) (grayscale repeated, alpha composited).

    Raises a clear error for a missing or empty folder and for images smaller than ``min_size``.
    """
    return [load_image(p, min_size=min_size) for p in list_images(folder)]


def grid_crops(images: list[torch.Tensor], size: int, per_image: int = 4) -> torch.Tensor:
    """Deterministic test crops: up to ``per_image`` non-overlapping ``size`` crops per image,
    taken from a regular grid centred in the image (uint8 (N, 3, size, size))."""
    crops = []
    for i, img in enumerate(images):
        _check_uint8_rgb(img, f"image {i}")
        rows, cols = img.shape[1] // size, img.shape[2] // size
        if rows == 0 or cols == 0:
            continue
        top0, left0 = (img.shape[1] - rows * size) // 2, (img.shape[2] - cols * size) // 2
        cells = [(r, c) for r in range(rows) for c in range(cols)]
        step = max(1, len(cells) // per_image)
        for r, c in cells[::step][:per_image]:
            t, left = top0 + r * size, left0 + c * size
            crops.append(img[:, t : t + size, left : left + size])
    if not crops:
        raise ValueError(f"No image is at least {size}x{size} pixels; use a smaller crop size.")
    return torch.stack(crops)


def make_task_pairs(
    crops: torch.Tensor, task: str, *, uint8: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(target, source)`` tensors for uint8 photo crops (N, 3, H, W).

    Args:
        crops: uint8 RGB crops (N, 3, H, W).
        task: One of :data:`TASKS`.
        uint8: Return uint8 [0, 255] instead of float32 in [-1, 1]: a quarter of the memory
            (12,000 crops of 256x256 are 2.4 GB as uint8, 9.4 GB as float). Train on them with
            ``Batches(..., transform=to_model_range)``, which converts one batch at a time.
    """
    if crops.ndim != 4 or crops.dtype != torch.uint8 or crops.shape[0] == 0:
        raise ValueError(
            f"make_task_pairs takes a non-empty uint8 batch (N, 3, H, W), got {crops.dtype} "
            f"{tuple(crops.shape)}."
        )
    sources = torch.stack([make_source(c, task) for c in crops])
    targets = stylise(crops) if task == "stylise" else crops
    if uint8:
        return targets, sources
    return to_model_range(targets), to_model_range(sources)


def mean_colour(images: torch.Tensor) -> torch.Tensor:
    """The mean colour of uint8 images (N, C, H, W), as a float32 (1, C, 1, 1) in [-1, 1].

    Sums in chunks in float64, so a large uint8 set is never copied whole to a float type.
    """
    if images.ndim != 4 or images.dtype != torch.uint8 or images.shape[0] == 0:
        raise ValueError(
            f"mean_colour takes a non-empty uint8 batch (N, C, H, W), got {images.dtype} "
            f"{tuple(images.shape)}."
        )
    total = sum(c.sum(dim=(0, 2, 3), dtype=torch.float64) for c in images.split(256))
    mean = total / (images.numel() // images.shape[1]) / 255.0  # in [0, 1]
    return to_model_range(mean.float()).view(1, -1, 1, 1)


def as_rgb(x: torch.Tensor) -> torch.Tensor:
    """A (B, 1, H, W) batch repeated to three channels (for display and the input baseline)."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


# --- Inference and evaluation -----------------------------------------------------------------


def translate(G: nn.Module, source: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """G(source) in eval mode (batch norm with running statistics, dropout off), in batches, on
    the CPU, in [-1, 1]."""
    check_images(source, name="source images")
    device = next(G.parameters()).device
    with evaluating(G):
        outs = [G(chunk.to(device)).float().cpu() for chunk in source.split(batch_size)]
    return torch.cat(outs)


def translation_scores(fake: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """L1 (mean absolute error on [0, 1] RGB), PSNR and SSIM on RGB against the ground truth.

    Both in the model range [-1, 1], shape (N, 3, H, W). RGB, not the SR protocol's Y channel:
    in colourisation the colours are the answer.
    """
    from ganlib.metrics import psnr, ssim

    if fake.shape != target.shape:
        raise ValueError(
            f"outputs and targets must have one shape, got {tuple(fake.shape)} and "
            f"{tuple(target.shape)}."
        )
    f, t = to_unit_range(fake), to_unit_range(target)
    return {
        "l1": float((f - t).abs().mean()),
        "psnr": psnr(f, t, channel="rgb"),
        "ssim": ssim(f, t, channel="rgb"),
    }


def colourfulness(images: torch.Tensor) -> torch.Tensor:
    """Hasler and Süsstrunk's (2003) colourfulness of each image, in [0, 1] units: (N, 3, H, W) -> (N,).

    With the opponent channels rg = R - G and yb = (R + G)/2 - B over the pixels of one image,
    M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2). A gray image has M = 0;
    the paper's scale is 255 times this. Takes the model range [-1, 1] or uint8.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"colourfulness needs RGB batches (N, 3, H, W), got {tuple(images.shape)}."
        )
    u = to_unit_range(images).double()
    r, g, b = u[:, 0], u[:, 1], u[:, 2]
    rg, yb = r - g, 0.5 * (r + g) - b  # (N, H, W) each
    spread = (rg.var(dim=(1, 2), unbiased=False) + yb.var(dim=(1, 2), unbiased=False)).sqrt()
    centre = (rg.mean(dim=(1, 2)) ** 2 + yb.mean(dim=(1, 2)) ** 2).sqrt()
    # M = sigma_rgyb + 0.3 mu_rgyb
    return (spread + 0.3 * centre).float()


def translate_image(G: nn.Module, img: torch.Tensor, task: str, multiple: int) -> torch.Tensor:
    """Translate one photo of any size: uint8 RGB (3, H, W) -> uint8 RGB (3, H, W).

    The source of ``task`` is made from the photo (for ``"edges2photo"`` pass a photo, or an edge
    map already drawn as black lines on white with ``task="edges"``), reflect-padded to a multiple
    of ``multiple`` (2^depth for a U-Net) for the network and cropped back afterwards.
    """
    if task == "edges":
        _check_uint8_rgb(img)
        source = luma(img)  # an edge drawing: its luma is the edge map
    else:
        source = make_source(img, task)
    h, w = source.shape[-2:]
    if min(h, w) < 2:
        raise ValueError(f"The image is {w}x{h} pixels; it needs at least 2x2.")
    ph, pw = (-h) % multiple, (-w) % multiple
    x = to_model_range(source)[None]
    if ph or pw:
        if ph >= h or pw >= w:  # reflection needs the padding smaller than the image
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        else:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    y = translate(G, x)[0, :, :h, :w]
    return (to_unit_range(y) * 255).round().to(torch.uint8)
