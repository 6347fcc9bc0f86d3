"""Every GPU figure the course still lacks, in one short run (issue 17).

    python scripts/gpu_check.py --device cuda                # <= 8 minutes on one GPU
    python scripts/gpu_check.py --device cpu --tiny          # the same code paths in seconds

Writes ``<out>/gpu_check.json`` and ``<out>/gpu_check.md`` (default ``benchmarks/gpu_check``)
after every section, so a run cut short keeps what it measured. Sections run in priority order;
each first checks the time left before the ``--minutes`` deadline and is recorded as
``"skipped: deadline"`` when it needs more (so are the models inside a section), and one that
runs past the deadline is stopped (SIGALRM). An exception is recorded as ``"error: ..."`` and the
next section runs.

1. environment: torch, CUDA and cuDNN versions, GPU, compute capability, native bf16.
2. throughput: ``benchmarks/train_throughput.py``'s interleaved timing of the tutorial-style
   reference loop and ganlib in fp32 and in bf16 autocast (cudnn.benchmark on in both), for
   DCGAN-MNIST at batch 64 and 128, pytorch/examples' 64x64 DCGAN at batch 64, SRResNet (16 blocks, width 64, patch 96, batch 16) and
   pix2pix (U-Net-256, batch 1): ms/step and the ratio to the reference ("speedup").
3. compile: ganlib's DCGAN with ``torch.compile``'d G and D (mode "reduce-overhead" on CUDA,
   torch's default on CPU) beside eager ganlib and the reference, with the compile time.
4. profile: ``torch.profiler`` over DCGAN ganlib steps: CUDA kernels (and memcpy/memset) per step
   and GPU-busy vs wall time (on CPU: CPU ops per step; busy = their self CPU time). The profiled
   wall time includes the profiler's overhead; the unprofiled one is beside it.
5. memory: ``torch.cuda.max_memory_allocated`` over 2 steps of each model and loop, reset in
   between (null on CPU, where RSS would be this process's lifetime peak).
6. sr_tiled: ``ganlib.sr.upscale_tiled`` with the paper's SRResNet on LR images of side 256 to
   2048 (tile 128): peak CUDA memory and seconds.
7. estimates: 100 steps of each notebook's main training in the full profile, on random images
   of the right shapes (timing does not depend on the pixels); estimate = ms/step x the steps
   and runs that the notebook's parameters cell sets for ``full``. Training only: evaluation and
   the notebook's other models are not counted.
8. cuda_graph: a prototype that captures one whole ganlib ``gan_step`` (D step and G step:
   forward, backward, Adam) in a CUDA graph and replays it, beside eager; "needs CUDA" on CPU.

``--tiny``: ``SIZES["tiny"]`` networks, 3-step slices, LR sides 32 and 64, torch.compile with
the "aot_eager" backend (inductor's C++ code generation alone takes ~40 s on 2 cores). For
tests: its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import ast
import gc
import json
import math
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import sr_memory  # noqa: E402
from benchmarks import train_throughput as tt  # noqa: E402
from ganlib.cifar import sngan_run  # noqa: E402
from ganlib.conditional import ConditionalGANRun, conditional_gan_step  # noqa: E402
from ganlib.data import Batches  # noqa: E402
from ganlib.gan import EMAGANRun, GANRun, ema_gan_step, gan_step  # noqa: E402
from ganlib.models import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from ganlib.models.conditional import ConditionalDiscriminator, ConditionalGenerator  # noqa: E402
from ganlib.models.pix2pix import PatchDiscriminator, UNetGenerator  # noqa: E402
from ganlib.models.sr import SRResNet  # noqa: E402
from ganlib.pix2pix import Pix2PixRun, pix2pix_step  # noqa: E402
from ganlib.precision import Precision  # noqa: E402
from ganlib.train import SupervisedRun, adam, fit, supervised_step  # noqa: E402

SKIPPED = "skipped: deadline"
NEEDS_CUDA = "needs CUDA"
# Sections 2 and 5: case -> (benchmark model, batch size, batch size with --tiny)
CASES = {
    "dcgan_b64": ("dcgan", 64, 8),
    "dcgan_b128": ("dcgan", 128, 16),
    "dcgan64_b64": ("dcgan64", 64, 4),  # pytorch/examples' 64x64 five-layer DCGAN
    "srresnet": ("srresnet", 16, 2),
    "pix2pix": ("pix2pix", 1, 1),
}
# (warm-up steps, steps per window, rounds) on a GPU; elsewhere the benchmark's own schedules
GPU_SCHEDULE = {
    "dcgan": (20, 50, 5),
    "dcgan64": (10, 25, 5),
    "srresnet": (5, 20, 5),
    "pix2pix": (5, 20, 5),
}
LOOPS = ("reference", "ganlib, fp32", "ganlib + bf16 autocast")
KEEP = ("ms_per_step", "ms_min", "ms_max", "images_per_s", "speedup", "compile_s", "params_changed")


@dataclass
class Check:
    device: torch.device
    tiny: bool
    deadline: float  # time.monotonic() at which to stop
    _data: dict = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def profile(self) -> str:  # the benchmark's sizes; "quick" has the papers' architectures
        return "tiny" if self.tiny else "quick"

    def enough(self, seconds: float) -> bool:
        return seconds == 0 or self.deadline - time.monotonic() >= seconds

    def size(self, case: str) -> dict:
        model, batch, tiny_batch = CASES[case]
        return {**tt.SIZES[self.profile][model], "batch": tiny_batch if self.tiny else batch}

    def data(self, model: str):
        if model not in self._data:
            self._data[model] = tt.load_data(model, tt.SIZES[self.profile][model])
        return self._data[model]

    def runner(self, case: str, loop: str) -> tt.Runner:
        model = CASES[case][0]
        workers = 0 if self.tiny else 2  # the reference's DataLoader workers
        return tt.make_runner(
            model, loop, self.data(model), self.size(case), 0, self.device, workers
        )

    def sync(self) -> None:
        tt._sync(self.device)


def attempt(fn, *args):
    """fn(*args), or the exception as a one-line string (its traceback goes to stderr)."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - one failure must not stop the run
        traceback.print_exc()
        return f"error: {type(e).__name__}: {e}"[:600]


# --- 1-4: environment, throughput, torch.compile, profiler ---------------------------------------


def environment(c: Check) -> dict:
    env = tt.environment(c.device) | {"cuda": torch.version.cuda}
    keys = ("gpu", "cudnn", "capability", "bf16_native", "gpu_memory_gib")
    if not c.cuda:
        return env | dict.fromkeys(keys)
    return env | {
        "cudnn": torch.backends.cudnn.version(),
        "capability": "{}.{}".format(*torch.cuda.get_device_capability(c.device)),
        "bf16_native": torch.cuda.is_bf16_supported(including_emulation=False),
        "gpu_memory_gib": torch.cuda.get_device_properties(c.device).total_memory / 2**30,
    }


def _bench(c: Check, case: str, variants: list[str]) -> dict:
    model = CASES[case][0]
    opts = dict(size=c.size(case), schedule=GPU_SCHEDULE[model] if c.cuda else None)
    res = tt.bench_model(model, c.profile, variants, c.device, 0, 0 if c.tiny else 2, **opts)
    size = ", ".join(f"{k} {v}" for k, v in res["size"].items())
    sched = "warm-up {warmup}, {rounds} x {window} steps".format(**res["schedule"])
    rows = {}
    for name, row in res["rows"].items():
        rows[name] = {"size": size, "schedule": sched} | {k: row[k] for k in KEEP if k in row}
    return rows


def throughput(c: Check) -> dict:
    out = {}
    for case in CASES:
        if not c.enough(30):
            out[case] = SKIPPED
            continue
        out[case] = attempt(_bench, c, case, list(LOOPS[1:3] if c.cuda else LOOPS[1:2]))
        if not c.cuda and isinstance(out[case], dict):
            out[case][LOOPS[2]] = NEEDS_CUDA
    return out


def compile_dcgan(c: Check) -> dict:
    # reduce-overhead: CUDA graphs under the compiled code; aot_eager: dynamo's capture, no codegen
    mode = " reduce-overhead" if c.cuda else " aot_eager" if c.tiny else ""
    return _bench(c, "dcgan_b64", ["ganlib", "ganlib + torch.compile" + mode])


def _busy_us(spans) -> float:
    """Length of the union of (start, end) intervals: kernels on several streams overlap."""
    total, end = 0.0, -math.inf
    for s, e in sorted(spans):
        if e > end:
            total, end = total + e - max(s, end), e
    return total


def profile_step(c: Check, steps: int = 5) -> dict:
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    runner = c.runner("dcgan_b64", "ganlib")

    def seconds(n: int) -> float:
        t0 = time.perf_counter()
        runner.train(n)
        c.sync()
        return time.perf_counter() - t0

    seconds(3)  # warm-up: cuDNN autotuning, the allocator's first blocks
    plain = seconds(steps)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if c.cuda else [])
    with profile(activities=activities) as prof:
        wall = seconds(steps)
    kind = DeviceType.CUDA if c.cuda else DeviceType.CPU
    events = [e for e in prof.events() if e.device_type == kind]
    if c.cuda:
        busy_us = _busy_us((e.time_range.start, e.time_range.end) for e in events)
    else:
        busy_us = sum(e.self_cpu_time_total for e in events)
    return {
        "steps": steps,
        "precision": Precision(c.device).mode,  # ganlib's default, as in the notebooks
        "counted": "CUDA kernels, memcpy, memset" if c.cuda else "CPU ops (nested ones too)",
        "kernels_per_step": len(events) / steps,
        "busy_ms_per_step": busy_us / 1000 / steps,
        "wall_ms_per_step": 1000 * wall / steps,
        "busy_fraction": busy_us / 1e6 / wall,
        "wall_ms_per_step_unprofiled": 1000 * plain / steps,
    }


# --- 5-6: memory ----------------------------------------------------------------------------------


def _peak(c: Check, case: str, loop: str) -> dict:
    gc.collect()
    if c.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(c.device)
    before = torch.cuda.memory_allocated(c.device) / 2**20 if c.cuda else None
    runner = c.runner(case, loop)
    runner.train(2)
    c.sync()
    peak = torch.cuda.max_memory_allocated(c.device) / 2**20 if c.cuda else None
    del runner  # stops the reference's DataLoader workers
    return {"peak_mib": peak, "allocated_before_mib": before}


def memory(c: Check) -> dict:
    out = {}
    for case in CASES:
        if not c.enough(10):
            out[case] = SKIPPED
            continue
        out[case] = {
            loop: NEEDS_CUDA if "bf16" in loop and not c.cuda else attempt(_peak, c, case, loop)
            for loop in LOOPS
        }
    return out


def sr_tiled(c: Check) -> dict:
    tile, blocks, width = (16, 1, 8) if c.tiny else (128, 16, 64)
    sr_memory.probe(tile, True, tile, blocks, width, c.device)  # warm-up: cuDNN, first kernels
    out = {}
    for side in [32, 64] if c.tiny else [256, 512, 1024, 2048]:
        if not c.enough(15):
            out[f"lr_{side}"] = SKIPPED
            continue
        r = sr_memory.probe(side, True, tile, blocks, width, c.device)
        peak = r.get("cuda_max_allocated_mib")  # absent on CPU
        out[f"lr_{side}"] = {
            "model": f"SRResNet {blocks}x{width}, tile {tile}",
            "output": r["output"],
            "seconds": r["seconds"],
            "peak_mib": peak,
        }
    return out


# --- 7: per-notebook estimates --------------------------------------------------------------------


def full_parameters(notebook: Path) -> dict:
    """The ``full`` values of a notebook's parameters cell: ``name = {"smoke": ..., "full": v}
    [PROFILE]`` gives v; a plain literal ``name = v`` gives v; anything else is left out."""
    nb = json.loads(Path(notebook).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    values = {}
    for node in ast.parse("".join(cell["source"])).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            v = node.value
            by_profile = isinstance(v, ast.Subscript) and isinstance(v.value, ast.Dict)
            try:
                value = ast.literal_eval(v.value)["full"] if by_profile else ast.literal_eval(v)
            except (ValueError, KeyError):
                continue  # e.g. checkpoint_root = default_checkpoint_root()
            values[node.targets[0].id] = value
    return values


# --tiny replaces these sizes of the full profile (the step counts stay)
TINY = {
    "01": dict(batch_size=8, width=8),
    "02": dict(srresnet_blocks=1, srresnet_width=8, hr_patch=32, batch_size=2),
    "03": dict(cgan_width=8, cgan_batch=8),
    "04": dict(cifar_width=8, cifar_n_dis=2, cifar_batch=4),
    "05": dict(crop=32, g_width=8, d_width=8, batch_size=2),
}


def _batches(b: int, dev, *shapes, labels: bool = False) -> Batches:
    """4 batches of random images in [-1, 1], one tensor (4b, C, S, S) per (C, S) in shapes."""
    images = [torch.rand(4 * b, ch, s, s, device=dev) * 2 - 1 for ch, s in shapes]
    extra = [torch.randint(0, 10, (4 * b,), device=dev)] if labels else []
    return Batches(*images, *extra, batch_size=b)


def _adam(m, lr=2e-4, betas=(0.5, 0.999)) -> torch.optim.Adam:
    return adam(m.parameters(), lr=lr, betas=betas)


def training(nb: str, p: dict, dev):
    """Notebook ``nb``'s main training with parameters ``p``: (run, step, batches, steps, runs)."""
    if nb == "01":  # make_dcgan_run: DCGAN (width 64), an EMA of G, one G forward per step
        G, D = DCGANGenerator(100, p["width"]).to(dev), DCGANDiscriminator(p["width"]).to(dev)
        run = EMAGANRun(G, D, _adam(G), _adam(D), z_dim=100, share_fake=True)
        return run, ema_gan_step, _batches(p["batch_size"], dev, (1, 28)), p["dcgan_steps"], 1
    if nb == "02":  # the SRResNet on an L1 loss (x4: LR patches a quarter of the HR side)
        model = SRResNet(4, p["srresnet_blocks"], p["srresnet_width"]).to(dev)
        run = SupervisedRun(model, _adam(model, 1e-4, (0.9, 0.999)), loss="l1")
        s = p["hr_patch"]
        data = _batches(p["batch_size"], dev, (3, s), (3, s // 4))
        return run, supervised_step, data, p["srresnet_steps"], 1
    if nb == "03":  # the conditional GAN, trained once per n_per_class x seed
        G = ConditionalGenerator(p["z_dim"], width=p["cgan_width"]).to(dev)
        D = ConditionalDiscriminator(width=p["cgan_width"]).to(dev)
        shift = p["diffaug_shift"]  # DiffAugment's translation of what D sees
        run = ConditionalGANRun(G, D, _adam(G), _adam(D), z_dim=p["z_dim"], shift=shift)
        data = _batches(p["cgan_batch"], dev, (1, 28), labels=True)
        runs = len(p["n_per_class"]) * len(p["seeds"])
        return run, conditional_gan_step, data, p["cgan_steps"], runs
    if nb == "04":  # the SNGAN ResNet on CIFAR-10: n_dis D steps (new images each) per G step
        w, n_dis = p["cifar_width"], p["cifar_n_dis"]
        run = sngan_run(w, w, device=dev, n_dis=n_dis)
        return run, gan_step, _batches(n_dis * p["cifar_batch"], dev, (3, 32)), p["cifar_steps"], 1
    # 05: pix2pix gray2color (a 1-channel source), U-Net-256, trained once per ablation row
    s, depth = p["crop"], int(math.log2(p["crop"]))  # the U-Net halves the side down to 1
    G = UNetGenerator(1, 3, p["g_width"], depth).to(dev)
    D = PatchDiscriminator(1 + 3, p["d_width"]).to(dev)
    run = Pix2PixRun(G, D, _adam(G), _adam(D), steps=p["steps"])
    data = _batches(p["batch_size"], dev, (3, s), (1, s))  # (target, source)
    return run, pix2pix_step, data, p["steps"], len(p["ablation"])


def _estimate(c: Check, notebook: str) -> dict:
    nb = notebook[:2]
    full = full_parameters(REPO / "notebooks" / f"{notebook}.ipynb")
    p = {"width": 64, **full, **(TINY[nb] if c.tiny else {})}
    run, step, data, steps, runs = training(nb, p, c.device)
    n = 3 if c.tiny else 100
    fit(run, step, data, 2, log_every=1, progress=False)  # warm-up: first calls, cuDNN autotuning
    c.sync()
    t0 = time.perf_counter()
    fit(run, step, data, 2 + n, log_every=n, progress=False)
    c.sync()
    ms = 1000 * (time.perf_counter() - t0) / n
    minutes = ms * steps * runs / 60000
    print(f"  estimate {notebook}: {ms:.1f} ms/step x {steps} steps x {runs} = {minutes:.1f} min")
    sizes = ", ".join(f"{k} {p[k]}" for k in TINY[nb])
    row = dict(sizes=sizes, precision=run.precision.mode, ms_per_step=ms, steps=steps)
    return row | dict(runs=runs, estimate_min=minutes)


def estimates(c: Check) -> dict:
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("0[1-5]_*.ipynb"))
    return {nb: attempt(_estimate, c, nb) if c.enough(10) else SKIPPED for nb in notebooks}


# --- 8: a CUDA graph of one whole D + G iteration ------------------------------------------------


def cuda_graph(c: Check) -> dict | str:
    if not c.cuda:
        return NEEDS_CUDA
    b, n = c.size("dcgan_b64")["batch"], 3 if c.tiny else 200
    G, D = (m.to(c.device) for m in tt.build_models("dcgan", c.size("dcgan_b64"), 0))
    hyper = dict(lr=tt.LR, betas=tt.BETAS, capturable=True)  # Adam's step count stays on the GPU
    opt_G, opt_D = (adam(m.parameters(), **hyper) for m in (G, D))
    # fp32: under capture, autocast would need its cast cache off (cache_enabled=False)
    run = GANRun(G, D, opt_G, opt_D, z_dim=100, precision=Precision(c.device, "fp32"))
    batches = _batches(b, c.device, (1, 28))
    real = next(batches).clone()  # the graph's static input: new batches are copied into it

    def timed(one_step) -> float:
        c.sync()
        t0 = time.perf_counter()
        for _ in range(n):
            one_step()
        c.sync()
        return 1000 * (time.perf_counter() - t0) / n

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch.cuda.graphs requires
        for _ in range(3):
            gan_step(run, real)
    torch.cuda.current_stream().wait_stream(side)
    eager = timed(lambda: gan_step(run, next(batches)))
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # records D's and G's forward, backward and Adam step
        stats = gan_step(run, real)  # z is drawn inside: each replay draws new noise
    before = [p.detach().clone() for p in G.parameters()]
    graphed = timed(lambda: (real.copy_(next(batches)), graph.replay()))
    moved = all(not torch.equal(a, p) for a, p in zip(before, G.parameters(), strict=True))
    losses = {k: float(v) for k, v in stats.items() if k.startswith("loss")}
    row = dict(batch=b, precision="fp32", eager_ms=eager, graph_ms=graphed, speedup=eager / graphed)
    return row | {"G_params_changed": moved, **losses}


# --- The run --------------------------------------------------------------------------------------

# (name, function, seconds it needs left to start), in priority order
SECTIONS = (
    ("environment", environment, 0),
    ("throughput", throughput, 150),
    ("compile", compile_dcgan, 60),
    ("profile", profile_step, 15),
    ("memory", memory, 30),
    ("sr_tiled", sr_tiled, 30),
    ("estimates", estimates, 45),
    ("cuda_graph", cuda_graph, 15),
)


def _records(value, path=()):
    """(path, record) for each innermost dict of a section (no dict among its values) and for
    each other value that sits beside dicts (a string such as "skipped: deadline")."""
    if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
        for k, v in value.items():
            yield from _records(v, (*path, k))
    else:
        yield path, value if isinstance(value, dict) else {"value": value}


def _cell(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def markdown(result: dict) -> str:
    """One table per section and depth of nesting; a lone record is a key | value table."""
    meta = result["meta"]
    tiny = " (--tiny: the numbers mean nothing)" if meta["tiny"] else ""
    lines = [
        f"# GPU check on {meta['device']}{tiny}",
        "",
        f"Started {meta['started']}, {meta['seconds']:.0f} s, deadline {meta['minutes']} "
        "min. Written by `scripts/gpu_check.py`; `gpu_check.json` has the same figures.",
    ]
    for name, value in result["sections"].items():
        lines += ["", f"## {name}", ""]
        records = list(_records(value))
        for depth in sorted({len(path) for path, _ in records}):
            recs = [(" / ".join(path), r) for path, r in records if len(path) == depth]
            if depth == 0:
                lines += ["| | |", "|---|---|"]
                lines += [f"| {k} | {_cell(v)} |" for k, v in recs[0][1].items()]
            else:
                keys = list(dict.fromkeys(k for _, r in recs for k in r))
                lines += ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
                for path, r in recs:
                    lines.append(
                        f"| {path} | " + " | ".join(_cell(r.get(k, "")) for k in keys) + " |"
                    )
            lines.append("")
    return "\n".join(lines)


def _past_deadline(signum, frame):
    raise TimeoutError("ran past the --minutes deadline")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--minutes", type=float, default=8.0, help="deadline for the whole run")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "gpu_check"))
    p.add_argument("--tiny", action="store_true", help="tiny sizes: tests the code paths")
    args = p.parse_args(argv)
    start = time.monotonic()
    c = Check(torch.device(args.device), args.tiny, start + 60 * args.minutes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "argv": sys.argv[1:] if argv is None else argv,
        "device": str(c.device),
        "tiny": c.tiny,
        "minutes": args.minutes,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    result = {"meta": meta, "sections": {}}
    # the alarm stops a section at the deadline (signals reach only the main thread)
    alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    old_handler = signal.signal(signal.SIGALRM, _past_deadline) if alarm else None
    try:
        for name, section, need in SECTIONS:
            t0, value = time.monotonic(), SKIPPED
            if c.enough(need):
                if alarm and c.deadline > t0:
                    signal.setitimer(signal.ITIMER_REAL, c.deadline - t0)
                try:
                    value = attempt(section, c)
                finally:
                    if alarm:
                        signal.setitimer(signal.ITIMER_REAL, 0)
            result["sections"][name] = value
            meta["seconds"] = time.monotonic() - start
            shown = value if isinstance(value, str) else "done"
            print(f"[{name}] {shown} ({time.monotonic() - t0:.1f} s)", flush=True)
            (out / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str))
            (out / "gpu_check.md").write_text(markdown(result))
    finally:
        if alarm:
            signal.signal(signal.SIGALRM, old_handler)
    print(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return result


if __name__ == "__main__":
    main()
