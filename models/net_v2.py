"""NetV2: models/net.py's Net with three zero-parameter block fixes, as its own versioned design
(models/net.py:Net stays as it is, so Net's recorded checkpoint, benchmarks/results/net_cifar10.pt
up to commit 81628b1, still loads into it exactly).  The same convs, parameters (98,090), module
names and indices, so a Net checkpoint's weights load into NetV2 too (a different function,
though: a starting point, not the same net).  Its RF, derived by hand, is in the class docstring:
67, as Net's.

Check it:  rfcheck models/net_v2.py
"""
import torch.nn as nn
import torch.nn.functional as F

from rfcheck.registry import register_model


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    """k x k conv (padding keeps the size at stride 1), BN, ReLU (as in models/net.py)."""
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU())


def separable(cin: int, cout: int, stride: int = 1, dilation: int = 1, mid_relu: bool = True,
              end_relu: bool = True) -> nn.Sequential:
    """Depthwise 3x3 (groups = in_channels, optionally strided or dilated), then a pointwise 1x1.
    ``mid_relu=False`` / ``end_relu=False`` put an Identity where the ReLU was, so the module
    indices (and the checkpoint keys) are the same either way."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride=stride, padding=dilation, dilation=dilation, groups=cin, bias=False),
        nn.BatchNorm2d(cin), nn.ReLU() if mid_relu else nn.Identity(),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU() if end_relu else nn.Identity())


class Residual(nn.Module):
    """x + body(x), then a ReLU if ``relu_after``: the shortcut adds no parameters and its RF is
    the body's (rfcheck reports the longest path as the RF and the shortcut as the RF min)."""

    def __init__(self, body: nn.Module, relu_after: bool = False):
        super().__init__()
        self.body = body
        self.relu_after = relu_after

    def forward(self, x):
        y = x + self.body(x)
        return F.relu(y) if self.relu_after else y


def fixed_residual(c: int, dilation: int = 1) -> Residual:
    """A residual separable block with fixes 1-3 of :class:`NetV2` (the ReLU after the add, the
    branch's last BatchNorm scale at zero, no ReLU between the depthwise and the pointwise conv)."""
    block = Residual(separable(c, c, dilation=dilation, mid_relu=False, end_relu=False), relu_after=True)
    nn.init.zeros_(block.body[4].weight)  # the branch's last BatchNorm scale
    return block


def fixed_separable(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """A separable conv without the ReLU between its depthwise and its pointwise conv (fix 3)."""
    return separable(cin, cout, stride=stride, mid_relu=False)


@register_model(name="net_v2")
class NetV2(nn.Module):
    """Net with three zero-parameter block fixes (the same 98,090 parameters, the same module
    names and indices, so the same checkpoint keys):

    1. no ReLU at the end of a residual branch: the branch ends on its BatchNorm and the ReLU
       comes after the add, relu(x + bn(pw(bn(dw(x))))), so the branch can also subtract;
    2. the branch's last BatchNorm scale starts at zero: each residual block starts as the
       identity (its input is already post-ReLU), so the 19-conv trunk starts as a shallow net;
    3. no ReLU between a depthwise conv and its pointwise conv (in every separable conv: a ReLU
       on a 3x3 filter of a single channel throws away half of what the 1x1 would mix).

    RF, by hand (r_out = r_in + (k_eff - 1) * j_in, k_eff = d(k - 1) + 1; j *= stride): the convs are
    Net's, in the same order, and ReLU, Identity and the add change no RF (the add's RF is its
    longest input, the branch).  C1: 3x3 (r 3, j 1), 3x3 (r 5), 3x3 s2 (r 7, j 2).  C2 (j 2):
    dw 3x3 (r 11), dw 3x3 d2 (k_eff 5: r 19), dw 3x3 (r 23), dw 3x3 s2 (r 27, j 4).  C3 (j 4):
    dw 3x3 d2 (k_eff 5: r 43), dw 3x3 (r 51), dw 3x3 (r 59).  C4: dw 3x3 (r 67).  The 1x1 convs
    add nothing: RF 67 at the input of the global pool, as Net's, > 63 so every 8x8 cell sees the
    whole image."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        res, sep = fixed_residual, fixed_separable
        self.c1 = nn.Sequential(conv_bn(3, 32), conv_bn(32, 32), conv_bn(32, 56, stride=2))         # 16x16
        self.c2 = nn.Sequential(res(56), res(56, dilation=2), res(56), sep(56, 96, stride=2))       # 8x8
        self.c3 = nn.Sequential(res(96, dilation=2), res(96), sep(96, 128))                          # 8x8
        self.c4 = nn.Sequential(res(128))                                                            # 8x8
        self.out = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(128, num_classes, 1))

    def forward(self, x):
        x = self.c4(self.c3(self.c2(self.c1(x))))
        return F.log_softmax(self.out(x).flatten(1), dim=1)
