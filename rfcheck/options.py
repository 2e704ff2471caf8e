"""The one settings seam: the options besides the rules, their parsers, the default input
size, and :func:`resolve`, which merges every source of settings in one order

    defaults < config file < a registered design's own rules < command line (or pytest's
    --rfcheck-* options) < pytest marker < call keywords

for the CLI, ``rfcheck.check``/``assert_design``, the pytest fixture and the trainer's gate
alike (pytest-benchmark's habit of one option helper for every front end).  No torch here."""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from .diagnostics import parse_codes
from .errors import RFCheckError
from .rules import RULES, did_you_mean, parse_bool

#: one CIFAR-10 sample, channels first, no batch dimension
DEFAULT_INPUT_SIZE: tuple[int, ...] = (3, 32, 32)
FORMATS = ("table", "json", "markdown")


def parse_size(text: Any) -> tuple[int, ...]:
    """``3,32,32`` (or ``3x32x32``, or a sequence of ints): one sample, channels first."""
    if isinstance(text, (list, tuple)):
        text = ",".join(map(str, text))
    try:
        size = tuple(int(p) for p in re.split(r"[,x]", str(text).strip()))
    except ValueError:
        raise ValueError(f"expected integers C,H,W such as 3,32,32, got {text!r}") from None
    if len(size) < 2 or len(size) > 4 or any(s < 1 for s in size):
        raise ValueError(f"expected channels then 1 to 3 spatial sizes, all >= 1 (3,32,32; 2,128; 2,8,32,32), "
                         f"got {text!r}")
    return size


def parse_format(text: Any) -> str:
    if text not in FORMATS:
        raise ValueError(f"expected {', '.join(FORMATS[:-1])} or {FORMATS[-1]}, got {text!r}")
    return str(text)


class SettingsError(RFCheckError, ValueError):
    """An unknown setting or a bad value, named with where it came from."""


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[Any], Any]
    default: Any
    #: where it may be set besides the command line and the config file
    in_code: bool = True


OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("input_size", parse_size, DEFAULT_INPUT_SIZE),
    Option("rf_at", str, None),
    Option("format", parse_format, "table", in_code=False),
    Option("advice", parse_bool, True),
    Option("ignore", parse_codes, ()),
)}


@dataclass
class Settings:
    """Everything one check needs to know, resolved."""
    rules: dict[str, Any] = field(default_factory=dict)   # parsed limits, by rule name
    input_size: tuple[int, ...] = DEFAULT_INPUT_SIZE
    rf_at: Optional[str] = None
    format: str = "table"
    advice: bool = True
    ignore: tuple[str, ...] = ()


def parse_value(name: str, value: Any) -> Any:
    """Parse one rule or option value (ValueError on a bad one)."""
    return (RULES[name].parse if name in RULES else OPTIONS[name].parse)(value)


def known_keys(in_code: bool = False) -> list[str]:
    return list(RULES) + [o.name for o in OPTIONS.values() if o.in_code or not in_code]


def resolve(config: Optional[Mapping[str, Any]] = None, design: Any = None,
            command_line: Optional[Mapping[str, Any]] = None, marker: Optional[Mapping[str, Any]] = None,
            call: Optional[Mapping[str, Any]] = None) -> Settings:
    """Merge the settings sources, later ones winning; ``None`` values are not set.  ``design``
    is a registry entry (its ``rules`` and ``input_size``).  An unknown key or a bad value
    raises :class:`SettingsError` (a ValueError) naming its source."""
    values: dict[str, Any] = {name: o.default for name, o in OPTIONS.items()}
    rules: dict[str, Any] = {}
    layers = [("config", config, False), ("command line", command_line, False),
              ("@pytest.mark.rfcheck", marker, True), ("call", call, True)]
    if design is not None:
        own = {**design.rules, "input_size": design.input_size}
        layers.insert(1, (f"registered design {design.name}", own, False))
    for label, layer, in_code in layers:
        for key, raw in (layer or {}).items():
            name = key.replace("-", "_")
            if name not in known_keys(in_code):
                known = known_keys(in_code)
                raise SettingsError(f"{label}: unknown keyword {key!r}{did_you_mean(name, known)}; known: "
                                 f"{', '.join(known)}")
            if raw is None:
                continue
            try:
                parsed = parse_value(name, raw)
            except ValueError as e:
                raise SettingsError(f"{label}: {key} = {raw!r}: {e}") from None
            (rules if name in RULES else values)[name] = parsed
    return Settings(rules=rules, **values)


def argparse_type(parse: Callable[[Any], Any]) -> Callable[[str], Any]:
    """A parser as an argparse ``type`` (its ValueError becomes argparse's usage error)."""
    def conv(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    conv.__name__ = getattr(parse, "__name__", "value")
    return conv


def add_rule_options(add: Callable[..., Any], prefix: str = "--", dest_prefix: str = "") -> None:
    """The rule options, from the rule table; the pytest plugin adds them too (with a prefix)."""
    for rule in RULES.values():
        opt = prefix + rule.option[2:]
        if rule.flag:
            add(opt, dest=dest_prefix + rule.name, action=argparse.BooleanOptionalAction, default=None,
                help=rule.help)
        else:
            add(opt, dest=dest_prefix + rule.name, type=argparse_type(rule.parse), metavar=rule.metavar,
                default=None, help=rule.help)


def from_namespace(ns: Any, names: Any, prefix: str = "") -> dict[str, Any]:
    """The values of ``names`` that were given on a command line (argparse or pytest)."""
    get = ns.getoption if hasattr(ns, "getoption") else (lambda k: getattr(ns, k, None))
    return {n: v for n in names if (v := get(prefix + n)) is not None}


def check_output_path(option: str, path: str, folder: bool = False) -> None:
    """Fail now, naming the option and the path, if ``path`` cannot be written: its folder
    (for ``folder``, the nearest existing one) must exist and be writable, and the path must
    not be a folder (or, for ``folder``, a file)."""
    p = Path(path).expanduser()
    if folder:
        if p.exists() and not p.is_dir():
            raise RFCheckError(f"{option} {path}: exists and is not a folder")
        parent = p
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    else:
        if p.is_dir():
            raise RFCheckError(f"{option} {path}: is a folder, expected a file name")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.exists():
            raise RFCheckError(f"{option} {path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise RFCheckError(f"{option} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RFCheckError(f"{option} {path}: folder {parent} is not writable")
    import tempfile
    try:  # (root passes os.access everywhere; /proc and read-only mounts still refuse)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        import errno
        why = f" ({e.strerror})" if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC) else ""
        raise RFCheckError(f"{option} {path}: folder {parent} is not writable{why}") from None
