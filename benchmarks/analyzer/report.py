"""The results file (analyzer.md: every table, the machine, the date, the versions, the command)
and the plot (analyzer_speed.png: time per model per tool, log scale).  One function per section."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import statistics

import torch

from benchmarks.analyzer.models import DEPTHS, SCALE, group, input_size
from benchmarks.analyzer.peers import NOT_INSTALLABLE, TOOLS
from benchmarks.analyzer.runner import Run
from benchmarks.analyzer.util import fmt_int, fmt_mb, fmt_num, fmt_s, fmt_size
from benchmarks.analyzer.verdicts import (
    compare,
    macs_cell,
    params_cell,
    ratios,
    ref_rf,
    targets,
    time_of,
    tv_keys,
    verdict,
)

KINDS = ["right", "wrong", "crashed", "timeout", "memory", "unsupported", "no reference"]


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except Exception:  # noqa: BLE001
        return "not installed"


def _read(path: str, pattern: str, default: str = "?") -> str:
    """The first group of ``pattern`` in a /proc file (multi-line), or ``default``."""
    try:
        with open(path) as f:
            m = re.search(pattern, f.read(), re.M)
        return m.group(1) if m else default
    except OSError:
        return default


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows] + [""]


def setup(run: Run, command: str) -> list[str]:
    a = run.args
    mem = int(_read("/proc/meminfo", r"^MemTotal:\s+(\d+)", "0")) / 1024 / 1024
    cpu = _read("/proc/cpuinfo", r"^model name\s*:\s*(.*)$")
    load = _read("/proc/loadavg", r"^(\S+)", "")
    versions = ", ".join(f"{t} {version(TOOLS[t].dist)}" for t in TOOLS if t != "receptivefield_readme")
    lines = [
        "## Setup\n",
        f"- **Command** (repository root, venv active): `{command}`",
        f"- **Date**: {run.started:%Y-%m-%d %H:%M} UTC; total run time {run.elapsed / 60:.1f} min.",
        f"- **Machine**: {platform.machine()}, `/proc/cpuinfo` model name \"{cpu}\", {os.cpu_count()} cores, "
        f"{mem:.0f} GiB RAM, Linux {platform.release()}; CPU only.",
        f"- **Software**: Python {platform.python_version()}, torch {torch.__version__}, torchvision "
        f"{version('torchvision')}; {versions}.",
        "- **Not installable here** (not run): " + "; ".join(f"{k} ({v})" for k, v in NOT_INSTALLABLE.items()) + ".",
    ]
    missing = [f"{t} ({run.warm[t]['missing']})" for t in TOOLS if "missing" in run.warm.get(t, {})]
    if missing:
        lines.append("- **Not importable in this run** (skipped): " + "; ".join(missing) + ".")
    lines += [
        f"- **Threads**: torch.set_num_threads(1) (and OMP/MKL_NUM_THREADS=1) for every tool; the untimed "
        f"gradient reference uses {a.ref_threads}.  Denormals are flushed to zero "
        "(`torch.set_flush_denormal(True)`) for every tool: ptflops runs its model on "
        "`torch.ones(()).new_empty(...)`, uninitialized memory, and without the flush its second and later "
        "calls on vgg16 took 19 s instead of 0.3 s (denormal leftovers of freed tensors).",
        f"- **Timing**: one forked process per (tool, model), model built before the fork, eval mode; one "
        f"warm-up call, then the median of up to {run.repeats} calls (fewer when a call is slow: at most "
        f"~{a.repeat_budget:g} s of repeats; `n=` in the cell; scale runs: at most 2). Up to "
        f"{a.rounds} rounds per model, the tools interleaved, each round a fresh process; a cell is the "
        f"tool's fastest round (rounds only where the first took under {a.round_budget:g} s; not for "
        f"the scale runs): this VM's CPU speed swings by up to ~1.5x between periods of a few seconds (the "
        f"same rfcheck call measured 8.5 ms and 13 ms of thread time in back-to-back processes), and every "
        f"tool gets the same chances. Before every fork the parent returns its freed heap to the OS "
        f"(`malloc_trim`): children reusing the heap a dropped vgg16 left behind paid copy-on-write faults "
        f"(rfcheck on densenet121: 43 ms instead of 22 ms). Peak memory = "
        f"peak RSS during the warm-up call minus the RSS before it (VmHWM after /proc/self/clear_refs). "
        f"Timeouts: {a.timeout:g} s per pair, {a.scale_timeout:g} s per scale-run pair; memory "
        f"cap {a.mem_cap_gb:g} GiB.",
        f"- **Load** (1-min load average at the end): {load}.\n",
    ]
    return lines


def _scale_headline(run: Run) -> list[str]:
    if "resnet50@2048" not in run.results:
        return []
    row = run.results["resnet50@2048"]
    rc = row.get("rfcheck", {})
    parts = []
    for t in run.tools:
        res = row.get(t, {})
        if t == "rfcheck":
            continue
        if "values" in res and rc.get("median_s"):
            ratio = res["median_s"] / rc["median_s"]
            rtxt = f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2f}x"
            parts.append(f"{t} {rtxt} ({fmt_s(res['median_s'])}, {fmt_mb(res['peak_mb'])})")
        else:
            parts.append(f"{t}: {res.get('error') or res.get('unsupported') or '-'}")
    m224 = run.results.get("resnet50", {}).get("rfcheck", {}).get("peak_mb")
    return [f"- **resnet50 at 2048x2048**: rfcheck {fmt_s(rc.get('median_s'))}, peak {fmt_mb(rc.get('peak_mb'))} "
            f"(at 224: {fmt_mb(m224)}); peer time / rfcheck time (peak memory): " + "; ".join(parts) + "."]


def headline(run: Run) -> list[str]:
    lines = ["## Headline\n"]
    tv = tv_keys(run)
    for tool in ("torchscan", "torchinfo"):
        r = ratios(run, tool, tv)
        if r:
            lines.append(f"- **{tool} time / rfcheck time**, median over the {len(r)} torchvision models at 224 "
                         f"(inception_v3 at 299): **{statistics.median(r):.2f}x** (range {min(r):.2f}x to "
                         f"{max(r):.2f}x).")
    for tool in ("fvcore", "ptflops", "receptivefield", "receptivefield_readme", "rf_calc"):
        r = ratios(run, tool, tv)
        if r and tool in run.tools:
            lines.append(f"- {tool} time / rfcheck time, same set: median {statistics.median(r):.2f}x over {len(r)} "
                         "models that ran.")
    lines += _scale_headline(run) + [""]
    met = {True: "yes", False: "NO", None: "partly"}
    return lines + _table(["target", "measured", "met?", "note"],
                          [[n, meas, met[ok], note] for n, meas, ok, note in targets(run)])


def verdict_summary(run: Run) -> list[str]:
    rows = []
    for t in run.tools:
        counts = dict.fromkeys(KINDS, 0)
        wrong_on, p_ok, p_n = [], 0, 0
        for key in run.models:
            v, _ = verdict(run, key, t)
            counts[v] = counts.get(v, 0) + 1
            if v in ("wrong", "crashed", "timeout", "memory"):
                wrong_on.append(f"{key} ({v})")
            ok, _ = params_cell(run, key, t)
            if ok is not None:
                p_n += 1
                p_ok += bool(ok)
        rows.append([t] + [str(counts[k]) for k in KINDS] + [f"{p_ok}/{p_n}", ", ".join(wrong_on) or "-"])
    return ["## Verdicts per tool\n",
            "RF (+ jump where the tool gives one) against the reference, over all models in this run. "
            "\"no reference\": neither a gradient measurement nor a hand derivation exists for the model.\n",
            ] + _table(["tool"] + KINDS + ["params right", "wrong on"], rows)


def rf_table(run: Run) -> list[str]:
    rf_tools = [t for t in run.tools if TOOLS[t].has_rf]
    rows = []
    for key in run.models:
        rf, jump, src = ref_rf(run, key)
        at = run.results[key].get("rfcheck", {}).get("values", {}).get("at", "-")
        rows.append([key, fmt_size(input_size(key)), f"{fmt_num(rf)} / j {fmt_num(jump)}" if rf else "-", src,
                     f"`{at}`"] + [verdict(run, key, t)[1] for t in rf_tools])
    return ["## Receptive field and jump\n",
            "Cell: RF (one number: the same on every axis, or the tool gives one number) / j jump, at the model-RF "
            "layer (rfcheck: `rf.at`; peers: see benchmarks/analyzer/peers.py).  Axes H x W (L for 1D, D x H x W "
            "for 3D).\n",
            ] + _table(["model", "input", "reference RF / jump", "reference source", "rfcheck at"] + rf_tools, rows)


def params_table(run: Run) -> list[str]:
    tools = [t for t in run.tools if TOOLS[t].counts]
    rows = [[key, fmt_int(run.refs.get(key, {}).get("params"))] + [params_cell(run, key, t)[1] for t in tools]
            for key in run.models]
    return ["## Parameters\n", "Reference: `sum(p.numel() for p in model.parameters())` (unique tensors).\n",
            ] + _table(["model", "reference"] + tools, rows)


def macs_table(run: Run) -> list[str]:
    tools = [t for t in run.tools if TOOLS[t].counts]
    rows = []
    for key in run.models:
        ref = run.refs.get(key, {})
        rows.append([key, fmt_int(ref.get("macs")) if "macs" in ref else ref.get("macs_error", "-")]
                    + [macs_cell(run, key, t) for t in tools])
    return ["## MACs per sample\n",
            "Reference: conv / transposed conv / linear / matmul multiply-accumulates, counted by "
            "`torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2) on a meta copy.  (x r) = tool / reference: "
            "torchscan, torchinfo, fvcore and ptflops also count some norm, activation and pooling work, by "
            "their own definitions; a ratio below 1 means the tool missed work (functional ops, shared modules, "
            "transposed convs...).\n",
            ] + _table(["model", "reference"] + tools, rows)


def _time_cell(run: Run, key: str, tool: str) -> str:
    res = run.results[key].get(tool, {})
    if "values" not in res:
        err = res.get("error", "-")
        return "unsupported" if "unsupported" in res else (err if "timeout" in err or "memory" in err else "crashed")
    c = fmt_s(res["median_s"])
    n = len(res["times_s"])
    if n < (run.repeats if key not in SCALE else min(run.repeats, 2)):
        c += f" (n={n})" if n else " (first call only)"
    base = time_of(run, key, "rfcheck")
    if tool != "rfcheck" and base:
        c += f" (x {res['median_s'] / base:.1f})"
    if res.get("mean_s", 0) > 1.3 * res["median_s"]:
        c += " †"
    return c


def time_table(run: Run) -> list[str]:
    rows = [[key, fmt_size(input_size(key))] + [_time_cell(run, key, t) for t in run.tools] for key in run.models]
    return ["## Wall time per call\n",
            "Median after one warm-up call, 1 torch thread; (x r) = tool / rfcheck (above 1: rfcheck is faster).\n",
            ] + _table(["model", "input"] + run.tools, rows) + [
            "† mean of the timed calls > 1.3 x their median (some calls included a full garbage collection or "
            "other outliers; the median is shown).  Cold starts (the first call in a fresh interpreter) are not "
            "in this table: benchmarks/overhead.py measures rfcheck's command line end to end.\n"]


def _memory_cell(res: dict) -> str:
    if "values" in res:
        return fmt_mb(res["peak_mb"])
    if "max_rss_mb" in res:
        return f"{res.get('killed')} (RSS reached {fmt_mb(res['max_rss_mb'])})"
    return "unsupported" if "unsupported" in res else "crashed"


def memory_table(run: Run) -> list[str]:
    rows = [[key, fmt_size(input_size(key))] + [_memory_cell(run.results[key].get(t, {})) for t in run.tools]
            for key in run.models]
    return ["## Peak memory per call\n",
            "Peak RSS during the first call on the model minus the RSS before it, in the forked process "
            "(the model itself is not counted).\n",
            ] + _table(["model", "input"] + run.tools, rows)


def depth_table(run: Run) -> list[str]:
    if not run.depth:
        return []
    rows = []
    for d in DEPTHS:
        res = run.depth[d]
        if "mean_s" not in res:
            rows.append([str(d), str(res.get("error"))] + ["-"] * 6)
            continue
        off = res.get("gc_off_mean_s")
        ok = compare(res["rf"], (1 + 2 * d,) * 2)
        rows.append([str(d), fmt_s(res["mean_s"]), fmt_s(res["median_s"]), f"{res['mean_s'] * 1000 / d:.3f} ms",
                     f"{fmt_s(res['gc_s'])} ({res['full_gc']:.1f})", fmt_s(off),
                     f"{(off * 1000 / d) if off else float('nan'):.3f} ms", fmt_num(res["rf"]) + ("" if ok else " WRONG")])
    objects = max(r.get("objects", 0) for r in run.depth.values()) // 1000
    return ["## Depth sweep (rfcheck only)\n",
            "Plain stacks of Conv2d(8, 8, 3, padding=1) on 8x64x64, in a forked process; 5 calls after a "
            f"warm-up; {max(r.get('rounds', 1) for r in run.depth.values())} round(s) over every depth in turn, "
            "each depth keeping its fastest round (the mean of its 5 calls; gc on and off alike).  The mean includes Python's cyclic garbage collector: a full (generation 2) collection "
            f"walks every object of the process (~{objects}k here: torch, torchvision and the peers are imported) "
            "and runs once per ~25% growth of the long-lived objects, so with few calls the *median* jumps "
            "when a collection starts to fall inside most calls; the mean (amortized) is the cost.  "
            "\"gc off\": the same 5 calls in a second process with `gc.disable()`.\n",
            ] + _table(["depth", "mean", "median", "per layer (mean)", "GC per call (full collections)",
                        "mean, gc off", "per layer, gc off", "RF (hand: 1 + 2 x depth)"], rows)


def failures(run: Run) -> list[str]:
    errs = []
    for key in run.models:
        for t in run.tools:
            res = run.results[key].get(t, {})
            if "error" in res and "values" not in res:
                errs.append(f"- {key} / {t}: {res['error']}")
        if run.refs.get(key, {}).get("error"):
            errs.append(f"- {key} / reference: {run.refs[key]['error']}")
    return ["## Failures (exception type and message)\n"] + errs + [""] if errs else []


def profiles(run: Run) -> list[str]:
    if not run.profiles:
        return []
    lines = ["## Where rfcheck's time goes (cProfile)\n",
             "One `rfcheck.analyze` call after a warm-up call, in a forked process, 1 thread; own (exclusive) time "
             "grouped by where the code lives, then the top entries.  cProfile's overhead inflates the many small "
             "Python calls, so the shares are indicative.\n"]
    for key, p in run.profiles.items():
        if "error" in p:
            lines.append(f"- {key}: {p['error']}")
            continue
        lines += [f"### {key} ({fmt_size(input_size(key))}): {fmt_s(p['plain_s'])} per call without the "
                  f"profiler; under it: {p['calls']}\n", "Own time by origin:\n"]
        lines += _table(["origin", "own time", "share"],
                        [[g, f"{v * 1000:.1f} ms", f"{share * 100:.0f}%"] for g, v, share in p.get("groups", [])])
        lines += ["Top entries by own time:\n", "```\n" + p["tottime"] + "\n```\n",
                  "Top entries by cumulative time:\n", "```\n" + p["cumulative"] + "\n```\n"]
    return lines


def markdown(run: Run, command: str) -> str:
    lines = ["# rfcheck against peer tools (issue #5)\n",
             "Generated by `python -m benchmarks.analyzer`; how every number is read: the docstrings of "
             "`benchmarks/analyzer/` (peers.py: each tool; reference.py: the references; runner.py: timing and "
             "memory).\n"]
    for section in (setup(run, command), headline(run), verdict_summary(run), rf_table(run), params_table(run),
                    macs_table(run), time_table(run), memory_table(run), depth_table(run), failures(run),
                    profiles(run)):
        lines += section
    return "\n".join(lines) + "\n"


def plot(run: Run, path: str) -> None:
    """Time per model per tool, log scale; hollow markers where the tool's RF / jump is wrong."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = [k for k in run.models if any(time_of(run, k, t) for t in run.tools)]
    if not keys:
        return
    fig, ax = plt.subplots(figsize=(max(8.0, 0.48 * len(keys) + 2), 5.5))
    n = len(run.tools)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, t in enumerate(run.tools):
        full, empty = [], []
        for x, k in enumerate(keys):
            v = time_of(run, k, t)
            if v:
                wrong = TOOLS[t].has_rf and verdict(run, k, t)[0] == "wrong"
                (empty if wrong else full).append((x + (i - (n - 1) / 2) * 0.08, v * 1000))
        c, marker = colors[i % len(colors)], TOOLS[t].marker
        ax.scatter([p[0] for p in full], [p[1] for p in full], label=t, marker=marker, color=c,
                   s=42 if t == "rfcheck" else 26, zorder=3 if t == "rfcheck" else 2,
                   edgecolors="black" if t == "rfcheck" else "none")
        if empty:
            ax.scatter([p[0] for p in empty], [p[1] for p in empty], marker=marker, s=26, facecolors="none",
                       edgecolors=c, zorder=2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(keys, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("wall time per call, ms (median, 1 thread, log scale)")
    ax.set_title("rfcheck vs peers: time per model per tool (hollow: wrong RF/jump; missing: crashed / "
                 "unsupported / timeout)", fontsize=10)
    ax.grid(True, which="both", axis="y", alpha=0.3)
    for x, k in enumerate(keys):
        if x and group(k) != group(keys[x - 1]):
            ax.axvline(x - 0.5, color="grey", lw=0.8, alpha=0.6)
    ax.legend(fontsize=8, ncol=4, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
