"""Low-data splits, classic augmentation, mixed batches and the small classifier."""

import pytest
import torch

from ganlib.augment import (
    POOL,
    MixedBatches,
    SmallCNN,
    accuracy,
    augmented_bank,
    classic_augmentation,
    labelled_split,
    low_data_mnist,
    mean_std,
    train_classifier,
)


@pytest.mark.parametrize("n", [1, 10, 50])
def test_split_has_exactly_n_per_class_and_never_touches_heldout(n):
    d = low_data_mnist(n, seed=0)
    assert torch.equal(torch.bincount(d["train_y"], minlength=10), torch.full((10,), n))
    assert len(d["heldout_y"]) == 10_000 - POOL
    # no training digit is one of the held-out digits (compare pixels, not just indices)
    held = {bytes(img.numpy()) for img in d["heldout_x"]}
    assert not any(bytes(img.numpy()) in held for img in d["train_x"])


def test_split_is_deterministic_per_seed_and_indices_are_unique():
    labels = torch.arange(10).repeat(30)
    a, b, c = (labelled_split(labels, 5, s) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(set(a.tolist())) == 50 and torch.equal(a, a.sort().values)
    assert torch.equal(torch.bincount(labels[a]), torch.full((10,), 5))


def test_split_asks_for_more_than_available_clear_error():
    labels = torch.tensor([0] * 5 + [1] * 3)
    with pytest.raises(ValueError, match="n_per_class=4 is more than the pool has of class 1"):
        labelled_split(labels, 4, 0)
    with pytest.raises(ValueError, match="positive integer"):
        labelled_split(labels, 0, 0)
    with pytest.raises(ValueError, match="positive integer"):
        labelled_split(labels, 2.5, 0)


def test_classic_augmentation_keeps_shape_range_and_changes_images():
    torch.manual_seed(0)
    x = -torch.ones(6, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0  # a bar, like a 1
    bank, labels = augmented_bank(x, torch.arange(6), 3, classic_augmentation(), seed=0)
    assert bank.shape == (18, 1, 28, 28) and torch.equal(labels, torch.arange(6).repeat(3))
    assert bank.min() >= -1.001 and bank.max() <= 1.001
    assert (bank - x.repeat(3, 1, 1, 1)).abs().amax(dim=(1, 2, 3)).min() > 0.1  # every copy moved
    again, _ = augmented_bank(x, torch.arange(6), 3, classic_augmentation(), seed=0)
    assert torch.equal(bank, again)  # deterministic per seed
    with pytest.raises(ValueError, match="kind"):
        classic_augmentation("flip")


def test_mixed_batches_share_of_synthetic_examples():
    real = (-torch.ones(10, 1, 28, 28), torch.zeros(10, dtype=torch.long))
    fake = (torch.ones(10, 1, 28, 28), torch.ones(10, dtype=torch.long))
    it = MixedBatches(*real, 500, synthetic=fake, synthetic_fraction=0.25, seed=0)
    x, y = next(it)
    share = float((y == 1).float().mean())
    assert abs(share - 0.25) < 0.06
    assert torch.equal(x[y == 1].mean(dim=(1, 2, 3)), torch.ones(int((y == 1).sum())))
    with pytest.raises(ValueError, match="synthetic"):
        MixedBatches(*real, 4, synthetic_fraction=0.5)
    with pytest.raises(ValueError, match="real digits"):
        MixedBatches(torch.zeros(4, 3, 28, 28), torch.zeros(4, dtype=torch.long), 2)


def test_classifier_learns_a_separable_toy_task():
    torch.manual_seed(0)
    x = -torch.ones(40, 1, 28, 28)
    y = torch.arange(2).repeat(20)
    x[y == 0, :, :, :14] = 1.0  # class 0: left half bright
    x[y == 1, :, :, 14:] = 1.0  # class 1: right half bright
    model = train_classifier(MixedBatches(x, y, 16, seed=0), 40, seed=0, width=4)
    assert accuracy(model, x, y) == 1.0
    assert isinstance(model, SmallCNN) and not model.training


def test_accuracy_takes_uint8_digits_and_mean_std():
    model = SmallCNN(4).eval()
    imgs = torch.zeros(7, 28, 28, dtype=torch.uint8)
    pred = model(torch.full((1, 1, 28, 28), -1.0)).argmax(1).item()
    assert accuracy(model, imgs, torch.full((7,), pred)) == 1.0
    m, s = mean_std([0.5, 0.7])
    assert m == pytest.approx(0.6) and s == pytest.approx(0.1414213, rel=1e-5)
    assert mean_std([0.3]) == (0.3, 0.0)
