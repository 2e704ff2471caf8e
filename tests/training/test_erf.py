"""training.erf: the effective RF of a small net trained for a few steps on generated data is
centred on its unit and lies inside the theoretical RF; the command's JSON and its errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import rfcheck
from training import erf

pytest.importorskip("matplotlib")

TINY = '''
import torch.nn as nn

class Tiny(nn.Module):
    """c1: 3x3 conv (RF 3); c2: 3x3 conv stride 2 (RF 5, jump 2); c3: 3x3 conv (RF 5 + 2*2 = 9);
    GAP; 1x1 conv to 2 classes.  On 16x16 the GAP's input is 8x8 with start 0, jump 2."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.c3 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.out = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 2, 1), nn.Flatten())

    def forward(self, x):
        return self.out(self.c3(self.c2(self.c1(x))))
'''


def _images(n: int, seed: int = 0):
    """Class 1: a bright 3x3 blob somewhere; class 0: noise only."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, 16, generator=g) * 0.3
    y = torch.arange(n) % 2
    for i in range(n):
        if y[i]:
            r, c = torch.randint(1, 14, (2,), generator=g).tolist()
            x[i, :, r - 1:r + 2, c - 1:c + 2] += 2.0
    return x, y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    (d / "tiny.py").write_text(TINY)
    ns: dict = {}
    exec(compile(TINY, str(d / "tiny.py"), "exec"), ns)
    torch.manual_seed(0)
    model = ns["Tiny"]()
    x, y = _images(256)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for step in range(40):
        i = torch.arange(step * 32, step * 32 + 32) % len(x)
        loss = nn.functional.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, d


def test_effective_rf_is_centred_and_inside_the_theoretical_rf(trained):
    model, _ = trained
    report = rfcheck.analyze(model, (3, 16, 16))
    images, _ = _images(64, seed=1)
    res = erf.measure(model, report, images)
    # by hand: the GAP's input c3.2 is 8x8, RF 9, jump 2, start 0; the unit whose centre is nearest
    # the image centre 7.5 is 4 (centre 8; unit 3's is 6); its RF spans 8 -+ 4 = 4..12
    assert res["layer"] == "c3.2" and res["hooked"] == "the input of out.0"
    assert res["unit"] == [4, 4] and res["unit_centre"] == [8, 8]
    assert res["theoretical_rf"] == [9, 9] and res["theoretical_box"] == [[4, 12], [4, 12]]
    emap = res["_map"]
    assert emap.shape == (16, 16) and emap.sum() > 0
    # the gradient is zero outside the theoretical RF, non-zero at its centre
    inside = np.zeros_like(emap, dtype=bool)
    inside[4:13, 4:13] = True
    assert emap[~inside].max() == 0 and emap[8, 8] > 0
    for k in ("50", "90", "99"):
        h, w = res["erf"][k]
        assert 1 <= h <= 9 and 1 <= w <= 9 and h % 2 == 1       # centred on pixel 8: odd sizes
    assert res["erf"]["50"] <= res["erf"]["90"] <= res["erf"]["99"]
    # centred: the shortest interval holding half the mass is centred within a pixel of 8
    for c in res["erf_tight"]["50"]["centre"]:
        assert abs(c - 8) <= 1
    for c in res["centroid"]:
        assert abs(c - 8) <= 1


def test_a_flatten_linear_head_is_measured_at_the_last_map():
    # conv 3x3 valid on 10x10 (8x8 map, start 1, RF 3), flatten, Linear: the unit nearest the
    # image centre 4.5 is 3 (centre 4, ties go low); its RF is 3..5
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 8 * 8, 2))
    res = erf.measure(model, rfcheck.analyze(model, (1, 10, 10)), torch.randn(4, 1, 10, 10))
    assert res["layer"] == "0" and res["hooked"] == "0" and res["unit_centre"] == [4, 4]
    assert res["theoretical_box"] == [[3, 5], [3, 5]]
    emap = res["_map"]
    assert emap[3:6, 3:6].min() > 0 and emap.sum() == emap[3:6, 3:6].sum()


def test_centred_sizes_and_tight_interval_by_hand():
    m = np.array([0, 1, 2, 4, 2, 1, 0], dtype=float)         # mass 10, centred on pixel 3
    assert erf.centred_sizes(m, 3.0, (0.4, 0.8, 1.0)) == [1, 3, 5]
    assert erf.centred_sizes(np.array([1, 1, 1, 1.0]), 1.5, (0.5, 1.0)) == [2, 4]   # a half-pixel centre
    assert erf.tight_interval(m, 0.8) == (2, 4)
    # 2-D: 7 at the centre pixel (3, 3), 1 on each of its 8 neighbours: 15 in all
    m2 = np.zeros((7, 7))
    m2[2:5, 2:5] = 1
    m2[3, 3] = 7
    assert erf.centred_box_sizes(m2, (3.0, 3.0), (7, 7), (0.4, 0.5, 1.0)) == [[1, 1], [3, 3], [3, 3]]
    # an RF of 7x3 grows the box 7:3: at t = 1/3 the sizes are 3 (rounded up to odd) and 1
    m3 = np.zeros((7, 7))
    m3[2:5, 3] = 1
    assert erf.centred_box_sizes(m3, (3.0, 3.0), (7, 3), (1.0,)) == [[3, 1]]
    assert erf.tight_interval(np.array([0, 0, 5, 5, 0, 0, 0.0]), 1.0) == (2, 3)


def _dataset(root: Path) -> Path:
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 4)):
        for cls in ("a", "b"):
            d = root / "ds" / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root / "ds"


def _checkpoint(model, d: Path) -> Path:
    from training import checkpoint
    path = d / "tiny.pt"
    checkpoint.save(path, {"model": model.state_dict(), "model_spec": f"{d / 'tiny.py'}:Tiny",
                           "model_spec_name": "tiny.py:Tiny", "classes": ["a", "b"], "mean": [0.5] * 3,
                           "std": [0.25] * 3, "epoch": 1})
    return path


def test_the_command_prints_json_and_writes_the_heatmap(trained, tmp_path, capsys, monkeypatch):
    model, d = trained
    monkeypatch.setenv("RFCHECK_DATA_CACHE", str(tmp_path / "cache"))
    ck, data = _checkpoint(model, d), _dataset(tmp_path)
    out = tmp_path / "erf.png"
    assert erf.main([str(ck), "--data", str(data), "--images", "6", "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["theoretical_rf"] == [9, 9] and doc["images"] == 6
    assert set(doc["erf"]) == {"50", "90", "99"} and set(doc["erf_axis"]) == {"50", "90", "99"}
    assert all(len(v) == 2 and all(isinstance(s, int) for s in v) for v in doc["erf"].values())
    assert out.read_bytes()[:4] == b"\x89PNG"
    # more images than the test split holds: all of them (8), said in "images"
    assert erf.main([str(ck), "--data", str(data), "--images", "50", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 8
    # in Python (a notebook): the same document, the map, and the heatmap as a Figure
    doc = erf.effective_rf(str(ck), str(data), 4)
    assert doc["images"] == 4 and doc["theoretical_rf"] == [9, 9] and doc["_map"].shape == (16, 16)
    assert type(erf.heatmap(doc)).__name__ == "Figure"
    # the text form
    assert erf.main([str(ck), "--data", str(data), "--images", "2", "--out", str(out)]) == 0
    assert "99% of the gradient mass" in capsys.readouterr().out


@pytest.mark.parametrize("case, message", [
    ("missing", "not found"), ("data", "does not exist"), ("zero", "--images 0"), ("word", "--images many"),
    ("out", "--out"),
])
def test_errors_are_one_line_exit_2(trained, tmp_path, capsys, monkeypatch, case, message):
    model, d = trained
    monkeypatch.setenv("RFCHECK_DATA_CACHE", str(tmp_path / "cache"))
    ck, data = _checkpoint(model, d), _dataset(tmp_path)
    args = {"missing": [str(tmp_path / "no.pt"), "--data", str(data)],
            "data": [str(ck), "--data", str(tmp_path / "nowhere")],
            "zero": [str(ck), "--data", str(data), "--images", "0"],
            "word": [str(ck), "--data", str(data), "--images", "many"],
            "out": [str(ck), "--data", str(data), "--out", str(tmp_path / "no" / "such" / "erf.png")]}[case]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "erf.png")]
    assert erf.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("training.erf: error:") and message in err, err
