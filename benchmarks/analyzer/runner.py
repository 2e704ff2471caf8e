"""Timing and memory: every (tool, model) pair runs in its own process, forked from a parent that
has imported torch, torchvision and every tool and has called each tool once on tiny 1D/2D/3D
models (so import and lazy-import costs are paid once and are not in the numbers; cold starts
are what benchmarks/overhead.py measures).  The model is built in the parent before the fork and
put in eval mode.

In the child: torch.set_num_threads(1) for every tool (fairness: the peers' real forward passes
would profit from more threads, rfcheck's tracing would not) and torch.set_flush_denormal(True)
(ptflops feeds uninitialized memory to the model; with denormal leftovers in it, its repeated
calls ran up to 60x slower than its first one); the kernel's peak RSS counter is reset
(/proc/self/clear_refs; else ru_maxrss), one warm-up call is made (its peak RSS over the RSS
before it is the "peak memory" figure), then ``--repeats`` timed calls (fewer when a call is
slow) and their median is the time.  Each pair below the scale runs gets up to ``--rounds``
rounds, the tools interleaved, each a fresh process, and keeps its fastest round: this VM's CPU
speed swings by up to ~1.5x between periods of a few seconds.  A pair that runs past
``--timeout`` (scale runs: ``--scale-timeout``) or above ``--mem-cap-gb`` of RSS is killed and
reported as such.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import io
import multiprocessing as mp
import os
import re
import resource
import signal
import statistics
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn as nn

from benchmarks.analyzer.models import DEPTHS, SCALE, build_model, input_size, plain, tiny_model
from benchmarks.analyzer.peers import TOOLS, Unsupported
from benchmarks.analyzer.reference import reference_child
from benchmarks.analyzer.util import fmt_int, fmt_mb, fmt_num, fmt_s, fmt_size, log, short_error
from benchmarks.procmem import proc_status_kb, reset_peak


@dataclass
class Run:
    """Everything one benchmark run measured; the report reads only this."""
    args: argparse.Namespace
    tools: list[str]
    models: list[str]
    repeats: int
    started: datetime.datetime
    warm: dict[str, dict] = field(default_factory=dict)
    results: dict[str, dict[str, dict]] = field(default_factory=dict)   # model -> tool -> child result
    refs: dict[str, dict] = field(default_factory=dict)                 # model -> reference_child result
    depth: dict[int, dict] = field(default_factory=dict)
    profiles: dict[str, dict] = field(default_factory=dict)
    elapsed: float = 0.0


# -- children (run in forked processes) -------------------------------------------------------

def _call_quietly(call: Callable[[], Any], read: Callable[[Any], dict]) -> dict:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read(call())


def tool_child(tool: str, model: nn.Module, size, repeats: int, repeat_budget_s: float) -> dict:
    """One tool on one model: values, peak memory of the first call, median of the timed calls."""
    torch.set_num_threads(1)
    # ptflops feeds its model torch.ones(()).new_empty(...): uninitialized memory, which after the
    # first call holds leftovers of freed tensors, denormal floats among them; x86 arithmetic on
    # denormals is slow (vgg16: 0.3 s for the first ptflops call, 19 s for the next ones).  Flush
    # them to zero, for every tool.
    torch.set_flush_denormal(True)
    adapter = TOOLS[tool].adapter
    try:
        call, read = adapter(model, size)
    except Unsupported as e:
        return {"unsupported": str(e)}
    # Fault in, in this process, the code pages and first-call caches a call needs (a forked
    # child shares the parent's file-backed pages but maps them again on first touch, which
    # would otherwise count as the call's memory): one call on a tiny model of the same kind.
    nd = len(size) - 1
    with contextlib.suppress(Exception):   # e.g. rf_calc cannot parse AdaptiveAvgPool2d
        _call_quietly(*adapter(tiny_model(nd), (3,) + (16 if nd < 3 else 8,) * nd))
    gc.collect()
    have_peak = reset_peak()
    rss0 = proc_status_kb("VmRSS")
    ru0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    try:
        out = call()
        first = time.perf_counter() - t0
        peak_kb = (proc_status_kb("VmHWM") - rss0) if have_peak else \
            (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - ru0)
        values = read(out)
    except Exception as e:  # noqa: BLE001 - a tool's failure is a result
        return {"error": short_error(e), "where": traceback.format_exc(limit=-3)[-600:]}
    del out
    n = max(0, min(repeats, int(repeat_budget_s // max(first, 1e-9))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return {"values": values, "first_s": first, "times_s": times,
            "median_s": statistics.median(times) if times else first,
            "mean_s": statistics.fmean(times) if times else first, "peak_mb": max(0, peak_kb) / 1024,
            "peak_method": "VmHWM after clear_refs" if have_peak else "ru_maxrss delta",
            "threads": torch.get_num_threads()}


def depth_child(depth: int, calls: int, gc_off: bool) -> dict:
    """rfcheck on a plain stack: mean and median of ``calls`` calls after a warm-up, the time the
    cyclic garbage collector took during them, or with the collector disabled."""
    import rfcheck
    torch.set_num_threads(1)
    model = plain(depth).eval()
    gc_s, n_full, t_start = [0.0], [0], [0.0]

    def cb(phase, info):
        if phase == "start":
            t_start[0] = time.perf_counter()
        else:
            gc_s[0] += time.perf_counter() - t_start[0]
            n_full[0] += info.get("generation") == 2
    r = rfcheck.analyze(model, input_size=(8, 64, 64))
    gc.collect()
    gc.callbacks.append(cb)
    if gc_off:
        gc.disable()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        rfcheck.analyze(model, input_size=(8, 64, 64))
        times.append(time.perf_counter() - t0)
    gc.callbacks.remove(cb)
    return {"rf": tuple(int(v) for v in r.rf.size), "mean_s": statistics.fmean(times),
            "median_s": statistics.median(times), "gc_s": gc_s[0] / calls, "full_gc": n_full[0] / calls,
            "objects": len(gc.get_objects())}


# -- forking ------------------------------------------------------------------------------------

def _child_entry(conn, fn, args):
    try:
        res = fn(*args)
    except BaseException as e:  # noqa: BLE001
        res = {"error": short_error(e), "where": traceback.format_exc()[-800:]}
    try:
        conn.send(res)
    finally:
        conn.close()
    os._exit(0)


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            m = re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M)
            return int(m.group(1)) if m else 0
    except OSError:
        return 0


try:
    _LIBC = ctypes.CDLL("libc.so.6")
    _LIBC.malloc_trim  # noqa: B018 - glibc only
except (OSError, AttributeError):
    _LIBC = None


def _trim_heap() -> None:
    """Give the parent's freed heap back to the OS before a fork (glibc keeps it after a big model
    such as vgg16 is dropped): a child that reuses those pages pays a copy-on-write fault on
    each, which made rfcheck's calls on later models up to 2x slower in the children than in a
    fresh process (densenet121: 43 ms vs 22 ms)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def run_forked(fn: Callable[..., dict], args: tuple, timeout: float, mem_cap_gb: float) -> dict:
    """Run fn(*args) in a forked child; kill it past ``timeout`` seconds or ``mem_cap_gb`` RSS."""
    ctx = mp.get_context("fork")
    _trim_heap()
    r, w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child_entry, args=(w, fn, args), daemon=True)
    t0 = time.perf_counter()
    p.start()
    w.close()
    max_rss = 0
    try:
        while True:
            if r.poll(0.05):
                try:
                    res = r.recv()
                except EOFError:
                    res = None
                p.join(10)
                if res is None:
                    return {"error": f"child died (exit code {p.exitcode})"}
                res["wall_s"] = time.perf_counter() - t0
                return res
            if not p.is_alive():
                p.join()
                why = " (SIGKILL: out of memory?)" if p.exitcode == -signal.SIGKILL else ""
                return {"error": f"crashed: child exited with code {p.exitcode}{why}"}
            max_rss = max(max_rss, _rss_kb(p.pid))
            over_mem = max_rss > mem_cap_gb * 1024 * 1024
            if over_mem or time.perf_counter() - t0 > timeout:
                p.kill()
                p.join()
                if over_mem:
                    return {"error": f"memory cap: RSS above {mem_cap_gb:g} GiB", "killed": "memory",
                            "max_rss_mb": max_rss / 1024}
                return {"error": f"timeout > {timeout:g} s", "killed": "timeout", "max_rss_mb": max_rss / 1024}
    finally:
        r.close()


# -- the parent's side ----------------------------------------------------------------------------

def warm_tools(tools: list[str]) -> dict[str, dict]:
    """Import every tool and call it on tiny 1D/2D/3D models in the parent (lazy imports and
    first-call caches are then inherited by every forked child).  Returns import and cold
    first-call times, or why a tool is missing."""
    info = {}
    torch.set_num_threads(1)
    for t in tools:
        t0 = time.perf_counter()
        d: dict[str, Any] = {}
        try:
            __import__(TOOLS[t].module)
            d["import_s"] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001
            info[t] = {"missing": short_error(e)}
            continue
        for nd, sz in ((2, (3, 16, 16)), (1, (3, 32)), (3, (3, 8, 8, 8))):
            try:
                call, read = TOOLS[t].adapter(tiny_model(nd), sz)
                t0 = time.perf_counter()
                _call_quietly(call, read)
                if nd == 2:
                    d["cold_s"] = time.perf_counter() - t0
            except Exception as e:  # noqa: BLE001
                if nd == 2:
                    d["cold_error"] = short_error(e)
        info[t] = d
    return info


_SMALLER = {"resnet50@1024": "resnet50", "resnet50@2048": "resnet50@1024"}


def _skip_scale(run: Run, key: str, tool: str, timeout: float) -> Optional[dict]:
    """A timeout result for a scale run the smaller size says cannot finish in time (a forward
    pass costs ~ pixels), else None."""
    prev = _SMALLER.get(key)
    pr = run.results.get(prev, {}).get(tool, {}) if prev else {}
    if "first_s" in pr:
        size, psize = input_size(key), input_size(prev)
        est = pr["first_s"] * (size[1] * size[2]) / (psize[1] * psize[2])
        if est > 0.9 * timeout:
            return {"error": f"timeout (skipped: ~{est:.0f} s per call extrapolated from {prev} x pixels > "
                             f"{timeout:g} s)", "killed": "timeout"}
    if pr.get("killed") == "timeout":
        return {"error": f"timeout (skipped: timed out at {prev})", "killed": "timeout"}
    return None


def _describe(res: dict) -> str:
    if "values" in res:
        v = res["values"]
        return (f"rf {fmt_num(v['rf'])} jump {fmt_num(v['jump'])} params {fmt_int(v['params'])} "
                f"macs {fmt_int(v['macs'])}; {fmt_s(res['median_s'])} (n={len(res['times_s'])}), "
                f"peak {fmt_mb(res['peak_mb'])}")
    return f"unsupported: {res['unsupported']}" if "unsupported" in res else res.get("error", "?")


def _first_round(run: Run, key: str, model: nn.Module, timeout: float) -> dict[str, dict]:
    a = run.args
    row: dict[str, dict] = {}
    run.results[key] = row
    repeats = run.repeats if key not in SCALE else min(run.repeats, 2)
    for tool in run.tools:
        res = _skip_scale(run, key, tool, timeout)
        if res is None:
            res = run_forked(tool_child, (tool, model, input_size(key), repeats, a.repeat_budget), timeout,
                             a.mem_cap_gb)
            if "values" in res:
                res["round_medians_s"] = [res["median_s"]]
        row[tool] = res
        log(f"  {tool}: {_describe(res)}")
    return row


def _more_rounds(run: Run, key: str, model: nn.Module, row: dict[str, dict], timeout: float) -> None:
    """More rounds, the tools interleaved again, each in a fresh process; each tool's cell is its
    fastest round (every tool alike; the round medians are kept in the JSON)."""
    a = run.args
    for rnd in range(2, (a.rounds if key not in SCALE else 1) + 1):
        for tool in run.tools:
            first = row.get(tool, {})
            if "values" not in first or first["median_s"] * (len(first["times_s"]) + 1) > a.round_budget:
                continue
            res = run_forked(tool_child, (tool, model, input_size(key), run.repeats, a.repeat_budget), timeout,
                             a.mem_cap_gb)
            if "values" not in res:
                continue
            res["round_medians_s"] = first["round_medians_s"] + [res["median_s"]]
            if res["median_s"] < first["median_s"]:
                res["peak_mb"] = first["peak_mb"]  # (memory: the first round's, as for every pair)
                row[tool] = res
            else:
                first["round_medians_s"] = res["round_medians_s"]
        log(f"  round {rnd}: " + ", ".join(f"{t} {fmt_s(row[t]['median_s'])}" for t in run.tools
                                            if "values" in row.get(t, {})))


def _reference(run: Run, key: str, model: nn.Module) -> dict:
    """params, MACs, and the gradient RF where rfcheck's RF is small enough to measure."""
    a = run.args
    rv = run.results[key].get("rfcheck", {}).get("values")
    hint_rf = hint_jump = None
    if rv and not a.no_gradient and key not in SCALE and max(rv["rf"]) <= a.grad_max_rf:
        hint_rf, hint_jump = rv["rf"], rv["jump"]
    ref = run_forked(reference_child, (key, model, input_size(key), hint_rf, hint_jump, a.grad_cap, a.ref_threads),
                     a.grad_cap + 60, a.mem_cap_gb)
    grad = fmt_num(ref["grad_rf"]) if "grad_rf" in ref else ref.get("grad_error", ref.get("error", "not run"))
    log(f"  reference: params {fmt_int(ref.get('params'))} macs {fmt_int(ref.get('macs'))} grad {grad}"
        + (f" jump {fmt_num(ref['grad_jump'])}" if "grad_jump" in ref else "")
        + (f" ({ref['grad_s']:.1f} s on {fmt_size(ref['grad_input'])})" if "grad_s" in ref else ""))
    return ref


def measure_model(run: Run, key: str) -> None:
    """Every tool on one model (rounds interleaved), then its references, into ``run``."""
    log(f"{key} {input_size(key)}: building")
    model = build_model(key).eval()
    timeout = run.args.scale_timeout if key in SCALE else run.args.timeout
    row = _first_round(run, key, model, timeout)
    _more_rounds(run, key, model, row, timeout)
    run.refs[key] = _reference(run, key, model)
    del model
    gc.collect()


def depth_sweep(run: Run) -> None:
    """rfcheck alone on plain stacks of DEPTHS convs, with the garbage collector on and off, in
    ``--rounds`` rounds over every depth in turn; each depth keeps its fastest round (of the
    5-call mean, on and off alike): this VM's speed swings by up to 1.5x within seconds, and a
    sweep timed once per depth made the depth exponent swing between 0.8 and 1.3."""
    a = run.args
    for r in range(max(a.rounds, 1)):
        for d in DEPTHS:
            res = run_forked(depth_child, (d, 5, False), a.scale_timeout, a.mem_cap_gb)
            off = run_forked(depth_child, (d, 5, True), a.scale_timeout, a.mem_cap_gb)
            best = run.depth.get(d)
            offs = [v for v in (off.get("mean_s"), (best or {}).get("gc_off_mean_s")) if v is not None]
            if best is None or ("mean_s" in res and res["mean_s"] < best.get("mean_s", float("inf"))):
                run.depth[d] = best = res
            best["gc_off_mean_s"] = min(offs) if offs else None
            best["rounds"] = r + 1
            log(f"depth {d}, round {r + 1}: mean {fmt_s(res.get('mean_s'))}, median {fmt_s(res.get('median_s'))}, "
                f"gc {fmt_s(res.get('gc_s'))}/call; gc off: {fmt_s(off.get('mean_s'))} {res.get('error', '')}")
