"""What a user waits for: the wall time and peak memory of rfcheck's command line, as overhead over
the floor every use of a torchvision model pays, ``python -c "import torch, torchvision"``.

    python -m benchmarks.overhead                                   # every torchvision classifier
    python -m benchmarks.overhead --models resnet18,alexnet --rounds 1 --out /tmp/overhead.md

Each command runs as a fresh child of this interpreter (the ``rfcheck`` console script next to it,
run by it), from the repository root, its output to files:

* floor: ``python -c "import gc, torch, torchvision; gc.freeze()"`` (see FLOOR), and the plain import
  beside it;
* (a) ``rfcheck torchvision.models:NAME --input-size 3,224,224 --isolated`` for every torchvision
  classification builder (``torchvision.models.list_models(module=torchvision.models)``);
* (b) the same with the course brief's rules, which every one of them fails, so the advice runs;
* (c) ``rfcheck models/`` (the project's designs and its setup.cfg rules).

Wall time runs from the spawn to the reaping; peak memory is the child's ``ru_maxrss``
(``os.wait4``).  Every command gets ``--rounds`` tries, the rounds going over all the commands in
turn so that a period of load from other work hits them alike, and keeps its fastest wall time and
its smallest peak.  Overhead = command - floor.  Exit status 0 (rules hold) and 1 (a rule fails:
expected in (b)) are results; anything else, or a traceback on stderr (an import error exits 1),
is an error and is reported in the table instead of the numbers.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
#: the floor freezes its heap as rfcheck's command line does (rfcheck.cli._settle_heap), so that its
#: exit, too, skips the final garbage collection over torch's objects; the plain import is measured
#: beside it (it exits ~0.5 s slower: against it every command would come in under the floor)
FLOOR = ["-c", "import gc, torch, torchvision; gc.freeze()"]
FLOOR_PLAIN = ["-c", "import torch, torchvision"]
PLAIN = ["--input-size", "3,224,224", "--isolated"]
BRIEF = ["--min-rf", "53", "--max-params", "99999", "--require-gap", "--min-dws", "2", "--min-dilated", "1"]
# kind -> (max seconds over the floor, max MB over the floor or None)
TARGETS = {"plain": (0.3, 100.0), "advice": (1.0, None), "project": (0.5, None)}


@dataclass
class Case:
    """One command line and the best of its rounds."""
    kind: str                 # "floor", "plain", "advice" or "project"
    model: str                # torchvision builder name ("" for the floor and the project)
    args: list[str]           # after the interpreter
    wall_s: Optional[float] = None
    rss_mb: Optional[float] = None
    exit: Optional[int] = None
    error: Optional[str] = None

    def shown(self) -> str:
        """The command as a user types it."""
        if self.kind in ("floor", "floor_plain"):
            return f'python -c "{self.args[1]}"'
        return " ".join(["rfcheck"] + self.args[1:])


#: the children may cache bytecode, as an installed package does (this VM's shell sets
#: PYTHONDONTWRITEBYTECODE, which would make every run recompile rfcheck's ~40 modules: +0.03 s)
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(args: list[str], timeout: float) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MB, exit status, stderr) of ``sys.executable *args`` run from the repo root."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable] + args, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=CHILD_ENV)
        killer = threading.Timer(timeout, p.kill)
        killer.start()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        killer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)   # reaped here: Popen must not wait again
        err.seek(0)
        return wall, usage.ru_maxrss / 1024, p.returncode, err.read().decode(errors="replace")


def error_of(code: int, stderr: str, wall: float, timeout: float) -> Optional[str]:
    """None when the run is a result (exit 0 or 1, no traceback), else what went wrong."""
    if code in (0, 1) and "Traceback (most recent call last)" not in stderr:
        return None
    if code == -9 and wall >= timeout:
        return f"killed after {timeout:g} s"
    last = ([line.strip() for line in stderr.splitlines() if line.strip()] or ["(no message)"])[-1]
    return f"exit {code}: {last[:120]}"


def measure(cases: list[Case], rounds: int, timeout: float) -> None:
    """Every case once per round, in turn; a case that errs is not run again (the floor must not err)."""
    for r in range(1, rounds + 1):
        for c in cases:
            if c.error:
                continue
            wall, rss, code, stderr = run_once(c.args, timeout)
            c.exit, c.error = code, error_of(code, stderr, wall, timeout)
            if c.kind.startswith("floor") and c.error:
                raise SystemExit(f"the floor, {c.shown()}, failed: {c.error}")
            if not c.error:
                c.wall_s = min(wall, c.wall_s or wall)
                c.rss_mb = min(rss, c.rss_mb or rss)
            print(f"[overhead] round {r}/{rounds} {c.kind} {c.model or c.shown()}: {c.error or f'{wall:.2f} s, {rss:.0f} MB'}",
                  file=sys.stderr, flush=True)


def verdict(c: Case, floor: Case) -> Optional[bool]:
    """Whether the case meets its targets (None: no number to judge)."""
    if c.error or floor.error or c.wall_s is None:
        return None
    max_s, max_mb = TARGETS[c.kind]
    return c.wall_s - floor.wall_s <= max_s and (max_mb is None or c.rss_mb - floor.rss_mb <= max_mb)


def _cells(c: Case, floor: Case) -> list[str]:
    if c.error:
        return [f"error: {c.error}".replace("|", "\\|"), "-", "-", "error"]
    ok = verdict(c, floor)
    return [f"{c.wall_s - floor.wall_s:+.2f} s ({c.wall_s:.2f} s)", f"{c.rss_mb - floor.rss_mb:+.0f} MB ({c.rss_mb:.0f} MB)",
            str(c.exit), "pass" if ok else "FAIL"]


def _target(kind: str) -> str:
    max_s, max_mb = TARGETS[kind]
    return f"<= +{max_s:g} s" + (f" and <= +{max_mb:g} MB" if max_mb is not None else "") + " over the floor"


def _summary(kind: str, cases: list[Case], floor: Case) -> str:
    done = [c for c in cases if not c.error]
    text = f"{sum(bool(verdict(c, floor)) for c in cases)} of {len(cases)} within {_target(kind)}"
    if done:
        over = [c.wall_s - floor.wall_s for c in done]
        worst = max(done, key=lambda c: c.wall_s)
        mem = [c.rss_mb - floor.rss_mb for c in done]
        text += (f"; time over the floor: median {statistics.median(over):+.2f} s, max {max(over):+.2f} s "
                 f"({worst.model or worst.shown()}); memory: median {statistics.median(mem):+.0f} MB, max "
                 f"{max(mem):+.0f} MB")
    errors = [c for c in cases if c.error]
    return text + (f"; {len(errors)} error(s): " + ", ".join(c.model or c.shown() for c in errors) if errors else "")


def _machine() -> str:
    try:
        cpu = re.search(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1)
    except (OSError, AttributeError):
        cpu = platform.processor() or "?"
    return f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}"


def _versions() -> str:
    import torch
    import torchvision

    import rfcheck
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "rfcheck"], cwd=ROOT, capture_output=True, text=True).stdout
    return (f"Python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
            f"rfcheck {rfcheck.__version__} at {commit.strip() or '?'}" + (" (+ uncommitted changes)" if dirty else ""))


def report(cases: list[Case], floor: Case, rounds: int, command: str, started: datetime.datetime,
           floor_plain: Optional[Case] = None) -> str:
    by = {k: [c for c in cases if c.kind == k] for k in TARGETS}
    plain, advice = by["plain"], {c.model: c for c in by["advice"]}
    lines = [
        "# rfcheck's command line: overhead over importing torch and torchvision", "",
        f"- **Command** (repository root, venv active): `{command}`",
        f"- **Date**: {started:%Y-%m-%d %H:%M} UTC",
        f"- **Machine**: {_machine()}",
        f"- **Software**: {_versions()}",
        f"- **Floor**: `{floor.shown()}`: " + (f"error: {floor.error}" if floor.error else
                                               f"{floor.wall_s:.2f} s, {floor.rss_mb:.0f} MB peak RSS")
        + ("" if floor_plain is None or floor_plain.wall_s is None else
           f"; without the freeze (`{floor_plain.shown()}`) {floor_plain.wall_s:.2f} s, {floor_plain.rss_mb:.0f} MB: "
           "its exit runs a full garbage collection over torch's objects, which rfcheck's command line, having "
           "frozen its heap, skips"),
        f"- **Method**: each command a fresh child process of the same interpreter, from the repository root; wall "
        f"time from spawn to reaping, peak RSS = the child's `ru_maxrss` (`os.wait4`); fastest of {rounds} "
        "round(s) (smallest peak), the rounds going over every command in turn, after one untimed run of the "
        "floor and of the first model's commands; bytecode caching on (PYTHONDONTWRITEBYTECODE unset for the "
        "children, as for an installed package); overhead = command - floor.",
        f"- **Commands**: (a) `rfcheck torchvision.models:NAME {' '.join(PLAIN)}`; "
        f"(b) the same + `{' '.join(BRIEF)}` (the course brief's rules: every torchvision classifier fails "
        "them, exit 1, so the advice runs); (c) `rfcheck models/` (setup.cfg's rules; it does not "
        "import torchvision, so it can come in under the floor).",
        f"- **Targets**: (a) {_target('plain')}; (b) {_target('advice')}; (c) {_target('project')}.", "",
        "## Summary", "",
        f"- (a) plain: {_summary('plain', plain, floor)}.",
        f"- (b) with advice: {_summary('advice', by['advice'], floor)}.",
        f"- (c) `rfcheck models/`: {_summary('project', by['project'], floor)}.", "",
        "## Per model", "",
        "Cells: overhead over the floor (the command's own figure).", "",
        "| model | (a) time | (a) memory | (a) exit | (a) | (b) time | (b) memory | (b) exit | (b) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in plain:
        lines.append(f"| {c.model} | " + " | ".join(_cells(c, floor) + _cells(advice[c.model], floor)) + " |")
    lines += ["", "## The project's designs", "", "| command | time | memory | exit | (c) |", "|---|---|---|---|---|"]
    lines += [f"| `{c.shown()}` | " + " | ".join(_cells(c, floor)) + " |" for c in by["project"]]
    return "\n".join(lines) + "\n"


def cases_for(models: list[str]) -> list[Case]:
    script = str(Path(sys.executable).parent / "rfcheck")
    out = [Case("floor", "", FLOOR), Case("floor_plain", "", FLOOR_PLAIN)]
    for name in models:
        base = [script, f"torchvision.models:{name}"] + PLAIN
        out += [Case("plain", name, base), Case("advice", name, base + BRIEF)]
    return out + [Case("project", "", [script, "models/"])]


def main(argv: list[str] | None = None) -> int:
    import torchvision
    every = torchvision.models.list_models(module=torchvision.models)
    ap = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=None, help=f"comma-separated subset of the {len(every)} torchvision "
                    "classification builders (default: all)")
    ap.add_argument("--rounds", type=int, default=3, help="tries per command, fastest kept (default 3)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per child before it is killed (default 300)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "overhead.md"), help="markdown report")
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",")] if args.models else every
    unknown = sorted(set(models) - set(every))
    if unknown:
        ap.error(f"not torchvision classification builders: {', '.join(unknown)}")
    if not (Path(sys.executable).parent / "rfcheck").exists():
        ap.error(f"no rfcheck console script next to {sys.executable}: pip install -e . first")
    started = datetime.datetime.now(datetime.timezone.utc)
    cases = cases_for(models)
    for c in cases[:4]:  # untimed: writes the bytecode caches, warms the page cache
        run_once(c.args, args.timeout)
    measure(cases, args.rounds, args.timeout)
    command = " ".join(["python -m benchmarks.overhead"] + (sys.argv[1:] if argv is None else argv))
    Path(args.out).write_text(report(cases[2:], cases[0], args.rounds, command, started, cases[1]))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
