"""``labkit guest``: prepare and boot the tiny aarch64 test guest, and build ``efi.img``, from a shell.

The same steps the chapter 1 notebook runs, for a terminal (or a CI job): ``prepare`` fetches the
arm64 kernel and BusyBox and builds the initramfs, ``boot`` boots it under TCG printing every
console line as it arrives, ``efi`` writes the 64 MiB ``efi.img``. Exit status 0 means the check
passed. Imports of the step modules happen inside :func:`main` so ``labkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

__all__ = ["add_arguments", "cli", "main"]

_ACTIONS = ("prepare", "boot", "efi")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="guest_action", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("prepare", help="download the arm64 kernel + static BusyBox and build initrd.gz")
    p.add_argument(
        "--cache-dir", help="where the assets live (default $LABKIT_CACHE/guest or ~/.cache/labkit/guest)"
    )
    p.add_argument("--overwrite", action="store_true", help="download again even if valid assets are cached")
    p.add_argument("--mirror", help="arm64 package mirror URL (default: derived from the host's apt sources)")

    b = sub.add_parser("boot", help="boot the tiny guest with qemu-system-aarch64 and show its console")
    b.add_argument("--cache-dir", help="where `labkit guest prepare` put the assets")
    b.add_argument("--kernel", help="kernel Image (default: the prepared one)")
    b.add_argument("--initrd", help="initramfs (default: the prepared one)")
    b.add_argument("--cpu", default="max", help="guest CPU model (max, cortex-a57, ...); default max")
    b.add_argument(
        "--no-pauth-impdef",
        dest="pauth_impdef",
        action="store_false",
        help="use the architected (slow) pointer-authentication algorithm with -cpu max",
    )
    b.add_argument("--memory", default="512M", help="guest memory, e.g. 512M (default)")
    b.add_argument("--smp", type=int, default=1, help="guest CPUs (default 1)")
    b.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the guest (default 60)")
    b.add_argument("--efi", help="boot through this efi.img (UEFI firmware as pflash) before the kernel")
    b.add_argument("--append", default="", help="extra kernel command-line arguments")
    b.add_argument("--quiet", action="store_true", help="do not print the console, only the result")

    e = sub.add_parser("efi", help="write efi.img: the aarch64 UEFI firmware padded to 64 MiB")
    e.add_argument("--dest", default="efi.img", help="file to write (default efi.img)")
    e.add_argument("--firmware", help="firmware file (default: QEMU_EFI.fd from qemu-efi-aarch64)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing file (a backup is kept)")

    for s in (p, b, e):
        s.add_argument("--plan", dest="plan_only", action="store_true", help="only show what would run")


def cli(args: argparse.Namespace) -> int:
    opts: dict[str, Any] = {
        k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("verb", "guest_action")
    }
    return main(action=args.guest_action, **opts)


def _make_step(action: str, opts: dict[str, Any]) -> Any:
    """The step behind one action, built from the parsed options (raises ``InvalidField``)."""
    if action == "prepare":
        from labkit.steps.guest import PrepareTinyGuest

        return PrepareTinyGuest(
            cache_dir=opts["cache_dir"], overwrite=opts["overwrite"], mirror=opts["mirror"]
        )
    if action == "boot":
        from labkit.steps.guest import BootGuest

        boot_opts = (
            "kernel",
            "initrd",
            "cpu",
            "pauth_impdef",
            "memory",
            "smp",
            "timeout",
            "efi",
            "cache_dir",
        )
        return BootGuest(**{k: opts[k] for k in boot_opts}, extra_append=opts["append"])
    from labkit.steps.firmware import BuildEfiImage

    return BuildEfiImage(dest=opts["dest"], firmware=opts["firmware"], overwrite=opts["overwrite"])


def _print_result(result: Any, action: str, *, quiet: bool, stream: TextIO) -> None:
    from labkit.i18n import tr

    print(result, file=stream)
    for key in _SUMMARY.get(action, ()):
        if result.evidence.get(key) not in (None, "", []):
            print(f"  {key}: {result.evidence[key]}", file=stream)
    if not result.ok and result.evidence.get("console_tail") and quiet:
        print(tr("最后的控制台输出：", "last console lines:"), file=stream)
        for line in result.evidence["console_tail"]:
            print("  " + line, file=stream)


def main(
    *,
    action: str,
    cache_dir: str | None = None,
    overwrite: bool = False,
    mirror: str | None = None,
    kernel: str | None = None,
    initrd: str | None = None,
    cpu: str = "max",
    pauth_impdef: bool = True,
    memory: str = "512M",
    smp: int = 1,
    timeout: float = 60.0,
    efi: str | None = None,
    append: str = "",
    dest: str = "efi.img",
    firmware: str | None = None,
    quiet: bool = False,
    plan_only: bool = False,
    out: TextIO | None = None,
) -> int:
    """Run one ``labkit guest`` action; returns the exit status (0 = check passed / plan shown)."""
    from labkit.errors import InvalidField

    opts = dict(locals())
    stream = out or sys.stdout
    if action not in _ACTIONS:
        raise InvalidField("action", action, "is not a guest action", f"use one of {', '.join(_ACTIONS)}")
    try:
        step = _make_step(action, opts)
    except InvalidField as exc:
        print(f"labkit guest {action}: {exc}", file=sys.stderr)
        return 2

    def on_line(name: str, line: str) -> None:
        if quiet and name != "info":
            return
        prefix = "# " if name == "info" else ""
        print(prefix + line, file=stream, flush=True)

    if plan_only:
        result = step.execute("plan")
        if result.status == "skipped":  # planning succeeded; otherwise the result says what is wrong
            print(step.plan(), file=stream)
        print(result, file=stream)
        return 0 if result.status == "skipped" else 1

    result = step.execute("live", on_line=on_line)
    _print_result(result, action, quiet=quiet, stream=stream)
    return 0 if result.ok else 1


#: Evidence keys worth a line in the terminal after each action.
_SUMMARY: dict[str, tuple[str, ...]] = {
    "prepare": ("cache_dir", "downloaded", "kernel_package", "kernel_version", "busybox_version", "mirror"),
    "boot": ("argv", "time_to_marker_s", "uname_m", "uname_r", "qemu_exit", "install", "fix"),
    "efi": ("dest", "firmware", "size", "sha256", "aavmf_code_identical", "how"),
}
