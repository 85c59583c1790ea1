"""Chapter 3.4 compression: real measurements with zlib and the zstd/lz4 commands on course-like
data, the transfer-time model, and its plot (with a CJK font in Chinese). No timing assertions."""

from __future__ import annotations

import io
import math
import shutil
import warnings

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import compression as cz
from labkit.plotfont import cjk_font
from labkit.steps.compression import MeasureCompression
from tests.planmatch import execute_and_match


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """One real run (1 MiB per data set), shared by the tests below."""
    step = MeasureCompression(str(tmp_path_factory.mktemp("cz")), size="1M")
    result, ran = execute_and_match(step)
    return step, result, ran


def test_data_sets_are_deterministic_and_sized():
    for make in (cz.csv_logs, cz.json_logs, cz.random_bytes):
        assert make(100_000) == make(100_000)
        assert len(make(100_000)) == 100_000
    assert cz.csv_logs(2000).startswith(b"time,host,student,event,status,bytes,ms\n")
    first = cz.json_logs(4000).split(b"\n", 1)[0]
    assert first.startswith(b'{"time":"2026-03-') and first.endswith(b"}")
    assert cz.random_bytes(1000, seed=1) != cz.random_bytes(1000, seed=2)


def test_argv_builders_validate():
    assert cz.build_compress("zstd", 3, "a", "b") == ["zstd", "-q", "-f", "-3", "a", "-o", "b"]
    assert cz.build_decompress("lz4", "b", "c") == ["lz4", "-q", "-f", "-d", "b", "c"]
    for codec, level in (("zstd", 0), ("zstd", 22), ("lz4", 13), ("zstd", True), ("rm", 1)):
        with pytest.raises(InvalidField):
            cz.build_compress(codec, level, "a", "b")


def test_measure_compression_for_real(measured):
    step, result, ran = measured
    assert result.status == "pass", result.message
    ev = result.evidence
    assert ev["mismatched"] == []
    present = [c for c in cz.CLI_CODECS if shutil.which(c)]
    assert ev["missing_codecs"] == [c for c in cz.CLI_CODECS if c not in present]
    expected = {(d, c, lv) for d in ev["datasets"] for c in ("gzip", *present) for lv in cz.LEVELS[c]}
    assert {(r["dataset"], r["codec"], r["level"]) for r in ev["rows"]} == expected
    for row in ev["rows"]:
        m = cz.Measurement.from_row(row)
        assert m.compress_s > 0 and m.decompress_s > 0 and m.compressed > 0
        if row["dataset"] in ("csv", "json", "qcow2"):
            assert m.ratio > 2, row  # log text compresses well
        else:
            assert 0.99 < m.ratio <= 1.0 + 1e-9, row  # random bytes do not
            assert cz.break_even_bps(m) is None
    assert "qcow2" in ev["datasets"]  # qemu-img and qemu-io are installed here
    assert any(a[:2] == ["qemu-img", "create"] for a in ran)
    assert ev["table"].count("\n") == len(ev["rows"])
    # the data files stay, the compressed scratch files do not
    assert sorted(p.name for p in step.folder.iterdir() if ".zstd" in p.name or ".lz4" in p.name) == []


def test_transfer_model_crosses_over(measured):
    _, result, _ = measured
    m = next(cz.Measurement.from_row(r) for r in result.evidence["rows"] if r["dataset"] == "csv")
    even = cz.break_even_bps(m)
    assert even is not None and even > 0
    size = 2**30
    # below the break-even speed compressing wins, above it raw does
    assert cz.transfer_seconds(m, size, even / 10) < cz.transfer_seconds(None, size, even / 10)
    assert cz.transfer_seconds(m, size, even * 10) > cz.transfer_seconds(None, size, even * 10)
    raw, packed = cz.transfer_seconds(None, size, even), cz.transfer_seconds(m, size, even)
    assert math.isclose(packed, raw, rel_tol=1e-6)


def test_link_speed_parsing():
    assert cz.parse_link_speed("100M") == 1e8
    assert cz.parse_link_speed("1 Gbit/s") == 1e9
    assert cz.parse_link_speed("2.5Gbps") == 2.5e9
    assert cz.parse_link_speed(85e6) == 85e6
    for bad in ("fast", "-1M", 0, "1 GB/s x"):
        with pytest.raises(InvalidField):
            cz.parse_link_speed(bad)
    speeds = cz.link_speeds()
    assert math.isclose(speeds[0], 1e6) and math.isclose(speeds[-1], 1e10)
    assert cz.format_bps(1.5e9) == "1.5 Gbit/s"


def _draw(fig: Figure) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    return [str(w.message) for w in caught]


def test_plot_in_chinese_with_measured_links(measured):
    _, result, _ = measured
    font = cjk_font()
    assert font is not None, "scripts/bootstrap.sh installs fonts-wqy-microhei"
    with use_lang("zh"):
        fig = cz.plot_transfer(result.evidence["rows"], links={"ZeroTier": "80M", "veth": 9.5e9})
    ax = fig.axes[0]
    n_codecs = sum(1 for r in result.evidence["rows"] if r["dataset"] == "csv")
    assert len(ax.get_lines()) == 1 + n_codecs + 2  # raw, every codec/level, two link markers
    assert "链路速率" in ax.get_xlabel()
    assert all(font in t.get_fontfamily() for t in fig.findobj(Text) if t.get_text())
    assert not [m for m in _draw(fig) if "missing from font" in m]
    with use_lang("en"):
        fig = cz.plot_transfer(result.evidence["rows"], dataset="random")
    assert fig.axes[0].get_xlabel() == "link speed (Mbit/s)"
    with pytest.raises(InvalidField):
        cz.plot_transfer(result.evidence["rows"], dataset="nope")


def test_plot_speed_axis_spans_the_measured_links(measured):
    _, result, _ = measured
    with use_lang("en"):
        fig = cz.plot_transfer(result.evidence["rows"], links={"veth": 2.5e10, "slow": 4e5})
    raw = fig.axes[0].get_lines()[0].get_xdata()  # Mbit/s
    assert min(raw) <= 0.4 and max(raw) >= 2.5e4
    with use_lang("en"):
        fig = cz.plot_transfer(result.evidence["rows"])
    raw = fig.axes[0].get_lines()[0].get_xdata()
    assert math.isclose(min(raw), 1.0) and math.isclose(max(raw), 1e4)


def test_plan_lists_every_codec_command(tmp_path):
    plan = MeasureCompression(str(tmp_path), size="64K").plan()
    present = [c for c in cz.CLI_CODECS if shutil.which(c)]
    heads = [a[0] for a in plan.commands]
    for codec in present:
        assert heads.count(codec) == 2 * len(cz.LEVELS[codec]) * len(cz.DATASETS)
    with pytest.raises(InvalidField):
        MeasureCompression(str(tmp_path), size="1000").plan()  # not a multiple of 512


def test_table_in_english_has_no_chinese(measured):
    _, result, _ = measured
    with use_lang("en"):
        table = cz.format_table(result.evidence["rows"])
    assert table.startswith("dataset codec")
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in table)
    assert "never" in table  # random bytes never pay off
