"""The references every tool is judged against, measured in a child process per model.

* RF and jump: the gradient reference of tests/reference.py (``ReferenceChain`` on its positive
  float64 copy: positive weights, zero biases, batch norm removed, max pools as positive
  averaging windows), fed ones on an input large enough that the measured units are clear of
  the border, from units at the centre of the global pool's input.  While it runs, functional
  max pools are run as average pools over the same window, clamping activations (ReLU6 /
  hardtanh) as identity (pointwise: the dependency set is unchanged, but a saturated clamp has
  zero gradient), and the output of every global pool inside the trunk (squeeze-and-excitation
  gating) is detached, so the reference measures the convolutional path, as every tool does
  (trunk.py).  Run for models whose rfcheck RF is <= --grad-max-rf on every axis, with a
  --grad-cap seconds cap; one forward pass (batch 1), one backward pass per measured unit.
  Where it is not run or does not finish, the hand derivations of models.HAND are the
  reference; models with neither are marked "no reference" and a tool's value is only
  compared with rfcheck's.
* Params: ``sum(p.numel() for p in model.parameters())`` (unique tensors, shared ones once).
* MACs: convolution, transposed convolution, linear and matmul multiply-accumulates per sample,
  counted by PyTorch's own ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) on a meta
  copy of the model.
"""
from __future__ import annotations

import copy
import math
import signal
import time
from typing import Any, Optional, Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.analyzer.trunk import Trunk
from benchmarks.analyzer.util import short_error
from tests.reference import ReferenceChain
from tests.reference import size as box_size


def _macs(model: nn.Module, size: Sequence[int]) -> int:
    meta = copy.deepcopy(model).to("meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        meta(torch.empty((1,) + tuple(size), device="meta"))
    return fc.get_total_flops() // 2


def _on_alarm(signum, frame):
    raise TimeoutError("gradient measurement ran past its cap")


def _gradient_input(size: Sequence[int], hint_rf: Sequence[int], jumps: Sequence[int], window: int) -> list[int]:
    """Spatial input size per axis: at least the benchmark's, and room for ``window`` units plus a
    margin around a box as large as rfcheck's RF, rounded up to a multiple of the jump."""
    spatial = []
    for a in range(len(size) - 1):
        s = max(size[1 + a], hint_rf[a] + (window + 3) * jumps[a])
        spatial.append(int(math.ceil(s / jumps[a]) * jumps[a]))
    return spatial


def _measure_boxes(model: nn.Module, channels: int, spatial: list[int], window: int) -> list:
    """The input boxes of ``window`` consecutive units (on the diagonal) at the centre of the
    global pool's input."""
    trunk = Trunk(model, how="reference")
    with torch.no_grad():
        probe = Trunk(copy.deepcopy(model).to("meta"))
        shape = probe(torch.empty((1, channels) + tuple(spatial), device="meta")).shape[2:]
    centre = [n // 2 - window // 2 for n in shape]
    if any(c < 0 or c + window > n for c, n in zip(centre, shape)):
        raise ValueError(f"map {tuple(shape)} too small for a {window}-unit window")
    positions = [tuple(c + t for c in centre) for t in range(window)]
    # one forward (batch 1), one backward per unit (unit_boxes would run a batch of `window`)
    chain = ReferenceChain([trunk], (channels,) + tuple(spatial), batch=1)
    return [chain.boxes(0, [pos], check=False)[0] for pos in positions]


def _rf_from_boxes(boxes: list, spatial: list[int], jumps: list[int], window: int) -> dict:
    """RF (largest box) and jump (centre shift per unit) per axis, or ``grad_error``."""
    rf, jump, clipped = [], [], []
    for a in range(len(spatial)):
        bs = [b[a] for b in boxes]
        if any(b is None for b in bs):
            return {"grad_error": f"a measured unit depends on no input pixel along axis {a}"}
        rf.append(max(box_size(b) for b in bs))
        jump.append(((bs[-1][0] + bs[-1][1]) - (bs[0][0] + bs[0][1])) / 2 / (window - 1))
        if min(b[0] for b in bs) < jumps[a] or max(b[1] for b in bs) > spatial[a] - 1 - jumps[a]:
            clipped.append(a)
    if clipped:
        return {"grad_error": f"measured box within one jump of the border on axis {clipped} (clipped?)"}
    return {"grad_rf": tuple(rf), "grad_jump": tuple(jump)}


def reference_child(key: str, model: nn.Module, size: Sequence[int], hint_rf: Optional[Sequence[int]],
                    hint_jump: Optional[Sequence[float]], grad_cap_s: float, threads: int) -> dict:
    """params, MACs and, where ``hint_rf`` (rfcheck's RF, which sizes the input) is given, the
    gradient RF and jump.  Runs in a forked child (runner.run_forked)."""
    torch.set_num_threads(threads)
    out: dict[str, Any] = {"params": sum(p.numel() for p in model.parameters())}
    try:
        out["macs"] = _macs(model, size)
    except Exception as e:  # noqa: BLE001 - reported in the MAC table
        out["macs_error"] = short_error(e)
    if hint_rf is None:
        return out
    window = 4 if key in ("transposed", "net_transposed") else 2   # phases of a stride-2 transposed conv
    jumps = [max(1, math.ceil(j)) for j in hint_jump]
    spatial = _gradient_input(size, hint_rf, jumps, window)
    out["grad_input"] = tuple(spatial)
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(grad_cap_s))
    try:
        boxes = _measure_boxes(model, size[0], spatial, window)
    except Exception as e:  # noqa: BLE001 - the hand value is the reference then
        out["grad_error"] = short_error(e)
        return out
    finally:
        signal.alarm(0)
        out["grad_s"] = time.perf_counter() - t0
    out.update(_rf_from_boxes(boxes, spatial, jumps, window))
    return out
