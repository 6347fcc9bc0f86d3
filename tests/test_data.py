import shutil

import pytest
import torch

from ganlib.data import Batches, DatasetUnavailable, load_mnist, mnist_for_gan
from ganlib.fetch import BUNDLED_ROOT

SHIPPED = BUNDLED_ROOT  # the real data/ (fixtures hide it from ganlib, not from these tests)


@pytest.fixture
def mnist_mirror(tmp_path, monkeypatch):
    """An offline mirror holding the shipped MNIST test files, laid out like data/."""
    raw = tmp_path / "mirror" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (SHIPPED / "MNIST" / "raw").glob("t10k-*.gz"):
        shutil.copy(f, raw / f.name)
    monkeypatch.setenv("GANLIB_DATA_MIRROR", str(tmp_path / "mirror"))


def test_mnist_test_split_from_the_offline_mirror(
    tmp_path, monkeypatch, mnist_mirror, no_network, no_shipped_data
):
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    images, labels = load_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10000,) and set(labels.tolist()) == set(range(10))
    assert (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file()  # cached copy


def test_a_corrupt_cached_file_is_replaced(
    tmp_path, monkeypatch, mnist_mirror, no_network, no_shipped_data
):
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"<html>Service unavailable</html>")
    _, labels = load_mnist("test")
    assert len(labels) == 10000


def test_missing_dataset_says_what_where_and_how(
    tmp_path, monkeypatch, no_network, no_shipped_data
):
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("GANLIB_DATA_MIRROR", str(tmp_path / "empty-mirror"))
    with pytest.raises(DatasetUnavailable) as err:
        load_mnist("test")
    message = str(err.value)
    assert "MNIST (test split)" in message
    assert str(tmp_path / "cache") in message and "empty-mirror" in message
    assert "network disabled" in message and "GANLIB_DATA_MIRROR" in message


def test_train_split_offline_is_never_swapped_for_test(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetUnavailable, match="mnist_split=test"):
        load_mnist("train")
    with pytest.raises(DatasetUnavailable):
        mnist_for_gan("train")


def test_gan_split_keeps_heldout_digits_apart():
    train, held = mnist_for_gan("test")
    assert len(train) == 8000 and len(held) == 2000
    test_images, _ = load_mnist("test")
    assert torch.equal(held, test_images[8000:])


def test_bad_split_name():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_mnist("validation")


def test_batches_cover_each_epoch_once_and_resume_exactly():
    data = torch.arange(20)
    b = Batches(data, batch_size=5, seed=3)
    epoch = torch.cat([next(b) for _ in range(4)])
    assert sorted(epoch.tolist()) == list(range(20))
    next(b)
    state = b.state_dict()
    expected = [next(b) for _ in range(6)]
    b2 = Batches(data, batch_size=5, seed=99)
    b2.load_state_dict(state)
    assert all(
        torch.equal(x, y) for x, y in zip(expected, [next(b2) for _ in range(6)], strict=True)
    )


def test_batches_reject_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        Batches(torch.zeros(4), batch_size=8)
    with pytest.raises(ValueError, match="same length"):
        Batches(torch.zeros(4), torch.zeros(5), batch_size=2)
    with pytest.raises(ValueError, match="NaN"):
        Batches(torch.full((4, 1, 28, 28), float("nan")), batch_size=2)
    b = Batches(torch.zeros(10), batch_size=2)
    with pytest.raises(ValueError, match="same data"):
        b.load_state_dict(Batches(torch.zeros(12), batch_size=2).state_dict())


def test_batches_transform_each_tensor_of_a_batch():
    images, labels = torch.arange(12, dtype=torch.uint8).view(6, 2), torch.arange(6)
    plain = Batches(images, labels, batch_size=3, seed=1)
    doubled = Batches(images, labels, batch_size=3, seed=1, transform=lambda t: t * 2)
    for _ in range(4):
        (x, y), (x2, y2) = next(plain), next(doubled)
        assert torch.equal(x2, x * 2) and torch.equal(y2, y * 2)
    with pytest.raises(ValueError, match="transform"):
        Batches(images, batch_size=2, transform="to_model_range")


def test_batches_yield_image_label_pairs():
    x, y = next(Batches(torch.zeros(10, 1, 28, 28), torch.arange(10), batch_size=4))
    assert x.shape == (4, 1, 28, 28) and y.shape == (4,)


def test_shipped_sets_load_with_no_cache_no_mirror_and_no_network(
    tmp_path, monkeypatch, no_network
):
    """A fresh clone offline: the MNIST test split, Set5, Set14 and T91 come from data/."""
    from ganlib.data import load_sr_images

    monkeypatch.setenv("GANLIB_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("GANLIB_DATA_MIRROR", "")
    images, labels = load_mnist("test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    for name, count in (("set5", 5), ("set14", 14), ("t91", 91)):
        loaded = load_sr_images(name)
        assert len(loaded) == count and all(img.shape[0] == 3 for _, img in loaded)
    assert not (tmp_path / "empty-cache").exists()  # read in place, nothing copied
    with pytest.raises(DatasetUnavailable, match="BSD200"):
        load_sr_images("bsd200")  # not shipped: needs the mirror or a download
    assert BUNDLED_ROOT.name == "data"


def test_shipped_files_match_data_sha256sums():
    import hashlib

    listed = {}
    for line in (BUNDLED_ROOT / "SHA256SUMS").read_text().splitlines():
        digest, relpath = line.split()
        listed[relpath] = digest
    shipped = sorted(
        str(p.relative_to(BUNDLED_ROOT))
        for pattern in ("MNIST/raw/t10k-*", "sr/Set5/*.png", "sr/Set14/*.png", "sr/T91/*.png")
        for p in BUNDLED_ROOT.glob(pattern)
    )
    assert sorted(listed) == shipped and len(shipped) == 2 + 5 + 14 + 91
    for relpath, digest in listed.items():
        assert hashlib.sha256((BUNDLED_ROOT / relpath).read_bytes()).hexdigest() == digest, relpath


def test_training_sets_leave_out_what_does_not_ship_when_offline(
    tmp_path, monkeypatch, no_network, capsys
):
    """No mirror, no network: BSD200 is left out with a note, T91 (shipped) still loads."""
    from ganlib.data import load_training_sets

    monkeypatch.setenv("GANLIB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("GANLIB_DATA_MIRROR", "")
    images = load_training_sets(["t91", "bsd200"])
    assert len(images) == 91
    note = capsys.readouterr().out
    assert note.startswith("Training without bsd200:") and "../shared" not in note


def test_a_shipped_set_that_fails_is_an_error(monkeypatch):
    import ganlib.data
    from ganlib.data import DatasetUnavailable, load_training_sets

    def missing(name):
        raise DatasetUnavailable(f"{name} is gone")

    monkeypatch.setattr(ganlib.data, "load_sr_images", missing)
    with pytest.raises(DatasetUnavailable, match="t91 is gone"):
        load_training_sets(["t91"])
