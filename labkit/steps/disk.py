"""Chapter 1, disk images: create, inspect, convert and resize with the real ``qemu-img``.

The course text runs ``qemu-img create -f qcow2 ubuntu-arm64.qcow2 120G``, ``qemu-img create
ubuntu-arm64.img 120G``, ``qemu-img convert -f vhd -O qcow2 …`` and ``qemu-img convert -O qcow2 -c
ubuntu-arm64.img ubuntu-arm64-compressed.qcow2``. These steps run the same commands, with the
corrections a student would otherwise learn the hard way (see :mod:`labkit.logic.qemu_img`):

* ``qemu-img create`` silently overwrites an existing image, so :class:`CreateImage` refuses unless
  ``overwrite=True`` and then keeps the old file as a backup.
* ``-f vhd`` does not exist (``vpc`` does); a fixed VHD is read as raw unless ``-f vpc`` is given.
* Nothing is written in place: images are made under a temporary sibling name and renamed when
  complete, so a cancelled or failed conversion never leaves a half-written target.
* Checks look at the result with ``qemu-img info`` and, for conversions, ``qemu-img compare``, so a
  *pass* means the image really has the format, the size and the content it should.

Backups of images are hard links where possible (an image replaced by ``os.replace`` keeps its old
inode under the backup name: no copy, no lost sparseness) and ``cp --sparse=always`` otherwise;
``shutil.copy2`` would write every zero of a sparse 120 GiB raw image.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import CommandFailed, ConsentRequired, InvalidField, ToolMissing
from labkit.i18n import tr
from labkit.logic import qemu_img as qi
from labkit.logic.sizes import format_size, human_size
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.runner import require_tool

__all__ = [
    "ConvertImage",
    "CreateImage",
    "ImageInfo",
    "ResizeImage",
    "read_info",
]


# ----------------------------------------------------------------------------------------------
# Helpers shared by the steps
# ----------------------------------------------------------------------------------------------
def _qemu_img_missing() -> str | None:
    try:
        require_tool(qi.QEMU_IMG)
    except ToolMissing as exc:
        return tr(
            "未安装 qemu-img；安装：{i}", "qemu-img is not installed; install it with: {i}", i=exc.install
        )
    return None


def read_info(ctx: RunContext, argv: list[str]) -> qi.ImageInfo:
    """Run a ``qemu-img info --output=json`` argv (from :func:`labkit.logic.qemu_img.build_info`,
    the same one the plan lists as a probe) through the context's runner and parse it."""
    return qi.parse_info(ctx.run(argv, timeout=60).stdout)


def _require_file(path: Path, field: str) -> None:
    if not path.exists():
        raise InvalidField(
            field,
            str(path),
            tr("不存在", "does not exist"),
            tr("检查路径，或先用 CreateImage 创建镜像", "check the path, or create the image first"),
        )
    if not path.is_file():
        raise InvalidField(
            field,
            str(path),
            tr("不是普通文件", "is not a regular file"),
            tr("给出镜像文件", "give an image file"),
        )


def _fixed_vhd_tail(path: Path) -> bool:
    """True if the file ends in a fixed-VHD footer (which qemu-img's probe cannot see)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 512))
            return qi.looks_like_fixed_vhd(f.read(512))
    except OSError:
        return False


def _refuse_probed_fixed_vhd(path: Path, field: str, fmt: str | None, info: qi.ImageInfo) -> None:
    if fmt is None and info.format == "raw" and _fixed_vhd_tail(path):
        raise InvalidField(
            field,
            None,
            tr(
                "（未指定）：{p} 末尾有固定大小 VHD 的页脚，但 qemu-img 自动探测为 raw",
                "(not given): {p} ends in a fixed-VHD footer, yet qemu-img probes it as raw",
                p=path,
            ),
            tr("传入 {f}='vhd'（即 -f vpc）", "pass {f}='vhd' (that is -f vpc)", f=field),
        )


def _format_note(fmt: str | None, field: str, path: str | os.PathLike[str]) -> tuple[str | None, list[str]]:
    """Resolve a format argument: explicit (maybe an alias) or from the file extension; plus notes."""
    notes: list[str] = []
    if fmt is not None:
        name, note = qi.normalize_format(fmt, field)
        if note:
            notes.append(note)
        return name, notes
    guessed = qi.format_from_name(path)
    if guessed:
        notes.append(
            tr(
                "{p} 的格式按扩展名取为 {f}（用 {field}=… 可改）；总是显式传 -f，避免 qemu-img 猜错。",
                "{p}: format {f} taken from the extension (set {field}=… to override); labkit always "
                "passes -f so qemu-img does not have to guess.",
                p=os.fspath(path),
                f=guessed,
                field=field,
            )
        )
    else:
        notes.append(
            tr(
                "{p} 的格式未知，由 qemu-img 自动探测（不加 -f）；注意固定大小的 VHD 会被探测成 raw。",
                "{p}: format unknown, so qemu-img probes it (no -f); beware that a fixed-size VHD probes "
                "as raw.",
                p=os.fspath(path),
            )
        )
    return guessed, notes


def _tmp_note(final: str | os.PathLike[str]) -> str:
    return tr(
        "先写到同目录的临时文件 {t}，完成后再改名为 {p}；失败或取消不会留下半截文件。",
        "written to the temporary sibling {t}, renamed to {p} when complete; a failure or cancel never "
        "leaves a half-written file.",
        t=files.tmp_sibling(final).name,
        p=os.fspath(final),
    )


def _growth_note(fmt: str) -> str | None:
    if fmt == "qcow2":
        return tr(
            "qcow2 按需增长：120G 只是上限，现在只占几百 KiB，写入数据时才变大。",
            "qcow2 grows on demand: 120G is only the ceiling; the file takes a few hundred KiB now and grows "
            "as the guest writes.",
        )
    if fmt == "raw":
        return tr(
            "raw 文件是稀疏文件：ls -l 显示 120G，du 显示几乎为 0；复制时要用 cp --sparse=always。",
            "a raw file is sparse: ls -l shows 120G, du shows almost nothing; copy it with "
            "cp --sparse=always.",
        )
    if fmt == "vpc":
        return tr(
            "VHD 的大小会向上取整到柱面/磁头/扇区（CHS）几何的整数倍。",
            "a VHD's size is rounded up to a whole CHS (cylinder/head/sector) geometry.",
        )
    return None


def _convert(ctx: RunContext, argv: list[str], timeout: float) -> float:
    """Run ``qemu-img convert -p``, turning its ``(12.34/100%)`` lines into progress; the last fraction."""
    last = [-1.0]

    def on_line(stream: str, line: str) -> None:
        frac = qi.parse_progress(line)
        if frac is None:
            if line.strip() and ctx.on_line is not None:
                ctx.on_line(stream, line)
        elif frac > last[0]:
            last[0] = frac
            ctx.progress(frac)

    ctx.run(argv, timeout=timeout, on_line=on_line)
    ctx.check_cancelled()
    return last[0]


# ----------------------------------------------------------------------------------------------
# Steps
# ----------------------------------------------------------------------------------------------
class CreateImage(Step):
    """``qemu-img create -f FMT PATH SIZE`` – a blank disk image, never overwriting by surprise.

    Plan and run share :meth:`_argv`: ``qemu-img create`` into the temporary sibling
    (:func:`labkit.files.tmp_sibling`), renamed when complete; the check's ``qemu-img info`` is a probe.
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
            "info": qi.build_info(path, fmt),
        }

    def plan(self) -> Plan:
        path, fmt, size, notes = self._resolve()
        expected = qi.expected_virtual_size(size, fmt)
        growth = _growth_note(fmt)
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
                "qemu-img create 会悄悄覆盖已有文件；labkit 先检查，"
                "已存在时需要 overwrite=True，并保留旧文件为备份。",
                "qemu-img create silently overwrites an existing file; labkit checks first, needs "
                "overwrite=True for an existing file and keeps the old one as a backup.",
            )
        )
        if path.exists():
            notes.append(
                tr("{p} 已存在。", "{p} exists already.", p=path)
                + (
                    tr("将备份后覆盖。", " It will be backed up and replaced.")
                    if self.overwrite
                    else tr("不给 overwrite=True 将拒绝运行。", " Without overwrite=True the step refuses.")
                )
            )
        notes.append(_tmp_note(path))
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
        return _qemu_img_missing()

    def run(self, ctx: RunContext) -> dict[str, Any]:
        path, fmt, size, _ = self._resolve()
        files.refuse_overwrite(path, self.overwrite, field="path")
        backup: Path | None = None
        tmp = files.tmp_sibling(path)
        with files.atomic_target(path, overwrite=self.overwrite, backup=False, tmp=tmp):
            ctx.run(self._argv(path, fmt, size)["create"], timeout=self.timeout)
            ctx.check_cancelled()
            if path.exists():
                backup = files.backup_file(path, replacing=True)
        ctx.progress(1.0)
        return {
            "path": str(path.resolve()),
            "format": fmt,
            "requested_size": size,
            "expected_virtual_size": qi.expected_virtual_size(size, fmt),
            "backup": str(backup.resolve()) if backup else None,
        }

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
            tr(
                "{p}：{f} 格式，虚拟大小 {v}，实际占用 {a}",
                "{p}: {f}, virtual size {v}, using {a} on disk",
                p=path,
                f=info.format,
                v=human_size(info.virtual_size),
                a=human_size(info.actual_size if info.actual_size is not None else ev["allocated"]),
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
        fmt, notes = _format_note(self.fmt, "fmt", self.path)
        if not self.force_share:
            notes.append(
                tr(
                    "镜像正被运行中的虚拟机使用时，需要 force_share=True（即 -U）。",
                    "for an image a running VM holds open, use force_share=True (-U).",
                )
            )
        return Plan(
            step=self.check_id,
            reason=tr(
                "查看镜像 {p} 的格式与大小", "show the format and sizes of image {p}", p=os.fspath(self.path)
            ),
            probes=[qi.build_info(self.path, fmt, force_share=self.force_share)],
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return _qemu_img_missing()

    def run(self, ctx: RunContext) -> dict[str, Any]:
        fmt, _ = _format_note(self.fmt, "fmt", self.path)
        path = Path(self.path)
        _require_file(path, "path")
        info = read_info(ctx, qi.build_info(self.path, fmt, force_share=self.force_share))
        ev: dict[str, Any] = {"path": str(path.resolve()), "info": info.to_evidence()}
        if fmt is None and info.format == "raw" and _fixed_vhd_tail(path):
            ev["warning"] = tr(
                "文件末尾是固定大小 VHD 的页脚：qemu-img 探测为 raw，实际应按 vpc 读取（fmt='vhd'）",
                "the file ends in a fixed-VHD footer: qemu-img probes raw, but it should be read as vpc "
                "(fmt='vhd')",
            )
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        info = evidence["info"]
        msg = tr(
            "{p}：{f} 格式，虚拟大小 {v}，实际占用 {a}",
            "{p}: {f}, virtual size {v}, using {a} on disk",
            p=evidence["path"],
            f=info["format"],
            v=info["virtual_size_human"],
            a=info["actual_size_human"],
        )
        if info.get("corrupt"):
            return CheckResult.failed(
                self.check_id, msg + tr("；镜像标记为损坏", "; the image is marked corrupt"), **evidence
            )
        if "warning" in evidence:
            msg += "; " + evidence["warning"]
        return CheckResult.passed(self.check_id, msg, **evidence)


class ConvertImage(Step):
    """``qemu-img convert``: another format (and optionally compressed), verified by ``qemu-img compare``.

    Run: ``qemu-img info`` of the source, ``qemu-img measure`` to check free space, then the
    conversion into a temporary sibling with ``-p`` progress streamed to ``on_progress``, then the
    rename. Check: ``qemu-img info`` of the result (format, virtual size), ``qemu-img compare`` and,
    for qcow2, ``qemu-img check``. Every argv comes from :meth:`_argv`; all but the conversion are
    read-only probes.
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
        src_fmt, notes = _format_note(self.src_format, "src_format", self.src)
        dst_fmt, note = qi.normalize_format(self.dst_format, "dst_format")
        if note and note not in notes:
            notes.append(note)
        qi.build_convert(self.src, self.dst, src_fmt, dst_fmt, self.compress)  # validates the combination
        return src_fmt, dst_fmt, notes

    def _argv(self, src_fmt: str | None, dst_fmt: str) -> dict[str, list[str]]:
        src, dst = Path(self.src), Path(self.dst)
        argv = {
            "src_info": qi.build_info(src, src_fmt),
            "measure": qi.build_measure(src, qi.measure_format(dst_fmt), src_fmt),
            "convert": qi.build_convert(
                src, files.tmp_sibling(dst), src_fmt, dst_fmt, self.compress, progress=True
            ),
            "dst_info": qi.build_info(dst, dst_fmt),
            "compare": qi.build_compare(src, dst, src_fmt, dst_fmt),
        }
        if dst_fmt == "qcow2":  # qemu-img check counts the compressed clusters
            argv["check"] = qi.build_check(dst, dst_fmt)
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
        notes.append(_tmp_note(self.dst))
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
        return _qemu_img_missing()

    def run(self, ctx: RunContext) -> dict[str, Any]:
        src_fmt, dst_fmt, _ = self._resolve()
        argv = self._argv(src_fmt, dst_fmt)
        src, dst = Path(self.src), Path(self.dst)
        _require_file(src, "src")
        files.refuse_overwrite(dst, self.overwrite, field="dst")
        if dst.exists() and os.path.samefile(src, dst):
            raise InvalidField(
                "dst",
                str(dst),
                tr("与源文件相同", "is the source file itself"),
                tr("换一个目标文件名", "choose another target name"),
            )
        src_info = read_info(ctx, argv["src_info"])
        _refuse_probed_fixed_vhd(src, "src_format", src_fmt, src_info)
        measure = qi.parse_measure(ctx.run(argv["measure"], timeout=600).stdout)
        free = files.ensure_free_space(dst.resolve().parent, measure.required, what=f"convert to {dst}")
        ctx.check_cancelled()

        backup: Path | None = None
        t0 = time.monotonic()
        with files.atomic_target(dst, overwrite=self.overwrite, backup=False, tmp=files.tmp_sibling(dst)):
            last = _convert(ctx, argv["convert"], self.timeout)
            if dst.exists():
                backup = files.backup_file(dst, replacing=True)
        convert_s = time.monotonic() - t0
        if last < 1.0:
            ctx.progress(1.0)
        return {
            "src": str(src.resolve()),
            "dst": str(dst.resolve()),
            "src_format": src_fmt,
            "dst_format": dst_fmt,
            "compress": self.compress,
            "src_info": src_info.to_evidence(),
            "measure": {
                "as_format": qi.measure_format(dst_fmt),
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
        verdict = qi.interpret_compare(done.returncode, done.stdout, done.stderr)
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
                report = qi.parse_check(chk.stdout)
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


class ResizeImage(Step):
    """``qemu-img resize``: grow freely; shrink only with ``allow_shrink=True`` and after a backup copy.

    Growing the disk does not grow the guest's partition or file system; that happens inside the
    guest (``growpart``, ``resize2fs``). An image that already has the requested size is left
    alone (:meth:`satisfied`). The backup before shrinking is a sparse copy made in Python
    (:func:`labkit.files.backup_file`), so the plan's commands are exactly what runs.
    """

    check_id = "ch1.disk.resize"
    timeout = 600.0

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: str | int,
        allow_shrink: bool = False,
        fmt: str | None = None,
    ) -> None:
        self.path = path
        self.size = size
        self.allow_shrink = allow_shrink
        self.fmt = fmt

    def _resolve(self) -> tuple[str | None, int, list[str]]:
        fmt, notes = _format_note(self.fmt, "fmt", self.path)
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
            "info": qi.build_info(self.path, fmt),
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
                    "如果新大小比现在小，labkit 会拒绝（需要 allow_shrink=True）。",
                    "if the new size is smaller than the current one labkit refuses "
                    "(needs allow_shrink=True).",
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
        return Plan(
            step=self.check_id,
            reason=tr(
                "把 {p} 的虚拟大小调整为 {s}",
                "resize the virtual disk {p} to {s}",
                p=os.fspath(self.path),
                s=format_size(size),
            ),
            commands=[argv["resize"]],
            probes=[argv["info"]],
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return _qemu_img_missing()

    def _current(self, ctx: RunContext) -> dict[str, Any]:
        """Read the image (``qemu-img info``): evidence before resizing; refuses what cannot resize."""
        fmt, size, _ = self._resolve()
        path = Path(self.path)
        _require_file(path, "path")
        before = read_info(ctx, self._argv(fmt, size)["info"])
        _refuse_probed_fixed_vhd(path, "fmt", fmt, before)
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
                tr("先用 ConvertImage 转成 qcow2", "convert it to qcow2 first (ConvertImage)"),
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
        ev = self._current(ctx)
        if ev["requested"] != ev["before"]:
            return None
        ctx.say(tr("大小未变，无需调整", "size unchanged; nothing to do"))
        return {**ev, "changed": False}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        fmt, size, _ = self._resolve()
        ev = self._current(ctx)
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
                        "确认后传入 allow_shrink=True（会先保留备份）",
                        "pass allow_shrink=True (a backup copy is kept)",
                    ),
                )
            if ev["format"] not in qi.SHRINKABLE:
                raise InvalidField(
                    "path",
                    str(path),
                    tr("的格式不支持缩小", "has a format that cannot shrink"),
                    tr("先转成 qcow2", "convert it to qcow2 first"),
                )
            files.ensure_free_space(path.resolve().parent, ev["actual_size"] or 0, what="back up the image")
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
        return CheckResult.passed(
            self.check_id,
            tr(
                "{p}：虚拟大小 {a} → {b}",
                "{p}: virtual size {a} → {b}",
                p=evidence["path"],
                a=human_size(evidence["before"]),
                b=human_size(info.virtual_size),
            ),
            **ev,
        )
