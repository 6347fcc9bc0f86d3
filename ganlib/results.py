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


_OPS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}


def check(figures: dict, thresholds: dict, profile: str | None = None) -> list[dict]:
    """Check a notebook's figures against per-profile thresholds: print a table, fail loudly.

    Args:
        figures: The notebook's figures, e.g. what :func:`record` returned.
        thresholds: ``{name: (op, limits)}`` with ``op`` one of ``>=``, ``>``, ``<=``, ``<`` and
            ``limits`` either one value for every profile or ``{profile: value}`` (a profile
            missing from it is not checked). A value may be a number or a function of the figures
            (e.g. ``lambda f: f["identity_psnr"] + 1`` for "at least 1 dB above doing nothing").
        profile: Default: the current profile (``GANLIB_PROFILE``).

    Returns:
        One row per threshold: name, value, op, limit, passed (None = not checked here).

    Raises:
        AssertionError: naming every figure that missed its threshold, with value and limit.
    """
    profile = profile or resolve_profile()
    rows = []
    for name, (op, limits) in thresholds.items():
        if op not in _OPS:
            raise ValueError(f"{name}: op must be one of {', '.join(_OPS)}, got {op!r}.")
        if name not in figures:
            raise KeyError(f"{name} is not among the recorded figures: {sorted(figures)}.")
        limit = limits.get(profile) if isinstance(limits, dict) else limits
        if callable(limit):
            limit = limit(figures)
        value = figures[name]
        passed = None if limit is None else bool(_OPS[op](value, limit))
        rows.append({"name": name, "value": value, "op": op, "limit": limit, "passed": passed})
    width = max([len(r["name"]) for r in rows] + [6])
    print(f"{'figure':<{width}}  {'value':>10}  need        {profile}")
    for r in rows:
        need = "-" if r["limit"] is None else f"{r['op']} {r['limit']:.4g}"
        verdict = {True: "pass", False: "FAIL", None: "not checked"}[r["passed"]]
        print(f"{r['name']:<{width}}  {r['value']:>10.4g}  {need:<10}  {verdict}")
    failed = [r for r in rows if r["passed"] is False]
    if failed:
        raise AssertionError(
            f"{len(failed)} figure(s) missed the {profile} profile's threshold: "
            + "; ".join(
                f"{r['name']} = {r['value']:.4g}, needs {r['op']} {r['limit']:.4g}" for r in failed
            )
        )
    print(f"All {sum(r['passed'] is True for r in rows)} checks passed for profile {profile}.")
    return rows
