"""Chapter 1: fetch, build and boot a real aarch64 Linux guest headless under TCG.

:class:`PrepareTinyGuest` downloads the distribution's arm64 kernel and static BusyBox with apt
(into a private apt state: the host's apt configuration is never changed), extracts the two files
it needs and writes an initramfs; :class:`BootGuest` boots them with ``qemu-system-aarch64``,
streaming every serial-console line to the notebook as it arrives, and checks that the guest
reached userspace and reported ``uname -m`` = ``aarch64``. The pure parts (sources parsing, cpio
writer, argv, console parser) are in :mod:`labkit.logic.guest`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shlex
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import Cancelled, ConsentRequired, InvalidField, LabkitError
from labkit.i18n import tr
from labkit.logic import guest as g
from labkit.logic.firmware import pflash_size_error
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.host import read_os_release, read_text
from labkit.steps.runner import Process

__all__ = [
    "ASSET_NAMES",
    "BootGuest",
    "PrepareTinyGuest",
    "default_cache_dir",
    "host_repo",
    "inspect_assets",
]

#: Files PrepareTinyGuest leaves in the cache directory.
ASSET_NAMES = {"kernel": "vmlinuz", "busybox": "busybox", "initrd": "initrd.gz"}
MANIFEST = "manifest.json"
_MANIFEST_FORMAT = 1
#: Bytes of free space the download and extraction need (debs ~22 MB, assets ~30 MB, apt lists).
_SPACE_NEEDED = 150 * 2**20


def default_cache_dir() -> Path:
    """``$LABKIT_CACHE/guest``, else ``$XDG_CACHE_HOME/labkit/guest``, else ``~/.cache/labkit/guest``.

    ``LABKIT_CACHE`` names labkit's cache root (shared by all chapters); the guest lives in its
    ``guest`` subdirectory so a second run, or a second notebook, reuses the download.
    """
    root = os.environ.get("LABKIT_CACHE")
    if root:
        return Path(root).expanduser() / "guest"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "labkit" / "guest"


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


def _write_cache(path: Path, data: bytes | str) -> None:
    """Atomically replace a file of labkit's own cache (derived data: no backup is kept)."""
    with files.atomic_target(path, overwrite=True, backup=False) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


def _init_sha256() -> str:
    """Fingerprint of the current /init script (a changed script means a stale initrd)."""
    return hashlib.sha256(g.init_script().encode()).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _kernel_facts(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        head = f.read(4096)
    fmt = g.kernel_format(head)
    facts: dict[str, Any] = {"kernel_format": fmt, "kernel_bytes": path.stat().st_size}
    if fmt == "gzip":
        with gzip.open(path, "rb") as z:
            inner = z.read(4096)
        facts["kernel_inner_format"] = g.kernel_format(inner)
        facts["kernel_ok"] = facts["kernel_inner_format"] == "image"
    else:
        facts["kernel_ok"] = fmt == "image"
    return facts


def _busybox_facts(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        head = f.read(16384)
    try:
        info = g.elf_info(head)
    except ValueError as exc:
        return {"busybox_ok": False, "busybox_problem": str(exc)}
    return {
        "busybox_machine": info.machine,
        "busybox_static": info.static,
        "busybox_ok": info.is_aarch64 and info.static,
    }


def _initrd_facts(path: Path) -> dict[str, Any]:
    try:
        with gzip.open(path, "rb") as z:
            data = z.read()
        members = g.parse_newc(data)
    except (OSError, EOFError, ValueError) as exc:
        return {"initrd_ok": False, "initrd_problem": str(exc)}
    names = {m.name: m for m in members}
    need = ("init", "bin/busybox", "dev/console")
    return {
        "initrd_members": sorted(names),
        "initrd_ok": all(n in names for n in need) and names["init"].mode & 0o111 != 0,
    }


def inspect_assets(cache_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Validate the prepared assets in ``cache_dir``; returns facts incl. ``ok`` (all usable).

    Checks the contents, not just presence: the kernel is an ARM64 Image (``ARM\\x64`` at 0x38,
    also inside gzip), busybox is a static aarch64 ELF (``e_machine`` 183, no interpreter), the
    initrd is gzip + newc with ``/init``, ``/bin/busybox`` and ``/dev/console``.
    """
    d = Path(cache_dir)
    facts: dict[str, Any] = {"cache_dir": str(d)}
    present = {k: (d / n).is_file() for k, n in ASSET_NAMES.items()}
    facts["present"] = present
    if present["kernel"]:
        facts.update(_kernel_facts(d / ASSET_NAMES["kernel"]))
    if present["busybox"]:
        facts.update(_busybox_facts(d / ASSET_NAMES["busybox"]))
    if present["initrd"]:
        facts.update(_initrd_facts(d / ASSET_NAMES["initrd"]))
    try:
        facts["manifest"] = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        facts["manifest"] = None
    facts["ok"] = bool(
        all(present.values())
        and facts.get("kernel_ok")
        and facts.get("busybox_ok")
        and facts.get("initrd_ok")
    )
    return facts


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
        state = self._state_dir()
        reason = tr(
            "下载 arm64 内核和静态 BusyBox，制作最小的 aarch64 客户机",
            "download the arm64 kernel and a static BusyBox and build the tiny aarch64 guest",
        )
        if self._cached():
            notes = [
                tr(
                    "{d} 中已有本工具下载的内核和 BusyBox：不下载，只在需要时重建 initrd.gz。",
                    "{d} holds the kernel and BusyBox labkit fetched: nothing is downloaded, initrd.gz is "
                    "rebuilt only when needed.",
                    d=self.cache_dir,
                )
            ]
            return Plan(self.check_id, reason, [], {"initrd.gz:/init": g.init_script()}, notes)
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
        return Plan(self.check_id, reason, commands, files, notes)

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
        current = (facts["manifest"] or {}).get("init_sha256") == _init_sha256()
        if not (facts["ok"] and current):
            return None
        return {"cache_dir": str(self.cache_dir), "downloaded": False}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if self._cached():
            facts = inspect_assets(self.cache_dir)
            if not (facts.get("kernel_ok") and facts.get("busybox_ok")):
                raise InvalidField(
                    "cache_dir",
                    str(self.cache_dir),
                    tr("中的客户机文件已损坏", "holds damaged guest files"),
                    tr(
                        "传 overwrite=True 重新下载（labkit guest prepare --overwrite）",
                        "pass overwrite=True to download again (labkit guest prepare --overwrite)",
                    ),
                )
            ctx.say(tr("使用缓存：{d}", "using cached assets in {d}", d=self.cache_dir))
            self._ensure_initrd(ctx)
            return {"cache_dir": str(self.cache_dir), "downloaded": False}
        present = [n for n in ASSET_NAMES.values() if (self.cache_dir / n).is_file()]
        if present and self._manifest() is None:  # files labkit did not record: not ours to drop
            if not self.overwrite:
                raise ConsentRequired(
                    f"replace {', '.join(present)} in {self.cache_dir} (not recorded by labkit)",
                    "pass overwrite=True (labkit guest prepare --overwrite) or choose another cache_dir",
                )
            for name in present:
                ctx.say(tr("已备份 {b}", "backed up {b}", b=files.backup_file(self.cache_dir / name)))
        repo = host_repo(self.mirror)
        files.ensure_free_space(self.cache_dir, _SPACE_NEEDED, what="download the guest")
        fetched = self._download(ctx, repo)
        self._ensure_initrd(ctx, force=True)
        manifest = {
            "format": _MANIFEST_FORMAT,
            "distro": repo.distro,
            "mirror": repo.mirror,
            "suite": repo.suite,
            **fetched,
            "init_sha256": _init_sha256(),
            "files": {n: _sha256(self.cache_dir / n) for n in ASSET_NAMES.values()},
            "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write_cache(self.cache_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")
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
                f"has no kernel dependency in {repo.mirror} {repo.suite}",
                "check the mirror (LABKIT_GUEST_MIRROR) serves arm64",
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
                    f"contain no {what}",
                    "the archive layout changed; report this to the course staff",
                )
            _write_cache(self.cache_dir / ASSET_NAMES[what], found[what])
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
            raise InvalidField("deb", deb.name, "has no data.tar member", "the download is damaged")
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
        init_sha = _init_sha256()
        manifest = self._manifest() or {}
        initrd = self.cache_dir / ASSET_NAMES["initrd"]
        current = initrd.is_file() and _initrd_facts(initrd)["initrd_ok"]
        if not force and current and manifest.get("init_sha256") == init_sha:
            return
        busybox = (self.cache_dir / ASSET_NAMES["busybox"]).read_bytes()
        archive = g.newc_archive(g.initramfs_entries(busybox, init))
        _write_cache(initrd, gzip.compress(archive, mtime=0))
        ctx.say(
            tr("已写入 initrd.gz（{n} 字节 cpio）", "wrote initrd.gz ({n} bytes of cpio)", n=len(archive))
        )
        if manifest and not force:
            manifest["init_sha256"] = init_sha
            manifest.setdefault("files", {})[ASSET_NAMES["initrd"]] = _sha256(initrd)
            _write_cache(self.cache_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")

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


class BootGuest(Step):
    """Boot the tiny guest with qemu-system-aarch64 (TCG) and watch its serial console."""

    check_id = "ch1.guest.boot"
    #: Console lines kept in the evidence.
    tail_lines = 30
    #: Seconds to wait for the guest to power itself off after the marker before stopping QEMU.
    poweroff_grace = 15.0

    def __init__(
        self,
        kernel: str | os.PathLike[str] | None = None,
        initrd: str | os.PathLike[str] | None = None,
        cpu: str = "max",
        pauth_impdef: bool = True,
        memory: str = "512M",
        smp: int = 1,
        timeout: float = 60,
        efi: str | os.PathLike[str] | None = None,
        extra_append: str = "",
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.kernel = str(kernel) if kernel else str(cache / ASSET_NAMES["kernel"])
        self.initrd = str(initrd) if initrd else str(cache / ASSET_NAMES["initrd"])
        self.cpu = cpu
        self.pauth_impdef = pauth_impdef
        self.memory = memory
        self.smp = smp
        self.timeout = timeout
        self.efi = str(efi) if efi else None
        self.extra_append = extra_append
        self.console: list[str] = []
        self._proc: Process | None = None

    def spec(self) -> g.BootSpec:
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)) or self.timeout <= 0:
            raise InvalidField("timeout", self.timeout, "is not a positive number of seconds", "e.g. 60")
        return g.BootSpec(
            kernel=self.kernel,
            initrd=self.initrd,
            cpu=self.cpu,
            pauth_impdef=self.pauth_impdef,
            memory=self.memory,
            smp=self.smp,
            efi=self.efi,
            extra_append=self.extra_append,
        )

    def argv(self) -> list[str]:
        """The exact qemu-system-aarch64 command line this step runs."""
        return g.boot_argv(self.spec())

    # -- hooks -----------------------------------------------------------------------------
    def plan(self) -> Plan:
        spec = self.spec()
        notes = [
            tr(
                "-accel tcg：用二进制翻译运行 arm64 代码（KVM 不能运行另一种架构的代码）。",
                "-accel tcg: arm64 code runs by binary translation (KVM cannot run another "
                "architecture's code).",
            ),
            tr(
                "客户机 /init 打印 {m} 和 uname -m 后自行关机，QEMU 随之退出。",
                "the guest's /init prints {m} and uname -m, then powers off; QEMU exits with it.",
                m=g.MARKER,
            ),
        ]
        if spec.cpu == "max" and spec.pauth_impdef:
            notes.append(
                tr(
                    "pauth-impdef=on：用实现定义的指针认证算法代替很慢的 QARMA，启动快约 4 倍。",
                    "pauth-impdef=on: an implementation-defined pointer-authentication algorithm "
                    "instead of the slow-to-emulate QARMA; boots about 4x faster.",
                )
            )
        elif spec.pauth_impdef:
            notes.append(
                tr(
                    "pauth-impdef 只属于 -cpu max，这里不加。",
                    "pauth-impdef exists on -cpu max only; not added.",
                )
            )
        if spec.efi:
            notes.append(
                tr(
                    "efi.img 作为 pflash：先运行 UEFI 固件，再由固件启动 -kernel 指定的内核。",
                    "efi.img as pflash: the UEFI firmware runs first and starts the -kernel kernel.",
                )
            )
        return Plan(
            step=self.check_id,
            reason=tr(
                "在本机上无界面地启动真实的 aarch64 Linux 客户机",
                "boot a real aarch64 Linux guest headless on this host",
            ),
            commands=[g.boot_argv(spec)],
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if shutil.which(g.QEMU_AARCH64) is None:
            return tr(
                "缺少 qemu-system-aarch64；安装："
                "sudo apt-get install -y --no-install-recommends qemu-system-arm",
                "qemu-system-aarch64 is not installed; install it: "
                "sudo apt-get install -y --no-install-recommends qemu-system-arm",
            )
        missing = [p for p in (self.kernel, self.initrd) if not os.path.isfile(p)]
        if missing:
            return tr(
                "客户机文件不存在：{m}；先运行 PrepareTinyGuest（或 `labkit guest prepare`）",
                "guest assets missing: {m}; run PrepareTinyGuest (or `labkit guest prepare`) first",
                m=", ".join(missing),
            )
        if self.efi and not os.path.isfile(self.efi):
            return tr(
                "efi.img 不存在：{e}；先运行 BuildEfiImage（或 labkit guest efi）",
                "{e} does not exist; build it with BuildEfiImage (or `labkit guest efi`) first",
                e=self.efi,
            )
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        argv = self.argv()
        self.console = []
        stderr: list[str] = []
        ctx.commands.append(argv)
        t0 = time.monotonic()
        deadline = t0 + float(self.timeout)
        marker_at: float | None = None
        timed_out = stopped = False
        proc = self._proc = ctx.runner.start(argv)

        def handle(stream: str, raw: str) -> None:
            nonlocal marker_at
            line = g.strip_ansi(raw).rstrip()
            if not line.strip():
                return  # "\r\n" line ends arrive as an extra empty piece
            (stderr if stream == "stderr" else self.console).append(line)
            if marker_at is None and g.MARKER in line:
                marker_at = time.monotonic()
            if ctx.on_line is not None:
                ctx.on_line(stream, line)

        while True:
            got = False
            for stream, raw in proc.lines(timeout=0.1):
                got = True
                handle(stream, raw)
                if ctx.cancel.is_set() or time.monotonic() > deadline:
                    break
            if ctx.cancel.is_set():
                proc.stop()
                raise Cancelled(argv, None, "\n".join(self.console), "\n".join(stderr))
            if proc.poll() is not None:
                for stream, raw in proc.lines(timeout=0.5):  # what is still in the pipes
                    handle(stream, raw)
                break
            now = time.monotonic()
            if now > deadline:
                timed_out = True
                break
            if marker_at is not None and now > marker_at + self.poweroff_grace:
                stopped = True
                break
            if not got:
                ctx.cancel.wait(0.05)  # pipes closed, process not yet reaped: do not spin
        if timed_out or stopped:
            ctx.say(tr("停止 QEMU", "stopping QEMU"))
        rc = proc.stop()
        self._proc = None
        return {
            "argv": shlex.join(argv),
            "cpu": self.spec().cpu_arg,
            "efi": self.efi,
            "qemu_exit": rc,
            "timed_out": timed_out,
            "stopped_by_labkit": stopped or timed_out,
            "time_to_marker_s": None if marker_at is None else round(marker_at - t0, 3),
            "wall_s": round(time.monotonic() - t0, 3),
            "stderr_tail": stderr[-12:],
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        rep = g.parse_console(self.console)
        ev = {
            **evidence,
            "marker_seen": rep.marker_seen,
            "uname_m": rep.uname_m,
            "uname_r": rep.facts.get("UNAME-R"),
            "guest_cpus": rep.facts.get("CPUS"),
            "guest_mem_kb": rep.facts.get("MEM-KB"),
            "kernel_banner": rep.kernel_banner,
            "console_lines": len(self.console),
            "console_tail": self.console[-self.tail_lines :],
        }
        if rep.marker_seen and rep.uname_m == "aarch64":
            return CheckResult.passed(
                self.check_id,
                tr(
                    "aarch64 客户机在 {t} 秒内进入用户态（uname -m = aarch64）",
                    "the aarch64 guest reached userspace in {t} s (uname -m = aarch64)",
                    t=evidence["time_to_marker_s"],
                ),
                **ev,
            )
        if rep.marker_seen:
            why = tr(
                "客户机报告 uname -m = {u}，不是 aarch64",
                "guest reported uname -m = {u}, not aarch64",
                u=rep.uname_m,
            )
        elif rep.panic:
            why = tr("内核崩溃：{p}", "kernel panic: {p}", p=rep.panic)
        elif evidence["timed_out"]:
            why = tr("{t} 秒内没有看到 {m}", "no {m} within {t} s", m=g.MARKER, t=self.timeout)
        else:
            why = tr(
                "QEMU 以状态 {rc} 退出，客户机未进入用户态",
                "QEMU exited with status {rc} before the guest reached userspace",
                rc=evidence["qemu_exit"],
            )
            size = pflash_size_error("\n".join(evidence.get("stderr_tail") or []))
            if size:
                why += tr(
                    "；pflash 需要 {r} 字节的文件，实际 {p} 字节：用 BuildEfiImage 补齐到 64 MiB",
                    "; pflash needs a {r}-byte file, got {p} bytes: pad it to 64 MiB with BuildEfiImage",
                    r=size[0],
                    p=size[1],
                )
        return CheckResult.failed(self.check_id, why, **ev)

    def cleanup(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(LabkitError, OSError):
                proc.stop()
