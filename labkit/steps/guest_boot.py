"""Chapter 1: boot the tiny aarch64 guest headless under TCG and watch its serial console.

:class:`BootGuest` runs the one ``qemu-system-aarch64`` line of :func:`labkit.logic.guest.boot_argv`
(the files come from :class:`labkit.steps.guest.PrepareTinyGuest`), streams every console line to
the notebook as it arrives, stops QEMU on cancel or timeout, and checks that the guest reached
userspace and reported ``uname -m`` = ``aarch64``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import time
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import Cancelled, InvalidField, LabkitError
from labkit.findings import Finding
from labkit.i18n import api_note, tr
from labkit.logic import guest as g
from labkit.logic.firmware import pflash_size_error
from labkit.logic.host import HostFacts
from labkit.logic.qemu_output import qemu_error_line
from labkit.logic.qemu_rules import machine_cpu_findings, size_findings
from labkit.logic.qemu_spec import memory_bytes
from labkit.logic.text import strip_ansi
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.guest_assets import ASSET_NAMES, default_cache_dir
from labkit.steps.host import ContextRunner, collect_host_facts
from labkit.steps.runner import Process

__all__ = ["BootGuest"]


def _refuse_errors(found: list[Finding], values: dict[str, object]) -> list[Finding]:
    """Raise the first error finding as :class:`InvalidField` (QEMU never starts); the rest."""
    for f in found:
        if f.severity == "error":
            raise InvalidField(f.field, values.get(f.field), f.message, f.fix)
    return found


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
        host: HostFacts | None = None,
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
        #: Facts to judge memory and vCPUs against before QEMU starts (the panel probes them once);
        #: without them ``run`` reads them.
        self.host = host
        self.console: list[str] = []
        self._proc: Process | None = None

    def spec(self) -> g.BootSpec:
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)) or self.timeout <= 0:
            raise InvalidField(
                "timeout",
                self.timeout,
                tr("不是正的秒数", "is not a positive number of seconds"),
                tr("例如 60", "e.g. 60"),
            )
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

    def findings(self, host: HostFacts | None) -> list[Finding]:
        """What would stop this boot, said before QEMU starts: the ``virt`` board's vCPU cap (GICv2,
        no GIC choice here) and, with ``host``, the sizing policy's memory and core rules."""
        spec = self.spec()
        found = machine_cpu_findings("aarch64", "virt", spec.smp, gic_settable=False)
        if host is not None:
            found += size_findings(host, memory_bytes(spec.memory), spec.smp, tcg=True)
        return _refuse_errors(found, {"smp": spec.smp, "memory": spec.memory})

    # -- hooks -----------------------------------------------------------------------------
    def plan(self) -> Plan:
        spec = self.spec()
        warnings = [str(f) for f in self.findings(self.host)]
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
            notes=notes + warnings,
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
                "客户机文件不存在：{m}；先运行上面的「准备最小 aarch64 客户机」",
                "guest assets missing: {m}; run “Prepare the tiny aarch64 guest” above first",
                m=", ".join(missing),
            ) + api_note("PrepareTinyGuest, labkit guest prepare")
        if self.efi and not os.path.isfile(self.efi):
            return tr(
                "efi.img 不存在：{e}；先运行上面的「制作 efi.img」",
                "{e} does not exist; run “Build efi.img” above first",
                e=self.efi,
            ) + api_note("BuildEfiImage, labkit guest efi")
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        argv = self.argv()
        if self.host is None:  # judged before QEMU starts, against this host
            self.findings(collect_host_facts(ContextRunner(ctx), probe_kvm=False, tools=()))
        self.console = []
        stderr: list[str] = []
        t0 = time.monotonic()
        deadline = t0 + float(self.timeout)
        marker_at: float | None = None
        timed_out = stopped = False
        proc = self._proc = ctx.start(argv)

        def handle(stream: str, raw: str) -> None:
            nonlocal marker_at
            line = strip_ansi(raw).rstrip()
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
            said = qemu_error_line("\n".join(evidence.get("stderr_tail") or []))
            if said:
                ev["qemu_error"] = said
                why += tr("。QEMU 的原话：{q}", ". QEMU said: {q}", q=said)
            size = pflash_size_error("\n".join(evidence.get("stderr_tail") or []))
            if size:
                why += tr(
                    "；pflash 需要 {r} 字节的文件，实际 {p} 字节：用「制作 efi.img」补齐到 64 MiB",
                    "; pflash needs a {r}-byte file, got {p} bytes: pad it to 64 MiB with “Build efi.img”",
                    r=size[0],
                    p=size[1],
                ) + api_note("BuildEfiImage")
        return CheckResult.failed(self.check_id, why, **ev)

    def cleanup(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(LabkitError, OSError):
                proc.stop()
