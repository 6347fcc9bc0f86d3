"""Train one of the course's pretrained models and ship it: ``ganlib/weights/NAME.pt`` + card.

    python scripts/pretrain.py NAME [--minutes M] [--device D]

NAME is one of ``ganlib.pretrained.PRETRAINED``. Training is reproducible (fixed seed, the
course's own offline data and ``fit`` loop) and resumable: a checkpoint is written to
``data/pretrain/NAME/`` every few hundred steps, and running the same command again continues
from it. ``--minutes`` stops training after that many minutes (rerun to continue); only a run
that reaches its planned steps is exported. Export writes the weights in half precision, evaluates
the saved file, and writes the model card ``NAME.json`` and the file's SHA-256 into
``ganlib/weights/SHA256SUMS``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ganlib import pretrained
from ganlib.checkpoint import save_checkpoint
from ganlib.env import pick_device, seed_everything
from ganlib.fetch import data_root
from ganlib.pretrained import PRETRAINED, load_pretrained, model_card, sha256
from ganlib.train import adam, fit

SEED = 0
CHUNK = 500  # steps between checkpoints and --minutes checks


@dataclass
class Job:
    """What a model's trainer hands back: the run to drive, its step, batches and plan."""

    run: object
    step: object
    batches: object
    steps: int
    data: str  # the training data, in words
    recipe: dict  # the settings a reader needs to repeat it


# --- The models ----------------------------------------------------------------------------------


def srresnet_x4(device: torch.device) -> Job:
    from ganlib.data import load_sr_images
    from ganlib.models.sr import SRResNet
    from ganlib.precision import Precision
    from ganlib.sr import SRPatches, make_sr_pairs
    from ganlib.train import SupervisedRun, supervised_step

    steps, lr = 14000, 2e-4
    kwargs = {"scale": 4, "n_blocks": 16, "width": 64, "batch_norm": False}
    model = SRResNet(**kwargs).to(device, memory_format=torch.channels_last)
    opt = adam(model.parameters(), lr=lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr / 100)
    pairs = make_sr_pairs(load_sr_images("t91") + load_sr_images("bsd200"), 4)
    patches = SRPatches(pairs, 4, patch=64, batch_size=16, seed=SEED)
    recipe = {
        "model": "srresnet",
        "kwargs": kwargs,
        "loss": "l1",
        "optimizer": "Adam(lr=2e-4, betas=(0.9, 0.99)), cosine decay to 2e-6",
        "batch": "16 HR patches of 64x64 (LR 16x16), random flips and 90-degree turns",
        "precision": "bf16 autocast, channels_last",
    }
    run = SupervisedRun(
        model,
        opt,
        loss="l1",
        config=dict(recipe),
        precision=Precision(device, "bf16"),
        scheduler=sched,
    )
    return Job(
        run, supervised_step, patches, steps, "T91 + BSD200 (291 images), x4 bicubic LR", recipe
    )


def srgan_x4(device: torch.device) -> Job:
    from ganlib.data import load_sr_images
    from ganlib.losses import mse_loss
    from ganlib.models.sr import SRGANDiscriminator
    from ganlib.precision import Precision
    from ganlib.sr import SRGANRun, SRPatches, make_sr_pairs, srgan_step

    steps, lr = 2000, 1e-4
    G = load_pretrained("srresnet_x4", device).train().to(memory_format=torch.channels_last)
    D = SRGANDiscriminator(width=32).to(device, memory_format=torch.channels_last)
    pairs = make_sr_pairs(load_sr_images("t91") + load_sr_images("bsd200"), 4)
    patches = SRPatches(pairs, 4, patch=64, batch_size=16, seed=SEED)
    recipe = {
        "model": "srresnet",
        "kwargs": model_card("srresnet_x4")["recipe"]["kwargs"],
        "start": "the weights of srresnet_x4",
        "loss": "SRGAN-MSE: pixel MSE + 1e-3 * non-saturating adversarial loss",
        "discriminator": "SRGANDiscriminator(width=32)",
        "optimizer": "Adam(lr=1e-4, betas=(0.9, 0.999)) for G and D",
        "batch": "16 HR patches of 64x64 (LR 16x16), random flips and 90-degree turns",
        "precision": "bf16 autocast, channels_last",
    }
    run = SRGANRun(
        G,
        D,
        adam(G.parameters(), lr=lr, betas=(0.9, 0.999)),
        adam(D.parameters(), lr=lr, betas=(0.9, 0.999)),
        content_loss=mse_loss,
        adv_weight=1e-3,
        config={k: str(v) for k, v in recipe.items()},
        precision=Precision(device, "bf16"),
    )
    return Job(run, srgan_step, patches, steps, "T91 + BSD200 (291 images), x4 bicubic LR", recipe)


def _evaluate_sr(name: str) -> dict:
    from ganlib.data import load_sr_images
    from ganlib.sr import evaluate_sr, model_upscaler

    model = load_pretrained(name)
    figures = {}
    for dataset in ("set5", "set14"):
        rows = evaluate_sr(model_upscaler(model), load_sr_images(dataset), 4)
        for key in ("psnr", "ssim", "hf_ratio"):
            figures[f"{dataset}_{key}"] = round(sum(r[key] for r in rows) / len(rows), 4)
    return figures


def _half(module: torch.nn.Module) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in module.state_dict().items()}


def _export_sr(job: Job, path: Path) -> None:
    model = job.run.model if hasattr(job.run, "model") else job.run.G
    state = {"kind": "sr-model", "model": "srresnet", "kwargs": job.recipe["kwargs"]}
    save_checkpoint(path, {**state, "G": _half(model), "meta": {"pretrained": path.stem}})


def cgan_digits(device: torch.device) -> Job:
    from ganlib.augment import POOL
    from ganlib.conditional import ConditionalGANRun, conditional_gan_step
    from ganlib.data import Batches, load_mnist
    from ganlib.images import to_model_range
    from ganlib.models.conditional import ConditionalDiscriminator, ConditionalGenerator

    steps, lr, batch = 6000, 2e-4, 64
    kwargs = {"z_dim": 64, "width": 64}
    G = ConditionalGenerator(**kwargs).to(device)
    D = ConditionalDiscriminator(width=64).to(device)
    x, y = load_mnist("test")
    recipe = {
        "model": "conditional_generator",
        "kwargs": kwargs,
        "discriminator": "ConditionalDiscriminator(width=64), projection",
        "loss": "non-saturating GAN loss (BCE), DiffAugment translation of 2 px",
        "optimizer": "Adam(lr=2e-4, betas=(0.5, 0.999)) for G and D",
        "batch": f"{batch} labelled digits",
        "precision": "fp32",
    }
    run = ConditionalGANRun(
        G,
        D,
        adam(G.parameters(), lr=lr, betas=(0.5, 0.999)),
        adam(D.parameters(), lr=lr, betas=(0.5, 0.999)),
        shift=2,
        config={k: str(v) for k, v in recipe.items()},
    )
    images = to_model_range(x[:POOL, None])  # (8000, 1, 28, 28) in [-1, 1]
    batches = Batches(images, y[:POOL], batch_size=batch, seed=SEED)
    data = f"the first {POOL} digits of the MNIST test split, with labels (lesson 03's pool)"
    return Job(run, conditional_gan_step, batches, steps, data, recipe)


def _export_generator(job: Job, path: Path) -> None:
    state = {"kind": "pretrained", "model": job.recipe["model"], "kwargs": job.recipe["kwargs"]}
    save_checkpoint(path, {**state, "G": _half(job.run.G)})


def _evaluate_cgan(name: str) -> dict:
    from ganlib.augment import POOL
    from ganlib.conditional import sample_digits
    from ganlib.data import load_mnist
    from ganlib.fid import class_accuracy, fid
    from ganlib.images import to_model_range

    G = load_pretrained(name)
    labels = torch.arange(10).repeat_interleave(200)
    samples = sample_digits(G, labels, seed=1000)  # (2000, 1, 28, 28)
    x, _ = load_mnist("test")
    heldout = to_model_range(x[POOL:, None])  # the 2000 digits no model of the course trains on
    return {
        "class_accuracy": round(class_accuracy(samples, labels), 4),
        "digit_fid": round(fid(heldout, samples, features="digits"), 2),
        "samples": len(samples),
        "sample_seed": 1000,
    }


COLOUR_CROP = 64  # the side of lesson 05's quick crops; the U-Net takes multiples of 64


def _colour_photos(names: list[str]) -> list[torch.Tensor]:
    from ganlib.data import photos
    from ganlib.translation import is_grayscale

    kept = [p for p in photos(names) if not is_grayscale(p) and min(p.shape[1:]) >= COLOUR_CROP]
    return kept


def pix2pix_colour(device: torch.device) -> Job:
    from ganlib.data import Batches
    from ganlib.images import random_crops, to_model_range
    from ganlib.models.pix2pix import PatchDiscriminator, UNetGenerator
    from ganlib.pix2pix import Pix2PixRun, pix2pix_step
    from ganlib.precision import Precision
    from ganlib.translation import make_task_pairs

    steps, lr, batch, n_train = 3000, 2e-4, 16, 12000
    kwargs = {"in_ch": 1, "out_ch": 3, "width": 32, "depth": 6}
    G = UNetGenerator(**kwargs).to(device)
    D = PatchDiscriminator(in_ch=4, width=32, n_layers=3).to(device)
    crops = random_crops(_colour_photos(["t91", "bsd200"]), n_train, COLOUR_CROP, seed=SEED)
    targets, sources = make_task_pairs(crops, "gray2color", uint8=True)
    recipe = {
        "model": "unet",
        "kwargs": kwargs,
        "task": "gray2color: luma in, RGB out",
        "discriminator": "PatchDiscriminator(in_ch=4, width=32, n_layers=3): 70x70-style patches",
        "loss": "pix2pix: conditional GAN (BCE) + 100 * L1",
        "optimizer": "Adam(lr=2e-4, betas=(0.5, 0.999)) for G and D, linear decay over the second half",
        "batch": f"{batch} random {COLOUR_CROP}x{COLOUR_CROP} crops of {n_train} (flipped)",
        "precision": "bf16 autocast",
    }
    hyper = {"lr": lr, "betas": (0.5, 0.999)}
    run = Pix2PixRun(
        G,
        D,
        adam(G.parameters(), **hyper),
        adam(D.parameters(), **hyper),
        steps=steps,
        config={k: str(v) for k, v in recipe.items()},
        precision=Precision(device, "bf16"),
    )
    batches = Batches(targets, sources, batch_size=batch, seed=SEED, transform=to_model_range)
    data = (
        f"{n_train} random {COLOUR_CROP}x{COLOUR_CROP} crops of the colour photos of T91 + BSD200"
    )
    return Job(run, pix2pix_step, batches, steps, data, recipe)


def _evaluate_colour(name: str) -> dict:
    from ganlib.translation import (
        as_rgb,
        colourfulness,
        grid_crops,
        make_task_pairs,
        translate,
        translation_scores,
    )

    crops = grid_crops(_colour_photos(["set5", "set14"]), COLOUR_CROP, per_image=4)
    target, source = make_task_pairs(crops, "gray2color")
    fake = translate(load_pretrained(name), source)
    scores = translation_scores(fake, target)
    gray = translation_scores(as_rgb(source), target)
    return {
        "test": f"{len(crops)} {COLOUR_CROP}x{COLOUR_CROP} grid crops of Set5 + Set14 (4 per image)",
        "psnr": round(scores["psnr"], 4),
        "l1": round(scores["l1"], 5),
        "colour": round(float(colourfulness(fake).mean() / colourfulness(target).mean()), 4),
        "input_psnr": round(gray["psnr"], 4),
    }


TRAINERS = {
    "srresnet_x4": (srresnet_x4, _export_sr, _evaluate_sr),
    "srgan_x4": (srgan_x4, _export_sr, _evaluate_sr),
    "cgan_digits": (cgan_digits, _export_generator, _evaluate_cgan),
    "pix2pix_colour": (pix2pix_colour, _export_generator, _evaluate_colour),
}


# --- Export --------------------------------------------------------------------------------------


def _write_manifest(name: str, digest: str) -> None:
    manifest = pretrained.WEIGHTS_DIR / pretrained.MANIFEST
    lines = [
        ln
        for ln in (manifest.read_text().splitlines() if manifest.is_file() else [])
        if ln.strip() and not ln.split()[-1].lstrip("*") == f"{name}.pt"
    ]
    lines.append(f"{digest}  {name}.pt")
    manifest.write_text("\n".join(sorted(lines, key=lambda ln: ln.split()[-1])) + "\n")


def export(name: str, job: Job, seconds: float, device: torch.device, command: str) -> dict:
    _, save, evaluate = TRAINERS[name]
    path = pretrained.WEIGHTS_DIR / f"{name}.pt"
    save(job, path)
    _write_manifest(name, sha256(path))
    card = {
        "name": name,
        "what": PRETRAINED[name],
        "data": job.data,
        "steps": job.run.step,
        "train_seconds": round(seconds),
        "device": f"{device.type}: {_device_name(device)}",
        "command": command,
        "seed": SEED,
        "recipe": job.recipe,
        "torch": torch.__version__,
        "file_mb": round(path.stat().st_size / 2**20, 2),
        "figures": evaluate(name),
    }
    (pretrained.WEIGHTS_DIR / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(TRAINERS))
    parser.add_argument(
        "--minutes", type=float, default=None, help="stop after this long; rerun to continue"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--steps", type=int, default=None, help="override the planned steps (tests)"
    )
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    seed_everything(SEED)
    device = pick_device(args.device)
    job = TRAINERS[args.name][0](device)
    if args.steps is not None:
        job.steps = args.steps
    ckpt_dir = args.checkpoint_dir or data_root() / "pretrain" / args.name
    seconds_file = ckpt_dir / "train_seconds.json"
    spent = json.loads(seconds_file.read_text())["seconds"] if seconds_file.is_file() else 0.0
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else float("inf")
    # Zero steps with resume=True: only loads data/pretrain/NAME/latest.pt when it exists.
    fit(job.run, job.step, job.batches, 0, checkpoint_dir=ckpt_dir, resume=True, progress=False)
    while job.run.step < job.steps and time.monotonic() < deadline:
        start = time.monotonic()
        chunk = min(job.steps, job.run.step + CHUNK)
        fit(
            job.run,
            job.step,
            job.batches,
            chunk,
            checkpoint_dir=ckpt_dir,
            checkpoint_every=CHUNK,
            log_every=100,
        )
        spent += time.monotonic() - start
        seconds_file.write_text(json.dumps({"seconds": spent, "step": job.run.step}))
        print(
            f"{args.name}: step {job.run.step}/{job.steps}, {spent / 60:.1f} min of training",
            flush=True,
        )
    if job.run.step < job.steps:
        print(f"Stopped at step {job.run.step} of {job.steps}; run the same command to continue.")
        return 0
    command = "python scripts/pretrain.py " + " ".join(sys.argv[1:] if argv is None else argv)
    card = export(args.name, job, spent, device, command)
    print(json.dumps(card["figures"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
