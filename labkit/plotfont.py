"""Chinese text in matplotlib plots: one font choice for every plot labkit draws.

matplotlib's default font (DejaVu Sans) has no Chinese glyphs: a Chinese label becomes a row of
empty boxes and matplotlib warns ``Glyph … missing from font(s) DejaVu Sans``. :func:`plot_text`
picks, for the course language, either an installed font with CJK glyphs (by family name, through
``matplotlib.font_manager``) or English labels; in the second case it says so once with a
:class:`MissingCJKFont` warning that names the package to install. :meth:`PlotText.apply` gives every
text of a finished figure that font first and DejaVu Sans second, so ticks, titles and the
student's own workload names all render (matplotlib falls back glyph by glyph).

matplotlib keeps a font list cached on disk; a font installed after that cache was written (the
bootstrap installs ``fonts-wqy-microhei`` after ``pip install``, a student installs ``fonts-noto-cjk``
later) is not in it. :func:`cjk_font` then looks for the known font files and adds them.
matplotlib is imported inside the functions only (``import labkit`` stays light).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.i18n import lang, tr

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["CJK_FONTS", "MissingCJKFont", "PlotText", "cjk_font", "plot_text"]

#: Families that draw Simplified Chinese, tried in order (Linux, Windows, macOS names).
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
)
#: File names of those fonts (Debian ``fonts-noto-cjk`` / ``fonts-wqy-*``, Windows, macOS).
_FONT_FILE = re.compile(r"(NotoSans(CJK|SC)|SourceHanSans|wqy-(microhei|zenhei)|msyh|simhei|PingFang)", re.I)
#: What matplotlib draws Latin text with; second in every family list so it stays the same.
LATIN_FONT = "DejaVu Sans"


class MissingCJKFont(UserWarning):
    """The course language is Chinese but no font with Chinese glyphs is installed."""


def cjk_font(candidates: tuple[str, ...] = CJK_FONTS, *, manager: Any = None) -> str | None:
    """The first of ``candidates`` that matplotlib can use, or ``None``.

    ``manager`` is a ``matplotlib.font_manager.FontManager`` (default: matplotlib's own). When none
    of the families is in its list, the system font directories are searched for the known font
    files (:data:`_FONT_FILE`), which are added to the manager, and the list is asked again.
    """
    from matplotlib import font_manager

    fm = manager if manager is not None else font_manager.fontManager

    def first() -> str | None:
        names = {f.name for f in fm.ttflist}
        return next((n for n in candidates if n in names), None)

    found = first()
    if found is not None:
        return found
    known = {os.path.realpath(f.fname) for f in fm.ttflist}
    for path in font_manager.findSystemFonts():
        if _FONT_FILE.search(os.path.basename(path)) and os.path.realpath(path) not in known:
            try:
                fm.addfont(path)
            except (OSError, RuntimeError, ValueError):  # an unreadable or unsupported file
                continue
    return first()


@dataclass(frozen=True)
class PlotText:
    """How a plot writes text: Chinese with ``font``, or English (``font`` is ``None``)."""

    font: str | None = None
    #: Why the labels are English although the course language is Chinese (``None`` otherwise).
    note: str | None = None

    @property
    def chinese(self) -> bool:
        return self.font is not None

    @property
    def family(self) -> list[str]:
        """The ``fontfamily`` for matplotlib: the CJK font, then the Latin one."""
        return [self.font, LATIN_FONT] if self.font else [LATIN_FONT]

    def label(self, zh: str, en: str, /, **fmt: object) -> str:
        """``zh`` when the plot is Chinese, else ``en`` (both ``str.format``-ed with ``fmt``)."""
        text = zh if self.chinese else en
        return text.format(**fmt) if fmt else text

    def apply(self, fig: Figure) -> Figure:
        """Give every text of ``fig`` (titles, labels, tick labels, annotations) :attr:`family`."""
        from matplotlib.text import Text

        if self.chinese:
            for text in fig.findobj(Text):
                text.set_fontfamily(self.family)
        return fig


def plot_text(*, candidates: tuple[str, ...] = CJK_FONTS, warn: bool = True) -> PlotText:
    """The text choice for a plot in the current course language (:func:`labkit.i18n.lang`).

    Chinese with the first installed CJK font; English when the language is English. When the
    language is Chinese but no CJK font is installed, English too, with :attr:`PlotText.note` saying
    why, also issued as a :class:`MissingCJKFont` warning unless ``warn=False``.
    """
    if lang() != "zh":
        return PlotText()
    font = cjk_font(candidates)
    if font is not None:
        return PlotText(font)
    note = tr(
        "没有找到中文字体（{f} 等），图中文字改用英文：安装 fonts-noto-cjk 或 fonts-wqy-microhei 后重启内核",
        "no Chinese font found ({f} …): the plot's text is in English; install fonts-noto-cjk or "
        "fonts-wqy-microhei and restart the kernel",
        f=", ".join(candidates[:2]),
    )
    if warn:
        warnings.warn(note, MissingCJKFont, stacklevel=2)
    return PlotText(None, note)
