"""The pipeline: data -> models -> saliency -> benchmarks -> reports, resumable per stage."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from binsal.core.cache import cache_root as resolve_cache_root
from binsal.core.cache import config_key, writable_dir
from binsal.core.environment import environment_record
from binsal.core.errors import BinsalError
from binsal.core.interrupt import reraise_if_interrupted
from binsal.core.profile import Profile
from binsal.core.progress import StageTimer, notice, quiet_notices, return_freed_memory
from binsal.core.replicates import merge_replicates, replicate_seeds
from binsal.datasets.evalset import EvalSet, load_data
from binsal.models.bundle import Bundle

STATE_FILE = "state.json"
REPLICATES_FILE = "replicates.csv"  # every replicate's own rows (column replicate_seed)


@dataclass
class OwnRun:
    """A run on models and images the user brought (``binsal.evaluate``, ``binsal run --model
    ... --images ...``, ``binsal diff``) instead of the profile's: the profile gives the methods,
    benchmarks and their options; nothing is trained (benchmarks that retrain are skipped).
    ``maps``: model -> method -> maps computed by another tool, used in place of binsal's maps of
    that method on the evaluation images."""

    models: dict[str, Any]  # name -> LoadedModel
    data: EvalSet
    maps: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def key(self) -> dict[str, Any]:
        """What makes this run's inputs: weights, images, labels, masks and given maps."""
        import hashlib

        h = hashlib.sha256()
        for a in (self.data.images, self.data.labels, self.data.masks):
            if a is not None:
                h.update(np.ascontiguousarray(a).tobytes())
        given = hashlib.sha256()
        for model in sorted(self.maps):
            for method in sorted(self.maps[model]):
                given.update(f"{model}/{method}".encode())
                given.update(np.ascontiguousarray(self.maps[model][method]).tobytes())
        return {
            "weights": {n: m.weights_digest() for n, m in self.models.items()},
            "families": {n: m.family for n, m in self.models.items()},
            "gradcam": {n: m.gradcam_layer for n, m in self.models.items()},
            "pairs": {n: m.spec.pair for n, m in self.models.items()},
            "data": h.hexdigest(),
            "maps": given.hexdigest() if self.maps else "",
        }


@dataclass(frozen=True)
class RunPlan:
    """What an executor needs to run a profile's work as cells anywhere (picklable): the
    resolved profile, where caches and the run live, the environment key, the training-seed
    replicates, the weights bundle and the determinism setting, plus the ``BINSAL_*`` settings
    of the driver (batch memory, shipped weights, weights folder) that workers must share."""

    profile: Profile
    cache_root: Path
    run_dir: Path
    env_key: str
    seeds: tuple[int, ...]
    bundle: str | None
    deterministic: bool
    environ: dict[str, str] = field(default_factory=dict)


class Executor(Protocol):
    """Runs a :class:`RunPlan`'s cells (training, maps, retrainings, benchmarks) so that their
    content-keyed caches are filled before the driver assembles the run from them; returns a
    JSON-able record for the manifest (``binsal.cells``: in-process and Dask)."""

    def execute(self, plan: RunPlan) -> dict[str, Any]: ...


def context_for(
    profile: Profile,
    models: dict[str, Any],
    data: EvalSet,
    *,
    run_dir: Path,
    cache_root: Path,
    env_key: str,
    timer: StageTimer,
) -> Any:
    """The :class:`binsal.benchmarks.RunContext` of one replicate (``profile`` carries its seed),
    its maps kept under the run folder and shared across runs under ``<cache>/maps``."""
    from binsal.benchmarks import MapStore, RunContext
    from binsal.saliency.base import set_map_block

    set_map_block(profile.saliency.map_block)  # the blocks every map of this run is computed in
    return RunContext(
        profile=profile,
        models=models,
        images=data.images,
        labels=data.labels,
        masks=data.masks,
        class_names=data.class_names,
        maps=MapStore(
            run_dir / "maps",
            engine=profile.saliency.engine,
            shared=cache_root / "maps",
            environment=env_key,
        ),
        progress=timer,
        run_dir=run_dir,
        cache_root=cache_root,
        data=data.full,
    )


def load_models(
    profile: Profile,
    data: EvalSet,
    cache_root: Path,
    timer: StageTimer,
    bundle: Bundle | None = None,
    *,
    trained_only: bool = False,
    label: str = "",
) -> dict[str, Any]:
    """Each model of the profile: from the weights bundle when one is given (its test accuracy
    re-measured on this stack), else trained here (with the profile's seed) or loaded from the
    model cache, or (paper profile) pretrained. ``trained_only``: skip pretrained models (a
    further training-seed replicate); ``label``: appended to the stage names."""
    from binsal.models.bundle import load_from_bundle
    from binsal.models.gradcam_rules import apply_rule
    from binsal.models.registry import MODELS
    from binsal.models.spec import LoadedModel
    from binsal.models.training import TrainConfig, evaluate_accuracy, train_or_load

    out: dict[str, LoadedModel] = {}
    for name in profile.models:
        spec = MODELS[name](profile)
        if trained_only and spec.source != "synthetic":
            continue
        if spec.source == "synthetic" and bundle is not None:
            home = bundle.meta.get("data") or {}
            mine = data.description
            if any(home.get(k) != mine.get(k) for k in ("dataset", "config", "version")):
                raise BinsalError(
                    f"weights bundle {bundle.path} was trained on data "
                    f"{home.get('config')!r} v{home.get('version')}, this profile's is "
                    f"{mine.get('config')!r} v{mine.get('version')}"
                )
            with timer.stage(f"model {name} (bundle){label}"):
                loaded = load_from_bundle(bundle, spec)
                full = data.full
                loaded.meta["bundle_test_accuracy"] = loaded.test_accuracy
                loaded.test_accuracy = evaluate_accuracy(
                    loaded.model, loaded.prepare(full.x_test), full.y_test
                )
                out[name] = loaded
        elif spec.source == "synthetic":
            t = profile.train
            train = TrainConfig(
                epochs=t.epochs_bnn if spec.family == "BNN" else t.epochs_fp,
                batch_size=t.batch_size,
                learning_rate=t.learning_rate,
                seed=profile.seed,
            )
            with timer.stage(f"model {name}{label}"):
                out[name] = train_or_load(
                    spec, data.full, train, cache_root=cache_root, progress=timer
                )
        else:
            from binsal.models import pretrained

            with timer.stage(f"model {name}"):
                loaded = pretrained.load(spec, profile, cache_root)
                ok = np.asarray(data.labels) >= 0
                if ok.any():  # top-1 accuracy on the labelled evaluation images only
                    loaded.test_accuracy = evaluate_accuracy(
                        loaded.model, loaded.prepare(data.images[ok]), data.labels[ok]
                    )
                out[name] = loaded
    for name, loaded in out.items():  # the profile's GradCAM layer rule, on the built model
        apply_rule(loaded, profile.saliency.gradcam_layer_for(name))
    return out


def labelled_accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy over images with a label (label -1 = unlabelled); NaN when none has one."""
    ok = np.asarray(labels) >= 0
    return float(np.mean(predictions[ok] == labels[ok])) if ok.any() else float("nan")


def _run_dirs(results_dir: Path) -> list[Path]:
    if not results_dir.exists():
        return []
    return sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.is_symlink())


LOCK_FILE = ".lock"
_HELD: dict[Path, Any] = {}  # run folder -> open lock file, held while this process runs it


def take_run(run_dir: Path) -> bool:
    """Lock ``run_dir`` for this process (an advisory ``flock`` on ``run_dir/.lock``, released
    when the process ends, even on kill -9); False when another live process holds it."""
    import fcntl

    if run_dir in _HELD:
        return True
    fh = open(run_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held open while the run lives
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return False
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    _HELD[run_dir] = fh
    return True


def release_run(run_dir: Path) -> None:
    fh = _HELD.pop(run_dir, None)
    if fh is not None:
        fh.close()


def find_resumable(results_dir: Path, run_key: str) -> Path | None:
    """The newest unfinished run with ``run_key`` that no live process is running (locked for
    this process on return): a second ``binsal run`` never joins a live one."""
    for d in reversed(_run_dirs(results_dir)):
        try:
            state = json.loads((d / STATE_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if state.get("status") != "complete" and state.get("run_key") == run_key:
            if take_run(d):
                return d
    return None


def _write_state(run_dir: Path, **state: Any) -> None:
    tmp = run_dir / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(run_dir / STATE_FILE)


def point_latest(results_dir: Path, run_dir: Path) -> None:
    link = results_dir / "latest"
    tmp = results_dir / f".latest.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    tmp.replace(link)


def resolve_profile(profile: Profile, *, own_models: bool = False) -> Profile:
    """Stage 0, before any work: expand ``"all"``, check every name and every benchmark option
    (unknown names, keys, types and ranges are one-line errors). ``own_models``: the profile's
    models are the user's (:class:`OwnRun`), not registered ones."""
    from binsal.benchmarks import BENCHMARKS, check_profile
    from binsal.models.registry import MODELS
    from binsal.saliency import METHODS

    if "all" in profile.benchmarks:
        profile = replace(profile, benchmarks=tuple(BENCHMARKS.names()))
    if own_models:
        METHODS.check(list(profile.saliency.methods))
        BENCHMARKS.check(list(profile.benchmarks))
        check_profile(profile)
        return profile
    MODELS.check(list(profile.models))
    METHODS.check(list(profile.saliency.methods))
    BENCHMARKS.check(list(profile.benchmarks))
    if not profile.models:
        raise BinsalError(f"profile {profile.name!r} lists no models")
    stray = sorted(set(profile.saliency.gradcam_layers) - set(profile.models))
    if stray:
        raise BinsalError(
            f"profile {profile.name!r}: [saliency.gradcam_layers] names {stray[0]!r}, not a model "
            f"of this run; its models: {', '.join(profile.models)}"
        )
    if profile.data.source != "synthetic":
        trained = [n for n in profile.models if MODELS[n](profile).source == "synthetic"]
        if trained:
            raise BinsalError(
                f"profile {profile.name!r}: [data] source {profile.data.source!r} is for "
                f"pretrained models; {', '.join(trained)} train on the synthetic data "
                '(source = "synthetic")'
            )
    check_profile(profile)
    return profile


def resolve_bundle(profile: Profile, path: str | os.PathLike | None) -> Bundle | None:
    """The weights bundle to evaluate (``--weights-bundle`` or ``$BINSAL_WEIGHTS_BUNDLE``),
    checked before any work: every trained model of the profile in it, same architecture,
    intact weight files."""
    from binsal.models.bundle import BUNDLE_ENV, check_bundle, read_bundle
    from binsal.models.registry import MODELS

    path = path or os.environ.get(BUNDLE_ENV) or None
    if not path:
        return None
    bundle = read_bundle(path)
    specs = {n: MODELS[n](profile) for n in profile.models}
    check_bundle(bundle, {n: s for n, s in specs.items() if s.source == "synthetic"})
    return bundle


def open_run_dir(results: Path, run_key: str, profile: Profile, resume: bool, quiet: bool) -> Path:
    """The unfinished run with the same key (resume) or a new ``<stamp>-<profile>-<key>-<pid>``."""
    run_dir = find_resumable(results, run_key) if resume else None
    if run_dir is not None:
        if not quiet:
            notice(f"resuming unfinished run {run_dir}")
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        run_dir = results / f"{stamp}-{profile.name}-{run_key[:6]}-{os.getpid()}"
        run_dir.mkdir(parents=True)
        take_run(run_dir)
    _write_state(run_dir, status="running", run_key=run_key, profile=profile.name)
    return run_dir


def compute_predictions(ctx: Any, timer: StageTimer, label: str = "") -> None:
    """Each model's top-1 class on the evaluation images (``ctx.predictions``)."""
    with timer.stage(f"predictions{label}"):
        for name, m in ctx.models.items():
            logits = m.model.predict(m.prepare(ctx.images), batch_size=128, verbose=0)
            ctx.predictions[name] = np.argmax(logits, axis=1)


def compute_maps(ctx: Any, timer: StageTimer, label: str = "") -> None:
    """Every defined (model, method) map once, into the run's map store."""
    with timer.stage(f"saliency maps{label}"):
        for name in timer.bar(list(ctx.models), desc="maps"):
            for method in ctx.defined_methods(name):
                ctx.maps_for(name, method)


def write_part(part: Path, frame: Any) -> None:
    """Write a benchmark's rows to ``part`` (CSV) and, after it, a sidecar ``<part>.json`` with
    its row count and SHA-256; both through a temporary file and a rename."""
    from binsal.core.cache import file_sha256

    tmp = part.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(part)
    side = part.with_suffix(".json")
    tmp_side = part.with_suffix(".json.tmp")
    tmp_side.write_text(json.dumps({"rows": int(len(frame)), "sha256": file_sha256(part)}))
    tmp_side.replace(side)


def read_part(part: Path) -> Any | None:
    """A finished benchmark's rows, or None when the part cannot be trusted (no sidecar, a
    checksum or row count that does not match: e.g. a truncated file), so it is recomputed."""
    import hashlib
    import io

    import pandas as pd

    side = part.with_suffix(".json")
    if not (part.is_file() and side.is_file()):
        return None
    try:
        meta = json.loads(side.read_text())
        data = part.read_bytes()  # read once: checked, then parsed
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            return None
        frame = pd.read_csv(  # round_trip: the floats read back are the ones written
            io.BytesIO(data),
            keep_default_na=False,
            na_values=["", "nan", "NaN"],
            float_precision="round_trip",
        )
    except (OSError, ValueError, KeyError, pd.errors.ParserError):
        return None
    return frame if len(frame) == int(meta["rows"]) else None


def write_units(part: Path, frame: Any, units: Any) -> None:
    """The per-unit values behind a part's rows (``<part>.units.npz``), for merging replicates;
    written before the part itself, so a part is never trusted without its units."""
    from binsal.core.replicates import frame_keys, save_units

    tmp = part.with_suffix(".units.tmp")
    save_units(tmp, frame_keys(frame), units)
    tmp.replace(part.with_suffix(".units.npz"))


def read_units(part: Path, frame: Any) -> Any | None:
    from binsal.core.replicates import frame_keys, load_units

    try:
        return load_units(part.with_suffix(".units.npz"), frame_keys(frame))
    except (OSError, ValueError, KeyError):
        return None


def environment_key() -> str:
    """What, besides their inputs, computed results depend on: every library version, binsal's
    own code and TensorFlow op determinism (part of the keys of shared maps and cells)."""
    from binsal.core.cache import code_digest
    from binsal.core.environment import library_versions
    from binsal.models.training import op_determinism

    return config_key(
        {"versions": library_versions(), "code": code_digest(), "det": op_determinism()}
    )


def cell_key(ctx: Any, bench_name: str, env_key: str) -> str:
    """Content key of one benchmark on one replicate: the benchmark and its options, the
    profile's settings that reach it (seed, data, saliency, bootstrap; not its name), each
    model's identity (weights, family, pair, GradCAM layer, preprocessing), the evaluation
    images, labels and masks, and :func:`environment_key`."""
    import hashlib

    from binsal.benchmarks import BENCHMARKS

    opts = BENCHMARKS[bench_name]().opts(ctx.profile)
    prof = ctx.profile.to_dict()
    for k in ("name", "description", "benchmarks", "benchmark_options", "qualitative_images"):
        prof.pop(k, None)
    prof.get("train", {}).pop("replicates", None)
    h = hashlib.sha256()
    for a in (ctx.images, ctx.labels, ctx.masks):
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    return config_key(
        {
            "benchmark": bench_name,
            "options": opts,
            "profile": prof,
            "models": {n: m.identity() for n, m in ctx.models.items()},
            "eval": h.hexdigest(),
            "env": env_key,
        },
        length=24,
    )


def cell_dir(ctx: Any, bench_name: str, env_key: str) -> Path:
    return Path(ctx.cache_root) / "cells" / f"{bench_name}-{cell_key(ctx, bench_name, env_key)}"


def read_cell(cell: Path, part: Path, with_units: bool) -> bool:
    """Copy a cached benchmark cell (checked by its checksums) into the run's part files."""
    import shutil

    from binsal.core.cache import verify_entry
    from binsal.core.errors import CorruptCacheError

    if not cell.is_dir():
        return False
    try:
        verify_entry(cell)
    except CorruptCacheError:
        return False
    if with_units:
        if not (cell / "units.npz").is_file():
            return False
        shutil.copyfile(cell / "units.npz", part.with_suffix(".units.npz"))
    shutil.copyfile(cell / "part.csv", part)
    shutil.copyfile(cell / "part.json", part.with_suffix(".json"))
    return True


def write_cell(cell: Path, part: Path, with_units: bool) -> None:
    import shutil

    from binsal.core.cache import write_entry

    files = {
        "part.csv": lambda p: shutil.copyfile(part, p),
        "part.json": lambda p: shutil.copyfile(part.with_suffix(".json"), p),
    }
    if with_units:
        files["units.npz"] = lambda p: shutil.copyfile(part.with_suffix(".units.npz"), p)
    try:
        write_entry(cell, files, {"part": part.name})
    except OSError:
        pass  # the cell cache is an optimisation: never fail a run on it


def compute_cell(ctx: Any, bench_name: str, env_key: str, with_units: bool) -> str:
    """Run one benchmark into its cell of the cache (:func:`cell_dir`) without touching the
    run's parts: "hit" when the cell was there, else "computed" (an exception propagates).
    The driver's :func:`run_benchmarks` then takes the cell as it takes any cached one."""
    import tempfile

    from binsal.benchmarks import BENCHMARKS
    from binsal.core.schema import collect_units, rows_frame

    cell = cell_dir(ctx, bench_name, env_key)
    with tempfile.TemporaryDirectory(dir=Path(ctx.cache_root)) as tmp:
        part = Path(tmp) / f"{bench_name}.csv"
        if read_cell(cell, part, with_units):
            return "hit"
        with collect_units() as sink:
            frame = rows_frame(BENCHMARKS[bench_name]().run(ctx))
        if with_units:
            write_units(part, frame, sink)
        write_part(part, frame)
        write_cell(cell, part, with_units)
    return "computed"


def runs_on(bench_name: str, profile: Profile, replicate: int) -> bool:
    """Whether a benchmark runs on replicate ``replicate`` (its ``replicates`` option)."""
    from binsal.benchmarks import BENCHMARKS

    limit = BENCHMARKS[bench_name]().opts(profile).replicates
    return limit == 0 or replicate < limit


def run_benchmarks(
    ctx: Any,
    run_dir: Path,
    timer: StageTimer,
    quiet: bool,
    *,
    replicate: int | None = None,
    env_key: str | None = None,
    failures: list[dict[str, Any]] | None = None,
) -> Any:
    """Each benchmark's rows, written to ``parts/<name>.csv`` as it finishes (a resumed run
    reuses finished parts whose checksum holds); returns the concatenated table.

    ``replicate``: one training-seed replicate of several (parts under ``parts/seed<seed>/``,
    each with the per-unit values of its rows; benchmarks limited to fewer replicates skipped);
    returns a :class:`binsal.core.replicates.Replicate` instead of a table. ``env_key``: the
    run's :func:`environment_key` (computed here when not given). A benchmark that raises is
    left out (its traceback in ``<part>.error.txt``) and appended to ``failures``; the others
    still run."""
    import pandas as pd

    from binsal.benchmarks import BENCHMARKS
    from binsal.core.replicates import Replicate
    from binsal.core.schema import RESULT_COLUMNS, collect_units, rows_frame

    parts = run_dir / "parts"
    if replicate is not None:
        parts = parts / f"seed{ctx.seed}"
    parts.mkdir(parents=True, exist_ok=True)
    frames = []
    units: dict[Any, Any] = {}
    suffix = "" if replicate is None else f" [seed {ctx.seed}]"
    env_key = env_key or environment_key()
    failures = [] if failures is None else failures
    for bench_name in ctx.profile.benchmarks:
        if replicate is not None and not runs_on(bench_name, ctx.profile, replicate):
            continue
        part = parts / f"{bench_name}.csv"
        cell = cell_dir(ctx, bench_name, env_key)
        from_cell = not part.exists() and read_cell(cell, part, replicate is not None)
        if from_cell and not quiet:
            notice(f"==> benchmark {bench_name}{suffix}: unchanged inputs, taken from the cache")
        reused = read_part(part) if part.exists() else None
        reused_units = None
        if reused is not None and replicate is not None:
            reused_units = read_units(part, reused)
            reused = None if reused_units is None else reused
        if reused is not None:
            frames.append(reused)
            units.update(reused_units or {})
            if not quiet and not from_cell:
                notice(f"==> benchmark {bench_name}{suffix}: reused from the interrupted run")
            continue
        if part.exists():
            notice(
                f"==> benchmark {bench_name}{suffix}: its saved part is incomplete; redone",
                warning=True,
            )
        error = part.with_suffix(".error.txt")
        try:
            with timer.stage(f"benchmark {bench_name}{suffix}"), collect_units() as sink:
                frame = rows_frame(BENCHMARKS[bench_name]().run(ctx))
        except Exception as exc:  # one benchmark's failure never loses the others
            reraise_if_interrupted(exc)
            import traceback

            error.write_text(traceback.format_exc())
            what = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            failures.append({"benchmark": bench_name, "seed": ctx.seed, "error": what})
            notice(f"==> benchmark {bench_name}{suffix} FAILED ({what}); see {error}", warning=True)
            continue
        finally:  # the traced clones and permuted-label models of the benchmark, freed
            release_models(keep=[m.model for m in ctx.models.values()])
        error.unlink(missing_ok=True)
        if replicate is not None:
            write_units(part, frame, sink)
            units.update(sink)
        write_part(part, frame)
        write_cell(cell, part, replicate is not None)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)
    table["pair"] = table["pair"].fillna("")
    if replicate is not None:
        return Replicate(seed=ctx.seed, frame=table, units=units)
    table.insert(0, "run_id", run_dir.name)
    return table


def qualitative_set(ctx: Any) -> Any:
    """The first ``report.qualitative_images`` images with every model's maps, for the report."""
    from binsal.reports.html import Qualitative

    k = min(ctx.profile.qualitative_images, len(ctx.images))
    maps = {
        method: {n: ctx.maps_for(n, method)[:k] for n in ctx.models if ctx.is_defined(n, method)[0]}
        for method in ctx.methods
    }
    return Qualitative(
        images=ctx.images[:k],
        masks=None if ctx.masks is None else ctx.masks[:k],
        families={n: m.family for n, m in ctx.models.items()},
        correct={n: ctx.predictions[n][:k] == ctx.labels[:k] for n in ctx.models},
        maps=maps,
        docs=method_docs(ctx.methods),
    )


def method_docs(methods: list[str]) -> dict[str, str]:
    """Each method's note for the report: the first paragraph of its docstring, on one line."""
    import inspect

    from binsal.saliency import METHODS

    return {
        m: " ".join(inspect.cleandoc(METHODS[m].__doc__ or "").split("\n\n")[0].split())
        for m in methods
    }


def release_models(keep: Iterable[Any] = ()) -> None:
    """Free what the saliency engines traced for the models just evaluated, except for the
    Keras models in ``keep``, what the engines and metrics kept for the next call on the same
    maps (noise draws, ranks, removal positions: a benchmark's own reuse), and give the freed
    heap back to the OS."""
    import gc

    from binsal import metrics, saliency

    saliency.release_traced(keep=keep)
    saliency.forget_results()
    metrics.forget_results()
    gc.collect()
    return_freed_memory()


def replicate_record(ctx: Any, data: EvalSet) -> dict[str, Any]:
    """Per model of one replicate: its test and evaluation-set accuracy, training time, cache."""
    return {
        n: {
            "test_accuracy": m.test_accuracy,
            "eval_accuracy": labelled_accuracy(ctx.predictions[n], data.labels),
            "train_seconds": m.meta.get("train_seconds"),
            "cache": m.meta.get("cache", ""),
        }
        for n, m in ctx.models.items()
    }


def replicates_frame(replicates: list[Any], run_id: str) -> Any:
    """Every replicate's own rows, one table, with the replicate's seed (``replicates.csv``)."""
    import pandas as pd

    frames = []
    for rep in replicates:
        f = rep.frame.copy()
        f.insert(0, "replicate_seed", rep.seed)
        frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "run_id", run_id)
    return out


def build_manifest(
    run_dir: Path,
    profile: Profile,
    data: EvalSet,
    ctx: Any,
    env: dict[str, Any],
    per_seed: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What the run was: profile, seeds, data, models, declarations, environment.
    ``per_seed``: training seed -> :func:`replicate_record`; with several, each model's
    ``test_accuracy`` is the mean over its seeds and ``test_accuracy_min`` the lowest (the
    accuracy floor is checked on it: one replicate that did not learn is enough)."""
    from binsal.benchmarks import BENCHMARKS

    models = ctx.models
    per_seed = per_seed or {}
    seeds = sorted(per_seed) or [profile.seed]

    def accuracies(n: str) -> list[float]:
        return [float(per_seed[s][n]["test_accuracy"]) for s in seeds if n in per_seed.get(s, {})]

    out = {
        "run_id": run_dir.name,
        "profile": profile.to_dict(),
        "seeds": {
            "profile": profile.seed,
            "data": profile.seed,
            "training": seeds,
            "smoothgrad_noise": profile.seed,
            "random_control": profile.seed,
            "bootstrap": profile.seed,
            "eval_subset": profile.seed,
        },
        "data": data.description,
        "map_settings": profile.saliency.map_settings(),
        "eval_indices": data.indices.tolist(),
        "models": {
            n: {
                "family": m.family,
                "pair": m.spec.pair,
                "source": m.spec.source,
                "description": m.spec.description,
                "gradcam_layer": m.gradcam_layer,
                "gradcam_rule": m.meta.get("gradcam_rule", "last_feature_map"),
                "gradcam_layer_size": m.meta.get("gradcam_layer_size"),
                "num_classes": m.spec.num_classes,
                "test_accuracy": m.test_accuracy,
                "eval_accuracy": labelled_accuracy(ctx.predictions[n], data.labels),
                "train_seconds": m.meta.get("train_seconds"),
                "cache": m.meta.get("cache", ""),
                "params": int(m.model.count_params()),
            }
            for n, m in models.items()
        },
        "test_accuracy": {n: m.test_accuracy for n, m in models.items()},
        "undefined_methods": {
            n: {m: ctx.is_defined(n, m)[1] for m in ctx.methods if not ctx.is_defined(n, m)[0]}
            for n in models
        },
        "benchmarks": {b: BENCHMARKS[b].declaration() for b in profile.benchmarks},
        "environment": env,
        "library_versions": env["libraries"],
        "replicates": {
            "seeds": seeds,
            "models": {str(s): per_seed[s] for s in seeds if s in per_seed},
        },
    }
    if len(seeds) > 1:
        for n, m in out["models"].items():
            accs = accuracies(n)
            if len(accs) > 1:
                m["test_accuracy"] = float(np.mean(accs))
                m["test_accuracy_min"] = float(np.min(accs))
                m["test_accuracy_seeds"] = accs
                out["test_accuracy"][n] = m["test_accuracy"]
    return out


def merge_key(replicates: list[Any], seed: int, n_boot: int, env_key: str) -> str:
    """Content key of merging ``replicates``: every replicate's seed, rows and per-unit values
    (in row order), the bootstrap's seed and size, and :func:`environment_key` (the code)."""
    import hashlib

    import pandas as pd

    from binsal.core.replicates import frame_keys

    h = hashlib.sha256(f"{seed}|{n_boot}|{env_key}".encode())
    for rep in replicates:
        h.update(f"|{rep.seed}|{len(rep.frame)}|".encode())
        h.update(pd.util.hash_pandas_object(rep.frame, index=False).to_numpy().tobytes())
        for key in frame_keys(rep.frame):
            values = rep.units.get(key)
            h.update(b"-" if values is None else np.asarray(values, np.float64).tobytes() + b";")
    return h.hexdigest()[:24]


def merged(replicates: list[Any], seed: int, n_boot: int, cache: Path, env_key: str) -> Any:
    """:func:`binsal.core.replicates.merge_replicates`, cached as a cell (:func:`read_cell`,
    :func:`write_cell`) under ``<cache>/cells`` by :func:`merge_key`: a re-run whose replicates
    did not change reads the merged rows back (checked by checksum, floats exact) instead of
    bootstrapping every row again."""
    import tempfile

    cell = Path(cache) / "cells" / f"merge-{merge_key(replicates, seed, n_boot, env_key)}"
    table = None
    try:  # the cache is an optimisation: never fail a run on it
        with tempfile.TemporaryDirectory(dir=Path(cache)) as tmp:
            part = Path(tmp) / "merged.csv"
            if read_cell(cell, part, False):
                table = read_part(part)
            if table is None:
                table = merge_replicates(replicates, seed=seed, n_boot=n_boot)
                write_part(part, table)
                write_cell(cell, part, False)
    except OSError:
        pass
    if table is None:  # the cache folder could not be used at all
        table = merge_replicates(replicates, seed=seed, n_boot=n_boot)
    return table


def run_suite(
    profile: Profile,
    *,
    results_dir: str | os.PathLike = "results",
    cache_dir: str | os.PathLike | None = None,
    resume: bool = True,
    quiet: bool = False,
    weights_bundle: str | os.PathLike | None = None,
    deterministic: bool = True,
    own: OwnRun | None = None,
    executor: Executor | None = None,
) -> Path:
    """Run every benchmark of ``profile``; returns the run folder (``results/<run-id>``).
    ``quiet``: no progress display; warnings (something redone, skipped or failed) still print.
    ``weights_bundle``: evaluate the models of that bundle instead of training them.
    ``deterministic``: TensorFlow op determinism and pinned thread counts (the default).
    ``own``: the user's models and images instead of the profile's (:class:`OwnRun`).
    ``executor``: runs the work as cells first (e.g. on a Dask cluster, :mod:`binsal.cells`);
    the stages below then assemble the run from the caches the cells filled. None: everything
    in this process, stage by stage.

    Stages: resolve (names and options checked, no work yet) -> weights preflight -> data ->
    models -> predictions -> maps -> benchmarks -> manifest -> report -> history.
    """
    with quiet_notices(quiet):
        from binsal.models.pretrained import preflight

        if own is not None:
            profile = replace(
                profile, models=tuple(own.models), train=replace(profile.train, replicates=1)
            )
        profile = resolve_profile(profile, own_models=own is not None)
        bundle = None if own is not None else resolve_bundle(profile, weights_bundle)
        if own is None:
            preflight(
                profile
            )  # pretrained weights present? (TF-free, fails fast listing each file)
        results = writable_dir(results_dir, "results folder")
        root = resolve_cache_root(cache_dir)
        import tensorflow as tf
        from absl import logging as absl_logging

        tf.get_logger().setLevel("ERROR")  # retracing notices on model clones are expected noise
        absl_logging.set_verbosity(absl_logging.ERROR)
        from binsal.models.determinism import configure

        determinism = configure(deterministic)
        for gpu in tf.config.list_physical_devices("GPU"):  # share a GPU, do not grab it whole
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # TensorFlow already started (a second run in one process)
                pass

        from binsal.reports.history import record_run
        from binsal.reports.html import write_report

        started = time.perf_counter()
        timer = StageTimer(quiet=quiet)
        env = environment_record()
        from binsal.models.training import shipped_enabled

        weights: dict[str, Any] = bundle.record() if bundle is not None else {"mode": "retrain"}
        if bundle is None:  # trained here, or the same training's output shipped with the package
            weights["shipped_weights"] = shipped_enabled()
        key_parts = {"profile": profile.to_dict(), "env": env, "deterministic": deterministic}
        if bundle is not None:  # a run on a bundle never resumes a retrained one, nor vice versa
            key_parts["weights"] = bundle.bundle_id
        if own is not None:
            weights = {"mode": "user models"}
            key_parts["own"] = own.key()
        run_key = config_key(key_parts, length=24)
        run_dir = open_run_dir(results, run_key, profile, resume, quiet)

        env_key = environment_key()  # versions, code, determinism: part of every cell and map key
        if own is not None and own.maps:  # results on maps from elsewhere are cached apart
            env_key = config_key({"env": env_key, "maps": own.key()["maps"]})
        k = profile.train.replicates
        if bundle is not None and k > 1:
            if not quiet:
                notice(f"binsal: a weights bundle holds one seed per model: {k} replicates -> 1")
            k = 1
        from binsal.models.gradcam_rules import apply_rule

        with timer.stage("data"):
            data = own.data if own is not None else load_data(profile, root)
        execution: dict[str, Any] = {"executor": "in-process"}
        if executor is not None and own is None:
            plan = RunPlan(
                profile=profile,
                cache_root=root,
                run_dir=run_dir,
                env_key=env_key,
                seeds=tuple(replicate_seeds(profile.seed, k)),
                bundle=None if bundle is None else str(bundle.path),
                deterministic=deterministic,
                environ={k: v for k, v in os.environ.items() if k.startswith("BINSAL_")},
            )
            with timer.stage("cells"):
                execution = executor.execute(plan)
        replicates: list[Any] = []
        failures: list[dict[str, Any]] = []
        table: Any = None
        per_seed: dict[int, dict[str, Any]] = {}
        first: Any = None
        qualitative = None
        for r, seed in enumerate(replicate_seeds(profile.seed, k)):
            label = f" [seed {seed}]" if k > 1 else ""
            prof_r = replace(profile, seed=seed)
            if own is not None:  # own models keep their GradCAM layer (given or found)
                models = {n: apply_rule(m, "") for n, m in own.models.items()}
            else:
                models = load_models(
                    prof_r, data, root, timer, bundle, trained_only=r > 0, label=label
                )
            if not models:
                break  # nothing is trained here: one replicate is all there is
            ctx = context_for(
                prof_r,
                models,
                data,
                run_dir=run_dir,
                cache_root=root,
                env_key=env_key,
                timer=timer,
            )
            compute_predictions(ctx, timer, label)
            if own is not None:
                for name, m in ctx.models.items():  # accuracy on the user's labelled images
                    if np.isnan(m.test_accuracy):
                        m.test_accuracy = labelled_accuracy(ctx.predictions[name], data.labels)
                for model, given in own.maps.items():
                    for method, maps in given.items():
                        ctx.maps.put(
                            ctx.models[model],
                            ctx.method(method),
                            ctx.images,
                            ctx.targets_for(model),
                            maps,
                        )
            compute_maps(ctx, timer, label)
            if k == 1:
                table = run_benchmarks(
                    ctx, run_dir, timer, quiet, env_key=env_key, failures=failures
                )
            else:
                replicates.append(
                    run_benchmarks(
                        ctx, run_dir, timer, quiet, replicate=r, env_key=env_key, failures=failures
                    )
                )
            per_seed[seed] = replicate_record(ctx, data)
            if r == 0:
                first, qualitative = ctx, qualitative_set(ctx)
            ctx.maps.release()  # the maps stay on disk; keep one replicate's in memory at a time
            release_models()
        if replicates:
            from binsal.reports.figures import prestart_drawing

            prestart_drawing()  # the report's figure workers start up while the seeds merge
            with timer.stage("merge replicates"):
                table = merged(replicates, profile.seed, profile.n_boot, root, env_key)
                table.insert(0, "run_id", run_dir.name)
                per_rep = replicates_frame(replicates, run_dir.name)
                per_rep.to_csv(run_dir / REPLICATES_FILE, index=False)
        table.to_csv(run_dir / "results.csv", index=False)

        manifest = build_manifest(run_dir, profile, data, first, env, per_seed)
        manifest["weights"] = weights
        manifest["determinism"] = determinism
        manifest["failures"] = failures  # benchmarks that raised (a resumed run retries them)
        manifest["execution"] = execution  # where the cells ran (binsal.cells)
        manifest["devices"] = [d.name for d in tf.config.list_physical_devices()]
        manifest["method_docs"] = method_docs(list(profile.saliency.methods))
        manifest["stage_seconds"] = timer.seconds
        manifest["wall_seconds"] = time.perf_counter() - started
        manifest["finished_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
        with timer.stage("report"):
            write_report(run_dir, table, manifest, qualitative)
        manifest["stage_seconds"] = timer.seconds
        manifest["stage_peak_rss_mb"] = timer.peak_rss_mb
        manifest["wall_seconds"] = time.perf_counter() - started
        (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        record_run(run_dir, table, manifest, results_dir=results, quiet=quiet)
        status = "failed" if failures else "complete"  # "failed": the next run resumes and retries
        _write_state(
            run_dir, status=status, run_key=run_key, profile=profile.name, failures=failures
        )
        point_latest(results, run_dir)
        release_run(run_dir)
        return run_dir


def export_profile_bundle(
    profile: Profile,
    out: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    quiet: bool = False,
) -> Bundle:
    """Train (or take from the model cache) the profile's models and write them as a weights
    bundle (``binsal bundle``); pretrained models are not bundled (their files are the bundle)."""
    from binsal.models.bundle import export_bundle
    from binsal.models.registry import MODELS

    profile = resolve_profile(profile)
    trained = tuple(n for n in profile.models if MODELS[n](profile).source == "synthetic")
    if not trained:
        raise BinsalError(f"profile {profile.name!r} trains no models: nothing to bundle")
    profile = replace(profile, models=trained)
    from binsal.models.determinism import configure

    configure(True)
    timer = StageTimer(quiet=quiet)
    root = resolve_cache_root(cache_dir)
    with quiet_notices(quiet):
        with timer.stage("data"):
            data = load_data(profile, root)
        models = load_models(profile, data, root, timer)
    return export_bundle(models, out, profile_name=profile.name, data=data.description)


def own_eval_set(
    images: Any,
    labels: Any = None,
    masks: Any = None,
    *,
    class_names: list[str] | None = None,
    description: dict[str, Any] | None = None,
) -> EvalSet:
    """The user's images (and labels, masks) as a run's evaluation set, checked: one map per
    image, a label per image (-1: explain each model's top-1 prediction), a mask per image."""
    from binsal.core.errors import InvalidInputError

    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[0] == 0:
        raise InvalidInputError(f"images must be a non-empty (N, H, W, C) batch, got {x.shape}")
    n = len(x)
    y = np.full(n, -1, dtype=np.int64) if labels is None else np.asarray(labels)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise InvalidInputError(f"{n} images need {n} integer labels, got shape {y.shape}")
    m = None
    if masks is not None:
        m = np.asarray(masks)
        if m.ndim == 4 and m.shape[-1] == 1:
            m = m[..., 0]
        if m.shape != x.shape[:3]:
            raise InvalidInputError(
                f"{n} images of {x.shape[1:3]} need masks of shape {x.shape[:3]}, got {m.shape}"
            )
        m = m > 0
    desc = {"source": "user", "n_images": n, "n_labelled": int(np.sum(y >= 0))}
    desc.update(description or {})
    names = list(class_names or [])
    return EvalSet(
        images=x,
        labels=y.astype(np.int64),
        masks=m,
        class_names=names,
        indices=np.arange(n),
        full=None,
        description=desc,
    )


def evaluate(
    models: dict[str, Any],
    images: Any,
    labels: Any = None,
    masks: Any = None,
    *,
    benchmarks: list[str] | tuple[str, ...] | None = None,
    methods: list[str] | tuple[str, ...] | None = None,
    pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    families: dict[str, str] | None = None,
    gradcam_layers: dict[str, str] | None = None,
    preprocess: Any = None,
    maps: dict[str, dict[str, Any]] | None = None,
    profile: str | Profile = "default",
    results_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    quiet: bool = True,
) -> Any:
    """Benchmark your own models on your own images; returns the tidy results table (the CLI's
    ``results.csv``; its ``attrs["run_dir"]`` is the run folder with ``report.html``).

    ``models``: name -> ``tf.keras.Model`` (larq layers included) or LoadedModel; family and
    GradCAM layer are found (override with ``families`` / ``gradcam_layers``), a final softmax
    is removed on a copy. ``images``: (N, H, W, C), the models' inputs, or raw images when
    ``preprocess`` (a name of ``binsal.models.own.PREPROCESSING``, a function, or a dict per
    model) is given. ``labels``: (N,) classes (None: each model's top-1 prediction is explained);
    ``masks``: (N, H, W) ground truth (localization). ``pairs``: (FP, BNN) names of matched pairs.
    ``maps``: model -> method -> (N, H, W) maps (array or ``.npy`` path) from another tool, used
    instead of binsal's maps of that method. ``profile``: the methods, benchmarks and options
    (default: the default profile's); ``benchmarks`` / ``methods`` narrow it. Benchmarks that
    retrain (ROAR, data randomization) are skipped: there is no training data.
    """
    import tempfile

    import pandas as pd

    from binsal.core.errors import InvalidInputError
    from binsal.core.profile import load_profile
    from binsal.models.own import wrap_model
    from binsal.saliency import METHODS

    prof = load_profile(profile) if isinstance(profile, str) else profile
    if benchmarks:
        prof = replace(prof, benchmarks=tuple(benchmarks))
    if methods:
        prof = replace(prof, saliency=replace(prof.saliency, methods=tuple(methods)))
    if not models:
        raise InvalidInputError("models must name at least one model")
    pair_of: dict[str, str] = {}
    for a, b in pairs:
        for n in (a, b):
            if n not in models:
                raise InvalidInputError(f"pair ({a}, {b}): no model {n!r} in models")
        pair_of[a] = pair_of[b] = f"{a}~{b}"
    wrapped = {}
    for name, model in models.items():
        pre = preprocess.get(name) if isinstance(preprocess, dict) else preprocess
        loaded = wrap_model(
            model,
            name=name,
            family=(families or {}).get(name),
            gradcam_layer=(gradcam_layers or {}).get(name),
            preprocess=pre,
            pair=pair_of.get(name, ""),
            quiet=quiet,
        )
        if loaded.name != name:  # a LoadedModel under another name
            loaded = type(loaded)(
                replace(loaded.spec, name=name, pair=pair_of.get(name, "")),
                loaded.model,
                loaded.test_accuracy,
                dict(loaded.meta),
            )
        wrapped[name] = loaded
    data = own_eval_set(images, labels, masks)
    shapes = {n: tuple(m.spec.input_shape) for n, m in wrapped.items()}
    for n, shape in shapes.items():
        if shape != data.images.shape[1:]:
            raise InvalidInputError(
                f"images of shape {data.images.shape[1:]} do not fit model {n} (expects {shape})"
            )
    given: dict[str, dict[str, np.ndarray]] = {}
    for model, per in (maps or {}).items():
        if model not in wrapped:
            raise InvalidInputError(f"maps given for {model!r}, which is not in models")
        METHODS.check(list(per))
        given[model] = {
            method: np.load(v) if isinstance(v, (str, os.PathLike)) else np.asarray(v)
            for method, v in per.items()
        }
    prof = replace(prof, saliency=replace(prof.saliency, n_images=max(len(data.images), 1)))
    out = Path(results_dir) if results_dir is not None else Path(tempfile.mkdtemp("-binsal"))
    run_dir = run_suite(
        prof,
        results_dir=out,
        cache_dir=cache_dir,
        quiet=quiet,
        own=OwnRun(wrapped, data, given),
    )
    table = pd.read_csv(
        run_dir / "results.csv", keep_default_na=False, na_values=["", "nan", "NaN"]
    )
    table.attrs["run_dir"] = str(run_dir)
    return table


@dataclass(frozen=True)
class ModelFile:
    """``--model NAME=PATH[:FP|BNN]`` with its ``--gradcam-layer`` and ``--preprocessing``."""

    name: str
    path: str
    family: str | None = None
    gradcam_layer: str | None = None
    preprocessing: str = "scale01"


DIFF_BENCHMARKS = (
    "rank_correlation",
    "localization",
    "model_randomization",
    "road",
    "entropy_vs_noise",
    "gradcam_pathologies",
)


def own_run_from_files(
    files: list[ModelFile],
    *,
    images: str,
    masks: str | None = None,
    labels: str | None = None,
    pairs: list[tuple[str, str]] | None = None,
    n_images: int | None = None,
    seed: int = 0,
    quiet: bool = False,
) -> OwnRun:
    """Load model files and a folder of images (and masks, labels) as an :class:`OwnRun`;
    every model takes the same input size, the images are resized to it."""
    from binsal.core.errors import InvalidInputError
    from binsal.datasets.own import load_own_images
    from binsal.models.own import load_model_file, wrap_model

    pair_of = {}
    for a, b in pairs or []:
        pair_of[a] = pair_of[b] = f"{a}~{b}"
    models = {}
    for f in files:
        try:
            models[f.name] = wrap_model(
                load_model_file(f.path),
                name=f.name,
                family=f.family,
                gradcam_layer=f.gradcam_layer,
                preprocess=f.preprocessing,
                pair=pair_of.get(f.name, ""),
                quiet=quiet,
            )
        except InvalidInputError as exc:
            raise BinsalError(f"{f.path}: {exc}") from None
    shapes = {n: m.spec.input_shape for n, m in models.items()}
    if len(set(shapes.values())) > 1:
        raise BinsalError(
            "the models take different input shapes ("
            + ", ".join(f"{n}: {s}" for n, s in shapes.items())
            + "); one run explains one set of images, so the models must share one"
        )
    height, width, channels = next(iter(shapes.values()))
    if height != width or channels != 3:
        raise BinsalError(
            f"the models take {height}x{width}x{channels} inputs; --images needs square RGB inputs"
        )
    own = load_own_images(images, height, masks=masks, labels=labels)
    idx = np.arange(len(own.images))
    if n_images and n_images < len(idx):  # a seeded subset, as for the profile's own data
        idx = np.sort(np.random.default_rng(seed).choice(len(idx), n_images, replace=False))
    desc = {
        "dataset": str(Path(images).expanduser()),
        "masks": str(Path(masks).expanduser()) if masks else "",
        "labels": str(Path(labels).expanduser()) if labels else "",
        "items": [own.files[i] for i in idx],
        "image_size": int(height),
        "models": {f.name: f.path for f in files},
    }
    data = own_eval_set(
        own.images[idx],
        own.labels[idx],
        None if own.masks is None else own.masks[idx],
        class_names=own.class_names,
        description=desc,
    )
    return OwnRun(models, replace(data, indices=idx))
