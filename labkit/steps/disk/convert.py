"""Convert a disk image to another format, verified by ``qemu-img compare`` (``qemu-img convert``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import CommandFailed, InvalidField
from labkit.i18n import consent_hint, tr
from labkit.logic import qemu_img as qi
from labkit.logic import qemu_img_facts as qf
from labkit.logic.disk_content import compression_summary
from labkit.logic.sizes import human_size
from labkit.steps.base import Plan, RunContext, Step, refuse_replacing
from labkit.steps.disk.common import (
    existing_image,
    format_note,
    qemu_img_missing,
    read_info,
    refuse_probed_fixed_vhd,
    require_file,
    run_convert,
    tmp_note,
)

__all__ = ["ConvertImage"]


class ConvertImage(Step):
    """``qemu-img convert``: another format (and optionally compressed), verified by ``qemu-img compare``.

    Run: ``qemu-img info`` of the source, ``qemu-img measure`` to check free space, then the
    conversion into a temporary sibling with ``-p`` progress streamed to ``on_progress``, then the
    rename. Check: ``qemu-img info`` of the result (format, virtual size), ``qemu-img compare`` and,
    for qcow2, ``qemu-img check``. Every argv comes from :meth:`_argv`; all but the conversion are
    read-only probes. An existing target with the target format, the source's virtual size and
    (``qemu-img compare``) the source's content (compressed where ``compress`` asks for it) is
    left alone and verified (:meth:`satisfied`); one that differs needs ``overwrite=True``.
    """

    check_id = "ch1.disk.convert"
    timeout = 3600.0

    def __init__(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        src_format: str | None = None,
        dst_format: str = "qcow2",
        compress: bool = False,
        overwrite: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.src_format = src_format
        self.dst_format = dst_format
        self.compress = compress
        self.overwrite = overwrite
        if timeout is not None:
            self.timeout = timeout

    def _resolve(self) -> tuple[str | None, str, list[str]]:
        src_fmt, notes = format_note(self.src_format, "src_format", self.src)
        dst_fmt, note = qi.normalize_format(self.dst_format, "dst_format")
        if note and note not in notes:
            notes.append(note)
        qi.build_convert(self.src, self.dst, src_fmt, dst_fmt, self.compress)  # validates the combination
        return src_fmt, dst_fmt, notes

    def _argv(self, src_fmt: str | None, dst_fmt: str) -> dict[str, list[str]]:
        src, dst = Path(self.src), Path(self.dst)
        argv = {
            "src_info": qf.build_info(src, src_fmt),
            "measure": qf.build_measure(src, qf.measure_format(dst_fmt), src_fmt),
            "convert": qi.build_convert(
                src, files.tmp_sibling(dst), src_fmt, dst_fmt, self.compress, progress=True
            ),
            "dst_info": qf.build_info(dst, dst_fmt),
            "compare": qf.build_compare(src, dst, src_fmt, dst_fmt),
        }
        if dst_fmt == "qcow2":  # qemu-img check counts the compressed clusters
            argv["check"] = qf.build_check(dst, dst_fmt)
        return argv

    def plan(self) -> Plan:
        src_fmt, dst_fmt, notes = self._resolve()
        if src_fmt in (None, "vpc"):
            notes.append(
                tr(
                    "固定大小的 VHD 若不加 -f vpc 会被当成 raw，连同末尾 512 字节页脚一起转换。",
                    "a fixed-size VHD is read as raw unless -f vpc is given, and its 512-byte footer "
                    "would be converted into the disk.",
                )
            )
        if self.compress:
            notes.append(
                tr(
                    "-c 压缩每个 qcow2 簇（zlib），文件更小；之后虚拟机新写入的数据不再压缩。",
                    "-c compresses each qcow2 cluster (zlib) for a smaller file; data the guest writes "
                    "later is stored uncompressed.",
                )
            )
        notes.append(
            tr(
                "先用 qemu-img measure 估算需要的空间并检查剩余磁盘；"
                "转换后用 qemu-img compare 逐字节核对内容。",
                "qemu-img measure first estimates the space needed (free disk space is checked); after "
                "converting, qemu-img compare verifies the content.",
            )
        )
        if dst_fmt != "qcow2":
            notes.append(
                tr(
                    "qemu-img measure 只支持 qcow2/raw 输出（raw 还会按完整虚拟大小计算），"
                    "所以按 qcow2 估算要复制的数据量。",
                    "qemu-img measure only handles qcow2/raw outputs (and counts raw at its full virtual "
                    "size), so the data to copy is estimated as if the target were qcow2.",
                )
            )
        notes.append(
            tr(
                "目标已存在时先核对：格式、虚拟大小与内容（qemu-img compare）都和源一致就直接通过、不重做；"
                "不同则拒绝，除非{c}（旧文件保留为备份）。",
                "an existing target is verified first: the same format, virtual size and content "
                "(qemu-img compare) as the source passes without converting again; a different one is "
                "refused unless you {c} (the old file is kept as a backup).",
                c=consent_hint("overwrite"),
            )
        )
        notes.append(tmp_note(self.dst))
        argv = self._argv(src_fmt, dst_fmt)
        return Plan(
            step=self.check_id,
            reason=tr(
                "把 {s} 转换为 {f} 格式的 {d}{c}",
                "convert {s} to {f} image {d}{c}",
                s=os.fspath(self.src),
                d=os.fspath(self.dst),
                f=dst_fmt,
                c=tr("（压缩）", " (compressed)") if self.compress else "",
            ),
            commands=[argv.pop("convert")],
            probes=list(argv.values()),
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return qemu_img_missing()

    def _existing(
        self, ctx: RunContext, src_fmt: str | None, dst_fmt: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Compare the existing target with what converting the source would give: the source's
        info, the target's, and what differs (empty: the same). Probes only."""
        argv = self._argv(src_fmt, dst_fmt)
        src_info = read_info(ctx, argv["src_info"])
        refuse_probed_fixed_vhd(Path(self.src), "src_format", src_fmt, src_info)
        want = qi.expected_virtual_size(src_info.virtual_size, dst_fmt)
        info, differences = existing_image(ctx, argv["dst_info"], dst_fmt, want)
        facts: dict[str, Any] = {"src_info": src_info.to_evidence(), "dst_info": info}
        if info is None or differences:
            return facts, differences
        done = ctx.run(argv["compare"], timeout=self.timeout, check=False)
        verdict = qf.interpret_compare(done.returncode, done.stdout, done.stderr)
        if not verdict.identical:
            differences.append(tr("内容与源不同：", "content differs from the source: ") + verdict.message)
        elif self.compress and "check" in argv:
            chk = ctx.run(argv["check"], timeout=600, check=False)
            report = qf.parse_check(chk.stdout) if chk.stdout.strip() else None
            if report is None or (report.allocated_clusters and not report.compressed_clusters):
                differences.append(tr("没有压缩（-c）", "not compressed (-c)"))
        return facts, differences

    def _evidence(self, src_fmt: str | None, dst_fmt: str, src_info: dict[str, Any]) -> dict[str, Any]:
        return {
            "src": str(Path(self.src).resolve()),
            "dst": str(Path(self.dst).resolve()),
            "src_format": src_fmt,
            "dst_format": dst_fmt,
            "compress": self.compress,
            "src_info": src_info,
        }

    def _refuse_unusable_target(self, src: Path, dst: Path) -> None:
        require_file(src, "src")
        if dst.exists() and os.path.samefile(src, dst):
            raise InvalidField(
                "dst",
                str(dst),
                tr("与源文件相同", "is the source file itself"),
                tr("换一个目标文件名", "choose another target name"),
            )

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        src_fmt, dst_fmt, _ = self._resolve()
        src, dst = Path(self.src), Path(self.dst)
        if self.overwrite or not dst.is_file():
            return None
        self._refuse_unusable_target(src, dst)
        facts, differences = self._existing(ctx, src_fmt, dst_fmt)
        if differences:
            return None  # run() refuses it, naming the differences
        info = facts["dst_info"]
        return {
            **self._evidence(src_fmt, dst_fmt, facts["src_info"]),
            "backup": None,
            "verified_by": tr(
                "qemu-img info：{f}，{v}；qemu-img compare：与源一致",
                "qemu-img info: {f}, {v}; qemu-img compare: identical to the source",
                f=info.format,
                v=human_size(info.virtual_size),
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        src_fmt, dst_fmt, _ = self._resolve()
        argv = self._argv(src_fmt, dst_fmt)
        src, dst = Path(self.src), Path(self.dst)
        self._refuse_unusable_target(src, dst)
        if dst.is_file() and not self.overwrite:
            _, differences = self._existing(ctx, src_fmt, dst_fmt)
            raise refuse_replacing(dst, differences or [tr("已存在", "exists already")])
        files.refuse_overwrite(dst, self.overwrite, field="dst")
        src_info = read_info(ctx, argv["src_info"])
        refuse_probed_fixed_vhd(src, "src_format", src_fmt, src_info)
        measure = qf.parse_measure(ctx.run(argv["measure"], timeout=600).stdout)
        free = files.ensure_free_space(
            dst.resolve().parent, measure.required, what=tr("转换到 {d}", "convert to {d}", d=dst)
        )
        ctx.check_cancelled()

        backup: Path | None = None
        t0 = time.monotonic()
        with files.atomic_target(dst, overwrite=self.overwrite, backup=False, tmp=files.tmp_sibling(dst)):
            last = run_convert(ctx, argv["convert"], self.timeout)
            if dst.exists():
                backup = files.backup_file(dst, replacing=True)
        convert_s = time.monotonic() - t0
        if last < 1.0:
            ctx.progress(1.0)
        return {
            **self._evidence(src_fmt, dst_fmt, src_info.to_evidence()),
            "measure": {
                "as_format": qf.measure_format(dst_fmt),
                "required": measure.required,
                "fully_allocated": measure.fully_allocated,
            },
            "free_before": free,
            "convert_s": round(convert_s, 3),
            "backup": str(backup.resolve()) if backup else None,
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        src, dst = evidence["src"], evidence["dst"]
        src_fmt, dst_fmt = evidence["src_format"], evidence["dst_format"]
        argv = self._argv(src_fmt, dst_fmt)
        src_info = evidence["src_info"]
        info = read_info(ctx, argv["dst_info"])
        done = ctx.run(argv["compare"], timeout=self.timeout, check=False)
        verdict = qf.interpret_compare(done.returncode, done.stdout, done.stderr)
        if verdict.identical is None:
            raise CommandFailed(done.argv, done.returncode, done.stdout, done.stderr)
        src_alloc, dst_alloc = src_info["actual_size"], info.actual_size
        ev: dict[str, Any] = {
            **evidence,
            "dst_info": info.to_evidence(),
            "compare": verdict.message,
            "src_file_size": os.path.getsize(src),
            "dst_file_size": os.path.getsize(dst),
            "src_allocated": src_alloc,
            "dst_allocated": dst_alloc,
            "ratio": round(dst_alloc / src_alloc, 4) if src_alloc and dst_alloc is not None else None,
        }
        if dst_fmt == "qcow2":
            chk = ctx.run(argv["check"], timeout=600, check=False)
            if chk.stdout.strip():
                report = qf.parse_check(chk.stdout)
                ev["compressed_clusters"] = report.compressed_clusters or 0
                ev["allocated_clusters"] = report.allocated_clusters
                ev["image_clean"] = report.clean
        problems = []
        if info.format != dst_fmt:
            problems.append(
                tr("格式是 {a}，应为 {b}", "format is {a}, expected {b}", a=info.format, b=dst_fmt)
            )
        # same as the source, except that a VHD target rounds up to its CHS geometry
        want = qi.expected_virtual_size(src_info["virtual_size"], dst_fmt)
        ev["expected_virtual_size"] = want
        if info.virtual_size != want:
            problems.append(
                tr(
                    "虚拟大小 {a} 与预期 {b}（源 {c}）不同",
                    "virtual size {a} differs from the expected {b} (source {c})",
                    a=info.virtual_size,
                    b=want,
                    c=src_info["virtual_size"],
                )
            )
        if not verdict.identical:
            problems.append(tr("内容不一致：", "content differs: ") + verdict.message)
        if ev.get("image_clean") is False:
            problems.append(tr("qemu-img check 报告错误", "qemu-img check reports errors"))
        if problems:
            return CheckResult.failed(self.check_id, f"{dst}: " + "; ".join(problems), **ev)
        if self.compress:  # the lesson of -c: say the ratio
            return CheckResult.passed(
                self.check_id,
                tr(
                    "{d}：{f} 格式，内容与源一致；{c}",
                    "{d}: {f}, content identical to the source; {c}",
                    d=dst,
                    f=info.format,
                    c=compression_summary(src_alloc, dst_alloc),
                ),
                **ev,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "{d}：{f} 格式，内容与源一致；占用 {a}（源 {b}）",
                "{d}: {f}, content identical to the source; uses {a} on disk (source {b})",
                d=dst,
                f=info.format,
                a=human_size(dst_alloc),
                b=human_size(src_alloc),
            ),
            **ev,
        )
