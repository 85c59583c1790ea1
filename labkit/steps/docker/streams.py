"""Streaming image archives between the engine and a file: overlap, gzip, hash (save / load).

``docker save | gzip`` gets its speed from two processes; :func:`pipelined` gets the same from two
threads (zlib, hashlib and file writes release the GIL). ``benchmarks/docker_save_load.py``
compares the result with the CLI.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from labkit.logic.docker import GZIP_LEVEL

__all__ = ["CHUNK", "HashingReader", "pipelined", "save_image_stream"]

#: Default stream chunk for save / load (1 MiB: big enough to keep syscalls and gzip calls cheap).
CHUNK = 1 << 20


def pipelined(
    chunks: Iterator[bytes], cancel: threading.Event, *, batch: int = CHUNK, depth: int = 8
) -> Iterator[bytes]:
    """Read ``chunks`` in a thread so the engine's stream and our gzip/hash/write overlap.

    The engine sends its HTTP chunks in 32 KiB pieces whatever ``chunk_size`` asks for; they are
    joined into ``batch``-sized blocks so the queue, zlib and ``write`` are called ~30× less often.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    failure: list[BaseException] = []

    def reader() -> None:
        pending: list[bytes] = []
        size = 0
        try:
            for chunk in chunks:
                if cancel.is_set():
                    return
                pending.append(chunk)
                size += len(chunk)
                if size >= batch:
                    q.put(b"".join(pending))
                    pending, size = [], 0
            if pending:
                q.put(b"".join(pending))
        except BaseException as exc:  # handed to the consumer, translated there
            failure.append(exc)
        finally:
            q.put(done)

    thread = threading.Thread(target=reader, daemon=True, name="labkit-docker-stream")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            yield item
        if failure:
            raise failure[0]
    finally:
        cancel.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)


def save_image_stream(
    chunks: Iterator[bytes],
    out: Any,
    *,
    compression: str,
    level: int = GZIP_LEVEL,
    total: int = 0,
    on_progress: Callable[[float], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Write tar ``chunks`` to binary file ``out`` (gzip-compressed if asked), hashing as it goes."""
    digest = hashlib.sha256()
    comp = zlib.compressobj(level, zlib.DEFLATED, 31) if compression == "gzip" else None
    tar_bytes = written = 0
    for chunk in chunks:
        tar_bytes += len(chunk)
        data = comp.compress(chunk) if comp is not None else chunk
        if data:
            digest.update(data)
            out.write(data)
            written += len(data)
        if on_progress is not None and total:
            on_progress(min(tar_bytes / total, 0.99))
        if check_cancel is not None:
            check_cancel()
    if comp is not None:
        data = comp.flush()
        digest.update(data)
        out.write(data)
        written += len(data)
    return {"tar_bytes": tar_bytes, "file_bytes": written, "sha256": digest.hexdigest()}


class HashingReader:
    """Yields a file in chunks for the engine while hashing it and reporting progress."""

    def __init__(self, path: str, chunk: int, on_progress: Callable[[float], None], cancel: threading.Event):
        self.path = path
        self.chunk = chunk
        self.size = os.path.getsize(path)
        self.sha = hashlib.sha256()
        self.read = 0
        self.on_progress = on_progress
        self.cancel = cancel

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while True:
                if self.cancel.is_set():
                    return
                data = fh.read(self.chunk)
                if not data:
                    return
                self.sha.update(data)
                self.read += len(data)
                if self.size:
                    self.on_progress(min(self.read / self.size, 0.99))
                yield data
