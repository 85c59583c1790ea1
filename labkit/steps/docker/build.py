"""Chapter 2a, building an image from a Dockerfile (course 2.4.7), for real, with streamed progress.

:class:`BuildImage` (check ``ch2.docker.build``) plans the Dockerfile and the equivalent ``docker
build`` command, refuses the mistakes students make before anything is sent to the engine, builds,
and checks the resulting image.

Before the build (all in :meth:`BuildImage.plan`, so the notebook shows them without running):

* **Dockerfile not found** names the path it looked for and the fix (the file is called exactly
  ``Dockerfile``, no extension; a ``Dockerfile.txt`` saved by an editor is pointed out).
* **Image name invalid** (upper case, spaces, a bad tag) via :mod:`labkit.logic.docker_names`.
* **Build arguments the Dockerfile does not declare**: the engine only warns ("build-args were not
  consumed") and the build goes on with the *default*, e.g. pulling ``nvidia/cuda`` from a registry
  instead of using the local base a misspelt ``BASE_IMAG=…`` meant.
* **Build context too large**: the context (the directory, minus ``.dockerignore`` matches, using the
  SDK's own ``exclude_paths``) is measured *before* it is sent: above ``warn_bytes`` (100 MB) a
  warning, above ``max_bytes`` (1 GiB) :class:`~labkit.errors.ConsentRequired` unless
  ``allow_large=True``. A student who builds in their home directory otherwise uploads gigabytes.

Builders. The Docker SDK speaks only the classic builder API (``POST /build``); BuildKit needs the
CLI. ``builder="auto"`` uses BuildKit when a BuildKit-capable ``docker`` CLI exists — either one with
the ``buildx`` plugin (CLI ≥ 23 refuses ``DOCKER_BUILDKIT=1`` without it: "BuildKit is enabled but
the buildx component is missing") or a CLI older than 23 with built-in BuildKit (Debian 12's
``/usr/bin/docker`` 20.10) — run through the runner as ``DOCKER_BUILDKIT=1 docker build
--progress=plain --iidfile …`` so its lines stream; otherwise it falls back to the SDK's classic
builder (``APIClient.build(decode=True)``: JSON items ``{"stream"}``, ``{"error"}``, ``{"aux":
{"ID"}}``). On the development machines the first ``docker`` on PATH is a 28.x CLI without buildx,
so ``auto`` picks ``/usr/bin/docker``. Either way labkit adds its labels (``--label`` / ``labels=``)
so cleanup can find the image.

The check inspects the image: labkit labels present, layer count, size, and the version recorded at
build time in ``/opt/labkit/torch-version`` (read by a labelled, auto-removed container with no
network); the Dockerfile's lint findings go into the evidence.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import Cancelled, ConsentRequired, InvalidField, LabkitError
from labkit.i18n import tr
from labkit.logic import dockerfile as dfl
from labkit.logic.docker_names import labkit_labels, short_id, validate_reference
from labkit.logic.sizes import human_size
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.docker.engine import DockerFailed

__all__ = [
    "BUILDERS",
    "BuildImage",
    "ContextSize",
    "buildkit_cli",
    "context_size",
    "host_extra_ca_files",
]

BUILDERS = ("auto", "buildkit", "sdk")
#: Warn above this many bytes of build context (sent to the engine before the first instruction).
WARN_BYTES = 100 * 10**6
#: Refuse above this many bytes unless ``allow_large=True``.
MAX_BYTES = 2**30
#: Where Debian / Ubuntu keep locally added CA certificates (the TLS-inspection ones live here).
HOST_CA_DIR = "/usr/local/share/ca-certificates"


# ----------------------------------------------------------------------------------------------
# Build context
# ----------------------------------------------------------------------------------------------
ContextSize = dict[str, Any]
"""``{"bytes": n, "files": n, "largest": [(path, bytes), …], "dockerignore": bool}``."""


def _dockerignore(context: Path) -> list[str]:
    """The patterns of ``.dockerignore`` as the SDK reads them (blank lines and # comments dropped)."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_size(context: str | os.PathLike[str], dockerfile: str = "Dockerfile") -> ContextSize:
    """Bytes and files the engine would receive for ``context`` (``.dockerignore`` honoured)."""
    from docker.utils.build import exclude_paths  # the SDK's own matcher: the same files it sends

    root = Path(context)
    patterns = _dockerignore(root)
    total = count = 0
    largest: list[tuple[str, int]] = []
    for rel in exclude_paths(str(root), patterns, dockerfile=dockerfile):
        try:
            st = os.lstat(root / rel)
        except OSError:
            continue
        if not os.path.isfile(root / rel) or os.path.islink(root / rel):
            continue
        total += st.st_size
        count += 1
        largest.append((rel, st.st_size))
        if len(largest) > 20:
            largest.sort(key=lambda x: -x[1])
            del largest[5:]
    largest.sort(key=lambda x: -x[1])
    return {"bytes": total, "files": count, "largest": largest[:5], "dockerignore": bool(patterns)}


def host_extra_ca_files(directory: str = HOST_CA_DIR) -> list[Path]:
    """The host's locally added CA certificates (``*.crt``), for networks with TLS inspection."""
    d = Path(directory)
    return sorted(p for p in d.glob("*.crt") if p.is_file()) if d.is_dir() else []


# ----------------------------------------------------------------------------------------------
# Choosing the builder
# ----------------------------------------------------------------------------------------------
def _docker_clis() -> list[str]:
    """Every distinct ``docker`` executable on PATH, then Debian's, in PATH order."""
    seen: list[str] = []
    for d in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
        cand = os.path.join(d, "docker") if d else ""
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            real = os.path.realpath(cand)
            if real not in (os.path.realpath(s) for s in seen):
                seen.append(cand)
    return seen


def buildkit_cli(ctx: RunContext) -> tuple[str | None, str]:
    """A docker CLI that can build with BuildKit here, and why (``None``: none can)."""
    reasons: list[str] = []
    for cli in _docker_clis():
        try:
            buildx = ctx.runner.run([cli, "buildx", "version"], timeout=20, check=False)
            if buildx.returncode == 0:
                return cli, tr("{c} 有 buildx 插件", "{c} has the buildx plugin", c=cli)
            ver = ctx.runner.run([cli, "version", "--format", "{{.Client.Version}}"], timeout=20, check=False)
        except LabkitError as exc:
            reasons.append(f"{cli}: {exc}")
            continue
        m = re.match(r"(\d+)\.", ver.stdout.strip())
        if m and int(m.group(1)) < 23:
            return cli, tr(
                "{c} 是 {v} 版客户端，内置 BuildKit",
                "{c} is client {v}, with BuildKit built in",
                c=cli,
                v=ver.stdout.strip(),
            )
        reasons.append(
            tr(
                "{c}（{v}）没有 buildx 插件",
                "{c} ({v}) lacks the buildx plugin",
                c=cli,
                v=ver.stdout.strip() or "?",
            )
        )
    return None, "; ".join(reasons) or tr("没有 docker 命令行客户端", "no docker CLI")


# ----------------------------------------------------------------------------------------------
# The step
# ----------------------------------------------------------------------------------------------
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


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
        warn_bytes: int = WARN_BYTES,
        max_bytes: int = MAX_BYTES,
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
        self._context: ContextSize | None = None
        self._text: str | None = None
        self._label_cache: dict[str, str] | None = None

    # -- validation -------------------------------------------------------------------------
    @property
    def dockerfile_path(self) -> Path:
        p = Path(self.dockerfile)
        return p if p.is_absolute() else self.context_dir / p

    def _validate(self) -> str:
        """Check the inputs; return the Dockerfile text that will be built."""
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
        for key, value in self.build_args.items():
            if not isinstance(key, str) or not _ARG_NAME.match(key):
                raise InvalidField(
                    "build_args",
                    key,
                    tr("不是合法的构建参数名", "is not a valid build-arg name"),
                    tr("字母、数字和下划线，例如 BASE_IMAGE", "letters, digits, _ e.g. BASE_IMAGE"),
                )
            if not isinstance(value, str) or "\n" in value:
                raise InvalidField(
                    "build_args",
                    f"{key}={value!r}",
                    tr("值必须是单行字符串", "must be a single-line string"),
                    "",
                )
        if self.spec is not None:
            text = dfl.build_dockerfile(self.spec)
            path = self.dockerfile_path
            if (
                path.exists()
                and path.read_text(encoding="utf-8", errors="replace") != text
                and not self.overwrite
            ):
                raise ConsentRequired(
                    f"replace {path} with the generated Dockerfile",
                    tr(
                        "传 overwrite=True（会保留备份），或换一个构建上下文目录",
                        "pass overwrite=True (a backup is kept), or use another context directory",
                    ),
                )
        else:
            text = self._read_dockerfile()
        self._check_build_args(text)
        return text

    def _read_dockerfile(self) -> str:
        path = self.dockerfile_path
        if path.is_file():
            return path.read_text(encoding="utf-8", errors="replace")
        near = []
        if self.context_dir.is_dir():
            near = sorted(
                p.name
                for p in self.context_dir.iterdir()
                if p.name.lower().startswith("dockerfile") and p.name != path.name
            )
        fix = tr(
            "文件名必须正好是 Dockerfile（没有扩展名），放在构建上下文目录里；或用 dockerfile= 指定文件",
            "the file must be named exactly Dockerfile (no extension) in the context directory, or "
            "name it with dockerfile=",
        )
        if near:
            fix += tr(
                "。这里有 {n}：是编辑器加了扩展名吗？",
                ". Found {n} here: did an editor add an extension?",
                n=", ".join(near),
            )
        if self.spec is None:
            fix += tr(
                "；也可以传 spec=ImageSpec() 让 labkit 生成一个",
                "; or pass spec=ImageSpec() to have labkit generate one",
            )
        raise InvalidField(
            "dockerfile",
            str(path),
            tr(
                "不存在" if not path.exists() else "不是普通文件",
                "not found" if not path.exists() else "is not a file",
            ),
            fix,
        )

    def _check_build_args(self, text: str) -> None:
        declared = {m.group(1) for m in re.finditer(r"(?im)^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", text)}
        unknown = sorted(set(self.build_args) - declared)
        if unknown:
            raise InvalidField(
                "build_args",
                ", ".join(unknown),
                tr("没有在 Dockerfile 里用 ARG 声明", "is not declared with ARG in the Dockerfile"),
                tr(
                    "Docker 只会警告然后用默认值继续（比如去仓库拉默认的基础镜像）；"
                    "检查拼写，已声明的有：{d}",
                    "Docker would only warn and go on with the default (e.g. pull the default base "
                    "image); check the spelling; declared: {d}",
                    d=", ".join(sorted(declared)) or "-",
                ),
            )

    def _measure(self) -> ContextSize:
        size = context_size(self.context_dir, self.dockerfile)
        if size["bytes"] > self.max_bytes and not self.allow_large:
            raise ConsentRequired(
                f"send a {human_size(size['bytes'])} build context ({self.context_dir}) to the engine",
                tr(
                    "多半是在错误的目录里构建（比如家目录）：换一个只含所需文件的目录，"
                    "或在 .dockerignore 里排除大文件"
                    "（最大的：{l}）；确实需要就传 allow_large=True",
                    "you are probably building in the wrong directory (your home, say): use a directory "
                    "with only what the image needs, or exclude big files in .dockerignore (largest: {l}); "
                    "pass allow_large=True if you really mean it",
                    l=", ".join(f"{p} {human_size(b)}" for p, b in size["largest"][:3]) or "-",
                ),
            )
        return size

    def _builder_argv(self, cli: str = "docker", iidfile: str | None = None) -> list[str]:
        argv = [cli, "build", "--progress=plain", "-f", str(self.dockerfile_path), "-t", self.tag]
        if iidfile:
            argv += ["--iidfile", iidfile]
        if self.nocache:
            argv.append("--no-cache")
        for key, value in self.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in self._labels().items():
            argv += ["--label", f"{key}={value}"]
        return [*argv, str(self.context_dir)]

    def _labels(self) -> dict[str, str]:
        if self._label_cache is None:
            self._label_cache = {**labkit_labels(self.check_id, kind="image", ref=self.tag), **self.labels}
        return self._label_cache

    # -- hooks -------------------------------------------------------------------------------
    def plan(self) -> Plan:
        text = self._validate()
        self._text = text
        notes: list[str] = []
        if self.context_dir.is_dir():
            self._context = size = self._measure()
            notes.append(
                tr(
                    "构建上下文：{n} 个文件，{s}{i}",
                    "build context: {n} files, {s}{i}",
                    n=size["files"],
                    s=human_size(size["bytes"]),
                    i=tr("（已按 .dockerignore 排除）", " (.dockerignore applied)")
                    if size["dockerignore"]
                    else "",
                )
            )
            if size["bytes"] > self.warn_bytes:
                notes.append(
                    tr(
                        "警告：构建上下文有 {s}，发送给 Docker 引擎前就要花时间和空间；"
                        "用 .dockerignore 排除不需要的文件",
                        "warning: the build context is {s}; it is all sent to the engine first. Exclude "
                        "what the image does not need with .dockerignore",
                        s=human_size(size["bytes"]),
                    )
                )
        lint = dfl.lint_dockerfile(text)
        notes += [str(f) for f in lint]
        notes.append(
            tr(
                "有支持 BuildKit 的 docker 客户端时用 DOCKER_BUILDKIT=1 docker build；"
                "否则用 Docker SDK 的经典构建器"
                "（等价于 DOCKER_BUILDKIT=0 docker build）",
                "with a BuildKit-capable docker CLI this runs DOCKER_BUILDKIT=1 docker build; otherwise the "
                "Docker SDK's classic builder (like DOCKER_BUILDKIT=0 docker build)",
            )
        )
        cmd = ["env", "DOCKER_BUILDKIT=1", *self._builder_argv()]
        return Plan(
            step=self.check_id,
            reason=tr(
                "用 {d} 构建镜像 {t}",
                "build image {t} from {d}",
                t=self.tag,
                d=self.dockerfile_path,
            ),
            commands=[cmd],
            files={str(self.dockerfile_path): text},
            notes=notes,
        )

    def base_image(self) -> str | None:
        """The image the build starts ``FROM`` (build arg, spec, or the Dockerfile's first FROM)."""
        if "BASE_IMAGE" in self.build_args:
            return self.build_args["BASE_IMAGE"]
        if self.spec is not None:
            return self.spec.base_image
        path = self.dockerfile_path
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0].upper() == "FROM" and "$" not in parts[1]:
                    return parts[1]
        return None

    def unavailable(self, ctx: RunContext) -> str | None:
        reason = ctx.docker_unavailable()
        if reason or self.pull:
            return reason
        base = self.base_image()
        if base is None:
            return None
        try:
            with ctx.engine(f"look up base image {base}") as client:
                client.images.get(base)
        except LabkitError:
            return tr(
                "基础镜像 {b} 不在本机；不会自动下载（可能有几个 GB）：勾选“拉取基础镜像”"
                "（或 docker pull {b}），离线时改用本地基础镜像",
                "base image {b} is not on this machine and is not downloaded implicitly (it can be "
                "several GB): tick 'pull base image' (or docker pull {b}), or use a local base offline",
                b=base,
            )
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        text = self._text if self._text is not None else self._validate()
        size = self._context or self._measure()
        if self.spec is not None:
            self._write_generated(text, ctx)
            size = self._measure()
        if size["bytes"] > self.warn_bytes:
            ctx.say(
                tr(
                    "警告：构建上下文有 {s}（{n} 个文件），现在发送给 Docker 引擎",
                    "warning: sending a {s} build context ({n} files) to the engine",
                    s=human_size(size["bytes"]),
                    n=size["files"],
                )
            )
        cli, why = (None, "sdk requested")
        if self.buildkit in ("auto", "buildkit"):
            cli, why = buildkit_cli(ctx)
            if cli is None and self.buildkit == "buildkit":
                raise InvalidField(
                    "buildkit",
                    "buildkit",
                    tr("这台机器上不可用：{w}", "is not available here: {w}", w=why),
                    tr(
                        "安装 buildx 插件（Debian/Ubuntu：docker-buildx 包），或用 buildkit='sdk'",
                        "install the buildx plugin (Debian/Ubuntu package docker-buildx), or use "
                        "buildkit='sdk'",
                    ),
                )
        ctx.say(
            tr("构建方式：{b}（{w}）", "builder: {b} ({w})", b="BuildKit" if cli else "SDK classic", w=why)
        )
        log: list[str] = []
        if cli:
            image_id = self._build_cli(ctx, cli, log)
            builder = "buildkit-cli"
        else:
            image_id = self._build_sdk(ctx, log)
            builder = "sdk-classic"
        return {
            "tag": self.tag,
            "image_id": image_id,
            "builder": builder,
            "builder_reason": why,
            "context_bytes": size["bytes"],
            "context_files": size["files"],
            "build_args": self.build_args,
            "dockerfile": str(self.dockerfile_path),
            "log_tail": "\n".join(log[-30:]),
        }

    def _write_generated(self, text: str, ctx: RunContext) -> None:
        path = self.dockerfile_path
        if not path.exists() or path.read_text(encoding="utf-8", errors="replace") != text:
            files.write_atomic(path, text, overwrite=self.overwrite)
            ctx.say(tr("已写入 {p}", "wrote {p}", p=path))
        if self.spec is not None and self.spec.extra_ca_certs:
            ca_dir = self.context_dir / dfl.CA_DIR
            ca_dir.mkdir(exist_ok=True)
            sources = self.extra_ca_files or host_extra_ca_files()
            if not sources:
                raise InvalidField(
                    "extra_ca_files",
                    [],
                    tr("没有可复制的 CA 证书", "no CA certificate to copy"),
                    tr(
                        "把 *.crt 放进 {h}，或传 extra_ca_files=[…]；不需要就用 extra_ca_certs=False",
                        "put *.crt files in {h} or pass extra_ca_files=[…]; or set extra_ca_certs=False",
                        h=HOST_CA_DIR,
                    ),
                )
            for src in sources:
                name = src.name if src.name.endswith(".crt") else src.name + ".crt"
                shutil.copyfile(src, ca_dir / name)

    def _build_cli(self, ctx: RunContext, cli: str, log: list[str]) -> str:
        with tempfile.TemporaryDirectory(prefix="labkit-build-") as tmp:
            iid = os.path.join(tmp, "iid")
            argv = self._builder_argv(cli, iid)

            def on_line(stream: str, line: str) -> None:
                log.append(line)
                if ctx.on_line is not None:
                    ctx.on_line(stream, line)

            done = ctx.run(
                argv, timeout=self.timeout, env={"DOCKER_BUILDKIT": "1"}, on_line=on_line, check=False
            )
            if done.returncode != 0:
                tail = "\n".join(line for line in log[-25:] if line.strip())
                raise DockerFailed(
                    tr("构建镜像 {t}", "build image {t}", t=self.tag),
                    _failure_excerpt(log),
                    argv=argv,
                    log=tail,
                    hint=tr(
                        "看构建日志的最后几行：通常是某个 RUN 命令失败（ERROR 行前面就是它的输出）",
                        "read the last lines of the build log: usually one RUN command failed (its output "
                        "is just before the ERROR line)",
                    ),
                )
            return Path(iid).read_text().strip()

    def _build_sdk(self, ctx: RunContext, log: list[str]) -> str:
        argv = ["env", "DOCKER_BUILDKIT=0", *self._builder_argv()]
        action = tr("构建镜像 {t}", "build image {t}", t=self.tag)
        image_id = ""
        with ctx.engine(action, timeout=self.timeout, argv=argv) as client:
            stream = client.api.build(
                path=str(self.context_dir),
                dockerfile=str(self.dockerfile_path.relative_to(self.context_dir))
                if self.dockerfile_path.is_relative_to(self.context_dir)
                else str(self.dockerfile_path),
                tag=self.tag,
                buildargs=self.build_args,
                labels=self._labels(),
                rm=True,
                forcerm=True,
                nocache=self.nocache,
                decode=True,
            )
            try:
                for item in stream:
                    if ctx.cancel.is_set():
                        raise Cancelled(argv, None, "\n".join(log[-20:]))
                    if "error" in item or "errorDetail" in item:
                        message = (item.get("errorDetail") or {}).get("message") or item.get("error", "")
                        raise DockerFailed(
                            action,
                            "\n".join([*log[-8:], str(message).strip()]),
                            argv=argv,
                            log="\n".join(log[-25:]),
                            hint=tr(
                                "看上面构建日志的最后几行：通常是某个 RUN 命令失败",
                                "read the last lines of the build log above: usually one RUN command failed",
                            ),
                        )
                    aux = item.get("aux")
                    if isinstance(aux, dict) and aux.get("ID"):
                        image_id = str(aux["ID"])
                    text = item.get("stream") or item.get("status") or ""
                    for line in str(text).splitlines():
                        if line.strip():
                            log.append(line)
                            if ctx.on_line is not None:
                                ctx.on_line("stdout", line)
            finally:
                with contextlib.suppress(Exception):
                    stream.close()
            if not image_id:
                image_id = client.images.get(self.tag).id
        return image_id

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        from labkit.steps.docker.run import run_container

        action = tr("检查镜像 {t}", "inspect image {t}", t=self.tag)
        with ctx.engine(action, argv=["docker", "image", "inspect", self.tag]) as client:
            image = client.images.get(self.tag)
            attrs = image.attrs
            read = (
                run_container(client, image.id, ["cat", dfl.VERSION_FILE], step=self.check_id, timeout=60)
                if _records_version(self._text or "")
                else None
            )
        labels = image.labels or {}
        recorded = (read or {}).get("stdout", "").strip() if read and read.get("exit_code") == 0 else ""
        lint = dfl.lint_dockerfile(self._text or "")
        ev: dict[str, Any] = {
            **evidence,
            "image_id": image.id,
            "tags": image.tags,
            "size": int(attrs.get("Size") or 0),
            "size_human": human_size(int(attrs.get("Size") or 0)),
            "layers": len((attrs.get("RootFS") or {}).get("Layers") or []),
            "labels": labels,
            "recorded_version": recorded,
            "recorded_dist": self.build_args.get(
                "TORCH_DIST", self.spec.torch_dist if self.spec else "torch"
            ),
            "lint": [
                {"code": f.code, "severity": f.severity, "line": f.line, "message": f.message, "fix": f.fix}
                for f in lint
            ],
        }
        if read is not None:
            ev["version_container"] = {k: read[k] for k in ("container_id", "exit_code", "stderr", "removed")}
        problems: list[str] = []
        if evidence.get("image_id") and image.id != evidence["image_id"]:
            problems.append(
                tr(
                    "{t} 指向 {a}，不是刚构建的 {b}",
                    "{t} points at {a}, not the image just built ({b})",
                    t=self.tag,
                    a=short_id(image.id),
                    b=short_id(evidence["image_id"]),
                )
            )
        for key, value in self._labels().items():
            if labels.get(key) != value:
                problems.append(tr("缺少标签 {k}", "label {k} is missing", k=key))
                break
        if read is not None and not recorded:
            problems.append(
                tr(
                    "镜像里没有记录的版本（{f}）：{e}",
                    "the image has no recorded version ({f}): {e}",
                    f=dfl.VERSION_FILE,
                    e=(read.get("stderr") or "").strip()[-200:],
                )
            )
        asked = labels.get(dfl.LABEL_TORCH)
        dist = ev["recorded_dist"]
        if recorded and asked and dist == "torch" and recorded.split("+")[0] != asked:
            problems.append(
                tr(
                    "要的是 torch {a}，装进去的是 {r}",
                    "torch {a} was asked for, {r} got installed",
                    a=asked,
                    r=recorded,
                )
            )
        if problems:
            return CheckResult.failed(self.check_id, "; ".join(problems), **ev)
        what = (
            tr("记录的 {d} 版本 {v}", "recorded {d} {v}", d=dist, v=recorded)
            if recorded
            else tr("（此 Dockerfile 不记录版本）", "(this Dockerfile records no version)")
        )
        stand_in = dist != "torch" and recorded
        return CheckResult.passed(
            self.check_id,
            tr(
                "镜像 {t}（{i}）：{l} 层，{s}，{w}{x}{n}",
                "image {t} ({i}): {l} layers, {s}, {w}{x}{n}",
                t=self.tag,
                i=short_id(image.id),
                l=ev["layers"],
                s=ev["size_human"],
                w=what,
                x=tr("（替身包，代替 torch）", " (a stand-in for torch)") if stand_in else "",
                n=tr("；lint 提示 {k} 条", "; {k} lint findings", k=len(lint)) if lint else "",
            ),
            **ev,
        )


def _records_version(text: str) -> bool:
    return dfl.VERSION_FILE in text


def _failure_excerpt(lines: Sequence[str], context: int = 8) -> str:
    """The lines before the first BuildKit error line and the error itself (the RUN's own output)."""
    clean = [line for line in lines if line.strip()]
    for i, line in enumerate(clean):
        if re.match(r"\s*(?:#\d+ )?(?:ERROR|error:|failed to solve|executor failed)", line):
            return "\n".join(clean[max(0, i - context) : i + 1])
    return "\n".join(clean[-context:])
