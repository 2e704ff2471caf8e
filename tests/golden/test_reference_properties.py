"""Property tests: rfcheck against the gradient reference (tests/reference.py) on random 1D and
2D stacks and two-branch graphs.

For every layer we compare the analyzer's output shape with a real CPU forward, and its RF,
RF min, jump, start and phase flag with the boxes the reference measures for one full period
of output positions near the centre of the map (the phase period divides the product of the
upsampling factors so far, which is what we measure over).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil
from typing import Optional

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rfcheck import analyze
from tests.reference import Clipped, ReferenceChain
from tests.reference import size as box_size

CAP = {1: 4000, 2: 160}      # largest input per axis
DOWN_CAP = {1: 48, 2: 8}     # largest product of strides per axis
UP_CAP = {1: 9, 2: 4}        # largest product of upsampling factors per axis

# CI runs a fixed, reproducible set of examples; RFCHECK_EXPLORE=20 runs 20x as many random ones
EXPLORE = float(os.environ.get("RFCHECK_EXPLORE", "0"))
SETTINGS = dict(deadline=None, derandomize=not EXPLORE,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])


def n(examples: int) -> int:
    return int(examples * EXPLORE) if EXPLORE else examples


# -- strategies ---------------------------------------------------------------------------------
def _axes(nd, lo, hi):
    return st.tuples(*[st.integers(lo, hi)] * nd)


@st.composite
def _pool_params(draw, nd, kmax=4):
    k = draw(_axes(nd, 1, kmax))
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    return k, p


@st.composite
def op_spec(draw, nd: int):
    kinds = ["conv", "conv", "maxpool", "avgpool", "convT", "upsample", "relu", "pad"]
    if nd == 2:
        kinds += ["shuffle", "unshuffle"]
    kind = draw(st.sampled_from(kinds))
    if kind == "conv":
        return dict(op="conv", k=draw(_axes(nd, 1, 5)), s=draw(_axes(nd, 1, 3)), p=draw(_axes(nd, 0, 2)),
                    d=draw(_axes(nd, 1, 3)), depthwise=draw(st.booleans()), cout=draw(st.integers(2, 4)))
    if kind == "maxpool":
        k, p = draw(_pool_params(nd))
        return dict(op="maxpool", k=k, s=draw(_axes(nd, 1, 3)), p=p, d=draw(_axes(nd, 1, 3)),
                    ceil=draw(st.booleans()))
    if kind == "avgpool":
        k, p = draw(_pool_params(nd))
        return dict(op="avgpool", k=k, s=draw(_axes(nd, 1, 3)), p=p, ceil=draw(st.booleans()),
                    count_include_pad=draw(st.booleans()))
    if kind == "convT":
        s, d = draw(_axes(nd, 1, 3)), draw(_axes(nd, 1, 3))
        op = tuple(draw(st.integers(0, max(ss, dd) - 1)) for ss, dd in zip(s, d))
        return dict(op="convT", k=draw(_axes(nd, 1, 5)), s=s, p=draw(_axes(nd, 0, 2)), op_=op, d=d,
                    depthwise=draw(st.booleans()), cout=draw(st.integers(2, 4)))
    if kind == "upsample":
        mode = draw(st.sampled_from(["nearest", "linear"]))
        ac = draw(st.booleans()) if mode == "linear" else None
        return dict(op="upsample", mode=mode, ac=ac, f=draw(st.tuples(*[st.sampled_from([2, 3])] * nd)))
    if kind == "relu":
        return dict(op="relu")
    if kind == "pad":
        return dict(op="pad", pad=draw(st.tuples(*[st.integers(0, 3)] * (2 * nd))),
                    value=draw(st.sampled_from([0.0, 0.5, -1.0])))
    if kind == "shuffle":
        return dict(op="shuffle", r=2)
    return dict(op="unshuffle", r=draw(st.sampled_from([2, 3])))


@st.composite
def same_spec(draw, nd: int):
    """Stride-1 ops that keep the spatial size (odd effective kernels, 'same' padding)."""
    kind = draw(st.sampled_from(["conv", "conv", "maxpool", "avgpool", "convT", "relu"]))
    if kind == "relu":
        return dict(op="relu")
    if kind in ("maxpool", "avgpool"):
        k = tuple(draw(st.sampled_from([1, 3, 5])) for _ in range(nd))
        extra = dict(ceil=False, d=(1,) * nd) if kind == "maxpool" else dict(ceil=False, count_include_pad=True)
        return dict(op=kind, k=k, s=(1,) * nd, p=tuple((kk - 1) // 2 for kk in k), **extra)
    k, d = draw(_axes(nd, 1, 5)), draw(_axes(nd, 1, 3))
    d = tuple(2 if dd * (kk - 1) % 2 else dd for kk, dd in zip(k, d))
    p = tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, d))
    base = dict(k=k, s=(1,) * nd, p=p, d=d, depthwise=draw(st.booleans()), cout=None)
    if kind == "conv":
        return dict(op="conv", **base)
    return dict(op="convT", op_=(0,) * nd, **base)


# -- building models ------------------------------------------------------------------------------
@dataclass
class Built:
    layers: list
    c_in: int
    nd: int
    ups: list = field(default_factory=list)      # per layer: product of upsampling factors so far, per axis
    ac: list = field(default_factory=list)       # per layer: axes that went through align_corners=True
    bound: list = field(default_factory=list)    # per layer: (R, J, O) crude geometry per axis, input size guess


class _Geo:
    """Per-axis bookkeeping while building: caps on strides/upsampling and a crude RF bound
    used only to pick an input size (never to check anything)."""

    def __init__(self, nd):
        self.nd = nd
        self.down = [1] * nd
        self.up = [1] * nd
        self.ac = [False] * nd
        self.ac_used = False
        self.R = [Fraction(1)] * nd
        self.J = [Fraction(1)] * nd
        self.O = [Fraction(0)] * nd

    def window(self, i, k_eff, s, p):
        self.R[i] += (k_eff - 1) * self.J[i]
        self.O[i] += p * self.J[i]
        self.J[i] *= s
        self.down[i] *= s

    def upsample(self, i, f, k_eff=1, p=0):
        old = self.J[i]
        self.J[i] = old / f
        self.R[i] += (k_eff - 1) * self.J[i] + old
        self.O[i] += p * self.J[i] + old
        self.up[i] *= f


def _down_ok(g, i, s):
    return g.down[i] * s <= DOWN_CAP[g.nd]


def _up_ok(g, i, f):
    return g.up[i] * f <= UP_CAP[g.nd]


def build(specs, nd: int, c: int, geo: Optional[_Geo] = None, out: Optional[Built] = None, same_c=False):
    """Modules for ``specs``; strides/upsampling that would exceed the caps become 1."""
    conv = (nn.Conv1d, nn.Conv2d)[nd - 1]
    convT = (nn.ConvTranspose1d, nn.ConvTranspose2d)[nd - 1]
    maxpool = (nn.MaxPool1d, nn.MaxPool2d)[nd - 1]
    avgpool = (nn.AvgPool1d, nn.AvgPool2d)[nd - 1]
    g = geo or _Geo(nd)
    b = out or Built([], c, nd)
    a1 = (lambda t: t[0]) if nd == 1 else (lambda t: tuple(t))

    def add(m):
        b.layers.append(m)
        b.ups.append(list(g.up))
        b.ac.append(list(g.ac))
        b.bound.append((list(g.R), list(g.J), list(g.O)))

    for sp in specs:
        op = sp["op"]
        if op == "conv":
            s = tuple(ss if _down_ok(g, i, ss) else 1 for i, ss in enumerate(sp["s"]))
            cout = c if (sp["depthwise"] or same_c or sp["cout"] is None) else sp["cout"]
            groups = c if sp["depthwise"] else 1
            m = conv(c, cout, a1(sp["k"]), stride=a1(s), padding=a1(sp["p"]), dilation=a1(sp["d"]), groups=groups)
            for i in range(nd):
                g.window(i, sp["d"][i] * (sp["k"][i] - 1) + 1, s[i], sp["p"][i])
            c = cout
            add(m)
        elif op == "maxpool":
            s = tuple(ss if _down_ok(g, i, ss) else 1 for i, ss in enumerate(sp["s"]))
            m = maxpool(a1(sp["k"]), stride=a1(s), padding=a1(sp["p"]), dilation=a1(sp["d"]), ceil_mode=sp["ceil"])
            for i in range(nd):
                g.window(i, sp["d"][i] * (sp["k"][i] - 1) + 1, s[i], sp["p"][i])
            add(m)
        elif op == "avgpool":
            s = tuple(ss if _down_ok(g, i, ss) else 1 for i, ss in enumerate(sp["s"]))
            m = avgpool(a1(sp["k"]), stride=a1(s), padding=a1(sp["p"]), ceil_mode=sp["ceil"],
                        count_include_pad=sp["count_include_pad"])
            for i in range(nd):
                g.window(i, sp["k"][i], s[i], sp["p"][i])
            add(m)
        elif op == "convT":
            s = tuple(ss if _up_ok(g, i, ss) else 1 for i, ss in enumerate(sp["s"]))
            opad = tuple(min(o, max(ss, dd) - 1) for o, ss, dd in zip(sp["op_"], s, sp["d"]))
            cout = c if (sp["depthwise"] or same_c or sp["cout"] is None) else sp["cout"]
            groups = c if sp["depthwise"] else 1
            m = convT(c, cout, a1(sp["k"]), stride=a1(s), padding=a1(sp["p"]), output_padding=a1(opad),
                      dilation=a1(sp["d"]), groups=groups)
            for i in range(nd):
                g.upsample(i, s[i], sp["d"][i] * (sp["k"][i] - 1) + 1, sp["p"][i] + opad[i])
            c = cout
            add(m)
        elif op == "upsample":
            f = tuple(ff if _up_ok(g, i, ff) else 1 for i, ff in enumerate(sp["f"]))
            if all(ff == 1 for ff in f):
                add(nn.ReLU())
                continue
            ac = bool(sp["ac"]) and not g.ac_used
            mode = sp["mode"] if sp["mode"] == "nearest" else ("linear", "bilinear")[nd - 1]
            if mode == "nearest":
                m = nn.Upsample(scale_factor=a1(tuple(float(x) for x in f)), mode="nearest")
            else:
                m = nn.Upsample(scale_factor=a1(tuple(float(x) for x in f)), mode=mode, align_corners=ac)
            for i in range(nd):
                if f[i] > 1:
                    g.upsample(i, f[i])
                    if ac:
                        g.ac[i] = True
            g.ac_used = g.ac_used or ac
            add(m)
        elif op == "relu":
            add(nn.ReLU())
        elif op == "pad":
            if nd == 1:
                m = nn.ConstantPad1d(tuple(sp["pad"]), sp["value"])
                g.O[0] += (sp["pad"][0] + sp["pad"][1]) * g.J[0]
            else:
                m = nn.ZeroPad2d(tuple(sp["pad"]))  # (left, right, top, bottom)
                g.O[1] += (sp["pad"][0] + sp["pad"][1]) * g.J[1]
                g.O[0] += (sp["pad"][2] + sp["pad"][3]) * g.J[0]
            add(m)
        elif op == "shuffle":
            r = sp["r"]
            if not all(_up_ok(g, i, r) for i in range(nd)):
                add(nn.ReLU())
                continue
            if c % (r * r):
                add(conv(c, r * r, 1))
                c = r * r
            add(nn.PixelShuffle(r))
            c //= r * r
            for i in range(nd):
                g.J[i] /= r
                g.up[i] *= r
            b.ups[-1] = list(g.up)
        elif op == "unshuffle":
            r = sp["r"]
            if not all(_down_ok(g, i, r) for i in range(nd)):
                add(nn.ReLU())
                continue
            for i in range(nd):
                g.window(i, r, r, 0)
            add(nn.PixelUnshuffle(r))
            c *= r * r
        else:
            raise AssertionError(op)
    return b, g, c


def input_size_guess(bound, nd, k):
    """Input extent per axis from the crude RF bound; refined by retrying on Clipped."""
    sizes = []
    for i in range(nd):
        r = max((R[i] for R, _, _ in bound), default=1)
        j = max((J[i] for _, J, _ in bound), default=1)
        o = max((O[i] for _, _, O in bound), default=0)
        sizes.append(int(ceil(3 * r + 2 * o + 4 * k * j)) + 24)
    return sizes


# -- running one example --------------------------------------------------------------------------
def real_shapes(model_layers, shape):
    """Output shape (no batch) of every layer from a real float32 CPU forward."""
    x = torch.zeros((1,) + tuple(shape))
    out = []
    with torch.no_grad():
        for m in model_layers:
            x = m(x)
            out.append(tuple(x.shape[1:]))
    return out


def positions_for(spatial, ups, ac, nd):
    """Output units o_c + t (t < k) near the centre, o_c a multiple of the period bound, per
    axis.  Returns (o_c, periods, k) or None if the map is too small."""
    periods = [1 if ac[i] else ups[i] for i in range(nd)]
    k = positions_k(ups, ac, nd)
    oc = []
    for i in range(nd):
        p = periods[i]
        base = max(0, (spatial[i] // 2 - k // 2) // p * p)
        if base + k > spatial[i]:
            return None
        oc.append(base)
    return oc, periods, k


def frac_box(centre: Fraction, rf: int):
    half = Fraction(rf - 1, 2)
    return centre - half, centre + half


@dataclass
class Measured:
    """Reference measurements for one layer."""
    boxes: list          # per position: tuple of per-axis boxes
    oc: list
    periods: list
    ac: list


def measure(chain: ReferenceChain, i: int, ups, ac, nd) -> Measured:
    spatial = chain.spatial(i)
    got = positions_for(spatial, ups, ac, nd)
    if got is None:
        raise Clipped(f"layer {i}: output {spatial} too small for the positions")
    oc, periods, k = got
    boxes = [[None] * nd for _ in range(k)]
    for a in range(nd):
        # axis a at o_c + t; the other axes summed over k units (more than one period), so that
        # the unit's phase on another axis cannot make it depend on nothing
        pos = [tuple(oc[b] + t if b == a else (oc[b], oc[b] + k) for b in range(nd)) for t in range(k)]
        for t, bx in enumerate(chain.boxes(i, pos)):
            boxes[t][a] = bx[a]
    return Measured([tuple(b) for b in boxes], oc, periods, ac)


def chain_k(b: Built) -> int:
    return max(positions_k(b.ups[i], b.ac[i], b.nd) for i in range(len(b.layers)))


def positions_k(ups, ac, nd):
    periods = [1 if ac[i] else ups[i] for i in range(nd)]
    return max(max(periods) + 1, 6 if any(ac) else 2)


def expected_axis(m: Measured, a: int):
    """From the boxes along axis a: (sizes over one period, box at o_c, box at o_c + period)."""
    p = m.periods[a]
    boxes = [bx[a] for bx in m.boxes]
    return boxes[:p], boxes[0], boxes[p] if p < len(boxes) else None


def check_layer_against(layer, m: Measured, nd: int, where: str, rf_min_paths=None):
    """The analyzer's numbers for one layer against the reference boxes.

    ``rf_min_paths``: for graphs, per path the reference measurements of that path alone;
    rf_min must be the smallest size along one of the paths with the smallest RF."""
    expected_flag = False
    flag_known = True
    for a in range(nd):
        jump, start, rf, rf_min = layer.jump[a], layer.start[a], layer.rf[a], layer.rf_min[a]
        msg = f"{where} axis {a}: analyzer rf={rf} rf_min={rf_min} jump={jump} start={start}"
        if m.ac[a]:
            # align_corners=True: the phase period is the whole map; only bounds are checkable here
            flag_known = False
            sizes = [box_size(bx[a]) for bx in m.boxes if bx[a] is not None]
            assert all(rf_min <= s <= rf for s in sizes), f"{msg}; reference sizes near the centre {sizes}"
            continue
        period, b0, bp = expected_axis(m, a)
        sizes = [box_size(bx) for bx in period if bx is not None]
        msg += f"; reference boxes over one period from o={m.oc[a]}: {period}, next period starts {bp}"
        if not sizes:  # no unit depends on the input (e.g. a stride that only samples empty phases)
            assert rf == 0 and rf_min == 0 and start is None, msg
            expected_flag = True
            continue
        assert rf == max(sizes), msg
        if rf_min_paths is None:
            assert rf_min == min(sizes), msg
        else:
            # per path: (max, min) of sizes over the period; shortest = smallest max
            stats = []
            for pm in rf_min_paths:
                ps = [box_size(bx[a]) for bx in pm.boxes[:pm.periods[a]] if bx[a] is not None]
                stats.append((max(ps), min(ps)))
            best = min(s[0] for s in stats)
            allowed = {s[1] for s in stats if s[0] == best}
            assert rf_min in allowed, f"{msg}; per path (max, min) sizes {stats}"
        # jump: the boxes repeat one period later, shifted by period * jump
        shift = m.periods[a] * jump
        assert shift.denominator == 1, f"{msg}: period {m.periods[a]} * jump is not whole"
        if b0 is None:
            assert bp is None, msg
        else:
            assert bp == (b0[0] + int(shift), b0[1] + int(shift)), msg
        # start: unit o_c is in phase 0 (o_c is a multiple of the period)
        if b0 is None:
            assert start is None, msg
        else:
            assert start == Fraction(b0[0] + b0[1], 2) - m.oc[a] * jump, msg
        # uniform boxes: one size, centres on the grid start + o*jump.  Exactly then the layer
        # must not be flagged phase dependent, and its box formula must reproduce every one
        uniform = len(set(sizes)) == 1 and all(bx is not None for bx in period) and all(
            Fraction(bx[0] + bx[1], 2) - Fraction(period[0][0] + period[0][1], 2) == t * jump
            for t, bx in enumerate(period))
        expected_flag = expected_flag or not uniform
        if uniform:
            for t, bx in enumerate(bx[a] for bx in m.boxes):
                o = m.oc[a] + t
                assert frac_box(start + o * jump, rf) == bx, f"{msg}; unit {o}"
    if flag_known:
        assert layer.phase_dependent == expected_flag, \
            f"{where}: phase_dependent={layer.phase_dependent}, reference says {expected_flag}"


def _layer_by_name(report, name):
    for l in report.layers:
        if l.name == name:
            return l
    raise AssertionError(f"no layer {name!r} in {[l.name for l in report.layers]}")


def run_chain(specs, nd, c, check_formula=False):
    b, _, _ = build(specs, nd, c)
    assume(b.layers)
    model = nn.Sequential(*b.layers).eval()
    k = chain_k(b)
    n = [max(8, s) for s in input_size_guess(b.bound, nd, k)]
    for _attempt in range(4):
        n = [min(CAP[nd], x) for x in n]
        shape = (c,) + tuple(n)
        try:
            real = real_shapes(b.layers, shape)
        except RuntimeError:
            real = None
        if real is not None and all(all(s >= 1 for s in r) for r in real):
            try:
                chain = ReferenceChain(b.layers, shape, batch=k)
                measured = [measure(chain, i, b.ups[i], b.ac[i], nd) for i in range(len(b.layers))]
                break
            except Clipped:
                pass
        if all(x >= CAP[nd] for x in n):
            assume(False)
        n = [int(x * 1.7) + 8 for x in n]
    else:
        assume(False)
    report = analyze(model, input_size=shape)
    assert report.params.total == sum(p.numel() for p in model.parameters())
    names = [l.name for l in report.layers]
    assert names == [str(i) for i in range(len(b.layers))], names
    for i, layer in enumerate(report.layers):
        where = f"layer {i} ({type(b.layers[i]).__name__}) of {model} on input {shape}"
        assert layer.output_shape == real[i], f"{where}: {layer.output_shape} != real {real[i]}"
        assert layer.exact and not layer.unknown, where
        if check_formula:
            check_formula_where_flag_false(layer, measured[i], nd, where)
        else:
            check_layer_against(layer, measured[i], nd, where)
    assert report.rf.size == report.layers[-1].rf
    return report


def check_formula_where_flag_false(layer, m: Measured, nd, where):
    """The contract of the phase flag: where a layer is not phase dependent, the box of every
    output unit o is centre start + o*jump, size rf."""
    if layer.phase_dependent:
        return
    for a in range(nd):
        for t, bx in enumerate(bx[a] for bx in m.boxes):
            o = m.oc[a] + t
            pred = frac_box(layer.start[a] + o * layer.jump[a], layer.rf[a])
            assert pred == bx, (f"{where} axis {a}: phase_dependent is False, jump={layer.jump[a]}, "
                                f"start={layer.start[a]}, rf={layer.rf[a]} predict {pred} for unit {o}, "
                                f"reference box {bx}")


# -- chain tests ----------------------------------------------------------------------------------
@settings(max_examples=n(60), **SETTINGS)
@given(specs=st.lists(op_spec(1), min_size=1, max_size=7), c=st.integers(2, 4))
def test_random_1d_stacks(specs, c):
    run_chain(specs, 1, c)


@settings(max_examples=n(40), **SETTINGS)
@given(specs=st.lists(op_spec(2), min_size=1, max_size=5), c=st.integers(2, 4))
def test_random_2d_stacks(specs, c):
    run_chain(specs, 2, c)


# -- two-branch graphs ----------------------------------------------------------------------------
class TwoBranch(nn.Module):
    """``only`` ("a" or "b") detaches the other branch: the reference then measures the
    dependency along one path while shapes stay those of the full graph."""

    def __init__(self, a: nn.Module, b: nn.Module, how: str, only: Optional[str] = None):
        super().__init__()
        self.a, self.b, self.how, self.only = a, b, how, only

    def forward(self, x):
        ya, yb = self.a(x), self.b(x)
        if self.only == "a":
            yb = yb.detach()
        elif self.only == "b":
            ya = ya.detach()
        return ya + yb if self.how == "add" else torch.cat([ya, yb], 1)


def run_graph(pre, br_a, br_b, how, post, nd, c):
    built, geo, c1 = build(pre, nd, c)
    a_b, _, ca = build(br_a, nd, c1, geo=_copy_geo(geo), same_c=True)
    b_b, _, cb = build(br_b, nd, c1, geo=_copy_geo(geo), same_c=True)
    assert ca == cb == c1
    seq_a, seq_b = nn.Sequential(*a_b.layers), nn.Sequential(*b_b.layers)
    merge = TwoBranch(seq_a, seq_b, how)
    # geometry bound of the merge: the larger branch
    ga = a_b.bound[-1] if a_b.bound else (list(geo.R), list(geo.J), list(geo.O))
    gb = b_b.bound[-1] if b_b.bound else (list(geo.R), list(geo.J), list(geo.O))
    for i in range(nd):
        geo.R[i] = max(geo.R[i], ga[0][i], gb[0][i])
    built.layers.append(merge)
    built.ups.append(list(geo.up))
    built.ac.append(list(geo.ac))
    built.bound.append((list(geo.R), list(geo.J), list(geo.O)))
    mi = len(built.layers) - 1
    built, _, _ = build(post, nd, c1 * (2 if how == "cat" else 1), geo=geo, out=built)
    layers = built.layers
    model = nn.Sequential(*layers).eval()
    path_a = layers[:mi] + [TwoBranch(seq_a, seq_b, how, only="a")] + layers[mi + 1:]
    path_b = layers[:mi] + [TwoBranch(seq_a, seq_b, how, only="b")] + layers[mi + 1:]
    k = chain_k(built)
    n = [max(8, s) for s in input_size_guess(built.bound, nd, k)]
    for _attempt in range(4):
        n = [min(CAP[nd], x) for x in n]
        shape = (c,) + tuple(n)
        try:
            real = real_shapes(layers, shape)
        except RuntimeError:
            real = None
        if real is not None and all(all(s >= 1 for s in r) for r in real):
            try:
                ms = []
                for lay in (layers, path_a, path_b):
                    chain = ReferenceChain(lay, shape, batch=k)
                    ms.append([measure(chain, i, built.ups[i], built.ac[i], nd) for i in range(len(lay))])
                break
            except Clipped:
                pass
        if all(x >= CAP[nd] for x in n):
            assume(False)
        n = [int(x * 1.7) + 8 for x in n]
    else:
        assume(False)
    full, along_a, along_b = ms
    report = analyze(model, input_size=shape)
    assert report.params.total == sum(p.numel() for p in model.parameters())
    for i in range(len(layers)):
        if i == mi:
            inside = [l for l in report.layers if l.name.startswith(f"{mi}.")]
            assert inside, [l.name for l in report.layers]
            layer = inside[-1]
            assert layer.name in (f"{mi}.add", f"{mi}.cat"), layer.name
        else:
            layer = _layer_by_name(report, str(i))
        where = f"layer {i} ({layer.name}) of {model} on input {shape}"
        assert layer.output_shape == real[i], f"{where}: {layer.output_shape} != real {real[i]}"
        assert layer.exact and not layer.unknown, where
        check_layer_against(layer, full[i], nd, where,
                            rf_min_paths=None if i < mi else [along_a[i], along_b[i]])


def _copy_geo(g: _Geo) -> _Geo:
    h = _Geo(g.nd)
    h.down, h.up, h.ac, h.ac_used = list(g.down), list(g.up), list(g.ac), g.ac_used
    h.R, h.J, h.O = list(g.R), list(g.J), list(g.O)
    return h


@settings(max_examples=n(40), **SETTINGS)
@given(pre=st.lists(op_spec(1), max_size=3), br_a=st.lists(same_spec(1), min_size=1, max_size=3),
       br_b=st.lists(same_spec(1), max_size=3), how=st.sampled_from(["add", "cat"]),
       post=st.lists(op_spec(1), max_size=2), c=st.integers(2, 4))
def test_two_branch_1d(pre, br_a, br_b, how, post, c):
    run_graph(pre, br_a, br_b, how, post, 1, c)


@settings(max_examples=n(15), **SETTINGS)
@given(pre=st.lists(op_spec(2), max_size=2), br_a=st.lists(same_spec(2), min_size=1, max_size=2),
       br_b=st.lists(same_spec(2), max_size=2), how=st.sampled_from(["add", "cat"]),
       post=st.lists(op_spec(2), max_size=2), c=st.integers(2, 4))
def test_two_branch_2d(pre, br_a, br_b, how, post, c):
    run_graph(pre, br_a, br_b, how, post, 2, c)


# -- the reference itself, on hand-derived cases ----------------------------------------------------
def test_reference_on_hand_derived_boxes():
    from tests.reference import chain_boxes, unit_boxes
    # conv k=3 p=1: unit o reads o-1 .. o+1
    assert unit_boxes(nn.Conv1d(2, 3, 3, padding=1), (2, 50), [(10,)]) == [((9, 11),)]
    # max pool 2: unit o reads 2o .. 2o+1 (all of the window, not just the argmax)
    assert unit_boxes(nn.MaxPool1d(2), (2, 50), [(10,)]) == [((20, 21),)]
    # conv transpose k=3 s=2 p=0: output o = 2i + t, t in 0..2: o=20 <- i in {9, 10}; o=21 <- i=10
    assert unit_boxes(nn.ConvTranspose1d(2, 2, 3, stride=2), (2, 50), [(20,), (21,)]) == [((9, 10),), ((10, 10),)]
    # linear x3, align_corners False: src = (o + 1/2)/3 - 1/2; o=31 is exactly input 10
    assert unit_boxes(nn.Upsample(scale_factor=3, mode="linear"), (2, 50), [(30,), (31,), (32,)]) == \
        [((9, 10),), ((10, 10),), ((10, 11),)]
    # 2D: conv (3, 5) p=1, then max pool 2: unit (5, 5) reads rows 9..12 and cols 9..14
    got = chain_boxes([nn.Conv2d(2, 2, (3, 5), padding=1), nn.MaxPool2d(2, ceil_mode=True), nn.ReLU(inplace=True)],
                      (2, 40, 40), [[(10, 10)], [(5, 5)], [(5, 5)]])
    assert got == [[((9, 11), (9, 13))], [((9, 12), (9, 14))], [((9, 12), (9, 14))]]
    # close to the border: refused
    with pytest.raises(Clipped):
        ReferenceChain([nn.Conv1d(1, 1, 5, padding=2)], (1, 20)).boxes(0, [(1,)])


def test_reference_copy_leaves_model_alone():
    from tests.reference import positive_copy
    m = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(inplace=True), nn.MaxPool2d(2)).train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    p = positive_copy(m)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert m.training and m[2].inplace
    assert all((q > 0).all() for n, q in p.named_parameters() if n.endswith("weight"))


# -- the phase flag contract (kept last: a failure here is a documented rfcheck issue) --------------
@settings(max_examples=n(40), **SETTINGS)
@given(specs=st.lists(op_spec(1), min_size=1, max_size=5), c=st.integers(2, 4))
def test_box_formula_where_not_phase_dependent_1d(specs, c):
    """Where Layer.phase_dependent is False, every unit's box is start + o*jump +- (rf-1)/2."""
    run_chain(specs, 1, c, check_formula=True)


@pytest.mark.parametrize("up", [nn.Upsample(scale_factor=2, mode="nearest"),
                                nn.Upsample(scale_factor=2, mode="linear")])
def test_box_formula_after_upsampling(up):
    """Minimal case of the above: one 1D upsampling by 2."""
    model = nn.Sequential(up)
    layer = analyze(model, (1, 40)).layers[0]
    chain = ReferenceChain([up], (1, 40), batch=2)
    boxes = chain.boxes(0, [(20,), (21,)])
    if not layer.phase_dependent:
        for o, (bx,) in zip((20, 21), boxes):
            assert frac_box(layer.start[0] + o * layer.jump[0], layer.rf[0]) == bx, \
                (f"phase_dependent False, jump {layer.jump[0]}, start {layer.start[0]}, rf {layer.rf[0]}: "
                 f"unit {o} has box {bx}")
