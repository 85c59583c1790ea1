"""The only place in labkit that spawns processes.

Commands are argv lists, never a shell string. :class:`SubprocessRunner` streams output line by
line (splitting on ``\\r`` as well as ``\\n`` so progress meters such as ``qemu-img convert -p``
arrive as they update), enforces a timeout, honours a cancel event, and translates failures into
:mod:`labkit.errors` once: a missing executable becomes :class:`~labkit.errors.ToolMissing` naming
the Debian/Ubuntu package, a non-zero exit :class:`~labkit.errors.CommandFailed`.

The runner is swappable (think ``httpx.MockTransport``): steps receive a :class:`Runner`, and unit
tests may pass :class:`FunctionRunner` with a plain function to test argv building and output
parsing without spawning anything. Integration tests use the real tools.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
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


class _Popen:
    """A running child in its own process group, with reader threads feeding one queue."""

    def __init__(self, argv: list[str], cwd, env) -> None:
        self.argv = argv
        full_env = None
        if env is not None:
            full_env = dict(os.environ)
            full_env.update(env)
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
        self._q: queue.Queue = queue.Queue()
        self._open = 2
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for name, pipe in (("stdout", self._p.stdout), ("stderr", self._p.stderr)):
            threading.Thread(target=_pump, args=(name, pipe, self._q), daemon=True).start()

    def poll(self) -> int | None:
        return self._p.poll()

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
        return self._p.wait()

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
        deadline = None if timeout is None else t0 + timeout
        while True:
            if cancel is not None and cancel.is_set():
                proc.stop()
                raise Cancelled(proc.argv, None, proc.text("stdout"), proc.text("stderr"))
            if deadline is not None and time.monotonic() > deadline:
                proc.stop()
                raise CommandTimeout(proc.argv, timeout or 0, proc.text("stdout"), proc.text("stderr"))
            try:
                item = proc.next_line(self.poll_interval)
            except EOFError:
                break
            if item is not None and on_line is not None:
                on_line(*item)
        rc = proc._p.wait()
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
