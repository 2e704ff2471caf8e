"""The rule table: torch function names and module types -> transfer functions.

A rule takes a :class:`~rfcheck.call.Call` and returns the output :class:`TensorState`
(or one per tensor output).  Functions are keyed by their ``__name__`` (``conv2d`` covers
``F.conv2d``, ``torch.conv2d`` ...).  Modules without a rule are not opaque: the analyzer
descends into them and records the torch functions they call.  Register rules for your own
ops with :func:`register_function` or for modules with :func:`register_module`.
"""
from __future__ import annotations

import re
from dataclasses import replace
from fractions import Fraction
from math import prod
from typing import Callable, Optional, Union

import torch

from . import pieces as pc
from .call import Call, tup
from .geometry import AxisGeo, Envelope, adaptive, crop, extremes, interpolation, merge_axis, sliding, transposed
from .state import FLAT, MIXED, NO_AXES, PART, SPATIAL, Dim, Parts, TensorState

Result = Union[TensorState, list]
FunctionRule = Callable[[Call], Result]
ModuleRule = Callable[[torch.nn.Module, Call], Result]

FUNCTION_RULES: dict[str, FunctionRule] = {}
MODULE_RULES: dict[type, ModuleRule] = {}

#: Ops that act on every spatial position independently (and merges of several inputs).
POINTWISE: set[str] = {
    # activations
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "sigmoid", "sigmoid_", "tanh", "tanh_", "gelu", "silu",
    "mish", "hardswish", "hardsigmoid", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "celu", "prelu",
    "rrelu", "softplus", "softsign", "tanhshrink", "threshold", "threshold_", "logsigmoid", "hardshrink",
    "softshrink", "glu", "clamp", "clamp_", "clip", "clamp_min", "clamp_max",
    # normalisation (statistics are not counted as RF, as for batch norm)
    "batch_norm", "instance_norm", "group_norm", "layer_norm", "rms_norm", "local_response_norm",
    # dropout
    "dropout", "dropout_", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    # channel ops
    "channel_shuffle", "native_channel_shuffle",
    # unary math
    "abs", "neg", "exp", "log", "log1p", "sqrt", "rsqrt", "square", "reciprocal", "sign", "sin", "cos", "erf",
    "floor", "ceil", "round", "trunc", "frac", "__neg__", "__abs__", "__invert__", "pow", "__pow__", "__rpow__",
    "exp_", "mul_", "add_", "sub_", "div_", "nan_to_num", "logical_not", "bitwise_not",
    # binary / n-ary merges
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide", "remainder",
    "__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__", "__mul__", "__rmul__", "__imul__",
    "__truediv__", "__rtruediv__", "__itruediv__", "__floordiv__", "__rfloordiv__", "__mod__",
    "__and__", "__or__", "__xor__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
    "eq", "ne", "lt", "le", "gt", "ge", "maximum", "minimum", "fmax", "fmin", "where", "addcmul", "addcdiv",
    "lerp", "masked_fill", "masked_fill_", "copysign", "hypot", "atan2", "logaddexp",
}

#: Ops that return their input unchanged as far as geometry goes; they get no row.
ALIASES: set[str] = {
    "contiguous", "clone", "detach", "detach_", "to", "type", "type_as", "float", "double", "half",
    "bfloat16", "cpu", "cuda", "requires_grad_", "__deepcopy__", "data", "align_to", "rename",
}

#: Ops whose output does not depend on the values of their tensor input.
CONSTANTS: set[str] = {
    "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "randint_like",
    "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "shape", "size",
}

_REDUCTIONS: dict[str, str] = {  # name -> kind of global reduction
    "mean": "avg", "nanmean": "avg", "sum": "sum", "nansum": "sum", "amax": "max", "amin": "min",
    "max": "max", "min": "min", "std": "other", "var": "other", "std_mean": "other", "var_mean": "other",
    "norm": "other", "logsumexp": "other", "prod": "other", "argmax": "max", "argmin": "min",
    "median": "other", "nanmedian": "other", "all": "other", "any": "other", "count_nonzero": "other",
}
_MIXING = {"softmax", "log_softmax", "softmin", "normalize", "cumsum", "cumprod", "cummax", "cummin",
           "logcumsumexp", "_softmax"}


def register_function(*names: str) -> Callable[[FunctionRule], FunctionRule]:
    """Register a rule for torch functions by name (``"conv2d"``, ``"my_op"``)."""
    def deco(fn: FunctionRule) -> FunctionRule:
        for n in names:
            FUNCTION_RULES[n] = fn
        return fn
    return deco


def register_module(*types: type) -> Callable[[ModuleRule], ModuleRule]:
    """Register a rule for a module type; the analyzer then treats the module as one layer
    and does not look inside it.  The rule gets ``(module, call)``."""
    def deco(fn: ModuleRule) -> ModuleRule:
        for t in types:
            MODULE_RULES[t] = fn
        return fn
    return deco


def lookup_module(module: torch.nn.Module) -> ModuleRule | None:
    for cls in type(module).__mro__:
        if cls in MODULE_RULES:
            return MODULE_RULES[cls]
    return None


def op_name(func: Callable) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":  # a tensor property such as x.T or x.data
        owner = getattr(func, "__self__", None)
        name = getattr(owner, "__name__", name)
    return name


_PRETTY: dict[str, str] = {}


def pretty(op: str) -> str:
    """``__radd__`` -> ``add``: the name a layer shows for an op (once per op name)."""
    shown = _PRETTY.get(op)
    if shown is None:
        shown = _PRETTY[op] = _pretty(op)
    return shown


def _pretty(op: str) -> str:
    if op.startswith("__") and op.endswith("__"):
        op = op[2:-2]
        if op.startswith(("r", "i")) and op[1:] in ("add", "sub", "mul", "truediv", "floordiv", "pow", "matmul"):
            op = op[1:]
    op = op.lstrip("_")
    return {"truediv": "div", "max_pool1d_with_indices": "max_pool1d", "max_pool2d_with_indices": "max_pool2d",
            "max_pool3d_with_indices": "max_pool3d"}.get(op, op)


# -- pointwise ---------------------------------------------------------------------------
def pointwise(call: Call) -> Result:
    call.info["kind"] = "pointwise" if len(call.tracked) == 1 else "merge"
    results = [call.merge(o) for o in call.outputs]
    sub = call.state.subpixel
    if sub is not None and len(call.tracked) == 1:
        for r in results:
            if tuple(r.dims) == tuple(call.state.dims):
                r.subpixel = sub
    return results


# -- convolutions ------------------------------------------------------------------------
@register_function("conv1d", "conv2d", "conv3d")
def conv(call: Call) -> Result:
    if len(call.args) == 7 and not call.kwargs:  # (every Conv module's call: no binding by name)
        x, w, _, stride, pad, dilation, groups = call.args
    else:
        a = call.bind(["input", "weight", "bias", "stride", "padding", "dilation", "groups"],
                      stride=1, padding=0, dilation=1, groups=1)
        x, w, stride, pad, dilation, groups = a["input"], a["weight"], a["stride"], a["padding"], a["dilation"], \
            a["groups"]
    nd = w.ndim - 2
    k = tuple(w.shape[2:])
    s, d = tup(stride, nd), tup(dilation, nd)
    if pad == "valid":
        p = (0,) * nd
    elif pad == "same":
        p = tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, d))
    else:
        p = tup(pad, nd)
    cin = x.shape[-nd - 1]
    call.info.update(kind="conv", kernel=k, stride=s, padding=p, dilation=d, groups=groups,
                     in_channels=cin, out_channels=w.shape[0])
    call.macs = call.out.numel() * (cin // groups) * prod(k)
    windows = {i - nd: sliding(k[i], s[i], p[i], d[i]) for i in range(nd)}
    before = _positions_in_channels(call, x.ndim - nd - 1, groups)
    return grouped(call, call.window(windows, state=before, per_channel=False), windows, groups, x.ndim - nd - 1,
                   cin, w.shape[0])


def _positions_in_channels(call: Call, cdim: int, groups: int) -> Optional[TensorState]:
    """A conv whose channel dim holds spatial positions (a whole axis moved there by a view): it
    reduces them as a Linear would, before its window; None when the channels hold none."""
    st = call.state
    if not st.dims[cdim].axes:
        return None
    if groups != 1:
        call.note("a grouped conv over channels that hold spatial positions is not modelled", exact=False,
                  code="RF105")
        return None
    res = call.collapse([cdim], keep=True, state=st, kind="conv")
    dims = list(res.dims)
    dims[cdim] = NO_AXES
    return TensorState(tuple(dims), res.geo, res.exact, lost=res.lost)


def grouped(call: Call, res: TensorState, windows: dict, groups: int, cdim: int, cin: int,
            cout: int) -> TensorState:
    """A conv's channels: groups=1 mixes them all; with groups, output group k reads input
    channels k*cin/groups ... only, so channel provenance maps group by group."""
    st = call.state
    if groups == 1:
        call.info["mixes_channels"] = True
        return res if res.lost is None else replace(res, lost=None)
    if st.parts is None or st.parts.dim != cdim:
        return res
    dims = list(res.dims)

    def windowed(geo: dict) -> dict:
        return call._windowed(geo, dims, windows, call.out, False, True, record=False)
    parts = st.parts
    if cin == groups:  # depthwise: output group k is input channel k's geometry, windowed
        per = cout // groups
        geos = parts.mapped(windowed)
        return replace(res, parts=Parts.build(cdim, [((hi - lo) * per, g) for lo, hi, g in
                                                     zip(parts.bounds, parts.bounds[1:], geos)]))
    pieces = []
    done: dict[tuple[int, ...], dict] = {}  # (the groups of a shuffle read a few combinations)
    for g in range(groups):
        kept = parts.select(g * cin // groups, (g + 1) * cin // groups)
        key = tuple(id(geo) for _, geo in kept)
        out = done.get(key)
        if out is None:
            out = done[key] = windowed(call.union_geo([geo for _, geo in kept], dims))
        pieces.append((cout // groups, out))
    return replace(res, parts=Parts.build(cdim, pieces))


@register_function("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def conv_transpose(call: Call) -> Result:
    a = call.bind(["input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"],
                  stride=1, padding=0, output_padding=0, groups=1, dilation=1)
    x, w = a["input"], a["weight"]
    nd = w.ndim - 2
    k = tuple(w.shape[2:])
    s, p, d = tup(a["stride"], nd), tup(a["padding"], nd), tup(a["dilation"], nd)
    groups = a["groups"]
    call.info.update(kind="conv_transpose", kernel=k, stride=s, padding=p, dilation=d, groups=groups,
                     output_padding=tup(a["output_padding"], nd), in_channels=x.shape[-nd - 1],
                     out_channels=w.shape[1] * groups)
    call.macs = x.numel() * w.shape[1] * prod(k)
    windows = {i - nd: transposed(k[i], s[i], p[i], d[i]) for i in range(nd)}
    before = _positions_in_channels(call, x.ndim - nd - 1, groups)
    return grouped(call, call.window(windows, state=before, per_channel=False), windows, groups, x.ndim - nd - 1,
                   x.shape[-nd - 1], w.shape[1] * groups)


# -- pooling -----------------------------------------------------------------------------
def op_dims(op: str) -> int:
    """The spatial dimensions an op name says (``max_pool2d_with_indices`` -> 2)."""
    m = re.search(r"([123])d(?:_|$)", op)
    if m is None:
        raise ValueError(f"op {op!r} names no dimension")
    return int(m.group(1))


def _pool(call: Call, kind: str, k, s, p, d, nd: int) -> Result:
    k = tup(k, nd)
    s = k if s is None or (isinstance(s, (list, tuple)) and len(s) == 0) else tup(s, nd)
    p, d = tup(p, nd), tup(d, nd)
    call.info.update(kind=f"{kind}_pool", kernel=k, stride=s, padding=p, dilation=d)
    call.info["global_kind"] = kind
    st = call.window({i - nd: sliding(k[i], s[i], p[i], d[i]) for i in range(nd)},
                     collapse_if_whole=True, dense=all(x == 1 for x in d))
    return [st for _ in call.outputs]


@register_function("max_pool1d", "max_pool2d", "max_pool3d",
                   "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices")
def max_pool(call: Call) -> Result:
    a = call.bind(["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"],
                  stride=None, padding=0, dilation=1)
    return _pool(call, "max", a["kernel_size"], a["stride"], a["padding"], a["dilation"], op_dims(call.op))


@register_function("avg_pool1d", "avg_pool2d", "avg_pool3d")
def avg_pool(call: Call) -> Result:
    a = call.bind(["input", "kernel_size", "stride", "padding", "ceil_mode"], stride=None, padding=0)
    return _pool(call, "avg", a["kernel_size"], a["stride"], a["padding"], 1, op_dims(call.op))


@register_function("lp_pool1d", "lp_pool2d", "lp_pool3d")
def lp_pool(call: Call) -> Result:
    a = call.bind(["input", "norm_type", "kernel_size", "stride", "ceil_mode"], stride=None)
    return _pool(call, "lp", a["kernel_size"], a["stride"], 0, 1, op_dims(call.op))


@register_function("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                   "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
                   "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
                   "adaptive_max_pool3d_with_indices")
def adaptive_pool(call: Call) -> Result:
    nd = op_dims(call.op)
    kind = "avg" if "avg" in call.op else "max"
    x, out = call.data, call.out
    call.info.update(kind=f"{kind}_pool", adaptive=True, output_size=tuple(out.shape[-nd:]))
    call.info["global_kind"] = kind
    st = call.window({i - nd: adaptive(x.shape[i - nd], out.shape[i - nd]) for i in range(nd)},
                     collapse_if_whole=True)
    return [st for _ in call.outputs]


@register_function("fractional_max_pool2d", "fractional_max_pool3d",
                   "fractional_max_pool2d_with_indices", "fractional_max_pool3d_with_indices")
def fractional_pool(call: Call) -> Result:
    nd = op_dims(call.op)
    x, out = call.data, call.out
    call.info.update(kind="max_pool")
    call.note("fractional max pooling uses random windows: RF estimated from the size ratio", exact=False)
    st = call.window({i - nd: adaptive(x.shape[i - nd], out.shape[i - nd]) for i in range(nd)})
    return [st for _ in call.outputs]


# -- resampling --------------------------------------------------------------------------
@register_function("interpolate", "upsample", "upsample_nearest", "upsample_bilinear")
def interpolate(call: Call) -> Result:
    a = call.bind(["input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias"],
                  size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                  antialias=False)
    if call.op == "upsample_bilinear":
        a["mode"], a["align_corners"] = "bilinear", True
    elif call.op == "upsample_nearest":
        a["mode"] = "nearest"
    x, out, mode = call.data, call.out, a["mode"]
    nd = x.ndim - 2
    sf = a["scale_factor"]
    sfs = tup(sf, nd) if sf is not None else None
    call.info.update(kind="upsample", mode=mode)
    windows = {}
    for i in range(nd):
        n_in, n_out = x.shape[2 + i], out.shape[2 + i]
        if mode == "area":
            windows[2 + i] = adaptive(n_in, n_out)
            continue
        if mode in ("linear", "bilinear", "trilinear", "bicubic") and a["align_corners"]:
            scale = Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
        elif sfs is not None and not a["recompute_scale_factor"]:
            f = Fraction(float(sfs[i])).limit_denominator(1000)
            if float(f) != float(sfs[i]):
                call.note(f"scale factor {sfs[i]} approximated as {f}", exact=False)
            scale = 1 / f
        else:
            scale = Fraction(n_in, n_out)
        if mode not in ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic"):
            return call.unknown_result(f"interpolation mode {mode!r} has no rule")
        if scale == 0:  # align_corners with one unit on either side: every output reads input 0
            windows[2 + i] = crop(0, step=0)
        else:
            windows[2 + i] = interpolation(mode, scale, bool(a["align_corners"]))
        if a["antialias"] and n_out < n_in:
            call.note("antialiased downsampling reads a wider window than modelled", exact=False)
    call.info["scale"] = tuple(Fraction(out.shape[2 + i], x.shape[2 + i]) for i in range(nd))
    return call.window(windows)


@register_function("pixel_shuffle")
def pixel_shuffle(call: Call) -> Result:
    r = call.bind(["input", "upscale_factor"])["upscale_factor"]
    call.info.update(kind="pixel_shuffle", factor=r)
    st = call.state
    if st.subpixel is not None and st.subpixel[0] == r:
        call.note("undoes the pixel_unshuffle before it: the geometry before that is restored")
        return TensorState(st.dims, dict(st.subpixel[1]), st.exact)
    from .geometry import Envelope
    w = Envelope(r, 1, (0,) * r, (0,) * r)
    res = call.window({-2: w, -1: w})
    cdim = call.data.ndim - 3
    if st.parts is None or st.parts.dim != cdim:
        return res
    # output channel c gathers input channels c*r*r ... (c+1)*r*r - 1 into its r x r phases: exact
    # per output channel when each such block comes from one input of the concat
    block = r * r
    if any(b % block for b in st.parts.bounds):
        # a block mixes inputs: each output unit, summed over channels, reads their union (the
        # geometry already shown), but which output channel holds which is not followed
        return replace(res, parts=None, lost=call.name)
    pieces = [((hi - lo) // block, call._windowed(g, list(res.dims), {-2: w, -1: w}, call.out, False, True,
                                                    record=False))
              for lo, hi, g in zip(st.parts.bounds, st.parts.bounds[1:], st.parts.geos)]
    return replace(res, parts=Parts.build(cdim, pieces))


@register_function("pixel_unshuffle")
def pixel_unshuffle(call: Call) -> Result:
    r = call.bind(["input", "downscale_factor"])["downscale_factor"]
    call.info.update(kind="pixel_unshuffle", factor=r)
    st = call.state
    out = call.window({-2: sliding(r, r), -1: sliding(r, r)})
    if all(st.dims[j].kind == "spatial" for j in (-2, -1)):
        out.subpixel = (r, dict(st.geo))
    out.lost = out.lost or call.name  # (each channel holds one phase: a later channel slice is not exact)
    return out


@register_function("unfold")
def unfold(call: Call) -> Result:
    """``F.unfold`` (im2col: N, C, *spatial -> N, C*prod(k), L windows) or ``Tensor.unfold(dim,
    size, step)`` (the windows along one dim, their offsets in a new last dim).  Each window
    position reads its window, its offsets held in a dim rfcheck treats as channels (a later
    slice of them is not exact)."""
    x, out, st = call.data, call.out, call.state
    if out.ndim == x.ndim + 1:  # Tensor.unfold
        a = call.bind(["input", "dimension", "size", "step"])
        d = a["dimension"] % x.ndim
        if st.dims[d].kind != SPATIAL:
            return call.unknown_result("unfold along a dim that is not a whole spatial axis has no rule")
        call.info.update(kind="unfold", kernel=(a["size"],), stride=(a["step"],))
        res = call.window({d: sliding(a["size"], a["step"])})
        return TensorState(res.dims + (NO_AXES,), res.geo, res.exact, lost=call.name)
    a = call.bind(["input", "kernel_size", "dilation", "padding", "stride"], dilation=1, padding=0, stride=1)
    nd = x.ndim - 2
    if out.ndim != 3 or any(st.dims[2 + i].kind != SPATIAL for i in range(nd)):
        return call.unknown_result("unfold of a map whose dims are not whole spatial axes has no rule")
    k, dl, p, s = (tup(a[n], nd) for n in ("kernel_size", "dilation", "padding", "stride"))
    call.info.update(kind="unfold", kernel=k, stride=s, padding=p, dilation=dl)
    n_out = [(x.shape[2 + i] + 2 * p[i] - dl[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(nd)]
    windows = torch.empty((x.shape[0], x.shape[1], *n_out), device="meta")  # the map behind the L dim
    res = call.window({2 + i: sliding(k[i], s[i], p[i], dl[i]) for i in range(nd)}, out=windows)
    sizes = {ax: g.size for ax, g in res.geo.items()}
    tokens = pc.classify(tuple(pc.Piece(st.dims[2 + i].axis, 1, sizes[st.dims[2 + i].axis]) for i in range(nd)),
                         sizes)
    return TensorState((res.dims[0], NO_AXES, tokens), res.geo, res.exact, lost=call.name)


@register_function("fold")
def fold(call: Call) -> Result:
    """``F.fold`` (col2im: N, C*prod(k), L windows -> N, C, *output_size, overlapping windows
    summed): each output unit reads the windows that cover it, as after a transposed conv."""
    a = call.bind(["input", "output_size", "kernel_size", "dilation", "padding", "stride"], dilation=1, padding=0,
                  stride=1)
    x, out, st = call.data, call.out, call.state
    nd = out.ndim - 2
    grid = st.dims[-1].pieces if st.dims[-1].kind in (FLAT, SPATIAL) else ()
    if st.dims[-1].kind == SPATIAL and nd == 1:
        grid = (pc.Piece(st.dims[-1].axis, 1, x.shape[-1]),)
    if x.ndim != 3 or len(grid) != nd or any(q.axis < 0 or q.stride != 1 for q in grid) or st.dims[1].axes:
        return call.unknown_result("fold of windows whose positions are not whole spatial axes has no rule")
    k, dl, p, s = (tup(a[n], nd) for n in ("kernel_size", "dilation", "padding", "stride"))
    call.info.update(kind="fold", kernel=k, stride=s, padding=p, dilation=dl)
    spread = TensorState((st.dims[0], NO_AXES) + tuple(Dim(frozenset([q.axis]), SPATIAL) for q in grid), dict(st.geo),
                         st.exact)
    if st.lost:  # (the channels still hold the offsets unfold put there: each sums copies of one pixel)
        call.note(f"fold of channels whose offsets were not mixed since {st.lost}: each output unit may read "
                  "less than the windows that cover it, which is the RF shown, an upper bound", exact=False,
                  code="RF104")
    return call.window({2 + i: transposed(k[i], s[i], p[i], dl[i]) for i in range(nd)}, state=spread)


@register_module(torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN)
def recurrent(module: torch.nn.Module, call: Call) -> Result:
    """A recurrence over the sequence dim (Sequencer's LSTMs over rows and columns): with
    ``bidirectional`` every step reads every step, as attention does; one-directional, step t
    reads steps 0..t only, and the whole sequence shown is an upper bound (RF104).  The final
    states read the whole sequence.  Run as one layer: its forward never runs on meta tensors."""
    x, st = call.data, call.state
    t_dim = 0 if x.ndim == 2 or not module.batch_first else 1
    call.info.update(kind="recurrent")
    batch = x.numel() // (x.shape[t_dim] * x.shape[-1])  # (1 for an unbatched sequence)
    call.macs = sum(p.numel() for p in module.parameters()) * x.shape[t_dim] * batch
    if st.dims[t_dim].axes and not module.bidirectional:
        call.note("a one-directional recurrence reads the steps before each one only: the RF shown, the whole "
                  "sequence, is an upper bound", exact=False, code="RF104")
    seq = call.collapse([t_dim], keep=True, state=st, mix=True)
    out = TensorState(seq.dims[:-1] + (NO_AXES,), seq.geo, seq.exact)
    final = call.collapse([t_dim], keep=False, state=st)
    results = [out]
    for t in call.outputs[1:]:
        results.append(TensorState(tuple(NO_AXES for _ in range(t.ndim)), dict(final.geo), final.exact))
    return results


def _recurrent_outputs(module: torch.nn.Module, x: torch.Tensor, hx: object = None) -> Optional[tuple]:
    """The meta outputs of an LSTM/GRU/RNN forward, by the documented shapes (None: let it run)."""
    if not isinstance(x, torch.Tensor) or x.ndim not in (2, 3):
        return None
    d = 2 if module.bidirectional else 1
    h = getattr(module, "proj_size", 0) or module.hidden_size
    n = module.num_layers * d
    if x.ndim == 2:
        seq, states = (x.shape[0], d * h), [(n, h)]
    else:
        b, t = (x.shape[0], x.shape[1]) if module.batch_first else (x.shape[1], x.shape[0])
        seq = (b, t, d * h) if module.batch_first else (t, b, d * h)
        states = [(n, b, h)]
    if isinstance(module, torch.nn.LSTM):
        states.append(states[0][:-1] + (module.hidden_size,))
    new = [torch.empty(s, dtype=x.dtype, device="meta") for s in [seq, *states]]
    return (new[0], (new[1], new[2])) if isinstance(module, torch.nn.LSTM) else (new[0], new[1])


recurrent.meta_forward = _recurrent_outputs


@register_function("pad")
def pad(call: Call) -> Result:
    a = call.bind(["input", "pad", "mode", "value"], mode="constant")
    pads = list(a["pad"])
    call.info.update(kind="pad", pad=tuple(pads), mode=a["mode"])
    return call.window({-1 - i: crop(-pads[2 * i]) for i in range(len(pads) // 2)})


@register_function("roll")
def roll(call: Call) -> Result:
    a = call.bind(["input", "shifts", "dims"], dims=None)
    if a["dims"] is None:
        return call.unknown_result("roll over the flattened tensor has no rule")
    shifts, dims = tup(a["shifts"], 1), tup(a["dims"], 1)
    # (Swin's shifted windows: with its attention mask hiding the wrapped positions the values are
    # exact; a mask is a tensor's values, which the trace does not see)
    call.note("roll wraps around at the border: units near it also read the other side unless an attention "
              "mask hides it; the RF shown is that of the interior units", exact=False, code="RF104")
    return call.window({d: crop(-s) for s, d in zip(shifts, dims)})


# -- linear and matrix products ------------------------------------------------------------
@register_function("linear")
def linear(call: Call) -> Result:
    w = call.bind(["input", "weight", "bias"])["weight"]
    call.info.update(kind="linear", in_features=w.shape[-1], out_features=w.shape[0])
    call.macs = call.out.numel() * w.shape[-1]
    d = call.state.dims[-1]
    if d.axes and (d.kind == MIXED or (d.pieces and all(p.axis >= 0 for p in d.pieces))):
        # a Linear over tokens (MLP-Mixer's token MLP, to a hidden size and back): every entry
        # sees every token; with another length the dim is that hidden layer, no positions
        st = call.collapse([-1], keep=True, kind="linear", mix=True)
        if call.out.shape[-1] == call.data.shape[-1]:
            return st
        return call.with_dims(st.dims[:-1] + (Dim(d.axes, MIXED),), st)
    st = call.collapse([-1], keep=True, kind="linear")
    if call.info.get("mixing"):  # a Linear over tokens of the same length: positions kept, each sees all
        return st
    return call.with_dims(st.dims[:-1] + (NO_AXES,), st)


@register_function("bilinear")
def bilinear(call: Call) -> Result:
    call.info.update(kind="linear")
    st = call.merge(call.out)  # both inputs' last dims are contracted
    st = call.collapse([-1], keep=True, state=st, kind="linear")
    return call.with_dims(st.dims[:-1] + (NO_AXES,), st)


@register_function("matmul", "__matmul__", "__rmatmul__", "bmm", "mm")
def matmul(call: Call) -> Result:
    a, b = call.args[0], call.args[1]
    if call.op == "__rmatmul__":
        a, b = b, a
    states = {id(t): st for t, st in zip(call.tracked, call.inputs)}

    def dims_of(t):
        st = states.get(id(t))
        return list(st.dims) if st is not None else [NO_AXES] * t.ndim

    da, db = dims_of(a), dims_of(b)
    contracted = [da[-1], db[-2] if b.ndim >= 2 else db[-1]]
    out = call.out
    left = [da[-2]] if a.ndim >= 2 else []
    right = [db[-1]] if b.ndim >= 2 else []
    batch_n = out.ndim - len(left) - len(right)
    ba, bb = da[:-2] if a.ndim >= 2 else [], db[:-2] if b.ndim >= 2 else []
    batch = []
    for j in range(batch_n):
        ka, kb = j - (batch_n - len(ba)), j - (batch_n - len(bb))
        cand = [d for d in ((ba[ka] if ka >= 0 else NO_AXES), (bb[kb] if kb >= 0 else NO_AXES)) if d.axes]
        batch.append(cand[0] if cand else NO_AXES)
    call.macs = out.numel() * a.shape[-1]
    call.info["kind"] = "matmul"
    if not contracted[0].axes and not contracted[1].axes:
        call.info["mixes_channels"] = True  # (a product over features: every output feature reads all)
    merged = TensorState(tuple(batch + left + right), {}, True)
    held = {ax for d in merged.dims for ax in d.axes}
    for st in call.inputs:
        for ax, g in st.geo.items():
            cur = merged.geo.get(ax)
            reduced = [x for x in (cur, g) if x is not None and x.global_at is not None]
            if cur is not None and len(reduced) == 1 and ax in held:
                # a product with an operand reduced over the positions that the output still holds
                # (linear attention's q @ (k.T @ v)): every unit reads every unit of both
                merged.geo[ax] = _mixed_with(cur if g is reduced[0] else g, reduced[0])
            elif cur is None or g.env.size_max > cur.env.size_max:
                merged.geo[ax] = g
    merged.exact = all(st.exact for st in call.inputs)
    tmp = TensorState(tuple(merged.dims) + tuple(contracted), merged.geo, merged.exact)
    n = len(merged.dims)
    res = call.collapse([n, n + 1], keep=False, state=tmp, kind="attention")
    return res


def _mixed_with(local: AxisGeo, reduced: AxisGeo) -> AxisGeo:
    """``local``'s units each reading all of its own and of ``reduced``'s input (before it was
    reduced): a constant envelope over both extents."""
    ivs = [iv for iv in (extremes(local.env, local.size),
                         extremes(reduced.before.env, reduced.before.size) if reduced.before is not None else None)
           if iv is not None]
    env = Envelope(1, 0, (min(i[0] for i in ivs),), (max(i[1] for i in ivs),)) if ivs else local.env
    return AxisGeo(env, local.mix().short, local.size, None, None, local.gated)


def _attend(call: Call, q, k, v, token_dim: int, masked: Union[bool, str]) -> TensorState:
    """Every query position reads every key and value position (on the axes their token dim
    holds), and its own query position: the output has the query's layout."""
    states = {id(t): st for t, st in zip(call.tracked, call.inputs)}
    qs = states.get(id(q))
    parts = [qs] if qs is not None else []
    for t in (k, v):
        st = states.get(id(t))
        if st is not None:
            parts.append(call.collapse([token_dim], keep=True, state=st, kind="attention", mix=True))
    call.info["kind"] = "attention"
    dims = (tuple(qs.dims[:-1]) if qs is not None else tuple(NO_AXES for _ in range(q.ndim - 1))) + (NO_AXES,)
    geo: dict = {}
    for st in parts:
        for ax, g in st.geo.items():
            geo.setdefault(ax, []).append((call.name, g))
    merged = {}
    for ax, branches in geo.items():
        g, _, ok = merge_axis(branches, branches[0][1].size, call.name)
        merged[ax] = g
        call.exact = call.exact and ok
    if masked == "float":
        call.note("an additive float attention mask (a relative position bias, a shifted-window mask) hides a "
                  "position only where it holds -inf or a large negative value, which the trace cannot read: the "
                  "RF shown is that of the unmasked attention, an upper bound", exact=False, code="RF104")
    elif masked:
        call.note("an attention mask or causal masking hides positions from some queries: the RF shown is that "
                  "of the unmasked attention, an upper bound", exact=False, code="RF104")
    return TensorState(dims, merged, all(st.exact for st in parts) and call.exact)


@register_function("scaled_dot_product_attention")
def scaled_dot_product_attention(call: Call) -> Result:
    a = call.bind(["query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale"], attn_mask=None,
                  is_causal=False)
    q, k, v = a["query"], a["key"], a["value"]
    call.macs = q.numel() * k.shape[-2] + call.out.numel() * k.shape[-2]
    mask = a["attn_mask"]
    float_mask = isinstance(mask, torch.Tensor) and mask.dtype.is_floating_point and not a["is_causal"]
    return _attend(call, q, k, v, -2, "float" if float_mask else (mask is not None or bool(a["is_causal"])))


@register_function("multi_head_attention_forward")
def multi_head_attention(call: Call) -> Result:
    """F.multi_head_attention_forward (nn.MultiheadAttention): (L, N, E) inputs, tokens first."""
    a = call.bind(["query", "key", "value"], key_padding_mask=None, attn_mask=None, is_causal=False)
    q, k, v = a["query"], a["key"], a["value"]
    masked = any(a.get(m) is not None for m in ("key_padding_mask", "attn_mask")) or bool(a.get("is_causal"))
    call.macs = 2 * q.numel() * k.shape[0]
    st = _attend(call, q, k, v, 0, masked)
    out = []
    for t in call.outputs:  # the attention output, and the averaged weights (N, L, S) if asked for
        if t.ndim == q.ndim:
            out.append(st)
        else:
            out.append(TensorState(tuple(NO_AXES for _ in range(t.ndim)), dict(st.geo), st.exact))
    return out


@register_function("einsum")
def einsum(call: Call) -> Result:
    eq = call.args[0].replace(" ", "")
    ops = call.args[1:]
    if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
        ops = tuple(ops[0])
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    states = {id(t): st for t, st in zip(call.tracked, call.inputs)}
    letters: dict[str, list[Dim]] = {}
    for term, t in zip(terms, ops):
        st = states.get(id(t))
        dims = list(st.dims) if st is not None else [NO_AXES] * t.ndim
        if "..." in term:
            head, tail = term.split("...")
            n_ell = t.ndim - len(head) - len(tail)
            term = head + "".join(chr(0x100 + i) for i in range(n_ell)) + tail
        for ch, d in zip(term, dims):
            letters.setdefault(ch, []).append(d)
    if "->" not in eq:
        rhs = "".join(sorted(c for c in letters if sum(term.count(c) for term in terms) == 1))
    if "..." in rhs:
        n_ell = call.out.ndim - len(rhs) + 3
        rhs = rhs.replace("...", "".join(chr(0x100 + i) for i in range(n_ell)))
    out_dims = [next((d for d in letters.get(ch, []) if d.axes), NO_AXES) for ch in rhs]
    contracted = [next((d for d in ds if d.axes), NO_AXES) for ch, ds in letters.items() if ch not in rhs]
    geo = {}
    for st in call.inputs:
        for ax, g in st.geo.items():
            if ax not in geo or g.env.size_max > geo[ax].env.size_max:
                geo[ax] = g
    tmp = TensorState(tuple(out_dims) + tuple(contracted), geo, all(st.exact for st in call.inputs))
    call.info["kind"] = "matmul"
    return call.collapse(range(len(out_dims), len(out_dims) + len(contracted)), keep=False, state=tmp,
                         kind="attention")


# -- reductions and mixing along a dim ---------------------------------------------------
def _dims_arg(call: Call, pos: int):
    for key in ("dim", "axis"):
        if key in call.kwargs:
            return call.kwargs[key]
    if len(call.args) > pos and not isinstance(call.args[pos], (bool, str)) and call.args[pos] is not None:
        return call.args[pos]
    return None


def reduction(call: Call) -> Result:
    x = call.data
    if call.op in ("max", "min") and len(call.args) > 1 and isinstance(call.args[1], torch.Tensor):
        return pointwise(call)
    dim = _dims_arg(call, 2 if call.op == "norm" else 1)
    dims = range(x.ndim) if dim is None else tup(dim, 1)
    keep = call.out.ndim == x.ndim and x.ndim > 0
    call.info["kind"] = "reduce"
    st = call.collapse(dims, keep=keep, kind=_REDUCTIONS[call.op])
    return [st for _ in call.outputs]


def mixing(call: Call) -> Result:
    dim = _dims_arg(call, 2 if call.op == "normalize" else 1)
    if dim is None:
        dim = 1 if call.op == "normalize" else None
    if dim is None:
        return call.unknown_result(f"{call.op} without a dim has no rule")
    call.info["kind"] = "mix"
    if call.op.startswith("cum") or call.op == "logcumsumexp":
        if any(call.state.dims[d].axes for d in tup(dim, 1)):
            call.note("a cumulative op reads a one-sided, position-dependent window: treated as global",
                      exact=False)
    st = call.collapse(tup(dim, 1), keep=True, kind="other")
    return [st for _ in call.outputs]


for _n in _REDUCTIONS:
    FUNCTION_RULES[_n] = reduction
for _n in _MIXING:
    FUNCTION_RULES[_n] = mixing


# -- shape ops ---------------------------------------------------------------------------
def reshape_dims(old: tuple, dims: tuple, new: tuple) -> tuple[list[Dim], bool]:
    """Map dim roles through a view/reshape by grouping dims with equal products."""
    old_nz = [(i, s) for i, s in enumerate(old) if s != 1]
    new_nz = [(j, s) for j, s in enumerate(new) if s != 1]
    out = [NO_AXES] * len(new)
    exact = True
    a = b = 0
    while a < len(old_nz) and b < len(new_nz):
        ga, gb = [old_nz[a]], [new_nz[b]]
        pa, pb = old_nz[a][1], new_nz[b][1]
        while pa != pb:
            if pa < pb:
                a += 1
                if a >= len(old_nz):
                    return out, False
                ga.append(old_nz[a])
                pa *= old_nz[a][1]
            else:
                b += 1
                if b >= len(new_nz):
                    return out, False
                gb.append(new_nz[b])
                pb *= new_nz[b][1]
        a += 1
        b += 1
        src = [dims[i] for i, _ in ga]
        axes = frozenset().union(*(d.axes for d in src))
        if len(ga) == 1 and len(gb) == 1:
            out[gb[0][0]] = src[0]
        elif len(gb) == 1:
            kinds = {d.kind for d in src if d.axes}
            out[gb[0][0]] = Dim(axes, "part" if PART in kinds else "flat") if axes else NO_AXES
        else:
            for j, _ in gb:
                out[j] = Dim(axes, PART) if axes else NO_AXES
            if len(ga) > 1 and axes:
                exact = False
    return out, exact


@register_function("view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as",
                   "ravel", "squeeze_", "unsqueeze_", "atleast_2d", "atleast_3d")
def reshape(call: Call) -> Result:
    x, out = call.data, call.out
    call.info["kind"] = "reshape"
    followed = _reshape_pieces(call)
    if followed is not None:
        return followed
    dims, ok = reshape_dims(tuple(x.shape), call.state.dims, tuple(out.shape))
    if dims and dims[0].axes and not call.state.dims[0].axes:  # spatial positions moved into dim 0
        rows = out.shape[0] // x.shape[0] if x.shape[0] and out.shape[0] % x.shape[0] == 0 else None
        turned = f"into {rows} rows" if rows else f"into rows of a {out.shape[0]}-row batch"
        call.warn("RF103", f"batch-folded at {call.name}: {_call_text(call)} turns each "
                           f"{'x'.join(map(str, x.shape[1:]))} sample {turned}: the batch dim now holds spatial "
                           "positions, and what follows treats each row as a sample of its own, which rfcheck "
                           "cannot follow exactly (the values from here on are not exact); in a classifier head, "
                           "x.flatten(1) or x.view(x.size(0), -1) keeps one row per sample")
        call.note("spatial positions folded into the batch dim", exact=False, code="RF103")
    elif not ok:
        call.note("reshape that regroups spatial dims across others is not modelled exactly", exact=False,
                  code="RF105")
    return call.with_dims(dims)


def _reshape_pieces(call: Call) -> Optional[TensorState]:
    """A view/reshape with every spatial axis followed piece by piece (:mod:`rfcheck.pieces`):
    windows folded into the batch and back, space-to-depth, patch merging.  None: not followed."""
    x, out, st = call.data, call.out, call.state
    if st.subpixel is not None:
        return None
    sizes = {a: g.size for a, g in st.geo.items() if g.global_at is None}
    parts_dim = st.parts.dim if st.parts is not None and st.parts.dim >= 0 else None
    flat = []
    for j, (d, n) in enumerate(zip(st.dims, x.shape)):
        ps = pc.pieces_of(d, j, n, sizes, parts_dim)
        if ps is None or any(p.axis >= 0 and p.axis not in sizes for p in ps):
            return None
        flat += ps
    if not any(p.axis >= 0 for p in flat):
        return None  # no spatial axis moves: the plain rule is exact
    new = pc.split(flat, tuple(out.shape))
    if new is None or (new and pc.has_channels(new[0])):
        return None  # (channels into the batch dim: a student's x.view(-1, C), RF103 below)
    geo = dict(st.geo)
    # a dim that takes pieces of an axis beside channels makes those positions channels (space-to-
    # depth, patch merging): each unit left reads the block it absorbed, as after pixel_unshuffle
    for j in range(len(new)):
        ps = new[j]
        if not pc.has_channels(ps):
            continue
        dims = [pc.classify(q, sizes) for q in new]
        for a in sorted({p.axis for p in ps if p.axis >= 0}):
            order = pc.axis_pieces(dims, sizes, a)
            if order is None or pc.has_batch(ps):
                return None
            inside = frozenset(p for p in ps if p.axis == a)
            if set(order) <= inside:
                continue  # the whole axis (a head's flatten(1)): the Linear after it is the global op
            env, base = pc.mix_envelope(order, set(inside)), pc.rebase(order, {p: 0 for p in inside})
            if env is None or base is None:
                return None
            window, size, step = base
            geo[a] = geo[a].apply(env, sizes[a]).apply(window, size)
            sizes[a] = size
            new = [pc.redivide(q, {a: step}, inside if k == j else frozenset()) for k, q in enumerate(new)]
            ps = new[j]
            call.info["absorbed"] = True
    dims = [pc.classify(q, sizes) for q in new]
    # (absorbed positions are channels of different RFs now: a later channel slice is not exact)
    lost = call.name if call.info.get("absorbed") else st.lost
    parts = None
    if st.parts is not None:  # the channels of a concat regrouped (a channel shuffle)
        parts, followed = pc.regrouped_parts(st.parts, dims)
        if not followed:
            lost = lost or call.name
        elif parts is None or parts.dim >= 0:
            dims = [NO_AXES if not d.axes and d.pieces else d for d in dims]
    return TensorState(tuple(dims), geo, st.exact and call.exact, parts=parts, lost=lost)


def _call_text(call: Call) -> str:
    """``x.view(-1, 10)``: the call as the source likely wrote it."""
    def show(v):
        return f"<{'x'.join(map(str, v.shape))} tensor>" if isinstance(v, torch.Tensor) else repr(v)
    args = [show(a) for a in call.args[1:]] + [f"{k}={show(v)}" for k, v in call.kwargs.items()]
    return f"x.{call.op}({', '.join(args)})"


def _perm(call: Call) -> list[int] | None:
    x = call.data
    n = x.ndim
    op = call.op
    if op == "permute":
        p = call.args[1:] if len(call.args) > 2 or not isinstance(call.args[1] if len(call.args) > 1 else None,
                                                                   (list, tuple)) else call.args[1]
        if "dims" in call.kwargs:
            p = call.kwargs["dims"]
        return [d % n for d in p]
    if op in ("transpose", "swapaxes", "swapdims", "transpose_"):
        a = call.bind(["input", "dim0", "dim1"])
        i, j = a["dim0"] % n, a["dim1"] % n
        p = list(range(n))
        p[i], p[j] = p[j], p[i]
        return p
    if op in ("t", "T", "t_"):
        return list(range(n))[::-1]
    if op in ("mT", "mH"):
        return list(range(n - 2)) + [n - 1, n - 2]
    if op in ("movedim", "moveaxis"):
        a = call.bind(["input", "source", "destination"])
        src = [s % n for s in tup(a["source"], 1)]
        dst = [d % n for d in tup(a["destination"], 1)]
        rest = [i for i in range(n) if i not in src]
        p = [None] * n
        for s, d in zip(src, dst):
            p[d] = s
        it = iter(rest)
        return [v if v is not None else next(it) for v in p]
    return None


@register_function("permute", "transpose", "swapaxes", "swapdims", "transpose_", "t", "T", "t_", "mT", "mH",
                   "movedim", "moveaxis")
def permute(call: Call) -> Result:
    p = _perm(call)
    call.info["kind"] = "reshape"
    st = call.state
    res = call.with_dims([st.dims[i] for i in p])
    if st.parts is not None:  # (split over dims, -1, the pieces travel with the dims)
        res.parts = st.parts if st.parts.dim < 0 else Parts(p.index(st.parts.dim), st.parts.bounds, st.parts.geos)
    res.lost = st.lost
    return res


@register_function("expand", "expand_as", "broadcast_to")
def expand(call: Call) -> Result:
    st, out = call.state, call.out
    pad = out.ndim - len(st.dims)
    return call.with_dims([NO_AXES] * pad + list(st.dims))


@register_function("repeat", "tile")
def repeat(call: Call) -> Result:
    st, x, out = call.state, call.data, call.out
    pad = out.ndim - x.ndim
    dims = [NO_AXES] * pad + list(st.dims)
    call.info["kind"] = "reshape"
    for j, d in enumerate(dims):
        if d.axes and j >= pad and x.shape[j - pad] > 1 and out.shape[j] != x.shape[j - pad]:
            call.note("tiling a spatial dim is not modelled", exact=False)
    return call.with_dims(dims)


@register_function("cat", "concat", "concatenate")
def cat(call: Call) -> Result:
    a = call.bind(["tensors", "dim"], dim=0)
    out = call.out
    d = a["dim"] % out.ndim
    call.info["kind"] = "merge"
    carriers = [st for st in call.inputs if st.dims[d].axes]
    if not carriers:
        st = call.merge(out, parts=False)
        st.parts = _cat_parts(call, a["tensors"], d)
        st.lost = next((s.lost for s in call.inputs if s.lost), None)
        return st
    if len(carriers) == 1 and carriers[0].dims[d].kind == FLAT:
        # tokens with constant ones beside them (a class or distillation token): every token of
        # the input keeps its RF, the added ones read no input; a flattened dim holds no order
        # rfcheck follows, so nothing shifts
        st = call.merge(out)
        return TensorState(tuple(carriers[0].dims), st.geo, st.exact)
    return call.unknown_result("concatenation along a spatial dim has no rule")


def _cat_parts(call: Call, tensors, d: int) -> Optional[Parts]:
    """Which channels of a concat (along a dim without spatial axes) come from which input."""
    states = {id(t): st for t, st in zip(call.tracked, call.inputs)}
    pieces = []
    for t in tensors:
        st = states.get(id(t))
        if st is None:
            pieces.append((t.shape[d], {}))  # a constant (a parameter, zeros): reads no input
        elif st.parts is not None and st.parts.dim == d:
            pieces += [(hi - lo, g) for lo, hi, g in zip(st.parts.bounds, st.parts.bounds[1:], st.parts.geos)]
        else:
            pieces.append((t.shape[d], st.geo))
    return Parts.build(d, pieces)


@register_function("stack")
def stack(call: Call) -> Result:
    a = call.bind(["tensors", "dim"], dim=0)
    out = call.out
    d = a["dim"] % out.ndim
    call.info["kind"] = "merge"
    states = []
    for st in call.inputs:
        dims = list(st.dims)
        dims.insert(d, NO_AXES)
        states.append(TensorState(tuple(dims), st.geo, st.exact))
    saved = call.inputs
    call.inputs = states
    try:
        fake = [torch.empty(out.shape, device="meta")] * len(states)
        saved_t = call.tracked
        call.tracked = fake
        return call.merge(out)
    finally:
        call.inputs = saved
        call.tracked = saved_t


@register_function("split", "chunk", "tensor_split", "unbind", "split_with_sizes", "unsafe_split")
def split(call: Call) -> Result:
    x = call.data
    a = call.bind(["input", "dim"] if call.op == "unbind" else ["input", "arg", "dim"], dim=0)
    d = a["dim"] % x.ndim
    st = call.state
    dim = st.dims[d]
    call.info["kind"] = "split"
    results = []
    offset = 0
    for out in call.outputs:
        if call.op == "unbind":
            dims = [dd for j, dd in enumerate(st.dims) if j != d]
            if dim.axes:
                call.note("unbind along a spatial dim selects single positions", exact=True)
                results.append(call.with_dims(dims))
            else:
                results.append(select_channels(call, st, call.with_dims(dims), d, None, offset, offset + 1, 1))
            offset += 1
            continue
        if dim.kind == SPATIAL:
            results.append(call.window({d: crop(offset)}, out=out))
        elif dim.axes and (dim.kind == MIXED or _all_mixed(st, dim)):
            results.append(call.with_dims(st.dims))  # every entry sees the same (a token MLP's hidden layer)
        elif dim.axes:
            results.append(call.unknown_result("split along a flattened spatial dim has no rule")[0])
        else:
            results.append(select_channels(call, st, call.with_dims(st.dims), d, d, offset, offset + out.shape[d],
                                           1))
        offset += out.shape[d]
    return results


@register_function("narrow")
def narrow(call: Call) -> Result:
    a = call.bind(["input", "dim", "start", "length"])
    x, st = call.data, call.state
    d = a["dim"] % x.ndim
    start = a["start"] % x.shape[d] if isinstance(a["start"], int) else int(a["start"])
    call.info["kind"] = "slice"
    dim = st.dims[d]
    if dim.kind == SPATIAL:
        return call.window({d: crop(start)})
    if dim.axes and (dim.kind == MIXED or _all_mixed(st, dim)):
        return call.with_dims(st.dims)
    if dim.axes:
        return call.unknown_result("narrow along a flattened spatial dim has no rule")
    return select_channels(call, st, call.with_dims(st.dims), d, d, start, start + a["length"], 1)



def _all_mixed(st: TensorState, d: Dim) -> bool:
    """Every unit along the dim's axes sees the same input (after attention or token mixing),
    so which positions a slice keeps changes nothing."""
    return all(st.geo[ax].env.period == 1 and st.geo[ax].env.shift == 0 for ax in d.axes)

@register_function("__getitem__")
def getitem(call: Call) -> Result:
    x, idx = call.args[0], call.args[1]
    if not isinstance(idx, tuple):
        idx = (idx,)
    st = call.state
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis and not isinstance(i, bool))
    chosen = None  # (input dim, output dim or None if dropped, start, stop, step) of a channel selection
    dims: list[Dim] = []
    windows = {}
    j = 0  # input dim
    call.info["kind"] = "slice"
    for i in idx:
        if i is Ellipsis:
            k = x.ndim - n_real
            dims.extend(st.dims[j:j + k])
            j += k
        elif i is None:
            dims.append(NO_AXES)
        elif isinstance(i, slice):
            d = st.dims[j]
            start, stop, step = i.indices(x.shape[j])
            if not d.axes and (start, stop, step) != (0, x.shape[j], 1):
                chosen = (j, len(dims), start, stop, step)
            if d.kind == SPATIAL and (start, stop, step) != (0, x.shape[j], 1):
                windows[len(dims)] = crop(start, step)  # (also a crop [:n]: the map loses units)
            elif d.axes and (start, stop, step) != (0, x.shape[j], 1) and not _all_mixed(st, d):
                call.note("slicing a flattened spatial dim is not modelled", exact=False, code="RF105")
            dims.append(d)
            j += 1
        elif isinstance(i, int) and not isinstance(i, bool):
            d = st.dims[j]
            if d.kind == SPATIAL:
                call.note("indexing picks one position of a spatial axis")
            elif d.axes and not _all_mixed(st, d):
                call.note("indexing a dim that holds part of a spatial axis is not modelled", exact=False,
                          code="RF105")
            elif not d.axes:
                c = i % x.shape[j]
                chosen = (j, None, c, c + 1, 1)
            j += 1
        else:
            return call.unknown_result("advanced (tensor) indexing has no rule")
    dims.extend(st.dims[j:])
    tmp = TensorState(tuple(dims), dict(st.geo), st.exact, parts=st.parts, lost=st.lost)
    if st.parts is not None and (chosen is None or chosen[0] != st.parts.dim):
        tmp = replace(tmp, parts=None, lost=st.lost or call.name)  # indexing moved the channel dim
        if chosen is None and len(dims) == len(st.dims):
            tmp = replace(tmp, parts=st.parts, lost=st.lost)
    if chosen is not None:
        tmp = select_channels(call, st, tmp, *chosen)
    if windows:
        return call.window(windows, state=tmp)
    return tmp


def select_channels(call: Call, st: TensorState, res: TensorState, j: int, j_out: Optional[int], start: int,
                    stop: int, step: int) -> TensorState:
    """A slice of a dim without spatial axes (channels): with channel provenance, the geometry
    of just the kept channels; without it, homogeneous channels keep theirs, and channels
    whose provenance was lost make the slice not exact."""
    if st.parts is not None and st.parts.dim < 0:  # channels a view split over several dims
        kept = pc.sliced_parts(st.parts, st.dims, j, start, stop, step)
        if kept is None:
            call.note("a slice of channels that a view split over several dims in a way rfcheck cannot follow: the "
                      "RF shown is the union of all of them, an upper bound", exact=False, code="RF104")
            return replace(res, exact=False, parts=None)
        geo = call.union_geo(kept, res.dims)
        return replace(res, geo=dict(geo), parts=None, lost=call.name)  # (exact as a whole; per channel no more)
    if st.parts is not None and st.parts.dim == j:
        if step == 1:
            parts, kept = st.parts.sliced(start, stop, j_out)
        else:
            pieces = st.parts.select(start, stop, step)
            parts, kept = Parts.build(j_out, pieces), [g for _, g in pieces]
        if j_out is None:
            parts = None
        geo = call.union_geo(kept, res.dims)  # (a shuffle alternates a few geometries)
        return replace(res, geo=dict(geo), parts=parts, lost=None if parts is None else st.lost)
    if st.lost and j != 0:
        call.note(f"channels with different RFs were merged at {st.lost} by an op that does not mix them, so "
                  "which ones this slice keeps is not known: the RF shown is their union, an upper bound",
                  exact=False, code="RF104")
        return replace(res, exact=False)
    return res


for _n in POINTWISE:
    FUNCTION_RULES.setdefault(_n, pointwise)
