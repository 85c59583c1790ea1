"""Chapter 2a steps: the Docker engine, a registry-free hello-world, packaging images, cleanup.

Every step talks to the engine through the SDK via :mod:`labkit.steps.docker.engine` (the one place
SDK errors are translated); the plan shows the equivalent ``docker`` CLI commands so students can
map them to the course text. Every object a step creates is labelled (see
:mod:`labkit.logic.docker_names`), so :class:`CleanupLabkit` can remove exactly those.

=====================  ====================  ==================================================
step                   check id              course section
=====================  ====================  ==================================================
:class:`EngineCheck`   ch2.docker.engine     2.4.1 / 2.4.2 install, start, docker group
:class:`BuildLocalBase` ch2.docker.base      (no registry: a local base image to run)
:class:`HelloContainer` ch2.docker.hello     2.4.1 ``docker run hello-world``
:class:`CommitContainer` ch2.docker.commit   2.4.5 step 1 ``docker commit``
:class:`SaveImage`     ch2.docker.save       2.4.5 step 2 ``docker save | gzip``
:class:`LoadImage`     ch2.docker.load       2.4.5 step 4 ``docker load``
:class:`RunImage`      ch2.docker.run        2.4.5 step 5 ``docker run``
:class:`CleanupLabkit` ch2.docker.cleanup    2.4.6, but only what labkit created
:class:`DeleteEverything` ch2.docker.nuke    2.4.6 as written: every container and image
=====================  ====================  ==================================================

No registry is reachable in the lab (and often not on a student's offline laptop), so the images
these steps run come from :class:`BuildLocalBase`: ``busybox`` imports the host's static busybox
(apt package ``busybox-static``) as ``labkit/busybox:local`` in well under a second; ``debian``
runs ``debootstrap --variant=minbase --include=python3`` from the host's own Debian mirror (about
30 s, needs root) as ``labkit/debian:bookworm-local`` for Dockerfile builds that need apt / python.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import queue
import shlex
import shutil
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import Cancelled, ConsentRequired, InvalidField, LabkitError, NotSupportedHere, ToolMissing
from labkit.i18n import tr
from labkit.logic import guest as g
from labkit.logic.docker_names import (
    LABEL_OBJECT,
    LABEL_REF,
    LABKIT_FILTER,
    LOCAL_BASES,
    NUKE_COMMANDS,
    NUKE_PHRASE,
    SIDECAR_SUFFIX,
    DockerObject,
    archive_kind,
    labkit_labels,
    make_sidecar,
    parse_load_output,
    parse_reference,
    parse_sidecar,
    select_labkit,
    short_id,
    validate_container_name,
    validate_reference,
)
from labkit.logic.sizes import human_size
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.docker.engine import docker_errors, get_client, translate

__all__ = [
    "GREETING",
    "BuildLocalBase",
    "CleanupLabkit",
    "CommitContainer",
    "DeleteEverything",
    "EngineCheck",
    "HelloContainer",
    "LoadImage",
    "RunImage",
    "SaveImage",
    "build_local_base",
    "debootstrap_argv",
    "ensure_local_base",
    "list_labkit_objects",
    "run_container",
    "save_image_stream",
]

#: What the hello container prints (the hello-world equivalent that needs no registry).
GREETING = "Hello from labkit! 你好，容器！"
#: Default stream chunk for save / load (1 MiB: big enough to keep syscalls and gzip calls cheap).
CHUNK = 1 << 20
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

_SDK_NOTE = tr(
    "labkit 通过 Docker SDK（Engine API）完成这些操作；上面是等价的 docker 命令，便于对照课程",
    "labkit does this through the Docker SDK (Engine API); the docker commands above are the "
    "equivalent, to compare with the course text",
)


def _cli(*argv: str) -> list[str]:
    return ["docker", *argv]


class _DockerStep(Step):
    """Shared by the chapter-2a steps: the engine must answer, or the step is planned only."""

    timeout = 600.0

    def unavailable(self, ctx: RunContext) -> str | None:
        return ctx.docker_unavailable()


# ----------------------------------------------------------------------------------------------
# Engine
# ----------------------------------------------------------------------------------------------
class EngineCheck(_DockerStep):
    """Can this user talk to a Docker engine? Server/API version, storage driver, the docker group.

    Always runs (even when the engine is down: diagnosing that is the point) and turns every
    failure into a *fail* result whose message says what to do, never a traceback.
    """

    check_id = "ch2.docker.engine"
    timeout = 60.0

    def unavailable(self, ctx: RunContext) -> str | None:
        return None

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "连接 Docker 引擎（自动协商 API 版本），读取版本、存储驱动和当前用户的权限",
                "connect to the Docker engine (API version negotiated), read versions, storage driver "
                "and this user's access",
            ),
            commands=[_cli("--version"), _cli("version"), _cli("info")],
            notes=[_SDK_NOTE],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        from labkit.logic.host import DockerInfo, ToolInfo
        from labkit.steps import host as host_probe

        # The doctor's probe (socket, group, CLI on PATH): the same diagnosis `labkit doctor` shows.
        runner = host_probe.ContextRunner(ctx)
        try:
            cli, _ = host_probe.probe_tool(runner, "docker", host_probe.TOOL_TIMEOUT)
        except LabkitError:
            cli = ToolInfo("docker", shutil.which("docker"))
        try:
            info = host_probe.probe_docker(runner, cli, host_probe.TOOL_TIMEOUT)
        except Exception as exc:  # the probe is built never to raise; if it does, keep diagnosing
            info = DockerInfo(engine="error", detail=f"probe error: {exc}")
        ev: dict[str, Any] = {
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
        try:
            client = get_client(timeout=15)
        except LabkitError as exc:
            ev["error"] = str(exc)
            ev["error_type"] = type(exc).__name__
            return ev
        try:
            with docker_errors(tr("读取引擎信息", "read engine information"), argv=_cli("info")):
                version = client.version()
                system = client.info()
            ev["engine"] = {
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
        except LabkitError as exc:
            ev["error"] = str(exc)
            ev["error_type"] = type(exc).__name__
        finally:
            client.close()
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        if "error" in evidence:
            return CheckResult.failed(self.check_id, evidence["error"], **evidence)
        eng = evidence["engine"]
        user = evidence["user"]
        if user["is_root"]:
            who = tr("以 root 身份访问", "accessed as root")
        elif user["in_socket_group"]:
            who = tr(
                "当前用户在 {g} 组：无需 sudo，但这等同于 root 权限",
                "this user is in group {g}: no sudo needed, but that is root-equivalent",
                g=evidence["probe"]["socket_group"] or "docker",
            )
        else:
            who = tr("可以访问引擎", "engine accessible")
        paths = evidence["probe"]["client_paths"]
        extra = ""
        if len(paths) > 1:
            extra = tr(
                "；注意 PATH 上有 {n} 个 docker 命令（{p}），实际用的是第一个",
                "; note: {n} docker commands on PATH ({p}), the first one wins",
                n=len(paths),
                p=", ".join(paths),
            )
        msg = tr(
            "Docker 引擎 {v}（API {a}，存储驱动 {d}）；{w}{x}",
            "Docker engine {v} (API {a}, storage driver {d}); {w}{x}",
            v=eng["server_version"],
            a=eng["api_version"],
            d=eng["storage_driver"],
            w=who,
            x=extra,
        )
        return CheckResult.passed(self.check_id, msg, **evidence)


# ----------------------------------------------------------------------------------------------
# Local base images (no registry needed)
# ----------------------------------------------------------------------------------------------
def _tar_dir(root: Path, out: Path, *, drop: tuple[str, ...] = ()) -> int:
    """Tar ``root``'s contents (like ``tar -C root -c .``) into ``out``; returns the member count.

    Ownership is kept numerically; sockets (which tar cannot store) are skipped.
    """
    count = 0
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(rel_dir, name))
                if rel in drop:
                    continue
                info = tar.gettarinfo(full, arcname=rel)
                if info is None:  # a socket
                    continue
                info.uname = info.gname = ""
                if info.isreg():
                    with open(full, "rb") as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)
                count += 1
            dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
    return count


def _busybox_tar(busybox: Path, applets: list[str], out: Path) -> int:
    """A minimal rootfs: /bin/busybox, one symlink per applet, /etc/passwd, /tmp; returns members."""
    members = 0
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, *, mode: int, data: bytes = b"", link: str = "") -> None:
            nonlocal members
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = mode
            info.mtime = 0
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
            members += 1

        for d in (
            "bin",
            "sbin",
            "usr",
            "usr/bin",
            "usr/sbin",
            "etc",
            "root",
            "home",
            "var",
            "proc",
            "sys",
            "dev",
        ):
            add(d, tarfile.DIRTYPE, mode=0o700 if d == "root" else 0o755)
        add("tmp", tarfile.DIRTYPE, mode=0o1777)
        add("var/tmp", tarfile.DIRTYPE, mode=0o1777)
        info = tar.gettarinfo(str(busybox), arcname="bin/busybox")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755
        info.mtime = 0
        with open(busybox, "rb") as fh:
            tar.addfile(info, fh)
        members += 1
        seen = {"bin/busybox"}
        for applet in applets:
            path = applet.strip().lstrip("/")
            if not path or path in seen or "/" not in path:
                continue
            seen.add(path)
            add(path, tarfile.SYMTYPE, mode=0o777, link="/bin/busybox")
        passwd = (
            "root:x:0:0:root:/root:/bin/sh\n"
            "labkit:x:1000:1000:labkit:/home:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        )
        add("etc/passwd", tarfile.REGTYPE, mode=0o644, data=passwd.encode())
        add("etc/group", tarfile.REGTYPE, mode=0o644, data=b"root:x:0:\nlabkit:x:1000:\nnogroup:x:65534:\n")
    return members


def _find_busybox() -> Path:
    """The host's *static* busybox (a dynamic one would need a libc inside the image)."""
    for cand in (shutil.which("busybox"), *BUSYBOX_PATHS):
        if cand and os.path.isfile(cand):
            with open(cand, "rb") as fh:
                head = fh.read(65536)
            try:
                if g.elf_info(head).static:
                    return Path(cand)
            except ValueError:
                continue
    raise ToolMissing("busybox (static)", "busybox-static")


def _import_changes(labels: dict[str, str], cmd: list[str], env_path: str) -> list[str]:
    label = " ".join(f"{k}={json.dumps(v)}" for k, v in labels.items())
    return [f"LABEL {label}", f"CMD {json.dumps(cmd)}", f"ENV PATH={env_path}"]


def _import_id(result: Any) -> str:
    """The image id from ``APIClient.import_image``'s answer (JSON lines with a ``status``)."""
    text = result if isinstance(result, str) else json.dumps(result)
    for line in reversed(text.strip().splitlines()):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "error" in item:
            raise ValueError(item.get("error"))
        status = item.get("status", "") if isinstance(item, dict) else ""
        if status.startswith("sha256:"):
            return status
    raise ValueError(f"docker import gave no image id: {text[:200]}")


def _host_debian_mirror(mirror: str | None) -> tuple[str, str]:
    """(mirror URL, why): the host's Debian mirror (reusing the guest chapter's apt parsing)."""
    if mirror:
        return mirror.rstrip("/"), "mirror given explicitly"
    try:
        from labkit.steps.guest import host_repo

        repo = host_repo()
    except LabkitError:
        return g.DEBIAN_FALLBACK_MIRROR, "host is not Debian/Ubuntu: using deb.debian.org"
    if repo.distro == "debian":
        return repo.mirror, "the host's own Debian mirror"
    return g.DEBIAN_FALLBACK_MIRROR, "host is Ubuntu: Debian packages come from deb.debian.org"


def debootstrap_argv(target: str, mirror: str, suite: str = DEBIAN_SUITE) -> list[str]:
    """The debootstrap command of the ``debian`` local base (minbase + python3)."""
    argv = ["debootstrap", "--variant=minbase", "--include=python3,ca-certificates"]
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    if os.path.isfile(keyring):
        argv.append(f"--keyring={keyring}")
    return [*argv, suite, target, mirror]


def build_local_base(
    client: Any,
    ctx: RunContext,
    kind: str = "busybox",
    *,
    ref: str | None = None,
    mirror: str | None = None,
    step: str = "ch2.docker.base",
    workdir: str | None = None,
) -> dict[str, Any]:
    """Create local base image ``kind`` (busybox | debian) with labkit labels; returns evidence."""
    if kind not in LOCAL_BASES:
        raise InvalidField(
            "kind",
            kind,
            tr("不是已知的本地基础镜像", "is not a known local base"),
            tr("用 busybox 或 debian", "use busybox or debian"),
        )
    ref = ref or LOCAL_BASES[kind]
    parsed = parse_reference(ref, "ref")
    labels = labkit_labels(step, kind="image", ref=ref, base=kind)
    with tempfile.TemporaryDirectory(prefix="labkit-base-", dir=workdir) as tmp:
        tar_path = Path(tmp) / "rootfs.tar"
        ev: dict[str, Any] = {"kind": kind, "ref": ref}
        if kind == "busybox":
            busybox = _find_busybox()
            listing = ctx.run([str(busybox), "--list-full"], timeout=30, on_line=None)
            applets = listing.stdout.split()
            ev.update(busybox=str(busybox), applets=len(applets))
            ev["tar_members"] = _busybox_tar(busybox, applets, tar_path)
            cmd, env_path = ["/bin/sh"], "/usr/sbin:/usr/bin:/sbin:/bin"
        else:
            if os.geteuid() != 0:
                raise NotSupportedHere(
                    tr("debootstrap 需要 root 权限", "debootstrap needs root"),
                    tr("用 sudo 运行，或改用 kind='busybox'", "run as root (sudo), or use kind='busybox'"),
                )
            if shutil.which("debootstrap") is None:
                raise ToolMissing("debootstrap", "debootstrap")
            url, why = _host_debian_mirror(mirror)
            rootfs = Path(tmp) / "rootfs"
            files.ensure_free_space(tmp, 600 * 2**20, what="debootstrap a Debian rootfs")
            ctx.say(tr("Debian 镜像源：{u}（{w}）", "Debian mirror: {u} ({w})", u=url, w=why))
            ctx.run(debootstrap_argv(str(rootfs), url), timeout=900)
            for rel in DEBIAN_TRIM:
                target = rootfs / rel
                if target.is_dir():
                    for child in target.iterdir():
                        if child.is_dir() and not child.is_symlink():
                            shutil.rmtree(child, ignore_errors=True)
                        else:
                            child.unlink(missing_ok=True)
            ctx.check_cancelled()
            ev.update(mirror=url, mirror_note=why, tar_members=_tar_dir(rootfs, tar_path))
            cmd, env_path = ["/bin/bash"], "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ev["tar_bytes"] = tar_path.stat().st_size
        ctx.check_cancelled()
        with docker_errors(
            tr("导入本地基础镜像", "import the local base image"), argv=_cli("import", "-", ref)
        ):
            with open(tar_path, "rb") as fh:
                answer = client.api.import_image(
                    src=fh,
                    repository=parsed.name,
                    tag=parsed.tag_or_latest,
                    changes=_import_changes(labels, cmd, env_path),
                )
            image_id = _import_id(answer)
    ev.update(image_id=image_id, labels=labels)
    return ev


def _local_base_plan(kind: str, ref: str) -> tuple[list[list[str]], list[str]]:
    if kind == "busybox":
        return (
            [
                ["busybox", "--list-full"],
                _cli("import", "--change", "LABEL org.labkit.created=true", "-", ref),
            ],
            [
                tr(
                    "在临时目录里组装根文件系统：/bin/busybox（busybox-static 包）+ 每个 applet 一个符号链接"
                    " + /etc/passwd，在 Python 中打成 tar，相当于 tar -C rootfs -c . | docker import - {r}",
                    "assemble a rootfs in a temp dir: /bin/busybox (package busybox-static) + a "
                    "symlink per applet + /etc/passwd, tarred in Python: like "
                    "tar -C rootfs -c . | docker import - {r}",
                    r=ref,
                )
            ],
        )
    return (
        [debootstrap_argv("<tmp>/rootfs", "<host mirror>"), _cli("import", "-", ref)],
        [
            tr(
                "需要 root 和约 600 MB 临时空间，约 30-60 秒；删掉文档、语言包和 apt 列表后导入",
                "needs root and ~600 MB temporary space, ~30-60 s; docs, locales and apt lists are "
                "removed before the import",
            )
        ],
    )


def _find_image(client: Any, ref: str) -> Any | None:
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def ensure_local_base(client: Any, ctx: RunContext, ref: str, *, step: str) -> dict[str, Any] | None:
    """Build the busybox base if ``ref`` is that base and missing (None when nothing was built)."""
    if _find_image(client, ref) is not None:
        return None
    for kind, base_ref in LOCAL_BASES.items():
        if ref == base_ref and kind == "busybox":
            ctx.say(tr("本地还没有 {r}，先构建它", "{r} is not here yet: building it first", r=ref))
            return build_local_base(client, ctx, kind, step=step)
    raise InvalidField(
        "image",
        ref,
        tr("在这个 Docker 引擎上不存在", "does not exist on this Docker engine"),
        tr(
            "先构建或导入它（BuildLocalBase、LoadImage）",
            "build or load it first (BuildLocalBase, LoadImage)",
        ),
    )


class BuildLocalBase(_DockerStep):
    """A base image without any registry: ``busybox`` (fast) or ``debian`` (python3, needs root)."""

    check_id = "ch2.docker.base"

    def __init__(
        self,
        kind: str = "busybox",
        *,
        ref: str | None = None,
        mirror: str | None = None,
        rebuild: bool = False,
    ) -> None:
        self.kind = kind
        self.ref = ref
        self.mirror = mirror
        self.rebuild = rebuild

    def _ref(self) -> str:
        if self.kind not in LOCAL_BASES:
            raise InvalidField(
                "kind",
                self.kind,
                tr("不是已知的本地基础镜像", "is not a known local base"),
                tr("用 busybox 或 debian", "use busybox or debian"),
            )
        return validate_reference(self.ref or LOCAL_BASES[self.kind], "ref")

    def plan(self) -> Plan:
        ref = self._ref()
        commands, notes = _local_base_plan(self.kind, ref)
        return Plan(
            step=self.check_id,
            reason=tr(
                "不用镜像仓库，在本机构建基础镜像 {r}",
                "build base image {r} locally, no registry needed",
                r=ref,
            ),
            commands=commands,
            notes=[*notes, _SDK_NOTE],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        ref = self._ref()
        with ctx.engine(tr("构建本地基础镜像", "build a local base image")) as client:
            existing = _find_image(client, ref)
            if existing is not None and not self.rebuild:
                return {"kind": self.kind, "ref": ref, "image_id": existing.id, "reused": True}
            ev = build_local_base(client, ctx, self.kind, ref=ref, mirror=self.mirror, step=self.check_id)
        return {**ev, "reused": False}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        ref = evidence["ref"]
        with ctx.engine(tr("检查镜像", "inspect the image"), argv=_cli("image", "inspect", ref)) as client:
            image = client.images.get(ref)
            attrs = image.attrs
        labels = image.labels or {}
        ev = {
            "image_id": image.id,
            "tags": image.tags,
            "size": attrs.get("Size"),
            "size_human": human_size(int(attrs.get("Size") or 0)),
            "layers": len((attrs.get("RootFS") or {}).get("Layers") or []),
            "architecture": attrs.get("Architecture"),
            "labels": labels,
            "reused": evidence.get("reused", False),
        }
        if image.id != evidence["image_id"] or LABEL_OBJECT not in labels:
            return CheckResult.failed(
                self.check_id,
                tr("{r} 不是刚构建的带 labkit 标签的镜像", "{r} is not the labelled image just built", r=ref),
                **ev,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "本地基础镜像 {r}（{i}，{s}）可用",
                "local base image {r} ({i}, {s}) is ready",
                r=ref,
                i=short_id(image.id),
                s=ev["size_human"],
            ),
            **ev,
        )


# ----------------------------------------------------------------------------------------------
# Running containers
# ----------------------------------------------------------------------------------------------
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
    remove: bool = True,
) -> dict[str, Any]:
    """Create, start, wait for and read a labelled container; removes it afterwards (``remove``).

    Create + start are separate calls (not ``containers.run``) so a container that fails to start
    (port taken, say) is still removed instead of being left behind in state *created*.
    """
    labels = labkit_labels(step, kind="container")
    port = next(iter(ports.values())) if ports else None
    argv = _cli("run", "--rm", *(["--name", name] if name else []))
    for cport, hport in (ports or {}).items():
        argv += ["-p", f"{hport}:{cport.split('/')[0]}"]
    argv += [image, *(command or [])]
    container = None
    with docker_errors(tr("运行容器", "run a container"), argv=argv, port=port):
        try:
            container = client.containers.create(
                image, command, name=name, labels=labels, ports=ports or {}, environment=environment or {}
            )
            container.start()
            status = container.wait(timeout=timeout)
            stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        finally:
            if container is not None and remove:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
    return {
        "container_id": container.id,
        "container_name": container.name,
        "image": image,
        "command": command,
        "exit_code": status.get("StatusCode"),
        "error": (status.get("Error") or {}).get("Message") if status.get("Error") else None,
        "stdout": stdout[-4000:],
        "stderr": stderr[-4000:],
        "removed": remove,
        "labels": labels,
        "cli": shlex.join(argv),
    }


def _container_gone(client: Any, container_id: str) -> bool:
    return not client.containers.list(all=True, filters={"id": container_id})


def _exited_badly(check_id: str, evidence: dict[str, Any]) -> CheckResult:
    """The *fail* result for a container that exited non-zero, with the end of what it printed."""
    return CheckResult.failed(
        check_id,
        tr(
            "容器退出码 {c}：{e}",
            "container exited with {c}: {e}",
            c=evidence["exit_code"],
            e=(evidence["stderr"] or evidence["stdout"]).strip()[-300:],
        ),
        **evidence,
    )


class HelloContainer(_DockerStep):
    """The registry-free ``docker run hello-world``: print a greeting from a local busybox image."""

    check_id = "ch2.docker.hello"
    timeout = 120.0

    def __init__(self, image: str = LOCAL_BASES["busybox"], *, greeting: str = GREETING) -> None:
        self.image = image
        self.greeting = greeting

    def _command(self) -> list[str]:
        # the greeting travels in the environment, so no quoting of student text into a shell line
        return ["sh", "-c", 'echo "$LABKIT_GREETING"; echo "kernel: $(uname -sr) arch: $(uname -m)"']

    def plan(self) -> Plan:
        validate_reference(self.image)
        return Plan(
            step=self.check_id,
            reason=tr(
                "运行一个打印问候语的容器（课程里的 hello-world，但镜像在本地，无需仓库）",
                "run a container that prints a greeting (the course's hello-world, from a local image, "
                "no registry)",
            ),
            commands=[
                _cli(
                    "run",
                    "--rm",
                    "--label",
                    "org.labkit.created=true",
                    "-e",
                    f"LABKIT_GREETING={self.greeting}",
                    self.image,
                    *self._command(),
                )
            ],
            notes=[
                tr(
                    "镜像不存在时先用 busybox-static 构建 {b}",
                    "if missing, {b} is built first from busybox-static",
                    b=LOCAL_BASES["busybox"],
                ),
                _SDK_NOTE,
            ],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with ctx.engine(tr("运行 hello 容器", "run the hello container")) as client:
            built = ensure_local_base(client, ctx, self.image, step=self.check_id)
            ev = run_container(
                client,
                self.image,
                self._command(),
                step=self.check_id,
                timeout=60,
                environment={"LABKIT_GREETING": self.greeting},
            )
        ev["base_built"] = built is not None
        for line in ev["stdout"].splitlines():
            ctx.say(line)
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        with ctx.engine(tr("检查容器已删除", "check the container is gone")) as client:
            gone = _container_gone(client, evidence["container_id"])
        ev = {**evidence, "container_removed": gone}
        if evidence["exit_code"] != 0:
            return _exited_badly(self.check_id, ev)
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
                "容器运行成功并输出：{o}（容器已删除）",
                "the container ran and printed: {o} (container removed)",
                o=evidence["stdout"].strip().splitlines()[0],
            ),
            **ev,
        )


# ----------------------------------------------------------------------------------------------
# Packaging: commit → save → load → run (course 2.4.5)
# ----------------------------------------------------------------------------------------------
def _image_info(image: Any) -> dict[str, Any]:
    attrs = image.attrs
    return {
        "image_id": image.id,
        "tags": list(image.tags),
        "size": int(attrs.get("Size") or 0),
        "layers": len((attrs.get("RootFS") or {}).get("Layers") or []),
        "labels": dict(image.labels or {}),
        "created": attrs.get("Created"),
    }


def _owned_by_labkit(client: Any, image: Any) -> bool:
    """Whether ``image`` is one labkit created (not merely one that inherited the labels)."""
    objects = _list_objects(client, images=True, containers=False)
    ours, _ = select_labkit(objects)
    return any(o.id == image.id for o in ours)


class CommitContainer(_DockerStep):
    """``docker commit``: change a labelled container, commit it to a labelled image."""

    check_id = "ch2.docker.commit"
    timeout = 180.0

    def __init__(
        self,
        image: str = "labkit/ailab:latest",
        *,
        base: str = LOCAL_BASES["busybox"],
        container_name: str = "labkit-ailab",
        note: str = "committed by labkit",
        overwrite: bool = False,
        keep_container: bool = False,
    ) -> None:
        self.image = image
        self.base = base
        self.container_name = container_name
        self.note = note
        self.overwrite = overwrite
        self.keep_container = keep_container

    def _validate(self) -> None:
        validate_reference(self.image, "image")
        validate_reference(self.base, "base")
        validate_container_name(self.container_name, "container_name")
        if not isinstance(self.note, str) or "\n" in self.note or "\0" in self.note:
            raise InvalidField(
                "note",
                self.note,
                tr("不是一行文字", "is not one line of text"),
                tr("去掉换行", "remove line breaks"),
            )

    def _exec(self) -> list[str]:
        # the note travels in the environment: any text is safe, nothing is quoted into the shell line
        return ["sh", "-c", 'printf "%s\\n" "$LABKIT_NOTE" > /labkit-note']

    def plan(self) -> Plan:
        self._validate()
        return Plan(
            step=self.check_id,
            reason=tr(
                "从 {b} 启动容器 {c}，在里面写入 /labkit-note，再提交为镜像 {i}",
                "start container {c} from {b}, write /labkit-note inside, commit it as image {i}",
                b=self.base,
                c=self.container_name,
                i=self.image,
            ),
            commands=[
                _cli(
                    "run",
                    "-d",
                    "--name",
                    self.container_name,
                    "--label",
                    "org.labkit.created=true",
                    self.base,
                    "sleep",
                    "3600",
                ),
                _cli("exec", "-e", f"LABKIT_NOTE={self.note}", self.container_name, *self._exec()),
                _cli("commit", self.container_name, self.image),
                *([] if self.keep_container else [_cli("rm", "-f", self.container_name)]),
            ],
            notes=[_SDK_NOTE],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self._validate()
        ref = parse_reference(self.image)
        with ctx.engine(tr("提交容器", "commit a container")) as client:
            existing = _find_image(client, self.image)
            if existing is not None and not self.overwrite and not _owned_by_labkit(client, existing):
                raise ConsentRequired(
                    tr(
                        "把标签 {i} 从一个不是 labkit 创建的镜像上移走",
                        "move tag {i} off an image labkit did not create",
                        i=self.image,
                    ),
                    tr(
                        "换一个镜像名，或传 overwrite=True",
                        "choose another image name, or pass overwrite=True",
                    ),
                )
            ensure_local_base(client, ctx, self.base, step=self.check_id)
            base_layers = _image_info(client.images.get(self.base))["layers"]
            self._remove_stale_container(client)
            labels = labkit_labels(self.check_id, kind="container")
            with docker_errors(tr("启动容器", "start the container"), argv=self.plan().commands[0]):
                container = client.containers.create(
                    self.base, ["sleep", "3600"], name=self.container_name, labels=labels
                )
            try:
                with docker_errors(tr("启动容器", "start the container"), argv=self.plan().commands[0]):
                    container.start()
                with docker_errors(
                    tr("在容器里执行命令", "exec in the container"), argv=self.plan().commands[1]
                ):
                    code, out = container.exec_run(self._exec(), environment={"LABKIT_NOTE": self.note})
                if code != 0:
                    raise InvalidField(
                        "note",
                        self.note,
                        tr("写入失败：", "could not be written: ") + out.decode(errors="replace"),
                        tr("检查容器里有 sh", "check the image has sh"),
                    )
                image_labels = labkit_labels(self.check_id, kind="image", ref=self.image)
                changes = ["LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in image_labels.items())]
                with docker_errors(tr("提交容器", "commit the container"), argv=self.plan().commands[2]):
                    image = container.commit(
                        repository=ref.name,
                        tag=ref.tag_or_latest,
                        message=tr("labkit 第 2.4.5 节", "labkit section 2.4.5"),
                        changes=changes,
                    )
                    image.reload()
            finally:
                if not self.keep_container:
                    with contextlib.suppress(Exception):
                        container.remove(force=True)
            info = _image_info(image)
        return {
            **info,
            "ref": self.image,
            "base": self.base,
            "base_layers": base_layers,
            "container_id": container.id,
            "container_name": self.container_name,
            "container_kept": self.keep_container,
            "note": self.note,
        }

    def _remove_stale_container(self, client: Any) -> None:
        """A container of that name left by an earlier labkit run is ours to remove; others are not."""
        import docker.errors

        try:
            old = client.containers.get(self.container_name)
        except docker.errors.NotFound:
            return
        objs = [_container_object(old.attrs)]
        ours, _ = select_labkit(objs)
        if ours:
            old.remove(force=True)
        # else: leave it; create() fails with a name conflict that names it and says how to remove

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        with ctx.engine(
            tr("检查镜像", "inspect the image"), argv=_cli("image", "inspect", self.image)
        ) as client:
            image = client.images.get(self.image)
            info = _image_info(image)
            owned = _owned_by_labkit(client, image)
        ev = {**evidence, "inspected": info, "owned_by_labkit": owned}
        if info["image_id"] != evidence["image_id"]:
            return CheckResult.failed(
                self.check_id, tr("{i} 指向了别的镜像", "{i} points at another image", i=self.image), **ev
            )
        if info["layers"] != evidence["base_layers"] + 1 or not owned:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "提交的镜像应比基础镜像多一层且带 labkit 标签",
                    "the committed image should have one layer more than its base and labkit's labels",
                ),
                **ev,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "容器已提交为 {i}（{d}，{n} 层，比 {b} 多一层）",
                "container committed as {i} ({d}, {n} layers, one more than {b})",
                i=self.image,
                d=short_id(info["image_id"]),
                n=info["layers"],
                b=self.base,
            ),
            **ev,
        )


def _compression_for(path: str, compression: str) -> str:
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


def _pipelined(
    chunks: Iterator[bytes], cancel: threading.Event, *, batch: int = CHUNK, depth: int = 8
) -> Iterator[bytes]:
    """Read ``chunks`` in a thread so the engine's stream and our gzip/hash/write overlap.

    This is what the shell's ``docker save | gzip`` gets for free from two processes; zlib,
    hashlib and file writes release the GIL, so two threads keep two cores busy. The engine sends
    its HTTP chunks in 32 KiB pieces whatever ``chunk_size`` asks for; they are joined into
    ``batch``-sized blocks so the queue, zlib and ``write`` are called ~30× less often.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    failure: list[BaseException] = []

    def reader() -> None:
        pending: list[bytes] = []
        size = 0
        try:
            for chunk in chunks:
                if cancel.is_set():
                    return
                pending.append(chunk)
                size += len(chunk)
                if size >= batch:
                    q.put(b"".join(pending))
                    pending, size = [], 0
            if pending:
                q.put(b"".join(pending))
        except BaseException as exc:  # handed to the consumer, translated there
            failure.append(exc)
        finally:
            q.put(done)

    thread = threading.Thread(target=reader, daemon=True, name="labkit-docker-stream")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            yield item
        if failure:
            raise failure[0]
    finally:
        cancel.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)


def save_image_stream(
    chunks: Iterator[bytes],
    out: Any,
    *,
    compression: str,
    level: int = GZIP_LEVEL,
    total: int = 0,
    on_progress: Callable[[float], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Write tar ``chunks`` to binary file ``out`` (gzip-compressed if asked), hashing as it goes."""
    digest = hashlib.sha256()
    comp = zlib.compressobj(level, zlib.DEFLATED, 31) if compression == "gzip" else None
    tar_bytes = written = 0
    for chunk in chunks:
        tar_bytes += len(chunk)
        data = comp.compress(chunk) if comp is not None else chunk
        if data:
            digest.update(data)
            out.write(data)
            written += len(data)
        if on_progress is not None and total:
            on_progress(min(tar_bytes / total, 0.99))
        if check_cancel is not None:
            check_cancel()
    if comp is not None:
        data = comp.flush()
        digest.update(data)
        out.write(data)
        written += len(data)
    return {"tar_bytes": tar_bytes, "file_bytes": written, "sha256": digest.hexdigest()}


class SaveImage(_DockerStep):
    """``docker save IMAGE | gzip > FILE``: streamed, hashed, atomic, with a sidecar for the id."""

    check_id = "ch2.docker.save"

    def __init__(
        self,
        image: str = "labkit/ailab:latest",
        path: str | os.PathLike[str] = "ailab-image.tar.gz",
        *,
        compression: str = "auto",
        level: int = GZIP_LEVEL,
        overwrite: bool = False,
        chunk_size: int = CHUNK,
    ) -> None:
        self.image = image
        self.path = str(path)
        self.compression = compression
        self.level = level
        self.overwrite = overwrite
        self.chunk_size = chunk_size

    def _validate(self) -> str:
        validate_reference(self.image, "image")
        comp = _compression_for(self.path, self.compression)
        if isinstance(self.level, bool) or not isinstance(self.level, int) or not 1 <= self.level <= 9:
            raise InvalidField(
                "level",
                self.level,
                tr("不是 1-9 的压缩级别", "is not a gzip level 1-9"),
                tr("gzip 命令默认 6", "the gzip command's default is 6"),
            )
        return comp

    def plan(self) -> Plan:
        comp = self._validate()
        text = f"docker save {shlex.quote(self.image)}" + (
            f" | gzip -{self.level} > {shlex.quote(self.path)}"
            if comp == "gzip"
            else f" > {shlex.quote(self.path)}"
        )
        return Plan(
            step=self.check_id,
            reason=tr("把镜像 {i} 保存为文件 {p}", "save image {i} to file {p}", i=self.image, p=self.path),
            commands=[_cli("save", "-o", self.path, self.image)] if comp == "none" else [],
            files={
                self.path + SIDECAR_SUFFIX: tr(
                    "镜像 id、标签、sha256（JSON）", "image id, tags, sha256 (JSON)"
                )
            },
            notes=[
                tr("等价命令：", "equivalent command: ") + text,
                tr(
                    "边读边压缩边计算 sha256，先写临时文件再改名，不会留下半个文件；"
                    "已存在的文件需要 overwrite=True",
                    "compressed and hashed while streaming, written to a temporary file then renamed (never "
                    "half a file); an existing file needs overwrite=True",
                ),
                _SDK_NOTE,
            ],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        comp = self._validate()
        sidecar = self.path + SIDECAR_SUFFIX
        files.refuse_overwrite(self.path, self.overwrite, "path")
        files.refuse_overwrite(sidecar, self.overwrite, "path")
        with ctx.engine(
            tr("保存镜像", "save the image"), argv=_cli("save", self.image), timeout=120
        ) as client:
            image = client.images.get(self.image)
            info = _image_info(image)
            directory = os.path.dirname(os.path.abspath(self.path))
            files.ensure_free_space(directory, info["size"] + (64 << 20), what="save the image")
            named = (
                self.image
                if self.image in image.tags
                else (f"{self.image}:latest" if f"{self.image}:latest" in image.tags else False)
            )
            stop = threading.Event()
            stream = _pipelined(
                image.save(chunk_size=self.chunk_size, named=named), stop, batch=self.chunk_size
            )
            with (
                contextlib.closing(stream),
                files.atomic_target(self.path, overwrite=self.overwrite) as tmp,
                open(tmp, "wb") as out,
            ):
                result = save_image_stream(
                    stream,
                    out,
                    compression=comp,
                    level=self.level,
                    total=info["size"],
                    on_progress=ctx.progress,
                    check_cancel=ctx.check_cancelled,
                )
        ctx.progress(1.0)
        text = make_sidecar(
            image_id=info["image_id"],
            tags=info["tags"],
            sha256=result["sha256"],
            size=result["file_bytes"],
            compression=comp,
            archive=os.path.basename(self.path),
        )
        files.write_atomic(sidecar, text, overwrite=self.overwrite)
        return {**info, **result, "path": os.path.abspath(self.path), "sidecar": sidecar, "compression": comp}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        path = evidence["path"]
        size = os.path.getsize(path) if os.path.isfile(path) else -1
        with open(path, "rb") as fh:
            kind = archive_kind(fh.read(512))
        side = parse_sidecar(Path(evidence["sidecar"]).read_text(encoding="utf-8"))
        expected_kind = "gzip" if evidence["compression"] == "gzip" else "tar"
        ev = {**evidence, "file_size": size, "archive_kind": kind}
        ok = size == evidence["file_bytes"] and kind == expected_kind and side["sha256"] == evidence["sha256"]
        if not ok:
            return CheckResult.failed(
                self.check_id,
                tr("文件与写入时记录的不一致", "the file does not match what was written"),
                **ev,
            )
        ratio = size / evidence["tar_bytes"] if evidence["tar_bytes"] else 1.0
        return CheckResult.passed(
            self.check_id,
            tr(
                "已保存 {p}（{s}，{r:.0%} 的 tar 大小），sha256 {h}…",
                "saved {p} ({s}, {r:.0%} of the tar size), sha256 {h}…",
                p=path,
                s=human_size(size),
                r=ratio,
                h=evidence["sha256"][:16],
            ),
            **ev,
        )


class _HashingReader:
    """Yields a file in chunks for the engine while hashing it and reporting progress."""

    def __init__(self, path: str, chunk: int, on_progress: Callable[[float], None], cancel: threading.Event):
        self.path = path
        self.chunk = chunk
        self.size = os.path.getsize(path)
        self.sha = hashlib.sha256()
        self.read = 0
        self.on_progress = on_progress
        self.cancel = cancel

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while True:
                if self.cancel.is_set():
                    return
                data = fh.read(self.chunk)
                if not data:
                    return
                self.sha.update(data)
                self.read += len(data)
                if self.size:
                    self.on_progress(min(self.read / self.size, 0.99))
                yield data


class LoadImage(_DockerStep):
    """``docker load < FILE``: streamed (gzip accepted as the engine does), verified by the sidecar."""

    check_id = "ch2.docker.load"

    def __init__(
        self,
        path: str | os.PathLike[str] = "ailab-image.tar.gz",
        *,
        expect_id: str | None = None,
        chunk_size: int = CHUNK,
    ) -> None:
        self.path = str(path)
        self.expect_id = expect_id
        self.chunk_size = chunk_size

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr("从文件 {p} 导入镜像", "load the image from file {p}", p=self.path),
            commands=[_cli("load", "-i", self.path)],
            notes=[
                tr(
                    "docker load 直接接受 .tar 和 .tar.gz；.zip 不行（要先解压）",
                    "docker load takes .tar and .tar.gz directly; not .zip (unzip it first)",
                ),
                tr(
                    "若有 {s} 说明文件，则核对 sha256 和镜像 id",
                    "with a {s} sidecar, the sha256 and the image id are verified",
                    s=SIDECAR_SUFFIX,
                ),
                _SDK_NOTE,
            ],
        )

    def _sniff(self) -> str:
        if not os.path.isfile(self.path):
            raise InvalidField(
                "path",
                self.path,
                tr("不存在", "does not exist"),
                tr("检查路径，或先用 SaveImage 保存", "check the path, or save it first with SaveImage"),
            )
        with open(self.path, "rb") as fh:
            kind = archive_kind(fh.read(512))
        if kind == "zip":
            raise InvalidField(
                "path",
                self.path,
                tr(
                    "是 zip 压缩包：docker load 只接受 tar（可用 gzip/bzip2/xz 压缩）",
                    "is a zip archive: docker load takes only tar (optionally gzip/bzip2/xz compressed)",
                ),
                tr(
                    "先解压：unzip {p}，再加载其中的 .tar；或 unzip -p {p} | docker load",
                    "unzip it first: unzip {p}, then load the .tar inside; or unzip -p {p} | docker load",
                    p=shlex.quote(self.path),
                ),
            )
        if kind == "zstd":
            raise InvalidField(
                "path",
                self.path,
                tr("是 zstd 压缩：此 Docker 引擎不支持", "is zstd-compressed: this engine cannot read it"),
                tr("用 zstd -d 解压后再加载", "decompress with zstd -d first"),
            )
        if kind == "unknown":
            raise InvalidField(
                "path",
                self.path,
                tr("不是 docker save 生成的 tar 文件", "is not a tar file made by docker save"),
                tr("用 docker save 或 SaveImage 生成", "create it with docker save or SaveImage"),
            )
        return kind

    def run(self, ctx: RunContext) -> dict[str, Any]:
        kind = self._sniff()
        sidecar_path = self.path + SIDECAR_SUFFIX
        sidecar = None
        if os.path.isfile(sidecar_path):
            sidecar = parse_sidecar(Path(sidecar_path).read_text(encoding="utf-8"))
        reader = _HashingReader(self.path, self.chunk_size, ctx.progress, ctx.cancel)
        argv = _cli("load", "-i", self.path)
        action = tr("加载镜像", "load the image")
        try:
            with ctx.engine(action, argv=argv, timeout=300) as client:
                # read + hash in a thread while the upload blocks on the engine (cf. SaveImage)
                body = _pipelined(iter(reader), threading.Event(), batch=self.chunk_size)
                with contextlib.closing(body):
                    stream = client.api.load_image(body, quiet=True)  # quiet: no progress-bar JSON
                    try:
                        refs = parse_load_output(stream)
                    except ValueError as exc:
                        raise translate(exc, action, argv=argv) from exc
                ctx.check_cancelled()
                images = []
                for ref in refs:
                    image = client.images.get(ref)
                    images.append({"ref": ref, **_image_info(image)})
        except LabkitError:
            if ctx.cancel.is_set():  # a cut-off upload makes the engine complain: say why it was cut
                raise Cancelled(argv, None) from None
            raise
        if reader.read != reader.size:
            raise Cancelled(argv, None)
        ctx.progress(1.0)
        return {
            "path": os.path.abspath(self.path),
            "archive_kind": kind,
            "file_bytes": reader.size,
            "sha256": reader.sha.hexdigest(),
            "loaded": refs,
            "images": images,
            "sidecar": sidecar,
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        images = evidence["images"]
        if not images:
            return CheckResult.failed(
                self.check_id, tr("docker load 没有报告任何镜像", "docker load reported no image"), **evidence
            )
        ids = sorted({i["image_id"] for i in images})
        side = evidence["sidecar"] or {}
        expect = self.expect_id or side.get("image_id")
        ev = {**evidence, "image_ids": ids, "expected_id": expect}
        if side and side.get("sha256") != evidence["sha256"]:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "文件 sha256 与保存时不同：文件在复制中损坏或被替换",
                    "the file's sha256 differs from the one "
                    "recorded at save time: damaged or replaced in transit",
                ),
                **ev,
            )
        if expect and expect not in ids:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "加载后的镜像 id {a} 与保存前 {b} 不同",
                    "image id after load {a} differs from before save {b}",
                    a=", ".join(short_id(i) for i in ids),
                    b=short_id(expect),
                ),
                **ev,
            )
        same = (
            tr("与保存前的 id 相同", "same id as before saving")
            if expect
            else tr("（没有说明文件可核对 id）", "(no sidecar to compare the id)")
        )
        return CheckResult.passed(
            self.check_id,
            tr(
                "已加载 {r}（{i}），{s}",
                "loaded {r} ({i}), {s}",
                r=", ".join(evidence["loaded"]),
                i=", ".join(short_id(i) for i in ids),
                s=same,
            ),
            **ev,
        )


class RunImage(_DockerStep):
    """``docker run IMAGE COMMAND``: run the (loaded) image and read back what the command prints."""

    check_id = "ch2.docker.run"
    timeout = 180.0

    def __init__(
        self,
        image: str = "labkit/ailab:latest",
        command: list[str] | None = None,
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

    def _validate(self) -> None:
        validate_reference(self.image, "image")
        if self.name is not None:
            validate_container_name(self.name, "name")
        for cport, hport in (self.ports or {}).items():
            if isinstance(hport, bool) or not isinstance(hport, int) or not 1 <= hport <= 65535:
                raise InvalidField(
                    "ports",
                    f"{cport}→{hport}",
                    tr("宿主端口应为 1-65535", "host port must be 1-65535"),
                    tr("例如 {'8888/tcp': 8888}", "e.g. {'8888/tcp': 8888}"),
                )

    def plan(self) -> Plan:
        self._validate()
        argv = _cli("run", "--rm", *(["--name", self.name] if self.name else []))
        for cport, hport in (self.ports or {}).items():
            argv += ["-p", f"{hport}:{cport.split('/')[0]}"]
        return Plan(
            step=self.check_id,
            reason=tr("运行镜像 {i} 并读取输出", "run image {i} and read its output", i=self.image),
            commands=[[*argv, self.image, *self.command]],
            notes=[_SDK_NOTE],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self._validate()
        with ctx.engine(tr("运行镜像", "run the image")) as client:
            ev = run_container(
                client, self.image, self.command, step=self.check_id, name=self.name, ports=self.ports
            )
        for line in ev["stdout"].splitlines()[:20]:
            ctx.say(line)
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        out = evidence["stdout"]
        if evidence["exit_code"] != 0:
            return _exited_badly(self.check_id, evidence)
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


# ----------------------------------------------------------------------------------------------
# Cleanup (course 2.4.6, but only what labkit created)
# ----------------------------------------------------------------------------------------------
def _container_object(attrs: dict[str, Any]) -> DockerObject:
    config = attrs.get("Config") or {}
    return DockerObject(
        kind="container",
        id=attrs.get("Id", ""),
        names=(str(attrs.get("Name", "")).lstrip("/"),),
        labels=dict(config.get("Labels") or {}),
        created=str(attrs.get("Created", "")),
        state=str((attrs.get("State") or {}).get("Status", "")),
    )


def _image_object(attrs: dict[str, Any]) -> DockerObject:
    config = attrs.get("Config") or {}
    return DockerObject(
        kind="image",
        id=attrs.get("Id", ""),
        names=tuple(attrs.get("RepoTags") or ()),
        labels=dict(config.get("Labels") or {}),
        layers=len((attrs.get("RootFS") or {}).get("Layers") or []),
        created=str(attrs.get("Created", "")),
    )


def _list_objects(client: Any, *, containers: bool = True, images: bool = True) -> list[DockerObject]:
    out: list[DockerObject] = []
    if containers:
        out += [_container_object(c.attrs) for c in client.containers.list(all=True, filters=LABKIT_FILTER)]
    if images:
        out += [_image_object(i.attrs) for i in client.images.list(all=True, filters=LABKIT_FILTER)]
    return out


def list_labkit_objects(client: Any) -> tuple[list[DockerObject], list[DockerObject]]:
    """(objects labkit created, labelled objects labkit did NOT create) on this engine."""
    return select_labkit(_list_objects(client))


class CleanupLabkit(_DockerStep):
    """Remove the containers and images labkit created (labels), after listing them; never others.

    Unlike other steps, :meth:`plan` asks the engine (read-only) so the plan shows exactly which
    ids and names would go, and which labelled objects stay because they only *inherited* the
    labels (see :func:`~labkit.logic.docker_names.select_labkit`). Nothing is removed without
    ``consent=True``; ``step`` / ``ids`` narrow the set further. Images lose only the tag labkit
    gave them: one a student added keeps the image alive.
    """

    check_id = "ch2.docker.cleanup"
    timeout = 300.0

    def __init__(
        self, *, consent: bool = False, step: str | None = None, ids: list[str] | None = None
    ) -> None:
        self.consent = consent
        self.step = step  # only objects created by this check id (None: all of labkit's)
        self.ids = list(ids) if ids is not None else None  # only these ids (full or short)

    def _targets(self, client: Any) -> tuple[list[DockerObject], list[DockerObject]]:
        ours, lookalike = list_labkit_objects(client)
        if self.step:
            ours = [o for o in ours if o.labels.get("org.labkit.step") == self.step]
        if self.ids is not None:
            wanted = {short_id(i) for i in self.ids}
            ours = [o for o in ours if short_id(o.id) in wanted]
        return ours, lookalike

    def plan(self) -> Plan:
        notes: list[str] = []
        commands: list[list[str]] = []
        try:
            client = get_client(timeout=10)
        except LabkitError as exc:
            notes.append(
                tr("现在无法列出（{e}）；运行时再列出", "cannot list now ({e}); listed when run", e=exc)
            )
        else:
            try:
                with docker_errors(tr("列出 labkit 的对象", "list labkit's objects")):
                    ours, lookalike = self._targets(client)
            finally:
                client.close()
            for obj in ours:
                if obj.kind == "container":
                    commands.append(_cli("rm", "-f", short_id(obj.id)))
                else:
                    commands.append(_cli("rmi", *(_own_tags(obj) or [short_id(obj.id)])))
                notes.append(tr("将删除 ", "will remove ") + obj.describe())
            for obj in lookalike:
                notes.append(
                    tr(
                        "保留（继承了标签，但不是 labkit 创建的）",
                        "kept (inherited the labels, not created by labkit)",
                    )
                    + ": "
                    + obj.describe()
                )
            if not ours:
                notes.append(tr("没有 labkit 创建的容器或镜像", "no container or image created by labkit"))
        return Plan(
            step=self.check_id,
            reason=tr(
                "只删除带 {l}=true 标签、由 labkit 创建的容器和镜像（先容器后镜像）",
                "remove only containers and images labkit created (label {l}=true), containers first",
                l="org.labkit.created",
            ),
            commands=commands,
            notes=[
                *notes,
                tr("需要 consent=True 才会真正删除", "nothing is removed without consent=True"),
                _SDK_NOTE,
            ],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        import docker.errors

        with ctx.engine(tr("清理 labkit 的对象", "clean up labkit's objects")) as client:
            ours, lookalike = self._targets(client)
            listed = [o.describe() for o in ours]
            if ours and not self.consent:
                raise ConsentRequired(
                    tr("删除 {n} 个对象：{l}", "remove {n} objects: {l}", n=len(ours), l="; ".join(listed)),
                    tr("确认后传 consent=True", "pass consent=True after checking the list"),
                )
            removed: list[str] = []
            kept: list[str] = []
            for obj in ours:
                ctx.check_cancelled()
                try:
                    if obj.kind == "container":
                        client.containers.get(obj.id).remove(force=True)
                        removed.append(obj.describe())
                        continue
                    image = client.images.get(obj.id)
                    own = _own_tags(obj)
                    others = [t for t in image.tags if t not in own]
                    for tag in own:
                        client.images.remove(tag)
                    if others:
                        kept.append(
                            obj.describe()
                            + tr("（还有其他标签：{t}）", " (other tags: {t})", t=", ".join(others))
                        )
                        continue
                    with contextlib.suppress(docker.errors.ImageNotFound):
                        client.images.remove(obj.id)
                    removed.append(obj.describe())
                except docker.errors.NotFound:
                    removed.append(obj.describe() + tr("（已不存在）", " (already gone)"))
                except docker.errors.APIError as exc:
                    kept.append(f"{obj.describe()}: {exc.explanation or exc}")
        return {
            "planned": listed,
            "removed": removed,
            "kept": kept,
            "lookalike_kept": [o.describe() for o in lookalike],
            "removed_ids": [o.id for o in ours],
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        with ctx.engine(tr("检查清理结果", "check the cleanup")) as client:
            ours, _ = self._targets(client)
        left = [o.describe() for o in ours]
        ev = {**evidence, "left": left}
        if left and not evidence["kept"]:
            return CheckResult.failed(
                self.check_id,
                tr("仍有 labkit 的对象：{l}", "labkit objects remain: {l}", l="; ".join(left)),
                **ev,
            )
        msg = tr("删除了 {n} 个 labkit 对象", "removed {n} labkit objects", n=len(evidence["removed"]))
        if evidence["kept"]:
            msg += tr(
                "；保留 {k} 个（仍被使用或另有标签）",
                "; kept {k} (still in use or tagged otherwise)",
                k=len(evidence["kept"]),
            )
        if evidence["lookalike_kept"]:
            msg += tr(
                "；{k} 个继承了标签的对象未动",
                "; {k} objects that merely inherited the labels untouched",
                k=len(evidence["lookalike_kept"]),
            )
        return CheckResult.passed(self.check_id, msg, **ev)


def _own_tags(obj: DockerObject) -> list[str]:
    """The tags labkit gave an image (its ``org.labkit.ref``), normalised as the engine lists them."""
    ref = obj.labels.get(LABEL_REF, "")
    if not ref:
        return list(obj.names)
    try:
        parsed = parse_reference(ref)
    except InvalidField:
        return []
    full = f"{parsed.name}:{parsed.tag_or_latest}"
    return [t for t in obj.names if t in (ref, full)]


class DeleteEverything(_DockerStep):
    """The course's 2.4.6 as written: stop and delete EVERY container and image on this host.

    Shown as text with a warning; runs (through the SDK, never a shell) only when ``confirm`` is
    exactly :data:`~labkit.logic.docker_names.NUKE_PHRASE`.
    """

    check_id = "ch2.docker.nuke"
    timeout = 600.0

    def __init__(self, confirm: str = "") -> None:
        self.confirm = confirm

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "警告：删除本机上所有容器和镜像（不只是 labkit 的），包括正在运行的、别人的",
                "WARNING: deletes every container and image on this host (not only labkit's), running "
                "ones and other people's included",
            ),
            commands=[],
            notes=[
                tr(
                    "课程 2.4.6 的命令（仅作文字展示，labkit 不会执行 shell）：",
                    "the course's 2.4.6 commands (text only, labkit never runs a shell):",
                ),
                *NUKE_COMMANDS,
                tr(
                    "只删 labkit 创建的对象请用 CleanupLabkit；确实要全部删除，在 confirm 中准确输入：{p}",
                    "to remove only what labkit created use CleanupLabkit; to really delete everything "
                    "type exactly this into confirm: {p}",
                    p=NUKE_PHRASE,
                ),
            ],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if self.confirm != NUKE_PHRASE:
            raise ConsentRequired(
                tr("删除本机上所有容器和镜像", "delete every container and image on this host"),
                tr(
                    "在 confirm 中准确输入 {p!r}（区分大小写）",
                    "type exactly {p!r} (case-sensitive) into confirm",
                    p=NUKE_PHRASE,
                ),
            )
        removed_containers: list[str] = []
        removed_images: list[str] = []
        failed: list[str] = []
        with ctx.engine(tr("删除所有容器和镜像", "delete every container and image")) as client:
            import docker.errors

            for container in client.containers.list(all=True):
                ctx.check_cancelled()
                try:
                    container.remove(force=True)
                    removed_containers.append(f"{container.short_id} {container.name}")
                except docker.errors.APIError as exc:
                    failed.append(f"container {container.short_id}: {exc.explanation or exc}")
            for image in client.images.list():
                ctx.check_cancelled()
                try:
                    client.images.remove(image.id, force=True)
                    removed_images.append(f"{short_id(image.id)} {' '.join(image.tags)}")
                except docker.errors.NotFound:
                    continue
                except docker.errors.APIError as exc:
                    failed.append(f"image {short_id(image.id)}: {exc.explanation or exc}")
        return {"removed_containers": removed_containers, "removed_images": removed_images, "failed": failed}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        with ctx.engine(tr("检查", "check")) as client:
            left = len(client.containers.list(all=True)) + len(client.images.list())
        ev = {**evidence, "left": left}
        if left:
            return CheckResult.failed(
                self.check_id, tr("还剩 {n} 个对象", "{n} objects remain", n=left), **ev
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "删除了 {c} 个容器和 {i} 个镜像",
                "deleted {c} containers and {i} images",
                c=len(evidence["removed_containers"]),
                i=len(evidence["removed_images"]),
            ),
            **ev,
        )
