"""Lesson 02, super-resolution: the evaluation protocol, training data, SRGAN's training step,
SR checkpoints, and inference on uint8 images.

Protocol (as in SRCNN, VDSR, SRGAN and their tables): crop the HR image to a multiple of the
scale, make the LR image with MATLAB-style bicubic downscaling (``ganlib.degrade``), upscale it,
quantise to uint8, and compare PSNR/SSIM on the Y channel with ``scale`` border pixels removed.

Training: SRCNN and SRResNet are trained with ``fit(run, supervised_step, patches, steps)``
(:mod:`ganlib.train`), SRGAN with ``fit(run, srgan_step, patches, steps)`` on an
:class:`SRGANRun`; ``patches`` is an :class:`SRPatches` of (HR, LR) pairs from
:func:`make_sr_pairs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganlib.checkpoint import load_checkpoint, load_module_state, save_checkpoint
from ganlib.degrade import imresize, make_lr, modcrop
from ganlib.gan import GANRun, d_step
from ganlib.images import list_images, load_image, to_model_range, to_unit_range
from ganlib.losses import G_LOSSES, d_loss, g_loss_nonsaturating, mse_loss
from ganlib.metrics import psnr, rgb_to_y, ssim, to_255
from ganlib.models.sr import SR_MODELS
from ganlib.train import evaluating, frozen

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
    """Wrap a network (model range [-1, 1]) as a uint8 -> uint8 upscaler.

    Each call runs the network in eval mode (batch norm with its running statistics) and restores
    its mode after, so a network still being trained can be evaluated between training runs.
    """
    scale = model.scale
    device = torch.device(device)

    def upscale(lr: torch.Tensor) -> torch.Tensor:
        x = imresize(lr, scale) if getattr(model, "pre_upsample", False) else lr
        with evaluating(model):
            y = model(to_model_range(x[None]).to(device))
        return (to_unit_range(y)[0] * 255.0).round().byte().cpu()

    return upscale


def laplacian_energy(img: torch.Tensor, crop: int = 0) -> float:
    """Mean squared Laplacian of an image's Y channel (uint8 or [0, 1]; Y in [16, 235]).

    The Laplacian responds to detail at the finest scale (edges, texture, noise), so this is the
    image's high-frequency energy; ``crop`` pixels are removed from every border first.
    """
    y = rgb_to_y(to_255(img))  # (B, 1, H, W)
    if crop:
        y = y[..., crop:-crop, crop:-crop]
    # L = y[i-1, j] + y[i+1, j] + y[i, j-1] + y[i, j+1] - 4 y[i, j]
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=y.dtype)
    lap = torch.nn.functional.conv2d(y, kernel.view(1, 1, 3, 3))  # (B, 1, H-2, W-2)
    return float((lap**2).mean())


def hf_ratio(sr: torch.Tensor, hr: torch.Tensor, crop: int = 0) -> float:
    """High-frequency energy of ``sr`` over that of ``hr`` (:func:`laplacian_energy` on Y).

    1 = as much fine detail as the HR image, whether or not it sits in the right places; below 1
    = smoother than HR (a pixel-loss network's average guess is); above 1 = more (noise, ringing).
    """
    return laplacian_energy(sr, crop) / laplacian_energy(hr, crop)


def evaluate_sr(
    upscale: Upscaler, images: list[tuple[str, torch.Tensor]], scale: int, channel: str = "y"
) -> list[dict]:
    """PSNR, SSIM and :func:`hf_ratio` of ``upscale`` on HR ``images`` under the protocol; one
    row per image."""
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
                "hf_ratio": hf_ratio(sr, hr, crop=scale),
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


# --- Training data ------------------------------------------------------------------------------


def make_sr_pairs(
    images: list[tuple[str, torch.Tensor]], scale: int, progress: bool = True
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(HR, LR) uint8 pairs: HR cropped to a multiple of ``scale``, LR by the protocol's bicubic.

    LR images are cached in ``data/sr/cache`` (keyed by image name, size and scale), so only the
    first run pays for the MATLAB-style resize.
    """
    from tqdm.auto import tqdm

    from ganlib.fetch import data_root

    cache_dir = data_root() / "sr" / "cache"
    pairs = []
    for name, hr in tqdm(images, desc=f"LR images x{scale}", disable=not progress):
        hr = modcrop(hr, scale)
        cached = cache_dir / f"{name}_{hr.shape[1]}x{hr.shape[2]}_x{scale}.pt"
        lr = torch.load(cached, weights_only=True) if cached.is_file() else None
        if lr is None or lr.shape != (3, hr.shape[1] // scale, hr.shape[2] // scale):
            lr = make_lr(hr, scale)
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")
            torch.save(lr, tmp)
            tmp.replace(cached)
        pairs.append((hr, lr))
    return pairs


class SRPatches:
    """Endless batches of aligned (HR, LR) patches in [-1, 1], with random flips and 90-degree turns.

    Patches are cut at the same place from an HR image and its LR version (LR position x scale =
    HR position), as BasicSR does; flips and rotations are applied to both alike.

    Args:
        pairs: (HR, LR) uint8 pairs from :func:`make_sr_pairs`.
        scale: The SR factor.
        patch: HR patch side in pixels (a multiple of ``scale``); SRGAN uses 96. Default: 96.
        batch_size: Patches per batch. Default: 16.
        seed: Seed of the sampler's own generator. Default: 0.
        device: Where batches are delivered.
        upsample_input: Deliver the LR patch bicubic-upscaled to HR size (for SRCNN). Default: False.
    """

    RESIDENT_BYTES = 2**30

    def __init__(
        self,
        pairs,
        scale: int,
        patch: int = 96,
        batch_size: int = 16,
        seed: int = 0,
        device="cpu",
        upsample_input: bool = False,
    ):
        if patch % scale:
            raise ValueError(f"patch ({patch}) must be a multiple of the scale ({scale}).")
        usable = [(hr, lr) for hr, lr in pairs if min(hr.shape[1:]) >= patch]
        if not usable:
            raise ValueError(
                f"All {len(pairs)} training images are smaller than the {patch}px patch."
            )
        if len(usable) < len(pairs):
            print(
                f"SRPatches: skipping {len(pairs) - len(usable)} image(s) smaller than {patch}x{patch} pixels."
            )
        self.device = torch.device(device)
        # The images live where the batches are made: on a GPU, cropping, flips and the conversion
        # to floats run there and only the random numbers come from the host (the same stream on
        # any device). Sets over RESIDENT_BYTES (DIV2K: ~5 GB) stay in host memory.
        nbytes = sum(hr.numel() + lr.numel() for hr, lr in usable)
        home = self.device if nbytes <= self.RESIDENT_BYTES else torch.device("cpu")
        self.pairs = [(hr.to(home), lr.to(home)) for hr, lr in usable]
        self.scale, self.patch, self.batch_size = scale, patch, batch_size
        self.upsample_input = upsample_input
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        g, s, lp = self.generator, self.scale, self.patch // self.scale
        his, los = [], []
        for k in torch.randint(len(self.pairs), (self.batch_size,), generator=g).tolist():
            hr, lr = self.pairs[k]
            y = int(torch.randint(lr.shape[1] - lp + 1, (1,), generator=g))
            x = int(torch.randint(lr.shape[2] - lp + 1, (1,), generator=g))
            h = hr[:, y * s : (y + lp) * s, x * s : (x + lp) * s]
            l_ = lr[:, y : y + lp, x : x + lp]
            turns, flip = (
                int(torch.randint(4, (1,), generator=g)),
                bool(torch.randint(2, (1,), generator=g)),
            )
            if flip:
                h, l_ = h.flip(-1), l_.flip(-1)
            l_ = torch.rot90(l_, turns, (1, 2))
            his.append(torch.rot90(h, turns, (1, 2)))
            # the MATLAB-style resize runs in NumPy, on the host
            los.append(imresize(l_.cpu(), s).to(l_.device) if self.upsample_input else l_)
        hr_b = to_model_range(torch.stack(his)).to(self.device, non_blocking=True)
        lr_b = to_model_range(torch.stack(los)).to(self.device, non_blocking=True)
        return hr_b, lr_b  # (B, 3, P, P), (B, 3, P/s, P/s) or (B, 3, P, P) when upsampled

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


# --- SRGAN: the run and its training step ------------------------------------------------------


@dataclass
class SRGANRun(GANRun):
    """SRGAN (Ledig et al. 2017): a GAN whose G maps LR images to HR ones, trained on
    l_SR = l_content + adv_weight * l_adv by :func:`srgan_step`.

    Args (besides :class:`ganlib.gan.GANRun`'s; ``z_dim`` stays None: G takes images):
        content_loss: ``f(sr, hr) -> loss`` on model-range images, e.g.
            :class:`ganlib.losses.VGGContentLoss` (the paper's VGG loss) or
            :func:`ganlib.losses.mse_loss` ("SRGAN-MSE"). Recorded in ``config`` by name.
            Default: ``mse_loss``.
        adv_weight (float): Weight of the adversarial term; the paper uses 1e-3. Default: 1e-3.

    ``share_fake`` defaults to False here: its quality was measured for DCGAN only, and the
    SRGAN step written out in notebook 02 runs G twice. Pass ``share_fake=True`` for one G
    forward per iteration (1.04-1.32x faster, the same G update; benchmarks/RESULTS.md).
    """

    content_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = mse_loss
    adv_weight: float = 1e-3

    _settings = (*GANRun._settings, "content_loss", "adv_weight")
    _shares_fake_by_default = False

    def __post_init__(self):
        if self.n_dis != 1:
            raise ValueError(
                f"SRGAN pairs every HR patch with its own LR patch, so n_dis must be 1, got "
                f"{self.n_dis}."
            )
        if not callable(self.content_loss):
            raise ValueError(
                f"content_loss must be a function f(sr, hr) -> loss, got "
                f"{type(self.content_loss).__name__}; e.g. ganlib.losses.mse_loss."
            )
        super().__post_init__()


def srgan_g_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    fake_logits: torch.Tensor,
    content_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = mse_loss,
    adv_weight: float = 1e-3,
) -> torch.Tensor:
    """SRGAN's perceptual generator loss, l_SR = l_content + adv_weight * l_adv.

    Args:
        sr, hr: G's output and the HR target (B, C, H, W), model range [-1, 1].
        fake_logits: D's logits for ``sr`` (B,).
        content_loss: ``f(sr, hr) -> loss``. Default: pixel MSE (SRGAN-MSE).
        adv_weight: The weight of l_adv. Default: 1e-3 (the paper's).
    """
    # l_SR = l_content + adv_weight * l_adv, with l_adv = -mean log D(G(I_LR))
    return content_loss(sr, hr) + adv_weight * g_loss_nonsaturating(fake_logits)


def srgan_d_loss(D: nn.Module, hr: torch.Tensor, sr: torch.Tensor) -> torch.Tensor:
    """SRGAN's discriminator loss on HR vs super-resolved images; ``sr`` is detached (trains D only).

    L_D = -mean log D(I_HR) - mean log(1 - D(G(I_LR))), with D returning logits.
    """
    # L_D = -log D(I_HR) - log(1 - D(G(I_LR)))
    return d_loss(D(hr), D(sr.detach()))


def srgan_step(run: SRGANRun, batch) -> dict[str, torch.Tensor]:
    """One SRGAN iteration on ``batch = (hr, lr)``: (1) D learns to tell the HR patches from
    G(LR); (2) G minimises the content loss plus the weighted adversarial loss."""
    hr, lr = batch
    with torch.set_grad_enabled(run.share_fake), run.precision.autocast():
        fake = run.G(lr)  # no graph through G, unless G's step reuses this output (share_fake)
    # (1) L_D = -log D(I_HR) - log(1 - D(G(I_LR)))
    stats = d_step(run, hr, fake)
    # (2) G; gradients flow through D, not into its weights
    with frozen(run.D), run.precision.autocast():
        sr = fake if run.share_fake else run.G(lr)  # (B, 3, H, W) from (B, 3, H/s, W/s)
        # l_content = (1/WH) sum (phi(I_HR) - phi(G(I_LR)))^2  (phi = VGG features, or pixels)
        loss_content = run.content_loss(sr.float(), hr)
        # l_adv = -log D(G(I_LR))
        loss_adv = G_LOSSES[run.g_loss](run.D(sr).float())
        # l_SR = l_content + adv_weight * l_adv
        loss_G = loss_content + run.adv_weight * loss_adv
    run.precision.update(loss_G, run.opt_G, "G")
    return stats | {
        "loss_G": loss_G.detach(),
        "loss_content": loss_content.detach(),
        "loss_adv": loss_adv.detach(),
    }


# --- Tiled inference ------------------------------------------------------------------------------


def upscale_tiled(
    model: nn.Module,
    lr: torch.Tensor,
    tile: int | None = 128,
    overlap: int | None = None,
    as_float: bool = False,
) -> torch.Tensor:
    """Upscale a uint8 LR image (3, h, w) in tiles, so memory does not grow with the image.

    Each tile of ``tile`` x ``tile`` LR pixels is run with ``overlap`` extra pixels of real context
    on every side (default: the model's receptive radius), and only its centre is kept. With
    overlap >= the receptive radius, the result equals untiled inference up to float rounding.

    The network runs in eval mode (its own mode is restored after). Tiles are cut and quantised on
    the model's device; only uint8 pixels come back. ``tile=None`` picks it from the free GPU
    memory (:func:`auto_tile`).

    Returns:
        uint8 (3, s*h, s*w); with ``as_float``, the unquantised model output in [-1, 1] instead.
    """
    if lr.dtype != torch.uint8 or lr.ndim != 3 or lr.shape[0] != 3:
        raise ValueError(
            f"upscale_tiled takes a uint8 RGB image (3, h, w), got {lr.dtype} {tuple(lr.shape)}."
        )
    s = model.scale
    overlap = getattr(model, "receptive_radius", 16) if overlap is None else overlap
    device = next(model.parameters()).device
    tile = auto_tile(model, overlap) if tile is None else tile
    if tile < 8:
        raise ValueError(f"tile must be at least 8 LR pixels, got {tile}.")
    _, h, w = lr.shape
    out = torch.empty(3, h * s, w * s, dtype=torch.float32 if as_float else torch.uint8)
    x_full = to_model_range(lr[None].to(device))  # (1, 3, h, w) on the model's device
    corners = [(y0, x0) for y0 in range(0, h, tile) for x0 in range(0, w, tile)]
    with evaluating(model):
        for y0, x0 in corners:
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - overlap, 0), max(x0 - overlap, 0)
            yb, xb = min(y1 + overlap, h), min(x1 + overlap, w)
            y_tile = model(x_full[..., ya:yb, xa:xb])
            core = y_tile[0, :, (y0 - ya) * s : (y1 - ya) * s, (x0 - xa) * s : (x1 - xa) * s]
            core = core.float() if as_float else (to_unit_range(core.float()) * 255).round().byte()
            out[:, y0 * s : y1 * s, x0 * s : x1 * s] = core.cpu()  # uint8 crosses to the host
    return out


def auto_tile(model: nn.Module, overlap: int, free_bytes: int | None = None) -> int:
    """The LR tile side for :func:`upscale_tiled`: 128 on a CPU; on a GPU the largest power of
    two (<= 1024) whose estimated activations fit in half the free memory.

    Estimate: a few live float32 feature maps of ``width`` channels at the HR size of the tile
    with its overlap, 3 * 4 bytes * width * (scale * (tile + 2 overlap))^2 (the upsampling stage
    dominates SRResNet's memory).
    """
    device = next(model.parameters()).device
    if free_bytes is None:
        if device.type != "cuda":
            return 128
        free_bytes, _ = torch.cuda.mem_get_info(device)
    width = getattr(getattr(model, "head", [None])[0], "out_channels", 64)
    tile = 1024
    while tile > 8 and 12 * width * (model.scale * (tile + 2 * overlap)) ** 2 > free_bytes / 2:
        tile //= 2
    return tile
