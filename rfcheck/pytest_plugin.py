"""pytest plugin (registered through the ``pytest11`` entry point ``rfcheck``).

A marker sets the rules, the ``rfcheck`` fixture checks a model against them::

    @pytest.mark.rfcheck(min_rf=52, max_params=100_000, require_gap=True, input_size=(3, 32, 32))
    def test_net(rfcheck):
        report = rfcheck(Net())          # fails the test with the rules section if a rule breaks

Rules come from the project's config ([rfcheck] in setup.cfg, ...) < pytest's --rfcheck-*
options < the marker < keywords of the call (:func:`rfcheck.options.resolve`); names, parsers
and defaults are the CLI's (one rule table).  The marker's keywords
are validated before the test runs: an unknown one is an error naming it.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import pytest

from .options import SettingsError, add_rule_options, from_namespace, resolve
from .rules import RULES

#: importing this module (every pytest session of a project with rfcheck installed does) loads
#: no torch: the fixture imports the analysis when a test calls it


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rfcheck", "rfcheck design rules (the same options as the rfcheck command)")
    group.addoption("--rfcheck-isolated", action="store_true", default=False,
                    help="rfcheck fixture: ignore [rfcheck] in setup.cfg / pyproject.toml")
    add_rule_options(group.addoption, prefix="--rfcheck-", dest_prefix="rfcheck_")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rfcheck(**rules): design rules for the rfcheck fixture (min_rf=52, "
                                       "max_params=100_000, require_gap=True, input_size=(3, 32, 32), ...)")


def _marker_kwargs(item: pytest.Item) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers("rfcheck"))):  # closest marker wins
        if mark.args:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.rfcheck takes keywords only "
                                    f"(min_rf=52, ...), got positional {mark.args!r}")
        kwargs.update(mark.kwargs)
    return kwargs


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    errors = []
    for item in items:
        if item.get_closest_marker("rfcheck") is None:
            continue
        try:
            resolve(marker=_marker_kwargs(item))
        except SettingsError as e:
            errors.append(f"{item.nodeid}: {e}")
        if "rfcheck" not in getattr(item, "fixturenames", ()):
            errors.append(f"{item.nodeid}: @pytest.mark.rfcheck needs the test to use the rfcheck fixture "
                          "(def test_x(rfcheck): rfcheck(model))")
    if errors:
        raise pytest.UsageError("\n".join(errors))


class RFCheck:
    """The fixture: call it with a model (and optional rule keywords)."""

    def __init__(self, config: dict[str, Any], command_line: dict[str, Any], marker: dict[str, Any]):
        self.config, self.command_line, self.marker = config, command_line, marker
        self.reports: list = []

    def __call__(self, model, input_size: Optional[Sequence[int]] = None, **kwargs: Any):
        from .design import run_check
        from .testing import failure_message
        try:
            settings = resolve(config=self.config, command_line=self.command_line, marker=self.marker,
                               call={**kwargs, "input_size": input_size})
        except SettingsError as e:
            raise ValueError(f"rfcheck(): {e}") from None
        result = run_check(model, settings)
        self.reports.append(result.report)
        if not result.passed:
            pytest.fail(failure_message(result), pytrace=False)
        return result.report


@pytest.fixture
def rfcheck(request: pytest.FixtureRequest) -> RFCheck:
    """Check a model against the rules of the config file, the command line (--rfcheck-min-rf ...)
    and the test's @pytest.mark.rfcheck(...)."""
    config: dict[str, Any] = {}
    if not request.config.getoption("rfcheck_isolated"):
        from .config import load
        config = load(start=request.config.rootpath).values
    command_line = from_namespace(request.config, RULES, prefix="rfcheck_")
    return RFCheck(config, command_line, _marker_kwargs(request.node))
