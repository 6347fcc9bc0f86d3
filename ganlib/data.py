"""Datasets by name: digits, CIFAR-10, the super-resolution sets, paired and unpaired photo sets,
and the batch iterators that training reads them through.

Every file comes from :mod:`ganlib.fetch`'s places (shipped with the course, cache, offline mirror
``$GANLIB_DATA_MIRROR``, then download), checked against its checksum (SR images: or their decoded
pixels) before use, and one clear :class:`DatasetUnavailable` says what is missing and how to get
it. Splits are never swapped silently: asking for the MNIST ``train`` split offline is an error,
not the test split in disguise.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import operator
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganlib import fetch
from ganlib.fetch import (
    DatasetUnavailable,
    atomic_copy,
    course_url,
    data_root,
    download_verified,
    fetch_file,
    file_digest,
    html_hint,
    mirror_root,
    shipped_file_ok,
)
from ganlib.images import list_images

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
        shipped = name == "MNIST" and split == "test"  # in data/, and so in the course's repository
        shipped_urls = [course_url(f"{name}/raw/{filename}")] if shipped else []
        try:
            paths.append(
                fetch_file(
                    f"{name}/raw/{filename}",
                    md5,
                    [*shipped_urls, *(m + filename for m in mirrors)],
                    dataset=f"{name} ({split} split)",
                )
            )
        except DatasetUnavailable as err:
            hint = ""
            if name == "MNIST" and split == "train":
                hint = (
                    "\nOffline, only the MNIST test split is available (it ships in data/): "
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
            shipped with the course in ``data/``).
    """
    from torchvision.datasets import MNIST

    return _load_idx_dataset("MNIST", MNIST, split)


def load_fashion_mnist(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST as ``(images uint8 (N, 28, 28), labels int64 (N,))``; needs a download."""
    from torchvision.datasets import FashionMNIST

    return _load_idx_dataset("FashionMNIST", FashionMNIST, split)


def load_cifar10(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 as ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``: 50,000 train, 10,000 test.

    The data is one archive, ``cifar-10-python.tar.gz`` (~170 MB), extracted once into
    ``<cache>/cifar10/cifar-10-batches-py``. The archive comes like every file here (cache, then
    ``$GANLIB_DATA_MIRROR/cifar10/``, then the download URL) and must match torchvision's md5;
    torchvision then checks the md5 of every extracted batch file before reading it.

    Raises:
        DatasetUnavailable: Neither the extracted folder nor the archive can be had (offline),
            with the size, the URL and where to put either.
    """
    import tarfile

    from torchvision.datasets import CIFAR10

    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}.")
    root = data_root() / "cifar10"
    archive = f"cifar10/{CIFAR10.filename}"

    def read():  # RuntimeError when a batch file is missing or fails its md5
        return CIFAR10(root, train=split == "train", download=False)

    try:
        ds = read()
    except RuntimeError:
        try:
            path = fetch_file(archive, CIFAR10.tgz_md5, [CIFAR10.url], dataset="CIFAR-10")
        except DatasetUnavailable as err:
            raise DatasetUnavailable(
                f"{err}\nCIFAR-10 is one ~170 MB archive, {CIFAR10.url}. Offline, download it "
                f"on another machine, then put {CIFAR10.filename} at {data_root() / archive}, or "
                f"its extracted folder {CIFAR10.base_folder}/ at {root / CIFAR10.base_folder}."
            ) from None
        with tarfile.open(path, "r:gz") as tar:
            # "data" refuses links and paths outside root (Python >= 3.11.4).
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(root, **safe)
        try:
            ds = read()
        except RuntimeError:
            raise DatasetUnavailable(
                f"CIFAR-10 ({split} split): {path} passed its md5 but the files extracted into "
                f"{root / CIFAR10.base_folder} did not. Delete that folder and run again."
            ) from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> NCHW
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
        transform: Applied to each tensor of every batch, e.g. ``ganlib.images.to_model_range``
            to keep a large image set as uint8 (a quarter of float32's memory) and train on
            floats. Default: None (batches as stored).
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
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
        if transform is not None and not callable(transform):
            raise ValueError(f"transform must be a function of a tensor, got {transform!r}.")
        self.tensors, self.batch_size, self.n = tensors, batch_size, n
        self.transform = transform
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
        if self.transform is not None:
            out = tuple(self.transform(t) for t in out)
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


class ZipBatches:
    """Draw from two batch iterators in lock step (domain A and domain B), checkpointable.

    Each batch is ``(a, b)``: the first tensor of each iterator's batch (CycleGAN's two unpaired
    domains, ``ganlib.cyclegan.cyclegan_step``)."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __iter__(self):
        return self

    def __next__(self):
        a, b = next(self.a), next(self.b)
        a = a[0] if isinstance(a, tuple | list) else a
        b = b[0] if isinstance(b, tuple | list) else b
        return a, b

    def state_dict(self) -> dict:
        return {"a": self.a.state_dict(), "b": self.b.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.a.load_state_dict(state["a"])
        self.b.load_state_dict(state["b"])


# --- Super-resolution image sets --------------------------------------------------------------
# T91 + BSD200 (the "291" training set), Set5 and Set14 (benchmarks). Two lists ship in
# ganlib/checksums/: sr.sha256, the SHA-256 of every file of the offline mirror (sr/<Name>/...),
# and sr_pixels.sha256, the SHA-256 of every file's decoded pixels (see pixel_digest; made from
# the mirror by scripts/sr_pixel_checksums.py).

SR_SETS = {"set5": "Set5", "set14": "Set14", "t91": "T91", "bsd200": "BSD200"}
# In data/sr/ (T91 as PNG), so always at hand in a clone, and in the course's repository.
SHIPPED_SR_SETS = ("set5", "set14", "t91")

# Archives that hold each set, tried in order when the cache and the mirror lack it. Nobody
# publishes a checksum of them and each packs the images its own way (other names, folders,
# formats, other images beside), so an archive is only a bag of candidates: an image is kept when
# its file or its decoded pixels match one of ours. These addresses were found in the sources named
# but could not be tried from the machines this course is built on (no internet there). One that
# moved or changed only matches fewer images; it cannot bring in an unverified one.
SR_SOURCES = {
    "Set5": (
        # SelfExSR data of Huang et al. 2015, linked from github.com/jbhuang0604/SelfExSR and many
        # SR repositories: image_SRF_{2,3,4}/img_001_SRF_2_HR.png, ..., the naming of our mirror.
        "https://uofi.box.com/shared/static/kfahv87nfe8ax910l85dksyl2q212voc.zip",
        # Hugging Face dataset eugenesiow/Set5 (its Set5.py script; deepinv's Set5HR downloads it).
        "https://huggingface.co/datasets/eugenesiow/Set5/resolve/main/data/Set5_HR.tar.gz",
    ),
    "Set14": (
        "https://uofi.box.com/shared/static/igsnfieh4lz68l926l8xbklwsnnk8we9.zip",  # SelfExSR
        # eugenesiow/Set14 on Hugging Face (its Set14.py; deepinv's Set14HR downloads it).
        "https://huggingface.co/datasets/eugenesiow/Set14/resolve/main/data/Set14_HR.tar.gz",
    ),
    "T91": (
        # SRCNN's training package (Dong et al., mmlab.ie.cuhk.edu.hk/projects/SRCNN.html):
        # Train/t1.bmp ... tt27.bmp, the names of our mirror.
        "http://mmlab.ie.cuhk.edu.hk/projects/SRCNN/SRCNN_train.zip",
    ),
    "BSD200": (
        # BSDS300, whose 200 training images are BSD200, as JPEG: they match only if Pillow decodes
        # them to the mirror's pixels. Address from pytorch/examples super_resolution/data.py.
        "http://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/BSDS300-images.tgz",
        # BSDS500 keeps those 200 as its train split (address from PaddlePaddle's SR tutorial).
        "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz",
    ),
}
_MAX_MEMBER = 256 << 20  # bytes; no SR image comes near, so a bigger archive member is skipped
_CORRUPT_ARCHIVE = (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error)


def _sr_checksums(filename: str = "sr.sha256") -> dict[str, dict[str, str]]:
    from importlib import resources

    sets: dict[str, dict[str, str]] = {}
    text = (resources.files("ganlib") / "checksums" / filename).read_text()
    for line in text.splitlines():
        digest, relpath = line.split()
        folder, name = relpath.split("/", 1)
        sets.setdefault(folder, {})[name] = digest
    return sets


def pixel_digest(path: Path) -> str | None:
    """SHA-256 of an image's decoded pixels, or None when the file is not a readable image.

    The same picture stored as BMP or PNG, or by another PNG encoder, has other file bytes but
    the same pixels. Hashed: the shape ``(3, H, W)`` as text, then the bytes of the uint8 RGB array
    that :func:`ganlib.images.load_image` returns (grayscale repeated to three channels).
    """
    from PIL import Image

    from ganlib.images import load_image

    try:
        img = load_image(path)  # (3, H, W) uint8
    except (ValueError, Image.DecompressionBombError):
        return None
    h = hashlib.sha256(str(tuple(img.shape)).encode())
    h.update(img.numpy().tobytes())
    return h.hexdigest()


def _write_pixels(src: Path, dest: Path, pixels: str) -> bool:
    """Store the pixels of ``src`` at ``dest`` in ``dest``'s format (lossless: PNG or BMP), atomically.

    The written file is checked against ``pixels`` before it takes the name.
    """
    from PIL import Image

    from ganlib.images import load_image

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=dest.suffix)
    os.close(fd)
    try:
        Image.fromarray(load_image(src).permute(1, 2, 0).numpy()).save(tmp)  # (H, W, 3)
        if pixel_digest(Path(tmp)) != pixels:
            return False
        os.replace(tmp, dest)
        return True
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _archive_files(archive: Path, workdir: Path):
    """Yield each regular file of a zip or tar archive (any compression), one at a time.

    Each member is copied to the one fixed path ``workdir/member``, never to a path made from its
    own name, so a member named ``../../x.png`` or ``/etc/x`` cannot write outside ``workdir``.
    Links and directories are skipped.
    """
    out = workdir / "member"
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir() and info.file_size <= _MAX_MEMBER:
                    with zf.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    yield out
    else:
        with tarfile.open(archive) as tf:  # gz, bz2, xz or plain; tarfile.ReadError if no tar
            for info in tf:
                if info.isfile() and info.size <= _MAX_MEMBER:
                    with tf.extractfile(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    yield out


def _take_from_archive(archive: Path, workdir: Path, root: Path, missing: dict) -> None:
    """Place each file of ``archive`` that matches a ``missing`` image under its name in ``root``.

    ``missing`` maps file names to ``(file sha256, pixel sha256)``; placed names are removed from
    it. A byte-identical file is copied; one with the same pixels only is stored re-encoded. One
    member can fill several names (T91's t36.bmp and t65.bmp are the same image).
    """
    by_file, by_pixels = collections.defaultdict(list), collections.defaultdict(list)
    for name, (digest, pixels) in missing.items():
        by_file[digest].append(name)
        by_pixels[pixels].append(name)
    for member in _archive_files(archive, workdir):
        names = [n for n in by_file[file_digest(member, "sha256")] if n in missing]
        for name in names:
            atomic_copy(member, root / name)
        if not names:
            pixels = pixel_digest(member)
            names = [n for n in by_pixels[pixels] if n in missing]
            names = [n for n in names if _write_pixels(member, root / n, pixels)]
        for name in names:
            del missing[name]
        if not missing:
            return


def _sr_from_archives(
    folder: str, missing: dict, timeout: float = 30.0, retries: int = 2, retry_wait: float = 1.0
) -> list[str]:
    """Download the archives of ``SR_SOURCES[folder]`` until nothing is missing.

    Returns one line per address tried: what went wrong, or how many images matched.
    """
    root = data_root() / "sr" / folder
    root.mkdir(parents=True, exist_ok=True)
    notes = []
    for url in SR_SOURCES[folder]:
        if not missing:
            break
        with tempfile.TemporaryDirectory(dir=root.parent, prefix=".download-") as tmp:
            archive = Path(tmp) / "archive"
            problem = download_verified(url, archive, None, "sha256", timeout, retries, retry_wait)
            if problem is not None:
                notes.append(f"{url}: {problem}")
                continue
            if not (zipfile.is_zipfile(archive) or tarfile.is_tarfile(archive)):
                notes.append(
                    f"{url}: downloaded, but not a zip or tar archive.{html_hint(archive)}"
                )
                continue
            before = len(missing)
            try:
                _take_from_archive(archive, Path(tmp), root, missing)
            except _CORRUPT_ARCHIVE as err:
                notes.append(
                    f"{url}: a corrupt archive ({type(err).__name__}: {err}); "
                    f"{before - len(missing)} of {before} missing images matched before that"
                )
                continue
            notes.append(f"{url}: {before - len(missing)} of {before} missing images matched")
    return notes


def _sr_from_course(
    folder: str, missing: dict, timeout: float = 30.0, retries: int = 2, retry_wait: float = 1.0
) -> list[str]:
    """Download the ``missing`` images of a shipped set one by one from the course's repository
    (:func:`ganlib.fetch.course_url`), keeping each only when its file or its pixels match; the
    first failure (offline, a fork without data/) stops it. Returns one line for the notes."""
    from tqdm.auto import tqdm

    root = data_root() / "sr" / folder
    root.mkdir(parents=True, exist_ok=True)
    before = len(missing)
    with tqdm(total=before, desc=f"{folder} from the course's repository", unit="image") as bar:
        for filename, (digest, pixels) in sorted(missing.items()):
            url = course_url(f"sr/{folder}/{Path(filename).stem}.png")  # as shipped: PNG
            with tempfile.TemporaryDirectory(dir=root.parent, prefix=".download-") as tmp:
                image = Path(tmp) / "image"
                problem = download_verified(
                    url, image, None, "sha256", timeout, retries, retry_wait, progress=False
                )
                if problem is None:
                    if file_digest(image, "sha256") == digest:
                        atomic_copy(image, root / filename)
                    elif pixel_digest(image) != pixels or not _write_pixels(
                        image, root / filename, pixels
                    ):
                        problem = (
                            f"not {folder}'s {filename} (neither its file nor its pixels match)"
                        )
            if problem is not None:
                done = before - len(missing)
                return [f"{url}: {problem}; {done} of {before} images came from there"]
            del missing[filename]
            bar.update()
    return [f"{fetch.COURSE_DATA_URL}/sr/{folder}: all {before} missing images came from there"]


def _sr_file_ok(path: Path, digest: str, pixels: str) -> bool:
    return file_digest(path, "sha256") == digest or pixel_digest(path) == pixels


def sr_image_paths(name: str) -> list[Path]:
    """Verified local paths of every image in an SR set (``set5``, ``set14``, ``t91``, ``bsd200``).

    Each image comes from the first place that has it: the copy shipped in ``data/sr/``, the cache
    ``data_root()/sr/<Set>/``, the offline mirror, the course's repository (for the shipped sets:
    an install without ``data/``), else the archives of ``SR_SOURCES`` (downloaded and searched
    image by image).
    An image counts as ours when its file's SHA-256 is in ``sr.sha256``, or when its decoded
    pixels' SHA-256 is in ``sr_pixels.sha256``: a download that stores the same picture another
    way (recompressed PNG, BMP, a JPEG that decodes to exactly our pixels) is accepted, and kept
    as a file re-encoded from those checked pixels. Nothing else is ever placed in the cache.

    The download addresses could not be tested from the machines this course is built on (they
    have no internet). Set5, Set14 and T91 ship with the course (``data/sr/``, T91 as PNG with
    the same pixels), so a clone needs a download only for BSD200 and DIV2K.

    Raises:
        DatasetUnavailable: some images are in none of these places; the message says how many
            came from where and how to fix it.
    """
    key = name.lower()
    if key not in SR_SETS:
        raise ValueError(
            f"Unknown SR dataset {name!r}; choose one of {', '.join(SR_SETS)}, or pass a folder "
            "(DIV2K: load_sr_images('div2k') or fetch_div2k())."
        )
    folder = SR_SETS[key]
    files, pixels = _sr_checksums()[folder], _sr_checksums("sr_pixels.sha256")[folder]
    root, shipped = data_root() / "sr" / folder, fetch.BUNDLED_ROOT / "sr" / folder
    missing, cached, found = {}, 0, {}
    for filename, digest in files.items():
        # the shipped copy keeps the name, or is a PNG of the same pixels (T91's BMPs)
        for name in (filename, f"{Path(filename).stem}.png"):
            ok = shipped_file_ok(f"sr/{folder}/{name}")
            if ok and _sr_file_ok(shipped / name, digest, pixels[filename]):
                found[filename] = shipped / name
                break
        if filename in found:
            continue
        if (root / filename).is_file() and _sr_file_ok(root / filename, digest, pixels[filename]):
            cached += 1
            continue
        try:  # removes a corrupt cached file, then copies from the mirror after checking
            fetch_file(f"sr/{folder}/{filename}", digest, [], dataset=folder, algorithm="sha256")
        except DatasetUnavailable:
            missing[filename] = (digest, pixels[filename])
    from_mirror = len(files) - len(found) - cached - len(missing)
    notes = _sr_from_course(folder, missing) if missing and key in SHIPPED_SR_SETS else []
    notes += _sr_from_archives(folder, missing) if missing else []
    if missing:
        mirror = mirror_root()
        names = sorted(missing)
        raise DatasetUnavailable(
            f"{folder}: {len(missing)} of {len(files)} images are missing ("
            + ", ".join(names[:6])
            + (", ..." if len(names) > 6 else "")
            + ").\nTried:\n  - "
            + "\n  - ".join(
                [
                    f"cache {root}: {cached} images there and verified",
                    f"offline mirror {mirror / 'sr' / folder}: {from_mirror} images copied"
                    if mirror
                    else "offline mirror: GANLIB_DATA_MIRROR is not set",
                    *notes,
                ]
            )
            + f"\nTo fix: connect to the internet and run again, or copy a folder sr/{folder} "
            f"with these images from a machine that has it to {root}, or set GANLIB_DATA_MIRROR "
            f"to the folder that holds sr/{folder}."
        )
    return [found.get(filename, root / filename) for filename in sorted(files)]


# --- DIV2K: the optional larger SR training set -----------------------------------------------
# SHA-256 and sizes in bytes of the HR zips, as listed by TensorFlow Datasets
# (tensorflow_datasets/url_checksums/div2k.txt); then the number of images in each.
DIV2K_ZIPS = {
    "train": ("9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335", 3530603713, 800),
    "valid": ("20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc", 448993893, 100),
}
DIV2K_URLS = (
    "https://data.vision.ee.ethz.ch/cvl/DIV2K/{file}",  # official, as TFDS lists it
    "http://data.vision.ee.ethz.ch/cvl/DIV2K/{file}",  # the same, as the DIV2K page links it
    # A Hugging Face copy; the Git LFS SHA-256 it shows for the train zip equals TFDS's.
    "https://huggingface.co/datasets/goodfellowliu/DIV2K/resolve/main/{file}",
)
DIV2K_SETS = {"div2k": "train", "div2k_valid": "valid"}  # names for load_sr_images


def _unzip_div2k(archive: Path, folder: Path, count: int) -> None:
    """Unpack the ``NNNN.png`` members of a checked DIV2K zip into ``folder``, all or nothing."""
    pattern = re.compile(rf"{folder.name}/(\d{{4}}\.png)")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            match = pattern.fullmatch(info.filename)
            if match:  # the output name is rebuilt from the pattern: no member can point outside
                with zf.open(info) as src, open(partial / match[1], "wb") as dst:
                    shutil.copyfileobj(src, dst)
    got = len(list(partial.glob("*.png")))
    if got != count:
        shutil.rmtree(partial)
        raise DatasetUnavailable(
            f"{archive} holds {got} of the {count} images expected in {folder.name}/ although it "
            "passed its checksum; delete it and run again."
        )
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    (folder / ".complete").write_text(f"unpacked from {archive.name}, sha256 verified\n")


def fetch_div2k(split: str = "train") -> list[Path]:
    """Paths of the DIV2K high-resolution PNGs of a split, downloaded, checked and unpacked once.

    DIV2K (Agustsson & Timofte 2017) is the usual larger SR training set: 2K images of about
    2040x1400 pixels. The zip is checked against the SHA-256 published by TensorFlow Datasets
    before anything is unpacked, then deleted; ``.complete`` in the folder marks a finished unpack.
    Like every download address here, these could not be tested from the course's build machines
    (no internet there).

    Args:
        split: ``"train"`` (800 images, 0001-0800, a 3.5 GB zip) or ``"valid"`` (100 images,
            0801-0900, 0.45 GB). Default: ``"train"``.

    Raises:
        DatasetUnavailable: offline or no address gave the right file; the message gives the
            size and where to put the zip.
    """
    if split not in DIV2K_ZIPS:
        raise ValueError(f"DIV2K split must be one of {', '.join(DIV2K_ZIPS)}, got {split!r}.")
    digest, size, count = DIV2K_ZIPS[split]
    name = f"DIV2K_{split}_HR"
    folder = data_root() / "DIV2K" / name
    if not (folder / ".complete").is_file():
        try:
            archive = fetch_file(
                f"DIV2K/{name}.zip",
                digest,
                [url.format(file=f"{name}.zip") for url in DIV2K_URLS],
                dataset=f"DIV2K ({split})",
                algorithm="sha256",
            )
        except DatasetUnavailable as err:
            raise DatasetUnavailable(
                f"{err}\nDIV2K {split} is a {size / 1e9:.2f} GB zip of {count} PNG images. It is "
                "optional: notebook 02 trains on T91 + BSD200 without it (leave 'div2k' out of "
                "train_sets)."
            ) from None
        _unzip_div2k(archive, folder, count)
        archive.unlink()  # checked and unpacked; the folder is what is used from now on
    return sorted(folder.glob("*.png"))


def load_sr_images(name: str) -> list[tuple[str, torch.Tensor]]:
    """``[(file stem, uint8 RGB tensor (3, H, W)), ...]`` for an SR set; grayscale becomes RGB.

    Args:
        name: ``"set5"``, ``"set14"``, ``"t91"``, ``"bsd200"`` (offline through the mirror), or
            ``"div2k"`` / ``"div2k_valid"`` (a download, see :func:`fetch_div2k`; the 800 train
            images take about 7 GB of memory once loaded).
    """
    from ganlib.images import load_image

    key = name.lower()
    paths = fetch_div2k(DIV2K_SETS[key]) if key in DIV2K_SETS else sr_image_paths(name)
    return [(p.stem, load_image(p)) for p in paths]


def load_training_sets(names: tuple[str, ...] | list[str]) -> list[tuple[str, torch.Tensor]]:
    """:func:`load_sr_images` of several sets, one list, in order. A set that does not ship with
    the course (BSD200, DIV2K) and cannot be had offline is left out with a printed note, so a
    lesson still trains on the sets that ship; a shipped set that fails is an error."""
    images = []
    for name in names:
        try:
            images += load_sr_images(name)
        except DatasetUnavailable as err:
            if name.lower() in SHIPPED_SR_SETS:
                raise
            reason = str(err).strip().splitlines()[0]
            print(f"Training without {name}: {reason}")
    return images


def photos(names: tuple[str, ...] | list[str]) -> list[torch.Tensor]:
    """uint8 RGB images (3, H, W) of the named SR sets (``"t91"``, ``"bsd200"``, ``"set5"``,
    ``"set14"``), one list, in order; sets that do not ship and cannot be had are left out
    (:func:`load_training_sets`)."""
    return [img for _, img in load_training_sets(names)]


# --- pix2pix and CycleGAN datasets (notebook 05) -----------------------------------------------

# SHA-256 and sizes of the CycleGAN archives, as listed by TensorFlow Datasets
# (tensorflow_datasets/url_checksums/cycle_gan.txt).
CYCLEGAN_SETS = {
    "facades": ("9a31ebf3a31b9b5cd195dd5bf62e9308e00cb94604d1019e3889ac84248695c0", 35135868),
    "horse2zebra": ("a74d9d392eecca9966b51287a76ca126af473d9de4f3e8fc0e9cda08fa1730a1", 116867962),
    "apple2orange": ("845a191e9af8926408ea597001cd03a452e3300a1f44a79fe329b3d59f6e3eb8", 78456409),
}
CYCLEGAN_URLS = (
    "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip",  # official
    "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/{name}.zip",  # former home
)
PIX2PIX_URLS = (
    "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz",  # official
    "https://people.eecs.berkeley.edu/~tinghuiz/projects/pix2pix/datasets/{name}.tar.gz",
)


def fetch_cyclegan_set(name: str) -> Path:
    """Download (or find in the cache or mirror) a CycleGAN dataset, check it, unzip it.

    Returns the folder with ``trainA``, ``trainB``, ``testA``, ``testB``. Offline it raises
    :class:`DatasetUnavailable` saying where it looked.
    """
    if name not in CYCLEGAN_SETS:
        raise ValueError(
            f"Unknown CycleGAN set {name!r}; choose one of {', '.join(CYCLEGAN_SETS)}."
        )
    digest, _ = CYCLEGAN_SETS[name]
    archive = fetch_file(
        f"cyclegan/{name}.zip",
        digest,
        [u.format(name=name) for u in CYCLEGAN_URLS],
        dataset=f"CycleGAN {name}",
        algorithm="sha256",
    )
    folder = archive.parent / name
    if not (folder / "trainA").is_dir():
        with zipfile.ZipFile(archive) as z:
            z.extractall(archive.parent)
    return folder


def fetch_pix2pix_set(name: str = "facades", sha256: str | None = None) -> Path:
    """The paired pix2pix archive ``{name}.tar.gz`` (facades, maps, ...), extracted.

    No checksum of these archives is published by their authors or by a dataset library that we
    could find, and ganlib never uses an unverified download: pass the SHA-256 of a copy you
    trust (``sha256=...``), or use :func:`fetch_cyclegan_set` (``"facades"``), whose archive
    has a published checksum. Each image in the archive is a side-by-side pair A|B.
    """
    if sha256 is None:
        where = data_root() / "pix2pix" / f"{name}.tar.gz"
        raise DatasetUnavailable(
            f"pix2pix {name}: no published checksum is known for {name}.tar.gz, so ganlib will not "
            "download it unverified.\nTo fix: download it yourself from "
            f"{PIX2PIX_URLS[0].format(name=name)}, check it, and call "
            f"fetch_pix2pix_set({name!r}, sha256='<its sha256>') (the file may also be put at "
            f"{where}); or use the same pairs from CycleGAN's checksummed archive: "
            f"paired_files(fetch_cyclegan_set({name!r}))."
        )
    archive = fetch_file(
        f"pix2pix/{name}.tar.gz",
        sha256,
        [u.format(name=name) for u in PIX2PIX_URLS],
        dataset=f"pix2pix {name}",
        algorithm="sha256",
    )
    folder = archive.parent / name
    if not folder.is_dir():
        with tarfile.open(archive) as tar:
            tar.extractall(archive.parent, filter="data")
    return folder


def paired_files(folder: str | os.PathLike, split: str = "train") -> list[tuple[Path, Path]]:
    """Pairs ``(a, b)`` of a CycleGAN folder whose A and B sides are the same scenes, by file name.

    CycleGAN's ``facades`` and ``maps`` archives hold the pix2pix pairs split into ``trainA`` and
    ``trainB`` (``1_A.jpg`` with ``1_B.jpg``, ...); their SHA-256 is published, unlike the pix2pix
    archives'. Files pair up by the name without its ``_A``/``_B`` suffix; a file without a
    partner is an error, so an unpaired set (horse2zebra) is never mistaken for a paired one.
    """
    folder = Path(folder)
    sides = {}
    for side in "AB":
        sub = folder / f"{split}{side}"
        if not sub.is_dir():
            raise FileNotFoundError(
                f"{sub} does not exist; expected {split}A/ and {split}B/ in {folder}."
            )
        sides[side] = {p.stem.removesuffix(f"_{side}"): p for p in list_images(sub)}
    only_a = sorted(sides["A"].keys() - sides["B"].keys())
    only_b = sorted(sides["B"].keys() - sides["A"].keys())
    if only_a or only_b:
        raise ValueError(
            f"{folder}: {len(only_a)} {split}A files and {len(only_b)} {split}B files have no "
            f"partner (e.g. {(only_a + only_b)[:3]}); this is not a paired set. Use it unpaired "
            "(CycleGAN), or pass a folder whose A/B files are named <key>_A / <key>_B."
        )
    return [(sides["A"][k], sides["B"][k]) for k in sorted(sides["A"])]


def split_pairs(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A pix2pix side-by-side image (C, H, 2W) -> its halves (A, B), each (C, H, W)."""
    if not isinstance(img, torch.Tensor) or img.ndim != 3:
        shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
        raise ValueError(f"split_pairs takes one image (C, H, 2W), got {shape}.")
    w = img.shape[2]
    if w % 2:
        raise ValueError(f"A side-by-side pair has an even width, got {w}.")
    return img[:, :, : w // 2], img[:, :, w // 2 :]
