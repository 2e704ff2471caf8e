"""The library's face: ``rfcheck.check`` and its one result, the settings seam, coded
diagnostics and ``--ignore``, per-analysis op rules, no import cycle, and no torch on import."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import rfcheck
from rfcheck.cli import main
from rfcheck.design import DesignCheck
from rfcheck.diagnostics import CODES, markdown_table
from rfcheck.options import DEFAULT_INPUT_SIZE, SettingsError, resolve
from rfcheck.registry import Entry
from rfcheck.render import markdown, text
from tests.models import Flip

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rfcheck"


class Tiny(nn.Module):
    """input 1x4x4.  conv 3x3 p1: RF 3, jump 1, start 0 (pad 1 keeps 4x4); params 2*1*9 + 2 = 20,
    MACs 2*4*4 outputs x 9 taps = 288.  GAP over 4x4: the window adds (4 - 1)*1, RF 6, centred
    at (0 + 3)/2 = 1.5, jump 4 (its window steps by the map size).  Linear 2 -> 3: 9 params, 6 MACs.  ``spare`` (Linear 1 -> 1, 2 params) is
    never used: counted in the total (20 + 9 + 2 = 31) and warned about as RF301."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 3)
        self.spare = nn.Linear(1, 1)

    def forward(self, x):
        return self.fc(torch.flatten(self.gap(torch.relu(self.conv(x))), 1))


def test_check_returns_one_result_with_every_view():
    c = rfcheck.check(Tiny(), (1, 4, 4), min_rf=5, require_gap=True, advice=False)
    assert isinstance(c, DesignCheck) and not c.passed
    assert [r.rule for r in c.results] == ["min_rf", "require_gap"]
    assert [r.rule for r in c.failed] == ["min_rf"] and c.result("require_gap").passed
    assert c.report.rf.size == (3, 3) and c.report.rf.with_global == (6, 6)
    assert str(c) == text(c) and "[FAIL] min_rf: model RF 3x3" in str(c)
    assert c.markdown() == markdown(c) and "| `min_rf` | ❌ FAIL |" in c.markdown()
    assert [w.code for w in c.warnings] == ["RF301"] and "RF301: 2 parameter tensor(s)" in str(c)


def test_the_json_document_matches_the_golden_schema():
    """tests/golden/schema_v2.json holds the values derived in Tiny's docstring."""
    golden = json.loads((ROOT / "tests" / "golden" / "schema_v2.json").read_text())
    c = rfcheck.check(Tiny(), (1, 4, 4), min_rf=5, require_gap=True, advice=False)
    assert json.loads(json.dumps(c.to_dict())) == golden


def test_check_validates_its_keywords():
    with pytest.raises(TypeError, match="min_rff.*did you mean 'min_rf'"):
        rfcheck.check(Tiny(), (1, 4, 4), min_rff=3)
    with pytest.raises(ValueError, match="max_params = 'lots'"):
        rfcheck.check(Tiny(), (1, 4, 4), max_params="lots")


def test_suggestions_are_returned_not_written_into_the_results():
    from rfcheck.advice import suggest
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1))
    report = rfcheck.analyze(model, (3, 16, 16))
    before = json.dumps(report.to_dict())
    found = suggest(model, report, {"min_rf": 9})
    assert found["min_rf"] and all(s.rule == "min_rf" for s in found["min_rf"])
    assert json.dumps(report.to_dict()) == before
    c = rfcheck.check(model, (3, 16, 16), min_rf=9)
    assert c.advice("min_rf") == [s.text for s in found["min_rf"]]
    assert c.to_dict()["checks"][0]["advice"] == c.advice("min_rf")


def test_resolve_applies_one_precedence():
    entry = Entry("d", object, {"min_rf": 40, "max_params": 10}, (1, 28, 28))
    s = resolve(config={"min_rf": 30, "max_rf": 99, "input_size": "3,8,8"}, design=entry,
                command_line={"min_rf": 50}, marker={"max_params": 20}, call={"max_params": "1k"})
    assert s.rules == {"min_rf": 50, "max_rf": 99, "max_params": 1000}
    assert s.input_size == (1, 28, 28)  # the design's size beats the config file's
    assert resolve(config={"input_size": "3,8,8"}).input_size == (3, 8, 8)
    assert resolve().input_size == DEFAULT_INPUT_SIZE and resolve().advice is True
    with pytest.raises(SettingsError, match=r"@pytest.mark.rfcheck: unknown keyword 'format'"):
        resolve(marker={"format": "json"})
    with pytest.raises(SettingsError, match="call: ignore = 'RF999'"):
        resolve(call={"ignore": "RF999"})


# -- diagnostics --------------------------------------------------------------------------------------------
def test_every_code_is_in_the_readme():
    assert markdown_table() in (ROOT / "README.md").read_text()


@pytest.fixture
def tiny_file(tmp_path):
    p = tmp_path / "tiny.py"
    p.write_text(textwrap.dedent('''
        import torch, torch.nn as nn
        class Tiny(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(1, 2, 3, padding=1)
                self.fc = nn.Linear(2, 3)
                self.spare = nn.Linear(1, 1)
            def forward(self, x):
                return self.fc(self.conv(x).mean((2, 3)))
    '''))
    return str(p)


def test_ignore_silences_a_code_on_the_command_line(tiny_file, capsys):
    assert main([tiny_file, "--input-size", "1,4,4", "--isolated", "--format", "json"]) == 0
    assert [w["code"] for w in json.loads(capsys.readouterr().out)["warnings"]] == ["RF301"]
    assert main([tiny_file, "--input-size", "1,4,4", "--isolated", "--format", "json", "--ignore", "RF301"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []
    assert main([tiny_file, "--input-size", "1,4,4", "--isolated", "--ignore", "RF3"]) == 0
    assert "RF301" not in capsys.readouterr().out


def test_ignore_from_the_config_file(tiny_file, tmp_path, monkeypatch, capsys):
    (tmp_path / "setup.cfg").write_text("[rfcheck]\ninput_size = 1,4,4\nignore = RF301\n")
    monkeypatch.chdir(tmp_path)
    assert main([tiny_file, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def test_an_unknown_code_is_an_error_with_a_did_you_mean(tiny_file, capsys):
    with pytest.raises(SystemExit) as e:
        main([tiny_file, "--ignore", "RF3011"])
    assert e.value.code == 2
    assert "unknown diagnostic code 'RF3011' (did you mean 'RF301'?)" in capsys.readouterr().err


def test_codes_are_stable():
    # renumbering a code breaks every user's --ignore: these must never change meaning
    assert {c: CODES[c].name for c in ("RF101", "RF201", "RF206", "RF301")} == {
        "RF101": "unknown-op", "RF201": "misaligned-merge", "RF206": "unproductive", "RF301": "unused-params"}


# -- per-analysis op rules ----------------------------------------------------------------------------------
def test_op_rules_for_one_analysis_leave_the_global_table_alone():
    model = nn.Sequential(nn.Conv2d(1, 1, 3), Flip(3), nn.Conv2d(1, 1, 3))
    assert not rfcheck.analyze(model, (1, 9, 9)).exact  # torch.flip has no rule
    # flipping W keeps every unit's RF size and jump; a rule saying "pointwise" is right for sizes
    by_module = rfcheck.analyze(model, (1, 9, 9), rules={Flip: lambda module, call: call.merge()})
    by_name = rfcheck.analyze(model, (1, 9, 9), rules={"flip": lambda call: call.merge()})
    for r in (by_module, by_name):
        assert r.exact and r.rf.size == (5, 5) and not r.warnings  # 3 + 2*1
    assert not rfcheck.analyze(model, (1, 9, 9)).exact  # the global table is unchanged
    with pytest.raises(rfcheck.RFCheckError, match="expected a torch.nn.Module subclass or an op name"):
        rfcheck.analyze(model, (1, 9, 9), rules={3: lambda call: call.merge()})


# -- imports ------------------------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    """The rfcheck modules a module imports, anywhere in it (function-level imports too)."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1]  # the package a relative import starts from (an __init__'s own)
    out = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("rfcheck")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.startswith("rfcheck"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (imports for type hints only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _graph() -> dict[str, set[str]]:
    mods = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}
    return {m: {i for i in _imports(p) if i in mods and i != m} for m, p in mods.items()}


def test_rfcheck_has_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if n == "rfcheck" or (m.startswith(n + ".") and graph.get(n) and m in graph[n]):
                continue  # `from . import __version__` / a package and its own submodule
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_only_the_entry_points_import_the_cli():
    importers = {m for m, deps in _graph().items() if "rfcheck.cli" in deps}
    assert importers == {"rfcheck.__main__"}
    for p in (ROOT / "training").rglob("*.py"):
        assert "rfcheck.cli" not in _imports(p), p


def test_importing_rfcheck_and_its_plugin_loads_no_torch():
    code = ("import sys, rfcheck, rfcheck.pytest_plugin, rfcheck.testing, rfcheck.options, rfcheck.config\n"
            "from rfcheck import check, Report, Diagnostic\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
