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
import uuid
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import CommandTimeout, ConsentRequired
from labkit.findings import Finding
from labkit.i18n import consent_hint, tr
from labkit.logic import hypervisors as hv
from labkit.logic.host import HostFacts
from labkit.logic.qemu_output import qemu_error_line
from labkit.logic.qemu_system import (
    QMP_QUIT,
    DryStart,
    VMSpec,
    build_qemu_argv,
    device_names_in,
    dry_start,
    explain_qemu_stderr,
    help_commands,
    help_findings,
    parse_cpu_help,
    parse_device_help,
    parse_machine_help,
    qemu_version_tuple,
    validate_spec,
)
from labkit.logic.tools import TOOL_PACKAGES
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.host import ContextRunner, collect_host_facts, read_os_release
from labkit.steps.kvmprobe import kvm_probe_argv

__all__ = ["HyperVCommands", "LibvirtInstall", "PlanVM", "VirtualBoxNetwork"]


def _unique(findings: list[Finding]) -> list[Finding]:
    """Drop repeats (a missing device is reported by ``-device help`` and by the dry start)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        if (f.field, f.message) not in seen:
            seen.add((f.field, f.message))
            out.append(f)
    return out


class PlanVM(Step):
    """Plan a QEMU command line and prove that the installed QEMU accepts it.

    ``host``: facts to judge the size and accelerator against (the panel passes the cheap facts it
    probed once); without them ``run`` reads them, and tests KVM for real when ``accel='kvm'``.
    """

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
        #: The dry start's stand-in media: named now (so the plan shows the exact paths), created
        #: by ``run``, removed by ``cleanup``.
        self.scratch = os.path.join(tempfile.gettempdir(), f"labkit-vm-{uuid.uuid4().hex[:12]}")
        self._made_scratch = False

    def _probe_kvm(self) -> bool:
        return self.spec.accel == "kvm" and (self.host is None or not self.host.kvm_known)

    def _dry(self) -> DryStart:
        spec = self.spec
        kernel_exists = spec.kernel is not None and (
            os.path.isfile(spec.kernel) and (spec.initrd is None or os.path.isfile(spec.initrd))
        )
        efi_exists = spec.efi is not None and os.path.isfile(spec.efi)
        return dry_start(spec, self.scratch, efi_exists=efi_exists, kernel_exists=kernel_exists)

    # -- plan ----------------------------------------------------------------------------------
    def plan(self) -> Plan:
        spec = self.spec
        notes = [tr("虚拟机命令：", "the VM command: ") + shlex.join(build_qemu_argv(spec))]
        if self.dry_start:
            notes.append(
                tr(
                    "试启动：同样的选项，换成 {d} 中的小替身磁盘，暂停在第一条指令前（-S），由 QMP 让它退出",
                    "dry start: the same options with small stand-in media in {d}, paused before the "
                    "first instruction (-S) and told over QMP to quit",
                    d=self.scratch,
                )
            )
        notes += [str(f) for f in validate_spec(spec, self.host)]
        probes = list(help_commands(spec.binary).values())
        if self._probe_kvm():
            probes.append(kvm_probe_argv())
        return Plan(
            step=self.check_id,
            reason=tr(
                "用 {b} 启动 {a} 虚拟机（{m} 内存，{n} 个 vCPU，{acc}）",
                "start an {a} guest with {b} ({m} memory, {n} vCPUs, {acc})",
                b=spec.binary,
                a=spec.arch,
                m=spec.memory,
                n=spec.smp,
                acc=spec.accel,
            ),
            commands=self._dry().commands() if self.dry_start else [],
            notes=notes,
            probes=probes,
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
        if self.host is not None and not self._probe_kvm():
            return self.host
        return collect_host_facts(ContextRunner(ctx), probe_kvm=self._probe_kvm(), tools=())

    def _ask_qemu(self, ctx: RunContext, evidence: dict[str, Any]) -> list[Finding]:
        """Version and ``help`` lists of the installed QEMU: does it have what the command uses?"""
        spec = self.spec
        asks = help_commands(spec.binary)
        version_text = ctx.run(asks["version"], timeout=15).stdout
        version = qemu_version_tuple(version_text) or (0, 0, 0)
        found = validate_spec(spec, self._host_facts(ctx), version, path_exists=os.path.exists)
        ctx.progress(0.1)
        devices = parse_device_help(ctx.run(asks["device"], timeout=15).stdout)
        wanted = device_names_in(build_qemu_argv(spec))
        found += help_findings(
            spec.binary,
            machine=spec.machine_type,
            cpu=spec.cpu,
            wanted_devices=wanted,
            machines=parse_machine_help(ctx.run(asks["machine"], timeout=15).stdout),
            cpus=parse_cpu_help(ctx.run(asks["cpu"], timeout=15).stdout),
            devices=devices,
        )
        evidence.update(
            qemu_version=".".join(map(str, version)),
            qemu_version_text=version_text.strip().splitlines()[0] if version_text.strip() else "",
            command=shlex.join(build_qemu_argv(spec)),
            devices_checked={d: d in devices for d in wanted},
        )
        return found

    def run(self, ctx: RunContext) -> dict[str, Any]:
        evidence: dict[str, Any] = {}
        found = self._ask_qemu(ctx, evidence)
        ctx.progress(0.4)
        if self.dry_start:
            found += self._dry_start(ctx, evidence)
        ctx.progress(1.0)
        evidence["findings"] = [f.to_dict() for f in _unique(found)]
        return evidence

    def _dry_start(self, ctx: RunContext, evidence: dict[str, Any]) -> list[Finding]:
        """Start the exact machine paused, with stand-in media, and let QMP tell it to quit."""
        dry = self._dry()
        os.mkdir(self.scratch, 0o700)  # fails if it exists: never reuse someone else's directory
        self._made_scratch = True
        for argv in dry.stand_ins:
            ctx.run(list(argv), timeout=30)
        notes: list[Finding] = []
        if dry.efi_stand_in:
            msg = tr(
                "试启动用了 64 MiB 的空白固件代替 {p}",
                "the dry start used a blank 64 MiB stand-in for {p}",
                p=self.spec.efi,
            )
            notes.append(Finding("efi", "info", msg, code="efi.stand_in"))
        Path(f"{dry.qmp_pipe}.in").write_text(QMP_QUIT, encoding="utf-8")
        Path(f"{dry.qmp_pipe}.out").write_text("", encoding="utf-8")
        evidence["dry_start"] = shlex.join(dry.argv)
        try:
            done = ctx.run(list(dry.argv), timeout=self.qemu_timeout, check=False)
        except CommandTimeout as exc:
            evidence["dry_start_returncode"] = None
            msg = tr(
                "QEMU 在 {t} 秒内没有退出（卡住了？）",
                "QEMU did not exit within {t} s (hung?)",
                t=self.qemu_timeout,
            )
            return [*notes, Finding("qemu", "error", msg, exc.stderr[-500:], code="qemu.hung")]
        evidence["dry_start_returncode"] = done.returncode
        evidence["dry_start_stderr"] = done.stderr[-2000:]
        qmp_out = Path(f"{dry.qmp_pipe}.out").read_text(encoding="utf-8", errors="replace")
        evidence["dry_start_accepted"] = done.returncode == 0 and "host-qmp-quit" in qmp_out
        if done.returncode == 0:
            return notes
        said = qemu_error_line(done.stderr)
        if said:
            evidence["qemu_error"] = said
        found = explain_qemu_stderr(done.stderr) or [
            Finding(
                "qemu",
                "error",
                tr("QEMU 以状态 {rc} 退出", "QEMU exited with status {rc}", rc=done.returncode),
                (done.stderr or done.stdout).strip()[-500:],
                code="qemu.exit",
            )
        ]
        return notes + found

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        findings = evidence.get("findings", [])
        errors = [f for f in findings if f["severity"] == "error"]
        if errors:
            first = errors[0]
            msg = tr(
                "{n} 个问题会让 QEMU 无法启动；第一个：{m}",
                "{n} problem(s) stop QEMU; first: {m}",
                n=len(errors),
                m=f"{first['field']}: {first['message']}",
            )
            if evidence.get("qemu_error"):  # QEMU's own words from the dry start, next to labkit's
                msg += tr("。QEMU 的原话：{q}", ". QEMU said: {q}", q=evidence["qemu_error"])
            return CheckResult.failed(self.check_id, msg, **evidence)
        warnings = sum(1 for f in findings if f["severity"] == "warning")
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
        if self._made_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self._made_scratch = False


# ---------------------------------------------------------------------------------------------
# Hyper-V (Windows)
# ---------------------------------------------------------------------------------------------
#: What the Hyper-V check reads afterwards: the boot entry's hypervisorlaunchtype.


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
            notes=[
                tr(
                    "课程中的写法（管理员 PowerShell）：",
                    "as the course writes them (administrator PowerShell):",
                ),
                *(shlex.join(c) for c in hv.seed_hyperv_commands(self.action)),
                *hv.hyperv_notes(self.action),
            ],
            probes=[hv.bcdedit_enum_argv()],
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
                tr("停用 Hyper-V", "disable Hyper-V")
                if self.action == "disable"
                else tr("启用 Hyper-V", "enable Hyper-V"),
                tr(
                    "如果同意，请{c}（之后需要重启），再运行一次",
                    "to go ahead, {c} (a reboot follows) and run again",
                    c=consent_hint("consent"),
                ),
                keyword="consent",
            )
        for cmd in hv.hyperv_commands(self.action):
            ctx.run(cmd, timeout=600)
        return {"action": self.action}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        done = ctx.run(hv.bcdedit_enum_argv(), timeout=30, check=False)
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
            probes=list(hv.libvirt_check_argv(self.user).values()),
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        info = read_os_release()
        family = {info.get("ID", "")} | set(info.get("ID_LIKE", "").split())
        if not family & {"debian", "ubuntu"}:
            return tr("不是 Debian/Ubuntu，只给出命令", "not Debian/Ubuntu; planned only")
        if not (hasattr(os, "geteuid") and os.geteuid() == 0):
            return tr("需要 root 权限，只给出命令", "needs root; planned only")
        if not self.consent:
            return tr(
                "会安装软件包并修改用户组：{c}才执行，否则只给出命令",
                "installs packages and changes groups: runs only if you {c}; planned only",
                c=consent_hint("consent"),
            )
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if not self.consent:
            raise ConsentRequired(
                tr("安装 libvirt 和 Cockpit", "install libvirt and Cockpit"), keyword="consent"
            )
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        cmds = hv.libvirt_install_commands(self.user, sudo=self.sudo)
        for i, cmd in enumerate(cmds):
            ctx.run(cmd, timeout=1800, env=env)
            ctx.progress((i + 1) / len(cmds))
        return {"user": self.user}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        probe = hv.libvirt_check_argv(self.user)
        id_groups, cockpit, virsh_version = probe["groups"], probe["cockpit"], probe["virsh"]
        groups = hv.parse_id_groups(ctx.run(id_groups, timeout=10, check=False).stdout)
        missing = [g for g in hv.LIBVIRT_GROUPS if g not in groups]
        enabled = ctx.run(cockpit, timeout=10, check=False).stdout.strip()
        virsh = ctx.run(virsh_version, timeout=10, check=False)
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
            probes=[hv.vbox_showvminfo_argv(self.vm)],
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
        info = hv.parse_showvminfo(ctx.run(hv.vbox_showvminfo_argv(self.vm), timeout=60).stdout)
        n = self.nic
        want = evidence["mode"]
        got = info.get(f"nic{n}")
        problems = []
        if got != want:
            problems.append(
                tr("nic{n}={g!r}，应为 {w!r}", "nic{n}={g!r}, expected {w!r}", n=n, g=got, w=want)
            )
        key = _SHOWVMINFO_TARGET.get(want)
        if key and self.target is not None and info.get(f"{key}{n}") != self.target:
            problems.append(
                tr(
                    "{k}{n}={g!r}，应为 {w!r}",
                    "{k}{n}={g!r}, expected {w!r}",
                    k=key,
                    n=n,
                    g=info.get(f"{key}{n}"),
                    w=self.target,
                )
            )
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
