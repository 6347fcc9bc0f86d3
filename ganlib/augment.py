"""Data augmentation measured: a low-data digit classifier with classic and GAN-made extra data.

- :func:`labelled_split` / :func:`low_data_mnist`: N labelled digits per class, the same N for
  every class, chosen deterministically from a seed, and held-out digits that never overlap them.
- :func:`classic_augmentation`: random affine (rotation, translation, scale) and elastic
  deformation from ``torchvision.transforms.v2``, drawn independently for every image.
- :class:`MixedBatches`: training batches in which each example is, with probability
  ``synthetic_fraction``, a GAN sample instead of a real digit.
- :class:`SmallCNN`, :func:`train_classifier`, :func:`accuracy`: the small classifier trained
  and evaluated for the mean +- std table.

Images are uint8 (N, 28, 28) where they come from the dataset and float in [-1, 1],
(N, 1, 28, 28), inside the classifier.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganlib.images import check_images, to_model_range
from ganlib.train import evaluating

POOL = 8000  # MNIST test[:8000] is the pool for labelled digits, test[8000:] is held out


def labelled_split(labels: torch.Tensor, n_per_class: int, seed: int) -> torch.Tensor:
    """Indices of exactly ``n_per_class`` examples of every class, chosen at random by ``seed``.

    Class by class (0, 1, ...), a permutation of that class's indices is drawn from one
    ``torch.Generator`` seeded with ``seed`` and the first ``n_per_class`` are kept. The result is
    sorted, so the same seed always gives the same indices.

    Args:
        labels: int64 labels (N,) of the pool to choose from.
        n_per_class (int): Examples per class, at least 1.
        seed (int): Selects the split.

    Raises:
        ValueError: ``n_per_class`` is not a positive integer or exceeds a class's count.
    """
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.is_floating_point():
        raise ValueError("labels must be a 1-D integer tensor of class indices.")
    if not isinstance(n_per_class, int) or isinstance(n_per_class, bool) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n_per_class!r}.")
    counts = torch.bincount(labels)
    present = [c for c in range(len(counts)) if counts[c] > 0]
    smallest = min(present, key=lambda c: int(counts[c]))
    if n_per_class > counts[smallest]:
        raise ValueError(
            f"n_per_class={n_per_class} is more than the pool has of class {smallest} "
            f"({int(counts[smallest])} examples); use at most {int(counts[smallest])}."
        )
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c in present:
        idx = torch.nonzero(labels == c).flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:n_per_class]])
    return torch.cat(chosen).sort().values


def low_data_mnist(n_per_class: int, seed: int) -> dict[str, torch.Tensor]:
    """The low-data setting from the offline MNIST test split.

    The first 8,000 test digits are the pool the ``n_per_class`` labelled digits per class come
    from; the last 2,000 are held out for evaluation and are never trained on.

    Returns:
        ``{"train_x", "train_y", "heldout_x", "heldout_y"}``: uint8 (n, 28, 28) images and int64
        labels; ``train_x`` has ``10 * n_per_class`` digits.
    """
    from ganlib.data import load_mnist

    images, labels = load_mnist("test")
    idx = labelled_split(labels[:POOL], n_per_class, seed)
    return {
        "train_x": images[idx],
        "train_y": labels[idx],
        "heldout_x": images[POOL:],
        "heldout_y": labels[POOL:],
    }


def classic_augmentation(
    kind: str = "affine+elastic",
    degrees: float = 12.0,
    translate: float = 0.1,
    scale: tuple[float, float] = (0.9, 1.1),
    elastic_alpha: float = 34.0,
    elastic_sigma: float = 4.0,
):
    """A torchvision.transforms.v2 pipeline for one digit (1, 28, 28) in [-1, 1].

    No flips: a mirrored 2, 3, 4, 5, 6, 7 or 9 is not that digit (and a flipped 6 rotated by
    180 degrees is a 9), so a flip would teach the classifier wrong labels.

    Args:
        kind (str): ``"affine"`` | ``"elastic"`` | ``"affine+elastic"``. Default: both.
        degrees (float): Largest rotation in degrees. Default: 12.
        translate (float): Largest shift as a fraction of the side. Default: 0.1.
        scale: Range of the zoom factor. Default: (0.9, 1.1).
        elastic_alpha, elastic_sigma: Strength and smoothness (pixels) of the elastic field;
            Simard et al. (2003) use sigma = 4 for digits. Default: 34, 4.
    """
    from torchvision.transforms import v2

    if kind not in ("affine", "elastic", "affine+elastic"):
        raise ValueError(f"kind must be 'affine', 'elastic' or 'affine+elastic', got {kind!r}.")
    steps = []
    if "affine" in kind:
        steps.append(
            v2.RandomAffine(degrees=degrees, translate=(translate, translate), scale=scale, fill=-1)
        )
    if "elastic" in kind:
        steps.append(v2.ElasticTransform(alpha=elastic_alpha, sigma=elastic_sigma, fill=-1))
    return v2.Compose(steps)


def augment_batch(x: torch.Tensor, transform) -> torch.Tensor:
    """Apply ``transform`` to each image of (B, C, H, W) separately (v2 draws one set of random
    parameters per call, so a whole-batch call would move every image the same way)."""
    return torch.stack([transform(img) for img in x])


def augmented_bank(x: torch.Tensor, y: torch.Tensor, copies: int, transform, seed: int = 0):
    """``copies`` randomly transformed versions of every image, made once: ``(images, labels)``.

    Transforming a fixed bank up front instead of every batch on the fly costs the same per image
    but is done once, not once per training step: with 28x28 digits the per-image Python call is
    the bottleneck. ``copies`` = 40 gives each digit 40 distinct deformations.

    Args:
        x, y: Digits in [-1, 1] (N, 1, 28, 28) and labels (N,).
        copies (int): Transformed versions per image (the originals are not included).
        transform: A per-image transform, e.g. :func:`classic_augmentation`.
        seed (int): Fixes the random deformations.
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}.")
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    torch.manual_seed(seed)  # torchvision draws from torch's global generator
    # one image at a time is far too little work to share between threads: on 2 busy cores a
    # second thread makes each call several times slower
    torch.set_num_threads(1)
    try:
        bank = augment_batch(x.repeat(copies, 1, 1, 1), transform)
    finally:
        torch.set_rng_state(state)
        torch.set_num_threads(threads)
    return bank, y.repeat(copies)


class MixedBatches:
    """Endless ``(images (B, 1, 28, 28) in [-1, 1], labels (B,))`` batches for the classifier.

    Each example is a GAN sample with probability ``synthetic_fraction`` and a real digit
    otherwise. With ``augmented`` (a bank from :func:`augmented_bank`), a real digit is drawn
    from the originals and their deformed copies alike (classic augmentation).

    Args:
        real_x, real_y: The labelled digits, float [-1, 1] (N, 1, 28, 28) and int64 (N,).
        batch_size (int): Examples per batch.
        synthetic: Optional ``(images, labels)`` made by a GAN, same format.
        synthetic_fraction (float): Expected share of GAN samples per batch, in [0, 1).
        augmented: Optional ``(images, labels)`` bank of deformed real digits.
        seed (int): Seeds the draws.
    """

    def __init__(
        self,
        real_x,
        real_y,
        batch_size: int,
        synthetic=None,
        synthetic_fraction: float = 0.0,
        augmented=None,
        seed: int = 0,
    ):
        check_images(real_x, channels=1, size=(28, 28), name="real digits")
        if not 0.0 <= synthetic_fraction < 1.0:
            raise ValueError(f"synthetic_fraction must be in [0, 1), got {synthetic_fraction}.")
        if synthetic_fraction > 0 and synthetic is None:
            raise ValueError("synthetic_fraction > 0 needs synthetic=(images, labels).")
        if augmented is not None:
            real_x = torch.cat([real_x, augmented[0]])
            real_y = torch.cat([real_y, augmented[1]])
        self.real_x, self.real_y, self.batch_size = real_x, real_y, batch_size
        self.synthetic, self.fraction = synthetic, synthetic_fraction
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        g, b = self.generator, self.batch_size
        take_fake = torch.rand(b, generator=g) < self.fraction
        idx_real = torch.randint(len(self.real_x), (b,), generator=g)
        x, y = self.real_x[idx_real].clone(), self.real_y[idx_real].clone()
        if take_fake.any():
            fx, fy = self.synthetic
            idx_fake = torch.randint(len(fx), (int(take_fake.sum()),), generator=g)
            x[take_fake], y[take_fake] = fx[idx_fake], fy[idx_fake]
        return x, y


class SmallCNN(nn.Module):
    """A small digit classifier: two conv-ReLU-maxpool stages, dropout, two linear layers.

    (B, 1, 28, 28) -> conv 3x3 (w) -> pool -> (B, w, 14, 14) -> conv 3x3 (2w) -> pool ->
    (B, 2w, 7, 7) -> linear 128 -> linear 10 logits.

    Args:
        width (int): Channels of the first convolution. Default: 32.
    """

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, w, 14, 14)
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(2 * width * 49, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=1, size=(28, 28), name="classifier input", finite=False)
        return self.net(x)


def train_classifier(
    batches,
    steps: int,
    *,
    seed: int = 0,
    lr: float = 1e-3,
    width: int = 32,
    weight_decay: float = 1e-4,
    device="cpu",
) -> SmallCNN:
    """Train a fresh :class:`SmallCNN` for ``steps`` Adam steps on cross-entropy; returns it in eval mode.

    These runs take seconds, so they keep no checkpoints; the seed fixes the initialisation.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    torch.manual_seed(seed)
    model = SmallCNN(width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    # cosine decay to 0: the last steps settle instead of bouncing on a tiny training set
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))
    )
    model.train()
    for _ in range(steps):
        x, y = next(batches)
        # L = -(1/B) sum_i log softmax(f(x_i))_{y_i}
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size=1000
) -> float:
    """Fraction of ``images`` (uint8 (N, 28, 28) or [-1, 1] (N, 1, 28, 28)) classified as ``labels``."""
    if images.dtype == torch.uint8:
        images = to_model_range(images[:, None] if images.ndim == 3 else images)
    if len(images) != len(labels):
        raise ValueError(f"Got {len(images)} images but {len(labels)} labels.")
    device = next(model.parameters()).device
    correct = 0
    with evaluating(model):  # dropout off; the model's own mode is restored after
        for i in range(0, len(images), batch_size):
            pred = model(images[i : i + batch_size].to(device)).argmax(dim=1).cpu()
            correct += int((pred == labels[i : i + batch_size]).sum())
    return correct / len(images)


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); std is 0 for a single value."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if len(t) == 0:
        raise ValueError("mean_std needs at least one value.")
    return float(t.mean()), float(t.std()) if len(t) > 1 else 0.0
