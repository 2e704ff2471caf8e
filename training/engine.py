"""The training and evaluation loops, seeding and distributed set-up."""
from __future__ import annotations

import math
import os
import random
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


def train_one_epoch(model: nn.Module, loader, optimizer, scheduler, scaler, device: torch.device, epoch: int,
                    label_smoothing: float = 0.0, l1: float = 0.0, amp: bool = False, channels_last: bool = False,
                    progress: Optional[Callable[[Any], Any]] = None) -> dict[str, float]:
    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    it = progress(loader) if progress else loader
    for step, (x, y) in enumerate(it):
        x, y = _to_device(x, y, device, channels_last)
        with _autocast(device, amp):
            out = model(x)
            loss = _loss(out, y, label_smoothing)
            if l1:
                loss = loss + l1 * l1_penalty(model)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLoss(epoch, step, value)
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
        n = y.numel()
        total += n
        loss_sum += value * n
        correct += int((out.detach().argmax(1) == y).sum())
        if progress is not None and hasattr(it, "set_postfix"):
            it.set_postfix(loss=f"{loss_sum / total:.3f}", acc=f"{100 * correct / total:.1f}%",
                           lr=f"{optimizer.param_groups[0]['lr']:.4f}", refresh=False)
    return {"loss": loss_sum / max(total, 1), "acc": 100.0 * correct / max(total, 1), "n": total}


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool):
    x = x.to(device, non_blocking=True)
    y = y.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def _autocast(device: torch.device, amp: bool):
    # bf16 on the CPU (fp16 autocast is GPU-only); a no-op context when amp is off
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16,
                          enabled=amp)


def _loss(out: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    # models that end in log_softmax (the course convention) and models returning logits both work:
    # cross_entropy on log-probabilities equals NLL on them (log_softmax is idempotent)
    return F.cross_entropy(out.float(), y, label_smoothing=label_smoothing)


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, tta: bool = False, channels_last: bool = False,
             amp: bool = False) -> dict[str, Any]:
    model.eval()
    preds, labels, losses = [], [], []
    for x, y in loader:
        x, y = _to_device(x, y, device, channels_last)
        with _autocast(device, amp):
            logp = F.log_softmax(model(x).float(), 1)
            if tta:
                logp = torch.logsumexp(torch.stack([logp, F.log_softmax(model(torch.flip(x, [3])).float(), 1)]), 0) \
                    - math.log(2)
        losses.append(F.nll_loss(logp, y, reduction="sum").item())
        preds.append(logp.argmax(1).cpu())
        labels.append(y.cpu())
    p = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
    t = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    n = int(t.numel())
    return {"acc": 100.0 * float((p == t).sum()) / max(n, 1), "loss": sum(losses) / max(n, 1), "n": n,
            "preds": p, "labels": t}
