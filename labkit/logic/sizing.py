"""How big a virtual machine this host can carry: the one sizing policy of labkit.

The course text (chapter 1.3.5) says four processor cores are enough for simple daily use, and an
8 GB VM needs a host with at least 16 GB, "otherwise there will be obvious lag". As rules, for any
host and any VM: :func:`memory_findings`, :func:`cores_findings`, :func:`disk_findings` (each
returns :class:`~labkit.findings.Finding` items with stable codes).

:func:`recommend` picks the largest VM that keeps every rule quiet. The host check, the VM command
builder (:func:`labkit.logic.qemu_rules.validate_spec`), its defaults and ``labkit doctor`` all ask
this module. Pure: works on :class:`~labkit.logic.host.HostFacts`, no probing here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from labkit.errors import InvalidField
from labkit.findings import Finding, worst
from labkit.i18n import tr
from labkit.logic.host import HostFacts
from labkit.logic.sizes import format_size, human_size

__all__ = [
    "CH1_GOOD_DISK",
    "CH1_MIN_DISK",
    "COURSE_QEMU_SMP",
    "COURSE_VM_CORES",
    "COURSE_VM_MEMORY",
    "MEMORY_HEADROOM",
    "MEMORY_STEP",
    "MIN_VM_MEMORY",
    "Sizing",
    "VmSize",
    "advise",
    "cores_findings",
    "disk_findings",
    "memory_findings",
    "recommend",
    "vm_defaults",
]

GiB = 2**30
MiB = 2**20
#: The course's suggested VirtualBox VM: 4 cores, 8 GB.
COURSE_VM_CORES = 4
COURSE_VM_MEMORY = 8 * GiB
#: The course's QEMU command line uses ``-smp 8``.
COURSE_QEMU_SMP = 8
#: Memory left to the host: a guest may use at most the host's RAM minus this.
MEMORY_HEADROOM = 1 * GiB
#: Recommended memory is a multiple of this (what VirtualBox's slider and ``-m`` take comfortably).
MEMORY_STEP = 256 * MiB
#: Smallest VM labkit recommends; below this no current OS installer runs.
MIN_VM_MEMORY = 256 * MiB
#: Free disk below which chapter 1 cannot even write its firmware image and small disks.
CH1_MIN_DISK = 2 * GiB
#: Free disk that leaves room to install a real OS into the course's 120G (sparse) qcow2 disk.
CH1_GOOD_DISK = 20 * GiB

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class VmSize:
    cores: int
    memory_bytes: int

    def __iter__(self) -> Iterator[int]:  # lets callers write advise(host, *recommend(host))
        return iter((self.cores, self.memory_bytes))

    def __str__(self) -> str:
        return f"{self.cores} vCPU, {human_size(self.memory_bytes)}"


@dataclass(frozen=True)
class Sizing:
    """All findings for one requested VM on one host, plus what labkit would pick instead."""

    requested: VmSize
    findings: tuple[Finding, ...]
    recommended: VmSize | None  # None: the host cannot satisfy the rules even for a minimal VM

    @property
    def level(self) -> Level:
        """``ok`` when no finding is worse than ``info``, else the worst severity."""
        w = worst(self.findings)
        return "ok" if w in (None, "info") else w  # type: ignore[return-value]

    def to_payload(self) -> dict[str, Any]:
        rec = self.recommended
        return {
            "level": self.level,
            "requested": {"cores": self.requested.cores, "memory_bytes": self.requested.memory_bytes},
            "recommended": None if rec is None else {"cores": rec.cores, "memory_bytes": rec.memory_bytes},
            "recommended_text": None if rec is None else str(rec),
            "findings": [f.to_dict() for f in self.findings],
        }


def _known(value: object) -> int:
    """A host fact as a usable number (0 when missing or not a number)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def memory_findings(host: HostFacts, vm_memory_bytes: int, *, field: str = "vm_memory") -> list[Finding]:
    """The memory rule. ``field`` is the label the student typed the size into.

    Host RAM ≥ 2 × VM RAM is comfortable (``info``); more than half of the host's RAM makes the
    host swap and stutter (``warning``); more than the host's RAM minus :data:`MEMORY_HEADROOM`
    cannot run: QEMU cannot allocate it or the OOM killer ends it (``error``).
    """
    host_mem = _known(host.memory_bytes)
    if not host_mem:
        msg = tr("无法得知宿主机内存大小", "host memory size is unknown")
        return [Finding(field, "warning", msg, code="memory.unknown")]
    vm_h, host_h = human_size(vm_memory_bytes), human_size(host_mem)
    if 2 * vm_memory_bytes <= host_mem:
        msg = tr(
            "虚拟机内存 {vm} 不超过宿主机内存 {host} 的一半",
            "VM memory {vm} is at most half of the host's {host}",
            vm=vm_h,
            host=host_h,
        )
        return [Finding(field, "info", msg, code="memory.ok")]
    limit = host_mem - MEMORY_HEADROOM
    if vm_memory_bytes > limit:
        most = format_size(limit >> 20 << 20) if limit >= MiB else "—"
        msg = tr(
            "{vm} 超过宿主机内存 {host} 减去留给宿主机的 {r}，无法运行",
            "{vm} is more than the host's {host} minus {r} kept for the host; it cannot run",
            vm=vm_h,
            host=host_h,
            r=human_size(MEMORY_HEADROOM),
        )
        fix = tr(
            "最多 {x}；否则 QEMU 启动时报 cannot set up guest memory，或者运行中被 OOM 杀掉",
            "use at most {x}; otherwise QEMU fails with 'cannot set up guest memory' or the OOM killer "
            "ends it later",
            x=most,
        )
        return [Finding(field, "error", msg, fix, code="memory.exceeds_host")]
    msg = tr(
        "虚拟机内存 {vm} 超过宿主机内存 {host} 的一半，宿主机会明显卡顿",
        "VM memory {vm} is more than half of the host's {host}: expect obvious lag",
        vm=vm_h,
        host=host_h,
    )
    fix = tr(
        "宿主机至少需要 {need}（课程：8GB 的虚拟机需要 16GB 以上的宿主机），或减小内存",
        "the host needs at least {need} (course: an 8 GB VM needs a host with 16 GB or more), or use less",
        need=human_size(2 * vm_memory_bytes),
    )
    return [Finding(field, "warning", msg, fix, code="memory.over_half")]


def cores_findings(
    host: HostFacts, vm_cores: int, *, field: str = "vm_cores", tcg: bool = False
) -> list[Finding]:
    """The core rule; ``tcg`` explains over-commit with TCG's one thread per vCPU.

    Leave at least one core to the host (``info``); all cores starve the host, more vCPUs than
    cores only take turns (``warning``: slower, but it runs).
    """
    host_cores = _known(host.cores)
    if not host_cores:
        msg = tr("无法得知宿主机核心数", "host core count is unknown")
        return [Finding(field, "warning", msg, code="cores.unknown")]
    fix = tr("最多 {n} 个", "use at most {n}", n=max(1, host_cores - 1))
    if vm_cores > host_cores:
        if tcg:
            msg = tr(
                "{vm} 个 vCPU 多于宿主机的 {host} 个核心：TCG thread=multi 给每个 vCPU 一个宿主线程，"
                "线程只能轮流运行",
                "{vm} vCPUs are more than the host's {host} cores: TCG thread=multi runs one host thread "
                "per vCPU, so they take turns",
                vm=vm_cores,
                host=host_cores,
            )
        else:
            msg = tr(
                "虚拟机 {vm} 个核心多于宿主机的 {host} 个，只会互相抢占、更慢",
                "{vm} VM cores are more than the host's {host}: they only time-share and run slower",
                vm=vm_cores,
                host=host_cores,
            )
        out = [Finding(field, "warning", msg, fix, code="cores.exceeds_host")]
    elif vm_cores == host_cores:
        msg = tr(
            "虚拟机占用了宿主机全部 {host} 个核心，请至少给宿主机留 1 个",
            "the VM takes all {host} host cores; leave at least one for the host",
            host=host_cores,
        )
        out = [Finding(field, "warning", msg, fix, code="cores.all")]
    else:
        msg = tr(
            "虚拟机 {vm} 个核心，宿主机还剩 {left} 个",
            "{vm} VM cores leave {left} for the host",
            vm=vm_cores,
            left=host_cores - vm_cores,
        )
        out = [Finding(field, "info", msg, code="cores.ok")]
    if vm_cores > COURSE_VM_CORES:
        msg = tr(
            "课程建议 4 个核心已足够日常简单使用",
            "the course suggests 4 cores are enough for simple daily use",
        )
        out.append(Finding(field, "info", msg, code="cores.more_than_course"))
    return out


def disk_findings(host: HostFacts, *, field: str = "disk") -> list[Finding]:
    """The disk rule; nothing when free space was not measured.

    Below :data:`CH1_MIN_DISK` free chapter 1 cannot write its images (``error``); below
    :data:`CH1_GOOD_DISK` installing a real OS into the course's 120G disk will not fit (``warning``).
    """
    free = host.disk_free_bytes if isinstance(host.disk_free_bytes, int) else -1
    if free < 0:
        return []
    if free < CH1_MIN_DISK:
        severity, code = "error", "disk.too_small"
    elif free < CH1_GOOD_DISK:
        severity, code = "warning", "disk.tight"
    else:
        severity, code = "info", "disk.ok"
    msg = tr(
        "{path} 可用磁盘 {free}（第 1 章至少 {min}，安装完整系统建议 {good}）",
        "{free} free disk at {path} (chapter 1 needs {min}; {good} to install a full OS)",
        free=human_size(free),
        path=host.disk_path,
        min=human_size(CH1_MIN_DISK),
        good=human_size(CH1_GOOD_DISK),
    )
    return [Finding(field, severity, msg, code=code)]  # type: ignore[arg-type]


def recommend(
    host: HostFacts, *, max_cores: int = COURSE_VM_CORES, max_memory: int = COURSE_VM_MEMORY
) -> VmSize | None:
    """The largest VM (up to ``max_cores`` / ``max_memory``) that keeps every sizing rule quiet.

    ``None`` when even 1 core and :data:`MIN_VM_MEMORY` would break a rule (a one-core host, or
    under 512 MiB of RAM, or facts that could not be measured).
    """
    cores = min(max(1, max_cores), _known(host.cores) - 1)
    memory = min(max(MIN_VM_MEMORY, max_memory), _known(host.memory_bytes) // 2)
    memory -= memory % MEMORY_STEP
    if cores < 1 or memory < MIN_VM_MEMORY:
        return None
    return VmSize(cores, memory)


def vm_defaults(
    host: HostFacts, *, max_cores: int = COURSE_QEMU_SMP, max_memory: int = COURSE_VM_MEMORY
) -> VmSize:
    """Values to pre-fill a VM form with: :func:`recommend`, else the smallest VM labkit knows."""
    return recommend(host, max_cores=max_cores, max_memory=max_memory) or VmSize(1, MIN_VM_MEMORY)


def _check_request(vm_cores: object, vm_memory_bytes: object) -> tuple[int, int]:
    if isinstance(vm_cores, bool) or not isinstance(vm_cores, int) or vm_cores < 1:
        raise InvalidField(
            "vm_cores",
            vm_cores,
            tr("不是核数", "is not a core count"),
            tr("填 1 以上的整数，例如 4", "use a whole number ≥ 1, e.g. 4"),
        )
    if isinstance(vm_memory_bytes, bool) or not isinstance(vm_memory_bytes, int) or vm_memory_bytes < 1:
        raise InvalidField(
            "vm_memory",
            vm_memory_bytes,
            tr("不是内存大小", "is not a memory size"),
            tr("填一个大小，例如 8G", "use a size such as 8G"),
        )
    return vm_cores, vm_memory_bytes


def advise(
    host: HostFacts,
    vm_cores: int = COURSE_VM_CORES,
    vm_memory_bytes: int = COURSE_VM_MEMORY,
    *,
    check_disk: bool = True,
) -> Sizing:
    """Judge a VM of ``vm_cores`` / ``vm_memory_bytes`` on ``host`` (the three rules above).

    Raises :class:`InvalidField` for a non-positive request; never raises for odd host facts
    (unknown memory or cores become a warning saying it could not be checked).
    """
    vm_cores, vm_memory_bytes = _check_request(vm_cores, vm_memory_bytes)
    findings = memory_findings(host, vm_memory_bytes) + cores_findings(host, vm_cores)
    if check_disk:
        findings += disk_findings(host)
    return Sizing(VmSize(vm_cores, vm_memory_bytes), tuple(findings), recommend(host))
