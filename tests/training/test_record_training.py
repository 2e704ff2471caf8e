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
