"""Output tensors for the commonest ops without running PyTorch's meta kernels.

Most meta kernels are Python (``torch/_meta_registrations.py``, ``torch/_refs``): a meta
``x + y`` costs ~170 us and a meta conv ~20 us, against ~1.5 us for ``torch.empty_strided``,
so they, not rfcheck, set the cost of an analysis.  Each function here handles only the plain
case it can decide for certain (contiguous tensors, same dtype, valid sizes) and returns None
for anything else, so that PyTorch's own kernel runs and raises PyTorch's own error.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch

_Tensor = torch.Tensor
_META = torch.device("meta")


def _empty(shape, dtype: torch.dtype) -> torch.Tensor:
    """A contiguous meta tensor (strides computed here: empty_strided is the cheapest factory)."""
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= max(s, 1)
    return torch.empty_strided(tuple(shape), tuple(reversed(strides)), dtype=dtype, device=_META)


def like(x: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(x)`` on meta, same strides, at a tenth of its cost."""
    return torch.empty_strided(x.size(), x.stride(), dtype=x.dtype, device=_META)


def _bind(names: tuple, args: tuple, kwargs: dict) -> Optional[dict]:
    """Arguments by name, as the op's signature would bind them; None for a call it would refuse."""
    if len(args) > len(names) or set(kwargs) - set(names):
        return None
    a = dict(zip(names, args))
    a.update(kwargs)
    return a


# -- pointwise binary ops -------------------------------------------------------------
_BINARY = frozenset({"add", "sub", "subtract", "mul", "multiply", "__add__", "__radd__", "__sub__", "__rsub__",
                     "__mul__", "__rmul__"})
_BINARY_INPLACE = frozenset({"__iadd__", "__isub__", "__imul__", "add_", "sub_", "mul_"})
_DIV = frozenset({"div", "true_divide", "__truediv__", "__itruediv__", "div_"})


def _broadcast(a: tuple, b: tuple) -> Optional[tuple]:
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + a
    b = (1,) * (n - len(b)) + b
    out = []
    for p, q in zip(a, b):
        if p == q or q == 1:
            out.append(p)
        elif p == 1:
            out.append(q)
        else:
            return None
    return tuple(out)


def binary(name: str, args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    if len(args) != 2 or (kwargs and set(kwargs) - {"alpha"}):
        return None
    x, y = args
    if not isinstance(x, _Tensor):
        x, y = y, x
        if not isinstance(x, _Tensor) or name in _BINARY_INPLACE:
            return None
    if not x.is_floating_point() or not x.is_contiguous():
        return None
    if isinstance(y, _Tensor):
        if y.dtype != x.dtype or not y.is_contiguous():
            return None
        shape = _broadcast(tuple(x.shape), tuple(y.shape))
        if shape is None:
            return None
    elif isinstance(y, (int, float)) and not isinstance(y, bool):
        shape = tuple(x.shape)
    else:
        return None
    if name in _BINARY_INPLACE or name in ("__itruediv__", "div_"):
        return x if shape == tuple(x.shape) else None
    if name in _DIV and kwargs:
        return None
    return _empty(shape, x.dtype)


# -- convolution ----------------------------------------------------------------------
def _tuple(v: Any, n: int) -> Optional[tuple]:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,) * n
    if isinstance(v, (tuple, list)):
        for i in v:  # (a loop, not all(<genexpr>): this runs three times per conv)
            if type(i) is not int:
                if not isinstance(i, int) or isinstance(i, bool):
                    return None
        v = tuple(v)
        return v if len(v) == n else (v * n if len(v) == 1 else None)
    return None


def conv(name: str, args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    a = _bind(names, args, kwargs)
    if a is None:
        return None
    x, w, b = a.get("input"), a.get("weight"), a.get("bias")
    n = int(name[-2])
    if not isinstance(x, _Tensor) or not isinstance(w, _Tensor) or x.ndim != n + 2 or w.ndim != n + 2:
        return None
    if x.dtype != w.dtype or not x.is_floating_point() or not x.is_contiguous() or not w.is_contiguous():
        return None
    groups = a.get("groups", 1)
    stride, dilation = _tuple(a.get("stride", 1), n), _tuple(a.get("dilation", 1), n)
    padding = a.get("padding", 0)
    if not isinstance(groups, int) or groups < 1 or stride is None or dilation is None:
        return None
    if isinstance(padding, str):
        if padding != "valid":
            return None
        padding = 0
    padding = _tuple(padding, n)
    if padding is None or any(s < 1 for s in stride) or any(d < 1 for d in dilation) or any(p < 0 for p in padding):
        return None
    cout = w.shape[0]
    if w.shape[1] * groups != x.shape[1] or cout % groups:
        return None
    if b is not None and (not isinstance(b, _Tensor) or tuple(b.shape) != (cout,) or b.dtype != x.dtype):
        return None
    spatial = []
    for i in range(n):
        size = (x.shape[2 + i] + 2 * padding[i] - dilation[i] * (w.shape[2 + i] - 1) - 1) // stride[i] + 1
        if size < 1 or x.shape[2 + i] + 2 * padding[i] < dilation[i] * (w.shape[2 + i] - 1) + 1:
            return None
        spatial.append(size)
    return _empty((x.shape[0], cout, *spatial), x.dtype)


# -- pooling ---------------------------------------------------------------------------
def _plain(x: Any, n: int) -> bool:
    """A batched, contiguous floating-point (N, C, *n spatial) meta input."""
    return isinstance(x, _Tensor) and x.ndim == n + 2 and x.is_floating_point() and x.is_contiguous()


def _pool_size(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> Optional[int]:
    """PyTorch's pooling output size (pooling_output_shape), or None where it would raise."""
    if k < 1 or s < 1 or d < 1 or p < 0 or p > k // 2 or size < d * (k - 1) + 1:
        return None  # (some 3d kernels refuse an input smaller than the window even when padded)
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out if out >= 1 and span >= 0 else None


def pool(name: str, args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    maxpool = name.startswith("max")
    n = int(name.split("pool", 1)[1][0])
    names = (("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices") if maxpool
             else ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"))
    a = _bind(names, args, kwargs)
    if a is None:
        return None
    x = a.get("input")
    if not _plain(x, n) or a.get("return_indices") or name.endswith("indices"):
        return None
    k = _tuple(a.get("kernel_size"), n)
    stride = a.get("stride")
    stride = k if stride is None or stride == [] or stride == () else _tuple(stride, n)
    padding, dilation = _tuple(a.get("padding", 0), n), _tuple(a.get("dilation", 1), n)
    ceil = a.get("ceil_mode", False)
    if k is None or stride is None or padding is None or dilation is None or not isinstance(ceil, bool):
        return None
    if not maxpool and a.get("divisor_override") not in (None,) and not (
            isinstance(a["divisor_override"], int) and a["divisor_override"] > 0):
        return None
    spatial = []
    for i in range(n):
        size = _pool_size(x.shape[2 + i], k[i], stride[i], padding[i], dilation[i], ceil)
        if size is None:
            return None
        spatial.append(size)
    return _empty((*x.shape[:2], *spatial), x.dtype)


def adaptive_avg(name: str, args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    n = int(name[-2])
    a = _bind(("input", "output_size"), args, kwargs)
    if a is None or len(args) + len(kwargs) != 2:
        return None
    x, size = a.get("input"), a.get("output_size")
    if not _plain(x, n) or any(s < 1 for s in x.shape[2:]):
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size,) * n
    if not isinstance(size, (tuple, list)) or len(size) != n:
        return None
    out = []
    for i, s in enumerate(size):
        if s is None:  # F.adaptive_avg_pool2d/3d keep that size; the 1d op takes ints only
            if n == 1:
                return None
            s = x.shape[2 + i]
        if not isinstance(s, int) or isinstance(s, bool) or s < 1:
            return None
        out.append(s)
    return _empty((*x.shape[:2], *out), x.dtype)


# -- linear, mean, cat ------------------------------------------------------------------
def linear(name: str, args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    a = _bind(("input", "weight", "bias"), args, kwargs)
    if a is None:
        return None
    x, w, b = a.get("input"), a.get("weight"), a.get("bias")
    if not isinstance(x, _Tensor) or not isinstance(w, _Tensor) or x.ndim < 1 or w.ndim != 2:
        return None
    if not x.is_floating_point() or x.dtype != w.dtype or not x.is_contiguous() or x.shape[-1] != w.shape[1]:
        return None
    if b is not None and (not isinstance(b, _Tensor) or tuple(b.shape) != (w.shape[0],) or b.dtype != x.dtype):
        return None
    return _empty((*x.shape[:-1], w.shape[0]), x.dtype)


def mean(name: str, args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    a = _bind(("input", "dim", "keepdim"), args, kwargs)
    if a is None:
        return None
    x, dims, keep = a.get("input"), a.get("dim"), a.get("keepdim", False)
    if not isinstance(x, _Tensor) or not x.is_floating_point() or not x.is_contiguous() or x.ndim == 0:
        return None
    if not isinstance(keep, bool) or dims is None:
        return None
    if isinstance(dims, int) and not isinstance(dims, bool):
        dims = (dims,)
    if not isinstance(dims, (tuple, list)) or not dims or any(
            not isinstance(d, int) or isinstance(d, bool) or not -x.ndim <= d < x.ndim for d in dims):
        return None
    red = {d % x.ndim for d in dims}
    if len(red) != len(dims):
        return None  # a repeated dim: PyTorch raises
    shape = [1 if i in red else s for i, s in enumerate(x.shape) if keep or i not in red]
    return _empty(shape, x.dtype)


def cat(name: str, args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    a = _bind(("tensors", "dim"), args, kwargs)
    if a is None:
        return None
    ts, dim = a.get("tensors"), a.get("dim", 0)
    if not isinstance(ts, (list, tuple)) or not ts or not isinstance(dim, int) or isinstance(dim, bool):
        return None
    x = ts[0]
    if not isinstance(x, _Tensor) or x.ndim == 0 or not -x.ndim <= dim < x.ndim or not x.is_floating_point():
        return None
    dim %= x.ndim
    total = 0
    xs = tuple(x.shape)
    before, after = xs[:dim], xs[dim + 1:]
    for t in ts:
        if not isinstance(t, _Tensor) or t.ndim != x.ndim or t.dtype != x.dtype or not t.is_contiguous():
            return None
        s = tuple(t.shape)
        if s[:dim] != before or s[dim + 1:] != after:
            return None
        total += s[dim]
    shape = list(x.shape)
    shape[dim] = total
    return _empty(shape, x.dtype)


# -- normalisation (PyTorch's meta versions are decompositions costing ~1 ms each) ----------
def _param_ok(t: Any, shape: tuple, dtype: torch.dtype) -> bool:
    return t is None or (isinstance(t, _Tensor) and tuple(t.shape) == shape and t.dtype == dtype)


def layer_norm(name: str, args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    names = ("input", "normalized_shape", "weight", "bias", "eps")
    a = _bind(names, args, kwargs)
    if a is None:
        return None
    x, ns = a.get("input"), a.get("normalized_shape")
    if not isinstance(x, _Tensor) or not x.is_floating_point():
        return None
    if not isinstance(ns, (tuple, list, torch.Size)) or not ns or len(ns) > x.ndim:
        return None
    ns = tuple(ns)
    if tuple(x.shape[-len(ns):]) != ns or not (_param_ok(a.get("weight"), ns, x.dtype)
                                                and _param_ok(a.get("bias"), ns, x.dtype)):
        return None
    # the output is contiguous whatever the input's layout (the kernel makes the input
    # contiguous first); for a permuted input (ConvNeXt's channels-last blocks) PyTorch's
    # meta decomposition costs ~1 ms
    out = _empty(tuple(x.shape), x.dtype)
    if x.is_contiguous() and x.stride() != out.stride():
        return None  # contiguous with odd strides on size-1 dims: PyTorch keeps some of them
    return out


def group_norm(name: str, args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    names = ("input", "num_groups", "weight", "bias", "eps")
    a = _bind(names, args, kwargs)
    if a is None:
        return None
    x, g = a.get("input"), a.get("num_groups")
    if not isinstance(x, _Tensor) or x.ndim < 2 or not x.is_floating_point() or not x.is_contiguous():
        return None
    if not isinstance(g, int) or isinstance(g, bool) or g < 1 or x.shape[1] % g or x.numel() == 0:
        return None
    per_group = x.shape[0] * x.shape[1] // g
    for d in x.shape[2:]:
        per_group *= d
    if per_group == 1:  # F.group_norm refuses one value per group
        return None
    c = (x.shape[1],)
    if not (_param_ok(a.get("weight"), c, x.dtype) and _param_ok(a.get("bias"), c, x.dtype)):
        return None
    return like(x)


FAST: dict[str, Callable[[str, tuple, dict], Optional[torch.Tensor]]] = {}
for _n in ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"):
    FAST[_n] = pool
for _n in ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"):
    FAST[_n] = adaptive_avg
FAST["linear"] = linear
FAST["layer_norm"] = layer_norm
FAST["group_norm"] = group_norm
FAST["mean"] = mean
FAST["cat"] = cat
for _n in _BINARY | _BINARY_INPLACE | _DIV:
    FAST[_n] = binary
for _n in ("conv1d", "conv2d", "conv3d"):
    FAST[_n] = conv
