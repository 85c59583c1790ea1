"""Every Docker engine call the chapter-2a steps make, built once: SDK call and CLI line together.

A builder returns one :class:`DockerCall`: the SDK method and arguments ``run()`` passes to the
engine, and ``argv``, the equivalent ``docker`` command derived from the same data (labels become
``--label k=v`` from the dict the SDK gets, the environment ``-e``, ...). Plans show ``call.argv``;
``run()`` hands the same call to :func:`labkit.steps.docker.engine.perform`, which records the argv
in ``ctx.commands`` and calls the SDK. Only the fresh random id of ``org.labkit.object`` (drawn per
call) is not shown verbatim: argv shows it as ``<unique>``.

The rule for engine *reads* (ping, version, info, image inspect, container list, wait, logs): they are
never recorded in ``ctx.commands``; ``ctx.commands`` holds exactly the engine calls that change
something (plus ``docker save``, the stream out). Where a step's decision rests on a read, its plan
lists the read's CLI form in ``plan.probes`` for the student; commands run through the *runner*
(``busybox --list-full``, ``debootstrap``) are always recorded, like every ``ctx.run``. Steps whose
targets depend on state (cleanup) cannot know ids at plan time: they show :data:`CLEANUP_TEMPLATES`.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import api_note, tr
from labkit.logic.docker_names import LABKIT_FILTER, labkit_labels, parse_reference

__all__ = [
    "BUSYBOX_PATHS",
    "CLEANUP_TEMPLATES",
    "DEBIAN_SUITE",
    "DEBIAN_TRIM",
    "GZIP_LEVEL",
    "LOCAL_BASE_RUNTIME",
    "NUKE_TEMPLATES",
    "UNIQUE",
    "DockerCall",
    "busybox_list_argv",
    "commit",
    "compression_for",
    "debootstrap_argv",
    "env_args",
    "exec_in",
    "image_summary",
    "import_id",
    "import_rootfs",
    "inspect_image_argv",
    "label_args",
    "label_change",
    "list_labelled_argv",
    "load",
    "load_refusal",
    "mask_unique",
    "matches_template",
    "port_args",
    "remove_container",
    "remove_image",
    "run_container",
    "save",
    "save_named",
    "save_pipeline_text",
    "validate_gzip_level",
]

#: How argv shows the random part of ``org.labkit.object`` (drawn when the call is built).
UNIQUE = "<unique>"
#: The CLI's gzip uses level 6 by default; Python's gzip module 9 (slower, barely smaller).
GZIP_LEVEL = 6
#: Where the busybox-static package puts its binary.
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
DEBIAN_SUITE = "bookworm"
#: Trimmed from the debootstrap tree: docs, man pages, locales and apt lists (~200 MB → ~75 MB).
DEBIAN_TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf",
    "var/log",
)
#: What a local base image runs and its PATH (``docker import --change 'CMD …' --change 'ENV …'``).
LOCAL_BASE_RUNTIME: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType(
    {
        "busybox": (("/bin/sh",), "/usr/sbin:/usr/bin:/sbin:/bin"),
        "debian": (("/bin/bash",), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    }
)

_OBJECT_ID = re.compile(r"\b(image|container):[0-9a-f]{32}\b")


@dataclass(frozen=True)
class DockerCall:
    """One engine call: what the SDK gets and the equivalent ``docker`` command line.

    ``method`` is the SDK attribute path on the object the step calls it on: the client
    (``containers.create``, ``api.import_image``, ``images.remove``), a container (``exec_run``,
    ``commit``, ``remove``) or an image (``save``). Data only known while running (a file handle,
    which tag to save) is passed to :func:`labkit.steps.docker.engine.perform` as extra kwargs.
    """

    action: str
    method: str
    argv: tuple[str, ...]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: The host port a ``run`` publishes (named in the error when the engine's text does not).
    port: int | None = None
    #: The labkit labels the object this call creates gets (real values; argv masks the random id).
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def cli(self) -> list[str]:
        """The argv as a list (what plans show and ``ctx.record`` keeps)."""
        return list(self.argv)

    def __str__(self) -> str:
        return shlex.join(self.argv)


def _call(
    action: str,
    method: str,
    argv: Iterable[str],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    port: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> DockerCall:
    """The one constructor: argv is masked here (:func:`mask_unique`), nowhere else."""
    shown = tuple(mask_unique(str(a)) for a in argv)
    return DockerCall(action, method, shown, tuple(args), dict(kwargs or {}), port, dict(labels or {}))


# ----------------------------------------------------------------------------------------------
# Rendering SDK data as CLI arguments
# ----------------------------------------------------------------------------------------------
def mask_unique(text: str) -> str:
    """``org.labkit.object=image:<32 hex>`` → ``…=image:<unique>`` (the per-call random id)."""
    return _OBJECT_ID.sub(lambda m: f"{m.group(1)}:{UNIQUE}", text)


def label_args(labels: Mapping[str, str]) -> list[str]:
    """``--label k=v`` per label, in the dict's order (the SDK's ``labels=`` argument)."""
    return [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]


def env_args(environment: Mapping[str, str] | None) -> list[str]:
    """``-e K=V`` per variable (the SDK's ``environment=`` argument)."""
    return [a for k, v in (environment or {}).items() for a in ("-e", f"{k}={v}")]


def port_args(ports: Mapping[str, int] | None) -> list[str]:
    """``-p HOST:CONTAINER`` per published port (the SDK's ``ports={"8888/tcp": 8888}``)."""
    out: list[str] = []
    for cport, hport in (ports or {}).items():
        inner = cport[: -len("/tcp")] if cport.endswith("/tcp") else cport
        out += ["-p", f"{hport}:{inner}"]
    return out


def label_change(labels: Mapping[str, str]) -> str:
    """The Dockerfile-style ``LABEL k="v" …`` line ``docker commit/import --change`` takes."""
    return "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in labels.items())


def _filter_args(filters: Mapping[str, str]) -> list[str]:
    return [a for k, v in filters.items() for a in ("--filter", f"{k}={v}")]


# ----------------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------------
def run_container(
    image: str,
    command: Sequence[str] | None,
    *,
    step: str,
    name: str | None = None,
    ports: Mapping[str, int] | None = None,
    environment: Mapping[str, str] | None = None,
    detach: bool = False,
) -> DockerCall:
    """``docker run --rm …`` (or ``-d``: left running) of a labelled container: ``containers.create``.

    The step starts it (and for ``--rm`` waits, reads the logs and removes it) on the object
    ``create`` returns: create + start are separate so a container that fails to start (port taken)
    is still removed rather than left in state *created*.
    """
    labels = labkit_labels(step, kind="container")
    env = dict(environment or {})
    argv = [
        "docker",
        "run",
        "-d" if detach else "--rm",
        *(["--name", name] if name else []),
        *port_args(ports),
        *label_args(labels),
        *env_args(env),
        image,
        *(command or []),
    ]
    return _call(
        tr("运行容器", "run a container"),
        "containers.create",
        argv,
        (image, list(command) if command is not None else None),
        {"name": name, "labels": labels, "ports": dict(ports or {}), "environment": env},
        port=next(iter((ports or {}).values()), None),
        labels=labels,
    )


def exec_in(container: str, command: Sequence[str], *, environment: Mapping[str, str]) -> DockerCall:
    """``docker exec -e K=V CONTAINER CMD`` (``Container.exec_run``): text travels in the env."""
    env = dict(environment)
    argv = ["docker", "exec", *env_args(env), container, *command]
    action = tr("在容器里执行命令", "exec in the container")
    return _call(action, "exec_run", argv, (list(command),), {"environment": env})


def commit(
    container: str, ref: str, *, step: str, message: str, extra: Mapping[str, str] | None = None
) -> DockerCall:
    """``docker commit --change 'LABEL …' -m MSG CONTAINER REF`` (``Container.commit``).

    ``extra`` adds labels under ``org.labkit.`` (see :func:`labkit_labels`), e.g. a digest of what
    was committed, so a later run can recognise the image without starting a container."""
    parsed = parse_reference(ref)
    labels = labkit_labels(step, kind="image", ref=ref, **dict(extra or {}))
    changes = [label_change(labels)]
    argv = ["docker", "commit", *[a for c in changes for a in ("--change", c)], "-m", message, container, ref]
    return _call(
        tr("提交容器", "commit the container"),
        "commit",
        argv,
        kwargs={
            "repository": parsed.name,
            "tag": parsed.tag_or_latest,
            "message": message,
            "changes": changes,
        },
        labels=labels,
    )


def remove_container(container: str) -> DockerCall:
    """``docker rm -f CONTAINER`` (``Container.remove(force=True)``)."""
    argv = ["docker", "rm", "-f", container]
    return _call(tr("删除容器", "remove the container"), "remove", argv, kwargs={"force": True})


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------
def remove_image(image: str, *, force: bool = False) -> DockerCall:
    """``docker rmi [-f] IMAGE`` (``images.remove``): a tag untags, an id deletes."""
    argv = ["docker", "rmi", *(["-f"] if force else []), image]
    return _call(tr("删除镜像", "remove the image"), "images.remove", argv, (image,), {"force": force})


def import_rootfs(ref: str, *, step: str, kind: str) -> DockerCall:
    """``docker import --change … - REF`` of a local base rootfs tar (``api.import_image``).

    The tar itself is passed while running (``src=`` file handle), as ``-`` stands for stdin.
    """
    parsed = parse_reference(ref, "ref")
    labels = labkit_labels(step, kind="image", ref=ref, base=kind)
    cmd, env_path = LOCAL_BASE_RUNTIME[kind]
    changes = [label_change(labels), f"CMD {json.dumps(list(cmd))}", f"ENV PATH={env_path}"]
    argv = ["docker", "import", *[a for c in changes for a in ("--change", c)], "-", ref]
    return _call(
        tr("导入本地基础镜像", "import the local base image"),
        "api.import_image",
        argv,
        kwargs={"repository": parsed.name, "tag": parsed.tag_or_latest, "changes": changes},
        labels=labels,
    )


def save(image: str, path: str, *, compression: str, chunk_size: int) -> DockerCall:
    """``docker save`` (``Image.save``): ``-o PATH`` for a plain tar; piped to gzip otherwise.

    With gzip the engine call is ``docker save IMAGE`` and labkit compresses the stream itself
    (:func:`save_pipeline_text` is the shell equivalent). ``named`` (which tag goes into the
    archive) depends on the image's tags, read while running: see :func:`save_named`.
    """
    argv = ["docker", "save", *(["-o", path] if compression == "none" else []), image]
    return _call(tr("保存镜像", "save the image"), "save", argv, kwargs={"chunk_size": chunk_size})


def load(path: str) -> DockerCall:
    """``docker load -i PATH`` (``api.load_image``; the file's bytes are streamed while running)."""
    argv = ["docker", "load", "-i", path]
    return _call(tr("加载镜像", "load the image"), "api.load_image", argv, kwargs={"quiet": True})


def save_named(ref: str, tags: Sequence[str]) -> str | bool:
    """The ``named=`` of ``Image.save``: the tag ``ref`` names, so ``docker load`` restores it."""
    if ref in tags:
        return ref
    return f"{ref}:latest" if f"{ref}:latest" in tags else False


def save_pipeline_text(image: str, path: str, *, compression: str, level: int) -> str:
    """The shell line a student would type for what :class:`SaveImage` does (text only)."""
    if compression == "gzip":
        return f"docker save {shlex.quote(image)} | gzip -{level} > {shlex.quote(path)}"
    return f"docker save {shlex.quote(image)} > {shlex.quote(path)}"


# ----------------------------------------------------------------------------------------------
# Read-only probes (CLI form only: shown in plans, never recorded)
# ----------------------------------------------------------------------------------------------
def inspect_image_argv(ref: str) -> list[str]:
    return ["docker", "image", "inspect", ref]


def list_labelled_argv(kind: str) -> list[str]:
    """``docker ps -a`` / ``docker images -a`` with cleanup's label filter (``LABKIT_FILTER``)."""
    verb = ["ps", "-a"] if kind == "container" else ["images", "-a"]
    return ["docker", *verb, *_filter_args(LABKIT_FILTER)]


#: What cleanup may run, per object it finds: the shape of each removal (placeholders in ``<>``).
CLEANUP_TEMPLATES: tuple[tuple[str, ...], ...] = (
    remove_container("<container id>").argv,
    remove_image("<tag labkit gave>").argv,
    remove_image("<image id>").argv,
)
#: What DeleteEverything runs for every container and every image on the engine.
NUKE_TEMPLATES: tuple[tuple[str, ...], ...] = (
    remove_container("<container id>").argv,
    remove_image("<image id>", force=True).argv,
)


def matches_template(argv: Sequence[str], template: Sequence[str]) -> bool:
    """Whether ``argv`` has ``template``'s shape: each ``<placeholder>`` stands for one argument."""
    if len(argv) != len(template):
        return False
    return all((t.startswith("<") and t.endswith(">")) or a == t for a, t in zip(argv, template, strict=True))


# ----------------------------------------------------------------------------------------------
# Local bases
# ----------------------------------------------------------------------------------------------
def busybox_list_argv(busybox: str) -> list[str]:
    """What lists the applets of the host's busybox (one symlink each in the image)."""
    return [busybox, "--list-full"]


def debootstrap_argv(
    target: str, mirror: str, suite: str = DEBIAN_SUITE, *, keyring: str | None = None
) -> list[str]:
    """The debootstrap command of the ``debian`` local base (minbase + python3)."""
    argv = ["debootstrap", "--variant=minbase", "--include=python3,ca-certificates"]
    if keyring:
        argv.append(f"--keyring={keyring}")
    return [*argv, suite, target, mirror]


def import_id(answer: Any) -> str:
    """The image id from ``APIClient.import_image``'s answer (JSON lines with a ``status``)."""
    text = answer if isinstance(answer, str) else json.dumps(answer)
    for line in reversed(text.strip().splitlines()):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "error" in item:
            raise ValueError(item.get("error"))
        status = item.get("status", "") if isinstance(item, dict) else ""
        if isinstance(status, str) and status.startswith("sha256:"):
            return status
    raise ValueError(f"docker import gave no image id: {text[:200]}")


# ----------------------------------------------------------------------------------------------
# Packaging choices
# ----------------------------------------------------------------------------------------------
def compression_for(path: str, compression: str) -> str:
    """``gzip`` or ``none`` for saving to ``path`` (``auto``: by its suffix); refuses ``.zip``."""
    name = path.lower()
    if name.endswith(".zip"):
        raise InvalidField(
            "path",
            path,
            tr("是 .zip：docker load 不接受 zip", "is a .zip: docker load does not accept zip"),
            tr("保存为 .tar 或 .tar.gz", "save as .tar or .tar.gz"),
        )
    if compression == "auto":
        if name.endswith((".tar.gz", ".tgz")):
            return "gzip"
        if name.endswith(".tar"):
            return "none"
        raise InvalidField(
            "path",
            path,
            tr("后缀应为 .tar 或 .tar.gz", "should end in .tar or .tar.gz"),
            tr("例如 ailab-image.tar.gz", "e.g. ailab-image.tar.gz"),
        )
    if compression not in ("gzip", "none"):
        raise InvalidField(
            "compression",
            compression,
            tr("不支持", "is not supported"),
            tr("用 auto、gzip 或 none", "use auto, gzip or none"),
        )
    return compression


def load_refusal(path: str, kind: str) -> InvalidField | None:
    """Why ``docker load`` cannot take a file of archive ``kind`` (tar, gzip/bzip2/xz: ``None``)."""
    quoted = shlex.quote(path)
    refusals = {
        "zip": (
            tr(
                "是 zip 压缩包：docker load 只接受 tar（可用 gzip/bzip2/xz 压缩）",
                "is a zip archive: docker load takes only tar (optionally gzip/bzip2/xz compressed)",
            ),
            tr(
                "先解压：unzip {p}，再加载其中的 .tar；或 unzip -p {p} | docker load",
                "unzip it first: unzip {p}, then load the .tar inside; or unzip -p {p} | docker load",
                p=quoted,
            ),
        ),
        "zstd": (
            tr("是 zstd 压缩：此 Docker 引擎不支持", "is zstd-compressed: this engine cannot read it"),
            tr("用 zstd -d 解压后再加载", "decompress with zstd -d first"),
        ),
        "unknown": (
            tr("不是 docker save 生成的 tar 文件", "is not a tar file made by docker save"),
            tr(
                "用 docker save 或「保存并压缩镜像」生成",
                "create it with docker save or “Save and compress an image”",
            )
            + api_note("SaveImage"),
        ),
    }
    if kind not in refusals:
        return None
    problem, fix = refusals[kind]
    return InvalidField("path", path, problem, fix)


def validate_gzip_level(level: object) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 9:
        raise InvalidField(
            "level",
            level,
            tr("不是 1-9 的压缩级别", "is not a gzip level 1-9"),
            tr("gzip 命令默认 6", "the gzip command's default is 6"),
        )
    return level


def image_summary(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What steps report about an image, from its inspect data (``Image.attrs``)."""
    config = attrs.get("Config") or {}
    tags = [t for t in attrs.get("RepoTags") or () if t != "<none>:<none>"]
    return {
        "image_id": attrs.get("Id", ""),
        "tags": tags,
        "size": int(attrs.get("Size") or 0),
        "layers": len((attrs.get("RootFS") or {}).get("Layers") or []),
        "labels": dict(config.get("Labels") or {}),
        "created": attrs.get("Created"),
    }
