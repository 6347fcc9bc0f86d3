"""SR inference peak memory vs image size: ganlib.sr.upscale_tiled vs one untiled forward pass.

    python -m benchmarks.sr_memory --sizes 256 512 1024 2048          # LR input sides, x4 SRResNet

Each (size, mode) runs in a fresh subprocess; we report its peak RSS (VmHWM) on CPU, or
``torch.cuda.max_memory_allocated`` on a GPU. The model is the paper's SRResNet (16 blocks, width
64, x4) with random weights: memory does not depend on the weights. Untiled runs whose estimated
activations exceed ``--max-untiled-gib`` are skipped (and reported as the estimate) instead of
swapping the machine to death.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch


def untiled_estimate_gib(side: int, width: int = 64, scale: int = 4) -> float:
    """Two largest live float32 maps of an untiled forward: the 4w-channel map before the last
    PixelShuffle (at scale/2 x the LR side) and its shuffled w-channel output (at scale x)."""
    last = 4 * width * (side * scale // 2) ** 2 + width * (side * scale) ** 2
    return 2 * last * 4 / 2**30


def probe(
    side: int,
    tiled: bool,
    tile: int = 128,
    n_blocks: int = 16,
    width: int = 64,
    device: str = "cpu",
    seed: int = 0,
) -> dict:
    """Upscale one random side x side uint8 image in this process; return peak memory and time."""
    from benchmarks.train_throughput import peak_rss_mib
    from ganlib.models.sr import SRResNet
    from ganlib.sr import model_upscaler, upscale_tiled

    torch.manual_seed(seed)
    device = torch.device(device)
    model = SRResNet(4, n_blocks, width).to(device).eval()
    lr = torch.randint(0, 256, (3, side, side), dtype=torch.uint8)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if side == 0:  # baseline: the process with torch, ganlib and the model loaded, no inference
        out = torch.empty(3, 0, 0)
    else:
        out = upscale_tiled(model, lr, tile=tile) if tiled else model_upscaler(model, device)(lr)
    seconds = time.perf_counter() - t0
    result = {
        "side": side,
        "mode": f"tiled ({tile})" if tiled else "untiled",
        "output": list(out.shape),
        "rss_mib": peak_rss_mib(),
        "seconds": seconds,
    }
    if device.type == "cuda":
        result["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def probe_subprocess(side: int, tiled: bool, tile: int, device: str) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.sr_memory", "--probe", str(side), "--tile", str(tile)]
    cmd += ["--device", device] + (["--tiled"] if tiled else [])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"SR memory probe {side} tiled={tiled} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="SR inference peak memory, tiled vs untiled")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-untiled-gib", type=float, default=8.0)
    p.add_argument("--json", default=None)
    p.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    p.add_argument("--tiled", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe is not None:
        print(json.dumps(probe(args.probe, args.tiled, args.tile, device=args.device)))
        return 0
    base = probe_subprocess(0, False, args.tile, args.device)
    rows = [base]
    mem = base.get("cuda_max_allocated_mib", base["rss_mib"])
    print(f"baseline (torch + ganlib + SRResNet loaded, no inference): {mem:.0f} MiB")
    print("| LR input | output | mode | peak RSS MiB | seconds |")
    print("|---|---|---|---:|---:|")
    for side in args.sizes:
        for tiled in (True, False):
            if not tiled and untiled_estimate_gib(side) > args.max_untiled_gib:
                est = untiled_estimate_gib(side)
                row = {
                    "side": side,
                    "mode": "untiled",
                    "skipped": f"needs > {est:.0f} GiB (estimate)",
                }
                print(f"| {side}² | {4 * side}² | untiled | skipped: needs > {est:.0f} GiB | |")
            else:
                row = probe_subprocess(side, tiled, args.tile, args.device)
                mem = row.get("cuda_max_allocated_mib", row["rss_mib"])
                print(
                    f"| {side}² | {4 * side}² | {row['mode']} | {mem:.0f} | {row['seconds']:.1f} |"
                )
            rows.append(row)
            sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
