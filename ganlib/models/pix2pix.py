"""pix2pix networks (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator.

- :class:`UNetGenerator`: an encoder of stride-2 4x4 convolutions down to a bottleneck and a
  mirrored decoder; decoder level i also receives encoder level i (a *skip connection*), so the
  low-level structure of the input (edges, positions) need not squeeze through the bottleneck.
- :class:`EncoderDecoderGenerator`: exactly the same layers without the skips (the paper's
  "encoder-decoder" ablation).
- :class:`PatchDiscriminator`: a fully convolutional D that outputs one logit per *patch*; its
  ``n_layers`` sets the patch size (receptive field): 0 -> 1x1 (PixelGAN), 1 -> 16x16,
  3 -> 70x70 (the paper's default); :meth:`PatchDiscriminator.for_image` picks the smallest
  ``n_layers`` whose patch covers a whole image (the paper's "ImageGAN", 286x286 at 256x256).
- :func:`receptive_field`: the patch size in closed form, 9 * 2^n - 2 for n >= 1.

Code (vs. paper): ``width`` (ngf / ndf = 64), ``depth`` (number of downsamplings, 8 for 256x256
images: "U-Net-256"). Images are in [-1, 1]; discriminators return logits (no sigmoid).
"""

from __future__ import annotations

import torch
from torch import nn

from ganlib.images import check_images
from ganlib.models.resnet import NORMS, _check_choice, norm_layer


def _unet_channels(width: int, depth: int) -> list[int]:
    """Channels of encoder levels 0..depth-1: w, 2w, 4w, 8w, 8w, ... (capped at 8w, as the paper)."""
    return [width * min(2**i, 8) for i in range(depth)]


class _UNetLike(nn.Module):
    """Shared body of :class:`UNetGenerator` and :class:`EncoderDecoderGenerator`."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        width: int,
        depth: int,
        norm: str,
        dropout: float,
        skips: bool,
    ):
        super().__init__()
        _check_choice("norm", norm, NORMS)
        if depth < 2:
            raise ValueError(f"A U-Net needs depth >= 2 downsamplings, got {depth}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout}.")
        self.in_ch, self.out_ch, self.depth, self.skips = in_ch, out_ch, depth, skips
        ch = _unet_channels(width, depth)
        bias = norm != "batch"  # batch norm's shift makes a conv bias redundant (reference code)
        # Encoder: level i halves the size; level 0 has no norm, the innermost level none either.
        enc = [nn.Conv2d(in_ch, ch[0], 4, 2, 1, bias=bias)]  # (B, w, H/2, W/2)
        for i in range(1, depth):
            innermost = i == depth - 1
            enc.append(
                nn.Sequential(
                    nn.LeakyReLU(0.2),
                    nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=bias),  # (B, ch[i], H/2^(i+1), ...)
                    nn.Identity() if innermost else norm_layer(norm, ch[i]),
                )
            )
        self.encoder = nn.ModuleList(enc)
        # Decoder: decoder level i (i = depth-1 .. 1) doubles the size and outputs ch[i-1]
        # channels; with skips its input is concat(decoder output, encoder level i).
        dec = []
        for i in range(depth - 1, 0, -1):
            c_in = ch[i] if (i == depth - 1 or not skips) else 2 * ch[i]
            # Dropout on the three decoder levels next to the bottleneck (as the reference U-Net-256)
            # is pix2pix's only source of noise.
            drop = dropout > 0 and i >= depth - 4 and i != depth - 1
            dec.append(
                nn.Sequential(
                    nn.ReLU(),
                    nn.ConvTranspose2d(c_in, ch[i - 1], 4, 2, 1, bias=bias),
                    norm_layer(norm, ch[i - 1]),
                    nn.Dropout(dropout) if drop else nn.Identity(),
                )
            )
        c_last = 2 * ch[0] if skips else ch[0]
        dec.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_last, out_ch, 4, 2, 1), nn.Tanh()))
        self.decoder = nn.ModuleList(dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.in_ch, name="generator input", finite=False)
        h, w = x.shape[-2:]
        m = 2**self.depth
        if h % m or w % m:
            raise ValueError(
                f"This generator halves the size {self.depth} times, so H and W must be multiples "
                f"of {m}; got {h}x{w}. Crop or pad the image, e.g. to {max(m, h - h % m)}x"
                f"{max(m, w - w % m)}, or build it with a smaller depth."
            )
        feats = []
        for layer in self.encoder:
            x = layer(x)
            feats.append(x)  # feats[i]: (B, ch[i], H / 2^(i+1), W / 2^(i+1))
        y = feats[-1]  # the bottleneck, (B, ch[-1], H / 2^depth, W / 2^depth)
        for k, layer in enumerate(self.decoder):
            level = self.depth - 1 - k  # the encoder level whose size y has now
            if self.skips and k > 0:
                y = torch.cat([y, feats[level]], dim=1)  # skip: (B, 2 ch[level], ...)
            y = layer(y)
        return y  # (B, out_ch, H, W) in [-1, 1]


class UNetGenerator(_UNetLike):
    """pix2pix's U-Net generator: encoder-decoder with skip connections between mirrored levels.

    Encoder: conv 4x4 stride 2 (C_in -> w), then ``depth - 1`` blocks LeakyReLU(0.2)-conv 4x4
    stride 2-norm with w, 2w, 4w, 8w, 8w, ... channels (no norm at the bottleneck). Decoder:
    ``depth`` blocks ReLU-transposed conv 4x4 stride 2-norm[-dropout], each taking the previous
    decoder output concatenated with the encoder output of the same size; the last one ends in
    tanh. ``depth = 8`` takes 256x256 to 1x1 (the paper's U-Net-256); H and W must be multiples of
    2^depth.

    Args:
        in_ch (int): Input channels (1 for an edge map or a grayscale image). Default: 3.
        out_ch (int): Output channels. Default: 3.
        width (int): Channels of the first layer (``ngf``). Default: 64.
        depth (int): Number of stride-2 downsamplings. Default: 8.
        norm (str): ``"batch"`` (the paper) | ``"instance"`` | ``"none"``. Default: ``"batch"``.
        dropout (float): Dropout probability in the three decoder blocks next to the bottleneck,
            the only noise pix2pix uses (at training *and* test time in the paper). Default: 0.5.
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        width: int = 64,
        depth: int = 8,
        norm: str = "batch",
        dropout: float = 0.5,
    ):
        super().__init__(in_ch, out_ch, width, depth, norm, dropout, skips=True)


class EncoderDecoderGenerator(_UNetLike):
    """:class:`UNetGenerator` without its skip connections: all information passes the bottleneck.

    Same arguments and layers; the decoder convolutions take half as many input channels.
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        width: int = 64,
        depth: int = 8,
        norm: str = "batch",
        dropout: float = 0.5,
    ):
        super().__init__(in_ch, out_ch, width, depth, norm, dropout, skips=False)


def receptive_field(n_layers: int) -> int:
    """Side in pixels of the input patch that one output logit of :class:`PatchDiscriminator` sees.

    Going backwards from one output pixel, a convolution with kernel k and stride s turns a field
    of r pixels into (r - 1) s + k. The two stride-1 4x4 convolutions at the end give 7; each of
    the ``n_layers`` stride-2 4x4 convolutions then maps r -> 2r + 2, so r_n = 9 * 2^n - 2:
    16, 34, 70, 142, 286 for n = 1..5. ``n_layers = 0`` is the PixelGAN of 1x1 convolutions: 1.
    """
    if n_layers < 0:
        raise ValueError(f"n_layers must be >= 0, got {n_layers}.")
    if n_layers == 0:
        return 1
    # r_n = 9 * 2^n - 2
    return 9 * 2**n_layers - 2


class PatchDiscriminator(nn.Module):
    """PatchGAN: one real/fake logit per overlapping patch, shape (B, 1, H', W'). Returns logits.

    ``n_layers >= 1``: conv 4x4 stride 2 (C -> w), LeakyReLU(0.2); ``n_layers - 1`` more stride-2
    blocks conv-norm-LeakyReLU (channels doubling, capped at 8w); one stride-1 conv-norm-LeakyReLU;
    a stride-1 conv 4x4 to 1 channel. Each logit sees a :func:`receptive_field` (n_layers) square:
    70x70 for the default 3. ``n_layers = 0``: the 1x1 PixelGAN (conv 1x1 - LeakyReLU - conv 1x1 -
    norm - LeakyReLU - conv 1x1), which judges each pixel's colour alone.

    For pix2pix the input is the *pair* concat(source, target or G(source)), so ``in_ch`` is
    C_source + C_target: D can only call a pair real if the target fits the source.

    Args:
        in_ch (int): Input channels, e.g. 3 + 3 for an RGB->RGB pair. Default: 6.
        width (int): Channels of the first layer (``ndf``). Default: 64.
        n_layers (int): Stride-2 convolutions; sets the patch size. Default: 3 (70x70).
        norm (str): ``"batch"`` (pix2pix) | ``"instance"`` (CycleGAN) | ``"none"``.
            Default: ``"batch"``.
    """

    def __init__(self, in_ch: int = 6, width: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        _check_choice("norm", norm, NORMS)
        if n_layers < 0:
            raise ValueError(f"n_layers must be >= 0 (0 = 1x1 PixelGAN), got {n_layers}.")
        self.in_ch, self.n_layers = in_ch, n_layers
        bias = norm != "batch"
        if n_layers == 0:
            self.net = nn.Sequential(
                nn.Conv2d(in_ch, width, 1),  # (B, w, H, W)
                nn.LeakyReLU(0.2),
                nn.Conv2d(width, 2 * width, 1, bias=bias),  # (B, 2w, H, W)
                norm_layer(norm, 2 * width),
                nn.LeakyReLU(0.2),
                nn.Conv2d(2 * width, 1, 1),  # (B, 1, H, W): one logit per pixel
            )
            return
        layers: list[nn.Module] = [nn.Conv2d(in_ch, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width  # (B, w, H/2, W/2)
        for i in range(1, n_layers):
            c_next = width * min(2**i, 8)
            layers += [
                nn.Conv2d(c, c_next, 4, 2, 1, bias=bias),  # (B, c_next, H/2^(i+1), W/2^(i+1))
                norm_layer(norm, c_next),
                nn.LeakyReLU(0.2),
            ]
            c = c_next
        c_next = width * min(2**n_layers, 8)
        layers += [
            nn.Conv2d(c, c_next, 4, 1, 1, bias=bias),  # stride 1: size - 1
            norm_layer(norm, c_next),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c_next, 1, 4, 1, 1),  # (B, 1, H/2^n - 2, W/2^n - 2): the patch logits
        ]
        self.net = nn.Sequential(*layers)

    @classmethod
    def for_image(
        cls, image_size: int, in_ch: int = 6, width: int = 64, norm: str = "batch"
    ) -> PatchDiscriminator:
        """The "ImageGAN": the smallest ``n_layers`` whose patch covers the whole image.

        At 256x256 this is n_layers = 5 (286x286 patches), the paper's full-image D. At 64x64 it is
        n_layers = 3, the 70x70 PatchGAN itself.
        """
        n = 1
        while receptive_field(n) < image_size:
            n += 1
        if image_size // 2**n < 3:
            raise ValueError(
                f"A {image_size}x{image_size} image is too small for a {n}-layer discriminator "
                f"(it needs at least {3 * 2**n} pixels)."
            )
        return cls(in_ch=in_ch, width=width, n_layers=n, norm=norm)

    @property
    def patch_size(self) -> int:
        return receptive_field(self.n_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.in_ch, name="discriminator input", finite=False)
        m = 2**self.n_layers
        if self.n_layers and min(x.shape[-2:]) < 3 * m:
            raise ValueError(
                f"A {self.n_layers}-layer PatchDiscriminator needs images of at least {3 * m}x"
                f"{3 * m} pixels, got {tuple(x.shape[-2:])}."
            )
        return self.net(x)
