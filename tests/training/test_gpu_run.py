"""benchmarks/gpu_run.sh in its QUICK mode: the whole script (throughput, the time-to-accuracy run
with worker processes, three seeds side by side, results.json) on a tiny generated dataset, CPU."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_gpu_run_quick(tmp_path, albumentations, Image):
    data = tmp_path / "toy"
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("test", 6)):
        for c, rgb in enumerate(((40, 60, 200), (50, 190, 60), (210, 50, 40))):
            d = data / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(n):
                img = np.clip(np.array(rgb) + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i}.png")
    env = dict(os.environ, QUICK="1", DATA=str(data), OUT=str(tmp_path / "out"), PYTHON=sys.executable,
               LIMIT="24", RFCHECK_DATA_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    r = subprocess.run(["bash", "benchmarks/gpu_run.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=240)
    logs = "".join((p.read_text()[-800:] for p in (tmp_path / "out").glob("*.log")))
    assert r.returncode == 0, r.stderr[-2000:] + logs
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(res["seeds"]) == {"0", "1", "2"} and "time_s" in res["tta_final"]
    assert (tmp_path / "out" / "throughput.md").is_file() and (tmp_path / "out" / "seed2" / "last.pt").is_file()
