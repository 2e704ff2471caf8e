"""Issue 20's trainer: the same run for any worker count, uint8 batches normalised on the device,
no host read per step, bf16 autocast, time_s in the log, weight averaging (--ema), the refine
phase and mixup/cutmix, each resumable exactly.  Tiny generated data (test_training's fixtures)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training import engine
from training import evaluate as evaluate_cli
from training import train as train_cli

from .test_training import base_args, dataset, work  # noqa: F401  (fixtures)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_worker_count_does_not_change_the_run(work, dataset):  # noqa: F811
    # per-sample seeds: in-process and two persistent worker processes give bit-identical weights
    assert train_cli.main(base_args(work, dataset, "--epochs", "2", "--out", "w0")) == 0
    args = base_args(work, dataset, "--epochs", "2", "--out", "w2")
    args[args.index("--workers") + 1] = "2"
    assert train_cli.main(args) == 0
    a = torch.load(work / "w0" / "last.pt", weights_only=True)
    b = torch.load(work / "w2" / "last.pt", weights_only=True)
    assert same_weights(a["model"], b["model"]) and a["sampling"] == "keyed-1"
    log = rows(work / "w0" / "log.jsonl")
    assert all(r["time_s"] > 0 for r in log) and log[1]["time_s"] >= log[0]["time_s"]


def test_ema_refine_mixup_resume_exactly(work, dataset, monkeypatch, capsys):  # noqa: F811
    recipe = ("--epochs", "3", "--ema", "0.9", "--refine-epochs", "2", "--refine-aug-scale", "0.4",
              "--mixup", "0.4", "--cutmix", "1.0", "--mix-prob", "0.8", "--aug-affine", "1", "--aug-cutout", "1")
    assert train_cli.main(base_args(work, dataset, *recipe, "--out", "straight")) == 0
    log = rows(work / "straight" / "log.jsonl")
    assert [r["aug_scale"] for r in log] == [1.0, 0.7, 0.4]
    assert all({"test_acc", "ema_test_acc", "time_s"} <= r.keys() for r in log)
    a = torch.load(work / "straight" / "last.pt", weights_only=True)
    assert a["weights"] == "ema" and a["test_acc"] == log[-1]["ema_test_acc"] and a["ema_updates"] == 3 * 7
    assert not same_weights(a["model"], a["model_raw"])
    summary = json.loads((work / "straight" / "summary.json").read_text())
    assert summary["final_test_acc"] == round(log[-1]["ema_test_acc"], 3) and summary["weights"] == "ema"
    assert "refine" in summary["augmentation"] and "mixup alpha 0.4 or cutmix alpha 1" in summary["augmentation"]
    # training.evaluate reports the checkpoint's "model": the average
    capsys.readouterr()
    assert evaluate_cli.main([str(work / "straight" / "last.pt"), "--data", str(dataset), "--json",
                              "--cache-dir", str(work / "cache")]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(a["test_acc"], abs=1e-6)

    real = engine.train_one_epoch

    def dies_in_epoch_3(*a, **k):
        if a[6] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(engine, "train_one_epoch", dies_in_epoch_3)
    assert train_cli.main(base_args(work, dataset, *recipe, "--out", "killed")) == 130
    monkeypatch.setattr(engine, "train_one_epoch", real)
    capsys.readouterr()
    for changed in (("--refine-aug-scale", "0.5"), ("--ema", "0.99"), ("--mixup", "0.2")):
        args = base_args(work, dataset, *recipe, "--out", "killed", "--resume")
        args[args.index(changed[0]) + 1] = changed[1]
        assert train_cli.main(args) == 2
        assert f"{changed[0]} {changed[1]} differs from the run being resumed" in capsys.readouterr().err
    # resumed with two worker processes: the same batches, draws and mixes
    args = base_args(work, dataset, *recipe, "--out", "killed", "--resume")
    args[args.index("--workers") + 1] = "2"
    assert train_cli.main(args) == 0
    b = torch.load(work / "killed" / "last.pt", weights_only=True)
    assert same_weights(a["model"], b["model"]) and same_weights(a["model_raw"], b["model_raw"])
    assert [r["ema_test_loss"] for r in a["history"]] == [r["ema_test_loss"] for r in b["history"]]


def test_old_checkpoints_resume_without_the_new_settings(work, dataset, monkeypatch, capsys):  # noqa: F811
    # a checkpoint written before --ema/--refine-*/--mixup existed ran without them: resuming it
    # plainly is allowed (with a note that the draws differ from the old trainer's), with --ema refused
    real = engine.train_one_epoch

    def dies_in_epoch_2(*a, **k):
        if a[6] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(engine, "train_one_epoch", dies_in_epoch_2)
    assert train_cli.main(base_args(work, dataset, "--epochs", "2", "--out", "old")) == 130
    monkeypatch.setattr(engine, "train_one_epoch", real)
    ck = torch.load(work / "old" / "last.pt", weights_only=True)
    for k in ("ema", "refine_epochs", "refine_aug_scale", "mixup", "cutmix", "mix_prob"):
        del ck["args"][k]
    del ck["sampling"]
    torch.save(ck, work / "old" / "last.pt")
    capsys.readouterr()
    assert train_cli.main(base_args(work, dataset, "--epochs", "2", "--out", "old", "--resume")) == 0
    assert "drew its augmentations per epoch" in capsys.readouterr().out
    assert train_cli.main(base_args(work, dataset, "--epochs", "2", "--out", "old", "--resume", "--ema", "0.9")) == 2
    assert "--ema 0.9" in capsys.readouterr().err   # refused: no average to continue


def test_bf16_autocast_on_the_cpu(work, dataset, capsys):  # noqa: F811
    assert train_cli.main(base_args(work, dataset, "--epochs", "1", "--out", "bf", "--amp", "bf16")) == 0
    assert "amp bf16" in capsys.readouterr().out
    assert rows(work / "bf" / "log.jsonl")[0]["train_loss"] > 0
    with pytest.raises(SystemExit):
        train_cli.parse_args(["m.py", "--data", "d", "--amp", "fp8"])
    assert train_cli.parse_args(["m.py", "--data", "d", "--no-amp"]).amp == "off"
    assert engine.amp_dtype(torch.device("cuda"), True) is torch.float16       # the old --amp meaning
    assert engine.amp_dtype(torch.device("cpu"), "bf16") is torch.bfloat16
    assert engine.amp_dtype(torch.device("cpu"), "off") is None


def test_normalize_on_the_device_is_bit_identical_to_the_float_path():
    from training import data
    rng = np.random.default_rng(0)
    split = data.Split(rng.integers(0, 256, (6, 5, 7, 3), dtype=np.uint8), np.arange(6) % 3)
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    want = torch.stack([data.make_torch_dataset(split, mean, std)[i][0] for i in range(6)])
    norm = engine.Normalize(mean, std, torch.device("cpu"))
    for cl in (False, True):
        got = norm(torch.from_numpy(split.images), cl)
        assert torch.equal(got, want) and got.is_contiguous(memory_format=torch.channels_last if cl else
                                                            torch.contiguous_format)


def test_no_host_read_per_step(monkeypatch):
    # 120 steps: the loss and accuracy are read once at the end, plus one non-finite check per 50 steps
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    batches = [(torch.randint(0, 256, (4, 8, 8, 3), dtype=torch.uint8), torch.randint(0, 4, (4,)))
               for _ in range(120)]
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    reads = {"n": 0}
    for name in ("item", "tolist", "__float__", "__int__", "__bool__", "cpu"):
        real = getattr(torch.Tensor, name)

        def counted(self, *a, _real=real, **k):
            reads["n"] += 1
            return _real(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, counted)
    ema = engine.ModelEMA(model, 0.99)
    r = engine.train_one_epoch(model, batches, opt, None, None, torch.device("cpu"), 1,
                               normalize=engine.Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu")), ema=ema)
    monkeypatch.undo()
    assert r["n"] == 480 and reads["n"] <= 8, reads


def test_ema_averages_weights_and_batchnorm_buffers():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    ema = engine.ModelEMA(model, 0.5)
    w0 = ema.module[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(2.0)
        model[1].num_batches_tracked.fill_(7)
    ema.update()   # decay min(0.5, 1/10) = 0.1 on the first update
    assert torch.allclose(ema.module[0].weight, 0.1 * w0 + 0.9 * model[0].weight)
    assert torch.allclose(ema.module[1].running_mean, torch.full((2,), 1.8))
    assert int(ema.module[1].num_batches_tracked) == 7 and ema.updates == 1
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_mix_batch_mixup_and_cutmix():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    y = torch.tensor([0, 1])
    xm, ya, yb, lam = engine.mix_batch(x, y, engine.MixConfig(mixup=1.0), np.random.default_rng(1))
    perm = [0, 1] if torch.equal(yb, y) else [1, 0]
    assert torch.allclose(xm, lam * x + (1 - lam) * x[perm]) and 0 < lam < 1
    for seed in range(5):
        xc, ya, yb, lam = engine.mix_batch(x, y, engine.MixConfig(cutmix=1.0), np.random.default_rng(seed))
        perm = [0, 1] if torch.equal(yb, y) else [1, 0]
        if perm == [1, 0]:   # the changed pixels are the pasted box: its share of the image is 1 - lam
            assert float((xc != x).float().mean()) == pytest.approx(1 - lam)
    # off, or prob 0: untouched
    assert engine.mix_batch(x, y, engine.MixConfig(), np.random.default_rng(0))[3] == 1.0
    assert engine.mix_batch(x, y, engine.MixConfig(mixup=1.0, prob=0.0), np.random.default_rng(0))[3] == 1.0


def test_refine_schedule_and_option_checks():
    from training import augment
    s = augment.RefineSchedule(10, 4, 0.5)
    assert [s(e) for e in range(10)] == [1.0] * 6 + [0.875, 0.75, 0.625, 0.5]
    cfg = augment.scaled(augment.AugConfig(hflip=0.5, affine=0.3, cutout=0.25, gray=0.1), 0.5)
    assert (cfg.hflip, cfg.affine, cfg.cutout, cfg.gray) == (0.5, 0.15, 0.125, 0.1)
    assert train_cli.refine_epoch_count(0.15, 100) == 15 and train_cli.refine_epoch_count(15, 100) == 15
    with pytest.raises(train_cli.UsageError, match="longer than the run"):
        train_cli.refine_epoch_count(20, 10)
    with pytest.raises(SystemExit):
        train_cli.parse_args(["m.py", "--data", "d", "--ema", "1.0"])


def test_epoch_sampler_splits_ranks_like_distributed_sampler():
    full = list(engine.EpochSampler(10, 3, world=1))
    parts = [list(engine.EpochSampler(10, 3, world=3, rank=r)) for r in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    assert sorted(i for p in parts for _, i in p) == sorted(i for _, i in full[:9])
    s = engine.EpochSampler(10, 3)
    s.set_epoch(4)
    keys = list(s)
    assert {e for e, _ in keys} == {4} and [i for _, i in keys] != [i for _, i in full]
