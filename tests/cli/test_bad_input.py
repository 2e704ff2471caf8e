"""Bad input gets one clear error line naming the thing and the value, exit 2, before any work:
malformed builder arguments, timm without timm, an unknown --forbid type, unwritable output
paths (rfcheck --plot, the trainer's --out/--cache-dir), trainer arguments out of range, an
input size with a batch dimension or the wrong channel count.  No traceback, never
"internal error" for a user's mistake."""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cli.common import assert_error, run
from tests.cli.common import error_line as one_line

ROOT = Path(__file__).resolve().parents[2]
NET = str(ROOT / "models" / "net.py")

SMALL = '''
import torch.nn as nn

class Small(nn.Module):
    """conv 3x3 (3->8), conv 3x3 s2 (8->8), GAP, Linear: RF 3 then 5."""
    def __init__(self, width=8):
        super().__init__()
        self.c1 = nn.Conv2d(3, width, 3, padding=1)
        self.c2 = nn.Conv2d(width, 8, 3, stride=2, padding=1)
        self.o = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        return self.o(self.c2(self.c1(x)))
'''


@pytest.fixture(autouse=True)
def _outside_the_repo(tmp_path_factory, monkeypatch):
    """No config file (this repository's setup.cfg holds the course brief's rules)."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _restore_import_state(restore_import_state):
    """See tests/conftest.py."""


@pytest.fixture
def small(tmp_path) -> str:
    p = tmp_path / "small.py"
    p.write_text(SMALL)
    return str(p)


# -- builder arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("spec_args, needle", [
    ("Small(width=", "bad builder arguments"),
    ("Small(width=__import__('os'))", "__import__('os') is not a Python literal"),
    ("Small(*[1])", "*args and **kwargs"),
    ("Small(1)(2)", "bad builder arguments"),
])
def test_malformed_builder_arguments_are_one_line_naming_the_spec(capsys, small, spec_args, needle):
    line = assert_error(capsys, [f"{small}:{spec_args}"], needle)
    assert spec_args in line


def test_builder_arguments_that_the_builder_refuses_name_it(capsys, small):
    assert_error(capsys, [f"{small}:Small(depth=3)"], "building", "Small(depth=3)", "depth")


def test_builder_arguments_without_a_name(capsys, small):
    assert_error(capsys, [f"{small}(width=4)"], "need a name")


def test_timm_missing_says_how_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    assert_error(capsys, ["timm:resnet18"], "timm:resnet18 needs timm: pip install timm")


def test_timm_unknown_model_is_named_with_close_names(capsys):
    pytest.importorskip("timm")
    assert_error(capsys, ["timm:resnt18"], "timm:resnt18", "did you mean", "resnet18")


# -- --forbid -------------------------------------------------------------------------------------
def test_forbid_typo_is_an_error_with_did_you_mean(capsys, small):
    line = assert_error(capsys, [small, "--forbid", "MaxPoool2d"], "forbid", "'MaxPoool2d'", "did you mean 'MaxPool2d'")
    assert "MaxPoool2d" in line


def test_forbid_glob_matching_nothing_known_is_an_error(capsys, small):
    assert_error(capsys, [small, "--forbid", "Frobnicate*"], "forbid", "Frobnicate*")


@pytest.mark.parametrize("name", ["MaxPool2d", "MaxPool", "max_pool2d", "Linear", "linear", "Conv*", "Sigmoid",
                                  "relu", "BatchNorm"])
def test_forbid_known_names_are_accepted(capsys, small, name):
    rc, out, err = run(capsys, small, "--forbid", name, "--no-advice")
    assert rc in (0, 1), err
    assert "error" not in err


def test_forbid_a_type_defined_only_in_the_model_is_accepted(capsys, tmp_path):
    p = tmp_path / "own.py"
    p.write_text(textwrap.dedent('''
        import torch.nn as nn

        class MyConv(nn.Conv2d):
            pass

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = MyConv(3, 4, 3)

            def forward(self, x):
                return self.c(x)
    '''))
    rc, out, err = run(capsys, f"{p}:Net", "--forbid", "MyConv", "--no-advice")
    assert rc == 1 and "[FAIL] forbid" in out and "c (MyConv)" in out, (out, err)


def test_forbid_typo_from_the_config_file_is_an_error(capsys, small, tmp_path):
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("[rfcheck]\nforbid = MaxPoool2d\n")
    assert_error(capsys, [small, "--config", str(cfg)], "forbid", "'MaxPoool2d'", "did you mean")


def test_forbid_typo_in_check_and_assert_design_is_a_value_error(small):
    import torch.nn as nn

    from rfcheck import check
    from rfcheck.testing import assert_design
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2))
    with pytest.raises(ValueError, match=r"forbid 'MaxPoool2d'.*did you mean 'MaxPool2d'"):
        check(model, (3, 16, 16), forbid="MaxPoool2d")
    with pytest.raises(ValueError, match="forbid 'MaxPoool2d'"):
        assert_design(model, (3, 16, 16), forbid="MaxPoool2d")
    assert not check(model, (3, 16, 16), forbid="MaxPool2d").passed


# -- output paths ---------------------------------------------------------------------------------
def test_plot_into_a_missing_folder_fails_before_any_work(capsys, small, tmp_path):
    where = tmp_path / "nonexistent" / "dir" / "rf.png"
    line = assert_error(capsys, [small, "--plot", str(where)], "--plot", str(where), "does not exist")
    assert "FileNotFoundError" not in line


def test_plot_onto_a_folder_fails(capsys, small, tmp_path):
    assert_error(capsys, [small, "--plot", str(tmp_path)], "--plot", "is a folder")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (a folder nobody can write)")
def test_plot_into_an_unwritable_folder_fails(capsys, small):
    assert_error(capsys, [small, "--plot", "/proc/rf.png"], "--plot /proc/rf.png", "not writable")


def test_plot_checked_before_the_model_is_loaded(capsys, tmp_path):
    # the model does not exist either: the output path is the first thing looked at
    assert_error(capsys, [str(tmp_path / "missing.py"), "--plot", str(tmp_path / "no" / "rf.png")], "--plot")


# -- input size -----------------------------------------------------------------------------------
def test_input_size_with_a_batch_dimension(capsys, small):
    line = assert_error(capsys, [small, "--input-size", "1,3,32,32"], "input size 1,3,32,32",
                        "no batch dimension", "the first layer (c1, Conv2d) expects 3 channels",
                        "try --input-size 3,32,32")
    assert line.index("no batch dimension") < line.index("try --input-size")


def test_input_size_with_the_wrong_channel_count(capsys, small):
    assert_error(capsys, [small, "--input-size", "1,32,32"], "input size 1,32,32",
                 "the first layer (c1, Conv2d) expects 3 channels, not 1", "try --input-size 3,32,32")


def test_input_size_channels_last_still_says_so(capsys, small):
    assert_error(capsys, [small, "--input-size", "32,32,3"], "looks channels-last", "try --input-size 3,32,32")


def test_a_two_input_model_with_one_input_size_says_to_repeat_it(capsys, tmp_path):
    p = tmp_path / "two.py"
    p.write_text(textwrap.dedent('''
        import torch.nn as nn

        class Two(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Conv2d(3, 4, 3, padding=1)

            def forward(self, x, y):
                return self.a(x) + self.a(y)
    '''))
    assert_error(capsys, [str(p)], "missing 1 required positional argument", "one --input-size per forward argument")


# -- the trainer ----------------------------------------------------------------------------------
TRAIN_ERR = "rfcheck-train: error:"


def train(capsys, *args: str) -> tuple[int, str, str]:
    pytest.importorskip("albumentations")
    from training import train as train_cli
    try:
        rc = train_cli.main(list(args))
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 2
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("option, value", [
    ("--lr", "-0.1"), ("--lr", "0"), ("--lr", "nan"), ("--epochs", "0"), ("--batch-size", "0"),
    ("--aug-hflip", "1.5"), ("--aug-affine", "-0.1"), ("--aug-cutout", "2"), ("--aug-gray", "1.01"),
    ("--weight-decay", "-1"), ("--label-smoothing", "1.5"), ("--label-smoothing", "1"), ("--threads", "-1"),
    ("--workers", "-1"), ("--l1", "-0.5"), ("--momentum", "1.5"), ("--pct-start", "0"), ("--pct-start", "1"),
    ("--limit-per-class", "0"), ("--seed", "-1"), ("--epochs", "2.5"),
])
def test_trainer_arguments_out_of_range_are_usage_errors(capsys, small, tmp_path, option, value):
    # --data does not exist: a parse-time error is reported before it is ever looked at
    rc, out, err = train(capsys, small, "--data", str(tmp_path / "no-data"), "--isolated", option, value)
    assert rc == 2
    line = one_line(err, TRAIN_ERR, usage=True)
    assert option in line and repr(value) in line, line
    assert "no-data" not in err


def test_trainer_momentum_zero_with_nesterov(capsys, small, tmp_path):
    rc, out, err = train(capsys, small, "--data", str(tmp_path / "no-data"), "--isolated", "--momentum", "0")
    assert rc == 2 and "--momentum" in one_line(err, TRAIN_ERR, usage=True)


def test_trainer_good_edge_values_pass_parsing(capsys, small, tmp_path):
    # probabilities 0 and 1, threads 0 (all cores), workers 0: valid; the missing data is what fails
    rc, out, err = train(capsys, small, "--data", str(tmp_path / "no-data"), "--isolated", "--max-params", "1M",
                         "--aug-hflip", "1",
                         "--aug-gray", "0", "--threads", "0", "--workers", "0", "--label-smoothing", "0")
    assert rc == 2 and "no-data" in one_line(err, TRAIN_ERR)


@pytest.mark.parametrize("option", ["--out", "--cache-dir"])
def test_trainer_output_folder_that_is_a_file(capsys, small, tmp_path, option):
    f = tmp_path / "a-file"
    f.write_text("x")
    rc, out, err = train(capsys, small, "--data", str(tmp_path / "no-data"), "--isolated", option, str(f))
    assert rc == 2
    line = one_line(err, TRAIN_ERR, usage=True)
    assert option in line and str(f) in line and "not a folder" in line


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (a folder nobody can write)")
def test_trainer_output_folder_not_writable(capsys, small, tmp_path):
    rc, out, err = train(capsys, small, "--data", str(tmp_path / "no-data"), "--isolated", "--out", "/proc/run")
    assert rc == 2 and "--out /proc/run" in one_line(err, TRAIN_ERR, usage=True)


def _dataset(root: Path, n: int) -> Path:
    np = pytest.importorskip("numpy")
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("a", "b"):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def test_trainer_split_smaller_than_a_batch_says_so_and_leaves_no_run_folder(capsys, small, tmp_path):
    pytest.importorskip("albumentations")
    data = _dataset(tmp_path / "toy", 3)  # 6 train images
    out_dir = tmp_path / "runs" / "r"
    rc, out, err = train(capsys, small, "--data", str(data), "--isolated", "--input-size", "3,16,16", "--max-params", "1M",
                         "--batch-size", "16", "--epochs", "1", "--quiet", "--no-plots", "--workers", "0",
                         "--threads", "1", "--cache-dir", str(tmp_path / "cache"), "--out", str(out_dir))
    assert rc == 2
    line = one_line(err, TRAIN_ERR)
    assert "--batch-size 16" in line and "6 images" in line
    assert not out_dir.exists() and not (tmp_path / "runs").exists()


def test_trainer_schedule_too_short_for_the_warm_up_says_so(capsys, small, tmp_path):
    pytest.importorskip("albumentations")
    data = _dataset(tmp_path / "toy", 4)  # 8 train images: 2 steps of 4
    rc, out, err = train(capsys, small, "--data", str(data), "--isolated", "--input-size", "3,16,16", "--max-params", "1M",
                         "--batch-size", "4", "--epochs", "1", "--quiet", "--no-plots", "--workers", "0",
                         "--threads", "1", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "r"))
    assert rc == 2
    assert "OneCycle warm-up" in one_line(err, TRAIN_ERR) and not (tmp_path / "r").exists()


def test_trainer_failed_run_removes_the_empty_run_folder_it_made(capsys, tmp_path):
    pytest.importorskip("albumentations")
    p = tmp_path / "nan.py"
    p.write_text(SMALL + '''

class NaNNet(Small):
    def forward(self, x):
        return super().forward(x) * float("nan")
''')
    data = _dataset(tmp_path / "toy", 8)
    out_dir = tmp_path / "runs" / "nan"
    rc, out, err = train(capsys, f"{p}:NaNNet", "--data", str(data), "--isolated", "--input-size", "3,16,16",
                         "--batch-size", "2", "--epochs", "1", "--quiet", "--no-plots", "--workers", "0",
                         "--threads", "1", "--cache-dir", str(tmp_path / "cache"), "--out", str(out_dir), "--max-params",
                         "1M")
    assert rc == 3, err
    assert not out_dir.exists() and not (tmp_path / "runs").exists()


def test_a_builder_that_downloads_weights_offline_says_to_pass_weights_backbone_none(capsys, tmp_path):
    p = tmp_path / "dl.py"
    p.write_text(textwrap.dedent('''
        import urllib.error

        import torch.nn as nn

        def seg(weights_backbone="IMAGENET1K_V1"):
            if weights_backbone is not None:
                raise urllib.error.URLError("[Errno -2] Name or service not known")
            return nn.Conv2d(3, 4, 3)
    '''))
    line = assert_error(capsys, [f"{p}:seg"], "URLError", "add (weights_backbone=None) to the spec")
    assert "seg()" in line
    rc, out, err = run(capsys, f"{p}:seg(weights_backbone=None)")
    assert rc == 0 and err == "", err
