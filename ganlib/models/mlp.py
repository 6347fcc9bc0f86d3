"""The first GAN of the course: two multilayer perceptrons on flattened 28x28 images."""

from __future__ import annotations

import torch
from torch import nn

from ganlib.images import check_images


class MLPGenerator(nn.Module):
    """z (B, z_dim) -> image (B, 1, 28, 28) in [-1, 1].

    Args:
        z_dim (int): Length of the noise vector. Default: 64.
        hidden (int): Width of the hidden layers. Default: 256.
        image_size (int): Side of the square output image. Default: 28.
    """

    def __init__(self, z_dim: int = 64, hidden: int = 256, image_size: int = 28):
        super().__init__()
        self.z_dim, self.image_size = z_dim, image_size
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 2 * hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(2 * hidden, image_size * image_size),
            nn.Tanh(),  # pixels in [-1, 1], the model range of the course
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (B, {self.z_dim}), got {tuple(z.shape)}.")
        if not z.is_floating_point():
            raise ValueError(
                f"z must be float noise, e.g. torch.randn(B, {self.z_dim}); got {z.dtype}."
            )
        return self.net(z).view(-1, 1, self.image_size, self.image_size)  # (B, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """image (B, 1, 28, 28) -> one logit per image (B,). Real = 1, fake = 0; no sigmoid.

    Args:
        hidden (int): Width of the hidden layers. Default: 256.
        image_size (int): Side of the square input image. Default: 28.
    """

    def __init__(self, hidden: int = 256, image_size: int = 28):
        super().__init__()
        self.image_size = image_size
        self.net = nn.Sequential(
            nn.Flatten(),  # (B, 784)
            nn.Linear(image_size * image_size, 2 * hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(2 * hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),  # a logit: BCEWithLogitsLoss applies the sigmoid stably
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(
            x, channels=1, size=(self.image_size, self.image_size), name="D input", finite=False
        )
        return self.net(x).squeeze(1)  # (B,)
