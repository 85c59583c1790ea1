"""Nested virtualization: can a hypervisor run inside this VM? (course 3.1, PVE inside VirtualBox), pure.

The course checks ``egrep -c '(vmx|svm)' /proc/cpuinfo`` in the PVE guest: ``grep -E`` (``egrep``
is its deprecated alias) with ``-c`` prints how many *lines* of ``/proc/cpuinfo`` mention the
Intel ``vmx`` or AMD ``svm`` flag, i.e. how many logical CPUs advertise hardware virtualization
(one ``flags`` line each). 0 means the virtual CPU hides VT-x/AMD-V: KVM cannot run inside, so PVE's
guests need ``kvm: no`` (QEMU's TCG emulation, much slower) unless nested VT-x/AMD-V is enabled on
the outer hypervisor. ``grep -c`` exits 1 when it counted 0 lines (it found nothing), 2 on errors:
:func:`parse_flag_count` reads the count from the exit status and output together.
"""

from __future__ import annotations

import shlex

from labkit.i18n import tr
from labkit.logic.hypervisors import validate_vm_name

__all__ = [
    "CPUINFO",
    "SEED_COMMAND",
    "build_flag_count",
    "nested_advice",
    "nested_meaning",
    "parse_flag_count",
    "vbox_nested_argv",
]

CPUINFO = "/proc/cpuinfo"
#: The course's command, as printed in the seed (a shell line: quotes, deprecated ``egrep``).
SEED_COMMAND = "egrep -c '(vmx|svm)' /proc/cpuinfo"


def build_flag_count(path: str = CPUINFO) -> list[str]:
    """``grep -Ec '(vmx|svm)' /proc/cpuinfo`` as argv: no shell, so the pattern needs no quotes."""
    return ["grep", "-Ec", "(vmx|svm)", path]


def parse_flag_count(returncode: int, stdout: str, stderr: str = "") -> int | None:
    """The count ``grep -c`` printed: exit 0 (some lines) or 1 (none, prints ``0``); ``None`` for
    exit 2 or anything else (the file could not be read; the reason is in ``stderr``)."""
    text = stdout.strip()
    if returncode in (0, 1) and text.isdigit():
        return int(text)
    return None


def vbox_nested_argv(vm: str) -> list[str]:
    """``VBoxManage modifyvm <vm> --nested-hw-virt on`` (on the *outer* host, with the VM powered off)."""
    return ["VBoxManage", "modifyvm", validate_vm_name(vm), "--nested-hw-virt", "on"]


def nested_meaning(count: int | None, kvm_usable: bool | None, arch: str = "x86_64") -> str:
    """What the flag count and the KVM verdict (``None``: not tested) mean for PVE in this machine."""
    if count is None:
        return tr("没能读出 CPU 标志的计数", "the CPU flag count could not be read")
    if not arch.startswith(("x86", "i686", "amd64")):
        return tr(
            "{a} 处理器没有 vmx/svm 标志（它们是 x86 的），计数 {n} 说明不了虚拟化支持；看 KVM 是否可用",
            "{a} CPUs have no vmx/svm flags (they are x86 flags): the count {n} says nothing; KVM's "
            "verdict does",
            a=arch,
            n=count,
        )
    if count > 0 and kvm_usable:
        return tr(
            "{n} 个逻辑 CPU 报告了 vmx/svm，且 KVM 可用：PVE 的虚拟机可以用 KVM 硬件加速",
            "{n} logical CPUs report vmx/svm and KVM works: PVE's guests can use KVM acceleration",
            n=count,
        )
    if count > 0:
        return tr(
            "{n} 个逻辑 CPU 报告了 vmx/svm，但 KVM 在这里不可用（见 KVM 原因）：PVE 的虚拟机要用 kvm: no",
            "{n} logical CPUs report vmx/svm but KVM is not usable here (see the KVM reason): PVE's "
            "guests need kvm: no",
            n=count,
        )
    return tr(
        "计数为 0：虚拟 CPU 没有提供 VT-x/AMD-V（嵌套虚拟化未开启），{k}。在这样的机器里装 PVE，"
        "它的虚拟机只能用 kvm: no 以 QEMU 软件模拟（TCG）运行，慢很多；LXC 容器不受影响",
        "the count is 0: the virtual CPU offers no VT-x/AMD-V (nested virtualization is off) and {k}. "
        "PVE installed in such a machine can run its guests only with kvm: no, in QEMU's software "
        "emulation (TCG), much slower; LXC containers are not affected",
        k=tr("KVM 未测试", "KVM was not tested")
        if kvm_usable is None
        else tr("KVM 可用（意外）", "KVM works (unexpectedly)")
        if kvm_usable
        else tr("KVM 不可用", "KVM is not usable"),
    )


def nested_advice(count: int | None, kvm_usable: bool, vm: str = "PVE") -> list[str]:
    """What to do, in order of preference: nested VT-x/AMD-V on the outer host, else ``kvm: no``."""
    if count and kvm_usable:
        return []
    return [
        tr(
            "首选：在外层宿主机上关掉虚拟机，开启嵌套 VT-x/AMD-V：VirtualBox 设置 → 系统 → 处理器 → "
            "“启用嵌套 VT-x/AMD-V”，或 {c}",
            "preferred: on the outer host, power the VM off and enable nested VT-x/AMD-V: VirtualBox "
            "Settings → System → Processor → 'Enable Nested VT-x/AMD-V', or {c}",
            c=shlex.join(vbox_nested_argv(vm)),
        ),
        tr(
            "否则：在 PVE 虚拟机配置的主段写 kvm: no（第 1 章的「PVE：在配置中禁用 KVM」步骤，保留备份），"
            "再重启该虚拟机",
            "otherwise: set kvm: no in the main section of the PVE guest's config (chapter 1's 'PVE: "
            "disable KVM in the VM config' step, which keeps a backup), then restart that guest",
        ),
        tr(
            "课程里的 {s} 需要 shell（引号、egrep）；labkit 不经 shell 运行 {a}，"
            "计数为 0 时 grep 以 1 退出，不算出错",
            "the course's {s} needs a shell (quotes, egrep); labkit runs {a} without one; grep exits 1 "
            "when the count is 0, which is not an error",
            s=SEED_COMMAND,
            a=shlex.join(build_flag_count()),
        ),
    ]
