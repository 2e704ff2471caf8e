"""Architecture assertions for a test suite::

    from rfcheck.testing import assert_design
    def test_net():
        assert_design(Net(), (3, 32, 32), min_rf=52, max_params=100_000, require_gap=True, min_dws=2)
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch.nn as nn

from .checks import CHECKS, did_you_mean
from .design import check_design
from .render import checks_text
from .report import Report


def assert_design(model: nn.Module, input_size: Optional[Sequence[int]] = None, *, advice: bool = True,
                  rf_at: Optional[str] = None, **rules: Any) -> Report:
    """Raise AssertionError listing every failing rule (value, limit, layers, how to fix) unless
    all ``rules`` hold; return the report.  Rule keywords are the CLI's options with
    underscores (min_rf, max_params, require_gap, min_dws, forbid, blocks, ...)."""
    for key in rules:
        if key not in CHECKS:
            raise TypeError(f"assert_design() got an unknown rule {key!r}{did_you_mean(key, CHECKS)}; "
                            f"known: {', '.join(CHECKS)}")
    report, results = check_design(model, input_size, rules, advice=advice, rf_at=rf_at)
    failed = [r for r in results if not r.passed]
    if failed:
        raise AssertionError(f"{report.model} on input {'x'.join(map(str, report.input_size))} breaks "
                             f"{len(failed)} design rule(s)\n{checks_text(results)}")
    return report
