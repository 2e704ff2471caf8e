"""One design check = analyse + rules + advice, returned as one :class:`DesignCheck`.  The
CLI, ``rfcheck.check``, ``assert_design``, the pytest fixture and the trainer's gate all go
through :func:`run_check`, so they cannot disagree."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

from .diagnostics import Diagnostic, ignored
from .options import Settings, resolve
from .report import Report
from .rules import RULES, CheckResult, run_checks
from .suggestion import Suggestion

if TYPE_CHECKING:
    import torch

    from .claims import Claims
    from .handcalc import Explanation


@dataclass
class DesignCheck:
    """The outcome of checking one model: the analysis, each rule's result, the checked
    suggestions for the failing ones, and whether all hold.  ``str()`` and ``repr()`` are the
    text report, :meth:`markdown` the markdown one, :meth:`html` the HTML one (what Jupyter
    shows), :meth:`to_dict` the JSON document.  ``depth`` and ``verbose`` choose the layer
    table's view (compact by default); ``notes`` are lines printed at the top (what
    :func:`summary` changed in its input)."""
    report: Report
    results: list[CheckResult]
    suggestions: dict[str, list[Suggestion]] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    #: the RF claims checked (``check(..., claim_rf=, claims=)``), None when none was given
    claims: Optional["Claims"] = field(default=None, compare=False)
    depth: Optional[int] = field(default=None, compare=False)
    verbose: bool = field(default=False, compare=False)
    notes: list[str] = field(default_factory=list, compare=False)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results) and (self.claims is None or self.claims.passed)

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
        if self.claims is not None:  # additive: only when a claim was given (schema_version stays 2)
            d["claims"] = self.claims.to_dict()
        d["passed"] = self.passed
        return d

    def view(self, depth: Optional[int] = None, verbose: bool = False) -> "DesignCheck":
        """The same check shown with another layer table: ``depth=N`` (one row per module at
        that nesting depth), ``verbose=True`` (every layer), neither (compact)."""
        _check_view(depth, verbose)
        return replace(self, depth=depth, verbose=bool(verbose))

    def table(self, depth: Optional[int] = None, verbose: Optional[bool] = None) -> str:
        """The layer table alone (this check's view unless one is given)."""
        from .render import table
        if depth is None and verbose is None:
            depth, verbose = self.depth, self.verbose
        return table(self.report, depth, bool(verbose))

    def markdown(self, depth: Optional[int] = None, verbose: Optional[bool] = None) -> str:
        from .render import markdown
        return markdown(self, depth, verbose)

    def html(self, depth: Optional[int] = None, verbose: Optional[bool] = None, picture: bool = True) -> str:
        """A self-contained HTML report (inline CSS, no script): the rules with PASS/FAIL marks
        and fixes, the warnings, the layer table and, when matplotlib is installed, the RF plot."""
        from .html import html
        return html(self, depth, verbose, picture=picture)

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_markdown_(self) -> str:
        return self.markdown()

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

    def explain(self) -> "Explanation":
        """The course's hand derivation of this model's RF, jump and size, one line per layer
        that changes them, with rfcheck's exact numbers (``print()`` it)."""
        from .handcalc import Explanation
        return Explanation(self.report)

    def __str__(self) -> str:
        from .render import text
        return text(self)

    __repr__ = __str__


def _check_view(depth: Any, verbose: Any) -> None:
    if verbose and depth is not None:
        raise ValueError("verbose and depth contradict each other: choose one")
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 1):
        raise ValueError(f"depth must be a whole number >= 1, not {depth!r}")


def run_check(model: "torch.nn.Module", settings: Settings, *, inputs: Any = None, name: Optional[str] = None,
              op_rules: Optional[dict] = None, claim_rf: Any = None,
              claims: Optional[Mapping[str, Any]] = None) -> DesignCheck:
    """Analyse ``model`` with ``settings`` (see :func:`rfcheck.options.resolve`), check the RF
    claims (see :mod:`rfcheck.claims`), run its rules and, if one fails and advice is on, find
    checked suggestions."""
    from .analysis import analyze
    how: dict[str, Any] = {"rf_at": settings.rf_at, "rules": op_rules}
    how.update({"inputs": inputs} if inputs is not None else {"input_size": settings.input_size})
    report = analyze(model, name=name, **how)
    claimed = None
    if claim_rf is not None or claims:
        from .claims import check_claims
        claimed = check_claims(report, claim_rf, claims)
    results = run_checks(report, settings.rules)
    suggestions: dict[str, list[Suggestion]] = {}
    if settings.advice and any(not r.passed for r in results):
        from .advice import suggest
        suggestions = suggest(model, report, settings.rules, analyze_kwargs=how)
    return DesignCheck(report, results, suggestions, settings.ignore, claims=claimed)


def check(model: "torch.nn.Module", input_size: Optional[Sequence[int]] = None, *,
          inputs: Union["torch.Tensor", Sequence["torch.Tensor"], None] = None, advice: bool = True,
          rf_at: Optional[str] = None, ignore: Any = (), name: Optional[str] = None,
          rules: Optional[dict] = None, claim_rf: Any = None, claims: Optional[Mapping[str, Any]] = None,
          **limits: Any) -> DesignCheck:
    """Check ``model`` against design rules given as keywords (the CLI's options with
    underscores: ``min_rf=53, max_params=100_000, require_gap=True``); never raises for a
    failing rule: see ``.passed``.  ``rules`` are per-analysis op rules (as for ``analyze``).
    An unknown rule keyword is a TypeError, a bad value a ValueError.  ``claim_rf=109`` (the
    model RF) and ``claims={"convblock3": 45}`` (a layer's or module's RF) are checked against
    the exact values, and a wrong one is diagnosed (``.claims``; a wrong claim fails ``.passed``)."""
    for key in limits:
        if key.replace("-", "_") not in RULES:
            from .rules import did_you_mean
            raise TypeError(f"unknown rule {key!r}{did_you_mean(key, RULES)}; known: {', '.join(RULES)}")
    settings = resolve(call={**limits, "input_size": input_size, "advice": advice, "rf_at": rf_at,
                             "ignore": ignore or None})
    return run_check(model, settings, inputs=inputs, name=name, op_rules=rules, claim_rf=claim_rf, claims=claims)


def _first_conv(model: "torch.nn.Module") -> Any:
    from torch import nn
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd) and getattr(m, "in_channels", 0):
            return name, m
    return None, None


def drop_batch_dim(model: "torch.nn.Module", input_size: Sequence[int]) -> tuple[tuple[int, ...], Optional[str]]:
    """``(1, 3, 32, 32)`` (torchinfo's habit) -> ``(3, 32, 32)`` and a note saying so, when the
    model's first conv makes it unambiguous: its ``in_channels`` is ``size[1]`` and not
    ``size[0]``, and the size has the conv's spatial dims + 2 entries.  ``(3, 3, 32, 32)`` for a
    3-channel Conv2d is an error (a batch of 3, or one 3-channel 3D sample?).  Any other size is
    returned as it is (the analysis says what is wrong with it)."""
    size = tuple(int(s) for s in input_size)
    name, conv = _first_conv(model)
    if conv is None:
        return size, None
    nd, c = len(conv.kernel_size), conv.in_channels
    if len(size) != nd + 2 or size[1] != c:
        return size, None
    kind = type(conv).__name__
    if size[0] == c:
        from .errors import RFCheckError
        raise RFCheckError(
            f"input size {size} is ambiguous: {name} ({kind}) reads {c} channel(s) and {nd} spatial dim(s), so the "
            f"leading {size[0]} may be a batch dimension or the channels; give one sample without the batch "
            f"dimension: {size[1:]}")
    return size[1:], (f"input size {size}: dropped the leading batch dimension {size[0]}; rfcheck analyses one "
                      f"sample, {'x'.join(map(str, size[1:]))} ({name} is a {kind} with {c} input channels)")


def summary(model: "torch.nn.Module", input_size: Optional[Sequence[int]] = None, *,
            inputs: Union["torch.Tensor", Sequence["torch.Tensor"], None] = None, claim_rf: Any = None,
            depth: Optional[int] = None, verbose: bool = False, **rules: Any) -> DesignCheck:
    """The notebook face of :func:`check` (torchinfo's ``summary(model, input_size)`` habit):
    checks ``model`` against ``rules`` (keywords as for :func:`check`) and returns the
    :class:`DesignCheck`, whose ``repr()`` is the short text report and whose ``_repr_html_``
    / ``_repr_markdown_`` Jupyter shows.  The layer table is compact (BatchNorm, activations
    and reshapes folded into the conv/pool row they follow) unless ``depth=N`` (one row per
    module at that nesting depth) or ``verbose=True`` (every layer).  A leading batch
    dimension (``(1, 3, 32, 32)``) is dropped, and said, when the first conv makes it
    unambiguous.  ``claim_rf`` (and ``claims``) are passed on to :func:`check` when it
    checks claims."""
    import inspect
    _check_view(depth, verbose)
    notes: list[str] = []
    if input_size is not None and inputs is None:
        input_size, note = drop_batch_dim(model, input_size)
        notes += [note] if note else []
    accepted = inspect.signature(check).parameters
    for key, value in (("claim_rf", claim_rf), ("claims", rules.pop("claims", None))):
        if value is None:
            continue
        if key not in accepted:
            raise TypeError(f"summary({key}=...): this rfcheck cannot check claims yet")
        rules[key] = value
    result = check(model, input_size, inputs=inputs, **rules)
    return replace(result, depth=depth, verbose=bool(verbose), notes=notes + list(result.notes))
