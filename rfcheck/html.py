"""The HTML view of a :class:`DesignCheck` (what Jupyter shows for ``rfcheck.summary(...)``).

Self-contained: inline CSS scoped to ``.rfcheck``, no script, no link to anything, every name
escaped.  Colours are mid-tones on translucent backgrounds and text inherits the notebook's
colour, so the report reads in light and dark themes.  The RF plot is inlined as a base64 PNG
when matplotlib is installed and :mod:`rfcheck.plot` returns a figure; otherwise it is left out."""
from __future__ import annotations

import base64
import importlib.util
import io
from html import escape
from typing import TYPE_CHECKING, Optional

from .render import TABLE_HEAD, _view, _x, layer_rows, row_cells
from .render import summary as summary_text

if TYPE_CHECKING:
    from .design import DesignCheck

STYLE = """
.rfcheck { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 13px; color: inherit;
  line-height: 1.4; }
.rfcheck h3 { margin: 4px 0 6px 0; font-size: 15px; }
.rfcheck table { border-collapse: collapse; margin: 6px 0 10px 0; font-size: 12px; }
.rfcheck th, .rfcheck td { border: 1px solid rgba(128, 128, 128, 0.35); padding: 2px 7px; text-align: left;
  vertical-align: top; color: inherit; background: transparent; }
.rfcheck th { background: rgba(128, 128, 128, 0.15); font-weight: 600; }
.rfcheck td.num { text-align: right; font-variant-numeric: tabular-nums; }
.rfcheck code, .rfcheck pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 12px; color: inherit; background: transparent; }
.rfcheck pre { margin: 4px 0; white-space: pre-wrap; }
.rfcheck .mark { display: inline-block; padding: 0 6px; border-radius: 3px; font-weight: 700; color: #fff; }
.rfcheck .pass { background: #1a7f37; }
.rfcheck .fail { background: #cf222e; }
.rfcheck tr.flagged td { background: rgba(210, 153, 34, 0.18); }
.rfcheck .note { border-left: 3px solid rgba(128, 128, 128, 0.6); padding-left: 6px; margin: 4px 0; }
.rfcheck ul { margin: 2px 0 8px 0; padding-left: 22px; }
.rfcheck img { max-width: 100%; background: #fff; border-radius: 3px; }
"""

_NUMERIC = {"RF", "RF min", "jump", "start", "params", "MACs"}


def _mark(passed: bool) -> str:
    return f'<span class="mark {"pass" if passed else "fail"}">{"PASS" if passed else "FAIL"}</span>'


def _picture(check: "DesignCheck") -> str:
    """The RF plot as an inline PNG, or "" when it cannot be drawn here."""
    if importlib.util.find_spec("matplotlib") is None:
        return ""
    try:
        from . import plot as plot_module
        fig = plot_module.plot(check.report)
        if not hasattr(fig, "savefig"):
            return ""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        try:  # a pyplot figure would be shown a second time by the inline backend
            import matplotlib.pyplot as plt
            plt.close(fig)
        except Exception:
            pass
    except Exception:  # a picture is never worth a broken report
        return ""
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="RF and jump per layer" src="data:image/png;base64,{data}">'


def html(check: "DesignCheck", depth: Optional[int] = None, verbose: Optional[bool] = None,
         picture: bool = True) -> str:
    report = check.report
    depth, verbose, notes = _view(check, depth, verbose)
    e = escape
    out = ['<div class="rfcheck">', f"<style>{STYLE}</style>"]
    verdict = ""
    if check.results:
        verdict = " " + _mark(check.passed)
    out.append(f"<h3>rfcheck: {e(report.model)} (input {e(_x(report.input_size))}){verdict}</h3>")
    out += [f'<div class="note">{e(n)}</div>' for n in notes]
    out.append(f"<pre>{e(summary_text(report))}</pre>")
    if check.results:
        failed = len(check.failed)
        out.append(f"<div><b>rules:</b> {len(check.results) - failed} passed, {failed} failed</div>")
        out.append('<table class="rules"><thead><tr><th>rule</th><th>result</th><th>details</th></tr></thead><tbody>')
        for r in check.results:
            fixes = check.advice(r.rule)
            details = e(r.message)
            if not r.passed and r.layers:
                details += "<br>layers: " + e(", ".join(r.layers[:8]) + (" ..." if len(r.layers) > 8 else ""))
            if fixes:
                details += "<ul>" + "".join(f"<li>fix: {e(a)}</li>" for a in fixes) + "</ul>"
            out.append(f"<tr><td><code>{e(r.rule)}</code></td><td>{_mark(r.passed)}</td><td>{details}</td></tr>")
        out.append("</tbody></table>")
    claims = getattr(check, "claims", None)
    if claims is not None and hasattr(claims, "text"):
        out.append(f"<div><b>your RF claim:</b></div><pre>{e(claims.text())}</pre>")
    if check.warnings:
        out.append("<div><b>warnings:</b></div><ul>")
        out += [f"<li><code>{e(w.code)}</code> {e(w.message)}</li>" for w in check.warnings]
        out.append("</ul>")
    rows = layer_rows(report, depth, verbose)
    head = (["module"] + TABLE_HEAD[1:]) if depth is not None and not verbose else TABLE_HEAD
    view = "every layer" if verbose else (f"modules at depth {depth}" if depth is not None else
                                          "compact: BatchNorm, activations and reshapes folded into the row above")
    out.append(f"<div><b>layers</b> ({e(view)}):</div>")
    out.append('<table class="layers"><thead><tr>' + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>")
    for r in rows:
        cells = row_cells(r)
        cls = ' class="flagged"' if r.flags else ""
        tds = "".join(f'<td class="num">{e(c)}</td>' if h in _NUMERIC else f"<td>{e(c)}</td>"
                      for h, c in zip(head, cells))
        out.append(f"<tr{cls}>{tds}</tr>")
    out.append("</tbody></table>")
    if picture:
        img = _picture(check)
        if img:
            out.append(img)
    out.append("</div>")
    return "\n".join(out)
