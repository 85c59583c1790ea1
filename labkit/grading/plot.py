"""The class summary plot: score histogram and pass rate per check, as a PNG.

Uses matplotlib's object API (``matplotlib.figure.Figure`` and its own canvas), never pyplot:
no global figure state, no GUI backend, safe in a worker thread, and nothing left open between
calls. matplotlib is imported here only, when a plot is drawn.

Labels follow the course language when a font with Chinese glyphs is installed (matplotlib's
default DejaVu Sans has none and would draw empty boxes); otherwise they are in English and a
warning says why (:func:`labkit.plotfont.plot_text`).
"""

from __future__ import annotations

import os
from pathlib import Path

from labkit.plotfont import plot_text

from .gradebook import Gradebook

__all__ = ["summary_png"]


def summary_png(gb: Gradebook, path: str | os.PathLike[str], *, dpi: int = 110) -> Path:
    """Draw the summary plot for ``gb`` into ``path`` (PNG) and return it."""
    from matplotlib.figure import Figure

    text = plot_text()
    t = text.label
    stats = gb.check_stats()
    totals = [st.total for st in gb.students if st.identified and st.total is not None]
    max_points = max(gb.manifest.total_points, 1)
    height = max(3.2, 0.28 * len(stats) + 1.2)
    fig = Figure(figsize=(11, height), dpi=dpi, layout="constrained")
    ax_hist, ax_rate = fig.subplots(1, 2, width_ratios=(1, 1.3))

    if max_points <= 40:  # one bar per possible score, centred on it
        edges = [x - 0.5 for x in range(max_points + 2)]
        ax_hist.set_xlim(-0.5, max_points + 0.5)
        ax_hist.xaxis.get_major_locator().set_params(integer=True)
    else:
        edges = [max_points * i / 20 for i in range(21)]
        ax_hist.set_xlim(0, max_points)
    ax_hist.hist(totals, bins=edges, color="#0969da", edgecolor="white")
    ax_hist.set_xlabel(t("总分", "total points") + f" (max {max_points})")
    ax_hist.set_ylabel(t("学生人数", "students"))
    ax_hist.set_title(t("分数分布", "Score distribution") + f" (n={len(totals)})")
    ax_hist.yaxis.get_major_locator().set_params(integer=True)

    labels = [s["check"] for s in stats]
    rates = [(s["pass_rate"] or 0.0) * 100 for s in stats]
    ypos = list(range(len(stats)))
    colours = ["#1a7f37" if r >= 80 else "#9a6700" if r >= 50 else "#cf222e" for r in rates]
    ax_rate.barh(ypos, rates, color=colours)
    ax_rate.set_yticks(ypos, labels, fontsize=8)
    ax_rate.invert_yaxis()
    ax_rate.set_xlim(0, 100)
    ax_rate.set_xlabel(t("通过率 (%)", "pass rate (%)"))
    ax_rate.set_title(t("各检查通过率", "Pass rate per check"))
    for y, s, r in zip(ypos, stats, rates, strict=True):
        ax_rate.text(min(r + 1, 88), y, f"{s['counts']['pass']}/{s['graded']}", va="center", fontsize=7)
    text.apply(fig)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
