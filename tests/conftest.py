import os
from pathlib import Path

import pytest
import torch

from tests.loopback import dead_url


@pytest.fixture
def no_network(monkeypatch):
    """Make every download fail at once, as on an offline machine."""
    import urllib.error

    import ganlib.fetch

    def refuse(url, dest, timeout=30.0, progress=True):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(ganlib.fetch, "download", refuse)


@pytest.fixture
def no_shipped_data(tmp_path, monkeypatch):
    """Hide the sets that ship in data/, to test the cache, the mirror and the downloads."""
    import ganlib.fetch

    monkeypatch.setattr(ganlib.fetch, "BUNDLED_ROOT", tmp_path / "no-shipped-data")


@pytest.fixture
def loopback_only(tmp_path, monkeypatch):
    """Downloads into tmp_path/cache, with no shipped sets, no mirror and no proxy between a test
    and 127.0.0.1."""
    import ganlib.fetch

    monkeypatch.setattr(ganlib.fetch, "BUNDLED_ROOT", tmp_path / "no-shipped-data")
    monkeypatch.setattr(
        ganlib.fetch, "COURSE_DATA_URL", dead_url("data")
    )  # the course's repository
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("GANLIB_DATA_MIRROR", "")
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    return tmp_path / "cache"


@pytest.fixture(scope="session")  # set up before any function fixture that unsets the mirror
def mirror():
    """The offline dataset mirror, for the few tests that need data beyond what ships in data/
    (BSD200, T91's original BMP files); skipped where there is none. Everything else runs on the
    shipped sets."""
    if not os.environ.get("GANLIB_DATA_MIRROR"):
        pytest.skip(
            "needs an offline dataset mirror (GANLIB_DATA_MIRROR) with data beyond what ships "
            "in data/ (BSD200, T91's original BMPs)"
        )
    return Path(os.environ["GANLIB_DATA_MIRROR"])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
