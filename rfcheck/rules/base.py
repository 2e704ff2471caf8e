"""What a rule is: one table entry holding its name, option, parser, help, the check that
reads a :class:`Report` and the advice that says how to fix a failure."""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..report import Report

if TYPE_CHECKING:  # the advice engine needs torch; rules do not
    from ..advice import AdviceContext
    from ..suggestion import Suggestion


@dataclass
class CheckResult:
    """One rule's outcome: the measured value, the limit, pass/fail and the layers involved."""
    rule: str
    value: Any
    limit: Any
    passed: bool
    message: str
    layers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "value": plain(self.value), "limit": plain(self.limit), "passed": self.passed,
                "message": self.message, "layers": list(self.layers)}


def plain(v: Any) -> Any:
    """A value as JSON-ready Python: tuples as lists, whole Fractions as ints."""
    if isinstance(v, (tuple, list)):
        return [plain(x) for x in v]
    if isinstance(v, Fraction):
        return v.numerator if v.denominator == 1 else float(v)
    return v


Check = Callable[[Report, Any], CheckResult]
Advise = Callable[["AdviceContext", CheckResult], "list[Suggestion]"]


@dataclass(frozen=True)
class Rule:
    name: str                      # keyword and config key, e.g. "max_params"
    metavar: Optional[str]         # None for a switch (--require-gap)
    help: str
    parse: Callable[[Any], Any]    # from a CLI/config string or a Python value; idempotent
    check: Check
    advise: Optional[Advise] = None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def flag(self) -> bool:
        return self.metavar is None


def axes(size) -> str:
    """``(32, 32)`` as ``32x32``."""
    return "x".join(str(plain(s)) for s in size) if size else "-"


def fmt(v: Any) -> str:
    """A value in advice text: sizes as 32x32, counts with thousands separators."""
    if isinstance(v, (tuple, list)):
        return "x".join(str(x) for x in v)
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def min_axis(report: Report) -> int:
    """The model RF's smallest axis: what an RF rule is short of."""
    return min(report.rf.size) if report.rf.size else 0


def where(report: Report) -> str:
    if report.rf.global_layer:
        return f"at the input of the global pool {report.rf.global_layer}"
    return f"at {report.rf.at}"


def bound_note(report: Report) -> str:
    return "" if report.rf.exact else " (NOT exact: an unknown op or a bound is involved, see warnings)"
