"""The ``qemu-system-*`` command line of chapter 1, built from a spec instead of typed by hand.

The course text gives three long ``qemu-system-aarch64`` lines (install Ubuntu from the ISO onto a
raw image, boot the raw image, boot a qcow2 image). They differ in two or three words, and a typo
in any of the twenty options only shows up when QEMU refuses to start. Here a :class:`VMSpec`
describes the machine, :func:`build_qemu_argv` turns it into an argv list (never a shell string),
:func:`seed_commands` reproduces the course's three lines token for token, and
:func:`validate_spec` explains *before* starting why a combination cannot work on this host.

Facts this module encodes (measured with QEMU 7.2 on Debian 12 unless a source is named):

* ``pauth-impdef`` is a property of ``-cpu max`` only: ``cortex-a57``, ``cortex-a72``,
  ``neoverse-n1`` … answer "Property '<cpu>-arm-cpu.pauth-impdef' not found". The property appeared
  in QEMU 6.0 (commit eb94284d0812 "target/arm: Add cpu properties to control pauth", merged in
  January 2021); QEMU 10.0 made the cheap IMPDEF algorithm the default for ``max`` (Pierrick
  Bouvier's patch "use impdef by default"), so the option is then redundant but harmless. It makes
  TCG several times faster because the architected QARMA pointer-authentication is slow to emulate.
* ``-M virt`` uses GICv2 by default, which caps the guest at 8 vCPUs ("Number of SMP CPUs requested
  (9) exceeds max CPUs supported by machine 'mach-virt' (8)"); ``gic-version=3`` lifts the cap.
* ``-m`` reads a bare number as MiB and rejects ``8GB`` ("Parameter 'size' expects ..."); labkit
  always passes the canonical spelling (``8G``). ``-m 100G`` on a 23 GiB host fails at start-up
  ("cannot set up guest memory 'mach-virt.ram': Cannot allocate memory").
* ``-nic user,model=virtio-net-pci`` loads the iPXE option ROM ``efi-virtio.rom`` from the
  ``ipxe-qemu`` package, which Debian/Ubuntu only *recommend*: after ``apt-get install
  --no-install-recommends qemu-system-arm`` QEMU stops with ``failed to find romfile
  "efi-virtio.rom"``. ``-netdev user,id=net0 -device virtio-net-pci,netdev=net0,romfile=`` (empty
  ``romfile``) starts without it; ``-nic`` itself has no ``romfile`` parameter.
* With ``-nic user`` and a disk that does not boot, the UEFI firmware tries PXEv4/PXEv6/HTTP boot
  for more than 150 s before giving up.
* No GUI module is installed on a server: without ``-display none`` / ``-nographic`` QEMU warns
  that ``ui-gtk`` / ``ui-sdl`` are missing and serves the screen over VNC on 127.0.0.1:5900.
* Commas inside ``-drive`` values separate options; a file name containing a comma must double it
  (``file=a,,b.img``), which :func:`build_qemu_argv` does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic.host import HostFacts
from labkit.logic.sizes import format_size, human_size, parse_size

__all__ = [
    "ACCELS",
    "ARCHES",
    "DISPLAYS",
    "GPUS",
    "MEMORY_HEADROOM",
    "NICS",
    "SEED_DEVICES",
    "Disk",
    "Problem",
    "VMSpec",
    "build_qemu_argv",
    "device_names_in",
    "dry_start_argv",
    "explain_qemu_stderr",
    "memory_bytes",
    "parse_cpu_help",
    "parse_device_help",
    "parse_machine_help",
    "parse_qemu_version",
    "plan_x86_64",
    "qemu_binary",
    "seed_commands",
    "seed_spec",
    "seed_x86_command",
    "validate_spec",
]

ARCHES = ("aarch64", "x86_64")
ACCELS = ("tcg", "kvm", "hvf", "whpx")
DISPLAYS = ("default", "none", "nographic", "vnc", "gtk", "sdl", "curses", "cocoa")
GPUS = ("ramfb", "virtio-gpu-pci", "none")
NICS = ("user", "none")
DISK_FORMATS = ("raw", "qcow2")
DISK_INTERFACES = ("virtio", "none")

#: Memory left to the host: a guest may use at most the host's RAM minus this.
MEMORY_HEADROOM = 1 << 30

#: Devices the course's command lines use (checked against ``-device help`` of the real binary).
SEED_DEVICES = ("ramfb", "qemu-xhci", "usb-kbd", "usb-tablet", "virtio-net-pci", "usb-storage")

#: The virt board's interrupt controller default (GICv2) supports at most this many vCPUs.
GICV2_MAX_CPUS = 8

Severity = Literal["error", "warning", "note"]

_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
_MACHINE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CPU_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ARG_BAD = ("\x00", "\n", "\r")


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One reason a VM command would fail or misbehave, and what to do about it.

    ``severity``: ``error`` – QEMU refuses or the guest cannot work; ``warning`` – it starts but
    something is wrong (slow, file missing now); ``note`` – a lesson worth knowing.
    """

    field: str
    message: str
    fix: str = ""
    severity: Severity = "error"

    def __str__(self) -> str:
        text = f"[{self.severity}] {self.field}: {self.message}"
        return text + (f"; {self.fix}" if self.fix else "")

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "severity": self.severity, "message": self.message, "fix": self.fix}


def _check_path(field_name: str, value: object) -> str:
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
        _check_path("disk", self.path)
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
                _check_path(name, value)
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


def _escape(value: str) -> str:
    """QEMU option values separate sub-options with commas; a literal comma is written twice."""
    return value.replace(",", ",,")


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------
def _disk_ids(spec: VMSpec) -> list[str]:
    out = []
    for i, d in enumerate(spec.disks):
        out.append(d.id or ("system" if i == 0 else f"disk{i}"))
    return out


def build_qemu_argv(spec: VMSpec, *, seed_style: bool = False) -> list[str]:
    """The argv that starts ``spec``. Order follows the course text so the two can be compared.

    ``seed_style`` spells the accelerator option ``--accel`` as the course does (QEMU accepts one or
    two dashes for every option); otherwise ``-accel``.
    """
    argv = [spec.binary]
    mtype = spec.machine_type
    if mtype is not None:
        mopts = [mtype]
        if spec.arch == "aarch64" and mtype == "virt" and spec.virtualization:
            mopts.append("virtualization=true")
        if spec.gic_version is not None:
            mopts.append(f"gic-version={spec.gic_version}")
        argv += ["-M", ",".join(mopts)]
    argv += ["-m", format_size(memory_bytes(spec.memory))]
    cpu = spec.cpu + (",pauth-impdef=on" if spec.pauth_impdef else "")
    argv += ["-cpu", cpu, "-smp", str(spec.smp)]
    if spec.efi is not None:
        argv += ["-drive", f"if=pflash,format=raw,file={_escape(spec.efi)},readonly=on"]
    accel = spec.accel + (",thread=multi" if spec.accel == "tcg" and spec.tcg_multithread else "")
    argv += ["--accel" if seed_style else "-accel", accel]
    if spec.gpu != "none":
        argv += ["-device", spec.gpu]
    if spec.usb_input or spec.iso is not None:
        argv += ["-device", "qemu-xhci"]
    if spec.usb_input:
        argv += ["-device", "usb-kbd", "-device", "usb-tablet"]
    if spec.nic == "none":
        argv += ["-nic", "none"]
    elif spec.nic_rom:
        argv += ["-nic", f"user,model={spec.nic_model}"]
    else:
        argv += ["-netdev", "user,id=net0", "-device", f"{spec.nic_model},netdev=net0,romfile="]
    if spec.iso is not None:
        argv += [
            "-device",
            "usb-storage,drive=install",
            "-drive",
            f"if=none,id=install,format=raw,media=cdrom,file={_escape(spec.iso)}",
        ]
    for disk, disk_id in zip(spec.disks, _disk_ids(spec), strict=True):
        argv += ["-drive", f"if={disk.interface},id={disk_id},format={disk.format},file={_escape(disk.path)}"]
    if spec.kernel is not None:
        argv += ["-kernel", spec.kernel]
    if spec.initrd is not None:
        argv += ["-initrd", spec.initrd]
    if spec.append is not None:
        argv += ["-append", spec.append]
    if spec.display == "nographic":
        argv.append("-nographic")
    elif spec.display == "vnc":
        argv += ["-display", "vnc=127.0.0.1:0"]
    elif spec.display != "default":
        argv += ["-display", spec.display]
    return argv


def seed_spec(**overrides: object) -> VMSpec:
    """The course's aarch64 machine (all defaults of :class:`VMSpec`), with ``overrides`` applied."""
    return replace(VMSpec(), **overrides)  # type: ignore[arg-type]


def seed_commands(
    *,
    iso: str = "./ubuntu-24.04-live-server-arm64.iso",
    img: str = "./ubuntu-arm64.img",
    qcow2: str = "ubuntu-arm64.qcow2",
    efi: str = "efi.img",
) -> dict[str, list[str]]:
    """The course's three ``qemu-system-aarch64`` lines, built from specs.

    ``install``: boot the Ubuntu ISO with the empty raw image attached; ``run_img``: boot the
    installed raw image; ``run_qcow2``: the same from a qcow2 image.
    """
    raw = (Disk(img, "raw", "virtio", "system"),)
    return {
        "install": build_qemu_argv(seed_spec(efi=efi, iso=iso, disks=raw), seed_style=True),
        "run_img": build_qemu_argv(seed_spec(efi=efi, disks=raw), seed_style=True),
        "run_qcow2": build_qemu_argv(
            seed_spec(efi=efi, disks=(Disk(qcow2, "qcow2", "virtio", "system"),)), seed_style=True
        ),
    }


def seed_x86_command(image: str = "/path/to/your/image/file") -> list[str]:
    """The course's same-architecture example, ``qemu-system-x86_64 -hda <image>``, verbatim.

    It relies on QEMU defaults: 128 MiB of RAM, one vCPU, TCG (no KVM) and an IDE disk; see
    :func:`plan_x86_64` for the line a real guest needs.
    """
    return ["qemu-system-x86_64", "-hda", _check_path("image", image)]


def plan_x86_64(
    host: HostFacts,
    disk: str,
    *,
    memory: str = "4G",
    smp: int = 2,
    disk_format: str = "qcow2",
    display: str = "none",
) -> tuple[VMSpec, list[str]]:
    """An x86_64 guest for this host: KVM with ``-cpu host`` when KVM really works, else TCG.

    Returns the spec and notes explaining the choice (e.g. why KVM was not used).
    """
    kvm = bool(host.kvm_usable) and _norm_arch(host.arch) == "x86_64"
    base = {
        "arch": "x86_64",
        "machine": None,
        "virtualization": False,
        "pauth_impdef": False,
        "efi": None,
        "gpu": "none",
        "usb_input": False,
        "memory": memory,
        "smp": smp,
        "display": display,
        "disks": (Disk(disk, disk_format, "virtio", "system"),),
    }
    if kvm:
        spec = VMSpec(accel="kvm", cpu="host", **base)  # type: ignore[arg-type]
        notes = [
            tr(
                "KVM 可用：-accel kvm -cpu host，客户机指令直接在 CPU 上执行（硬件辅助虚拟化）",
                "KVM works here: -accel kvm -cpu host runs guest instructions directly on the CPU "
                "(hardware-assisted virtualization)",
            )
        ]
    else:
        spec = VMSpec(accel="tcg", cpu="max", **base)  # type: ignore[arg-type]
        why = host.kvm_reason or tr("未知原因", "unknown reason")
        if _norm_arch(host.arch) != "x86_64":
            why = tr(
                "宿主机是 {a}，KVM 只能运行同架构客户机",
                "the host is {a}; KVM only runs guests of the host's own architecture",
                a=host.arch,
            )
        notes = [
            tr(
                "不用 KVM（{why}）：改用 TCG 二进制翻译，-cpu max；能运行但慢很多。-cpu host 只能配合 KVM",
                "not using KVM ({why}): falling back to TCG binary translation with -cpu max; it works "
                "but is much slower. -cpu host needs KVM",
                why=why,
            )
        ]
    return spec, notes


def dry_start_argv(
    spec: VMSpec,
    *,
    qmp_pipe: str,
    disk_paths: Iterable[str] | None = None,
    iso_path: str | None = None,
    efi_path: str | None = None,
    drop_kernel: bool = False,
) -> list[str]:
    """``spec``'s argv turned into a harmless start-up test.

    The machine is created paused (``-S``), shows nothing (``-display none``), has no HMP monitor
    (``-monitor none``), and reads QMP commands from the pipe chardev ``qmp_pipe`` (QEMU opens
    ``<qmp_pipe>.in`` and ``<qmp_pipe>.out``); the caller writes ``qmp_capabilities`` and ``quit``
    into ``.in`` so QEMU exits by itself with status 0 once every option was accepted. Disks, ISO
    and firmware may be swapped for small stand-ins so no real guest data is touched.
    """
    changes: dict[str, object] = {"display": "none"}
    if disk_paths is not None:
        paths = list(disk_paths)
        if len(paths) != len(spec.disks):
            raise InvalidField("disk_paths", paths, "must match spec.disks", f"give {len(spec.disks)} paths")
        changes["disks"] = tuple(replace(d, path=p) for d, p in zip(spec.disks, paths, strict=True))
    if iso_path is not None and spec.iso is not None:
        changes["iso"] = iso_path
    if efi_path is not None and spec.efi is not None:
        changes["efi"] = efi_path
    if drop_kernel:
        changes.update(kernel=None, initrd=None, append=None)
    argv = build_qemu_argv(replace(spec, **changes))  # type: ignore[arg-type]
    return [
        *argv,
        "-S",
        "-monitor",
        "none",
        "-chardev",
        f"pipe,id=labkitqmp,path={_escape(qmp_pipe)}",
        "-mon",
        "chardev=labkitqmp,mode=control",
    ]


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------
def _norm_arch(arch: str) -> str:
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(
        (arch or "").lower(), (arch or "").lower()
    )


def validate_spec(
    spec: VMSpec,
    host: HostFacts,
    qemu_version: tuple[int, ...] = (7, 2, 0),
    *,
    path_exists: Callable[[str], bool] | None = None,
) -> list[Problem]:
    """Everything that would make ``spec`` fail or misbehave on ``host`` with QEMU ``qemu_version``.

    Pure: ``path_exists`` (e.g. ``os.path.exists``) is how the caller lets it look at files; without
    it file checks are skipped. An empty list means "no known problem", not "guaranteed to boot" –
    the dry start in :class:`labkit.steps.vm.PlanVM` asks the real QEMU.
    """
    problems: list[Problem] = []
    add = problems.append
    ver = tuple(qemu_version) + (0,) * (3 - len(qemu_version))

    # -- memory --------------------------------------------------------------------------------
    mem = memory_bytes(spec.memory)
    canonical = format_size(mem)
    if spec.memory.strip() != canonical:
        add(
            Problem(
                "memory",
                tr(
                    "写作 {m}，命令行里用 QEMU 接受的 -m {c}（QEMU 不认 8GB 这种写法，纯数字表示 MiB）",
                    "written as {m}; the command uses -m {c}, a spelling QEMU accepts (QEMU rejects "
                    "'8GB', and a bare number means MiB)",
                    m=spec.memory,
                    c=canonical,
                ),
                severity="note",
            )
        )
    limit = host.memory_bytes - MEMORY_HEADROOM
    if mem > limit:
        add(
            Problem(
                "memory",
                tr(
                    "{m} 超过宿主机内存 {h} 减去留给宿主机的 {r}",
                    "{m} is more than the host's {h} minus {r} kept for the host",
                    m=human_size(mem),
                    h=human_size(host.memory_bytes),
                    r=human_size(MEMORY_HEADROOM),
                ),
                tr(
                    "最多 {x}；QEMU 启动时会报 cannot set up guest memory，或者运行中被 OOM 杀掉",
                    "use at most {x}; QEMU fails with 'cannot set up guest memory' or is killed by "
                    "the OOM killer later",
                    x=format_size(max(limit, 0) >> 20 << 20) if limit >= (1 << 20) else "—",
                ),
            )
        )
    elif mem * 2 > host.memory_bytes:
        add(
            Problem(
                "memory",
                tr(
                    "虚拟机用了宿主机一半以上的内存（{m} / {h}）",
                    "the guest gets more than half of the host's memory ({m} of {h})",
                    m=human_size(mem),
                    h=human_size(host.memory_bytes),
                ),
                tr(
                    "课程建议宿主机内存至少是虚拟机的两倍（8G 虚拟机需要 16G 宿主机），否则会明显卡顿",
                    "the course advises a host with at least twice the guest's memory (16G for an 8G "
                    "guest), otherwise everything slows down",
                ),
                "warning",
            )
        )

    # -- vCPUs ---------------------------------------------------------------------------------
    cores = max(1, int(host.cores or 1))
    if spec.smp > cores:
        if spec.accel == "tcg":
            msg = tr(
                "-smp {n} 多于宿主机的 {c} 个核心：TCG thread=multi 给每个 vCPU 一个宿主线程，"
                "线程只能轮流运行",
                "-smp {n} is more than the host's {c} cores: TCG thread=multi runs one host thread per "
                "vCPU, so they take turns",
                n=spec.smp,
                c=cores,
            )
        else:
            msg = tr(
                "-smp {n} 多于宿主机的 {c} 个核心，vCPU 会互相抢占",
                "-smp {n} is more than the host's {c} cores; vCPUs will preempt each other",
                n=spec.smp,
                c=cores,
            )
        add(Problem("smp", msg, tr("改为 -smp {c} 或更少", "use -smp {c} or fewer", c=cores), "warning"))
    if (
        spec.arch == "aarch64"
        and spec.machine_type == "virt"
        and spec.smp > GICV2_MAX_CPUS
        and spec.gic_version in (None, "2")
    ):
        add(
            Problem(
                "smp",
                tr(
                    "virt 机器默认的 GICv2 最多支持 8 个 vCPU，"
                    "QEMU 会报 exceeds max CPUs supported by machine",
                    "the virt board's default GICv2 supports at most 8 vCPUs; QEMU reports 'exceeds max "
                    "CPUs supported by machine'",
                ),
                tr("用 -smp 8，或设 gic_version='3'", "use -smp 8, or set gic_version='3'"),
            )
        )

    # -- CPU model and accelerator -------------------------------------------------------------
    if spec.pauth_impdef:
        if spec.arch != "aarch64":
            add(
                Problem(
                    "pauth_impdef",
                    tr("pauth-impdef 是 Arm CPU 的属性", "pauth-impdef is a property of Arm CPUs"),
                    tr("x86_64 请设 pauth_impdef=False", "set pauth_impdef=False for x86_64"),
                )
            )
        elif ver < (6, 0, 0):
            add(
                Problem(
                    "pauth_impdef",
                    tr(
                        "QEMU {v} 还没有 pauth-impdef（QEMU 6.0 才加入）",
                        "QEMU {v} has no pauth-impdef yet (added in QEMU 6.0)",
                        v=".".join(map(str, ver)),
                    ),
                    tr(
                        "升级 QEMU，或设 pauth_impdef=False（会慢很多）",
                        "upgrade QEMU, or set pauth_impdef=False (much slower)",
                    ),
                )
            )
        elif spec.cpu != "max":
            property_name = f"'{spec.cpu}-arm-cpu.pauth-impdef'"
            if ver < (8, 0, 0):
                add(
                    Problem(
                        "cpu",
                        tr(
                            "pauth-impdef 只是 -cpu max 的属性：QEMU 会报 Property {p} not found",
                            "pauth-impdef is a property of -cpu max only: QEMU says Property {p} not found",
                            p=property_name,
                        ),
                        tr(
                            "用 cpu='max'，或设 pauth_impdef=False",
                            "use cpu='max', or set pauth_impdef=False",
                        ),
                    )
                )
            else:
                add(
                    Problem(
                        "cpu",
                        tr(
                            "较新的 QEMU 只给实现了指针认证的 CPU 型号提供 pauth-impdef；{c} 可能没有",
                            "newer QEMU offers pauth-impdef only on CPU models with pointer "
                            "authentication; {c} may not have it",
                            c=spec.cpu,
                        ),
                        tr("用 cpu='max' 最稳妥", "cpu='max' is the safe choice"),
                        "warning",
                    )
                )
        elif ver >= (10, 0, 0):
            add(
                Problem(
                    "pauth_impdef",
                    tr(
                        "QEMU 10.0 起 -cpu max 默认就用 IMPDEF 算法，pauth-impdef=on 多余但无害",
                        "since QEMU 10.0 -cpu max uses the IMPDEF algorithm by default; pauth-impdef=on "
                        "is redundant but harmless",
                    ),
                    severity="note",
                )
            )
    elif spec.arch == "aarch64" and spec.accel == "tcg" and spec.cpu == "max":
        add(
            Problem(
                "pauth_impdef",
                tr(
                    "-cpu max 不加 pauth-impdef=on 时，TCG 要模拟很慢的 QARMA 指针认证算法",
                    "without pauth-impdef=on, TCG emulates the slow architected QARMA pointer "
                    "authentication of -cpu max",
                ),
                tr(
                    "设 pauth_impdef=True（内核启动快好几倍）",
                    "set pauth_impdef=True (kernels boot several times faster)",
                ),
                "warning" if ver < (10, 0, 0) else "note",
            )
        )

    host_arch = _norm_arch(host.arch)
    if spec.accel == "kvm":
        if host_arch and host_arch != spec.arch:
            add(
                Problem(
                    "accel",
                    tr(
                        "KVM 只能运行与宿主机同架构的客户机（宿主机 {h}，客户机 {g}）",
                        "KVM only runs guests of the host's architecture (host {h}, guest {g})",
                        h=host.arch,
                        g=spec.arch,
                    ),
                    tr("跨架构请用 accel='tcg'", "use accel='tcg' for a foreign architecture"),
                )
            )
        elif not host.kvm_usable:
            add(
                Problem(
                    "accel",
                    tr(
                        "这台机器上 KVM 不可用：{r}", "KVM is not usable on this host: {r}", r=host.kvm_reason
                    ),
                    tr("用 accel='tcg'（软件模拟，较慢）", "use accel='tcg' (software emulation, slower)"),
                    "warning" if host.kvm_reason == "not probed" else "error",
                )
            )
    elif spec.accel in ("hvf", "whpx"):
        native = {"hvf": "Darwin", "whpx": "Windows"}[spec.accel]
        if host.os_name != native:
            add(
                Problem(
                    "accel",
                    tr("{a} 只在 {o} 上有", "{a} exists only on {o}", a=spec.accel, o=native),
                    tr("Linux 上用 kvm 或 tcg", "on Linux use kvm or tcg"),
                )
            )
    elif spec.accel == "tcg" and host_arch == spec.arch and host.kvm_usable:
        add(
            Problem(
                "accel",
                tr(
                    "同架构且 KVM 可用：accel='kvm' 会快得多",
                    "same architecture and KVM works: accel='kvm' would be much faster",
                ),
                severity="note",
            )
        )
    if spec.cpu == "host" and spec.accel not in ("kvm", "hvf"):
        add(
            Problem(
                "cpu",
                tr("-cpu host 只能配合 KVM/HVF 使用", "-cpu host works only with KVM/HVF"),
                tr("TCG 下用 cpu='max'", "with TCG use cpu='max'"),
            )
        )
    if spec.arch == "aarch64" and spec.machine_type is None:
        add(
            Problem(
                "machine",
                tr("qemu-system-aarch64 没有默认机器类型", "qemu-system-aarch64 has no default machine"),
                tr("用 machine='virt'", "use machine='virt'"),
            )
        )
    if spec.arch == "x86_64" and spec.machine == "virt":
        add(
            Problem(
                "machine",
                tr("x86_64 没有 virt 机器", "x86_64 has no 'virt' machine"),
                tr("不写（默认 pc）或用 q35", "leave it unset (pc) or use q35"),
            )
        )
    if spec.arch == "aarch64" and spec.efi is None and spec.kernel is None:
        add(
            Problem(
                "efi",
                tr(
                    "aarch64 virt 机器没有 BIOS：没有 efi.img 也没有 -kernel 就什么都不会启动",
                    "the aarch64 virt board has no built-in BIOS: without efi.img or a kernel nothing boots",
                ),
                tr("设 efi='efi.img'（64 MiB 的 UEFI 固件）", "set efi='efi.img' (the 64 MiB UEFI firmware)"),
            )
        )

    # -- display, network, boot ----------------------------------------------------------------
    if spec.display in ("default", "gtk", "sdl"):
        add(
            Problem(
                "display",
                tr(
                    "服务器上没有 QEMU 图形界面模块：QEMU 会提示装 qemu-system-gui，"
                    "然后改在 127.0.0.1:5900 开 VNC",
                    "servers have no QEMU GUI module: QEMU suggests qemu-system-gui and serves the screen "
                    "over VNC on 127.0.0.1:5900 instead",
                ),
                tr(
                    "在服务器或笔记本里用 display='none' 或 'nographic'；桌面上装 qemu-system-gui",
                    "on a server or in a notebook use display='none' or 'nographic'; on a desktop install "
                    "qemu-system-gui",
                ),
                "warning",
            )
        )
    if spec.nic == "user" and spec.nic_rom and spec.nic_model.startswith("virtio-net"):
        add(
            Problem(
                "nic",
                tr(
                    "-nic user,model=virtio-net-pci 需要 ipxe-qemu 包里的 efi-virtio.rom；"
                    "用 --no-install-recommends 装的 QEMU 会报 failed to find romfile",
                    "-nic user,model=virtio-net-pci needs efi-virtio.rom from the ipxe-qemu package; a QEMU "
                    "installed with --no-install-recommends stops with 'failed to find romfile'",
                ),
                tr(
                    "sudo apt-get install ipxe-qemu，或设 nic_rom=False",
                    "sudo apt-get install ipxe-qemu, or set nic_rom=False",
                ),
                "note",
            )
        )
    if spec.nic == "user" and spec.efi is not None and spec.iso is None and spec.kernel is None:
        add(
            Problem(
                "nic",
                tr(
                    "如果磁盘不能启动，UEFI 会先尝试 PXE/HTTP 网络启动，超过 150 秒才放弃",
                    "if the disk does not boot, UEFI first tries PXE/HTTP network boot for over 150 s",
                ),
                tr("不需要网络启动时用 nic='none'", "use nic='none' when no network boot is wanted"),
                "note",
            )
        )
    if spec.initrd is not None and spec.kernel is None:
        add(
            Problem(
                "initrd",
                tr("有 initrd 却没有 kernel", "initrd given without a kernel"),
                tr("同时设置 kernel", "set kernel too"),
            )
        )
    if spec.append is not None and spec.kernel is None:
        add(
            Problem(
                "append",
                tr("有 append 却没有 kernel", "append given without a kernel"),
                tr("同时设置 kernel", "set kernel too"),
            )
        )
    if not spec.disks and spec.iso is None and spec.kernel is None:
        add(
            Problem(
                "disks",
                tr(
                    "没有磁盘、ISO 或内核：虚拟机没有东西可启动",
                    "no disk, ISO or kernel: the guest has nothing to boot",
                ),
                tr("加一块 Disk 或 iso", "add a Disk or an iso"),
                "warning",
            )
        )

    # -- files -----------------------------------------------------------------------------------
    if path_exists is not None:
        files: list[tuple[str, str]] = []
        if spec.efi is not None:
            files.append(("efi", spec.efi))
        if spec.iso is not None:
            files.append(("iso", spec.iso))
        files += [("disks", d.path) for d in spec.disks]
        for name in ("kernel", "initrd"):
            value = getattr(spec, name)
            if value is not None:
                files.append((name, value))
        for name, path in files:
            if not path_exists(path):
                add(
                    Problem(
                        name,
                        tr("文件 {p} 现在不存在", "file {p} does not exist (yet)", p=path),
                        tr("先创建/下载它，或改正路径", "create or download it first, or fix the path"),
                        "warning",
                    )
                )
    return problems


# ---------------------------------------------------------------------------------------------
# Reading QEMU's answers
# ---------------------------------------------------------------------------------------------
def parse_qemu_version(text: str) -> tuple[int, int, int] | None:
    """``QEMU emulator version 7.2.22 (Debian ...)`` → ``(7, 2, 22)``; ``None`` if absent."""
    m = re.search(r"QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not m:
        return None
    return int(m[1]), int(m[2]), int(m[3] or 0)


def parse_machine_help(text: str) -> set[str]:
    """Machine type names from ``-machine help`` (first word of each line after the header)."""
    names = set()
    for line in (text or "").splitlines():
        if not line.strip() or line.startswith(("Supported machines", " ")):
            continue
        names.add(line.split()[0])
    return names


def parse_cpu_help(text: str) -> set[str]:
    """CPU model names from ``-cpu help`` (aarch64: one per line; x86: ``x86 <name> ...``)."""
    names = set()
    for line in (text or "").splitlines():
        words = line.split()
        if not words or line.rstrip().endswith(":"):
            continue
        if words[0] == "x86" and len(words) > 1:
            names.add(words[1])
        elif line.startswith(" ") or len(words) == 1:
            names.add(words[0])
    return names


def parse_device_help(text: str) -> set[str]:
    """Device names (and aliases) from ``-device help`` lines such as ``name "usb-kbd", bus usb-bus``."""
    names = set(re.findall(r'name "([^"]+)"', text or ""))
    names |= set(re.findall(r'alias "([^"]+)"', text or ""))
    return names


def device_names_in(argv: Iterable[str]) -> list[str]:
    """Device models an argv uses: every ``-device X,...`` plus the ``-nic ...,model=X``."""
    out: list[str] = []
    items = list(argv)
    for flag, value in itertools.pairwise(items):
        if flag in ("-device", "--device"):
            name = value.split(",", 1)[0]
        elif flag in ("-nic", "--nic"):
            m = re.search(r"(?:^|,)model=([^,]+)", value)
            if not m:
                continue
            name = m[1]
        else:
            continue
        if name not in out:
            out.append(name)
    return out


_KNOWN_ERRORS: tuple[tuple[str, str, Callable[[re.Match[str]], tuple[str, str]]], ...] = (
    (
        r"Property '([\w.-]+)-arm-cpu\.pauth-impdef' not found",
        "cpu",
        lambda m: (
            tr("CPU 型号 {c} 没有 pauth-impdef 属性", "CPU model {c} has no pauth-impdef property", c=m[1]),
            tr("用 cpu='max'，或设 pauth_impdef=False", "use cpu='max', or set pauth_impdef=False"),
        ),
    ),
    (
        r'failed to find romfile "([^"]+)"',
        "nic",
        lambda m: (
            tr("找不到网卡启动 ROM {r}", "the network boot ROM {r} is missing", r=m[1]),
            tr(
                "sudo apt-get install ipxe-qemu，或设 nic_rom=False",
                "sudo apt-get install ipxe-qemu, or set nic_rom=False",
            ),
        ),
    ),
    (
        r"device requires (\d+) bytes, block backend provides (\d+) bytes",
        "efi",
        lambda m: (
            tr(
                "UEFI 闪存需要 {a} 字节，文件只有 {b} 字节",
                "the UEFI flash needs {a} bytes, the file has {b}",
                a=m[1],
                b=m[2],
            ),
            tr(
                "用补零到 64 MiB 的 efi.img（labkit 的固件步骤会生成）",
                "use an efi.img zero-padded to 64 MiB (labkit's firmware step builds one)",
            ),
        ),
    ),
    (
        r"exceeds max CPUs supported by machine '([\w-]+)' \((\d+)\)",
        "smp",
        lambda m: (
            tr("机器 {n} 最多 {c} 个 vCPU", "machine {n} supports at most {c} vCPUs", n=m[1], c=m[2]),
            tr("减少 smp，或 virt 机器设 gic_version='3'", "lower smp, or set gic_version='3' on virt"),
        ),
    ),
    (
        r"cannot set up guest memory",
        "memory",
        lambda m: (
            tr("宿主机给不出这么多内存", "the host cannot provide that much memory"),
            tr("减小 memory", "lower memory"),
        ),
    ),
    (
        r"invalid accelerator (\w+)|Could not access KVM kernel module|failed to initialize kvm"
        r"|KVM internal error",
        "accel",
        lambda m: (
            tr("KVM 加速不可用", "KVM acceleration is not available"),
            tr("用 accel='tcg'", "use accel='tcg'"),
        ),
    ),
    (
        r"unable to find CPU model '([^']+)'",
        "cpu",
        lambda m: (
            tr("没有 CPU 型号 {c}", "there is no CPU model {c}", c=m[1]),
            tr("查看 -cpu help；TCG 下用 max", "see -cpu help; with TCG use max"),
        ),
    ),
    (
        r"'([^']+)' is not a valid device model name",
        "device",
        lambda m: (
            tr("这个 QEMU 没有设备 {d}", "this QEMU has no device {d}", d=m[1]),
            tr("查看 -device help", "see -device help"),
        ),
    ),
    (
        r"Could not open '([^']+)': (.+)",
        "file",
        lambda m: (
            tr("打不开 {p}：{e}", "cannot open {p}: {e}", p=m[1], e=m[2].strip()),
            tr("检查路径和权限", "check the path and permissions"),
        ),
    ),
    (
        r"Parameter '(\w+)' expects (.+)",
        "option",
        lambda m: (
            tr("参数 {p} 的值不对：需要 {e}", "bad value for {p}: expects {e}", p=m[1], e=m[2].strip()),
            tr("改正该参数", "correct that option"),
        ),
    ),
)


def explain_qemu_stderr(stderr: str) -> list[Problem]:
    """Turn QEMU's start-up errors into :class:`Problem` items with a fix.

    Known messages get a specific explanation; other ``qemu-system-*:`` lines are passed on as
    they are. Harmless warnings (missing GUI modules, ``vgabios-ramfb.bin``) are skipped.
    """
    problems: list[Problem] = []
    seen: set[str] = set()
    for raw in (stderr or "").splitlines():
        line = raw.strip()
        if not line or "vgabios-ramfb.bin" in line or "module ui-ui-" in line:
            continue
        for pattern, known_field, explain in _KNOWN_ERRORS:
            m = re.search(pattern, line)
            if m:
                field_name = known_field
                message, fix = explain(m)
                break
        else:
            if not line.startswith("qemu-system-") or "warning:" in line:
                continue
            field_name, message, fix = "qemu", line.split(": ", 1)[-1], ""
        if message not in seen:
            seen.add(message)
            problems.append(Problem(field_name, message, fix))
    return problems
