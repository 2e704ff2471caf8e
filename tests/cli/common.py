"""What the CLI tests share: running ``rfcheck`` in-process and checking that an error is one
line on stderr, without a traceback."""
from __future__ import annotations

from rfcheck.cli import main

ERR = "rfcheck: error:"


def run(capsys, *args: str) -> tuple[int, str, str]:
    """``rfcheck ARGS`` in-process: (exit code, stdout, stderr).  argparse exits (usage errors,
    --help, --version) raise SystemExit; their code is returned like main()'s."""
    try:
        rc = main(list(args))
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    out, err = capsys.readouterr()
    return rc, out, err


def error_line(err: str, prefix: str = ERR, usage: bool = False) -> str:
    """Check stderr is one ``PROG: error:`` line, no traceback and no "internal error", and
    return it.  argparse usage errors (``usage=True``) print the usage block first, as every
    argparse program does; the error is still one line, the last one."""
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert lines, "nothing on stderr"
    assert lines[-1].startswith(prefix), err
    assert sum(l.startswith(prefix) for l in lines) == 1, err
    if usage:
        assert lines[0].startswith("usage: " + prefix.split(":")[0]), err
    else:
        assert len(lines) == 1, err
    return lines[-1]


def assert_error(capsys, args, *needles: str, usage: bool = False) -> str:
    """``rfcheck ARGS`` exits 2 with nothing on stdout and one error line holding ``needles``."""
    rc, out, err = run(capsys, *args)
    assert rc == 2, (rc, out, err)
    assert out == ""
    line = error_line(err, usage=usage)
    for n in needles:
        assert n in line, f"{n!r} not in {line!r}"
    return line
