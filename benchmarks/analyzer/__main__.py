"""Command line of the analyzer benchmark (see the package docstring): parse the options, measure
every model, write the report."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

import torch

from benchmarks.analyzer import __doc__ as DOC
from benchmarks.analyzer.models import ALL, QUICK, ROOT, SCALE, valid_keys
from benchmarks.analyzer.peers import TOOLS
from benchmarks.analyzer.profile import profile_rfcheck
from benchmarks.analyzer.report import markdown, plot
from benchmarks.analyzer.runner import Run, depth_sweep, measure_model, warm_tools
from benchmarks.analyzer.util import log
from benchmarks.analyzer.verdicts import profile_targets


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.analyzer", description=DOC.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"smoke test: {', '.join(QUICK)}, 1 round, 1 repeat, no "
                                                        "scale runs, no profile")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per (tool, model) below the scale runs, tools "
                    "interleaved, fastest round kept (default 3)")
    ap.add_argument("--round-budget", type=float, default=5.0,
                    help="extra rounds only for pairs whose first round took less than this many seconds (default 5)")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls after the warm-up (default 5; 1 with --quick)")
    ap.add_argument("--models", default=None, help="comma-separated model keys (default: all). Keys: " + ",".join(ALL))
    ap.add_argument("--tools", default=None, help="comma-separated subset of " + ",".join(TOOLS))
    ap.add_argument("--no-scale", action="store_true", help="skip the scale runs and the depth sweep")
    ap.add_argument("--no-gradient", action="store_true", help="skip the gradient reference (hand values only)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per (tool, model) process (default 120)")
    ap.add_argument("--scale-timeout", type=float, default=120.0, help="seconds per scale-run process (default 120)")
    ap.add_argument("--repeat-budget", type=float, default=12.0,
                    help="seconds of timed repeats per pair; slower tools get fewer repeats (default 12)")
    ap.add_argument("--grad-cap", type=float, default=60.0, help="seconds for one gradient measurement (default 60)")
    ap.add_argument("--grad-max-rf", type=int, default=1000, help="gradient reference only where rfcheck's RF <= this")
    ap.add_argument("--ref-threads", type=int, default=2, help="torch threads for the (untimed) gradient reference")
    ap.add_argument("--mem-cap-gb", type=float, default=14.0, help="kill a process above this RSS (default 14 GiB)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"), help="output folder")
    ap.add_argument("--json", default=None, help="also dump the raw results to this JSON file")
    args = ap.parse_args(argv)
    args.tools = [t.strip() for t in args.tools.split(",")] if args.tools else list(TOOLS)
    for t in args.tools:
        if t not in TOOLS:
            ap.error(f"unknown tool {t}")
    if "rfcheck" not in args.tools:
        args.tools.insert(0, "rfcheck")   # the ratios and the gradient input sizes need it
    args.depth = not (args.quick or args.no_scale or args.models)   # the depth sweep: full runs only
    args.models = [m.strip() for m in args.models.split(",")] if args.models else (QUICK if args.quick else ALL)
    for m in args.models:
        if m not in valid_keys():
            ap.error(f"unknown model {m}")
    if args.quick or args.no_scale:
        args.models = [m for m in args.models if m not in SCALE]
    if args.quick:
        args.rounds = 1
    return args


def write(run: Run, out: str, command: str, json_path: str | None) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "analyzer.md"), "w") as f:
        f.write(markdown(run, command))
    plot(run, os.path.join(out, "analyzer_speed.png"))
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"results": run.results, "refs": run.refs, "warm": run.warm, "depth": run.depth,
                       "profiles": run.profiles, "elapsed_s": run.elapsed}, f, indent=1, default=str)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    command = " ".join(["python -m benchmarks.analyzer"] + (sys.argv[1:] if argv is None else argv))
    run = Run(args, args.tools, list(args.models), args.repeats if args.repeats is not None else (1 if args.quick else 5),
              datetime.datetime.now(datetime.timezone.utc))
    log(f"importing and warming up {', '.join(run.tools)} in the parent")
    import torchvision  # noqa: F401  (imported before the forks)
    run.warm = warm_tools(run.tools)
    run.tools = [t for t in run.tools if "missing" not in run.warm[t]]
    torch.set_num_threads(1)
    for key in run.models:
        measure_model(run, key)
    if args.depth:
        depth_sweep(run)
    if not args.quick and "rfcheck" in run.tools:
        profile_rfcheck(run, profile_targets(run))
    run.elapsed = time.perf_counter() - t_start
    write(run, args.out, command, args.json)
    log(f"wrote {os.path.join(args.out, 'analyzer.md')} and analyzer_speed.png in {run.elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
