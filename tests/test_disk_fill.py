"""The compression demo with real content: course logs written into the raw image by the real
``qemu-io``, then ``qemu-img convert -c``, whose result states the ratio."""

from __future__ import annotations

import hashlib
import shutil
import zlib
from pathlib import Path

import pytest
from planmatch import execute_and_match

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import disk_content as dc
from labkit.steps.disk import ConvertImage, CreateImage, FillImage

MiB = 1 << 20

needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-img") is None or shutil.which("qemu-io") is None, reason="qemu-utils not installed"
)


# -- pure ----------------------------------------------------------------------------------------
def test_course_logs_are_the_same_text_every_time_and_compress_well():
    logs = dc.course_logs(MiB)
    assert len(logs) == MiB
    assert logs == dc.course_logs(MiB)  # a fixed seed: a re-run writes (and verifies) the same bytes
    assert logs != dc.course_logs(MiB, seed=7)
    text = logs.decode("ascii")
    lines = text.splitlines()
    assert {ln.split()[2] for ln in lines[:-1]} <= {"web-01", "web-02", "mail-01", "app-01", "app-02"}
    assert any("nginx:" in ln for ln in lines) and any("postfix" in ln for ln in lines)
    chunk = logs[: 64 * 1024]  # one qcow2 cluster, compressed on its own by -c
    assert len(zlib.compress(chunk)) < len(chunk) / 3
    assert dc.course_logs(100) == logs[:100]  # a shorter fill is a prefix of a longer one


def test_fill_length_and_the_qemu_io_argv():
    assert dc.fill_length("8M") == 8 * MiB
    for bad in ("0", "1000", "1G", "x"):
        with pytest.raises(InvalidField) as refused:
            dc.fill_length(bad)
        assert refused.value.field == "size"
    argv = dc.build_io_write("/w/My Disk.img", "raw", "course-logs.txt", 8 * MiB)
    assert argv == ["qemu-io", "-f", "raw", "-c", f"write -s course-logs.txt 0 {8 * MiB}", "/w/My Disk.img"]
    with pytest.raises(InvalidField):
        dc.build_io_write("/w/d.img", "raw", "my logs.txt", MiB)  # qemu-io would split it


def test_compression_summary_states_the_ratio_or_why_there_is_none():
    with use_lang("en"):
        assert dc.compression_summary(8 * MiB, 2 * MiB) == (
            "compressed, it uses 2 MiB: 25% of the 8 MiB of data in the source (ratio 4.0 : 1)"
        )
        empty = dc.compression_summary(4096, 196 * 1024)
        assert "more than" in empty and "nearly empty" in empty
    with use_lang("zh"):
        assert "压缩比 4.0 : 1" in dc.compression_summary(8 * MiB, 2 * MiB)


# -- real qemu-io / qemu-img -----------------------------------------------------------------------
@pytest.fixture
def raw_image(tmp_path: Path) -> Path:
    path = tmp_path / "ubuntu-arm64.img"
    result = CreateImage(path, "1G", "raw").execute("live")
    assert result.status == "pass", result.message
    return path


@pytest.mark.qemu
@needs_qemu
def test_fill_writes_the_logs_with_qemu_io_and_a_rerun_only_verifies(raw_image):
    step = FillImage(raw_image, "4M")
    result, ran = execute_and_match(step)
    assert result.status == "pass", result.message
    assert any(argv[0] == "qemu-io" for argv in ran)
    logs = dc.course_logs(4 * MiB)
    with raw_image.open("rb") as fh:
        assert fh.read(4 * MiB) == logs
    assert (raw_image.parent / "course-logs.txt").read_bytes() == logs
    assert result.evidence["sha256"] == hashlib.sha256(logs).hexdigest()
    assert 4 * MiB <= result.evidence["allocated"] < 5 * MiB  # still sparse: only the logs take space
    assert raw_image.stat().st_size == 1 << 30

    again, ran_again = execute_and_match(FillImage(raw_image, "4M"))
    assert again.status == "pass"
    assert again.evidence["already_present"] is True
    assert not any(argv[0] == "qemu-io" for argv in ran_again)  # verified, not written again


@pytest.mark.qemu
@needs_qemu
def test_fill_refuses_a_qcow2_image_and_more_than_the_disk_holds(tmp_path, raw_image):
    qcow2 = tmp_path / "d.qcow2"
    assert CreateImage(qcow2, "1G", "qcow2").execute("live").ok
    refused = FillImage(qcow2, "4M").execute("live")
    assert (refused.status, refused.evidence["field"]) == ("error", "name")
    assert "raw" in refused.message
    small = tmp_path / "small.img"
    assert CreateImage(small, "1M", "raw").execute("live").ok
    too_big = FillImage(small, "4M").execute("live")
    assert (too_big.status, too_big.evidence["field"]) == ("error", "size")
    assert not (tmp_path / "course-logs.txt").exists()  # refused before anything was written


@pytest.mark.qemu
@needs_qemu
def test_compressing_the_filled_image_shows_the_lesson_and_its_ratio(tmp_path, raw_image):
    empty = ConvertImage(raw_image, tmp_path / "empty.qcow2", compress=True).execute("live")
    assert empty.status == "pass"
    assert empty.evidence["dst_allocated"] > empty.evidence["src_allocated"]  # the bug the demo had
    with use_lang("en"):
        assert FillImage(raw_image, "8M").execute("live").ok
        result = ConvertImage(raw_image, tmp_path / "ubuntu-arm64-compressed.qcow2", compress=True).execute(
            "live"
        )
    assert result.status == "pass", result.message
    ev = result.evidence
    assert ev["src_allocated"] >= 8 * MiB
    assert ev["dst_allocated"] < ev["src_allocated"] / 2
    assert ev["compressed_clusters"] > 0
    assert "ratio" in result.message and "%" in result.message
