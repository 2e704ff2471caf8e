"""The flagship design of the course brief: C1 C2 C3 C4 O, no max pooling (strided convs
downsample), depthwise-separable convs with identity shortcuts, one dilated conv, global
average pooling and a 1x1 classifier, under 100k parameters.

Why this RF: C3 and C4 work on an 8x8 map (jump 4) whose cell centres sit at pixels 0, 4, ..., 28
of the 32x32 input.  For the corner cell (centre 0) to see pixel 31 and the far cell (centre 28)
to see pixel 0, the RF must reach 2 * 31 + 1 = 63; Net's is 67 (C4's 3x3 adds 8 to C3's 59), so
every cell the global pool averages sees the whole image, and more RF would buy nothing.  The
dilated convs in C2 and C3 buy 8 and 16 of it with no parameters and no lost resolution.

Why this shape: the brief's 100k budget buys far more width as depthwise-separable convs (a 3x3
depthwise + 1x1 pointwise costs 9c + c*c' instead of 9c*c'), so only the first three convs,
where there are few channels and the pixels matter most, are full 3x3s.  The net ends on an 8x8
map, not 4x4: C3 and C4 hold over half of the parameters, and at 8x8 each of their weights is
used on four times as many positions (more compute per parameter, which is what a 100k net that
underfits lacks).  Identity shortcuts around the equal-width separable convs keep a 19-conv trunk
easy to train in 60-90 epochs.

Check it:  rfcheck models/net.py --max-params 100000 --min-rf 52
"""
import torch.nn as nn
import torch.nn.functional as F

from rfcheck.registry import register_model


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    """k x k conv (padding keeps the size at stride 1), BN, ReLU.  No dropout: with the brief's
    augmentations and label smoothing a 100k-parameter net underfits rather than overfits, and
    dropout's random masks cost a third of a CPU training step."""
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU())


def separable(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Depthwise 3x3 (groups = in_channels, optionally strided or dilated), then a pointwise 1x1."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride=stride, padding=dilation, dilation=dilation, groups=cin, bias=False),
        nn.BatchNorm2d(cin), nn.ReLU(),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Residual(nn.Module):
    """x + body(x): the shortcut adds no parameters and its RF is the body's (rfcheck reports the
    longest path as the RF and the shortcut as the RF min)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


@register_model(name="net")
class Net(nn.Module):
    """The flagship design of the brief: residual depthwise-separable convs, strided and dilated
    convs, no max pooling."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.c1 = nn.Sequential(conv_bn(3, 32), conv_bn(32, 32), conv_bn(32, 56, stride=2))         # 16x16
        self.c2 = nn.Sequential(Residual(separable(56, 56)), Residual(separable(56, 56, dilation=2)),
                                Residual(separable(56, 56)), separable(56, 96, stride=2))            # 8x8
        self.c3 = nn.Sequential(Residual(separable(96, 96, dilation=2)), Residual(separable(96, 96)),
                                separable(96, 128))                                                  # 8x8
        self.c4 = nn.Sequential(Residual(separable(128, 128)))                                       # 8x8
        self.out = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(128, num_classes, 1))

    def forward(self, x):
        x = self.c4(self.c3(self.c2(self.c1(x))))
        return F.log_softmax(self.out(x).flatten(1), dim=1)
