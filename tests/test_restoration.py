"""Degradations, classic baselines and evaluation for restoration, against references."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from ganlib.models.pix2pix import PatchDiscriminator, UNetGenerator
from ganlib.models.resnet import DnCNN
from ganlib.restoration import (
    DENOISERS,
    CompositeGenerator,
    RestorationBatches,
    add_gaussian_noise,
    apply_mask,
    composite,
    denoise_classic,
    evaluate,
    inpaint_classic,
    inpainting_input,
    mask_bank,
    masked_l1,
    rectangle_mask,
    stroke_mask,
    to_gray,
)
from ganlib.train import GANRun, SupervisedRun, fit, fit_supervised


def smooth_image(size=64, seed=0):
    """A smooth gray test image in [0.1, 0.9] with some edges."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = 0.5 + 0.2 * torch.sin(6 * xx + float(torch.rand(1, generator=g)) * 3) * torch.cos(4 * yy)
    img[size // 4 : size // 2, size // 4 : size // 2] += 0.2
    return img.clamp(0.1, 0.9)[None]  # (1, H, W)


@pytest.mark.parametrize("sigma", [25, 50])
def test_noise_sigma_measured_on_a_flat_image(sigma):
    flat = torch.full((1, 256, 256), 0.5)
    y = add_gaussian_noise(flat, sigma, torch.Generator().manual_seed(0))
    assert 255 * (y - flat).std().item() == pytest.approx(sigma, rel=0.02)
    assert abs(255 * (y - flat).mean().item()) < 0.5
    # uint8 input is the same image
    y8 = add_gaussian_noise(torch.full((1, 256, 256), 128, dtype=torch.uint8), sigma)
    assert y8.dtype == torch.float32 and abs(y8.mean().item() - 128 / 255) < 0.01


def test_noise_on_the_wrong_scale_and_bad_images_are_refused():
    x = torch.rand(1, 8, 8)
    with pytest.raises(ValueError, match="Did you mean sigma=25.5"):
        add_gaussian_noise(x, 0.1)
    with pytest.raises(ValueError, match=">= 0"):
        add_gaussian_noise(x, -1)
    with pytest.raises(ValueError, match="4 .*alpha|alpha"):
        add_gaussian_noise(torch.rand(4, 8, 8), 25)
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        add_gaussian_noise(torch.rand(1, 8, 8) * 2 - 1, 25)
    with pytest.raises(ValueError, match="uint8 or float"):
        add_gaussian_noise(torch.ones(1, 8, 8, dtype=torch.int32), 25)
    assert torch.equal(add_gaussian_noise(x, 0), x)
    clipped = add_gaussian_noise(torch.zeros(1, 32, 32), 50, clip=True)
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_masks_rectangles_strokes_and_bank():
    g = torch.Generator().manual_seed(0)
    r = rectangle_mask(32, 40, (8, 12), g)
    assert r.shape == (1, 32, 40) and r.sum() == 96
    rows, cols = torch.nonzero(r[0], as_tuple=True)
    assert rows.max() - rows.min() == 7 and cols.max() - cols.min() == 11
    s = stroke_mask(64, 64, strokes=2, thickness=3, generator=g)
    assert s.shape == (1, 64, 64) and set(s.unique().tolist()) <= {0.0, 1.0}
    assert 0.01 < s.mean() < 0.5
    bank = mask_bank(6, 32, "mixed", seed=1)
    assert bank.shape == (6, 1, 32, 32) and torch.equal(bank, mask_bank(6, 32, "mixed", seed=1))
    with pytest.raises(ValueError, match="does not fit"):
        rectangle_mask(8, 8, (9, 2))
    with pytest.raises(ValueError, match="kind"):
        mask_bank(2, 32, "circle")


def test_composite_keeps_known_pixels_and_masked_l1_counts_the_hole_only():
    x = torch.rand(2, 1, 16, 16)
    pred = torch.rand(2, 1, 16, 16)
    m = torch.zeros(2, 1, 16, 16)
    m[..., 4:8, 4:8] = 1
    out = composite(pred, x, m)
    assert torch.equal(out[m.expand_as(x) == 0], x[m.expand_as(x) == 0])
    assert torch.equal(out[m.expand_as(x) == 1], pred[m.expand_as(x) == 1])
    hand = (pred - x).abs()[..., 4:8, 4:8].mean()
    assert masked_l1(pred, x, m).item() == pytest.approx(hand.item(), rel=1e-6)
    assert masked_l1(pred, x, torch.zeros_like(m)).item() == 0.0
    with pytest.raises(ValueError, match="mask size"):
        composite(pred, x, torch.zeros(2, 1, 8, 8))
    masked = apply_mask(x[0], m[0], fill=0.5)
    assert torch.all(masked[m[0].expand_as(x[0]) == 1] == 0.5)


@pytest.mark.parametrize("sigma", [25, 50])
@pytest.mark.parametrize("method", DENOISERS)
def test_every_denoising_baseline_improves_psnr_over_the_noisy_input(method, sigma):
    clean = smooth_image(64)
    noisy = add_gaussian_noise(clean, sigma, torch.Generator().manual_seed(1))
    out = denoise_classic(noisy, method, sigma)
    assert out.shape == clean.shape and out.min() >= 0 and out.max() <= 1
    before = evaluate(noisy.clamp(0, 1), clean)["psnr"]
    after = evaluate(out, clean)["psnr"]
    assert after > before + 3, f"{method}: {before:.2f} -> {after:.2f} dB"


def test_baselines_work_on_rgb_and_refuse_batches():
    clean = smooth_image(32).expand(3, -1, -1).clone()
    noisy = add_gaussian_noise(clean, 25, torch.Generator().manual_seed(0))
    for method in DENOISERS:
        assert denoise_classic(noisy, method, 25).shape == (3, 32, 32)
    with pytest.raises(ValueError, match="one image"):
        denoise_classic(noisy[None], "tv", 25)
    with pytest.raises(ValueError, match="method"):
        denoise_classic(noisy, "bm3d", 25)


def test_biharmonic_inpainting_beats_mean_fill_and_keeps_known_pixels():
    clean = smooth_image(48)
    m = rectangle_mask(48, 48, (10, 10), torch.Generator().manual_seed(3))
    masked = apply_mask(clean, m, fill=0.5)
    bih = inpaint_classic(masked, m, "biharmonic")
    mean = inpaint_classic(masked, m, "mean")
    assert torch.equal(bih[m.expand_as(clean) == 0], clean[m.expand_as(clean) == 0])
    assert masked_l1(bih, clean, m) < masked_l1(mean, clean, m)
    assert evaluate(bih, clean)["psnr"] > evaluate(masked, clean)["psnr"]


def test_evaluate_matches_scikit_image_and_caps_identical_images():
    clean = smooth_image(32)
    noisy = add_gaussian_noise(clean, 25, torch.Generator().manual_seed(0)).clamp(0, 1)
    ref = peak_signal_noise_ratio(
        clean.numpy().astype(np.float64), noisy.numpy().astype(np.float64), data_range=1.0
    )
    assert evaluate(noisy, clean)["psnr"] == pytest.approx(ref, abs=1e-6)
    same = evaluate(clean, clean)
    assert same["psnr"] == 60.0 and math.isclose(same["ssim"], 1.0, abs_tol=1e-9)
    with pytest.raises(ValueError, match="shape"):
        evaluate(clean, clean[..., :16])


def test_to_gray_is_bt601_luma():
    img = torch.tensor([255, 0, 0], dtype=torch.uint8)[:, None, None].expand(3, 2, 2)
    assert torch.allclose(to_gray(img), torch.full((1, 2, 2), 0.299))
    with pytest.raises(ValueError, match="uint8"):
        to_gray(torch.rand(3, 4, 4))


def test_restoration_batches_noise_level_and_inpainting_input():
    clean = torch.full((64, 1, 32, 32), 0.5)
    x, y = next(RestorationBatches(clean, 64, sigmas=[50], seed=0))
    assert x.shape == y.shape == (64, 1, 32, 32)
    assert (y - x).std().item() == pytest.approx(2 * 50 / 255, rel=0.02)  # model range
    masks = mask_bank(4, 32, "rect", seed=0)
    x, inp = next(RestorationBatches(clean, 8, masks=masks, seed=0))
    assert inp.shape == (8, 2, 32, 32)
    m = inp[:, 1:]
    assert torch.equal(inp[:, :1], x * (1 - m)) and m.sum() > 0
    with pytest.raises(ValueError, match="exactly one"):
        RestorationBatches(clean, 8)
    with pytest.raises(ValueError, match="sigma=0.1"):
        RestorationBatches(clean, 8, sigmas=[0.1])


def test_l1_and_adversarial_restorers_train_a_few_steps(tmp_path):
    torch.manual_seed(0)
    clean = torch.rand(32, 1, 32, 32)
    dn = DnCNN(channels=1, width=4, depth=3)
    run = SupervisedRun(dn, torch.optim.Adam(dn.parameters(), 1e-3), loss="l1")
    fit_supervised(
        run, RestorationBatches(clean, 4, sigmas=[25, 50]), 3, log_every=1, progress=False
    )
    assert len(run.history) == 3
    G = CompositeGenerator(UNetGenerator(in_ch=2, out_ch=1, width=4, depth=5, dropout=0.0))
    D = PatchDiscriminator(in_ch=1, width=4, n_layers=2)
    gan = GANRun(
        G,
        D,
        torch.optim.Adam(G.parameters(), 1e-3),
        torch.optim.Adam(D.parameters(), 2e-4),
        g_input="batch",
        content_loss=torch.nn.functional.l1_loss,
        adv_weight=0.01,
    )
    batches = RestorationBatches(clean, 4, masks=mask_bank(4, 32, "mixed"))
    fit(gan, batches, 2, log_every=1, checkpoint_dir=tmp_path, progress=False)
    assert (tmp_path / "latest.pt").is_file() and "loss_content" in gan.history[-1]
    # the composite generator never changes known pixels
    x, inp = next(batches)
    out = G.eval()(inp)
    known = inp[:, 1:].expand_as(x) == 0
    assert torch.equal(out[known], inpainting_input(x, inp[:, 1:])[:, :1][known])
