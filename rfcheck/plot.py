"""RF and jump per layer against the input size (``plot``; ``rfcheck --plot FILE.png``).

One line per spatial axis (H solid with circles, W dashed with squares, so equal values stay
visible), the model RF marked at its layer, the GAP-window figure a separate labelled marker
(never part of the line: the rules check the RF at the input of the global pool), block
boundaries, and the input size as a reference line.  The figure is a
``matplotlib.figure.Figure`` made without pyplot: in a notebook it is returned as it is (no
backend is chosen, no pyplot state is left behind); with ``path`` it is also written, by
matplotlib's Agg renderer for a PNG.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .errors import RFCheckError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: per axis: (colour, line style, marker, line width)
STYLES = (("tab:blue", "-", "o", 2.4), ("tab:orange", "--", "s", 1.4), ("tab:green", ":", "^", 1.4))


def _axis_names(nd: int) -> list[str]:
    return ["H", "W"] if nd == 2 else (["L"] if nd == 1 else ["T", "H", "W"][-nd:] if nd <= 3 else
                                       [f"d{i}" for i in range(nd)])


def plot(report: Any, path: Optional[str] = None) -> "Figure":
    """Draw ``report``'s (or a ``DesignCheck``'s) RF and jump per layer; write it to ``path``
    when given.  Returns the figure."""
    from .show import _report, global_layers, model_rf_layer
    where = f"--plot {path}" if path else "plot"
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise RFCheckError(f"{where}: matplotlib is not installed (pip install matplotlib)") from e
    report = _report(report)
    layers = [l for l in report.layers if l.rf]
    if not layers:
        raise RFCheckError(f"{where}: no layer with a spatial RF to plot")
    names = [l.name for l in layers]
    gl = [n for n in global_layers(report) if n in names]
    rf_layer = model_rf_layer(report)
    # the spatial trunk ends at the global pool: its value (the GAP window) is a marker, not the line
    end = names.index(gl[0]) if gl else len(layers)
    trunk = layers[:end]
    if not trunk:
        trunk, end = layers[:1], 1
    x = list(range(len(trunk)))
    nd = len(trunk[0].rf)
    axis = _axis_names(nd)
    fig = Figure(figsize=(max(8.0, len(trunk) * 0.16 + 3), 7.5), layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for a in range(nd):
        colour, ls, marker, lw = STYLES[a % len(STYLES)]
        ax1.plot(x, [l.rf[a] if a < len(l.rf) else float("nan") for l in trunk], color=colour, ls=ls, lw=lw,
                 marker=marker, ms=4 if a == 0 else 3, mfc=colour if a == 0 else "none", label=f"RF {axis[a]}",
                 gid=f"rf:{axis[a]}", zorder=3 + a)
        ax2.plot(x, [float(l.jump[a]) if a < len(l.jump) else float("nan") for l in trunk], color=colour, ls=ls,
                 lw=lw, marker=marker, ms=4 if a == 0 else 3, mfc=colour if a == 0 else "none",
                 label=f"jump {axis[a]}", gid=f"jump:{axis[a]}", zorder=3 + a)
    # where the RF depends on the unit's phase (after a transposed conv or an upsampling)
    phase = [i for i, l in enumerate(trunk) if l.phase_dependent or l.non_uniform]
    if phase:
        ax1.plot(phase, [max(trunk[i].rf) for i in phase], ls="none", marker="D", ms=6, mfc="none", mec="black",
                 zorder=6, gid="phase", label="phase-dependent: the largest RF over phases")
    # the input size: one reference line per distinct value
    sizes = list(report.input_size[1:1 + nd])
    for v in sorted(set(sizes)):
        which = [axis[a] for a in range(nd) if sizes[a] == v]
        ax1.axhline(v, color="grey", ls=(0, (1, 2)), lw=1.2, zorder=1, gid="input",
                    label=f"input size {v} ({', '.join(which)})")
    # the model RF at its layer
    shown = {l.name: i for i, l in enumerate(trunk)}
    rf_txt = "x".join(map(str, report.rf.size))
    if rf_layer in shown:
        i = shown[rf_layer]
        where_txt = f"{rf_layer}" + (f", the input of {', '.join(gl)}" if gl else "")
        ax1.plot([i] * nd, list(report.rf.size), ls="none", marker="*", ms=15, color="crimson", zorder=6,
                 gid="model_rf", label=f"model RF {rf_txt} at {where_txt} (what the rules check)")
        ax1.annotate(f"model RF {rf_txt}", (i, max(report.rf.size)), textcoords="offset points", xytext=(-8, 10),
                     ha="right", fontsize=8, color="crimson")
    # the GAP window: a labelled marker beside the line's end, not part of it
    if gl and report.rf.with_global:
        gx = len(trunk)
        gv = list(report.rf.with_global)
        g_txt = "x".join(map(str, gv))
        ax1.plot([gx] * nd, gv, ls="none", marker="X", ms=9, color="dimgrey", zorder=6, gid="gap_window",
                 label=f"GAP window counted: {g_txt} (the brief's common mistake)")
        ax1.annotate(f"GAP window counted: {g_txt}\n(the brief's common mistake;\nthe rule checks {rf_txt})",
                     (gx, max(gv)), textcoords="offset points", xytext=(-10, -4), ha="right", va="top",
                     fontsize=8, color="dimgrey")
        ax1.set_xlim(-1, gx + 1)
    # block boundaries, each block named over its span
    top = max([max(l.rf) for l in trunk] + sizes + list(report.rf.with_global or ()))
    ax1.set_ylim(0, top * 1.12 + 2)
    begin = -0.5
    for b in report.blocks:
        if b.layer not in shown:
            continue
        i = shown[b.layer]
        for ax in (ax1, ax2):
            ax.axvline(i + 0.5, color="grey", lw=0.8, zorder=0, gid=f"block:{b.name}")
        ax1.text((begin + i + 0.5) / 2, top * 1.1 + 2, b.name, ha="center", va="top", fontsize=8, color="dimgrey")
        begin = i + 0.5
    # name the layers that change something (every name on 70 ticks is unreadable)
    labels, prev = [], None
    for l in trunk:
        key = (l.rf, l.jump, l.output_shape[-nd:])
        labels.append(l.name if key != prev or l.name == rf_layer else "")
        prev = key
    ticks = x + ([len(trunk)] if gl else [])
    ax2.set_xticks(ticks)
    ax2.set_xticklabels(labels + ([gl[0]] if gl else []), rotation=90, fontsize=6)
    ax1.set_ylabel("receptive field (input pixels)")
    ax2.set_ylabel("jump (input pixels)")
    ax2.set_xlabel("layer (names where RF, jump or map size change)")
    ax1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, 0.92))
    ax2.legend(fontsize=7, loc="upper left")
    ax1.set_title(f"{report.model}: model RF {rf_txt} at {rf_layer}, input "
                  f"{'x'.join(map(str, sizes))}", fontsize=10)
    if path:
        fig.savefig(path, dpi=110)
    return fig
