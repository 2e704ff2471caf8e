"""Value parsers shared by rules and options: each takes a string (command line, setup.cfg)
or a typed value (pyproject.toml, Python) and returns the parsed value; parsing a parsed
value gives it back, so every settings layer can go through the same parser."""
from __future__ import annotations

import difflib
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable


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


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
