"""CLI fixture: a 3D (Conv3d) net for --input-size 2,8,32,32.

conv 3x3x3 pad 1 (RF 3, jump 1) -> conv 3x3x3 stride (1,2,2) pad 1 (RF 3 + 2*1 = 5 per axis,
jump 1x2x2); output 4x8x32x32 -> 8x8x16x16.
"""
import torch.nn as nn


class Net3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv3d(2, 4, 3, padding=1)
        self.b = nn.Conv3d(4, 8, 3, stride=(1, 2, 2), padding=1)

    def forward(self, x):
        return self.b(self.a(x))
