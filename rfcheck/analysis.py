"""analyze(): trace a model and turn the graph into a :class:`Report`."""
from __future__ import annotations

import gc
import re
from itertools import chain
from typing import Callable, Mapping, Optional, Sequence, Union

import torch

from .diagnostics import Diagnostic
from .errors import RFCheckError, TraceError
from .geometry import shared_fraction
from .report import COUNT_KEYS, Block, Layer, ModelRF, OutputRF, Params, Report
from .state import TensorState
from .tracer import Graph, Node, trace


def analyze(model: torch.nn.Module, input_size: Optional[Sequence[int]] = None,
            inputs: Union[torch.Tensor, Sequence[torch.Tensor], None] = None,
            rf_at: Optional[str] = None, name: Optional[str] = None,
            rules: Optional[Mapping[Union[type, str], Callable]] = None) -> Report:
    """Receptive field, jump, output size and parameters of every layer of ``model``.

    ``input_size`` is one sample's size, channels first and without the batch dim
    (``(3, 32, 32)``; ``(2, 128)`` for 1D, ``(2, 8, 32, 32)`` for 3D).  Or pass example
    ``inputs`` (only their shapes are used).  Nothing is computed and the model is not changed.
    ``rules`` adds op rules for this analysis only, beside the global ones of
    ``register_module``/``register_function``: ``{MyModule: fn(module, call), "my_op": fn(call)}``.
    """
    if not isinstance(model, torch.nn.Module):
        raise RFCheckError(f"expected a torch.nn.Module, got {type(model).__name__}")
    op_rules = _op_rules(rules)
    metas = _meta_inputs(input_size, inputs, model)
    size = tuple(metas[0].shape[1:])
    # the analysis allocates many small, acyclic objects per layer: with the cyclic garbage
    # collector on, its full collections (which walk every object of the process) start to
    # fall inside one call past ~1,000 layers and make the cost grow faster than the depth
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            graph = trace(model, metas, op_rules)
        except TraceError as e:
            raise TraceError(_layout_hint(str(e), size, model)) from e.__cause__
        if not graph.outputs:
            raise RFCheckError(_no_output_message(model, graph))
        return build_report(graph, name or type(model).__name__, size, rf_at)
    finally:
        if collecting:
            gc.enable()


def _no_output_message(model: torch.nn.Module, graph: Graph) -> str:
    """Why nothing reaches the output, and what to analyse instead."""
    msg = "the model's output does not depend on its input (nothing to analyse)"
    decided = [d for d in graph.diagnostics if d.code == "RF102"]
    backbone = isinstance(getattr(model, "backbone", None), torch.nn.Module)
    if backbone or decided:
        msg = ("the model's outputs come from data-dependent post-processing (" +
               (f"e.g. {decided[0].layer}: " if decided and decided[0].layer else "") +
               "boxes, scores or masks picked by value, such as a detector's NMS), so no output unit depends on "
               "input positions the trace can follow")
    if backbone:
        msg += ("; analyse its feature extractor instead: in Python rfcheck.check(model.backbone, input_size) "
                "(a torchvision detector's backbone returns its feature pyramid: every level's RF is listed, "
                "the largest is the model RF)")
    return msg


def _op_rules(rules) -> Optional[dict]:
    if not rules:
        return None
    for key, fn in rules.items():
        ok_key = isinstance(key, str) or (isinstance(key, type) and issubclass(key, torch.nn.Module))
        if not ok_key or not callable(fn):
            raise RFCheckError(f"rules: {key!r}: expected a torch.nn.Module subclass or an op name mapped to a "
                               f"rule function, got {type(key).__name__} -> {type(fn).__name__}")
    return dict(rules)


def _model_dtype(model: Optional[torch.nn.Module]) -> torch.dtype:
    """The dtype of the model's first floating parameter (or buffer), else float32: a model in
    half, bfloat16 or float64 is traced in its own dtype."""
    if model is not None:
        for t in chain(model.parameters(), model.buffers()):  # lazily: the first one decides
            if t.is_floating_point():
                return t.dtype
    return torch.float32


def _meta_inputs(input_size, inputs, model: Optional[torch.nn.Module] = None) -> list[torch.Tensor]:
    dtype = _model_dtype(model)
    if inputs is not None:
        ts = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
        if not ts or not all(isinstance(t, torch.Tensor) for t in ts):
            raise RFCheckError("inputs must be a tensor or a sequence of tensors")
        if ts[0].ndim < 3:
            raise RFCheckError(f"example input of shape {tuple(ts[0].shape)}: expected N, C and at least one "
                               "spatial dim")
        return [torch.empty(t.shape, dtype=dtype, device="meta") for t in ts]
    if input_size is None:
        from .options import DEFAULT_INPUT_SIZE
        input_size = DEFAULT_INPUT_SIZE
    try:
        size = tuple(int(s) for s in input_size)
    except (TypeError, ValueError):
        raise RFCheckError(f"input size {input_size!r}: expected integers C,H,W (channels first)") from None
    if len(size) < 2 or any(s < 1 for s in size):
        raise RFCheckError(f"input size {','.join(map(str, size))}: expected channels then 1 to 3 spatial "
                           "sizes, all >= 1 (e.g. 3,32,32)")
    return [torch.empty((1,) + size, dtype=dtype, device="meta")]


def _first_layer_hint(msg: str, size: tuple[int, ...], model: Optional[torch.nn.Module]) -> Optional[str]:
    """A leading batch dim (the torchinfo habit: 1,3,32,32) or a wrong channel count, judged
    from the first conv the forward pass failed in."""
    where = re.search(r"forward failed in (\S+) \((\w+)\)", msg)
    if model is None or where is None:
        return None
    try:
        layer = model.get_submodule(where.group(1))
    except (AttributeError, ValueError):
        return None
    first = next((m for m in model.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)), None)
    want = getattr(layer, "in_channels", None)
    if layer is not first or not isinstance(want, int):
        return None
    spatial = len(layer.kernel_size)
    text = ",".join(map(str, size))
    said = f"the first layer ({where.group(1)}, {where.group(2)}) expects {want} channel{'s' if want != 1 else ''}"
    if len(size) == spatial + 2 and size[0] == 1:
        return (f"input size {text}: rfcheck's input size has no batch dimension; {said}: try --input-size "
                f"{','.join(map(str, size[1:]))} ({msg})")
    if len(size) == spatial + 1 and size[0] != want:
        return f"input size {text}: {said}, not {size[0]}: try --input-size {','.join(map(str, (want, *size[1:])))} ({msg})"
    return None


def _layout_hint(msg: str, size: tuple[int, ...], model: Optional[torch.nn.Module] = None) -> str:
    m = re.search(r"to have (\d+) channels, but got (\d+) channels", msg)
    fixed = ",".join(map(str, (size[-1],) + size[:-1]))
    if m and len(size) >= 3 and size[-1] == int(m.group(1)) and size[0] != int(m.group(1)):
        return (f"input size {','.join(map(str, size))} looks channels-last; rfcheck expects channels first "
                f"(C,H,W): try --input-size {fixed} ({msg})")
    # meta kernels only say "Invalid channel dimensions": judge from the sizes alone
    if not m and "channel" in msg.lower() and len(size) >= 3 and size[-1] <= 4 < size[0]:
        return (f"input size {','.join(map(str, size))} looks channels-last; rfcheck expects channels first "
                f"(C,H,W): try --input-size {fixed} ({msg})")
    hint = _first_layer_hint(msg, size, model)
    if hint:
        return hint
    if re.search(r"forward\(\) missing \d+ required positional argument", msg):
        return f"{msg}: for a model with several inputs give one --input-size per forward argument"
    return msg


def _axes(state: TensorState) -> list[int]:
    return sorted(state.geo)


def build_report(graph: Graph, model_name: str, input_size: tuple[int, ...],
                 rf_at: Optional[str] = None) -> Report:
    nodes = graph.nodes
    by_index = {n.index: n for n in nodes}
    first = nodes[0].shapes[0] if nodes[0].shapes and nodes[0].shapes[0] else (1,)
    batch = max(int(first[0]), 1)  # MACs are per sample
    layers = [_layer(n, nodes, batch) for n in nodes[1:]]
    # the trace's own findings first (data-dependent reads: RF102); its infos (RF302) last
    warnings: list[Diagnostic] = [d for d in graph.diagnostics if d.severity != "info"]
    unknown_seen = False
    tainted = graph.tainted_at is not None
    # the nodes whose maps resample (a period > 1): only they can have a resized jump or empty units
    periodic = set()
    for n in nodes:
        for g in n.state.geo.values():
            if g.env.period > 1:
                periodic.add(n.index)
                break
    for n in nodes[1:]:
        for w in n.warnings:
            if w not in warnings:
                warnings.append(w)
        if (not n.state.exact and not n.unknown and (not tainted or n.index < graph.tainted_at)
                and not any(w.severity == "warning" for w in n.warnings)
                and all(by_index[i].state.exact for i in n.inputs if i in by_index)):
            # where exactness is lost and no diagnostic says why (never a silent "not exact")
            how = "; ".join(n.notes) or "its rule marked the result not exact"
            code = "RF105" if n.info.get("kind") in ("reshape", "slice", "split") else "RF104"
            warnings.append(Diagnostic.of(code, n.name, f"not exact at {n.name}: {how} ({n.type}); the values "
                                                        "that depend on it are marked not exact"))
        if n.unknown:
            how = "; ".join(n.notes) or "no rule"
            warnings.append(Diagnostic.of(
                "RF101", n.name, f"unknown op at {n.name} ({n.type}): {how}. Layers that depend on it are marked "
                "not exact and their RF is a guess (a lower bound if the op only reads its own position); "
                "register a rule with rfcheck.register_function/register_module"))
            unknown_seen = True
        if n.info.get("partial_global") and all(s == 1 for s in _spatial_out(n)):
            parts = n.info["partial_global"]
            seen = " x ".join(f"{c} of {s}" for _, c, s in parts)
            warnings.append(Diagnostic.of(
                "RF202", n.name, f"{n.name} ({n.type}) reduces the map to {'x'.join('1' for _ in parts)} but its "
                f"window covers only {seen} positions: it is not a global pool (units outside the window are "
                "never seen); use AdaptiveAvgPool to 1 or a kernel equal to the map size"))
        if n.info.get("gating"):
            warnings.append(Diagnostic.of(
                "RF203", n.name, f"{n.name} ({n.type}) mixes a globally pooled branch into the feature map "
                "(squeeze-and-excitation style gating): through it every unit technically sees the whole input; "
                "the RF reported counts the convolutional path, as other tools do"))
        if n.info.get("kind") == "conv_transpose" and all(st == 1 for st in n.info["stride"]):
            warnings.append(Diagnostic.of(
                "RF204", n.name, f"{n.name} ({n.type}) is a stride-1 transposed conv: it acts like a conv with the "
                "same effective kernel and full padding (the RF grows by (k_eff-1) x jump, as a conv's would, and "
                "the map grows by k_eff-1); it is no RF booster"))
        if n.info.get("kind") == "conv" and all(k == 1 for k in n.info["kernel"]) and any(n.info["padding"]):
            warnings.append(Diagnostic.of(
                "RF205", n.name, f"{n.name} ({n.type}) is a 1x1 conv with padding {_fmt_tuple(n.info['padding'])}: "
                "it adds a border of padding-only units and grows the map by 2*padding"))
        if n.index not in periodic:
            continue
        if _resized_jump(n) and not any(_resized_jump(by_index[i]) for i in n.inputs if i in periodic):
            warnings.append(Diagnostic.of(
                "RF207", n.name, f"{n.name} ({n.type}) resizes the map to fewer units than its sampling period: "
                "the jump shown is the spacing of the RF centres of the units that exist (their mean where it "
                "varies), not the size ratio"))
        share = _empty_share(n)
        if share and not any(_empty_share(by_index[i]) for i in n.inputs if i in periodic):
            warnings.append(Diagnostic.of(
                "RF106", n.name, f"{n.name} ({n.type}): {share:.0%} of its output units read no input at all "
                "(a stride larger than the kernel leaves gaps); RF min counts the smallest non-empty RF"))
    if graph.unused_params:
        shown = ", ".join(graph.unused_params[:5]) + (" ..." if len(graph.unused_params) > 5 else "")
        warnings.append(Diagnostic.of(
            "RF301", None, f"{len(graph.unused_params)} parameter tensor(s) are not used in forward but are "
            f"counted in the total: {shown}"))
    warnings += [d for d in graph.diagnostics if d.severity == "info"]
    rf = _outputs_rf(graph, nodes, by_index, rf_at)
    if tainted:  # the forward's path itself was decided by a made-up value
        rf.exact = False
    for idx, st in graph.outputs:
        # windows folded into the batch (by a view rfcheck follows) and never put back: one
        # sample became several rows of the output
        if st.dims and st.dims[0].axes and not any(w.code == "RF103" for w in warnings):
            at = by_index[idx].name
            warnings.append(Diagnostic.of(
                "RF103", at, f"batch-folded at {at}: the model's output holds spatial positions in its batch "
                "dim (a view put windows or positions there and none put them back), so each sample is "
                "several rows; the values are marked not exact"))
            rf.exact = False
    counts, members = _counts(nodes)
    unproductive = _unproductive(nodes, layers, input_size)
    if unproductive:
        shown = ", ".join(unproductive[:6]) + (" ..." if len(unproductive) > 6 else "")
        warnings.append(Diagnostic.of(
            "RF206", unproductive[0], f"unproductive layers: {len(unproductive)} windowed layer(s) run after every "
            f"unit already sees the whole {_fmt_tuple(input_size[1:])} input, so they cannot widen the RF: {shown} "
            "(use 1x1 convs there, or fewer layers)"))
    # a fold or layout note repeated block after block (Swin's windows) is one diagnostic naming the rest
    repeats: dict[tuple[str, str], list[Diagnostic]] = {}
    for w in warnings:
        if w.code in ("RF103", "RF104", "RF105") and w.layer:
            repeats.setdefault((w.code, re.sub(r"\d+", "#", w.message.replace(w.layer, ""))), []).append(w)
    for group in repeats.values():
        if len(group) > 1:
            more = [w.layer for w in group[1:]]
            shown = ", ".join(more[:5]) + (" ..." if len(more) > 5 else "")
            warnings[warnings.index(group[0])] = Diagnostic(group[0].code, group[0].severity, group[0].layer,
                                                            f"{group[0].message} (the same at {len(more)} more "
                                                            f"layer(s): {shown})")
            warnings = [w for w in warnings if w not in group[1:]]
    report = Report(model=model_name, input_size=input_size, blocks=_blocks(graph, by_index, layers),
                    module_outputs={m: by_index[i].name for m, i in graph.module_outputs.items() if i in by_index},
                    unproductive=unproductive,
                    params=Params(graph.params_total, graph.params_trainable, list(graph.unused_params)),
                    rf=rf, layers=layers, counts=counts, count_layers=members, warnings=warnings,
                    macs=sum(l.macs for l in layers),
                    exact=all(st.exact for _, st in graph.outputs) and not unknown_seen and not tainted)
    return report


_WINDOW_KINDS = ("conv", "conv_transpose", "max_pool", "avg_pool", "lp_pool")


def _unproductive(nodes: list[Node], layers: list[Layer], input_size: tuple[int, ...]) -> list[str]:
    """Windowed layers that run after some layer's every unit already sees the whole input
    (they cannot widen anything; a large RF alone does not mean that: a corner unit's RF
    mostly lies in the padding)."""
    covered = False
    out = []
    for n, l in zip(nodes[1:], layers):
        if l.is_global:
            break
        if covered and l.kind in _WINDOW_KINDS and any(k > 1 for k in (l.kernel or ())):
            out.append(l.name)
        if not covered and _sees_everything(n, input_size):
            covered = True
    return out


def _sees_everything(n: Node, input_size: tuple[int, ...]) -> bool:
    st = n.state
    axes = _axes(st)
    if not axes or len(axes) != len(input_size) - 1:
        return False
    for a in axes:  # (cheap necessary conditions first: this runs for every layer until one passes)
        g = st.geo[a]
        if g.global_at is not None or g.env.size_max < input_size[1 + a]:
            return False
    sizes = {st.dims[j].axis: n.shapes[0][j] for j in range(len(st.dims)) if st.dims[j].kind == "spatial"}
    for a in axes:
        env, full, m = st.geo[a].env, input_size[1 + a], sizes.get(a)
        if m is None:
            return False
        # lo grows and hi grows period by period: the worst units are in the first/last period
        for o in list(range(min(m, env.period))) + list(range(max(0, m - env.period), m)):
            iv = env.at(o)
            if iv is None or iv[0] > 0 or iv[1] < full - 1:
                return False
    return True


def _resized_jump(n: Node) -> bool:
    """The layer's jump (mean centre spacing over its units) is not its map's period jump."""
    return any(g.global_at is None and g.env.period > 1 and g.spacing[0] != g.env.jump for g in n.state.geo.values())


def _empty_share(n: Node) -> float:
    """The share of a layer's output units that depend on no input (0 when every unit does)."""
    full = 1.0
    for g in n.state.geo.values():
        if g.env.period > 1 and g.size and g.global_at is None:
            full *= 1 - g.env.empty_units(g.size) / g.size
    return 1 - full


def _blocks(graph: Graph, by_index: dict[int, Node], layers: list[Layer]) -> list[Block]:
    by_name = {l.name: l for l in layers}
    blocks = []
    per_top: dict[str, int] = {}
    for x in layers:  # one pass: a layer "c1.0.0" (or "c1", "c1:2") belongs to block "c1"
        top = x.name.split(".", 1)[0].split(":", 1)[0]
        per_top[top] = per_top.get(top, 0) + x.params
    for name in graph.top_level:
        idx = graph.module_outputs.get(name)
        if idx is None or idx not in by_index:
            continue
        l = by_name.get(by_index[idx].name)
        if l is None:
            continue
        params = per_top.get(name, 0)
        blocks.append(Block(name, graph.module_types.get(name, ""), l.name, l.output_shape, l.rf, l.jump, params))
    return blocks


def _spatial_out(n: Node) -> list[int]:
    shape = n.shapes[0]
    return [shape[j] for j, d in enumerate(n.state.dims) if d.kind == "spatial"]


def _layer(n: Node, nodes: list[Node], batch: int = 1) -> Layer:
    st = n.state
    geo = st.geo
    axes = sorted(geo) if len(geo) > 1 else list(geo)
    rf, rf_min, jump, start, jmin, jmax = [], [], [], [], [], []
    phase = False
    for a in axes:  # (one loop, no generators: this runs for every layer)
        g = geo[a]
        e = g.env
        if e.period == 1:  # one phase (no resampling so far): every unit alike, no per-unit work
            # (read from the one interval: the envelope's cached properties cost more than the
            # arithmetic on an envelope met once)
            lo, hi = e.lo[0], e.hi[0]
            j = shared_fraction(e.shift, 1)
            jump.append(j)
            jmin.append(j)
            jmax.append(j)
            if lo is None:  # reads nothing: Envelope.phase_dependent's one-phase case
                phase = True
                rf.append(0)
                start.append(None)
            else:
                rf.append(hi - lo + 1)
                start.append(shared_fraction(lo + hi, 2))
        else:
            rf.append(g.rf)
            mean, lo, hi = g.spacing
            jump.append(mean)
            jmin.append(lo)
            jmax.append(hi)
            phase = phase or e.phase_dependent
            start.append(e.start)
        sh = g.short
        rf_min.append(sh.one_phase_size() if sh.period == 1 else g.rf_min)
    info = n.info
    # a unit depends on the input only if it does along every axis (an axis where no unit
    # does, e.g. a stride that keeps only the empty phases of a transposed conv, empties all)
    if 0 in rf:
        rf = rf_min = [0] * len(axes)
        start = [None] * len(axes)
    shape = n.shapes[0]
    return Layer(
        name=n.name, type=n.type, output_shape=tuple(shape[1:]) if shape else (),
        params=n.params, macs=n.macs // batch, rf=tuple(rf), rf_min=tuple(rf_min), jump=tuple(jump),
        start=tuple(start), is_global=n.is_global, exact=st.exact, unknown=n.unknown, phase_dependent=phase,
        non_uniform=jmin != jmax, jump_min=tuple(jmin), jump_max=tuple(jmax),
        kernel=info.get("kernel"), stride=info.get("stride"), padding=info.get("padding"),
        dilation=info.get("dilation"), groups=info.get("groups"),
        inputs=[nodes[i].name for i in n.inputs], shared_params=n.shared_params, notes=list(n.notes),
        kind=info.get("kind"), global_kind=info.get("global_kind") if n.is_global else None,
    )


def _outputs_rf(graph: Graph, nodes: list[Node], by_index: dict[int, Node], rf_at: Optional[str]) -> ModelRF:
    """Every output's RF; the model RF is the largest of them (a backbone's deepest feature
    map, not its first), the first output on ties."""
    found: list[tuple[Node, ModelRF]] = []
    for idx, st in graph.outputs:
        if all(n.index != idx for n, _ in found):
            found.append((by_index[idx], _model_rf(idx, st, nodes, by_index, rf_at, graph.module_outputs)))
    best = found[0][1] if rf_at is not None else max((r for _, r in found), key=lambda r: (min(r.size, default=-1),
                                                                                          r.size))
    best.outputs = [OutputRF(n.name, r.at, tuple(r.size), r.exact) for n, r in found]
    return best


def _model_rf(*args) -> ModelRF:
    rf = _model_rf_raw(*args)
    if rf.size and any(s == 0 for s in rf.size):  # depends on nothing along one axis: on nothing
        rf.size = tuple(0 for _ in rf.size)
        rf.min = tuple(0 for _ in rf.min)
    return rf


def _model_rf_raw(out_index: int, st: TensorState, nodes: list[Node], by_index: dict[int, Node],
                  rf_at: Optional[str], module_outputs: dict[str, int]) -> ModelRF:
    if rf_at is not None:
        match = [n for n in nodes[1:] if n.name == rf_at]
        if not match and rf_at in module_outputs:
            match = [by_index[module_outputs[rf_at]]]
        if not match:
            close = [n.name for n in nodes[1:] if rf_at in n.name][:8]
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise RFCheckError(f"--rf-at {rf_at}: no such layer{hint} (see the table's name column)")
        n = match[0]
        geo = [n.state.geo[a] for a in _axes(n.state)]
        return ModelRF(tuple(g.rf for g in geo), rf_at, n.state.exact,
                       min=tuple(g.rf_min for g in geo), jump=tuple(g.spacing[0] for g in geo))
    geo = [st.geo[a] for a in _axes(st)]
    if geo and all(g.global_at is not None for g in geo):
        befores = [g.before for g in geo]
        at_nodes = [by_index[g.global_at] for g in geo]
        names = sorted({n.name for n in at_nodes}, key=lambda s: [n.name for n in nodes].index(s))
        return ModelRF(tuple(b.rf for b in befores), ", ".join(names), st.exact,
                       min=tuple(b.rf_min for b in befores), jump=tuple(b.spacing[0] for b in befores),
                       with_global=tuple(g.rf for g in geo), global_layer=", ".join(names),
                       gated=any(b.gated for b in befores))
    return ModelRF(tuple(g.rf for g in geo), nodes[out_index].name, st.exact,
                   min=tuple(g.rf_min for g in geo), jump=tuple(g.spacing[0] for g in geo),
                   gated=any(g.gated for g in geo))


def _counts(nodes: list[Node]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Counts of design features, and the layers counted (a DWS pair is named "dw+pw")."""
    members: dict[str, list[str]] = {k: [] for k in COUNT_KEYS}
    consumers: dict[int, list[Node]] = {}
    for n in nodes[1:]:
        for i in set(n.inputs):
            consumers.setdefault(i, []).append(n)
    for n in nodes[1:]:
        kind = n.info.get("kind")
        if kind in ("conv", "conv_transpose") and any(d > 1 for d in n.info["dilation"]):
            members["dilated"].append(n.name)
        if kind == "conv_transpose":
            members["transposed"].append(n.name)
        if kind == "max_pool":
            members["max_pool"].append(n.name)
        if kind == "linear":
            members["linear"].append(n.name)
        if n.is_global and n.info.get("global_kind") == "avg" and all(
                g.global_at is not None for g in n.state.geo.values()):
            members["gap"].append(n.name)
        if is_depthwise(n):
            members["depthwise"].append(n.name)
            partner = separable_partner(n, consumers)
            if partner is not None:
                members["depthwise_separable"].append(f"{n.name}+{partner.name}")
    return {k: len(v) for k, v in members.items()}, members


def is_depthwise(n: Node) -> bool:
    info = n.info
    return (info.get("kind") == "conv" and info["groups"] > 1 and info["groups"] == info["in_channels"])


def separable_partner(n: Node, consumers: dict[int, list[Node]]) -> Optional[Node]:
    """The 1x1 conv a depthwise conv feeds through only BN/activation/dropout, if any."""
    if not any(k > 1 for k in n.info["kernel"]):
        return None
    cur = n
    while True:
        nxt = consumers.get(cur.index, [])
        if len(nxt) != 1:
            return None
        c = nxt[0]
        kind = c.info.get("kind")
        if kind == "conv":
            ok = all(k == 1 for k in c.info["kernel"]) and c.info["groups"] == 1
            return c if ok else None
        if kind != "pointwise" or len(set(c.inputs)) != 1:
            return None
        cur = c


def _fmt_tuple(t) -> str:
    return "x".join(str(v) for v in t)
