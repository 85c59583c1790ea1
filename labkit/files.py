"""File-system safety for everything labkit writes: atomic targets, backups, free space.

Used by the steps, the grader and the validator alike (a shared helper, not a step). The rules it
enforces (README "Design rules"): never overwrite without explicit consent, never leave a
half-written target (write a temporary sibling, then ``os.replace``), keep a backup before editing
a file in place, and check free space before writing something large.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from labkit.errors import ConsentRequired, InvalidField, NotSupportedHere
from labkit.i18n import consent_hint, field_name, in_panel, tr

__all__ = [
    "TMP_MARK",
    "atomic_target",
    "backup_file",
    "backup_path",
    "ensure_free_space",
    "refuse_overwrite",
    "tmp_sibling",
    "write_atomic",
]

#: Temporary siblings carry this marker so a crashed run's leftovers are recognisable.
TMP_MARK = ".labkit-tmp"


def refuse_overwrite(path: str | os.PathLike[str], overwrite: bool, field: str = "target") -> None:
    """Raise :class:`ConsentRequired` if ``path`` exists and ``overwrite`` was not given."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise ConsentRequired(
            tr("覆盖已有的文件 {p}", "overwrite the existing file {p}", p=p),
            tr(
                "换一个「{f}」，或{c}",
                "choose another {f}, or {c}",
                f=field_name(field),
                c=consent_hint("overwrite"),
            )
            + ("" if in_panel() else tr("（会保留备份）", " (a backup is kept)")),
            keyword="overwrite",
        )
    if p.is_dir():
        raise InvalidField(
            field, str(p), tr("是一个目录", "is a directory"), tr("给出文件名", "give a file name")
        )


def tmp_sibling(path: str | os.PathLike[str]) -> Path:
    """``.<name>.labkit-tmp-<pid>`` beside ``path``: a temporary name a plan can show in advance.

    Steps whose plan names the command that writes the temporary file (``qemu-img create`` into
    it) pass this to :func:`atomic_target`; the process id keeps two kernels apart.
    """
    final = Path(path)
    return final.with_name(f".{final.name}{TMP_MARK}-{os.getpid()}")


@contextlib.contextmanager
def atomic_target(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    backup: bool = True,
    field: str = "target",
    tmp: str | os.PathLike[str] | None = None,
) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it replaces ``path``, on error it is removed.

    The temporary file lives in the same directory so the final ``os.replace`` is atomic (same file
    system). If ``path`` exists it must be allowed by ``overwrite``; the old file is kept as a backup.
    ``tmp`` chooses the temporary name (e.g. :func:`tmp_sibling`, shown in a plan beforehand);
    ``field`` is the keyword the path came in, for the refusal's message.
    """
    final = Path(path)
    refuse_overwrite(final, overwrite, field)
    final.parent.mkdir(parents=True, exist_ok=True)
    if tmp is None:
        tmp = final.with_name(f".{final.name}{TMP_MARK}-{os.getpid()}-{time.monotonic_ns()}")
    tmp = Path(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(tr("{t} 没有写出来", "{t} was not written", t=tmp))
        if final.exists() and backup:
            backup_file(final, replacing=True)
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_target`)."""
    with atomic_target(path, overwrite=overwrite) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(path)


def replace_text(path: str | os.PathLike[str], text: str) -> Path | None:
    """Replace a config file's text: a backup copy first, then an atomic swap that keeps the
    file's mode (a 0640 PVE config must not become world-readable). Returns the backup, ``None``
    when there was no file yet. For edits of files the student owns (PVE config, daemon.json)."""
    p = Path(path)
    backup = backup_file(p) if p.exists() else None
    with atomic_target(p, overwrite=True, backup=False) as tmp:
        tmp.write_text(text, encoding="utf-8")
        if p.exists():
            shutil.copymode(p, tmp)
    return backup


def backup_path(path: str | os.PathLike[str]) -> Path:
    """An unused ``<path>.labkit-bak-<UTC timestamp>[-N]`` name beside ``path``."""
    p = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = p.with_name(f"{p.name}.labkit-bak-{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = p.with_name(f"{p.name}.labkit-bak-{stamp}-{n}")
    return dest


def backup_file(path: str | os.PathLike[str], *, replacing: bool = False) -> Path:
    """Keep the current ``path`` as ``<path>.labkit-bak-<UTC timestamp>`` and return the backup.

    ``replacing=True`` means the caller is about to replace ``path`` with a new file (``os.replace``),
    so a hard link suffices: no bytes are copied, even for a 120 GiB disk image. Otherwise the file is
    copied preserving holes, because ``shutil.copy2`` would write out every hole of a sparse image.
    """
    p = Path(path)
    dest = backup_path(p)
    if replacing:
        try:
            os.link(p, dest)
            return dest
        except OSError:
            pass  # file system without hard links: fall back to a copy
    _sparse_copy(p, dest)
    shutil.copystat(p, dest)
    return dest


def _sparse_copy(src: Path, dst: Path, chunk: int = 1 << 20) -> None:
    """Copy only the data regions of ``src`` (SEEK_DATA / SEEK_HOLE), then set the full length."""
    size = src.stat().st_size
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fd = fin.fileno()
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
                end = os.lseek(fd, start, os.SEEK_HOLE)
            except OSError:  # ENXIO: no data after pos; or SEEK_DATA unsupported → copy the rest
                if not hasattr(os, "SEEK_DATA"):
                    start, end = pos, size
                else:
                    break
            fin.seek(start)
            fout.seek(start)
            left = end - start
            while left > 0:
                buf = fin.read(min(chunk, left))
                if not buf:
                    break
                fout.write(buf)
                left -= len(buf)
            pos = end
        fout.truncate(size)


def ensure_free_space(directory: str | os.PathLike[str], needed: int, *, what: str = "") -> int:
    """Raise :class:`NotSupportedHere` if ``directory`` has less than ``needed`` bytes free.

    ``what`` completes the message in the course language, e.g. ``tr("下载客户机", "download the
    guest")``."""
    d = Path(directory)
    while not d.exists() and d != d.parent:
        d = d.parent
    free = shutil.disk_usage(d).free
    what = what or tr("写入", "write")
    if free < needed:
        raise NotSupportedHere(
            tr(
                "{d} 所在磁盘的空闲空间不够{w}：需要 {n:.2f} GiB，只有 {h:.2f} GiB",
                "not enough free disk space to {w} in {d}: need {n:.2f} GiB, have {h:.2f} GiB",
                w=what,
                d=directory,
                n=needed / 2**30,
                h=free / 2**30,
            ),
            tr("腾出空间，或换一个目录", "free some space or choose another directory"),
        )
    return free
