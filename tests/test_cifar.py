"""CIFAR-10 for notebook 04: loading (offline message, a fake in torchvision's format), the SNGAN
trained with n_dis D steps per G step, and the Inception table when the weights are missing."""

import hashlib
import math
import pickle
import tarfile
import time
import urllib.request

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10

import ganlib.cifar
from ganlib.cifar import (
    PUBLISHED,
    reference_table,
    sngan_run,
    standin_images,
    try_inception_scores,
)
from ganlib.data import Batches, DatasetUnavailable, load_cifar10
from ganlib.errors import WeightsUnavailable
from ganlib.gan import gan_step
from ganlib.train import fit


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def fake_cifar10(folder, monkeypatch, per_batch: int = 4, n_test: int = 3) -> dict:
    """CIFAR-10's python format in ``folder``: pickled dicts with 'data' (N, 3072) uint8 rows
    (1024 R, then 1024 G, then 1024 B values) and 'labels'. torchvision's md5 lists are patched to
    the fake files' sums, so its integrity check passes for them and only for them."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        entry = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, n).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(entry))
        batches[name] = entry
    (folder / "batches.meta").write_bytes(
        pickle.dumps({"label_names": [str(i) for i in range(10)]})
    )
    monkeypatch.setattr(
        CIFAR10,
        "train_list",
        [[f"data_batch_{i}", md5(folder / f"data_batch_{i}")] for i in range(1, 6)],
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(folder / "batches.meta")})
    return batches


@pytest.fixture
def no_urlopen(monkeypatch):
    """No network at all: the download helper and urllib itself fail at once."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_offline_cifar10_says_size_url_and_where_to_put_it(
    tmp_path, monkeypatch, no_network, no_urlopen
):
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("GANLIB_DATA_MIRROR", str(tmp_path / "empty-mirror"))
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailable) as err:
        load_cifar10("train")
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "170 MB" in message and CIFAR10.url in message
    assert str(tmp_path / "cache" / "cifar10" / "cifar-10-python.tar.gz") in message
    assert str(tmp_path / "cache" / "cifar10" / "cifar-10-batches-py") in message
    assert "empty-mirror" in message and "network disabled" in message


def test_fake_cifar10_folder_loads_with_shapes_dtypes_and_labels(tmp_path, monkeypatch, no_urlopen):
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    batches = fake_cifar10(tmp_path / "cifar10" / "cifar-10-batches-py", monkeypatch)
    images, labels = load_cifar10("train")
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (20,) and labels.dtype == torch.int64
    first = batches["data_batch_1"]
    # A row is the R plane, then G, then B: image 0 is that row reshaped to (3, 32, 32).
    assert torch.equal(images[0], torch.from_numpy(first["data"][0].reshape(3, 32, 32)))
    assert labels[:4].tolist() == first["labels"]
    test_images, test_labels = load_cifar10("test")
    assert test_images.shape == (3, 3, 32, 32)
    assert test_labels.tolist() == batches["test_batch"]["labels"]


def test_fake_cifar10_archive_from_the_mirror_is_checked_and_extracted(
    tmp_path, monkeypatch, no_network
):
    batches = fake_cifar10(tmp_path / "build" / "cifar-10-batches-py", monkeypatch)
    archive = tmp_path / "mirror" / "cifar10" / "cifar-10-python.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "build" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive))
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("GANLIB_DATA_MIRROR", str(tmp_path / "mirror"))
    images, labels = load_cifar10("test")
    assert images.shape == (3, 3, 32, 32) and labels.tolist() == batches["test_batch"]["labels"]
    assert (tmp_path / "cache" / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()
    # An archive whose md5 is not CIFAR-10's is refused, never extracted.
    monkeypatch.setattr(CIFAR10, "tgz_md5", "0" * 32)
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path / "cache2"))
    with pytest.raises(DatasetUnavailable, match="checksum mismatch"):
        load_cifar10("test")
    assert not (tmp_path / "cache2" / "cifar10" / "cifar-10-batches-py").exists()


def adam_steps(opt: torch.optim.Optimizer) -> int:
    return int(next(iter(opt.state.values()))["step"])


@pytest.mark.parametrize("n_dis", [1, 3])
def test_gan_step_takes_n_dis_d_steps_per_g_step_on_32x32_rgb(n_dis):
    run = sngan_run(width_g=8, width_d=8, z_dim=16, n_dis=n_dis)
    real = torch.rand(48, 3, 32, 32) * 2 - 1  # a fake dataset in [-1, 1]
    before = [p.detach().clone() for p in run.G.parameters()]
    history = fit(
        run, gan_step, Batches(real, batch_size=n_dis * 4), 3, log_every=1, progress=False
    )
    assert run.step == 3 and len(history) == 3
    assert adam_steps(run.opt_D) == 3 * n_dis and adam_steps(run.opt_G) == 3
    # hinge outputs are raw scores, logged as such (no D_x/D_G_z probabilities)
    keys = ("loss_D", "loss_G", "score_real", "score_fake")
    assert all(math.isfinite(r[k]) for r in history for k in keys)
    assert "D_x" not in history[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, run.G.parameters(), strict=True))
    samples = run.sample(run.noise(5))
    assert samples.shape == (5, 3, 32, 32) and samples.abs().max() <= 1
    # The paper's recipe is what the run stores with its checkpoints.
    assert run.config["betas"] == [0.0, 0.9] and run.config["lr"] == 2e-4
    assert run.config["n_dis"] == n_dis
    assert run.config["g_loss"] == run.config["d_loss"] == "hinge"


def test_sngan_run_takes_the_papers_five_d_steps_by_default():
    assert sngan_run(8, 8, z_dim=8).n_dis == 5


def test_gan_step_with_n_dis_resumes_from_its_checkpoint(tmp_path):
    real = torch.rand(40, 3, 32, 32) * 2 - 1
    torch.manual_seed(0)
    straight = sngan_run(8, 8, z_dim=8, n_dis=2)
    fit(straight, gan_step, Batches(real, batch_size=4), 4, progress=False)
    torch.manual_seed(0)
    first = sngan_run(8, 8, z_dim=8, n_dis=2)
    fit(first, gan_step, Batches(real, batch_size=4), 2, checkpoint_dir=tmp_path, progress=False)
    resumed = sngan_run(8, 8, z_dim=8, n_dis=2)
    fit(
        resumed,
        gan_step,
        Batches(real, batch_size=4),
        4,
        checkpoint_dir=tmp_path,
        resume=True,
        progress=False,
    )
    assert resumed.step == 4 and adam_steps(resumed.opt_D) == 8
    for a, b in zip(straight.G.parameters(), resumed.G.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="n_dis: 2 there, 3 now"):
        fit(
            sngan_run(8, 8, z_dim=8, n_dis=3),
            gan_step,
            Batches(real, batch_size=6),
            4,
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )


def test_n_dis_refuses_settings_and_batches_it_cannot_use():
    with pytest.raises(ValueError, match="n_dis must be >= 1"):
        sngan_run(8, 8, z_dim=8, n_dis=0)
    run = sngan_run(8, 8, z_dim=8, n_dis=3)
    with pytest.raises(ValueError, match="n_dis = 3"):
        fit(run, gan_step, iter(lambda: torch.zeros(8, 3, 32, 32), None), 1, progress=False)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        fit(run, gan_step, iter(lambda: torch.full((6, 3, 32, 32), 255.0), None), 1, progress=False)


def test_standin_is_32x32_rgb_photo_crops(no_network):  # without BSD200 offline: T91 alone
    crops = standin_images(6, seed=1)
    assert crops.shape == (6, 3, 32, 32) and crops.dtype == torch.uint8
    assert torch.equal(crops, standin_images(6, seed=1))
    assert crops.float().std() > 5  # photo content, not a constant


def test_table_without_inception_weights_says_why_and_keeps_the_references(monkeypatch):
    def offline(*args, **kwargs):
        raise WeightsUnavailable("Inception-v3 weights could not be loaded (offline)")

    monkeypatch.setattr(ganlib.cifar, "fid", offline)
    run = sngan_run(8, 8, z_dim=8)
    scores = try_inception_scores(run, torch.zeros(30, 3, 32, 32, dtype=torch.uint8), 20)
    assert math.isnan(scores["fid"]) and math.isnan(scores["is"])
    assert "offline" in scores["error"]
    table = reference_table(scores, "this run")
    lines = table.splitlines()
    assert len(lines) == 2 + 1 + len(PUBLISHED)
    assert lines[2] == "| this run | - | - | not measured: Inception-v3 weights unavailable |"
    assert "| SNGAN (ResNet, hinge) | 21.7 | 8.22 | Miyato et al. 2018" in table
    assert "| DCGAN (CNN) | 50.3 | 6.70 |" in table


def test_inception_scores_compare_samples_with_as_many_real_images(monkeypatch):
    seen = {}

    def fake_fid(real, fake, features, device):
        seen["real"], seen["fake"], seen["features"] = real, fake, features
        return 31.25

    monkeypatch.setattr(ganlib.cifar, "fid", fake_fid)
    monkeypatch.setattr(ganlib.cifar, "inception_score", lambda fake, features, device: (6.5, 0.1))
    real_u8 = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    scores = try_inception_scores(sngan_run(8, 8, z_dim=8), real_u8, 25)
    assert scores == {"fid": 31.25, "is": 6.5, "is_std": 0.1, "n": 25}
    assert seen["features"] == "inception"
    assert seen["real"].shape == seen["fake"].shape == (25, 3, 32, 32)
    assert seen["real"].min() >= -1 and seen["real"].max() <= 1  # uint8 went to the model range
    table = reference_table(scores, "this run")
    assert (
        "| this run | 31.2 | 6.50 | 25 samples vs 25 CIFAR-10 train images, torchmetrics |" in table
    )
