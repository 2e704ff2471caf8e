"""CLI fixture: a 1D (Conv1d) net for --input-size 2,128.

conv k5 (RF 5, jump 1) -> conv k3 stride 2 (RF 5 + 2*1 = 7, jump 2); lengths 128 -> 124 -> 61.
"""
import torch.nn as nn


class Net1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(2, 4, 5)
        self.b = nn.Conv1d(4, 8, 3, stride=2)

    def forward(self, x):
        return self.b(self.a(x).relu())
