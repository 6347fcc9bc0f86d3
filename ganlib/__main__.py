"""The course's command line: ``python -m ganlib <command>`` (see ``--help``)."""

from __future__ import annotations

import argparse
import sys

SR_PRETRAINED = ("srresnet_x4", "srgan_x4")  # see ganlib.pretrained


def _course(args) -> int:
    from ganlib.course import parse_params, run_course

    results = run_course(args.profile, args.only, parse_params(args.param), timeout=args.timeout)
    return 0 if all(r.status == "ok" for r in results) else 1


def _sr_model(args, device):
    """The network named by --checkpoint or --pretrained."""
    if args.pretrained:
        from ganlib.pretrained import load_pretrained

        return load_pretrained(args.pretrained, device)
    from ganlib.sr import load_sr_model

    return load_sr_model(args.checkpoint, device)


def _eval_sr(args) -> int:
    from ganlib.data import load_sr_images
    from ganlib.env import pick_device
    from ganlib.sr import (
        bicubic_upscaler,
        evaluate_sr,
        format_sr_table,
        load_hr_folder,
        model_upscaler,
    )

    if args.checkpoint or args.pretrained:
        device = pick_device(args.device)
        model = _sr_model(args, device)
        if model.scale != args.scale:
            raise ValueError(
                f"{args.checkpoint or args.pretrained} is an x{model.scale} model; run with "
                f"--scale {model.scale}."
            )
        what = (
            f"checkpoint {args.checkpoint}" if args.checkpoint else f"pretrained {args.pretrained}"
        )
        upscale = model_upscaler(model, device)
    else:
        upscale, what = bicubic_upscaler(args.scale), "bicubic"
    images = (
        load_hr_folder(args.hr_dir, args.scale) if args.hr_dir else load_sr_images(args.dataset)
    )
    where = args.hr_dir or args.dataset
    rows = evaluate_sr(upscale, images, args.scale, channel=args.channel)
    channel = "Y (BT.601)" if args.channel == "y" else "RGB"
    print(
        format_sr_table(
            rows, f"{what} on {where}, x{args.scale}, {channel}, {args.scale}-pixel border crop"
        )
    )
    return 0


def _upscale(args) -> int:
    import time
    from pathlib import Path

    from PIL import Image

    from ganlib.env import pick_device
    from ganlib.images import load_image
    from ganlib.sr import upscale_tiled

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".bmp", ".tif", ".tiff"):
        raise ValueError(
            f"Write the result as a lossless image (.png, .bmp, .tif), not {out.suffix or 'no suffix'!r}."
        )
    device = pick_device(args.device)
    model = _sr_model(args, device)
    lr = load_image(args.input, min_size=1)
    start = time.perf_counter()
    sr = upscale_tiled(model, lr, tile=args.tile)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sr.permute(1, 2, 0).numpy()).save(out)
    h, w = lr.shape[1:]
    print(
        f"{args.input} ({w}x{h}) -> {out} ({sr.shape[2]}x{sr.shape[1]}) in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _student(args) -> int:
    from ganlib.student import write_student_versions

    written = write_student_versions(args.out, repository=args.repository, ref=args.ref)
    print(f"{len(written)} student notebook(s) in {args.out or 'student/'}; solutions are stubs.")
    return 0


def _bench(argv: list[str]) -> int:
    try:
        from benchmarks.train_throughput import main as bench_main
    except ImportError:
        print(
            "error: the benchmarks are not part of the installed package; run "
            "`python -m ganlib bench` from the repository root (where benchmarks/ is).",
            file=sys.stderr,
        )
        return 2
    return bench_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # every later option goes to benchmarks/train_throughput.py
        return _bench(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m ganlib", description="GANs for image improvement."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    course = sub.add_parser(
        "course", help="execute the notebooks headless and print a results table"
    )
    course.add_argument(
        "--profile",
        choices=["smoke", "quick", "full", "auto"],
        help="default: $GANLIB_PROFILE or auto",
    )
    course.add_argument(
        "--only", nargs="+", metavar="NB", help="notebook numbers or names, e.g. --only 01 02"
    )
    course.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="override a notebook parameter, e.g. -p mnist_split=test",
    )
    course.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")
    course.set_defaults(func=_course)

    ev = sub.add_parser(
        "eval-sr", help="PSNR/SSIM of a super-resolution model under the standard protocol"
    )
    what = ev.add_mutually_exclusive_group()
    what.add_argument("--model", choices=["bicubic"], default="bicubic", help="a built-in baseline")
    what.add_argument("--checkpoint", help="an SR model saved with ganlib.sr.save_sr_model")
    what.add_argument("--pretrained", choices=SR_PRETRAINED, help="an SR model shipped with ganlib")
    data = ev.add_mutually_exclusive_group()
    data.add_argument("--dataset", default="set5", choices=["set5", "set14", "t91", "bsd200"])
    data.add_argument("--hr-dir", help="a folder of HR images instead of a named set")
    ev.add_argument("--scale", type=int, default=4, choices=[2, 3, 4, 8])
    ev.add_argument(
        "--channel", choices=["y", "rgb"], default="y", help="default: y, as in the papers"
    )
    ev.add_argument("--device", default="auto")
    ev.set_defaults(func=_eval_sr)

    up = sub.add_parser("upscale", help="super-resolve an image with a trained SR model, in tiles")
    up.add_argument("input", help="the low-resolution image")
    up.add_argument("output", help="where to write the result (.png)")
    model = up.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="an SR model saved with ganlib.sr.save_sr_model")
    model.add_argument(
        "--pretrained", choices=SR_PRETRAINED, help="an SR model shipped with ganlib"
    )
    up.add_argument(
        "--tile",
        type=int,
        default=128,
        help="LR tile side in pixels; memory grows with it, not with the image",
    )
    up.add_argument("--device", default="auto")
    up.set_defaults(func=_upscale)

    st = sub.add_parser(
        "student",
        help="write student versions of the notebooks (solutions stubbed, hidden tests removed)",
    )
    st.add_argument("--out", default=None, help="output folder (default: student/)")
    st.add_argument(
        "--repository",
        default=None,
        help="GitHub owner/name of the public student copy: badges and install cells point there",
    )
    st.add_argument("--ref", default="main", help="its branch or tag (default: main)")
    st.set_defaults(func=_student)

    sub.add_parser(
        "bench",
        help="training throughput and memory, ganlib's loop vs a tutorial-style loop "
        "(options: python -m ganlib bench --help)",
    )

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
