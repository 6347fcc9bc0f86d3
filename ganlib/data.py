"""Datasets by name, with checksums, offline mirrors and one clear error when data is missing.

Where data comes from, in order:

1. the cache folder ``$GANLIB_DATA`` (default: ``data/`` in the repository, else
   ``~/.cache/ganlib/data``), when the files there pass their checksum;
2. an offline mirror ``$GANLIB_DATA_MIRROR`` laid out like ``../shared/datasets``
   (``MNIST/raw/*.gz``, ``sr/Set5/*.png``, ...), copied into the cache after checking;
3. the dataset's official download URLs.

If all three fail, :class:`DatasetUnavailable` says which dataset, where it looked and how to get
it. Splits are never swapped silently: asking for the MNIST ``train`` split offline is an error,
not the test split in disguise.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import operator
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

_REPO_DATA = Path(__file__).resolve().parents[1] / "data"


class DatasetUnavailable(FileNotFoundError):
    """A dataset is not in the cache or mirror and could not be downloaded."""


class IncompleteDownload(OSError):
    """The server closed the connection before sending the whole file."""


def data_root() -> Path:
    """The download cache: ``$GANLIB_DATA``, else the repository's ``data/``, else ~/.cache."""
    if os.environ.get("GANLIB_DATA"):
        return Path(os.environ["GANLIB_DATA"]).expanduser()
    if _REPO_DATA.is_dir():
        return _REPO_DATA
    return Path.home() / ".cache" / "ganlib" / "data"


def mirror_root() -> Path | None:
    """The offline mirror ``$GANLIB_DATA_MIRROR``, or None when unset."""
    mirror = os.environ.get("GANLIB_DATA_MIRROR")
    return Path(mirror).expanduser() if mirror else None


def file_digest(path: Path, algorithm: str = "md5") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def download(url: str, dest: Path, *, timeout: float = 30.0) -> None:
    """Download ``url`` to ``dest`` through a temporary file: ``dest`` never holds a partial body.

    Args:
        url: The file's address.
        dest: Where to put it.
        timeout (float): Seconds to wait for the connection, and for each read, before giving up.
            Default: 30.

    Raises:
        urllib.error.HTTPError: The server answered with an error status (404, 500, ...).
        IncompleteDownload: The body is shorter than its Content-Length (the connection dropped).
        OSError: No connection, or no data for ``timeout`` seconds (``TimeoutError``).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length", "")
            shutil.copyfileobj(resp, out, length=1 << 20)
            got = out.tell()
        # http.client returns a short body without complaint when the server hangs up early.
        if expected.isdigit() and got != int(expected):
            raise IncompleteDownload(
                f"truncated download: the connection closed after {got} of {expected} bytes"
            )
        os.replace(tmp, dest)
    except http.client.HTTPException as err:  # IncompleteRead, BadStatusLine: not OSErrors
        raise IncompleteDownload(f"broken HTTP response ({type(err).__name__}: {err})") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _is_transient(err: Exception) -> bool:
    """Whether trying the same URL again may help: server errors, timeouts, dropped connections.

    A 404, a refused connection, no DNS (offline) or a wrong checksum will not change in a second.
    """
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500 or err.code in (408, 429)
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    return isinstance(
        reason, TimeoutError | ConnectionResetError | ConnectionAbortedError | IncompleteDownload
    )


def _describe(err: Exception, timeout: float) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, TimeoutError):
        return f"timed out (no data for {timeout:g} s)"
    if isinstance(reason, str | IncompleteDownload):
        return str(reason)
    return f"{type(reason).__name__}: {reason}"


def _checksum_problem(path: Path, algorithm: str, digest: str, checksum: str) -> str:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    what = (
        " The server sent an HTML page (an error or login page?), not the file."
        if head.startswith((b"<!doctype html", b"<html"))
        else ""
    )
    return (
        f"downloaded file failed its {algorithm} checksum (got {digest[:12]}..., "
        f"expected {checksum[:12]}...; removed).{what}"
    )


def _try_download(url: str, dest: Path, checksum: str, algorithm: str, timeout: float):
    """One attempt: download beside ``dest``, check the checksum, only then move it into place.

    Returns ``(None, False)`` on success, else ``(what went wrong, whether a retry may help)``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    staged = Path(staged)
    try:
        download(url, staged, timeout=timeout)
        digest = file_digest(staged, algorithm)
        if digest != checksum:
            return _checksum_problem(staged, algorithm, digest, checksum), False
        os.replace(staged, dest)
        return None, False
    except (OSError, http.client.HTTPException) as err:  # URLError and HTTPError are OSErrors
        if isinstance(err, urllib.error.HTTPError):
            err.close()
        return _describe(err, timeout), _is_transient(err)
    finally:
        staged.unlink(missing_ok=True)


def fetch_file(
    relpath: str,
    checksum: str,
    urls: list[str],
    *,
    dataset: str,
    algorithm: str = "md5",
    timeout: float = 30.0,
    retries: int = 2,
    retry_wait: float = 1.0,
) -> Path:
    """Return a verified local copy of ``relpath`` (relative to the cache and the mirror).

    Tries the cache, then the mirror, then each URL; every candidate must match ``checksum``
    before it is put at its final place, so a partial or wrong file is never taken for the data.

    Args:
        relpath: Path of the file inside the cache and the mirror, e.g. ``"MNIST/raw/x.gz"``.
        checksum: Expected hex digest.
        urls: Download addresses, tried in order.
        dataset: Name used in the error message.
        algorithm (str): ``"md5"`` or ``"sha256"``. Default: ``"md5"``.
        timeout (float): Seconds without data before a download attempt is given up. Default: 30.
        retries (int): Extra attempts per URL after a transient failure (HTTP 5xx, timeout,
            dropped connection). Default: 2.
        retry_wait (float): Seconds before the first retry, doubled for each next one. Default: 1.

    Raises:
        DatasetUnavailable: listing every place tried and what went wrong there.
    """
    dest = data_root() / relpath
    tried = []
    if dest.is_file():
        if file_digest(dest, algorithm) == checksum:
            return dest
        tried.append(f"{dest}: checksum mismatch (corrupt or partial file; removed)")
        dest.unlink()
    else:
        tried.append(f"{dest}: not there")

    mirror = mirror_root()
    if mirror is None:
        tried.append("offline mirror: GANLIB_DATA_MIRROR is not set")
    else:
        src = mirror / relpath
        if not src.is_file():
            tried.append(f"{src}: not there")
        elif file_digest(src, algorithm) != checksum:
            tried.append(f"{src}: checksum mismatch")
        else:
            _atomic_copy(src, dest)
            return dest

    for url in urls:
        problems = []
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(retry_wait * 2 ** (attempt - 1))
            problem, transient = _try_download(url, dest, checksum, algorithm, timeout)
            if problem is None:
                return dest
            problems.append(problem)
            if not transient:
                break
        if len(problems) > 1 and len(set(problems)) == 1:
            tried.append(f"{url}: {problems[0]} ({len(problems)} attempts)")
        else:
            tried.append(f"{url}: " + "; then ".join(problems))

    raise DatasetUnavailable(
        f"{dataset}: could not get {relpath}.\nTried:\n  - "
        + "\n  - ".join(tried)
        + f"\nTo fix: connect to the internet and run again, or put the file at {dest}, or set "
        "GANLIB_DATA_MIRROR to a folder holding it (e.g. ../shared/datasets)."
    )


# --- MNIST-format digit sets -----------------------------------------------------------------
# torchvision.datasets.MNIST needs all four files even to read one split, so the offline
# test split could not load through it. We reuse its URLs and checksums and parse the idx
# files (a 16-byte header, then raw uint8 pixels) directly.


def _idx_resources(dataset_cls) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for filename, md5 in dataset_cls.resources:
        splits["train" if filename.startswith("train") else "test"].append((filename, md5))
    return splits, list(dataset_cls.mirrors)


def _read_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    header = 8 + 4 * len(item_shape)
    got_magic, count = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
    if got_magic != magic or len(data) != header + count * int(np.prod(item_shape, dtype=int)):
        raise ValueError(
            f"{path} is not a valid idx file (corrupt download?). Delete it and retry."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(count, *item_shape)


def _load_idx_dataset(name: str, dataset_cls, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if split not in ("train", "test"):
        raise ValueError(f"{name} split must be 'train' or 'test', got {split!r}.")
    resources, mirrors = _idx_resources(dataset_cls)
    paths = []
    for filename, md5 in resources[split]:
        try:
            paths.append(
                fetch_file(
                    f"{name}/raw/{filename}",
                    md5,
                    [m + filename for m in mirrors],
                    dataset=f"{name} ({split} split)",
                )
            )
        except DatasetUnavailable as err:
            hint = ""
            if name == "MNIST" and split == "train":
                hint = (
                    "\nOffline, only the MNIST test split is available (../shared/datasets): "
                    "pass the split explicitly, e.g. `python -m ganlib course --only 01 "
                    "-p mnist_split=test`, or set mnist_split = 'test' in the parameters cell."
                )
            raise DatasetUnavailable(f"{err}{hint}") from None
    images = _read_idx(paths[0], 2051, (28, 28))
    labels = _read_idx(paths[1], 2049, ())
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def load_mnist(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as ``(images uint8 (N, 28, 28), labels int64 (N,))``.

    Args:
        split: ``"train"`` (60,000 digits, needs a download) or ``"test"`` (10,000 digits,
            available offline through ``GANLIB_DATA_MIRROR``).
    """
    from torchvision.datasets import MNIST

    return _load_idx_dataset("MNIST", MNIST, split)


def load_fashion_mnist(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST as ``(images uint8 (N, 28, 28), labels int64 (N,))``; needs a download."""
    from torchvision.datasets import FashionMNIST

    return _load_idx_dataset("FashionMNIST", FashionMNIST, split)


def load_cifar10(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 as ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``; needs a download."""
    from torchvision.datasets import CIFAR10

    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}.")
    root = data_root() / "cifar10"
    try:
        ds = CIFAR10(root, train=split == "train", download=True)
    except (urllib.error.URLError, OSError, RuntimeError) as err:
        raise DatasetUnavailable(
            f"CIFAR-10 ({split} split): not in {root} and the download failed ({err}).\n"
            f"To fix: connect to the internet and run again, or place the extracted "
            f"'cifar-10-batches-py' folder in {root}."
        ) from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(ds.targets, dtype=torch.int64)


def mnist_for_gan(split: str, heldout: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Training digits for a GAN and held-out real digits for evaluation (both uint8).

    The held-out digits are always the last ``heldout`` digits of the *test* split. With
    ``split="train"`` the GAN trains on all 60,000 training digits; with ``split="test"`` (the
    offline case) it trains on the rest of the test split, so the two sets never overlap.
    """
    test_images, _ = load_mnist("test")
    held = test_images[-heldout:]
    if split == "test":
        return test_images[:-heldout], held
    train_images, _ = load_mnist(split)
    return train_images, held


class Batches:
    """Endless shuffled minibatches drawn from tensors already in memory, e.g. on the GPU.

    Small datasets (MNIST is 47 MB as uint8) fit on the device, so no DataLoader workers are
    needed. Each epoch is a fresh permutation from the iterator's own random generator, and
    :meth:`state_dict` captures the position exactly, so a resumed run sees the same batches.

    Args:
        *tensors: Tensors with the same first dimension N (e.g. images and labels).
        batch_size: Examples per batch (the last incomplete batch of an epoch is dropped).
        seed: Seed of the shuffling generator. Default: 0.
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, seed: int = 0):
        if not tensors:
            raise ValueError("Batches needs at least one tensor.")
        for i, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor):
                raise ValueError(
                    f"Batches takes torch tensors, but argument {i} is a {type(t).__name__}. "
                    "Convert it first, e.g. with torch.as_tensor(x)."
                )
            if t.ndim == 0:
                raise ValueError(
                    f"Tensor {i} given to Batches is a single number (shape ()); it needs a first "
                    "dimension that counts the examples, shape (N, ...)."
                )
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError(
                f"All tensors need the same length, got {[t.shape[0] for t in tensors]}."
            )
        for i, t in enumerate(tensors):
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise ValueError(
                    f"Tensor {i} given to Batches contains NaN or inf values; fix the data first."
                )
        if n == 0:
            raise ValueError(
                "Batches got an empty dataset (0 examples). Check that the data loaded: the "
                "folder, the split, or a filter that removed everything."
            )
        try:
            batch_size = operator.index(batch_size)
        except TypeError:
            raise ValueError(f"batch_size must be a whole number, got {batch_size!r}.") from None
        if not 0 < batch_size <= n:
            raise ValueError(f"batch_size must be in 1..{n} (the dataset size), got {batch_size}.")
        self.tensors, self.batch_size, self.n = tensors, batch_size, n
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(n, generator=self.generator)
        self.pos = 0
        self.epoch = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.pos + self.batch_size > self.n:
            self.order = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
            self.epoch += 1
        idx = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        idx = idx.to(self.tensors[0].device, non_blocking=True)
        out = tuple(t[idx] for t in self.tensors)
        return out[0] if len(out) == 1 else out

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "order": self.order.clone(),
            "pos": self.pos,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        if state["order"].numel() != self.n:
            raise ValueError(
                f"This batch state is for a dataset of {state['order'].numel()} examples, "
                f"but the data now has {self.n}. Resume with the same data (same split)."
            )
        self.generator.set_state(state["generator"])
        self.order, self.pos, self.epoch = state["order"].clone(), state["pos"], state["epoch"]


# --- Super-resolution image sets --------------------------------------------------------------
# T91 + BSD200 (the "291" training set), Set5 and Set14 (benchmarks). Their SHA-256 sums ship in
# ganlib/checksums/sr.sha256; files come from the cache or the offline mirror (sr/<Name>/).

SR_SETS = {"set5": "Set5", "set14": "Set14", "t91": "T91", "bsd200": "BSD200"}


def _sr_checksums() -> dict[str, dict[str, str]]:
    from importlib import resources

    sets: dict[str, dict[str, str]] = {}
    text = (resources.files("ganlib") / "checksums" / "sr.sha256").read_text()
    for line in text.splitlines():
        digest, relpath = line.split()
        folder, filename = relpath.split("/", 1)
        sets.setdefault(folder, {})[filename] = digest
    return sets


def sr_image_paths(name: str) -> list[Path]:
    """Verified local paths of every image in an SR set (``set5``, ``set14``, ``t91``, ``bsd200``)."""
    key = name.lower()
    if key not in SR_SETS:
        raise ValueError(
            f"Unknown SR dataset {name!r}; choose one of {', '.join(SR_SETS)}, or pass a folder."
        )
    folder = SR_SETS[key]
    files = _sr_checksums()[folder]
    return [
        fetch_file(f"sr/{folder}/{filename}", digest, [], dataset=folder, algorithm="sha256")
        for filename, digest in sorted(files.items())
    ]


def load_sr_images(name: str) -> list[tuple[str, torch.Tensor]]:
    """``[(file stem, uint8 RGB tensor (3, H, W)), ...]`` for an SR set; grayscale becomes RGB."""
    from ganlib.images import load_image

    return [(p.stem, load_image(p)) for p in sr_image_paths(name)]
