"""Degradations, classic baselines, evaluation and the restoration GAN step, against references."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio

from ganlib.baselines import DENOISERS, denoise_classic, inpaint_classic
from ganlib.images import luma
from ganlib.losses import masked_l1
from ganlib.models.pix2pix import PatchDiscriminator, UNetGenerator
from ganlib.models.resnet import DnCNN
from ganlib.restoration import (
    CompositeGenerator,
    RestorationBatches,
    RestorationGANRun,
    add_gaussian_noise,
    apply_mask,
    composite,
    evaluate,
    inpainting_input,
    mask_bank,
    rectangle_mask,
    restoration_step,
    stroke_mask,
    to_gray,
)
from ganlib.train import SupervisedRun, fit, supervised_step


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
    # by hand: 2 missing pixels of 3 channels, errors 1, 2, 3 and 4, 5, 6 -> 21 / 6 = 3.5
    target, prediction = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 100.0)
    prediction[0, :, 0, 0], prediction[0, :, 1, 1] = (
        torch.tensor([1.0, 2, 3]),
        torch.tensor([4.0, 5, 6]),
    )
    hole = torch.tensor([[[[1.0, 0], [0, 1]]]])
    assert masked_l1(prediction, target, hole).item() == pytest.approx(3.5)
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
    rgb = torch.randint(
        0, 256, (3, 5, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(to_gray(rgb), luma(rgb.float() / 255))  # the float luma, not rounded
    assert torch.equal(to_gray(rgb[:1]), rgb[:1].float() / 255)
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


def tiny_restoration_run(**kwargs):
    torch.manual_seed(0)
    G = DnCNN(channels=1, width=4, depth=3)
    D = PatchDiscriminator(in_ch=1, width=4, n_layers=2)
    return RestorationGANRun(
        G,
        D,
        torch.optim.SGD(G.parameters(), lr=0.1),
        torch.optim.SGD(D.parameters(), lr=0.1),
        **kwargs,
    )


def params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_restoration_step_changes_g_and_d_and_computes_its_formulas():
    run = tiny_restoration_run(adv_weight=0.5)
    clean, noisy = next(RestorationBatches(torch.rand(16, 1, 32, 32), 8, sigmas=[50], seed=0))
    G0, D0 = copy.deepcopy(run.G), copy.deepcopy(run.D)
    g_before, d_before = params(run.G), params(run.D)
    seen = []
    run.D.register_forward_hook(lambda module, args, out: seen.append(args[0].detach().clone()))
    stats = restoration_step(run, (clean, noisy))
    assert all(not torch.equal(v, g_before[k]) for k, v in run.G.named_parameters())
    assert all(not torch.equal(v, d_before[k]) for k, v in run.D.named_parameters())
    assert all(p.requires_grad for p in run.D.parameters())  # frozen() restored them
    # by hand, with G before its update: D judged the clean images, then G(y) twice
    with torch.no_grad():
        restored = G0(noisy)
    assert len(seen) == 3 and torch.equal(seen[0], clean)
    assert torch.allclose(seen[1], restored, atol=1e-6) and torch.allclose(
        seen[2], restored, atol=1e-6
    )
    real_logits, fake_logits = D0(clean), D0(restored)
    # L_D = -mean log sigmoid(D(x)) - mean log(1 - sigmoid(D(G(y))))
    loss_D = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + (
        F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    )
    assert torch.allclose(stats["loss_D"], loss_D.detach(), atol=1e-6)
    # D's .grad is the gradient of D's own loss alone: G's step added nothing to it
    loss_D.backward()
    for (name, p), p0 in zip(run.D.named_parameters(), D0.parameters(), strict=True):
        assert torch.allclose(p.grad, p0.grad, atol=1e-6), name
    # L_G = mean |G(y) - x| + adv_weight * (-mean log sigmoid(D(G(y)))), D after its update
    with torch.no_grad():
        l1 = (restored - clean).abs().mean()
        adv = -F.logsigmoid(copy.deepcopy(run.D)(restored)).mean()
    assert torch.allclose(stats["loss_content"], l1, atol=1e-6)
    assert torch.allclose(stats["loss_adv"], adv, atol=1e-5)
    assert torch.allclose(stats["loss_G"], l1 + 0.5 * adv, atol=1e-5)
    assert 0 < float(stats["D_x"]) < 1 and 0 < float(stats["D_G_z"]) < 1


def test_restoration_run_records_adv_weight_and_refuses_another_on_resume(tmp_path):
    run = tiny_restoration_run()
    assert run.adv_weight == 0.01 and run.config["adv_weight"] == 0.01
    assert run.config["z_dim"] is None
    with pytest.raises(ValueError, match="share_fake=True"):
        tiny_restoration_run(share_fake=True)
    clean = torch.rand(16, 1, 32, 32)
    fit(
        run,
        restoration_step,
        RestorationBatches(clean, 4, sigmas=[25]),
        2,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    with pytest.raises(ValueError, match="adv_weight: 0.01 there, 0.1 now"):
        fit(
            tiny_restoration_run(adv_weight=0.1),
            restoration_step,
            RestorationBatches(clean, 4, sigmas=[25]),
            4,
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )


def test_l1_and_adversarial_restorers_train_a_few_steps(tmp_path):
    torch.manual_seed(0)
    clean = torch.rand(32, 1, 32, 32)
    dn = DnCNN(channels=1, width=4, depth=3)
    run = SupervisedRun(dn, torch.optim.Adam(dn.parameters(), 1e-3), loss="l1")
    batches = RestorationBatches(clean, 4, sigmas=[25, 50])
    fit(run, supervised_step, batches, 3, log_every=1, progress=False)
    assert len(run.history) == 3
    G = CompositeGenerator(UNetGenerator(in_ch=2, out_ch=1, width=4, depth=5, dropout=0.0))
    D = PatchDiscriminator(in_ch=1, width=4, n_layers=2)
    gan = RestorationGANRun(
        G,
        D,
        torch.optim.Adam(G.parameters(), 1e-3),
        torch.optim.Adam(D.parameters(), 2e-4),
        adv_weight=0.01,
    )
    batches = RestorationBatches(clean, 4, masks=mask_bank(4, 32, "mixed"))
    fit(gan, restoration_step, batches, 2, log_every=1, checkpoint_dir=tmp_path, progress=False)
    assert (tmp_path / "latest.pt").is_file() and "loss_content" in gan.history[-1]
    # the composite generator never changes known pixels
    x, inp = next(batches)
    out = G.eval()(inp)
    known = inp[:, 1:].expand_as(x) == 0
    assert torch.equal(out[known], inpainting_input(x, inp[:, 1:])[:, :1][known])
