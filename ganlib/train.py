"""The GAN training loop: two visible steps and a ``fit`` built from them.

One iteration of GAN training (Goodfellow et al. 2014, Algorithm 1):

1. :func:`d_step` updates the discriminator to maximise
   V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))];
2. :func:`g_step` updates the generator to fool it, with the non-saturating loss
   -E_z[log D(G(z))] by default.

Both return a dict of detached scalar tensors. Reading one (``float(stats["loss_D"])``) waits for
the GPU, so :func:`fit` only does that every ``log_every`` steps.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ganlib.checkpoint import load_checkpoint, load_module_state, save_checkpoint
from ganlib.losses import G_LOSSES, d_loss


class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; training stopped and the last good checkpoint was kept."""


class Precision:
    """Mixed precision for a GAN's two optimizers.

    ``"auto"`` picks bf16 autocast on GPUs that support it (no loss scaling needed), fp16 with
    one GradScaler per optimizer on older GPUs, and fp32 on CPU. One scaler per optimizer
    matters: an inf in D's gradients must skip D's step, not G's.

    Args:
        device: The training device.
        mode (str): ``"auto"`` | ``"fp32"`` | ``"bf16"`` | ``"fp16"``. Default: ``"auto"``.
    """

    def __init__(self, device: torch.device | str = "cpu", mode: str = "auto"):
        self.device = torch.device(device)
        if mode == "auto":
            if self.device.type != "cuda":
                mode = "fp32"
            else:
                mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if mode not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision mode must be auto, fp32, bf16 or fp16, got {mode!r}.")
        if mode == "fp16" and self.device.type != "cuda":
            raise ValueError("fp16 mixed precision needs a CUDA device; use 'fp32' or 'auto'.")
        self.mode = mode
        self.scalers: dict[str, torch.amp.GradScaler] = {}

    def autocast(self):
        if self.mode == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.mode == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, name: str):
        """loss.backward() then optimizer.step(), through this optimizer's own scaler in fp16."""
        if self.mode != "fp16":
            loss.backward()
            optimizer.step()
            return
        scaler = self.scalers.setdefault(name, torch.amp.GradScaler("cuda"))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> dict:
        return {"mode": self.mode, "scalers": {k: s.state_dict() for k, s in self.scalers.items()}}

    def load_state_dict(self, state: dict) -> None:
        for name, s in state.get("scalers", {}).items():
            self.scalers.setdefault(name, torch.amp.GradScaler("cuda")).load_state_dict(s)


def d_step(
    G: nn.Module,
    D: nn.Module,
    opt_D: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    *,
    precision: Precision | None = None,
) -> dict[str, torch.Tensor]:
    """(1) Update D: maximise log D(x) + log(1 - D(G(z))). Only D's weights change."""
    precision = precision or Precision(real.device, "fp32")
    with torch.no_grad(), precision.autocast():
        fake = G(z)  # no graph through G: this step does not train it
    with precision.autocast():
        real_logits, fake_logits = D(real), D(fake)
        # L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]
        loss = d_loss(real_logits, fake_logits)
    opt_D.zero_grad(set_to_none=True)
    precision.backward_step(loss, opt_D, "D")
    return {
        "loss_D": loss.detach(),
        "D_x": torch.sigmoid(real_logits.detach().float()).mean(),
        "D_G_z": torch.sigmoid(fake_logits.detach().float()).mean(),
    }


def g_step(
    G: nn.Module,
    D: nn.Module,
    opt_G: torch.optim.Optimizer,
    z: torch.Tensor,
    *,
    loss: str = "nonsaturating",
    precision: Precision | None = None,
) -> dict[str, torch.Tensor]:
    """(2) Update G: make D call G(z) real. Only G's weights change.

    Args:
        loss (str): ``"nonsaturating"``: L_G = -E_z[log D(G(z))] (default), or
            ``"saturating"``: L_G = E_z[log(1 - D(G(z)))], the value function's own term.
    """
    if loss not in G_LOSSES:
        raise ValueError(f"loss must be one of {sorted(G_LOSSES)}, got {loss!r}.")
    precision = precision or Precision(z.device, "fp32")
    # Gradients flow *through* D to G, but D's own weight gradients are not needed here.
    D.requires_grad_(False)
    try:
        with precision.autocast():
            fake_logits = D(G(z))
            loss_G = G_LOSSES[loss](fake_logits)
        opt_G.zero_grad(set_to_none=True)
        precision.backward_step(loss_G, opt_G, "G")
    finally:
        D.requires_grad_(True)
    return {"loss_G": loss_G.detach()}


@dataclass
class GANRun:
    """Everything a GAN run needs to continue after a crash: the state a checkpoint holds.

    Args:
        G, D: The generator and the discriminator (D returns logits).
        opt_G, opt_D: Their optimizers.
        z_dim: Length of the noise vector G takes.
        config: Plain settings that define the run (architecture, learning rates, ...). A
            checkpoint made with different settings is refused on resume.
        g_loss: ``"nonsaturating"`` or ``"saturating"``.
        precision: Mixed-precision settings; default fp32 on CPU, bf16/fp16 on CUDA.
    """

    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    z_dim: int
    config: dict = field(default_factory=dict)
    g_loss: str = "nonsaturating"
    precision: Precision | None = None
    step: int = 0
    history: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.precision is None:
            self.precision = Precision(self.device)

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) in eval mode (batch norm uses its running statistics), in [-1, 1]."""
        was_training = self.G.training
        self.G.eval()
        try:
            return self.G(z.to(self.device)).float()
        finally:
            self.G.train(was_training)

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "step": self.step,
            "config": dict(self.config),
            "g_loss": self.g_loss,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "precision": self.precision.state_dict(),
            "rng": rng,
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict, source: str = "the checkpoint") -> None:
        if state["config"] != self.config:
            diff = sorted(
                k
                for k in set(state["config"]) | set(self.config)
                if state["config"].get(k) != self.config.get(k)
            )
            detail = ", ".join(
                f"{k}: {state['config'].get(k)!r} there vs {self.config.get(k)!r} here"
                for k in diff
            )
            raise ValueError(
                f"{source} was written by a run with different settings ({detail}). "
                "Resume with the same settings, or use a new checkpoint folder."
            )
        load_module_state(self.G, state["G"], name="generator", source=source)
        load_module_state(self.D, state["D"], name="discriminator", source=source)
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.precision.load_state_dict(state["precision"])
        self.step, self.g_loss, self.history = (
            state["step"],
            state["g_loss"],
            list(state["history"]),
        )
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])


def _call_hooks(hooks, event: str, *args) -> None:
    for hook in hooks:
        fn = getattr(hook, event, None)
        if fn is not None:
            fn(*args)


def fit(
    run: GANRun,
    batches,
    steps: int,
    *,
    hooks: tuple = (),
    log_every: int = 50,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
    d_wins_patience: int = 5,
) -> list[dict]:
    """Train ``run`` until ``run.step == steps``: :func:`d_step` then :func:`g_step`, repeated.

    Args:
        run: The models, optimizers and state (see :class:`GANRun`).
        batches: An iterator of real image batches in [-1, 1] (e.g. :class:`ganlib.data.Batches`),
            or of ``(images, labels)`` tuples, whose labels are ignored.
        steps: Total number of iterations (one D step + one G step each), counting from step 0.
        hooks: Objects with optional ``on_log(run, record)``, ``on_checkpoint(run, path)`` and
            ``on_end(run)`` methods, for side effects only (plots, printing, saving).
        log_every: Read the losses back from the device every this many steps. Default: 50.
        checkpoint_dir: Where ``latest.pt`` is written every ``checkpoint_every`` steps and at the
            end; None for no checkpoints.
        checkpoint_every: Steps between checkpoints. Default: 500.
        resume: Continue from ``checkpoint_dir/latest.pt`` when it exists.
        progress: Show a tqdm progress bar.
        d_wins_patience: Warn when D wins outright (loss_D < 0.05) for this many logs in a row.

    Returns:
        ``run.history``: one dict per log with step, loss_D, loss_G, D_x, D_G_z and seconds.

    Raises:
        TrainingDiverged: a loss became NaN/inf; the last good checkpoint is kept on disk.
    """
    from tqdm.auto import tqdm

    ckpt = Path(checkpoint_dir) / "latest.pt" if checkpoint_dir is not None else None
    if resume and ckpt is not None and ckpt.is_file():
        state = load_checkpoint(ckpt, map_location=run.device)
        run.load_state_dict(state, source=str(ckpt))
        if hasattr(batches, "load_state_dict") and "batches" in state:
            batches.load_state_dict(state["batches"])
        print(f"Resumed from {ckpt} at step {run.step}.")

    saved_step = None

    def save(path: Path) -> None:
        nonlocal saved_step
        state = run.state_dict()
        if hasattr(batches, "state_dict"):
            state["batches"] = batches.state_dict()
        save_checkpoint(path, state)
        saved_step = run.step
        _call_hooks(hooks, "on_checkpoint", run, path)

    device = run.device
    sums: dict[str, torch.Tensor] = {}
    count, d_wins, t0 = 0, 0, time.perf_counter()
    bar = tqdm(total=steps, initial=run.step, disable=not progress, desc="GAN training")

    def flush() -> dict | None:
        nonlocal sums, count, t0
        if count == 0:
            return None
        # The one host synchronisation per log window.
        record = {k: float(v) / count for k, v in sums.items()}
        record = {"step": run.step, **record, "seconds": time.perf_counter() - t0}
        sums, count = {}, 0
        bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            where = f" The last good checkpoint is {ckpt}." if ckpt and ckpt.is_file() else ""
            raise TrainingDiverged(
                f"{', '.join(bad)} became NaN/inf by step {run.step}.{where} Try a lower "
                "learning rate, check the data for NaN pixels, or use precision='fp32'."
            )
        run.history.append(record)
        return record

    try:
        while run.step < steps:
            real = next(batches)
            if isinstance(real, tuple | list):
                real = real[0]
            real = real.to(device, non_blocking=True)
            stats = d_step(
                run.G, run.D, run.opt_D, real, run.noise(real.shape[0]), precision=run.precision
            )
            stats |= g_step(
                run.G,
                run.D,
                run.opt_G,
                run.noise(real.shape[0]),
                loss=run.g_loss,
                precision=run.precision,
            )
            run.step += 1
            for k, v in stats.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
            count += 1
            bar.update(1)

            at_checkpoint = ckpt is not None and run.step % checkpoint_every == 0
            if run.step % log_every == 0 or at_checkpoint or run.step == steps:
                record = flush()  # also checks for NaN before anything is saved
                if record is not None:
                    bar.set_postfix(
                        loss_D=f"{record['loss_D']:.3f}",
                        loss_G=f"{record['loss_G']:.3f}",
                        D_x=f"{record['D_x']:.2f}",
                        D_G_z=f"{record['D_G_z']:.2f}",
                    )
                    d_wins = d_wins + 1 if record["loss_D"] < 0.05 else 0
                    if d_wins == d_wins_patience:
                        warnings.warn(
                            f"The discriminator has won outright for {d_wins} logs in a row "
                            f"(loss_D = {record['loss_D']:.4f} at step {run.step}): G gets almost "
                            "no useful gradient. Lower D's learning rate, use the non-saturating "
                            "loss, or restart from an earlier checkpoint.",
                            stacklevel=2,
                        )
                    _call_hooks(hooks, "on_log", run, record)
                    t0 = time.perf_counter()
            if at_checkpoint:
                save(ckpt)
        if ckpt is not None and saved_step != run.step:
            save(ckpt)
    finally:
        bar.close()
    _call_hooks(hooks, "on_end", run)
    return run.history
