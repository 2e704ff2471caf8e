"""Advice is re-checked against every rule given: "(passes)" means the change makes its rule
pass without breaking a rule that passed before (else the text names the rule it breaks); a
suggestion that changes nothing is never made; a model that already has its global average
pool is not told to add one.  Each claim is checked by applying the suggestion to a copy and
analysing it independently."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

import rfcheck
from rfcheck import advice
from rfcheck.advice import AdviceContext
from rfcheck.loader import load
from rfcheck.suggestion import Change, is_noop

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore(restore_import_state):
    """See tests/conftest.py."""


def plain_stack() -> nn.Module:
    """Four 3x3 convs, stride 1, 2, 1, 1, on 32x32, then a GAP.  RF: 3, 5 (jump 2), 9, 13."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def test_hand_rf_of_the_stack():
    assert rfcheck.analyze(plain_stack(), (3, 32, 32)).rf.size == (13, 13)


def test_a_fix_that_breaks_a_passing_rule_is_not_marked_passes():
    model = plain_stack()
    c = rfcheck.check(model, (3, 32, 32), min_rf=25, max_rf=20)
    assert not c.result("min_rf").passed and c.result("max_rf").passed
    sugs = [s for s in c.suggestions["min_rf"] if s.changes]
    assert sugs, c.advice("min_rf")
    for s in sugs:
        assert "(passes)" not in s.text and not s.passes
        assert "breaks max_rf" in s.text, s.text
        # independently: the changed copy breaks max_rf, as the text says
        rep = rfcheck.analyze(s.apply(model), (3, 32, 32))
        assert tuple(rep.rf.size) == tuple(s.predicted["rf"])
        assert max(rep.rf.size) > 20
    made = [s for s in sugs if "makes min_rf pass but breaks max_rf" in s.text]
    assert made and all(min(s.predicted["rf"]) >= 25 for s in made)


def test_the_same_fix_passes_when_nothing_else_breaks():
    model = plain_stack()
    c = rfcheck.check(model, (3, 32, 32), min_rf=25)
    ok = [s for s in c.suggestions["min_rf"] if s.passes]
    assert ok and all(s.text.endswith("(passes)") for s in ok)
    for s in ok:
        assert min(rfcheck.analyze(s.apply(model), (3, 32, 32)).rf.size) >= 25


def test_a_rule_that_failed_before_is_not_counted_as_broken():
    # max_params fails already (634 + ... > 10): a min_rf fix that keeps it failing still passes
    c = rfcheck.check(plain_stack(), (3, 32, 32), min_rf=25, max_params=10)
    assert not c.result("max_params").passed
    assert any(s.passes and s.text.endswith("(passes)") for s in c.suggestions["min_rf"])


def test_flagship_min_rf_100_max_rf_50(monkeypatch):
    # a budget no host is slow enough to spend, so what is checked is the advice, not the clock
    monkeypatch.setattr(advice, "BUDGET_S", 120.0)
    (_, net), = load(str(ROOT / "models" / "net.py"))
    c = rfcheck.check(net, (3, 32, 32), min_rf=100, max_rf=70)
    assert c.result("max_rf").passed  # RF 67 <= 70
    texts = c.advice("min_rf")
    assert texts and not any("(passes)" in t for t in texts), texts
    assert any("breaks max_rf" in t for t in texts)
    assert not any(s.passes for s in c.suggestions["min_rf"])
    assert not any("budget" in t for t in texts)  # every candidate was tried


def test_a_change_that_changes_nothing_is_never_suggested():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.MaxPool2d(1),
                          nn.Flatten(), nn.Linear(8, 10))
    assert is_noop(model[1], Change("1", "gap"))
    assert not is_noop(model[2], Change("2", "gap"))
    assert not is_noop(model[0], Change("0", "dilate", 2))
    assert is_noop(nn.Conv2d(3, 3, 3, dilation=2, padding=2), Change("x", "dilate", 2))
    report = rfcheck.analyze(model, (3, 8, 8))
    ctx = AdviceContext(model, report, {"require_gap": True})
    assert ctx.search("require_gap", [[Change("1", "gap")]], lambda rep: rep.counts["gap"], lambda rep: "") == []


def test_attention_style_net_is_not_told_to_swap_a_gap_for_a_gap():
    class Att(nn.Module):
        """channel attention (AdaptiveAvgPool2d(1) -> 1x1 convs -> sigmoid gate), then a global
        MAX pool before the classifier: the only fix is the max pool."""
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
            self.squeeze = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Sequential(nn.Conv2d(16, 4, 1), nn.ReLU(), nn.Conv2d(4, 16, 1), nn.Sigmoid())
            self.pool = nn.AdaptiveMaxPool2d(1)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            x = self.c1(x)
            x = x * self.fc(self.squeeze(x))
            return self.head(self.pool(x).flatten(1))

    c = rfcheck.check(Att(), (3, 32, 32), require_gap=True)
    texts = c.advice("require_gap")
    assert texts and not any("replace squeeze" in t for t in texts), texts
    for s in c.suggestions["require_gap"]:
        assert all(c.layer != "squeeze" for c in s.changes)
    assert any("replace pool (AdaptiveMaxPool2d) with AdaptiveAvgPool2d(1)" in t and "(passes)" in t for t in texts)


@pytest.mark.parametrize("builder", ["resnet50", "densenet121"])
def test_a_model_with_its_gap_is_not_told_to_add_one(torchvision, builder):
    with torch.device("meta"):
        model = getattr(torchvision.models, builder)()
    c = rfcheck.check(model, (3, 224, 224), max_params=1_000_000)
    assert c.report.counts["gap"] == 1
    assert not c.result("max_params").passed
    assert not any("global average pooling before it" in t for t in c.advice("max_params")), c.advice("max_params")


def test_a_model_without_a_gap_is_told_to_add_one():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    c = rfcheck.check(model, (3, 16, 16), max_params=10_000)
    assert any("global average pooling before it shrinks its input" in t for t in c.advice("max_params"))
