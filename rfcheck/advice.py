"""How to fix a failing design: each rule's advice (in :mod:`rfcheck.rules`) proposes concrete
changes to named layers, and this engine checks every one by applying it to a meta copy of
the model and analysing the copy again, so each predicted number is rfcheck's own exact result
for the changed model, and no real weight is ever copied."""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

import torch.nn as nn

from .report import Layer, Report
from .rules import RULES, CheckResult, run_checks
from .suggestion import Change, Suggestion, is_noop, swap_in, swap_out

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: when no single change makes a rule pass, up to this many are combined greedily
MAX_CHANGES = 4
#: suggestions kept per failing rule
KEPT = 3
#: wall-clock seconds for all the advice of one check, the meta copy included: past it, no more
#: candidates are analysed and the advice says it stopped (with the build, the analysis and the
#: report, the command line stays within +1 s of the import floor on every torchvision classifier)
BUDGET_S = 0.6


def _predicted(rep: Report) -> dict[str, Any]:
    return {"rf": tuple(rep.rf.size), "params": rep.params.total, "macs": rep.macs, "counts": dict(rep.counts)}


Evaluated = tuple[Report, dict[str, CheckResult]]


class AdviceContext:
    """What a rule's advice function works with: the report, a meta copy of the model, its
    spatial convs, and :meth:`search`, which analyses candidate changes within the budget."""

    def __init__(self, model: nn.Module, report: Report, limits: dict[str, Any],
                 analyze_kwargs: Optional[dict[str, Any]] = None, budget_s: Optional[float] = None):
        from .metacopy import meta_copy
        self.deadline = time.monotonic() + (BUDGET_S if budget_s is None else budget_s)  # (the copy counts: deepcopy of maxvit_t takes 0.27 s)
        self.model = meta_copy(model)
        self.report, self.limits = report, {k: v for k, v in limits.items() if k in RULES}
        self.analyze_kwargs = analyze_kwargs or {"input_size": tuple(report.input_size)}
        self.modules = dict(self.model.named_modules())
        self.convs = self._spatial_convs()
        self.out_of_time = False
        self._seen: dict[tuple[Change, ...], Optional[Evaluated]] = {}
        #: the rules that pass before any change: a suggestion must not break one of them
        self.passing_before = {r.rule for r in run_checks(report, self.limits) if r.passed}

    def _spatial_convs(self) -> list[tuple[Layer, nn.Module]]:
        """Convs with a kernel > 1 that still see a spatial map (not after the global pool)."""
        glob = set((self.report.rf.global_layer or "").split(", "))
        out = []
        for l in self.report.layers:
            m = self.modules.get(l.name)
            if (isinstance(m, _CONVS) and any(k > 1 for k in m.kernel_size) and l.name not in glob
                    and not l.is_global and all(s > 1 for s in l.output_shape[1:])):
                out.append((l, m))
        return out

    def run(self, changes: list[Change]) -> Optional[Evaluated]:
        """The changed model's report and rule results; None if the change breaks the model
        (a shape no longer fits) or the time budget is spent."""
        from .analysis import analyze
        key = tuple(changes)
        if key in self._seen:
            return self._seen[key]
        if time.monotonic() > self.deadline:
            self.out_of_time = True
            return None
        try:
            undo = swap_in(self.model, changes)  # the copy is ours: change it in place, analyse, undo
            try:
                rep = analyze(self.model, **self.analyze_kwargs)
            finally:
                swap_out(self.model, undo)
            got: Optional[Evaluated] = (rep, {r.rule: r for r in run_checks(rep, self.limits)})
        except Exception:  # not a candidate
            got = None
        self._seen[key] = got
        return got

    def hint(self, rule: str, text: str) -> Suggestion:
        """Advice in words, for what no automatic change can fix."""
        return Suggestion(rule, [], text)

    def changes_nothing(self, changes: list[Change]) -> bool:
        """Every change would put in a layer equal to the one it replaces (a GAP for a GAP)."""
        try:
            return all(is_noop(self.modules[c.layer], c) for c in changes)
        except Exception:
            return False

    def broken(self, rule: str, got: Evaluated) -> list[CheckResult]:
        """The rules, other than ``rule``, that passed before and fail after the change."""
        return [r for name, r in got[1].items() if name != rule and name in self.passing_before and not r.passed]

    def verdict(self, rule: str, got: Evaluated) -> tuple[bool, str]:
        """Whether a change makes ``rule`` pass without breaking a rule that passed before, and
        the text that says so (or which rule it breaks)."""
        made = got[1].get(rule) is not None and got[1][rule].passed
        broken = self.broken(rule, got)
        if made and not broken:
            return True, " (passes)"
        if broken:
            what = "; ".join(f"{r.rule}: {r.message}" for r in broken)
            return False, (f" ({'makes ' + rule + ' pass but ' if made else 'not enough alone, and '}breaks "
                           f"{what})")
        return False, " (not enough alone)"

    def _text(self, changes: list[Change]) -> str:
        return "; ".join(c.describe(self.modules[c.layer]) for c in changes)

    def search(self, rule: str, options: list[list[Change]], metric: Callable[[Report], Any],
               effect: Callable[[Report], str],
               short_of: str = "the design needs more depth or downsampling",
               additive: bool = False) -> list[Suggestion]:
        """Analyse each option; keep the best that make ``rule`` pass (by ``metric``), or, if
        none does, grow the best one greedily until the rule passes or MAX_CHANGES is reached.
        With ``additive`` (changes to different layers add up, as parameters saved do), the
        best changes applied together bound what any combination can do: when even they fall
        short, that is said at once instead of searching."""
        scored = []
        options = [o for o in options if o and not self.changes_nothing(o)]
        for changes in options:
            got = self.run(changes)
            if got is not None:
                scored.append((metric(got[0]), changes, got))
        if not scored:
            return []
        scored.sort(key=lambda t: t[0], reverse=True)
        passes = lambda got: self.verdict(rule, got)[0]
        passing = [t for t in scored if passes(t[2])]
        # among the fixes that work, first those that leave the most rules passing (a dilation
        # that also meets min_dilated before a stride that meets min_rf alone), then the metric
        passing.sort(key=lambda t: sum(r.passed for r in t[2][1].values()), reverse=True)
        out = []
        for _, changes, got in (passing or scored)[:KEPT]:
            ok, said = self.verdict(rule, got)
            out.append(Suggestion(rule, changes, f"{self._text(changes)}: {effect(got[0])}{said}",
                                  _predicted(got[0]), ok))
        if passing:
            return out
        if additive:
            best, layers = [], set()
            for _, changes, _ in scored:
                if changes[0].layer not in layers and len(best) < MAX_CHANGES:
                    best.append(changes)
                    layers.add(changes[0].layer)
            combo = [c for changes in best for c in changes]
            got = self.run(combo) if len(best) > 1 else None
            if got is not None and not (got[1].get(rule) is not None and got[1][rule].passed):
                text = (f"even {len(best)} changes together do not pass ({self._text(combo)}: {effect(got[0])}): "
                        f"{short_of}")
                out.insert(0, Suggestion(rule, combo, text, _predicted(got[0]), False))
                return out[:KEPT]
        chosen = list(scored[0][1])
        for _ in range(MAX_CHANGES - 1):
            best = None
            for changes in options:
                if any(c.layer == changes[0].layer for c in chosen):
                    continue
                got = self.run(chosen + changes)
                if got is not None and (best is None or metric(got[0]) > best[0]):
                    best = (metric(got[0]), chosen + changes, got)
            if best is None:
                break
            chosen, got = best[1], best[2]
            ok, said = self.verdict(rule, got)
            if ok or (got[1].get(rule) is not None and got[1][rule].passed):  # made: more changes cannot unbreak
                text = f"together: {self._text(chosen)}: {effect(got[0])}{said}"
                out.insert(0, Suggestion(rule, list(chosen), text, _predicted(got[0]), ok))
                return out[:KEPT]
        if len(chosen) > 1:
            got = self.run(chosen)
            if got is not None:
                text = (f"even {len(chosen)} changes together do not pass ({self._text(chosen)}: {effect(got[0])}): "
                        f"{short_of}")
                out.insert(0, Suggestion(rule, list(chosen), text, _predicted(got[0]), False))
        return out[:KEPT]


def suggest(model: nn.Module, report: Report, rules: dict[str, Any], *,
            analyze_kwargs: Optional[dict[str, Any]] = None,
            budget_s: Optional[float] = None) -> dict[str, list[Suggestion]]:
    """Checked suggestions for each rule of ``rules`` (parsed limits) that ``report`` fails.
    ``analyze_kwargs`` are how the report was made (input size or inputs, rf_at, op rules), so
    each changed copy is analysed the same way.  Nothing is changed: not the model, not the
    report, not any result."""
    budget_s = BUDGET_S if budget_s is None else budget_s   # read per call, so it can be changed
    ctx: Optional[AdviceContext] = None
    out: dict[str, list[Suggestion]] = {}
    for r in run_checks(report, rules):
        if r.passed:
            continue
        rule = RULES[r.rule]
        if rule.advise is None:
            out[r.rule] = []
            continue
        if ctx is None:
            ctx = AdviceContext(model, report, rules, analyze_kwargs, budget_s)
        out[r.rule] = rule.advise(ctx, r)
    if ctx is not None and ctx.out_of_time:
        for name, sugs in out.items():
            sugs.append(Suggestion(name, [], f"advice stopped after its {budget_s:g} s budget: more candidates "
                                             "were not analysed"))
    return out
