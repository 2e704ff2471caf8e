"""Wall time (and peak RSS increase) of rfcheck against the peer tools, side by side.

For every (model, tool) pair a fresh Python process (``--worker``) imports torch and the tool,
builds the model, makes one warm-up call (not in the median), then times ``--repeats`` calls and
reports their median.  The calls timed are:

* rfcheck:               ``rfcheck.analyze(model, input_size=size)``  (traces on the meta device)
* torchinfo:             ``torchinfo.summary(model, input_size=(1, *size), verbose=0, device="cpu")``
* torchscan:             ``torchscan.crawl_module(model, size, device="cpu")``  (what
                         ``torchscan.summary`` runs before it formats its table)
* torch_receptive_field: ``receptive_field(model, size, device="cpu")``, if it is installed

torchinfo and torchscan run a real forward pass on CPU tensors; rfcheck does not.  Workers use
``--threads`` torch threads (default 1).  On a 2-core VM shared with other work, two intra-op
threads made the peers' calls 10-50x slower whenever another process was running (resnet18 at
224: torchinfo 33 ms on a quiet machine, 950 ms under load), so the default is one thread;
with two idle cores, the peers' compute-bound cases (large inputs) would be up to ~2x faster.

Cold start: before anything else (before the model is built, since importing torchvision does
some of the same lazy imports), the worker calls the tool once on a small model (conv, BN,
ReLU, max pool, dropout, global pool, linear) and times that call on its own (lazy imports:
on the meta device torch imports sympy at the first op and ~400 more modules at the first
BatchNorm, for instance).  It is reported once per tool under the table, not mixed into the
model timings.

Peak RSS increase: then the worker resets the kernel's peak-RSS counter
(``/proc/self/clear_refs``), notes VmRSS, makes the first (warm-up) call on the real model and
reports VmHWM - VmRSS: the extra resident memory that call needed (later calls reuse memory
the allocator kept, so their peak over the then-current RSS would understate the need).

The whole (model, tool) matrix runs ``--rounds`` times (default 2) and each pair keeps its
best round (smallest median): the machine is shared, and a burst of load from other work then
spoils one round of a pair, not its result.  Pairs whose rounds differ by more than 1.5x are
marked ``*`` with the round medians under the table.

Rounds after the first are skipped when they would end past ``--budget`` seconds (default 270).
A pair whose worker exceeds ``--timeout`` seconds is killed and reported as a timeout; a worker
whose first call is slow runs fewer repeats so as to stay inside the timeout (the cell says how
many).  Ratios are peer median / rfcheck median (above 1: rfcheck is faster).

    python benchmarks/speed.py                 # 5 repeats x 2 rounds, all models (2-4 min on 2 cores)
    python benchmarks/speed.py --repeats 9
    python benchmarks/speed.py --quick         # 1 repeat, small models only (smoke test)
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import warnings

from procmem import proc_status_kb, reset_peak

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK = "@@SPEED@@"

# name -> (input size (C, H, W), description); builders are in build_model().
MODELS = {
    "net": ((3, 32, 32), "models/net.py Net"),
    "resnet18": ((3, 224, 224), "torchvision resnet18"),
    "resnet50": ((3, 224, 224), "torchvision resnet50"),
    "plain1000": ((8, 64, 64), "1000 x (Conv2d(8,8,3,p=1) + ReLU)"),
    "resnet18_1024": ((3, 1024, 1024), "torchvision resnet18"),
}
QUICK_MODELS = ("net", "resnet18")
TOOLS = ("rfcheck", "torchinfo", "torchscan", "torch_receptive_field")
IMPORTS = {"rfcheck": "rfcheck", "torchinfo": "torchinfo", "torchscan": "torchscan",
           "torch_receptive_field": "torch_receptive_field"}


# --------------------------------------------------------------------------------------------
# Worker: one (tool, model) pair in its own process.
# --------------------------------------------------------------------------------------------


def build_model(name: str):
    import torch.nn as nn
    if name == "net":
        spec = importlib.util.spec_from_file_location("bench_net", os.path.join(ROOT, "models", "net.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.Net()
    if name in ("resnet18", "resnet18_1024"):
        import torchvision
        return torchvision.models.resnet18(weights=None)
    if name == "resnet50":
        import torchvision
        return torchvision.models.resnet50(weights=None)
    if name == "plain1000":
        return nn.Sequential(*[m for _ in range(1000) for m in (nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())])
    raise KeyError(name)


def tool_call(tool: str, model, size):
    if tool == "rfcheck":
        import rfcheck
        return lambda: rfcheck.analyze(model, input_size=size)
    if tool == "torchinfo":
        import torchinfo
        return lambda: torchinfo.summary(model, input_size=(1,) + tuple(size), verbose=0, device="cpu")
    if tool == "torchscan":
        import torchscan
        return lambda: torchscan.crawl_module(model, size, device="cpu")
    if tool == "torch_receptive_field":
        from torch_receptive_field import receptive_field
        return lambda: receptive_field(model, size, device="cpu")
    raise KeyError(tool)


def worker(tool: str, model_name: str, repeats: int, budget_s: float, threads: int) -> dict:
    t_start = time.perf_counter()
    sys.path.insert(0, ROOT)
    warnings.simplefilter("ignore")
    import torch
    torch.set_num_threads(threads)
    size = MODELS[model_name][0]
    sink = io.StringIO()
    # Cold start: the tool's first call in a process pays for lazy imports (on the meta device
    # torch imports sympy at the first op and ~400 more modules at the first BatchNorm, for
    # instance).  Pay it on a small model with the common layer types, timed on its own, so that
    # neither the timings nor the memory figure of the real model include it.
    nn = torch.nn
    small = nn.Sequential(nn.Conv2d(size[0], 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Dropout(0.1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    tiny = tool_call(tool, small, (size[0], 16, 16))
    with contextlib.redirect_stdout(sink):
        t0 = time.perf_counter()
        tiny()
        cold = time.perf_counter() - t0
    # Built only now: importing torchvision would do some of those lazy imports itself.
    model = build_model(model_name)
    call = tool_call(tool, model, size)
    have_peak = reset_peak()
    rss0 = proc_status_kb("VmRSS")
    with contextlib.redirect_stdout(sink):
        t0 = time.perf_counter()
        call()  # warm-up: first-call caches for this model
        first = time.perf_counter() - t0
    # Peak during the first call: later calls reuse memory the allocator kept, so their
    # peak over the then-current RSS understates what a call needs.
    peak = proc_status_kb("VmHWM") if have_peak else None
    # Stay inside the parent's timeout: a slow tool gets fewer repeats.
    left = 0.8 * budget_s - (time.perf_counter() - t_start)
    n = max(1, min(repeats, int(left // max(first, 1e-9))))
    times = []
    with contextlib.redirect_stdout(sink):
        for _ in range(n):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    return {"cold_tiny_s": cold, "first_s": first, "times_s": times, "median_s": statistics.median(times),
            "rss_increase_mb": None if peak is None else max(0, peak - rss0) / 1024,
            "threads": torch.get_num_threads()}


# --------------------------------------------------------------------------------------------
# Parent: run the workers, print the table.
# --------------------------------------------------------------------------------------------


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_pair(tool: str, model_name: str, repeats: int, timeout: float, threads: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", tool, model_name,
           "--repeats", str(repeats), "--timeout", str(timeout), "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout > {timeout:g} s"}
    wall = time.perf_counter() - t0
    for line in p.stdout.splitlines():
        if line.startswith(MARK):
            out = json.loads(line[len(MARK):])
            out["worker_wall_s"] = wall
            return out
    last = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
    m = re.match(r"^(\w+(?:\.\w+)*(?:Error|Exception|Interrupt|Exit))\b", last)
    return {"error": f"error: {m.group(1) if m else 'exit ' + str(p.returncode)}", "detail": last[:200]}


def fmt_s(v: float) -> str:
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed calls per (model, tool) after one warm-up (default 5; 1 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="1 repeat (unless --repeats), only " + " and ".join(QUICK_MODELS) + " (smoke test)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="run the whole matrix this many times and keep each pair's best round "
                         "(default 2; 1 with --quick)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads in each worker (default 1: on a small shared VM, "
                         "2 threads on 2 cores slow down 10-50x whenever another process runs)")
    ap.add_argument("--budget", type=float, default=270.0,
                    help="seconds: rounds after the first start only if they should end within it")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per (model, tool) worker")
    ap.add_argument("--models", default=None, help="comma-separated subset of " + ",".join(MODELS))
    ap.add_argument("--worker", nargs=2, metavar=("TOOL", "MODEL"), help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help="also write the raw results to this file")
    args = ap.parse_args(argv)

    if args.worker:
        res = worker(args.worker[0], args.worker[1], args.repeats or 5, args.timeout, args.threads)
        print(MARK + json.dumps(res), flush=True)
        return 0

    repeats = args.repeats or (1 if args.quick else 5)
    n_rounds = args.rounds or (1 if args.quick else 2)
    models = list(QUICK_MODELS) if args.quick else list(MODELS)
    if args.models:
        models = [m.strip() for m in args.models.split(",")]
    tools = list(TOOLS)
    present = {t: installed(IMPORTS[t]) for t in tools}

    t_all = time.perf_counter()
    load0 = loadavg()
    # rounds[m][t] = one worker result per round.  Rounds run the whole matrix again, so a burst
    # of load from other work on this shared machine hits one round of a pair, not all of them.
    rounds: dict[str, dict[str, list[dict]]] = {m: {t: [] for t in tools} for m in models}
    threads = None
    skipped_rounds = 0
    for k in range(n_rounds):
        elapsed = time.perf_counter() - t_all
        if k and elapsed * (k + 1) / k > args.budget:
            skipped_rounds = n_rounds - k
            print(f"[speed] {elapsed:.0f} s spent: skipping {skipped_rounds} round(s) to stay within "
                  f"--budget {args.budget:g} s", file=sys.stderr, flush=True)
            break
        for m in models:
            for t in tools:
                if not present[t]:
                    continue
                r = run_pair(t, m, repeats, args.timeout, args.threads)
                rounds[m][t].append(r)
                threads = r.get("threads", threads)
                msg = r.get("error") or f"median {fmt_s(r['median_s'])} over {len(r['times_s'])}"
                print(f"[speed] round {k + 1} {m} {t}: {msg}", file=sys.stderr, flush=True)
    total = time.perf_counter() - t_all
    load1 = loadavg()

    # Per pair: the round with the smallest median (the least disturbed one).
    results: dict[str, dict[str, dict]] = {}
    notes = []
    for m in models:
        results[m] = {}
        for t in tools:
            if not present[t]:
                results[m][t] = {"error": "not installed"}
                continue
            ok = [r for r in rounds[m][t] if "error" not in r]
            if not ok:
                results[m][t] = rounds[m][t][0]
                continue
            best = dict(min(ok, key=lambda r: r["median_s"]))
            meds = [r["median_s"] for r in ok]
            failed = [r["error"] for r in rounds[m][t] if "error" in r]
            if max(meds) > 1.5 * min(meds) or failed:
                best["noisy"] = True
                notes.append(f"{MODELS[m][1]} {'x'.join(map(str, MODELS[m][0]))} / {t}: round medians "
                             + ", ".join(fmt_s(v) for v in meds) + (f"; failed rounds: {', '.join(failed)}"
                                                                    if failed else ""))
            results[m][t] = best

    shown = [t for t in tools if present[t]]
    header = ["model", "input"] + [f"{t} median" for t in shown] + [f"{t} peak RSS +" for t in shown]
    done = n_rounds - skipped_rounds
    print(f"Median wall time of {repeats} call(s) after one warm-up call, in a fresh process per "
          f"(model, tool), best of {done} round(s); (x N) = peer / rfcheck; peak RSS + = extra "
          f"resident memory during the first call on the model; torch threads: {threads}.")
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for m in models:
        size, desc = MODELS[m]
        base = results[m].get("rfcheck", {}).get("median_s")
        row = [desc, "x".join(map(str, size))]
        for t in shown:
            r = results[m][t]
            if "error" in r:
                row.append(r["error"])
                continue
            cell = fmt_s(r["median_s"])
            if len(r["times_s"]) != repeats:
                cell += f" (n={len(r['times_s'])})"
            if t != "rfcheck" and base:
                cell += f" (x {r['median_s'] / base:.1f})"
            if r.get("noisy"):
                cell += " *"
            row.append(cell)
        for t in shown:
            r = results[m][t]
            mb = r.get("rss_increase_mb")
            row.append("-" if "error" in r else ("n/a" if mb is None else f"{mb:.0f} MB"))
        print("| " + " | ".join(row) + " |")
    print()
    for n in notes:
        print(f"- * rounds disagreed by more than 1.5x (load from other work?): {n}.")
    for t in tools:
        if not present[t]:
            print(f"- {t}: not installed (`pip install torch-receptive-field --no-deps` found no "
                  "distribution on this machine's package index)." if t == "torch_receptive_field"
                  else f"- {t}: not installed.")
    colds = []
    for t in shown:
        v = [r["cold_tiny_s"] for m in models for r in rounds[m][t] if "cold_tiny_s" in r]
        if v:
            colds.append(f"{t} {fmt_s(statistics.median(v))}")
    print("- cold start, not in the table: the first call in a fresh process, on an 8-layer model "
          "(lazy imports; median over the workers): " + ", ".join(colds) + ".")
    if skipped_rounds:
        print(f"- {skipped_rounds} of {n_rounds} rounds skipped to stay within --budget {args.budget:g} s.")
    print(f"- total benchmark wall time: {total:.0f} s; load average (1 min) {load0} at the start, "
          f"{load1} at the end; Python {platform.python_version()}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"repeats": repeats, "rounds": n_rounds - skipped_rounds, "threads": args.threads,
                       "models": models, "results": results,
                       "all_rounds": rounds, "total_s": total}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
