"""Put course-like data into a raw image before it is compressed (``ch1.disk.fill``, ``qemu-io``).

The compression demo needs data in the source image: an empty one "compresses" into a bigger file.
:class:`FillImage` writes :func:`labkit.logic.disk_content.course_logs` (a few MiB of server
logs, the same bytes every run) into a source file beside the image and copies it to the start of
the image with ``qemu-io -c 'write -s …'``; the check reads the image's first bytes back and
compares them with the logs. A second run finds them there and only verifies.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import InvalidField, ToolMissing
from labkit.i18n import tr
from labkit.logic import disk_content as dc
from labkit.logic import qemu_img_facts as qf
from labkit.logic.sizes import human_size
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.disk.common import qemu_img_missing, read_info, require_file
from labkit.steps.runner import require_tool

__all__ = ["FillImage"]

#: The source file's name, beside the image (qemu-io reads it from the image's folder).
SOURCE_NAME = "course-logs.txt"


class FillImage(Step):
    """Write ``size`` bytes of course logs at the start of the raw image ``path`` (``qemu-io``)."""

    check_id = "ch1.disk.fill"
    timeout = 300.0

    def __init__(self, path: str | os.PathLike[str], size: str | int = "8M") -> None:
        self.path = Path(path)
        self.size = size
        self._logs: bytes | None = None

    @property
    def source(self) -> Path:
        return self.path.parent / SOURCE_NAME

    def _argv(self) -> dict[str, list[str]]:
        length = dc.fill_length(self.size)
        return {
            "write": dc.build_io_write(self.path, "raw", SOURCE_NAME, length),
            "info": qf.build_info(self.path),  # probed: a qcow2 file must not pass as raw
        }

    def _content(self) -> bytes:
        """The logs to write (generated once per step: a few MiB take a fraction of a second)."""
        length = dc.fill_length(self.size)
        if self._logs is None or len(self._logs) != length:
            self._logs = dc.course_logs(length)
        return self._logs

    def plan(self) -> Plan:
        argv = self._argv()
        length = dc.fill_length(self.size)
        return Plan(
            step=self.check_id,
            reason=tr(
                "在 {p} 开头写入 {n} 课程服务器日志（文本），让压缩有东西可压",
                "write {n} of course server logs (text) at the start of {p}, so compression has data",
                p=self.path,
                n=human_size(length),
            ),
            commands=[argv["write"]],
            probes=[argv["info"]],
            notes=[
                tr(
                    "先在 {s} 写入日志文本：Web、邮件和业务服务器的日志行（第 1.6 节的三台服务器），"
                    "用固定的随机种子生成，每次内容相同；第一行：{l}",
                    "first {s} gets the log text: lines of the web, mail and application servers (the "
                    "three servers of section 1.6), generated with a fixed seed, the same every run; "
                    "first line: {l}",
                    s=self.source,
                    l=dc.course_logs(200).decode("ascii").splitlines()[0],
                ),
                tr(
                    "qemu-io 在 {d} 中运行，把 {s} 的内容写到镜像偏移 0 处；raw 镜像仍是稀疏文件，"
                    "只有写入的部分占用磁盘",
                    "qemu-io runs in {d} and writes {s} at offset 0 of the image; the raw image stays "
                    "sparse, only the written part takes disk space",
                    d=self.path.parent,
                    s=SOURCE_NAME,
                ),
                tr(
                    "镜像开头已经是这些日志时不再写入，只核对",
                    "when the image already starts with these logs nothing is written; it is verified",
                ),
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        missing = qemu_img_missing()
        if missing:
            return missing
        try:
            require_tool(dc.QEMU_IO)
        except ToolMissing as exc:
            return str(exc)
        return None

    def _head_matches(self, length: int) -> bool:
        if not self.path.is_file() or self.path.stat().st_size < length:
            return False
        with self.path.open("rb") as fh:
            return fh.read(length) == self._content()

    def _require_raw(self, ctx: RunContext) -> qf.ImageInfo:
        require_file(self.path, "name")
        info = read_info(ctx, self._argv()["info"])
        length = dc.fill_length(self.size)
        if info.format != "raw":
            raise InvalidField(
                "name",
                str(self.path),
                tr("不是 raw 镜像（是 {f}）", "is not a raw image (it is {f})", f=info.format),
                tr("选 raw 格式的镜像，例如 ubuntu-arm64.img", "choose a raw image, e.g. ubuntu-arm64.img"),
            )
        if info.virtual_size < length:
            raise InvalidField(
                "size",
                self.size,
                tr(
                    "比镜像的虚拟大小 {v} 还大",
                    "is larger than the image's virtual size {v}",
                    v=info.virtual_size,
                ),
                tr("写少一点", "write less"),
            )
        return info

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        length = dc.fill_length(self.size)
        if not self._head_matches(length):
            return None
        self._require_raw(ctx)
        return {
            "path": str(self.path),
            "length": length,
            "verified_by": tr(
                "镜像开头 {n} 与课程日志逐字节相同",
                "the image's first {n} are byte for byte the course logs",
                n=human_size(length),
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self._require_raw(ctx)
        length = dc.fill_length(self.size)
        content = self._content()
        if not (self.source.is_file() and self.source.read_bytes() == content):
            files.write_atomic(self.source, content, overwrite=True)  # a different file is backed up
        ctx.run(self._argv()["write"], timeout=self.timeout, cwd=self.path.parent)
        ctx.progress(1.0)
        return {"path": str(self.path), "length": length, "source": str(self.source)}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        length = evidence["length"]
        content = self._content()
        ev = {
            **evidence,
            "sha256": hashlib.sha256(content).hexdigest(),
            "allocated": self.path.stat().st_blocks * 512 if self.path.exists() else 0,
            "first_line": content[:200].decode("ascii").splitlines()[0],
        }
        if not self._head_matches(length):
            return CheckResult.failed(
                self.check_id,
                tr(
                    "{p} 开头的 {n} 不是课程日志",
                    "the first {n} of {p} are not the course logs",
                    p=self.path,
                    n=human_size(length),
                ),
                **ev,
            )
        msg = tr(
            "{p} 开头有 {n} 课程日志（已读回核对）；镜像文件实际占用 {a}",
            "{p} starts with {n} of course logs (read back and compared); the image file uses {a}",
            p=self.path.name,
            n=human_size(length),
            a=human_size(ev["allocated"]),
        )
        return CheckResult.passed(self.check_id, msg, **ev)
