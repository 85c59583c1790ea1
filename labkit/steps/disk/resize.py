"""Grow or (with consent) shrink a disk image (``qemu-img resize``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import ConsentRequired, InvalidField
from labkit.i18n import api_note, consent_hint, tr
from labkit.logic import qemu_img as qi
from labkit.logic import qemu_img_facts as qf
from labkit.logic.sizes import format_size, human_size
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.disk.common import (
    format_note,
    qemu_img_missing,
    read_info,
    refuse_probed_fixed_vhd,
    require_file,
)
from labkit.steps.disk.image import CreateImage

__all__ = ["ResizeImage"]


class ResizeImage(Step):
    """``qemu-img resize``: grow freely; shrink only with ``allow_shrink=True`` and after a backup copy.

    Growing the disk does not grow the guest's partition or file system; that happens inside the
    guest (``growpart``, ``resize2fs``). An image that already has the requested size is left
    alone and reported "unchanged" (:meth:`satisfied`). The backup before shrinking is a sparse
    copy made in Python (:func:`labkit.files.backup_file`), so the plan's commands are exactly what
    runs. ``create_size`` makes a practice image: when ``path`` does not exist yet, a blank image of
    that size is created there first (:class:`~labkit.steps.disk.CreateImage`), so a notebook can
    demonstrate the resize on an image of its own and run again without a create cell finding the
    image it made already resized.
    """

    check_id = "ch1.disk.resize"
    timeout = 600.0

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: str | int,
        allow_shrink: bool = False,
        fmt: str | None = None,
        create_size: str | int | None = None,
    ) -> None:
        self.path = path
        self.size = size
        self.allow_shrink = allow_shrink
        self.fmt = fmt
        self.create_size = create_size

    def _creator(self, fmt: str | None) -> CreateImage | None:
        """The practice image's :class:`CreateImage` when one is asked for and ``path`` is missing."""
        if self.create_size is None or os.path.lexists(self.path):
            return None
        return CreateImage(self.path, self.create_size, fmt or "qcow2")

    def _resolve(self) -> tuple[str | None, int, list[str]]:
        fmt, notes = format_note(self.fmt, "fmt", self.path)
        if isinstance(self.size, str) and self.size.strip()[:1] in "+-":
            raise InvalidField(
                "size",
                self.size,
                tr("是相对大小", "is relative"),
                tr("请给出调整后的总大小，例如 130G", "give the new total size, e.g. 130G"),
            )
        qi.build_resize(self.path, self.size, fmt, self.allow_shrink)  # validates
        return fmt, qi.validate_size_for(fmt or "raw", self.size), notes

    def _argv(self, fmt: str | None, size: int) -> dict[str, list[str]]:
        return {
            "info": qf.build_info(self.path, fmt),
            "resize": qi.build_resize(self.path, size, fmt, self.allow_shrink),
        }

    def plan(self) -> Plan:
        fmt, size, notes = self._resolve()
        if self.allow_shrink:
            notes.append(
                tr(
                    "缩小会丢弃新末尾之后的数据：仅在确实缩小时先把镜像稀疏备份为 {p}.labkit-bak-<时间>。"
                    "先在虚拟机里缩小分区和文件系统！",
                    "shrinking drops everything past the new end: only when the image really shrinks, a "
                    "sparse backup {p}.labkit-bak-<time> is made first. Shrink the guest's partition and "
                    "file system first!",
                    p=os.fspath(self.path),
                )
            )
        else:
            notes.append(
                tr(
                    "如果新大小比现在小，labkit 会拒绝，除非{c}。",
                    "if the new size is smaller than the current one labkit refuses unless you {c}.",
                    c=consent_hint("allow_shrink"),
                )
            )
        notes.append(
            tr(
                "扩大磁盘不会自动扩大虚拟机里的分区和文件系统（需在虚拟机内用 growpart、resize2fs）。",
                "growing the disk does not grow the guest's partition or file system (growpart, resize2fs "
                "inside the guest).",
            )
        )
        argv = self._argv(fmt, size)
        first: list[list[str]] = []
        creator = self._creator(fmt)
        if creator is not None:
            made = creator.plan()
            first = made.commands
            notes.insert(
                0,
                tr(
                    "{p} 还不存在：先创建一个 {s} 的空白练习镜像（{r}），再调整它的大小",
                    "{p} does not exist yet: a blank {s} practice image is created first ({r}), then resized",
                    p=os.fspath(self.path),
                    s=format_size(qi.validate_size_for(fmt or "qcow2", self.create_size or 0)),
                    r=made.reason,
                ),
            )
        return Plan(
            step=self.check_id,
            reason=tr(
                "把 {p} 的虚拟大小调整为 {s}",
                "resize the virtual disk {p} to {s}",
                p=os.fspath(self.path),
                s=format_size(size),
            ),
            commands=[*first, argv["resize"]],
            probes=[argv["info"]],
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return qemu_img_missing()

    def _current(self, ctx: RunContext) -> dict[str, Any]:
        """Read the image (``qemu-img info``): evidence before resizing; refuses what cannot resize."""
        fmt, size, _ = self._resolve()
        path = Path(self.path)
        require_file(path, "path")
        before = read_info(ctx, self._argv(fmt, size)["info"])
        refuse_probed_fixed_vhd(path, "fmt", fmt, before)
        real_fmt = fmt or before.format
        if real_fmt not in qi.RESIZABLE:
            raise InvalidField(
                "path",
                str(path),
                tr(
                    "是 {f} 格式，qemu-img 不能调整其大小",
                    "is a {f} image, which qemu-img cannot resize",
                    f=real_fmt,
                ),
                tr("先转成 qcow2（「转换镜像格式」）", "convert it to qcow2 first (“Convert an image”)")
                + api_note("ConvertImage"),
            )
        return {
            "path": str(path.resolve()),
            "format": real_fmt,
            "before": before.virtual_size,
            "actual_size": before.actual_size,
            "requested": size,
            "backup": None,
        }

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        if not os.path.lexists(self.path) and self.create_size is not None:
            return None  # run() creates the practice image first
        ev = self._current(ctx)
        if ev["requested"] != ev["before"]:
            return None
        ctx.say(tr("大小未变，无需调整", "size unchanged; nothing to do"))
        return {
            **ev,
            "changed": False,
            "verified_by": tr(
                "qemu-img info：{f}，{v}",
                "qemu-img info: {f}, {v}",
                f=ev["format"],
                v=human_size(ev["before"]),
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        fmt, size, _ = self._resolve()
        created = None
        creator = self._creator(fmt)
        if creator is not None:
            created = creator.run(ctx)
        ev = self._current(ctx)
        ev["created"] = created
        path = Path(self.path)
        if size < ev["before"]:
            if not self.allow_shrink:
                raise ConsentRequired(
                    tr(
                        "把 {p} 从 {a} 缩小到 {b}（之后的数据会丢失）",
                        "shrink {p} from {a} to {b} (data past the new end is lost)",
                        p=path,
                        a=format_size(ev["before"]),
                        b=format_size(size),
                    ),
                    tr(
                        "确认后{c}（会先保留备份）",
                        "{c} after checking (a backup copy is kept)",
                        c=consent_hint("allow_shrink"),
                    ),
                    keyword="allow_shrink",
                )
            if ev["format"] not in qi.SHRINKABLE:
                raise InvalidField(
                    "path",
                    str(path),
                    tr("的格式不支持缩小", "has a format that cannot shrink"),
                    tr("先转成 qcow2", "convert it to qcow2 first"),
                )
            files.ensure_free_space(
                path.resolve().parent, ev["actual_size"] or 0, what=tr("备份镜像", "back up the image")
            )
            ev["backup"] = str(files.backup_file(path).resolve())
        ctx.check_cancelled()
        ctx.run(self._argv(fmt, size)["resize"], timeout=self.timeout)
        ctx.progress(1.0)
        return {**ev, "changed": True}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        fmt, size, _ = self._resolve()
        info = read_info(ctx, self._argv(fmt, size)["info"])
        ev = {**evidence, "after": info.virtual_size, "info": info.to_evidence()}
        if info.virtual_size != evidence["requested"]:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "虚拟大小是 {a} 字节，应为 {b}",
                    "virtual size is {a} bytes, expected {b}",
                    a=info.virtual_size,
                    b=evidence["requested"],
                ),
                **ev,
            )
        if not evidence.get("changed", True):
            message = tr(
                "{p}：虚拟大小已是 {b}，未改变（没有再次调整）",
                "{p}: virtual size already {b}, unchanged (not resized again)",
                p=evidence["path"],
                b=human_size(info.virtual_size),
            )
        else:
            message = tr(
                "{p}：虚拟大小 {a} → {b}",
                "{p}: virtual size {a} → {b}",
                p=evidence["path"],
                a=human_size(evidence["before"]),
                b=human_size(info.virtual_size),
            )
            if evidence.get("created"):
                message += tr("（先创建了练习镜像）", " (practice image created first)")
        return CheckResult.passed(self.check_id, message, **ev)
