"""Facts about the host, as plain data, and the pure rules that judge them.

:class:`HostFacts` is filled in by :func:`labkit.steps.host.collect_host_facts` (which runs the
commands of :data:`TOOL_COMMANDS` and reads the machine) and consumed by pure code here and
elsewhere (VM command validation, sizing), so that code can be tested with hand-made facts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from labkit.i18n import tr

__all__ = [
    "DOCKER_SERVER_VERSION",
    "TOOL_COMMANDS",
    "DockerInfo",
    "GpuInfo",
    "HostFacts",
    "ToolInfo",
    "acceleration_meaning",
    "explain_docker_error",
    "explain_kvm",
    "facts_to_dict",
    "parse_apt_policy",
    "parse_cpuinfo_flags",
    "parse_docker_version",
    "parse_kubectl_version",
    "parse_meminfo_total",
    "parse_microk8s_version",
    "parse_nvidia_smi",
    "parse_os_release",
    "parse_qemu_version",
    "parse_zerotier_version",
]


@dataclass(frozen=True)
class ToolInfo:
    """An executable the course uses: where it is and what version it reports."""

    name: str
    path: str | None = None
    version: str | None = None
    package: str | None = None  # Debian/Ubuntu package that provides it
    detail: str = ""  # e.g. "daemon not running", "permission denied on /var/run/docker.sock"

    @property
    def present(self) -> bool:
        return self.path is not None


@dataclass(frozen=True)
class DockerInfo:
    """Docker as the course needs it: a client, a reachable engine, and the right to use it.

    ``engine`` is one of ``ok``, ``not installed``, ``not running``, ``permission denied``,
    ``error``; ``detail`` says what was seen (an error message translated at the probe boundary).
    """

    client_path: str | None = None
    client_version: str | None = None
    client_paths: tuple[str, ...] = ()  # every docker on PATH (two may be installed)
    dockerd_path: str | None = None
    socket: str = "/var/run/docker.sock"
    socket_exists: bool = False
    socket_accessible: bool = False
    socket_group: str | None = None
    user_in_socket_group: bool = False
    sdk_installed: bool = False
    engine: str = "not installed"
    server_version: str | None = None
    api_version: str | None = None
    systemd: bool = False
    detail: str = ""

    @property
    def usable(self) -> bool:
        return self.engine == "ok"


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU as ``nvidia-smi --query-gpu=name,driver_version,memory.total`` reports it."""

    name: str
    driver_version: str = ""
    memory_total: str = ""  # as printed, e.g. "81559 MiB"


@dataclass(frozen=True)
class HostFacts:
    """What this machine offers the course. Every field has a harmless default for tests."""

    os_name: str = "Linux"
    os_pretty: str = ""
    arch: str = "x86_64"
    cores: int = 2
    memory_bytes: int = 8 * 2**30
    disk_free_bytes: int = 50 * 2**30
    cpu_flags: frozenset[str] = field(default_factory=frozenset)
    kvm_device: bool = False
    kvm_usable: bool = False
    kvm_reason: str = "not probed"
    is_root: bool = False
    tools: dict[str, ToolInfo] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # -- added by the host probe (labkit.steps.host); defaults keep hand-made facts valid --------
    os_id: str = ""  # /etc/os-release ID, e.g. "debian"
    os_version_id: str = ""  # VERSION_ID, e.g. "12"
    os_codename: str = ""  # VERSION_CODENAME, e.g. "bookworm"
    disk_path: str = "."  # where disk_free_bytes was measured
    kvm_accessible: bool = False  # /dev/kvm could be opened read-write by this user
    kvm_modules: tuple[str, ...] = ()  # loaded kvm modules, e.g. ("kvm", "kvm_pvm")
    kvm_probe: dict[str, Any] = field(default_factory=dict)  # the probe's JSON line, as is
    firmware: dict[str, bool] = field(default_factory=dict)  # aarch64 UEFI file -> exists
    docker: DockerInfo = field(default_factory=DockerInfo)
    gpus: tuple[GpuInfo, ...] = ()
    gpu_detail: str = ""
    torch: ToolInfo = field(default_factory=lambda: ToolInfo("torch", package="labkit[gpu]"))
    probe_seconds: float = 0.0

    @property
    def memory_known(self) -> bool:
        return self.memory_bytes > 0

    @property
    def kvm_known(self) -> bool:
        """``kvm_usable`` is a verdict: the probe ran, or there is no device this user may open.

        False for a device nobody test-ran yet (and for hand-made facts that keep the default
        ``kvm_reason`` "not probed")."""
        if self.kvm_reason == "not probed":
            return False
        return bool(self.kvm_probe) or not (self.kvm_device and self.kvm_accessible)

    @property
    def virt_flags(self) -> list[str]:
        """Hardware virtualization CPU flags present (Intel ``vmx`` / AMD ``svm``)."""
        return sorted(self.cpu_flags & {"vmx", "svm"})

    def tool(self, name: str) -> ToolInfo:
        return self.tools.get(name, ToolInfo(name))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``labkit doctor --json``, check evidence)."""
        return facts_to_dict(self)


def facts_to_dict(facts: HostFacts) -> dict[str, Any]:
    """``HostFacts`` as JSON-ready data: sets become sorted lists, derived flags are included."""
    data = asdict(facts)
    data["cpu_flags"] = sorted(facts.cpu_flags)
    data["virt_flags"] = facts.virt_flags
    data["kvm_modules"] = list(facts.kvm_modules)
    data["gpus"] = [asdict(g) for g in facts.gpus]
    data["docker"]["client_paths"] = list(facts.docker.client_paths)
    for name, info in facts.tools.items():
        data["tools"][name]["present"] = info.present
    data["torch"]["present"] = facts.torch.present
    return json.loads(json.dumps(data, default=str))


# ---------------------------------------------------------------------------------------------
# Parsers for what the probes read. Pure: they get text, return values, never raise on odd text.
# ---------------------------------------------------------------------------------------------
def parse_os_release(text: str) -> dict[str, str]:
    """``/etc/os-release`` (shell-style ``KEY=value`` lines, values maybe quoted) → dict."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r'\\(["$`\\])', r"\1", value[1:-1])  # os-release(5): shell double quotes
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        out[key] = value
    return out


def parse_cpuinfo_flags(text: str) -> frozenset[str]:
    """CPU feature flags from ``/proc/cpuinfo``: x86 ``flags``, arm64 ``Features``.

    Only the first processor block is read: all cores of a machine report the same flags, and a
    big host has hundreds of blocks.
    """
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


def parse_meminfo_total(text: str) -> int | None:
    """``MemTotal`` from ``/proc/meminfo`` in bytes (the fallback when psutil is unavailable)."""
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


_QEMU_VERSION = re.compile(r"\bversion\s+(\d+\.\d+(?:\.\d+)?)", re.IGNORECASE)


def parse_qemu_version(text: str) -> str | None:
    """``QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`` → ``"7.2.22"``.

    Works for ``qemu-img version ...`` and ``qemu-system-* --version`` alike; ``None`` if absent.
    """
    m = _QEMU_VERSION.search(text or "")
    return m.group(1) if m else None


def parse_docker_version(text: str) -> str | None:
    """``Docker version 28.2.2, build e6534b4`` → ``"28.2.2"``."""
    m = re.search(r"Docker version\s+([0-9][^\s,]*)", text or "")
    return m.group(1) if m else None


def parse_kubectl_version(text: str) -> str | None:
    """``kubectl version --client -o json`` → ``gitVersion`` (``"v1.32.4"``); old text forms too."""
    text = text or ""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        client = data.get("clientVersion")
        if isinstance(client, dict) and isinstance(client.get("gitVersion"), str):
            return client["gitVersion"]
    m = re.search(r'GitVersion:"(v[^"]+)"', text) or re.search(r"Client Version:\s*(v\S+)", text)
    return m.group(1) if m else None


def parse_microk8s_version(text: str) -> str | None:
    """``MicroK8s v1.28.3 revision 6089`` → ``"v1.28.3"``."""
    m = re.search(r"MicroK8s\s+(v?\d+\.\d+\S*)", text or "")
    return m.group(1) if m else None


def parse_zerotier_version(text: str) -> str | None:
    """``zerotier-cli -v`` prints the bare version (``1.14.1``)."""
    m = re.search(r"\b(\d+\.\d+\.\d+)\b", text or "")
    return m.group(1) if m else None


_SMI_DRIVER = re.compile(r"Driver Version:\s*([\d.]+)")
_SMI_ROW = re.compile(r"^\|\s+\d+\s+(.+?)\s{2,}(?:On|Off)\s+\|")
_SMI_MEMORY = re.compile(r"/\s*(\d+)\s*MiB")


def parse_nvidia_smi(text: str) -> tuple[GpuInfo, ...]:
    """The GPUs ``nvidia-smi`` lists, from either of its two outputs.

    * ``--query-gpu=name,driver_version,memory.total --format=csv,noheader`` (what ``labkit doctor``
      runs): lines like ``NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB``; GPU names contain no comma.
    * the default table (what the course's ``docker run --gpus all … nvidia-smi`` prints): the
      driver from the ``Driver Version:`` header, one ``|   0  NVIDIA A10G   On  |`` row per GPU,
      the total memory from the ``1MiB /  23028MiB`` cell of the row below (when there is one).
    """
    text = text or ""
    header = _SMI_DRIVER.search(text)
    if header is None:
        gpus = []
        for line in text.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 3 and parts[0] and not parts[0].lower().startswith(("name", "no devices")):
                gpus.append(GpuInfo(parts[0], parts[1], ", ".join(parts[2:])))
        return tuple(gpus)
    lines = text.splitlines()
    table = []
    for i, line in enumerate(lines):
        row = _SMI_ROW.match(line)
        if row:
            memory = _SMI_MEMORY.search(lines[i + 1]) if i + 1 < len(lines) else None
            table.append(
                GpuInfo(row.group(1).strip(), header.group(1), f"{memory.group(1)} MiB" if memory else "")
            )
    return tuple(table)


_NVIDIA_QUERY = ["--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]

#: Executable → (argv that prints its version, parser of that output). ``nvidia-smi``'s version is
#: the driver's, read from the GPU list by :func:`parse_nvidia_smi`.
TOOL_COMMANDS: dict[str, tuple[list[str], Callable[[str], str | None]]] = {
    "qemu-img": (["qemu-img", "--version"], parse_qemu_version),
    "qemu-system-aarch64": (["qemu-system-aarch64", "--version"], parse_qemu_version),
    "qemu-system-x86_64": (["qemu-system-x86_64", "--version"], parse_qemu_version),
    "docker": (["docker", "--version"], parse_docker_version),
    "kubectl": (["kubectl", "version", "--client", "-o", "json"], parse_kubectl_version),
    "microk8s": (["microk8s", "version"], parse_microk8s_version),
    "zerotier-cli": (["zerotier-cli", "-v"], parse_zerotier_version),
    "nvidia-smi": (["nvidia-smi", *_NVIDIA_QUERY], lambda out: None),
}
#: ``docker version`` asked for the engine's version, when the Python SDK is not installed.
DOCKER_SERVER_VERSION = ["docker", "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"]


# ---------------------------------------------------------------------------------------------
# Judging the probes
# ---------------------------------------------------------------------------------------------
def explain_docker_error(message: str) -> tuple[str, str]:
    """Map a docker SDK / CLI error text to ``(engine_state, human detail)``.

    The SDK reports everything as ``DockerException("Error while fetching server API version:
    ...")``; only the inner errno text tells "daemon down" from "not allowed".
    """
    low = (message or "").lower()
    if "permission denied" in low or "eacces" in low:
        return "permission denied", tr(
            "无权访问 Docker 套接字（用户不在 docker 组）",
            "permission denied on the Docker socket (user not in group docker)",
        )
    if any(
        s in low
        for s in (
            "no such file",
            "connection refused",
            "cannot connect to the docker daemon",
            "is the docker daemon",
        )
    ):
        return "not running", tr("Docker 引擎未运行", "the Docker engine (dockerd) is not running")
    if "timed out" in low or "timeout" in low:
        return "error", tr("Docker 引擎无响应（超时）", "the Docker engine did not answer in time")
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else "unknown error"
    return "error", first[:300]


#: The probe's stage → the KVM call that failed there (``run`` is ``KVM_RUN``).
_KVM_CALLS: dict[str, str] = {
    "open": "open",
    "api_version": "KVM_GET_API_VERSION",
    "create_vm": "KVM_CREATE_VM",
    "memory": "KVM_SET_USER_MEMORY_REGION",
    "create_vcpu": "KVM_CREATE_VCPU",
    "mmap_run": "mmap(kvm_run)",
    "sregs": "KVM_SET_SREGS",
    "regs": "KVM_SET_REGS",
    "vcpu_init": "KVM_ARM_VCPU_INIT",
    "run": "KVM_RUN",
}
_X86_ARCHES = ("x86_64", "i686", "i386")


def _run_failure(probe: Mapping[str, Any]) -> str:
    """Say why ``KVM_RUN`` failed from the structured fields: shorter than the child's sentence,
    and translatable."""
    reason = str(probe.get("exit_reason"))
    if probe.get("suberror") == 1:
        reason += tr(
            "（指令模拟失败：KVM 只是在解释客户机代码，CPU 并没有真正运行它）",
            " (instruction emulation failed: KVM interprets guest code instead of running it on the CPU)",
        )
    elif probe.get("suberror") is not None:
        reason += f" ({probe.get('suberror_name') or probe.get('suberror')})"
    elif probe.get("hardware_entry_failure_reason") is not None:
        reason += f" (hardware entry failure {probe['hardware_entry_failure_reason']:#x})"
    return reason


def _kvm_failure_causes(flags: set[str], modules: set[str], arch: str) -> list[str]:
    """What the CPU flags and loaded modules say about a KVM that exists but fails."""
    why = []
    if arch in _X86_ARCHES and not flags & {"vmx", "svm"}:
        why.append(
            tr(
                "CPU 没有 vmx/svm 标志：嵌套虚拟化未开启，或是半虚拟化的 KVM 后端",
                "no vmx/svm CPU flag: nested virtualization is off, or a paravirtual KVM backend",
            )
        )
    if "kvm_pvm" in modules:
        why.append(
            tr(
                "已加载 kvm_pvm：PVM 半虚拟化后端，只能运行专门的 PVM 客户机内核",
                "kvm_pvm is loaded: a paravirtual backend that only runs PVM-enabled guest kernels",
            )
        )
    return why


def _no_device(flags: set[str], arch: str) -> str:
    why = ""
    if arch in _X86_ARCHES and not flags & {"vmx", "svm"}:
        why = tr(
            "（CPU 没有 vmx/svm 标志：BIOS 中未开启 VT-x/AMD-V，或这是一台未开嵌套虚拟化的虚拟机）",
            " (no vmx/svm CPU flag: VT-x/AMD-V is off in the firmware,"
            " or this is a VM without nested virtualization)",
        )
    return tr("没有 /dev/kvm", "no /dev/kvm") + why


def explain_kvm(
    *,
    kvm_device: bool,
    kvm_accessible: bool,
    probe: Mapping[str, Any] | None,
    cpu_flags: Iterable[str] = (),
    kvm_modules: Iterable[str] = (),
    arch: str = "x86_64",
) -> tuple[bool, str]:
    """Turn the device check and the probe's JSON line into ``(usable, human reason)``.

    Usable only when the probe proved guest code ran. The reason names what failed and, when the
    CPU flags explain it, why: no ``vmx``/``svm`` flag means nested virtualization is off or KVM is
    a paravirtual backend (``kvm_pvm``) that cannot run ordinary guests.
    """
    flags = set(cpu_flags)
    if not kvm_device:
        return False, _no_device(flags, arch)
    if not kvm_accessible:
        return False, tr(
            "/dev/kvm 存在但当前用户无权读写（加入 kvm 组：sudo usermod -aG kvm $USER）",
            "/dev/kvm exists but this user may not open it (join group kvm: sudo usermod -aG kvm $USER)",
        )
    if not probe:
        return False, tr("/dev/kvm 存在，但未做运行测试", "/dev/kvm exists but was not test-run")
    if probe.get("usable"):
        return True, tr(
            "KVM 可用：测试客户机代码已在 CPU 上运行", "KVM works: test guest code ran on the CPU"
        )
    stage = str(probe.get("stage", "?"))
    reason = str(probe.get("reason", "")) or tr("未知原因", "unknown reason")
    if stage == "run" and probe.get("exit_reason"):
        reason = _run_failure(probe)
    if probe.get("check") == "partial":
        text = tr(
            "/dev/kvm 存在，仅做了部分检查：{reason}",
            "/dev/kvm exists, partial check only: {reason}",
            reason=reason,
        )
    else:
        text = tr(
            "/dev/kvm 存在，但 {call} 失败：{reason}",
            "/dev/kvm exists but {call} failed: {reason}",
            call=_KVM_CALLS.get(stage, stage),
            reason=reason,
        )
    why = _kvm_failure_causes(flags, set(kvm_modules), arch)
    if why:
        text += tr("（", " (") + tr("；", "; ").join(why) + tr("）", ")")
    return False, text


def acceleration_meaning(facts: HostFacts) -> str:
    """What KVM's verdict means for a student, in one sentence and no KVM internals.

    The internals (``KVM_EXIT_INTERNAL_ERROR``, ``kvm_pvm``, missing ``vmx``/``svm``) stay in
    ``facts.kvm_reason``, for the folded evidence and ``labkit doctor``.
    """
    if facts.kvm_usable:
        return tr(
            "这里有硬件加速（KVM）：与宿主机同架构的虚拟机可以用 -accel kvm 以接近物理机的速度运行",
            "hardware acceleration (KVM) works here: guests of the host's architecture can run with "
            "-accel kvm at close to native speed",
        )
    if not facts.kvm_known:
        return tr(
            "还没有测试硬件加速（KVM）；不管有没有，本章都能用 TCG 软件模拟完成",
            "hardware acceleration (KVM) was not tested; either way this chapter works with TCG "
            "software emulation",
        )
    return tr(
        "这里没有硬件加速（KVM 不可用）：本章照样能完成，虚拟机用 TCG 软件模拟运行，只是更慢",
        "no hardware acceleration here (KVM is not usable): the chapter still works, guests run with "
        "TCG software emulation, only slower",
    )


def parse_apt_policy(text: str) -> dict[str, str | None]:
    """``apt-cache policy PKG...`` → ``{package: candidate version or None}``.

    Packages apt has never heard of are simply absent from the output (and from the result);
    a known package without an installable version has ``Candidate: (none)`` → ``None``.
    """
    out: dict[str, str | None] = {}
    current: str | None = None
    for line in (text or "").splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            current = line.rstrip()[:-1].strip()
            out[current] = None
            continue
        stripped = line.strip()
        if current is not None and stripped.startswith("Candidate:"):
            value = stripped.split(":", 1)[1].strip()
            out[current] = None if value in ("", "(none)") else value
    return out
