"""rfcheck against the peer tools, in one command (issue #5): is each tool's receptive field (RF),
jump, parameter count and MAC count right, how long does a call take and how much memory does
it need, on torchvision classifiers, the designs in models/, small nets for the hard cases
(dilation, transposed conv, functional ops with residual and concat branches, asymmetric
kernels on a non-square input, weight sharing, Conv1d, Conv3d) and scale runs (resnet50 at
224 / 1024 / 2048, a plain stack of 1,000 convs; rfcheck alone at several depths).

    python -m benchmarks.analyzer            # everything: ~15-20 min on 2 idle CPU cores
    python -m benchmarks.analyzer --quick    # smoke test: 2 small models, 1 round, 1 repeat, no scale runs
    python -m benchmarks.analyzer --models resnet18,dilated --tools rfcheck,torchscan --repeats 3

Writes benchmarks/results/analyzer.md and analyzer_speed.png (--out changes the folder).

models.py: the model set and the hand-derived RFs; peers.py: one adapter per tool (how each
number is read); reference.py: the references; runner.py: timing, memory, rounds;
verdicts.py: right / wrong and the targets; report.py: the markdown and the plot.
"""
import os

# Before torch is imported anywhere in the process: every tool runs on one thread (runner.py).
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
