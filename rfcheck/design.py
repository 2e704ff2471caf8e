"""One design check = analyse + rules + advice, returned as one :class:`DesignCheck`.  The
CLI, ``rfcheck.check``, ``assert_design``, the pytest fixture and the trainer's gate all go
through :func:`run_check`, so they cannot disagree."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from .diagnostics import Diagnostic, ignored
from .options import Settings, resolve
from .report import Report
from .rules import RULES, CheckResult, run_checks
from .suggestion import Suggestion

if TYPE_CHECKING:
    import torch


@dataclass
class DesignCheck:
    """The outcome of checking one model: the analysis, each rule's result, the checked
    suggestions for the failing ones, and whether all hold.  ``str()`` is the text report,
    :meth:`markdown` the markdown one, :meth:`to_dict` the JSON document."""
    report: Report
    results: list[CheckResult]
    suggestions: dict[str, list[Suggestion]] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def warnings(self) -> list[Diagnostic]:
        """The report's diagnostics less the ignored codes."""
        return [w for w in self.report.warnings if not ignored(w, self.ignore)]

    def result(self, rule: str) -> CheckResult:
        for r in self.results:
            if r.rule == rule:
                return r
        raise KeyError(f"rule {rule!r} was not checked; checked: {', '.join(r.rule for r in self.results)}")

    def advice(self, rule: str) -> list[str]:
        """The suggestions' texts for one rule (what the text report prints as ``fix:``)."""
        return [s.text for s in self.suggestions.get(rule, [])]

    def shown_report(self) -> Report:
        """The report as the views show it: ignored diagnostics left out."""
        return replace(self.report, warnings=self.warnings) if self.ignore else self.report

    def to_dict(self) -> dict[str, Any]:
        d = self.shown_report().to_dict()
        checks = []
        for r in self.results:
            c = r.to_dict()
            if self.advice(r.rule):
                c["advice"] = self.advice(r.rule)
            checks.append(c)
        d["checks"] = checks
        d["passed"] = self.passed
        return d

    def markdown(self) -> str:
        from .render import markdown
        return markdown(self)

    def plot(self, path: Optional[str] = None):
        """RF and jump per layer (a matplotlib Figure; written to ``path`` when given): see
        :func:`rfcheck.plot.plot`."""
        from .plot import plot
        return plot(self.report, path)

    def show_rf(self, image: Any = None, layer: Optional[str] = None, unit: Optional[Sequence[int]] = None,
                **kwargs: Any):
        """What a unit sees, per block, over an image or a grid (a matplotlib Figure): see
        :func:`rfcheck.show.show_rf`."""
        from .show import show_rf
        return show_rf(self.report, image, layer, unit, **kwargs)

    def __str__(self) -> str:
        from .render import text
        return text(self)


def run_check(model: "torch.nn.Module", settings: Settings, *, inputs: Any = None, name: Optional[str] = None,
              op_rules: Optional[dict] = None) -> DesignCheck:
    """Analyse ``model`` with ``settings`` (see :func:`rfcheck.options.resolve`), run its rules
    and, if one fails and advice is on, find checked suggestions."""
    from .analysis import analyze
    how: dict[str, Any] = {"rf_at": settings.rf_at, "rules": op_rules}
    how.update({"inputs": inputs} if inputs is not None else {"input_size": settings.input_size})
    report = analyze(model, name=name, **how)
    results = run_checks(report, settings.rules)
    suggestions: dict[str, list[Suggestion]] = {}
    if settings.advice and any(not r.passed for r in results):
        from .advice import suggest
        suggestions = suggest(model, report, settings.rules, analyze_kwargs=how)
    return DesignCheck(report, results, suggestions, settings.ignore)


def check(model: "torch.nn.Module", input_size: Optional[Sequence[int]] = None, *,
          inputs: Union["torch.Tensor", Sequence["torch.Tensor"], None] = None, advice: bool = True,
          rf_at: Optional[str] = None, ignore: Any = (), name: Optional[str] = None,
          rules: Optional[dict] = None, **limits: Any) -> DesignCheck:
    """Check ``model`` against design rules given as keywords (the CLI's options with
    underscores: ``min_rf=53, max_params=100_000, require_gap=True``); never raises for a
    failing rule: see ``.passed``.  ``rules`` are per-analysis op rules (as for ``analyze``).
    An unknown rule keyword is a TypeError, a bad value a ValueError."""
    for key in limits:
        if key.replace("-", "_") not in RULES:
            from .rules import did_you_mean
            raise TypeError(f"unknown rule {key!r}{did_you_mean(key, RULES)}; known: {', '.join(RULES)}")
    settings = resolve(call={**limits, "input_size": input_size, "advice": advice, "rf_at": rf_at,
                             "ignore": ignore or None})
    return run_check(model, settings, inputs=inputs, name=name, op_rules=rules)
