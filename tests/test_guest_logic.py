"""Pure logic of the tiny aarch64 guest: apt sources, package names, containers, argv, console.

Parsers and writers are checked against the real tools where one exists: the cpio writer against
GNU ``cpio``, the cpio reader against archives ``cpio -o`` wrote, the ar parser and the .deb
extraction against packages built with ``dpkg-deb --build``, the init script with ``sh -n``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.errors import InvalidField
from labkit.logic import guest as g
from labkit.logic.host import parse_os_release
from labkit.logic.text import strip_ansi
from labkit.steps.base import RunContext
from labkit.steps.guest import PrepareTinyGuest, host_repo
from labkit.steps.runner import FunctionRunner, SubprocessRunner

needs_cpio = pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio not installed")
needs_dpkg_deb = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")

# ----------------------------------------------------------------------------------------------
# apt sources and os-release
# ----------------------------------------------------------------------------------------------
DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

UBUNTU_SOURCES = """\
## Ubuntu 24.04 default ubuntu.sources
Types: deb
URIs: http://cn.archive.ubuntu.com/ubuntu/
Suites: noble noble-updates noble-backports
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb
URIs: http://security.ubuntu.com/ubuntu/
Suites: noble-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
"""

DEBIAN_OSR = {"ID": "debian", "VERSION_CODENAME": "bookworm", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"}
UBUNTU_OSR = {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_CODENAME": "noble", "UBUNTU_CODENAME": "noble"}


def test_deb822_parses_the_debian_12_default_file():
    src = g.parse_deb822_sources(DEBIAN_SOURCES)
    assert [s.uris for s in src] == [
        ("http://deb.debian.org/debian",),
        ("http://deb.debian.org/debian-security",),
    ]
    assert src[0].suites == ("bookworm", "bookworm-updates")
    assert src[0].components == ("main",)
    assert src[0].signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert all(s.enabled and s.types == ("deb",) for s in src)


def test_deb822_handles_disabled_entries_inline_keys_and_multiple_uris():
    text = """\
Types: deb deb-src
URIs: https://mirror.example/debian http://deb.debian.org/debian
Suites: trixie
Components: main contrib
Enabled: no

Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD3K87ZM18gzyQZJD+w
 -----END PGP PUBLIC KEY BLOCK-----
"""
    first, second = g.parse_deb822_sources(text)
    assert first.enabled is False
    assert first.types == ("deb", "deb-src")
    assert first.uris == ("https://mirror.example/debian", "http://deb.debian.org/debian")
    assert second.enabled is True
    assert second.signed_by == ""  # an inline key is not a keyring path we can pass on


def test_one_line_sources_with_options_and_comments():
    text = """\
# main archive
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirrors.tuna.edu.cn/debian bookworm main contrib
deb-src http://deb.debian.org/debian bookworm main  # sources too
deb http://security.debian.org/debian-security bookworm-security main
not a source line
"""
    src = g.parse_one_line_sources(text)
    assert [s.types for s in src] == [("deb",), ("deb-src",), ("deb",)]
    assert src[0].uris == ("http://mirrors.tuna.edu.cn/debian",)
    assert src[0].signed_by == "/usr/share/keyrings/x.gpg"
    assert src[0].components == ("main", "contrib")
    assert src[1].components == ("main",)
    assert src[2].suites == ("bookworm-security",)


def test_os_release_values_are_unquoted():
    osr = parse_os_release(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n# c\nID=debian\n'
    )
    assert osr == {
        "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
        "VERSION_CODENAME": "bookworm",
        "ID": "debian",
    }


def test_debian_reuses_the_hosts_mirror_for_the_release_suite():
    repo = g.choose_repo(g.parse_deb822_sources(DEBIAN_SOURCES), DEBIAN_OSR)
    assert (repo.distro, repo.mirror, repo.suite) == ("debian", "http://deb.debian.org/debian", "bookworm")
    assert repo.kernel_meta == "linux-image-cloud-arm64"
    assert g.sources_line(repo) == (
        "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://deb.debian.org/debian bookworm main\n"
    )


def test_debian_local_mirror_is_kept_and_security_suite_is_not_chosen():
    text = "deb http://security.debian.org/debian-security bookworm-security main\n" + (
        "deb http://mirrors.ustc.edu.cn/debian/ bookworm main\n"
    )
    repo = g.choose_repo(g.parse_one_line_sources(text), DEBIAN_OSR)
    assert repo.mirror == "http://mirrors.ustc.edu.cn/debian"
    assert g.sources_line(repo) == "deb [arch=arm64] http://mirrors.ustc.edu.cn/debian bookworm main\n"


def test_debian_without_http_sources_falls_back_to_deb_debian_org():
    repo = g.choose_repo(g.parse_one_line_sources("deb cdrom:[Debian]/ bookworm main\n"), DEBIAN_OSR)
    assert repo.mirror == g.DEBIAN_FALLBACK_MIRROR
    assert g.choose_repo([], DEBIAN_OSR).mirror == g.DEBIAN_FALLBACK_MIRROR


def test_explicit_mirror_wins_and_must_be_http():
    repo = g.choose_repo([], DEBIAN_OSR, mirror="https://mirrors.aliyun.com/debian/")
    assert repo.mirror == "https://mirrors.aliyun.com/debian"
    with pytest.raises(InvalidField) as err:
        g.choose_repo([], DEBIAN_OSR, mirror="ftp://x/debian")
    assert err.value.field == "mirror"


def test_ubuntu_x86_archive_maps_to_ports():
    repo = g.choose_repo(g.parse_deb822_sources(UBUNTU_SOURCES), UBUNTU_OSR)
    assert (repo.distro, repo.mirror, repo.suite) == ("ubuntu", g.UBUNTU_PORTS_MIRROR, "noble")
    assert repo.kernel_meta == "linux-image-virtual"
    assert repo.busybox == "busybox-static"
    assert g.sources_line(repo) == (
        "deb [arch=arm64 signed-by=/usr/share/keyrings/ubuntu-archive-keyring.gpg] "
        "http://ports.ubuntu.com/ubuntu-ports noble main\n"
    )


@pytest.mark.parametrize(
    ("host_uri", "expected"),
    [
        ("http://archive.ubuntu.com/ubuntu", g.UBUNTU_PORTS_MIRROR),
        ("http://us.archive.ubuntu.com/ubuntu/", g.UBUNTU_PORTS_MIRROR),
        ("https://mirrors.tuna.tsinghua.edu.cn/ubuntu/", "https://mirrors.tuna.tsinghua.edu.cn/ubuntu-ports"),
        ("http://mirrors.aliyun.com/ubuntu-ports/", "http://mirrors.aliyun.com/ubuntu-ports"),
        ("http://ports.ubuntu.com/ubuntu-ports", "http://ports.ubuntu.com/ubuntu-ports"),
        ("http://odd.example/some/path", g.UBUNTU_PORTS_MIRROR),
    ],
)
def test_ubuntu_mirror_to_ports(host_uri, expected):
    src = g.parse_one_line_sources(f"deb {host_uri} jammy main restricted\n")
    osr = {"ID": "ubuntu", "VERSION_CODENAME": "jammy"}
    assert g.choose_repo(src, osr).mirror == expected


def test_ubuntu_derivative_uses_the_ubuntu_codename():
    mint = {
        "ID": "linuxmint",
        "ID_LIKE": "ubuntu debian",
        "VERSION_CODENAME": "wilma",
        "UBUNTU_CODENAME": "noble",
    }
    repo = g.choose_repo(g.parse_deb822_sources(UBUNTU_SOURCES), mint)
    assert (repo.distro, repo.suite, repo.mirror) == ("ubuntu", "noble", g.UBUNTU_PORTS_MIRROR)


def test_non_apt_hosts_and_missing_codename_are_rejected():
    with pytest.raises(InvalidField) as err:
        g.choose_repo([], {"ID": "fedora", "PRETTY_NAME": "Fedora Linux 40"})
    assert err.value.field == "host"
    assert "Fedora" in str(err.value)
    with pytest.raises(InvalidField) as err:
        g.choose_repo([], {"ID": "debian"})
    assert err.value.field == "os-release"


def test_this_hosts_repo_matches_its_os_release():
    osr = parse_os_release(Path("/etc/os-release").read_text())
    if osr.get("ID") not in ("debian", "ubuntu"):
        pytest.skip("not a Debian/Ubuntu host")
    repo = host_repo()
    assert repo.distro == osr["ID"]
    assert repo.suite == (osr.get("UBUNTU_CODENAME") or osr["VERSION_CODENAME"])
    assert repo.mirror.startswith(("http://", "https://"))


# ----------------------------------------------------------------------------------------------
# apt options and output
# ----------------------------------------------------------------------------------------------
def test_apt_options_confine_apt_to_the_private_state():
    opts = g.apt_options("/c/state/")
    assert opts[::2] == ["-o"] * (len(opts) // 2)
    pairs = dict(o.split("=", 1) for o in opts[1::2])
    assert pairs["APT::Architecture"] == pairs["APT::Architectures"] == "arm64"
    assert pairs["Dir::State::Lists"] == "/c/state/lists"
    assert pairs["Dir::Cache"] == "/c/state/cache"
    assert pairs["Dir::Etc::SourceList"] == "/c/state/sources.list"
    assert pairs["Dir::State::Status"] == pairs["Dir::Etc::SourceParts"] == "/dev/null"
    assert pairs["APT::Sandbox::User"] == "root"  # no "W: Download is performed unsandboxed as root"


def test_parse_apt_depends_real_output():
    out = "linux-image-cloud-arm64\n  Depends: linux-image-6.1.0-50-cloud-arm64\n"
    assert g.parse_apt_depends(out) == "linux-image-6.1.0-50-cloud-arm64"
    ubuntu = (
        "linux-image-virtual\n  Depends: linux-image-6.8.0-45-generic\n  Depends: linux-firmware\n"
        " |Depends: <linux-image-6.8.0-45-generic-hwe>\n"
    )
    assert g.parse_apt_depends(ubuntu) == "linux-image-6.8.0-45-generic"
    with pytest.raises(ValueError):
        g.parse_apt_depends("linux-image-cloud-arm64\n")


def test_parse_deb_filename_unquotes_the_epoch():
    assert g.parse_deb_filename("busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb") == (
        "busybox-static",
        "1:1.35.0-4+deb12u1+b1",
        "arm64",
    )
    assert g.parse_deb_filename("/x/linux-image-6.1.0-50-cloud-arm64_6.1.176-1_arm64.deb")[1] == "6.1.176-1"
    with pytest.raises(ValueError):
        g.parse_deb_filename("busybox.tar.gz")


# ----------------------------------------------------------------------------------------------
# .deb container: parse real packages built by dpkg-deb, extract like PrepareTinyGuest does
# ----------------------------------------------------------------------------------------------
def _build_deb(tmp: Path, compression: str) -> Path:
    root = tmp / f"pkg-{compression}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: labkit-test\nVersion: 1.0\nArchitecture: arm64\nMaintainer: t <t@example.org>\n"
        "Description: test\n"
    )
    (root / "boot").mkdir()
    (root / "boot" / "vmlinuz-9.9-test").write_bytes(b"KERNEL" * 1000)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "busybox").write_bytes(b"BUSYBOX" * 777)
    (root / "etc").mkdir()
    (root / "etc" / "other").write_text("not wanted")
    out = tmp / f"labkit-test_1.0_arm64-{compression}.deb"
    subprocess.run(
        ["dpkg-deb", f"-Z{compression}", "--root-owner-group", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out


@needs_dpkg_deb
@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd", "none"])
def test_ar_parser_and_extraction_on_real_debs(tmp_path, compression):
    deb = _build_deb(tmp_path, compression)
    members = g.parse_ar(deb.read_bytes())
    names = [m.name for m in members]
    assert names[0] == "debian-binary"
    assert deb.read_bytes()[members[0].offset : members[0].offset + members[0].size] == b"2.0\n"
    assert names[1].startswith("control.tar")
    assert names[2].startswith("data.tar")
    assert sum(60 + m.size + (m.size & 1) for m in members) + 8 == deb.stat().st_size
    ctx = RunContext(runner=SubprocessRunner())
    found = PrepareTinyGuest(cache_dir=tmp_path / "c")._extract(ctx, deb)
    assert found == {"kernel": b"KERNEL" * 1000, "busybox": b"BUSYBOX" * 777}
    # Only zstd needs dpkg-deb; the others are read by Python without spawning anything.
    assert bool(ctx.commands) == (compression == "zstd")


def test_ar_parser_rejects_garbage():
    with pytest.raises(ValueError):
        g.parse_ar(b"PK\x03\x04 not an ar")
    with pytest.raises(ValueError):
        g.parse_ar(b"!<arch>\n" + b"x" * 60)


# ----------------------------------------------------------------------------------------------
# initramfs: the init script and the cpio writer, judged by GNU cpio
# ----------------------------------------------------------------------------------------------
def test_init_script_content_and_syntax(tmp_path):
    text = g.init_script()
    assert text.startswith("#!/bin/busybox sh\n")
    lines = text.splitlines()
    assert f"echo {g.MARKER}" in lines
    assert lines[-1] == "/bin/busybox poweroff -f"
    assert lines.index(f"echo {g.MARKER}") < lines.index("/bin/busybox poweroff -f")
    assert any("LABKIT-UNAME-M=$(/bin/busybox uname -m)" in line for line in lines)
    assert "mount -t proc proc /proc" in text
    path = tmp_path / "init"
    path.write_text(text)
    subprocess.run(["sh", "-n", str(path)], check=True)  # POSIX-shell syntax is valid


def _cpio(args: list[str], data: bytes, cwd: Path | None = None) -> str:
    res = subprocess.run(["cpio", *args], input=data, capture_output=True, cwd=cwd, check=True)
    return res.stdout.decode()


@needs_cpio
def test_initramfs_is_listed_and_extracted_by_real_cpio(tmp_path):
    busybox = b"\x7fELF fake busybox" * 3
    archive = g.newc_archive(g.initramfs_entries(busybox))
    listing = _cpio(["-it", "--quiet"], archive).split()
    assert listing == [".", "bin", "bin/busybox", "bin/sh", "dev", "dev/console", "proc", "sys", "init"]
    verbose = _cpio(["-itv", "--quiet"], archive)
    console = next(line for line in verbose.splitlines() if line.endswith("dev/console"))
    assert console.startswith("crw-------")
    assert "5,   1" in console
    assert next(line for line in verbose.splitlines() if line.endswith("init")).startswith("-rwxr-xr-x")
    assert "bin/sh -> busybox" in verbose
    # Extract (device nodes need root, so leave /dev/console out) and compare contents.
    out = tmp_path / "root"
    out.mkdir()
    _cpio(["-id", "--quiet", "--no-absolute-filenames", "-f", "dev/console"], archive, cwd=out)
    assert (out / "init").read_text() == g.init_script()
    assert (out / "bin" / "busybox").read_bytes() == busybox
    assert stat.S_IMODE((out / "bin" / "busybox").stat().st_mode) == 0o755
    assert os.readlink(out / "bin" / "sh") == "busybox"
    assert (out / "proc").is_dir()
    assert (out / "sys").is_dir()


_names = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=20).filter(
        lambda s: s not in (".", "..") and s != "TRAILER!!!"
    ),
    min_size=1,
    max_size=6,
    unique=True,
)


@needs_cpio
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=_names, data=st.data())
def test_newc_writer_round_trips_through_real_cpio(tmp_path_factory, names, data):
    """Any names and contents (all padding cases) come back from GNU cpio byte for byte."""
    contents = {n: data.draw(st.binary(max_size=13)) for n in names}
    entries = [g.CpioEntry(n, "file", 0o640, c) for n, c in contents.items()]
    archive = g.newc_archive(entries)
    assert len(archive) % 4 == 0
    assert _cpio(["-it", "--quiet"], archive).split() == names
    out = tmp_path_factory.mktemp("x")
    _cpio(["-id", "--quiet"], archive, cwd=out)
    for n, c in contents.items():
        assert (out / n).read_bytes() == c
    assert [(m.name, m.size) for m in g.parse_newc(archive)] == [(n, len(c)) for n, c in contents.items()]


@needs_cpio
def test_newc_reader_reads_what_real_cpio_wrote(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f1").write_bytes(b"12345")
    (src / "f2").write_bytes(b"")
    names = "\n".join(["d", "d/f1", "f2"]) + "\n"
    made = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        input=names.encode(),
        cwd=src,
        capture_output=True,
        check=True,
    ).stdout
    members = g.parse_newc(made)
    assert [(m.name, m.size) for m in members] == [("d", 0), ("d/f1", 5), ("f2", 0)]
    assert stat.S_ISDIR(members[0].mode)
    assert stat.S_ISREG(members[1].mode)


def test_newc_reader_rejects_truncated_archives_and_writer_rejects_duplicates():
    archive = g.newc_archive([g.CpioEntry("a", data=b"xyz")])
    with pytest.raises(ValueError):
        g.parse_newc(archive[:-124])  # trailer cut off
    with pytest.raises(ValueError):
        g.parse_newc(b"070702" + archive[6:])
    with pytest.raises(ValueError):
        g.newc_archive([g.CpioEntry("a"), g.CpioEntry("/a")])
    with pytest.raises(ValueError):
        g.newc_archive([g.CpioEntry("a", "fifo")])


def test_initrd_is_reproducible():
    one = gzip.compress(g.newc_archive(g.initramfs_entries(b"bb")), mtime=0)
    two = gzip.compress(g.newc_archive(g.initramfs_entries(b"bb")), mtime=0)
    assert one == two


# ----------------------------------------------------------------------------------------------
# Asset headers
# ----------------------------------------------------------------------------------------------
def test_kernel_format_classification():
    image = bytearray(64)
    image[:2] = b"MZ"
    image[0x38:0x3C] = g.ARM64_IMAGE_MAGIC
    assert g.kernel_format(bytes(image)) == "image"
    assert g.kernel_format(gzip.compress(bytes(image))) == "gzip"
    assert g.kernel_format(b"MZ\0\0zimg" + bytes(56)) == "zboot"
    assert g.kernel_format(b"\x7fELF" + bytes(60)) == "unknown"
    assert g.kernel_format(b"") == "unknown"


def test_elf_info_on_host_binaries():
    info = g.elf_info(Path("/bin/true").read_bytes()[:16384])
    assert info.is64
    assert info.little_endian
    assert not info.is_aarch64 or os.uname().machine == "aarch64"
    assert info.static is False  # /bin/true is dynamically linked (has PT_INTERP)
    if Path("/sbin/ldconfig").exists():
        assert g.elf_info(Path("/sbin/ldconfig").read_bytes()[:16384]).static is True
    with pytest.raises(ValueError):
        g.elf_info(b"#!/bin/sh\n" + bytes(100))


# ----------------------------------------------------------------------------------------------
# qemu argv
# ----------------------------------------------------------------------------------------------
def test_boot_argv_default():
    argv = g.boot_argv(g.BootSpec(kernel="/c/vmlinuz", initrd="/c/initrd.gz"))
    assert argv == [
        "qemu-system-aarch64", "-M", "virt", "-accel", "tcg", "-cpu", "max,pauth-impdef=on",
        "-m", "512M", "-smp", "1", "-nographic", "-no-reboot", "-nic", "none",
        "-kernel", "/c/vmlinuz", "-initrd", "/c/initrd.gz", "-append", "console=ttyAMA0 panic=-1",
    ]  # fmt: skip


def test_boot_argv_variants():
    spec = g.BootSpec(
        "/k", "/i", cpu="cortex-a57", smp=2, memory="1G", efi="/x/my,efi.img", extra_append="quiet"
    )
    argv = g.boot_argv(spec)
    assert argv[argv.index("-cpu") + 1] == "cortex-a57"  # pauth-impdef exists on max only
    assert argv[argv.index("-smp") + 1] == "2"
    assert argv[argv.index("-m") + 1] == "1G"
    assert argv[argv.index("-drive") + 1] == "if=pflash,format=raw,file=/x/my,,efi.img,readonly=on"
    assert argv.index("-drive") < argv.index("-kernel")
    assert argv[-1] == "console=ttyAMA0 panic=-1 quiet"
    assert g.BootSpec("/k", "/i", pauth_impdef=False).cpu_arg == "max"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"cpu": "host"}, "cpu"),
        ({"cpu": "Max Power"}, "cpu"),
        ({"memory": "12X"}, "memory"),
        ({"memory": "64M"}, "memory"),
        ({"smp": 0}, "smp"),
        ({"smp": True}, "smp"),
        ({"extra_append": "a\nb"}, "extra_append"),
        ({"kernel": ""}, "kernel"),
    ],
)
def test_boot_spec_rejects_bad_input(kw, field):
    args = {"kernel": "/k", "initrd": "/i", **kw}
    with pytest.raises(InvalidField) as err:
        g.BootSpec(**args)
    assert err.value.field == field
    assert err.value.fix


# ----------------------------------------------------------------------------------------------
# console
# ----------------------------------------------------------------------------------------------
def test_parse_console():
    lines = [
        "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x000f0510]",
        "[    0.000000] Linux version 6.1.0-50-cloud-arm64 (debian-kernel@lists.debian.org) #1 SMP",
        "[    1.873102] Run /init as init process",
        "LABKIT-GUEST-UP",
        "LABKIT-UNAME-M=aarch64",
        "LABKIT-UNAME-R=6.1.0-50-cloud-arm64",
        "LABKIT-CPUS=1",
        "[    2.195623] reboot: Power down",
    ]
    rep = g.parse_console(lines)
    assert rep.marker_seen
    assert rep.uname_m == "aarch64"
    assert rep.panic is None
    assert rep.facts["UNAME-R"] == "6.1.0-50-cloud-arm64"
    assert rep.facts["CPUS"] == "1"
    assert rep.kernel_banner.startswith("Linux version 6.1.0-50-cloud-arm64")
    bad = g.parse_console(["[ 1.0] Kernel panic - not syncing: No working init found."])
    assert not bad.marker_seen
    assert bad.uname_m is None
    assert bad.panic.startswith("[ 1.0] Kernel panic")


def test_strip_ansi_removes_uefi_screen_codes():
    raw = (
        "\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001 \x1b[1m\x1b[33m\x1b[40mx\x1b[0m"
    )
    assert strip_ansi(raw) == "BdsDxe: loading Boot0001 x"


def test_prepare_with_a_damaged_cache_downloads_again_as_its_plan_says(tmp_path):
    """labkit's own cache (its manifest says so) is repaired without a question: the plan shows the
    download as the alternative to the cache, and that is what the run tries."""
    (tmp_path / "vmlinuz").write_bytes(b"not a kernel")
    (tmp_path / "busybox").write_bytes(b"not busybox")
    (tmp_path / "manifest.json").write_text('{"kernel_package": "linux-image-6.1.0-9-cloud-arm64"}')
    step = PrepareTinyGuest(cache_dir=tmp_path)
    plan = step.plan()
    assert plan.commands == []  # normally nothing is downloaded ...
    assert plan.alternatives[:3] == PrepareTinyGuest(cache_dir=tmp_path, overwrite=True).plan().commands[:3]
    runner = FunctionRunner(lambda argv: (100, "", "E: no network in this test"))
    res = step.execute("live", runner=runner)
    assert runner.history[0] == plan.alternatives[0]  # ... but a damaged cache is fetched again
    assert res.status == "error"
    assert res.evidence["returncode"] == 100
    assert (tmp_path / "vmlinuz").read_bytes() == b"not a kernel"  # nothing replaced by a failed fetch


def test_prepare_plan_is_a_command_template_for_the_kernel_package(tmp_path):
    plan = PrepareTinyGuest(cache_dir=tmp_path).plan()
    update, depends, download = plan.commands[:3]
    assert update[0] == "apt-get"
    assert update[-1] == "update"
    assert depends[0] == "apt-cache"
    assert depends[-2] == "depends"
    assert download[-2:] == ["busybox-static", g.KERNEL_PACKAGE_SLOT]
    assert any(g.KERNEL_PACKAGE_SLOT in n for n in plan.notes)
    assert not tmp_path.joinpath(".apt-arm64").exists()  # planning writes nothing
