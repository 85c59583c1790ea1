"""Running containers: the registry-free hello-world (``ch2.docker.hello``) and ``docker run IMAGE``
(``ch2.docker.run``), both through :func:`run_container` (create, start, wait, read, remove)."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic import docker as dk
from labkit.logic.docker_names import LOCAL_BASES, validate_container_name, validate_reference
from labkit.steps.base import Plan, RunContext
from labkit.steps.docker.common import DockerStep, exited_badly, sdk_note
from labkit.steps.docker.engine import call_errors, perform
from labkit.steps.docker.local_base import ensure_local_base, missing_base_note

__all__ = ["GREETING", "HelloContainer", "RunImage", "run_container", "run_container_call"]

#: What the hello container prints (the hello-world equivalent that needs no registry).
GREETING = "Hello from labkit! 你好，容器！"


def run_container_call(
    client: Any, ctx: RunContext | None, call: dk.DockerCall, *, timeout: float = 120
) -> dict[str, Any]:
    """Do a ``docker run --rm`` call (:func:`labkit.logic.docker.run_container`); returns evidence.

    ``containers.create``, then start, wait, read the logs and remove, all under the call's
    error translation; the container is removed even when it failed to start (port taken).
    ``ctx=None`` (only for callers outside a step's ``run``): nothing is recorded.
    """
    container = None
    with call_errors(call):
        try:
            if ctx is not None:
                container = perform(ctx, client, call)
            else:
                container = client.containers.create(*call.args, **call.kwargs)
            container.start()
            status = container.wait(timeout=timeout)
            stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        finally:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
    return {
        "container_id": container.id,
        "container_name": container.name,
        "image": call.args[0],
        "command": call.args[1],
        "exit_code": status.get("StatusCode"),
        "error": (status.get("Error") or {}).get("Message") if status.get("Error") else None,
        "stdout": stdout[-4000:],
        "stderr": stderr[-4000:],
        "removed": True,
        "labels": dict(call.labels),
        "cli": shlex.join(call.argv),
    }


def run_container(
    client: Any,
    image: str,
    command: list[str] | None,
    *,
    step: str,
    name: str | None = None,
    ports: dict[str, int] | None = None,
    timeout: float = 120,
    environment: dict[str, str] | None = None,
    ctx: RunContext | None = None,
) -> dict[str, Any]:
    """Run a labelled container to its end and remove it (see :func:`run_container_call`)."""
    call = dk.run_container(image, command, step=step, name=name, ports=ports, environment=environment)
    return run_container_call(client, ctx, call, timeout=timeout)


def _container_gone(client: Any, container_id: str) -> bool:
    return not client.containers.list(all=True, filters={"id": container_id})


class HelloContainer(DockerStep):
    """The registry-free ``docker run hello-world``: print a greeting from a local busybox image."""

    check_id = "ch2.docker.hello"
    timeout = 120.0

    def __init__(self, image: str = LOCAL_BASES["busybox"], *, greeting: str = GREETING) -> None:
        self.image = image
        self.greeting = greeting
        self._call: dk.DockerCall | None = None

    def call(self) -> dk.DockerCall:
        """The one ``docker run`` of this step, built once: the plan shows it and ``run`` performs it,
        with the same labels (the random object id included) and the same ``-e``."""
        if self._call is None:
            validate_reference(self.image)
            # the greeting travels in the environment, so no quoting of student text into a shell line
            command = ["sh", "-c", 'echo "$LABKIT_GREETING"; echo "kernel: $(uname -sr) arch: $(uname -m)"']
            env = {"LABKIT_GREETING": self.greeting}
            self._call = dk.run_container(self.image, command, step=self.check_id, environment=env)
        return self._call

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "运行一个打印问候语的容器（课程里的 hello-world，但镜像在本地，无需仓库）",
                "run a container that prints a greeting (the course's hello-world, from a local image, "
                "no registry)",
            ),
            commands=[self.call().cli],
            notes=[missing_base_note(self.image, step=self.check_id), sdk_note()],
            probes=[dk.inspect_image_argv(self.image)],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with ctx.engine(tr("运行 hello 容器", "run the hello container")) as client:
            built = ensure_local_base(client, ctx, self.image, step=self.check_id)
            ev = run_container_call(client, ctx, self.call(), timeout=60)
        ev["base_built"] = built is not None
        for line in ev["stdout"].splitlines():
            ctx.say(line)
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        with ctx.engine(tr("检查容器已删除", "check the container is gone")) as client:
            gone = _container_gone(client, evidence["container_id"])
        ev = {**evidence, "container_removed": gone}
        if evidence["exit_code"] != 0:
            return exited_badly(self.check_id, ev)
        if self.greeting not in evidence["stdout"]:
            return CheckResult.failed(
                self.check_id,
                tr("容器输出里没有问候语", "the greeting is missing from the container's output"),
                **ev,
            )
        if not gone:
            return CheckResult.failed(
                self.check_id, tr("容器运行后没有被删除", "the container was not removed after running"), **ev
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "容器运行成功并输出：“{o}”（容器已删除）",
                "the container ran and printed: “{o}” (container removed)",
                o=evidence["stdout"].strip().splitlines()[0],
            ),
            **ev,
        )


def _check_ports(ports: Mapping[str, object] | None) -> None:
    for cport, hport in (ports or {}).items():
        if isinstance(hport, bool) or not isinstance(hport, int) or not 1 <= hport <= 65535:
            raise InvalidField(
                "ports",
                f"{cport}→{hport}",
                tr("宿主端口应为 1-65535", "host port must be 1-65535"),
                tr("例如 {'8888/tcp': 8888}", "e.g. {'8888/tcp': 8888}"),
            )


class RunImage(DockerStep):
    """``docker run IMAGE COMMAND``: run the (loaded) image and read back what the command prints."""

    check_id = "ch2.docker.run"
    timeout = 180.0

    def __init__(
        self,
        image: str = "labkit/ailab:latest",
        command: Sequence[str] | None = None,
        *,
        expect: str | None = None,
        ports: dict[str, int] | None = None,
        name: str | None = None,
    ) -> None:
        self.image = image
        self.command = list(command) if command is not None else ["cat", "/labkit-note"]
        self.expect = expect
        self.ports = ports
        self.name = name
        self._call: dk.DockerCall | None = None

    def call(self) -> dk.DockerCall:
        """The one ``docker run`` of this step, built once (the plan shows it, ``run`` performs it)."""
        if self._call is None:
            validate_reference(self.image, "image")
            if self.name is not None:
                validate_container_name(self.name, "name")
            _check_ports(self.ports)
            self._call = dk.run_container(
                self.image, self.command, step=self.check_id, name=self.name, ports=self.ports
            )
        return self._call

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr("运行镜像 {i} 并读取输出", "run image {i} and read its output", i=self.image),
            commands=[self.call().cli],
            notes=[sdk_note()],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        call = self.call()
        with ctx.engine(tr("运行镜像", "run the image")) as client:
            ev = run_container_call(client, ctx, call)
        for line in ev["stdout"].splitlines()[:20]:
            ctx.say(line)
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        out = evidence["stdout"]
        if evidence["exit_code"] != 0:
            return exited_badly(self.check_id, evidence)
        if self.expect is not None and self.expect not in out:
            return CheckResult.failed(
                self.check_id,
                tr("输出里没有 {e!r}", "the output lacks {e!r}", e=self.expect),
                **evidence,
            )
        first = out.strip().splitlines()[0] if out.strip() else ""
        return CheckResult.passed(
            self.check_id,
            tr("镜像 {i} 运行成功，输出：{o}", "image {i} ran and printed: {o}", i=self.image, o=first[:200]),
            **evidence,
        )
