"""Base images without any registry (``ch2.docker.base``): busybox in a second, or a Debian minbase.

``busybox`` imports the host's static busybox (apt package ``busybox-static``) as
``labkit/busybox:local`` in well under a second; ``debian`` runs ``debootstrap --variant=minbase
--include=python3`` from the host's own Debian mirror (about 30 s, needs root) as
``labkit/debian:bookworm-local``, for Dockerfile builds that need apt / python. The rootfs is tarred
in Python and imported with ``docker import`` (:func:`labkit.logic.docker.import_rootfs`).
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import InvalidField, LabkitError, NotSupportedHere, ToolMissing
from labkit.i18n import api_note, tr
from labkit.logic import docker as dk
from labkit.logic import guest as g
from labkit.logic.docker_names import LABEL_OBJECT, LOCAL_BASES, short_id, validate_reference
from labkit.logic.sizes import human_size
from labkit.steps.base import Plan, RunContext
from labkit.steps.docker.common import DockerStep, find_image, image_info, sdk_note
from labkit.steps.docker.engine import perform, translate
from labkit.steps.docker.owned import remember_created

__all__ = [
    "BuildLocalBase",
    "base_build_commands",
    "build_local_base",
    "debootstrap_argv",
    "ensure_local_base",
    "find_busybox",
]

#: Where debootstrap's target shows in a plan: the temporary directory is made when it runs.
ROOTFS_PLACEHOLDER = "<temporary dir>/rootfs"
_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: Directories of the busybox rootfs (``root`` is 0700, the rest 0755; ``tmp`` dirs are added 1777).
_BUSYBOX_DIRS = (
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
)
_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "labkit:x:1000:1000:labkit:/home:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
_GROUP = "root:x:0:\nlabkit:x:1000:\nnogroup:x:65534:\n"


def _check_kind(kind: str) -> str:
    if kind not in LOCAL_BASES:
        raise InvalidField(
            "kind",
            kind,
            tr("不是已知的本地基础镜像", "is not a known local base"),
            tr("用 busybox 或 debian", "use busybox or debian"),
        )
    return kind


# ----------------------------------------------------------------------------------------------
# Host tools
# ----------------------------------------------------------------------------------------------
def find_busybox() -> Path:
    """The host's *static* busybox (a dynamic one would need a libc inside the image)."""
    for cand in (shutil.which("busybox"), *dk.BUSYBOX_PATHS):
        if cand and os.path.isfile(cand):
            with open(cand, "rb") as fh:
                head = fh.read(65536)
            try:
                if g.elf_info(head).static:
                    return Path(cand)
            except ValueError:
                continue
    raise ToolMissing("busybox (static)", "busybox-static")


def debootstrap_argv(target: str, mirror: str, suite: str = dk.DEBIAN_SUITE) -> list[str]:
    """The debootstrap command of the ``debian`` local base, with the host's keyring if present."""
    return dk.debootstrap_argv(target, mirror, suite, keyring=_KEYRING if os.path.isfile(_KEYRING) else None)


def _host_debian_mirror(mirror: str | None) -> tuple[str, str]:
    """(mirror URL, why): the host's Debian mirror (reusing the guest chapter's apt parsing)."""
    if mirror:
        return mirror.rstrip("/"), tr("明确给出的镜像站", "mirror given explicitly")
    try:
        from labkit.steps.guest import host_repo

        repo = host_repo()
    except LabkitError:
        return g.DEBIAN_FALLBACK_MIRROR, tr(
            "本机不是 Debian/Ubuntu：改用 deb.debian.org", "host is not Debian/Ubuntu: using deb.debian.org"
        )
    if repo.distro == "debian":
        return repo.mirror, tr("本机自己的 Debian 镜像站", "the host's own Debian mirror")
    return g.DEBIAN_FALLBACK_MIRROR, tr(
        "本机是 Ubuntu：Debian 软件包从 deb.debian.org 下载",
        "host is Ubuntu: Debian packages come from deb.debian.org",
    )


# ----------------------------------------------------------------------------------------------
# Root file systems as tar files
# ----------------------------------------------------------------------------------------------
def _tar_dir(root: Path, out: Path) -> int:
    """Tar ``root``'s contents (like ``tar -C root -c .``) into ``out``; returns the member count.

    Ownership is kept numerically; sockets (which tar cannot store) are skipped.
    """
    count = 0
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                info = tar.gettarinfo(full, arcname=os.path.normpath(os.path.join(rel_dir, name)))
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


def _add(
    tar: tarfile.TarFile, name: str, kind: bytes, *, mode: int, data: bytes = b"", link: str = ""
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _busybox_tar(busybox: Path, applets: list[str], out: Path) -> int:
    """A minimal rootfs: /bin/busybox, one symlink per applet, /etc/passwd, /tmp; returns members."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in _BUSYBOX_DIRS:
            _add(tar, d, tarfile.DIRTYPE, mode=0o700 if d == "root" else 0o755)
        _add(tar, "tmp", tarfile.DIRTYPE, mode=0o1777)
        _add(tar, "var/tmp", tarfile.DIRTYPE, mode=0o1777)
        info = tar.gettarinfo(str(busybox), arcname="bin/busybox")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755
        info.mtime = 0
        with open(busybox, "rb") as fh:
            tar.addfile(info, fh)
        links = sorted({a.strip().lstrip("/") for a in applets} - {"", "bin/busybox"})
        for path in (p for p in links if "/" in p):
            _add(tar, path, tarfile.SYMTYPE, mode=0o777, link="/bin/busybox")
        _add(tar, "etc/passwd", tarfile.REGTYPE, mode=0o644, data=_PASSWD.encode())
        _add(tar, "etc/group", tarfile.REGTYPE, mode=0o644, data=_GROUP.encode())
        return len(tar.getmembers())


def _busybox_rootfs(ctx: RunContext, tar_path: Path) -> dict[str, Any]:
    busybox = find_busybox()
    listing = ctx.run(dk.busybox_list_argv(str(busybox)), timeout=30, on_line=None)
    applets = listing.stdout.split()
    return {
        "busybox": str(busybox),
        "applets": len(applets),
        "tar_members": _busybox_tar(busybox, applets, tar_path),
    }


def _debian_rootfs(ctx: RunContext, tar_path: Path, mirror: str | None) -> dict[str, Any]:
    if os.geteuid() != 0:
        raise NotSupportedHere(
            tr("debootstrap 需要 root 权限", "debootstrap needs root"),
            tr("用 sudo 运行，或改用 kind='busybox'", "run as root (sudo), or use kind='busybox'"),
        )
    if shutil.which("debootstrap") is None:
        raise ToolMissing("debootstrap", "debootstrap")
    url, why = _host_debian_mirror(mirror)
    rootfs = tar_path.parent / "rootfs"
    files.ensure_free_space(
        str(tar_path.parent),
        600 * 2**20,
        what=tr("用 debootstrap 制作 Debian 根文件系统", "debootstrap a Debian rootfs"),
    )
    ctx.say(tr("Debian 镜像源：{u}（{w}）", "Debian mirror: {u} ({w})", u=url, w=why))
    ctx.run(debootstrap_argv(str(rootfs), url), timeout=900)
    for rel in dk.DEBIAN_TRIM:
        target = rootfs / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
    ctx.check_cancelled()
    return {"mirror": url, "mirror_note": why, "tar_members": _tar_dir(rootfs, tar_path)}


# ----------------------------------------------------------------------------------------------
# Building, and building when missing
# ----------------------------------------------------------------------------------------------
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
    ref = ref or LOCAL_BASES[_check_kind(kind)]
    call = dk.import_rootfs(ref, step=step, kind=kind)
    with tempfile.TemporaryDirectory(prefix="labkit-base-", dir=workdir) as tmp:
        tar_path = Path(tmp) / "rootfs.tar"
        ev: dict[str, Any] = {"kind": kind, "ref": ref}
        if kind == "busybox":
            ev.update(_busybox_rootfs(ctx, tar_path))
        else:
            ev.update(_debian_rootfs(ctx, tar_path, mirror))
        ev["tar_bytes"] = tar_path.stat().st_size
        ctx.check_cancelled()
        with open(tar_path, "rb") as fh:
            answer = perform(ctx, client, call, src=fh)
        try:
            image_id = dk.import_id(answer)
        except ValueError as exc:
            raise translate(exc, call.action, argv=call.cli) from exc
    remember_created(image_id, call.labels)
    ev.update(image_id=image_id, labels=dict(call.labels))
    return ev


def base_build_commands(kind: str, ref: str, *, step: str) -> tuple[list[list[str]], list[str]]:
    """(commands, notes) of building base ``kind`` as ``ref``: the same builders ``run`` uses.

    busybox: exactly the argv that run (finding the static busybox reads 64 KiB of its ELF header:
    cheap enough for a plan). debian: debootstrap goes into a temporary directory made while
    running, so it is shown as a template in the notes and only the import is a command.
    """
    imported = dk.import_rootfs(ref, step=step, kind=kind).cli
    if kind == "busybox":
        try:
            busybox = str(find_busybox())
            missing = []
        except ToolMissing as exc:
            busybox, missing = "busybox", [str(exc)]
        note = tr(
            "在临时目录里组装根文件系统：/bin/busybox（busybox-static 包）+ 每个 applet 一个符号链接"
            " + /etc/passwd，在 Python 中打成 tar，作为 docker import 的标准输入（-）",
            "assemble a rootfs in a temp dir: /bin/busybox (package busybox-static) + a symlink per "
            "applet + /etc/passwd, tarred in Python and fed to docker import as its stdin (-)",
        )
        return [dk.busybox_list_argv(busybox), imported], [*missing, note]
    template = debootstrap_argv(ROOTFS_PLACEHOLDER, "<host Debian mirror>")
    note = tr(
        "先以 root 运行（目标是运行时创建的临时目录）：{c}；需要约 600 MB 临时空间，约 30-60 秒；"
        "删掉文档、语言包和 apt 列表后导入",
        "first runs, as root (the target is a temporary directory made while running): {c}; needs "
        "~600 MB temporary space, ~30-60 s; docs, locales and apt lists are removed before the import",
        c=shlex.join(template),
    )
    return [imported], [note]


def ensure_local_base(client: Any, ctx: RunContext, ref: str, *, step: str) -> dict[str, Any] | None:
    """Build the busybox base if ``ref`` is that base and missing (None when nothing was built).

    Plans of steps calling this show what it may run with :func:`missing_base_note`."""
    if find_image(client, ref) is not None:
        return None
    if ref == LOCAL_BASES["busybox"]:
        ctx.say(tr("本地还没有 {r}，先构建它", "{r} is not here yet: building it first", r=ref))
        return build_local_base(client, ctx, "busybox", step=step)
    raise InvalidField(
        "image",
        ref,
        tr("在这个 Docker 引擎上不存在", "does not exist on this Docker engine"),
        tr(
            "先构建或导入它（「本地基础镜像（无需镜像仓库）」或「导入镜像（docker load）」）",
            "build or load it first (“Local base image (no registry needed)” or “Load an image (docker "
            "load)”)",
        )
        + api_note("BuildLocalBase, LoadImage"),
    )


def missing_base_note(ref: str, *, step: str) -> str:
    """The plan note of :func:`ensure_local_base`: what runs first when ``ref`` is missing."""
    if ref != LOCAL_BASES["busybox"]:
        return tr("{r} 必须已经存在", "{r} must exist already", r=ref)
    commands, _ = base_build_commands("busybox", ref, step=step)
    return tr(
        "若 {r} 不存在，先构建它：{c}",
        "if {r} is missing, it is built first: {c}",
        r=ref,
        c="; ".join(shlex.join(c) for c in commands),
    )


class BuildLocalBase(DockerStep):
    """A base image without any registry: ``busybox`` (fast) or ``debian`` (python3, needs root).

    Already there (and ``rebuild`` not asked): :meth:`satisfied` reports it and nothing runs.
    """

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
        return validate_reference(self.ref or LOCAL_BASES[_check_kind(self.kind)], "ref")

    def plan(self) -> Plan:
        ref = self._ref()
        commands, notes = base_build_commands(self.kind, ref, step=self.check_id)
        reuse = tr(
            "{r} 已存在时直接复用（rebuild=True 才重建）",
            "when {r} exists it is reused (rebuild=True builds it again)",
            r=ref,
        )
        return Plan(
            step=self.check_id,
            reason=tr(
                "不用镜像仓库，在本机构建基础镜像 {r}",
                "build base image {r} locally, no registry needed",
                r=ref,
            ),
            commands=commands,
            notes=[*notes, reuse, sdk_note()],
            probes=[dk.inspect_image_argv(ref)],
        )

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        if self.rebuild:
            return None
        ref = self._ref()
        with ctx.engine(tr("检查镜像", "inspect the image"), argv=dk.inspect_image_argv(ref)) as client:
            existing = find_image(client, ref)
        if existing is None:
            return None
        return {
            "kind": self.kind,
            "ref": ref,
            "image_id": existing.id,
            "reused": True,
            "verified_by": tr(
                "docker image inspect：{r} 是 {i}",
                "docker image inspect: {r} is {i}",
                r=ref,
                i=short_id(existing.id),
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        ref = self._ref()
        with ctx.engine(tr("构建本地基础镜像", "build a local base image")) as client:
            ev = build_local_base(client, ctx, self.kind, ref=ref, mirror=self.mirror, step=self.check_id)
        return {**ev, "reused": False}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        ref = evidence["ref"]
        with ctx.engine(tr("检查镜像", "inspect the image"), argv=dk.inspect_image_argv(ref)) as client:
            image = client.images.get(ref)
            info = image_info(image)
        ev = {
            "image_id": info["image_id"],
            "tags": info["tags"],
            "size": info["size"],
            "size_human": human_size(info["size"]),
            "layers": info["layers"],
            "architecture": image.attrs.get("Architecture"),
            "labels": info["labels"],
            "reused": evidence.get("reused", False),
        }
        if info["image_id"] != evidence["image_id"] or LABEL_OBJECT not in info["labels"]:
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
                i=short_id(info["image_id"]),
                s=ev["size_human"],
            ),
            **ev,
        )
