"""Sample grids, the live training view and the latent-interpolation widget.

Everything here takes images in the model range [-1, 1] and converts them for display.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import torch
from torchvision.utils import make_grid

from ganlib.images import to_unit_range


def grid_image(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """A (H, W) or (H, W, 3) float array in [0, 1] tiling ``images`` (B, C, H, W) in [-1, 1]."""
    grid = make_grid(
        to_unit_range(images.detach().cpu()), nrow=nrow, padding=padding, pad_value=1.0
    )
    grid = grid.permute(1, 2, 0).numpy()
    return grid[..., 0] if images.shape[1] == 1 else grid


def show_grid(images: torch.Tensor, title: str = "", nrow: int = 8, ax=None, size: float = 4.0):
    """Plot a grid of images in [-1, 1]; returns the matplotlib Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(grid_image(images, nrow=nrow), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
    return ax


def figure_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (no figure pile-up in loops)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def plot_history(history: list[dict], axes=None):
    """Losses and D's outputs over training: the two curves to read while a GAN trains.

    Left: every logged ``loss*``. Right: D's outputs, as probabilities against the 0.5 of a D that
    cannot tell (``D_x``, ``D_G_z``: BCE runs), or as raw scores (``score_real``, ``score_fake``:
    hinge and least-squares runs, where the outputs are no probabilities). A run without D
    (supervised) leaves the right panel empty.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3))
    steps = [r["step"] for r in history]
    ax_loss, ax_d = axes
    keys = [k for k in (history[0] if history else {}) if k.startswith("loss")]
    for k in keys:
        ax_loss.plot(steps, [r[k] for r in history], label=k.replace("_", " "))
    ax_loss.set_xlabel("step")
    if keys:
        ax_loss.legend()
    ax_loss.set_title("losses")
    last = history[-1] if history else {}
    if "D_x" in last:
        ax_d.plot(steps, [r["D_x"] for r in history], label="D(x), real")
        ax_d.plot(steps, [r["D_G_z"] for r in history], label="D(G(z)), fake")
        ax_d.axhline(0.5, color="gray", lw=0.8, ls="--")
        ax_d.set_ylim(0, 1)
        ax_d.set_title("discriminator outputs (probabilities)")
    elif "score_real" in last:
        ax_d.plot(steps, [r["score_real"] for r in history], label="D's score, real")
        ax_d.plot(steps, [r["score_fake"] for r in history], label="D's score, fake")
        ax_d.set_title("discriminator outputs (raw scores)")
    else:
        ax_d.set_axis_off()
        return axes
    ax_d.set_xlabel("step")
    ax_d.legend()
    return axes


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class LiveView:
    """A ``fit`` hook: losses, D's outputs, and G's output for fixed inputs, redrawn in place.

    Args:
        fixed: G's inputs shown every time (so you watch the *same* samples improve): noise
            vectors, fixed LR images for super-resolution, or a tuple ``(z, labels)`` for a
            conditional G; the grid shows ``run.sample(*fixed)``.
        every: Redraw every this many logs. Default: 1.
        title: Figure title.
        sample_title: Title of the sample grid. Default: "fixed noise".
        nrow: Images per row in the grid. Default: 8.
    """

    def __init__(
        self,
        fixed: torch.Tensor | tuple[torch.Tensor, ...],
        every: int = 1,
        title: str = "training",
        sample_title: str = "fixed noise",
        nrow: int = 8,
    ):
        self.fixed = fixed if isinstance(fixed, tuple | list) else (fixed,)
        self.every, self.title = every, title
        self.sample_title, self.nrow = sample_title, nrow
        self.handle = None
        self.logs = 0
        self.enabled = _in_notebook()

    def draw(self, run) -> bytes:
        fig, axes = plt.subplots(
            1, 3, figsize=(13, 3.4), gridspec_kw={"width_ratios": [1.2, 1.2, 1]}
        )
        plot_history(run.history, axes[:2])
        samples = run.sample(*self.fixed)
        show_grid(samples, f"{self.sample_title}, step {run.step}", nrow=self.nrow, ax=axes[2])
        fig.suptitle(self.title)
        return figure_png(fig)

    def on_log(self, run, record) -> None:
        self.logs += 1
        if self.enabled and (self.logs - 1) % self.every == 0:
            self._show(run)

    def on_end(self, run) -> None:
        if self.enabled and run.history:
            self._show(run)

    def _show(self, run) -> None:
        from IPython.display import Image, display

        image = Image(data=self.draw(run), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, t: float, spherical: bool = True):
    """A point between two noise vectors.

    Linear: z = (1 - t) z0 + t z1. Spherical (slerp, the default) keeps the norm typical of a
    Gaussian sample: z = sin((1-t)w)/sin(w) z0 + sin(t w)/sin(w) z1, with cos(w) = <z0, z1>/(|z0||z1|).
    """
    if not spherical:
        return (1 - t) * z0 + t * z1
    cos = torch.sum(z0 * z1, dim=-1, keepdim=True) / (
        z0.norm(dim=-1, keepdim=True) * z1.norm(dim=-1, keepdim=True)
    )
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def interpolation_widget(run, z0: torch.Tensor, z1: torch.Tensor, frames: int = 8):
    """A slider t in [0, 1] that morphs G(z0) into G(z1), with a strip of the whole path below.

    Args:
        run: A :class:`ganlib.gan.GANRun` (its generator draws the images).
        z0, z1: Noise vectors of shape (n, z_dim): n rows are interpolated side by side.
        frames: Images in the static strip.

    Returns:
        An ``ipywidgets.VBox``; ``box.slider`` and ``box.image`` are its parts.
    """
    import ipywidgets as widgets

    def render(t: float) -> bytes:
        images = run.sample(interpolate_latents(z0, z1, t))
        fig, ax = plt.subplots(figsize=(1.2 * len(images), 1.4))
        show_grid(images, f"t = {t:.2f}", nrow=len(images), ax=ax)
        return figure_png(fig)

    slider = widgets.FloatSlider(
        value=0.0, min=0.0, max=1.0, step=0.05, description="t", continuous_update=True
    )
    image = widgets.Image(value=render(0.0), format="png")
    slider.observe(lambda change: setattr(image, "value", render(change["new"])), names="value")
    ts = torch.linspace(0, 1, frames)
    strip = torch.cat([run.sample(interpolate_latents(z0[:1], z1[:1], float(t))) for t in ts])
    fig, ax = plt.subplots(figsize=(1.2 * frames, 1.4))
    show_grid(strip, "the whole path for the first row", nrow=frames, ax=ax)
    box = widgets.VBox([slider, image, widgets.Image(value=figure_png(fig), format="png")])
    box.slider, box.image = slider, image
    return box


def before_after_widget(
    pairs: dict, labels: tuple[str, str] = ("before", "after"), width: int = 480
):
    """Compare two versions of an image with a wipe: left of the line ``before``, right ``after``.

    Args:
        pairs: ``{name: (before, after)}`` with uint8 tensors (3, H, W) of equal shape.
        labels: Names of the two versions, shown in the title.
        width: Display width in pixels.

    Returns:
        An ``ipywidgets.VBox``; ``box.dropdown``, ``box.slider`` and ``box.image`` are its parts.
    """
    import ipywidgets as widgets
    from PIL import Image

    for name, (a, b) in pairs.items():
        if a.shape != b.shape or a.dtype != torch.uint8 or b.dtype != torch.uint8:
            raise ValueError(
                f"{name}: both versions must be uint8 (3, H, W) of one shape, got {a.shape}, {b.shape}."
            )

    def render(name: str, split: float) -> bytes:
        a, b = pairs[name]
        x = int(round(split * a.shape[2]))
        mixed = torch.cat([a[:, :, :x], b[:, :, x:]], dim=2).clone()
        if 0 < x < a.shape[2]:
            mixed[:, :, max(x - 1, 0)] = 255  # the wipe line
        buf = io.BytesIO()
        Image.fromarray(mixed.permute(1, 2, 0).numpy()).save(buf, format="png")
        return buf.getvalue()

    names = list(pairs)
    dropdown = widgets.Dropdown(options=names, value=names[0], description="image")
    slider = widgets.FloatSlider(
        value=0.5, min=0.0, max=1.0, step=0.01, description=f"{labels[0]} | {labels[1]}"
    )
    image = widgets.Image(value=render(names[0], 0.5), format="png", width=width)

    def update(_=None):
        image.value = render(dropdown.value, slider.value)

    dropdown.observe(update, names="value")
    slider.observe(update, names="value")
    box = widgets.VBox([widgets.HBox([dropdown, slider]), image])
    box.dropdown, box.slider, box.image = dropdown, slider, image
    return box
