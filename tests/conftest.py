"""Shared fixtures."""
from __future__ import annotations

import sys

import pytest


@pytest.fixture
def restore_import_state():
    """The loader puts the model file's folder on sys.path and the module in sys.modules."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith("_rfcheck_user_"):
            del sys.modules[name]
