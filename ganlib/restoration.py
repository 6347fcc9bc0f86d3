"""Image restoration: degradations (noise, inpainting masks), learned restorers, evaluation.

Conventions: clean images are float tensors in [0, 1] (or uint8), shape (C, H, W) or
(B, C, H, W) with C = 1 or 3; noise levels sigma are given **on the 0-255 scale** (sigma = 25
means a standard deviation of 25/255 on [0, 1] images), as in the denoising literature. Masks
are float tensors (1, H, W) or (B, 1, H, W) with **1 where pixels are missing** (the hole) and
0 where they are known.

A learned restorer G takes the degraded image y and is trained on ``(clean, degraded input)``
batches (:class:`RestorationBatches`): with L1 alone, ``fit(run, supervised_step, ...)``
(``ganlib.train``); with L1 plus an adversarial term, ``fit(run, restoration_step, ...)`` and a
:class:`RestorationGANRun`. The classic scikit-image baselines are in :mod:`ganlib.baselines`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganlib.data import Batches
from ganlib.gan import GANRun
from ganlib.images import luma
from ganlib.losses import D_LOSSES, G_LOSSES, discriminator_outputs, l1_loss
from ganlib.metrics import psnr, ssim
from ganlib.train import frozen

# --- Degradations -------------------------------------------------------------------------------


def as_unit_float(x, name: str = "image") -> torch.Tensor:
    """uint8 or float [0, 1] (C, H, W) / (B, C, H, W), C in (1, 3) -> float32 in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim not in (3, 4):
        raise ValueError(f"{name} must be (C, H, W) or (B, C, H, W), got shape {tuple(x.shape)}.")
    c = x.shape[-3]
    if c not in (1, 3):
        hint = " Drop the alpha channel with x[..., :3, :, :]." if c == 4 else ""
        raise ValueError(f"{name} must have 1 (gray) or 3 (RGB) channels, got {c}.{hint}")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.is_floating_point():
        raise ValueError(f"{name} must be uint8 or float in [0, 1], got dtype {x.dtype}.")
    if x.numel() and (float(x.min()) < -1e-6 or float(x.max()) > 1 + 1e-6):
        raise ValueError(
            f"{name} is float with values in [{float(x.min()):.3f}, {float(x.max()):.3f}]; "
            "degradations take [0, 1] floats or uint8. Convert model-range images with "
            "ganlib.images.to_unit_range."
        )
    return x.float()


def check_sigma(sigma) -> float:
    """Validate a noise level on the 0-255 scale; a value in (0, 1) is almost surely on [0, 1]."""
    if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not math.isfinite(sigma):
        raise ValueError(f"sigma must be a finite number on the 0-255 scale, got {sigma!r}.")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}.")
    if 0 < sigma < 1:
        raise ValueError(
            f"sigma={sigma} looks like a noise level on the [0, 1] scale; ganlib takes sigma on "
            f"the 0-255 scale (sigma = 25 is a standard deviation of 25/255). Did you mean "
            f"sigma={sigma * 255:g}?"
        )
    if sigma > 255:
        raise ValueError(f"sigma={sigma} is larger than the whole 0-255 range; use <= 255.")
    return float(sigma)


def add_gaussian_noise(
    x, sigma: float, generator: torch.Generator | None = None, clip: bool = False
) -> torch.Tensor:
    """y = x + (sigma / 255) * n, n ~ N(0, I): additive white Gaussian noise.

    Args:
        x: Clean image(s), uint8 or float in [0, 1], (C, H, W) or (B, C, H, W).
        sigma (float): Standard deviation on the 0-255 scale (e.g. 25 or 50).
        generator: Draws n (``torch.randn(x.shape, generator=generator)``); None uses torch's
            global generator.
        clip (bool): Clip y to [0, 1], as saving to an 8-bit file would. The denoising
            literature (and the default here) keeps the unclipped y so that the noise is exactly
            Gaussian. Default: False.

    Returns:
        float32 y, same shape as x (values may lie outside [0, 1] unless ``clip``).
    """
    x = as_unit_float(x, "clean image")
    sigma = check_sigma(sigma)
    # y = x + (sigma / 255) n
    y = x + (sigma / 255.0) * torch.randn(x.shape, generator=generator).to(x.device)
    return y.clamp(0, 1) if clip else y


def rectangle_mask(
    height: int, width: int, size: tuple[int, int], generator: torch.Generator | None = None
) -> torch.Tensor:
    """A (1, H, W) mask with one axis-aligned ``size = (h, w)`` rectangle of ones (the hole) at a
    random position fully inside the image."""
    mh, mw = size
    if not (0 < mh <= height and 0 < mw <= width):
        raise ValueError(f"A {mh}x{mw} hole does not fit in a {height}x{width} image.")
    top = int(torch.randint(height - mh + 1, (1,), generator=generator))
    left = int(torch.randint(width - mw + 1, (1,), generator=generator))
    mask = torch.zeros(1, height, width)
    mask[:, top : top + mh, left : left + mw] = 1
    return mask


def stroke_mask(
    height: int,
    width: int,
    strokes: int = 3,
    vertices: int = 4,
    thickness: float = 3.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A free-form (1, H, W) mask: ``strokes`` random polylines drawn with a round brush.

    Each stroke starts at a random point and makes ``vertices`` moves of random direction and a
    length of up to half the image side (clipped to the image), like the free-form masks of
    Yu et al. (2019), drawn with a disk of diameter ``thickness`` pixels.
    """
    if height < 1 or width < 1 or strokes < 1 or vertices < 1 or thickness <= 0:
        raise ValueError(
            f"stroke_mask needs a non-empty image and positive strokes/vertices/thickness, got "
            f"{height}x{width}, strokes={strokes}, vertices={vertices}, thickness={thickness}."
        )
    g = generator
    yy, xx = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    mask = torch.zeros(height, width, dtype=torch.bool)
    limit = torch.tensor([height - 1.0, width - 1.0])
    for _ in range(strokes):
        p = torch.rand(2, generator=g) * limit
        for _ in range(vertices):
            angle = float(torch.rand(1, generator=g)) * 2 * math.pi
            length = float(torch.rand(1, generator=g)) * 0.5 * max(height, width)
            q = torch.minimum(
                (p + length * torch.tensor([math.sin(angle), math.cos(angle)])).clamp(min=0), limit
            )
            # distance of every pixel to the segment p -> q: project onto it, clamp to its ends
            d = q - p
            t = ((yy - p[0]) * d[0] + (xx - p[1]) * d[1]) / max(float(d @ d), 1e-12)
            t = t.clamp(0, 1)
            dist2 = (yy - p[0] - t * d[0]) ** 2 + (xx - p[1] - t * d[1]) ** 2
            mask |= dist2 <= (thickness / 2) ** 2
            p = q
    return mask.float()[None]


def apply_mask(x, mask: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """The masked image x * (1 - m) + fill * m (known pixels kept, the hole set to ``fill``)."""
    x = as_unit_float(x, "image")
    check_mask(mask, x)
    return x * (1 - mask) + fill * mask


def composite(prediction: torch.Tensor, known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x_hat = m * G(y) + (1 - m) * y: the network's pixels in the hole, the known pixels elsewhere.

    Works in any range (model range [-1, 1] included), for (C, H, W) or (B, C, H, W).
    """
    if prediction.shape != known.shape:
        raise ValueError(
            f"prediction and known image must have one shape, got {tuple(prediction.shape)} "
            f"and {tuple(known.shape)}."
        )
    check_mask(mask, known)
    # x_hat = m * G(y) + (1 - m) * y
    return mask * prediction + (1 - mask) * known


def check_mask(mask: torch.Tensor, x: torch.Tensor) -> None:
    if not isinstance(mask, torch.Tensor) or mask.ndim != x.ndim or mask.shape[-3] != 1:
        raise ValueError(
            f"mask must be (1, H, W) or (B, 1, H, W) to match an image of shape "
            f"{tuple(x.shape)}, got {tuple(getattr(mask, 'shape', ()))}."
        )
    if mask.shape[-2:] != x.shape[-2:]:
        raise ValueError(
            f"mask size {tuple(mask.shape[-2:])} differs from image size {tuple(x.shape[-2:])}."
        )


def mask_bank(
    n: int,
    size: int,
    kind: str,
    seed: int = 0,
    rect: tuple[int, int] = (8, 16),
    thickness: float = 3.0,
    strokes: int = 2,
) -> torch.Tensor:
    """``n`` random masks (n, 1, size, size) made once, to draw masks from quickly.

    Hole sizes are in pixels, not fractions of the image, so masks for large test images have
    holes of the same size as the small training patches.

    Args:
        n (int): Number of masks.
        size (int): Image side in pixels.
        kind (str): ``"rect"`` (one rectangle, each side uniform in ``rect`` pixels),
            ``"stroke"`` (:func:`stroke_mask` with ``strokes`` strokes of ``thickness`` pixels)
            or ``"mixed"`` (alternately one and the other).
        seed (int): Fixes the masks.
    """
    if kind not in ("rect", "stroke", "mixed"):
        raise ValueError(f"kind must be 'rect', 'stroke' or 'mixed', got {kind!r}.")
    lo, hi = rect
    if not 0 < lo <= hi <= size:
        raise ValueError(f"rect sides {rect} must satisfy 0 < lo <= hi <= size ({size}).")
    g = torch.Generator().manual_seed(seed)
    masks = []
    for i in range(n):
        if kind == "rect" or (kind == "mixed" and i % 2 == 0):
            mh, mw = (int(torch.randint(lo, hi + 1, (1,), generator=g)) for _ in range(2))
            masks.append(rectangle_mask(size, size, (mh, mw), g))
        else:
            masks.append(stroke_mask(size, size, strokes, thickness=thickness, generator=g))
    return torch.stack(masks)


# --- Learned restoration: data and the inpainting generator -----------------------------------


def to_gray(img_u8: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (3, H, W) -> float (1, H, W) in [0, 1]: the luma Y = 0.299 R + 0.587 G + 0.114 B
    (:func:`ganlib.images.luma`) of the image on [0, 1]. A gray (1, H, W) image is only rescaled."""
    if img_u8.dtype != torch.uint8 or img_u8.ndim != 3 or img_u8.shape[0] not in (1, 3):
        raise ValueError(
            f"to_gray takes one uint8 image (3, H, W) (or (1, H, W)), got {img_u8.dtype} "
            f"{tuple(img_u8.shape)}."
        )
    img = img_u8.float() / 255
    return img if img.shape[0] == 1 else luma(img)


class RestorationBatches:
    """Endless ``(clean, degraded input)`` batches in the model range [-1, 1] for
    ``fit(run, supervised_step, ...)`` and ``fit(run, restoration_step, ...)``.

    Denoising (``sigmas`` given): each image gets noise of a level drawn from ``sigmas`` (0-255
    scale), so one network learns every level (a "blind" denoiser, like DnCNN-B). In the model
    range the noise standard deviation is 2 sigma / 255. Input: (B, C, P, P).

    Inpainting (``masks`` given): each image gets a random mask from the bank, flipped and turned
    by a random multiple of 90 degrees; the hole is filled with 0 (mid-gray) and the mask is
    appended as an extra channel, so the network knows where the hole is. Input: (B, C + 1, P, P).

    Args:
        clean: Clean patches in [0, 1], (N, C, P, P).
        batch_size (int): Patches per batch.
        sigmas: Noise levels on the 0-255 scale, or None.
        masks: A bank from :func:`mask_bank` (M, 1, P, P), or None.
        seed (int): Seeds the batch order, noise and masks.
        device: Where batches are delivered.
    """

    def __init__(
        self, clean, batch_size: int, sigmas=None, masks=None, seed: int = 0, device="cpu"
    ):
        if (sigmas is None) == (masks is None):
            raise ValueError("Give exactly one of sigmas (denoising) or masks (inpainting).")
        if sigmas is not None:
            sigmas = [check_sigma(s) for s in sigmas]
        if masks is not None and masks.shape[-2:] != clean.shape[-2:]:
            raise ValueError(
                f"Masks are {tuple(masks.shape[-2:])} but patches are {tuple(clean.shape[-2:])}."
            )
        clean = as_unit_float(clean, "clean patches")
        self.batches = Batches(clean * 2 - 1, batch_size=batch_size, seed=seed)
        self.sigmas, self.masks, self.device = sigmas, masks, torch.device(device)
        self.generator = torch.Generator().manual_seed(seed + 1)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.generator
        x = next(self.batches)  # (B, C, P, P) in [-1, 1]
        b = x.shape[0]
        if self.sigmas is not None:
            levels = torch.tensor(self.sigmas)[torch.randint(len(self.sigmas), (b,), generator=g)]
            # y = x + (2 sigma / 255) n  in the model range [-1, 1]
            y = x + (2 * levels / 255)[:, None, None, None] * torch.randn(x.shape, generator=g)
            return x.to(self.device), y.to(self.device)
        m = self.masks[torch.randint(len(self.masks), (b,), generator=g)]
        turns = int(torch.randint(4, (1,), generator=g))
        m = torch.rot90(m, turns, (2, 3))
        if bool(torch.randint(2, (1,), generator=g)):
            m = m.flip(-1)
        return x.to(self.device), inpainting_input(x, m).to(self.device)

    def state_dict(self) -> dict:
        return {"batches": self.batches.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state["batches"])
        self.generator.set_state(state["generator"])


def inpainting_input(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Model-range images (B, C, H, W) + masks (B, 1, H, W) -> the network input (B, C + 1, H, W):
    the hole filled with 0 (mid-gray), then the mask as the last channel."""
    check_mask(mask, x)
    return torch.cat([x * (1 - mask), mask], dim=1)


class CompositeGenerator(torch.nn.Module):
    """Inpainting G: input (B, C + 1, H, W) = [masked image, mask] -> the composited image.

    x_hat = m * net(input) + (1 - m) * y: only the hole is generated, the known pixels pass
    through unchanged. A discriminator that sees x_hat therefore judges the filled region *in
    its context*: a hole that does not continue its surroundings shows as a seam.

    Args:
        net: Any image-to-image network with C + 1 input and C output channels, e.g.
            ``ResnetImageGenerator(in_ch=2, out_ch=1)``.
    """

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        known, mask = inp[:, :-1], inp[:, -1:]
        return composite(self.net(inp), known, mask)


# --- Learned restoration: the adversarial run and its step -------------------------------------


@dataclass
class RestorationGANRun(GANRun):
    """A restorer G (degraded input -> clean estimate) trained with L1 plus a discriminator D.

    L_G = L1(G(y), x) + adv_weight * L_adv: the L1 term pulls G(y) towards the clean image x,
    the adversarial term towards images D cannot tell from clean ones. G takes images, so
    ``z_dim`` stays None; every iteration is one D step and one G step.

    Args:
        adv_weight (float): Weight lambda of the adversarial term. Default: 0.01 (the inverse of
            pix2pix's lambda = 100 on the L1 term).
    """

    adv_weight: float = 0.01

    _settings = (*GANRun._settings, "adv_weight")
    _shares_fake_by_default = False  # one D step and one G step, each with its own G pass

    def __post_init__(self):
        if self.n_dis != 1 or self.share_fake:
            raise ValueError(
                f"restoration_step makes one D step and one G step per iteration; got "
                f"n_dis={self.n_dis}, share_fake={self.share_fake}. Use the defaults."
            )
        if self.adv_weight < 0:
            raise ValueError(f"adv_weight must be >= 0, got {self.adv_weight}.")
        super().__post_init__()


def restoration_step(run: RestorationGANRun, batch) -> dict[str, torch.Tensor]:
    """One D step, then one G step, on ``batch = (clean x, degraded input y)`` in [-1, 1]."""
    clean, degraded = batch
    # (1) Update D: clean images are real, restored ones G(y) fake
    with torch.no_grad(), run.precision.autocast():
        fake = run.G(degraded)  # no graph through G: this step does not train it
    with run.precision.autocast():
        real_logits, fake_logits = run.D(clean), run.D(fake)
        # L_D = -E_x[log D(x)] - E_y[log(1 - D(G(y)))]
        loss_D = D_LOSSES[run.d_loss](real_logits.float(), fake_logits.float())
    run.precision.update(loss_D, run.opt_D, "D")
    # (2) Update G: close to the clean image, and called clean by D
    with frozen(run.D), run.precision.autocast():  # gradients flow through D, not into it
        restored = run.G(degraded)
        # L_adv = -E_y[log D(G(y))]  (non-saturating)
        loss_adv = G_LOSSES[run.g_loss](run.D(restored).float())
    # L_G = E|G(y) - x| + adv_weight * L_adv
    loss_content = l1_loss(restored.float(), clean)
    loss_G = loss_content + run.adv_weight * loss_adv
    run.precision.update(loss_G, run.opt_G, "G")
    return {
        "loss_D": loss_D.detach(),
        "loss_G": loss_G.detach(),
        "loss_content": loss_content.detach(),
        "loss_adv": loss_adv.detach(),
        **discriminator_outputs(run.d_loss, real_logits, fake_logits),
    }


# --- Evaluation ---------------------------------------------------------------------------------


def evaluate(
    restored: torch.Tensor, clean: torch.Tensor, max_psnr: float = 60.0
) -> dict[str, float]:
    """PSNR (dB) and SSIM of restored vs clean images in [0, 1] (restored is clamped), averaged
    over the images.

    PSNR = 10 log10(1 / MSE) per image on [0, 1] data (ganlib.metrics.psnr, RGB or gray, no border
    crop), capped at ``max_psnr``: an image restored exactly (a hole that fell on empty background)
    would otherwise make the mean infinite. SSIM uses the standard 11x11 Gaussian window.
    """
    restored = restored.float().clamp(0, 1)
    clean = as_unit_float(clean, "clean image")
    if restored.shape != clean.shape:
        raise ValueError(
            f"restored and clean images differ in shape: {tuple(restored.shape)} vs "
            f"{tuple(clean.shape)}."
        )
    if restored.ndim == 3:
        restored, clean = restored[None], clean[None]
    # for gray images ganlib.metrics uses the one channel; for RGB, all three
    values = [
        min(psnr(r, c, channel="rgb"), max_psnr) for r, c in zip(restored, clean, strict=True)
    ]
    return {"psnr": sum(values) / len(values), "ssim": ssim(restored, clean, channel="rgb")}
