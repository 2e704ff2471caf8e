"""Judging a run: each tool's RF / jump / params / MACs against the references, the speed ratios
and the issue's targets.  Verdicts: right / wrong / crashed / timeout / memory / unsupported /
no reference."""
from __future__ import annotations

import math
import statistics
from typing import Optional

from benchmarks.analyzer.models import DEPTHS, HAND, TV, input_size
from benchmarks.analyzer.peers import TOOLS
from benchmarks.analyzer.runner import Run
from benchmarks.analyzer.util import fmt_int, fmt_mb, fmt_num, fmt_size

Target = tuple[str, str, Optional[bool], str]   # (target, measured, met (None: partly), note)


def compare(value, ref) -> Optional[bool]:
    """True if the tool's value (a number for every axis, or a per-axis tuple) equals ref."""
    if value is None or ref is None:
        return None
    ref = tuple(float(v) for v in ref)
    if isinstance(value, (tuple, list)):
        try:
            vals = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            return False
        return len(vals) == len(ref) and all(abs(a - b) < 1e-9 for a, b in zip(vals, ref))
    try:
        return all(abs(float(value) - r) < 1e-9 for r in ref)
    except (TypeError, ValueError):
        return False


def ref_rf(run: Run, key: str) -> tuple[Optional[tuple], Optional[tuple], str]:
    """(rf, jump, source) of the reference: the gradient measurement, else the hand value."""
    r = run.refs.get(key, {})
    hand = HAND.get(key)
    if "grad_rf" in r:
        src = f"gradient ({fmt_size(r['grad_input'])}, {r['grad_s']:.0f} s)"
        if hand:
            agree = compare(r["grad_rf"], hand[0]) and compare(r["grad_jump"], hand[1])
            src += "; hand: " + ("agrees" if agree else f"{fmt_num(hand[0])} / j {fmt_num(hand[1])} DISAGREES")
        return r["grad_rf"], r["grad_jump"], src
    why = r.get("grad_error")
    if hand:
        return hand[0], hand[1], "hand" + (f" (gradient: {why})" if why else "")
    return None, None, "none" + (f" (gradient: {why})" if why else f" (rfcheck RF > {run.args.grad_max_rf}: "
                                                                     "not measured)")


def _failure(tool: str, res: dict) -> tuple[str, str]:
    if "unsupported" in res:
        return "unsupported", f"unsupported: {res['unsupported']}"
    if not TOOLS[tool].has_rf:
        return ("crashed", f"crashed: {res.get('error')}") if "values" not in res else ("unsupported", "no RF")
    err = res.get("error", "?")
    kind = "timeout" if "timeout" in err else ("memory" if "memory cap" in err else "crashed")
    return kind, (f"crashed: {err}" if kind == "crashed" and not err.startswith("crashed") else err)


def verdict(run: Run, key: str, tool: str) -> tuple[str, str]:
    """(verdict, cell text) of a tool's RF and jump on a model."""
    res = run.results[key].get(tool)
    if res is None:
        return "not run", "not run"
    if "values" not in res or "unsupported" in res or not TOOLS[tool].has_rf:
        return _failure(tool, res)
    v = res["values"]
    text = fmt_num(v["rf"]) + (f" / j {fmt_num(v['jump'])}" if v["jump"] is not None else "")
    rf, jump, _ = ref_rf(run, key)
    if rf is None:
        base = run.results[key].get("rfcheck", {}).get("values")
        if tool == "rfcheck" or base is None:
            return "no reference", text + " (no reference)"
        same = compare(v["rf"], base["rf"])
        return "no reference", text + (" (= rfcheck; no reference)" if same else " (!= rfcheck; no reference)")
    ok_rf = compare(v["rf"], rf)
    ok_j = compare(v["jump"], jump) if v["jump"] is not None else None
    if ok_rf and ok_j is not False:
        return "right", text
    what = "+".join(w for w, bad in (("RF", not ok_rf), ("jump", ok_j is False)) if bad)
    note = ""
    if tool.startswith("receptivefield") and any(r > n for r, n in zip(rf, input_size(key)[1:])):
        note = "; reference RF > input: a gradient method sees at most the input"
    return "wrong", f"{text} WRONG ({what}{note})"


def _no_values(res: dict) -> str:
    return "unsupported" if "unsupported" in res else ("crashed" if "error" in res else "-")


def params_cell(run: Run, key: str, tool: str) -> tuple[Optional[bool], str]:
    """(right?, cell text) of a tool's parameter count; right? is None where it gives none."""
    res = run.results[key].get(tool, {})
    ref = run.refs.get(key, {}).get("params")
    if "values" not in res:
        return None, _no_values(res)
    p = res["values"]["params"]
    if p is None:
        return None, "n/a"
    ok = ref is not None and int(p) == int(ref)
    return ok, fmt_int(p) + ("" if ok else " WRONG")


def macs_cell(run: Run, key: str, tool: str) -> str:
    res = run.results[key].get(tool, {})
    ref = run.refs.get(key, {}).get("macs")
    if "values" not in res:
        return _no_values(res)
    m = res["values"]["macs"]
    if m is None:
        return "n/a"
    if not ref:
        return fmt_int(m)
    return fmt_int(m) + (" (= ref)" if m == ref else f" (x {m / ref:.3f})")


def time_of(run: Run, key: str, tool: str) -> Optional[float]:
    res = run.results.get(key, {}).get(tool, {})
    return res.get("median_s") if "values" in res else None


def ratios(run: Run, tool: str, keys: list[str]) -> list[float]:
    """tool time / rfcheck time on every model of ``keys`` where both ran."""
    out = []
    for k in keys:
        a, b = time_of(run, k, tool), time_of(run, k, "rfcheck")
        if a and b:
            out.append(a / b)
    return out


def tv_keys(run: Run) -> list[str]:
    return [k for k in run.models if k in TV]


def _correct_target(run: Run) -> Target:
    v = [(k, verdict(run, k, "rfcheck")[0]) for k in run.models]
    bad = [f"{k}: {x}" for k, x in v if x not in ("right", "no reference")]
    unref = [k for k, x in v if x == "no reference"]
    return ("rfcheck correct on every model (RF + jump vs reference)",
            f"{sum(x == 'right' for _, x in v)} right, {len(bad)} not right, {len(unref)} without reference", not bad,
            (("not right: " + "; ".join(bad) + ". ") if bad else "") + (f"no reference: {', '.join(unref)}" if unref
                                                                        else ""))


def _speed_targets(run: Run) -> list[Target]:
    rows = []
    for tool, goal in (("torchscan", 10), ("torchinfo", 5)):
        r = ratios(run, tool, tv_keys(run))
        if r and tool in run.tools:
            med = statistics.median(r)
            rows.append((f">= {goal}x faster than {tool} at 224 (median over the torchvision set)",
                         f"{med:.2f}x (min {min(r):.2f}x, max {max(r):.2f}x, {len(r)} models)", med >= goal,
                         f"short by {goal / med:.1f}x" if med < goal else ""))
    return rows


def _scale_targets(run: Run) -> list[Target]:
    if "resnet50@2048" not in run.models or "torchscan" not in run.tools:
        return []
    rows = []
    name = ">= 100x faster than torchscan at 2048 on resnet50"
    a, b = time_of(run, "resnet50@2048", "torchscan"), time_of(run, "resnet50@2048", "rfcheck")
    ts = run.results["resnet50@2048"].get("torchscan", {})
    if a and b:
        rows.append((name, f"{a / b:.0f}x", a / b >= 100, ""))
    elif b and ts.get("killed"):
        cap = run.args.scale_timeout
        rows.append((name, f"torchscan {ts.get('error')}: > {cap / b:.0f}x", cap / b >= 100, ""))
    m224 = run.results.get("resnet50", {}).get("rfcheck", {}).get("peak_mb")
    m2048 = run.results["resnet50@2048"].get("rfcheck", {}).get("peak_mb")
    if m224 is not None and m2048 is not None:
        rows.append(("rfcheck peak memory at 2048 no higher than at 224 (resnet50)",
                     f"{fmt_mb(m2048)} at 2048 vs {fmt_mb(m224)} at 224", m2048 <= m224 + 1.0,
                     "(1 MB tolerance: page granularity)"))
    return rows


def _depth_target(run: Run) -> list[Target]:
    pts = [(d, run.depth[d].get("mean_s"), run.depth[d].get("gc_off_mean_s")) for d in DEPTHS
           if run.depth.get(d, {}).get("mean_s")]
    if len(pts) < 2:
        return []
    (d0, t0, o0), (d1, t1, o1) = (pts[-3] if len(pts) >= 3 else pts[0]), pts[-1]
    k = math.log(t1 / t0) / math.log(d1 / d0)
    ko = math.log(o1 / o0) / math.log(d1 / d0) if o0 and o1 else float("nan")
    met: Optional[bool] = k <= 1.15
    if not met and ko <= 1.15:
        met = None   # partly: rfcheck's own work is linear, the garbage collector's share is not
    return [("cost linear in depth (rfcheck, plain conv stacks)",
             ", ".join(f"{d}: {t * 1000 / d:.2f}" for d, t, _ in pts) + " ms/layer (mean of 5 calls); gc off: "
             + ", ".join(f"{d}: {o * 1000 / d:.2f}" for d, _, o in pts if o) + " ms/layer",
             met, f"time ~ depth^{k:.2f} from {d0} to {d1} layers, depth^{ko:.2f} with the garbage collector off "
                  "(1: linear, 2: quadratic; met if <= 1.15); see the depth sweep")]


def targets(run: Run) -> list[Target]:
    """The issue's targets, each with what this run measured."""
    return [_correct_target(run)] + _speed_targets(run) + _scale_targets(run) + _depth_target(run)


def profile_targets(run: Run) -> list[str]:
    """Models to profile rfcheck on: some, only when a speed target is missed."""
    if not any(t[2] is False and "faster" in t[0] for t in targets(run)):
        return []
    ran = [k for k in run.models if "values" in run.results[k].get("rfcheck", {})]
    return [k for k in ("resnet50", "densenet121", "plain1000") if k in ran] or ran[:1]
