"""Translation tasks, crops, evaluation and the pix2pix/CycleGAN datasets (notebook 05).

The pix2pix step is tested in test_pix2pix.py, CycleGAN's in test_cyclegan.py.
"""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.feature import canny

from ganlib.data import (
    Batches,
    DatasetUnavailable,
    fetch_cyclegan_set,
    fetch_pix2pix_set,
    paired_files,
    split_pairs,
)
from ganlib.images import luma, random_crops, to_model_range
from ganlib.models.pix2pix import UNetGenerator
from ganlib.translation import (
    canny_edges,
    colourfulness,
    grid_crops,
    is_grayscale,
    load_folder,
    make_source,
    make_task_pairs,
    mean_colour,
    stylise,
    translate,
    translate_image,
    translation_scores,
)


def photo(h=40, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


# --- tasks ----------------------------------------------------------------------------------


def test_gray2color_source_is_the_bt601_luma():
    img = torch.tensor([[[255]], [[0]], [[0]]], dtype=torch.uint8)
    assert int(make_source(img, "gray2color")) == round(0.299 * 255)
    img = photo()
    y = 0.299 * img[0].double() + 0.587 * img[1].double() + 0.114 * img[2].double()
    source = make_source(img, "gray2color")
    assert source.shape == (1, 40, 48) and source.dtype == torch.uint8
    assert torch.equal(source[0], y.round().to(torch.uint8))


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
def test_make_task_pairs_shapes_and_ranges(task, src_ch):
    crops = torch.stack([photo(16, 16, s) for s in range(3)])
    target, source = make_task_pairs(crops, task)
    assert target.shape == (3, 3, 16, 16) and source.shape == (3, src_ch, 16, 16)
    for t in (target, source):
        assert t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1
    if task == "stylise":
        assert torch.equal(source, crops.float() / 127.5 - 1)
        assert torch.allclose(target, stylise(crops).float() / 127.5 - 1)


def test_uint8_pairs_are_the_float_pairs_before_conversion():
    crops = torch.stack([photo(16, 16, s) for s in range(3)])
    for task in ("gray2color", "stylise"):
        target8, source8 = make_task_pairs(crops, task, uint8=True)
        assert target8.dtype == source8.dtype == torch.uint8
        target, source = make_task_pairs(crops, task)
        assert torch.equal(to_model_range(target8), target)
        assert torch.equal(to_model_range(source8), source)
    # Batches converts the uint8 pairs one batch at a time to exactly the float pairs
    b8 = Batches(
        *make_task_pairs(crops, "gray2color", uint8=True), batch_size=2, transform=to_model_range
    )
    bf = Batches(*make_task_pairs(crops, "gray2color"), batch_size=2)
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
    with pytest.raises(ValueError, match="one image"):
        split_pairs(photo(8, 16)[None])


# --- evaluation and inference ---------------------------------------------------------------


def test_translation_scores_reference_points():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    s = translation_scores(x, x)
    assert s["l1"] == 0 and s["psnr"] == math.inf and s["ssim"] == pytest.approx(1.0)
    s = translation_scores(torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16))
    assert s["l1"] == pytest.approx(0.5) and s["psnr"] == pytest.approx(10 * math.log10(4))
    with pytest.raises(ValueError, match="one shape"):
        translation_scores(x, x[:1])


def test_translate_runs_eval_mode_in_chunks_and_restores_the_mode():
    torch.manual_seed(0)
    G = UNetGenerator(1, 3, width=4, depth=2)  # batch norm: eval mode uses running statistics
    G(torch.randn(4, 1, 8, 8))  # one training forward moves the running statistics
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    out = translate(G, x, batch_size=2)
    assert G.training and out.device.type == "cpu" and out.shape == (5, 3, 8, 8)
    G.eval()
    with torch.no_grad():
        assert torch.allclose(out, G(x), atol=1e-6)
    assert not out.requires_grad


@pytest.mark.parametrize("task", ["edges2photo", "gray2color", "edges"])
def test_translate_image_any_size(task):
    G = UNetGenerator(1, 3, width=4, depth=3)
    for h, w in [(8, 8), (13, 21), (3, 5)]:
        out = translate_image(G, photo(h, w), task, multiple=8)
        assert out.shape == (3, h, w) and out.dtype == torch.uint8
    with pytest.raises(ValueError, match="grayscale"):
        translate_image(G, torch.zeros(1, 8, 8, dtype=torch.uint8), task, 8)


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
