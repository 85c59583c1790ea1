"""Chapter 1: fetch, build and boot a real aarch64 Linux guest headless under TCG.

:class:`PrepareTinyGuest` downloads the distribution's arm64 kernel and static BusyBox with apt
(into a private apt state: the host's apt configuration is never changed), extracts the two files
it needs and writes an initramfs; :class:`BootGuest` (:mod:`labkit.steps.guest_boot`, re-exported
here) boots them. Plan and run share :func:`labkit.logic.guest.prepare_commands`; the cached files
are judged by :mod:`labkit.steps.guest_assets`. The pure parts (sources parsing, cpio writer, argv,
console parser) are in :mod:`labkit.logic.guest`.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import ConsentRequired, InvalidField
from labkit.i18n import api_note, consent_hint, tr
from labkit.logic import guest as g
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.guest_assets import (
    ASSET_NAMES,
    MANIFEST,
    default_cache_dir,
    init_sha256,
    initrd_facts,
    inspect_assets,
    sha256_file,
    write_cache,
)
from labkit.steps.guest_boot import BootGuest
from labkit.steps.host import read_os_release, read_text

__all__ = [
    "ASSET_NAMES",
    "BootGuest",
    "PrepareTinyGuest",
    "default_cache_dir",
    "host_repo",
    "inspect_assets",
]

#: Bytes of free space the download and extraction need (debs ~22 MB, assets ~30 MB, apt lists).
_SPACE_NEEDED = 150 * 2**20
_MANIFEST_FORMAT = 1


def host_repo(mirror: str | None = None) -> g.GuestRepo:
    """The arm64 archive for this host, from ``/etc/os-release`` and the apt sources.

    ``mirror`` (or ``$LABKIT_GUEST_MIRROR``) overrides the mirror URL.
    """
    osr = read_os_release()
    sources = g.parse_one_line_sources(read_text("/etc/apt/sources.list"))
    parts = Path("/etc/apt/sources.list.d")
    if parts.is_dir():
        for p in sorted(parts.iterdir()):
            if p.suffix == ".list":
                sources += g.parse_one_line_sources(read_text(str(p)))
            elif p.suffix == ".sources":
                sources += g.parse_deb822_sources(read_text(str(p)))
    return g.choose_repo(sources, osr, mirror=mirror or os.environ.get("LABKIT_GUEST_MIRROR") or None)


def _is_wanted(name: str) -> str | None:
    """Which asset a .deb path is: ``kernel`` (boot/vmlinuz-*), ``busybox`` ((usr/)bin/busybox), or None."""
    n = name[2:] if name.startswith("./") else name.lstrip("/")
    if n.startswith("boot/vmlinuz-"):
        return "kernel"
    if n in ("bin/busybox", "usr/bin/busybox"):
        return "busybox"
    return None


class PrepareTinyGuest(Step):
    """Fetch the arm64 kernel + static BusyBox with apt and build the initramfs (once; cached)."""

    check_id = "ch1.guest.prepare"
    timeout = 900.0

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        mirror: str | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.overwrite = overwrite
        self.mirror = mirror
        self._tmp: Path | None = None

    # -- helpers ---------------------------------------------------------------------------
    def _state_dir(self) -> Path:
        return self.cache_dir / ".apt-arm64"

    def _manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.cache_dir / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _cached(self) -> bool:
        """An earlier run recorded a kernel and a busybox that are still there: nothing to download.

        Cheap on purpose (the plan asks it): the manifest and two ``exists``. ``run`` then verifies
        the files; the initrd is rebuilt locally whenever it is missing, damaged or stale.
        """
        if self.overwrite:
            return False
        manifest = self._manifest() or {}
        files = (self.cache_dir / ASSET_NAMES[k] for k in ("kernel", "busybox"))
        return bool(manifest.get("kernel_package")) and all(f.is_file() for f in files)

    def _repo(self) -> g.GuestRepo:
        try:
            return host_repo(self.mirror)
        except InvalidField as exc:  # not Debian/Ubuntu: still show what would run there
            return g.GuestRepo(
                "debian", g.DEBIAN_FALLBACK_MIRROR, "bookworm", "linux-image-cloud-arm64", note=str(exc)
            )

    # -- hooks -----------------------------------------------------------------------------
    def plan(self) -> Plan:
        repo = self._repo()
        reason = tr(
            "下载 arm64 内核和静态 BusyBox，制作最小的 aarch64 客户机",
            "download the arm64 kernel and a static BusyBox and build the tiny aarch64 guest",
        )
        commands, notes, files = self._download_plan(repo)
        if not self._cached():
            return Plan(self.check_id, reason, commands, files, notes)
        cached = tr(
            "{d} 中已有本工具下载的内核和 BusyBox：不下载，只在需要时重建 initrd.gz；"
            "只有缓存的文件校验失败时才重新下载（下面“或者”的命令）。",
            "{d} holds the kernel and BusyBox labkit fetched: nothing is downloaded, initrd.gz is "
            "rebuilt only when needed; only if the cached files fail their checksums are they "
            "downloaded again (the commands under 'or instead').",
            d=self.cache_dir,
        )
        return Plan(
            self.check_id,
            reason,
            [],
            {"initrd.gz:/init": g.init_script()},
            [cached, *notes],
            alternatives=commands,
        )

    def _download_plan(self, repo: g.GuestRepo) -> tuple[list[list[str]], list[str], dict[str, str]]:
        """The download's commands (templates where apt names the package at run time), notes, files."""
        state = self._state_dir()
        commands = g.prepare_commands(str(state), repo)
        notes = [
            tr("镜像来源：{n}", "mirror: {n}", n=repo.note),
            tr(
                "{k} 是 apt-cache depends 在运行时给出的带版本的内核包（命令模板）。",
                "{k} is the versioned kernel package apt-cache depends names at run time (a command "
                "template).",
                k=g.KERNEL_PACKAGE_SLOT,
            ),
            tr(
                "私有 apt 状态目录 {s}：不执行 dpkg --add-architecture，不改动系统的 apt 配置。",
                "private apt state in {s}: no dpkg --add-architecture, the system's apt setup is untouched.",
                s=state,
            ),
            tr(
                "-o APT::Sandbox::User=root：以 root 运行时 apt 默认用 _apt 用户下载，"
                "而 _apt 进不了缓存目录，apt 会改用 root 并警告 "
                "“W: Download is performed unsandboxed as root”；"
                "这里直接说明用 root 下载（普通用户运行时此选项不起作用）。",
                "-o APT::Sandbox::User=root: run as root, apt downloads as the _apt user, which cannot "
                "enter the cache directory, so apt falls back to root and warns 'W: Download is performed "
                "unsandboxed as root'; this says so up front (for other users the option has no effect).",
            ),
            tr(
                "从 .deb（ar 归档 + data.tar）中用 Python 只取出 boot/vmlinuz-* 和 bin/busybox。",
                "Python takes only boot/vmlinuz-* and bin/busybox out of the .deb files (an ar archive "
                "holding data.tar).",
            ),
            tr(
                "initrd.gz = gzip 压缩的 cpio newc 归档：/init 脚本、/bin/busybox、/dev/console。",
                "initrd.gz = a gzip'd cpio newc archive: the /init script, /bin/busybox, /dev/console.",
            ),
        ]
        if repo.distro == "ubuntu":
            debs = state / "debs"
            commands.append(g.extract_argv(str(debs / g.DEB_SLOT), str(debs / f"{g.DEB_SLOT}.x")))
            notes.append(
                tr(
                    "Ubuntu 的 .deb 用 zstd 压缩，Python 读不了："
                    "每个下载的 .deb 用 dpkg-deb -x 解开（命令模板）。",
                    "Ubuntu packs .deb data with zstd, which Python cannot read: dpkg-deb -x unpacks each "
                    "downloaded .deb (a command template).",
                )
            )
        files = {str(state / "sources.list"): g.sources_line(repo), "initrd.gz:/init": g.init_script()}
        return commands, notes, files

    def unavailable(self, ctx: RunContext) -> str | None:
        if self._cached():
            return None
        try:
            host_repo(self.mirror)
        except InvalidField as exc:
            return str(exc)
        missing = [t for t in ("apt-get", "apt-cache") if shutil.which(t) is None]
        if missing:
            return tr(
                "需要 apt（Debian/Ubuntu）来下载 arm64 内核：缺少 {m}",
                "fetching the arm64 kernel needs apt (Debian/Ubuntu): {m} missing",
                m=", ".join(missing),
            )
        return None

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        """The cached kernel, busybox and an initrd of the current /init are all valid."""
        if not self._cached():
            return None
        facts = inspect_assets(self.cache_dir)
        current = (facts["manifest"] or {}).get("init_sha256") == init_sha256()
        if not (facts["ok"] and current):
            return None
        return {
            "cache_dir": str(self.cache_dir),
            "downloaded": False,
            "verified_by": tr(
                "读回缓存：ARM64 内核、静态 aarch64 BusyBox、含当前 /init 的 initrd.gz",
                "cache read back: ARM64 kernel, static aarch64 BusyBox, initrd.gz with the current /init",
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if self._cached():
            facts = inspect_assets(self.cache_dir)
            if facts.get("kernel_ok") and facts.get("busybox_ok"):
                ctx.say(tr("使用缓存：{d}", "using cached assets in {d}", d=self.cache_dir))
                self._ensure_initrd(ctx)
                return {"cache_dir": str(self.cache_dir), "downloaded": False}
            # labkit's own cache (its manifest says so) is damaged: fetch again, as the plan says
            ctx.say(
                tr(
                    "缓存的客户机文件已损坏，重新下载",
                    "the cached guest files are damaged: downloading again",
                )
            )
        present = [n for n in ASSET_NAMES.values() if (self.cache_dir / n).is_file()]
        if present and self._manifest() is None:  # files labkit did not record: not ours to drop
            if not self.overwrite:
                raise ConsentRequired(
                    tr(
                        "替换 {d} 中的 {f}（不是 labkit 记录下载的）",
                        "replace {f} in {d} (not recorded by labkit)",
                        f=", ".join(present),
                        d=self.cache_dir,
                    ),
                    tr(
                        "如果同意，请{c}，再运行一次",
                        "to go ahead, {c} and run again",
                        c=consent_hint("overwrite"),
                    )
                    + api_note("labkit guest prepare --overwrite"),
                    keyword="overwrite",
                )
            for name in present:
                ctx.say(tr("已备份 {b}", "backed up {b}", b=files.backup_file(self.cache_dir / name)))
        repo = host_repo(self.mirror)
        files.ensure_free_space(self.cache_dir, _SPACE_NEEDED, what=tr("下载客户机", "download the guest"))
        fetched = self._download(ctx, repo)
        self._ensure_initrd(ctx, force=True)
        manifest = {
            "format": _MANIFEST_FORMAT,
            "distro": repo.distro,
            "mirror": repo.mirror,
            "suite": repo.suite,
            **fetched,
            "init_sha256": init_sha256(),
            "files": {n: sha256_file(self.cache_dir / n) for n in ASSET_NAMES.values()},
            "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_cache(self.cache_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        ctx.progress(1.0)
        return {"cache_dir": str(self.cache_dir), "downloaded": True}

    def _download(self, ctx: RunContext, repo: g.GuestRepo) -> dict[str, Any]:
        state = self._state_dir()
        shutil.rmtree(state, ignore_errors=True)  # labkit's own scratch: stale lists are useless
        for sub in ("lists/partial", "cache/archives/partial", "debs"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        self._tmp = state
        (state / "sources.list").write_text(g.sources_line(repo), encoding="utf-8")
        ctx.say(tr("arm64 软件源：{s}", "arm64 source: {s}", s=g.sources_line(repo).strip()))
        update, depends, _ = g.prepare_commands(str(state), repo)
        ctx.run(update, timeout=300)
        ctx.progress(0.2)
        deps = ctx.run(depends, timeout=120)
        try:
            kernel_pkg = g.parse_apt_depends(deps.stdout)
        except ValueError as exc:
            raise InvalidField(
                "kernel_meta",
                repo.kernel_meta,
                tr(
                    "在 {m} {s} 中没有内核依赖",
                    "has no kernel dependency in {m} {s}",
                    m=repo.mirror,
                    s=repo.suite,
                ),
                tr(
                    "检查镜像站（LABKIT_GUEST_MIRROR）是否提供 arm64",
                    "check the mirror (LABKIT_GUEST_MIRROR) serves arm64",
                ),
            ) from exc
        download = g.prepare_commands(str(state), repo, kernel_pkg)[2]
        ctx.run(download, timeout=600, cwd=state / "debs")
        ctx.progress(0.6)
        out: dict[str, Any] = {"kernel_package": kernel_pkg, "packages": {}}
        found: dict[str, bytes] = {}
        for deb in sorted((state / "debs").glob("*.deb")):
            pkg, version, arch = g.parse_deb_filename(deb.name)
            out["packages"][pkg] = {"version": version, "arch": arch, "deb": deb.name}
            ctx.check_cancelled()
            found.update(self._extract(ctx, deb))
        for what in ("kernel", "busybox"):
            if what not in found:
                raise InvalidField(
                    "packages",
                    sorted(out["packages"]),
                    tr("里没有 {w}", "contain no {w}", w=what),
                    tr(
                        "软件源的包结构变了；请告诉课程老师",
                        "the archive layout changed; report this to the course staff",
                    ),
                )
            write_cache(self.cache_dir / ASSET_NAMES[what], found[what])
        os.chmod(self.cache_dir / ASSET_NAMES["busybox"], 0o755)
        out["kernel_version"] = out["packages"].get(kernel_pkg, {}).get("version", "")
        out["busybox_version"] = out["packages"].get(repo.busybox, {}).get("version", "")
        ctx.progress(0.9)
        return out

    def _extract(self, ctx: RunContext, deb: Path) -> dict[str, bytes]:
        """Take the kernel / busybox out of ``deb``: in Python for xz/gz/bz2, via dpkg-deb for zstd."""
        data = deb.read_bytes()
        members = {m.name: m for m in g.parse_ar(data)}
        name = next((n for n in members if n.startswith("data.tar")), None)
        if name is None:
            raise InvalidField(
                "deb",
                deb.name,
                tr("没有 data.tar 成员", "has no data.tar member"),
                tr("下载的文件已损坏", "the download is damaged"),
            )
        found: dict[str, bytes] = {}
        if name in ("data.tar", "data.tar.xz", "data.tar.gz", "data.tar.bz2"):
            m = members[name]
            blob = io.BytesIO(data[m.offset : m.offset + m.size])
            with tarfile.open(fileobj=blob, mode="r|*") as tf:
                for info in tf:
                    what = _is_wanted(info.name)
                    if what and info.isfile():
                        fh = tf.extractfile(info)
                        assert fh is not None
                        found[what] = fh.read()
            return found
        # data.tar.zst (Ubuntu since 21.10): Python's tarfile cannot read zstd, dpkg-deb can.
        out = deb.parent / (deb.name + ".x")
        ctx.run(g.extract_argv(str(deb), str(out)), timeout=300)
        for p in out.rglob("*"):
            what = _is_wanted(str(p.relative_to(out)))
            if what and p.is_file() and not p.is_symlink():
                found[what] = p.read_bytes()
        shutil.rmtree(out, ignore_errors=True)
        return found

    def _ensure_initrd(self, ctx: RunContext, *, force: bool = False) -> None:
        """(Re)build initrd.gz when forced, missing, invalid, or built from another init script."""
        init = g.init_script()
        init_sha = init_sha256()
        manifest = self._manifest() or {}
        initrd = self.cache_dir / ASSET_NAMES["initrd"]
        current = initrd.is_file() and initrd_facts(initrd)["initrd_ok"]
        if not force and current and manifest.get("init_sha256") == init_sha:
            return
        busybox = (self.cache_dir / ASSET_NAMES["busybox"]).read_bytes()
        archive = g.newc_archive(g.initramfs_entries(busybox, init))
        write_cache(initrd, gzip.compress(archive, mtime=0))
        ctx.say(
            tr("已写入 initrd.gz（{n} 字节 cpio）", "wrote initrd.gz ({n} bytes of cpio)", n=len(archive))
        )
        if manifest and not force:
            manifest["init_sha256"] = init_sha
            manifest.setdefault("files", {})[ASSET_NAMES["initrd"]] = sha256_file(initrd)
            write_cache(self.cache_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        facts = inspect_assets(self.cache_dir)
        manifest = facts.pop("manifest") or {}
        ev = {
            **evidence,
            **facts,
            "kernel_package": manifest.get("kernel_package"),
            "kernel_version": manifest.get("kernel_version"),
            "busybox_version": manifest.get("busybox_version"),
            "mirror": manifest.get("mirror"),
            "sha256": manifest.get("files"),
        }
        if facts["ok"]:
            return CheckResult.passed(
                self.check_id,
                tr(
                    "客户机文件就绪：{k}（ARM64 Image）、静态 aarch64 BusyBox、initrd.gz",
                    "guest assets ready: {k} (ARM64 Image), static aarch64 BusyBox, initrd.gz",
                    k=manifest.get("kernel_package") or "kernel",
                ),
                **ev,
            )
        bad = [k for k in ("kernel_ok", "busybox_ok", "initrd_ok") if not facts.get(k)]
        return CheckResult.failed(
            self.check_id, tr("客户机文件无效：{b}", "guest assets invalid: {b}", b=", ".join(bad)), **ev
        )

    def cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
