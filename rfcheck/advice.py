"""How to fix a failing design: concrete changes to named layers, each checked by applying it
to a copy of the model and analysing the copy again (so every predicted number is rfcheck's
own exact result for the changed model, not an estimate)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import torch.nn as nn

from .checks import CHECKS, CheckResult
from .report import Layer, Report

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class Change:
    layer: str            # module path
    kind: str             # "dilate", "stride", "separable", "gap"
    value: Any = None

    def describe(self, module: nn.Module) -> str:
        ks = getattr(module, "kernel_size", ())
        k = "x".join(map(str, ks if isinstance(ks, (tuple, list)) else (ks,) * _nd(module)))
        if self.kind == "dilate":
            return f"set dilation {self.value} on {self.layer} ({k} conv) with padding {_pad_after(module, self.value)}"
        if self.kind == "stride":
            return f"set stride 2 on {self.layer} ({k} conv)"
        if self.kind == "separable":
            return (f"make {self.layer} ({k} conv, {module.in_channels}->{module.out_channels}) depthwise-separable: "
                    f"{k} depthwise ({module.in_channels} groups) + 1x1 pointwise")
        if self.kind == "gap":
            return f"replace {self.layer} ({type(module).__name__}) with AdaptiveAvgPool{_nd(module)}d(1)"
        return f"{self.kind} {self.layer}"


@dataclass
class Suggestion:
    rule: str
    changes: list[Change]
    text: str
    predicted: dict[str, Any] = field(default_factory=dict)  # rf, params, macs, counts of the changed model
    passes: bool = False

    def apply(self, model: nn.Module) -> nn.Module:
        """A changed deep copy of ``model`` (the model itself is not touched)."""
        return apply_changes(model, self.changes)


def _nd(m: nn.Module) -> int:
    for n in (1, 2, 3):
        if type(m).__name__.endswith(f"{n}d"):
            return n
    return 2


def _keeps_size(m: nn.Module, d: int = 2) -> bool:
    """Dilation d keeps the output size only if the extra reach splits evenly on both sides."""
    return isinstance(m.padding, str) or all((d - d0) * (k - 1) % 2 == 0 for d0, k in zip(m.dilation, m.kernel_size))


def _pad_after(m: nn.Module, d: int) -> Any:
    if isinstance(m.padding, str):
        return m.padding
    return tuple(p + (d - d0) * (k - 1) // 2 for p, d0, k in zip(m.padding, m.dilation, m.kernel_size))


def _replace(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, attr = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    if isinstance(parent, (nn.Sequential, nn.ModuleList)) and attr.isdigit():
        parent[int(attr)] = new
    else:
        setattr(parent, attr, new)


def _conv_like(m: nn.Module, **kw) -> nn.Module:
    args = dict(in_channels=m.in_channels, out_channels=m.out_channels, kernel_size=m.kernel_size, stride=m.stride,
                padding=m.padding, dilation=m.dilation, groups=m.groups, bias=m.bias is not None,
                padding_mode=m.padding_mode)
    args.update(kw)
    return type(m)(**args)


def apply_changes(model: nn.Module, changes: Sequence[Change]) -> nn.Module:
    new = copy.deepcopy(model)
    for c in changes:
        m = new.get_submodule(c.layer)
        if c.kind == "dilate":
            _replace(new, c.layer, _conv_like(m, dilation=(c.value,) * len(m.kernel_size), padding=_pad_after(m, c.value)))
        elif c.kind == "stride":
            _replace(new, c.layer, _conv_like(m, stride=(2,) * len(m.kernel_size)))
        elif c.kind == "separable":
            dw = _conv_like(m, out_channels=m.in_channels, groups=m.in_channels, bias=False)
            pw = type(m)(m.in_channels, m.out_channels, 1, bias=m.bias is not None)
            _replace(new, c.layer, nn.Sequential(dw, pw))
        elif c.kind == "gap":
            _replace(new, c.layer, getattr(nn, f"AdaptiveAvgPool{_nd(m)}d")(1))
        else:
            raise ValueError(f"unknown change {c.kind!r}")
    return new


# -- candidates -------------------------------------------------------------------------------------
def _module_layers(model: nn.Module, report: Report) -> list[tuple[Layer, nn.Module]]:
    mods = dict(model.named_modules())
    return [(l, mods[l.name]) for l in report.layers if l.name in mods and isinstance(mods[l.name], _CONVS)]


def _spatial_convs(model: nn.Module, report: Report) -> list[tuple[Layer, nn.Module]]:
    """Convs with a kernel > 1 that still see a spatial map (not after the global pool)."""
    glob = set((report.rf.global_layer or "").split(", "))
    out = []
    for l, m in _module_layers(model, report):
        if any(k > 1 for k in m.kernel_size) and l.name not in glob and not l.is_global and all(s > 1 for s in
                                                                                                l.output_shape[1:]):
            out.append((l, m))
    return out


class _Evaluator:
    def __init__(self, model: nn.Module, input_size: Sequence[int], limits: dict[str, Any]):
        self.model, self.input_size, self.limits = model, tuple(input_size), limits

    def run(self, changes: list[Change]) -> Optional[tuple[Report, dict[str, CheckResult]]]:
        from .analysis import analyze
        try:
            rep = analyze(apply_changes(self.model, changes), self.input_size)
        except Exception:  # the change breaks the model (a shape no longer fits): not a candidate
            return None
        from .checks import run_checks
        return rep, {r.rule: r for r in run_checks(rep, self.limits)}


def _fmt(v) -> str:
    if isinstance(v, (tuple, list)):
        return "x".join(str(x) for x in v)
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _suggest(rule: str, ev: _Evaluator, report: Report, base_model: nn.Module, options: list[list[Change]],
             metric, describe_effect, max_steps: int = 4, keep: int = 3,
             short_of: str = "the design needs more depth or downsampling") -> list[Suggestion]:
    """Evaluate single changes; if none makes the rule pass, grow the best greedily."""
    mods = dict(base_model.named_modules())
    scored = []
    for changes in options:
        got = ev.run(changes)
        if got is None:
            continue
        rep, res = got
        scored.append((metric(rep), changes, rep, res))
    if not scored:
        return []
    scored.sort(key=lambda t: t[0], reverse=True)
    out: list[Suggestion] = []
    passing = [t for t in scored if t[3].get(rule) is not None and t[3][rule].passed]
    for _, changes, rep, res in (passing or scored)[:keep]:
        ok = res.get(rule) is not None and res[rule].passed
        text = "; ".join(c.describe(mods[c.layer]) for c in changes) + ": " + describe_effect(rep) + \
            (" (passes)" if ok else " (not enough alone)")
        out.append(Suggestion(rule, changes, text, _predicted(rep), ok))
    if passing:
        return out
    # greedy: keep the best change and add the next best until the rule passes
    chosen = list(scored[0][1])
    for _ in range(max_steps - 1):
        best = None
        for changes in options:
            if any(c.layer == changes[0].layer for c in chosen):
                continue
            got = ev.run(chosen + changes)
            if got is None:
                continue
            m = metric(got[0])
            if best is None or m > best[0]:
                best = (m, chosen + changes, got)
        if best is None:
            break
        chosen = best[1]
        rep, res = best[2]
        if res.get(rule) is not None and res[rule].passed:
            text = "together: " + "; ".join(c.describe(mods[c.layer]) for c in chosen) + ": " + \
                describe_effect(rep) + " (passes)"
            out.insert(0, Suggestion(rule, list(chosen), text, _predicted(rep), True))
            return out[:3]
    if len(chosen) > 1:
        rep = ev.run(chosen)[0]
        text = (f"even {len(chosen)} changes together do not pass (" + "; ".join(c.describe(mods[c.layer]) for c in chosen)
                + ": " + describe_effect(rep) + "): " + short_of)
        out.insert(0, Suggestion(rule, list(chosen), text, _predicted(rep), False))
    return out[:3]


def _predicted(rep: Report) -> dict[str, Any]:
    return {"rf": tuple(rep.rf.size), "params": rep.params.total, "macs": rep.macs, "counts": dict(rep.counts)}


def _min_axis(rep: Report) -> int:
    return min(rep.rf.size) if rep.rf.size else 0


def suggest(model: nn.Module, input_size: Sequence[int], report: Report, results: Sequence[CheckResult],
            limits: dict[str, Any], max_candidates: int = 6) -> dict[str, list[Suggestion]]:
    """Suggestions per failing rule; also written into each result's ``advice`` texts."""
    ev = _Evaluator(model, input_size, {k: v for k, v in limits.items() if k in CHECKS})
    out: dict[str, list[Suggestion]] = {}
    convs = _spatial_convs(model, report)
    rf_now = _fmt(tuple(report.rf.size))
    for r in results:
        if r.passed:
            continue
        sug: list[Suggestion] = []
        texts: list[str] = []
        if r.rule in ("min_rf", "input_fraction"):
            # the gain of dilating / striding a layer grows with its input jump: try the latest ones
            dil = sorted(((l, m) for l, m in convs if all(d == 1 for d in m.dilation) and _keeps_size(m)),
                         key=lambda lm: -max(lm[0].jump))[:max_candidates]
            strd = sorted(((l, m) for l, m in convs if all(s == 1 for s in m.stride)),
                          key=lambda lm: -max(lm[0].jump))[:max_candidates]
            options = [[Change(l.name, "dilate", d)] for d in (2, 3) for l, _ in dil] + \
                [[Change(l.name, "stride")] for l, _ in strd]
            sug = _suggest(r.rule, ev, report, model, options, _min_axis,
                           lambda rep: f"model RF {rf_now} -> {_fmt(tuple(rep.rf.size))}, params "
                                       f"{_fmt(rep.params.total)}")
            texts.append("a stride-1 transposed conv does not help: it acts like a padded conv of the same kernel"
                         if report.counts.get("transposed") else "")
        elif r.rule == "max_params" or r.rule == "max_macs":
            key = "params" if r.rule == "max_params" else "macs"
            heavy = sorted(((l, m) for l, m in convs if m.groups == 1), key=lambda lm: -getattr(lm[0], key))
            options = [[Change(l.name, "separable")] for l, _ in heavy[:max_candidates]]
            sug = _suggest(r.rule, ev, report, model, options,
                           lambda rep: -(rep.params.total if key == "params" else rep.macs),
                           lambda rep: f"{key} {_fmt(getattr(report.params, 'total') if key == 'params' else report.macs)}"
                                       f" -> {_fmt(rep.params.total if key == 'params' else rep.macs)}, model RF "
                                       f"{_fmt(tuple(rep.rf.size))}",
                           short_of="the design needs fewer or narrower layers (fewer channels), not only "
                                    "cheaper convs")
            lin = [l for l in report.layers if l.kind == "linear" and l.params > (r.limit or 0) // 4]
            for l in lin:
                texts.append(f"{l.name} ({l.type}) holds {l.params:,} parameters: global average pooling before it "
                             "shrinks its input to the channel count")
        elif r.rule == "min_dws":
            cands = sorted(((l, m) for l, m in convs if m.groups == 1), key=lambda lm: -lm[0].params)
            options = [[Change(l.name, "separable")] for l, _ in cands[:max_candidates]]
            sug = _suggest(r.rule, ev, report, model, options,
                           lambda rep: (rep.counts["depthwise_separable"], -rep.params.total),
                           lambda rep: f"depthwise-separable pairs {report.counts['depthwise_separable']} -> "
                                       f"{rep.counts['depthwise_separable']}, params {_fmt(report.params.total)} -> "
                                       f"{_fmt(rep.params.total)}, model RF {_fmt(tuple(rep.rf.size))} (unchanged "
                                       "receptive field: same kernel)")
            depthwise = set(report.count_layers.get("depthwise", []))
            grouped = [l for l in report.layers if l.kind == "conv" and l.groups and l.groups > 1
                       and l.name not in depthwise]
            for l in grouped[:2]:
                texts.append(f"{l.name} has groups={l.groups} but is not depthwise (groups must equal in_channels), "
                             "so it is not counted")
        elif r.rule == "min_dilated":
            cands = sorted(((l, m) for l, m in convs if all(d == 1 for d in m.dilation) and all(s == 1 for s in m.stride)
                            and _keeps_size(m)),
                           key=lambda lm: -max(lm[0].jump))
            options = [[Change(l.name, "dilate", 2)] for l, _ in cands[:max_candidates]]
            sug = _suggest(r.rule, ev, report, model, options,
                           lambda rep: (rep.counts["dilated"], _min_axis(rep)),
                           lambda rep: f"dilated convs {report.counts['dilated']} -> {rep.counts['dilated']}, model RF "
                                       f"{rf_now} -> {_fmt(tuple(rep.rf.size))}, params unchanged "
                                       f"({_fmt(rep.params.total)}), output size kept by the padding")
        elif r.rule == "require_gap":
            mods = dict(model.named_modules())
            pools = [l for l in report.layers if l.kind in ("avg_pool", "max_pool") and l.name in mods
                     and not l.is_global and all(s == 1 for s in l.output_shape[1:])]
            glob = [l for l in report.layers if l.is_global]
            pools += [l for l in glob if l.global_kind == "max" and l.name in mods]
            options = [[Change(l.name, "gap")] for l in pools]
            sug = _suggest(r.rule, ev, report, model, options, lambda rep: rep.counts["gap"],
                           lambda rep: f"the pool then sees every position; model RF {_fmt(tuple(rep.rf.size))}")
            for l in glob:
                if l.global_kind == "linear" and l.name in mods:
                    texts.append(f"insert a global average pool (nn.AdaptiveAvgPool2d(1) then flatten) before "
                                 f"{l.name}: it then reads one value per channel, and its in_features become the "
                                 "channel count")
        elif r.rule == "forbid":
            for name in r.layers[:3]:
                l = report.layer(name)
                if l.kind == "max_pool":
                    c, nd = l.output_shape[0], len(l.output_shape) - 1
                    taps = 3 ** nd
                    texts.append(f"replace {l.name} ({l.type}) by a {'x'.join(['3'] * nd)} conv with stride 2 "
                                 f"({taps * c * c + c:,} params for {c} channels; "
                                 f"{taps * c + c * c + c:,} as a depthwise-separable pair), or keep the resolution "
                                 "and use a dilated conv to grow the RF")
                elif l.kind == "linear":
                    texts.append(f"replace {l.name} ({l.type}) by global average pooling and a 1x1 conv")
        elif r.rule == "blocks":
            texts.append("name the model's direct children (attributes set in __init__, used in that order in "
                         "forward) after the blocks, e.g. self.c1 = nn.Sequential(...)")
        elif r.rule == "strict":
            texts.append("register a rule for each unknown op with rfcheck.register_function / register_module, "
                         "or rewrite it with standard layers")
        out[r.rule] = sug
        r.advice = [s.text for s in sug] + [t for t in texts if t]
    return out
