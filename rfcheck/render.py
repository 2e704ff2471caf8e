"""Views of a :class:`DesignCheck` (or of a bare :class:`Report`): the text report, markdown
and JSON.  Nothing here computes a value; each view only formats the result."""
from __future__ import annotations

import json
from fractions import Fraction
from typing import TYPE_CHECKING, Sequence, Union

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
    return ",".join(flags)


def table(report: Report) -> str:
    rows = [[l.name, l.type, _x(l.output_shape), _kernel(l), _x(l.rf), _x(l.rf_min), _x(l.jump),
             _starts(l.start), f"{l.params:,}" if l.params else ("shared" if l.shared_params else ""),
             _macs(l.macs), _flags(l)] for l in report.layers]
    head = ["layer", "type", "output", "kernel", "RF", "RF min", "jump", "start", "params", "MACs", "flags"]
    return tabulate(rows, head, tablefmt="simple", disable_numparse=True)


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


def text(viewed: Viewed) -> str:
    report, check, warnings = _parts(viewed)
    parts = [table(report), "", summary(report)]
    b = blocks_text(report)
    if b:
        parts += ["", b]
    if warnings:
        parts += ["", "warnings:"] + [f"  - {w.code}: {w.message}" for w in warnings]
    if check is not None and check.results:
        parts += ["", checks_text(check)]
    return "\n".join(parts)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def markdown(viewed: Viewed) -> str:
    """The same report for a pull request or a README."""
    report, check, warnings = _parts(viewed)
    out = [f"## rfcheck: {report.model} (input {_x(report.input_size)})", ""]
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
    out += ["```", summary(report), "```", ""]
    if report.blocks:
        out += ["| block | output | RF | jump | params |", "|---|---|---|---|---|"]
        out += [f"| {b.name} | {_x(b.output_shape)} | {_x(b.rf)} | {_x(b.jump)} | {b.params:,} |" for b in report.blocks]
        out.append("")
    rows = [[l.name, l.type, _x(l.output_shape), _kernel(l), _x(l.rf), _x(l.rf_min), _x(l.jump), _starts(l.start),
             f"{l.params:,}" if l.params else "", _macs(l.macs), _flags(l)] for l in report.layers]
    head = ["layer", "type", "output", "kernel", "RF", "RF min", "jump", "start", "params", "MACs", "flags"]
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
