"""The ``rfcheck`` command (also ``python -m rfcheck``).

Exit codes: 0 all rules hold, 1 a rule fails, 2 the model could not be loaded or analysed
(or a bad option / config value)."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Optional, Sequence

from . import __version__
from .claims import parse_claim_value, parse_layer_claim
from .errors import RFCheckError
from .options import (
    FORMATS,
    OPTIONS,
    add_rule_options,
    argparse_type,
    check_output_path,
    from_namespace,
    parse_size,
    resolve,
)
from .rules import RULES

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rfcheck",
        description="Receptive field, jump, output size and parameters of every layer of a PyTorch model, "
                    "computed without running it, and design rules with advice on how to fix a failing design.",
        epilog="Rules and options may also come from [rfcheck] in setup.cfg or tox.ini, or [tool.rfcheck] in "
               "pyproject.toml (the nearest one, walking up from the current directory); the command line wins. "
               "exit codes: 0 all rules hold, 1 a rule fails, 2 the model could not be loaded or analysed.")
    p.add_argument("models", nargs="+", metavar="model",
                   help="PATH.py, PATH.py:NAME, package.module:NAME (a class or a factory returning a module, "
                        "built with no arguments) or timm:NAME; NAME(ARGS) passes Python literals to it "
                        "(\"models/net.py:Net(width=32)\"); several may be given")
    p.add_argument("--input-size", type=argparse_type(parse_size), default=None, metavar="C,H,W", action="append",
                   help="one sample's size, channels first, no batch dim (default 3,32,32; 1D: 2,128; "
                        "3D: 2,8,32,32; timm:NAME: the model's own). Repeat it once per forward argument for a "
                        "model with several inputs (--input-size 3,64,64 --input-size 3,64,64): the first "
                        "input's geometry is the one analysed")
    p.add_argument("--format", choices=FORMATS, default=None, help="output format")
    p.add_argument("--all", action="store_true", help="analyse every model class defined in PATH.py")
    p.add_argument("--rf-at", metavar="LAYER", default=None,
                   help="report the model RF at the output of this layer or module instead of at the input of the "
                        "global pool")
    p.add_argument("--plot", metavar="FILE.png", help="draw RF and jump per layer (needs matplotlib)")
    p.add_argument("--explain", action="store_true",
                   help="print the course's hand derivation after the report: one line per layer that changes RF, "
                        "jump or size, with the recurrences and rfcheck's exact numbers filled in")
    p.add_argument("--claim-rf", type=argparse_type(parse_claim_value), default=None, metavar="N",
                   help="your own model RF (N, or HxW): checked against the exact one; a wrong claim is diagnosed "
                        "(which known hand-calculation mistakes reproduce it) and exits 1")
    p.add_argument("--claim", type=argparse_type(parse_layer_claim), action="append", default=None,
                   metavar="LAYER=N", help="your own RF at a layer or module (as for --rf-at); repeatable")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--verbose", action="store_true",
                      help="list every traced layer (default: BatchNorm, activations and reshapes folded into the "
                           "conv/pool row they follow)")
    view.add_argument("--depth", type=_depth, default=None, metavar="N",
                      help="one table row per module at nesting depth N (1: the model's direct children), params "
                           "and MACs summed, RF, jump and size at the module's output")
    p.add_argument("--advice", action=argparse.BooleanOptionalAction, default=None,
                   help="suggest checked fixes for failing rules (default on)")
    p.add_argument("--config", metavar="PATH", help="read rules from this setup.cfg / tox.ini / pyproject.toml "
                                                    "instead of the nearest one")
    p.add_argument("--isolated", action="store_true", help="ignore config files")
    p.add_argument("--ignore", type=argparse_type(OPTIONS["ignore"].parse), default=None, metavar="CODE[,CODE]",
                   help="leave out the diagnostics with these codes or code prefixes (RF206, RF2)")
    group = p.add_argument_group("rules")
    add_rule_options(group.add_argument)
    p.add_argument("--debug", action="store_true", help="show tracebacks, and why a model could not be built on the meta device")
    p.add_argument("--version", action="version", version=f"rfcheck {__version__}")
    return p


def _depth(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return n


def _err(msg: str) -> None:
    print(f"rfcheck: error: {msg}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from .design import run_check
        from .loader import load_entries
        from .render import json_text, markdown, text
        _settle_heap()
        sizes = list(args.input_size or [])
        args.input_size = sizes[0] if sizes else None
        if args.plot:
            check_output_path("--plot", args.plot)
            import importlib.util
            if importlib.util.find_spec("matplotlib") is None:
                raise RFCheckError(f"--plot {args.plot}: matplotlib is not installed (pip install matplotlib)")
        from .config import for_command
        config = for_command(args.config, args.isolated, "rfcheck")
        command_line = from_namespace(args, [*RULES, *OPTIONS])
        fmt = resolve(config=config, command_line=command_line).format
        checks = []
        notes: list[str] = []
        for spec in args.models:
            for label, model, entry in load_entries(spec, all_models=args.all, notes=notes):
                _settle_heap()
                settings = resolve(config=config, design=entry, command_line=command_line)
                checks.append(run_check(model, settings, name=label, inputs=_inputs(sizes), claim_rf=args.claim_rf,
                                        claims=dict(args.claim) if args.claim else None))
        if args.debug:
            for n in notes:
                print(f"rfcheck: debug: {n}", file=sys.stderr)
        if args.plot:
            import matplotlib
            matplotlib.use("Agg")  # a file from the command line: no display needed
            from .plot import plot
            for i, c in enumerate(checks):
                where = args.plot if len(checks) == 1 else _numbered(args.plot, i)
                try:
                    plot(c.report, where)
                except OSError as e:
                    raise RFCheckError(f"--plot {where}: cannot be written: {e.strerror or e}") from None
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
    if fmt == "json":
        out = json_text(checks)
    elif fmt == "markdown":
        out = "\n".join(markdown(c, args.depth, args.verbose) for c in checks)
        if len(checks) > 1:
            out += f"\n**{_counts(checks)}**\n"
    elif len(checks) > 1:
        out = "\n\n".join(f"== {c.report.model} ==\n{text(c, args.depth, args.verbose)}" for c in checks)
        out += f"\n\n{_counts(checks)}"
    else:
        out = "\n\n".join(text(c, args.depth, args.verbose) for c in checks)
    if args.explain:
        out = _explained(out, checks, fmt)
    try:
        print(out)
        sys.stdout.flush()
    except BrokenPipeError:  # `rfcheck ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_FAIL if any(not c.passed for c in checks) else EXIT_OK


def _settle_heap() -> None:
    """Move what is alive now (torch, torchvision, the model) out of the garbage collector's
    reach: one full collection over torch's ~330k objects costs ~0.15 s, and a short-lived
    command would pay it at a random point of the build or the advice."""
    import gc
    gc.freeze()


def _counts(checks: list) -> str:
    """The last line of a multi-model report: ``5 models: 4 passed, 1 failed``."""
    failed = sum(1 for c in checks if not c.passed)
    return f"{len(checks)} models: {len(checks) - failed} passed, {failed} failed"


def _explained(out: str, checks: list, fmt: str) -> str:
    """The report with each model's derivation after it (in JSON: an "explain" list of lines)."""
    if fmt == "json":
        import json

        from .report import number
        docs = []
        for c in checks:
            d = c.to_dict()
            d["explain"] = str(c.explain()).splitlines()
            docs.append(d)
        return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, default=number)
    parts = [str(c.explain()) for c in checks]
    if fmt == "markdown":
        return out + "\n" + "\n".join(f"```\n{p}\n```\n" for p in parts)
    return out + "\n\n" + "\n\n".join(parts)


def _inputs(sizes: list[tuple[int, ...]]) -> Any:
    """One meta tensor per forward argument when --input-size is repeated, else None."""
    if len(sizes) < 2:
        return None
    import torch
    return [torch.empty((1, *s), device="meta") for s in sizes]


def _numbered(path: str, i: int) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{i + 1}{p.suffix}"))


if __name__ == "__main__":
    sys.exit(main())
