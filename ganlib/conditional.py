"""The class-conditional GAN of lesson 03: its run, its training step, and sampling by class.

One iteration (:func:`conditional_gan_step`) is Algorithm 1 with a label beside every image.
A batch is ``(images, labels)`` from ``ganlib.data.Batches(images, labels, batch_size=B)``; G
draws digits of the *same labels* as the real batch, so D sees real and fake digits of each
class in equal numbers:

1. update D on real pairs (x, y) against fake pairs (G(z, y), y);
2. update G to make D call (G(z, y), y) real.

The networks are :class:`ganlib.models.conditional.ConditionalGenerator` ``G(z, y)`` and
:class:`ganlib.models.conditional.ConditionalDiscriminator` ``D(x, y)`` (logits, no sigmoid).
Train with ``ganlib.train.fit(run, conditional_gan_step, batches, steps)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganlib.gan import GANRun
from ganlib.losses import D_LOSSES, G_LOSSES, discriminator_outputs
from ganlib.train import evaluating, frozen


@dataclass
class ConditionalGANRun(GANRun):
    """A :class:`ganlib.gan.GANRun` for G(z, y) and D(x, y), plus DiffAugment's translation.

    Args:
        shift (int): DiffAugment-style translation (Zhao et al. 2020): every image D sees in
            training, real or fake, is shifted by up to ``shift`` pixels (filled with -1, the
            background). The same random, differentiable operation is applied to real and fake
            images, so G is not taught to shift its digits; D just memorises the few real
            images less easily. 0 turns it off. Default: 0.

    ``z_dim`` defaults to ``G.z_dim``. Every iteration is one D step and one G step
    (``n_dis = 1``, ``share_fake = False``).
    """

    shift: int = 0

    _settings = (*GANRun._settings, "shift")
    _shares_fake_by_default = False  # one D step and one G step, each with its own G pass

    def __post_init__(self):
        if self.z_dim is None:
            self.z_dim = self.G.z_dim
        if self.n_dis != 1 or self.share_fake:
            raise ValueError(
                f"conditional_gan_step makes one D step and one G step per iteration; got "
                f"n_dis={self.n_dis}, share_fake={self.share_fake}. Use the defaults."
            )
        if self.shift < 0:
            raise ValueError(f"shift must be >= 0 pixels, got {self.shift}.")
        super().__post_init__()


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Move image i down by ``dy[i]`` and right by ``dx[i]`` pixels (negative: up, left).

    out[i, :, r, c] = x[i, :, r - dy[i], c - dx[i]] where that pixel exists, else -1 (the
    background of digits in the model range). Differentiable in ``x``: each output pixel is
    one input pixel or the constant fill, so G's gradient passes through to the pixels kept.

    Args:
        x: Images (B, C, H, W).
        dy, dx: Integer offsets (B,) in pixels.
    """
    b, _, h, w = x.shape
    m = int(max(dy.abs().max(), dx.abs().max())) if b else 0
    padded = F.pad(x, (m,) * 4, value=-1.0)  # (B, C, H + 2m, W + 2m); x[r] sits at row r + m
    rows = (m - dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (m - dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[bi, ci, rows, cols]  # (B, C, H, W)


def random_shift(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """:func:`translate` each image by its own random (dy, dx), each in [-max_shift, max_shift].

    ``max_shift = 0`` returns ``x`` itself (and draws no random numbers).
    """
    if max_shift == 0:
        return x
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, x.shape[0]), device=x.device)
    return translate(x, dy, dx)


def conditional_gan_step(run: ConditionalGANRun, batch) -> dict[str, torch.Tensor]:
    """One D step, then one G step, on ``batch = (real images (B, C, H, W), labels (B,))``."""
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise ValueError("conditional_gan_step needs (images, labels) batches: Batches(x, y, ...).")
    real, y = batch
    z = run.noise(len(y))  # the same (z, y) in both steps; y are the real batch's labels
    # (1) Update D: real digits with their labels against G's digits of the same labels
    with torch.no_grad(), run.precision.autocast():
        fake = run.G(z, y)  # no graph through G: this step does not train it
    with run.precision.autocast():
        real_logits = run.D(random_shift(real, run.shift), y)
        fake_logits = run.D(random_shift(fake, run.shift), y)
        # L_D = -E_{x,y}[log D(x, y)] - E_{z,y}[log(1 - D(G(z, y), y))]
        loss_D = D_LOSSES[run.d_loss](real_logits.float(), fake_logits.float())
    run.precision.update(loss_D, run.opt_D, "D")
    # (2) Update G: make D call (G(z, y), y) a real digit of class y
    with frozen(run.D), run.precision.autocast():  # gradients flow through D, not into it
        fake_logits_G = run.D(random_shift(run.G(z, y), run.shift), y)
        # L_G = -E_{z,y}[log D(G(z, y), y)]  (non-saturating)
        loss_G = G_LOSSES[run.g_loss](fake_logits_G.float())
    run.precision.update(loss_G, run.opt_G, "G")
    return {
        "loss_D": loss_D.detach(),
        "loss_G": loss_G.detach(),
        **discriminator_outputs(run.d_loss, real_logits, fake_logits),
    }


def sample_digits(G, labels: torch.Tensor, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Digits of the given classes from G(z, y) in eval mode, (N, C, 28, 28) in [-1, 1], on the CPU.

    The noise comes from its own generator seeded with ``seed``: the same seed and labels give
    the same digits.
    """
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    out = []
    with evaluating(G):
        for i in range(0, len(labels), batch_size):
            y = labels[i : i + batch_size].to(device)
            z = torch.randn(len(y), G.z_dim, generator=gen).to(device)
            out.append(G(z, y).float().cpu())
    return torch.cat(out)
