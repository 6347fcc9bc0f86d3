"""pix2pix (Isola et al. 2017): paired image-to-image translation with a conditional GAN (notebook 05).

One iteration, :func:`pix2pix_step`, on a batch ``(target, source)`` = (y, x) in [-1, 1]:

1. :func:`pix2pix_d_step` updates D on pairs: (x, y) real, (x, G(x)) fake, see
   :func:`conditional_d_loss`;
2. :func:`pix2pix_g_step` updates G on L_G = L_cGAN + lambda * L_L1 with lambda = 100;
3. both learning rates follow :func:`linear_decay` (constant, then linearly down to 0 over the
   second half).

The paper's optimizer is Adam, lr 2e-4, betas (0.5, 0.999), for G and D. Train with
``ganlib.train.fit(run, pix2pix_step, batches, run.steps)``. D returns logits (no sigmoid); the
networks are in :mod:`ganlib.models.pix2pix`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ganlib.losses import bce_fake, bce_real, discriminator_outputs, l1_loss
from ganlib.precision import Precision
from ganlib.train import RunState, frozen
from ganlib.translation import as_rgb, translate

D_MODES = ("conditional", "naive", "unconditional")


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
    loss = 0.5 * (bce_real(real_logits.float()) + bce_fake(fake_logits.float()))
    return loss, real_logits, fake_logits


def pix2pix_g_loss(
    D: nn.Module,
    source: torch.Tensor,
    target: torch.Tensor,
    fake: torch.Tensor,
    lambda_l1: float = 100.0,
) -> torch.Tensor:
    """pix2pix's generator loss: L_G = L_cGAN + lambda * L_L1 (conditional D, non-saturating).

    L_cGAN = -E[log D(x, G(x))] over the patches of D's logit map, L_L1 = E ||y - G(x)||_1.
    ``fake`` = G(x) with its graph (G is trained through it); D should be frozen by the caller.
    """
    # L_cGAN = -E[log D(x, G(x))]
    loss_adv = bce_real(D(torch.cat([source, fake], dim=1)).float())
    # L_G = L_cGAN + lambda E ||y - G(x)||_1
    return loss_adv + lambda_l1 * l1_loss(fake.float(), target)


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


@dataclass
class Pix2PixRun(RunState):
    """A pix2pix run: networks, optimizers, LR schedules, loss weights and training state.

    Args:
        G, D: Generator (source -> target) and discriminator (logits).
        opt_G, opt_D: Their optimizers (the paper: Adam, lr 2e-4, betas (0.5, 0.999)).
        steps: Total steps; the LR decays linearly to 0 over the second half. Pass the same
            number to ``fit``.
        lambda_l1 (float): Weight of the L1 term. Default: 100.
        gan_weight (float): Weight of the cGAN term; 0 trains with L1 only (D is skipped).
            Default: 1.
        d_mode (str): ``"conditional"`` | ``"unconditional"`` | ``"naive"``, see
            :func:`pix2pix_d_step`. Default: ``"conditional"``.
        config: Plain settings; a checkpoint written with other settings is refused on resume.
        precision: Mixed precision; default fp32 on CPU, bf16/fp16 on CUDA.
        channels_last (bool | None): channels_last (NHWC) weights and batches. Default: None,
            the networks' preference, False for the U-Net (measured 0.92-0.95x on CPU); recorded
            in ``config``.
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
    precision: Precision | None = None
    channels_last: bool | None = None
    step: int = 0
    history: list[dict] = field(default_factory=list)

    _settings = ("steps", "lambda_l1", "gan_weight", "d_mode")

    def __post_init__(self):
        if self.d_mode not in D_MODES:
            raise ValueError(f"d_mode must be one of {', '.join(D_MODES)}, got {self.d_mode!r}.")
        self.sched_G = linear_decay(self.opt_G, self.steps)
        self.sched_D = linear_decay(self.opt_D, self.steps)
        self._record_settings()

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


def pix2pix_d_step(
    run: Pix2PixRun, source: torch.Tensor, target: torch.Tensor
) -> dict[str, torch.Tensor]:
    """(1) Update D. Only D's weights change.

    ``run.d_mode`` chooses what D is trained on:

    - ``"conditional"`` (pix2pix): D(x, y) real, D(x, G(x)) fake, see :func:`conditional_d_loss`;
    - ``"unconditional"``: D(y) real, D(G(x)) fake (a plain GAN: D cannot check that the output
      fits the input);
    - ``"naive"``: a common mistake in blog tutorials: D is trained on (x + y) / 2 with the label
      1 only; it never sees a fake nor a real pair.
    """
    if run.d_mode not in D_MODES:
        raise ValueError(f"d_mode must be one of {', '.join(D_MODES)}, got {run.d_mode!r}.")
    with torch.no_grad(), run.precision.autocast():
        fake = run.G(source)  # no graph through G: this step does not train it
    with run.precision.autocast():
        if run.d_mode == "conditional":
            loss_D, real_logits, fake_logits = _conditional_d_loss_and_logits(
                run.D, source, target, fake
            )
        elif run.d_mode == "unconditional":
            real_logits, fake_logits = run.D(target), run.D(fake)
            # L_D = 1/2 (-E[log D(y)] - E[log(1 - D(G(x)))])
            loss_D = 0.5 * (bce_real(real_logits.float()) + bce_fake(fake_logits.float()))
        else:
            real_logits = run.D(0.5 * (as_rgb(source) + target))
            # The mistake: one "real" batch, the average of source and target, labelled 1.
            loss_D = bce_real(real_logits.float())
            with torch.no_grad():
                fake_logits = run.D(fake)  # only reported: D never trains on a fake
    run.precision.update(loss_D, run.opt_D, "D")
    return {"loss_D": loss_D.detach(), **discriminator_outputs("bce", real_logits, fake_logits)}


def pix2pix_g_step(
    run: Pix2PixRun, source: torch.Tensor, target: torch.Tensor
) -> dict[str, torch.Tensor]:
    """(2) Update G: L_G = gan_weight * L_cGAN + lambda_l1 * L_L1. Only G's weights change.

    L_cGAN = -E[log D(x, G(x))] (non-saturating), L_L1 = E ||y - G(x)||_1. ``gan_weight = 0`` is
    the "L1 only" ablation (D is not used), ``lambda_l1 = 0`` the "cGAN only" one. In the
    ``"unconditional"`` and ``"naive"`` modes D sees G(x) alone.
    """
    with run.precision.autocast():
        fake = run.G(source)
    # L_L1 = E ||y - G(x)||_1
    loss_l1 = l1_loss(fake.float(), target)
    stats = {"loss_l1": loss_l1.detach()}
    loss_G = run.lambda_l1 * loss_l1
    if run.gan_weight:
        with frozen(run.D), run.precision.autocast():  # gradients flow through D, not into it
            d_input = torch.cat([source, fake], dim=1) if run.d_mode == "conditional" else fake
            # L_cGAN = -E[log D(x, G(x))]
            loss_adv = bce_real(run.D(d_input).float())
        # L_G = gan_weight L_cGAN + lambda L_L1
        loss_G = run.gan_weight * loss_adv + loss_G
        stats["loss_adv"] = loss_adv.detach()
    run.precision.update(loss_G, run.opt_G, "G")
    return {"loss_G": loss_G.detach(), **stats}


def pix2pix_step(run: Pix2PixRun, batch) -> dict[str, torch.Tensor]:
    """One pix2pix iteration on ``batch = (target, source)``: D, then G, then both LR schedules.

    The "L1 only" run (``gan_weight = 0``) has no adversarial term, so D is neither trained nor
    used.
    """
    target, source = batch
    stats = pix2pix_d_step(run, source, target) if run.gan_weight else {}  # (1) D
    stats |= pix2pix_g_step(run, source, target)  # (2) G
    run.sched_G.step()
    if run.gan_weight:
        run.sched_D.step()
    return stats
