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


G_LOSSES = {"nonsaturating": g_loss_nonsaturating, "saturating": g_loss_saturating}
