"""Command line: ``binsal [run] --profile NAME``, ``binsal list``, ``binsal history``,
``binsal compare RUN_A RUN_B`` (or ``--latest-per-env``) and ``binsal matrix-run``.

User errors (unknown names, bad input, missing weights, a folder that cannot be written, a full
disk, a corrupt history) print one line and exit 2, no traceback; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from binsal.core.errors import BinsalError
from binsal.core.interrupt import catching_interrupts, interrupted

DESCRIPTION = """\
Saliency methods (Gradient, SmoothGrad, GradCAM and more) on binarized versus full-precision
networks: every benchmark's scores with n, confidence interval and direction, and the paper's
claims, written as results.csv, manifest.json and report.html under --results-dir.

  binsal run                   the default profile (4 models x 3 training seeds, every
                               benchmark): about 16 min on 2 CPU cores with a cold cache,
                               under 2 min warm; progress on stderr, result paths on stdout
  binsal run --profile smoke   a few minutes: the whole pipeline on tiny models
  binsal list                  profiles, models, methods and benchmarks
  binsal history               the recorded runs and their library versions
  binsal compare A B           regression table between two runs

User errors print one line and exit 2 (no traceback); Ctrl-C exits 130 and the next run
resumes. Each command has --help."""

# what the file system may answer a run that writes results, maps or models: not a bug of binsal
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
HISTORY_HELP = "history database (default: $BINSAL_HISTORY or <results-dir>/history.sqlite)"


class _Parser(argparse.ArgumentParser):
    """argparse with the suite's one-line errors (argparse prints its usage block too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _csv(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"needs at least one comma-separated name, got {value!r}")
    return names


def _pairs_of(values: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for v in values or []:
        names = _csv(v)
        if len(names) != 2:
            raise BinsalError(f"--pair needs FP_NAME,BNN_NAME, got {v!r}")
        out.append((names[0], names[1]))
    return out


def _per_model(values: list[str] | None, option: str, names: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` entries (a bare ``VALUE``: every model) of a repeatable option."""
    out: dict[str, str] = {}
    for v in values or []:
        name, sep, value = v.partition("=")
        if not sep:
            out.update(dict.fromkeys(names, v.strip()))
            continue
        if name.strip() not in names:
            raise BinsalError(f"{option} {v!r}: no --model named {name.strip()!r}")
        out[name.strip()] = value.strip()
    return out


def _model_files(args: argparse.Namespace) -> list:
    """The ``--model`` files with their options, checked before any work (no TensorFlow)."""
    from binsal.models.own import parse_model_arg, preprocessing
    from binsal.pipeline import ModelFile

    if not args.images:
        raise BinsalError("--model needs --images DIR (the images to explain)")
    parsed = [parse_model_arg(v) for v in args.model]
    names = [n for n, _, _ in parsed]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BinsalError(f"--model names must differ; {dup[0]!r} is given twice")
    for name, path, _ in parsed:
        if not Path(path).expanduser().exists():
            raise BinsalError(f"--model {name}: {path} does not exist")
    for folder, option in ((args.images, "--images"), (args.masks, "--masks")):
        if folder and not Path(folder).expanduser().is_dir():
            raise BinsalError(f"{option} {folder} is not a folder")
    if args.labels and not Path(args.labels).expanduser().is_file():
        raise BinsalError(f"--labels {args.labels} is not a file")
    for a, b in _pairs_of(args.pair):
        for n in (a, b):
            if n not in names:
                raise BinsalError(f"--pair {a},{b}: no --model named {n!r}")
    layers = _per_model(args.gradcam_layer, "--gradcam-layer", names)
    modes = _per_model(args.preprocessing, "--preprocessing", names)
    for mode in modes.values():
        preprocessing(mode)  # one line naming the known modes
    return [
        ModelFile(n, path, fam, layers.get(n), modes.get(n, "scale01")) for n, path, fam in parsed
    ]


def _scale_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "scaling out (pip install 'binsal[dask]'; the cache and results folders must be on a "
        "filesystem every worker sees)"
    )
    g.add_argument(
        "--cluster",
        metavar="KIND:N",
        help="run the cells on a new Dask cluster: local:N (N worker processes here) or "
        "slurm:N (N SLURM jobs via dask-jobqueue; $BINSAL_SLURM_MEMORY per job, default 16GB)",
    )
    g.add_argument(
        "--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, tcp://HOST:PORT"
    )
    g.add_argument("--scheduler-file", metavar="PATH", help="an existing Dask scheduler's file")
    g.add_argument(
        "--threads-per-worker",
        type=int,
        metavar="T",
        help="TensorFlow intra-op threads of each worker (each runs one cell at a time); "
        "default: an in-process run's ($BINSAL_TF_THREADS, else 2), so that trained weights "
        "and maps equal the in-process run's bit for bit (training depends on the thread count)",
    )
    g.add_argument(
        "--shard-images",
        type=int,
        metavar="N",
        help="compute each (model, method)'s maps in cells of N evaluation images (default 64; "
        "0: one cell each); the maps are the same",
    )
    g.add_argument(
        "--device",
        choices=["cpu", "gpu", "auto"],
        default="cpu",
        help="cpu (default), gpu (one local worker per GPU; needs the GPU TensorFlow wheel: "
        "tox -e gpu) or auto",
    )


def _executor(args: argparse.Namespace) -> Any:
    """The executor the scaling options ask for (None: in-process, stage by stage), built and
    checked before any work. ``binsal diff`` has none of these options: it runs here."""
    for option in ("cluster", "scheduler", "scheduler_file", "threads_per_worker", "shard_images"):
        setattr(args, option, getattr(args, option, None))
    args.device = getattr(args, "device", "cpu")
    if not (args.cluster or args.scheduler or args.scheduler_file):
        for given, option in (
            (args.threads_per_worker, "--threads-per-worker"),
            (args.shard_images, "--shard-images"),
        ):
            if given is not None:
                raise BinsalError(f"{option} goes with --cluster, --scheduler or --scheduler-file")
        from binsal.cells import use_device_here

        use_device_here(args.device)
        return None
    if args.model:
        raise BinsalError(
            "--cluster / --scheduler run a profile's models; a run with --model runs here"
        )
    from binsal.cells import parse_cluster

    if args.cluster:
        parse_cluster(args.cluster)  # one line when it is not local:N / slurm:N
    if args.shard_images is not None and args.shard_images < 0:
        raise BinsalError(f"--shard-images must be >= 0, got {args.shard_images}")
    threads = args.threads_per_worker
    if threads is None:  # what an in-process run uses: the same weights and maps, bit for bit
        from binsal.models.determinism import DEFAULT_INTRA_OP_THREADS, THREADS_ENV

        threads = int(os.environ.get(THREADS_ENV) or DEFAULT_INTRA_OP_THREADS)
    try:
        from binsal.cluster import DaskExecutor
    except ImportError as exc:
        raise BinsalError(
            f"scaling out needs Dask ({exc.name} is not installed): pip install 'binsal[dask]'"
        ) from None
    return DaskExecutor(
        cluster=args.cluster,
        scheduler=args.scheduler,
        scheduler_file=args.scheduler_file,
        threads_per_worker=threads,
        shard_images=64 if args.shard_images is None else args.shard_images,
        device=args.device,
        quiet=args.quiet,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from binsal.core.profile import load_profile

    files = _model_files(args) if args.model else None
    if files is None and (args.images or args.masks or args.labels or args.pair):
        raise BinsalError("--images, --masks, --labels and --pair go with --model NAME=PATH")
    if files is not None and (args.models or args.weights_bundle):
        raise BinsalError(
            "--models and --weights-bundle choose the profile's models; a run with --model "
            "NAME=PATH explains those files only"
        )
    executor = _executor(args)
    profile = load_profile(args.profile)
    if args.models:
        profile = replace(profile, models=tuple(args.models))
    if args.methods:
        profile = replace(profile, saliency=replace(profile.saliency, methods=tuple(args.methods)))
    if args.benchmarks:
        profile = replace(profile, benchmarks=tuple(args.benchmarks))
    if args.n_images is not None:
        profile = replace(profile, saliency=replace(profile.saliency, n_images=args.n_images))
    if args.seed is not None:
        profile = replace(profile, seed=args.seed)
    if args.engine:
        profile = replace(profile, saliency=replace(profile.saliency, engine=args.engine))
    if args.replicates is not None:
        if args.replicates < 1:
            raise BinsalError(f"--replicates must be an integer >= 1, got {args.replicates}")
        profile = replace(profile, train=replace(profile.train, replicates=args.replicates))
    block, shard = profile.saliency.map_block, getattr(executor, "shard_images", 0)
    if shard % block:  # else shards would change maps
        raise BinsalError(
            f"--shard-images must be a multiple of the profile's map_block, {block} (maps are "
            f"computed in blocks of {block} images), got {shard}"
        )
    if args.retrain:
        os.environ["BINSAL_SHIPPED_WEIGHTS"] = "0"
    if args.max_batch_memory:
        from binsal.saliency.base import MEMORY_ENV, parse_memory

        parse_memory(args.max_batch_memory)  # one line and exit 2 when it is not a size
        os.environ[MEMORY_ENV] = args.max_batch_memory
    if args.weights_dir:
        os.environ["BINSAL_WEIGHTS_DIR"] = args.weights_dir
    if args.history:
        os.environ["BINSAL_HISTORY"] = args.history
    from binsal.pipeline import own_run_from_files, resolve_profile, run_suite

    own = None
    if files is not None:
        resolve_profile(replace(profile, models=()), own_models=True)  # names, before loading
        from binsal.core.cache import writable_dir
        from binsal.models.determinism import configure

        writable_dir(args.results_dir, "results folder")
        configure(not args.nondeterministic)
        own = own_run_from_files(
            files,
            images=args.images,
            masks=args.masks,
            labels=args.labels,
            pairs=_pairs_of(args.pair),
            n_images=profile.saliency.n_images,
            seed=profile.seed,
            quiet=args.quiet,
        )
    run_dir = run_suite(
        profile,
        results_dir=args.results_dir,
        cache_dir=args.cache_dir,
        resume=not args.fresh,
        quiet=args.quiet,
        weights_bundle=args.weights_bundle,
        deterministic=not args.nondeterministic,
        own=own,
        executor=executor,
    )
    print(f"results: {run_dir / 'results.csv'}")
    print(f"manifest: {run_dir / 'manifest.json'}")
    print(f"report: {(run_dir / 'report.html').resolve()}")
    failures = json.loads((run_dir / "manifest.json").read_text()).get("failures", [])
    if failures:
        what = "; ".join(f"{f['benchmark']} (seed {f['seed']}): {f['error']}" for f in failures)
        print(
            f"binsal: {len(failures)} benchmark run(s) failed, the others are in the results: "
            f"{what}; tracebacks in {run_dir / 'parts'}; run again to retry them",
            file=sys.stderr,
        )
        return 1
    if args.export_weights:
        from binsal.models.training import export_used_entries

        written = export_used_entries(args.export_weights)
        print(f"weights: {len(written)} trained models written to {args.export_weights}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """``binsal diff FP BNN``: ``binsal run`` on the two files, paired, on the paper's
    benchmarks (:data:`binsal.pipeline.DIFF_BENCHMARKS`)."""
    from binsal.pipeline import DIFF_BENCHMARKS

    if not args.images:
        raise BinsalError("binsal diff needs --images DIR (the images to explain)")
    args.model = [f"fp={args.fp}:FP", f"bnn={args.bnn}:BNN"]
    args.pair = ["fp,bnn"]
    args.models = None
    args.benchmarks = list(DIFF_BENCHMARKS)
    for name in ("engine", "weights_dir", "weights_bundle", "max_batch_memory"):
        setattr(args, name, None)
    args.replicates, args.retrain, args.export_weights = None, False, None
    return cmd_run(args)


def cmd_bundle(args: argparse.Namespace) -> int:
    from binsal.core.profile import load_profile
    from binsal.pipeline import export_profile_bundle

    bundle = export_profile_bundle(
        load_profile(args.profile), args.out, cache_dir=args.cache_dir, quiet=args.quiet
    )
    print(f"weights bundle {bundle.bundle_id}: {bundle.path} ({', '.join(bundle.models)})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from binsal.benchmarks import BENCHMARKS
    from binsal.core.profile import available_profiles
    from binsal.models.registry import MODELS
    from binsal.saliency import METHODS

    print("profiles:   " + ", ".join(available_profiles()))
    print("models:     " + ", ".join(MODELS.names()))
    print("methods:    " + ", ".join(METHODS.names()))
    print("benchmarks: " + ", ".join(BENCHMARKS.names()))
    return 0


def _history_file(args: argparse.Namespace) -> Path:
    from binsal.reports.history import history_path

    if args.history:
        return Path(args.history)
    path = history_path(args.results_dir)
    if path is None:
        raise BinsalError("history is off ($BINSAL_HISTORY); pass --history PATH")
    return path


def cmd_history(args: argparse.Namespace) -> int:
    from binsal.reports import history

    path = _history_file(args)
    if not path.exists():
        print(f"no history at {path} (runs are recorded there when they finish)")
        return 0
    if args.failures:
        print(history.format_failures(history.list_failures(path, args.env)))
        return 0
    runs = history.list_runs(path)
    if args.env:
        runs = runs[runs["env_name"] == args.env]
    if args.csv:
        print(runs.to_csv(index=False), end="")
    else:
        print(f"history: {path}")
        print(history.format_runs(runs))
    return 0


def _safe_name(text: str) -> str:
    """``text`` as one harmless path component (no separators, no leading dots)."""
    name = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(text)).lstrip(".")
    return name[:120] or "run"


def _fdr(text: str) -> float:
    try:
        q = float(text)
    except ValueError:
        q = float("nan")
    if not 0.0 < q < 1.0:
        raise argparse.ArgumentTypeError(f"--fdr must be a number in (0, 1), got {text!r}")
    return q


def cmd_compare(args: argparse.Namespace) -> int:
    from binsal.reports import compare

    history = _history_file(args)
    if args.latest_per_env:
        if args.runs:
            raise BinsalError("give either two runs or --latest-per-env, not both")
        try:
            pairs = compare.latest_per_env_pairs(
                history, baseline_env=args.baseline_env, profile=args.profile
            )
        except ValueError as exc:
            raise BinsalError(str(exc)) from None
        out = Path(args.out or Path(args.results_dir) / "compare" / "latest-per-env")
        extra = compare.matrix_overview(history, profile=args.profile)
    else:
        if len(args.runs) != 2:
            raise BinsalError("compare needs two runs (ids or folders), or --latest-per-env")
        try:
            a, b = (compare.load_run(r, history=history) for r in args.runs)
        except FileNotFoundError as exc:
            raise BinsalError(str(exc)) from None
        pairs = [(a, b)]
        # run ids come from the compared folders' manifests: untrusted, never a path
        name = f"{_safe_name(a.run_id)}__{_safe_name(b.run_id)}"
        out = Path(args.out or Path(args.results_dir) / "compare" / name)
        extra = ""
    comparisons = [compare.compare_tables(a, b, fdr=args.fdr) for a, b in pairs]
    mismatched = [m for c in comparisons for m in c.mismatches]
    for m in dict.fromkeys(mismatched):
        print(f"binsal: warning: {m}", file=sys.stderr)
    if args.fail_on_regression and mismatched and not args.force:
        raise BinsalError(
            f"--fail-on-regression refused: {mismatched[0]} (pass --force to compare anyway)"
        )
    csv, page = compare.write_outputs(comparisons, out, extra_html=extra)
    for c in comparisons:
        counts = c.regressions["label"].value_counts().to_dict()
        print(
            f"{c.a.env_name or c.a.run_id} -> {c.b.env_name or c.b.run_id}: "
            f"{len(c.table)} matched scores, {counts.get('worse', 0)} worse, "
            f"{counts.get('better', 0)} better, {counts.get('changed', 0)} changed; "
            f"{len(c.only_a)} only in A, {len(c.only_b)} only in B"
            + (f" (flags need Benjamini-Hochberg q <= {args.fdr})" if args.fdr else "")
        )
    print(f"regressions: {csv}")
    print(f"page: {page.resolve()}")
    worse = sum(c.n_worse for c in comparisons)
    if args.fail_on_regression and worse:
        print(f"binsal: {worse} score(s) got worse beyond both CIs", file=sys.stderr)
        return 1
    return 0


def cmd_matrix_run(args: argparse.Namespace) -> int:
    from binsal.core.profile import load_profile
    from binsal.matrix import matrix_run

    if args.history:
        os.environ["BINSAL_HISTORY"] = args.history
    return matrix_run(
        load_profile(args.profile), results_dir=args.results_dir, cache_dir=args.cache_dir
    )


def cmd_report(args: argparse.Namespace) -> int:
    from binsal.reports.html import rerender

    out = rerender(Path(args.run_dir), Path(args.out) if args.out else None, args.claims)
    print(f"report: {out.resolve()}")
    return 0


def _own_options(p: argparse.ArgumentParser, *, model: bool) -> None:
    """The options of a run on your own models and images."""
    g = p.add_argument_group("your own models and images")
    if model:
        g.add_argument(
            "--model",
            action="append",
            metavar="NAME=PATH[:FP|BNN]",
            help="a model file (.keras, .h5 or a SavedModel folder; larq and larq-zoo layers "
            "known) to benchmark instead of the profile's models; repeatable. The family is "
            "found from its larq layers unless given",
        )
        g.add_argument(
            "--pair",
            action="append",
            metavar="FP_NAME,BNN_NAME",
            help="two --model names that form a matched FP/BNN pair (repeatable)",
        )
    g.add_argument("--images", metavar="DIR", help="folder of images (any size: resized)")
    g.add_argument(
        "--masks", metavar="DIR", help="ground-truth masks: one image per input image, same stem"
    )
    g.add_argument(
        "--labels",
        metavar="FILE",
        help="CSV of file,label (default: folder-per-class, else each model's top-1 prediction)",
    )
    g.add_argument(
        "--gradcam-layer",
        action="append",
        metavar="[NAME=]LAYER",
        help="GradCAM layer of a model (default: its last spatial feature map)",
    )
    g.add_argument(
        "--preprocessing",
        action="append",
        metavar="[NAME=]MODE",
        help="raw [0, 255] images -> model input: scale01 (the default), imagenet_caffe, "
        "imagenet_torch, imagenet_tf, none, or a keras.applications family (vgg16, resnet50, "
        "mobilenet, densenet, efficientnet, ...)",
    )


def build_parser() -> argparse.ArgumentParser:
    from binsal._version import __version__

    parser = _Parser(
        prog="binsal", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"binsal {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
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
    run.add_argument(
        "--weights-bundle",
        help="evaluate the trained weights of this bundle (binsal bundle) instead of training "
        "(default: $BINSAL_WEIGHTS_BUNDLE)",
    )
    run.add_argument(
        "--nondeterministic",
        action="store_true",
        help="leave TensorFlow op determinism off and thread counts free (faster on big "
        "machines; recorded in the manifest)",
    )
    run.add_argument(
        "--replicates", type=int, help="override the profile's training-seed replicates"
    )
    run.add_argument(
        "--max-batch-memory",
        metavar="SIZE",
        help="memory one batched saliency call may use, e.g. 2GB (the default) or 512MB: the "
        "batch size (chunk_size) is capped from each model's activation size",
    )
    run.add_argument(
        "--retrain",
        action="store_true",
        help="train every model here even where the package ships trained weights",
    )
    run.add_argument(
        "--export-weights",
        metavar="DIR",
        help="after the run, copy every model it trained or loaded into DIR (the layout of "
        "binsal/models/weights, the weights the package ships)",
    )
    run.add_argument("--fresh", action="store_true", help="do not resume an unfinished run")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--history", help=HISTORY_HELP)
    _scale_options(run)
    _own_options(run, model=True)
    run.set_defaults(func=cmd_run)
    dif = sub.add_parser(
        "diff",
        help="an FP and a BNN model file through the paper's benchmarks and claims",
        description="binsal diff FP_MODEL BNN_MODEL --images DIR [--masks DIR]: both models "
        "through rank correlation, localization (with masks), model randomization, ROAD, "
        "entropy vs noise and GradCAM pathologies, and the paper's claims, into the usual "
        "results folder and report.",
    )
    dif.add_argument("fp", help="the full-precision model file (.keras, .h5, SavedModel)")
    dif.add_argument("bnn", help="the binarized model file")
    dif.add_argument("--profile", default="default", help="methods and options (default)")
    dif.add_argument("--results-dir", default="results")
    dif.add_argument("--cache-dir", default=None)
    dif.add_argument("--n-images", type=int, help="evaluation images (default: the profile's)")
    dif.add_argument("--seed", type=int, help="override the profile's seed")
    dif.add_argument("--methods", type=_csv, help="comma-separated subset of methods")
    dif.add_argument("--nondeterministic", action="store_true", help=argparse.SUPPRESS)
    dif.add_argument("--fresh", action="store_true", help="do not resume an unfinished run")
    dif.add_argument("--quiet", action="store_true", help="no progress display")
    dif.add_argument("--history", help=HISTORY_HELP)
    _own_options(dif, model=False)
    dif.set_defaults(func=cmd_diff)
    bun = sub.add_parser(
        "bundle", help="export a profile's trained models as a weights bundle (same weights)"
    )
    bun.add_argument("--profile", default="default", help="profile name or path to a .toml")
    bun.add_argument("--out", required=True, help="bundle folder to write")
    bun.add_argument("--cache-dir", default=None)
    bun.add_argument("--quiet", action="store_true")
    bun.set_defaults(func=cmd_bundle)
    lst = sub.add_parser("list", help="list profiles, models, methods and benchmarks")
    lst.set_defaults(func=cmd_list)
    his = sub.add_parser("history", help="list the recorded runs and their library versions")
    his.add_argument("--history", help=HISTORY_HELP)
    his.add_argument("--results-dir", default="results")
    his.add_argument("--env", help="only runs of this environment name")
    his.add_argument("--failures", action="store_true", help="what failed (version matrix)")
    his.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    his.set_defaults(func=cmd_history)
    cmp = sub.add_parser(
        "compare", help="regression table between two runs (scores outside both CIs)"
    )
    cmp.add_argument("runs", nargs="*", help="two run ids (or prefixes) or run folders: A B")
    cmp.add_argument(
        "--latest-per-env",
        action="store_true",
        help="compare the latest run of each environment in the history with the baseline's",
    )
    cmp.add_argument("--baseline-env", help="baseline env for --latest-per-env (default: first)")
    cmp.add_argument("--profile", help="with --latest-per-env: only runs of this profile")
    cmp.add_argument("--history", help=HISTORY_HELP)
    cmp.add_argument("--results-dir", default="results")
    cmp.add_argument("--out", help="output folder (default results/compare/...)")
    cmp.add_argument(
        "--fdr",
        type=_fdr,
        metavar="Q",
        help="also require a Benjamini-Hochberg q-value <= Q (e.g. 0.05) for a flag: bounds the "
        "expected share of flags that are chance in large comparisons",
    )
    cmp.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when any score got worse beyond both CIs (for CI)",
    )
    cmp.add_argument(
        "--force",
        action="store_true",
        help="let --fail-on-regression judge runs of different profiles, images or n",
    )
    cmp.set_defaults(func=cmd_compare)
    mat = sub.add_parser(
        "matrix-run", help="run a profile in this environment, recording what fails (tox matrix)"
    )
    mat.add_argument("--profile", default="smoke")
    mat.add_argument("--results-dir", default="results")
    mat.add_argument("--cache-dir", default=None)
    mat.add_argument("--history", help=HISTORY_HELP)
    mat.set_defaults(func=cmd_matrix_run)
    rep = sub.add_parser(
        "report", help="render a finished run folder's report.html again with this code"
    )
    rep.add_argument("run_dir", help="run folder (with results.csv and manifest.json)")
    rep.add_argument("--out", help="HTML file to write (default: RUN_DIR/report.html)")
    rep.add_argument(
        "--claims",
        metavar="FILE",
        help="a claims TOML file (the shape of binsal/reports/claims.toml): its claims are "
        "evaluated after the paper's",
    )
    rep.set_defaults(func=cmd_report)
    for name, fn in COMMANDS.items():
        p = sub.add_parser(name)
        p.set_defaults(func=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["run", *argv]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    with catching_interrupts():
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            return _stop()
        except Exception as exc:
            if interrupted():  # Ctrl-C that a library turned into another error
                return _stop()
            code = _user_error(exc)
            if code is None:
                raise
            return code


def _stop() -> int:
    from binsal.core.progress import close_bars

    close_bars()
    print("binsal: interrupted; finished stages are kept and the next run resumes", file=sys.stderr)
    return 130


def _user_error(exc: Exception) -> int | None:
    """Exit 2 after one line for an error of the user's input or environment; None otherwise."""
    if isinstance(exc, BinsalError):
        print(f"binsal: error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"binsal: error: cannot write{where}: {exc.strerror}; free space or pass another "
            "--results-dir / --cache-dir (finished stages are kept and the next run resumes)",
            file=sys.stderr,
        )
        return 2
    if isinstance(exc, sqlite3.DatabaseError):
        print(
            f"binsal: error: the run history is not a readable SQLite database ({exc}); "
            "move it away or pass --history PATH",
            file=sys.stderr,
        )
        return 2
    return None


def entry_point() -> None:
    """The ``binsal`` console script: :func:`main`, then, after Ctrl-C, an immediate exit
    (every finished stage is already on disk; TensorFlow's teardown of half-run functions
    would only print noise and take seconds)."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry_point()
