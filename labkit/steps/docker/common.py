"""What every chapter-2a Docker step shares: the base class, the SDK note, image look-ups."""

from __future__ import annotations

from typing import Any

from labkit.checks import CheckResult
from labkit.i18n import tr
from labkit.logic import docker as dk
from labkit.steps.base import RunContext, Step

__all__ = ["DockerStep", "exited_badly", "find_image", "image_info", "sdk_note"]


def sdk_note() -> str:
    """The plan note saying the commands shown are the CLI equivalent of SDK calls."""
    return tr(
        "labkit 通过 Docker SDK（Engine API）完成这些操作；上面是等价的 docker 命令，便于对照课程",
        "labkit does this through the Docker SDK (Engine API); the docker commands above are the "
        "equivalent, to compare with the course text",
    )


class DockerStep(Step):
    """Shared by the chapter-2a steps: the engine must answer, or the step is planned only."""

    timeout = 600.0

    def unavailable(self, ctx: RunContext) -> str | None:
        return ctx.docker_unavailable()


def find_image(client: Any, ref: str) -> Any | None:
    """The image ``ref`` names on this engine, or ``None`` (a read: not recorded)."""
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def image_info(image: Any) -> dict[str, Any]:
    """What steps report about an SDK ``Image`` (see :func:`labkit.logic.docker.image_summary`)."""
    return dk.image_summary(image.attrs)


def exited_badly(check_id: str, evidence: dict[str, Any]) -> CheckResult:
    """The *fail* result for a container that exited non-zero, with the end of what it printed."""
    return CheckResult.failed(
        check_id,
        tr(
            "容器退出码 {c}：“{e}”",
            "container exited with {c}: “{e}”",
            c=evidence["exit_code"],
            e=(evidence["stderr"] or evidence["stdout"]).strip()[-300:],
        ),
        **evidence,
    )
