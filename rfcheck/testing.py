"""Architecture assertions for a test suite::

    from rfcheck.testing import assert_design
    def test_net():
        assert_design(Net(), (3, 32, 32), min_rf=52, max_params=100_000, require_gap=True, min_dws=2)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

from .design import DesignCheck, check
from .render import checks_text
from .rules import RULES, did_you_mean

if TYPE_CHECKING:
    import torch

    from .report import Report


def failure_message(result: DesignCheck) -> str:
    """What a failing assertion says: the model, the input and the rules section."""
    report = result.report
    return (f"{report.model} on input {'x'.join(map(str, report.input_size))} breaks {len(result.failed)} "
            f"design rule(s)\n{checks_text(result)}")


def assert_design(model: "torch.nn.Module", input_size: Optional[Sequence[int]] = None, *, advice: bool = True,
                  rf_at: Optional[str] = None, **rules: Any) -> "Report":
    """Raise AssertionError listing every failing rule (value, limit, layers, how to fix) unless
    all ``rules`` hold; return the report.  Rule keywords are the CLI's options with
    underscores (min_rf, max_params, require_gap, min_dws, forbid, blocks, ...)."""
    for key in rules:
        if key not in RULES:
            raise TypeError(f"assert_design() got an unknown rule {key!r}{did_you_mean(key, RULES)}; "
                            f"known: {', '.join(RULES)}")
    result = check(model, input_size, advice=advice, rf_at=rf_at, **rules)
    if not result.passed:
        raise AssertionError(failure_message(result))
    return result.report
