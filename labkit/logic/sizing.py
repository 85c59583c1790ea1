"""How big a virtual machine this host can carry: the course's VirtualBox advice as rules.

The course text (chapter 1.3.5) says: four processor cores are enough for simple daily use; a VM
needs 8 GB of memory or more, and that needs a host with at least 16 GB, "otherwise there will be
obvious lag". Generalised into rules labkit can check for any host and any VM size:

* memory: host RAM ≥ 2 × VM RAM is comfortable (*ok*); a VM that fits in RAM but takes more than
  half of it makes the host swap and stutter (*warn*); a VM larger than the host's RAM cannot run
  (*fail*).
* cores: leave at least one core to the host (VM cores ≤ host cores − 1 is *ok*); giving the VM all
  cores starves the host (*warn*); more VM cores than host cores only time-share and slow down
  (*fail*).
* more than four VM cores is allowed but beyond what the course needs (an *ok* note).
* disk: chapter 1 writes small images (a 64 MiB ``efi.img``, sparse qcow2 disks), so below
  :data:`CH1_MIN_DISK` free it fails; installing a real OS into the course's 120G disk uses real
  space, so below :data:`CH1_GOOD_DISK` it warns.

:func:`recommend` picks the largest VM that satisfies every rule (at most 4 cores and 8 GiB, the
course's numbers), so ``advise(host, *recommend(host))`` has no memory or core warning. Pure: works on
:class:`~labkit.logic.host.HostFacts`, no probing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic.host import HostFacts
from labkit.logic.sizes import human_size

__all__ = [
    "CH1_GOOD_DISK",
    "CH1_MIN_DISK",
    "COURSE_VM_CORES",
    "COURSE_VM_MEMORY",
    "MEMORY_STEP",
    "MIN_VM_MEMORY",
    "Advice",
    "Level",
    "Sizing",
    "VmSize",
    "advise",
    "recommend",
]

Level = Literal["ok", "warn", "fail"]
_ORDER = {"ok": 0, "warn": 1, "fail": 2}

GiB = 2**30
MiB = 2**20
#: The course's suggested VM: 4 cores, 8 GB.
COURSE_VM_CORES = 4
COURSE_VM_MEMORY = 8 * GiB
#: Recommended memory is a multiple of this (what VirtualBox's slider and ``-m`` take comfortably).
MEMORY_STEP = 256 * MiB
#: Smallest VM labkit recommends; below this no current OS installer runs.
MIN_VM_MEMORY = 256 * MiB
#: Free disk below which chapter 1 cannot even write its firmware image and small disks.
CH1_MIN_DISK = 2 * GiB
#: Free disk that leaves room to install a real OS into the course's 120G (sparse) qcow2 disk.
CH1_GOOD_DISK = 20 * GiB


@dataclass(frozen=True)
class Advice:
    """One judged rule. ``code`` is stable (for tests and graders); ``message`` is for people."""

    level: Level
    code: str
    message: str


@dataclass(frozen=True)
class VmSize:
    cores: int
    memory_bytes: int

    def __iter__(self):  # lets callers write advise(host, *recommend(host))
        return iter((self.cores, self.memory_bytes))

    def __str__(self) -> str:
        return f"{self.cores} vCPU, {human_size(self.memory_bytes)}"


@dataclass(frozen=True)
class Sizing:
    """All advice for one requested VM on one host, plus what labkit would pick instead."""

    requested: VmSize
    advice: tuple[Advice, ...]
    recommended: VmSize | None  # None: the host cannot satisfy the rules even for a minimal VM
    notes: tuple[str, ...] = field(default=())

    @property
    def level(self) -> Level:
        """The worst level among the advice (``ok`` when there is none)."""
        worst: Level = "ok"
        for a in self.advice:
            if _ORDER[a.level] > _ORDER[worst]:
                worst = a.level
        return worst

    def to_payload(self) -> dict[str, object]:
        rec = self.recommended
        return {
            "level": self.level,
            "requested": {"cores": self.requested.cores, "memory_bytes": self.requested.memory_bytes},
            "recommended": None if rec is None else {"cores": rec.cores, "memory_bytes": rec.memory_bytes},
            "recommended_text": None if rec is None else str(rec),
            "advice": [{"level": a.level, "code": a.code, "message": a.message} for a in self.advice],
        }


def _check_request(vm_cores: object, vm_memory_bytes: object) -> tuple[int, int]:
    if isinstance(vm_cores, bool) or not isinstance(vm_cores, int) or vm_cores < 1:
        raise InvalidField("vm_cores", vm_cores, "is not a core count", "use a whole number ≥ 1, e.g. 4")
    if isinstance(vm_memory_bytes, bool) or not isinstance(vm_memory_bytes, int) or vm_memory_bytes < 1:
        raise InvalidField("vm_memory", vm_memory_bytes, "is not a memory size", "use a size such as 8G")
    return vm_cores, vm_memory_bytes


def recommend(
    host: HostFacts, *, max_cores: int = COURSE_VM_CORES, max_memory: int = COURSE_VM_MEMORY
) -> VmSize | None:
    """The largest VM (up to the course's 4 cores / 8 GiB) that keeps every sizing rule ``ok``.

    ``None`` when even 1 core and :data:`MIN_VM_MEMORY` would break a rule (a one-core host, or
    under 512 MiB of RAM, or facts that could not be measured).
    """
    host_cores = host.cores if isinstance(host.cores, int) else 0
    host_mem = host.memory_bytes if isinstance(host.memory_bytes, int) else 0
    cores = min(max(1, max_cores), host_cores - 1)
    memory = min(max(MIN_VM_MEMORY, max_memory), host_mem // 2)
    memory -= memory % MEMORY_STEP
    if cores < 1 or memory < MIN_VM_MEMORY:
        return None
    return VmSize(cores, memory)


def advise(
    host: HostFacts,
    vm_cores: int = COURSE_VM_CORES,
    vm_memory_bytes: int = COURSE_VM_MEMORY,
    *,
    check_disk: bool = True,
) -> Sizing:
    """Judge a VM of ``vm_cores`` / ``vm_memory_bytes`` on ``host`` (see the module docstring).

    Raises :class:`InvalidField` for a non-positive request; never raises for odd host facts
    (unknown memory or cores become a *warn* saying it could not be checked).
    """
    vm_cores, vm_memory_bytes = _check_request(vm_cores, vm_memory_bytes)
    advice: list[Advice] = []
    host_mem = host.memory_bytes if isinstance(host.memory_bytes, int) else 0
    host_cores = host.cores if isinstance(host.cores, int) else 0
    vm_mem_h, host_mem_h = human_size(vm_memory_bytes), human_size(host_mem)

    # -- memory ---------------------------------------------------------------------------------
    if host_mem <= 0:
        advice.append(
            Advice("warn", "memory.unknown", tr("无法得知宿主机内存大小", "host memory size is unknown"))
        )
    elif vm_memory_bytes > host_mem:
        advice.append(
            Advice(
                "fail",
                "memory.exceeds_host",
                tr(
                    "虚拟机内存 {vm} 超过宿主机全部内存 {host}，无法运行",
                    "VM memory {vm} is more than all of the host's {host}; it cannot run",
                    vm=vm_mem_h,
                    host=host_mem_h,
                ),
            )
        )
    elif 2 * vm_memory_bytes > host_mem:
        advice.append(
            Advice(
                "warn",
                "memory.over_half",
                tr(
                    "虚拟机内存 {vm} 超过宿主机内存 {host} 的一半，宿主机会明显卡顿；"
                    "宿主机至少需要 {need}（课程：8GB 的虚拟机需要 16GB 以上的宿主机）",
                    "VM memory {vm} is more than half of the host's {host}: expect obvious lag; "
                    "the host needs at least {need} (course: an 8 GB VM needs a host with 16 GB or more)",
                    vm=vm_mem_h,
                    host=host_mem_h,
                    need=human_size(2 * vm_memory_bytes),
                ),
            )
        )
    else:
        advice.append(
            Advice(
                "ok",
                "memory.ok",
                tr(
                    "虚拟机内存 {vm} 不超过宿主机内存 {host} 的一半",
                    "VM memory {vm} is at most half of the host's {host}",
                    vm=vm_mem_h,
                    host=host_mem_h,
                ),
            )
        )

    # -- cores ----------------------------------------------------------------------------------
    if host_cores <= 0:
        advice.append(
            Advice("warn", "cores.unknown", tr("无法得知宿主机核心数", "host core count is unknown"))
        )
    elif vm_cores > host_cores:
        advice.append(
            Advice(
                "fail",
                "cores.exceeds_host",
                tr(
                    "虚拟机 {vm} 个核心多于宿主机的 {host} 个，只会互相抢占、更慢",
                    "{vm} VM cores are more than the host's {host}: they only time-share and run slower",
                    vm=vm_cores,
                    host=host_cores,
                ),
            )
        )
    elif vm_cores == host_cores:
        advice.append(
            Advice(
                "warn",
                "cores.all",
                tr(
                    "虚拟机占用了宿主机全部 {host} 个核心，请至少给宿主机留 1 个",
                    "the VM takes all {host} host cores; leave at least one for the host",
                    host=host_cores,
                ),
            )
        )
    else:
        advice.append(
            Advice(
                "ok",
                "cores.ok",
                tr(
                    "虚拟机 {vm} 个核心，宿主机还剩 {left} 个",
                    "{vm} VM cores leave {left} for the host",
                    vm=vm_cores,
                    left=host_cores - vm_cores,
                ),
            )
        )
    if vm_cores > COURSE_VM_CORES:
        advice.append(
            Advice(
                "ok",
                "cores.more_than_course",
                tr(
                    "课程建议 4 个核心已足够日常简单使用",
                    "the course suggests 4 cores are enough for simple daily use",
                ),
            )
        )

    # -- disk -----------------------------------------------------------------------------------
    free = host.disk_free_bytes if isinstance(host.disk_free_bytes, int) else -1
    if check_disk and free >= 0:
        if free < CH1_MIN_DISK:
            level: Level = "fail"
            code = "disk.too_small"
        elif free < CH1_GOOD_DISK:
            level, code = "warn", "disk.tight"
        else:
            level, code = "ok", "disk.ok"
        advice.append(
            Advice(
                level,
                code,
                tr(
                    "{path} 可用磁盘 {free}（第 1 章至少 {min}，安装完整系统建议 {good}）",
                    "{free} free disk at {path} (chapter 1 needs {min}; {good} to install a full OS)",
                    free=human_size(free),
                    path=host.disk_path,
                    min=human_size(CH1_MIN_DISK),
                    good=human_size(CH1_GOOD_DISK),
                ),
            )
        )

    return Sizing(VmSize(vm_cores, vm_memory_bytes), tuple(advice), recommend(host))
