"""PSNR/SSIM/Y against scikit-image, and the MATLAB-style resize against its kernel formula."""

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ganlib.degrade import imresize, make_lr, modcrop
from ganlib.metrics import psnr, rgb_to_y, ssim


def random_pair(seed=0, h=48, w=40):
    g = np.random.default_rng(seed)
    a = g.integers(0, 256, (h, w, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + g.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    return a, b


def chw(a):
    return torch.from_numpy(a).permute(2, 0, 1)


def test_y_channel_matches_scikit_image():
    a, _ = random_pair()
    ours = rgb_to_y(chw(a)[None].double())[0, 0].numpy()
    assert np.allclose(ours, rgb2ycbcr(a)[..., 0], atol=1e-6)


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_matches_scikit_image(crop):
    a, b = random_pair(1)
    sl = slice(crop, -crop) if crop else slice(None)
    assert math.isclose(
        psnr(chw(a), chw(b), crop=crop, channel="rgb"),
        peak_signal_noise_ratio(a[sl, sl], b[sl, sl], data_range=255),
        rel_tol=1e-9,
    )
    ya, yb = rgb2ycbcr(a)[..., 0], rgb2ycbcr(b)[..., 0]
    assert math.isclose(
        psnr(chw(a), chw(b), crop=crop),
        peak_signal_noise_ratio(ya[sl, sl], yb[sl, sl], data_range=255),
        rel_tol=1e-9,
    )


def test_ssim_matches_scikit_image_gaussian_window():
    a, b = random_pair(2, 64, 64)
    ya, yb = rgb2ycbcr(a)[..., 0], rgb2ycbcr(b)[..., 0]
    reference = structural_similarity(
        ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert abs(ssim(chw(a), chw(b)) - reference) < 1e-8


def test_separable_ssim_equals_the_2d_filtered_ssim_of_torchmetrics():
    # The reference: torchmetrics' 2-D 11x11 Gaussian SSIM map, kept where the window lies inside.
    from benchmarks.ssim_speed import torchmetrics_ssim

    g = torch.Generator().manual_seed(2)
    for shape in [(3, 1, 40, 52), (2, 3, 11, 17)]:
        hr = torch.rand(shape, generator=g)
        sr = (hr + 0.1 * torch.randn(shape, generator=g)).clamp(0, 1)
        reference = torchmetrics_ssim(sr, hr, channel="rgb")
        assert abs(ssim(sr, hr, channel="rgb") - reference) < 1e-12


def test_ssim_of_a_batch_is_the_mean_over_its_images():
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(5, 3, 24, 24, generator=g)  # an odd count: the last chunk is short
    sr = (hr + 0.2 * torch.rand(5, 3, 24, 24, generator=g)).clamp(0, 1)
    each = [ssim(sr[i], hr[i], channel="rgb") for i in range(5)]
    assert ssim(sr, hr, channel="rgb") == pytest.approx(sum(each) / 5, abs=1e-12)


def test_float_and_uint8_inputs_agree_and_edge_cases():
    a, b = random_pair(3)
    assert math.isclose(
        psnr(chw(a), chw(b)), psnr(chw(a).float() / 255, chw(b).float() / 255), rel_tol=1e-9
    )
    assert psnr(chw(a), chw(a)) == math.inf
    assert ssim(chw(a), chw(a)) == pytest.approx(1.0, abs=1e-6)


def test_metric_input_errors_name_the_problem():
    a, b = random_pair(4, 20, 20)
    with pytest.raises(ValueError, match="same shape"):
        psnr(chw(a), chw(b)[:, :10])
    with pytest.raises(ValueError, match="too small to crop"):
        psnr(chw(a), chw(b), crop=10)
    with pytest.raises(ValueError, match=r"\[0, 1\] floats"):
        psnr(chw(a).float(), chw(b).float())  # 0-255 floats: ambiguous, refused
    with pytest.raises(ValueError, match="channel must be"):
        psnr(chw(a), chw(b), channel="lab")
    with pytest.raises(ValueError, match="NaN"):
        psnr(torch.full((3, 8, 8), float("nan")), torch.zeros(3, 8, 8))


def keys_cubic(x, a=-0.5):
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def test_downscaling_an_impulse_gives_the_antialiased_kernel():
    # MATLAB imresize, scale s = 1/2: output pixel i (0-based) is centred at input coordinate
    # u = (i + 0.5) / s - 0.5, and input j gets weight s * h(s * (u - j)), normalised to sum 1.
    n, j0, s = 32, 16, 0.5
    img = np.zeros((n, 1, 1))
    img[j0] = 1.0
    out = imresize(img.repeat(n, axis=1) * 0 + img, s)  # (1, 16, 16) uint8 of a horizontal line
    # compare in float: resize the 1-D profile of a bright line at 200 instead of quantising weights
    line = np.zeros((n, n, 1), dtype=np.uint8)
    line[j0] = 200
    out = imresize(line, s)[0, :, 5].numpy().astype(float)
    for i in range(n // 2):
        u = (i + 0.5) / s - 0.5
        weights = {
            j: s * keys_cubic(s * (u - j)) for j in range(math.floor(u - 4), math.ceil(u + 4) + 1)
        }
        expected = 200 * weights.get(j0, 0.0) / sum(weights.values())
        assert abs(out[i] - np.clip(round(expected), 0, 255)) <= 1, (i, out[i], expected)


def test_upscaling_reproduces_a_linear_ramp_inside_the_image():
    ramp = np.tile(
        np.arange(16, dtype=np.float64)[:, None, None] * 10, (1, 4, 1)
    )  # rows 0, 10, ..., 150
    out = imresize(ramp.astype(np.uint8), 2)[0, :, 1].numpy().astype(float)
    for i in range(4, 28):  # away from the borders, cubic convolution is exact on linear data
        u = (i + 0.5) / 2 - 0.5
        assert abs(out[i] - round(10 * u)) <= 0.5


def test_constant_image_stays_constant_and_shapes_follow_the_scale():
    flat = torch.full((3, 40, 24), 77, dtype=torch.uint8)
    small = imresize(flat, 0.25)
    assert small.shape == (3, 10, 6) and (small == 77).all()
    assert imresize(small, 4).shape == (3, 40, 24)


def test_lr_needs_divisible_sizes_and_modcrop_provides_them():
    hr = torch.zeros(3, 43, 50, dtype=torch.uint8)
    with pytest.raises(ValueError, match="modcrop"):
        make_lr(hr, 4)
    assert make_lr(modcrop(hr, 4), 4).shape == (3, 10, 12)
    with pytest.raises(ValueError, match="smaller than the scale"):
        modcrop(torch.zeros(3, 2, 2, dtype=torch.uint8), 4)
