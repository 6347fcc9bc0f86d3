"""bf16 autocast and channels_last on this CPU: one SRResNet training step (16 blocks x 64, no batch
norm, batch 16 of 16x16 LR patches, L1, Adam), the configuration of ganlib's pretrained srresnet_x4.

    python -m benchmarks.cpu_bf16      # about a minute on 2 cores; run it alone

Prints the median of 5 steps after 2 warm-up steps for fp32/bf16 x default/channels_last.
"""

from __future__ import annotations

import statistics
import time

import torch

from ganlib.models.sr import SRResNet
from ganlib.train import adam


def step_ms(bf16: bool, channels_last: bool, steps: int = 5) -> float:
    torch.manual_seed(0)
    model = SRResNet(4, 16, 64, batch_norm=False)
    x, y = torch.randn(16, 3, 16, 16), torch.randn(16, 3, 64, 64)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = adam(model.parameters(), 2e-4)
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = (out.float() - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    base = step_ms(False, False)
    for bf16 in (False, True):
        for cl in (False, True):
            ms = base if not (bf16 or cl) else step_ms(bf16, cl)
            print(f"bf16={bf16!s:5} channels_last={cl!s:5} {ms:6.0f} ms/step  {base / ms:.2f}x")


if __name__ == "__main__":
    main()
