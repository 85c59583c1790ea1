"""efi.img: the padding plan, the real image built from qemu-efi-aarch64, and QEMU's verdict on it.

The decisive test asks the real ``qemu-system-aarch64``: the padded image runs as pflash (the
UEFI firmware prints its banner on the serial console), the unpadded firmware file is refused with
"device requires 67108864 bytes".
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from planmatch import execute_and_match

from labkit.errors import InvalidField
from labkit.files import tmp_sibling
from labkit.logic import firmware as fw
from labkit.steps.firmware import BuildEfiImage, find_firmware, verify_efi_image
from labkit.steps.runner import SubprocessRunner

FIRMWARE = find_firmware()
needs_firmware = pytest.mark.skipif(FIRMWARE is None, reason="qemu-efi-aarch64 is not installed")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-aarch64") is None, reason="qemu-system-arm missing")


# -- pure -------------------------------------------------------------------------------------
def test_padding_plan():
    plan = fw.padding_plan(2 * 2**20)
    assert (plan.copy_bytes, plan.pad_bytes, plan.total) == (2 * 2**20, 62 * 2**20, fw.PFLASH_SIZE)
    assert fw.padding_plan(fw.PFLASH_SIZE).pad_bytes == 0
    assert fw.PFLASH_SIZE == 67108864


@pytest.mark.parametrize("size", [0, fw.PFLASH_SIZE + 1, 8 * 2**30])
def test_padding_plan_rejects_empty_and_oversized_firmware(size):
    with pytest.raises(InvalidField) as err:
        fw.padding_plan(size)
    assert err.value.field == "firmware"
    assert err.value.fix


def test_candidates_start_with_the_unpadded_debian_file():
    assert fw.FIRMWARE_CANDIDATES[0].path == fw.QEMU_EFI == "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
    assert fw.FIRMWARE_CANDIDATES[0].package == "qemu-efi-aarch64"
    assert not fw.FIRMWARE_CANDIDATES[0].padded
    assert any(c.path == fw.AAVMF_CODE and c.padded for c in fw.FIRMWARE_CANDIDATES)


def test_teaching_commands_and_qemu_error_parser():
    assert fw.teaching_commands("QEMU_EFI.fd", "efi.img") == [
        ["cp", "QEMU_EFI.fd", "efi.img"],
        ["truncate", "-s", "64M", "efi.img"],
    ]
    msg = "qemu-system-aarch64: device requires 67108864 bytes, block backend provides 2097152 bytes"
    assert fw.pflash_size_error(msg) == (67108864, 2097152)
    assert fw.pflash_size_error("qemu-system-aarch64: -drive x: Could not open") is None


# -- the real file ------------------------------------------------------------------------------
@needs_firmware
def test_build_efi_image(tmp_path):
    dest = tmp_path / "efi.img"
    res = BuildEfiImage(dest=dest).execute("live")
    assert res.status == "pass", res.message
    assert dest.stat().st_size == fw.PFLASH_SIZE
    data = dest.read_bytes()
    firmware = Path(FIRMWARE).read_bytes()
    assert data[: len(firmware)] == firmware
    assert data[len(firmware) :].count(0) == fw.PFLASH_SIZE - len(firmware)
    assert res.evidence["sha256"] == hashlib.sha256(data).hexdigest()
    assert res.evidence["firmware_sha256"] == hashlib.sha256(firmware).hexdigest()
    if os.path.isfile(fw.AAVMF_CODE) and FIRMWARE != fw.AAVMF_CODE:
        identical = Path(fw.AAVMF_CODE).read_bytes() == data
        assert res.evidence["aavmf_code_identical"] is identical
    assert not list(tmp_path.glob(".*labkit-tmp*"))  # no temporary left behind


@needs_firmware
def test_planned_shell_commands_produce_the_same_bytes(tmp_path):
    """The plan's `cp` + `truncate` is not just decoration: run it and compare with labkit's file."""
    step = BuildEfiImage(dest=tmp_path / "labkit.img")
    plan = step.plan()
    assert [c[0] for c in plan.commands] == ["cp", "truncate"]
    assert step.execute("live").ok
    shell_img = tmp_path / "shell.img"
    for argv in fw.teaching_commands(FIRMWARE, str(shell_img)):
        subprocess.run(argv, check=True)
    assert shell_img.read_bytes() == (tmp_path / "labkit.img").read_bytes()


@needs_firmware
def test_existing_target_is_kept_unless_consent_and_correct_image_is_left_alone(tmp_path):
    dest = tmp_path / "efi.img"
    dest.write_bytes(b"student's own file")
    res = BuildEfiImage(dest=dest).execute("live")
    assert res.status == "error"
    assert res.evidence["error"] == "ConsentRequired"
    assert dest.read_bytes() == b"student's own file"
    res = BuildEfiImage(dest=dest, overwrite=True).execute("live")
    assert res.ok
    assert res.evidence["written"] is True
    backups = list(tmp_path.glob("efi.img.labkit-bak-*"))
    assert len(backups) == 1
    assert backups[0].read_bytes() == b"student's own file"
    mtime = dest.stat().st_mtime_ns
    again = BuildEfiImage(dest=dest).execute("live")  # already correct: no consent needed, no rewrite
    assert again.ok
    assert again.evidence["written"] is False
    assert dest.stat().st_mtime_ns == mtime


def test_bad_firmware_inputs_become_field_errors(tmp_path):
    res = BuildEfiImage(dest=tmp_path / "e.img", firmware=str(tmp_path / "nope.fd")).execute("live")
    assert res.status == "error"
    assert res.evidence["field"] == "firmware"
    big = tmp_path / "big.fd"
    with open(big, "wb") as f:
        f.truncate(fw.PFLASH_SIZE + 4096)  # sparse, costs no disk
    res = BuildEfiImage(dest=tmp_path / "e.img", firmware=str(big)).execute("live")
    assert res.status == "error"
    assert res.evidence["field"] == "firmware"
    assert not (tmp_path / "e.img").exists()
    res = BuildEfiImage(dest=tmp_path).execute("live")
    assert res.status == "error"
    assert res.evidence["field"] == "dest"


@needs_firmware
def test_verify_detects_damage(tmp_path):
    dest = tmp_path / "efi.img"
    assert BuildEfiImage(dest=dest).execute("live").ok
    with open(dest, "r+b") as f:
        f.seek(fw.PFLASH_SIZE - 10)
        f.write(b"\x01")
    facts = verify_efi_image(dest, FIRMWARE)
    assert facts["size_ok"]
    assert facts["prefix_ok"]
    assert not facts["tail_zero"]
    with open(dest, "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xfe")
    assert not verify_efi_image(dest, FIRMWARE)["prefix_ok"]
    short = tmp_path / "short.img"
    short.write_bytes(Path(FIRMWARE).read_bytes())
    facts = verify_efi_image(short, FIRMWARE)
    assert facts["prefix_ok"]
    assert not facts["size_ok"]


def test_plan_mode_writes_nothing(tmp_path):
    res = BuildEfiImage(dest=tmp_path / "efi.img").execute("plan")
    assert res.status == "skipped"
    assert res.mode == "plan"
    tmp = str(tmp_sibling(tmp_path / "efi.img"))
    assert res.evidence["plan"]["commands"][1] == ["truncate", "-s", "64M", tmp]
    assert not (tmp_path / "efi.img").exists()
    assert list(tmp_path.iterdir()) == []


@needs_firmware
def test_build_runs_exactly_the_planned_commands_and_a_correct_image_is_left_alone(tmp_path):
    dest = tmp_path / "efi.img"
    built, ran = execute_and_match(BuildEfiImage(dest=dest))
    assert built.status == "pass", built.message
    assert [a[0] for a in ran] == ["cp", "truncate"]
    again, ran = execute_and_match(BuildEfiImage(dest=dest))
    assert again.status == "pass", again.message
    assert again.evidence["already_present"] is True
    assert ran == []
    replaced, ran = execute_and_match(BuildEfiImage(dest=dest, overwrite=True))
    assert replaced.evidence["written"] is True
    assert [a[0] for a in ran] == ["cp", "truncate"]


# -- QEMU's verdict -----------------------------------------------------------------------------
def _pflash_argv(image: Path) -> list[str]:
    machine = ["-M", "virt", "-accel", "tcg", "-cpu", "max", "-m", "256M"]
    headless = ["-nographic", "-no-reboot", "-nic", "none"]
    return [
        "qemu-system-aarch64",
        *machine,
        *headless,
        "-drive",
        f"if=pflash,format=raw,file={image},readonly=on",
    ]


@pytest.mark.qemu
@needs_firmware
@needs_qemu
def test_qemu_runs_the_padded_image_and_refuses_the_unpadded_one(tmp_path):
    dest = tmp_path / "efi.img"
    assert BuildEfiImage(dest=dest).execute("live").ok
    runner = SubprocessRunner()
    proc = runner.start(_pflash_argv(dest))
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and not seen:
            for _, line in proc.lines(timeout=0.5):
                if "UEFI firmware" in line:
                    seen.append(line)
                    break
    finally:
        proc.stop()
    assert seen, "the UEFI firmware printed no banner within 60 s"  # the firmware is running

    if fw.padding_plan(os.path.getsize(FIRMWARE)).pad_bytes:  # the distribution's file is unpadded
        res = runner.run(_pflash_argv(Path(FIRMWARE)), timeout=30, check=False)
        assert res.returncode != 0
        assert fw.pflash_size_error(res.stderr) == (fw.PFLASH_SIZE, os.path.getsize(FIRMWARE))
