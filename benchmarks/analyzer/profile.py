"""Where rfcheck's time goes: cProfile of one ``analyze`` call, run when a speed target is missed
(the report then shows the own time grouped by where the code lives, and the top entries)."""
from __future__ import annotations

import cProfile
import gc
import io
import pstats
import re
import time

import torch
import torch.nn as nn

from benchmarks.analyzer.models import build_model, input_size
from benchmarks.analyzer.runner import Run, run_forked
from benchmarks.analyzer.util import log


def _origin(fname: str, func: str) -> str:
    if "/rfcheck/" in fname:
        return "rfcheck (its own Python: tracer, rules, geometry, report)"
    if "/torch/" in fname:
        return "torch Python (nn.Module call machinery, functional wrappers, meta registrations)"
    if fname == "~" and ("torch" in func or "method" in func and ("Tensor" in func or "conv" in func)):
        return "torch C++ calls (meta kernels, tensor methods)"
    if fname == "~":
        return "other built-ins (isinstance, tuple/dict ops, ...)"
    if "/torchvision/" in fname:
        return "torchvision (the model's forward)"
    return "stdlib (fractions, dataclasses, ...) and others"


def _top(pr: cProfile.Profile, sort: str, top: int) -> tuple[str, str]:
    """The top entries as pstats prints them (from the header line on), and its summary line."""
    s = io.StringIO()
    pstats.Stats(pr, stream=s).strip_dirs().sort_stats(sort).print_stats(top)
    text = s.getvalue()
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip().startswith("ncalls")), 0)
    m = re.search(r"([\d,]+) function calls .*? in ([\d.]+) seconds", text)
    return "\n".join(l.rstrip() for l in lines[start:] if l.strip()), (m.group(0) if m else "")


def profile_child(key: str, model: nn.Module, size, top: int = 18) -> dict:
    import rfcheck
    torch.set_num_threads(1)
    rfcheck.analyze(model, input_size=size)   # warm-up
    t0 = time.perf_counter()
    rfcheck.analyze(model, input_size=size)
    plain_s = time.perf_counter() - t0
    gc.collect()
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    rfcheck.analyze(model, input_size=size)
    pr.disable()
    res = {"wall_s": time.perf_counter() - t0, "plain_s": plain_s}
    groups: dict[str, float] = {}
    for (fname, _line, func), (_cc, _nc, tt, _ct, _callers) in pstats.Stats(pr).stats.items():
        groups[_origin(fname, func)] = groups.get(_origin(fname, func), 0.0) + tt
    total = sum(groups.values())
    res["groups"] = sorted(((g, v, v / total if total else 0.0) for g, v in groups.items()), key=lambda x: -x[1])
    res["tottime"], res["calls"] = _top(pr, "tottime", top)
    res["cumulative"], _ = _top(pr, "cumulative", top)
    return res


def profile_rfcheck(run: Run, keys: list[str]) -> None:
    for key in keys:
        model = build_model(key).eval()
        run.profiles[key] = run_forked(profile_child, (key, model, input_size(key)), 300, run.args.mem_cap_gb)
        log(f"profiled rfcheck on {key}")
        del model
