"""Spatial axes split into pieces by view/reshape/permute (rfcheck.pieces): window attention with
the windows folded into the batch (Swin), grid attention (MaxViT), pooling written as a view and
a mean, space-to-depth (TResNet), patch merging (timm's Swin).  Before, each was flagged RF103 or
RF105 and not followed.  Every value is checked against the brute-force dependency oracle."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import rfcheck
from tests.oracle import rf_sizes, unit_boxes


def _oracle(model, size):
    """The largest and the smallest RF per axis over the output units."""
    boxes = [b for b in unit_boxes(model, size) if b is not None]
    n = len(size) - 1
    big = tuple(max(b[a][1] - b[a][0] + 1 for b in boxes) for a in range(n))
    small = tuple(min(b[a][1] - b[a][0] + 1 for b in boxes) for a in range(n))
    return big, small


def _codes(r):
    return {w.code for w in r.warnings}


class WindowAttention(nn.Module):
    """A conv, attention within w x w windows (``grid``: among units w apart, MaxViT's grid), the
    windows put back, optionally the residual."""

    def __init__(self, w: int, kind: str = "sdpa", k: int = 1, grid: bool = False, residual: bool = False):
        super().__init__()
        self.w, self.kind, self.grid, self.residual = w, kind, grid, residual
        self.embed = nn.Conv2d(3, 8, k)
        self.qkv = nn.Linear(8, 24)
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        x = self.embed(x)
        B, C, H, W = x.shape
        t = x.permute(0, 2, 3, 1)
        w = self.w
        if self.grid:
            win = t.view(B, w, H // w, w, W // w, C).permute(0, 2, 4, 1, 3, 5)
        else:
            win = t.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5)
        win = win.reshape(-1, w * w, C)
        heads = self.qkv(win).reshape(win.shape[0], w * w, 3, 2, 4).permute(2, 0, 3, 1, 4)
        q, k, v = heads.unbind(0)
        # (small scores: the oracle's positive weights would saturate the softmax, and a saturated
        # softmax hides real dependencies below float64's resolution)
        if self.kind == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, scale=1e-12)
        else:
            y = (q @ k.transpose(-2, -1) * 1e-12).softmax(-1) @ v
        y = self.proj(y.transpose(1, 2).reshape(win.shape[0], w * w, C))
        y = y.view(B, H // w, W // w, w, w, C)
        y = y.permute(0, 3, 1, 4, 2, 5) if self.grid else y.permute(0, 1, 3, 2, 4, 5)
        y = y.reshape(B, H, W, C)
        if self.residual:
            y = y + t
        return y.permute(0, 3, 1, 2)


@pytest.mark.parametrize("kind", ["sdpa", "matmul"])
@pytest.mark.parametrize("grid,k,residual", [(False, 1, False), (False, 3, False), (False, 3, True),
                                             (True, 1, False), (True, 3, True)])
def test_attention_within_windows_and_grids(kind, grid, k, residual):
    m = WindowAttention(2 if grid else 4, kind, k, grid, residual)
    size = (3, 8 + k - 1, 8 + k - 1)
    big, _ = _oracle(m, size)
    r = rfcheck.analyze(m, size)
    assert r.exact and not _codes(r) & {"RF103", "RF104", "RF105"}, r.warnings
    assert r.rf.size == big


def test_the_numbers_of_a_window_by_hand():
    # 1x1 conv, 4x4 windows on 8x8: each unit reads its window; centres 1.5 and 5.5, spacing 0
    # inside a window, 4 across: mean jump 1, non-uniform
    r = rfcheck.analyze(WindowAttention(4), (3, 8, 8))
    last = r.layers[-1]
    assert r.rf.size == (4, 4) and last.non_uniform and last.jump == (1, 1)
    assert last.jump_min == (0, 0) and last.jump_max == (4, 4)


def test_windows_left_in_the_batch_are_named_at_the_output():
    class Windows(nn.Module):
        def forward(self, x):
            B, C, H, W = x.shape
            return x.view(B, C, H // 4, 4, W // 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(-1, C, 4, 4)

    r = rfcheck.analyze(Windows(), (3, 8, 8))
    assert "RF103" in _codes(r) and not r.rf.exact


class ViewPool(nn.Module):
    """An average pool 2 written as a view and a mean, then a 3x3 conv."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        B, C, H, W = x.shape
        return self.conv(x.view(B, C, H // 2, 2, W // 2, 2).mean((3, 5)))


class SpaceToDepth(nn.Module):
    """TResNet's stem: 4x4 blocks into channels by view + permute, then a 3x3 conv."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(48, 4, 3)

    def forward(self, x):
        B, C, H, W = x.shape
        y = x.view(B, C, H // 4, 4, W // 4, 4).permute(0, 3, 5, 1, 2, 4).reshape(B, C * 16, H // 4, W // 4)
        return self.conv(y)


class PatchMerging(nn.Module):
    """timm's Swin patch merging on a channels-last map: 2x2 blocks flattened into channels, a
    LayerNorm and a Linear; then a 3x3 conv to see the new jump."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 4, 1)
        self.norm = nn.LayerNorm(16)
        self.red = nn.Linear(16, 8)
        self.conv = nn.Conv2d(8, 2, 3)

    def forward(self, x):
        t = self.embed(x).permute(0, 2, 3, 1)
        B, H, W, C = t.shape
        t = t.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.conv(self.red(self.norm(t)).permute(0, 3, 1, 2))


@pytest.mark.parametrize("model,size,rf,jump", [(ViewPool, (3, 8, 8), 6, 2), (SpaceToDepth, (3, 16, 16), 12, 4),
                                                (PatchMerging, (3, 8, 8), 6, 2)])
def test_blocks_into_channels_or_reduced(model, size, rf, jump):
    m = model()
    big, small = _oracle(m, size)
    assert big == small == (rf, rf)  # the hand value: a block of jump units, then the 3x3 conv
    r = rfcheck.analyze(m, size)
    assert r.exact and r.rf.size == (rf, rf) and r.layers[-1].jump == (jump, jump)
    assert not _codes(r) & {"RF103", "RF105"}


def test_a_student_head_folding_positions_is_still_named():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 10, 3)

        def forward(self, x):
            return self.conv(x).view(-1, 10)

    r = rfcheck.analyze(Head(), (3, 4, 4))
    assert "RF103" in _codes(r) and not r.rf.exact


# -- random 1D pipelines against the oracle --------------------------------------------------
class Attend1d(nn.Module):
    """Attention within windows of w units (``grid``: among the units L/w apart)."""

    def __init__(self, w: int, grid: bool):
        super().__init__()
        self.w, self.grid = w, grid
        self.qkv = nn.Linear(4, 12)

    def forward(self, x):
        B, C, L = x.shape
        w = self.w
        t = x.transpose(1, 2)
        win = t.reshape(B, w, L // w, C).transpose(1, 2) if self.grid else t.reshape(B, L // w, w, C)
        win = win.reshape(-1, w, C)
        q, k, v = self.qkv(win).chunk(3, -1)
        y = F.scaled_dot_product_attention(q, k, v, scale=1e-12).reshape(B, -1, w, C)  # (unsaturated)
        y = y.transpose(1, 2).reshape(B, L, C) if self.grid else y.reshape(B, L, C)
        return y.transpose(1, 2)


class Pool1d(nn.Module):
    def __init__(self, w: int):
        super().__init__()
        self.w = w

    def forward(self, x):
        B, C, L = x.shape
        return x.view(B, C, L // self.w, self.w).mean(3)


class ToDepth1d(nn.Module):
    """Blocks of r units into channels, then a 1x1 conv back to 4 channels."""

    def __init__(self, r: int):
        super().__init__()
        self.r = r
        self.mix = nn.Conv1d(4 * r, 4, 1)

    def forward(self, x):
        B, C, L = x.shape
        return self.mix(x.view(B, C, L // self.r, self.r).permute(0, 3, 1, 2).reshape(B, self.r * C, L // self.r))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402

OPS = hs.sampled_from(["conv2", "conv3", "window", "grid", "pool", "depth"])


@settings(max_examples=80, deadline=None)
@given(hs.lists(OPS, min_size=1, max_size=4), hs.sampled_from([12, 16, 18, 24]), hs.sampled_from([2, 3, 4]))
def test_random_pipelines_of_pieces_against_the_oracle(ops, length, w):
    layers: list[nn.Module] = [nn.Conv1d(1, 4, 1)]
    n = length
    for op in ops:
        if op.startswith("conv"):
            k = int(op[-1])
            if n - k + 1 < 2:
                continue
            layers.append(nn.Conv1d(4, 4, k))
            n -= k - 1
        elif n % w == 0 and n // w >= 1:
            layers.append({"window": lambda: Attend1d(w, False), "grid": lambda: Attend1d(w, True),
                           "pool": lambda: Pool1d(w), "depth": lambda: ToDepth1d(w)}[op]())
            if op in ("pool", "depth"):
                n //= w
    m = nn.Sequential(*layers)
    sizes = [s for s in rf_sizes(m, (1, length)) if s]
    r = rfcheck.analyze(m, (1, length))
    assert r.exact, r.warnings
    assert r.layers[-1].rf == (max(sizes),)


# -- unfold / fold -------------------------------------------------------------------------------
class ConvByUnfold(nn.Module):
    """A 3x3 stride-2 conv written as im2col and a matmul, then a 3x3 conv."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 27))
        self.c = nn.Conv2d(4, 2, 3)

    def forward(self, x):
        B, C, H, W = x.shape
        y = (self.w @ F.unfold(x, 3, stride=2)).view(B, 4, (H - 3) // 2 + 1, (W - 3) // 2 + 1)
        return self.c(y)


class PoolByUnfold(nn.Module):
    """Windows of 3, step 2, by Tensor.unfold and a mean; then a conv of 2."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(1, 1, 2)

    def forward(self, x):
        return self.c(x.unfold(2, 3, 2).mean(-1))


class Fold(nn.Module):
    """im2col, optionally a Linear over the window's channels and offsets, then col2im back."""

    def __init__(self, mix: bool):
        super().__init__()
        self.mix = mix
        self.c = nn.Conv2d(3, 3, 1)
        self.lin = nn.Linear(27, 27)

    def forward(self, x):
        cols = F.unfold(self.c(x), 3, stride=2)
        if self.mix:
            cols = self.lin(cols.transpose(1, 2)).transpose(1, 2)
        return F.fold(cols, x.shape[-2:], 3, stride=2)


@pytest.mark.parametrize("model,size,rf", [(ConvByUnfold, (3, 13, 13), (7, 7)), (PoolByUnfold, (1, 13), (5,))])
def test_unfold_is_a_window(model, size, rf):
    m = model()
    assert _oracle(m, size)[0] == rf  # hand: window 3 at jump 1, then 3 (2) units at jump 2
    r = rfcheck.analyze(m, size)
    assert r.exact and r.rf.size == rf and not _codes(r) & {"RF101", "RF104", "RF105"}


def test_fold_reads_the_windows_that_cover_a_unit():
    mixed = Fold(True)
    r = rfcheck.analyze(mixed, (3, 9, 9))
    assert r.exact and r.rf.size == _oracle(mixed, (3, 9, 9))[0] == (5, 5)  # windows of 3 at 2 overlapping a unit
    # without mixing, each output unit sums copies of its own pixel: the windows are a bound, said so
    plain = Fold(False)
    assert _oracle(plain, (3, 9, 9))[0] == (1, 1)
    r = rfcheck.analyze(plain, (3, 9, 9))
    assert not r.exact and "RF104" in _codes(r)
