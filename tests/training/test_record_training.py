"""benchmarks/record_training.py writes the results table that the README quotes, so its seed
summary is checked here against figures worked out by hand."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def record():
    spec = importlib.util.spec_from_file_location("record_training", ROOT / "benchmarks" / "record_training.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(results: Path, name: str, seed: int, final: float, best: float, cmd: str, params: int = 98090) -> None:
    (results / name).mkdir(parents=True)
    (results / name / "summary.json").write_text(json.dumps({
        "model": "models/net.py:Net", "params": params, "rf": [67, 67], "data": "ImageFolder x", "epochs": 100,
        "best_test_acc": best, "best_epoch": 99, "final_test_acc": final, "wall_seconds": 600.0, "seed": seed,
        "seeded_init": True, "command": cmd, "machine": "m", "date": "d", "augmentation": "hflip p=0.5"}))


CMD = "python -m training.train models/net.py:Net --data D --epochs 100 --seed {s} --weight-decay 5e-4 --out runs/r{s}"


def test_seeds_of_one_recipe_are_summarised(tmp_path, record):
    _run(tmp_path, "a", 0, 88.36, 88.36, CMD.format(s=0))
    _run(tmp_path, "b", 1, 88.07, 88.11, CMD.format(s=1) + " --resume")
    _run(tmp_path, "c", 2, 87.50, 87.70, CMD.format(s=2))
    # same seed flags but another recipe (weight decay) or another design (params): not in the group
    _run(tmp_path, "d", 3, 80.00, 80.00, CMD.format(s=3).replace("5e-4", "2.5e-4"))
    _run(tmp_path, "e", 4, 70.00, 70.00, CMD.format(s=4), params=50000)
    record.write_table(tmp_path)
    table = (tmp_path / "training_cifar10.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| [a](a/), ")]
    assert len(rows) == 1, table
    # by hand: mean (88.36 + 88.07 + 87.50) / 3 = 87.9767; deviations 0.3833, 0.0933, -0.4767;
    # sample sd sqrt((0.14694 + 0.00871 + 0.22721) / 2) = 0.4376; best mean (88.36 + 88.11 + 87.70) / 3 = 88.0567
    assert rows[0] == "| [a](a/), [b](b/), [c](c/) | 0, 1, 2 | 87.98% (0.44) | 87.50% | 88.36% | 88.06% |"
    assert "[d](d/)," not in table and "[e](e/)," not in table


def test_no_summary_without_a_second_seed(tmp_path, record):
    _run(tmp_path, "a", 0, 88.36, 88.36, CMD.format(s=0))
    _run(tmp_path, "b", 0, 88.36, 88.36, CMD.format(s=0).replace("runs/r0", "runs/again"))
    _run(tmp_path, "c", 1, 80.00, 80.00, CMD.format(s=1).replace("--epochs 100", "--epochs 50"))
    record.write_table(tmp_path)
    assert "more than one seed" not in (tmp_path / "training_cifar10.md").read_text()


@pytest.fixture(scope="module")
def seeds():
    import sys
    sys.path.insert(0, str(ROOT))       # benchmarks.record_seeds imports benchmarks.record_training
    from benchmarks import record_seeds
    return record_seeds


def _recorded(root: Path, name: str, seed: int, acc: float, cmd: str, size: int = 1000, **check) -> None:
    results = root / "benchmarks" / "results"
    _run(results, name, seed, acc + 0.5, acc + 0.6, cmd)
    summary = json.loads((results / name / "summary.json").read_text())
    (results / name / "summary.json").write_text(json.dumps({**summary, "test_images": 10000}))
    (results / name / "checkpoint.pt").write_bytes(b"x" * size)
    (results / name / "evaluate.json").write_text(json.dumps(
        {"accuracy": acc, "n": 10000, "tta": False, "checkpoint": f"benchmarks/results/{name}/checkpoint.pt",
         **check}))


def test_seeds_json_takes_evaluate_s_figures(tmp_path, seeds):
    for s, acc in ((0, 89.12), (2, 88.70), (1, 89.40)):
        _recorded(tmp_path, f"r{s}", s, acc, CMD.format(s=s) + (" --resume" if s == 1 else ""))
    rec = seeds.seeds_record(["r0", "r2", "r1"], tmp_path / "benchmarks" / "results", tmp_path)
    # the recipe is the command without --seed, --out and --resume
    assert rec["recipe"] == ("python -m training.train models/net.py:Net --data D --epochs 100 "
                             "--weight-decay 5e-4")
    # final_acc is evaluate.json's accuracy (the summary's final figure was set 0.5 higher)
    assert rec["runs"] == [{"seed": 0, "checkpoint": "r0/checkpoint.pt", "final_acc": 89.12},
                           {"seed": 1, "checkpoint": "r1/checkpoint.pt", "final_acc": 89.40},
                           {"seed": 2, "checkpoint": "r2/checkpoint.pt", "final_acc": 88.70}]
    # by hand: (89.12 + 89.40 + 88.70) / 3 = 89.0733; deviations 0.0467, 0.3267, -0.3733 -> sd 0.3523
    assert (rec["mean"], rec["sd"], rec["min"]) == (89.073, 0.352, 88.70)


@pytest.mark.parametrize("case, why", [
    ("recipe", "different recipes"), ("seed", "repeated seed"), ("big", "under 1 MB"),
    ("tta", "plain pass"), ("outside", "not a checkpoint under")])
def test_seeds_json_refuses(tmp_path, seeds, case, why):
    _recorded(tmp_path, "a", 0, 89.0, CMD.format(s=0))
    cmd = CMD.format(s=1).replace("5e-4", "2.5e-4") if case == "recipe" else CMD.format(s=0 if case == "seed" else 1)
    extra = {"tta": True} if case == "tta" else {"checkpoint": "runs/b/last.pt"} if case == "outside" else {}
    _recorded(tmp_path, "b", 0 if case == "seed" else 1, 89.0, cmd, size=1_000_001 if case == "big" else 10, **extra)
    with pytest.raises(ValueError, match=why):
        seeds.seeds_record(["a", "b"], tmp_path / "benchmarks" / "results", tmp_path)


def test_seeds_json_names_a_broken_record(tmp_path, seeds):
    _recorded(tmp_path, "a", 0, 89.0, CMD.format(s=0))
    (tmp_path / "benchmarks" / "results" / "a" / "evaluate.json").write_text("{not json")
    with pytest.raises(ValueError, match="a: summary.json or evaluate.json is not a recorded run's"):
        seeds.seeds_record(["a"], tmp_path / "benchmarks" / "results", tmp_path)
