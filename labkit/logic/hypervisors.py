"""VirtualBox networking, Hyper-V on/off and the libvirt + Cockpit install of chapter 1, as data.

None of these run on the course's Linux notebook host (no VirtualBox, no Windows, and installing
libvirt needs root and consent), so the value is in *exact* commands plus the reasons behind them:
VirtualBox's network modes (who reaches whom, the ``VBoxManage modifyvm`` argv, the course's
advice: NAT for the internet + host-only for host→VM; avoid bridged), the course's Hyper-V lines
verbatim and as argv a process runner starts, and the libvirt + Cockpit install with two
corrections measured on Debian 12. Each section notes its sources and reasons.

Every argv a step runs or reads back with (``showvminfo``, ``bcdedit /enum``, ``id -nG``) is built
here, so a plan lists exactly what runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from labkit.errors import InvalidField
from labkit.i18n import tr

__all__ = [
    "HYPERV_ACTIONS",
    "LIBVIRT_GROUPS",
    "NETWORK_MODES",
    "QEMU_KVM_PACKAGE",
    "Access",
    "NetworkMode",
    "bcdedit_enum_argv",
    "hyperv_commands",
    "hyperv_notes",
    "libvirt_check_argv",
    "libvirt_install_commands",
    "libvirt_notes",
    "network_mode",
    "parse_bcdedit_launchtype",
    "parse_id_groups",
    "parse_showvminfo",
    "reachability_table",
    "recommended_vbox_setup",
    "seed_hyperv_commands",
    "seed_libvirt_commands",
    "validate_username",
    "validate_vm_name",
    "vbox_advice",
    "vbox_modifyvm_argv",
    "vbox_showvminfo_argv",
]

Access = Literal["yes", "no", "port-forward", "depends"]


@dataclass(frozen=True)
class NetworkMode:
    """One entry of VirtualBox's "Attached to" list.

    ``vboxmanage``: the value for ``--nicN``; ``target_flag``: the per-adapter option naming what
    to attach to (without the adapter number), ``None`` when the mode needs nothing.
    Reachability: ``vm_to_internet``, ``host_to_vm``, ``vm_to_host``, ``vm_to_vm`` (two VMs on the
    same mode/network), ``lan_to_vm`` (another machine on the physical network).
    """

    key: str
    vboxmanage: str
    name_zh: str
    name_en: str
    desc_zh: str
    desc_en: str
    vm_to_internet: Access
    host_to_vm: Access
    vm_to_host: Access
    vm_to_vm: Access
    lan_to_vm: Access
    target_flag: str | None = None
    target_example: str | None = None

    @property
    def name(self) -> str:
        return tr(self.name_zh, self.name_en)

    @property
    def description(self) -> str:
        return tr(self.desc_zh, self.desc_en)


#: The eight choices of the settings dialog with the course's descriptions, in the order of the
#: course text. Reachability follows the VirtualBox manual's table
#: "Overview of Networking Modes".
NETWORK_MODES: tuple[NetworkMode, ...] = (
    NetworkMode(
        "nat",
        "nat",
        "网络地址转换（NAT）",
        "NAT",
        "允许虚拟机访问外部网络，但外部网络不能直接访问虚拟机。这是默认的网络设置。"
        "每个虚拟机有自己的 NAT 服务，"
        "虚拟机之间不能直接通信。",
        "The VM can reach the outside network but the outside cannot reach the VM directly. This is "
        "the default. Every VM has its own NAT service, so VMs cannot talk to each other.",
        vm_to_internet="yes",
        host_to_vm="port-forward",
        vm_to_host="yes",
        vm_to_vm="no",
        lan_to_vm="port-forward",
    ),
    NetworkMode(
        "bridged",
        "bridged",
        "桥接网络",
        "Bridged Adapter",
        "虚拟机直接连接到物理网络，就像网络上另一台独立的计算机。",
        "The VM joins the physical network directly, like another independent computer on it.",
        vm_to_internet="yes",
        host_to_vm="yes",
        vm_to_host="yes",
        vm_to_vm="yes",
        lan_to_vm="yes",
        target_flag="--bridgeadapter",
        target_example="eth0",
    ),
    NetworkMode(
        "intnet",
        "intnet",
        "内部网络",
        "Internal Network",
        "只允许虚拟机之间相互通信，它们不能访问宿主机或外部网络。",
        "Only VMs on the same internal network can talk to each other; no host, no outside network.",
        vm_to_internet="no",
        host_to_vm="no",
        vm_to_host="no",
        vm_to_vm="yes",
        lan_to_vm="no",
        target_flag="--intnet",
        target_example="intnet",
    ),
    NetworkMode(
        "hostonly",
        "hostonly",
        "仅主机（Host-Only）网络",
        "Host-only Adapter",
        "虚拟机可以与宿主机通信，但不能访问外部网络。",
        "The VM can talk to the host (and to other VMs on the same host-only network) but not to "
        "the outside network.",
        vm_to_internet="no",
        host_to_vm="yes",
        vm_to_host="yes",
        vm_to_vm="yes",
        lan_to_vm="no",
        target_flag="--hostonlyadapter",
        target_example="vboxnet0",
    ),
    NetworkMode(
        "generic",
        "generic",
        "通用驱动",
        "Generic Driver",
        "一种可以在不同网络环境中工作的网络驱动（如 UDP 隧道、VDE），连通性取决于所选驱动。",
        "A pluggable network driver (e.g. UDP tunnel, VDE); what is reachable depends on the driver.",
        vm_to_internet="depends",
        host_to_vm="depends",
        vm_to_host="depends",
        vm_to_vm="depends",
        lan_to_vm="depends",
        target_flag="--nicgenericdrv",
        target_example="UDPTunnel",
    ),
    NetworkMode(
        "natnetwork",
        "natnetwork",
        "NAT 网络",
        "NAT Network",
        "多个虚拟机共享同一个 NAT 服务：虚拟机之间可以相互通信，并且可以访问外部网络。",
        "Several VMs share one NAT service: they can talk to each other and reach the outside network.",
        vm_to_internet="yes",
        host_to_vm="port-forward",
        vm_to_host="yes",
        vm_to_vm="yes",
        lan_to_vm="port-forward",
        target_flag="--natnetwork",
        target_example="NatNetwork",
    ),
    NetworkMode(
        "cloud",
        "cloud",
        "云网络［试验功能］",
        "Cloud Network [experimental]",
        "实验性的网络模式，把虚拟机接到云环境（Oracle Cloud）中的子网。",
        "Experimental: connects the VM to a subnet in a cloud (Oracle Cloud Infrastructure).",
        vm_to_internet="depends",
        host_to_vm="no",
        vm_to_host="no",
        vm_to_vm="depends",
        lan_to_vm="no",
        target_flag="--cloudnetwork",
        target_example="cloud-net",
    ),
    NetworkMode(
        "null",
        "null",
        "未指定（未连接）",
        "Not attached",
        "网卡存在但没有接到任何网络，像拔掉了网线。",
        "The adapter exists but is connected to nothing, like an unplugged cable.",
        vm_to_internet="no",
        host_to_vm="no",
        vm_to_host="no",
        vm_to_vm="no",
        lan_to_vm="no",
    ),
)

_BY_KEY = {m.key: m for m in NETWORK_MODES}
_ALIASES = {
    "bridge": "bridged",
    "host-only": "hostonly",
    "host_only": "hostonly",
    "internal": "intnet",
    "nat-network": "natnetwork",
    "nat_network": "natnetwork",
    "not-attached": "null",
    "not_attached": "null",
    "none": "none",
}
#: Highest adapter number ``VBoxManage modifyvm`` accepts with the default PIIX3 chipset.
MAX_NIC = 8


def network_mode(key: str) -> NetworkMode:
    """Look up a mode by its key (``nat``, ``bridged``, ``hostonly``, …; a few aliases accepted)."""
    k = _ALIASES.get(str(key).strip().lower(), str(key).strip().lower()) if isinstance(key, str) else key
    if k not in _BY_KEY:
        raise InvalidField(
            "mode",
            key,
            tr("不是 VirtualBox 网络模式", "is not a VirtualBox network mode"),
            tr("可选：{m}", "use one of: {m}", m=", ".join(_BY_KEY)),
        )
    return _BY_KEY[k]


def reachability_table() -> list[dict[str, str]]:
    """Rows for display: mode name and who can reach whom (``yes``/``no``/``port-forward``/``depends``)."""
    return [
        {
            "mode": m.name,
            "vboxmanage": m.vboxmanage,
            "vm→internet": m.vm_to_internet,
            "host→vm": m.host_to_vm,
            "vm→host": m.vm_to_host,
            "vm↔vm": m.vm_to_vm,
            "lan→vm": m.lan_to_vm,
        }
        for m in NETWORK_MODES
    ]


def vbox_advice() -> list[str]:
    """The course's advice on choosing modes, with the reason."""
    return [
        tr(
            "不要轻易使用桥接网络：虚拟机和宿主机位于同一网段，"
            "不同物理机上的虚拟机一旦 MAC 或 IP 冲突就很麻烦。",
            "Avoid bridged networking: the VM sits in the host's own subnet, and a MAC or IP clash with "
            "VMs on other physical machines is hard to untangle.",
        ),
        tr(
            "建议用 NAT + 仅主机网络：虚拟机通过 NAT（网卡 1）访问外部网络，"
            "宿主机通过仅主机网络（网卡 2）访问虚拟机。",
            "Use NAT + host-only: the VM reaches the outside through NAT (adapter 1) and the host reaches "
            "the VM through host-only (adapter 2).",
        ),
        tr(
            "NAT 与 NAT 网络的区别：NAT 下每台虚拟机有自己的 NAT 服务、彼此不通；"
            "NAT 网络由多台虚拟机共享，彼此可通信。",
            "NAT vs NAT Network: with NAT every VM has its own NAT service and VMs cannot talk to each "
            "other; a NAT Network is shared, so its VMs can.",
        ),
    ]


_VM_NAME_BAD = ("\x00", "\n", "\r")
_TARGET_RE = re.compile(r"[^\x00\n\r]{1,200}")


def validate_vm_name(name: object) -> str:
    """A VirtualBox VM name or UUID as given to VBoxManage (any text on one line)."""
    if not isinstance(name, str) or not name.strip() or any(c in name for c in _VM_NAME_BAD):
        raise InvalidField(
            "vm",
            name,
            tr("不是虚拟机名", "is not a VM name"),
            tr("写 VBoxManage list vms 显示的名字或 UUID", "use a name or UUID shown by VBoxManage list vms"),
        )
    if name.startswith("-"):
        raise InvalidField(
            "vm",
            name,
            tr("以 - 开头，会被当成选项", "starts with '-' and would read as an option"),
            tr("用虚拟机的 UUID", "use the VM's UUID"),
        )
    return name


def vbox_modifyvm_argv(vm: str, mode: str, nic: int = 1, target: str | None = None) -> list[str]:
    """``VBoxManage modifyvm <vm> --nic<N> <mode> [--<target flag><N> <target>]``.

    ``mode`` ``none`` removes the adapter; ``null`` is the dialog's "Not attached" (adapter
    present, cable to nowhere). Modes that attach to something (bridged, hostonly, intnet,
    natnetwork, generic, cloud) need ``target``; the others refuse one.

    Flag names were checked against ``VBoxManageModifyVM.cpp``: VirtualBox 7 accepts both the old
    spelling (``--hostonlyadapter2``) and the new one (``--host-only-adapter2``); VirtualBox 6 only
    the old one, so labkit uses the old spellings.
    """
    vm = validate_vm_name(vm)
    if isinstance(nic, bool) or not isinstance(nic, int) or not 1 <= nic <= MAX_NIC:
        raise InvalidField(
            "nic", nic, tr("不是网卡编号", "is not an adapter number"), tr("1 到 {n}", "1 to {n}", n=MAX_NIC)
        )
    if isinstance(mode, str) and _ALIASES.get(mode.strip().lower()) == "none":
        if target is not None:
            raise InvalidField("target", target, tr("mode=none 不需要", "is not used with mode none"), "")
        return ["VBoxManage", "modifyvm", vm, f"--nic{nic}", "none"]
    m = network_mode(mode)
    argv = ["VBoxManage", "modifyvm", vm, f"--nic{nic}", m.vboxmanage]
    if m.target_flag is None:
        if target is not None:
            raise InvalidField(
                "target",
                target,
                tr("{m} 模式不需要", "is not used with mode {m}", m=m.key),
                tr("去掉它", "drop it"),
            )
        return argv
    if not isinstance(target, str) or not _TARGET_RE.fullmatch(target) or not target.strip():
        raise InvalidField(
            "target",
            target,
            tr("{m} 模式需要指定连接对象", "mode {m} needs something to attach to", m=m.key),
            tr("例如 {e}", "e.g. {e}", e=m.target_example),
        )
    return [*argv, f"{m.target_flag}{nic}", target]


def recommended_vbox_setup(vm: str, hostonly_adapter: str = "vboxnet0") -> list[list[str]]:
    """The course's recommendation as commands: adapter 1 NAT, adapter 2 host-only.

    The host-only interface must exist (``VBoxManage hostonlyif create`` makes ``vboxnet0``); on
    macOS hosts VirtualBox 7 uses host-only *networks* (``--nic2 hostonlynet``) instead.
    """
    return [
        vbox_modifyvm_argv(vm, "nat", 1),
        vbox_modifyvm_argv(vm, "hostonly", 2, hostonly_adapter),
    ]


def vbox_showvminfo_argv(vm: str) -> list[str]:
    """``VBoxManage showvminfo <vm> --machinereadable``: read-only, how a step checks an adapter."""
    return ["VBoxManage", "showvminfo", validate_vm_name(vm), "--machinereadable"]


def parse_showvminfo(text: str) -> dict[str, str]:
    """``VBoxManage showvminfo <vm> --machinereadable`` → ``{"nic1": "nat", "hostonlyadapter2": ...}``."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        if "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().strip('"')
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# Hyper-V
# ---------------------------------------------------------------------------------------------
HYPERV_ACTIONS = ("disable", "enable")


def seed_hyperv_commands(action: str) -> list[list[str]]:
    """The course's three lines (typed into an administrator PowerShell), split into words, verbatim."""
    if action not in HYPERV_ACTIONS:
        raise InvalidField(
            "action",
            action,
            tr("不是可选值", "is not a choice"),
            tr("disable 或 enable", "disable or enable"),
        )
    verb = "Disable" if action == "disable" else "Enable"
    launch = "off" if action == "disable" else "auto"
    return [
        [f"{verb}-WindowsOptionalFeature", "-Online", "-FeatureName", "Microsoft-Hyper-V-All"],
        [f"{verb}-WindowsOptionalFeature", "-Online", "-FeatureName", "HypervisorPlatform"],
        ["bcdedit", "/set", "hypervisorlaunchtype", launch],
    ]


def hyperv_commands(action: str) -> list[list[str]]:
    """The course's lines as argv a process runner can start on Windows (what the step plans and runs).

    The two ``*-WindowsOptionalFeature`` lines are PowerShell cmdlets, so they run inside
    ``powershell.exe -NoProfile -NonInteractive -Command``; ``-NoRestart`` keeps the cmdlet from
    rebooting on its own (the student reboots once at the end). ``bcdedit`` is a program.
    """
    out = []
    for cmd in seed_hyperv_commands(action):
        if cmd[0] == "bcdedit":
            out.append(cmd)
        else:
            shell = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command"]
            out.append([*shell, " ".join([*cmd, "-NoRestart"])])
    return out


def bcdedit_enum_argv() -> list[str]:
    """``bcdedit /enum {current}``: read-only, shows ``hypervisorlaunchtype`` of this boot entry."""
    return ["bcdedit", "/enum", "{current}"]


def hyperv_notes(action: str) -> list[str]:
    """What the student must know before running :func:`hyperv_commands`."""
    seed = "; ".join(" ".join(c) for c in seed_hyperv_commands(action))  # validates
    notes = [
        tr(
            "课程原文（管理员 PowerShell 中输入）：{c}",
            "the course's lines (administrator PowerShell): {c}",
            c=seed,
        ),
        tr("以管理员身份运行 PowerShell。", "Run PowerShell as Administrator."),
        tr("需要重启电脑，更改才会生效。", "The change takes effect only after a reboot."),
    ]
    if action == "disable":
        notes.append(
            tr(
                "禁用 Hyper-V 和 Windows Hypervisor Platform 会影响依赖它们的功能，"
                "如 WSL2、Windows 沙盒（Sandbox）"
                "和基于 WSL2 的 Docker Desktop。",
                "Disabling Hyper-V and the Windows Hypervisor Platform breaks what depends on them, such "
                "as WSL2, Windows Sandbox and Docker Desktop's WSL2 backend.",
            )
        )
        notes.append(
            tr(
                "目的：让 VirtualBox 直接使用硬件虚拟化，才能在虚拟机设置里启用嵌套虚拟化。",
                "Purpose: VirtualBox gets the hardware virtualization itself, so nested virtualization can "
                "be enabled in the VM's settings.",
            )
        )
    else:
        notes.append(
            tr(
                "重新启用后，Hyper-V 再次占用硬件虚拟化，VirtualBox 的嵌套虚拟化可能不可用。",
                "Once re-enabled, Hyper-V owns hardware virtualization again and VirtualBox's nested "
                "virtualization may stop working.",
            )
        )
    return notes


def parse_bcdedit_launchtype(text: str) -> str | None:
    """``hypervisorlaunchtype    Off`` in ``bcdedit /enum {current}`` → ``"off"``; ``None`` if absent."""
    m = re.search(r"^\s*hypervisorlaunchtype\s+(\S+)", text or "", re.IGNORECASE | re.MULTILINE)
    return m[1].lower() if m else None


# ---------------------------------------------------------------------------------------------
# libvirt + Cockpit on Ubuntu/Debian server
# ---------------------------------------------------------------------------------------------
# Two corrections to the course, measured on Debian 12: ``qemu-kvm`` is only a *virtual* package
# there (provided by ``qemu-system-x86``; apt picks the single provider, but on Ubuntu ≥ 24.04 with
# a second provider such as ``qemu-system-x86-hwe`` apt stops with "Package 'qemu-kvm' has no
# installation candidate"), so labkit installs ``qemu-system-x86`` by name; and ``cockpit.service``
# has no ``[Install]`` section (only ``cockpit.socket`` has ``WantedBy=sockets.target``), so the
# course's ``systemctl enable cockpit`` enables nothing – labkit enables ``cockpit.socket``.
#: What labkit installs instead of the virtual package ``qemu-kvm``.
QEMU_KVM_PACKAGE = "qemu-system-x86"
LIBVIRT_PACKAGES = ("libvirt-daemon-system", "libvirt-clients", "bridge-utils")
COCKPIT_PACKAGES = ("cockpit", "cockpit-machines")
LIBVIRT_GROUPS = ("libvirt", "kvm")

#: Debian's adduser NAME_REGEX default (``/etc/adduser.conf``), and the length limit of useradd.
_USER_RE = re.compile(r"[a-z][-a-z0-9_]{0,31}")


def validate_username(user: object) -> str:
    """A Linux user name the way Debian's ``adduser`` accepts it (``^[a-z][-a-z0-9_]*$``, ≤ 32)."""
    if not isinstance(user, str) or not _USER_RE.fullmatch(user):
        raise InvalidField(
            "user",
            user,
            tr("不是合法的 Linux 用户名", "is not a valid Linux user name"),
            tr(
                "小写字母开头，只含小写字母、数字、- 和 _，最多 32 个字符，例如 hadoop",
                "start with a lowercase letter, then lowercase letters, digits, - or _, at most 32 "
                "characters, e.g. hadoop",
            ),
        )
    if user == "username":
        raise InvalidField(
            "user",
            user,
            tr("是课程文本里的占位符", "is the placeholder from the course text"),
            tr("换成你自己的用户名", "replace it with your own user name"),
        )
    return user


def libvirt_install_commands(user: str, *, sudo: bool = False) -> list[list[str]]:
    """Install QEMU/KVM + libvirt, let ``user`` manage VMs, install and enable Cockpit.

    ``sudo`` prefixes every command with ``sudo`` (for a student who is not root).
    """
    user = validate_username(user)
    cmds = [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", QEMU_KVM_PACKAGE, *LIBVIRT_PACKAGES],
        *(["adduser", user, group] for group in LIBVIRT_GROUPS),
        ["apt-get", "install", "-y", *COCKPIT_PACKAGES],
        ["systemctl", "enable", "--now", "cockpit.socket"],
    ]
    return [["sudo", *c] for c in cmds] if sudo else cmds


def seed_libvirt_commands(user: str = "username") -> list[list[str]]:
    """The course's lines for 1.3.4, verbatim (``username`` is the course's placeholder)."""
    if user != "username":
        user = validate_username(user)
    return [
        ["sudo", "apt", "update"],
        ["sudo", "apt", "install", "qemu-kvm", *LIBVIRT_PACKAGES],
        ["sudo", "adduser", user, "libvirt"],
        ["sudo", "adduser", user, "kvm"],
        ["sudo", "apt", "install", *COCKPIT_PACKAGES],
        ["sudo", "systemctl", "start", "cockpit"],
        ["sudo", "systemctl", "enable", "cockpit"],
    ]


def libvirt_notes() -> list[str]:
    """Why :func:`libvirt_install_commands` differs from the course text."""
    return [
        tr(
            "qemu-kvm 只是虚拟包（由 qemu-system-x86 提供）；"
            "Ubuntu 24.04 起若有多个提供者（如 qemu-system-x86-hwe），"
            "apt 会报 “has no installation candidate”，所以直接安装 qemu-system-x86。",
            "qemu-kvm is only a virtual package (provided by qemu-system-x86); on Ubuntu ≥ 24.04 with more "
            "than one provider (e.g. qemu-system-x86-hwe) apt stops with 'has no installation candidate', "
            "so labkit installs qemu-system-x86 by name.",
        ),
        tr(
            "用 apt-get 而不是 apt：apt 的命令行界面不保证稳定，适合人用、不适合脚本。",
            "apt-get instead of apt: apt warns that its command-line interface is not stable for scripts.",
        ),
        tr(
            "cockpit.service 没有 [Install] 段，systemctl enable cockpit 什么也不会启用；"
            "应启用 cockpit.socket（监听 9090 端口，按需启动服务）。",
            "cockpit.service has no [Install] section, so 'systemctl enable cockpit' enables nothing; "
            "enable cockpit.socket (it listens on port 9090 and starts the service on demand).",
        ),
        tr(
            "加入 libvirt 和 kvm 组后要重新登录才生效。然后在浏览器打开 https://<服务器IP>:9090。",
            "Group membership (libvirt, kvm) takes effect at the next login. Then open "
            "https://<server-ip>:9090 in a browser.",
        ),
    ]


def libvirt_check_argv(user: str) -> dict[str, list[str]]:
    """Read-only commands that show the install worked: ``user``'s groups, Cockpit's socket, virsh."""
    return {
        "groups": ["id", "-nG", validate_username(user)],
        "cockpit": ["systemctl", "is-enabled", "cockpit.socket"],
        "virsh": ["virsh", "--version"],
    }


def parse_id_groups(text: str) -> set[str]:
    """``id -nG user`` output → the set of group names."""
    return set((text or "").split())
