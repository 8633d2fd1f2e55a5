"""Command line: ``binsal [run] --profile NAME``, ``binsal list``.

User errors (unknown names, bad input, missing weights) print one line and exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from binsal.errors import BinsalError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def cmd_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from binsal.profile import load_profile

    profile = load_profile(args.profile)
    if args.models:
        profile = replace(profile, models=tuple(args.models))
    if args.methods:
        profile = replace(profile, saliency=replace(profile.saliency, methods=tuple(args.methods)))
    if args.benchmarks:
        profile = replace(profile, benchmarks=tuple(args.benchmarks))
    if args.n_images:
        profile = replace(profile, saliency=replace(profile.saliency, n_images=args.n_images))
    if args.seed is not None:
        profile = replace(profile, seed=args.seed)
    if args.engine:
        profile = replace(profile, saliency=replace(profile.saliency, engine=args.engine))
    if args.weights_dir:
        os.environ["BINSAL_WEIGHTS_DIR"] = args.weights_dir
    from binsal.run import run_suite

    run_dir = run_suite(
        profile,
        results_dir=args.results_dir,
        cache_dir=args.cache_dir,
        resume=not args.fresh,
        quiet=args.quiet,
    )
    print(f"results: {run_dir / 'results.csv'}")
    print(f"manifest: {run_dir / 'manifest.json'}")
    print(f"report: {(run_dir / 'report.html').resolve()}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from binsal.benchmarks import BENCHMARKS
    from binsal.models.registry import MODELS
    from binsal.profile import available_profiles
    from binsal.saliency import METHODS

    print("profiles:   " + ", ".join(available_profiles()))
    print("models:     " + ", ".join(MODELS.names()))
    print("methods:    " + ", ".join(METHODS.names()))
    print("benchmarks: " + ", ".join(BENCHMARKS.names()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="binsal", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the benchmark suite on a profile (the default command)")
    run.add_argument("--profile", default="default", help="profile name or path to a .toml")
    run.add_argument("--results-dir", default="results")
    run.add_argument(
        "--cache-dir", default=None, help="default: $BINSAL_CACHE_DIR or .binsal_cache"
    )
    run.add_argument("--models", type=_csv, help="comma-separated subset of models")
    run.add_argument("--methods", type=_csv, help="comma-separated subset of methods")
    run.add_argument("--benchmarks", type=_csv, help="comma-separated subset of benchmarks")
    run.add_argument("--n-images", type=int, help="evaluation images per benchmark")
    run.add_argument("--seed", type=int, help="override the profile's seed")
    run.add_argument("--engine", choices=["tf", "tfkv"], help="saliency engine")
    run.add_argument("--weights-dir", help="folder with pretrained weight files (paper profile)")
    run.add_argument("--fresh", action="store_true", help="do not resume an unfinished run")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.set_defaults(func=cmd_run)
    lst = sub.add_parser("list", help="list profiles, models, methods and benchmarks")
    lst.set_defaults(func=cmd_list)
    for name, fn in COMMANDS.items():
        p = sub.add_parser(name)
        p.set_defaults(func=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["run", *argv]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BinsalError as exc:
        print(f"binsal: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "binsal: interrupted; finished stages are kept and the next run resumes",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
