"""Module types whose ``forward`` is exactly one torch function on its input (convs, norms,
activations, pools, linear).

For these the tracer records the layer without running the module: calling ``Conv2d`` goes
through ``nn.Module``'s call machinery, ``F.conv2d``'s torch-function dispatch and the tracer's
mode, about half the cost of an analysis, only to reach the same rule with the same
arguments.  Each entry returns the function's name and arguments exactly as the module's
forward would pass them, or None when the module is configured in a way its forward handles
differently (a padding mode, a wrong input rank): the module then runs as usual, so results
and error messages are those of the normal path (``tests/unit/test_leaves.py`` compares the two on
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
        d = m.__dict__  # (parameters through the dicts: nn.Module.__getattr__ is Python)
        p = d["_parameters"]
        if d["padding_mode"] != "zeros" or x.ndim != n + 2 or "weight" not in p:
            return None
        return op, (x, p["weight"], p.get("bias"), d["stride"], d["padding"], d["dilation"], d["groups"])
    return call


def _batch_norm(ranks: tuple[int, ...]) -> Callable[[nn.Module, torch.Tensor], LeafCall]:
    def call(m: nn.Module, x: torch.Tensor) -> LeafCall:
        # BatchNorm.forward: eval mode with running stats normalises with them, else with batch stats
        d = m.__dict__
        if x.ndim not in ranks or x.shape[1] != d["num_features"] or d["training"]:
            return None
        p, b = d["_parameters"], d["_buffers"]
        mean, var = b.get("running_mean"), b.get("running_var")
        momentum = d["momentum"]
        return "batch_norm", (x, mean, var, p.get("weight"), p.get("bias"), mean is None and var is None,
                              0.0 if momentum is None else momentum, d["eps"])
    return call


def _unary(op: str) -> Callable[[nn.Module, torch.Tensor], LeafCall]:
    def call(m: nn.Module, x: torch.Tensor) -> LeafCall:
        return op, (x,)
    return call


def _max_pool(n: int) -> Callable[[nn.Module, torch.Tensor], LeafCall]:
    op = f"max_pool{n}d"

    def call(m: nn.Module, x: torch.Tensor) -> LeafCall:
        d = m.__dict__
        if d["return_indices"]:
            return None  # a tuple out: the normal path
        return op, (x, d["kernel_size"], d["stride"], d["padding"], d["dilation"], d["ceil_mode"], False)
    return call


def _avg_pool(n: int) -> Callable[[nn.Module, torch.Tensor], LeafCall]:
    op = f"avg_pool{n}d"

    def call(m: nn.Module, x: torch.Tensor) -> LeafCall:
        d = m.__dict__
        args = (x, d["kernel_size"], d["stride"], d["padding"], d["ceil_mode"], d["count_include_pad"])
        return op, (args if n == 1 else args + (d["divisor_override"],))
    return call


def _adaptive_avg(n: int) -> Callable[[nn.Module, torch.Tensor], LeafCall]:
    op = f"adaptive_avg_pool{n}d"

    def call(m: nn.Module, x: torch.Tensor) -> LeafCall:
        return op, (x, m.__dict__["output_size"])
    return call


def _linear(m: nn.Module, x: torch.Tensor) -> LeafCall:
    p = m.__dict__["_parameters"]
    if "weight" not in p:
        return None
    return "linear", (x, p["weight"], p.get("bias"))


#: exact module type -> (module, input) -> (torch function name, its positional arguments)
LEAVES: dict[type, Callable[[nn.Module, torch.Tensor], LeafCall]] = {
    nn.Conv1d: _conv(1), nn.Conv2d: _conv(2), nn.Conv3d: _conv(3),
    nn.BatchNorm1d: _batch_norm((2, 3)), nn.BatchNorm2d: _batch_norm((4,)), nn.BatchNorm3d: _batch_norm((5,)),
    nn.ReLU: _unary("relu"), nn.ReLU6: _unary("hardtanh"), nn.Hardtanh: _unary("hardtanh"),
    nn.Hardswish: _unary("hardswish"), nn.Hardsigmoid: _unary("hardsigmoid"), nn.SiLU: _unary("silu"),
    nn.GELU: _unary("gelu"), nn.Sigmoid: _unary("sigmoid"), nn.Tanh: _unary("tanh"),
    nn.LeakyReLU: _unary("leaky_relu"), nn.ELU: _unary("elu"), nn.Mish: _unary("mish"),
    nn.MaxPool1d: _max_pool(1), nn.MaxPool2d: _max_pool(2), nn.MaxPool3d: _max_pool(3),
    nn.AvgPool1d: _avg_pool(1), nn.AvgPool2d: _avg_pool(2), nn.AvgPool3d: _avg_pool(3),
    nn.AdaptiveAvgPool1d: _adaptive_avg(1), nn.AdaptiveAvgPool2d: _adaptive_avg(2),
    nn.AdaptiveAvgPool3d: _adaptive_avg(3), nn.Linear: _linear,
}
