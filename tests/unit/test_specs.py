"""Model specs and inputs: builder arguments in the spec (Python literals, no code run),
torchvision builders that download backbone weights by default, ``timm:NAME``, several
forward inputs from the command line, and models in half, bfloat16 and float64.

Expected values are derived by hand in each test (RF of a plain stack: RF_out = RF_in +
(k - 1) * jump_in, jump_out = jump_in * stride)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import rfcheck
from rfcheck.cli import main
from rfcheck.errors import RFCheckError
from rfcheck.loader import load, parse_call

FACTORY = '''
import torch.nn as nn


def make(width, depth=1, kernel=3):
    """depth convs kxk stride 1 then a GAP: RF 1 + depth * (kernel - 1); width channels."""
    layers, c = [], 3
    for _ in range(depth):
        layers += [nn.Conv2d(c, width, kernel, padding=kernel // 2), nn.ReLU()]
        c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class Net(nn.Module):
    def __init__(self, width=8, strides=(1, 1)):
        super().__init__()
        self.c1 = nn.Conv2d(3, width, 3, stride=strides[0], padding=1)
        self.c2 = nn.Conv2d(width, width, 3, stride=strides[1], padding=1)

    def forward(self, x):
        return self.c2(self.c1(x))
'''

TWO = '''
import torch.nn as nn


class Two(nn.Module):
    """x: 3 channels through a 3x3 conv, y: 1 channel through a 5x5 conv, added, then a 3x3
    conv with stride 2.  RF after the add: max(3, 5) = 5 (RF min 3); after c: 5 + 2 = 7, jump 2."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(1, 8, 5, padding=2)
        self.c = nn.Conv2d(8, 8, 3, stride=2, padding=1)

    def forward(self, x, y):
        return self.c(self.a(x) + self.b(y))
'''


@pytest.fixture(autouse=True)
def _outside_the_repo(tmp_path_factory, monkeypatch, restore_import_state):
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def write(tmp_path: Path, name: str, source: str) -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(source))
    return str(p)


def cli_json(capsys, *args: str):
    rc = main([*args, "--format", "json", "--isolated"])
    out, err = capsys.readouterr()
    assert rc in (0, 1), err
    return json.loads(out), err


# -- builder arguments ----------------------------------------------------------------------------
def test_parse_call_reads_literals():
    assert parse_call("s", "Net") == ("Net", (), {})
    assert parse_call("s", "Net(width=32)") == ("Net", (), {"width": 32})
    assert parse_call("s", "make(16, depth=2, kernel=5)") == ("make", (16,), {"depth": 2, "kernel": 5})
    assert parse_call("s", "f(None, x=(1, 2), y=[3], z={'a': -1.5}, s='t', b=True)") == \
        ("f", (None,), {"x": (1, 2), "y": [3], "z": {"a": -1.5}, "s": "t", "b": True})


@pytest.mark.parametrize("name", ["Net(width=", "Net(x=open('f'))", "Net(**{'a': 1})", "Net(1)(2)", "Net)",
                                  "1Net(2)"])
def test_parse_call_rejects_what_is_not_a_literal_call(name):
    with pytest.raises(RFCheckError, match="bad builder arguments"):
        parse_call("models/x.py:" + name, name)


def test_keyword_and_positional_builder_arguments(tmp_path, capsys):
    path = write(tmp_path, "fac.py", FACTORY)
    # make(16, depth=2): two 3x3 convs, RF 1 + 2*2 = 5; params (3*9*16 + 16) + (16*9*16 + 16) = 448 + 2320
    doc, _ = cli_json(capsys, f"{path}:make(16, depth=2)")
    assert doc["model"] == f"{path}:make(16, depth=2)"
    assert doc["rf"]["size"] == [5, 5] and doc["params"]["total"] == 448 + 2320
    # kernel=5, depth=3: RF 1 + 3*4 = 13
    doc, _ = cli_json(capsys, f"{path}:make(4, depth=3, kernel=5)")
    assert doc["rf"]["size"] == [13, 13]
    # a class with a tuple literal: strides (2, 2): RF 3 then 3 + 2*2 = 7, jump 4
    doc, _ = cli_json(capsys, f"{path}:Net(width=4, strides=(2, 2))", "--input-size", "3,16,16")
    last = doc["layers"][-1]
    assert last["rf"] == [7, 7] and last["jump"] == [4, 4] and last["output_shape"] == [4, 4, 4]


def test_builder_arguments_build_real_weights_too(tmp_path):
    path = write(tmp_path, "fac.py", FACTORY)
    (label, model), = load(f"{path}:make(6, depth=1)", meta=False)
    assert label.endswith("make(6, depth=1)")
    assert model[0].out_channels == 6 and model[0].weight.device.type == "cpu"


def test_a_builder_that_needs_arguments_says_how_to_give_them(tmp_path, capsys):
    path = write(tmp_path, "fac.py", FACTORY)
    assert main([f"{path}:make", "--isolated"]) == 2
    err = capsys.readouterr().err
    assert "needs arguments (width)" in err and "make(width=...)" in err


@pytest.mark.parametrize("builder", ["deeplabv3_mobilenet_v3_large", "fcn_resnet50"])
def test_torchvision_segmentation_without_backbone_weights(torchvision, capsys, builder):
    # offline, these builders download backbone weights by default; weights_backbone=None builds
    # them without (on the meta device: no weights at all)
    doc, err = cli_json(capsys, f"torchvision.models.segmentation:{builder}(weights_backbone=None)",
                        "--input-size", "3,64,64", "--no-advice")
    assert "Downloading" not in err
    assert doc["input_size"] == [3, 64, 64]
    assert doc["layers"][-1]["output_shape"][1:] == [64, 64]  # upsampled back to the input size
    assert doc["params"]["total"] > 1_000_000


def test_timm_model_at_its_default_input_size(capsys):
    timm = pytest.importorskip("timm")
    doc, _ = cli_json(capsys, "timm:resnet18", "--no-advice")
    want = list(timm.create_model("resnet18", pretrained=False).pretrained_cfg["input_size"])
    assert doc["input_size"] == want == [3, 224, 224]
    assert doc["model"] == "timm:resnet18"
    # resnet18's stem: 7x7 conv stride 2 (RF 7, jump 2), 3x3 max pool stride 2 (RF 7 + 2*2 = 11, jump 4)
    rows = {l["name"]: l for l in doc["layers"]}
    assert rows["conv1"]["rf"] == [7, 7] and rows["maxpool"]["rf"] == [11, 11] and rows["maxpool"]["jump"] == [4, 4]
    assert doc["params"]["total"] == sum(p.numel() for p in timm.create_model("resnet18").parameters())


def test_timm_input_size_from_the_command_line_wins_and_kwargs_pass(capsys):
    pytest.importorskip("timm")
    doc, _ = cli_json(capsys, "timm:resnet18(num_classes=7, drop_rate=0.1)", "--input-size", "3,64,64", "--no-advice")
    assert doc["input_size"] == [3, 64, 64]
    assert doc["layers"][-1]["output_shape"] == [7]
    assert doc["model"] == "timm:resnet18(num_classes=7, drop_rate=0.1)"


# -- several inputs -------------------------------------------------------------------------------
def test_two_inputs_from_the_command_line(tmp_path, capsys):
    path = write(tmp_path, "two.py", TWO)
    doc, _ = cli_json(capsys, path, "--input-size", "3,16,16", "--input-size", "1,16,16")
    rows = {l["name"]: l for l in doc["layers"]}
    assert doc["input_size"] == [3, 16, 16]  # the first input's geometry is the one analysed
    assert rows["a"]["rf"] == [3, 3] and rows["b"]["rf"] == [5, 5]
    assert rows["add"]["rf"] == [5, 5] and rows["add"]["rf_min"] == [3, 3]
    assert rows["c"]["rf"] == [7, 7] and rows["c"]["jump"] == [2, 2] and rows["c"]["output_shape"] == [8, 8, 8]
    # the CLI gives what rfcheck.check(model, inputs=[...]) gives
    from rfcheck.loader import load as load_model
    (_, model), = load_model(path)
    report = rfcheck.check(model, inputs=[torch.empty(1, 3, 16, 16), torch.empty(1, 1, 16, 16)]).report
    assert [l.rf for l in report.layers] == [tuple(l["rf"]) for l in doc["layers"]]


def test_two_inputs_with_rules_and_advice(tmp_path, capsys):
    path = write(tmp_path, "two.py", TWO)
    rc = main([path, "--isolated", "--input-size", "3,16,16", "--input-size", "1,16,16", "--min-rf", "9"])
    out, err = capsys.readouterr()
    assert rc == 1 and "[FAIL] min_rf: model RF 7x7" in out and "fix:" in out, (out, err)


# -- dtypes ---------------------------------------------------------------------------------------
def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.Conv2d(8, 16, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


@pytest.mark.parametrize("dtype", [torch.half, torch.bfloat16, torch.float64])
def test_models_in_other_dtypes_give_the_float32_report(dtype):
    torch.manual_seed(0)
    model = _net()
    want = rfcheck.analyze(model, (3, 32, 32)).to_dict()
    # RF by hand: 3x3 (3), depthwise 3x3 stride 2 (3 + 2 = 5, jump 2), 1x1 (5)
    assert want["rf"]["size"] == [5, 5]
    got = rfcheck.analyze(model.to(dtype), (3, 32, 32)).to_dict()
    assert got == want
    check = rfcheck.check(model, (3, 32, 32), min_rf=9)
    assert not check.passed and check.report.to_dict() == want and check.advice("min_rf")
    assert next(model.parameters()).dtype == dtype  # untouched


def test_other_dtypes_with_example_inputs_and_on_the_meta_device():
    with torch.device("meta"):
        model = _net().half()
    want = rfcheck.analyze(_net(), (3, 32, 32)).to_dict()
    assert rfcheck.analyze(model, inputs=torch.zeros(1, 3, 32, 32)).to_dict() == want


def test_a_half_model_from_the_command_line(tmp_path, capsys):
    path = write(tmp_path, "half.py", '''
        import torch.nn as nn

        def make():
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)).half()
    ''')
    doc, _ = cli_json(capsys, f"{path}:make")
    assert doc["rf"]["size"] == [5, 5]
