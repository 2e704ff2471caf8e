"""What rfcheck knows about one traced tensor: which of its dims carry which spatial axes,
and the geometry of every spatial axis of the model input it depends on."""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Optional

from .geometry import AxisGeo, cached_property

# Dim kinds: "none" (batch, channels, features), "spatial" (one whole spatial axis),
# "flat" (whole spatial axes merged with others, e.g. after flatten), "part" (a piece of
# an axis after a view split it).
NONE, SPATIAL, FLAT, PART = "none", "spatial", "flat", "part"
#: the hidden layer of a token MLP (MLP-Mixer's Linear from 196 tokens to 256): every entry has
#: seen every position of its axes, in no positional order
MIXED = "mixed"


@dataclass(frozen=True)
class Piece:
    """Part of a tensor dim's index: along ``axis`` (a spatial axis of the model input, or
    :data:`BATCH` / :data:`CHANNEL` for the factors without spatial meaning) the dim's index steps
    ``stride`` units of the axis, ``count`` times.  A view that splits an axis of 56 into windows of
    7 gives the pieces (axis, 7, 8) and (axis, 1, 7); see :mod:`rfcheck.pieces`."""
    axis: int
    stride: int
    count: int


BATCH, CHANNEL = -1, -2
#: the channels of a concat whose provenance (Parts) is followed through views: a channel shuffle
#: splits them into two dims and back in another order
PARTS = -3


@dataclass(frozen=True)
class Dim:
    axes: frozenset = frozenset()
    kind: str = NONE
    #: for "part" and "flat" dims, the pieces of axes they hold in row-major order (first the
    #: slowest); empty where they are not known (then what follows is not exact)
    pieces: tuple = ()

    @cached_property
    def axis(self) -> Optional[int]:
        """The axis of a proper spatial dim, else None (remembered: a dim object is shared by every
        layer that keeps it, and each window reads it)."""
        return next(iter(self.axes)) if self.kind == SPATIAL else None


NO_AXES = Dim()


def _same_geo(a: dict[int, AxisGeo], b: dict[int, AxisGeo]) -> bool:
    """``a == b``, the RF tested first: the inputs of a concat mostly differ there, and the full
    comparison of frozen dataclasses builds tuples of every field (DenseNet's concats compare
    hundreds of neighbours)."""
    if a.keys() != b.keys():
        return False
    for k, x in a.items():
        y = b[k]
        if x is not y and (x.size != y.size or x.env.lo != y.env.lo or x.env.hi != y.env.hi):
            return False
    return a == b


@dataclass(frozen=True)
class Parts:
    """Channel provenance: along tensor dim ``dim`` (one without spatial axes, the channels of
    a concat), channels ``bounds[i] .. bounds[i+1]-1`` have the geometry ``geos[i]``; ``dim``
    -1: the channels are split over several dims by a view (their ``PARTS`` pieces say how).  The
    tensor's own ``geo`` is their union (right for a unit summed over channels); a slice of
    the channels needs the parts it keeps."""
    dim: int
    bounds: tuple[int, ...]
    geos: tuple[dict[int, AxisGeo], ...]

    def select(self, start: int, stop: int, step: int = 1) -> list[tuple[int, dict[int, AxisGeo]]]:
        """(count, geometry) of the kept channels, in order, for channels start:stop:step."""
        out: list[tuple[int, dict[int, AxisGeo]]] = []
        first = max(bisect_right(self.bounds, start) - 1, 0)  # (hundreds of ranges after a channel shuffle)
        for lo, hi, g in zip(self.bounds[first:], self.bounds[first + 1:], self.geos[first:]):
            if lo >= stop:
                break
            if step == 1:
                n = max(0, min(hi, stop) - max(lo, start))
            else:
                n = len(range(start + (-(lo - start) // step * -step if lo > start else 0), min(hi, stop), step))
            if n > 0:
                if out and out[-1][1] is g:
                    out[-1] = (out[-1][0] + n, g)
                else:
                    out.append((n, g))
        return out

    def sliced(self, start: int, stop: int, dim: int) -> tuple[Optional["Parts"], tuple[dict[int, AxisGeo], ...]]:
        """Channels start:stop (a chunk, a split, a narrow) as Parts along ``dim`` (None: they share
        one geometry) and the geometries they keep, in order: tuple slices, no pass per channel."""
        b = self.bounds
        first, end = max(bisect_right(b, start) - 1, 0), bisect_left(b, stop)
        geos = self.geos[first:end]
        if len(geos) <= 1:
            return None, geos
        return Parts(dim, (0, *[x - start for x in b[first + 1:end]], stop - start), geos), geos

    def mapped(self, fn) -> tuple[dict[int, AxisGeo], ...]:
        """``fn`` of each range's geometry, once per distinct one (a channel shuffle leaves
        hundreds of ranges that alternate between two geometries)."""
        done: dict[int, dict[int, AxisGeo]] = {}
        out = []
        for g in self.geos:
            r = done.get(id(g))
            if r is None:
                r = done[id(g)] = fn(g)
            out.append(r)
        return tuple(out)

    @staticmethod
    def build(dim: int, pieces: list[tuple[int, dict[int, AxisGeo]]]) -> Optional["Parts"]:
        """Parts from consecutive (count, geometry) pieces; None when every piece has the same
        geometry (then the tensor is homogeneous along the dim)."""
        counts: list[int] = []
        geos: list[dict[int, AxisGeo]] = []
        same: dict[tuple[int, int], bool] = {}  # (a shuffle alternates two geometries hundreds of times)

        def equal(a: dict[int, AxisGeo], b: dict[int, AxisGeo]) -> bool:
            key = (id(a), id(b))
            if key not in same:
                same[key] = _same_geo(a, b)
            return same[key]
        for n, g in pieces:
            if not n:
                continue
            if geos and (g is geos[-1] or equal(geos[-1], g)):
                counts[-1] += n
            else:
                counts.append(n)
                geos.append(g)
        if len(geos) <= 1:
            return None
        return Parts(dim, tuple(accumulate(counts, initial=0)), tuple(geos))


@dataclass
class TensorState:
    dims: tuple[Dim, ...]
    geo: dict[int, AxisGeo]
    exact: bool = True
    notes: list[str] = field(default_factory=list)
    #: after pixel_unshuffle(r), through per-element ops only: (r, the geometry before it), so
    #: that pixel_shuffle(r) restores it exactly (each channel still holds one input phase)
    subpixel: Optional[tuple[int, dict[int, AxisGeo]]] = None
    #: channel provenance after a concat of tensors with different geometry (see Parts)
    parts: Optional[Parts] = None
    #: where channels of different geometry were merged by an op that did not mix them (a
    #: reshape, an unknown op): which channel has which RF is no longer known, so a later
    #: slice of the channels cannot be exact
    lost: Optional[str] = None

    @classmethod
    def for_input(cls, shape: tuple[int, ...]) -> "TensorState":
        """An N, C, *spatial input: every dim after the channel dim is a spatial axis."""
        dims = [NO_AXES, NO_AXES] + [Dim(frozenset([k]), SPATIAL) for k in range(len(shape) - 2)]
        geo = {k: AxisGeo.input(shape[k + 2]) for k in range(len(shape) - 2)}
        return cls(tuple(dims[: len(shape)]), geo)
