"""SR networks, SRGAN's losses, their training steps (supervised, SRGAN), tiled inference and the upscale command."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganlib.__main__ import main
from ganlib.degrade import imresize
from ganlib.images import to_unit_range
from ganlib.losses import l1_loss, mse_loss
from ganlib.models.sr import SRGANDiscriminator, SRResNet
from ganlib.sr import (
    SRGANRun,
    SRPatches,
    load_sr_model,
    make_sr_pairs,
    model_upscaler,
    save_sr_model,
    srgan_d_loss,
    srgan_g_loss,
    srgan_step,
    upscale_tiled,
)
from ganlib.train import SupervisedRun, fit, supervised_step


def tiny_srresnet(scale=4):
    torch.manual_seed(0)
    return SRResNet(scale=scale, n_blocks=2, width=8)


def test_srresnet_upscales_by_its_factor():
    for scale in (2, 4, 8):
        out = tiny_srresnet(scale)(torch.zeros(2, 3, 16, 16))
        assert out.shape == (2, 3, 16 * scale, 16 * scale)
    with pytest.raises(ValueError, match="2, 4 or 8"):
        SRResNet(scale=3)


def test_srgan_discriminator_returns_logits_for_any_size():
    D = SRGANDiscriminator(width=8)
    assert D(torch.zeros(3, 3, 96, 96)).shape == (3,)
    assert D(torch.zeros(1, 3, 48, 64)).shape == (1,)
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in D.modules())
    with pytest.raises(ValueError, match="at least 16x16"):
        D(torch.zeros(1, 3, 8, 8))


def test_tiled_equals_untiled_within_1e_3():
    model = tiny_srresnet().eval()
    lr = torch.randint(0, 256, (3, 37, 53), dtype=torch.uint8)
    with torch.no_grad():
        whole = model((lr[None].float() / 127.5) - 1)[0]
    tiled = upscale_tiled(model, lr, tile=16, as_float=True)
    assert (tiled - whole).abs().max() < 1e-3
    assert model.receptive_radius == 4 + 2 * 2 + 1 + 2 + 1


def test_too_little_overlap_shows_seams():
    model = tiny_srresnet().eval()
    lr = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        whole = model((lr[None].float() / 127.5) - 1)[0]
    assert (upscale_tiled(model, lr, tile=8, overlap=0, as_float=True) - whole).abs().max() > 1e-3


def test_patches_are_aligned_and_augmented_alike():
    g = torch.Generator().manual_seed(0)
    hr = (torch.rand(3, 64, 80, generator=g) * 255).round().byte()
    hr = imresize(imresize(hr, 0.5), 2)  # smooth, so LR-of-patch ~ patch-of-LR
    sampler = SRPatches(make_sr_pairs([("x", hr)], 4, progress=False), 4, patch=32, batch_size=8)
    hr_b, lr_b = next(sampler)
    assert hr_b.shape == (8, 3, 32, 32) and lr_b.shape == (8, 3, 8, 8)
    for h, l_ in zip(hr_b, lr_b, strict=True):
        h8 = ((h + 1) * 127.5).round().byte()
        remade = imresize(h8, 0.25).float()
        lr8 = ((l_ + 1) * 127.5).round()
        assert (remade[:, 2:-2, 2:-2] - lr8[:, 2:-2, 2:-2]).abs().mean() < 2.0


def test_patch_size_must_fit():
    pairs = make_sr_pairs([("x", torch.zeros(3, 40, 40, dtype=torch.uint8))], 4, progress=False)
    with pytest.raises(ValueError, match="multiple of the scale"):
        SRPatches(pairs, 4, patch=30)
    with pytest.raises(ValueError, match="All 1 training images are smaller"):
        SRPatches(pairs, 4, patch=96)
    big = make_sr_pairs([("y", torch.zeros(3, 96, 96, dtype=torch.uint8))], 4, progress=False)
    assert len(SRPatches(pairs + big, 4, patch=96).pairs) == 1
    hr_b, up_b = next(SRPatches(big, 4, patch=32, batch_size=2, upsample_input=True))
    assert hr_b.shape == up_b.shape == (2, 3, 32, 32)


def synthetic_batches(n=64):
    torch.manual_seed(1)
    # smooth images (bilinear blow-ups of 4x4 noise): their detail is predictable from the LR
    hr = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4) * 2 - 1, size=32, mode="bilinear")
    lr = torch.nn.functional.avg_pool2d(hr, 4)

    def gen():
        while True:
            i = torch.randint(0, n, (8,))
            yield hr[i], lr[i]

    return gen()


def test_supervised_training_reduces_the_pixel_loss(tmp_path):
    model = tiny_srresnet()
    run = SupervisedRun(
        model, torch.optim.Adam(model.parameters(), lr=3e-3), loss="l1", config={"n": 2}
    )
    history = fit(
        run,
        supervised_step,
        synthetic_batches(),
        150,
        log_every=25,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    other = tiny_srresnet()
    again = SupervisedRun(
        other, torch.optim.Adam(other.parameters(), lr=3e-3), loss="l1", config={"n": 2}
    )
    fit(
        again,
        supervised_step,
        synthetic_batches(),
        60,
        checkpoint_dir=tmp_path,
        resume=True,
        progress=False,
    )
    assert again.step == 150 and torch.equal(again.model.tail.weight, model.tail.weight)


def tiny_srgan(adv_weight=1e-3, content_loss=mse_loss, lr=1e-4, **kwargs):
    G = tiny_srresnet()
    torch.manual_seed(2)
    D = SRGANDiscriminator(width=8)
    return SRGANRun(
        G,
        D,
        torch.optim.SGD(G.parameters(), lr=lr),
        torch.optim.SGD(D.parameters(), lr=lr),
        content_loss=content_loss,
        adv_weight=adv_weight,
        config={"blocks": 2, "width": 8},
        **kwargs,
    )


def a_batch():
    return next(synthetic_batches())  # (hr (8, 3, 32, 32), lr (8, 3, 8, 8)) in [-1, 1]


def params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_srgan_step_computes_l_sr_from_its_terms():
    run = tiny_srgan(lr=0.1)
    hr, lr = a_batch()
    G0 = copy.deepcopy(run.G)
    stats = srgan_step(run, (hr, lr))
    # by hand, with G before its update and D after its own (G's step comes after D's)
    with torch.no_grad():
        sr, D1 = G0(lr), copy.deepcopy(run.D)
        content = ((sr - hr) ** 2).mean()
        adv = -torch.log(torch.sigmoid(D1(sr))).mean()  # -log D(G(I_LR))
    assert torch.allclose(stats["loss_content"], content, atol=1e-6)
    assert torch.allclose(stats["loss_adv"], adv, atol=1e-5)
    assert torch.allclose(stats["loss_G"], content + 1e-3 * adv, atol=1e-6)
    assert torch.allclose(stats["loss_G"], srgan_g_loss(sr, hr, D1(sr)), atol=1e-6)
    assert {"loss_D", "D_x", "D_G_z"} <= set(stats) and 0 < float(stats["D_x"]) < 1


def test_srgan_losses_by_hand():
    sr, hr = torch.full((2, 3, 4, 4), 0.5), torch.zeros(2, 3, 4, 4)
    logits = torch.tensor([0.0, 2.0], requires_grad=True)
    # l_content = 0.25, l_adv = mean(-log sigmoid(l)) = (log 2 + log(1 + e^-2)) / 2
    adv = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    loss = srgan_g_loss(sr, hr, logits, mse_loss, adv_weight=0.1)
    assert math.isclose(loss.item(), 0.25 + 0.1 * adv, rel_tol=1e-6)
    loss.backward()  # d/dl (-log sigmoid(l)) = sigmoid(l) - 1, averaged over B = 2, times 0.1
    assert torch.allclose(logits.grad, 0.1 * (torch.sigmoid(logits.detach()) - 1) / 2)
    assert math.isclose(srgan_g_loss(sr, hr, logits, l1_loss, 0.0).item(), 0.5)


def test_srgan_d_loss_by_hand_and_only_for_d():
    D = torch.nn.Linear(3, 1)
    with torch.no_grad():
        D.weight.zero_(), D.bias.fill_(1.0)  # every logit = 1
    score = lambda x: D(x.mean((2, 3))).flatten()  # noqa: E731 - (B, 3, H, W) -> (B,)
    G = torch.nn.Conv2d(3, 3, 1)
    sr = G(torch.randn(2, 3, 4, 4))
    loss = srgan_d_loss(score, torch.randn(2, 3, 4, 4), sr)
    # -log sigmoid(1) - log(1 - sigmoid(1))
    assert math.isclose(
        loss.item(), math.log(1 + math.exp(-1)) + math.log(1 + math.e), rel_tol=1e-6
    )
    loss.backward()
    assert D.bias.grad is not None and G.weight.grad is None


def test_srgan_step_changes_g_and_d_and_leaves_d_only_its_own_gradient():
    run = tiny_srgan(lr=0.1)
    hr, lr = a_batch()
    G0, D0 = copy.deepcopy(run.G), copy.deepcopy(run.D)
    g_before, d_before = params(run.G), params(run.D)
    srgan_step(run, (hr, lr))
    assert all(not torch.equal(v, g_before[k]) for k, v in run.G.named_parameters())
    assert all(not torch.equal(v, d_before[k]) for k, v in run.D.named_parameters())
    assert all(p.requires_grad for p in run.D.parameters())  # frozen() restored them
    # D's .grad is the gradient of D's own loss alone: G's step added nothing to it
    with torch.no_grad():
        fake = G0(lr)
    loss_D = F.binary_cross_entropy_with_logits(D0(hr), torch.ones(8)) + (
        F.binary_cross_entropy_with_logits(D0(fake), torch.zeros(8))
    )
    loss_D.backward()
    for (name, p), p0 in zip(run.D.named_parameters(), D0.parameters(), strict=True):
        assert torch.allclose(p.grad, p0.grad, atol=1e-6), name


def test_srgan_with_adv_weight_0_updates_g_like_the_supervised_step():
    run = tiny_srgan(adv_weight=0.0, lr=0.1)
    hr, lr = a_batch()
    model = copy.deepcopy(run.G)
    reference = SupervisedRun(model, torch.optim.SGD(model.parameters(), lr=0.1), loss="mse")
    start = params(model)
    supervised_step(reference, (hr, lr))
    srgan_step(run, (hr, lr))
    expected = params(model)
    assert any(not torch.equal(v, start[k]) for k, v in expected.items())
    for name, p in run.G.named_parameters():
        assert torch.allclose(p, expected[name], atol=1e-6), name


def test_srgan_share_fake_gives_the_same_g_update():
    hr, lr = a_batch()
    one, two = tiny_srgan(lr=0.1), tiny_srgan(lr=0.1, share_fake=True)
    stats_one, stats_two = srgan_step(one, (hr, lr)), srgan_step(two, (hr, lr))
    assert torch.allclose(stats_one["loss_G"], stats_two["loss_G"], atol=1e-6)
    for (name, p), q in zip(one.G.named_parameters(), two.G.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6), name


def test_srgan_run_records_its_settings_and_refuses_another_adv_weight(tmp_path):
    run = tiny_srgan()
    assert run.config["adv_weight"] == 1e-3 and run.config["content_loss"] == "mse_loss"
    assert tiny_srgan(content_loss=l1_loss).config["content_loss"] == "l1_loss"
    before = run.G.tail.weight.clone()
    history = fit(
        run,
        srgan_step,
        synthetic_batches(),
        4,
        log_every=2,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert {"loss_D", "loss_G", "loss_adv", "loss_content", "D_x", "D_G_z"} <= set(history[-1])
    assert not torch.equal(before, run.G.tail.weight)
    other = tiny_srgan(adv_weight=1e-2)
    with pytest.raises(ValueError, match="adv_weight: 0.001 there, 0.01 now"):
        fit(other, srgan_step, synthetic_batches(), 6, checkpoint_dir=tmp_path, resume=True,
            progress=False)  # fmt: skip
    same = tiny_srgan()
    fit(same, srgan_step, synthetic_batches(), 4, checkpoint_dir=tmp_path, resume=True,
        progress=False)  # fmt: skip
    assert same.step == 4 and torch.equal(same.G.tail.weight, run.G.tail.weight)


def test_srgan_run_rejects_settings_it_cannot_train():
    with pytest.raises(ValueError, match="n_dis must be 1"):
        tiny_srgan(n_dis=2)
    with pytest.raises(ValueError, match="content_loss must be a function"):
        tiny_srgan(content_loss="vgg")


def test_model_upscaler_runs_in_eval_mode_and_restores_the_mode():
    model = tiny_srresnet()
    model.train()
    for _ in range(3):  # move batch norm's running statistics away from their start
        model(torch.randn(4, 3, 8, 8))
    lr = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    out = model_upscaler(model)(lr)
    assert model.training
    with torch.no_grad():
        expected = model.eval()((lr[None].float() / 127.5) - 1)[0]
    assert torch.equal(out, (to_unit_range(expected) * 255).round().byte())


def test_upscale_command_writes_a_four_times_larger_png(tmp_path, capsys):
    path = save_sr_model(
        tmp_path / "m.pt", tiny_srresnet(), "srresnet", {"scale": 4, "n_blocks": 2, "width": 8}
    )
    assert isinstance(load_sr_model(path), SRResNet)
    Image.fromarray(
        torch.randint(0, 256, (20, 30, 4), dtype=torch.uint8).numpy(), mode="RGBA"
    ).save(tmp_path / "in.png")
    assert (
        main(
            [
                "upscale",
                str(tmp_path / "in.png"),
                str(tmp_path / "out.png"),
                "--checkpoint",
                str(path),
                "--tile",
                "8",
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "out.png").size == (120, 80)
    assert (
        main(
            [
                "upscale",
                str(tmp_path / "in.png"),
                str(tmp_path / "out.jpg"),
                "--checkpoint",
                str(path),
            ]
        )
        == 2
    )
    assert "lossless" in capsys.readouterr().err


def test_tiny_and_odd_sized_images_upscale():
    model = tiny_srresnet().eval()
    for h, w in ((1, 1), (3, 5), (17, 9)):
        out = upscale_tiled(model, torch.randint(0, 256, (3, h, w), dtype=torch.uint8), tile=8)
        assert out.shape == (3, 4 * h, 4 * w) and out.dtype == torch.uint8
    with pytest.raises(ValueError, match="uint8 RGB"):
        upscale_tiled(model, torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="at least 8"):
        upscale_tiled(model, torch.zeros(3, 8, 8, dtype=torch.uint8), tile=4)


def test_auto_tile_fits_half_the_free_memory():
    from ganlib.models.sr import SRResNet
    from ganlib.sr import auto_tile

    model = SRResNet(4, 2, 64)
    assert auto_tile(model, overlap=8) == 128  # on a CPU: the default
    small = auto_tile(model, overlap=8, free_bytes=2 * 2**30)
    large = auto_tile(model, overlap=8, free_bytes=40 * 2**30)
    assert 8 <= small < large <= 1024
    assert 12 * 64 * (4 * (small + 16)) ** 2 <= 2**30  # half of the 2 GiB free
