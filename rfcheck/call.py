"""The view a transfer rule gets of one traced call, and the helpers rules build results with."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import replace
from typing import Any, Iterable, Optional, Sequence

import torch

from . import pieces as pc
from .diagnostics import Diagnostic
from .geometry import AxisGeo, Envelope, merge_axis, sliding
from .state import NO_AXES, PART, SPATIAL, Dim, Parts, TensorState

_LAYOUT_KINDS = frozenset({"reshape", "slice", "split"})


class Call:
    """One op (a torch function or a module with a registered rule) as the analyzer saw it.

    ``args``/``kwargs`` hold meta tensors (for a plain Conv/BatchNorm module recorded without
    running it, see :mod:`rfcheck.leaves`, its own parameters: read only their shape); ``inputs`` the states of the traced tensors among
    them (in argument order), ``outputs`` the tensor outputs.  Rules read these, fill
    ``info`` (kernel, stride, kind ...) and return the output state(s)."""

    def __init__(self, name: str, op: str, args: tuple, kwargs: dict, tracked: list[torch.Tensor],
                 inputs: list[TensorState], input_names: list[str], outputs: list[torch.Tensor],
                 module: Optional[torch.nn.Module] = None):
        self.name, self.op, self.args, self.kwargs = name, op, args, kwargs
        self.tracked, self.inputs, self.input_names, self.outputs = tracked, inputs, input_names, outputs
        self.module = module
        self.index = -1  # the index the node will get; global reductions are recorded by it
        self.info: dict[str, Any] = {}
        self.macs = 0
        self.exact = True
        self.unknown = False
        self.is_global = False
        self.notes: list[str] = []
        self.warnings: list[Diagnostic] = []

    # -- reading arguments -------------------------------------------------------------
    @property
    def data(self) -> torch.Tensor:
        return self.tracked[0]

    @property
    def state(self) -> TensorState:
        return self.inputs[0]

    @property
    def out(self) -> torch.Tensor:
        return self.outputs[0]

    def bind(self, names: Sequence[str], **defaults: Any) -> dict[str, Any]:
        bound = dict(defaults)
        bound.update(zip(names, self.args))
        bound.update(self.kwargs)
        return bound

    # -- building results --------------------------------------------------------------
    def note(self, text: str, exact: bool = True, code: Optional[str] = None) -> None:
        """A note on the layer; one with ``exact=False`` marks the values from here on not exact and,
        where this op is the first not-exact one on its path (its inputs are exact), is also a coded
        diagnostic: ``code``, by default RF105 (untraceable-layout) for a shape op, else RF104."""
        self.notes.append(text)
        if not exact:
            if all(st.exact for st in self.inputs):
                code = code or ("RF105" if self.info.get("kind") in _LAYOUT_KINDS else "RF104")
                if not any(w.code == code for w in self.warnings):
                    self.warn(code, f"not exact at {self.name}: {text} ({self.op.strip('_')}); the values that "
                                    "depend on it are marked not exact")
            self.exact = False

    def warn(self, code: str, message: str) -> None:
        """A coded diagnostic on this layer (see :mod:`rfcheck.diagnostics`; it does not change
        exactness by itself)."""
        w = Diagnostic.of(code, self.name, message)
        if w not in self.warnings:
            self.warnings.append(w)

    def window(self, windows: dict[int, Envelope], out: Optional[torch.Tensor] = None,
               state: Optional[TensorState] = None, collapse_if_whole: bool = False,
               dense: bool = True, per_channel: bool = True) -> TensorState:
        """Apply a sliding window per tensor dim (negative dims allowed) to the input state.
        With ``collapse_if_whole`` a window that yields one unit covering the whole map is a
        global reduction (pooling to 1)."""
        out = self.out if out is None else out
        st = self.state if state is None else state
        dims = list(st.dims)
        geo = self._windowed(st.geo, dims, windows, out, collapse_if_whole, dense)
        parts = None
        if st.parts is not None and per_channel:  # every channel gets the same window
            parts = Parts(st.parts.dim, st.parts.bounds, st.parts.mapped(
                lambda g: self._windowed(g, dims, windows, out, collapse_if_whole, dense, record=False)))
        return TensorState(tuple(dims), geo, st.exact and self.exact, parts=parts, lost=st.lost)

    def _windowed(self, geo0: dict[int, AxisGeo], dims: list[Dim], windows: dict[int, Envelope],
                  out: torch.Tensor, collapse_if_whole: bool, dense: bool,
                  record: bool = True) -> dict[int, AxisGeo]:
        geo = dict(geo0)
        for j, w in windows.items():
            j = j % len(dims)
            d = dims[j]
            if d.kind == SPATIAL:
                ax = d.axis
                g = geo[ax]
                n_out = out.shape[j]
                if collapse_if_whole and n_out == 1 and dense:
                    iv = w.at(0)
                    if iv[0] <= 0 and iv[1] >= g.size - 1:
                        geo[ax] = g.collapse(self.index)
                        if record:
                            self.is_global = True
                        continue
                    if record:
                        self.info.setdefault("partial_global", []).append(
                            (ax, iv[1] - max(iv[0], 0) + 1, g.size))
                geo[ax] = g.apply(w, n_out)
            elif d.axes and record and not (w.period == 1 and w.shift == 1 and w.lo == (0,) and w.hi == (0,)):
                # (a 1-wide, stride-1 window reads each position alone, whatever the dim holds)
                self.note(f"window over a {d.kind} dim holding spatial axes {sorted(d.axes)} is not modelled",
                          exact=False, code="RF105")
        return geo

    def sliding(self, kernel: Sequence[int], stride: Optional[Sequence[int]] = None,
                padding: Optional[Sequence[int]] = None, dilation: Optional[Sequence[int]] = None) -> TensorState:
        """Convenience for user rules: a conv/pool window on the last len(kernel) dims."""
        n = len(kernel)
        stride = stride or (1,) * n
        padding = padding or (0,) * n
        dilation = dilation or (1,) * n
        return self.window({i - n: sliding(kernel[i], stride[i], padding[i], dilation[i]) for i in range(n)})

    def merge(self, out: Optional[torch.Tensor] = None, parts: bool = True) -> TensorState:
        """Pointwise op over all traced inputs, broadcast to the output shape; ``parts=False``
        leaves the channel provenance to the caller (a concat builds its own)."""
        out = self.out if out is None else out
        if len(self.tracked) == 1 and self.tracked[0].shape == out.shape:  # the common unary case
            st = self.inputs[0]
            return TensorState(st.dims, dict(st.geo), st.exact and self.exact, parts=st.parts, lost=st.lost)
        n = out.ndim
        dims: list[Dim] = []
        for j in range(n):
            chosen, full = NO_AXES, False
            for t, st in zip(self.tracked, self.inputs):
                k = j - (n - t.ndim)
                if k < 0 or not st.dims[k].axes:
                    continue
                is_full = t.shape[k] == out.shape[j]
                if chosen is NO_AXES or (is_full and not full):
                    chosen, full = st.dims[k], is_full
            dims.append(chosen)
        geo, exact = self._merged_geo([st.geo for st in self.inputs], dims, out)
        exact = exact and all(st.exact for st in self.inputs)
        if not parts:
            return TensorState(tuple(dims), geo, exact and self.exact)
        parts_, lost = self._merged_parts(dims, out)
        return TensorState(tuple(dims), geo, exact and self.exact, parts=parts_, lost=lost)

    def _merged_parts(self, dims: list[Dim], out: torch.Tensor) -> tuple[Optional[Parts], Optional[str]]:
        """The channel provenance of a pointwise merge: per channel range, the merge of what
        each input holds there (an input without parts, or broadcast along the dim, holds its
        own geometry everywhere)."""
        lost = next((st.lost for st in self.inputs if st.lost), None)
        with_parts = [(t, st) for t, st in zip(self.tracked, self.inputs) if st.parts is not None]
        if not with_parts:
            return None, lost
        pd = with_parts[0][1].parts.dim
        if any(t.ndim != out.ndim or st.parts.dim != pd for t, st in with_parts):
            return None, lost or self.name
        bounds = sorted({b for _, st in with_parts for b in st.parts.bounds})
        pieces = []
        done: dict[tuple[int, ...], dict[int, AxisGeo]] = {}  # (each distinct combination once)
        for lo, hi in zip(bounds, bounds[1:]):
            geos = []
            for st in self.inputs:
                if st.parts is None:
                    geos.append(st.geo)
                else:
                    geos.append(st.parts.geos[bisect_right(st.parts.bounds, lo) - 1])
            key = tuple(map(id, geos))
            if key not in done:
                done[key] = self._merged_geo(geos, dims, out, warn=False)[0]
            pieces.append((hi - lo, done[key]))
        return Parts.build(pd, pieces), lost

    def union_geo(self, geos: Sequence[dict[int, AxisGeo]], dims: Sequence[Dim]) -> dict[int, AxisGeo]:
        """The geometry of channels that hold these geometries, together (a unit summed over them;
        each distinct one counted once, one alone is itself); no merge warnings: they are channels
        of one tensor, not branches."""
        distinct = list({id(g): g for g in geos}.values())
        if len(distinct) == 1:
            return distinct[0]
        return self._merged_geo(distinct, list(dims), self.out, warn=False)[0]

    def _merged_geo(self, geos: list[dict[int, AxisGeo]], dims: list[Dim], out: torch.Tensor,
                    warn: bool = True) -> tuple[dict[int, AxisGeo], bool]:
        branches: dict[int, list[tuple[str, AxisGeo]]] = {}
        names = self.input_names if len(self.input_names) == len(geos) else [self.name] * len(geos)
        for nm, g0 in zip(names, geos):
            for ax, g in g0.items():
                branches.setdefault(ax, []).append((nm, g))
        geo: dict[int, AxisGeo] = {}
        exact = True
        for ax, lst in branches.items():
            if len(lst) == 1:
                geo[ax] = lst[0][1]
                continue
            size = next((out.shape[j] for j, d in enumerate(dims) if d.kind == SPATIAL and d.axis == ax),
                        max(g.size for _, g in lst))
            g, warns, ok = merge_axis(lst, size, self.name)
            geo[ax] = g
            exact = exact and ok
            for w in warns if warn else ():
                if w not in self.warnings:
                    self.warnings.append(w)
            if g.gated and not any(b.gated for _, b in lst if b.global_at is None):
                self.info["gating"] = True
        # a dim that only carried a broadcast (size-1) spatial dim may have grown; keep sizes right
        for j, d in enumerate(dims):
            if d.kind == SPATIAL:
                g = geo.get(d.axis)
                if g is not None and g.global_at is None and g.size != out.shape[j]:
                    geo[d.axis] = replace(g, size=out.shape[j])
        return geo, exact

    def collapse(self, dims: Iterable[int], keep: bool, state: Optional[TensorState] = None,
                 kind: str = "other", mix: bool = False) -> TensorState:
        """A reduction or mixing over tensor dims: the spatial axes they hold become global, unless
        the positions survive (another output dim holds the axis, the dim keeps its length, or
        ``mix``): then every unit sees every unit of the axis.  Where the dims hold only some
        pieces of an axis (a window of a partition), every unit sees the units that agree with it
        on the other pieces (:mod:`rfcheck.pieces`)."""
        st = self.state if state is None else state
        nd = len(st.dims)
        red = sorted({d % nd for d in dims})
        lengths = {j: self._same_length(st, j, keep, state is None, mix) for j in red}
        geo, rebased = self._collapsed(st, st.geo, red, lengths, record=True)
        if self.is_global:
            self.info["global_kind"] = kind
        new_dims = []
        for j, d in enumerate(st.dims):
            if j in red and not keep:
                continue
            if d.pieces and j in red and not lengths[j]:
                d = NO_AXES  # (kept as a dim of length 1)
            elif d.pieces and rebased and any(p.axis in rebased for p in d.pieces):
                d = pc.classify(pc.redivide(d.pieces, rebased), {a: g.size for a, g in geo.items()})
            new_dims.append(d)
        parts, lost = None, st.lost
        if st.parts is not None:
            if st.parts.dim in red:  # a reduction or mixing over the channels: they are one now
                self.info["mixes_channels"] = True
                lost = None
            elif keep or st.parts.dim < min(red):
                pdim = st.parts.dim if keep else st.parts.dim - sum(1 for j in red if j < st.parts.dim)
                parts = Parts(pdim, st.parts.bounds, st.parts.mapped(
                    lambda g: self._collapsed(st, g, red, lengths, record=False)[0]))
            else:
                lost = lost or self.name
        elif lost and any(not st.dims[j].axes for j in red):
            lost = None  # reduced over a non-spatial dim: the channels were mixed
            self.info["mixes_channels"] = True
        return TensorState(tuple(new_dims), geo, st.exact and self.exact, parts=parts, lost=lost)

    def _same_length(self, st: TensorState, j: int, keep: bool, own: bool, mix: bool) -> bool:
        """The dim keeps its positions (softmax over tokens, a Linear over tokens, ``mix``)."""
        x, nd = self.data, len(st.dims)
        return mix or (keep and own and x.ndim == nd and self.out.ndim == nd and x.shape[j] == self.out.shape[j] > 1)

    def _collapsed(self, st: TensorState, geo0: dict[int, AxisGeo], red: list[int], lengths: dict[int, bool],
                   record: bool = True) -> tuple[dict[int, AxisGeo], dict[int, int]]:
        geo = dict(geo0)
        done, rebased = self._mixed_pieces(st, geo, red, lengths, record) if any(
            st.dims[j].pieces for j in red) else ((), {})
        # an axis still held by an output dim (the query tokens of attention) or by a dim that
        # keeps its length (softmax over positions, a Linear over tokens) is mixed, not reduced
        held = {ax for j, d in enumerate(st.dims) if j not in red for ax in d.axes}
        for j in red:
            d = st.dims[j]
            if d.kind == PART and not d.pieces and record:
                self.note("reduction over part of a spatial axis (after a view split it) is not modelled; "
                          "treated as global", exact=False, code="RF105")
            for ax in d.axes:
                if ax in done:
                    continue
                if geo[ax].global_at is None and (ax in held or lengths[j]) and (d.kind != PART or d.pieces):
                    if record:
                        self.info["mixing"] = True
                    geo[ax] = geo[ax].mix()
                    continue
                if geo[ax].global_at is None and record:
                    self.is_global = True
                geo[ax] = geo[ax].collapse(self.index)
        return geo, rebased

    def _mixed_pieces(self, st: TensorState, geo: dict[int, AxisGeo], red: list[int], lengths: dict[int, bool],
                      record: bool) -> tuple[set[int], dict[int, int]]:
        """The axes of which the reduced dims hold some pieces, not all (changed in ``geo``), and
        the step of each axis whose pieces left the tensor (axis -> step)."""
        sizes = {a: g.size for a, g in geo.items() if g.global_at is None}
        done: set[int] = set()
        rebased: dict[int, int] = {}
        for a in sorted({p.axis for j in red for p in st.dims[j].pieces if p.axis >= 0}):
            order = pc.axis_pieces(st.dims, sizes, a) if a in sizes else None
            mixed = {p for j in red for p in pc.dim_pieces(st.dims[j], sizes) or () if p.axis == a}
            if order is not None and set(order) <= mixed:
                continue  # the whole axis: as for any dim
            env = pc.mix_envelope(order, mixed) if order is not None else None
            left = {p for j, d in enumerate(st.dims) if j not in red or lengths[j]
                    for p in pc.dim_pieces(d, sizes) or () if p.axis == a}
            gone = set(order or ()) - left
            base = pc.rebase(order, {p: 0 for p in gone}) if env is not None and gone else None
            if env is None or (gone and base is None):
                if record:  # the whole axis is mixed or reduced below: more than the op reads
                    self.note(f"mixing or reducing pieces of spatial axis {a} that rfcheck cannot follow (after a "
                              "view split it); treated as the whole axis, an upper bound", exact=False,
                              code="RF105")
                continue
            g = replace(geo[a].apply(env, sizes[a]), mixed=True)
            if gone:
                window, size, step = base
                g = g.apply(window, size)
                rebased[a] = step
            geo[a] = g
            done.add(a)
            if record:
                self.info["mixing"] = True
        return done, rebased

    def kept_channels(self, states: list[TensorState]) -> list[TensorState]:
        """Channel provenance a rule did not carry is lost (a later channel slice is then not
        exact), unless the op mixed the channels, which makes them one."""
        src = next((st for st in self.inputs if st.parts is not None or st.lost), None)
        if src is None or self.info.get("mixes_channels"):
            return states
        return [st if st.parts is not None or st.lost else replace(st, lost=src.lost or self.name)
                for st in states]

    def with_dims(self, dims: Sequence[Dim], state: Optional[TensorState] = None) -> TensorState:
        st = self.state if state is None else state
        return TensorState(tuple(dims), dict(st.geo), st.exact and self.exact)

    def unknown_result(self, reason: str) -> list[TensorState]:
        """No rule: keep going with a guess that is marked as not exact, never silently."""
        self.unknown = True
        self.exact = False
        self.notes.append(reason)
        results = []
        for out in self.outputs:
            same_rank = [st for t, st in zip(self.tracked, self.inputs) if t.ndim == out.ndim]
            if same_rank and all(t.shape == out.shape for t in self.tracked if t.ndim == out.ndim):
                st = self.merge(out)
            elif same_rank:
                base_t = next(t for t in self.tracked if t.ndim == out.ndim)
                st0 = same_rank[0]
                from .geometry import adaptive
                wins = {j: adaptive(base_t.shape[j], out.shape[j]) for j, d in enumerate(st0.dims)
                        if d.kind == SPATIAL and base_t.shape[j] != out.shape[j] and out.shape[j] > 0}
                st = self.window(wins, out=out, state=st0)
            else:
                st0 = self.inputs[0]
                st = TensorState(tuple(NO_AXES for _ in out.shape), dict(st0.geo), False)
            st.exact = False
            results.append(st)
        return results


def tup(v: Any, n: int) -> tuple:
    if isinstance(v, (list, tuple, torch.Size)):
        v = tuple(v)
        return v if len(v) == n else (v * n if len(v) == 1 else v)
    return (v,) * n
