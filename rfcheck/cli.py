"""The ``rfcheck`` command (also ``python -m rfcheck``).

Exit codes: 0 all checks pass, 1 a check fails, 2 the model could not be loaded or analysed."""
from __future__ import annotations

import argparse
import re
import sys
import traceback
from typing import Optional, Sequence

from . import __version__
from .analysis import analyze
from .checks import CHECKS, run_checks
from .errors import RFCheckError
from .loader import load
from .render import json_text, text

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rfcheck",
        description="Receptive field, jump, output size and parameters of every layer of a PyTorch model, "
                    "computed without running it, and design checks.",
        epilog="exit codes: 0 all checks pass, 1 a check fails, 2 the model could not be loaded or analysed")
    p.add_argument("model", help="PATH.py, PATH.py:NAME or package.module:NAME (a class or a factory "
                                 "returning a module, built with no arguments)")
    p.add_argument("--input-size", type=parse_size, default=(3, 32, 32), metavar="C,H,W",
                   help="one sample's size, channels first, no batch dim (default 3,32,32; 1D: 2,128; "
                        "3D: 2,8,32,32)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument("--all", action="store_true", help="analyse every model class defined in PATH.py")
    p.add_argument("--rf-at", metavar="LAYER", help="report the model RF at the output of this layer or "
                                                    "module instead of at the input of the global pool")
    group = p.add_argument_group("checks")
    for c in CHECKS.values():
        group.add_argument(c.option, dest=c.name, type=_typed(c.parse), metavar=c.metavar, help=c.help)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"rfcheck {__version__}")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    limits = {name: getattr(args, name) for name in CHECKS}
    try:
        models = load(args.model, all_models=args.all)
        reports = [analyze(m, input_size=args.input_size, rf_at=args.rf_at, name=label) for label, m in models]
    except RFCheckError as e:
        if args.debug:
            traceback.print_exc()
        print(f"rfcheck: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # a bug of ours: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"rfcheck: internal error: {type(e).__name__}: {e} (run with --debug and report it)",
              file=sys.stderr)
        return EXIT_ERROR
    results = [run_checks(r, limits) for r in reports]
    if args.format == "json":
        print(json_text(reports, results))
    else:
        print("\n\n".join(text(r, res) for r, res in zip(reports, results)))
    return EXIT_FAIL if any(not c.passed for res in results for c in res) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
