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


def _conv_norm(width: int, batch_norm: bool) -> list[nn.Module]:
    """A 3x3 convolution, followed by batch norm (SRGAN) or not (EDSR: a bias instead)."""
    if not batch_norm:
        return [nn.Conv2d(width, width, 3, padding=1)]
    return [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)]


class ResidualBlock(nn.Module):
    """SRResNet block: x + BN(conv(PReLU(BN(conv(x))))), 3x3 convolutions, width kept;
    without ``batch_norm``, x + conv(PReLU(conv(x))) as in EDSR."""

    def __init__(self, width: int, batch_norm: bool = True):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_norm(width, batch_norm),
            nn.PReLU(width),
            *_conv_norm(width, batch_norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # y = H(x) + x: the block only has to learn a correction to its input
        return x + self.body(x)


class SRResNet(nn.Module):
    """SRResNet (Ledig et al. 2017), also SRGAN's generator: LR (B, C, h, w) -> HR (B, C, s*h, s*w).

    conv 9x9 + PReLU -> ``n_blocks`` residual blocks -> conv + BN, plus the global skip from the
    first features -> PixelShuffle x2 upsampling (log2(scale) times) -> conv 9x9. Inputs and outputs
    in [-1, 1]; the output is not clamped (the quantisation step clamps).

    Args:
        scale (int): 2, 4 or 8. Default: 4.
        n_blocks (int): Residual blocks; the paper uses 16. Default: 16.
        width (int): Feature channels; the paper uses 64. Default: 64.
        channels (int): Image channels. Default: 3.
        batch_norm (bool): Batch norm after each convolution of the body, as in the paper.
            EDSR (Lim et al. 2017) removes it: normalising features by batch statistics discards
            their range, and training batches of small patches have other statistics than a whole
            test image. Default: True.
    """

    pre_upsample = False
    prefers_channels_last = True  # +20-30 % per training step on CPU (benchmarks/RESULTS.md)

    def __init__(
        self,
        scale: int = 4,
        n_blocks: int = 16,
        width: int = 64,
        channels: int = 3,
        batch_norm: bool = True,
    ):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(
                f"SRResNet upsamples by powers of two: scale must be 2, 4 or 8, got {scale}."
            )
        self.scale, self.channels = scale, channels
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[ResidualBlock(width, batch_norm) for _ in range(n_blocks)])
        self.fuse = nn.Sequential(*_conv_norm(width, batch_norm))
        up = []
        for _ in range(scale.bit_length() - 1):  # log2(scale) stages of x2
            # (B, w, h, w') -> (B, 4w, h, w') -> PixelShuffle -> (B, w, 2h, 2w')
            up += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(width, channels, 9, padding=4)

    @property
    def receptive_radius(self) -> int:
        """How many LR pixels away an output pixel can see (for seamless tiled inference)."""
        n_up = self.scale.bit_length() - 1
        # head 9x9: 4; two 3x3 per block: 2n; fuse: 1; each upsampling conv: 1 pixel at its own
        # resolution (<= 1 LR pixel); the tail 9x9 at HR: 4 HR pixels = 4/scale LR pixels.
        return 4 + 2 * len(self.blocks) + 1 + n_up + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.channels, name="SRResNet input", finite=False)
        features = self.head(x)  # (B, w, h, w')
        features = features + self.fuse(self.blocks(features))  # global skip
        return self.tail(self.upsample(features))  # (B, C, s*h, s*w')


class SRGANDiscriminator(nn.Module):
    """SRGAN's discriminator: HR image (B, C, H, W) -> one logit per image (B,). Real = 1; no sigmoid.

    Eight 3x3 conv-BN-LeakyReLU blocks, widths 64, 64, 128, 128, 256, 256, 512, 512 (times
    ``width / 64``), stride 2 on every second one; then global average pooling (so any input size
    works; the paper's 96x96 crops give 6x6 before it), dense 1024, LeakyReLU, dense 1.

    Args:
        width (int): Channels of the first block; the paper uses 64. Default: 64.
        channels (int): Image channels. Default: 3.
    """

    prefers_channels_last = True  # SRGAN step +21 % with SRResNet (benchmarks/RESULTS.md)

    def __init__(self, width: int = 64, channels: int = 3):
        super().__init__()
        self.channels = channels
        layers, c_in = [], channels
        for i, mult in enumerate((1, 1, 2, 2, 4, 4, 8, 8)):
            c_out, stride = width * mult, 2 if i % 2 == 1 else 1
            layers.append(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=i == 0))
            if i > 0:  # no batch norm on the first block, as in the paper
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        self.features = nn.Sequential(*layers)  # (B, 8w, H/16, W/16)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(c_in, 16 * width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(16 * width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.channels, name="SRGAN discriminator input", finite=False)
        if min(x.shape[-2:]) < 16:
            raise ValueError(
                f"The SRGAN discriminator needs images of at least 16x16, got {tuple(x.shape[-2:])}."
            )
        return self.head(self.features(x)).flatten()


SR_MODELS: dict[str, type[nn.Module]] = {"srcnn": SRCNN, "srresnet": SRResNet}
