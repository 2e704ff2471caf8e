"""explain(): the course's hand derivation with rfcheck's exact numbers filled in.  The golden
lines are derived by hand in the comments (the recurrences of ../shared/BRIEF.md), not copied
from rfcheck's output; whitespace between the columns is not part of the golden text."""
from __future__ import annotations

import importlib
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch.nn as nn
import torch.nn.functional as F

import rfcheck
from rfcheck.handcalc import Explanation, HandCalc

ROOT = Path(__file__).resolve().parents[2]


def rows(explanation) -> list[str]:
    return [" ".join(line.split()) for line in str(explanation).splitlines()]


class Dilated(nn.Module):
    """input 3x16x16, per axis (square):
    c1 3x3 p1:          r = 1 + (3-1)*1 = 3,  j = 1*1 = 1, n = (16 + 2*1 - 3)/1 + 1 = 16
    c2 3x3 s2 p1:       r = 3 + (3-1)*1 = 5,  j = 1*2 = 2, n = floor((16 + 2*1 - 3)/2) + 1 = floor(7.5) + 1 = 8
    relu: pointwise, left out
    c3 3x3 d2 p2:       k_eff = 2*(3-1)+1 = 5, r = 5 + (5-1)*2 = 13, j = 2*1 = 2, n = (8 + 2*2 - 5)/1 + 1 = 8
    add (x + c3(x)):    r = max(5, 13) = 13 (the shortcut has 5), j = 2
    c4 1x1: changes nothing, left out
    gap over 8x8: the model RF is 13; with its window 13 + (8-1)*2 = 27 (the brief's mistake)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.c4 = nn.Conv2d(4, 4, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        x = F.relu(self.c2(self.c1(x)))
        x = x + self.c3(x)
        return self.fc(self.gap(self.c4(x)).flatten(1))


DILATED = """\
input r = 1 j = 1 n = 16
c1 3x3 conv r = 1 + (3-1)*1 = 3 j = 1*1 = 1 n = (16 + 2*1 - 3)/1 + 1 = 16
c2 3x3 conv s2 r = 3 + (3-1)*1 = 5 j = 1*2 = 2 n = floor((16 + 2*1 - 3)/2) + 1 = 8
c3 3x3 conv d2 (k_eff 5) r = 5 + (5-1)*2 = 13 j = 2*1 = 2 n = (8 + 2*2 - 5)/1 + 1 = 8
add add of 2 paths r = max(5, 13) = 13 (RF max over paths) j = 2
gap AdaptiveAvgPool2d global avg pool of the 8x8 map: the model RF is taken at its input, 13
model RF: 13 (jump 2) at the input of the global pool gap
counting the global pool's window as well gives 27 (13 + (8-1)*2 = 27): that is the brief's common mistake; \
the RF that matters is 13"""


def test_explain_golden_dilated_strided_residual():
    got = rows(rfcheck.explain(Dilated(), (3, 16, 16)))
    assert got[0].startswith("explain: Dilated, input 3x16x16 (per axis;")
    assert got[2:] == DILATED.splitlines()


class Rect(nn.Module):
    """input 1x12x10: H and W differ, so each equation is printed per axis.
    p1 conv (3, 5) p(1, 2): r_H = 1 + (3-1)*1 = 3, r_W = 1 + (5-1)*1 = 5; j = 1*1 = 1;
                            n_H = (12 + 2*1 - 3)/1 + 1 = 12, n_W = (10 + 2*2 - 5)/1 + 1 = 10
    mp max pool 2 (s2):     r_H = 3 + (2-1)*1 = 4, r_W = 5 + (2-1)*1 = 6; j = 1*2 = 2;
                            n_H = (12 + 2*0 - 2)/2 + 1 = 6, n_W = (10 + 2*0 - 2)/2 + 1 = 5
    c 3x3 d3 p3 (k_eff 7):  r_H = 4 + (7-1)*2 = 16, r_W = 6 + (7-1)*2 = 18; j = 2*1 = 2;
                            n_H = (6 + 2*3 - 7)/1 + 1 = 6, n_W = (5 + 2*3 - 7)/1 + 1 = 5
    no global pool: the model RF is c's, 16x18."""

    def __init__(self):
        super().__init__()
        self.p1 = nn.Conv2d(1, 2, (3, 5), padding=(1, 2))
        self.mp = nn.MaxPool2d(2)
        self.c = nn.Conv2d(2, 2, 3, padding=3, dilation=3)

    def forward(self, x):
        return self.c(self.mp(self.p1(x)))


RECT = """\
input r = 1 j = 1 n_H = 12, n_W = 10
p1 3x5 conv r_H = 1 + (3-1)*1 = 3, r_W = 1 + (5-1)*1 = 5 j = 1*1 = 1 \
n_H = (12 + 2*1 - 3)/1 + 1 = 12, n_W = (10 + 2*2 - 5)/1 + 1 = 10
mp 2x2 max pool s2 r_H = 3 + (2-1)*1 = 4, r_W = 5 + (2-1)*1 = 6 j = 1*2 = 2 \
n_H = (12 + 2*0 - 2)/2 + 1 = 6, n_W = (10 + 2*0 - 2)/2 + 1 = 5
c 3x3 conv d3 (k_eff 7) r_H = 4 + (7-1)*2 = 16, r_W = 6 + (7-1)*2 = 18 j = 2*1 = 2 \
n_H = (6 + 2*3 - 7)/1 + 1 = 6, n_W = (5 + 2*3 - 7)/1 + 1 = 5
model RF: 16x18 (jump 2) at c"""


def test_explain_golden_per_axis_when_h_and_w_differ():
    got = rows(rfcheck.explain(Rect(), (1, 12, 10)))
    assert got[2:] == RECT.splitlines()


def test_design_check_explain_is_the_same_and_rfcheck_explain_stays_a_function():
    result = rfcheck.check(Dilated(), (3, 16, 16))
    assert rows(result.explain())[2:] == DILATED.splitlines()
    assert callable(rfcheck.explain)  # the module is rfcheck.handcalc: no submodule shadows the function


class Transposed(nn.Module):
    """input 3x32x32.  c1 3x3 s2 p1: r = 3, j = 2, n = 16.  t: ConvTranspose2d k4 s2 p1:
    n = (16 - 1)*2 - 2*1 + 4 = 32; output o reads inputs (o+1-t)/2 for the taps t of its
    parity: two adjacent inputs whatever the phase, so r = 3 + (2-1)*2 = 5, and the jump is
    halved, 2 -> 1 (a mean: centres -1, 1, 1, 3, 3, ...).  The textbook recurrence cannot say
    that: the line is in words."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.t = nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.gap(self.c2(self.t(self.c1(x))))


def test_a_strided_transposed_conv_is_explained_in_words():
    got = rows(rfcheck.explain(Transposed(), (3, 32, 32)))
    line = next(l for l in got if l.startswith("t "))
    assert "a stride-2 transposed conv halves the jump: 2 -> 1" in line
    assert "the RF grows by 2: 3 -> 5" in line
    assert "n 16 -> 32" in line
    assert "r =" not in line  # no equation the textbook cannot back
    assert any("the textbook recurrence alone does not give this RF (from t" in l for l in got)


class Upsampled(nn.Module):
    """conv 3x3 s2 p1 (r 3, j 2, n 8 on 16), nearest upsampling x2 (j 2 -> 1: units copy)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.c2 = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.c2(self.up(self.c1(x)))


def test_upsampling_and_a_non_uniform_jump_are_words_not_wrong_equations():
    report = rfcheck.analyze(Upsampled(), (1, 16, 16))
    got = rows(Explanation(report))
    up = next(l for l in got if l.startswith("up "))
    assert "upsampling x2 divides the jump: 2 -> 1" in up
    c2 = next(l for l in got if l.startswith("c2 "))
    layer = report.layer("c2")
    if "r =" in c2:  # an equation is printed only when it gives rfcheck's exact value
        assert f"= {layer.rf[0]} " in c2
    else:
        assert f"RF 3 -> {layer.rf[0]}" in c2


def test_pointwise_and_1x1_layers_are_left_out_and_a_padded_1x1_is_shown():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 2, 3, padding=1)
            self.bn = nn.BatchNorm2d(2)
            self.pw = nn.Conv2d(2, 2, 1)
            self.grow = nn.Conv2d(2, 2, 1, padding=1)   # n = (8 + 2*1 - 1)/1 + 1 = 10

        def forward(self, x):
            return self.grow(self.pw(F.relu(self.bn(self.a(x)))))

    got = rows(rfcheck.explain(M(), (1, 8, 8)))
    names = [l.split()[0] for l in got[2:] if not l.startswith("model RF")]
    assert names == ["input", "a", "grow"]
    grow = next(l for l in got if l.startswith("grow "))
    assert "n = (8 + 2*1 - 1)/1 + 1 = 10" in grow and "RF205" in grow


BUNDLED = [("net", "Net", (3, 32, 32)), ("net_maxpool", "NetMaxPool", (3, 32, 32)),
           ("net_tiny", "NetTiny", (3, 32, 32)), ("net_fashion", "NetFashion", (1, 28, 28))]


@pytest.fixture
def models_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "models"))
    yield
    for name in [m for m in sys.modules if m.startswith("net")]:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("module, cls, size", BUNDLED)
def test_the_hand_calculator_reproduces_the_bundled_designs(models_on_path, module, cls, size):
    """Plain chains and residual nets (RF max over paths): the mistake-free run gives rfcheck's
    model RF and every layer's RF and jump."""
    report = rfcheck.analyze(getattr(importlib.import_module(module), cls)(), size)
    calc = HandCalc(report)
    ok, where, _ = calc.follows(calc.point)
    assert ok, where
    assert calc.model_value(calc.baseline()) == tuple(Fraction(v) for v in report.rf.size)
    text = str(Explanation(report))
    assert "the textbook recurrence alone does not give" not in text
    assert f"model RF: {report.rf.size[0]} " in text


def test_net_explained_has_the_issue_example_and_the_gap_mistake(models_on_path):
    # Net's C3 dilated depthwise conv: 27 + (5-1)*4 = 43 on the 8x8 map (jump 4 after C2's stride)
    got = rows(rfcheck.explain(importlib.import_module("net").Net(), (3, 32, 32)))
    assert "c3.0.body.0 3x3 conv d2 (k_eff 5) r = 27 + (5-1)*4 = 43 j = 4*1 = 4 n = (8 + 2*2 - 5)/1 + 1 = 8" in got
    assert got[-1] == ("counting the global pool's window as well gives 95 (67 + (8-1)*4 = 95): that is the brief's "
                       "common mistake; the RF that matters is 67")


def test_net_transposed_says_where_the_textbook_stops(models_on_path):
    report = rfcheck.analyze(importlib.import_module("net_transposed").NetTransposed(), (3, 32, 32))
    calc = HandCalc(report)
    ok, where, why = calc.follows(calc.point)
    assert not ok and where == "up.0" and "transposed" in why
    got = rows(Explanation(report))
    up = next(l for l in got if l.startswith("up.0 "))
    # kernel 2, stride 2: each output reads exactly one input, so the RF stays 29 and the jump halves 4 -> 2
    assert "halves the jump: 4 -> 2" in up and "the RF grows by 0: 29 -> 29" in up and "fewer" not in up
    assert "RF201" in next(l for l in got if l.startswith("add "))


def test_explanation_shows_itself_in_a_notebook():
    e = rfcheck.explain(Dilated(), (3, 16, 16))
    assert repr(e) == str(e) and e._repr_markdown_().startswith("```\nexplain: Dilated")


def test_1d_ceil_mode_and_a_size_dependent_map_in_words():
    """input 2x32.  conv k5 p2: r = 1 + (5-1)*1 = 5, n = (32 + 2*2 - 5)/1 + 1 = 32.  max pool k3 s2
    ceil_mode: r = 5 + (3-1)*1 = 7, j = 2, n = ceil((32 - 3)/2) + 1 = 16, not the floor formula's
    floor(29/2) + 1 = 15.  AdaptiveAvgPool1d(5) on 16: a size-dependent window, in words."""
    m = nn.Sequential(nn.Conv1d(2, 4, 5, padding=2), nn.MaxPool1d(3, stride=2, ceil_mode=True),
                      nn.AdaptiveAvgPool1d(5))
    got = rows(rfcheck.explain(m, (2, 32)))
    assert "0 5 conv r = 1 + (5-1)*1 = 5 j = 1*1 = 1 n = (32 + 2*2 - 5)/1 + 1 = 32" in got
    assert "1 3 max pool s2 r = 5 + (3-1)*1 = 7 j = 1*2 = 2 n = 16 (not the formula's 15: ceil_mode)" in got
    line = next(l for l in got if l.startswith("2 "))
    assert "the recurrence does not apply (a size-dependent window (adaptive pooling))" in line
    assert "RF 7 -> " in line and "n 16 -> 5" in line


def test_3d_gap_mistake_line_per_axis():
    """input 1x8x16x16.  conv (1,3,3) p(0,1,1): r 1x3x3, n 8x16x16; conv 3 s2: r = 1 + 2 = 3 (D),
    3 + 2 = 5 (H, W), j 2, n floor(5/2) + 1 = 3 and floor(13/2) + 1 = 7.  The GAP window:
    D 3 + (3-1)*2 = 7, H and W 5 + (7-1)*2 = 17."""
    m = nn.Sequential(nn.Conv3d(1, 2, (1, 3, 3), padding=(0, 1, 1)), nn.Conv3d(2, 2, 3, stride=2),
                      nn.AdaptiveAvgPool3d(1))
    got = rows(rfcheck.explain(m, (1, 8, 16, 16)))
    assert got[-1] == ("counting the global pool's window as well gives 7x17x17 (D: 3 + (3-1)*2 = 7, "
                       "H: 5 + (7-1)*2 = 17, W: 5 + (7-1)*2 = 17): that is the brief's common mistake; "
                       "the RF that matters is 3x5x5")
