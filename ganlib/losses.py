"""GAN losses on discriminator logits.

Convention: D returns a logit l; D(x) = sigmoid(l) is its probability that x is real.
Real = 1, fake = 0. ``binary_cross_entropy_with_logits`` computes log(sigmoid(l)) stably.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss: minus the value function, so minimising it maximises V(D, G).

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def g_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side of the minimax game, as in the value function.

    L_G = E_z[log(1 - D(G(z)))]

    Its gradient vanishes when D confidently rejects the fakes (D(G(z)) -> 0), which is exactly
    the situation at the start of training.
    """
    # log(1 - sigmoid(l)) = -BCE(l, target 0)
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss (Goodfellow et al. 2014, section 3).

    L_G = -E_z[log D(G(z))]

    Same fixed point as the saturating loss, but strong gradients when D wins.
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def d_loss_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss (SNGAN, Miyato et al. 2018; SAGAN):

    L_D = E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))], with D(.) the raw logit.
    """
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_loss_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: L_G = -E_z[D(G(z))], with D(.) the raw logit."""
    return -fake_logits.mean()


G_LOSSES = {
    "nonsaturating": g_loss_nonsaturating,
    "saturating": g_loss_saturating,
    "hinge": g_loss_hinge,
}
D_LOSSES = {"bce": d_loss, "hinge": d_loss_hinge}


class VGGContentLoss(torch.nn.Module):
    """SRGAN's content loss: MSE between VGG19 feature maps (phi_5,4, before the last max-pool).

    l_VGG = 1 / (W H) * sum (phi(I_HR) - phi(G(I_LR)))^2, with the features scaled by 1/12.75 as in
    the paper so the loss has a magnitude comparable with pixel MSE. Inputs in [-1, 1].
    Needs torchvision's ImageNet weights (downloaded once); offline this raises
    ``ganlib.fid.WeightsUnavailable`` so the caller can choose a replacement and say so.
    """

    def __init__(self):
        super().__init__()
        from torchvision.models import VGG19_Weights, vgg19

        from ganlib.fid import WeightsUnavailable

        try:
            vgg = vgg19(weights=VGG19_Weights.IMAGENET1K_V1)
        except (OSError, RuntimeError) as err:
            raise WeightsUnavailable(
                f"VGG19 ImageNet weights could not be loaded ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
                "torchvision downloads them once (548 MB) into ~/.cache/torch/hub/checkpoints."
            ) from None
        self.features = vgg.features[:36].eval().requires_grad_(False)  # up to relu5_4
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _phi(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1) / 2 - self.mean) / self.std  # model range -> ImageNet normalisation
        return self.features(x) / 12.75

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self._phi(fake), self._phi(real))
