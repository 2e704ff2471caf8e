"""``rfcheck.summary``: the report a notebook shows (text, HTML, markdown), the compact layer
table, ``depth=``, ``verbose=`` and the leading batch dimension.

The model (``Small``) on a 3x8x8 input, derived by hand with the course's recurrences per axis
(``k_eff = d*(k-1)+1``, ``r_out = r_in + (k_eff-1)*j_in``, ``j_out = j_in*s``,
``start_out = start_in + ((k_eff-1)/2 - p)*j_in``, ``n_out = (n + 2p - k_eff)//s + 1``):

- c1.0 conv 3x3 p1, 3->4, no bias: RF 3, jump 1, start 0, 8x8; params 3*4*9 = 108;
  MACs 4*8*8 outputs x 27 taps = 6,912.  c1.1 BatchNorm2d(4): 2*4 = 8 params.  c1: 116.
- c2.0 conv 3x3 s2 p1, 4->8: RF 3 + 2*1 = 5, jump 2, start 0 + (1-1)*1 = 0, (8+2-3)//2+1 = 4;
  params 4*8*9 = 288; MACs 8*4*4 x 36 = 4,608.  BN 16.  c2: 304.
- c3.0 conv 3x3 d2 p2, 8->8: k_eff 5, RF 5 + 4*2 = 13, jump 2, start 0 + (2-2)*2 = 0, 4x4;
  params 8*8*9 = 576; MACs 8*4*4 x 72 = 9,216.  BN 16.  c3: 592.
- out.0 AdaptiveAvgPool2d(1): the global pool; its window counted, RF 13 + (4-1)*2 = 19, jump
  4*2 = 8, start at the map's centre 0 + (4-1)/2*2 = 3; out.1 Flatten; out.2 Linear 8->10:
  8*10+10 = 90 params, 80 MACs.  out: 90.
- total 116 + 304 + 592 + 90 = 1,102 params; MACs 6,912 + 4,608 + 9,216 + 80 = 20,816.
- model RF (at the input of the global pool): 13x13, jump 2x2; 19x19 with the pool's window.

MACs are counted for convs and linear layers (not BatchNorm), and the table prints them with
three significant digits (6.91k).  The compact table folds BN+ReLU into their conv, and the
Flatten into the pool row (it reads only the pool and changes no RF, jump or start).
"""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
import torch
from torch import nn

import rfcheck
from rfcheck.errors import RFCheckError
from rfcheck.render import compact_rows, depth_rows, flagged, layer_rows


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.c3 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=2, dilation=2, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.out = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        return self.out(self.c3(self.c2(self.c1(x))))


GOLDEN = """\
layer    type                       output    kernel         RF     RF min    jump    start    params    MACs    flags
-------  -------------------------  --------  -------------  -----  --------  ------  -------  --------  ------  -------
c1.0     Conv2d+BN+ReLU             4x8x8     3x3 p1x1       3x3    3x3       1x1     0,0      116       6.91k
c2.0     Conv2d+BN+ReLU             8x4x4     3x3 s2x2 p1x1  5x5    5x5       2x2     0,0      304       4.61k
c3.0     Conv2d+BN+ReLU             8x4x4     3x3 p2x2 d2x2  13x13  13x13     2x2     0,0      592       9.22k
out.0    AdaptiveAvgPool2d+Flatten  8                        19x19  19x19     8x8     3,3                        global
out.2    Linear                     10                       19x19  19x19     8x8     3,3      90        80

model: Small   input: 3x8x8
parameters: 1,102 total, 1,102 trainable   MACs: 20,816
counts: depthwise 0, depthwise-separable 0, dilated 1, transposed 0, max-pool 0, gap 1, linear 1
model RF: 13x13 (jump 2x2) at the input of the global pool out.0; 19x19 if the pool's window is counted; exact

blocks (at the end of each top-level module):
block    type        output    RF     jump    params
-------  ----------  --------  -----  ------  --------
c1       Sequential  4x8x8     3x3    1x1     116
c2       Sequential  8x4x4     5x5    2x2     304
c3       Sequential  8x4x4     13x13  2x2     592
out      Sequential  10        19x19  8x8     90

rules: 1 passed, 1 failed
  [FAIL] min_rf: model RF 13x13 at the input of the global pool out.0 < 14
         layers: out.0
  [PASS] max_params: parameters 1,102 <= 2,000"""

DROPPED = ("note: input size (1, 3, 8, 8): dropped the leading batch dimension 1; rfcheck analyses one sample, "
           "3x8x8 (c1.0 is a Conv2d with 3 input channels)")


@pytest.fixture(scope="module")
def small():
    return rfcheck.summary(Small(), (3, 8, 8), min_rf=14, max_params=2000, advice=False)


def test_summary_text_golden(small):
    assert str(small) == GOLDEN
    assert repr(small) == GOLDEN          # the notebook's plain-text display: the report, not a dataclass dump
    assert small.passed is False and [r.rule for r in small.failed] == ["min_rf"]


def test_report_repr_is_one_short_line(small):
    # 12 traced layers: 3 x (conv, BN, ReLU) + pool, flatten, linear
    assert repr(small.report) == "<Report Small 3x8x8: RF 13x13 exact, 1,102 params, 12 layers>"


def test_leading_batch_dim_is_dropped_and_said():
    s = rfcheck.summary(Small(), (1, 3, 8, 8), min_rf=14, max_params=2000, advice=False)
    assert s.report.input_size == (3, 8, 8)
    assert str(s) == DROPPED + "\n" + GOLDEN
    assert s.notes == [DROPPED[len("note: "):]]
    assert "dropped the leading batch dimension 1" in s._repr_markdown_()
    assert "dropped the leading batch dimension 1" in s._repr_html_()


def test_a_larger_batch_is_dropped_too():
    assert rfcheck.summary(Small(), (8, 3, 8, 8), advice=False).report.input_size == (3, 8, 8)


def test_ambiguous_batch_dim_is_an_error():
    # (3, 3, 8, 8) for a net whose first conv reads 3 channels: a batch of 3, or 3 channels of what?
    with pytest.raises(RFCheckError, match=r"ambiguous.*c1\.0 \(Conv2d\) reads 3 channel.*\(3, 8, 8\)"):
        rfcheck.summary(Small(), (3, 3, 8, 8))


def test_a_size_without_batch_dim_is_kept():
    class OneChannel(nn.Module):  # (1, 8, 8): one channel of 8x8, and 1 is the conv's in_channels
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.c(x)
    s = rfcheck.summary(OneChannel(), (1, 8, 8))
    assert s.report.input_size == (1, 8, 8) and s.notes == []


def test_compact_view_folds_bn_and_relu(small):
    rows = compact_rows(small.report)
    assert [r.name for r in rows] == ["c1.0", "c2.0", "c3.0", "out.0", "out.2"]
    assert [[m.name for m in r.members] for r in rows][:3] == [["c1.0", "c1.1", "c1.2"], ["c2.0", "c2.1", "c2.2"],
                                                               ["c3.0", "c3.1", "c3.2"]]
    assert [r.params for r in rows] == [116, 304, 592, 0, 90]
    # every layer is in exactly one row, in order
    assert [m.name for r in rows for m in r.members] == [l.name for l in small.report.layers]


def test_verbose_view_lists_every_layer(small):
    text = small.table(verbose=True)
    assert len(text.splitlines()) == 2 + 12
    assert "c1.1     BatchNorm2d" in text and "c3.2     ReLU" in text
    assert "BatchNorm2d" not in small.table()
    assert "BatchNorm2d" in str(small.view(verbose=True))


class Flagged(nn.Module):
    """conv -> BN -> ReLU (folded), then a stride-2 transposed conv -> BN -> ReLU: the
    transposed conv's output is phase-dependent, and so are the BN and ReLU after it, so
    none of them may be folded away."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.a_bn = nn.BatchNorm2d(4)
        self.a_relu = nn.ReLU()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2)
        self.up_bn = nn.BatchNorm2d(4)
        self.up_relu = nn.ReLU()

    def forward(self, x):
        return self.up_relu(self.up_bn(self.up(self.a_relu(self.a_bn(self.a(x))))))


def test_compact_view_never_hides_a_flagged_layer():
    report = rfcheck.analyze(Flagged(), (3, 8, 8))
    phase = [l.name for l in report.layers if l.phase_dependent]
    assert phase[:1] == ["up"] and {"up_bn", "up_relu"} <= set(phase)
    rows = compact_rows(report)
    assert [r.name for r in rows] == ["a", "up", "up_bn", "up_relu"]
    assert rows[0].type == "Conv2d+BN+ReLU"
    heads = {r.members[0].name for r in rows}
    for r in rows:
        for m in r.members[1:]:
            assert not flagged(m)
    assert all(l.name in heads for l in report.layers if flagged(l))
    assert all("phase" in r.flags for r in rows[1:])


def test_compact_view_keeps_unknown_and_not_exact_layers():
    class Odd(nn.Module):  # torch.flip has no rule (as tests/models.py Flip): UNKNOWN, then not exact
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            return torch.relu(self.bn(torch.flip(self.c(x), dims=(3,))))
    report = rfcheck.analyze(Odd(), (3, 8, 8))
    assert any(l.unknown for l in report.layers)
    rows = compact_rows(report)
    assert [r.name for r in rows] == [l.name for l in report.layers]   # nothing after the unknown op folds
    assert any("UNKNOWN" in r.flags for r in rows) and any("not exact" in r.flags for r in rows)


def test_depth_1_rows_are_the_top_level_blocks(small):
    rows = depth_rows(small.report, 1)
    blocks = small.report.blocks
    assert [r.name for r in rows] == [b.name for b in blocks] == ["c1", "c2", "c3", "out"]
    assert [r.params for r in rows] == [116, 304, 592, 90]           # summed by hand above
    assert [r.macs for r in rows] == [6912, 4608, 9216, 80]
    assert [(r.shown.rf, r.shown.output_shape) for r in rows] == [(b.rf, b.output_shape) for b in blocks]
    assert rows[3].flags == "global at out.0"                        # the pool inside is not hidden
    table = small.table(depth=1)
    assert table.splitlines()[0].startswith("module ")
    assert "c2        Sequential  8x4x4               5x5" in table


def test_depth_2_is_one_row_per_layer_here(small):
    # Small's modules at depth 2 are its 12 layers; the view shows the module names
    rows = layer_rows(small.report, depth=2)
    assert [r.name for r in rows] == [l.name for l in small.report.layers]


def test_depth_on_summary_and_bad_views():
    s = rfcheck.summary(Small(), (3, 8, 8), depth=1)
    assert str(s).splitlines()[0].startswith("module ") and s.depth == 1
    with pytest.raises(ValueError, match="contradict"):
        rfcheck.summary(Small(), (3, 8, 8), depth=1, verbose=True)
    with pytest.raises(ValueError, match="depth"):
        rfcheck.summary(Small(), (3, 8, 8), depth=0)


VOID = {"br", "img", "hr", "meta", "input", "link", "col", "wbr"}


class Checker(HTMLParser):
    """Well-formedness (every tag closed in order) and what the tables hold."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.tables: list[dict] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.imgs: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.imgs.append(attrs)
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag == "table":
            self.tables.append({"class": attrs.get("class"), "rows": 0, "cells": []})
        if tag == "tr" and "tbody" in self.stack:
            self.tables[-1]["rows"] += 1
            self.tables[-1]["cells"].append([])

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        if "td" in self.stack and "tbody" in self.stack:
            self.tables[-1]["cells"][-1].append(data)


def parse(html: str) -> Checker:
    c = Checker()
    c.feed(html)
    c.close()
    assert not c.errors and not c.stack, (c.errors, c.stack)
    return c


def test_html_is_well_formed_and_holds_the_tables(small):
    html = small._repr_html_()
    c = parse(html)
    assert "<script" not in html and "http://" not in html and "https://" not in html
    layers = [t for t in c.tables if t["class"] == "layers"]
    rules = [t for t in c.tables if t["class"] == "rules"]
    assert len(layers) == 1 and layers[0]["rows"] == len(compact_rows(small.report)) == 5
    assert [cells[0] for cells in layers[0]["cells"]] == ["c1.0", "c2.0", "c3.0", "out.0", "out.2"]
    assert rules[0]["rows"] == 2
    text = "".join(c.text)
    assert "FAIL" in text and "PASS" in text
    assert [cells[1] for cells in rules[0]["cells"]] == ["FAIL", "PASS"]
    assert "model RF: 13x13" in text


def test_html_views_and_picture(small):
    assert parse(small.html(verbose=True)).tables[-1]["rows"] == 12
    assert parse(small.html(depth=1)).tables[-1]["rows"] == 4
    assert "<img" not in small.html(picture=False)
    c = parse(small.html())
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not c.imgs
    else:  # rfcheck.plot.plot(report) returns a Figure: inlined as a PNG, nothing fetched
        assert len(c.imgs) == 1 and c.imgs[0]["src"].startswith("data:image/png;base64,")


def test_html_escapes_names():
    s = rfcheck.summary(Small(), (3, 8, 8), name="<b>net</b> & co", max_params=10, advice=False)
    html = s._repr_html_()
    assert "<b>net</b>" not in html and "&lt;b&gt;net&lt;/b&gt; &amp; co" in html
    parse(html)


def test_markdown_has_the_rules_table(small):
    md = small._repr_markdown_()
    assert md.startswith("## rfcheck: Small (input 3x8x8)\n")
    assert "| rule | result | value | limit | details |" in md
    assert "| `min_rf` | ❌ FAIL | 13x13 | 14 |" in md
    assert "| `max_params` | ✅ pass | 1,102 | 2,000 |" in md
    assert "Conv2d+BN+ReLU" in md and "BatchNorm2d" not in md        # the compact layer table


def test_summary_passes_rules_and_claims_through():
    s = rfcheck.summary(Small(), (3, 8, 8), min_rf=13)
    assert s.passed and s.result("min_rf").value == (13, 13)
    with pytest.raises(TypeError, match="unknown rule"):
        rfcheck.summary(Small(), (3, 8, 8), min_rff=13)
    assert rfcheck.summary(Small(), (3, 8, 8), claim_rf=None).passed   # no claim: nothing checked
    # the student's 19 is the GAP window counted (13 + (4-1)*2 = 19, above): a wrong claim fails
    s = rfcheck.summary(Small(), (3, 8, 8), claim_rf=19, advice=False)
    assert not s.passed and s.claims is not None
    assert "claimed 19, true 13" in str(s) and "claimed 19, true 13" in s._repr_html_()
    parse(s._repr_html_())
