"""The tiny aarch64 test guest: pure builders and parsers (no I/O here).

Chapter 1 asks students to run an *arm64* operating system on an x86 host with QEMU's binary
translator (TCG). Installing a full Ubuntu takes hours under emulation, so labkit proves the point
with the smallest real guest: the distribution's arm64 Linux kernel plus an initramfs whose
``/init`` is a BusyBox shell script that prints a marker and ``uname -m`` and powers off. It boots
to userspace in a few seconds and shows the student ``aarch64`` running on an x86 machine.

Everything pure about that guest is here, one section each, so it is unit-testable: where the arm64
packages come from, the initramfs, the ``qemu-system-aarch64`` argv and the console parser. The
binary formats (``ar``, cpio "newc", kernel and ELF headers) are :mod:`labkit.logic.guest_formats`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic.guest_formats import (
    AARCH64_EM,
    ARM64_IMAGE_MAGIC,
    ArMember,
    CpioEntry,
    ElfInfo,
    NewcMember,
    elf_info,
    kernel_format,
    newc_archive,
    parse_ar,
    parse_newc,
)
from labkit.logic.qemu_spec import memory_bytes, pflash_drive
from labkit.logic.sizes import format_size

__all__ = [
    "AARCH64_EM",
    "ARM64_IMAGE_MAGIC",
    "DEBIAN_FALLBACK_MIRROR",
    "DEB_SLOT",
    "KERNEL_PACKAGE_SLOT",
    "MARKER",
    "QEMU_AARCH64",
    "UBUNTU_PORTS_MIRROR",
    "AptSource",
    "ArMember",
    "BootSpec",
    "ConsoleReport",
    "CpioEntry",
    "ElfInfo",
    "GuestRepo",
    "NewcMember",
    "apt_options",
    "boot_argv",
    "choose_repo",
    "elf_info",
    "extract_argv",
    "init_script",
    "initramfs_entries",
    "kernel_format",
    "newc_archive",
    "parse_apt_depends",
    "parse_ar",
    "parse_console",
    "parse_deb822_sources",
    "parse_deb_filename",
    "parse_newc",
    "parse_one_line_sources",
    "prepare_commands",
    "sources_line",
]

# ----------------------------------------------------------------------------------------------
# Constants
# ----------------------------------------------------------------------------------------------
#: Line the guest's /init prints once it runs in userspace: the proof the guest booted.
MARKER = "LABKIT-GUEST-UP"
#: Prefix of the ``KEY=value`` facts /init reports after the marker (``LABKIT-UNAME-M=aarch64``).
FACT_PREFIX = "LABKIT-"
QEMU_AARCH64 = "qemu-system-aarch64"
#: Kernel command line: PL011 serial console of the virt board; reboot (= exit, with -no-reboot)
#: at once on panic instead of hanging until the timeout.
BASE_APPEND = "console=ttyAMA0 panic=-1"

DEBIAN_FALLBACK_MIRROR = "http://deb.debian.org/debian"
UBUNTU_PORTS_MIRROR = "http://ports.ubuntu.com/ubuntu-ports"
#: Hosts of Ubuntu's official x86 archive, which carries no arm64 packages.
_UBUNTU_X86_HOSTS = ("archive.ubuntu.com", "security.ubuntu.com")


# ----------------------------------------------------------------------------------------------
# Where the arm64 packages come from
# ----------------------------------------------------------------------------------------------
# Parse the host's apt sources and ``/etc/os-release`` (Debian keeps arm64 on the same mirror,
# Ubuntu on ``ubuntu-ports``); apt options that fetch foreign-architecture packages into a private
# state directory without touching the system's apt configuration (no ``dpkg --add-architecture``);
# parsers for ``apt-cache depends`` output and ``.deb`` file names (the ``ar`` container and the
# asset header checks, ARM64 kernel Image and aarch64 static ELF, are in ``guest_formats``).
@dataclass(frozen=True)
class AptSource:
    """One apt source entry (either file format), reduced to what labkit needs."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str = ""
    enabled: bool = True


def parse_deb822_sources(text: str) -> list[AptSource]:
    """Parse a deb822 ``*.sources`` file (Debian 12 / Ubuntu 24.04 default format).

    Paragraphs are separated by blank lines; ``#`` lines are comments; a line starting with
    whitespace continues the previous field (used by inline ``Signed-By`` key blocks).
    """
    out: list[AptSource] = []
    for para in _paragraphs(text):
        fields: dict[str, str] = {}
        key = ""
        for line in para:
            if line[:1] in (" ", "\t"):
                if key:
                    fields[key] += "\n" + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "uris" not in fields:
            continue
        signed = fields.get("signed-by", "").strip()
        out.append(
            AptSource(
                types=tuple(fields.get("types", "deb").split()),
                uris=tuple(fields["uris"].split()),
                suites=tuple(fields.get("suites", "").split()),
                components=tuple(fields.get("components", "").split()),
                signed_by=signed if signed.startswith("/") and "\n" not in signed else "",
                enabled=fields.get("enabled", "yes").strip().lower() not in ("no", "false", "0"),
            )
        )
    return out


def _paragraphs(text: str) -> Iterable[list[str]]:
    para: list[str] = []
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if not raw.strip():
            if para:
                yield para
            para = []
            continue
        para.append(raw.rstrip())
    if para:
        yield para


_ONE_LINE = re.compile(r"^\s*(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$")


def parse_one_line_sources(text: str) -> list[AptSource]:
    """Parse the classic one-line format: ``deb [opt=v ...] URI SUITE COMPONENT...``."""
    out: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        m = _ONE_LINE.match(line)
        if not m:
            continue
        kind, opts, uri, suite, comps = m.groups()
        options = dict(o.split("=", 1) for o in (opts or "").split() if "=" in o)
        signed = options.get("signed-by", "")
        out.append(
            AptSource(
                types=(kind,),
                uris=(uri,),
                suites=(suite,),
                components=tuple(comps.split()),
                signed_by=signed if signed.startswith("/") else "",
            )
        )
    return out


@dataclass(frozen=True)
class GuestRepo:
    """The arm64 archive the guest's packages are fetched from, and the package names there."""

    distro: str  # "debian" | "ubuntu"
    mirror: str
    suite: str
    kernel_meta: str  # metapackage whose dependency is the versioned kernel image package
    busybox: str = "busybox-static"
    components: tuple[str, ...] = ("main",)
    signed_by: str = ""
    note: str = ""  # how the mirror was chosen, shown in the plan


def _distro_family(osr: Mapping[str, str]) -> tuple[str, str]:
    """(family, codename) of the host: family is "debian" or "ubuntu" (or "" if neither)."""
    ident = osr.get("ID", "").lower()
    like = osr.get("ID_LIKE", "").lower().split()
    if ident == "ubuntu" or "ubuntu" in like:
        return "ubuntu", osr.get("UBUNTU_CODENAME") or osr.get("VERSION_CODENAME", "")
    if ident == "debian" or "debian" in like:
        return "debian", osr.get("DEBIAN_CODENAME") or osr.get("VERSION_CODENAME", "")
    return "", osr.get("VERSION_CODENAME", "")


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _ubuntu_ports(uri: str) -> tuple[str, str]:
    """Map an Ubuntu mirror to its arm64 counterpart; returns ``(mirror, why)``."""
    parts = urlsplit(uri.rstrip("/"))
    host = parts.hostname or ""
    if host in _UBUNTU_X86_HOSTS or host.endswith(".archive.ubuntu.com"):
        return UBUNTU_PORTS_MIRROR, tr(
            "Ubuntu 的 x86 软件源没有 arm64 软件包：改用 ports.ubuntu.com",
            "Ubuntu's x86 archive has no arm64 packages: using ports.ubuntu.com",
        )
    if parts.path.endswith("/ubuntu-ports"):
        return uri.rstrip("/"), tr(
            "本机的镜像站已经提供 ubuntu-ports", "host mirror already serves ubuntu-ports"
        )
    if parts.path.endswith("/ubuntu"):
        # Mirrors (e.g. mirrors.tuna.tsinghua.edu.cn, mirrors.aliyun.com) publish ports next to ubuntu/.
        ported = urlunsplit((parts.scheme, parts.netloc, parts.path + "-ports", "", ""))
        return ported, tr("按镜像站的惯例：{u} -> {p}", "mirror convention: {u} -> {p}", u=uri, p=ported)
    return UBUNTU_PORTS_MIRROR, tr(
        "认不出这个 Ubuntu 镜像站的目录结构：改用 ports.ubuntu.com",
        "unrecognised Ubuntu mirror layout: using ports.ubuntu.com",
    )


def _explicit_note() -> str:
    return tr("明确给出的镜像站", "mirror given explicitly")


def _no_http_mirror_note(site: str) -> str:
    return tr(
        "本机的 apt 源里没有 http 镜像站：改用 {s}",
        "no http mirror in the host's apt sources: using {s}",
        s=site,
    )


def choose_repo(
    sources: Sequence[AptSource],
    os_release: Mapping[str, str],
    *,
    mirror: str | None = None,
) -> GuestRepo:
    """Pick the arm64 archive for this host from its apt sources and os-release.

    Debian serves every architecture from the same mirror, so the host's own mirror for its release
    suite is reused (a local mirror is faster, and may be the only one reachable). Ubuntu keeps
    arm64 on a separate "ports" archive. ``mirror`` overrides the URL (the suite still comes from
    os-release). Raises :class:`InvalidField` when the host is neither Debian nor Ubuntu.
    """
    family, codename = _distro_family(os_release)
    if not family:
        raise InvalidField(
            "host",
            os_release.get("PRETTY_NAME") or os_release.get("ID", "unknown"),
            tr("不是 Debian 或 Ubuntu", "is not Debian or Ubuntu"),
            tr(
                "最小客户机用 apt 下载；请用 Debian 12 或 Ubuntu 22.04/24.04 主机",
                "the tiny guest is fetched with apt; use a Debian 12 or Ubuntu 22.04/24.04 host",
            ),
        )
    if not codename:
        raise InvalidField(
            "os-release",
            "VERSION_CODENAME",
            tr("缺失", "is missing"),
            tr("无法判断要下载哪个发行版本", "cannot tell which release to fetch"),
        )
    if mirror is not None and not _is_http(mirror):
        raise InvalidField(
            "mirror",
            mirror,
            tr("不是 http(s) 地址", "is not an http(s) URL"),
            tr("例如 http://deb.debian.org/debian", "e.g. http://deb.debian.org/debian"),
        )
    # The host entry for the release suite itself (not -updates / -security).
    entry = next(
        (
            s
            for s in sources
            if s.enabled and "deb" in s.types and codename in s.suites and any(_is_http(u) for u in s.uris)
        ),
        None,
    )
    host_uri = next((u for u in entry.uris if _is_http(u)), "") if entry else ""
    signed_by = entry.signed_by if entry else ""
    if family == "debian":
        if mirror:
            url, note = mirror.rstrip("/"), _explicit_note()
        elif host_uri:
            url, note = (
                host_uri.rstrip("/"),
                tr(
                    "本机自己的 Debian 镜像站（Debian 在同一个站点也提供 arm64）",
                    "the host's own Debian mirror (Debian serves arm64 there too)",
                ),
            )
        else:
            url, note = DEBIAN_FALLBACK_MIRROR, _no_http_mirror_note("deb.debian.org")
        return GuestRepo("debian", url, codename, "linux-image-cloud-arm64", signed_by=signed_by, note=note)
    if mirror:
        url, note = mirror.rstrip("/"), _explicit_note()
    elif host_uri:
        url, note = _ubuntu_ports(host_uri)
    else:
        url, note = UBUNTU_PORTS_MIRROR, _no_http_mirror_note("ports.ubuntu.com")
    return GuestRepo("ubuntu", url, codename, "linux-image-virtual", signed_by=signed_by, note=note)


def sources_line(repo: GuestRepo) -> str:
    """The one-line ``sources.list`` entry of the private arm64 apt state."""
    opts = "arch=arm64"
    if repo.signed_by:
        opts += f" signed-by={repo.signed_by}"
    return f"deb [{opts}] {repo.mirror} {repo.suite} {' '.join(repo.components)}\n"


def apt_options(state_dir: str) -> list[str]:
    """apt ``-o`` options that confine apt to ``state_dir`` and to the arm64 architecture.

    The system's package lists, dpkg status and sources are never read or written, so fetching a
    foreign-architecture package needs no ``dpkg --add-architecture`` and leaves the host as it was.
    The host's ``apt.conf.d`` still applies (proxies keep working).

    ``APT::Sandbox::User=root``: run as root, apt downloads as the unprivileged ``_apt`` user, which
    cannot enter labkit's cache under ``/root/.cache``; apt then downloads as root anyway and prints
    ``W: Download is performed unsandboxed as root …``. Saying so up front gives the same download
    without the alarming warning. For any other user the option does nothing (apt only drops
    privileges when it is root).
    """
    d = state_dir.rstrip("/")
    pairs = {
        "APT::Architecture": "arm64",
        "APT::Architectures": "arm64",
        "Dir::State::Lists": f"{d}/lists",
        "Dir::State::Status": "/dev/null",
        "Dir::Cache": f"{d}/cache",
        "Dir::Etc::SourceList": f"{d}/sources.list",
        "Dir::Etc::SourceParts": "/dev/null",
        "Dir::Etc::Preferences": "/dev/null",
        "Dir::Etc::PreferencesParts": "/dev/null",
        "Acquire::Languages": "none",
        "APT::Sandbox::User": "root",
    }
    out: list[str] = []
    for key, value in pairs.items():
        out += ["-o", f"{key}={value}"]
    return out


#: Stands in a planned argv for the kernel package only ``apt-cache depends`` names at run time.
KERNEL_PACKAGE_SLOT = "<kernel-package>"
#: Stands in a planned argv for each downloaded ``.deb`` file (its name has the version in it).
DEB_SLOT = "<package>.deb"


def prepare_commands(
    state_dir: str, repo: GuestRepo, kernel_package: str = KERNEL_PACKAGE_SLOT
) -> list[list[str]]:
    """What fetching the guest runs, in order: refresh the private arm64 lists, ask which versioned
    kernel the metapackage depends on, download that kernel and BusyBox.

    ``kernel_package`` is only known after the second command; a plan shows
    :data:`KERNEL_PACKAGE_SLOT` there (a command template), the run the name apt gave.
    """
    opts = apt_options(state_dir)
    return [
        ["apt-get", *opts, "update"],
        ["apt-cache", *opts, "depends", repo.kernel_meta],
        ["apt-get", *opts, "download", repo.busybox, kernel_package],
    ]


def extract_argv(deb: str, dest: str) -> list[str]:
    """``dpkg-deb -x``: unpack a ``.deb`` whose data.tar Python cannot read (zstd, Ubuntu ≥ 21.10)."""
    return ["dpkg-deb", "-x", deb, dest]


def parse_apt_depends(text: str, prefix: str = "linux-image-") -> str:
    """The first ``Depends:`` package starting with ``prefix`` in ``apt-cache depends`` output.

    ``apt-cache depends linux-image-cloud-arm64`` prints ``  Depends: linux-image-6.1.0-50-cloud-arm64``;
    raises ``ValueError`` when there is none (the metapackage is missing from the archive).
    """
    for line in text.splitlines():
        m = re.match(r"\s*\|?Depends:\s*<?([A-Za-z0-9.+-]+)>?", line)
        if m and m.group(1).startswith(prefix):
            return m.group(1)
    raise ValueError(f"no 'Depends: {prefix}...' line in apt-cache output")


def parse_deb_filename(name: str) -> tuple[str, str, str]:
    """``busybox-static_1%3a1.35.0-4_arm64.deb`` → ``("busybox-static", "1:1.35.0-4", "arm64")``."""
    base = name.rsplit("/", 1)[-1]
    if not base.endswith(".deb") or base.count("_") != 2:
        raise ValueError(f"not a .deb file name: {name!r}")
    pkg, version, arch = base[: -len(".deb")].split("_")
    return pkg, unquote(version), arch


# ----------------------------------------------------------------------------------------------
# The initramfs: the ``/init`` script and its files (written by the cpio "newc" archive writer)
# ----------------------------------------------------------------------------------------------
def init_script(marker: str = MARKER) -> str:
    """The guest's ``/init``: mount proc/sys, report facts on the console, power off.

    Every command is a BusyBox applet called through ``/bin/busybox`` so the initramfs needs no
    symlinks. ``poweroff -f`` makes the virtual machine switch itself off (PSCI SYSTEM_OFF), which
    ends the QEMU process with status 0: the boot is a command that finishes.
    """
    bb = "/bin/busybox"
    return (
        f"#!{bb} sh\n"
        "# labkit tiny guest: prove that an aarch64 kernel reached userspace, then switch off.\n"
        f"{bb} mkdir -p /proc /sys\n"
        f"{bb} mount -t proc proc /proc\n"
        f"{bb} mount -t sysfs sysfs /sys\n"
        f"echo {marker}\n"
        f'echo "{FACT_PREFIX}UNAME-M=$({bb} uname -m)"\n'
        f'echo "{FACT_PREFIX}UNAME-R=$({bb} uname -r)"\n'
        f'echo "{FACT_PREFIX}CPUS=$({bb} grep -c ^processor /proc/cpuinfo)"\n'
        f"echo \"{FACT_PREFIX}MEM-KB=$({bb} awk '/^MemTotal:/ {{print $2}}' /proc/meminfo)\"\n"
        f"echo {FACT_PREFIX}DONE\n"
        f"{bb} poweroff -f\n"
    )


def initramfs_entries(busybox: bytes, init: str | None = None) -> list[CpioEntry]:
    """The tiny guest's root file system: /init, /bin/busybox, /bin/sh and /dev/console.

    ``/dev/console`` (char 5:1) must exist in the archive: the kernel opens it as init's stdin and
    stdout before running /init, and without it nothing the script prints would reach the console.
    """
    return [
        CpioEntry(".", "dir", 0o755),
        CpioEntry("bin", "dir", 0o755),
        CpioEntry("bin/busybox", "file", 0o755, busybox),
        CpioEntry("bin/sh", "symlink", 0o777, b"busybox"),
        CpioEntry("dev", "dir", 0o755),
        CpioEntry("dev/console", "chardev", 0o600, rdev=(5, 1)),
        CpioEntry("proc", "dir", 0o755),
        CpioEntry("sys", "dir", 0o755),
        CpioEntry("init", "file", 0o755, (init if init is not None else init_script()).encode()),
    ]


# ----------------------------------------------------------------------------------------------
# The qemu command line
# ----------------------------------------------------------------------------------------------
_CPU = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


@dataclass(frozen=True)
class BootSpec:
    """Validated settings of one tiny-guest boot."""

    kernel: str
    initrd: str
    cpu: str = "max"
    pauth_impdef: bool = True
    memory: str = "512M"
    smp: int = 1
    efi: str | None = None
    extra_append: str = ""
    qemu: str = QEMU_AARCH64

    def __post_init__(self) -> None:
        if not _CPU.match(self.cpu):
            raise InvalidField(
                "cpu",
                self.cpu,
                tr("不是 CPU 型号名", "is not a CPU model name"),
                tr("例如 max、cortex-a57、cortex-a72", "e.g. max, cortex-a57, cortex-a72"),
            )
        if self.cpu == "host":
            raise InvalidField(
                "cpu",
                self.cpu,
                tr("需要 arm64 主机上的 KVM", "needs KVM on an arm64 host"),
                tr("TCG 下用 max 或 cortex-a57", "use max or cortex-a57 with TCG"),
            )
        if memory_bytes(self.memory) < 128 * 2**20:  # QEMU's -m rule; raises for a non-size
            raise InvalidField(
                "memory",
                self.memory,
                tr("对内核来说太小", "is too small for the kernel"),
                tr("至少 128M", "use at least 128M"),
            )
        if isinstance(self.smp, bool) or not isinstance(self.smp, int) or not 1 <= self.smp <= 64:
            raise InvalidField(
                "smp",
                self.smp,
                tr("不是 1 到 64 之间的 CPU 数", "is not a CPU count from 1 to 64"),
                tr("例如 1 或 2", "e.g. 1 or 2"),
            )
        if any(c in self.extra_append for c in "\n\r\0"):
            raise InvalidField(
                "extra_append",
                self.extra_append,
                tr("含有换行", "contains a line break"),
                tr("写成一行", "use one line"),
            )
        for name in ("kernel", "initrd"):
            if not getattr(self, name):
                raise InvalidField(
                    name,
                    getattr(self, name),
                    tr("为空", "is empty"),
                    tr("先准备客户机（`labkit guest prepare`）", "run `labkit guest prepare` first"),
                )

    @property
    def cpu_arg(self) -> str:
        """``-cpu`` value. ``pauth-impdef`` exists on ``max`` only; it swaps the architected (QARMA)
        pointer-authentication algorithm, very slow to emulate, for a cheap implementation-defined one."""
        return f"{self.cpu},pauth-impdef=on" if self.cpu == "max" and self.pauth_impdef else self.cpu

    @property
    def append(self) -> str:
        return f"{BASE_APPEND} {self.extra_append}".strip()


def boot_argv(spec: BootSpec) -> list[str]:
    """The ``qemu-system-aarch64`` argv that boots the tiny guest headless under TCG.

    ``-nographic`` puts the serial console on stdout (this QEMU has no GUI); ``-no-reboot`` turns
    the guest's reboot/panic into QEMU exiting; ``-nic none`` avoids the firmware trying network boot
    (PXE for minutes) when ``efi`` is given.
    """
    argv = [
        spec.qemu,
        "-M",
        "virt",
        "-accel",
        "tcg",
        "-cpu",
        spec.cpu_arg,
        "-m",
        format_size(memory_bytes(spec.memory)),
        "-smp",
        str(spec.smp),
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
    ]
    if spec.efi:
        argv += ["-drive", pflash_drive(spec.efi)]
    argv += ["-kernel", spec.kernel, "-initrd", spec.initrd, "-append", spec.append]
    return argv


# ----------------------------------------------------------------------------------------------
# The console
# ----------------------------------------------------------------------------------------------
_FACT = re.compile(rf"{FACT_PREFIX}([A-Z][A-Z0-9-]*)=(.*)$")


@dataclass(frozen=True)
class ConsoleReport:
    """What the guest's serial console showed."""

    marker_seen: bool
    facts: dict[str, str]
    kernel_banner: str | None = None
    panic: str | None = None

    @property
    def uname_m(self) -> str | None:
        return self.facts.get("UNAME-M")


def parse_console(lines: Iterable[str], marker: str = MARKER) -> ConsoleReport:
    """Find the marker, the ``LABKIT-KEY=value`` facts, the kernel banner and any panic line."""
    seen = False
    facts: dict[str, str] = {}
    banner = panic = None
    for raw in lines:
        line = raw.strip()
        if marker in line:
            seen = True
        m = _FACT.search(line)
        if m:
            facts[m.group(1)] = m.group(2).strip()
        if banner is None and "Linux version " in line:
            banner = line[line.index("Linux version ") :]
        if panic is None and "Kernel panic" in line:
            panic = line
    return ConsoleReport(seen, facts, banner, panic)
