"""Residual networks for generation and restoration (notebook 04; notebook 05 reuses the last one).

A residual block outputs y = x + H(x) instead of y = H(x) (He et al. 2016). Backpropagation then
gives dL/dx = dL/dy (I + dH/dx): the identity term carries the gradient past H unchanged, so a
deep stack of blocks keeps its gradients where a plain stack of the same layers loses them.

What is here, each built by a direct call:

- :class:`ResidualBlock` and :class:`PlainBlock`: the same layers with and without the identity
  path; ``preact=True`` gives the pre-activation ordering (He et al. 2016b).
- :class:`DeepStack` and :class:`StackGenerator`: ``depth`` blocks of either kind, for the
  plain-vs-residual comparisons at equal parameter count.
- :class:`DnCNN`: the denoiser of Zhang et al. (2017), predicting the noise or the clean image.
- :class:`ResnetImageGenerator`: CycleGAN's image-to-image generator (Zhu et al. 2017).

The SNGAN ResNets, with up- and down-sampling residual blocks, are in :mod:`ganlib.models.sngan`.

Images are in [-1, 1]; discriminators return logits (no sigmoid).
"""

from __future__ import annotations

import torch
from torch import nn

from ganlib.images import check_images

NORMS = ("batch", "instance", "none")


def norm_layer(norm: str, width: int) -> nn.Module:
    """``"batch"`` -> BatchNorm2d; ``"instance"`` -> InstanceNorm2d without affine parameters or
    running statistics (CycleGAN's choice); ``"none"`` -> Identity."""
    if norm == "batch":
        return nn.BatchNorm2d(width)
    if norm == "instance":
        return nn.InstanceNorm2d(width)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}.")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")


def _block_body(width: int, norm: str, preact: bool, padding: str) -> nn.Sequential:
    """H(x): two 3x3 convolutions of ``width`` channels, shape kept (B, w, H, W)."""
    _check_choice("padding", padding, ("zeros", "reflect"))
    # Batch norm's shift makes a conv bias redundant; instance norm here has no affine shift.
    bias = norm != "batch"

    def conv():
        return nn.Conv2d(width, width, 3, padding=1, padding_mode=padding, bias=bias)

    if preact:  # He et al. 2016b: norm-ReLU-conv-norm-ReLU-conv
        return nn.Sequential(
            norm_layer(norm, width),
            nn.ReLU(),
            conv(),
            norm_layer(norm, width),
            nn.ReLU(),
            conv(),
        )
    return nn.Sequential(  # conv-norm-ReLU-conv-norm (SRResNet, EDSR, CycleGAN)
        conv(), norm_layer(norm, width), nn.ReLU(), conv(), norm_layer(norm, width)
    )


class ResidualBlock(nn.Module):
    """y = x + H(x), shape kept (B, width, H, W).

    ``preact=False``: H = conv-norm-ReLU-conv-norm. There is no ReLU after the sum (He et al. 2016a
    had one; SRResNet, EDSR and CycleGAN drop it), so the identity path stays clean.
    ``preact=True``: H = norm-ReLU-conv-norm-ReLU-conv (He et al. 2016b). A stack of pre-activation
    blocks needs a final norm-ReLU before its output layer.

    Zeroing H's last layer (the last norm's scale and shift, or the last conv with ``preact=True``)
    turns the block into the identity.

    Args:
        width (int): Channels in and out. Default: 64.
        norm (str): ``"batch"`` | ``"instance"`` | ``"none"``. Default: ``"batch"``.
        preact (bool): Pre-activation ordering. Default: False.
        padding (str): ``"zeros"`` or ``"reflect"`` (CycleGAN, fewer border artefacts).
            Default: ``"zeros"``.
    """

    def __init__(
        self, width: int = 64, norm: str = "batch", preact: bool = False, padding: str = "zeros"
    ):
        super().__init__()
        self.body = _block_body(width, norm, preact, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # y = H(x) + x: the block only has to learn a correction to its input
        return x + self.body(x)


class PlainBlock(nn.Module):
    """y = H(x): the layers of :class:`ResidualBlock` with the identity path removed.

    Same arguments, same parameters. With ``preact=True`` a stack of plain blocks is an ordinary
    CNN in which every convolution follows a norm and a ReLU; with ``preact=False`` consecutive
    blocks meet as ``...-norm-conv-...`` with no ReLU in between, so the notebook's comparisons use
    ``preact=True``.

    Args:
        width (int): Channels in and out. Default: 64.
        norm (str): ``"batch"`` | ``"instance"`` | ``"none"``. Default: ``"batch"``.
        preact (bool): Pre-activation ordering. Default: False.
        padding (str): ``"zeros"`` or ``"reflect"``. Default: ``"zeros"``.
    """

    def __init__(
        self, width: int = 64, norm: str = "batch", preact: bool = False, padding: str = "zeros"
    ):
        super().__init__()
        self.body = _block_body(width, norm, preact, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


BLOCKS = {"plain": PlainBlock, "residual": ResidualBlock}


def _blocks(kind: str, depth: int, width: int, norm: str, preact: bool) -> nn.Sequential:
    _check_choice("block", kind, tuple(BLOCKS))
    if depth < 0:
        raise ValueError(f"depth must be >= 0 blocks, got {depth}.")
    return nn.Sequential(*[BLOCKS[kind](width, norm, preact) for _ in range(depth)])


def _tail(width: int, norm: str, preact: bool) -> nn.Module:
    # A pre-activation stack ends with its last conv: normalise and rectify before the output.
    return nn.Sequential(norm_layer(norm, width), nn.ReLU()) if preact else nn.ReLU()


class DeepStack(nn.Module):
    """Image (B, C, H, W) -> image (B, C, H, W) through ``depth`` blocks: the gradient-flow probe.

    conv 3x3 (C -> width) -> ``depth`` blocks -> norm-ReLU -> conv 3x3 (width -> C); no output
    activation. ``block="plain"`` and ``"residual"`` have exactly the same parameters. The
    network has ``2 * depth + 2`` convolutions, listed in order by :meth:`convs`.

    Args:
        depth (int): Number of blocks. Default: 8.
        width (int): Feature channels. Default: 16.
        channels (int): Image channels in and out. Default: 1.
        block (str): ``"plain"`` | ``"residual"``. Default: ``"residual"``.
        norm (str): ``"batch"`` | ``"instance"`` | ``"none"``. Default: ``"batch"``.
        preact (bool): Pre-activation blocks. Default: True.
    """

    def __init__(
        self,
        depth: int = 8,
        width: int = 16,
        channels: int = 1,
        block: str = "residual",
        norm: str = "batch",
        preact: bool = True,
    ):
        super().__init__()
        self.channels = channels
        self.stem = nn.Conv2d(channels, width, 3, padding=1)  # (B, w, H, W)
        self.blocks = _blocks(block, depth, width, norm, preact)  # (B, w, H, W)
        self.tail = _tail(width, norm, preact)
        self.head = nn.Conv2d(width, channels, 3, padding=1)  # (B, C, H, W)

    def convs(self) -> list[nn.Conv2d]:
        """Every convolution from input to output: stem, two per block, head."""
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.channels, name="DeepStack input", finite=False)
        return self.head(self.tail(self.blocks(self.stem(x))))


class StackGenerator(nn.Module):
    """z (B, z_dim) -> image (B, channels, 28, 28) in [-1, 1], with ``depth`` blocks at 7x7.

    Linear -> (B, w, 7, 7) -> ``depth`` blocks -> [norm-ReLU-upsample x2-conv] -> (B, w, 14, 14)
    -> [norm-ReLU-upsample x2-conv] -> (B, w/2, 28, 28) -> norm-ReLU-conv -> tanh. The blocks sit at
    the lowest resolution, where they are cheapest; ``block="plain"`` and ``"residual"`` have
    exactly the same parameters, so the two differ only by the identity paths.

    Args:
        z_dim (int): Length of the noise vector. Default: 64.
        width (int): Channels of the blocks. Default: 32.
        depth (int): Number of blocks (two convolutions each). Default: 16.
        block (str): ``"plain"`` | ``"residual"``. Default: ``"residual"``.
        norm (str): ``"batch"`` | ``"instance"`` | ``"none"``. Default: ``"batch"``.
        preact (bool): Pre-activation blocks. Default: True.
        channels (int): Output image channels. Default: 1.
    """

    def __init__(
        self,
        z_dim: int = 64,
        width: int = 32,
        depth: int = 16,
        block: str = "residual",
        norm: str = "batch",
        preact: bool = True,
        channels: int = 1,
    ):
        super().__init__()
        self.z_dim, self.width = z_dim, width
        self.fc = nn.Linear(z_dim, width * 7 * 7)
        self.blocks = _blocks(block, depth, width, norm, preact)  # (B, w, 7, 7)
        self.up = nn.Sequential(
            # (B, w, 7, 7) -> (B, w, 14, 14)
            norm_layer(norm, width),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width, width, 3, padding=1),
            # (B, w, 14, 14) -> (B, w/2, 28, 28)
            norm_layer(norm, width),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width, width // 2, 3, padding=1),
            norm_layer(norm, width // 2),
            nn.ReLU(),
            nn.Conv2d(width // 2, channels, 3, padding=1),  # (B, C, 28, 28)
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (B, {self.z_dim}), got {tuple(z.shape)}.")
        x = self.fc(z).view(-1, self.width, 7, 7)  # (B, w, 7, 7)
        return self.up(self.blocks(x))


# --- Restoration --------------------------------------------------------------------------------

PREDICT = ("residual", "clean")


class DnCNN(nn.Module):
    """The DnCNN denoiser (Zhang et al. 2017): noisy image y (B, C, H, W) -> clean estimate.

    ``depth`` 3x3 convolutions: conv-ReLU, then ``depth - 2`` x conv-norm-ReLU, then conv; the
    network's output F(y) has C channels. With the noise model y = x + v:

    - ``predict="residual"`` (the paper): F(y) estimates the noise v and the result is y - F(y);
      the pixel loss ||y - F(y) - x||^2 = ||F(y) - v||^2 is the paper's residual loss;
    - ``predict="clean"``: F(y) estimates x directly.

    Both modes have the same layers and parameters, and ``forward`` returns the clean estimate in
    both, so they train with the same loss against the clean image.

    Args:
        channels (int): Image channels. Default: 1.
        width (int): Feature channels. Default: 64.
        depth (int): Number of convolutions; the paper uses 17 (sigma known). Default: 17.
        norm (str): ``"batch"`` | ``"instance"`` | ``"none"``. Default: ``"batch"``.
        predict (str): ``"residual"`` | ``"clean"``. Default: ``"residual"``.
    """

    def __init__(
        self,
        channels: int = 1,
        width: int = 64,
        depth: int = 17,
        norm: str = "batch",
        predict: str = "residual",
    ):
        super().__init__()
        _check_choice("predict", predict, PREDICT)
        if depth < 2:
            raise ValueError(f"DnCNN needs depth >= 2 convolutions, got {depth}.")
        self.channels, self.predict = channels, predict
        bias = norm != "batch"
        layers = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]  # (B, w, H, W)
        for _ in range(depth - 2):
            layers += [
                nn.Conv2d(width, width, 3, padding=1, bias=bias),
                norm_layer(norm, width),
                nn.ReLU(),
            ]
        layers.append(nn.Conv2d(width, channels, 3, padding=1, bias=False))  # (B, C, H, W)
        self.net = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        check_images(y, channels=self.channels, name="DnCNN input", finite=False)
        if self.predict == "residual":
            # x_hat = y - F(y): F learns the noise v = y - x
            return y - self.net(y)
        return self.net(y)  # x_hat = F(y)


class ResnetImageGenerator(nn.Module):
    """CycleGAN's ResNet generator (Zhu et al. 2017; Johnson et al. 2016): image -> image, same size.

    reflect-pad 3, conv7x7 (in -> w) -> two stride-2 conv3x3 (w -> 2w -> 4w, H/4) -> ``n_blocks``
    :class:`ResidualBlock` (4w, reflection padding) -> two stride-2 transposed conv3x3 (4w -> 2w
    -> w, back to H) -> reflect-pad 3, conv7x7 (w -> out) -> tanh. Each conv before the last is
    followed by the norm and a ReLU. Convolutions have a bias unless the norm is batch norm, as in
    the reference code, so the default build has the reference's 11.378 M parameters.
    H and W must be multiples of 4.

    Args:
        in_ch (int): Input image channels. Default: 3.
        out_ch (int): Output image channels. Default: 3.
        width (int): Channels of the first layer (``ngf``). Default: 64.
        n_blocks (int): Residual blocks; 9 for 256x256 images, 6 for 128x128. Default: 9.
        norm (str): ``"instance"`` | ``"batch"`` | ``"none"``. Default: ``"instance"``.
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        width: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
    ):
        super().__init__()
        _check_choice("norm", norm, NORMS)
        self.in_ch = in_ch
        bias = norm != "batch"
        w = width
        self.down = nn.Sequential(
            nn.Conv2d(in_ch, w, 7, padding=3, padding_mode="reflect", bias=bias),  # (B, w, H, W)
            norm_layer(norm, w),
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=bias),  # (B, 2w, H/2, W/2)
            norm_layer(norm, 2 * w),
            nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1, bias=bias),  # (B, 4w, H/4, W/4)
            norm_layer(norm, 4 * w),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(
            *[ResidualBlock(4 * w, norm, padding="reflect") for _ in range(n_blocks)]
        )
        self.up = nn.Sequential(
            # (B, 4w, H/4, W/4) -> (B, 2w, H/2, W/2)
            nn.ConvTranspose2d(4 * w, 2 * w, 3, 2, padding=1, output_padding=1, bias=bias),
            norm_layer(norm, 2 * w),
            nn.ReLU(),
            # (B, 2w, H/2, W/2) -> (B, w, H, W)
            nn.ConvTranspose2d(2 * w, w, 3, 2, padding=1, output_padding=1, bias=bias),
            norm_layer(norm, w),
            nn.ReLU(),
            nn.Conv2d(w, out_ch, 7, padding=3, padding_mode="reflect"),  # (B, out, H, W)
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.in_ch, name="generator input", finite=False)
        h, w = x.shape[-2:]
        if h % 4 or w % 4:
            raise ValueError(
                f"ResnetImageGenerator halves the size twice, so H and W must be multiples of 4; "
                f"got {h}x{w}. Crop or pad the image, e.g. to {h - h % 4}x{w - w % 4}."
            )
        return self.up(self.blocks(self.down(x)))
