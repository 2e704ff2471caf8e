"""The ``rfcheck`` command: exit codes, one-line errors, table and JSON output.

Most tests call ``rfcheck.cli.main([...])`` in-process (fast); a few run the ``rfcheck`` console
script and ``python -m rfcheck`` in subprocesses to check they are the same program.

Fixture models: ``tests/cli/cli_models/`` (tiny.py, net1d.py, net3d.py: valid models whose numbers
are derived by hand below); broken or odd model files are written to ``tmp_path`` by the tests.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rfcheck import __version__
from tests.cli.common import ERR, assert_error, run

ROOT = Path(__file__).resolve().parents[2]
NET = str(ROOT / "models" / "net.py")
MODELS = Path(__file__).resolve().parent / "cli_models"
TINY = str(MODELS / "tiny.py")
NET1D = str(MODELS / "net1d.py")
NET3D = str(MODELS / "net3d.py")



# -- helpers ------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _outside_the_repo(tmp_path_factory, monkeypatch):
    """Run from a folder with no config file: this repository's setup.cfg holds the course
    brief's rules (tests/unit/test_config.py covers config files)."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _restore_import_state(restore_import_state):
    """See tests/conftest.py."""




def write(tmp_path: Path, name: str, source: str) -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(source))
    return str(p)


def table_rows(out: str) -> dict[str, list[str]]:
    """The table's rows by layer name: {name: [type, output, kernel..., RF, RF min, jump, start, ...]}.

    Columns are split on runs of 2+ spaces, so empty cells vanish; tests index from fixed
    cells that are never empty in the rows they look at (see each test)."""
    lines = out.splitlines()
    head = next(i for i, l in enumerate(lines) if l.startswith("layer"))
    assert set(lines[head + 1]) <= {"-", " "}
    rows = {}
    for line in lines[head + 2:]:
        if not line.strip():
            break
        cells = [c for c in line.split("  ") if c.strip()]
        rows[cells[0].strip()] = [c.strip() for c in cells[1:]]
    return rows


# -- exit codes and checks ----------------------------------------------------------------------
def test_checks_pass_exit_0(capsys):
    rc, out, err = run(capsys, NET, "--max-params", "100000", "--min-rf", "52")
    assert rc == 0, err
    assert err == ""
    assert "[PASS] max_params: parameters 98,090 <= 100,000" in out
    assert "[PASS] min_rf: model RF 67x67" in out and ">= 52" in out
    assert "[FAIL]" not in out


def test_no_checks_exit_0(capsys):
    rc, out, err = run(capsys, NET)
    assert rc == 0 and err == ""
    assert "checks:" not in out
    assert "model RF: 67x67 (jump 4x4) at the input of the global pool out.0" in out


def test_max_params_fails_exit_1(capsys):
    rc, out, err = run(capsys, NET, "--max-params", "1000")
    assert rc == 1 and err == ""
    line = next(l for l in out.splitlines() if "max_params" in l)
    assert "[FAIL]" in line and "98,090" in line and "1,000" in line
    assert "heaviest: c4.0.body.3 16,384" in line      # c4's pointwise 128->128 conv: 128*128


def test_min_rf_fails_exit_1(capsys):
    rc, out, err = run(capsys, NET, "--min-rf", "500")
    assert rc == 1 and err == ""
    line = next(l for l in out.splitlines() if "min_rf" in l)
    assert "[FAIL]" in line and "67x67" in line and "< 500" in line


def test_one_failing_check_of_two_exit_1(capsys):
    rc, out, _ = run(capsys, NET, "--max-params", "100k", "--min-rf", "500")
    assert rc == 1
    assert "[PASS] max_params" in out and "[FAIL] min_rf" in out


@pytest.mark.parametrize("value", ["100000", "100k", "100_000", "0.1M"])
def test_max_params_number_forms(capsys, value):
    rc, out, _ = run(capsys, NET, "--max-params", value)
    assert rc == 0
    assert "<= 100,000" in out


def test_checks_in_json(capsys):
    rc, out, _ = run(capsys, NET, "--format", "json", "--max-params", "1000", "--min-rf", "52")
    assert rc == 1
    doc = json.loads(out)
    assert doc["passed"] is False
    checks = {c["rule"]: c for c in doc["checks"]}
    assert checks["max_params"]["value"] == 98090 and checks["max_params"]["limit"] == 1000
    assert checks["max_params"]["passed"] is False
    assert checks["min_rf"]["value"] == [67, 67] and checks["min_rf"]["limit"] == 52
    assert checks["min_rf"]["passed"] is True


# -- errors: exit 2, one line on stderr naming the thing and the value --------------------------
def test_missing_file(capsys, tmp_path):
    path = str(tmp_path / "nope.py")
    assert_error(capsys, [path], path, "no such file")


def test_directory_instead_of_file(capsys, tmp_path):
    assert_error(capsys, [str(tmp_path)], str(tmp_path), "directory")


def test_syntax_error_names_line(capsys, tmp_path):
    path = write(tmp_path, "syn.py", """\
        import torch.nn as nn

        class A(nn.Module)
            pass
        """)
    assert_error(capsys, [path], path, "line 3", "SyntaxError")


def test_import_error_inside_model_file(capsys, tmp_path):
    path = write(tmp_path, "imp.py", "import no_such_package_rfcheck_test\n")
    assert_error(capsys, [path], path, "import failed", "no_such_package_rfcheck_test")


def test_no_module_class(capsys, tmp_path):
    path = write(tmp_path, "plain.py", "import torch.nn as nn\nx = nn.Conv2d(3, 4, 3)  # an instance, not a class\n")
    assert_error(capsys, [path], path, "no torch.nn.Module subclass")


SEVERAL = """\
    import torch.nn as nn

    class Alpha(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)
        def forward(self, x):
            return self.c(x)

    class Beta(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 5)
        def forward(self, x):
            return self.c(x)
    """


def test_several_classes_listed(capsys, tmp_path):
    path = write(tmp_path, "several.py", SEVERAL)
    assert_error(capsys, [path], path, "Alpha", "Beta", "--all")


def test_several_classes_all(capsys, tmp_path):
    path = write(tmp_path, "several.py", SEVERAL)
    rc, out, err = run(capsys, path, "--all")
    assert rc == 0 and err == ""
    assert f"model: {path}:Alpha" in out and f"model: {path}:Beta" in out
    assert "model RF: 3x3 (jump 1x1) at c" in out      # Alpha: one 3x3 conv
    assert "model RF: 5x5 (jump 1x1) at c" in out      # Beta: one 5x5 conv


def test_several_classes_all_json_is_a_list(capsys, tmp_path):
    path = write(tmp_path, "several.py", SEVERAL)
    rc, out, _ = run(capsys, path, "--all", "--format", "json", "--min-rf", "4")
    assert rc == 1                                      # Alpha's RF 3 < 4, Beta's 5 >= 4
    docs = json.loads(out)
    assert [d["model"] for d in docs] == [f"{path}:Alpha", f"{path}:Beta"]
    assert [d["rf"]["size"] for d in docs] == [[3, 3], [5, 5]]
    assert [d["passed"] for d in docs] == [False, True]


def test_several_classes_pick_one(capsys, tmp_path):
    path = write(tmp_path, "several.py", SEVERAL)
    rc, out, _ = run(capsys, f"{path}:Beta")
    assert rc == 0
    assert f"model: {path}:Beta" in out and "model RF: 5x5" in out


def test_constructor_needs_arguments(capsys, tmp_path):
    path = write(tmp_path, "args.py", """\
        import torch.nn as nn

        class Wide(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.c = nn.Conv2d(3, width, 3)
            def forward(self, x):
                return self.c(x)
        """)
    assert_error(capsys, [path], "Wide", "needs arguments", "width")


def test_constructor_raises(capsys, tmp_path):
    path = write(tmp_path, "ctor.py", """\
        import torch.nn as nn

        class Bad(nn.Module):
            def __init__(self):
                super().__init__()
                raise ValueError("no config found")
        """)
    assert_error(capsys, [path], "Bad", "ValueError", "no config found")


def test_path_missing_name(capsys):
    assert_error(capsys, [f"{NET}:Missing"], NET, "'Missing'", "Net")


def test_package_module_import_error(capsys):
    assert_error(capsys, ["no_such_pkg_rfcheck.models:Name"], "no_such_pkg_rfcheck")


def test_package_module_missing_name(capsys, torchvision):
    assert_error(capsys, ["torchvision.models:no_such_model"], "torchvision.models", "no_such_model")


def test_input_too_small_names_layer(capsys, tmp_path):
    # models/net.py pads every conv, so PyTorch itself accepts any input down to 1x1 there;
    # this net has no padding: 4x4 -> conv3 -> 2x2 -> conv5 cannot run.
    path = write(tmp_path, "small.py", """\
        import torch.nn as nn

        class Small(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 5))
            def forward(self, x):
                return self.features(x)
        """)
    assert_error(capsys, [path, "--input-size", "3,4,4"], "too small", "features.2", "8x2x2", "--input-size")


def test_input_too_small_for_pool(capsys, tmp_path):
    path = write(tmp_path, "pool.py", """\
        import torch.nn as nn

        class P(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 8, 3)
                self.p = nn.MaxPool2d(2)
            def forward(self, x):
                return self.p(self.c(x))
        """)
    assert_error(capsys, [path, "--input-size", "3,3,3"], "too small", "p (MaxPool2d)", "8x1x1")


def test_channels_last_input_is_an_error(capsys):
    assert_error(capsys, [NET, "--input-size", "32,32,3"], "c1.0.0", "32x32x3")


def test_channels_last_input_hints_channels_first(capsys):
    line = assert_error(capsys, [NET, "--input-size", "32,32,3"])
    assert "channels first" in line and "3,32,32" in line


@pytest.mark.parametrize("size", ["abc", "3,a,32", "3,,32", "3,x,32", "3.5,32,32", "3,0,32", "3,-1,32", "3", "1,2,3,4,5", ""])
def test_bad_input_size(capsys, size):
    assert_error(capsys, [NET, "--input-size", size], "--input-size", repr(size), usage=True)


@pytest.mark.parametrize("option, value", [("--max-params", "abc"), ("--max-params", "1.5"),
                                           ("--min-rf", "-3"), ("--min-rf", "lots")])
def test_bad_check_limit(capsys, option, value):
    assert_error(capsys, [NET, option, value], option, repr(value), usage=True)


def test_bad_format(capsys):
    assert_error(capsys, [NET, "--format", "xml"], "--format", "xml", usage=True)


def test_forward_shape_mismatch_names_layer(capsys, tmp_path):
    path = write(tmp_path, "mismatch.py", """\
        import torch.nn as nn

        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 4, 3)
                self.fc = nn.Linear(10, 2)
            def forward(self, x):
                return self.fc(self.c(x))
        """)
    assert_error(capsys, [path], "fc (Linear)", "4x30x30")


BOOM = """\
    import torch.nn as nn

    class Boom(nn.Module):
        def __init__(self, message="kaboom"):
            super().__init__()
            self.message = message
        def forward(self, x):
            raise RuntimeError(self.message)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)
            self.boom = Boom()
        def forward(self, x):
            return self.boom(self.c(x))
    """


def test_forward_raises_names_layer(capsys, tmp_path):
    path = write(tmp_path, "boom.py", BOOM)
    assert_error(capsys, [f"{path}:M"], "boom (Boom)", "RuntimeError", "kaboom")


def test_forward_raises_does_not_blame_previous_op(capsys, tmp_path):
    path = write(tmp_path, "boom.py", BOOM)
    line = assert_error(capsys, [f"{path}:M"], "boom (Boom)")
    assert "conv2d" not in line and "3x32x32" not in line


def test_rf_at_unknown_layer(capsys):
    assert_error(capsys, [NET, "--rf-at", "nosuch"], "--rf-at nosuch", "no such layer")


def test_debug_shows_traceback(capsys, tmp_path):
    path = str(tmp_path / "nope.py")
    rc, out, err = run(capsys, path, "--debug")
    assert rc == 2 and out == ""
    assert "Traceback (most recent call last)" in err
    assert "RFCheckError" in err
    assert err.strip().splitlines()[-1] == f"{ERR} model file {path}: no such file"


def test_debug_shows_traceback_of_forward_error(capsys, tmp_path):
    path = write(tmp_path, "boom.py", BOOM)
    rc, _, err = run(capsys, f"{path}:M", "--debug")
    assert rc == 2
    assert "Traceback (most recent call last)" in err
    assert 'raise RuntimeError(self.message)' in err       # the user's line is shown
    assert err.strip().splitlines()[-1].startswith(ERR)


# -- factories, 1D, 3D ----------------------------------------------------------------------------
def test_torchvision_factory(capsys, torchvision):
    rc, out, err = run(capsys, "torchvision.models:resnet18", "--input-size", "3,64,64")
    assert rc == 0, err
    assert "model: torchvision.models:resnet18   input: 3x64x64" in out
    # ResNet-18 by hand (RF += (k-1)*jump): conv1 7x7 s2 -> 7 (j 2); maxpool 3 s2 -> 11 (j 4);
    # layer1 four 3x3 at j4 -> 43; layer2 3x3 s2 at j4 -> 51 (j 8), three more at j8 -> 99;
    # layer3 -> 115 (j 16) -> 211; layer4 -> 243 (j 32) -> 435 at the input of avgpool.
    assert "model RF: 435x435 (jump 32x32) at the input of the global pool avgpool" in out
    assert "parameters: 11,689,512 total" in out


def test_conv1d_model(capsys):
    rc, out, err = run(capsys, NET1D, "--input-size", "2,128", "--verbose")
    assert rc == 0, err
    # a: Conv1d k5: RF 5, jump 1, start (5-1)/2 = 2, length 128-4 = 124
    # b: Conv1d k3 s2: RF 5 + 2*1 = 7, jump 2, start 2 + 1*1 = 3, length (124-3)//2 + 1 = 61
    rows = table_rows(out)
    assert rows["a"][:6] == ["Conv1d", "4x124", "5", "5", "5", "1"]
    assert rows["a"][6] == "2"
    assert rows["b"][:7] == ["Conv1d", "8x61", "3 s2", "7", "7", "2", "3"]
    assert "model RF: 7 (jump 2) at b" in out


def test_conv3d_model(capsys):
    rc, out, err = run(capsys, NET3D, "--input-size", "2,8,32,32", "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    layers = {l["name"]: l for l in doc["layers"]}
    # a: 3x3x3 pad 1: RF 3, jump 1, start 0 on each axis; size kept
    assert layers["a"]["rf"] == [3, 3, 3] and layers["a"]["jump"] == [1, 1, 1]
    assert layers["a"]["output_shape"] == [4, 8, 32, 32]
    # b: 3x3x3 stride (1,2,2) pad 1: RF 3 + 2*1 = 5, jump 1x2x2, start 0 + (1-1)*1 = 0;
    #    H, W: (32 + 2 - 3)//2 + 1 = 16
    assert layers["b"]["rf"] == [5, 5, 5] and layers["b"]["jump"] == [1, 2, 2]
    assert layers["b"]["start"] == [0, 0, 0]
    assert layers["b"]["output_shape"] == [8, 8, 16, 16]
    assert doc["rf"]["size"] == [5, 5, 5] and doc["input_size"] == [2, 8, 32, 32]


# -- the tiny model: JSON and table against hand-derived numbers ---------------------------------
# tests/cli/cli_models/tiny.py on a 3x8x12 input (non-square, so the axes are checked apart):
#   c1   Conv2d 3->4, 3x3 pad 1: RF 1 + (3-1)*1 = 3, jump 1*1 = 1, start 0 + ((3-1)/2 - 1)*1 = 0,
#        output 4x8x12; params 3*4*9 + 4 = 112
#   pool MaxPool2d(2) (k 2, s 2): RF 3 + (2-1)*1 = 4, jump 1*2 = 2, start 0 + ((2-1)/2 - 0)*1 = 0.5,
#        output 4x4x6; no params
#   c2   Conv2d 4->6, 3x3 pad 1: RF 4 + (3-1)*2 = 8, jump 2*1 = 2, start 0.5 + (1 - 1)*2 = 0.5,
#        output 6x4x6; params 4*6*9 + 6 = 222
#   no global pool, so the model RF is the last spatial output's: 8 at c2; 334 parameters.
TINY_EXPECTED = {
    "c1": dict(type="Conv2d", rf=[3, 3], jump=[1, 1], start=[0, 0], output_shape=[4, 8, 12], params=112),
    "pool": dict(type="MaxPool2d", rf=[4, 4], jump=[2, 2], start=[0.5, 0.5], output_shape=[4, 4, 6], params=0),
    "c2": dict(type="Conv2d", rf=[8, 8], jump=[2, 2], start=[0.5, 0.5], output_shape=[6, 4, 6], params=222),
}


def test_tiny_json(capsys):
    rc, out, err = run(capsys, TINY, "--input-size", "3,8,12", "--format", "json")
    assert rc == 0 and err == ""
    doc = json.loads(out)
    for key in ("schema_version", "model", "input_size", "params", "rf", "layers", "counts", "warnings",
                "checks", "passed"):
        assert key in doc, key
    assert doc["schema_version"] == 2
    assert doc["model"] == f"{TINY}:Tiny"
    assert doc["input_size"] == [3, 8, 12]
    assert doc["params"]["total"] == 334 and doc["params"]["trainable"] == 334
    assert doc["rf"]["size"] == [8, 8] and doc["rf"]["jump"] == [2, 2] and doc["rf"]["at"] == "c2"
    assert doc["rf"]["global_layer"] is None and doc["rf"]["exact"] is True
    assert doc["counts"]["max_pool"] == 1 and doc["counts"]["gap"] == 0
    assert doc["checks"] == [] and doc["passed"] is True
    assert [l["name"] for l in doc["layers"]] == list(TINY_EXPECTED)
    for layer in doc["layers"]:
        for key in ("name", "type", "rf", "rf_min", "jump", "start", "output_shape", "params"):
            assert key in layer, (layer["name"], key)
        for key, value in TINY_EXPECTED[layer["name"]].items():
            assert layer[key] == value, (layer["name"], key, layer[key], value)
        assert layer["rf_min"] == layer["rf"]           # a plain chain: one path, no phases
    assert doc["layers"][1]["kernel"] == [2, 2] and doc["layers"][1]["stride"] == [2, 2]


def test_tiny_json_start_is_a_number(capsys):
    _, out, _ = run(capsys, TINY, "--input-size", "3,8,12", "--format", "json")
    start = json.loads(out)["layers"][1]["start"]
    assert all(isinstance(s, float) and s == 0.5 for s in start)


def test_tiny_table(capsys):
    rc, out, err = run(capsys, TINY, "--input-size", "3,8,12")
    assert rc == 0 and err == ""
    rows = table_rows(out)
    assert list(rows) == ["c1", "pool", "c2"]
    # cells: type, output, kernel, RF, RF min, jump, start[, params]
    # MACs: c1 4x8x12 outputs x 3*3*3 taps = 10,368; c2 6x4x6 outputs x 4*3*3 taps = 5,184
    assert rows["c1"] == ["Conv2d", "4x8x12", "3x3 p1x1", "3x3", "3x3", "1x1", "0,0", "112", "10.4k"]
    assert rows["pool"] == ["MaxPool2d", "4x4x6", "2x2 s2x2", "4x4", "4x4", "2x2", "0.5,0.5"]
    assert rows["c2"] == ["Conv2d", "6x4x6", "3x3 p1x1", "8x8", "8x8", "2x2", "0.5,0.5", "222", "5.18k"]
    assert f"model: {TINY}:Tiny   input: 3x8x12" in out
    assert "parameters: 334 total, 334 trainable" in out
    assert "model RF: 8x8 (jump 2x2) at c2; exact" in out


def test_rf_at(capsys):
    rc, out, err = run(capsys, TINY, "--rf-at", "pool")
    assert rc == 0 and err == ""
    assert "model RF: 4x4 (jump 2x2) at pool" in out       # the pool row of the derivation above


def test_rf_at_module_and_checks(capsys):
    # models/net.py: the output of block c2 (after its strided depthwise conv c2.3.0) has RF 27,
    # jump 4 (tests/golden/test_golden.py::test_bundled_net_hand_derivation)
    rc, out, _ = run(capsys, NET, "--rf-at", "c2", "--min-rf", "52")
    assert rc == 1
    assert "model RF: 27x27 (jump 4x4) at c2" in out
    assert "[FAIL] min_rf: model RF 27x27 at c2 < 52" in out


# -- --version, --help ----------------------------------------------------------------------------
def test_version(capsys):
    rc, out, err = run(capsys, "--version")
    assert rc == 0
    assert out.strip() == f"rfcheck {__version__}"


def test_help(capsys):
    rc, out, err = run(capsys, "--help")
    assert rc == 0 and err == ""
    assert out.startswith("usage: rfcheck")
    for option in ("--input-size", "--format", "--all", "--rf-at", "--max-params", "--min-rf", "--debug",
                   "--version", "exit codes"):
        assert option in out, option


def test_no_arguments_is_a_usage_error(capsys):
    assert_error(capsys, [], "model", usage=True)


# -- the console script and python -m rfcheck: same program --------------------------------------
def _script() -> str:
    exe = Path(sys.executable).parent / ("rfcheck.exe" if os.name == "nt" else "rfcheck")
    if not exe.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    return str(exe)


def both(*args: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """Run ``rfcheck ARGS`` and ``python -m rfcheck ARGS`` side by side (cwd: the repo root)."""
    cmds = [[_script(), "--isolated", *args], [sys.executable, "-m", "rfcheck", "--isolated", *args]]
    procs = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in cmds]
    results = []
    for cmd, p in zip(cmds, procs):
        out, err = p.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(cmd, p.returncode, out, err))
    return results[0], results[1]


def test_script_and_module_pass():
    a, b = both("tests/cli/cli_models/tiny.py", "--input-size", "3,8,12", "--max-params", "334", "--min-rf", "8")
    assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout == b.stdout and a.stderr == b.stderr == ""
    assert "[PASS] max_params: parameters 334 <= 334" in a.stdout
    assert "[PASS] min_rf: model RF 8x8 at c2 >= 8" in a.stdout


def test_script_and_module_fail_json():
    a, b = both("tests/cli/cli_models/tiny.py", "--format", "json", "--max-params", "333")
    assert a.returncode == b.returncode == 1
    assert a.stdout == b.stdout and a.stderr == b.stderr == ""
    assert json.loads(a.stdout)["checks"][0]["passed"] is False


def test_script_and_module_error():
    a, b = both("tests/cli/cli_models/missing.py")
    assert a.returncode == b.returncode == 2
    assert a.stdout == b.stdout == ""
    assert a.stderr == b.stderr == f"{ERR} model file tests/cli/cli_models/missing.py: no such file\n"


def test_closed_pipe_is_not_a_traceback(tmp_path):
    # `rfcheck deep.py | head -1`: a table far larger than the pipe buffer, reader gone after a line
    (tmp_path / "deep.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        class Deep(nn.Sequential):
            def __init__(self):
                super().__init__(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(1500)])
        """))
    p = subprocess.Popen([sys.executable, "-m", "rfcheck", str(tmp_path / "deep.py"), "--input-size", "1,8,8"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert p.stdout.readline().startswith(b"layer")
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err
