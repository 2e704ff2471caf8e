"""The zoo sweep: rfcheck on the smallest variants of every timm family and of every torchvision
classification, segmentation, video and detection family, at their default input sizes.

    python -m benchmarks.zoo                              # everything (~30 min on 2 cores)
    python -m benchmarks.zoo --only resnet18,timm:vit_tiny_patch16_224 --out /tmp/zoo.md

Per model, in a forked child (``analyzer.runner.run_forked``: a timeout and a memory cap):

* **status**: the analysis ran (``ok``), or the one-line error it gave;
* **exact**, the model RF and where it is taken, and the codes and layers of every diagnostic that
  makes a value not exact (RF101-RF105): a non-exact row must name its op;
* **time** and **peak RSS** of the first ``analyze()`` of a model built on the meta device (what the
  command line runs), the RSS over what the process held before the call; the same at 4096x4096
  for the 2D classification and segmentation models;
* **params**: rfcheck's count against ``sum(p.numel() for p in model.parameters())``;
* **untouched**: the same analysis on a model built on the CPU with real weights leaves every
  parameter and buffer (identity, device, dtype, values) and every module's mode as they were, and
  a real forward in eval mode still runs;
* **reference** (a sample): the gradient reference (``benchmarks/analyzer/reference.py``: float64,
  positive weights, at the input of the global pool) for exact CNN rows, and for attention models
  whose RF is the whole input, that one output logit of the positive copy has a non-zero gradient
  at every input pixel.

A detector's forward ends in data-dependent post-processing: its row is the analysis of the whole
model (which must say so) and the backbone's numbers, as the message tells a user to do.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn as nn

from benchmarks.analyzer.runner import run_forked
from benchmarks.analyzer.util import fmt_mb, fmt_num, fmt_s, log, short_error
from benchmarks.procmem import proc_status_kb, reset_peak

ROOT = Path(__file__).resolve().parents[1]
#: codes that make a value not exact
NOT_EXACT = ("RF101", "RF102", "RF103", "RF104", "RF105")
#: variants kept per family, smallest first (by parameter count)
PER_FAMILY = 2
#: gradient reference only where rfcheck's RF is at most this (the input grows with the RF)
REF_MAX_RF = 520
#: the sample of exact CNN rows checked against the gradient reference
REF_CNN = 30
REF_ATTENTION = 8
#: the wide input every 2D classification and segmentation model is also analysed at, and its limits
BIG, BIG_S, BIG_MB = 4096, 2.0, 300.0
_ATTN_WORDS = ("attention", "attn", "mhsa", "selfatt")


# -- the catalog -------------------------------------------------------------------------------
def _meta_params(build: Callable[[], nn.Module]) -> Optional[int]:
    try:
        with torch.device("meta"):
            m = build()
        return sum(p.numel() for p in m.parameters())
    except Exception:  # noqa: BLE001 - not buildable on meta: sized last
        return None


def _smallest(names: list[str], build_of: Callable[[str], Callable[[], nn.Module]]) -> list[str]:
    sized = [(n, _meta_params(build_of(n))) for n in names]
    sized.sort(key=lambda t: (t[1] is None, t[1] or 0, t[0]))
    return [n for n, _ in sized[:PER_FAMILY]]


def _tv_size(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """The crop size of the builder's default weights' transforms (their metadata: no download)."""
    import torchvision
    try:
        t = torchvision.models.get_model_weights(name).DEFAULT.transforms()
        crop = getattr(t, "crop_size", None) or getattr(t, "resize_size", None)
        if crop:
            hw = tuple(crop) if len(crop) == 2 else (crop[0], crop[0])
            return default[:-2] + hw
    except Exception:  # noqa: BLE001 - no weights enum: the default
        pass
    return default


def catalog(only: Optional[set[str]] = None) -> list[dict[str, Any]]:
    """Rows to measure: {key, source, family, spec, size, kind}."""
    import timm
    import torchvision
    import torchvision.models as tvm
    rows: list[dict[str, Any]] = []
    groups = [("classification", tvm, (3, 224, 224), {}), ("segmentation", tvm.segmentation, (3, 520, 520),
              {"weights_backbone": None}), ("video", tvm.video, (3, 16, 112, 112), {}),
              ("detection", tvm.detection, (3, 800, 800), {"weights_backbone": None})]
    for kind, module, default, kw in groups:
        fams: dict[str, list[str]] = {}
        for n in torchvision.models.list_models(module=module):
            fn = torchvision.models.get_model_builder(n)
            fams.setdefault(fn.__module__.rsplit(".", 1)[-1], []).append(n)
        for fam, names in sorted(fams.items()):
            if only is not None:
                names = [n for n in names if n in only]
                if not names:
                    continue
            def build_of(n: str, kwargs=kw) -> Callable[[], nn.Module]:
                return lambda: torchvision.models.get_model(n, weights=None, **kwargs)
            for n in (names if only is not None else _smallest(names, build_of)):
                size = _tv_size(n, default)
                if n.startswith("ssdlite"):
                    size = (3, 320, 320)
                elif n.startswith("ssd"):
                    size = (3, 300, 300)
                args = ", ".join(["weights=None"] + [f"{k}={v!r}" for k, v in kw.items()])
                rows.append({"key": n, "source": f"torchvision {kind}", "family": fam, "kind": kind, "size": size,
                             "spec": f"torchvision.models:{n}" if kind == "classification" else
                             f"torchvision.models.{kind}:{n}({args})", "build": build_of(n)})
    for fam in timm.list_modules():
        names = timm.list_models(module=fam)
        if only is not None:
            names = [n for n in names if f"timm:{n}" in only]
            if not names:
                continue
        if not names:
            continue

        def build_of(n: str) -> Callable[[], nn.Module]:
            return lambda: timm.create_model(n, pretrained=False)
        for n in (names if only is not None else _smallest(names, build_of)):
            cfg = timm.get_pretrained_cfg(n)
            size = tuple(cfg.input_size) if cfg is not None and cfg.input_size else (3, 224, 224)
            rows.append({"key": f"timm:{n}", "source": "timm", "family": fam, "kind": "classification",
                         "size": size, "spec": f"timm:{n}", "build": build_of(n)})
    return rows


# -- one model (in a forked child) -------------------------------------------------------------
def _big(model: nn.Module, size: tuple[int, ...]) -> dict[str, Any]:
    """The analysis at BIG x BIG: time and peak RSS over the process before the call, or why not
    (a model whose position embeddings fix its input size says so)."""
    _, error, seconds, mb = _measured(model, (size[0], BIG, BIG))
    return {"big_error": error[:120]} if error else {"big_s": seconds, "big_rss_mb": mb}


def _measured(model: nn.Module, size: tuple[int, ...]) -> tuple[Any, Optional[str], float, float]:
    """(report or None, the one-line error or None, seconds, peak RSS in MB over the process
    before the call) of one ``analyze()``."""
    from rfcheck import analyze
    from rfcheck.errors import RFCheckError
    reset_peak()
    rss0 = proc_status_kb("VmRSS")
    t0 = time.perf_counter()
    rep, error = None, None
    try:
        rep = analyze(model, size)
    except RFCheckError as e:
        error = " ".join(str(e).split())
    return rep, error, time.perf_counter() - t0, (proc_status_kb("VmHWM") - rss0) / 1024


def _snapshot(model: nn.Module) -> dict[str, Any]:
    tensors = {f"p:{k}": v for k, v in model.named_parameters(remove_duplicate=False)}
    tensors.update({f"b:{k}": v for k, v in model.named_buffers(remove_duplicate=False)})
    return {"tensors": {k: (id(t), t.device, t.dtype, t.requires_grad, t.detach().clone()) for k, t in tensors.items()},
            "modes": {k: m.training for k, m in model.named_modules(remove_duplicate=False)}}


def _changes(model: nn.Module, before: dict[str, Any]) -> list[str]:
    after = _snapshot(model)
    out = []
    for k, (i, dev, dt, rg, val) in before["tensors"].items():
        if k not in after["tensors"]:
            out.append(f"{k} gone")
            continue
        i2, dev2, dt2, rg2, val2 = after["tensors"][k]
        if (i, dev, dt, rg) != (i2, dev2, dt2, rg2):
            out.append(f"{k} replaced or moved")
        elif not torch.equal(val, val2):
            out.append(f"{k} values changed")
    out += [f"{k} added" for k in after["tensors"].keys() - before["tensors"].keys()]
    out += [f"mode of {k or 'model'}" for k, t in before["modes"].items() if after["modes"].get(k) != t]
    return out


def _is_attention(model: nn.Module, rep) -> bool:
    names = {type(m).__name__.lower() for m in model.modules()}
    return any(w in n for n in names for w in _ATTN_WORDS) or any(l.kind == "attention" for l in rep.layers)


def _summary(rep) -> dict[str, Any]:
    flagged = [f"{w.code} {w.layer}" for w in rep.warnings if w.code in NOT_EXACT]
    layer = next((l for l in rep.layers if l.name == rep.rf.at), None)
    return {"exact": bool(rep.rf.exact), "rf": tuple(rep.rf.size), "at": rep.rf.at, "params": rep.params.total,
            "jump": tuple(float(j) for j in rep.rf.jump) if rep.rf.jump else
            (tuple(float(j) for j in layer.jump) if layer else ()),
            "flagged": flagged, "report_exact": bool(rep.exact)}


def model_child(row: dict[str, Any]) -> dict[str, Any]:
    from rfcheck import analyze
    from rfcheck.errors import RFCheckError
    from rfcheck.loader import load
    torch.set_num_threads(1)
    size, out = row["size"], {}
    # what the command line runs: built on meta, analysed once
    t0 = time.perf_counter()
    (_, meta_model), = load(row["spec"])
    out["build_s"] = time.perf_counter() - t0
    rep, error, out["analysis_s"], out["rss_mb"] = _measured(meta_model, size)
    if error:
        out["error"] = error
    target = meta_model
    if rep is None and row["kind"] == "detection" and hasattr(meta_model, "backbone"):
        out["detector_message"] = out.pop("error")
        target = meta_model.backbone
        rep = analyze(target, size)
    if rep is not None:
        out.update(_summary(rep))
        out["attention"] = _is_attention(target, rep)
        if len(size) == 3 and row["kind"] in ("classification", "segmentation"):
            out.update(_big(target, size))
    del meta_model, target
    # the same on real weights: equal numbers, the model untouched, a real forward still runs
    torch.manual_seed(0)
    real = row["build"]()
    out["unique_params"] = sum(p.numel() for p in real.parameters())
    sub = real.backbone if "detector_message" in out else real
    before = _snapshot(real)
    try:
        rep2 = analyze(sub, size)
        out["real_same"] = rep is not None and (tuple(rep2.rf.size), rep2.params.total) == (out["rf"], out["params"])
    except RFCheckError as e:
        out["real_same"] = rep is None and " ".join(str(e).split()) == out.get("error")
    if "detector_message" in out:  # (the whole detector too: the failed trace must restore it as well)
        try:
            analyze(real, size)
        except RFCheckError:
            pass
    changed = _changes(real, before)
    real.eval()
    try:
        with torch.no_grad():
            x = torch.randn(1, *size)
            real([x[0]]) if row["kind"] == "detection" else real(x)
        forward = "ok"
    except Exception as e:  # noqa: BLE001 - reported
        forward = short_error(e)
    out["untouched"] = "yes" if not changed and forward == "ok" else "; ".join(changed[:3] + (
        [f"forward: {forward}"] if forward != "ok" else []))
    return out


def _attention_reference(row: dict[str, Any]) -> dict[str, Any]:
    """Whether one output logit of the positive float64 copy depends on every input pixel."""
    from tests.reference import positive_copy
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = positive_copy(row["build"]()).double().eval()
    x = torch.ones(1, *row["size"], dtype=torch.float64, requires_grad=True)
    y = model(x)
    y = y[0] if isinstance(y, (tuple, list)) else y
    y.reshape(-1)[0].backward()
    nz = x.grad[0].abs().sum(0) > 0
    return {"ref_whole": bool(nz.all()), "ref_share": float(nz.double().mean())}


def reference_row(row: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.analyzer.reference import reference_child
    if res.get("attention"):
        return _attention_reference(row)
    torch.manual_seed(0)
    model = row["build"]().eval()
    got = reference_child(row["key"], model, row["size"], res["rf"], res["jump"], 240.0, 2)
    return {k: got[k] for k in ("grad_rf", "grad_jump", "grad_error", "grad_s") if k in got}


# -- the report --------------------------------------------------------------------------------
def _ref_cell(r: dict[str, Any]) -> str:
    ref = r.get("ref")
    if not ref:
        return ""
    if "error" in ref:
        return f"error: {ref['error']}"
    if "ref_whole" in ref:
        ok = ref["ref_whole"] and all(a == b for a, b in zip(r["rf"], r["row"]["size"][1:]))
        return ("RF = input: agrees" if ok else
                f"gradient reaches {ref['ref_share']:.0%} of the input; rfcheck {fmt_num(r['rf'])}: DISAGREES")
    if "grad_rf" in ref:
        ok = tuple(ref["grad_rf"]) == tuple(r["rf"]) and all(
            abs(a - b) < 1e-6 for a, b in zip(ref["grad_jump"], r["jump"]))
        return (f"{fmt_num(tuple(ref['grad_rf']))} / j {fmt_num(tuple(ref['grad_jump']))}: "
                f"{'agrees' if ok else 'DISAGREES'}")
    return f"not measured: {ref.get('grad_error', '?')}"


def _verdict(r: dict[str, Any]) -> str:
    if "crash" in r:
        return "crash"
    return "ok" if "error" not in r else "error"


def markdown(results: list[dict[str, Any]], command: str, started: datetime.datetime, minutes: float) -> str:
    import timm
    import torchvision

    import rfcheck
    ok = [r for r in results if _verdict(r) == "ok"]
    crashed = [r for r in results if _verdict(r) == "crash"]
    errors = [r for r in results if _verdict(r) == "error"]
    cnn = [r for r in ok if not r.get("attention")]
    cnn_not_exact = [r for r in cnn if not r["exact"]]
    unnamed = [r for r in ok if not r["exact"] and not r["flagged"]]
    vits = [r for r in ok if r.get("attention") and r["row"]["family"] in ("vision_transformer", "deit", "vit")]
    vit_bad = [r for r in vits if not (r["exact"] and tuple(r["rf"]) == tuple(r["row"]["size"][1:]))]
    refs = [r for r in results if r.get("ref")]
    agree = [r for r in refs if _ref_cell(r).endswith("agrees")]
    disagree = [r for r in refs if "DISAGREES" in _ref_cell(r)]
    untouched_bad = [r for r in ok if r.get("untouched") != "yes"]
    params_bad = [r for r in ok if "detector_message" not in r and r.get("params") != r.get("unique_params")]
    big = [r for r in ok if "big_s" in r]
    big_bad = [r for r in big if r["big_s"] > BIG_S or r["big_rss_mb"] > BIG_MB]
    big_na = [r for r in ok if "big_error" in r]
    times = sorted(r["analysis_s"] for r in results if "analysis_s" in r)
    rss = sorted(r["rss_mb"] for r in results if "rss_mb" in r)

    def names(rs, n=12):
        shown = ", ".join(r["row"]["key"] for r in rs[:n])
        return (shown + (f" and {len(rs) - n} more" if len(rs) > n else "")) or "-"
    lines = [
        "# The zoo sweep: rfcheck on every timm and torchvision family", "",
        "Generated by `python -m benchmarks.zoo` (how every column is read: its docstring).", "",
        f"- **Command** (repository root, venv active): `{command}`",
        f"- **Date**: {started:%Y-%m-%d %H:%M} UTC; {minutes:.1f} min",
        f"- **Machine**: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}; CPU only; one "
        "torch thread per analysis",
        f"- **Software**: Python {platform.python_version()}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, timm {timm.__version__}, rfcheck {rfcheck.__version__}",
        f"- **Models**: the {PER_FAMILY} smallest variants (by parameter count) of each of timm's modules and of "
        "each torchvision family of classification, segmentation, video and detection builders, weights=None / "
        "pretrained=False, at the default input size of their weights' transforms or timm config",
        "", "## Targets", "",
        "| target | measured | met? |", "|---|---|---|",
        f"| no crash | {len(crashed)} crashed of {len(results)} ({names(crashed)}) | {'yes' if not crashed else 'NO'} |",
        f"| analysis ran | {len(ok)} of {len(results)}; errors: {names(errors)} | "
        f"{'yes' if not errors else 'NO'} |",
        f"| every CNN exact | {len(cnn) - len(cnn_not_exact)} of {len(cnn)}; not exact: {names(cnn_not_exact)} | "
        f"{'yes' if not cnn_not_exact else 'NO'} |",
        f"| ViT/DeiT global attention exact, RF = input | {len(vits) - len(vit_bad)} of {len(vits)}; not: "
        f"{names(vit_bad)} | {'yes' if vits and not vit_bad else 'NO'} |",
        f"| every non-exact row names its op | {len(unnamed)} rows without a diagnostic ({names(unnamed)}) | "
        f"{'yes' if not unnamed else 'NO'} |",
        f"| exact values equal the reference on a sample of >= 30 | {len(agree)} agree, {len(disagree)} disagree "
        f"({names(disagree)}), of {len(refs)} sampled | {'yes' if len(agree) >= 30 and not disagree else 'NO'} |",
        f"| model untouched after analysis | {len(ok) - len(untouched_bad)} of {len(ok)}; not: {names(untouched_bad)} "
        f"| {'yes' if not untouched_bad else 'NO'} |",
        f"| params = unique numel | {len(ok) - len(params_bad)} of {len(ok)}; not: {names(params_bad)} | "
        f"{'yes' if not params_bad else 'NO'} |",
        f"| analysis at {BIG}x{BIG} within {BIG_S:g} s and {BIG_MB:g} MB over the process before it | "
        f"{len(big) - len(big_bad)} of {len(big)} 2D classification/segmentation models; over: {names(big_bad)}; "
        f"not run ({len(big_na)}, the model fixes its input size or fails there): {names(big_na)} | "
        f"{'yes' if not big_bad else 'NO'} |",
        "", f"Analysis time (first call, meta model): median {fmt_s(times[len(times) // 2]) if times else '-'}, "
        f"max {fmt_s(times[-1]) if times else '-'}; peak RSS over the process before the call: median "
        f"{fmt_mb(rss[len(rss) // 2]) if rss else '-'}, max {fmt_mb(rss[-1]) if rss else '-'}.", "",
        "## Per model", "",
        "| source | family | model | input | kind | status | exact | RF (at) | not exact because | time | RSS | "
        f"at {BIG} | params (rfcheck / unique) | untouched | reference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        row = r["row"]
        size = "x".join(map(str, row["size"]))
        if _verdict(r) == "crash":
            lines.append(f"| {row['source']} | {row['family']} | {row['key']} | {size} | | CRASH: {r['crash']} "
                         "| | | | | | | | | |")
            continue
        status = "ok" if "error" not in r else f"error: {r['error'][:160]}"
        if "detector_message" in r:
            status = f"detector: {r['detector_message'][:120]}...; backbone analysed"
        kind = "attention" if r.get("attention") else "CNN"
        cells = [row["source"], row["family"], row["key"], size, kind, status]
        if "rf" in r:
            flagged = ", ".join(r["flagged"][:3]) + (f" (+{len(r['flagged']) - 3})" if len(r["flagged"]) > 3 else "")
            cells += ["yes" if r["exact"] else "no", f"{fmt_num(r['rf'])} (`{r['at']}`)", flagged]
        else:
            cells += ["", "", ""]
        at_big = (f"{fmt_s(r['big_s'])}, {fmt_mb(r['big_rss_mb'])}" if "big_s" in r else
                  ("n/a" if "big_error" in r else ""))
        cells += [fmt_s(r.get("analysis_s")), fmt_mb(r.get("rss_mb")), at_big,
                  f"{r.get('params', 0):,} / {r.get('unique_params', 0):,}" if "params" in r else "",
                  r.get("untouched", ""), _ref_cell(r)]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _pick_reference(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sample: exact CNN rows with an RF small enough, one per family first; attention rows
    whose RF is the whole input."""
    cnn, att, fams = [], [], set()
    for r in results:
        if _verdict(r) != "ok" or not r.get("exact") or "detector_message" in r:
            continue
        whole = tuple(r["rf"]) == tuple(r["row"]["size"][1:])
        if r.get("attention"):
            if whole and len(att) < REF_ATTENTION:
                att.append(r)
        elif max(r["rf"]) <= REF_MAX_RF and (r["row"]["source"], r["row"]["family"]) not in fams and \
                r["row"]["kind"] == "classification":
            cnn.append(r)
            fams.add((r["row"]["source"], r["row"]["family"]))
    return cnn[:REF_CNN] + att


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=None, help="comma-separated builder names (timm ones as timm:NAME)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per model (default 300)")
    ap.add_argument("--mem-cap-gb", type=float, default=14.0)
    ap.add_argument("--no-reference", action="store_true", help="skip the gradient reference sample")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "zoo.md"))
    args = ap.parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.perf_counter()
    only = {s.strip() for s in args.only.split(",")} if args.only else None
    rows = catalog(only)
    log(f"{len(rows)} models")
    results = []
    for i, row in enumerate(rows, 1):
        res = run_forked(model_child, (row,), args.timeout, args.mem_cap_gb)
        if "where" in res and "error" in res and "analysis_s" not in res:
            res = {"crash": res["error"]}
        res["row"] = row
        results.append(res)
        log(f"{i}/{len(rows)} {row['key']}: {res.get('crash') or res.get('error') or ('exact' if res.get('exact') else 'not exact')}")
    if not args.no_reference:
        for r in _pick_reference(results):
            got = run_forked(reference_row, (r["row"], r), args.timeout, args.mem_cap_gb)
            r["ref"] = got
            log(f"reference {r['row']['key']}: {_ref_cell(r)}")
    command = " ".join(["python -m benchmarks.zoo"] + (sys.argv[1:] if argv is None else argv))
    Path(args.out).write_text(markdown(results, command, started, (time.perf_counter() - t_start) / 60))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
