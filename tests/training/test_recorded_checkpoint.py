"""The committed checkpoint benchmarks/results/net_cifar10.pt is what the README's headline figure
rests on: it must still load into the current bundled design (an edit to the design without a new
run would silently orphan the figure), the README must quote the accuracy the checkpoint records,
and, where the real data is present, it must classify real test images like a trained net."""
from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

from rfcheck.loader import load as load_models
from training import checkpoint
from training import evaluate as evaluate_cli

ROOT = Path(__file__).resolve().parents[2]
CKPT = ROOT / "benchmarks" / "results" / "net_cifar10.pt"
REAL_ARCHIVE = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"


@pytest.fixture(scope="module")
def ck():
    return checkpoint.load(CKPT)        # weights_only=True inside


def test_checkpoint_loads_into_the_current_net(ck, monkeypatch):
    assert ck["model_spec"].startswith("models/")      # a bundled design, loaded from this checkout
    monkeypatch.chdir(ROOT)
    model = load_models(ck["model_spec"], meta=False)[0][1]
    checkpoint.load_model_state(model, ck["model"], CKPT)   # raises on any missing/extra key or shape
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == ck["params"] < 100_000
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_readme_quotes_the_checkpoint(ck):
    """The headline accuracy in the README's results paragraph is the checkpoint's final one (that
    of the weights it holds: the average's, in a run with weight averaging)."""
    last = ck["history"][-1]
    final = last["ema_test_acc"] if ck.get("weights") == "ema" else last["test_acc"]
    assert ck["epoch"] == ck["total_epochs"] == len(ck["history"])     # a finished run, not a snapshot
    assert ck["test_acc"] == final
    section = (ROOT / "README.md").read_text().split("### Recorded results", 1)[1].split("\n### ", 1)[0]
    assert f"**{final:.2f}%**" in section
    quoted = {float(x) for x in re.findall(r"\*\*(\d+\.\d+)%\*\*", section)}
    assert quoted == {final}, f"README bolds {sorted(quoted)}, the checkpoint says {final}"


@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason=f"{REAL_ARCHIVE} not present")
def test_checkpoint_on_a_slice_of_the_real_test_split(ck, tmp_path, capsys, monkeypatch, Image):   # decodes JPEGs
    per_class, taken = 30, {}
    extract = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(REAL_ARCHIVE) as tf:      # the archive lists test/ first, grouped by class
        for m in tf:
            parts = m.name.split("/")           # cifar10-jpeg/<split>/<class>/<NNNN>.jpg
            if m.isfile() and len(parts) == 4 and parts[1] == "test" and taken.get(parts[2], 0) < per_class:
                taken[parts[2]] = taken.get(parts[2], 0) + 1
                tf.extract(m, tmp_path / "slice", **extract)
            if len(taken) == 10 and all(v == per_class for v in taken.values()):
                break
    root = tmp_path / "slice" / "cifar10-jpeg"
    shutil.copytree(root / "test", root / "train")  # the loader needs a train split; evaluate reads test/
    monkeypatch.chdir(ROOT)
    rc = evaluate_cli.main([str(CKPT), "--data", str(root),
                            "--cache-dir", str(tmp_path / "cache"), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n"] == 10 * per_class
    # the run scored 88.36% on all 10,000; on 300 images the standard error is ~1.9 points, so a
    # trained net lands far above 75% and an untrained or mismatched one (~10%) far below
    assert res["accuracy"] >= 75.0, res
