"""Regression tables between runs: nothing flagged when only the seed changed, a deliberately
altered method flagged with the right direction, and the CLI (folders, history, --latest-per-env,
--fail-on-regression)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from binsal.cli import main
from binsal.reports import history
from binsal.reports.compare import RunData, compare_tables, label, normalise_params
from binsal.reports.synthetic import synthetic_run
from tests.conftest import all_declarations

BENCHES = ["localization", "gradcam_pathologies", "rank_correlation", "entropy_vs_noise"]


def run(seed: int, shift=None, run_id: str | None = None) -> RunData:
    table, manifest = synthetic_run(
        declarations=all_declarations(),
        seed=seed,
        shift=shift,
        benchmarks=BENCHES,
        run_id=run_id,
        n_boot=200,
    )
    return RunData(manifest["run_id"], table, manifest)


@pytest.fixture(scope="module")
def seed0() -> RunData:
    return run(0)


def test_two_seeds_nothing_changed_flags_nothing(seed0):
    other = run(1)
    c = compare_tables(seed0, other)
    assert len(c.table) == len(seed0.table)  # every score matched although params hold the seed
    assert c.only_a.empty and c.only_b.empty
    assert c.regressions.empty
    assert (c.table["change"].abs() > 0).any()  # the runs do differ, within their CIs


def test_altered_method_is_flagged_with_the_right_direction(seed0):
    # gradient's relevance mass (higher is better) up, its blank share (lower is better) up
    shift = {("gradient", "relevance_mass"): 0.4, ("gradient", "blank_share"): 0.4}
    altered = run(1, shift=shift, run_id="altered")
    c = compare_tables(seed0, altered)
    reg = c.regressions
    assert set(reg["method"]) == {"gradient"}
    assert set(reg["metric"]) == {"relevance_mass", "blank_share"}
    assert set(reg.loc[reg["metric"] == "relevance_mass", "label"]) == {"better"}
    assert set(reg.loc[reg["metric"] == "blank_share", "label"]) == {"worse"}
    assert c.n_worse == (reg["label"] == "worse").sum() > 0
    # and the other way round
    back = compare_tables(altered, seed0).regressions
    assert set(back.loc[back["metric"] == "relevance_mass", "label"]) == {"worse"}
    assert set(back.loc[back["metric"] == "blank_share", "label"]) == {"better"}


def test_label_rules():
    assert label("higher", (0.5, 0.4, 0.6), (0.8, 0.7, 0.9)) == "better"
    assert label("higher", (0.5, 0.4, 0.6), (0.2, 0.1, 0.3)) == "worse"
    assert label("lower", (0.5, 0.4, 0.6), (0.2, 0.1, 0.3)) == "better"
    assert label("lower", (0.5, 0.4, 0.6), (0.8, 0.7, 0.9)) == "worse"
    assert label("none", (0.5, 0.4, 0.6), (0.8, 0.7, 0.9)) == "changed"
    assert label("higher", (0.5, 0.4, 0.6), (0.65, 0.55, 0.75)) == ""  # CIs overlap
    assert label("higher", (0.5, 0.4, 0.6), (math.nan, math.nan, math.nan)) == ""


def test_params_seed_ignored_other_params_kept():
    a = normalise_params(json.dumps({"seed": 1, "samples": 20}))
    b = normalise_params(json.dumps({"samples": 20, "seed": 7}))
    assert a == b == '{"samples": 20}'
    assert normalise_params('{"samples": 10}') != a


def _write_folder(root, data: RunData):
    folder = root / data.run_id
    folder.mkdir()
    data.table.to_csv(folder / "results.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps(data.manifest))
    return folder


def test_cli_compare_folders_and_fail_on_regression(tmp_path, seed0, capsys):
    a = _write_folder(tmp_path, seed0)
    worse = _write_folder(tmp_path, run(1, {("gradient", "relevance_mass"): -0.4}, "worse"))
    better = _write_folder(tmp_path, run(1, {("gradient", "relevance_mass"): 0.4}, "better"))
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(worse), "--out", str(out), "--fail-on-regression"]) == 1
    reg = pd.read_csv(out / "regressions.csv")
    assert set(reg["label"]) == {"worse"} and set(reg["method"]) == {"gradient"}
    page = (out / "compare.html").read_text()
    assert "worse" in page and "relevance_mass" in page and "http" not in page
    assert main(["compare", str(a), str(better), "--out", str(out), "--fail-on-regression"]) == 0
    assert set(pd.read_csv(out / "regressions.csv")["label"]) == {"better"}


def test_cli_compare_latest_per_env_from_history(tmp_path, seed0, capsys):
    db = tmp_path / "history.sqlite"
    old = run(0, run_id="tf213-old")
    old.manifest["finished_utc"] = "2026-01-01T00:00:00+00:00"
    history.append_run(db, old.table, old.manifest, env="tf213")
    base = run(2, run_id="tf215-run")
    base.manifest["finished_utc"] = "2026-01-02T00:00:00+00:00"
    history.append_run(db, base.table, base.manifest, env="tf215")
    new = run(3, {("gradcam", "*"): -0.5}, "tf213-new")  # the latest tf213 run: gradcam changed
    new.manifest["finished_utc"] = "2026-01-03T00:00:00+00:00"
    history.append_run(db, new.table, new.manifest, env="tf213")
    history.record_failure(db, stage="benchmark", benchmark="roar", error="boom", env="tf213")
    out = tmp_path / "matrix"
    rc = main(
        ["compare", "--latest-per-env", "--baseline-env", "tf215", "--history", str(db)]
        + ["--out", str(out)]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "tf215 -> tf213" in printed
    reg = pd.read_csv(out / "regressions.csv")
    assert set(reg["run_a"]) == {"tf215-run"} and set(reg["run_b"]) == {"tf213-new"}
    assert set(reg["method"]) == {"gradcam"}
    page = (out / "compare.html").read_text()
    assert "Environments" in page and "tf213-new" in page
    assert main(["compare", "missing-a", "missing-b", "--history", str(db)]) == 2


def test_fdr_keeps_a_real_change_and_every_score_gets_p_and_q(seed0):
    altered = run(1, shift={("gradient", "relevance_mass"): 0.4}, run_id="altered")
    plain = compare_tables(seed0, altered)
    held = compare_tables(seed0, altered, fdr=0.05)
    for c in (plain, held):
        assert c.table["p_value"].between(0, 1).all() and c.table["q_value"].between(0, 1).all()
        assert (c.table["q_value"] >= c.table["p_value"] - 1e-12).all()
    # the deliberate change survives the correction; FDR can only remove flags
    assert set(held.regressions["metric"]) == {"relevance_mass"}
    assert set(held.regressions["label"]) == {"better"}
    assert set(map(tuple, held.regressions[["model", "method", "metric"]].values)) <= set(
        map(tuple, plain.regressions[["model", "method", "metric"]].values)
    )
    with pytest.raises(ValueError, match="fdr"):
        compare_tables(seed0, altered, fdr=1.5)


def test_fdr_removes_a_flag_that_is_chance_among_many(seed0):
    # one score whose CIs barely miss each other (p ~ 0.004), among hundreds that did not move:
    # flagged by the CI rule, not at FDR 5 %
    b = RunData("b", seed0.table.copy(), dict(seed0.manifest))
    i = b.table.index[0]
    lo, hi = b.table.loc[i, "ci_low"], b.table.loc[i, "ci_high"]
    width = hi - lo
    b.table.loc[i, ["value", "ci_low", "ci_high"]] = [
        b.table.loc[i, "value"] + 1.02 * width,
        lo + 1.02 * width,
        hi + 1.02 * width,
    ]
    assert len(compare_tables(seed0, b).regressions) == 1
    assert compare_tables(seed0, b, fdr=0.05).regressions.empty


def test_cli_fdr_option_validates_and_notes_itself(tmp_path, seed0, capsys):
    a = _write_folder(tmp_path, seed0)
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(a), "--out", str(out), "--fdr", "0.05"]) == 0
    assert "q <= 0.05" in capsys.readouterr().out
    assert "Benjamini-Hochberg" in (out / "compare.html").read_text()
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(a), str(a), "--fdr", "2"])
    assert exc.value.code == 2
    assert "--fdr must be a number in (0, 1)" in capsys.readouterr().err


def _one_row_run(run_id: str, values: list[float], *, profile: str = "smoke") -> RunData:
    from binsal.core.schema import rows_frame, score_row

    rows = [
        score_row(
            values,
            benchmark="b",
            model="m",
            family="FP",
            method="g",
            metric="x",
            direction="higher",
            seed=0,
        ),
        score_row(
            [0.0] * 8,
            benchmark="b",
            model="m",
            family="FP",
            method="g",
            metric="blank",
            direction="lower",
            seed=0,
        ),
    ]
    table = rows_frame(rows)
    table.insert(0, "run_id", run_id)
    return RunData(run_id, table, {"run_id": run_id, "profile": {"name": profile}})


def test_a_one_image_score_is_never_flagged_even_without_fdr():
    a, b = _one_row_run("a", [0.1]), _one_row_run("b", [0.9])
    c = compare_tables(a, b)
    one = c.table[c.table["metric"] == "x"].iloc[0]
    assert one["n_a"] == 1 and not one["testable"] and math.isnan(one["p_value"])
    assert c.regressions.empty
    assert compare_tables(a, b, fdr=0.05).regressions.empty


def test_proportions_get_wilson_and_old_collapsed_intervals_are_not_tested():
    a, b = _one_row_run("a", [0.1]), _one_row_run("b", [0.9])
    blank = a.table[a.table["metric"] == "blank"].iloc[0]
    assert blank["ci_method"] == "wilson" and blank["ci_high"] > 0.2  # 0/8: 0.32
    old = a.table.drop(columns=["ci_method", "n_groups"]).copy()
    old.loc[old["metric"] == "blank", ["ci_low", "ci_high"]] = 0.0  # a collapsed bootstrap
    newer = b.table.copy()
    newer.loc[newer["metric"] == "blank", ["value", "ci_low", "ci_high"]] = [0.5, 0.2, 0.8]
    c = compare_tables(RunData("a", old, a.manifest), RunData("b", newer, b.manifest))
    row = c.table[c.table["metric"] == "blank"].iloc[0]
    assert not row["testable"] and row["label"] == ""


def test_fail_on_regression_refuses_runs_of_other_profiles_unless_forced(tmp_path, capsys):
    dirs = []
    for run_id, values, prof in (("a", [0.1] * 20, "smoke"), ("b", [0.9] * 20, "default")):
        run = _one_row_run(run_id, [v + 0.01 * i for i, v in enumerate(values)], profile=prof)
        d = tmp_path / run_id
        d.mkdir()
        run.table.to_csv(d / "results.csv", index=False)
        (d / "manifest.json").write_text(json.dumps(run.manifest))
        dirs.append(str(d))
    args = ["compare", *dirs, "--out", str(tmp_path / "out"), "--history", str(tmp_path / "h")]
    assert main([*args, "--fail-on-regression"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(
        "binsal: error: --fail-on-regression refused: the runs use "
        "different profiles (smoke vs default)"
    )
    assert main([*args, "--fail-on-regression", "--force"]) == 0  # "x" got better, not worse
    assert "different profiles" in capsys.readouterr().err


def test_a_run_id_from_a_manifest_never_escapes_the_results_folder(tmp_path, capsys):
    """run_id is read from the compared folders' manifest.json: untrusted input."""
    dirs = []
    for i, run_id in enumerate(("../../escaped", "/tmp/absolute")):
        run = _one_row_run(f"r{i}", [0.1 + 0.01 * k for k in range(12)])
        d = tmp_path / f"in{i}"
        d.mkdir()
        run.table.to_csv(d / "results.csv", index=False)
        (d / "manifest.json").write_text(json.dumps({"run_id": run_id}))
        dirs.append(str(d))
    results = tmp_path / "deep" / "results"
    assert (
        main(["compare", *dirs, "--results-dir", str(results), "--history", str(tmp_path / "h.db")])
        == 0
    )
    written = [p for p in tmp_path.rglob("compare.html")]
    assert len(written) == 1 and results / "compare" in written[0].parents
    assert not (tmp_path / "escaped").exists()
