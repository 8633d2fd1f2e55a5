"""Profiles: small TOML files (``binsal/core/profiles/*.toml``) loaded into frozen dataclasses."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from binsal.core.errors import BinsalError, UnknownNameError


@dataclass(frozen=True)
class DataConfig:
    source: str = "synthetic"  # "synthetic", or (paper profile) "photos", "folder", "tfds"
    path: str = ""  # folder of images (source "folder") or TFDS name (source "tfds")
    image_size: int = 64
    n_train: int = 6000
    n_test: int = 1000


@dataclass(frozen=True)
class TrainSettings:
    epochs_fp: int = 8
    epochs_bnn: int = 16
    batch_size: int = 64
    learning_rate: float = 2e-3
    widths_scale: float = 1.0


@dataclass(frozen=True)
class SaliencySettings:
    methods: tuple[str, ...] = ("gradient", "smoothgrad", "gradcam", "random", "sobel")
    n_images: int = 128
    smoothgrad_samples: int = 20
    smoothgrad_noise: float = 0.2
    chunk_size: int = 256
    engine: str = "tf"


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
    options: dict[str, Any] = field(default_factory=dict)  # per-benchmark extra sections

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def available_profiles() -> list[str]:
    folder = resources.files("binsal.core") / "profiles"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def _from_mapping(name: str, raw: dict[str, Any]) -> Profile:
    known_sections = {"description", "seed", "data", "train", "models", "saliency"}
    known_sections |= {"benchmarks", "report"}
    try:
        sal = dict(raw.get("saliency", {}))
        if "methods" in sal:
            sal["methods"] = tuple(sal["methods"])
        bench = dict(raw.get("benchmarks", {}))
        return Profile(
            name=name,
            description=raw.get("description", ""),
            seed=int(raw.get("seed", 0)),
            data=DataConfig(**raw.get("data", {})),
            train=TrainSettings(**raw.get("train", {})),
            models=tuple(raw.get("models", {}).get("names", ())),
            saliency=SaliencySettings(**sal),
            benchmarks=tuple(bench.get("names", ("rank_correlation",))),
            n_boot=int(bench.get("n_boot", 1000)),
            qualitative_images=int(raw.get("report", {}).get("qualitative_images", 6)),
            options={k: v for k, v in raw.items() if k not in known_sections},
        )
    except TypeError as exc:
        raise BinsalError(f"profile {name!r} has an unknown setting: {exc}") from None


def load_profile(name_or_path: str) -> Profile:
    """A profile by name (see :func:`available_profiles`) or a path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        return _from_mapping(path.stem, tomllib.loads(path.read_text()))
    if name_or_path not in available_profiles():
        raise UnknownNameError("profile", name_or_path, available_profiles())
    text = (resources.files("binsal.core") / "profiles" / f"{name_or_path}.toml").read_text()
    return _from_mapping(name_or_path, tomllib.loads(text))


def with_overrides(profile: Profile, **changes: Any) -> Profile:
    return replace(profile, **changes)
