"""Capture the dataflow of one forward pass on the ``meta`` device.

Nothing is computed: inputs are meta tensors, and every parameter or buffer a torch function
receives is swapped for a meta twin, so the user's model is never modified and the cost does
not depend on the input size.  A TorchFunctionMode sees every torch function (``F.conv2d``,
``x + y``, ``x.view`` ...); global module hooks tell which module called it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from itertools import chain
from operator import is_, itemgetter
from typing import Any, Optional

import torch
from torch.overrides import TorchFunctionMode

from . import fastmeta
from .call import Call
from .diagnostics import Diagnostic
from .errors import TraceError
from .leaves import LEAVES
from .ops import ALIASES, CONSTANTS, FUNCTION_RULES, lookup_module, op_name, pointwise, pretty
from .state import TensorState


@dataclass
class Node:
    index: int
    name: str
    type: str
    op: str
    inputs: list[int]
    shapes: list[tuple[int, ...]]
    state: TensorState
    out_ids: list[int] = field(default_factory=list)
    params: int = 0
    shared_params: int = 0
    macs: int = 0
    info: dict = field(default_factory=dict)
    exact: bool = True
    unknown: bool = False
    is_global: bool = False
    notes: list[str] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)


@dataclass
class Graph:
    nodes: list[Node]
    outputs: list[tuple[int, TensorState]]
    params_total: int
    params_trainable: int
    unused_params: list[str]
    module_outputs: dict[str, int] = field(default_factory=dict)  # module call name -> producing node
    module_types: dict[str, str] = field(default_factory=dict)
    top_level: list[str] = field(default_factory=list)  # direct children of the model, in call order
    #: diagnostics about the trace as a whole (data-dependent reads RF102, restored attributes RF302)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: the index of the first node recorded after a data-dependent read (it and every later node are
    #: not exact), or None
    tainted_at: Optional[int] = None


class _Frame:
    """One module call in progress (a plain class with slots: one is made per module call)."""
    __slots__ = ("module", "name", "start", "rule", "inert", "args")

    def __init__(self, module: torch.nn.Module, name: str, start: int, args: tuple):
        self.module, self.name, self.start, self.args = module, name, start, args
        self.rule: Any = None
        self.inert = False

    @property
    def in_shapes(self) -> list:
        """Shapes of the tensor arguments (only an error message needs them)."""
        with torch._C.DisableTorchFunction():
            return [_shape(t) for t in _tensors(self.args)]


_IDLE = ("", ())  # Tracer.current between ops


#: torch functions whose output has exactly the input's shape, dtype and layout
SHAPE_PRESERVING = frozenset({
    "batch_norm",
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "selu_",
    "celu", "gelu", "silu", "mish", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardswish", "hardsigmoid",
    "softplus", "softsign", "logsigmoid", "tanhshrink", "hardshrink", "softshrink",
})


#: ops that read a tensor's values into Python: a branch (``if x.mean() > 0``), a scalar (``.item()``),
#: a size (``int(t)``, ``range(t)``).  A meta tensor has no values: traced, they are data-dependent
#: (RF102); a message "Tensor.item() cannot be called on meta tensors" says the same of the others
#: (``torch.arange(t)``, ``torch.full(size, t)``, ``allclose``)
VALUE_READS = frozenset({
    "__bool__", "item", "tolist", "__int__", "__float__", "__index__", "__complex__", "__contains__", "numpy",
    "__array__", "equal", "allclose", "is_nonzero",
})
#: ops whose output shape depends on the values (when the meta device cannot run them)
VALUE_SHAPES = frozenset({
    "nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "_unique", "_unique2", "bincount",
    "repeat_interleave", "where", "__getitem__", "masked_scatter",
})
#: of those, the ops whose shape is decided by their second argument (the mask, index or repeats)
_DECIDED_BY_ARG1 = frozenset({"__getitem__", "masked_select", "masked_scatter", "repeat_interleave"})
_READ_WORDS = {
    "__bool__": "bool() (an if, while, assert or `and`/`or` on a tensor)", "item": ".item()",
    "tolist": ".tolist()", "__int__": "int()", "__float__": "float()", "__complex__": "complex()",
    "__index__": "its use as an int (an index, a size, range())", "__contains__": "`in`", "numpy": ".numpy()",
    "__array__": "numpy.asarray()", "is_nonzero": "torch.is_nonzero()",
    "__getitem__": "indexing with a mask (x[mask])", "where": "torch.where(condition) with one argument",
    "repeat_interleave": "repeat_interleave with tensor repeats",
}


def _batch_norm_fits(args: tuple, kwargs: dict) -> bool:
    """The checks batch_norm's kernel makes (so a wrong num_features still fails as in PyTorch)."""
    x = args[0]
    if x.ndim < 2:
        return False
    c = x.shape[1]
    names = ("running_mean", "running_var", "weight", "bias")
    for i, n in enumerate(names):
        t = args[i + 1] if len(args) > i + 1 else kwargs.get(n)
        if isinstance(t, torch.Tensor) and t.numel() != c:
            return False
    return True


_Tensor = torch.Tensor
_META = torch.device("meta")
_LEAF = (int, float, bool, str, type(None), torch.dtype, torch.device)


def _tensors(obj: Any) -> list[torch.Tensor]:
    """Every tensor in nested lists/tuples/dicts, in order (hot: called for every op)."""
    if isinstance(obj, _Tensor):
        return [obj]
    out: list[torch.Tensor] = []
    _collect(obj, out)
    return out


def _collect(obj: Any, out: list) -> None:
    if isinstance(obj, (list, tuple)):
        for o in obj:
            if isinstance(o, _Tensor):
                out.append(o)
            elif not isinstance(o, _LEAF):
                _collect(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            if isinstance(o, _Tensor):
                out.append(o)
            elif not isinstance(o, _LEAF):
                _collect(o, out)
    elif isinstance(obj, _Tensor):
        out.append(obj)


def _map(obj: Any, fn) -> Any:
    if isinstance(obj, _Tensor):
        return fn(obj)
    if isinstance(obj, _LEAF):
        return obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_map(o, fn) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _map(v, fn) for k, v in obj.items()}
    return obj


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _walk(model: torch.nn.Module) -> tuple[list, dict[int, str], dict[int, tuple[str, int, bool]]]:
    """Modules (each once), their names and the parameters (each once, first name wins): what
    ``named_modules()`` and ``named_parameters()`` give, in one pass without their generators."""
    modules: list[torch.nn.Module] = []
    names: dict[int, str] = {}
    params: dict[int, tuple[str, int, bool]] = {}
    stack = [("", model)]
    while stack:
        prefix, m = stack.pop()
        if id(m) in names:
            continue
        names[id(m)] = prefix
        modules.append(m)
        dot = prefix + "." if prefix else ""
        for k, p in m._parameters.items():
            if p is not None and id(p) not in params:
                params[id(p)] = (dot + k, p.numel(), p.requires_grad)
        children = [(dot + k, c) for k, c in m._modules.items() if c is not None]
        stack.extend(reversed(children))
    return modules, names, params


class Tracer(TorchFunctionMode):
    def __init__(self, model: torch.nn.Module, rules: Optional[dict] = None):
        super().__init__()
        self.model = model
        # this analysis's own op rules beside the global table (fvcore's set_op_handle)
        self.function_rules = FUNCTION_RULES
        self.module_overrides: dict[type, Any] = {}
        if rules:
            self.function_rules = {**FUNCTION_RULES, **{k: v for k, v in rules.items() if isinstance(k, str)}}
            self.module_overrides = {k: v for k, v in rules.items() if isinstance(k, type)}
        self.modules, self.module_names, self.params = _walk(model)
        self.rules: dict[type, Any] = {}  # module type -> its registered module rule or None
        self.registry: dict[int, tuple[int, TensorState]] = {}
        self.keep: list[Any] = []
        self.meta: dict[int, torch.Tensor] = {}
        self.derived: dict[int, frozenset[int]] = {}
        self.nodes: list[Node] = []
        self.frames: list[_Frame] = []
        self.names: set[str] = set()
        self.suffix: dict[str, int] = {}  # name -> the next suffix to try (see _unique)
        self.calls: dict[int, int] = {}
        self.attributed: set[int] = set()
        self.suppress = 0
        self.current: tuple[str, Any] = _IDLE
        self.module_outputs: dict[str, int] = {}
        self.module_types: dict[str, str] = {}
        self.top_level: dict[str, None] = {}  # (a dict: ordered, and a Sequential of 2,000 layers has 2,000)
        self.diagnostics: list[Diagnostic] = []
        self.tainted_at: Optional[int] = None  # see Graph.tainted_at
        self.decisions: set[tuple[str, str]] = set()  # (module, op) of the data-dependent reads reported
        #: id -> snapshot (:func:`_entry`) of each module of the model before its forward first runs
        #: (restored after the trace)
        self.saved: dict[int, tuple] = {}

    # -- tensors -----------------------------------------------------------------------
    def to_meta(self, t: torch.Tensor) -> torch.Tensor:
        if t.is_meta:
            return t
        m = self.meta.get(id(t))
        if m is None:
            if t.layout is torch.strided and t.is_contiguous():  # (a third of the cost of .to)
                m = torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=_META)
            else:
                m = t.detach().to(_META)
            self.meta[id(t)] = m
            self.keep.append(t)
        return m

    def register(self, t: torch.Tensor, node: int, state: TensorState) -> None:
        self.registry[id(t)] = (node, state)
        self.keep.append(t)

    def _param_ids(self, tensors: list[torch.Tensor]) -> set[int]:
        ids: set[int] = set()
        for t in tensors:
            if id(t) in self.params:
                ids.add(id(t))
            elif id(t) in self.derived:
                ids |= self.derived[id(t)]
        return ids

    def _attribute(self, node: Node, ids: set[int]) -> None:
        if not ids:
            return
        for pid in (ids if len(ids) == 1 else sorted(ids, key=lambda i: self.params[i][0])):
            name, n, _ = self.params[pid]
            if pid in self.attributed:
                node.shared_params += n
            else:
                self.attributed.add(pid)
                node.params += n

    def _unique(self, name: str) -> str:
        if name not in self.names:
            self.names.add(name)
            return name
        # the scan starts after the last suffix given (a functional op called 1,000 times in one
        # forward would otherwise scan 1, 2, ... each time); :meth:`_release` resets it
        k = self.suffix.get(name, 2)
        while f"{name}:{k}" in self.names:
            k += 1
        self.suffix[name] = k + 1
        self.names.add(f"{name}:{k}")
        return f"{name}:{k}"

    def _release(self, name: str) -> None:
        """A name given back (a node renamed after its module): the next of its base may take it."""
        self.names.discard(name)
        self.suffix.pop(name, None)
        self.suffix.pop(name.rsplit(":", 1)[0], None)

    # -- the mode ----------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        tensors_in = _tensors((args, kwargs))
        if all(t.is_meta for t in tensors_in):  # activations are meta already; only weights need a twin
            margs, mkwargs = args, kwargs
        else:
            margs, mkwargs = _map(args, self.to_meta), _map(kwargs, self.to_meta)
        tracked, seen = [], set()
        for t in tensors_in:
            if id(t) in self.registry and id(t) not in seen:
                tracked.append(t)
                seen.add(id(t))
        if tracked:
            self.current = (name, [_shape(t) for t in tracked])
        if name in SHAPE_PRESERVING and margs and isinstance(margs[0], torch.Tensor) and tracked and (
                name != "batch_norm" or _batch_norm_fits(margs, mkwargs)):
            # output = input's shape and dtype: skip PyTorch's Python meta decompositions (batch norm's
            # alone was half of the analysis time); in-place variants return their input
            x = margs[0]
            out = x if name.endswith("_") else fastmeta.like(x)
        else:
            fast = fastmeta.FAST.get(name) if tracked else None
            out = fast(name, margs, mkwargs) if fast is not None else None
            if out is None:
                try:
                    out = func(*margs, **mkwargs)
                except Exception as e:
                    out = self._fallback(e, func, name, args, kwargs, tracked)
        self.current = _IDLE  # an error raised after this op is not this op's
        if self.suppress:
            return out
        outs = list(_tensors(out))
        if not outs:
            return out
        if not tracked or name in CONSTANTS:
            prov = self._param_ids(tensors_in)
            if prov:
                for o in outs:
                    self.derived[id(o)] = frozenset(prov)
                    self.keep.append(o)
            return out
        self._record(name, margs, mkwargs, tracked, outs, tensors_in)
        return out

    def _fallback(self, e: Exception, func, name: str, args: tuple, kwargs: dict, tracked: list) -> Any:
        """An op the meta device cannot run: compute it on the CPU (meta tensors as zeros, real ones as
        copies), then go back to meta.  An op that reads values (``bool``, ``.item()``) or whose
        shape depends on them (``nonzero``, ``x[mask]``) on a tensor that depends on the input is a
        data-dependent decision (:meth:`_decided`); its shape ops see ones (every element selected)."""
        msg = str(e)
        reads = name in VALUE_READS or "item()" in msg
        shapes = not reads and (name in VALUE_SHAPES or "data-independent" in msg)
        if not (reads or shapes) and (not isinstance(e, (NotImplementedError, RuntimeError))
                                      or (isinstance(e, RuntimeError) and "meta" not in msg)):
            raise e
        fill = torch.ones if shapes else torch.zeros

        def real(t):
            if t.device.type == "meta":
                return fill(t.shape, dtype=t.dtype)
            return t.detach().to("cpu", copy=True)  # (a copy: an in-place op must not touch the model)
        try:
            out = func(*_map(args, real), **_map(kwargs, real))
        except Exception:
            raise e
        if (reads or shapes) and tracked and not self.suppress:
            deciding = _tensors((args[1:2], kwargs)) if name in _DECIDED_BY_ARG1 else []
            deciding = [t for t in (deciding or _tensors((args, kwargs))) if id(t) in self.registry]
            if deciding:
                self._decided(name, deciding[0], out, reads)
        return _map(out, lambda t: t.to("meta"))

    def _decided(self, op: str, t: torch.Tensor, value: Any, reads: bool) -> None:
        """A value of ``t`` (computed from the input) decided the forward's path or a shape: the
        trace goes on with a made-up value, and every node recorded from now on is not exact."""
        if self.tainted_at is None:
            self.tainted_at = len(self.nodes)
        frame = self.frames[-1] if self.frames else None
        module = frame.name if frame is not None and frame.module is not self.model else ""
        if (module, op) in self.decisions:
            return
        self.decisions.add((module, op))
        source = self.nodes[self.registry[id(t)][0]].name
        owner = type(frame.module if frame is not None else self.model).__name__
        where = f"{module} ({owner}.forward)" if module else f"{owner}.forward"
        layer = module or source
        if reads:
            what = _READ_WORDS.get(op, f"torch.{pretty(op)}() of a tensor argument")
            got = repr(value) if isinstance(value, (bool, int, float)) else (
                "zeros" if isinstance(value, (list, torch.Tensor)) else type(value).__name__)
            text = (f"{what} reads the value of {source}, a tensor computed from the input; the trace has no "
                    f"values, so it went on with {got}")
        else:
            shape = "x".join(str(s) for s in value.shape) if isinstance(value, torch.Tensor) else "?"
            what = _READ_WORDS.get(op, f"torch.{pretty(op)}()")
            text = (f"{what} on {source}, a tensor computed from the input, gives an output shape that depends "
                    f"on its values; the trace went on as if every element were selected ({shape})")
        self.diagnostics.append(Diagnostic.of(
            "RF102", layer, f"data-dependent at {layer}: in {where}, {text}. What the forward decided with it (a "
            "branch, a loop, a size) may differ for real inputs: every layer recorded from here on is marked "
            "not exact"))

    def _new_node(self, name: str, type_: str, op: str, call: Call, states: list[TensorState],
                  outs: list[torch.Tensor], inputs: list[int]) -> Node:
        states = call.kept_channels(states)
        if self.tainted_at is not None or not call.exact:
            # after a data-dependent decision nothing is exact, nor is what a rule noted as not exact
            # (copies: a rule may return its input's state object)
            # (channel provenance is dropped with it: the union of the channels' geometry is the safe side)
            states = [st if not st.exact else replace(st, geo=dict(st.geo), exact=False, parts=None)
                      for st in states]
        node = Node(len(self.nodes), name, type_, op, inputs, [_shape(o) for o in outs], states[0],
                    out_ids=[id(o) for o in outs], macs=call.macs, info=call.info, exact=states[0].exact,
                    unknown=call.unknown, is_global=call.is_global, notes=call.notes, warnings=call.warnings)
        self.nodes.append(node)
        for o, st in zip(outs, states):
            self.register(o, node.index, st)
        return node

    def _run_rule(self, rule, call: Call, *rule_args) -> list[TensorState]:
        try:
            res = rule(*rule_args, call)
        except Exception as e:  # a rule must never take the analysis down
            return call.unknown_result(f"rule for {call.op} failed: {type(e).__name__}: {e}")
        states = res if isinstance(res, list) else [res]
        while len(states) < len(call.outputs):
            states.append(states[-1])
        return states

    def _record(self, name, margs, mkwargs, tracked, outs, tensors_in, nname: Optional[str] = None,
                type_: Optional[str] = None) -> Node:
        entries = [self.registry[id(t)] for t in tracked]
        in_nodes = [i for i, _ in entries]
        if name in ALIASES:
            st = entries[0][1]
            if self.tainted_at is not None and st.exact:
                st = replace(st, exact=False, parts=None)
            for o in outs:
                if o.ndim == len(st.dims):
                    self.register(o, in_nodes[0], st)
            return None
        if nname is None:
            frame = self.frames[-1] if self.frames else None
            prefix = frame.name if frame else ""
            nname = self._unique(f"{prefix}.{pretty(name)}" if prefix else pretty(name))
        rule = self.function_rules.get(name)
        if rule is pointwise and len(entries) == 1 and len(outs) == 1:
            st = entries[0][1]
            if st.subpixel is None and outs[0].shape == tracked[0].shape:
                return self._pointwise_node(nname, type_ or pretty(name), name, in_nodes[0], st, outs[0], tensors_in)
        call = Call(nname, name, margs, mkwargs, tracked, [s for _, s in entries],
                    [self.nodes[i].name for i in in_nodes], outs)
        call.index = len(self.nodes)
        if rule is None:
            states = call.unknown_result(f"no rule for op {name!r}")
        else:
            states = self._run_rule(rule, call)
        node = self._new_node(nname, type_ or pretty(name), name, call, states, outs, in_nodes)
        self._attribute(node, self._param_ids(tensors_in))
        return node

    def leaf(self, module: torch.nn.Module, spec, x: Any) -> Optional[torch.Tensor]:
        """Record a module of :data:`LEAVES` without running it; None: run it as usual."""
        if (self.suppress or module is self.model or not isinstance(x, _Tensor) or id(x) not in self.registry
                or not x.is_meta or module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks):
            return None
        if self._module_rule(module) is not None:  # a user rule for this module type: the normal path applies it
            return None
        found = spec(module, x)
        if found is None:
            return None
        # the module's own parameters stand in for meta twins: the fast paths and the rules
        # read only their metadata (shape, dtype), and no copy is made
        name, margs = found
        if name in SHAPE_PRESERVING:
            if name == "batch_norm" and not _batch_norm_fits(margs, {}):
                return None
            out = fastmeta.like(x)
        else:
            out = fastmeta.FAST[name](name, margs, {})
            if out is None:
                return None
        mid = id(module)
        count = self.calls.get(mid, 0) + 1
        self.calls[mid] = count
        base = self.module_names.get(mid)
        if base is None:
            base = type(module).__name__
        self.current = _IDLE
        tensors_in = [a for a in margs if isinstance(a, _Tensor)]
        nname = self._unique(base if count == 1 else f"{base}:{count}")
        node = self._record(name, margs, {}, [x], [out], tensors_in, nname=nname, type_=type(module).__name__)
        self._note_module_output(module, node.name, [out])
        return out

    def _pointwise_node(self, nname: str, type_: str, op: str, idx: int, st: TensorState, out: torch.Tensor,
                        tensors_in: list) -> Node:
        """What the pointwise rule gives for one input of the output's shape (Call.merge's unary
        case), without building a Call: BatchNorm and activations are most of a CNN's layers."""
        state = TensorState(st.dims, dict(st.geo), st.exact and self.tainted_at is None, parts=st.parts,
                            lost=st.lost)
        node = Node(len(self.nodes), nname, type_, op, [idx], [_shape(out)], state, out_ids=[id(out)],
                    info={"kind": "pointwise"}, exact=state.exact)
        self.nodes.append(node)
        self.register(out, node.index, state)
        self._attribute(node, self._param_ids(tensors_in))
        return node

    # -- module hooks ------------------------------------------------------------------
    def _module_rule(self, module: torch.nn.Module):
        t = type(module)
        try:
            return self.rules[t]
        except KeyError:
            rule = next((self.module_overrides[c] for c in t.__mro__ if c in self.module_overrides), None)
            if rule is None:
                rule = lookup_module(module)
            self.rules[t] = rule
            return rule

    def pre_hook(self, module, args):
        mid = id(module)
        if mid not in self.saved:
            self.saved[mid] = _entry(module)
        base = self.module_names.get(mid)
        if base is None:
            base = type(module).__name__
        count = self.calls[mid] = self.calls.get(mid, 0) + 1
        frame = _Frame(module, base if count == 1 else f"{base}:{count}", len(self.nodes), args)
        self.current = _IDLE
        if self.suppress:
            frame.inert = True
        elif module is not self.model:
            frame.rule = self._module_rule(module)
            if frame.rule is not None:
                self.suppress += 1
        self.frames.append(frame)

    def post_hook(self, module, args, output):
        frame = self.frames.pop()
        if frame.inert:
            return None
        outs = list(_tensors(output))
        self._post(frame, module, args, outs)
        self._note_module_output(module, frame.name, outs)
        return None

    def _note_module_output(self, module: torch.nn.Module, name: str, outs: list[torch.Tensor]) -> None:
        if module is self.model or not outs or id(outs[0]) not in self.registry:
            return
        self.module_outputs[name] = self.registry[id(outs[0])][0]
        self.module_types[name] = type(module).__name__
        if len(self.frames) == 1 and self.frames[0].module is self.model:
            self.top_level[name] = None

    def _post(self, frame: _Frame, module, args, outs):
        if frame.rule is not None:
            self.suppress -= 1
            tracked, seen = [], set()
            for t in _tensors(args):
                if id(t) in self.registry and id(t) not in seen:
                    tracked.append(t)
                    seen.add(id(t))
            if not tracked or not outs:
                return None
            entries = [self.registry[id(t)] for t in tracked]
            nname = self._unique(frame.name)
            call = Call(nname, type(module).__name__, tuple(_map(args, self.to_meta)), {}, tracked,
                        [s for _, s in entries], [self.nodes[i].name for i, _ in entries], outs, module=module)
            call.index = len(self.nodes)
            states = self._run_rule(frame.rule, call, module)
            node = self._new_node(nname, type(module).__name__, type(module).__name__, call, states, outs,
                                  [i for i, _ in entries])
            self._attribute(node, {id(p) for p in module.parameters() if id(p) in self.params})
            return None
        if module is self.model or module._modules:
            return None
        made = self.nodes[frame.start:]
        out_ids = {id(t) for t in outs}
        producer = next((n for n in reversed(made) if out_ids & set(n.out_ids)), None)
        if producer is not None:
            old = producer.name
            self._release(old)
            producer.name = self._unique(frame.name)
            producer.type = type(module).__name__
            producer.warnings = [w.renamed(old, producer.name) for w in producer.warnings]
        return None


#: record the modules of :data:`LEAVES` without running them (off: every module runs; the tests
#: compare both ways)
USE_LEAVES = True


def _global_hooks() -> bool:
    """Global module hooks must see every module call: then no module is skipped."""
    from torch.nn.modules import module as m
    return any(getattr(m, n, None) for n in ("_global_forward_hooks", "_global_forward_pre_hooks",
                                              "_global_backward_hooks", "_global_backward_pre_hooks",
                                              "_global_forward_hooks_always_called"))


_CONTAINERS = frozenset({list, dict, set})  # attribute values a forward may change in place (x.append)
_SCALARS = frozenset({int, float, bool, str, complex, type(None)})
_MISSING = object()
_flat = chain.from_iterable
#: what the keys of a module's own dicts hold, for the RF302 message
_NON_PERSISTENT = "_non_persistent_buffers_set"
_KINDS = {_NON_PERSISTENT: "non-persistent buffer"}
#: the attributes every module has (nn.Module.__init__'s): the others are the module's own
_BASE = frozenset(vars(torch.nn.Module()))


def _entry(m: torch.nn.Module) -> tuple:
    """The contents of a module's plain lists, dicts and sets (``self.history.append(x)``), other
    than ``_parameters``, ``_buffers`` and ``_modules``, whose contents :func:`_identities` keeps
    with the identity of every attribute."""
    d = vars(m)
    return m, [(k, d[k], d[k].copy()) for k in d.keys() - _BASE if type(d[k]) in _CONTAINERS] + [
        (_NON_PERSISTENT, d[_NON_PERSISTENT], set(d[_NON_PERSISTENT]))]


_GROUPS = ("attribute", "parameter", "buffer", "submodule")
_OWN = ("_parameters", "_buffers", "_modules")
_SUBDICTS = tuple(itemgetter(k) for k in _OWN)


def _identities(modules: list[torch.nn.Module]) -> tuple:
    """A shallow copy of every module's ``__dict__``, ``_parameters``, ``_buffers`` and ``_modules``
    (C-level copies: this runs for every module of every analysis; the contents of other
    containers are in the :func:`_entry` of the modules whose forward runs)."""
    dicts = list(map(vars, modules))
    try:
        groups = [dicts] + [list(map(g, dicts)) for g in _SUBDICTS]
        return modules, groups, [[d.copy() for d in x] for x in groups]
    except (TypeError, KeyError, AttributeError):  # not plain dicts (a TorchScript module's wrappers)
        return ()


def _unchanged(now: list[dict], before: list[dict], ordered: bool) -> bool:
    """Every dict holds what its copy holds (C-level: a value compares equal to itself without its
    ``__eq__``; a value replaced by an equal one, a new tuple of the same ints, counts as unchanged),
    in the same key order where ``ordered`` (a Sequential runs its ``_modules`` in theirs)."""
    try:
        if now != before:
            return False
    except Exception:  # (a tensor replaced by another: its == is elementwise)
        return False
    return not ordered or list(_flat(now)) == list(_flat(before))


def _put_back(d: dict, before: dict, kind: str, what: list[str]) -> None:
    for k in [k for k in d if k not in before]:
        what.append(f"new {kind} {k}")
        del d[k]
    for k, v in before.items():
        now = d.get(k, _MISSING)
        if now is not v:
            if not _same(now, v):
                what.append(f"{kind} {k}" if now is not _MISSING else f"deleted {kind} {k}")
            d[k] = v


def _changed(v: Any, saved: Any) -> bool:
    t = type(v)
    if t is dict:
        return v.keys() != saved.keys() or not all(map(is_, v.values(), saved.values()))
    if t is list:
        return len(v) != len(saved) or not all(map(is_, v, saved))
    return v != saved


def _same(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and type(a) in _SCALARS and a == b)


def _restore(entries: list[tuple], ids: tuple, names: dict[int, str]) -> list[Diagnostic]:
    """Put back what the forward reassigned, added or deleted (the trace leaves meta tensors in what
    it stored): first each running module's :func:`_entry`, then whatever :func:`_identities` still
    finds changed; one RF302 diagnostic per module type and change (ten blocks that cache the same
    buffer are one)."""
    what: dict[int, list[str]] = {}
    for m, containers in entries:
        for k, v, before in containers:
            if not _changed(v, before):
                continue
            kind = _KINDS.get(k)
            if kind is not None:  # (a set of names)
                what.setdefault(id(m), []).extend(f"{kind} {n}" for n in sorted(map(str, v ^ before)))
            else:
                what.setdefault(id(m), []).append(f"the contents of {type(v).__name__} {k}")
            if type(v) is list:
                v[:] = before
            else:
                v.clear()
                v.update(before)
    if ids:
        modules, groups, copies = ids
        for kind, x, saved in zip(_GROUPS, groups, copies):
            if _unchanged(x, saved, ordered=kind != "attribute"):
                continue
            for m, d, b in zip(modules, x, saved):
                if len(d) != len(b) or not all(map(is_, d, b)) or not all(map(is_, d.values(), b.values())):
                    _put_back(d, b, kind, what.setdefault(id(m), []))
    if not any(what.values()):
        return []
    by_id = {id(m): m for m in ids[0]} if ids else {}
    by_id.update((id(e[0]), e[0]) for e in entries)
    found: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for i, w in what.items():
        if w:
            m = by_id[i]
            found.setdefault((type(m).__name__, tuple(w)), []).append(names.get(id(m)) or type(m).__name__)
    out = []
    for (type_, what), where in found.items():
        shown = ", ".join(what[:8]) + (f" and {len(what) - 8} more" if len(what) > 8 else "")
        at = ", ".join(where[:4]) + (f" and {len(where) - 4} more" if len(where) > 4 else "")
        out.append(Diagnostic.of(
            "RF302", where[0], f"forward mutates at {at}: {type_}.forward changed {shown}; rfcheck restored "
            "it after the trace (it would have held meta tensors); this does not change the analysis"))
    return out


#: nn.Module's own __call__ (what a traced module call runs once the tracer has seen it)
_MODULE_CALL = torch.nn.Module.__call__


def _routed(fn: Any) -> bool:
    """``fn`` is a trace's module-call route (an analysis running inside another one's trace)."""
    return getattr(fn, "rfcheck_route", False)


def _patch_calls(modules: list[torch.nn.Module], call) -> list[tuple[type, Any]]:
    """Route the model's module calls through ``call``: set on each of the model's module types, not
    on ``nn.Module`` (a class attribute set on ``nn.Module`` updates the slots of its hundreds of
    loaded subclasses, ~0.1 ms each way and more with timm imported, and empties the method cache).
    Where a type has a ``__call__`` of its own (which may reach ``nn.Module.__call__`` through
    ``super()``), ``nn.Module``'s is patched as before, and so are the types an enclosing trace
    routed.  Returns what :func:`_unpatch_calls` puts back.  A module built inside a forward, of a
    type the model did not hold, then runs without a frame of its own: its ops are traced under
    the layer that calls it."""
    call.rfcheck_route = True
    types = list(dict.fromkeys(map(type, modules)))
    patched = []
    if any(t.__call__ is not _MODULE_CALL and not _routed(t.__call__) for t in types):
        patched.append((torch.nn.Module, torch.nn.Module.__call__))
        torch.nn.Module.__call__ = call
        types = [t for t in types if _routed(vars(t).get("__call__"))]  # (they would shadow it)
    for t in types:
        patched.append((t, vars(t).get("__call__", _MISSING)))
        t.__call__ = call
    return patched


def _unpatch_calls(patched: list[tuple[type, Any]]) -> None:
    for t, before in patched:
        if before is _MISSING:
            del t.__call__
        else:
            t.__call__ = before


def trace(model: torch.nn.Module, inputs: list[torch.Tensor], rules: Optional[dict] = None) -> Graph:
    """Run ``model`` once on meta ``inputs`` and return the recorded graph; ``rules`` maps
    module types and op names to rules that win over the global table for this trace only."""
    tracer = Tracer(model, rules)
    input_node = Node(0, "input", "input", "input", [], [_shape(t) for t in inputs],
                      TensorState.for_input(_shape(inputs[0])))
    tracer.nodes.append(input_node)
    tracer.names.add("input")
    for t in inputs:
        tracer.register(t, 0, TensorState.for_input(_shape(t)))
    training = [m for m in tracer.modules if m.training]
    training_set = set(map(id, training))
    module_call = _MODULE_CALL if _routed(torch.nn.Module.__call__) else torch.nn.Module.__call__
    pre, post = tracer.pre_hook, tracer.post_hook

    quiet = torch._C.DisableTorchFunction
    leaves = LEAVES if USE_LEAVES and not _global_hooks() else {}
    leaf = tracer.leaf

    def call(module, *args, **kwargs):
        # what global forward hooks would do, without sending every module call down
        # nn.Module's slow hook-dispatch path; the bookkeeping runs with the mode off, or
        # each .shape it reads would be traced as an op
        spec = leaves.get(type(module))
        if spec is not None and len(args) == 1 and not kwargs:
            with quiet():
                out = leaf(module, spec, args[0])
            if out is not None:
                return out
        with quiet():
            pre(module, args)
            # a module rule that knows its outputs' shapes spares running the forward on meta
            # tensors (an LSTM over 4096 steps decomposes into ~10^5 meta ops)
            frame = tracer.frames[-1]
            shapes = getattr(frame.rule, "meta_forward", None) if frame.module is module else None
            if shapes is not None and (module._forward_hooks or module._forward_pre_hooks):
                shapes = None
            out = shapes(module, *args, **kwargs) if shapes is not None else None
        if out is None:
            out = module_call(module, *args, **kwargs)
        with quiet():
            post(module, args, out)
        return out

    # what the forward changes on the model is put back afterwards: the identities of every module's
    # attributes, parameters, buffers and submodules, and (pre_hook) the whole state of each module
    # whose forward runs, before it first runs
    ids: tuple = ()
    patched: list[tuple[type, Any]] = []
    try:
        if training:
            model.eval()  # (a model may override train(): let it)
        ids = _identities(tracer.modules)
        patched = _patch_calls(tracer.modules, call)
        with torch.no_grad(), tracer, warnings.catch_warnings():
            # a warning about the cost of a real kernel means nothing on meta tensors
            warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
            out = model(*inputs)
    except TraceError:
        raise
    except Exception as e:
        raise TraceError(_describe_failure(tracer, e)) from e
    finally:
        _unpatch_calls(patched)
        restored = _restore(list(tracer.saved.values()), ids, tracer.module_names)
        if training:  # (an eval-mode model was not touched)
            for m in tracer.modules:
                flag = id(m) in training_set
                if m.training != flag:
                    m.training = flag
    outputs = []
    for t in _tensors(out):
        if id(t) in tracer.registry:
            outputs.append(tracer.registry[id(t)])
    total = sum(n for _, n, _ in tracer.params.values())
    trainable = sum(n for _, n, rg in tracer.params.values() if rg)
    unused = sorted(name for pid, (name, _, _) in tracer.params.items() if pid not in tracer.attributed)
    return Graph(tracer.nodes, outputs, total, trainable, unused, tracer.module_outputs, tracer.module_types,
                 list(tracer.top_level), tracer.diagnostics + restored, tracer.tainted_at)


_TOO_SMALL = ("too small", "can't be greater than actual input size", "cannot be greater than",
              "non-positive", "must be greater than 0", "negative dimension", "size is non-positive",
              "input image (", "padding should be at most half", "output size is 0")


def _describe_failure(tracer: Tracer, e: Exception) -> str:
    where = tracer.frames[-1] if tracer.frames else None
    layer = f"{where.name or 'the model'} ({type(where.module).__name__})" if where else "the model"
    op, shapes = tracer.current
    if not op and where is not None:
        shapes = where.in_shapes
    shape = "x".join(str(s) for s in shapes[0][1:]) if shapes and shapes[0] else "?"
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    low = msg.lower()
    if any(k in low for k in _TOO_SMALL):
        return (f"input too small for the net: {layer} gets a {shape} input and its {pretty(op) or 'output'} "
                f"would produce an output size < 1 ({msg}); use a larger --input-size")
    at = f" at {pretty(op)}" if op else ""
    after = ""
    if tracer.diagnostics:  # (only data-dependent reads are known before the trace ends)
        d = tracer.diagnostics[0]
        after = (f" (after a data-dependent read at {d.layer}, where the trace made up a value that real "
                 "inputs may not give: see RF102)")
    return f"forward failed in {layer}{at} with input {shape}: {type(e).__name__}: {msg}{after}"
