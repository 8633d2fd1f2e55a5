"""The SQLite history of runs: round trip, replacement, location rules, the CLI listing, and two
processes appending at the same moment (nothing lost)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from binsal.cli import main
from binsal.core.schema import RESULT_COLUMNS
from binsal.reports import history


def make_table(run_id: str, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    value = rng.random(n)
    t = pd.DataFrame(
        {
            "benchmark": "bench",
            "model": [f"m{i % 4}" for i in range(n)],
            "family": ["FP", "BNN"] * (n // 2) + ["FP"] * (n % 2),
            "pair": "",
            "method": "gradient",
            "metric": [f"metric{i}" for i in range(n)],
            "step": [math.nan if i % 3 else i / 10 for i in range(n)],
            "params": json.dumps({"seed": seed}),
            "value": value,
            "ci_low": value - 0.1,
            "ci_high": value + 0.1,
            "n": 8,
            "direction": "higher",
            "seed": seed,
        },
        columns=RESULT_COLUMNS,
    )
    t.insert(0, "run_id", run_id)
    return t


def make_manifest(run_id: str, *, finished: str = "2026-01-01T00:00:00+00:00") -> dict:
    libs = {"tensorflow_runtime": "2.15.1", "keras_runtime": "2.15.0", "larq": "0.14.0"}
    libs |= {"larq-zoo": "2.4.0", "tf-keras-vis": "0.8.7", "python": "3.11.7"}
    return {
        "run_id": run_id,
        "profile": {"name": "smoke"},
        "finished_utc": finished,
        "environment": {"git_commit": "abc123"},
        "library_versions": libs,
        "wall_seconds": 12.5,
    }


def test_append_list_and_load_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("BINSAL_ENV_NAME", "tf215")
    db = tmp_path / "h.sqlite"
    table = make_table("run-a", 30)
    history.append_run(db, table, make_manifest("run-a"))
    runs = history.list_runs(db)
    assert list(runs["run_id"]) == ["run-a"]
    r = runs.iloc[0]
    assert (r["env_name"], r["profile"], r["tensorflow"], r["larq"]) == (
        "tf215",
        "smoke",
        "2.15.1",
        "0.14.0",
    )
    assert (r["larq_zoo"], r["tf_keras_vis"], r["git_commit"], r["n_rows"]) == (
        "2.4.0",
        "0.8.7",
        "abc123",
        30,
    )
    back, manifest = history.load_run(db, "run-a")
    assert manifest["env_name"] == "tf215" and manifest["run_id"] == "run-a"
    assert len(back) == 30
    assert np.allclose(back["value"], table["value"])
    assert back["step"].isna().sum() == table["step"].isna().sum()
    assert list(back["metric"]) == list(table["metric"])
    assert history.load_run(db, "run-")[1]["run_id"] == "run-a"  # a unique prefix works


def test_recording_a_run_again_replaces_it(tmp_path):
    db = tmp_path / "h.sqlite"
    history.append_run(db, make_table("r", 10), make_manifest("r"))
    history.append_run(db, make_table("r", 7), make_manifest("r"))
    assert len(history.list_runs(db)) == 1
    assert len(history.load_run(db, "r")[0]) == 7


def test_history_location_env_override_and_off(tmp_path, monkeypatch):
    monkeypatch.delenv("BINSAL_HISTORY", raising=False)
    assert history.history_path(tmp_path) == tmp_path / "history.sqlite"
    monkeypatch.setenv("BINSAL_HISTORY", str(tmp_path / "elsewhere.db"))
    assert history.history_path(tmp_path) == tmp_path / "elsewhere.db"
    monkeypatch.setenv("BINSAL_HISTORY", "off")
    assert history.history_path(tmp_path) is None
    assert history.record_run(tmp_path, make_table("x", 3), make_manifest("x")) is None


def test_record_run_hook_writes_next_to_results(tmp_path, monkeypatch):
    monkeypatch.delenv("BINSAL_HISTORY", raising=False)
    monkeypatch.setenv("BINSAL_ENV_NAME", "local-test")
    run_dir = tmp_path / "results" / "run-1"
    run_dir.mkdir(parents=True)
    path = history.record_run(run_dir, make_table("run-1", 5), make_manifest("run-1"), quiet=True)
    assert path == tmp_path / "results" / "history.sqlite"
    assert history.latest_per_env(path) == {"local-test": "run-1"}


def test_history_cli_lists_runs_with_versions(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BINSAL_ENV_NAME", "tf213")
    db = tmp_path / "h.sqlite"
    history.append_run(db, make_table("run-old", 4), make_manifest("run-old"))
    assert main(["history", "--history", str(db)]) == 0
    out = capsys.readouterr().out
    assert "run-old" in out and "tf213" in out and "2.15.1" in out and "0.8.7" in out
    history.record_failure(db, stage="method", method="gradcam", model="m", error="E: boom")
    assert main(["history", "--history", str(db), "--failures"]) == 0
    assert "gradcam" in capsys.readouterr().out


WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    sys.path.insert(0, {tests!r})
    from test_history import make_manifest, make_table
    from binsal.reports import history
    db, tag, barrier = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    tables = [make_table(f"{{tag}}-{{i}}", 4000, seed=i) for i in range(4)]
    (barrier / tag).touch()
    while len(list(barrier.iterdir())) < 2:  # both writers released together
        time.sleep(0.001)
    for i, t in enumerate(tables):
        history.append_run(db, t, make_manifest(f"{{tag}}-{{i}}"), env=tag)
    print("done", tag)
    """
)


@pytest.mark.slow
def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    from pathlib import Path

    db = tmp_path / "shared.sqlite"
    script = WRITER.format(tests=str(Path(__file__).parent))
    barrier = tmp_path / "ready"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(db), tag, str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("envA", "envB")
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.startswith("done")
    runs = history.list_runs(db)
    assert sorted(runs["run_id"]) == sorted(f"{t}-{i}" for t in ("envA", "envB") for i in range(4))
    assert set(runs["n_rows"]) == {4000}
    for run_id in runs["run_id"]:
        assert len(history.load_run(db, run_id)[0]) == 4000
    assert history.latest_per_env(db).keys() == {"envA", "envB"}


def test_a_history_written_before_new_columns_is_migrated(tmp_path):
    """A schema-1 history (no runs.weights, no scores.ci_method / n_groups) takes new runs."""
    import sqlite3

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    old_scores = ", ".join(
        f"{c} {t}"
        for c, t in [
            ("run_id", "TEXT"),
            *((c, "TEXT") for c in RESULT_COLUMNS if c not in ("ci_method", "n_groups")),
        ]
    )
    con.executescript(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, finished_utc TEXT, recorded_utc TEXT, "
        "profile TEXT, env_name TEXT, git_commit TEXT, tensorflow TEXT, keras TEXT, "
        "tf_keras TEXT, larq TEXT, larq_zoo TEXT, tf_keras_vis TEXT, numpy TEXT, python TEXT, "
        "n_rows INTEGER, wall_seconds REAL, run_dir TEXT, manifest TEXT);"
        f"CREATE TABLE scores ({old_scores}); PRAGMA user_version = 1;"
    )
    con.close()
    history.append_run(db, make_table("run-new", 6), make_manifest("run-new"))
    runs = history.list_runs(db)
    assert list(runs["run_id"]) == ["run-new"] and list(runs["weights"]) == ["retrain"]
    table, _ = history.load_run(db, "run-new")
    assert len(table) == 6 and {"ci_method", "n_groups"} <= set(table.columns)
