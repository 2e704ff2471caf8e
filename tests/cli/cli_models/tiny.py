"""CLI fixture: a tiny 2D net whose RF, jump and start are derived by hand in tests/cli/test_cli.py.

conv 3x3 pad 1 (3 -> 4) -> max pool 2 -> conv 3x3 pad 1 (4 -> 6); 112 + 222 = 334 parameters.
"""
import torch.nn as nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(4, 6, 3, padding=1)

    def forward(self, x):
        return self.c2(self.pool(self.c1(x)))
