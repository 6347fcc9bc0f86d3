"""SSIM speed: ganlib's separable float64 SSIM vs torchmetrics' 2-D filtered SSIM (the previous
implementation), on the same images, with the same value.

    python -m benchmarks.ssim_speed [--threads N] [--repeats R]

Prints the milliseconds per call (best of R) for four 256x256 luma images and the largest
difference between the two values.
"""

from __future__ import annotations

import argparse
import time

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from ganlib.metrics import _prepare, ssim


def torchmetrics_ssim(sr: torch.Tensor, hr: torch.Tensor, channel: str = "y") -> float:
    """The reference: torchmetrics' 11x11 Gaussian SSIM map, kept where the window is inside."""
    x, y = _prepare(sr, hr, 0, channel)
    _, full = structural_similarity_index_measure(
        x,
        y,
        gaussian_kernel=True,
        sigma=1.5,
        kernel_size=11,
        data_range=255.0,
        k1=0.01,
        k2=0.03,
        return_full_image=True,
    )
    return float(full[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)).mean())


def best_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(4, 1, 256, 256, generator=g)
    sr = (hr + 0.1 * torch.randn(hr.shape, generator=g)).clamp(0, 1)
    old = best_ms(lambda: torchmetrics_ssim(sr, hr), args.repeats)
    new = best_ms(lambda: ssim(sr, hr), args.repeats)
    diff = abs(ssim(sr, hr) - torchmetrics_ssim(sr, hr))
    print(f"four 256x256 luma images, {args.threads} thread(s), best of {args.repeats}")
    print(f"torchmetrics 2-D SSIM  {old:8.1f} ms")
    print(f"ganlib separable SSIM  {new:8.1f} ms   ({old / new:.0f}x faster)")
    print(f"largest difference of the values: {diff:.2e}")


if __name__ == "__main__":
    main()
