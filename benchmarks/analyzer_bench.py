"""rfcheck against the peer tools, in one command (issue #5): is each tool's receptive field (RF),
jump, parameter count and MAC count right, how long does a call take and how much memory does
it need, on torchvision classifiers, the designs in models/, small nets for the hard cases
(dilation, transposed conv, functional ops with residual and concat branches, asymmetric
kernels on a non-square input, weight sharing, Conv1d, Conv3d) and scale runs (resnet50 at
224 / 1024 / 2048, a plain stack of 1,000 convs; rfcheck alone at several depths).

    python benchmarks/analyzer_bench.py            # everything: ~15-20 min on 2 idle CPU cores
    python benchmarks/analyzer_bench.py --quick    # smoke test: 2 small models, 1 repeat, no scale runs
    python benchmarks/analyzer_bench.py --models resnet18,dilated --tools rfcheck,torchscan --repeats 3

Writes benchmarks/results/analyzer.md (tables, machine, versions, command) and
benchmarks/results/analyzer_speed.png (time per model per tool, log scale); --out changes the
folder.

Tools, and how each number is read (the RF of a model is its RF at the input of the global
pool that feeds the head, or at the model output when there is none):

* rfcheck: ``analyze(model, input_size=size)``: ``rf.size`` (per axis), ``rf.jump``, ``rf.at``,
  ``params.total``, ``macs``.
* torchscan 0.2.0: ``crawl_module(model, size, device="cpu")``.  It reports only each module
  call's own kernel / stride (its "Receptive field" column is the layer's own kernel size);
  the RF and jump shown are those per-module values chained in call order with torchscan
  0.1.x's own formula (``rf += j*(k - 1); j *= s``, first spatial axis only), read at the
  last module call whose output still has spatial extent (> 1 unit).  Params:
  ``totals.parameters``; MACs: ``totals.macs`` (its module formulas, which also count norm,
  activation and pooling layers).
* torchinfo 1.8.0: ``summary(model, input_size=(1, *size), verbose=0, device="cpu")``: no RF;
  ``total_params``, ``total_mult_adds``.
* rf_calc 0.0.7: ``receptive_field(model, H)`` (a square input of side H; it parses the
  module repr for " Conv2d", " MaxPoo" and " AdaptiveAvgPool2d" in repr order and prints a
  pandas markdown table, captured): the RF is the "Receptive_field" cell of the last row that
  is not an AdaptiveAvgPool2d row.  No jump, params or MACs.  2D only.
* receptivefield 0.5.0: ``PytorchReceptiveField(model_fn).compute(ImageShape(w=W, h=H, c=C))``
  where ``model_fn`` returns a wrapper that runs the model and stores
  ``self.feature_maps = [the input of the global pool]`` (captured with the same rule as the
  reference below).  RF = ``rf.size`` and jump = ``rf.stride``, read as documented (``w``/``x``
  = width = W axis, ``h``/``y`` = height = H axis).  2D only.  It backpropagates from a
  feature-map unit of the real model fed zeros.
* receptivefield_readme: the same call on a copy of the model prepared as receptivefield's
  README advises for RF estimation ("use Linear (instead Relu) activation and AvgPool2D instead
  of MaxPool2D ... initialize network with constant positive values in all weights ... and
  set biases to zero"): every weight 1/fan-in, biases 0, batch norm with unit statistics,
  every activation run as identity and max pools as average pools (the preparation is not
  timed).
* fvcore: ``FlopCountAnalysis(model, x).total()`` (its "flops" are MACs for conv and linear)
  and ``parameter_count(model)[""]``.  No RF.
* ptflops 0.7.5: ``get_model_complexity_info(model, size, as_strings=False,
  print_per_layer_stat=False)`` (default pytorch backend): MACs and params.  No RF.
* rfa-toolbox and torch-receptive-field: not installable on the benchmark machine (listed,
  not run).

References:

* RF and jump: the gradient reference of tests/reference.py (``ReferenceChain`` on its positive
  float64 copy: positive weights, zero biases, batch norm removed, max pools as positive
  averaging windows), fed ones on an input large enough that the measured units are clear of
  the border, from units at the centre of the global pool's input.  While it runs, functional
  max pools are run as average pools over the same window, clamping activations (ReLU6 /
  hardtanh) as identity (pointwise: the dependency set is unchanged, but a saturated clamp has
  zero gradient), and the output of every global pool inside the trunk (squeeze-and-excitation
  gating) is detached, so the reference measures the convolutional path, as every tool does.
  Run for models whose rfcheck RF is <= 1000 on every axis (--grad-max-rf), with a 60 s cap on
  the measurement (--grad-cap); one forward pass (batch 1), one backward pass per measured unit.
  Where it is not run or does not finish, hand-derived values (HAND below, derivations in the
  comments) are the reference; models with neither are marked "no reference" and a tool's value
  is only compared with rfcheck's ("= rfcheck" / "!= rfcheck").
* Params: ``sum(p.numel() for p in model.parameters())`` (unique tensors, shared ones once).
* MACs: convolution, transposed convolution, linear and matmul multiply-accumulates per sample,
  counted by PyTorch's own ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) on a meta
  copy of the model.  Tools that also count norm / activation / pooling work report more; the
  MAC table shows each tool's ratio to this count.

Timing and memory: every (tool, model) pair runs in its own process, forked from a parent that
has imported torch, torchvision and every tool and has called each tool once on a tiny model
(so import and lazy-import costs are paid once and are not in the numbers; benchmarks/speed.py
measures cold starts).  The model is built in the parent before the fork and put
in eval mode.  In the child: torch.set_num_threads(1) for every tool (fairness: the peers' real
forward passes would profit from more threads, rfcheck's tracing would not) and
torch.set_flush_denormal(True) (ptflops feeds uninitialized memory to the model; with denormal
leftovers in it, its repeated calls ran up to 60x slower than its first one), the kernel's peak
RSS counter is reset (/proc/self/clear_refs; else ru_maxrss), one warm-up call is made (its
peak RSS over the RSS before it is the "peak memory" figure), then ``--repeats`` timed calls
(fewer when a call is slow: the cell says n=) and their median is the time.  A pair that runs
past ``--timeout`` (scale runs: ``--scale-timeout``) or above ``--mem-cap-gb`` of RSS is killed
and reported as such.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import datetime
import gc
import importlib.metadata
import io
import math
import multiprocessing as mp
import os
import platform
import re
import resource
import signal
import statistics
import sys
import time
import traceback
import warnings
from typing import Any, Callable, Optional

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from procmem import proc_status_kb, reset_peak  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402

TOOLS = ("rfcheck", "torchscan", "torchinfo", "rf_calc", "receptivefield", "receptivefield_readme", "fvcore",
         "ptflops")
TOOL_DIST = {"rfcheck": "rfcheck", "torchscan": "torchscan", "torchinfo": "torchinfo", "rf_calc": "rf-calc",
             "receptivefield": "receptivefield", "receptivefield_readme": "receptivefield", "fvcore": "fvcore",
             "ptflops": "ptflops"}
HAS_RF = {"rfcheck", "torchscan", "rf_calc", "receptivefield", "receptivefield_readme"}
NOT_INSTALLABLE = {
    "rfa-toolbox": "pip: no matching distribution on this machine's package index",
    "torch-receptive-field": "pip: no matching distribution on this machine's package index",
}

# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

TV = ["alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
      "densenet121", "googlenet", "inception_v3", "squeezenet1_0", "shufflenet_v2_x1_0", "regnet_y_400mf",
      "convnext_tiny"]
TV_KW = {"googlenet": dict(aux_logits=False, init_weights=False),
         "inception_v3": dict(aux_logits=False, init_weights=False)}
DESIGNS = {"net": "models/net.py:Net", "net_maxpool": "models/net_maxpool.py:NetMaxPool",
           "net_tiny": "models/net_tiny.py:NetTiny", "net_transposed": "models/net_transposed.py:NetTransposed"}
SMALL = ["dilated", "transposed", "func_branches", "asymmetric", "shared", "conv1d", "conv3d"]
SCALE = ["resnet50@1024", "resnet50@2048", "plain1000"]
DEPTHS = [125, 250, 500, 1000, 2000]   # rfcheck-only depth sweep (plain Conv2d(8,8,3,p=1) stacks)
QUICK = ["dilated", "resnet18"]


class FuncBranches(nn.Module):
    """Functional ops (F.max_pool2d, F.avg_pool2d, F.conv2d with a bare parameter) with a
    concat and a residual add."""

    # stem conv 3x3 p1:                      r = 3,               j = 1
    # F.max_pool2d(2):                       r = 3 + 1*1 = 4,     j = 2
    # branch a: two conv 3x3 p1:             r = 4 + 2*2 + 2*2 = 12
    # branch b: F.avg_pool2d(3, 1, 1):       r = 4 + 2*2 = 8
    # cat([a, b]):                           r = 12 (largest)
    # conv 1x1 (proj) + conv 1x1 (skip of x, r 4): add -> r = 12
    # F.max_pool2d(3, 2, padding 1):         r = 12 + 2*2 = 16,   j = 4
    # F.conv2d(w 3x3, padding 1):            r = 16 + 2*4 = 24,   j = 4        -> 24 x 24, jump 4
    # params: stem 3*8*9+8 = 224, a1 584, a2 584, proj 16*8+8 = 136, skip 8*8+8 = 72,
    #   w 8*8*9 + b 8 = 584                                                     -> 2184
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a1, self.a2 = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.proj, self.skip = nn.Conv2d(16, 8, 1), nn.Conv2d(8, 8, 1)
        self.w = nn.Parameter(torch.randn(8, 8, 3, 3) * 0.1)
        self.b = nn.Parameter(torch.zeros(8))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 2)
        a = self.a2(F.relu(self.a1(x)))
        b = F.avg_pool2d(x, 3, stride=1, padding=1)
        y = self.proj(torch.cat([a, b], dim=1)) + self.skip(x)
        y = F.max_pool2d(F.relu(y), 3, stride=2, padding=1)
        return F.conv2d(y, self.w, self.b, padding=1)


def net3d() -> nn.Module:
    # On a (2, 16, 32, 32) clip; axes D, H, W:
    # Conv3d k3 p1:                          r (3, 3, 3),          j (1, 1, 1)
    # Conv3d k(1,3,3) s(1,2,2) p(0,1,1):     r (3, 5, 5),          j (1, 2, 2)
    # MaxPool3d 2:                           r (4, 7, 7),          j (2, 4, 4)
    # Conv3d k3 p1:                          r (4+2*2, 7+2*4, 7+2*4) = (8, 15, 15)   -> jump (2, 4, 4)
    # params: 2*8*27+8 = 440, 8*8*9+8 = 584, 8*8*27+8 = 1736                      -> 2760
    return nn.Sequential(
        nn.Conv3d(2, 8, 3, padding=1), nn.ReLU(),
        nn.Conv3d(8, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), nn.ReLU(),
        nn.MaxPool3d(2), nn.Conv3d(8, 8, 3, padding=1))


def plain(depth: int) -> nn.Module:
    # depth convs k3 s1: r = 1 + 2*depth, j = 1
    return nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(depth)])


def input_size(key: str) -> tuple[int, ...]:
    if key.startswith("resnet50@"):
        s = int(key.split("@")[1])
        return (3, s, s)
    if key.startswith("plain"):
        return (8, 64, 64)
    if key == "inception_v3":
        return (3, 299, 299)
    if key in TV:
        return (3, 224, 224)
    if key in DESIGNS:
        return (3, 32, 32)   # the project's [rfcheck] input_size (setup.cfg); the designs set none
    return {"dilated": (3, 64, 64), "transposed": (3, 32, 32), "func_branches": (3, 32, 32),
            "asymmetric": (3, 48, 96), "shared": (3, 32, 32), "conv1d": (2, 256),
            "conv3d": (2, 16, 32, 32)}[key]


def group(key: str) -> str:
    if key in TV:
        return "torchvision"
    if key in DESIGNS:
        return "models/"
    if key in SMALL:
        return "small"
    return "scale"


def describe(key: str) -> str:
    if key in TV:
        return f"torchvision {key}" + (" (aux_logits=False, init_weights=False)" if key in TV_KW else "")
    if key in DESIGNS:
        return DESIGNS[key]
    if key.startswith("plain"):
        return f"{key[5:]} x Conv2d(8,8,3,p=1)"
    if key.startswith("resnet50@"):
        return "torchvision resnet50"
    return {"dilated": "dilated conv stack (d=1,2,4,8, pool, d=2)",
            "transposed": "transposed conv (k3 s2, phase-dependent)",
            "func_branches": "functional ops, concat + residual branches, bare F.conv2d",
            "asymmetric": "1x7 / 7x1 kernels, stride (1,2), non-square input",
            "shared": "one conv module called twice (shared weights)",
            "conv1d": "Conv1d, dilation, MaxPool1d",
            "conv3d": "Conv3d, (1,3,3) kernel, MaxPool3d"}[key]


def build_model(key: str) -> nn.Module:
    torch.manual_seed(0)
    if key.startswith("resnet50@"):
        key = "resnet50"
    if key in TV:
        import torchvision
        return getattr(torchvision.models, key)(weights=None, **TV_KW.get(key, {}))
    if key in DESIGNS:
        from rfcheck.loader import load_entries
        for label, model, _ in load_entries(os.path.join(ROOT, "models")):
            if label.endswith(DESIGNS[key].split("/", 1)[1]):
                return model
        raise KeyError(key)
    if key.startswith("plain"):
        return plain(int(key[5:]))
    import correctness as C  # benchmarks/correctness.py: the earlier cases, reused
    return {"dilated": C.dilated_stack, "transposed": C.transposed, "func_branches": FuncBranches,
            "asymmetric": C.asymmetric, "shared": C.SharedWeights, "conv1d": C.conv1d, "conv3d": net3d}[key]()


# Hand-derived reference RF and jump (per axis: H, W; L for 1D; D, H, W for 3D).
HAND: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    # alexnet features: conv 11 s4: r 11, j 4; max pool 3 s2: 11 + 2*4 = 19, j 8; conv 5: 19 + 4*8 = 51;
    #   max pool 3 s2: 51 + 2*8 = 67, j 16; three conv 3: 67 + 3*(2*16) = 163; max pool 3 s2:
    #   163 + 2*16 = 195, j 32.  avgpool AdaptiveAvgPool2d(6) on the 6x6 map is the identity; the
    #   flatten + Linear is the global reduction.                                  -> 195, jump 32
    "alexnet": ((195, 195), (32, 32)),
    # vgg16: two conv 3: 5; pool 2: 6, j 2; two conv: 6 + 2*(2*2) = 14; pool: 14 + 1*2 = 16, j 4;
    #   three conv: 16 + 3*8 = 40; pool: 44, j 8; three conv: 44 + 3*16 = 92; pool: 100, j 16;
    #   three conv: 100 + 3*32 = 196; pool: 196 + 16 = 212, j 32 (AdaptiveAvgPool2d(7) on 7x7:
    #   identity)                                                                  -> 212, jump 32
    "vgg16": ((212, 212), (32, 32)),
    # resnet18 (BasicBlock: two 3x3; the first of layer2-4 strided): stem conv 7 s2: 7, j 2; max
    #   pool 3 s2: 11, j 4; layer1: 11 + 4*(2*4) = 43; layer2: 43 + 2*4 = 51 (j 8), + 3*16 = 99;
    #   layer3: 99 + 16 = 115 (j 16), + 3*32 = 211; layer4: 211 + 32 = 243 (j 32), + 3*64 = 435
    #                                                                              -> 435, jump 32
    "resnet18": ((435, 435), (32, 32)),
    # resnet50 (Bottleneck 1x1, 3x3 (strided in the first block of layer2-4), 1x1): 11 (j 4);
    #   layer1: 3 x (+8) = 35; layer2: +8 = 43 (j 8), 3 x (+16) = 91; layer3: +16 = 107 (j 16),
    #   5 x (+32) = 267; layer4: +32 = 299 (j 32), 2 x (+64) = 427                -> 427, jump 32
    #   (the RF does not depend on the input size: the same at 1024 and 2048)
    "resnet50": ((427, 427), (32, 32)),
    "resnet50@1024": ((427, 427), (32, 32)),
    "resnet50@2048": ((427, 427), (32, 32)),
    # densenet121: conv0 7 s2: 7, j 2; pool0 3 s2: 11, j 4; every dense layer (BN-ReLU-1x1-BN-ReLU-3x3)
    #   adds 2*j, the concat keeps the largest: block1 6 layers: 11 + 6*8 = 59; transition (1x1, avg pool
    #   2 s2): 59 + 4 = 63, j 8; block2 12 layers: 63 + 12*16 = 255; transition: 263, j 16; block3 24
    #   layers: 263 + 24*32 = 1031; transition: 1047, j 32; block4 16 layers: 1047 + 16*64 = 2071
    #   (then norm5, F.relu, the global pool)                                     -> 2071, jump 32
    "densenet121": ((2071, 2071), (32, 32)),
    # inception_v3 (299): 1a 3x3 s2: 3, j 2; 2a 3x3: 7; 2b 3x3: 11; max pool 3 s2: 15, j 4; 3b 1x1;
    #   4a 3x3: 23; max pool 3 s2: 31, j 8.  Mixed_5b/c/d (InceptionA; largest branches 1x1-5x5 and
    #   1x1-3x3-3x3: +4*8 = 32 each): 63, 95, 127.  Mixed_6a (InceptionB; 1x1-3x3-3x3 s2: +16 +16):
    #   159, j 16.  Mixed_6b-e (InceptionC; 1x1-7x1-1x7-7x1-1x7: per axis two 7-taps, +2*6*16 = 192
    #   each): 159 + 4*192 = 927.  Mixed_7a (InceptionD; 1x1-1x7-7x1-3x3 s2: +96 +32): 1055, j 32.
    #   Mixed_7b/c (InceptionE; 1x1-3x3-(1x3 | 3x1): +64 +64 per axis): 1183, 1311  -> 1311, jump 32
    "inception_v3": ((1311, 1311), (32, 32)),
    # convnext_tiny: stem conv 4 s4: 4, j 4; stage 1, 3 blocks (depthwise 7x7, the rest pointwise):
    #   4 + 3*6*4 = 76; downsample conv 2 s2: 80, j 8; stage 2, 3 blocks: 80 + 3*48 = 224; down: 232,
    #   j 16; stage 3, 9 blocks: 232 + 9*96 = 1096; down: 1112, j 32; stage 4, 3 blocks:
    #   1112 + 3*192 = 1688                                                        -> 1688, jump 32
    "convnext_tiny": ((1688, 1688), (32, 32)),
    # 1000 convs k3 s1: 1 + 2*1000                                                -> 2001, jump 1
    "plain1000": ((2001, 2001), (1, 1)),
    # small nets: derivations in benchmarks/correctness.py (dilated, transposed, asymmetric,
    # shared, conv1d) and above (FuncBranches, net3d)
    "dilated": ((40, 40), (2, 2)),
    "transposed": ((7, 7), (1, 1)),
    "func_branches": ((24, 24), (4, 4)),
    "asymmetric": ((9, 21), (1, 2)),
    "shared": ((11, 11), (2, 2)),
    "conv1d": ((25,), (4,)),
    "conv3d": ((8, 15, 15), (2, 4, 4)),
    # models/net.py Net: tests/test_golden.py::test_bundled_net_hand_derivation         -> 67, jump 4
    "net": ((67, 67), (4, 4)),
}
for _d in DEPTHS:
    HAND[f"plain{_d}"] = ((1 + 2 * _d,) * 2, (1, 1))

# --------------------------------------------------------------------------------------------
# The global pool's input, and the reference's substitutions
# --------------------------------------------------------------------------------------------

_ADAPTIVE = {f"adaptive_{k}_pool{n}d" for k in ("avg", "max") for n in (1, 2, 3)}
_MAXPOOL = {"max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
            "max_pool3d_with_indices"}
_CLAMPS = {"hardtanh", "hardtanh_", "relu6", "relu6_"}
_ACTIVATIONS = _CLAMPS | {"relu", "relu_", "hardswish", "hardsigmoid", "silu", "gelu", "sigmoid", "sigmoid_", "tanh",
                          "elu", "leaky_relu", "leaky_relu_", "mish", "softplus"}


def _arg(args, kwargs, i, name, default=None):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _is_global(name: str, args, kwargs) -> bool:
    """A call that reduces a feature map over its spatial dims (a global pool): an adaptive
    pool (alexnet's and vgg's AdaptiveAvgPool2d keep a 6x6 / 7x7 map that the flatten + linear
    then reduces: their input is the point too), or a mean / amax over all spatial dims."""
    if name in _ADAPTIVE:
        return True
    if name in ("mean", "amax") and args and isinstance(args[0], torch.Tensor) and args[0].ndim >= 3:
        dims = _arg(args, kwargs, 1, "dim")
        if dims is None:
            return False
        dims = [dims] if isinstance(dims, int) else list(dims)
        nd = args[0].ndim
        return sorted(d % nd for d in dims) == list(range(2, nd))
    return False


class GlobalPoolInput(TorchFunctionMode):
    """Records the input of the last global pool of a forward pass.  ``how``:

    * "plain": nothing else;
    * "reference": the gradient reference's substitutions (max pool -> average pool over the
      same window, clamps -> identity, SE-style global pools inside the trunk detached);
    * "readme": receptivefield's README advice (linear activations, average instead of max
      pooling): max pool -> average pool, every activation -> identity."""

    def __init__(self, how: str = "plain"):
        super().__init__()
        self.how = how
        self.captured: Optional[torch.Tensor] = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if self.how != "plain":
            if name in _MAXPOOL:
                nd = int(re.search(r"(\d)d", name).group(1))
                x, k = args[0], _arg(args, kwargs, 1, "kernel_size")
                s = _arg(args, kwargs, 2, "stride") or k
                p = _arg(args, kwargs, 3, "padding", 0)
                d = _arg(args, kwargs, 4, "dilation", 1)
                ceil = _arg(args, kwargs, 5, "ceil_mode", False)
                if any(v != 1 for v in (d if isinstance(d, (tuple, list)) else (d,))):
                    raise NotImplementedError("dilated max pool in the gradient reference")
                avg = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1]
                return avg(x, k, s, p, ceil)
            if name in (_CLAMPS if self.how == "reference" else _ACTIVATIONS):
                return args[0]
        out = func(*args, **kwargs)
        if _is_global(name, args, kwargs):
            self.captured = args[0]
            if self.how == "reference" and isinstance(out, torch.Tensor):
                out = out.detach()
        return out


class Trunk(nn.Module):
    """The model up to the input of its global pool (the whole model when it has none)."""

    def __init__(self, model: nn.Module, how: str = "plain"):
        super().__init__()
        self.model = model
        self.how = how

    def forward(self, x):
        mode = GlobalPoolInput(self.how)
        with mode:
            y = self.model(x)
        out = mode.captured if mode.captured is not None else y
        self.feature_maps = [out]      # receptivefield reads this attribute
        return out


# --------------------------------------------------------------------------------------------
# Tools: each returns a callable that makes the tool's call, and a reader that turns its result
# into {"rf", "jump", "at", "params", "macs"} (None where the tool gives nothing).
# --------------------------------------------------------------------------------------------


def _spatial_extent(shape) -> bool:
    return shape is not None and len(shape) >= 3 and math.prod(shape[2:]) > 1


def tool_call(tool: str, model: nn.Module, size: tuple[int, ...]) -> tuple[Callable[[], Any], Callable[[Any], dict]]:
    nd = len(size) - 1
    sink = io.StringIO()

    if tool == "rfcheck":
        import rfcheck

        def read(r):
            return {"rf": tuple(int(v) for v in r.rf.size), "jump": tuple(float(j) for j in r.rf.jump), "at": r.rf.at,
                    "params": int(r.params.total), "macs": int(r.macs)}
        return (lambda: rfcheck.analyze(model, input_size=size)), read

    if tool == "torchscan":
        import torchscan

        def call():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torchscan.crawl_module(model, size, device="cpu")

        def read(report):
            rf, j, at, last = 1.0, 1.0, None, None
            for layer in report["layers"]:              # call order
                k = layer["metrics"].get("receptive_field")
                st = layer["metrics"].get("effective_stride")
                if k is None or st is None or k["status"] != "complete" or st["status"] != "complete":
                    continue
                rf += j * (k["value"] - 1)
                j *= st["value"]
                if _spatial_extent((layer.get("output") or {}).get("shape")):
                    last = (rf, j, layer["path"] or layer["name"])
            if last is not None:
                rf, j, at = last
            tot = report["totals"]
            macs = tot["macs"]["value"] if tot["macs"]["status"] == "complete" else tot["macs"]["known_value"]
            return {"rf": rf, "jump": j, "at": at, "params": int(tot["parameters"]["value"]),
                    "macs": None if macs is None else int(macs)}
        return call, read

    if tool == "torchinfo":
        import torchinfo

        def read(stats):
            return {"rf": None, "jump": None, "at": None, "params": int(stats.total_params),
                    "macs": int(stats.total_mult_adds)}
        return (lambda: torchinfo.summary(model, input_size=(1,) + tuple(size), verbose=0, device="cpu")), read

    if tool == "rf_calc":
        if nd != 2:
            raise Unsupported("2D only (parses ' Conv2d' / ' MaxPoo' from the repr, square int input)")
        import rf_calc

        def call():
            with contextlib.redirect_stdout(sink):
                df = rf_calc.receptive_field(model, size[1])
            return df, rf_calc.model_df(model)

        def read(res):
            df, labels = res
            rows = list(labels.layers)
            idx = [i for i, lab in enumerate(rows) if not lab.startswith(" AdaptiveAvgPool2d")]
            if not idx:
                raise ValueError("no Conv2d / MaxPool2d row in its table")
            cell = str(df["Receptive_field"].iloc[idx[-1]])
            return {"rf": int(cell.split("*")[0]), "jump": None, "at": f"row {idx[-1]}: {rows[idx[-1]].strip()[:40]}",
                    "params": None, "macs": None}
        return call, read

    if tool in ("receptivefield", "receptivefield_readme"):
        if nd != 2:
            raise Unsupported("2D only (GridShape n, w, h, c)")
        import logging

        from receptivefield.pytorch import PytorchReceptiveField
        from receptivefield.types import ImageShape
        logging.getLogger().setLevel(logging.WARNING)   # it configures the root logger at INFO
        if tool == "receptivefield":
            wrapper = Trunk(model)
        else:
            wrapper = Trunk(readme_prep(model), how="readme")

        def call():
            with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
                warnings.simplefilter("ignore")
                return PytorchReceptiveField(lambda: wrapper).compute(
                    input_shape=ImageShape(w=size[2], h=size[1], c=size[0]))

        def read(desc):
            d = desc[0].rf
            num = lambda v: float(v)  # noqa: E731
            rf = (num(d.size.h), num(d.size.w))
            return {"rf": tuple(int(v) if v == v else v for v in rf), "jump": (num(d.stride[1]), num(d.stride[0])),
                    "at": "feature_maps[0]", "params": None, "macs": None}
        return call, read

    if tool == "fvcore":
        from fvcore.nn import FlopCountAnalysis, parameter_count
        x = torch.randn((1,) + tuple(size))

        def call():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = FlopCountAnalysis(model, (x,)).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                return f.total(), parameter_count(model)[""]

        def read(res):
            return {"rf": None, "jump": None, "at": None, "params": int(res[1]), "macs": int(res[0])}
        return call, read

    if tool == "ptflops":
        from ptflops import get_model_complexity_info

        def call():
            with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                warnings.simplefilter("ignore")
                return get_model_complexity_info(model, tuple(size), as_strings=False, print_per_layer_stat=False,
                                                 verbose=False, ost=sink)

        def read(res):
            macs, params = res
            if macs is None:
                tail = [l for l in sink.getvalue().splitlines() if l.strip()][-1:] or ["(no message)"]
                raise RuntimeError(f"ptflops returned None: {tail[0][:100]}")
            return {"rf": None, "jump": None, "at": None, "params": int(params), "macs": int(macs)}
        return call, read

    raise KeyError(tool)


class Unsupported(Exception):
    pass


def readme_prep(model: nn.Module) -> nn.Module:
    """receptivefield's README: "it is suggested to use Linear (instead Relu) activation and
    AvgPool2D instead of MaxPool2D ... one may even initialize network with constant positive
    values in all weights ... and set biases to zero".  A float32 copy with every weight tensor
    (2 dims or more) set to the constant 1/fan-in, biases 0, norm scales 1, batch-norm running
    stats 0 / 1; the activations and max pools are swapped at run time (GlobalPoolInput
    "readme").  Not timed."""
    m = copy.deepcopy(model).float().eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.ndim >= 2:
                p.fill_(1.0 / max(1, p[0].numel()))
            elif name.rsplit(".", 1)[-1] == "weight":
                p.fill_(1.0)
            else:
                p.zero_()
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.running_mean is not None:
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
    for mod in m.modules():
        if hasattr(mod, "inplace"):
            mod.inplace = False
    return m


# --------------------------------------------------------------------------------------------
# Child processes (forked)
# --------------------------------------------------------------------------------------------


def _short(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or "(no message)"
    return f"{type(e).__name__}: {msg[:90] + ('...' if len(msg) > 90 else '')}"


def tool_child(tool: str, model: nn.Module, size, repeats: int, repeat_budget_s: float) -> dict:
    torch.set_num_threads(1)
    # ptflops feeds its model torch.ones(()).new_empty(...): uninitialized memory, which after the
    # first call holds leftovers of freed tensors, denormal floats among them; x86 arithmetic on
    # denormals is slow (vgg16: 0.3 s for the first ptflops call, 19 s for the next ones).  Flush
    # them to zero, for every tool.
    torch.set_flush_denormal(True)
    try:
        call, read = tool_call(tool, model, size)
    except Unsupported as e:
        return {"unsupported": str(e)}
    # Fault in, in this process, the code pages and first-call caches a call needs (a forked
    # child shares the parent's file-backed pages but maps them again on first touch, which
    # would otherwise count as the call's memory): one call on a tiny model of the same kind.
    nd = len(size) - 1
    try:
        tc, tr = tool_call(tool, tiny_model(nd), (3,) + (16 if nd < 3 else 8,) * nd)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tr(tc())
    except Exception:  # noqa: BLE001 - e.g. rf_calc cannot parse AdaptiveAvgPool2d
        pass
    gc.collect()
    have_peak = reset_peak()
    rss0 = proc_status_kb("VmRSS")
    ru0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    try:
        out = call()
        first = time.perf_counter() - t0
        peak_kb = (proc_status_kb("VmHWM") - rss0) if have_peak else \
            (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - ru0)
        values = read(out)
    except Exception as e:  # noqa: BLE001 - a tool's failure is a result
        return {"error": _short(e), "where": traceback.format_exc(limit=-3)[-600:]}
    del out
    n = max(0, min(repeats, int(repeat_budget_s // max(first, 1e-9))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return {"values": values, "first_s": first, "times_s": times,
            "median_s": statistics.median(times) if times else first,
            "mean_s": statistics.fmean(times) if times else first, "peak_mb": max(0, peak_kb) / 1024,
            "peak_method": "VmHWM after clear_refs" if have_peak else "ru_maxrss delta",
            "threads": torch.get_num_threads()}


def depth_child(depth: int, calls: int, gc_off: bool) -> dict:
    """rfcheck on a plain stack: mean and median of ``calls`` calls after a warm-up, the time the
    cyclic garbage collector took during them, or with the collector disabled."""
    import rfcheck
    torch.set_num_threads(1)
    model = plain(depth).eval()
    gc_s, n_full, t_start = [0.0], [0], [0.0]

    def cb(phase, info):
        if phase == "start":
            t_start[0] = time.perf_counter()
        else:
            gc_s[0] += time.perf_counter() - t_start[0]
            n_full[0] += info.get("generation") == 2
    r = rfcheck.analyze(model, input_size=(8, 64, 64))
    gc.collect()
    gc.callbacks.append(cb)
    if gc_off:
        gc.disable()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        rfcheck.analyze(model, input_size=(8, 64, 64))
        times.append(time.perf_counter() - t0)
    gc.callbacks.remove(cb)
    return {"rf": tuple(int(v) for v in r.rf.size), "mean_s": statistics.fmean(times),
            "median_s": statistics.median(times), "gc_s": gc_s[0] / calls, "full_gc": n_full[0] / calls,
            "objects": len(gc.get_objects())}


def _timeout_handler(signum, frame):
    raise TimeoutError("gradient measurement ran past its cap")


def reference_child(key: str, model: nn.Module, size, hint_rf, hint_jump, grad_cap_s: float, threads: int) -> dict:
    """params, MACs (FlopCounterMode on a meta copy) and, where asked, the gradient RF/jump."""
    torch.set_num_threads(threads)
    out: dict[str, Any] = {"params": sum(p.numel() for p in model.parameters())}
    try:
        from torch.utils.flop_counter import FlopCounterMode
        meta = copy.deepcopy(model).to("meta")
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            meta(torch.empty((1,) + tuple(size), device="meta"))
        out["macs"] = fc.get_total_flops() // 2
        del meta
    except Exception as e:  # noqa: BLE001
        out["macs_error"] = _short(e)
    if hint_rf is None:
        return out
    from reference import ReferenceChain
    from reference import size as box_size
    nd = len(size) - 1
    window = 4 if key in ("transposed", "net_transposed") else 2   # phases of a stride-2 transposed conv
    jumps = [max(1, math.ceil(j)) for j in hint_jump]
    spatial = []
    for a in range(nd):
        s = max(size[1 + a], hint_rf[a] + (window + 3) * jumps[a])
        spatial.append(int(math.ceil(s / jumps[a]) * jumps[a]))
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _timeout_handler)
    signal.alarm(int(grad_cap_s))
    try:
        trunk = Trunk(model, how="reference")
        with torch.no_grad():
            probe = Trunk(copy.deepcopy(model).to("meta"))
            shape = probe(torch.empty((1, size[0]) + tuple(spatial), device="meta")).shape[2:]
        centre = [n // 2 - window // 2 for n in shape]
        if any(c < 0 or c + window > n for c, n in zip(centre, shape)):
            raise ValueError(f"map {tuple(shape)} too small for a {window}-unit window")
        positions = [tuple(c + t for c in centre) for t in range(window)]
        # one forward (batch 1), one backward per unit (unit_boxes would run a batch of `window`)
        chain = ReferenceChain([trunk], (size[0],) + tuple(spatial), batch=1)
        boxes = [chain.boxes(0, [pos], check=False)[0] for pos in positions]
    except Exception as e:  # noqa: BLE001
        signal.alarm(0)
        out["grad_error"] = _short(e)
        out["grad_s"] = time.perf_counter() - t0
        out["grad_input"] = tuple(spatial)
        return out
    signal.alarm(0)
    out["grad_s"] = time.perf_counter() - t0
    out["grad_input"] = tuple(spatial)
    rf, jump, clipped = [], [], []
    for a in range(nd):
        bs = [b[a] for b in boxes]
        if any(b is None for b in bs):
            out["grad_error"] = f"a measured unit depends on no input pixel along axis {a}"
            return out
        rf.append(max(box_size(b) for b in bs))
        jump.append(((bs[-1][0] + bs[-1][1]) - (bs[0][0] + bs[0][1])) / 2 / (window - 1))
        if min(b[0] for b in bs) < jumps[a] or max(b[1] for b in bs) > spatial[a] - 1 - jumps[a]:
            clipped.append(a)
    if clipped:
        out["grad_error"] = f"measured box within one jump of the border on axis {clipped} (clipped?)"
        return out
    out["grad_rf"], out["grad_jump"] = tuple(rf), tuple(jump)
    return out


def profile_child(key: str, model: nn.Module, size, top: int = 18) -> dict:
    import cProfile
    import pstats

    import rfcheck
    torch.set_num_threads(1)
    rfcheck.analyze(model, input_size=size)   # warm-up
    t0 = time.perf_counter()
    rfcheck.analyze(model, input_size=size)
    plain_s = time.perf_counter() - t0
    gc.collect()
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    rfcheck.analyze(model, input_size=size)
    pr.disable()
    wall = time.perf_counter() - t0
    res = {"wall_s": wall, "plain_s": plain_s}
    groups: dict[str, float] = {}
    total = 0.0
    for (fname, _line, func), (_cc, _nc, tt, _ct, _callers) in pstats.Stats(pr).stats.items():
        total += tt
        if "/rfcheck/" in fname:
            g = "rfcheck (its own Python: tracer, rules, geometry, report)"
        elif "/torch/" in fname:
            g = "torch Python (nn.Module call machinery, functional wrappers, meta registrations)"
        elif fname == "~" and ("torch" in func or "method" in func and ("Tensor" in func or "conv" in func)):
            g = "torch C++ calls (meta kernels, tensor methods)"
        elif fname == "~":
            g = "other built-ins (isinstance, tuple/dict ops, ...)"
        elif "/torchvision/" in fname:
            g = "torchvision (the model's forward)"
        else:
            g = "stdlib (fractions, dataclasses, ...) and others"
        groups[g] = groups.get(g, 0.0) + tt
    res["groups"] = sorted(((g, v, v / total if total else 0.0) for g, v in groups.items()), key=lambda x: -x[1])
    for sort in ("tottime", "cumulative"):
        s = io.StringIO()
        st = pstats.Stats(pr, stream=s)
        st.strip_dirs().sort_stats(sort).print_stats(top)
        text = s.getvalue()
        lines = text.splitlines()
        start = next((i for i, l in enumerate(lines) if l.strip().startswith("ncalls")), 0)
        res[sort] = "\n".join(l.rstrip() for l in lines[start:] if l.strip())
        if sort == "tottime":
            m = re.search(r"([\d,]+) function calls .*? in ([\d.]+) seconds", text)
            res["calls"] = m.group(0) if m else ""
    return res


def _child_entry(conn, fn, args):
    try:
        res = fn(*args)
    except BaseException as e:  # noqa: BLE001
        res = {"error": _short(e), "where": traceback.format_exc()[-800:]}
    try:
        conn.send(res)
    finally:
        conn.close()
    os._exit(0)


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            m = re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M)
            return int(m.group(1)) if m else 0
    except OSError:
        return 0


try:
    _LIBC = ctypes.CDLL("libc.so.6")
    _LIBC.malloc_trim  # noqa: B018 - glibc only
except (OSError, AttributeError):
    _LIBC = None


def _trim_heap() -> None:
    """Give the parent's freed heap back to the OS before a fork (glibc keeps it after a big model
    such as vgg16 is dropped): a child that reuses those pages pays a copy-on-write fault on
    each, which made rfcheck's calls on later models up to 2x slower in the children than in a
    fresh process (densenet121: 43 ms vs 22 ms)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def run_forked(fn, args, timeout: float, mem_cap_gb: float) -> dict:
    """Run fn(*args) in a forked child; kill it past ``timeout`` seconds or ``mem_cap_gb`` RSS."""
    ctx = mp.get_context("fork")
    _trim_heap()
    r, w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child_entry, args=(w, fn, args), daemon=True)
    t0 = time.perf_counter()
    p.start()
    w.close()
    max_rss = 0
    try:
        while True:
            if r.poll(0.05):
                try:
                    res = r.recv()
                except EOFError:
                    res = None
                p.join(10)
                if res is None:
                    return {"error": f"child died (exit code {p.exitcode})"}
                res["wall_s"] = time.perf_counter() - t0
                return res
            if not p.is_alive():
                p.join()
                code = p.exitcode
                why = " (SIGKILL: out of memory?)" if code == -signal.SIGKILL else ""
                return {"error": f"crashed: child exited with code {code}{why}"}
            max_rss = max(max_rss, _rss_kb(p.pid))
            if max_rss > mem_cap_gb * 1024 * 1024:
                p.kill()
                p.join()
                return {"error": f"memory cap: RSS above {mem_cap_gb:g} GiB", "killed": "memory",
                        "max_rss_mb": max_rss / 1024}
            if time.perf_counter() - t0 > timeout:
                p.kill()
                p.join()
                return {"error": f"timeout > {timeout:g} s", "killed": "timeout", "max_rss_mb": max_rss / 1024}
    finally:
        r.close()


# --------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tiny_model(nd: int) -> nn.Module:
    conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[nd - 1]
    bn = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[nd - 1]
    mp_ = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[nd - 1]
    gap = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[nd - 1]
    return nn.Sequential(conv(3, 4, 3, padding=1), bn(4), nn.ReLU(), mp_(2), nn.Dropout(0.1), gap(1), nn.Flatten(),
                         nn.Linear(4, 2)).eval()


def warm_tools(tools) -> dict[str, dict]:
    """Import every tool and call it on tiny 1D/2D/3D models in the parent (lazy imports and
    first-call caches are then inherited by every forked child).  Returns import and cold
    first-call times."""
    info = {}
    torch.set_num_threads(1)
    for t in tools:
        t0 = time.perf_counter()
        d: dict[str, Any] = {}
        try:
            __import__({"rfcheck": "rfcheck", "torchscan": "torchscan", "torchinfo": "torchinfo", "rf_calc": "rf_calc",
                        "receptivefield": "receptivefield.pytorch", "receptivefield_readme": "receptivefield.pytorch",
                        "fvcore": "fvcore.nn", "ptflops": "ptflops"}[t])
            d["import_s"] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001
            d["missing"] = _short(e)
            info[t] = d
            continue
        for nd, sz in ((2, (3, 16, 16)), (1, (3, 32)), (3, (3, 8, 8, 8))):
            try:
                call, read = tool_call(t, tiny_model(nd), sz)
                t0 = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    read(call())
                if nd == 2:
                    d["cold_s"] = time.perf_counter() - t0
            except Exception as e:  # noqa: BLE001
                if nd == 2:
                    d["cold_error"] = _short(e)
        info[t] = d
    return info


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except Exception:  # noqa: BLE001
        return "not installed"


def compare(value, ref) -> Optional[bool]:
    """True if the tool's value (a number for every axis, or a per-axis tuple) equals ref."""
    if value is None or ref is None:
        return None
    ref = tuple(float(v) for v in ref)
    if isinstance(value, (tuple, list)):
        try:
            vals = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            return False
        return len(vals) == len(ref) and all(abs(a - b) < 1e-9 for a, b in zip(vals, ref))
    try:
        return all(abs(float(value) - r) < 1e-9 for r in ref)
    except (TypeError, ValueError):
        return False


def fmt_num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (tuple, list)):
        if len(set(map(str, v))) == 1 and len(v) > 1:
            return fmt_num(v[0])
        return " x ".join(fmt_num(x) for x in v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f != f:
        return "nan"
    if abs(f) >= 1e7:
        return f"{f:.3g}"
    if f.is_integer():
        return str(int(f))
    return f"{f:.3g}"


def fmt_s(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.1f} ms" if v < 0.1 else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def fmt_mb(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.1f} MB" if v < 10 else f"{v:,.0f} MB"


def fmt_int(v) -> str:
    return "-" if v is None else f"{int(v):,}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"smoke test: {', '.join(QUICK)}, 1 repeat, no scale runs, "
                                                        "no profile")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per (tool, model) below the scale runs, tools "
                    "interleaved, fastest round kept (default 3)")
    ap.add_argument("--round-budget", type=float, default=5.0,
                    help="extra rounds only for pairs whose first round took less than this many seconds (default 5)")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls after the warm-up (default 5; 1 with --quick)")
    ap.add_argument("--models", default=None, help="comma-separated model keys (default: all). Keys: "
                    + ",".join(TV + list(DESIGNS) + SMALL + SCALE))
    ap.add_argument("--tools", default=None, help="comma-separated subset of " + ",".join(TOOLS))
    ap.add_argument("--no-scale", action="store_true", help="skip the scale runs and the depth sweep")
    ap.add_argument("--no-gradient", action="store_true", help="skip the gradient reference (hand values only)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per (tool, model) process (default 120)")
    ap.add_argument("--scale-timeout", type=float, default=120.0, help="seconds per scale-run process (default 120)")
    ap.add_argument("--repeat-budget", type=float, default=12.0,
                    help="seconds of timed repeats per pair; slower tools get fewer repeats (default 12)")
    ap.add_argument("--grad-cap", type=float, default=60.0, help="seconds for one gradient measurement (default 60)")
    ap.add_argument("--grad-max-rf", type=int, default=1000, help="gradient reference only where rfcheck's RF <= this")
    ap.add_argument("--ref-threads", type=int, default=2, help="torch threads for the (untimed) gradient reference")
    ap.add_argument("--mem-cap-gb", type=float, default=14.0, help="kill a process above this RSS (default 14 GiB)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"), help="output folder")
    ap.add_argument("--json", default=None, help="also dump the raw results to this JSON file")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    if args.quick:
        args.rounds = 1
    tools = [t.strip() for t in args.tools.split(",")] if args.tools else list(TOOLS)
    for t in tools:
        if t not in TOOLS:
            ap.error(f"unknown tool {t}")
    if "rfcheck" not in tools:
        tools.insert(0, "rfcheck")   # the ratios and the gradient input sizes need it
    if args.models:
        models = [m.strip() for m in args.models.split(",")]
    elif args.quick:
        models = list(QUICK)
    else:
        models = TV + list(DESIGNS) + SMALL + SCALE
    valid = set(TV) | set(DESIGNS) | set(SMALL) | set(SCALE) | {f"plain{d}" for d in DEPTHS}
    for m in models:
        if m not in valid:
            ap.error(f"unknown model {m}")
    if args.quick or args.no_scale:
        models = [m for m in models if m not in SCALE]
    do_depth = not (args.quick or args.no_scale or args.models)

    log(f"importing and warming up {', '.join(tools)} in the parent")
    import correctness  # noqa: F401
    import torchvision  # noqa: F401  (imported before the forks)
    warm = warm_tools(tools)
    tools = [t for t in tools if "missing" not in warm[t]]
    torch.set_num_threads(1)

    results: dict[str, dict[str, dict]] = {}
    refs: dict[str, dict] = {}
    for key in models:
        size = input_size(key)
        timeout = args.scale_timeout if key in SCALE else args.timeout
        log(f"{key} {size}: building")
        model = build_model(key).eval()
        results[key] = {}
        for tool in tools:
            prev = {"resnet50@1024": "resnet50", "resnet50@2048": "resnet50@1024"}.get(key)
            pr = results.get(prev, {}).get(tool, {}) if prev else {}
            if prev and "first_s" in pr:
                # a forward pass costs ~ pixels: don't spend the timeout where the smaller size
                # already says it will be exceeded
                est = pr["first_s"] * (size[1] * size[2]) / (input_size(prev)[1] * input_size(prev)[2])
                if est > 0.9 * timeout:
                    results[key][tool] = {"error": f"timeout (skipped: ~{est:.0f} s per call extrapolated from "
                                                   f"{prev} x pixels > {timeout:g} s)", "killed": "timeout"}
                    log(f"  {tool}: {results[key][tool]['error']}")
                    continue
            if prev and pr.get("killed") == "timeout":
                results[key][tool] = {"error": f"timeout (skipped: timed out at {prev})", "killed": "timeout"}
                log(f"  {tool}: {results[key][tool]['error']}")
                continue
            res = run_forked(tool_child, (tool, model, size, repeats if key not in SCALE else min(repeats, 2),
                                          args.repeat_budget), timeout, args.mem_cap_gb)
            results[key][tool] = res
            if "values" in res:
                res["round_medians_s"] = [res["median_s"]]
                v = res["values"]
                msg = (f"rf {fmt_num(v['rf'])} jump {fmt_num(v['jump'])} params {fmt_int(v['params'])} "
                       f"macs {fmt_int(v['macs'])}; {fmt_s(res['median_s'])} (n={len(res['times_s'])}), "
                       f"peak {fmt_mb(res['peak_mb'])}")
            else:
                msg = res.get("unsupported") and f"unsupported: {res['unsupported']}" or res.get("error")
            log(f"  {tool}: {msg}")
        # more rounds, the tools interleaved again, each in a fresh process: this VM's CPU speed
        # swings by up to ~1.5x between periods of a few seconds (same code, same thread time),
        # so each tool's cell is its fastest round (every tool alike; the rounds are in the JSON)
        for rnd in range(2, (args.rounds if key not in SCALE else 1) + 1):
            for tool in tools:
                first = results[key].get(tool, {})
                if "values" not in first or first["median_s"] * (len(first["times_s"]) + 1) > args.round_budget:
                    continue
                res = run_forked(tool_child, (tool, model, size, repeats, args.repeat_budget), timeout,
                                 args.mem_cap_gb)
                if "values" not in res:
                    continue
                res["round_medians_s"] = first["round_medians_s"] + [res["median_s"]]
                if res["median_s"] < first["median_s"]:
                    res["peak_mb"] = first["peak_mb"]  # (memory: the first round's, as for every pair)
                    results[key][tool] = res
                else:
                    first["round_medians_s"] = res["round_medians_s"]
            log(f"  round {rnd}: " + ", ".join(f"{t} {fmt_s(results[key][t]['median_s'])}" for t in tools
                                                if "values" in results[key].get(t, {})))
        # reference: params, MACs, gradient RF where rfcheck's RF is small enough
        rv = results[key].get("rfcheck", {}).get("values")
        hint_rf = hint_jump = None
        if rv and not args.no_gradient and key not in SCALE and max(rv["rf"]) <= args.grad_max_rf:
            hint_rf, hint_jump = rv["rf"], rv["jump"]
        ref = run_forked(reference_child, (key, model, size, hint_rf, hint_jump, args.grad_cap, args.ref_threads),
                         args.grad_cap + 60, args.mem_cap_gb)
        refs[key] = ref
        log(f"  reference: params {fmt_int(ref.get('params'))} macs {fmt_int(ref.get('macs'))} grad "
            f"{fmt_num(ref.get('grad_rf')) if 'grad_rf' in ref else ref.get('grad_error', ref.get('error', 'not run'))}"
            + (f" jump {fmt_num(ref['grad_jump'])}" if "grad_jump" in ref else "")
            + (f" ({ref['grad_s']:.1f} s on {'x'.join(map(str, ref['grad_input']))})" if "grad_s" in ref else ""))
        del model
        gc.collect()

    depth: dict[int, dict] = {}
    if do_depth:
        for d in DEPTHS:
            res = run_forked(depth_child, (d, 5, False), args.scale_timeout, args.mem_cap_gb)
            off = run_forked(depth_child, (d, 5, True), args.scale_timeout, args.mem_cap_gb)
            res["gc_off_mean_s"] = off.get("mean_s")
            depth[d] = res
            log(f"depth {d}: mean {fmt_s(res.get('mean_s'))}, median {fmt_s(res.get('median_s'))}, gc "
                f"{fmt_s(res.get('gc_s'))}/call; gc off: {fmt_s(off.get('mean_s'))} {res.get('error', '')}")

    report = Report(args, tools, models, results, refs, warm, depth, repeats)
    profiles = {}
    if not args.quick and "rfcheck" in tools:
        for key in report.profile_targets():
            size = input_size(key)
            model = build_model(key).eval()
            profiles[key] = run_forked(profile_child, (key, model, size), 300, args.mem_cap_gb)
            log(f"profiled rfcheck on {key}")
            del model
    report.profiles = profiles
    report.elapsed = time.perf_counter() - t_start
    report.started = started
    os.makedirs(args.out, exist_ok=True)
    md = report.markdown()
    with open(os.path.join(args.out, "analyzer.md"), "w") as f:
        f.write(md)
    report.plot(os.path.join(args.out, "analyzer_speed.png"))
    if args.json:
        import json
        with open(args.json, "w") as f:
            json.dump({"results": results, "refs": refs, "warm": warm, "depth": depth, "profiles": profiles,
                       "elapsed_s": report.elapsed}, f, indent=1, default=str)
    log(f"wrote {os.path.join(args.out, 'analyzer.md')} and analyzer_speed.png in {report.elapsed:.0f} s")
    return 0


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


class Report:
    def __init__(self, args, tools, models, results, refs, warm, depth, repeats):
        self.args, self.tools, self.models = args, tools, models
        self.results, self.refs, self.warm, self.depth = results, refs, warm, depth
        self.repeats = repeats
        self.profiles: dict[str, dict] = {}
        self.elapsed = 0.0
        self.started = None

    # -- reference -----------------------------------------------------------------------
    def ref_rf(self, key) -> tuple[Optional[tuple], Optional[tuple], str]:
        """(rf, jump, source) of the reference."""
        r = self.refs.get(key, {})
        hand = HAND.get(key)
        if "grad_rf" in r:
            src = f"gradient ({'x'.join(map(str, r['grad_input']))}, {r['grad_s']:.0f} s)"
            if hand:
                agree = compare(r["grad_rf"], hand[0]) and compare(r["grad_jump"], hand[1])
                src += "; hand: " + ("agrees" if agree else f"{fmt_num(hand[0])} / j {fmt_num(hand[1])} DISAGREES")
            return r["grad_rf"], r["grad_jump"], src
        why = r.get("grad_error")
        if hand:
            return hand[0], hand[1], "hand" + (f" (gradient: {why})" if why else "")
        return None, None, "none" + (f" (gradient: {why})" if why else " (rfcheck RF > "
                                     f"{self.args.grad_max_rf}: not measured)")

    def verdict(self, key, tool) -> tuple[str, str]:
        """(verdict, cell text)."""
        res = self.results[key].get(tool)
        if res is None:
            return "not run", "not run"
        if "unsupported" in res:
            return "unsupported", f"unsupported: {res['unsupported']}"
        if tool not in HAS_RF:
            if "values" not in res:
                return "crashed", f"crashed: {res.get('error')}"
            return "unsupported", "no RF"
        if "values" not in res:
            err = res.get("error", "?")
            kind = "timeout" if "timeout" in err else ("memory" if "memory cap" in err else "crashed")
            if kind == "crashed" and not err.startswith("crashed"):
                err = f"crashed: {err}"
            return kind, err
        v = res["values"]
        text = fmt_num(v["rf"]) + (f" / j {fmt_num(v['jump'])}" if v["jump"] is not None else "")
        rf, jump, src = self.ref_rf(key)
        if rf is None:
            base = self.results[key].get("rfcheck", {}).get("values")
            if tool == "rfcheck" or base is None:
                return "no reference", text + " (no reference)"
            same = compare(v["rf"], base["rf"])
            return "no reference", text + (" (= rfcheck; no reference)" if same else " (!= rfcheck; no reference)")
        ok_rf = compare(v["rf"], rf)
        ok_j = compare(v["jump"], jump) if v["jump"] is not None else None
        if ok_rf and ok_j is not False:
            return "right", text
        what = "RF" if not ok_rf else ""
        if ok_j is False:
            what = (what + "+jump") if what else "jump"
        note = ""
        if tool.startswith("receptivefield") and any(r > n for r, n in zip(rf, input_size(key)[1:])):
            note = "; reference RF > input: a gradient method sees at most the input"
        return "wrong", f"{text} WRONG ({what}{note})"

    def params_cell(self, key, tool) -> tuple[Optional[bool], str]:
        res = self.results[key].get(tool, {})
        ref = self.refs.get(key, {}).get("params")
        if "values" not in res:
            if "unsupported" in res:
                return None, "unsupported"
            return None, "crashed" if "error" in res else "-"
        p = res["values"]["params"]
        if p is None:
            return None, "n/a"
        ok = ref is not None and int(p) == int(ref)
        return ok, fmt_int(p) + ("" if ok else " WRONG")

    def macs_cell(self, key, tool) -> str:
        res = self.results[key].get(tool, {})
        ref = self.refs.get(key, {}).get("macs")
        if "values" not in res:
            return "unsupported" if "unsupported" in res else ("crashed" if "error" in res else "-")
        m = res["values"]["macs"]
        if m is None:
            return "n/a"
        if not ref:
            return fmt_int(m)
        ratio = m / ref
        return fmt_int(m) + (" (= ref)" if m == ref else f" (x {ratio:.3f})")

    # -- timing ---------------------------------------------------------------------------
    def time_of(self, key, tool) -> Optional[float]:
        res = self.results.get(key, {}).get(tool, {})
        return res.get("median_s") if "values" in res else None

    def ratios(self, tool, keys) -> list[float]:
        out = []
        for k in keys:
            a, b = self.time_of(k, tool), self.time_of(k, "rfcheck")
            if a and b:
                out.append(a / b)
        return out

    def tv_keys(self):
        return [k for k in self.models if k in TV]

    def targets(self) -> list[tuple[str, str, Optional[bool], str]]:
        """(target, measured, met, detail)."""
        rows = []
        all_right = []
        for k in self.models:
            v, _ = self.verdict(k, "rfcheck")
            all_right.append((k, v))
        bad = [f"{k}: {v}" for k, v in all_right if v not in ("right", "no reference")]
        unref = [k for k, v in all_right if v == "no reference"]
        rows.append(("rfcheck correct on every model (RF + jump vs reference)",
                     f"{sum(v == 'right' for _, v in all_right)} right, {len(bad)} not right, "
                     f"{len(unref)} without reference", not bad,
                     (("not right: " + "; ".join(bad) + ". ") if bad else "")
                     + (f"no reference: {', '.join(unref)}" if unref else "")))
        tv = self.tv_keys()
        for tool, goal in (("torchscan", 10), ("torchinfo", 5)):
            r = self.ratios(tool, tv)
            if r and tool in self.tools:
                med = statistics.median(r)
                rows.append((f">= {goal}x faster than {tool} at 224 (median over the torchvision set)",
                             f"{med:.2f}x (min {min(r):.2f}x, max {max(r):.2f}x, {len(r)} models)", med >= goal,
                             f"short by {goal / med:.1f}x" if med < goal else ""))
        if "resnet50@2048" in self.models and "torchscan" in self.tools:
            a, b = self.time_of("resnet50@2048", "torchscan"), self.time_of("resnet50@2048", "rfcheck")
            ts = self.results["resnet50@2048"].get("torchscan", {})
            if a and b:
                rows.append((">= 100x faster than torchscan at 2048 on resnet50", f"{a / b:.0f}x", a / b >= 100, ""))
            elif b and ts.get("killed"):
                cap = self.args.scale_timeout
                rows.append((">= 100x faster than torchscan at 2048 on resnet50",
                             f"torchscan {ts.get('error')}: > {cap / b:.0f}x", cap / b >= 100, ""))
            m224 = self.results.get("resnet50", {}).get("rfcheck", {}).get("peak_mb")
            m2048 = self.results["resnet50@2048"].get("rfcheck", {}).get("peak_mb")
            if m224 is not None and m2048 is not None:
                rows.append(("rfcheck peak memory at 2048 no higher than at 224 (resnet50)",
                             f"{fmt_mb(m2048)} at 2048 vs {fmt_mb(m224)} at 224", m2048 <= m224 + 1.0,
                             "(1 MB tolerance: page granularity)"))
        if self.depth:
            pts = [(d, self.depth[d].get("mean_s"), self.depth[d].get("gc_off_mean_s")) for d in DEPTHS
                   if self.depth[d].get("mean_s")]
            if len(pts) >= 2:
                (d0, t0, o0), (d1, t1, o1) = (pts[-3] if len(pts) >= 3 else pts[0]), pts[-1]
                k = math.log(t1 / t0) / math.log(d1 / d0)
                ko = math.log(o1 / o0) / math.log(d1 / d0) if o0 and o1 else float("nan")
                met: Optional[bool] = k <= 1.15
                if not met and ko <= 1.15:
                    met = None   # partly: rfcheck's own work is linear, the garbage collector's share is not (yet)
                rows.append(("cost linear in depth (rfcheck, plain conv stacks)",
                             ", ".join(f"{d}: {t * 1000 / d:.2f}" for d, t, _ in pts) + " ms/layer (mean of 5 calls); "
                             "gc off: " + ", ".join(f"{d}: {o * 1000 / d:.2f}" for d, _, o in pts if o) + " ms/layer",
                             met, f"time ~ depth^{k:.2f} from {d0} to {d1} layers, depth^{ko:.2f} with the garbage "
                                  "collector off (1: linear, 2: quadratic; met if <= 1.15); see the depth sweep"))
        return rows

    def profile_targets(self) -> list[str]:
        missed = [t for t in self.targets() if t[2] is False and "faster" in t[0]]
        keys = []
        if missed:
            for k in ("resnet50", "densenet121", "plain1000"):
                if k in self.models and "values" in self.results[k].get("rfcheck", {}):
                    keys.append(k)
            if not keys:
                keys = [k for k in self.models if "values" in self.results[k].get("rfcheck", {})][:1]
        return keys

    # -- markdown ---------------------------------------------------------------------------
    def markdown(self) -> str:
        L: list[str] = []
        a = L.append
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M).group(1)
        except Exception:  # noqa: BLE001
            pass
        try:
            with open("/proc/meminfo") as f:
                mem = int(re.search(r"^MemTotal:\s+(\d+)", f.read(), re.M).group(1)) / 1024 / 1024
        except Exception:  # noqa: BLE001
            mem = float("nan")
        cmd = "python " + " ".join([os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:])
        a("# rfcheck against peer tools (issue #5)\n")
        a("Generated by `benchmarks/analyzer_bench.py`; see its docstring for how every number is read.\n")
        a("## Setup\n")
        a(f"- **Command** (repository root, venv active): `{cmd}`")
        a(f"- **Date**: {self.started:%Y-%m-%d %H:%M} UTC; total run time {self.elapsed / 60:.1f} min.")
        a(f"- **Machine**: {platform.machine()}, `/proc/cpuinfo` model name \"{cpu}\", {os.cpu_count()} cores, "
          f"{mem:.0f} GiB RAM, Linux {platform.release()}; CPU only.")
        a(f"- **Software**: Python {platform.python_version()}, torch {torch.__version__}, torchvision "
          f"{version('torchvision')}; " + ", ".join(f"{t} {version(TOOL_DIST[t])}" for t in TOOLS
                                                    if t != "receptivefield_readme") + ".")
        a("- **Not installable here** (not run): " + "; ".join(f"{k} ({v})" for k, v in NOT_INSTALLABLE.items()) + ".")
        missing = [f"{t} ({self.warm[t]['missing']})" for t in TOOLS if "missing" in self.warm.get(t, {})]
        if missing:
            a("- **Not importable in this run** (skipped): " + "; ".join(missing) + ".")
        a(f"- **Threads**: torch.set_num_threads(1) (and OMP/MKL_NUM_THREADS=1) for every tool; the untimed "
          f"gradient reference uses {self.args.ref_threads}.  Denormals are flushed to zero "
          "(`torch.set_flush_denormal(True)`) for every tool: ptflops runs its model on "
          "`torch.ones(()).new_empty(...)`, uninitialized memory, and without the flush its second and later "
          "calls on vgg16 took 19 s instead of 0.3 s (denormal leftovers of freed tensors).")
        a(f"- **Timing**: one forked process per (tool, model), model built before the fork, eval mode; one "
          f"warm-up call, then the median of up to {self.repeats} calls (fewer when a call is slow: at most "
          f"~{self.args.repeat_budget:g} s of repeats; `n=` in the cell; scale runs: at most 2). Up to "
          f"{self.args.rounds} rounds per model, the tools interleaved, each round a fresh process; a cell is the "
          f"tool's fastest round (rounds only where the first took under {self.args.round_budget:g} s; not for "
          f"the scale runs): this VM's CPU speed swings by up to ~1.5x between periods of a few seconds (the "
          f"same rfcheck call measured 8.5 ms and 13 ms of thread time in back-to-back processes), and every "
          f"tool gets the same chances. Before every fork the parent returns its freed heap to the OS "
          f"(`malloc_trim`): children reusing the heap a dropped vgg16 left behind paid copy-on-write faults "
          f"(rfcheck on densenet121: 43 ms instead of 22 ms). Peak memory = "
          f"peak RSS during the warm-up call minus the RSS before it (VmHWM after /proc/self/clear_refs). "
          f"Timeouts: {self.args.timeout:g} s per pair, {self.args.scale_timeout:g} s per scale-run pair; memory "
          f"cap {self.args.mem_cap_gb:g} GiB.")
        load = ""
        try:
            with open("/proc/loadavg") as f:
                load = f.read().split()[0]
        except OSError:
            pass
        a(f"- **Load** (1-min load average at the end): {load}.\n")

        # headline
        a("## Headline\n")
        tv = self.tv_keys()
        for tool in ("torchscan", "torchinfo"):
            r = self.ratios(tool, tv)
            if r:
                a(f"- **{tool} time / rfcheck time**, median over the {len(r)} torchvision models at 224 "
                  f"(inception_v3 at 299): **{statistics.median(r):.2f}x** (range {min(r):.2f}x to {max(r):.2f}x).")
        for tool in ("fvcore", "ptflops", "receptivefield", "receptivefield_readme", "rf_calc"):
            r = self.ratios(tool, tv)
            if r and tool in self.tools:
                a(f"- {tool} time / rfcheck time, same set: median {statistics.median(r):.2f}x over {len(r)} models "
                  f"that ran.")
        if "resnet50@2048" in self.results:
            row = self.results["resnet50@2048"]
            rc = row.get("rfcheck", {})
            parts = []
            for t in self.tools:
                res = row.get(t, {})
                if t == "rfcheck":
                    continue
                if "values" in res and rc.get("median_s"):
                    ratio = res['median_s'] / rc['median_s']
                    rtxt = f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2f}x"
                    parts.append(f"{t} {rtxt} ({fmt_s(res['median_s'])}, {fmt_mb(res['peak_mb'])})")
                else:
                    parts.append(f"{t}: {res.get('error') or res.get('unsupported') or '-'}")
            a(f"- **resnet50 at 2048x2048**: rfcheck {fmt_s(rc.get('median_s'))}, peak {fmt_mb(rc.get('peak_mb'))} "
              f"(at 224: {fmt_mb(self.results.get('resnet50', {}).get('rfcheck', {}).get('peak_mb'))}); peer time / "
              f"rfcheck time (peak memory): " + "; ".join(parts) + ".")
        a("")
        a("| target | measured | met? | note |")
        a("|---|---|---|---|")
        for name, meas, met, note in self.targets():
            a(f"| {name} | {meas} | {'yes' if met else ('NO' if met is False else 'partly')} | {note} |")
        a("")

        # verdict summary
        a("## Verdicts per tool\n")
        a("RF (+ jump where the tool gives one) against the reference, over all models in this run. "
          "\"no reference\": neither a gradient measurement nor a hand derivation exists for the model.\n")
        kinds = ["right", "wrong", "crashed", "timeout", "memory", "unsupported", "no reference"]
        a("| tool | " + " | ".join(kinds) + " | params right | wrong on |")
        a("|---|" + "---|" * (len(kinds) + 2))
        for t in self.tools:
            counts = {k: 0 for k in kinds}
            wrong_on = []
            p_ok = p_n = 0
            for key in self.models:
                v, _ = self.verdict(key, t)
                counts[v] = counts.get(v, 0) + 1
                if v in ("wrong", "crashed", "timeout", "memory"):
                    wrong_on.append(f"{key} ({v})")
                ok, _ = self.params_cell(key, t)
                if ok is not None:
                    p_n += 1
                    p_ok += bool(ok)
            a(f"| {t} | " + " | ".join(str(counts[k]) for k in kinds) + f" | {p_ok}/{p_n} | "
              + (", ".join(wrong_on) or "-") + " |")
        a("")

        # RF table
        a("## Receptive field and jump\n")
        a("Cell: RF (one number: the same on every axis, or the tool gives one number) / j jump, at the model-RF "
          "layer (rfcheck: `rf.at`; peers: see the docstring).  Axes H x W (L for 1D, D x H x W for 3D).\n")
        rf_tools = [t for t in self.tools if t in HAS_RF]
        a("| model | input | reference RF / jump | reference source | rfcheck at | " + " | ".join(rf_tools) + " |")
        a("|---|---|---|---|---|" + "---|" * len(rf_tools))
        for key in self.models:
            rf, jump, src = self.ref_rf(key)
            at = self.results[key].get("rfcheck", {}).get("values", {}).get("at", "-")
            cells = [self.verdict(key, t)[1] for t in rf_tools]
            a(f"| {key} | {'x'.join(map(str, input_size(key)))} | "
              f"{fmt_num(rf) + ' / j ' + fmt_num(jump) if rf else '-'} | {src} | `{at}` | "
              + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        a("")

        # params
        a("## Parameters\n")
        a("Reference: `sum(p.numel() for p in model.parameters())` (unique tensors).\n")
        p_tools = [t for t in self.tools if t not in ("rf_calc", "receptivefield", "receptivefield_readme")]
        a("| model | reference | " + " | ".join(p_tools) + " |")
        a("|---|---|" + "---|" * len(p_tools))
        for key in self.models:
            a(f"| {key} | {fmt_int(self.refs.get(key, {}).get('params'))} | "
              + " | ".join(self.params_cell(key, t)[1] for t in p_tools) + " |")
        a("")

        # MACs
        a("## MACs per sample\n")
        a("Reference: conv / transposed conv / linear / matmul multiply-accumulates, counted by "
          "`torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2) on a meta copy.  (x r) = tool / reference: "
          "torchscan, torchinfo, fvcore and ptflops also count some norm, activation and pooling work, by "
          "their own definitions; a ratio below 1 means the tool missed work (functional ops, shared modules, "
          "transposed convs...).\n")
        m_tools = [t for t in self.tools if t not in ("rf_calc", "receptivefield", "receptivefield_readme")]
        a("| model | reference | " + " | ".join(m_tools) + " |")
        a("|---|---|" + "---|" * len(m_tools))
        for key in self.models:
            ref = self.refs.get(key, {})
            a(f"| {key} | {fmt_int(ref.get('macs')) if 'macs' in ref else ref.get('macs_error', '-')} | "
              + " | ".join(self.macs_cell(key, t) for t in m_tools) + " |")
        a("")

        # time
        a("## Wall time per call\n")
        a("Median after one warm-up call, 1 torch thread; (x r) = tool / rfcheck (above 1: rfcheck is faster).\n")
        a("| model | input | " + " | ".join(self.tools) + " |")
        a("|---|---|" + "---|" * len(self.tools))
        for key in self.models:
            base = self.time_of(key, "rfcheck")
            cells = []
            for t in self.tools:
                res = self.results[key].get(t, {})
                if "values" not in res:
                    cells.append("unsupported" if "unsupported" in res else
                                 (res.get("error", "-") if "timeout" in res.get("error", "") or "memory" in
                                  res.get("error", "") else "crashed"))
                    continue
                c = fmt_s(res["median_s"])
                n = len(res["times_s"])
                if n < (self.repeats if key not in SCALE else min(self.repeats, 2)):
                    c += f" (n={n})" if n else " (first call only)"
                if t != "rfcheck" and base:
                    c += f" (x {res['median_s'] / base:.1f})"
                if res.get("mean_s", 0) > 1.3 * res["median_s"]:
                    c += " †"
                cells.append(c)
            a(f"| {key} | {'x'.join(map(str, input_size(key)))} | " + " | ".join(cells) + " |")
        a("")
        a("† mean of the timed calls > 1.3 x their median (some calls included a full garbage collection or "
          "other outliers; the median is shown).  Cold starts (the first call in a fresh interpreter) are not "
          "in this table: see benchmarks/speed.py.\n")

        # memory
        a("## Peak memory per call\n")
        a("Peak RSS during the first call on the model minus the RSS before it, in the forked process "
          "(the model itself is not counted).\n")
        a("| model | input | " + " | ".join(self.tools) + " |")
        a("|---|---|" + "---|" * len(self.tools))
        for key in self.models:
            cells = []
            for t in self.tools:
                res = self.results[key].get(t, {})
                if "values" in res:
                    cells.append(fmt_mb(res["peak_mb"]))
                elif "max_rss_mb" in res:
                    cells.append(f"{res.get('killed')} (RSS reached {fmt_mb(res['max_rss_mb'])})")
                else:
                    cells.append("unsupported" if "unsupported" in res else "crashed")
            a(f"| {key} | {'x'.join(map(str, input_size(key)))} | " + " | ".join(cells) + " |")
        a("")

        if self.depth:
            a("## Depth sweep (rfcheck only)\n")
            a("Plain stacks of Conv2d(8, 8, 3, padding=1) on 8x64x64, in a forked process; 5 calls after a "
              "warm-up.  The mean includes Python's cyclic garbage collector: a full (generation 2) collection "
              f"walks every object of the process (~{max(r.get('objects', 0) for r in self.depth.values()) // 1000}k "
              "here: torch, torchvision and the peers are imported) "
              "and runs once per ~25% growth of the long-lived objects, so with few calls the *median* jumps "
              "when a collection starts to fall inside most calls; the mean (amortized) is the cost.  "
              "\"gc off\": the same 5 calls in a second process with `gc.disable()`.\n")
            a("| depth | mean | median | per layer (mean) | GC per call (full collections) | mean, gc off | "
              "per layer, gc off | RF (hand: 1 + 2 x depth) |")
            a("|---|---|---|---|---|---|---|---|")
            for d in DEPTHS:
                res = self.depth[d]
                if "mean_s" not in res:
                    a(f"| {d} | {res.get('error')} | - | - | - | - | - | - |")
                    continue
                ok = compare(res["rf"], (1 + 2 * d,) * 2)
                off = res.get("gc_off_mean_s")
                a(f"| {d} | {fmt_s(res['mean_s'])} | {fmt_s(res['median_s'])} | {res['mean_s'] * 1000 / d:.3f} ms | "
                  f"{fmt_s(res['gc_s'])} ({res['full_gc']:.1f}) | {fmt_s(off)} | "
                  f"{(off * 1000 / d) if off else float('nan'):.3f} ms | {fmt_num(res['rf'])}{'' if ok else ' WRONG'} |")
            a("")

        # details of crashes
        errs = []
        for key in self.models:
            for t in self.tools:
                res = self.results[key].get(t, {})
                if "error" in res and "values" not in res:
                    errs.append(f"- {key} / {t}: {res['error']}")
            ref = self.refs.get(key, {})
            if ref.get("error"):
                errs.append(f"- {key} / reference: {ref['error']}")
        if errs:
            a("## Failures (exception type and message)\n")
            L.extend(errs)
            a("")

        if self.profiles:
            a("## Where rfcheck's time goes (cProfile)\n")
            a("One `rfcheck.analyze` call after a warm-up call, in a forked process, 1 thread; own (exclusive) time "
              "grouped by where the code lives, then the top entries.  cProfile's overhead inflates the many small "
              "Python calls, so the shares are indicative.\n")
            for key, p in self.profiles.items():
                if "error" in p:
                    a(f"- {key}: {p['error']}")
                    continue
                a(f"### {key} ({'x'.join(map(str, input_size(key)))}): {fmt_s(p['plain_s'])} per call without the "
                  f"profiler; under it: {p['calls']}\n")
                a("Own time by origin:\n")
                a("| origin | own time | share |")
                a("|---|---|---|")
                for g, v, share in p.get("groups", []):
                    a(f"| {g} | {v * 1000:.1f} ms | {share * 100:.0f}% |")
                a("")
                a("Top entries by own time:\n")
                a("```\n" + p["tottime"] + "\n```\n")
                a("Top entries by cumulative time:\n")
                a("```\n" + p["cumulative"] + "\n```\n")
        return "\n".join(L) + "\n"

    def plot(self, path: str) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        keys = [k for k in self.models if any(self.time_of(k, t) for t in self.tools)]
        if not keys:
            return
        fig, ax = plt.subplots(figsize=(max(8.0, 0.48 * len(keys) + 2), 5.5))
        markers = {"rfcheck": "o", "torchscan": "s", "torchinfo": "^", "rf_calc": "v", "receptivefield": "D",
                   "receptivefield_readme": "d", "fvcore": "P", "ptflops": "X"}
        n = len(self.tools)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, t in enumerate(self.tools):
            xs, ys, hollow = [], [], []
            for x, k in enumerate(keys):
                v = self.time_of(k, t)
                if v:
                    xs.append(x + (i - (n - 1) / 2) * 0.08)
                    ys.append(v * 1000)
                    hollow.append(t in HAS_RF and self.verdict(k, t)[0] == "wrong")
            c = colors[i % len(colors)]
            full = [(x, y) for x, y, h in zip(xs, ys, hollow) if not h]
            empty = [(x, y) for x, y, h in zip(xs, ys, hollow) if h]
            ax.scatter([p[0] for p in full], [p[1] for p in full], label=t, marker=markers.get(t, "o"), color=c,
                       s=42 if t == "rfcheck" else 26, zorder=3 if t == "rfcheck" else 2,
                       edgecolors="black" if t == "rfcheck" else "none")
            if empty:
                ax.scatter([p[0] for p in empty], [p[1] for p in empty], marker=markers.get(t, "o"), s=26,
                           facecolors="none", edgecolors=c, zorder=2)
        ax.set_yscale("log")
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(keys, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("wall time per call, ms (median, 1 thread, log scale)")
        ax.set_title("rfcheck vs peers: time per model per tool (hollow: wrong RF/jump; missing: crashed / "
                     "unsupported / timeout)", fontsize=10)
        ax.grid(True, which="both", axis="y", alpha=0.3)
        for x, k in enumerate(keys):
            if x and group(k) != group(keys[x - 1]):
                ax.axvline(x - 0.5, color="grey", lw=0.8, alpha=0.6)
        ax.legend(fontsize=8, ncol=4, loc="upper left")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
