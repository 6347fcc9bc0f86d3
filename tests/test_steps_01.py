"""Notebook 01's training step, as written on the page, against ganlib's reference ``gan_step``."""

import copy

import pytest
import torch

from ganlib.gan import GANRun, d_step, gan_step
from ganlib.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from tests.notebook_cells import cell_namespace

STEP = cell_namespace("01_gan_basics.ipynb", "step")
NETWORKS = {
    "mlp": (lambda: MLPGenerator(z_dim=8, hidden=32), MLPDiscriminator, 8),
    "dcgan": (lambda: DCGANGenerator(z_dim=16, width=8), lambda: DCGANDiscriminator(width=8), 16),
}


def _run(G, D, z_dim) -> GANRun:
    return GANRun(
        G,
        D,
        opt_G=torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        opt_D=torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        z_dim=z_dim,
        share_fake=False,  # the page's vanilla_gan_step draws fresh noise for G's step
    )


def _twin_runs(name: str) -> tuple[GANRun, GANRun]:
    make_G, make_D, z_dim = NETWORKS[name]
    torch.manual_seed(0)
    G, D = make_G(), make_D()
    return _run(G, D, z_dim), _run(copy.deepcopy(G), copy.deepcopy(D), z_dim)


def _state(run: GANRun) -> dict:
    """Every weight and batch-norm buffer of both networks."""
    return {f"{n}.{k}": v.clone() for n in "GD" for k, v in getattr(run, n).state_dict().items()}


@pytest.mark.parametrize("name", NETWORKS)
def test_notebook_step_gives_the_same_weights_as_gan_step(name):
    ours, reference = _twin_runs(name)
    batches = torch.rand(3, 8, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    stats = {}
    for run, step in ((ours, STEP["vanilla_gan_step"]), (reference, gan_step)):
        torch.manual_seed(2)  # the same noise for both
        stats[step] = [step(run, real) for real in batches]
    a, b = _state(ours), _state(reference)
    assert a.keys() == b.keys()
    # Same operations in the same order on the CPU: equal to the bit, not just close.
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after 3 steps"
    for s_ours, s_ref in zip(*stats.values(), strict=True):
        assert s_ours.keys() == s_ref.keys() == {"loss_D", "D_x", "D_G_z", "loss_G"}
        assert all(torch.equal(s_ours[k], s_ref[k]) for k in s_ref)


def test_update_D_moves_only_D_and_update_G_only_G():
    run, reference = _twin_runs("dcgan")
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    before = _state(run)
    torch.manual_seed(3)
    stats = STEP["update_D"](run, real)
    torch.manual_seed(3)
    assert torch.equal(stats["loss_D"], d_step(reference, real)["loss_D"])
    after = _state(run)
    weights = [k for k, _ in run.G.named_parameters()]
    assert all(torch.equal(before[f"G.{k}"], after[f"G.{k}"]) for k in weights)
    assert all(p.grad is None for p in run.G.parameters()), "detach keeps L_D's gradient out of G"
    assert not torch.equal(before["D.net.0.weight"], after["D.net.0.weight"])

    before = _state(run)
    STEP["update_G"](run, run.noise(8))
    after = _state(run)
    assert all(torch.equal(before[f"D.{k}"], after[f"D.{k}"]) for k, _ in run.D.named_parameters())
    assert not torch.equal(before[f"G.{weights[0]}"], after[f"G.{weights[0]}"])
    assert all(p.requires_grad for p in run.D.parameters()), "D must train again after G's step"
