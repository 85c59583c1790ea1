"""Processes a step started in the background and owns through a pid file (the chapter 2b
registry, the chapter 4 Jupyter server): which pid is really ours, and how to stop it.

A pid file alone proves nothing: the process may have ended and its pid been reused. A pid counts
as ours only while the process with that pid runs exactly the command line the step starts
(``matches``), so a stop step never signals a stranger, unlike the seed's ``ps | grep | kill -9``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["owned_pid", "process_gone", "stop_process"]


def owned_pid(pid_path: Path, matches: Callable[[Sequence[str]], bool]) -> int | None:
    """The pid in ``pid_path`` if that process is alive (not a zombie) and ``matches`` its
    command line; ``None`` otherwise (no file, junk in it, gone, someone else's)."""
    import psutil

    try:
        pid = int(pid_path.read_text(encoding="utf-8").strip())
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
        zombie = proc.status() == psutil.STATUS_ZOMBIE
    except (OSError, ValueError, psutil.Error):
        return None
    return pid if not zombie and matches(cmdline) else None


def stop_process(pid: int, grace: float) -> dict[str, Any]:
    """SIGTERM ``pid`` (a clean shutdown: a server stops its kernels), SIGKILL after ``grace``
    seconds; then make sure its children are gone too."""
    import psutil

    proc = psutil.Process(pid)
    children = proc.children(recursive=True)
    proc.terminate()
    signal_used = "SIGTERM"
    try:
        proc.wait(timeout=grace)
    except psutil.TimeoutExpired:
        proc.kill()
        signal_used = "SIGKILL"
        proc.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    return {"pid": pid, "signal": signal_used, "children": [c.pid for c in children]}


def process_gone(pid: int) -> bool:
    """No process with ``pid`` runs any more (a zombie waiting to be reaped counts as gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
