"""The benchmark model set: torchvision classifiers, the designs in models/, small nets for the
hard cases and scale runs, with their input sizes and hand-derived reference RF / jump.

The hand values (HAND) are the reference wherever the gradient measurement is not run or does
not finish; every one is derived in the comment beside it (recurrences: effective kernel
k' = d*(k - 1) + 1, r_out = r_in + (k' - 1)*j_in, j_out = j_in*s; branches merge by taking the
larger RF).
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
ALL = TV + list(DESIGNS) + SMALL + SCALE

_SMALL_SIZES = {"dilated": (3, 64, 64), "transposed": (3, 32, 32), "func_branches": (3, 32, 32),
                "asymmetric": (3, 48, 96), "shared": (3, 32, 32), "conv1d": (2, 256), "conv3d": (2, 16, 32, 32)}
_SMALL_TEXT = {"dilated": "dilated conv stack (d=1,2,4,8, pool, d=2)",
               "transposed": "transposed conv (k3 s2, phase-dependent)",
               "func_branches": "functional ops, concat + residual branches, bare F.conv2d",
               "asymmetric": "1x7 / 7x1 kernels, stride (1,2), non-square input",
               "shared": "one conv module called twice (shared weights)",
               "conv1d": "Conv1d, dilation, MaxPool1d",
               "conv3d": "Conv3d, (1,3,3) kernel, MaxPool3d"}


# -- the small nets --------------------------------------------------------------------------

def dilated_stack() -> nn.Module:
    # k3 convs with dilation 1, 2, 4, 8 (k' 3, 5, 9, 17), j 1:  r = 1 + 2 + 4 + 8 + 16 = 31
    # max pool 2 s2:                 r = 31 + 1*1 = 32, j = 2
    # k3 conv, dilation 2 (k' 5):    r = 32 + 4*2 = 40, j = 2                  -> 40 x 40, jump 2
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=4, dilation=4), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=8, dilation=8), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=2, dilation=2))


def transposed() -> nn.Module:
    # One axis; A = conv k3 s2 p1 reads input [2m-1, 2m+1] for A[m]  (r 3, j 2).
    # B = ConvTranspose k3 s2 p1 (output_padding 1): B[o] = sum of A[i]*w[k] with o = 2i - 1 + k,
    #   so B[2m] reads A[m] only, B[2m+1] reads A[m], A[m+1].
    # C = conv k3 p1: C[2m] <- B[2m-1..2m+1] = A[m-1..m+1] -> input [2m-3, 2m+3]: 7;
    #   C[2m+1] <- B[2m..2m+2] = A[m..m+1] -> input [2m-1, 2m+3]: 5.
    # The RF depends on the output position: largest 7, jump 1                  -> 7 x 7, jump 1
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1))


def asymmetric() -> nn.Module:
    # On a non-square 3x48x96 input; axes H, W:
    # conv (1,7) p(0,3): H 1, W 7;  conv (7,1) p(3,0): H 7, W 7;
    # conv 3x3 s(1,2) p1: H 9, W 9, j (1, 2);  conv (1,7) p(0,3): H 9, W 9 + 6*2 = 21  -> 9 x 21, jump 1 x 2
    return nn.Sequential(
        nn.Conv2d(3, 8, (1, 7), padding=(0, 3)), nn.ReLU(),
        nn.Conv2d(8, 8, (7, 1), padding=(3, 0)), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=(1, 2), padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, (1, 7), padding=(0, 3)))


def conv1d() -> nn.Module:
    # Conv1d on a (2, 256) signal: k5: r 5, j 1; k3 s2: 7, j 2; k3 dilation 2: 7 + 4*2 = 15;
    # max pool 2: 15 + 1*2 = 17, j 4; k3: 17 + 2*4 = 25                           -> 25, jump 4
    return nn.Sequential(
        nn.Conv1d(2, 8, 5, padding=2), nn.ReLU(), nn.Conv1d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(8, 8, 3, padding=2, dilation=2), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(8, 8, 3, padding=1))


def net3d() -> nn.Module:
    # On a (2, 16, 32, 32) clip; axes D, H, W:
    # Conv3d k3 p1: r (3, 3, 3), j 1;  Conv3d k(1,3,3) s(1,2,2): r (3, 5, 5), j (1, 2, 2);
    # MaxPool3d 2: r (4, 7, 7), j (2, 4, 4);  Conv3d k3 p1: (4+2*2, 7+2*4, 7+2*4)  -> (8, 15, 15), jump (2, 4, 4)
    return nn.Sequential(
        nn.Conv3d(2, 8, 3, padding=1), nn.ReLU(),
        nn.Conv3d(8, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), nn.ReLU(),
        nn.MaxPool3d(2), nn.Conv3d(8, 8, 3, padding=1))


class SharedWeights(nn.Module):
    """One conv module called twice (weight sharing, as in a recurrent refinement block)."""

    # stem conv 3x3 s2 p1: r 3, j 2;  shared 3x3 p1 twice: 3 + 2*2 + 2*2 = 11   -> 11 x 11, jump 2
    # params: stem 224 + shared 584 counted once                                 -> 808 (not 1392)
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.shared = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for _ in range(2):
            x = F.relu(self.shared(x))
        return x


class FuncBranches(nn.Module):
    """Functional ops (F.max_pool2d, F.avg_pool2d, F.conv2d with a bare parameter) with a
    concat and a residual add: invisible to tools that hook modules."""

    # stem conv 3x3 p1: r 3, j 1;  F.max_pool2d(2): r 4, j 2
    # branch a: two conv 3x3 p1: 4 + 2*2 + 2*2 = 12;  branch b: F.avg_pool2d(3, 1, 1): 4 + 2*2 = 8
    # cat([a, b]): 12;  conv 1x1 (proj) + conv 1x1 (skip of x, r 4): add -> 12
    # F.max_pool2d(3, 2, padding 1): 12 + 2*2 = 16, j 4;  F.conv2d(w 3x3, p 1): 16 + 2*4 = 24  -> 24 x 24, jump 4
    # params: stem 224, a1 584, a2 584, proj 136, skip 72, w + b 584             -> 2184
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


def plain(depth: int) -> nn.Module:
    """``depth`` convs k3 s1: r = 1 + 2*depth, j = 1."""
    return nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(depth)])


def tiny_model(nd: int) -> nn.Module:
    """Conv, norm, ReLU, max pool, dropout, global pool, linear: every tool's first-call costs."""
    conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[nd - 1]
    bn = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[nd - 1]
    pool = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[nd - 1]
    gap = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[nd - 1]
    return nn.Sequential(conv(3, 4, 3, padding=1), bn(4), nn.ReLU(), pool(2), nn.Dropout(0.1), gap(1), nn.Flatten(),
                         nn.Linear(4, 2)).eval()


_SMALL_BUILD = {"dilated": dilated_stack, "transposed": transposed, "func_branches": FuncBranches,
                "asymmetric": asymmetric, "shared": SharedWeights, "conv1d": conv1d, "conv3d": net3d}


# -- keys -> models ----------------------------------------------------------------------------

def valid_keys() -> set[str]:
    return set(ALL) | {f"plain{d}" for d in DEPTHS}


def input_size(key: str) -> tuple[int, ...]:
    """(C, *spatial) every tool is given for the model ``key``."""
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
    return _SMALL_SIZES[key]


def group(key: str) -> str:
    """The plot separates the groups."""
    if key in TV:
        return "torchvision"
    if key in DESIGNS:
        return "models/"
    return "small" if key in SMALL else "scale"


def describe(key: str) -> str:
    if key in TV:
        return f"torchvision {key}" + (" (aux_logits=False, init_weights=False)" if key in TV_KW else "")
    if key in DESIGNS:
        return DESIGNS[key]
    if key.startswith("plain"):
        return f"{key[5:]} x Conv2d(8,8,3,p=1)"
    if key.startswith("resnet50@"):
        return "torchvision resnet50"
    return _SMALL_TEXT[key]


def build_model(key: str) -> nn.Module:
    """A fresh model for ``key`` (seeded: the same weights every time), not yet in eval mode."""
    torch.manual_seed(0)
    key = "resnet50" if key.startswith("resnet50@") else key
    if key in TV:
        import torchvision
        return getattr(torchvision.models, key)(weights=None, **TV_KW.get(key, {}))
    if key in DESIGNS:
        from rfcheck.loader import load_entries
        # real weights: the peers run the model (rfcheck's loader builds on the meta device by default)
        for label, model, _ in load_entries(os.path.join(ROOT, "models"), meta=False):
            if label.endswith(DESIGNS[key].split("/", 1)[1]):
                return model
        raise KeyError(key)
    if key.startswith("plain"):
        return plain(int(key[5:]))
    return _SMALL_BUILD[key]()


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
    # the small nets: derivations in their builders above
    "dilated": ((40, 40), (2, 2)),
    "transposed": ((7, 7), (1, 1)),
    "func_branches": ((24, 24), (4, 4)),
    "asymmetric": ((9, 21), (1, 2)),
    "shared": ((11, 11), (2, 2)),
    "conv1d": ((25,), (4,)),
    "conv3d": ((8, 15, 15), (2, 4, 4)),
    # models/net.py Net: tests/golden/test_golden.py::test_bundled_net_hand_derivation         -> 67, jump 4
    "net": ((67, 67), (4, 4)),
    # plain stacks (1000 in the scale runs, the rest in the depth sweep): 1 + 2*depth, jump 1
    **{f"plain{d}": ((1 + 2 * d,) * 2, (1, 1)) for d in [1000] + DEPTHS},
}
