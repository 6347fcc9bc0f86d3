"""Image-to-image translation: paired tasks, pix2pix and CycleGAN training, evaluation (notebook 05).

Tasks that work offline from any folder of photos (here crops of T91/BSD200 for training and of
Set5/Set14 for testing):

- ``"edges2photo"``: the source is a Canny edge map (black lines on white, scikit-image), the
  target the photo, as pix2pix's edges2shoes;
- ``"gray2color"``: the source is the BT.601 luma, the target the colour photo;
- ``"stylise"``: the target is :func:`stylise` (source), a fixed, known colour stylisation, so an
  *unpaired* CycleGAN can be scored against the true answer.

Training (the D and G steps are named functions; :func:`fit_pix2pix` and :func:`fit_cyclegan`
call them in order through :func:`ganlib.train._drive`, which adds checkpoints, resume, the NaN
check and hooks):

- pix2pix (Isola et al. 2017): :func:`pix2pix_d_step`, :func:`pix2pix_g_step`;
  L_G = L_cGAN + lambda * L_L1 with lambda = 100, Adam 2e-4 / beta1 0.5, linear LR decay to 0
  over the second half (:func:`linear_decay`).
- CycleGAN (Zhu et al. 2017): :func:`cyclegan_g_step`, :func:`cyclegan_d_step`; LSGAN losses,
  cycle loss (lambda = 10), identity loss (0.5 lambda), the 50-image :class:`ImagePool`.
  Code (vs. paper): G_AB (G), G_BA (F), D_B (D_Y), D_A (D_X).

Batches are ``(target, source)`` pairs in [-1, 1], the ``(real, input)`` order of ganlib.train.
"""

from __future__ import annotations

import itertools
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganlib.data import DatasetUnavailable, data_root, fetch_file, load_sr_images
from ganlib.images import check_images, list_images, load_image, to_model_range, to_unit_range
from ganlib.train import RunState, _drive

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


def luma(img: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (3, H, W) -> uint8 (1, H, W): Y = 0.299 R + 0.587 G + 0.114 B (BT.601, full range)."""
    _check_uint8_rgb(img)
    r, g, b = img.double()
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return y.round().clamp(0, 255).to(torch.uint8)[None]


def canny_edges(img: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """uint8 RGB (3, H, W) -> uint8 (1, H, W) edge map: black (0) edges on white (255).

    Canny (1986) on the luma, as scikit-image computes it: Gaussian smoothing with ``sigma``,
    gradient magnitude, non-maximum suppression, hysteresis between the default thresholds.
    """
    from skimage.feature import canny

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


# --- Crops ------------------------------------------------------------------------------------


def load_folder(folder: str | os.PathLike, min_size: int = 1) -> list[torch.Tensor]:
    """Every image of a folder as uint8 RGB (3, H, W) (grayscale repeated, alpha composited).

    Raises a clear error for a missing or empty folder and for images smaller than ``min_size``.
    """
    return [load_image(p, min_size=min_size) for p in list_images(folder)]


def photos(names: tuple[str, ...] | list[str]) -> list[torch.Tensor]:
    """uint8 RGB images of the named SR sets (``"t91"``, ``"bsd200"``, ``"set5"``, ``"set14"``)."""
    return [img for name in names for _, img in load_sr_images(name)]


def random_crops(
    images: list[torch.Tensor], n: int, size: int, seed: int = 0, flip: bool = True
) -> torch.Tensor:
    """``n`` random ``size`` x ``size`` crops (uint8 (n, 3, size, size)), images drawn uniformly.

    Args:
        images: uint8 RGB images (3, H, W), each at least ``size`` pixels on both sides.
        n: Number of crops.
        size: Crop side in pixels.
        seed: Seed of the crop positions. Default: 0.
        flip: Also flip half of the crops left-right. Default: True.
    """
    if not images:
        raise ValueError("random_crops got no images: check that the folder or set loaded.")
    if n < 1 or size < 1:
        raise ValueError(f"n and size must be >= 1, got n={n}, size={size}.")
    small = [i for i, img in enumerate(images) if min(img.shape[1:]) < size]
    if small:
        shape = tuple(images[small[0]].shape[1:])
        raise ValueError(
            f"{len(small)} image(s) are smaller than the {size}x{size} crop (e.g. image "
            f"{small[0]}: {shape[0]}x{shape[1]}); use a smaller crop or drop them."
        )
    for i, img in enumerate(images):
        _check_uint8_rgb(img, f"image {i}")
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
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


def make_pairs(
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
            f"make_pairs takes a non-empty uint8 batch (N, 3, H, W), got {crops.dtype} "
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


# --- The history buffer -----------------------------------------------------------------------


class ImagePool:
    """The history of generated images that CycleGAN's discriminators see (Shrivastava et al. 2017).

    Until ``size`` images are stored, every image is stored and returned as it is. After that, each
    image is, with probability 1/2, returned as it is; otherwise a random stored image is returned
    in its place and the new one takes its slot. D thus also sees older fakes, which damps
    oscillations between D and G. ``size = 0`` disables the pool.

    Args:
        size (int): Images kept. Default: 50 (the paper).
        seed (int): Seed of the pool's own random generator (saved in checkpoints). Default: 0.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        if size < 0:
            raise ValueError(f"ImagePool size must be >= 0, got {size}.")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) for D, of the same shape: current ones or stored older ones."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=self.generator)) < 0.5:
                out.append(image)  # the current image
            else:
                i = int(torch.randint(self.size, (1,), generator=self.generator))
                out.append(self.images[i].clone())  # an older fake
                self.images[i] = image.clone()
        return torch.cat(out)

    def state_dict(self) -> dict:
        images = torch.cat(self.images) if self.images else torch.empty(0)
        return {"size": self.size, "images": images, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.size = state["size"]
        self.images = (
            [im[None].clone() for im in state["images"]] if state["images"].numel() else []
        )
        self.generator.set_state(state["generator"])


# --- Losses -----------------------------------------------------------------------------------


def bce_real(logits: torch.Tensor) -> torch.Tensor:
    """-E[log D] with D = sigmoid(logits): the loss of calling every patch real."""
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def bce_fake(logits: torch.Tensor) -> torch.Tensor:
    """-E[log(1 - D)]: the loss of calling every patch fake."""
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def conditional_d_loss(
    D: nn.Module, source: torch.Tensor, target: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """pix2pix's discriminator loss: D judges *pairs* (source, image), averaged over patches.

    L_D = 1/2 ( -E[log D(x, y)] - E[log(1 - D(x, G(x)))] ), the 1/2 slowing D down relative to G
    as in the paper. ``fake`` = G(x) should be detached.
    """
    return _conditional_d_loss_and_logits(D, source, target, fake)[0]


def _conditional_d_loss_and_logits(D, source, target, fake):
    """:func:`conditional_d_loss` and the logits it computed (pix2pix_d_step reports them)."""
    real_logits = D(torch.cat([source, target], dim=1))  # (B, 1, H', W'): one logit per patch
    fake_logits = D(torch.cat([source, fake], dim=1))
    # L_D = 1/2 (-E[log D(x, y)] - E[log(1 - D(x, G(x)))])
    return 0.5 * (bce_real(real_logits) + bce_fake(fake_logits)), real_logits, fake_logits


def cycle_consistency_loss(x: torch.Tensor, x_reconstructed: torch.Tensor) -> torch.Tensor:
    """L_cyc = E ||F(G(x)) - x||_1: the mean absolute difference between an image and its round trip."""
    # L_cyc = E ||F(G(x)) - x||_1
    return (x_reconstructed - x).abs().mean()


def lsgan_loss(outputs: torch.Tensor, label: float) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017): E[(D(.) - label)^2], label 1 = real, 0 = fake."""
    return ((outputs - label) ** 2).mean()


# --- pix2pix ----------------------------------------------------------------------------------

D_MODES = ("conditional", "naive", "unconditional")


def linear_decay(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """pix2pix/CycleGAN's schedule: the initial LR for the first half, then linearly down to 0.

    lr_t = lr_0 * min(1, (T - t) / (T - floor(T/2))), t = 0 .. T-1 the optimizer step.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    decay = steps - steps // 2

    def factor(t: int) -> float:
        # lr_t / lr_0 = min(1, (T - t) / (T - floor(T/2)))
        return max(0.0, min(1.0, (steps - t) / decay))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def pix2pix_d_step(
    G: nn.Module,
    D: nn.Module,
    opt_D: torch.optim.Optimizer,
    source: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "conditional",
) -> dict[str, torch.Tensor]:
    """(1) Update D. Only D's weights change.

    Args:
        mode: ``"conditional"`` (pix2pix): D(x, y) real, D(x, G(x)) fake, see
            :func:`conditional_d_loss`. ``"unconditional"``: D(y) real, D(G(x)) fake (a plain
            GAN: D cannot check that the output fits the input). ``"naive"``: the seed's wrong code,
            D is trained on (x + y) / 2 with the label 1 only; it never sees a fake nor a real pair.
    """
    if mode not in D_MODES:
        raise ValueError(f"mode must be one of {', '.join(D_MODES)}, got {mode!r}.")
    with torch.no_grad():
        fake = G(source)  # no graph through G: this step does not train it
    if mode == "conditional":
        loss_D, real_logits, fake_logits = _conditional_d_loss_and_logits(D, source, target, fake)
    elif mode == "unconditional":
        real_logits, fake_logits = D(target), D(fake)
        # L_D = 1/2 (-E[log D(y)] - E[log(1 - D(G(x)))])
        loss_D = 0.5 * (bce_real(real_logits) + bce_fake(fake_logits))
    else:
        # The seed's code: one "real" batch, the average of source and target, labelled 1.
        real_logits = D(0.5 * (as_rgb(source) + target))
        loss_D = bce_real(real_logits)
        with torch.no_grad():
            fake_logits = D(fake)
    opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    opt_D.step()
    return {
        "loss_D": loss_D.detach(),
        "D_x": torch.sigmoid(real_logits.detach()).mean(),
        "D_G_z": torch.sigmoid(fake_logits.detach()).mean(),
    }


def pix2pix_g_step(
    G: nn.Module,
    D: nn.Module,
    opt_G: torch.optim.Optimizer,
    source: torch.Tensor,
    target: torch.Tensor,
    *,
    lambda_l1: float = 100.0,
    gan_weight: float = 1.0,
    mode: str = "conditional",
) -> dict[str, torch.Tensor]:
    """(2) Update G: L_G = gan_weight * L_cGAN + lambda_l1 * L_L1. Only G's weights change.

    L_cGAN = -E[log D(x, G(x))] (non-saturating), L_L1 = E ||y - G(x)||_1. ``gan_weight = 0`` is
    the "L1 only" ablation (D is not used), ``lambda_l1 = 0`` the "cGAN only" one. In the
    ``"unconditional"`` and ``"naive"`` modes D sees G(x) alone.
    """
    if mode not in D_MODES:
        raise ValueError(f"mode must be one of {', '.join(D_MODES)}, got {mode!r}.")
    fake = G(source)
    # L_L1 = E ||y - G(x)||_1
    loss_l1 = (fake - target).abs().mean()
    stats = {"loss_l1": loss_l1.detach()}
    loss_G = lambda_l1 * loss_l1
    if gan_weight:
        D.requires_grad_(False)  # gradients flow through D to G, D's own are not needed
        try:
            d_input = torch.cat([source, fake], dim=1) if mode == "conditional" else fake
            # L_cGAN = -E[log D(x, G(x))]
            loss_adv = bce_real(D(d_input))
        finally:
            D.requires_grad_(True)
        # L_G = L_cGAN + lambda L_L1
        loss_G = gan_weight * loss_adv + loss_G
        stats["loss_adv"] = loss_adv.detach()
    opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    opt_G.step()
    return {"loss_G": loss_G.detach(), **stats}


@dataclass
class Pix2PixRun(RunState):
    """A pix2pix run: networks, optimizers, LR schedules, loss weights and training state.

    Args:
        G, D: Generator (source -> target) and discriminator (logits).
        opt_G, opt_D: Their optimizers (the paper: Adam, lr 2e-4, betas (0.5, 0.999)).
        steps: Total steps; the LR decays linearly to 0 over the second half.
        lambda_l1 (float): Weight of the L1 term. Default: 100.
        gan_weight (float): Weight of the cGAN term; 0 trains with L1 only (D is skipped).
            Default: 1.
        d_mode (str): ``"conditional"`` | ``"unconditional"`` | ``"naive"``, see
            :func:`pix2pix_d_step`. Default: ``"conditional"``.
        config: Plain settings; a checkpoint written with other settings is refused on resume.
    """

    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    steps: int
    lambda_l1: float = 100.0
    gan_weight: float = 1.0
    d_mode: str = "conditional"
    config: dict = field(default_factory=dict)
    step: int = 0
    history: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.d_mode not in D_MODES:
            raise ValueError(f"d_mode must be one of {', '.join(D_MODES)}, got {self.d_mode!r}.")
        self.sched_G = linear_decay(self.opt_G, self.steps)
        self.sched_D = linear_decay(self.opt_D, self.steps)
        self.config = {
            **self.config,
            "steps": self.steps,
            "lambda_l1": self.lambda_l1,
            "gan_weight": self.gan_weight,
            "d_mode": self.d_mode,
        }

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    @torch.no_grad()
    def sample(self, source: torch.Tensor) -> torch.Tensor:
        """G(source) in eval mode (running batch-norm statistics, no dropout), in [-1, 1]."""
        return translate(self.G, source)

    def _parts(self) -> dict:
        return {
            "G": self.G,
            "D": self.D,
            "opt_G": self.opt_G,
            "opt_D": self.opt_D,
            "sched_G": self.sched_G,
            "sched_D": self.sched_D,
        }


def fit_pix2pix(
    run: Pix2PixRun,
    batches,
    *,
    hooks: tuple = (),
    log_every: int = 50,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
) -> list[dict]:
    """Train ``run`` to ``run.steps`` on ``(target, source)`` batches in [-1, 1]:
    :func:`pix2pix_d_step`, then :func:`pix2pix_g_step`, then one LR-schedule step.

    Checkpoints, resume, the NaN check and hooks as :func:`ganlib.train.fit`.
    """
    device = run.device

    def step_fn(batch) -> dict[str, torch.Tensor]:
        target, source = (t.to(device, non_blocking=True) for t in batch)
        stats = {}
        if run.gan_weight:
            stats = pix2pix_d_step(run.G, run.D, run.opt_D, source, target, mode=run.d_mode)  # (1)
        stats |= pix2pix_g_step(  # (2)
            run.G,
            run.D,
            run.opt_G,
            source,
            target,
            lambda_l1=run.lambda_l1,
            gan_weight=run.gan_weight,
            mode=run.d_mode,
        )
        run.sched_G.step()
        if run.gan_weight:
            run.sched_D.step()
        return stats

    return _drive(
        run,
        batches,
        run.steps,
        step_fn,
        hooks=hooks,
        log_every=log_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
        desc="pix2pix",
    )


# --- CycleGAN ---------------------------------------------------------------------------------


@dataclass
class CycleGANRun(RunState):
    """A CycleGAN run: two generators, two discriminators, their optimizers and history buffers.

    Args:
        G_AB, G_BA: Generators A -> B (the paper's G) and B -> A (F).
        D_A, D_B: Discriminators of domain A (D_X) and domain B (D_Y), returning raw scores for
            the least-squares loss.
        opt_G, opt_D: One Adam over both generators, one over both discriminators (as the
            reference code).
        steps: Total steps; the LR decays linearly to 0 over the second half.
        lambda_cycle (float): Weight of the cycle loss. Default: 10.
        lambda_identity (float): Weight of the identity loss relative to ``lambda_cycle``.
            Default: 0.5.
        pool_size (int): History buffer size per domain. Default: 50.
        config: Plain settings checked on resume.
    """

    G_AB: nn.Module
    G_BA: nn.Module
    D_A: nn.Module
    D_B: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    steps: int
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    config: dict = field(default_factory=dict)
    step: int = 0
    history: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.pool_A, self.pool_B = ImagePool(self.pool_size, 1), ImagePool(self.pool_size, 2)
        self.sched_G = linear_decay(self.opt_G, self.steps)
        self.sched_D = linear_decay(self.opt_D, self.steps)
        self.config = {
            **self.config,
            "steps": self.steps,
            "lambda_cycle": self.lambda_cycle,
            "lambda_identity": self.lambda_identity,
            "pool_size": self.pool_size,
        }

    @property
    def device(self) -> torch.device:
        return next(self.G_AB.parameters()).device

    @torch.no_grad()
    def sample(self, a: torch.Tensor) -> torch.Tensor:
        """G_AB(a) in eval mode, in [-1, 1]."""
        return translate(self.G_AB, a)

    def _parts(self) -> dict:
        return {
            "G_AB": self.G_AB,
            "G_BA": self.G_BA,
            "D_A": self.D_A,
            "D_B": self.D_B,
            "opt_G": self.opt_G,
            "opt_D": self.opt_D,
            "sched_G": self.sched_G,
            "sched_D": self.sched_D,
            "pool_A": self.pool_A,
            "pool_B": self.pool_B,
        }


def cyclegan_g_step(
    run: CycleGANRun, real_a: torch.Tensor, real_b: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """(1) Update both generators; returns the stats and the (detached) fakes for D.

    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda L_cyc + lambda_id lambda L_idt with
    L_GAN(G, D_B) = E_a[(D_B(G(a)) - 1)^2] (least squares),
    L_cyc = E_a ||F(G(a)) - a||_1 + E_b ||G(F(b)) - b||_1,
    L_idt = E_b ||G(b) - b||_1 + E_a ||F(a) - a||_1.
    """
    G, F_, D_A, D_B = run.G_AB, run.G_BA, run.D_A, run.D_B
    for d in (D_A, D_B):
        d.requires_grad_(False)
    try:
        fake_b, fake_a = G(real_a), F_(real_b)  # G(a) in B, F(b) in A
        rec_a, rec_b = F_(fake_b), G(fake_a)  # the round trips
        # L_GAN = E[(D_B(G(a)) - 1)^2] + E[(D_A(F(b)) - 1)^2]
        loss_gan = lsgan_loss(D_B(fake_b), 1.0) + lsgan_loss(D_A(fake_a), 1.0)
        # L_cyc = E||F(G(a)) - a||_1 + E||G(F(b)) - b||_1
        loss_cyc = cycle_consistency_loss(real_a, rec_a) + cycle_consistency_loss(real_b, rec_b)
        loss_G = loss_gan + run.lambda_cycle * loss_cyc
        stats = {"loss_gan": loss_gan.detach(), "loss_cycle": loss_cyc.detach()}
        if run.lambda_identity:
            # L_idt = E||G(b) - b||_1 + E||F(a) - a||_1: G should leave B images alone
            loss_idt = (G(real_b) - real_b).abs().mean() + (F_(real_a) - real_a).abs().mean()
            loss_G = loss_G + run.lambda_identity * run.lambda_cycle * loss_idt
            stats["loss_identity"] = loss_idt.detach()
        run.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        run.opt_G.step()
    finally:
        for d in (D_A, D_B):
            d.requires_grad_(True)
    return {"loss_G": loss_G.detach(), **stats}, fake_a.detach(), fake_b.detach()


def cyclegan_d_step(
    run: CycleGANRun,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    fake_a: torch.Tensor,
    fake_b: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """(2) Update both discriminators on real images and fakes drawn through the history buffers.

    L_D_B = 1/2 (E_b[(D_B(b) - 1)^2] + E[D_B(G(a))^2]), and L_D_A alike.
    """
    fake_b, fake_a = run.pool_B.query(fake_b), run.pool_A.query(fake_a)
    out_real_b, out_fake_b = run.D_B(real_b), run.D_B(fake_b)
    out_real_a, out_fake_a = run.D_A(real_a), run.D_A(fake_a)
    # L_D = 1/2 (E[(D(real) - 1)^2] + E[D(fake)^2]), for D_B and D_A
    loss_D_B = 0.5 * (lsgan_loss(out_real_b, 1.0) + lsgan_loss(out_fake_b, 0.0))
    loss_D_A = 0.5 * (lsgan_loss(out_real_a, 1.0) + lsgan_loss(out_fake_a, 0.0))
    run.opt_D.zero_grad(set_to_none=True)
    (loss_D_A + loss_D_B).backward()
    run.opt_D.step()
    return {
        "loss_D": (loss_D_A + loss_D_B).detach(),
        # LSGAN scores: near 1 = "real", near 0 = "fake"
        "D_x": out_real_b.detach().mean(),
        "D_G_z": out_fake_b.detach().mean(),
    }


class ZipBatches:
    """Draw from two batch iterators in lock step (domain A and domain B), checkpointable."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __iter__(self):
        return self

    def __next__(self):
        a, b = next(self.a), next(self.b)
        a = a[0] if isinstance(a, tuple | list) else a
        b = b[0] if isinstance(b, tuple | list) else b
        return a, b

    def state_dict(self) -> dict:
        return {"a": self.a.state_dict(), "b": self.b.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.a.load_state_dict(state["a"])
        self.b.load_state_dict(state["b"])


def fit_cyclegan(
    run: CycleGANRun,
    batches: ZipBatches,
    *,
    hooks: tuple = (),
    log_every: int = 50,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
) -> list[dict]:
    """Train ``run`` to ``run.steps`` on ``(a, b)`` batches of *unrelated* images in [-1, 1]:
    :func:`cyclegan_g_step`, then :func:`cyclegan_d_step` (the reference code's order)."""
    device = run.device

    def step_fn(batch) -> dict[str, torch.Tensor]:
        real_a, real_b = (t.to(device, non_blocking=True) for t in batch)
        stats, fake_a, fake_b = cyclegan_g_step(run, real_a, real_b)  # (1) G and F
        stats |= cyclegan_d_step(run, real_a, real_b, fake_a, fake_b)  # (2) D_A and D_B
        run.sched_G.step()
        run.sched_D.step()
        return stats

    return _drive(
        run,
        batches,
        run.steps,
        step_fn,
        hooks=hooks,
        log_every=log_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
        desc="CycleGAN",
    )


# --- Inference and evaluation -----------------------------------------------------------------


@torch.no_grad()
def translate(G: nn.Module, source: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """G(source) in eval mode (batch norm with running statistics, dropout off), in batches."""
    check_images(source, name="source images")
    was_training = G.training
    G.eval()
    try:
        device = next(G.parameters()).device
        outs = [G(chunk.to(device)).float().cpu() for chunk in source.split(batch_size)]
    finally:
        G.train(was_training)
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


# --- Memory -----------------------------------------------------------------------------------


def cyclegan_memory_probe(
    size: int, width: int = 64, n_blocks: int = 9, steps: int = 2, device: str = "cpu"
) -> dict:
    """Peak memory of CycleGAN training steps at ``size`` x ``size``, batch 1.

    Builds the full CycleGAN (two ResNet generators, two 70x70 PatchGANs with instance norm, Adam)
    and takes ``steps`` steps. On CPU it reports the process's peak resident memory (RSS,
    ``VmHWM`` on Linux): run it in a fresh process, since the peak RSS of a process never goes
    down. On CUDA it reports ``torch.cuda.max_memory_allocated`` (tensors) and
    ``max_memory_reserved`` (the allocator's cache) during the steps.

    Returns:
        ``size``, ``params`` and, in MiB: ``base_mib`` (before building), ``peak_mib``, and
        ``training_mib`` = peak - base; on CUDA also ``reserved_mib``.
    """
    import resource

    from ganlib.models.pix2pix import PatchDiscriminator
    from ganlib.models.resnet import ResnetImageGenerator

    dev = torch.device(device)
    cuda = dev.type == "cuda"

    def peak_mib() -> float:
        if cuda:
            return torch.cuda.max_memory_allocated(dev) / 2**20
        # VmHWM: this address space's peak RSS. ru_maxrss would do elsewhere, but Linux carries it
        # over from the parent across fork + exec, so a child of a big process reports the parent's.
        status = Path("/proc/self/status")
        if status.is_file():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB -> MiB
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux/BSD: KiB

    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    base = peak_mib()
    torch.manual_seed(0)
    nets = [ResnetImageGenerator(3, 3, width, n_blocks).to(dev) for _ in range(2)]
    nets += [PatchDiscriminator(3, width, 3, norm="instance").to(dev) for _ in range(2)]
    run = CycleGANRun(
        *nets,
        opt_G=torch.optim.Adam(itertools.chain(*(n.parameters() for n in nets[:2])), 2e-4),
        opt_D=torch.optim.Adam(itertools.chain(*(n.parameters() for n in nets[2:])), 2e-4),
        steps=steps,
    )
    a = torch.rand(1, 3, size, size, device=dev) * 2 - 1
    b = torch.rand(1, 3, size, size, device=dev) * 2 - 1
    for _ in range(steps):
        _, fa, fb = cyclegan_g_step(run, a, b)
        cyclegan_d_step(run, a, b, fa, fb)
    peak = peak_mib()
    out = {
        "size": size,
        "device": dev.type,
        "base_mib": base,
        "peak_mib": peak,
        "training_mib": peak - base,
        "params": sum(p.numel() for n in nets for p in n.parameters()),
    }
    if cuda:
        out["reserved_mib"] = torch.cuda.max_memory_reserved(dev) / 2**20
    return out


def activation_elements(model: nn.Module, x: torch.Tensor) -> int:
    """Number of output elements of every leaf module in one forward pass: a rough count of the
    activations autograd keeps for the backward pass."""
    total = 0

    def hook(_, __, out):
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


# --- Downloadable datasets --------------------------------------------------------------------

# SHA-256 and sizes of the CycleGAN archives, as listed by TensorFlow Datasets
# (tensorflow_datasets/url_checksums/cycle_gan.txt).
CYCLEGAN_SETS = {
    "facades": ("9a31ebf3a31b9b5cd195dd5bf62e9308e00cb94604d1019e3889ac84248695c0", 35135868),
    "horse2zebra": ("a74d9d392eecca9966b51287a76ca126af473d9de4f3e8fc0e9cda08fa1730a1", 116867962),
    "apple2orange": ("845a191e9af8926408ea597001cd03a452e3300a1f44a79fe329b3d59f6e3eb8", 78456409),
}
CYCLEGAN_URLS = (
    "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip",  # official
    "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/{name}.zip",  # former home
)
PIX2PIX_URLS = (
    "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz",  # official
    "https://people.eecs.berkeley.edu/~tinghuiz/projects/pix2pix/datasets/{name}.tar.gz",
)


def fetch_cyclegan_set(name: str) -> Path:
    """Download (or find in the cache or mirror) a CycleGAN dataset, check it, unzip it.

    Returns the folder with ``trainA``, ``trainB``, ``testA``, ``testB``. Offline it raises
    :class:`ganlib.data.DatasetUnavailable` saying where it looked.
    """
    if name not in CYCLEGAN_SETS:
        raise ValueError(
            f"Unknown CycleGAN set {name!r}; choose one of {', '.join(CYCLEGAN_SETS)}."
        )
    digest, _ = CYCLEGAN_SETS[name]
    archive = fetch_file(
        f"cyclegan/{name}.zip",
        digest,
        [u.format(name=name) for u in CYCLEGAN_URLS],
        dataset=f"CycleGAN {name}",
        algorithm="sha256",
    )
    folder = archive.parent / name
    if not (folder / "trainA").is_dir():
        with zipfile.ZipFile(archive) as z:
            z.extractall(archive.parent)
    return folder


def fetch_pix2pix_set(name: str = "facades", sha256: str | None = None) -> Path:
    """The paired pix2pix archive ``{name}.tar.gz`` (facades, maps, ...), extracted.

    No checksum of these archives is published by their authors or by a dataset library that we
    could find, and ganlib never uses an unverified download: pass the SHA-256 of a copy you
    trust (``sha256=...``), or use :func:`fetch_cyclegan_set` (``"facades"``), whose archive
    has a published checksum. Each image in the archive is a side-by-side pair A|B.
    """
    if sha256 is None:
        where = data_root() / "pix2pix" / f"{name}.tar.gz"
        raise DatasetUnavailable(
            f"pix2pix {name}: no published checksum is known for {name}.tar.gz, so ganlib will not "
            "download it unverified.\nTo fix: download it yourself from "
            f"{PIX2PIX_URLS[0].format(name=name)}, check it, and call "
            f"fetch_pix2pix_set({name!r}, sha256='<its sha256>') (the file may also be put at "
            f"{where}); or use the same pairs from CycleGAN's checksummed archive: "
            f"paired_files(fetch_cyclegan_set({name!r}))."
        )
    import tarfile

    archive = fetch_file(
        f"pix2pix/{name}.tar.gz",
        sha256,
        [u.format(name=name) for u in PIX2PIX_URLS],
        dataset=f"pix2pix {name}",
        algorithm="sha256",
    )
    folder = archive.parent / name
    if not folder.is_dir():
        with tarfile.open(archive) as tar:
            tar.extractall(archive.parent, filter="data")
    return folder


def paired_files(folder: str | os.PathLike, split: str = "train") -> list[tuple[Path, Path]]:
    """Pairs ``(a, b)`` of a CycleGAN folder whose A and B sides are the same scenes, by file name.

    CycleGAN's ``facades`` and ``maps`` archives hold the pix2pix pairs split into ``trainA`` and
    ``trainB`` (``1_A.jpg`` with ``1_B.jpg``, ...); their SHA-256 is published, unlike the pix2pix
    archives'. Files pair up by the name without its ``_A``/``_B`` suffix; a file without a
    partner is an error, so an unpaired set (horse2zebra) is never mistaken for a paired one.
    """
    folder = Path(folder)
    sides = {}
    for side in "AB":
        sub = folder / f"{split}{side}"
        if not sub.is_dir():
            raise FileNotFoundError(
                f"{sub} does not exist; expected {split}A/ and {split}B/ in {folder}."
            )
        sides[side] = {p.stem.removesuffix(f"_{side}"): p for p in list_images(sub)}
    only_a = sorted(sides["A"].keys() - sides["B"].keys())
    only_b = sorted(sides["B"].keys() - sides["A"].keys())
    if only_a or only_b:
        raise ValueError(
            f"{folder}: {len(only_a)} {split}A files and {len(only_b)} {split}B files have no "
            f"partner (e.g. {(only_a + only_b)[:3]}); this is not a paired set. Use it unpaired "
            "(CycleGAN), or pass a folder whose A/B files are named <key>_A / <key>_B."
        )
    return [(sides["A"][k], sides["B"][k]) for k in sorted(sides["A"])]


def split_pairs(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A pix2pix side-by-side image (3, H, 2W) -> its halves (A, B), each (3, H, W)."""
    _check_uint8_rgb(img)
    w = img.shape[2]
    if w % 2:
        raise ValueError(f"A side-by-side pair has an even width, got {w}.")
    return img[:, :, : w // 2], img[:, :, w // 2 :]


# --- The interactive widget -------------------------------------------------------------------


def translation_widget(
    models: dict, images: dict[str, torch.Tensor], multiple: int, max_side: int = 256
):
    """Choose (or upload) a photo and a model, see source | translation side by side.

    Args:
        models: ``{label: (G, task)}``; ``task`` tells how the source is made from the photo.
        images: ``{name: uint8 RGB (3, H, W)}`` offered in the dropdown.
        multiple: The generators' size multiple (2^depth).
        max_side: Larger photos are shrunk to this longer side first (CPU time). Default: 256.

    Returns:
        An ``ipywidgets.VBox``; ``box.image_menu``, ``box.model_menu``, ``box.upload``,
        ``box.output`` and ``box.render(name, label)`` are its parts.
    """
    import io

    import ipywidgets as widgets
    from PIL import Image

    photos_ = dict(images)

    def shrink(img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[1:]
        scale = max_side / max(h, w)
        if scale >= 1:
            return img
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        return F.interpolate(img[None].float(), size=size, mode="area")[0].round().byte()

    def png(img: torch.Tensor) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, format="png")
        return buf.getvalue()

    def render(name: str, label: str) -> bytes:
        G, task = models[label]
        img = shrink(photos_[name])
        src = as_rgb(make_source(img, task)[None])[0] if task != "edges" else img
        out = translate_image(G, img, task, multiple)
        return png(
            torch.cat([src, torch.full((3, img.shape[1], 4), 255, dtype=torch.uint8), out], 2)
        )

    image_menu = widgets.Dropdown(options=list(photos_), description="image")
    model_menu = widgets.Dropdown(options=list(models), description="model")
    upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload")
    output = widgets.Image(format="png")
    message = widgets.Label()

    def update(_=None):
        try:
            output.value = render(image_menu.value, model_menu.value)
            message.value = "source | translation"
        except ValueError as err:  # a bad upload: say why, keep the widget alive
            message.value = f"cannot translate this image: {err}"

    def on_upload(change):
        files = change["new"]
        if not files:
            return
        item = files[0] if isinstance(files, list | tuple) else next(iter(files.values()))
        name = getattr(item, "name", None) or item.get("name", "upload")
        content = getattr(item, "content", None) or item.get("content")
        try:
            with Image.open(io.BytesIO(bytes(content))) as im:
                rgb = np.asarray(im.convert("RGB"))  # grayscale repeated, alpha dropped
        except Exception as err:  # noqa: BLE001 - any unreadable upload gets the same message
            message.value = f"{name} is not a readable image: {err}"
            return
        photos_[name] = torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()
        image_menu.options = list(photos_)
        image_menu.value = name

    image_menu.observe(update, names="value")
    model_menu.observe(update, names="value")
    upload.observe(on_upload, names="value")
    update()
    box = widgets.VBox([widgets.HBox([image_menu, model_menu, upload]), message, output])
    box.image_menu, box.model_menu, box.upload, box.output, box.message = (
        image_menu,
        model_menu,
        upload,
        output,
        message,
    )
    box.render = render
    return box
