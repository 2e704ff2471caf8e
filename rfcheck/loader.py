"""Turn a command-line model spec into built nn.Module objects, with one-line errors.

Specs: ``PATH.py`` (the nn.Module subclasses defined in that file), ``PATH.py:Name`` and
``package.module:Name`` where Name is a class or a factory returning a module.  Models are
built with no arguments, under ``torch.device("meta")`` by default: the analysis reads only
shapes, and real random weights cost seconds and hundreds of MB on a large model."""
from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import os
import re
import sys
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Callable, ContextManager, Iterator

import torch
from torch.nn.modules.module import register_module_buffer_registration_hook as on_buffer
from torch.nn.modules.module import register_module_parameter_registration_hook as on_parameter

from .errors import RFCheckError
from .metacopy import has_storage, meta_twin


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


def parse_call(spec: str, name: str) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """``Net(width=32)`` as ``("Net", (), {"width": 32})``: the builder's name and its arguments,
    Python literals read with :func:`ast.literal_eval` (no code is run).  ``spec`` names the
    error."""
    if "(" not in name and ")" not in name:
        return name, (), {}
    head, _, rest = name.partition("(")
    bad = f"model {spec!r}: bad builder arguments {('(' + rest)!r}"
    if not rest.endswith(")") or not re.fullmatch(r"[A-Za-z_][\w.]*", head.strip()):
        raise RFCheckError(f"{bad}: expected NAME(ARG, KEY=VALUE, ...) with Python literals, such as "
                           "Net(width=32)")
    try:
        call = ast.parse(f"f({rest}", mode="eval").body
    except SyntaxError as e:
        raise RFCheckError(f"{bad}: {e.msg}; expected Python literals, such as Net(width=32)") from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise RFCheckError(f"{bad}: expected NAME(ARG, KEY=VALUE, ...)")
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise RFCheckError(f"{bad}: *args and **kwargs are not supported")

    def literal(node: ast.AST) -> Any:
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise RFCheckError(f"{bad}: {ast.unparse(node)} is not a Python literal (numbers, strings, "
                               "True/False/None, tuples, lists, dicts; no code is run)") from None
    return head.strip(), tuple(literal(a) for a in call.args), {k.arg: literal(k.value) for k in call.keywords}


def _with_args(obj: Callable, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable:
    return functools.partial(obj, *args, **kwargs) if args or kwargs else obj


def _backbone_hint(obj: Callable, e: Exception | None) -> str:
    """torchvision's segmentation/detection builders download backbone weights by default."""
    try:
        p = inspect.signature(obj).parameters.get("weights_backbone")
    except (TypeError, ValueError):
        return ""
    if p is None or p.default is None:
        return ""
    return " (it downloads backbone weights by default: add (weights_backbone=None) to the spec to build it without)"


def build(obj: Any, label: str, meta: bool = True, notes: list[str] | None = None) -> torch.nn.Module:
    """Call a class or factory with no arguments and check it gives a module.

    With ``meta`` the model is built without real weights: first under ``torch.device("meta")``;
    if the constructor needs real values there (``.tolist()``, ``.item()``, numpy), again with
    only its parameters and buffers sent to meta as they are registered; if it computes on those
    too, on the CPU.  ``notes`` (when given) gets a one-line reason for each such retry, and for
    tensors that the constructor put on the CPU explicitly (the analysis works either way)."""
    if isinstance(obj, torch.nn.Module):
        return obj
    if not callable(obj):
        raise RFCheckError(f"{label} is a {type(obj).__name__}, not a model class or factory")
    missing = _required_args(obj)
    if missing:
        raise RFCheckError(f"{label}{'' if label.endswith(')') else '()'} needs arguments ({', '.join(missing)}): "
                           f"give them in the spec ({label.split('(')[0]}({missing[0]}=...)), give them defaults "
                           "or point at a factory function that takes none")
    model, said = _build_on_meta(obj, label) if meta else (None, [])
    on_meta = model is not None
    if model is None:
        try:
            model = obj()
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0]
            raise RFCheckError(f"building {label}{'' if label.endswith(')') else '()'} failed: "
                               f"{type(e).__name__}: {first}{_backbone_hint(obj, e)}") from e
    if not isinstance(model, torch.nn.Module):
        raise RFCheckError(f"{label}() returned a {type(model).__name__}, not a torch.nn.Module")
    real = _real_tensors(model) if on_meta else []
    if real:
        shown = ", ".join(real[:3]) + (" ..." if len(real) > 3 else "")
        said.append(f"{label}: its constructor put {len(real)} parameter/buffer tensor(s) on the CPU "
                    f"explicitly (the analysis works all the same): {shown}")
    if notes is not None:
        notes += said
    return model


#: in-place fills a constructor's weight initialisation runs; on a meta tensor they change nothing
#: but cost (normal_ and clamp_ go through Python decompositions: 0.2 and 0.7 ms a call)
_FILLS = frozenset(getattr(torch.Tensor, n) for n in (
    "normal_", "uniform_", "bernoulli_", "exponential_", "log_normal_", "cauchy_", "geometric_", "random_", "zero_",
    "fill_", "clamp_", "clamp_min_", "clamp_max_", "erfinv_", "mul_", "add_", "sub_", "div_", "copy_"))


class _SkipFills(torch.overrides.TorchFunctionMode):
    """Weight initialisation on meta parameters is skipped (they hold no values to fill)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _FILLS and args and isinstance(args[0], torch.Tensor) and args[0].is_meta and (
                func is not torch.Tensor.copy_ or (len(args) > 1 and isinstance(args[1], torch.Tensor)
                                                   and args[1].is_meta)):
            return args[0]
        return func(*args, **(kwargs or {}))


@contextmanager
def _on_meta() -> Iterator[None]:
    with torch.device("meta"), _SkipFills():
        yield


def _build_on_meta(obj: Callable, label: str) -> tuple[Any, list[str]]:
    """``(model, notes)`` built without real weights, or ``(None, [why not])``."""
    model, why = _attempt(obj, _on_meta())
    if model is not None:
        return model, []
    if "URLError" in why or "urlopen error" in why:  # a download (of weights) failed: retrying downloads again
        raise RFCheckError(f"building {label}{'' if label.endswith(')') else '()'} failed: {why}"
                           f"{_backbone_hint(obj, None)}")
    model, why_registered = _attempt(obj, _weights_on_meta())
    if model is None:
        return None, [f"{label}: built on the CPU, not on the meta device: {why_registered}"]
    return model, [f"{label}: built with only its parameters and buffers on the meta device (under "
                   f"torch.device('meta') its constructor failed: {why})"]


def _attempt(obj: Callable, context: ContextManager) -> tuple[Any, str]:
    """``(obj(), "")`` built inside ``context``, or ``(None, why)`` when that raised."""
    try:
        with context:
            return obj(), ""
    except Exception as e:
        first = str(e).strip().splitlines()
        return None, f"{type(e).__name__}: {first[0]}" if first else type(e).__name__


@contextmanager
def _weights_on_meta() -> Iterator[None]:
    """Parameters and buffers go to the meta device as modules register them, while the rest of
    what a constructor computes stays real (regnet's stage widths: arange, round, tolist)."""
    twins: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # (the original kept alive: its id stays its own)

    def to_meta(module: torch.nn.Module, name: str, t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None or not has_storage(t):
            return None
        if id(t) not in twins:  # one twin for a tensor registered twice (tied weights)
            twins[id(t)] = (t, meta_twin(t))
        return twins[id(t)][1]

    handles = [on_parameter(to_meta), on_buffer(to_meta)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _real_tensors(model: torch.nn.Module) -> list[str]:
    """Names of the parameters and buffers that hold real data."""
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    return [name for name, t in named if has_storage(t)]


def load(spec: str, all_models: bool = False, meta: bool = True,
         notes: list[str] | None = None) -> list[tuple[str, torch.nn.Module]]:
    """Return ``[(label, model), ...]`` for a spec.  ``meta=True`` builds on the meta device
    (enough for the analysis; pass ``meta=False`` for a model to run or train), see :func:`build`."""
    return [(label, model) for label, model, _ in load_entries(spec, all_models, meta, notes)]


def load_entries(spec: str, all_models: bool = False, meta: bool = True,
                 notes: list[str] | None = None) -> list[tuple[str, torch.nn.Module, Any]]:
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
                out += [(f"{path}:{e.obj.__name__}", build(e.obj, f"{path}:{e.obj.__name__}", meta, notes), e)
                        for e in entries]
            elif _defined_models(module):
                out += [(label, m, None) for label, m in load(path, True, meta, notes)]
        if not out:
            raise RFCheckError(f"model folder {spec}: no model defined in {', '.join(files)}")
        return out
    from .registry import Entry
    return [(label, model, obj if isinstance(obj, Entry) else entry_for(obj))
            for label, model, obj in _load_spec(spec, all_models, meta, notes)]


def _load_spec(spec: str, all_models: bool, meta: bool,
               notes: list[str] | None) -> list[tuple[str, torch.nn.Module, Any]]:
    path, _, name = spec.partition(":") if not _is_windows_drive(spec) else (spec, "", "")
    if not name and path.endswith(")") and "(" in path:
        raise RFCheckError(f"model {spec!r}: builder arguments need a name: PATH.py:NAME(...) or "
                           "package.module:NAME(...)")
    name, args, kwargs = parse_call(spec, name)
    if path == "timm":
        return [_timm(spec, name, kwargs if not args else _no_positional(spec), meta, notes)]
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
        label = f"{where}:{name}" + (spec[spec.index("(", len(where)):] if args or kwargs else "")
        return [(label, build(_with_args(obj, args, kwargs), label, meta, notes), obj)]
    classes = _defined_models(module)
    if not classes:
        raise RFCheckError(f"{where} defines no torch.nn.Module subclass; name a model with {where}:NAME")
    if all_models:
        return [(f"{where}:{c.__name__}", build(c, f"{where}:{c.__name__}", meta, notes), c) for c in classes]
    if len(classes) > 1:
        buildable = [c for c in classes if not _required_args(c)]
        if len(buildable) == 1:
            classes = buildable
        else:
            names = ", ".join(c.__name__ for c in (buildable or classes))
            raise RFCheckError(f"{where} defines several models ({names}); pick one with {where}:NAME "
                               "or use --all")
    c = classes[0]
    return [(f"{where}:{c.__name__}", build(c, f"{where}:{c.__name__}", meta, notes), c)]


def _no_positional(spec: str) -> dict[str, Any]:
    raise RFCheckError(f"model {spec!r}: timm models take keyword arguments only, such as timm:resnet18(drop_rate=0.1)")


def _timm(spec: str, name: str, kwargs: dict[str, Any], meta: bool,
          notes: list[str] | None) -> tuple[str, torch.nn.Module, Any]:
    """``timm:NAME``: ``timm.create_model(NAME, pretrained=False, **kwargs)``, with the model's
    default input size as its registry-like entry (the command line's --input-size wins)."""
    if not name:
        raise RFCheckError(f"model {spec!r}: expected timm:NAME, such as timm:resnet18")
    try:
        import timm
    except ImportError:
        raise RFCheckError(f"timm:{name} needs timm: pip install timm") from None
    if not timm.is_model(name):
        import difflib
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()"
        raise RFCheckError(f"timm:{name}: timm has no model of that name{hint}")
    label = spec if kwargs else f"timm:{name}"
    factory = functools.partial(timm.create_model, name, pretrained=False, **kwargs)
    model = build(factory, label, meta, notes)
    from .registry import Entry
    return label, model, Entry(label, factory, {}, _timm_input_size(model))


def _timm_input_size(model: torch.nn.Module) -> tuple[int, ...] | None:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    if not size:
        try:
            from timm.data import resolve_data_config
            size = resolve_data_config({}, model=model).get("input_size")
        except Exception:
            size = None
    return tuple(int(s) for s in size) if size else None


def _is_windows_drive(spec: str) -> bool:
    return len(spec) > 2 and spec[1] == ":" and spec[0].isalpha() and spec[2] in "\\/"
