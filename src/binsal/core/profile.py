"""Profiles: small TOML files (``binsal/core/profiles/*.toml``) loaded into frozen dataclasses.

Every section and key is checked on load (:mod:`binsal.core.options`): an unknown section or key,
a value of the wrong type or out of range stops the run with one line naming the key, before
any work. A profile file has these sections::

    description = "..."        seed = 0
    [data]      source, path, image_size, crop, n_train, n_test    (DataConfig)
    [train]     epochs_fp, epochs_bnn, batch_size, learning_rate, widths_scale, replicates
                (TrainSettings)
    [models]    names
    [saliency]  methods, n_images, smoothgrad_samples, smoothgrad_noise, chunk_size, engine,
                preset, per_sample_abs, channel_reduce, normalize, gradcam_layer
    [saliency.gradcam_layers]   model name = GradCAM layer rule or layer name, per model
    [benchmarks] names, n_boot
    [benchmarks.<name>]   the options of one benchmark (its ``Options`` dataclass; checked by
                          ``binsal.benchmarks.check_profile``, which knows the benchmarks)
    [report]    qualitative_images, accuracy_floor_factor
    [tfds]      data_dir, manual_dir   (data source "tfds" only)

What a profile does depends only on its contents, never on its name: a copy of ``smoke.toml``
under another name runs exactly the same.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from binsal.core.errors import BinsalError, UnknownNameError
from binsal.core.options import build

DataSource = Literal["synthetic", "photos", "folder", "tfds"]
Engine = Literal["tf", "tfkv"]  # "tf": the suite's batched engine; "tfkv": tf-keras-vis
Preset = Literal["binsal", "tf-keras-vis"]
ChannelReduce = Literal["sum", "mean", "max_abs", "max", "l2"]
Normalize = Literal["none", "minmax"]
# GradCAM layer rules (else a layer name): "last_feature_map", the last spatial feature map
# before the classifier head (Selvaraju et al.; each model spec's pinned layer);
# "toolkit_default", the layer tf-keras-vis 0.8.7 picks by default (the last Conv layer)
LayerRule = Literal["last_feature_map", "toolkit_default"]
LAYER_RULES: tuple[LayerRule, ...] = ("last_feature_map", "toolkit_default")

# What each map-settings preset sets where the profile leaves a key out. "tf-keras-vis": the
# defaults of tf-keras-vis 0.8.7's Saliency / Gradcam calls, which the paper used
# (``gradient_modifier=abs`` on every sample, ``keepdims=False`` = channel max,
# ``normalize_map=True`` / ``normalize_cam=True``, ``seek_penultimate_conv_layer=True``).
PRESETS: dict[str, dict[str, Any]] = {
    "binsal": {
        "per_sample_abs": False,
        "channel_reduce": "sum",
        "normalize": "none",
        "gradcam_layer": "last_feature_map",
    },
    "tf-keras-vis": {
        "per_sample_abs": True,
        "channel_reduce": "max_abs",
        "normalize": "minmax",
        "gradcam_layer": "toolkit_default",
    },
}

POSITIVE = {"min": 1}


@dataclass(frozen=True)
class DataConfig:
    source: DataSource = "synthetic"  # or (pretrained profiles) "photos", "folder", "tfds"
    path: str = ""  # folder of images (source "folder") or TFDS name (source "tfds")
    # the smallest synthetic image (binsal.datasets.synthetic.MIN_IMAGE_SIZE)
    image_size: int = field(default=64, metadata={"min": 16})
    # the evaluation frame of photos / folder / TFDS images (binsal.datasets.images.frame_image):
    # "square" (whole short side, bilinear) or "larq_zoo" (central 87.5 %, bicubic)
    crop: Literal["square", "larq_zoo"] = "square"
    n_train: int = field(default=6000, metadata=POSITIVE)
    n_test: int = field(default=1000, metadata=POSITIVE)


@dataclass(frozen=True)
class TrainSettings:
    epochs_fp: int = field(default=8, metadata=POSITIVE)
    epochs_bnn: int = field(default=16, metadata=POSITIVE)
    batch_size: int = field(default=64, metadata=POSITIVE)
    learning_rate: float = field(default=2e-3, metadata={"gt": 0})
    widths_scale: float = field(default=1.0, metadata={"gt": 0})
    # training-seed replicates: every trained model is trained with seeds seed, seed + 1, ...,
    # every benchmark run on each (see binsal.core.replicates)
    replicates: int = field(default=1, metadata=POSITIVE)


@dataclass(frozen=True)
class SaliencySettings:
    methods: tuple[str, ...] = field(
        default=("gradient", "smoothgrad", "gradcam", "random", "sobel"),
        metadata={"min_items": 1},
    )
    n_images: int = field(default=128, metadata=POSITIVE)
    smoothgrad_samples: int = field(default=20, metadata=POSITIVE)
    smoothgrad_noise: float = field(default=0.2, metadata={"gt": 0, "max": 1})
    chunk_size: int = field(default=256, metadata=POSITIVE)
    # images per batched call, aligned to their index in the set, so that image shards
    # concatenate to the whole set's maps bit for bit (binsal.saliency.base.MAP_BLOCK)
    map_block: int = field(default=32, metadata=POSITIVE)
    engine: Engine = "tf"
    # map settings: a preset, and any key of it set here overrides it (see PRESETS)
    preset: Preset = "binsal"
    per_sample_abs: bool | None = None  # |gradient| of every sample (Gradient, SmoothGrad family)
    channel_reduce: ChannelReduce | None = None  # gradient methods' channel reduction
    normalize: Normalize | None = None  # per-image min-max, or none (every method)
    gradcam_layer: str = ""  # a rule of LAYER_RULES or a layer name; "" = the preset's
    gradcam_layers: dict[str, str] = field(default_factory=dict)  # per model, over gradcam_layer

    def map_settings(self) -> dict[str, Any]:
        """The effective map settings: the preset's, overridden by what is set here."""
        out = dict(PRESETS[self.preset])
        for key in ("per_sample_abs", "channel_reduce", "normalize", "gradcam_layer"):
            value = getattr(self, key)
            if value is not None and value != "":
                out[key] = value
        return out

    def gradcam_layer_for(self, model: str) -> str:
        """The GradCAM layer rule (or layer name) of ``model``."""
        return self.gradcam_layers.get(model) or str(self.map_settings()["gradcam_layer"])


@dataclass(frozen=True)
class TfdsOptions:
    """``[tfds]``: where TFDS data sets live (data source "tfds")."""

    data_dir: str = ""  # else $TFDS_DATA_DIR, else TFDS's default
    manual_dir: str = ""  # e.g. the ILSVRC2012 tar files for imagenet2012


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    seed: int = 0
    data: DataConfig = DataConfig()
    train: TrainSettings = TrainSettings()
    models: tuple[str, ...] = ()
    saliency: SaliencySettings = SaliencySettings()
    benchmarks: tuple[str, ...] = ("rank_correlation",)
    n_boot: int = 1000
    qualitative_images: int = 6
    # a model whose test accuracy is below factor x chance (1 / classes; capped below 1, see
    # binsal.reports.claims.accuracy_floor) did not learn: its claims are not evaluated
    accuracy_floor_factor: float = 2.0
    # the keys given in the [tfds] section, as {"tfds": {...}} (read by binsal.datasets.images)
    options: dict[str, Any] = field(default_factory=dict)
    # the raw [benchmarks.<name>] tables, benchmark name -> keys; each benchmark builds its typed
    # ``Options`` from its table (see binsal.benchmarks.base.BenchmarkOptions)
    benchmark_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The file's layout (TOML tables) as dataclasses, for the checks; mapped onto Profile below.


@dataclass(frozen=True)
class _ModelsSection:
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class _BenchmarksSection:
    names: tuple[str, ...] = ("rank_correlation",)  # or ["all"]
    n_boot: int = field(default=1000, metadata=POSITIVE)


@dataclass(frozen=True)
class _ReportSection:
    qualitative_images: int = field(default=6, metadata={"min": 0})
    accuracy_floor_factor: float = field(default=2.0, metadata={"gt": 0})


@dataclass(frozen=True)
class _ProfileFile:
    description: str = ""
    seed: int = field(default=0, metadata={"min": 0, "max": 2**32 - 1})  # NumPy's seed range
    data: DataConfig = DataConfig()
    train: TrainSettings = TrainSettings()
    models: _ModelsSection = _ModelsSection()
    saliency: SaliencySettings = SaliencySettings()
    benchmarks: _BenchmarksSection = _BenchmarksSection()
    report: _ReportSection = _ReportSection()
    tfds: TfdsOptions = TfdsOptions()


def available_profiles() -> list[str]:
    folder = resources.files("binsal.core") / "profiles"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def _owner(name: str) -> str:
    return f"profile {name!r}"


def _from_mapping(name: str, raw: dict[str, Any]) -> Profile:
    """A checked Profile from a parsed TOML file (BinsalError, one line, on any bad entry)."""
    raw = dict(raw)
    bench = raw.get("benchmarks", {})
    tables: dict[str, dict[str, Any]] = {}
    if isinstance(bench, dict):
        tables = {k: dict(v) for k, v in bench.items() if isinstance(v, dict)}
        raw["benchmarks"] = {k: v for k, v in bench.items() if k not in tables}
    f = build(_ProfileFile, raw, owner=_owner(name))
    tfds = raw.get("tfds")
    return Profile(
        name=name,
        description=f.description,
        seed=f.seed,
        data=f.data,
        train=f.train,
        models=f.models.names,
        saliency=f.saliency,
        benchmarks=f.benchmarks.names,
        n_boot=f.benchmarks.n_boot,
        qualitative_images=f.report.qualitative_images,
        accuracy_floor_factor=f.report.accuracy_floor_factor,
        options={"tfds": dict(tfds)} if isinstance(tfds, dict) else {},
        benchmark_options=tables,
    )


def check_profile_settings(profile: Profile) -> Profile:
    """``profile`` (e.g. after command-line overrides) checked as a loaded file is: the same
    one-line errors. Benchmark tables are checked by ``binsal.benchmarks.check_profile``."""
    owner = _owner(profile.name)
    f = build(
        _ProfileFile,
        {
            "description": profile.description,
            "seed": profile.seed,
            "data": profile.data,
            "train": profile.train,
            "models": {"names": profile.models},
            "saliency": profile.saliency,
            "benchmarks": {"names": profile.benchmarks, "n_boot": profile.n_boot},
            "report": {
                "qualitative_images": profile.qualitative_images,
                "accuracy_floor_factor": profile.accuracy_floor_factor,
            },
            "tfds": profile.options.get("tfds", {}),
        },
        owner=owner,
    )
    unknown = sorted(set(profile.options) - {"tfds"})
    if unknown:
        raise BinsalError(f"{owner}: unknown section [{unknown[0]}]; known extra sections: [tfds]")
    for bench, table in profile.benchmark_options.items():
        if not isinstance(table, dict):
            raise BinsalError(f"{owner}: [benchmarks.{bench}] must be a table, got {table!r}")
    return replace(profile, data=f.data, train=f.train, saliency=f.saliency)


def load_profile(name_or_path: str) -> Profile:
    """A profile by name (see :func:`available_profiles`) or a path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            msg = f"{_owner(path.stem)}: {path} is not UTF-8 text (byte {exc.start}); TOML is UTF-8"
            raise BinsalError(msg) from None
        except OSError as exc:
            raise BinsalError(f"{_owner(path.stem)}: cannot read {path}: {exc.strerror}") from None
        return _parse(path.stem, text, where=str(path))
    if name_or_path not in available_profiles():
        raise UnknownNameError("profile", name_or_path, available_profiles())
    text = (resources.files("binsal.core") / "profiles" / f"{name_or_path}.toml").read_text()
    return _parse(name_or_path, text, where=f"{name_or_path}.toml")


def _parse(name: str, text: str, *, where: str) -> Profile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BinsalError(f"{_owner(name)}: {where} is not valid TOML: {exc}") from None
    return _from_mapping(name, raw)


def with_overrides(profile: Profile, **changes: Any) -> Profile:
    """``profile`` with fields replaced, checked like a loaded file."""
    return check_profile_settings(replace(profile, **changes))
