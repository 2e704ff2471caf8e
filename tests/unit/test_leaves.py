"""Recording a plain Conv/BatchNorm/activation module without running it (rfcheck.leaves) must give
exactly the report, warnings and errors of running it through the tracer's mode."""
from __future__ import annotations

import pytest
from torch import nn

import rfcheck
from rfcheck import tracer
from rfcheck.errors import RFCheckError

TORCHVISION = [
    ("alexnet", (3, 224, 224)), ("vgg11", (3, 64, 64)), ("resnet18", (3, 64, 64)), ("resnet50", (3, 224, 224)),
    ("mobilenet_v2", (3, 96, 96)), ("mobilenet_v3_small", (3, 96, 96)), ("efficientnet_b0", (3, 64, 64)),
    ("densenet121", (3, 64, 64)), ("googlenet", (3, 64, 64)), ("inception_v3", (3, 299, 299)),
    ("squeezenet1_0", (3, 64, 64)), ("shufflenet_v2_x1_0", (3, 64, 64)), ("regnet_y_400mf", (3, 64, 64)),
    ("convnext_tiny", (3, 64, 64)),
]


def _both(model: nn.Module, size, **kw) -> tuple[str, str]:
    """(report or error with leaves, without leaves)."""
    out = []
    for use in (True, False):
        tracer.USE_LEAVES = use
        try:
            report = rfcheck.analyze(model, size, **kw)
            out.append(report.to_json() + repr(report))  # (repr: every field, also those JSON leaves out)
        except RFCheckError as e:
            out.append(f"{type(e).__name__}: {e}")
        finally:
            tracer.USE_LEAVES = True
    return out[0], out[1]


@pytest.mark.parametrize("name,size", TORCHVISION, ids=[n for n, _ in TORCHVISION])
def test_torchvision_reports_are_identical(name, size, torchvision):
    kw = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    model = getattr(torchvision.models, name)(weights=None, **kw)
    fast, slow = _both(model, size)
    assert fast == slow


class Shared(nn.Module):
    """One conv, BN and ReLU called twice (names get :2), a 1D BN and a hooked conv."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU(inplace=True)
        self.hooked = nn.Conv2d(4, 4, 3, dilation=2)
        self.hooked.register_forward_hook(lambda m, a, o: o * 2)
        self.reflect = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
        self.bn1 = nn.BatchNorm1d(4)
        self.silu, self.gelu, self.six = nn.SiLU(), nn.GELU(), nn.ReLU6()

    def forward(self, x):
        x = self.act(self.bn(self.conv(x)))
        x = self.act(self.bn(self.conv(x)))
        x = self.six(self.gelu(self.silu(self.reflect(self.hooked(x)))))
        return self.bn1(x.mean((2, 3)))


class MyConv(nn.Conv2d):
    def forward(self, x):  # a subclass may do anything: it must run
        return super().forward(x[..., ::2])


@pytest.mark.parametrize("model,size", [
    (Shared(), (4, 20, 24)),
    (nn.Sequential(MyConv(3, 8, 3), nn.BatchNorm2d(8), nn.Hardswish()), (3, 16, 16)),
    (nn.Conv2d(3, 8, 5, stride=2), (3, 32, 32)),  # the model itself is a leaf
    (nn.Sequential(nn.Conv1d(2, 4, 5, stride=2), nn.BatchNorm1d(4), nn.LeakyReLU(), nn.Conv1d(4, 4, 3)), (2, 64)),
    (nn.Sequential(nn.Conv3d(2, 4, 3, padding="same"), nn.BatchNorm3d(4), nn.ELU(), nn.Mish()), (2, 8, 16, 16)),
    (nn.Sequential(nn.Conv2d(3, 4, (1, 7), padding="valid"), nn.Sigmoid(), nn.Tanh(), nn.Hardsigmoid()), (3, 9, 30)),
    (nn.Sequential(nn.MaxPool2d(3, 2, 1), nn.MaxPool2d(2, ceil_mode=True), nn.AvgPool2d(3, 1, 1),
                   nn.AvgPool2d(2, count_include_pad=False, divisor_override=3), nn.AdaptiveAvgPool2d((None, 2)),
                   nn.Flatten(), nn.Linear(8 * 2 * 2, 5), nn.Linear(5, 3, bias=False)), (2, 15, 17)),
    (nn.Sequential(nn.MaxPool1d(3, dilation=2), nn.AvgPool1d(2, ceil_mode=True), nn.AdaptiveAvgPool1d(3)), (4, 40)),
    (nn.Sequential(nn.MaxPool3d(2), nn.AvgPool3d((1, 2, 2)), nn.AdaptiveAvgPool3d(1)), (2, 6, 8, 8)),
    (nn.Sequential(nn.MaxPool2d(2, return_indices=True)), (3, 8, 8)),  # a tuple out: the normal path
    (nn.Sequential(nn.Conv1d(4, 6, 3), nn.Linear(38, 7)), (4, 40)),  # linear on the last (spatial) dim
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(2), nn.Linear(36, 4)), (3, 8, 8)),
    (nn.Sequential(nn.AdaptiveAvgPool2d(2)), (3, 8)),  # unbatched (C, H, W) for the pool
], ids=["shared-hooked", "subclass", "root-leaf", "conv1d", "conv3d", "asymmetric", "pools-linear", "pools1d",
        "pools3d", "pool-indices", "linear-spatial", "linear-flat",
        "pool-unbatched"])
def test_mini_models_are_identical(model, size):
    fast, slow = _both(model, size)
    assert fast == slow


@pytest.mark.parametrize("model,size", [
    (nn.Sequential(nn.Conv2d(3, 8, 5), nn.Conv2d(8, 8, 5)), (3, 6, 6)),  # too small
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(6)), (3, 8, 8)),  # wrong num_features
    (nn.Sequential(nn.Conv2d(3, 8, 3)), (32, 32, 3)),  # channels last
    (nn.Sequential(nn.BatchNorm2d(3)), (3, 8)),  # wrong rank
    (nn.Sequential(nn.MaxPool2d(5), nn.MaxPool2d(5)), (3, 12, 12)),  # pooled away
    (nn.Sequential(nn.Flatten(), nn.Linear(10, 2)), (3, 4, 4)),  # wrong in_features
    (nn.Sequential(nn.MaxPool2d(2)), (8,)),  # wrong rank for the pool
], ids=["too-small", "bn-features", "layout", "bn-rank", "pool-too-small", "linear-features", "pool-rank"])
def test_errors_are_identical(model, size):
    fast, slow = _both(nn.Sequential(nn.Identity(), model), size)
    assert fast == slow
    assert not fast.startswith("{")


def test_leaf_is_really_skipped_and_weights_stay_put():
    conv = nn.Conv2d(3, 8, 3)
    calls = []
    orig = nn.Conv2d.forward
    nn.Conv2d.forward = lambda self, x: calls.append(1) or orig(self, x)
    try:
        report = rfcheck.analyze(nn.Sequential(conv, nn.ReLU()), (3, 16, 16))
        tracer.USE_LEAVES = False
        rfcheck.analyze(nn.Sequential(conv, nn.ReLU()), (3, 16, 16))
    finally:
        tracer.USE_LEAVES = True
        nn.Conv2d.forward = orig
    assert calls == [1]  # only the run without leaves called forward
    assert report.layer("0").params == 8 * 3 * 9 + 8 and conv.weight.device.type == "cpu"


def test_user_rule_for_a_leaf_type_wins():
    class Tagged(nn.Conv2d):
        pass

    seen = []

    @rfcheck.register_module(nn.Conv2d)
    def rule(module, call):
        seen.append(module)
        return call.sliding(module.kernel_size, module.stride, module.padding, module.dilation)

    try:
        rfcheck.analyze(nn.Sequential(nn.Conv2d(3, 4, 3), Tagged(4, 4, 3)), (3, 16, 16))
    finally:
        from rfcheck.ops import MODULE_RULES
        del MODULE_RULES[nn.Conv2d]
    assert len(seen) == 2
