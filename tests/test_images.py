"""load_image: the files students actually have."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganlib.images import list_images, load_image, to_model_range, to_unit_range


def test_grayscale_rgba_and_16_bit_become_uint8_rgb(tmp_path):
    Image.fromarray(np.full((10, 12), 200, np.uint8), mode="L").save(tmp_path / "gray.png")
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 128  # half-transparent red on black -> ~128
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((10, 12), 65535, np.uint16)).save(tmp_path / "deep.png")
    gray, red, deep = (load_image(tmp_path / f) for f in ("gray.png", "rgba.png", "deep.png"))
    assert gray.shape == red.shape == deep.shape == (3, 10, 12)
    assert gray.dtype == torch.uint8 and (gray == 200).all()
    assert abs(int(red[0, 0, 0]) - 128) <= 1 and red[1:].max() == 0
    assert (deep == 255).all()


def test_corrupt_truncated_missing_and_tiny_files(tmp_path):
    (tmp_path / "html.png").write_text("<html>403 Forbidden</html>")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(tmp_path / "html.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok.png").read_bytes()[:60])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(FileNotFoundError, match="No image"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ValueError, match="at least 19x19"):
        load_image(_tiny(tmp_path), min_size=19)


def _tiny(folder):
    Image.fromarray(np.zeros((3, 5, 3), np.uint8)).save(folder / "tiny.png")
    return folder / "tiny.png"


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="No images in"):
        list_images(tmp_path)


def test_range_conversions_round_trip():
    x = torch.arange(256, dtype=torch.uint8)
    assert to_model_range(x).min() == -1 and to_model_range(x).max() == 1
    assert torch.allclose(to_unit_range(to_model_range(x)) * 255, x.float(), atol=1e-4)
    with pytest.raises(ValueError, match="uint8 or float"):
        to_model_range(torch.arange(3))
