"""Translation tasks, the history buffer, pix2pix and CycleGAN steps, evaluation and downloads."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.feature import canny

from ganlib.data import Batches, DatasetUnavailable
from ganlib.images import to_model_range
from ganlib.models.pix2pix import PatchDiscriminator, UNetGenerator
from ganlib.models.resnet import ResnetImageGenerator
from ganlib.translation import (
    CycleGANRun,
    ImagePool,
    Pix2PixRun,
    ZipBatches,
    canny_edges,
    colourfulness,
    conditional_d_loss,
    cycle_consistency_loss,
    cyclegan_memory_probe,
    fetch_cyclegan_set,
    fetch_pix2pix_set,
    fit_cyclegan,
    fit_pix2pix,
    grid_crops,
    is_grayscale,
    linear_decay,
    load_folder,
    luma,
    make_pairs,
    make_source,
    mean_colour,
    paired_files,
    pix2pix_d_step,
    random_crops,
    split_pairs,
    stylise,
    translate_image,
    translation_scores,
)


def photo(h=40, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


# --- tasks ----------------------------------------------------------------------------------


def test_luma_is_bt601():
    img = torch.tensor([[[255]], [[0]], [[0]]], dtype=torch.uint8)
    assert int(luma(img)) == round(0.299 * 255)
    img = photo()
    y = 0.299 * img[0].double() + 0.587 * img[1].double() + 0.114 * img[2].double()
    assert torch.equal(luma(img)[0], y.round().to(torch.uint8))


def test_canny_edges_match_scikit_image_and_find_a_square():
    img = torch.zeros(3, 32, 32, dtype=torch.uint8)
    img[:, 8:24, 8:24] = 200
    edges = canny_edges(img, sigma=1.0)
    assert edges.shape == (1, 32, 32) and edges.dtype == torch.uint8
    assert set(edges.unique().tolist()) == {0, 255}  # black lines on white
    ref = canny(luma(img)[0].numpy() / 255.0, sigma=1.0)
    assert np.array_equal(edges[0].numpy() == 0, ref)
    assert (edges[0, 12:20, 12:20] == 255).all()  # nothing inside the flat square
    assert (edges[0, 6:10, 8:24] == 0).any()  # its top border is found


def test_stylise_known_values_and_ranges_agree():
    img = torch.tensor([255, 0, 64], dtype=torch.uint8).view(3, 1, 1)
    out = stylise(img)
    # (R, G, B) -> (B, R, G), then s(t) = t^2 (3 - 2t)
    t = 64 / 255
    assert out.view(-1).tolist() == [round(255 * t * t * (3 - 2 * t)), 255, 0]
    x = photo()[None]
    as_float = stylise(x.float() / 127.5 - 1)
    assert (((as_float + 1) * 127.5) - stylise(x).float()).abs().max() <= 0.51
    with pytest.raises(ValueError, match="RGB"):
        stylise(torch.zeros(1, 4, 4, dtype=torch.uint8))


@pytest.mark.parametrize(
    ("task", "src_ch"), [("edges2photo", 1), ("gray2color", 1), ("stylise", 3)]
)
def test_make_pairs_shapes_and_ranges(task, src_ch):
    crops = torch.stack([photo(16, 16, s) for s in range(3)])
    target, source = make_pairs(crops, task)
    assert target.shape == (3, 3, 16, 16) and source.shape == (3, src_ch, 16, 16)
    for t in (target, source):
        assert t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1
    if task == "stylise":
        assert torch.equal(source, crops.float() / 127.5 - 1)
        assert torch.allclose(target, stylise(crops).float() / 127.5 - 1)


def test_uint8_pairs_are_the_float_pairs_before_conversion():
    crops = torch.stack([photo(16, 16, s) for s in range(3)])
    for task in ("gray2color", "stylise"):
        target8, source8 = make_pairs(crops, task, uint8=True)
        assert target8.dtype == source8.dtype == torch.uint8
        target, source = make_pairs(crops, task)
        assert torch.equal(to_model_range(target8), target)
        assert torch.equal(to_model_range(source8), source)
    # Batches converts the uint8 pairs one batch at a time to exactly the float pairs
    b8 = Batches(
        *make_pairs(crops, "gray2color", uint8=True), batch_size=2, transform=to_model_range
    )
    bf = Batches(*make_pairs(crops, "gray2color"), batch_size=2)
    for _ in range(3):
        assert all(torch.equal(u, v) for u, v in zip(next(b8), next(bf), strict=True))


def test_stylise_of_a_large_set_equals_image_by_image():
    crops = torch.randint(0, 256, (300, 3, 4, 4), dtype=torch.uint8)  # more than one chunk
    assert torch.equal(stylise(crops), torch.stack([stylise(c) for c in crops]))


def test_mean_colour_is_the_per_channel_mean_in_model_range():
    images = torch.randint(0, 256, (300, 3, 5, 7), dtype=torch.uint8)  # more than one chunk
    expected = (images.double().mean(dim=(0, 2, 3)) / 127.5 - 1).float().view(1, 3, 1, 1)
    assert torch.allclose(mean_colour(images), expected, atol=1e-6)
    assert mean_colour(torch.full((2, 1, 3, 3), 255, dtype=torch.uint8)).item() == 1.0
    with pytest.raises(ValueError, match="uint8"):
        mean_colour(images.float())


def test_bad_images_fail_clearly():
    with pytest.raises(ValueError, match="grayscale"):
        make_source(torch.zeros(1, 8, 8, dtype=torch.uint8), "gray2color")
    with pytest.raises(ValueError, match="alpha"):
        make_source(torch.zeros(4, 8, 8, dtype=torch.uint8), "gray2color")
    with pytest.raises(ValueError, match="uint8"):
        make_source(torch.zeros(3, 8, 8), "gray2color")
    with pytest.raises(ValueError, match="task"):
        make_source(photo(), "day2night")
    with pytest.raises(ValueError, match="smaller than the 64x64 crop"):
        random_crops([photo(40, 48)], n=2, size=64)
    with pytest.raises(ValueError, match="no images"):
        random_crops([], n=2, size=8)
    with pytest.raises(ValueError, match="at least 64x64"):
        grid_crops([photo(40, 48)], size=64)


def test_random_and_grid_crops():
    images = [photo(40, 48, 0), photo(64, 32, 1)]
    a, b = random_crops(images, 10, 16, seed=3), random_crops(images, 10, 16, seed=3)
    assert a.shape == (10, 3, 16, 16) and torch.equal(a, b)
    assert not torch.equal(a, random_crops(images, 10, 16, seed=4))
    grid = grid_crops(images, 16, per_image=4)
    assert grid.shape == (8, 3, 16, 16)
    assert torch.equal(grid_crops(images, 16), grid)


def test_load_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="No images"):
        load_folder(tmp_path)
    Image.fromarray(np.full((10, 12), 100, np.uint8), "L").save(tmp_path / "gray.png")
    Image.fromarray(np.full((10, 12, 4), 200, np.uint8), "RGBA").save(tmp_path / "rgba.png")
    imgs = load_folder(tmp_path)
    assert [tuple(i.shape) for i in imgs] == [(3, 10, 12), (3, 10, 12)]
    with pytest.raises(ValueError, match="at least 16x16"):
        load_folder(tmp_path, min_size=16)


def test_is_grayscale():
    assert is_grayscale(photo()[:1].expand(3, -1, -1))
    assert not is_grayscale(photo())


def test_split_pairs():
    a, b = split_pairs(photo(8, 16))
    assert a.shape == b.shape == (3, 8, 8)
    with pytest.raises(ValueError, match="even width"):
        split_pairs(photo(8, 15))


# --- the history buffer ---------------------------------------------------------------------


def test_image_pool_behaves_as_in_the_paper():
    pool = ImagePool(50, seed=0)
    first = torch.arange(50.0).view(50, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # while filling: everything passes through
    assert len(pool) == 50
    current, returned_old = 0, 0
    stored = set(range(50))
    for k in range(4000):
        x = torch.full((1, 1, 1, 1), 1000.0 + k)
        out = float(pool.query(x))
        if out == 1000.0 + k:
            current += 1
        else:
            assert out in stored  # an image that was in the pool
            returned_old += 1
            stored.discard(out)
            stored.add(1000.0 + k)  # the new one took its place
    assert len(pool) == 50
    assert 0.46 < current / 4000 < 0.54  # prob 1/2 once full


def test_image_pool_state_and_size_zero():
    pool = ImagePool(5, seed=1)
    pool.query(torch.randn(7, 3, 2, 2))
    state = pool.state_dict()
    x = torch.randn(6, 3, 2, 2)
    expected = pool.query(x)
    other = ImagePool(5, seed=9)
    other.load_state_dict(state)
    assert torch.equal(other.query(x), expected)
    assert torch.equal(ImagePool(0).query(x), x)
    with pytest.raises(ValueError):
        ImagePool(-1)


# --- losses and steps -------------------------------------------------------------------------


class MeanD(torch.nn.Module):
    """A stand-in D whose logit is a fixed function of its input, to check the loss by hand."""

    def forward(self, pair):
        return pair.mean(dim=1, keepdim=True)


def test_conditional_d_loss_by_hand():
    torch.manual_seed(0)
    s, y, fake = torch.randn(2, 1, 4, 4), torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    lr = torch.cat([s, y], 1).mean(1)
    lf = torch.cat([s, fake], 1).mean(1)
    # -1/2 (E log sigmoid(l_real) + E log(1 - sigmoid(l_fake)))
    expected = -0.5 * (
        torch.log(torch.sigmoid(lr)).mean() + torch.log(1 - torch.sigmoid(lf)).mean()
    )
    assert torch.allclose(conditional_d_loss(MeanD(), s, y, fake), expected, atol=1e-6)


def test_cycle_loss_by_hand():
    x = torch.tensor([0.0, 1.0, -1.0, 0.5]).view(1, 1, 2, 2)
    r = torch.tensor([0.5, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    assert float(cycle_consistency_loss(x, r)) == pytest.approx((0.5 + 0 + 1 + 0.5) / 4)


def test_linear_decay_schedule():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1.0)
    sched = linear_decay(opt, 10)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])


def test_naive_discriminator_never_sees_a_fake():
    torch.manual_seed(0)
    s, y = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    D = PatchDiscriminator(3, 4, n_layers=1, norm="none")
    opt = torch.optim.SGD(D.parameters(), lr=0.0)
    grads = []
    for seed in (0, 1):  # two different generators: D's update must not depend on G
        torch.manual_seed(seed)
        G = UNetGenerator(1, 3, width=4, depth=2)
        pix2pix_d_step(G, D, opt, s, y, mode="naive")
        grads.append(torch.cat([p.grad.flatten() for p in D.parameters()]))
    assert torch.equal(grads[0], grads[1])
    with pytest.raises(ValueError, match="mode"):
        pix2pix_d_step(G, D, opt, s, y, mode="wrong")


def test_conditional_d_step_reports_the_logits_it_trained_on():
    # D_x and D_G_z come from the two forwards of the loss (no extra ones), before the update
    torch.manual_seed(0)
    s, y = torch.rand(4, 1, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    G = UNetGenerator(1, 3, width=4, depth=2).eval()  # eval: no dropout, so G(s) is repeatable
    D = PatchDiscriminator(4, 4, n_layers=1)  # batch norm in training mode: batch statistics
    before = copy.deepcopy(D)
    with torch.no_grad():
        fake = G(s)
        d_x = torch.sigmoid(before(torch.cat([s, y], 1))).mean()
        d_g_z = torch.sigmoid(before(torch.cat([s, fake], 1))).mean()
    calls = []
    D.register_forward_hook(lambda *_: calls.append(1))
    stats = pix2pix_d_step(G, D, torch.optim.Adam(D.parameters(), lr=0.1), s, y)
    assert len(calls) == 2
    assert float(stats["D_x"]) == pytest.approx(float(d_x), abs=1e-6)
    assert float(stats["D_G_z"]) == pytest.approx(float(d_g_z), abs=1e-6)
    assert not torch.equal(before.net[0].weight, D.net[0].weight)  # and D did change


def _tiny_pix2pix(steps, gan_weight=1.0):
    torch.manual_seed(0)
    G = UNetGenerator(1, 3, width=8, depth=3)
    D = PatchDiscriminator(4, 8, n_layers=1)
    adam = dict(lr=2e-3, betas=(0.5, 0.999))
    return Pix2PixRun(
        G,
        D,
        torch.optim.Adam(G.parameters(), **adam),
        torch.optim.Adam(D.parameters(), **adam),
        steps=steps,
        gan_weight=gan_weight,
        config={"test": True},
    )


def _gray_pairs(n=32):
    crops = torch.stack([photo(32, 32, s) for s in range(n)])
    crops = F.avg_pool2d(crops.float(), 5, 1, 2).round().byte()  # smoother: learnable quickly
    return make_pairs(crops, "gray2color")


def test_pix2pix_trains_a_few_steps():
    target, source = _gray_pairs()
    run = _tiny_pix2pix(40)
    before = translation_scores(run.sample(source), target)
    history = fit_pix2pix(run, Batches(target, source, batch_size=8), log_every=10, progress=False)
    after = translation_scores(run.sample(source), target)
    assert run.step == 40 and len(history) == 4
    assert all(math.isfinite(v) for r in history for v in r.values())
    assert {"loss_D", "loss_G", "loss_l1", "loss_adv", "D_x", "D_G_z"} <= set(history[-1])
    assert after["l1"] < before["l1"]
    assert run.opt_G.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # decayed to 0


def test_pix2pix_resume_equals_an_uninterrupted_run(tmp_path):
    target, source = _gray_pairs(16)
    full = _tiny_pix2pix(6)
    fit_pix2pix(full, Batches(target, source, batch_size=4), log_every=1, progress=False)

    class Crash:
        def on_checkpoint(self, run, path):
            if run.step == 3:
                raise KeyboardInterrupt

    first = _tiny_pix2pix(6)
    with pytest.raises(KeyboardInterrupt):
        fit_pix2pix(
            first,
            Batches(target, source, batch_size=4),
            hooks=(Crash(),),
            log_every=1,
            checkpoint_dir=tmp_path,
            checkpoint_every=3,
            progress=False,
        )
    resumed = _tiny_pix2pix(6)
    fit_pix2pix(
        resumed,
        Batches(target, source, batch_size=4),
        log_every=1,
        checkpoint_dir=tmp_path,
        checkpoint_every=3,
        resume=True,
        progress=False,
    )
    for a, b in zip(full.G.state_dict().values(), resumed.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert [r["loss_G"] for r in full.history] == [r["loss_G"] for r in resumed.history]


def test_l1_only_run_skips_the_discriminator():
    target, source = _gray_pairs(8)
    run = _tiny_pix2pix(3, gan_weight=0.0)
    d_before = [p.clone() for p in run.D.parameters()]
    history = fit_pix2pix(run, Batches(target, source, batch_size=4), log_every=1, progress=False)
    assert "loss_D" not in history[-1]
    assert all(torch.equal(a, b) for a, b in zip(d_before, run.D.parameters(), strict=True))


def _tiny_cyclegan(steps):
    torch.manual_seed(0)
    nets = [ResnetImageGenerator(3, 3, width=4, n_blocks=1) for _ in range(2)]
    nets += [PatchDiscriminator(3, 4, n_layers=1, norm="instance") for _ in range(2)]
    return CycleGANRun(
        *nets,
        opt_G=torch.optim.Adam(itertools.chain(*(n.parameters() for n in nets[:2])), 2e-3),
        opt_D=torch.optim.Adam(itertools.chain(*(n.parameters() for n in nets[2:])), 2e-3),
        steps=steps,
        pool_size=6,
    )


def test_cyclegan_trains_a_few_steps_and_resumes(tmp_path):
    crops = torch.stack([photo(16, 16, s) for s in range(16)])
    b_images, a_images = make_pairs(crops, "stylise")
    run = _tiny_cyclegan(4)
    batches = ZipBatches(
        Batches(a_images, batch_size=2, seed=1), Batches(b_images, batch_size=2, seed=2)
    )
    history = fit_cyclegan(run, batches, log_every=2, checkpoint_dir=tmp_path, progress=False)
    assert run.step == 4 and len(history) == 2
    keys = {"loss_G", "loss_gan", "loss_cycle", "loss_identity", "loss_D", "D_x", "D_G_z"}
    assert keys <= set(history[-1])
    assert all(math.isfinite(v) for r in history for v in r.values())
    assert len(run.pool_A) == len(run.pool_B) == 6
    again = _tiny_cyclegan(4)
    fit_cyclegan(again, batches, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert again.step == 4 and len(again.pool_B) == 6
    assert torch.equal(again.G_AB.up[-2].weight, run.G_AB.up[-2].weight)


# --- evaluation and inference ---------------------------------------------------------------


def test_translation_scores_reference_points():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    s = translation_scores(x, x)
    assert s["l1"] == 0 and s["psnr"] == math.inf and s["ssim"] == pytest.approx(1.0)
    s = translation_scores(torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16))
    assert s["l1"] == pytest.approx(0.5) and s["psnr"] == pytest.approx(10 * math.log10(4))
    with pytest.raises(ValueError, match="one shape"):
        translation_scores(x, x[:1])


@pytest.mark.parametrize("task", ["edges2photo", "gray2color", "edges"])
def test_translate_image_any_size(task):
    G = UNetGenerator(1, 3, width=4, depth=3)
    for h, w in [(8, 8), (13, 21), (3, 5)]:
        out = translate_image(G, photo(h, w), task, multiple=8)
        assert out.shape == (3, h, w) and out.dtype == torch.uint8
    with pytest.raises(ValueError, match="grayscale"):
        translate_image(G, torch.zeros(1, 8, 8, dtype=torch.uint8), task, 8)


def test_memory_probe_counts_the_four_networks():
    out = cyclegan_memory_probe(32, width=4, n_blocks=1, steps=1)
    g = sum(p.numel() for p in ResnetImageGenerator(3, 3, 4, 1).parameters())
    d = sum(p.numel() for p in PatchDiscriminator(3, 4, 3, "instance").parameters())
    assert out["params"] == 2 * g + 2 * d
    assert out["peak_mib"] >= out["base_mib"] > 0


# --- downloads --------------------------------------------------------------------------------


def test_pix2pix_archive_without_a_checksum_fails_clearly():
    with pytest.raises(DatasetUnavailable, match="no published checksum"):
        fetch_pix2pix_set("facades")


def test_paired_files_pairs_by_name_and_refuses_unpaired_sets(tmp_path):
    for side in "AB":
        (tmp_path / f"train{side}").mkdir()
        for k in ("1", "10", "2"):
            Image.new("RGB", (4, 4)).save(tmp_path / f"train{side}" / f"{k}_{side}.jpg")
    pairs = paired_files(tmp_path)
    assert [(a.name, b.name) for a, b in pairs] == [
        ("1_A.jpg", "1_B.jpg"),
        ("10_A.jpg", "10_B.jpg"),
        ("2_A.jpg", "2_B.jpg"),
    ]
    Image.new("RGB", (4, 4)).save(tmp_path / "trainB" / "horse_B.jpg")  # no partner
    with pytest.raises(ValueError, match="not a paired set"):
        paired_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="testA"):
        paired_files(tmp_path, split="test")


def test_cyclegan_set_offline_says_where_it_looked(no_network, tmp_path, monkeypatch):
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    monkeypatch.setenv("GANLIB_DATA_MIRROR", "")
    with pytest.raises(DatasetUnavailable) as err:
        fetch_cyclegan_set("horse2zebra")
    msg = str(err.value)
    assert "efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip" in msg
    assert "taesung_park" in msg and "To fix" in msg
    with pytest.raises(ValueError, match="Unknown CycleGAN set"):
        fetch_cyclegan_set("cats2dogs")


def test_colourfulness_by_hand():
    # half the pixels pure red, half black: rg = (1, 0), yb = (0.5, 0); M = sqrt(.25 + .0625) + 0.3 sqrt(.25 + .0625)
    img = torch.zeros(1, 3, 2, 2)
    img[0, 0, 0] = 1.0
    expected = 1.3 * math.sqrt(0.25 + 0.0625)
    assert float(colourfulness(img * 2 - 1)[0]) == pytest.approx(expected, rel=1e-6)
    gray = photo()[:1].expand(3, -1, -1)[None]
    assert float(colourfulness(gray)[0]) == 0.0
    photos_ = torch.stack([photo(seed=1), photo(seed=2)])
    assert colourfulness(photos_).shape == (2,)
    with pytest.raises(ValueError, match="RGB"):
        colourfulness(torch.zeros(1, 1, 4, 4))
