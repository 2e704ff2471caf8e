"""Rules on the model's layout: a real global average pool, forbidden layer types, named
top-level blocks; and what to change when one fails."""
from __future__ import annotations

import difflib
import fnmatch
import re
from typing import Optional

from ..errors import RFCheckError
from ..report import Layer, Report
from ..suggestion import Change, Suggestion
from .base import CheckResult, Rule, axes, fmt
from .parsers import parse_bool, parse_names

#: layers named in a failing forbid message, and how many of them get a replacement suggested
FORBIDDEN_SHOWN = 8
FORBIDDEN_ADVISED = 3


def _input_shape(report: Report, layer: Layer) -> Optional[tuple[int, ...]]:
    by = {l.name: l for l in report.layers}
    for name in layer.inputs:
        if name == "input":
            return tuple(report.input_size)
        if name in by:
            return by[name].output_shape
    return None


def _global_layers(report: Report) -> list[Layer]:
    by = {l.name: l for l in report.layers}
    names = [n.strip() for n in (report.rf.global_layer or "").split(",") if n.strip()]
    return [by[n] for n in names if n in by]


def require_gap(report: Report, required: bool) -> CheckResult:
    glob = _global_layers(report)
    passed = bool(glob) and all(l.global_kind == "avg" for l in glob)
    if not required:
        return CheckResult("require_gap", passed, False, True, "global average pooling not required",
                           [l.name for l in glob])
    if passed:
        g = glob[0]
        inp = _input_shape(report, g)
        seen = f" over the {axes(inp[1:])} map" if inp else ""
        return CheckResult("require_gap", True, True, True, f"global average pooling {g.name} ({g.type}){seen}",
                           [g.name])
    # why not: a pool that reaches 1x1 without covering the map, a global max, or a flatten + Linear
    reasons = []
    for l in report.layers:
        if l.kind in ("avg_pool", "max_pool", "lp_pool") and not l.is_global and l.output_shape[1:] and \
                all(s == 1 for s in l.output_shape[1:]):
            inp = _input_shape(report, l)
            if inp:
                reasons.append(f"{l.name} ({l.type}, kernel {axes(l.kernel or ())}) reduces the {axes(inp[1:])} "
                               f"map to {axes(l.output_shape[1:])} but its window never sees "
                               f"{_unseen(inp[1:], l)} of the positions: it is not a global pool")
    for g in glob:
        if g.global_kind == "max":
            reasons.append(f"{g.name} ({g.type}) is a global MAX pool, not an average")
        elif g.global_kind == "linear":
            inp = _input_shape(report, g)
            reasons.append(f"the classifier {g.name} ({g.type}) reads the flattened map"
                           + (f" ({inp[0]:,} features)" if inp else "") + " instead of a globally pooled one")
        elif g.global_kind:
            reasons.append(f"the spatial map ends at {g.name} ({g.type}, a global {g.global_kind}), not an average")
    if not glob and not reasons:
        reasons.append("no layer reduces the spatial map to a single position")
    msg = "no global average pooling feeds the classifier: " + "; ".join(reasons)
    return CheckResult("require_gap", False, True, False, msg, [l.name for l in glob])


def _unseen(spatial, layer: Layer) -> str:
    total = 1
    seen = 1
    for n, k, s, p in zip(spatial, layer.kernel or (), layer.stride or (), layer.padding or ()):
        total *= n
        seen *= max(0, min(n, k - p) if p else min(n, k))
    return f"{total - seen} of {total}"


def real_gap(ctx, result: CheckResult) -> list[Suggestion]:
    """Replace a pool that reaches 1x1 without seeing the whole map (or a global max) by a
    GAP; before a flatten + Linear, insert one."""
    report, mods = ctx.report, ctx.modules
    pools = [l for l in report.layers if l.kind in ("avg_pool", "max_pool") and l.name in mods
             and not l.is_global and all(s == 1 for s in l.output_shape[1:])]
    glob = [l for l in report.layers if l.is_global]
    pools += [l for l in glob if l.global_kind == "max" and l.name in mods]
    options = [[Change(l.name, "gap")] for l in pools]
    out = ctx.search(result.rule, options, lambda rep: rep.counts["gap"],
                     lambda rep: f"the pool then sees every position; model RF {fmt(tuple(rep.rf.size))}")
    for l in glob:
        if l.global_kind == "linear" and l.name in mods:
            out.append(ctx.hint(result.rule, f"insert a global average pool (nn.AdaptiveAvgPool2d(1) then flatten) "
                                             f"before {l.name}: it then reads one value per channel, and its "
                                             "in_features become the channel count"))
    return out


def _norm(t: str) -> str:
    return t.replace("_", "").lower()


def type_matches(pattern: str, layer: Layer) -> bool:
    """``MaxPool2d`` matches the module and F.max_pool2d; ``MaxPool`` any dimension; globs work."""
    p = _norm(pattern)
    t = _norm(layer.type)
    if fnmatch.fnmatchcase(t, p) or re.fullmatch(re.escape(p) + r"[123]d", t):
        return True
    return bool(layer.kind and _norm(layer.kind) == p)


class UnknownTypeError(RFCheckError, ValueError):
    """A --forbid type that names nothing rfcheck knows and nothing in the model (a typo)."""


def _known_names() -> list[str]:
    """torch.nn module types, the functional ops rfcheck has rules for and the layer kinds."""
    import torch.nn as nn

    from ..ops import FUNCTION_RULES
    mods = [n for n, o in vars(nn).items() if isinstance(o, type) and issubclass(o, nn.Module)]
    return sorted({*mods, *FUNCTION_RULES, *KINDS})


#: the layer kinds the analysis gives (Layer.kind)
KINDS = ("conv", "conv_transpose", "max_pool", "avg_pool", "lp_pool", "linear", "pointwise", "upsample", "attention",
         "matmul", "merge", "mix", "pad", "pixel_shuffle", "pixel_unshuffle", "reduce", "reshape", "slice", "split")


def _names_match(pattern: str, name: str) -> bool:
    p, t = _norm(pattern), _norm(name)
    return fnmatch.fnmatchcase(t, p) or bool(re.fullmatch(re.escape(p) + r"[123]d", t))


def check_forbid_types(types: tuple[str, ...], report: Report) -> None:
    """Raise, naming the option and the value, for a type that matches no torch.nn module type,
    no functional op rfcheck knows, no layer kind and nothing in the model (did-you-mean)."""
    in_model = {l.type for l in report.layers} | {b.type for b in report.blocks} | \
        {l.kind for l in report.layers if l.kind}
    known = None
    for t in types:
        if any(_names_match(t, n) for n in in_model):
            continue
        known = known if known is not None else _known_names()
        if any(_names_match(t, n) for n in known):
            continue
        close = difflib.get_close_matches(_norm(t), [_norm(n) for n in known], n=1, cutoff=0.7)
        by_norm = {_norm(n): n for n in sorted(known, key=lambda n: n[:1].isupper())}  # MaxPool2d over max_pool2d
        hint = f" (did you mean {by_norm[close[0]]!r}?)" if close else ""
        raise UnknownTypeError(f"forbid {t!r}: no torch.nn module type, functional op or layer kind of that name, "
                               f"and nothing in the model matches it{hint}")


def forbid(report: Report, types: tuple[str, ...]) -> CheckResult:
    check_forbid_types(types, report)
    hits = [l for l in report.layers if any(type_matches(t, l) for t in types)]
    passed = not hits
    if passed:
        msg = f"no {', '.join(types)} layers"
    else:
        msg = f"{len(hits)} forbidden layer(s): " + ", ".join(f"{l.name} ({l.type})" for l in hits[:FORBIDDEN_SHOWN]) \
            + (" ..." if len(hits) > FORBIDDEN_SHOWN else "")
    return CheckResult("forbid", [l.name for l in hits], list(types), passed, msg, [l.name for l in hits])


def replace_forbidden(ctx, result: CheckResult) -> list[Suggestion]:
    out = []
    for name in result.layers[:FORBIDDEN_ADVISED]:
        l = ctx.report.layer(name)
        if l.kind == "max_pool":
            c, n = l.output_shape[0], len(l.output_shape) - 1
            taps = 3 ** n
            out.append(ctx.hint(result.rule, f"replace {l.name} ({l.type}) by a {'x'.join(['3'] * n)} conv with "
                                             f"stride 2 ({taps * c * c + c:,} params for {c} channels; "
                                             f"{taps * c + c * c + c:,} as a depthwise-separable pair), or keep the "
                                             "resolution and use a dilated conv to grow the RF"))
        elif l.kind == "linear":
            out.append(ctx.hint(result.rule, f"replace {l.name} ({l.type}) by global average pooling and a 1x1 conv"))
    return out


def blocks(report: Report, patterns: tuple[str, ...]) -> CheckResult:
    names = [b.name for b in report.blocks]
    ok = len(names) == len(patterns) and all(fnmatch.fnmatchcase(n.lower(), p.lower()) for n, p in zip(names, patterns))
    per = "; ".join(f"{b.name}: RF {axes(b.rf)}, out {axes(b.output_shape)}" for b in report.blocks)
    if ok:
        msg = f"blocks {', '.join(names)} match {', '.join(patterns)} ({per})"
    else:
        wrong = [f"{i + 1}: {n!r} vs {p!r}" for i, (n, p) in enumerate(zip(names, patterns))
                 if not fnmatch.fnmatchcase(n.lower(), p.lower())]
        msg = (f"top-level blocks in forward order are {', '.join(names) or 'none'} ({len(names)}), expected "
               f"{', '.join(patterns)} ({len(patterns)})" + (f"; mismatched: {', '.join(wrong)}" if wrong else ""))
    return CheckResult("blocks", names, list(patterns), ok, msg, names)


def name_blocks(ctx, result: CheckResult) -> list[Suggestion]:
    return [ctx.hint(result.rule, "name the model's direct children (attributes set in __init__, used in that order "
                                  "in forward) after the blocks, e.g. self.c1 = nn.Sequential(...)")]


REQUIRE_GAP = Rule("require_gap", None, "fail unless a real global average pooling feeds the classifier "
                   "(AdaptiveAvgPool to 1, an average pool covering the whole map, or a spatial mean)", parse_bool,
                   require_gap, real_gap)
FORBID = Rule("forbid", "TYPE[,TYPE]", "fail if any layer is of these types, modules or their functional forms "
              "(MaxPool2d also matches F.max_pool2d; MaxPool any dimension; globs such as 'Conv*' work)", parse_names,
              forbid, replace_forbidden)
BLOCKS = Rule("blocks", "NAME[,NAME]", "fail unless the model's top-level blocks, in forward order, match these "
              "names (case-insensitive globs: C1,C2,C3,C4,O*)", parse_names, blocks, name_blocks)
