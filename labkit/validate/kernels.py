"""Kernels for ``labkit validate``: started ahead, pinned to this interpreter, logged to a file.

* **Kernels start ahead**: a worker starts the kernel of its next notebook before executing the
  current one, so the ~0.8 s start-up overlaps other work.
* **The kernel is this interpreter** (with no ``--kernel``): ``sys.executable -m
  ipykernel_launcher``, because a ``python3`` kernelspec found first may point at another Python
  without labkit. ``--kernel NAME`` uses that kernelspec as usual.
* Kernel stdout/stderr go to ``<out>/<name>.kernel.log``; a dead kernel's report quotes its tail.
* **Shutdown does not block**: graceful (``atexit`` and ``finally`` run) while the worker moves
  on; a kernel that timed out or died is killed with its process group.
* **Nothing a kernel started outlives it**: the kernel's whole process tree (psutil), including
  children in their own sessions (labkit's runner starts every command so, out of reach of the
  kernel's process group), is frozen and killed with the kernel on a timeout, Ctrl-C or SIGTERM;
  after a graceful shutdown whatever the kernel left running is killed too. A kernel that dies on
  its own leaves no orphans either: labkit's runner stops its children when its process ends
  (:mod:`labkit.steps.runner`).
* The kernel's ``cwd`` is the notebook's folder (papermill's ``cwd`` would ``os.chdir`` the whole
  process), and it gets ``LABKIT_LANG`` in its environment: the language is passed, not set.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Job",
    "Options",
    "import_papermill",
    "kill_now",
    "kill_tree",
    "start_kernel",
    "start_watchdog",
    "stop_kernel",
]

_import_lock = threading.Lock()


@dataclass
class Options:
    """What every notebook of one run shares."""

    mode: str
    cell_timeout: float
    kernel_name: str | None
    lang: str | None
    cancel: threading.Event
    notebook_timeout: float | None = None
    #: import papermill without ``rfc3987_syntax`` (the CLIs ask for it; see :func:`import_papermill`)
    fast_import: bool = False


@dataclass
class Job:
    """One notebook: where it is, where its outputs go, and its kernel once started."""

    source: Path
    output: Path
    workdir: Path
    log: Path
    km: Any = None
    start_error: BaseException | None = None
    warnings: list[str] = field(default_factory=list)
    expired: bool = False  # the notebook ran past opts.notebook_timeout and its kernel was killed


@functools.cache
def _kernel_manager_class() -> Any:
    """An ``AsyncKernelManager`` that can pin the kernel to this interpreter, log to a file, and
    remember the clients it hands out (papermill does not close them when it does not own the
    manager)."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class LabkitKernelManager(AsyncKernelManager):  # type: ignore[misc]
        def __init__(self, *, pinned: bool, log_path: Path, **kw: Any) -> None:
            super().__init__(**kw)
            self.labkit_pinned = pinned
            self.labkit_log = log_path
            self.labkit_clients: list[Any] = []

        @property
        def kernel_spec(self) -> Any:
            if not self.labkit_pinned:
                return super().kernel_spec
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(
                    argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    display_name=f"Python 3 ({sys.executable})",
                    language="python",
                    name="python3",
                )
            return self._kernel_spec

        @property
        def ipykernel(self) -> bool:
            return self.labkit_pinned or super().ipykernel

        def client(self, **kwargs: Any) -> Any:
            kc = super().client(**kwargs)
            self.labkit_clients.append(kc)
            return kc

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with open(self.labkit_log, "ab") as log:  # the child keeps its own copy of the fd
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return LabkitKernelManager


async def start_kernel(job: Job, opts: Options) -> None:
    """Launch the kernel for ``job`` (returns once the process exists, not when it is ready)."""
    try:
        job.log.unlink(missing_ok=True)
        km_class = _kernel_manager_class()
        kw: dict[str, Any] = {"pinned": opts.kernel_name is None, "log_path": job.log}
        if opts.kernel_name is not None:
            kw["kernel_name"] = opts.kernel_name
        km = km_class(**kw)
        env = dict(os.environ)
        if opts.lang:  # passed to the child, never set in this process
            env["LABKIT_LANG"] = opts.lang
        extra = ["--HistoryManager.hist_file=:memory:"] if km.ipykernel else []
        await km.start_kernel(cwd=str(job.source.parent), env=env, extra_arguments=extra)
        job.km = km
    except Exception as exc:
        job.start_error = exc


async def stop_kernel(job: Job, *, kill: bool) -> None:
    """Close the clients, then shut the kernel down (gracefully unless ``kill``); either way no
    process the kernel started is left running."""
    km = job.km
    if km is None:
        return
    left = _descendants(_kernel_pid(job))  # seen now: once the kernel is gone they are orphans
    if kill:
        kill_now(job)
    for kc in km.labkit_clients:
        with contextlib.suppress(Exception):
            kc.stop_channels()
    try:
        if km.has_kernel:
            await km.shutdown_kernel(now=kill)
        else:
            await km.cleanup_resources()
    except Exception:
        with contextlib.suppress(Exception):
            await km.shutdown_kernel(now=True)
    _kill_all(left)


def _kernel_pid(job: Job) -> int | None:
    process = getattr(getattr(job.km, "provisioner", None), "process", None)
    pid = getattr(process, "pid", None)
    return pid if isinstance(pid, int) else None


def _descendants(pid: int | None) -> list[Any]:
    """``psutil.Process`` objects of ``pid``'s descendants (they remember their start time, so a
    reused pid is never signalled)."""
    if pid is None:
        return []
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_all(procs: list[Any]) -> None:
    import psutil

    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def kill_tree(pid: int | None) -> None:
    """SIGKILL process ``pid`` and every descendant, whatever session or group each is in.

    Each process is stopped (SIGSTOP) before its children are listed, so none can start another
    one unseen while the tree is collected; then all of them are killed."""
    if pid is None or pid == os.getpid():
        return
    import psutil

    try:
        frozen = [psutil.Process(pid)]
    except psutil.Error:
        return
    seen = {pid}
    i = 0
    while i < len(frozen):
        proc = frozen[i]
        i += 1
        with contextlib.suppress(psutil.Error):
            proc.suspend()
            for child in proc.children():
                if child.pid not in seen:
                    seen.add(child.pid)
                    frozen.append(child)
    _kill_all(frozen)


def kill_now(job: Job) -> None:
    """Ctrl-C, SIGTERM, a timeout: kill a running kernel, its process group and every process it
    started, from any thread (no event loop)."""
    prov = getattr(job.km, "provisioner", None)
    kill_tree(_kernel_pid(job))
    pgid = getattr(prov, "pgid", None)
    with contextlib.suppress(OSError, AttributeError):
        if pgid and pgid != os.getpgrp():  # kernels get their own session; never signal ours
            os.killpg(pgid, signal.SIGKILL)
        elif prov is not None and prov.process is not None:
            prov.process.kill()


def start_watchdog(job: Job, opts: Options) -> threading.Timer | None:
    """Kill ``job``'s kernel once the whole notebook has run ``opts.notebook_timeout`` seconds.

    The cell timeout alone does not bound a notebook of many slow cells; nbclient then sees a dead
    kernel and the failure is reported as a timeout (``job.expired``).
    """
    if not opts.notebook_timeout:
        return None

    def expire() -> None:
        job.expired = True
        kill_now(job)

    timer = threading.Timer(opts.notebook_timeout, expire)
    timer.daemon = True
    timer.start()
    return timer


def import_papermill(*, fast: bool = False) -> Any:
    """Import papermill once, for all worker threads.

    With ``fast`` (the CLIs), ``rfc3987_syntax`` is hidden during the import: jsonschema imports it
    optionally (``with suppress(ImportError)``) only to check the ``iri`` / ``iri-reference``
    string formats, building a grammar that costs 0.9-2.6 s here. nbformat validates with
    Draft 4 and never uses those formats, so the import is pure cost. A ``None`` entry in
    ``sys.modules`` is Python's documented way to make one import fail; it is removed right after,
    so later code may import the package normally. The Python API leaves imports alone.
    """
    with _import_lock:
        if "papermill" in sys.modules:
            return sys.modules["papermill"]
        from labkit.imports import without_rfc3987_syntax

        with without_rfc3987_syntax(fast):
            import papermill
        return papermill
