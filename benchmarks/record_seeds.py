"""Write benchmarks/results/seeds.json: the seeds of one recipe, each with its committed checkpoint
and the accuracy ``training.evaluate`` printed for that file.

    python -m benchmarks.record_seeds netv2_ema_seed0 netv2_ema_seed1 netv2_ema_seed2

Each NAME is a folder recorded by ``benchmarks.record_training --checkpoint ... --verify-data ...``:
its evaluate.json names the checkpoint it evaluated and the accuracy.  Refuses runs of different
recipes (command apart from --seed/--out/--resume, design, data, augmentation), a repeated seed,
a checkpoint outside benchmarks/results/ or over 1 MB."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from benchmarks.record_training import RESULTS, ROOT, recipe

MAX_BYTES = 1_000_000


def seeds_record(names: list[str], results: Path = RESULTS, root: Path = ROOT) -> dict:
    """The seeds.json content; ValueError (one line) when the runs are not seeds of one recipe."""
    runs, recipes = [], set()
    for name in names:
        folder = results / name
        for f in ("summary.json", "evaluate.json"):
            if not (folder / f).is_file():
                raise ValueError(f"{folder / f} not found: record the run with --checkpoint and --verify-data")
        try:
            summary = json.loads((folder / "summary.json").read_text())
            check = json.loads((folder / "evaluate.json").read_text())
            ckpt = (root / check["checkpoint"]).resolve()
            summary["seed"], check["accuracy"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{name}: summary.json or evaluate.json is not a recorded run's ({type(e).__name__}: "
                             f"{e})") from None
        if results.resolve() not in ckpt.parents:
            raise ValueError(f"{name}: evaluate.json checked {check['checkpoint']}, not a checkpoint under "
                             f"benchmarks/results/ (record with --checkpoint)")
        if not ckpt.is_file() or ckpt.stat().st_size >= MAX_BYTES:
            size = ckpt.stat().st_size if ckpt.is_file() else "missing"
            raise ValueError(f"{name}: checkpoint {check['checkpoint']} must exist and be under 1 MB ({size} bytes)")
        if check.get("tta") or check.get("n") != summary.get("test_images"):
            raise ValueError(f"{name}: evaluate.json is not a plain pass over the whole test split")
        recipes.add(recipe(summary))
        runs.append({"seed": summary["seed"], "checkpoint": ckpt.relative_to(results.resolve()).as_posix(),
                     "final_acc": check["accuracy"]})
    if len(recipes) != 1:
        raise ValueError(f"the runs are {len(recipes)} different recipes, not seeds of one")
    if len({r["seed"] for r in runs}) != len(runs):
        raise ValueError(f"repeated seed in {[r['seed'] for r in runs]}")
    accs = [r["final_acc"] for r in runs]
    return {"recipe": next(iter(recipes))[-1], "runs": sorted(runs, key=lambda r: r["seed"]),
            "mean": round(statistics.mean(accs), 3), "sd": round(statistics.stdev(accs), 3) if len(accs) > 1 else None,
            "min": min(accs)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="+", help="run folders under benchmarks/results/")
    args = p.parse_args(argv)
    try:
        record = seeds_record(args.names)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    (RESULTS / "seeds.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"seeds.json: mean {record['mean']}%, min {record['min']}% over seeds "
          f"{', '.join(str(r['seed']) for r in record['runs'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
