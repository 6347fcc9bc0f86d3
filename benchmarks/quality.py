"""Same results? Both loops train the same model for the same number of steps from the same seeds.

    python -m benchmarks.quality --quick

- DCGAN-MNIST: FID with the digit classifier's features (``ganlib.fid``, features="digits") of
  2000 samples against the 2000 held-out real digits (lower is better).
- SRResNet: mean Set5 PSNR (x4, Y channel, the paper's protocol, ``ganlib.sr.evaluate_sr``).

"Within noise" means: the gap between the loops is no larger than the spread between seeds of
one loop. The data order differs between the loops (ganlib.data.Batches / SRPatches vs the
DataLoader's shuffling), as it would between two runs of either.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from benchmarks import train_throughput as tt

PROFILES = {
    # steps, seeds, and the SRResNet size (quick: a smaller SRResNet, so that CPU runs finish)
    "tiny": {"dcgan_steps": 2, "sr_steps": 2, "seeds": [0], "sr": tt.SIZES["tiny"]["srresnet"]},
    "quick": {
        "dcgan_steps": 600,
        "sr_steps": 150,
        "seeds": [0, 1],
        "sr": dict(batch=16, patch=64, n_blocks=4, width=32),
    },
    # share_fake on/off, DCGAN only: three seeds, long enough for the digits to take shape
    "seeds": {
        "dcgan_steps": 1500,
        "sr_steps": 150,
        "seeds": [0, 1, 2],
        "sr": dict(batch=16, patch=64, n_blocks=4, width=32),
    },
    "full": {
        "dcgan_steps": 2000,
        "sr_steps": 1000,
        "seeds": [0, 1, 2],
        "sr": dict(batch=16, patch=96, n_blocks=16, width=64),
    },
}


@torch.no_grad()
def dcgan_fid(G, n: int = 2000, seed: int = 1234) -> float:
    from ganlib.data import mnist_for_gan
    from ganlib.fid import fid
    from ganlib.images import to_model_range

    _, held = mnist_for_gan("test")
    g = torch.Generator().manual_seed(seed)
    was = G.training
    G.eval()  # batch norm with running statistics, as GANRun.sample does
    fake = G(torch.randn(n, G.z_dim, generator=g)).float()
    G.train(was)
    return fid(to_model_range(held[:n, None]), fake, features="digits")


def set5_psnr(model) -> float:
    from ganlib.data import load_sr_images
    from ganlib.sr import evaluate_sr, model_upscaler

    model.eval()
    rows = evaluate_sr(model_upscaler(model), load_sr_images("set5"), 4)
    model.train()
    return statistics.mean(r["psnr"] for r in rows)


def run(
    profile: str,
    loops=("reference", "ganlib"),
    workers: int = 2,
    log=print,
    models=("dcgan", "srresnet"),
) -> dict:
    cfg = PROFILES[profile]
    out = {"profile": profile, "config": cfg, "dcgan": {}, "srresnet": {}}
    dcgan_size = tt.SIZES["quick" if profile != "tiny" else "tiny"]["dcgan"]
    dcgan_data = tt.load_data("dcgan", dcgan_size)
    sr_data = tt.load_data("srresnet", cfg["sr"]) if "srresnet" in models else None
    for seed in cfg["seeds"]:
        for loop in loops:
            t0 = time.perf_counter()
            r = tt.make_runner(
                "dcgan", loop, dcgan_data, dcgan_size, seed, torch.device("cpu"), workers
            )
            r.train(cfg["dcgan_steps"])
            score = dcgan_fid(r.modules[0]) if profile != "tiny" else float("nan")
            out["dcgan"].setdefault(loop, []).append(score)
            log(f"dcgan {loop} seed {seed}: FID {score:.2f} ({time.perf_counter() - t0:.0f} s)")
            del r
            if "srresnet" not in models or "share_fake" in tt.VARIANTS.get(loop, {}):
                continue  # an option of the GAN loop only; SRResNet trains without a D
            t0 = time.perf_counter()
            r = tt.make_runner(
                "srresnet", loop, sr_data, cfg["sr"], seed, torch.device("cpu"), workers
            )
            r.train(cfg["sr_steps"])
            score = set5_psnr(r.modules[0])
            out["srresnet"].setdefault(loop, []).append(score)
            log(
                f"srresnet {loop} seed {seed}: Set5 PSNR {score:.2f} dB ({time.perf_counter() - t0:.0f} s)"
            )
            del r
    return out


def summary(out: dict) -> str:
    lines = ["| metric | loop | per seed | mean | std |", "|---|---|---|---:|---:|"]
    for key, what in (
        ("dcgan", "DCGAN digit-feature FID"),
        ("srresnet", "SRResNet Set5 PSNR (dB)"),
    ):
        for loop, vals in out[key].items():
            if not vals:
                continue
            per = ", ".join(f"{v:.2f}" for v in vals)
            std = statistics.stdev(vals) if len(vals) > 1 else float("nan")
            lines.append(f"| {what} | {loop} | {per} | {statistics.mean(vals):.2f} | {std:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Quality after a fixed number of steps, both loops")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None)
    p.add_argument("--loops", nargs="+", default=["reference", "ganlib"])
    p.add_argument(
        "--models", nargs="+", choices=["dcgan", "srresnet"], default=["dcgan", "srresnet"]
    )
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    profile = args.profile or ("quick" if args.quick else "full")
    out = run(profile, args.loops, models=args.models)
    print(summary(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
