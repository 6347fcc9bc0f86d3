"""Where a dataset file comes from, checked: shipped with the course, cache, mirror, download.

:func:`fetch_file` returns a verified local copy of one file, looking in order at

1. the small sets that ship with the course in the repository's ``data/`` (the MNIST test split,
   Set5, Set14, T91: see ``data/README.md``), when they pass their checksum;
2. the cache folder ``$GANLIB_DATA`` (default: ``data/`` in the repository, else
   ``~/.cache/ganlib/data``), when the files there pass their checksum;
3. an offline mirror ``$GANLIB_DATA_MIRROR`` laid out like the cache (``MNIST/raw/*.gz``,
   ``sr/Set5/*.png``, ...), copied into the cache after checking;
4. the download URLs (pooch's downloader, with a progress bar), each retried after transient
   failures; a file is renamed into place only once its checksum matches. For the shipped sets
   the first is the course's own repository (:func:`course_url`), then the dataset's servers.

If all fail, :class:`DatasetUnavailable` says which dataset, where it looked and how to get it.
:mod:`ganlib.data` builds the datasets on top of this.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
import urllib.error
from pathlib import Path

import pooch
import requests
import urllib3

from ganlib import __version__
from ganlib.colab import REF, REPOSITORY

_REPO_DATA = Path(__file__).resolve().parents[1] / "data"
# The sets committed with the course (data/README.md). A module attribute so that tests of the
# download paths can hide them.
BUNDLED_ROOT = _REPO_DATA
# Sent with every download; a server that refuses bots sees who asks and where to read about it.
USER_AGENT = f"ganlib/{__version__} (+https://github.com/{REPOSITORY})"
# The shipped sets are also files of the course's repository: the first download address of each,
# for an install without the clone's data/ folder (Colab's `pip install git+...`, a wheel).
COURSE_DATA_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{REF}/data"


def course_url(relpath: str) -> str:
    """Where the course's repository serves ``data/<relpath>`` (:data:`COURSE_DATA_URL`)."""
    return f"{COURSE_DATA_URL}/{relpath}"


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
    return pooch.file_hash(str(path), alg=algorithm)


def atomic_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def download(url: str, dest: Path, *, timeout: float = 30.0, progress: bool = True) -> None:
    """Download ``url`` to ``dest`` with a progress bar; ``dest`` is removed if the download fails.

    pooch's HTTPDownloader does the transfer (requests, and a tqdm bar on stderr). It names itself
    :data:`USER_AGENT`: some servers refuse Python's default one (MNIST's answered 403 to it,
    pytorch/vision#1938). :func:`fetch_file` downloads to a temporary name and renames only a
    verified file, so a partial one is never taken for data.

    Args:
        url: The file's address.
        dest: Where to put it.
        timeout (float): Seconds to wait for the connection, and for each read, before giving up.
            Default: 30.
        progress (bool): Show pooch's progress bar. Default: True.

    Raises:
        requests.HTTPError: The server answered with an error status (404, 500, ...).
        IncompleteDownload: The body is shorter than its Content-Length (the connection dropped).
        OSError: No connection, or no data for ``timeout`` seconds (requests' errors are OSErrors).
    """
    get = pooch.HTTPDownloader(
        progressbar=progress,
        chunk_size=1 << 20,
        timeout=timeout,
        # identity: else a .gz that a server sends with Content-Encoding: gzip arrives unzipped
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        get(url, str(dest), None)
    except BaseException as err:
        dest.unlink(missing_ok=True)
        # urllib3 checks the body against its Content-Length: IncompleteRead(got, bytes left).
        short = _innermost(err)
        if isinstance(short, urllib3.exceptions.IncompleteRead):
            raise IncompleteDownload(
                "truncated download: the connection closed after "
                f"{short.partial} of {short.partial + short.expected} bytes"
            ) from None
        raise


def _innermost(err: BaseException) -> BaseException:
    """The error under a requests -> urllib3 -> socket chain (e.g. ConnectionRefusedError)."""
    inner = err.__cause__ or next((a for a in err.args if isinstance(a, BaseException)), None)
    return err if inner is None else _innermost(inner)


def _is_transient(err: Exception) -> bool:
    """Whether trying the same URL again may help: server errors, timeouts, dropped connections.

    A 404, a refused connection, no DNS (offline) or a wrong checksum will not change in a second.
    """
    if isinstance(err, requests.HTTPError):
        return err.response.status_code >= 500 or err.response.status_code in (408, 429)
    transient = TimeoutError | ConnectionResetError | ConnectionAbortedError | IncompleteDownload
    return isinstance(_innermost(err), transient)


def _describe(err: Exception, timeout: float) -> str:
    if isinstance(err, requests.HTTPError):
        return f"HTTP {err.response.status_code} {err.response.reason}"
    reason = _innermost(err)
    if isinstance(reason, TimeoutError):
        return f"timed out (no data for {timeout:g} s)"
    if isinstance(reason, urllib.error.URLError):  # a sentence (tests' no_network fixture)
        return str(reason.reason)
    if isinstance(reason, IncompleteDownload):
        return str(reason)
    return f"{type(reason).__name__}: {reason}"


def html_hint(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return " The server sent an HTML page (an error or login page?), not the file."
    return ""


def download_verified(
    url: str,
    dest: Path,
    checksum: str | None,
    algorithm: str,
    timeout: float,
    retries: int,
    retry_wait: float,
    progress: bool = True,
) -> str | None:
    """Download beside ``dest``, check the checksum, only then move the file into place; again
    after transient failures (:func:`_is_transient`), the wait doubling each time.

    ``checksum=None`` skips the check, for an archive whose contents are checked one by one;
    ``progress=False`` hides the bar (many small files under one bar of their own).
    Returns None on success, else what went wrong, one entry per attempt.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    problems = []
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(retry_wait * 2 ** (attempt - 1))
        fd, staged = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(fd)
        staged = Path(staged)
        try:
            download(url, staged, timeout=timeout, progress=progress)
            if checksum is None or (digest := file_digest(staged, algorithm)) == checksum:
                os.replace(staged, dest)
                return None
            problems.append(
                f"downloaded file failed its {algorithm} checksum (got {digest[:12]}..., "
                f"expected {checksum[:12]}...; removed).{html_hint(staged)}"
            )
            break
        except OSError as err:  # requests' errors and URLError are OSErrors
            problems.append(_describe(err, timeout))
            if not _is_transient(err):
                break
        finally:
            staged.unlink(missing_ok=True)
    if len(problems) > 1 and len(set(problems)) == 1:
        return f"{problems[0]} ({len(problems)} attempts)"
    return "; then ".join(problems)


@functools.lru_cache(maxsize=4)
def _shipped_sums(root: Path) -> dict[str, str]:
    """``{relpath: sha256}`` of the files shipped in ``root`` (its ``SHA256SUMS``), read once."""
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        return {}
    return {
        rel: digest
        for digest, rel in (line.split() for line in sums.read_text().splitlines() if line)
    }


def shipped_file_ok(relpath: str) -> bool:
    """Whether ``relpath`` is one of the files shipped in ``data/`` and matches the SHA-256 that
    ``data/SHA256SUMS`` lists for it (the rest of ``data/`` is the download cache)."""
    digest = _shipped_sums(BUNDLED_ROOT).get(relpath)
    path = BUNDLED_ROOT / relpath
    return digest is not None and path.is_file() and file_digest(path, "sha256") == digest


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
    if shipped_file_ok(relpath) and file_digest(BUNDLED_ROOT / relpath, algorithm) == checksum:
        return BUNDLED_ROOT / relpath  # shipped with the course; read in place, never modified
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
            atomic_copy(src, dest)
            return dest

    for url in urls:
        problem = download_verified(url, dest, checksum, algorithm, timeout, retries, retry_wait)
        if problem is None:
            return dest
        tried.append(f"{url}: {problem}")

    raise DatasetUnavailable(
        f"{dataset}: could not get {relpath}.\nTried:\n  - "
        + "\n  - ".join(tried)
        + f"\nTo fix: connect to the internet and run again, or put the file at {dest} (copied "
        "from a machine that has it), or set GANLIB_DATA_MIRROR to a folder that holds "
        f"{relpath}."
    )
