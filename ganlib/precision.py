"""Mixed precision (bf16/fp16 autocast and loss scaling), the same for every run and step."""

from __future__ import annotations

import contextlib

import torch


class Precision:
    """Mixed precision for every optimizer of a run.

    ``"auto"`` picks bf16 autocast on GPUs that compute it natively (no loss scaling needed),
    fp16 with one persistent GradScaler per optimizer on older GPUs (an inf in D's gradients must
    skip D's step, not G's), and fp32 on CPU.

    Args:
        device: The training device.
        mode (str): ``"auto"`` | ``"fp32"`` | ``"bf16"`` | ``"fp16"``. Default: ``"auto"``.
    """

    def __init__(self, device: torch.device | str = "cpu", mode: str = "auto"):
        self.device = torch.device(device)
        if mode == "auto":
            if self.device.type != "cuda":
                mode = "fp32"
            else:  # emulated bf16 (T4, V100) is slower than fp16 with a scaler
                native = torch.cuda.is_bf16_supported(including_emulation=False)
                mode = "bf16" if native else "fp16"
        if mode not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision mode must be auto, fp32, bf16 or fp16, got {mode!r}.")
        if mode == "fp16" and self.device.type != "cuda":
            raise ValueError("fp16 mixed precision needs a CUDA device; use 'fp32' or 'auto'.")
        self.mode = mode
        self.scalers: dict[str, torch.amp.GradScaler] = {}

    def autocast(self):
        """The forward-pass context: autocast to bf16/fp16, or nothing in fp32."""
        if self.mode == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.mode == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _scaler(self, name: str) -> torch.amp.GradScaler:
        if name not in self.scalers:
            self.scalers[name] = torch.amp.GradScaler("cuda")
        return self.scalers[name]

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, name: str) -> None:
        """``zero_grad``, ``loss.backward()``, ``optimizer.step()``; in fp16 through the scaler
        named ``name`` (one per optimizer)."""
        optimizer.zero_grad(set_to_none=True)
        if self.mode != "fp16":
            loss.backward()
            optimizer.step()
            return
        scaler = self._scaler(name)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> dict:
        return {"mode": self.mode, "scalers": {k: s.state_dict() for k, s in self.scalers.items()}}

    def load_state_dict(self, state: dict) -> None:
        for name, s in state.get("scalers", {}).items():
            self._scaler(name).load_state_dict(s)
