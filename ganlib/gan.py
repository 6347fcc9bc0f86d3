"""The GAN of lessons 01 and 04: a run, the D step, the G step, and one iteration built from them.

One iteration of GAN training (Goodfellow et al. 2014, Algorithm 1), :func:`gan_step`:

1. :func:`d_step` updates the discriminator to maximise
   V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))] (``n_dis`` times, each on new real images);
2. :func:`g_step` updates the generator to fool it, with the non-saturating loss
   -E_z[log D(G(z))] by default.

Train with ``ganlib.train.fit(run, gan_step, batches, steps)``. D returns logits (no sigmoid).
:class:`EMAGANRun` and :func:`ema_gan_step` add an exponential moving average of G's weights,
which samples are then drawn from.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from ganlib.losses import D_LOSSES, G_LOSSES, discriminator_outputs, loss_by_name
from ganlib.precision import Precision
from ganlib.train import RunState, evaluating, frozen


@dataclass
class GANRun(RunState):
    """A GAN's networks, optimizers, losses and training state: what a checkpoint holds.

    Args:
        G, D: The generator and the discriminator (D returns logits).
        opt_G, opt_D: Their optimizers.
        z_dim (int): Length of the noise vector G takes; None for a G that takes images.
        config: Plain settings that define the run (architecture, learning rates, data); the
            fields below are added to it. A checkpoint made with other settings is refused.
        g_loss (str): ``"nonsaturating"`` (default), ``"saturating"``, ``"hinge"`` or ``"lsgan"``.
        d_loss (str): ``"bce"`` (default), ``"hinge"`` or ``"lsgan"``.
        n_dis (int): D steps per G step (SNGAN and WGAN-GP use 5). Each D step takes its own
            real images, so batches hold ``n_dis * B`` of them (``Batches(..., batch_size=n_dis
            * B)``). Default: 1.
        share_fake (bool | None): Run G once per iteration, as the PyTorch DCGAN example does:
            D's step sees G(z) detached and G's step backpropagates through the same G(z), so
            G's step trains on the fakes D was just updated on instead of on fresh noise. One G
            forward fewer (1.13x faster for DCGAN-MNIST on 2 CPU cores), and G's
            batch-norm statistics update once per iteration instead of twice; digit-FID after
            1500 steps is the same within seed noise (benchmarks/RESULTS.md). It needs
            ``n_dis = 1``. Default: None, which means True when ``n_dis == 1`` (always False in
            ``SRGANRun``, ``ConditionalGANRun`` and ``RestorationGANRun``); the resolved value
            is recorded in ``config``, so a checkpoint written with the other value is refused.
            A step you write yourself must honour it (or pass ``share_fake=False``).
        precision: Mixed precision; default fp32 on CPU, bf16/fp16 on CUDA.
        channels_last (bool | None): Store G's and D's weights and the batches in channels_last
            (NHWC) memory: the same results to float rounding, faster convolutions on CPU where
            the networks prefer it (DCGAN, SRResNet, SRGAN's D: see
            :func:`ganlib.train.prefers_channels_last`). Default: None, True when both networks
            prefer it; recorded resolved in ``config`` (not compared on resume).
    """

    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    z_dim: int | None = None
    config: dict = field(default_factory=dict)
    g_loss: str = "nonsaturating"
    d_loss: str = "bce"
    n_dis: int = 1
    share_fake: bool | None = None
    precision: Precision | None = None
    channels_last: bool | None = None
    step: int = 0
    history: list[dict] = field(default_factory=list)

    _settings = ("z_dim", "g_loss", "d_loss", "n_dis", "share_fake")
    # What share_fake=None resolves to when n_dis == 1: True for gan_step, decided by measurement
    # (benchmarks/RESULTS.md). Subclasses whose step never shares set it False.
    _shares_fake_by_default = True

    def __post_init__(self):
        loss_by_name(self.g_loss, G_LOSSES, "g_loss")
        loss_by_name(self.d_loss, D_LOSSES, "d_loss")
        if self.n_dis < 1:
            raise ValueError(f"n_dis must be >= 1 D steps per G step, got {self.n_dis}.")
        if self.n_dis > 1 and self.share_fake:
            raise ValueError(
                f"share_fake needs n_dis = 1: with n_dis = {self.n_dis} each D step draws its "
                "own fakes. Pass share_fake=False, or leave it out (None resolves to False here)."
            )
        if self.share_fake is None:
            self.share_fake = self.n_dis == 1 and self._shares_fake_by_default
        self._record_settings()

    def _parts(self) -> dict:
        return {"G": self.G, "D": self.D, "opt_G": self.opt_G, "opt_D": self.opt_D}

    def noise(self, n: int) -> torch.Tensor:
        """z ~ N(0, I), shape (n, z_dim), on the run's device."""
        if not self.z_dim:
            raise ValueError("This run's generator takes images, not noise (z_dim is None).")
        return torch.randn(n, self.z_dim, device=self.device)

    def sample(self, *inputs: torch.Tensor) -> torch.Tensor:
        """G(inputs) in eval mode (batch norm uses its running statistics), in [-1, 1]."""
        with evaluating(self.G):
            return self.G(*(x.to(self.device) for x in inputs)).float()

    def generate(self, n: int, batch_size: int = 500) -> torch.Tensor:
        """``n`` samples G(z), z ~ N(0, I), in eval mode, on the CPU, in [-1, 1] (for FID/IS)."""
        chunks = [self.noise(min(batch_size, n - i)) for i in range(0, n, batch_size)]
        return torch.cat([self.sample(z).cpu() for z in chunks])


def d_step(run: GANRun, real: torch.Tensor, fake: torch.Tensor | None = None) -> dict:
    """(1) Update D: maximise log D(x) + log(1 - D(G(z))). Only D's weights change.

    Args:
        real: Real images (B, C, H, W) in [-1, 1].
        fake: G's output computed already (it is detached here); by default G(z) on fresh noise.
    """
    if fake is None:
        with torch.no_grad(), run.precision.autocast():
            fake = run.G(run.noise(len(real)))  # no graph through G: this step does not train it
    with run.precision.autocast():
        real_logits, fake_logits = run.D(real), run.D(fake.detach())
        # L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]  (hinge: E[max(0, 1 - l(x))] + ...)
        loss_D = D_LOSSES[run.d_loss](real_logits.float(), fake_logits.float())
    run.precision.update(loss_D, run.opt_D, "D")
    return {
        "loss_D": loss_D.detach(),
        **discriminator_outputs(run.d_loss, real_logits, fake_logits),
    }


def g_step(run: GANRun, z: torch.Tensor | None, fake: torch.Tensor | None = None) -> dict:
    """(2) Update G: make D call G(z) real. Only G's weights change.

    Args:
        z: G's input (noise (B, z_dim)).
        fake: G(z) computed already *with* its graph (``share_fake``); then G is not run again.
    """
    with frozen(run.D), run.precision.autocast():  # gradients flow through D, not into it
        fake = run.G(z) if fake is None else fake
        # L_G = -E_z[log D(G(z))]  (non-saturating; hinge: -E_z[l(G(z))])
        loss_G = G_LOSSES[run.g_loss](run.D(fake).float())
    run.precision.update(loss_G, run.opt_G, "G")
    return {"loss_G": loss_G.detach()}


def gan_step(run: GANRun, batch) -> dict[str, torch.Tensor]:
    """One iteration of Algorithm 1: ``run.n_dis`` D steps, each on new real images, then one
    G step. ``batch`` is real images, or ``(images, labels)`` (labels unused)."""
    real = batch[0] if isinstance(batch, tuple | list) else batch
    if len(real) % run.n_dis:
        raise ValueError(
            f"A batch of {len(real)} images cannot be cut into n_dis = {run.n_dis} D batches; "
            "use Batches(..., batch_size=n_dis * B)."
        )
    b = len(real) // run.n_dis
    fake = None
    if run.share_fake:  # one G forward for both steps, kept with its graph for G's step
        with run.precision.autocast():
            fake = run.G(run.noise(b))
    d_stats = [d_step(run, chunk, fake) for chunk in real.split(b)]  # (1) D
    stats = {k: torch.stack([s[k] for s in d_stats]).mean() for k in d_stats[0]}
    z = None if run.share_fake else run.noise(b)
    return stats | g_step(run, z, fake)  # (2) G


@dataclass
class EMAGANRun(GANRun):
    """A :class:`GANRun` that also keeps an exponential moving average (EMA) of G's weights.

    G's weights keep moving while the two networks chase each other, so the last iterate is one
    noisy point of an oscillation. After every step the average follows them slowly,

        w_ema <- beta * w_ema + (1 - beta) * w,

    and draws better samples than G itself (Yazici et al. 2019, "The Unusual Effectiveness of
    Averaging in GAN Training"; Karras et al. 2018 sample Progressive GAN from such an average).
    The average never feeds back into training: D and G train exactly as without it.
    :meth:`sample` and :meth:`generate` use ``G_ema``; ``run.G`` is still the trained generator.

    Args:
        ema_decay (float): beta, the weight of the past. The average spans about
            1 / (1 - beta) steps. Early on beta is lowered to (1 + step) / (10 + step), so the
            average does not drag G's random initial weights along. Default: 0.999.
        G_ema: The averaged generator; default a copy of G (set it only to load one).
    """

    ema_decay: float = 0.999
    G_ema: nn.Module | None = None

    _settings = (*GANRun._settings, "ema_decay")

    def __post_init__(self):
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}.")
        if self.G_ema is None:
            self.G_ema = copy.deepcopy(self.G)
        self.G_ema.requires_grad_(False)  # updated by update_ema only, never by an optimizer
        super().__post_init__()

    def _parts(self) -> dict:
        return super()._parts() | {"G_ema": self.G_ema}

    @torch.no_grad()
    def update_ema(self) -> None:
        """One EMA update of ``G_ema`` from G's current weights; batch-norm statistics copied."""
        beta = min(self.ema_decay, (1 + self.step) / (10 + self.step))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            # w_ema <- beta * w_ema + (1 - beta) * w
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)  # running mean/var follow G's: they describe G's current activations

    def sample(self, *inputs: torch.Tensor) -> torch.Tensor:
        """G_ema(inputs) in eval mode, in [-1, 1]."""
        with evaluating(self.G_ema):
            return self.G_ema(*(x.to(self.device) for x in inputs)).float()


def ema_gan_step(run: EMAGANRun, batch) -> dict[str, torch.Tensor]:
    """:func:`gan_step`, then one update of the average of G's weights (:class:`EMAGANRun`)."""
    stats = gan_step(run, batch)
    run.update_ema()
    return stats
