"""Run the notebooks in the ``full`` profile with a few training steps: the full-size code paths
(image sizes, widths, depths, sample counts, memory) without the full training time.

    python scripts/full_dry_run.py                 # all notebooks
    python scripts/full_dry_run.py --only 03 05    # some

Each notebook runs with ``GANLIB_PROFILE=full`` and the parameters of ``STEPS`` below (training
steps only; everything else keeps its full value), through ganlib.course.run_notebook, into
``runs/full-dry-run/<time>/``. Its check cell, the last code cell, asserts the full profile's
quality targets, which a few steps cannot reach: a notebook passes when every cell before the
check cell ran. Offline (the default), ``mnist_split=test`` replaces the 60,000-digit download.
Each notebook runs in a process of its own, which prints its minutes and its kernel's peak
resident memory (host RAM; on a GPU the networks and activations are in GPU memory instead).

Measured on the 2-core CPU machine, 2026-11-22: 01 1.7-3.1 min, 02 1.5-1.7, 03 ~11, 04 6.7, 05 9.2;
peak RSS 13.1-13.5 GB for 05 (12,000 training pairs of 256x256 crops, the CycleGAN sets, the networks
on the CPU), at most 4.7 GB for the others.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ganlib.course import run_notebook  # noqa: E402

STEPS = {  # notebook -> the parameters that make its training short
    "01_gan_basics": dict(mlp_steps=3, dcgan_steps=3, log_every=1),
    "02_super_resolution": dict(srcnn_steps=2, srresnet_steps=2, srgan_steps=2, log_every=1),
    "03_augmentation_restoration": dict(
        cgan_steps=2, clf_steps=2, denoise_steps=2, inpaint_steps=2, log_every=1
    ),
    "04_resnet_generators": dict(
        gan_steps=3, sngan_steps=2, dn_steps=2, dn_eval_every=1, cifar_steps=2, log_every=1
    ),
    "05_image_to_image": dict(steps=2, cyc_steps=2, log_every=1),
}
OFFLINE = dict(mnist_split="test")  # for the notebooks that have the parameter (01, 04)


def dry_run(name: str, out_dir: Path, online: bool) -> bool:
    """Execute one notebook; True when everything but (at most) its check cell ran."""
    notebook = REPO / "notebooks" / f"{name}.ipynb"
    params = dict(STEPS[name], resume=False)
    if not online and "mnist_split" in notebook.read_text():
        params |= OFFLINE
    result = run_notebook(notebook, out_dir, "full", params)
    if result.status == "ok":
        ok, verdict = True, "passed, check cell included"
    else:
        cells = [
            c for c in nbformat.read(result.output, as_version=4).cells if c.cell_type == "code"
        ]
        failed = [c for c in cells if any(o.output_type == "error" for o in c.get("outputs", []))]
        ok = bool(failed) and failed[-1] is cells[-1]
        verdict = (
            "passed up to the check cell, which failed: " if ok else "FAILED: "
        ) + result.error
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # Linux: KiB
    print(
        f"{name}: {verdict}\n    {result.seconds / 60:.1f} min, kernel peak RSS {peak_gib:.1f} GiB",
        flush=True,
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="notebook numbers or names, e.g. --only 03 05")
    parser.add_argument("--online", action="store_true", help="use the full MNIST download")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one notebook, this process
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return 0 if dry_run(args.one, Path(args.out), args.online) else 1
    names = [n for n in STEPS if not args.only or any(n.startswith(o) for o in args.only)]
    if not names:
        parser.error(f"no notebook matches {args.only}; the course has {', '.join(STEPS)}")
    out_dir = REPO / "runs" / "full-dry-run" / datetime.now().strftime("%Y%m%d-%H%M%S")
    print(f"full profile, training cut to a few steps: {', '.join(names)} -> {out_dir}", flush=True)
    failed = 0
    for name in names:  # a process each, so each peak RSS is that notebook's own
        cmd = [sys.executable, __file__, "--one", name, "--out", str(out_dir)]
        failed += subprocess.run(cmd + (["--online"] if args.online else [])).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
