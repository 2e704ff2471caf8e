"""Small test models that more than one test file builds (``from tests.models import ...``).

Each docstring derives by hand what the tests assert about the model; a model used by one file
only stays in that file, next to its derivation.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class Flip(nn.Module):
    """``torch.flip`` along ``dim`` (3 = W, 2 = H of an NCHW map): an op rfcheck has no rule for,
    so the layer is unknown (RF101) and every value after it is not exact. Flipping keeps every
    unit's RF size and jump, so a pointwise rule registered for it is right for sizes."""

    def __init__(self, dim: int = 3):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return torch.flip(x, [self.dim])


def head(pool: nn.Module, channels: int = 8) -> nn.Sequential:
    """conv 3x3 p1 (3 -> ``channels``) on a 3x4x4 input (r = 3, the map stays 4x4), then ``pool``,
    flatten and a Linear ``channels`` -> 10. With 8 channels: params 3*8*9+8 = 224 and 8*10+10 = 90:
    314 (the pool has none)."""
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), pool, nn.Flatten(), nn.Linear(channels, 10))


def flat_head() -> nn.Sequential:
    """conv 3x3 p1 (3 -> 8) on a 3x4x4 input, then flatten and Linear 128 -> 10 (it reads 8 channels
    x 4 x 4 = 128 flattened features): no global pool; the classifier is layer "2"."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(128, 10))


def grouped_then_pool() -> nn.Sequential:
    """On 4x8x8: conv 3x3 p1 4 -> 8 with groups=2 (each group reads 2 channels, so groups != in_channels
    4: not depthwise), a max pool, then a 1x1 conv 8 -> 8: no depthwise conv, no separable pair."""
    return nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, groups=2), nn.MaxPool2d(2), nn.Conv2d(8, 8, 1))
