"""How fast the trainer steps on this machine, and how much of that is the trainer's own doing.

Measures, for a design (default ``models/net.py:Net``) and batch size, images per second of

* ``bare``: the plainest PyTorch loop (forward, cross-entropy, backward, SGD step) over
  ready-made batches;
* ``trainer``: ``training.engine.train_one_epoch`` over the same batches (OneCycle step, label
  smoothing, non-finite-loss check, running metrics), so ``trainer / bare`` is its overhead;
* ``epoch``: the trainer fed by the real DataLoader with the brief's augmentations in-process
  (``--workers 0``, what ``training.train`` uses on <= 2 cores), i.e. what an epoch costs;

for channels_last on and off and torch threads 1 and 2; then the albumentations pipeline alone
and the full dataset item (augment + normalise) in images per second for one worker process.

    python -m benchmarks.train_throughput --data ../shared/datasets/cifar10-jpeg.tar.gz \\
        --out benchmarks/results/training.md

Without ``--data`` it uses random uint8 images (same shapes, same cost).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from rfcheck.loader import load as load_model
from training import augment, data, engine

ROOT = Path(__file__).resolve().parents[1]


def _median_rate(fn: Callable[[], int], repeats: int) -> float:
    """Images per second, median over ``repeats`` timed calls after one warm-up call."""
    fn()
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def _batches(split: data.Split, mean, std, batch: int, n_batches: int, transform=None) -> list:
    ds = data.make_torch_dataset(split, mean, std, transform)
    loader = engine.make_loader(ds, batch, True, 0, 0, 0, drop_last=True)
    out = []
    for x, y in loader:
        out.append((x, y))
        if len(out) == n_batches:
            break
    return out


def step_rates(spec: str, split: data.Split, mean, std, batch: int, n_batches: int, repeats: int,
               threads: int, channels_last: bool) -> dict[str, float]:
    torch.set_num_threads(threads)
    engine.seed_everything(0)
    model = load_model(spec, meta=False)[0][1]   # real weights: it trains
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    batches = _batches(split, mean, std, batch, n_batches)
    if channels_last:
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
    device = torch.device("cpu")

    def new_opt():
        return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)

    opt = new_opt()

    def bare() -> int:
        model.train()
        n = 0
        for x, y in batches:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            n += len(y)
        return n

    def trainer() -> int:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=len(batches) + 1)
        r = engine.train_one_epoch(model, batches, opt, sched, None, device, 0, label_smoothing=0.1,
                                   channels_last=channels_last)
        return r["n"]

    aug = augment.build(augment.AugConfig(), mean, split.images.shape[-1])
    ds = data.make_torch_dataset(split, mean, std, aug)
    n_images = batch * n_batches

    def epoch() -> int:
        sub = torch.utils.data.Subset(ds, range(n_images))
        sub.transform = aug
        loader = engine.make_loader(sub, batch, True, 0, 0, 0, drop_last=True)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=len(loader) + 1)
        return engine.train_one_epoch(model, loader, opt, sched, None, device, 0, label_smoothing=0.1,
                                      channels_last=channels_last)["n"]

    # interleave the three so drift (thermal, other load) hits them alike
    rates: dict[str, list[float]] = {"bare": [], "trainer": [], "epoch": []}
    for fn in (bare, trainer, epoch):
        fn()                                                     # warm-up
    for _ in range(repeats):
        for name, fn in (("bare", bare), ("trainer", trainer), ("epoch", epoch)):
            t = time.perf_counter()
            n = fn()
            rates[name].append(n / (time.perf_counter() - t))
    return {k: statistics.median(v) for k, v in rates.items()}


def variant_rates(spec: str, split: data.Split, mean, std, batch: int, n_batches: int, repeats: int,
                  device: torch.device, variants: list[str], threads: int = 2) -> dict[str, float]:
    """Images per second of the trainer's step (``engine.train_one_epoch`` on uint8 batches
    normalised on the device, channels_last, OneCycle, label smoothing 0.1) for each variant:
    ``fp32`` (today's step), ``bf16`` (autocast), ``compile`` (``torch.compile`` of the model: its
    forward and backward graphs), ``compile+bf16``.  The variants are interleaved per repeat; a
    CUDA pass ends with a synchronize."""
    torch.set_num_threads(threads)
    idx = [np.arange(i * batch, (i + 1) * batch) % len(split) for i in range(n_batches)]  # cycles a small split
    raw = [(torch.from_numpy(split.images[j]), torch.from_numpy(split.labels[j])) for j in idx]
    norm = engine.Normalize(mean, std, device)
    runs = {}
    for v in variants:
        engine.seed_everything(0)
        model = load_model(spec, meta=False)[0][1].to(device).to(memory_format=torch.channels_last)
        net = torch.compile(model) if v.startswith("compile") else model
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
        amp = "bf16" if v.endswith("bf16") else "off"

        def fn(net=net, opt=opt, amp=amp) -> int:
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=len(raw) + 1)
            r = engine.train_one_epoch(net, raw, opt, sched, None, device, 1, 0.1, 0.0, amp, True, normalize=norm)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return r["n"]
        t = time.perf_counter()
        fn()                                                     # warm-up (and compilation)
        runs[v] = (fn, time.perf_counter() - t)
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(repeats):
        for v in variants:
            t = time.perf_counter()
            n = runs[v][0]()
            rates[v].append(n / (time.perf_counter() - t))
    return {v: statistics.median(r) for v, r in rates.items()}, {v: runs[v][1] for v in variants}


def aug_rates(split: data.Split, mean, std, n: int, repeats: int) -> dict[str, float]:
    """One process (= one DataLoader worker): the albumentations Compose alone, and the dataset
    item the loader calls (augment, to tensor, normalise)."""
    torch.set_num_threads(1)
    aug = augment.build(augment.AugConfig(), mean, split.images.shape[-1])
    aug.set_random_seed(0)
    images = split.images[:n]
    ds = data.make_torch_dataset(split, mean, std, aug)

    def pipeline() -> int:
        for img in images:
            aug(image=img)
        return len(images)

    def item() -> int:
        for i in range(len(images)):
            ds[i]
        return len(images)

    return {"albumentations": _median_rate(pipeline, repeats), "dataset item": _median_rate(item, repeats)}


def _fake_split(n: int, size: int = 32, classes: int = 10) -> data.Split:
    rng = np.random.default_rng(0)
    return data.Split(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
                      rng.integers(0, classes, n).astype(np.int64))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="models/net.py:Net")
    p.add_argument("--data", default=None, help="dataset for the images (default: random uint8 images)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=12, help="batches per timed pass")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=None, help="write the markdown report here (default: print it)")
    p.add_argument("--variants", default=None, help="only the step variants, comma-separated from fp32, bf16, "
                                                    "compile, compile+bf16 (e.g. fp32,bf16)")
    p.add_argument("--device", default="cpu", help="for --variants: cpu or cuda")
    p.add_argument("--threads", type=int, default=2, help="for --variants: torch threads")
    args = p.parse_args(argv)

    n = args.batch_size * args.batches
    if args.data:
        ds = data.load(args.data, limit_per_class=max(1, -(-n // 10)))
        split, source = ds.train, f"`{args.data}` ({len(ds.train)} train images used)"
        mean, std = ds.mean, ds.std
    else:
        split, source = _fake_split(n), "random uint8 32x32x3 images"
        mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

    if args.variants:
        return _variants_report(args, split, mean, std, source, argv)
    rows = []
    for threads in (1, 2):
        for cl in (False, True):
            r = step_rates(args.model, split, mean, std, args.batch_size, args.batches, args.repeats, threads, cl)
            rows.append((threads, cl, r))
            print(f"threads {threads} channels_last {cl}: " + ", ".join(f"{k} {v:.0f} img/s" for k, v in r.items()),
                  file=sys.stderr)
    aug = aug_rates(split, mean, std, min(n, 1000), args.repeats)
    print(", ".join(f"{k} {v:.0f} img/s" for k, v in aug.items()), file=sys.stderr)

    cmd = "python -m benchmarks.train_throughput " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Trainer throughput",
        "",
        f"- date: {datetime.date.today().isoformat()}; commit {_git()}",
        f"- machine: {_cpu()}, {os.cpu_count()} cores, no GPU used; "
        f"Python {platform.python_version()}, torch {torch.__version__}, albumentations "
        f"{__import__('albumentations').__version__}",
        f"- model: `{args.model}`, batch {args.batch_size}, {args.batches} batches per timed pass, median of "
        f"{args.repeats} passes after a warm-up; images: {source}",
        f"- command: `{cmd.strip()}`",
        "",
        "Images per second (training step = forward + loss + backward + SGD step):",
        "",
        "| threads | channels_last | bare loop | trainer step | trainer overhead | epoch path (augment in-process) |",
        "|---|---|---|---|---|---|",
    ]
    for threads, cl, r in rows:
        overhead = 100.0 * (r["bare"] / r["trainer"] - 1.0)
        lines.append(f"| {threads} | {'on' if cl else 'off'} | {r['bare']:.0f} | {r['trainer']:.0f} | "
                     f"{overhead:+.1f}% | {r['epoch']:.0f} |")
    best = max(rows, key=lambda t: t[2]["epoch"])
    lines += [
        "",
        "`bare loop`: forward, `F.cross_entropy`, backward, SGD step over ready-made batches. `trainer step`: "
        "`training.engine.train_one_epoch` over the same batches (OneCycle, label smoothing 0.1, "
        "non-finite check, running loss/accuracy). `epoch path`: the trainer fed by the DataLoader with the "
        "brief's augmentations decoded from the uint8 cache in the training process (`--workers 0`).",
        "",
        "Augmentation, one process (what one DataLoader worker delivers):",
        "",
        "| stage | images/s |",
        "|---|---|",
        f"| albumentations Compose (HorizontalFlip, Affine, ToGray, CoarseDropout; strict) | {aug['albumentations']:.0f} |",
        f"| dataset item (augment + to tensor + normalise) | {aug['dataset item']:.0f} |",
        "",
        f"At the fastest setting ({best[0]} thread(s), channels_last {'on' if best[1] else 'off'}) a 50,000-image "
        f"CIFAR-10 epoch costs about {50000 / best[2]['epoch']:.0f} s of training plus the test pass.",
        "",
    ]
    text = "\n".join(lines)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def _variants_report(args, split, mean, std, source, argv) -> int:
    device = torch.device(args.device)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    rates, warm = variant_rates(args.model, split, mean, std, args.batch_size, args.batches, args.repeats, device,
                                variants, args.threads)
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{_cpu()}, {args.threads} threads"
    cmd = "python -m benchmarks.train_throughput " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# Trainer step variants", "",
             f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; commit {_git()}",
             f"- device: {dev}; torch {torch.__version__}",
             f"- model: `{args.model}`, batch {args.batch_size}, {args.batches} batches per timed pass, median of "
             f"{args.repeats} passes after a warm-up pass; images: {source}",
             f"- command: `{cmd.strip()}`", "",
             "| variant | images/s | vs fp32 | warm-up pass (s, includes compilation) |", "|---|---|---|---|"]
    base = rates.get("fp32")
    for v in variants:
        rel = f"{rates[v] / base:.2f}x" if base else "-"
        lines.append(f"| {v} | {rates[v]:.0f} | {rel} | {warm[v]:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
