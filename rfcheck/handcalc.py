"""The course's hand calculation, done by a machine and checked against the exact analysis.

A small *hand calculator* re-runs the textbook recurrences per axis over a :class:`Report`'s
layers, in forward order (merges: RF max over paths)::

    k_eff = d*(k-1) + 1    r_out = r_in + (k_eff-1)*j_in    j_out = j_in*s
    n_out = floor((n_in + 2p - k_eff)/s) + 1

with switches for the hand-calculation mistakes the course brief lists (``MISTAKES``).  Its
run without mistakes is compared with rfcheck's exact values layer by layer: :func:`explain`
prints an equation only where the recurrence reproduces them, and words where it does not
(transposed convs, resizing, non-uniform jumps, misaligned merges).  ``rfcheck.claims`` uses the
mistake switches to find which mistakes reproduce a student's wrong RF.

(This module is not called ``explain``: ``rfcheck.explain`` is the function, and a submodule of
that name would replace it on the package once imported.)  No torch here."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Optional, Sequence

from .report import Layer, Report

if TYPE_CHECKING:
    import torch

#: the hand-calculation mistakes (``../shared/BRIEF.md``) the calculator can make on purpose
MISTAKES = {
    "a": "the global pool's window counted in the final RF",
    "b": "the jump multiplied by the dilation at a stride-1 dilated conv (dilation treated as a stride)",
    "c": "a dilated conv's extra reach left out (k_eff = k)",
    "d": "the jump not updated after a pool or strided conv",
    "e": "a transposed conv treated as an RF booster",
    "f": "a 1x1 conv with padding assumed to keep the map size (it grows it by 2*padding)",
}
_E_HOW = {"add": "as a stride-1 conv of the same kernel, adding (k_eff-1)*j and keeping the jump",
          "jump": "as a conv of the same kernel and stride, adding (k_eff-1)*j and multiplying the jump by its stride"}
_WINDOW_KINDS = ("conv", "max_pool", "avg_pool", "lp_pool")
_KIND_NAMES = {"conv": "conv", "max_pool": "max pool", "avg_pool": "avg pool", "lp_pool": "lp pool",
               "conv_transpose": "transposed conv"}


@dataclass(frozen=True)
class Mistake:
    """One mistake switch: ``code`` in :data:`MISTAKES`, at ``layer`` only (None: at every
    layer it applies to); for (e) ``how`` is "add" or "jump"."""
    code: str
    layer: Optional[str] = None
    how: str = ""

    def describe(self, layers: Sequence[str] = ()) -> str:
        text = MISTAKES[self.code]
        if self.code == "e":
            text += f" ({_E_HOW[self.how]})"
        where = [self.layer] if self.layer else list(layers)
        if where:
            text += f" at {', '.join(where)}"
        return text


@dataclass(frozen=True)
class HState:
    """The hand calculator's values for one layer's output, per axis: RF, jump, map size
    (None where the layout does not say); ``glob``: after the global reduction."""
    r: tuple[Fraction, ...]
    j: tuple[Fraction, ...]
    n: tuple[Optional[int], ...]
    glob: bool = False

    def same(self, other: "HState", sizes: bool = True) -> bool:
        if self.r != other.r or self.j != other.j:
            return False
        return not sizes or all(a is None or b is None or a == b for a, b in zip(self.n, other.n))


@dataclass
class Step:
    layer: Layer
    #: window, transposed, merge, global, head (after the global reduction), identity, opaque
    op: str
    why: str = ""


def _on(ms: frozenset, code: str, name: str) -> Optional[Mistake]:
    for m in ms:
        if m.code == code and (m.layer is None or m.layer == name):
            return m
    return None


def _axes_of(l: Layer, key: str, default: int, nax: int) -> tuple[int, ...]:
    v = getattr(l, key)
    if v is None:
        return (default,) * nax
    return tuple(v)[-nax:] if len(v) >= nax else (default,) * nax


class HandCalc:
    """The recurrence engine over one report's layers."""

    def __init__(self, report: Report):
        self.report = report
        self.nax = len(report.input_size) - 1
        self.index = {l.name: i for i, l in enumerate(report.layers)}
        self.initial = HState((Fraction(1),) * self.nax, (Fraction(1),) * self.nax, tuple(report.input_size[1:]))
        self.truth: dict[str, Optional[HState]] = {}
        self.steps: list[Step] = []
        for l in report.layers:
            ins = [self.truth_of(nm) for nm in l.inputs]
            t = self._truth(l, ins)
            self.truth[l.name] = t
            self.steps.append(self._classify(l, ins, t))
        self.global_layer, self.point = self._point()
        self._baseline: Optional[dict] = None

    # -- the exact values, as the calculator's states -----------------------------------
    def truth_of(self, name: str) -> Optional[HState]:
        return self.truth.get(name) if name in self.index else self.initial

    def _truth(self, l: Layer, ins: list[Optional[HState]]) -> Optional[HState]:
        if len(l.rf) != self.nax or len(l.jump) != self.nax:
            return None
        shape = l.output_shape
        n = tuple(shape[1:]) if len(shape) == self.nax + 1 else (None,) * self.nax
        known = [s for s in ins if s is not None]
        glob = l.is_global or (bool(known) and all(s.glob for s in known))
        if None in n and len(known) == 1 and not l.is_global and tuple(known[0].r) == tuple(l.rf) and \
                tuple(known[0].j) == tuple(l.jump):
            n = known[0].n  # a flatten or view keeps the map's positions (a Linear over them is the global layer)
        return HState(tuple(Fraction(r) for r in l.rf), tuple(Fraction(j) for j in l.jump), n, glob)

    def _classify(self, l: Layer, ins: list[Optional[HState]], t: Optional[HState]) -> Step:
        if t is None or any(s is None for s in ins):
            return Step(l, "opaque", "a layout the recurrence cannot follow")
        if l.unknown or not l.exact:
            return Step(l, "opaque", "not exact: see the warnings")
        if l.is_global:
            return Step(l, "global" if len(set(l.inputs)) == 1 else "opaque", "a global reduction of several inputs")
        if ins and all(s.glob for s in ins):
            return Step(l, "head")
        if l.kind == "conv_transpose" and l.kernel is not None:
            return Step(l, "transposed")
        if l.kind in _WINDOW_KINDS and l.kernel is not None and len(set(l.inputs)) == 1:
            return Step(l, "window")
        if l.kind == "merge" and len(set(l.inputs)) > 1:
            return Step(l, "merge")
        if len(set(l.inputs)) == 1 and ins[0].r == t.r and ins[0].j == t.j:
            return Step(l, "identity")
        why = {"upsample": "resampling", "pixel_shuffle": "pixel shuffle"}.get(l.kind or "", "")
        if l.kind in ("max_pool", "avg_pool") and l.kernel is None:
            why = "a size-dependent window (adaptive pooling)"
        return Step(l, "opaque", why or f"no textbook rule for {l.type}")

    def _point(self) -> tuple[Optional[str], Optional[str]]:
        """(the global layer, the layer whose output's RF is the model RF) or None for either."""
        rf = self.report.rf
        if rf.global_layer:
            g = rf.global_layer
            if g in self.index and self.steps[self.index[g]].op == "global":
                return g, self.report.layers[self.index[g]].inputs[0]
            return None, None
        at = self.resolve(rf.at)
        return None, at

    def resolve(self, name: Optional[str]) -> Optional[str]:
        """A layer name, or a module/block name as ``--rf-at`` takes it, as the layer's name."""
        if name is None:
            return None
        if name in self.index:
            return name
        if name in self.report.module_outputs:
            return self.report.module_outputs[name]
        for b in self.report.blocks:
            if b.name == name:
                return b.layer
        return None

    # -- one step -----------------------------------------------------------------------
    def apply(self, step: Step, ins: list[Optional[HState]], ms: frozenset = frozenset(),
              true_out: Optional[HState] = None) -> Optional[HState]:
        """The step's output from its inputs' states (None: the recurrence cannot follow)."""
        l, op = step.layer, step.op
        if op == "head":
            return ins[0] if ins and ins[0] is not None else None
        if op == "merge":
            live = [s for s in ins if s is not None and not s.glob]
            if any(s is None for s in ins):
                return None
            if not live:
                return ins[0]
            best = max(live, key=lambda s: s.r)
            r = tuple(max(s.r[a] for s in live) for a in range(self.nax))
            return HState(r, best.j, best.n)
        st = ins[0] if ins else None
        if st is None:
            return None
        if op == "identity":
            return HState(st.r, st.j, self._size_through(step, st))
        if op == "global":
            if any(n is None for n in st.n):
                return None
            return HState(tuple(r + (n - 1) * j for r, j, n in zip(st.r, st.j, st.n)),
                          tuple(j * n for j, n in zip(st.j, st.n)), (1,) * self.nax, True)
        if op == "window":
            return self._window(l, st, ms)
        if op == "transposed":
            return self._transposed(l, st, ms)
        return None

    def _size_through(self, step: Step, st: HState) -> tuple[Optional[int], ...]:
        """The map size after a layer the recurrence has no size formula for: the true one where
        the input's size is true, else the true change applied."""
        t_in = self.truth_of(step.layer.inputs[0]) if step.layer.inputs else None
        t = self.truth[step.layer.name]
        if t is None or t_in is None:
            return (None,) * self.nax
        out = []
        for n, a, b in zip(st.n, t_in.n, t.n):
            out.append(None if n is None or a is None or b is None else n + (b - a))
        return tuple(out)

    def _window(self, l: Layer, st: HState, ms: frozenset) -> HState:
        nax = self.nax
        k, s = _axes_of(l, "kernel", 1, nax), _axes_of(l, "stride", 1, nax)
        p, d = _axes_of(l, "padding", 0, nax), _axes_of(l, "dilation", 1, nax)
        b, c = _on(ms, "b", l.name), _on(ms, "c", l.name)
        keep_jump = _on(ms, "d", l.name)
        pad_ignored = l.kind == "conv" and all(x == 1 for x in k) and any(p) and _on(ms, "f", l.name)
        r, j, n = [], [], []
        for a in range(nax):
            keff = d[a] * (k[a] - 1) + 1
            used = k[a] if (c and d[a] > 1) else keff
            r.append(st.r[a] + (used - 1) * st.j[a])
            if s[a] > 1:
                j.append(st.j[a] if keep_jump else st.j[a] * s[a])
            else:
                j.append(st.j[a] * d[a] if (b and d[a] > 1) else st.j[a])
            n.append(self._size(l, a, st.n[a], keff, s[a], p[a], pad_ignored))
        return HState(tuple(r), tuple(j), tuple(n))

    def _size(self, l: Layer, a: int, n_in: Optional[int], keff: int, s: int, p: int, pad_ignored: bool):
        if n_in is None:
            return None
        t_in = self.truth_of(l.inputs[0]) if l.inputs else None
        t = self.truth.get(l.name)
        if pad_ignored:
            return (n_in - 1) // s + 1
        if t is not None and t_in is not None and t_in.n[a] == n_in and t.n[a] is not None:
            return t.n[a]  # the true size (ceil_mode and the like included)
        return (n_in + 2 * p - keff) // s + 1

    def _transposed(self, l: Layer, st: HState, ms: frozenset) -> Optional[HState]:
        nax = self.nax
        k, s = _axes_of(l, "kernel", 1, nax), _axes_of(l, "stride", 1, nax)
        p, d = _axes_of(l, "padding", 0, nax), _axes_of(l, "dilation", 1, nax)
        e = _on(ms, "e", l.name)
        strided = any(x > 1 for x in s)
        if strided and e is None:
            return None
        c = _on(ms, "c", l.name)
        r, j, n = [], [], []
        t_in, t = self.truth_of(l.inputs[0]), self.truth.get(l.name)
        for a in range(nax):
            keff = d[a] * (k[a] - 1) + 1
            used = k[a] if (c and d[a] > 1) else keff
            r.append(st.r[a] + (used - 1) * st.j[a])
            j.append(st.j[a] * s[a] if (e is not None and e.how == "jump") else st.j[a])
            if st.n[a] is None:
                n.append(None)
            elif t is not None and t_in is not None and t_in.n[a] == st.n[a] and t.n[a] is not None:
                n.append(t.n[a])
            else:
                n.append((st.n[a] - 1) * s[a] - 2 * p[a] + keff)
        return HState(tuple(r), tuple(j), tuple(n))

    # -- whole runs ---------------------------------------------------------------------
    def run(self, ms: frozenset = frozenset()) -> dict[str, Optional[HState]]:
        states: dict[str, Optional[HState]] = {}
        for step in self.steps:
            ins = [states.get(nm) if nm in self.index else self.initial for nm in step.layer.inputs]
            states[step.layer.name] = self.apply(step, ins, ms)
        return states

    def baseline(self) -> dict[str, Optional[HState]]:
        if self._baseline is None:
            self._baseline = self.run()
        return self._baseline

    def model_value(self, states: dict[str, Optional[HState]], ms: frozenset = frozenset()
                    ) -> Optional[tuple[Fraction, ...]]:
        """The model RF a run gives: at the input of the global pool (after it with mistake (a))."""
        name = self.global_layer if (self.global_layer and _on(ms, "a", self.global_layer)) else self.point
        st = states.get(name) if name else None
        return None if st is None else st.r

    def ancestors(self, name: str) -> list[str]:
        """``name`` and the layers it depends on, in forward order."""
        seen, todo = set(), [name]
        while todo:
            x = todo.pop()
            if x in seen or x not in self.index:
                continue
            seen.add(x)
            todo.extend(self.report.layers[self.index[x]].inputs)
        return sorted(seen, key=self.index.__getitem__)

    def follows(self, name: str) -> tuple[bool, Optional[str], str]:
        """(the mistake-free run reproduces the exact values up to ``name``, the first layer where
        it does not, why)."""
        base = self.baseline()
        for x in self.ancestors(name):
            t, h = self.truth[x], base.get(x)
            step = self.steps[self.index[x]]
            if t is None or h is None or not h.same(t):
                why = step.why or {"transposed": "a strided transposed conv: phases, fractional jump",
                                   "merge": "branches merged with different jumps or RF centres"}.get(
                    step.op, "the jump is not uniform here (after a transposed conv or resizing)")
                return False, x, why
        return True, None, ""

    def instances(self, code: str, within: Optional[set] = None) -> list[str]:
        """The layers a mistake applies to."""
        out = []
        for step in self.steps:
            l = step.layer
            if within is not None and l.name not in within:
                continue
            s, d = _axes_of(l, "stride", 1, self.nax), _axes_of(l, "dilation", 1, self.nax)
            k, p = _axes_of(l, "kernel", 1, self.nax), _axes_of(l, "padding", 0, self.nax)
            if code == "a" and step.op == "global" and l.name == self.global_layer:
                out.append(l.name)
            elif code == "b" and step.op in ("window", "transposed") and l.kind in ("conv", "conv_transpose") and any(
                    dd > 1 and ss == 1 for dd, ss in zip(d, s)):
                out.append(l.name)
            elif code == "c" and step.op in ("window", "transposed") and any(dd > 1 for dd in d):
                out.append(l.name)
            elif code == "d" and step.op == "window" and any(ss > 1 for ss in s):
                out.append(l.name)
            elif code == "e" and step.op == "transposed" and any(ss > 1 for ss in s):
                out.append(l.name)
            elif code == "f" and step.op == "window" and l.kind == "conv" and all(kk == 1 for kk in k) and any(p):
                out.append(l.name)
        return out


# -- the derivation ------------------------------------------------------------------------
def _num(v: Any) -> str:
    v = Fraction(v)
    if v.denominator == 1:
        return str(v.numerator)
    f = f"{float(v):g}"
    return f if Fraction(f) == v else f"({v.numerator}/{v.denominator})"


def _axis_names(nax: int) -> tuple[str, ...]:
    return {1: ("",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(nax, tuple(f"{i}" for i in range(nax)))


def _eq(sym: str, parts: Sequence[str], nax: int) -> str:
    """One equation when every axis agrees, one per axis when they differ."""
    if len(set(parts)) == 1:
        return f"{sym} = {parts[0]}"
    return ", ".join(f"{sym}_{ax} = {p}" for ax, p in zip(_axis_names(nax), parts))


def _vals(values: Sequence[Any]) -> str:
    return _num(values[0]) if len(set(values)) == 1 else "x".join(_num(v) for v in values)


def _spec(l: Layer, nax: int) -> str:
    k = _axes_of(l, "kernel", 1, nax)
    s, d = _axes_of(l, "stride", 1, nax), _axes_of(l, "dilation", 1, nax)
    parts = ["x".join(map(str, k)), _KIND_NAMES.get(l.kind or "", l.type)]
    if any(x != 1 for x in s):
        parts.append("s" + _vals(s))
    if any(x > 1 for x in d):
        parts.append("d" + _vals(d) + f" (k_eff {_vals([dd * (kk - 1) + 1 for dd, kk in zip(d, k)])})")
    return " ".join(parts)


def _changes(t_in: HState, t: HState) -> str:
    """rfcheck's exact values before -> after, in words."""
    parts = [f"RF {_vals(t_in.r)} -> {_vals(t.r)}", f"jump {_vals(t_in.j)} -> {_vals(t.j)}"]
    if all(x is not None for x in (*t_in.n, *t.n)) and t_in.n != t.n:
        parts.append(f"n {_vals(t_in.n)} -> {_vals(t.n)}")
    return ", ".join(parts)


class Explanation:
    """The derivation, one line per layer that changes RF, jump or size.  ``str()`` is the text."""

    def __init__(self, report: Report, calc: Optional[HandCalc] = None):
        self.report = report
        self.calc = calc or HandCalc(report)
        self.rows: list[tuple[str, str, str]] = []
        self.notes: list[str] = []
        self._build()

    def __str__(self) -> str:
        w0 = max([len(r[0]) for r in self.rows] + [0])
        w1 = max([len(r[1]) for r in self.rows] + [0])
        lines = [f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in self.rows]
        return "\n".join(self.header() + lines + self.notes)

    __repr__ = __str__

    @property
    def text(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return f"```\n{self}\n```\n"

    def header(self) -> list[str]:
        r = self.report
        return [f"explain: {r.model}, input {'x'.join(map(str, r.input_size))} (per axis; r: RF, j: jump in input "
                "pixels, n: map size; pointwise layers left out)",
                "  k_eff = d*(k-1)+1   r = r_in + (k_eff-1)*j_in   j = j_in*s   n = floor((n_in + 2p - k_eff)/s) + 1"]

    def _build(self) -> None:
        calc, nax = self.calc, self.calc.nax
        init = calc.initial
        self.rows.append(("input", "", f"r = 1   j = 1   {_eq('n', [str(n) for n in init.n], nax)}"))
        for step in calc.steps:
            l = step.layer
            t = calc.truth[l.name]
            ins = [calc.truth_of(nm) for nm in l.inputs]
            if t is None:
                if l.kind not in (None, "pointwise", "reshape"):
                    self.rows.append((l.name, l.type, f"the recurrence does not apply ({step.why})"))
                continue
            if step.op in ("head", "identity"):
                continue
            if step.op == "global":
                self._global(l, ins[0], t)
                continue
            if step.op == "merge":
                self._merge(l, ins, t)
                continue
            t_in = ins[0] if ins else None
            if t_in is None:
                continue
            if t_in.same(t) and step.op in ("window", "identity"):
                continue  # changes nothing (a 1x1 conv, stride 1, no padding)
            if step.op == "window" or (step.op == "transposed" and all(
                    x == 1 for x in _axes_of(l, "stride", 1, nax))):
                self._window(l, step, t_in, t)
            elif step.op == "transposed":
                self._strided_transposed(l, t_in, t)
            else:
                self._opaque(l, step, t_in, t)
        self._end()

    def _window(self, l: Layer, step: Step, t_in: HState, t: HState) -> None:
        nax, calc = self.calc.nax, self.calc
        h = calc.apply(step, [t_in])
        k, s = _axes_of(l, "kernel", 1, nax), _axes_of(l, "stride", 1, nax)
        p, d = _axes_of(l, "padding", 0, nax), _axes_of(l, "dilation", 1, nax)
        keff = [dd * (kk - 1) + 1 for dd, kk in zip(d, k)]
        spec = _spec(l, nax)
        if h is None or h.r != t.r or h.j != t.j:
            self.rows.append((l.name, spec, self._words_window(l, t_in, t)))
            return
        r_eq = _eq("r", [f"{_num(t_in.r[a])} + ({keff[a]}-1)*{_num(t_in.j[a])} = {_num(t.r[a])}"
                         for a in range(nax)], nax)
        j_eq = _eq("j", [f"{_num(t_in.j[a])}*{s[a]} = {_num(t.j[a])}" for a in range(nax)], nax)
        parts = [r_eq, j_eq]
        if all(x is not None for x in (*t_in.n, *t.n)):
            ns = []
            for a in range(nax):
                if l.kind == "conv_transpose":
                    got = (t_in.n[a] - 1) * s[a] - 2 * p[a] + keff[a]
                    txt = f"({t_in.n[a]} - 1)*{s[a]} - 2*{p[a]} + {keff[a]} = {t.n[a]}"
                else:
                    num = t_in.n[a] + 2 * p[a] - keff[a]
                    got = num // s[a] + 1
                    body = f"({t_in.n[a]} + 2*{p[a]} - {keff[a]})/{s[a]}"
                    txt = f"{body} + 1 = {t.n[a]}" if num % s[a] == 0 else f"floor({body}) + 1 = {t.n[a]}"
                why = "output_padding" if l.kind == "conv_transpose" else "ceil_mode"
                ns.append(txt if got == t.n[a] else f"{t.n[a]} (not the formula's {got}: {why})")
            parts.append(_eq("n", ns, nax))
        note = ""
        if l.kind == "conv_transpose":
            note = "   (a stride-1 transposed conv is a fully padded conv: no RF booster)"
        elif l.kind == "conv" and all(x == 1 for x in k) and any(p):
            note = "   (a 1x1 conv with padding grows the map by 2*padding: RF205)"
        self.rows.append((l.name, spec, "   ".join(parts) + note))

    def _words_window(self, l: Layer, t_in: HState, t: HState) -> str:
        src = self.report.layers[self.calc.index[l.inputs[0]]] if l.inputs and l.inputs[0] in self.calc.index else None
        if src is not None and src.non_uniform:
            why = (f"the input's unit spacing varies (its jump {_vals(src.jump)} is a mean: "
                   f"{_vals(src.jump_min)} to {_vals(src.jump_max)}), so r_in + (k_eff-1)*j_in does not hold")
        else:
            why = "the recurrence does not reproduce rfcheck's exact value here (phases or resizing upstream)"
        return f"{why}; rfcheck's exact values: {_changes(t_in, t)}"

    def _strided_transposed(self, l: Layer, t_in: HState, t: HState) -> None:
        nax = self.calc.nax
        s = _axes_of(l, "stride", 1, nax)
        k, d = _axes_of(l, "kernel", 1, nax), _axes_of(l, "dilation", 1, nax)
        grow = [t.r[a] - t_in.r[a] for a in range(nax)]
        verb = "halves the jump" if set(s) == {2} else f"divides the jump by {_vals(s)}"
        text = (f"a stride-{_vals(s)} transposed conv {verb}: {_vals(t_in.j)} -> {_vals(t.j)}"
                f"{' (a mean: neighbours are unevenly spaced, by phase)' if l.non_uniform else ''}; "
                f"the RF grows by {_vals(grow)}: {_vals(t_in.r)} -> {_vals(t.r)}")
        reads = [-(-(dd * (kk - 1) + 1) // ss) for kk, ss, dd in zip(k, s, d)]
        if all(dd == 1 for dd in d) and all(t_in.r[a] + (reads[a] - 1) * t_in.j[a] == t.r[a] for a in range(nax)):
            some = "" if all(kk % ss == 0 for kk, ss in zip(k, s)) else ", fewer in some phases"
            text += (f" (each output unit reads at most ceil({_vals(k)}/{_vals(s)}) = {_vals(reads)} input "
                     f"unit(s){some})")
        if l.rf_min != l.rf:
            text += f"; RF min {_vals(l.rf_min)} over phases"
        if all(x is not None for x in (*t_in.n, *t.n)):
            text += f"; n {_vals(t_in.n)} -> {_vals(t.n)}"
        self.rows.append((l.name, _spec(l, nax), text))

    def _merge(self, l: Layer, ins: list[Optional[HState]], t: HState) -> None:
        nax = self.calc.nax
        live = [s for s in ins if s is not None and not s.glob]
        if len(live) < 2 or all(s.same(live[0]) for s in live[1:]):
            return
        what = f"{l.type} of {len(live)} paths"
        jumps_agree = all(s.j == live[0].j for s in live)
        if jumps_agree and all(max(s.r[a] for s in live) == t.r[a] for a in range(nax)) and t.j == live[0].j:
            r_eq = _eq("r", [f"max({', '.join(_num(s.r[a]) for s in live)}) = {_num(t.r[a])}" for a in range(nax)], nax)
            misaligned = any(w.code == "RF201" and w.layer == l.name for w in self.report.warnings)
            note = "; the paths' RF centres are misaligned: RF201" if misaligned else ""
            self.rows.append((l.name, what, f"{r_eq} (RF max over paths{note})   j = {_vals(t.j)}"))
        else:
            js = ", ".join(_vals(s.j) for s in live)
            self.rows.append((l.name, what, f"branches with jumps {js} merge, misaligned (RF201): the recurrence does "
                                            f"not apply; rfcheck's exact values: RF {_vals(t.r)}, jump {_vals(t.j)}"))

    def _opaque(self, l: Layer, step: Step, t_in: HState, t: HState) -> None:
        if l.kind == "upsample":
            ratio = [Fraction(b, a) for a, b in zip(t_in.n, t.n)] if None not in (*t_in.n, *t.n) else None
            scale = f" x{_vals(ratio)}" if ratio else ""
            text = (f"upsampling{scale} divides the jump: {_vals(t_in.j)} -> {_vals(t.j)}"
                    f"{' (a mean: units copy or mix their neighbours by phase)' if l.non_uniform else ''}; "
                    f"{_changes(t_in, t)}")
        else:
            text = f"the recurrence does not apply ({step.why}); rfcheck's exact values: {_changes(t_in, t)}"
        self.rows.append((l.name, l.type, text))

    def _global(self, l: Layer, t_in: Optional[HState], t: HState) -> None:
        if t_in is None:
            return
        n = "x".join(str(x) for x in t_in.n) if None not in t_in.n else "whole"
        what = {"avg": "global avg pool", "max": "global max pool", "linear": "a Linear over every position"}.get(
            l.global_kind or "", "global reduction")
        self.rows.append((l.name, l.type, f"{what} of the {n} map: the model RF is taken at its input, "
                                          f"{_vals(t_in.r)}"))

    def _end(self) -> None:
        rf, calc, nax = self.report.rf, self.calc, self.calc.nax
        exact = "" if rf.exact else " (NOT exact: see the warnings)"
        size = _vals(rf.size)
        if rf.global_layer:
            self.notes.append(f"model RF: {size} (jump {_vals(rf.jump)}) at the input of the global pool "
                              f"{rf.global_layer}{exact}")
            if rf.with_global is not None:
                t_in = calc.truth.get(calc.point) if calc.point else None
                g = _vals(rf.with_global)
                eq = ""
                if t_in is not None and None not in t_in.n and all(
                        t_in.r[a] + (t_in.n[a] - 1) * t_in.j[a] == rf.with_global[a] for a in range(nax)):
                    parts = [f"{_num(t_in.r[a])} + ({t_in.n[a]}-1)*{_num(t_in.j[a])} = {rf.with_global[a]}"
                             for a in range(nax)]
                    eq = parts[0] if len(set(parts)) == 1 else ", ".join(
                        f"{ax}: {p}" for ax, p in zip(_axis_names(nax), parts))
                    eq = f" ({eq})"
                self.notes.append(f"counting the global pool's window as well gives {g}{eq}: that is the brief's "
                                  f"common mistake; the RF that matters is {size}")
        else:
            self.notes.append(f"model RF: {size} (jump {_vals(rf.jump)}) at {rf.at}{exact}")
        if calc.point:
            ok, where, why = calc.follows(calc.point)
            if not ok:
                self.notes.append(f"the textbook recurrence alone does not give this RF (from {where}: {why}): "
                                  "rfcheck's exact values are used from there on")


def explain_report(report: Report) -> Explanation:
    return Explanation(report)


def explain(model: "torch.nn.Module", input_size: Optional[Sequence[int]] = None, *, inputs: Any = None,
            rf_at: Optional[str] = None, name: Optional[str] = None, rules: Optional[dict] = None) -> Explanation:
    """The course's hand derivation of ``model``'s RF, jump and map size, layer by layer, with
    rfcheck's exact numbers filled in (``print()`` it; in a notebook it shows itself)."""
    from .analysis import analyze
    how: dict[str, Any] = {"inputs": inputs} if inputs is not None else {"input_size": input_size}
    return Explanation(analyze(model, rf_at=rf_at, name=name, rules=rules, **how))
