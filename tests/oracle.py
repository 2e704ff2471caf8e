"""A brute-force dependency oracle, independent of rfcheck and of autograd.

Make a float64 copy of the model with every weight positive (so no two paths cancel), feed a
positive input, then perturb one input position at a time and see which output units change:
each output unit's dependency set, and per axis its interval.  With ``margin`` the input is
embedded in that many extra positions on each side (unbounded-input RFs for nets whose
windows are padded); size-dependent maps (adaptive pooling, ``interpolate(size=)``) change with
the input size, so nets with them are measured with ``margin=0`` and no padding.

Nothing here imports rfcheck."""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import torch
import torch.nn as nn

Interval = Optional[tuple[int, int]]
_REL = 1e-9


def positive_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    m = copy.deepcopy(model).double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=torch.float64) + 0.5)
    return m


def dependencies(model: nn.Module, shape: Sequence[int], margin: int = 0, seed: int = 0
                 ) -> tuple[torch.Tensor, list[tuple[int, ...]]]:
    """(dep, positions): ``dep[u, i]`` is True when output unit ``u`` (spatial index, channels
    summed) changes with input position ``positions[i]`` (coordinates of the original input,
    margin excluded)."""
    m = positive_copy(model, seed)
    c, *spatial = shape
    big = [s + 2 * margin for s in spatial]
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand((1, c, *big), generator=g, dtype=torch.float64) + 1.0
    with torch.no_grad():
        base = m(x).sum(1).flatten()
        positions = [tuple(p) for p in torch.cartesian_prod(*[torch.arange(-margin, s + margin) for s in spatial])
                     .reshape(-1, len(spatial)).tolist()]
        cols = []
        for pos in positions:
            y = x.clone()
            y[(0, slice(None), *[p + margin for p in pos])] += 1.0
            diff = (m(y).sum(1).flatten() - base).abs()
            cols.append(diff > _REL * (base.abs() + 1))
    return torch.stack(cols, 1), positions


def unit_intervals(model: nn.Module, shape: Sequence[int], margin: int = 0) -> list[Interval]:
    """1D: each output unit's interval of input positions (None: it reads nothing)."""
    dep, positions = dependencies(model, shape, margin)
    out = []
    for row in dep:
        idx = [positions[i][0] for i in torch.nonzero(row).flatten().tolist()]
        out.append((min(idx), max(idx)) if idx else None)
    return out


def rf_sizes(model: nn.Module, shape: Sequence[int], margin: int = 0) -> list[int]:
    """1D: each output unit's RF size (0 when it reads nothing)."""
    return [0 if iv is None else iv[1] - iv[0] + 1 for iv in unit_intervals(model, shape, margin)]


def unit_boxes(model: nn.Module, shape: Sequence[int], margin: int = 0) -> list[Optional[tuple[Interval, ...]]]:
    """Each output unit's bounding box, one interval per spatial axis (None: it reads nothing)."""
    dep, positions = dependencies(model, shape, margin)
    out: list[Optional[tuple[Interval, ...]]] = []
    for row in dep:
        idx = [positions[i] for i in torch.nonzero(row).flatten().tolist()]
        out.append(tuple((min(p[a] for p in idx), max(p[a] for p in idx)) for a in range(len(shape) - 1))
                   if idx else None)
    return out


def rf_box(model: nn.Module, shape: Sequence[int], margin: int = 0) -> tuple[int, ...]:
    """The largest RF per axis over the output units."""
    boxes = [b for b in unit_boxes(model, shape, margin) if b is not None]
    return tuple(max(b[a][1] - b[a][0] + 1 for b in boxes) for a in range(len(shape) - 1))
