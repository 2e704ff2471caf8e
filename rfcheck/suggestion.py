"""What advice is made of, without torch: a :class:`Change` to a named layer and a
:class:`Suggestion` (changes, the text, and what the changed model measures).  The rules
build them; :mod:`rfcheck.advice` applies and checks them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence


def nd(module: Any) -> int:
    """The spatial dimensions of a Conv1d/2d/3d or pool module, from its type name."""
    for n in (1, 2, 3):
        if type(module).__name__.endswith(f"{n}d"):
            return n
    return 2


def keeps_size(conv: Any, dilation: int = 2) -> bool:
    """Dilating a conv keeps its output size only if the extra reach splits evenly on both sides."""
    return isinstance(conv.padding, str) or all(
        (dilation - d0) * (k - 1) % 2 == 0 for d0, k in zip(conv.dilation, conv.kernel_size))


def pad_after(conv: Any, dilation: int) -> Any:
    """The padding that keeps a conv's output size once it has ``dilation``."""
    if isinstance(conv.padding, str):
        return conv.padding
    return tuple(p + (dilation - d0) * (k - 1) // 2 for p, d0, k in zip(conv.padding, conv.dilation,
                                                                         conv.kernel_size))


@dataclass(frozen=True)
class Change:
    layer: str            # module path
    kind: str             # "dilate", "stride", "separable", "gap"
    value: Any = None

    def describe(self, module: Any) -> str:
        ks = getattr(module, "kernel_size", ())
        k = "x".join(map(str, ks if isinstance(ks, (tuple, list)) else (ks,) * nd(module)))
        if self.kind == "dilate":
            return f"set dilation {self.value} on {self.layer} ({k} conv) with padding {pad_after(module, self.value)}"
        if self.kind == "stride":
            return f"set stride 2 on {self.layer} ({k} conv)"
        if self.kind == "separable":
            return (f"make {self.layer} ({k} conv, {module.in_channels}->{module.out_channels}) depthwise-separable: "
                    f"{k} depthwise ({module.in_channels} groups) + 1x1 pointwise")
        if self.kind == "gap":
            return f"replace {self.layer} ({type(module).__name__}) with AdaptiveAvgPool{nd(module)}d(1)"
        return f"{self.kind} {self.layer}"


@dataclass
class Suggestion:
    """A fix for one failing rule.  With ``changes`` it was applied to a copy of the model and
    analysed again: ``predicted`` holds the copy's RF, params, MACs and counts, ``passes``
    whether the rule then holds.  Without changes it is advice in words only."""
    rule: str
    changes: list[Change]
    text: str
    predicted: dict[str, Any] = field(default_factory=dict)
    passes: bool = False

    def apply(self, model: Any) -> Any:
        """A changed deep copy of ``model`` (the model itself is not touched)."""
        return apply_changes(model, self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "changes": [{"layer": c.layer, "kind": c.kind, "value": c.value}
                                               for c in self.changes],
                "passes": self.passes}


# -- applying changes (torch is imported only here, when a change is applied) ---------------------
def _device(m: Any) -> Any:
    import torch
    t = next(iter(m.parameters()), None)
    return t.device if t is not None else torch.device("cpu")


def _replace(root: Any, path: str, new: Any) -> None:
    import torch.nn as nn
    parent_path, _, attr = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    if isinstance(parent, (nn.Sequential, nn.ModuleList)) and attr.isdigit():
        parent[int(attr)] = new
    else:
        setattr(parent, attr, new)


def _conv_like(m: Any, **kw: Any) -> Any:
    args = dict(in_channels=m.in_channels, out_channels=m.out_channels, kernel_size=m.kernel_size, stride=m.stride,
                padding=m.padding, dilation=m.dilation, groups=m.groups, bias=m.bias is not None,
                padding_mode=m.padding_mode)
    args.update(kw)
    return type(m)(**args)


def _changed(m: Any, c: Change) -> Any:
    """The module that replaces ``m`` for change ``c``, made on ``m``'s device in its dtype."""
    new = _made(m, c)
    dtype = next((t.dtype for t in m.parameters() if t.is_floating_point()), None)
    return new.to(dtype=dtype) if dtype is not None else new


def _made(m: Any, c: Change) -> Any:
    import torch
    import torch.nn as nn
    with torch.device(_device(m)):
        if c.kind == "dilate":
            return _conv_like(m, dilation=(c.value,) * len(m.kernel_size), padding=pad_after(m, c.value))
        if c.kind == "stride":
            return _conv_like(m, stride=(2,) * len(m.kernel_size))
        if c.kind == "separable":
            dw = _conv_like(m, out_channels=m.in_channels, groups=m.in_channels, bias=False)
            pw = type(m)(m.in_channels, m.out_channels, 1, bias=m.bias is not None)
            return nn.Sequential(dw, pw)
        if c.kind == "gap":
            return getattr(nn, f"AdaptiveAvgPool{nd(m)}d")(1)
    raise ValueError(f"unknown change {c.kind!r}")


def is_noop(module: Any, change: Change) -> bool:
    """The change would put in a layer equal to ``module`` (same type and settings): such a
    suggestion changes nothing and is never made."""
    new = _changed(module, change)
    return type(new) is type(module) and repr(new) == repr(module)


def swap_in(model: Any, changes: Sequence[Change]) -> list[tuple[str, Any]]:
    """Apply ``changes`` to ``model`` itself; returns what :func:`swap_out` needs to undo them."""
    undo: list[tuple[str, Any]] = []
    try:
        for c in changes:
            old = model.get_submodule(c.layer)
            _replace(model, c.layer, _changed(old, c))
            undo.append((c.layer, old))
    except Exception:
        swap_out(model, undo)
        raise
    return undo


def swap_out(model: Any, undo: list[tuple[str, Any]]) -> None:
    for layer, old in reversed(undo):
        _replace(model, layer, old)


def apply_changes(model: Any, changes: Sequence[Change]) -> Any:
    """A changed deep copy of ``model``; new layers are made on the device of the layer they
    replace (the model itself is not touched)."""
    import copy
    new = copy.deepcopy(model)
    swap_in(new, changes)
    return new
