"""training.data (every dataset layout, the decode cache, errors) and training.augment, on tiny generated data."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from training import data
from training.data import DataError

# Pillow and albumentations come with the dev extra, not with rfcheck: the tests that write or
# decode images take the ``Image`` fixture (tests/conftest.py) and those of training.augment the
# ``augment`` one (below), so that only they skip without them.

REAL_ARCHIVE = Path(__file__).resolve().parents[3] / "shared/datasets/cifar10-jpeg.tar.gz"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CLASSES = ["bird", "cat", "dog"]          # written in a non-sorted order below to check the sorting


# ---------------------------------------------------------------------------------------------------------
# generators
# ---------------------------------------------------------------------------------------------------------

def make_imagefolder(root: Path, counts=None, ext=".png", size=(8, 6), gray=False, test_name="test",
                     seed=0) -> dict:
    """train/ and test/ with one folder per class; returns {split: (images, labels)} in ImageFolder order."""
    from PIL import Image  # its callers take the Image fixture: they skip without Pillow

    counts = counts or {"train": 4, test_name: 2}
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in counts.items():
        imgs, labels = [], []
        for label, cls in enumerate(CLASSES):
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape = (size[0], size[1]) if gray else (size[0], size[1], 3)
                img = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(img).save(d / f"{i:04d}{ext}", **({"quality": 95} if ext == ".jpg" else {}))
                imgs.append(img if ext == ".png" else np.asarray(Image.open(d / f"{i:04d}{ext}")))
                labels.append(label)
        arr = np.stack(imgs)
        out[split] = (arr[..., None] if gray else arr, np.array(labels))
    return out


def write_cifar_batches(d: Path, n_train=(3, 2, 4, 1, 2), n_test=5, names=(b"cat", b"dog", b"frog"), seed=0):
    """The official python format: dicts with b"data" (N x 3072 uint8, R, G, B planes row-major) and b"labels"."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    imgs, labels = {}, {}

    def batch(fname, n, split):
        hwc = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        lab = [int(x) for x in rng.integers(0, len(names), n)]
        rows = hwc.transpose(0, 3, 1, 2).reshape(n, 3072)
        with open(d / fname, "wb") as f:
            pickle.dump({b"batch_label": fname.encode(), b"labels": lab, b"data": rows,
                         b"filenames": [b"x.png"] * n}, f, protocol=2)
        imgs.setdefault(split, []).append(hwc)
        labels.setdefault(split, []).extend(lab)

    for i, n in enumerate(n_train, 1):
        batch(f"data_batch_{i}", n, "train")
    batch("test_batch", n_test, "test")
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": list(names), b"num_cases_per_batch": 10000, b"num_vis": 3072}, f, protocol=2)
    return {s: (np.concatenate(imgs[s]), np.array(labels[s])) for s in imgs}


def write_idx(path: Path, arr: np.ndarray, compress=True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    raw = header + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def write_fashion(d: Path, n_train=20, n_test=10, compress=True, seed=0):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        sfx = ".gz" if compress else ""
        write_idx(d / f"{prefix}-images-idx3-ubyte{sfx}", imgs, compress)
        write_idx(d / f"{prefix}-labels-idx1-ubyte{sfx}", labels, compress)
        out[prefix] = (imgs[..., None], labels.astype(np.int64))
    return out


def np_mean_std(images: np.ndarray):
    x = images.astype(np.float64) / 255.0
    return x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2))


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def augment(albumentations):
    """training.augment, which imports albumentations."""
    from training import augment
    return augment


# ---------------------------------------------------------------------------------------------------------
# layouts
# ---------------------------------------------------------------------------------------------------------

def test_imagefolder_png(tmp_path, cache, Image):
    ref = make_imagefolder(tmp_path / "toy")
    ds = data.load(str(tmp_path / "toy"), cache_dir=str(cache))
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.train.images.shape == (12, 8, 6, 3) and ds.train.images.dtype == np.uint8
    assert ds.test.images.shape == (6, 8, 6, 3)
    assert ds.train.labels.dtype == np.int64 and ds.train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    np.testing.assert_array_equal(ds.train.images, ref["train"][0])   # PNG is lossless
    np.testing.assert_array_equal(ds.test.images, ref["test"][0])
    m, s = np_mean_std(ref["train"][0])
    np.testing.assert_allclose(ds.mean, m, rtol=1e-9)
    np.testing.assert_allclose(ds.std, s, rtol=1e-9)
    assert len(ds.mean) == len(ds.std) == 3 and ds.channels == 3 and ds.image_size == (8, 6)
    assert ds.source.startswith("ImageFolder ") and str(tmp_path / "toy") in ds.source


def test_imagefolder_jpeg_val_and_parent_dir(tmp_path, cache, Image):
    ref = make_imagefolder(tmp_path / "outer" / "cifar10-jpeg", ext=".jpg", test_name="val", size=(10, 10))
    ds = data.load(str(tmp_path / "outer"), cache_dir=str(cache))      # single child folder holds the layout
    assert "val/ as test" in ds.source
    np.testing.assert_array_equal(ds.train.images, ref["train"][0])   # same Pillow decode
    assert ds.test.images.shape == (6, 10, 10, 3)
    # a child named like the archive beside it is picked among several folders
    (tmp_path / "outer" / "other").mkdir()
    (tmp_path / "outer" / "cifar10-jpeg.tar.gz").write_bytes(b"not used")
    assert data.load(str(tmp_path / "outer"), cache_dir=str(cache)).train.images.shape == (12, 10, 10, 3)


def test_grayscale_stays_one_channel_unless_mixed(tmp_path, cache, Image):
    ref = make_imagefolder(tmp_path / "g", gray=True)
    ds = data.load(str(tmp_path / "g"), cache_dir=str(cache))
    assert ds.train.images.shape == (12, 8, 6, 1) and len(ds.mean) == 1
    np.testing.assert_array_equal(ds.train.images, ref["train"][0])
    # one RGB image among grayscale ones: everything becomes RGB, gray replicated into R, G, B
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "g" / "test" / "cat" / "rgb.png")
    ds = data.load(str(tmp_path / "g"), cache_dir=str(cache))
    assert ds.train.images.shape == (12, 8, 6, 3) and len(ds.std) == 3
    np.testing.assert_array_equal(ds.train.images[..., 1], ref["train"][0][..., 0])


def test_tar_gz_archive_is_unpacked_once(tmp_path, cache, Image):
    ref = make_imagefolder(tmp_path / "src" / "toy")
    archive = tmp_path / "toy.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "src" / "toy", arcname="toy")
    ds = data.load(str(archive), cache_dir=str(cache))
    np.testing.assert_array_equal(ds.train.images, ref["train"][0])
    assert ds.classes == CLASSES and ds.source == f"ImageFolder {archive.resolve()} (toy)"
    unpacked = list((cache / "unpacked").iterdir())
    assert len([u for u in unpacked if not u.name.startswith(".")]) == 1
    stamp = unpacked[0].stat().st_mtime_ns
    ds2 = data.load(str(archive), cache_dir=str(cache))
    assert unpacked[0].stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(ds2.test.images, ds.test.images)
    # a folder holding only the archive (e.g. data/ with the archive copied in) works too
    (tmp_path / "d").mkdir()
    os.replace(archive, tmp_path / "d" / "toy.tgz")
    assert data.load(str(tmp_path / "d"), cache_dir=str(cache)).classes == CLASSES


def test_cifar_python_batches(tmp_path, cache):
    ref = write_cifar_batches(tmp_path / "cifar-10-batches-py")
    ds = data.load(str(tmp_path / "cifar-10-batches-py"), cache_dir=str(cache))
    assert ds.classes == ["cat", "dog", "frog"]
    assert ds.train.images.shape == (12, 32, 32, 3) and ds.test.images.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(ds.train.images, ref["train"][0])   # R, G, B planes -> HWC
    np.testing.assert_array_equal(ds.train.labels, ref["train"][1])
    np.testing.assert_array_equal(ds.test.images, ref["test"][0])
    m, s = np_mean_std(ref["train"][0])
    np.testing.assert_allclose(ds.mean, m, rtol=1e-9)
    np.testing.assert_allclose(ds.std, s, rtol=1e-9)
    assert ds.source == f"CIFAR-10 python batches {(tmp_path / 'cifar-10-batches-py').resolve()}"
    # the parent folder works too (single child)
    assert data.load(str(tmp_path), cache_dir=str(cache)).train.images.shape == (12, 32, 32, 3)


def test_cifar_batches_refuse_code_in_pickles(tmp_path, cache):
    write_cifar_batches(tmp_path / "c")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(tmp_path / "c" / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"a"], b"x": Evil()}, f)
    with pytest.raises(DataError, match=r"batches\.meta.*refusing"):
        data.load(str(tmp_path / "c"), cache_dir=str(cache))


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_idx(tmp_path, cache, compress):
    ref = write_fashion(tmp_path / "pkg" / "share" / "fashion", compress=compress)
    ds = data.load(str(tmp_path / "pkg"), cache_dir=str(cache))            # found in a subfolder
    assert ds.train.images.shape == (20, 28, 28, 1) and ds.test.images.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(ds.train.images, ref["train"][0])
    np.testing.assert_array_equal(ds.test.labels, ref["t10k"][1])
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot" and len(ds.classes) == 10
    m, s = np_mean_std(ref["train"][0])
    assert len(ds.mean) == 1
    np.testing.assert_allclose(ds.mean, m, rtol=1e-9)
    np.testing.assert_allclose(ds.std, s, rtol=1e-9)
    assert ds.source.startswith("Fashion-MNIST idx ")


# ---------------------------------------------------------------------------------------------------------
# cache and limit_per_class
# ---------------------------------------------------------------------------------------------------------

def test_second_load_reads_the_npz_cache(tmp_path, cache, monkeypatch, Image):
    make_imagefolder(tmp_path / "toy")
    ds1 = data.load(str(tmp_path / "toy"), cache_dir=str(cache))
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and not list(cache.glob("*.tmp"))

    def boom(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(data, "_decode_one", boom)
    ds2 = data.load(str(tmp_path / "toy"), cache_dir=str(cache))
    np.testing.assert_array_equal(ds1.train.images, ds2.train.images)
    np.testing.assert_array_equal(ds1.test.labels, ds2.test.labels)
    assert ds1.mean == ds2.mean and ds1.classes == ds2.classes
    # a subset is cut from the full cache without decoding
    assert len(data.load(str(tmp_path / "toy"), cache_dir=str(cache), limit_per_class=1).train) == 3
    # adding a file changes the fingerprint: decoded again (and the boom shows it)
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "toy" / "train" / "dog" / "new.png")
    with pytest.raises(DataError, match="decoded .* again"):
        data.load(str(tmp_path / "toy"), cache_dir=str(cache))


def test_corrupt_cache_is_ignored(tmp_path, cache, Image):
    make_imagefolder(tmp_path / "toy")
    ds1 = data.load(str(tmp_path / "toy"), cache_dir=str(cache))
    (npz,) = cache.glob("*.npz")
    npz.write_bytes(b"garbage")
    ds2 = data.load(str(tmp_path / "toy"), cache_dir=str(cache))
    np.testing.assert_array_equal(ds1.train.images, ds2.train.images)


def test_limit_per_class(tmp_path, cache, Image):
    make_imagefolder(tmp_path / "toy", counts={"train": 6, "test": 3})
    full = data.load(str(tmp_path / "toy"), cache_dir=str(tmp_path / "c0"))
    a = data.load(str(tmp_path / "toy"), cache_dir=str(tmp_path / "c1"), limit_per_class=2, seed=1)
    assert a.train.labels.tolist() == [0, 0, 1, 1, 2, 2] and a.test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert "limit_per_class=2" in a.source
    # the same subset whether decoded directly (c1) or cut from the full cache (c0)
    b = data.load(str(tmp_path / "toy"), cache_dir=str(tmp_path / "c0"), limit_per_class=2, seed=1)
    np.testing.assert_array_equal(a.train.images, b.train.images)
    # every kept image is one of the class's images; the mean/std are those of the subset
    for img, lab in zip(a.train.images, a.train.labels):
        assert any(np.array_equal(img, f) for f in full.train.images[full.train.labels == lab])
    np.testing.assert_allclose(a.mean, np_mean_std(a.train.images)[0], rtol=1e-9)
    seeds = {data.load(str(tmp_path / "toy"), cache_dir=str(tmp_path / "c0"), limit_per_class=2,
                       seed=s).train.images.tobytes() for s in range(6)}
    assert len(seeds) > 1                                            # the seed picks the subset
    big = data.load(str(tmp_path / "toy"), cache_dir=str(tmp_path / "c0"), limit_per_class=100)
    assert len(big.train) == 18
    # arrays formats too
    write_cifar_batches(tmp_path / "cb", n_train=(10, 10, 10, 10, 10), n_test=12)
    c = data.load(str(tmp_path / "cb"), cache_dir=str(cache), limit_per_class=2)
    assert np.bincount(c.train.labels).tolist() == [2, 2, 2] and len(c.test) <= 6
    with pytest.raises(DataError, match="limit_per_class"):
        data.load(str(tmp_path / "toy"), cache_dir=str(cache), limit_per_class=0)


# ---------------------------------------------------------------------------------------------------------
# errors: one line naming the path / classes
# ---------------------------------------------------------------------------------------------------------

def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def test_error_missing_path(tmp_path, cache):
    with pytest.raises(DataError) as e:
        data.load(str(tmp_path / "nope"), cache_dir=str(cache))
    assert str(tmp_path / "nope") in one_line(e) and "does not exist" in one_line(e)


def test_error_no_layout(tmp_path, cache):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(DataError) as e:
        data.load(str(tmp_path / "empty"), cache_dir=str(cache))
    msg = one_line(e)
    assert str(tmp_path / "empty") in msg and "train/" in msg and "data_batch_1" in msg and "idx" in msg
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match="not a .tar.gz"):
        data.load(str(tmp_path / "f.txt"), cache_dir=str(cache))


def test_error_train_without_test(tmp_path, cache, Image):
    make_imagefolder(tmp_path / "t", counts={"train": 1})
    with pytest.raises(DataError, match="no test/ or val/"):
        data.load(str(tmp_path / "t"), cache_dir=str(cache))


def test_error_class_sets_differ(tmp_path, cache, Image):
    make_imagefolder(tmp_path / "t", counts={"train": 2, "test": 1})
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "t" / "train" / "zebra.png")  # ignored
    (tmp_path / "t" / "train" / "eel").mkdir()
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "t" / "train" / "eel" / "0.png")
    for p in (tmp_path / "t" / "test" / "cat").iterdir():
        p.unlink()
    (tmp_path / "t" / "test" / "cat").rmdir()
    with pytest.raises(DataError) as e:
        data.load(str(tmp_path / "t"), cache_dir=str(cache))
    msg = one_line(e)
    assert "class sets differ" in msg and "'cat'" in msg and "'eel'" in msg


def test_error_split_without_images(tmp_path, cache, Image):
    make_imagefolder(tmp_path / "t", counts={"train": 1, "test": 1})
    for cls in CLASSES:
        for p in (tmp_path / "t" / "test" / cls).iterdir():
            p.unlink()
    with pytest.raises(DataError) as e:
        data.load(str(tmp_path / "t"), cache_dir=str(cache))
    assert "no images in split 'test'" in one_line(e) and str(tmp_path / "t" / "test") in one_line(e)
    # one empty class folder
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "t" / "test" / "cat" / "0.png")
    with pytest.raises(DataError, match=r"test/bird has no images"):
        data.load(str(tmp_path / "t"), cache_dir=str(cache))


def test_error_undecodable_image(tmp_path, cache, Image):
    make_imagefolder(tmp_path / "t")
    bad = tmp_path / "t" / "train" / "cat" / "0001.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError) as e:
        data.load(str(tmp_path / "t"), cache_dir=str(cache))
    assert str(bad) in one_line(e) and "cannot decode" in one_line(e)
    assert not list(cache.glob("*.npz"))


def test_error_mixed_sizes(tmp_path, cache, Image):
    make_imagefolder(tmp_path / "t")
    odd = tmp_path / "t" / "test" / "dog" / "0000.png"
    Image.fromarray(np.zeros((9, 6, 3), np.uint8)).save(odd)
    with pytest.raises(DataError) as e:
        data.load(str(tmp_path / "t"), cache_dir=str(cache))
    assert str(odd) in one_line(e) and "9x6" in one_line(e)


def test_error_broken_formats(tmp_path, cache):
    write_cifar_batches(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="missing data_batch_3"):
        data.load(str(tmp_path / "c"), cache_dir=str(cache))
    write_fashion(tmp_path / "f")
    (tmp_path / "f" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 5))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        data.load(str(tmp_path / "f"), cache_dir=str(cache))
    (tmp_path / "f" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte"):
        data.load(str(tmp_path / "f"), cache_dir=str(cache))


# ---------------------------------------------------------------------------------------------------------
# the real archive (skipped where it is absent)
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason=f"{REAL_ARCHIVE} not present")
def test_real_cifar10_jpeg_slice(tmp_path, cache, Image):
    per_group, taken = 3, {}
    extract = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(REAL_ARCHIVE) as tf:     # members are grouped by split and class: stream, take a few each
        for m in tf:
            parts = m.name.split("/")          # cifar10-jpeg/<split>/<class>/<NNNN>.jpg
            if m.isfile() and len(parts) == 4 and taken.get(tuple(parts[1:3]), 0) < per_group:
                taken[tuple(parts[1:3])] = taken.get(tuple(parts[1:3]), 0) + 1
                tf.extract(m, tmp_path / "slice", **extract)
            if sum(taken.values()) == 2 * 10 * per_group:
                break
    ds = data.load(str(tmp_path / "slice"), cache_dir=str(cache))
    assert ds.classes == CIFAR10_CLASSES
    assert ds.train.images.shape == (30, 32, 32, 3) and ds.test.images.shape == (30, 32, 32, 3)
    assert np.bincount(ds.train.labels).tolist() == [3] * 10
    assert all(0.2 < m < 0.7 for m in ds.mean) and all(0.1 < s < 0.4 for s in ds.std)
    assert "cifar10-jpeg" in ds.source


REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")   # apt-get install dataset-fashion-mnist


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason=f"{REAL_FASHION} not present (Debian dataset-fashion-mnist)")
def test_real_fashion_mnist_from_its_debian_package(cache):
    ds = data.load(str(REAL_FASHION), cache_dir=str(cache), limit_per_class=5)
    assert ds.train.images.shape == (50, 28, 28, 1) and ds.test.images.shape == (50, 28, 28, 1)
    assert len(ds.classes) == 10 and np.bincount(ds.train.labels).tolist() == [5] * 10
    # Fashion-MNIST's published pixel statistics are mean 0.286, std 0.353 (full train split)
    assert 0.2 < ds.mean[0] < 0.4 and 0.25 < ds.std[0] < 0.45


@pytest.mark.skipif(not (REAL_ARCHIVE.is_file() and os.environ.get("RFCHECK_FULL_DATA_TEST")),
                    reason="set RFCHECK_FULL_DATA_TEST=1 to decode the whole real archive (~10 s)")
def test_real_cifar10_jpeg_full(tmp_path, Image):
    ds = data.load(str(REAL_ARCHIVE), cache_dir=str(tmp_path))
    assert ds.train.images.shape == (50000, 32, 32, 3) and ds.test.images.shape == (10000, 32, 32, 3)
    assert np.bincount(ds.test.labels).tolist() == [1000] * 10 and ds.classes == CIFAR10_CLASSES
    np.testing.assert_allclose(ds.mean, (0.4914, 0.4822, 0.4465), atol=0.01)


# ---------------------------------------------------------------------------------------------------------
# augmentation
# ---------------------------------------------------------------------------------------------------------

MEAN3 = (0.5, 0.25, 0.75)   # fill (128, 64, 191): no pixel of rand_img can equal it
MEAN1 = (0.5,)


def rand_img(channels=3, h=32, w=32, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60, (h, w, channels), dtype=np.uint8)


def only(**kw):
    """training.augment's AugConfig with every augmentation off but ``kw`` (its callers take the augment fixture)."""
    from training import augment

    cfg = dict(hflip=0.0, affine=0.0, cutout=0.0, gray=0.0)
    cfg.update(kw)
    return augment.AugConfig(**cfg)


@pytest.mark.parametrize("channels", [3, 1])
def test_aug_all_off_is_identity(channels, augment):
    mean = MEAN3 if channels == 3 else MEAN1
    t = augment.build(only(), mean, channels=channels)
    img = rand_img(channels)
    for _ in range(5):
        out = t(image=img)["image"]
        assert out.dtype == np.uint8 and np.array_equal(out, img)


@pytest.mark.parametrize("channels", [3, 1])
def test_aug_hflip(channels, augment):
    t = augment.build(only(hflip=1.0), MEAN3 if channels == 3 else MEAN1, channels=channels)
    img = rand_img(channels)
    np.testing.assert_array_equal(t(image=img)["image"], np.fliplr(img))


@pytest.mark.parametrize("channels", [3, 1])
def test_aug_cutout_one_mean_square(channels, augment):
    mean = MEAN3 if channels == 3 else MEAN1
    fill = np.array(augment.mean_fill(mean), dtype=np.uint8)
    t = augment.build(only(cutout=1.0), mean, channels=channels)
    img = rand_img(channels, 28, 30)
    for seed in range(20):
        t.set_random_seed(seed)
        out = t(image=img)["image"]
        changed = (out != img).any(-1)
        ys, xs = np.nonzero(changed)
        assert changed.sum() == 16 * 16
        assert ys.max() - ys.min() == 15 and xs.max() - xs.min() == 15
        assert (out[changed] == fill).all()
        np.testing.assert_array_equal(out[~changed], img[~changed])


def test_aug_gray(augment, albumentations):
    t = augment.build(only(gray=1.0), MEAN3, channels=3)
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = t(image=img)["image"]
    assert out.shape == img.shape and not np.array_equal(out, img)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    # 1-channel data: no ToGray in the pipeline at all
    t1 = augment.build(only(gray=1.0), MEAN1, channels=1)
    assert not any(isinstance(x, albumentations.ToGray) for x in t1.transforms)
    img1 = rand_img(1)
    np.testing.assert_array_equal(t1(image=img1)["image"], img1)


@pytest.mark.parametrize("channels", [3, 1])
def test_aug_affine(channels, augment, albumentations):
    mean = MEAN3 if channels == 3 else MEAN1
    t = augment.build(only(affine=1.0), mean, channels=channels)
    img = rand_img(channels)
    outs = [t(image=img)["image"] for _ in range(5)]
    for out in outs:
        assert out.shape == img.shape and out.dtype == np.uint8
    assert sum(not np.array_equal(o, img) for o in outs) >= 4
    aff = [x for x in t.transforms if isinstance(x, albumentations.Affine)][0]
    assert aff.fill == augment.mean_fill(mean)


@pytest.mark.filterwarnings("ignore:Argument.*not valid")
def test_aug_strict_compose_and_config_checks(augment, albumentations):
    t = augment.build(augment.AugConfig(), MEAN3)
    assert t.strict is True
    assert [type(x).__name__ for x in t.transforms] == ["HorizontalFlip", "Affine", "ToGray", "CoarseDropout"]
    with pytest.raises(ValueError, match="hole_hieght_range"):
        albumentations.Compose([albumentations.CoarseDropout(hole_hieght_range=(16, 16), p=1.0)], strict=True)
    with pytest.raises(ValueError, match="cutout"):
        augment.build(augment.AugConfig(cutout=1.5), MEAN3)
    with pytest.raises(ValueError, match="channel"):
        augment.build(augment.AugConfig(), MEAN1, channels=3)
    d = augment.describe(augment.AugConfig())
    assert "\n" not in d and "hflip p=0.5" in d and "cutout p=0.5" in d and "16x16" in d and "gray p=0.1" in d
    assert augment.describe(only()) == "none"


# ---------------------------------------------------------------------------------------------------------
# torch dataset
# ---------------------------------------------------------------------------------------------------------

def test_make_torch_dataset_normalises():
    images = np.full((4, 5, 6, 3), (51, 102, 204), dtype=np.uint8)     # 0.2, 0.4, 0.8
    split = data.Split(images, np.array([0, 1, 2, 1], dtype=np.int64))
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.1)
    ds = data.make_torch_dataset(split, mean, std)
    assert isinstance(ds, torch.utils.data.Dataset) and len(ds) == 4
    x, y = ds[3]
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, 5, 6) and y == 1 and isinstance(y, int)
    want = [(0.2 - 0.1) / 0.5, (0.4 - 0.2) / 0.25, (0.8 - 0.3) / 0.1]
    np.testing.assert_allclose(x.mean(dim=(1, 2)).numpy(), want, rtol=1e-5)
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert tuple(xb.shape) == (4, 3, 5, 6) and yb.tolist() == [0, 1, 2, 1]
    with pytest.raises(DataError, match="one per image channel"):
        data.make_torch_dataset(split, (0.5,), (0.5,))


def test_make_torch_dataset_with_transform_and_dataset_stats(tmp_path, cache, Image, augment):
    ref = make_imagefolder(tmp_path / "toy")
    ds = data.load(str(tmp_path / "toy"), cache_dir=str(cache))
    tf = augment.build(only(hflip=1.0), ds.mean, channels=ds.channels)
    tset = data.make_torch_dataset(ds.train, ds.mean, ds.std, tf)
    assert tset.transform is tf                                       # reseedable by a worker_init_fn
    x, y = tset[0]
    flipped = np.fliplr(ref["train"][0][0]).astype(np.float32) / 255.0
    want = (flipped - np.array(ds.mean, np.float32)) / np.array(ds.std, np.float32)
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), want, rtol=1e-5, atol=1e-5)
    # over the whole train split, normalised data has mean 0 and std 1 per channel
    allx = torch.stack([data.make_torch_dataset(ds.train, ds.mean, ds.std)[i][0] for i in range(len(ds.train))])
    np.testing.assert_allclose(allx.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(allx.std(dim=(0, 2, 3), unbiased=False).numpy(), 1, atol=1e-4)
    # 1-channel
    g = data.Split(np.full((2, 4, 4, 1), 255, np.uint8), np.array([0, 1]))
    xg, _ = data.make_torch_dataset(g, (0.5,), (0.5,))[0]
    assert tuple(xg.shape) == (1, 4, 4) and torch.allclose(xg, torch.ones_like(xg))
