"""Distribution metrics: FID, KID and Inception Score, through torchmetrics, with two feature sets.

- ``features="inception"``: Inception-v3 pool features, the standard. Its weights are downloaded
  once (torch-fidelity's copy of the TF FID network); offline this raises :class:`WeightsUnavailable`.
- ``features="digits"``: the 128 features of ganlib's digit classifier (``ganlib.digits``), for
  28x28 grayscale digits, always available offline. Scores with these features are called
  "FID (MNIST-CNN features)"; they are comparable with each other, never with Inception FID.

All functions take images in the model range [-1, 1], shape (N, C, H, W).

FID = |mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), over feature means mu and covariances S.
KID = the unbiased squared MMD between the feature sets with the cubic polynomial kernel
      k(x, y) = (x.y / d + 1)^3, averaged over random subsets (Binkowski et al. 2018).
IS  = exp(E_x KL(p(y|x) || p(y))), from a classifier's class probabilities.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ganlib.errors import WeightsUnavailable
from ganlib.images import check_images, to_unit_range

# KID and IS keep every feature vector; for the sample sizes of this course that is a few MB.
warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")

FEATURE_NAMES = {"digits": "MNIST-CNN features", "inception": "Inception-v3 features"}


class DigitFeatures(nn.Module):
    """torchmetrics feature extractor: digits (B, 1, 28, 28) in [-1, 1] -> (B, 128) features."""

    num_features = 128

    def __init__(self, logits: bool = False):
        super().__init__()
        from ganlib.digits import load_digit_classifier

        self.net, _ = load_digit_classifier()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return self.net(x) if self.logits else self.net.features(x)


def _inception_error(err: Exception) -> WeightsUnavailable:
    return WeightsUnavailable(
        "Inception-v3 weights for FID/KID/IS could not be loaded "
        f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). They are downloaded once "
        "from the torch-fidelity release on GitHub and cached under ~/.cache/torch/hub/checkpoints. "
        "Connect to the internet once, or copy the cached file there; for 28x28 digits use "
        "features='digits', which works offline."
    )


def _prepare(images: torch.Tensor, features: str, name: str) -> torch.Tensor:
    check_images(images, name=name)
    if features == "digits":
        check_images(images, channels=1, size=(28, 28), name=name)
        return images.float()
    x = to_unit_range(images)  # Inception path: [0, 1] floats, three channels
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _check_features(features: str) -> None:
    if features not in FEATURE_NAMES:
        raise ValueError(f"features must be one of {', '.join(FEATURE_NAMES)}, got {features!r}.")


def _feed(metric, images, features, device, batch_size, **kw):
    for i in range(0, len(images), batch_size):
        metric.update(_prepare(images[i : i + batch_size], features, "images").to(device), **kw)


def _min_samples(n_real: int, n_fake: int, needed: int, what: str) -> None:
    if min(n_real, n_fake) < needed:
        raise ValueError(
            f"{what} needs at least {needed} images in each set, got {n_real} real and {n_fake} generated. "
            "Generate more samples (e.g. raise n_eval)."
        )


def _paired_metric(metric_cls, features: str, device, **kwargs):
    """A torchmetrics real-vs-fake metric on digit or Inception features (clear error offline)."""
    try:
        module = DigitFeatures() if features == "digits" else 2048
        return metric_cls(feature=module, normalize=True, **kwargs).to(device)
    except (OSError, RuntimeError) as err:
        raise _inception_error(err) from None


@torch.no_grad()
def fid(
    real: torch.Tensor,
    fake: torch.Tensor,
    features: str = "digits",
    device="cpu",
    batch_size: int = 500,
) -> float:
    """Frechet distance between the feature distributions of ``real`` and ``fake`` (lower is better).

    Needs more images than feature dimensions in each set (129 for digits, 2049 for Inception),
    so that both covariance matrices have full rank.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check_features(features)
    dims = DigitFeatures.num_features if features == "digits" else 2048
    _min_samples(len(real), len(fake), dims + 1, f"FID ({FEATURE_NAMES[features]})")
    metric = _paired_metric(FrechetInceptionDistance, features, device)
    _feed(metric, real, features, device, batch_size, real=True)
    _feed(metric, fake, features, device, batch_size, real=False)
    return float(metric.compute())


@torch.no_grad()
def kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    features: str = "digits",
    device="cpu",
    subsets: int = 100,
    subset_size: int = 1000,
    batch_size: int = 500,
) -> tuple[float, float]:
    """Kernel Inception Distance (mean, std over ``subsets`` random subsets); lower is better.

    Unbiased, so it can be slightly negative for two samples of the same distribution.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    _check_features(features)
    _min_samples(len(real), len(fake), subset_size, f"KID with subset_size={subset_size}")
    metric = _paired_metric(
        KernelInceptionDistance, features, device, subsets=subsets, subset_size=subset_size
    )
    _feed(metric, real, features, device, batch_size, real=True)
    _feed(metric, fake, features, device, batch_size, real=False)
    mean, std = metric.compute()
    return float(mean), float(std)


@torch.no_grad()
def inception_score(
    fake: torch.Tensor,
    features: str = "digits",
    device="cpu",
    splits: int = 10,
    batch_size: int = 500,
) -> tuple[float, float]:
    """Inception Score (mean, std over ``splits``); higher is better.

    With ``features="digits"`` the digit classifier plays Inception's role (the classifier-based
    analog, at most 10 for ten classes); with ``"inception"`` it is the standard IS.
    """
    from torchmetrics.image.inception import InceptionScore

    _check_features(features)
    if len(fake) < 2 * splits:
        raise ValueError(
            f"Inception Score with {splits} splits needs at least {2 * splits} images, got {len(fake)}."
        )
    try:
        if features == "digits":
            metric = InceptionScore(
                feature=DigitFeatures(logits=True), splits=splits, normalize=False
            )
        else:
            metric = InceptionScore(feature="logits_unbiased", splits=splits, normalize=True)
    except (OSError, RuntimeError) as err:
        raise _inception_error(err) from None
    metric = metric.to(device)
    _feed(metric, fake, features, device, batch_size)
    mean, std = metric.compute()
    return float(mean), float(std)


@torch.no_grad()
def class_accuracy(images: torch.Tensor, labels: torch.Tensor, device="cpu") -> float:
    """Fraction of class-conditional digit samples that the digit classifier assigns the intended label."""
    from ganlib.digits import load_digit_classifier, predict

    if len(images) != len(labels):
        raise ValueError(f"Got {len(images)} images but {len(labels)} labels.")
    model, _ = load_digit_classifier(device)
    return float(
        (predict(model, _prepare(images, "digits", "images")).argmax(1) == labels.cpu())
        .float()
        .mean()
    )
