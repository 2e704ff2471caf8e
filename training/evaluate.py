"""Test accuracy of a training checkpoint, with optional horizontal-flip TTA.

    python -m training.evaluate benchmarks/results/net_cifar10.pt --data ../shared/datasets/cifar10-jpeg.tar.gz --json
"""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="rfcheck-evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True)
    p.add_argument("--model", default=None, help="PATH.py:Name to rebuild (default: the one stored in the checkpoint)")
    p.add_argument("--tta", action="store_true", help="average with the horizontally flipped image")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    try:
        return _run(args)
    except Exception as e:
        from rfcheck.errors import RFCheckError
        from training.checkpoint import CheckpointError
        from training.data import DataError
        if args.debug:
            traceback.print_exc()
        if isinstance(e, (RFCheckError, CheckpointError, DataError)):
            print(f"rfcheck-evaluate: error: {e}", file=sys.stderr)
        else:
            print(f"rfcheck-evaluate: internal error: {type(e).__name__}: {e} (run with --debug)", file=sys.stderr)
        return 2


def _run(args) -> int:
    import torch

    from training import checkpoint, data, engine

    ck = checkpoint.load(args.checkpoint)
    model = checkpoint.rebuild_model(ck, args.checkpoint, args.model)
    ds = data.load(args.data, cache_dir=args.cache_dir, limit_per_class=args.limit_per_class)
    if list(ds.classes) != list(ck.get("classes", ds.classes)):
        raise data.DataError(f"{args.data} has classes {ds.classes}, the checkpoint was trained on {ck['classes']}")
    # normalise with the statistics the model was trained with
    test = data.make_torch_dataset(ds.test, tuple(ck.get("mean", ds.mean)), tuple(ck.get("std", ds.std)), None)
    engine.set_threads(None)
    loader = engine.make_loader(test, args.batch_size, False, 0, 0, 0)
    res = engine.evaluate(model, loader, torch.device("cpu"), tta=args.tta)
    out = {"accuracy": round(res["acc"], 3), "n": res["n"], "loss": round(res["loss"], 5), "tta": args.tta,
           "checkpoint": args.checkpoint, "model": ck.get("model_spec_name"), "epoch": ck.get("epoch"),
           "data": ds.source}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['model']} epoch {out['epoch']}: test accuracy {out['accuracy']:.2f}% on {out['n']:,} images"
              f"{' (flip TTA)' if args.tta else ''}; {ds.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
