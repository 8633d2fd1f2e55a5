"""larq-zoo is the optional extra `binsal[paper]`: without it, only the paper profile's larq-zoo
networks are refused, in one line, before any work."""

from __future__ import annotations

import sys

import pytest

from binsal.cli import main
from binsal.core.errors import BinsalError
from binsal.core.profile import load_profile
from binsal.models import pretrained

HINT = "pip install 'binsal[paper]'"


@pytest.fixture
def no_larq_zoo(monkeypatch):
    """larq-zoo not installed: ``import larq_zoo`` fails and ``find_spec`` finds nothing."""
    for name in [m for m in sys.modules if m == "larq_zoo" or m.startswith("larq_zoo.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "larq_zoo", None)


def test_larq_zoo_models_are_the_five_bnns():
    profile = load_profile("paper")
    assert pretrained.larq_zoo_models(profile.models) == [
        "quicknet",
        "binaryalexnet",
        "binaryresnete18",
        "meliusnet22",
        "realtobinarynet",
    ]
    assert pretrained.larq_zoo_models(["vgg16", "vgg_fp", "vgg_bnn"]) == []


def test_preflight_names_the_extra_when_larq_zoo_is_missing(no_larq_zoo):
    with pytest.raises(BinsalError, match=r"quicknet.*need larq-zoo") as info:
        pretrained.preflight(load_profile("paper"))
    assert HINT in str(info.value)
    assert "\n" not in str(info.value)
    pretrained.check_larq_zoo(["vgg16", "resnet50", "vgg_fp"])  # keras.applications: fine


def test_paper_profile_stops_before_any_work_without_larq_zoo(no_larq_zoo, tmp_path, capsys):
    code = main(["run", "--profile", "paper", "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("binsal: error: ") and HINT in err
    assert len(err.splitlines()) == 1
    assert not list((tmp_path / "results").glob("*/results.csv"))


def test_list_works_without_larq_zoo(no_larq_zoo, capsys):
    assert main(["list"]) == 0
    assert "quicknet" in capsys.readouterr().out


@pytest.mark.slow
def test_building_a_larq_zoo_model_without_it_is_one_line(no_larq_zoo):
    from binsal.models.paper import build_library_model

    with pytest.raises(BinsalError, match="the model quicknet needs larq-zoo") as info:
        build_library_model("quicknet")
    assert HINT in str(info.value)
