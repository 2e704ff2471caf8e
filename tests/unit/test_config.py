"""Config files: defaults < nearest setup.cfg / tox.ini / pyproject.toml < command line."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rfcheck import config as cfgmod
from rfcheck.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "tests" / "cli" / "cli_models" / "tiny.py")
# tiny.py: conv 3x3 p1 (4 ch) -> max pool 2 -> conv 3x3 p1 (6 ch); on 3x8x12: RF 8, params 112 + 222 = 334


@pytest.fixture(autouse=True)
def _clean(restore_import_state):
    """See tests/conftest.py."""


def run(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def checks(out: str) -> dict:
    return {c["rule"]: c for c in json.loads(out)["checks"]}


def test_setup_cfg_rules_apply(tmp_path, monkeypatch, capsys):
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = x\n\n[rfcheck]\ninput_size = 3,8,12\nmax_params = 300\n"
                                        "min-rf = 8\n")
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, TINY, "--format", "json")
    c = checks(out)
    assert rc == 1 and err == ""
    assert c["max_params"]["value"] == 334 and c["max_params"]["limit"] == 300 and not c["max_params"]["passed"]
    assert c["min_rf"]["passed"] and json.loads(out)["input_size"] == [3, 8, 12]


def test_command_line_overrides_config(tmp_path, monkeypatch, capsys):
    (tmp_path / "setup.cfg").write_text("[rfcheck]\ninput_size = 3,8,12\nmax_params = 300\n")
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run(capsys, TINY, "--format", "json", "--max-params", "400")
    assert rc == 0 and checks(out)["max_params"]["limit"] == 400


def test_found_by_walking_up(tmp_path, monkeypatch, capsys):
    (tmp_path / "setup.cfg").write_text("[rfcheck]\ninput_size = 3,8,12\nmin_rf = 9\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    # a nearer setup.cfg without an [rfcheck] section does not stop the search
    (tmp_path / "a" / "setup.cfg").write_text("[metadata]\nname = y\n")
    monkeypatch.chdir(deep)
    rc, out, _ = run(capsys, TINY, "--format", "json")
    assert rc == 1 and checks(out)["min_rf"]["value"] == [8, 8]


def test_pyproject_tool_section(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.rfcheck]
        input_size = [3, 8, 12]
        max_params = "1k"
        require_gap = false
        forbid = ["Linear"]
        """))
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run(capsys, TINY, "--format", "json")
    c = checks(out)
    assert rc == 0 and c["max_params"]["limit"] == 1000 and c["forbid"]["passed"]
    assert "require_gap" not in c  # false: off


def test_switch_from_config_can_be_turned_off(tmp_path, monkeypatch, capsys):
    (tmp_path / "setup.cfg").write_text("[rfcheck]\ninput_size = 3,8,12\nrequire_gap = yes\n")
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run(capsys, TINY, "--format", "json")
    assert rc == 1 and not checks(out)["require_gap"]["passed"]
    rc, out, _ = run(capsys, TINY, "--format", "json", "--no-require-gap")
    assert rc == 0 and "require_gap" not in checks(out)


def test_unknown_key_is_warned_by_name(tmp_path, monkeypatch, capsys):
    (tmp_path / "setup.cfg").write_text("[rfcheck]\ninput_size = 3,8,12\nmin_rff = 60\n")
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, TINY)
    assert rc == 0
    assert "rfcheck: warning: RF001 setup.cfg [rfcheck]: unknown key 'min_rff'" in err and "did you mean 'min_rf'" in err


@pytest.mark.parametrize("line, needle", [
    ("max_params = lots", "max_params = 'lots'"),
    ("require_gap = maybe", "expected true or false"),
    ("input_size = 3,x", "input_size = '3,x'"),
    ("format = html", "expected table, json or markdown"),
    ("input_fraction = -1", "> 0"),
])
def test_bad_value_names_key_and_value(tmp_path, monkeypatch, capsys, line, needle):
    (tmp_path / "setup.cfg").write_text(f"[rfcheck]\n{line}\n")
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, TINY)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rfcheck: error: setup.cfg [rfcheck]: ") and needle in lines[0]


def test_config_option_and_isolated(tmp_path, monkeypatch, capsys):
    other = tmp_path / "rules.cfg"
    other.write_text("[rfcheck]\ninput_size = 3,8,12\nmin_rf = 100\n")
    (tmp_path / "setup.cfg").write_text("[rfcheck]\ninput_size = 3,8,12\nmin_rf = 2\n")
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run(capsys, TINY, "--format", "json", "--config", str(other))
    assert rc == 1 and checks(out)["min_rf"]["limit"] == 100
    rc, out, _ = run(capsys, TINY, "--format", "json", "--isolated")
    d = json.loads(out)
    assert rc == 0 and d["checks"] == [] and d["input_size"] == [3, 32, 32]  # defaults only


def test_config_option_errors(tmp_path, capsys):
    rc, _, err = run(capsys, TINY, "--config", str(tmp_path / "missing.cfg"))
    assert rc == 2 and "missing.cfg" in err and "not found" in err
    (tmp_path / "empty.cfg").write_text("[other]\nx = 1\n")
    rc, _, err = run(capsys, TINY, "--config", str(tmp_path / "empty.cfg"))
    assert rc == 2 and "has no [rfcheck] section" in err
    (tmp_path / "broken.toml").write_text("[tool.rfcheck\n")
    rc, _, err = run(capsys, TINY, "--config", str(tmp_path / "broken.toml"))
    assert rc == 2 and "TOML" in err and len(err.strip().splitlines()) == 1


def test_this_repository_carries_the_brief(monkeypatch, capsys):
    """setup.cfg here holds the course brief's rules; models/net.py meets them."""
    monkeypatch.chdir(ROOT)
    cfg = cfgmod.load()
    assert cfg.values["min_rf"] == 53 and cfg.values["max_params"] == 99_999  # RF > 52, params < 100,000
    assert cfg.values["require_gap"] is True and cfg.values["min_dws"] == 2 and cfg.values["min_dilated"] == 1
    assert not cfg.warnings
    rc, out, err = run(capsys, "models/net.py", "--format", "json")
    c = checks(out)
    assert rc == 0, out
    assert set(c) == {"min_rf", "max_params", "require_gap", "min_dws", "min_dilated", "blocks"}
    assert all(x["passed"] for x in c.values())
