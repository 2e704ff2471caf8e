"""Module types whose ``forward`` is exactly one torch function on its input.

For these the tracer records the layer without running the module: calling ``Conv2d`` goes
through ``nn.Module``'s call machinery, ``F.conv2d``'s torch-function dispatch and the tracer's
mode, about half the cost of an analysis, only to reach the same rule with the same
arguments.  Each entry returns the function's name and arguments exactly as the module's
forward would pass them, or None when the module is configured in a way its forward handles
differently (a padding mode, a wrong input rank): the module then runs as usual, so results
and error messages are those of the normal path (``tests/test_leaves.py`` compares the two on
the model zoo).  Only exact types are listed: a subclass may override ``forward``.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

LeafCall = Optional[tuple[str, tuple]]


def _conv(n: int) -> Callable[[nn.Module, torch.Tensor], LeafCall]:
    op = f"conv{n}d"

    def call(m: nn.Module, x: torch.Tensor) -> LeafCall:
        if m.padding_mode != "zeros" or x.ndim != n + 2:
            return None
        return op, (x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
    return call


def _batch_norm(ranks: tuple[int, ...]) -> Callable[[nn.Module, torch.Tensor], LeafCall]:
    def call(m: nn.Module, x: torch.Tensor) -> LeafCall:
        # BatchNorm.forward: eval mode with running stats normalises with them, else with batch stats
        if x.ndim not in ranks or x.shape[1] != m.num_features or m.training:
            return None
        use_batch = m.running_mean is None and m.running_var is None
        return "batch_norm", (x, m.running_mean, m.running_var, m.weight, m.bias, use_batch,
                              0.0 if m.momentum is None else m.momentum, m.eps)
    return call


def _unary(op: str) -> Callable[[nn.Module, torch.Tensor], LeafCall]:
    def call(m: nn.Module, x: torch.Tensor) -> LeafCall:
        return op, (x,)
    return call


#: exact module type -> (module, input) -> (torch function name, its positional arguments)
LEAVES: dict[type, Callable[[nn.Module, torch.Tensor], LeafCall]] = {
    nn.Conv1d: _conv(1), nn.Conv2d: _conv(2), nn.Conv3d: _conv(3),
    nn.BatchNorm1d: _batch_norm((2, 3)), nn.BatchNorm2d: _batch_norm((4,)), nn.BatchNorm3d: _batch_norm((5,)),
    nn.ReLU: _unary("relu"), nn.ReLU6: _unary("hardtanh"), nn.Hardtanh: _unary("hardtanh"),
    nn.Hardswish: _unary("hardswish"), nn.Hardsigmoid: _unary("hardsigmoid"), nn.SiLU: _unary("silu"),
    nn.GELU: _unary("gelu"), nn.Sigmoid: _unary("sigmoid"), nn.Tanh: _unary("tanh"),
    nn.LeakyReLU: _unary("leaky_relu"), nn.ELU: _unary("elu"), nn.Mish: _unary("mish"),
}
