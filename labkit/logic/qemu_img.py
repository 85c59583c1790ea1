"""Pure ``qemu-img`` logic: format names, argv builders and output parsers (no processes here).

It encodes what the course text gets wrong or leaves out, measured on QEMU 7.2 (see
``FINDINGS.md``): QEMU calls VHD ``vpc``, a fixed VHD is probed as ``raw``, ``create`` overwrites,
only some formats compress, resize or shrink, and VHD sizes round to a CHS geometry. Each fact is
noted on the table or function that handles it.

Builders return argv lists (never shell strings). This module holds the commands that *change*
an image (create, convert, resize); the read-only ones a step checks with (info, measure, compare,
check) and the parsers of their output are :mod:`labkit.logic.qemu_img_facts`.
"""

from __future__ import annotations

import os
import re

from labkit.errors import InvalidField
from labkit.i18n import field_name, tr
from labkit.logic.sizes import MAX_SIZE, format_size, human_size, parse_size, round_up

__all__ = [
    "ALIASES",
    "COMPRESSIBLE",
    "EXTENSIONS",
    "FORMATS",
    "MAX_VIRTUAL_SIZE",
    "QEMU_IMG",
    "RESIZABLE",
    "SHRINKABLE",
    "build_convert",
    "build_create",
    "build_resize",
    "driver_arg",
    "expected_virtual_size",
    "file_arg",
    "format_from_name",
    "looks_like_fixed_vhd",
    "normalize_format",
    "parse_progress",
    "validate_size_for",
    "vpc_geometry",
]

QEMU_IMG = "qemu-img"

#: Formats the course meets, QEMU driver name → what it is.
FORMATS: dict[str, str] = {
    "qcow2": "QEMU copy-on-write v2: grows on demand, snapshots, compression",
    "raw": "plain bytes, sparse on Linux file systems (the course's .img)",
    "vpc": "Microsoft VHD (Virtual PC / Hyper-V gen 1), dynamic or fixed",
    "vmdk": "VMware disk",
    "vdi": "VirtualBox disk",
    "vhdx": "Microsoft VHDX (Hyper-V)",
    "qed": "QEMU enhanced disk (legacy)",
}

#: Names students use that QEMU does not know → the QEMU driver name.
ALIASES: dict[str, str] = {"vhd": "vpc", "img": "raw"}

#: File name extensions whose format is unambiguous. ``.img`` is missing on purpose: Ubuntu's cloud
#: images are qcow2 files named ``.img``, so only qemu-img's probing can tell.
EXTENSIONS: dict[str, str] = {
    ".qcow2": "qcow2",
    ".raw": "raw",
    ".vhd": "vpc",
    ".vpc": "vpc",
    ".vmdk": "vmdk",
    ".vdi": "vdi",
    ".vhdx": "vhdx",
    ".qed": "qed",
}

#: ``-c`` (compress) is only offered for qcow2 here; raw / vdi / … answer "Compression not
#: supported for this file format".
COMPRESSIBLE = frozenset({"qcow2"})
#: ``qemu-img resize`` works for qcow2, raw and qed only; shrinking (qcow2, raw) needs ``--shrink``
#: and a size that is a multiple of 512 bytes.
RESIZABLE = frozenset({"qcow2", "raw", "qed"})
SHRINKABLE = frozenset({"qcow2", "raw"})

_VHD_MAX_SECTORS = 0xFF000000  # QEMU block/vpc.c: 2040 GiB
_VHD_MAX_GEOMETRY = 65535 * 16 * 255
#: Largest virtual size per format (QEMU 7.2); formats not listed are limited by qemu-img's 2**63-1.
MAX_VIRTUAL_SIZE: dict[str, int] = {
    "vpc": _VHD_MAX_SECTORS * 512,
    "vhdx": 64 << 40,
    "qed": 64 << 40,
}

_SECTOR = 512


# ----------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------
def normalize_format(name: str, field: str = "format") -> tuple[str, str | None]:
    """Return ``(qemu_driver_name, note)`` for a format name a student typed.

    ``note`` is ``None`` for a name QEMU knows; for an alias (``vhd``, ``img``) it explains the
    mapping and belongs in the plan's notes. Unknown names raise :class:`InvalidField`.

    QEMU calls VHD ``vpc`` (after Microsoft Virtual PC): ``qemu-img convert -f vhd`` fails with
    ``Unknown driver 'vhd'``. Mapping ``vhd`` → ``vpc`` with a note the step shows in its plan lets
    students learn the real name instead of meeting the error.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidField(
            field,
            name,
            tr("不是格式名", "is not a format name"),
            tr("可选：", "choose one of: ") + _choices(),
        )
    key = name.strip().lower()
    if key in FORMATS:
        return key, None
    if key == "vhd":
        return "vpc", tr(
            "QEMU 把 VHD 格式叫做 vpc（源自 Microsoft Virtual PC）：`-f vhd` 会报 "
            "\"Unknown driver 'vhd'\"，所以 labkit 传给 qemu-img 的是 `-f vpc`。",
            "QEMU calls the VHD format vpc (after Microsoft Virtual PC): `-f vhd` fails with "
            "\"Unknown driver 'vhd'\", so labkit passes `-f vpc` to qemu-img.",
        )
    if key == "img":
        return "raw", tr(
            ".img 只是扩展名，课程里的 img 镜像其实是 raw 格式（逐字节的磁盘内容）。",
            ".img is only a file extension; the course's img images are in raw format "
            "(the disk's bytes as is).",
        )
    hint = tr("，是不是 qcow2？", "; did you mean qcow2?") if key.startswith("qcow") else ""
    raise InvalidField(
        field,
        name,
        tr("不是 qemu-img 认识的格式", "is not a format qemu-img knows") + hint,
        tr("可选：", "choose one of: ") + _choices(),
    )


def _choices() -> str:
    return ", ".join([*FORMATS, "vhd (= vpc)"])


def format_from_name(path: str | os.PathLike[str]) -> str | None:
    """The format a file name's extension implies (``disk.vhd`` → ``vpc``), or ``None`` if ambiguous."""
    return EXTENSIONS.get(os.path.splitext(os.fspath(path))[1].lower())


def looks_like_fixed_vhd(tail: bytes) -> bool:
    """True if ``tail`` (a file's last 512 bytes) is a fixed-VHD footer.

    A fixed VHD is the raw disk followed by a footer starting with the cookie ``conectix``; its
    disk-type field (big-endian, offset 60) is 2. QEMU's probe does not look at the end of a file,
    so such an image is detected as raw.

    A *dynamic* VHD is auto-detected, but a *fixed* VHD (raw data + a 512-byte footer) is detected
    as ``raw`` unless ``-f vpc`` is given; converting it as raw copies the footer into the guest
    disk. Builders therefore always pass ``-f`` when the format is known, and this function lets a
    step recognise the footer when it is not.
    """
    if len(tail) < 512:
        return False
    footer = tail[-512:]
    return footer[:8] == b"conectix" and int.from_bytes(footer[60:64], "big") == 2


# ----------------------------------------------------------------------------------------------
# Sizes per format
# ----------------------------------------------------------------------------------------------
def vpc_geometry(total_sectors: int) -> tuple[int, int, int]:
    """CHS geometry (cylinders, heads, sectors per track) for a VHD, as QEMU's ``calculate_geometry``."""
    total = min(total_sectors, _VHD_MAX_GEOMETRY)
    if total >= 65535 * 16 * 63:
        secs, heads = 255, 16
        cyls_times_heads = total // secs
    else:
        secs = 17
        cyls_times_heads = total // secs
        heads = max(-(-cyls_times_heads // 1024), 4)
        if cyls_times_heads >= heads * 1024 or heads > 16:
            secs, heads = 31, 16
            cyls_times_heads = total // secs
        if cyls_times_heads >= heads * 1024:
            secs, heads = 63, 16
            cyls_times_heads = total // secs
    return cyls_times_heads // heads, heads, secs


def _vpc_virtual_size(size: int) -> int:
    sectors = -(-size // _SECTOR)  # the block layer first rounds up to whole sectors
    total = min(sectors, _VHD_MAX_GEOMETRY)
    cyls = heads = secs = 0
    i = 0
    while total > cyls * heads * secs:  # QEMU retries with one more sector until the geometry fits
        cyls, heads, secs = vpc_geometry(total + i)
        i += 1
    if cyls * heads * secs == _VHD_MAX_GEOMETRY:
        return sectors * _SECTOR  # above ~127 GiB QEMU stores the size itself, not the geometry
    return cyls * heads * secs * _SECTOR


def expected_virtual_size(size: int, fmt: str) -> int:
    """The virtual size ``qemu-img create -f FMT x SIZE`` really produces.

    Every format rounds up to whole 512-byte sectors; VHD (``vpc``) rounds up to a whole cylinder
    of its CHS geometry (``120G`` becomes 128 849 141 760 bytes). This reproduces QEMU's arithmetic
    so checks can be exact.
    """
    if fmt == "vpc":
        return _vpc_virtual_size(size)
    return round_up(size, _SECTOR)


def validate_size_for(fmt: str, size: int | str, field: str = "size", *, allow_zero: bool = False) -> int:
    """Parse ``size`` and check it fits ``fmt`` (VHD ≤ 2040 GiB, VHDX ≤ 64 TiB, …); return bytes."""
    value = parse_size(size, field)
    if value == 0 and not allow_zero:
        raise InvalidField(
            field,
            size,
            tr("为 0", "is zero"),
            tr("请给出磁盘大小，例如 120G", "give the disk a size, e.g. 120G"),
        )
    limit = MAX_VIRTUAL_SIZE.get(fmt, MAX_SIZE)
    if value > limit:
        raise InvalidField(
            field,
            size,
            tr(
                "超过 {f} 格式的上限 {m}", "exceeds the {f} format's limit of {m}", f=fmt, m=human_size(limit)
            ),
            tr("用更小的大小，或换成 qcow2", "use a smaller size, or the qcow2 format"),
        )
    return value


# ----------------------------------------------------------------------------------------------
# argv builders of the commands that change an image
# ----------------------------------------------------------------------------------------------
def file_arg(value: str | os.PathLike[str], field: str) -> str:
    """A file name argument that qemu-img / qemu-io can only read as a file name.

    A relative name starting with ``-`` would be read as an option (``-U``), and one with a ``:``
    before any ``/`` as a protocol (``nbd:…``, ``json:{…}``); both get ``./`` in front, which names
    the same file. Every builder takes its paths through here, so a plan shows exactly this argv.
    An empty or non-path value raises :class:`InvalidField` naming ``field``.
    """
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(text, str) or not text.strip():
        raise InvalidField(
            field,
            value,
            tr("不是文件名", "is not a file name"),
            tr("例如 ubuntu-arm64.qcow2", "e.g. ubuntu-arm64.qcow2"),
        )
    if "\0" in text:
        raise InvalidField(
            field,
            value,
            tr("含有空字符", "contains a NUL character"),
            tr("例如 ubuntu-arm64.qcow2", "e.g. ubuntu-arm64.qcow2"),
        )
    if text.startswith("-") or ":" in text.partition("/")[0]:
        return "./" + text
    return text


def driver_arg(value: str | None, field: str) -> str | None:
    """The QEMU driver name for a ``-f`` / ``-O`` argument (``None`` stays ``None``: let qemu-img probe)."""
    return None if value is None else normalize_format(value, field)[0]


def build_create(path: str | os.PathLike[str], size: int | str, fmt: str | None = "raw") -> list[str]:
    """``qemu-img create -f FMT PATH SIZE`` – always with ``-f`` (``raw`` when omitted, QEMU's default).

    ``qemu-img create`` silently overwrites an existing file (labkit's step checks first).
    """
    f = driver_arg(fmt, "format") or "raw"
    return [QEMU_IMG, "create", "-f", f, file_arg(path, "path"), format_size(validate_size_for(f, size))]


def build_convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    src_fmt: str | None = None,
    dst_fmt: str = "qcow2",
    compress: bool = False,
    progress: bool = True,
) -> list[str]:
    """``qemu-img convert [-p] [-f SRC_FMT] -O DST_FMT [-c] SRC DST``.

    ``-f`` is given whenever the source format is known (a fixed VHD is otherwise read as raw);
    ``-c`` only for qcow2. ``-p`` makes qemu-img print ``(12.34/100%)`` progress separated by ``\\r``.
    """
    s, d = file_arg(src, "src"), file_arg(dst, "dst")
    if os.path.normpath(s) == os.path.normpath(d):
        raise InvalidField(
            "dst",
            d,
            tr("与源文件相同", "is the source file itself"),
            tr("换一个目标文件名", "choose another target name"),
        )
    out = driver_arg(dst_fmt, "dst_format") or "qcow2"
    if compress and out not in COMPRESSIBLE:
        raise InvalidField(
            "compress",
            compress,
            tr(
                "只适用于 qcow2（{f} 不支持压缩）",
                "only works for qcow2 (qemu-img cannot compress {f})",
                f=out,
            ),
            tr(
                "把「{d}」设为 qcow2，或取消「{c}」",
                "set {d} to qcow2, or turn off {c}",
                d=field_name("dst_format"),
                c=field_name("compress"),
            ),
        )
    argv = [QEMU_IMG, "convert"]
    if progress:
        argv.append("-p")
    f = driver_arg(src_fmt, "src_format")
    if f:
        argv += ["-f", f]
    argv += ["-O", out]
    if compress:
        argv.append("-c")
    return [*argv, s, d]


def build_resize(
    path: str | os.PathLike[str], size: int | str, fmt: str | None = None, shrink: bool = False
) -> list[str]:
    """``qemu-img resize [-f FMT] [--shrink] PATH SIZE`` (absolute sizes only).

    ``shrink`` is the caller's consent: QEMU refuses to shrink without ``--shrink`` because data
    beyond the new end is lost. Passing it while growing is harmless.
    """
    f = driver_arg(fmt, "format")
    if f is not None and f not in RESIZABLE:
        raise InvalidField(
            "format",
            f,
            tr("qemu-img 不能调整此格式的大小", "cannot be resized by qemu-img"),
            tr("先转换成 qcow2 再调整", "convert it to qcow2 first, then resize"),
        )
    if shrink and f is not None and f not in SHRINKABLE:
        raise InvalidField(
            "format",
            f,
            tr("不支持缩小", "cannot be shrunk"),
            tr("转换成 qcow2 或 raw 后再缩小", "convert it to qcow2 or raw first"),
        )
    value = validate_size_for(f or "raw", size)
    if value % _SECTOR:
        raise InvalidField(
            "size",
            size,
            tr("不是 512 字节的整数倍", "is not a multiple of 512 bytes"),
            tr("例如 {s}", "e.g. {s}", s=format_size(round_up(value, 1 << 20))),
        )
    argv = [QEMU_IMG, "resize"]
    if f:
        argv += ["-f", f]
    if shrink:
        argv.append("--shrink")
    return [*argv, file_arg(path, "path"), format_size(value)]


_PROGRESS = re.compile(r"\s*\(\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*100%\)\s*", re.ASCII)


def parse_progress(line: str) -> float | None:
    """``"    (12.34/100%)"`` → ``0.1234``; any other line → ``None``.

    qemu-img ``-p`` rewrites one terminal line using ``\\r``; the runner splits on ``\\r`` so each
    update arrives as its own line.
    """
    if not isinstance(line, str):
        return None
    m = _PROGRESS.fullmatch(line)
    if m is None:
        return None
    return min(1.0, float(m.group(1)) / 100.0)
