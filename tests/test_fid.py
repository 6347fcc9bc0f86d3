"""FID/KID/IS: properties that any correct implementation has, on real digits (offline)."""

import urllib.error

import pytest
import torch
from torchvision.transforms.v2.functional import gaussian_blur

from ganlib.data import load_mnist
from ganlib.errors import WeightsUnavailable
from ganlib.fid import class_accuracy, fid, inception_score, kid
from ganlib.images import to_model_range
from ganlib.metrics import lpips


@pytest.fixture(scope="module")
def digits():
    images, labels = load_mnist("test")
    return to_model_range(images[:, None]), labels


def test_fid_separates_real_from_corrupted(digits):
    x, _ = digits
    a, b = x[:1000], x[1000:2000]
    same = fid(a, b)
    blurs = [fid(a, gaussian_blur(b, 7, s)) for s in (0.5, 1.0, 2.0)]
    g = torch.Generator().manual_seed(0)
    noises = [
        fid(a, (b + s * torch.randn(b.shape, generator=g)).clamp(-1, 1)) for s in (0.1, 0.3, 0.6)
    ]
    noise_only = fid(a, torch.rand(1000, 1, 28, 28, generator=g) * 2 - 1)
    assert same < 0.05 * noise_only
    assert same < blurs[0] < blurs[1] < blurs[2]
    assert same < noises[0] < noises[1] < noises[2]


def test_kid_is_near_zero_for_the_same_distribution(digits):
    x, _ = digits
    same, same_std = kid(x[:600], x[600:1200], subset_size=500, subsets=20)
    blurred, _ = kid(x[:600], gaussian_blur(x[600:1200], 7, 2.0), subset_size=500, subsets=20)
    assert abs(same) < 3 * same_std + 1e-6 or abs(same) < 0.02 * blurred
    assert blurred > 20 * max(abs(same), 1e-6)


def test_digit_inception_score_and_class_accuracy(digits):
    x, y = digits
    real_is, _ = inception_score(x[:1000])
    noise_is, _ = inception_score(torch.rand(1000, 1, 28, 28) * 2 - 1)
    assert 8.0 < real_is <= 10.0 and noise_is < 2.0
    assert class_accuracy(x[8000:9000], y[8000:9000]) > 0.98
    assert class_accuracy(x[8000:9000], (y[8000:9000] + 1) % 10) < 0.05


def test_too_few_samples_is_an_error_not_a_nan(digits):
    x, _ = digits
    with pytest.raises(ValueError, match="at least 129"):
        fid(x[:100], x[100:200])
    with pytest.raises(ValueError, match="subset_size=1000"):
        kid(x[:300], x[300:600])
    with pytest.raises(ValueError, match="at least 20"):
        inception_score(x[:5])


def test_wrong_images_for_digit_features():
    with pytest.raises(ValueError, match="1 channel"):
        fid(torch.zeros(200, 3, 28, 28), torch.zeros(200, 3, 28, 28))
    with pytest.raises(ValueError, match="features must be"):
        fid(torch.zeros(200, 1, 28, 28), torch.zeros(200, 1, 28, 28), features="vgg")


def test_pretrained_weights_offline_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nothing cached

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    x = torch.zeros(2100, 3, 32, 32)
    with pytest.raises(WeightsUnavailable, match="features='digits'"):
        fid(x, x, features="inception")
    with pytest.raises(WeightsUnavailable, match="LPIPS"):
        lpips(torch.rand(3, 32, 32), torch.rand(3, 32, 32))
