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


def read_upload(files) -> tuple[str, torch.Tensor]:
    """The first file of a ``FileUpload`` value as ``(name, uint8 RGB (3, H, W))``.

    ipywidgets 8 gives a tuple of ``{"name", "content", ...}`` dicts; 7.x (Colab's) a dict
    ``{filename: {"metadata": {"name", ...}, "content": bytes}}``. Grayscale images are repeated
    to three channels and an alpha channel is dropped; anything unreadable raises ValueError.
    """
    from PIL import Image

    item = files[0] if isinstance(files, list | tuple) else next(iter(files.values()))
    get = (
        item.get
        if isinstance(item, dict)
        else lambda key, default=None: getattr(item, key, default)
    )
    name = get("name") or (get("metadata") or {}).get("name") or "upload"
    try:
        with Image.open(io.BytesIO(bytes(get("content")))) as im:
            rgb = np.asarray(im.convert("RGB"))  # grayscale repeated, alpha dropped
    except Exception as err:  # noqa: BLE001 - any unreadable upload gets the same message
        raise ValueError(f"{name} is not a readable image: {err}") from None
    return name, torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()


def translation_widget(
    models: dict, images: dict[str, torch.Tensor], multiple: int, max_side: int = 256
):
    """Choose (or upload) a photo and a model, see source | translation side by side.

    Args:
        models: ``{label: (G, task)}``; ``task`` tells how the source is made from the photo.
        images: ``{name: uint8 RGB (3, H, W)}`` offered in the dropdown.
        multiple: The generators' size multiple (2^depth).
        max_side: Larger photos are shrunk to this longer side first (CPU time). Default: 256.

    Returns:
        An ``ipywidgets.VBox``; ``box.image_menu``, ``box.model_menu``, ``box.upload``,
        ``box.output`` and ``box.render(name, label)`` are its parts.
    """
    import ipywidgets as widgets
    import torch.nn.functional as F
    from PIL import Image

    from ganlib.translation import as_rgb, make_source, translate_image

    photos_ = dict(images)

    def shrink(img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[1:]
        scale = max_side / max(h, w)
        if scale >= 1:
            return img
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        return F.interpolate(img[None].float(), size=size, mode="area")[0].round().byte()

    def png(img: torch.Tensor) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, format="png")
        return buf.getvalue()

    def render(name: str, label: str) -> bytes:
        G, task = models[label]
        img = shrink(photos_[name])
        src = as_rgb(make_source(img, task)[None])[0] if task != "edges" else img
        out = translate_image(G, img, task, multiple)
        return png(
            torch.cat([src, torch.full((3, img.shape[1], 4), 255, dtype=torch.uint8), out], 2)
        )

    image_menu = widgets.Dropdown(options=list(photos_), description="image")
    model_menu = widgets.Dropdown(options=list(models), description="model")
    upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload")
    output = widgets.Image(format="png")
    message = widgets.Label()

    def update(_=None):
        try:
            output.value = render(image_menu.value, model_menu.value)
            message.value = "source | translation"
        except ValueError as err:  # a bad upload: say why, keep the widget alive
            message.value = f"cannot translate this image: {err}"

    def on_upload(change):
        if not change["new"]:
            return
        try:
            name, img = read_upload(change["new"])
        except ValueError as err:
            message.value = str(err)
            return
        photos_[name] = img
        image_menu.options = list(photos_)
        image_menu.value = name

    image_menu.observe(update, names="value")
    model_menu.observe(update, names="value")
    upload.observe(on_upload, names="value")
    update()
    box = widgets.VBox([widgets.HBox([image_menu, model_menu, upload]), message, output])
    box.image_menu, box.model_menu, box.upload, box.output, box.message = (
        image_menu,
        model_menu,
        upload,
        output,
        message,
    )
    box.render = render
    return box
