"""The shortcuts that replace PyTorch's meta kernels must give exactly PyTorch's output (shape,
strides, dtype) whenever they answer, and must not answer when PyTorch would raise."""
from __future__ import annotations

import operator

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rfcheck import fastmeta

META = "meta"


def _same(fast: torch.Tensor, real: torch.Tensor) -> None:
    assert fast.device.type == "meta"
    assert tuple(fast.shape) == tuple(real.shape)
    assert fast.stride() == real.stride()
    assert fast.dtype == real.dtype


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's cost note for the real conv
@settings(max_examples=150, deadline=None)
@given(n=st.sampled_from([1, 2, 3]), batch=st.integers(1, 2), cin_g=st.integers(1, 3), cout_g=st.integers(1, 3),
       groups=st.integers(1, 3), data=st.data())
def test_conv_matches_pytorch_or_declines(n, batch, cin_g, cout_g, groups, data):
    sizes = [data.draw(st.integers(1, 9)) for _ in range(n)]
    k = [data.draw(st.integers(1, 4)) for _ in range(n)]
    stride = data.draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * n)))
    padding = data.draw(st.one_of(st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * n), st.just("valid"),
                                  st.just("same")))
    dilation = data.draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * n)))
    wrong_channels = data.draw(st.booleans())
    bias = data.draw(st.sampled_from([None, "ok", "wrong"]))
    cin = cin_g * groups + (1 if wrong_channels else 0)
    x = torch.empty(batch, cin, *sizes, device=META)
    w = torch.empty(cout_g * groups, cin_g, *k, device=META)
    b = None if bias is None else torch.empty(cout_g * groups + (bias == "wrong"), device=META)
    conv = getattr(torch, f"conv{n}d")
    args = (x, w, b, stride, padding, dilation, groups)
    fast = fastmeta.conv(f"conv{n}d", args, {})
    try:
        real = conv(*args)
    except RuntimeError:
        assert fast is None
        return
    if fast is not None:
        _same(fast, real)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_conv_declines_what_it_cannot_decide(fmt):
    x = torch.empty(1, 4, 8, 8, device=META).contiguous(memory_format=fmt)
    w = torch.empty(4, 4, 3, 3, device=META)
    out = fastmeta.conv("conv2d", (x, w), {"padding": 1})
    if fmt is torch.channels_last:
        assert out is None                    # PyTorch picks the output layout: let it
    else:
        _same(out, torch.conv2d(x, w, padding=1))
    assert fastmeta.conv("conv2d", (x.half(), w), {}) is None                 # dtype mismatch: PyTorch raises
    assert fastmeta.conv("conv2d", (x[0], w), {}) is None                     # unbatched input


SHAPES = st.lists(st.integers(1, 4), min_size=0, max_size=4)


@settings(max_examples=200, deadline=None)
@given(a=SHAPES, b=SHAPES, op=st.sampled_from(["add", "sub", "mul", "div", "__add__", "__radd__", "__mul__",
                                                 "__rmul__", "__sub__", "__rsub__", "__truediv__", "__iadd__",
                                                 "__imul__", "add_", "mul_"]),
       ones=st.lists(st.booleans(), min_size=4, max_size=4), scalar=st.sampled_from([None, 2, 0.5, True]),
       dtypes=st.sampled_from([(torch.float32, torch.float32), (torch.float32, torch.float16),
                               (torch.int64, torch.int64), (torch.float64, torch.float64)]))
def test_binary_matches_pytorch_or_declines(a, b, op, ones, scalar, dtypes):
    # make broadcasting likely: some of b's trailing dims copy a's or are 1
    b = [(1 if one else a[-len(b) + i]) if i >= len(b) - len(a) and a else d for i, (d, one) in
         enumerate(zip(b, ones))]
    x = torch.empty(a, device=META, dtype=dtypes[0])
    y = scalar if scalar is not None else torch.empty(b, device=META, dtype=dtypes[1])
    fn = getattr(torch.Tensor, op)
    inplace = op.startswith("__i") or (op.endswith("_") and not op.endswith("__"))
    fast = fastmeta.binary(op, (x, y), {})
    try:
        real = fn(x.clone() if inplace else x, y)
    except RuntimeError:
        assert fast is None
        return
    if fast is not None:
        _same(fast, real)
        if inplace:
            assert fast is x                     # in place: PyTorch returns its input


def test_binary_declines_a_non_contiguous_input():
    x = torch.empty(1, 4, 8, 8, device=META).contiguous(memory_format=torch.channels_last)
    assert fastmeta.binary("add", (x, x), {}) is None
    y = torch.empty(1, 4, 8, 8, device=META)
    _same(fastmeta.binary("add", (y, y), {"alpha": 2}), torch.add(y, y, alpha=2))
    assert fastmeta.binary("add", (y, y), {"out": y}) is None


def test_like_keeps_strides():
    x = torch.empty(2, 3, 5, 7, device=META).contiguous(memory_format=torch.channels_last)
    _same(fastmeta.like(x), torch.empty_like(x))
    assert operator.is_not(fastmeta.like(x), x)


def _check(fast, real_fn):
    try:
        real = real_fn()
    except (RuntimeError, ValueError, IndexError, TypeError):
        assert fast is None
        return
    if fast is not None:
        _same(fast, real)


@settings(max_examples=200, deadline=None)
@given(n=st.sampled_from([1, 2, 3]), kind=st.sampled_from(["max", "avg"]), data=st.data())
def test_pool_matches_pytorch_or_declines(n, kind, data):
    import torch.nn.functional as F
    sizes = [data.draw(st.integers(1, 9)) for _ in range(n)]
    x = torch.empty(2, 3, *sizes, device=META)
    k = data.draw(st.one_of(st.integers(1, 4), st.tuples(*[st.integers(1, 4)] * n)))
    stride = data.draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * n)))
    padding = data.draw(st.one_of(st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * n)))
    ceil = data.draw(st.booleans())
    name = f"{kind}_pool{n}d"
    fn = getattr(F, name)
    if kind == "max":
        dilation = data.draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * n)))
        kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "ceil_mode": ceil,
                  "return_indices": False}
        _check(fastmeta.pool(name, (x, k), kwargs), lambda: fn(x, k, **kwargs))
    else:
        args = (x, k, stride, padding, ceil, True) + ((None,) if n > 1 else ())
        _check(fastmeta.pool(name, args, {}), lambda: fn(*args))


@settings(max_examples=100, deadline=None)
@given(n=st.sampled_from([1, 2, 3]), data=st.data())
def test_adaptive_avg_pool_matches_pytorch_or_declines(n, data):
    import torch.nn.functional as F
    x = torch.empty(2, 3, *[data.draw(st.integers(1, 9)) for _ in range(n)], device=META)
    size = data.draw(st.one_of(st.integers(0, 5), st.tuples(*[st.one_of(st.none(), st.integers(0, 5))] * n)))
    name = f"adaptive_avg_pool{n}d"
    _check(fastmeta.adaptive_avg(name, (x, size), {}), lambda: getattr(F, name)(x, size))


@settings(max_examples=100, deadline=None)
@given(lead=st.lists(st.integers(1, 3), max_size=3), fin=st.integers(1, 5), fout=st.integers(1, 5),
       wrong=st.booleans(), bias=st.sampled_from([None, "ok", "wrong"]))
def test_linear_matches_pytorch_or_declines(lead, fin, fout, wrong, bias):
    x = torch.empty(*lead, fin + wrong, device=META)
    w = torch.empty(fout, fin, device=META)
    b = None if bias is None else torch.empty(fout + (bias == "wrong"), device=META)
    _check(fastmeta.linear("linear", (x, w, b), {}), lambda: torch.nn.functional.linear(x, w, b))


@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       dims=st.one_of(st.integers(-5, 4), st.lists(st.integers(-5, 4), min_size=1, max_size=3)),
       keep=st.booleans())
def test_mean_matches_pytorch_or_declines(shape, dims, keep):
    x = torch.empty(shape, device=META)
    _check(fastmeta.mean("mean", (x, dims), {"keepdim": keep}), lambda: x.mean(dims, keepdim=keep))


@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), dim=st.integers(-5, 4),
       extra=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), max_size=3), half=st.booleans())
def test_cat_matches_pytorch_or_declines(shape, dim, extra, half):
    ts = [torch.empty(shape, device=META)]
    for where, size in extra:
        s = list(shape)
        s[where % len(s)] = size
        ts.append(torch.empty(s, device=META, dtype=torch.float16 if half and where == 0 else torch.float32))
    _check(fastmeta.cat("cat", (ts, dim), {}), lambda: torch.cat(ts, dim))


def _layout(shape: list, layout: str, seed: int) -> torch.Tensor:
    """A meta tensor of ``shape``: contiguous, a permuted view (ConvNeXt's channels-last blocks),
    an expanded view (overlapping) or a strided slice."""
    import random
    rng = random.Random(seed)
    if layout == "permuted":
        perm = list(range(len(shape)))
        rng.shuffle(perm)
        base = torch.empty([shape[p] for p in perm], device=META)
        return base.permute([perm.index(i) for i in range(len(shape))])
    if layout == "expanded":
        return torch.empty([1] + shape[1:], device=META).expand(shape)
    if layout == "sliced":
        return torch.empty(shape[:-1] + [2 * shape[-1]], device=META)[..., ::2]
    return torch.empty(shape, device=META)


@settings(max_examples=300, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), k=st.integers(1, 3),
       wshift=st.sampled_from([None, 0, 1]), bshift=st.sampled_from([None, 0, 1]),
       layout=st.sampled_from(["contiguous", "permuted", "expanded", "sliced"]), seed=st.integers(0, 99))
def test_layer_norm_matches_pytorch_or_declines(shape, k, wshift, bshift, layout, seed):
    x = _layout(shape, layout, seed)
    ns = tuple(shape[-k:]) if k <= len(shape) else tuple(shape) + (1,)
    def param(shift):
        return None if shift is None else torch.empty(ns[:-1] + (ns[-1] + shift,), device=META)
    w, b = param(wshift), param(bshift)
    _check(fastmeta.layer_norm("layer_norm", (x, ns, w, b), {}),
           lambda: torch.nn.functional.layer_norm(x, ns, w, b))


@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=2, max_size=4), groups=st.integers(1, 4),
       wshift=st.sampled_from([None, 0, 1]))
def test_group_norm_matches_pytorch_or_declines(shape, groups, wshift):
    x = torch.empty(shape, device=META)
    w = None if wshift is None else torch.empty(shape[1] + wshift, device=META)
    _check(fastmeta.group_norm("group_norm", (x, groups, w, w), {}),
           lambda: torch.nn.functional.group_norm(x, groups, w, w))


def test_analyze_restores_the_garbage_collector_state():
    import gc

    from rfcheck import analyze
    from rfcheck.errors import RFCheckError
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    assert gc.isenabled()
    analyze(model, (3, 8, 8))
    assert gc.isenabled()
    with pytest.raises(RFCheckError):
        analyze(model, (3, 2, 2))                     # input too small: the error path
    assert gc.isenabled()
    gc.disable()
    try:
        analyze(model, (3, 8, 8))
        assert not gc.isenabled()                     # a caller's choice is kept
    finally:
        gc.enable()
