"""The chapter-1 virtual machine as checked fields: :class:`VMSpec` and :class:`Disk`.

A spec holds only values QEMU could parse (names, sizes, paths without newlines); whether the
combination works on a host is judged by :mod:`labkit.logic.qemu_rules`, and the command line is
built by :mod:`labkit.logic.qemu_system`. ``-m`` reads a bare number as MiB and rejects ``8GB``
(\"Parameter 'size' expects ...\"): :func:`memory_bytes` applies QEMU's rule, and the builder
always passes the canonical spelling (``8G``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic.sizes import parse_size

__all__ = [
    "ACCELS",
    "ARCHES",
    "DISPLAYS",
    "GPUS",
    "NICS",
    "SEED_DEVICES",
    "Disk",
    "VMSpec",
    "check_path",
    "escape_opt",
    "memory_bytes",
    "norm_arch",
    "pflash_drive",
    "qemu_binary",
]

ARCHES = ("aarch64", "x86_64")
ACCELS = ("tcg", "kvm", "hvf", "whpx")
DISPLAYS = ("default", "none", "nographic", "vnc", "gtk", "sdl", "curses", "cocoa")
GPUS = ("ramfb", "virtio-gpu-pci", "none")
NICS = ("user", "none")
DISK_FORMATS = ("raw", "qcow2")
DISK_INTERFACES = ("virtio", "none")

#: Devices the course's command lines use (checked against ``-device help`` of the real binary).
SEED_DEVICES = ("ramfb", "qemu-xhci", "usb-kbd", "usb-tablet", "virtio-net-pci", "usb-storage")

#: The virt board's interrupt controller default (GICv2) supports at most this many vCPUs.
GICV2_MAX_CPUS = 8

_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
_MACHINE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CPU_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ARG_BAD = ("\x00", "\n", "\r")


def check_path(field_name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(
            field_name, value, tr("不是文件路径", "is not a file path"), tr("请写文件名", "give a file name")
        )
    if any(c in value for c in _ARG_BAD):
        raise InvalidField(
            field_name,
            value,
            tr("含有换行或空字符", "contains a newline or NUL character"),
            tr("请换一个文件名", "rename the file"),
        )
    return value


def _check_choice(field_name: str, value: object, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise InvalidField(
            field_name,
            value,
            tr("不是可选值", "is not one of the choices"),
            tr("可选：{c}", "use one of: {c}", c=", ".join(choices)),
        )
    return value


@dataclass(frozen=True)
class Disk:
    """A virtual disk: ``-drive if=<interface>,id=<id>,format=<format>,file=<path>``."""

    path: str
    format: str = "raw"
    interface: str = "virtio"
    id: str | None = None

    def __post_init__(self) -> None:
        check_path("disk", self.path)
        _check_choice("disk format", self.format, DISK_FORMATS)
        _check_choice("disk interface", self.interface, DISK_INTERFACES)
        if self.id is not None and (not isinstance(self.id, str) or not _ID_RE.fullmatch(self.id)):
            raise InvalidField(
                "disk id",
                self.id,
                tr("不是合法的 QEMU id", "is not a valid QEMU id"),
                tr("以字母开头，只用字母数字和 _ . -", "start with a letter; use letters, digits, _ . -"),
            )


@dataclass(frozen=True)
class VMSpec:
    """Everything the chapter-1 command line says, as checked fields.

    Defaults are the course's aarch64 machine: ``-M virt,virtualization=true -m 8G -cpu
    max,pauth-impdef=on -smp 8``, UEFI from ``efi.img``, TCG with one host thread per vCPU, a
    ``ramfb`` screen, USB keyboard/tablet and a user-mode network card. ``machine=None`` means the
    architecture's default (``virt`` on aarch64, QEMU's own default on x86_64). ``display``
    ``default`` adds no ``-display`` option (what the course does); ``nic_rom=False`` drops the
    iPXE option ROM (see the module docstring).
    """

    arch: str = "aarch64"
    machine: str | None = None
    virtualization: bool = True
    gic_version: str | None = None
    cpu: str = "max"
    pauth_impdef: bool = True
    smp: int = 8
    memory: str = "8G"
    efi: str | None = "efi.img"
    accel: str = "tcg"
    tcg_multithread: bool = True
    gpu: str = "ramfb"
    display: str = "default"
    usb_input: bool = True
    nic: str = "user"
    nic_model: str = "virtio-net-pci"
    nic_rom: bool = True
    disks: tuple[Disk, ...] = ()
    iso: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    append: str | None = None

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ARCHES)
        _check_choice("accel", self.accel, ACCELS)
        _check_choice("display", self.display, DISPLAYS)
        _check_choice("gpu", self.gpu, GPUS)
        _check_choice("nic", self.nic, NICS)
        for name in ("virtualization", "pauth_impdef", "tcg_multithread", "usb_input", "nic_rom"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidField(
                    name, getattr(self, name), tr("不是 True/False", "is not True/False"), "True / False"
                )
        if self.machine is not None and (
            not isinstance(self.machine, str) or not _MACHINE_RE.fullmatch(self.machine)
        ):
            raise InvalidField(
                "machine",
                self.machine,
                tr("不是机器类型名", "is not a machine type name"),
                tr("例如 virt；列表见 -machine help", "e.g. virt; see -machine help"),
            )
        if self.gic_version is not None and self.gic_version not in ("2", "3", "max", "host"):
            raise InvalidField("gic_version", self.gic_version, tr("不是可选值", "is not valid"), "2, 3, max")
        if not isinstance(self.cpu, str) or not _CPU_RE.fullmatch(self.cpu):
            raise InvalidField(
                "cpu",
                self.cpu,
                tr("不是 CPU 型号名", "is not a CPU model name"),
                tr("例如 max；列表见 -cpu help", "e.g. max; see -cpu help"),
            )
        if isinstance(self.smp, bool) or not isinstance(self.smp, int) or not 1 <= self.smp <= 4096:
            raise InvalidField(
                "smp", self.smp, tr("不是 1 以上的整数", "is not a whole number ≥ 1"), tr("例如 4", "e.g. 4")
            )
        if not isinstance(self.nic_model, str) or not _ID_RE.fullmatch(self.nic_model):
            raise InvalidField(
                "nic_model", self.nic_model, tr("不是设备名", "is not a device name"), "virtio-net-pci"
            )
        if not isinstance(self.disks, tuple):
            object.__setattr__(self, "disks", tuple(self.disks))
        for d in self.disks:
            if not isinstance(d, Disk):
                raise InvalidField("disks", d, tr("不是 Disk", "is not a Disk"), "Disk('system.img')")
        ids = [d.id for d in self.disks if d.id]
        if len(ids) != len(set(ids)) or "install" in ids:
            raise InvalidField(
                "disks",
                ids,
                tr("磁盘 id 重复", "has duplicate disk ids"),
                tr("每块盘用不同 id", "give each disk its own id"),
            )
        for name in ("efi", "iso", "kernel", "initrd"):
            value = getattr(self, name)
            if value is not None:
                check_path(name, value)
        if self.append is not None and (
            not isinstance(self.append, str) or any(c in self.append for c in _ARG_BAD)
        ):
            raise InvalidField(
                "append", self.append, tr("不是一行文字", "is not one line of text"), "console=ttyAMA0"
            )
        memory_bytes(self.memory)  # raises InvalidField for a bad size
        if isinstance(self.memory, int):
            object.__setattr__(self, "memory", str(self.memory))  # -m 2048 means MiB, like QEMU

    @property
    def binary(self) -> str:
        return qemu_binary(self.arch)

    @property
    def machine_type(self) -> str | None:
        """The ``-M`` type actually used: the explicit one, else the architecture's default."""
        if self.machine is not None:
            return self.machine
        return "virt" if self.arch == "aarch64" else None


def qemu_binary(arch: str) -> str:
    """``qemu-system-aarch64`` / ``qemu-system-x86_64``."""
    return f"qemu-system-{_check_choice('arch', arch, ARCHES)}"


def memory_bytes(text: object) -> int:
    """Bytes that ``-m <text>`` gives the guest: a bare number is MiB (QEMU's rule), else a size.

    Raises :class:`InvalidField` (field ``memory``) for anything QEMU could not use, including
    sizes that are not a whole number of MiB.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise InvalidField(
            "memory", text, tr("不是内存大小", "is not a memory size"), tr("例如 8G", "e.g. 8G")
        )
    if isinstance(text, int) or (isinstance(text, str) and text.strip().isascii() and text.strip().isdigit()):
        mib = int(text) if isinstance(text, int) else int(text.strip())
        value = mib << 20
    else:
        value = parse_size(text, "memory")
    if value < (16 << 20) or value % (1 << 20):
        raise InvalidField(
            "memory",
            text,
            tr("不是至少 16M 的整数 MiB", "is not a whole number of MiB of at least 16M"),
            tr("例如 512M 或 8G", "e.g. 512M or 8G"),
        )
    if value > (1 << 50):
        raise InvalidField("memory", text, tr("太大", "is too large"), tr("例如 8G", "e.g. 8G"))
    return value


def escape_opt(value: str) -> str:
    """QEMU option values separate sub-options with commas; a literal comma is written twice."""
    return value.replace(",", ",,")


def pflash_drive(path: str) -> str:
    """The ``-drive`` value that maps a UEFI firmware image read-only as the board's flash."""
    return f"if=pflash,format=raw,file={escape_opt(path)},readonly=on"


def norm_arch(arch: str) -> str:
    """``amd64``/``x64`` → ``x86_64``, ``arm64`` → ``aarch64`` (how hosts and QEMU name them)."""
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(
        (arch or "").lower(), (arch or "").lower()
    )
