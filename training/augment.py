"""Train-time augmentation (albumentations 2.0.x) for the rfcheck CIFAR-10 / Fashion-MNIST trainer.

The pipeline, applied to HWC uint8 images before normalisation, in this order:

1. ``HorizontalFlip(p=hflip)``
2. ``Affine`` (the ShiftScaleRotate recipe: translate +-10 % per axis, isotropic scale 0.9-1.1, rotate +-15 deg,
   constant border filled with the dataset mean), ``p=affine``
3. ``ToGray(num_output_channels=3, p=gray)`` -- 3-channel data only
4. ``CoarseDropout``: exactly one ``hole`` x ``hole`` square filled with the dataset mean (uint8), ``p=cutout``
   (after ToGray so the hole is exactly the mean colour)

The Compose is built with ``strict=True``, so a misspelt argument raises instead of being ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import albumentations as A
import cv2

__all__ = ["AugConfig", "RefineSchedule", "build", "build_scaled", "describe", "mean_fill", "scaled"]

AFFINE_TRANSLATE = 0.10          # fraction of the image size, each way, per axis
AFFINE_SCALE = (0.9, 1.1)
AFFINE_ROTATE = 15.0             # degrees, each way


@dataclass
class AugConfig:
    hflip: float = 0.5      # HorizontalFlip p
    affine: float = 0.5     # ShiftScaleRotate-equivalent p (A.Affine: translate +-10%, scale 0.9-1.1, rotate +-15 deg)
    cutout: float = 0.5     # CoarseDropout p: exactly ONE hole x hole square, filled with the dataset mean
    gray: float = 0.1       # ToGray p (3-channel data only; skipped for 1-channel)
    hole: int = 16

    def validate(self) -> None:
        for name in ("hflip", "affine", "cutout", "gray"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"augmentation probability {name}={v!r} must be a number in [0, 1]")
        if isinstance(self.hole, bool) or not isinstance(self.hole, int) or self.hole < 1:
            raise ValueError(f"cutout hole size hole={self.hole!r} must be a positive integer (pixels)")


def mean_fill(mean: tuple[float, ...]) -> tuple[int, ...]:
    """The dataset mean (0..1 per channel) as a uint8 colour."""
    return tuple(int(min(255, max(0, round(float(m) * 255.0)))) for m in mean)


def build(cfg: AugConfig, mean: tuple[float, ...], channels: int = 3) -> "A.Compose":
    """The train transform for HWC uint8 images with ``channels`` channels (1 or 3)."""
    cfg.validate()
    if channels not in (1, 3):
        raise ValueError(f"channels={channels!r}: only 1- or 3-channel images are supported")
    mean = tuple(mean)
    if len(mean) != channels:
        raise ValueError(f"mean {mean} has {len(mean)} value(s) but the images have {channels} channel(s)")
    fill = mean_fill(mean)
    transforms = [
        A.HorizontalFlip(p=float(cfg.hflip)),
        A.Affine(translate_percent=(-AFFINE_TRANSLATE, AFFINE_TRANSLATE), scale=AFFINE_SCALE,
                 rotate=(-AFFINE_ROTATE, AFFINE_ROTATE), keep_ratio=True, interpolation=cv2.INTER_LINEAR,
                 border_mode=cv2.BORDER_CONSTANT, fill=fill, p=float(cfg.affine)),
    ]
    if channels == 3:
        transforms.append(A.ToGray(num_output_channels=3, p=float(cfg.gray)))
    transforms.append(A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(cfg.hole, cfg.hole),
                                      hole_width_range=(cfg.hole, cfg.hole), fill=fill, p=float(cfg.cutout)))
    return A.Compose(transforms, strict=True)


def describe(cfg: AugConfig) -> str:
    """One line for logs."""
    parts = []
    if cfg.hflip > 0:
        parts.append(f"hflip p={cfg.hflip:g}")
    if cfg.affine > 0:
        parts.append(f"affine p={cfg.affine:g} (shift +-{AFFINE_TRANSLATE:.0%}, scale {AFFINE_SCALE[0]:g}-"
                     f"{AFFINE_SCALE[1]:g}, rotate +-{AFFINE_ROTATE:g}deg, mean border)")
    if cfg.cutout > 0:
        parts.append(f"cutout p={cfg.cutout:g} (1 hole {cfg.hole}x{cfg.hole}, mean fill)")
    if cfg.gray > 0:
        parts.append(f"gray p={cfg.gray:g} (3-channel only)")
    return ", ".join(parts) if parts else "none"


def scaled(cfg: AugConfig, scale: float) -> AugConfig:
    """``cfg`` with the Affine and CoarseDropout probabilities times ``scale`` (the refine phase;
    the flip and ToGray keep theirs, and every transform stays in the pipeline)."""
    if scale == 1.0:
        return cfg
    return replace(cfg, affine=float(cfg.affine) * scale, cutout=float(cfg.cutout) * scale)


def build_scaled(cfg: AugConfig, mean: tuple[float, ...], channels: int, scale: float) -> "A.Compose":
    """``build(scaled(cfg, scale), mean, channels)``: a picklable pipeline factory for worker
    processes (``functools.partial(build_scaled, cfg, mean, channels)``)."""
    return build(scaled(cfg, scale), mean, channels)


@dataclass(frozen=True)
class RefineSchedule:
    """The refine phase: over the last ``refine_epochs`` of ``epochs`` the affine and cutout
    probabilities fall linearly to ``scale`` times their value (the last epoch trains at exactly
    ``scale``; the one before the phase at 1).  ``self(epoch)`` is the factor of a 0-based epoch."""
    epochs: int
    refine_epochs: int
    scale: float = 0.5

    def __call__(self, epoch: int) -> float:
        start = self.epochs - self.refine_epochs
        if self.refine_epochs <= 0 or epoch < start:
            return 1.0
        k = min(epoch - start + 1, self.refine_epochs)
        return round(1.0 - (1.0 - self.scale) * k / self.refine_epochs, 6)
