"""Exact per-axis receptive-field geometry.

An :class:`Envelope` says, for every output index ``o`` of one axis, which interval of
*input* indices ``[lo(o), hi(o)]`` the unit depends on.  It is periodic:
``lo(o + period) = lo(o) + shift``, so the jump is ``shift / period`` (a fraction after
transposed convs or upsampling) and the receptive field may differ from phase to phase.
Composing envelopes is exact: the extremes of a window's taps are found within one period.

Coordinates are those of the input pixel centres (0, 1, 2, ...) on an unbounded input, the
convention of the Distill article and of all RF tools: padding does not shrink the RF.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from math import ceil, floor, gcd
from typing import Callable, Optional, Sequence

from .diagnostics import Diagnostic

Interval = Optional[tuple[int, int]]


_FRACTIONS: dict[tuple[int, int], Fraction] = {}


def shared_fraction(num: int, den: int) -> Fraction:
    """Fraction(num, den), shared: every layer's jump and RF centre is one, and most repeat."""
    key = (num, den)
    f = _FRACTIONS.get(key)
    if f is None:
        f = Fraction(num, den)
        if len(_FRACTIONS) < 65536:
            _FRACTIONS[key] = f
    return f


class cached_property:
    """functools.cached_property without its per-instance lock (Python < 3.12 takes an RLock
    on every first access, a third of an envelope's cost; envelopes are immutable anyway)."""

    def __init__(self, fn: Callable):
        self.fn, self.name = fn, fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


def _lcm(a: int, b: int) -> int:
    return a * b // gcd(a, b)


@dataclass(frozen=True, init=False)
class Envelope:
    period: int
    shift: int
    lo: tuple[Optional[int], ...]
    hi: tuple[Optional[int], ...]
    #: taps of a layer window are lo, lo+step, ..., hi (a dilated kernel reads every d-th input)
    step: int = 1
    #: the period is a table of the units that exist: a map resized again and again made the period
    #: grow past what is worth following (GhostNetV2's pooled-and-resized gates); a unit beyond them,
    #: which a padded window reads, is worked out on demand from ``src`` (the unbounded-input
    #: convention of every other envelope)
    table: bool = False
    #: how a table's units beyond the map are worked out when a window reads them: ("union", a, b)
    #: or ("compose", envelope, window)
    src: Optional[tuple] = field(default=None, compare=False, repr=False)

    def __init__(self, period: int, shift: int, lo: tuple, hi: tuple, step: int = 1, table: bool = False,
                 src: Optional[tuple] = None):
        # (the frozen dataclass's own __init__ sets each field through object.__setattr__: three
        # times the cost, and an analysis builds two envelopes per layer and axis)
        d = self.__dict__
        d["period"], d["shift"], d["lo"], d["hi"], d["step"], d["table"], d["src"] = (
            period, shift, lo, hi, step, table, src)

    # -- evaluation -----------------------------------------------------------------
    def at(self, o: int) -> Interval:
        q, r = divmod(o, self.period)
        if q and self.table and self.src is not None:
            return self._beyond(o)
        lo = self.lo[r]
        if lo is None:
            return None
        return lo + q * self.shift, self.hi[r] + q * self.shift

    def _beyond(self, o: int) -> Interval:
        """A table's unit past the map, from what the table was made of (so that a padded window
        reads there what the periodic envelopes it came from would give: the unbounded-input
        convention), remembered."""
        memo = self.__dict__.setdefault("_memo", {})
        if o in memo:
            return memo[o]
        kind, a, b = self.src
        if kind == "union":
            x, y = a.at(o), b.at(o)
            iv = x if y is None else y if x is None else (min(x[0], y[0]), max(x[1], y[1]))
        else:
            w = b.at(o)
            iv = None
            if w is not None:
                for t in range(w[0], w[1] + 1, b.step):
                    got = a.at(t)
                    if got is not None:
                        iv = got if iv is None else (min(iv[0], got[0]), max(iv[1], got[1]))
        memo[o] = iv
        return iv

    @cached_property
    def jump(self) -> Fraction:
        return shared_fraction(self.shift, self.period)

    def sizes(self) -> list[int]:
        return [h - l + 1 for l, h in zip(self.lo, self.hi) if l is not None]

    def one_phase_size(self) -> int:
        """The one phase's RF size (period 1: no list to build; 0 when it reads nothing)."""
        return 0 if self.lo[0] is None else self.hi[0] - self.lo[0] + 1

    @cached_property
    def size_max(self) -> int:
        return self.one_phase_size() if self.period == 1 else max(self.sizes(), default=0)

    @cached_property
    def size_min(self) -> int:
        return self.one_phase_size() if self.period == 1 else min(self.sizes(), default=0)

    # -- over the units that exist (a map of n units may hold fewer than one period) ----
    def size_max_in(self, n: int) -> int:
        """The largest RF among output units 0 .. n-1."""
        if self.period == 1 or n >= self.period:
            return self.size_max
        return max((h - l + 1 for l, h in zip(self.lo[:n], self.hi[:n]) if l is not None), default=0)

    def size_min_in(self, n: int) -> int:
        """The smallest non-empty RF among output units 0 .. n-1."""
        if self.period == 1 or n >= self.period:
            return self.size_min
        return min((h - l + 1 for l, h in zip(self.lo[:n], self.hi[:n]) if l is not None), default=0)

    def empty_units(self, n: int) -> int:
        """How many of output units 0 .. n-1 read no input at all."""
        if self.period == 1:
            return n if self.lo[0] is None else 0
        return sum(len(range(r, n, self.period)) for r, l in enumerate(self.lo) if l is None)

    @cached_property
    def start(self) -> Optional[Fraction]:
        """Centre of output unit 0's RF in input coordinates."""
        iv = self.at(0)
        return None if iv is None else shared_fraction(iv[0] + iv[1], 2)

    def aligned_with(self, other: "Envelope") -> bool:
        """Same jump and same start (integer arithmetic: this runs for every merge input)."""
        if self.shift * other.period != other.shift * self.period:
            return False
        a, b = self.lo[0], other.lo[0]
        if a is None or b is None:
            return a is None and b is None
        return a + self.hi[0] == b + other.hi[0]

    @cached_property
    def phase_dependent(self) -> bool:
        """True unless every unit's RF is ``start + o*jump +- (size-1)/2`` with one size: after
        upsampling or a transposed conv, sizes, centres or emptiness may vary with the phase."""
        if self.period == 1:  # one phase: on the grid by definition
            return self.lo[0] is None
        if any(l is None for l in self.lo) or len(set(self.sizes())) > 1:
            return True
        c0 = Fraction(self.lo[0] + self.hi[0], 2)
        return any(Fraction(l + h, 2) != c0 + o * self.jump for o, (l, h) in enumerate(zip(self.lo, self.hi)))

    # -- algebra --------------------------------------------------------------------
    def compose(self, layer: "Envelope", table: Optional[tuple[int, int]] = None) -> "Envelope":
        """``self`` maps a layer's input index to model-input intervals; ``layer`` maps the
        layer's output index to its input interval.  Returns output index -> model input.
        ``table=(limit, n)``: where the period would pass ``limit``, the result is a table of the
        ``n`` units that exist (``table``)."""
        if self.period == 1 and layer.period == 1 and not self.table:  # no resampling so far: one phase
            a, b = layer.lo[0], layer.hi[0]
            lo = self.lo[0]
            if a is None or lo is None or b < a:
                return Envelope(1, layer.shift * self.shift, (None,), (None,))
            return Envelope(1, layer.shift * self.shift, (lo + a * self.shift,), (self.hi[0] + b * self.shift,))
        period = layer.period * self.period // gcd(layer.shift, self.period)
        steps = period // layer.period * layer.shift  # layer-input advance per new period
        shift = steps // self.period * self.shift
        # (a table stays a table of the units that exist)
        tabled = table is not None and (period > table[0] or self.table)
        if tabled:
            period, shift = table[1], _table_shift(table[1], self.jump * layer.jump)
        los: list[Optional[int]] = []
        his: list[Optional[int]] = []
        for o in range(period):
            w = layer.at(o)
            lo_min = hi_max = None
            if w is not None:
                a, b = w
                # the taps' phases modulo self.period repeat within self.period taps and lo/hi
                # grow by self.shift >= 0 per period, so the extremes lie in the first/last period
                # (within a period the map need not be monotone: dilated transposed convs)
                taps = (b - a) // layer.step + 1
                n = taps if self.table else min(taps, self.period)  # (a table does not repeat)
                for t in range(n):
                    iv = self.at(a + t * layer.step)
                    if iv is not None and (lo_min is None or iv[0] < lo_min):
                        lo_min = iv[0]
                    iv = self.at(b - t * layer.step)
                    if iv is not None and (hi_max is None or iv[1] > hi_max):
                        hi_max = iv[1]
            los.append(lo_min)
            his.append(hi_max if lo_min is not None else None)
        if tabled or self.table:
            return Envelope(period, shift, tuple(los), tuple(his), table=True, src=("compose", self, layer))
        return Envelope(period, shift, tuple(los), tuple(his)).normalized()

    def union(self, other: "Envelope", table: Optional[tuple[int, int]] = None) -> "Envelope":
        """Bounding interval of two paths with the same jump (a merge of aligned branches);
        ``table`` as for :meth:`compose`."""
        if self.shift * other.period != other.shift * self.period:
            raise ValueError("union of envelopes with different jumps")
        if self.period == 1 and other.period == 1 and self.step == 1 and other.step == 1:
            # one phase each (no transposed conv or resampling so far): no per-phase loop
            a, b = self.lo[0], other.lo[0]
            if a is None or b is None:
                return self if b is None else other
            lo, hi = min(a, b), max(self.hi[0], other.hi[0])
            if lo == a and hi == self.hi[0]:
                return self
            return Envelope(1, self.shift, (lo,), (hi,))
        period = _lcm(self.period, other.period)
        shift = self.shift * (period // self.period)
        tabled = self.table or other.table or (table is not None and period > table[0])
        if tabled and table is not None and period > table[0]:
            period, shift = table[1], _table_shift(table[1], self.jump)
        los, his = [], []
        for o in range(period):
            a, b = self.at(o), other.at(o)
            if a is None or b is None:
                iv = a or b
                los.append(None if iv is None else iv[0])
                his.append(None if iv is None else iv[1])
            else:
                los.append(min(a[0], b[0]))
                his.append(max(a[1], b[1]))
        if tabled:
            return Envelope(period, shift, tuple(los), tuple(his), table=True, src=("union", self, other))
        return Envelope(period, shift, tuple(los), tuple(his)).normalized()

    def normalized(self) -> "Envelope":
        p = self.period
        for d in range(1, p):
            if p % d or (self.shift * d) % p:
                continue
            s = self.shift * d // p
            if all(_shifted(self.lo[o], s) == self.lo[o + d] and _shifted(self.hi[o], s) == self.hi[o + d]
                   for o in range(p - d)):
                return Envelope(d, s, self.lo[:d], self.hi[:d], self.step, self.table)
        return self


#: an envelope's period is followed up to this, or twice its map's units if larger; past it the
#: envelope becomes a table of the units that exist (RF104)
TABLE_MIN = 256


def table_union(a: Envelope, b: Envelope, n: int) -> Envelope:
    """The union of two envelopes of different jumps on the ``n`` units that exist, as a table."""
    los, his = [], []
    for o in range(max(n, 1)):
        x, y = a.at(o), b.at(o)
        iv = x if y is None else y if x is None else (min(x[0], y[0]), max(x[1], y[1]))
        los.append(None if iv is None else iv[0])
        his.append(None if iv is None else iv[1])
    return Envelope(max(n, 1), max(_table_shift(max(n, 1), a.jump), _table_shift(max(n, 1), b.jump)), tuple(los),
                    tuple(his), table=True, src=("union", a, b))


def table_limit(size: int) -> int:
    return max(TABLE_MIN, 2 * size)


def _table_shift(n: int, jump: Fraction) -> int:
    return ceil(n * jump)


def _shifted(v: Optional[int], s: int) -> Optional[int]:
    return None if v is None else v + s


IDENTITY = Envelope(1, 1, (0,), (0,))


# -- layer windows (output index -> layer-input interval) ------------------------------
_SLIDING: dict[tuple[int, int, int, int], Envelope] = {}


def sliding(kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> Envelope:
    """Conv / pooling window: output o reads inputs o*s - p ... o*s - p + d*(k-1)."""
    key = (kernel, stride, padding, dilation)
    env = _SLIDING.get(key)  # (shared: envelopes are immutable, and a net repeats a few windows)
    if env is None:
        env = Envelope(1, stride, (-padding,), (-padding + dilation * (kernel - 1),), max(dilation, 1))
        if len(_SLIDING) < 4096:
            _SLIDING[key] = env
    return env


def transposed(kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> Envelope:
    """ConvTranspose: output o = i*s - p + k*d; each phase of o sees its own set of inputs."""
    los: list[Optional[int]] = []
    his: list[Optional[int]] = []
    for o in range(stride):
        ins = [(o + padding - k * dilation) // stride for k in range(kernel)
               if (o + padding - k * dilation) % stride == 0]
        los.append(min(ins) if ins else None)
        his.append(max(ins) if ins else None)
    # the inputs of one phase are spaced by d / gcd(d, s)
    return Envelope(stride, 1, tuple(los), tuple(his), max(dilation // gcd(dilation, stride), 1)).normalized()


def crop(offset: int, step: int = 1) -> Envelope:
    """Slicing / padding: output o is input offset + o*step."""
    return Envelope(1, step, (offset,), (offset,))


def extremes(env: Envelope, n: int) -> Interval:
    """The smallest lo and the largest hi over output units 0 .. n-1 (lo and hi grow by
    ``shift >= 0`` per period, so the first and the last period hold them)."""
    k = min(env.period, max(n, 1))
    los = [iv[0] for iv in (env.at(o) for o in range(k)) if iv is not None]
    his = [iv[1] for iv in (env.at(o) for o in range(max(n, 1) - k, max(n, 1))) if iv is not None]
    return (min(los), max(his)) if los and his else None


def mixed(env: Envelope, n: int) -> Envelope:
    """Every output unit reads every one of the ``n`` input units (token mixing, attention,
    softmax over positions): one constant interval, jump 0."""
    iv = extremes(env, n)
    return Envelope(1, 0, (None,), (None,)) if iv is None else Envelope(1, 0, (iv[0],), (iv[1],))


def covers(big: Envelope, small: Envelope, n: int, windowed: bool = False) -> bool:
    """``big`` is a mixing envelope (constant: attention over all tokens; or, ``windowed``,
    attention within windows, with the same jump) whose interval holds ``small``'s at every one
    of n units."""
    if big.period == 1 and big.shift == 0:
        if big.lo[0] is None:
            return False
        iv = extremes(small, n)
        return iv is None or (big.lo[0] <= iv[0] and iv[1] <= big.hi[0])
    if not windowed or big.shift * small.period != small.shift * big.period:
        return False
    for o in range(min(n, _lcm(big.period, small.period))):
        b, s = big.at(o), small.at(o)
        if s is not None and (b is None or b[0] > s[0] or s[1] > b[1]):
            return False
    return True


def whole(size: int) -> Envelope:
    """A window over the whole map (a global reduction)."""
    return Envelope(1, max(size, 1), (0,), (size - 1,))


def periodic(ratio: Fraction, window: Callable[[int], Interval]) -> Envelope:
    """Resampling with ``ratio`` input units per output unit; ``window(o)`` gives the
    input interval of output ``o`` (exact arithmetic), evaluated over one period."""
    ratio = Fraction(ratio)
    period, shift = ratio.denominator, ratio.numerator
    los, his = [], []
    for o in range(period):
        iv = window(o)
        los.append(None if iv is None else iv[0])
        his.append(None if iv is None else iv[1])
    return Envelope(period, shift, tuple(los), tuple(his)).normalized()


def adaptive(in_size: int, out_size: int) -> Envelope:
    """Adaptive pooling: output o covers floor(o*n/m) ... ceil((o+1)*n/m) - 1."""
    return periodic(Fraction(in_size, out_size),
                    lambda o: (floor(Fraction(o * in_size, out_size)),
                               ceil(Fraction((o + 1) * in_size, out_size)) - 1))


def interpolation(mode: str, scale: Fraction, align_corners: bool = False) -> Envelope:
    """torch.nn.functional.interpolate's sampling, ``scale`` = input units per output unit
    (the value PyTorch computes: 1/scale_factor, or in/out, or (in-1)/(out-1) with
    align_corners).  Taps whose weight is exactly zero are not dependencies."""
    scale = Fraction(scale)

    def src(o: int) -> Fraction:
        if align_corners:
            return o * scale
        return (o + Fraction(1, 2)) * scale - Fraction(1, 2)

    def window(o: int) -> Interval:
        if mode == "nearest":
            i = floor(o * scale)
            return i, i
        if mode == "nearest-exact":
            i = floor((o + Fraction(1, 2)) * scale)
            return i, i
        s = src(o)
        i = floor(s)
        exact_tap = s == i
        if mode in ("linear", "bilinear", "trilinear"):
            return (i, i) if exact_tap else (i, i + 1)
        if mode == "bicubic":
            return (i, i) if exact_tap else (i - 1, i + 2)
        raise ValueError(mode)

    return periodic(scale, window)


# -- per-axis state ---------------------------------------------------------------------
@dataclass(frozen=True, init=False)
class AxisGeo:
    """What one spatial axis of a tensor knows about the model input.

    ``env``: union over all paths (the RF); ``short``: the path with the smallest RF;
    ``size``: current extent of the axis; ``global_at``/``before``: set once a global
    reduction consumed the axis (``before`` is the geometry at that reduction's input);
    ``gated``: the axis was multiplied/added with a globally pooled branch (SE gating).
    """
    env: Envelope
    short: Envelope
    size: int
    global_at: Optional[int] = None  # index of the layer that reduced the axis
    before: Optional["AxisGeo"] = None
    gated: bool = False
    #: units were mixed within windows (attention in a partition): a branch it covers unit by
    #: unit (the residual) is no misaligned merge
    mixed: bool = False

    def __init__(self, env: Envelope, short: Envelope, size: int, global_at: Optional[int] = None,
                 before: Optional["AxisGeo"] = None, gated: bool = False, mixed: bool = False):
        d = self.__dict__  # (as Envelope's: one per layer and axis)
        d["env"], d["short"], d["size"], d["global_at"], d["before"], d["gated"], d["mixed"] = (
            env, short, size, global_at, before, gated, mixed)

    @classmethod
    def input(cls, size: int) -> "AxisGeo":
        return cls(IDENTITY, IDENTITY, size)

    @property
    def rf(self) -> int:
        """The RF: the largest over paths and over the units that exist."""
        return self.env.size_max_in(self.size)

    @property
    def rf_min(self) -> int:
        """The smallest non-empty RF over paths and existing units."""
        return self.short.size_min_in(self.size)

    @cached_property
    def spacing(self) -> tuple[Fraction, Fraction, Fraction]:
        """(mean, smallest, largest) distance between the RF centres of neighbouring units that
        exist: the jump.  The mean is the period's (shift / period) when the map holds a whole
        period, else (last centre - first centre) / (their distance in units): an adaptive
        pool 5 -> 4 has centres 0.5, 1.5, 2.5, 3.5, jump 1, not 5/4."""
        e, n = self.env, self.size
        if e.period == 1 or n <= 1:
            return e.jump, e.jump, e.jump
        units = [(o, e.at(o)) for o in range(min(n, 2 * e.period + 1))]
        centres = [(o, Fraction(iv[0] + iv[1], 2)) for o, iv in units if iv is not None]
        gaps = [(c1 - c0) / (o1 - o0) for (o0, c0), (o1, c1) in zip(centres, centres[1:])]
        if not gaps:
            return e.jump, e.jump, e.jump
        if n > e.period:
            mean = e.jump
        else:
            (o0, c0), (o1, c1) = centres[0], centres[-1]
            mean = (c1 - c0) / (o1 - o0)
        return mean, min(gaps), max(gaps)

    def apply(self, window: Envelope, size: int) -> "AxisGeo":
        # (the constructor, not dataclasses.replace: this runs twice per layer and axis)
        if self.env.period == 1 and window.period == 1 and not self.env.table and not self.short.table:
            return AxisGeo(self.env.compose(window), self.short.compose(window), size, self.global_at, self.before,
                           self.gated, self.mixed)
        table = (table_limit(size), size)
        return AxisGeo(self.env.compose(window, table), self.short.compose(window, table), size, self.global_at,
                       self.before, self.gated, self.mixed)

    def mix(self) -> "AxisGeo":
        """Every unit now depends on every unit of the axis, which keeps its extent."""
        return AxisGeo(mixed(self.env, self.size), mixed(self.short, self.size), self.size, self.global_at,
                       self.before, self.gated)

    def collapse(self, at: int) -> "AxisGeo":
        if self.global_at is not None:  # already global: the first reduction stays the one
            return replace(self, env=self.env.compose(whole(self.size)), size=1)
        w = whole(self.size)
        return replace(self, env=self.env.compose(w), short=self.short.compose(w), size=1,
                       global_at=at, before=self)


def merge_axis(branches: Sequence[tuple[str, AxisGeo]], size: int,
               at: str) -> tuple[AxisGeo, list[Diagnostic], bool]:
    """Combine one axis over the inputs of a merge (add, mul, cat, ...).

    Returns (geometry, warnings, exact).  Globally reduced inputs (SE gating) do not end
    the spatial path: they set ``gated``."""
    spatial = [(n, g) for n, g in branches if g.global_at is None]
    pooled = [(n, g) for n, g in branches if g.global_at is not None]
    warnings: list[Diagnostic] = []
    exact = True
    group = spatial or pooled
    (n0, g0) = group[0]
    env, short, mixed = g0.env, g0.short, g0.mixed
    for n, g in group[1:]:
        if g.short.size_max < short.size_max:
            short = g.short
        # a mixing branch (attention) beside a windowed one sees all (the cheap test first: this
        # runs for every branch of every merge, and a conv's envelope has one phase and a shift)
        if (g.env.shift == 0 or g.mixed) and covers(g.env, env, size, g.mixed):
            env, mixed = g.env, True
            continue
        if (env.shift == 0 or mixed) and covers(env, g.env, size, mixed):
            continue
        same_jump = g.env.shift * env.period == env.shift * g.env.period
        if not g.env.aligned_with(env):
            if spatial:
                warnings.append(Diagnostic.of(
                    "RF201", at, f"misaligned merge at {at}: branch {n0} has jump {_fmt(env.jump)} and RF centre "
                    f"{_fmt(env.start)}, branch {n} has jump {_fmt(g.env.jump)} and RF centre {_fmt(g.env.start)}"))
        elif spatial:
            o = _first_misaligned(env, g.env)
            if o is not None:
                warnings.append(Diagnostic.of(
                    "RF201", at, f"misaligned merge at {at}: at output unit {o} branch {n0}'s RF is centred at "
                    f"{_fmt(_centre(env, o))} and branch {n}'s at {_fmt(_centre(g.env, o))} (same jump "
                    f"{_fmt(env.jump)}, but the units do not line up phase by phase)"))
        if same_jump:
            env = env.union(g.env, (table_limit(size), size))
        else:  # different jumps (a pooled-and-resized gate): no common period; the units that exist,
            # exact on them, and beyond them on demand (Envelope.src)
            env = table_union(env, g.env, size)
        mixed = mixed and g.mixed  # (a union: only what both cover stays covering)
    gated = bool(spatial and pooled) or any(g.gated for _, g in branches)
    if spatial:
        return AxisGeo(env, short, size, gated=gated, mixed=mixed), warnings, exact
    best_before = max((g.before for _, g in pooled), key=lambda b: b.env.size_max)
    return AxisGeo(env, short, size, global_at=g0.global_at, before=best_before, gated=gated), warnings, exact


def _centre(env: Envelope, o: int) -> Optional[Fraction]:
    iv = env.at(o)
    return None if iv is None else Fraction(iv[0] + iv[1], 2)


def _first_misaligned(a: Envelope, b: Envelope) -> Optional[int]:
    if a.period == 1 and b.period == 1:
        ia, ib = a.lo[0], b.lo[0]
        return 0 if ia is not None and ib is not None and ia + a.hi[0] != ib + b.hi[0] else None
    for o in range(_lcm(a.period, b.period)):
        ia, ib = a.at(o), b.at(o)
        if ia is not None and ib is not None and ia[0] + ia[1] != ib[0] + ib[1]:  # twice the centres
            return o
    return None


def _fmt(v: Optional[Fraction]) -> str:
    if v is None:
        return "none"
    return str(v.numerator) if v.denominator == 1 else f"{float(v):g}"
