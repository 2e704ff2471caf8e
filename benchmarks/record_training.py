"""Copy a finished training run into benchmarks/results/ and (re)write the results table.

    python -m benchmarks.record_training runs/net-Net-seed0 --name net_cifar10_seed0 --checkpoint net_cifar10.pt

Everything in the table comes from the run's own summary.json and log.jsonl (written by
training.train as the run happened) and, with --verify-data, from re-evaluating the copied
checkpoint with training.evaluate (evaluate.json; evaluate_tta.json with flip TTA)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a run folder written by training.train")
    p.add_argument("--name", required=True, help="folder name under benchmarks/results/")
    p.add_argument("--checkpoint", default=None, help="also write last.pt's weights (no optimizer or random state: "
                                                      "not resumable) to this path under benchmarks/results/")
    p.add_argument("--verify-data", default=None, help="re-evaluate the copied checkpoint on this data")
    p.add_argument("--note", default=None, help="what the table should say about the design (e.g. its commit)")
    args = p.parse_args(argv)
    run = Path(args.run)
    for need in [run / "summary.json"] + ([run / "last.pt"] if args.checkpoint or args.verify_data else []):
        if not need.is_file():
            print(f"error: {need} not found: RUN must be a finished training.train run folder", file=sys.stderr)
            return 2
    if args.checkpoint:  # read (torch) and checked before anything is written
        from training import checkpoint

        try:
            ck = checkpoint.load(run / "last.pt")
        except checkpoint.CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    summary = json.loads((run / "summary.json").read_text())
    dest = RESULTS / args.name
    dest.mkdir(parents=True, exist_ok=True)
    if args.note:
        summary["note"] = args.note
    (dest / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for f in ("log.jsonl", "curves.png", "per_class.png", "confusion.png", "misclassified.png"):
        if (run / f).exists():
            shutil.copy2(run / f, dest / f)
    if (run.parent / f"{run.name}.log").exists():
        shutil.copy2(run.parent / f"{run.name}.log", dest / "stdout.log")
    if args.checkpoint:
        checkpoint.save(RESULTS / args.checkpoint, checkpoint.weights_only(ck))
    if args.verify_data:
        # The copied checkpoint when there is one, else the run's own last.pt: either way the
        # figure in the table is re-derived from the weights, not only read from the log.
        checkpoint = RESULTS / args.checkpoint if args.checkpoint else run / "last.pt"
        for tta, name in ((False, "evaluate.json"), (True, "evaluate_tta.json")):
            check = _evaluate(checkpoint, args.verify_data, tta)
            if check is None:
                return 2
            (dest / name).write_text(json.dumps(check, indent=2) + "\n")
            if not tta and abs(check["accuracy"] - summary["final_test_acc"]) > 1e-6:
                print(f"warning: evaluate gives {check['accuracy']} but the run ended at "
                      f"{summary['final_test_acc']}", file=sys.stderr)
    write_table()
    print(f"recorded {run} -> {dest}")
    return 0


def _evaluate(checkpoint: Path, data: str, tta: bool) -> dict | None:
    """training.evaluate in a child process, as a reader would run it; None (error printed) if it fails."""
    # paths relative to the repository root, where the child runs: the record names no machine path
    rel = [os.path.relpath(os.path.abspath(p), ROOT) for p in (checkpoint, data)]
    cmd = [sys.executable, "-m", "training.evaluate", rel[0], "--data", rel[1], "--json"] + (["--tta"] if tta else [])
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        why = (out.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"error: training.evaluate {checkpoint} failed (exit {out.returncode}): {why}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_table(results: Path = RESULTS) -> None:
    rows = []
    for s in sorted(results.glob("*/summary.json")):
        d = json.loads(s.read_text())
        rows.append((s.parent.name, d))
    lines = ["# Training results", "",
             "Each row is one run of `training.train`, copied here by `benchmarks/record_training.py` from the run's "
             "own `summary.json` (the per-epoch log, plots and stdout are in the row's folder). Test accuracy is on "
             "the 10,000-image test split of the data named; the JPEG copy of CIFAR-10 "
             "(`../shared/datasets/cifar10-jpeg.tar.gz`, quality 75) costs about 2 points against the original "
             "pickled data.", "",
             "| run | model | params | RF | data | epochs | best test acc (epoch) | final test acc | wall time | seed | "
             "date | machine |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, d in rows:
        note = f" ({d['note']})" if d.get("note") else ""
        lines.append(f"| [{name}]({name}/) | `{d['model']}`{note} | {d['params']:,} | {'x'.join(map(str, d['rf']))} | "
                     f"{d['data']} | {d['epochs']} | {d['best_test_acc']:.2f}% ({d['best_epoch']}) | "
                     f"{d['final_test_acc']:.2f}% | {d['wall_seconds'] / 60:.1f} min | {d['seed']}"
                     f"{'' if d.get('seeded_init') else '*'} | {d['date']} | "
                     f"{d['machine']} |")
    if any(not d.get("seeded_init") for _, d in rows):
        lines += ["", "\\* initial weights not drawn from the seed: the trainer built the model before seeding "
                  "until commit a292e33, so the seed fixed the shuffles and augmentation draws but not the "
                  "initialisation, and the run cannot be repeated bit for bit from its command."]
    lines += ["", "Commands:", ""]
    for name, d in rows:
        segs = d.get("segments") or []
        if len(segs) > 1:  # a killed and resumed run: each process run with the epochs it trained
            parts = [f"epochs {g['from_epoch'] + 1}-{g['to_epoch']} ({g['seconds'] / 60:.1f} min): "
                     f"`{g.get('command') or 'command not recorded by the trainer; see NOTES.md'}`" for g in segs]
            lines.append(f"- {name}: " + "; then ".join(parts))
        else:
            lines.append(f"- {name}: `{d.get('command') or 'python -m training.train ...'}`")
    augs = {d.get("augmentation", "") for _, d in rows}
    if len(augs) <= 1:  # a run with other probabilities must not be listed under a shared line
        lines += ["", "Augmentation in every run: " + (augs.pop() if augs else ""), ""]
    else:
        lines += ["", "Augmentation:", ""] + [f"- {name}: {d.get('augmentation', '')}" for name, d in rows] + [""]
    lines += seed_groups(rows)
    (results / "training_cifar10.md").write_text("\n".join(lines) + "\n")


def recipe(d: dict) -> tuple:
    """What must match for two runs to count as seeds of one recipe: the design's size, the data, the
    augmentation and the command apart from --seed, --out and --resume."""
    words = (d.get("command") or "").split()
    kept, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w in ("--seed", "--out"):
            skip = True
        elif w != "--resume" and not w.startswith(("--seed=", "--out=")):
            kept.append(w)
    return (d["model"], d["params"], tuple(d["rf"]), d["data"], d.get("augmentation", ""), " ".join(kept))


def seed_groups(rows: list[tuple[str, dict]]) -> list[str]:
    """Mean, spread and range over the seeds of each recipe recorded with more than one seed."""
    groups: dict[tuple, list[tuple[str, dict]]] = {}
    for name, d in rows:
        if d.get("command"):  # a run without its command cannot be matched to a recipe
            groups.setdefault(recipe(d), []).append((name, d))
    multi = [g for g in groups.values() if len({d["seed"] for _, d in g}) > 1]
    if not multi:
        return []
    lines = ["", "Recipes recorded with more than one seed (runs whose command differs only in `--seed`, "
             "`--out` and `--resume`, with the same parameter count, RF, data and augmentation; sd is the "
             "sample standard deviation):", "",
             "| runs | seeds | final test acc: mean (sd) | min | max | best test acc: mean |",
             "|---|---|---|---|---|---|"]
    for g in multi:
        finals = [d["final_test_acc"] for _, d in g]
        lines.append(f"| {', '.join(f'[{n}]({n}/)' for n, _ in g)} | {', '.join(str(d['seed']) for _, d in g)} | "
                     f"{statistics.mean(finals):.2f}% ({statistics.stdev(finals):.2f}) | {min(finals):.2f}% | "
                     f"{max(finals):.2f}% | {statistics.mean(d['best_test_acc'] for _, d in g):.2f}% |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
