"""Small helpers shared by the analyzer benchmark's modules: error text, log lines, number formats."""
from __future__ import annotations

import sys
import time
from typing import Optional


def short_error(e: BaseException) -> str:
    """``Type: message`` on one line, cut at 90 characters: it goes into a table cell."""
    msg = " ".join(str(e).split()) or "(no message)"
    return f"{type(e).__name__}: {msg[:90] + ('...' if len(msg) > 90 else '')}"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fmt_num(v) -> str:
    """A number, or a per-axis tuple as ``a x b`` (one number when every axis agrees)."""
    if v is None:
        return "-"
    if isinstance(v, (tuple, list)):
        if len(set(map(str, v))) == 1 and len(v) > 1:
            return fmt_num(v[0])
        return " x ".join(fmt_num(x) for x in v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f != f:
        return "nan"
    if abs(f) >= 1e7:
        return f"{f:.3g}"
    if f.is_integer():
        return str(int(f))
    return f"{f:.3g}"


def fmt_s(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.1f} ms" if v < 0.1 else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def fmt_mb(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.1f} MB" if v < 10 else f"{v:,.0f} MB"


def fmt_int(v) -> str:
    return "-" if v is None else f"{int(v):,}"


def fmt_size(size) -> str:
    return "x".join(map(str, size))
