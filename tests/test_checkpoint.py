import os
import subprocess
import sys
import textwrap

import pytest
import torch

from ganlib.checkpoint import load_checkpoint, save_checkpoint
from ganlib.data import Batches
from ganlib.gan import gan_step
from ganlib.train import fit
from tests.test_train import tiny_run

RESUME_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from ganlib.data import Batches
    from ganlib.gan import gan_step
    from ganlib.train import fit
    from tests.test_train import tiny_run
    steps, ckpt, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    torch.set_num_threads(1)
    run = tiny_run()
    torch.manual_seed(123)
    data = torch.rand(96, 1, 28, 28) * 2 - 1
    fit(run, gan_step, Batches(data, batch_size=16, seed=5), steps, log_every=3, checkpoint_dir=ckpt,
        checkpoint_every=3, resume=True, progress=False)
    torch.save({"G": run.G.state_dict(), "D": run.D.state_dict()}, out)
    """
)


def train_in_fresh_process(tmp_path, steps, ckpt, out):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, str(steps), str(ckpt), str(out)],
        check=True,
        env=env,
        cwd=root,
    )
    return torch.load(out, weights_only=True)


def test_resume_in_a_fresh_process_equals_one_uninterrupted_run(tmp_path):
    n = 9
    once = train_in_fresh_process(tmp_path, 2 * n, tmp_path / "once", tmp_path / "once.pt")
    half = train_in_fresh_process(tmp_path, n, tmp_path / "split", tmp_path / "half.pt")
    resumed = train_in_fresh_process(tmp_path, 2 * n, tmp_path / "split", tmp_path / "resumed.pt")
    for net in ("G", "D"):
        for k in once[net]:
            assert torch.equal(once[net][k], resumed[net][k]), f"{net}.{k} differs after resume"
    assert any(
        not torch.equal(half["G"][k], once["G"][k]) for k in once["G"]
    )  # the second half did train


def test_round_trip_keeps_everything(tmp_path):
    run = tiny_run()
    fit(
        run,
        gan_step,
        Batches(torch.rand(32, 1, 28, 28) * 2 - 1, batch_size=8),
        4,
        log_every=2,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    state = load_checkpoint(tmp_path / "latest.pt")
    assert {
        "G",
        "D",
        "opt_G",
        "opt_D",
        "precision",
        "rng",
        "history",
        "config",
        "step",
        "batches",
    } <= set(state)
    other = tiny_run()
    other.load_state_dict(state)
    assert other.step == 4 and other.history == run.history
    for k, v in run.G.state_dict().items():
        assert torch.equal(v, other.G.state_dict()[k])


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-checkpoint",))


def test_a_checkpoint_that_runs_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save(
        {"format": "ganlib-checkpoint", "format_version": 1, "payload": Exploit()},
        tmp_path / "evil.pt",
    )
    with pytest.raises(ValueError, match="Refusing to load"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_a_different_architecture_is_named(tmp_path):
    save_checkpoint(tmp_path / "c.pt", tiny_run(config={"width": 8}, width=8).state_dict())
    bigger = tiny_run(config={"width": 8}, width=16)
    with pytest.raises(ValueError, match="different architecture"):
        bigger.load_state_dict(load_checkpoint(tmp_path / "c.pt"))


def test_different_settings_are_named(tmp_path):
    save_checkpoint(tmp_path / "c.pt", tiny_run(config={"width": 8, "lr": 1e-3}).state_dict())
    with pytest.raises(ValueError, match=r"lr: 0.001 there, 0.0002 now"):
        tiny_run(config={"width": 8, "lr": 2e-4}).load_state_dict(
            load_checkpoint(tmp_path / "c.pt")
        )


def test_other_format_versions_and_garbage_are_clear_errors(tmp_path):
    torch.save({"format": "ganlib-checkpoint", "format_version": 0}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="format version 0"):
        load_checkpoint(tmp_path / "old.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_truncated_checkpoint_is_an_error_not_a_crash(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", tiny_run().state_dict())
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_checkpoint(path)
