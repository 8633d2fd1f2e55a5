"""Same weights, same images, one stack per run: do the maps change across library versions?

Run it with each tox env's Python into one folder; the first run saves the (untrained,
seeded) weights of the four default-size suite models, later runs load them, so only the
TensorFlow / larq / tf-keras-vis versions differ. Then ``--compare`` prints, against a baseline
env, the largest relative difference of logits and maps (Gradient, SmoothGrad 20 samples,
GradCAM; engines tf and tfkv) and the seconds per image (median of 3, batch 8, 64x64)::

    .tox/tf215/bin/python perf/crossversion_maps.py tf215 out/
    TF_USE_LEGACY_KERAS=1 .tox/tf216/bin/python perf/crossversion_maps.py tf216 out/
    python perf/crossversion_maps.py --compare tf215 out/
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

MODELS = ("vgg_fp", "vgg_bnn", "resnet_fp", "resnet_bnn")
CASES = {
    "gradient": {},
    "smoothgrad": {"samples": 20, "noise_level": 0.2, "seed": 0},
    "gradcam": {},
}


def record(env: str, folder: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from perfkit import batch, build

    from binsal.saliency import METHODS

    arrays, timing, errors = {}, {}, {}
    for name in MODELS:
        m = build(name, "default")
        wf = folder / f"weights_{name}.npz"
        if wf.exists():
            z = np.load(wf)
            m.model.set_weights([z[f"w{i}"] for i in range(len(z.files))])
        else:
            np.savez(wf, **{f"w{i}": w for i, w in enumerate(m.model.get_weights())})
        x, t = batch(m)
        arrays[f"{name}/logits"] = m.model.predict(x, verbose=0)
        for method, kw in CASES.items():
            for engine in ("tf", "tfkv"):
                key = f"{name}/{method}/{engine}"
                sal = METHODS[method](**kw)
                try:
                    arrays[key] = sal.explain(m, x, t, engine=engine)
                    runs = []
                    for _ in range(3):
                        t0 = time.perf_counter()
                        sal.explain(m, x, t, engine=engine)
                        runs.append(time.perf_counter() - t0)
                    timing[key] = float(np.median(runs)) / len(x)
                except Exception as exc:  # noqa: BLE001 - recorded
                    errors[key] = f"{type(exc).__name__}: {str(exc)[:300]}"
    np.savez(folder / f"maps_{env}.npz", **arrays)
    out = {"timing": timing, "errors": errors}
    (folder / f"timing_{env}.json").write_text(json.dumps(out, indent=1))
    print(env, "recorded", len(arrays), "arrays;", "errors:", errors or "none")


def compare(baseline: str, folder: Path) -> None:
    envs = sorted(p.stem[len("maps_") :] for p in folder.glob("maps_*.npz"))
    base = np.load(folder / f"maps_{baseline}.npz")
    for env in envs:
        if env == baseline:
            continue
        z = np.load(folder / f"maps_{env}.npz")
        worst = max(
            float(np.abs(base[k] - z[k]).max() / (np.abs(base[k]).max() + 1e-30))
            for k in base.files
        )
        print(f"{env}: largest relative difference from {baseline} over all arrays: {worst:.3g}")
    times = {e: json.loads((folder / f"timing_{e}.json").read_text())["timing"] for e in envs}
    print(f"{'seconds per image':34s}" + "".join(f"{e:>9s}" for e in envs))
    for key in sorted(times[baseline]):
        print(f"{key:34s}" + "".join(f"{times[e].get(key, float('nan')):9.4f}" for e in envs))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], Path(sys.argv[3]))
    else:
        folder = Path(sys.argv[2])
        folder.mkdir(parents=True, exist_ok=True)
        record(sys.argv[1], folder)
