"""The claim check: each of the brief's hand-calculation mistakes (a)-(f), built into a small net
where it gives one specific wrong number (derived by hand below), is named, and only it."""
from __future__ import annotations

import json

import pytest
import torch.nn as nn

import rfcheck
from rfcheck.claims import NOT_APPLICABLE, check_claims, parse_claim_value, parse_layer_claim
from rfcheck.errors import RFCheckError
from rfcheck.report import SCHEMA_VERSION


def conv(cin, cout, k=3, **kw):
    return nn.Conv2d(cin, cout, k, **kw)


class Chain(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.body = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.gap(self.body(x)).flatten(1)


def strided():
    """3x16x16: 3x3 p1 (r 3, j 1, n 16); 3x3 s2 p1 (r 3 + 2*1 = 5, j 2, n 8); GAP over 8x8.
    Truth 5.  (a) the window counted: 5 + (8-1)*2 = 19.  (d) the jump left at 1 after the
    stride changes nothing before the GAP (5); (a)+(d): 5 + 7*1 = 12."""
    return Chain(conv(3, 4, padding=1), conv(4, 4, stride=2, padding=1)), (3, 16, 16)


def dilated():
    """3x32x32: 3x3 p1 (r 3, j 1); 3x3 d2 p2 (k_eff 5: r 3 + 4*1 = 7, j 1); 3x3 p1 (r 7 + 2*1 = 9).
    Truth 9.  (b) the jump doubled at the dilated conv: j 2 after it, last conv 7 + 2*2 = 11.
    (c) k_eff = k = 3: 3 + 2 = 5, then 5 + 2 = 7.  (a): 9 + 31*1 = 40."""
    return Chain(conv(3, 4, padding=1), conv(4, 4, padding=2, dilation=2), conv(4, 4, padding=1)), (3, 32, 32)


def pooled():
    """3x32x32: 3x3 p1 (r 3, j 1); max pool 2 (r 3 + 1*1 = 4, j 2, n 16); 3x3 p1 (r 4 + 2*2 = 8).
    Truth 8.  (d) the jump not updated after the pool: 4 + 2*1 = 6.  (a): 8 + 15*2 = 38."""
    return Chain(conv(3, 4, padding=1), nn.MaxPool2d(2), conv(4, 4, padding=1)), (3, 32, 32)


def transposed():
    """3x32x32: 3x3 s2 p1 (r 3, j 2, n 16); ConvTranspose2d k4 s2 p1 (each output reads two
    adjacent inputs: r 3 + 2 = 5, j 1 as a mean); 3x3 p1 (r 7).  Truth 7.  (e) as a stride-1
    conv: 3 + (4-1)*2 = 9 with j 2, then 9 + 2*2 = 13; (e) multiplying the jump: 9 with j 4,
    then 9 + 2*4 = 17."""
    return Chain(conv(3, 4, stride=2, padding=1), nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1),
                 conv(4, 4, padding=1)), (3, 32, 32)


def padded_1x1():
    """3x8x8: 3x3 p1 (r 3, n 8); 1x1 p1 (r 3, n (8 + 2 - 1)/1 + 1 = 10); GAP over 10x10.
    Truth 3; (a): 3 + 9*1 = 12; (f) alone changes only the size (3); (a)+(f): the map taken as
    8x8: 3 + 7*1 = 10."""
    return Chain(conv(3, 4, padding=1), conv(4, 4, 1, padding=1)), (3, 8, 8)


def claim(build, value, **kw):
    model, size = build()
    return rfcheck.check(model, size, claim_rf=value, advice=False, **kw).claims


@pytest.mark.parametrize("build, value, codes, how", [
    (strided, 19, ["a"], ""),
    (dilated, 11, ["b"], ""),
    (dilated, 7, ["c"], ""),
    (pooled, 6, ["d"], ""),
    (transposed, 13, ["e"], "add"),
    (transposed, 17, ["e"], "jump"),
    (padded_1x1, 10, ["a", "f"], ""),
])
def test_each_mistake_is_named_and_only_it(build, value, codes, how):
    result = claim(build, value)
    (c,) = result.items
    assert not c.matches and not result.passed
    assert [d.codes for d in c.diagnoses] == [codes]
    if how:
        assert c.diagnoses[0].mistakes[0].how == how
    assert all(v == value for v in c.diagnoses[0].value)


def test_the_true_values_of_the_mistake_nets():
    # the truths of the nets above, derived in their docstrings
    for build, truth in ((strided, 5), (dilated, 9), (pooled, 8), (transposed, 7), (padded_1x1, 3)):
        (c,) = claim(build, truth).items
        assert c.true == (truth, truth) and c.matches and not c.diagnoses


def test_where_a_mistake_departs_and_the_text():
    (c,) = claim(dilated, 11).items
    d = c.diagnoses[0]
    assert d.departs_at == "body.1"   # the dilated conv, where the doubled jump starts
    text = claim(dilated, 11).text()
    assert "[WRONG] model RF (at the input of the global pool gap): claimed 11, true 9" in text
    assert "reproduced by: (b) the jump multiplied by the dilation at a stride-1 dilated conv" in text


def test_a_correct_claim_passes():
    model, size = dilated()
    result = rfcheck.check(model, size, claim_rf=9, min_rf=5)
    assert result.passed and result.claims.passed
    assert "[right] model RF (at the input of the global pool gap): claimed 9, true 9" in str(result)


def test_a_claim_no_mistake_explains_says_so():
    (c,) = claim(dilated, 1000).items
    assert not c.diagnoses and "no known hand-calculation mistake" in c.note and "1000" in c.note


def test_a_wrong_claim_fails_the_check_and_says_so_in_every_view():
    model, size = strided()
    result = rfcheck.check(model, size, claim_rf=19, advice=False)
    assert not result.passed
    assert "claim: 0 right, 1 wrong" in str(result)
    assert "**Claims:**" in result.markdown() and "❌ WRONG" in result.markdown()
    doc = result.to_dict()
    assert doc["schema_version"] == SCHEMA_VERSION == 2
    item = doc["claims"]["items"][0]
    assert item["claimed"] == [19, 19] and item["true"] == [5, 5] and item["matches"] is False
    assert item["mistakes"][0]["mistakes"] == ["a"]
    json.dumps(doc)
    assert "claims" not in rfcheck.check(model, size, advice=False).to_dict()  # additive: only when given


def test_per_layer_claims_name_the_first_diverging_layer_and_resolve_modules():
    """Dilated chain, by layer: body.0 3, body.1 7, body.2 9; the block ``body`` is body.2."""
    model, size = dilated()
    result = rfcheck.check(model, size, claims={"body": 9, "body.1": 11, "body.0": 3}, advice=False).claims
    assert [c.at for c in result.items] == ["body.0", "body.1", "body.2"]   # forward order
    assert result.first_diverging == "body.1"
    wrong = result.items[1]
    assert wrong.true == (7, 7)
    # 11 at body.1: the jump doubled there gives 7 (it shows only later); no mistake gives 11 at body.1
    assert not wrong.diagnoses
    assert "<- the first layer where your claims diverge" in result.text()


def test_a_per_layer_claim_reproduced_by_a_mistake():
    model, size = pooled()
    # at body.2: truth 8; (d) gives 4 + 2*1 = 6
    c = rfcheck.check(model, size, claims={"body.2": 6}, advice=False).claims.items[0]
    assert [d.codes for d in c.diagnoses] == [["d"]]


def test_the_hand_recurrence_does_not_apply_says_so():
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = conv(1, 2, stride=2, padding=1)
            self.up = nn.Upsample(scale_factor=2, mode="bilinear")
            self.c2 = conv(2, 2, padding=1)
            self.gap = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return self.gap(self.c2(self.up(self.c1(x))))

    result = rfcheck.check(Up(), (1, 16, 16), claim_rf=99, advice=False).claims
    (c,) = result.items
    assert not c.diagnoses and c.note.startswith(NOT_APPLICABLE)
    assert result.hand_note.startswith(NOT_APPLICABLE)


def test_non_square_claims_and_bad_values():
    model, size = dilated()
    assert claim(dilated, (9, 9)).passed
    with pytest.raises(RFCheckError, match="3 values for 2 spatial axes"):
        claim(dilated, (9, 9, 9))
    for bad in (0, -3, "abc", True, 2.5, "9x"):
        with pytest.raises(ValueError):
            parse_claim_value(bad)
    assert parse_claim_value("45x43") == (45, 43) and parse_claim_value(109) == (109,)
    assert parse_layer_claim("convblock3=45") == ("convblock3", (45,))
    with pytest.raises(ValueError):
        parse_layer_claim("convblock3")
    with pytest.raises(RFCheckError, match="no such layer or module; similar: body.0"):
        rfcheck.check(model, size, claims={"body.": 3}, advice=False)
    with pytest.raises(ValueError):
        rfcheck.check(model, size, claims=[("body", 3)], advice=False)


def test_no_claim_no_section():
    model, size = dilated()
    report = rfcheck.analyze(model, size)
    assert check_claims(report) is None
    assert rfcheck.check(model, size, advice=False).claims is None


def test_a_per_layer_claim_after_the_global_pool_that_gives_the_model_rf_is_told_so():
    # strided(): the GAP's own row counts its window (19); the model RF is 5
    model, size = strided()
    c = rfcheck.check(model, size, claims={"gap": 5}, advice=False).claims.items[0]
    assert c.true == (19, 19) and not c.matches
    assert "5 is the RF at the input of the global pool gap (the model RF" in c.note


def test_the_pair_search_stops_at_its_budget_and_says_so(monkeypatch):
    import rfcheck.claims as claims_module
    monkeypatch.setattr(claims_module, "BUDGET_S", 0.0)
    (c,) = claim(dilated, 1000).items
    assert "stopped after 0 s" in c.note


def test_flatten_and_linear_as_the_global_layer():
    """1x8x8: 3x3 p1 (r 3, n 8); max pool 2 (r 3 + 1 = 4, j 2, n 4); flatten + Linear reads the
    whole 4x4 map: the model RF is 4; with the window counted 4 + (4-1)*2 = 10: mistake (a)."""
    m = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 10))
    (c,) = rfcheck.check(m, (1, 8, 8), claim_rf=10, advice=False).claims.items
    assert c.true == (4, 4) and [d.codes for d in c.diagnoses] == [["a"]]


def test_summary_passes_the_claim_on():
    model, size = strided()
    result = rfcheck.summary(model, size, claim_rf=19)
    assert [d.codes for d in result.claims.items[0].diagnoses] == [["a"]]
    assert "claim: 0 right, 1 wrong" in repr(result)
