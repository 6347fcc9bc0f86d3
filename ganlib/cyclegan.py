"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation (notebook 05).

One iteration, :func:`cyclegan_step`, on a batch ``(a, b)`` of *unrelated* images in [-1, 1]:

1. :func:`cyclegan_g_step` updates both generators on the LSGAN, cycle (lambda = 10) and
   identity (0.5 lambda) losses;
2. :func:`cyclegan_d_step` updates both discriminators on real images and on the fakes of step 1,
   drawn through the 50-image history buffers (:class:`ImagePool`);
3. both learning rates follow :func:`ganlib.pix2pix.linear_decay`.

Code (vs. paper): G_AB (G), G_BA (F), D_B (D_Y), D_A (D_X). The discriminators return raw scores
for the least-squares loss (no sigmoid), logged as ``score_real``/``score_fake``. Train with
``ganlib.train.fit(run, cyclegan_step, ZipBatches(a_batches, b_batches), run.steps)``.
"""

from __future__ import annotations

import itertools
import resource
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ganlib.losses import (
    cycle_consistency_loss,
    d_loss_lsgan,
    discriminator_outputs,
    g_loss_lsgan,
    l1_loss,
)
from ganlib.models.pix2pix import PatchDiscriminator
from ganlib.models.resnet import ResnetImageGenerator
from ganlib.pix2pix import linear_decay
from ganlib.precision import Precision
from ganlib.train import RunState, adam, frozen
from ganlib.translation import translate


class ImagePool:
    """The history of generated images that CycleGAN's discriminators see (Shrivastava et al. 2017).

    Until ``size`` images are stored, every image is stored and returned as it is. After that, each
    image is, with probability 1/2, returned as it is; otherwise a random stored image is returned
    in its place and the new one takes its slot. D thus also sees older fakes, which damps
    oscillations between D and G. ``size = 0`` disables the pool.

    Args:
        size (int): Images kept. Default: 50 (the paper).
        seed (int): Seed of the pool's own random generator (saved in checkpoints). Default: 0.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        if size < 0:
            raise ValueError(f"ImagePool size must be >= 0, got {size}.")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) for D, of the same shape: current ones or stored older ones."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=self.generator)) < 0.5:
                out.append(image)  # the current image
            else:
                i = int(torch.randint(self.size, (1,), generator=self.generator))
                out.append(self.images[i].clone())  # an older fake
                self.images[i] = image.clone()
        return torch.cat(out)

    def state_dict(self) -> dict:
        images = torch.cat(self.images) if self.images else torch.empty(0)
        return {"size": self.size, "images": images, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.size = state["size"]
        self.images = (
            [im[None].clone() for im in state["images"]] if state["images"].numel() else []
        )
        self.generator.set_state(state["generator"])


@dataclass
class CycleGANRun(RunState):
    """A CycleGAN run: two generators, two discriminators, their optimizers and history buffers.

    Args:
        G_AB, G_BA: Generators A -> B (the paper's G) and B -> A (F).
        D_A, D_B: Discriminators of domain A (D_X) and domain B (D_Y), returning raw scores for
            the least-squares loss.
        opt_G, opt_D: One Adam over both generators, one over both discriminators (as the
            reference code).
        steps: Total steps; the LR decays linearly to 0 over the second half. Pass the same
            number to ``fit``.
        lambda_cycle (float): Weight of the cycle loss. Default: 10.
        lambda_identity (float): Weight of the identity loss relative to ``lambda_cycle``.
            Default: 0.5.
        pool_size (int): History buffer size per domain. Default: 50.
        config: Plain settings checked on resume.
        precision: Mixed precision; default fp32 on CPU, bf16/fp16 on CUDA.
        channels_last (bool | None): channels_last (NHWC) weights and batches. Default: None,
            the networks' preference, False for the ResNet generator (measured 0.98x on CPU:
            reflection padding and instance norm convert back and forth); recorded in ``config``.
    """

    G_AB: nn.Module
    G_BA: nn.Module
    D_A: nn.Module
    D_B: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    steps: int
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    config: dict = field(default_factory=dict)
    precision: Precision | None = None
    channels_last: bool | None = None
    step: int = 0
    history: list[dict] = field(default_factory=list)

    _settings = ("steps", "lambda_cycle", "lambda_identity", "pool_size")

    def __post_init__(self):
        self.pool_A, self.pool_B = ImagePool(self.pool_size, 1), ImagePool(self.pool_size, 2)
        self.sched_G = linear_decay(self.opt_G, self.steps)
        self.sched_D = linear_decay(self.opt_D, self.steps)
        self._record_settings()

    def sample(self, a: torch.Tensor) -> torch.Tensor:
        """G_AB(a) in eval mode, in [-1, 1]."""
        return translate(self.G_AB, a)

    def _parts(self) -> dict:
        return {
            "G_AB": self.G_AB,
            "G_BA": self.G_BA,
            "D_A": self.D_A,
            "D_B": self.D_B,
            "opt_G": self.opt_G,
            "opt_D": self.opt_D,
            "sched_G": self.sched_G,
            "sched_D": self.sched_D,
            "pool_A": self.pool_A,
            "pool_B": self.pool_B,
        }


def cyclegan_g_loss(
    G: nn.Module,
    F: nn.Module,
    D_A: nn.Module,
    D_B: nn.Module,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    lambda_cycle: float = 10.0,
    lambda_identity: float = 0.5,
) -> torch.Tensor:
    """CycleGAN's total generator loss, the quantity :func:`cyclegan_g_step` minimises.

    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda L_cyc + lambda_id lambda L_idt, see
    :func:`cyclegan_g_step` for the terms. G: A -> B, F: B -> A; D_A, D_B return raw scores.
    """
    fake_b, fake_a = G(real_a), F(real_b)
    # L_GAN = E[(D_B(G(a)) - 1)^2] + E[(D_A(F(b)) - 1)^2]
    loss = g_loss_lsgan(D_B(fake_b).float()) + g_loss_lsgan(D_A(fake_a).float())
    # L_cyc = E||F(G(a)) - a||_1 + E||G(F(b)) - b||_1
    loss_cyc = cycle_consistency_loss(real_a, F(fake_b).float())
    loss_cyc = loss_cyc + cycle_consistency_loss(real_b, G(fake_a).float())
    loss = loss + lambda_cycle * loss_cyc
    if lambda_identity:
        # L_idt = E||G(b) - b||_1 + E||F(a) - a||_1
        loss_idt = l1_loss(G(real_b).float(), real_b) + l1_loss(F(real_a).float(), real_a)
        loss = loss + lambda_identity * lambda_cycle * loss_idt
    return loss


def cyclegan_g_step(
    run: CycleGANRun, real_a: torch.Tensor, real_b: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """(1) Update both generators; returns the stats and the (detached) fakes F(b), G(a) for D.

    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda L_cyc + lambda_id lambda L_idt with
    L_GAN(G, D_B) = E_a[(D_B(G(a)) - 1)^2] (least squares),
    L_cyc = E_a ||F(G(a)) - a||_1 + E_b ||G(F(b)) - b||_1,
    L_idt = E_b ||G(b) - b||_1 + E_a ||F(a) - a||_1.
    """
    G, F = run.G_AB, run.G_BA
    # gradients flow through both discriminators to the generators, not into them
    with frozen(run.D_A, run.D_B), run.precision.autocast():
        fake_b, fake_a = G(real_a), F(real_b)  # G(a) in B, F(b) in A
        rec_a, rec_b = F(fake_b), G(fake_a)  # the round trips
        # L_GAN = E[(D_B(G(a)) - 1)^2] + E[(D_A(F(b)) - 1)^2]
        loss_gan = g_loss_lsgan(run.D_B(fake_b).float()) + g_loss_lsgan(run.D_A(fake_a).float())
        # L_cyc = E||F(G(a)) - a||_1 + E||G(F(b)) - b||_1
        loss_cyc = cycle_consistency_loss(real_a, rec_a.float()) + cycle_consistency_loss(
            real_b, rec_b.float()
        )
        loss_G = loss_gan + run.lambda_cycle * loss_cyc
        stats = {"loss_gan": loss_gan.detach(), "loss_cycle": loss_cyc.detach()}
        if run.lambda_identity:
            # L_idt = E||G(b) - b||_1 + E||F(a) - a||_1: G should leave B images alone
            loss_idt = l1_loss(G(real_b).float(), real_b) + l1_loss(F(real_a).float(), real_a)
            loss_G = loss_G + run.lambda_identity * run.lambda_cycle * loss_idt
            stats["loss_identity"] = loss_idt.detach()
    run.precision.update(loss_G, run.opt_G, "G")
    return {"loss_G": loss_G.detach(), **stats}, fake_a.detach(), fake_b.detach()


def cyclegan_d_step(
    run: CycleGANRun,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    fake_a: torch.Tensor,
    fake_b: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """(2) Update both discriminators on real images and fakes drawn through the history buffers.

    L_D_B = 1/2 (E_b[(D_B(b) - 1)^2] + E[D_B(G(a))^2]), and L_D_A alike. Reports D_B's mean raw
    scores (near 1 = "real", near 0 = "fake") as ``score_real`` and ``score_fake``.
    """
    fake_b, fake_a = run.pool_B.query(fake_b), run.pool_A.query(fake_a)
    with run.precision.autocast():
        out_real_b, out_fake_b = run.D_B(real_b), run.D_B(fake_b)
        out_real_a, out_fake_a = run.D_A(real_a), run.D_A(fake_a)
        # L_D = 1/2 (E[(D(real) - 1)^2] + E[D(fake)^2]), for D_B and D_A
        loss_D_B = d_loss_lsgan(out_real_b.float(), out_fake_b.float())
        loss_D_A = d_loss_lsgan(out_real_a.float(), out_fake_a.float())
    loss_D = loss_D_A + loss_D_B
    run.precision.update(loss_D, run.opt_D, "D")
    return {"loss_D": loss_D.detach(), **discriminator_outputs("lsgan", out_real_b, out_fake_b)}


def cyclegan_step(run: CycleGANRun, batch) -> dict[str, torch.Tensor]:
    """One CycleGAN iteration on ``batch = (a, b)``: G and F, then D_A and D_B, then the LR
    schedules."""
    real_a, real_b = batch
    # G before D, as the reference code (junyanz's optimize_parameters): the generators run once
    # per iteration, and D's step reuses the fakes of G's step (detached, through the buffers).
    stats, fake_a, fake_b = cyclegan_g_step(run, real_a, real_b)  # (1) G and F
    stats |= cyclegan_d_step(run, real_a, real_b, fake_a, fake_b)  # (2) D_A and D_B
    run.sched_G.step()
    run.sched_D.step()
    return stats


# --- Memory -----------------------------------------------------------------------------------


def cyclegan_memory_probe(
    size: int,
    width: int = 64,
    n_blocks: int = 9,
    steps: int = 2,
    device: str = "cpu",
    precision: str = "fp32",
) -> dict:
    """Peak memory of CycleGAN training steps at ``size`` x ``size``, batch 1.

    Builds the full CycleGAN (two ResNet generators, two 70x70 PatchGANs with instance norm, Adam)
    and takes ``steps`` steps. On CPU it reports the process's peak resident memory (RSS,
    ``VmHWM`` on Linux): run it in a fresh process, since the peak RSS of a process never goes
    down. On CUDA it reports ``torch.cuda.max_memory_allocated`` (tensors) and
    ``max_memory_reserved`` (the allocator's cache) during the steps.

    Args:
        precision (str): The run's precision mode (``"fp32"``, ``"bf16"``, ``"fp16"``,
            ``"auto"``). Default: ``"fp32"``, the case of notebook 05's estimate.

    Returns:
        ``size``, ``params`` and, in MiB: ``base_mib`` (before building), ``peak_mib``, and
        ``training_mib`` = peak - base; on CUDA also ``reserved_mib``.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"

    def peak_mib() -> float:
        if cuda:
            return torch.cuda.max_memory_allocated(dev) / 2**20
        # VmHWM: this address space's peak RSS. ru_maxrss would do elsewhere, but Linux carries it
        # over from the parent across fork + exec, so a child of a big process reports the parent's.
        status = Path("/proc/self/status")
        if status.is_file():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB -> MiB
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux/BSD: KiB

    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    base = peak_mib()
    torch.manual_seed(0)
    nets = [ResnetImageGenerator(3, 3, width, n_blocks).to(dev) for _ in range(2)]
    nets += [PatchDiscriminator(3, width, 3, norm="instance").to(dev) for _ in range(2)]
    run = CycleGANRun(
        *nets,
        opt_G=adam(itertools.chain(*(n.parameters() for n in nets[:2])), 2e-4),
        opt_D=adam(itertools.chain(*(n.parameters() for n in nets[2:])), 2e-4),
        steps=steps,
        precision=Precision(dev, precision),
    )
    a = torch.rand(1, 3, size, size, device=dev) * 2 - 1
    b = torch.rand(1, 3, size, size, device=dev) * 2 - 1
    for _ in range(steps):
        cyclegan_step(run, (a, b))
    peak = peak_mib()
    out = {
        "size": size,
        "device": dev.type,
        "base_mib": base,
        "peak_mib": peak,
        "training_mib": peak - base,
        "params": sum(p.numel() for n in nets for p in n.parameters()),
    }
    if cuda:
        out["reserved_mib"] = torch.cuda.max_memory_reserved(dev) / 2**20
    return out


def activation_elements(model: nn.Module, x: torch.Tensor) -> int:
    """Number of output elements of every leaf module in one forward pass: a rough count of the
    activations autograd keeps for the backward pass."""
    total = 0

    def hook(_, __, out):
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total
