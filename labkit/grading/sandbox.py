"""The jail ``labkit grade --rerun`` executes a submission in (Linux, run as root).

One jail per run of one submission's notebook; the grader (:mod:`labkit.grading.rerun`) starts it
as ``unshare --net --pid --mount --ipc --uts --fork --kill-child --mount-proc python -I -m
labkit.grading.sandbox TASK`` through labkit's one runner. Inside, still root, this module:

* brings up the loopback interface of the new, empty network namespace (the kernel talks to
  papermill over 127.0.0.1; nothing else is reachable: **no network**);
* mounts private tmpfs over ``/tmp``, ``/var/tmp`` and ``/dev/shm`` and binds back only this
  jail's own folders: other submissions' folders do not exist in its view, and nothing written
  there outlives the jail (the mount namespace is private);
* joins the memory cgroup the grader made for this jail (**memory limit**; cgroup v1 or v2
  where writable, else ``RLIMIT_AS`` as a weaker fallback), sets ``RLIMIT_CPU`` (**CPU time**
  per process), ``RLIMIT_NPROC`` (processes and threads of the jail's user: no fork bomb),
  ``RLIMIT_CORE`` 0 and ``PR_SET_NO_NEW_PRIVS`` (no setuid binary gives root back);
* drops to the jail's own user and group (a numeric uid of its own, no supplementary groups):
  it cannot write labkit, the virtual environment, the grader's files or another submission's
  folder (each is ``0700`` and owned by another uid); the grader's temp root is ``0711``, so
  sibling folders cannot be listed;
* runs the notebook with :func:`labkit.validate.main` (per-cell and per-notebook timeouts) with a
  clean environment (``HOME`` inside the jail, no variables from the grader).

This process is PID 1 of the jail's PID namespace: when it exits, or when ``unshare`` dies
(``--kill-child``), the kernel kills every process in the namespace, double-forked and
``setsid`` ones included; it exits by itself when the grader is gone (:func:`_lifeline`). The
grader then sweeps any process still owned by the jail's uid (:func:`sweep`) and removes the
cgroup. The wall-clock limit is the runner's timeout around ``unshare``.

Not covered: disk usage (``RLIMIT_FSIZE`` would refuse the course's sparse 120 GiB images), the
Docker engine (its socket is root; no jail gets it), KVM, a seccomp filter, symlinks the
student's run leaves in the work folder (the checks of step 2 follow them, as that jail's user).

Why not a Docker container per submission (as otter-grader does): it would add seccomp and its
own root file system, but needs an image holding this Python, labkit, papermill, QEMU and the
firmware (no registry here: built locally and kept in step with the grader's environment), and
the engine itself is root. For what a notebook can do as an unprivileged user, an own uid plus
these namespaces and limits give the same separation; the same :class:`Task` could run under
``docker run --network none --memory … --pids-limit … --read-only`` later.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["Limits", "Task", "jail_argv", "make_cgroup", "owners", "remove_cgroup", "sweep", "unavailable"]

#: argv prefix: new network, PID, mount, IPC and UTS namespaces; the child is PID 1 and is killed
#: with ``unshare``.
UNSHARE = ["--net", "--pid", "--mount", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc"]
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PR_SET_NO_NEW_PRIVS = 38
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND, _MS_REC = 1, 2, 4, 32, 4096, 16384
_TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


@dataclass(frozen=True)
class Limits:
    """What one jail may use: memory (bytes, the cgroup's), CPU seconds per process, processes."""

    memory_bytes: int = 4 << 30
    cpu_s: int = 900
    nproc: int = 512
    nofile: int = 4096


@dataclass(frozen=True)
class Task:
    """What the jail runs: ``notebook`` with :func:`labkit.validate.main`, as ``uid``.

    ``cwd`` is the kernel's working directory, ``home`` its ``HOME``, ``workdir`` the folder
    whose ``<notebook stem>`` sub-folder is the notebook's ``labkit_workdir``; the executed
    notebook goes to ``out_dir``, a JSON summary to ``result`` and the jail's own stdout/stderr
    to ``log``.
    """

    uid: int
    notebook: str
    cwd: str
    home: str
    workdir: str
    out_dir: str
    result: str
    log: str
    cell_timeout: float
    notebook_timeout: float
    lang: str | None = None
    fast_import: bool = False
    cgroup: str | None = None
    limits: Limits = Limits()
    #: The only folders of the grader's temp root the jail sees (bound back over its private /tmp).
    keep: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Task:
        data = json.loads(text)
        data["limits"] = Limits(**data["limits"])
        data["keep"] = tuple(data["keep"])
        return cls(**data)


# -- the grader's side ---------------------------------------------------------------------------
def unavailable() -> str | None:
    """Why no jail can be made here (``None`` when it can)."""
    from labkit.i18n import tr

    if not sys.platform.startswith("linux"):
        return tr("需要 Linux 的命名空间", "needs Linux namespaces")
    if os.geteuid() != 0:
        return tr(
            "需要 root 才能给每份作业单独的用户和命名空间",
            "needs root to give each submission its own user and namespaces",
        )
    if shutil.which("unshare") is None:
        return tr("需要 unshare（util-linux）", "needs unshare (util-linux)")
    return None


def jail_argv(task: Task) -> list[str]:
    """The command that runs ``task`` in a fresh jail."""
    unshare = shutil.which("unshare") or "unshare"
    return [unshare, *UNSHARE, "--", sys.executable, "-I", "-m", "labkit.grading.sandbox", task.to_json()]


def make_cgroup(memory_bytes: int) -> Path | None:
    """A fresh memory cgroup limited to ``memory_bytes`` (v1 ``memory`` hierarchy or the v2 root,
    whichever is writable), or ``None`` when neither is."""
    name = f"labkit-rerun-{uuid.uuid4().hex[:12]}"
    for root, limit in (
        (Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes"),
        (Path("/sys/fs/cgroup"), "memory.max"),
    ):
        if not (root / limit).exists() and not (root / "cgroup.procs").exists():
            continue
        path = root / name
        try:
            path.mkdir()
        except OSError:
            continue
        try:
            (path / limit).write_text(str(memory_bytes))
            return path
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
    return None


def remove_cgroup(path: Path | None) -> None:
    if path is None:
        return
    for _ in range(50):  # a killed task leaves the cgroup a moment later
        try:
            path.rmdir()
            return
        except OSError:
            time.sleep(0.1)


def owners(uids: Sequence[int]) -> list[Any]:
    """The processes (``psutil.Process``) whose real or effective uid is in ``uids``."""
    import psutil

    wanted = set(uids)
    found = []
    for proc in psutil.process_iter(["uids"]):
        ids = proc.info.get("uids")
        if ids is not None and {ids.real, ids.effective} & wanted:
            found.append(proc)
    return found


def sweep(uid: int) -> int:
    """Kill every process owned by ``uid`` (real or effective); returns how many there were."""
    import psutil

    found = owners([uid])
    for proc in found:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(found, timeout=5)
    return len(found)


# -- inside the jail -----------------------------------------------------------------------------
def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        import fcntl

        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def _mount(libc: Any, source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    args = [None if a is None else a.encode() for a in (source, target, fstype, data)]
    if libc.mount(args[0], args[1], args[2], flags, args[3]) != 0:
        raise OSError(ctypes.get_errno(), f"mount {source} on {target}")


def _masked() -> list[tuple[str, str]]:
    """(folder, tmpfs mode) to hide: the shared temp folders, and the grader's home when others
    cannot enter it (the interpreter may live there, e.g. pyenv; it is bound back read-only)."""
    found = [(t, "mode=1777") for t in _TMP_DIRS if os.path.isdir(t)]
    home = os.path.expanduser("~")
    if home != "/" and os.path.isdir(home) and not os.stat(home).st_mode & 0o001:
        found.append((home, "mode=0755"))
    return found


def _labkit_root() -> str:
    """The folder holding the ``labkit`` package (site-packages, or a clone's root)."""
    import labkit

    return str(Path(labkit.__file__).resolve().parents[1])


def _private_tmp(keep: Sequence[str]) -> None:
    """Fresh tmpfs over the shared temp folders (and the grader's home); the folders in ``keep``
    and the interpreter (read-only) are bound back at their own paths, nothing else of what was
    there stays visible."""
    libc = ctypes.CDLL(None, use_errno=True)
    # The interpreter and labkit's own code (a clone with an editable install may live below a
    # hidden folder, e.g. /tmp/clone): read-only, outermost first, then the jail's own folders.
    code = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, _labkit_root())}
    wanted = [(p, True) for p in sorted(code)] + [(p, False) for p in keep]
    held = [(path, ro, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path, ro in wanted]
    try:
        for target, mode in _masked():
            _mount(libc, "tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, mode)
        for path, ro, fd in held:
            if os.path.isdir(path) and os.path.samestat(os.stat(path), os.fstat(fd)):
                continue  # not below a hidden folder: still visible as it is
            os.makedirs(path, mode=0o755 if ro else 0o711, exist_ok=True)
            _mount(libc, f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC, None)
            if ro:
                _mount(libc, "none", path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_REC, None)
    finally:
        for _path, _ro, fd in held:
            os.close(fd)


def _account(uid: int) -> None:
    """Bind ``/etc/passwd`` and ``/etc/group`` copies that name the jail's user (``labkit-jail``)
    over the originals, so tools that look the user up (``getpwuid``) work. Private /tmp holds them."""
    libc = ctypes.CDLL(None, use_errno=True)
    for name, line in (
        ("passwd", f"labkit-jail:x:{uid}:{uid}:labkit rerun jail:/nonexistent:/usr/sbin/nologin\n"),
        ("group", f"labkit-jail:x:{uid}:\n"),
    ):
        original = Path("/etc", name)
        if not original.is_file():
            continue
        copy = Path("/tmp", f".labkit-{name}")
        text = original.read_text(encoding="utf-8", errors="replace")
        copy.write_text(text + ("" if text.endswith("\n") or not text else "\n") + line, encoding="utf-8")
        os.chmod(copy, 0o644)
        _mount(libc, str(copy), str(original), None, _MS_BIND, None)


def _limit(task: Task) -> None:
    lim = task.limits
    if task.cgroup is not None:
        Path(task.cgroup, "cgroup.procs").write_text(str(os.getpid()))
    else:
        resource.setrlimit(resource.RLIMIT_AS, (lim.memory_bytes, lim.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_s, lim.cpu_s))
    resource.setrlimit(resource.RLIMIT_NPROC, (lim.nproc, lim.nproc))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim.nofile, lim.nofile))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def _drop(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("could not drop to the jail's user")


def _environment(task: Task) -> None:
    keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "LABKIT_LANG") if k in os.environ}
    os.environ.clear()
    os.environ.update(
        keep,
        PATH=f"{Path(sys.executable).parent}:{_PATH}",
        HOME=task.home,
        USER="labkit-jail",
        LOGNAME="labkit-jail",
        TMPDIR="/tmp",
        MPLBACKEND="Agg",
        JUPYTER_RUNTIME_DIR=str(Path(task.home, ".jupyter-runtime")),
        LABKIT_CACHE=str(Path(task.home, ".cache", "labkit")),
    )


def _lifeline(fd: int) -> None:
    """End the jail when the grader is gone, however it ended (``kill -9`` included): a thread
    writes a newline into the grader's pipe every second; once nobody reads it, this process (PID
    1 of the jail) exits and the kernel kills everything else in the jail. ``fd`` is not
    inherited, so the student's processes cannot hold the pipe."""

    def beat() -> None:
        while True:
            time.sleep(1)
            try:
                os.write(fd, b"\n")
            except OSError:
                os._exit(3)

    threading.Thread(target=beat, daemon=True).start()


def enter(task: Task) -> None:
    """Isolate this process as the module docstring says (root → the jail's user)."""
    _loopback_up()
    _private_tmp(task.keep)
    _account(task.uid)
    _limit(task)
    _drop(task.uid)
    os.chdir(task.cwd)
    _lifeline(os.dup(1))
    fd = os.open(task.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    _environment(task)


def _execute(task: Task) -> dict[str, Any]:
    from labkit import validate

    report = validate.main(
        notebooks=[Path(task.notebook)],
        mode="auto",
        jobs=1,
        out_dir=Path(task.out_dir),
        cell_timeout=task.cell_timeout,
        notebook_timeout=task.notebook_timeout,
        lang=task.lang,
        fast_import=task.fast_import,
        workdir=Path(task.workdir),
    )
    (result,) = report.notebooks
    return {
        "output": str(result.output),
        "error": result.error,
        "duration_s": result.duration_s,
    }


def main(argv: list[str]) -> int:
    task = Task.from_json(argv[0])
    enter(task)
    try:
        summary = _execute(task)
    except Exception as exc:  # the grader reads the reason; the jail's log has the traceback
        import traceback

        traceback.print_exc()
        summary = {"output": "", "error": {"kind": "error", "message": str(exc)[:500]}, "duration_s": 0.0}
    fd = os.open(task.result, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(summary, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
