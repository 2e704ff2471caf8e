"""Before/after: rfcheck's analysis time for two versions of the code, side by side in one run.

    python -m benchmarks.ab_versions 9a82a33 --out benchmarks/results/analyzer_before_after.md

BEFORE is a git revision (checked out into a temporary worktree); AFTER is the working tree
(or ``--after REV``).  Each version runs in its own fresh process with one torch thread;
the two alternate for ``--rounds`` rounds so drifting machine load hits both alike; a cell is
the best round's median of ``--repeats`` ``analyze()`` calls after a warm-up call.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
          "densenet121", "googlenet", "inception_v3", "squeezenet1_0", "shufflenet_v2_x1_0", "regnet_y_400mf",
          "convnext_tiny"]

# Run with the version's tree as the working directory: `python -c` puts it first on sys.path.
CHILD = r'''
import json, sys, time
import torch, torchvision as tv
torch.set_num_threads(1)
import rfcheck
from rfcheck import analyze
assert rfcheck.__file__.startswith(sys.argv[1]), rfcheck.__file__
repeats = int(sys.argv[3])
out = {}
for name in sys.argv[2].split(","):
    kw = {"aux_logits": False, "init_weights": False} if name == "inception_v3" else {}
    if name == "googlenet":
        kw = {"aux_logits": False, "init_weights": False}
    m = getattr(tv.models, name)(weights=None, **kw)
    size = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    analyze(m, size)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        analyze(m, size)
        ts.append(time.perf_counter() - t)
    out[name] = sorted(ts)[len(ts) // 2]
print(json.dumps(out))
'''


def _run(path: Path, models: list[str], repeats: int) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), ",".join(models), str(repeats)], capture_output=True,
                       text=True, env=env, cwd=path)
    if r.returncode:
        raise SystemExit(f"analysis failed in {path}:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _rev(path: Path, rev: str = "HEAD") -> str:
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=path, capture_output=True, text=True,
                          check=True).stdout.strip()


def _ms(s: float) -> str:
    return f"{s * 1000:.1f} ms"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", help="git revision of the 'before' code")
    p.add_argument("--after", default=None, help="git revision of the 'after' code (default: the working tree)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    models = args.models.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for tag, rev in (("before", args.before), ("after", args.after)):
            if rev is None:
                trees[tag] = (ROOT, f"working tree at {_rev(ROOT)}" + (" (+ uncommitted changes)" if subprocess.run(
                    ["git", "status", "--porcelain", "rfcheck"], cwd=ROOT, capture_output=True, text=True
                ).stdout.strip() else ""))
                continue
            d = Path(tmp) / tag
            subprocess.run(["git", "worktree", "add", "--detach", str(d), rev], cwd=ROOT, check=True,
                           capture_output=True)
            trees[tag] = (d, f"{_rev(ROOT, rev)}")
        try:
            runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
            for _ in range(args.rounds):
                for tag in ("before", "after"):
                    runs[tag].append(_run(trees[tag][0], models, args.repeats))
                    print(f"{tag}: done a round", file=sys.stderr)
        finally:
            for tag, (d, _) in trees.items():
                if d != ROOT:
                    subprocess.run(["git", "worktree", "remove", "--force", str(d)], cwd=ROOT, capture_output=True)
    best = {tag: {m: min(r[m] for r in runs[tag]) for m in models} for tag in runs}
    ratios = [best["before"][m] / best["after"][m] for m in models]
    cmd = "python -m benchmarks.ab_versions " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# rfcheck analysis time, before and after",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; one torch thread per process; Python "
        f"{platform.python_version()}",
        f"- before: {trees['before'][1]}; after: {trees['after'][1]}",
        f"- command: `{cmd.strip()}`",
        f"- cell: best of {args.rounds} alternating rounds of the median of {args.repeats} `analyze()` calls "
        "(after a warm-up call), torchvision model with weights=None at 224x224 (inception_v3 at 299x299)",
        "",
        "| model | before | after | speed-up |",
        "|---|---|---|---|",
    ]
    for m, r in zip(models, ratios):
        lines.append(f"| {m} | {_ms(best['before'][m])} | {_ms(best['after'][m])} | {r:.2f}x |")
    lines += ["", f"Median speed-up {statistics.median(ratios):.2f}x, geometric mean "
                  f"{statistics.geometric_mean(ratios):.2f}x over {len(models)} models.", ""]
    text = "\n".join(lines)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
