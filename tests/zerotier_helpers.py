"""Helpers for tests that use the ZeroTier lab (``tests/zerotier_lab.py``): its namespaces and controller."""

from __future__ import annotations

import contextvars
import ctypes
import os
import subprocess
import threading
from collections.abc import Callable
from typing import Any

CLONE_NEWNET = 0x40000000


def in_netns(ns: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread that entered network namespace ``ns`` (the daemon's API is only there)."""
    libc = ctypes.CDLL(None, use_errno=True)
    out: dict[str, Any] = {}
    context = contextvars.copy_context()  # the caller's language (use_lang) goes along

    def target() -> None:
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {ns}")
        finally:
            os.close(fd)
        try:
            out["value"] = context.run(fn)
        except BaseException as exc:  # re-raised in the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(120)
    if "error" in out:
        raise out["error"]
    return out["value"]


def controller(env: dict[str, str], method: str, path: str, body: str | None = None) -> str:
    """Node 1's controller API through curl inside its namespace (as ``lab.sh`` does)."""
    argv = ["ip", "netns", "exec", env["NS1"], "curl", "-fsS", "-m", "8", "-X", method]
    argv += ["-H", f"X-ZT1-Auth: {env['ZT_TOKEN1']}"]
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "--data-binary", body]
    argv.append(env["ZT_API1"] + path)
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=15).stdout
