"""Coded diagnostics, the flake8 way: every warning rfcheck gives has a stable code, so a test
can assert it and a user can silence it (``--ignore RF206``, config ``ignore = RF206``).

Codes: ``RF0xx`` settings, ``RF1xx`` values that are not exact (what the analysis could not
follow), ``RF2xx`` design smells, ``RF3xx`` parameters.  A code is never reused for another
meaning; the README's table is generated from :data:`CODES` (``tests`` check they agree)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Optional


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    severity: str   # "warning" (a value is not exact or the design has a flaw) or "info"
    summary: str


CODES: dict[str, Code] = {c.code: c for c in (
    Code("RF001", "unknown-config-key", "warning", "a config file key rfcheck does not know (ignored)"),
    Code("RF101", "unknown-op", "warning", "an op or module without a rule: the values after it are a guess, "
                                           "marked not exact"),
    Code("RF102", "data-dependent", "warning", "control flow or a shape decided by tensor values (bool(), .item(), "
                                               ".tolist(), nonzero): the trace took one branch; values after it are "
                                               "not exact"),
    Code("RF103", "batch-folded", "warning", "spatial positions folded into the batch dimension (x.view(-1, C) on a "
                                             "map): one sample became several rows"),
    Code("RF104", "bound-only", "warning", "a value is a bound, not exact (e.g. a size-dependent map too costly to "
                                           "follow exactly)"),
    Code("RF105", "untraceable-layout", "warning", "a tensor layout the tracer cannot follow (a reshape that mixes "
                                                   "spatial positions with other dims)"),
    Code("RF106", "empty-units", "info", "output units that read no input at all (a transposed conv with stride > "
                                         "kernel)"),
    Code("RF201", "misaligned-merge", "warning", "branches merged with different jumps or RF centres"),
    Code("RF202", "partial-global-pool", "warning", "a pool reduces the map to 1x1 but its window misses "
                                                    "positions: not a global pool"),
    Code("RF203", "gating", "info", "a globally pooled branch gates the feature map (squeeze-and-excitation)"),
    Code("RF204", "stride1-transposed", "info", "a stride-1 transposed conv: a padded conv, no RF booster"),
    Code("RF205", "padded-1x1", "warning", "a 1x1 conv with padding grows the map by a border of padding"),
    Code("RF206", "unproductive", "warning", "windowed layers after every unit already sees the whole input"),
    Code("RF207", "resized-jump", "info", "a map resized to fewer units than its sampling period (adaptive "
                                          "pooling, resizing to a size): the jump is the RF centres' spacing over "
                                          "the units that exist, not the size ratio"),
    Code("RF301", "unused-params", "warning", "parameters not used in forward but counted in the total"),
    Code("RF302", "forward-mutates", "info", "the model's forward reassigns its own attributes (buffers, caches); "
                                             "rfcheck restored them after the trace"),
)}


@dataclass(frozen=True)
class Diagnostic:
    """One warning: its code, how serious, the layer it is about (or None) and the message."""
    code: str
    severity: str
    layer: Optional[str]
    message: str

    @classmethod
    def of(cls, code: str, layer: Optional[str], message: str) -> "Diagnostic":
        return cls(code, CODES[code].severity, layer, message)

    def renamed(self, old: str, new: str) -> "Diagnostic":
        """The same diagnostic after its layer got its module's name (the tracer names a layer
        once the module that produced it returns)."""
        if self.layer != old:
            return self
        return Diagnostic(self.code, self.severity, new, self.message.replace(f" {old}:", f" {new}:"))

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "layer": self.layer, "message": self.message}

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


def parse_codes(text: Any) -> tuple[str, ...]:
    """Codes or code prefixes (``RF206``, ``RF2``), comma separated or a list; an unknown one
    is an error with a did-you-mean."""
    items = list(text) if isinstance(text, (list, tuple)) else re.split(r"[,\s]+", str(text))
    codes = tuple(str(i).strip().upper() for i in items if str(i).strip())
    if not codes:
        raise ValueError(f"expected one or more codes such as RF206, got {text!r}")
    for c in codes:
        if not any(k.startswith(c) for k in CODES) or not re.fullmatch(r"RF\d{0,3}", c):
            import difflib
            close = difflib.get_close_matches(c, list(CODES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown diagnostic code {c!r}{hint}; known: {', '.join(CODES)}")
    return codes


def ignored(d: Diagnostic, ignore: Iterable[str]) -> bool:
    return any(d.code.startswith(p) for p in ignore)


def markdown_table() -> str:
    """The README's table of codes."""
    rows = ["| code | name | severity | meaning |", "|---|---|---|---|"]
    rows += [f"| `{c.code}` | {c.name} | {c.severity} | {c.summary} |" for c in CODES.values()]
    return "\n".join(rows)
