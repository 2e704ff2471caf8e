"""A gradient-based receptive-field reference, independent of rfcheck.

The receptive field of an output unit is the set of input pixels its value depends on.  We
measure it directly: make a float64 copy of the model in which every weight is positive and
every bias zero (so no two paths can cancel), replace the ops whose gradient does not reach
their whole window (max pooling routes the gradient to the argmax only) by positive-weight
convolutions with the same window, feed a positive input (ones), backpropagate from one output
unit (summed over channels) and take, per spatial axis, the bounding box of the input pixels
with a non-zero gradient.

Coordinates are input pixel indices (0, 1, 2, ...).  A box is only the *unclipped* receptive
field (the one on an unbounded input) when the unit is far from every border: zero padding
inside the net silently removes the paths that leave a feature map.  :class:`ReferenceChain`
therefore also looks at the gradient on every intermediate feature map and raises
:class:`Clipped` when the dependency set comes close enough to a border of any of them that a
path may have been lost (see :func:`gap_bound`).  Callers then use a larger input.

Nothing here imports rfcheck.
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

Box = Optional[tuple[int, int]]  # (lo, hi) input indices, inclusive; None: depends on nothing

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONVTS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_MAXPOOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVGPOOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_PADS = (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d,
         nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReplicationPad1d, nn.ReplicationPad2d)
_POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.Dropout, nn.Dropout1d,
              nn.Dropout2d, nn.Dropout3d, nn.GELU, nn.SiLU, nn.ELU, nn.Hardswish, nn.Hardsigmoid)


def _tuple(v, n: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(int(x) for x in v) if len(v) == n else tuple(int(v[0]) for _ in range(n))
    return (int(v),) * n


class PositivePool(nn.Module):
    """A max pool's window as a depthwise convolution with positive weights.

    ``ceil_mode`` is ignored: it only decides whether one more unit exists at the end of the
    map; the window of every unit is the same."""

    def __init__(self, nd: int, kernel, stride, padding, dilation):
        super().__init__()
        self.nd = nd
        self.kernel = _tuple(kernel, nd)
        self.stride = _tuple(self.kernel if stride is None else stride, nd)
        self.padding = _tuple(padding, nd)
        self.dilation = _tuple(dilation, nd)

    @classmethod
    def from_maxpool(cls, m: nn.Module) -> "PositivePool":
        nd = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}[type(m)]
        return cls(nd, m.kernel_size, m.stride, m.padding, m.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        n = 1
        for k in self.kernel:
            n *= k
        w = torch.full((c, 1) + self.kernel, 1.0 / n, dtype=x.dtype, device=x.device)
        conv = (F.conv1d, F.conv2d, F.conv3d)[self.nd - 1]
        return conv(x, w, None, self.stride, self.padding, self.dilation, c)


def _replacement(m: nn.Module) -> Optional[nn.Module]:
    if isinstance(m, _NORMS):
        return nn.Identity()
    if isinstance(m, _MAXPOOLS):
        return PositivePool.from_maxpool(m)
    return None


def positive_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A float64, eval-mode deep copy of ``model`` with positive weights (uniform 0.1..1 divided
    by the fan-in), zero biases, batch norm removed and max pooling replaced by a positive
    depthwise conv with the same window.  In-place activations are made out-of-place so that
    intermediate maps keep their gradients.  ``model`` itself is not touched."""
    rep = _replacement(model)
    if rep is not None:
        return rep
    m = copy.deepcopy(model).double().eval()
    gen = torch.Generator().manual_seed(seed)

    def convert(mod: nn.Module) -> None:
        for name, child in list(mod.named_children()):
            r = _replacement(child)
            if r is not None:
                setattr(mod, name, r)
            else:
                convert(child)

    convert(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.requires_grad_(False)
            if name.endswith("bias"):
                p.zero_()
            else:
                fan = max(1, p[0].numel()) if p.ndim > 1 else 1
                p.copy_((0.1 + 0.9 * torch.rand(p.shape, generator=gen, dtype=torch.float64)) / fan)
    for mod in m.modules():
        if hasattr(mod, "inplace"):
            mod.inplace = False
    return m


# -- gap bounds ---------------------------------------------------------------------------
def gap_bound(module: nn.Module, gaps: Sequence[int]) -> list[int]:
    """An upper bound on the largest hole in the dependency set of a unit on the *input* map
    of ``module``, per spatial axis, given the bound ``gaps`` on its output map.

    Why we need it: if the dependency set (unclipped, on an unbounded map) had an element
    outside the real map while the measured (clipped) set stays more than ``bound + 1`` away
    from the borders, walking from that element towards the measured ones in steps of at most
    ``bound + 1`` would hit a real unit near the border that is not measured, a contradiction.
    So "measured set farther than gap_bound + 1 from every border of every map" proves the
    measured box is the unclipped one.  The bounds are crude and conservative."""
    nd = len(gaps)
    g = list(gaps)
    if isinstance(module, (_CONVS, PositivePool)) or isinstance(module, _MAXPOOLS):
        s, d = _tuple(module.stride, nd), _tuple(module.dilation, nd)
        return [(g[i] + 1) * s[i] + d[i] for i in range(nd)]
    if isinstance(module, _AVGPOOLS):
        s = _tuple(module.stride if module.stride is not None else module.kernel_size, nd)
        return [(g[i] + 1) * s[i] + 1 for i in range(nd)]
    if isinstance(module, _CONVTS):
        s, d = _tuple(module.stride, nd), _tuple(module.dilation, nd)
        return [g[i] + 1 + d[i] + s[i] for i in range(nd)]
    if isinstance(module, nn.Upsample):
        return [x + 2 for x in g]
    if isinstance(module, nn.PixelShuffle):
        return [x + 1 for x in g]
    if isinstance(module, nn.PixelUnshuffle):
        r = module.downscale_factor
        return [(x + 1) * r for x in g]
    if isinstance(module, _PADS) or isinstance(module, _POINTWISE) or isinstance(module, _NORMS):
        return g
    children = list(module.children())
    if children or isinstance(module, nn.Sequential):
        # a container: fold over every child in reverse order.  For parallel branches this
        # is more than the max over branches, which is fine (conservative).
        for child in reversed(children):
            g = gap_bound(child, g)
        return g
    raise TypeError(f"gap_bound: no rule for {type(module).__name__}")


class Clipped(Exception):
    """The measured dependency set comes too close to the border of a feature map: the box
    may be the clipped one.  Use a larger input."""


def _box_of(mask: torch.Tensor, axis: int) -> Box:
    """Bounding interval of the True entries of ``mask`` (spatial dims only) along ``axis``."""
    other = [d for d in range(mask.ndim) if d != axis]
    line = mask.any(dim=other) if other else mask
    idx = line.nonzero().flatten()
    if idx.numel() == 0:
        return None
    return int(idx[0]), int(idx[-1])


class ReferenceChain:
    """Boxes of output units at the output of every layer of a chain of modules.

    ``layers`` are the modules of a Sequential (any module, including ones that branch inside:
    only their input and output maps are checked for clipping).  The positive copy is run once
    on a batch of ``batch`` inputs of ones of shape ``input_shape`` (C, *spatial); query
    :meth:`boxes` with up to ``batch`` output positions at a time, one per batch element (every
    op here works per sample, so batch element t only depends on input t)."""

    def __init__(self, layers: Sequence[nn.Module], input_shape: Sequence[int], batch: int = 1, seed: int = 0):
        self.layers = [positive_copy(m, seed + i) for i, m in enumerate(layers)]
        self.nd = len(input_shape) - 1
        self.batch = batch
        x = torch.ones((batch,) + tuple(input_shape), dtype=torch.float64, requires_grad=True)
        self.maps = [x]
        h = x
        for m in self.layers:
            h = m(h)
            self.maps.append(h)

    def output_shape(self, i: int) -> tuple[int, ...]:
        """Shape (without batch) of the reference output of layer ``i``.  Equal to the real one
        except after a max pool with ceil_mode, which may end one unit earlier."""
        return tuple(self.maps[i + 1].shape[1:])

    def spatial(self, i: int) -> tuple[int, ...]:
        return tuple(self.maps[i + 1].shape[2:])

    def boxes(self, i: int, positions: Sequence[Sequence[int]], check: bool = True) -> list[tuple[Box, ...]]:
        """Per position (one tuple of spatial indices each) the box per axis of the input pixels
        that unit of layer ``i``'s output (summed over channels) depends on.  An index may also
        be a half-open range ``(start, stop)``: the units in it are summed.  Measuring axis a at
        index o with a range over the other axes gives the extent along a of unit o even where
        a single unit would depend on nothing because of its phase on another axis (all ops are
        separable per axis, so the dependency set of a unit is a product of per-axis sets).
        With ``check``,
        raise :class:`Clipped` unless the dependency set stays clear of the borders of every
        map from the input to layer ``i``."""
        if len(positions) > self.batch:
            raise ValueError(f"{len(positions)} positions, batch is {self.batch}")
        out = self.maps[i + 1]
        total = 0
        for t, pos in enumerate(positions):
            index = []
            for p, n in zip(pos, out.shape[2:]):
                lo, hi = (int(p), int(p) + 1) if isinstance(p, int) else (int(p[0]), int(p[1]))
                if not 0 <= lo < hi <= n:
                    raise ValueError(f"position {tuple(pos)} outside the map of layer {i} ({tuple(out.shape[2:])})")
                index.append(slice(lo, hi))
            total = total + out[(t, slice(None)) + tuple(index)].sum()
        grads = torch.autograd.grad(total, self.maps[: i + 1], retain_graph=True, allow_unused=True)
        if check:
            gaps = [0] * self.nd
            for l in range(i, -1, -1):
                gaps = gap_bound(self.layers[l], gaps)
                g = grads[l]
                if g is None:
                    continue
                sizes = g.shape[2:]
                for t in range(len(positions)):
                    mask = g[t].ne(0).any(dim=0)
                    for a in range(self.nd):
                        b = _box_of(mask, a)
                        if b is None:
                            continue
                        margin = gaps[a] + 1
                        if b[0] < margin or b[1] > sizes[a] - 1 - margin:
                            raise Clipped(f"layer {i} unit {tuple(positions[t])}: on the map before layer {l} "
                                          f"(size {tuple(sizes)}), axis {a} depends on {b}, margin {margin}")
        g0 = grads[0]
        result = []
        for t in range(len(positions)):
            if g0 is None:
                result.append((None,) * self.nd)
                continue
            mask = g0[t].ne(0).any(dim=0)
            result.append(tuple(_box_of(mask, a) for a in range(self.nd)))
        return result


def unit_boxes(model: nn.Module, input_shape: Sequence[int], positions: Sequence[Sequence[int]],
               seed: int = 0) -> list[tuple[Box, ...]]:
    """Boxes of ``positions`` at the output of a whole model (no clipping check beyond the
    input map: the caller makes the input large)."""
    chain = ReferenceChain([model], input_shape, batch=len(positions), seed=seed)
    return chain.boxes(0, positions, check=False)


def chain_boxes(layers: Sequence[nn.Module], input_shape: Sequence[int],
                positions: Sequence[Sequence[Sequence[int]]], seed: int = 0,
                check: bool = True) -> list[list[tuple[Box, ...]]]:
    """Boxes for every layer of a Sequential: ``positions[i]`` lists the output positions to
    measure at layer ``i`` (e.g. one full period of phases after a transposed conv)."""
    batch = max((len(p) for p in positions), default=1)
    chain = ReferenceChain(layers, input_shape, batch=max(batch, 1), seed=seed)
    return [chain.boxes(i, positions[i], check=check) for i in range(len(layers))]


def size(box: Box) -> int:
    return 0 if box is None else box[1] - box[0] + 1
