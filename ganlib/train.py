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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganlib.checkpoint import load_checkpoint, load_module_state, save_checkpoint
from ganlib.losses import D_LOSSES, G_LOSSES


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


def _loss_fn(loss, table: dict, what: str):
    if callable(loss):
        return loss
    if loss not in table:
        raise ValueError(f"{what} must be one of {sorted(table)} or a function, got {loss!r}.")
    return table[loss]


def d_step(
    G: nn.Module,
    D: nn.Module,
    opt_D: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    *,
    precision: Precision | None = None,
    loss: str | Callable = "bce",
    fake: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """(1) Update D: maximise log D(x) + log(1 - D(G(z))). Only D's weights change.

    Args:
        loss: ``"bce"``: L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))] (default), or
            ``"hinge"``: L_D = E_x[max(0, 1 - l(x))] + E_z[max(0, 1 + l(G(z)))] on the logits l,
            or a function ``f(real_logits, fake_logits) -> loss`` (e.g. your own, from an exercise).
        fake: G(z) computed already (it is detached here); then ``z`` is not used.
    """
    loss_fn = _loss_fn(loss, D_LOSSES, "D loss")
    precision = precision or Precision(real.device, "fp32")
    if fake is not None:
        fake = fake.detach()
    else:
        with torch.no_grad(), precision.autocast():
            fake = G(z)  # no graph through G: this step does not train it
    with precision.autocast():
        real_logits, fake_logits = D(real), D(fake)
        # L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]  (or the hinge form)
        loss_D = loss_fn(real_logits, fake_logits)
    opt_D.zero_grad(set_to_none=True)
    precision.backward_step(loss_D, opt_D, "D")
    return {
        "loss_D": loss_D.detach(),
        "D_x": torch.sigmoid(real_logits.detach().float()).mean(),
        "D_G_z": torch.sigmoid(fake_logits.detach().float()).mean(),
    }


def g_step(
    G: nn.Module,
    D: nn.Module,
    opt_G: torch.optim.Optimizer,
    z: torch.Tensor,
    *,
    loss: str | Callable = "nonsaturating",
    precision: Precision | None = None,
    content_loss=None,
    target: torch.Tensor | None = None,
    adv_weight: float = 1.0,
    fake: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """(2) Update G: make D call G(z) real. Only G's weights change.

    Args:
        z: G's input: noise (B, z_dim), or a conditioning image (e.g. the LR image for SRGAN).
        loss (str): ``"nonsaturating"``: L_adv = -E_z[log D(G(z))] (default), or
            ``"saturating"``: L_adv = E_z[log(1 - D(G(z)))], the value function's own term, or a
            function ``f(fake_logits) -> loss``.
        content_loss: Optional ``f(G(z), target) -> loss`` added to the adversarial term, e.g.
            SRGAN's VGG loss; then L_G = content + adv_weight * L_adv.
        target: The paired real images for ``content_loss``.
        adv_weight (float): Weight of the adversarial term. Default: 1.
        fake: G(z) computed already, *with* its graph (e.g. the one the D step used); then G is
            not run again.
    """
    loss_fn = _loss_fn(loss, G_LOSSES, "G loss")
    precision = precision or Precision((z if fake is None else fake).device, "fp32")
    # Gradients flow *through* D to G, but D's own weight gradients are not needed here.
    D.requires_grad_(False)
    try:
        with precision.autocast():
            fake = G(z) if fake is None else fake
            loss_adv = loss_fn(D(fake))
            stats = {}
            if content_loss is None:
                loss_G = loss_adv
            else:
                loss_content = content_loss(fake.float(), target)
                # L_G = L_content + adv_weight * L_adv
                loss_G = loss_content + adv_weight * loss_adv
                stats = {"loss_adv": loss_adv.detach(), "loss_content": loss_content.detach()}
        opt_G.zero_grad(set_to_none=True)
        precision.backward_step(loss_G, opt_G, "G")
    finally:
        D.requires_grad_(True)
    return {"loss_G": loss_G.detach(), **stats}


def _rng_state() -> dict:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def _set_rng_state(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _check_config(saved: dict, current: dict, source: str) -> None:
    if saved == current:
        return
    diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    detail = ", ".join(f"{k}: {saved.get(k)!r} there vs {current.get(k)!r} here" for k in diff)
    raise ValueError(
        f"{source} was written by a run with different settings ({detail}). "
        "Resume with the same settings, or use a new checkpoint folder."
    )


class RunState:
    """What a checkpoint holds for any run: step, config, history, RNG and the stateful parts.

    A run class names its parts in ``_parts()`` ({"G": generator, "opt_G": optimizer, ...};
    None = absent) and the plain settings it saves in ``_settings``. Resuming checks the config
    first, then loads every part; a network that does not fit is named by its label.
    """

    _settings: tuple[str, ...] = ()
    _labels = {"G": "generator", "D": "discriminator"}

    def _parts(self) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        parts = {name: part for name, part in self._parts().items() if part is not None}
        return {
            "step": self.step,
            "config": dict(self.config),
            **{name: getattr(self, name) for name in self._settings},
            **{name: part.state_dict() for name, part in parts.items()},
            "rng": _rng_state(),
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict, source: str = "the checkpoint") -> None:
        _check_config(state["config"], self.config, source)
        for name, part in self._parts().items():
            if part is None:
                continue
            if isinstance(part, nn.Module):
                label = self._labels.get(name, name)
                load_module_state(part, state[name], name=label, source=source)
            else:
                part.load_state_dict(state[name])
        for name in self._settings:
            setattr(self, name, state[name])
        self.step, self.history = state["step"], list(state["history"])
        _set_rng_state(state["rng"])

    def free_training_state(self) -> None:
        """Free what only training uses: the optimizers' state and the networks' gradients.

        Adam keeps two numbers per parameter and the gradients one more, so a finished run held
        for its networks alone (an ablation keeps many) takes a quarter of the memory. A later
        ``fit`` with ``resume=True`` reloads the optimizer state from the checkpoint; without a
        checkpoint the optimizers would start afresh.
        """
        for part in self._parts().values():
            if isinstance(part, torch.optim.Optimizer):
                part.state.clear()
            elif isinstance(part, nn.Module):
                part.zero_grad(set_to_none=True)


@dataclass
class GANRun(RunState):
    """Everything a GAN run needs to continue after a crash: the state a checkpoint holds.

    Args:
        G, D: The generator and the discriminator (D returns logits).
        opt_G, opt_D: Their optimizers.
        z_dim: Length of the noise vector G takes.
        config: Plain settings that define the run (architecture, learning rates, ...). A
            checkpoint made with different settings is refused on resume.
        g_loss: ``"nonsaturating"``, ``"saturating"`` or ``"hinge"``.
        d_loss: ``"bce"`` (default) or ``"hinge"``.
        precision: Mixed-precision settings; default fp32 on CPU, bf16/fp16 on CUDA.
        g_input: ``"noise"`` (G(z), z ~ N(0, I)) or ``"batch"``: batches are ``(real, input)``
            pairs and G maps the input to a fake ``real`` (super-resolution, translation).
        content_loss, adv_weight: Passed to :func:`g_step` (e.g. SRGAN's content loss and 1e-3).
    """

    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    z_dim: int | None = None
    config: dict = field(default_factory=dict)
    g_loss: str = "nonsaturating"
    d_loss: str = "bce"
    precision: Precision | None = None
    g_input: str = "noise"
    content_loss: object = None
    adv_weight: float = 1.0
    step: int = 0
    history: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.g_input not in ("noise", "batch"):
            raise ValueError(f"g_input must be 'noise' or 'batch', got {self.g_input!r}.")
        if self.g_input == "noise" and not self.z_dim:
            raise ValueError(
                "A GAN with g_input='noise' needs z_dim, the length of its noise vector."
            )
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

    def generate(self, n: int, batch_size: int = 500) -> torch.Tensor:
        """``n`` samples G(z), z ~ N(0, I), in eval mode, on the CPU, in [-1, 1] (for FID/IS)."""
        chunks = [self.noise(min(batch_size, n - i)) for i in range(0, n, batch_size)]
        return torch.cat([self.sample(z).cpu() for z in chunks])

    _settings = ("g_loss",)

    def _parts(self) -> dict:
        return {
            "G": self.G,
            "D": self.D,
            "opt_G": self.opt_G,
            "opt_D": self.opt_D,
            "precision": self.precision,
        }


def _call_hooks(hooks, event: str, *args) -> None:
    for hook in hooks:
        fn = getattr(hook, event, None)
        if fn is not None:
            fn(*args)


def _check_model_range(images: torch.Tensor, what: str) -> None:
    """One-time check (it waits for the device) that a batch is in the model range [-1, 1]."""
    lo, hi = (float(v) for v in images.aminmax())
    if lo < -1.01 or hi > 1.01:
        raise ValueError(
            f"{what} must be in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]. Convert uint8 or [0, 1] "
            "images with ganlib.images.to_model_range."
        )


def _drive(
    run,
    batches,
    steps,
    step_fn,
    *,
    hooks,
    log_every,
    checkpoint_dir,
    checkpoint_every,
    resume,
    progress,
    desc,
    on_record=None,
):
    """The loop shared by :func:`fit` and :func:`fit_supervised`: resume, progress, one host sync
    per log window with a NaN/inf check, atomic checkpoints, hooks."""
    from tqdm.auto import tqdm

    if log_every < 1 or checkpoint_every < 1:
        raise ValueError(
            f"log_every and checkpoint_every must be >= 1, got {log_every} and {checkpoint_every}."
        )
    ckpt = Path(checkpoint_dir) / "latest.pt" if checkpoint_dir is not None else None
    if ckpt is not None and ckpt.parent.is_dir():
        # Half-written files from a run killed mid-save; never read, only wasting disk.
        for stale in ckpt.parent.glob(f".{ckpt.name}.*.tmp"):
            stale.unlink(missing_ok=True)
    if resume and ckpt is not None and ckpt.is_file():
        state = load_checkpoint(ckpt, map_location=run.device)
        run.load_state_dict(state, source=str(ckpt))
        if hasattr(batches, "load_state_dict") and "batches" in state:
            batches.load_state_dict(state["batches"])
        print(f"Resumed from {ckpt} at step {run.step}.")

    saved_step = None

    def save() -> None:
        nonlocal saved_step
        state = run.state_dict()
        if hasattr(batches, "state_dict"):
            state["batches"] = batches.state_dict()
        save_checkpoint(ckpt, state)
        saved_step = run.step
        _call_hooks(hooks, "on_checkpoint", run, ckpt)

    sums: dict[str, torch.Tensor] = {}
    count, t0 = 0, time.perf_counter()
    bar = tqdm(total=steps, initial=run.step, disable=not progress, desc=desc)

    def flush() -> dict | None:
        nonlocal sums, count, t0
        if count == 0:
            return None
        # The one host synchronisation per log window.
        record = {"step": run.step, **{k: float(v) / count for k, v in sums.items()}}
        record["seconds"] = time.perf_counter() - t0
        sums, count, t0 = {}, 0, time.perf_counter()
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
            stats = step_fn(next(batches))
            run.step += 1
            for k, v in stats.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
            count += 1
            bar.update(1)
            at_checkpoint = ckpt is not None and run.step % checkpoint_every == 0
            if run.step % log_every == 0 or at_checkpoint or run.step == steps:
                record = flush()  # also checks for NaN before anything is saved
                if record is not None:
                    shown = {
                        k: f"{v:.3g}" for k, v in record.items() if k not in ("step", "seconds")
                    }
                    bar.set_postfix(shown)
                    if on_record is not None:
                        on_record(record)
                    _call_hooks(hooks, "on_log", run, record)
            if at_checkpoint:
                save()
        if ckpt is not None and saved_step != run.step:
            save()
    finally:
        bar.close()
    _call_hooks(hooks, "on_end", run)
    return run.history


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
    share_fake: bool = False,
    n_dis: int = 1,
) -> list[dict]:
    """Train ``run`` until ``run.step == steps``: :func:`d_step` then :func:`g_step`, repeated.

    Args:
        run: The models, optimizers and state (see :class:`GANRun`).
        batches: An iterator of real image batches in [-1, 1] (e.g. :class:`ganlib.data.Batches`),
            or of tuples: ``(images, labels)`` (labels ignored), or ``(real, input)`` pairs when
            ``run.g_input == "batch"``.
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
        share_fake: Run G once per iteration, as the PyTorch DCGAN example does: the D step uses
            G(z) detached and the G step the same G(z) with its graph (one G forward fewer per
            step; G's graph is held during the D step). Default: False (fresh noise, G run twice).
        n_dis: D steps per G step (SNGAN and WGAN-GP use 5). Every batch then holds
            ``n_dis * B`` real images, cut into ``n_dis`` batches of B so that every D step sees
            new ones (use ``Batches(..., batch_size=n_dis * B)``); ``steps`` counts G steps and
            the logged D statistics are means over the D steps. Default: 1.

    Returns:
        ``run.history``: one dict per log with step, loss_D, loss_G, D_x, D_G_z and seconds.

    Raises:
        TrainingDiverged: a loss became NaN/inf; the last good checkpoint is kept on disk.
    """
    if n_dis < 1:
        raise ValueError(f"n_dis must be >= 1 discriminator steps per generator step, got {n_dis}.")
    if n_dis > 1 and (share_fake or run.g_input == "batch"):
        raise ValueError(
            "n_dis > 1 needs g_input='noise' and share_fake=False: every D step draws its own fakes."
        )
    device = run.device
    checked: list[bool] = []  # the range check runs on the first batch only

    def step_fn(batch) -> dict[str, torch.Tensor]:
        real = batch[0] if isinstance(batch, tuple | list) else batch
        real = real.to(device, non_blocking=True)
        if not checked:
            _check_model_range(real, "Real images")
            if len(real) % n_dis:
                raise ValueError(
                    f"A batch of {len(real)} images cannot be cut into n_dis = {n_dis} equal D "
                    f"batches; use Batches(..., batch_size=n_dis * B)."
                )
            checked.append(True)
        if n_dis > 1:
            # (1) n_dis D steps, each on B new real images and fresh noise, then (2) one G step
            d_stats = [
                d_step(
                    run.G,
                    run.D,
                    run.opt_D,
                    chunk,
                    run.noise(len(chunk)),
                    precision=run.precision,
                    loss=run.d_loss,
                )
                for chunk in real.chunk(n_dis)
            ]
            stats = {k: sum(s[k] for s in d_stats) / n_dis for k in d_stats[0]}
            z_g = run.noise(len(real) // n_dis)
            return stats | g_step(
                run.G, run.D, run.opt_G, z_g, loss=run.g_loss, precision=run.precision
            )
        if run.g_input == "batch":  # (real, input) pairs: G maps input -> fake real
            z_d = z_g = batch[1].to(device, non_blocking=True)
        else:
            z_d, z_g = run.noise(real.shape[0]), run.noise(real.shape[0])
        fake = None
        if share_fake:
            with run.precision.autocast():
                fake = run.G(z_d)  # with its graph: the G step backpropagates through it
        stats = d_step(
            run.G, run.D, run.opt_D, real, z_d, precision=run.precision, loss=run.d_loss, fake=fake
        )
        return stats | g_step(  # (2) G
            run.G,
            run.D,
            run.opt_G,
            z_g,
            loss=run.g_loss,
            precision=run.precision,
            content_loss=run.content_loss,
            target=real,
            adv_weight=run.adv_weight,
            fake=fake,
        )

    d_wins = 0

    def watch(record: dict) -> None:
        nonlocal d_wins
        d_wins = d_wins + 1 if record["loss_D"] < 0.05 else 0
        if d_wins == d_wins_patience:
            warnings.warn(
                f"The discriminator has won outright for {d_wins} logs in a row "
                f"(loss_D = {record['loss_D']:.4f} at step {run.step}): G gets almost "
                "no useful gradient. Lower D's learning rate, use the non-saturating "
                "loss, or restart from an earlier checkpoint.",
                stacklevel=4,
            )

    return _drive(
        run,
        batches,
        steps,
        step_fn,
        hooks=hooks,
        log_every=log_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
        desc="GAN training" if n_dis == 1 else f"GAN training (n_dis={n_dis})",
        on_record=watch,
    )


PIXEL_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


@dataclass
class SupervisedRun(RunState):
    """State of a supervised image-to-image run (e.g. SRResNet with a pixel loss).

    Args:
        model: Maps an input batch to a prediction of the target batch.
        optimizer: Its optimizer.
        loss: ``"l1"`` or ``"mse"``.
        config: Plain settings; a checkpoint with different settings is refused on resume.
        precision: Mixed-precision settings; default fp32 on CPU, bf16/fp16 on CUDA.
        scheduler: Optional learning-rate scheduler, stepped after every optimizer step.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss: str = "l1"
    config: dict = field(default_factory=dict)
    precision: Precision | None = None
    scheduler: object = None
    step: int = 0
    history: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.loss not in PIXEL_LOSSES:
            raise ValueError(f"loss must be one of {sorted(PIXEL_LOSSES)}, got {self.loss!r}.")
        if self.precision is None:
            self.precision = Precision(self.device)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    _settings = ("loss",)

    def _parts(self) -> dict:
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "precision": self.precision,
        }


def supervised_step(
    run: SupervisedRun, target: torch.Tensor, inputs: torch.Tensor
) -> dict[str, torch.Tensor]:
    """One optimizer step on the pixel loss between ``model(inputs)`` and ``target``."""
    with run.precision.autocast():
        pred = run.model(inputs)
    loss = PIXEL_LOSSES[run.loss](pred.float(), target)
    run.optimizer.zero_grad(set_to_none=True)
    run.precision.backward_step(loss, run.optimizer, "model")
    if run.scheduler is not None:
        run.scheduler.step()
    return {"loss": loss.detach()}


def fit_supervised(
    run: SupervisedRun,
    batches,
    steps: int,
    *,
    hooks: tuple = (),
    log_every: int = 50,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
) -> list[dict]:
    """Train ``run.model`` on ``(target, input)`` batches until ``run.step == steps``.

    Same checkpoints, resume, NaN check, hooks and logging as :func:`fit`.
    """
    device = run.device

    checked: list[bool] = []

    def step_fn(batch):
        target, inputs = batch
        if not checked:
            _check_model_range(target, "Targets")
            checked.append(True)
        target, inputs = target.to(device, non_blocking=True), inputs.to(device, non_blocking=True)
        return supervised_step(run, target, inputs)

    return _drive(
        run,
        batches,
        steps,
        step_fn,
        hooks=hooks,
        log_every=log_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
        desc="training",
    )
