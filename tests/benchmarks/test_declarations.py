"""What every benchmark declares: registration beside the class, report order, one direction per
score (the rows' directions come from it), plots of declared scores, JSON-able declarations,
typed options whose defaults pass their own checks."""

from __future__ import annotations

import dataclasses
import json

import pytest

from binsal.benchmarks import BENCHMARKS, Benchmark, BenchmarkOptions
from binsal.core.options import build
from binsal.core.schema import DIRECTIONS


def test_registered_in_report_order():
    names = BENCHMARKS.names()
    assert names[0] == "rank_correlation" and len(names) == 15
    assert names[-1] == "claim_robustness"  # re-runs the claims' benchmarks: reported last
    orders = [BENCHMARKS[n].order for n in names]
    assert orders == sorted(orders) and list(BENCHMARKS) == names
    assert "randomization" not in names


def test_registering_twice_fails():
    with pytest.raises(ValueError, match="registered twice"):
        BENCHMARKS.add("roar")(type("Again", (Benchmark,), {"name": "roar"}))


@pytest.mark.parametrize("name", BENCHMARKS.names())
def test_declaration(name):
    cls = BENCHMARKS[name]
    assert cls.name == name and issubclass(cls.Options, BenchmarkOptions)
    decl = json.loads(json.dumps(cls.declaration()))
    assert decl["name"] == name and decl["title"] and decl["order"] == cls.order
    assert decl["scores"] and all(s["direction"] in DIRECTIONS for s in decl["scores"].values())
    assert all(s["description"] for s in decl["scores"].values())
    assert {p["metric"] for p in decl["plots"]} <= set(decl["scores"])
    with pytest.raises(ValueError, match="no score 'nope' declared"):
        cls.direction("nope")
    # the defaults are valid options: they survive their own checks unchanged
    defaults = cls.Options()
    assert build(cls.Options, dataclasses.asdict(defaults)) == defaults
