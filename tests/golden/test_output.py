"""CLI golden output: the whole table and markdown views of a tiny model, written by hand.

tests/cli/cli_models/tiny.py on 3x8x12: conv 3x3 p1 (3->4), max pool 2, conv 3x3 p1 (4->6).
RF 3, 3+1*1 = 4, 4+2*2 = 8; jump 1, 2, 2; start 0, (0+1)/2 = 0.5, 0.5.  Params 3*4*9+4 = 112 and
4*6*9+6 = 222 (334).  MACs 4*8*12 outputs x 27 taps = 10,368 and 6*4*6 x 36 = 5,184 (15,552).
Advice for max_params 300: c2 as depthwise 4*9 = 36 + pointwise 4*6+6 = 30 -> 334-222+66 = 178;
c1 as 3*9 = 27 + 3*4+4 = 16 -> 334-112+43 = 265.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from rfcheck.cli import main

HERE = Path(__file__).resolve().parents[1] / "cli" / "cli_models"

TABLE = """\
layer    type       output    kernel    RF    RF min    jump    start    params    MACs    flags
-------  ---------  --------  --------  ----  --------  ------  -------  --------  ------  -------
c1       Conv2d     4x8x12    3x3 p1x1  3x3   3x3       1x1     0,0      112       10.4k
pool     MaxPool2d  4x4x6     2x2 s2x2  4x4   4x4       2x2     0.5,0.5
c2       Conv2d     6x4x6     3x3 p1x1  8x8   8x8       2x2     0.5,0.5  222       5.18k

model: tiny.py:Tiny   input: 3x8x12
parameters: 334 total, 334 trainable   MACs: 15,552
counts: depthwise 0, depthwise-separable 0, dilated 0, transposed 0, max-pool 1, gap 0, linear 0
model RF: 8x8 (jump 2x2) at c2; exact

blocks (at the end of each top-level module):
block    type       output    RF    jump    params
-------  ---------  --------  ----  ------  --------
c1       Conv2d     4x8x12    3x3   1x1     112
pool     MaxPool2d  4x4x6     4x4   2x2     0
c2       Conv2d     6x4x6     8x8   2x2     222

rules: 1 passed, 2 failed
  [PASS] min_rf: model RF 8x8 at c2 >= 8
  [FAIL] max_params: parameters 334 > 300; heaviest: c2 222, c1 112
         layers: c2, c1
         fix: make c2 (3x3 conv, 4->6) depthwise-separable: 3x3 depthwise (4 groups) + 1x1 pointwise: params 334 -> 178, model RF 8x8 (passes)
         fix: make c1 (3x3 conv, 3->4) depthwise-separable: 3x3 depthwise (3 groups) + 1x1 pointwise: params 334 -> 265, model RF 8x8 (passes)
  [FAIL] require_gap: no global average pooling feeds the classifier: no layer reduces the spatial map to a single position
"""

MARKDOWN_HEAD = """\
## rfcheck: tiny.py:Tiny (input 3x8x12)

**FAIL**: 1 of 2 rules hold

| rule | result | value | limit | details |
|---|---|---|---|---|
| `min_rf` | ✅ pass | 8x8 | 8 | model RF 8x8 at c2 >= 8 |
| `max_params` | ❌ FAIL | 334 | 300 | parameters 334 > 300; heaviest: c2 222, c1 112 |

**How to fix:**

- `max_params`: make c2 (3x3 conv, 4->6) depthwise-separable: 3x3 depthwise (4 groups) + 1x1 pointwise: params 334 -> 178, model RF 8x8 (passes)
- `max_params`: make c1 (3x3 conv, 3->4) depthwise-separable: 3x3 depthwise (3 groups) + 1x1 pointwise: params 334 -> 265, model RF 8x8 (passes)
"""

MARKDOWN_BLOCKS = """\
| block | output | RF | jump | params |
|---|---|---|---|---|
| c1 | 4x8x12 | 3x3 | 1x1 | 112 |
| pool | 4x4x6 | 4x4 | 2x2 | 0 |
| c2 | 6x4x6 | 8x8 | 2x2 | 222 |
"""


@pytest.fixture(autouse=True)
def _here(monkeypatch, restore_import_state):
    monkeypatch.chdir(HERE)


def test_table_golden(capsys):
    rc = main(["tiny.py", "--isolated", "--input-size", "3,8,12", "--min-rf", "8", "--max-params", "300",
               "--require-gap"])
    out = capsys.readouterr().out
    assert rc == 1
    assert out == TABLE


def test_markdown_golden(capsys):
    rc = main(["tiny.py", "--isolated", "--input-size", "3,8,12", "--min-rf", "8", "--max-params", "300",
               "--format", "markdown"])
    out = capsys.readouterr().out
    assert rc == 1
    assert out.startswith(MARKDOWN_HEAD)
    assert MARKDOWN_BLOCKS in out
    assert "| c2      | Conv2d    | 6x4x6    | 3x3 p1x1 | 8x8  | 8x8      | 2x2    | 0.5,0.5 | 222      | 5.18k  |" in out


def test_markdown_pass_for_the_bundled_net(capsys, monkeypatch):
    monkeypatch.chdir(HERE.parents[2])
    rc = main(["models/net.py", "--format", "markdown"])  # the brief from setup.cfg
    out = capsys.readouterr().out
    assert rc == 0 and "**PASS**: 6 of 6 rules hold" in out
    assert "| `min_rf` | ✅ pass | 67x67 | 53 |" in out


def test_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "rf.png"
    rc = main(["tiny.py", "--isolated", "--input-size", "3,8,12", "--plot", str(png)])
    assert rc == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
