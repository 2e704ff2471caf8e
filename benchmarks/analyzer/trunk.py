"""Where a model's RF is read: the input of the global pool that feeds its head (the model output
when there is none), captured while the model runs, with the gradient reference's and
receptivefield's README substitutions.
"""
from __future__ import annotations

import re
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_ADAPTIVE = {f"adaptive_{k}_pool{n}d" for k in ("avg", "max") for n in (1, 2, 3)}
_MAXPOOL = {f"max_pool{n}d{suffix}" for n in (1, 2, 3) for suffix in ("", "_with_indices")}
_CLAMPS = {"hardtanh", "hardtanh_", "relu6", "relu6_"}
_ACTIVATIONS = _CLAMPS | {"relu", "relu_", "hardswish", "hardsigmoid", "silu", "gelu", "sigmoid", "sigmoid_", "tanh",
                          "elu", "leaky_relu", "leaky_relu_", "mish", "softplus"}


def _arg(args, kwargs, i, name, default=None):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _is_global(name: str, args, kwargs) -> bool:
    """A call that reduces a feature map over its spatial dims (a global pool): an adaptive
    pool (alexnet's and vgg's AdaptiveAvgPool2d keep a 6x6 / 7x7 map that the flatten + linear
    then reduces: their input is the point too), or a mean / amax over all spatial dims."""
    if name in _ADAPTIVE:
        return True
    if name in ("mean", "amax") and args and isinstance(args[0], torch.Tensor) and args[0].ndim >= 3:
        dims = _arg(args, kwargs, 1, "dim")
        if dims is None:
            return False
        dims = [dims] if isinstance(dims, int) else list(dims)
        nd = args[0].ndim
        return sorted(d % nd for d in dims) == list(range(2, nd))
    return False


def _max_as_avg_pool(name: str, args, kwargs) -> torch.Tensor:
    """A max pool's gradient reaches only the argmax; an average pool over the same window reaches
    every input the max pool's output depends on."""
    nd = int(re.search(r"(\d)d", name).group(1))
    x, k = args[0], _arg(args, kwargs, 1, "kernel_size")
    s = _arg(args, kwargs, 2, "stride") or k
    p = _arg(args, kwargs, 3, "padding", 0)
    d = _arg(args, kwargs, 4, "dilation", 1)
    ceil = _arg(args, kwargs, 5, "ceil_mode", False)
    if any(v != 1 for v in (d if isinstance(d, (tuple, list)) else (d,))):
        raise NotImplementedError("dilated max pool in the gradient reference")
    return (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1](x, k, s, p, ceil)


class GlobalPoolInput(TorchFunctionMode):
    """Records the input of the last global pool of a forward pass.  ``how``:

    * "plain": nothing else;
    * "reference": the gradient reference's substitutions (max pool -> average pool over the
      same window, clamps -> identity, SE-style global pools inside the trunk detached);
    * "readme": receptivefield's README advice (linear activations, average instead of max
      pooling): max pool -> average pool, every activation -> identity."""

    def __init__(self, how: str = "plain"):
        super().__init__()
        self.how = how
        self.captured: Optional[torch.Tensor] = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if self.how != "plain":
            if name in _MAXPOOL:
                return _max_as_avg_pool(name, args, kwargs)
            if name in (_CLAMPS if self.how == "reference" else _ACTIVATIONS):
                return args[0]
        out = func(*args, **kwargs)
        if _is_global(name, args, kwargs):
            self.captured = args[0]
            if self.how == "reference" and isinstance(out, torch.Tensor):
                out = out.detach()
        return out


class Trunk(nn.Module):
    """The model up to the input of its global pool (the whole model when it has none)."""

    def __init__(self, model: nn.Module, how: str = "plain"):
        super().__init__()
        self.model = model
        self.how = how

    def forward(self, x):
        mode = GlobalPoolInput(self.how)
        with mode:
            y = self.model(x)
        out = mode.captured if mode.captured is not None else y
        self.feature_maps = [out]      # receptivefield reads this attribute
        return out
