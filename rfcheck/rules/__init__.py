"""The design rules: one table that the CLI, the config file, ``rfcheck.check``,
``assert_design``, the pytest plugin and the trainer all read.  An entry holds everything
about a rule (name, parser, help, check, advice), so a new rule is one entry; see
CONTRIBUTING.md.  Nothing here imports torch."""
from __future__ import annotations

from typing import Any

from ..report import Report
from . import budget, counts, layout, rf, strict
from .base import CheckResult, Rule
from .parsers import did_you_mean, parse_bool, parse_count, parse_fraction, parse_names

RULES: dict[str, Rule] = {}


def register_rule(rule: Rule) -> Rule:
    """Add a rule to the table (after the built-in ones; the same name replaces it)."""
    RULES[rule.name] = rule
    return rule


for _rule in (rf.MIN_RF, rf.MAX_RF, budget.MAX_PARAMS, budget.MAX_MACS, layout.REQUIRE_GAP, *counts.RULES,
              layout.FORBID, layout.BLOCKS, rf.INPUT_FRACTION, strict.STRICT):
    register_rule(_rule)


def parse_rules(values: dict[str, Any], source: str = "") -> dict[str, Any]:
    """Validate and parse rule values; an unknown name or a bad value raises ValueError naming it."""
    out = {}
    where = f"{source}: " if source else ""
    for key, raw in values.items():
        name = key.replace("-", "_")
        if name not in RULES:
            raise ValueError(f"{where}unknown rule {key!r}{did_you_mean(name, RULES)}; known: {', '.join(RULES)}")
        if raw is None:
            continue
        try:
            out[name] = RULES[name].parse(raw)
        except ValueError as e:
            raise ValueError(f"{where}{key} = {raw!r}: {e}") from None
    return out


def run_checks(report: Report, limits: dict[str, Any]) -> list[CheckResult]:
    """Run the rules whose limit is set (not None; a switch set to False is off), in table order."""
    unknown = set(limits) - set(RULES)
    if unknown:
        raise KeyError(f"unknown rule(s): {', '.join(sorted(unknown))}; known: {', '.join(RULES)}")
    results = []
    for name, rule in RULES.items():
        v = limits.get(name)
        if v is None or (rule.flag and v is False):
            continue
        results.append(rule.check(report, v))
    return results


__all__ = ["RULES", "Rule", "CheckResult", "register_rule", "parse_rules", "run_checks", "did_you_mean",
           "parse_bool", "parse_count", "parse_fraction", "parse_names"]
