"""What the disk-image steps share: the qemu-img presence check, reading ``qemu-img info``, input
checks on image files, telling whether an existing image is what a step would make, the plan
notes every step shows, and running a conversion with progress."""

from __future__ import annotations

import os
from pathlib import Path

from labkit import files
from labkit.errors import CommandFailed, InvalidField, ToolMissing
from labkit.i18n import api_note, field_name, fill_hint, has_field, tr
from labkit.logic import qemu_img as qi
from labkit.logic import qemu_img_facts as qf
from labkit.logic.sizes import human_size
from labkit.steps.base import RunContext
from labkit.steps.runner import require_tool

__all__ = [
    "existing_image",
    "fixed_vhd_tail",
    "format_note",
    "growth_note",
    "image_summary",
    "qemu_img_missing",
    "read_info",
    "refuse_probed_fixed_vhd",
    "require_file",
    "run_convert",
    "tmp_note",
]


def qemu_img_missing() -> str | None:
    try:
        require_tool(qi.QEMU_IMG)
    except ToolMissing as exc:
        return tr(
            "未安装 qemu-img；安装：{i}", "qemu-img is not installed; install it with: {i}", i=exc.install
        )
    return None


def read_info(ctx: RunContext, argv: list[str]) -> qf.ImageInfo:
    """Run a ``qemu-img info --output=json`` argv (from :func:`labkit.logic.qemu_img.build_info`,
    the same one the plan lists as a probe) through the context's runner and parse it."""
    return qf.parse_info(ctx.run(argv, timeout=60).stdout)


def existing_image(
    ctx: RunContext, argv: list[str], fmt: str, virtual_size: int
) -> tuple[qf.ImageInfo | None, list[str]]:
    """Read an existing target (``qemu-img info`` argv, a plan probe) and compare it with what the
    step makes: ``fmt`` with ``virtual_size`` bytes. Returns the info (``None`` when qemu-img
    cannot read it as ``fmt``) and what differs, in the student's words (empty: the same)."""
    try:
        info = read_info(ctx, argv)
    except CommandFailed as exc:
        why = (exc.stderr.strip().splitlines() or [str(exc.returncode)])[-1]
        return None, [
            tr("qemu-img 不能把它当作 {f} 读取：“{e}”", "qemu-img cannot read it as {f}: {e}", f=fmt, e=why)
        ]
    differences = []
    if info.format != fmt:
        differences.append(
            tr("格式是 {a}，这一步生成 {b}", "format {a}, this step makes {b}", a=info.format, b=fmt)
        )
    if info.virtual_size != virtual_size:
        have, want = human_size(info.virtual_size), human_size(virtual_size)
        if have == want:  # e.g. a few bytes apart: show the bytes
            have, want = f"{info.virtual_size} B", f"{virtual_size} B"
        differences.append(
            tr("虚拟大小 {a}，这一步生成 {b}", "virtual size {a}, this step makes {b}", a=have, b=want)
        )
    return info, differences


def require_file(path: Path, field: str) -> None:
    if not path.exists():
        raise InvalidField(
            field,
            str(path),
            tr("不存在", "does not exist"),
            tr(
                "检查路径，或先创建镜像（「创建虚拟磁盘」）",
                "check the path, or create the image first (“Create a disk image”)",
            )
            + api_note("CreateImage"),
        )
    if not path.is_file():
        raise InvalidField(
            field,
            str(path),
            tr("不是普通文件", "is not a regular file"),
            tr("给出镜像文件", "give an image file"),
        )


def fixed_vhd_tail(path: Path) -> bool:
    """True if the file ends in a fixed-VHD footer (which qemu-img's probe cannot see)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 512))
            return qi.looks_like_fixed_vhd(f.read(512))
    except OSError:
        return False


def refuse_probed_fixed_vhd(path: Path, field: str, fmt: str | None, info: qf.ImageInfo) -> None:
    if fmt is None and info.format == "raw" and fixed_vhd_tail(path):
        raise InvalidField(
            field,
            None,
            tr(
                "（未指定）：{p} 末尾有固定大小 VHD 的页脚，但 qemu-img 自动探测为 raw",
                "(not given): {p} ends in a fixed-VHD footer, yet qemu-img probes it as raw",
                p=path,
            ),
            fill_hint(field, "vhd") + tr("（即 -f vpc）", " (that is -f vpc)"),
        )


def format_note(fmt: str | None, field: str, path: str | os.PathLike[str]) -> tuple[str | None, list[str]]:
    """Resolve a format argument: explicit (maybe an alias) or from the file extension; plus notes."""
    notes: list[str] = []
    if fmt is not None:
        name, note = qi.normalize_format(fmt, field)
        if note:
            notes.append(note)
        return name, notes
    guessed = qi.format_from_name(path)
    if guessed:
        override = (
            tr("（可在「{f}」中改）", " (set {f} to override)", f=field_name(field))
            if has_field(field)
            else ""
        )
        notes.append(
            tr(
                "{p} 的格式按扩展名取为 {f}{o}；总是显式传 -f，避免 qemu-img 猜错。",
                "{p}: format {f} taken from the extension{o}; labkit always passes -f so qemu-img does "
                "not have to guess.",
                p=os.fspath(path),
                f=guessed,
                o=override,
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


def tmp_note(final: str | os.PathLike[str]) -> str:
    return tr(
        "先写到同目录的临时文件 {t}，完成后再改名为 {p}；失败或取消不会留下半截文件。",
        "written to the temporary sibling {t}, renamed to {p} when complete; a failure or cancel never "
        "leaves a half-written file.",
        t=files.tmp_sibling(final).name,
        p=os.fspath(final),
    )


def growth_note(fmt: str, size: str) -> str | None:
    """Why the new file is small although the disk is ``size`` (as the student typed it)."""
    if fmt == "qcow2":
        return tr(
            "qcow2 按需增长：{s} 只是上限，现在只占几百 KiB，写入数据时才变大。",
            "qcow2 grows on demand: {s} is only the ceiling; the file takes a few hundred KiB now and grows "
            "as the guest writes.",
            s=size,
        )
    if fmt == "raw":
        return tr(
            "raw 文件是稀疏文件：ls -l 显示 {s}，du 显示几乎为 0；复制时要用 cp --sparse=always。",
            "a raw file is sparse: ls -l shows {s}, du shows almost nothing; copy it with "
            "cp --sparse=always.",
            s=size,
        )
    if fmt == "vpc":
        return tr(
            "VHD 的大小会向上取整到柱面/磁头/扇区（CHS）几何的整数倍。",
            "a VHD's size is rounded up to a whole CHS (cylinder/head/sector) geometry.",
        )
    return None


def image_summary(path: str | os.PathLike[str], fmt: str, virtual: str, actual: str) -> str:
    """The one-line description a passing image check shows (sizes already human-readable)."""
    return tr(
        "{p}：{f} 格式，虚拟大小 {v}，实际占用 {a}",
        "{p}: {f}, virtual size {v}, using {a} on disk",
        p=os.fspath(path),
        f=fmt,
        v=virtual,
        a=actual,
    )


def run_convert(ctx: RunContext, argv: list[str], timeout: float) -> float:
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
