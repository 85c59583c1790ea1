"""``labkit doctor``: what this host can do for the course, and the exact command to fix the rest.

One row per component (QEMU, UEFI firmware, KVM, Docker client and engine, kubectl, MicroK8s,
ZeroTier, NVIDIA GPU, torch) with a status (``ok`` / ``missing`` / ``unusable``), a detail line and
a fix: an exact install command where a package exists, otherwise the official route as text.
``--json`` prints the host facts, the rows and the VM sizing advice as one JSON document;
``--install`` installs the missing apt pieces the course needs (see :func:`main`). Doctor reports,
it does not fail because something is missing (exit statuses: see ``EXIT_REFUSED``).

Python API: :func:`main` (keyword-only), :func:`build_rows` (pure, from :class:`HostFacts`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from labkit._version import __version__
from labkit.errors import CommandFailed, LabkitError
from labkit.i18n import tr
from labkit.logic.host import HostFacts, parse_apt_policy
from labkit.logic.sizes import human_size
from labkit.logic.sizing import Sizing, advise
from labkit.logic.tools import TOOL_PACKAGES

__all__ = ["EXIT_APT_FAILED", "EXIT_REFUSED", "Row", "add_arguments", "build_rows", "cli", "main"]

# Exit status (doctor reports, it does not fail because something is missing):
# 0 – report printed; with ``--install``: installed, or nothing to install;
# 1 – ``--install`` refused: not root (the ``sudo`` command is printed instead) or the answer was no;
# 3 – ``--install`` ran ``apt-get`` and it failed.
EXIT_REFUSED = 1
EXIT_APT_FAILED = 3

STATUSES = ("ok", "missing", "unusable")
_APT_INSTALL = ("apt-get", "install", "-y", "--no-install-recommends")
_APT = "sudo " + " ".join(_APT_INSTALL)
_ZEROTIER_ROUTE = "curl -s https://install.zerotier.com | sudo bash"


@dataclass(frozen=True)
class Row:
    """One line of the doctor table. ``apt`` lists packages ``--install`` may install for it."""

    component: str
    status: str  # ok | missing | unusable
    detail: str
    fix: str = ""
    apt: tuple[str, ...] = ()
    optional: bool = False  # not needed by the course's core chapters; --install leaves it alone

    def to_payload(self) -> dict[str, Any]:
        data = asdict(self)
        data["apt"] = list(self.apt)
        return data


def _apt_fix(*packages: str) -> str:
    return f"{_APT} {' '.join(packages)}"


def _tool_row(facts: HostFacts, name: str, *, optional: bool = False, note: str = "") -> Row:
    info = facts.tool(name)
    pkg = info.package or TOOL_PACKAGES.get(name, "")
    apt_pkgs = (pkg,) if pkg and " " not in pkg and ":" not in pkg else ()
    if not info.present:
        fix = _apt_fix(*apt_pkgs) if apt_pkgs else pkg
        detail = tr("未安装", "not installed") + (tr("；", "; ") + note if note else "")
        return Row(name, "missing", detail, fix, apt_pkgs, optional)
    if info.detail:
        return Row(
            name,
            "unusable",
            f"{info.path}: {info.detail}",
            _apt_fix(*apt_pkgs) if apt_pkgs else "",
            (),
            optional,
        )
    detail = f"{info.version} ({info.path})" + (tr("；", "; ") + note if note else "")
    return Row(name, "ok", detail, "", (), optional)


def _kvm_row(facts: HostFacts) -> Row:
    if facts.kvm_usable:
        return Row("KVM", "ok", facts.kvm_reason, "")
    if not facts.kvm_device:
        fix = tr(
            "第 1 章不需要（QEMU 使用 TCG 软件模拟）；要用 KVM：在 BIOS 开启 VT-x/AMD-V，"
            "或在宿主机上开启嵌套虚拟化",
            "not needed for chapter 1 (QEMU falls back to TCG emulation); for KVM enable VT-x/AMD-V in the "
            "firmware, or nested virtualization on the host that runs this VM",
        )
        return Row("KVM", "missing", facts.kvm_reason, fix)
    if not facts.kvm_accessible:
        return Row(
            "KVM",
            "unusable",
            facts.kvm_reason,
            "sudo usermod -aG kvm $USER  # " + tr("然后重新登录", "then log in again"),
        )
    fix = tr(
        "第 1 章不需要（QEMU 使用 TCG 软件模拟）；要用 KVM 需要一台 CPU 带 vmx/svm 的机器"
        "或开启嵌套虚拟化的虚拟机",
        "not needed for chapter 1 (QEMU falls back to TCG emulation); KVM needs a machine whose CPU has "
        "vmx/svm, or a VM with nested virtualization enabled",
    )
    return Row("KVM", "unusable", facts.kvm_reason, fix)


def _docker_rows(facts: HostFacts) -> list[Row]:
    d = facts.docker
    client = _tool_row(facts, "docker")
    if len(d.client_paths) > 1:
        client = Row(
            client.component,
            client.status,
            client.detail
            + tr(
                "；PATH 上有 {n} 个 docker：{p}（使用第一个）",
                "; {n} docker clients on PATH: {p} (the first one wins)",
                n=len(d.client_paths),
                p=", ".join(d.client_paths),
            ),
            client.fix,
            client.apt,
        )
    name = "docker engine"
    if d.engine == "ok":
        engine = Row(name, "ok", f"{d.server_version} (API {d.api_version}, {d.socket})")
    elif d.engine == "not installed" or (d.engine == "not running" and not d.dockerd_path):
        engine = Row(
            name,
            "missing",
            tr("没有安装 Docker 引擎 (dockerd)", "no Docker engine (dockerd) installed"),
            _apt_fix("docker.io"),
            ("docker.io",),
        )
    elif d.engine == "not running":
        start = (
            "sudo systemctl start docker"
            if d.systemd
            else f"sudo {d.dockerd_path or 'dockerd'} --host unix:///var/run/docker.sock &"
        )
        engine = Row(name, "unusable", d.detail, start)
    elif d.engine == "permission denied":
        engine = Row(
            name,
            "unusable",
            d.detail,
            "sudo usermod -aG docker $USER  # "
            + tr("然后重新登录（或 newgrp docker）", "then log in again (or newgrp docker)"),
        )
    else:
        engine = Row(name, "unusable", d.detail or d.engine, "")
    return [client, engine]


def _qemu_rows(facts: HostFacts) -> list[Row]:
    """What chapter 1 needs: qemu-img, qemu-system-aarch64, UEFI firmware, the NIC ROM, KVM."""
    rows = [_tool_row(facts, "qemu-img"), _tool_row(facts, "qemu-system-aarch64")]
    found = [p for p, ok in facts.firmware.items() if ok]
    if found:
        rows.append(Row("UEFI firmware (aarch64)", "ok", found[0]))
    else:
        detail = tr("没有 QEMU_EFI.fd / AAVMF_CODE.fd", "no QEMU_EFI.fd / AAVMF_CODE.fd")
        fw = "qemu-efi-aarch64"
        rows.append(Row("UEFI firmware (aarch64)", "missing", detail, _apt_fix(fw), (fw,)))
    rom = facts.extra.get("nic_rom")
    if rom:
        rows.append(Row("NIC boot ROM (ipxe-qemu)", "ok", rom))
    else:
        detail = tr(
            "没有 efi-virtio.rom：课程的 -nic user,model=virtio-net-pci 会启动失败",
            "no efi-virtio.rom: the course's -nic user,model=virtio-net-pci fails to start",
        )
        rows.append(Row("NIC boot ROM (ipxe-qemu)", "missing", detail, _apt_fix("ipxe-qemu"), ("ipxe-qemu",)))
    rows.append(_kvm_row(facts))
    note = tr("可选：x86 客户机（配合 KVM）", "optional: x86 guests (with KVM)")
    rows.append(_tool_row(facts, "qemu-system-x86_64", optional=True, note=note))
    return rows


def _kubectl_row(facts: HostFacts) -> Row:
    kubectl = _tool_row(facts, "kubectl")
    if kubectl.status != "missing":
        return kubectl
    if facts.os_id not in ("debian", ""):
        return Row("kubectl", "missing", kubectl.detail, "sudo snap install kubectl --classic")
    old = tr(
        "（Debian 12 的 kubernetes-client 是 1.20 版，较旧）",
        " (Debian 12's kubernetes-client is version 1.20, old)",
    )
    return Row("kubectl", "missing", kubectl.detail + old, kubectl.fix, kubectl.apt)


def _snap_and_zerotier_rows(facts: HostFacts) -> list[Row]:
    """MicroK8s (a snap) and ZeroTier (its own installer): never apt packages."""
    microk8s = _tool_row(facts, "microk8s", optional=True)
    if microk8s.status == "missing":
        needs_snapd = (
            ""
            if shutil.which("snap")
            else tr("（先安装 snapd：", " (needs snapd: ") + _apt_fix("snapd") + ")"
        )
        detail = microk8s.detail + tr("（snap 包，不在 apt 中）", " (a snap, not in apt)")
        microk8s = Row(
            "microk8s", "missing", detail, "sudo snap install microk8s --classic" + needs_snapd, (), True
        )
    zt = _tool_row(facts, "zerotier-cli", optional=True)
    if zt.status == "missing":
        detail = tr(
            "未安装（zerotier-one 不在 Debian 软件源中）", "not installed (zerotier-one is not in Debian)"
        )
        fix = (
            tr("官方安装方式：", "official installer: ")
            + _ZEROTIER_ROUTE
            + "  # https://www.zerotier.com/download/"
        )
        zt = Row("zerotier-cli", "missing", detail, fix, (), True)
    return [microk8s, zt]


def _gpu_rows(facts: HostFacts) -> list[Row]:
    """The NVIDIA GPU and torch (optional: labkit never installs drivers)."""
    rows = []
    if facts.gpus:
        gpus = "; ".join(f"{g.name}, driver {g.driver_version}, {g.memory_total}" for g in facts.gpus)
        rows.append(Row("NVIDIA GPU", "ok", gpus, "", (), True))
    else:
        status = "unusable" if facts.tool("nvidia-smi").present else "missing"
        fix = tr(
            "可选；labkit 不安装 GPU 驱动，请按发行版的 NVIDIA 驱动说明安装",
            "optional; labkit never installs GPU drivers: follow your distribution's NVIDIA driver guide",
        )
        rows.append(Row("NVIDIA GPU", status, facts.gpu_detail, fix, (), True))
    t = facts.torch
    if t.present:
        rows.append(Row("torch", "ok", f"{t.version or '?'} ({t.path})", "", (), True))
    else:
        rows.append(Row("torch", "missing", t.detail, "pip install labkit[gpu]", (), True))
    return rows


def build_rows(facts: HostFacts, apt_candidates: dict[str, str | None] | None = None) -> list[Row]:
    """Judge the facts into table rows (pure).

    ``apt_candidates`` (package → candidate version or ``None``, from ``apt-cache policy``) removes
    the install command of every listed package the configured apt sources cannot install;
    packages not listed are left as they are.

    Only real package names are offered (checked on Debian 12: ``kubernetes-client`` is there, at
    1.20; ``zerotier-one`` is not, so its official installer is named instead; MicroK8s is a snap).
    Before ``--install`` runs anything, ``apt-cache policy`` confirms each package has an
    installable candidate in this host's apt sources; packages without one are reported and left out.
    """
    rows = _qemu_rows(facts) + _docker_rows(facts) + [_kubectl_row(facts)]
    rows += _snap_and_zerotier_rows(facts) + _gpu_rows(facts)
    if apt_candidates is not None:
        rows = [_drop_unavailable(r, apt_candidates) for r in rows]
    return rows


def _drop_unavailable(row: Row, candidates: dict[str, str | None]) -> Row:
    missing = [p for p in row.apt if p in candidates and not candidates[p]]
    if not missing:
        return row
    note = tr(
        "（apt 软件源中没有 {p}）",
        " ({p} is not available from this host's apt sources)",
        p=", ".join(missing),
    )
    return Row(row.component, row.status, row.detail + note, "", (), row.optional)


def install_packages(rows: list[Row]) -> list[str]:
    """The apt packages ``--install`` would install: required rows that are missing, no optionals."""
    pkgs: list[str] = []
    for row in rows:
        if row.status == "missing" and not row.optional:
            pkgs += [p for p in row.apt if p not in pkgs]
    return pkgs


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _wrap(text: str, width: int) -> list[str]:
    """Wrap by display width (CJK counts double); break at spaces, or anywhere in CJK runs."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        line = ""
        for word in para.split(" "):
            candidate = f"{line} {word}" if line else word
            if _width(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for ch in word:  # a word longer than the column: hard-break it
                if _width(line + ch) > width:
                    lines.append(line)
                    line = ""
                line += ch
        lines.append(line)
    return lines


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def render_table(rows: list[Row], total_width: int = 110) -> str:
    """The rows as a text table: component | status | detail, the fix on its own line below the detail.

    The fix is a command to copy, so it gets the full detail column instead of a narrow fourth
    column that would break it across lines; ``--json`` carries the four fields separately.
    """
    headers = (tr("组件", "component"), tr("状态", "status"), tr("详情 / 修复", "detail / fix"))
    w0 = max(_width(headers[0]), *(_width(r.component) for r in rows))
    w1 = max(_width(headers[1]), *(_width(r.status) for r in rows))
    w2 = max(40, total_width - w0 - w1 - 6)
    widths = (w0, w1, w2)
    out = [" | ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("-+-".join("-" * w for w in widths))
    for r in rows:
        lines = _wrap(r.detail, w2)
        if r.fix:
            lines += _wrap(tr("修复：", "fix: ") + r.fix, w2)
        for i, text in enumerate(lines):
            cells = (r.component if i == 0 else "", r.status if i == 0 else "", text)
            out.append(" | ".join(_pad(c, w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(out)


def _host_line(facts: HostFacts) -> str:
    return tr(
        "{os}，{arch}，{c} 核，内存 {m}，{p} 可用磁盘 {d}{root}",
        "{os}, {arch}, {c} cores, {m} RAM, {d} free at {p}{root}",
        os=facts.os_pretty or facts.os_name,
        arch=facts.arch,
        c=facts.cores,
        m=human_size(facts.memory_bytes),
        d=human_size(facts.disk_free_bytes) if facts.disk_free_bytes >= 0 else "?",
        p=facts.disk_path,
        root=tr("，root", ", root") if facts.is_root else "",
    )


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------
def _apt_candidates(runner: Any, packages: list[str]) -> dict[str, str | None] | None:
    """Ask apt which of ``packages`` it can install; ``None`` when apt is not there to ask."""
    if not packages or shutil.which("apt-cache") is None:
        return None
    try:
        done = runner.run(["apt-cache", "policy", *packages], timeout=10, check=False)
    except LabkitError:
        return None
    known = parse_apt_policy(done.stdout)
    return {p: known.get(p) for p in packages}  # unknown to apt: absent from its output


def _write_text_report(
    out: TextIO, facts: HostFacts, rows: list[Row], sizing: Sizing, apt_argv: list[str], width: int | None
) -> None:
    total = width or shutil.get_terminal_size((110, 24)).columns
    out.write(f"labkit doctor {__version__} — {_host_line(facts)}\n\n")
    out.write(render_table(rows, total) + "\n\n")
    rec = sizing.recommended
    out.write(
        tr("虚拟机建议：", "VM sizing: ")
        + (str(rec) if rec else tr("本机太小，无法按规则分配", "this host is too small for the rules"))
        + "\n"
    )
    for f in sizing.findings:
        fix = tr("；", "; ") + f.fix if f.fix else ""
        out.write(f"  [{f.severity}] {f.message}{fix}\n")
    if apt_argv[5:]:
        out.write(
            "\n" + tr("安装缺少的部分：", "install what is missing: ") + "sudo " + shlex.join(apt_argv) + "\n"
        )
    out.write(
        tr(
            "（状态 missing/unusable 不是错误：doctor 总是以 0 退出，除非 --install 被拒绝或失败）\n",
            "(missing/unusable is not an error: doctor exits 0 unless --install is refused or fails)\n",
        )
    )


def _json_report(
    facts: HostFacts, rows: list[Row], sizing: Sizing, pkgs: list[str], apt_argv: list[str]
) -> str:
    doc = {
        "labkit_version": __version__,
        "facts": facts.to_dict(),
        "rows": [r.to_payload() for r in rows],
        "sizing": sizing.to_payload(),
        "install": {"packages": pkgs, "command": ("sudo " + shlex.join(apt_argv)) if pkgs else ""},
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def main(
    *,
    json_output: bool = False,
    install: bool = False,
    yes: bool = False,
    runner: Any = None,
    facts: HostFacts | None = None,
    is_root: bool | None = None,
    out: TextIO | None = None,
    stdin: TextIO | None = None,
    width: int | None = None,
) -> int:
    """Print the doctor report; with ``install`` install the missing apt pieces. Returns the exit status.

    ``install`` installs the missing apt pieces the course needs (``apt-get install -y
    --no-install-recommends ...``) through the runner: only as root, after a y/N question unless
    ``yes``. It never installs torch, GPU drivers, snaps or third-party repositories.

    ``runner``, ``facts``, ``is_root``, ``out`` and ``stdin`` exist for tests and embedding (e.g. a
    notebook cell); by default the real host is probed and ``os.geteuid()`` decides root.
    """
    from labkit.steps.host import collect_host_facts
    from labkit.steps.runner import default_runner

    out = out or sys.stdout
    runner = runner or default_runner()
    if facts is None:
        facts = collect_host_facts(runner)
    root = facts.is_root if is_root is None else is_root
    rows = build_rows(facts)
    if install and root:
        # Ask apt only right before installing: on hosts without apt's binary cache (this course's cloud
        # images) every apt-cache call rebuilds it, ~1.5 s, too slow for a plain report.
        rows = build_rows(facts, _apt_candidates(runner, install_packages(rows)))
    sizing = advise(facts)
    pkgs = install_packages(rows)
    apt_argv = [*_APT_INSTALL, *pkgs]
    if json_output:
        out.write(_json_report(facts, rows, sizing, pkgs, apt_argv))
    else:
        _write_text_report(out, facts, rows, sizing, apt_argv, width)
    if not install:
        return 0
    log = sys.stderr if json_output else out
    return _install(pkgs, apt_argv, root=root, yes=yes, runner=runner, log=log, stdin=stdin or sys.stdin)


def _install(
    pkgs: list[str], apt_argv: list[str], *, root: bool, yes: bool, runner: Any, log: TextIO, stdin: TextIO
) -> int:
    if not pkgs:
        log.write(tr("没有需要用 apt 安装的部分。\n", "nothing to install with apt.\n"))
        return 0
    if not root:
        log.write(
            tr(
                "--install 需要 root。请运行：\n  sudo {cmd}\n",
                "--install needs root. Run:\n  sudo {cmd}\n",
                cmd=shlex.join(apt_argv),
            )
        )
        return EXIT_REFUSED
    if not yes:
        log.write(
            tr("将运行：{cmd}\n继续？[y/N] ", "will run: {cmd}\nproceed? [y/N] ", cmd=shlex.join(apt_argv))
        )
        log.flush()
        answer = stdin.readline().strip().lower()
        if answer not in ("y", "yes", "是"):
            log.write(tr("已取消。\n", "cancelled.\n"))
            return EXIT_REFUSED

    def echo(stream: str, line: str) -> None:
        log.write(line + "\n")

    try:
        runner.run(apt_argv, timeout=1800, on_line=echo, env={"DEBIAN_FRONTEND": "noninteractive"})
    except CommandFailed as exc:
        log.write(
            tr(
                "apt-get 失败（退出码 {rc}）。若提示找不到软件包，先运行 apt-get update。\n",
                "apt-get failed (exit {rc}). If a package was not found, run apt-get update first.\n",
                rc=exc.returncode,
            )
        )
        return EXIT_APT_FAILED
    except LabkitError as exc:
        log.write(f"{exc}\n")
        return EXIT_APT_FAILED
    log.write(tr("安装完成：{p}\n", "installed: {p}\n", p=" ".join(pkgs)))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", dest="json_output", action="store_true", help="print facts and rows as JSON"
    )
    parser.add_argument(
        "--install",
        action="store_true",
        help="apt-get install the missing course packages (root only; never torch or GPU drivers)",
    )
    parser.add_argument("-y", "--yes", action="store_true", help="with --install: do not ask")
    parser.epilog = (
        "exit status: 0 report printed (missing parts are not an error); 1 --install refused; 3 apt failed"
    )


def cli(args: argparse.Namespace) -> int:
    return main(json_output=args.json_output, install=args.install, yes=args.yes)


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="labkit doctor")
    add_arguments(parser)
    sys.exit(cli(parser.parse_args()))
