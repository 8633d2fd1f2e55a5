"""The history of runs: one SQLite file holding every run's manifest and tidy score rows.

Default location ``<results dir>/history.sqlite`` (so ``results/history.sqlite``), overridden by
``$BINSAL_HISTORY`` (``binsal run --history PATH`` sets it; ``off`` disables recording). Runs
made in different environments (tox envs pinning different TensorFlow / larq / tf-keras-vis
versions) land in the same file, tagged with ``env_name`` (``$BINSAL_ENV_NAME``, else tox's
``$TOX_ENV_NAME``, else ``"local"``), so :mod:`binsal.reports.compare` can line them up.

Concurrency: the database is in WAL mode with a busy timeout; a run is written in one
``BEGIN IMMEDIATE`` transaction (its ``runs`` row and all its ``scores`` rows, or nothing), and a
writer that still finds the database locked retries with jittered back-off. Two runs finishing
at once therefore both land, whole. Recording a run again (same run id, e.g. a resumed run)
replaces its rows.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

import pandas as pd

from binsal.core.schema import COLUMNS, RESULT_COLUMNS, scores_table_sql

HISTORY_ENV = "BINSAL_HISTORY"
ENV_NAME_ENV = "BINSAL_ENV_NAME"
DEFAULT_FILE = "history.sqlite"
SCHEMA_VERSION = 3  # 2: runs.weights (retrain / bundle:<id>); 3: scores.ci_method, n_groups

# (column in ``runs``, key in manifest["library_versions"])
VERSION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tensorflow", "tensorflow_runtime"),
    ("keras", "keras"),
    ("tf_keras", "tf-keras"),
    ("larq", "larq"),
    ("larq_zoo", "larq-zoo"),
    ("tf_keras_vis", "tf-keras-vis"),
    ("numpy", "numpy"),
    ("python", "python"),
)

_RUN_FK = "run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    finished_utc TEXT,
    recorded_utc TEXT NOT NULL,
    profile TEXT,
    env_name TEXT NOT NULL,
    git_commit TEXT,
    weights TEXT,
    {", ".join(f"{c} TEXT" for c, _ in VERSION_COLUMNS)},
    n_rows INTEGER NOT NULL,
    wall_seconds REAL,
    run_dir TEXT,
    manifest TEXT NOT NULL
);
{scores_table_sql("scores", run_column=_RUN_FK)}
CREATE INDEX IF NOT EXISTS scores_run ON scores(run_id);
CREATE INDEX IF NOT EXISTS runs_env ON runs(env_name, finished_utc);
CREATE TABLE IF NOT EXISTS failures (
    env_name TEXT NOT NULL,
    run_id TEXT,
    recorded_utc TEXT NOT NULL,
    stage TEXT NOT NULL,
    benchmark TEXT NOT NULL DEFAULT '',
    method TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL
);
PRAGMA user_version = {SCHEMA_VERSION};
"""


def history_path(results_dir: str | os.PathLike | None = None) -> Path | None:
    """``$BINSAL_HISTORY`` if set (``None`` when it is "off"/"0"/"none"), else
    ``<results_dir>/history.sqlite`` (``results/history.sqlite`` by default)."""
    env = os.environ.get(HISTORY_ENV, "").strip()
    if env.lower() in ("off", "0", "none", "false"):
        return None
    if env:
        return Path(env)
    return Path(results_dir if results_dir is not None else "results") / DEFAULT_FILE


def env_name() -> str:
    """Name of the environment a run was made in: $BINSAL_ENV_NAME, tox's env, or "local"."""
    return os.environ.get(ENV_NAME_ENV) or os.environ.get("TOX_ENV_NAME") or "local"


def connect(path: str | os.PathLike, *, timeout: float = 60.0) -> sqlite3.Connection:
    """Open (creating if needed) a history database in WAL mode with a busy timeout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    con.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    _retry(lambda: con.execute("PRAGMA journal_mode = WAL"))
    con.execute("PRAGMA foreign_keys = ON")
    _retry(lambda: con.executescript(_SCHEMA))
    _retry(lambda: _migrate(con))
    return con


def _retry(fn: Any, *, attempts: int = 8, base: float = 0.05) -> Any:
    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            msg = str(exc).lower()
            if ("locked" not in msg and "busy" not in msg) or i == attempts - 1:
                raise
            time.sleep(base * 2**i * (1 + random.random()))
    return None


@contextmanager
def _transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    con.execute("BEGIN IMMEDIATE")  # take the write lock now, not half-way through
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _cell(column: str, sql: str, v: Any) -> Any:
    """A DataFrame cell as the SQLite value its column declares (``COLUMNS``)."""
    if sql.startswith("REAL"):
        return _num(v)
    if sql.startswith("INTEGER"):
        f = _num(v)
        return None if f is None else int(f)
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "{}" if column == "params" else ("" if "NOT NULL" in sql else None)
    return str(v)


def _score_tuples(run_id: str, table: pd.DataFrame) -> list[tuple[Any, ...]]:
    t = table.reindex(columns=RESULT_COLUMNS)
    return [
        (run_id, *(_cell(c.name, c.sql, v) for c, v in zip(COLUMNS, rec, strict=True)))
        for rec in t.itertuples(index=False)
    ]


_INSERT_SCORES = (
    f"INSERT INTO scores (run_id, {', '.join(RESULT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"
)


def weights_label(manifest: Mapping[str, Any]) -> str:
    """ "retrain" (models trained in this run's environment) or "bundle:<id>" (the same
    weights as every run on that bundle)."""
    w = manifest.get("weights")
    if isinstance(w, Mapping) and w.get("mode") == "bundle":
        return f"bundle:{w.get('bundle_id')}"
    return "retrain"


def _migrate(con: sqlite3.Connection) -> None:
    """Bring a history written by an older binsal up to ``SCHEMA_VERSION`` (adds columns)."""
    cols = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    if "weights" not in cols:
        con.execute("ALTER TABLE runs ADD COLUMN weights TEXT DEFAULT 'retrain'")
    have = {row[1] for row in con.execute("PRAGMA table_info(scores)")}
    for c in COLUMNS:  # score columns added since (rows recorded before have NULL there)
        if c.name not in have:
            con.execute(f"ALTER TABLE scores ADD COLUMN {c.name} {c.sql.replace('NOT NULL', '')}")
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def append_run(
    path: str | os.PathLike,
    table: pd.DataFrame,
    manifest: Mapping[str, Any],
    *,
    env: str | None = None,
    run_dir: str | os.PathLike | None = None,
    attempts: int = 12,
) -> str:
    """Append one run (its tidy ``table`` and ``manifest``) in a single transaction, retrying
    while another writer holds the lock. Returns the run id."""
    run_id = str(manifest.get("run_id") or table["run_id"].iloc[0])
    env = env or env_name()
    libs = dict(manifest.get("library_versions") or {})
    environment = dict(manifest.get("environment") or {})
    stored = {**manifest, "env_name": env}
    if run_dir is not None:  # where its maps are, for map comparisons
        stored["run_dir"] = str(Path(run_dir).resolve())
    profile = manifest.get("profile")
    run_row = (
        run_id,
        manifest.get("finished_utc"),
        datetime.now(UTC).isoformat(timespec="seconds"),
        profile.get("name") if isinstance(profile, Mapping) else profile,
        env,
        environment.get("git_commit"),
        weights_label(manifest),
        *(libs.get(key) for _, key in VERSION_COLUMNS),
        int(len(table)),
        _num(manifest.get("wall_seconds")),
        None if run_dir is None else str(Path(run_dir).resolve()),
        json.dumps(stored, default=str),
    )
    scores = _score_tuples(run_id, table)
    run_cols = (
        ["run_id", "finished_utc", "recorded_utc", "profile", "env_name", "git_commit", "weights"]
        + [c for c, _ in VERSION_COLUMNS]
        + ["n_rows", "wall_seconds", "run_dir", "manifest"]
    )

    def write() -> None:
        con = connect(path)
        try:
            with _transaction(con):
                con.execute("DELETE FROM scores WHERE run_id = ?", (run_id,))
                con.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
                con.execute(
                    f"INSERT INTO runs ({', '.join(run_cols)}) "
                    f"VALUES ({', '.join('?' * len(run_cols))})",
                    run_row,
                )
                con.executemany(
                    _INSERT_SCORES,
                    scores,
                )
        finally:
            con.close()

    _retry(write, attempts=attempts, base=0.1)
    return run_id


def record_failure(
    path: str | os.PathLike,
    *,
    stage: str,
    error: str,
    benchmark: str = "",
    method: str = "",
    model: str = "",
    run_id: str | None = None,
    env: str | None = None,
) -> None:
    """Note something that failed in an environment (used by the version matrix)."""

    def write() -> None:
        con = connect(path)
        try:
            with _transaction(con):
                con.execute(
                    "INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        env or env_name(),
                        run_id,
                        datetime.now(UTC).isoformat(timespec="seconds"),
                        stage,
                        benchmark,
                        method,
                        model,
                        error[:4000],
                    ),
                )
        finally:
            con.close()

    _retry(write, base=0.1)


def attach_failures(path: str | os.PathLike, run_id: str, env: str | None = None) -> int:
    """Tag the env's not yet attached failures with the run that followed them."""

    def write() -> int:
        con = connect(path)
        try:
            with _transaction(con):
                cur = con.execute(
                    "UPDATE failures SET run_id = ? WHERE run_id IS NULL AND env_name = ?",
                    (run_id, env or env_name()),
                )
                return cur.rowcount
        finally:
            con.close()

    return _retry(write, base=0.1)


def record_run(
    run_dir: str | os.PathLike,
    table: pd.DataFrame,
    manifest: Mapping[str, Any],
    *,
    results_dir: str | os.PathLike | None = None,
    quiet: bool = False,
) -> Path | None:
    """The hook at the end of ``run_suite``: append the run to the history (see
    :func:`history_path`). A history that cannot be written costs a warning, never the run."""
    path = history_path(results_dir if results_dir is not None else Path(run_dir).parent)
    if path is None:
        return None
    try:
        append_run(path, table, manifest, run_dir=run_dir)
    except (sqlite3.Error, OSError) as exc:
        print(f"binsal: warning: run not recorded in history {path}: {exc}", file=sys.stderr)
        return None
    if not quiet:
        print(f"    recorded in history {path}", file=sys.stderr, flush=True)
    return path


def list_runs(path: str | os.PathLike) -> pd.DataFrame:
    """One row per recorded run (newest last): ids, time, profile, env, versions, commit."""
    if not Path(path).exists():
        return pd.DataFrame()
    con = connect(path)
    try:
        cols = ["run_id", "finished_utc", "profile", "env_name", "git_commit", "weights", "n_rows"]
        cols += [c for c, _ in VERSION_COLUMNS] + ["wall_seconds", "run_dir"]
        return pd.read_sql_query(
            f"SELECT {', '.join(cols)} FROM runs ORDER BY finished_utc, recorded_utc", con
        )
    finally:
        con.close()


class RunRow(Protocol):
    """A row of :func:`list_runs` as ``itertuples`` gives it (NULL: None, or NaN if numeric)."""

    run_id: str
    finished_utc: str | None
    profile: str | None
    env_name: str
    git_commit: str | None
    weights: str | None
    n_rows: int
    wall_seconds: float
    run_dir: str | None


class FailureRow(Protocol):
    """A row of :func:`list_failures` (the ``failures`` table) as ``itertuples`` gives it."""

    env_name: str
    run_id: str | None
    recorded_utc: str
    stage: str
    benchmark: str
    method: str
    model: str
    error: str


def list_failures(path: str | os.PathLike, env: str | None = None) -> pd.DataFrame:
    if not Path(path).exists():
        return pd.DataFrame()
    con = connect(path)
    try:
        q, args = "SELECT * FROM failures", ()
        if env:
            q, args = q + " WHERE env_name = ?", (env,)
        return pd.read_sql_query(q + " ORDER BY recorded_utc", con, params=args)
    finally:
        con.close()


def load_run(path: str | os.PathLike, run_id: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(tidy table with ``run_id`` first, manifest) of a recorded run; KeyError if unknown."""
    con = connect(path)
    try:
        row = con.execute(
            "SELECT run_id, manifest FROM runs WHERE run_id = ? OR run_id LIKE ? "
            "ORDER BY finished_utc DESC",
            (run_id, f"{run_id}%"),
        ).fetchall()
        if not row:
            raise KeyError(run_id)
        if len(row) > 1 and row[0][0] != run_id:
            raise KeyError(f"{run_id!r} is ambiguous: {', '.join(r[0] for r in row)}")
        rid, manifest = row[0]
        table = pd.read_sql_query(
            "SELECT * FROM scores WHERE run_id = ? ORDER BY rowid", con, params=(rid,)
        )
    finally:
        con.close()
    table["pair"] = table["pair"].fillna("")
    table["step"] = table["step"].astype(float)
    return table, json.loads(manifest)


def latest_per_env(path: str | os.PathLike, profile: str | None = None) -> dict[str, str]:
    """env name -> run id of its latest recorded run (optionally of one profile)."""
    runs = list_runs(path)
    if runs.empty:
        return {}
    if profile:
        runs = runs[runs["profile"] == profile]
    out: dict[str, str] = {}
    for env, g in runs.groupby("env_name", sort=True):
        out[str(env)] = str(g.sort_values(["finished_utc"]).iloc[-1]["run_id"])
    return out


def short_error(text: str, width: int = 160) -> str:
    """One line from a (multi-line) error: its first line, plus its last line when that says
    more (Keras wraps the real cause in a long message)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if not lines:
        return ""
    causes = [ln for ln in lines[1:] if re.match(r"^[\w.]*(Error|Exception)\b.*:", ln)]
    last = causes[-1] if causes else lines[-1]
    out = lines[0] if len(lines) == 1 else f"{lines[0]} ... {last}"
    return out if len(out) <= width else out[: width - 3] + "..."


def format_failures(fails: pd.DataFrame) -> str:
    if fails.empty:
        return "no failures recorded"
    lines = []
    for f in cast(Iterator[FailureRow], fails.itertuples(index=False)):
        where = " ".join(x for x in (f.stage, f.benchmark, f.method, f.model) if x)
        lines.append(f"{f.recorded_utc}  {f.env_name:<10} {where:<28} {short_error(f.error)}")
    return "\n".join(lines)


def format_runs(runs: pd.DataFrame) -> str:
    """A fixed-width listing for the terminal."""
    if runs.empty:
        return "no runs recorded"
    show = runs.copy()
    show["git_commit"] = show["git_commit"].fillna("").astype(str).str.slice(0, 12)
    show["wall_seconds"] = show["wall_seconds"].map(lambda s: f"{s:.0f}" if pd.notna(s) else "")
    cols = [
        "run_id",
        "finished_utc",
        "profile",
        "env_name",
        "tensorflow",
        "keras",
        "tf_keras",
        "larq",
        "larq_zoo",
        "tf_keras_vis",
        "git_commit",
        "weights",
        "n_rows",
    ]
    return show[cols].fillna("").to_string(index=False)
