"""Models with several outputs (a backbone's feature pyramid, auxiliary heads): every output's
RF is reported and the model RF is the largest; a detector whose outputs come from
data-dependent post-processing is pointed at its backbone."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import rfcheck


class Pyramid(nn.Module):
    """Three 3x3 convs (pad 1), the last two strided: RF 3 (j 1), 3 + 2*1 = 5 (j 2), 5 + 2*2 = 9
    (j 4).  Returns the three maps, shallowest first."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.c = nn.Conv2d(4, 4, 3, stride=2, padding=1)

    def forward(self, x):
        a = self.a(x)
        b = self.b(a)
        return {"p1": a, "p2": b, "p3": self.c(b)}


def test_every_output_is_listed_and_the_largest_is_the_model_rf():
    r = rfcheck.analyze(Pyramid(), (3, 16, 16))
    assert [(o.layer, o.size) for o in r.rf.outputs] == [("a", (3, 3)), ("b", (5, 5)), ("c", (9, 9))]
    assert r.rf.size == (9, 9) and r.rf.at == "c" and r.rf.jump == (4, 4)
    assert r.to_dict()["rf"]["outputs"][2] == {"layer": "c", "at": "c", "size": [9, 9], "exact": True}
    assert "3 outputs (the model RF is the largest): a 3x3, b 5x5, c 9x9" in str(rfcheck.check(Pyramid(), (3, 16, 16)))


def test_rf_at_still_picks_the_layer():
    assert rfcheck.analyze(Pyramid(), (3, 16, 16), rf_at="b").rf.size == (5, 5)


def test_torchvision_fpn_backbone_reports_its_deepest_level(torchvision):
    from torchvision.models._utils import IntermediateLayerGetter
    with torch.device("meta"):
        body = IntermediateLayerGetter(torchvision.models.resnet50(), {"layer2": "0", "layer3": "1", "layer4": "2"})
    r = rfcheck.analyze(body, (3, 224, 224))
    # resnet50's RF at the end of layer4 is 427 (the value README and the analyzer benchmark derive
    # with the gradient reference); layer2 ends at 91
    assert r.rf.size == (427, 427) and r.rf.outputs[0].size == (91, 91)


class Detector(nn.Module):
    """A backbone, then outputs picked by value (as NMS does): nothing depends on positions."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        scores = self.backbone(x).flatten()
        keep = scores > 0
        return torch.zeros(int(keep.sum()))


def test_a_detector_is_pointed_at_its_backbone():
    with pytest.raises(rfcheck.RFCheckError, match=r"data-dependent post-processing.*model\.backbone"):
        rfcheck.analyze(Detector(), (3, 8, 8))
