"""The advice of rfcheck/advice.py is right: applying a suggested change to the model makes the
failing rule pass, and the changed model's numbers equal both ``Suggestion.predicted`` and a value
derived by hand in the comment next to it (never copied from rfcheck's output).

Per axis, with k' = d*(k-1) + 1:  r_out = r_in + (k'-1)*j_in,  j_out = j_in*s.
Params of a conv: out*in/groups*k*k (+ out for the bias).  MACs per input sample of a conv:
output elements x in/groups x kernel volume.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import rfcheck
from rfcheck.advice import suggest
from rfcheck.cli import main
from rfcheck.rules import CheckResult, parse_rules, run_checks
from rfcheck.suggestion import Suggestion
from tests.models import flat_head, grouped_then_pool, head


@dataclass
class Advised(CheckResult):
    """A rule's result with the texts the report prints as its ``fix:`` lines."""
    advice: list[str] = field(default_factory=list)


def advise(model: nn.Module, size, **rules):
    """(report, {rule: result and advice texts}, {rule: [checked Suggestion]}) as the CLI computes
    them; the advice in words only (no change to apply) is among the texts, not the suggestions."""
    limits = parse_rules(rules)
    report = rfcheck.analyze(model, size)
    sugs = suggest(model, report, limits)
    res = {r.rule: Advised(**vars(r), advice=[s.text for s in sugs.get(r.rule, [])]) for r in run_checks(report, limits)}
    return report, res, {rule: [s for s in found if s.changes] for rule, found in sugs.items()}


def first_passing(sugs: list[Suggestion]) -> Suggestion:
    return next(s for s in sugs if s.passes)


def verify(model: nn.Module, size, s: Suggestion, **rules) -> rfcheck.Report:
    """Apply ``s`` to a copy, analyse the copy again: the rule now passes (if ``s.passes``) and every
    predicted number is the changed model's own."""
    new = s.apply(model)
    assert new is not model
    rep = rfcheck.analyze(new, size)
    res = {r.rule: r for r in run_checks(rep, parse_rules(rules))}
    assert res[s.rule].passed == s.passes
    assert s.predicted == {"rf": tuple(rep.rf.size), "params": rep.params.total, "macs": rep.macs,
                           "counts": dict(rep.counts)}
    return rep


def snapshot(model: nn.Module):
    return repr(model), {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model: nn.Module, snap) -> None:
    text, state = snap
    assert repr(model) == text
    now = model.state_dict()
    assert now.keys() == state.keys()
    assert all(torch.equal(now[k], v) for k, v in state.items())


# -- min_rf ----------------------------------------------------------------------------------------------
class Stack(nn.Module):
    """input 3x16x16; per axis (r, j):
        c1   conv 3x3 p1       r = 3,              j = 1, out 16
        pool max 2x2 s2        r = 3 + 1*1 = 4,    j = 2, out 8
        c2   conv 3x3 p1       r = 4 + 2*2 = 8,    j = 2
        c3   conv 3x3 p1       r = 8 + 2*2 = 12,   j = 2
        gap, fc Linear 8 -> 10
    params 224 + 584 + 584 + 90 = 1482 (3*8*9+8, 8*8*9+8 twice, 8*10+10)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 8, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.c1(x)))
        x = F.relu(self.c3(F.relu(self.c2(x))))
        return self.fc(torch.flatten(self.gap(x), 1))


SIZE = (3, 16, 16)
PARAMS = 1482

# model RF at the gap input after each single change, by hand:
HAND_RF = {
    # stride 2 on c1: c1 r 3 j 2; pool 3 + 1*2 = 5, j 4; c2 5 + 2*4 = 13; c3 13 + 8 = 21
    ("c1", "stride", None): 21,
    # stride 2 on c2: c2 r 8, j 4; c3 8 + 2*4 = 16
    ("c2", "stride", None): 16,
    # stride 2 on c3: only the jump after c3 changes: 12
    ("c3", "stride", None): 12,
    # dilate c1 (k' 5 / 7): c1 5 / 7; pool 6 / 8; c2 10 / 12; c3 14 / 16
    ("c1", "dilate", 2): 14, ("c1", "dilate", 3): 16,
    # dilate c2 (k' 5 / 7): c2 4 + 4*2 = 12 / 4 + 6*2 = 16; c3 16 / 20
    ("c2", "dilate", 2): 16, ("c2", "dilate", 3): 20,
    # dilate c3 (k' 5 / 7): 8 + 4*2 = 16 / 8 + 6*2 = 20
    ("c3", "dilate", 2): 16, ("c3", "dilate", 3): 20,
}


def key(s: Suggestion):
    assert len(s.changes) == 1
    c = s.changes[0]
    return c.layer, c.kind, c.value


def test_stack_rf_by_hand():
    assert rfcheck.analyze(Stack(), SIZE).rf.size == (12, 12)


def test_min_rf_advice_every_single_change_matches_the_hand_rf():
    model = Stack()
    snap = snapshot(model)
    rep, res, sugs = advise(model, SIZE, min_rf=16)
    assert not res["min_rf"].passed and rep.rf.size == (12, 12)
    assert len(sugs["min_rf"]) == 3
    for s in sugs["min_rf"]:
        hand = HAND_RF[key(s)]
        assert s.predicted["rf"] == (hand, hand)
        assert s.passes == (hand >= 16)
        assert s.predicted["params"] == PARAMS        # dilation and stride add no weights
        verify(model, SIZE, s, min_rf=16)
    # the largest RF first: stride 2 on c1 gives 21 (every other single change <= 20)
    best = first_passing(sugs["min_rf"])
    assert key(best) == ("c1", "stride", None) and best.predicted["rf"] == (21, 21)
    assert best.text == "set stride 2 on c1 (3x3 conv): model RF 12x12 -> 21x21, params 1,482 (passes)"
    assert res["min_rf"].advice[0] == best.text
    assert_unchanged(model, snap)


def test_min_rf_advice_dilation_keeps_the_output_size():
    model = Stack()
    _, _, sugs = advise(model, SIZE, min_rf=16)
    s = next(s for s in sugs["min_rf"] if key(s) == ("c2", "dilate", 3))
    new = s.apply(model)
    # dilation 3 on a 3x3 conv: padding 1 + (3-1)*(3-1)/2 = 3 keeps 8x8
    assert new.c2.dilation == (3, 3) and new.c2.padding == (3, 3)
    assert "set dilation 3 on c2 (3x3 conv) with padding (3, 3)" in s.text
    rep = verify(model, SIZE, s, min_rf=16)
    assert rep.layer("c2").output_shape == (8, 8, 8) and rep.rf.size == (20, 20)
    # a new conv of the same shape: the parameter count is unchanged
    assert sum(p.numel() for p in new.parameters()) == PARAMS
    assert model.c2.dilation == (1, 1) and model.c2.padding == (1, 1)


def test_min_rf_advice_combines_changes_when_none_is_enough():
    # limit 40: no single change reaches it (at most 21).  Greedy: stride 2 on c1 (21), then dilation 3
    # on c2 or c3 (both 37: c1 s2 -> j 4 after the pool, r 5; dilated c2 5 + 6*4 = 29, c3 29 + 2*4 = 37),
    # then dilation 3 on the other: c2 29, c3 29 + 6*4 = 53
    model = Stack()
    snap = snapshot(model)
    _, res, sugs = advise(model, SIZE, min_rf=40)
    s = sugs["min_rf"][0]
    assert s.passes and s.text.startswith("together: ")
    assert {(c.layer, c.kind, c.value) for c in s.changes} == {("c1", "stride", None), ("c2", "dilate", 3),
                                                              ("c3", "dilate", 3)}
    assert s.predicted["rf"] == (53, 53)
    rep = verify(model, SIZE, s, min_rf=40)
    assert rep.rf.size == (53, 53)
    assert "model RF 12x12 -> 53x53" in s.text
    # the single changes are listed after it, marked as not enough alone
    assert all(not t.passes and t.text.endswith("(not enough alone)") for t in sugs["min_rf"][1:])
    # limit 60: even all three together (53) fall short, and the advice says so
    _, _, sugs = advise(model, SIZE, min_rf=60)
    s = sugs["min_rf"][0]
    assert not s.passes and s.text.startswith("even 3 changes together do not pass")
    assert s.predicted["rf"] == (53, 53)
    verify(model, SIZE, s, min_rf=60)
    assert_unchanged(model, snap)


# -- min_dilated ----------------------------------------------------------------------------------------------
def test_min_dilated_advice():
    model = Stack()
    snap = snapshot(model)
    rep, res, sugs = advise(model, SIZE, min_dilated=1)
    assert not res["min_dilated"].passed
    for s in sugs["min_dilated"]:
        layer, kind, value = key(s)
        assert kind == "dilate" and value == 2      # only dilation 2 on stride-1 convs
        hand = HAND_RF[key(s)]
        assert s.predicted["rf"] == (hand, hand) and s.predicted["counts"]["dilated"] == 1
        verify(model, SIZE, s, min_dilated=1)
    # dilating c2 to 2: c2 4 + 4*2 = 12, c3 12 + 2*2 = 16 (tied with c3 -> 16; c1 only 14)
    best = first_passing(sugs["min_dilated"])
    assert key(best) in {("c2", "dilate", 2), ("c3", "dilate", 2)}
    assert best.predicted["rf"] == (16, 16) and best.predicted["params"] == PARAMS
    rep = verify(model, SIZE, best, min_dilated=1)
    assert rep.count_layers["dilated"] == [best.changes[0].layer]
    assert rep.layer(best.changes[0].layer).output_shape == (8, 8, 8)   # padding 2 keeps 8x8
    assert "dilated convs 0 -> 1, model RF 12x12 -> 16x16, params unchanged (1,482)" in best.text
    assert_unchanged(model, snap)


def test_min_dilated_advice_keeps_the_output_size_of_an_even_kernel():
    # 4x4 p1 on 8x8: out 8 + 2 - 4 + 1 = 7.  Dilated by 2 (k' = 7) it keeps 7 only if 8 + 2p - 7 + 1 = 7,
    # 2p = 5: impossible with symmetric padding, so dilation 2 is not offered; dilation 3 (k' = 10) keeps
    # it with p = 1 + (3-1)*3/2 = 4: 8 + 8 - 10 + 1 = 7.  Whatever is offered must keep the size it claims.
    m = nn.Sequential(nn.Conv2d(3, 8, 4, padding=1))
    _, res, sugs = advise(m, (3, 8, 8), min_dilated=1)
    assert not any(c.value == 2 for s in sugs["min_dilated"] for c in s.changes)
    for s in sugs["min_dilated"]:
        rep = verify(m, (3, 8, 8), s, min_dilated=1)
        kept = rep.layer("0").output_shape == (8, 7, 7)
        assert kept or "output size kept by the padding" not in s.text, (rep.layer("0").output_shape, s.text)


# -- max_params / max_macs -------------------------------------------------------------------------------------
class Wide(nn.Module):
    """one 64 -> 128 3x3 conv (p1) on 64x8x8, then GAP.
    params 64*128*9 + 128 = 73856; MACs 128*8*8 * 64*9 = 4718592.
    depthwise-separable: depthwise 3x3 (64 groups, no bias) 64*9 = 576, pointwise 64*128 + 128 = 8320:
    params 576 + 8320 = 8896; MACs 64*8*8 * 9 = 36864 + 128*8*8 * 64 = 524288: 561152."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(64, 128, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.gap(self.conv(x))


def test_max_params_advice_makes_the_conv_separable():
    model = Wide()
    snap = snapshot(model)
    rep, res, sugs = advise(model, (64, 8, 8), max_params=10_000)
    assert rep.params.total == 73856 and not res["max_params"].passed
    s = first_passing(sugs["max_params"])
    assert [(c.layer, c.kind) for c in s.changes] == [("conv", "separable")]
    assert s.predicted["params"] == 8896
    assert s.predicted["macs"] == 561152
    assert s.predicted["rf"] == (3, 3)                   # same 3x3 kernel: same RF
    assert s.predicted["counts"]["depthwise_separable"] == 1
    rep = verify(model, (64, 8, 8), s, max_params=10_000)
    assert rep.params.total == 8896
    new = s.apply(model)
    dw, pw = new.conv
    assert (dw.in_channels, dw.out_channels, dw.groups, dw.kernel_size, dw.bias) == (64, 64, 64, (3, 3), None)
    assert (pw.in_channels, pw.out_channels, pw.kernel_size) == (64, 128, (1, 1)) and pw.bias is not None
    assert s.text == ("make conv (3x3 conv, 64->128) depthwise-separable: 3x3 depthwise (64 groups) + 1x1 "
                      "pointwise: params 73,856 -> 8,896, model RF 3x3 (passes)")
    assert_unchanged(model, snap)
    assert isinstance(model.conv, nn.Conv2d)


def test_max_params_advice_says_when_separable_convs_are_not_enough():
    # Wide made separable still holds 8,896 parameters (docstring): a 5,000 budget needs fewer channels
    # two 3x3 convs 64->128->128 (p1) on 8x8 + GAP: 73,856 + 147,584 = 221,440 parameters;
    # both separable: 8,896 + (128*9 + 128*128 + 128 = 17,664) = 26,560, still over a 5,000 budget
    model = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1), nn.Conv2d(128, 128, 3, padding=1), nn.AdaptiveAvgPool2d(1))
    rep, res, sugs = advise(model, (64, 8, 8), max_params=5_000)
    assert rep.params.total == 221_440 and not any(s.passes for s in sugs["max_params"])
    first = sugs["max_params"][0].text
    assert first.startswith("even 2 changes together do not pass") and "params 221,440 -> 26,560" in first
    assert first.endswith("the design needs fewer or narrower layers (fewer channels), not only cheaper convs")


def test_max_macs_advice_makes_the_conv_separable():
    model = Wide()
    rep, res, sugs = advise(model, (64, 8, 8), max_macs="1M")
    assert rep.macs == 4718592 and not res["max_macs"].passed
    s = first_passing(sugs["max_macs"])
    assert s.predicted["macs"] == 561152 and s.predicted["params"] == 8896
    verify(model, (64, 8, 8), s, max_macs="1M")
    assert "macs 4,718,592 -> 561,152" in s.text


def test_max_params_advice_points_at_a_big_linear():
    # conv 3*8*9+8 = 224, Linear on the flattened 8*8*8 = 512 features: 512*10+10 = 5130, > 2000 // 4
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(512, 10))
    _, res, sugs = advise(m, (3, 8, 8), max_params=2000)
    assert res["max_params"].value == 224 + 5130
    assert ("2 (Linear) holds 5,130 parameters: global average pooling before it shrinks its input to the "
            "channel count") in res["max_params"].advice
    # the only conv made separable: 3*9 + 3*8 + 8 = 59 instead of 224; 59 + 5130 = 5189 is not enough
    s = sugs["max_params"][0]
    assert not s.passes and s.predicted["params"] == 5189
    verify(m, (3, 8, 8), s, max_params=2000)


# -- min_dws -------------------------------------------------------------------------------------------------------
def two_convs() -> nn.Sequential:
    """3 -> 16 -> 32, 3x3 p1, on 3x8x8: params 3*16*9+16 = 448 and 16*32*9+32 = 4640: 5088; RF 5."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1))


def test_min_dws_advice_separates_the_heaviest_conv():
    model = two_convs()
    snap = snapshot(model)
    rep, res, sugs = advise(model, (3, 8, 8), min_dws=1)
    assert rep.params.total == 5088 and not res["min_dws"].passed
    s = first_passing(sugs["min_dws"])
    assert [(c.layer, c.kind) for c in s.changes] == [("2", "separable")]
    # conv 2 separable: 16*9 = 144 + 16*32 + 32 = 544; with conv 0's 448: 1136
    assert s.predicted["params"] == 1136
    assert s.predicted["counts"]["depthwise_separable"] == 1 and s.predicted["rf"] == (5, 5)
    rep = verify(model, (3, 8, 8), s, min_dws=1)
    assert rep.count_layers["depthwise_separable"] == ["2.0+2.1"]
    assert "depthwise-separable pairs 0 -> 1, params 5,088 -> 1,136, model RF 5x5" in s.text
    # the other candidate: conv 0 separable: 3*9 = 27 + 3*16 + 16 = 64: 91 + 4640 = 4731
    other = sugs["min_dws"][1]
    assert [c.layer for c in other.changes] == ["0"] and other.predicted["params"] == 4731
    verify(model, (3, 8, 8), other, min_dws=1)
    assert_unchanged(model, snap)


def test_min_dws_advice_two_pairs_together():
    model = two_convs()
    _, _, sugs = advise(model, (3, 8, 8), min_dws=2)
    s = sugs["min_dws"][0]
    assert s.passes and s.text.startswith("together: ")
    assert {c.layer for c in s.changes} == {"0", "2"}
    # 91 + 688 = 779 (both convs separable, see above)
    assert s.predicted["params"] == 779 and s.predicted["counts"]["depthwise_separable"] == 2
    verify(model, (3, 8, 8), s, min_dws=2)


def test_min_dws_advice_explains_a_grouped_conv():
    # groups=2 on 4 input channels is not depthwise (groups must equal in_channels)
    _, res, _ = advise(grouped_then_pool(), (4, 8, 8), min_dws=1)
    assert ("0 has groups=2 but is not depthwise (groups must equal in_channels), so it is not counted"
            in res["min_dws"].advice)


def test_min_dws_advice_explains_a_grouped_conv_beside_a_depthwise_one():
    layers = [nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1, groups=2)]
    layers += [nn.Identity() for _ in range(8)]
    layers += [nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.MaxPool2d(2), nn.Conv2d(8, 8, 1)]   # depthwise "10"
    _, res, _ = advise(nn.Sequential(*layers), (4, 8, 8), min_dws=1)
    assert any(a.startswith("1 has groups=2 but is not depthwise") for a in res["min_dws"].advice)


# -- require_gap ---------------------------------------------------------------------------------------------------
# head(pool) (tests/models.py): conv 3x3 p1 on 3x4x4 (RF 3), pool, flatten, Linear 8 -> 10; params 224 + 90 = 314.
@pytest.mark.parametrize("pool", [nn.AvgPool2d((3, 3)), nn.AdaptiveMaxPool2d(1)], ids=["avgpool3x3", "globalmax"])
def test_require_gap_advice_replaces_the_pool(pool):
    model = head(pool)
    snap = snapshot(model)
    rep, res, sugs = advise(model, (3, 4, 4), require_gap=True)
    assert not res["require_gap"].passed
    s = first_passing(sugs["require_gap"])
    assert [(c.layer, c.kind) for c in s.changes] == [("1", "gap")]
    # RF at the input of the new global pool: the conv's 3; params unchanged 314
    assert s.predicted["rf"] == (3, 3) and s.predicted["params"] == 314 and s.predicted["counts"]["gap"] == 1
    rep = verify(model, (3, 4, 4), s, require_gap=True)
    assert rep.rf.global_layer == "1" and rep.rf.with_global == (6, 6)    # 3 + (4-1)*1
    assert isinstance(s.apply(model)[1], nn.AdaptiveAvgPool2d)
    assert s.text == (f"replace 1 ({type(pool).__name__}) with AdaptiveAvgPool2d(1): the pool then sees every "
                      "position; model RF 3x3 (passes)")
    assert_unchanged(model, snap)
    assert type(model[1]) is type(pool)


def test_require_gap_advice_for_avgpool3_with_an_int_kernel():
    model = head(nn.AvgPool2d(3))
    _, res, sugs = advise(model, (3, 4, 4), require_gap=True)
    s = first_passing(sugs["require_gap"])
    assert s.predicted["rf"] == (3, 3)
    verify(model, (3, 4, 4), s, require_gap=True)


def test_require_gap_advice_for_flatten_then_linear():
    # flat_head() (tests/models.py): conv 3x3 p1 on 3x4x4, flatten, Linear 128 -> 10
    _, res, sugs = advise(flat_head(), (3, 4, 4), require_gap=True)
    assert sugs["require_gap"] == []
    assert res["require_gap"].advice == [
        "insert a global average pool (nn.AdaptiveAvgPool2d(1) then flatten) before 2: it then reads one value per "
        "channel, and its in_features become the channel count"]


def test_passing_rules_get_no_advice():
    _, res, sugs = advise(Stack(), SIZE, min_rf=12, require_gap=True, max_params=PARAMS)
    assert sugs == {} and all(r.passed and r.advice == [] for r in res.values())


# -- the advice in the CLI --------------------------------------------------------------------------------------------
# the file the CLI reads holds Stack above, as written here
MODEL_FILE = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n" + inspect.getsource(Stack)

CLI_RULES = ["--min-rf", "16", "--min-dilated", "1", "--max-params", "1000", "--require-gap"]


@pytest.fixture
def model_file(tmp_path, monkeypatch, restore_import_state):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "stack_model.py"
    p.write_text(MODEL_FILE)
    return str(p)


def expected_advice() -> dict[str, list[str]]:
    result = rfcheck.check(Stack(), SIZE, min_rf=16, min_dilated=1, max_params=1000, require_gap=True)
    return {r.rule: result.advice(r.rule) for r in result.results}


def test_cli_prints_the_advice_as_fix_lines(model_file, capsys):
    rc = main([model_file, "--isolated", "--input-size", "3,16,16", *CLI_RULES])
    out = capsys.readouterr().out
    assert rc == 1
    advice = expected_advice()
    assert advice["min_rf"] and advice["min_dilated"] and advice["max_params"] and advice["require_gap"] == []
    fixes = [line.strip()[len("fix: "):] for line in out.splitlines() if line.strip().startswith("fix:")]
    # in registry order: min_rf, max_params, require_gap (passes, none), min_dilated
    assert fixes == advice["min_rf"] + advice["max_params"] + advice["min_dilated"]
    # the fixes that also meet min_dilated come first: dilation 3 on c2 (k_eff 7): c2 4 + 6*2 = 16,
    # c3 16 + 2*2 = 20 (HAND_RF), before the stride on c1 (21) that meets min_rf alone
    assert ("fix: set dilation 3 on c2 (3x3 conv) with padding (3, 3): model RF 12x12 -> 20x20, params 1,482 "
            "(passes)") in out
    assert fixes.index(advice["min_rf"][0]) == 0 and "dilation" in advice["min_rf"][0]


def test_cli_json_has_the_advice_per_check(model_file, capsys):
    rc = main([model_file, "--isolated", "--input-size", "3,16,16", "--format", "json", *CLI_RULES])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["passed"] is False
    advice = expected_advice()
    checks = {c["rule"]: c for c in doc["checks"]}
    assert [c["rule"] for c in doc["checks"]] == ["min_rf", "max_params", "require_gap", "min_dilated"]
    for rule in ("min_rf", "min_dilated", "max_params"):
        assert checks[rule]["passed"] is False and checks[rule]["advice"] == advice[rule]
    assert checks["require_gap"]["passed"] is True and "advice" not in checks["require_gap"]
    assert checks["min_rf"]["value"] == [12, 12] and checks["min_rf"]["limit"] == 16


def test_cli_no_advice(model_file, capsys):
    rc = main([model_file, "--isolated", "--input-size", "3,16,16", "--no-advice", *CLI_RULES])
    out = capsys.readouterr().out
    assert rc == 1 and "fix:" not in out and "[FAIL] min_rf" in out
