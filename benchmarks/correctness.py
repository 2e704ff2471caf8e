"""Receptive field (RF) and parameter count reported by rfcheck and by peer tools, against
hand-derived truths and an independent gradient measurement.

Why: RF tools agree on plain conv stacks; they differ (and some are wrong) on dilation,
transposed convs, residual and concat branches, functional ops, non-square kernels, 1D and
shared weights.  This script builds one small model per such case and prints one markdown table:
case | truth (RF, params) | gradient RF | rfcheck | each peer.

* truth: derived by hand, in each case's comment, with the recurrences
  ``k_eff = d*(k-1) + 1``, ``r_out = r_in + (k_eff - 1)*j_in``, ``j_out = j_in*s`` along the
  longest path (branches merge by taking the larger RF), and for a transposed conv the exact
  set of inputs each output position reads, maximised over output positions (the RF is then
  phase dependent).  Values are per spatial axis, H x W (just L for 1D).  Parameter truths are
  derived by hand too (comments), and the script stops if PyTorch's own count of the unique
  parameters disagrees with them.
* gradient: an independent measurement.  A float64 copy of the model with every weight
  positive and every bias zero (no cancellation, no ReLU cut-off), fed ones, with max pooling replaced by
  average pooling over the same window (a max pool sends its gradient to the argmax only);
  backpropagate from each output unit in a small central window and take the largest bounding
  box of the non-zero input gradient per axis.  Units whose box touches the input border are
  rejected (padding would have clipped them).
* peers:
  - torchscan 0.2.0 only reports each module call's own kernel/stride (scope ``module_call``)
    and no model RF; its column chains those values in call order with torchscan 0.1.x's own
    formula (``rf += s*(k - 1); s *= stride``), which is what torchscan printed as its cumulative
    "Receptive field" column up to 0.1.x.  Params: ``report["totals"]["parameters"]``.
  - torchinfo computes no RF; params only (``summary(...).total_params``).
  - torch_receptive_field returns a cumulative ``r`` per hooked module; we read the last one.
    It was not installable on the benchmark machine (the column then reads "not installed").

A cell reads ``value`` when it equals the truth on every axis and ``value (WRONG)`` otherwise;
a tool that reports one number is compared with every axis.  A tool that raises shows
``error: ExceptionType: message`` in its cells.

    python benchmarks/correctness.py                 # 10-30 s on 2 shared CPU cores
    python benchmarks/correctness.py --no-gradient   # tools only
    python benchmarks/correctness.py --case resnet   # cases whose name contains "resnet"
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout
import rfcheck  # noqa: E402

# --------------------------------------------------------------------------------------------
# Models.  Every one ends on a spatial feature map (no head), so "the model RF" is simply the
# RF of the last output for every tool.
# --------------------------------------------------------------------------------------------


def conv(cin, cout, k, s=1, p=0, d=1, nd=2):
    return (nn.Conv1d if nd == 1 else nn.Conv2d)(cin, cout, k, stride=s, padding=p, dilation=d)


def dilated_stack() -> nn.Module:
    # k=3 convs with dilation 1, 2, 4, 8 (k_eff 3, 5, 9, 17), jump 1:
    #   r = 1 + 2 + 4 + 8 + 16 = 31, j = 1
    # max pool 2, stride 2:         r = 31 + 1*1 = 32, j = 2
    # k=3 conv, dilation 2 (k_eff 5): r = 32 + 4*2 = 40, j = 2          -> truth 40 x 40
    return nn.Sequential(
        conv(3, 8, 3, p=1, d=1), nn.ReLU(), conv(8, 8, 3, p=2, d=2), nn.ReLU(),
        conv(8, 8, 3, p=4, d=4), nn.ReLU(), conv(8, 8, 3, p=8, d=8), nn.ReLU(),
        nn.MaxPool2d(2), conv(8, 8, 3, p=2, d=2))


def transposed() -> nn.Module:
    # One axis; A = conv k3 s2 p1 reads input [2m-1, 2m+1] for A[m]  (r 3, j 2).
    # B = ConvTranspose k3 s2 p1 (output_padding 1): B[o] = sum of A[i]*w[k] with o = 2i - 1 + k,
    #   k in 0..2, so B[2m] reads A[m] only (k=1), B[2m+1] reads A[m], A[m+1] (k=2, 0).
    #   Input read: B[2m] -> [2m-1, 2m+1] (3);  B[2m+1] -> [2m-1, 2m+3] (5).
    # C = conv k3 p1: C[o] reads B[o-1..o+1]:
    #   C[2m]   <- B[2m-1], B[2m], B[2m+1]   = A[m-1..m+1] -> input [2m-3, 2m+3]: 7
    #   C[2m+1] <- B[2m],   B[2m+1], B[2m+2] = A[m..m+1]   -> input [2m-1, 2m+3]: 5
    # The RF depends on the output position: largest 7 (smallest 5), jump 1.  -> truth 7 x 7
    # (a single-number recurrence cannot express that half of the positions read fewer inputs.)
    return nn.Sequential(
        conv(3, 8, 3, s=2, p=1), nn.ReLU(),
        nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        conv(8, 8, 3, p=1))


class TinyResNet(nn.Module):
    """torchvision's stem and two BasicBlocks (the second one strided, with a 1x1 downsample)."""

    # stem conv k7 s2:            r = 7,                j = 2
    # max pool k3 s2:             r = 7 + 2*2 = 11,     j = 4
    # block 1 (two 3x3, identity skip): longest path r = 11 + 2*4 + 2*4 = 27, j = 4
    # block 2: 3x3 s2: 27 + 2*4 = 35, j = 8; 3x3: 35 + 2*8 = 51; skip (1x1 s2) keeps 27
    #   -> truth 51 x 51 (the skip paths give the smallest RF, 11)
    def __init__(self):
        super().__init__()
        from torchvision.models.resnet import BasicBlock
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        down = nn.Sequential(nn.Conv2d(16, 32, 1, 2, bias=False), nn.BatchNorm2d(32))
        self.layer1 = nn.Sequential(BasicBlock(16, 16), BasicBlock(16, 32, stride=2, downsample=down))

    def forward(self, x):
        return self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))


def resnet_trunk(arch: str) -> Callable[[], nn.Module]:
    # torchvision resnet18 / resnet50 up to layer4 (the input of the global average pool).
    # resnet18: stem 7 (j 2), max pool 11 (j 4); layer1: 2 blocks x (+2*4 +2*4) = 43;
    #   layer2: 43+2*4 = 51 (j 8), +16 = 67, +32 = 99; layer3: 99+16 = 115 (j 16), +32 = 147,
    #   +64 = 211; layer4: 211+32 = 243 (j 32), +64 = 307, +128 = 435       -> truth 435 x 435
    # resnet50 (Bottleneck: 1x1, 3x3 (strided in the first block), 1x1; only the 3x3 grows r):
    #   11 (j 4); layer1: 3 x (+8) = 35; layer2: +8 = 43 (j 8), 3 x (+16) = 91; layer3: +16 = 107
    #   (j 16), 5 x (+32) = 267; layer4: +32 = 299 (j 32), 2 x (+64) = 427   -> truth 427 x 427
    def build():
        import torchvision
        m = getattr(torchvision.models, arch)(weights=None)
        return nn.Sequential(*list(m.children())[:-2])
    return build


class Inception(nn.Module):
    """Three branches of different depth, concatenated.  Hook-order tools chain them in series."""

    # stem conv k3 s2:  r = 3, j = 2
    # branch a: 1x1                      -> 3
    # branch b: 3x3, 3x3                 -> 3 + 2*2 + 2*2 = 11
    # branch c: max pool 3 s1 p1, 1x1    -> 3 + 2*2 = 7
    # cat: largest = 11; final 3x3:      -> 11 + 2*2 = 15, j = 2          -> truth 15 x 15
    def __init__(self):
        super().__init__()
        self.stem = conv(3, 8, 3, s=2, p=1)
        self.a = conv(8, 4, 1)
        self.b1, self.b2 = conv(8, 4, 3, p=1), conv(4, 4, 3, p=1)
        self.c_pool, self.c = nn.MaxPool2d(3, 1, 1), conv(8, 4, 1)
        self.out = conv(12, 8, 3, p=1)

    def forward(self, x):
        x = F.relu(self.stem(x))
        y = torch.cat([self.a(x), self.b2(F.relu(self.b1(x))), self.c(self.c_pool(x))], dim=1)
        return self.out(F.relu(y))


class Functional(nn.Module):
    """Pooling written as F.max_pool2d in forward(): invisible to module hooks."""

    # conv 3x3:                     r = 3,              j = 1
    # F.max_pool2d(2):              r = 3 + 1*1 = 4,    j = 2
    # conv 3x3:                     r = 4 + 2*2 = 8,    j = 2
    # F.max_pool2d(3, 2, padding 1): r = 8 + 2*2 = 12,  j = 4
    # conv 3x3:                     r = 12 + 2*4 = 20,  j = 4            -> truth 20 x 20
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = conv(3, 8, 3, p=1), conv(8, 8, 3, p=1), conv(8, 8, 3, p=1)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 3, stride=2, padding=1)
        return self.c3(x)


def asymmetric() -> nn.Module:
    # On a non-square 3x48x96 input; axes H, W:
    # conv (1,7) p(0,3):            H 1,               W 7,              j (1, 1)
    # conv (7,1) p(3,0):            H 7,               W 7
    # conv 3x3 stride (1,2) p1:     H 7 + 2 = 9,       W 7 + 2 = 9,      j (1, 2)
    # conv (1,7) p(0,3):            H 9,               W 9 + 6*2 = 21    -> truth 9 x 21
    return nn.Sequential(
        nn.Conv2d(3, 8, (1, 7), padding=(0, 3)), nn.ReLU(),
        nn.Conv2d(8, 8, (7, 1), padding=(3, 0)), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=(1, 2), padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, (1, 7), padding=(0, 3)))


def conv1d() -> nn.Module:
    # Conv1d on a (2, 256) signal:
    # k5:               r = 5,              j = 1
    # k3 s2:            r = 5 + 2 = 7,      j = 2
    # k3 dilation 2:    r = 7 + 4*2 = 15,   j = 2
    # max pool 2:       r = 15 + 1*2 = 17,  j = 4
    # k3:               r = 17 + 2*4 = 25,  j = 4                        -> truth 25
    # params: 2*8*5+8 = 88, then three 8->8 k3: 3 * (8*8*3+8 = 200) = 600  -> 688
    return nn.Sequential(
        conv(2, 8, 5, p=2, nd=1), nn.ReLU(), conv(8, 8, 3, s=2, p=1, nd=1), nn.ReLU(),
        conv(8, 8, 3, p=2, d=2, nd=1), nn.ReLU(), nn.MaxPool1d(2), conv(8, 8, 3, p=1, nd=1))


class FunctionalOnly(nn.Module):
    """No submodules at all: bare nn.Parameters and F.conv2d / F.max_pool2d / F.avg_pool2d.
    Module-hook tools see only the root module."""

    # F.conv2d 3x3 p1:                   r = 3,             j = 1
    # F.max_pool2d(2):                   r = 3 + 1*1 = 4,   j = 2
    # F.conv2d 3x3 s2 p2 dilation 2 (k_eff 5): r = 4 + 4*2 = 12, j = 4
    # F.avg_pool2d(3, 1, padding 1):     r = 12 + 2*4 = 20, j = 4
    # F.conv2d 3x3 p1:                   r = 20 + 2*4 = 28, j = 4          -> truth 28 x 28
    # params: 3*8*9+8 = 224, 8*8*9+8 = 584, 584                           -> 1392
    def __init__(self):
        super().__init__()
        self.w1, self.bias1 = nn.Parameter(torch.randn(8, 3, 3, 3) * 0.1), nn.Parameter(torch.zeros(8))
        self.w2, self.bias2 = nn.Parameter(torch.randn(8, 8, 3, 3) * 0.1), nn.Parameter(torch.zeros(8))
        self.w3, self.bias3 = nn.Parameter(torch.randn(8, 8, 3, 3) * 0.1), nn.Parameter(torch.zeros(8))

    def forward(self, x):
        x = F.max_pool2d(F.relu(F.conv2d(x, self.w1, self.bias1, padding=1)), 2)
        x = F.relu(F.conv2d(x, self.w2, self.bias2, stride=2, padding=2, dilation=2))
        x = F.avg_pool2d(x, 3, stride=1, padding=1)
        return F.conv2d(x, self.w3, self.bias3, padding=1)


class SharedWeights(nn.Module):
    """One conv module called twice (weight sharing, as in a recurrent refinement block)."""

    # stem conv 3x3 s2 p1:          r = 3,             j = 2
    # shared 3x3 p1, call 1:        r = 3 + 2*2 = 7,   j = 2
    # shared 3x3 p1, call 2:        r = 7 + 2*2 = 11,  j = 2              -> truth 11 x 11
    # params: stem 3*8*9+8 = 224, shared 8*8*9+8 = 584 counted once       -> 808 (not 1392)
    def __init__(self):
        super().__init__()
        self.stem = conv(3, 8, 3, s=2, p=1)
        self.shared = conv(8, 8, 3, p=1)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for _ in range(2):
            x = F.relu(self.shared(x))
        return x


def pool_stride_stack() -> nn.Module:
    # AlexNet/VGG-like downsampling by strided convs and max pools:
    # conv 5x5 s2 p2:         r = 5,              j = 2
    # max pool 3 s2 p1:       r = 5 + 2*2 = 9,    j = 4
    # conv 3x3 p1:            r = 9 + 2*4 = 17,   j = 4
    # max pool 2 (s2):        r = 17 + 1*4 = 21,  j = 8
    # conv 3x3 s2 p1:         r = 21 + 2*8 = 37,  j = 16
    # max pool 3 s1 p1:       r = 37 + 2*16 = 69, j = 16                   -> truth 69 x 69
    # params: 3*8*25+8 = 608, 8*8*9+8 = 584, 584                          -> 1776
    return nn.Sequential(
        conv(3, 8, 5, s=2, p=2), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        conv(8, 8, 3, p=1), nn.ReLU(), nn.MaxPool2d(2),
        conv(8, 8, 3, s=2, p=1), nn.ReLU(), nn.MaxPool2d(3, 1, 1))


# Parameter truths for the cases above whose derivation is in the model comments, plus:
#   dilated_stack: 3*8*9+8 = 224, then four 8->8 3x3 convs 4 * 584 = 2336           -> 2560
#   transposed: conv 224, ConvTranspose2d(8, 8, 3) 8*8*9+8 = 584, conv 584           -> 1392
#   TinyResNet: conv1 3*16*49 = 2352, bn1 32; block 1: 2 * 16*16*9 = 4608 + 2 bn 64 = 4672;
#     block 2: 16*32*9 = 4608, 32*32*9 = 9216, downsample 16*32 = 512, 3 bn 3*64 = 192 = 14528
#                                                                                   -> 21584
#   resnet18 trunk: conv1 9408 + bn 128; layer1 2*(2*36864 + 256) = 147968;
#     layer2 (73728+147456+8192 + 3*256) + (2*147456 + 512) = 230144 + 295424 = 525568;
#     layer3 (294912+589824+32768 + 3*512) + (2*589824 + 1024) = 919040 + 1180672 = 2099712;
#     layer4 (1179648+2359296+131072 + 3*1024) + (2*2359296 + 2048) = 3673088 + 4720640
#     = 8393728                                       -> 11176512 (= 11689512 - fc 513000)
#   resnet50 trunk: torchvision's published 25557032 minus fc 2048*1000+1000    -> 23508032
#   Inception: stem 224, a 8*4+4 = 36, b1 8*4*9+4 = 292, b2 4*4*9+4 = 148, c 36,
#     out 12*8*9+8 = 872                                                            -> 1608
#   Functional: three convs 224 + 584 + 584                                         -> 1392
#   asymmetric: 3*8*7+8 = 176, 8*8*7+8 = 456, 8*8*9+8 = 584, 456                    -> 1672


@dataclass
class Case:
    name: str
    build: Callable[[], nn.Module]
    input_size: tuple[int, ...]      # what every tool is given (C, H, W) / (C, L)
    truth: tuple[int, ...]           # hand-derived RF, per spatial axis
    params: int                      # hand-derived unique parameter count
    grad_size: Optional[tuple[int, ...]] = None  # input for the gradient check (None: skip it)
    window: int = 4                  # central output units per axis for the gradient check


CASES = [
    Case("dilated conv stack (d=1,2,4,8, pool, d=2)", dilated_stack, (3, 64, 64), (40, 40), 2560,
         (3, 128, 128)),
    Case("transposed conv (k3 s2, phase-dependent)", transposed, (3, 32, 32), (7, 7), 1392, (3, 64, 64)),
    Case("residual (add): stem + 2 BasicBlocks", TinyResNet, (3, 64, 64), (51, 51), 21584, (3, 160, 160)),
    Case("residual (add): torchvision resnet18 trunk", resnet_trunk("resnet18"), (3, 224, 224), (435, 435),
         11176512, (3, 512, 512), window=1),
    Case("residual (add): torchvision resnet50 trunk", resnet_trunk("resnet50"), (3, 224, 224), (427, 427),
         23508032, (3, 512, 512), window=1),
    Case("concat: inception-style branches", Inception, (3, 32, 32), (15, 15), 1608, (3, 64, 64)),
    Case("functional-only (F.conv2d, F.max_pool2d, F.avg_pool2d)", FunctionalOnly, (3, 32, 32), (28, 28),
         1392, (3, 96, 96)),
    Case("conv modules + F.max_pool2d in forward", Functional, (3, 32, 32), (20, 20), 1392, (3, 96, 96)),
    Case("non-square 48x96 input, 1x7 / 7x1 kernels", asymmetric, (3, 48, 96), (9, 21), 1672, (3, 48, 96)),
    Case("1D conv (Conv1d, dilation, MaxPool1d)", conv1d, (2, 256), (25,), 688, (2, 256)),
    Case("shared weights (one conv called twice)", SharedWeights, (3, 32, 32), (11, 11), 808, (3, 64, 64)),
    Case("max pool + stride stack", pool_stride_stack, (3, 64, 64), (69, 69), 1776, (3, 256, 256)),
]

# --------------------------------------------------------------------------------------------
# Independent measurement: positive weights, gradient bounding box.
# --------------------------------------------------------------------------------------------


class MaxToAvgPool(TorchFunctionMode):
    """Run every max pool (nn.MaxPool*d or F.max_pool*d) as an average pool over the same window.

    A max pool's gradient reaches only the argmax; an average pool's reaches the whole window,
    which is the set of inputs the max pool's output depends on."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in ("max_pool1d", "max_pool2d", "max_pool3d"):
            nd = int(name[-2])
            x, k = args[0], args[1] if len(args) > 1 else kwargs["kernel_size"]
            s = args[2] if len(args) > 2 else kwargs.get("stride")
            p = args[3] if len(args) > 3 else kwargs.get("padding", 0)
            d = args[4] if len(args) > 4 else kwargs.get("dilation", 1)
            if any(v != 1 for v in (d if isinstance(d, (tuple, list)) else (d,))):
                raise NotImplementedError("dilated max pool in the gradient check")
            avg = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
            return avg(x, k, s if s not in (None, []) else k, p)
        return func(*args, **kwargs)


def positive_copy(model: nn.Module) -> nn.Module:
    """float64, eval mode, no cancellation anywhere: every parameter whose name contains "bias"
    is 0, every other 1-D parameter (norm scales) is 1, every weight of 2 or more dimensions
    (module or bare nn.Parameter used by F.conv2d) is uniform in [0.5, 1.5] / fan-in (positive,
    values stay O(1)).  BatchNorm keeps its fresh running stats (mean 0, var 1): a positive scale."""
    m = model.double().eval()
    gen = torch.Generator().manual_seed(0)
    transposed_w = {id(mod.weight) for mod in m.modules()
                    if isinstance(mod, nn.modules.conv._ConvTransposeNd)}
    with torch.no_grad():
        for name, w in m.named_parameters():
            if "bias" in name.rsplit(".", 1)[-1]:
                w.zero_()
            elif w.dim() <= 1:
                w.fill_(1.0)
            else:
                fan_in = w[:, 0].numel() if id(w) in transposed_w else w[0].numel()  # (in, out, k..)
                w.copy_((torch.rand(w.shape, generator=gen, dtype=w.dtype) + 0.5) / fan_in)
    return m


def gradient_rf(model: nn.Module, size: Sequence[int], window: int) -> tuple[int, ...]:
    """Largest bounding box of non-zero input gradient, per spatial axis, over the central
    ``window`` units per axis of the output (enough to see every phase of a stride-2 pattern)."""
    m = positive_copy(model)
    x = torch.ones((1,) + tuple(size), dtype=torch.float64, requires_grad=True)
    with MaxToAvgPool():
        y = m(x)
    spatial = y.shape[2:]
    nd = len(spatial)
    best = [0] * nd
    ranges = [range(n // 2 - window // 2, n // 2 - window // 2 + window) for n in spatial]
    for unit in torch.cartesian_prod(*[torch.tensor(list(r)) for r in ranges]).reshape(-1, nd).tolist():
        (g,) = torch.autograd.grad(y[(0, slice(None)) + tuple(unit)].sum(), x, retain_graph=True)
        nz = g[0].abs().sum(0) > 0
        for a in range(nd):
            other = tuple(b for b in range(nd) if b != a)
            idx = torch.nonzero(nz.any(dim=other) if other else nz).flatten()
            lo, hi = int(idx.min()), int(idx.max())
            if lo == 0 or hi == size[1 + a] - 1:
                raise RuntimeError(f"unit {unit}: RF box {lo}..{hi} touches the border of axis {a}; "
                                   "use a larger input")
            best[a] = max(best[a], hi - lo + 1)
    return tuple(best)


# --------------------------------------------------------------------------------------------
# Tools.  Each returns (rf, params): rf an int tuple (per axis) or one number, params an int;
# either is None when the tool does not report it.  A failure raises and becomes the cell.
# --------------------------------------------------------------------------------------------


def run_rfcheck(model, size):
    r = rfcheck.analyze(model, input_size=size)
    return tuple(r.rf.size), r.params.total


def run_torchscan(model, size):
    """torchscan 0.2.0 reports only each module call's own kernel/stride/padding (metric scope
    ``module_call``) and no model RF; chain them in call order with the formula torchscan 0.1.x
    itself used for its cumulative "Receptive field" column (``rf += s*(k - 1); s *= stride``).
    Modules it marks unavailable (containers, unsupported types) count as identity, as 0.1.x did.
    It only ever looks at the first spatial axis (``kernel_size[0]``)."""
    import torchscan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = torchscan.crawl_module(model, size, device="cpu")
    rf, s = 1.0, 1.0
    for layer in report["layers"]:  # call order
        k = layer["metrics"].get("receptive_field")
        st = layer["metrics"].get("effective_stride")
        if k is None or st is None or k["status"] != "complete":
            continue
        rf += s * (k["value"] - 1)
        s *= st["value"]
    return rf, int(report["totals"]["parameters"]["value"])


def run_torchinfo(model, size):
    """torchinfo computes no RF; parameters only."""
    import torchinfo
    stats = torchinfo.summary(model, input_size=(1,) + tuple(size), verbose=0, device="cpu")
    return None, int(stats.total_params)


def run_torch_receptive_field(model, size):
    """Not exercised on the benchmark machine (package not installable there); kept so that the
    column fills in where it is installed.  ``receptive_field`` returns a cumulative ``r`` per
    hooked module, keyed "1", "2", ...; the last one is the model RF.  It computes no params."""
    from torch_receptive_field import receptive_field
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its own table
        d = receptive_field(model, size, device="cpu")
    last = max(int(k) for k in d if str(k).isdigit())
    return d[str(last)]["r"], None


def installed(module: str) -> Optional[str]:
    """None if importable, else a short reason."""
    try:
        importlib.import_module(module)
        return None
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}"


# column label -> (runner, which outputs to show: "rf", "params")
TOOLS = {
    "rfcheck": (run_rfcheck, ("rf", "params")),
    "torchscan 0.2.0 (chained)": (run_torchscan, ("rf", "params")),
    "torchinfo": (run_torchinfo, ("params",)),
    "torch_receptive_field": (run_torch_receptive_field, ("rf",)),
}
IMPORT_NAMES = {"torchscan 0.2.0 (chained)": "torchscan", "torchinfo": "torchinfo",
                "torch_receptive_field": "torch_receptive_field"}


def fmt_num(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:g}"


def fmt_rf(v, truth: tuple[int, ...]) -> str:
    if isinstance(v, (tuple, list)):
        text = " x ".join(fmt_num(a) for a in v)
        ok = tuple(float(a) for a in v) == tuple(map(float, truth))
    else:  # one number for every axis
        text, ok = fmt_num(v), all(float(v) == t for t in truth)
    return text if ok else f"{text} (WRONG)"


def fmt_params(v, truth: int) -> str:
    text = f"{int(v):,}"
    return text if int(v) == truth else f"{text} (WRONG)"


def fmt_error(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or "(no message)"
    if len(msg) > 60:
        msg = msg[:57] + "..."
    return f"error: {type(e).__name__}: {msg}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-gradient", action="store_true", help="skip the gradient measurement (faster)")
    ap.add_argument("--case", action="append", default=[],
                    help="only cases whose name contains this text (repeatable)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    missing = {label: installed(mod) for label, mod in IMPORT_NAMES.items()}

    header = ["case", "input", "truth RF (hand)", "truth params (hand)", "gradient RF"]
    for label, (_, shows) in TOOLS.items():
        header += [f"{label} {'RF' if w == 'rf' else 'params'}" for w in shows]
    rows = []
    cases = [c for c in CASES if not args.case or any(t in c.name for t in args.case)]
    for case in cases:
        # The parameter truth is derived by hand; PyTorch's own count of the unique parameters
        # must agree, or the hand derivation (not a tool) is wrong.
        torch_count = sum(p.numel() for p in case.build().parameters())
        if torch_count != case.params:
            raise SystemExit(f"{case.name}: hand-derived params {case.params} != PyTorch's {torch_count}")
        if args.no_gradient or case.grad_size is None:
            grad = "not run"
        else:
            t0 = time.perf_counter()
            try:
                grad = fmt_rf(gradient_rf(case.build(), case.grad_size, case.window), case.truth)
            except Exception as e:  # noqa: BLE001 - reported in the table
                grad = fmt_error(e)
            print(f"[gradient] {case.name}: {grad} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        cells = []
        for label, (fn, shows) in TOOLS.items():
            if missing.get(label):
                cells += ["not installed"] * len(shows)
                continue
            try:
                rf, params = fn(case.build(), case.input_size)
                out = {"rf": None if rf is None else fmt_rf(rf, case.truth),
                       "params": None if params is None else fmt_params(params, case.params)}
                cells += [out[w] or "n/a" for w in shows]
            except Exception as e:  # noqa: BLE001 - a peer's failure is a result
                cells += [fmt_error(e)] * len(shows)
        rows.append([case.name, "x".join(map(str, case.input_size)), " x ".join(map(str, case.truth)),
                     f"{case.params:,}", grad] + cells)
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    notes = []
    for label, why in missing.items():
        if why:
            extra = (" `pip install torch-receptive-field --no-deps` found no distribution on the "
                     "package index of the benchmark machine." if label == "torch_receptive_field" else "")
            notes.append(f"{label}: not importable here ({why}).{extra}")
    notes.append("torchscan 0.2.0 has no model-RF output; its column chains its per-module values "
                 "with torchscan 0.1.x's formula and uses the first spatial axis only.")
    notes.append("torchinfo computes no receptive field (params only).")
    print()
    for n in notes:
        print(f"- {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
