"""The strict rule: every value exact (no unknown op, no bound)."""
from __future__ import annotations

from ..report import Report
from ..suggestion import Suggestion
from .base import CheckResult, Rule
from .parsers import parse_bool

#: layers listed in the result, and unknown ops named in its message
LAYERS_LISTED = 20
UNKNOWN_SHOWN = 5


def strict(report: Report, on: bool) -> CheckResult:
    bad = [l.name for l in report.layers if l.unknown or not l.exact]
    unknown = [l for l in report.layers if l.unknown]
    passed = (not on) or (report.exact and not bad)
    if not bad:
        msg = "every value is exact"
    else:
        msg = f"{len(bad)} layer(s) not exact" + (
            f"; unknown: {', '.join(f'{l.name} ({l.type})' for l in unknown[:UNKNOWN_SHOWN])}" if unknown else "")
    return CheckResult("strict", not bad, True, passed, msg, bad[:LAYERS_LISTED])


def register_rules(ctx, result: CheckResult) -> list[Suggestion]:
    return [ctx.hint(result.rule, "register a rule for each unknown op with rfcheck.register_function / "
                                  "register_module, or rewrite it with standard layers")]


STRICT = Rule("strict", None, "also fail when any value is not exact (an unknown op, a bound only)", parse_bool,
              strict, register_rules)
