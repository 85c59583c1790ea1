"""Find submissions (folders, files, zip archives), read each once, and identify the student.

Reading rules, because the files come from students and LMS downloads:

* **Once, as data.** Each file is parsed by one :func:`json.load` straight from the file (or the
  zip member's stream) and classified (:mod:`labkit.grading.classify`); the dict is dropped
  before the next file. Nothing is re-serialized, no nbformat object is built, nothing from the
  file is imported, evaluated or executed (only ``--rerun`` executes, elsewhere).
* **Bounded.** A file (or zip member, by its declared size, which :mod:`zipfile` enforces while
  reading) above ``max_bytes`` is ``unreadable`` with that reason instead of exhausting memory;
  JSON nested deeper than the parser allows is ``unreadable`` too.
* **Never a silent zero.** Every failure to read becomes an ``unreadable`` submission with the
  reason (invalid / truncated JSON with its position, not UTF-8, too large, bad zip member).
* Checkpoint folders (``.ipynb_checkpoints``), hidden files and ``__MACOSX`` are skipped.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import InvalidField
from labkit.i18n import lang, tr, use_lang
from labkit.identity import STUDENT_ID_RE

from .classify import Submission, classify_notebook, clean
from .manifest import Manifest

__all__ = [
    "DEFAULT_ID_PATTERN",
    "DEFAULT_MAX_BYTES",
    "Archives",
    "Source",
    "compile_id_pattern",
    "find_sources",
    "grade_source",
    "grade_sources",
    "id_from_path",
    "read_source",
]

DEFAULT_ID_PATTERN = r"^(?P<id>[A-Za-z0-9]+)[_\-. ]"
DEFAULT_MAX_BYTES = 256 * 2**20
#: Below this many bytes in all, reading in this process beats starting a pool.
_POOL_MIN_BYTES = 64 * 2**20
_CHUNK = 16
_SKIP_PARTS = (".ipynb_checkpoints", "__MACOSX")


@dataclass(frozen=True)
class Source:
    """One submitted notebook file: on disk, or a member of a zip archive."""

    path: str  # the file, or the archive
    member: str | None  # the member inside the archive
    display: str  # relative path (archive members: "archive.zip:member"); also what id_pattern sees
    rel: str  # path relative to the input folder / inside the archive
    size: int
    mtime: float


def _skipped(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") or p in _SKIP_PARTS for p in parts)


def find_sources(inputs: Sequence[str | os.PathLike[str]]) -> list[Source]:
    """Every submission under ``inputs`` (folders are searched recursively for ``*.ipynb``)."""
    found: list[Source] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*.ipynb")):
                rel = f.relative_to(p)
                if _skipped(rel.parts) or not f.is_file():
                    continue
                st = f.stat()
                shown = clean(rel.as_posix())  # a file name may hold bytes that are not UTF-8
                found.append(Source(str(f), None, shown, shown, st.st_size, st.st_mtime))
        elif p.is_file() and p.suffix.lower() == ".zip":
            found.extend(_zip_sources(p))
        elif p.is_file():
            st = p.stat()
            found.append(Source(str(p), None, clean(p.name), clean(p.name), st.st_size, st.st_mtime))
        else:
            raise InvalidField(
                "submissions", str(raw), "does not exist", "pass folders, .ipynb files or .zip files"
            )
    return found


def _zip_sources(path: Path) -> list[Source]:
    import datetime as _dt

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidField(
            "submissions", str(path), f"is not a readable zip ({exc})", "download it again"
        ) from exc
    out = []
    for info in infos:
        name = info.filename
        parts = [q for q in name.split("/") if q]
        if info.is_dir() or not name.lower().endswith(".ipynb") or _skipped(parts):
            continue
        try:
            mtime = _dt.datetime(*info.date_time).timestamp()
        except (ValueError, OverflowError):
            mtime = 0.0
        out.append(Source(str(path), name, clean(f"{path.name}:{name}"), name, info.file_size, mtime))
    return out


def compile_id_pattern(pattern: str | None) -> re.Pattern[str] | None:
    """Compile ``--id-pattern`` (``None``: the default rule), checking it has a group ``id``."""
    if pattern is None:
        return None
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise InvalidField(
            "id_pattern", pattern, f"is not a regular expression ({exc})", r"e.g. ^(?P<id>\d+)_"
        ) from exc
    if "id" not in rx.groupindex:
        raise InvalidField(
            "id_pattern", pattern, "has no group named id", r"write the id part as (?P<id>...)"
        )
    return rx


def id_from_path(rel: str, manifest: Manifest, pattern: re.Pattern[str] | None = None) -> str | None:
    """The student id in a submission's path, or ``None``.

    By default the notebook's own name is removed from the file name and what remains must start
    with the id followed by ``_``, ``-``, ``.`` or a space (``2023123456_zhangsan_01-virtualization
    .ipynb`` → ``2023123456``; ``01-virtualization.ipynb`` → none). ``pattern`` (a regex with a
    group named ``id``) is instead searched in the path relative to the input folder or archive,
    e.g. ``_(?P<id>\\d+)_assignsubmission`` (Moodle) or ``^(?P<id>[^/]+)/`` (a folder per student).
    """
    if pattern is not None:
        m = pattern.search(rel)
    else:
        name = rel.rsplit("/", 1)[-1]
        stem = name[: -len(".ipynb")] if name.lower().endswith(".ipynb") else name
        for nb in sorted(manifest.notebooks, key=lambda n: -len(n.stem)):
            if nb.stem and nb.stem in stem:
                stem = stem.replace(nb.stem, "")
                break
        m = re.search(DEFAULT_ID_PATTERN, stem)
    if m is None or not m.group("id"):
        return None
    sid = m.group("id").strip()
    return sid if STUDENT_ID_RE.match(sid) else None


# -- reading -------------------------------------------------------------------------------------
class Archives:
    """The zip archives open while one batch is read: each opened once, all closed at the end.

    Passed down explicitly (``with Archives() as zips:``), so two graders running at once never
    share or close each other's archives.
    """

    def __init__(self) -> None:
        self._open: dict[str, zipfile.ZipFile] = {}

    def open(self, path: str) -> zipfile.ZipFile:
        zf = self._open.get(path)
        if zf is None:
            zf = self._open[path] = zipfile.ZipFile(path)
        return zf

    def close(self) -> None:
        while self._open:
            _, zf = self._open.popitem()
            zf.close()

    def __enter__(self) -> Archives:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_source(
    src: Source, max_bytes: int = DEFAULT_MAX_BYTES, archives: Archives | None = None
) -> tuple[object, str | None]:
    """``(parsed JSON, None)`` or ``(None, why it is unreadable)``; one read, one parse.

    ``archives``: the batch's open zip files (without one, an archive is opened for this read)."""
    if archives is None:
        with Archives() as own:
            return read_source(src, max_bytes, own)
    if src.size > max_bytes:
        return None, tr(
            "文件太大（{s:.0f} MiB，上限 {m:.0f} MiB）",
            "too large ({s:.0f} MiB; the limit is {m:.0f} MiB)",
            s=src.size / 2**20,
            m=max_bytes / 2**20,
        )
    try:
        if src.member is None:
            with open(src.path, encoding="utf-8-sig") as fh:
                return json.load(fh), None
        info = archives.open(src.path).getinfo(src.member)
        if info.file_size > max_bytes:
            return None, tr("文件太大", "too large")
        with archives.open(src.path).open(info) as raw:
            return json.load(io.TextIOWrapper(raw, encoding="utf-8-sig")), None
    except json.JSONDecodeError as exc:
        return None, tr(
            "不是有效的 JSON（文件被截断或损坏？）：第 {l} 行第 {c} 列，{m}",
            "not valid JSON (truncated or damaged?): line {l} column {c}: {m}",
            l=exc.lineno,
            c=exc.colno,
            m=exc.msg,
        )
    except UnicodeDecodeError:
        return None, tr("不是 UTF-8 文本", "not UTF-8 text")
    except RecursionError:
        return None, tr("JSON 嵌套过深", "JSON nested too deeply")
    except MemoryError:
        return None, tr("内存不足，无法读取", "not enough memory to read it")
    except (OSError, zipfile.BadZipFile, KeyError, EOFError, zipfile.LargeZipFile) as exc:
        return None, tr("无法读取：{e}", "cannot read it: {e}", e=clean(f"{type(exc).__name__}: {exc}")[:300])


def grade_source(
    src: Source,
    manifest: Manifest,
    *,
    id_pattern: re.Pattern[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    archives: Archives | None = None,
) -> Submission:
    """Read and classify one submission, and take the student id from its path."""
    nb, problem = read_source(src, max_bytes, archives)
    if problem is not None:
        sub = Submission(source=src.display, status="unreadable", reason=problem)
        named = [n for n in manifest.notebooks if n.stem and n.stem in src.rel]
        if named:
            sub.notebook = max(named, key=lambda n: len(n.stem)).name
        elif len(manifest.notebooks) == 1:
            sub.notebook = manifest.notebooks[0].name
    else:
        sub = classify_notebook(nb, manifest, source=src.display)
        del nb
    sub.size, sub.mtime = src.size, src.mtime
    sub.file_id = id_from_path(src.rel, manifest, id_pattern)
    return sub


def _grade_safely(
    src: Source,
    manifest: Manifest,
    id_pattern: re.Pattern[str] | None,
    max_bytes: int,
    archives: Archives,
) -> Submission:
    """:func:`grade_source`, where even a bug (a file no rule foresaw) only makes that file unreadable."""
    try:
        return grade_source(src, manifest, id_pattern=id_pattern, max_bytes=max_bytes, archives=archives)
    except Exception as exc:
        return Submission(
            source=src.display,
            status="unreadable",
            reason=tr(
                "读取时出错：{e}", "failed while reading: {e}", e=clean(f"{type(exc).__name__}: {exc}")[:300]
            ),
            size=src.size,
            mtime=src.mtime,
        )


# -- many ----------------------------------------------------------------------------------------
#: Set once in each grading worker *process* by the pool's initializer (never in the parent): the
#: standard way to give a process pool's workers what every chunk needs without re-sending it.
_WORKER: dict[str, object] = {}


def _init_worker(manifest: Manifest, id_pattern: re.Pattern[str] | None, max_bytes: int) -> None:
    """Per worker *process*: what every chunk needs, sent once instead of with each chunk."""
    _WORKER.update(manifest=manifest, id_pattern=id_pattern, max_bytes=max_bytes)


def _grade_in_worker(chunk: list[Source], language: str) -> list[Submission]:
    """Runs in a worker process; ``language`` is the parent's, passed with the work."""
    with use_lang(language), Archives() as archives:
        return [
            _grade_safely(
                src,
                _WORKER["manifest"],  # type: ignore[arg-type]
                _WORKER["id_pattern"],  # type: ignore[arg-type]
                _WORKER["max_bytes"],  # type: ignore[arg-type]
                archives,
            )
            for src in chunk
        ]


def grade_sources(
    sources: Sequence[Source],
    manifest: Manifest,
    *,
    jobs: int = 1,
    id_pattern: re.Pattern[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    on_done: Callable[[Submission], None] | None = None,
) -> list[Submission]:
    """Grade every source, in input order; ``jobs`` worker processes when the batch is big enough.

    Worker *processes*, because ``json.load`` holds the GIL; each runs only :func:`grade_source`
    and returns a compact :class:`~labkit.grading.classify.Submission` (trimmed evidence, no
    notebook). Small batches are read in this process, where a pool would cost more than it saves.
    """
    done = on_done or (lambda _s: None)
    total = sum(min(s.size, max_bytes) for s in sources)
    workers = min(jobs, len(sources))
    if workers <= 1 or total < _POOL_MIN_BYTES:
        out = []
        with Archives() as archives:
            for src in sources:
                sub = _grade_safely(src, manifest, id_pattern, max_bytes, archives)
                done(sub)
                out.append(sub)
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # fork: workers start in milliseconds and inherit the imported modules; elsewhere spawn.
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    results: dict[int, Submission] = {}
    # Chunks of a few files: one task per file costs more in pickling and queueing than it saves.
    size = max(1, min(_CHUNK, len(sources) // (workers * 4)))
    chunks = [list(range(i, min(i + size, len(sources)))) for i in range(0, len(sources), size)]
    retry: list[int] = []
    language = lang()
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(manifest, id_pattern, max_bytes)
    ) as pool:
        futures = {
            pool.submit(_grade_in_worker, [sources[n] for n in chunk], language): chunk for chunk in chunks
        }
        for fut in as_completed(futures):
            chunk = futures[fut]
            try:
                subs = fut.result()
            except Exception:  # a worker died (killed for memory?): read those files here
                retry.extend(chunk)
                continue
            for n, sub in zip(chunk, subs, strict=True):
                results[n] = sub
                done(sub)
    with Archives() as archives:
        for n in sorted(retry):
            results[n] = _grade_safely(sources[n], manifest, id_pattern, max_bytes, archives)
            done(results[n])
    return [results[n] for n in range(len(sources))]
