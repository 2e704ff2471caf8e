"""Rules that count design features (depthwise-separable pairs, dilated, transposed and
depthwise convs), and how to add the missing ones."""
from __future__ import annotations

from ..report import Report
from ..suggestion import Change, Suggestion, keeps_size
from .base import CheckResult, Rule, fmt, min_axis
from .parsers import parse_count

#: members of a count named in its message
MEMBERS_SHOWN = 8
#: how many convs each count fix tries
COUNT_CANDIDATES = 6
#: grouped-but-not-depthwise convs explained in the min_dws advice
GROUPED_EXPLAINED = 2


def _min_count(rule: str, key: str, what: str):
    def run(report: Report, limit: int) -> CheckResult:
        value = report.counts.get(key, 0)
        members = report.count_layers.get(key, [])
        passed = value >= limit
        msg = f"{value} {what} {'>=' if passed else '<'} {limit}"
        if members:
            msg += ": " + ", ".join(members[:MEMBERS_SHOWN]) + (" ..." if len(members) > MEMBERS_SHOWN else "")
        return CheckResult(rule, value, limit, passed, msg, list(members))
    return run


def more_separable(ctx, result: CheckResult) -> list[Suggestion]:
    """Split the heaviest full convs; explain grouped convs that do not count."""
    report = ctx.report
    cands = sorted(((l, m) for l, m in ctx.convs if m.groups == 1), key=lambda lm: -lm[0].params)
    options = [[Change(l.name, "separable")] for l, _ in cands[:COUNT_CANDIDATES]]
    pairs = report.counts["depthwise_separable"]
    out = ctx.search(result.rule, options, lambda rep: (rep.counts["depthwise_separable"], -rep.params.total),
                     lambda rep: f"depthwise-separable pairs {pairs} -> {rep.counts['depthwise_separable']}, params "
                                 f"{fmt(report.params.total)} -> {fmt(rep.params.total)}, model RF "
                                 f"{fmt(tuple(rep.rf.size))} (unchanged receptive field: same kernel)")
    depthwise = set(report.count_layers.get("depthwise", []))
    grouped = [l for l in report.layers if l.kind == "conv" and l.groups and l.groups > 1 and l.name not in depthwise]
    for l in grouped[:GROUPED_EXPLAINED]:
        out.append(ctx.hint(result.rule, f"{l.name} has groups={l.groups} but is not depthwise (groups must equal "
                                         "in_channels), so it is not counted"))
    return out


def more_dilated(ctx, result: CheckResult) -> list[Suggestion]:
    """Dilate a stride-1 conv whose output size the padding can keep, latest first."""
    report = ctx.report
    cands = sorted(((l, m) for l, m in ctx.convs if all(d == 1 for d in m.dilation) and all(s == 1 for s in m.stride)
                    and keeps_size(m)), key=lambda lm: -max(lm[0].jump))
    options = [[Change(l.name, "dilate", 2)] for l, _ in cands[:COUNT_CANDIDATES]]
    rf_now = fmt(tuple(report.rf.size))
    dilated = report.counts["dilated"]
    return ctx.search(result.rule, options, lambda rep: (rep.counts["dilated"], min_axis(rep)),
                      lambda rep: f"dilated convs {dilated} -> {rep.counts['dilated']}, model RF {rf_now} -> "
                                  f"{fmt(tuple(rep.rf.size))}, params unchanged ({fmt(rep.params.total)}), output "
                                  "size kept by the padding")


RULES = (
    Rule("min_dws", "N", "fail unless there are >= N depthwise-separable pairs (a kxk conv with groups = in_channels, "
         "k > 1, then a 1x1 conv through BN/activation only)", parse_count,
         _min_count("min_dws", "depthwise_separable", "depthwise-separable pair(s)"), more_separable),
    Rule("min_dilated", "N", "fail unless there are >= N convs with dilation > 1", parse_count,
         _min_count("min_dilated", "dilated", "dilated conv(s)"), more_dilated),
    Rule("min_transposed", "N", "fail unless there are >= N transposed convs", parse_count,
         _min_count("min_transposed", "transposed", "transposed conv(s)")),
    Rule("min_depthwise", "N", "fail unless there are >= N depthwise convs (groups = in_channels)", parse_count,
         _min_count("min_depthwise", "depthwise", "depthwise conv(s)")),
)
