"""The claim check: a student's own RF (the model's, or a layer's) against rfcheck's exact one,
and, when it is wrong, which of the well-known hand-calculation mistakes reproduce it.

The diagnosis re-runs the textbook recurrence (:class:`rfcheck.handcalc.HandCalc`) over the
model's layers with each mistake of :data:`rfcheck.handcalc.MISTAKES` switched on, one at a
time (everywhere it applies, and at each such layer alone), then two at a time when no single
one reproduces the claim.  It diagnoses only where the mistake-free run reproduces rfcheck's
exact values (for a strided transposed conv, which the textbook cannot follow, only the
mistakes that make it followable: (e)).  No torch here."""
from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Mapping, Optional, Sequence

from .errors import RFCheckError
from .handcalc import HandCalc, Mistake, _vals
from .report import Report, number

#: at most this many layers of one mistake are tried one by one (beyond: only all of them)
PER_LAYER = 6
#: the search for pairs of mistakes stops after this many seconds (a very deep model)
BUDGET_S = 3.0
NOT_APPLICABLE = "the hand recurrence does not apply to this model (merges/transposed): compare with the table"


def parse_claim_value(value: Any) -> tuple[int, ...]:
    """An RF claim: a whole number >= 1 (every axis), or one per axis (``45x43``, ``(45, 43)``)."""
    if isinstance(value, bool):
        raise ValueError(f"expected an RF such as 109 or 45x43, got {value!r}")
    if isinstance(value, int):
        parts: Sequence[Any] = [value]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [p for p in re.split(r"[x,]", str(value).strip())]
    try:
        out = tuple(int(p) if not isinstance(p, bool) and float(p) == int(float(p)) else None for p in parts)
    except (TypeError, ValueError):
        out = (None,)
    if not out or any(v is None or v < 1 for v in out) or any(isinstance(p, bool) for p in parts):
        raise ValueError(f"expected an RF such as 109 or 45x43 (whole numbers >= 1), got {value!r}")
    return out  # type: ignore[return-value]


def parse_layer_claim(text: str) -> tuple[str, tuple[int, ...]]:
    """``LAYER=N`` (the CLI's ``--claim``)."""
    name, sep, value = str(text).partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected LAYER=RF such as convblock3=45, got {text!r}")
    return name.strip(), parse_claim_value(value.strip())


@dataclass
class Diagnosis:
    """Mistakes that, applied together, reproduce a claimed RF."""
    mistakes: tuple[Mistake, ...]
    value: tuple[Fraction, ...]
    #: the first layer where the mistaken calculation departs from the exact values
    departs_at: Optional[str]
    #: for a mistake applied everywhere, the layers it applies to
    layers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return [m.code for m in self.mistakes]

    def text(self) -> str:
        what = " and ".join(f"({m.code}) {m.describe(self.layers.get(m.code, []))}" for m in self.mistakes)
        where = f"; the calculation departs from the true values at {self.departs_at}" if self.departs_at else ""
        return f"{what}: gives {_vals(self.value)}{where}"

    def to_dict(self) -> dict[str, Any]:
        return {"mistakes": self.codes, "layers": [m.layer or self.layers.get(m.code, []) for m in self.mistakes],
                "how": [m.how for m in self.mistakes], "value": [number(v) for v in self.value],
                "departs_at": self.departs_at, "text": self.text()}


@dataclass
class Claim:
    """One claimed RF: the model's (``name`` None) or a layer's/module's."""
    name: Optional[str]
    at: str                          # the layer whose RF it is (the global pool's input for the model RF)
    claimed: tuple[int, ...]
    true: tuple[int, ...]
    diagnoses: list[Diagnosis] = field(default_factory=list)
    #: why no diagnosis was tried, or what it found
    note: str = ""

    @property
    def matches(self) -> bool:
        return self.claimed == self.true

    def label(self) -> str:
        if self.name is None:
            return f"model RF (at {self.at})"
        return self.name if self.name == self.at else f"{self.name} ({self.at})"

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.name, "at": self.at, "claimed": list(self.claimed), "true": list(self.true),
                "matches": self.matches, "mistakes": [d.to_dict() for d in self.diagnoses], "note": self.note or None}


@dataclass
class Claims:
    """Every claim of one check; ``passed`` when all are right."""
    items: list[Claim]
    #: the first layer (in forward order) whose per-layer claim is wrong
    first_diverging: Optional[str] = None
    #: None when the mistake-free recurrence reproduces rfcheck here; else why not
    hand_note: Optional[str] = None

    @property
    def passed(self) -> bool:
        return all(c.matches for c in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "first_diverging": self.first_diverging,
                "hand_recurrence": self.hand_note or "applies", "items": [c.to_dict() for c in self.items]}

    def text(self) -> str:
        wrong = sum(not c.matches for c in self.items)
        lines = [f"claim: {len(self.items) - wrong} right, {wrong} wrong"]
        for c in self.items:
            mark = "right" if c.matches else "WRONG"
            first = "  <- the first layer where your claims diverge" if (
                c.name is not None and c.name == self.first_diverging) else ""
            lines.append(f"  [{mark}] {c.label()}: claimed {_vals(c.claimed)}, true {_vals(c.true)}"
                         f"{first}")
            if c.matches:
                continue
            for d in c.diagnoses:
                lines.append(f"         reproduced by: {d.text()}")
            if c.note:
                lines.append(f"         {c.note}")
        return "\n".join(lines)

    def markdown(self) -> str:
        out = ["**Claims:**", "", "| claim | claimed | true | result | reproduced by |", "|---|---|---|---|---|"]
        for c in self.items:
            why = "; ".join(d.text() for d in c.diagnoses) or c.note
            out.append(f"| {c.label()} | {_vals(c.claimed)} | {_vals(c.true)} | "
                       f"{'✅ right' if c.matches else '❌ WRONG'} | {why.replace('|', chr(92) + '|') if not c.matches else ''} |")
        if self.first_diverging:
            out += ["", f"The first layer where the claims diverge: `{self.first_diverging}`."]
        return "\n".join(out)


def _axes(value: tuple[int, ...], nax: int, what: str) -> tuple[int, ...]:
    if len(value) == 1:
        return value * nax
    if len(value) != nax:
        raise RFCheckError(f"{what}: {'x'.join(map(str, value))} has {len(value)} values for {nax} spatial axes")
    return value


def _variants(calc: HandCalc, code: str, within: set) -> list[tuple[Mistake, list[str]]]:
    layers = calc.instances(code, within)
    if not layers:
        return []
    hows = ("add", "jump") if code == "e" else ("",)
    out = []
    for how in hows:
        out.append((Mistake(code, None, how), layers))
        if 1 < len(layers) <= PER_LAYER:
            out += [(Mistake(code, name, how), [name]) for name in layers]
    return out


def check_claims(report: Report, claim_rf: Any = None, claims: Optional[Mapping[str, Any]] = None,
                 calc: Optional[HandCalc] = None) -> Optional[Claims]:
    """The claims' results (None when no claim was given).  Unknown layer names are an
    :class:`RFCheckError` naming the claim; bad values a ValueError."""
    if claim_rf is None and not claims:
        return None
    calc = calc or HandCalc(report)
    nax = calc.nax
    items: list[Claim] = []
    if claim_rf is not None:
        value = _axes(parse_claim_value(claim_rf), nax, f"claim_rf {claim_rf}")
        at = f"the input of the global pool {calc.global_layer}" if calc.global_layer else (calc.point or report.rf.at)
        items.append(Claim(None, at, value, tuple(report.rf.size)))
    per_layer: list[Claim] = []
    if claims is not None and not isinstance(claims, Mapping):
        raise ValueError(f"claims: expected a mapping of layer names to RFs such as {{'convblock3': 45}}, "
                         f"got {type(claims).__name__}")
    for name, raw in (claims or {}).items():
        at = calc.resolve(str(name))
        if at is None:
            close = [l.name for l in report.layers if str(name) in l.name][:8]
            hint = f"; similar: {', '.join(close)}" if close else ""
            shown = _vals(raw) if isinstance(raw, (tuple, list)) else raw
            raise RFCheckError(f"--claim {name}={shown}: no such layer or module{hint} (see the table's name column)")
        value = _axes(parse_claim_value(raw), nax, f"claim {name}={raw}")
        per_layer.append(Claim(str(name), at, value, tuple(report.layer(at).rf)))
    per_layer.sort(key=lambda c: calc.index[c.at])
    items += per_layer
    first = next((c.name for c in per_layer if not c.matches), None)
    result = Claims(items, first)
    wrong = [c for c in items if not c.matches]
    if not wrong:
        return result
    points = {c.at for c in wrong if c.at in calc.index}
    points.update(x for x in (calc.point, calc.global_layer) if x)
    within: set = set()
    for p in points:
        within.update(calc.ancestors(p))
    notes = []
    for c in wrong:
        c.note = _diagnose(calc, c, within, notes)
    result.hand_note = notes[0] if notes else None
    return result


def _value(calc: HandCalc, claim: Claim, states: dict, ms: frozenset):
    if claim.name is None:
        return calc.model_value(states, ms)
    st = states.get(claim.at)
    return None if st is None else st.r


def _diagnose(calc: HandCalc, claim: Claim, within: set, notes: list[str]) -> str:
    point = calc.point if claim.name is None else claim.at
    t = calc.truth.get(claim.at)
    if claim.name is not None and calc.global_layer and t is not None and t.glob and \
            claim.claimed == tuple(calc.report.rf.size):
        return (f"{_vals(claim.claimed)} is the RF at the input of the global pool {calc.global_layer} (the model "
                f"RF, the one that matters); the table's {_vals(claim.true)} at {claim.at} counts the pool's window")
    if point is None:
        notes.append(NOT_APPLICABLE)
        return NOT_APPLICABLE
    ok, where, why = calc.follows(point)
    only_e = False
    if not ok:
        # the textbook cannot follow a strided transposed conv; a student who treats it as a conv can
        if where in calc.instances("e") and not any(
                calc.steps[calc.index[x]].op == "opaque" for x in calc.ancestors(point)):
            only_e = True
            notes.append(f"the textbook recurrence cannot follow {where} ({why}); only the transposed-conv mistake "
                         "makes it followable")
        else:
            note = f"{NOT_APPLICABLE} (from {where}: {why})"
            notes.append(note)
            return note
    want = tuple(Fraction(v) for v in claim.claimed)
    base = calc.baseline()
    codes = [c for c in "abcdef" if not (c == "a" and (claim.name is not None or not calc.global_layer))]
    variants = {c: _variants(calc, c, within) for c in codes}
    singles: list[Diagnosis] = []
    results: dict[Mistake, Optional[tuple]] = {}
    for c in codes:
        for m, layers in variants[c]:
            ms = frozenset([m])
            states = calc.run(ms)
            v = _value(calc, claim, states, ms)
            results[m] = v
            if only_e and c != "e":
                continue
            if v is not None and v == want:
                singles.append(Diagnosis((m,), v, _departs(calc, base, states, point), {c: layers}))
    if singles:
        claim.diagnoses = singles
        return ""
    pairs: list[Diagnosis] = []
    deadline = time.monotonic() + BUDGET_S
    stopped = False
    for c1, c2 in itertools.combinations(codes, 2):
        if only_e and "e" not in (c1, c2):
            continue
        for (m1, l1), (m2, l2) in itertools.product(variants[c1], variants[c2]):
            if time.monotonic() > deadline:
                stopped = True
                break
            ms = frozenset([m1, m2])
            states = calc.run(ms)
            v = _value(calc, claim, states, ms)
            if v is None or v != want or v == results.get(m1) or v == results.get(m2):
                continue  # each of the two must matter
            pairs.append(Diagnosis((m1, m2), v, _departs(calc, base, states, point), {c1: l1, c2: l2}))
    claim.diagnoses = singles or pairs
    if stopped:
        return f"(the search for pairs of mistakes stopped after {BUDGET_S:g} s)"
    if claim.diagnoses:
        return ""
    return (f"no known hand-calculation mistake (one or two of (a)-(f)) reproduces {_vals(claim.claimed)}: "
            "compare your numbers with rfcheck's derivation (rfcheck --explain)")


def _departs(calc: HandCalc, base: dict, states: dict, point: str) -> Optional[str]:
    for x in calc.ancestors(point) + ([calc.global_layer] if calc.global_layer else []):
        a, b = base.get(x), states.get(x)
        if (a is None) != (b is None) or (a is not None and not a.same(b)):
            return x
    return None
