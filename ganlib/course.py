"""Run the course's notebooks headless (papermill) and print a table of their key figures.

``make course`` and ``python -m ganlib course`` call :func:`run_course`. Each run writes the
executed notebooks, their recorded figures and the table to ``runs/<timestamp>/``.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ganlib.env import resolve_profile

REPO = Path(__file__).resolve().parents[1]


@dataclass
class NotebookResult:
    name: str
    status: str  # "ok" | "failed"
    seconds: float
    figures: dict = field(default_factory=dict)
    error: str = ""
    output: Path | None = None


def find_notebooks(notebooks_dir: Path | None = None, only: list[str] | None = None) -> list[Path]:
    """The course notebooks (``NN_name.ipynb``) in order, optionally only those matching ``only``
    (a number like ``01`` or part of a name)."""
    notebooks_dir = Path(notebooks_dir or REPO / "notebooks")
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(
            f"No notebooks folder at {notebooks_dir}; run from the repository root."
        )
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        picked = [p for p in found if any(p.name.startswith(o) or o in p.stem for o in only)]
        if not picked:
            names = ", ".join(p.stem for p in found)
            raise ValueError(f"No notebook matches {only}; the course has: {names}.")
        found = picked
    return found


def parse_params(items: list[str] | None) -> dict:
    """``["mnist_split=test", "dcgan_steps=200"]`` -> ``{"mnist_split": "test", "dcgan_steps": 200}``."""
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"Parameters look like NAME=VALUE (e.g. mnist_split=test), got {item!r}."
            )
        try:
            params[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key.strip()] = value
    return params


@contextlib.contextmanager
def notebook_environment(profile: str, out_dir: Path, **extra: str):
    """Set ``GANLIB_PROFILE``, ``GANLIB_RESULTS_DIR`` and any ``extra`` variables for kernels
    started inside; restore after."""
    env = {"GANLIB_PROFILE": profile, "GANLIB_RESULTS_DIR": str(out_dir), **extra}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_notebook(
    notebook: Path,
    out_dir: Path,
    profile: str,
    params: dict | None = None,
    timeout: int | None = None,
) -> NotebookResult:
    """Execute one notebook with papermill under ``profile``; never raises for a failing cell."""
    try:
        import papermill as pm
    except ImportError:
        raise ImportError(
            "Running the course's notebooks headless needs papermill, which comes with the 'lab' "
            "extra: run `make setup`, or `pip install -e '.[lab]'` in the repository."
        ) from None

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / notebook.name
    params = {"checkpoint_root": str(out_dir / "checkpoints"), **(params or {})}
    start = time.perf_counter()
    status, error = "ok", ""
    try:
        with notebook_environment(profile, out_dir):
            pm.execute_notebook(
                str(notebook),
                str(output),
                parameters=params,
                cwd=str(notebook.parent),
                kernel_name="python3",
                progress_bar=False,
                execution_timeout=timeout,
            )
    except pm.PapermillExecutionError as err:
        first_line = str(err.evalue).strip().splitlines()[0][:300] if err.evalue else ""
        status, error = "failed", f"cell {err.exec_count}: {err.ename}: {first_line}"
    except Exception as err:  # kernel died, timeout, ...: report, keep going with the next one
        status, error = "failed", f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    figures_file = out_dir / f"{notebook.stem}.json"
    figures = json.loads(figures_file.read_text())["figures"] if figures_file.is_file() else {}
    return NotebookResult(notebook.stem, status, seconds, figures, error, output)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def results_table(results: list[NotebookResult], profile: str) -> str:
    """A Markdown table: one row per notebook with status, minutes and key figures."""
    lines = [
        f"Course results (profile {profile})",
        "",
        "| notebook | status | minutes | key figures |",
        "|---|---|---|---|",
    ]
    for r in results:
        figures = ", ".join(f"{k}={_fmt(v)}" for k, v in r.figures.items()) or "-"
        if r.error:
            figures = f"{figures}; ERROR {r.error}"
        lines.append(f"| {r.name} | {r.status} | {r.seconds / 60:.1f} | {figures} |")
    return "\n".join(lines)


def run_course(
    profile: str | None = None,
    only: list[str] | None = None,
    params: dict | None = None,
    notebooks_dir: Path | None = None,
    runs_dir: Path | None = None,
    timeout: int | None = None,
) -> list[NotebookResult]:
    """Execute the notebooks, write ``runs/<timestamp>/`` and print the results table."""
    profile = resolve_profile(profile)
    notebooks = find_notebooks(notebooks_dir, only)
    out_dir = Path(runs_dir or REPO / "runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    print(f"Running {len(notebooks)} notebook(s), profile {profile}, into {out_dir}")
    results = []
    for nb in notebooks:
        print(f"  {nb.name} ...", flush=True)
        r = run_notebook(nb, out_dir, profile, params, timeout)
        print(f"  {nb.name}: {r.status} in {r.seconds / 60:.1f} min {r.error}", flush=True)
        results.append(r)
    table = results_table(results, profile)
    (out_dir / "results.md").write_text(table + "\n")
    print()
    print(table)
    return results
