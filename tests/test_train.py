"""The training loop and the GAN steps: what each step changes, the loop's chores, precision."""

from types import SimpleNamespace

import pytest
import torch

import ganlib.precision
import ganlib.train
from ganlib.checkpoint import load_checkpoint, save_checkpoint
from ganlib.data import Batches
from ganlib.gan import GANRun, d_step, g_step, gan_step
from ganlib.models import DCGANDiscriminator, DCGANGenerator
from ganlib.precision import Precision
from ganlib.train import (
    SupervisedRun,
    TrainingDiverged,
    adam,
    fit,
    fuses_adam,
    optimizer_name,
    supervised_step,
)


def tiny_run(config=None, width=8, channels=1, **settings):
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=8, width=width, channels=channels)
    D = DCGANDiscriminator(width=width, channels=channels)
    return GANRun(
        G,
        D,
        opt_G=torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        opt_D=torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        z_dim=8,
        config=config or {"width": width},
        **settings,
    )


def real_images(n=4, channels=1):
    return torch.rand(n, channels, 28, 28) * 2 - 1


def fit_tiny(run, data, steps, checkpoint_dir, resume=False):
    """``fit`` with gan_step on batches of 8 of ``data``, checkpoints in ``checkpoint_dir``."""
    batches = Batches(data, batch_size=8)
    return fit(
        run, gan_step, batches, steps, checkpoint_dir=checkpoint_dir, resume=resume, progress=False
    )


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return any(
        not torch.equal(before[k], v)
        for k, v in module.state_dict().items()
        if v.is_floating_point()
    )


def params_changed(before, module):
    return any(not torch.equal(before[n], p) for n, p in module.named_parameters())


def count_steps(optimizer):
    """Wrap ``optimizer.step`` so that calls are counted in the returned list's length."""
    calls, step = [], optimizer.step

    def counted(*args, **kwargs):
        calls.append(1)
        return step(*args, **kwargs)

    optimizer.step = counted
    return calls


# --- The steps: one call changes the right parameters, and only those ---------------------------


def test_d_step_updates_only_the_discriminator():
    run = tiny_run()
    g0, d0 = snapshot(run.G), snapshot(run.D)
    stats = d_step(run, real_images())
    assert params_changed(d0, run.D)
    assert not params_changed(g0, run.G)
    assert all(p.grad is None for p in run.G.parameters())  # G ran without a graph
    assert set(stats) == {"loss_D", "D_x", "D_G_z"}
    assert all(v.ndim == 0 and not v.requires_grad for v in stats.values())
    assert 0 < float(stats["D_x"]) < 1 and 0 < float(stats["D_G_z"]) < 1


def test_d_step_loss_is_the_bce_value_function_of_the_logits_before_the_update():
    run = tiny_run()
    x = real_images()
    torch.manual_seed(3)
    with torch.no_grad():
        real_logits, fake_logits = run.D(x), run.D(run.G(run.noise(4)))
    torch.manual_seed(3)  # the same noise inside d_step
    stats = d_step(run, x)
    # L_D = -mean log sigmoid(l_real) - mean log(1 - sigmoid(l_fake))
    expected = -(
        torch.log(torch.sigmoid(real_logits)).mean()
        + torch.log(1 - torch.sigmoid(fake_logits)).mean()
    )
    torch.testing.assert_close(stats["loss_D"], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stats["D_x"], torch.sigmoid(real_logits).mean())


def test_g_step_updates_only_the_generator_and_leaves_no_grads_on_D():
    run = tiny_run()
    run.D.net[-1].weight.requires_grad_(False)  # a layer frozen by the user stays frozen
    flags = [p.requires_grad for p in run.D.parameters()]
    g0, d0 = snapshot(run.G), snapshot(run.D)
    stats = g_step(run, run.noise(4))
    assert params_changed(g0, run.G)
    assert not params_changed(d0, run.D)
    assert all(p.grad is None for p in run.D.parameters())
    assert [p.requires_grad for p in run.D.parameters()] == flags  # restored as they were
    assert flags.count(False) == 1
    assert set(stats) == {"loss_G"} and float(stats["loss_G"]) > 0


def test_g_step_with_a_shared_fake_does_not_run_G_again():
    run = tiny_run()
    calls = []
    run.G.register_forward_hook(lambda *_: calls.append(1))
    fake = run.G(run.noise(4))
    g0 = snapshot(run.G)
    g_step(run, None, fake)
    assert len(calls) == 1 and params_changed(g0, run.G)


def test_gan_step_makes_n_dis_d_updates_per_g_update_on_separate_real_images():
    run = tiny_run(n_dis=2)
    d_calls, g_calls = count_steps(run.opt_D), count_steps(run.opt_G)
    seen = []
    run.D.register_forward_hook(lambda m, args, out: seen.append(len(args[0])))
    stats = gan_step(run, real_images(8))
    assert (len(d_calls), len(g_calls)) == (2, 1)
    assert set(seen) == {4}  # every D forward sees a batch of B = 8 / n_dis
    assert set(stats) == {"loss_D", "D_x", "D_G_z", "loss_G"}
    fit(run, gan_step, Batches(real_images(32), batch_size=8), 3, progress=False)
    assert (len(d_calls), len(g_calls)) == (2 + 6, 1 + 3)


def test_gan_step_rejects_a_batch_it_cannot_cut_into_n_dis():
    run = tiny_run(n_dis=3)
    with pytest.raises(ValueError, match=r"batch of 8 images .* n_dis = 3"):
        gan_step(run, real_images(8))


def test_gan_run_rejects_bad_settings():
    with pytest.raises(ValueError, match="n_dis must be >= 1"):
        tiny_run(n_dis=0)
    with pytest.raises(ValueError, match="share_fake needs n_dis = 1"):
        tiny_run(n_dis=2, share_fake=True)
    with pytest.raises(ValueError, match="hinge, lsgan, nonsaturating, saturating.*wasserstein"):
        tiny_run(g_loss="wasserstein")
    with pytest.raises(ValueError, match="d_loss must be one of bce"):
        tiny_run(d_loss="wgan")


def test_settings_are_recorded_in_the_config():
    run = tiny_run(share_fake=True, g_loss="saturating")
    assert run.config == {
        "width": 8,
        "z_dim": 8,
        "g_loss": "saturating",
        "d_loss": "bce",
        "n_dis": 1,
        "share_fake": True,
        "precision": "fp32",
        "optimizers": {"opt_G": "Adam(for-loop)", "opt_D": "Adam(for-loop)"},
        "channels_last": True,
    }


def test_share_fake_defaults_to_on_when_n_dis_is_one_and_is_recorded_resolved():
    assert tiny_run().share_fake is True and tiny_run().config["share_fake"] is True
    assert tiny_run(n_dis=3).config["share_fake"] is False  # None: off, each D step draws fakes
    assert tiny_run(share_fake=False).config["share_fake"] is False
    with pytest.raises(ValueError, match="share_fake needs n_dis = 1: with n_dis = 2"):
        tiny_run(n_dis=2, share_fake=True)


def test_steps_that_never_share_default_share_fake_to_off():
    from ganlib.conditional import ConditionalGANRun
    from ganlib.models.conditional import ConditionalDiscriminator, ConditionalGenerator
    from ganlib.models.sr import SRGANDiscriminator, SRResNet
    from ganlib.sr import SRGANRun

    G, D = SRResNet(4, n_blocks=1, width=8), SRGANDiscriminator(width=8)
    sr = SRGANRun(G, D, adam(G.parameters()), adam(D.parameters()))
    assert sr.config["share_fake"] is False
    G, D = ConditionalGenerator(z_dim=8, width=8), ConditionalDiscriminator(width=8)
    cond = ConditionalGANRun(G, D, adam(G.parameters()), adam(D.parameters()))
    assert cond.config["share_fake"] is False


def test_a_checkpoint_written_without_share_fake_is_refused_by_the_new_default(tmp_path):
    old = tiny_run(share_fake=False)  # the default before share_fake was decided
    fit_tiny(old, real_images(16), 2, tmp_path)
    with pytest.raises(ValueError, match="share_fake: False there, True now"):
        fit_tiny(tiny_run(), real_images(16), 4, tmp_path, resume=True)
    # with its own setting again, it resumes
    again = tiny_run(share_fake=False)
    fit_tiny(again, real_images(16), 4, tmp_path, resume=True)
    assert again.step == 4


def _is_channels_last(module):
    """Every 4-D weight stored NHWC (one with a single input channel is both NCHW and NHWC)."""
    convs = [p for p in module.parameters() if p.ndim == 4]
    return any(not p.is_contiguous() for p in convs) and all(
        p.is_contiguous(memory_format=torch.channels_last) for p in convs
    )


def test_channels_last_follows_the_networks_preference_and_is_recorded():
    from ganlib.cyclegan import CycleGANRun
    from ganlib.models import MLPDiscriminator, MLPGenerator
    from ganlib.models.pix2pix import PatchDiscriminator, UNetGenerator
    from ganlib.models.resnet import ResnetImageGenerator
    from ganlib.models.sr import SRResNet
    from ganlib.pix2pix import Pix2PixRun

    run = tiny_run()  # DCGAN: measured faster in channels_last on CPU
    assert run.config["channels_last"] is True
    assert _is_channels_last(run.G) and _is_channels_last(run.D)
    off = tiny_run(channels_last=False)  # overridable per run
    assert off.config["channels_last"] is False and not _is_channels_last(off.G)

    sr = SRResNet(4, n_blocks=1, width=8)
    assert SupervisedRun(sr, adam(sr.parameters())).config["channels_last"] is True

    G, D = MLPGenerator(z_dim=8, hidden=16), MLPDiscriminator()  # no preference: unchanged
    assert GANRun(G, D, adam(G.parameters()), adam(D.parameters()), z_dim=8).channels_last is False
    # measured slower in channels_last (0.92-0.98x): the U-Net and the CycleGAN generator
    G, D = UNetGenerator(3, 3, 8, depth=5), PatchDiscriminator(6, 8)
    p2p = Pix2PixRun(G, D, adam(G.parameters()), adam(D.parameters()), steps=10)
    assert p2p.config["channels_last"] is False and not _is_channels_last(G)
    nets = [ResnetImageGenerator(3, 3, 8, 1), ResnetImageGenerator(3, 3, 8, 1)]
    nets += [PatchDiscriminator(3, 8, norm="instance"), PatchDiscriminator(3, 8, norm="instance")]
    opt_G = adam([p for m in nets[:2] for p in m.parameters()])
    opt_D = adam([p for m in nets[2:] for p in m.parameters()])
    assert CycleGANRun(*nets, opt_G, opt_D, steps=10).config["channels_last"] is False


def test_fit_hands_the_step_channels_last_batches_and_trains_to_the_same_weights():
    seen = []

    def step(run, batch):  # RGB digits: a 1-channel batch is NCHW and NHWC at once
        seen.append(batch.is_contiguous(memory_format=torch.channels_last))
        return gan_step(run, batch)

    runs = {}
    for cl in (True, False):
        run = tiny_run(channels=3, channels_last=cl)
        torch.manual_seed(1)  # the same noise for both
        fit(
            run, step, Batches(real_images(24, channels=3), batch_size=8, seed=0), 5, progress=False
        )
        runs[cl] = run
    assert seen == [True] * 5 + [False] * 5
    # Same arithmetic in another memory layout: equal up to float rounding, not bit for bit.
    for net in ("G", "D"):
        a, b = getattr(runs[True], net).state_dict(), getattr(runs[False], net).state_dict()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=f"{net}.{k}")
    with torch.no_grad():
        z = torch.randn(6, 8)
        torch.testing.assert_close(runs[True].sample(z), runs[False].sample(z), rtol=0, atol=1e-5)


def test_channels_last_is_recorded_but_a_checkpoint_in_the_other_format_resumes(tmp_path):
    first = tiny_run(channels_last=False)
    fit_tiny(first, real_images(16), 2, tmp_path)
    state = load_checkpoint(tmp_path / "latest.pt")
    assert state["config"]["channels_last"] is False
    del state["config"]["channels_last"]  # as written before ganlib recorded it
    save_checkpoint(tmp_path / "latest.pt", state)
    again = tiny_run()  # channels_last: the weights load into NHWC storage
    fit_tiny(again, real_images(16), 3, tmp_path, resume=True)
    assert again.step == 3 and _is_channels_last(again.G)


def test_share_fake_runs_G_once_per_step():
    run = tiny_run(share_fake=True)
    calls = []
    run.G.register_forward_hook(lambda *_: calls.append(1))
    g0, d0 = snapshot(run.G), snapshot(run.D)
    gan_step(run, real_images())
    assert len(calls) == 1
    assert params_changed(g0, run.G) and params_changed(d0, run.D)


def test_supervised_step_changes_only_the_model():
    torch.manual_seed(0)
    model, other = torch.nn.Conv2d(1, 1, 3, padding=1), torch.nn.Conv2d(1, 1, 3, padding=1)
    run = SupervisedRun(model, torch.optim.SGD(model.parameters(), lr=0.1), loss="mse")
    m0, o0 = snapshot(model), snapshot(other)
    target, inputs = real_images(), real_images()
    with torch.no_grad():
        expected = ((model(inputs) - target) ** 2).mean()  # L_2 before the update
    stats = supervised_step(run, (target, inputs))
    torch.testing.assert_close(stats["loss"], expected)
    assert params_changed(m0, model) and not params_changed(o0, other)


def test_supervised_run_rejects_an_unknown_loss():
    model = torch.nn.Conv2d(1, 1, 3, padding=1)
    with pytest.raises(ValueError, match="loss must be one of"):
        SupervisedRun(model, torch.optim.SGD(model.parameters(), lr=0.1), loss="huber")


# --- fit: any step function, the loop's chores ---------------------------------------------------


def test_fit_trains_with_a_step_function_written_by_hand():
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = SupervisedRun(model, opt)

    def my_step(run, batch):  # least squares, y = 0.5 x
        x = batch
        loss = ((run.model(x) - 0.5 * x) ** 2).mean()
        run.precision.update(loss, run.optimizer, "model")
        return {"loss": loss.detach()}

    data = torch.linspace(-1, 1, 64)[:, None]
    history = fit(run, my_step, Batches(data, batch_size=16), 200, log_every=50, progress=False)
    assert run.step == 200 and [r["step"] for r in history] == [50, 100, 150, 200]
    assert abs(model.weight.item() - 0.5) < 1e-3
    assert history[-1]["loss"] < history[0]["loss"]


def test_fit_rejects_a_step_that_is_not_a_function():
    run = tiny_run()
    with pytest.raises(ValueError, match=r"fit\(run, step, batches, steps\)"):
        fit(run, Batches(real_images(8), batch_size=4), gan_step, 3, progress=False)


def test_fit_logs_every_k_steps_and_checkpoints(tmp_path):
    run = tiny_run()
    history = fit(
        run,
        gan_step,
        Batches(real_images(64), batch_size=8),
        10,
        log_every=4,
        checkpoint_dir=tmp_path,
        checkpoint_every=4,
        progress=False,
    )
    assert [r["step"] for r in history] == [4, 8, 10]
    state = load_checkpoint(tmp_path / "latest.pt")
    assert state["step"] == 10
    assert state["config"] == run.config
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files


def test_fit_refuses_images_outside_the_model_range():
    run = tiny_run()
    with pytest.raises(ValueError, match=r"\[-1, 1\], got values in \[255, 255\]"):
        fit(run, gan_step, iter([torch.full((4, 1, 28, 28), 255.0)]), 1, progress=False)
    with pytest.raises(ValueError, match="to_model_range"):
        fit(run, gan_step, iter([torch.zeros(4, 1, 28, 28, dtype=torch.uint8)]), 1, progress=False)


def test_resume_with_a_changed_setting_names_it(tmp_path):
    data = real_images(32)
    fit_tiny(tiny_run(), data, 2, tmp_path)
    for changed_setting, match in (
        ({"g_loss": "saturating"}, r"g_loss: 'nonsaturating' there, 'saturating' now"),
        ({"n_dis": 2}, r"n_dis: 1 there, 2 now"),
    ):
        run = tiny_run(**changed_setting)
        with pytest.raises(ValueError, match=match):
            fit_tiny(run, data, 4, tmp_path, resume=True)
        assert run.step == 0


def test_resume_accepts_a_checkpoint_written_before_optimizers_were_recorded(tmp_path):
    data = real_images(32)
    fit_tiny(tiny_run(), data, 2, tmp_path)
    state = load_checkpoint(tmp_path / "latest.pt")
    assert state["config"]["optimizers"] == {"opt_G": "Adam(for-loop)", "opt_D": "Adam(for-loop)"}
    del state["config"]["optimizers"]  # as ganlib wrote it before
    save_checkpoint(tmp_path / "latest.pt", state)
    run = tiny_run()
    fit_tiny(run, data, 4, tmp_path, resume=True)
    assert run.step == 4 and [r["step"] for r in run.history] == [2, 4]
    # the checkpoint written after resuming records the optimizers again
    assert (
        load_checkpoint(tmp_path / "latest.pt")["config"]["optimizers"]["opt_D"] == "Adam(for-loop)"
    )

    state["config"]["optimizers"] = {"opt_G": "Adam(fused)", "opt_D": "Adam(fused)"}
    save_checkpoint(tmp_path / "latest.pt", state)
    with pytest.raises(ValueError, match=r"optimizers: \{'opt_G': 'Adam\(fused\)'.* there"):
        fit_tiny(tiny_run(), data, 4, tmp_path, resume=True)


def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(tmp_path):
    data = real_images(64)

    def train(steps, resume, ckpt):
        run = tiny_run()
        fit(
            run,
            gan_step,
            Batches(data, batch_size=8, seed=5),
            steps,
            log_every=3,
            checkpoint_dir=ckpt,
            checkpoint_every=3,
            resume=resume,
            progress=False,
        )
        return run

    straight = train(9, False, tmp_path / "straight")
    train(5, False, tmp_path / "split")
    resumed = train(9, True, tmp_path / "split")
    assert resumed.step == 9
    for a, b in ((straight.G, resumed.G), (straight.D, resumed.D)):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(x, y), name
    assert [r["step"] for r in resumed.history] == [3, 5, 6, 9]


def test_hinge_runs_log_raw_scores_and_bce_runs_probabilities():
    hinge = tiny_run(g_loss="hinge", d_loss="hinge")
    x = real_images()
    torch.manual_seed(1)
    with torch.no_grad():
        real_logits, fake_logits = hinge.D(x), hinge.D(hinge.G(hinge.noise(4)))
    torch.manual_seed(1)
    stats = gan_step(hinge, x)
    assert set(stats) == {"loss_D", "score_real", "score_fake", "loss_G"}
    torch.testing.assert_close(stats["score_real"], real_logits.mean())  # raw, no sigmoid
    torch.testing.assert_close(stats["score_fake"], fake_logits.mean())
    # L_D = mean max(0, 1 - l_real) + mean max(0, 1 + l_fake)
    expected = torch.relu(1 - real_logits).mean() + torch.relu(1 + fake_logits).mean()
    torch.testing.assert_close(stats["loss_D"], expected)
    history = fit(
        tiny_run(), gan_step, Batches(real_images(16), batch_size=4), 2, log_every=2, progress=False
    )
    assert {"D_x", "D_G_z"} <= set(history[0]) and "score_real" not in history[0]


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path):
    run = tiny_run()
    data = real_images(64)

    def poisoned_batches():
        batches = Batches(data, batch_size=8)
        for i in range(100):
            if i == 6:  # the data pipeline is fine; the discriminator blows up at step 7
                run.D.net[-1].bias.data.fill_(float("nan"))
            yield next(batches)

    with pytest.raises(TrainingDiverged, match=r"NaN/inf by step 8.*latest\.pt"):
        fit(
            run,
            gan_step,
            poisoned_batches(),
            50,
            log_every=2,
            checkpoint_dir=tmp_path,
            checkpoint_every=4,
            progress=False,
        )
    state = load_checkpoint(tmp_path / "latest.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["D"].values() if v.is_floating_point())


def test_warns_when_discriminator_wins():
    run = tiny_run()
    run.opt_D.param_groups[0]["lr"] = 5e-2  # a runaway discriminator
    run.opt_G.param_groups[0]["lr"] = 0.0
    with pytest.warns(UserWarning, match="discriminator has won"):
        fit(
            run,
            gan_step,
            Batches(real_images(64), batch_size=16),
            120,
            log_every=5,
            d_wins_patience=3,
            progress=False,
        )


def test_hooks_see_every_log_and_the_end():
    run = tiny_run()
    seen = []

    class Recorder:
        def on_log(self, run, record):
            seen.append(record["step"])

        def on_end(self, run):
            seen.append("end")

    fit(
        run,
        gan_step,
        Batches(real_images(32), batch_size=8),
        6,
        hooks=[Recorder()],
        log_every=3,
        progress=False,
    )
    assert seen == [3, 6, "end"]


def test_generate_draws_n_samples_in_batches_from_the_noise_stream():
    run = tiny_run()
    torch.manual_seed(1)
    out = run.generate(7, batch_size=3)  # batches of 3, 3, 1
    assert out.shape == (7, 1, 28, 28) and out.device.type == "cpu"
    assert out.abs().max() <= 1 and run.G.training  # eval only while sampling
    torch.manual_seed(1)
    z = torch.cat([torch.randn(3, 8), torch.randn(3, 8), torch.randn(1, 8)])
    torch.testing.assert_close(out, run.sample(z))


def test_free_training_state_keeps_the_networks_and_resume_restores_the_optimizers(tmp_path):
    data = real_images(64)

    def train(run, steps):
        fit(
            run,
            gan_step,
            Batches(data, batch_size=8),
            steps,
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )

    run = tiny_run()
    train(run, 4)
    weights = snapshot(run.G)
    adam = {k: v.clone() for k, v in run.opt_G.state_dict()["state"][0].items()}
    run.free_training_state()
    assert not run.opt_G.state and not run.opt_D.state
    assert all(p.grad is None for net in (run.G, run.D) for p in net.parameters())
    assert not changed(weights, run.G)
    # Training on with resume=True reloads Adam's moments from the checkpoint first
    run.G.zero_grad()
    seen = {}

    def before_step(opt, *_):  # Adam's state for G's first parameter when step 5 begins
        first = opt.param_groups[0]["params"][0]
        seen.setdefault("state", {k: v.clone() for k, v in opt.state[first].items()})

    run.opt_G.register_step_pre_hook(before_step)
    train(run, 5)
    assert run.step == 5
    assert all(torch.equal(seen["state"][k], adam[k]) for k in adam)


# --- Precision -----------------------------------------------------------------------------------


def test_fp16_without_cuda_is_refused():
    with pytest.raises(ValueError, match="CUDA"):
        Precision("cpu", "fp16")
    assert Precision("cpu").mode == "fp32"
    with pytest.raises(ValueError, match="auto, fp32, bf16 or fp16"):
        Precision("cpu", "fp8")


def test_gan_step_runs_its_forward_passes_under_autocast_when_asked():
    def record_autocast(seen):
        return lambda *_: seen.append(torch.is_autocast_enabled("cpu"))

    for mode, expected in (("bf16", True), ("fp32", False)):
        run = tiny_run(precision=Precision("cpu", mode))
        seen_G, seen_D = [], []
        run.G.register_forward_hook(record_autocast(seen_G))
        run.D.register_forward_hook(record_autocast(seen_D))
        stats = gan_step(run, real_images())
        assert set(seen_G) == {expected} and set(seen_D) == {expected}, mode
        assert all(v.dtype == torch.float32 for v in stats.values())  # losses in float32
        assert run.config["precision"] == mode


@pytest.mark.filterwarnings("ignore:.*GradScaler is enabled, but CUDA is not available")
def test_precision_keeps_one_grad_scaler_per_name():
    precision = Precision("cpu", "bf16")
    first = precision._scaler("D")
    assert precision._scaler("D") is first  # the same object across updates
    assert precision._scaler("G") is not first
    assert set(precision.scalers) == {"D", "G"}


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp16")])
def test_auto_precision_picks_bf16_only_where_the_gpu_computes_it_natively(
    monkeypatch, native, expected
):
    asked = {}

    def is_bf16_supported(including_emulation=True):
        asked["including_emulation"] = including_emulation
        return native if not including_emulation else True

    monkeypatch.setattr(ganlib.precision.torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert Precision("cuda", "auto").mode == expected
    assert asked == {"including_emulation": False}


@pytest.mark.parametrize(
    "capability, expected", [((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")]
)
def test_auto_precision_from_the_gpu_capability(monkeypatch, capability, expected):
    # torch's own is_bf16_supported, on a mocked GPU: a T4 (7.5) emulates bf16, an A100 (8.0)
    # and an H100 (9.0) compute it natively
    major, minor = capability
    with monkeypatch.context() as m:
        m.setattr(torch.version, "hip", None)
        m.setattr(torch.cuda, "is_available", lambda: True)
        m.setattr(torch.cuda, "current_device", lambda: 0)
        m.setattr(
            torch.cuda, "get_device_properties", lambda _: SimpleNamespace(major=major, minor=minor)
        )
        precision = Precision("cuda")
    assert precision.mode == expected


@pytest.mark.filterwarnings("ignore:.*GradScaler is enabled, but CUDA is not available")
def test_fp16_updates_go_through_one_persistent_scaler_per_optimizer():
    precision = Precision("cuda", "fp16")
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    for name in ("D", "G", "D"):
        precision.update(model(torch.ones(1, 2)).sum(), opt, name)
        seen.append(precision.scalers[name])
    assert seen[0] is seen[2] and seen[1] is not seen[0]
    assert set(precision.state_dict()["scalers"]) == {"D", "G"}


# --- Optimizers ----------------------------------------------------------------------------------


def test_adam_is_fused_only_for_parameters_on_cuda():
    def on(*devices):
        return [SimpleNamespace(device=torch.device(d)) for d in devices]

    assert fuses_adam(on("cuda", "cuda:0"))
    assert not fuses_adam(on("cpu", "cpu"))
    assert not fuses_adam(on("cuda", "cpu"))
    assert not fuses_adam(on("mps"))


def test_adam_on_cpu_is_torch_default_adam_to_the_last_bit():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    opt_a = adam(a.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_b = torch.optim.Adam(b.parameters(), lr=2e-4, betas=(0.5, 0.999))
    assert opt_a.defaults == opt_b.defaults  # fused and foreach left to torch (None)
    assert not getattr(opt_a, "_step_supports_amp_scaling", False)
    x = torch.randn(8, 4)
    for _ in range(3):
        for net, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_adam_on_cuda_is_fused_and_recorded_in_the_config(monkeypatch, tmp_path):
    monkeypatch.setattr(ganlib.train, "fuses_adam", lambda params: True)  # as for CUDA params
    G, D = DCGANGenerator(z_dim=8, width=8), DCGANDiscriminator(width=8)
    opt_G = adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    # fused Adam takes the scaler's inf check as a tensor: no host sync in scaler.step
    assert opt_G.defaults["fused"] and opt_G._step_supports_amp_scaling
    opt_D = adam([{"params": D.parameters()}], lr=2e-4, foreach=True)  # an explicit choice wins
    assert not opt_D.defaults["fused"]
    run = GANRun(G, D, opt_G, opt_D, z_dim=8)
    assert run.config["optimizers"] == {"opt_G": "Adam(fused)", "opt_D": "Adam(foreach)"}
    fit(
        run,
        gan_step,
        Batches(real_images(8), batch_size=4),
        2,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    saved = load_checkpoint(tmp_path / "latest.pt")["config"]
    assert saved["optimizers"] == {"opt_G": "Adam(fused)", "opt_D": "Adam(foreach)"}


def test_optimizer_name_says_which_implementation_torch_steps_with():
    w = torch.nn.Parameter(torch.zeros(2))
    assert optimizer_name(torch.optim.Adam([w])) == "Adam(for-loop)"  # torch's default on CPU
    assert optimizer_name(torch.optim.Adam([w], foreach=True)) == "Adam(foreach)"
    assert optimizer_name(torch.optim.Adam([w], fused=True)) == "Adam(fused)"
    assert optimizer_name(torch.optim.SGD([w], lr=0.1, foreach=False)) == "SGD(for-loop)"
    assert optimizer_name(torch.optim.LBFGS([w])) == "LBFGS"  # no implementation to choose
    on_gpu = torch.optim.Adam([w])
    on_gpu.param_groups[0]["params"] = [SimpleNamespace(device=torch.device("cuda"))]
    assert optimizer_name(on_gpu) == "Adam(foreach)"  # torch's default on CUDA
    assert tiny_run().config["optimizers"] == {"opt_G": "Adam(for-loop)", "opt_D": "Adam(for-loop)"}


@pytest.mark.parametrize("fused, host_reads", [(True, 0), (False, 1)])
def test_grad_scaler_reads_the_inf_check_back_only_for_unfused_adam(monkeypatch, fused, host_reads):
    # The reason for fused Adam under fp16 (torch's GradScaler on CPU, the same code as on CUDA).
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([w], lr=0.1, fused=fused)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    scaler.scale((w * torch.tensor([1.0, float("inf"), 1.0])).sum()).backward()
    reads = []
    item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda t: reads.append(1) or item(t))
    scaler.step(opt)
    monkeypatch.undo()
    scaler.update()
    assert len(reads) == host_reads
    assert torch.equal(w.detach(), torch.ones(3))  # the inf skipped the step either way
    assert scaler.get_scale() == 2.0
