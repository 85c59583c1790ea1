"""The tiny guest's files in labkit's cache: where they live and whether they are usable.

:func:`inspect_assets` checks contents, not just presence (an ARM64 kernel Image, a static
aarch64 BusyBox, an initramfs with ``/init``), with the readers of
:mod:`labkit.logic.guest_formats`; :class:`labkit.steps.guest.PrepareTinyGuest` writes the files and
:class:`~labkit.steps.guest.BootGuest` boots them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from labkit import files
from labkit.logic import guest as g

__all__ = [
    "ASSET_NAMES",
    "MANIFEST",
    "default_cache_dir",
    "init_sha256",
    "initrd_facts",
    "inspect_assets",
    "sha256_file",
    "write_cache",
]

#: Files PrepareTinyGuest leaves in the cache directory.
ASSET_NAMES = {"kernel": "vmlinuz", "busybox": "busybox", "initrd": "initrd.gz"}
MANIFEST = "manifest.json"


def default_cache_dir() -> Path:
    """``$LABKIT_CACHE/guest``, else ``$XDG_CACHE_HOME/labkit/guest``, else ``~/.cache/labkit/guest``.

    ``LABKIT_CACHE`` names labkit's cache root (shared by all chapters); the guest lives in its
    ``guest`` subdirectory so a second run, or a second notebook, reuses the download.
    """
    root = os.environ.get("LABKIT_CACHE")
    if root:
        return Path(root).expanduser() / "guest"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "labkit" / "guest"


def write_cache(path: Path, data: bytes | str) -> None:
    """Atomically replace a file of labkit's own cache (derived data: no backup is kept)."""
    with files.atomic_target(path, overwrite=True, backup=False) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


def init_sha256() -> str:
    """Fingerprint of the current /init script (a changed script means a stale initrd)."""
    return hashlib.sha256(g.init_script().encode()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _kernel_facts(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        head = f.read(4096)
    fmt = g.kernel_format(head)
    facts: dict[str, Any] = {"kernel_format": fmt, "kernel_bytes": path.stat().st_size}
    if fmt == "gzip":
        with gzip.open(path, "rb") as z:
            inner = z.read(4096)
        facts["kernel_inner_format"] = g.kernel_format(inner)
        facts["kernel_ok"] = facts["kernel_inner_format"] == "image"
    else:
        facts["kernel_ok"] = fmt == "image"
    return facts


def _busybox_facts(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        head = f.read(16384)
    try:
        info = g.elf_info(head)
    except ValueError as exc:
        return {"busybox_ok": False, "busybox_problem": str(exc)}
    return {
        "busybox_machine": info.machine,
        "busybox_static": info.static,
        "busybox_ok": info.is_aarch64 and info.static,
    }


def initrd_facts(path: Path) -> dict[str, Any]:
    try:
        with gzip.open(path, "rb") as z:
            data = z.read()
        members = g.parse_newc(data)
    except (OSError, EOFError, ValueError) as exc:
        return {"initrd_ok": False, "initrd_problem": str(exc)}
    names = {m.name: m for m in members}
    need = ("init", "bin/busybox", "dev/console")
    return {
        "initrd_members": sorted(names),
        "initrd_ok": all(n in names for n in need) and names["init"].mode & 0o111 != 0,
    }


def inspect_assets(cache_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Validate the prepared assets in ``cache_dir``; returns facts incl. ``ok`` (all usable).

    Checks the contents, not just presence: the kernel is an ARM64 Image (``ARM\\x64`` at 0x38,
    also inside gzip), busybox is a static aarch64 ELF (``e_machine`` 183, no interpreter), the
    initrd is gzip + newc with ``/init``, ``/bin/busybox`` and ``/dev/console``.
    """
    d = Path(cache_dir)
    facts: dict[str, Any] = {"cache_dir": str(d)}
    present = {k: (d / n).is_file() for k, n in ASSET_NAMES.items()}
    facts["present"] = present
    if present["kernel"]:
        facts.update(_kernel_facts(d / ASSET_NAMES["kernel"]))
    if present["busybox"]:
        facts.update(_busybox_facts(d / ASSET_NAMES["busybox"]))
    if present["initrd"]:
        facts.update(initrd_facts(d / ASSET_NAMES["initrd"]))
    try:
        facts["manifest"] = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        facts["manifest"] = None
    facts["ok"] = bool(
        all(present.values())
        and facts.get("kernel_ok")
        and facts.get("busybox_ok")
        and facts.get("initrd_ok")
    )
    return facts
