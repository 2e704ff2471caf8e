"""pytest plugin (registered through the ``pytest11`` entry point ``rfcheck``).

A marker sets the rules, the ``rfcheck`` fixture checks a model against them::

    @pytest.mark.rfcheck(min_rf=52, max_params=100_000, require_gap=True, input_size=(3, 32, 32))
    def test_net(rfcheck):
        report = rfcheck(Net())          # fails the test with the rules section if a rule breaks

Rules come from the project's config ([rfcheck] in setup.cfg, ...) < the marker < keywords
of the call; names, parsers and defaults are the CLI's (one registry).  The marker's keywords
are validated before the test runs: an unknown one is an error naming it.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import pytest

from .checks import CHECKS, did_you_mean, parse_rules

MARKER_OPTIONS = ("input_size", "rf_at", "advice")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rfcheck", "rfcheck design rules (the same options as the rfcheck command)")
    group.addoption("--rfcheck-isolated", action="store_true", default=False,
                    help="rfcheck fixture: ignore [rfcheck] in setup.cfg / pyproject.toml")
    from .cli import add_rule_options
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


def _validate(kwargs: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    rules, options = {}, {}
    known = list(CHECKS) + list(MARKER_OPTIONS)
    for k, v in kwargs.items():
        if k in MARKER_OPTIONS:
            options[k] = v
        elif k in CHECKS:
            rules[k] = v
        else:
            raise ValueError(f"{where}: unknown keyword {k!r}{did_you_mean(k, known)}; known: {', '.join(known)}")
    try:
        return parse_rules(rules, where), options
    except ValueError as e:
        raise ValueError(str(e)) from None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    errors = []
    for item in items:
        if item.get_closest_marker("rfcheck") is None:
            continue
        try:
            _validate(_marker_kwargs(item), f"{item.nodeid}: @pytest.mark.rfcheck")
        except ValueError as e:
            errors.append(str(e))
        if "rfcheck" not in getattr(item, "fixturenames", ()):
            errors.append(f"{item.nodeid}: @pytest.mark.rfcheck needs the test to use the rfcheck fixture "
                          "(def test_x(rfcheck): rfcheck(model))")
    if errors:
        raise pytest.UsageError("\n".join(errors))


class RFCheck:
    """The fixture: call it with a model (and optional rule keywords)."""

    def __init__(self, rules: dict[str, Any], options: dict[str, Any]):
        self.rules, self.options = rules, options
        self.reports: list = []

    def __call__(self, model, input_size: Optional[Sequence[int]] = None, **kwargs: Any):
        from .design import check_design
        from .render import checks_text
        extra, opts = _validate(kwargs, "rfcheck()")
        rules = {**self.rules, **extra}
        options = {**self.options, **opts}
        size = input_size or options.get("input_size") or (3, 32, 32)
        report, results = check_design(model, size, rules, advice=options.get("advice", True),
                                       rf_at=options.get("rf_at"), parsed=True)
        self.reports.append(report)
        failed = [r for r in results if not r.passed]
        if failed:
            pytest.fail(f"{report.model} on input {'x'.join(map(str, report.input_size))} breaks {len(failed)} "
                        f"design rule(s)\n{checks_text(results)}", pytrace=False)
        return report


@pytest.fixture
def rfcheck(request: pytest.FixtureRequest) -> RFCheck:
    """Check a model against the rules of the config file, the command line (--rfcheck-min-rf ...)
    and the test's @pytest.mark.rfcheck(...)."""
    rules: dict[str, Any] = {}
    options: dict[str, Any] = {}
    config = request.config
    if not config.getoption("rfcheck_isolated"):
        from .config import load
        cfg = load(start=config.rootpath)
        for k, v in cfg.values.items():
            (rules if k in CHECKS else options)[k] = v
    for k in CHECKS:
        v = config.getoption("rfcheck_" + k)
        if v is not None:
            rules[k] = v
    marker_rules, marker_opts = _validate(_marker_kwargs(request.node), f"{request.node.nodeid}: @pytest.mark.rfcheck")
    rules.update(marker_rules)
    options.update(marker_opts)
    return RFCheck(rules, options)
