"""Checkpoints that survive a kill (written atomically) and load with ``weights_only=True``:
only tensors, numbers, strings, lists and dicts go in, so no pickle of arbitrary objects."""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "rfcheck-train-1"


class CheckpointError(Exception):
    """A missing, corrupt or mismatched checkpoint (one line naming the file)."""


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4]), "state": torch.from_numpy(np_state[1].astype(np.int64))},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temp file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# What only --resume needs: a recorded copy (benchmarks/record_training.py) leaves it out.
RESUME_ONLY = ("model_raw", "optimizer", "scheduler", "scaler", "rng")


def weights_only(ck: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint a reader evaluates: the weights the run reports and its record (history,
    settings, data, model spec), without the optimizer, schedule, random state and (with EMA) raw
    weights that only resuming needs; under half the size, so it can be committed."""
    return {**{k: v for k, v in ck.items() if k not in RESUME_ONLY}, "resumable": False}


def load(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} not found")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":  # torch.save writes a zip archive
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or not a torch checkpoint (no zip header; "
                              f"{path.stat().st_size} bytes)")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated file, not a torch file, unsafe content
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or not an rfcheck checkpoint "
                              f"({type(e).__name__}: {msg[:200]})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} is not an rfcheck training checkpoint "
                              f"(format {ck.get('format') if isinstance(ck, dict) else type(ck).__name__!s})")
    return ck


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """Load weights, turning a shape/key mismatch into one line naming the checkpoint."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
        if shapes:
            parts.append(f"shape {shapes[0]}")
        raise CheckpointError(f"checkpoint {str(path)!r} does not match the model {type(model).__name__}: "
                              + "; ".join(parts))
    model.load_state_dict(state)


def spec_candidates(spec: str, checkpoint_path: Any) -> list[str]:
    """Where a stored model spec may be found: as written (relative to the folder training ran
    from), then relative to each folder above the checkpoint (a run folder or
    benchmarks/results/ inside the repository it was made in).  No absolute path is stored."""
    path, sep, name = spec.partition(":")
    if not path.endswith(".py") or os.path.isabs(path):
        return [spec]
    out = [spec]
    for folder in Path(checkpoint_path).resolve().parents:
        cand = folder / path
        if cand.exists():
            out.append(f"{cand}{sep}{name}")
    return out


def rebuild_model(ck: dict[str, Any], path: Any, spec: Any = None) -> torch.nn.Module:
    """The checkpoint's model with its weights: built from ``spec`` or the stored spec."""
    from rfcheck.loader import load as load_models
    # (checkpoints written before 2026-12-01 also carry the absolute "model_spec_abs")
    stored = [spec] if spec else [s for s in (ck.get("model_spec"), ck.get("model_spec_abs")) if s]
    specs = [c for s in stored for c in (spec_candidates(s, path) if not spec else [s])]
    model, last_err = None, None
    for s in specs:
        p = s.partition(":")[0]
        if p.endswith(".py") and not os.path.exists(p):
            continue
        try:
            model = load_models(s, meta=False)[0][1]
            break
        except Exception as e:  # try the next spelling of the spec
            last_err = e
    if model is None:
        raise CheckpointError(f"cannot rebuild the model of {str(path)!r} from "
                              f"{' or '.join(stored) or 'no stored spec'}"
                              + (f" ({last_err})" if last_err else "") + "; pass --model PATH.py:Name")
    load_model_state(model, ck["model"], path)
    return model
