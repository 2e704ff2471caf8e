"""The ``rfcheck`` command (also ``python -m rfcheck``).

Exit codes: 0 all rules hold, 1 a rule fails, 2 the model could not be loaded or analysed
(or a bad option / config value)."""
from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any, Optional, Sequence

from . import __version__
from .checks import CHECKS
from .errors import RFCheckError

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def parse_size(text: str) -> tuple[int, ...]:
    try:
        size = tuple(int(p) for p in re.split(r"[,x]", text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers C,H,W such as 3,32,32, got {text!r}") from None
    if len(size) < 2 or len(size) > 4 or any(s < 1 for s in size):
        raise argparse.ArgumentTypeError(
            f"expected channels then 1 to 3 spatial sizes, all >= 1 (3,32,32; 2,128; 2,8,32,32), got {text!r}")
    return size


def _typed(parse):
    def conv(text):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    conv.__name__ = getattr(parse, "__name__", "value")
    return conv


def add_rule_options(add, prefix: str = "--", dest_prefix: str = "") -> None:
    """The rule options, from the one registry; the pytest plugin adds them too (with a prefix)."""
    for c in CHECKS.values():
        opt = prefix + c.option[2:]
        if c.flag:
            add(opt, dest=dest_prefix + c.name, action=argparse.BooleanOptionalAction, default=None, help=c.help)
        else:
            add(opt, dest=dest_prefix + c.name, type=_typed(c.parse), metavar=c.metavar, default=None, help=c.help)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rfcheck",
        description="Receptive field, jump, output size and parameters of every layer of a PyTorch model, "
                    "computed without running it, and design rules with advice on how to fix a failing design.",
        epilog="Rules and options may also come from [rfcheck] in setup.cfg or tox.ini, or [tool.rfcheck] in "
               "pyproject.toml (the nearest one, walking up from the current directory); the command line wins. "
               "exit codes: 0 all rules hold, 1 a rule fails, 2 the model could not be loaded or analysed.")
    p.add_argument("models", nargs="+", metavar="model",
                   help="PATH.py, PATH.py:NAME or package.module:NAME (a class or a factory returning a module, "
                        "built with no arguments); several may be given")
    p.add_argument("--input-size", type=parse_size, default=None, metavar="C,H,W",
                   help="one sample's size, channels first, no batch dim (default 3,32,32; 1D: 2,128; "
                        "3D: 2,8,32,32)")
    p.add_argument("--format", choices=("table", "json", "markdown"), default=None, help="output format")
    p.add_argument("--all", action="store_true", help="analyse every model class defined in PATH.py")
    p.add_argument("--rf-at", metavar="LAYER", default=None,
                   help="report the model RF at the output of this layer or module instead of at the input of the "
                        "global pool")
    p.add_argument("--plot", metavar="FILE.png", help="draw RF and jump per layer (needs matplotlib)")
    p.add_argument("--advice", action=argparse.BooleanOptionalAction, default=None,
                   help="suggest checked fixes for failing rules (default on)")
    p.add_argument("--config", metavar="PATH", help="read rules from this setup.cfg / tox.ini / pyproject.toml "
                                                    "instead of the nearest one")
    p.add_argument("--isolated", action="store_true", help="ignore config files")
    group = p.add_argument_group("rules")
    add_rule_options(group.add_argument)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"rfcheck {__version__}")
    return p


def _err(msg: str) -> None:
    print(f"rfcheck: error: {msg}", file=sys.stderr)


def settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rules, options) with defaults < config file < command line."""
    from .config import load
    options: dict[str, Any] = {"input_size": (3, 32, 32), "format": "table", "rf_at": None, "advice": True}
    rules: dict[str, Any] = {}
    if not args.isolated:
        cfg = load(Path(args.config) if args.config else None)
        for w in cfg.warnings:
            print(f"rfcheck: warning: {w}", file=sys.stderr)
        for k, v in cfg.values.items():
            (rules if k in CHECKS else options)[k] = v
    elif args.config:
        raise RFCheckError("--config and --isolated contradict each other")
    for k in CHECKS:
        v = getattr(args, k)
        if v is not None:
            rules[k] = v
    for k in ("input_size", "format", "rf_at", "advice"):
        v = getattr(args, k)
        if v is not None:
            options[k] = v
    return rules, options


def design_settings(entry, rules: dict[str, Any], opts: dict[str, Any],
                    args: argparse.Namespace) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Rules and input size for one design: a registered design's own rules beat the config
    file and the command line beats both; its registered input size is used unless
    --input-size is given."""
    if entry is None:
        return rules, opts["input_size"]
    cli_rules = {k: getattr(args, k) for k in CHECKS if getattr(args, k, None) is not None}
    size = entry.input_size if entry.input_size and getattr(args, "input_size", None) is None \
        else opts["input_size"]
    return {**rules, **entry.rules, **cli_rules}, size


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from .design import check_design
        from .loader import load_entries
        from .render import json_text, markdown, text
        rules, opts = settings(args)
        reports, results = [], []
        for spec in args.models:
            for label, model, entry in load_entries(spec, all_models=args.all):
                own, size = design_settings(entry, rules, opts, args)
                rep, res = check_design(model, size, own, advice=opts["advice"], rf_at=opts["rf_at"],
                                        name=label, parsed=True)
                reports.append(rep)
                results.append(res)
        if args.plot:
            from .plot import plot
            for i, rep in enumerate(reports):
                path = args.plot if len(reports) == 1 else _numbered(args.plot, i)
                plot(rep, path)
    except RFCheckError as e:
        if args.debug:
            traceback.print_exc()
        _err(str(e))
        return EXIT_ERROR
    except Exception as e:  # a bug of ours: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        _err(f"internal error: {type(e).__name__}: {e} (run with --debug and report it)")
        return EXIT_ERROR
    fmt = opts["format"]
    if fmt == "json":
        out = json_text(reports, results)
    elif fmt == "markdown":
        out = "\n".join(markdown(r, res) for r, res in zip(reports, results))
    else:
        out = "\n\n".join(text(r, res) for r, res in zip(reports, results))
    try:
        print(out)
        sys.stdout.flush()
    except BrokenPipeError:  # `rfcheck ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_FAIL if any(not c.passed for res in results for c in res) else EXIT_OK


def _numbered(path: str, i: int) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{i + 1}{p.suffix}"))


if __name__ == "__main__":
    sys.exit(main())
