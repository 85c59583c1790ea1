"""Chapter 2a, building an image from a Dockerfile (course 2.4.7), for real, with streamed progress.

:class:`BuildImage` (check ``ch2.docker.build``) plans the Dockerfile and the ``docker build``
command, refuses the mistakes students make before anything reaches the engine (a Dockerfile not
found or saved as ``Dockerfile.txt``, an invalid image name, build arguments the Dockerfile does
not declare, a huge build context), builds, and checks the resulting image.

``plan`` is pure and cheap (panels re-plan on every keystroke): it reads the small Dockerfile and
lists the commands; measuring the build context and writing files happen in ``run``
(:mod:`~labkit.steps.docker.build_context`). The two builder routes, BuildKit through a ``docker``
CLI or the SDK's classic builder, are in :mod:`~labkit.steps.docker.builders`; their commands and
the rules are pure, in :mod:`labkit.logic.image_build`. The check inspects the image: labkit labels,
layers, size, and the version recorded at build time in ``/opt/labkit/torch-version``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import ConsentRequired, InvalidField, LabkitError
from labkit.findings import Finding
from labkit.i18n import consent_hint, in_panel, tr
from labkit.logic import docker as dk
from labkit.logic import dockerfile as dfl
from labkit.logic import image_build as ib
from labkit.logic.docker_names import LOCAL_BASES, labkit_labels, validate_reference
from labkit.logic.sizes import human_size
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.docker.build_context import (
    context_size,
    host_extra_ca_files,
    read_dockerfile,
    write_generated,
)
from labkit.steps.docker.builders import build_with_cli, build_with_sdk, buildkit_cli, docker_clis
from labkit.steps.docker.owned import remember_created

__all__ = ["BUILDERS", "BuildImage", "context_size", "host_extra_ca_files"]

BUILDERS = ib.BUILDERS


def _lint_note(f: Finding) -> str:
    return f"[{f.level}] {f.code}{f.where}: {f.message}" + (f" — {f.fix}" if f.fix else "")


class BuildImage(Step):
    """Build ``tag`` from ``context_dir`` (course 2.4.7 ``docker build -t pytorch-cuda:latest .``).

    ``spec`` (an :class:`~labkit.logic.dockerfile.ImageSpec`) makes the step write the generated
    Dockerfile into the context first (refusing to replace a different file unless
    ``overwrite=True``; a backup is kept). ``extra_ca_files`` are copied into ``labkit-ca/`` of the
    context when the spec asks for extra CA certificates (networks with TLS inspection).
    """

    check_id = dfl.CHECK_ID
    timeout = 3600.0

    def __init__(
        self,
        context_dir: str | os.PathLike[str],
        tag: str,
        build_args: Mapping[str, str] | None = None,
        dockerfile: str = "Dockerfile",
        *,
        buildkit: str | bool = "auto",
        spec: dfl.ImageSpec | None = None,
        overwrite: bool = False,
        extra_ca_files: Iterable[str | os.PathLike[str]] = (),
        warn_bytes: int = ib.WARN_BYTES,
        max_bytes: int = ib.MAX_BYTES,
        allow_large: bool = False,
        nocache: bool = False,
        labels: Mapping[str, str] | None = None,
        pull: bool = True,
    ) -> None:
        self.context_dir = Path(context_dir)
        #: ``False``: a base image that is not on this machine is *not* downloaded implicitly (a CUDA
        #: base is several GB, and offline or registry-less hosts cannot get it): the step is planned
        #: and says how to get the base. The notebook asks for this explicitly with a checkbox.
        self.pull = pull
        self.tag = tag
        self.build_args = dict(build_args or {})
        self.dockerfile = dockerfile
        # True / False are accepted for "buildkit" / "sdk"
        self.buildkit = {True: "buildkit", False: "sdk"}.get(buildkit, buildkit)  # type: ignore[call-overload]
        self.spec = spec
        self.overwrite = overwrite
        self.extra_ca_files = [Path(p) for p in extra_ca_files]
        self.warn_bytes = warn_bytes
        self.max_bytes = max_bytes
        self.allow_large = allow_large
        self.nocache = nocache
        self.labels = dict(labels or {})
        # Made once per step (the object label is random), so the plan shows the labels it builds with.
        self.image_labels = {**labkit_labels(self.check_id, kind="image", ref=tag), **self.labels}
        self._version_call: dk.DockerCall | None = None

    # -- inputs ------------------------------------------------------------------------------
    @property
    def dockerfile_path(self) -> Path:
        p = Path(self.dockerfile)
        return p if p.is_absolute() else self.context_dir / p

    def call(self) -> ib.BuildCall:
        """The build, from which every route's command is made."""
        return ib.BuildCall(
            str(self.context_dir),
            str(self.dockerfile_path),
            self.tag,
            self.build_args,
            self.image_labels,
            self.nocache,
        )

    def _dockerfile_text(self) -> str:
        """Check the inputs; the Dockerfile text that will be built (a small file read, no walk)."""
        validate_reference(self.tag, "tag")
        if self.buildkit not in BUILDERS:
            raise InvalidField(
                "buildkit",
                self.buildkit,
                tr("不是构建方式", "is not a builder choice"),
                tr("可选：{b}", "use one of {b}", b=", ".join(BUILDERS)),
            )
        if not self.context_dir.is_dir():
            raise InvalidField(
                "context_dir",
                str(self.context_dir),
                tr("不是一个目录", "is not a directory"),
                tr(
                    "构建上下文是包含 Dockerfile 的目录（docker build 最后的那个 .）",
                    "the build context is the directory holding the Dockerfile (the final . of docker build)",
                ),
            )
        ib.check_build_args(self.build_args)
        text = (
            self._generated_text()
            if self.spec is not None
            else read_dockerfile(self.dockerfile_path, self.context_dir)
        )
        ib.check_build_args(self.build_args, text)
        ib.check_base_fits(
            self.base_image(text), text, "BASE_IMAGE" if "BASE_IMAGE" in self.build_args else "base_image"
        )
        return text

    def _generated_text(self) -> str:
        assert self.spec is not None
        text = dfl.build_dockerfile(self.spec)
        path = self.dockerfile_path
        if (
            path.exists()
            and path.read_text(encoding="utf-8", errors="replace") != text
            and not self.overwrite
        ):
            raise ConsentRequired(
                tr(
                    "用生成的 Dockerfile 替换已有的 {p}",
                    "replace {p} with the generated Dockerfile",
                    p=path,
                ),
                tr(
                    "{c}（会保留备份），或换一个构建上下文目录",
                    "{c} (a backup is kept), or use another context directory",
                    c=consent_hint("overwrite"),
                ),
                keyword="overwrite",
            )
        return text

    def base_image(self, text: str | None = None) -> str | None:
        """The image the build starts ``FROM`` (build arg, spec, or the first FROM of ``text``, else
        of the Dockerfile on disk)."""
        if "BASE_IMAGE" in self.build_args:
            return self.build_args["BASE_IMAGE"]
        if self.spec is not None:
            return self.spec.base_image
        if text is not None:
            return ib.first_base(text)
        path = self.dockerfile_path
        return ib.first_base(path.read_text(encoding="utf-8", errors="replace")) if path.is_file() else None

    def _check_probes(self, text: str) -> list[list[str]]:
        """What ``check`` reads: the image, and the recorded version when the Dockerfile writes one."""
        probes = [["docker", "image", "inspect", self.tag]]
        if dfl.VERSION_FILE in text:
            probes.append(self.version_call().argv)
        return probes

    def version_call(self) -> dk.DockerCall:
        """The labelled ``docker run --rm`` that reads the version the build recorded (built once, so
        the probe the plan shows is the call the check makes, labels included)."""
        if self._version_call is None:
            self._version_call = dk.run_container(self.tag, ["cat", dfl.VERSION_FILE], step=self.check_id)
        return self._version_call

    # -- hooks -------------------------------------------------------------------------------
    def plan(self) -> Plan:
        text = self._dockerfile_text()
        clis = docker_clis() if self.buildkit != "sdk" else []
        routes = ib.build_routes(self.call(), self.buildkit, clis)
        probes = [p for cli in clis for p in ib.builder_probes(cli)]
        base = None if self.pull else self.base_image()
        if base is not None:
            probes.append(["docker", "image", "inspect", base])
        return Plan(
            step=self.check_id,
            reason=tr("用 {d} 构建镜像 {t}", "build image {t} from {d}", t=self.tag, d=self.dockerfile_path),
            commands=[routes[0].argv] if routes else [],
            files={str(self.dockerfile_path): text},
            notes=[
                self._route_note(routes),
                tr(
                    "构建上下文（目录减去 .dockerignore 排除的文件）在发送前测量："
                    "超过 {w} 警告，超过 {m} 拒绝",
                    "the build context (the directory minus .dockerignore matches) is measured before it "
                    "is sent: a warning above {w}, refused above {m}",
                    w=human_size(self.warn_bytes),
                    m=human_size(self.max_bytes),
                )
                + ("" if in_panel() else tr("，除非 allow_large=True", " unless allow_large=True")),
                *(_lint_note(f) for f in dfl.lint_dockerfile(text)),
            ],
            probes=[*probes, *self._check_probes(text)],
            alternatives=[r.argv for r in routes[1:]],
        )

    def _route_note(self, routes: list[ib.BuildRoute]) -> str:
        if not routes:
            return tr(
                "没有 docker 命令行客户端：buildkit='buildkit' 无法构建；用 buildkit='sdk'",
                "no docker CLI: buildkit='buildkit' cannot build here; use buildkit='sdk'",
            )
        if len(routes) == 1:
            return tr("构建方式：{b}", "builder: {b}", b=routes[0].builder)
        fallback = (
            tr(
                "都不行时用 Docker SDK 的经典构建器（等价于 env DOCKER_BUILDKIT=0 docker build）",
                "if none can, the Docker SDK's classic builder (like env DOCKER_BUILDKIT=0 docker build)",
            )
            if routes[-1].builder == "sdk-classic"
            else tr("都不行时拒绝构建", "if none can, the step refuses")
        )
        return tr(
            "构建方式在运行时决定：依次检查每个 docker 客户端（下面的 buildx version / version 检查），"
            "第一个有 buildx 插件或版本低于 23 的用 BuildKit 构建（上面的命令用的是第一个客户端）；{f}。"
            "其余可能运行的命令也列在下面",
            "the builder is chosen when the step runs: each docker CLI is probed in turn (buildx version "
            "/ version, below); the first with the buildx plugin or older than 23 builds with BuildKit "
            "(the command above uses the first CLI); {f}. The other commands it may run are listed below",
            f=fallback,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        reason = ctx.docker_unavailable()
        if reason or self.pull:
            return reason
        base = self.base_image()
        if base is None:
            return None
        inspect = ["docker", "image", "inspect", base]
        ctx.record(inspect)
        try:
            with ctx.engine(f"look up base image {base}", argv=inspect) as client:
                client.images.get(base)
        except LabkitError:
            return tr(
                "基础镜像 {b} 不在本机；不会自动下载（可能有几个 GB）：勾选「拉取基础镜像」"
                "（或 docker pull {b}）；离线时在「本地基础镜像」面板选 debian 构建 {d}"
                "（带 apt 和 python3），再把「基础镜像」改成 {d}",
                "base image {b} is not on this machine and is not downloaded implicitly (it can be "
                "several GB): tick 'pull base image' (or docker pull {b}); offline, build {d} with kind "
                "debian in the local base panel (it has apt and python3) and use it as the base image",
                b=base,
                d=LOCAL_BASES["debian"],
            )
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        text = self._dockerfile_text()
        call = self.call()
        if self.spec is not None:
            for line in write_generated(
                self.dockerfile_path,
                text,
                self.context_dir,
                overwrite=self.overwrite,
                extra_ca=self.spec.extra_ca_certs,
                ca_files=self.extra_ca_files,
            ):
                ctx.say(line)
        size = context_size(self.context_dir, self.dockerfile)
        warning = ib.check_context_size(
            size,
            str(self.context_dir),
            warn_bytes=self.warn_bytes,
            max_bytes=self.max_bytes,
            allow_large=self.allow_large,
        )
        if warning:
            ctx.say(warning)
        cli, why = self._choose_cli(ctx)
        ctx.say(
            tr("构建方式：{b}（{w}）", "builder: {b} ({w})", b="BuildKit" if cli else "SDK classic", w=why)
        )
        log: list[str] = []
        if cli:
            image_id = build_with_cli(ctx, call, cli, log, self.timeout)
        else:
            image_id = build_with_sdk(ctx, call, log, self.timeout)
        remember_created(image_id, self.image_labels)
        return {
            "tag": self.tag,
            "image_id": image_id,
            "builder": "buildkit-cli" if cli else "sdk-classic",
            "builder_reason": why,
            "context_bytes": size["bytes"],
            "context_files": size["files"],
            "build_args": self.build_args,
            "dockerfile": str(self.dockerfile_path),
            "log_tail": "\n".join(log[-30:]),
            "lint": [f.to_dict() for f in dfl.lint_dockerfile(text)],
            "records_version": dfl.VERSION_FILE in text,
        }

    def _choose_cli(self, ctx: RunContext) -> tuple[str | None, str]:
        """The CLI that builds with BuildKit (``None``: the SDK classic builder), and why."""
        if self.buildkit == "sdk":
            return None, "sdk requested"
        cli, why = buildkit_cli(ctx)
        if cli is None and self.buildkit == "buildkit":
            raise InvalidField(
                "buildkit",
                "buildkit",
                tr("这台机器上不可用：{w}", "is not available here: {w}", w=why),
                tr(
                    "安装 buildx 插件（Debian/Ubuntu：docker-buildx 包），或用 buildkit='sdk'",
                    "install the buildx plugin (Debian/Ubuntu package docker-buildx), or use buildkit='sdk'",
                ),
            )
        return cli, why

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        ev = {**evidence, **self._inspect(ctx, bool(evidence.get("records_version")))}
        ev["recorded_dist"] = self.build_args.get(
            "TORCH_DIST", self.spec.torch_dist if self.spec else "torch"
        )
        asked = (ev.get("labels") or {}).get(dfl.LABEL_TORCH)
        judged = {**ev, "built_id": evidence.get("image_id")}
        problems = ib.image_problems(self.tag, judged, self.image_labels, asked)
        if problems:
            return CheckResult.failed(self.check_id, "; ".join(problems), **ev)
        return CheckResult.passed(self.check_id, ib.pass_message(self.tag, ev), **ev)

    def _inspect(self, ctx: RunContext, records_version: bool) -> dict[str, Any]:
        """The image the tag names now, and the version its build recorded (read in a container)."""
        from labkit.steps.docker.run import run_container_call

        # reads are planned as probes but not recorded (logic/docker.py); the version container is
        # an engine change, recorded through run_container_call like every docker run
        inspect = ["docker", "image", "inspect", self.tag]
        with ctx.engine(tr("检查镜像 {t}", "inspect image {t}", t=self.tag), argv=inspect) as client:
            image = client.images.get(self.tag)
            read = None
            if records_version:
                read = run_container_call(client, ctx, self.version_call(), timeout=60)
        attrs = image.attrs
        size = int(attrs.get("Size") or 0)
        ev: dict[str, Any] = {
            "image_id": image.id,
            "tags": image.tags,
            "size": size,
            "size_human": human_size(size),
            "layers": len((attrs.get("RootFS") or {}).get("Layers") or []),
            "labels": image.labels or {},
            "recorded_version": (read or {}).get("stdout", "").strip()
            if (read or {}).get("exit_code") == 0
            else "",
        }
        if read is not None:
            ev["version_container"] = {k: read[k] for k in ("container_id", "exit_code", "stderr", "removed")}
        return ev
