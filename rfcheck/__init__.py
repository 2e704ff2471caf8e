"""rfcheck: exact receptive field, jump, output size and parameter budget of a CNN, and
design checks, without running it.

The package face is lazy (PEP 562): ``import rfcheck`` (and the pytest plugin every pytest
session loads) imports no torch; the first use of ``analyze``, ``check``, ``summary`` or an op rule does."""
from __future__ import annotations

import importlib
from typing import Any

from .errors import RFCheckError, TraceError

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {
    "analyze": "analysis",
    "check": "design", "summary": "design", "DesignCheck": "design",
    "Report": "report", "Layer": "report", "ModelRF": "report", "Params": "report", "SCHEMA_VERSION": "report",
    "Diagnostic": "diagnostics",
    "Call": "call",
    "register_function": "ops", "register_module": "ops",
    "Suggestion": "suggestion",
    "explain": "handcalc",
}

__all__ = ["analyze", "check", "summary", "DesignCheck", "Report", "Layer", "ModelRF", "Params", "Diagnostic", "Call",
           "Suggestion", "register_function", "register_module", "RFCheckError", "TraceError", "SCHEMA_VERSION",
           "explain", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rfcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
