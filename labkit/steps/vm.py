"""Chapter 1 virtual-machine steps: the QEMU command line, and the hypervisors around it.

* :class:`PlanVM` (``ch1.vm.command``) plans a ``qemu-system-*`` line from a
  :class:`~labkit.logic.qemu_system.VMSpec` and *proves* it against the installed QEMU: version,
  ``-machine help``, ``-cpu help``, ``-device help``, and a dry start – the exact options, with tiny
  stand-in disks, paused before the first instruction (``-S``) and told over QMP to quit. QEMU
  parses and realizes the whole machine before it would run the guest, so exit status 0 means
  every option was accepted (``pauth-impdef`` on ``cortex-a57``, a 2 MiB ``efi.img``, ``-smp 9`` on
  GICv2, a missing ``efi-virtio.rom`` … are all refused at exactly that point). No guest runs.
* :class:`HyperVCommands`, :class:`LibvirtInstall`, :class:`VirtualBoxNetwork`: the course's
  Windows / Ubuntu-server / VirtualBox commands. They run only where they make sense (Windows;
  Debian/Ubuntu as root with consent; a host with ``VBoxManage``) and are planned elsewhere.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import CommandTimeout, ConsentRequired
from labkit.i18n import tr
from labkit.logic import hypervisors as hv
from labkit.logic.host import HostFacts
from labkit.logic.qemu_system import (
    Problem,
    VMSpec,
    build_qemu_argv,
    device_names_in,
    dry_start_argv,
    explain_qemu_stderr,
    parse_cpu_help,
    parse_device_help,
    parse_machine_help,
    parse_qemu_version,
    validate_spec,
)
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.runner import TOOL_PACKAGES

__all__ = ["HyperVCommands", "LibvirtInstall", "PlanVM", "VirtualBoxNetwork", "local_host_facts"]

#: QMP commands fed to the dry start: negotiate, then quit (QEMU exits 0).
QMP_QUIT = '{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n'
#: Size of the stand-in firmware when the real efi.img is absent (the virt board's flash bank).
PFLASH_BYTES = 64 * 2**20


def local_host_facts() -> HostFacts:
    """Cheap facts for validation when the caller has none: cores, memory, architecture.

    KVM is left "not probed"; :class:`PlanVM` probes it for real when the spec asks for KVM.
    """
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        mem = HostFacts().memory_bytes
    return HostFacts(
        os_name=platform.system(),
        arch=platform.machine(),
        cores=os.cpu_count() or 1,
        memory_bytes=int(mem),
        is_root=hasattr(os, "geteuid") and os.geteuid() == 0,
    )


class PlanVM(Step):
    """Plan a QEMU command line and prove that the installed QEMU accepts it."""

    check_id = "ch1.vm.command"
    timeout = 120.0

    def __init__(
        self,
        spec: VMSpec,
        host: HostFacts | None = None,
        *,
        dry_start: bool = True,
        qemu_timeout: float = 20.0,
    ) -> None:
        self.spec = spec
        self.host = host
        self.dry_start = dry_start
        self.qemu_timeout = qemu_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # -- plan ----------------------------------------------------------------------------------
    def plan(self) -> Plan:
        argv = build_qemu_argv(self.spec)
        problems = validate_spec(self.spec, self.host or local_host_facts())
        return Plan(
            step=self.check_id,
            reason=tr(
                "用 {b} 启动 {a} 虚拟机（{m} 内存，{n} 个 vCPU，{acc}）",
                "start an {a} guest with {b} ({m} memory, {n} vCPUs, {acc})",
                b=self.spec.binary,
                a=self.spec.arch,
                m=self.spec.memory,
                n=self.spec.smp,
                acc=self.spec.accel,
            ),
            commands=[argv],
            notes=[str(p) for p in problems],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if shutil.which(self.spec.binary) is None:
            return tr(
                "没有安装 {b}（Debian/Ubuntu 包 {p}），只给出命令",
                "{b} is not installed (Debian/Ubuntu package {p}); planned only",
                b=self.spec.binary,
                p=TOOL_PACKAGES.get(self.spec.binary, "qemu-system"),
            )
        return None

    # -- run -------------------------------------------------------------------------------------
    def _host_facts(self, ctx: RunContext) -> HostFacts:
        if self.host is not None:
            return self.host
        facts = local_host_facts()
        if self.spec.accel == "kvm":
            from labkit.steps.kvmprobe import run_kvm_probe

            probe = run_kvm_probe(ctx.runner, timeout=6.0)
            facts = replace(
                facts,
                kvm_device=os.path.exists("/dev/kvm"),
                kvm_usable=bool(probe.get("usable")),
                kvm_reason=str(probe.get("reason") or ("KVM works" if probe.get("usable") else "unknown")),
            )
        return facts

    def run(self, ctx: RunContext) -> dict[str, Any]:
        spec = self.spec
        binary = spec.binary
        version_text = ctx.run([binary, "--version"], timeout=15).stdout
        version = parse_qemu_version(version_text) or (0, 0, 0)
        ctx.progress(0.1)
        problems: list[Problem] = list(
            validate_spec(spec, self._host_facts(ctx), version, path_exists=os.path.exists)
        )

        machines = parse_machine_help(ctx.run([binary, "-machine", "help"], timeout=15).stdout)
        if spec.machine_type is not None and spec.machine_type not in machines:
            problems.append(
                Problem(
                    "machine",
                    tr(
                        "这个 QEMU 没有机器类型 {m}", "this QEMU has no machine type {m}", m=spec.machine_type
                    ),
                    tr("查看 {b} -machine help", "see {b} -machine help", b=binary),
                )
            )
        cpus = parse_cpu_help(ctx.run([binary, "-cpu", "help"], timeout=15).stdout)
        if spec.cpu != "host" and spec.cpu not in cpus:
            problems.append(
                Problem(
                    "cpu",
                    tr("这个 QEMU 没有 CPU 型号 {c}", "this QEMU has no CPU model {c}", c=spec.cpu),
                    tr("查看 {b} -cpu help", "see {b} -cpu help", b=binary),
                )
            )
        devices = parse_device_help(ctx.run([binary, "-device", "help"], timeout=15).stdout)
        wanted = device_names_in(build_qemu_argv(spec))
        missing = [d for d in wanted if d not in devices]
        for d in missing:
            problems.append(
                Problem(
                    "device",
                    tr("这个 QEMU 没有设备 {d}", "this QEMU has no device {d}", d=d),
                    tr("查看 {b} -device help", "see {b} -device help", b=binary),
                )
            )
        ctx.progress(0.4)

        evidence: dict[str, Any] = {
            "qemu_version": ".".join(map(str, version)),
            "qemu_version_text": version_text.strip().splitlines()[0] if version_text.strip() else "",
            "command": shlex.join(build_qemu_argv(spec)),
            "devices_checked": {d: d in devices for d in wanted},
        }
        if self.dry_start and not missing:
            problems += self._dry_start(ctx, evidence)
        ctx.progress(1.0)
        evidence["problems"] = [p.to_dict() for p in problems]
        return evidence

    def _dry_start(self, ctx: RunContext, evidence: dict[str, Any]) -> list[Problem]:
        """Start the exact machine paused, with stand-in media, and let QMP tell it to quit."""
        spec = self.spec
        self._tmp = tempfile.TemporaryDirectory(prefix="labkit-vm-")
        tmp = Path(self._tmp.name)
        notes: list[Problem] = []
        disk_paths = []
        for i, disk in enumerate(spec.disks):
            path = tmp / f"disk{i}.{disk.format}"
            ctx.run(["qemu-img", "create", "-q", "-f", disk.format, str(path), "1M"], timeout=30)
            disk_paths.append(str(path))
        iso_path = None
        if spec.iso is not None:
            iso_path = str(tmp / "install.iso")
            ctx.run(["qemu-img", "create", "-q", "-f", "raw", iso_path, "1M"], timeout=30)
        efi_path = None
        if spec.efi is not None and not os.path.isfile(spec.efi):
            efi_path = str(tmp / "efi.img")
            ctx.run(["qemu-img", "create", "-q", "-f", "raw", efi_path, str(PFLASH_BYTES)], timeout=30)
            notes.append(
                Problem(
                    "efi",
                    tr(
                        "试启动用了 64 MiB 的空白固件代替 {p}",
                        "the dry start used a blank 64 MiB stand-in for {p}",
                        p=spec.efi,
                    ),
                    severity="note",
                )
            )
        drop_kernel = spec.kernel is not None and not (
            os.path.isfile(spec.kernel) and (spec.initrd is None or os.path.isfile(spec.initrd))
        )
        qmp = tmp / "qmp"
        Path(f"{qmp}.in").write_text(QMP_QUIT, encoding="utf-8")
        Path(f"{qmp}.out").write_text("", encoding="utf-8")
        argv = dry_start_argv(
            spec,
            qmp_pipe=str(qmp),
            disk_paths=disk_paths,
            iso_path=iso_path,
            efi_path=efi_path,
            drop_kernel=drop_kernel,
        )
        evidence["dry_start"] = shlex.join(argv)
        try:
            done = ctx.run(argv, timeout=self.qemu_timeout, check=False)
        except CommandTimeout as exc:
            evidence["dry_start_returncode"] = None
            return [
                *notes,
                Problem(
                    "qemu",
                    tr(
                        "QEMU 在 {t} 秒内没有退出（卡住了？）",
                        "QEMU did not exit within {t} s (hung?)",
                        t=self.qemu_timeout,
                    ),
                    exc.stderr[-500:],
                ),
            ]
        evidence["dry_start_returncode"] = done.returncode
        evidence["dry_start_stderr"] = done.stderr[-2000:]
        qmp_out = Path(f"{qmp}.out").read_text(encoding="utf-8", errors="replace")
        evidence["dry_start_accepted"] = done.returncode == 0 and "host-qmp-quit" in qmp_out
        if done.returncode == 0:
            return notes
        found = explain_qemu_stderr(done.stderr)
        if not found:
            found = [
                Problem(
                    "qemu",
                    tr("QEMU 以状态 {rc} 退出", "QEMU exited with status {rc}", rc=done.returncode),
                    (done.stderr or done.stdout).strip()[-500:],
                )
            ]
        return notes + found

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        problems = evidence.get("problems", [])
        errors = [p for p in problems if p["severity"] == "error"]
        if errors:
            first = errors[0]
            return CheckResult.failed(
                self.check_id,
                tr(
                    "{n} 个问题会让 QEMU 无法启动；第一个：{m}",
                    "{n} problem(s) stop QEMU; first: {m}",
                    n=len(errors),
                    m=f"{first['field']}: {first['message']}",
                ),
                **evidence,
            )
        warnings = sum(1 for p in problems if p["severity"] == "warning")
        msg = tr("QEMU {v} 接受这条命令", "QEMU {v} accepts this command", v=evidence.get("qemu_version"))
        if not self.dry_start:
            msg = tr(
                "QEMU {v} 有所需的机器、CPU 和设备（未试启动）",
                "QEMU {v} has the machine, CPU and devices (no dry start)",
                v=evidence.get("qemu_version"),
            )
        if warnings:
            msg += tr("（{n} 个警告）", " ({n} warning(s))", n=warnings)
        return CheckResult.passed(self.check_id, msg, **evidence)

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


# ---------------------------------------------------------------------------------------------
# Hyper-V (Windows)
# ---------------------------------------------------------------------------------------------
class HyperVCommands(Step):
    """Disable or re-enable Hyper-V with the course's three commands (Windows, administrator)."""

    timeout = 900.0

    check_id = "ch1.hyperv.disable"

    def __init__(self, action: str = "disable", consent: bool = False) -> None:
        self.action = action
        self.consent = consent
        #: ``ch1.hyperv.disable`` / ``ch1.hyperv.enable``
        self.check_id = f"ch1.hyperv.{action if action in hv.HYPERV_ACTIONS else 'toggle'}"

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "{a} Hyper-V 和 Windows Hypervisor Platform（管理员 PowerShell，之后重启）",
                "{a} Hyper-V and the Windows Hypervisor Platform (administrator PowerShell, then reboot)",
                a=tr("禁用", "disable") if self.action == "disable" else tr("启用", "enable"),
            ),
            commands=hv.hyperv_commands(self.action),
            notes=hv.hyperv_notes(self.action),
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if platform.system() != "Windows":
            return tr(
                "Hyper-V 只存在于 Windows；这里只给出命令", "Hyper-V exists only on Windows; planned only"
            )
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if not self.consent:
            raise ConsentRequired(
                f"{self.action} Hyper-V",
                tr("传 consent=True（之后需要重启）", "pass consent=True (a reboot follows)"),
            )
        for cmd in hv.hyperv_runnable(self.action):
            ctx.run(cmd, timeout=600)
        return {"action": self.action}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        done = ctx.run(["bcdedit", "/enum", "{current}"], timeout=30, check=False)
        got = hv.parse_bcdedit_launchtype(done.stdout)
        want = "off" if self.action == "disable" else "auto"
        if got == want:
            return CheckResult.passed(
                self.check_id,
                tr(
                    "hypervisorlaunchtype 已是 {w}；重启后生效",
                    "hypervisorlaunchtype is {w}; reboot to apply",
                    w=want,
                ),
                hypervisorlaunchtype=got,
                **evidence,
            )
        return CheckResult.failed(
            self.check_id,
            tr(
                "hypervisorlaunchtype 是 {g}，应为 {w}",
                "hypervisorlaunchtype is {g}, expected {w}",
                g=got,
                w=want,
            ),
            hypervisorlaunchtype=got,
            **evidence,
        )


# ---------------------------------------------------------------------------------------------
# libvirt + Cockpit (Ubuntu/Debian server)
# ---------------------------------------------------------------------------------------------
def _os_release(path: str = "/etc/os-release") -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


class LibvirtInstall(Step):
    """Install QEMU/KVM, libvirt and Cockpit; add ``user`` to the libvirt and kvm groups."""

    check_id = "ch1.libvirt.install"
    timeout = 3600.0

    def __init__(self, user: str, consent: bool = False, *, sudo: bool = False) -> None:
        self.user = user
        self.consent = consent
        self.sudo = sudo

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "在 Ubuntu/Debian 服务器上安装 QEMU/KVM、libvirt 和 Cockpit，并让 {u} 管理虚拟机",
                "install QEMU/KVM, libvirt and Cockpit on an Ubuntu/Debian server and let {u} manage VMs",
                u=self.user,
            ),
            commands=hv.libvirt_install_commands(self.user, sudo=self.sudo),
            notes=hv.libvirt_notes(),
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        info = _os_release()
        family = {info.get("ID", "")} | set(info.get("ID_LIKE", "").split())
        if not family & {"debian", "ubuntu"}:
            return tr("不是 Debian/Ubuntu，只给出命令", "not Debian/Ubuntu; planned only")
        if not (hasattr(os, "geteuid") and os.geteuid() == 0):
            return tr("需要 root 权限，只给出命令", "needs root; planned only")
        if not self.consent:
            return tr(
                "会安装软件包并修改用户组：传 consent=True 才执行，否则只给出命令",
                "installs packages and changes groups: runs only with consent=True; planned only",
            )
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if not self.consent:
            raise ConsentRequired("install libvirt and cockpit", tr("传 consent=True", "pass consent=True"))
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        cmds = hv.libvirt_install_commands(self.user, sudo=self.sudo)
        for i, cmd in enumerate(cmds):
            ctx.run(cmd, timeout=1800, env=env)
            ctx.progress((i + 1) / len(cmds))
        return {"user": self.user}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        groups = hv.parse_id_groups(ctx.run(["id", "-nG", self.user], timeout=10, check=False).stdout)
        missing = [g for g in hv.LIBVIRT_GROUPS if g not in groups]
        enabled = ctx.run(
            ["systemctl", "is-enabled", "cockpit.socket"], timeout=10, check=False
        ).stdout.strip()
        virsh = ctx.run(["virsh", "--version"], timeout=10, check=False)
        facts = {
            "groups": sorted(groups),
            "cockpit_socket": enabled,
            "virsh_version": virsh.stdout.strip(),
        }
        if missing or enabled != "enabled" or virsh.returncode != 0:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "安装不完整：缺组 {g}，cockpit.socket={c}",
                    "incomplete: missing groups {g}, cockpit.socket={c}",
                    g=missing,
                    c=enabled,
                ),
                **facts,
                **evidence,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "libvirt 和 Cockpit 就绪；重新登录后在 https://<服务器IP>:9090 管理虚拟机",
                "libvirt and Cockpit ready; log in again, then manage VMs at https://<server-ip>:9090",
            ),
            **facts,
            **evidence,
        )


# ---------------------------------------------------------------------------------------------
# VirtualBox networking
# ---------------------------------------------------------------------------------------------
_SHOWVMINFO_TARGET = {
    "bridged": "bridgeadapter",
    "hostonly": "hostonlyadapter",
    "intnet": "intnet",
    "natnetwork": "nat-network",
}


class VirtualBoxNetwork(Step):
    """Attach adapter ``nic`` of VirtualBox VM ``vm`` to a network ``mode`` (``VBoxManage modifyvm``)."""

    check_id = "ch1.vbox.network"
    timeout = 60.0

    def __init__(self, vm: str, mode: str, nic: int = 1, target: str | None = None) -> None:
        self.vm = vm
        self.mode = mode
        self.nic = nic
        self.target = target

    def plan(self) -> Plan:
        argv = hv.vbox_modifyvm_argv(self.vm, self.mode, self.nic, self.target)
        notes = []
        if argv[4] != "none":
            m = hv.network_mode(self.mode)
            notes.append(f"{m.name}: {m.description}")
            notes.append(
                tr(
                    "连通性：虚拟机→外网 {a}，宿主机→虚拟机 {b}，虚拟机之间 {c}",
                    "reachability: VM→internet {a}, host→VM {b}, VM↔VM {c}",
                    a=m.vm_to_internet,
                    b=m.host_to_vm,
                    c=m.vm_to_vm,
                )
            )
        notes += hv.vbox_advice()
        notes.append(tr("虚拟机须处于关机状态", "the VM must be powered off"))
        return Plan(
            step=self.check_id,
            reason=tr(
                "把虚拟机 {vm} 的网卡 {n} 设为 {m}",
                "attach adapter {n} of VM {vm} to {m}",
                vm=self.vm,
                n=self.nic,
                m=argv[4],
            ),
            commands=[argv],
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if shutil.which("VBoxManage") is None:
            return tr(
                "没有安装 VirtualBox（VBoxManage），只给出命令",
                "VirtualBox (VBoxManage) is not installed; planned only",
            )
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        argv = hv.vbox_modifyvm_argv(self.vm, self.mode, self.nic, self.target)
        ctx.run(argv, timeout=60)
        return {"vm": self.vm, "nic": self.nic, "mode": argv[4]}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        info = hv.parse_showvminfo(
            ctx.run(["VBoxManage", "showvminfo", self.vm, "--machinereadable"], timeout=60).stdout
        )
        n = self.nic
        want = evidence["mode"]
        got = info.get(f"nic{n}")
        problems = []
        if got != want:
            problems.append(f"nic{n}={got!r}, expected {want!r}")
        key = _SHOWVMINFO_TARGET.get(want)
        if key and self.target is not None and info.get(f"{key}{n}") != self.target:
            problems.append(f"{key}{n}={info.get(f'{key}{n}')!r}, expected {self.target!r}")
        shown = {
            k: v
            for k, v in info.items()
            if k.endswith(str(n))
            and k.rstrip("0123456789")
            in {"nic", "bridgeadapter", "hostonlyadapter", "intnet", "nat-network", "nictype"}
        }
        if problems:
            return CheckResult.failed(self.check_id, "; ".join(problems), showvminfo=shown, **evidence)
        return CheckResult.passed(
            self.check_id,
            tr("网卡 {n} 已设为 {m}", "adapter {n} is set to {m}", n=n, m=want),
            showvminfo=shown,
            **evidence,
        )
