"""Train the digit classifier shipped in ganlib/weights/mnist_cnn.pt.

Offline (the default) it trains on the first 8,000 digits of the MNIST test split and reports
accuracy on the last 2,000, which it never sees; notebooks use those same 2,000 as held-out
real digits. With ``--split train`` (needs a download) it trains on the 60,000 training digits
and reports accuracy on the whole test split.

Outlier exposure (Hendrycks et al. 2019): a plain classifier labels even uniform noise as some
digit with 100% confidence, which would make a generator of noise look good. So each batch also
holds synthetic non-digits (uniform noise, digits with their pixels shuffled, smooth random blobs)
whose target is the uniform distribution over the ten classes.

    python scripts/train_digit_classifier.py [--split test|train] [--epochs 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from ganlib.data import Batches, load_mnist
from ganlib.digits import WEIGHTS, DigitCNN, predict
from ganlib.env import seed_everything
from ganlib.images import to_model_range
from ganlib.train import adam


def non_digits(like: torch.Tensor) -> torch.Tensor:
    """As many non-digit images as ``like`` has (B, 1, 28, 28) in [-1, 1]: noise, shuffles, blobs."""
    b = like.shape[0]
    noise = torch.rand_like(like) * 2 - 1
    flat = like.flatten(1)
    shuffled = flat[:, torch.randperm(flat.shape[1])].view_as(like)
    blobs = F.interpolate(torch.randn(b, 1, 7, 7), size=28, mode="bilinear").mul(1.5).tanh()
    pick = torch.randint(0, 3, (b, 1, 1, 1))
    return torch.where(pick == 0, noise, torch.where(pick == 1, shuffled, blobs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["test", "train"], default="test")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parents[1] / "ganlib" / "weights" / WEIGHTS
    )
    args = parser.parse_args()
    seed_everything(args.seed)

    test_x, test_y = load_mnist("test")
    if args.split == "test":
        train_x, train_y, held_x, held_y = (
            test_x[:8000],
            test_y[:8000],
            test_x[8000:],
            test_y[8000:],
        )
        trained_on, held_name = (
            "MNIST test split, digits 0-7999",
            "MNIST test split, digits 8000-9999",
        )
    else:
        train_x, train_y = load_mnist("train")
        held_x, held_y = test_x, test_y
        trained_on, held_name = "MNIST train split (60,000)", "MNIST test split (10,000)"

    x = to_model_range(train_x[:, None])  # (N, 1, 28, 28) in [-1, 1]
    augment = v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), fill=-1.0)
    model = DigitCNN()
    opt = adam(model.parameters(), lr=1e-3)
    batches = Batches(x, train_y, batch_size=128, seed=args.seed)
    steps = args.epochs * (len(x) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    start = time.time()
    for step in range(steps):
        xb, yb = next(batches)
        # cross-entropy on digits + cross-entropy to the uniform distribution on non-digits
        outlier_logits = model(non_digits(xb[: len(xb) // 2]))
        loss = (
            F.cross_entropy(model(augment(xb)), yb) - 0.5 * F.log_softmax(outlier_logits, 1).mean()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 200 == 0:
            print(f"step {step + 1}/{steps}  loss {loss.item():.4f}")
    model.eval()
    acc = float(
        (predict(model, to_model_range(held_x[:, None])).argmax(1) == held_y).float().mean()
    )
    with torch.no_grad():
        outliers = non_digits(to_model_range(held_x[:1000, None]))
        outlier_conf = float(torch.softmax(model(outliers), 1).max(1).values.mean())
    meta = {
        "mean_confidence_on_non_digits": outlier_conf,
        "trained_on": trained_on,
        "heldout": held_name,
        "heldout_accuracy": acc,
        "epochs": args.epochs,
        "seed": args.seed,
        "torch": str(torch.__version__),
    }
    # fp16 storage halves the file; the weights are cast back to fp32 on load.
    state = {k: v.half() for k, v in model.state_dict().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "meta": meta}, args.out)
    print(f"held-out accuracy {acc:.4f} on {held_name}")
    print(f"mean confidence on non-digits {outlier_conf:.3f} (uniform: 0.100)")
    print(f"{time.time() - start:.0f}s; wrote {args.out}")


if __name__ == "__main__":
    main()
