"""Design checks: one registry that the CLI (and later the config file and pytest) read.

Each check reads a :class:`Report` and a limit and returns a :class:`CheckResult` saying the
rule, the measured value, the limit, pass/fail and the layers involved."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .report import Report


@dataclass
class CheckResult:
    rule: str
    value: Any
    limit: Any
    passed: bool
    message: str
    layers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "value": self.value, "limit": self.limit, "passed": self.passed,
                "message": self.message, "layers": list(self.layers)}


@dataclass
class Check:
    name: str            # keyword name, e.g. "max_params"
    option: str          # CLI flag, e.g. "--max-params"
    metavar: str
    help: str
    parse: Callable[[str], Any]
    run: Callable[[Report, Any], CheckResult]


CHECKS: dict[str, Check] = {}


def parse_count(text: str) -> int:
    """An integer such as 100000, 100_000, 100k or 1.5M."""
    s = str(text).strip().replace("_", "").replace(",", "")
    mult = 1
    if s[-1:].lower() in ("k", "m"):
        mult = 1000 if s[-1].lower() == "k" else 1_000_000
        s = s[:-1]
    try:
        value = float(s) * mult
    except ValueError:
        raise ValueError(f"expected a whole number such as 100000 or 100k, got {text!r}") from None
    if value != int(value) or value < 0:
        raise ValueError(f"expected a whole number >= 0, got {text!r}")
    return int(value)


def check(name: str, option: str, metavar: str, help: str, parse: Callable[[str], Any] = parse_count):
    def deco(fn: Callable[[Report, Any], CheckResult]) -> Callable[[Report, Any], CheckResult]:
        CHECKS[name] = Check(name, option, metavar, help, parse, fn)
        return fn
    return deco


def _axes(size) -> str:
    return "x".join(str(s) for s in size)


def _bound_note(report: Report) -> str:
    return "" if report.rf.exact else " (not exact: an unknown op or bound is involved, see warnings)"


@check("max_params", "--max-params", "N", "fail unless the total of unique parameters is <= N")
def max_params(report: Report, limit: int) -> CheckResult:
    value = report.params.total
    heavy = sorted((l for l in report.layers if l.params), key=lambda l: -l.params)[:3]
    passed = value <= limit
    msg = f"parameters {value:,} {'<=' if passed else '>'} {limit:,}"
    if not passed:
        msg += "; heaviest: " + ", ".join(f"{l.name} {l.params:,}" for l in heavy)
    return CheckResult("max_params", value, limit, passed, msg, [l.name for l in heavy])


@check("min_rf", "--min-rf", "N", "fail unless the model RF is >= N on every axis")
def min_rf(report: Report, limit: int) -> CheckResult:
    size = list(report.rf.size)
    passed = bool(size) and all(s >= limit for s in size)
    where = f"at {report.rf.at}"
    if report.rf.global_layer:
        where = f"at the input of {report.rf.global_layer}"
    msg = (f"model RF {_axes(size)} {where} {'>=' if passed else '<'} {limit}{_bound_note(report)}")
    return CheckResult("min_rf", size, limit, passed, msg, [report.rf.at])


def run_checks(report: Report, limits: dict[str, Any]) -> list[CheckResult]:
    """Run the checks whose limit is set (not None), in registry order."""
    unknown = set(limits) - set(CHECKS)
    if unknown:
        raise KeyError(f"unknown check(s): {', '.join(sorted(unknown))}; known: {', '.join(CHECKS)}")
    return [CHECKS[name].run(report, limit) for name, limit in
            ((n, limits.get(n)) for n in CHECKS) if limit is not None]


def get_check(name: str) -> Optional[Check]:
    return CHECKS.get(name)
