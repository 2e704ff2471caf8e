"""One design check = analyse + rules + advice; the CLI, ``assert_design`` and the pytest
plugin all go through here so they cannot disagree."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch.nn as nn

from .analysis import analyze
from .checks import CheckResult, parse_rules, run_checks
from .report import Report


def check_design(model: nn.Module, input_size: Optional[Sequence[int]] = None, rules: Optional[dict[str, Any]] = None,
                 advice: bool = True, rf_at: Optional[str] = None, name: Optional[str] = None,
                 parsed: bool = False) -> tuple[Report, list[CheckResult]]:
    """Analyse ``model`` and run ``rules`` (names as in the CLI, underscores: min_rf=52).  With
    ``advice``, failing rules get checked suggestions.  Unknown rule names raise ValueError."""
    limits = dict(rules or {}) if parsed else parse_rules(dict(rules or {}))
    size = tuple(input_size) if input_size is not None else (3, 32, 32)
    report = analyze(model, input_size=size, rf_at=rf_at, name=name)
    results = run_checks(report, limits)
    if advice and any(not r.passed for r in results):
        from .advice import suggest
        suggest(model, size, report, results, limits)
    return report, results
