#!/usr/bin/env bash
# Issue 20's GPU run: one command of about 8 minutes on one H100/H200 machine (16 cores, no internet).
#   bash benchmarks/gpu_run.sh            # from the repository root; OUT=folder to choose the output folder
#   QUICK=1 bash benchmarks/gpu_run.sh    # (or --quick / --dry-run) a tiny CPU version in seconds, for tests
# Assumptions (nothing is downloaded): a Python with torch, numpy, albumentations and Pillow is present:
# $PYTHON, else .venv/bin/python or ../.venv/bin/python here, else python3; the data is $DATA, else
# data/cifar10-jpeg.tar.gz, shared/datasets/... or ../shared/datasets/cifar10-jpeg.tar.gz.
# Writes under $OUT: throughput.md (step variants), tta/ (the time-to-87% run: its log's time_s),
# seed0/ seed1/ seed2/ (three seeds of the recipe, run side by side), results.json.  NOT RUN YET on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${QUICK:-0}
for a in "$@"; do case "$a" in --quick|--dry-run) QUICK=1;; esac; done
PY=${PYTHON:-}
for c in .venv/bin/python ../.venv/bin/python python3; do
  if [ -z "$PY" ] && command -v "$c" >/dev/null && "$c" -c "import torch, albumentations" 2>/dev/null; then PY=$c; fi
done
[ -n "$PY" ] || { echo "gpu_run: no Python with torch and albumentations found (set PYTHON)" >&2; exit 2; }
DATA=${DATA:-}
for d in data/cifar10-jpeg.tar.gz shared/datasets/cifar10-jpeg.tar.gz ../shared/datasets/cifar10-jpeg.tar.gz; do
  if [ -z "$DATA" ] && [ -e "$d" ]; then DATA=$d; fi
done
[ -n "$DATA" ] || { echo "gpu_run: no dataset (set DATA)" >&2; exit 2; }
OUT=${OUT:-runs/gpu_run-$(date -u +%Y%m%d-%H%M)}
mkdir -p "$OUT"
MODEL=${MODEL:-models/net_v2.py:NetV2}
if [ "$QUICK" = 1 ]; then
  DEV=(--device cpu --threads 1); COMMON=(--batch-size 16 --workers 2 --quiet --no-plots --limit-per-class ${LIMIT:-8})
  TTA=(--epochs 2); SEEDS=(--epochs 2); VARIANTS=fp32; VB=(--batch-size 8 --batches 2 --repeats 1)
else
  DEV=(--device cuda --amp bf16); COMMON=(--batch-size 512 --lr 0.4 --workers 5 --quiet --no-plots --compile)
  TTA=(--epochs 24 --ema 0.999); SEEDS=(--epochs 40 --ema 0.999 --refine-epochs 0.15)
  VARIANTS=fp32,bf16,compile,compile+bf16; VB=(--batch-size 512 --batches 20 --repeats 5)
fi
RECIPE=(--weight-decay 5e-4 --label-smoothing 0.05 --aug-cutout 0.25 --aug-affine 0.3)
"$PY" -m benchmarks.train_throughput --variants "$VARIANTS" --device "${DEV[1]}" "${VB[@]}" --data "$DATA" \
  --out "$OUT/throughput.md" > "$OUT/throughput.log" 2>&1
"$PY" -m training.train "$MODEL" --data "$DATA" "${DEV[@]}" "${COMMON[@]}" "${RECIPE[@]}" "${TTA[@]}" \
  --out "$OUT/tta" > "$OUT/tta.log" 2>&1
pids=()
for s in 0 1 2; do
  "$PY" -m training.train "$MODEL" --data "$DATA" "${DEV[@]}" "${COMMON[@]}" "${RECIPE[@]}" "${SEEDS[@]}" \
    --seed "$s" --out "$OUT/seed$s" > "$OUT/seed$s.log" 2>&1 & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = [json.loads(x) for x in (out / "tta" / "log.jsonl").read_text().splitlines()]
hit = [r for r in rows if max(r["test_acc"], r.get("ema_test_acc", 0)) >= 87.0]
res = {"time_to_87_s": hit[0]["time_s"] if hit else None, "tta_final": rows[-1],
       "seeds": {s: json.loads((out / f"seed{s}" / "summary.json").read_text())["final_test_acc"] for s in range(3)}}
(out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
print(json.dumps(res))
PY
