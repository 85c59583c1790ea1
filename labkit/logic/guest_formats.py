"""The binary formats of the tiny guest's files, read and written in pure Python.

A ``.deb`` is an ``ar`` archive; the initramfs is a cpio archive in the kernel's "newc" format;
the kernel must be an ARM64 Linux Image (``ARM\\x64`` at 0x38, maybe inside gzip) and BusyBox a
static aarch64 ELF. :mod:`labkit.logic.guest` builds the guest from these; the steps check the
files they wrote with the same readers.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AARCH64_EM",
    "ARM64_IMAGE_MAGIC",
    "ArMember",
    "CpioEntry",
    "ElfInfo",
    "NewcMember",
    "elf_info",
    "kernel_format",
    "newc_archive",
    "parse_ar",
    "parse_newc",
]

#: ``e_machine`` of AArch64 in an ELF header.
AARCH64_EM = 183
#: Bytes at offset 0x38 of an (uncompressed) ARM64 Linux kernel Image ("ARM\x64").
ARM64_IMAGE_MAGIC = b"ARM\x64"


# ----------------------------------------------------------------------------------------------
# The .deb container (an ar archive)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArMember:
    name: str
    offset: int  # of the member's data in the archive
    size: int


def parse_ar(data: bytes) -> list[ArMember]:
    """List the members of a Unix ``ar`` archive (a ``.deb`` is one: debian-binary, control, data).

    Format: ``!<arch>\\n``, then per member a 60-byte header (name 16, mtime 12, uid 6, gid 6,
    mode 8, size 10, ``\\x60\\n``) followed by the data, padded to an even offset.
    """
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive (missing !<arch> magic)")
    out: list[ArMember] = []
    off = 8
    while off + 60 <= len(data):
        header = data[off : off + 60]
        if header[58:60] != b"`\n":
            raise ValueError(f"corrupt ar member header at offset {off}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        if off + 60 + size > len(data):
            raise ValueError(f"ar member {name!r} is truncated")
        out.append(ArMember(name, off + 60, size))
        off += 60 + size + (size & 1)
    return out


# ----------------------------------------------------------------------------------------------
# The initramfs archive (cpio newc)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CpioEntry:
    """One file in a cpio archive. ``kind`` is "file", "dir", "symlink" or "chardev"."""

    name: str
    kind: str = "file"
    perm: int = 0o644
    data: bytes = b""  # file contents, or the link target for a symlink
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of a device node

    @property
    def mode(self) -> int:
        types = {"file": 0o100000, "dir": 0o040000, "symlink": 0o120000, "chardev": 0o020000}
        if self.kind not in types:
            raise ValueError(f"unknown cpio entry kind {self.kind!r}")
        return types[self.kind] | (self.perm & 0o7777)


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def newc_archive(entries: Sequence[CpioEntry], *, mtime: int = 0) -> bytes:
    """Write a cpio archive in the "newc" (SVR4, magic ``070701``) format the Linux kernel unpacks.

    Each entry: the magic, 13 fields of 8 hex digits (ino, mode, uid, gid, nlink, mtime, filesize,
    devmajor, devminor, rdevmajor, rdevminor, namesize incl. NUL, check), the NUL-terminated name
    padded so the data starts on a 4-byte boundary, then the data padded to 4 bytes. The archive
    ends with an entry named ``TRAILER!!!``. Owner is root (0/0), ``mtime`` fixed so the archive is
    reproducible. Device nodes are just headers, so no root rights are needed to create them.
    """
    out = bytearray()
    seen: set[str] = set()
    for ino, entry in enumerate([*entries, None], start=1):
        if entry is None:
            name, mode, data, nlink, rdev, ino = "TRAILER!!!", 0, b"", 1, (0, 0), 0
        else:
            name = entry.name.lstrip("/") or "."
            if name in seen:
                raise ValueError(f"duplicate cpio entry {name!r}")
            seen.add(name)
            mode, data, rdev = entry.mode, entry.data, entry.rdev
            nlink = 2 if entry.kind == "dir" else 1
            if entry.kind in ("dir", "chardev"):
                data = b""
        raw_name = name.encode() + b"\0"
        fields = (
            ino,
            mode,
            0,
            0,
            nlink,
            mtime if entry else 0,
            len(data),
            0,
            0,
            rdev[0],
            rdev[1],
            len(raw_name),
            0,
        )
        header = b"070701" + b"".join(f"{v:08X}".encode() for v in fields)
        out += header + raw_name + _pad4(len(header) + len(raw_name))
        out += data + _pad4(len(data))
    return bytes(out)


@dataclass(frozen=True)
class NewcMember:
    name: str
    mode: int
    size: int
    rdev: tuple[int, int] = (0, 0)


def parse_newc(data: bytes) -> list[NewcMember]:
    """List the members of an (uncompressed) newc cpio archive up to ``TRAILER!!!``.

    Used to verify the initramfs labkit wrote; raises ``ValueError`` on anything malformed, including
    a missing trailer (a truncated archive).
    """
    out: list[NewcMember] = []
    off = 0
    while True:
        if data[off : off + 6] != b"070701":
            raise ValueError(f"bad newc magic at offset {off}")
        try:
            f = [int(data[off + 6 + 8 * i : off + 14 + 8 * i], 16) for i in range(13)]
        except ValueError as exc:
            raise ValueError(f"bad newc header at offset {off}") from exc
        namesize, filesize = f[11], f[6]
        name_at = off + 110
        name = data[name_at : name_at + namesize - 1].decode("utf-8", "replace")
        data_at = name_at + namesize + (-(110 + namesize) % 4)
        if data_at + filesize > len(data):
            raise ValueError(f"newc member {name!r} is truncated")
        if name == "TRAILER!!!":
            return out
        out.append(NewcMember(name, f[1], filesize, (f[9], f[10])))
        off = data_at + filesize + (-filesize % 4)


# ----------------------------------------------------------------------------------------------
# Asset headers
# ----------------------------------------------------------------------------------------------
def kernel_format(header: bytes) -> str:
    """Classify a kernel file by its first bytes (≥ 64 needed).

    ``"image"``: an ARM64 Linux Image (``ARM\\x64`` at 0x38; Debian's vmlinuz is one, with an EFI
    stub so it also starts with ``MZ``); ``"gzip"``: a gzip-compressed file (Ubuntu's arm64 vmlinuz;
    QEMU decompresses it, check the Image inside); ``"zboot"``: an EFI zboot image (``MZ`` +
    ``zimg``), which QEMU before 9.1 cannot load with ``-kernel``; else ``"unknown"``.
    """
    if len(header) >= 0x3C and header[0x38:0x3C] == ARM64_IMAGE_MAGIC:
        return "image"
    if header[:2] == b"\x1f\x8b":
        return "gzip"
    if header[:2] == b"MZ" and header[4:8] == b"zimg":
        return "zboot"
    return "unknown"


@dataclass(frozen=True)
class ElfInfo:
    machine: int
    is64: bool
    little_endian: bool
    static: bool  # no PT_INTERP: runs without a dynamic loader (the initramfs has no libc)

    @property
    def is_aarch64(self) -> bool:
        return self.machine == AARCH64_EM and self.is64 and self.little_endian


def elf_info(data: bytes) -> ElfInfo:
    """Read machine, class, byte order and static-ness from the start of an ELF file.

    ``data`` must cover the program header table (the first few KiB suffice). Raises
    ``ValueError`` for a non-ELF file.
    """
    if len(data) < 0x40 or data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    is64 = data[4] == 2
    little = data[5] == 1
    end = "<" if little else ">"
    (machine,) = struct.unpack_from(end + "H", data, 18)
    if is64:
        (phoff,) = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(end + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x2A)
    if phoff + phentsize * phnum > len(data):
        raise ValueError("ELF program headers lie beyond the data given")
    static = True
    for i in range(phnum):
        (p_type,) = struct.unpack_from(end + "I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            static = False
    return ElfInfo(machine, is64, little, static)
