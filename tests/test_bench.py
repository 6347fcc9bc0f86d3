"""The benchmark machinery on tiny sizes: both loops really train; the output has its structure.

No timing assertions: these sizes say nothing about speed.
"""

import math

import pytest
import torch

from benchmarks import sr_memory
from benchmarks import train_throughput as tt

ROW_KEYS = {"ms_per_step", "ms", "images_per_s", "speedup", "losses", "params_changed"}


def check_rows(result: dict, names: list[str]) -> None:
    assert list(result["rows"]) == ["reference", *names]
    for name, row in result["rows"].items():
        assert ROW_KEYS <= set(row), name
        assert row["params_changed"], f"{name}: some parameter tensor did not change"
        assert row["losses"] and all(math.isfinite(v) for v in row["losses"].values()), name
        assert len(row["ms"]) == result["schedule"]["rounds"]
        assert row["ms_per_step"] > 0 and row["images_per_s"] > 0
    assert result["rows"]["reference"]["speedup"] == pytest.approx(1.0)


def test_dcgan_reference_and_ganlib_train_with_worker_processes():
    names = ["ganlib", "ganlib, data via DataLoader", "ganlib, previous defaults"]
    result = tt.bench_model("dcgan", "tiny", names, workers=2, log=lambda *_: None)
    check_rows(result, names)
    table = tt.format_table(result)
    assert "| reference |" in table and "| ganlib, previous defaults |" in table


def test_variants_reach_the_run_as_its_settings():
    data = tt.load_data("dcgan", tt.SIZES["tiny"]["dcgan"])
    cpu = torch.device("cpu")

    def settings(variant, model="dcgan"):
        size = tt.SIZES["tiny"][model]
        data_ = data if model == "dcgan" else tt.load_data(model, size)
        r = tt.make_runner(model, variant, data_, size, 0, cpu, 0)
        first = r.modules[0].parameters().__next__()
        return first.is_contiguous(memory_format=torch.channels_last) and not first.is_contiguous()

    assert settings("ganlib") and not settings("ganlib, channels_last off")
    assert not settings("ganlib, previous defaults")
    assert not settings("ganlib", "pix2pix") and settings("ganlib + channels_last", "pix2pix")


@pytest.mark.parametrize("model", ["dcgan64", "srresnet", "srgan", "pix2pix", "cyclegan"])
def test_other_models_train_in_both_loops(model):
    result = tt.bench_model(model, "tiny", ["ganlib"], workers=0, log=lambda *_: None)
    check_rows(result, ["ganlib"])


def test_the_examples_dcgan_is_five_layers_at_64x64():
    G, D = tt.build_models("dcgan64", {"width": 8}, seed=0)
    fake = G(torch.randn(3, 100))
    assert fake.shape == (3, 1, 64, 64) and D(fake).shape == (3,)
    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    assert [sum(isinstance(m, convs) for m in net.modules()) for net in (G, D)] == [5, 5]


def test_both_loops_see_64x64_digits_in_the_same_range():
    size = tt.SIZES["tiny"]["dcgan64"]
    data = tt.load_data("dcgan64", size)
    ref = next(tt.reference_loader("dcgan64", data, size, torch.device("cpu"), 0))[0]
    ours = next(iter(tt.ganlib_batches("dcgan64", data, size, 0, torch.device("cpu"))))
    for x in (ref, ours):
        assert x.shape == (size["batch"], 1, 64, 64) and -1 <= x.min() < x.max() <= 1


def test_ganlib_resizes_the_digits_as_the_reference_does():
    """Resize(64) on each PIL digit (the reference's workers) and ganlib's one tensor resize give the
    same 64x64 digits, to one grey level in rounding."""
    from PIL import Image
    from torchvision import transforms

    data = tt.load_data("dcgan64", tt.SIZES["tiny"]["dcgan64"])
    pil = [
        transforms.PILToTensor()(transforms.Resize(64)(Image.fromarray(x[0].numpy()))) for x in data
    ]
    ours = tt.ganlib_batches("dcgan64", data, {"batch": len(data)}, 0, torch.device("cpu"))
    diff = (torch.stack(pil).float() / 127.5 - 1)[ours.order] - next(iter(ours))
    assert diff.abs().max() <= 1 / 127.5 + 1e-6


def test_reference_dataset_matches_ganlib_range():
    data = tt.load_data("dcgan", tt.SIZES["tiny"]["dcgan"])
    it = tt.reference_loader("dcgan", data, tt.SIZES["tiny"]["dcgan"], torch.device("cpu"), 0)
    images, _ = next(it)
    assert images.shape == (8, 1, 28, 28) and images.dtype == torch.float32
    # ToTensor + Normalize(0.5, 0.5) gives ganlib's model range exactly: (x/255 - 0.5) / 0.5
    from ganlib.images import to_model_range

    assert set(images.flatten().tolist()) <= set(to_model_range(data).flatten().tolist())
    assert images.min() >= -1 and images.max() <= 1


def test_bf16_is_refused_on_cpu():
    data = tt.load_data("dcgan", tt.SIZES["tiny"]["dcgan"])
    with pytest.raises(ValueError, match="CUDA"):
        tt.make_runner(
            "dcgan",
            "ganlib + bf16 autocast",
            data,
            tt.SIZES["tiny"]["dcgan"],
            0,
            torch.device("cpu"),
        )


def test_memory_probe_in_a_subprocess():
    mem = tt.peak_memory_subprocess("dcgan", "ganlib", "tiny", steps=1, workers=0)
    # torch alone takes well over 100 MiB; a report of 0 or of the parent's peak would be wrong
    assert 100 < mem["rss_mib"] < 4000


def test_sr_memory_probe_tiled_and_untiled():
    tiled = sr_memory.probe(32, tiled=True, tile=16, n_blocks=1, width=8)
    untiled = sr_memory.probe(32, tiled=False, n_blocks=1, width=8)
    for r in (tiled, untiled):
        assert r["output"] == [3, 128, 128] and r["rss_mib"] > 100 and r["seconds"] > 0


def test_share_fake_runs_G_once_per_step_and_matches_the_two_pass_gradients():
    from ganlib.gan import GANRun, d_step, g_step, gan_step
    from ganlib.models import DCGANDiscriminator, DCGANGenerator
    from ganlib.train import fit

    def make(share_fake=False):
        torch.manual_seed(0)
        G, D = DCGANGenerator(16, 8), DCGANDiscriminator(8)
        opt = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (G, D)]
        return GANRun(G, D, opt[0], opt[1], z_dim=16, share_fake=share_fake)

    real, z = torch.rand(4, 1, 28, 28) * 2 - 1, torch.randn(4, 16)
    a, b = make(), make()
    # the shared fake gives the same D step and the same G step as running G twice on the same z
    with torch.no_grad():
        fake_a = a.G(z)
    sa = d_step(a, real, fake_a)
    fake_b = b.G(z)  # with its graph, kept for G's step
    sb = d_step(b, real, fake_b)
    assert torch.allclose(sa["loss_D"], sb["loss_D"])
    sa = g_step(a, z)
    sb = g_step(b, None, fake_b)
    assert torch.allclose(sa["loss_G"], sb["loss_G"])
    for p, q in zip(a.G.parameters(), b.G.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)

    calls = []
    run = make(share_fake=True)
    run.G.register_forward_hook(lambda *_: calls.append(1))
    before = tt.snapshot([run.G, run.D])
    fit(run, gan_step, iter(lambda: real, None), 3, progress=False)
    assert len(calls) == 3 and tt.changed(before, [run.G, run.D])
    calls.clear()
    run = make(share_fake=False)
    run.G.register_forward_hook(lambda *_: calls.append(1))
    fit(run, gan_step, iter(lambda: real, None), 2, progress=False)
    assert len(calls) == 4  # without share_fake G runs twice per step
    calls.clear()
    run = make(share_fake=None)  # the default: shared when n_dis == 1
    run.G.register_forward_hook(lambda *_: calls.append(1))
    fit(run, gan_step, iter(lambda: real, None), 2, progress=False)
    assert len(calls) == 2 and run.config["share_fake"] is True


def test_pix2pix_batches_have_the_same_roles_in_every_data_path():
    size, cpu = tt.SIZES["tiny"]["pix2pix"], torch.device("cpu")
    data = tt.load_data("pix2pix", size)
    from ganlib.translation import make_task_pairs

    target, source = make_task_pairs(data, "stylise")
    loader = tt._LoaderBatches(tt.reference_loader("pix2pix", data, size, cpu, 0), swap=True)
    t, s = next(loader)
    # whichever crop came out, it is (stylised target, photo source), as with Batches
    i = next(k for k in range(len(source)) if torch.allclose(source[k], s[0], atol=1e-5))
    assert torch.allclose(target[i], t[0], atol=1e-5)


def test_ssim_benchmark_reports_both_timings_and_equal_values(capsys, monkeypatch):
    from benchmarks import ssim_speed

    monkeypatch.setattr("sys.argv", ["ssim_speed", "--repeats", "1", "--threads", "1"])
    ssim_speed.main()
    out = capsys.readouterr().out
    assert "torchmetrics 2-D SSIM" in out and "ganlib separable SSIM" in out
    diff = float(out.rsplit("values:", 1)[1])
    assert diff < 1e-10
