"""Design rules: the one registry that the CLI, the config file, ``assert_design`` and the
pytest plugin all read (names, parsers, help), so a rule is defined once.

Each rule reads a :class:`Report` and a limit and returns a :class:`CheckResult` saying the
rule, the measured value, the limit, pass/fail and the layers involved."""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Optional

from .report import Layer, Report


@dataclass
class CheckResult:
    rule: str
    value: Any
    limit: Any
    passed: bool
    message: str
    layers: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {"rule": self.rule, "value": _plain(self.value), "limit": _plain(self.limit), "passed": self.passed,
             "message": self.message, "layers": list(self.layers)}
        if self.advice:
            d["advice"] = list(self.advice)
        return d


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, Fraction):
        return v.numerator if v.denominator == 1 else float(v)
    return v


@dataclass
class Check:
    name: str            # keyword and config key, e.g. "max_params"
    option: str          # CLI flag, e.g. "--max-params"
    metavar: Optional[str]
    help: str
    parse: Callable[[Any], Any]   # from a CLI/config string or a Python value
    run: Callable[[Report, Any], CheckResult]
    flag: bool = False   # a switch (--require-gap), no value


CHECKS: dict[str, Check] = {}


# -- value parsers (strings from the CLI or setup.cfg, typed values from pyproject / Python) --------
def parse_count(text: Any) -> int:
    """A whole number such as 100000, 100_000, 100k or 1.5M."""
    if isinstance(text, bool):
        raise ValueError(f"expected a whole number such as 100000 or 100k, got {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"expected a whole number >= 0, got {text!r}")
        return text
    s = str(text).strip().replace("_", "").replace(",", "")
    mult = 1
    if s[-1:].lower() in ("k", "m"):
        mult = 1000 if s[-1].lower() == "k" else 1_000_000
        s = s[:-1]
    from decimal import Decimal, InvalidOperation
    try:
        value = Decimal(s) * mult  # exact: 2.01k is 2010
    except (InvalidOperation, ValueError):
        raise ValueError(f"expected a whole number such as 100000 or 100k, got {text!r}") from None
    if not value.is_finite() or value != int(value) or value < 0:
        raise ValueError(f"expected a whole number >= 0, got {text!r}")
    return int(value)


def parse_bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    s = str(text).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_names(text: Any) -> tuple[str, ...]:
    """A comma (or newline) separated list, or a list."""
    items = list(text) if isinstance(text, (list, tuple)) else re.split(r"[,\s]+", str(text))
    names = tuple(str(i).strip() for i in items if str(i).strip())
    if not names:
        raise ValueError(f"expected one or more comma-separated names, got {text!r}")
    return names


def parse_fraction(text: Any) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number such as 1.0 or 0.5, got {text!r}") from None
    if isinstance(text, bool) or not value > 0:
        raise ValueError(f"expected a number > 0, got {text!r}")
    return value


def check(name: str, option: str, metavar: Optional[str], help: str, parse: Callable[[Any], Any] = parse_count,
          flag: bool = False):
    def deco(fn: Callable[[Report, Any], CheckResult]) -> Callable[[Report, Any], CheckResult]:
        CHECKS[name] = Check(name, option, metavar, help, parse, fn, flag)
        return fn
    return deco


def _axes(size) -> str:
    return "x".join(str(_plain(s)) for s in size) if size else "-"


def _bound_note(report: Report) -> str:
    return "" if report.rf.exact else " (NOT exact: an unknown op or a bound is involved, see warnings)"


def _where(report: Report) -> str:
    if report.rf.global_layer:
        return f"at the input of the global pool {report.rf.global_layer}"
    return f"at {report.rf.at}"


# -- the rules ----------------------------------------------------------------------------------
@check("min_rf", "--min-rf", "N", "fail unless the model RF is >= N on every axis (the RF at the input of "
       "the global pool, not counting its window)")
def min_rf(report: Report, limit: int) -> CheckResult:
    size = tuple(report.rf.size)
    passed = bool(size) and all(s >= limit for s in size)
    msg = f"model RF {_axes(size)} {_where(report)} {'>=' if passed else '<'} {limit}{_bound_note(report)}"
    return CheckResult("min_rf", size, limit, passed, msg, [report.rf.at])


@check("max_rf", "--max-rf", "N", "fail unless the model RF is <= N on every axis")
def max_rf(report: Report, limit: int) -> CheckResult:
    size = tuple(report.rf.size)
    passed = all(s <= limit for s in size)
    msg = f"model RF {_axes(size)} {_where(report)} {'<=' if passed else '>'} {limit}{_bound_note(report)}"
    return CheckResult("max_rf", size, limit, passed, msg, [report.rf.at])


def _heaviest(report: Report, key: str, n: int = 3) -> list[Layer]:
    return sorted((l for l in report.layers if getattr(l, key)), key=lambda l: -getattr(l, key))[:n]


@check("max_params", "--max-params", "N", "fail unless the total of unique parameters is <= N (100000, 100k)")
def max_params(report: Report, limit: int) -> CheckResult:
    value = report.params.total
    heavy = _heaviest(report, "params")
    passed = value <= limit
    msg = f"parameters {value:,} {'<=' if passed else '>'} {limit:,}"
    if not passed:
        msg += "; heaviest: " + ", ".join(f"{l.name} {l.params:,}" for l in heavy)
    return CheckResult("max_params", value, limit, passed, msg, [l.name for l in heavy])


@check("max_macs", "--max-macs", "N", "fail unless the multiply-accumulates per input are <= N (e.g. 20M)")
def max_macs(report: Report, limit: int) -> CheckResult:
    value = report.macs
    heavy = _heaviest(report, "macs")
    passed = value <= limit
    msg = f"MACs per input {value:,} {'<=' if passed else '>'} {limit:,}"
    if not passed:
        msg += "; heaviest: " + ", ".join(f"{l.name} {l.macs:,}" for l in heavy)
    return CheckResult("max_macs", value, limit, passed, msg, [l.name for l in heavy])


def _input_shape(report: Report, layer: Layer) -> Optional[tuple[int, ...]]:
    by = {l.name: l for l in report.layers}
    for name in layer.inputs:
        if name == "input":
            return tuple(report.input_size)
        if name in by:
            return by[name].output_shape
    return None


@check("require_gap", "--require-gap", None, "fail unless a real global average pooling feeds the classifier "
       "(AdaptiveAvgPool to 1, an average pool covering the whole map, or a spatial mean)", parse_bool, flag=True)
def require_gap(report: Report, required: bool) -> CheckResult:
    by = {l.name: l for l in report.layers}
    names = [n.strip() for n in (report.rf.global_layer or "").split(",") if n.strip()]
    glob = [by[n] for n in names if n in by]
    passed = bool(glob) and all(l.global_kind == "avg" for l in glob)
    if not required:
        return CheckResult("require_gap", passed, False, True, "global average pooling not required",
                           [l.name for l in glob])
    if passed:
        g = glob[0]
        inp = _input_shape(report, g)
        seen = f" over the {_axes(inp[1:])} map" if inp else ""
        return CheckResult("require_gap", True, True, True, f"global average pooling {g.name} ({g.type}){seen}",
                           [g.name])
    # why not: a pool that reaches 1x1 without covering the map, a global max, or a flatten + Linear
    reasons = []
    for l in report.layers:
        if l.kind in ("avg_pool", "max_pool", "lp_pool") and not l.is_global and l.output_shape[1:] and \
                all(s == 1 for s in l.output_shape[1:]):
            inp = _input_shape(report, l)
            if inp:
                reasons.append(f"{l.name} ({l.type}, kernel {_axes(l.kernel or ())}) reduces the {_axes(inp[1:])} "
                               f"map to {_axes(l.output_shape[1:])} but its window never sees "
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


def _min_count(key: str, what: str):
    def run(report: Report, limit: int) -> CheckResult:
        value = report.counts.get(key, 0)
        members = report.count_layers.get(key, [])
        passed = value >= limit
        msg = f"{value} {what} {'>=' if passed else '<'} {limit}"
        if members:
            msg += ": " + ", ".join(members[:8]) + (" ..." if len(members) > 8 else "")
        return CheckResult(f"min_{_SHORT[key]}", value, limit, passed, msg, list(members))
    return run


_SHORT = {"depthwise_separable": "dws", "dilated": "dilated", "transposed": "transposed", "depthwise": "depthwise"}
for _key, _what, _help in [
        ("depthwise_separable", "depthwise-separable pair(s)",
         "fail unless there are >= N depthwise-separable pairs (a kxk conv with groups = in_channels, k > 1, "
         "then a 1x1 conv through BN/activation only)"),
        ("dilated", "dilated conv(s)", "fail unless there are >= N convs with dilation > 1"),
        ("transposed", "transposed conv(s)", "fail unless there are >= N transposed convs"),
        ("depthwise", "depthwise conv(s)", "fail unless there are >= N depthwise convs (groups = in_channels)")]:
    _name = f"min_{_SHORT[_key]}"
    check(_name, "--" + _name.replace("_", "-"), "N", _help)(_min_count(_key, _what))


def _norm(t: str) -> str:
    return t.replace("_", "").lower()


def type_matches(pattern: str, layer: Layer) -> bool:
    """``MaxPool2d`` matches the module and F.max_pool2d; ``MaxPool`` any dimension; globs work."""
    p = _norm(pattern)
    t = _norm(layer.type)
    if fnmatch.fnmatchcase(t, p) or re.fullmatch(re.escape(p) + r"[123]d", t):
        return True
    if layer.kind and _norm(layer.kind) == p:
        return True
    return False


@check("forbid", "--forbid", "TYPE[,TYPE]", "fail if any layer is of these types, modules or their functional "
       "forms (MaxPool2d also matches F.max_pool2d; MaxPool any dimension; globs such as 'Conv*' work)",
       parse_names)
def forbid(report: Report, types: tuple[str, ...]) -> CheckResult:
    hits = [l for l in report.layers if any(type_matches(t, l) for t in types)]
    passed = not hits
    if passed:
        msg = f"no {', '.join(types)} layers"
    else:
        msg = f"{len(hits)} forbidden layer(s): " + ", ".join(f"{l.name} ({l.type})" for l in hits[:8]) + \
            (" ..." if len(hits) > 8 else "")
    return CheckResult("forbid", [l.name for l in hits], list(types), passed, msg, [l.name for l in hits])


@check("blocks", "--blocks", "NAME[,NAME]", "fail unless the model's top-level blocks, in forward order, match "
       "these names (case-insensitive globs: C1,C2,C3,C4,O*)", parse_names)
def blocks(report: Report, patterns: tuple[str, ...]) -> CheckResult:
    names = [b.name for b in report.blocks]
    ok = len(names) == len(patterns) and all(fnmatch.fnmatchcase(n.lower(), p.lower()) for n, p in zip(names, patterns))
    per = "; ".join(f"{b.name}: RF {_axes(b.rf)}, out {_axes(b.output_shape)}" for b in report.blocks)
    if ok:
        msg = f"blocks {', '.join(names)} match {', '.join(patterns)} ({per})"
    else:
        wrong = [f"{i + 1}: {n!r} vs {p!r}" for i, (n, p) in enumerate(zip(names, patterns))
                 if not fnmatch.fnmatchcase(n.lower(), p.lower())]
        msg = (f"top-level blocks in forward order are {', '.join(names) or 'none'} ({len(names)}), expected "
               f"{', '.join(patterns)} ({len(patterns)})" + (f"; mismatched: {', '.join(wrong)}" if wrong else ""))
    return CheckResult("blocks", names, list(patterns), ok, msg, names)


@check("input_fraction", "--input-fraction", "F", "fail unless the model RF is >= F times the input size on every "
       "axis (1.0: the RF spans the whole input)", parse_fraction)
def input_fraction(report: Report, fraction: float) -> CheckResult:
    size = tuple(report.rf.size)
    spatial = tuple(report.input_size[1:])
    need = tuple(fraction * s for s in spatial)
    passed = bool(size) and len(size) == len(spatial) and all(r >= n for r, n in zip(size, need))
    ratio = "x".join(f"{r / s:.2f}" for r, s in zip(size, spatial))
    msg = (f"model RF {_axes(size)} is {ratio} of the {_axes(spatial)} input "
           f"{'>=' if passed else '<'} {fraction:g}")
    if report.unproductive:
        msg += f"; {len(report.unproductive)} unproductive layer(s) after full coverage: " + \
            ", ".join(report.unproductive[:5])
    return CheckResult("input_fraction", [round(r / s, 4) for r, s in zip(size, spatial)], fraction, passed, msg,
                       [report.rf.at])


@check("strict", "--strict", None, "also fail when any value is not exact (an unknown op, a bound only)", parse_bool,
       flag=True)
def strict(report: Report, on: bool) -> CheckResult:
    bad = [l.name for l in report.layers if l.unknown or not l.exact]
    unknown = [l for l in report.layers if l.unknown]
    passed = (not on) or (report.exact and not bad)
    if not bad:
        msg = "every value is exact"
    else:
        msg = f"{len(bad)} layer(s) not exact" + (
            f"; unknown: {', '.join(f'{l.name} ({l.type})' for l in unknown[:5])}" if unknown else "")
    return CheckResult("strict", not bad, True, passed, msg, bad[:20])


# -- running -----------------------------------------------------------------------------------------
def parse_rules(values: dict[str, Any], source: str = "") -> dict[str, Any]:
    """Validate and parse rule values; an unknown name or a bad value raises ValueError naming it."""
    out = {}
    where = f"{source}: " if source else ""
    for key, raw in values.items():
        name = key.replace("-", "_")
        if name not in CHECKS:
            raise ValueError(f"{where}unknown rule {key!r}{did_you_mean(name, CHECKS)}; known: {', '.join(CHECKS)}")
        if raw is None:
            continue
        try:
            out[name] = CHECKS[name].parse(raw)
        except ValueError as e:
            raise ValueError(f"{where}{key} = {raw!r}: {e}") from None
    return out


def did_you_mean(name: str, known) -> str:
    import difflib
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def run_checks(report: Report, limits: dict[str, Any]) -> list[CheckResult]:
    """Run the rules whose limit is set (not None; a switch set to False is off), in registry order."""
    unknown = set(limits) - set(CHECKS)
    if unknown:
        raise KeyError(f"unknown rule(s): {', '.join(sorted(unknown))}; known: {', '.join(CHECKS)}")
    results = []
    for name, c in CHECKS.items():
        v = limits.get(name)
        if v is None or (c.flag and v is False):
            continue
        results.append(c.run(report, v))
    return results


def get_check(name: str) -> Optional[Check]:
    return CHECKS.get(name)
