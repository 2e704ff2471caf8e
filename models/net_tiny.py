"""A small, fast design for CPU smoke runs of the trainer (about a fifth of Net's MACs),
meeting the easier variant of the brief: RF > 44 with at most 30k parameters (it has 25,762).

RF by hand: c1 3, 5 (s2: j2); c2 dw 9, dilated (k_eff 5) 17, s2 21 (j4); c3 dw 29, s2 37 (j8);
c4 53; 1x1.  Model RF 53 at the global pool.
"""
import torch.nn as nn
import torch.nn.functional as F
from net import conv_bn, separable  # noqa: E402

from rfcheck.registry import register_model


@register_model(name="net_tiny", rules={"min_rf": 45, "max_params": 30_000})
class NetTiny(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.c1 = nn.Sequential(conv_bn(3, 8), conv_bn(8, 16, stride=2))                          # 16x16
        self.c2 = nn.Sequential(separable(16, 24), conv_bn(24, 24, dilation=2, groups=2),
                                conv_bn(24, 32, stride=2, groups=2))                               # 8x8
        self.c3 = nn.Sequential(separable(32, 32), conv_bn(32, 48, stride=2, groups=2))          # 4x4
        self.c4 = nn.Sequential(conv_bn(48, 48, groups=4), conv_bn(48, 64, k=1))
        self.o = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(64, num_classes, 1))

    def forward(self, x):
        return F.log_softmax(self.o(self.c4(self.c3(self.c2(self.c1(x))))).flatten(1), dim=1)
