"""The course's command line: ``python -m ganlib <command>`` (see ``--help``)."""

from __future__ import annotations

import argparse
import sys


def _course(args) -> int:
    from ganlib.course import parse_params, run_course

    results = run_course(args.profile, args.only, parse_params(args.param), timeout=args.timeout)
    return 0 if all(r.status == "ok" for r in results) else 1


def main(argv: list[str] | None = None) -> int:
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

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
