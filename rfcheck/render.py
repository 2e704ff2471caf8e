"""Views of a :class:`DesignCheck` (or of a bare :class:`Report`): the text report, markdown
and JSON.  Nothing here computes a value; each view only formats the result.

The layer table has three views: the compact one (default: pointwise and shape-only layers
folded into the conv/pool row they follow, one row per conv or pool as in a hand-made RF
table), ``depth=N`` (one row per module at nesting depth N, params and MACs summed, the values
at the module's output) and ``verbose`` (every traced layer).  A layer with a flag (global,
UNKNOWN, not exact, phase, non-uniform) or a warning is never folded away."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Optional, Sequence, Union

from tabulate import tabulate

from .diagnostics import Diagnostic
from .report import Layer, Report, number

if TYPE_CHECKING:
    from .design import DesignCheck

Viewed = Union["DesignCheck", Report]


def _x(values: Sequence) -> str:
    return "x".join(_num(v) for v in values) if values else "-"


def _num(v) -> str:
    if v is None:
        return "?"
    if isinstance(v, Fraction):
        if v.denominator == 1:
            return str(v.numerator)
        return f"{float(v):g}" if len(f"{float(v):g}") <= 6 else f"{v.numerator}/{v.denominator}"
    return str(v)


def _starts(values: Sequence) -> str:
    return ",".join(_num(v) for v in values) if values else "-"


def _kernel(l: Layer) -> str:
    if l.kernel is None:
        return ""
    parts = [_x(l.kernel)]
    if l.stride and any(s != 1 for s in l.stride):
        parts.append("s" + _x(l.stride))
    if l.padding and any(p != 0 for p in l.padding):
        parts.append("p" + _x(l.padding))
    if l.dilation and any(d != 1 for d in l.dilation):
        parts.append("d" + _x(l.dilation))
    if l.groups and l.groups > 1:
        parts.append(f"g{l.groups}")
    return " ".join(parts)


def _flags(l: Layer) -> str:
    flags = []
    if l.is_global:
        flags.append("global")
    if l.unknown:
        flags.append("UNKNOWN")
    elif not l.exact:
        flags.append("not exact")
    if l.phase_dependent:
        flags.append("phase")
    if l.non_uniform:
        flags.append("non-uniform")
    return ",".join(flags)


#: layer kinds that never change RF, jump or start: folded into the row they follow
FOLDED_KINDS = ("pointwise", "reshape", "mix")
_SHORT = {"BatchNorm1d": "BN", "BatchNorm2d": "BN", "BatchNorm3d": "BN", "SyncBatchNorm": "BN",
          "GroupNorm": "GN", "LayerNorm": "LN", "InstanceNorm1d": "IN", "InstanceNorm2d": "IN",
          "InstanceNorm3d": "IN"}


@dataclass
class Row:
    """One row of a layer table: the layers it stands for (``members``, in execution order) and
    the one whose output, RF, jump and start it shows (``shown``)."""
    name: str
    type: str
    shown: Layer
    members: list[Layer]
    kernel: str = ""
    flags: str = ""
    params: int = field(init=False)
    macs: int = field(init=False)

    def __post_init__(self) -> None:
        self.params = sum(m.params for m in self.members)
        self.macs = sum(m.macs for m in self.members)

    @property
    def shared(self) -> bool:
        return any(m.shared_params for m in self.members)


def flagged(l: Layer, warned: Sequence[str] = ()) -> bool:
    """A layer the compact view must show on its own row."""
    return bool(_flags(l)) or l.name in warned


def _warned(report: Report) -> set[str]:
    return {w.layer for w in report.warnings if w.layer}


def _foldable(l: Layer, prev: Layer, warned: set[str]) -> bool:
    return (l.kind in FOLDED_KINDS and not flagged(l, warned) and list(l.inputs) == [prev.name]
            and (l.rf, l.rf_min, l.jump, l.start) == (prev.rf, prev.rf_min, prev.jump, prev.start))


def _folded_type(head: Layer, folded: list[Layer]) -> str:
    if not folded:
        return head.type
    label = head.type + "".join("+" + _SHORT.get(m.type, m.type) for m in folded)
    return label if len(label) <= 28 else f"{head.type} +{len(folded)}"


def compact_rows(report: Report) -> list[Row]:
    """Pointwise (BatchNorm, activations, dropout) and shape-only layers folded into the row
    they follow, when they read only its last layer and change neither RF, jump nor start."""
    warned = _warned(report)
    groups: list[list[Layer]] = []
    for l in report.layers:
        if groups and _foldable(l, groups[-1][-1], warned):
            groups[-1].append(l)
        else:
            groups.append([l])
    return [Row(g[0].name, _folded_type(g[0], g[1:]), g[-1], g, _kernel(g[0]), _flags(g[0])) for g in groups]


def verbose_rows(report: Report) -> list[Row]:
    return [Row(l.name, l.type, l, [l], _kernel(l), _flags(l)) for l in report.layers]


def _prefix(name: str, depth: int) -> str:
    return ".".join(name.split(".")[:depth])


def _group_type(members: list[Layer]) -> str:
    if len(members) == 1:
        return members[0].type
    main = [m for m in members if m.kind not in FOLDED_KINDS] or members
    counts: dict[str, int] = {}
    for m in main:
        counts[m.type] = counts.get(m.type, 0) + 1
    label = ", ".join(t if n == 1 else f"{t} x{n}" for t, n in counts.items())
    return label if len(label) <= 32 else label[:29] + "..."


def depth_rows(report: Report, depth: int) -> list[Row]:
    """One row per module at nesting ``depth`` (1: the model's direct children), consecutive
    layers of one module together; params and MACs summed, the values at the module's output
    (for a top-level block, the layer that produced its output).  Flags of the layers inside
    are listed with their names."""
    if depth < 1:
        raise ValueError(f"depth must be 1 or more, not {depth}")
    blocks = {b.name: b for b in report.blocks} if depth == 1 else {}
    warned = _warned(report)
    groups: list[tuple[str, list[Layer]]] = []
    for l in report.layers:
        key = _prefix(l.name, depth)
        if groups and groups[-1][0] == key:
            groups[-1][1].append(l)
        elif groups and blocks and key not in blocks and _foldable(l, groups[-1][1][-1], warned):
            groups[-1][1].append(l)  # a functional flatten/activation after a top-level block
        else:
            groups.append((key, [l]))
    rows = []
    for key, members in groups:
        block = blocks.get(key)
        by_name = {m.name: m for m in members}
        shown = by_name.get(block.layer, members[-1]) if block else members[-1]
        kernel = _kernel(members[0]) if len(members) == 1 else ""
        kind = block.type if block else _group_type(members)
        if not block and len(members) > 1 and all(_foldable(m, p, warned) for p, m in zip(members, members[1:])):
            kind, kernel = _folded_type(members[0], members[1:]), _kernel(members[0])
        flags = []
        for m in members:
            f = _flags(m)
            if f:
                flags.append(f if m is shown else f"{f} at {m.name}")
        flags_text = "; ".join(flags[:3]) + (f"; +{len(flags) - 3} more" if len(flags) > 3 else "")
        rows.append(Row(key, kind, shown, members, kernel, flags_text))
    return rows


def layer_rows(report: Report, depth: Optional[int] = None, verbose: bool = False) -> list[Row]:
    """The rows of the layer table: compact by default, by module at ``depth``, or all."""
    if verbose and depth is not None:
        raise ValueError("verbose and depth contradict each other: choose one")
    if verbose:
        return verbose_rows(report)
    if depth is not None:
        return depth_rows(report, depth)
    return compact_rows(report)


TABLE_HEAD = ["layer", "type", "output", "kernel", "RF", "RF min", "jump", "start", "params", "MACs", "flags"]


def row_cells(r: Row) -> list[str]:
    l = r.shown
    return [r.name, r.type, _x(l.output_shape), r.kernel, _x(l.rf), _x(l.rf_min), _x(l.jump), _starts(l.start),
            f"{r.params:,}" if r.params else ("shared" if r.shared else ""), _macs(r.macs), r.flags]


def table(report: Report, depth: Optional[int] = None, verbose: bool = False, tablefmt: str = "simple") -> str:
    """The layer table (see :func:`layer_rows` for the views)."""
    rows = layer_rows(report, depth, verbose)
    head = (["module"] + TABLE_HEAD[1:]) if depth is not None and not verbose else TABLE_HEAD
    return tabulate([row_cells(r) for r in rows], head, tablefmt=tablefmt, disable_numparse=True)


def _macs(v: int) -> str:
    if not v:
        return ""
    for unit, div in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if v >= div:
            return f"{v / div:.3g}{unit}"
    return str(v)


def summary(report: Report) -> str:
    p, c, rf = report.params, report.counts, report.rf
    lines = [f"model: {report.model}   input: {_x(report.input_size)}",
             f"parameters: {p.total:,} total, {p.trainable:,} trainable   MACs: {report.macs:,}",
             "counts: " + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in c.items())]
    exact = "exact" if rf.exact else "NOT exact (see warnings)"
    if rf.global_layer:
        lines.append(f"model RF: {_x(rf.size)} (jump {_x(rf.jump)}) at the input of the global pool "
                     f"{rf.global_layer}; {_x(rf.with_global)} if the pool's window is counted; {exact}")
    else:
        lines.append(f"model RF: {_x(rf.size)} (jump {_x(rf.jump)}) at {rf.at}; {exact}")
    if rf.min and tuple(rf.min) != tuple(rf.size):
        lines.append(f"shortest path RF: {_x(rf.min)} (skip connections / phases)")
    if len(rf.outputs) > 1:
        lines.append(f"{len(rf.outputs)} outputs (the model RF is the largest): "
                     + ", ".join(f"{o.layer} {_x(o.size)}" for o in rf.outputs))
    return "\n".join(lines)


def blocks_text(report: Report) -> str:
    if not report.blocks:
        return ""
    rows = [[b.name, b.type, _x(b.output_shape), _x(b.rf), _x(b.jump), f"{b.params:,}"] for b in report.blocks]
    return "blocks (at the end of each top-level module):\n" + tabulate(
        rows, ["block", "type", "output", "RF", "jump", "params"], tablefmt="simple", disable_numparse=True)


def checks_text(check: "DesignCheck") -> str:
    """The rules section: one line per rule, the layers of a failing one, its fixes."""
    if not check.results:
        return ""
    failed = len(check.failed)
    lines = [f"rules: {len(check.results) - failed} passed, {failed} failed"]
    for r in check.results:
        lines.append(f"  [{'PASS' if r.passed else 'FAIL'}] {r.rule}: {r.message}")
        if not r.passed and r.layers:
            lines.append(f"         layers: {', '.join(r.layers[:8])}{' ...' if len(r.layers) > 8 else ''}")
        for a in check.advice(r.rule):
            lines.append(f"         fix: {a}")
    return "\n".join(lines)


def _parts(viewed: Viewed) -> tuple[Report, "DesignCheck | None", list[Diagnostic]]:
    if isinstance(viewed, Report):
        return viewed, None, list(viewed.warnings)
    return viewed.report, viewed, viewed.warnings


def _view(viewed: Viewed, depth: Optional[int], verbose: Optional[bool]) -> tuple[Optional[int], bool, list[str]]:
    """The view asked for, else the one the check carries (``rfcheck.summary(..., depth=1)``)."""
    if isinstance(viewed, Report):
        return depth, bool(verbose), []
    if depth is None and verbose is None:
        depth, verbose = viewed.depth, viewed.verbose
    return depth, bool(verbose), list(viewed.notes)


def text(viewed: Viewed, depth: Optional[int] = None, verbose: Optional[bool] = None) -> str:
    report, check, warnings = _parts(viewed)
    depth, verbose, notes = _view(viewed, depth, verbose)
    parts = [f"note: {n}" for n in notes] + [table(report, depth, verbose), "", summary(report)]
    b = blocks_text(report)
    if b:
        parts += ["", b]
    if warnings:
        parts += ["", "warnings:"] + [f"  - {w.code}: {w.message}" for w in warnings]
    if check is not None and check.results:
        parts += ["", checks_text(check)]
    if check is not None and getattr(check, "claims", None) is not None:
        parts += ["", check.claims.text()]
    return "\n".join(parts)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def markdown(viewed: Viewed, depth: Optional[int] = None, verbose: Optional[bool] = None) -> str:
    """The same report for a pull request or a README."""
    report, check, warnings = _parts(viewed)
    depth, verbose, notes = _view(viewed, depth, verbose)
    out = [f"## rfcheck: {report.model} (input {_x(report.input_size)})", ""]
    if notes:
        out += [f"*Note: {_md_escape(n)}*" for n in notes] + [""]
    if check is not None and check.results:
        results = check.results
        failed = len(check.failed)
        out += [f"**{'PASS' if not failed else 'FAIL'}**: {len(results) - failed} of {len(results)} rules hold", "",
                "| rule | result | value | limit | details |", "|---|---|---|---|---|"]
        for r in results:
            out.append(f"| `{r.rule}` | {'✅ pass' if r.passed else '❌ FAIL'} | {_md_escape(_val(r.value))} | "
                       f"{_md_escape(_val(r.limit))} | {_md_escape(r.message)} |")
        advice = [(r.rule, a) for r in results for a in check.advice(r.rule)]
        if advice:
            out += ["", "**How to fix:**", ""] + [f"- `{rule}`: {_md_escape(a)}" for rule, a in advice]
        out.append("")
    if check is not None and getattr(check, "claims", None) is not None:
        out += [check.claims.markdown(), ""]
    out += ["```", summary(report), "```", ""]
    if report.blocks:
        out += ["| block | output | RF | jump | params |", "|---|---|---|---|---|"]
        out += [f"| {b.name} | {_x(b.output_shape)} | {_x(b.rf)} | {_x(b.jump)} | {b.params:,} |" for b in report.blocks]
        out.append("")
    rows = [[_md_escape(c) for c in row_cells(r)] for r in layer_rows(report, depth, verbose)]
    head = (["module"] + TABLE_HEAD[1:]) if depth is not None and not verbose else TABLE_HEAD
    out += ["<details><summary>layers</summary>", "",
            tabulate(rows, head, tablefmt="github", disable_numparse=True), "", "</details>"]
    if warnings:
        out += ["", "**Warnings:**", ""] + [f"- `{w.code}` {_md_escape(w.message)}" for w in warnings]
    return "\n".join(out) + "\n"


def _val(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return _x(v) if all(isinstance(x, (int, float, Fraction)) for x in v) else ", ".join(map(str, v)) or "-"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def json_text(checks: Sequence["DesignCheck"]) -> str:
    docs = [c.to_dict() for c in checks]
    return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, default=number)
