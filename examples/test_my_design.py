"""How a user checks a design in their own test suite (run: python -m pytest examples/).

Two ways, both shipping with rfcheck: the assert_design() function, and the pytest plugin's
marker + fixture (installed with rfcheck, no conftest needed).  The brief's rules:
RF > 52, fewer than 100,000 parameters, GAP, two depthwise-separable convs, one dilated conv.
"""
import os
import sys

import pytest

from rfcheck.testing import assert_design

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from my_net import MyNet  # noqa: E402

BRIEF = dict(min_rf=53, max_params=99_999, require_gap=True, min_dws=2, min_dilated=1)


def test_budget_and_rf():
    # the rules this design meets: passes, and returns the report for more assertions
    report = assert_design(MyNet(), (3, 32, 32), min_rf=53, max_params=99_999, require_gap=True)
    assert report.counts["max_pool"] == 3


# The fixture also applies the project's [rfcheck] config (in this repository: the full brief,
# with min_dws = 2 and min_dilated = 1); the marker overrides what this design does not meet yet.
@pytest.mark.rfcheck(min_rf=53, max_params=100_000, require_gap=True, blocks="C1,C2,C3,C4,O*",
                     min_dws=0, min_dilated=0, input_size=(3, 32, 32))
def test_with_the_plugin(rfcheck):
    report = rfcheck(MyNet())
    assert [b.name for b in report.blocks] == ["c1", "c2", "c3", "c4", "o"]


@pytest.mark.xfail(reason="MyNet has no depthwise-separable or dilated conv yet: the failure message "
                          "names both rules and the layers to change", strict=True)
def test_full_brief():
    assert_design(MyNet(), (3, 32, 32), **BRIEF)
