"""The SNGAN ResNets (Miyato et al. 2018, appendix B; the WGAN-GP ResNet of Gulrajani et al. 2017).

:class:`SNResNetGenerator` and :class:`SNResNetDiscriminator` are built from residual blocks that
up-sample (:class:`ResBlockUp`, in G) and down-sample (:class:`ResBlockDown`, in D), for 28x28 or
32x32 images (notebook 04). D carries spectral normalisation on every layer and returns logits;
:func:`power_iteration` is the estimate of the largest singular value that spectral
normalisation (``torch.nn.utils.parametrizations.spectral_norm``) refreshes at every forward pass.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganlib.images import check_images


def power_iteration(
    W: torch.Tensor, v: torch.Tensor, eps: float = 1e-12
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One power iteration towards W's largest singular value sigma(W), as ``spectral_norm`` runs it.

    u = W v / ||W v||, v' = W^T u / ||W^T u||, sigma = u^T W v'. Repeated, u and v' converge to
    the top singular vectors and sigma to sigma(W), from below. Spectral normalisation keeps v
    between forward passes and divides the weight by sigma, W_bar = W / sigma. (This is the order
    of ``torch.nn.utils.parametrizations.spectral_norm``; Miyato et al. 2018, Algorithm 1, write
    the same iteration starting from u.)

    Args:
        W: A weight as a matrix (out, in); a convolution's weight flattened to (out, in*k*k).
        v: The current estimate of the top right singular vector (in,), unit length.
        eps (float): Keeps the normalisation finite for a zero vector. Default: 1e-12 (torch's).

    Returns:
        (u, v', sigma): the new vectors (out,) and (in,), and sigma as a 0-d tensor. No gradient
        flows into u and v'; sigma carries W's gradient, u v'^T (the vectors count as constants,
        as in torch).
    """
    if W.ndim != 2 or v.shape != W.shape[1:]:
        raise ValueError(
            f"W must be a matrix (out, in) and v a vector (in,), got {tuple(W.shape)} and "
            f"{tuple(v.shape)}; flatten a convolution's weight with W.flatten(1)."
        )
    with torch.no_grad():
        # u = W v / ||W v||
        u = nn.functional.normalize(W @ v, dim=0, eps=eps)
        # v' = W^T u / ||W^T u||
        v = nn.functional.normalize(W.T @ u, dim=0, eps=eps)
    # sigma = u^T W v'
    return u, v, u @ (W @ v)


class ResBlockUp(nn.Module):
    """Generator block, (B, c_in, H, W) -> (B, c_out, 2H, 2W).

    H(x) = conv3x3(ReLU(BN(conv3x3(up(ReLU(BN(x))))))), shortcut s(x) = conv1x1(up(x)), y = H + s.
    The 1x1 convolution matches the channels; ``up`` is nearest-neighbour upsampling.

    Args:
        c_in (int): Input channels.
        c_out (int): Output channels.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),  # (B, c_in, 2H, 2W)
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),  # (B, c_out, 2H, 2W)
        )
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class ResBlockDown(nn.Module):
    """Discriminator block with spectral norm on every convolution, (B, c_in, H, W) ->
    (B, c_out, H/2, W/2) with ``down=True``, else (B, c_out, H, W).

    H(x) = pool(conv3x3(ReLU(conv3x3(ReLU(x))))); shortcut s(x) = pool(conv1x1(x)), or x itself
    when nothing changes shape. ``first=True`` is SNGAN's "optimized" input block: no ReLU before
    the first conv (the input is an image) and s(x) = conv1x1(pool(x)). No batch norm: D is
    constrained by the spectral norm instead. Pooling is 2x2 average pooling.

    Args:
        c_in (int): Input channels.
        c_out (int): Output channels.
        down (bool): Halve the resolution. Default: True.
        first (bool): The block that reads the image. Default: False.
    """

    def __init__(self, c_in: int, c_out: int, down: bool = True, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        layers = [] if first else [nn.ReLU()]
        layers += [
            spectral_norm(nn.Conv2d(c_in, c_out, 3, padding=1)),
            nn.ReLU(),
            spectral_norm(nn.Conv2d(c_out, c_out, 3, padding=1)),
        ]
        if down:
            layers.append(nn.AvgPool2d(2))  # (B, c_out, H/2, W/2)
        self.body = nn.Sequential(*layers)
        self.learn_shortcut = down or c_in != c_out
        if self.learn_shortcut:
            self.shortcut_conv = spectral_norm(nn.Conv2d(c_in, c_out, 1))

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if not self.learn_shortcut:
            return x
        if self.first:  # pool first: the 1x1 conv then runs on a quarter of the pixels
            return self.shortcut_conv(nn.functional.avg_pool2d(x, 2))
        x = self.shortcut_conv(x)
        return nn.functional.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def _bottom(image_size: int) -> tuple[int, int]:
    """(side of the first feature map, number of x2 stages) for 28x28 or 32x32 images."""
    if image_size == 28:
        return 7, 2
    if image_size == 32:
        return 4, 3
    raise ValueError(
        f"The SNGAN ResNets are built for 28x28 (digits) or 32x32 (CIFAR-10) images, got {image_size}."
    )


class SNResNetGenerator(nn.Module):
    """SNGAN's ResNet generator: z (B, z_dim) -> image (B, channels, S, S) in [-1, 1], S = 28 or 32.

    Linear -> (B, w, s, s) with s = 7 (S = 28) or 4 (S = 32) -> 2 or 3 :class:`ResBlockUp` ->
    BN-ReLU-conv3x3 -> tanh. As in the SNGAN paper, spectral norm is only in the discriminator;
    the generator uses batch norm.

    Args:
        z_dim (int): Length of the noise vector. Default: 128.
        width (int): Channels of every block; SNGAN's CIFAR-10 generator uses 256. Default: 256.
        image_size (int): 28 or 32. Default: 32.
        channels (int): Output image channels. Default: 3.
    """

    def __init__(self, z_dim: int = 128, width: int = 256, image_size: int = 32, channels: int = 3):
        super().__init__()
        self.z_dim, self.width = z_dim, width
        self.bottom, n_up = _bottom(image_size)
        self.fc = nn.Linear(z_dim, width * self.bottom**2)
        self.blocks = nn.Sequential(*[ResBlockUp(width, width) for _ in range(n_up)])
        self.out = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, padding=1), nn.Tanh()
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (B, {self.z_dim}), got {tuple(z.shape)}.")
        x = self.fc(z).view(-1, self.width, self.bottom, self.bottom)  # (B, w, s, s)
        return self.out(self.blocks(x))  # (B, C, S, S)


class SNResNetDiscriminator(nn.Module):
    """SNGAN's ResNet discriminator: image (B, channels, S, S) -> one logit per image (B,).

    Real = 1, fake = 0; no sigmoid. Train it with the hinge loss on the logits,
    ``GANRun(..., g_loss="hinge", d_loss="hinge")``. Blocks: S -> S/2 (the input block) -> S/4
    -> S/4 -> S/4, then ReLU, a sum over positions and a spectrally normalised linear layer.

    Args:
        width (int): Channels of every block; SNGAN's CIFAR-10 discriminator uses 128. Default: 128.
        image_size (int): 28 or 32. Default: 32.
        channels (int): Input image channels. Default: 3.
    """

    def __init__(self, width: int = 128, image_size: int = 32, channels: int = 3):
        super().__init__()
        _bottom(image_size)  # checks the size
        self.channels, self.image_size = channels, image_size
        self.blocks = nn.Sequential(
            ResBlockDown(channels, width, down=True, first=True),  # (B, w, S/2, S/2)
            ResBlockDown(width, width, down=True),  # (B, w, S/4, S/4)
            ResBlockDown(width, width, down=False),
            ResBlockDown(width, width, down=False),
        )
        self.linear = spectral_norm(nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (self.image_size, self.image_size)
        check_images(x, channels=self.channels, size=size, name="D input", finite=False)
        h = torch.relu(self.blocks(x)).sum(dim=(2, 3))  # (B, w): sum over positions
        return self.linear(h).flatten()  # (B,) logits
