"""pix2pix: the networks (shapes, sizes against the reference implementation, receptive fields),
the conditional D loss, the D and G steps and training with ``fit``."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlib.data import Batches
from ganlib.models.pix2pix import (
    EncoderDecoderGenerator,
    PatchDiscriminator,
    UNetGenerator,
    receptive_field,
)
from ganlib.pix2pix import (
    Pix2PixRun,
    conditional_d_loss,
    linear_decay,
    pix2pix_d_step,
    pix2pix_g_loss,
    pix2pix_g_step,
    pix2pix_step,
)
from ganlib.precision import Precision
from ganlib.train import fit
from ganlib.translation import make_task_pairs, translation_scores


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("cls", [UNetGenerator, EncoderDecoderGenerator])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_generators_tiny_shapes(cls, norm):
    g = cls(in_ch=1, out_ch=3, width=4, depth=3, norm=norm)
    y = g(torch.randn(2, 1, 16, 24))
    assert y.shape == (2, 3, 16, 24)
    assert y.abs().max() <= 1.0  # tanh output


def test_reference_parameter_counts():
    # junyanz/pytorch-CycleGAN-and-pix2pix prints "Total number of parameters : 54.414 M" for
    # unet_256 (ngf 64, batch norm) and 2.769 M for the basic 70x70 D on a 6-channel pair.
    assert n_params(UNetGenerator(3, 3, width=64, depth=8)) == 54_413_955
    assert n_params(PatchDiscriminator(6, 64, n_layers=3)) == 2_768_705


def test_encoder_decoder_is_the_unet_without_skips():
    u = UNetGenerator(3, 3, width=8, depth=4)
    e = EncoderDecoderGenerator(3, 3, width=8, depth=4)
    # Same encoder; only the decoder's input widths differ (no concatenated skip features).
    assert [p.shape for p in u.encoder.parameters()] == [p.shape for p in e.encoder.parameters()]
    assert n_params(e) < n_params(u)
    # Cut the bottleneck (zero the innermost convolution, which has no bias under batch norm): the
    # encoder-decoder's output no longer depends on its input; the U-Net's still does, via the skips.
    x1, x2 = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    for g in (u, e):
        g.eval()
        with torch.no_grad():
            g.encoder[-1][1].weight.zero_()
    with torch.no_grad():
        assert torch.allclose(e(x1), e(x2))
        assert (u(x1) - u(x2)).abs().mean() > 1e-3


def test_dropout_sits_next_to_the_bottleneck_like_the_reference():
    g = UNetGenerator(3, 3, width=8, depth=8)
    drops = [
        i for i, block in enumerate(g.decoder) if any(isinstance(m, nn.Dropout) for m in block)
    ]
    assert drops == [1, 2, 3]  # decoder blocks after the innermost one: levels 6, 5, 4
    assert not any(isinstance(m, nn.Dropout) for m in UNetGenerator(dropout=0.0).modules())


def test_dropout_is_noise_in_train_mode_only():
    g = UNetGenerator(1, 3, width=4, depth=3, norm="instance", dropout=0.5)
    x = torch.randn(1, 1, 16, 16)
    g.train()
    assert not torch.equal(g(x), g(x))
    g.eval()
    assert torch.equal(g(x), g(x))


@pytest.mark.parametrize(("n", "expected"), [(0, 1), (1, 16), (2, 34), (3, 70), (4, 142), (5, 286)])
def test_receptive_field_closed_form(n, expected):
    assert receptive_field(n) == expected


def _field_from_layers(d: PatchDiscriminator) -> int:
    # General formula: r = 1 + sum_l (k_l - 1) * prod_{j<l} s_j over the conv layers.
    r, jump = 1, 1
    for m in d.modules():
        if isinstance(m, nn.Conv2d):
            r += (m.kernel_size[0] - 1) * jump
            jump *= m.stride[0]
    return r


def _field_from_gradient(d: PatchDiscriminator, size: int) -> int:
    # Which input pixels move the centre logit: the receptive field measured, not computed.
    d.eval()
    x = torch.randn(1, d.in_ch, size, size, requires_grad=True)
    out = d(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_receptive_field_matches_the_layers_and_the_gradient(n):
    d = PatchDiscriminator(in_ch=2, width=4, n_layers=n, norm="batch")
    assert _field_from_layers(d) == receptive_field(n) == d.patch_size
    assert _field_from_gradient(d, size=receptive_field(n) + 2 * 2**n + 16) == receptive_field(n)


@pytest.mark.parametrize(("n", "size", "out"), [(0, 16, 16), (1, 64, 30), (3, 64, 6), (3, 256, 30)])
def test_patch_discriminator_output_map(n, size, out):
    d = PatchDiscriminator(in_ch=4, width=4, n_layers=n)
    assert d(torch.randn(2, 4, size, size)).shape == (2, 1, out, out)


def test_image_discriminator_covers_the_image():
    assert PatchDiscriminator.for_image(256, width=4).n_layers == 5  # the paper's 286x286 ImageGAN
    assert PatchDiscriminator.for_image(64, width=4).n_layers == 3  # at 64x64, 70x70 is the image
    assert PatchDiscriminator.for_image(32, width=4).n_layers == 2
    for size in (32, 64, 128):
        assert PatchDiscriminator.for_image(size, width=4).patch_size >= size


def test_bad_inputs_fail_clearly():
    g = UNetGenerator(3, 3, width=4, depth=4)
    with pytest.raises(ValueError, match="multiples of 16"):
        g(torch.randn(1, 3, 20, 16))
    with pytest.raises(ValueError, match="3 channel"):
        g(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="alpha"):
        g(torch.randn(1, 4, 16, 16))
    with pytest.raises(ValueError, match="batch dimension"):
        g(torch.randn(3, 16, 16))
    with pytest.raises(ValueError, match="at least 24x24"):
        PatchDiscriminator(6, 4, n_layers=3)(torch.randn(1, 6, 16, 16))
    with pytest.raises(ValueError, match="norm"):
        UNetGenerator(norm="layer")
    with pytest.raises(ValueError, match="depth"):
        UNetGenerator(depth=1)
    with pytest.raises(ValueError, match="n_layers"):
        PatchDiscriminator(n_layers=-1)
    with pytest.raises(ValueError, match="too small"):
        PatchDiscriminator.for_image(4)


def test_a_few_pix2pix_steps_lower_the_l1_loss():
    torch.manual_seed(0)
    g = UNetGenerator(1, 3, width=8, depth=3, norm="batch")
    opt = torch.optim.Adam(g.parameters(), 2e-3, betas=(0.5, 0.999))
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    target = torch.cat([x, -x, x.flip(-1)], dim=1)
    losses = []
    for _ in range(60):
        loss = (g(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


# --- the conditional D loss, the schedule, the steps --------------------------------------------


def photo(h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


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


def test_pix2pix_g_loss_by_hand():
    torch.manual_seed(0)
    s, y, fake = torch.randn(2, 1, 4, 4), torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    lf = torch.cat([s, fake], 1).mean(1)
    # -E log sigmoid(l_fake) + lambda E|y - G(x)|
    expected = -torch.log(torch.sigmoid(lf)).mean() + 7.0 * (y - fake).abs().mean()
    assert torch.allclose(pix2pix_g_loss(MeanD(), s, y, fake, 7.0), expected, atol=1e-6)


def test_pix2pix_g_loss_is_what_the_g_step_minimises():
    target, source = _gray_pairs(4)
    run = _tiny_pix2pix(10)
    ref = copy.deepcopy(run)
    torch.manual_seed(1)  # the same dropout masks for G's forward in both
    stats = pix2pix_g_step(run, source, target)
    torch.manual_seed(1)
    expected = pix2pix_g_loss(ref.D, source, target, ref.G(source), run.lambda_l1)
    assert float(stats["loss_G"]) == pytest.approx(float(expected), rel=1e-6)


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


def _run(G, D, steps=10, opt=torch.optim.Adam, lr=2e-3, **kwargs):
    extra = {"betas": (0.5, 0.999)} if opt is torch.optim.Adam else {}
    return Pix2PixRun(
        G,
        D,
        opt(G.parameters(), lr=lr, **extra),
        opt(D.parameters(), lr=lr, **extra),
        steps=steps,
        **kwargs,
    )


def _tiny_pix2pix(steps, gan_weight=1.0, **kwargs):
    torch.manual_seed(0)
    G = UNetGenerator(1, 3, width=8, depth=3)
    D = PatchDiscriminator(4, 8, n_layers=1)
    return _run(G, D, steps, gan_weight=gan_weight, config={"test": True}, **kwargs)


def _gray_pairs(n=32):
    crops = torch.stack([photo(32, 32, s) for s in range(n)])
    crops = F.avg_pool2d(crops.float(), 5, 1, 2).round().byte()  # smoother: learnable quickly
    return make_task_pairs(crops, "gray2color")


def _weights(m):
    return [p.detach().clone() for p in m.parameters()]


def _changed(before, m):
    return any(not torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))


def test_naive_discriminator_never_sees_a_fake():
    torch.manual_seed(0)
    s, y = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    D = PatchDiscriminator(3, 4, n_layers=1, norm="none")
    grads = []
    for seed in (0, 1):  # two different generators: D's update must not depend on G
        torch.manual_seed(seed)
        G = UNetGenerator(1, 3, width=4, depth=2)
        run = _run(G, D, opt=torch.optim.SGD, lr=0.0, d_mode="naive")
        pix2pix_d_step(run, s, y)
        grads.append(torch.cat([p.grad.flatten() for p in D.parameters()]))
    assert torch.equal(grads[0], grads[1])
    with pytest.raises(ValueError, match="d_mode"):
        _run(G, D, d_mode="wrong")


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
    stats = pix2pix_d_step(_run(G, D, lr=0.1), s, y)
    assert len(calls) == 2
    assert float(stats["D_x"]) == pytest.approx(float(d_x), abs=1e-6)
    assert float(stats["D_G_z"]) == pytest.approx(float(d_g_z), abs=1e-6)
    assert not torch.equal(before.net[0].weight, D.net[0].weight)  # and D did change


def test_d_step_changes_only_d_and_g_step_only_g():
    target, source = _gray_pairs(4)
    run = _tiny_pix2pix(10)
    g0, d0 = _weights(run.G), _weights(run.D)
    stats = pix2pix_d_step(run, source, target)
    assert _changed(d0, run.D) and not _changed(g0, run.G)
    assert all(p.grad is None for p in run.G.parameters())  # G(x) was made without a graph
    assert set(stats) == {"loss_D", "D_x", "D_G_z"}

    run = _tiny_pix2pix(10)
    g0, d0 = _weights(run.G), _weights(run.D)
    stats = pix2pix_g_step(run, source, target)
    assert _changed(g0, run.G) and not _changed(d0, run.D)
    assert all(p.grad is None for p in run.D.parameters())  # gradients went through D only
    assert all(p.requires_grad for p in run.D.parameters())  # and D is trainable again
    assert set(stats) == {"loss_G", "loss_l1", "loss_adv"}
    # L_G = L_cGAN + lambda L_L1
    expected = stats["loss_adv"] + 100.0 * stats["loss_l1"]
    assert float(stats["loss_G"]) == pytest.approx(float(expected), rel=1e-6)


def test_pix2pix_step_trains_d_then_g_and_steps_both_schedules():
    target, source = _gray_pairs(4)
    run = _tiny_pix2pix(10)
    g0, d0 = _weights(run.G), _weights(run.D)
    stats = pix2pix_step(run, (target, source))
    assert _changed(g0, run.G) and _changed(d0, run.D)
    assert {"loss_D", "D_x", "D_G_z", "loss_G", "loss_l1", "loss_adv"} == set(stats)
    assert run.sched_G.last_epoch == run.sched_D.last_epoch == 1


def test_l1_only_step_leaves_d_alone():
    target, source = _gray_pairs(4)
    run = _tiny_pix2pix(10, gan_weight=0.0)
    g0, d0 = _weights(run.G), _weights(run.D)
    calls = []
    run.D.register_forward_hook(lambda *_: calls.append(1))
    stats = pix2pix_step(run, (target, source))
    assert set(stats) == {"loss_G", "loss_l1"}
    assert _changed(g0, run.G) and not _changed(d0, run.D)
    assert not calls and all(p.grad is None for p in run.D.parameters())
    # L_G = lambda L_L1
    assert float(stats["loss_G"]) == pytest.approx(100.0 * float(stats["loss_l1"]), rel=1e-6)
    assert run.sched_G.last_epoch == 1 and run.sched_D.last_epoch == 0


@pytest.mark.parametrize("d_mode", ["conditional", "unconditional", "naive"])
def test_pix2pix_step_runs_its_forwards_under_autocast(d_mode):
    target, source = _gray_pairs(4)
    d_in = 4 if d_mode == "conditional" else 3  # the other D modes see one image
    torch.manual_seed(0)
    G, D = UNetGenerator(1, 3, width=8, depth=3), PatchDiscriminator(d_in, 8, n_layers=1)
    run = _run(G, D, d_mode=d_mode, precision=Precision("cpu", "bf16"))
    assert run.config["precision"] == "bf16"
    seen = []

    def record(*_):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))

    run.G.register_forward_hook(record)
    run.D.register_forward_hook(record)
    stats = pix2pix_step(run, (target, source))
    assert len(seen) >= 4  # G in both steps, D in both
    assert all(s == (True, torch.bfloat16) for s in seen), seen
    assert all(v.dtype == torch.float32 and math.isfinite(float(v)) for v in stats.values())
    assert not torch.is_autocast_enabled("cpu")


def test_pix2pix_trains_a_few_steps():
    target, source = _gray_pairs()
    run = _tiny_pix2pix(40)
    before = translation_scores(run.sample(source), target)
    history = fit(
        run,
        pix2pix_step,
        Batches(target, source, batch_size=8),
        run.steps,
        log_every=10,
        progress=False,
    )
    after = translation_scores(run.sample(source), target)
    assert run.step == 40 and len(history) == 4
    assert all(math.isfinite(v) for r in history for v in r.values())
    assert {"loss_D", "loss_G", "loss_l1", "loss_adv", "D_x", "D_G_z"} <= set(history[-1])
    assert after["l1"] < before["l1"]
    assert run.opt_G.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # decayed to 0


def test_pix2pix_resume_equals_an_uninterrupted_run(tmp_path):
    target, source = _gray_pairs(16)
    full = _tiny_pix2pix(6)
    fit(full, pix2pix_step, Batches(target, source, batch_size=4), 6, log_every=1, progress=False)

    class Crash:
        def on_checkpoint(self, run, path):
            if run.step == 3:
                raise KeyboardInterrupt

    first = _tiny_pix2pix(6)
    with pytest.raises(KeyboardInterrupt):
        fit(
            first,
            pix2pix_step,
            Batches(target, source, batch_size=4),
            6,
            hooks=(Crash(),),
            log_every=1,
            checkpoint_dir=tmp_path,
            checkpoint_every=3,
            progress=False,
        )
    resumed = _tiny_pix2pix(6)
    fit(
        resumed,
        pix2pix_step,
        Batches(target, source, batch_size=4),
        6,
        log_every=1,
        checkpoint_dir=tmp_path,
        checkpoint_every=3,
        resume=True,
        progress=False,
    )
    for a, b in zip(full.G.state_dict().values(), resumed.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert [r["loss_G"] for r in full.history] == [r["loss_G"] for r in resumed.history]
    other = _tiny_pix2pix(6, gan_weight=0.5)  # another setting: refused, with its name
    with pytest.raises(ValueError, match="gan_weight"):
        fit(
            other,
            pix2pix_step,
            Batches(target, source, batch_size=4),
            6,
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )


def test_l1_only_run_skips_the_discriminator():
    target, source = _gray_pairs(8)
    run = _tiny_pix2pix(3, gan_weight=0.0)
    d_before = _weights(run.D)
    history = fit(
        run, pix2pix_step, Batches(target, source, batch_size=4), 3, log_every=1, progress=False
    )
    assert "loss_D" not in history[-1]
    assert not _changed(d_before, run.D)
