"""Channel provenance: every channel range of a concat carries its own geometry through slices,
split/chunk/narrow/unbind, pointwise ops, pools, grouped and depthwise convs and pixel
shuffle, and is merged only where channels really mix (a full conv, a Linear, a reduction).

Before: ``torch.cat([x, conv5(x)], 1)[:, :1]`` reported RF 5, exact; the output is x, RF 1."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import rfcheck
from tests.oracle import rf_box, rf_sizes


class Cat(nn.Module):
    """x (RF 1) beside conv5(x) (RF 5), then ``pick``."""

    def __init__(self, pick):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 5, padding=2)
        self.pick = pick

    def forward(self, x):
        return self.pick(self, torch.cat([x, self.conv(x)], 1))


PICKS = {
    "slice x": (lambda m, y: y[:, :1], 1), "slice conv": (lambda m, y: y[:, 1:], 5),
    "index x": (lambda m, y: y[:, 0:1] * 1, 1), "int index x": (lambda m, y: y[:, 0].unsqueeze(1), 1),
    "chunk x": (lambda m, y: y.chunk(2, 1)[0], 1), "split conv": (lambda m, y: y.split([1, 1], 1)[1], 5),
    "narrow x": (lambda m, y: y.narrow(1, 0, 1), 1), "unbind x": (lambda m, y: y.unbind(1)[0].unsqueeze(1), 1),
    "relu then slice x": (lambda m, y: torch.relu(y)[:, :1], 1),
    "pool then slice x": (lambda m, y: nn.functional.avg_pool1d(y, 3, 1, 1)[:, :1], 3),
    "both": (lambda m, y: y, 5),
}


def test_each_pick_against_the_oracle():
    for name, (pick, hand) in PICKS.items():
        m = Cat(pick)
        assert max(rf_sizes(m, (1, 12), margin=8)) == hand, name
        r = rfcheck.analyze(m, (1, 12))
        assert r.exact and r.rf.size == (hand,), name


def test_a_depthwise_conv_keeps_the_channels_apart():
    # depthwise 3x3 after the concat: x's channel 1 + 2 = 3, conv's 5 + 2 = 7; a full conv mixes them
    m = Cat(lambda self, y: self.dw(y)[:, :1])
    m.dw = nn.Conv1d(2, 2, 3, padding=1, groups=2)
    assert max(rf_sizes(m, (1, 12), margin=8)) == 3
    assert rfcheck.analyze(m, (1, 12)).rf.size == (3,)
    m = Cat(lambda self, y: self.full(y)[:, :1])
    m.full = nn.Conv1d(2, 2, 3, padding=1)
    assert max(rf_sizes(m, (1, 12), margin=8)) == 7
    assert rfcheck.analyze(m, (1, 12)).rf.size == (7,)


def test_pixel_shuffle_after_a_concat():
    # 4 channels of x (RF 1) and 4 of a 5x5 conv (RF 5); PixelShuffle(2): output channel 0 is x's,
    # channel 1 the conv's; keeping channel 0 keeps RF 1
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 5, padding=2)

        def forward(self, x):
            return nn.functional.pixel_shuffle(torch.cat([x, self.conv(x)], 1), 2)[:, :1]

    assert rf_box(M(), (4, 6, 6), margin=6) == (1, 1)
    r = rfcheck.analyze(M(), (4, 6, 6))
    assert r.exact and r.rf.size == (1, 1)


class Shuffle(nn.Module):
    """Two channels of RF 1 and two of RF 5, a channel shuffle (view, transpose, reshape), then
    channel ``c`` alone."""

    def __init__(self, c: int):
        super().__init__()
        self.c = c
        self.conv = nn.Conv1d(1, 1, 5, padding=2)

    def forward(self, x):
        y = torch.cat([x, x, self.conv(x), self.conv(x)], 1)          # RF 1, 1, 5, 5
        y = y.view(1, 2, 2, -1).transpose(1, 2).reshape(1, 4, -1)     # channel shuffle: 1, 5, 1, 5
        return y[:, self.c:self.c + 1]


@pytest.mark.parametrize("c,rf", [(0, 1), (1, 5), (2, 1), (3, 5)])
def test_a_channel_shuffle_keeps_each_channels_rf(c, rf):
    m = Shuffle(c)
    assert rf_box(m, (1, 12), margin=6) == (rf,)
    r = rfcheck.analyze(m, (1, 12))
    assert r.exact and r.rf.size == (rf,)


def test_a_regrouping_of_the_channels_it_cannot_follow_makes_a_later_slice_a_bound():
    class Regroup(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 5, padding=2)

        def forward(self, x):
            y = torch.cat([x, x, x, self.conv(x), self.conv(x), self.conv(x)], 1)   # RF 1, 1, 1, 5, 5, 5
            return y.view(1, 4, 18)[:, :1]  # (6 channels of 12 into rows of 18: no pieces fit)

    r = rfcheck.analyze(Regroup(), (1, 12))
    assert not r.exact and {w.code for w in r.warnings} & {"RF104", "RF105"}


# -- random graphs against the oracle -------------------------------------------------------------------------
OPS = st.lists(st.tuples(st.sampled_from(["conv", "dw", "cat", "cat", "slice", "slice", "add", "relu", "pool"]),
                         st.integers(0, 100), st.integers(0, 100), st.integers(0, 100)), min_size=2, max_size=8)


class Graph(nn.Module):
    """A random graph over 1D maps of 2 channels: every op keeps the length (same padding)."""

    def __init__(self, plan):
        super().__init__()
        self.plan, self.convs = [], nn.ModuleList()
        chans = [2]
        for op, a, b, c in plan:
            i, j = a % len(chans), b % len(chans)
            if op in ("conv", "dw"):
                k, d = (1, 3, 5)[c % 3], 1 + c % 2
                cin = chans[i]
                cout = cin if op == "dw" else 1 + c % 3
                self.convs.append(nn.Conv1d(cin, cout, k, padding=d * (k - 1) // 2, dilation=d,
                                            groups=cin if op == "dw" else 1))
                self.plan.append(("conv", i, len(self.convs) - 1))
                chans.append(cout)
            elif op == "cat":
                self.plan.append(("cat", i, j))
                chans.append(chans[i] + chans[j])
            elif op == "slice" and chans[i] > 1:
                lo = c % chans[i]
                hi = lo + 1 + (a + c) % (chans[i] - lo)
                self.plan.append(("slice", i, (lo, hi)))
                chans.append(hi - lo)
            elif op == "add" and chans[i] == chans[j]:
                self.plan.append(("add", i, j))
                chans.append(chans[i])
            elif op in ("relu", "pool"):
                self.plan.append((op, i, None))
                chans.append(chans[i])

    def forward(self, x):
        vals = [x]
        for op, i, arg in self.plan:
            v = vals[i]
            if op == "conv":
                vals.append(self.convs[arg](v))
            elif op == "cat":
                vals.append(torch.cat([v, vals[arg]], 1))
            elif op == "slice":
                vals.append(v[:, arg[0]:arg[1]])
            elif op == "add":
                vals.append(v + vals[arg])
            elif op == "relu":
                vals.append(torch.relu(v))
            else:
                vals.append(nn.functional.avg_pool1d(v, 3, 1, 1))
        return vals[-1] * 1.0  # always one recorded op at the end


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_random_channel_graphs_match_the_oracle(plan):
    m = Graph(plan)
    r = rfcheck.analyze(m, (2, 9))
    if not r.exact:
        assert r.warnings  # never silently not exact
        return
    truth = max(rf_sizes(m, (2, 9), margin=16))
    assert r.rf.size == (truth,)


CONV = st.tuples(st.sampled_from([1, 3, 5]), st.integers(1, 2))  # kernel, dilation


class CatThenSlice(nn.Module):
    """Two branches of convs (ca and cb channels), their concat, pointwise/depthwise/pool ops on
    it, then a slice of its channels."""

    def __init__(self, a, b, ca, cb, post, lo, hi):
        super().__init__()

        def chain(convs, c):
            return nn.Sequential(*[nn.Conv1d(1 if i == 0 else c, c, k, padding=d * (k - 1) // 2, dilation=d)
                                   for i, (k, d) in enumerate(convs)])
        self.a, self.b = chain(a, ca), chain(b, cb)
        c = ca + cb
        self.post = nn.Sequential(*[nn.Conv1d(c, c, 3, padding=1, groups=c) if p == "dw" else
                                    nn.ReLU() if p == "relu" else nn.AvgPool1d(3, 1, 1) for p in post])
        self.lo, self.hi = lo, hi

    def forward(self, x):
        return self.post(torch.cat([self.a(x), self.b(x)], 1))[:, self.lo:self.hi]


@settings(max_examples=60, deadline=None)
@given(st.lists(CONV, min_size=1, max_size=3), st.lists(CONV, min_size=1, max_size=3), st.integers(1, 2),
       st.integers(1, 2), st.lists(st.sampled_from(["dw", "relu", "pool"]), max_size=2), st.integers(0, 3),
       st.integers(1, 4))
def test_random_concat_slices_match_the_oracle(a, b, ca, cb, post, lo, width):
    lo = lo % (ca + cb)
    hi = min(ca + cb, lo + width)
    m = CatThenSlice(a, b, ca, cb, post, lo, hi)
    r = rfcheck.analyze(m, (1, 9))
    assert r.exact
    assert r.rf.size == (max(rf_sizes(m, (1, 9), margin=16)),)
