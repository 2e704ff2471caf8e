"""Load an image-classification dataset into uint8 arrays, from whatever layout it comes in.

``load(path)`` accepts

* an ImageFolder directory: ``train/<class>/*.jpg|png...`` and ``test/<class>/...`` (``val/`` is used
  as the test split when there is no ``test/``);
* a directory whose single subfolder (or a subfolder named like an archive beside it, or one of the
  usual names such as ``cifar10-jpeg``) holds such a layout, e.g. the folder ``cifar10-jpeg.tar.gz``
  was unpacked into;
* a ``.tar.gz`` / ``.tgz`` (or ``.tar``, ``.tar.xz``, ``.tar.bz2``) archive of one of these layouts: it
  is unpacked once into the cache directory; a directory holding just such an archive works too;
* a CIFAR-10 python-batches directory (``data_batch_1..5``, ``test_batch``, ``batches.meta``); nothing
  is ever downloaded;
* a Fashion-MNIST directory of idx files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``), in the directory or a subdirectory.

JPEG/PNG files are decoded once with Pillow (a process pool of at most 2) into an uncompressed ``.npz``
cache in ``cache_dir`` (default ``~/.cache/rfcheck-data``, or ``$RFCHECK_DATA_CACHE``), keyed by the
resolved path and a cheap fingerprint (file count, total size, newest mtime of the files and folders),
so the second load only reads the ``.npz``.

Class order: ImageFolder classes are the sorted folder names (for CIFAR-10 that is the official label
order).  CIFAR python batches and Fashion-MNIST keep the label numbering stored in the files (their
official order: ``batches.meta`` names, and T-shirt/top, Trouser, ... Ankle boot).

Every problem with the data raises :class:`DataError` with a one-line message naming the path or value.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = ["DataError", "Split", "Dataset", "load", "make_torch_dataset", "default_cache_dir"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.xz", ".txz", ".tar.bz2", ".tbz2")
# Folder names a dataset is commonly unpacked into; used to pick a child folder when there are several.
KNOWN_CHILD_NAMES = ("cifar10-jpeg", "cifar-10-batches-py", "fashion-mnist", "fashion_mnist", "fashionmnist")
CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
               "batches.meta")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]
CACHE_VERSION = "1"
_POOL_MIN_IMAGES = 2000     # below this, decoding sequentially beats starting a pool
_MAX_WORKERS = 2            # the machines this runs on are small and shared
_SEARCH_DEPTH = 3           # how deep to look for a layout below the given directory


class DataError(Exception):
    """A dataset problem, with a one-line, actionable message naming the path or value."""


@dataclass
class Split:
    images: np.ndarray   # uint8, (N, H, W, C), C = 3 or 1
    labels: np.ndarray   # int64, (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Dataset:
    train: Split
    test: Split
    classes: list[str]
    source: str
    mean: tuple[float, ...]   # per channel, 0..1 scale, from the train split
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[-1])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W)"""
        return int(self.train.images.shape[1]), int(self.train.images.shape[2])


def default_cache_dir() -> Path:
    env = os.environ.get("RFCHECK_DATA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rfcheck-data"


# ---------------------------------------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------------------------------------

def load(path: str, cache_dir: Optional[str] = None, limit_per_class: Optional[int] = None,
         seed: int = 0) -> Dataset:
    """Load train and test splits from ``path`` (see the module docstring for the accepted layouts).

    ``limit_per_class``: keep, per split and per class, the first N images of a shuffle seeded by ``seed``
    (kept in their original order).  ``mean``/``std`` are computed from the returned train split.
    """
    if limit_per_class is not None:
        if isinstance(limit_per_class, bool) or not isinstance(limit_per_class, (int, np.integer)) \
                or limit_per_class < 1:
            raise DataError(f"limit_per_class must be a positive integer or None, got {limit_per_class!r}")
        limit_per_class = int(limit_per_class)
    if path is None or str(path) == "":
        raise DataError("no dataset path given")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"dataset path does not exist: {p}")
    p = p.resolve()
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    ds = _Loader(cache, limit_per_class, int(seed)).load(p)
    # logs and results name the data as the user did (a relative path stays relative)
    ds.source = ds.source.replace(str(p), str(path))
    return ds


# ---------------------------------------------------------------------------------------------------------
# torch wrapper
# ---------------------------------------------------------------------------------------------------------

class SplitDataset(torch.utils.data.Dataset):
    """Items: (float32 CHW tensor, (x/255 - mean)/std per channel; int label).

    ``transform`` (an albumentations Compose, or None) is applied to the HWC uint8 image first; it is kept
    as the public attribute ``transform`` so a DataLoader ``worker_init_fn`` can reseed it.
    """

    def __init__(self, split: Split, mean: Sequence[float], std: Sequence[float], transform=None):
        images, labels = split.images, split.labels
        if images.ndim != 4 or images.dtype != np.uint8:
            raise DataError(f"split images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
        if len(labels) != len(images):
            raise DataError(f"split has {len(images)} images but {len(labels)} labels")
        c = images.shape[-1]
        mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(mean) != c or len(std) != c:
            raise DataError(f"mean {mean} / std {std} need {c} value(s), one per image channel")
        if any(not s > 0 for s in std):
            raise DataError(f"std must be positive in every channel, got {std}")
        self.images, self.labels, self.transform = images, labels, transform
        self.mean, self.std = mean, std
        self._scale = (1.0 / (255.0 * np.array(std, dtype=np.float64))).astype(np.float32).reshape(c, 1, 1)
        self._offset = (np.array(mean, dtype=np.float64) / np.array(std, dtype=np.float64)).astype(
            np.float32).reshape(c, 1, 1)

    def __len__(self) -> int:
        return int(len(self.labels))

    def __getitem__(self, i: int):
        img = self.images[i]
        if self.transform is not None:
            img = self.transform(image=img)["image"]
            if img.ndim == 2:
                img = img[..., None]
        # one fused numpy pass, x * 1/(255 std) - mean/std, straight into CHW float32: a tenth of
        # the cost of permute + to(float32) + three in-place torch ops on a 32x32 image, which
        # on a 2-core machine was a quarter of an epoch
        x = np.multiply(img.transpose(2, 0, 1), self._scale, dtype=np.float32, order="C")
        x -= self._offset
        return torch.from_numpy(x), int(self.labels[i])


def make_torch_dataset(split: Split, mean, std, transform=None) -> torch.utils.data.Dataset:
    """Wrap ``split`` for a DataLoader: items are (normalised float32 CHW tensor, int label)."""
    return SplitDataset(split, mean, std, transform)


# ---------------------------------------------------------------------------------------------------------
# layout detection and loading
# ---------------------------------------------------------------------------------------------------------

def _archive_suffix(p: Path) -> Optional[str]:
    name = p.name.lower()
    for s in ARCHIVE_SUFFIXES:
        if name.endswith(s) and len(name) > len(s):
            return s
    return None


def _archive_stem(p: Path) -> str:
    s = _archive_suffix(p)
    return p.name[: -len(s)] if s else p.name


def _visible_children(d: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(d) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"cannot read directory {d}: {e.strerror or e}") from None


def _find_idx(d: Path, name: str) -> Optional[Path]:
    for cand in (d / name, d / (name + ".gz")):
        if cand.is_file():
            return cand
    return None


_LOOKED_FOR = ("ImageFolder train/ + test/ (or val/) with one subfolder per class, CIFAR-10 python batches "
               "(data_batch_1..5, test_batch, batches.meta), Fashion-MNIST idx files (train-images-idx3-ubyte[.gz], "
               "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]), "
               "or a single subfolder / .tar.gz archive holding one of these")


class _Loader:
    def __init__(self, cache: Path, limit: Optional[int], seed: int):
        self.cache, self.limit, self.seed = cache, limit, seed

    # -- dispatch ---------------------------------------------------------------------------------------
    def load(self, p: Path, archive: Optional[Path] = None, depth: int = 0) -> Dataset:
        if p.is_file():
            if _archive_suffix(p) is None:
                raise DataError(f"{p} is a file but not a .tar.gz/.tgz archive; pass the dataset directory "
                                f"or its archive (looked for {_LOOKED_FOR})")
            return self.load(self._unpack(p), archive=p, depth=depth)
        if not p.is_dir():
            raise DataError(f"dataset path is neither a file nor a directory: {p}")
        found = self._resolve(p, depth)
        if found is None:
            raise DataError(f"no recognised dataset layout in {p}: looked for {_LOOKED_FOR}")
        kind, where = found
        if kind == "archive":
            return self.load(self._unpack(where), archive=where, depth=depth)
        if kind == "imagefolder":
            return self._load_imagefolder(where, archive)
        if kind == "cifar":
            return self._load_cifar(where)
        return self._load_idx(where)

    def _resolve(self, d: Path, depth: int):
        """(kind, path) of the layout at or below ``d``, or None."""
        kind = self._detect_here(d)
        if kind is not None:
            return kind, d
        if depth >= _SEARCH_DEPTH:
            return None
        children = _visible_children(d)
        dirs = [Path(e.path) for e in children if e.is_dir()]
        archives = [Path(e.path) for e in children if e.is_file() and _archive_suffix(Path(e.path))]
        preferred = []
        if len(dirs) == 1:
            preferred = dirs
        else:
            stems = {_archive_stem(a) for a in archives} | set(KNOWN_CHILD_NAMES)
            preferred = [c for c in dirs if c.name in stems]
        for c in preferred:
            found = self._resolve(c, depth + 1)
            if found is not None:
                return found
        # Fashion-MNIST files may sit deeper (e.g. the Debian package's folders)
        idx = self._search_idx(d)
        if idx is not None:
            return "idx", idx
        if len(archives) == 1:
            return "archive", archives[0]
        return None

    def _detect_here(self, d: Path) -> Optional[str]:
        train, test, val = d / "train", d / "test", d / "val"
        if train.is_dir() and (test.is_dir() or val.is_dir()):
            return "imagefolder"
        present = [n for n in CIFAR_FILES if (d / n).is_file()]
        if present:
            missing = [n for n in CIFAR_FILES if n not in present]
            if missing:
                raise DataError(f"incomplete CIFAR-10 python batches in {d}: missing {', '.join(missing)}")
            return "cifar"
        if _find_idx(d, IDX_FILES[0]) is not None:
            missing = [n for n in IDX_FILES if _find_idx(d, n) is None]
            if missing:
                raise DataError(f"incomplete Fashion-MNIST idx files in {d}: missing "
                                f"{', '.join(m + '[.gz]' for m in missing)}")
            return "idx"
        if train.is_dir() and self._has_class_dirs(train):
            raise DataError(f"{d} has train/ but no test/ or val/ folder: ImageFolder needs both splits")
        return None

    @staticmethod
    def _has_class_dirs(d: Path) -> bool:
        return any(e.is_dir() for e in _visible_children(d))

    @staticmethod
    def _search_idx(d: Path) -> Optional[Path]:
        """Shallowest directory below ``d`` holding train-images-idx3-ubyte[.gz]."""
        base = len(d.parts)
        for root, dirnames, filenames in os.walk(d):
            dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
            if len(Path(root).parts) - base >= _SEARCH_DEPTH:
                dirnames[:] = []
            if IDX_FILES[0] in filenames or IDX_FILES[0] + ".gz" in filenames:
                r = Path(root)
                missing = [n for n in IDX_FILES if _find_idx(r, n) is None]
                if missing:
                    raise DataError(f"incomplete Fashion-MNIST idx files in {r}: missing "
                                    f"{', '.join(m + '[.gz]' for m in missing)}")
                return r
        return None

    # -- archives ---------------------------------------------------------------------------------------
    def _unpack(self, archive: Path) -> Path:
        st = archive.stat()
        key = hashlib.sha1(f"{archive}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
        root = self.cache / "unpacked"
        dest = root / f"{_safe_name(_archive_stem(archive))}-{key}"
        if dest.is_dir():
            return dest
        _mkdir(root)
        with _lock(root / f".{dest.name}.lock"):
            if dest.is_dir():
                return dest
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=root))
            try:
                log.info("unpacking %s into %s", archive, dest)
                try:
                    with tarfile.open(archive) as tf:
                        if hasattr(tarfile, "data_filter"):
                            tf.extractall(tmp, filter="data")
                        else:  # pragma: no cover - Python < 3.11.4
                            for m in tf.getmembers():
                                if m.name.startswith("/") or ".." in Path(m.name).parts or m.issym() or m.islnk():
                                    raise DataError(f"unsafe member {m.name!r} in archive {archive}")
                            tf.extractall(tmp)
                except (tarfile.TarError, EOFError, zipfile.BadZipFile, OSError) as e:
                    raise DataError(f"cannot unpack archive {archive}: {e}") from None
                try:
                    os.replace(tmp, dest)
                except OSError:
                    if not dest.is_dir():
                        raise
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        return dest

    # -- ImageFolder ------------------------------------------------------------------------------------
    def _load_imagefolder(self, root: Path, archive: Optional[Path]) -> Dataset:
        test_name = "test" if (root / "test").is_dir() else "val"
        listing = {s: _list_split(root / s, s) for s in ("train", test_name)}
        tr_classes, te_classes = listing["train"][0], listing[test_name][0]
        if tr_classes != te_classes:
            only_tr = sorted(set(tr_classes) - set(te_classes))
            only_te = sorted(set(te_classes) - set(tr_classes))
            parts = []
            if only_tr:
                parts.append(f"missing from {test_name}/: {only_tr}")
            if only_te:
                parts.append(f"missing from train/: {only_te}")
            raise DataError(f"train and {test_name} class sets differ in {root}: " + "; ".join(parts))
        classes = tr_classes
        fp = hashlib.sha1()
        for s in ("train", test_name):
            fp.update(listing[s][3].encode())
        fingerprint = fp.hexdigest()

        label = root.name + (", val/ as test" if test_name == "val" else "")
        source = f"ImageFolder {archive if archive is not None else root} ({label})" + self._limit_note()

        full_key = _digest("imagefolder", CACHE_VERSION, str(root), fingerprint)
        base = f"imagefolder-{_safe_name(root.name)}-{full_key[:16]}"
        full_file = self.cache / f"{base}.npz"
        splits = ("train", test_name)

        files = {s: listing[s][1] for s in splits}
        labels = {s: listing[s][2] for s in splits}
        select = {s: _select(labels[s], len(classes), self.limit, self.seed, i) for i, s in enumerate(splits)}

        arrays = _read_cache(full_file, classes, full_key)
        if arrays is not None:
            arrays = {s: (arrays[s][0][select[s]], arrays[s][1][select[s]]) if select[s] is not None else arrays[s]
                      for s in splits}
        else:
            if self.limit is None:
                cache_file, key = full_file, full_key
            else:
                key = _digest(full_key, str(self.limit), str(self.seed))
                cache_file = self.cache / f"{base}-n{self.limit}-s{self.seed}.npz"
            arrays = _read_cache(cache_file, classes, key)
            if arrays is None:
                _mkdir(self.cache)
                with _lock(self.cache / f".{cache_file.name}.lock"):
                    arrays = _read_cache(cache_file, classes, key)
                    if arrays is None:
                        sel_files = {s: files[s] if select[s] is None else [files[s][j] for j in select[s]]
                                     for s in splits}
                        sel_labels = {s: labels[s] if select[s] is None else labels[s][select[s]] for s in splits}
                        decoded = _decode_all(sel_files["train"] + sel_files[test_name])
                        n_tr = len(sel_files["train"])
                        arrays = {"train": (decoded[:n_tr], sel_labels["train"]),
                                  test_name: (decoded[n_tr:], sel_labels[test_name])}
                        _write_cache(cache_file, arrays["train"], arrays[test_name], classes, key)
        train = Split(*arrays["train"])
        test = Split(*arrays[test_name])
        return _finish(train, test, classes, source)

    def _limit_note(self) -> str:
        return f" [limit_per_class={self.limit}, seed={self.seed}]" if self.limit is not None else ""

    # -- CIFAR-10 python batches ------------------------------------------------------------------------
    def _load_cifar(self, d: Path) -> Dataset:
        meta = _unpickle(d / "batches.meta")
        names = _get(meta, "label_names", d / "batches.meta")
        try:
            classes = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
        except (TypeError, UnicodeDecodeError):
            raise DataError(f"{d / 'batches.meta'}: label_names is not a list of strings") from None
        if not classes:
            raise DataError(f"{d / 'batches.meta'}: label_names is empty")
        tr = [_cifar_batch(d / f"data_batch_{i}", len(classes)) for i in range(1, 6)]
        train = Split(np.ascontiguousarray(np.concatenate([t[0] for t in tr])),
                      np.concatenate([t[1] for t in tr]))
        test = Split(*_cifar_batch(d / "test_batch", len(classes)))
        train, test = self._apply_limit(train, test, len(classes))
        return _finish(train, test, classes, f"CIFAR-10 python batches {d}" + self._limit_note())

    # -- Fashion-MNIST idx ------------------------------------------------------------------------------
    def _load_idx(self, d: Path) -> Dataset:
        def pair(prefix: str) -> Split:
            ip, lp = _find_idx(d, f"{prefix}-images-idx3-ubyte"), _find_idx(d, f"{prefix}-labels-idx1-ubyte")
            images, labels = _read_idx(ip, 3), _read_idx(lp, 1)
            if len(images) != len(labels):
                raise DataError(f"{ip} has {len(images)} images but {lp} has {len(labels)} labels")
            if len(images) == 0:
                raise DataError(f"no images in {ip}")
            return Split(np.ascontiguousarray(images[..., None]), labels.astype(np.int64))

        train, test = pair("train"), pair("t10k")
        low = str(d).lower()
        if "mnist" in low and "fashion" not in low:
            classes, name = [str(i) for i in range(10)], "MNIST"
        else:
            classes, name = list(FASHION_MNIST_CLASSES), "Fashion-MNIST"
        for s, split in (("train", train), ("t10k", test)):
            if split.labels.min() < 0 or split.labels.max() >= len(classes):
                raise DataError(f"{d}: {s} labels outside 0..{len(classes) - 1} (max {int(split.labels.max())})")
        if train.images.shape[1:] != test.images.shape[1:]:
            raise DataError(f"{d}: train images are {train.images.shape[1:3]} but t10k images are "
                            f"{test.images.shape[1:3]}")
        train, test = self._apply_limit(train, test, len(classes))
        return _finish(train, test, classes, f"{name} idx {d}" + self._limit_note())

    def _apply_limit(self, train: Split, test: Split, n_classes: int) -> tuple[Split, Split]:
        out = []
        for i, s in enumerate((train, test)):
            sel = _select(s.labels, n_classes, self.limit, self.seed, i)
            out.append(s if sel is None else Split(np.ascontiguousarray(s.images[sel]), s.labels[sel]))
        return out[0], out[1]


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------

def _digest(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:60] or "data"


def _mkdir(d: Path) -> None:
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create cache directory {d}: {e.strerror or e} (pass another cache_dir)") from None


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Inter-process lock (e.g. several DDP ranks loading at once), best effort."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        f = open(path, "a+")
    except OSError:
        yield
        return
    try:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def _list_split(split_dir: Path, split: str) -> tuple[list[str], list[str], np.ndarray, str]:
    """(classes, files, labels, fingerprint) of one ImageFolder split."""
    entries = _visible_children(split_dir)
    class_dirs = [e for e in entries if e.is_dir()]
    fp_parts = [f"{split_dir.stat().st_mtime_ns}"]
    if not class_dirs:
        if any(e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS) for e in entries):
            raise DataError(f"{split_dir} holds images directly; ImageFolder needs one subfolder per class "
                            f"({split_dir}/<class>/<image>)")
        raise DataError(f"no images in split '{split}': {split_dir} has no class subfolders")
    classes = [e.name for e in class_dirs]
    files: list[str] = []
    labels: list[int] = []
    count, size, newest = 0, 0, 0
    empty = []
    for label, e in enumerate(class_dirs):
        n_before = len(files)
        for root, dirnames, filenames in os.walk(e.path):
            dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
            with contextlib.suppress(OSError):
                newest = max(newest, os.stat(root).st_mtime_ns)
            for fn in sorted(filenames):
                if fn.startswith(".") or not fn.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                fpath = os.path.join(root, fn)
                try:
                    st = os.stat(fpath)
                except OSError as err:
                    raise DataError(f"cannot read {fpath}: {err.strerror or err}") from None
                count += 1
                size += st.st_size
                newest = max(newest, st.st_mtime_ns)
                files.append(fpath)
                labels.append(label)
        if len(files) == n_before:
            empty.append(e.name)
    if not files:
        raise DataError(f"no images in split '{split}': {split_dir} (looked for {', '.join(IMAGE_EXTENSIONS)} "
                        f"files in its class subfolders)")
    if empty:
        raise DataError(f"class folder {split_dir / empty[0]} has no images (class '{empty[0]}' of split "
                        f"'{split}'; {len(empty)} empty class folder(s))")
    fp_parts += [split, str(count), str(size), str(newest), "|".join(classes)]
    return classes, files, np.asarray(labels, dtype=np.int64), ":".join(fp_parts)


def _select(labels: np.ndarray, n_classes: int, limit: Optional[int], seed: int, salt: int) -> Optional[np.ndarray]:
    """Indices of the first ``limit`` items per class after a seeded shuffle, in original order."""
    if limit is None:
        return None
    keep = []
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) > limit:
            rng = np.random.default_rng([seed, salt, c])
            idx = rng.permutation(idx)[:limit]
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


# -- decoding ---------------------------------------------------------------------------------------------

def _decode_one(path: str) -> np.ndarray:
    """Decode one image file to uint8 (H, W) for grayscale or (H, W, 3) otherwise."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        mode = im.mode
        if mode in ("L", "1", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
            im = im.convert("L") if mode != "L" else im
        elif mode != "RGB":
            im = im.convert("RGB")
        return np.asarray(im, dtype=np.uint8).copy()


def _decode_safe(path: str):
    try:
        return _decode_one(path), None
    except Exception as e:  # noqa: BLE001 - reported with the file name
        return None, f"{type(e).__name__}: {e}"


def _workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(_MAX_WORKERS, cores))


def _decode_all(files: list[str]) -> np.ndarray:
    """Decode ``files`` into one uint8 (N, H, W, C) array (C = 1 only if every image is grayscale)."""
    n = len(files)
    workers = _workers()
    log.info("decoding %d images with %d process(es)", n, workers if n >= _POOL_MIN_IMAGES else 1)
    results = None
    if n >= _POOL_MIN_IMAGES and workers > 1:
        import multiprocessing as mp

        try:
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
            with ctx.Pool(workers) as pool:
                results = pool.map(_decode_safe, files, chunksize=max(64, n // (workers * 16)))
        except (OSError, RuntimeError, AssertionError) as e:  # no pool here (e.g. daemonic): decode in-process
            log.info("process pool unavailable (%s); decoding sequentially", e)
            results = None
    if results is None:
        results = [_decode_safe(f) for f in files]
    first_shape = None
    gray_all = True
    for f, (arr, err) in zip(files, results):
        if arr is None:
            raise DataError(f"cannot decode image {f}: {err}")
        hw = arr.shape[:2]
        if first_shape is None:
            first_shape, first_file = hw, f
        elif hw != first_shape:
            raise DataError(f"images of different sizes: {f} is {hw[0]}x{hw[1]} (HxW) but {first_file} is "
                            f"{first_shape[0]}x{first_shape[1]}; resize them to one size first")
        gray_all = gray_all and arr.ndim == 2
    h, w = first_shape
    c = 1 if gray_all else 3
    out = np.empty((n, h, w, c), dtype=np.uint8)
    for i, (arr, _) in enumerate(results):
        out[i] = arr[..., None] if arr.ndim == 2 else arr
    return out


# -- cache ------------------------------------------------------------------------------------------------

def _read_cache(path: Path, classes: list[str], key: str):
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or [str(c) for c in z["classes"]] != list(classes):
                return None
            arrays = {"train": (z["train_images"], z["train_labels"].astype(np.int64)),
                      "test": (z["test_images"], z["test_labels"].astype(np.int64))}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        log.warning("ignoring unreadable cache %s (%s)", path, e)
        return None
    log.info("read cached arrays from %s", path)
    # the test split is stored under "test" whatever its folder was called
    arrays["val"] = arrays["test"]
    return arrays


def _write_cache(path: Path, train: tuple, test: tuple, classes: list[str], key: str) -> None:
    _mkdir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, key=np.array(key), classes=np.array(classes, dtype=str),
                     train_images=train[0], train_labels=train[1], test_images=test[0], test_labels=test[1])
        os.replace(tmp, path)
        log.info("cached decoded arrays in %s", path)
    except OSError as e:
        log.warning("could not write cache %s (%s); the next load will decode again", path, e)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# -- CIFAR pickles ------------------------------------------------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batch format (dicts, lists, numpy arrays) and nothing that could run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
            if module.startswith("numpy.core.") and hasattr(np, "_core"):
                module = "numpy._core." + module[len("numpy.core."):]
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(path: Path):
    try:
        with open(path, "rb") as f:
            return _ArrayUnpickler(f, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise DataError(f"cannot read CIFAR python batch {path}: {type(e).__name__}: {e}") from None


def _get(d, key: str, path: Path):
    if not isinstance(d, dict):
        raise DataError(f"{path} is not a CIFAR python batch (expected a pickled dict, got {type(d).__name__})")
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise DataError(f"{path} has no {key!r} entry (keys: {sorted(str(k) for k in d)})")


def _cifar_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    data = np.asarray(_get(d, "data", path))
    labels = np.asarray(_get(d, "labels", path), dtype=np.int64).reshape(-1)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: data has shape {data.shape}, expected (N, 3072) rows of 32x32 RGB planes")
    if data.dtype != np.uint8:
        if not np.issubdtype(data.dtype, np.integer) or data.min(initial=0) < 0 or data.max(initial=0) > 255:
            raise DataError(f"{path}: data must be uint8 pixel values, got {data.dtype}")
        data = data.astype(np.uint8)
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(data) == 0:
        raise DataError(f"no images in CIFAR python batch {path}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise DataError(f"{path}: labels outside 0..{n_classes - 1} (batches.meta has {n_classes} label_names)")
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


# -- idx files ----------------------------------------------------------------------------------------------

def _read_idx(path: Path, ndim: int) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read idx file {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != ndim:
        raise DataError(f"{path} is not a uint8 idx{ndim} file (bad magic {raw[:4].hex() or 'empty'}, expected "
                        f"00000{8}0{ndim})")
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"idx file {path} is truncated (header)")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"idx file {path} holds {data.size} bytes of data, its header {dims} needs "
                        f"{int(np.prod(dims))}")
    return data.reshape(dims)


# -- statistics and checks --------------------------------------------------------------------------------------

def _mean_std(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and (population) std on the 0..1 scale, from uint8 histograms."""
    c = images.shape[-1]
    flat = images.reshape(-1, c)
    hist = np.zeros((c, 256), dtype=np.int64)
    step = 1 << 20
    for start in range(0, len(flat), step):
        chunk = flat[start:start + step]
        for ch in range(c):
            hist[ch] += np.bincount(chunk[:, ch], minlength=256)
    v = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for ch in range(c):
        h = hist[ch].astype(np.float64)
        n = h.sum()
        m = float((h * v).sum() / n)
        var = float((h * (v - m) ** 2).sum() / n)
        means.append(m)
        stds.append(var ** 0.5)
    return tuple(means), tuple(stds)


def _finish(train: Split, test: Split, classes: list[str], source: str) -> Dataset:
    for name, s in (("train", train), ("test", test)):
        if len(s.labels) == 0:
            raise DataError(f"no images in the {name} split of {source}")
    if train.images.shape[1:] != test.images.shape[1:]:
        raise DataError(f"train images are {train.images.shape[1:]} (HxWxC) but test images are "
                        f"{test.images.shape[1:]} in {source}")
    train = Split(np.ascontiguousarray(train.images, dtype=np.uint8), np.asarray(train.labels, dtype=np.int64))
    test = Split(np.ascontiguousarray(test.images, dtype=np.uint8), np.asarray(test.labels, dtype=np.int64))
    mean, std = _mean_std(train.images)
    if any(s < 1 / 255 for s in std):  # a constant channel: keep the normalisation finite
        log.warning("train split of %s has a (nearly) constant channel, std %s; using std >= 1/255", source, std)
        std = tuple(max(s, 1 / 255) for s in std)
    return Dataset(train=train, test=test, classes=list(classes), source=source, mean=mean, std=std)
