"""The PNGs a person looks at after a run."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def all_plots(out: Path, history: list[dict], preds: np.ndarray, labels: np.ndarray, classes: Sequence[str],
              images: np.ndarray) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.plot(ep, [h["train_loss"] for h in history], label="train")
    a1.plot(ep, [h["test_loss"] for h in history], label="test")
    a1.set_xlabel("epoch"), a1.set_ylabel("loss"), a1.legend(), a1.grid(alpha=0.3)
    a2.plot(ep, [h["train_acc"] for h in history], label="train (augmented)")
    a2.plot(ep, [h["test_acc"] for h in history], label="test")
    a2.set_xlabel("epoch"), a2.set_ylabel("accuracy (%)"), a2.legend(), a2.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(_save(fig, out / "curves.png"))

    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (labels, preds), 1)
    per_class = 100 * np.diag(cm) / np.maximum(cm.sum(1), 1)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(range(k), per_class)
    ax.set_xticks(range(k))
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_ylabel("test accuracy (%)")
    for i, v in enumerate(per_class):
        ax.text(i, v + 0.5, f"{v:.1f}", ha="center", fontsize=8)
    ax.set_ylim(0, 105)
    fig.tight_layout()
    paths.append(_save(fig, out / "per_class.png"))

    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k)), ax.set_yticks(range(k))
    ax.set_xticklabels(classes, rotation=45, ha="right"), ax.set_yticklabels(classes)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.colorbar(im)
    fig.tight_layout()
    paths.append(_save(fig, out / "confusion.png"))

    wrong = np.flatnonzero(preds != labels)[:36]
    if len(wrong):
        cols = 6
        rows = (len(wrong) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.8, rows * 2.0))
        for ax in np.atleast_1d(axes).ravel():
            ax.axis("off")
        for ax, i in zip(np.atleast_1d(axes).ravel(), wrong):
            img = images[i]
            ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
            ax.set_title(f"{classes[labels[i]]}\n-> {classes[preds[i]]}", fontsize=7)
        fig.tight_layout()
        paths.append(_save(fig, out / "misclassified.png"))
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
