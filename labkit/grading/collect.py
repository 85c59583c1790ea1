"""Find submissions (folders, files, zip archives), read each once, and identify the student.

Reading rules, because the files come from students and LMS downloads:

* **Once, as data.** Each file is parsed by one :func:`json.load` straight from the file (or the
  zip member's stream) and classified (:mod:`labkit.grading.classify`); the dict is dropped
  before the next file. Nothing is re-serialized, no nbformat object is built, nothing from the
  file is imported, evaluated or executed (only ``--rerun`` executes, elsewhere).
* **Bounded.** A file (or zip member) above ``max_bytes`` is ``unreadable`` with that reason:
  at most ``max_bytes + 1`` bytes are ever read or decompressed, whatever a header claims; a file
  whose parsed form would need more than :func:`~.reading.memory_budget` is ``too large`` without
  being parsed; JSON nested deeper than the parser allows is ``unreadable`` too
  (:mod:`labkit.grading.reading`).
* **Only what was handed in.** Folders are walked without following links; only regular files
  inside them are read (opened with ``O_NOFOLLOW | O_NONBLOCK``, checked on the descriptor). Zip
  members are read by their directory entry; two with one name are both read. Whatever is left
  out (a link, a pipe, a member whose path leaves the archive) gets a line in ``report.json``
  (:class:`Inputs`); a file that cannot be read keeps its student id.
* **Never a silent zero.** Every failure to read becomes an ``unreadable`` submission with the
  reason (invalid / truncated JSON with its position, not UTF-8, too large, bad zip member).
* Checkpoint folders (``.ipynb_checkpoints``), hidden files and ``__MACOSX`` are skipped.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import stat
import sys
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import lang, tr, use_lang
from labkit.identity import STUDENT_ID_RE

from .classify import Submission, classify_notebook, clean
from .manifest import Manifest
from .reading import (
    ReadProblem,
    limit_memory,
    memory_budget,
    parse_bounded,
    read_file_bytes,
    read_member_bytes,
)

__all__ = [
    "DEFAULT_ID_PATTERN",
    "DEFAULT_MAX_BYTES",
    "Archives",
    "Inputs",
    "Source",
    "compile_id_pattern",
    "find_inputs",
    "find_sources",
    "grade_source",
    "grade_sources",
    "id_from_path",
    "read_source",
    "source_bytes",
]

DEFAULT_ID_PATTERN = r"^(?P<id>[A-Za-z0-9]+)[_\-. ]"
DEFAULT_MAX_BYTES = 256 * 2**20
#: Below this many bytes in all, reading in this process beats starting a pool.
_POOL_MIN_BYTES = 64 * 2**20
_CHUNK = 16
_SKIP_PARTS = (".ipynb_checkpoints", "__MACOSX")
#: An archive with more entries is refused: each reader process holds the whole directory (about
#: 0.5 KB an entry), and an LMS download of a class holds a few thousand.
MAX_ZIP_ENTRIES = 100_000


@dataclass(frozen=True)
class Source:
    """One submitted notebook file: on disk, or a member of a zip archive."""

    path: str  # the file, or the archive
    member: str | None  # the member inside the archive
    display: str  # relative path (archive members: "archive.zip:member"); also what id_pattern sees
    rel: str  # path relative to the input folder / inside the archive
    size: int
    mtime: float
    index: int | None = None  # the member's position in the archive's directory (names may repeat)


@dataclass
class Inputs:
    """What :func:`find_inputs` found: the sources, and a report line for each input that was left
    out or needs a look (``kind``: ``skipped-input`` or ``duplicate-member``; ``reason``: a code;
    ``message``: for a person)."""

    sources: list[Source] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)

    def note(self, kind: str, source: str, reason: str, message: str) -> None:
        self.problems.append({"kind": kind, "source": clean(source), "reason": reason, "message": message})

    def skip(self, source: str, reason: str, message: str) -> None:
        self.note("skipped-input", source, reason, message)


def _skipped(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") or p in _SKIP_PARTS for p in parts)


def find_sources(inputs: Sequence[str | os.PathLike[str]]) -> list[Source]:
    """Every submission under ``inputs`` (folders are searched recursively for ``*.ipynb``)."""
    return find_inputs(inputs).sources


def find_inputs(inputs: Sequence[str | os.PathLike[str]]) -> Inputs:
    """Every submission under ``inputs``, and what was left out and why.

    Folders are walked without following symbolic links: only regular files inside the folder
    are sources; a link (to a file, a folder, or nothing), a FIFO, socket or device named
    ``*.ipynb``, and a folder that cannot be listed each get a ``skipped-input`` line. A file or
    archive named on the command line is taken as given (its link, if it is one, is resolved).
    Hidden files, ``.ipynb_checkpoints`` and ``__MACOSX`` are left out silently.
    """
    found = Inputs()
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            _walk_folder(p, found)
        elif p.is_file() and p.suffix.lower() == ".zip":
            _zip_sources(p, found)
        elif p.is_file():
            st = p.stat()
            real = os.path.realpath(p)
            found.sources.append(Source(real, None, clean(p.name), clean(p.name), st.st_size, st.st_mtime))
        elif p.exists():
            raise InvalidField(
                "submissions",
                str(raw),
                tr("不是普通文件或文件夹", "is not a regular file or folder"),
                tr("请给出文件夹、.ipynb 或 .zip 文件", "pass folders, .ipynb or .zip files"),
            )
        else:
            raise InvalidField(
                "submissions", str(raw), "does not exist", "pass folders, .ipynb files or .zip files"
            )
    return found


def _walk_folder(top: Path, found: Inputs) -> None:
    """Regular ``*.ipynb`` files under ``top``, in path order; links and special files reported."""
    hits: list[tuple[tuple[str, ...], Source]] = []

    def unlistable(exc: OSError) -> None:
        where = Path(exc.filename or top)
        rel = where.relative_to(top).as_posix() if where != top and where.is_relative_to(top) else str(where)
        found.skip(
            rel, "unlistable", tr("无法列出文件夹：{e}", "cannot list the folder: {e}", e=exc.strerror or exc)
        )

    for root, dirs, files in os.walk(top, onerror=unlistable):
        here = Path(root)
        keep = []
        for d in sorted(dirs):
            if _skipped([d]):
                continue
            if (here / d).is_symlink():
                found.skip((here / d).relative_to(top).as_posix(), "symlink", _link_message(here / d))
                continue
            keep.append(d)
        dirs[:] = keep
        for name in files:
            if _skipped([name]) or not name.lower().endswith(".ipynb"):
                continue
            f = here / name
            rel = f.relative_to(top)
            shown = clean(rel.as_posix())  # a file name may hold bytes that are not UTF-8
            try:
                st = f.lstat()
            except OSError as exc:
                found.skip(
                    shown, "unlistable", tr("无法读取：{e}", "cannot read it: {e}", e=exc.strerror or exc)
                )
                continue
            if stat.S_ISLNK(st.st_mode):
                found.skip(shown, "symlink", _link_message(f))
            elif not stat.S_ISREG(st.st_mode):
                found.skip(
                    shown,
                    "not-regular",
                    tr("不是普通文件（管道、设备或套接字）", "not a regular file (a pipe, device or socket)"),
                )
            else:
                hits.append((rel.parts, Source(str(f), None, shown, shown, st.st_size, st.st_mtime)))
    found.sources.extend(src for _parts, src in sorted(hits, key=lambda h: h[0]))


def _link_message(link: Path) -> str:
    try:
        target = clean(os.readlink(link))[:200]
    except OSError:
        target = "?"
    if not link.exists():
        return tr(
            "指向不存在目标（{t}）的符号链接：只读取输入文件夹内的普通文件",
            "a symbolic link to something that does not exist ({t}): only regular files inside the "
            "input folder are read",
            t=target,
        )
    return tr(
        "符号链接（指向 {t}）：只读取输入文件夹内的普通文件",
        "a symbolic link (to {t}): only regular files inside the input folder are read",
        t=target,
    )


def _zip_sources(path: Path, found: Inputs) -> None:
    """The archive's notebook members, each by its position (two members may share a name: both are
    read and reported); members whose names leave the archive, and links, are reported and left out."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidField(
            "submissions", str(path), f"is not a readable zip ({exc})", "download it again"
        ) from exc
    if len(infos) > MAX_ZIP_ENTRIES:
        raise InvalidField(
            "submissions",
            str(path),
            tr(
                "有 {n} 个条目，超过上限 {m}",
                "holds {n} entries, more than labkit reads ({m})",
                n=len(infos),
                m=MAX_ZIP_ENTRIES,
            ),
            tr("请检查下载的文件", "check the download"),
        )
    accepted: list[tuple[int, zipfile.ZipInfo]] = []
    for index, info in enumerate(infos):
        name = info.filename
        if info.is_dir() or not name.lower().endswith(".ipynb"):
            continue
        shown = f"{path.name}:{name}"
        parts = [q for q in re.split(r"[/\\]", name) if q not in ("", ".")]
        if name.startswith(("/", "\\")) or ".." in parts or re.match(r"[A-Za-z]:", name):
            found.skip(
                shown,
                "traversal",
                tr("成员路径指向压缩包之外，不读取", "the member's path leads outside the archive; not read"),
            )
        elif stat.S_ISLNK(info.external_attr >> 16):
            found.skip(
                shown, "symlink", tr("压缩包里的符号链接，不读取", "a symbolic link in the archive; not read")
            )
        elif not _skipped(parts):
            accepted.append((index, info))
    counts = Counter(info.filename for _n, info in accepted)
    seen: Counter[str] = Counter()
    for index, info in accepted:
        name = info.filename
        shown = f"{path.name}:{name}"
        if counts[name] > 1:
            seen[name] += 1
            shown = f"{shown} ({seen[name]}/{counts[name]})"
        try:
            mtime = _dt.datetime(*info.date_time).timestamp()
        except (ValueError, OverflowError):
            mtime = 0.0
        found.sources.append(Source(str(path), name, clean(shown), name, info.file_size, mtime, index))
    for name, n in counts.items():
        if n > 1:
            found.note(
                "duplicate-member",
                f"{path.name}:{name}",
                "duplicate-name",
                tr(
                    "压缩包里有 {n} 个同名成员：每个都已单独读取和评分",
                    "the archive holds {n} members with this name: each was read and graded on its own",
                    n=n,
                ),
            )


def compile_id_pattern(pattern: str | None) -> re.Pattern[str] | None:
    """Compile ``--id-pattern`` (``None``: the default rule), checking it has a group ``id``."""
    if pattern is None:
        return None
    try:
        rx = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:  # "((((…" / a{99999999999}
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


def source_bytes(src: Source, max_bytes: int, archives: Archives) -> bytes:
    """The file's bytes, as :func:`read_source` reads them: a regular file only, a zip member by
    its directory entry, at most ``max_bytes`` (raises :class:`~.reading.ReadProblem`,
    :class:`OSError`, :class:`zipfile.BadZipFile`, :class:`KeyError`)."""
    if src.member is None:
        return read_file_bytes(src.path, max_bytes)
    zf = archives.open(src.path)
    if src.index is None:
        info = zf.getinfo(src.member)
    else:
        infos = zf.infolist()
        if not 0 <= src.index < len(infos) or infos[src.index].filename != src.member:
            raise KeyError(src.member)
        info = infos[src.index]
    return read_member_bytes(zf, info, max_bytes)


def read_source(
    src: Source, max_bytes: int = DEFAULT_MAX_BYTES, archives: Archives | None = None
) -> tuple[object, str | None]:
    """``(parsed JSON, None)`` or ``(None, why it is unreadable)``; one read, one parse.

    At most ``max_bytes`` are read and at most :func:`~.reading.memory_budget` bytes of memory
    are used (see :mod:`labkit.grading.reading`). ``archives``: the batch's open zip files
    (without one, an archive is opened for this read)."""
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
    budget = memory_budget(max_bytes)
    try:
        raw = source_bytes(src, max_bytes, archives)
        size = len(raw)
        text = raw.decode("utf-8-sig")
        del raw  # only the text is kept while parsing
        return parse_bounded(text, size, budget), None
    except ReadProblem as exc:
        return None, str(exc)
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
        return None, tr(
            "文件太大：读取时超出内存上限（每个文件 {b:.0f} MiB）",
            "too large: it ran out of memory while being read (the limit per file is {b:.0f} MiB)",
            b=budget / 2**20,
        )
    except (
        OSError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        KeyError,
        EOFError,
        RuntimeError,  # an encrypted member
        NotImplementedError,
        zlib.error,
    ) as exc:
        return None, tr("无法读取：{e}", "cannot read it: {e}", e=clean(f"{type(exc).__name__}: {exc}")[:300])


def _unreadable(
    src: Source, manifest: Manifest, id_pattern: re.Pattern[str] | None, reason: str
) -> Submission:
    """An ``unreadable`` submission that keeps what its path says: the student id and, where the
    name tells, the notebook (so the student stays in ``lms.csv`` with an empty total)."""
    sub = Submission(source=src.display, status="unreadable", reason=reason, size=src.size, mtime=src.mtime)
    named = [n for n in manifest.notebooks if n.stem and n.stem in src.rel]
    if named:
        sub.notebook = max(named, key=lambda n: len(n.stem)).name
    elif len(manifest.notebooks) == 1:
        sub.notebook = manifest.notebooks[0].name
    sub.file_id = id_from_path(src.rel, manifest, id_pattern)
    return sub


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
        return _unreadable(src, manifest, id_pattern, problem)
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
    """:func:`grade_source`, where even a bug (a file no rule foresaw) only makes that file
    unreadable; it keeps its student id."""
    try:
        return grade_source(src, manifest, id_pattern=id_pattern, max_bytes=max_bytes, archives=archives)
    except Exception as exc:
        reason = tr(
            "读取时出错：{e}", "failed while reading: {e}", e=clean(f"{type(exc).__name__}: {exc}")[:300]
        )
        return _unreadable(src, manifest, id_pattern, reason)


# -- many ----------------------------------------------------------------------------------------
#: Set once in each grading worker *process* by the pool's initializer (never in the parent): the
#: standard way to give a process pool's workers what every chunk needs without re-sending it.
_WORKER: dict[str, object] = {}


def _init_worker(manifest: Manifest, id_pattern: re.Pattern[str] | None, max_bytes: int) -> None:
    """Per worker *process*: what every chunk needs, sent once instead of with each chunk."""
    _WORKER.update(manifest=manifest, id_pattern=id_pattern, max_bytes=max_bytes)


def _start_worker(manifest: Manifest, id_pattern: re.Pattern[str] | None, max_bytes: int) -> None:
    """The pool's initializer: :func:`_init_worker`, and this process's memory capped
    (:func:`~.reading.limit_memory`), so one file cannot take the machine's memory."""
    limit_memory(memory_budget(max_bytes))
    _init_worker(manifest, id_pattern, max_bytes)


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
    Memory: every file is read within :func:`~.reading.memory_budget` (``4 × max_bytes``, at
    least 256 MiB), so the batch needs at most ``jobs`` times that; workers are also capped with
    ``RLIMIT_AS``. A chunk whose worker died is read again one file per fresh process, never here.
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
    initargs = (manifest, id_pattern, max_bytes)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker, initargs=initargs) as pool:
        futures = {
            pool.submit(_grade_in_worker, [sources[n] for n in chunk], language): chunk for chunk in chunks
        }
        for fut in as_completed(futures):
            chunk = futures[fut]
            try:
                subs = fut.result()
            except Exception:  # a worker died (killed for memory?), and with it the pool
                retry.extend(chunk)
                continue
            for n, sub in zip(chunk, subs, strict=True):
                results[n] = sub
                done(sub)
    for n in sorted(retry):  # each file again in a process of its own, never in this one
        results[n] = _grade_isolated(sources[n], ctx, initargs, language)
        done(results[n])
    return [results[n] for n in range(len(sources))]


def _grade_isolated(
    src: Source,
    ctx: Any,
    initargs: tuple[Manifest, re.Pattern[str] | None, int],
    language: str,
) -> Submission:
    """One file read in a fresh, memory-capped process; if that process dies too, the file is
    ``unreadable`` (it keeps its student id) and this process never holds its contents."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=ctx, initializer=_start_worker, initargs=initargs) as pool:
        try:
            (sub,) = pool.submit(_grade_in_worker, [src], language).result()
            return sub
        except Exception:
            pass
    manifest, id_pattern, _max_bytes = initargs
    reason = tr(
        "读取它的进程意外退出（内存不足被终止？）",
        "the process reading it died (killed for lack of memory?)",
    )
    return _unreadable(src, manifest, id_pattern, reason)
