"""Read one submitted file as bytes and parse it as JSON, within hard byte and memory bounds.

Every rule here exists because a student (or a damaged LMS download) controls the bytes:

* **Regular files only.** A file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked to be a
  regular file on the open descriptor (a symbolic link, a FIFO, a device or ``/proc/kmsg`` is
  refused instead of followed or waited on; ``O_NOFOLLOW`` covers the last path component, the
  folders above it were checked when the input folder was walked). Zip members are read by their
  :class:`~zipfile.ZipInfo` (two members may carry the same name), only when stored or deflated.
* **A hard byte cap.** At most ``max_bytes + 1`` bytes are ever read or decompressed, in chunks,
  whatever sizes a file or zip header declares (a member that lies about its size is cut off, not
  inflated in full before the CRC check).
* **A memory budget per file.** :func:`parse_cost` estimates, from the text alone (brackets,
  commas, colons and quotes counted; counted again with strings collapsed where the quick count is
  over the budget), what :func:`json.loads` would allocate, never less (a test measures it); a
  file that would need more than :func:`memory_budget` is ``too large`` without being parsed
  (40 MB of ``[[],[],...]`` is about 1 GiB of Python lists). Worker processes are
  also limited with ``RLIMIT_AS`` (:func:`limit_memory`), so an estimate that is wrong ends in a
  ``MemoryError`` for that file, not in the OOM killer.
* Integers longer than Python's 4300-digit conversion limit are kept as their digit strings
  instead of failing the whole file.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import zipfile
from typing import Any

from labkit.i18n import tr

__all__ = [
    "ReadProblem",
    "limit_memory",
    "memory_budget",
    "parse_bounded",
    "parse_cost",
    "read_file_bytes",
    "read_member_bytes",
]

#: Memory one reader may use for one file: this many times ``--max-mb``, and at least the floor.
MEMORY_FACTOR = 4
MEMORY_FLOOR = 256 * 2**20
#: Headroom above the budget for a worker's ``RLIMIT_AS`` (allocator slack, the interpreter).
_AS_SLACK = 512 * 2**20
_CHUNK = 2**20
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
#: One JSON string literal (escapes included), matched without backtracking.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
#: Upper bounds, in bytes, of what json.loads allocates per token outside strings (measured on
#: CPython 3.11 and rounded up: an empty list with its GC header is 72 bytes, a dict more).
_COST_CONTAINER = 96
_COST_ITEM = 56  # a comma: one more pointer plus a number object
_COST_ENTRY = 128  # a colon: one more dict entry (tables over-allocate)
_COST_STRING = 72  # a string literal: the str header and its pointer


class ReadProblem(Exception):
    """Why a file cannot be read, for a person (already translated)."""


def memory_budget(max_bytes: int) -> int:
    """The memory one file may need to be read and parsed: ``4 × max_bytes``, at least 256 MiB."""
    return max(MEMORY_FACTOR * max_bytes, MEMORY_FLOOR)


def _too_large(size: int, limit: int) -> ReadProblem:
    return ReadProblem(
        tr(
            "文件太大（{s:.0f} MiB，上限 {m:.0f} MiB）",
            "too large ({s:.0f} MiB; the limit is {m:.0f} MiB)",
            s=size / 2**20,
            m=limit / 2**20,
        )
    )


def _read_capped(fh: Any, max_bytes: int, declared: int) -> bytes:
    """At most ``max_bytes`` bytes from ``fh`` in chunks; one more byte means too large."""
    parts: list[bytes] = []
    total = 0
    while total <= max_bytes:
        chunk = fh.read(min(_CHUNK, max_bytes + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    if total > max_bytes:
        raise _too_large(max(total, declared), max_bytes)
    return b"".join(parts)


def read_file_bytes(path: str, max_bytes: int) -> bytes:
    """The bytes of a regular file (never through a symbolic link in its last component)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if os.path.islink(path):
            raise ReadProblem(
                tr("是符号链接，不读取", "a symbolic link; labkit reads only regular files")
            ) from exc
        raise
    with os.fdopen(fd, "rb", buffering=0) as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ReadProblem(tr("不是普通文件", "not a regular file"))
        if st.st_size > max_bytes:
            raise _too_large(st.st_size, max_bytes)
        return _read_capped(fh, max_bytes, st.st_size)


def read_member_bytes(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> bytes:
    """The bytes of one zip member, decompressed in bounded chunks (never more than
    ``max_bytes + 1``, whatever its header claims)."""
    if info.file_size > max_bytes:
        raise _too_large(info.file_size, max_bytes)
    if info.compress_type not in _ZIP_METHODS:
        raise ReadProblem(
            tr(
                "压缩方式 {m} 不受支持（只读取 stored 和 deflate）",
                "compression method {m} is not read (only stored and deflate)",
                m=info.compress_type,
            )
        )
    with zf.open(info) as fh:
        return _read_capped(fh, max_bytes, info.file_size)


def _token_cost(text: str) -> int:
    return (
        _COST_CONTAINER * (text.count("[") + text.count("{"))
        + _COST_ITEM * text.count(",")
        + _COST_ENTRY * text.count(":")
        + _COST_STRING * text.count('"')
    )


def parse_cost(text: str, within: int | None = None) -> int:
    """An upper estimate of the bytes :func:`json.loads` allocates for ``text`` beyond the text.

    First a quick count that takes every ``[ { , : "`` as a token, inside strings too (an
    over-estimate); if that is more than ``within``, or ``within`` is not given, strings are
    collapsed first (a ``[`` inside an output is not a list) and the tokens counted again. Every
    string's characters are counted at the text's width.
    """
    width = sys.getsizeof(text)
    quick = width + _token_cost(text)
    if within is not None and quick <= within:
        return quick
    skeleton = _STRING.sub('"', text)
    return width + _token_cost(skeleton)


def _int_or_digits(digits: str) -> int | str:
    """``parse_int`` for a file that holds an integer over Python's digit limit: keep its text."""
    try:
        return int(digits)
    except ValueError:
        return digits


def parse_bounded(text: str, size: int, budget: int) -> Any:
    """``text`` (decoded from ``size`` bytes, which the caller has already dropped) parsed as JSON,
    or :class:`ReadProblem` when that would need more than ``budget`` bytes. Raises
    :class:`json.JSONDecodeError` and :class:`RecursionError` as :func:`json.loads` does."""
    held = size + sys.getsizeof(text)
    need = held + parse_cost(text, within=budget - held)
    if need > budget:
        raise ReadProblem(
            tr(
                "文件太大：解析它需要约 {n:.0f} MiB 内存（每个文件上限 {b:.0f} MiB）",
                "too large: parsing it would need about {n:.0f} MiB of memory (the limit per file is "
                "{b:.0f} MiB)",
                n=need / 2**20,
                b=budget / 2**20,
            )
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer over the digit limit (sys.get_int_max_str_digits)
        if "digits" not in str(exc):
            raise
        return json.loads(text, parse_int=_int_or_digits)


def limit_memory(budget: int) -> None:
    """In a worker process: cap its address space at what it uses now plus ``budget`` and some
    slack, so a file the estimate misjudged raises ``MemoryError`` there. (Linux only.)"""
    if not sys.platform.startswith("linux"):
        return
    import resource

    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[0])
        now = pages * os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = now + budget + _AS_SLACK
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        if soft == resource.RLIM_INFINITY or soft > want:
            resource.setrlimit(resource.RLIMIT_AS, (want, hard))
    except (OSError, ValueError):
        return
