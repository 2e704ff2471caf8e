"""Effective receptive field of a trained model (Luo et al., 2016): |d unit / d input| over real
test images, for the centre unit of the layer with the model RF (the input of the global pool).

    python -m training.erf benchmarks/results/net_cifar10.pt --data ../shared/datasets/cifar10-jpeg.tar.gz --images 500 --out erf.png --json

The unit's output, summed over its channels, is backpropagated to the input of each image; the
absolute gradient summed over the input channels and the images is the ERF map.  For a share p
(50, 90, 99 %) the ERF box is the smallest box centred on the unit's theoretical RF centre that
holds p of the map's mass, grown in proportion to the theoretical RF; ``erf`` gives its size per
axis in pixels, ``theoretical_rf`` the RF rfcheck reports.  Per axis alone (the map summed over
the other axis): ``erf_axis``, the centred interval holding p of that axis's mass, and
``erf_tight``, the shortest interval holding p wherever it lies (its centre shows whether the
ERF is centred).  The gradient cannot be measured in the zero padding, so a box is at most as large as
the image lets it be.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import traceback
from fractions import Fraction
from typing import Any, Optional, Sequence

SHARES = ("50", "90", "99")


class ERFError(Exception):
    """A bad argument or a model the measurement cannot hook (one line)."""


# -- the measurement -----------------------------------------------------------------------------
def find_hook(model, report, layer: Optional[str] = None):
    """(module, "input"|"output", description) to capture the model-RF layer's map: the input
    of the global pool when that is a module, else the output of the module named ``layer``
    (or of the model-RF layer, when it is a module)."""
    from rfcheck.show import global_layers, model_rf_layer
    modules = dict(model.named_modules())
    if layer is not None:
        if layer not in modules or layer == "":
            close = [n for n in modules if n and layer in n][:6]
            raise ERFError(f"--layer {layer}: no such module" + (f"; similar: {', '.join(close)}" if close else ""))
        return modules[layer], "output", layer
    gl = global_layers(report)
    name = model_rf_layer(report)
    if gl and gl[0] in modules and report.layer(gl[0]).inputs[:1] == [name]:
        return modules[gl[0]], "input", f"the input of {gl[0]}"
    if name in modules:
        return modules[name], "output", name
    raise ERFError(f"the model RF is at {name}, which is not a module output; pass --layer MODULE")


def erf_map(model, images, hook, unit: Optional[Sequence[int]] = None, batch_size: int = 100):
    """The ERF map (H, W) as a float64 numpy array: |d (sum over channels of the map at
    ``unit``) / d image| summed over input channels and images; and the map's spatial size.
    ``unit`` defaults to the map's centre unit ((n-1)//2 per axis, the caller may give the one
    nearest the image centre)."""
    module, where, _ = hook
    grabbed: dict[str, Any] = {}

    def pre(_m, args):
        grabbed["map"] = args[0]

    def post(_m, _args, out):
        grabbed["map"] = out

    handle = module.register_forward_pre_hook(pre) if where == "input" else module.register_forward_hook(post)
    was_training = model.training
    model.eval()
    total = None
    size = None
    try:
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].clone().requires_grad_(True)
            model(x)
            fmap = grabbed.pop("map")
            size = tuple(fmap.shape[2:])
            u = unit if unit is not None else tuple((n - 1) // 2 for n in size)
            fmap[(slice(None), slice(None)) + tuple(u)].sum().backward()
            g = x.grad.detach().abs().sum(dim=(0, 1)).double()
            total = g if total is None else total + g
    finally:
        handle.remove()
        model.train(was_training)
    return total.numpy(), size


def centred_sizes(marginal, centre: float, shares=(0.5, 0.9, 0.99)) -> list[int]:
    """Per share: the size of the smallest interval of pixels centred on ``centre`` (a pixel
    or a half pixel) that holds that share of ``marginal``'s mass."""
    import numpy as np
    m = np.asarray(marginal, dtype=np.float64)
    total = m.sum()
    n = len(m)
    c2 = round(2 * centre)             # twice the centre: odd for a half-pixel centre
    out = []
    for p in shares:
        size = None
        # sizes with the centre's parity: odd around a pixel, even around a pixel edge
        first = 1 if c2 % 2 == 0 else 2
        for s in range(first, 2 * n + 3, 2):
            lo = (c2 - (s - 1)) // 2
            hi = lo + s - 1
            mass = m[max(lo, 0):max(min(hi, n - 1) + 1, 0)].sum()
            if mass >= p * total * (1 - 1e-12):
                size = min(hi, n - 1) - max(lo, 0) + 1  # the part inside the image
                break
        out.append(size if size is not None else n)
    return out


def centred_box_sizes(emap, centre: Sequence[float], rf: Sequence[int], shares=(0.5, 0.9, 0.99)) -> list[list[int]]:
    """Per share: the per-axis size of the smallest box centred on ``centre`` (pixels or half
    pixels) that holds that share of the 2-D map's mass.  The box grows in proportion to the
    theoretical RF (sizes ``t * RF`` per axis, rounded up to the centre's parity), so it reaches
    the RF itself, which holds all of the mass, at t = 1."""
    import numpy as np
    m = np.asarray(emap, dtype=np.float64)
    total = m.sum()
    c2 = [round(2 * c) for c in centre]

    def size_at(t: Fraction, a: int) -> int:
        s = max(1, math.ceil(t * rf[a]))
        if (s % 2) != (1 if c2[a] % 2 == 0 else 0):   # odd around a pixel, even around a pixel edge
            s += 1
        return s

    def mass(sizes) -> float:
        sl = []
        for a, s in enumerate(sizes):
            lo = (c2[a] - (s - 1)) // 2
            sl.append(slice(max(lo, 0), max(min(lo + s - 1, m.shape[a] - 1) + 1, 0)))
        return float(m[tuple(sl)].sum())

    ts = sorted({Fraction(s, rf[a]) for a in range(2) for s in range(1, rf[a] + 2)})
    out = []
    for p in shares:
        best = [rf[0], rf[1]]
        for t in ts:
            sizes = [size_at(t, a) for a in range(2)]
            if mass(sizes) >= p * total * (1 - 1e-12):
                best = sizes
                break
        out.append([_inside(c2[a], s, m.shape[a]) for a, s in enumerate(best)])
    return out


def _inside(c2: int, size: int, n: int) -> int:
    """The extent inside an n-pixel image of a box of ``size`` centred at c2 / 2: the gradient
    is never measured in the padding, so no box is reported larger than the image."""
    lo = (c2 - (size - 1)) // 2
    return min(lo + size - 1, n - 1) - max(lo, 0) + 1


def tight_interval(marginal, share: float) -> tuple[int, int]:
    """The shortest interval of pixels (first, last) holding ``share`` of the mass (on ties,
    the one whose centre is nearest the mass's centroid)."""
    import numpy as np
    m = np.asarray(marginal, dtype=np.float64)
    n, total = len(m), m.sum()
    mid = float((m * np.arange(n)).sum() / total) if total else (n - 1) / 2
    cs = np.concatenate([[0.0], np.cumsum(m)])
    for s in range(1, n + 1):
        best = None
        for lo in range(0, n - s + 1):
            if cs[lo + s] - cs[lo] >= share * total * (1 - 1e-12):
                d = abs((lo + lo + s - 1) / 2 - mid)
                if best is None or d < best[0]:
                    best = (d, lo)
        if best is not None:
            return best[1], best[1] + s - 1
    return 0, n - 1


def measure(model, report, images, layer: Optional[str] = None) -> dict[str, Any]:
    """The ERF of the centre unit of the model-RF layer (or of ``layer``'s output) over
    ``images`` (normalised, N x C x H x W), as the JSON document's numbers and the map."""
    from rfcheck.show import centre_unit, model_rf_layer, resolve_layer, spatial_size, unit_box, unit_centre
    if len(report.input_size) != 3:
        raise ERFError(f"the effective RF is measured on 2D inputs; this model's input is {tuple(report.input_size)}")
    hook = find_hook(model, report, layer)
    name = resolve_layer(report, layer) if layer is not None else model_rf_layer(report)
    l = report.layer(name)
    unit = centre_unit(report, name)
    box = unit_box(report, name, unit)
    centre = unit_centre(l, unit)
    emap, size = erf_map(model, images, hook, unit)
    if size != spatial_size(l):
        raise ERFError(f"the hooked map is {size} but rfcheck's {name} is {spatial_size(l)}")
    marginals = [emap.sum(axis=1), emap.sum(axis=0)]
    shares = [int(k) / 100 for k in SHARES]
    erf = dict(zip(SHARES, centred_box_sizes(emap, [float(c) for c in centre], l.rf, shares)))
    sizes = [centred_sizes(m, float(c), shares) for m, c in zip(marginals, centre)]
    erf_axis = {k: [sizes[a][i] for a in range(2)] for i, k in enumerate(SHARES)}
    tight = {}
    for k in SHARES:
        iv = [tight_interval(m, int(k) / 100) for m in marginals]
        tight[k] = {"box": [list(v) for v in iv], "size": [hi - lo + 1 for lo, hi in iv],
                    "centre": [(lo + hi) / 2 for lo, hi in iv]}
    H, W = emap.shape
    return {
        "layer": name, "hooked": hook[2], "unit": list(unit), "map_size": list(size),
        "unit_centre": [_num(c) for c in centre],
        "theoretical_rf": list(l.rf), "theoretical_box": [[_num(lo), _num(hi)] for lo, hi in box],
        "theoretical_rf_in_image": [int(min(hi, n - 1) - max(lo, 0) + 1) for (lo, hi), n in zip(box, (H, W))],
        "erf": erf, "erf_axis": erf_axis, "erf_tight": tight,
        "centroid": [float((m * range(len(m))).sum() / m.sum()) for m in marginals],
        "_map": emap,
    }


def _num(v) -> Any:
    v = Fraction(v)
    return v.numerator if v.denominator == 1 else float(v)


def heatmap(result: dict[str, Any], path: Optional[str] = None, title: str = ""):
    """The ERF map with its 50/90/99 % boxes, beside the theoretical RF box; and the per-axis
    profiles of the mass against the RF's extent."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    emap = result["_map"]
    H, W = emap.shape
    (ty0, ty1), (tx0, tx1) = result["theoretical_box"]
    cy, cx = result["unit_centre"]
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    a1, a2 = fig.subplots(1, 2, width_ratios=(1.1, 1))
    a1.set_facecolor("#e6e6e6")
    im = a1.imshow(emap / emap.max(), cmap="inferno", extent=(-0.5, W - 0.5, H - 0.5, -0.5), zorder=2)
    fig.colorbar(im, ax=a1, shrink=0.8, label="|gradient| (max = 1)")
    a1.add_patch(Rectangle((tx0 - 0.5, ty0 - 0.5), tx1 - tx0 + 1, ty1 - ty0 + 1, fill=False, edgecolor="tab:cyan",
                           lw=2, zorder=3, label=f"theoretical RF {result['theoretical_rf'][0]}x"
                                                 f"{result['theoretical_rf'][1]}"))
    for k, colour in zip(SHARES, ("white", "lime", "deepskyblue")):
        h, w = result["erf"][k]
        a1.add_patch(Rectangle((cx - w / 2, cy - h / 2), w, h, fill=False, edgecolor=colour, lw=1.3, ls="--",
                               zorder=4, label=f"{k}% of the mass: {h}x{w}"))
    a1.plot([cx], [cy], marker="+", color="tab:cyan", ms=10, zorder=5)
    a1.set_xlim(min(tx0, 0) - 1.5, max(tx1, W - 1) + 1.5)
    a1.set_ylim(max(ty1, H - 1) + 1.5, min(ty0, 0) - 1.5)
    a1.legend(fontsize=7, loc="lower left", facecolor="#b0b0b0")
    a1.set_title(f"effective RF of unit {tuple(result['unit'])} at {result['layer']}\n(grey: padding, "
                 f"no gradient is measured there)", fontsize=9)
    for a, (name, lo, hi, c) in enumerate((("H (rows)", ty0, ty1, cy), ("W (cols)", tx0, tx1, cx))):
        m = emap.sum(axis=1 - a)
        a2.plot(np.arange(len(m)), m / m.sum(), marker="o" if a == 0 else "s", ms=3, ls="-" if a == 0 else "--",
                label=f"mass along {name}")
    a2.axvspan(ty0, ty1, color="tab:cyan", alpha=0.12, label=f"theoretical RF {ty0}..{ty1}")
    a2.axvline(cy, color="tab:cyan", lw=0.8)
    for e in (-0.5, H - 0.5):
        a2.axvline(e, color="grey", ls=":", lw=1, label="the image's edges" if e < 0 else None)
    a2.set_xlim(min(ty0, tx0) - 1, max(ty1, tx1) + 1)
    a2.set_xlabel("input pixel")
    a2.set_ylabel("share of the gradient mass")
    a2.legend(fontsize=7)
    a2.set_title("gradient mass per row / column", fontsize=9)
    fig.suptitle(title or _title(result) if "images" in result else title, fontsize=10)
    if path:
        fig.savefig(path, dpi=110)
    return fig


# -- the command ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.erf", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help="the dataset (as for training.evaluate): its test split is used")
    p.add_argument("--images", default="200", help="how many test images (balanced over classes; default 200)")
    p.add_argument("--out", default="erf.png", help="the heatmap PNG (default erf.png)")
    p.add_argument("--model", default=None, help="PATH.py:Name to rebuild (default: the one stored in the checkpoint)")
    p.add_argument("--layer", default=None, help="a module whose output to use (default: the input of the global pool)")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--debug", action="store_true")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except Exception as e:
        from rfcheck.errors import RFCheckError
        from training.checkpoint import CheckpointError
        from training.data import DataError
        if args.debug:
            traceback.print_exc()
        if isinstance(e, (RFCheckError, CheckpointError, DataError, ERFError)):
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"training.erf: error: {msg}", file=sys.stderr)
        else:
            print(f"training.erf: internal error: {type(e).__name__}: {e} (run with --debug)", file=sys.stderr)
        return 2


def load_model(path: str, spec: Optional[str] = None):
    """(model with the checkpoint's weights, the checkpoint), as training.evaluate does."""
    from training import checkpoint
    ck = checkpoint.load(path)
    return checkpoint.rebuild_model(ck, path, spec), ck


def effective_rf(checkpoint: str, data_path: str, images: int = 200, out: Optional[str] = None,
                 model_spec: Optional[str] = None, layer: Optional[str] = None,
                 cache_dir: Optional[str] = None) -> dict[str, Any]:
    """The command's JSON document for ``checkpoint`` over ``images`` test images of
    ``data_path`` (balanced over classes), plus ``"_map"`` (the ERF map, a numpy array); the
    heatmap is written to ``out`` when given (``heatmap(doc)`` draws it as a Figure)."""
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise ERFError(f"--images {images}: expected a whole number >= 1")
    if out is not None:
        from rfcheck.options import check_output_path
        check_output_path("--out", out)
    import torch

    import rfcheck
    from training import data
    model, ck = load_model(checkpoint, model_spec)
    classes = ck.get("classes")
    per_class = math.ceil(images / len(classes)) if classes else images
    ds = data.load(data_path, cache_dir=cache_dir, limit_per_class=per_class)
    if classes is not None and list(ds.classes) != list(classes):
        raise data.DataError(f"{data_path} has classes {ds.classes}, the checkpoint was trained on {classes}")
    test = data.make_torch_dataset(ds.test, tuple(ck.get("mean", ds.mean)), tuple(ck.get("std", ds.std)), None)
    # an even spread over classes: the k-th image of every class before the (k+1)-th of any
    labels = [int(v) for v in ds.test.labels]
    rank, seen = [], {}
    for v in labels:
        rank.append(seen.get(v, 0))
        seen[v] = rank[-1] + 1
    idx = sorted(range(len(labels)), key=lambda i: (rank[i], i))[:images]
    batch = torch.stack([test[i][0] for i in idx])
    report = rfcheck.analyze(model, input_size=tuple(batch.shape[1:]))
    res = measure(model, report, batch, layer)
    doc = {"checkpoint": str(checkpoint), "model": ck.get("model_spec_name") or ck.get("model_spec"),
           "epoch": ck.get("epoch"), "data": str(data_path), "images": len(idx), **res, "png": out}
    if out is not None:
        heatmap(doc, out, _title(doc))
    return doc


def _title(doc: dict[str, Any]) -> str:
    return (f"{doc['model']}: effective RF over {doc['images']} test images, {doc['layer']} unit "
            f"{tuple(doc['unit'])}; theoretical RF {doc['theoretical_rf'][0]}x{doc['theoretical_rf'][1]}")


def _run(args) -> int:
    try:
        n = int(args.images)
    except ValueError:
        raise ERFError(f"--images {args.images}: expected a whole number >= 1") from None
    import torch
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    doc = effective_rf(args.checkpoint, args.data, n, args.out, args.model, args.layer, args.cache_dir)
    doc.pop("_map")
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"{doc['model']}: effective RF of unit {tuple(doc['unit'])} at {doc['layer']} ({doc['hooked']}) over "
              f"{doc['images']} test images; theoretical RF {'x'.join(map(str, doc['theoretical_rf']))}")
        for k in SHARES:
            print(f"  {k}% of the gradient mass: {'x'.join(map(str, doc['erf'][k]))} px (centred box)")
        print(f"  heatmap: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
