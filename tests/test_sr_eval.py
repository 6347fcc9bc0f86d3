"""The eval-sr command, the SR protocol against the published bicubic figure (offline), and the
high-frequency ratio."""

import math
import shutil

import pytest
import torch

from ganlib.__main__ import main
from ganlib.checkpoint import save_checkpoint
from ganlib.data import load_sr_images, sr_image_paths
from ganlib.degrade import imresize, make_lr, modcrop
from ganlib.gan import GANRun
from ganlib.models import DCGANDiscriminator, DCGANGenerator
from ganlib.models.sr import SRCNN
from ganlib.sr import (
    bicubic_upscaler,
    evaluate_sr,
    hf_ratio,
    laplacian_energy,
    model_upscaler,
    save_sr_model,
)


def last_line_numbers(text):
    last = text.strip().splitlines()[-1]
    assert last.startswith("mean PSNR"), last
    parts = last.split()
    return float(parts[2]), float(parts[5])


def test_set5_bicubic_reproduces_the_srgan_table(capsys):
    # Ledig et al. 2017, Table 2: bicubic x4 on Set5 = 28.43 dB PSNR, 0.8109 SSIM.
    assert main(["eval-sr", "--model", "bicubic", "--dataset", "set5", "--scale", "4"]) == 0
    out = capsys.readouterr().out
    mean_psnr, mean_ssim = last_line_numbers(out)
    rows = evaluate_sr(bicubic_upscaler(4), load_sr_images("set5"), 4)
    exact = sum(r["psnr"] for r in rows) / len(rows)
    assert abs(exact - 28.43) <= 0.02, exact
    assert abs(sum(r["ssim"] for r in rows) / 5 - 0.8109) <= 0.002
    assert mean_psnr == round(exact, 2) and len(out.strip().splitlines()) == 2 + 5 + 1


def test_set14_includes_its_grayscale_image():
    images = load_sr_images("set14")
    assert len(images) == 14 and all(img.shape[0] == 3 for _, img in images)


def test_hr_dir_gives_the_same_numbers_as_the_named_set(tmp_path, capsys):
    for p in sr_image_paths("set5")[:2]:
        shutil.copy(p, tmp_path / p.name)
    assert main(["eval-sr", "--hr-dir", str(tmp_path)]) == 0
    rows = evaluate_sr(bicubic_upscaler(4), load_sr_images("set5")[:2], 4)
    mean = sum(r["psnr"] for r in rows) / 2
    assert last_line_numbers(capsys.readouterr().out)[0] == round(mean, 2)


def test_bad_folders_and_files_are_clear_errors(tmp_path, capsys):
    assert main(["eval-sr", "--hr-dir", str(tmp_path)]) == 2
    assert "No images in" in capsys.readouterr().err
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert main(["eval-sr", "--hr-dir", str(tmp_path)]) == 2
    assert "not a readable image" in capsys.readouterr().err


def identity_srcnn():
    """An SRCNN whose output equals its (bicubic-upscaled) input: relu(x) - relu(-x) = x."""
    model = SRCNN(scale=4, width=64)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        conv1, conv2, conv3 = model.body[0], model.body[2], model.body[4]
        for c in range(3):
            conv1.weight[2 * c, c, 4, 4], conv1.weight[2 * c + 1, c, 4, 4] = 1.0, -1.0
            conv2.weight[2 * c, 2 * c, 0, 0], conv2.weight[2 * c + 1, 2 * c + 1, 0, 0] = 1.0, 1.0
            conv3.weight[c, 2 * c, 2, 2], conv3.weight[c, 2 * c + 1, 2, 2] = 1.0, -1.0
    return model


def test_checkpoint_path_is_consistent_with_the_protocol(tmp_path, capsys):
    path = save_sr_model(
        tmp_path / "srcnn.pt", identity_srcnn(), "srcnn", {"scale": 4, "width": 64}
    )
    assert main(["eval-sr", "--checkpoint", str(path), "--dataset", "set5"]) == 0
    via_checkpoint = last_line_numbers(capsys.readouterr().out)[0]
    rows = evaluate_sr(bicubic_upscaler(4), load_sr_images("set5"), 4)
    assert math.isclose(via_checkpoint, round(sum(r["psnr"] for r in rows) / 5, 2), abs_tol=0.011)


def test_checkpoint_scale_and_kind_mismatches_are_named(tmp_path, capsys):
    path = save_sr_model(tmp_path / "srcnn.pt", SRCNN(scale=4), "srcnn", {"scale": 4})
    assert main(["eval-sr", "--checkpoint", str(path), "--scale", "2"]) == 2
    assert "run with --scale 4" in capsys.readouterr().err
    G, D = DCGANGenerator(z_dim=8, width=8), DCGANDiscriminator(width=8)
    run = GANRun(G, D, torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters()), z_dim=8)
    gan = save_checkpoint(tmp_path / "gan.pt", run.state_dict())
    assert main(["eval-sr", "--checkpoint", str(gan)]) == 2
    assert "not an SR model" in capsys.readouterr().err


def test_untrained_model_runs_through_the_protocol():
    rows = evaluate_sr(model_upscaler(SRCNN(scale=4).eval()), load_sr_images("set5")[:1], 4)
    assert math.isfinite(rows[0]["psnr"]) and 0 <= rows[0]["ssim"] <= 1


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError, match="set5, set14, t91, bsd200"):
        sr_image_paths("div2k")


def test_laplacian_energy_of_a_checkerboard_by_hand():
    # grey 0/255 checkerboard: Y = 16 / 235; at every inner pixel L = 4 (y_neighbour - y) = +-4 * 219
    board = ((torch.arange(8)[:, None] + torch.arange(8)[None]) % 2 * 255).byte().expand(3, 8, 8)
    assert math.isclose(laplacian_energy(board), (4 * 219) ** 2)
    assert laplacian_energy(torch.full((3, 8, 8), 77, dtype=torch.uint8)) == 0.0
    assert math.isclose(laplacian_energy(board, crop=2), (4 * 219) ** 2)


def test_laplacian_energy_matches_scipy():
    from scipy import ndimage

    from ganlib.metrics import rgb_to_y, to_255

    img = torch.randint(0, 256, (3, 20, 24), dtype=torch.uint8)
    y = rgb_to_y(to_255(img))[0, 0].numpy()
    expected = (ndimage.laplace(y)[1:-1, 1:-1] ** 2).mean()  # scipy pads; compare the interior
    assert math.isclose(laplacian_energy(img), expected, rel_tol=1e-12)


def test_hf_ratio_is_1_for_hr_and_below_1_for_bicubic():
    _, hr = load_sr_images("set5")[2]
    hr = modcrop(hr, 4)
    assert hf_ratio(hr, hr, crop=4) == 1.0
    blurry = imresize(make_lr(hr, 4), 4)
    assert 0 < hf_ratio(blurry, hr, crop=4) < 0.5  # x4 bicubic loses most of the finest detail
    noisy = (hr.float() + torch.randn(hr.shape) * 20).clamp(0, 255).byte()
    assert hf_ratio(noisy, hr, crop=4) > 1
    row = evaluate_sr(bicubic_upscaler(4), [("butterfly", hr)], 4)[0]
    assert math.isclose(row["hf_ratio"], hf_ratio(blurry, hr, crop=4))
