"""Train a design, but only after it passes the design rules.

    python -m training.train models/net.py:Net --data ../shared/datasets/cifar10-jpeg.tar.gz --epochs 60

Rules come from the project's config ([rfcheck] in setup.cfg, ...) and the same rule options as
the ``rfcheck`` command; a failing design is refused (exit 1) before any data is read.
Exit codes: 0 done, 1 the design fails its rules, 2 bad input (data, checkpoint, options),
3 the loss became NaN/inf, 130 interrupted (resume with --resume)."""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional, Sequence

EXIT_OK, EXIT_RULES, EXIT_ERROR, EXIT_NONFINITE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    from rfcheck.options import add_rule_options, argparse_type, parse_size
    p = argparse.ArgumentParser(prog="rfcheck-train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="PATH.py, PATH.py:Name, package.module:Name or timm:NAME, as for rfcheck; "
                                 "Name(ARGS) passes Python literals to it")
    p.add_argument("--data", required=True, help="ImageFolder dir (train/ test/), its .tar.gz, a CIFAR-10 "
                                                 "python-batches dir or a Fashion-MNIST idx dir")
    p.add_argument("--epochs", type=number(int, lo=1), default=60)
    p.add_argument("--batch-size", type=number(int, lo=1), default=128)
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--lr", type=number(float, lo=0, lo_open=True), default=None, help="peak learning rate of the OneCycle schedule "
                                                          "(default 0.1 for SGD, 0.003 for AdamW)")
    p.add_argument("--momentum", type=number(float, lo=0, hi=1, hi_open=True), default=0.9)
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--weight-decay", type=number(float, lo=0), default=5e-4, help="L2 (SGD) / decoupled (AdamW)")
    p.add_argument("--decay-norm-bias", action="store_true",
                   help="also decay BatchNorm weights and biases (default: only conv/linear weights)")
    p.add_argument("--l1", type=number(float, lo=0), default=0.0, help="L1 penalty on weights (0: off)")
    p.add_argument("--label-smoothing", type=number(float, lo=0, hi=1, hi_open=True), default=0.1)
    p.add_argument("--pct-start", type=number(float, lo=0, hi=1, lo_open=True, hi_open=True), default=0.25, help="fraction of steps spent warming up")
    p.add_argument("--seed", type=number(int, lo=0, hi=2**32 - 1), default=0)
    p.add_argument("--workers", type=number(int, lo=0), default=None, help="data-loading processes (default: 0 (in-process) on <= 2 cores, "
                                                             "else 4)")
    p.add_argument("--threads", type=number(int, lo=0), default=None, help="torch threads (default, or 0: all cores)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--amp", choices=("bf16", "fp16", "off"), default=None,
                   help="autocast dtype (default: bf16 on CUDA, off on the CPU; fp16 on CUDA uses a GradScaler)")
    p.add_argument("--no-amp", dest="amp", action="store_const", const="off", help=argparse.SUPPRESS)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--compile", action="store_true", help="torch.compile the model for the train step "
                                                          "(the test pass runs it uncompiled)")
    p.add_argument("--ema", type=number(float, lo=0, hi=1, lo_open=True, hi_open=True), default=None,
                   metavar="DECAY", help="keep an exponential moving average of the weights (e.g. 0.999), "
                                         "evaluated every epoch beside the raw weights; the run's result "
                                         "(checkpoint 'model', test_acc, best.pt) is then the average")
    p.add_argument("--refine-epochs", type=number(float, lo=0), default=0, metavar="N",
                   help="refine phase: over the last N epochs (N < 1: that fraction of --epochs) lower the "
                        "affine and cutout probabilities linearly to --refine-aug-scale times their value")
    p.add_argument("--refine-aug-scale", type=PROBABILITY, default=0.5, help="the refine phase's final factor")
    p.add_argument("--mixup", type=number(float, lo=0), default=0.0, metavar="ALPHA",
                   help="mixup in the training loop, Beta(ALPHA, ALPHA) (0: off); on top of the four transforms")
    p.add_argument("--cutmix", type=number(float, lo=0), default=0.0, metavar="ALPHA",
                   help="cutmix in the training loop (0: off); with --mixup each mixed batch picks one")
    p.add_argument("--mix-prob", type=PROBABILITY, default=1.0, help="share of batches mixed (--mixup/--cutmix)")
    p.add_argument("--out", default=None, help="run folder (default runs/<model>-<seed>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--cache-dir", default=None, help="decoded-image cache (default ~/.cache/rfcheck-data)")
    p.add_argument("--limit-per-class", type=number(int, lo=1), default=None, help="use only N images per class per split")
    p.add_argument("--aug-hflip", type=PROBABILITY, default=0.5, help="p of HorizontalFlip")
    p.add_argument("--aug-affine", type=PROBABILITY, default=0.5, help="p of shift-scale-rotate (Affine)")
    p.add_argument("--aug-cutout", type=PROBABILITY, default=0.5, help="p of CoarseDropout (one 16x16 hole, mean fill)")
    p.add_argument("--aug-gray", type=PROBABILITY, default=0.1, help="p of ToGray")
    p.add_argument("--no-check", action="store_true", help="train even if the design breaks its rules (loudly)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--input-size", type=argparse_type(parse_size), default=None, metavar="C,H,W",
                   help="for the rules (default: from the config file, else the data's image size)")
    p.add_argument("--config", metavar="PATH", help="rules file instead of the nearest setup.cfg/pyproject.toml")
    p.add_argument("--isolated", action="store_true", help="ignore config files")
    group = p.add_argument_group("design rules (as for the rfcheck command)")
    add_rule_options(group.add_argument)
    p.add_argument("--debug", action="store_true")
    return p


class UsageError(Exception):
    pass


def number(kind: type, lo: Optional[float] = None, hi: Optional[float] = None, lo_open: bool = False,
           hi_open: bool = False):
    """An argparse type: an int or a finite float within [lo, hi] (open ends where asked), so a
    bad value is a usage error naming the option and the value before anything is loaded."""
    def conv(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        low_bad = lo is not None and (v <= lo if lo_open else v < lo)
        high_bad = hi is not None and (v >= hi if hi_open else v > hi)
        if low_bad or high_bad:
            left = "" if lo is None else f"{'>' if lo_open else '>='} {kind(lo)}"
            right = "" if hi is None else f"{'<' if hi_open else '<='} {kind(hi)}"
            raise argparse.ArgumentTypeError(f"expected a value {' and '.join(x for x in (left, right) if x)}, "
                                             f"got {text!r}")
        return v
    conv.__name__ = kind.__name__
    return conv


PROBABILITY = number(float, lo=0, hi=1)
PROBABILITY.__name__ = "probability"


def param_groups(model, weight_decay: float, decay_norm_bias: bool = False) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only: decaying BatchNorm scales and biases shrinks
    them towards zero for no regularising gain, which hurts small nets most."""
    decay, plain = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if decay_norm_bias or p.ndim > 1 else plain).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def _say(msg: str, dist=None) -> None:
    if dist is None or dist.main:
        print(msg, flush=True)


def gate(model, args, settings) -> Optional[int]:
    """Run the design rules; print the report and return EXIT_RULES if the design fails."""
    from rfcheck.design import run_check
    from rfcheck.render import checks_text, summary
    if not settings.rules:
        print("rfcheck-train: warning: no design rules configured (setup.cfg [rfcheck] or --min-rf ...): "
              "training unchecked", file=sys.stderr)
    result = run_check(model, settings)
    failed = result.failed
    print(summary(result.report))
    if result.results:
        print(checks_text(result))
    if failed:
        if args.no_check:
            print(f"rfcheck-train: WARNING: --no-check: training a design that breaks {len(failed)} rule(s): "
                  + ", ".join(r.rule for r in failed), file=sys.stderr)
            return None
        print(f"rfcheck-train: the design breaks {len(failed)} rule(s); not training (fix it, or --no-check)",
              file=sys.stderr)
        return EXIT_RULES
    return None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check every argument (a usage error, exit 2, naming the option and the value)."""
    from rfcheck.errors import RFCheckError
    from rfcheck.options import check_output_path
    p = build_parser()
    args = p.parse_args(argv)
    if args.optimizer == "sgd" and args.nesterov and args.momentum == 0:
        p.error("argument --momentum: Nesterov momentum needs a momentum > 0, got 0 (or --no-nesterov)")
    try:
        if args.out is not None:
            check_output_path("--out", args.out, folder=True)
        if args.cache_dir is not None:
            check_output_path("--cache-dir", args.cache_dir, folder=True)
    except RFCheckError as e:
        p.error(str(e))
    return args


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    out = []
    while not path.exists() and path != path.parent:
        out.append(path)
        path = path.parent
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    args.created_dirs = []  # the run folder (and its parents) if this run makes them: removed again if left empty
    code = EXIT_ERROR
    try:
        code = run(args)
        return code
    except KeyboardInterrupt:
        print("\nrfcheck-train: interrupted; the last finished epoch is in last.pt: continue with --resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        from rfcheck.errors import RFCheckError
        from training.checkpoint import CheckpointError
        from training.data import DataError
        from training.engine import NonFiniteLoss
        if args.debug:
            traceback.print_exc()
        if isinstance(e, NonFiniteLoss):
            print(f"rfcheck-train: error: {e}", file=sys.stderr)
            return EXIT_NONFINITE
        if isinstance(e, (RFCheckError, CheckpointError, DataError, UsageError)):
            print(f"rfcheck-train: error: {e}", file=sys.stderr)
            return EXIT_ERROR
        print(f"rfcheck-train: internal error: {type(e).__name__}: {e} (run with --debug)", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if code != EXIT_OK:  # a failed run leaves no empty run folder behind
            for d in getattr(args, "created_dirs", []):
                try:
                    d.rmdir()
                except OSError:
                    break


def _rules_config(args: argparse.Namespace) -> dict[str, Any]:
    """The config file's rules and input size, as for ``rfcheck``; its other keys (output
    format, advice) are not the trainer's."""
    from rfcheck.config import for_command
    values = for_command(args.config, args.isolated, "rfcheck-train")
    return {k: v for k, v in values.items() if k not in ("format", "advice", "rf_at", "ignore")}


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from rfcheck.loader import load_entries
    from rfcheck.options import from_namespace, resolve
    from rfcheck.rules import RULES
    from training import augment, checkpoint, data, engine

    # -- the design and its rules, before any data ---------------------------------------------------------
    config = _rules_config(args)
    command_line = from_namespace(args, [*RULES, "input_size"])
    engine.seed_everything(args.seed)  # the model's initial weights come from the seed too
    models = load_entries(args.model, meta=False)  # trained: real weights
    if len(models) != 1:
        raise UsageError(f"{args.model} holds {len(models)} models; pick one with PATH.py:Name")
    label, model, entry = models[0]
    # as for `rfcheck`: config file < the design's registered rules (and input size) < command line
    settings = resolve(config=config, design=entry, command_line=command_line)
    input_size = settings.input_size
    dist_kind = "cuda" if (args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())) else "cpu"
    dist = engine.init_distributed(dist_kind)
    if dist.main:
        code = gate(model, args, settings)
        if code is not None:
            return code
    elif not args.no_check:
        from dataclasses import replace

        from rfcheck.design import run_check
        if not run_check(model, replace(settings, advice=False)).passed:
            return EXIT_RULES

    # -- machine ---------------------------------------------------------------------------------------------
    threads = engine.set_threads(args.threads)
    device = torch.device(f"cuda:{dist.local_rank}" if dist_kind == "cuda" else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    amp = args.amp if args.amp is not None else ("bf16" if device.type == "cuda" else "off")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = args.workers if args.workers is not None else (0 if cores <= 2 else 4)

    # -- data ------------------------------------------------------------------------------------------------
    t0 = time.time()
    ds = data.load(args.data, cache_dir=args.cache_dir, limit_per_class=args.limit_per_class, seed=args.seed)
    h, w, c = ds.train.images.shape[1:]
    if tuple(input_size) != (c, h, w):
        _say(f"note: rules were checked at input {'x'.join(map(str, input_size))}; the data is {c}x{h}x{w}", dist)
    aug_cfg = augment.AugConfig(hflip=args.aug_hflip, affine=args.aug_affine, cutout=args.aug_cutout,
                                gray=args.aug_gray)
    mix_cfg = engine.MixConfig(args.mixup, args.cutmix, args.mix_prob)
    augment.build(aug_cfg, ds.mean, channels=c)  # checks the settings here, before any worker starts
    refine_epochs = refine_epoch_count(args.refine_epochs, args.epochs)
    schedule = augment.RefineSchedule(args.epochs, refine_epochs, args.refine_aug_scale) if refine_epochs else None
    train_set = engine.KeyedAugmentedDataset(ds.train, functools.partial(augment.build_scaled, aug_cfg,
                                                                         tuple(ds.mean), c), args.seed, schedule)
    normalize = engine.Normalize(ds.mean, ds.std, device)
    _say(f"data: {ds.source}: {len(ds.train.labels):,} train / {len(ds.test.labels):,} test images, "
         f"{len(ds.classes)} classes, {c}x{h}x{w}, mean {_fmt(ds.mean)} std {_fmt(ds.std)} "
         f"({time.time() - t0:.1f}s)", dist)
    _say(f"augmentation: {augment.describe(aug_cfg)}"
         + (f"; refine phase: the last {refine_epochs} epochs lower affine and cutout p to x{args.refine_aug_scale:g}"
            if refine_epochs else "")
         + (f"; in the loop: {describe_mix(mix_cfg)}" if mix_cfg.enabled else ""), dist)

    # -- model, optimiser, schedule ----------------------------------------------------------------------------
    engine.seed_everything(args.seed)  # again: training starts from the same RNG state whatever data loading drew
    model = model.to(device)
    if args.channels_last and len(ds.train.images.shape) == 4:
        model = model.to(memory_format=torch.channels_last)
    ema = engine.ModelEMA(model, args.ema) if args.ema else None
    net = model
    if dist.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    if args.compile:
        net = torch.compile(net)
    train_loader, train_sampler = engine.make_train_loader(train_set, args.batch_size, workers, args.seed, dist,
                                                           drop_last=True)
    steps = len(train_loader)
    if steps == 0:
        raise UsageError(f"--batch-size {args.batch_size} is larger than the training set "
                         f"({len(train_set)} images per process)")
    if args.pct_start * args.epochs * steps <= 1:  # OneCycleLR divides by the warm-up's length in steps
        raise UsageError(f"--epochs {args.epochs} x {steps} step(s) per epoch is too short for the OneCycle warm-up "
                         f"(--pct-start {args.pct_start} of it is under 2 steps): train longer, use a smaller "
                         "--batch-size or a larger --pct-start")
    lr = args.lr if args.lr is not None else (0.1 if args.optimizer == "sgd" else 3e-3)
    groups = param_groups(model, args.weight_decay, args.decay_norm_bias)
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=args.momentum, nesterov=args.nesterov)
    else:
        opt = torch.optim.AdamW(groups, lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=args.epochs * steps,
                                                pct_start=args.pct_start, div_factor=25, final_div_factor=1e3)
    scaler = torch.amp.GradScaler("cuda") if (amp == "fp16" and device.type == "cuda") else None

    out = Path(args.out or f"runs/{Path(label.split(':')[0]).stem}-{label.split(':')[-1]}-seed{args.seed}")
    start_epoch, history, best = 0, [], {"acc": -1.0, "epoch": -1}
    segments: list[dict[str, Any]] = []
    seeded_init = True  # False for a run resumed from a checkpoint of a trainer that built the model unseeded
    started = time.time()
    process_start = engine.process_start_time()
    elapsed_before = 0.0
    if args.resume:
        ck = checkpoint.load(out / "last.pt")
        if ck.get("resumable") is False:
            raise checkpoint.CheckpointError(f"checkpoint {str(out / 'last.pt')!r} holds weights only (a recorded "
                                             "copy without optimizer or random state): it cannot be resumed")
        if ck.get("model_spec_name") != label:
            raise checkpoint.CheckpointError(f"checkpoint {str(out / 'last.pt')!r} is for {ck.get('model_spec_name')}, "
                                             f"not {label}")
        # with --ema the checkpoint's "model" is the average and "model_raw" the trained weights
        checkpoint.load_model_state(model, ck.get("model_raw", ck["model"]), out / "last.pt")
        if ema is not None:
            if "model_raw" in ck:
                ema.load_state_dict(ck["model"], ck.get("ema_updates", 0))
            else:
                raise UsageError(f"--ema {args.ema}: the run being resumed kept no weight average")
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        start_epoch, history, best = ck["epoch"], list(ck["history"]), dict(ck["best"])
        elapsed_before = float(ck.get("elapsed", 0.0))
        checkpoint.set_rng_state(ck["rng"])
        if ck.get("total_epochs") != args.epochs:
            raise UsageError(f"--epochs {args.epochs} differs from the run being resumed ({ck.get('total_epochs')}): "
                             "the schedule would not continue")
        changed = recipe_changes(ck.get("args") or {}, _plain_args(args))
        if changed:
            k, was, now = changed[0]
            raise UsageError(f"--{k.replace('_', '-')} {now} differs from the run being resumed ({was})"
                             + (f" and {len(changed) - 1} more setting(s)" if len(changed) > 1 else "")
                             + ": a resumed run must keep its recipe; start a new --out to change it")
        segments = list(ck.get("segments") or [])
        seeded_init = bool(ck.get("seeded_init", False))
        if not segments and start_epoch:  # a checkpoint from before segments were recorded
            segments = [{"from_epoch": 0, "to_epoch": start_epoch, "seconds": round(elapsed_before, 1),
                         "started": None, "command": None}]
        if ck.get("sampling") != SAMPLING:
            _say(f"note: {out / 'last.pt'} was written by a trainer that drew its augmentations per epoch, not per "
                 "sample: the rest of the run is not the one the old trainer would have run", dist)
        _say(f"resumed {out / 'last.pt'} after epoch {start_epoch}", dist)
    elif (out / "last.pt").exists() and dist.main:
        raise UsageError(f"{out} already holds a run (last.pt): use --resume to continue it or --out for a new one")
    if dist.main:
        if hasattr(args, "created_dirs"):
            args.created_dirs = _missing_dirs(out)
        out.mkdir(parents=True, exist_ok=True)

    from rfcheck import analyze
    rep = analyze(model, input_size=(c, h, w))
    meta = {"model_spec": args.model, "model_spec_name": label,
            "classes": list(ds.classes), "mean": list(ds.mean), "std": list(ds.std), "input_size": [c, h, w],
            "params": rep.params.total, "rf": list(rep.rf.size), "data": ds.source}
    _say(f"model: {label}: {rep.params.total:,} params, RF {'x'.join(map(str, rep.rf.size))}, MACs {rep.macs:,}; "
         f"device {device}, {threads} threads, {workers} workers, amp {amp}, channels_last {args.channels_last}, "
         f"compile {args.compile}, {dist.world} process(es)", dist)
    _say(f"training: {args.optimizer} lr {lr} (OneCycle), batch {args.batch_size}, wd {args.weight_decay}"
         f"{' (all params)' if args.decay_norm_bias else ' (conv/linear weights)'}, "
         f"l1 {args.l1}, label smoothing {args.label_smoothing}, {args.epochs} epochs of {steps} steps, seed "
         f"{args.seed}" + (f", weight average (EMA) decay {args.ema}: the result is the average" if ema else "")
         + f"; run folder {out}", dist)

    # One entry per process run (a killed and resumed run has several): where each began and ended.
    command = " ".join([Path(sys.executable).name, "-m", "training.train", *sys.argv[1:]]) \
        if sys.argv and "training" in " ".join(sys.argv[:1]) else None
    segments.append({"from_epoch": start_epoch, "to_epoch": start_epoch, "seconds": 0.0,
                     "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": command})
    test_loader = engine.DeviceBatches(ds.test, 256, device)
    log_path = out / "log.jsonl"
    for epoch in range(start_epoch, args.epochs):
        t_ep = time.time()
        train_sampler.set_epoch(epoch)
        mix_rng = np.random.default_rng([args.seed, epoch, dist.rank]) if mix_cfg.enabled else None
        progress = None
        if not args.quiet and dist.main:
            from tqdm import tqdm
            progress = lambda it: tqdm(it, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False,  # noqa: E731
                                       dynamic_ncols=True, mininterval=1.0)
        tr = engine.train_one_epoch(net, train_loader, opt, sched, scaler, device, epoch + 1, args.label_smoothing,
                                    args.l1, amp, args.channels_last, progress, normalize=normalize, ema=ema,
                                    mix=mix_cfg if mix_cfg.enabled else None, mix_rng=mix_rng)
        ev = engine.evaluate(model, test_loader, device, channels_last=args.channels_last, amp=amp,
                             normalize=normalize)
        row = {"epoch": epoch + 1, "train_loss": round(tr["loss"], 5), "train_acc": round(tr["acc"], 3),
               "test_loss": round(ev["loss"], 5), "test_acc": round(ev["acc"], 3)}
        result = ev  # what the run reports: the average when --ema is on
        if ema is not None:
            result = engine.evaluate(ema.module, test_loader, device, channels_last=args.channels_last, amp=amp,
                                     normalize=normalize)
            row.update(ema_test_loss=round(result["loss"], 5), ema_test_acc=round(result["acc"], 3))
        dt = time.time() - t_ep
        row.update(lr=opt.param_groups[0]["lr"], seconds=round(dt, 2), time_s=round(time.time() - process_start, 2))
        if schedule is not None:
            row["aug_scale"] = schedule(epoch)
        history.append(row)
        is_best = result["acc"] > best["acc"]
        if is_best:
            best = {"acc": result["acc"], "epoch": epoch + 1}
        _say(f"epoch {epoch + 1:3d}/{args.epochs}  train loss {tr['loss']:.4f} acc {tr['acc']:6.2f}%  "
             f"test loss {ev['loss']:.4f} acc {ev['acc']:6.2f}%  "
             + (f"ema acc {result['acc']:6.2f}%  " if ema is not None else "")
             + f"best {best['acc']:.2f}% (epoch {best['epoch']})  lr {row['lr']:.5f}  {dt:.1f}s  "
             f"t {row['time_s']:.1f}s", dist)
        segments[-1].update(to_epoch=epoch + 1, seconds=round(time.time() - started, 1))
        if dist.main:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            weights = {"model": model.state_dict()} if ema is None else \
                {"model": ema.state_dict(), "model_raw": model.state_dict(), "ema_updates": ema.updates}
            payload = {**meta, **weights, "optimizer": opt.state_dict(),
                       "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if scaler else {},
                       "epoch": epoch + 1, "total_epochs": args.epochs, "history": history, "best": best,
                       "rng": checkpoint.rng_state(), "args": _plain_args(args), "segments": segments,
                       "seeded_init": seeded_init,
                       "elapsed": elapsed_before + time.time() - started, "test_acc": result["acc"],
                       "weights": "ema" if ema is not None else "raw", "sampling": SAMPLING}
            checkpoint.save(out / "last.pt", payload)
            if is_best:
                checkpoint.save(out / "best.pt", payload)

    # -- the end: summary and plots --------------------------------------------------------------------------
    if not dist.main:
        return EXIT_OK
    final = engine.evaluate(ema.module if ema is not None else model, test_loader, device,
                            channels_last=args.channels_last, amp=amp, normalize=normalize)
    summary = {
        "model": label, "params": rep.params.total, "rf": list(rep.rf.size), "macs": rep.macs,
        "data": ds.source, "train_images": int(len(ds.train.labels)), "test_images": int(len(ds.test.labels)),
        "epochs": args.epochs, "best_test_acc": round(best["acc"], 3), "best_epoch": best["epoch"],
        "final_test_acc": round(final["acc"], 3), "weights": "ema" if ema is not None else "raw",
        **({"final_raw_test_acc": history[-1]["test_acc"]} if ema is not None and history else {}),
        "wall_seconds": round(elapsed_before + time.time() - started, 1),
        "seed": args.seed, "seeded_init": seeded_init, "command": command, "segments": segments,
        "machine": f"{platform.machine()} {_cpu_name()}, {cores} cores, torch {torch.__version__}, device {device}",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "augmentation": augment.describe(aug_cfg)
        + (f"; refine: last {refine_epochs} epochs to x{args.refine_aug_scale:g} affine/cutout p" if refine_epochs else "")
        + (f"; in the loop: {describe_mix(mix_cfg)}" if mix_cfg.enabled else ""),
        "source": _source_version(label),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not args.no_plots:
        try:
            from training import plots
            plots.all_plots(out, history, final["preds"].numpy(), final["labels"].numpy(), ds.classes,
                            ds.test.images)
        except ImportError as e:
            print(f"rfcheck-train: warning: no plots ({e})", file=sys.stderr)
    print(f"done: best test accuracy {best['acc']:.2f}% (epoch {best['epoch']}), final {final['acc']:.2f}%, "
          f"{rep.params.total:,} params, RF {'x'.join(map(str, rep.rf.size))}, "
          f"{summary['wall_seconds'] / 60:.1f} min; {out}")
    return EXIT_OK


def _fmt(t) -> str:
    return "(" + ", ".join(f"{x:.4f}" for x in t) + ")"


# Settings that change what a run computes: a resumed run must keep them.  Others (workers, threads,
# output, progress bar, where the data or cache lives) may differ between the killed and resumed run.
RECIPE = ("batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "decay_norm_bias",
          "l1", "label_smoothing", "pct_start", "seed", "limit_per_class", "aug_hflip", "aug_affine",
          "aug_cutout", "aug_gray", "input_size", "ema", "refine_epochs", "refine_aug_scale", "mixup", "cutmix",
          "mix_prob")
# recipe settings added later: a run stored before they existed ran with these values
RECIPE_DEFAULTS = {"ema": None, "refine_epochs": 0, "refine_aug_scale": 0.5, "mixup": 0.0, "cutmix": 0.0,
                   "mix_prob": 1.0}
# how train items are drawn: per-sample seeds from (seed, epoch, index), so any worker count gives the same run
SAMPLING = "keyed-1"


def recipe_changes(before: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, stored value, new value) for each recipe setting that differs; settings the
    stored run did not record are compared with the value it ran with (RECIPE_DEFAULTS), or not at all."""
    out = []
    for k in RECIPE:
        if k not in before and k not in RECIPE_DEFAULTS:
            continue
        was = before.get(k, RECIPE_DEFAULTS.get(k))
        if was != now.get(k) and not (k in RECIPE_DEFAULTS and _same(was, now.get(k))):
            out.append((k, was, now.get(k)))
    return out


def _same(a: Any, b: Any) -> bool:
    try:
        return float(a or 0) == float(b or 0)
    except (TypeError, ValueError):
        return False


def refine_epoch_count(value: float, epochs: int) -> int:
    """--refine-epochs: N epochs, or (N < 1) that fraction of the run, rounded."""
    n = int(round(value * epochs)) if 0 < value < 1 else int(round(value))
    if n > epochs:
        raise UsageError(f"--refine-epochs {value:g} is longer than the run (--epochs {epochs})")
    return n


def describe_mix(cfg) -> str:
    parts = ([f"mixup alpha {cfg.mixup:g}"] if cfg.mixup > 0 else []) + \
        ([f"cutmix alpha {cfg.cutmix:g}"] if cfg.cutmix > 0 else [])
    return " or ".join(parts) + (f", p {cfg.prob:g} per batch" if cfg.prob < 1 else ", every batch")


def _plain_args(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for k, v in vars(args).items():
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = [x if isinstance(x, (bool, int, float, str)) else str(x) for x in v]
        else:
            out[k] = str(v)
    return out


def _source_version(spec: str) -> Optional[str]:
    """The git commit of the design's file (with "+dirty" if it differs from that commit), so a
    recorded result names the exact design even after models/ changes; None outside git."""
    import subprocess
    path = Path(spec.split(":")[0])
    if not path.exists():
        return None
    where = path.parent if path.is_file() else path
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True, text=True,
                              timeout=10)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", path.name], cwd=where, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


if __name__ == "__main__":
    sys.exit(main())
