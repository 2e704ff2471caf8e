"""The ``rfcheck`` command's table views (compact by default, ``--verbose``, ``--depth N``) and
several models in one call (a header per model, a last line with the counts).

Models written here, on 3x8x8:

- ``block.py:Block``: c1 = conv 3x3 p1 (3->4, no bias) + BatchNorm2d(4) + ReLU, c2 = conv 3x3
  s2 p1 (4->4, no bias) + ReLU.  Params c1: 3*4*9 + 2*4 = 116, c2: 4*4*9 = 144 (260).  RF 3,
  then 3 + 2*1 = 5; jump 1, then 2; size 8, then (8+2-3)//2 + 1 = 4.
- ``other.py:Other``: one conv 3x3 (3->2, bias): 3*2*9 + 2 = 56 params, RF 3.
"""
from __future__ import annotations

import json
import textwrap

import pytest

from rfcheck.cli import main

BLOCK = """
import torch.nn as nn

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv2d(4, 4, 3, stride=2, padding=1, bias=False), nn.ReLU())

    def forward(self, x):
        return self.c2(self.c1(x))
"""

OTHER = """
import torch.nn as nn

class Other(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        return self.c(x)
"""


@pytest.fixture(autouse=True)
def _models(tmp_path, monkeypatch, restore_import_state):
    (tmp_path / "block.py").write_text(textwrap.dedent(BLOCK))
    (tmp_path / "other.py").write_text(textwrap.dedent(OTHER))
    monkeypatch.chdir(tmp_path)


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        rc = main([*args, "--isolated", "--input-size", "3,8,8"])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def rows(out: str) -> dict[str, list[str]]:
    """The layer table's rows by name (split on runs of 2+ spaces)."""
    import re
    lines = out.split("\n\n")[0].splitlines()[2:]
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in lines)}


def test_default_table_is_compact(capsys):
    rc, out, err = run(capsys, "block.py")
    assert rc == 0, err
    table = rows(out)
    assert list(table) == ["c1.0", "c2.0"]
    assert table["c1.0"][:7] == ["Conv2d+BN+ReLU", "4x8x8", "3x3 p1x1", "3x3", "3x3", "1x1", "0,0"]
    assert table["c1.0"][7] == "116"                                       # 108 conv + 8 BN
    assert table["c2.0"][:6] == ["Conv2d+ReLU", "4x4x4", "3x3 s2x2 p1x1", "5x5", "5x5", "2x2"]
    assert table["c2.0"][7] == "144"
    assert "BatchNorm2d" not in out.split("\n\n")[0]


def test_verbose_lists_every_layer(capsys):
    rc, out, _ = run(capsys, "block.py", "--verbose")
    assert rc == 0
    assert list(rows(out)) == ["c1.0", "c1.1", "c1.2", "c2.0", "c2.1"]
    assert rows(out)["c1.1"][:2] == ["BatchNorm2d", "4x8x8"]


def test_depth_1_one_row_per_block(capsys):
    rc, out, _ = run(capsys, "block.py", "--depth", "1")
    assert rc == 0
    table = rows(out)
    assert out.startswith("module ")
    assert list(table) == ["c1", "c2"]
    assert table["c1"][:2] == ["Sequential", "4x8x8"] and "116" in table["c1"]
    assert table["c2"][:2] == ["Sequential", "4x4x4"] and "144" in table["c2"] and "5x5" in table["c2"]


@pytest.mark.parametrize("args, needle", [
    (("--depth", "0"), "--depth: expected a whole number >= 1"),
    (("--depth", "x"), "--depth: expected a whole number >= 1"),
    (("--depth", "1", "--verbose"), "not allowed with argument"),
])
def test_bad_views_are_usage_errors(capsys, args, needle):
    rc, out, err = run(capsys, "block.py", *args)
    assert rc == 2 and out == ""
    assert err.strip().splitlines()[-1].startswith("rfcheck: error:") and needle in err


def test_json_keeps_every_layer(capsys):
    rc, out, _ = run(capsys, "block.py", "--format", "json")
    assert rc == 0
    assert [l["name"] for l in json.loads(out)["layers"]] == ["c1.0", "c1.1", "c1.2", "c2.0", "c2.1"]


def test_several_models_get_a_header_each_and_a_counts_line(capsys):
    # --max-params 100: Block (260) fails, Other (56) passes
    rc, out, _ = run(capsys, "block.py", "other.py", "--max-params", "100", "--no-advice")
    assert rc == 1
    lines = out.rstrip("\n").splitlines()
    assert lines[0] == "== block.py:Block =="
    assert "== other.py:Other ==" in lines
    assert lines[-1] == "2 models: 1 passed, 1 failed"
    block_part, other_part = out.split("== other.py:Other ==")
    assert "[FAIL] max_params: parameters 260 > 100" in block_part
    assert "[PASS] max_params: parameters 56 <= 100" in other_part


def test_a_folder_of_models(capsys, tmp_path):
    rc, out, _ = run(capsys, str(tmp_path))
    assert rc == 0
    assert sum(line.startswith("== ") and line.endswith(" ==") for line in out.splitlines()) == 2
    assert out.rstrip("\n").splitlines()[-1] == "2 models: 2 passed, 0 failed"


def test_one_model_has_no_header_or_footer(capsys):
    _, out, _ = run(capsys, "block.py")
    assert not out.startswith("==") and "models:" not in out


def test_several_models_in_json_stay_a_list(capsys):
    rc, out, _ = run(capsys, "block.py", "other.py", "--format", "json")
    docs = json.loads(out)                      # no footer: the output is one JSON document
    assert rc == 0 and [d["model"] for d in docs] == ["block.py:Block", "other.py:Other"]


def test_several_models_in_markdown(capsys):
    rc, out, _ = run(capsys, "block.py", "other.py", "--format", "markdown", "--max-params", "100", "--no-advice")
    assert rc == 1
    assert "## rfcheck: block.py:Block" in out and "## rfcheck: other.py:Other" in out
    assert "==" not in out
    assert out.rstrip("\n").splitlines()[-1] == "**2 models: 1 passed, 1 failed**"
