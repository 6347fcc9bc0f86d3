"""ganlib.gan.EMAGANRun: the moving average of G's weights, against hand-computed values."""

import copy

import pytest
import torch

from ganlib.gan import EMAGANRun, GANRun, ema_gan_step, gan_step
from ganlib.models import DCGANDiscriminator, DCGANGenerator


def _nets():
    torch.manual_seed(0)
    return DCGANGenerator(z_dim=16, width=8), DCGANDiscriminator(width=8)


def _run(cls=EMAGANRun, G=None, D=None, **kwargs):
    if G is None:
        G, D = _nets()
    return cls(
        G,
        D,
        opt_G=torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        opt_D=torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        z_dim=16,
        **kwargs,
    )


def _shift_G(run, amount):
    with torch.no_grad():
        for p in run.G.parameters():
            p.add_(amount)
        for b in run.G.buffers():
            if b.is_floating_point():
                b.add_(amount)


@pytest.mark.parametrize(("step", "beta"), [(1000, 0.5), (0, 0.1), (5, 6 / 15)])
def test_update_ema_is_the_weighted_average(step, beta):
    run = _run(ema_decay=0.5)
    run.step = step  # early steps lower beta to (1 + step) / (10 + step)
    w0 = [p.clone() for p in run.G.parameters()]
    _shift_G(run, 1.0)
    run.update_ema()
    for p_ema, p, p0 in zip(run.G_ema.parameters(), run.G.parameters(), w0, strict=True):
        # w_ema = beta * w0 + (1 - beta) * w1 with w1 = w0 + 1
        torch.testing.assert_close(p_ema, beta * p0 + (1 - beta) * p, rtol=0, atol=1e-6)
        torch.testing.assert_close(p_ema, p0 + (1 - beta), rtol=0, atol=1e-6)
    for b_ema, b in zip(run.G_ema.buffers(), run.G.buffers(), strict=True):
        assert torch.equal(b_ema, b), "batch-norm statistics are copied, not averaged"


def test_average_does_not_change_training():
    G, D = _nets()
    plain = _run(GANRun, copy.deepcopy(G), copy.deepcopy(D))
    averaged = _run(EMAGANRun, G, D, ema_decay=0.9)
    real = torch.rand(3, 8, 1, 28, 28) * 2 - 1
    for run, step in ((plain, gan_step), (averaged, ema_gan_step)):
        torch.manual_seed(1)
        for i, x in enumerate(real):
            step(run, x)
            run.step = i + 1
    for n in ("G", "D"):
        for a, b in zip(
            getattr(plain, n).state_dict().values(),
            getattr(averaged, n).state_dict().values(),
            strict=True,
        ):
            assert torch.equal(a, b)
    # The average moved, but lags behind G.
    first = next(averaged.G_ema.parameters())
    assert not torch.equal(first, next(G.parameters()))
    assert not any(p.requires_grad for p in averaged.G_ema.parameters())


def test_samples_come_from_the_average():
    run = _run()
    _shift_G(run, 0.5)  # G and G_ema now differ
    z = torch.randn(4, 16)
    expected = copy.deepcopy(run.G_ema).eval()(z)  # batch norm with running statistics
    assert torch.equal(run.sample(z), expected)
    assert run.G_ema.training and run.generate(3).shape == (3, 1, 28, 28)
    assert not torch.equal(run.sample(z), GANRun.sample(run, z))


def test_checkpoint_holds_the_average_and_its_decay():
    run = _run(ema_decay=0.99)
    _shift_G(run, 0.25)
    run.update_ema()
    state = run.state_dict()
    assert state["config"]["ema_decay"] == 0.99
    fresh = _run(ema_decay=0.99)
    fresh.load_state_dict(state)
    for a, b in zip(fresh.G_ema.parameters(), run.G_ema.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="ema_decay"):
        _run(ema_decay=0.9).load_state_dict(state)


def test_bad_decay_is_refused():
    with pytest.raises(ValueError, match="ema_decay must be in"):
        _run(ema_decay=1.0)
