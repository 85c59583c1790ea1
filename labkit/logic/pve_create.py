"""PVE as IaaS (course 4.3): the ``qm create`` / ``pct create`` command lines from a form's fields.

A KVM virtual machine (``qm create``) and an LXC container (``pct create``) are the two kinds of
guest a Proxmox VE host rents out. :func:`build_guest` validates the fields (each error names its
field), :func:`create_argv` builds the exact argv, :func:`sizing_findings` judges cores and memory
with chapter 1's one sizing policy (:mod:`labkit.logic.sizing`) on the PVE host's facts, and
:func:`parse_config` / :func:`config_differences` read ``qm config`` / ``pct config`` back.

Option syntax as in PVE 8's ``qm(1)`` / ``pct(1)``: memory in MiB, ``--scsi0 STORAGE:SIZE_GIB``
allocates a new disk, ``--ide2 VOLUME,media=cdrom`` the installer ISO; ``pct create VMID
OSTEMPLATE --rootfs STORAGE:SIZE_GIB --unprivileged 1``. No password is ever put on a command
line: a container gets ``--ssh-public-keys FILE`` (root logs in with the key); without a key,
set a password later on the host with ``pct enter VMID`` + ``passwd`` (not recorded anywhere).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from labkit.errors import InvalidField
from labkit.findings import Finding
from labkit.i18n import tr
from labkit.logic import sizing
from labkit.logic.host import HostFacts
from labkit.logic.pve import validate_vmid

__all__ = [
    "DEFAULT_ISO",
    "DEFAULT_TEMPLATE",
    "KINDS",
    "KIND_DEFAULTS",
    "GuestSpec",
    "build_guest",
    "config_argv",
    "config_differences",
    "create_argv",
    "expected_config",
    "guest_exists",
    "parse_config",
    "sizing_findings",
    "status_argv",
    "tool",
]

Kind = Literal["vm", "ct"]
KINDS: tuple[str, ...] = ("vm", "ct")
DEFAULT_ISO = "local:iso/ubuntu-24.04-live-server-amd64.iso"
DEFAULT_TEMPLATE = "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"
MiB = 2**20
#: Per kind, the name and disk a form starts with (a container needs far less disk than a VM).
KIND_DEFAULTS: dict[str, dict[str, object]] = {
    "vm": {"name": "ubuntu-vm", "disk_gib": 32},
    "ct": {"name": "ubuntu-ct", "disk_gib": 8},
}

_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_STORAGE = re.compile(r"[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]")
_BRIDGE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,14}")
_VOLUME = {
    "vm": re.compile(
        r"(?P<storage>[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]):iso/[A-Za-z0-9][A-Za-z0-9._\-+]*\.(?:iso|img)"
    ),
    "ct": re.compile(
        r"(?P<storage>[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]):vztmpl/[A-Za-z0-9][A-Za-z0-9._\-+]*\.tar\.(?:gz|xz|zst)"
    ),
}
_SSH_KEY_PATH = re.compile(r"/[^\x00\n\r,;'\"`$]*")


@dataclass(frozen=True)
class GuestSpec:
    """One guest as the form describes it (validated: build it with :func:`build_guest`)."""

    kind: Kind
    vmid: int
    name: str
    cores: int
    memory_mib: int
    disk_gib: int
    storage: str
    bridge: str
    #: ``vm``: the installer ISO volume; ``ct``: the container template volume.
    source: str
    sockets: int = 1
    ssh_public_keys: str = ""

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MiB


def _whole(field: str, value: object, low: int, high: int, example: str) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidField(
            field,
            value,
            tr("不是 {a} 到 {b} 之间的整数", "is not a whole number from {a} to {b}", a=low, b=high),
            tr("例如 {e}", "e.g. {e}", e=example),
        )
    return value


def _pattern(field: str, value: object, rx: re.Pattern[str], problem: str, example: str) -> str:
    if not isinstance(value, str) or not rx.fullmatch(value.strip()):
        raise InvalidField(field, value, problem, tr("例如 {e}", "e.g. {e}", e=example))
    return value.strip()


def _source(kind: str, value: object) -> str:
    field = "iso" if kind == "vm" else "template"
    example = DEFAULT_ISO if kind == "vm" else DEFAULT_TEMPLATE
    problem = (
        tr("不是 ISO 卷（存储:iso/文件名.iso）", "is not an ISO volume (storage:iso/name.iso)")
        if kind == "vm"
        else tr(
            "不是容器模板卷（存储:vztmpl/文件名.tar.zst）",
            "is not a container template (storage:vztmpl/name.tar.zst)",
        )
    )
    return _pattern(field, value, _VOLUME[kind], problem, example)


def build_guest(
    kind: object = "vm",
    *,
    vmid: object = 100,
    name: object = None,
    cores: object = 2,
    memory_mib: object = 4096,
    disk_gib: object = None,
    storage: object = "local-lvm",
    bridge: object = "vmbr0",
    iso: object = DEFAULT_ISO,
    template: object = DEFAULT_TEMPLATE,
    sockets: object = 1,
    ssh_public_keys: object = "",
) -> GuestSpec:
    """Validate the fields; :class:`InvalidField` names the first unusable one."""
    if kind not in KINDS:
        raise InvalidField(
            "kind",
            kind,
            tr("不是 vm（虚拟机）或 ct（LXC 容器）", "is not vm (virtual machine) or ct (LXC container)"),
            "vm / ct",
        )
    vm = validate_vmid(vmid)
    defaults = KIND_DEFAULTS[str(kind)]
    name = defaults["name"] if name is None else name
    disk_gib = defaults["disk_gib"] if disk_gib is None else disk_gib
    label = _pattern(
        "name",
        name,
        _DNS_LABEL,
        tr(
            "不是合法的主机名（字母、数字、连字符，最多 63 个）",
            "is not a valid host name (letters, digits, -; ≤ 63)",
        ),
        "ubuntu-vm",
    )
    keys = ssh_public_keys.strip() if isinstance(ssh_public_keys, str) else ssh_public_keys
    if kind == "vm" and keys:
        raise InvalidField(
            "ssh_public_keys",
            keys,
            tr("只用于 LXC 容器", "applies to LXC containers only"),
            tr("虚拟机在安装系统时设置登录方式", "a VM's login is set up by its OS installer"),
        )
    if keys and (not isinstance(keys, str) or not _SSH_KEY_PATH.fullmatch(keys)):
        raise InvalidField(
            "ssh_public_keys",
            keys,
            tr(
                "不是 PVE 主机上公钥文件的绝对路径",
                "is not the absolute path of a public key file on the PVE host",
            ),
            tr("例如 /root/.ssh/id_ed25519.pub", "e.g. /root/.ssh/id_ed25519.pub"),
        )
    return GuestSpec(
        kind=kind,  # type: ignore[arg-type]
        vmid=vm,
        name=label,
        cores=_whole("cores", cores, 1, 512, "2"),
        memory_mib=_whole("memory_mib", memory_mib, 16, 8 * 2**20, "4096"),
        disk_gib=_whole("disk_gib", disk_gib, 1, 65536, "32" if kind == "vm" else "8"),
        storage=_pattern(
            "storage", storage, _STORAGE, tr("不是 PVE 存储名", "is not a PVE storage id"), "local-lvm"
        ),
        bridge=_pattern("bridge", bridge, _BRIDGE, tr("不是网桥名", "is not a bridge name"), "vmbr0"),
        source=_source(str(kind), iso if kind == "vm" else template),
        sockets=_whole("sockets", sockets, 1, 4, "1"),
        ssh_public_keys=str(keys or ""),
    )


def tool(spec: GuestSpec) -> str:
    """``qm`` for a VM, ``pct`` for a container."""
    return "qm" if spec.kind == "vm" else "pct"


def create_argv(spec: GuestSpec) -> list[str]:
    """``qm create …`` / ``pct create …`` exactly as run (no password on it, ever)."""
    vm = str(spec.vmid)
    if spec.kind == "vm":
        return [
            "qm", "create", vm,
            "--name", spec.name,
            "--memory", str(spec.memory_mib),
            "--cores", str(spec.cores),
            "--sockets", str(spec.sockets),
            "--cpu", "x86-64-v2-AES",
            "--ostype", "l26",
            "--scsihw", "virtio-scsi-single",
            "--scsi0", f"{spec.storage}:{spec.disk_gib},iothread=1",
            "--ide2", f"{spec.source},media=cdrom",
            "--net0", f"virtio,bridge={spec.bridge},firewall=1",
            "--boot", "order=scsi0;ide2;net0",
        ]  # fmt: skip
    argv = [
        "pct", "create", vm, spec.source,
        "--hostname", spec.name,
        "--memory", str(spec.memory_mib),
        "--swap", "512",
        "--cores", str(spec.cores),
        "--rootfs", f"{spec.storage}:{spec.disk_gib}",
        "--net0", f"name=eth0,bridge={spec.bridge},ip=dhcp,firewall=1",
        "--unprivileged", "1",
        "--features", "nesting=1",
    ]  # fmt: skip
    if spec.ssh_public_keys:
        argv += ["--ssh-public-keys", spec.ssh_public_keys]
    return argv


def status_argv(spec: GuestSpec) -> list[str]:
    """``qm status VMID`` / ``pct status VMID``: read-only; non-zero with "does not exist"."""
    return [tool(spec), "status", str(spec.vmid)]


def config_argv(spec: GuestSpec) -> list[str]:
    """``qm config VMID`` / ``pct config VMID``: the guest's current configuration, read-only."""
    return [tool(spec), "config", str(spec.vmid)]


def guest_exists(returncode: int, output: str) -> bool:
    """What ``qm status`` / ``pct status`` said: ``False`` only for "does not exist"."""
    return not (returncode != 0 and "does not exist" in output)


def parse_config(text: str) -> dict[str, str]:
    """``key: value`` lines of ``qm config`` / ``pct config`` (the main section; ``#`` lines skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("["):
            break
        if not line.strip() or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def expected_config(spec: GuestSpec) -> dict[str, str]:
    """What ``qm config`` / ``pct config`` must show for a guest this spec made (compared loosely:
    PVE adds sizes, MAC addresses, volume names)."""
    out = {"memory": str(spec.memory_mib), "cores": str(spec.cores)}
    if spec.kind == "vm":
        out.update(name=spec.name, sockets=str(spec.sockets), ostype="l26")
    else:
        out.update(hostname=spec.name, unprivileged="1")
    return out


def config_differences(spec: GuestSpec, config: dict[str, str]) -> list[str]:
    """What differs between a guest's config and this spec (empty: it is the guest the spec makes)."""
    diffs = [
        tr("{k} 是 {g}，应为 {w}", "{k} is {g}, expected {w}", k=k, g=config.get(k, "—"), w=want)
        for k, want in expected_config(spec).items()
        if config.get(k) != want
    ]
    net = config.get("net0", "")
    if f"bridge={spec.bridge}" not in net.split(","):
        diffs.append(tr("net0 不在网桥 {b} 上", "net0 is not on bridge {b}", b=spec.bridge))
    disk_key = "scsi0" if spec.kind == "vm" else "rootfs"
    disk = config.get(disk_key, "")
    if not disk.startswith(f"{spec.storage}:") or f"size={spec.disk_gib}G" not in disk.split(","):
        diffs.append(
            tr(
                "{k} 不是 {s} 上的 {n}G 磁盘（{d}）",
                "{k} is not a {n}G disk on {s} ({d})",
                k=disk_key,
                s=spec.storage,
                n=spec.disk_gib,
                d=disk or "—",
            )
        )
    return diffs


def sizing_findings(spec: GuestSpec, host: HostFacts) -> list[Finding]:
    """Chapter 1's sizing rules for this guest on the PVE host (the fields as they are labelled)."""
    vcpus = spec.cores * spec.sockets
    return sizing.memory_findings(host, spec.memory_bytes, field="memory_mib") + sizing.cores_findings(
        host, vcpus, field="cores"
    )
