"""A CIFAR-10 design for the course brief: C1 C2 C3 C4 O, no max pooling (strided convs
downsample), two depthwise-separable convs, one dilated conv, global average pooling and a
1x1 classifier, under 100k parameters, RF well above 52.

Check it:  rfcheck models/net.py --max-params 100000 --min-rf 52
"""
import torch.nn as nn
import torch.nn.functional as F

from rfcheck.registry import register_model


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    """k x k conv (padding keeps the size at stride 1), BN, ReLU.  No dropout: with the brief's
    augmentations and label smoothing a 96k-parameter net underfits rather than overfits, and
    dropout's random masks cost a third of a CPU training step."""
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU())


def separable(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3x3 (groups = in_channels) followed by a pointwise 1x1."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


@register_model(name="net", description="the flagship design of the brief: strided and dilated convs, no max pooling")
class Net(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.c1 = nn.Sequential(conv_bn(3, 16), conv_bn(16, 32), conv_bn(32, 32, stride=2))       # 16x16
        self.c2 = nn.Sequential(separable(32, 48), conv_bn(48, 48, dilation=2),
                                conv_bn(48, 48, stride=2, groups=2))                               # 8x8
        self.c3 = nn.Sequential(separable(48, 64), conv_bn(64, 64, groups=4),
                                conv_bn(64, 64, stride=2, groups=2))                               # 4x4
        self.c4 = nn.Sequential(conv_bn(64, 64, groups=4), conv_bn(64, 96, k=1))                   # 4x4
        self.out = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(96, num_classes, 1))

    def forward(self, x):
        x = self.c4(self.c3(self.c2(self.c1(x))))
        return F.log_softmax(self.out(x).flatten(1), dim=1)
