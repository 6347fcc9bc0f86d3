"""Notebook 03's steps on the page train exactly as ganlib's reference steps do."""

import torch

from ganlib.conditional import ConditionalGANRun, conditional_gan_step
from ganlib.data import Batches
from ganlib.models.conditional import ConditionalDiscriminator, ConditionalGenerator
from ganlib.models.pix2pix import PatchDiscriminator
from ganlib.models.resnet import DnCNN
from ganlib.restoration import RestorationBatches, RestorationGANRun, restoration_step
from tests.notebook_cells import cell_namespace

NOTEBOOK = "03_augmentation_restoration.ipynb"


def _train(make_run, step, make_batches, steps=3):
    torch.manual_seed(0)
    run = make_run()
    batches = make_batches()
    torch.manual_seed(1)  # the steps draw z and the DiffAugment shifts from the global generator
    stats = [step(run, next(batches)) for _ in range(steps)]
    return run, stats


def _assert_same_training(ours, reference):
    (run_a, stats_a), (run_b, stats_b) = ours, reference
    for name in ("G", "D"):
        a, b = getattr(run_a, name).state_dict(), getattr(run_b, name).state_dict()
        assert a.keys() == b.keys()
        for key in a:  # parameters and buffers (batch-norm statistics, spectral-norm vectors)
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs after 3 steps"
    for sa, sb in zip(stats_a, stats_b, strict=True):
        for key in ("loss_D", "loss_G", "D_x", "D_G_z"):
            assert torch.equal(sa[key], sb[key]), key


def _cgan_run():
    G, D = ConditionalGenerator(z_dim=8, width=8), ConditionalDiscriminator(width=8)
    return ConditionalGANRun(
        G,
        D,
        torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999)),
        torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999)),
        shift=2,
    )


def _cgan_batches():
    x = torch.rand(40, 1, 28, 28) * 2 - 1
    return Batches(x, torch.arange(40) % 10, batch_size=8, seed=0)


def test_the_conditional_gan_step_on_the_page_matches_ganlib():
    cgan_step = cell_namespace(NOTEBOOK, "step")["cgan_step"]
    ours = _train(_cgan_run, cgan_step, _cgan_batches)
    reference = _train(_cgan_run, conditional_gan_step, _cgan_batches)
    _assert_same_training(ours, reference)
    assert not torch.equal(ours[0].G.conv1.weight, _cgan_run().G.conv1.weight)  # it trained


def _restoration_run():
    G = DnCNN(channels=1, width=8, depth=3, predict="residual")
    D = PatchDiscriminator(in_ch=1, width=8, n_layers=2)
    return RestorationGANRun(
        G,
        D,
        torch.optim.Adam(G.parameters(), lr=1e-3),
        torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        adv_weight=0.01,
    )


def _restoration_batches():
    return RestorationBatches(torch.rand(16, 1, 16, 16), 4, sigmas=[25, 50], seed=0)


def test_the_restoration_step_on_the_page_matches_ganlib():
    step = cell_namespace(NOTEBOOK, "step")["restoration_gan_step"]
    ours = _train(_restoration_run, step, _restoration_batches)
    reference = _train(_restoration_run, restoration_step, _restoration_batches)
    _assert_same_training(ours, reference)
    for sa, sb in zip(ours[1], reference[1], strict=True):
        assert torch.equal(sa["loss_content"], sb["loss_content"])
        assert torch.equal(sa["loss_adv"], sb["loss_adv"])
