"""The pytest plugin, run in a separate pytest process on generated test files (it is loaded
through its pytest11 entry point, as a user gets it after pip install)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MODEL = '''
import torch.nn as nn

class Small(nn.Module):
    """conv 3x3 p1 (3->8), conv 3x3 s2 p1 (8->8), GAP, 1x1 conv: RF 3, 5 (jump 2);
    params 3*8*9+8 = 224, 8*8*9+8 = 584, 8*10+10 = 90: 898"""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.o = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 10, 1))

    def forward(self, x):
        return self.o(self.c2(self.c1(x))).flatten(1)
'''


def pytest_run(tmp_path: Path, tests: str, *args: str, cfg: str = "") -> subprocess.CompletedProcess:
    (tmp_path / "small.py").write_text(MODEL)
    (tmp_path / "test_user.py").write_text(textwrap.dedent(tests))
    if cfg:
        (tmp_path / "setup.cfg").write_text(cfg)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_marker_and_fixture(tmp_path):
    r = pytest_run(tmp_path, '''
        import pytest
        from small import Small

        @pytest.mark.rfcheck(min_rf=5, max_params=1000, require_gap=True, input_size=(3, 16, 16))
        def test_passes(rfcheck):
            report = rfcheck(Small())
            assert report.rf.size == (5, 5) and report.params.total == 898

        @pytest.mark.rfcheck(min_rf=20, max_params="500")
        def test_fails(rfcheck):
            rfcheck(Small())

        def test_call_keywords(rfcheck):
            rfcheck(Small(), input_size=(3, 16, 16), min_dws=1)

        def test_assert_design():
            from rfcheck.testing import assert_design
            assert_design(Small(), (3, 16, 16), min_rf=5, require_gap=True)
        ''', "--rfcheck-isolated")
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert "PASSED test_user.py::test_passes" in out and "PASSED test_user.py::test_assert_design" in out
    assert "FAILED test_user.py::test_fails" in out and "FAILED test_user.py::test_call_keywords" in out
    # the failure message is the rules section: rule, value, limit, layers
    assert "[FAIL] min_rf: model RF 5x5 at the input of the global pool o.0 < 20" in out
    assert "[FAIL] max_params: parameters 898 > 500" in out
    assert "[FAIL] min_dws: 0 depthwise-separable pair(s) < 1" in out
    assert "Traceback" not in out


def test_unknown_marker_keyword_is_an_error(tmp_path):
    r = pytest_run(tmp_path, '''
        import pytest

        @pytest.mark.rfcheck(min_rff=5)
        def test_x(rfcheck):
            pass
        ''')
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert "unknown keyword 'min_rff'" in text and "did you mean 'min_rf'" in text and "test_x" in text


def test_marker_value_and_fixture_validated(tmp_path):
    r = pytest_run(tmp_path, '''
        import pytest

        @pytest.mark.rfcheck(max_params="lots")
        def test_bad_value(rfcheck):
            pass

        @pytest.mark.rfcheck(min_rf=5)
        def test_no_fixture():
            pass
        ''')
    text = r.stdout + r.stderr
    assert r.returncode != 0
    assert "max_params = 'lots'" in text
    assert "test_no_fixture: @pytest.mark.rfcheck needs the test to use the rfcheck fixture" in text


def test_config_file_and_command_line(tmp_path):
    tests = '''
        from small import Small

        def test_project_rules(rfcheck):
            rfcheck(Small())
        '''
    # the project's [rfcheck] rules apply to the fixture ...
    r = pytest_run(tmp_path, tests, cfg="[rfcheck]\ninput_size = 3,16,16\nmin_rf = 7\n")
    assert r.returncode == 1 and "[FAIL] min_rf: model RF 5x5" in r.stdout and "< 7" in r.stdout
    # ... the command line wins over them, with the CLI's option names under --rfcheck-
    r = pytest_run(tmp_path, tests, "--rfcheck-min-rf", "5", cfg="[rfcheck]\ninput_size = 3,16,16\nmin_rf = 7\n")
    assert r.returncode == 0, r.stdout
    r = pytest_run(tmp_path, tests, "--rfcheck-min-rf", "abc")
    assert r.returncode != 0 and "abc" in r.stderr


def test_plugin_help_lists_the_cli_rules(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    from rfcheck.rules import RULES
    for c in RULES.values():
        assert "--rfcheck-" + c.option[2:] in r.stdout


@pytest.mark.rfcheck(input_size=(3, 32, 32))
def test_this_repository_uses_its_own_plugin(rfcheck):
    """The bundled design meets the course brief held in this repository's setup.cfg."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    try:
        from models.net import Net
    finally:
        sys.path.pop(0)
    report = rfcheck(Net())
    assert report.rf.size == (67, 67)  # derived in tests/golden/test_golden.py::test_bundled_net_hand_derivation
