"""Shared fixtures.

The optional packages (in the dev extra, not needed by rfcheck itself) are fixtures: a test that
needs one takes it and skips without it, and the rest of its file still runs."""
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


@pytest.fixture(scope="session")
def torchvision():
    """The torchvision package (its model zoo)."""
    return pytest.importorskip("torchvision")


@pytest.fixture(scope="session")
def albumentations():
    """The albumentations package (training.augment imports it, so does every training run)."""
    return pytest.importorskip("albumentations")


@pytest.fixture(scope="session")
def Image():
    """PIL.Image (Pillow), to write and decode image files."""
    return pytest.importorskip("PIL.Image")
