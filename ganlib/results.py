"""Key figures of a notebook run, recorded for the course's results table.

A notebook calls :func:`record` with its figures. When the course runner executes it,
``GANLIB_RESULTS_DIR`` is set and the figures land in ``<dir>/<notebook>.json`` beside the
executed copy; interactively, :func:`record` just returns them.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from ganlib.env import resolve_profile


def _plain(name: str, value):
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | float):
        return value
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(name, v) for v in value]
    raise ValueError(
        f"Result {name!r} must be a number, string or list, got {type(value).__name__}."
    )


def record(notebook: str, **figures) -> dict:
    """Record ``figures`` (numbers or short strings) for ``notebook``, e.g. ``record("01", fid=3.2)``.

    Repeated calls add to the same record. Returns the figures.
    """
    figures = {k: _plain(k, v) for k, v in figures.items()}
    out_dir = os.environ.get("GANLIB_RESULTS_DIR")
    if out_dir:
        path = Path(out_dir) / f"{notebook}.json"
        data = json.loads(path.read_text()) if path.is_file() else {"notebook": notebook}
        data["profile"] = resolve_profile()
        data.setdefault("figures", {}).update(figures)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(
                data,
                f,
                indent=2,
                default=lambda v: None if isinstance(v, float) and math.isnan(v) else v,
            )
        os.replace(tmp, path)
    return figures
