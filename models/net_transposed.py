"""A transposed conv used for what it does: it upsamples (halves the jump), here to bring the
8x8 C3 features back to 16x16 and fuse them with C2's (a small feature pyramid).  It is no RF
booster: with kernel 2 and stride 2 each output reads exactly one input, so the fused map's
RF is C3's (29) while its jump drops back to 2.  rfcheck flags the layer as phase dependent
and warns that the two fused maps' RF centres are misaligned by half a C3 step.

RF by hand: c1 3, 5 (s2: j2); c2 dw 9, dilated (k_eff 5) 17; c3 21 (s2: j4), dw 29;
up: 29 (j2); fuse (add with c2): 29; c4 33 (s2: j4), 41 (s2: j8), 1x1; model RF 41 ... too
small for the brief, so c4 gets a dilated conv: 41 + 2*2*8 = 73.
"""
import torch.nn as nn
import torch.nn.functional as F
from net import conv_bn, separable  # noqa: E402

from rfcheck.registry import register_model


@register_model(name="net_transposed", rules={"min_transposed": 1, "blocks": "c1,c2,c3,up,c4,o"})
class NetTransposed(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.c1 = nn.Sequential(conv_bn(3, 16), conv_bn(16, 32, stride=2))                       # 16x16
        self.c2 = nn.Sequential(separable(32, 48), conv_bn(48, 48, dilation=2, groups=2))
        self.c3 = nn.Sequential(conv_bn(48, 64, stride=2, groups=2), separable(64, 64))          # 8x8
        self.up = nn.Sequential(nn.ConvTranspose2d(64, 48, 2, stride=2, bias=False), nn.BatchNorm2d(48))  # 16x16
        self.c4 = nn.Sequential(conv_bn(48, 64, stride=2, groups=2), conv_bn(64, 64, stride=2, groups=4),
                                conv_bn(64, 64, dilation=2, groups=4), conv_bn(64, 96, k=1))      # 4x4
        self.o = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(96, num_classes, 1))

    def forward(self, x):
        x2 = self.c2(self.c1(x))
        x = F.relu(x2 + self.up(self.c3(x2)))
        return F.log_softmax(self.o(self.c4(x)).flatten(1), dim=1)
