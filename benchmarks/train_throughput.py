"""Training throughput and peak memory: ganlib's loop vs a tutorial-style reference loop.

Run from the repository root:

    python -m benchmarks.train_throughput --quick            # about 5 minutes on 2 CPU cores
    python -m benchmarks.train_throughput --models dcgan     # one model, the full profile

For each model (DCGAN-MNIST, the pytorch/examples 64x64 DCGAN on MNIST, SRResNet, SRGAN, pix2pix,
CycleGAN) both loops train the *same* network (same seed, so the same initial weights), the same
batch size and the same data:

- **reference**: the pytorch/examples ``dcgan/main.py`` style the anchor courses use. A
  torchvision-style ``Dataset`` that hands out PIL images through ``transforms`` (``ToTensor``,
  ``Normalize``), a ``DataLoader`` with ``num_workers=2``, ``shuffle=True``, ``pin_memory`` on
  CUDA, labels built with ``torch.full`` every step, ``.item()`` on every loss every step, fp32,
  the default memory format, one fake batch reused for the D and the G step. For pix2pix and
  CycleGAN it follows junyanz's ``optimize_parameters`` (one G forward reused, D frozen during the
  G step), for SRGAN the a-PyTorch-Tutorial-to-Super-Resolution order (G step, then D step).
- **ganlib**: ``ganlib.train.fit(run, step, batches, steps)`` with each model's step
  (``gan_step``, ``supervised_step``, ``srgan_step``, ``pix2pix_step``, ``cyclegan_step``) on
  ``ganlib.data.Batches`` (data resident on the device), one host sync per log window. Variants
  switch one technique at a time (``VARIANTS``).

Throughput: each loop trains ``window`` steps at a time; the loops take turns (rotating order)
for ``rounds`` rounds after a warm-up, so machine noise hits all of them; we report the median
ms/step over the windows. Peak memory: every configuration runs again in a fresh subprocess
(RSS via ``resource.getrusage``; ``torch.cuda.max_memory_allocated`` on a GPU).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

from ganlib.models.dcgan import init_dcgan_weights

# --- Sizes ---------------------------------------------------------------------------------------

# Model sizes per profile. "tiny" is for tests/test_bench.py (seconds); "quick" and "full" use the
# real architectures (quick runs CycleGAN at 128x128 with 6 blocks, the paper's 128 setting).
SIZES = {
    "tiny": {
        "dcgan": dict(batch=8, n_data=64, width=8),
        "dcgan64": dict(batch=4, n_data=32, width=8),
        "srresnet": dict(batch=2, patch=32, n_blocks=2, width=8),
        "srgan": dict(batch=2, patch=32, n_blocks=2, width=8),
        "pix2pix": dict(batch=1, size=32, depth=5, width=8, n_crops=4),
        "cyclegan": dict(batch=1, size=32, n_blocks=2, width=8, n_crops=4),
    },
    "quick": {
        "dcgan": dict(batch=64, n_data=8000, width=64),
        # pytorch/examples dcgan/main.py defaults: --batchSize 64 --imageSize 64 --ngf 64 --ndf 64
        "dcgan64": dict(batch=64, n_data=2000, width=64),
        "srresnet": dict(batch=16, patch=96, n_blocks=16, width=64),
        "srgan": dict(batch=16, patch=96, n_blocks=16, width=64),
        "pix2pix": dict(batch=1, size=256, depth=8, width=64, n_crops=32),
        "cyclegan": dict(batch=1, size=128, n_blocks=6, width=64, n_crops=32),
    },
}
# full = quick with the paper's CycleGAN (256x256, 9 blocks)
SIZES["full"] = {
    **SIZES["quick"],
    "cyclegan": dict(batch=1, size=256, n_blocks=9, width=64, n_crops=32),
}

# Timing schedule per profile and model: (warm-up steps, steps per window, rounds).
SCHEDULE = {
    "tiny": {m: (1, 2, 2) for m in SIZES["tiny"]},
    "quick": {
        "dcgan": (10, 25, 5),
        "dcgan64": (2, 4, 5),
        "srresnet": (1, 2, 3),
        "srgan": (1, 2, 3),
        "pix2pix": (1, 3, 3),
        "cyclegan": (1, 1, 3),
    },
    "full": {
        "dcgan": (20, 50, 9),
        "dcgan64": (4, 8, 7),
        "srresnet": (2, 4, 5),
        "srgan": (2, 4, 5),
        "pix2pix": (2, 8, 5),
        "cyclegan": (1, 2, 5),
    },
}

# One technique changed at a time, on top of ganlib's defaults (the settings notebooks use:
# data on the device, log every 50 steps, ganlib.train.adam (fused on CUDA), fp32 on CPU, and
# the run's own choices: share_fake when n_dis == 1 for GANRun, channels_last where the networks
# prefer it (DCGAN, SRResNet, SRGAN; not the U-Net or CycleGAN generators)).
VARIANTS = {
    "ganlib": {},
    "ganlib, data via DataLoader": {"data": "loader"},
    "ganlib, sync every step": {"log_every": 1},
    # the defaults before share_fake and channels_last were decided (both off)
    "ganlib, previous defaults": {"share_fake": False, "channels_last": False},
    "ganlib, share_fake off": {"share_fake": False},  # two G forwards per iteration
    "ganlib, channels_last off": {"channels_last": False},  # NCHW weights and batches
    "ganlib + channels_last": {"channels_last": True},  # forced on, whatever the preference
    "ganlib + foreach Adam": {"adam": "foreach"},
    "ganlib + fused Adam": {"adam": "fused"},
    "ganlib + torch.compile": {"compile": {}},  # torch.compile's keyword arguments
    "ganlib + torch.compile reduce-overhead": {"compile": {"mode": "reduce-overhead"}},  # GPU
    # dynamo's graph capture without inductor's code generation: compiles in seconds (tests)
    "ganlib + torch.compile aot_eager": {"compile": {"backend": "aot_eager"}},
    "ganlib + share_fake": {"share_fake": True},  # forced on (SRGANRun's default is off)
    "ganlib + bf16 autocast": {"precision": "bf16"},  # GPU only
    "ganlib, fp32": {"precision": "fp32"},  # on CUDA "ganlib" is bf16 (or fp16) autocast
}
# Variants timed per profile; full adds torch.compile for DCGAN and more for the other models.
_DCGAN_CPU = [
    "ganlib",
    "ganlib, previous defaults",
    "ganlib, share_fake off",
    "ganlib, channels_last off",
    "ganlib, data via DataLoader",
    "ganlib, sync every step",
    "ganlib + foreach Adam",
    "ganlib + fused Adam",
]
DEFAULT_VARIANTS = {
    "tiny": ["ganlib", "ganlib, data via DataLoader"],
    "quick": {
        "dcgan": _DCGAN_CPU,
        "dcgan64": ["ganlib", "ganlib + channels_last", "ganlib, data via DataLoader"],
        "srresnet": ["ganlib", "ganlib, channels_last off"],
        "srgan": ["ganlib", "ganlib + share_fake", "ganlib, channels_last off"],
        "other": ["ganlib"],
    },
    "full": {
        "dcgan": [*_DCGAN_CPU, "ganlib + torch.compile"],
        "dcgan64": ["ganlib", "ganlib + channels_last", "ganlib, data via DataLoader"],
        "srresnet": ["ganlib", "ganlib, data via DataLoader", "ganlib, channels_last off"],
        "srgan": ["ganlib", "ganlib, channels_last off", "ganlib + share_fake"],
        "other": ["ganlib", "ganlib, data via DataLoader", "ganlib + channels_last"],
    },
}
MODELS = ("dcgan", "dcgan64", "srresnet", "srgan", "pix2pix", "cyclegan")
LR = 2e-4
BETAS = (0.5, 0.999)


def variants_for(model: str, profile: str, device: torch.device) -> list[str]:
    table = DEFAULT_VARIANTS[profile]
    names = list(table if isinstance(table, list) else table.get(model, table["other"]))
    if device.type == "cuda":
        names += [v for v in ("ganlib, fp32", "ganlib + bf16 autocast") if v not in names]
    return names


# --- Data: the same uint8 tensors for both loops -----------------------------------------------


def load_data(model: str, size: dict, seed: int = 0):
    """uint8 data shared by both loops: digits (N, 1, 28, 28), SR (HR, LR) pairs, or photo crops."""
    if model == "dcgan":
        from ganlib.data import mnist_for_gan

        train, _ = mnist_for_gan("test")  # offline: the test split minus 2000 held-out digits
        return train[: size["n_data"], None]  # (N, 1, 28, 28) uint8
    if model == "dcgan64":  # 28x28 digits: the reference resizes each one, ganlib all at once
        return load_data("dcgan", size, seed)
    if model in ("srresnet", "srgan"):
        from ganlib.data import load_sr_images
        from ganlib.sr import make_sr_pairs

        images = load_sr_images("t91")
        if size["patch"] <= 32:  # tiny: a few images are enough
            images = images[:8]
        return make_sr_pairs(images, 4, progress=False)
    from ganlib.data import photos
    from ganlib.images import random_crops

    images = [im for im in photos(["set14", "set5"]) if min(im.shape[1:]) >= size["size"]]
    return random_crops(images, size["n_crops"], size["size"], seed=seed)


def _adam(params, adam: str = "torch", lr: float = LR, betas=BETAS) -> torch.optim.Adam:
    """Adam with the GAN papers' settings; ``adam`` picks the implementation: ``"torch"``
    (``torch.optim.Adam``'s default, as the reference loops and pytorch/examples use),
    ``"ganlib"`` (:func:`ganlib.train.adam`: fused on CUDA, torch's default elsewhere),
    ``"foreach"`` or ``"fused"``."""
    if adam == "ganlib":
        from ganlib import train

        return train.adam(params, lr=lr, betas=betas)
    kw = {"foreach": True} if adam == "foreach" else {"fused": True} if adam == "fused" else {}
    return torch.optim.Adam(params, lr=lr, betas=betas, **kw)


class ExamplesGenerator(nn.Module):
    """pytorch/examples ``dcgan/main.py``'s generator: five transposed convolutions,
    z (B, nz) -> (B, nc, 64, 64). Same layers and initialisation; ``z_dim`` and a 2-D input so
    ganlib's runs can drive it."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 1):
        super().__init__()
        self.z_dim = nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),  # -> (ngf*8) x 4 x 4
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),  # -> (ngf*4) x 8 x 8
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # -> (ngf*2) x 16 x 16
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),  # -> ngf x 32 x 32
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),  # -> nc x 64 x 64
            nn.Tanh(),
        )
        self.apply(init_dcgan_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z[:, :, None, None])


class ExamplesDiscriminator(nn.Module):
    """pytorch/examples ``dcgan/main.py``'s discriminator, (B, nc, 64, 64) -> (B,), without the
    final sigmoid (both loops use ``BCEWithLogitsLoss``, the stable form of sigmoid + BCELoss)."""

    def __init__(self, ndf: int = 64, nc: int = 1):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),  # -> ndf x 32 x 32
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),  # -> (ndf*2) x 16 x 16
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),  # -> (ndf*4) x 8 x 8
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),  # -> (ndf*8) x 4 x 4
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),  # -> 1 x 1 x 1
        )
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def build_models(model: str, size: dict, seed: int):
    """The networks of ``model``, built right after ``torch.manual_seed(seed)``: both loops start
    from the same weights."""
    from ganlib.models import DCGANDiscriminator, DCGANGenerator
    from ganlib.models.pix2pix import PatchDiscriminator, UNetGenerator
    from ganlib.models.resnet import ResnetImageGenerator
    from ganlib.models.sr import SRGANDiscriminator, SRResNet

    torch.manual_seed(seed)
    w = size["width"]
    if model == "dcgan":
        return [DCGANGenerator(100, w), DCGANDiscriminator(w)]
    if model == "dcgan64":
        return [ExamplesGenerator(100, w), ExamplesDiscriminator(w)]
    if model == "srresnet":
        return [SRResNet(4, size["n_blocks"], w)]
    if model == "srgan":
        return [SRResNet(4, size["n_blocks"], w), SRGANDiscriminator(w)]
    if model == "pix2pix":
        return [UNetGenerator(3, 3, w, size["depth"]), PatchDiscriminator(6, w)]
    return [
        ResnetImageGenerator(3, 3, w, size["n_blocks"]),
        ResnetImageGenerator(3, 3, w, size["n_blocks"]),
        PatchDiscriminator(3, w, norm="instance"),
        PatchDiscriminator(3, w, norm="instance"),
    ]


# --- The reference: torchvision-style datasets behind a DataLoader -----------------------------


class DigitsDataset(torch.utils.data.Dataset):
    """What ``torchvision.datasets.MNIST.__getitem__`` does: uint8 -> PIL image (mode "L") ->
    ``transform``, returning (image, target). Wraps the same uint8 digits ganlib trains on."""

    def __init__(self, images: torch.Tensor, transform):
        self.data, self.transform = images[:, 0], transform  # (N, 28, 28)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.data[i].numpy(), mode="L")), 0


def _pil(x: torch.Tensor):
    from PIL import Image

    return Image.fromarray(x.permute(1, 2, 0).numpy())


def _to_tensor_normalized():
    from torchvision import transforms

    return transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    )


class SRCropDataset(torch.utils.data.Dataset):
    """Tutorial-style SR dataset: per item a random aligned crop (PIL), random flip/rotation, then
    ToTensor + Normalize to [-1, 1]. An epoch has ``epoch_len`` crops (the tutorials' datasets have
    thousands of images; ours are cycled so that workers are not restarted every few steps)."""

    def __init__(self, pairs, scale: int, patch: int, epoch_len: int):
        self.pairs = [(_pil(hr), _pil(lr)) for hr, lr in pairs if min(hr.shape[1:]) >= patch]
        self.scale, self.patch, self.epoch_len = scale, patch, epoch_len
        self.transform = _to_tensor_normalized()

    def __len__(self) -> int:
        return self.epoch_len

    def __getitem__(self, i):
        from PIL import Image

        hr, lr = self.pairs[i % len(self.pairs)]
        lp, s = self.patch // self.scale, self.scale
        x, y = random.randint(0, lr.width - lp), random.randint(0, lr.height - lp)
        lr = lr.crop((x, y, x + lp, y + lp))
        hr = hr.crop((x * s, y * s, (x + lp) * s, (y + lp) * s))
        if random.random() < 0.5:
            hr, lr = (im.transpose(Image.FLIP_LEFT_RIGHT) for im in (hr, lr))
        turn = random.choice([None, Image.ROTATE_90, Image.ROTATE_180, Image.ROTATE_270])
        if turn is not None:
            hr, lr = hr.transpose(turn), lr.transpose(turn)
        return self.transform(hr), self.transform(lr)


class PairDataset(torch.utils.data.Dataset):
    """junyanz-style aligned (pix2pix) or unaligned (CycleGAN) dataset over uint8 crops, as PIL
    images through ToTensor + Normalize. An epoch has ``epoch_len`` items (facades: 400)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, aligned: bool, epoch_len: int):
        self.a, self.b = [_pil(x) for x in a], [_pil(x) for x in b]
        self.aligned, self.epoch_len = aligned, epoch_len
        self.transform = _to_tensor_normalized()

    def __len__(self) -> int:
        return self.epoch_len

    def __getitem__(self, i):
        a = self.a[i % len(self.a)]
        b = self.b[i % len(self.b)] if self.aligned else random.choice(self.b)
        return self.transform(a), self.transform(b)


def reference_loader(model: str, data, size: dict, device: torch.device, workers: int = 2):
    """An endless iterator over epochs of a tutorial-configured DataLoader (workers restart every
    epoch, as in ``dcgan/main.py``, which sets no ``persistent_workers``)."""
    from torchvision import transforms

    from ganlib.translation import stylise

    if model in ("dcgan", "dcgan64"):
        resize = [transforms.Resize(64)] if model == "dcgan64" else []  # main.py's MNIST branch
        tf = transforms.Compose(
            [*resize, transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]
        )
        dataset = DigitsDataset(data, tf)
    elif model in ("srresnet", "srgan"):
        dataset = SRCropDataset(data, 4, size["patch"], epoch_len=100 * size["batch"])
    else:
        # pix2pix: (photo, stylised photo) pairs; CycleGAN: unrelated photos and stylised photos
        dataset = PairDataset(data, stylise(data), model == "pix2pix", epoch_len=400)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=size["batch"],
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )

    def endless():
        for _ in itertools.count():
            yield from loader

    return endless()


# --- Runners: one object per loop, trained `n` steps at a time --------------------------------


@dataclass
class Runner:
    name: str
    modules: list
    train: object  # train(n): n more steps
    losses: object  # losses() -> dict of the last finite-checked losses
    images_per_step: int


def reference_runner(model: str, data, size: dict, seed: int, device, workers: int = 2) -> Runner:
    """The tutorial-style loop (see the module docstring)."""
    if torch.device(device).type == "cuda":  # dcgan/main.py: cudnn.benchmark = True
        torch.backends.cudnn.benchmark = True
    nets = [m.to(device) for m in build_models(model, size, seed)]
    batches = reference_loader(model, data, size, device, workers)
    b = size["batch"]
    last: dict[str, float] = {}
    log: list[str] = []  # main.py prints one such line per step; we keep it instead

    if model in ("dcgan", "dcgan64"):
        netG, netD = nets
        criterion = nn.BCEWithLogitsLoss()  # main.py: sigmoid + BCELoss; ganlib's D returns logits
        optimizerD, optimizerG = _adam(netD.parameters()), _adam(netG.parameters())
        real_label, fake_label = 1.0, 0.0

        def step():
            data = next(batches)
            real_cpu = data[0].to(device)
            batch_size = real_cpu.size(0)
            label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=device)
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            netD.zero_grad()
            output = netD(real_cpu)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = torch.sigmoid(output).mean().item()
            noise = torch.randn(batch_size, netG.z_dim, device=device)
            fake = netG(noise)
            label.fill_(fake_label)
            output = netD(fake.detach())
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = torch.sigmoid(output).mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()
            # (2) Update G network: maximize log(D(G(z)))
            netG.zero_grad()
            label.fill_(real_label)  # fake labels are real for generator cost
            output = netD(fake)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = torch.sigmoid(output).mean().item()
            optimizerG.step()
            last.update(loss_D=errD.item(), loss_G=errG.item())
            log.append(
                f"Loss_D: {last['loss_D']:.4f} D(x): {D_x:.4f} D(G(z)): {D_G_z1:.4f} / {D_G_z2:.4f}"
            )

    elif model == "srresnet":
        (net,) = nets
        criterion = nn.MSELoss()
        optimizer = _adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999))

        def step():
            hr, lr = (t.to(device) for t in next(batches))
            sr = net(lr)
            loss = criterion(sr, hr)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            last.update(loss=loss.item())  # AverageMeter.update(loss.item(), lr.size(0))

    elif model == "srgan":
        G, D = nets
        content, adversarial = nn.MSELoss(), nn.BCEWithLogitsLoss()
        optimizer_g, optimizer_d = _adam(G.parameters()), _adam(D.parameters())

        def step():
            hr, lr = (t.to(device) for t in next(batches))
            # G step: content loss (MSE: VGG weights are not available offline) + 1e-3 adversarial
            sr = G(lr)
            sr_disc = D(sr)
            content_loss = content(sr, hr)
            adv_loss = adversarial(sr_disc, torch.full_like(sr_disc, 1.0))
            perceptual_loss = content_loss + 1e-3 * adv_loss
            optimizer_g.zero_grad()
            perceptual_loss.backward()
            optimizer_g.step()
            # D step on the same SR batch, detached
            hr_disc, sr_disc = D(hr), D(sr.detach())
            ones = torch.full((hr_disc.size(0),), 1.0, device=device)
            zeros = torch.full((sr_disc.size(0),), 0.0, device=device)
            d_loss = adversarial(sr_disc, zeros) + adversarial(hr_disc, ones)
            optimizer_d.zero_grad()
            d_loss.backward()
            optimizer_d.step()
            last.update(loss_G=perceptual_loss.item(), loss_D=d_loss.item())

    elif model == "pix2pix":
        G, D = nets
        gan, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()
        optimizer_G, optimizer_D = _adam(G.parameters()), _adam(D.parameters())

        def step():
            real_A, real_B = (t.to(device) for t in next(batches))  # (source, target)
            fake_B = G(real_A)  # forward(): computed once, reused by both steps
            # backward_D with D trainable
            D.requires_grad_(True)
            optimizer_D.zero_grad()
            pred_fake = D(torch.cat((real_A, fake_B), 1).detach())
            loss_D_fake = gan(pred_fake, torch.full(pred_fake.shape, 0.0, device=device))
            pred_real = D(torch.cat((real_A, real_B), 1))
            loss_D_real = gan(pred_real, torch.full(pred_real.shape, 1.0, device=device))
            loss_D = (loss_D_fake + loss_D_real) * 0.5
            loss_D.backward()
            optimizer_D.step()
            # backward_G with D frozen
            D.requires_grad_(False)
            optimizer_G.zero_grad()
            pred_fake = D(torch.cat((real_A, fake_B), 1))
            loss_G_GAN = gan(pred_fake, torch.full(pred_fake.shape, 1.0, device=device))
            loss_G = loss_G_GAN + 100.0 * l1(fake_B, real_B)
            loss_G.backward()
            optimizer_G.step()
            last.update(loss_D=loss_D.item(), loss_G=loss_G.item())

    else:  # cyclegan
        from ganlib.cyclegan import ImagePool

        G_A, G_B, D_A, D_B = nets
        gan, l1 = nn.MSELoss(), nn.L1Loss()
        optimizer_G = _adam(itertools.chain(G_A.parameters(), G_B.parameters()))
        optimizer_D = _adam(itertools.chain(D_A.parameters(), D_B.parameters()))
        pool_A, pool_B = ImagePool(50, 1), ImagePool(50, 2)

        def target(pred, value):
            return torch.full(pred.shape, value, device=device)

        def step():
            real_A, real_B = (t.to(device) for t in next(batches))
            fake_B = G_A(real_A)
            rec_A = G_B(fake_B)
            fake_A = G_B(real_B)
            rec_B = G_A(fake_A)
            for d in (D_A, D_B):
                d.requires_grad_(False)
            optimizer_G.zero_grad()
            idt_A, idt_B = G_A(real_B), G_B(real_A)
            loss_idt = (l1(idt_A, real_B) + l1(idt_B, real_A)) * 10.0 * 0.5
            pred_A, pred_B = D_A(fake_B), D_B(fake_A)  # junyanz: D_A judges domain B
            loss_gan = gan(pred_A, target(pred_A, 1.0)) + gan(pred_B, target(pred_B, 1.0))
            loss_cycle = (l1(rec_A, real_A) + l1(rec_B, real_B)) * 10.0
            loss_G = loss_gan + loss_cycle + loss_idt
            loss_G.backward()
            optimizer_G.step()
            for d in (D_A, D_B):
                d.requires_grad_(True)
            optimizer_D.zero_grad()
            loss_D = 0.0
            for D_, real, fake in (
                (D_A, real_B, pool_B.query(fake_B)),
                (D_B, real_A, pool_A.query(fake_A)),
            ):
                pred_real, pred_fake = D_(real), D_(fake.detach())
                loss = (
                    gan(pred_real, target(pred_real, 1.0)) + gan(pred_fake, target(pred_fake, 0.0))
                ) * 0.5
                loss.backward()  # backward_D_basic: one backward per discriminator
                loss_D = loss_D + loss.item()
            optimizer_D.step()
            last.update(loss_G=loss_G.item(), loss_D=loss_D)

    def train(n: int) -> None:
        for m in nets:
            m.train()
        for _ in range(n):
            step()

    return Runner("reference", nets, train, lambda: dict(last), b)


class _LoaderBatches:
    """ganlib's loop fed by the reference DataLoader (the 'data via DataLoader' variant)."""

    def __init__(self, it, swap: bool = False):
        self.it, self.swap = it, swap

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.it)
        if self.swap:  # the reference's (source, target) -> pix2pix_step's (target, source)
            batch = (batch[1], batch[0])
        return batch


def ganlib_batches(model, data, size: dict, seed: int, device, data_mode="resident", workers=2):
    """What ganlib's loop trains on: data resident on the device (``Batches``, ``SRPatches``),
    or the reference's DataLoader (``data_mode="loader"``)."""
    from ganlib.data import Batches, ZipBatches
    from ganlib.images import to_model_range
    from ganlib.sr import SRPatches
    from ganlib.translation import make_task_pairs, stylise

    b = size["batch"]
    if data_mode == "loader":
        return _LoaderBatches(
            reference_loader(model, data, size, device, workers), swap=model == "pix2pix"
        )
    if model == "dcgan":
        return Batches(to_model_range(data).to(device), batch_size=b, seed=seed)
    if model == "dcgan64":  # resized once, as Resize(64) does per image (bilinear, antialiased)
        from torchvision.transforms.functional import resize

        big = resize(data, [64, 64], antialias=True)
        return Batches(to_model_range(big).to(device), batch_size=b, seed=seed)
    if model in ("srresnet", "srgan"):
        return SRPatches(data, 4, size["patch"], b, seed=seed, device=device)
    if model == "pix2pix":
        target, source = make_task_pairs(data, "stylise")
        return Batches(target.to(device), source.to(device), batch_size=b, seed=seed)
    a, bb = to_model_range(data).to(device), to_model_range(stylise(data)).to(device)
    return ZipBatches(Batches(a, batch_size=b, seed=seed), Batches(bb, batch_size=b, seed=seed + 1))


def ganlib_runner(
    model: str,
    data,
    size: dict,
    seed: int,
    device,
    *,
    data_mode: str = "resident",
    log_every: int = 50,
    channels_last: bool | None = None,
    adam: str = "ganlib",
    compile: dict | None = None,
    precision: str = "auto",
    share_fake: bool | None = None,
    name: str = "ganlib",
    workers: int = 2,
) -> Runner:
    """ganlib's loop with one configuration of the techniques (see ``VARIANTS``); ``compile``
    holds ``torch.compile``'s keyword arguments (None: eager). ``channels_last`` and
    ``share_fake`` go to the run (None: the run's default); the run converts the networks and
    ``fit`` the batches."""
    from ganlib.cyclegan import CycleGANRun, cyclegan_step
    from ganlib.gan import GANRun, gan_step
    from ganlib.losses import mse_loss
    from ganlib.pix2pix import Pix2PixRun, pix2pix_step
    from ganlib.precision import Precision
    from ganlib.sr import SRGANRun, srgan_step
    from ganlib.train import SupervisedRun, fit, supervised_step

    if share_fake and model not in ("dcgan", "dcgan64", "srgan"):
        raise ValueError(f"share_fake is a GANRun setting; {model} has its own steps.")
    if precision == "bf16" and device.type != "cuda":
        raise ValueError("bf16 autocast is benchmarked on CUDA only; on CPU ganlib trains in fp32.")
    nets = [m.to(device) for m in build_models(model, size, seed)]
    b = size["batch"]

    batches = ganlib_batches(model, data, size, seed, device, data_mode, workers)

    trained = nets if compile is None else [torch.compile(m, **compile) for m in nets]
    opt = [_adam(m.parameters(), adam) for m in nets]
    prec = Precision(device, precision)
    formats = {"channels_last": channels_last}
    total = 10**9  # pix2pix/CycleGAN LR schedules are built for this many steps: flat here
    if model in ("dcgan", "dcgan64"):
        run = GANRun(
            trained[0],
            trained[1],
            opt[0],
            opt[1],
            z_dim=100,
            share_fake=share_fake,
            precision=prec,
            **formats,
        )
        step = gan_step
    elif model == "srresnet":
        run = SupervisedRun(
            trained[0],
            _adam(nets[0].parameters(), adam, 1e-4, (0.9, 0.999)),
            loss="mse",
            precision=prec,
            **formats,
        )
        step = supervised_step
    elif model == "srgan":
        run = SRGANRun(
            trained[0],
            trained[1],
            opt[0],
            opt[1],
            share_fake=share_fake,
            precision=prec,
            content_loss=mse_loss,
            adv_weight=1e-3,
            **formats,
        )
        step = srgan_step
    elif model == "pix2pix":
        run = Pix2PixRun(
            trained[0], trained[1], opt[0], opt[1], steps=total, precision=prec, **formats
        )
        step = pix2pix_step
    else:
        opt_G = _adam(itertools.chain(nets[0].parameters(), nets[1].parameters()), adam)
        opt_D = _adam(itertools.chain(nets[2].parameters(), nets[3].parameters()), adam)
        run = CycleGANRun(*trained, opt_G, opt_D, steps=total, precision=prec, **formats)
        step = cyclegan_step

    def train(n: int) -> None:
        fit(run, step, batches, run.step + n, log_every=log_every, progress=False)

    def losses() -> dict:
        rec = run.history[-1]
        return {k: v for k, v in rec.items() if k.startswith("loss")}

    return Runner(name, nets, train, losses, b)


def make_runner(model, variant, data, size, seed, device, workers=2) -> Runner:
    if variant == "reference":
        return reference_runner(model, data, size, seed, device, workers)
    opts = dict(VARIANTS[variant])
    data_mode = opts.pop("data", "resident")
    return ganlib_runner(
        model, data, size, seed, device, data_mode=data_mode, name=variant, workers=workers, **opts
    )


# --- Measurement --------------------------------------------------------------------------------


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def snapshot(modules) -> list[torch.Tensor]:
    return [p.detach().clone() for m in modules for p in m.parameters()]


def changed(before, modules) -> bool:
    after = [p.detach() for m in modules for p in m.parameters()]
    return all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def bench_model(
    model,
    profile="quick",
    variants=None,
    device="cpu",
    seed=0,
    workers=2,
    log=print,
    size=None,
    schedule=None,
) -> dict:
    """Interleaved timing of the reference and ganlib's variants on one model; returns a dict
    with one row per loop (ms/step median and spread, images/s, ratio to the reference, compile
    time, losses, whether every parameter tensor changed). ``size`` and ``schedule`` (warm-up,
    window, rounds) replace the profile's."""
    device = torch.device(device)
    size = size or SIZES[profile][model]
    warm, window, rounds = schedule or SCHEDULE[profile][model]
    variants = variants or variants_for(model, profile, device)
    data = load_data(model, size, seed)
    names = ["reference"] + [v for v in variants if v != "reference"]
    runners, setup = {}, {}
    for name in names:
        t0 = time.perf_counter()
        runners[name] = make_runner(model, name, data, size, seed, device, workers)
        setup[name] = time.perf_counter() - t0
    rows = {}
    for name, r in runners.items():
        before = snapshot(r.modules)
        t0 = time.perf_counter()
        r.train(warm)  # includes torch.compile's compilation and the DataLoader's first workers
        _sync(device)
        rows[name] = {
            "warmup_s": time.perf_counter() - t0,
            "warmup_steps": warm,
            "params_changed": changed(before, r.modules),
            "ms": [],
        }
    for k in range(rounds):
        order = names[k % len(names) :] + names[: k % len(names)]  # rotate who goes first
        for name in order:
            _sync(device)
            t0 = time.perf_counter()
            runners[name].train(window)
            _sync(device)
            rows[name]["ms"].append(1000 * (time.perf_counter() - t0) / window)
        log(
            f"  {model} round {k + 1}/{rounds}: "
            + ", ".join(f"{n} {rows[n]['ms'][-1]:.1f}" for n in names)
        )
    ref = statistics.median(rows["reference"]["ms"])
    for name, row in rows.items():
        med = statistics.median(row["ms"])
        losses = runners[name].losses()
        row.update(
            ms_per_step=med,
            ms_mean=statistics.mean(row["ms"]),  # includes the reference's worker restarts
            ms_min=min(row["ms"]),
            ms_max=max(row["ms"]),
            images_per_s=runners[name].images_per_step * 1000 / med,
            speedup=ref / med,
            losses=losses,
            losses_finite=all(map(lambda v: v == v and abs(v) != float("inf"), losses.values())),
        )
        if "compile" in name:
            # compile time = the warm-up's excess over the same number of steady steps
            row["compile_s"] = row["warmup_s"] - warm * med / 1000
    del runners
    return {
        "model": model,
        "profile": profile,
        "size": size,
        "schedule": {"warmup": warm, "window": window, "rounds": rounds},
        "device": str(device),
        "rows": rows,
    }


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: Linux carries that over from
    the parent through fork + exec, so a subprocess would report its parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory(model, variant, profile, device="cpu", steps=2, seed=0, workers=2) -> dict:
    """Peak memory of one configuration, measured in this (fresh) process."""
    device = torch.device(device)
    size = SIZES[profile][model]
    data = load_data(model, size, seed)
    runner = make_runner(model, variant, data, size, seed, device, workers)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    runner.train(steps)
    del runner  # shuts the DataLoader workers down, so their peak RSS is in RUSAGE_CHILDREN
    import gc

    gc.collect()
    out = {
        "rss_mib": peak_rss_mib(),
        # the largest worker's peak; forked workers share most of these pages with the main
        # process (copy-on-write), so main + worker overstates the total
        "worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def peak_memory_subprocess(model, variant, profile, device="cpu", steps=2, workers=2) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.train_throughput",
        "--memory-probe",
        model,
        variant,
        "--profile",
        profile,
        "--device",
        str(device),
        "--steps",
        str(steps),
        "--workers",
        str(workers),
    ]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"memory probe {model}/{variant} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def environment(device) -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
    return env


def format_table(result: dict, memory: dict | None = None) -> str:
    r = result
    lines = [
        f"### {r['model']} ({r['profile']}: {r['size']}; warm-up {r['schedule']['warmup']} steps, "
        f"{r['schedule']['rounds']} windows of {r['schedule']['window']} steps)",
        "",
        "| loop | ms/step (median) | min-max | mean | images/s | vs reference | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in r["rows"].items():
        mem = (memory or {}).get(name)
        m = "" if mem is None else f"{mem['rss_mib']:.0f}"  # main process; see RESULTS.md
        if mem and "cuda_max_allocated_mib" in mem:
            m += f" (CUDA {mem['cuda_max_allocated_mib']:.0f})"
        extra = f" (compile {row['compile_s']:.1f} s)" if "compile_s" in row else ""
        lines.append(
            f"| {name}{extra} | {row['ms_per_step']:.1f} | {row['ms_min']:.1f}-{row['ms_max']:.1f} | "
            f"{row['ms_mean']:.1f} | "
            f"{row['images_per_s']:.1f} | {row['speedup']:.2f}x | {m} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="the short profile (about 5 min on 2 cores)"
    )
    p.add_argument("--profile", choices=sorted(SIZES), default=None)
    p.add_argument("--models", nargs="+", choices=MODELS, default=None)
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (reference)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--memory-probe", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    profile = args.profile or ("quick" if args.quick else "full")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.memory_probe:
        model, variant = args.memory_probe
        print(
            json.dumps(
                peak_memory(model, variant, profile, args.device, args.steps, workers=args.workers)
            )
        )
        return 0
    models = args.models or list(MODELS)
    device = torch.device(args.device)
    env = environment(device)
    print(json.dumps(env))
    results = []
    for model in models:
        t0 = time.perf_counter()
        res = bench_model(model, profile, args.variants, device, workers=args.workers)
        memory = {}
        if not args.no_memory:
            for name in res["rows"]:
                if "compile" in name:
                    continue  # compile's memory is its own story; not probed
                memory[name] = peak_memory_subprocess(
                    model, name, profile, device, workers=args.workers
                )
        res["memory"] = memory
        res["wall_s"] = time.perf_counter() - t0
        results.append(res)
        print(format_table(res, memory), flush=True)
        print(f"({model}: {res['wall_s']:.0f} s)\n", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "results": results}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
