"""The brief's design pattern on Fashion-MNIST (1x28x28 grayscale): C1 C2 C3 C4 O with residual
depthwise-separable convs, one dilated conv, strided downsampling and global average pooling,
33,658 parameters.  Registered with its input size, so `rfcheck models/` checks it at 1x28x28.

RF by hand (RF += (k_eff - 1) * jump): c1 3x3 -> 3, 3x3 s2 -> 5 (j2).  c2 dw -> 9, dw dilated 2
(k_eff 5) -> 17, dw s2 -> 21 (j4).  c3 dw -> 29, dw s2 -> 37 (j8).  c4 dw -> 53.  Model RF 53 at
the global pool over the 4x4 map, whose units are centred on pixels 0, 8, 16, 24: unit 0 reads
-26..26 and unit 3 reads -2..50, so each sees all of the 28 columns but at most one.

Train it:  python -m training.train models/net_fashion.py:NetFashion --data /usr/share/datasets/fashion-mnist
"""
import torch.nn as nn
import torch.nn.functional as F
from net import Residual, conv_bn, separable  # noqa: E402

from rfcheck.registry import register_model


@register_model(name="net_fashion", input_size=(1, 28, 28))
class NetFashion(nn.Module):
    """The brief's pattern for 1x28x28 Fashion-MNIST (apt: dataset-fashion-mnist)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.c1 = nn.Sequential(conv_bn(1, 16), conv_bn(16, 32, stride=2))                         # 14x14
        self.c2 = nn.Sequential(Residual(separable(32, 32)), Residual(separable(32, 32, dilation=2)),
                                separable(32, 64, stride=2))                                        # 7x7
        self.c3 = nn.Sequential(Residual(separable(64, 64)), separable(64, 96, stride=2))          # 4x4
        self.c4 = nn.Sequential(Residual(separable(96, 96)))
        self.out = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(96, num_classes, 1))

    def forward(self, x):
        x = self.c4(self.c3(self.c2(self.c1(x))))
        return F.log_softmax(self.out(x).flatten(1), dim=1)
