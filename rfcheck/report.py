"""The one typed, versioned result of an analysis.  Table, JSON and check messages are views
of it."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Optional

from .diagnostics import Diagnostic

#: 2: ``warnings`` holds {"code", "severity", "layer", "message"} objects (1: plain strings)
SCHEMA_VERSION = 2

COUNT_KEYS = ("depthwise", "depthwise_separable", "dilated", "transposed", "max_pool", "gap", "linear")


def number(v: Optional[Fraction]) -> Any:
    """A Fraction as a JSON number: int when whole, float otherwise (0.5 for a half)."""
    if v is None:
        return None
    v = Fraction(v)
    return v.numerator if v.denominator == 1 else float(v)


@dataclass
class Layer:
    """One traced op or module call, in execution order.

    ``rf`` is the largest RF over paths and output positions, per spatial axis of the input;
    ``rf_min`` the smallest (shortest path, e.g. a skip connection; least favourable phase
    after a transposed conv); ``jump`` the distance in input pixels between the RF centres of
    adjacent output units (their mean where it varies: ``non_uniform``); ``start`` the input coordinate of the centre of output unit 0's RF."""
    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    rf: tuple[int, ...]
    rf_min: tuple[int, ...]
    jump: tuple[Fraction, ...]
    start: tuple[Optional[Fraction], ...]
    is_global: bool = False
    exact: bool = True
    unknown: bool = False
    phase_dependent: bool = False
    #: neighbouring units' RF centres are not evenly spaced: ``jump`` is their mean spacing,
    #: ``jump_min``/``jump_max`` the smallest and largest
    non_uniform: bool = False
    jump_min: tuple[Fraction, ...] = ()
    jump_max: tuple[Fraction, ...] = ()
    kernel: Optional[tuple[int, ...]] = None
    stride: Optional[tuple[int, ...]] = None
    padding: Optional[tuple[int, ...]] = None
    dilation: Optional[tuple[int, ...]] = None
    groups: Optional[int] = None
    inputs: list[str] = field(default_factory=list)
    shared_params: int = 0
    notes: list[str] = field(default_factory=list)
    kind: Optional[str] = None
    #: for a global reduction: "avg", "max", "linear", ... (what kind of pooling it is)
    global_kind: Optional[str] = None

    @property
    def effective_padding(self) -> tuple[Optional[Fraction], ...]:
        """The Distill article's effective padding: (r - 1)/2 - start."""
        return tuple(None if s is None else Fraction(r - 1, 2) - s for r, s in zip(self.rf, self.start))

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name, "type": self.type, "output_shape": list(self.output_shape),
            "params": self.params, "macs": self.macs, "rf": list(self.rf), "rf_min": list(self.rf_min),
            "jump": [number(j) for j in self.jump], "start": [number(s) for s in self.start],
            "global": self.is_global, "exact": self.exact, "unknown": self.unknown,
            "phase_dependent": self.phase_dependent, "non_uniform": self.non_uniform, "inputs": list(self.inputs),
        }
        if self.non_uniform:
            d["jump_min"] = [number(j) for j in self.jump_min]
            d["jump_max"] = [number(j) for j in self.jump_max]
        for key in ("kernel", "stride", "padding", "dilation"):
            v = getattr(self, key)
            if v is not None:
                d[key] = list(v)
        if self.groups is not None:
            d["groups"] = self.groups
        if self.shared_params:
            d["shared_params"] = self.shared_params
        if self.notes:
            d["notes"] = list(self.notes)
        if self.global_kind:
            d["global_kind"] = self.global_kind
        return d


@dataclass(frozen=True)
class OutputRF:
    """One output of the model (a backbone returns several feature maps) and its RF."""
    layer: str          # the layer that produced the output
    at: str             # where its RF is taken (the input of its global pool, or the layer)
    size: tuple[int, ...]
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "at": self.at, "size": list(self.size), "exact": self.exact}


@dataclass
class ModelRF:
    """The model's RF: taken at the input of the global reduction that feeds the head (the
    last point with spatial extent), or at the last spatial output, or at ``--rf-at``; with
    several outputs, at the one with the largest RF (``outputs`` lists them all)."""
    size: tuple[int, ...]
    at: str
    exact: bool
    min: tuple[int, ...] = ()
    jump: tuple[Fraction, ...] = ()
    with_global: Optional[tuple[int, ...]] = None
    global_layer: Optional[str] = None
    gated: bool = False
    outputs: list[OutputRF] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "at": self.at, "exact": self.exact, "min": list(self.min),
                "jump": [number(j) for j in self.jump],
                "size_with_global": None if self.with_global is None else list(self.with_global),
                "global_layer": self.global_layer, "gated": self.gated,
                "outputs": [o.to_dict() for o in self.outputs]}


@dataclass
class Block:
    """A direct child module of the model (C1, C2, ...), at the end of its forward."""
    name: str
    type: str
    layer: str                     # the layer that produced the block's output
    output_shape: tuple[int, ...]
    rf: tuple[int, ...]
    jump: tuple[Fraction, ...]
    params: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "layer": self.layer, "output_shape": list(self.output_shape),
                "rf": list(self.rf), "jump": [number(j) for j in self.jump], "params": self.params}


@dataclass
class Params:
    total: int
    trainable: int
    unused: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "trainable": self.trainable, "unused": list(self.unused)}


@dataclass
class Report:
    model: str
    input_size: tuple[int, ...]
    params: Params
    rf: ModelRF
    layers: list[Layer]
    counts: dict[str, int]
    warnings: list[Diagnostic]
    macs: int = 0
    exact: bool = True
    blocks: list[Block] = field(default_factory=list)
    #: the layers behind each count ("depthwise_separable": ["dw+pw", ...])
    count_layers: dict[str, list[str]] = field(default_factory=dict)
    #: conv/pool layers that run after every unit already sees the whole input
    unproductive: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    #: module call name -> the layer that produced its output (how ``--rf-at`` and claims resolve a
    #: module name); not in the JSON
    module_outputs: dict[str, str] = field(default_factory=dict)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(l.name for l in self.layers)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "model": self.model,
            "input_size": list(self.input_size),
            "params": self.params.to_dict(),
            "rf": self.rf.to_dict(),
            "macs": self.macs,
            "exact": self.exact,
            "layers": [l.to_dict() for l in self.layers],
            "counts": dict(self.counts),
            "count_layers": {k: list(v) for k, v in self.count_layers.items()},
            "blocks": [b.to_dict() for b in self.blocks],
            "unproductive": list(self.unproductive),
            "warnings": [w.to_dict() for w in self.warnings],
        }

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __repr__(self) -> str:
        rf = "x".join(map(str, self.rf.size)) or "-"
        return (f"<Report {self.model} {'x'.join(map(str, self.input_size))}: RF {rf} "
                f"{'exact' if self.rf.exact else 'not exact'}, {self.params.total:,} params, {len(self.layers)} layers>")
