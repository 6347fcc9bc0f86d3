"""CycleGAN: the history buffer, the G and D steps against their formulas, training with ``fit``,
resume, mixed precision and the memory probe."""

import copy
import itertools
import math

import pytest
import torch

from ganlib.cyclegan import (
    CycleGANRun,
    ImagePool,
    activation_elements,
    cyclegan_d_step,
    cyclegan_g_loss,
    cyclegan_g_step,
    cyclegan_memory_probe,
    cyclegan_step,
)
from ganlib.data import Batches, ZipBatches
from ganlib.losses import cycle_consistency_loss
from ganlib.models.pix2pix import PatchDiscriminator
from ganlib.models.resnet import ResnetImageGenerator
from ganlib.precision import Precision
from ganlib.train import fit
from ganlib.translation import make_task_pairs


def photo(h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


# --- the history buffer -----------------------------------------------------------------------


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


# --- the steps --------------------------------------------------------------------------------


def test_cycle_loss_by_hand():
    x = torch.tensor([0.0, 1.0, -1.0, 0.5]).view(1, 1, 2, 2)
    r = torch.tensor([0.5, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    assert float(cycle_consistency_loss(x, r)) == pytest.approx((0.5 + 0 + 1 + 0.5) / 4)


def _tiny_cyclegan(steps, **kwargs):
    torch.manual_seed(0)
    nets = [ResnetImageGenerator(3, 3, width=4, n_blocks=1) for _ in range(2)]
    nets += [PatchDiscriminator(3, 4, n_layers=1, norm="instance") for _ in range(2)]
    return CycleGANRun(
        *nets,
        opt_G=torch.optim.Adam(itertools.chain(*(n.parameters() for n in nets[:2])), 2e-3),
        opt_D=torch.optim.Adam(itertools.chain(*(n.parameters() for n in nets[2:])), 2e-3),
        steps=steps,
        pool_size=6,
        **kwargs,
    )


def _domains(n=16):
    crops = torch.stack([photo(16, 16, s) for s in range(n)])
    b_images, a_images = make_task_pairs(crops, "stylise")
    return a_images, b_images


def _weights(run):
    nets = ("G_AB", "G_BA", "D_A", "D_B")
    return {k: [p.detach().clone() for p in getattr(run, k).parameters()] for k in nets}


def _changed(run, before):
    return {
        k
        for k, ws in before.items()
        if any(not torch.equal(a, b) for a, b in zip(ws, getattr(run, k).parameters(), strict=True))
    }


def test_g_step_changes_only_the_generators_and_matches_its_formula():
    a, b = (x[:2] for x in _domains())
    run = _tiny_cyclegan(10)
    ref = copy.deepcopy(run)  # the networks before the update
    before = _weights(run)
    stats, fake_a, fake_b = cyclegan_g_step(run, a, b)
    assert _changed(run, before) == {"G_AB", "G_BA"}
    for D in (run.D_A, run.D_B):  # gradients went through the discriminators only
        assert all(p.grad is None and p.requires_grad for p in D.parameters())
    with torch.no_grad():
        G, F, D_A, D_B = ref.G_AB, ref.G_BA, ref.D_A, ref.D_B
        assert torch.allclose(fake_b, G(a)) and torch.allclose(fake_a, F(b))
        # L_GAN = E[(D_B(G(a)) - 1)^2] + E[(D_A(F(b)) - 1)^2]
        gan = ((D_B(G(a)) - 1) ** 2).mean() + ((D_A(F(b)) - 1) ** 2).mean()
        # L_cyc = E|F(G(a)) - a| + E|G(F(b)) - b|
        cyc = (F(G(a)) - a).abs().mean() + (G(F(b)) - b).abs().mean()
        # L_idt = E|G(b) - b| + E|F(a) - a|
        idt = (G(b) - b).abs().mean() + (F(a) - a).abs().mean()
    assert float(stats["loss_gan"]) == pytest.approx(float(gan), rel=1e-5)
    assert float(stats["loss_cycle"]) == pytest.approx(float(cyc), rel=1e-5)
    assert float(stats["loss_identity"]) == pytest.approx(float(idt), rel=1e-5)
    # L = L_GAN + 10 L_cyc + 0.5 * 10 L_idt
    assert float(stats["loss_G"]) == pytest.approx(float(gan + 10 * cyc + 5 * idt), rel=1e-5)
    assert not fake_a.requires_grad and not fake_b.requires_grad


@pytest.mark.parametrize("lambda_identity", [0.5, 0.0])
def test_cyclegan_g_loss_is_what_the_g_step_minimises(lambda_identity):
    a, b = (x[:2] for x in _domains())
    run = _tiny_cyclegan(10, lambda_identity=lambda_identity)
    ref = copy.deepcopy(run)
    stats, _, _ = cyclegan_g_step(run, a, b)
    assert ("loss_identity" in stats) == bool(lambda_identity)
    loss = cyclegan_g_loss(ref.G_AB, ref.G_BA, ref.D_A, ref.D_B, a, b, 10.0, lambda_identity)
    assert float(loss) == pytest.approx(float(stats["loss_G"]), rel=1e-6)


def test_cyclegan_g_loss_by_hand():
    a, b = torch.full((1, 3, 4, 4), 0.5), torch.full((1, 3, 4, 4), -0.5)

    def halve(x):  # G = F = x / 2
        return x / 2

    def score(x):  # D = 0 everywhere: (0 - 1)^2 = 1 per generator
        return x[:, :1] * 0

    # L_GAN = 1 + 1; L_cyc = |a/4 - a| + |b/4 - b| = 0.375 + 0.375; L_idt = 0.25 + 0.25
    expected = 2 + 10 * 0.75 + 0.5 * 10 * 0.5
    assert float(cyclegan_g_loss(halve, halve, score, score, a, b)) == pytest.approx(expected)


def test_d_step_changes_only_the_discriminators_and_logs_raw_scores():
    a, b = (x[:2] for x in _domains())
    run = _tiny_cyclegan(10)
    torch.manual_seed(1)
    fake_a, fake_b = torch.rand_like(a) * 2 - 1, torch.rand_like(b) * 2 - 1
    ref = copy.deepcopy(run)
    before = _weights(run)
    stats = cyclegan_d_step(run, a, b, fake_a, fake_b)  # the pools are filling: fakes pass through
    assert _changed(run, before) == {"D_A", "D_B"}
    assert all(p.grad is None for G in (run.G_AB, run.G_BA) for p in G.parameters())
    with torch.no_grad():
        # L_D = 1/2 (E[(D(real) - 1)^2] + E[D(fake)^2]), for D_B and D_A
        loss_b = 0.5 * (((ref.D_B(b) - 1) ** 2).mean() + (ref.D_B(fake_b) ** 2).mean())
        loss_a = 0.5 * (((ref.D_A(a) - 1) ** 2).mean() + (ref.D_A(fake_a) ** 2).mean())
        score_real, score_fake = ref.D_B(b).mean(), ref.D_B(fake_b).mean()
    assert set(stats) == {"loss_D", "score_real", "score_fake"}  # raw scores, not probabilities
    assert float(stats["loss_D"]) == pytest.approx(float(loss_a + loss_b), rel=1e-5)
    assert float(stats["score_real"]) == pytest.approx(float(score_real), rel=1e-5)
    assert float(stats["score_fake"]) == pytest.approx(float(score_fake), rel=1e-5)
    assert len(run.pool_A) == len(run.pool_B) == 2


def test_cyclegan_step_trains_all_four_networks_and_both_schedules():
    a, b = (x[:2] for x in _domains())
    run = _tiny_cyclegan(10)
    before = _weights(run)
    stats = cyclegan_step(run, (a, b))
    assert _changed(run, before) == {"G_AB", "G_BA", "D_A", "D_B"}
    keys = {"loss_G", "loss_gan", "loss_cycle", "loss_identity", "loss_D"}
    assert set(stats) == keys | {"score_real", "score_fake"}
    assert run.sched_G.last_epoch == run.sched_D.last_epoch == 1


def test_cyclegan_step_runs_its_forwards_under_autocast():
    a, b = (x[:2] for x in _domains())
    run = _tiny_cyclegan(10, precision=Precision("cpu", "bf16"))
    assert run.config["precision"] == "bf16"
    seen = []

    def record(*_):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))

    for net in (run.G_AB, run.G_BA, run.D_A, run.D_B):
        net.register_forward_hook(record)
    stats = cyclegan_step(run, (a, b))
    assert len(seen) == 6 + 2 + 4  # G: 6 generator passes and 2 D passes; D: 4 passes
    assert all(s == (True, torch.bfloat16) for s in seen), seen
    assert all(v.dtype == torch.float32 and math.isfinite(float(v)) for v in stats.values())


# --- training ---------------------------------------------------------------------------------


def test_cyclegan_trains_a_few_steps_and_resumes(tmp_path):
    a_images, b_images = _domains()
    run = _tiny_cyclegan(4)
    batches = ZipBatches(
        Batches(a_images, batch_size=2, seed=1), Batches(b_images, batch_size=2, seed=2)
    )
    history = fit(
        run, cyclegan_step, batches, run.steps, log_every=2, checkpoint_dir=tmp_path, progress=False
    )
    assert run.step == 4 and len(history) == 2
    keys = {"loss_G", "loss_gan", "loss_cycle", "loss_identity", "loss_D"}
    assert keys | {"score_real", "score_fake"} <= set(history[-1])
    assert "D_x" not in history[-1]
    assert all(math.isfinite(v) for r in history for v in r.values())
    assert len(run.pool_A) == len(run.pool_B) == 6
    again = _tiny_cyclegan(4)
    fit(again, cyclegan_step, batches, 4, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert again.step == 4 and len(again.pool_B) == 6
    assert torch.equal(again.G_AB.up[-2].weight, run.G_AB.up[-2].weight)


def test_zip_batches_draw_in_lock_step_and_resume():
    a, b = torch.arange(6.0).view(6, 1), -torch.arange(6.0).view(6, 1)
    batches = ZipBatches(Batches(a, batch_size=2, seed=1), Batches(b, batch_size=2, seed=2))
    next(batches)
    state = batches.state_dict()
    expected = [next(batches) for _ in range(4)]
    again = ZipBatches(Batches(a, batch_size=2, seed=5), Batches(b, batch_size=2, seed=6))
    again.load_state_dict(state)
    for (x, y), (u, v) in zip(expected, (next(again) for _ in range(4)), strict=True):
        assert torch.equal(x, u) and torch.equal(y, v)
        assert (x >= 0).all() and (y <= 0).all()  # (a, b): each from its own domain


# --- memory -----------------------------------------------------------------------------------


def test_memory_probe_counts_the_four_networks():
    out = cyclegan_memory_probe(32, width=4, n_blocks=1, steps=1)
    g = sum(p.numel() for p in ResnetImageGenerator(3, 3, 4, 1).parameters())
    d = sum(p.numel() for p in PatchDiscriminator(3, 4, 3, "instance").parameters())
    assert out["params"] == 2 * g + 2 * d
    assert out["peak_mib"] >= out["base_mib"] > 0


def test_activation_elements_counts_every_leaf_output():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    # two leaves, each with a (1, 4, 8, 8) output
    assert activation_elements(model, torch.zeros(1, 3, 8, 8)) == 2 * 4 * 8 * 8
