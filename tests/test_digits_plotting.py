import json

import pytest
import torch

from ganlib.data import load_mnist
from ganlib.digits import digit_report, load_digit_classifier
from ganlib.images import to_model_range
from ganlib.plotting import LiveView, interpolate_latents, interpolation_widget
from tests.test_train import tiny_run


def test_shipped_classifier_recognises_heldout_digits():
    model, info = load_digit_classifier()
    images, labels = load_mnist("test")
    x = to_model_range(images[8000:, None])  # the 2,000 digits it never trained on
    with torch.no_grad():
        acc = (model(x).argmax(1) == labels[8000:]).float().mean().item()
    assert acc > 0.98
    assert abs(acc - info["heldout_accuracy"]) < 1e-3  # the recorded figure is the real one


def test_report_separates_digits_from_noise():
    model, _ = load_digit_classifier()
    images, _ = load_mnist("test")
    real = digit_report(model, to_model_range(images[8000:9000, None]))
    noise = digit_report(model, torch.rand(1000, 1, 28, 28) * 2 - 1)
    flat = to_model_range(images[8000:9000, None]).flatten(1)
    shuffled = digit_report(model, flat[:, torch.randperm(784)].view(-1, 1, 28, 28))
    assert real["recognizable"] > 0.9 and real["classes_covered"] == 10
    assert noise["recognizable"] < 0.05 and shuffled["recognizable"] < 0.05
    assert sum(real["class_counts"]) == round(real["recognizable"] * 1000)


def test_interpolation_endpoints_and_norm():
    z0, z1 = torch.randn(3, 64), torch.randn(3, 64)
    assert torch.allclose(interpolate_latents(z0, z1, 0.0), z0, atol=1e-5)
    assert torch.allclose(interpolate_latents(z0, z1, 1.0), z1, atol=1e-5)
    mid_lin = interpolate_latents(z0, z1, 0.5, spherical=False).norm(dim=1)
    mid_slerp = interpolate_latents(z0, z1, 0.5).norm(dim=1)
    assert (mid_slerp > mid_lin).all()  # slerp does not cut through the low-norm middle


def test_slider_changes_the_image():
    run = tiny_run()
    box = interpolation_widget(run, run.noise(2), run.noise(2), frames=3)
    before = box.image.value
    box.slider.value = 1.0
    assert box.image.value != before and box.image.value[:4] == b"\x89PNG"


def test_live_view_draws_a_png():
    run = tiny_run()
    run.history = [
        {"step": s, "loss_D": 1.0, "loss_G": 0.7, "D_x": 0.6, "D_G_z": 0.4} for s in (1, 2)
    ]
    png = LiveView(run.noise(4)).draw(run)
    assert png[:4] == b"\x89PNG" and len(png) > 1000


def test_live_view_passes_a_tuple_of_fixed_inputs_to_the_run():
    run = tiny_run()
    run.history = [{"step": 1, "loss_D": 1.0, "loss_G": 0.7, "score_real": 2.0, "score_fake": -1.5}]
    z, labels = run.noise(4), torch.arange(4)
    seen = []

    def sample(*inputs):  # what a conditional run's sample(z, y) receives
        seen.append(inputs)
        return run.G(inputs[0]).detach()

    run.sample = sample
    assert LiveView((z, labels)).draw(run)[:4] == b"\x89PNG"
    LiveView(z).draw(run)
    assert [len(inputs) for inputs in seen] == [2, 1]
    assert seen[0][0] is z and seen[0][1] is labels and seen[1][0] is z


def test_plot_history_draws_probabilities_against_one_half_and_raw_scores_without():
    import matplotlib.pyplot as plt

    from ganlib.plotting import plot_history

    bce = [{"step": 1, "loss_D": 1.3, "loss_G": 0.7, "D_x": 0.6, "D_G_z": 0.4}]
    hinge = [{"step": 1, "loss_D": 1.3, "loss_G": 0.7, "score_real": 2.0, "score_fake": -1.5}]
    _, axes = plt.subplots(2, 2)
    plot_history(bce, axes[0])
    plot_history(hinge, axes[1])
    assert axes[0, 1].get_title() == "discriminator outputs (probabilities)"
    assert axes[0, 1].get_ylim() == (0, 1) and len(axes[0, 1].lines) == 3  # with the 0.5 line
    assert axes[1, 1].get_title() == "discriminator outputs (raw scores)"
    assert [line.get_ydata()[0] for line in axes[1, 1].lines] == [2.0, -1.5]
    assert [t.get_text() for t in axes[1, 0].get_legend().get_texts()] == ["loss D", "loss G"]
    plt.close("all")


def test_results_are_recorded_for_the_course(tmp_path, monkeypatch):
    from ganlib.results import record

    monkeypatch.setenv("GANLIB_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("GANLIB_PROFILE", "smoke")
    record("01_x", a=1.5)
    record("01_x", b=torch.tensor(2.0), split="test")
    data = json.loads((tmp_path / "01_x.json").read_text())
    assert data["figures"] == {"a": 1.5, "b": 2.0, "split": "test"} and data["profile"] == "smoke"
    with pytest.raises(ValueError, match="number, string or list"):
        record("01_x", bad=object())


def test_before_after_wipe_moves_and_switches_images():
    from ganlib.plotting import before_after_widget

    dark, bright = (
        torch.zeros(3, 8, 10, dtype=torch.uint8),
        torch.full((3, 8, 10), 200, dtype=torch.uint8),
    )
    box = before_after_widget({"a": (dark, bright), "b": (bright, dark)})
    first = box.image.value
    box.slider.value = 0.9
    assert box.image.value != first
    moved = box.image.value
    box.dropdown.value = "b"
    assert box.image.value != moved
    with pytest.raises(ValueError, match="one shape"):
        before_after_widget({"x": (dark, bright[:, :4])})


def _png(mode: str, size=(6, 4)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="png")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_uploads_in_the_ipywidgets_8_and_7_formats_become_rgb(mode):
    from ganlib.plotting import read_upload

    content = _png(mode)
    v8 = (
        {
            "name": "cat.png",
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
        },
    )
    v7 = {"cat.png": {"metadata": {"name": "cat.png", "type": "image/png"}, "content": content}}
    for value in (v8, v7):
        name, img = read_upload(value)
        assert name == "cat.png" and img.dtype == torch.uint8 and img.shape == (3, 4, 6)


def test_an_unreadable_upload_is_named():
    from ganlib.plotting import read_upload

    with pytest.raises(ValueError, match="notes.txt is not a readable image"):
        read_upload(({"name": "notes.txt", "content": b"hello"},))
