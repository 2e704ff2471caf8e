"""--plot: RF and jump per layer against the input size, block boundaries marked."""
from __future__ import annotations

from .report import Report


def plot(report: Report, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        from .errors import RFCheckError
        raise RFCheckError(f"--plot {path}: matplotlib is not installed (pip install matplotlib)") from e
    layers = [l for l in report.layers if l.rf]
    if not layers:
        from .errors import RFCheckError
        raise RFCheckError(f"--plot {path}: no layer with a spatial RF to plot")
    x = list(range(len(layers)))
    nd = len(layers[0].rf)
    axes_names = ["H", "W"] if nd == 2 else (["L"] if nd == 1 else ["T", "H", "W"])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8, len(layers) * 0.18), 7), sharex=True)
    for a in range(nd):
        ax1.step(x, [l.rf[a] if a < len(l.rf) else None for l in layers], where="post", label=f"RF {axes_names[a]}")
        ax2.step(x, [float(l.jump[a]) if a < len(l.jump) else None for l in layers], where="post",
                 label=f"jump {axes_names[a]}")
        ax1.axhline(report.input_size[1 + a], linestyle=":", color=f"C{a}", label=f"input {axes_names[a]}")
    index = {l.name: i for i, l in enumerate(layers)}
    for b in report.blocks:
        if b.layer in index:
            for ax in (ax1, ax2):
                ax.axvline(index[b.layer], color="grey", linewidth=0.8)
            ax1.text(index[b.layer], ax1.get_ylim()[1], b.name, rotation=90, va="top", ha="right", fontsize=8)
    ax1.set_ylabel("receptive field (input pixels)")
    ax2.set_ylabel("jump (input pixels)")
    ax2.set_xlabel("layer")
    ax2.set_xticks(x)
    ax2.set_xticklabels([l.name for l in layers], rotation=90, fontsize=6)
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    ax1.set_title(f"{report.model}: RF {'x'.join(map(str, report.rf.size))} at {report.rf.at}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
