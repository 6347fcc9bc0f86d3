"""Image ranges and input checks, in one place.

Convention for the whole course: images *inside models* are float tensors in [-1, 1], shape
(B, C, H, W). Metrics and plots take [0, 1] floats (or uint8) and say so in their docstrings.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name} has no pixels or no images: shape {tuple(x.shape)}.")
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


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of RGB images, (..., 3, H, W) -> (..., 1, H, W), in the input's own range.

    Y = 0.299 R + 0.587 G + 0.114 B (full range). Float input gives float output on the same scale
    ([0, 1], [0, 255], ...); uint8 input gives uint8, rounded. The SR protocol's studio-range Y
    (``ganlib.metrics.rgb_to_y``) is 16 + 219/255 of this on the 0-255 scale.
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 3 or x.shape[-3] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        hint = (
            " It already has one channel."
            if isinstance(x, torch.Tensor) and x.ndim >= 3 and x.shape[-3] == 1
            else ""
        )
        raise ValueError(f"luma needs RGB images (..., 3, H, W), got {shape}.{hint}")
    if x.dtype == torch.uint8:
        return luma(x.double()).round().clamp(0, 255).to(torch.uint8)
    if not x.is_floating_point():
        raise ValueError(f"luma takes uint8 or float images, got {x.dtype}.")
    r, g, b = x.unbind(-3)
    # Y = 0.299 R + 0.587 G + 0.114 B
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def random_crops(
    images: list[torch.Tensor], n: int, size: int, seed: int = 0, flip: bool = True
) -> torch.Tensor:
    """``n`` random ``size`` x ``size`` crops (n, C, size, size), images drawn uniformly.

    Args:
        images: Images (C, H, W) of one dtype and channel count, each at least ``size`` pixels
            on both sides (filter smaller ones out first).
        n: Number of crops.
        size: Crop side in pixels.
        seed: Seed of the crop positions. Default: 0.
        flip: Also flip half of the crops left-right. Default: True.
    """
    if not images:
        raise ValueError("random_crops got no images: check that the folder or set loaded.")
    if n < 1 or size < 1:
        raise ValueError(f"n and size must be >= 1, got n={n}, size={size}.")
    for i, img in enumerate(images):
        if not isinstance(img, torch.Tensor) or img.ndim != 3:
            shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
            raise ValueError(f"image {i} must be one image (C, H, W), got {shape}.")
        if img.shape[0] != images[0].shape[0] or img.dtype != images[0].dtype:
            raise ValueError(
                f"image {i} is {img.dtype} with {img.shape[0]} channel(s), image 0 "
                f"{images[0].dtype} with {images[0].shape[0]}: convert them to one format first."
            )
    small = [i for i, img in enumerate(images) if min(img.shape[1:]) < size]
    if small:
        shape = tuple(images[small[0]].shape[1:])
        raise ValueError(
            f"{len(small)} image(s) are smaller than the {size}x{size} crop (e.g. image "
            f"{small[0]}: {shape[0]}x{shape[1]}); use a smaller crop or drop them."
        )
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, images[0].shape[0], size, size, dtype=images[0].dtype)
    which = torch.randint(len(images), (n,), generator=g)
    for k, i in enumerate(which.tolist()):
        img = images[i]
        top = int(torch.randint(img.shape[1] - size + 1, (1,), generator=g))
        left = int(torch.randint(img.shape[2] - size + 1, (1,), generator=g))
        crop = img[:, top : top + size, left : left + size]
        if flip and bool(torch.rand((), generator=g) < 0.5):
            crop = crop.flip(-1)
        out[k] = crop
    return out


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def load_image(path: str | os.PathLike, min_size: int = 1) -> torch.Tensor:
    """Read an image file as a uint8 RGB tensor (3, H, W).

    Grayscale is repeated to three channels, an alpha channel is dropped (composited on black),
    16-bit images are scaled to 8 bits. Unreadable files raise a ``ValueError`` naming the file.

    Args:
        path: The image file.
        min_size: Smallest allowed height and width in pixels.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image at {path}.")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                top = 65535.0 if arr.max() > 255 else 255.0
                im = Image.fromarray(np.round(arr * 255.0 / top).astype(np.uint8), mode="L")
            if im.mode in ("RGBA", "LA", "P", "PA"):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (0, 0, 0, 255))
                im = Image.alpha_composite(background, im)
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{path} is not a readable image (corrupt or truncated?): {err}") from None
    h, w = rgb.shape[:2]
    if h < min_size or w < min_size:
        raise ValueError(f"{path} is {w}x{h} pixels; at least {min_size}x{min_size} is needed.")
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files in ``folder`` (sorted); a clear error when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No folder at {folder}.")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"No images in {folder} (looked for {', '.join(IMAGE_SUFFIXES)}). Point to a folder of HR images."
        )
    return files
