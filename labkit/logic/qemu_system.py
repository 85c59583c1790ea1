"""The ``qemu-system-*`` command line of chapter 1, built from a spec instead of typed by hand.

The course text gives three long ``qemu-system-aarch64`` lines (install Ubuntu from the ISO onto a
raw image, boot the raw image, boot a qcow2 image). They differ in two or three words, and a typo
in any of the twenty options only shows up when QEMU refuses to start. Here a
:class:`~labkit.logic.qemu_spec.VMSpec` describes the machine, :func:`build_qemu_argv` turns it into
an argv list (never a shell string), :func:`seed_commands` reproduces the course's three lines token
for token, and :func:`dry_start` builds the harmless start-up test :class:`labkit.steps.vm.PlanVM`
runs. Commas inside ``-drive`` values separate options, so a file name containing a comma is
written doubled (``file=a,,b.img``). The rules that judge a spec are in
:mod:`labkit.logic.qemu_rules`, the readers of QEMU's output in :mod:`labkit.logic.qemu_output`;
both are re-exported here for callers that think of "the VM command" as one topic.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, replace

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic.host import HostFacts
from labkit.logic.qemu_img import build_create
from labkit.logic.qemu_output import (
    device_names_in,
    explain_qemu_stderr,
    help_findings,
    parse_cpu_help,
    parse_device_help,
    parse_machine_help,
    qemu_version_tuple,
)
from labkit.logic.qemu_rules import validate_spec
from labkit.logic.qemu_spec import (
    ACCELS,
    ARCHES,
    DISPLAYS,
    GPUS,
    NICS,
    SEED_DEVICES,
    Disk,
    VMSpec,
    check_path,
    escape_opt,
    memory_bytes,
    norm_arch,
    pflash_drive,
    qemu_binary,
)
from labkit.logic.sizes import format_size

__all__ = [
    "ACCELS",
    "ARCHES",
    "DISPLAYS",
    "GPUS",
    "NICS",
    "PFLASH_BYTES",
    "QMP_QUIT",
    "SEED_DEVICES",
    "Disk",
    "DryStart",
    "VMSpec",
    "build_qemu_argv",
    "device_names_in",
    "dry_start",
    "dry_start_argv",
    "explain_qemu_stderr",
    "help_commands",
    "help_findings",
    "memory_bytes",
    "parse_cpu_help",
    "parse_device_help",
    "parse_machine_help",
    "plan_x86_64",
    "qemu_binary",
    "qemu_version_tuple",
    "seed_commands",
    "seed_spec",
    "seed_x86_command",
    "validate_spec",
]

#: QMP commands fed to the dry start: negotiate, then quit (QEMU exits 0).
QMP_QUIT = '{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n'
#: Size of the stand-in firmware when the real efi.img is absent (the virt board's flash bank).
PFLASH_BYTES = 64 * 2**20
#: Size of each stand-in disk or ISO of the dry start.
STAND_IN_BYTES = 2**20


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
        argv += ["-drive", pflash_drive(spec.efi)]
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
            f"if=none,id=install,format=raw,media=cdrom,file={escape_opt(spec.iso)}",
        ]
    for disk, disk_id in zip(spec.disks, _disk_ids(spec), strict=True):
        opts = f"if={disk.interface},id={disk_id},format={disk.format},file={escape_opt(disk.path)}"
        argv += ["-drive", opts]
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


def help_commands(binary: str) -> dict[str, list[str]]:
    """The read-only questions asked of an installed QEMU: version and the three ``help`` lists."""
    return {
        "version": [binary, "--version"],
        "machine": [binary, "-machine", "help"],
        "cpu": [binary, "-cpu", "help"],
        "device": [binary, "-device", "help"],
    }


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
    return ["qemu-system-x86_64", "-hda", check_path("image", image)]


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
    kvm = bool(host.kvm_usable) and norm_arch(host.arch) == "x86_64"
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
        if norm_arch(host.arch) != "x86_64":
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
            raise InvalidField(
                "disk_paths",
                paths,
                tr("必须与 spec.disks 一一对应", "must match spec.disks"),
                tr("给出 {n} 个路径", "give {n} paths", n=len(spec.disks)),
            )
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
        f"pipe,id=labkitqmp,path={escape_opt(qmp_pipe)}",
        "-mon",
        "chardev=labkitqmp,mode=control",
    ]


@dataclass(frozen=True)
class DryStart:
    """Everything the dry start runs, built once for the plan and the run.

    ``stand_ins``: ``qemu-img create`` argv lists for the small stand-in media, in order;
    ``argv``: the paused QEMU; ``qmp_pipe``: the pipe chardev's path (QEMU opens ``.in`` / ``.out``);
    ``efi_stand_in`` / ``kernel_dropped``: which real files were missing and replaced or left out.
    """

    stand_ins: tuple[tuple[str, ...], ...]
    argv: tuple[str, ...]
    qmp_pipe: str
    efi_stand_in: bool
    kernel_dropped: bool

    def commands(self) -> list[list[str]]:
        """The argv lists in the order they run: stand-ins, then QEMU."""
        return [list(c) for c in self.stand_ins] + [list(self.argv)]


def dry_start(spec: VMSpec, scratch: str, *, efi_exists: bool, kernel_exists: bool) -> DryStart:
    """The dry start of ``spec`` with its stand-in media in the directory ``scratch``.

    Disks and the ISO are always replaced by 1 MiB stand-ins (no real guest data is touched); the
    firmware only when ``efi_exists`` is false (a blank 64 MiB flash); a kernel that does not exist
    (``kernel_exists`` false) is left out with its initrd and append line.
    """
    stand_ins: list[list[str]] = []
    disk_paths = []
    for i, disk in enumerate(spec.disks):
        path = posixpath.join(scratch, f"disk{i}.{disk.format}")
        stand_ins.append(build_create(path, STAND_IN_BYTES, disk.format))
        disk_paths.append(path)
    iso_path = None
    if spec.iso is not None:
        iso_path = posixpath.join(scratch, "install.iso")
        stand_ins.append(build_create(iso_path, STAND_IN_BYTES, "raw"))
    efi_path = None
    if spec.efi is not None and not efi_exists:
        efi_path = posixpath.join(scratch, "efi.img")
        stand_ins.append(build_create(efi_path, PFLASH_BYTES, "raw"))
    drop_kernel = spec.kernel is not None and not kernel_exists
    qmp = posixpath.join(scratch, "qmp")
    argv = dry_start_argv(
        spec,
        qmp_pipe=qmp,
        disk_paths=disk_paths,
        iso_path=iso_path,
        efi_path=efi_path,
        drop_kernel=drop_kernel,
    )
    return DryStart(tuple(tuple(c) for c in stand_ins), tuple(argv), qmp, efi_path is not None, drop_kernel)
