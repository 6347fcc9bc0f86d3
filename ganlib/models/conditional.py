"""A class-conditional DCGAN for 28x28 digits: G(z, y) and a projection discriminator D(x, y).

Conditioning (which digit to draw) enters the two networks differently:

- **G** takes ``[z, onehot(y)]``, the noise vector with the one-hot label appended, as in the
  original conditional GAN (Mirza & Osindero 2014).
- **D** is a *projection* discriminator (Miyato & Koyama 2018): with image features
  phi(x) (B, F), an unconditional head psi and a learned class embedding e_y,

      D(x, y) = psi(phi(x)) + <e_y, phi(x)>.

  The inner product asks "do these features look like class y?" on top of "do they look real?".

Why projection and not AC-GAN: the projection D changes only D's *output*, so the usual GAN loss
and ganlib's ``d_step`` / ``g_step`` / ``fit`` train it unchanged. AC-GAN adds a second
(classification) loss to both players, and is known to push G towards easy-to-classify,
less diverse samples (Miyato & Koyama 2018, Sec. 5) -- the opposite of what augmentation needs.

``ganlib.train.fit`` hands G one tensor and D one tensor. :class:`PackedGenerator` and
:class:`PackedDiscriminator` carry the label inside those tensors -- G's input is ``[z, onehot(y)]``,
D's input has K extra one-hot *planes* -- and :class:`ConditionalBatches` makes such batches.
The networks themselves take ``(z, y)`` and ``(x, y)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from ganlib.images import check_images
from ganlib.models.dcgan import init_dcgan_weights
from ganlib.plotting import LiveView, figure_png, plot_history, show_grid


def _check_labels(y: torch.Tensor, n: int, n_classes: int) -> None:
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.shape != (n,):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"labels must be an int64 tensor of shape ({n},), got {shape}.")
    if n and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(
            f"labels must be in 0..{n_classes - 1}, got values in [{int(y.min())}, {int(y.max())}]."
        )


class ConditionalGenerator(nn.Module):
    """(z (B, z_dim), y (B,)) -> image (B, channels, 28, 28) in [-1, 1]: a DCGAN G fed [z, onehot(y)].

    Args:
        z_dim (int): Length of the noise vector. Default: 64.
        n_classes (int): Number of classes K. Default: 10.
        width (int): Channels of the last hidden layer; the first has twice as many. Default: 64.
        channels (int): Output image channels. Default: 1.
    """

    def __init__(self, z_dim: int = 64, n_classes: int = 10, width: int = 64, channels: int = 1):
        super().__init__()
        self.z_dim, self.n_classes, self.channels = z_dim, n_classes, channels
        self.net = nn.Sequential(
            # (B, z_dim + K, 1, 1) -> (B, 2w, 7, 7)
            nn.ConvTranspose2d(z_dim + n_classes, 2 * width, 7, 1, 0, bias=False),
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

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim or not z.is_floating_point():
            raise ValueError(f"z must be float noise of shape (B, {self.z_dim}), got {z.shape}.")
        _check_labels(y, z.shape[0], self.n_classes)
        # G's input [z, onehot(y)]: (B, z_dim + K)
        code = torch.cat([z, F.one_hot(y, self.n_classes).to(z.dtype)], dim=1)
        return self.net(code[:, :, None, None])


class ConditionalDiscriminator(nn.Module):
    """(x (B, channels, 28, 28), y (B,)) -> one logit per image (B,); real = 1, fake = 0, no sigmoid.

    D(x, y) = psi(phi(x)) + <e_y, phi(x)>  (projection discriminator). Spectral normalisation on
    every layer keeps D smooth, which matters when it sees only a few hundred real digits.

    Args:
        n_classes (int): Number of classes K. Default: 10.
        width (int): Channels of the first layer; the second has twice as many. Default: 64.
        channels (int): Input image channels. Default: 1.
    """

    def __init__(self, n_classes: int = 10, width: int = 64, channels: int = 1):
        super().__init__()
        self.n_classes, self.channels = n_classes, channels
        features = 2 * width * 7 * 7
        self.phi = nn.Sequential(
            # (B, c, 28, 28) -> (B, w, 14, 14)
            spectral_norm(nn.Conv2d(channels, width, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            # (B, w, 14, 14) -> (B, 2w, 7, 7)
            spectral_norm(nn.Conv2d(width, 2 * width, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            nn.Flatten(),  # (B, 2w * 49)
        )
        self.psi = spectral_norm(nn.Linear(features, 1))
        self.embed = spectral_norm(nn.Embedding(n_classes, features))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.channels, size=(28, 28), name="D input", finite=False)
        _check_labels(y, x.shape[0], self.n_classes)
        h = self.phi(x)  # (B, F)
        # D(x, y) = psi(phi(x)) + <e_y, phi(x)>
        return self.psi(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)  # (B,)


# --- Carrying labels through ganlib.train.fit -------------------------------------------------


def pack_images(x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Images (B, C, H, W) + labels (B,) -> (B, C + K, H, W): K one-hot planes in {-1, 1} appended."""
    planes = F.one_hot(y, n_classes).to(x.dtype) * 2 - 1  # (B, K) in {-1, 1}
    return torch.cat([x, planes[:, :, None, None].expand(-1, -1, *x.shape[-2:])], dim=1)


def unpack_images(packed: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_images`: (B, C + K, H, W) -> images (B, C, H, W), labels (B,)."""
    return packed[:, :-n_classes], packed[:, -n_classes:, 0, 0].argmax(dim=1)


def pack_code(z: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Noise (B, z_dim) + labels (B,) -> G's packed input (B, z_dim + K): [z, onehot(y)]."""
    return torch.cat([z, F.one_hot(y, n_classes).to(z.dtype)], dim=1)


class PackedGenerator(nn.Module):
    """Adapter for ``fit``: [z, onehot(y)] (B, z_dim + K) -> packed images (B, C + K, 28, 28)."""

    def __init__(self, G: ConditionalGenerator):
        super().__init__()
        self.G = G

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        z, y = code[:, : self.G.z_dim], code[:, self.G.z_dim :].argmax(dim=1)
        return pack_images(self.G(z, y), y, self.G.n_classes)


class PackedDiscriminator(nn.Module):
    """Adapter for ``fit``: packed images (B, C + K, 28, 28) -> D(x, y) logits (B,).

    Args:
        D: The conditional discriminator.
        shift (int): DiffAugment-style translation (Zhao et al. 2020): in training mode every
            image D sees, real or fake, is shifted by up to ``shift`` pixels (zero fill) before
            D looks at it. Because the same random operation is applied to real and fake images
            and is differentiable, G is not taught to shift its digits; D just memorises the few
            real images less easily. 0 turns it off. Default: 0.
    """

    def __init__(self, D: ConditionalDiscriminator, shift: int = 0):
        super().__init__()
        self.D, self.shift = D, shift

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        x, y = unpack_images(packed, self.D.n_classes)
        if self.training and self.shift:
            x = random_shift(x, self.shift)
        return self.D(x, y)


def random_shift(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Shift each image by its own random (dy, dx) in [-max_shift, max_shift], filling with -1."""
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)  # (B, C, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[bi, ci, rows, cols]  # (B, C, H, W)


class ConditionalBatches:
    """Endless ``(packed real images, packed G input)`` pairs for ``fit(..., g_input="batch")``.

    Each batch draws real digits with their labels (a :class:`ganlib.data.Batches`) and fresh
    noise z from this iterator's own generator; G is asked for the *same labels* as the real
    batch, so D sees real and fake digits of each class in equal numbers.

    Args:
        images: Real digits in [-1, 1], (N, C, 28, 28).
        labels: Their labels, int64 (N,).
        batch_size: Digits per batch (at most N).
        z_dim: G's noise length.
        n_classes: Number of classes. Default: 10.
        seed: Seeds both the batch order and the noise. Default: 0.
    """

    def __init__(self, images, labels, batch_size: int, z_dim: int, n_classes=10, seed=0):
        from ganlib.data import Batches

        _check_labels(labels, len(images), n_classes)
        self.batches = Batches(images, labels, batch_size=batch_size, seed=seed)
        self.z_dim, self.n_classes = z_dim, n_classes
        self.generator = torch.Generator().manual_seed(seed + 1)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = next(self.batches)
        z = torch.randn(len(y), self.z_dim, generator=self.generator).to(x.device)
        return pack_images(x, y, self.n_classes), pack_code(z, y, self.n_classes)

    def state_dict(self) -> dict:
        return {"batches": self.batches.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state["batches"])
        self.generator.set_state(state["generator"])


@torch.no_grad()
def sample_digits(
    G: ConditionalGenerator, labels: torch.Tensor, seed: int = 0, batch_size: int = 500
) -> torch.Tensor:
    """Digits of the given classes from G in eval mode, (N, C, 28, 28) in [-1, 1]; fixed noise per seed."""
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    was_training = G.training
    G.eval()
    try:
        out = []
        for i in range(0, len(labels), batch_size):
            y = labels[i : i + batch_size].to(device)
            z = torch.randn(len(y), G.z_dim, generator=gen).to(device)
            out.append(G(z, y).float().cpu())
    finally:
        G.train(was_training)
    return torch.cat(out)


class ConditionalLiveView(LiveView):
    """:class:`ganlib.plotting.LiveView` for packed conditional runs: shows the image channels only."""

    def __init__(self, fixed_code: torch.Tensor, channels: int = 1, **kwargs):
        super().__init__(fixed_code, **kwargs)
        self.channels = channels

    def draw(self, run) -> bytes:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(
            1, 3, figsize=(13, 3.4), gridspec_kw={"width_ratios": [1.2, 1.2, 1]}
        )
        plot_history(run.history, axes[:2])
        samples = run.sample(self.fixed_z)[:, : self.channels]
        show_grid(samples, f"{self.sample_title}, step {run.step}", nrow=self.nrow, ax=axes[2])
        fig.suptitle(self.title)
        return figure_png(fig)
