"""The tools compared, one adapter each, registered in TOOLS.

An adapter takes the model and its input size (C, *spatial) and returns ``(call, read)``:
``call()`` makes the tool's call (the part that is timed) and ``read(result)`` turns its result
into ``values(rf, jump, at, params, macs)`` (None where the tool gives nothing).  It raises
:class:`Unsupported` for inputs the tool cannot take.  Each adapter's docstring says how its
numbers are read.  The RF of a model is its RF at the input of the global pool that feeds the
head, or at the model output when there is none.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
import torch.nn as nn

from benchmarks.analyzer.trunk import Trunk

Size = tuple[int, ...]
Adapter = Callable[[nn.Module, Size], tuple[Callable[[], Any], Callable[[Any], dict]]]


class Unsupported(Exception):
    """The tool cannot take this kind of model or input (e.g. a 2D-only tool on a Conv1d)."""


def values(rf=None, jump=None, at: Optional[str] = None, params: Optional[int] = None,
           macs: Optional[int] = None) -> dict:
    return {"rf": rf, "jump": jump, "at": at, "params": params, "macs": macs}


@contextlib.contextmanager
def _quiet(sink: Optional[io.StringIO] = None, stderr: bool = False):
    """No warnings; with ``sink``, stdout (and with ``stderr``, stderr) goes into it: several
    peers print while they run."""
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        warnings.simplefilter("ignore")
        if sink is not None:
            stack.enter_context(contextlib.redirect_stdout(sink))
            if stderr:
                stack.enter_context(contextlib.redirect_stderr(sink))
        yield


def _need_2d(size: Size, why: str) -> None:
    if len(size) != 3:
        raise Unsupported(why)


def rfcheck(model: nn.Module, size: Size):
    """``analyze(model, input_size=size)``: ``rf.size`` (per axis), ``rf.jump``, ``rf.at``,
    ``params.total``, ``macs``."""
    import rfcheck as rc

    def read(r):
        return values(tuple(int(v) for v in r.rf.size), tuple(float(j) for j in r.rf.jump), r.rf.at,
                      int(r.params.total), int(r.macs))
    return (lambda: rc.analyze(model, input_size=size)), read


def torchscan(model: nn.Module, size: Size):
    """torchscan 0.2.0: ``crawl_module(model, size, device="cpu")``.  It reports only each module
    call's own kernel / stride (its "Receptive field" column is the layer's own kernel size); the
    RF and jump shown are those values chained in call order with torchscan 0.1.x's own formula
    (``rf += j*(k - 1); j *= s``, first spatial axis only), read at the last module call whose
    output still has spatial extent (> 1 unit).  Params: ``totals.parameters``; MACs:
    ``totals.macs`` (its module formulas, which also count norm, activation and pooling layers)."""
    import torchscan as ts

    def call():
        with _quiet():
            return ts.crawl_module(model, size, device="cpu")

    def read(report):
        rf, j, last = 1.0, 1.0, None
        for layer in report["layers"]:              # call order
            k = layer["metrics"].get("receptive_field")
            st = layer["metrics"].get("effective_stride")
            if k is None or st is None or k["status"] != "complete" or st["status"] != "complete":
                continue
            rf += j * (k["value"] - 1)
            j *= st["value"]
            shape = (layer.get("output") or {}).get("shape")
            if shape is not None and len(shape) >= 3 and math.prod(shape[2:]) > 1:
                last = (rf, j, layer["path"] or layer["name"])
        rf, j, at = last if last is not None else (rf, j, None)
        tot = report["totals"]
        macs = tot["macs"]["value"] if tot["macs"]["status"] == "complete" else tot["macs"]["known_value"]
        return values(rf, j, at, int(tot["parameters"]["value"]), None if macs is None else int(macs))
    return call, read


def torchinfo(model: nn.Module, size: Size):
    """torchinfo 1.8.0: ``summary(model, input_size=(1, *size), verbose=0, device="cpu")``: no RF;
    ``total_params``, ``total_mult_adds``."""
    import torchinfo as ti

    def read(stats):
        return values(params=int(stats.total_params), macs=int(stats.total_mult_adds))
    return (lambda: ti.summary(model, input_size=(1,) + tuple(size), verbose=0, device="cpu")), read


def rf_calc(model: nn.Module, size: Size):
    """rf_calc 0.0.7: ``receptive_field(model, H)`` (a square input of side H; it parses the
    module repr for " Conv2d", " MaxPoo" and " AdaptiveAvgPool2d" in repr order and prints a
    pandas markdown table, captured): the RF is the "Receptive_field" cell of the last row that
    is not an AdaptiveAvgPool2d row.  No jump, params or MACs.  2D only."""
    _need_2d(size, "2D only (parses ' Conv2d' / ' MaxPoo' from the repr, square int input)")
    import rf_calc as rc
    sink = io.StringIO()

    def call():
        with _quiet(sink):
            return rc.receptive_field(model, size[1]), rc.model_df(model)

    def read(res):
        df, labels = res
        rows = list(labels.layers)
        idx = [i for i, lab in enumerate(rows) if not lab.startswith(" AdaptiveAvgPool2d")]
        if not idx:
            raise ValueError("no Conv2d / MaxPool2d row in its table")
        cell = str(df["Receptive_field"].iloc[idx[-1]])
        return values(int(cell.split("*")[0]), at=f"row {idx[-1]}: {rows[idx[-1]].strip()[:40]}")
    return call, read


def _receptivefield(wrapper: Trunk, size: Size):
    from receptivefield.pytorch import PytorchReceptiveField
    from receptivefield.types import ImageShape
    logging.getLogger().setLevel(logging.WARNING)   # it configures the root logger at INFO
    sink = io.StringIO()

    def call():
        with _quiet(sink):
            return PytorchReceptiveField(lambda: wrapper).compute(input_shape=ImageShape(w=size[2], h=size[1], c=size[0]))

    def read(desc):
        d = desc[0].rf
        rf = (float(d.size.h), float(d.size.w))
        return values(tuple(int(v) if v == v else v for v in rf), (float(d.stride[1]), float(d.stride[0])),
                      "feature_maps[0]")
    return call, read


def receptivefield(model: nn.Module, size: Size):
    """receptivefield 0.5.0: ``PytorchReceptiveField(model_fn).compute(ImageShape(w=W, h=H, c=C))``
    where ``model_fn`` returns a wrapper that runs the model and stores ``self.feature_maps =
    [the input of the global pool]`` (trunk.py).  RF = ``rf.size``, jump = ``rf.stride``, read
    as documented (``w``/``x`` = width = W axis, ``h``/``y`` = height = H axis).  2D only.  It
    backpropagates from a feature-map unit of the real model fed zeros."""
    _need_2d(size, "2D only (GridShape n, w, h, c)")
    return _receptivefield(Trunk(model), size)


def receptivefield_readme(model: nn.Module, size: Size):
    """The same call on a copy of the model prepared as receptivefield's README advises for RF
    estimation (:func:`readme_prep`; the preparation is not timed)."""
    _need_2d(size, "2D only (GridShape n, w, h, c)")
    return _receptivefield(Trunk(readme_prep(model), how="readme"), size)


def readme_prep(model: nn.Module) -> nn.Module:
    """receptivefield's README: "it is suggested to use Linear (instead Relu) activation and
    AvgPool2D instead of MaxPool2D ... one may even initialize network with constant positive
    values in all weights ... and set biases to zero".  A float32 copy with every weight tensor
    (2 dims or more) set to the constant 1/fan-in, biases 0, norm scales 1, batch-norm running
    stats 0 / 1; the activations and max pools are swapped at run time (trunk.GlobalPoolInput
    "readme")."""
    m = copy.deepcopy(model).float().eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.ndim >= 2:
                p.fill_(1.0 / max(1, p[0].numel()))
            elif name.rsplit(".", 1)[-1] == "weight":
                p.fill_(1.0)
            else:
                p.zero_()
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.running_mean is not None:
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
    for mod in m.modules():
        if hasattr(mod, "inplace"):
            mod.inplace = False
    return m


def fvcore(model: nn.Module, size: Size):
    """fvcore: ``FlopCountAnalysis(model, x).total()`` (its "flops" are MACs for conv and linear)
    and ``parameter_count(model)[""]``.  No RF."""
    from fvcore.nn import FlopCountAnalysis, parameter_count
    x = torch.randn((1,) + tuple(size))

    def call():
        with _quiet():
            f = FlopCountAnalysis(model, (x,)).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return f.total(), parameter_count(model)[""]

    def read(res):
        return values(params=int(res[1]), macs=int(res[0]))
    return call, read


def ptflops(model: nn.Module, size: Size):
    """ptflops 0.7.5: ``get_model_complexity_info(model, size, as_strings=False,
    print_per_layer_stat=False)`` (default pytorch backend): MACs and params.  No RF."""
    from ptflops import get_model_complexity_info
    sink = io.StringIO()

    def call():
        with _quiet(sink, stderr=True):
            return get_model_complexity_info(model, tuple(size), as_strings=False, print_per_layer_stat=False,
                                             verbose=False, ost=sink)

    def read(res):
        macs, params = res
        if macs is None:
            tail = [l for l in sink.getvalue().splitlines() if l.strip()][-1:] or ["(no message)"]
            raise RuntimeError(f"ptflops returned None: {tail[0][:100]}")
        return values(params=int(params), macs=int(macs))
    return call, read


@dataclass(frozen=True)
class Tool:
    adapter: Adapter
    dist: str          # the distribution whose version the report gives
    module: str        # imported (and warmed up) in the parent before the forks
    has_rf: bool       # reports a receptive field (judged against the reference)
    counts: bool       # reports params and MACs
    marker: str        # in the plot


TOOLS: dict[str, Tool] = {
    "rfcheck": Tool(rfcheck, "rfcheck", "rfcheck", True, True, "o"),
    "torchscan": Tool(torchscan, "torchscan", "torchscan", True, True, "s"),
    "torchinfo": Tool(torchinfo, "torchinfo", "torchinfo", False, True, "^"),
    "rf_calc": Tool(rf_calc, "rf-calc", "rf_calc", True, False, "v"),
    "receptivefield": Tool(receptivefield, "receptivefield", "receptivefield.pytorch", True, False, "D"),
    "receptivefield_readme": Tool(receptivefield_readme, "receptivefield", "receptivefield.pytorch", True, False, "d"),
    "fvcore": Tool(fvcore, "fvcore", "fvcore.nn", False, True, "P"),
    "ptflops": Tool(ptflops, "ptflops", "ptflops", False, True, "X"),
}

NOT_INSTALLABLE = {
    "rfa-toolbox": "pip: no matching distribution on this machine's package index",
    "torch-receptive-field": "pip: no matching distribution on this machine's package index",
}
