"""The repository checks its own designs: every model in models/ meets the course brief held
in setup.cfg's [rfcheck] section (through the pytest plugin's fixture)."""
from __future__ import annotations

from pathlib import Path

import pytest

from rfcheck.loader import load

MODELS = sorted((Path(__file__).resolve().parents[1] / "models").glob("*.py"))


@pytest.mark.parametrize("path", [p for p in MODELS if p.name != "__init__.py"], ids=lambda p: p.name)
def test_design_meets_the_brief(path, rfcheck):
    models = load(str(path), all_models=True)
    assert models, f"{path} defines no model"
    for label, model in models:
        report = rfcheck(model)
        assert report.exact, f"{label}: {report.warnings}"


def test_config_holds_the_brief(rfcheck):
    # the rules the fixture applies come from setup.cfg: the brief's numbers
    assert rfcheck.rules["min_rf"] == 53 and rfcheck.rules["max_params"] == 99_999
    assert rfcheck.rules["require_gap"] and rfcheck.rules["min_dws"] == 2 and rfcheck.rules["min_dilated"] == 1
