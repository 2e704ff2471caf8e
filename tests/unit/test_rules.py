"""The design rules of rfcheck/rules/, one small model per rule where it holds and one where
it fails, including the hand-calculation pitfalls of the course brief (../shared/BRIEF.md).

Every expected number is derived by hand in the comment next to it, never copied from rfcheck's
output.  Per axis, with the effective kernel k' = d*(k-1) + 1:
    r_out = r_in + (k'-1)*j_in,   j_out = j_in*s,   starting from r = 1, j = 1 at the input.
Params of a conv: out*in/groups*k*k (+ out for the bias).  MACs per input sample of a conv:
output elements x in/groups x kernel volume; of a Linear: in*out; pools, BN, ReLU: 0.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rfcheck import Report, analyze
from rfcheck.rules import RULES as TABLE
from rfcheck.rules import parse_count, parse_rules, run_checks
from rfcheck.testing import assert_design
from tests.models import flat_head, grouped_then_pool, head

RULES = ("min_rf", "max_rf", "max_params", "max_macs", "require_gap", "min_dws", "min_dilated", "min_transposed",
         "min_depthwise", "forbid", "blocks", "input_fraction", "strict")


def check(model: nn.Module, size, **rules):
    """(report, {rule: result}) for ``rules`` given as on the command line / in a config file."""
    report = analyze(model, size)
    results = run_checks(report, parse_rules(rules))
    assert [r.rule for r in results] == [n for n in TABLE if n in rules]
    return report, {r.rule: r for r in results}


def one(model: nn.Module, size, **rules):
    assert len(rules) == 1
    return check(model, size, **rules)[1][next(iter(rules))]


# -- the models -------------------------------------------------------------------------------------
class Stack(nn.Module):
    """input 3x16x16; per axis (r, j):
        c1   conv 3x3 p1            r = 1 + 2*1 = 3,            j = 1,  out 16
        pool max 2x2 s2             r = 3 + 1*1 = 4,            j = 2,  out 8
        c2   conv 3x3 p1            r = 4 + 2*2 = 8,            j = 2
        c3   conv 3x3 d2 p2 (k'=5)  r = 8 + 4*2 = 16,           j = 2   (stride 1: the jump is NOT doubled)
        c4   conv 3x3 p1            r = 16 + 2*2 = 20,          j = 2   (24 if the jump had been doubled at c3,
                                                                         12 + 4 = 16 if c3's dilation were forgotten)
        gap  AdaptiveAvgPool2d(1) over the 8x8 map: RF at its input 20; with its window 20 + (8-1)*2 = 34
        fc   Linear 8 -> 10
    params: c1 3*8*9+8 = 224; c2, c3, c4 8*8*9+8 = 584 each; fc 8*10+10 = 90; total 224 + 3*584 + 90 = 2066
    MACs:   c1 8*16*16 * 3*9 = 2048*27 = 55296; c2, c3, c4 8*8*8 * 8*9 = 512*72 = 36864 each; fc 8*10 = 80
            total 55296 + 3*36864 + 80 = 165968"""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.c4 = nn.Conv2d(8, 8, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.c1(x)))
        x = F.relu(self.c4(F.relu(self.c3(F.relu(self.c2(x))))))
        return self.fc(torch.flatten(self.gap(x), 1))


STACK_SIZE = (3, 16, 16)
STACK_RF = 20
STACK_PARAMS = 2066
STACK_MACS = 165968


class Strided(nn.Module):
    """input 3x16x16, no padding:
        a conv 3x3        r = 3,               j = 1, out 14
        b conv 3x3 s2     r = 3 + 2*1 = 5,     j = 2, out (14-3)//2+1 = 6
        c conv 3x3        r = 5 + 2*2 = 9,     j = 2, out 4   (7 with the wrong jump 1 after the stride)
    no global pool: the model RF is taken at the last spatial output c: 9x9, 9/16 = 0.5625 of the input."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3)
        self.b = nn.Conv2d(4, 4, 3, stride=2)
        self.c = nn.Conv2d(4, 4, 3)

    def forward(self, x):
        return self.c(self.b(self.a(x)))


class Flipped(nn.Module):
    """torch.flip along W (unknown to rfcheck), then conv 3x3 p1 (3 -> 4): the conv alone gives r = 3,
    and nothing from the flip on is exact."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.c(torch.flip(x, (3,)))


# -- min_rf / max_rf ----------------------------------------------------------------------------------
def test_stack_rf_by_hand():
    rep = analyze(Stack(), STACK_SIZE)
    assert rep.layer("c3").rf == (16, 16)      # dilation counted: 8 + (5-1)*2
    assert rep.layer("c4").rf == (20, 20)      # jump stays 2 after the stride-1 dilated conv
    assert rep.rf.size == (STACK_RF, STACK_RF)
    assert rep.rf.global_layer == "gap"
    assert rep.rf.with_global == (34, 34)      # both conventions: 20 + (8-1)*2 with the pool's window


def test_min_rf_passes_at_the_hand_value():
    r = one(Stack(), STACK_SIZE, min_rf=STACK_RF)
    assert r.passed and r.value == (20, 20) and r.limit == 20
    assert r.layers == ["gap"]
    assert r.message == "model RF 20x20 at the input of the global pool gap >= 20"


def test_min_rf_fails_one_above():
    # the GAP window is NOT counted: 34 >= 21 would pass, the rule uses 20
    r = one(Stack(), STACK_SIZE, min_rf=21)
    assert not r.passed and r.value == (20, 20) and r.limit == 21
    assert r.layers == ["gap"]
    assert "20x20" in r.message and "< 21" in r.message and "global pool gap" in r.message


def test_min_rf_wrong_jump_after_a_stride():
    # Strided: 9 (7 with the jump forgotten after the stride-2 conv)
    assert one(Strided(), (3, 16, 16), min_rf=9).passed
    r = one(Strided(), (3, 16, 16), min_rf=10)
    assert not r.passed and r.value == (9, 9) and r.layers == ["c"]
    assert r.message == "model RF 9x9 at c < 10"


def test_max_rf_passes_and_fails():
    r = one(Stack(), STACK_SIZE, max_rf=20)
    assert r.passed and r.value == (20, 20) and r.limit == 20 and r.layers == ["gap"]
    assert "<= 20" in r.message
    r = one(Stack(), STACK_SIZE, max_rf=19)
    assert not r.passed and r.value == (20, 20) and r.limit == 19
    assert "20x20" in r.message and "> 19" in r.message


def test_rf_rules_say_when_not_exact():
    r = one(Flipped(), (3, 8, 8), min_rf=3)   # the conv alone gives 3; flip is unknown to rfcheck
    assert r.passed and "NOT exact" in r.message


# -- max_params / max_macs --------------------------------------------------------------------------------
def test_max_params_passes_at_the_hand_total():
    r = one(Stack(), STACK_SIZE, max_params=STACK_PARAMS)
    assert r.passed and r.value == 2066 and r.limit == 2066
    assert r.message == "parameters 2,066 <= 2,066"


def test_max_params_fails_and_names_the_heaviest():
    r = one(Stack(), STACK_SIZE, max_params="2_065")
    assert not r.passed and r.value == 2066 and r.limit == 2065
    # heaviest three: the 584-parameter convs c2, c3, c4 (c1 224, fc 90)
    assert r.layers == ["c2", "c3", "c4"]
    assert r.message == "parameters 2,066 > 2,065; heaviest: c2 584, c3 584, c4 584"


def test_max_params_counts_a_reused_conv_once():
    class Reuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, padding=1)
            self.b = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            return self.b(self.b(self.a(x)))

    # a 3*8*9+8 = 224, b 8*8*9+8 = 584 once (not 2*584): 808
    assert one(Reuse(), (3, 8, 8), max_params=808).passed
    r = one(Reuse(), (3, 8, 8), max_params=807)
    assert not r.passed and r.value == 808


def test_max_macs_passes_at_the_hand_count():
    r = one(Stack(), STACK_SIZE, max_macs=STACK_MACS)
    assert r.passed and r.value == 165968 and r.limit == 165968
    assert r.message == "MACs per input 165,968 <= 165,968"
    assert one(Stack(), STACK_SIZE, max_macs="166k").passed


def test_max_macs_fails_and_names_the_heaviest():
    r = one(Stack(), STACK_SIZE, max_macs=165967)
    assert not r.passed and r.value == 165968
    # c1 55296 is the heaviest, then the 36864 convs in order
    assert r.layers == ["c1", "c2", "c3"]
    assert "165,968 > 165,967" in r.message and "heaviest: c1 55,296, c2 36,864" in r.message


def test_max_macs_of_a_grouped_conv():
    # 8->16 3x3 groups 4 p1 on 8x8: output 16*8*8 = 1024 elements x 8/4 x 9 = 18432
    m = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, groups=4))
    assert one(m, (8, 8, 8), max_macs=18432).passed
    r = one(m, (8, 8, 8), max_macs=18431)
    assert not r.passed and r.value == 18432


# -- require_gap -----------------------------------------------------------------------------------------
def test_require_gap_adaptive_avg_pool_passes():
    r = one(Stack(), STACK_SIZE, require_gap=True)
    assert r.passed and r.value is True and r.limit is True and r.layers == ["gap"]
    assert r.message == "global average pooling gap (AdaptiveAvgPool2d) over the 8x8 map"


def test_avgpool3_on_a_4x4_map_is_not_a_gap():
    # AvgPool2d(3) on 4x4: out (4-3)//3 + 1 = 1, so 1x1, but its one window covers rows 0..2 and
    # cols 0..2 = 9 of the 16 positions: it never sees 16 - 9 = 7 of them
    rep, res = check(head(nn.AvgPool2d(3)), (3, 4, 4), require_gap=True)
    r = res["require_gap"]
    assert not r.passed and r.value is False and r.limit is True
    assert r.layers == []
    assert "1 (AvgPool2d, kernel 3x3) reduces the 4x4 map to 1x1" in r.message
    assert "never sees 7 of 16" in r.message and "not a global pool" in r.message
    assert rep.counts["gap"] == 0
    assert any(w.code == "RF202" and "covers only 3 of 4 x 3 of 4 positions" in w.message for w in rep.warnings)


def test_avgpool_covering_the_whole_map_is_a_gap():
    # AvgPool2d(4) on 4x4: one window of all 16 positions
    r = one(head(nn.AvgPool2d(4)), (3, 4, 4), require_gap=True)
    assert r.passed and r.layers == ["1"] and "over the 4x4 map" in r.message


def test_global_max_pool_is_not_a_gap():
    for pool in (nn.AdaptiveMaxPool2d(1), nn.MaxPool2d(4)):
        r = one(head(pool), (3, 4, 4), require_gap=True)
        assert not r.passed and r.layers == ["1"]
        assert f"1 ({type(pool).__name__}) is a global MAX pool, not an average" in r.message


def test_flatten_then_linear_is_not_a_gap():
    # the Linear reads 8 channels x 4 x 4 = 128 flattened features
    r = one(flat_head(), (3, 4, 4), require_gap=True)
    assert not r.passed and r.layers == ["2"]
    assert "the classifier 2 (Linear) reads the flattened map (128 features)" in r.message


class MeanHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.c(x).mean((2, 3)))


def test_spatial_mean_is_a_gap():
    rep, res = check(MeanHead(), (3, 4, 4), require_gap=True)
    r = res["require_gap"]
    assert r.passed and r.layers == ["mean"] and "over the 4x4 map" in r.message
    assert rep.counts["gap"] == 1
    assert rep.rf.size == (3, 3)    # RF at the input of the mean: the conv's 3


def test_mean_over_one_axis_is_not_a_gap():
    class HalfMean(MeanHead):
        def forward(self, x):
            return self.c(x).mean(3)

    r = one(HalfMean(), (3, 4, 4), require_gap=True)
    assert not r.passed and "no layer reduces the spatial map to a single position" in r.message


def test_require_gap_off_is_not_run():
    assert run_checks(analyze(head(nn.AvgPool2d(3)), (3, 4, 4)), {"require_gap": False}) == []
    r = TABLE["require_gap"].check(analyze(head(nn.AvgPool2d(3)), (3, 4, 4)), False)
    assert r.passed and "not required" in r.message


# -- min_dws / min_depthwise ---------------------------------------------------------------------------------
class DWS(nn.Module):
    """depthwise 3x3 (groups = in_channels = 8), BN, ReLU, then a 1x1: one separable pair."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 16, 1)

    def forward(self, x):
        return self.pw(F.relu(self.bn(self.dw(x))))


def test_depthwise_then_pointwise_through_bn_relu_is_a_pair():
    rep, res = check(DWS(), (8, 8, 8), min_dws=1, min_depthwise=1)
    r = res["min_dws"]
    assert r.passed and r.value == 1 and r.limit == 1 and r.layers == ["dw+pw"]
    assert r.message == "1 depthwise-separable pair(s) >= 1: dw+pw"
    r = res["min_depthwise"]
    assert r.passed and r.value == 1 and r.layers == ["dw"] and "1 depthwise conv(s) >= 1" in r.message


def test_min_dws_fails_one_short():
    r = one(DWS(), (8, 8, 8), min_dws=2)
    assert not r.passed and r.value == 1 and r.limit == 2 and r.layers == ["dw+pw"]
    assert r.message == "1 depthwise-separable pair(s) < 2: dw+pw"


def test_grouped_conv_with_groups_2_and_a_maxpool_is_not_separable():
    # 4 -> 8 channels with groups=2: each group reads 2 channels, so groups != in_channels (4):
    # not depthwise; and a max pool sits between it and the 1x1
    rep, res = check(grouped_then_pool(), (4, 8, 8), min_dws=1, min_depthwise=1)
    assert not res["min_dws"].passed and res["min_dws"].value == 0 and res["min_dws"].layers == []
    assert res["min_dws"].message == "0 depthwise-separable pair(s) < 1"
    assert not res["min_depthwise"].passed and res["min_depthwise"].value == 0
    assert "0 depthwise conv(s) < 1" in res["min_depthwise"].message


def test_depthwise_with_channel_multiplier_2_then_maxpool_is_not_separable():
    # 4 -> 8 with groups = in_channels = 4 (channel multiplier 2) is depthwise, but the max pool
    # before the 1x1 breaks the pair
    m = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, groups=4), nn.MaxPool2d(2), nn.Conv2d(8, 8, 1))
    rep, res = check(m, (4, 8, 8), min_dws=1, min_depthwise=1)
    assert res["min_depthwise"].passed and res["min_depthwise"].layers == ["0"]
    assert not res["min_dws"].passed and res["min_dws"].value == 0


def test_a_1x1_depthwise_conv_does_not_start_a_pair():
    # the depthwise conv of a separable pair needs a kernel > 1
    m = nn.Sequential(nn.Conv2d(8, 8, 1, groups=8), nn.Conv2d(8, 8, 1))
    rep, res = check(m, (8, 8, 8), min_dws=1, min_depthwise=1)
    assert res["min_depthwise"].passed and not res["min_dws"].passed


# -- min_dilated / min_transposed -------------------------------------------------------------------------------
def test_min_dilated():
    r = one(Stack(), STACK_SIZE, min_dilated=1)
    assert r.passed and r.value == 1 and r.limit == 1 and r.layers == ["c3"]
    assert r.message == "1 dilated conv(s) >= 1: c3"
    r = one(Stack(), STACK_SIZE, min_dilated=2)
    assert not r.passed and r.value == 1 and r.limit == 2 and r.layers == ["c3"]
    assert r.message == "1 dilated conv(s) < 2: c3"


class Up(nn.Module):
    """input 3x8x8:
        c  conv 3x3 p1                  r = 3,              j = 1
        t1 transposed 3x3 s1 p1         acts like a padded 3x3 conv: r = 3 + 2*1 = 5, j = 1 (not an RF booster)
        t2 transposed 2x2 s2            each output reads one input: r = 5, j = 1/2 (it upsamples)"""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.t1 = nn.ConvTranspose2d(4, 4, 3, padding=1)
        self.t2 = nn.ConvTranspose2d(4, 4, 2, stride=2)

    def forward(self, x):
        return self.t2(self.t1(self.c(x)))


def test_min_transposed():
    rep, res = check(Up(), (3, 8, 8), min_transposed=2)
    r = res["min_transposed"]
    assert r.passed and r.value == 2 and r.layers == ["t1", "t2"]
    assert r.message == "2 transposed conv(s) >= 2: t1, t2"
    assert rep.layer("t1").rf == (5, 5) and rep.rf.size == (5, 5)
    r = one(Up(), (3, 8, 8), min_transposed=3)
    assert not r.passed and r.value == 2 and r.limit == 3 and "< 3" in r.message


# -- forbid ----------------------------------------------------------------------------------------------------
class Functional(nn.Module):
    """conv, F.max_pool2d, spatial mean, F.linear with the Linear's own weights."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.max_pool2d(self.c(x), 2)
        return F.linear(x.mean((2, 3)), self.fc.weight, self.fc.bias)


def modules_model() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))


def test_forbid_maxpool2d_matches_module_and_functional():
    r = one(modules_model(), (3, 8, 8), forbid="MaxPool2d")
    assert not r.passed and r.value == ["1"] and r.limit == ["MaxPool2d"] and r.layers == ["1"]
    assert r.message == "1 forbidden layer(s): 1 (MaxPool2d)"
    r = one(Functional(), (3, 8, 8), forbid="MaxPool2d")
    assert not r.passed and r.layers == ["max_pool2d"]
    assert "max_pool2d (max_pool2d)" in r.message


def test_forbid_maxpool_matches_any_dimension():
    m1 = nn.Sequential(nn.Conv1d(3, 8, 3, padding=1), nn.MaxPool1d(2))
    r = one(m1, (3, 8), forbid="MaxPool")
    assert not r.passed and r.layers == ["1"] and "1 (MaxPool1d)" in r.message
    assert not one(modules_model(), (3, 8, 8), forbid="MaxPool").passed
    assert not one(Functional(), (3, 8, 8), forbid="maxpool").passed     # case-insensitive
    # ... but MaxPool2d is not MaxPool1d
    r = one(m1, (3, 8), forbid="MaxPool2d")
    assert r.passed and r.value == [] and r.message == "no MaxPool2d layers"


def test_forbid_linear_matches_module_and_functional():
    r = one(modules_model(), (3, 8, 8), forbid="Linear")
    assert not r.passed and r.layers == ["4"] and "4 (Linear)" in r.message
    r = one(Functional(), (3, 8, 8), forbid="Linear")
    assert not r.passed and r.layers == ["linear"] and "linear (linear)" in r.message


def test_forbid_passes_without_those_layers_and_lists_several():
    r = one(Stack(), STACK_SIZE, forbid="Linear, MaxPool")
    assert not r.passed and r.layers == ["pool", "fc"] and r.limit == ["Linear", "MaxPool"]
    assert r.message.startswith("2 forbidden layer(s): ")
    r = one(Strided(), (3, 16, 16), forbid="MaxPool,Linear,ConvTranspose*")
    assert r.passed and r.value == [] and r.layers == []
    assert r.message == "no MaxPool, Linear, ConvTranspose* layers"


# -- blocks ------------------------------------------------------------------------------------------------------
class Blocks(nn.Module):
    """ConvBlock1 (RF 3), convblock2 (RF 5), out (GAP + Linear) on 3x8x8."""

    def __init__(self):
        super().__init__()
        self.ConvBlock1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.convblock2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.out = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x):
        return self.out(self.convblock2(self.ConvBlock1(x)))


def test_blocks_glob_is_case_insensitive():
    r = one(Blocks(), (3, 8, 8), blocks="convblock*, CONVBLOCK*, O*")
    assert r.passed and r.value == ["ConvBlock1", "convblock2", "out"] and r.layers == r.value
    assert r.limit == ["convblock*", "CONVBLOCK*", "O*"]
    # per block: RF 3 after one 3x3 conv, 5 after two
    assert "ConvBlock1: RF 3x3, out 4x8x8" in r.message and "convblock2: RF 5x5" in r.message


def test_blocks_wrong_count_fails():
    r = one(Blocks(), (3, 8, 8), blocks="ConvBlock*,O*")
    assert not r.passed and r.value == ["ConvBlock1", "convblock2", "out"]
    assert "ConvBlock1, convblock2, out (3), expected ConvBlock*, O* (2)" in r.message
    assert "2: 'convblock2' vs 'O*'" in r.message
    r = one(Blocks(), (3, 8, 8), blocks="convblock1,convblock2,out,extra")
    assert not r.passed and "(3), expected" in r.message and "(4)" in r.message


def test_blocks_wrong_order_fails():
    r = one(Blocks(), (3, 8, 8), blocks="out,convblock*,convblock*")
    assert not r.passed
    assert "1: 'ConvBlock1' vs 'out'" in r.message and "3: 'out' vs 'convblock*'" in r.message


# -- input_fraction ---------------------------------------------------------------------------------------------------
def test_input_fraction():
    # Strided: RF 9 of a 16x16 input = 0.5625 per axis
    r = one(Strided(), (3, 16, 16), input_fraction=0.5)
    assert r.passed and r.value == [0.5625, 0.5625] and r.limit == 0.5 and r.layers == ["c"]
    assert r.message == "model RF 9x9 is 0.56x0.56 of the 16x16 input >= 0.5"
    r = one(Strided(), (3, 16, 16), input_fraction="0.6")
    assert not r.passed and r.limit == 0.6 and "< 0.6" in r.message


def test_input_fraction_names_unproductive_layers():
    # five 3x3 p1 convs on 4x4: r = 3, 5, 7, 9, 11.  After the third (r 7), unit 0 sees -3..3 and
    # unit 3 sees 0..6: every unit covers the whole 0..3 input, so layers 3 and 4 add nothing
    m = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(5)])
    r = one(m, (3, 4, 4), input_fraction=1.0)
    assert r.passed and r.value == [2.75, 2.75]       # 11/4
    assert "2 unproductive layer(s) after full coverage: 3, 4" in r.message


# -- strict -----------------------------------------------------------------------------------------------------------
def test_strict_fails_with_an_unknown_op():
    r = one(Flipped(), (3, 8, 8), strict=True)
    assert not r.passed and r.value is False and r.limit is True
    assert r.layers == ["flip", "c"]        # the unknown op and what depends on it
    assert "2 layer(s) not exact" in r.message and "unknown: flip (flip)" in r.message


def test_strict_passes_on_known_ops_and_is_off_by_default():
    r = one(Stack(), STACK_SIZE, strict="true")
    assert r.passed and r.value is True and r.layers == [] and r.message == "every value is exact"
    assert run_checks(analyze(Flipped(), (3, 8, 8)), {"strict": False}) == []


# -- all rules at once -----------------------------------------------------------------------------------------------
def test_every_rule_has_a_test_here():
    assert tuple(TABLE) == RULES


def test_all_rules_together_on_the_stack():
    rep, res = check(Stack(), STACK_SIZE, min_rf=20, max_rf=20, max_params="2066", max_macs=165968,
                     require_gap=True, min_dilated=1, forbid="ConvTranspose", blocks="c1,pool,c2,c3,c4,gap,fc",
                     input_fraction=1.25, strict=True)
    assert all(r.passed for r in res.values()), [r.message for r in res.values() if not r.passed]
    assert res["input_fraction"].value == [1.25, 1.25]      # 20/16


# -- parsing --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("100k", 100_000), ("100_000", 100_000), ("1.5M", 1_500_000), ("100000", 100_000), (" 2m ", 2_000_000),
    ("1,000", 1000), (7, 7), ("0", 0), ("1e5", 100_000), ("1.5k", 1500)])
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["abc", "1.2345k", "-3", -1, True, "", "k"])
def test_parse_count_rejects(text):
    with pytest.raises(ValueError, match="expected a whole number"):
        parse_count(text)


def test_parse_count_decimal_with_suffix_is_exact():
    assert parse_count("2.01k") == 2010
    assert parse_count("8.19k") == 8190


def test_parse_rules_infinite_count_is_a_value_error():
    with pytest.raises(ValueError, match="max_params = 'inf'"):
        parse_rules({"max_params": "inf"})


def test_parse_rules_unknown_name_did_you_mean():
    with pytest.raises(ValueError) as e:
        parse_rules({"min_rff": 3}, "setup.cfg [rfcheck]")
    msg = str(e.value)
    assert msg.startswith("setup.cfg [rfcheck]: unknown rule 'min_rff'")
    assert "did you mean 'min_rf'?" in msg and "known: min_rf, max_rf" in msg


def test_parse_rules_bad_value_names_key_and_value():
    with pytest.raises(ValueError, match=r"^max-params = '10q': expected a whole number"):
        parse_rules({"max-params": "10q"})
    with pytest.raises(ValueError, match=r"require_gap = 'maybe': expected true or false"):
        parse_rules({"require_gap": "maybe"})
    with pytest.raises(ValueError, match=r"input_fraction = '0': expected a number > 0"):
        parse_rules({"input_fraction": "0"})
    with pytest.raises(ValueError, match=r"blocks = '': expected one or more"):
        parse_rules({"blocks": ""})


def test_parse_rules_values():
    got = parse_rules({"max-params": "1.5M", "forbid": "MaxPool2d, Linear", "require_gap": "yes",
                       "input_fraction": "0.5", "min_rf": None})
    assert got == {"max_params": 1_500_000, "forbid": ("MaxPool2d", "Linear"), "require_gap": True,
                   "input_fraction": 0.5}


def test_run_checks_rejects_unknown_rule():
    with pytest.raises(KeyError, match="min_rff"):
        run_checks(analyze(Strided(), (3, 16, 16)), {"min_rff": 3})


# -- assert_design ---------------------------------------------------------------------------------------------
def test_assert_design_returns_the_report():
    rep = assert_design(Stack(), STACK_SIZE, advice=False, min_rf=20, max_params="2066", require_gap=True,
                        min_dilated=1)
    assert isinstance(rep, Report) and rep.rf.size == (20, 20) and rep.params.total == 2066


def test_assert_design_failure_lists_rule_value_limit():
    with pytest.raises(AssertionError) as e:
        assert_design(Stack(), STACK_SIZE, advice=False, min_rf=21, max_params=2065, min_dilated=1)
    msg = str(e.value)
    assert "breaks 2 design rule(s)" in msg and "on input 3x16x16" in msg
    assert "[FAIL] min_rf: model RF 20x20 at the input of the global pool gap < 21" in msg
    assert "[FAIL] max_params: parameters 2,066 > 2,065" in msg
    assert "[PASS] min_dilated" in msg


def test_assert_design_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match=r"unknown rule 'min_rff' \(did you mean 'min_rf'\?\)"):
        assert_design(Stack(), STACK_SIZE, min_rff=3)


def test_assert_design_bad_value_is_a_value_error():
    with pytest.raises(ValueError, match="max_params = 'lots'"):
        assert_design(Stack(), STACK_SIZE, max_params="lots")


def test_assert_design_avgpool3_not_gap_with_advice():
    with pytest.raises(AssertionError, match="never sees 7 of 16"):
        assert_design(head(nn.AvgPool2d(3)), (3, 4, 4), require_gap=True)
