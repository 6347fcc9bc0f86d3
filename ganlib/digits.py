"""A small digit classifier, used to check generated digits (and, later, as FID features).

``scripts/train_digit_classifier.py`` trains it; its weights ship in ``ganlib/weights/`` with a
record of what data it saw and its accuracy on digits it never saw. It is *not* an Inception
network: scores computed with its features are only comparable with each other.
"""

from __future__ import annotations

from importlib import resources

import torch
from torch import nn

from ganlib.images import check_images

WEIGHTS = "mnist_cnn.pt"


class DigitCNN(nn.Module):
    """28x28 grayscale digit in [-1, 1] -> 10 class logits; :meth:`features` gives 128 numbers."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),  # (B, 128): the feature vector
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=1, size=(28, 28), name="digit images", finite=False)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def load_digit_classifier(device: torch.device | str = "cpu") -> tuple[DigitCNN, dict]:
    """The shipped classifier in eval mode, and its record (training data, held-out accuracy)."""
    path = resources.files("ganlib") / "weights" / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"The digit classifier weights are missing ({path}). Recreate them with "
            "`python scripts/train_digit_classifier.py` (about a minute on a CPU)."
        )
    with resources.as_file(path) as p:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    model = DigitCNN()
    model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    return model.to(device).eval(), blob["meta"]


@torch.no_grad()
def predict(model: DigitCNN, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Class probabilities (N, 10) for digits in [-1, 1], computed in batches."""
    device = next(model.parameters()).device
    out = [
        torch.softmax(model(images[i : i + batch_size].to(device).float()), dim=1).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def digit_report(model: DigitCNN, images: torch.Tensor, threshold: float = 0.9) -> dict:
    """How digit-like a batch of images is, according to the classifier.

    Returns:
        ``recognizable``: fraction of images classified with probability >= ``threshold``;
        ``classes_covered``: digits that make up at least 2% of the confident predictions
        (10 means no class is missing: a sign against mode collapse);
        ``class_counts``: confident predictions per digit 0-9.
    """
    probs = predict(model, images)
    conf, label = probs.max(dim=1)
    confident = conf >= threshold
    counts = torch.bincount(label[confident], minlength=10)
    covered = int((counts >= 0.02 * max(int(confident.sum()), 1)).sum()) if confident.any() else 0
    return {
        "recognizable": float(confident.float().mean()),
        "classes_covered": covered,
        "class_counts": counts.tolist(),
    }
