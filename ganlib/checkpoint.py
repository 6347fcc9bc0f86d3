"""Checkpoint files: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors, numbers and strings. Writing goes to a temporary file
in the same folder, which is flushed to disk and then renamed over the old file: a crash at any
moment leaves either the old checkpoint or the new one, never half of one. Reading never runs
pickled code, so a checkpoint from an untrusted source cannot execute anything.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import torch

FORMAT = "ganlib-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, refusing anything that runs code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}. Check the path or train first.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err) and "GLOBAL" not in str(err):
            raise ValueError(
                f"{path} is not a readable checkpoint (corrupt or truncated?)."
            ) from None
        raise ValueError(
            f"Refusing to load {path}: it contains objects other than tensors and plain data, "
            f"which could run code when unpickled ({_refused_global(err)}). "
            "Only load checkpoints you made with ganlib or from a source you trust."
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(
            f"{path} is not a readable checkpoint (corrupt or truncated?): {err}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a ganlib checkpoint (no '{FORMAT}' marker).")
    if state.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {state.get('format_version')}, this ganlib "
            f"reads version {FORMAT_VERSION}. Retrain, or use the ganlib version that wrote it."
        )
    return state


def _refused_global(err: Exception) -> str:
    for line in str(err).splitlines():
        if "Unsupported global" in line:
            return line.strip()
    return "a pickled global"


def load_module_state(module: torch.nn.Module, state_dict: dict, *, name: str, source: str) -> None:
    """``module.load_state_dict`` with an error that names the mismatch in plain words."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as err:
        raise ValueError(
            f"The {name} in {source} does not match this {type(module).__name__}: it was saved "
            f"from a different architecture or size. Build the network with the same arguments "
            f"as when the checkpoint was written.\nDetails: {str(err).splitlines()[0]}"
        ) from None
