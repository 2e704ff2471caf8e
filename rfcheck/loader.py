"""Turn a command-line model spec into built nn.Module objects, with one-line errors.

Specs: ``PATH.py`` (the nn.Module subclasses defined in that file), ``PATH.py:Name`` and
``package.module:Name`` where Name is a class or a factory returning a module.  Models are
built with no arguments."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from types import ModuleType
from typing import Any, Callable

import torch

from .errors import RFCheckError


def _load_file(path: str) -> ModuleType:
    if not os.path.exists(path):
        raise RFCheckError(f"model file {path}: no such file")
    if os.path.isdir(path):
        raise RFCheckError(f"model file {path}: is a directory, expected a .py file (or give the folder alone "
                           "to check every model in it)")
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    mod_name = "_rfcheck_user_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise RFCheckError(f"model file {path}: cannot be imported (expected a .py file)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise RFCheckError(f"{path} line {e.lineno}: SyntaxError: {e.msg}") from e
    except SystemExit as e:
        raise RFCheckError(f"{path}: importing it called exit({e.code}); guard scripts with "
                           "if __name__ == '__main__':") from e
    except Exception as e:
        raise RFCheckError(f"{path}: import failed: {type(e).__name__}: {e}") from e
    return module


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise RFCheckError(f"cannot import module {name!r}: {e}") from e
    except Exception as e:
        raise RFCheckError(f"importing module {name!r} failed: {type(e).__name__}: {e}") from e


def _defined_models(module: ModuleType) -> list[type]:
    return [obj for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) and obj.__module__ == module.__name__]


def _required_args(obj: Callable) -> list[str]:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                                  p.KEYWORD_ONLY)]


def build(obj: Any, label: str) -> torch.nn.Module:
    """Call a class or factory with no arguments and check it gives a module."""
    if isinstance(obj, torch.nn.Module):
        return obj
    if not callable(obj):
        raise RFCheckError(f"{label} is a {type(obj).__name__}, not a model class or factory")
    missing = _required_args(obj)
    if missing:
        raise RFCheckError(f"{label}() needs arguments ({', '.join(missing)}); rfcheck builds models with no "
                           "arguments: give them defaults or point at a factory function that takes none")
    try:
        model = obj()
    except Exception as e:
        raise RFCheckError(f"building {label}() failed: {type(e).__name__}: {e}") from e
    if not isinstance(model, torch.nn.Module):
        raise RFCheckError(f"{label}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load(spec: str, all_models: bool = False) -> list[tuple[str, torch.nn.Module]]:
    """Return ``[(label, model), ...]`` for a spec."""
    return [(label, model) for label, model, _ in load_entries(spec, all_models)]


def load_entries(spec: str, all_models: bool = False) -> list[tuple[str, torch.nn.Module, Any]]:
    """Like :func:`load`, with the registry entry (own rules, input size) of each model or None.
    A folder loads the registered models of its .py files (every model class of a file that
    registers none)."""
    from .registry import entries_in, entry_for
    if os.path.isdir(spec):
        files = sorted(f for f in os.listdir(spec) if f.endswith(".py") and not f.startswith("_"))
        if not files:
            raise RFCheckError(f"model folder {spec}: no .py files in this directory")
        out = []
        for f in files:
            path = os.path.join(spec, f)
            module = _load_file(path)
            entries = entries_in(module.__name__)
            if entries:
                out += [(f"{path}:{e.obj.__name__}", build(e.obj, f"{path}:{e.obj.__name__}"), e) for e in entries]
            elif _defined_models(module):
                out += [(label, m, None) for label, m in load(path, all_models=True)]
        if not out:
            raise RFCheckError(f"model folder {spec}: no model defined in {', '.join(files)}")
        return out
    return [(label, model, entry_for(obj)) for label, model, obj in _load_spec(spec, all_models)]


def _load_spec(spec: str, all_models: bool) -> list[tuple[str, torch.nn.Module, Any]]:
    path, _, name = spec.partition(":") if not _is_windows_drive(spec) else (spec, "", "")
    if path.endswith(".py") or os.sep in path or os.path.exists(path):
        module = _load_file(path)
        where = path
    else:
        if not name:
            raise RFCheckError(f"model {spec!r}: expected PATH.py, PATH.py:NAME or package.module:NAME")
        module = _import(path)
        where = path
    if name:
        obj = module
        for part in name.split("."):
            if not hasattr(obj, part):
                found = ", ".join(c.__name__ for c in _defined_models(module)) or "none"
                raise RFCheckError(f"{where} has no {name!r}; models defined there: {found}")
            obj = getattr(obj, part)
        return [(f"{where}:{name}", build(obj, f"{where}:{name}"), obj)]
    classes = _defined_models(module)
    if not classes:
        raise RFCheckError(f"{where} defines no torch.nn.Module subclass; name a model with {where}:NAME")
    if all_models:
        return [(f"{where}:{c.__name__}", build(c, f"{where}:{c.__name__}"), c) for c in classes]
    if len(classes) > 1:
        buildable = [c for c in classes if not _required_args(c)]
        if len(buildable) == 1:
            classes = buildable
        else:
            names = ", ".join(c.__name__ for c in (buildable or classes))
            raise RFCheckError(f"{where} defines several models ({names}); pick one with {where}:NAME "
                               "or use --all")
    c = classes[0]
    return [(f"{where}:{c.__name__}", build(c, f"{where}:{c.__name__}"), c)]


def _is_windows_drive(spec: str) -> bool:
    return len(spec) > 2 and spec[1] == ":" and spec[0].isalpha() and spec[2] in "\\/"
