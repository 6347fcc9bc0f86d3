"""The class-conditional GAN: shapes, the projection formula, its step against hand-computed
losses and gradients, the labels D sees, DiffAugment's shift, and a few fit steps."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlib.conditional import (
    ConditionalGANRun,
    conditional_gan_step,
    random_shift,
    sample_digits,
    translate,
)
from ganlib.data import Batches
from ganlib.models.conditional import (
    ConditionalBatchNorm2d,
    ConditionalDiscriminator,
    ConditionalGenerator,
    projection_logits,
)
from ganlib.train import fit


def test_generator_shapes_range_and_conditioning():
    torch.manual_seed(0)
    G = ConditionalGenerator(z_dim=8, width=8).eval()
    z = torch.randn(4, 8)
    y = torch.tensor([0, 1, 2, 3])
    out = G(z, y)
    assert out.shape == (4, 1, 28, 28)
    assert out.min() >= -1 and out.max() <= 1
    # the same noise with another label gives another image: the label reaches G
    assert not torch.allclose(out, G(z, torch.tensor([9, 9, 9, 9])))


def test_conditional_batch_norm_scales_and_shifts_by_class():
    torch.manual_seed(0)
    norm = ConditionalBatchNorm2d(3, n_classes=4)
    with torch.no_grad():
        norm.gain.weight.copy_(torch.arange(12.0).reshape(4, 3))
        norm.bias.weight.copy_(-torch.arange(12.0).reshape(4, 3))
    h, y = torch.randn(5, 3, 2, 2), torch.tensor([0, 1, 3, 3, 2])
    # gamma_y * (h - mu) / sigma + beta_y, batch statistics per channel
    mu, var = h.mean((0, 2, 3), keepdim=True), h.var((0, 2, 3), unbiased=False, keepdim=True)
    gamma, beta = norm.gain.weight[y][:, :, None, None], norm.bias.weight[y][:, :, None, None]
    expected = gamma * (h - mu) / torch.sqrt(var + 1e-5) + beta
    torch.testing.assert_close(norm(h, y), expected)


def test_projection_logits_by_hand():
    psi, embed = nn.Linear(3, 1), nn.Embedding(2, 3)
    h, y = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    expected = h @ psi.weight[0] + psi.bias + (embed.weight[y] * h).sum(1)
    torch.testing.assert_close(projection_logits(h, y, psi, embed), expected)


def test_discriminator_is_the_projection_formula():
    torch.manual_seed(0)
    D = ConditionalDiscriminator(width=4).eval()
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    y = torch.tensor([2, 5, 7])
    logits = D(x, y)
    assert logits.shape == (3,)
    with torch.no_grad():
        h = D.phi(x)
        # D(x, y) = psi(phi(x)) + <e_y, phi(x)>, with the spectrally normalised weights
        expected = F.linear(h, D.psi.weight, D.psi.bias).squeeze(1) + (D.embed.weight[y] * h).sum(1)
    torch.testing.assert_close(logits, expected)


def test_random_shift_moves_whole_images_by_at_most_the_shift():
    torch.manual_seed(0)
    x = -torch.ones(16, 1, 28, 28)
    x[:, :, 14, 14] = 1.0  # one bright pixel in the centre
    out = random_shift(x, 2)
    assert out.shape == x.shape
    for img in out:
        (r, c) = torch.nonzero(img[0] == 1)[0].tolist()
        assert abs(r - 14) <= 2 and abs(c - 14) <= 2
    assert len({tuple(torch.nonzero(img[0] == 1)[0].tolist()) for img in out}) > 1
    state = torch.get_rng_state()
    assert random_shift(x, 0) is x and torch.equal(torch.get_rng_state(), state)  # 0 = off


def test_translate_moves_each_image_by_its_own_offset_and_fills_with_background():
    x = torch.arange(32, dtype=torch.float32).reshape(2, 1, 4, 4).requires_grad_()
    out = translate(x, torch.tensor([1, -2]), torch.tensor([0, 3]))
    # image 0: one row down; row 0 is background
    assert torch.equal(out[0, 0, 1:], x[0, 0, :3]) and (out[0, 0, 0] == -1).all()
    # image 1: two rows up and three columns right; only x[1, 0, 2:, :1] is still in the frame
    assert torch.equal(out[1, 0, :2, 3:], x[1, 0, 2:, :1])
    assert (out[1, 0, 2:] == -1).all() and (out[1, 0, :, :3] == -1).all()
    # the gradient reaches exactly the pixels that stay in the frame
    out.sum().backward()
    kept = torch.zeros(2, 1, 4, 4)
    kept[0, 0, :3], kept[1, 0, 2:, :1] = 1, 1
    assert torch.equal(x.grad, kept)
    gone = translate(x.detach(), torch.tensor([4, 0]), torch.tensor([0, -9]))
    assert (gone == -1).all()  # moved out of the frame entirely


def test_bad_labels_are_refused():
    G = ConditionalGenerator(z_dim=4, width=4)
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        G(torch.randn(2, 4), torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="int64"):
        G(torch.randn(2, 4), torch.tensor([0.0, 1.0]))
    D = ConditionalDiscriminator(width=4)
    with pytest.raises(ValueError, match="must have 1 channel"):
        D(torch.zeros(2, 3, 28, 28), torch.tensor([0, 1]))


class RecordingD(nn.Module):
    """A linear projection D(x, y) = w.x + b + <e_y, x> that records every (x, y) it is given."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(784, 1)
        self.embed = nn.Embedding(10, 784)
        self.seen = []

    def forward(self, x, y):
        self.seen.append((x.detach().clone(), y.clone()))
        h = x.flatten(1)
        return self.lin(h).squeeze(1) + (self.embed(y) * h).sum(1)


def tiny_run(shift=0, **kwargs):
    torch.manual_seed(0)
    G, D = ConditionalGenerator(z_dim=8, width=4), RecordingD()
    return ConditionalGANRun(
        G,
        D,
        torch.optim.SGD(G.parameters(), lr=0.1),
        torch.optim.SGD(D.parameters(), lr=0.1),
        shift=shift,
        **kwargs,
    )


def a_batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(10, 1, 28, 28, generator=g) * 2 - 1, torch.arange(10).flip(0)


def params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_conditional_gan_step_changes_g_and_d_and_leaves_d_only_its_own_gradient():
    run = tiny_run()
    real, y = a_batch()
    G0, D0 = copy.deepcopy(run.G), copy.deepcopy(run.D)
    g_before, d_before = params(run.G), params(run.D)
    torch.manual_seed(5)
    stats = conditional_gan_step(run, (real, y))
    assert all(not torch.equal(v, g_before[k]) for k, v in run.G.named_parameters())
    assert all(not torch.equal(v, d_before[k]) for k, v in run.D.named_parameters())
    assert all(p.requires_grad for p in run.D.parameters())  # frozen() restored them
    # D judged (real, y), then (G(z, y), y) twice (D's step, G's step): always the real labels
    assert len(run.D.seen) == 3 and all(torch.equal(seen_y, y) for _, seen_y in run.D.seen)
    assert torch.equal(run.D.seen[0][0], real)
    # by hand: the same z (torch's global generator), G before its update
    torch.manual_seed(5)
    z = torch.randn(10, 8)
    with torch.no_grad():
        fake = G0(z, y)
    assert torch.allclose(run.D.seen[1][0], fake, atol=1e-6)
    # L_D = -mean log sigmoid(D(x, y)) - mean log(1 - sigmoid(D(G(z, y), y)))
    loss_D = F.binary_cross_entropy_with_logits(D0(real, y), torch.ones(10)) + (
        F.binary_cross_entropy_with_logits(D0(fake, y), torch.zeros(10))
    )
    assert torch.allclose(stats["loss_D"], loss_D.detach(), atol=1e-6)
    # D's .grad is the gradient of D's own loss alone: G's step added nothing to it
    loss_D.backward()
    for (name, p), p0 in zip(run.D.named_parameters(), D0.parameters(), strict=True):
        assert torch.allclose(p.grad, p0.grad, atol=1e-6), name
    # L_G = -mean log sigmoid(D(G(z, y), y)), with D after its own update
    with torch.no_grad():
        loss_G = -F.logsigmoid(run.D(fake, y)).mean()
    assert torch.allclose(stats["loss_G"], loss_G, atol=1e-5)
    assert 0 < float(stats["D_x"]) < 1 and 0 < float(stats["D_G_z"]) < 1


def test_every_image_d_sees_is_shifted_when_shift_is_on():
    run = tiny_run(shift=2)
    real, y = -torch.ones(10, 1, 28, 28), torch.arange(10)
    real[:, :, 14, 14] = 1.0
    conditional_gan_step(run, (real, y))
    seen_real = run.D.seen[0][0]
    moved = [tuple(torch.nonzero(img[0] == 1)[0].tolist()) for img in seen_real]
    assert all(abs(r - 14) <= 2 and abs(c - 14) <= 2 for r, c in moved)
    assert any((r, c) != (14, 14) for r, c in moved)
    # fakes too: the -1 fill of a shift shows at the border of some shifted fake
    fakes = torch.cat([run.D.seen[1][0], run.D.seen[2][0]])  # tanh output is never exactly -1
    top, bottom = fakes[..., :2, :].flatten(1), fakes[..., -2:, :].flatten(1)
    assert ((top == -1).all(dim=1) | (bottom == -1).all(dim=1)).any()


def test_the_step_refuses_batches_without_labels():
    run = tiny_run()
    with pytest.raises(ValueError, match="images, labels"):
        conditional_gan_step(run, torch.zeros(10, 1, 28, 28))


def test_conditional_run_settings_and_refusals(tmp_path):
    run = tiny_run(shift=2)
    assert run.z_dim == 8 and run.config["shift"] == 2 and run.config["z_dim"] == 8
    with pytest.raises(ValueError, match="n_dis=2"):
        tiny_run(n_dis=2)
    with pytest.raises(ValueError, match="shift must be >= 0"):
        tiny_run(shift=-1)
    x, y = a_batch()
    fit(
        run,
        conditional_gan_step,
        Batches(x, y, batch_size=5),
        2,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    with pytest.raises(ValueError, match="shift: 2 there, 0 now"):
        fit(
            tiny_run(shift=0),
            conditional_gan_step,
            Batches(x, y, batch_size=5),
            4,
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )


def test_a_few_fit_steps_train_and_samples_follow_labels(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(40, 1, 28, 28) * 2 - 1
    y = torch.arange(10).repeat(4)
    G, D = ConditionalGenerator(z_dim=8, width=8), ConditionalDiscriminator(width=8)
    before = [p.detach().clone() for p in G.parameters()]
    run = ConditionalGANRun(
        G,
        D,
        torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999)),
        torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999)),
        shift=2,
    )
    history = fit(
        run,
        conditional_gan_step,
        Batches(x, y, batch_size=20),
        6,
        log_every=3,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(h["loss_D"])) for h in history)
    assert {"loss_D", "loss_G", "D_x", "D_G_z"} <= set(history[-1])
    assert any(not torch.equal(a, b) for a, b in zip(before, G.parameters(), strict=True))
    assert (tmp_path / "latest.pt").is_file()
    assert run.sample(torch.randn(3, 8), torch.tensor([1, 2, 3])).shape == (3, 1, 28, 28)
    G.train()
    s = sample_digits(G, torch.tensor([1, 2, 3]), seed=0)
    assert s.shape == (3, 1, 28, 28) and G.training  # eval mode inside, the mode restored
    assert torch.equal(s, sample_digits(G, torch.tensor([1, 2, 3]), seed=0))  # fixed noise per seed
