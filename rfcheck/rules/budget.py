"""Budget rules: parameters and multiply-accumulates, and how to get under them."""
from __future__ import annotations

from ..report import Layer, Report
from ..suggestion import Change, Suggestion
from .base import CheckResult, Rule, fmt
from .parsers import parse_count

#: layers named in a failing budget rule's message
HEAVIEST_SHOWN = 3
#: how many of the heaviest convs the fix tries as depthwise-separable pairs
SEPARABLE_CANDIDATES = 6
#: a Linear holding more than this share of the parameter limit gets its own advice
BIG_LINEAR_SHARE = 0.25


def heaviest(report: Report, key: str, n: int = HEAVIEST_SHOWN) -> list[Layer]:
    return sorted((l for l in report.layers if getattr(l, key)), key=lambda l: -getattr(l, key))[:n]


def _budget(rule: str, what: str, key: str):
    def run(report: Report, limit: int) -> CheckResult:
        value = report.params.total if key == "params" else report.macs
        heavy = heaviest(report, key)
        passed = value <= limit
        msg = f"{what} {value:,} {'<=' if passed else '>'} {limit:,}"
        if not passed:
            msg += "; heaviest: " + ", ".join(f"{l.name} {getattr(l, key):,}" for l in heavy)
        return CheckResult(rule, value, limit, passed, msg, [l.name for l in heavy])
    return run


def _cost(report: Report, key: str) -> int:
    return report.params.total if key == "params" else report.macs


def _cheaper(key: str):
    def advise(ctx, result: CheckResult) -> list[Suggestion]:
        """Make the heaviest full convs depthwise-separable; point at a big Linear."""
        report = ctx.report
        heavy = sorted(((l, m) for l, m in ctx.convs if m.groups == 1), key=lambda lm: -getattr(lm[0], key))
        options = [[Change(l.name, "separable")] for l, _ in heavy[:SEPARABLE_CANDIDATES]]
        now = fmt(_cost(report, key))
        out = ctx.search(result.rule, options, lambda rep: -_cost(rep, key),
                         lambda rep: f"{key} {now} -> {fmt(_cost(rep, key))}, model RF {fmt(tuple(rep.rf.size))}",
                         short_of="the design needs fewer or narrower layers (fewer channels), not only cheaper "
                                  "convs", additive=True)
        for l in report.layers:
            if l.kind == "linear" and l.params > (result.limit or 0) * BIG_LINEAR_SHARE and not report.counts["gap"]:
                out.append(ctx.hint(result.rule, f"{l.name} ({l.type}) holds {l.params:,} parameters: global "
                                                 "average pooling before it shrinks its input to the channel count"))
        return out
    return advise


MAX_PARAMS = Rule("max_params", "N", "fail unless the total of unique parameters is <= N (100000, 100k)",
                  parse_count, _budget("max_params", "parameters", "params"), _cheaper("params"))
MAX_MACS = Rule("max_macs", "N", "fail unless the multiply-accumulates per input are <= N (e.g. 20M)",
                parse_count, _budget("max_macs", "MACs per input", "macs"), _cheaper("macs"))
