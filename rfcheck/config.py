"""Rules from a config file, the flake8 way: the ``[rfcheck]`` section of the nearest
setup.cfg or tox.ini, or ``[tool.rfcheck]`` of pyproject.toml, found by walking up from the
current directory.  Where it sits among the other settings: :func:`rfcheck.options.resolve`."""
from __future__ import annotations

import configparser
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .diagnostics import Diagnostic
from .errors import RFCheckError
from .options import known_keys, parse_value
from .rules import did_you_mean

FILES = ("setup.cfg", "tox.ini", "pyproject.toml")


class ConfigError(RFCheckError):
    """A bad value or an unreadable config file."""


@dataclass
class Config:
    values: dict[str, Any] = field(default_factory=dict)   # parsed, by underscore name
    warnings: list[Diagnostic] = field(default_factory=list)


def find(start: Optional[Path] = None) -> Optional[Path]:
    """The nearest file, from ``start`` upwards, that has an rfcheck section."""
    d = Path(start or os.getcwd()).resolve()
    for folder in (d, *d.parents):
        for name in FILES:
            p = folder / name
            if p.is_file() and _has_section(p):
                return p
    return None


def _has_section(p: Path) -> bool:
    try:
        return _raw(p) is not None
    except ConfigError:
        return True  # a broken file that may hold our section: report it rather than skip it


def _raw(p: Path) -> Optional[dict[str, Any]]:
    if p.name.endswith(".toml"):
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ImportError:
                return None
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{p}: cannot read it as TOML: {e}") from None
        sec = data.get("tool", {}).get("rfcheck")
        if sec is not None and not isinstance(sec, dict):
            raise ConfigError(f"{p}: [tool.rfcheck] must be a table")
        return sec
    cp = configparser.ConfigParser(interpolation=None)
    try:
        cp.read_string(p.read_text(encoding="utf-8"), source=str(p))
    except (OSError, configparser.Error) as e:
        raise ConfigError(f"{p}: cannot parse it: {str(e).splitlines()[0]}") from None
    if not cp.has_section("rfcheck"):
        return None
    return dict(cp.items("rfcheck"))


def load(path: Optional[Path] = None, start: Optional[Path] = None) -> Config:
    """Read and validate the config: ``path`` if given (it must exist and hold a section),
    else the nearest one.  Unknown keys become warnings, bad values a ConfigError."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(path)!r} not found")
        raw = _raw(p)
        if raw is None:
            sec = "[tool.rfcheck]" if p.name.endswith(".toml") else "[rfcheck]"
            raise ConfigError(f"config file {str(path)!r} has no {sec} section")
    else:
        p = find(start)
        if p is None:
            return Config()
        raw = _raw(p) or {}
    label = f"{_short(p)} [{'tool.rfcheck' if p.name.endswith('.toml') else 'rfcheck'}]"
    return parse(raw, label)


def for_command(config: Optional[str], isolated: bool, prog: str) -> dict[str, Any]:
    """What a command's ``--config PATH`` / ``--isolated`` select: the config file's values, its
    warnings printed on stderr as ``PROG: warning: ...``; none under --isolated."""
    if isolated:
        if config:
            raise ConfigError("--config and --isolated contradict each other")
        return {}
    cfg = load(Path(config) if config else None)
    for w in cfg.warnings:
        print(f"{prog}: warning: {w}", file=sys.stderr)
    return cfg.values


def parse(raw: dict[str, Any], label: str) -> Config:
    cfg = Config()
    known = known_keys()
    for key, value in raw.items():
        name = key.strip().replace("-", "_")
        if name not in known:
            cfg.warnings.append(Diagnostic.of("RF001", None, f"{label}: unknown key {key!r}{did_you_mean(name, known)} "
                                                             f"(ignored; known keys: {', '.join(known)})"))
            continue
        text = value.strip() if isinstance(value, str) else value
        if text == "" or text is None:
            continue
        try:
            cfg.values[name] = parse_value(name, text)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{label}: {key} = {value!r}: {e}") from None
    return cfg


def _short(p: Path) -> str:
    try:
        return os.path.relpath(p)
    except ValueError:
        return str(p)
