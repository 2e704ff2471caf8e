"""The training and evaluation loops, seeding and distributed set-up."""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class NonFiniteLoss(RuntimeError):
    def __init__(self, epoch: int, step: int, value: float):
        super().__init__(f"loss is {value} at epoch {epoch}, step {step}: stopping (lower --lr, check the data "
                         "normalisation, or turn off --amp)")
        self.epoch, self.step = epoch, step


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(n: Optional[int]) -> int:
    """A sensible default for a small machine: all cores for the math, one interop thread."""
    if n is None or n <= 0:
        n = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process
    return n


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device_kind: str) -> Dist:
    """Under torchrun (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist
    backend = "nccl" if device_kind == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _worker_init(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    t = getattr(info.dataset, "transform", None) if info is not None else None
    if t is not None and hasattr(t, "set_random_seed"):
        t.set_random_seed(seed)


def make_loader(dataset, batch_size: int, train: bool, workers: int, seed: int, epoch: int,
                dist: Dist = Dist(), drop_last: bool = False) -> torch.utils.data.DataLoader:
    """Deterministic per epoch: the shuffle and the augmentation seeds depend only on
    (seed, epoch), so a resumed run sees exactly the batches the killed run would have."""
    g = torch.Generator()
    g.manual_seed(seed * 100_003 + epoch)
    sampler = None
    if dist.enabled:
        sampler = torch.utils.data.distributed.DistributedSampler(dataset, dist.world, dist.rank, shuffle=train,
                                                                  seed=seed, drop_last=drop_last)
        sampler.set_epoch(epoch)
    if workers == 0:
        s = (seed * 100_003 + epoch) % 2**32
        random.seed(s)
        np.random.seed(s)
        t = getattr(dataset, "transform", None)
        if t is not None and hasattr(t, "set_random_seed"):
            t.set_random_seed(s)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=train and sampler is None, sampler=sampler, num_workers=workers,
        generator=g, worker_init_fn=_worker_init if workers else None, drop_last=drop_last and train,
        persistent_workers=False, pin_memory=torch.cuda.is_available())


def l1_penalty(model: nn.Module) -> torch.Tensor:
    return sum(p.abs().sum() for n, p in model.named_parameters() if p.ndim > 1)


# -- process clock -----------------------------------------------------------------------------------------

_IMPORTED_AT = time.time()


def process_start_time() -> float:
    """The wall-clock time this process started (Linux: from /proc, so the interpreter's and torch's
    import time count too); elsewhere the time this module was imported."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])                      # field 22 (starttime), after pid and (comm)
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
        start = btime + ticks / os.sysconf("SC_CLK_TCK")
        return start if start <= _IMPORTED_AT + 1 else _IMPORTED_AT
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return _IMPORTED_AT


# -- the train input path: uint8 items keyed by (epoch, index), normalised on the device -------------------

class EpochSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, index)`` keys: the shuffle depends only on (seed, epoch), and each item's
    augmentation draws only on (seed, epoch, index), so the batches and every draw are the same for
    any worker count, with persistent workers, and after ``--resume``.  Under DDP each rank takes
    every ``world``-th index of the shuffle, as DistributedSampler does (drop_last: the tail that does
    not split evenly is dropped, else it is padded from the start)."""

    def __init__(self, n: int, seed: int, shuffle: bool = True, world: int = 1, rank: int = 0,
                 drop_last: bool = True):
        self.n, self.seed, self.shuffle, self.world, self.rank = n, seed, shuffle, world, rank
        self.drop_last = drop_last
        self.epoch = 0
        self.per_rank = n // world if drop_last else -(-n // world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank * self.world
        order = order[:total] if len(order) >= total else order + order[:total - len(order)]
        e = self.epoch
        return iter([(e, i) for i in order[self.rank:total:self.world]])


class KeyedAugmentedDataset(torch.utils.data.Dataset):
    """Train items for an :class:`EpochSampler`: key ``(epoch, index)`` -> (uint8 HWC tensor, label).

    Each item reseeds the albumentations pipeline from (seed, epoch, index), through one shared numpy
    and one shared Python generator (``set_random_state``: every transform of the Compose draws from
    the same stream; ``Compose.set_random_seed`` would give each transform its own generator with the
    same seed, whose draws are then identical, so e.g. a p=0.3 Affine would only ever hit images a
    p=0.5 flip hit too).  ``make_transform(scale)`` builds the pipeline for an augmentation scale
    (the refine phase); ``schedule(epoch)`` gives the scale of an epoch (None: always 1).  Both must
    be picklable (worker processes).  Normalisation happens on the device (:class:`Normalize`)."""

    def __init__(self, split, make_transform: Callable[[float], Any], seed: int,
                 schedule: Optional[Callable[[int], float]] = None):
        self.images, self.labels = split.images, split.labels
        self.make_transform, self.schedule, self.seed = make_transform, schedule, int(seed)
        try:  # OpenCV's thread pool does not survive a fork: a worker forked after it ran would hang
            import cv2
            cv2.setNumThreads(0)
        except ImportError:
            pass
        self._transforms: dict[float, Any] = {}

    def __len__(self) -> int:
        return int(len(self.labels))

    def transform_for(self, epoch: int):
        scale = 1.0 if self.schedule is None else float(self.schedule(epoch))
        t = self._transforms.get(scale)
        if t is None:
            t = self._transforms[scale] = self.make_transform(scale)
        return t

    def __getitem__(self, key):
        epoch, i = key if isinstance(key, tuple) else (0, key)
        img = self.images[i]
        t = self.transform_for(epoch)
        if t is not None:
            s = (self.seed * 1_000_003 + epoch) * 100_000_007 + int(i)
            t.set_random_state(np.random.default_rng(s), random.Random(s))
            img = t(image=img)["image"]
            if img.ndim == 2:
                img = img[..., None]
        return torch.from_numpy(np.ascontiguousarray(img)), int(self.labels[i])


def _persistent_worker_init(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    try:
        import cv2
        cv2.setNumThreads(0)  # one process per core already
    except ImportError:
        pass


def make_train_loader(dataset: KeyedAugmentedDataset, batch_size: int, workers: int, seed: int,
                      dist: Dist = Dist(), drop_last: bool = True, prefetch: int = 4):
    """(loader, sampler) for the whole run: call ``sampler.set_epoch(e)`` before each epoch.  With
    workers the processes persist across epochs (no start-up cost per epoch); batches are uint8
    (N, H, W, C), pinned when CUDA is present."""
    sampler = EpochSampler(len(dataset), seed, True, dist.world, dist.rank, drop_last=drop_last)
    kw = dict(persistent_workers=True, prefetch_factor=prefetch, worker_init_fn=_persistent_worker_init) \
        if workers else {}
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                         drop_last=drop_last, pin_memory=torch.cuda.is_available(), **kw)
    return loader, sampler


class DeviceBatches:
    """A split held as one uint8 (N, H, W, C) tensor on the device (30 MB for CIFAR-10's test split),
    iterated in order in slices: evaluation with no DataLoader and no host-to-device copies."""

    def __init__(self, split, batch_size: int, device: torch.device):
        self.x = torch.from_numpy(np.ascontiguousarray(split.images)).to(device)
        self.y = torch.from_numpy(np.asarray(split.labels, dtype=np.int64)).to(device)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        for s in range(0, len(self.y), self.batch_size):
            yield self.x[s:s + self.batch_size], self.y[s:s + self.batch_size]


class Normalize:
    """uint8 (N, H, W, C) batches to normalised float32 (N, C, H, W) on the device, with the same
    float32 arithmetic as ``data.SplitDataset`` (x * 1/(255 std) - mean/std), so a uint8 batch gives
    the bit-identical input the float path gives.  Channels_last comes free: the NCHW view of an
    NHWC tensor is channels_last.  Float batches (already normalised) only move and change layout."""

    def __init__(self, mean, std, device: torch.device):
        mean64, std64 = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        c = len(mean64)
        self.scale = torch.from_numpy((1.0 / (255.0 * std64)).astype(np.float32).reshape(1, c, 1, 1)).to(device)
        self.offset = torch.from_numpy((mean64 / std64).astype(np.float32).reshape(1, c, 1, 1)).to(device)

    def __call__(self, x: torch.Tensor, channels_last: bool) -> torch.Tensor:
        if x.dtype != torch.uint8:
            return x.contiguous(memory_format=torch.channels_last) if channels_last else x
        x = x.permute(0, 3, 1, 2)
        x = x.float() if channels_last else x.contiguous().float()
        return x.mul_(self.scale).sub_(self.offset)


# -- weight averaging -----------------------------------------------------------------------------------------

class ModelEMA:
    """An exponential moving average of a model's weights, updated after every optimiser step on
    the device (no host synchronisation): ``ema = d * ema + (1 - d) * w`` for parameters and the
    floating-point buffers (BatchNorm running mean and variance: averaged the same way, so the
    statistics match the averaged weights as well as an average can), integer buffers
    (``num_batches_tracked``) copied.  The decay warms up as ``min(decay, (1 + n) / (10 + n))``
    after n updates, so early weights (random ones) fade out fast."""

    def __init__(self, model: nn.Module, decay: float):
        import copy
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.updates = float(decay), 0
        self._pairs(model)

    def _pairs(self, model: nn.Module) -> None:
        src = dict(model.named_parameters())
        src.update(model.named_buffers())
        dst = dict(self.module.named_parameters())
        dst.update(self.module.named_buffers())
        floats = [k for k, v in dst.items() if v.is_floating_point()]
        self._avg_dst = [dst[k] for k in floats]
        self._avg_src = [src[k] for k in floats]
        self._copy = [(dst[k], src[k]) for k in dst if k not in set(floats)]

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        d = self.current_decay()
        self.updates += 1
        src = [s.detach() for s in self._avg_src]
        torch._foreach_lerp_(self._avg_dst, src, 1.0 - d)
        for dst, src_ in self._copy:
            dst.copy_(src_)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any], updates: int) -> None:
        self.module.load_state_dict(state)
        self.updates = int(updates)


# -- mixup / cutmix -------------------------------------------------------------------------------------------

@dataclass
class MixConfig:
    """Batch mixing in the training loop, on top of the per-image augmentations: per batch, with
    probability ``prob``, mixup (Beta(alpha, alpha) blend with a shuffled copy of the batch) or
    cutmix (a box of area 1 - lam pasted from the shuffled copy); with both on, each mixed batch
    picks one at random.  The loss is lam * CE(y) + (1 - lam) * CE(y[perm])."""
    mixup: float = 0.0
    cutmix: float = 0.0
    prob: float = 1.0

    @property
    def enabled(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.prob > 0


def mix_batch(x: torch.Tensor, y: torch.Tensor, cfg: MixConfig, rng: np.random.Generator):
    """(x, y_a, y_b, lam): draws on the host from ``rng`` (seeded per epoch: resumable), the mixing
    itself on the device."""
    n = x.shape[0]
    if not cfg.enabled or rng.random() >= cfg.prob or n < 2:
        return x, y, y, 1.0
    use_cutmix = cfg.cutmix > 0 and (cfg.mixup <= 0 or rng.random() < 0.5)
    alpha = cfg.cutmix if use_cutmix else cfg.mixup
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(n)).to(x.device, non_blocking=True)
    if use_cutmix:
        h, w = x.shape[2], x.shape[3]
        cut = math.sqrt(1.0 - lam)
        ch, cw = int(round(h * cut)), int(round(w * cut))
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = max(cy - ch // 2, 0), min(cy + (ch - ch // 2), h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + (cw - cw // 2), w)
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
    else:
        x = x.mul(lam).add_(x[perm], alpha=1.0 - lam)
    return x, y, y[perm], lam


# -- the loops --------------------------------------------------------------------------------------------

CHECK_EVERY = 50   # steps between the (one) host read that looks for a non-finite loss


def _first_nonfinite(losses: list, epoch: int, offset: int) -> None:
    if not losses:
        return
    vals = torch.stack(losses).float().cpu()
    bad = (~torch.isfinite(vals)).nonzero()
    if len(bad):
        k = int(bad[0])
        raise NonFiniteLoss(epoch, offset + k, float(vals[k]))


def train_one_epoch(model: nn.Module, loader, optimizer, scheduler, scaler, device: torch.device, epoch: int,
                    label_smoothing: float = 0.0, l1: float = 0.0, amp: Any = False, channels_last: bool = False,
                    progress: Optional[Callable[[Any], Any]] = None, normalize: Optional[Normalize] = None,
                    ema: Optional[ModelEMA] = None, mix: Optional[MixConfig] = None,
                    mix_rng: Optional[np.random.Generator] = None) -> dict[str, float]:
    """One pass over ``loader``.  Loss and accuracy add up on the device and are read once at the
    end; a non-finite loss is looked for every CHECK_EVERY steps (one read of the losses since the
    last look) and names the first bad step.  ``amp``: False/"off", True (the device's default:
    bf16 on the CPU, fp16 on CUDA), "bf16" or "fp16"."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    total = 0
    pending: list[torch.Tensor] = []
    checked = 0
    mixing = mix is not None and mix.enabled
    if mixing and mix_rng is None:
        mix_rng = np.random.default_rng([0, epoch])
    it = progress(loader) if progress else loader
    for step, (x, y) in enumerate(it):
        x, y = _to_device(x, y, device, channels_last, normalize)
        if mixing:
            x, ya, yb, lam = mix_batch(x, y, mix, mix_rng)
        with _autocast(device, amp):
            out = model(x)
            if mixing and lam < 1.0:
                loss = lam * _loss(out, ya, label_smoothing) + (1.0 - lam) * _loss(out, yb, label_smoothing)
            else:
                loss = _loss(out, y, label_smoothing)
            if l1:
                loss = loss + l1 * l1_penalty(model)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update()
        n = y.numel()
        total += n
        d = loss.detach()
        pending.append(d)
        loss_sum += d * n
        pred = out.detach().argmax(1)
        if mixing and lam < 1.0:
            correct += lam * (pred == ya).sum() + (1.0 - lam) * (pred == yb).sum()
        else:
            correct += (pred == y).sum()
        if len(pending) >= CHECK_EVERY:
            _first_nonfinite(pending, epoch, checked)
            checked += len(pending)
            pending = []
            if progress is not None and hasattr(it, "set_postfix"):
                it.set_postfix(loss=f"{float(loss_sum) / total:.3f}", acc=f"{100 * float(correct) / total:.1f}%",
                               lr=f"{optimizer.param_groups[0]['lr']:.4f}", refresh=False)
    _first_nonfinite(pending, epoch, checked)
    sums = torch.stack([loss_sum, correct.float()]).cpu().tolist()
    return {"loss": sums[0] / max(total, 1), "acc": 100.0 * sums[1] / max(total, 1), "n": total}


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool,
               normalize: Optional[Normalize] = None):
    x = x.to(device, non_blocking=True)
    y = y.to(device, non_blocking=True)
    if normalize is not None:
        return normalize(x, channels_last), y
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def amp_dtype(device: torch.device, amp: Any) -> Optional[torch.dtype]:
    """None (off), or the autocast dtype for ``amp``: "bf16", "fp16", True (bf16 on the CPU, fp16
    on CUDA, the trainer's old ``--amp``) or False/"off"/None."""
    if amp in (None, False, "off"):
        return None
    if amp is True:
        return torch.bfloat16 if device.type == "cpu" else torch.float16
    return AMP_DTYPES[amp]


def _autocast(device: torch.device, amp: Any):
    dtype = amp_dtype(device, amp)
    return torch.autocast(device_type=device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def _loss(out: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    # models that end in log_softmax (the course convention) and models returning logits both work:
    # cross_entropy on log-probabilities equals NLL on them (log_softmax is idempotent)
    return F.cross_entropy(out.float(), y, label_smoothing=label_smoothing)


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, tta: bool = False, channels_last: bool = False,
             amp: Any = False, normalize: Optional[Normalize] = None) -> dict[str, Any]:
    """Accuracy and mean loss over ``loader`` (float batches, or uint8 ones with ``normalize``);
    the predictions stay on the device until the end (one read)."""
    model.eval()
    preds, labels, losses = [], [], []
    for x, y in loader:
        x, y = _to_device(x, y, device, channels_last, normalize)
        with _autocast(device, amp):
            logp = F.log_softmax(model(x).float(), 1)
            if tta:
                logp = torch.logsumexp(torch.stack([logp, F.log_softmax(model(torch.flip(x, [3])).float(), 1)]), 0) \
                    - math.log(2)
        losses.append(F.nll_loss(logp, y, reduction="sum"))
        preds.append(logp.argmax(1))
        labels.append(y)
    p = torch.cat(preds).cpu() if preds else torch.zeros(0, dtype=torch.long)
    t = torch.cat(labels).cpu() if labels else torch.zeros(0, dtype=torch.long)
    loss = float(torch.stack(losses).double().sum()) if losses else 0.0
    n = int(t.numel())
    return {"acc": 100.0 * float((p == t).sum()) / max(n, 1), "loss": loss / max(n, 1), "n": n,
            "preds": p, "labels": t}
