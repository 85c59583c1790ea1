"""Probe this machine for what the course needs, and the chapter-1 host check step.

:func:`collect_host_facts` is labkit's one host probe (the host check, the VM command step, its
panel defaults and ``labkit doctor`` all use it). It fills a :class:`~labkit.logic.host.HostFacts`:
OS, architecture, cores, memory, free disk, CPU flags and firmware files (cheap: files and libc,
nothing spawned), the tool versions asked for, Docker (client, engine, permission), GPUs, torch,
and KVM with a *real* test run (:mod:`labkit.steps.kvmprobe`), the slow part, only when asked.
Design rules: never crash (every probe records a detail string instead: a doctor that dies on the
one broken thing hides everything else it knew); fast (every command goes through the runner
with a short timeout, in parallel threads; psutil and the docker SDK load only here; torch is never
imported); parsing is pure, in :mod:`labkit.logic.host`.

:class:`HostCheck` (``ch1.host.check``) passes when the host can do chapter 1 (QEMU, the UEFI
firmware, enough disk). Unusable KVM is reported, not failed: TCG emulates the aarch64 guest.
"""

from __future__ import annotations

import grp
import importlib.util
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import CommandTimeout, InvalidField, LabkitError, ToolMissing
from labkit.i18n import tr
from labkit.logic.firmware import AAVMF_CODE, FIRMWARE_PACKAGE, QEMU_EFI
from labkit.logic.host import (
    DOCKER_SERVER_VERSION,
    TOOL_COMMANDS,
    DockerInfo,
    GpuInfo,
    HostFacts,
    ToolInfo,
    acceleration_meaning,
    explain_docker_error,
    explain_kvm,
    parse_cpuinfo_flags,
    parse_meminfo_total,
    parse_nvidia_smi,
    parse_os_release,
)
from labkit.logic.sizes import human_size, parse_size
from labkit.logic.sizing import COURSE_VM_CORES, Sizing, advise
from labkit.logic.tools import TOOL_PACKAGES
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.kvmprobe import KVM_TIMEOUT, kvm_probe_argv, run_kvm_probe
from labkit.steps.runner import Completed, Runner, default_runner

__all__ = [
    "CH1_PACKAGES",
    "CH1_TOOLS",
    "FIRMWARE_FILES",
    "ContextRunner",
    "HostCheck",
    "collect_host_facts",
    "probe_commands",
    "probe_docker",
    "probe_tool",
    "read_os_release",
    "read_text",
]

#: Seconds any single version / status command may take. These are all local and instant when
#: healthy; the limit only matters for a wedged daemon or a hung network mount.
TOOL_TIMEOUT = 5.0

#: The aarch64 UEFI firmware files chapter 1 uses (either one is enough).
FIRMWARE_FILES: tuple[str, ...] = (QEMU_EFI, AAVMF_CODE)
#: Where Debian/Ubuntu's ipxe-qemu puts the option ROM that ``-nic user,model=virtio-net-pci`` loads
#: (the package is only *recommended* by qemu-system-arm, so minimal installs lack it).
NIC_ROM_FILES: tuple[str, ...] = ("/usr/share/qemu/efi-virtio.rom", "/usr/lib/ipxe/qemu/efi-virtio.rom")
#: Debian/Ubuntu packages chapter 1 needs.
CH1_PACKAGES: tuple[str, ...] = ("qemu-utils", "qemu-system-arm", FIRMWARE_PACKAGE, "ipxe-qemu")
#: The tools whose versions the chapter-1 host check reads.
CH1_TOOLS: tuple[str, ...] = ("qemu-img", "qemu-system-aarch64", "qemu-system-x86_64")


def probe_commands(*, probe_kvm: bool = True, tools: Sequence[str] | None = None) -> list[list[str]]:
    """The argv lists :func:`collect_host_facts` may run with the same arguments (a tool that is
    not installed is skipped; Docker's engine is asked over its socket, or with ``docker version``
    when the Python SDK is missing)."""
    names = list(TOOL_COMMANDS) if tools is None else list(tools)
    cmds = [list(TOOL_COMMANDS[name][0]) for name in names]
    if "docker" in names:
        cmds.append(list(DOCKER_SERVER_VERSION))
    if probe_kvm:
        cmds.append(kvm_probe_argv(KVM_TIMEOUT))
    return cmds


def read_text(path: str, limit: int = 1 << 20) -> str:
    """A small system file's text (``""`` when it cannot be read): probes never crash on one file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return ""


def read_os_release() -> dict[str, str]:
    """This host's ``/etc/os-release`` (or ``/usr/lib/os-release``), parsed."""
    return parse_os_release(read_text("/etc/os-release") or read_text("/usr/lib/os-release"))


def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def probe_tool(runner: Runner, name: str, timeout: float) -> tuple[ToolInfo, Completed | None]:
    """Locate ``name`` and ask it for its version; any failure becomes ``detail``."""
    argv, parse = TOOL_COMMANDS[name]
    package = TOOL_PACKAGES.get(name)
    path = shutil.which(name)
    if path is None:
        return ToolInfo(name, None, None, package, tr("未安装", "not installed")), None
    try:
        done = runner.run(argv, timeout=timeout, check=False)
    except CommandTimeout:
        return ToolInfo(name, path, None, package, f"`{' '.join(argv)}` timed out after {timeout:g} s"), None
    except ToolMissing:
        return ToolInfo(name, None, None, package, tr("未安装", "not installed")), None
    except LabkitError as exc:
        return ToolInfo(name, path, None, package, str(exc).splitlines()[0]), None
    out = done.stdout or done.stderr
    version = parse(out)
    detail = ""
    if done.returncode != 0:
        detail = tr(
            "退出状态 {n}：{l}",
            "exit {n}: {l}",
            n=done.returncode,
            l=_first_line(done.stderr) or _first_line(done.stdout),
        )
    elif version is None and name != "nvidia-smi":
        detail = tr("读不出版本号：{o!r}", "could not read a version from: {o!r}", o=_first_line(out)[:200])
    return ToolInfo(name, path, version, package, detail), done


def _docker_clients() -> tuple[str, ...]:
    """Every ``docker`` on PATH, in PATH order: two installs (static + Debian's) confuse students."""
    seen: list[str] = []
    for d in os.get_exec_path():
        cand = os.path.join(d, "docker")
        real = os.path.realpath(cand)
        if os.path.isfile(cand) and os.access(cand, os.X_OK) and real not in map(os.path.realpath, seen):
            seen.append(cand)
    return tuple(seen)


def _docker_socket(info: dict[str, Any], sock: str, installed: bool) -> DockerInfo | None:
    """Judge the local socket: a :class:`DockerInfo` when it already tells the answer (missing,
    unreadable), else ``None`` after recording its group and permissions in ``info``."""
    try:
        st = os.stat(sock)
    except FileNotFoundError:
        if not installed:
            return DockerInfo(
                **info, engine="not installed", detail=tr("Docker 未安装", "Docker is not installed")
            )
        detail = tr("没有 {s}：Docker 引擎未运行", "no {s}: the Docker engine is not running", s=sock)
        return DockerInfo(**info, engine="not running", detail=detail)
    except OSError as exc:
        return DockerInfo(**info, engine="error", detail=f"stat {sock}: {exc.strerror}")
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    info.update(
        socket_exists=True,
        socket_group=group,
        user_in_socket_group=st.st_gid in os.getgroups() or st.st_gid == os.getegid(),
        socket_accessible=os.access(sock, os.R_OK | os.W_OK),
    )
    if info["socket_accessible"]:
        return None
    detail = tr(
        "无权访问 {s}（属组 {g}；当前用户不是 root 也不在该组）",
        "permission denied on {s} (group {g}; this user is neither root nor in that group)",
        s=sock,
        g=group,
    )
    return DockerInfo(**info, engine="permission denied", detail=detail)


def _docker_engine(
    runner: Runner, info: dict[str, Any], client: ToolInfo, timeout: float, engine: Any = None
) -> DockerInfo:
    """Ask the engine for its version: with the SDK when installed (through ``engine``, the
    connector of :mod:`labkit.steps.docker.engine`, the one SDK boundary), else with the CLI."""
    if info["sdk_installed"]:
        from labkit.steps.docker.engine import DockerEngine

        try:
            api = (engine or DockerEngine()).connect(timeout=3)
            try:
                v = api.version()
            finally:
                api.close()
            return DockerInfo(
                **info, engine="ok", server_version=v.get("Version"), api_version=v.get("ApiVersion")
            )
        except Exception as exc:  # classify the SDK's own error, kept as the labkit error's cause
            state, detail = explain_docker_error(str(exc.__cause__ or exc))
            return DockerInfo(**info, engine=state, detail=detail)
    if not client.path:
        detail = tr(
            "有 Docker 套接字，但既没有 docker 命令也没有 Python docker 包",
            "a Docker socket exists but neither the docker CLI nor the Python docker SDK is installed",
        )
        return DockerInfo(**info, engine="error", detail=detail)
    try:
        done = runner.run(DOCKER_SERVER_VERSION, timeout=timeout, check=False)
    except LabkitError as exc:
        state, detail = explain_docker_error(str(exc))
        return DockerInfo(**info, engine=state, detail=detail)
    parts = done.stdout.split()
    if done.returncode == 0 and len(parts) >= 2:
        return DockerInfo(**info, engine="ok", server_version=parts[0], api_version=parts[1])
    state, detail = explain_docker_error(done.stderr or done.stdout)
    return DockerInfo(**info, engine=state, detail=detail)


def probe_docker(runner: Runner, client: ToolInfo, timeout: float, engine: Any = None) -> DockerInfo:
    """Client, engine, permission. The SDK is imported only when a socket is there to talk to;
    ``engine`` is the Docker connector to ask (a step passes its run context's)."""
    info: dict[str, Any] = {
        "client_path": client.path,
        "client_version": client.version,
        "client_paths": _docker_clients(),
        "dockerd_path": shutil.which("dockerd"),
        "sdk_installed": importlib.util.find_spec("docker") is not None,
        "systemd": os.path.isdir("/run/systemd/system"),
    }
    host = os.environ.get("DOCKER_HOST", "")
    sock = host[len("unix://") :] if host.startswith("unix://") else "/var/run/docker.sock"
    info["socket"] = host if host and not host.startswith("unix://") else sock
    if not host or host.startswith("unix://"):
        judged = _docker_socket(info, sock, bool(client.path or info["dockerd_path"]))
        if judged is not None:
            return judged
    return _docker_engine(runner, info, client, timeout, engine)


def _memory_and_disk(disk_path: str) -> tuple[int, int, str]:
    """RAM and free disk via psutil (lazy import), falling back to /proc and shutil."""
    path = os.path.abspath(disk_path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)  # a target that does not exist yet: measure its parent
    try:
        import psutil

        return int(psutil.virtual_memory().total), int(psutil.disk_usage(path).free), path
    except Exception:
        mem = parse_meminfo_total(read_text("/proc/meminfo")) or 0
        try:
            free = shutil.disk_usage(path).free
        except OSError:
            free = -1
        return mem, free, path


def _kvm_modules() -> tuple[str, ...]:
    try:
        names = os.listdir("/sys/module")
    except OSError:
        return ()
    return tuple(sorted(n for n in names if n == "kvm" or n.startswith("kvm_")))


def _kvm_accessible(device: str = "/dev/kvm") -> bool:
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def _torch() -> ToolInfo:
    """Whether torch is installed, without importing it (that costs seconds and GPU init)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return ToolInfo(
            "torch",
            None,
            None,
            "labkit[gpu]",
            tr("未安装 torch：pip install labkit[gpu]", "torch not installed: pip install labkit[gpu]"),
        )
    from importlib import metadata

    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        version = None
    return ToolInfo("torch", spec.origin or "torch", version, "labkit[gpu]")


def _local_facts(disk_path: str) -> HostFacts:
    """Everything that needs no command: files under /etc, /proc, /sys and /dev, and libc."""
    os_release = read_os_release()
    cpu_flags = parse_cpuinfo_flags(read_text("/proc/cpuinfo"))
    kvm_device = os.path.exists("/dev/kvm")
    kvm_accessible = kvm_device and _kvm_accessible()
    kvm_modules = _kvm_modules()
    arch = platform.machine() or "unknown"
    memory, disk_free, measured = _memory_and_disk(disk_path)
    facts = HostFacts(
        os_name=platform.system() or "unknown",
        os_pretty=os_release.get("PRETTY_NAME", ""),
        os_id=os_release.get("ID", ""),
        os_version_id=os_release.get("VERSION_ID", ""),
        os_codename=os_release.get("VERSION_CODENAME", ""),
        arch=arch,
        cores=os.cpu_count() or 1,
        memory_bytes=memory,
        disk_free_bytes=disk_free,
        disk_path=measured,
        cpu_flags=cpu_flags,
        kvm_device=kvm_device,
        kvm_accessible=kvm_accessible,
        kvm_modules=kvm_modules,
        is_root=hasattr(os, "geteuid") and os.geteuid() == 0,
        firmware={path: os.path.isfile(path) for path in FIRMWARE_FILES},
        extra={
            "python": sys.version.split()[0],
            "nic_rom": next((p for p in NIC_ROM_FILES if os.path.isfile(p)), None),
        },
    )
    return _with_kvm_probe(facts, {})


def _with_kvm_probe(facts: HostFacts, probe: dict[str, Any]) -> HostFacts:
    """``facts`` judged with the KVM probe's result (``{}``: not test-run)."""
    usable, reason = explain_kvm(
        kvm_device=facts.kvm_device,
        kvm_accessible=facts.kvm_accessible,
        probe=probe,
        cpu_flags=facts.cpu_flags,
        kvm_modules=facts.kvm_modules,
        arch=facts.arch,
    )
    return replace(facts, kvm_usable=usable, kvm_reason=reason, kvm_probe=probe)


def _safe_kvm_probe(runner: Runner) -> dict[str, Any]:
    try:
        return run_kvm_probe(runner, timeout=KVM_TIMEOUT)
    except Exception as exc:  # a bug in the probe must not hide the other facts
        return {"usable": False, "stage": "spawn", "reason": f"probe error: {exc}"}


def _safe_probe_tool(runner: Runner, name: str) -> tuple[ToolInfo, Completed | None]:
    try:
        return probe_tool(runner, name, TOOL_TIMEOUT)
    except Exception as exc:  # a bug in one probe must not hide the others
        return ToolInfo(name, shutil.which(name), detail=f"probe error: {exc}"), None


def _gpus(smi: ToolInfo, done: Completed | None) -> tuple[ToolInfo, tuple[GpuInfo, ...], str]:
    """The GPUs ``nvidia-smi`` listed; its version becomes the driver version."""
    if not smi.present:
        return smi, (), tr("没有 NVIDIA 驱动（找不到 nvidia-smi）", "no NVIDIA driver (nvidia-smi not found)")
    gpus = parse_nvidia_smi(done.stdout) if done is not None and done.returncode == 0 else ()
    if not gpus:
        return smi, (), smi.detail or tr("nvidia-smi 没有列出 GPU", "nvidia-smi lists no GPU")
    return ToolInfo(smi.name, smi.path, gpus[0].driver_version, smi.package, smi.detail), gpus, ""


def collect_host_facts(
    runner: Runner | None = None,
    *,
    probe_kvm: bool = True,
    disk_path: str = ".",
    tools: Sequence[str] | None = None,
) -> HostFacts:
    """Probe this machine (see the module docstring). Never raises for a failing probe.

    The one host probe of labkit. Its cheap part (files, libc) always runs; ``tools`` names the
    version commands to run (``None``: all of :data:`~labkit.logic.host.TOOL_COMMANDS`, what
    ``labkit doctor`` shows; ``()``: none) and Docker's engine is asked only when ``docker`` is one
    of them; ``probe_kvm`` adds the real KVM test run, in its own process. Everything spawned goes
    through ``runner``, in parallel threads; :func:`probe_commands` lists it.
    """
    t0 = time.monotonic()
    runner = runner or default_runner()
    names = list(TOOL_COMMANDS) if tools is None else list(tools)
    facts = _local_facts(disk_path)
    run_kvm = probe_kvm and facts.kvm_device and facts.kvm_accessible
    with ThreadPoolExecutor(max_workers=len(names) + 2) as pool:
        tool_futs = {name: pool.submit(_safe_probe_tool, runner, name) for name in names}
        kvm_fut = pool.submit(_safe_kvm_probe, runner) if run_kvm else None
        torch_fut = pool.submit(_torch)
        found = {name: fut.result() for name, fut in tool_futs.items()}
        tools_info = {name: info for name, (info, _) in found.items()}
        docker = DockerInfo()
        if "docker" in names:
            try:
                docker = probe_docker(runner, tools_info["docker"], TOOL_TIMEOUT)
            except Exception as exc:
                docker = DockerInfo(engine="error", detail=f"probe error: {exc}")
        if kvm_fut is not None:
            facts = _with_kvm_probe(facts, kvm_fut.result())
        torch = torch_fut.result()
    gpus: tuple[GpuInfo, ...] = ()
    gpu_detail = ""
    if "nvidia-smi" in names:
        tools_info["nvidia-smi"], gpus, gpu_detail = _gpus(tools_info["nvidia-smi"], found["nvidia-smi"][1])
    version_lines = {
        n: _first_line(d.stdout or d.stderr)
        for n, (_, d) in found.items()
        if d is not None and n != "kubectl"
    }
    return replace(
        facts,
        tools=tools_info,
        docker=docker,
        gpus=gpus,
        gpu_detail=gpu_detail,
        torch=torch,
        extra={**facts.extra, "version_lines": version_lines},
        probe_seconds=round(time.monotonic() - t0, 3),
    )


# ---------------------------------------------------------------------------------------------
# The chapter-1 step
# ---------------------------------------------------------------------------------------------
@dataclass
class ContextRunner:
    """Routes the probes through the step's context, so they are recorded as the step's commands.

    ``on_line=None``: version banners are evidence, not something to stream at the student.
    """

    ctx: RunContext

    def run(self, argv: Sequence[str], **kw: Any) -> Completed:
        kw["on_line"] = None
        return self.ctx.run(argv, **kw)

    def start(self, argv: Sequence[str], **kw: Any):
        return self.ctx.start(argv, **kw)


def _missing(facts: HostFacts) -> list[tuple[str, str]]:
    """``(what, package)`` chapter 1 cannot do without."""
    missing = [
        (name, TOOL_PACKAGES.get(name, name))
        for name in ("qemu-img", "qemu-system-aarch64")
        if not facts.tool(name).present
    ]
    if not any(facts.firmware.values()):
        missing.append((FIRMWARE_FILES[0], FIRMWARE_PACKAGE))
    return missing


def _host_evidence(facts: HostFacts, sizing: Sizing) -> dict[str, Any]:
    return {
        "host": {
            "os": facts.os_pretty,
            "arch": facts.arch,
            "cores": facts.cores,
            "memory": human_size(facts.memory_bytes),
            "memory_bytes": facts.memory_bytes,
            "disk_free": human_size(facts.disk_free_bytes),
            "disk_free_bytes": facts.disk_free_bytes,
            "disk_path": facts.disk_path,
        },
        "tools": {
            name: {"path": facts.tool(name).path, "version": facts.tool(name).version} for name in CH1_TOOLS
        },
        "firmware": facts.firmware,
        "kvm": {
            "device": facts.kvm_device,
            "usable": facts.kvm_usable,
            "reason": facts.kvm_reason,
            "stage": facts.kvm_probe.get("stage"),
            "virt_flags": facts.virt_flags,
            "modules": list(facts.kvm_modules),
        },
        "sizing": sizing.to_payload(),
    }


class HostCheck(Step):
    """Chapter 1, step 1: can this host do the virtualization chapter, and how big may a VM be?

    ``vm_cores`` / ``vm_memory`` are the VM the student plans (the course suggests 4 cores, 8G);
    they feed the sizing findings, not the pass/fail decision. Only reads: every command it runs
    is a read-only probe of the plan.
    """

    check_id = "ch1.host.check"
    timeout = 30.0

    def __init__(
        self,
        vm_cores: int = COURSE_VM_CORES,
        vm_memory: str | int = "8G",
        *,
        disk_path: str = ".",
        probe_kvm: bool = True,
    ) -> None:
        self.vm_cores = vm_cores
        self.vm_memory = vm_memory
        self.disk_path = disk_path
        self.probe_kvm = probe_kvm

    def _request(self) -> tuple[int, int]:
        cores = self.vm_cores
        if isinstance(cores, str) and cores.strip().isdigit():
            cores = int(cores.strip())
        if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
            raise InvalidField(
                "vm_cores",
                self.vm_cores,
                tr("不是核数", "is not a core count"),
                tr("填 1 以上的整数，例如 4", "use a whole number ≥ 1, e.g. 4"),
            )
        memory = parse_size(self.vm_memory, "vm_memory")
        if memory < 1:
            raise InvalidField(
                "vm_memory",
                self.vm_memory,
                tr("为 0", "is zero"),
                tr("填一个大小，例如 8G", "use a size such as 8G"),
            )
        return cores, memory

    def plan(self) -> Plan:
        cores, memory = self._request()
        return Plan(
            step=self.check_id,
            reason=tr(
                "检查本机能否完成第 1 章（QEMU、UEFI 固件、磁盘），并评估 {c} 核 / {m} 的虚拟机",
                "check this host can do chapter 1 (QEMU, UEFI firmware, disk) and judge a {c}-core / {m} VM",
                c=cores,
                m=human_size(memory),
            ),
            probes=probe_commands(probe_kvm=self.probe_kvm, tools=CH1_TOOLS),
            notes=[
                tr("读取", "reads") + " /etc/os-release, /proc/cpuinfo, /proc/meminfo, /sys/module, /dev/kvm",
                tr("检查固件文件", "checks firmware files") + ": " + ", ".join(FIRMWARE_FILES),
                tr(
                    "未安装的工具不运行；KVM 测试在单独进程中运行一小段客户机代码（超时 {t:g} 秒）",
                    "tools that are not installed are not run; the KVM test runs a few guest instructions "
                    "in a separate process ({t:g} s timeout)",
                    t=KVM_TIMEOUT,
                ),
            ],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        cores, memory = self._request()
        facts = collect_host_facts(
            ContextRunner(ctx), probe_kvm=self.probe_kvm, disk_path=self.disk_path, tools=CH1_TOOLS
        )
        return {"facts": facts, "vm_cores": cores, "vm_memory_bytes": memory}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        facts: HostFacts = evidence["facts"]
        sizing = advise(facts, evidence["vm_cores"], evidence["vm_memory_bytes"])
        ev = _host_evidence(facts, sizing)
        missing = _missing(facts)
        packages = sorted({pkg for _, pkg in missing})
        install = f"sudo apt-get install -y --no-install-recommends {' '.join(packages)}" if packages else ""
        problems = [tr("缺少 {n}", "missing {n}", n=name) for name, _ in missing]
        problems += [f.message for f in sizing.findings if f.code == "disk.too_small"]
        if problems:
            ev.update(missing=[n for n, _ in missing], install=install)
            msg = "; ".join(problems)
            if install:
                msg += tr("。安装：", ". Install: ") + install
            return CheckResult.failed(self.check_id, msg, **ev)
        rec = sizing.recommended
        # What it means first; why KVM fails (KVM_EXIT_INTERNAL_ERROR, kvm_pvm …) is in the folded
        # evidence ("kvm") for whoever wants the details.
        msg = tr(
            "本机可以完成第 1 章（QEMU {v}）。{k}。建议虚拟机：{r}。KVM 的技术细节见「证据」中的 kvm",
            "this host can do chapter 1 (QEMU {v}). {k}. Suggested VM: {r}. KVM's technical details are "
            "under 'kvm' in the evidence",
            v=facts.tool("qemu-system-aarch64").version or "?",
            k=acceleration_meaning(facts),
            r=str(rec) if rec else tr("本机太小，无法按规则分配", "none fits this host by the rules"),
        )
        return CheckResult.passed(self.check_id, msg, **ev)
