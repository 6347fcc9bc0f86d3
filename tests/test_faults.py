"""Fault injection: kills during training, broken downloads, bad inputs.

Details, results and what is still open: docs/faults.md.

1. Kill and resume: tests/fault_train_script.py trains a tiny DCGAN; 30 runs are SIGKILLed,
   half at random moments, half right after a temporary checkpoint file appears, and restarted.
   Every ``latest.pt`` left behind must load, no confirmed checkpoint may be lost, leftover
   ``*.tmp`` files are never read, and the resumed run ends with the weights and losses of an
   uninterrupted one (torch.equal).
2. Downloads from a loopback server (127.0.0.1 only): truncated body, HTML page with status 200,
   wrong file, 404, 500, a stall before or during the body, a refused connection; recovery on
   retry or from a second URL. Each ends in the verified file or a ``DatasetUnavailable`` naming
   the URL and the problem, with no file left behind.
3. Bad inputs, table-driven; each must raise the error named, with a message naming the problem
   (the rows marked "fixed" were found by this module and fixed since):

   =========================  =====================================================  ==========
   function                   bad input                                              raises
   =========================  =====================================================  ==========
   images.load_image          missing file                                           FileNotFound
                              truncated PNG, junk bytes, empty file, 1x1 image       ValueError
   images.list_images         empty folder, only .txt files, missing folder          FileNotFound
   images.check_images        3-D, numpy, 4 channels, uint8, NaN, inf                ValueError
   metrics.psnr, ssim         4 channels, [-1, 1] floats, NaN, int32, shapes, 8x8    ValueError
                              empty batch, 0x0 image (fixed)                         ValueError
   degrade.make_lr, imresize  30x30 at x4, 0x0, 2x2 by 1/4, NaN, int64, 4-D          ValueError
                              [-1, 1] floats, scale NaN, scale 0 (fixed)             ValueError
   fid.fid                    3 channels, 10 images, NaN, uint8, 32x32, "vgg"        ValueError
   models (DCGAN, SR)         channels, uint8, size, z shape, scale 3, 8x8 for D     ValueError
                              integer z, 0x0 image (fixed)                           ValueError
   train.fit                  NaN batch (raises TrainingDiverged, a RuntimeError)    RuntimeError
                              floats in [0, 255] (fixed)                             ValueError
   data.Batches               empty, numpy, 0-d, batch_size 2.5 or > N, NaN          ValueError
   CLI eval-sr, upscale       empty, missing, corrupt or 8x8 HR folder, bad          exit 2
                              checkpoint, .jpg output; odd sizes, gray, RGBA work    (exit 0)
   =========================  =====================================================  ==========

Untrusted or mismatched checkpoints: tests/test_checkpoint.py. Divergence (NaN loss):
tests/test_train.py::test_nan_loss_stops_training_and_keeps_last_good_checkpoint.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import os
import random
import re
import select
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlib import __version__
from ganlib.__main__ import main as cli_main
from ganlib.checkpoint import load_checkpoint
from ganlib.colab import REPOSITORY
from ganlib.data import Batches
from ganlib.degrade import imresize, make_lr, modcrop
from ganlib.fetch import DatasetUnavailable, IncompleteDownload, download, fetch_file
from ganlib.fid import fid
from ganlib.gan import GANRun, gan_step
from ganlib.images import check_images, list_images, load_image, to_model_range
from ganlib.metrics import psnr, ssim
from ganlib.models import DCGANDiscriminator, DCGANGenerator
from ganlib.models.sr import SRCNN, SRGANDiscriminator, SRResNet
from ganlib.train import TrainingDiverged, fit
from tests.fault_train_script import CHECKPOINT_EVERY
from tests.loopback import dead_url

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("fault_train_script.py")

# --- 1. Kill and resume ------------------------------------------------------------------------

KILL_STEPS = 160  # steps of every run; 15 kills take at most 150 of them
KILLS_PER_SEQUENCE = 15  # two sequences run side by side: 30 kills in all


def script(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-u", str(SCRIPT), *args],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **popen,
    )


def run_to_the_end(ckpt_dir: Path, out: Path, stderr) -> dict:
    """One uninterrupted run of the script in a fresh interpreter."""
    proc = script(str(KILL_STEPS), str(ckpt_dir), str(out), stderr=stderr)
    proc.communicate(timeout=300)
    assert proc.returncode == 0, f"training failed (rc {proc.returncode}); see {stderr.name}"
    return torch.load(out, weights_only=True)


class Lines:
    """Lines from a pipe, each read with a deadline (a plain readline could wait forever)."""

    def __init__(self, pipe):
        self.fd, self.buf = pipe.fileno(), b""

    def next(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.fd], [], [], max(deadline - time.monotonic(), 0))
            assert ready, f"the training script printed nothing for {timeout} s"
            chunk = os.read(self.fd, 1 << 16)
            assert chunk, "the training script closed its output"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


class ForkServer:
    """tests/fault_train_script.py --fork-server: training runs forked from one interpreter."""

    def __init__(self, stderr):
        self.proc = script("--fork-server", stdin=subprocess.PIPE, stderr=stderr)
        self.lines = Lines(self.proc.stdout)
        self.printed: list[str] = []  # by the current run
        self.exit_code: int | None = None  # of the current run, once it has ended
        self.interval = 0.05  # seconds between two checkpoints, measured as runs go
        self.last_checkpoint = None  # when the current run last reported one

    def start(self, ckpt_dir: Path, out: Path) -> int:
        """Fork a training run; return its pid once it is about to train."""
        self.proc.stdin.write(f"{KILL_STEPS} {ckpt_dir} {out}\n".encode())
        self.proc.stdin.flush()
        pid = self.lines.next()
        assert pid.startswith("pid "), pid
        assert self.lines.next() == "ready"
        self.printed, self.exit_code, self.last_checkpoint = [], None, None
        return int(pid.split()[1])

    def _read(self) -> str:
        line = self.lines.next()
        if line.startswith("exit "):  # written by the server once the run has ended
            self.exit_code = int(line.split()[1])
        else:
            self.printed.append(line)
        return line

    def wait_for_checkpoints(self, n: int) -> None:
        """Return once the run has reported ``n`` more checkpoints, or has ended."""
        while n > 0 and self.exit_code is None:
            if self._read().startswith("checkpoint "):
                n -= 1
                now = time.monotonic()
                if self.last_checkpoint is not None:
                    self.interval = now - self.last_checkpoint
                self.last_checkpoint = now

    def finish(self) -> tuple[int, str]:
        """Wait for the run to end: its exit code (-9: SIGKILL) and what it printed."""
        while self.exit_code is None:
            self._read()
        return self.exit_code, "\n".join(self.printed)

    def close(self) -> None:
        self.proc.kill()  # no run is in flight; this skips seconds of interpreter teardown
        self.proc.wait(timeout=30)
        self.proc.stdin.close()
        self.proc.stdout.close()


def sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it had already finished
        os.kill(pid, signal.SIGKILL)


def tmp_names(folder: Path) -> set[str]:
    """Temporary checkpoint files, ``.latest.pt.<random>.tmp``, of unfinished writes."""
    return {n for n in os.listdir(folder) if n.endswith(".tmp")}


def kill_during_write(pid: int, folder: Path, before: set[str], nth: int) -> None:
    """SIGKILL ``pid`` as soon as the ``nth`` new temporary checkpoint file appears."""
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(seen) < nth:
        seen |= tmp_names(folder) - before
        time.sleep(0.0002)
    sigkill(pid)


def checkpoint_lines(output: str) -> list[int]:
    return [int(line.split()[1]) for line in output.splitlines() if line.startswith("checkpoint ")]


def kill_and_resume(folder: Path, seed: int) -> dict:
    """SIGKILL one run ``KILLS_PER_SEQUENCE`` times, restarting it each time, then let it finish.

    Even attempts kill at a random moment: after n checkpoints (n random in 0..4) plus a time
    drawn uniformly from the measured time between two checkpoints, so the kill falls anywhere
    in the cycle of training steps and checkpoint writes. Odd attempts kill right after the
    n-th temporary checkpoint file appears (n random in 1..4). Checks the folder after every
    kill; returns the counts and the final weights.
    """
    rng = random.Random(seed)
    ckpt = folder / "ckpt"
    ckpt.mkdir(parents=True)
    latest = ckpt / "latest.pt"
    log = {"kills": 0, "mid_write": 0, "mid_write_random": 0, "finished_before_kill": 0}
    on_disk = 0  # step of latest.pt
    first_state = None
    with open(folder / "stderr.txt", "ab") as stderr:
        server = ForkServer(stderr)
        try:
            for attempt in range(KILLS_PER_SEQUENCE):
                before = tmp_names(ckpt)
                pid = server.start(ckpt, folder / "out.pt")
                if attempt % 2 == 0:
                    server.wait_for_checkpoints(rng.randint(0, 4))
                    time.sleep(rng.uniform(0, server.interval))
                    sigkill(pid)
                else:
                    kill_during_write(pid, ckpt, before, nth=rng.randint(1, 4))
                code, output = server.finish()
                if code == 0:  # it finished before the kill: nothing to check here
                    log["finished_before_kill"] += 1
                    break
                assert code == -signal.SIGKILL, f"exit code {code}, seed {seed}"
                log["kills"] += 1
                if tmp_names(ckpt) - before:  # the kill left a half-written temporary file
                    log["mid_write"] += 1
                    log["mid_write_random"] += attempt % 2 == 0

                # A restarted run resumes from latest.pt, never from a leftover *.tmp file.
                resumed = f"Resumed from {latest} at step {on_disk}."
                if on_disk and checkpoint_lines(output):
                    assert resumed in output, f"{output!r} (seed {seed})"
                assert "Resumed from" not in output or resumed in output, output

                # latest.pt loads and holds the last checkpoint the run reported, or the one it
                # was writing when it died: nothing confirmed is ever lost.
                confirmed = max(checkpoint_lines(output), default=on_disk)
                step = load_checkpoint(latest)["step"] if latest.exists() else 0
                assert step % CHECKPOINT_EVERY == 0
                assert on_disk <= confirmed <= step <= confirmed + CHECKPOINT_EVERY, (
                    f"latest.pt is at step {step}, the run confirmed {confirmed}, "
                    f"before it was {on_disk} (seed {seed})"
                )
                on_disk = step
                if first_state is None and step:
                    first_state = load_checkpoint(latest)
            log["tmp_left"] = len(tmp_names(ckpt))
            server.start(ckpt, folder / "out.pt")  # the last restart runs to the end
            code, output = server.finish()
            assert code == 0, f"the final resume failed; see {stderr.name}"
            assert f"Resumed from {latest} at step {on_disk}." in output
            log["tmp_after_final"] = len(tmp_names(ckpt))
        finally:
            server.close()
    final = torch.load(folder / "out.pt", weights_only=True)
    assert load_checkpoint(latest)["step"] == KILL_STEPS
    assert first_state is not None and not torch.equal(
        first_state["G"]["net.0.weight"], final["G"]["net.0.weight"]
    ), "the resumed run did not train"
    return log | {"final": final}


def assert_same_run(got: dict, want: dict) -> None:
    assert got["step"] == want["step"] == KILL_STEPS
    for net in ("G", "D"):
        assert got[net].keys() == want[net].keys()
        for k, v in want[net].items():
            assert torch.equal(got[net][k], v), f"{net}.{k} differs from the uninterrupted run"

    def losses(history):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in history]

    assert len(got["history"]) == KILL_STEPS
    assert losses(got["history"]) == losses(want["history"])


def test_sigkill_at_random_moments_and_during_checkpoint_writes_loses_nothing(tmp_path):
    """30 SIGKILLs over two runs (half aimed at checkpoint writes), each run resumed to the end."""
    with (
        ThreadPoolExecutor(max_workers=2) as pool,
        open(tmp_path / "reference-stderr.txt", "wb") as stderr,
    ):
        reference = pool.submit(
            run_to_the_end, tmp_path / "reference", tmp_path / "reference.pt", stderr
        )
        sequences = [pool.submit(kill_and_resume, tmp_path / f"seq{s}", s) for s in (1, 2)]
        logs = [s.result() for s in sequences]
        want = reference.result()
    for log in logs:
        assert_same_run(log.pop("final"), want)
    kills = sum(log["kills"] for log in logs)
    mid_write = sum(log["mid_write"] for log in logs)
    print(f"\nkill/resume: {kills} kills, {mid_write} during a checkpoint write; {logs}")
    assert kills >= 20, logs
    assert mid_write >= 4, f"too few kills landed during a checkpoint write: {logs}"
    # Half-written files were left by the kills (mid_write), never read, and removed by the next run.
    assert all(log["tmp_after_final"] == 0 for log in logs), logs


# --- 2. Downloads against a loopback server ----------------------------------------------------

BODY = bytes(range(256)) * 40  # the "dataset file", 10,240 bytes
SHA256 = hashlib.sha256(BODY).hexdigest()
HTML = b"<!DOCTYPE html>\n<html><body><h1>Service temporarily unavailable</h1></body></html>\n"
STALL = 5.0  # how long a stalling handler waits (the client gives up after TIMEOUT)
TIMEOUT = 0.25


class FaultHandler(BaseHTTPRequestHandler):
    """Serves ``/<route>/file.bin``; the route picks the fault. HTTP/1.0: one request each."""

    def log_message(self, *args):
        pass

    def send(self, body: bytes, status: int = 200, ctype="application/octet-stream", length=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        route = self.path.split("/")[1]
        self.server.hits[route] += 1
        self.server.headers.append(dict(self.headers))
        if route.startswith("flaky-") and self.server.hits[route] > (2 if "500" in route else 1):
            route = "good"  # the fault is over
        if route == "good":
            self.send(BODY)
        elif route in ("truncated", "flaky-truncated"):
            self.send(BODY[:3000], length=len(BODY))  # promise 10,240 bytes, hang up after 3000
        elif route == "html":
            self.send(HTML, ctype="text/html")
        elif route == "wrong":
            self.send(BODY[::-1])
        elif route == "missing":
            self.send_error(404)
        elif route in ("error", "flaky-500"):
            self.send_error(500)
        elif route == "stall-headers":
            self.server.stop.wait(STALL)
        elif route in ("stall-body", "flaky-stall"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:3000])
            self.server.stop.wait(STALL)
        else:
            self.send_error(400)


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FaultHandler)
        self.hits: collections.Counter = collections.Counter()
        self.headers: list[dict[str, str]] = []  # of every request
        self.stop = threading.Event()

    def handle_error(self, request, client_address):
        pass  # a client that timed out leaves a broken pipe behind; that is the point

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.server_port}/{route}/file.bin"


@pytest.fixture
def server(loopback_only):
    """A loopback HTTP server, with the cache in tmp_path and no mirror or proxy in the way."""
    srv = FaultServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)


def cache_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def fetch(srv: FaultServer, routes: list[str], **kw) -> Path:
    return fetch_file(
        "faults/file.bin",
        kw.pop("checksum", SHA256),
        [srv.url(r) for r in routes],
        dataset="FaultSet",
        algorithm=kw.pop("algorithm", "sha256"),
        timeout=TIMEOUT,
        retry_wait=kw.pop("retry_wait", 0.0),
        **kw,
    )


TRUNC = r"truncated download: the connection closed after 3000 of 10240 bytes"
TIMED_OUT = r"timed out \(no data for 0\.25 s\)"

# routes tried in order, what must happen (None: the verified file), requests each route gets
DOWNLOAD_FAULTS = {
    "truncated body": (["truncated"], TRUNC + r" \(3 attempts\)", {"truncated": 3}),
    "HTML page, status 200": (["html"], r"failed its sha256 checksum.*HTML page", {"html": 1}),
    "checksum mismatch": (["wrong"], r"failed its sha256 checksum \(got", {"wrong": 1}),
    "404": (["missing"], r"HTTP 404 Not Found$", {"missing": 1}),
    "500": (["error"], r"HTTP 500 Internal Server Error \(3 attempts\)", {"error": 3}),
    "stall before headers": (["stall-headers"], TIMED_OUT, {"stall-headers": 3}),
    "stall during body": (["stall-body"], TIMED_OUT, {"stall-body": 3}),
    "404 then 500": (["missing", "error"], r"HTTP 500", {"missing": 1, "error": 3}),
    "500 twice, then ok": (["flaky-500"], None, {"flaky-500": 3}),
    "truncated, then ok": (["flaky-truncated"], None, {"flaky-truncated": 2}),
    "stall, then ok": (["flaky-stall"], None, {"flaky-stall": 2}),
    "404, second URL ok": (["missing", "good"], None, {"missing": 1, "good": 1}),
    "500, second URL ok": (["error", "good"], None, {"error": 3, "good": 1}),
    "HTML, second URL ok": (["html", "good"], None, {"html": 1, "good": 1}),
    "truncated, second URL ok": (["truncated", "good"], None, {"truncated": 3, "good": 1}),
    "stall, second URL ok": (["stall-headers", "good"], None, {"stall-headers": 3, "good": 1}),
}


@pytest.mark.parametrize("routes, problem, hits", DOWNLOAD_FAULTS.values(), ids=DOWNLOAD_FAULTS)
def test_download_faults_end_in_the_file_or_a_clear_error(server, tmp_path, routes, problem, hits):
    cache = tmp_path / "cache"
    start = time.monotonic()
    if problem is None:
        path = fetch(server, routes)
        assert path == cache / "faults" / "file.bin" and path.read_bytes() == BODY
        assert cache_files(cache) == ["faults/file.bin"]  # no temporary file left beside it
    else:
        with pytest.raises(DatasetUnavailable) as err:
            fetch(server, routes)
        message = str(err.value)
        assert message.startswith("FaultSet: could not get faults/file.bin.")
        for route in routes:
            assert f"\n  - {server.url(route)}: " in message  # every URL named...
        last = message.split(f"{server.url(routes[-1])}: ")[1].split("\n")[0]
        assert re.search(problem, last), last  # ...with its problem
        assert cache_files(cache) == []  # nothing partial left to be taken for data later
    assert dict(server.hits) == hits  # bounded: retries only for transient faults
    assert time.monotonic() - start < 5  # every stall and retry is bounded


def test_a_failed_download_is_never_taken_for_data_later(server, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailable):
        fetch(server, ["truncated"], retries=0)
    with pytest.raises(DatasetUnavailable, match=r"file\.bin: not there"):
        fetch(server, [])
    # A partial file from an older crash, and a stale staging file that even holds the right
    # bytes: the first fails its checksum and is removed, the second is never looked at.
    (cache / "faults").mkdir(parents=True, exist_ok=True)
    (cache / "faults" / "file.bin").write_bytes(BODY[:3000])
    (cache / "faults" / ".file.bin.abc123.part").write_bytes(BODY)
    with pytest.raises(DatasetUnavailable, match=r"checksum mismatch \(corrupt or partial"):
        fetch(server, [])
    assert not (cache / "faults" / "file.bin").exists()
    assert fetch(server, ["good"]).read_bytes() == BODY
    assert server.hits["good"] == 1


def test_md5_checksums_are_checked_too(server):
    md5 = hashlib.md5(BODY).hexdigest()
    with pytest.raises(DatasetUnavailable, match="failed its md5 checksum"):
        fetch(server, ["wrong"], checksum=md5, algorithm="md5")
    assert fetch(server, ["good"], checksum=md5, algorithm="md5").read_bytes() == BODY
    assert fetch(server, [], checksum=md5, algorithm="md5").read_bytes() == BODY  # from the cache


def test_a_refused_connection_is_not_retried_and_the_next_url_is_tried(server):
    dead = dead_url("file.bin")
    server.url = lambda route, url=server.url: dead if route == "dead" else url(route)
    start = time.monotonic()
    with pytest.raises(DatasetUnavailable, match=f"{re.escape(dead)}: ConnectionRefusedError"):
        fetch(server, ["dead"], retry_wait=5.0)
    assert fetch(server, ["dead", "good"], retry_wait=5.0).read_bytes() == BODY
    assert time.monotonic() - start < 2  # refused at once, and never retried (5 s wait)
    assert dict(server.hits) == {"good": 1}


def test_download_rejects_a_body_shorter_than_its_content_length(server, tmp_path):
    dest = tmp_path / "one" / "file.bin"
    with pytest.raises(IncompleteDownload, match="after 3000 of 10240 bytes"):
        download(server.url("truncated"), dest, timeout=TIMEOUT)
    assert cache_files(tmp_path / "one") == []
    download(server.url("good"), dest, timeout=TIMEOUT)
    assert dest.read_bytes() == BODY and cache_files(tmp_path / "one") == ["file.bin"]


def test_a_download_shows_a_progress_bar_and_names_ganlib(server, tmp_path, capsys):
    download(server.url("good"), tmp_path / "file.bin", timeout=TIMEOUT)
    bar = capsys.readouterr().err
    assert "100%" in bar and "10.2k/10.2k" in bar, bar  # tqdm's bar for 10,240 bytes
    [headers] = server.headers
    # Not Python's default agent, which servers refuse (MNIST's did: pytorch/vision#1938).
    assert headers["User-Agent"] == f"ganlib/{__version__} (+https://github.com/{REPOSITORY})"
    assert headers["Accept-Encoding"] == "identity"  # a .gz must arrive as the bytes hashed


# --- 4. Bad inputs -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Image files and folders, good and bad, made once for the whole table."""
    d = tmp_path_factory.mktemp("bad-inputs")
    rng = np.random.default_rng(0)

    def png(path: Path, shape) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
        return path

    good = png(d / "good.png", (40, 40, 3))
    f = {"dir": d, "good": good, "missing": d / "missing.png"}
    f["truncated"] = d / "truncated.png"
    f["truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    f["junk"] = d / "junk.png"
    f["junk"].write_bytes(b"this is not an image")
    f["empty"] = d / "empty.png"
    f["empty"].write_bytes(b"")
    f["tiny"] = png(d / "tiny.png", (1, 1, 3))
    f["empty_dir"] = d / "empty-dir"
    f["empty_dir"].mkdir()
    f["txt_dir"] = d / "txt-dir"
    f["txt_dir"].mkdir()
    (f["txt_dir"] / "notes.txt").write_text("no images here")
    f["corrupt_dir"] = d / "corrupt-dir"
    f["corrupt_dir"].mkdir()
    (f["corrupt_dir"] / "a.png").write_bytes(f["truncated"].read_bytes())
    f["tiny_dir"] = png(d / "tiny-dir" / "t.png", (8, 8, 3)).parent
    f["odd_dir"] = png(d / "odd-dir" / "odd.png", (50, 45, 3)).parent  # 45 and 50 % 4 != 0
    f["gray_dir"] = png(d / "gray-dir" / "g.png", (40, 40)).parent
    f["rgba_dir"] = png(d / "rgba-dir" / "a.png", (40, 40, 4)).parent
    f["junk_ckpt"] = d / "junk.pt"
    f["junk_ckpt"].write_bytes(b"not a checkpoint")
    return f


def u8(*shape):
    return torch.randint(0, 256, shape, dtype=torch.uint8)


def nan(*shape):
    return torch.full(shape, float("nan"))


def fit_one_step(batch):
    G, D = DCGANGenerator(z_dim=8, width=8), DCGANDiscriminator(width=8)
    run = GANRun(G, D, torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters()), z_dim=8)
    fit(run, gan_step, iter([batch]), 1, log_every=1, progress=False)


def case(name, error, phrase, call, marks=()):
    return pytest.param(call, error, phrase, id=name, marks=marks)


# Each row: what is tried, the error it must raise, a phrase of its message, the call.
# fmt: off
BAD_INPUTS = [
    # images
    case("load_image missing file", FileNotFoundError, "No image at",
         lambda f: load_image(f["missing"])),
    case("load_image truncated PNG", ValueError, r"not a readable image \(corrupt or truncated",
         lambda f: load_image(f["truncated"])),
    case("load_image junk bytes", ValueError, "junk.png is not a readable image",
         lambda f: load_image(f["junk"])),
    case("load_image zero-byte file", ValueError, "empty.png is not a readable image",
         lambda f: load_image(f["empty"])),
    case("load_image 1x1 image", ValueError, "is 1x1 pixels; at least 8x8",
         lambda f: load_image(f["tiny"], min_size=8)),
    case("list_images empty folder", FileNotFoundError, "No images in",
         lambda f: list_images(f["empty_dir"])),
    case("list_images only .txt", FileNotFoundError, "No images in",
         lambda f: list_images(f["txt_dir"])),
    case("list_images missing folder", FileNotFoundError, "No folder at",
         lambda f: list_images(f["dir"] / "nope")),
    case("check_images 3-D", ValueError, r"\(B, C, H, W\).*unsqueeze",
         lambda f: check_images(torch.rand(1, 28, 28))),
    case("check_images numpy", ValueError, "must be a torch.Tensor, got ndarray",
         lambda f: check_images(np.zeros((1, 1, 28, 28)))),
    case("check_images RGBA", ValueError, "3 channel.*got 4.*alpha",
         lambda f: check_images(torch.rand(1, 4, 8, 8), channels=3)),
    case("check_images uint8", ValueError, r"float tensor in \[-1, 1\].*to_model_range",
         lambda f: check_images(u8(1, 1, 8, 8))),
    case("check_images NaN", ValueError, "NaN or inf",
         lambda f: check_images(nan(1, 1, 8, 8))),
    case("check_images inf", ValueError, "NaN or inf",
         lambda f: check_images(torch.full((1, 1, 8, 8), float("inf")))),
    case("to_model_range int32", ValueError, "uint8 or float images, got dtype torch.int32",
         lambda f: to_model_range(torch.zeros(2, dtype=torch.int32))),
    # metrics
    case("psnr 4 channels", ValueError, r"C = 1 or 3, got \(1, 4",
         lambda f: psnr(u8(4, 16, 16), u8(4, 16, 16))),
    case("psnr [-1, 1] floats", ValueError, r"metrics take \[0, 1\].*to_unit_range",
         lambda f: psnr(torch.rand(3, 16, 16) * 2 - 1, torch.rand(3, 16, 16))),
    case("psnr NaN", ValueError, "NaN or inf",
         lambda f: psnr(nan(3, 16, 16), torch.rand(3, 16, 16))),
    case("psnr int32", ValueError, "uint8 or float.*int32",
         lambda f: psnr(u8(3, 8, 8).int(), u8(3, 8, 8).int())),
    case("psnr shapes differ", ValueError, "same shape",
         lambda f: psnr(u8(3, 16, 16), u8(3, 16, 12))),
    case("psnr crop > image", ValueError, "too small to crop 4",
         lambda f: psnr(u8(3, 8, 8), u8(3, 8, 8), crop=4)),
    case("psnr bad channel", ValueError, "channel must be 'y' or 'rgb'",
         lambda f: psnr(u8(3, 8, 8), u8(3, 8, 8), channel="yuv")),
    case("ssim 8x8 image", ValueError, "at least 11x11",
         lambda f: ssim(u8(3, 8, 8), u8(3, 8, 8))),
    case("psnr empty batch", ValueError, "(?i)empty|no images|0 images",
         lambda f: psnr(u8(0, 3, 16, 16), u8(0, 3, 16, 16))),
    case("ssim empty batch", ValueError, "(?i)empty|no images|0 images",
         lambda f: ssim(u8(0, 3, 16, 16), u8(0, 3, 16, 16))),
    case("psnr 0x0 image", ValueError, "0x0|too small|empty",
         lambda f: psnr(u8(3, 0, 0), u8(3, 0, 0))),
    # degrade
    case("make_lr 30x30 at x4", ValueError, "30x30 is not divisible by the scale 4.*modcrop",
         lambda f: make_lr(u8(3, 30, 30), 4)),
    case("make_lr 0x0", ValueError, "0x0 image is too small",
         lambda f: make_lr(u8(3, 0, 0), 4)),
    case("imresize 2x2 by 1/4", ValueError, "2x2 image is too small",
         lambda f: imresize(u8(3, 2, 2), 0.25)),
    case("imresize NaN", ValueError, "NaN or inf",
         lambda f: imresize(nan(3, 8, 8), 0.5)),
    case("imresize int64", ValueError, "uint8 or float.*int64",
         lambda f: imresize(u8(3, 8, 8).long(), 0.5)),
    case("imresize batch (4-D)", ValueError, r"one image \(C, H, W\)",
         lambda f: imresize(u8(1, 3, 8, 8), 0.5)),
    case("modcrop 2x2 at x4", ValueError, "smaller than the scale factor 4",
         lambda f: modcrop(u8(3, 2, 2), 4)),
    case("imresize [-1, 1] floats", ValueError, r"\[0, 1\]",
         lambda f: imresize(torch.rand(3, 8, 8) * 2 - 1, 0.5)),
    case("imresize scale NaN", ValueError, "(?i)scale",
         lambda f: imresize(u8(3, 8, 8), float("nan"))),
    case("make_lr scale 0", ValueError, "(?i)scale",
         lambda f: make_lr(u8(3, 8, 8), 0)),
    # fid, digit features: images in [-1, 1], (N, 1, 28, 28)
    case("fid 3 channels", ValueError, r"1 channel\(s\), got 3",
         lambda f: fid(torch.rand(130, 3, 28, 28), torch.rand(130, 3, 28, 28))),
    case("fid 10 images", ValueError, "at least 129 images",
         lambda f: fid(torch.rand(10, 1, 28, 28), torch.rand(10, 1, 28, 28))),
    case("fid NaN", ValueError, "NaN or inf",
         lambda f: fid(nan(130, 1, 28, 28), torch.rand(130, 1, 28, 28))),
    case("fid uint8", ValueError, r"float tensor in \[-1, 1\]",
         lambda f: fid(u8(130, 1, 28, 28), u8(130, 1, 28, 28))),
    case("fid 32x32", ValueError, "must be 28x28 pixels",
         lambda f: fid(torch.rand(130, 1, 32, 32), torch.rand(130, 1, 32, 32))),
    case("fid unknown features", ValueError, "features must be one of",
         lambda f: fid(torch.rand(130, 1, 28, 28), torch.rand(130, 1, 28, 28), "vgg")),
    # models
    case("DCGAN D 3 channels", ValueError, r"1 channel\(s\), got 3",
         lambda f: DCGANDiscriminator(width=8)(torch.rand(2, 3, 28, 28))),
    case("DCGAN D uint8", ValueError, "float tensor",
         lambda f: DCGANDiscriminator(width=8)(u8(2, 1, 28, 28))),
    case("DCGAN D 32x32", ValueError, "must be 28x28 pixels",
         lambda f: DCGANDiscriminator(width=8)(torch.rand(2, 1, 32, 32))),
    case("DCGAN G z (2, 9)", ValueError, r"z must have shape \(B, 8\)",
         lambda f: DCGANGenerator(z_dim=8, width=8)(torch.randn(2, 9))),
    case("DCGAN G z (2, 8, 1, 1)", ValueError, r"z must have shape \(B, 8\)",
         lambda f: DCGANGenerator(z_dim=8, width=8)(torch.randn(2, 8, 1, 1))),
    case("SRResNet grayscale", ValueError, "3 channel.*grayscale",
         lambda f: SRResNet(2, 1, 8)(torch.rand(1, 1, 16, 16))),
    case("SRResNet uint8", ValueError, "float tensor",
         lambda f: SRResNet(2, 1, 8)(u8(1, 3, 16, 16))),
    case("SRResNet scale 3", ValueError, "powers of two",
         lambda f: SRResNet(scale=3)),
    case("SRGAN D 8x8", ValueError, "at least 16x16",
         lambda f: SRGANDiscriminator(width=8)(torch.rand(2, 3, 8, 8))),
    case("DCGAN G integer z", ValueError, "(?i)float",
         lambda f: DCGANGenerator(z_dim=8, width=8)(torch.ones(2, 8, dtype=torch.long))),
    case("SRCNN 0x0 image", ValueError, "0x0|too small|empty|no pixels",
         lambda f: SRCNN(2, 3, 8)(torch.rand(1, 3, 0, 0))),
    # training
    case("fit NaN batch", TrainingDiverged, "NaN/inf by step 1.*NaN pixels",
         lambda f: fit_one_step(nan(4, 1, 28, 28))),
    case("fit [0, 255] floats", ValueError, r"\[-1, 1\]",
         lambda f: fit_one_step(torch.rand(4, 1, 28, 28) * 255)),
    # data.Batches
    case("Batches empty", ValueError, r"empty dataset \(0 examples\)",
         lambda f: Batches(torch.zeros(0, 1, 28, 28), batch_size=16)),
    case("Batches numpy", ValueError, "takes torch tensors.*ndarray",
         lambda f: Batches(np.zeros((8, 1, 28, 28), np.float32), batch_size=2)),
    case("Batches 0-d tensor", ValueError, "single number",
         lambda f: Batches(torch.tensor(1.0), batch_size=1)),
    case("Batches batch_size 2.5", ValueError, "whole number, got 2.5",
         lambda f: Batches(torch.zeros(8), batch_size=2.5)),
    case("Batches NaN", ValueError, "NaN or inf",
         lambda f: Batches(nan(8, 1, 28, 28), batch_size=2)),
    case("Batches batch_size > N", ValueError, r"batch_size must be in 1\.\.4",
         lambda f: Batches(torch.zeros(4), batch_size=8)),
]
# fmt: on


@pytest.mark.parametrize("call, error, phrase", BAD_INPUTS)
def test_bad_input_gives_an_error_that_names_the_problem(files, call, error, phrase):
    with pytest.raises(error, match=phrase):
        call(files)


def cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(args)
    return code, out.getvalue(), err.getvalue()


BAD_CLI = {
    "empty folder": (["--hr-dir", "empty_dir"], "No images in"),
    "missing folder": (["--hr-dir", "missing"], "No folder at"),
    "a file, not a folder": (["--hr-dir", "good"], "No folder at"),
    "only .txt files": (["--hr-dir", "txt_dir"], "No images in"),
    "truncated PNG": (["--hr-dir", "corrupt_dir"], r"a\.png is not a readable image"),
    "8x8 image at x4": (["--hr-dir", "tiny_dir"], "is 8x8 pixels; at least 19x19 is needed"),
    "missing checkpoint": (["--hr-dir", "odd_dir", "--checkpoint", "missing"], "No checkpoint at"),
    "junk checkpoint": (["--hr-dir", "odd_dir", "--checkpoint", "junk_ckpt"], "not a readable"),
}


@pytest.mark.parametrize("args, phrase", BAD_CLI.values(), ids=BAD_CLI)
def test_cli_eval_sr_bad_input_exits_2_with_one_error_line(files, args, phrase):
    args = [str(files[a]) if a in files else a for a in args]
    code, out, err = cli(["eval-sr", *args])
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(phrase, err), err


def test_cli_upscale_refuses_a_lossy_output_format(files):
    code, _, err = cli(
        ["upscale", str(files["good"]), str(files["dir"] / "x.jpg"), "--checkpoint", "c.pt"]
    )
    assert code == 2 and "lossless image" in err and "'.jpg'" in err


@pytest.mark.parametrize("folder", ["odd_dir", "gray_dir", "rgba_dir"])
def test_cli_eval_sr_handles_odd_sizes_grayscale_and_alpha(files, folder):
    """Sides not divisible by the scale are cropped, as SR papers do; gray and RGBA become RGB."""
    code, out, err = cli(["eval-sr", "--hr-dir", str(files[folder]), "--scale", "4"])
    assert code == 0 and err == ""
    mean = float(out.split("mean PSNR ")[1].split(" dB")[0])
    assert 5 < mean < 40  # random pixels: a finite, low PSNR
