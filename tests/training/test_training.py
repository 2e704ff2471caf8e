"""The trainer: the rules gate, a short run that learns, exact resume, bad checkpoints, NaN
stop, evaluate, and DDP with 2 CPU processes.  All on tiny generated data."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training import evaluate as evaluate_cli
from training import train as train_cli

ROOT = Path(__file__).resolve().parents[2]

SMALL = '''
import torch.nn as nn

class Small(nn.Module):
    """conv 3x3 s2 (3->8), conv 3x3 s2 (8->16), GAP, 1x1 conv to 3 classes: RF 3, 7."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.o = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 3, 1), nn.Flatten())

    def forward(self, x):
        return self.o(self.c2(self.c1(x)))

class NaNNet(Small):
    def forward(self, x):
        return super().forward(x) * float("nan")
'''


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, Image) -> Path:
    """ImageFolder, 3 classes told apart by colour: 40 train and 12 test 16x16 PNGs each."""
    root = tmp_path_factory.mktemp("data") / "toy"
    rng = np.random.default_rng(0)
    colours = {"blue": (40, 60, 200), "green": (50, 190, 60), "red": (210, 50, 40)}
    for split, n in (("train", 40), ("test", 12)):
        for name, rgb in colours.items():
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                img = np.clip(np.array(rgb) + rng.normal(0, 40, (16, 16, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i:03d}.png")
    return root


@pytest.fixture
def work(tmp_path, monkeypatch, albumentations):
    """A folder holding small.py; every test that runs the trainer takes it, and the trainer imports
    training.augment (albumentations) before its rules gate."""
    (tmp_path / "small.py").write_text(SMALL)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def base_args(work: Path, dataset: Path, *extra: str) -> list[str]:
    return ["small.py:Small", "--data", str(dataset), "--isolated", "--input-size", "3,16,16", "--epochs", "2",
            "--batch-size", "16", "--workers", "0", "--threads", "1", "--quiet", "--no-plots",
            "--cache-dir", str(work / "cache"), "--lr", "0.05", *extra]


def test_rules_gate_refuses_before_touching_data(work, capsys):
    rc = train_cli.main(["small.py:Small", "--data", str(work / "does-not-exist"), "--isolated",
                         "--input-size", "3,16,16", "--min-rf", "100"])
    out, err = capsys.readouterr()
    assert rc == 1  # a missing --data would be exit 2: the data was never looked at
    assert "[FAIL] min_rf: model RF 7x7" in out and "not training" in err


def test_gate_applies_a_registered_design_s_own_rules_and_input_size(work, capsys):
    # as for `rfcheck`: the design's registered rules beat the config file, and its registered
    # input size is used when --input-size is not given
    (work / "registered.py").write_text(SMALL + """
from rfcheck.registry import register_model
register_model(name="small_reg", rules={"max_params": 100}, input_size=(3, 24, 24))(Small)
""")
    rc = train_cli.main(["registered.py:Small", "--data", str(work / "does-not-exist"), "--isolated"])
    out, err = capsys.readouterr()
    assert rc == 1 and "input: 3x24x24" in out
    assert "[FAIL] max_params: parameters 1,491 > 100" in out
    rc = train_cli.main(["registered.py:Small", "--data", str(work / "does-not-exist"), "--isolated",
                         "--max-params", "10000", "--input-size", "3,16,16"])
    out, err = capsys.readouterr()
    assert rc == 2 and "input: 3x16x16" in out and "does-not-exist" in err   # passed: then the data


def test_no_check_trains_loudly(work, dataset, capsys):
    rc = train_cli.main(base_args(work, dataset, "--min-rf", "100", "--no-check", "--epochs", "1", "--out", "r"))
    out, err = capsys.readouterr()
    assert rc == 0 and "WARNING: --no-check" in err and (work / "r" / "last.pt").exists()


def test_short_run_learns_and_writes_everything(work, dataset, capsys):
    rc = train_cli.main(base_args(work, dataset, "--epochs", "4", "--out", "run", "--lr", "0.2"))
    out, _ = capsys.readouterr()
    assert rc == 0, out
    rows = [json.loads(line) for line in (work / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["params"] == 224 + 16 + 1168 + 32 + 51 and summary["rf"] == [7, 7]
    assert summary["best_test_acc"] >= rows[0]["test_acc"] and summary["best_test_acc"] > 60  # colours: easy
    assert (work / "run" / "best.pt").exists() and "epoch   4/4" in out


def test_plots(work, dataset):
    pytest.importorskip("matplotlib")
    args = [a for a in base_args(work, dataset, "--epochs", "1", "--out", "p") if a != "--no-plots"]
    assert train_cli.main(args) == 0
    for name in ("curves.png", "per_class.png", "confusion.png"):
        assert (work / "p" / name).read_bytes()[:4] == b"\x89PNG"


def test_resume_continues_exactly(work, dataset, monkeypatch, capsys):
    assert train_cli.main(base_args(work, dataset, "--out", "straight")) == 0
    torch.randn(5)  # whatever the process did before, --seed alone fixes the run (initial weights too)
    # the same run killed during epoch 2 ...
    from training import engine
    real = engine.train_one_epoch

    def dies_in_epoch_2(*a, **k):
        if a[6] == 2:  # the epoch argument (1-based)
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(engine, "train_one_epoch", dies_in_epoch_2)
    assert train_cli.main(base_args(work, dataset, "--out", "killed")) == 130
    monkeypatch.setattr(engine, "train_one_epoch", real)
    assert "--resume" in capsys.readouterr().err
    # ... refuses to start over or to change its recipe, then resumes (from another cache folder, which does
    # not change what is computed) and ends with the same weights as the straight run
    assert train_cli.main(base_args(work, dataset, "--out", "killed")) == 2
    capsys.readouterr()
    assert train_cli.main(base_args(work, dataset, "--out", "killed", "--resume", "--label-smoothing", "0.2")) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "--label-smoothing 0.2 differs from the run being resumed (0.1)" in err[0], err
    resumed = base_args(work, dataset, "--out", "killed", "--resume", "--cache-dir", str(work / "c2"))
    assert train_cli.main(resumed) == 0
    a = torch.load(work / "straight" / "last.pt", weights_only=True)
    b = torch.load(work / "killed" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["test_loss"] for r in a["history"]] == [r["test_loss"] for r in b["history"]]
    # the two process runs are both on record, in the checkpoint and the summary
    assert [(g["from_epoch"], g["to_epoch"]) for g in b["segments"]] == [(0, 1), (1, 2)]
    assert [(g["from_epoch"], g["to_epoch"]) for g in a["segments"]] == [(0, 2)]
    summary = json.loads((work / "killed" / "summary.json").read_text())
    assert summary["seeded_init"] is True and b["seeded_init"] is True
    assert len(summary["segments"]) == 2 and summary["wall_seconds"] >= sum(g["seconds"] for g in b["segments"]) - 1


def test_corrupt_and_mismatched_checkpoints(work, dataset, capsys):
    (work / "bad").mkdir()
    (work / "bad" / "last.pt").write_bytes(b"not a checkpoint at all")
    rc = train_cli.main(base_args(work, dataset, "--out", "bad", "--resume"))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert rc == 2 and len(errors) == 1 and "last.pt" in errors[0] and "corrupt" in errors[0]
    # a truncated real checkpoint
    assert train_cli.main(base_args(work, dataset, "--epochs", "1", "--out", "cut")) == 0
    whole = (work / "cut" / "last.pt").read_bytes()
    (work / "cut" / "last.pt").write_bytes(whole[: len(whole) // 2])
    capsys.readouterr()
    rc = evaluate_cli.main([str(work / "cut" / "last.pt"), "--data", str(dataset)])
    err = capsys.readouterr().err
    assert rc == 2 and "corrupt" in err and len(err.strip().splitlines()) == 1
    rc = evaluate_cli.main([str(work / "bad" / "last.pt"), "--data", str(dataset)])
    assert rc == 2 and "corrupt" in capsys.readouterr().err
    # a checkpoint of another model
    assert train_cli.main(base_args(work, dataset, "--epochs", "1", "--out", "ok")) == 0
    capsys.readouterr()
    (work / "other.py").write_text("import torch.nn as nn\nclass Other(nn.Module):\n    def __init__(self):\n"
                                   "        super().__init__(); self.c = nn.Conv2d(3, 5, 1)\n"
                                   "    def forward(self, x): return self.c(x).mean((2, 3))\n")
    rc = evaluate_cli.main([str(work / "ok" / "last.pt"), "--data", str(dataset), "--model", "other.py:Other"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not match the model Other" in err


def test_nan_loss_stops_with_epoch_and_step(work, dataset, capsys):
    args = base_args(work, dataset, "--out", "nan")
    args[0] = "small.py:NaNNet"
    rc = train_cli.main(args)
    err = capsys.readouterr().err
    assert rc == 3 and "loss is nan at epoch 1, step 0" in err


def test_evaluate_json(work, dataset, capsys):
    assert train_cli.main(base_args(work, dataset, "--epochs", "1", "--out", "e")) == 0
    capsys.readouterr()
    rc = evaluate_cli.main([str(work / "e" / "last.pt"), "--data", str(dataset), "--json", "--tta",
                            "--cache-dir", str(work / "cache")])
    out = json.loads(capsys.readouterr().out)
    ck = torch.load(work / "e" / "last.pt", weights_only=True)
    assert rc == 0 and out["n"] == 36 and 0 <= out["accuracy"] <= 100 and out["tta"] is True
    # without TTA evaluate reproduces the accuracy logged at the end of training
    rc = evaluate_cli.main([str(work / "e" / "last.pt"), "--data", str(dataset), "--json",
                            "--cache-dir", str(work / "cache")])
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(ck["test_acc"], abs=1e-6)


def test_weights_only_copy_evaluates_the_same_and_is_not_resumed(work, dataset, capsys):
    """What benchmarks/record_training.py commits: the reported weights and the run's record, no
    optimizer or random state; it evaluates to the same accuracy and --resume refuses it."""
    from training import checkpoint

    assert train_cli.main(base_args(work, dataset, "--epochs", "1", "--ema", "0.5", "--out", "w")) == 0
    full = checkpoint.load(work / "w" / "last.pt")
    checkpoint.save(work / "slim" / "last.pt", checkpoint.weights_only(full))
    slim = checkpoint.load(work / "slim" / "last.pt")
    assert not set(checkpoint.RESUME_ONLY) & set(slim) and slim["resumable"] is False
    assert all(torch.equal(slim["model"][k], full["model"][k]) for k in full["model"])   # the EMA weights
    assert (work / "slim" / "last.pt").stat().st_size < 0.6 * (work / "w" / "last.pt").stat().st_size
    capsys.readouterr()
    accs = []
    for run in ("w", "slim"):
        assert evaluate_cli.main([str(work / run / "last.pt"), "--data", str(dataset), "--json",
                                  "--cache-dir", str(work / "cache")]) == 0
        accs.append(json.loads(capsys.readouterr().out)["accuracy"])
    assert accs[0] == accs[1] == pytest.approx(full["test_acc"], abs=1e-6)
    rc = train_cli.main(base_args(work, dataset, "--epochs", "1", "--ema", "0.5", "--out", "slim", "--resume"))
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert rc == 2 and len(err) == 1 and "holds weights only" in err[0] and "cannot be resumed" in err[0], err


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_ddp_two_cpu_processes(work, dataset):
    torchrun = str(Path(sys.executable).parent / "torchrun") if (Path(sys.executable).parent / "torchrun").exists() \
        else shutil.which("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([torchrun, "--nproc_per_node=2", "--master_port=29517", "-m", "training.train",
                        *base_args(work, dataset, "--out", "ddp", "--device", "cpu")],
                       cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    ck = torch.load(work / "ddp" / "last.pt", weights_only=True)
    assert ck["epoch"] == 2 and "2 process(es)" in r.stdout
    # each process saw half of the 120 training images: 3 full batches of 16 per epoch, not 7
    assert r.stdout.count("epoch   1/2") == 1  # only rank 0 logs


def test_weight_decay_skips_norm_and_bias():
    # BatchNorm scales/shifts and biases get no decay unless --decay-norm-bias asks for it
    nn = torch.nn
    m = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4), nn.Linear(4, 2))
    decay, plain = train_cli.param_groups(m, 5e-4)
    assert decay["weight_decay"] == 5e-4 and plain["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [m[0].weight.shape, m[2].weight.shape]
    assert len(plain["params"]) == 4                          # conv bias, BN weight + bias, linear bias
    decay, plain = train_cli.param_groups(m, 5e-4, decay_norm_bias=True)
    assert len(decay["params"]) == 6 and plain["params"] == []


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Fashion-MNIST's Debian package (dataset-fashion-mnist) is not installed")
def test_fashion_mnist_end_to_end(tmp_path, monkeypatch, capsys, albumentations):
    # the bundled 1-channel design, checked at its registered 1x28x28 against this repository's
    # setup.cfg (the brief), trained for one epoch on a slice of the real package and evaluated
    monkeypatch.chdir(ROOT)
    rc = train_cli.main(["models/net_fashion.py:NetFashion", "--data", "/usr/share/datasets/fashion-mnist",
                         "--limit-per-class", "30", "--epochs", "1", "--batch-size", "32", "--workers", "0",
                         "--threads", "1", "--quiet", "--no-plots", "--cache-dir", str(tmp_path / "cache"),
                         "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "input: 1x28x28" in out and "rules: 6 passed, 0 failed" in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["train_images"] == 300 and summary["params"] == 33_658
    if (ROOT / ".git").exists():   # the design's commit, so the record survives later edits to models/
        import re
        assert re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?", summary["source"]), summary["source"]
    rc = evaluate_cli.main([str(tmp_path / "run" / "last.pt"), "--data", "/usr/share/datasets/fashion-mnist",
                            "--limit-per-class", "30", "--cache-dir", str(tmp_path / "cache"), "--json"])
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and doc["n"] == 300 and 0 <= doc["accuracy"] <= 100
