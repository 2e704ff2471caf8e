"""Rules on the model RF: its minimum, maximum and share of the input, and how to grow it."""
from __future__ import annotations

from ..report import Report
from ..suggestion import Change, Suggestion, keeps_size
from .base import CheckResult, Rule, axes, bound_note, fmt, min_axis, where
from .parsers import parse_count, parse_fraction

#: how many convs (the ones with the largest input jump, where dilation or a stride gains most)
#: each RF fix tries
RF_CANDIDATES = 6


def min_rf(report: Report, limit: int) -> CheckResult:
    size = tuple(report.rf.size)
    passed = bool(size) and all(s >= limit for s in size)
    msg = f"model RF {axes(size)} {where(report)} {'>=' if passed else '<'} {limit}{bound_note(report)}"
    return CheckResult("min_rf", size, limit, passed, msg, [report.rf.at])


def max_rf(report: Report, limit: int) -> CheckResult:
    size = tuple(report.rf.size)
    passed = all(s <= limit for s in size)
    msg = f"model RF {axes(size)} {where(report)} {'<=' if passed else '>'} {limit}{bound_note(report)}"
    return CheckResult("max_rf", size, limit, passed, msg, [report.rf.at])


def input_fraction(report: Report, fraction: float) -> CheckResult:
    size = tuple(report.rf.size)
    spatial = tuple(report.input_size[1:])
    need = tuple(fraction * s for s in spatial)
    passed = bool(size) and len(size) == len(spatial) and all(r >= n for r, n in zip(size, need))
    ratio = "x".join(f"{r / s:.2f}" for r, s in zip(size, spatial))
    msg = (f"model RF {axes(size)} is {ratio} of the {axes(spatial)} input "
           f"{'>=' if passed else '<'} {fraction:g}")
    if report.unproductive:
        msg += f"; {len(report.unproductive)} unproductive layer(s) after full coverage: " + \
            ", ".join(report.unproductive[:5])
    return CheckResult("input_fraction", [round(r / s, 4) for r, s in zip(size, spatial)], fraction, passed, msg,
                       [report.rf.at])


def grow_rf(ctx, result: CheckResult) -> list[Suggestion]:
    """Dilate or stride the convs with the largest input jump (the gain grows with it)."""
    report = ctx.report
    convs = ctx.convs
    latest = lambda lm: -max(lm[0].jump)
    dil = sorted(((l, m) for l, m in convs if all(d == 1 for d in m.dilation) and keeps_size(m)),
                 key=latest)[:RF_CANDIDATES]
    strd = sorted(((l, m) for l, m in convs if all(s == 1 for s in m.stride)), key=latest)[:RF_CANDIDATES]
    options = [[Change(l.name, "dilate", d)] for d in (2, 3) for l, _ in dil] + \
        [[Change(l.name, "stride")] for l, _ in strd]
    rf_now = fmt(tuple(report.rf.size))
    out = ctx.search(result.rule, options, min_axis,
                     lambda rep: f"model RF {rf_now} -> {fmt(tuple(rep.rf.size))}, params {fmt(rep.params.total)}")
    if report.counts.get("transposed"):
        out.append(ctx.hint(result.rule, "a stride-1 transposed conv does not help: it acts like a padded conv of "
                                         "the same kernel"))
    return out


MIN_RF = Rule("min_rf", "N", "fail unless the model RF is >= N on every axis (the RF at the input of the global "
              "pool, not counting its window)", parse_count, min_rf, grow_rf)
MAX_RF = Rule("max_rf", "N", "fail unless the model RF is <= N on every axis", parse_count, max_rf)
INPUT_FRACTION = Rule("input_fraction", "F", "fail unless the model RF is >= F times the input size on every axis "
                      "(1.0: the RF spans the whole input)", parse_fraction, input_fraction, grow_rf)
