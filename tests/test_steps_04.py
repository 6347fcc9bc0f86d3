"""Notebook 04's SNGAN step, as written on the page, against ganlib's reference (gan_step, hinge)."""

import pytest
import torch

from ganlib.gan import GANRun, gan_step
from ganlib.models.sngan import SNResNetDiscriminator, SNResNetGenerator
from tests.notebook_cells import cell_namespace

NOTEBOOK = "04_resnet_generators.ipynb"


@pytest.fixture(scope="module")
def sngan_step():
    return cell_namespace(NOTEBOOK, "step")["sngan_step"]


def _run(n_dis: int) -> GANRun:
    torch.manual_seed(0)
    G = SNResNetGenerator(z_dim=8, width=8, image_size=28, channels=1)
    D = SNResNetDiscriminator(width=8, image_size=28, channels=1)
    return GANRun(
        G,
        D,
        torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.0, 0.9)),
        torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.9)),
        z_dim=8,
        g_loss="hinge",
        d_loss="hinge",
        n_dis=n_dis,
        share_fake=False,  # the page's sngan_step runs G again in G's step
    )


def _train(step, n_dis: int, steps: int = 3):
    run = _run(n_dis)
    data = torch.Generator().manual_seed(1)
    torch.manual_seed(2)  # the noise both steps draw
    logs = []
    for _ in range(steps):
        real = torch.rand(n_dis * 4, 1, 28, 28, generator=data) * 2 - 1  # n_dis batches of 4
        logs.append(step(run, real))
    return run, logs


@pytest.mark.parametrize("n_dis", [1, 3])
def test_notebook_step_leaves_the_same_weights_as_gan_step(sngan_step, n_dis):
    ours, our_logs = _train(sngan_step, n_dis)
    ref, ref_logs = _train(gan_step, n_dis)
    # Same operations in the same order, from the same seeds: equal bit for bit. The state
    # includes batch norm's running statistics and spectral norm's power-iteration vectors u, v.
    for name in ("G", "D"):
        a, b = getattr(ours, name).state_dict(), getattr(ref, name).state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs after 3 steps"
    for a, b in zip(our_logs, ref_logs, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_notebook_step_trains_both_networks_n_dis_times_d(sngan_step):
    run = _run(n_dis=2)
    g0 = [p.detach().clone() for p in run.G.parameters()]
    d_steps = []
    run.opt_D.register_step_post_hook(lambda opt, args, kwargs: d_steps.append(1))
    stats = sngan_step(run, torch.rand(8, 1, 28, 28) * 2 - 1)
    assert len(d_steps) == 2, "one D update per chunk of real images"
    assert any(not torch.equal(a, b) for a, b in zip(g0, run.G.parameters(), strict=True))
    assert set(stats) == {"loss_D", "score_real", "score_fake", "loss_G"}
    assert all(v.ndim == 0 and not v.requires_grad for v in stats.values())
