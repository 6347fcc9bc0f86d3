"""Notebook 02 writes SRGAN's step out on the page: it must train exactly like ganlib.sr.srgan_step."""

import torch

from ganlib.losses import mse_loss
from ganlib.models.sr import SRGANDiscriminator, SRResNet
from ganlib.sr import SRGANRun, srgan_step
from tests.notebook_cells import cell_namespace


def tiny_srgan():
    torch.manual_seed(0)
    G = SRResNet(scale=4, n_blocks=2, width=8)  # has batch norm: both steps must update it alike
    D = SRGANDiscriminator(width=8)
    return SRGANRun(
        G,
        D,
        torch.optim.Adam(G.parameters(), lr=1e-3),
        torch.optim.Adam(D.parameters(), lr=1e-3),
        content_loss=mse_loss,
        adv_weight=1e-3,
    )


def batches(n=3):
    g = torch.Generator().manual_seed(1)
    hr = torch.nn.functional.interpolate(
        torch.rand(n * 4, 3, 4, 4, generator=g) * 2 - 1, size=32, mode="bilinear"
    )
    lr = torch.nn.functional.avg_pool2d(hr, 4)  # (4n, 3, 8, 8)
    return list(zip(hr.split(4), lr.split(4), strict=True))


def state(run):
    return {
        f"{name}.{k}": v.detach().clone()
        for name, net in (("G", run.G), ("D", run.D))
        for k, v in net.state_dict().items()  # weights and batch-norm statistics
    }


def test_notebook_srgan_step_trains_like_ganlibs():
    notebook_step = cell_namespace("02_super_resolution.ipynb", "step")["srgan_step"]
    assert notebook_step is not srgan_step
    ours, reference = tiny_srgan(), tiny_srgan()
    start = state(ours)
    for batch in batches():
        stats = notebook_step(ours, batch)
        expected = srgan_step(reference, batch)
    after, wanted = state(ours), state(reference)
    # Same operations in the same order on the CPU: bit-identical, not merely close.
    for k, v in wanted.items():
        assert torch.equal(after[k], v), k
    assert any(not torch.equal(after[k], start[k]) for k in after if k.startswith("G."))
    assert any(not torch.equal(after[k], start[k]) for k in after if k.startswith("D."))
    for k in ("loss_D", "D_x", "D_G_z", "loss_G", "loss_content", "loss_adv"):
        assert torch.equal(stats[k], expected[k]), k
