"""The UEFI firmware image (``efi.img``) that chapter 1 boots aarch64 virtual machines with.

The course hands out an ``efi.img``: QEMU's ``virt`` board maps its first flash bank (``-drive
if=pflash``) as a 64 MiB device, and QEMU refuses a backing file of any other size ("device requires
67108864 bytes, block backend provides 2097152 bytes"). Distributions ship the firmware build
(EDK II ``QEMU_EFI.fd``, 2 MiB) unpadded, so the image is that file followed by zeros up to 64 MiB.
This module knows where distributions put the firmware and computes the padding plan; the file
system work (does it exist, copy, verify) lives in :mod:`labkit.steps.firmware`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labkit.errors import InvalidField
from labkit.i18n import tr

__all__ = [
    "AAVMF_CODE",
    "FIRMWARE_CANDIDATES",
    "FIRMWARE_PACKAGE",
    "PFLASH_SIZE",
    "QEMU_EFI",
    "FirmwareCandidate",
    "PaddingPlan",
    "padding_plan",
    "pflash_size_error",
    "teaching_commands",
]

#: Size QEMU's ``virt`` board requires for each of its two flash banks.
PFLASH_SIZE = 64 * 2**20

#: Debian/Ubuntu package that ships the aarch64 UEFI firmware.
FIRMWARE_PACKAGE = "qemu-efi-aarch64"

#: The unpadded firmware build (what the course's efi.img is made of).
QEMU_EFI = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
#: Debian/Ubuntu's already padded copy of the same build (used to cross-check our image).
AAVMF_CODE = "/usr/share/AAVMF/AAVMF_CODE.fd"


@dataclass(frozen=True)
class FirmwareCandidate:
    """A place a distribution installs aarch64 UEFI firmware, and which package puts it there."""

    path: str
    package: str
    distro: str
    padded: bool  # already PFLASH_SIZE bytes (usable as pflash as-is)


#: Searched in order; the first that exists is used. The unpadded Debian/Ubuntu file comes first
#: because padding it is the lesson; the padded ones still yield a correct efi.img (zero padding).
FIRMWARE_CANDIDATES: tuple[FirmwareCandidate, ...] = (
    FirmwareCandidate(QEMU_EFI, FIRMWARE_PACKAGE, "Debian/Ubuntu", padded=False),
    FirmwareCandidate(AAVMF_CODE, FIRMWARE_PACKAGE, "Debian/Ubuntu", padded=True),
    FirmwareCandidate("/usr/share/edk2/aarch64/QEMU_EFI.fd", "edk2-aarch64", "Fedora", padded=False),
    FirmwareCandidate("/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw", "edk2-aarch64", "Fedora", padded=True),
    FirmwareCandidate("/usr/share/edk2-armvirt/aarch64/QEMU_CODE.fd", "edk2-armvirt", "Arch", padded=True),
    FirmwareCandidate("/usr/share/qemu/edk2-aarch64-code.fd", "qemu (upstream build)", "any", padded=True),
)


@dataclass(frozen=True)
class PaddingPlan:
    """How to turn a firmware file into a pflash image: copy ``copy_bytes``, then ``pad_bytes`` zeros."""

    copy_bytes: int
    pad_bytes: int

    @property
    def total(self) -> int:
        return self.copy_bytes + self.pad_bytes


def padding_plan(firmware_size: int, *, field: str = "firmware") -> PaddingPlan:
    """Plan the zero padding of a firmware file of ``firmware_size`` bytes to :data:`PFLASH_SIZE`.

    Raises :class:`InvalidField` for an empty file or one larger than the flash bank: QEMU would
    reject it, and truncating firmware would silently corrupt it.
    """
    if firmware_size <= 0:
        raise InvalidField(
            field,
            firmware_size,
            tr("是空文件", "is empty"),
            tr("重新安装 {p}", "reinstall {p}", p=FIRMWARE_PACKAGE),
        )
    if firmware_size > PFLASH_SIZE:
        raise InvalidField(
            field,
            firmware_size,
            tr(
                "字节，超过了 virt 机器 {n} MiB 的 pflash 闪存",
                "bytes is larger than the {n} MiB pflash bank of the virt board",
                n=PFLASH_SIZE // 2**20,
            ),
            tr(
                "用 aarch64 的 QEMU_EFI.fd 固件（约 2 MiB），不要用磁盘镜像",
                "use the aarch64 QEMU_EFI.fd firmware (about 2 MiB), not a disk image",
            ),
        )
    return PaddingPlan(copy_bytes=firmware_size, pad_bytes=PFLASH_SIZE - firmware_size)


def teaching_commands(firmware: str, dest: str) -> list[list[str]]:
    """How ``efi.img`` is built: copy the firmware, then extend it with zeros to 64 MiB.

    ``truncate`` extends a file with zero bytes (a sparse tail), exactly the padding QEMU needs.
    The step runs these very commands into a temporary sibling of the target, then renames it.
    """
    return [["cp", firmware, dest], ["truncate", "-s", "64M", dest]]


def pflash_size_error(stderr: str) -> tuple[int, int] | None:
    """Parse QEMU's pflash size complaint into ``(required, provided)`` bytes, else ``None``.

    QEMU 7.2 says: ``device requires 67108864 bytes, block backend provides 2097152 bytes``.
    """
    m = re.search(r"device requires (\d+) bytes, block backend provides (\d+) bytes", stderr)
    return (int(m.group(1)), int(m.group(2))) if m else None
