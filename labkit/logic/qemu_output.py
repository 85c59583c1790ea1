"""Reading QEMU's answers: ``--version``, the ``help`` lists, and start-up errors with a fix.

Pure: each function gets the text a ``qemu-system-*`` command printed. :func:`explain_qemu_stderr`
turns the messages measured with QEMU 7.2 (``Property '<cpu>-arm-cpu.pauth-impdef' not found``,
``failed to find romfile "efi-virtio.rom"``, a pflash size mismatch, GICv2's 8-CPU cap, ...) into
:class:`~labkit.findings.Finding` items with a fix.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable

from labkit.findings import Finding
from labkit.i18n import tr
from labkit.logic.host import parse_qemu_version

__all__ = [
    "device_names_in",
    "explain_qemu_stderr",
    "help_findings",
    "parse_cpu_help",
    "parse_device_help",
    "parse_machine_help",
    "qemu_error_line",
    "qemu_version_tuple",
]


def qemu_version_tuple(text: str) -> tuple[int, int, int] | None:
    """``QEMU emulator version 7.2.22 (Debian ...)`` → ``(7, 2, 22)``; ``None`` if absent."""
    version = parse_qemu_version(text)
    if version is None:
        return None
    parts = [int(p) for p in version.split(".")] + [0]
    return parts[0], parts[1], parts[2]


def parse_machine_help(text: str) -> set[str]:
    """Machine type names from ``-machine help`` (first word of each line after the header)."""
    names = set()
    for line in (text or "").splitlines():
        if not line.strip() or line.startswith(("Supported machines", " ")):
            continue
        names.add(line.split()[0])
    return names


def parse_cpu_help(text: str) -> set[str]:
    """CPU model names from ``-cpu help`` (aarch64: one per line; x86: ``x86 <name> ...``)."""
    names = set()
    for line in (text or "").splitlines():
        words = line.split()
        if not words or line.rstrip().endswith(":"):
            continue
        if words[0] == "x86" and len(words) > 1:
            names.add(words[1])
        elif line.startswith(" ") or len(words) == 1:
            names.add(words[0])
    return names


def parse_device_help(text: str) -> set[str]:
    """Device names (and aliases) from ``-device help`` lines such as ``name "usb-kbd", bus usb-bus``."""
    names = set(re.findall(r'name "([^"]+)"', text or ""))
    names |= set(re.findall(r'alias "([^"]+)"', text or ""))
    return names


def device_names_in(argv: Iterable[str]) -> list[str]:
    """Device models an argv uses: every ``-device X,...`` plus the ``-nic ...,model=X``."""
    out: list[str] = []
    items = list(argv)
    for flag, value in itertools.pairwise(items):
        if flag in ("-device", "--device"):
            name = value.split(",", 1)[0]
        elif flag in ("-nic", "--nic"):
            m = re.search(r"(?:^|,)model=([^,]+)", value)
            if not m:
                continue
            name = m[1]
        else:
            continue
        if name not in out:
            out.append(name)
    return out


#: (pattern, field, code, explain(match) -> (message, fix)) for each start-up error QEMU prints.
_KNOWN_ERRORS: tuple[tuple[str, str, str, Callable[[re.Match[str]], tuple[str, str]]], ...] = (
    (
        r"Property '([\w.-]+)-arm-cpu\.pauth-impdef' not found",
        "cpu",
        "qemu.pauth_impdef",
        lambda m: (
            tr("CPU 型号 {c} 没有 pauth-impdef 属性", "CPU model {c} has no pauth-impdef property", c=m[1]),
            tr("用 cpu='max'，或设 pauth_impdef=False", "use cpu='max', or set pauth_impdef=False"),
        ),
    ),
    (
        r'failed to find romfile "([^"]+)"',
        "nic",
        "qemu.romfile",
        lambda m: (
            tr("找不到网卡启动 ROM {r}", "the network boot ROM {r} is missing", r=m[1]),
            tr(
                "sudo apt-get install ipxe-qemu，或设 nic_rom=False",
                "sudo apt-get install ipxe-qemu, or set nic_rom=False",
            ),
        ),
    ),
    (
        r"device requires (\d+) bytes, block backend provides (\d+) bytes",
        "efi",
        "qemu.pflash_size",
        lambda m: (
            tr(
                "UEFI 闪存需要 {a} 字节，文件只有 {b} 字节",
                "the UEFI flash needs {a} bytes, the file has {b}",
                a=m[1],
                b=m[2],
            ),
            tr(
                "用补零到 64 MiB 的 efi.img（labkit 的固件步骤会生成）",
                "use an efi.img zero-padded to 64 MiB (labkit's firmware step builds one)",
            ),
        ),
    ),
    (
        r"exceeds max CPUs supported by machine '([\w-]+)' \((\d+)\)",
        "smp",
        "qemu.max_cpus",
        lambda m: (
            tr("机器 {n} 最多 {c} 个 vCPU", "machine {n} supports at most {c} vCPUs", n=m[1], c=m[2]),
            tr("减少 smp，或 virt 机器设 gic_version='3'", "lower smp, or set gic_version='3' on virt"),
        ),
    ),
    (
        r"cannot set up guest memory",
        "memory",
        "qemu.guest_memory",
        lambda m: (
            tr("宿主机给不出这么多内存", "the host cannot provide that much memory"),
            tr("减小 memory", "lower memory"),
        ),
    ),
    (
        r"invalid accelerator (\w+)|Could not access KVM kernel module|failed to initialize kvm"
        r"|KVM internal error",
        "accel",
        "qemu.kvm",
        lambda m: (
            tr("KVM 加速不可用", "KVM acceleration is not available"),
            tr("用 accel='tcg'", "use accel='tcg'"),
        ),
    ),
    (
        r"unable to find CPU model '([^']+)'",
        "cpu",
        "qemu.cpu_model",
        lambda m: (
            tr("没有 CPU 型号 {c}", "there is no CPU model {c}", c=m[1]),
            tr("查看 -cpu help；TCG 下用 max", "see -cpu help; with TCG use max"),
        ),
    ),
    (
        r"'([^']+)' is not a valid device model name",
        "device",
        "qemu.device_model",
        lambda m: (
            tr("这个 QEMU 没有设备 {d}", "this QEMU has no device {d}", d=m[1]),
            tr("查看 -device help", "see -device help"),
        ),
    ),
    (
        r"Could not open '([^']+)': (.+)",
        "file",
        "qemu.open",
        lambda m: (
            tr("打不开 {p}：{e}", "cannot open {p}: {e}", p=m[1], e=m[2].strip()),
            tr("检查路径和权限", "check the path and permissions"),
        ),
    ),
    (
        r"Parameter '(\w+)' expects (.+)",
        "option",
        "qemu.option",
        lambda m: (
            tr("参数 {p} 的值不对：需要 {e}", "bad value for {p}: expects {e}", p=m[1], e=m[2].strip()),
            tr("改正该参数", "correct that option"),
        ),
    ),
)


def _harmless(line: str) -> bool:
    return "vgabios-ramfb.bin" in line or "module ui-ui-" in line


def qemu_error_line(stderr: str) -> str | None:
    """QEMU's own error line (``qemu-system-aarch64: cannot set up guest memory …``), or ``None``.

    The first ``qemu-*:`` line of ``stderr`` that is not a warning or one of the harmless notes
    (missing GUI modules, ``vgabios-ramfb.bin``): what a result message quotes, so the student reads
    QEMU's reason next to labkit's, not only an exit status.
    """
    for raw in (stderr or "").splitlines():
        line = raw.strip()
        if (
            re.match(r"qemu(-system-[\w-]+|-img|-io)?: ", line)
            and "warning:" not in line
            and not _harmless(line)
        ):
            return line
    return None


def explain_qemu_stderr(stderr: str) -> list[Finding]:
    """Turn QEMU's start-up errors into error findings with a fix.

    Known messages get a specific explanation; other ``qemu-system-*:`` lines are passed on as
    they are. Harmless warnings (missing GUI modules, ``vgabios-ramfb.bin``) are skipped.
    """
    found: list[Finding] = []
    seen: set[str] = set()
    for raw in (stderr or "").splitlines():
        line = raw.strip()
        if not line or _harmless(line):
            continue
        for pattern, known_field, known_code, explain in _KNOWN_ERRORS:
            m = re.search(pattern, line)
            if m:
                field_name, code = known_field, known_code
                message, fix = explain(m)
                break
        else:
            if not line.startswith("qemu-system-") or "warning:" in line:
                continue
            field_name, code, message, fix = "qemu", "qemu.other", line.split(": ", 1)[-1], ""
        if message not in seen:
            seen.add(message)
            found.append(Finding(field_name, "error", message, fix, code))
    return found


def help_findings(
    binary: str,
    *,
    machine: str | None,
    cpu: str,
    wanted_devices: Iterable[str],
    machines: set[str],
    cpus: set[str],
    devices: set[str],
) -> list[Finding]:
    """What the installed QEMU's ``help`` lists say is missing for this command."""
    found = []
    if machine is not None and machine not in machines:
        msg = tr("这个 QEMU 没有机器类型 {m}", "this QEMU has no machine type {m}", m=machine)
        found.append(("machine", msg))
    if cpu != "host" and cpu not in cpus:
        found.append(("cpu", tr("这个 QEMU 没有 CPU 型号 {c}", "this QEMU has no CPU model {c}", c=cpu)))
    found += [
        ("device", tr("这个 QEMU 没有设备 {d}", "this QEMU has no device {d}", d=d))
        for d in wanted_devices
        if d not in devices
    ]
    return [
        Finding(
            field, "error", msg, tr("查看 {h}", "see {h}", h=f"{binary} -{field} help"), f"{field}.unknown"
        )
        for field, msg in found
    ]
