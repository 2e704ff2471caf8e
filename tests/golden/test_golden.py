"""Golden values for hand-built mini-graphs and real models.

Every expected number is derived by hand in the comment next to it (recurrences: with the
effective kernel k' = d*(k-1) + 1, r_out = r_in + (k'-1)*j_in, j_out = j_in*s) or measured
with the gradient reference of tests/reference.py; none is copied from rfcheck's output.
"""
from __future__ import annotations

import copy
import os
import sys
import warnings
from fractions import Fraction

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rfcheck import SCHEMA_VERSION, RFCheckError, TraceError, analyze, register_function
from tests.models import Flip
from tests.reference import unit_boxes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

F1, F2 = Fraction(1), Fraction(2)


def pair(v):
    return (v, v)


# -- per-rule golden values -----------------------------------------------------------------
@pytest.mark.parametrize("layer, rf, jump, start, out", [
    # conv k=3 p=1: unit o reads o-1..o+1
    (nn.Conv2d(3, 4, 3, padding=1), 3, 1, 0, 32),
    # k=3 d=2: k' = 5, padding 2 keeps the size; unit 0 reads -2..2
    (nn.Conv2d(3, 4, 3, padding=2, dilation=2), 5, 1, 0, 32),
    # k=5 s=2 p=0: unit 0 reads 0..4, centre 2; out = (32-5)//2 + 1 = 14
    (nn.Conv2d(3, 4, 5, stride=2), 5, 2, 2, 14),
    # 'same' with an even kernel k=4: PyTorch pads 1 left, 2 right: unit 0 reads -1..2, centre 0.5
    (nn.Conv2d(3, 4, 4, padding="same"), 4, 1, Fraction(1, 2), 32),
    # max pool 2: unit 0 reads 0..1, centre 0.5
    (nn.MaxPool2d(2), 2, 2, Fraction(1, 2), 16),
    # max pool k=3 s=2 p=1 ceil_mode: window -1..1, centre 0; out = ceil((32+2-3)/2)+1 = 17, but the
    # last window would start in the right padding (2*16-1 = 31 < 32, so it stays): 17
    (nn.MaxPool2d(3, 2, 1, ceil_mode=True), 3, 2, 0, 17),
    # max pool k=2 dilation 2: reads 0 and 2, k' = 3, centre 1; out = (32-3)//2 + 1 = 15
    (nn.MaxPool2d(2, 2, dilation=2), 3, 2, 1, 15),
    # avg pool 3 s=1 p=1
    (nn.AvgPool2d(3, 1, 1), 3, 1, 0, 32),
    # LP pool 2: like avg pool 2
    (nn.LPPool2d(2, 2), 2, 2, Fraction(1, 2), 16),
    # zero pad 2: output unit 0 is input -2
    (nn.ZeroPad2d(2), 1, 1, -2, 36),
    # pixel unshuffle 2: unit 0 reads 0..1
    (nn.PixelUnshuffle(2), 2, 2, Fraction(1, 2), 16),
    # adaptive avg pool 32 -> 8: windows of 4 with stride 4
    (nn.AdaptiveAvgPool2d(8), 4, 4, Fraction(3, 2), 8),
])
def test_single_layer(layer, rf, jump, start, out):
    r = analyze(nn.Sequential(layer), (3, 32, 32))
    l = r.layers[0]
    assert l.rf == pair(rf) and l.rf_min == pair(rf)
    assert l.jump == pair(Fraction(jump)) and l.start == pair(Fraction(start))
    assert l.output_shape[1:] == pair(out)
    assert l.exact and not l.unknown


def test_trace_hides_torch_performance_warnings():
    # torch warns that padding="same" with an even kernel copies the input: a cost of the real
    # kernel, noise when the analyzer only traces on meta tensors
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = analyze(nn.Sequential(nn.Conv2d(3, 4, 4, padding="same")), (3, 32, 32))
    assert r.layers[0].rf == (4, 4)


def test_adaptive_pool_uneven_windows():
    # 10 -> 4: windows floor(o*10/4) .. ceil((o+1)*10/4)-1 = 0..2, 2..4, 5..7, 7..9: sizes 3;
    # centres 1, 3, 6, 8: not on a grid of step 2.5 from 1 -> phase dependent, jump 10/4
    l = analyze(nn.Sequential(nn.AdaptiveMaxPool1d(4)), (2, 10)).layers[0]
    assert l.rf == (3,) and l.jump == (Fraction(5, 2),) and l.start == (F1,)
    assert l.phase_dependent


def test_transposed_conv_after_strided_conv():
    # conv k3 s2 p1: RF 3, jump 2, start 0.  convT k4 s2 p1: output o = 2i - 1 + k, k = 0..3, so
    # o = 2m reads i in {m-1, m} (k = 1, 3) and o = 2m+1 reads {m, m+1} (k = 0, 2): two adjacent
    # units of the conv output, RF 3 + 1*2 = 5 everywhere, mean jump 2/2 = 1.  o = 0 reads conv units
    # -1, 0 -> input -3..1 (start -1); o = 1 and o = 2 both read 0, 1 -> -1..3: centres -1, 1, 1, 3
    # are not on a grid of step 1, so the layer is phase dependent (checkerboard).
    m = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ConvTranspose2d(8, 4, 4, 2, 1))
    r = analyze(m, (3, 32, 32))
    t = r.layers[1]
    assert t.rf == pair(5) and t.rf_min == pair(5) and t.jump == pair(F1) and t.start == pair(Fraction(-1))
    assert t.output_shape == (4, 32, 32) and t.phase_dependent
    assert r.counts["transposed"] == 1


def test_transposed_conv_phase_dependent():
    # convT k3 s2 p0 (1D): o = 2i + k: o = 2m reads i in {m-1, m} (k = 2, 0), o = 2m+1 reads {m}
    # (k = 1): RF 2 on even units, 1 on odd ones, jump 1/2
    l = analyze(nn.Sequential(nn.ConvTranspose1d(2, 2, 3, stride=2)), (2, 20)).layers[0]
    assert l.rf == (2,) and l.rf_min == (1,) and l.jump == (Fraction(1, 2),)
    assert l.phase_dependent and l.output_shape == (2, 41)


def test_upsampling_jumps_are_fractions():
    # conv s2 (jump 2), nearest x2 (jump 1), bilinear x2 (jump 1/2): unit o of the bilinear
    # output (align_corners False) samples (o + 1/2)/2 - 1/2 -> two neighbours unless exact
    m = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.Upsample(scale_factor=2),
                      nn.Upsample(scale_factor=2, mode="bilinear"))
    r = analyze(m, (3, 32, 32))
    assert [l.jump[0] for l in r.layers] == [F2, F1, Fraction(1, 2)]
    # nearest x2 after jump 2: units 2m and 2m+1 both read unit m: RF stays 3, centres m*2 for
    # both -> not on a grid of step 1: phase dependent
    assert r.layers[1].rf == pair(3) and r.layers[1].phase_dependent
    assert r.layers[2].output_shape == (4, 64, 64)  # 32 -> 16 -> 32 -> 64


def test_pixel_shuffle_inverts_unshuffle():
    # unshuffle then shuffle (only per-element ops between) is the identity on positions: the
    # conv's RF 3 comes back; with a 1x1 conv between, channels (= phases) are mixed and unit o
    # reads the whole 2-block of o // 2: RF 3 + 1 = 4
    a = nn.Sequential(nn.Conv2d(2, 2, 3), nn.PixelUnshuffle(2), nn.ReLU(), nn.PixelShuffle(2))
    b = nn.Sequential(nn.Conv2d(2, 2, 3), nn.PixelUnshuffle(2), nn.Conv2d(8, 8, 1), nn.PixelShuffle(2))
    assert analyze(a, (2, 34, 34)).layers[-1].rf == pair(3)
    assert analyze(b, (2, 34, 34)).layers[-1].rf == pair(4)


def test_non_square_kernels_and_input():
    # (1,7) then (7,1) then max pool (2,1) on 20x36: H: 1, 7, 8 (pool adds 1*1); W: 7, 7, 7;
    # jumps (1,1), (1,1), (2,1)
    m = nn.Sequential(nn.Conv2d(3, 8, (1, 7), padding=(0, 3)), nn.Conv2d(8, 8, (7, 1), padding=(3, 0)),
                      nn.MaxPool2d((2, 1)))
    r = analyze(m, (3, 20, 36))
    assert [l.rf for l in r.layers] == [(1, 7), (7, 7), (8, 7)]
    assert r.layers[2].jump == (F2, F1)
    assert [l.output_shape for l in r.layers] == [(8, 20, 36), (8, 20, 36), (8, 10, 36)]
    assert r.rf.size == (8, 7)


def test_conv1d():
    # k5 s2 p2: RF 5, jump 2, start 0, length 64.  k3 d4 p4: k' = 9, RF 5 + 8*2 = 21, jump 2;
    # unit 0 reads units -4, 0, 4 (centres -8, 0, 8): start 0
    m = nn.Sequential(nn.Conv1d(2, 4, 5, stride=2, padding=2), nn.Conv1d(4, 4, 3, dilation=4, padding=4))
    r = analyze(m, (2, 128))
    assert [l.rf for l in r.layers] == [(5,), (21,)]
    assert [l.jump for l in r.layers] == [(F2,), (F2,)]
    assert [l.start for l in r.layers] == [(0,), (0,)]
    assert [l.output_shape for l in r.layers] == [(4, 64), (4, 64)]
    assert r.counts["dilated"] == 1


def test_conv3d():
    # T x H x W.  conv 3 p1: 3,3,3.  max pool (1,2,2): T 3 (k 1), H/W 3 + 1 = 4, jump (1,2,2).
    # conv 3 p0: T 3 + 2 = 5, H/W 4 + 2*2 = 8.  Shapes: 8x32x32, 8x16x16, 6x14x14
    m = nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.MaxPool3d((1, 2, 2)), nn.Conv3d(4, 4, 3))
    r = analyze(m, (2, 8, 32, 32))
    assert [l.rf for l in r.layers] == [(3, 3, 3), (3, 4, 4), (5, 8, 8)]
    assert r.layers[2].jump == (F1, F2, F2)
    assert [l.output_shape for l in r.layers] == [(4, 8, 32, 32), (4, 8, 16, 16), (4, 6, 14, 14)]


# -- graphs: branches, functional ops, sharing ------------------------------------------------
class Functional(nn.Module):
    """Written only with torch functions: conv, max pool, interpolate, cat, conv, mean."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.w2 = nn.Parameter(torch.randn(8, 16, 3, 3))

    def forward(self, x):
        a = F.relu(F.conv2d(x, self.w, padding=1))
        b = F.interpolate(F.max_pool2d(a, 2), scale_factor=2)
        return F.conv2d(torch.cat([a, b], 1), self.w2, padding=2, dilation=2).mean((2, 3))


def test_functional_model():
    # conv: 3.  max pool 2: 4, jump 2, start 0.5.  nearest x2: unit o reads pool unit o // 2, RF 4,
    # jump 1.  cat: max 4, min 3 (the conv branch).  dilated conv k' = 5: max 4 + 4 = 8, min 3 + 4
    # = 7.  mean over H, W: the global reduction, model RF taken at its input: 8.  A unit seeing
    # the whole 32-map: conv2d:2 unit 0 reaches input -3 (cat unit -2: pool unit -1: -3..0), unit
    # 31 reaches 34 (cat unit 33: conv branch 32..34): -3..34 = 38.
    r = analyze(Functional(), (3, 32, 32))
    names = [l.name for l in r.layers]
    assert names == ["conv2d", "relu", "max_pool2d", "interpolate", "cat", "conv2d:2", "mean"]
    by = {l.name: l for l in r.layers}
    assert by["max_pool2d"].rf == pair(4) and by["max_pool2d"].jump == pair(F2)
    assert by["interpolate"].rf == pair(4) and by["interpolate"].jump == pair(F1)
    assert by["cat"].rf == pair(4) and by["cat"].rf_min == pair(3)
    assert by["conv2d:2"].rf == pair(8) and by["conv2d:2"].rf_min == pair(7)
    assert r.rf.size == pair(8) and r.rf.at == "mean" and r.rf.with_global == pair(38)
    assert r.params.total == 8 * 3 * 9 + 8 * 16 * 9
    # the two branches' centres differ (0 vs 0.5): named in a warning
    assert any(w.code == "RF201" and "misaligned" in w.message and "relu" in w.message and "interpolate" in w.message
               for w in r.warnings)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))

    def forward(self, x):
        x = self.stem(x)
        return x + self.body(x)


def test_residual_add_keeps_max_and_min():
    # stem 3; body 3 -> 5 -> 7; add: max 7 (body), min 3 (the skip)
    r = analyze(Residual(), (3, 16, 16))
    add = r.layers[-1]
    assert add.name == "add" and add.rf == pair(7) and add.rf_min == pair(3)
    assert r.rf.size == pair(7) and r.rf.min == pair(3)
    assert set(add.inputs) == {"stem", "body.2"}


class Misaligned(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(3, 4, 2, stride=2)

    def forward(self, x):
        return self.a(x) + self.b(x)


def test_misaligned_merge_is_named():
    # a: unit 0 reads -1..1 (centre 0); b: unit 0 reads 0..1 (centre 0.5): same jump 2, centres differ
    r = analyze(Misaligned(), (3, 16, 16))
    w = [w.message for w in r.warnings if w.code == "RF201" and "misaligned" in w.message]
    assert w and "branch a" in w[0] and "branch b" in w[0]
    # union per unit: -1..1 and 0..1 -> 3
    assert r.layers[-1].rf == pair(3)


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.c(self.c(self.c(x)))


def test_weight_tied_module_called_three_times():
    # one conv applied 3 times: RF 3, 5, 7; its 4*4*9 + 4 = 148 parameters counted once
    r = analyze(Tied(), (4, 16, 16))
    assert [l.name for l in r.layers] == ["c", "c:2", "c:3"]
    assert [l.rf for l in r.layers] == [pair(3), pair(5), pair(7)]
    assert r.params.total == 148
    assert sum(l.params for l in r.layers) == 148


def test_shared_parameter_between_modules():
    a, b = nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3)
    b.weight = a.weight  # tied: 144 weights + 2 biases of 4
    r = analyze(nn.Sequential(a, b), (4, 16, 16))
    assert r.params.total == 144 + 4 + 4


def test_unused_parameters_are_reported():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.spare = nn.Conv2d(3, 4, 3), nn.Linear(10, 10)

        def forward(self, x):
            return self.used(x)
    r = analyze(M(), (3, 16, 16))
    assert r.params.total == 112 + 110
    assert "spare.weight" in r.params.unused and any(w.code == "RF301" and "not used" in w.message for w in r.warnings)


# -- never silently wrong ------------------------------------------------------------------------
def test_unknown_op_is_reported_by_name():
    r = analyze(nn.Sequential(nn.Conv2d(3, 4, 3), Flip(2), nn.Conv2d(4, 4, 3)), (3, 16, 16))
    flip = r.layer("1")
    assert flip.unknown and not flip.exact
    assert not r.layer("2").exact and r.layer("0").exact
    assert not r.exact and not r.rf.exact
    assert any(w.code == "RF101" and w.layer == "1" and "flip" in w.message and "unknown" in w.message
               for w in r.warnings)


def test_registered_rule_replaces_unknown():
    # a rule for flip: per-position identity on the non-flipped axes; on the flipped axis the
    # geometry reverses, which we model conservatively here as a whole-map window
    calls = []

    @register_function("flip")
    def flip_rule(call):
        calls.append(call.name)
        call.note("test rule")
        return call.merge(call.out)
    try:
        r = analyze(nn.Sequential(nn.Conv2d(3, 4, 3), Flip(2)), (3, 16, 16))
        assert len(calls) == 1 and not r.layer("1").unknown and r.exact
    finally:
        from rfcheck.ops import FUNCTION_RULES
        FUNCTION_RULES.pop("flip", None)


def test_partial_global_pool_is_warned():
    # conv k3 on 32 -> 30; AvgPool2d(16) -> (30-16)//16 + 1 = 1: one unit, window 16 of 30
    r = analyze(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AvgPool2d(16)), (3, 32, 32))
    assert any(w.code == "RF202" and "not a global pool" in w.message for w in r.warnings)


def test_se_gating_is_flagged(torchvision):
    r = analyze(torchvision.models.mobilenet_v3_small(), (3, 224, 224))
    assert r.rf.gated and any(w.code == "RF203" and "squeeze-and-excitation" in w.message for w in r.warnings)


def test_input_too_small_raises_with_layer_name():
    m = nn.Sequential(nn.Conv2d(3, 4, 5), nn.Conv2d(4, 4, 5))
    with pytest.raises(TraceError, match=r"input too small.*1 \(Conv2d\)"):
        analyze(m, (3, 6, 6))


def test_bad_arguments():
    with pytest.raises(RFCheckError, match="nn.Module"):
        analyze(lambda x: x, (3, 8, 8))
    with pytest.raises(RFCheckError, match="input size"):
        analyze(nn.Conv2d(3, 3, 1), (3, 0, 8))


def test_example_inputs_equal_input_size():
    m = Residual()
    a = analyze(m, inputs=torch.randn(2, 3, 16, 16)).to_dict()
    b = analyze(m, (3, 16, 16)).to_dict()
    assert a["layers"] == b["layers"] and a["rf"] == b["rf"]


def test_model_is_untouched():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Dropout(0.5),
                      nn.Conv2d(4, 2, 3)).train()
    m[4].weight.requires_grad_(False)
    before = copy.deepcopy(m.state_dict())
    analyze(m, (3, 16, 16))
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats too
    assert all(mod.training for mod in m.modules())
    assert m[2].inplace and not m[4].weight.requires_grad and m[0].weight.requires_grad
    assert all(p.device.type == "cpu" and p.grad is None for p in m.parameters())
    assert not m._forward_hooks and not m[0]._forward_pre_hooks
    m.eval()
    analyze(m, (3, 16, 16))
    assert not any(mod.training for mod in m.modules())


def test_huge_input_and_deep_model_need_no_memory(torchvision):
    # 4096 x 4096 through resnet18 would take ~20 GB of activations in float32 on the CPU; on
    # the meta device it takes none.  layer4 output: 4096 / 32 = 128
    r = analyze(torchvision.models.resnet18(), (3, 4096, 4096))
    assert r.layer("layer4.1.relu:2").output_shape == (512, 128, 128)
    # 1000 convs k3 p1: RF 1 + 2*1000
    deep = nn.Sequential(*[nn.Conv2d(2, 2, 3, padding=1) for _ in range(1000)])
    assert analyze(deep, (2, 16, 16)).rf.size == pair(2001)


def test_json_round_trip():
    import json
    r = analyze(Residual(), (3, 16, 16))
    d = json.loads(r.to_json())
    assert d["schema_version"] == SCHEMA_VERSION
    assert d["rf"]["size"] == [7, 7] and d["params"]["total"] == r.params.total
    assert d["layers"][0]["start"] == [0, 0] and d["layers"][0]["jump"] == [1, 1]


# -- real models ------------------------------------------------------------------------------------
def test_vgg16_features(torchvision):
    # 2 convs (3, 5), pool (6, j2); 2 convs (+4 +4 = 14), pool (16, j4); 3 convs (+8*3 = 40), pool
    # (44, j8); 3 convs (+16*3 = 92), pool (100, j16); 3 convs (+32*3 = 196), pool (212, j32)
    r = analyze(torchvision.models.vgg16().features, (3, 224, 224))
    pools = [l for l in r.layers if l.type == "MaxPool2d"]
    assert [l.rf[0] for l in pools] == [6, 16, 44, 100, 212]
    assert [l.jump[0] for l in pools] == [2, 4, 8, 16, 32]
    assert r.rf.size == pair(212) and r.layers[-1].output_shape == (512, 7, 7)
    assert r.counts["max_pool"] == 5


def test_alexnet_features(torchvision):
    # conv 11 s4 p2: 11, j4; pool 3 s2: 11 + 2*4 = 19, j8; conv 5 p2: 19 + 4*8 = 51; pool 3 s2:
    # 51 + 2*8 = 67, j16; 3 convs 3: 67 + 3*2*16 = 163; pool 3 s2: 163 + 2*16 = 195, j32
    r = analyze(torchvision.models.alexnet().features, (3, 224, 224))
    assert r.rf.size == pair(195) and r.rf.jump == pair(Fraction(32))
    assert r.layers[-1].output_shape == (256, 6, 6)


def test_resnet50(torchvision):
    # conv1 7 s2: 7, j2; maxpool 3 s2: 11, j4.  Bottlenecks add 2*j per 3x3 conv (stride in the
    # 3x3, torchvision's v1.5): layer1 3 blocks +8 each: 35; layer2 first +8 (then j8): 43, 3 more
    # +16 each: 91; layer3 first +16 (j16): 107, 5 more +32: 267; layer4 first +32 (j32): 299, 2
    # more +64: 427.  Shortest path: the skips and 1x1 downsamples add nothing: 11.  Through the
    # 7x7 average pool a unit sees 427 + 6*32 = 619.  Parameters: torchvision's documented 25,557,032.
    r = analyze(torchvision.models.resnet50(), (3, 224, 224))
    assert r.rf.size == pair(427) and r.rf.at == "avgpool" and r.rf.min == pair(11)
    assert r.rf.with_global == pair(619) and r.rf.jump == pair(Fraction(32))
    assert r.params.total == 25_557_032
    assert analyze(torchvision.models.resnet50(), (3, 224, 224), rf_at="layer3").rf.size == pair(267)


def test_resnet18(torchvision):
    # like resnet50 with basic blocks of two 3x3 convs: 11; layer1 4 convs +8: 43; layer2 +8 (j8)
    # 51, 3 convs +16: 99; layer3 +16 (j16) 115, 3 convs +32: 211; layer4 +32 (j32) 243, 3 convs
    # +64: 435.  Parameters: torchvision's documented 11,689,512.
    r = analyze(torchvision.models.resnet18(), (3, 224, 224))
    assert r.rf.size == pair(435) and r.params.total == 11_689_512


def test_mobilenet_v2_counts(torchvision):
    # 17 inverted residual blocks; the first has no expansion: every block has one 3x3
    # depthwise conv followed by a 1x1 projection -> 17 depthwise-separable pairs
    r = analyze(torchvision.models.mobilenet_v2(), (3, 224, 224))
    assert r.counts["depthwise"] == 17 and r.counts["depthwise_separable"] == 17
    assert r.counts["gap"] == 1 and r.params.total == 3_504_872


# -- the bundled design against hand derivation and the gradient reference ---------------------------
def _net():
    sys.path.insert(0, ROOT)
    from models.net import Net
    return Net()


def test_bundled_net_hand_derivation():
    # RF (RF += (k_eff - 1) * jump): c1: 3 convs k3 -> 3, 5, 7 (the third s2: j2).  c2: residual
    # dw 3x3 -> 11, residual dw 3x3 dilated 2 (k_eff 5) -> 19, residual dw -> 23, dw s2 -> 27 (j4).
    # c3: residual dw dilated 2 -> 27 + 4*4 = 43, residual dw -> 51, dw (stride 1) -> 59.
    # c4: residual dw -> 67; 1x1s add nothing.  GAP on 8x8: the model RF 67 at its input; a unit
    # through the GAP sees 67 + 7*4 = 95.  RF min takes every shortcut: 7 after c1, 7 + 2*2 = 11
    # after c2's strided dw, 11 + 2*4 = 19 after c3's last dw (no shortcut), 19 at c4's output.
    # Params: c1 3*32*9 + 32*32*9 + 32*56*9 = 26,208 + BN 2*(32+32+56) = 240 -> 26,448.
    # c2: 3 x (56*9 + 56*56 + BN 4*56) = 11,592; 56*9 + 56*96 + BN 2*56 + 2*96 = 6,184 -> 17,776.
    # c3: 2 x (96*9 + 96*96 + BN 4*96) = 20,928; 96*9 + 96*128 + BN 2*96 + 2*128 = 13,600 -> 34,528.
    # c4: 128*9 + 128*128 + BN 4*128 = 18,048.  out: 128*10 + 10 = 1,290.  Total 98,090.
    r = analyze(_net(), (3, 32, 32))
    assert r.rf.size == pair(67) and r.rf.with_global == pair(95) and r.rf.jump == pair(Fraction(4))
    assert r.layer("c4.0.add").rf_min == pair(19)
    assert r.params.total == 98_090 == sum(p.numel() for p in _net().parameters())
    assert [b.params for b in r.blocks] == [26_448, 17_776, 34_528, 18_048, 1_290]
    # eight depthwise 3x3 + pointwise 1x1 pairs (three in c2's shortcuts and c2's strided one, two
    # in c3's shortcuts and c3's last, one in c4), two dilated convs, one global pool
    assert r.counts["depthwise_separable"] == 8 and r.counts["dilated"] == 2 and r.counts["gap"] == 1


def test_bundled_net_against_gradient_reference():
    # measure the central unit of c4's output on a large input and compare its box with
    # start + o*jump +- (rf - 1)/2 from rfcheck's c4 row
    net = _net()
    trunk = nn.Sequential(net.c1, net.c2, net.c3, net.c4)
    size = 200                         # c4 map 50x50; unit 25 reads ~ 100-33 .. 100+33, far from borders
    row = analyze(net, (3, size, size)).layer("c4.0.add")  # c4 output (its residual add)
    o = 25
    (box_h, box_w), = unit_boxes(trunk, (3, size, size), [(o, o)])
    for axis, box in enumerate((box_h, box_w)):
        centre = row.start[axis] + o * row.jump[axis]
        half = Fraction(row.rf[axis] - 1, 2)
        assert (centre - half, centre + half) == box
    assert row.rf == pair(67)


def test_stride1_transposed_conv_is_no_rf_booster():
    # conv 3 (RF 3, 16 -> 14), convT k3 s1 p0: output o reads inputs o-2..o, like a conv k3 with
    # padding 2: RF 3 + 2 = 5 and the map grows 14 -> 16, exactly what a padded conv gives
    r = analyze(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 4, 3)), (3, 16, 16))
    assert r.layers[1].rf == pair(5) and r.layers[1].output_shape == (4, 16, 16)
    assert not r.layers[1].phase_dependent
    assert any(w.code == "RF204" and "stride-1 transposed conv" in w.message and "no RF booster" in w.message
               for w in r.warnings)


def test_wrong_batch_norm_width_still_fails():
    # the fast path for shape-preserving ops must not hide a model bug the real forward raises
    with pytest.raises(TraceError, match=r"1 \(BatchNorm2d\).*running_mean should contain 8 elements not 16"):
        analyze(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(16)), (3, 16, 16))
