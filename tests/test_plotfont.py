"""Chinese labels in labkit's plots: drawn with a CJK font when one is installed, or English with a
warning that says why. Real matplotlib and the fonts this machine has (the bootstrap installs
``fonts-wqy-microhei``); a draw is a real ``savefig``, whose missing-glyph warnings are recorded."""

from __future__ import annotations

import copy
import io
import warnings

import pytest
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.text import Text

from labkit.i18n import use_lang
from labkit.logic.consolidation import Host, Workload, plan_placement, plot_placement
from labkit.plotfont import CJK_FONTS, LATIN_FONT, MissingCJKFont, PlotText, cjk_font, plot_text


def _draw(fig: Figure) -> list[str]:
    """Render ``fig`` to PNG; the messages of the warnings the draw raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    return [str(w.message) for w in caught]


def _missing_glyphs(messages: list[str]) -> list[str]:
    return [m for m in messages if "missing from font" in m]


@pytest.fixture
def font() -> str:
    found = cjk_font()
    if found is None:
        pytest.fail("no CJK font installed: scripts/bootstrap.sh installs fonts-wqy-microhei")
    return found


def test_the_default_font_really_lacks_chinese_glyphs():
    """The control: without labkit's font choice, matplotlib warns about every Chinese glyph."""
    fig = Figure()
    fig.text(0.5, 0.5, "运行", fontfamily=LATIN_FONT)
    assert _missing_glyphs(_draw(fig))


def test_a_chinese_consolidation_plot_draws_every_glyph(font):
    hosts = [Host(f"服务器-{i}", 8, 32) for i in (1, 2, 3)]
    work = [Workload("邮件", 2.4, 4), Workload("网站", 2.4, 4), Workload("业务", 2.4, 4)]
    placement = plan_placement(hosts, work, 0.8)
    with use_lang("zh"):
        fig = plot_placement(placement)
    texts = [t for t in fig.findobj(Text) if t.get_text()]
    assert any("台主机" in t.get_text() for t in texts)  # the title is Chinese …
    assert any("空出" in t.get_text() for t in texts)
    assert any(t.get_text() == "邮件" for t in texts)  # … and so are the student's names
    assert _missing_glyphs(_draw(fig)) == []  # … and every glyph exists
    assert all(t.get_fontfamily()[0] == font for t in texts)


def test_an_english_plot_keeps_matplotlibs_font():
    hosts = [Host("server-1", 8, 32)]
    with use_lang("en"):
        fig = plot_placement(plan_placement(hosts, [Workload("mail", 2, 4)], 0.8))
    title = fig.axes[0].get_title()
    assert title == "1 of 1 hosts used; freed: none"
    assert _missing_glyphs(_draw(fig)) == []


def test_without_a_cjk_font_the_plot_is_english_and_says_why():
    with use_lang("zh"), pytest.warns(MissingCJKFont, match="fonts-wqy-microhei") as caught:
        text = plot_text(candidates=("No Such Font SC",))
    assert text.font is None and not text.chinese
    assert text.note == str(caught[0].message)
    assert "没有找到中文字体" in text.note  # said in the course language (the notebook can show it)
    assert text.label("用了 {n} 台", "{n} used", n=2) == "2 used"
    fig = Figure()
    fig.text(0.1, 0.1, text.label("空出", "freed"))
    assert text.apply(fig) is fig
    assert _missing_glyphs(_draw(fig)) == []


def test_english_needs_no_font_and_never_warns():
    with use_lang("en"), warnings.catch_warnings():
        warnings.simplefilter("error")
        text = plot_text(candidates=("No Such Font SC",))
    assert text == PlotText()
    assert text.family == [LATIN_FONT]


def test_a_font_installed_after_matplotlibs_cache_is_found(font):
    """matplotlib's cached font list predates a font installed later: the file is found and added."""
    stale = copy.copy(font_manager.fontManager)
    # every face of those font files goes (WenQuanYi Micro Hei Mono shares the Micro Hei file)
    stale.ttflist = [f for f in font_manager.fontManager.ttflist if not f.name.startswith(CJK_FONTS)]
    assert {f.name for f in stale.ttflist}.isdisjoint(CJK_FONTS)
    assert cjk_font(manager=stale) == font
    assert font in {f.name for f in stale.ttflist}
    again = len(stale.ttflist)
    assert cjk_font(manager=stale) == font
    assert len(stale.ttflist) == again  # found in the list now: nothing added twice
