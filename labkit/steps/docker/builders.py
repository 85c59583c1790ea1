"""The two build routes: BuildKit through a ``docker`` CLI, or the Docker SDK's classic builder.

The SDK speaks only the classic builder API (``POST /build``); BuildKit needs the CLI. ``auto``
tries BuildKit through each ``docker`` CLI found (:func:`docker_clis`, PATH order, then Debian's
``/usr/bin/docker``), judged by read-only probes (:func:`labkit.logic.image_build.buildkit_verdict`;
on the development machines the first CLI is a 28.x without buildx, so ``/usr/bin/docker`` 20.10
builds), else the classic builder. Both commands come from one
:class:`~labkit.logic.image_build.BuildCall`; each route records the argv it ran.
"""

from __future__ import annotations

import contextlib
import os

from labkit.errors import Cancelled, LabkitError
from labkit.i18n import tr
from labkit.logic import image_build as ib
from labkit.steps.base import RunContext
from labkit.steps.docker.engine import DockerFailed

__all__ = ["build_with_cli", "build_with_sdk", "buildkit_cli", "docker_clis"]


def docker_clis() -> list[str]:
    """Every distinct ``docker`` executable on PATH, then Debian's, in PATH order (no process run:
    as cheap as ``shutil.which``, so ``plan`` may list them)."""
    seen: list[str] = []
    for d in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
        cand = os.path.join(d, "docker") if d else ""
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            real = os.path.realpath(cand)
            if real not in (os.path.realpath(s) for s in seen):
                seen.append(cand)
    return seen


def buildkit_cli(ctx: RunContext, clis: list[str] | None = None) -> tuple[str | None, str]:
    """The first CLI that builds with BuildKit here, and why (``None``: none can). Its probes run
    through ``ctx.run`` (recorded; the plan lists them)."""
    reasons: list[str] = []
    for cli in docker_clis() if clis is None else clis:
        buildx_probe, version_probe = ib.builder_probes(cli)
        try:
            buildx = ctx.run(buildx_probe, timeout=20, check=False, on_line=None)
            version = None
            if buildx.returncode != 0:
                version = ctx.run(version_probe, timeout=20, check=False, on_line=None).stdout
        except LabkitError as exc:
            reasons.append(f"{cli}: {exc}")
            continue
        ok, why = ib.buildkit_verdict(cli, buildx.returncode, version)
        if ok:
            return cli, why
        reasons.append(why)
    return None, "; ".join(reasons) or tr("没有 docker 命令行客户端", "no docker CLI")


def _hint() -> str:
    return tr(
        "看构建日志的最后几行：通常是某个 RUN 命令失败（ERROR 行前面就是它的输出）",
        "read the last lines of the build log: usually one RUN command failed (its output is just "
        "before the ERROR line)",
    )


def build_with_cli(ctx: RunContext, call: ib.BuildCall, cli: str, log: list[str], timeout: float) -> str:
    """Build through ``cli`` with BuildKit, streaming its lines; the image id."""
    argv = call.buildkit_argv(cli)

    def on_line(stream: str, line: str) -> None:
        log.append(line)
        if ctx.on_line is not None:
            ctx.on_line(stream, line)

    done = ctx.run(argv, timeout=timeout, on_line=on_line, check=False)
    if done.returncode != 0:
        raise DockerFailed(
            tr("构建镜像 {t}", "build image {t}", t=call.tag),
            ib.failure_excerpt(log),
            argv=argv,
            log="\n".join(line for line in log[-25:] if line.strip()),
            hint=_hint(),
        )
    image_id = ib.image_id_from_log(log)
    if image_id:
        return image_id
    # The containerd image store prints no "writing image" line: read the tag back (a planned probe).
    inspect = ["docker", "image", "inspect", call.tag]
    ctx.record(inspect)
    with ctx.engine(tr("检查镜像 {t}", "inspect image {t}", t=call.tag), argv=inspect) as client:
        return str(client.images.get(call.tag).id)


def _sdk_line(ctx: RunContext, item: dict, log: list[str], action: str, argv: list[str]) -> str | None:
    """Handle one JSON item of the classic builder's stream; the image id when it names one."""
    if "error" in item or "errorDetail" in item:
        message = (item.get("errorDetail") or {}).get("message") or item.get("error", "")
        raise DockerFailed(
            action,
            "\n".join([*log[-8:], str(message).strip()]),
            argv=argv,
            log="\n".join(log[-25:]),
            hint=_hint(),
        )
    text = item.get("stream") or item.get("status") or ""
    for line in str(text).splitlines():
        if line.strip():
            log.append(line)
            if ctx.on_line is not None:
                ctx.on_line("stdout", line)
    aux = item.get("aux")
    return str(aux["ID"]) if isinstance(aux, dict) and aux.get("ID") else None


def build_with_sdk(ctx: RunContext, call: ib.BuildCall, log: list[str], timeout: float) -> str:
    """Build with the SDK's classic builder (recorded as its CLI form); the image id."""
    argv = call.classic_argv()
    action = tr("构建镜像 {t}", "build image {t}", t=call.tag)
    image_id = ""
    ctx.record(argv)
    with ctx.engine(action, timeout=timeout, argv=argv) as client:
        stream = client.api.build(**call.sdk_kwargs())
        try:
            for item in stream:
                if ctx.cancel.is_set():
                    raise Cancelled(argv, None, "\n".join(log[-20:]))
                image_id = _sdk_line(ctx, item, log, action, argv) or image_id
        finally:
            with contextlib.suppress(Exception):
                stream.close()
        if not image_id:  # an engine that sent no aux ID: read the tag back (a planned probe)
            ctx.record(["docker", "image", "inspect", call.tag])
            image_id = client.images.get(call.tag).id
    return image_id
