"""Downloading the SR sets and DIV2K, against a loopback server (127.0.0.1 only, no internet).

The SR archives have no published checksum, so ganlib accepts their images one by one, by file or
by decoded pixels (ganlib.data.sr_image_paths); DIV2K's zips have TFDS's SHA-256. Every test
keeps the cache in tmp_path with no shipped sets and no mirror, so the real cache and the mirror are never
written.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlib import data, fetch
from ganlib.data import (
    DatasetUnavailable,
    fetch_div2k,
    file_digest,
    load_sr_images,
    pixel_digest,
    sr_image_paths,
)
from ganlib.fetch import BUNDLED_ROOT
from ganlib.images import load_image
from tests.loopback import dead_url

SET5 = [f"img_00{i}.png" for i in range(1, 6)]
SHIPPED = BUNDLED_ROOT  # the real images these tests serve (the fixtures hide it from ganlib)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}

    def serve(self, route: str, body: bytes) -> str:
        self.files[f"/{route}"] = body
        return f"http://127.0.0.1:{self.server_port}/{route}"


@pytest.fixture
def server(loopback_only):
    """A loopback server; the cache in tmp_path/cache, no mirror, no shipped sets, no proxy."""
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in members.items():
            zf.writestr(zipfile.ZipInfo(name), body)
    return buf.getvalue()


def make_tar_gz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def set5_bytes() -> dict[str, bytes]:
    return {name: (SHIPPED / "sr" / "Set5" / name).read_bytes() for name in SET5}


def cache_files(tmp_path: Path) -> list[str]:
    root = tmp_path / "cache"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_zip_with_other_names_folders_and_junk_is_placed_under_our_names(
    server, monkeypatch, tmp_path
):
    originals = set5_bytes()
    members = {
        f"Set5_SR/image_SRF_{i % 3 + 2}/deep/{i}_HR.png": body
        for i, body in enumerate(originals.values())
    }
    members |= {
        "Set5_SR/README.txt": b"not an image",
        "Set5_SR/other.png": encode(Image.new("RGB", (8, 8), (1, 2, 3)), "PNG"),
    }
    url = server.serve("set5.zip", make_zip(members))
    monkeypatch.setitem(data.SR_SOURCES, "Set5", (url,))

    paths = sr_image_paths("set5")

    assert [p.name for p in paths] == SET5
    assert [p.read_bytes() for p in paths] == list(originals.values())
    # no archive, member or temporary folder left behind
    assert cache_files(tmp_path) == [f"sr/Set5/{n}" for n in SET5]
    assert sr_image_paths("set5") == paths and server.hits == {"/set5.zip": 1}  # now cached


def test_re_encoded_pixels_are_accepted_and_stored_checked(server, monkeypatch):
    """A recompressed PNG and a BMP of the same pixels have other bytes: accepted by pixels."""
    originals = set5_bytes()
    members = {}
    for i, (name, body) in enumerate(originals.items()):
        img = Image.open(io.BytesIO(body))
        members[f"HR/{name}.{'bmp' if i % 2 else 'png'}"] = (
            encode(img, "BMP") if i % 2 else encode(img, "PNG", compress_level=1)
        )
    assert all(b not in originals.values() for b in members.values())
    url = server.serve("set5.tar.gz", make_tar_gz(members))
    monkeypatch.setitem(data.SR_SOURCES, "Set5", (url,))

    paths = sr_image_paths("set5")

    for path, body in zip(paths, originals.values(), strict=True):
        assert Image.open(path).format == "PNG" and path.read_bytes() != body
        assert np.array_equal(np.array(Image.open(path)), np.array(Image.open(io.BytesIO(body))))
        assert load_image(path).shape[0] == 3
    # the cache check accepts the re-encoded files without downloading again
    assert sr_image_paths("set5") == paths and server.hits == {"/set5.tar.gz": 1}


def test_an_altered_image_is_refused_and_named(server, monkeypatch, tmp_path):
    originals = set5_bytes()
    pixels = np.array(Image.open(io.BytesIO(originals["img_003.png"])))
    pixels[10, 10, 0] ^= 1  # one value in one pixel, off by one
    altered = encode(Image.fromarray(pixels), "PNG")
    members = {f"x/{n}": (altered if n == "img_003.png" else b) for n, b in originals.items()}
    url = server.serve("set5.zip", make_zip(members))
    monkeypatch.setitem(data.SR_SOURCES, "Set5", (url,))

    with pytest.raises(DatasetUnavailable) as err:
        sr_image_paths("set5")

    msg = str(err.value)
    assert "Set5: 1 of 5 images are missing (img_003.png)" in msg
    assert f"{url}: 4 of 5 missing images matched" in msg
    assert "GANLIB_DATA_MIRROR" in msg and "shared" not in msg  # no path of our machines
    assert cache_files(tmp_path) == [f"sr/Set5/{n}" for n in SET5 if n != "img_003.png"]


def test_offline_lists_every_place_tried_and_the_fix(server, monkeypatch):
    dead, missing = dead_url(), f"http://127.0.0.1:{server.server_port}/nothing.tar.gz"
    monkeypatch.setitem(data.SR_SOURCES, "Set5", (dead, missing))

    with pytest.raises(DatasetUnavailable) as err:
        sr_image_paths("set5")

    msg = str(err.value)
    root = data.data_root() / "sr" / "Set5"
    assert "Set5: 5 of 5 images are missing" in msg
    assert f"cache {root}: 0 images there and verified" in msg
    assert "GANLIB_DATA_MIRROR is not set" in msg
    assert f"{dead}: ConnectionRefusedError" in msg and f"{missing}: HTTP 404" in msg
    assert f"copy a folder sr/Set5 with these images from a machine that has it to {root}" in msg
    assert "set GANLIB_DATA_MIRROR" in msg
    assert not any(p.is_file() for p in root.rglob("*"))


def test_an_html_page_instead_of_an_archive_says_so(server, monkeypatch):
    url = server.serve("login", b"<!DOCTYPE html><html>Please sign in</html>")
    monkeypatch.setitem(data.SR_SOURCES, "Set5", (url,))
    with pytest.raises(
        DatasetUnavailable,
        match="downloaded, but not a zip or tar archive. The server sent an HTML",
    ):
        sr_image_paths("set5")


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archive_members_never_write_outside_the_work_folder(server, monkeypatch, tmp_path, kind):
    body = set5_bytes()["img_001.png"]
    names = ["../../escaped.png", "../../../escaped2.png", f"{tmp_path}/abs/escaped3.png"]
    members = dict.fromkeys(names, body)
    archive = (
        make_zip(members)
        if kind == "zip"
        else make_tar_gz(members, links={"link.png": str(tmp_path / "target.png")})
    )
    url = server.serve(f"evil.{kind}", archive)
    monkeypatch.setitem(data.SR_SOURCES, "Set5", (url,))

    with pytest.raises(DatasetUnavailable, match="4 of 5 images are missing"):
        sr_image_paths("set5")

    assert list(tmp_path.rglob("escaped*")) == [] and not (tmp_path / "abs").exists()
    assert not (tmp_path / "target.png").exists()
    # the content was still ours, so it is placed, under our name only
    assert cache_files(tmp_path) == ["sr/Set5/img_001.png"]


def test_one_member_fills_every_name_with_that_content(mirror, server, monkeypatch, tmp_path):
    """T91's t36.bmp and t65.bmp are the same file: one copy in an archive gives both. (The
    original BMPs come from the mirror, read before server's loopback_only unsets it.)"""
    body = (mirror / "sr" / "T91" / "t36.bmp").read_bytes()
    assert body == (mirror / "sr" / "T91" / "t65.bmp").read_bytes()
    url = server.serve("t91.zip", make_zip({"Train/t36.bmp": body}))
    monkeypatch.setitem(data.SR_SOURCES, "T91", (url,))
    with pytest.raises(DatasetUnavailable, match="89 of 91 images are missing"):
        sr_image_paths("t91")
    assert cache_files(tmp_path) == ["sr/T91/t36.bmp", "sr/T91/t65.bmp"]


def serve_course_data(server, monkeypatch, relpaths) -> None:
    """The course's repository on the loopback server, serving these shipped files."""
    monkeypatch.setattr(fetch, "COURSE_DATA_URL", f"http://127.0.0.1:{server.server_port}/data")
    for relpath in relpaths:
        server.serve(f"data/{relpath}", (SHIPPED / relpath).read_bytes())


def test_an_install_without_data_gets_the_shipped_sets_from_the_course_repository(
    server, monkeypatch, tmp_path
):
    """Colab's pip install has no data/ folder: Set5 (same files) and T91 (PNG for BMP, checked by
    pixels and stored under the BMP names) come from the repository, before any archive."""
    monkeypatch.setitem(data.SR_SOURCES, "Set5", (dead_url(),))
    monkeypatch.setitem(data.SR_SOURCES, "T91", (dead_url(),))
    t91 = sorted(p.relative_to(SHIPPED).as_posix() for p in (SHIPPED / "sr" / "T91").glob("*.png"))
    serve_course_data(server, monkeypatch, [f"sr/Set5/{n}" for n in SET5] + t91)

    assert [p.name for p in sr_image_paths("set5")] == SET5
    paths = sr_image_paths("t91")
    assert len(paths) == 91 and all(p.suffix == ".bmp" and p.is_file() for p in paths)
    for p in paths[:3]:
        assert torch.equal(load_image(p), load_image(SHIPPED / "sr" / "T91" / f"{p.stem}.png"))
    assert len(server.hits) == 5 + 91 and set(server.hits.values()) == {1}  # each image once


def test_a_wrong_file_from_the_course_repository_is_refused_and_the_archives_tried(
    server, monkeypatch, tmp_path
):
    serve_course_data(server, monkeypatch, [f"sr/Set5/{n}" for n in SET5])
    server.files["/data/sr/Set5/img_001.png"] = (
        SHIPPED / "sr" / "Set5" / "img_002.png"
    ).read_bytes()
    dead = dead_url()
    monkeypatch.setitem(data.SR_SOURCES, "Set5", (dead,))

    with pytest.raises(DatasetUnavailable) as err:
        sr_image_paths("set5")

    msg = str(err.value)
    assert "img_001.png: not Set5's img_001.png (neither its file nor its pixels match)" in msg
    assert f"{dead}: ConnectionRefusedError" in msg
    assert cache_files(tmp_path) == []  # the first failure stops: nothing unchecked is kept


def test_a_set_half_from_the_course_repository_is_completed_from_an_archive(
    server, monkeypatch, tmp_path
):
    serve_course_data(server, monkeypatch, [f"sr/Set5/{n}" for n in SET5])
    server.files["/data/sr/Set5/img_003.png"] = b"<html>moved</html>"
    url = server.serve("set5.zip", make_zip(set5_bytes()))
    monkeypatch.setitem(data.SR_SOURCES, "Set5", (url,))

    assert [p.name for p in sr_image_paths("set5")] == SET5
    assert cache_files(tmp_path) == [f"sr/Set5/{n}" for n in SET5]
    course = {k for k in server.hits if k.startswith("/data/")}
    assert course == {f"/data/sr/Set5/img_00{i}.png" for i in (1, 2, 3)}  # stopped at img_003
    assert server.hits["/set5.zip"] == 1


def test_offline_the_course_repository_costs_one_attempt(server, monkeypatch):
    monkeypatch.setitem(data.SR_SOURCES, "T91", ())
    with pytest.raises(
        DatasetUnavailable, match=r"t1.png: ConnectionRefused.*; 0 of 91 images came"
    ) as err:
        sr_image_paths("t91")  # loopback_only's course URL: a port nothing listens on
    assert "attempts" not in str(err.value)  # a refused connection is not retried


def test_the_mnist_test_split_comes_from_the_course_repository(server, monkeypatch):
    serve_course_data(
        server,
        monkeypatch,
        [f"MNIST/raw/t10k-{k}-idx{d}-ubyte.gz" for k, d in (("images", 3), ("labels", 1))],
    )
    images, labels = data.load_mnist("test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert sorted(server.hits) == [
        "/data/MNIST/raw/t10k-images-idx3-ubyte.gz",
        "/data/MNIST/raw/t10k-labels-idx1-ubyte.gz",
    ]


def test_shipped_pixel_checksums_match_the_mirror(mirror):
    """sr_pixels.sha256 agrees with pixel_digest on every mirror file (scripts/ made it)."""
    for name, files in data._sr_checksums("sr_pixels.sha256").items():
        for filename, pixels in files.items():
            path = mirror / "sr" / name / filename
            assert pixel_digest(path) == pixels, path
    assert sum(len(f) for f in data._sr_checksums("sr_pixels.sha256").values()) == 310
    assert pixel_digest(Path(__file__)) is None  # not an image


# --- DIV2K ------------------------------------------------------------------------------------


def fake_div2k() -> tuple[bytes, str]:
    rng = np.random.default_rng(0)
    pngs = {
        f"DIV2K_train_HR/000{i}.png": encode(
            Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)), "PNG"
        )
        for i in (1, 2)
    }
    pngs |= {"DIV2K_train_HR/readme.txt": b"x", "../../DIV2K_train_HR/0003.png": b"evil"}
    body = make_zip(pngs)
    return body, hashlib.sha256(body).hexdigest()


def test_div2k_offline_says_size_and_where_the_zip_goes(server, monkeypatch):
    monkeypatch.setattr(data, "DIV2K_URLS", (dead_url(),))
    with pytest.raises(DatasetUnavailable) as err:
        fetch_div2k("train")
    msg = str(err.value)
    assert "DIV2K train is a 3.53 GB zip of 800 PNG images" in msg
    assert str(data.data_root() / "DIV2K" / "DIV2K_train_HR.zip") in msg
    assert "GANLIB_DATA_MIRROR" in msg and "train_sets" in msg
    with pytest.raises(ValueError, match="train, valid"):
        fetch_div2k("test")


def test_div2k_zip_failing_its_checksum_is_refused(server, monkeypatch, tmp_path):
    body, digest = fake_div2k()
    url = server.serve("DIV2K_train_HR.zip", body)
    monkeypatch.setattr(data, "DIV2K_URLS", (url.replace("DIV2K_train_HR.zip", "{file}"),))
    wrong = digest[::-1]
    monkeypatch.setitem(data.DIV2K_ZIPS, "train", (wrong, len(body), 2))
    with pytest.raises(DatasetUnavailable, match="failed its sha256 checksum"):
        fetch_div2k("train")
    assert server.hits == {"/DIV2K_train_HR.zip": 1}
    assert cache_files(tmp_path) == []


def test_div2k_checked_zip_is_unpacked_once(server, monkeypatch, tmp_path):
    body, digest = fake_div2k()
    url = server.serve("DIV2K_train_HR.zip", body)
    monkeypatch.setattr(data, "DIV2K_URLS", (url.replace("DIV2K_train_HR.zip", "{file}"),))
    monkeypatch.setitem(data.DIV2K_ZIPS, "train", (digest, len(body), 2))

    paths = fetch_div2k("train")

    assert [p.name for p in paths] == ["0001.png", "0002.png"]
    assert cache_files(tmp_path) == [
        "DIV2K/DIV2K_train_HR/.complete",
        "DIV2K/DIV2K_train_HR/0001.png",
        "DIV2K/DIV2K_train_HR/0002.png",
    ]  # the zip is deleted, the junk and the ../ member are not unpacked
    images = load_sr_images("div2k")
    assert [n for n, _ in images] == ["0001", "0002"] and images[0][1].shape == (3, 12, 16)
    assert server.hits == {"/DIV2K_train_HR.zip": 1}
    assert (
        file_digest(paths[0], "sha256")
        == hashlib.sha256(
            zipfile.ZipFile(io.BytesIO(body)).read("DIV2K_train_HR/0001.png")
        ).hexdigest()
    )
