"""Copies of a model with meta tensors in place of its weights.

The analysis reads only shapes, dtypes and which parameters are shared, so a changed copy of
a model (what advice tries per candidate fix) needs no real storage: copying the weights of
a resnet50 costs more than analysing it."""
from __future__ import annotations

import copy

import torch
from torch.nn.parameter import UninitializedTensorMixin

_META = torch.device("meta")


def has_storage(t: torch.Tensor) -> bool:
    """Whether ``t`` holds real data (not meta, nor a lazy module's uninitialized parameter)."""
    return not t.is_meta and not isinstance(t, UninitializedTensorMixin)


def meta_twin(t: torch.Tensor) -> torch.Tensor:
    """A meta tensor with ``t``'s shape, strides, dtype and requires_grad; for a Parameter, a
    Parameter of the same class (its attributes shared, not copied)."""
    if t.layout is torch.strided:
        data = torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=_META)
    else:
        data = t.detach().to(_META)
    if isinstance(t, torch.nn.Parameter):
        try:
            twin = type(t)(data, t.requires_grad)
        except TypeError:  # a subclass whose constructor takes other arguments
            twin = torch.nn.Parameter(data, t.requires_grad)
    else:
        twin = data.requires_grad_(t.requires_grad)
    twin.__dict__.update(t.__dict__)
    return twin


def meta_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``model`` whose parameters, buffers and plain tensor attributes are meta
    tensors.  A tensor the model holds twice (tied weights) gets one twin, so counts of unique
    parameters are unchanged; no real storage is copied and ``model`` is not changed."""
    memo: dict[int, torch.Tensor] = {}
    for m in model.modules():
        attrs = (v for v in vars(m).values() if isinstance(v, torch.Tensor))
        for t in (*m._parameters.values(), *m._buffers.values(), *attrs):
            if t is not None and id(t) not in memo and has_storage(t):
                memo[id(t)] = meta_twin(t)
    # deepcopy takes a tensor found in the memo as its copy: the rest (modules, hooks, python
    # attributes, tensors already on meta) is copied as usual
    return copy.deepcopy(model, memo)
