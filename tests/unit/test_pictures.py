"""plot() and show_rf(): the figures' lines, markers and boxes, on small nets whose numbers are
derived by hand here (and one box checked against the gradient reference)."""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import rfcheck
from rfcheck.errors import RFCheckError
from rfcheck.plot import plot
from rfcheck.show import centre_unit, in_padding_share, model_rf_layer, padding_part, show_rf, unit_box
from tests.reference import unit_boxes

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class Blocks(nn.Module):
    """c1: 3x3 conv pad 1 (RF 3, jump 1, start 0); 3x3 conv stride 2 pad 1 (RF 3+2 = 5, jump 2,
    start 0).  c2: 3x3 conv pad 1 (RF 5 + 2*2 = 9, jump 2, start 0).  c3: 3x3 conv *no* padding
    (RF 9 + 2*2 = 13, jump 2, start 0 + (1 - 0)*2 = 2; a 6x6 map becomes 4x4).  out: GAP + 1x1
    conv.  On 12x12: the model RF is 13 at c3 (the GAP's input); counting the GAP window over
    the 4x4 map gives 13 + (4 - 1)*2 = 19."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1))
        self.c2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.c3 = nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU())
        self.out = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 2, 1))

    def forward(self, x):
        return self.out(self.c3(self.c2(self.c1(x)))).flatten(1)


@pytest.fixture(scope="module")
def report():
    return rfcheck.analyze(Blocks(), (3, 12, 12))


def _line(fig: Figure, gid: str):
    found = [l for ax in fig.axes for l in ax.get_lines() if l.get_gid() == gid]
    assert len(found) == 1, [l.get_gid() for ax in fig.axes for l in ax.get_lines()]
    return found[0]


def _patch(ax, gid: str):
    found = [p for p in ax.patches if p.get_gid() == gid]
    assert len(found) == 1, [p.get_gid() for p in ax.patches]
    return found[0]


# -- plot ----------------------------------------------------------------------------------------
def test_plot_returns_a_figure_with_h_and_w_distinguishable(report, tmp_path):
    fig = plot(report)
    assert isinstance(fig, Figure)
    h, w = _line(fig, "rf:H"), _line(fig, "rf:W")
    # equal values (a square net) stay visible: the two lines differ in style, marker and colour
    assert h.get_linestyle() != w.get_linestyle()
    assert h.get_marker() != w.get_marker()
    assert h.get_color() != w.get_color()
    assert list(h.get_ydata()) == list(w.get_ydata())
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "RF H" in labels and "RF W" in labels
    # the line ends at the model RF (13, at c3's output), never at the GAP-window figure (19)
    assert max(h.get_ydata()) == 13 and h.get_ydata()[-1] == 13
    gap = _line(fig, "gap_window")
    assert list(gap.get_ydata()) == [19, 19] and gap.get_linestyle() == "None"
    assert gap.get_label().startswith("GAP window counted: 19x19") and "common mistake" in gap.get_label()
    assert gap.get_xdata()[0] == len(h.get_xdata())          # beside the line, at the pool
    star = _line(fig, "model_rf")
    assert list(star.get_ydata()) == [13, 13] and star.get_xdata()[0] == len(h.get_xdata()) - 1
    assert model_rf_layer(report) == "c3.1" and "c3.1" in star.get_label()
    # the input size as a reference line, the block boundaries
    assert list(_line(fig, "input").get_ydata()) == [12, 12]
    # the layers: c1.0 c1.1 (ReLU) c1.2 | c2.0 c2.1 | c3.0 c3.1; a boundary after each block's last
    assert list(h.get_ydata()) == [3, 3, 5, 9, 9, 13, 13]
    bounds = {l.get_gid(): l.get_xdata()[0] for l in fig.axes[0].get_lines() if l.get_gid().startswith("block:")}
    assert bounds == {"block:c1": 2.5, "block:c2": 4.5, "block:c3": 6.5}
    # the jumps: 1, 1, then 2 from the strided conv on
    assert list(_line(fig, "jump:H").get_ydata()) == [1, 1, 2, 2, 2, 2, 2]
    fig2 = plot(report, str(tmp_path / "rf.png"))
    assert isinstance(fig2, Figure) and (tmp_path / "rf.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_non_square_input_draws_two_different_lines():
    # 3x1 convs: the RF grows along H only (3, 5) and stays 1 along W
    model = nn.Sequential(nn.Conv2d(1, 2, (3, 1), padding=(1, 0)), nn.Conv2d(2, 2, (3, 1), padding=(1, 0)))
    fig = plot(rfcheck.analyze(model, (1, 8, 6)))
    assert list(_line(fig, "rf:H").get_ydata()) == [3, 5]
    assert list(_line(fig, "rf:W").get_ydata()) == [1, 1]
    inputs = [l for ax in fig.axes for l in ax.get_lines() if l.get_gid() == "input"]
    assert sorted(l.get_ydata()[0] for l in inputs) == [6, 8]


def test_plot_and_show_rf_leave_pyplot_alone():
    code = ("import sys, rfcheck, torch.nn as nn\n"
            "from rfcheck.plot import plot\nfrom rfcheck.show import show_rf\n"
            "r = rfcheck.analyze(nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(1)), (1, 8, 8))\n"
            "plot(r); show_rf(r)\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_design_check_plot_and_show_rf():
    c = rfcheck.check(Blocks(), (3, 12, 12), min_rf=5)
    assert isinstance(c.plot(), Figure) and isinstance(c.show_rf(), Figure)


# -- show_rf -------------------------------------------------------------------------------------
def test_unit_box_is_start_plus_u_jump_and_half_rf(report):
    # c3.1 (ReLU after the unpadded conv): RF 13, jump 2, start 2 on a 4x4 map
    assert unit_box(report, "c3", (0, 0)) == ((-4, 8), (-4, 8))              # 2 -+ 6
    assert unit_box(report, "c3", (3, 1)) == ((2, 14), (-2, 10))             # 2 + 6 -+ 6, 2 + 2 -+ 6
    # c1's last conv: RF 5, jump 2, start 0 on 6x6; c2: RF 9, jump 2, start 0
    assert unit_box(report, "c1", (2, 5)) == ((2, 6), (8, 12))
    assert unit_box(report, "c2", (0, 1)) == ((-4, 4), (-2, 6))
    # the centre unit: the one whose RF centre is nearest the image centre 5.5 (ties: the lower)
    assert centre_unit(report, "c3.1") == (2, 2)        # centres 2, 4, 6, 8: 6 is 0.5 away, 4 is 1.5
    assert centre_unit(report, "c2.1") == (3, 3)        # centres 0, 2, 4, 6, 8, 10: 6
    assert model_rf_layer(report) == "c3.1"


def test_unit_box_agrees_with_the_gradient_reference():
    # on a larger input the reference's boxes are the unclipped RF for interior units
    model = Blocks()
    big = rfcheck.analyze(model, (3, 40, 40))
    prefix = nn.Sequential(model.c1, model.c2, model.c3)
    for u in [(8, 8), (9, 10)]:
        ref = unit_boxes(prefix, (3, 40, 40), [u])[0]
        assert unit_box(big, "c3", u) == tuple((Fraction(lo), Fraction(hi)) for lo, hi in ref)


def test_padding_part(report):
    # unit (0, 0) at c3: rows/cols -4..8 on a 12x12 image: 4 in the padding before, none after
    assert padding_part(unit_box(report, "c3", (0, 0)), (12, 12)) == ((4, 0), (4, 0))
    # unit (3, 1): rows 2..14 (3 after the last pixel 11), cols -2..10 (2 before)
    assert padding_part(unit_box(report, "c3", (3, 1)), (12, 12)) == ((0, 3), (2, 0))
    # 13x13 box, 9x9 of it inside
    assert in_padding_share(unit_box(report, "c3", (0, 0)), (12, 12)) == pytest.approx(1 - 81 / 169)
    # a box wider than the image on both sides
    assert padding_part(((-3, 14),), (12,)) == ((3, 3),)


def test_show_rf_boxes_equal_the_report(report):
    fig = show_rf(report, unit=(0, 0))
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.patches]
    assert len(axes) == 3                                       # one panel per block: c1, c2, c3
    c3 = axes[-1]
    box = _patch(c3, "rf:c3.1:0,0")
    # pixel edges: rows/cols -4..8 span -4.5 .. 8.5
    assert box.get_xy() == (-4.5, -4.5) and box.get_width() == 13 and box.get_height() == 13
    pad = _patch(c3, "padding:c3.1")
    assert pad.get_hatch() and pad.get_xy() == (-4.5, -4.5)
    # its neighbours one jump (2 px) away: (1, 0) and (0, 1) exist, (-1, 0) and (0, -1) do not
    right = _patch(c3, "neighbour:c3.1:0,1")
    down = _patch(c3, "neighbour:c3.1:1,0")
    assert right.get_xy() == (-2.5, -4.5) and down.get_xy() == (-4.5, -2.5)
    assert len([p for p in c3.patches if (p.get_gid() or "").startswith("neighbour:")]) == 2
    # the other blocks show the unit nearest to (0, 0)'s centre (pixel 2, 2): c1's (1, 1), box 0..4
    c1 = _patch(axes[0], "rf:c1.2:1,1")
    assert c1.get_xy() == (-0.5, -0.5) and c1.get_width() == 5
    assert "rows -4..8" in c3.get_title() and "52% of the box in the padding" in c3.get_title()


def test_show_rf_default_is_the_centre_unit_over_an_image(report):
    img = np.zeros((12, 12, 3), dtype=np.uint8)
    img[3:9, 3:9] = 255
    fig = show_rf(report, img)
    _patch([ax for ax in fig.axes if ax.get_visible()][-1], "rf:c3.1:2,2")   # box 0..12
    assert len(fig.axes[0].images) == 1
    fig = show_rf(report, torch.rand(3, 12, 12), layer="c2")   # CHW tensor; a block name
    assert [ax for ax in fig.axes if ax.get_visible()][-1].get_title().startswith("c2 (c2.1)")
    with pytest.raises(RFCheckError, match="10x10 but the report is for a 12x12"):
        show_rf(report, np.zeros((10, 10)))
    with pytest.raises(RFCheckError, match="outside its 4x4 map"):
        show_rf(report, unit=(4, 0))


def test_show_rf_from_a_dataset_folder(report, tmp_path, monkeypatch):
    from PIL import Image
    monkeypatch.setenv("RFCHECK_DATA_CACHE", str(tmp_path / "cache"))
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            d = tmp_path / "ds" / split / cls
            d.mkdir(parents=True)
            Image.fromarray(np.full((12, 12, 3), 40 if cls == "cat" else 200, dtype=np.uint8)).save(d / "0.png")
    fig = show_rf(report, str(tmp_path / "ds"), index=1)
    assert "dog" in fig.get_suptitle()
    with pytest.raises(RFCheckError, match="does not exist"):
        show_rf(report, str(tmp_path / "nothing"))


def test_show_rf_from_an_indexable_dataset(report):
    class Pairs:                       # what torchvision's ImageFolder looks like to show_rf
        classes = ["cat", "dog"]

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return torch.full((3, 12, 12), 0.2 * (i + 1)), i

    assert "image 1: dog" in show_rf(report, Pairs(), index=1).get_suptitle()


def test_flatten_linear_head_model_rf_layer_is_the_last_map():
    # conv 3x3 (RF 3 on a 30x30 map), flatten, Linear: the RF is taken at the conv's output
    r = rfcheck.analyze(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 2)), (3, 32, 32))
    assert model_rf_layer(r) == "0"
    assert unit_box(r, "0") == ((14, 16), (14, 16))     # centre unit 14 + 1 (start 1) -+ 1
    assert isinstance(show_rf(r), Figure)


def test_phase_dependent_layers_get_no_box():
    # a stride-2 transposed conv: units see 1 or 2 inputs by phase
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.ConvTranspose2d(1, 1, 2, stride=2, padding=0),
                          nn.Conv2d(1, 1, 3, padding=1))
    r = rfcheck.analyze(model, (1, 8, 8))
    assert r.layer("1").phase_dependent
    with pytest.raises(RFCheckError, match="phase"):
        unit_box(r, "1", (0, 0))
    with pytest.raises(RFCheckError, match="phase"):
        show_rf(r, layer="1")
    # plot() marks them
    fig = plot(r)
    assert list(_line(fig, "phase").get_xdata()) == [i for i, l in enumerate(r.layers) if l.phase_dependent]
