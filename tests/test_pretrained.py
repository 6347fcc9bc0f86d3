"""Shipped pretrained weights: each file matches its manifest, loads with weights_only into its
architecture, and reproduces the figures its model card states; the training script runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganlib import pretrained
from ganlib.pretrained import PRETRAINED, load_pretrained, manifest, model_card, weights_path
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(name for name in PRETRAINED if f"{name}.pt" in manifest())


def _script():
    return load_script("pretrain")


def test_every_manifest_entry_is_a_known_model_with_a_card():
    assert set(manifest()) == {f"{name}.pt" for name in SHIPPED}
    for name in SHIPPED:
        card = model_card(name)
        assert card["name"] == name and card["steps"] > 0 and card["figures"]
        assert card["command"].startswith(f"python scripts/pretrain.py {name}")


def test_shipped_weights_fit_the_size_budget():
    total = sum((pretrained.WEIGHTS_DIR / f"{name}.pt").stat().st_size for name in SHIPPED)
    assert total <= 25 * 2**20


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_matches_its_hash_and_loads_weights_only(name):
    path = weights_path(name)
    state = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state["G"].values() if v.is_floating_point())
    model = load_pretrained(name)
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith("sr")])
def test_sr_card_figures_are_reproduced_from_the_shipped_file(name):
    from ganlib.data import load_sr_images
    from ganlib.sr import evaluate_sr, model_upscaler

    rows = evaluate_sr(model_upscaler(load_pretrained(name)), load_sr_images("set5"), 4)
    psnr = sum(r["psnr"] for r in rows) / len(rows)
    assert psnr == pytest.approx(model_card(name)["figures"]["set5_psnr"], abs=0.01)


@pytest.mark.skipif("cgan_digits" not in SHIPPED, reason="cgan_digits is not shipped")
def test_cgan_card_class_accuracy_is_reproduced():
    figures = _script()._evaluate_cgan("cgan_digits")
    card = model_card("cgan_digits")["figures"]
    assert figures["class_accuracy"] == pytest.approx(card["class_accuracy"], abs=0.005)


def test_unknown_and_missing_models_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="(?s)No pretrained model called 'srresnet'.*srresnet_x4"):
        weights_path("srresnet")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="python scripts/pretrain.py cgan_digits"):
        load_pretrained("cgan_digits")


def test_a_changed_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    (tmp_path / "cgan_digits.pt").write_bytes(b"not the trained weights")
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  cgan_digits.pt\n")
    with pytest.raises(ValueError, match="does not match its SHA-256"):
        load_pretrained("cgan_digits")


def test_pretrain_script_trains_resumes_and_exports(tmp_path, monkeypatch, capsys):
    """A few steps of cgan_digits into a temporary weights folder: checkpoint, resume, export."""
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    script = _script()
    monkeypatch.setattr(script, "CHUNK", 2)
    monkeypatch.setattr(script, "_evaluate_cgan", lambda name: {"class_accuracy": 0.1})
    script.TRAINERS["cgan_digits"] = (
        script.cgan_digits,
        script._export_generator,
        script._evaluate_cgan,
    )
    args = [
        "cgan_digits",
        "--steps",
        "4",
        "--device",
        "cpu",
        "--checkpoint-dir",
        str(tmp_path / "c"),
    ]
    assert script.main([*args, "--minutes", "1e-6"]) == 0  # stops short: not exported
    assert "run the same command to continue" in capsys.readouterr().out
    assert not (tmp_path / "weights" / "cgan_digits.pt").exists()
    assert script.main(args) == 0
    assert "Resumed" in capsys.readouterr().out
    card = json.loads((tmp_path / "weights" / "cgan_digits.json").read_text())
    assert card["steps"] == 4 and card["figures"] == {"class_accuracy": 0.1}
    G = load_pretrained("cgan_digits")
    assert G(torch.randn(3, 64), torch.tensor([0, 1, 2])).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith("sr")])
def test_eval_sr_and_upscale_take_pretrained_models(name, tmp_path, capsys):
    import re

    from PIL import Image

    from ganlib.__main__ import main
    from ganlib.data import sr_image_paths

    assert main(["eval-sr", "--pretrained", name, "--dataset", "set5"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    psnr = float(re.search(r"mean PSNR ([\d.]+) dB", last).group(1))
    assert psnr == pytest.approx(model_card(name)["figures"]["set5_psnr"], abs=0.006)
    folder = tmp_path / "hr"
    folder.mkdir()
    for path in sr_image_paths("set5"):
        Image.open(path).save(folder / f"{path.stem}.png")
    assert main(["eval-sr", "--pretrained", name, "--hr-dir", str(folder)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == last
    Image.new("RGB", (20, 12), (90, 140, 200)).save(tmp_path / "small.png")
    out = tmp_path / "big.png"
    assert main(["upscale", str(tmp_path / "small.png"), str(out), "--pretrained", name]) == 0
    assert Image.open(out).size == (80, 48)


def test_cli_names_a_missing_pretrained_model(tmp_path, monkeypatch, capsys):
    from ganlib.__main__ import main

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    assert main(["eval-sr", "--pretrained", "srgan_x4"]) == 2
    assert "python scripts/pretrain.py srgan_x4" in capsys.readouterr().err


def test_readme_quotes_each_shipped_model_card():
    readme = (ROOT / "README.md").read_text()
    quoted = {
        "srresnet_x4": ("set5_psnr", "set14_psnr"),
        "srgan_x4": ("set5_psnr", "set14_psnr", "set5_hf_ratio"),
        "cgan_digits": ("class_accuracy", "digit_fid"),
        "pix2pix_colour": ("psnr", "colour"),
    }
    for name in SHIPPED:
        row = next((ln for ln in readme.splitlines() if ln.startswith(f"| `{name}`")), None)
        assert row is not None, f"README's pretrained table has no row for {name}"
        figures = model_card(name)["figures"]
        for key in quoted[name]:
            assert f"{figures[key]:.2f}" in row, f"README row of {name} does not quote {key}"
