"""A registry of designs (like timm's ``register_model``), so ``rfcheck models/`` checks every
registered design in a folder, each against the project's rules plus its own.

    from rfcheck.registry import register_model

    @register_model(rules={"min_transposed": 1})
    class NetTransposed(nn.Module): ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .rules import parse_rules


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Callable[[], Any]
    rules: dict[str, Any] = field(default_factory=dict)   # parsed, override the config file's
    input_size: Optional[tuple[int, ...]] = None

    @property
    def module(self) -> str:
        return getattr(self.obj, "__module__", "")


REGISTRY: dict[str, Entry] = {}


def register_model(obj: Optional[Callable] = None, *, name: Optional[str] = None,
                   rules: Optional[dict[str, Any]] = None, input_size: Optional[tuple[int, ...]] = None):
    """Register a model class or a no-argument factory; usable bare or with keywords.  ``rules``
    are validated now (a typo fails at import, naming the rule)."""
    def deco(o: Callable) -> Callable:
        n = name or getattr(o, "__name__", str(o))
        parsed = parse_rules(dict(rules or {}), f"register_model({n})")
        # keyed by where the object lives: a file imported twice (as a script and as a module
        # its neighbours import) registers two objects under one name without clobbering
        key = f"{getattr(o, '__module__', '')}:{getattr(o, '__qualname__', n)}"
        REGISTRY[key] = Entry(n, o, parsed, tuple(input_size) if input_size else None)
        return o
    return deco(obj) if obj is not None else deco


def entries_in(module_name: str) -> list[Entry]:
    return [e for e in REGISTRY.values() if e.module == module_name]


def entry_for(obj: Any) -> Optional[Entry]:
    for e in REGISTRY.values():
        if e.obj is obj:
            return e
    return None
