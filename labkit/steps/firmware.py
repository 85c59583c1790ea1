"""Chapter 1: build the course's ``efi.img`` from the distribution's aarch64 UEFI firmware.

The course text hands students a downloaded ``efi.img``; this step makes the same file from the
``qemu-efi-aarch64`` package instead (``QEMU_EFI.fd`` zero-padded to the 64 MiB QEMU's ``virt``
board requires of a pflash bank), so nothing opaque is downloaded and students see *why* the file
is 64 MiB. Plan and run share one builder: ``cp`` + ``truncate -s 64M`` into a temporary sibling,
renamed when complete, so the target is written atomically and never overwritten without consent;
an ``efi.img`` that already is correct is left alone (:meth:`BuildEfiImage.satisfied`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.i18n import consent_hint, tr
from labkit.logic.firmware import (
    AAVMF_CODE,
    FIRMWARE_CANDIDATES,
    FIRMWARE_PACKAGE,
    PFLASH_SIZE,
    QEMU_EFI,
    padding_plan,
    teaching_commands,
)
from labkit.steps.base import Plan, RunContext, Step

__all__ = ["BuildEfiImage", "find_firmware", "sha256_file", "verify_efi_image"]

_CHUNK = 1 << 20


def find_firmware() -> str | None:
    """The first known firmware file that exists on this host (see FIRMWARE_CANDIDATES)."""
    for cand in FIRMWARE_CANDIDATES:
        if os.path.isfile(cand.path):
            return cand.path
    return None


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_efi_image(image: str | os.PathLike[str], firmware: str | os.PathLike[str]) -> dict[str, Any]:
    """Compare ``image`` with what padding ``firmware`` must produce; return the facts as evidence.

    Keys: ``size`` (bytes), ``size_ok``, ``prefix_ok`` (starts with the firmware bytes),
    ``tail_zero`` (everything after it is zero), ``sha256``.
    """
    size = os.path.getsize(image)
    fw_size = os.path.getsize(firmware)
    prefix_ok = True
    tail_zero = True
    h = hashlib.sha256()
    zero = bytes(_CHUNK)
    with open(image, "rb") as img, open(firmware, "rb") as fw:
        done = 0
        while chunk := img.read(_CHUNK):
            h.update(chunk)
            if done < fw_size:
                want = fw.read(min(len(chunk), fw_size - done))
                head, rest = chunk[: len(want)], chunk[len(want) :]
                prefix_ok = prefix_ok and head == want and len(want) == len(head)
            else:
                rest = chunk
            if rest and rest != zero[: len(rest)]:
                tail_zero = False
            done += len(chunk)
    if size < fw_size:
        prefix_ok = False
    return {
        "size": size,
        "size_ok": size == PFLASH_SIZE,
        "prefix_ok": prefix_ok,
        "tail_zero": tail_zero,
        "sha256": h.hexdigest(),
    }


class BuildEfiImage(Step):
    """Write ``dest`` (default ``efi.img``) = firmware + zeros up to 64 MiB, then verify it."""

    check_id = "ch1.firmware.efi"
    timeout = 60.0

    def __init__(
        self, dest: str | os.PathLike[str] = "efi.img", firmware: str | None = None, overwrite: bool = False
    ) -> None:
        if not str(dest).strip():
            raise InvalidField(
                "dest",
                dest,
                tr("为空", "is empty"),
                tr("给出文件名，例如 efi.img", "give a file name such as efi.img"),
            )
        self.dest = Path(dest)
        self.firmware = firmware
        self.overwrite = overwrite

    # -- helpers ---------------------------------------------------------------------------
    def _firmware(self) -> str | None:
        if self.firmware is not None:
            return str(self.firmware)
        return find_firmware()

    def _argv(self, firmware: str) -> list[list[str]]:
        """``cp`` + ``truncate`` into the temporary sibling (renamed to ``dest`` when complete)."""
        return teaching_commands(firmware, str(files.tmp_sibling(self.dest)))

    # -- hooks -----------------------------------------------------------------------------
    def plan(self) -> Plan:
        if self.dest.is_dir():
            raise InvalidField(
                "dest",
                str(self.dest),
                tr("是一个目录", "is a directory"),
                tr("给出文件名，例如 efi.img", "give a file name such as efi.img"),
            )
        fw = self._firmware()
        notes = [
            tr(
                "virt 机器的 pflash 闪存必须正好 64 MiB；QEMU_EFI.fd 只有约 2 MiB，所以在后面补零。",
                "The virt board's pflash bank must be exactly 64 MiB; QEMU_EFI.fd is about 2 MiB, "
                "so it is padded with zeros.",
            ),
            tr(
                "命令写的是临时文件 {t}，完成后原子改名为 {d}；目标已存在且内容不同时要{c}（保留备份），"
                "已经正确的 efi.img 不会重写。",
                "the commands write the temporary file {t}, renamed atomically to {d} when complete; for "
                "an existing target that differs you must {c} (a backup is kept), a correct efi.img is "
                "left alone.",
                t=files.tmp_sibling(self.dest).name,
                d=self.dest,
                c=consent_hint("overwrite"),
            ),
        ]
        if self.firmware is not None and not os.path.isfile(self.firmware):
            raise InvalidField(
                "firmware",
                self.firmware,
                tr("不存在", "does not exist"),
                tr(
                    "留空则使用 {f}（软件包 {p}）",
                    "leave it empty to use {f} (package {p})",
                    f=QEMU_EFI,
                    p=FIRMWARE_PACKAGE,
                ),
            )
        if fw is not None:
            pp = padding_plan(os.path.getsize(fw))
            notes.append(
                tr(
                    "复制 {c} 字节固件，补 {p} 字节零。",
                    "copy {c} firmware bytes, then {p} zero bytes.",
                    c=pp.copy_bytes,
                    p=pp.pad_bytes,
                )
            )
        return Plan(
            step=self.check_id,
            reason=tr(
                "用 qemu-efi-aarch64 的 UEFI 固件制作课程用的 64 MiB efi.img",
                "make the course's 64 MiB efi.img from the qemu-efi-aarch64 UEFI firmware",
            ),
            commands=self._argv(fw or QEMU_EFI),
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if self._firmware() is None:
            return tr(
                "找不到 aarch64 UEFI 固件；安装：sudo apt-get install -y --no-install-recommends {p}",
                "no aarch64 UEFI firmware found; install it: "
                "sudo apt-get install -y --no-install-recommends {p}",
                p=FIRMWARE_PACKAGE,
            )
        return None

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        fw = self._firmware()
        if fw is None or self.overwrite or not self.dest.is_file():
            return None
        facts = verify_efi_image(self.dest, fw)
        if not (facts["size_ok"] and facts["prefix_ok"] and facts["tail_zero"]):
            return None  # a different file: run() refuses it without overwrite=True
        ctx.say(
            tr(
                "{d} 已经是正确的 efi.img，未改动",
                "{d} already is a correct efi.img; left as is",
                d=self.dest,
            )
        )
        return {
            "firmware": fw,
            "dest": str(self.dest.resolve()),
            "written": False,
            "verified_by": tr(
                "读回：64 MiB，开头与 {f} 逐字节相同，其余全为零",
                "read back: 64 MiB, starts byte for byte with {f}, rest all zero",
                f=os.path.basename(fw),
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        fw = self._firmware()
        assert fw is not None  # unavailable() said so
        pp = padding_plan(os.path.getsize(fw))
        files.ensure_free_space(
            self.dest.resolve().parent, PFLASH_SIZE, what=tr("写入 efi.img", "write efi.img")
        )
        ctx.check_cancelled()
        tmp = files.tmp_sibling(self.dest)
        with files.atomic_target(self.dest, overwrite=self.overwrite, tmp=tmp, field="dest"):
            for argv in self._argv(fw):
                ctx.run(argv, timeout=self.timeout)
            ctx.progress(1.0)
        ctx.say(tr("已写入 {d}（{n} 字节）", "wrote {d} ({n} bytes)", d=self.dest, n=pp.total))
        return {"firmware": fw, "dest": str(self.dest.resolve()), "written": True}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        dest = evidence["dest"]
        fw = evidence["firmware"]
        facts = verify_efi_image(dest, fw)
        facts["firmware_sha256"] = sha256_file(fw)
        if os.path.isfile(AAVMF_CODE) and os.path.realpath(AAVMF_CODE) != os.path.realpath(fw):
            facts["aavmf_code_identical"] = (
                os.path.getsize(AAVMF_CODE) == facts["size"] and sha256_file(AAVMF_CODE) == facts["sha256"]
            )
        ev = {**evidence, **facts}
        if facts["size_ok"] and facts["prefix_ok"] and facts["tail_zero"]:
            msg = tr(
                "{d}：64 MiB，开头是固件 {f}，其余全为零",
                "{d}: 64 MiB, starts with firmware {f}, rest is zero",
                d=dest,
                f=os.path.basename(fw),
            )
            if facts.get("aavmf_code_identical"):
                msg += tr("；与 AAVMF_CODE.fd 逐字节相同", "; byte-identical to AAVMF_CODE.fd")
            return CheckResult.passed(self.check_id, msg, **ev)
        problems = []
        if not facts["size_ok"]:
            problems.append(
                tr("大小 {s} 不是 {p} 字节", "size {s} is not {p} bytes", s=facts["size"], p=PFLASH_SIZE)
            )
        if not facts["prefix_ok"]:
            problems.append(tr("开头与固件不同", "does not start with the firmware"))
        if not facts["tail_zero"]:
            problems.append(tr("填充部分不全为零", "padding is not all zero"))
        return CheckResult.failed(self.check_id, f"{dest}: " + "; ".join(problems), **ev)
