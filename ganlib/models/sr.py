"""Super-resolution networks. ``SR_MODELS`` maps the names used in checkpoints to classes."""

from __future__ import annotations

import torch
from torch import nn

from ganlib.images import check_images


class SRCNN(nn.Module):
    """SRCNN (Dong et al. 2016): three convolutions on the bicubic-upscaled image.

    patch extraction (9x9, 64) -> non-linear mapping (1x1, 32) -> reconstruction (5x5).
    Input and output: (B, C, H, W) in [-1, 1] at the *high* resolution; ``pre_upsample`` tells
    the inference code to bicubic-upscale the LR image first.

    Args:
        scale (int): The upscaling factor this network was trained for. Default: 4.
        channels (int): Image channels. Default: 3.
        width (int): Filters of the first layer; the second has half. Default: 64.
    """

    pre_upsample = True

    def __init__(self, scale: int = 4, channels: int = 3, width: int = 64):
        super().__init__()
        self.scale, self.channels = scale, channels
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 9, padding=4),  # (B, 64, H, W)
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width // 2, 1),  # (B, 32, H, W)
            nn.ReLU(inplace=True),
            nn.Conv2d(width // 2, channels, 5, padding=2),  # (B, C, H, W)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.channels, name="SRCNN input", finite=False)
        return self.body(x)


SR_MODELS: dict[str, type[nn.Module]] = {"srcnn": SRCNN}
