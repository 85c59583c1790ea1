"""Chapter 1 disk steps against the real qemu-img (create, info, convert, resize) in tmp_path."""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
from pathlib import Path

import pytest
from planmatch import execute_and_match

from labkit.files import TMP_MARK, tmp_sibling
from labkit.logic import qemu_img_facts as qf
from labkit.steps.disk import ConvertImage, CreateImage, ImageInfo, ResizeImage
from labkit.steps.runner import FunctionRunner, SubprocessRunner

GiB, MiB = 1 << 30, 1 << 20

qemu = pytest.mark.qemu
needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed")


def _write_data_image(path: Path, mib: int, seed: int = 1) -> Path:
    """A raw image with real, partly compressible data: per MiB, a repeated byte then random bytes."""
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(bytes([i % 251 + 1]) * (MiB // 2) + rnd.randbytes(MiB // 2))
    return path


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if TMP_MARK in p.name)


def _qemu(*argv: str) -> str:
    return SubprocessRunner().run(["qemu-img", *argv]).stdout


def _info(path: Path, fmt: str | None = None) -> qf.ImageInfo:
    return qf.parse_info(_qemu(*qf.build_info(path, fmt)[1:]))


@pytest.fixture(scope="module")
def data_raw(tmp_path_factory) -> Path:
    return _write_data_image(tmp_path_factory.mktemp("src") / "data.raw", 64)


# -- plans (pure: no qemu needed) --------------------------------------------------------------
def test_plans_show_the_course_commands():
    """The course's lines, writing into the temporary sibling that is renamed when complete."""
    create = CreateImage("ubuntu-arm64.qcow2", "120G", "qcow2").plan()
    tmp = str(tmp_sibling("ubuntu-arm64.qcow2"))
    assert create.commands == [["qemu-img", "create", "-f", "qcow2", tmp, "120G"]]
    assert create.probes == [["qemu-img", "info", "--output=json", "-f", "qcow2", "ubuntu-arm64.qcow2"]]
    assert any(Path(tmp).name in n for n in create.notes)
    raw = CreateImage("ubuntu-arm64.img", "120G", fmt=None).plan()
    assert raw.commands[0] == [
        "qemu-img",
        "create",
        "-f",
        "raw",
        str(tmp_sibling("ubuntu-arm64.img")),
        "120G",
    ]
    conv = ConvertImage("ubuntu-arm64.img", "ubuntu-arm64-compressed.qcow2", compress=True).plan()
    dst_tmp = str(tmp_sibling("ubuntu-arm64-compressed.qcow2"))
    assert conv.commands == [["qemu-img", "convert", "-p", "-O", "qcow2", "-c", "ubuntu-arm64.img", dst_tmp]]
    assert [p[1] for p in conv.probes] == ["info", "measure", "info", "compare", "check"]
    vhd = ConvertImage("/p/disk.vhd", "/p/disk.qcow2", src_format="vhd").plan()
    vhd_tmp = str(tmp_sibling("/p/disk.qcow2"))
    assert vhd.commands == [["qemu-img", "convert", "-p", "-f", "vpc", "-O", "qcow2", "/p/disk.vhd", vhd_tmp]]
    assert any("vpc" in n and "vhd" in n for n in vhd.notes)
    assert create.reason
    assert conv.reason
    assert all(isinstance(n, str) and n for n in conv.notes)


def test_read_only_steps_plan_only_probes():
    info = ImageInfo("disk.qcow2").plan()
    assert info.commands == []
    assert info.probes == [["qemu-img", "info", "--output=json", "-f", "qcow2", "disk.qcow2"]]
    resize = ResizeImage("disk.qcow2", "130G", allow_shrink=True).plan()
    assert resize.commands == [["qemu-img", "resize", "-f", "qcow2", "--shrink", "disk.qcow2", "130G"]]
    assert resize.probes == [["qemu-img", "info", "--output=json", "-f", "qcow2", "disk.qcow2"]]


def test_plan_mode_runs_nothing(tmp_path):
    runner = FunctionRunner(lambda argv: (0, "", ""))
    res = CreateImage(tmp_path / "x.qcow2").execute("plan", runner=runner)
    assert res.status == "skipped"
    assert res.mode == "plan"
    assert runner.history == []
    assert res.evidence["plan"]["commands"][0][:4] == ["qemu-img", "create", "-f", "qcow2"]
    assert not (tmp_path / "x.qcow2").exists()


@pytest.mark.parametrize(
    ("step", "field"),
    [
        (CreateImage("x.qcow2", "lots"), "size"),
        (CreateImage("x.vhd", "3T", "vhd"), "size"),
        (CreateImage("x.qcow2", "1G", "vhd3"), "fmt"),
        (ConvertImage("a.raw", "b.raw", dst_format="raw", compress=True), "compress"),
        (ResizeImage("a.qcow2", "+10G"), "size"),
        (ResizeImage("a.vdi", "10G"), "format"),
    ],
)
def test_bad_input_becomes_an_error_result_naming_the_field(step, field):
    res = step.execute("plan")
    assert res.status == "error"
    assert res.evidence["error"] == "InvalidField"
    assert res.evidence["field"] == field
    assert res.evidence["fix"]


def test_missing_qemu_img_is_skipped_with_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no qemu-img
    auto = CreateImage(tmp_path / "x.qcow2").execute("auto")
    assert auto.status == "skipped"
    assert "qemu-utils" in auto.message
    assert CreateImage(tmp_path / "x.qcow2").execute("live").status == "error"
    assert not (tmp_path / "x.qcow2").exists()


# -- create ------------------------------------------------------------------------------------
@qemu
@needs_qemu_img
@pytest.mark.parametrize(("name", "fmt"), [("ubuntu-arm64.qcow2", "qcow2"), ("ubuntu-arm64.img", None)])
def test_create_120g_is_cheap_and_checked(tmp_path, name, fmt):
    path = tmp_path / name
    res = CreateImage(path, "120G", fmt).execute("live")
    assert res.status == "pass", res.message
    info = _info(path)
    assert info.format == (fmt or "raw")
    assert info.virtual_size == 120 * GiB
    assert res.evidence["info"]["virtual_size"] == 120 * GiB
    assert os.stat(path).st_blocks * 512 < 16 * MiB  # qcow2 grows on demand, raw is sparse
    assert _leftovers(tmp_path) == []
    assert res.evidence["backup"] is None


@qemu
@needs_qemu_img
def test_create_refuses_to_overwrite_and_backs_up_with_consent(tmp_path):
    path = tmp_path / "disk.qcow2"
    assert CreateImage(path, "1G").execute("live").status == "pass"
    before = os.stat(path)
    refused = CreateImage(path, "2G").execute("live")
    assert refused.status == "error"
    assert refused.evidence["error"] == "ConsentRequired"
    # untouched
    assert os.stat(path).st_ino == before.st_ino
    assert _info(path).virtual_size == GiB

    res = CreateImage(path, "2G", overwrite=True).execute("live")
    assert res.status == "pass", res.message
    backup = Path(res.evidence["backup"])
    assert _info(path).virtual_size == 2 * GiB
    # the old image, kept
    assert backup.exists()
    assert _info(backup, "qcow2").virtual_size == GiB
    assert _leftovers(tmp_path) == []


@qemu
@needs_qemu_img
@pytest.mark.parametrize("size", ["1", "10M", "1G", "120G", "127G", "200G"])
def test_vhd_sizes_match_qemus_geometry_rounding(tmp_path, size):
    """The check compares qemu-img info with expected_virtual_size, so *pass* means they agree."""
    res = CreateImage(tmp_path / "d.vhd", size, "vhd").execute("live")
    assert res.status == "pass", res.message
    assert res.evidence["info"]["format"] == "vpc"


@qemu
@needs_qemu_img
def test_info_step(tmp_path, data_raw):
    res = ImageInfo(data_raw).execute("live")
    assert res.status == "pass"
    assert res.evidence["info"]["format"] == "raw"
    assert res.evidence["info"]["virtual_size"] == 64 * MiB
    missing = ImageInfo(tmp_path / "nope.qcow2").execute("live")
    assert missing.status == "error"
    assert missing.evidence["field"] == "path"


# -- convert -----------------------------------------------------------------------------------
@qemu
@needs_qemu_img
def test_convert_raw_to_compressed_qcow2(tmp_path, data_raw):
    dst = tmp_path / "data-compressed.qcow2"
    fractions: list[float] = []
    res = ConvertImage(data_raw, dst, compress=True).execute("live", on_progress=fractions.append)
    assert res.status == "pass", res.message
    ev = res.evidence
    assert ev["compare"].startswith("Images are identical")
    assert ev["dst_info"]["format"] == "qcow2"
    assert ev["dst_info"]["virtual_size"] == 64 * MiB
    # half of every MiB is one repeated byte
    assert ev["compressed_clusters"] > 0
    assert ev["ratio"] < 0.9
    assert ev["measure"]["required"] > 0
    # an independent look: qemu-img itself says the content is identical
    assert "identical" in _qemu("compare", "-f", "raw", "-F", "qcow2", str(data_raw), str(dst))
    assert len(fractions) > 2
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert _leftovers(tmp_path) == []


@qemu
@needs_qemu_img
def test_convert_120g_sparse_raw_is_fast_and_identical(tmp_path):
    src = tmp_path / "ubuntu-arm64.img"
    assert CreateImage(src, "120G", fmt=None).execute("live").ok
    res = ConvertImage(src, tmp_path / "ubuntu-arm64-compressed.qcow2", compress=True).execute("live")
    assert res.status == "pass", res.message
    assert res.evidence["dst_info"]["virtual_size"] == 120 * GiB


@qemu
@needs_qemu_img
def test_real_dynamic_vhd_converts_with_vhd_mapped_to_vpc(tmp_path, data_raw):
    vhd = tmp_path / "dynamic.vhd"
    made = ConvertImage(data_raw, vhd, src_format="raw", dst_format="vhd").execute("live")
    assert made.status == "pass", made.message
    assert _info(vhd).format == "vpc"  # a dynamic VHD is probed correctly
    assert "Unknown driver 'vhd'" in _run_rc_stderr(["qemu-img", "info", "-f", "vhd", str(vhd)])
    res = ConvertImage(vhd, tmp_path / "from-dynamic.qcow2", src_format="vhd").execute("live")
    assert res.status == "pass", res.message
    assert "-f vpc" in " ".join(res.evidence["commands"])
    assert "-f vhd" not in " ".join(res.evidence["commands"])


def _run_rc_stderr(argv: list[str]) -> str:
    done = SubprocessRunner().run(argv, check=False)
    assert done.returncode != 0
    return done.stderr


def _fixed_vhd_with_data(path: Path, mib: int) -> Path:
    """`qemu-img create -f vpc -o subformat=fixed`, then data written into its raw part (footer kept)."""
    _qemu("create", "-f", "vpc", "-o", "subformat=fixed", str(path), f"{mib}M")
    rnd = random.Random(7)
    with open(path, "r+b") as f:
        for i in range(mib):
            f.write(bytes([i + 1]) * (MiB // 2) + rnd.randbytes(MiB // 2))
    return path


@qemu
@needs_qemu_img
def test_real_fixed_vhd_needs_vpc_and_converts(tmp_path):
    fixed = _fixed_vhd_with_data(tmp_path / "fixed.vhd", 8)
    assert _info(fixed).format == "raw"  # the trap: probing calls a fixed VHD raw
    vpc_size = _info(fixed, "vpc").virtual_size
    res = ConvertImage(fixed, tmp_path / "fixed.qcow2", src_format="vhd").execute("live")
    assert res.status == "pass", res.message
    assert res.evidence["dst_info"]["virtual_size"] == vpc_size  # footer not part of the disk
    # named by extension, labkit passes -f vpc on its own
    by_name = ConvertImage(fixed, tmp_path / "by-name.qcow2").execute("live")
    assert by_name.status == "pass", by_name.message
    # a fixed VHD hidden behind a neutral name is recognised by its footer and refused, not mangled
    hidden = tmp_path / "disk.img"
    shutil.copyfile(fixed, hidden)
    refused = ConvertImage(hidden, tmp_path / "hidden.qcow2").execute("live")
    assert refused.status == "error"
    assert refused.evidence["field"] == "src_format"
    assert not (tmp_path / "hidden.qcow2").exists()
    assert _leftovers(tmp_path) == []


@qemu
@needs_qemu_img
@pytest.mark.parametrize("fmt", ["vmdk", "vdi"])
def test_vmdk_and_vdi_convert_to_qcow2(tmp_path, data_raw, fmt):
    mid = tmp_path / f"disk.{fmt}"
    assert ConvertImage(data_raw, mid, dst_format=fmt).execute("live").status == "pass"
    assert _info(mid).format == fmt
    res = ConvertImage(mid, tmp_path / "disk.qcow2").execute("live")
    assert res.status == "pass", res.message
    assert res.evidence["src_format"] == fmt
    assert res.evidence["compare"].startswith("Images are identical")


@qemu
@needs_qemu_img
def test_convert_refuses_to_overwrite_and_backs_up_with_consent(tmp_path, data_raw):
    dst = tmp_path / "out.qcow2"
    assert CreateImage(dst, "1G").execute("live").ok
    refused = ConvertImage(data_raw, dst).execute("live")
    assert refused.status == "error"
    assert refused.evidence["error"] == "ConsentRequired"
    assert _info(dst).virtual_size == GiB
    res = ConvertImage(data_raw, dst, overwrite=True).execute("live")
    assert res.status == "pass", res.message
    assert _info(dst).virtual_size == 64 * MiB
    assert _info(Path(res.evidence["backup"])).virtual_size == GiB


@qemu
@needs_qemu_img
def test_cancelled_conversion_leaves_nothing_behind(tmp_path, data_raw):
    cancel = threading.Event()
    seen: list[float] = []

    def on_progress(frac: float) -> None:
        seen.append(frac)
        cancel.set()  # the student presses stop as soon as the first progress line arrives

    dst = tmp_path / "cancelled.qcow2"
    res = ConvertImage(data_raw, dst, compress=True).execute("live", on_progress=on_progress, cancel=cancel)
    assert res.status == "skipped"
    assert res.evidence["skip_reason"] == "stopped"
    assert seen
    assert not dst.exists()
    assert _leftovers(tmp_path) == []


@qemu
@needs_qemu_img
def test_timed_out_conversion_leaves_nothing_behind(tmp_path, data_raw):
    dst = tmp_path / "slow.qcow2"
    res = ConvertImage(data_raw, dst, compress=True, timeout=0.05).execute("live")
    assert res.status == "error"
    assert res.evidence["error"] == "CommandTimeout"
    assert not dst.exists()
    assert _leftovers(tmp_path) == []


@qemu
@needs_qemu_img
def test_bogus_source_fails_cleanly(tmp_path):
    bogus = tmp_path / "bogus.qcow2"
    bogus.write_text("this is not a disk image\n" * 100)
    res = ConvertImage(bogus, tmp_path / "out.qcow2").execute("live")
    assert res.status == "error"
    assert res.evidence["error"] == "CommandFailed"
    assert "qemu-img" in res.message
    assert not (tmp_path / "out.qcow2").exists()
    assert _leftovers(tmp_path) == []
    gone = ConvertImage(tmp_path / "missing.raw", tmp_path / "out2.qcow2").execute("live")
    assert gone.status == "error"
    assert gone.evidence["field"] == "src"


# -- resize ------------------------------------------------------------------------------------
@qemu
@needs_qemu_img
def test_resize_grow_then_shrink_needs_consent(tmp_path):
    path = tmp_path / "disk.qcow2"
    assert CreateImage(path, "10G").execute("live").ok
    grown = ResizeImage(path, "12G").execute("live")
    assert grown.status == "pass", grown.message
    assert _info(path).virtual_size == 12 * GiB
    assert grown.evidence["backup"] is None

    refused = ResizeImage(path, "11G").execute("live")
    assert refused.status == "error"
    assert refused.evidence["error"] == "ConsentRequired"
    assert _info(path).virtual_size == 12 * GiB

    shrunk = ResizeImage(path, "11G", allow_shrink=True).execute("live")
    assert shrunk.status == "pass", shrunk.message
    assert _info(path).virtual_size == 11 * GiB
    assert _info(Path(shrunk.evidence["backup"]), "qcow2").virtual_size == 12 * GiB


@qemu
@needs_qemu_img
def test_resize_raw_keeps_it_sparse_and_refuses_vdi(tmp_path):
    raw = tmp_path / "disk.img"
    assert CreateImage(raw, "1G", fmt=None).execute("live").ok
    res = ResizeImage(raw, "2G").execute("live")
    assert res.status == "pass"
    assert _info(raw, "raw").virtual_size == 2 * GiB
    assert os.stat(raw).st_blocks * 512 < MiB
    vdi = tmp_path / "disk.vdi"
    assert CreateImage(vdi, "1G", "vdi").execute("live").ok
    refused = ResizeImage(vdi, "2G").execute("live")
    assert refused.status == "error"
    assert refused.evidence["error"] == "InvalidField"


def _fake_qemu_img(compare_rc: int, dst_vsize: int):
    """A FunctionRunner handler answering like qemu-img, to drive ConvertImage's verdict logic."""
    src_info = json.dumps({"format": "raw", "virtual-size": 64 * MiB, "actual-size": 64 * MiB})
    dst_info = json.dumps({"format": "qcow2", "virtual-size": dst_vsize, "actual-size": 32 * MiB})

    def handler(argv: list[str]):
        verb = argv[1]
        if verb == "info":
            return (0, src_info if "raw" in argv else dst_info, "")
        if verb == "measure":
            return (0, json.dumps({"required": MiB, "fully-allocated": 64 * MiB}), "")
        if verb == "convert":
            Path(argv[-1]).write_bytes(b"qcow2 stand-in")  # the temporary sibling the step renames
            return (0, "    (0.00/100%)\r    (50.00/100%)\r    (100.00/100%)\n", "")
        if verb == "compare":
            out = "Images are identical.\n" if compare_rc == 0 else "Content mismatch at offset 4096!\n"
            return (compare_rc, out, "")
        if verb == "check":
            return (0, json.dumps({"check-errors": 0, "compressed-clusters": 0}), "")
        raise AssertionError(argv)

    return handler


@pytest.mark.parametrize(
    ("compare_rc", "dst_vsize", "status"),
    [(0, 64 * MiB, "pass"), (1, 64 * MiB, "fail"), (0, 65 * MiB, "fail"), (2, 64 * MiB, "error")],
)
def test_convert_verdict_follows_compare_and_size(tmp_path, compare_rc, dst_vsize, status):
    src = tmp_path / "a.raw"
    src.write_bytes(b"\1" * 4096)
    runner = FunctionRunner(_fake_qemu_img(compare_rc, dst_vsize))
    fractions: list[float] = []
    res = ConvertImage(src, tmp_path / "b.qcow2").execute("live", runner=runner, on_progress=fractions.append)
    assert res.status == status, res.message
    assert fractions == [0.0, 0.5, 1.0]
    assert [a[1] for a in runner.history][:5] == ["info", "measure", "convert", "info", "compare"]


# -- plan equals execution (the real qemu-img, every argv recorded) -----------------------------
@qemu
@needs_qemu_img
def test_every_disk_step_runs_exactly_what_it_planned(tmp_path, data_raw):
    disk = tmp_path / "disk.qcow2"
    created, ran = execute_and_match(CreateImage(disk, "1G"))
    assert created.status == "pass", created.message
    assert [a[1] for a in ran] == ["create", "info"]
    replaced, _ = execute_and_match(CreateImage(disk, "2G", overwrite=True))
    assert replaced.status == "pass", replaced.message

    info, ran = execute_and_match(ImageInfo(disk))
    assert info.status == "pass", info.message
    assert ran == ImageInfo(disk).plan().probes

    grown, _ = execute_and_match(ResizeImage(disk, "3G"))
    assert grown.status == "pass", grown.message
    shrunk, _ = execute_and_match(ResizeImage(disk, "2G", allow_shrink=True))
    assert shrunk.status == "pass", shrunk.message
    assert shrunk.evidence["backup"] is not None
    same, ran = execute_and_match(ResizeImage(disk, "2G"))
    assert same.evidence["already_present"] is True
    assert [a[1] for a in ran] == ["info", "info"]  # read, judged; nothing resized

    for dst, fmt, compress in (("c.qcow2", "qcow2", True), ("d.vhd", "vpc", False)):
        conv, ran = execute_and_match(
            ConvertImage(data_raw, tmp_path / dst, dst_format=fmt, compress=compress)
        )
        assert conv.status == "pass", conv.message
        assert sum(a[1] == "convert" for a in ran) == 1
    assert _leftovers(tmp_path) == []


# -- running again: verify what is there, refuse what differs ---------------------------------
@qemu
@needs_qemu_img
def test_create_again_verifies_the_same_image_and_names_what_differs(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    path = tmp_path / "disk.qcow2"
    first = CreateImage(path, "1G").execute("auto")
    assert first.status == "pass" and "already_present" not in first.evidence
    inode = os.stat(path).st_ino
    again, ran = execute_and_match(CreateImage(path, "1G"), "auto")
    assert again.status == "pass", again.message
    assert again.evidence["already_present"] is True
    assert again.evidence["verified_by"] == "qemu-img info: qcow2, 1 GiB"
    assert again.message.startswith("already present, verified (qemu-img info: qcow2, 1 GiB): ")
    assert [a[1] for a in ran] == ["info", "info"]  # read, judged; nothing created
    assert os.stat(path).st_ino == inode

    other = CreateImage(path, "2G").execute("auto")  # the course's auto mode: skipped, not error
    assert (other.status, other.mode) == ("skipped", "run")
    assert other.evidence["skip_reason"] == "consent"
    assert "virtual size 1 GiB, this step makes 2 GiB" in other.message
    assert "pass overwrite=True" in other.message  # Python names the keyword; a panel its checkbox
    assert _info(path).virtual_size == GiB and os.stat(path).st_ino == inode

    raw = tmp_path / "disk.img"
    assert CreateImage(raw, "1G", fmt="raw").execute("live").ok
    as_qcow2 = CreateImage(raw, "1G", fmt="qcow2").execute("live")
    assert as_qcow2.evidence["error"] == "ConsentRequired"
    assert "cannot read it as qcow2" in as_qcow2.message
    assert _info(raw, "raw").virtual_size == GiB


@qemu
@needs_qemu_img
def test_convert_again_verifies_with_compare_and_refuses_a_changed_source(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    src = _write_data_image(tmp_path / "src.raw", 4)
    dst = tmp_path / "dst.qcow2"
    assert ConvertImage(src, dst, compress=True).execute("auto").status == "pass"
    inode = os.stat(dst).st_ino
    again, ran = execute_and_match(ConvertImage(src, dst, compress=True), "auto")
    assert again.status == "pass", again.message
    assert again.evidence["already_present"] is True
    assert "qemu-img compare: identical to the source" in again.evidence["verified_by"]
    assert "convert" not in [a[1] for a in ran]
    assert os.stat(dst).st_ino == inode

    plain = ConvertImage(src, dst, compress=False).execute("auto")
    assert plain.status == "pass", "a compressed copy with the same content is what a plain one needs"
    uncompressed = tmp_path / "plain.qcow2"
    assert ConvertImage(src, uncompressed).execute("auto").ok
    wants_compressed = ConvertImage(src, uncompressed, compress=True).execute("auto")
    assert wants_compressed.evidence["skip_reason"] == "consent"
    assert "not compressed (-c)" in wants_compressed.message

    with open(src, "r+b") as f:  # the source changed since the conversion
        f.write(b"\xff" * 4096)
    changed = ConvertImage(src, dst, compress=True).execute("auto")
    assert changed.evidence["skip_reason"] == "consent"
    assert "content differs from the source" in changed.message
    assert os.stat(dst).st_ino == inode
    replaced = ConvertImage(src, dst, compress=True, overwrite=True).execute("auto")
    assert replaced.status == "pass" and replaced.evidence["backup"], replaced.message


@qemu
@needs_qemu_img
def test_resize_on_a_practice_image_runs_again_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    path = tmp_path / "resize-demo.qcow2"
    step = ResizeImage(path, "3G", create_size="2G")
    assert [c[1] for c in step.plan().commands] == ["create", "resize"]
    first, ran = execute_and_match(step, "auto")
    assert first.status == "pass", first.message
    assert [a[1] for a in ran] == ["create", "info", "resize", "info"]
    assert first.message.endswith("2 GiB → 3 GiB (practice image created first)")
    assert first.evidence["created"]["format"] == "qcow2"

    again_step = ResizeImage(path, "3G", create_size="2G")
    assert [c[1] for c in again_step.plan().commands] == ["resize"]  # the image exists: no create
    again, ran = execute_and_match(again_step, "auto")
    assert again.status == "pass", again.message
    assert [a[1] for a in ran] == ["info", "info"]
    assert again.evidence["already_present"] is True and again.evidence["changed"] is False
    assert "already 3 GiB, unchanged (not resized again)" in again.message
    assert "→" not in again.message
    assert _info(path).virtual_size == 3 * GiB
