"""Every loss of the course, in one place.

Adversarial losses take discriminator outputs. Convention: D returns a logit l (never a sigmoid);
D(x) = sigmoid(l) is its probability that x is real, real = 1, fake = 0.
``binary_cross_entropy_with_logits`` computes log(sigmoid(l)) stably. The hinge and least-squares
losses use the raw output l itself.

Image losses take two batches of one shape in the model range [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# --- Adversarial losses: the original GAN (binary cross-entropy on logits) --------------------


def bce_real(logits: torch.Tensor) -> torch.Tensor:
    """-E[log D] with D = sigmoid(logits): the loss of calling every input (or patch) real."""
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def bce_fake(logits: torch.Tensor) -> torch.Tensor:
    """-E[log(1 - D)]: the loss of calling every input (or patch) fake."""
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss: minus the value function, so minimising it maximises V(D, G).

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]
    """
    # L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]
    return bce_real(real_logits) + bce_fake(fake_logits)


def g_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side of the minimax game, as in the value function.

    L_G = E_z[log(1 - D(G(z)))]

    Its gradient vanishes when D confidently rejects the fakes (D(G(z)) -> 0), which is exactly
    the situation at the start of training.
    """
    # log(1 - sigmoid(l)) = -BCE(l, target 0)
    return -bce_fake(fake_logits)


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss (Goodfellow et al. 2014, section 3).

    L_G = -E_z[log D(G(z))]

    Same fixed point as the saturating loss, but strong gradients when D wins.
    """
    return bce_real(fake_logits)


# --- Hinge (SNGAN, SAGAN) and least squares (LSGAN, CycleGAN) ----------------------------------


def d_loss_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss (SNGAN, Miyato et al. 2018; SAGAN), on the raw outputs l:

    L_D = E_x[max(0, 1 - l(x))] + E_z[max(0, 1 + l(G(z)))]

    D is only pushed until real outputs pass +1 and fake ones pass -1; beyond the margin an
    example gives no gradient.
    """
    # L_D = E_x[max(0, 1 - l(x))] + E_z[max(0, 1 + l(G(z)))]
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_loss_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: L_G = -E_z[l(G(z))], with l the raw output."""
    return -fake_logits.mean()


def lsgan_loss(outputs: torch.Tensor, label: float) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017): E[(D(.) - label)^2], label 1 = real, 0 = fake.

    D's raw output is a score, not a probability: a fake far on the "real" side is still
    penalised, so G gets gradients even where a sigmoid would saturate.
    """
    # E[(D(.) - label)^2]
    return ((outputs - label) ** 2).mean()


def d_loss_lsgan(real_outputs: torch.Tensor, fake_outputs: torch.Tensor) -> torch.Tensor:
    """L_D = 1/2 (E[(D(real) - 1)^2] + E[D(fake)^2]): the least-squares discriminator loss."""
    # L_D = 1/2 (E[(D(real) - 1)^2] + E[D(fake)^2])
    return 0.5 * (lsgan_loss(real_outputs, 1.0) + lsgan_loss(fake_outputs, 0.0))


def g_loss_lsgan(fake_outputs: torch.Tensor) -> torch.Tensor:
    """L_G = E[(D(G(z)) - 1)^2]: the least-squares generator loss."""
    return lsgan_loss(fake_outputs, 1.0)


G_LOSSES = {
    "nonsaturating": g_loss_nonsaturating,
    "saturating": g_loss_saturating,
    "hinge": g_loss_hinge,
    "lsgan": g_loss_lsgan,
}
D_LOSSES = {"bce": d_loss, "hinge": d_loss_hinge, "lsgan": d_loss_lsgan}


def loss_by_name(name: str, table: dict, what: str):
    """``table[name]``, or a ``ValueError`` listing the choices."""
    if name not in table:
        raise ValueError(f"{what} must be one of {', '.join(sorted(table))}, got {name!r}.")
    return table[name]


def discriminator_outputs(
    loss: str, real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> dict[str, torch.Tensor]:
    """What to log of D's outputs, with one meaning per name.

    With the BCE loss D's outputs are logits, so ``D_x`` = mean sigmoid(l(x)) and ``D_G_z`` =
    mean sigmoid(l(G(z))) are probabilities (0.5 = D cannot tell). With the hinge and
    least-squares losses the outputs are raw scores with no probability meaning; they are
    logged as ``score_real`` and ``score_fake``.
    """
    real, fake = real_logits.detach().float(), fake_logits.detach().float()
    if loss == "bce":
        return {"D_x": torch.sigmoid(real).mean(), "D_G_z": torch.sigmoid(fake).mean()}
    return {"score_real": real.mean(), "score_fake": fake.mean()}


# --- Image losses ------------------------------------------------------------------------------


def l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_1 = E |y_hat - y|: the mean absolute error (pix2pix, restoration, EDSR)."""
    # L_1 = E |y_hat - y|
    return (prediction - target).abs().mean()


def mse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_2 = E (y_hat - y)^2: the mean squared error (SRCNN, SRResNet, SRGAN-MSE)."""
    # L_2 = E (y_hat - y)^2
    return ((prediction - target) ** 2).mean()


PIXEL_LOSSES = {"l1": l1_loss, "mse": mse_loss}


def cycle_consistency_loss(x: torch.Tensor, x_reconstructed: torch.Tensor) -> torch.Tensor:
    """L_cyc = E ||F(G(x)) - x||_1: the mean absolute difference between an image and its round
    trip through both generators (CycleGAN)."""
    # L_cyc = E ||F(G(x)) - x||_1
    return (x_reconstructed - x).abs().mean()


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 over the hole only, the mean absolute error per missing value (inpainting):

    L = sum_i m_i |x_hat_i - x_i| / sum_i m_i, with the sums over every pixel and channel (a
    (1, H, W) or (B, 1, H, W) mask, 1 = missing, is repeated over the channels). An empty mask
    gives 0.
    """
    if mask.ndim != target.ndim or mask.shape[-3] != 1 or mask.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"mask must be (1, H, W) or (B, 1, H, W) to match images of shape "
            f"{tuple(target.shape)}, got {tuple(mask.shape)}."
        )
    m = mask.expand_as(target)
    # L = sum_i m_i |x_hat_i - x_i| / sum_i m_i
    return (m * (prediction - target).abs()).sum() / m.sum().clamp(min=1)


class VGGContentLoss(torch.nn.Module):
    """SRGAN's content loss: MSE between VGG19 feature maps (phi_5,4, before the last max-pool).

    l_VGG = 1 / (W H) * sum (phi(I_HR) - phi(G(I_LR)))^2, with the features scaled by 1/12.75 as in
    the paper so the loss has a magnitude comparable with pixel MSE. Inputs in [-1, 1].
    Needs torchvision's ImageNet weights (downloaded once); offline this raises
    :class:`ganlib.errors.WeightsUnavailable` so the caller can choose a replacement and say so.
    """

    def __init__(self):
        super().__init__()
        from torchvision.models import VGG19_Weights, vgg19

        from ganlib.errors import WeightsUnavailable

        try:
            vgg = vgg19(weights=VGG19_Weights.IMAGENET1K_V1)
        except (OSError, RuntimeError) as err:
            first = str(err).splitlines()[0] if str(err) else ""
            raise WeightsUnavailable(
                f"VGG19 ImageNet weights could not be loaded ({type(err).__name__}: {first}). "
                "torchvision downloads them once (548 MB) into ~/.cache/torch/hub/checkpoints."
            ) from None
        self.features = vgg.features[:36].eval().requires_grad_(False)  # up to relu5_4
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _phi(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1) / 2 - self.mean) / self.std  # model range -> ImageNet normalisation
        return self.features(x) / 12.75

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        # l_VGG = mean (phi(I_HR) - phi(G(I_LR)))^2
        return F.mse_loss(self._phi(fake), self._phi(real))
