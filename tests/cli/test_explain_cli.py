"""``rfcheck MODEL --explain``, ``--claim-rf N`` and ``--claim LAYER=N``.

The fixture is tests/cli/cli_models/tiny.py on 3x32x32, by hand: c1 3x3 p1: r = 1 + (3-1)*1 = 3,
j 1, n 32; pool 2: r = 3 + (2-1)*1 = 4, j = 1*2 = 2, n = (32 - 2)/2 + 1 = 16; c2 3x3 p1:
r = 4 + (3-1)*2 = 8, j 2, n 16.  No global pool: the model RF is c2's, 8.  The jump left at 1
after the pool (mistake (d)) gives 4 + 2*1 = 6."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.common import ERR, run

MODELS = Path(__file__).resolve().parent / "cli_models"
TINY = str(MODELS / "tiny.py")


@pytest.fixture(autouse=True)
def _outside_the_repo(tmp_path_factory, monkeypatch, restore_import_state):
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))





def flat(out: str) -> list[str]:
    return [" ".join(line.split()) for line in out.splitlines()]


def test_explain_prints_the_derivation_after_the_report(capsys):
    rc, out, err = run(capsys, TINY, "--explain")
    assert rc == 0, err
    lines = flat(out)
    assert "c1 3x3 conv r = 1 + (3-1)*1 = 3 j = 1*1 = 1 n = (32 + 2*1 - 3)/1 + 1 = 32" in lines
    assert "pool 2x2 max pool s2 r = 3 + (2-1)*1 = 4 j = 1*2 = 2 n = (32 + 2*0 - 2)/2 + 1 = 16" in lines
    assert "c2 3x3 conv r = 4 + (3-1)*2 = 8 j = 2*1 = 2 n = (16 + 2*1 - 3)/1 + 1 = 16" in lines
    assert lines[-1] == "model RF: 8 (jump 2) at c2"
    assert out.index("explain:") > out.index("model RF: 8x8")   # after the report


def test_explain_in_json_and_markdown(capsys):
    rc, out, _ = run(capsys, TINY, "--explain", "--format", "json")
    doc = json.loads(out)
    assert rc == 0 and any(l.startswith("c2 ") for l in doc["explain"]) and "claims" not in doc
    rc, out, _ = run(capsys, TINY, "--explain", "--format", "markdown")
    assert rc == 0 and "```\nexplain:" in out


def test_a_wrong_claim_is_diagnosed_and_exits_1(capsys):
    rc, out, err = run(capsys, TINY, "--claim-rf", "6")
    assert rc == 1, err
    assert "[WRONG] model RF (at c2): claimed 6, true 8" in out
    assert "reproduced by: (d) the jump not updated after a pool or strided conv at pool: gives 6" in out


def test_a_right_claim_exits_0(capsys):
    rc, out, _ = run(capsys, TINY, "--claim-rf", "8", "--claim", "pool=4", "--claim", "c1=3")
    assert rc == 0
    assert "claim: 3 right, 0 wrong" in out


def test_per_layer_claims_in_json_name_the_first_diverging_layer(capsys):
    rc, out, _ = run(capsys, TINY, "--claim", "c2=6", "--claim", "pool=5", "--format", "json")
    doc = json.loads(out)
    assert rc == 1 and doc["passed"] is False and doc["schema_version"] == 2
    claims = doc["claims"]
    assert claims["first_diverging"] == "pool"
    assert [c["at"] for c in claims["items"]] == ["pool", "c2"]
    assert claims["items"][1]["mistakes"][0]["mistakes"] == ["d"]


@pytest.mark.parametrize("args, option", [
    (["--claim-rf", "abc"], "--claim-rf"),
    (["--claim-rf", "0"], "--claim-rf"),
    (["--claim", "c2"], "--claim"),
    (["--claim", "c2=x"], "--claim"),
])
def test_bad_claim_values_are_one_usage_error_naming_the_option(capsys, args, option):
    rc, out, err = run(capsys, TINY, *args)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage:") and sum(l.startswith(ERR) for l in lines) == 1
    assert f"argument {option}:" in lines[-1] and "Traceback" not in err


def test_an_unknown_claim_layer_is_one_error_line(capsys):
    rc, out, err = run(capsys, TINY, "--claim", "c9=4")
    assert rc == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"{ERR} --claim c9=4: no such layer or module")


def test_a_claim_with_the_wrong_number_of_axes_is_one_error_line(capsys):
    rc, out, err = run(capsys, TINY, "--claim-rf", "8x8x8")
    assert rc == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert "3 values for 2 spatial axes" in line
