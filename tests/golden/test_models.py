"""The repository checks its own designs: every model registered in models/ meets the course
brief held in setup.cfg's [rfcheck] section plus its own registered rules (through the pytest
plugin's fixture), runs forward, and has the RF derived by hand in its module docstring."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rfcheck.loader import load_entries
from rfcheck.registry import register_model

FOLDER = Path(__file__).resolve().parents[2] / "models"
# model RF at the input of the global pool, derived by hand in each file's docstring
HAND_RF = {"net": 67, "net_v2": 67, "net_v3": 67, "net_fashion": 53, "net_maxpool": 56, "net_tiny": 53, "net_transposed": 73}


@pytest.fixture(scope="module")
def designs():
    return {e.name: (label, model, e) for label, model, e in load_entries(str(FOLDER), meta=False)}


def test_registry_lists_every_design(designs):
    assert set(designs) == set(HAND_RF)


@pytest.mark.parametrize("name", sorted(HAND_RF))
def test_design_meets_the_brief_and_its_own_rules(designs, rfcheck, name):
    label, model, entry = designs[name]
    size = entry.input_size or (3, 32, 32)
    report = rfcheck(model, input_size=size, **entry.rules)  # config file (the brief) < own rules
    assert report.exact, f"{label}: {report.warnings}"
    assert report.rf.size == (HAND_RF[name],) * 2
    out = model.eval()(torch.randn(2, *size))
    assert out.shape == (2, 10) and torch.allclose(out.exp().sum(1), torch.ones(2), atol=1e-4)


def test_transposed_design_teaches_its_warning(designs):
    from rfcheck import analyze
    _, model, _ = designs["net_transposed"]
    r = analyze(model, (3, 32, 32))
    assert r.counts["transposed"] == 1 and r.layer("up.0").phase_dependent
    assert any(w.code == "RF201" and w.layer == "add" and "misaligned merge at add" in w.message
               and "up.1" in w.message for w in r.warnings)


def test_cli_checks_the_whole_folder(capsys, monkeypatch):
    from rfcheck.cli import main
    monkeypatch.chdir(FOLDER.parent)
    assert main(["models/", "--format", "json", "--no-advice"]) == 0
    import json
    docs = json.loads(capsys.readouterr().out)
    assert [d["model"].split(":")[1] for d in docs] == ["Net", "NetFashion", "NetMaxPool", "NetTiny", "NetTransposed",
                                                        "NetV2", "NetV3"]
    own = {d["model"].split(":")[1]: {c["rule"]: c for c in d["checks"]} for d in docs}
    assert own["NetTiny"]["min_rf"]["limit"] == 45 and own["Net"]["min_rf"]["limit"] == 53
    assert [d["input_size"] for d in docs if d["model"].endswith("NetFashion")] == [[1, 28, 28]]
    assert own["NetTransposed"]["min_transposed"]["passed"]
    # the command line still wins over a design's own rules
    assert main(["models/", "--format", "json", "--no-advice", "--min-rf", "60"]) == 1
    docs = json.loads(capsys.readouterr().out)
    assert {d["model"].split(":")[1]: d["passed"] for d in docs} == {
        "Net": True, "NetFashion": False, "NetMaxPool": False, "NetTiny": False, "NetTransposed": True,
        "NetV2": True, "NetV3": True}


def test_register_model_validates_rules():
    with pytest.raises(ValueError, match="min_rff"):
        register_model(name="bad", rules={"min_rff": 3})(torch.nn.Identity)
