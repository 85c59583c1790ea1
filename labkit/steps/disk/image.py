"""Create a blank disk image and inspect one (``qemu-img create``, ``qemu-img info``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.i18n import api_note, consent_hint, tr
from labkit.logic import qemu_img as qi
from labkit.logic import qemu_img_facts as qf
from labkit.logic.sizes import format_size, human_size
from labkit.steps.base import Plan, RunContext, Step, refuse_replacing
from labkit.steps.disk.common import (
    existing_image,
    fixed_vhd_tail,
    format_note,
    growth_note,
    image_summary,
    qemu_img_missing,
    read_info,
    require_file,
    tmp_note,
)

__all__ = ["CreateImage", "ImageInfo"]


class CreateImage(Step):
    """``qemu-img create -f FMT PATH SIZE`` – a blank disk image, never overwriting by surprise.

    Plan and run share :meth:`_argv`: ``qemu-img create`` into the temporary sibling
    (:func:`labkit.files.tmp_sibling`), renamed when complete; the check's ``qemu-img info`` is a probe.
    An existing image of the same format and virtual size is left alone and verified
    (:meth:`satisfied`); one that differs is replaced only with ``overwrite=True`` (which always
    makes the image anew, keeping the old one as a backup).
    """

    check_id = "ch1.disk.create"
    timeout = 300.0

    def __init__(
        self,
        path: str | os.PathLike[str] = "ubuntu-arm64.qcow2",
        size: str | int = "120G",
        fmt: str | None = "qcow2",
        overwrite: bool = False,
    ) -> None:
        self.path = path
        self.size = size
        self.fmt = fmt
        self.overwrite = overwrite

    def _resolve(self) -> tuple[Path, str, int, list[str]]:
        fmt, note = qi.normalize_format(self.fmt or "raw", "fmt")
        notes = [note] if note else []
        size = qi.validate_size_for(fmt, self.size, "size")
        qi.build_create(self.path, size, fmt)  # validates the path
        path = Path(self.path)
        if path.is_dir():
            raise InvalidField(
                "path", str(path), tr("是目录", "is a directory"), tr("给出文件名", "give a file name")
            )
        return path, fmt, size, notes

    @staticmethod
    def _argv(path: Path, fmt: str, size: int) -> dict[str, list[str]]:
        return {
            "create": qi.build_create(files.tmp_sibling(path), size, fmt),
            "info": qf.build_info(path, fmt),
        }

    def plan(self) -> Plan:
        path, fmt, size, notes = self._resolve()
        expected = qi.expected_virtual_size(size, fmt)
        growth = growth_note(fmt, format_size(size))
        if growth:
            notes.append(growth)
        if expected != size:
            notes.append(
                tr(
                    "qemu-img 会把 {s} 字节取整为 {e} 字节。",
                    "qemu-img rounds {s} bytes up to {e} bytes.",
                    s=size,
                    e=expected,
                )
            )
        notes.append(
            tr(
                "qemu-img create 会悄悄覆盖已有文件；labkit 先用 qemu-img info 读取已有文件："
                "格式和虚拟大小都相同就直接核实通过、不重做；不同则拒绝，除非{c}（旧文件保留为备份）。",
                "qemu-img create silently overwrites an existing file; labkit reads an existing one "
                "with qemu-img info first: the same format and virtual size is verified and left "
                "alone; a different one is refused unless you {c} (the old file is kept as a backup).",
                c=consent_hint("overwrite"),
            )
        )
        if path.exists():
            notes.append(
                tr("{p} 已存在。", "{p} exists already.", p=path)
                + (
                    tr("将备份后重新创建。", " It will be backed up and made anew.")
                    if self.overwrite
                    else tr("运行时先核对它，不会覆盖。", " The run verifies it and does not overwrite it.")
                )
            )
        notes.append(tmp_note(path))
        argv = self._argv(path, fmt, size)
        return Plan(
            step=self.check_id,
            reason=tr(
                "创建 {s} 的空白 {f} 磁盘镜像 {p}",
                "create a blank {s} {f} disk image {p}",
                s=format_size(size),
                f=fmt,
                p=os.fspath(path),
            ),
            commands=[argv["create"]],
            probes=[argv["info"]],
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return qemu_img_missing()

    def _evidence(self, path: Path, fmt: str, size: int, backup: Path | None = None) -> dict[str, Any]:
        return {
            "path": str(path.resolve()),
            "format": fmt,
            "requested_size": size,
            "expected_virtual_size": qi.expected_virtual_size(size, fmt),
            "backup": str(backup.resolve()) if backup else None,
        }

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        path, fmt, size, _ = self._resolve()
        if self.overwrite or not path.is_file():
            return None
        want = qi.expected_virtual_size(size, fmt)
        info, differences = existing_image(ctx, self._argv(path, fmt, size)["info"], fmt, want)
        if info is None or differences:
            return None  # run() refuses it, naming the differences
        return {
            **self._evidence(path, fmt, size),
            "verified_by": tr(
                "qemu-img info：{f}，{v}",
                "qemu-img info: {f}, {v}",
                f=info.format,
                v=human_size(info.virtual_size),
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        path, fmt, size, _ = self._resolve()
        if path.is_file() and not self.overwrite:
            want = qi.expected_virtual_size(size, fmt)
            _, differences = existing_image(ctx, self._argv(path, fmt, size)["info"], fmt, want)
            raise refuse_replacing(path, differences or [tr("已存在", "exists already")])
        files.refuse_overwrite(path, self.overwrite, field="path")
        backup: Path | None = None
        tmp = files.tmp_sibling(path)
        with files.atomic_target(path, overwrite=self.overwrite, backup=False, tmp=tmp):
            ctx.run(self._argv(path, fmt, size)["create"], timeout=self.timeout)
            ctx.check_cancelled()
            if path.exists():
                backup = files.backup_file(path, replacing=True)
        ctx.progress(1.0)
        return self._evidence(path, fmt, size, backup)

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        target, fmt, size, _ = self._resolve()
        info = read_info(ctx, self._argv(target, fmt, size)["info"])
        path = evidence["path"]
        st = os.stat(path)
        ev = {
            **evidence,
            "info": info.to_evidence(),
            "file_size": st.st_size,
            "allocated": st.st_blocks * 512,
        }
        problems = []
        if info.format != evidence["format"]:
            problems.append(
                tr("格式是 {a}，应为 {b}", "format is {a}, expected {b}", a=info.format, b=evidence["format"])
            )
        if info.virtual_size != evidence["expected_virtual_size"]:
            problems.append(
                tr(
                    "虚拟大小 {a} 字节，应为 {b} 字节",
                    "virtual size {a} bytes, expected {b}",
                    a=info.virtual_size,
                    b=evidence["expected_virtual_size"],
                )
            )
        if problems:
            return CheckResult.failed(self.check_id, f"{path}: " + "; ".join(problems), **ev)
        return CheckResult.passed(
            self.check_id,
            image_summary(
                path,
                info.format,
                human_size(info.virtual_size),
                human_size(info.actual_size if info.actual_size is not None else ev["allocated"]),
            ),
            **ev,
        )


class ImageInfo(Step):
    """``qemu-img info``: format, virtual and on-disk size of an existing image.

    Read-only, so its one command is a probe. (Not to be confused with
    :class:`labkit.logic.qemu_img.ImageInfo`, the parsed data this step reports as evidence.)
    """

    check_id = "ch1.disk.info"
    timeout = 60.0

    def __init__(
        self, path: str | os.PathLike[str], fmt: str | None = None, force_share: bool = False
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.force_share = force_share

    def plan(self) -> Plan:
        fmt, notes = format_note(self.fmt, "fmt", self.path)
        if not self.force_share:
            notes.append(
                tr(
                    "镜像正被运行中的虚拟机使用时，qemu-img info 需要 -U（共享打开）",
                    "for an image a running VM holds open, qemu-img info needs -U (shared open)",
                )
                + api_note("force_share=True")
                + tr("。", ".")
            )
        return Plan(
            step=self.check_id,
            reason=tr(
                "查看镜像 {p} 的格式与大小", "show the format and sizes of image {p}", p=os.fspath(self.path)
            ),
            probes=[qf.build_info(self.path, fmt, force_share=self.force_share)],
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return qemu_img_missing()

    def run(self, ctx: RunContext) -> dict[str, Any]:
        fmt, _ = format_note(self.fmt, "fmt", self.path)
        path = Path(self.path)
        require_file(path, "path")
        info = read_info(ctx, qf.build_info(self.path, fmt, force_share=self.force_share))
        ev: dict[str, Any] = {"path": str(path.resolve()), "info": info.to_evidence()}
        if fmt is None and info.format == "raw" and fixed_vhd_tail(path):
            ev["warning"] = tr(
                "文件末尾是固定大小 VHD 的页脚：qemu-img 探测为 raw，实际应按 vpc 读取（fmt='vhd'）",
                "the file ends in a fixed-VHD footer: qemu-img probes raw, but it should be read as vpc "
                "(fmt='vhd')",
            )
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        info = evidence["info"]
        msg = image_summary(
            evidence["path"], info["format"], info["virtual_size_human"], info["actual_size_human"]
        )
        if info.get("corrupt"):
            return CheckResult.failed(
                self.check_id, msg + tr("；镜像标记为损坏", "; the image is marked corrupt"), **evidence
            )
        if "warning" in evidence:
            msg += "; " + evidence["warning"]
        return CheckResult.passed(self.check_id, msg, **evidence)
