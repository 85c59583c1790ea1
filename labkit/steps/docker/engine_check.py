"""Chapter 2a, course 2.4.1 / 2.4.2: can this user talk to a Docker engine? (``ch2.docker.engine``)"""

from __future__ import annotations

import os
import shutil
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import LabkitError
from labkit.i18n import tr
from labkit.steps.base import Plan, RunContext
from labkit.steps.docker.common import DockerStep, sdk_note

__all__ = ["EngineCheck"]

#: The engine reads EngineCheck makes through the SDK (CLI form; reads are never recorded).
_ENGINE_READS = (["docker", "version"], ["docker", "info"])
#: What the doctor's probe runs instead when the Python docker SDK is missing (recorded: a runner call).
_CLI_VERSION = ["docker", "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"]


class EngineCheck(DockerStep):
    """Can this user talk to a Docker engine? Server/API version, storage driver, the docker group.

    Always runs (even when the engine is down: diagnosing that is the point) and turns every
    failure into a *fail* result whose message says what to do, never a traceback. Everything it
    does is read-only, so its plan has probes and no commands.
    """

    check_id = "ch2.docker.engine"
    timeout = 60.0

    def unavailable(self, ctx: RunContext) -> str | None:
        return None

    def plan(self) -> Plan:
        from labkit.steps import host as host_probe

        return Plan(
            step=self.check_id,
            reason=tr(
                "连接 Docker 引擎（自动协商 API 版本），读取版本、存储驱动和当前用户的权限",
                "connect to the Docker engine (API version negotiated), read versions, storage driver "
                "and this user's access",
            ),
            notes=[sdk_note()],
            probes=[host_probe.TOOL_COMMANDS["docker"][0], _CLI_VERSION, *_ENGINE_READS],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        ev = _probe_evidence(ctx)
        try:
            action = tr("读取引擎信息", "read engine information")
            with ctx.engine(action, timeout=15, argv=["docker", "info"]) as client:
                ev["engine"] = _engine_facts(client)
        except LabkitError as exc:
            ev["error"] = str(exc)
            ev["error_type"] = type(exc).__name__
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        if "error" in evidence:
            return CheckResult.failed(self.check_id, evidence["error"], **evidence)
        eng = evidence["engine"]
        msg = tr(
            "Docker 引擎 {v}（API {a}，存储驱动 {d}）；{w}{x}",
            "Docker engine {v} (API {a}, storage driver {d}); {w}{x}",
            v=eng["server_version"],
            a=eng["api_version"],
            d=eng["storage_driver"],
            w=_who(evidence),
            x=_path_warning(evidence["probe"]["client_paths"]),
        )
        return CheckResult.passed(self.check_id, msg, **evidence)


def _probe_evidence(ctx: RunContext) -> dict[str, Any]:
    """The doctor's probe (socket, group, CLI on PATH): the same diagnosis ``labkit doctor`` shows."""
    from labkit.logic.host import DockerInfo, ToolInfo
    from labkit.steps import host as host_probe

    runner = host_probe.ContextRunner(ctx)
    try:
        cli, _ = host_probe.probe_tool(runner, "docker", host_probe.TOOL_TIMEOUT)
    except LabkitError:
        cli = ToolInfo("docker", shutil.which("docker"))
    try:
        info = host_probe.probe_docker(runner, cli, host_probe.TOOL_TIMEOUT, ctx.docker_connector())
    except Exception as exc:  # the probe is built never to raise; if it does, keep diagnosing
        info = DockerInfo(engine="error", detail=f"probe error: {exc}")
    return {
        "probe": {
            "engine": info.engine,
            "detail": info.detail,
            "socket": info.socket,
            "socket_group": info.socket_group,
            "client_paths": list(info.client_paths),
            "client_version": info.client_version,
            "dockerd_path": info.dockerd_path,
            "systemd": info.systemd,
        },
        "user": {
            "uid": os.geteuid(),
            "is_root": os.geteuid() == 0,
            "in_socket_group": info.user_in_socket_group,
        },
    }


def _engine_facts(client: Any) -> dict[str, Any]:
    """Versions and configuration from ``docker version`` + ``docker info`` (SDK reads)."""
    version = client.version()
    system = client.info()
    return {
        "server_version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "min_api_version": version.get("MinAPIVersion"),
        "negotiated_api_version": client.api.api_version,
        "storage_driver": system.get("Driver"),
        "cgroup_driver": system.get("CgroupDriver"),
        "docker_root_dir": system.get("DockerRootDir"),
        "os": system.get("OperatingSystem"),
        "kernel": system.get("KernelVersion"),
        "architecture": system.get("Architecture"),
        "containers": system.get("Containers"),
        "images": system.get("Images"),
        "runtimes": sorted((system.get("Runtimes") or {}).keys()),
        "security_options": system.get("SecurityOptions") or [],
    }


def _who(evidence: dict[str, Any]) -> str:
    user = evidence["user"]
    if user["is_root"]:
        return tr("以 root 身份访问", "accessed as root")
    if user["in_socket_group"]:
        return tr(
            "当前用户在 {g} 组：无需 sudo，但这等同于 root 权限",
            "this user is in group {g}: no sudo needed, but that is root-equivalent",
            g=evidence["probe"]["socket_group"] or "docker",
        )
    return tr("可以访问引擎", "engine accessible")


def _path_warning(paths: list[str]) -> str:
    if len(paths) <= 1:
        return ""
    return tr(
        "；注意 PATH 上有 {n} 个 docker 命令（{p}），实际用的是第一个",
        "; note: {n} docker commands on PATH ({p}), the first one wins",
        n=len(paths),
        p=", ".join(paths),
    )
