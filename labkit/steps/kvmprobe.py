"""A real KVM usability test: create a VM, run a few guest instructions, watch them execute.

Why a test and not a look at ``/dev/kvm``: on the course's cloud machines the device node exists
(a paravirtual ``kvm_pvm`` backend, no ``vmx``/``svm`` CPU flag) but ``qemu -accel kvm`` fails with
"KVM internal error" or hangs. The only honest answer is to ask the kernel to run guest code.

This is the tiny KVM client of LWN's "Using the KVM API" (open ``/dev/kvm``, check the API version,
create a VM and one vCPU, map guest memory, run) written with ``fcntl.ioctl``, ``mmap`` and
``ctypes`` so it needs no compiler and no extra package. The guest code of each architecture is at
:func:`_run_test_code`; the separate probe process and its JSON line at :func:`run_kvm_probe`.
The child side needs nothing from labkit beyond this module (the parent-side imports are lazy).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import mmap
import os
import platform
import signal
import struct
import sys
from typing import Any

__all__ = [
    "KVM_API_VERSION",
    "PROBE_ARGV_TAIL",
    "ioc",
    "ioctl_numbers",
    "kvm_probe_argv",
    "probe",
    "probe_argv",
    "run_kvm_probe",
]

KVM_API_VERSION = 12
KVM_DEVICE = "/dev/kvm"
#: Seconds the probe process may take before it is killed (a broken KVM can hang KVM_RUN).
KVM_TIMEOUT = 6.0
#: The probe is run as ``[sys.executable, *PROBE_ARGV_TAIL]``.
PROBE_ARGV_TAIL = ["-m", "labkit.steps.kvmprobe"]

# ---------------------------------------------------------------------------------------------
# ioctl numbers, computed the way <asm-generic/ioctl.h> does (valid on x86 and arm64, whose
# encoding is the generic one; powerpc/mips/sparc use other direction bits and are not targets).
# tests/test_host.py compares these with a C program compiled against <linux/kvm.h>.
# ---------------------------------------------------------------------------------------------
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2
_NRSHIFT, _TYPESHIFT, _SIZESHIFT, _DIRSHIFT = 0, 8, 16, 30


def ioc(direction: int, type_: int, nr: int, size: int) -> int:
    """``_IOC(dir, type, nr, size)`` from the kernel's generic ioctl encoding."""
    if not 0 <= size < (1 << 14):
        raise ValueError(f"ioctl argument size {size} does not fit in 14 bits")
    return (direction << _DIRSHIFT) | (size << _SIZESHIFT) | (type_ << _TYPESHIFT) | (nr << _NRSHIFT)


def _io(nr: int) -> int:
    return ioc(_IOC_NONE, KVMIO, nr, 0)


def _ior(nr: int, size: int) -> int:
    return ioc(_IOC_READ, KVMIO, nr, size)


def _iow(nr: int, size: int) -> int:
    return ioc(_IOC_WRITE, KVMIO, nr, size)


KVMIO = 0xAE
# struct sizes (x86_64 / arm64 UAPI)
_SIZEOF_USERSPACE_MEMORY_REGION = 32  # u32 slot, u32 flags, u64 gpa, u64 size, u64 uaddr
_SIZEOF_X86_REGS = 144  # 18 x u64: rax..r15, rip, rflags
_SIZEOF_X86_SREGS = 312  # 8 kvm_segment (24) + 2 kvm_dtable (16) + cr*/efer/apic_base + bitmap
_SIZEOF_ARM_VCPU_INIT = 32  # u32 target, u32 features[7]
_SIZEOF_ONE_REG = 16  # u64 id, u64 addr

KVM_GET_API_VERSION = _io(0x00)
KVM_CREATE_VM = _io(0x01)
KVM_CHECK_EXTENSION = _io(0x03)
KVM_GET_VCPU_MMAP_SIZE = _io(0x04)
KVM_CREATE_VCPU = _io(0x41)
KVM_SET_USER_MEMORY_REGION = _iow(0x46, _SIZEOF_USERSPACE_MEMORY_REGION)
KVM_RUN = _io(0x80)
KVM_GET_REGS = _ior(0x81, _SIZEOF_X86_REGS)
KVM_SET_REGS = _iow(0x82, _SIZEOF_X86_REGS)
KVM_GET_SREGS = _ior(0x83, _SIZEOF_X86_SREGS)
KVM_SET_SREGS = _iow(0x84, _SIZEOF_X86_SREGS)
KVM_SET_ONE_REG = _iow(0xAC, _SIZEOF_ONE_REG)
KVM_ARM_VCPU_INIT = _iow(0xAE, _SIZEOF_ARM_VCPU_INIT)
KVM_ARM_PREFERRED_TARGET = _ior(0xAF, _SIZEOF_ARM_VCPU_INIT)

KVM_CAP_USER_MEMORY = 3

# struct kvm_run: exit_reason (u32) at offset 8, the exit union at offset 32.
_RUN_EXIT_REASON = 8
_RUN_UNION = 32
EXIT_REASONS: dict[int, str] = {
    0: "KVM_EXIT_UNKNOWN",
    1: "KVM_EXIT_EXCEPTION",
    2: "KVM_EXIT_IO",
    3: "KVM_EXIT_HYPERCALL",
    4: "KVM_EXIT_DEBUG",
    5: "KVM_EXIT_HLT",
    6: "KVM_EXIT_MMIO",
    7: "KVM_EXIT_IRQ_WINDOW_OPEN",
    8: "KVM_EXIT_SHUTDOWN",
    9: "KVM_EXIT_FAIL_ENTRY",
    10: "KVM_EXIT_INTR",
    17: "KVM_EXIT_INTERNAL_ERROR",
    24: "KVM_EXIT_SYSTEM_EVENT",
    28: "KVM_EXIT_ARM_NISV",
}
INTERNAL_SUBERRORS: dict[int, str] = {
    1: "KVM_INTERNAL_ERROR_EMULATION: KVM's instruction emulator could not handle guest code",
    2: "KVM_INTERNAL_ERROR_SIMUL_EX",
    3: "KVM_INTERNAL_ERROR_DELIVERY_EV",
    4: "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON",
}
KVM_EXIT_IO, KVM_EXIT_HLT, KVM_EXIT_MMIO = 2, 5, 6
KVM_EXIT_FAIL_ENTRY, KVM_EXIT_INTR, KVM_EXIT_INTERNAL_ERROR = 9, 10, 17
KVM_EXIT_IO_OUT = 1

# arm64 core register ids: KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / 4);
# pc sits after regs[31] and sp in struct user_pt_regs, i.e. at byte 256 -> index 0x40.
_ARM64_REG_PC = 0x6000000000000000 | 0x0030000000000000 | 0x0010_0000 | (256 // 4)

_X86_CODE_GPA = 0x1000
#: The classic LWN guest, ``mov al,42; out 0x10,al; hlt`` (``b0 2a e6 10 f4``), routed through
#: SSE2 registers. Why SSE2: a paravirtual backend such as kvm_pvm does not run real-mode code on
#: the CPU at all, it feeds it to KVM's instruction emulator, which happily "runs" mov/out/hlt but
#: has no ``por``/``pxor`` and stops with KVM_EXIT_INTERNAL_ERROR (emulation failure) - exactly
#: what QEMU's firmware then hits. SSE2 is baseline x86-64, so on a host with working VMX/SVM these
#: instructions simply execute.
_X86_CODE = bytes(
    [
        0xB0, 0x2A,              # mov al, 42
        0x66, 0x0F, 0x6E, 0xC0,  # movd xmm0, eax
        0x66, 0x0F, 0xEF, 0xC9,  # pxor xmm1, xmm1
        0x66, 0x0F, 0xEB, 0xC8,  # por  xmm1, xmm0
        0x31, 0xC0,              # xor ax, ax
        0x66, 0x0F, 0x7E, 0xC8,  # movd eax, xmm1
        0xE6, 0x10,              # out 0x10, al
        0xF4,                    # hlt
    ]
)  # fmt: skip
_X86_CR0_MP, _X86_CR0_EM, _X86_CR0_TS = 1 << 1, 1 << 2, 1 << 3
_X86_CR4_OSFXSR, _X86_CR4_OSXMMEXCPT = 1 << 9, 1 << 10
_SREGS_CR0, _SREGS_CR4 = 224, 248  # offsets in struct kvm_sregs (checked against the header)
_X86_PORT = 0x10
_MAGIC = 42

_ARM_CODE_GPA = 0x10000
_ARM_MMIO = 0x1000
_ARM_CODE = struct.pack(
    "<4I",
    0xD2800540,  # movz x0, #42
    0xD2820001,  # movz x1, #0x1000
    0x39000020,  # strb w0, [x1]
    0x14000000,  # b .
)


def ioctl_numbers() -> dict[str, int]:
    """The request numbers this probe uses, for the header cross-check in the tests."""
    return {
        name: value
        for name, value in globals().items()
        if name.startswith("KVM_") and name.isupper() and isinstance(value, int) and value > 0xFF
    }


# ---------------------------------------------------------------------------------------------
# The child side
# ---------------------------------------------------------------------------------------------
class _Stop(Exception):
    """Ends the probe at a stage with a result."""

    def __init__(self, stage: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.extra = extra


class _Alarm(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Alarm


def _oserror(stage: str, call: str, exc: OSError) -> _Stop:
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return _Stop(stage, f"{call} failed: {code} ({os.strerror(exc.errno or 0)})", errno=code)


def _ioctl(fd: int, request: int, arg: Any = 0, *, stage: str, call: str) -> int:
    import fcntl

    try:
        if isinstance(arg, bytearray):
            return fcntl.ioctl(fd, request, arg, True)
        return fcntl.ioctl(fd, request, arg)  # type: ignore[return-value]
    except OSError as exc:
        raise _oserror(stage, call, exc) from exc


def _run_once(vcpu: int, run: mmap.mmap) -> tuple[int, str]:
    try:
        _ioctl(vcpu, KVM_RUN, stage="run", call="KVM_RUN")
    except _Stop as stop:
        if stop.extra.get("errno") == "EINTR":
            raise _Alarm from None
        raise
    code = struct.unpack_from("=I", run, _RUN_EXIT_REASON)[0]
    return code, EXIT_REASONS.get(code, f"exit reason {code}")


def _unexpected_exit(code: int, name: str, run: mmap.mmap) -> _Stop:
    extra: dict[str, Any] = {"exit_reason": name}
    detail = name
    if code == KVM_EXIT_FAIL_ENTRY:
        hw = struct.unpack_from("=Q", run, _RUN_UNION)[0]
        extra["hardware_entry_failure_reason"] = hw
        detail += f" (hardware entry failure reason {hw:#x})"
    elif code == KVM_EXIT_INTERNAL_ERROR:
        sub, ndata = struct.unpack_from("=II", run, _RUN_UNION)
        extra["suberror"] = sub
        extra["suberror_name"] = INTERNAL_SUBERRORS.get(sub, str(sub))
        detail += f" ({extra['suberror_name']})"
        if ndata:
            extra["data"] = list(struct.unpack_from(f"={min(ndata, 16)}Q", run, _RUN_UNION + 8))
    return _Stop("run", f"KVM_RUN ended with {detail} instead of running the test code", **extra)


def _x86_guest(vcpu: int, run: mmap.mmap) -> dict[str, Any]:
    sregs = bytearray(_SIZEOF_X86_SREGS)
    _ioctl(vcpu, KVM_GET_SREGS, sregs, stage="sregs", call="KVM_GET_SREGS")
    struct.pack_into("=Q", sregs, 0, 0)  # cs.base   (kvm_segment at offset 0: u64 base)
    struct.pack_into("=H", sregs, 12, 0)  # cs.selector (after u64 base, u32 limit)
    cr0, cr4 = struct.unpack_from("=Q", sregs, _SREGS_CR0)[0], struct.unpack_from("=Q", sregs, _SREGS_CR4)[0]
    cr0 = (cr0 | _X86_CR0_MP) & ~(_X86_CR0_EM | _X86_CR0_TS)  # SSE usable: no x87 emulation, no lazy FPU
    struct.pack_into("=Q", sregs, _SREGS_CR0, cr0)
    struct.pack_into("=Q", sregs, _SREGS_CR4, cr4 | _X86_CR4_OSFXSR | _X86_CR4_OSXMMEXCPT)
    _ioctl(vcpu, KVM_SET_SREGS, bytes(sregs), stage="sregs", call="KVM_SET_SREGS")
    regs = bytearray(_SIZEOF_X86_REGS)
    struct.pack_into("=QQ", regs, 128, _X86_CODE_GPA, 0x2)  # rip, rflags (bit 1 is reserved-1)
    _ioctl(vcpu, KVM_SET_REGS, bytes(regs), stage="regs", call="KVM_SET_REGS")

    seen: list[str] = []
    value: int | None = None
    for _ in range(16):
        code, name = _run_once(vcpu, run)
        seen.append(name)
        if code == KVM_EXIT_IO:
            direction, size, port, _count, offset = struct.unpack_from("=BBHIQ", run, _RUN_UNION)
            if direction == KVM_EXIT_IO_OUT and port == _X86_PORT and size == 1:
                value = run[offset]
                continue
            raise _Stop("run", f"unexpected I/O exit on port {port:#x}", exits=seen)
        if code == KVM_EXIT_HLT:
            if value == _MAGIC:
                return {"exits": seen, "value": value}
            raise _Stop("run", f"guest halted but wrote {value!r} instead of {_MAGIC}", exits=seen)
        if code == KVM_EXIT_INTR:
            continue
        stop = _unexpected_exit(code, name, run)
        stop.extra["exits"] = seen
        raise stop
    raise _Stop("run", "guest did not reach HLT after 16 exits", exits=seen)


def _arm_guest(vm: int, vcpu: int, run: mmap.mmap) -> dict[str, Any]:
    init = bytearray(_SIZEOF_ARM_VCPU_INIT)
    _ioctl(vm, KVM_ARM_PREFERRED_TARGET, init, stage="vcpu_init", call="KVM_ARM_PREFERRED_TARGET")
    _ioctl(vcpu, KVM_ARM_VCPU_INIT, bytes(init), stage="vcpu_init", call="KVM_ARM_VCPU_INIT")
    pc = ctypes.c_uint64(_ARM_CODE_GPA)
    one_reg = struct.pack("=QQ", _ARM64_REG_PC, ctypes.addressof(pc))
    _ioctl(vcpu, KVM_SET_ONE_REG, one_reg, stage="regs", call="KVM_SET_ONE_REG(pc)")
    seen: list[str] = []
    for _ in range(16):
        code, name = _run_once(vcpu, run)
        seen.append(name)
        if code == KVM_EXIT_MMIO:
            addr, data, length, is_write = struct.unpack_from("=Q8sIB", run, _RUN_UNION)
            if addr == _ARM_MMIO and is_write and length >= 1 and data[0] == _MAGIC:
                return {"exits": seen, "value": data[0]}
            raise _Stop("run", f"unexpected MMIO exit at {addr:#x}", exits=seen)
        if code == KVM_EXIT_INTR:
            continue
        stop = _unexpected_exit(code, name, run)
        stop.extra["exits"] = seen
        raise stop
    raise _Stop("run", "guest did not write to the test MMIO address after 16 exits", exits=seen)


def _open_kvm(device: str, out: dict[str, Any], fds: list[int]) -> int:
    """Open the device and check the API: stages open and api_version."""
    try:
        kvm = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _Stop("open", f"{device} does not exist (kvm module not loaded)") from None
    except PermissionError:
        raise _Stop("open", f"permission denied opening {device} (add the user to group kvm)") from None
    except OSError as exc:
        raise _oserror("open", f"open {device}", exc) from exc
    fds.append(kvm)
    out["stage"] = "api_version"
    api = _ioctl(kvm, KVM_GET_API_VERSION, stage="api_version", call="KVM_GET_API_VERSION")
    out["api_version"] = api
    if api != KVM_API_VERSION:
        raise _Stop("api_version", f"KVM API version {api}, expected {KVM_API_VERSION}")
    if not _ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY, stage="api_version", call="CHECK"):
        raise _Stop("api_version", "KVM lacks KVM_CAP_USER_MEMORY")
    return kvm


def _create_machine(
    kvm: int, arch: str, out: dict[str, Any], fds: list[int], maps: list[mmap.mmap], keep: list[Any]
) -> tuple[int, int, mmap.mmap]:
    """A VM with the test code in its memory and one vCPU: stages create_vm … mmap_run."""
    out["stage"] = "create_vm"
    vm = _ioctl(kvm, KVM_CREATE_VM, 0, stage="create_vm", call="KVM_CREATE_VM")
    fds.append(vm)

    out["stage"] = "memory"
    gpa, code = (_ARM_CODE_GPA, _ARM_CODE) if arch in ("aarch64", "arm64") else (_X86_CODE_GPA, _X86_CODE)
    size = max(0x10000, mmap.PAGESIZE)
    mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    maps.append(mem)
    mem[: len(code)] = code
    view = (ctypes.c_char * size).from_buffer(mem)
    keep.append(view)
    region = struct.pack("=IIQQQ", 0, 0, gpa, size, ctypes.addressof(view))
    _ioctl(vm, KVM_SET_USER_MEMORY_REGION, region, stage="memory", call="KVM_SET_USER_MEMORY_REGION")

    out["stage"] = "create_vcpu"
    vcpu = _ioctl(vm, KVM_CREATE_VCPU, 0, stage="create_vcpu", call="KVM_CREATE_VCPU")
    fds.append(vcpu)

    out["stage"] = "mmap_run"
    run_size = _ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, stage="mmap_run", call="KVM_GET_VCPU_MMAP_SIZE")
    try:
        run = mmap.mmap(vcpu, run_size, flags=mmap.MAP_SHARED)
    except OSError as exc:
        raise _oserror("mmap_run", "mmap(kvm_run)", exc) from exc
    maps.append(run)
    return vm, vcpu, run


def _run_test_code(
    arch: str, vm: int, vcpu: int, run: mmap.mmap, timeout: float, out: dict[str, Any]
) -> None:
    """Run the guest under an interval timer; ``out`` says usable, or why it is only partial.

    * x86_64: real mode at ``0x1000`` running ``mov al,42; out 0x10,al; hlt`` (see ``_X86_CODE``).
      The proof is a ``KVM_EXIT_IO`` on port 0x10 carrying 42, followed by ``KVM_EXIT_HLT``.
    * aarch64: ``KVM_ARM_PREFERRED_TARGET`` + ``KVM_ARM_VCPU_INIT``, PC set with ``KVM_SET_ONE_REG``,
      code ``mov x0,#42; mov x1,#0x1000; strb w0,[x1]``; the proof is a ``KVM_EXIT_MMIO`` write of
      42 to 0x1000.
    * other architectures: VM + vCPU creation only, reported as a *partial* check.
    """
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        if arch == "x86_64":
            out["stage"] = "sregs"
            out.update(_x86_guest(vcpu, run))
        elif arch in ("aarch64", "arm64"):
            out["stage"] = "vcpu_init"
            out.update(_arm_guest(vm, vcpu, run))
        else:
            out.update(
                usable=False,
                check="partial",
                reason=f"VM and vCPU created, but no guest-code test for {arch}: not proven usable",
            )
            return
    except _Alarm:
        raise _Stop("run", f"KVM_RUN did not return within {timeout:g} s (hung guest entry)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    out.update(usable=True, stage="done", reason="guest code ran under KVM and produced the expected exit")


def probe(timeout: float = 2.0, device: str = KVM_DEVICE) -> dict[str, Any]:
    """Run the test in this process and return ``{usable, stage, reason, ...}``; never raises.

    ``stage`` is the last stage reached: open, api_version, create_vm, memory, create_vcpu,
    mmap_run, sregs/regs/vcpu_init, run, done. ``timeout`` bounds ``KVM_RUN`` with an interval
    timer (the caller's process timeout is the second line of defence).
    """
    arch = platform.machine()
    out: dict[str, Any] = {"usable": False, "stage": "open", "reason": "", "arch": arch, "check": "full"}
    fds: list[int] = []
    maps: list[mmap.mmap] = []
    keep: list[Any] = []
    old = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        kvm = _open_kvm(device, out, fds)
        vm, vcpu, run = _create_machine(kvm, arch, out, fds, maps, keep)
        _run_test_code(arch, vm, vcpu, run, timeout, out)
    except _Stop as stop:
        out.update(stage=stop.stage, reason=stop.reason, usable=False, **stop.extra)
    except _Alarm:
        out.update(usable=False, reason=f"KVM did not answer within {timeout:g} s")
    except Exception as exc:  # never crash: the parent needs a JSON line
        out.update(usable=False, reason=f"probe error: {type(exc).__name__}: {exc}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        keep.clear()
        for m in maps:
            with contextlib.suppress(BufferError):
                m.close()
        for fd in reversed(fds):
            os.close(fd)
    return out


def main(argv: list[str] | None = None) -> int:
    """Child entry point: print one JSON line. Exit 0 when usable, 1 when not (the JSON says why)."""
    args = list(sys.argv[1:] if argv is None else argv)
    timeout = float(args[0]) if args else 2.0
    result = probe(timeout)
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0 if result["usable"] else 1


# ---------------------------------------------------------------------------------------------
# The parent side
# ---------------------------------------------------------------------------------------------
def probe_argv(inner_timeout: float = 2.0) -> list[str]:
    return [sys.executable, *PROBE_ARGV_TAIL, f"{inner_timeout:g}"]


def kvm_probe_argv(timeout: float = KVM_TIMEOUT) -> list[str]:
    """The argv :func:`run_kvm_probe` runs with ``timeout``: the child gets a third of it for
    ``KVM_RUN`` (plans show this exact line)."""
    return probe_argv(max(0.5, timeout / 3))


def run_kvm_probe(runner: Any = None, *, timeout: float = KVM_TIMEOUT) -> dict[str, Any]:
    """Run the probe as a separate process through ``runner``; always return a result dict.

    A broken KVM can hang in ``KVM_RUN``, so the probe runs in a separate process
    (``python -m labkit.steps.kvmprobe``) started through the runner with a short timeout; inside,
    an interval timer interrupts ``KVM_RUN`` first. The child gets ``timeout / 3`` for ``KVM_RUN``;
    the runner kills it at ``timeout``. The child prints exactly one JSON line:
    ``{"usable": bool, "stage": str, "reason": str, ...}``.
    """
    from labkit.errors import CommandTimeout, LabkitError
    from labkit.steps.runner import default_runner

    runner = runner or default_runner()
    argv = kvm_probe_argv(timeout)
    try:
        done = runner.run(argv, timeout=timeout, check=False)
    except CommandTimeout:
        return {
            "usable": False,
            "stage": "run",
            "reason": f"the KVM probe process hung and was killed after {timeout:g} s",
        }
    except LabkitError as exc:
        return {"usable": False, "stage": "spawn", "reason": f"could not start the KVM probe: {exc}"}
    for line in reversed(done.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                break
            if isinstance(data, dict) and "usable" in data:
                data["usable"] = bool(data["usable"])
                data.setdefault("stage", "?")
                data.setdefault("reason", "")
                return data
            break
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {
        "usable": False,
        "stage": "crash",
        "reason": f"the KVM probe exited {done.returncode} without a result: {' / '.join(tail)}",
    }


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    sys.exit(main())
