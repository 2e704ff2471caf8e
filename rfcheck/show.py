"""What one unit sees: its RF box over an input image, the part of it that lies in the padding,
and the boxes of its neighbours one jump away, one panel per block (``show_rf``).

The boxes come from the report's exact numbers.  Per axis, unit ``u`` of a layer whose RF
centres are evenly spaced (every layer that is not ``phase_dependent``/``non_uniform``) reads
the input pixels ``start + u*jump - (RF-1)/2 .. start + u*jump + (RF-1)/2`` (``start`` is the
centre of unit 0's RF, README "What the numbers mean"); after a transposed conv or an
upsampling the interval depends on the phase and the report does not keep it, so such a layer's
panel says so and draws no box.  ``RF`` is the largest over paths (a residual block's long
path), on an unbounded input: the part outside the image is zero padding.

matplotlib is imported on first use; figures are ``matplotlib.figure.Figure`` objects made
without pyplot, so nothing here changes the backend or pyplot's state.
"""
from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from .errors import RFCheckError
from .report import Layer, Report

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Box = tuple[tuple[Fraction, Fraction], ...]   # per axis (first, last) input pixel, inclusive


def _report(check_or_report: Any) -> Report:
    report = getattr(check_or_report, "report", check_or_report)
    if not isinstance(report, Report):
        raise TypeError(f"expected a Report or a DesignCheck, got {type(check_or_report).__name__}")
    return report


def global_layers(report: Report) -> list[str]:
    """The global reduction(s) whose input is the model RF (none with ``rf_at``)."""
    return [n for n in (report.rf.global_layer or "").split(", ") if n]


def model_rf_layer(report: Report) -> str:
    """The layer whose output units have the model RF: the input of the global pool feeding
    the head, else the layer (or the last layer of the module) ``report.rf.at`` names."""
    gl = global_layers(report)
    if gl:
        inputs = report.layer(gl[0]).inputs
        if inputs:
            name = inputs[0]
            # flatten + Linear: back from the flatten to the last map with its spatial axes
            seen = set()
            while name not in seen:
                seen.add(name)
                l = report.layer(name)
                if len(l.output_shape) > len(l.rf) or not l.inputs:
                    break
                name = l.inputs[0]
            return name
    return resolve_layer(report, report.rf.at)


def resolve_layer(report: Report, name: str) -> str:
    """A layer name, or a block / module name (its last layer)."""
    names = [l.name for l in report.layers]
    if name in names:
        return name
    for b in report.blocks:
        if b.name == name:
            return b.layer
    inside = [n for n in names if n.startswith(name + ".")]
    if inside:
        return inside[-1]
    close = [n for n in names if name in n][:6]
    raise RFCheckError(f"no layer or module named {name!r}" + (f"; similar: {', '.join(close)}" if close else ""))


def spatial_size(layer: Layer) -> tuple[int, ...]:
    """The layer's output map size per spatial axis."""
    nd = len(layer.rf)
    return tuple(layer.output_shape[-nd:]) if nd else ()


def on_grid(layer: Layer) -> bool:
    """True when every unit's RF is ``start + u*jump +- (RF-1)/2`` (one size, even spacing)."""
    return (bool(layer.rf) and not layer.phase_dependent and not layer.non_uniform
            and all(s is not None for s in layer.start) and all(r > 0 for r in layer.rf))


def centre_unit(report: Report, layer: str) -> tuple[int, ...]:
    """The unit whose RF centre is nearest the centre of the input (the lower one on ties)."""
    l = report.layer(layer)
    return nearest_unit(l, [Fraction(n - 1, 2) for n in report.input_size[1:1 + len(l.rf)]])


def nearest_unit(layer: Layer, centre: Sequence[Fraction]) -> tuple[int, ...]:
    out = []
    for n, s, j, c in zip(spatial_size(layer), layer.start, layer.jump, centre):
        if not j or s is None:
            out.append(0)
            continue
        u = (Fraction(c) - Fraction(s)) / Fraction(j)
        lo = int(u // 1)
        u = lo if u - lo <= Fraction(1, 2) else lo + 1
        out.append(min(max(u, 0), n - 1))
    return tuple(out)


def unit_centre(layer: Layer, unit: Sequence[int]) -> tuple[Fraction, ...]:
    return tuple(Fraction(s) + u * Fraction(j) for s, j, u in zip(layer.start, layer.jump, unit))


def unit_box(report: Report, layer: str, unit: Optional[Sequence[int]] = None) -> Box:
    """Per axis, the first and last input pixel of ``unit``'s RF at ``layer`` (on an unbounded
    input): ``start + u*jump -+ (RF-1)/2``.  Raises for a phase-dependent layer."""
    l = report.layer(resolve_layer(report, layer))
    if not on_grid(l):
        raise RFCheckError(f"{l.name}: the RF depends on the unit's phase (transposed conv or upsampling "
                           f"upstream); the report has no per-unit interval for it")
    unit = centre_unit(report, l.name) if unit is None else tuple(int(u) for u in unit)
    size = spatial_size(l)
    if len(unit) != len(size) or any(not 0 <= u < n for u, n in zip(unit, size)):
        raise RFCheckError(f"{l.name}: unit {tuple(unit)} is outside its {'x'.join(map(str, size))} map")
    half = [Fraction(r - 1, 2) for r in l.rf]
    return tuple((c - h, c + h) for c, h in zip(unit_centre(l, unit), half))


def padding_part(box: Box, input_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Per axis, how many of the box's pixel rows/columns lie before pixel 0 and after the
    last pixel (in the padding)."""
    out = []
    for (lo, hi), n in zip(box, input_size):
        before = max(0, min(hi + 1, 0) - lo)
        after = max(0, hi - max(lo - 1, n - 1))
        out.append((int(before), int(after)))
    return tuple(out)


def in_padding_share(box: Box, input_size: Sequence[int]) -> float:
    """The share of the box's pixels that lie outside the image."""
    total, inside = 1, 1
    for (lo, hi), n in zip(box, input_size):
        total *= hi - lo + 1
        inside *= max(0, min(hi, n - 1) - max(lo, 0) + 1)
    return float(1 - Fraction(inside) / total) if total else 0.0


# -- the image ---------------------------------------------------------------------------------
def _to_hwc(img: Any) -> Any:
    import numpy as np
    if hasattr(img, "detach"):  # a torch tensor
        img = img.detach().cpu().numpy()
    elif not isinstance(img, np.ndarray):
        img = np.asarray(img)    # a PIL image
    img = np.asarray(img)
    if img.ndim == 4 and img.shape[0] == 1:
        img = img[0]
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = img.transpose(1, 2, 0)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3):
        raise ValueError(f"image must be HxW, HxWxC or CxHxW, got shape {tuple(img.shape)}")
    img = img.astype(np.float64)
    if img.min() < 0 or img.max() > 1:
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / (hi - lo) if hi > lo else img * 0
    return img


def load_image(image: Any, index: int = 0) -> tuple[Any, str]:
    """(HxW[xC] float image in 0..1, a caption) from a dataset path (a CIFAR-10 test image),
    an indexable dataset (torchvision ImageFolder), or an array/tensor/PIL image."""
    import os
    if isinstance(image, (str, os.PathLike)):
        from training import data as tdata
        try:
            ds = tdata.load(str(image), limit_per_class=max(1, index // 10 + 1))
        except tdata.DataError as e:
            raise RFCheckError(f"show_rf image={str(image)!r}: {e}") from None
        i = index % len(ds.test)
        return _to_hwc(ds.test.images[i]), f"test image {i}: {ds.classes[int(ds.test.labels[i])]}"
    is_array = hasattr(image, "shape") or hasattr(image, "getpixel") or isinstance(image, (list, tuple))
    if not is_array and hasattr(image, "__getitem__") and hasattr(image, "__len__"):  # a dataset
        item = image[index]
        img, label = (item[0], item[1]) if isinstance(item, (tuple, list)) else (item, None)
        classes = getattr(image, "classes", None)
        name = classes[label] if classes is not None and isinstance(label, int) else label
        return _to_hwc(img), f"image {index}" + (f": {name}" if name is not None else "")
    return _to_hwc(image), ""


# -- the picture -------------------------------------------------------------------------------
def _panels(report: Report, chosen: str) -> list[tuple[str, str]]:
    """(title, layer) per block up to the chosen layer, then the chosen layer if no block ends there."""
    order = {l.name: i for i, l in enumerate(report.layers)}
    limit = order[chosen]
    out: list[tuple[str, str]] = []
    seen: set = set()
    last = None
    for b in report.blocks:
        i = order.get(b.layer)
        if i is None or i > limit or b.layer in seen:
            continue
        l = report.layer(b.layer)
        if not l.rf or l.is_global:
            continue
        key = (l.rf, l.jump, l.start, spatial_size(l))
        if key == last:  # a block that changes nothing (a ReLU child): no new picture
            continue
        last = key
        seen.add(b.layer)
        out.append((b.name, b.layer))
    if chosen not in seen:
        out.append((chosen, chosen))
    return out[-9:]


def _rect(ax, box, **kw):
    from matplotlib.patches import Rectangle
    (y0, y1), (x0, x1) = box
    r = Rectangle((float(x0) - 0.5, float(y0) - 0.5), float(x1 - x0 + 1), float(y1 - y0 + 1), **kw)
    ax.add_patch(r)
    return r


def show_rf(check_or_report: Any, image: Any = None, layer: Optional[str] = None,
            unit: Optional[Sequence[int]] = None, *, index: int = 0,
            neighbours: bool = True) -> "Figure":
    """Draw what a unit sees, one panel per block: its RF box over ``image`` (a dataset path:
    CIFAR-10 test image ``index``; an ImageFolder-like dataset; an array, tensor or PIL image;
    None: a pixel grid of the input size), the part of the box in the padding (hatched) and the
    boxes of its neighbours one jump away (dashed).  ``layer`` (a layer, block or module name)
    and ``unit`` (its index per axis) choose the unit: by default the centre unit of the layer
    with the model RF; the other panels show the unit of each block nearest to its centre.
    Returns a ``matplotlib.figure.Figure``."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError as e:
        raise RFCheckError("show_rf: matplotlib is not installed (pip install matplotlib)") from e
    import numpy as np

    report = _report(check_or_report)
    if len(report.input_size) != 3:
        raise RFCheckError(f"show_rf draws 2D inputs; this model's input is {tuple(report.input_size)}")
    H, W = report.input_size[1:]
    chosen = model_rf_layer(report) if layer is None else resolve_layer(report, layer)
    cl = report.layer(chosen)
    if not on_grid(cl):
        raise RFCheckError(f"show_rf: {chosen}'s RF depends on the unit's phase (transposed conv or upsampling); "
                           f"choose another layer")
    if unit is None:
        unit = centre_unit(report, chosen)
    unit_box(report, chosen, unit)  # validates the unit
    target = unit_centre(cl, unit)

    if image is None:
        img, caption = None, f"{H}x{W} input grid"
    else:
        img, caption = load_image(image, index)
        if img.shape[:2] != (H, W):
            raise RFCheckError(f"show_rf: the image is {img.shape[0]}x{img.shape[1]} but the report is for a "
                               f"{H}x{W} input")

    panels = _panels(report, chosen)
    cols = min(len(panels), 3 if len(panels) > 4 else len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(3.6 * cols, 3.9 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (title, name) in zip(axes, panels):
        l = report.layer(name)
        size = spatial_size(l)
        ax.set_facecolor("#e6e6e6")
        ax.set_aspect("equal")
        if img is None:
            ax.imshow(np.ones((H, W)), cmap="gray", vmin=0, vmax=1, extent=(-0.5, W - 0.5, H - 0.5, -0.5), zorder=2)
            step = 1 if max(H, W) <= 64 else 8
            for y in range(0, H + 1, step):
                ax.plot([-0.5, W - 0.5], [y - 0.5, y - 0.5], color="#cccccc", lw=0.4, zorder=2.1)
            for x in range(0, W + 1, step):
                ax.plot([x - 0.5, x - 0.5], [-0.5, H - 0.5], color="#cccccc", lw=0.4, zorder=2.1)
        else:
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, extent=(-0.5, W - 0.5, H - 0.5, -0.5),
                      interpolation="nearest", zorder=2)
        ax.add_patch(Rectangle((-0.5, -0.5), W, H, fill=False, edgecolor="black", lw=1.0, zorder=2.2))
        if not on_grid(l):
            ax.set_title(f"{title} ({name}): RF {'x'.join(map(str, l.rf))}\nphase-dependent: no single box",
                         fontsize=8)
            ax.set_xlim(-0.5, W - 0.5)
            ax.set_ylim(H - 0.5, -0.5)
            continue
        u = tuple(unit) if name == chosen else nearest_unit(l, target)
        box = unit_box(report, name, u)
        drawn = [box]
        if neighbours:
            for a in range(2):
                for d in (-1, 1):
                    v = list(u)
                    v[a] += d
                    if 0 <= v[a] < size[a]:
                        nb = unit_box(report, name, v)
                        drawn.append(nb)
                        _rect(ax, nb, fill=False, edgecolor="tab:cyan", lw=0.8, ls="--", zorder=3,
                              gid=f"neighbour:{name}:{v[0]},{v[1]}")
        # the box's padding part: a hatched box under the (opaque) image shows only outside it
        _rect(ax, box, fill=False, hatch="////", edgecolor="tab:red", lw=0, alpha=0.6, zorder=1,
              gid=f"padding:{name}")
        _rect(ax, box, fill=False, edgecolor="tab:red", lw=1.8, zorder=4, gid=f"rf:{name}:{u[0]},{u[1]}")
        cy, cx = unit_centre(l, u)
        ax.plot([float(cx)], [float(cy)], marker="+", color="tab:red", ms=8, zorder=5)
        ys = [v for b in drawn for v in b[0]] + [0, H - 1]
        xs = [v for b in drawn for v in b[1]] + [0, W - 1]
        ax.set_xlim(float(min(xs)) - 1.5, float(max(xs)) + 1.5)
        ax.set_ylim(float(max(ys)) + 1.5, float(min(ys)) - 1.5)
        share = in_padding_share(box, (H, W))
        (y0, y1), (x0, x1) = box
        ax.set_title(f"{title} ({name}): RF {'x'.join(map(str, l.rf))}, jump {'x'.join(_f(j) for j in l.jump)}\n"
                     f"unit ({u[0]}, {u[1]}) of {'x'.join(map(str, size))}: rows {_f(y0)}..{_f(y1)}, "
                     f"cols {_f(x0)}..{_f(x1)}\n{share:.0%} of the box in the padding", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{report.model}: what unit {tuple(unit)} of {chosen} sees ({caption or 'the given image'})\n"
                 f"red: its RF box; hatched: the part in the padding; dashed: its neighbours one jump away",
                 fontsize=9)
    return fig


def _f(v: Union[Fraction, int]) -> str:
    v = Fraction(v)
    return str(v.numerator) if v.denominator == 1 else f"{float(v):g}"
