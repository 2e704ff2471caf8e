"""examples/rfcheck_in_a_notebook.ipynb, run by a real Jupyter kernel from its own folder (as
Jupyter does: relative paths are the notebook's), with assertions on what its cells show; and
the committed file carries no outputs.

The kernel is ipykernel's ``python3`` for this interpreter (jupyter_client starts it with
``sys.executable``); a probe cell, added to the in-memory copy only, checks that it really is
this Python, and ``PYTHONPATH`` points it at this checkout's rfcheck and training."""
from __future__ import annotations

import ast
import json
import os
import re
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "rfcheck_in_a_notebook.ipynb"
HAVE_DATA = (ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz").exists()


def test_committed_notebook_has_no_outputs():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for c in code:
        assert c.outputs == [], f"cell {c.id} has outputs in the committed file"
        assert c.execution_count is None, f"cell {c.id} has an execution count in the committed file"
    assert nb.metadata.kernelspec.name == "python3"


class _RulesTable(HTMLParser):
    """(rule, PASS|FAIL) per row of the HTML report's rules table."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._in, self._row, self._cell = False, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._in = ("class", "rules") in attrs
        elif self._in and tag == "tr":
            self._row = []
        elif self._in and tag == "td" and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._in = False
        elif self._in and tag == "td" and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif self._in and tag == "tr" and self._row:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def rules_of(html: str) -> dict[str, str]:
    p = _RulesTable()
    p.feed(html)
    return {row[0]: row[1] for row in p.rows if len(row) >= 2}


def _text(cell) -> str:
    """Everything a cell printed or showed as text."""
    out = []
    for o in cell.outputs:
        if o.output_type == "stream":
            out.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            out.append(o.data.get("text/plain", ""))
        elif o.output_type == "error":
            out.append("\n".join(o.traceback))
    return "".join(out)


def _data(cell, mime: str) -> list[str]:
    return [o.data[mime] for o in cell.outputs if o.output_type in ("execute_result", "display_data")
            and mime in o.data]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    probe = nbformat.v4.new_code_cell("import sys, os, rfcheck\nprint(repr(sys.prefix)); print(repr(os.getcwd())); "
                                      "print(repr(os.path.dirname(rfcheck.__file__)))", id="test-probe")
    nb.cells.insert(0, probe)
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                         resources={"metadata": {"path": str(NOTEBOOK.parent)}})
        start = time.monotonic()
        client.execute()
        seconds = time.monotonic() - start
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    cells = {c.id: c for c in nb.cells if c.cell_type == "code"}
    return cells, seconds


def test_kernel_is_this_python_in_the_notebooks_folder(executed):
    cells, seconds = executed
    prefix, cwd, package = [ast.literal_eval(line) for line in _text(cells["test-probe"]).splitlines()]
    assert prefix == sys.prefix, f"the python3 kernel runs {prefix}, not this interpreter ({sys.prefix})"
    assert Path(cwd).resolve() == NOTEBOOK.parent.resolve()
    assert Path(package).resolve() == (ROOT / "rfcheck").resolve()
    assert seconds < 60, f"the notebook took {seconds:.0f} s"


def test_first_summary_fails_and_names_the_rules(executed):
    cells, _ = executed
    html = _data(cells["summary-fail"], "text/html")
    assert html, "summary() showed no HTML report"
    rules = rules_of(html[0])
    assert rules["min_rf"] == "FAIL" and rules["min_dilated"] == "FAIL"
    assert rules["max_params"] == rules["require_gap"] == rules["min_dws"] == "PASS"
    assert "model RF 45x45" in html[0] and "fix: set dilation 2 on c3.0.0" in html[0]
    assert 'src="data:image/png;base64,' in html[0]   # the RF plot inline
    text = _text(cells["read"])
    assert text.startswith("min_rf: model RF 45x45") and "min_dilated: 0 dilated conv(s) < 1" in text
    assert "    fix: set dilation 2 on c3.0.0 (3x3 conv) with padding (2, 2)" in text


def test_the_suggestion_applied_passes(executed):
    cells, _ = executed
    cell = cells["summary-pass"]
    text = _text(cell)
    assert "applying: set dilation 2 on c3.0.0" in text and "dilation=(2, 2)" in text
    assert "passed: True" in text
    html = _data(cell, "text/html")[0]
    rules = rules_of(html)
    assert rules and set(rules.values()) == {"PASS"}, rules
    assert "model RF: 53x53" in html


def test_claim_check_names_the_mistakes(executed):
    text = _text(executed[0]["claim"])
    assert "passed: False" in text
    assert "[WRONG] model RF (at the input of the global pool o.0): claimed 81, true 53" in text
    assert "(a) the global pool's window counted in the final RF" in text
    assert re.search(r"\[WRONG\] c3 \S*: claimed 45, true 37", text)
    assert "(b) the jump multiplied by the dilation at a stride-1 dilated conv" in text


def test_explain_shows_the_recurrence(executed):
    text = _text(executed[0]["explain"])
    assert re.search(r"c3\.0\.0 +3x3 conv d2 \(k_eff 5\) +r = 13 \+ \(5-1\)\*4 = 29 +j = 4\*1 = 4", text)
    assert "model RF: 53 (jump 4) at the input of the global pool o.0" in text
    assert "counting the global pool's window as well gives 81 (53 + (8-1)*4 = 81)" in text


def test_show_rf_draws_pictures(executed):
    cells, _ = executed
    for name in ("show-rf", "show-rf-corner"):
        assert _data(cells[name], "image/png"), f"{name} showed no picture: {_text(cells[name])[:200]}"


def test_effective_rf_cell(executed):
    cell = executed[0]["erf"]
    text = _text(cell)
    if not HAVE_DATA:
        assert text.startswith("skipped: the CIFAR-10 data is not here")
        return
    assert "over 50 test images; theoretical RF 67x67" in text, text
    sizes = {k: tuple(map(int, v)) for k, *v in re.findall(r"(50|90|99)% of the gradient mass: (\d+)x(\d+) px", text)}
    assert set(sizes) == {"50", "90", "99"}
    assert sizes["50"] <= sizes["90"] <= sizes["99"] and sizes["50"][0] < 67
    assert _data(cell, "image/png"), "the heatmap was not shown"


def test_no_cell_failed(executed):
    cells, _ = executed
    errors = [name for name, c in cells.items() if any(o.output_type == "error" for o in c.outputs)]
    assert not errors
    # the run changed nothing on disk: the committed file keeps no outputs
    assert all(not c.get("outputs") for c in json.loads(NOTEBOOK.read_text())["cells"])
