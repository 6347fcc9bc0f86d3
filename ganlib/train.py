"""The one training loop of the course: ``fit(run, step, batches, steps)``.

A *run* holds what training changes and a checkpoint must keep: the networks, their optimizers,
the step count, the logged history and the settings (:class:`RunState`). A *step* is a plain
function ``step(run, batch) -> dict[str, Tensor]`` that updates the run's networks once and returns
detached scalars (losses, D's outputs). Every method of the course is one step function, short and
named, in its lesson's module:

======================  =========================  ===========================================
method                  step                       module
======================  =========================  ===========================================
GAN, DCGAN, SNGAN       ``gan_step``               :mod:`ganlib.gan` (lessons 01, 04)
SRCNN, SRResNet, DnCNN  :func:`supervised_step`    here: the step without a discriminator
SRGAN                   ``srgan_step``             :mod:`ganlib.sr` (lesson 02)
conditional GAN         ``conditional_gan_step``   :mod:`ganlib.conditional` (lesson 03)
restoration GAN         ``restoration_step``       :mod:`ganlib.restoration` (lesson 03)
pix2pix                 ``pix2pix_step``           :mod:`ganlib.pix2pix` (lesson 05)
CycleGAN                ``cyclegan_step``          :mod:`ganlib.cyclegan` (lesson 05)
======================  =========================  ===========================================

:func:`fit` does everything else, the same way for every method: moving batches to the device,
checking the first batch's range, reading the statistics back once per log window (each read
waits for the GPU), stopping on NaN/inf, warning when D wins outright, atomic checkpoints, resume,
progress, and hooks. Pass your own step function to train your own method.
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
from torch import nn
from tqdm.auto import tqdm

from ganlib.checkpoint import load_checkpoint, load_module_state, save_checkpoint
from ganlib.losses import PIXEL_LOSSES
from ganlib.precision import Precision


class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; training stopped and the last good checkpoint was kept."""


# --- Small contexts every step uses --------------------------------------------------------------


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """Turn off gradients for the weights of ``modules`` inside the block (restored after).

    In G's step gradients flow *through* D to G, but D's own weight gradients are not needed:
    without this they would be computed, and left behind for D's next step to trip over.
    """
    flags = [[p.requires_grad for p in m.parameters()] for m in modules]
    for m in modules:
        m.requires_grad_(False)
    try:
        yield
    finally:
        for m, fs in zip(modules, flags, strict=True):
            for p, f in zip(m.parameters(), fs, strict=True):
                p.requires_grad_(f)


@contextlib.contextmanager
def evaluating(*modules: nn.Module):
    """Eval mode (batch norm with its running statistics, dropout off) and no gradients inside
    the block; each module's own mode is restored after."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


# --- Runs ----------------------------------------------------------------------------------------


def _rng_state() -> dict:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def _set_rng_state(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def setting_name(value) -> object:
    """A setting as the config stores it: plain values as they are, a function or module by name."""
    if value is None or isinstance(value, bool | int | float | str | list | tuple | dict):
        return value
    return getattr(value, "__name__", type(value).__name__)


# --- Optimizers ----------------------------------------------------------------------------------


def fuses_adam(params) -> bool:
    """Whether :func:`adam` steps ``params`` with torch's fused kernel: only when all are on CUDA.

    On CPU torch's default implementation is kept, so CPU runs give the numbers they always gave.
    """
    devices = {p.device.type for p in params}
    return devices == {"cuda"}


def adam(params, lr: float = 1e-3, betas=(0.9, 0.999), **kwargs) -> torch.optim.Adam:
    """``torch.optim.Adam``, fused into one kernel per step when the parameters are on CUDA.

    The fused step updates every parameter in one launch instead of several per tensor, and it
    takes GradScaler's inf check as a GPU tensor (fp16), where the other implementations read it
    back to the host first, which waits for the GPU. Elsewhere (CPU) this is exactly
    ``torch.optim.Adam(params, lr, betas, **kwargs)``. The implementation is recorded in the
    run's config (:func:`optimizer_name`).

    Args:
        params: The parameters to optimize, or parameter groups (dicts with ``"params"``).
        lr (float): Learning rate. Default: 1e-3 (torch's).
        betas (tuple): (beta1, beta2), the decay rates of the running means of the gradient and
            of its square. Default: (0.9, 0.999) (torch's).
        **kwargs: Any other argument of ``torch.optim.Adam``; ``fused=False`` or
            ``foreach=True`` choose another implementation on CUDA.
    """
    groups = [{**g, "params": list(g["params"])} if isinstance(g, dict) else g for g in params]
    tensors = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    if "foreach" not in kwargs and fuses_adam(tensors):
        kwargs.setdefault("fused", True)
    return torch.optim.Adam(groups, lr=lr, betas=betas, **kwargs)


def _implementation(group: dict) -> str:
    if group.get("fused"):
        return "fused"
    if group["foreach"] is None:  # torch's default, decided at each step: foreach on the GPU
        return "foreach" if all(p.device.type == "cuda" for p in group["params"]) else "for-loop"
    return "foreach" if group["foreach"] else "for-loop"


def optimizer_name(optimizer: torch.optim.Optimizer) -> str:
    """The optimizer and the implementation torch steps it with: ``"Adam(fused)"`` (one kernel
    for all tensors), ``"Adam(foreach)"`` (one kernel per operation for all tensors) or
    ``"Adam(for-loop)"`` (one tensor at a time); just the class name for an optimizer without
    that choice (``"LBFGS"``)."""
    kind, groups = type(optimizer).__name__, optimizer.param_groups
    if not all("foreach" in g for g in groups):
        return kind
    return f"{kind}({'+'.join(sorted({_implementation(g) for g in groups}))})"


# --- Memory format ------------------------------------------------------------------------------


def prefers_channels_last(module: nn.Module) -> bool:
    """Whether ``module`` trains faster in channels_last (NHWC) memory: its class says so with
    ``prefers_channels_last = True``, set where it was measured faster on CPU (DCGAN, the SRResNet
    family: +6-30 % per step, benchmarks/RESULTS.md) and left False where it was slower (the U-Net and
    the CycleGAN ResNet generator: 0.92-0.98x) or not measured."""
    return bool(getattr(module, "prefers_channels_last", False))


def to_memory_format(batch, channels_last: bool):
    """``batch`` (a tensor or a tuple of tensors) with every 4-D tensor in channels_last memory
    when asked (the same values, stored NHWC); other tensors (labels, noise) as they are."""
    if not channels_last:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.ndim == 4 else batch
    return type(batch)(to_memory_format(t, True) for t in batch)


class RunState:
    """The convention every run follows: its parts, its settings, its device, its checkpoint.

    A run class (a dataclass) names the stateful parts it saves in :meth:`_parts` (``{"G":
    generator, "opt_G": optimizer, ...}``; None = absent) and the fields that change training in
    ``_settings``. :meth:`_record_settings` (called from ``__post_init__``) copies those fields,
    the precision and each optimizer's implementation (``{"opt_G": "Adam(fused)", ...}``, see
    :func:`optimizer_name`) into ``config``, so a checkpoint written with other settings is
    refused on resume with a message that names each difference.

    It also settles the networks' memory format once (each run's ``channels_last`` field; None =
    the networks' preference, :func:`prefers_channels_last`), recorded but not compared on resume.
    """

    _settings: tuple[str, ...] = ()
    _labels = {"G": "generator", "D": "discriminator"}
    channels_last: bool | None = None  # runs without such a field: the networks' preference

    def _parts(self) -> dict:
        raise NotImplementedError

    def _networks(self) -> list[nn.Module]:
        return [part for part in self._parts().values() if isinstance(part, nn.Module)]

    def _apply_memory_format(self) -> None:
        """Resolve ``channels_last`` (None: True when every network of the run prefers it, see
        :func:`prefers_channels_last`) and convert the networks' 4-D weights once; :func:`fit`
        converts each 4-D batch to match."""
        networks = self._networks()
        if self.channels_last is None:
            self.channels_last = all(prefers_channels_last(m) for m in networks)
        if self.channels_last:
            for m in networks:
                m.to(memory_format=torch.channels_last)  # in place: optimizers keep their params

    def _record_settings(self) -> None:
        if getattr(self, "precision", None) is None:
            self.precision = Precision(self.device)
        self._apply_memory_format()
        settings = {name: setting_name(getattr(self, name)) for name in self._settings}
        optimizers = {
            name: optimizer_name(part)
            for name, part in self._parts().items()
            if isinstance(part, torch.optim.Optimizer)
        }
        self.config = {
            **self.config,
            **settings,
            "precision": self.precision.mode,
            "optimizers": optimizers,
            "channels_last": self.channels_last,
        }

    @property
    def device(self) -> torch.device:
        """The device of the run's first network."""
        for part in self._parts().values():
            if isinstance(part, nn.Module):
                return next(part.parameters()).device
        raise ValueError(f"{type(self).__name__} has no network.")

    def state_dict(self) -> dict:
        parts = {name: part for name, part in self._parts().items() if part is not None}
        return {
            "step": self.step,
            "config": dict(self.config),
            **{name: part.state_dict() for name, part in parts.items()},
            "precision": self.precision.state_dict(),
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
        self.precision.load_state_dict(state["precision"])
        self.step, self.history = state["step"], list(state["history"])
        _set_rng_state(state["rng"])

    def free_training_state(self) -> None:
        """Free what only training uses: the optimizers' state and the networks' gradients.

        Adam keeps two numbers per parameter and the gradients one more, so a finished run held
        for its networks alone (an ablation keeps many) takes a quarter of the memory. A later
        ``fit`` with ``resume=True`` reloads the optimizer state from the checkpoint.
        """
        for part in self._parts().values():
            if isinstance(part, torch.optim.Optimizer):
                part.state.clear()
            elif isinstance(part, nn.Module):
                part.zero_grad(set_to_none=True)


# Settings ganlib records since a later version: a checkpoint written before has no such key and
# still resumes; one that has it must match.
_RECORDED_LATER = ("optimizers",)
# Recorded, never compared: the memory format changes the speed, not the numbers (beyond float
# rounding), so a run may resume in the other format (e.g. on another machine).
_NOT_COMPARED = ("channels_last",)


def _check_config(saved: dict, current: dict, source: str) -> None:
    absent = {k for k in _RECORDED_LATER if k not in saved} | set(_NOT_COMPARED)
    diff = sorted(k for k in (set(saved) | set(current)) - absent if saved.get(k) != current.get(k))
    if not diff:
        return
    detail = "; ".join(f"{k}: {saved.get(k)!r} there, {current.get(k)!r} now" for k in diff)
    raise ValueError(
        f"{source} was written by a run with other settings ({detail}), so resuming it would mix "
        f"two experiments. To continue it, use its settings again; to start fresh with the new "
        f"ones, delete {source} or use another checkpoint_dir."
    )


@dataclass
class SupervisedRun(RunState):
    """A network trained on a pixel loss alone, without a discriminator (SRCNN, SRResNet, DnCNN).

    Args:
        model: Maps an input batch to a prediction of the target batch.
        optimizer: Its optimizer.
        loss (str): ``"l1"`` or ``"mse"`` (see :data:`ganlib.losses.PIXEL_LOSSES`). Default: ``"l1"``.
        config: Plain settings of the run (model sizes, learning rate, data); a checkpoint written
            with different settings is refused on resume.
        precision: Mixed precision; default fp32 on CPU, bf16/fp16 on CUDA.
        scheduler: Optional learning-rate scheduler, stepped after every optimizer step.
        channels_last (bool | None): Store the model's weights and the batches in channels_last
            (NHWC) memory: same results to float rounding, faster convolutions where the model
            prefers it (:func:`prefers_channels_last`). Default: None, the model's preference
            (True for SRResNet); recorded resolved in ``config``.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss: str = "l1"
    config: dict = field(default_factory=dict)
    precision: Precision | None = None
    scheduler: object = None
    channels_last: bool | None = None
    step: int = 0
    history: list[dict] = field(default_factory=list)

    _settings = ("loss",)
    _labels = {"model": "model"}

    def __post_init__(self):
        if self.loss not in PIXEL_LOSSES:
            raise ValueError(f"loss must be one of {sorted(PIXEL_LOSSES)}, got {self.loss!r}.")
        self._record_settings()

    def _parts(self) -> dict:
        return {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler}


def supervised_step(run: SupervisedRun, batch) -> dict[str, torch.Tensor]:
    """One optimizer step on a pixel loss: ``batch = (target, input)``, minimise L(model(input), target)."""
    target, inputs = batch
    with run.precision.autocast():
        pred = run.model(inputs)
    # L = E |f(x) - y| (l1)  or  E (f(x) - y)^2 (mse), in float32
    loss = PIXEL_LOSSES[run.loss](pred.float(), target)
    run.precision.update(loss, run.optimizer, "model")
    if run.scheduler is not None:
        run.scheduler.step()
    return {"loss": loss.detach()}


# --- The loop ------------------------------------------------------------------------------------


def _call_hooks(hooks, event: str, *args) -> None:
    for hook in hooks:
        fn = getattr(hook, event, None)
        if fn is not None:
            fn(*args)


def _to_device(batch, device: torch.device, channels_last: bool = False):
    if isinstance(batch, torch.Tensor):
        return to_memory_format(batch.to(device, non_blocking=True), channels_last)
    if isinstance(batch, tuple | list):
        return type(batch)(_to_device(t, device, channels_last) for t in batch)
    raise ValueError(
        f"A batch must be a tensor or a tuple of tensors, got {type(batch).__name__}. Iterate "
        "over ganlib.data.Batches (or any iterator of tensors)."
    )


def _check_model_range(batch) -> None:
    """One-time check (it waits for the device) that a batch's first tensor is in [-1, 1]."""
    images = batch[0] if isinstance(batch, tuple | list) else batch
    if not images.is_floating_point():
        raise ValueError(
            f"The first tensor of each batch (the real or target images) must be float in "
            f"[-1, 1], got {images.dtype}. Convert uint8 images with "
            "ganlib.images.to_model_range, e.g. Batches(..., transform=to_model_range)."
        )
    lo, hi = (float(v) for v in images.aminmax())
    if lo < -1.01 or hi > 1.01:
        raise ValueError(
            f"The real/target images must be in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]. "
            "Convert uint8 or [0, 1] images with ganlib.images.to_model_range."
        )


def fit(
    run: RunState,
    step: Callable[[RunState, object], dict[str, torch.Tensor]],
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
    """Call ``step(run, batch)`` on batch after batch until ``run.step == steps``.

    Args:
        run: The networks, optimizers and state (e.g. :class:`ganlib.gan.GANRun`).
        step: One training iteration, ``step(run, batch) -> {name: detached scalar tensor}``,
            e.g. :func:`ganlib.gan.gan_step` or your own function.
        batches: An iterator of batches: a tensor, or a tuple of tensors whose first one is the
            real (or target) images in [-1, 1] (e.g. :class:`ganlib.data.Batches`). Each batch is
            moved to the run's device, its 4-D tensors in channels_last memory when the run's
            networks are (``run.channels_last``). With ``state_dict``/``load_state_dict`` methods, its
            position is checkpointed too.
        steps: Total number of iterations, counting from step 0 (a resumed run does the rest).
        hooks: Objects with optional ``on_log(run, record)``, ``on_checkpoint(run, path)`` and
            ``on_end(run)`` methods, for side effects only (plots, printing, saving).
        log_every: Read the statistics back from the device every this many steps. Default: 50.
        checkpoint_dir: Where ``latest.pt`` is written every ``checkpoint_every`` steps and at the
            end; None for no checkpoints.
        checkpoint_every: Steps between checkpoints. Default: 500.
        resume: Continue from ``checkpoint_dir/latest.pt`` when it exists.
        progress: Show a progress bar.
        d_wins_patience: Warn when D wins outright (``loss_D`` < 0.05) for this many logs in a row.

    Returns:
        ``run.history``: one dict per log with ``step``, the means of the step's statistics over
        the log window, and ``seconds``.

    Raises:
        TrainingDiverged: a statistic became NaN/inf; the last good checkpoint is kept on disk.
    """
    if log_every < 1 or checkpoint_every < 1:
        raise ValueError(
            f"log_every and checkpoint_every must be >= 1, got {log_every} and {checkpoint_every}."
        )
    if not callable(step):
        raise ValueError(
            f"step must be a function step(run, batch) -> dict, got {type(step).__name__}. "
            "Did you pass the batches or the number of steps in its place? The order is "
            "fit(run, step, batches, steps)."
        )
    if run.device.type == "cuda":  # fixed shapes: let cuDNN pick its fastest kernels once
        torch.backends.cudnn.benchmark = True
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

    saved_step, d_wins = None, 0

    def save() -> None:
        nonlocal saved_step
        state = run.state_dict()
        if hasattr(batches, "state_dict"):
            state["batches"] = batches.state_dict()
        save_checkpoint(ckpt, state)
        saved_step = run.step
        _call_hooks(hooks, "on_checkpoint", run, ckpt)

    def log(sums: dict, count: int, seconds: float) -> dict:
        nonlocal d_wins
        # The one host synchronisation per log window.
        record = {"step": run.step, **{k: float(v) / count for k, v in sums.items()}}
        record["seconds"] = seconds
        bad = [k for k, v in record.items() if not math.isfinite(v)]
        if bad:
            where = f" The last good checkpoint is {ckpt}." if ckpt and ckpt.is_file() else ""
            raise TrainingDiverged(
                f"{', '.join(bad)} became NaN/inf by step {run.step}.{where} Try a lower "
                "learning rate, check the data for NaN pixels, or use precision='fp32'."
            )
        run.history.append(record)
        d_wins = d_wins + 1 if record.get("loss_D", 1.0) < 0.05 else 0
        if d_wins == d_wins_patience:
            warnings.warn(
                f"The discriminator has won outright for {d_wins} logs in a row (loss_D = "
                f"{record['loss_D']:.4f} at step {run.step}): G gets almost no useful gradient. "
                "Lower D's learning rate, use the non-saturating loss, or restart from an "
                "earlier checkpoint.",
                stacklevel=3,
            )
        return record

    sums: dict[str, torch.Tensor] = {}
    count, t0, checked = 0, time.perf_counter(), False
    name = getattr(step, "__name__", "training")
    bar = tqdm(total=steps, initial=run.step, disable=not progress, desc=name)
    try:
        while run.step < steps:
            # 4-D batches in the networks' memory format (RunState.channels_last)
            batch = _to_device(next(batches), run.device, bool(run.channels_last))
            if not checked:
                _check_model_range(batch)
                checked = True
            stats = step(run, batch)
            run.step += 1
            for k, v in stats.items():
                sums[k] = sums[k] + v.detach() if k in sums else v.detach().clone()
            count += 1
            bar.update(1)
            at_checkpoint = ckpt is not None and run.step % checkpoint_every == 0
            if count and (run.step % log_every == 0 or at_checkpoint or run.step == steps):
                record = log(sums, count, time.perf_counter() - t0)  # NaN check before a save
                sums, count, t0 = {}, 0, time.perf_counter()
                bar.set_postfix(
                    {k: f"{v:.3g}" for k, v in record.items() if k not in ("step", "seconds")}
                )
                _call_hooks(hooks, "on_log", run, record)
            if at_checkpoint:
                save()
        if ckpt is not None and saved_step != run.step:
            save()
    finally:
        bar.close()
    _call_hooks(hooks, "on_end", run)
    return run.history
