"""One version-matrix cell (a tox env): run a profile, and where the run fails, find and record
what fails in this environment and run what works.

1. The whole profile is run (``run_suite``); it lands in the history as usual.
2. If it raises, the failure is recorded (history table ``failures``), then each saliency method
   is tried on each model (two images) and each benchmark alone (in a scratch folder, history
   off); what raises is recorded with its error. The profile reduced to the methods and
   benchmarks that worked is then run for real, so the env still contributes comparable scores.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import replace
from pathlib import Path

from binsal.core.interrupt import reraise_if_interrupted
from binsal.core.profile import Profile
from binsal.reports import history as hist


def _error(exc: BaseException) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return last[:2000]


def _say(msg: str) -> None:
    print(f"[matrix {hist.env_name()}] {msg}", file=sys.stderr, flush=True)


def probe_methods(profile: Profile, cache_dir: str | None, history: Path | None) -> list[str]:
    """The methods that explain two images on every model of the profile; failures recorded."""
    from binsal.benchmarks import make_method
    from binsal.core.cache import cache_root
    from binsal.core.progress import StageTimer
    from binsal.pipeline import load_data, load_models, resolve_bundle

    root = cache_root(cache_dir)
    data = load_data(profile, root)
    bundle = resolve_bundle(profile, None)  # the matrix's weights bundle, if one is set
    models = load_models(profile, data, root, StageTimer(quiet=True), bundle)
    ok = []
    for method in profile.saliency.methods:
        works = True
        for name, m in models.items():
            try:
                make_method(method, profile).explain(
                    m, data.images[:2], data.labels[:2], engine=profile.saliency.engine
                )
            except Exception as exc:  # noqa: BLE001 - recorded
                reraise_if_interrupted(exc)
                works = False
                _say(f"method {method} fails on {name}: {_error(exc)}")
                if history is not None:
                    hist.record_failure(
                        history, stage="method", method=method, model=name, error=_error(exc)
                    )
        if works:
            ok.append(method)
    return ok


def probe_benchmarks(profile: Profile, cache_dir: str | None, history: Path | None) -> list[str]:
    """The benchmarks that run alone (scratch folder, history off); failures recorded."""
    from binsal.benchmarks import BENCHMARKS
    from binsal.pipeline import run_suite

    names = list(BENCHMARKS.names()) if "all" in profile.benchmarks else list(profile.benchmarks)
    ok = []
    scratch = Path(tempfile.mkdtemp(prefix="binsal-probe-"))
    saved = os.environ.get(hist.HISTORY_ENV)
    os.environ[hist.HISTORY_ENV] = "off"
    try:
        for bench in names:
            try:
                run_suite(
                    replace(profile, benchmarks=(bench,)),
                    results_dir=scratch,
                    cache_dir=cache_dir,
                    resume=False,
                    quiet=True,
                )
                ok.append(bench)
            except Exception as exc:  # noqa: BLE001 - recorded
                reraise_if_interrupted(exc)
                _say(f"benchmark {bench} fails: {_error(exc)}")
                if history is not None:
                    hist.record_failure(
                        history, stage="benchmark", benchmark=bench, error=_error(exc)
                    )
    finally:
        if saved is None:
            os.environ.pop(hist.HISTORY_ENV, None)
        else:
            os.environ[hist.HISTORY_ENV] = saved
        shutil.rmtree(scratch, ignore_errors=True)
    return ok


def matrix_run(
    profile: Profile, *, results_dir: str | os.PathLike, cache_dir: str | None = None
) -> int:
    """0 when a (possibly reduced) run landed in the history, 1 when nothing could run."""
    from binsal.pipeline import run_suite

    history = hist.history_path(results_dir)
    try:
        run_dir = run_suite(profile, results_dir=results_dir, cache_dir=cache_dir, resume=False)
        _say(f"complete run: {run_dir}")
        return 0
    except Exception as exc:  # noqa: BLE001 - recorded, then narrowed down
        reraise_if_interrupted(exc)
        _say(f"full run failed: {_error(exc)}")
        traceback.print_exc()
        if history is not None:
            hist.record_failure(history, stage="run", error=_error(exc))
    try:
        methods = probe_methods(profile, cache_dir, history)
    except Exception as exc:  # noqa: BLE001 - data or models themselves fail here
        reraise_if_interrupted(exc)
        _say(f"data / models fail: {_error(exc)}")
        if history is not None:
            hist.record_failure(history, stage="models", error=_error(exc))
        return 1
    if not methods:
        return 1
    reduced = replace(profile, saliency=replace(profile.saliency, methods=tuple(methods)))
    benches = probe_benchmarks(reduced, cache_dir, history)
    if not benches:
        return 1
    _say(f"running what works: methods {methods}, benchmarks {benches}")
    run_dir = run_suite(
        replace(reduced, benchmarks=tuple(benches)),
        results_dir=results_dir,
        cache_dir=cache_dir,
        resume=False,
    )
    _say(f"reduced run: {run_dir}")
    if history is not None:
        hist.attach_failures(history, run_dir.name)
    return 0
