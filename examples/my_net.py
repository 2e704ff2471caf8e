"""A user's design for the course brief, written the way many submissions are: C1..C4 blocks
with max-pool transitions and a global average pool.  Check it:

    rfcheck examples/my_net.py --isolated --min-rf 53 --max-params 100k --require-gap --min-dws 2 --min-dilated 1

It fails two rules (no depthwise-separable pair, no dilated conv) and rfcheck says which layers
to change and what the model would then measure.
"""
import torch.nn as nn


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(block(3, 16), block(16, 16), nn.MaxPool2d(2))      # 16x16
        self.c2 = nn.Sequential(block(16, 32), block(32, 32), nn.MaxPool2d(2))     # 8x8
        self.c3 = nn.Sequential(block(32, 48), block(48, 48), nn.MaxPool2d(2))     # 4x4
        self.c4 = nn.Sequential(block(48, 48), block(48, 48))
        self.o = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, 10))

    def forward(self, x):
        return self.o(self.c4(self.c3(self.c2(self.c1(x)))))
