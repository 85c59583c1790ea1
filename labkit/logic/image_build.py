"""``docker build`` as data: the one builder of its argv and SDK call, and the rules around it (pure).

:class:`BuildCall` holds what a build needs (context, Dockerfile, tag, build args, labels) and gives
each route its command from the same fields:

* BuildKit through a ``docker`` CLI: ``env DOCKER_BUILDKIT=1 <cli> build --progress=plain …``;
* the Docker SDK's classic builder (``APIClient.build``, the only builder the SDK speaks): its
  keyword arguments, shown and recorded as ``env DOCKER_BUILDKIT=0 docker build --force-rm …``.

:func:`build_routes` lists, in the order ``run`` tries them, the routes a ``builder`` choice
(``auto`` / ``buildkit`` / ``sdk``) may take; which one runs is decided by :func:`buildkit_verdict`
on the read-only probes of :func:`builder_probes`. The rest: the build context size rule, build
arguments the Dockerfile does not declare, and reading the build log (image id, failure excerpt).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from labkit.errors import ConsentRequired, InvalidField
from labkit.i18n import tr
from labkit.logic.docker_names import LOCAL_BASES, short_id
from labkit.logic.dockerfile import VERSION_FILE
from labkit.logic.sizes import human_size

__all__ = [
    "BUILDERS",
    "MAX_BYTES",
    "WARN_BYTES",
    "BuildCall",
    "BuildRoute",
    "build_routes",
    "builder_probes",
    "buildkit_verdict",
    "check_base_fits",
    "check_build_args",
    "check_context_size",
    "declared_args",
    "failure_excerpt",
    "first_base",
    "image_id_from_log",
    "image_problems",
    "pass_message",
]

BUILDERS = ("auto", "buildkit", "sdk")
#: Warn above this many bytes of build context (sent to the engine before the first instruction).
WARN_BYTES = 100 * 10**6
#: Refuse above this many bytes unless ``allow_large=True``.
MAX_BYTES = 2**30


@dataclass(frozen=True)
class BuildCall:
    """One image build; every route's command comes from these fields."""

    context: str
    dockerfile: str  # the path passed to -f
    tag: str
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    nocache: bool = False

    def _flags(self) -> list[str]:
        argv = ["-f", self.dockerfile, "-t", self.tag]
        if self.nocache:
            argv.append("--no-cache")
        for key, value in self.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in self.labels.items():
            argv += ["--label", f"{key}={value}"]
        return argv

    def buildkit_argv(self, cli: str) -> list[str]:
        """What runs on the BuildKit route: the CLI, with its plain progress lines streamed."""
        return ["env", "DOCKER_BUILDKIT=1", cli, "build", "--progress=plain", *self._flags(), self.context]

    def classic_argv(self) -> list[str]:
        """The CLI form of :meth:`sdk_kwargs` (classic builder: ``rm`` is its default, ``forcerm``)."""
        return ["env", "DOCKER_BUILDKIT=0", "docker", "build", "--force-rm", *self._flags(), self.context]

    def sdk_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``APIClient.build`` (``decode=True``: JSON items as dicts)."""
        path, context = PurePath(self.dockerfile), PurePath(self.context)
        return {
            "path": self.context,
            "dockerfile": str(path.relative_to(context)) if path.is_relative_to(context) else str(path),
            "tag": self.tag,
            "buildargs": dict(self.build_args),
            "labels": dict(self.labels),
            "rm": True,
            "forcerm": True,
            "nocache": self.nocache,
            "decode": True,
        }


@dataclass(frozen=True)
class BuildRoute:
    """One way to run a build: ``buildkit-cli`` through ``cli``, or ``sdk-classic``."""

    builder: str
    argv: list[str]
    cli: str | None = None


def build_routes(call: BuildCall, builder: str, clis: Sequence[str]) -> list[BuildRoute]:
    """The routes ``run`` may take, in the order it tries them: BuildKit through each CLI (unless
    ``sdk``), then the SDK classic builder (unless ``buildkit``)."""
    routes: list[BuildRoute] = []
    if builder in ("auto", "buildkit"):
        routes += [BuildRoute("buildkit-cli", call.buildkit_argv(cli), cli) for cli in clis]
    if builder in ("auto", "sdk"):
        routes.append(BuildRoute("sdk-classic", call.classic_argv()))
    return routes


def builder_probes(cli: str) -> list[list[str]]:
    """The read-only commands that tell whether ``cli`` builds with BuildKit."""
    return [[cli, "buildx", "version"], [cli, "version", "--format", "{{.Client.Version}}"]]


def buildkit_verdict(cli: str, buildx_returncode: int, client_version: str | None) -> tuple[bool, str]:
    """Whether ``cli`` can build with BuildKit, and why, from its probes' results.

    Yes with the ``buildx`` plugin; without it, CLI ≥ 23 refuses ``DOCKER_BUILDKIT=1`` ("BuildKit is
    enabled but the buildx component is missing") while an older CLI (Debian 12's 20.10) has
    BuildKit built in. ``client_version`` is ``None`` when the version probe was not needed.
    """
    if buildx_returncode == 0:
        return True, tr("{c} 有 buildx 插件", "{c} has the buildx plugin", c=cli)
    version = (client_version or "").strip()
    m = re.match(r"(\d+)\.", version)
    if m and int(m.group(1)) < 23:
        return True, tr(
            "{c} 是 {v} 版客户端，内置 BuildKit",
            "{c} is client {v}, with BuildKit built in",
            c=cli,
            v=version,
        )
    return False, tr(
        "{c}（{v}）没有 buildx 插件", "{c} ({v}) lacks the buildx plugin", c=cli, v=version or "?"
    )


# ----------------------------------------------------------------------------------------------
# Rules before the build
# ----------------------------------------------------------------------------------------------
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def declared_args(text: str) -> set[str]:
    """The names a Dockerfile declares with ``ARG``."""
    return {m.group(1) for m in re.finditer(r"(?im)^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", text)}


def check_build_args(build_args: Mapping[str, Any], text: str | None = None) -> None:
    """Refuse malformed build arguments and (with the Dockerfile ``text``) undeclared ones.

    An undeclared one matters: the engine only warns ("build-args were not consumed") and the build
    goes on with the *default*, e.g. pulling ``nvidia/cuda`` instead of a misspelt local base."""
    for key, value in build_args.items():
        if not isinstance(key, str) or not _ARG_NAME.match(key):
            raise InvalidField(
                "build_args",
                key,
                tr("不是合法的构建参数名", "is not a valid build-arg name"),
                tr("字母、数字和下划线，例如 BASE_IMAGE", "letters, digits, _ e.g. BASE_IMAGE"),
            )
        if not isinstance(value, str) or "\n" in value:
            raise InvalidField(
                "build_args", f"{key}={value!r}", tr("值必须是单行字符串", "must be a single-line string"), ""
            )
    if text is None:
        return
    declared = declared_args(text)
    unknown = sorted(set(build_args) - declared)
    if unknown:
        raise InvalidField(
            "build_args",
            ", ".join(unknown),
            tr("没有在 Dockerfile 里用 ARG 声明", "is not declared with ARG in the Dockerfile"),
            tr(
                "Docker 只会警告然后用默认值继续（比如去仓库拉默认的基础镜像）；检查拼写，已声明的有：{d}",
                "Docker would only warn and go on with the default (e.g. pull the default base "
                "image); check the spelling; declared: {d}",
                d=", ".join(sorted(declared)) or "-",
            ),
        )


#: Bases without apt-get: labkit's busybox base, busybox and alpine images (apk, not apt).
_NO_APT_BASE = re.compile(r"(?:^|/)(?:busybox|alpine)(?:[:@]|$)")
_USES_APT = re.compile(r"^\s*RUN\b.*\bapt(?:-get)?\s+(?:update|install)\b", re.I | re.M)


def check_base_fits(base: str | None, text: str, field: str = "base_image") -> None:
    """Refuse a base image that cannot run the Dockerfile's ``apt-get`` lines (a busybox or alpine
    base: ``/bin/sh: apt-get: not found`` halfway through the build). The fix names the base that
    can: the Debian minbase of the local base step, built without any registry."""
    if base is None or not _NO_APT_BASE.search(base.lower()) or not _USES_APT.search(text):
        return
    debian = LOCAL_BASES["debian"]
    raise InvalidField(
        field,
        base,
        tr(
            "没有 apt-get（busybox/alpine 镜像），而这个 Dockerfile 要用 apt-get 安装软件包",
            "has no apt-get (a busybox/alpine image), but this Dockerfile installs packages with apt-get",
        ),
        tr(
            "离线时改用 Debian 本地基础镜像 {d}：在“本地基础镜像”面板选 debian 构建（带 apt 和 python3）",
            "offline, use the Debian local base {d}: build it with kind debian in the local base panel "
            "(it has apt and python3)",
            d=debian,
        ),
    )


def check_context_size(
    size: Mapping[str, Any],
    context: str,
    *,
    warn_bytes: int = WARN_BYTES,
    max_bytes: int = MAX_BYTES,
    allow_large: bool = False,
) -> str | None:
    """The warning for a large build context (``None``: fine); a huge one needs consent.

    ``size`` is ``{"bytes", "files", "largest": [(path, bytes)…]}`` as measured before sending."""
    if size["bytes"] > max_bytes and not allow_large:
        raise ConsentRequired(
            tr(
                "把 {s} 的构建上下文（{c}）发送给 Docker 引擎",
                "send a {s} build context ({c}) to the engine",
                s=human_size(size["bytes"]),
                c=context,
            ),
            tr(
                "多半是在错误的目录里构建（比如家目录）：换一个只含所需文件的目录，"
                "或在 .dockerignore 里排除大文件（最大的：{l}）；确实需要就传 allow_large=True",
                "you are probably building in the wrong directory (your home, say): use a directory "
                "with only what the image needs, or exclude big files in .dockerignore (largest: {l}); "
                "pass allow_large=True if you really mean it",
                l=", ".join(f"{p} {human_size(b)}" for p, b in size["largest"][:3]) or "-",
            ),
            keyword="allow_large",
        )
    if size["bytes"] <= warn_bytes:
        return None
    return tr(
        "警告：构建上下文有 {s}（{n} 个文件），现在发送给 Docker 引擎；用 .dockerignore 排除不需要的文件",
        "warning: sending a {s} build context ({n} files) to the engine; exclude what the image does "
        "not need with .dockerignore",
        s=human_size(size["bytes"]),
        n=size["files"],
    )


# ----------------------------------------------------------------------------------------------
# Reading the build log
# ----------------------------------------------------------------------------------------------
_WRITING_IMAGE = re.compile(r"writing image (sha256:[0-9a-f]{64})")


def image_id_from_log(lines: Iterable[str]) -> str | None:
    """The image id BuildKit's plain progress names (``#9 writing image sha256:… done``), if any."""
    found = None
    for line in lines:
        m = _WRITING_IMAGE.search(line)
        if m:
            found = m.group(1)
    return found


def failure_excerpt(lines: Sequence[str], context: int = 8) -> str:
    """The lines before the first BuildKit error line and the error itself (the RUN's own output)."""
    clean = [line for line in lines if line.strip()]
    for i, line in enumerate(clean):
        if re.match(r"\s*(?:#\d+ )?(?:ERROR|error:|failed to solve|executor failed)", line):
            return "\n".join(clean[max(0, i - context) : i + 1])
    return "\n".join(clean[-context:])


# ----------------------------------------------------------------------------------------------
# Judging the built image
# ----------------------------------------------------------------------------------------------
def image_problems(
    tag: str, evidence: Mapping[str, Any], expected_labels: Mapping[str, str], asked_torch: str | None
) -> list[str]:
    """What is wrong with the image the tag names now (empty: it is the one just built, labelled,
    with the asked version recorded). ``evidence`` holds the build's and the inspection's facts."""
    problems: list[str] = []
    built, found = evidence.get("built_id"), evidence.get("image_id")
    if built and found != built:
        problems.append(
            tr(
                "{t} 指向 {a}，不是刚构建的 {b}",
                "{t} points at {a}, not the image just built ({b})",
                t=tag,
                a=short_id(str(found)),
                b=short_id(str(built)),
            )
        )
    labels = evidence.get("labels") or {}
    missing = next((k for k, v in expected_labels.items() if labels.get(k) != v), None)
    if missing:
        problems.append(tr("缺少标签 {k}", "label {k} is missing", k=missing))
    recorded = evidence.get("recorded_version") or ""
    read = evidence.get("version_container")
    if read is not None and not recorded:
        problems.append(
            tr(
                "镜像里没有记录的版本（{f}）：{e}",
                "the image has no recorded version ({f}): {e}",
                f=VERSION_FILE,
                e=(read.get("stderr") or "").strip()[-200:],
            )
        )
    torch = evidence.get("recorded_dist") == "torch"
    if recorded and asked_torch and torch and recorded.split("+")[0] != asked_torch:
        problems.append(
            tr(
                "要的是 torch {a}，装进去的是 {r}",
                "torch {a} was asked for, {r} got installed",
                a=asked_torch,
                r=recorded,
            )
        )
    return problems


def first_base(text: str) -> str | None:
    """The image of a Dockerfile's first ``FROM`` without variables (``None``: none such)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].upper() == "FROM" and "$" not in parts[1]:
            return parts[1]
    return None


def pass_message(tag: str, ev: Mapping[str, Any]) -> str:
    """The passing check's message: the image, its layers and size, the recorded version."""
    recorded, dist = ev["recorded_version"], ev["recorded_dist"]
    what = (
        tr("记录的 {d} 版本 {v}", "recorded {d} {v}", d=dist, v=recorded)
        if recorded
        else tr("（此 Dockerfile 不记录版本）", "(this Dockerfile records no version)")
    )
    lint = ev.get("lint") or []
    return tr(
        "镜像 {t}（{i}）：{l} 层，{s}，{w}{x}{n}",
        "image {t} ({i}): {l} layers, {s}, {w}{x}{n}",
        t=tag,
        i=short_id(str(ev["image_id"])),
        l=ev["layers"],
        s=ev["size_human"],
        w=what,
        x=tr("（替身包，代替 torch）", " (a stand-in for torch)") if dist != "torch" and recorded else "",
        n=tr("；lint 提示 {k} 条", "; {k} lint findings", k=len(lint)) if lint else "",
    )
