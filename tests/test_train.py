import pytest
import torch

from ganlib.checkpoint import load_checkpoint
from ganlib.data import Batches
from ganlib.models import DCGANDiscriminator, DCGANGenerator
from ganlib.train import GANRun, Precision, TrainingDiverged, d_step, fit, g_step


def tiny_run(config=None, width=8):
    torch.manual_seed(0)
    G, D = DCGANGenerator(z_dim=8, width=width), DCGANDiscriminator(width=width)
    return GANRun(
        G,
        D,
        opt_G=torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        opt_D=torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        z_dim=8,
        config=config or {"width": width},
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


def test_d_step_updates_only_the_discriminator():
    run = tiny_run()
    g0, d0 = snapshot(run.G), snapshot(run.D)
    stats = d_step(run.G, run.D, run.opt_D, torch.rand(4, 1, 28, 28) * 2 - 1, run.noise(4))
    assert params_changed(d0, run.D)
    assert not params_changed(g0, run.G)
    assert set(stats) == {"loss_D", "D_x", "D_G_z"}
    assert all(v.ndim == 0 and not v.requires_grad for v in stats.values())
    assert 0 < float(stats["D_x"]) < 1 and 0 < float(stats["D_G_z"]) < 1


def test_g_step_updates_only_the_generator_and_leaves_no_grads_on_D():
    run = tiny_run()
    g0, d0 = snapshot(run.G), snapshot(run.D)
    stats = g_step(run.G, run.D, run.opt_G, run.noise(4))
    assert params_changed(g0, run.G)
    assert not params_changed(d0, run.D)
    assert all(p.grad is None for p in run.D.parameters())
    assert all(p.requires_grad for p in run.D.parameters())  # restored after the step
    assert float(stats["loss_G"]) > 0


def test_g_step_rejects_unknown_loss():
    run = tiny_run()
    with pytest.raises(ValueError, match="nonsaturating"):
        g_step(run.G, run.D, run.opt_G, run.noise(2), loss="wasserstein")


def test_steps_take_a_loss_function_with_the_same_result_as_its_name():
    from ganlib.losses import d_loss, g_loss_nonsaturating

    results = []
    for d_loss_arg, g_loss_arg in (("bce", "nonsaturating"), (d_loss, g_loss_nonsaturating)):
        torch.manual_seed(0)
        run = tiny_run()
        x, z = torch.rand(4, 1, 28, 28) * 2 - 1, run.noise(4)
        stats = d_step(run.G, run.D, run.opt_D, x, z, loss=d_loss_arg)
        stats |= g_step(run.G, run.D, run.opt_G, z, loss=g_loss_arg)
        results.append({k: float(v) for k, v in stats.items()})
    assert results[0] == results[1]


def test_fp16_without_cuda_is_refused():
    with pytest.raises(ValueError, match="CUDA"):
        Precision("cpu", "fp16")
    assert Precision("cpu").mode == "fp32"


def test_fit_logs_every_k_steps_and_checkpoints(tmp_path):
    run = tiny_run()
    data = torch.rand(64, 1, 28, 28) * 2 - 1
    history = fit(
        run,
        Batches(data, batch_size=8),
        10,
        log_every=4,
        checkpoint_dir=tmp_path,
        checkpoint_every=4,
        progress=False,
    )
    assert [r["step"] for r in history] == [4, 8, 10]
    state = load_checkpoint(tmp_path / "latest.pt")
    assert state["step"] == 10
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path):
    run = tiny_run()
    data = torch.rand(64, 1, 28, 28) * 2 - 1

    def poisoned_batches():
        batches = Batches(data, batch_size=8)
        for i in range(100):
            if i == 6:  # the data pipeline is fine; the discriminator blows up at step 7
                run.D.net[-1].bias.data.fill_(float("nan"))
            yield next(batches)

    with pytest.raises(TrainingDiverged, match=r"NaN/inf by step 8.*latest\.pt"):
        fit(
            run,
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


def test_warns_when_discriminator_wins(tmp_path):
    run = tiny_run()
    run.opt_D.param_groups[0]["lr"] = 5e-2  # a runaway discriminator
    run.opt_G.param_groups[0]["lr"] = 0.0
    data = torch.rand(64, 1, 28, 28) * 2 - 1
    with pytest.warns(UserWarning, match="discriminator has won"):
        fit(run, Batches(data, batch_size=16), 120, log_every=5, d_wins_patience=3, progress=False)


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
        Batches(torch.rand(32, 1, 28, 28) * 2 - 1, batch_size=8),
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
    data = torch.rand(64, 1, 28, 28) * 2 - 1

    def train(run, steps):
        fit(
            run,
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
