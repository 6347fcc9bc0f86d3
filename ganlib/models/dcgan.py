"""DCGAN (Radford et al. 2016) sized for 28x28 digits.

The paper's rules: strided convolutions instead of pooling, transposed convolutions to
upsample, batch norm in both networks (not on D's input or G's output), ReLU in G with a tanh
output, LeakyReLU(0.2) in D, weights drawn from N(0, 0.02), Adam lr 2e-4, beta1 0.5.
"""

from __future__ import annotations

import torch
from torch import nn

from ganlib.images import check_images


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02); batch-norm scale ~ N(1, 0.02), shift 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z (B, z_dim) -> image (B, channels, 28, 28) in [-1, 1].

    Args:
        z_dim (int): Length of the noise vector. Default: 100.
        width (int): Channels of the last hidden layer (``ngf`` in the PyTorch example);
            the first has twice as many. Default: 64.
        channels (int): Output image channels. Default: 1.
    """

    prefers_channels_last = True  # +6-18 % per step on CPU (benchmarks/RESULTS.md)

    def __init__(self, z_dim: int = 100, width: int = 64, channels: int = 1):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            # (B, z_dim, 1, 1) -> (B, 2w, 7, 7): a 7x7 "full" transposed convolution
            nn.ConvTranspose2d(z_dim, 2 * width, 7, 1, 0, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(True),
            # (B, 2w, 7, 7) -> (B, w, 14, 14)
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            # (B, w, 14, 14) -> (B, channels, 28, 28)
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
            nn.Tanh(),
        )
        self.apply(init_dcgan_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (B, {self.z_dim}), got {tuple(z.shape)}.")
        if not z.is_floating_point():
            raise ValueError(
                f"z must be float noise, e.g. torch.randn(B, {self.z_dim}); got {z.dtype}."
            )
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """image (B, channels, 28, 28) -> one logit per image (B,). Real = 1, fake = 0; no sigmoid.

    Args:
        width (int): Channels of the first layer (``ndf``); the second has twice as many.
            Default: 64.
        channels (int): Input image channels. Default: 1.
    """

    prefers_channels_last = True  # +6-18 % per step on CPU (benchmarks/RESULTS.md)

    def __init__(self, width: int = 64, channels: int = 1):
        super().__init__()
        self.channels = channels
        self.net = nn.Sequential(
            # (B, c, 28, 28) -> (B, w, 14, 14); no batch norm on the input layer
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.LeakyReLU(0.2, True),
            # (B, w, 14, 14) -> (B, 2w, 7, 7)
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2, True),
            # (B, 2w, 7, 7) -> (B, 1, 1, 1): the logit
            nn.Conv2d(2 * width, 1, 7, 1, 0),
        )
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.channels, size=(28, 28), name="D input", finite=False)
        return self.net(x).flatten()  # (B,)
