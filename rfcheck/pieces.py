"""Spatial axes split into pieces by view/reshape: the window partitions of Swin and MaxViT,
space-to-depth (TResNet), patch merging, pooling written as a view and a mean.

The geometry of an axis stays in the coordinates of the whole axis while its pieces sit in
different dims (the windows folded into the batch, the positions inside a window as tokens):
unit ``p`` of the axis is ``sum(index_along_piece * piece.stride)``.  An op that mixes some pieces
of an axis and keeps the others (attention within a window) reads, for each unit, every unit
that agrees with it on the kept pieces: :func:`mix_envelope`.  When pieces leave the tensor (a
mean over them, a Linear over a dim that holds them with channels), the axis is indexed by the
pieces left: :func:`rebase`.  Where the pieces cannot be followed the callers fall back to the
rules that mark the values not exact.
"""
from __future__ import annotations

from bisect import bisect_right
from itertools import chain, compress, count, islice, repeat
from math import prod
from operator import ne, sub
from typing import Iterable, Optional, Sequence

from .geometry import Envelope
from .state import BATCH, CHANNEL, FLAT, NO_AXES, PART, PARTS, SPATIAL, Dim, Parts, Piece

#: a mixing envelope has one phase per unit of its period; past this the pieces are not followed
MAX_PERIOD = 4096


def pieces_of(d: Dim, j: int, n: int, sizes: dict[int, int], parts_dim: Optional[int] = None
              ) -> Optional[list[Piece]]:
    """The pieces of tensor dim ``j`` (length ``n``) in row-major order; None where unknown.
    ``parts_dim``: the dim whose channels carry provenance (their pieces are ``PARTS``)."""
    if n == 1:
        return []
    if d.pieces:
        return list(d.pieces) if prod(p.count for p in d.pieces) == n else None
    if d.kind == SPATIAL:
        a = d.axis
        return [Piece(a, 1, n)] if sizes.get(a) == n else None
    if not d.axes:
        return [Piece(PARTS if j == parts_dim else BATCH if j == 0 else CHANNEL, 1, n)]
    return None


def _normalize(ps: list[Piece]) -> tuple[Piece, ...]:
    """Adjacent pieces that index one stretch of an axis become one piece."""
    out: list[Piece] = []
    for p in ps:
        ordered = p.axis >= 0 or p.axis == PARTS  # (a coordinate: merged only where contiguous)
        if out and out[-1].axis == p.axis and (not ordered or out[-1].stride == p.stride * p.count):
            q = out[-1]
            out[-1] = Piece(p.axis, p.stride if ordered else 1, q.count * p.count)
        else:
            out.append(p)
    return tuple(out)


def split(flat: list[Piece], shape: Sequence[int]) -> Optional[list[tuple[Piece, ...]]]:
    """Row-major: the pieces of each dim of ``shape`` from the pieces of the whole tensor."""
    queue = list(flat)
    out = []
    for n in shape:
        got: list[Piece] = []
        need = n
        while need > 1:
            if not queue:
                return None
            p = queue.pop(0)
            if need % p.count == 0:
                got.append(p)
                need //= p.count
            elif p.count % need == 0:
                inner = p.count // need
                got.append(Piece(p.axis, p.stride * inner, need))
                queue.insert(0, Piece(p.axis, p.stride, inner))
                need = 1
            else:
                return None
        out.append(_normalize(got))
    return None if queue else out


def dim_pieces(d: Dim, sizes: dict[int, int]) -> Optional[list[Piece]]:
    """The spatial pieces a dim holds (a plain spatial dim: its whole axis); None: unknown."""
    if d.kind == SPATIAL:
        a = d.axis
        return [Piece(a, 1, sizes[a])] if a in sizes else None
    if d.pieces:
        return [p for p in d.pieces if p.axis >= 0]
    return [] if not d.axes else None


def axis_pieces(dims: Iterable[Dim], sizes: dict[int, int], axis: int) -> Optional[list[Piece]]:
    """The distinct pieces of ``axis`` over the tensor, coarsest first, when they tile the axis."""
    found: set[Piece] = set()
    for d in dims:
        if axis not in d.axes:
            continue
        ps = dim_pieces(d, sizes)
        if ps is None:
            return None
        found.update(p for p in ps if p.axis == axis)
    order = sorted(found, key=lambda p: -p.stride)
    if not order or order[-1].stride != 1 or order[0].stride * order[0].count != sizes.get(axis):
        return None
    if any(a.stride != b.stride * b.count for a, b in zip(order, order[1:])):
        return None
    return order


def mix_envelope(order: list[Piece], mixed: set[Piece]) -> Optional[Envelope]:
    """Unit p reads every unit that agrees with it on the pieces not in ``mixed``: a window
    within each window of a partition, or one unit per window, ``step`` apart (grid attention).
    None unless the mixed pieces are neighbours in ``order`` (else the units read are no
    arithmetic progression) or the period is past :data:`MAX_PERIOD`."""
    where = sorted(order.index(p) for p in mixed)
    if where != list(range(where[0], where[0] + len(where))):
        return None
    top, fine = order[where[0]], order[where[-1]]
    period = top.stride * top.count
    if period > MAX_PERIOD:
        return None
    span = sum((m.count - 1) * m.stride for m in mixed)
    lo = tuple(r - sum(((r // m.stride) % m.count) * m.stride for m in mixed) for r in range(period))
    return Envelope(period, period, lo, tuple(x + span for x in lo), fine.stride)


def rebase(order: list[Piece], gone: dict[Piece, int]) -> Optional[tuple[Envelope, int, int]]:
    """The axis once the pieces ``gone`` (each at a fixed index) leave the tensor: (the window
    from the new units to the old ones, the new size, the divisor of the strides left), or None
    unless they are the finest or the coarsest pieces."""
    k = len(gone)
    offset = sum(i * p.stride for p, i in gone.items())
    if set(order[len(order) - k:]) == set(gone):
        step = prod(p.count for p in gone)
        size = prod(p.count for p in order[:len(order) - k])
        return Envelope(1, step, (offset,), (offset,)), size, step
    if set(order[:k]) == set(gone):
        size = prod(p.count for p in order[k:])
        return Envelope(1, 1, (offset,), (offset,)), size, 1
    return None


def classify(ps: tuple[Piece, ...], sizes: dict[int, int]) -> Dim:
    """The Dim that holds pieces ``ps`` (a whole axis alone is a plain spatial dim)."""
    spatial = [p for p in ps if p.axis >= 0]
    if not spatial:
        return Dim(pieces=tuple(ps)) if any(p.axis == PARTS for p in ps) else NO_AXES
    axes = frozenset(p.axis for p in spatial)
    if len(ps) == 1 and ps[0].stride == 1 and ps[0].count == sizes.get(ps[0].axis):
        return Dim(axes, SPATIAL)
    # whole axes flattened (tokens; with channels, a classifier head's flatten(1)) are "flat"
    whole = all(p.stride == 1 and p.count == sizes.get(p.axis) for p in spatial)
    return Dim(axes, FLAT if whole else PART, tuple(ps))


def redivide(ps: Sequence[Piece], rebased: dict[int, int], absorbed: frozenset = frozenset()) -> tuple[Piece, ...]:
    """The pieces after :func:`rebase`: the strides of each rebased axis divided by its step
    (``rebased``: axis -> step), the ``absorbed`` pieces turned into channels."""
    out = []
    for p in ps:
        if p in absorbed:
            out.append(Piece(CHANNEL, 1, p.count))
        elif p.axis in rebased:
            out.append(Piece(p.axis, p.stride // rebased[p.axis], p.count))
        else:
            out.append(p)
    return _normalize(out)


def has_channels(ps: Sequence[Piece]) -> bool:
    return any(p.axis in (CHANNEL, PARTS) for p in ps)


def has_batch(ps: Sequence[Piece]) -> bool:
    return any(p.axis == BATCH for p in ps)


def regrouped_parts(parts: Parts, dims: Sequence[Dim]) -> tuple[Optional[Parts], bool]:
    """The channel provenance after a view: (Parts, followed).  The PARTS pieces in one dim, in
    any order (a channel shuffle put back), give each of its channels its old channel's geometry;
    spread over several dims (mid-shuffle) they are kept as they were (``dim`` -1)."""
    holding = [j for j, d in enumerate(dims) if any(p.axis == PARTS for p in d.pieces)]
    if len(holding) > 1:
        return Parts(-1, parts.bounds, parts.geos), True
    if len(holding) != 1:
        return None, False
    j = holding[0]
    ps = dims[j].pieces
    if any(p.axis != PARTS for p in ps):
        return None, False
    olds = [0]
    for p in ps:  # row-major: the first piece varies slowest
        steps = range(0, p.stride * p.count, p.stride)
        olds = [o + s for o in olds for s in steps]
    # each old channel's range, then runs of consecutive channels from one range (C-level passes:
    # a shuffle regroups every channel of every block)
    b = parts.bounds
    owner = list(chain.from_iterable(map(repeat, range(len(parts.geos)), map(sub, b[1:], b[:-1]))))
    ks = list(map(owner.__getitem__, olds))
    starts = [0, *compress(count(1), map(ne, ks, islice(ks, 1, None)))]
    runs = map(sub, [*starts[1:], len(ks)], starts)
    return Parts.build(j, list(zip(runs, map(parts.geos.__getitem__, map(ks.__getitem__, starts))))), True


def sliced_parts(parts: Parts, dims: Sequence[Dim], j: int, start: int, stop: int, step: int) -> Optional[list[dict]]:
    """The distinct geometries of the channels a slice ``start:stop:step`` of dim ``j`` keeps, when
    the channels are split over several dims (``parts.dim`` -1); None unless dim ``j`` holds
    only channel pieces."""
    mine = list(dims[j].pieces)
    if not mine or any(p.axis != PARTS for p in mine):
        return None
    others = [p for k, d in enumerate(dims) if k != j for p in d.pieces if p.axis == PARTS]

    def offsets(ps: list[Piece], indices) -> list[int]:
        out = []
        for flat in indices:
            off, rest = 0, flat
            for p in reversed(ps):
                off += (rest % p.count) * p.stride
                rest //= p.count
            out.append(off)
        return out
    olds = {a + b for a in offsets(mine, range(start, stop, step)) for b in offsets(others, range(prod(
        p.count for p in others)))}
    found = {bisect_right(parts.bounds, old) - 1 for old in olds}
    return [parts.geos[i] for i in sorted(found)]
