"""The brief's other classic layout: C1 MP C2 MP C3 MP C4 O, max-pool transitions between
blocks.  Teaches where the jump doubles: at each max pool (2x2, stride 2), so the 3x3 convs of
C4 add 2*8 = 16 each while those of C1 add 2.

RF by hand: c1 3, 5; mp1 6 (j2); c2 dw 10, dilated (k_eff 5) 18; mp2 20 (j4); c3 dw 28, 36;
mp3 40 (j8); c4 56; 1x1.  Model RF 56 at the global pool.
"""
import torch.nn as nn
import torch.nn.functional as F
from net import conv_bn, separable  # noqa: E402  (models/ is on sys.path when rfcheck loads a file)

from rfcheck.registry import register_model


@register_model(name="net_maxpool", rules={"blocks": "c1,mp1,c2,mp2,c3,mp3,c4,o", "forbid": "AvgPool2d"})
class NetMaxPool(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.c1 = nn.Sequential(conv_bn(3, 16), conv_bn(16, 32))                      # 32x32
        self.mp1 = nn.MaxPool2d(2)                                                     # 16x16
        self.c2 = nn.Sequential(separable(32, 48), conv_bn(48, 48, dilation=2))
        self.mp2 = nn.MaxPool2d(2)                                                     # 8x8
        self.c3 = nn.Sequential(separable(48, 64), conv_bn(64, 64, groups=2))
        self.mp3 = nn.MaxPool2d(2)                                                     # 4x4
        self.c4 = nn.Sequential(conv_bn(64, 64, groups=4), conv_bn(64, 96, k=1))
        self.o = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(96, num_classes, 1))

    def forward(self, x):
        x = self.mp3(self.c3(self.mp2(self.c2(self.mp1(self.c1(x))))))
        return F.log_softmax(self.o(self.c4(x)).flatten(1), dim=1)
