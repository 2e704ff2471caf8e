"""What rfcheck knows about one traced tensor: which of its dims carry which spatial axes,
and the geometry of every spatial axis of the model input it depends on."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .geometry import AxisGeo

# Dim kinds: "none" (batch, channels, features), "spatial" (one whole spatial axis),
# "flat" (whole spatial axes merged with others, e.g. after flatten), "part" (a piece of
# an axis after a view split it).
NONE, SPATIAL, FLAT, PART = "none", "spatial", "flat", "part"


@dataclass(frozen=True)
class Dim:
    axes: frozenset = frozenset()
    kind: str = NONE

    @property
    def axis(self) -> Optional[int]:
        """The axis of a proper spatial dim, else None."""
        return next(iter(self.axes)) if self.kind == SPATIAL else None


NO_AXES = Dim()


@dataclass
class TensorState:
    dims: tuple[Dim, ...]
    geo: dict[int, AxisGeo]
    exact: bool = True
    notes: list[str] = field(default_factory=list)
    #: after pixel_unshuffle(r), through per-element ops only: (r, the geometry before it), so
    #: that pixel_shuffle(r) restores it exactly (each channel still holds one input phase)
    subpixel: Optional[tuple[int, dict[int, AxisGeo]]] = None

    @classmethod
    def for_input(cls, shape: tuple[int, ...]) -> "TensorState":
        """An N, C, *spatial input: every dim after the channel dim is a spatial axis."""
        dims = [NO_AXES, NO_AXES] + [Dim(frozenset([k]), SPATIAL) for k in range(len(shape) - 2)]
        geo = {k: AxisGeo.input(shape[k + 2]) for k in range(len(shape) - 2)}
        return cls(tuple(dims[: len(shape)]), geo)
