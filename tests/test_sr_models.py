"""SR networks, their training loops, tiled inference and the upscale command."""

import pytest
import torch
from PIL import Image

from ganlib.__main__ import main
from ganlib.degrade import imresize
from ganlib.models.sr import SRGANDiscriminator, SRResNet
from ganlib.sr import SRPatches, load_sr_model, make_pairs, save_sr_model, upscale_tiled
from ganlib.train import GANRun, SupervisedRun, fit, fit_supervised, g_step


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
    sampler = SRPatches(make_pairs([("x", hr)], 4, progress=False), 4, patch=32, batch_size=8)
    hr_b, lr_b = next(sampler)
    assert hr_b.shape == (8, 3, 32, 32) and lr_b.shape == (8, 3, 8, 8)
    for h, l_ in zip(hr_b, lr_b, strict=True):
        h8 = ((h + 1) * 127.5).round().byte()
        remade = imresize(h8, 0.25).float()
        lr8 = ((l_ + 1) * 127.5).round()
        assert (remade[:, 2:-2, 2:-2] - lr8[:, 2:-2, 2:-2]).abs().mean() < 2.0


def test_patch_size_must_fit():
    pairs = make_pairs([("x", torch.zeros(3, 40, 40, dtype=torch.uint8))], 4, progress=False)
    with pytest.raises(ValueError, match="multiple of the scale"):
        SRPatches(pairs, 4, patch=30)
    with pytest.raises(ValueError, match="All 1 training images are smaller"):
        SRPatches(pairs, 4, patch=96)
    big = make_pairs([("y", torch.zeros(3, 96, 96, dtype=torch.uint8))], 4, progress=False)
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
    history = fit_supervised(
        run, synthetic_batches(), 150, log_every=25, checkpoint_dir=tmp_path, progress=False
    )
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    other = tiny_srresnet()
    again = SupervisedRun(
        other, torch.optim.Adam(other.parameters(), lr=3e-3), loss="l1", config={"n": 2}
    )
    fit_supervised(
        again, synthetic_batches(), 60, checkpoint_dir=tmp_path, resume=True, progress=False
    )
    assert again.step == 150 and torch.equal(again.model.tail.weight, model.tail.weight)


def test_g_step_adds_the_weighted_content_loss():
    G, D = tiny_srresnet(), SRGANDiscriminator(width=8)
    lr, hr = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    stats = g_step(
        G, D, torch.optim.SGD(G.parameters(), lr=0.0), lr,
        content_loss=torch.nn.functional.mse_loss, target=hr, adv_weight=1e-3,
    )  # fmt: skip
    expected = stats["loss_content"] + 1e-3 * stats["loss_adv"]
    assert torch.isclose(stats["loss_G"], expected)


def test_srgan_trains_through_fit_with_paired_batches():
    G, D = tiny_srresnet(), SRGANDiscriminator(width=8)
    run = GANRun(
        G, D, torch.optim.Adam(G.parameters(), 1e-4), torch.optim.Adam(D.parameters(), 1e-4),
        g_input="batch", content_loss=torch.nn.functional.mse_loss, adv_weight=1e-3,
    )  # fmt: skip
    before = G.tail.weight.clone()
    history = fit(run, synthetic_batches(), 4, log_every=2, progress=False)
    assert {"loss_D", "loss_G", "loss_adv", "loss_content", "D_x", "D_G_z"} <= set(history[-1])
    assert not torch.equal(before, G.tail.weight)
    with pytest.raises(ValueError, match="needs z_dim"):
        GANRun(G, D, run.opt_G, run.opt_D)


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
