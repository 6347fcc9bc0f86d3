"""The SNGAN ResNet on CIFAR-10, scored with Inception features beside published figures (notebook 04).

Miyato et al. (2018) train the ResNets of :mod:`ganlib.models.resnet` on CIFAR-10 with the hinge
loss, Adam (learning rate 2e-4, betas (0, 0.9)) and ``n_dis = 5`` discriminator steps per
generator step. What is here:

- :func:`sngan_run`: the generator, the discriminator and their optimizers with those settings;
- training is ``fit(run, gan_step, batches, steps)`` (:func:`ganlib.train.fit`,
  :func:`ganlib.gan.gan_step`): per generator step, ``run.n_dis`` calls of
  :func:`ganlib.gan.d_step`, each on new real images, then one :func:`ganlib.gan.g_step`
  (notebook 04 writes this step out as ``sngan_step``; ``tests/test_steps_04.py`` checks the two
  agree);
- :func:`standin_images`: offline, 32x32 crops of the SR training photos, so that the same code
  runs without CIFAR-10 (a stand-in: never scored against CIFAR-10 figures);
- :func:`inception_scores` and :func:`reference_table`: Inception FID and IS of a generator,
  printed beside :data:`PUBLISHED`.

Images are in [-1, 1]; the discriminator returns logits.
"""

from __future__ import annotations

import math

import torch

from ganlib.data import photos
from ganlib.errors import WeightsUnavailable
from ganlib.fid import fid, inception_score
from ganlib.gan import GANRun
from ganlib.images import random_crops, to_model_range
from ganlib.models.sngan import SNResNetDiscriminator, SNResNetGenerator
from ganlib.train import adam

STANDIN = "offline stand-in: 32x32 crops of the SR training photos, not CIFAR-10, no Inception FID"

# Unconditional CIFAR-10 generators, as published. FID and IS depend on the number of samples,
# the real set and the Inception port, so the figures are comparable only roughly.
PUBLISHED = (
    {
        "model": "DCGAN (CNN)",
        "fid": 50.28,
        "is": 6.70,
        "source": "StudioGAN README (early table): 10k samples vs 10k test images",
    },
    {
        "model": "WGAN-GP (ResNet)",
        "fid": 22.29,
        "is": 7.33,
        "source": "mimicry README: 100k G steps, n_dis 5, 50k samples vs train",
    },
    {
        "model": "SNGAN (ResNet, hinge)",
        "fid": 21.7,
        "is": 8.22,
        "source": "Miyato et al. 2018 (SNGAN paper), CIFAR-10 table",
    },
    {
        "model": "SNGAN (ResNet, hinge)",
        "fid": 16.77,
        "is": 7.97,
        "source": "mimicry README: 100k G steps, n_dis 5, 50k samples vs train",
    },
)


def sngan_run(
    width_g: int = 128,
    width_d: int = 128,
    z_dim: int = 128,
    device="cpu",
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.0, 0.9),
    n_dis: int = 5,
    config: dict | None = None,
) -> GANRun:
    """SNGAN's ResNet generator and discriminator for 32x32 RGB images, hinge loss, Adam.

    Args:
        width_g (int): Generator channels; the SNGAN paper uses 256. Default: 128.
        width_d (int): Discriminator channels; the SNGAN paper uses 128. Default: 128.
        z_dim (int): Length of the noise vector. Default: 128.
        device: Where the networks live. Default: ``"cpu"``.
        lr (float): Adam's learning rate for both networks. Default: 2e-4.
        betas (tuple): Adam's (beta1, beta2); beta1 = 0 as in the paper. Default: (0.0, 0.9).
        n_dis (int): D steps per G step, each on new real images, so batches hold ``n_dis * B``
            images. Default: 5, as in the paper.
        config (dict): More settings to store with the checkpoints (batch size, data).
    """
    G = SNResNetGenerator(z_dim=z_dim, width=width_g, image_size=32, channels=3).to(device)
    D = SNResNetDiscriminator(width=width_d, image_size=32, channels=3).to(device)
    return GANRun(
        G,
        D,
        opt_G=adam(G.parameters(), lr=lr, betas=betas),
        opt_D=adam(D.parameters(), lr=lr, betas=betas),
        z_dim=z_dim,
        g_loss="hinge",
        d_loss="hinge",
        n_dis=n_dis,
        share_fake=False,  # SNGAN draws new noise for every D step and for the G step
        config={
            "model": "sngan-resnet-32",
            "width_g": width_g,
            "width_d": width_d,
            "lr": lr,
            "betas": list(betas),
            **(config or {}),
        },
    )


def standin_images(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` random 32x32 crops of the SR training photos, uint8 (n, 3, 32, 32): T91, which ships
    with the course, and BSD200 where it can be had, so the CIFAR-10 code path runs anywhere. They are
    not CIFAR-10: scores on them must never be compared with CIFAR-10 figures (see :data:`STANDIN`).
    """
    return random_crops(photos(("t91", "bsd200")), n, 32, seed=seed)


def inception_scores(
    run: GANRun, real_u8: torch.Tensor, n: int, device="cpu", seed: int = 0
) -> dict[str, float]:
    """Inception FID between ``n`` samples and ``n`` random real images, and the samples' IS.

    Args:
        run: The trained GAN.
        real_u8: Real images, uint8 (N, 3, 32, 32), e.g. CIFAR-10's training set.
        n (int): Samples per set; FID needs more than Inception's 2048 features. 10,000 is common
            (StudioGAN), 50,000 the most cited protocol (lower FID: the estimate is biased upwards
            for small n).
        device: Where Inception-v3 runs. Default: ``"cpu"`` (slow).
        seed (int): Seed of the choice of real images. Default: 0.

    Returns:
        ``{"fid", "is", "is_std", "n"}``.

    Raises:
        WeightsUnavailable: The Inception weights cannot be loaded (offline).
    """
    if n > len(real_u8):
        raise ValueError(f"Asked for {n} real images, but only {len(real_u8)} were given.")
    pick = torch.randperm(len(real_u8), generator=torch.Generator().manual_seed(seed))[:n]
    fake = run.generate(n)
    fid_value = fid(to_model_range(real_u8[pick]), fake, features="inception", device=device)
    is_mean, is_std = inception_score(fake, features="inception", device=device)
    return {"fid": fid_value, "is": is_mean, "is_std": is_std, "n": n}


def try_inception_scores(run: GANRun, real_u8: torch.Tensor, n: int, device="cpu") -> dict:
    """:func:`inception_scores`, or, when the Inception weights cannot be loaded (offline),
    ``{"fid": nan, "is": nan, "why": short reason, "error": the full message with its fix}``."""
    try:
        return inception_scores(run, real_u8, n, device)
    except WeightsUnavailable as err:
        return {
            "fid": math.nan,
            "is": math.nan,
            "why": "Inception-v3 weights unavailable",
            "error": str(err),
        }


def reference_table(ours: dict, label: str) -> str:
    """A markdown table: our FID and IS (or why they are missing) above :data:`PUBLISHED`.

    Args:
        ours: From :func:`inception_scores`, or ``{"fid": nan, "is": nan, "why": reason}``.
        label: What we trained, with its budget, e.g. "this run: SNGAN ResNet, 20k G steps".
    """

    def number(v: float, fmt: str) -> str:
        return format(v, fmt) if math.isfinite(v) else "-"

    if math.isfinite(ours.get("fid", math.nan)):
        how = f"{ours['n']} samples vs {ours['n']} CIFAR-10 train images, torchmetrics"
    else:
        how = f"not measured: {ours.get('why', 'no scores')}"
    rows = [(label, number(ours["fid"], ".1f"), number(ours["is"], ".2f"), how)]
    rows += [(p["model"], f"{p['fid']:.1f}", f"{p['is']:.2f}", p["source"]) for p in PUBLISHED]
    lines = [
        "| model | FID (lower is better) | IS (higher is better) | source |",
        "|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)
