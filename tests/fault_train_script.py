"""A small GAN run that tests/test_faults.py starts, SIGKILLs at random moments and resumes.

Usage: ``python -u tests/fault_train_script.py STEPS CHECKPOINT_DIR OUT``

Trains a tiny DCGAN on fixed random data until step STEPS, resuming from CHECKPOINT_DIR/latest.pt
when it is there. Prints ``ready`` just before training starts and ``checkpoint N`` once the
checkpoint of step N is on disk; at the end writes the weights and the history to OUT. Every run
of this script with the same STEPS reaches the same weights, however often it was interrupted.

``python -u tests/fault_train_script.py --fork-server`` imports torch once, then for every line
``STEPS CHECKPOINT_DIR OUT`` on stdin forks a child that prints ``pid N`` and does the above,
and prints ``exit CODE`` when it ends (-9 when it was SIGKILLed). Importing torch takes seconds;
forking takes milliseconds, so a test can kill and restart training dozens of times.
"""

from __future__ import annotations

import os
import sys
import traceback

import torch

from ganlib.data import Batches
from ganlib.gan import GANRun, gan_step
from ganlib.models import DCGANDiscriminator, DCGANGenerator
from ganlib.train import fit

CHECKPOINT_EVERY = 2


class ReportCheckpoints:
    """Tell the parent process which step is safely on disk (the hook runs after the rename)."""

    def on_checkpoint(self, run, path):
        print(f"checkpoint {run.step}", flush=True)


def main(steps: int, checkpoint_dir: str, out: str) -> None:
    torch.set_num_threads(1)  # one thread: the same float sums in every process
    torch.manual_seed(0)
    G, D = DCGANGenerator(z_dim=8, width=8), DCGANDiscriminator(width=8)
    run = GANRun(
        G,
        D,
        opt_G=torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        opt_D=torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        z_dim=8,
        config={"width": 8, "lr": 2e-4},
    )
    torch.manual_seed(123)
    data = torch.rand(96, 1, 28, 28) * 2 - 1  # (96, 1, 28, 28) in [-1, 1]
    print("ready", flush=True)
    fit(
        run,
        gan_step,
        Batches(data, batch_size=16, seed=5),
        steps,
        hooks=(ReportCheckpoints(),),
        log_every=1,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=CHECKPOINT_EVERY,
        resume=True,
        progress=False,
    )
    torch.save(
        {"step": run.step, "G": G.state_dict(), "D": D.state_dict(), "history": run.history}, out
    )


def fork_server() -> None:
    # What the first run would import lazily (torch.optim loads torch._dynamo, fit loads tqdm)
    # is imported once here. No torch op runs before fork, so no thread pool is copied.
    import torch._dynamo  # noqa: F401
    import tqdm.auto  # noqa: F401

    for line in sys.stdin:
        steps, checkpoint_dir, out = line.split()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the child: one training run, then leave without the parent's cleanup
            code = 0
            try:
                print(f"pid {os.getpid()}", flush=True)
                main(int(steps), checkpoint_dir, out)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--fork-server"]:
        fork_server()
    else:
        main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
