"""Why a chapter-1 VM command would fail or misbehave, said *before* QEMU starts.

:func:`validate_spec` concatenates one named rule per concern (size, GIC, pointer authentication,
accelerator, machine, firmware, display, network, boot, files); each returns
:class:`~labkit.findings.Finding` items with a stable ``code`` and ``field`` = the spec field the
student sets. How much memory and how many vCPUs a host can carry is not judged here but by the one
sizing policy, :mod:`labkit.logic.sizing`. The facts behind each rule (QEMU 7.2 on Debian 12
unless a source is named) are noted on the rule.
"""

from __future__ import annotations

from collections.abc import Callable

from labkit.findings import Finding
from labkit.i18n import tr
from labkit.logic.host import HostFacts
from labkit.logic.qemu_spec import GICV2_MAX_CPUS, VMSpec, memory_bytes, norm_arch
from labkit.logic.sizes import format_size
from labkit.logic.sizing import cores_findings, memory_findings

__all__ = ["machine_cpu_findings", "size_findings", "validate_spec"]

Version = tuple[int, int, int]


def _memory_spelling(spec: VMSpec) -> list[Finding]:
    canonical = format_size(memory_bytes(spec.memory))
    if spec.memory.strip() == canonical:
        return []
    msg = tr(
        "写作 {m}，命令行里用 QEMU 接受的 -m {c}（QEMU 不认 8GB 这种写法，纯数字表示 MiB）",
        "written as {m}; the command uses -m {c}, a spelling QEMU accepts (QEMU rejects '8GB', and a "
        "bare number means MiB)",
        m=spec.memory,
        c=canonical,
    )
    return [Finding("memory", "info", msg, code="memory.spelling")]


def size_findings(host: HostFacts, memory: int, smp: int, *, tcg: bool) -> list[Finding]:
    """The sizing policy's memory and core rules for ``memory`` bytes and ``smp`` vCPUs on ``host``,
    as problems of a command (no "ok" lines). Fields are ``memory`` and ``smp``."""
    found = memory_findings(host, memory, field="memory")
    found += cores_findings(host, smp, field="smp", tcg=tcg)
    return [f for f in found if f.severity != "info"]


def _size_on_host(spec: VMSpec, host: HostFacts) -> list[Finding]:
    return size_findings(host, memory_bytes(spec.memory), spec.smp, tcg=spec.accel == "tcg")


def machine_cpu_findings(
    arch: str, machine: str | None, smp: int, gic_version: str | None = None, *, gic_settable: bool = True
) -> list[Finding]:
    """``-M virt`` uses GICv2 by default, which caps the guest at 8 vCPUs; ``gic-version=3`` lifts it.

    ``gic_settable=False`` where the command has no GIC choice (the tiny guest's boot line): the fix
    then only lowers the count.
    """
    if not (arch == "aarch64" and machine == "virt" and smp > GICV2_MAX_CPUS and gic_version in (None, "2")):
        return []
    msg = tr(
        "virt 机器默认的 GICv2 最多支持 {m} 个 vCPU（这里 {n} 个），"
        "QEMU 会报 “exceeds max CPUs supported by machine”",
        "the virt board's default GICv2 supports at most {m} vCPUs (here {n}); QEMU reports "
        "'exceeds max CPUs supported by machine'",
        m=GICV2_MAX_CPUS,
        n=smp,
    )
    if gic_settable:
        fix = tr("用 -smp 8，或设 gic_version='3'", "use -smp 8, or set gic_version='3'")
    else:
        fix = tr("vCPU 数最多 {m}", "use at most {m} vCPUs", m=GICV2_MAX_CPUS)
    return [Finding("smp", "error", msg, fix, code="smp.gicv2_max")]


def _gic(spec: VMSpec) -> list[Finding]:
    return machine_cpu_findings(spec.arch, spec.machine_type, spec.smp, spec.gic_version)


def _pauth_on(spec: VMSpec, ver: Version) -> list[Finding]:
    """``pauth_impdef=True``: the architecture, the QEMU version and the CPU model must allow it.

    ``pauth-impdef`` is a property of ``-cpu max`` only (``cortex-a57`` … answer "Property
    '<cpu>-arm-cpu.pauth-impdef' not found"). It appeared in QEMU 6.0 (commit eb94284d0812); QEMU
    10.0 made the IMPDEF algorithm the default for ``max``. It makes TCG several times faster.
    """
    if spec.arch != "aarch64":
        msg = tr("pauth-impdef 是 Arm CPU 的属性", "pauth-impdef is a property of Arm CPUs")
        fix = tr("x86_64 请设 pauth_impdef=False", "set pauth_impdef=False for x86_64")
        return [Finding("pauth_impdef", "error", msg, fix, code="pauth_impdef.arch")]
    if ver < (6, 0, 0):
        msg = tr(
            "QEMU {v} 还没有 pauth-impdef（QEMU 6.0 才加入）",
            "QEMU {v} has no pauth-impdef yet (added in QEMU 6.0)",
            v=".".join(map(str, ver)),
        )
        fix = tr(
            "升级 QEMU，或设 pauth_impdef=False（会慢很多）",
            "upgrade QEMU, or set pauth_impdef=False (much slower)",
        )
        return [Finding("pauth_impdef", "error", msg, fix, code="pauth_impdef.qemu_too_old")]
    if spec.cpu != "max":
        fix = tr("用 cpu='max'，或设 pauth_impdef=False", "use cpu='max', or set pauth_impdef=False")
        if ver < (8, 0, 0):
            msg = tr(
                "pauth-impdef 只是 -cpu max 的属性：QEMU 会报 Property {p} not found",
                "pauth-impdef is a property of -cpu max only: QEMU says Property {p} not found",
                p=f"'{spec.cpu}-arm-cpu.pauth-impdef'",
            )
            return [Finding("cpu", "error", msg, fix, code="cpu.pauth_not_found")]
        msg = tr(
            "较新的 QEMU 只给实现了指针认证的 CPU 型号提供 pauth-impdef；{c} 可能没有",
            "newer QEMU offers pauth-impdef only on CPU models with pointer authentication; {c} may "
            "not have it",
            c=spec.cpu,
        )
        fix = tr("用 cpu='max' 最稳妥", "cpu='max' is the safe choice")
        return [Finding("cpu", "warning", msg, fix, code="cpu.pauth_maybe_missing")]
    if ver >= (10, 0, 0):
        msg = tr(
            "QEMU 10.0 起 -cpu max 默认就用 IMPDEF 算法，pauth-impdef=on 多余但无害",
            "since QEMU 10.0 -cpu max uses the IMPDEF algorithm by default; pauth-impdef=on is "
            "redundant but harmless",
        )
        return [Finding("pauth_impdef", "info", msg, code="pauth_impdef.redundant")]
    return []


def _pauth(spec: VMSpec, ver: Version) -> list[Finding]:
    if spec.pauth_impdef:
        return _pauth_on(spec, ver)
    if not (spec.arch == "aarch64" and spec.accel == "tcg" and spec.cpu == "max"):
        return []
    msg = tr(
        "-cpu max 不加 pauth-impdef=on 时，TCG 要模拟很慢的 QARMA 指针认证算法",
        "without pauth-impdef=on, TCG emulates the slow architected QARMA pointer authentication of -cpu max",
    )
    fix = tr(
        "设 pauth_impdef=True（内核启动快好几倍）",
        "set pauth_impdef=True (kernels boot several times faster)",
    )
    severity = "warning" if ver < (10, 0, 0) else "info"
    return [Finding("pauth_impdef", severity, msg, fix, code="pauth_impdef.slow")]


def _kvm(spec: VMSpec, host: HostFacts) -> list[Finding]:
    host_arch = norm_arch(host.arch)
    if host_arch and host_arch != spec.arch:
        msg = tr(
            "KVM 只能运行与宿主机同架构的客户机（宿主机 {h}，客户机 {g}）",
            "KVM only runs guests of the host's architecture (host {h}, guest {g})",
            h=host.arch,
            g=spec.arch,
        )
        fix = tr("跨架构请用 accel='tcg'", "use accel='tcg' for a foreign architecture")
        return [Finding("accel", "error", msg, fix, code="accel.foreign_arch")]
    if host.kvm_usable:
        return []
    msg = tr("这台机器上 KVM 不可用：{r}", "KVM is not usable on this host: {r}", r=host.kvm_reason)
    fix = tr("用 accel='tcg'（软件模拟，较慢）", "use accel='tcg' (software emulation, slower)")
    severity = "error" if host.kvm_known else "warning"
    return [Finding("accel", severity, msg, fix, code="accel.kvm_unusable")]


def _accel(spec: VMSpec, host: HostFacts) -> list[Finding]:
    """Does the accelerator exist on this host, and would a faster one work?"""
    if spec.accel == "kvm":
        return _kvm(spec, host)
    if spec.accel in ("hvf", "whpx"):
        native = {"hvf": "Darwin", "whpx": "Windows"}[spec.accel]
        if host.os_name == native:
            return []
        msg = tr("{a} 只在 {o} 上有", "{a} exists only on {o}", a=spec.accel, o=native)
        fix = tr("Linux 上用 kvm 或 tcg", "on Linux use kvm or tcg")
        return [Finding("accel", "error", msg, fix, code="accel.not_native")]
    if norm_arch(host.arch) == spec.arch and host.kvm_usable:
        msg = tr(
            "同架构且 KVM 可用：accel='kvm' 会快得多",
            "same architecture and KVM works: accel='kvm' would be much faster",
        )
        return [Finding("accel", "info", msg, code="accel.kvm_faster")]
    return []


def _cpu_and_machine(spec: VMSpec) -> list[Finding]:
    found = []
    if spec.cpu == "host" and spec.accel not in ("kvm", "hvf"):
        msg = tr("-cpu host 只能配合 KVM/HVF 使用", "-cpu host works only with KVM/HVF")
        fix = tr("TCG 下用 cpu='max'", "with TCG use cpu='max'")
        found.append(Finding("cpu", "error", msg, fix, code="cpu.host_needs_kvm"))
    if spec.arch == "aarch64" and spec.machine_type is None:
        msg = tr("qemu-system-aarch64 没有默认机器类型", "qemu-system-aarch64 has no default machine")
        fix = tr("用 machine='virt'", "use machine='virt'")
        found.append(Finding("machine", "error", msg, fix, code="machine.missing"))
    if spec.arch == "x86_64" and spec.machine == "virt":
        msg = tr("x86_64 没有 virt 机器", "x86_64 has no 'virt' machine")
        fix = tr("不写（默认 pc）或用 q35", "leave it unset (pc) or use q35")
        found.append(Finding("machine", "error", msg, fix, code="machine.no_virt_on_x86"))
    return found


def _firmware(spec: VMSpec) -> list[Finding]:
    if not (spec.arch == "aarch64" and spec.efi is None and spec.kernel is None):
        return []
    msg = tr(
        "aarch64 virt 机器没有 BIOS：没有 efi.img 也没有 -kernel 就什么都不会启动",
        "the aarch64 virt board has no built-in BIOS: without efi.img or a kernel nothing boots",
    )
    fix = tr("设 efi='efi.img'（64 MiB 的 UEFI 固件）", "set efi='efi.img' (the 64 MiB UEFI firmware)")
    return [Finding("efi", "error", msg, fix, code="efi.missing")]


def _display(spec: VMSpec) -> list[Finding]:
    """Servers have no GUI module: without ``-display none`` QEMU serves VNC on 127.0.0.1:5900."""
    if spec.display not in ("default", "gtk", "sdl"):
        return []
    msg = tr(
        "服务器上没有 QEMU 图形界面模块：QEMU 会提示装 qemu-system-gui，然后改在 127.0.0.1:5900 开 VNC",
        "servers have no QEMU GUI module: QEMU suggests qemu-system-gui and serves the screen over VNC "
        "on 127.0.0.1:5900 instead",
    )
    fix = tr(
        "在服务器或笔记本里用 display='none' 或 'nographic'；桌面上装 qemu-system-gui",
        "on a server or in a notebook use display='none' or 'nographic'; on a desktop install "
        "qemu-system-gui",
    )
    return [Finding("display", "warning", msg, fix, code="display.no_gui")]


def _network(spec: VMSpec) -> list[Finding]:
    """``-nic user,model=virtio-net-pci`` loads ``efi-virtio.rom`` from ``ipxe-qemu``, only
    *recommended* by Debian's QEMU; ``romfile=`` on ``-device`` starts without it. With a disk that
    does not boot, UEFI tries PXE/HTTP boot for more than 150 s."""
    found = []
    if spec.nic == "user" and spec.nic_rom and spec.nic_model.startswith("virtio-net"):
        msg = tr(
            "-nic user,model=virtio-net-pci 需要 ipxe-qemu 包里的 efi-virtio.rom；"
            "用 --no-install-recommends 装的 QEMU 会报 “failed to find romfile”",
            "-nic user,model=virtio-net-pci needs efi-virtio.rom from the ipxe-qemu package; a QEMU "
            "installed with --no-install-recommends stops with 'failed to find romfile'",
        )
        fix = tr(
            "sudo apt-get install ipxe-qemu，或设 nic_rom=False",
            "sudo apt-get install ipxe-qemu, or set nic_rom=False",
        )
        found.append(Finding("nic", "info", msg, fix, code="nic.romfile"))
    if spec.nic == "user" and spec.efi is not None and spec.iso is None and spec.kernel is None:
        msg = tr(
            "如果磁盘不能启动，UEFI 会先尝试 PXE/HTTP 网络启动，超过 150 秒才放弃",
            "if the disk does not boot, UEFI first tries PXE/HTTP network boot for over 150 s",
        )
        fix = tr("不需要网络启动时用 nic='none'", "use nic='none' when no network boot is wanted")
        found.append(Finding("nic", "info", msg, fix, code="nic.pxe_wait"))
    return found


def _boot(spec: VMSpec) -> list[Finding]:
    found = []
    fix = tr("同时设置 kernel", "set kernel too")
    if spec.initrd is not None and spec.kernel is None:
        msg = tr("有 initrd 却没有 kernel", "initrd given without a kernel")
        found.append(Finding("initrd", "error", msg, fix, code="initrd.no_kernel"))
    if spec.append is not None and spec.kernel is None:
        msg = tr("有 append 却没有 kernel", "append given without a kernel")
        found.append(Finding("append", "error", msg, fix, code="append.no_kernel"))
    if not spec.disks and spec.iso is None and spec.kernel is None:
        msg = tr(
            "没有磁盘、ISO 或内核：虚拟机没有东西可启动",
            "no disk, ISO or kernel: the guest has nothing to boot",
        )
        fix = tr("加一块 Disk 或 iso", "add a Disk or an iso")
        found.append(Finding("disks", "warning", msg, fix, code="disks.nothing_to_boot"))
    return found


def spec_files(spec: VMSpec) -> list[tuple[str, str]]:
    """``(field, path)`` of every file the command line opens."""
    files: list[tuple[str, str]] = []
    if spec.efi is not None:
        files.append(("efi", spec.efi))
    if spec.iso is not None:
        files.append(("iso", spec.iso))
    files += [("disks", d.path) for d in spec.disks]
    files += [(name, getattr(spec, name)) for name in ("kernel", "initrd") if getattr(spec, name) is not None]
    return files


def _files(spec: VMSpec, path_exists: Callable[[str], bool]) -> list[Finding]:
    fix = tr("先创建/下载它，或改正路径", "create or download it first, or fix the path")
    return [
        Finding(
            name,
            "warning",
            tr("文件 {p} 现在不存在", "file {p} does not exist (yet)", p=path),
            fix,
            code="file.missing",
        )
        for name, path in spec_files(spec)
        if not path_exists(path)
    ]


def validate_spec(
    spec: VMSpec,
    host: HostFacts | None,
    qemu_version: tuple[int, ...] = (7, 2, 0),
    *,
    path_exists: Callable[[str], bool] | None = None,
) -> list[Finding]:
    """Everything that would make ``spec`` fail or misbehave on ``host`` with QEMU ``qemu_version``.

    Pure: ``path_exists`` (e.g. ``os.path.exists``) is how the caller lets it look at files, and
    ``host=None`` skips the rules that need host facts (a plan made before probing). An empty list
    means "no known problem", not "guaranteed to boot": the dry start in
    :class:`labkit.steps.vm.PlanVM` asks the real QEMU.
    """
    major, minor, patch = (*qemu_version, 0, 0, 0)[:3]
    ver: Version = (int(major), int(minor), int(patch))
    found = _memory_spelling(spec)
    if host is not None:
        found += _size_on_host(spec, host)
    found += _gic(spec) + _pauth(spec, ver)
    if host is not None:
        found += _accel(spec, host)
    found += _cpu_and_machine(spec) + _firmware(spec) + _display(spec) + _network(spec) + _boot(spec)
    if path_exists is not None:
        found += _files(spec, path_exists)
    return found
