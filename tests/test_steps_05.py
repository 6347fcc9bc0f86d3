"""Notebook 05's steps on the page train exactly as ganlib's reference steps (pix2pix, CycleGAN)."""

import copy
import itertools

import torch
import torch.nn.functional as F

from ganlib.cyclegan import CycleGANRun, cyclegan_step
from ganlib.models.pix2pix import PatchDiscriminator, UNetGenerator
from ganlib.models.resnet import ResnetImageGenerator
from ganlib.pix2pix import Pix2PixRun, pix2pix_step
from ganlib.translation import make_task_pairs
from tests.notebook_cells import cell_namespace

PAGE = cell_namespace("05_image_to_image.ipynb", "step")


def _crops(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    crops = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g)
    return F.avg_pool2d(crops.float(), 3, 1, 1).round().byte()  # smoother, like photos


def _assert_same_weights(a, b):
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


def _pix2pix_run(lambda_l1=100.0):
    torch.manual_seed(0)
    G = UNetGenerator(1, 3, width=8, depth=4)  # with dropout: both steps draw the same masks
    D = PatchDiscriminator(4, 8, n_layers=1)
    adam = dict(lr=2e-3, betas=(0.5, 0.999))
    opt_G, opt_D = (
        torch.optim.Adam(G.parameters(), **adam),
        torch.optim.Adam(D.parameters(), **adam),
    )
    return Pix2PixRun(G, D, opt_G, opt_D, steps=4, lambda_l1=lambda_l1)


def test_page_pix2pix_step_equals_ganlib():
    target, source = make_task_pairs(_crops(8), "gray2color")
    for lambda_l1 in (100.0, 0.0):  # L1 + cGAN and the "cGAN only" row
        page, ref = _pix2pix_run(lambda_l1), _pix2pix_run(lambda_l1)
        g0 = copy.deepcopy(ref.G)
        for i in range(4):
            batch = (target[2 * i : 2 * i + 2], source[2 * i : 2 * i + 2])
            torch.manual_seed(100 + i)  # the same dropout masks in both
            page_stats = PAGE["pix2pix_step"](page, batch)
            torch.manual_seed(100 + i)
            ref_stats = pix2pix_step(ref, batch)
            for k in ("loss_D", "loss_G", "loss_l1", "loss_adv", "D_x", "D_G_z"):
                assert torch.equal(page_stats[k], ref_stats[k]), k
        _assert_same_weights(page.G, ref.G)
        _assert_same_weights(page.D, ref.D)
        assert page.opt_G.param_groups[0]["lr"] == ref.opt_G.param_groups[0]["lr"] == 0.0
        assert any(
            not torch.equal(p, q) for p, q in zip(g0.parameters(), ref.G.parameters(), strict=True)
        )


def _cyclegan_run(lambda_identity):
    torch.manual_seed(0)
    nets = [ResnetImageGenerator(3, 3, width=4, n_blocks=1) for _ in range(2)]
    nets += [PatchDiscriminator(3, 4, n_layers=1, norm="instance") for _ in range(2)]
    return CycleGANRun(
        *nets,
        opt_G=torch.optim.Adam(itertools.chain(*(n.parameters() for n in nets[:2])), 2e-3),
        opt_D=torch.optim.Adam(itertools.chain(*(n.parameters() for n in nets[2:])), 2e-3),
        steps=5,
        lambda_identity=lambda_identity,
        pool_size=4,  # full after two steps: the later ones draw from the buffers
    )


def test_page_cyclegan_step_equals_ganlib():
    b_images, _ = make_task_pairs(_crops(10, seed=1), "stylise")
    _, a_images = make_task_pairs(_crops(10, seed=2), "stylise")
    for lambda_identity in (0.5, 0.0):
        page, ref = _cyclegan_run(lambda_identity), _cyclegan_run(lambda_identity)
        for i in range(5):
            batch = (a_images[2 * i : 2 * i + 2], b_images[2 * i : 2 * i + 2])
            page_stats = PAGE["cyclegan_step"](page, batch)
            ref_stats = cyclegan_step(ref, batch)
            for k in ("loss_G", "loss_gan", "loss_D", "score_real", "score_fake"):
                assert torch.equal(page_stats[k], ref_stats[k]), k
        for name in ("G_AB", "G_BA", "D_A", "D_B"):
            _assert_same_weights(getattr(page, name), getattr(ref, name))
        for pool in ("pool_A", "pool_B"):
            a, b = getattr(page, pool).images, getattr(ref, pool).images
            assert len(a) == len(b) == 4 and all(
                torch.equal(x, y) for x, y in zip(a, b, strict=True)
            )
