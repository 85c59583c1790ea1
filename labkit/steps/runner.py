"""The only place in labkit that spawns processes.

Commands are argv lists, never a shell string. :class:`SubprocessRunner` streams output line by
line (splitting on ``\\r`` as well as ``\\n`` so progress meters such as ``qemu-img convert -p``
arrive as they update), enforces a timeout, honours a cancel event, and translates failures into
:mod:`labkit.errors` once: a missing executable becomes :class:`~labkit.errors.ToolMissing` naming
the Debian/Ubuntu package, a non-zero exit :class:`~labkit.errors.CommandFailed`.

**No process outlives what started it.** Every child gets its own session (so stopping it reaches
its own children too, and a Jupyter interrupt of the kernel does not hit it half-way), which also
means killing the kernel's process group misses it. So each child's group is registered with this
process's :class:`_ChildGuard` while it runs: ``run`` stops its command however it ends (timeout,
cancel, an exception or ``KeyboardInterrupt`` in the caller); at interpreter exit the remaining
groups are stopped (``atexit``); and a tiny reaper process, holding the read end of a pipe from this
process, stops them when this process dies any other way (SIGTERM, SIGKILL, ``os._exit`` of a
kernel whose parent went away): the pipe closes and the reaper stops every group still registered.
The guard is per process by nature (the children of *this* process), hence the one cached
instance; after a ``fork`` the child makes its own. A command that exited by itself is forgotten,
so a service it spawned on purpose in the background is left alone.

The runner is swappable (think ``httpx.MockTransport``): steps receive a :class:`Runner`, and unit
tests may pass :class:`FunctionRunner` with a plain function to test argv building and output
parsing without spawning anything. Integration tests use the real tools.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from labkit.errors import Cancelled, CommandFailed, CommandTimeout, ToolMissing
from labkit.logic.tools import TOOL_PACKAGES

__all__ = [
    "Completed",
    "FunctionRunner",
    "LineCallback",
    "Process",
    "Runner",
    "SubprocessRunner",
    "default_runner",
    "require_tool",
]

LineCallback = Callable[[str, str], None]
"""Called with ``(stream, line)`` where stream is ``"stdout"`` or ``"stderr"``."""


def require_tool(tool: str) -> str:
    """Return the absolute path of ``tool`` or raise :class:`ToolMissing` with its package."""
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(tool, TOOL_PACKAGES.get(tool))
    return path


@dataclass(frozen=True)
class Completed:
    """A finished command."""

    argv: list[str]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0


class Process(Protocol):
    """A started command whose output can be followed while it runs (a booting guest, say)."""

    argv: list[str]

    def lines(self, timeout: float | None = None) -> Iterator[tuple[str, str]]:
        """Yield ``(stream, line)`` until the process ends or ``timeout`` seconds pass idle."""
        ...

    def stop(self, grace: float = 3.0) -> int | None:
        """Terminate (then kill) the process and its children; return the exit status."""
        ...

    def poll(self) -> int | None: ...


class Runner(Protocol):
    """What steps need from a process runner."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        on_line: LineCallback | None = None,
        cancel: threading.Event | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Completed: ...

    def start(
        self,
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Process: ...


# ----------------------------------------------------------------------------------------------
# Real processes
# ----------------------------------------------------------------------------------------------
_EOF = object()


def _pump(stream_name: str, pipe, out: queue.Queue) -> None:
    """Read a pipe in chunks, emit complete lines (split on \\n or \\r), then an EOF marker."""
    buf = b""
    try:
        while True:
            chunk = pipe.read1(65536) if hasattr(pipe, "read1") else pipe.read(65536)
            if not chunk:
                break
            buf += chunk
            while True:
                cut = min((i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0), default=-1)
                if cut < 0:
                    break
                line, buf = buf[:cut], buf[cut + 1 :]
                out.put((stream_name, line.decode("utf-8", "replace")))
        if buf:
            out.put((stream_name, buf.decode("utf-8", "replace")))
    finally:
        out.put((stream_name, _EOF))


# ----------------------------------------------------------------------------------------------
# Children of this process: stopped on every ending
# ----------------------------------------------------------------------------------------------
#: The reaper: reads ``+PGID`` / ``-PGID`` lines; at end of input (its parent is gone or has
#: finished) it stops every group still registered: SIGTERM, up to 3 s, then SIGKILL.
_REAPER_CODE = """
import os, signal, time
for s in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
groups, buf = set(), b""
while True:
    try:
        chunk = os.read(0, 4096)
    except InterruptedError:
        continue
    except OSError:
        break
    if not chunk:
        break
    *lines, buf = (buf + chunk).split(b"\\n")
    for line in lines:
        if line[:1] == b"+":
            groups.add(int(line[1:]))
        elif line[:1] == b"-":
            groups.discard(int(line[1:]))
def alive(g):
    try:
        os.killpg(g, 0)
        with open(f"/proc/{g}/stat", "rb") as f:  # a dead leader nobody reaped yet is a zombie
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except OSError:
        return False
for sig in (signal.SIGTERM, signal.SIGKILL):
    for g in list(groups):
        try:
            os.killpg(g, sig)
        except OSError:
            groups.discard(g)
    end = time.monotonic() + 3
    while groups and time.monotonic() < end:
        groups = {g for g in groups if alive(g)}
        time.sleep(0.05)
"""


def _stop_groups(groups: set[int], grace: float) -> None:
    """SIGTERM each process group, wait up to ``grace`` seconds, SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for g in list(groups):
            try:
                os.killpg(g, sig)
            except OSError:
                groups.discard(g)
        end = time.monotonic() + grace
        while groups and time.monotonic() < end:
            for g in list(groups):
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(g, os.WNOHANG)[0] == g:  # our child, the group's leader: gone
                        groups.discard(g)
                        continue
                try:
                    os.killpg(g, 0)
                except OSError:
                    groups.discard(g)
            time.sleep(0.02)


class _ChildGuard:
    """The process groups of this process's running children, and the reaper that outlives it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.groups: set[int] = set()
        self._lock = threading.Lock()
        self._reaper: subprocess.Popen[bytes] | None = None
        #: Why no reaper could be started (this interpreter cannot be executed again, e.g. a
        #: dropped privilege): children are then stopped by ``run`` and at exit only.
        self.no_reaper = ""
        atexit.register(self.stop_all)

    def ready(self) -> None:
        """Start the reaper before a child, so the child is watched from its first instant on."""
        with self._lock:
            if self._reaper is None or self._reaper.poll() is not None:
                self._send("")

    def _send(self, line: str) -> None:
        reaper = self._reaper
        if reaper is None or reaper.poll() is not None:
            if self.no_reaper:
                return
            try:
                self._reaper = reaper = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _REAPER_CODE],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a kill of this process's group must not take it along
                )
            except OSError as exc:  # never a reason to fail the command itself
                self.no_reaper = str(exc)  # said once, kept: run() and atexit still stop children
                return
            line = "".join(f"+{g}\n" for g in self.groups) + line  # a restarted reaper learns all
        with contextlib.suppress(OSError, ValueError):
            reaper.stdin.write(line.encode())  # type: ignore[union-attr]
            reaper.stdin.flush()  # type: ignore[union-attr]

    def add(self, pgid: int) -> None:
        with self._lock:
            self.groups.add(pgid)
            self._send(f"+{pgid}\n")

    def discard(self, pgid: int) -> None:
        with self._lock:
            if pgid in self.groups:
                self.groups.discard(pgid)
                if self._reaper is not None:
                    self._send(f"-{pgid}\n")

    def stop_all(self, grace: float = 2.0) -> None:
        """At interpreter exit: stop every child still running, then let the reaper go."""
        if os.getpid() != self.pid:
            return
        with self._lock:
            groups, self.groups = set(self.groups), set()
            reaper, self._reaper = self._reaper, None
        _stop_groups(groups, grace)
        if reaper is not None:
            with contextlib.suppress(OSError, ValueError):
                reaper.stdin.close()  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                reaper.wait(timeout=5)


@functools.cache
def _guard_of(pid: int) -> _ChildGuard:
    return _ChildGuard()


def _guard() -> _ChildGuard:
    """This process's guard (a forked child gets a fresh one: it has its own children)."""
    return _guard_of(os.getpid())


class _Popen:
    """A running child in its own process group, with reader threads feeding one queue."""

    def __init__(self, argv: list[str], cwd, env) -> None:
        self.argv = argv
        full_env = None
        if env is not None:
            full_env = dict(os.environ)
            full_env.update(env)
        self._guard = _guard()
        self._guard.ready()
        try:
            self._p = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=full_env,
                start_new_session=True,  # own process group: stop() reaches grandchildren too
            )
        except FileNotFoundError as exc:
            raise ToolMissing(argv[0], TOOL_PACKAGES.get(os.path.basename(argv[0]))) from exc
        except PermissionError as exc:
            raise CommandFailed(argv, None, "", f"permission denied: {exc}") from exc
        self._guard.add(self._p.pid)  # its session id = its process group id = its pid
        self._q: queue.Queue = queue.Queue()
        self._open = 2
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for name, pipe in (("stdout", self._p.stdout), ("stderr", self._p.stderr)):
            threading.Thread(target=_pump, args=(name, pipe, self._q), daemon=True).start()

    @property
    def pid(self) -> int:
        """The child's process id (= its process group and session id)."""
        return self._p.pid

    def poll(self) -> int | None:
        rc = self._p.poll()
        if rc is not None:
            self._guard.discard(self._p.pid)
        return rc

    def wait(self) -> int:
        rc = self._p.wait()
        self._guard.discard(self._p.pid)
        return rc

    def next_line(self, timeout: float) -> tuple[str, str] | None:
        """Next line, or None after ``timeout`` seconds; raises EOFError when both pipes closed."""
        while self._open:
            try:
                name, line = self._q.get(timeout=timeout)
            except queue.Empty:
                return None
            if line is _EOF:
                self._open -= 1
                continue
            (self.stdout if name == "stdout" else self.stderr).append(line)
            return name, line
        raise EOFError

    def lines(self, timeout: float | None = None) -> Iterator[tuple[str, str]]:
        while True:
            try:
                item = self.next_line(timeout if timeout is not None else 3600.0)
            except EOFError:
                return
            if item is None:
                return
            yield item

    def stop(self, grace: float = 3.0) -> int | None:
        if self._p.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self._p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self._p.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        return self.wait()

    def text(self, name: str) -> str:
        return "\n".join(self.stdout if name == "stdout" else self.stderr)


@dataclass
class SubprocessRunner:
    """Runs real commands. ``poll_interval`` bounds how quickly cancel and timeout are noticed."""

    poll_interval: float = 0.1
    history: list[list[str]] = field(default_factory=list)

    def start(self, argv: Sequence[str], *, cwd=None, env=None) -> Process:
        argv = [str(a) for a in argv]
        self.history.append(argv)
        return _Popen(argv, cwd, env)

    def _follow(self, proc: _Popen, t0: float, timeout, on_line, cancel) -> int:
        """Stream ``proc``'s lines until it ends; raise on cancel or timeout (the caller stops it)."""
        deadline = None if timeout is None else t0 + timeout
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled(proc.argv, None, proc.text("stdout"), proc.text("stderr"))
            if deadline is not None and time.monotonic() > deadline:
                raise CommandTimeout(proc.argv, timeout or 0, proc.text("stdout"), proc.text("stderr"))
            try:
                item = proc.next_line(self.poll_interval)
            except EOFError:
                break
            if item is not None and on_line is not None:
                on_line(*item)
        return proc.wait()

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        on_line: LineCallback | None = None,
        cancel: threading.Event | None = None,
        cwd=None,
        env=None,
        check: bool = True,
    ) -> Completed:
        t0 = time.monotonic()
        proc = self.start(argv, cwd=cwd, env=env)
        assert isinstance(proc, _Popen)
        try:
            rc = self._follow(proc, t0, timeout, on_line, cancel)
        except BaseException:  # timeout, cancel, a failing callback, KeyboardInterrupt: stop it
            proc.stop()
            raise
        done = Completed(proc.argv, rc, proc.text("stdout"), proc.text("stderr"), time.monotonic() - t0)
        if check and rc != 0:
            raise CommandFailed(done.argv, rc, done.stdout, done.stderr)
        return done


# ----------------------------------------------------------------------------------------------
# Test double
# ----------------------------------------------------------------------------------------------
@dataclass
class FunctionRunner:
    """Answers commands with a plain function ``handler(argv) -> Completed | (rc, stdout, stderr)``.

    For unit tests of command building and output parsing; records every argv in ``history``.
    Output lines are replayed through ``on_line`` so streaming code paths are exercised too.
    """

    handler: Callable[[list[str]], object]
    history: list[list[str]] = field(default_factory=list)

    def run(self, argv, *, timeout=None, on_line=None, cancel=None, cwd=None, env=None, check=True):
        argv = [str(a) for a in argv]
        self.history.append(argv)
        res = self.handler(argv)
        if not isinstance(res, Completed):
            rc, out, err = res  # type: ignore[misc]
            res = Completed(argv, rc, out, err)
        if on_line is not None:
            for name in ("stdout", "stderr"):
                for line in getattr(res, name).splitlines():
                    on_line(name, line)
        if check and res.returncode != 0:
            raise CommandFailed(argv, res.returncode, res.stdout, res.stderr)
        return res

    def start(self, argv, *, cwd=None, env=None):
        raise NotImplementedError("FunctionRunner cannot start long-running processes")


def default_runner() -> Runner:
    """A fresh :class:`SubprocessRunner` (no process-wide instance: nothing to share or leak)."""
    return SubprocessRunner()
