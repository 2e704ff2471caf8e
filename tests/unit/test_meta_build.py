"""Models are built on the meta device, and advice copies them with meta tensors, and neither
changes a thing the analysis reports: every report field equals that of the model built (or
copied) with real weights on the CPU."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from rfcheck import analyze
from rfcheck.errors import RFCheckError
from rfcheck.loader import build, load, load_entries
from rfcheck.metacopy import meta_copy

ROOT = Path(__file__).resolve().parents[2]

# one or two of every torchvision family (all 80 classifiers were checked the same way, in
# about 50 s on 2 cores: set RFCHECK_TEST_ALL_TORCHVISION=1 to run them all)
TORCHVISION = ["resnet18", "vgg11", "densenet121", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
               "regnet_y_400mf", "regnet_x_400mf", "shufflenet_v2_x0_5", "squeezenet1_1", "mnasnet0_5",
               "googlenet", "inception_v3", "convnext_tiny", "alexnet", "vit_b_16", "swin_t", "maxvit_t"]
if os.environ.get("RFCHECK_TEST_ALL_TORCHVISION"):
    import torchvision
    TORCHVISION = torchvision.models.list_models(module=torchvision.models)
# their constructors compute stage widths on tensors (.tolist()), which meta tensors cannot give
REGISTERED_ON_META = ("regnet_",)


def tensors(model: nn.Module) -> list[tuple[str, tuple, torch.dtype, bool]]:
    """(name, shape, dtype, requires_grad) of every parameter and buffer, tied ones under each name."""
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    return [(n, tuple(t.shape), t.dtype, t.requires_grad) for n, t in named]


def on_meta(model: nn.Module) -> bool:
    return all(t.is_meta for t in [*model.parameters(), *model.buffers()])


def assert_same_model(meta_model: nn.Module, cpu_model: nn.Module, size) -> None:
    assert tensors(meta_model) == tensors(cpu_model)
    assert len(list(meta_model.parameters())) == len(list(cpu_model.parameters()))  # tied stay tied
    assert analyze(meta_model, size).to_dict() == analyze(cpu_model, size).to_dict()


# -- the loader ------------------------------------------------------------------------------------------


def test_bundled_designs_build_on_meta_with_the_cpu_report(monkeypatch):
    monkeypatch.chdir(ROOT)
    notes: list[str] = []
    metas, cpus = load_entries("models", notes=notes), load_entries("models", meta=False)
    assert notes == []
    # (each load runs the files again: equal entries, not the same objects)
    def entries(loaded):
        return [(label, e.name, e.rules, e.input_size) for label, _, e in loaded]
    assert entries(metas) == entries(cpus)
    for (label, m, entry), (_, c, _) in zip(metas, cpus):
        assert on_meta(m) and not any(t.is_meta for t in c.parameters()), label
        assert_same_model(m, c, entry.input_size or (3, 32, 32))


@pytest.mark.filterwarnings("ignore:The default weight initialization:FutureWarning")
@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_builds_on_meta_with_the_cpu_report(name, torchvision):
    tvm = torchvision.models
    size = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    notes: list[str] = []
    m = build(getattr(tvm, name), name, notes=notes)
    c = build(getattr(tvm, name), name, meta=False)
    assert on_meta(m)
    if name.startswith(REGISTERED_ON_META):
        assert notes == [f"{name}: built with only its parameters and buffers on the meta device (under "
                         "torch.device('meta') its constructor failed: NotImplementedError: Cannot copy out of "
                         "meta tensor; no data!)"]
    else:
        assert notes == []
    assert_same_model(m, c, size)


def write_model(tmp_path: Path, body: str) -> str:
    path = tmp_path / "net.py"
    path.write_text("import numpy as np\nimport torch\nimport torch.nn as nn\n\n\n" + textwrap.dedent(body))
    return str(path)


def test_a_constructor_that_reads_its_weights_is_built_on_the_cpu(tmp_path, restore_import_state):
    spec = write_model(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("taps", torch.tensor([3.0, 5.0]))
                self.a = nn.Conv2d(3, 8, int(self.taps[0].item()))
                self.b = nn.Conv2d(8, 8, int(self.taps[1].item()))

            def forward(self, x):
                return self.b(self.a(x))
        """)
    notes: list[str] = []
    [(label, m)] = load(spec, notes=notes)
    [(_, c)] = load(spec, meta=False)
    assert notes == [f"{label}: built on the CPU, not on the meta device: RuntimeError: Tensor.item() cannot be "
                     "called on meta tensors"]
    assert not any(t.is_meta for t in m.parameters())
    assert_same_model(m, c, (3, 16, 16))
    assert analyze(m, (3, 16, 16)).rf.size == (7, 7)


def test_a_constructor_that_computes_on_tensors_keeps_its_weights_on_meta(tmp_path, restore_import_state):
    spec = write_model(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                k = 3 if torch.randn(3).abs().sum().item() > 0 else 5
                self.a = nn.Conv2d(3, 8, k)
                self.b = nn.Conv2d(8, 8, 3)
                self.register_buffer("scale", torch.from_numpy(np.ones(8, dtype=np.float32)))

            def forward(self, x):
                return self.b(self.a(x)) * self.scale[:, None, None]
        """)
    notes: list[str] = []
    [(label, m)] = load(spec, notes=notes)
    [(_, c)] = load(spec, meta=False)
    assert notes == [f"{label}: built with only its parameters and buffers on the meta device (under "
                     "torch.device('meta') its constructor failed: RuntimeError: Tensor.item() cannot be called on "
                     "meta tensors)"]
    assert on_meta(m)
    assert_same_model(m, c, (3, 16, 16))


@pytest.mark.parametrize("needs_values", [False, True], ids=["meta", "registered-on-meta"])
def test_tied_weights_stay_tied_on_meta(tmp_path, restore_import_state, needs_values):
    spec = write_model(tmp_path, f"""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                {"torch.ones(1).item()" if needs_values else "pass"}
                shared = nn.Parameter(torch.randn(8, 8, 3, 3))
                self.a, self.b, self.c = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 3)
                self.b.weight = shared
                self.c.weight = shared

            def forward(self, x):
                return self.c(self.b(self.a(x)))
        """)
    [(_, m)] = load(spec)
    [(_, c)] = load(spec, meta=False)
    assert on_meta(m) and m.b.weight is m.c.weight
    assert_same_model(m, c, (3, 16, 16))
    assert analyze(m, (3, 16, 16)).params.total == 3 * 8 * 9 + 8 + 8 * 8 * 9 + 8 + 8


def test_tensors_put_on_the_cpu_explicitly_are_named_and_analysed(tmp_path, restore_import_state):
    spec = write_model(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)
                self.gain = nn.Parameter(torch.ones(8, 1, 1, device="cpu"))
                self.register_buffer("bias", torch.zeros(8, 1, 1, device="cpu"))

            def forward(self, x):
                return self.conv(x) * self.gain + self.bias
        """)
    notes: list[str] = []
    [(label, m)] = load(spec, notes=notes)
    [(_, c)] = load(spec, meta=False)
    assert notes == [f"{label}: its constructor put 2 parameter/buffer tensor(s) on the CPU explicitly (the "
                     "analysis works all the same): gain, bias"]
    assert m.conv.weight.is_meta and not m.gain.is_meta
    assert_same_model(m, c, (3, 16, 16))


def test_a_constructor_that_fails_everywhere_is_one_error(tmp_path, restore_import_state):
    spec = write_model(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                raise ValueError("no such width")
        """)
    notes: list[str] = []
    with pytest.raises(RFCheckError, match=r"building .*net.py:Net\(\) failed: ValueError: no such width"):
        load(spec, notes=notes)
    assert notes == []


def test_meta_false_builds_a_model_that_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    [(_, model)] = load("models/net_tiny.py", meta=False)
    assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_checking_a_design_does_not_import_torchvision():
    code = ("import sys\nfrom rfcheck.cli import main\n"
            "rc = main(['models/net.py', '--isolated', '--no-advice'])\n"
            "print(rc, 'torchvision' in sys.modules, sorted(m for m in sys.modules if 'torchvision' in m)[:3])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.split("\n")[-2] in ("0 False []", "1 False []"), out.stdout + out.stderr


# -- meta_copy -------------------------------------------------------------------------------------------


class Tied(nn.Module):
    """Tied weights, a frozen parameter, a Parameter subclass and a plain tensor attribute."""

    class Gain(nn.Parameter):
        pass

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 3)
        self.b.weight = self.a.weight
        self.stem = nn.Conv2d(3, 8, 3)
        self.stem.bias.requires_grad_(False)
        self.gain = Tied.Gain(torch.ones(8, 1, 1))
        self.offset = torch.zeros(8, 1, 1)

    def forward(self, x):
        return self.b(self.a(self.stem(x))) * self.gain + self.offset


def assert_meta_copy(model: nn.Module, size) -> nn.Module:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copied = meta_copy(model)
    assert on_meta(copied)
    assert all(not t.is_meta for t in model.state_dict().values())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert_same_model(copied, model, size)
    return copied


def test_meta_copy_keeps_ties_classes_and_flags_and_leaves_the_original_alone():
    model = Tied()
    copied = assert_meta_copy(model, (3, 16, 16))
    assert copied.b.weight is copied.a.weight and copied.a.weight is not model.a.weight
    assert type(copied.gain) is Tied.Gain and not copied.stem.bias.requires_grad
    assert copied.offset.is_meta and not model.offset.is_meta
    # advice deep-copies the meta model per candidate: that copy is meta too, and ties survive
    again = copy.deepcopy(copied)
    assert on_meta(again) and again.b.weight is again.a.weight and again.a.weight is not copied.a.weight


def test_meta_copy_of_the_bundled_designs(monkeypatch):
    monkeypatch.chdir(ROOT)
    for label, model, entry in load_entries("models", meta=False):
        assert_meta_copy(model, entry.input_size or (3, 32, 32))


@pytest.mark.parametrize("name", ["resnet50", "densenet121"])
def test_meta_copy_of_torchvision(name, torchvision):
    tvm = torchvision.models
    assert_meta_copy(getattr(tvm, name)(), (3, 224, 224))


def test_meta_copy_of_a_meta_model_makes_new_tensors():
    with torch.device("meta"):
        model = Tied()
    copied = meta_copy(model)
    assert on_meta(copied) and copied.a.weight is not model.a.weight and copied.b.weight is copied.a.weight
