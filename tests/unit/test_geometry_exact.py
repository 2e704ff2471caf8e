"""Size-dependent maps (adaptive pooling, resizing to a size) followed by windowed ops, and
transposed convs whose units read nothing, against the brute-force dependency oracle.

Before: the RF was the maximum over one "period" of the composed map, which can hold output
units that do not exist (a 2-unit map with a period of 3 or 5)."""
from __future__ import annotations

from fractions import Fraction

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import rfcheck
from tests.oracle import rf_sizes, unit_intervals


def rf(model, shape) -> tuple[int, int]:
    r = rfcheck.analyze(model, shape)
    layer = r.layers[-1]
    return layer.rf[0], layer.rf_min[0]


def truth(model, shape) -> tuple[int, int]:
    sizes = [s for s in rf_sizes(model, shape) if s]
    return max(sizes), min(sizes)


def test_adaptive_pool_then_conv():
    # pool 7 -> 3: units read [0,2], [2,4], [4,6]; conv k2 makes 2 units: [0,4] and [2,6], RF 5 each
    m = nn.Sequential(nn.AdaptiveAvgPool1d(3), nn.Conv1d(1, 1, 2))
    assert unit_intervals(m, (1, 7)) == [(0, 4), (2, 6)]
    assert rf(m, (1, 7)) == (5, 5) == truth(m, (1, 7))
    assert rfcheck.analyze(m, (1, 7)).rf.size == (5,)


def test_upsample_align_corners_then_conv():
    # conv k4 on 5: 2 units [0,3], [1,4]; x3 with align_corners: 6 units sampling 0, 0.2, ..., 1;
    # conv k5 on them: 2 units, each reading both conv units: the whole input, RF 5
    m = nn.Sequential(nn.Conv1d(1, 1, 4), nn.Upsample(scale_factor=3, mode="linear", align_corners=True),
                      nn.Conv1d(1, 1, 5))
    assert unit_intervals(m, (1, 5)) == [(0, 4), (0, 4)]
    assert rf(m, (1, 5)) == (5, 5)


class ResizeTo(nn.Module):
    def __init__(self, size: int, mode: str, align_corners=None):
        super().__init__()
        self.size, self.mode, self.align_corners = size, mode, align_corners

    def forward(self, x):
        return F.interpolate(x, size=self.size, mode=self.mode, align_corners=self.align_corners)


def test_interpolate_to_a_size_with_a_non_integer_ratio():
    m = nn.Sequential(ResizeTo(5, "linear"), nn.Conv1d(1, 1, 2))
    assert rf(m, (1, 7)) == truth(m, (1, 7))


# measured without a margin (the maps depend on the input size), so only ops that never read
# outside their input: no padding, and linear resizing only with align_corners (without it, a
# border unit of an upsampling reads a virtual neighbour, which rfcheck counts, as it counts
# padding, and the unpadded oracle cannot see)
LAYERS = st.one_of(
    st.builds(lambda n: nn.AdaptiveAvgPool1d(n), st.integers(1, 6)),
    st.builds(lambda n: ResizeTo(n, "linear", align_corners=True), st.integers(2, 9)),
    st.builds(lambda n: ResizeTo(n, "nearest"), st.integers(2, 9)),
    st.builds(lambda f: nn.Upsample(scale_factor=f, mode="linear", align_corners=True), st.integers(2, 3)),
    st.builds(lambda k, s: nn.Conv1d(1, 1, k, stride=s), st.integers(1, 3), st.integers(1, 2)),
    st.builds(lambda k, s: nn.AvgPool1d(k, stride=s), st.integers(1, 3), st.integers(1, 2)),
)


def chain(layers, n):
    """The layers as a net on a length-n input, or None when a window is larger than its input."""
    m = nn.Sequential(*layers)
    try:
        m(torch.zeros(1, 1, n))
    except RuntimeError:
        return None
    return m


@settings(max_examples=60, deadline=None)
@given(st.lists(LAYERS, min_size=2, max_size=4), st.integers(5, 11))
def test_random_size_dependent_chains_match_the_oracle(layers, n):
    m = chain(layers, n)
    if m is not None:
        assert rf(m, (1, n)) == truth(m, (1, n))


def test_transposed_conv_units_that_read_nothing():
    # ConvTranspose1d k2 s3 on 5: 14 units; unit o reads input (o - k)/3 for k in {0, 1} when
    # divisible, so o = 2, 5, 8, 11 read nothing: 4 of 14 (29%); every other unit reads one input
    m = nn.Sequential(nn.ConvTranspose1d(1, 1, 2, stride=3))
    sizes = rf_sizes(m, (1, 5))
    assert sizes.count(0) == 4 and set(sizes) == {0, 1}
    r = rfcheck.analyze(m, (1, 5))
    assert r.layers[0].rf == (1,) and r.layers[0].rf_min == (1,)  # the smallest non-empty RF
    (w,) = [w for w in r.warnings if w.code == "RF106"]
    assert w.layer == "0" and "29% of its output units read no input" in w.message


# -- the jump: spacing of neighbouring RF centres ------------------------------------------------------------
def centre_gaps(model, shape) -> list:
    from fractions import Fraction
    ivs = [(o, iv) for o, iv in enumerate(unit_intervals(model, shape)) if iv is not None]
    centres = [(o, Fraction(iv[0] + iv[1], 2)) for o, iv in ivs]
    return [(c1 - c0) / (o1 - o0) for (o0, c0), (o1, c1) in zip(centres, centres[1:])]


def test_jump_of_an_adaptive_pool_is_its_centre_spacing():
    # 5 -> 4: units read [0,1], [1,2], [2,3], [3,4]: centres 0.5, 1.5, 2.5, 3.5, spacing 1 (not 5/4)
    m = nn.Sequential(nn.AdaptiveAvgPool1d(4))
    assert centre_gaps(m, (1, 5)) == [1, 1, 1]
    r = rfcheck.analyze(m, (1, 5))
    layer = r.layers[0]
    assert layer.jump == (1,) and not layer.non_uniform and r.rf.jump == (1,)
    assert [w.code for w in r.warnings] == ["RF207"]
    # 7 -> 3: [0,2], [2,4], [4,6]: centres 1, 3, 5, spacing 2 (not 7/3)
    assert rfcheck.analyze(nn.Sequential(nn.AdaptiveAvgPool1d(3)), (1, 7)).layers[0].jump == (2,)


def test_jump_of_a_non_uniform_map_is_the_mean_with_its_range():
    # ConvTranspose1d k2 s2: units 2i and 2i+1 both read input i: centres 0, 0, 1, 1, ...: spacings
    # 0 and 1, mean 1/2 (one period: shift 1 over period 2)
    m = nn.Sequential(nn.ConvTranspose1d(1, 1, 2, stride=2))
    assert set(centre_gaps(m, (1, 5))) == {0, 1}
    layer = rfcheck.analyze(m, (1, 5)).layers[0]
    assert layer.jump == (0.5,) and layer.non_uniform and layer.jump_min == (0,) and layer.jump_max == (1,)
    d = layer.to_dict()
    assert d["non_uniform"] is True and d["jump"] == [0.5] and d["jump_min"] == [0] and d["jump_max"] == [1]


@settings(max_examples=60, deadline=None)
@given(st.lists(LAYERS, min_size=1, max_size=4), st.integers(5, 11))
def test_random_chains_jump_range_matches_the_oracle(layers, n):
    m = chain(layers, n)
    if m is None:
        return
    gaps = centre_gaps(m, (1, n))
    layer = rfcheck.analyze(m, (1, n)).layers[-1]
    if not gaps or layer.is_global or layer.output_shape[-1] < 2:
        return
    assert (layer.jump_min[0], layer.jump_max[0]) == (min(gaps), max(gaps))
    assert layer.non_uniform == (min(gaps) != max(gaps))


# -- pooled-and-resized gates (GhostNetV2's DFC attention): cost bound and exact units ---------
class Gate1d(nn.Module):
    """Pool 2, a 1x1 conv, resized back to the map by size=, multiplied in; then a conv."""

    def __init__(self, pad: int):
        super().__init__()
        self.g, self.c = nn.Conv1d(1, 1, 1), nn.Conv1d(1, 1, 3, padding=pad)

    def forward(self, x):
        # (no sigmoid: with the oracle's positive weights it saturates and hides real dependencies)
        gate = self.g(F.avg_pool1d(x, 2))
        return self.c(x * F.interpolate(gate, size=x.shape[-1], mode="nearest"))


def _periods(model, shape):
    from rfcheck.tracer import trace
    g = trace(model, [torch.empty((1, *shape), device="meta")])
    return [(a.env.period, a.size) for n in g.nodes for a in n.state.geo.values()]


def test_resized_gates_keep_a_bounded_period_and_stay_exact():
    m = nn.Sequential(*[Gate1d(0) for _ in range(3)], nn.Conv1d(1, 1, 2, stride=2), *[Gate1d(0) for _ in range(2)])
    ivs = [iv for iv in unit_intervals(m, (1, 31)) if iv is not None]
    r = rfcheck.analyze(m, (1, 31))
    last = r.layers[-1]
    assert r.exact and last.rf == (max(h - l + 1 for l, h in ivs),)
    # the jump: the mean spacing of the RF centres over the units that exist
    assert last.jump == (Fraction(ivs[-1][0] + ivs[-1][1] - ivs[0][0] - ivs[0][1], 2 * (len(ivs) - 1)),)
    # on a long input the lcm of the resized maps' periods would grow without bound: the geometry is
    # kept as a table of the units that exist (at most twice the map, or 256), and a padded window
    # reads the units past them from the envelopes the table was made of
    wide = nn.Sequential(*[Gate1d(1) for _ in range(4)], nn.Conv1d(1, 1, 3, stride=2), *[Gate1d(1) for _ in range(4)])
    assert all(p <= max(256, 2 * n) for p, n in _periods(wide, (1, 1571)))
    assert rfcheck.analyze(wide, (1, 1571)).exact
