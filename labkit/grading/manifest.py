"""Check cells, their checksums, student versions and the instructor's manifest (pure).

A course notebook marks each *graded* code cell twice, so neither can be lost by accident (the
marks: :func:`course_check_cells`). ``labkit release`` turns course notebooks into **student
versions** and a **manifest** the instructor keeps (what each holds: :func:`build_release`).

Functions take and return plain dicts (a notebook as :func:`json.load` returns it); nothing here
reads or writes files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit._version import __version__
from labkit.checks import now_iso
from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.notebooks import cell_labkit, cell_tags

__all__ = [
    "CHECK_ID_RE",
    "CHECK_TAG",
    "INSTRUCTOR_TAG",
    "MANIFEST_FORMAT",
    "MAX_MANIFEST_BYTES",
    "MAX_MANIFEST_DEPTH",
    "MAX_POINTS",
    "NAME_RE",
    "CheckSpec",
    "Manifest",
    "NotebookSpec",
    "build_release",
    "course_check_cells",
    "new_release_id",
    "normalize_source",
    "parse_manifest",
    "source_sha256",
]

MANIFEST_FORMAT = "labkit-manifest/1"
CHECK_TAG = "labkit-check"
#: Cells with this tag exist only in the course notebook (solutions, notes); release drops them.
INSTRUCTOR_TAG = "labkit-instructor"
CHECK_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
#: Course and assignment ids: short, file-name safe.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Notebook-level metadata keys execution tools add; a student version starts without them.
_RUN_METADATA = ("papermill", "widgets")
_CELL_RUN_METADATA = ("execution", "papermill", "collapsed", "scrolled")
#: Points of one check: a whole number from 0 to this.
MAX_POINTS = 1000
#: A manifest file larger than this is refused unread (a real one holds a few KiB per notebook).
MAX_MANIFEST_BYTES = 4 * 2**20
#: Lists and objects nested deeper than this are refused (the format itself needs 5 levels).
MAX_MANIFEST_DEPTH = 16
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


# -- checksums -----------------------------------------------------------------------------------
def normalize_source(source: str | Sequence[str] | None) -> str:
    """The cell source as one string, without what editors change silently.

    A list of lines is joined (nbformat allows both), ``\\r\\n`` becomes ``\\n``, trailing whitespace
    is stripped from every line and trailing empty lines are dropped: Jupyter, VS Code and a text
    editor that "trims on save" all produce the same text, so re-saving is never tampering.
    """
    if source is None:
        text = ""
    elif isinstance(source, str):
        text = source
    else:
        text = "".join(str(s) for s in source)
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def source_sha256(source: str | Sequence[str] | None) -> str:
    """SHA-256 hex of :func:`normalize_source` (lone surrogates, which JSON allows, included)."""
    return hashlib.sha256(normalize_source(source).encode("utf-8", "surrogatepass")).hexdigest()


def new_release_id() -> str:
    """A random id for one notebook of one release run."""
    return uuid.uuid4().hex[:16]


# -- manifest data -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckSpec:
    """What the manifest fixes about one check cell."""

    check: str
    points: int
    source_sha256: str
    cell_id: str | None
    index: int
    rerun: bool = False
    #: The instructor's check code (rerun checks only): ``labkit grade --rerun`` executes this, never
    #: the submission's copy of the cell (see :mod:`labkit.grading.rerun`).
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "check": self.check,
            "points": self.points,
            "source_sha256": self.source_sha256,
            "cell_id": self.cell_id,
            "index": self.index,
            "rerun": self.rerun,
        }
        if self.source is not None:
            data["source"] = self.source
        return data


@dataclass(frozen=True)
class NotebookSpec:
    """One released notebook: its file name, release id and graded checks in document order."""

    name: str
    release: str
    checks: tuple[CheckSpec, ...]
    #: Sources of the cells marked ``"setup": true`` (imports, the work folder): what the
    #: instructor's rerun check code needs before it runs.
    setup: tuple[str, ...] = ()

    @property
    def total_points(self) -> int:
        return sum(c.points for c in self.checks)

    @property
    def stem(self) -> str:
        return self.name[: -len(".ipynb")] if self.name.endswith(".ipynb") else self.name

    @property
    def has_rerun(self) -> bool:
        return any(c.rerun for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "release": self.release,
            "total_points": self.total_points,
            "checks": [c.to_json() for c in self.checks],
        }
        if self.setup:
            data["setup"] = list(self.setup)
        return data


@dataclass(frozen=True)
class Manifest:
    """The instructor's record of a release (``labkit release`` writes it, ``labkit grade`` reads it)."""

    course: str
    assignment: str
    notebooks: tuple[NotebookSpec, ...]
    created: str = field(default_factory=now_iso)
    labkit_version: str = __version__

    @property
    def total_points(self) -> int:
        return sum(nb.total_points for nb in self.notebooks)

    def by_release(self, release: object) -> NotebookSpec | None:
        return next((nb for nb in self.notebooks if nb.release == release), None)

    def by_name(self, name: str) -> NotebookSpec | None:
        return next((nb for nb in self.notebooks if nb.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "course": self.course,
            "assignment": self.assignment,
            "created": self.created,
            "labkit_version": self.labkit_version,
            "total_points": self.total_points,
            "notebooks": [nb.to_json() for nb in self.notebooks],
        }

    @classmethod
    def from_json(cls, data: object, *, where: str = "manifest") -> Manifest:
        """Rebuild a manifest, raising :class:`InvalidField` naming the entry that is wrong.

        Strict, because a manifest decides grades: every field has its type (``"rerun": "false"``
        is refused, not read as true), names and ids are unique (a notebook listed twice would
        count twice), every notebook has checks, points are whole numbers from 0 to
        :data:`MAX_POINTS`. The error names the entry, e.g. ``notebooks[1].checks[3].rerun``.
        Unknown keys are ignored.
        """
        return _Reader(where).manifest(data)


def parse_manifest(text: str | bytes, *, where: str = "manifest") -> Manifest:
    """:meth:`Manifest.from_json` of a manifest file's text, bounded: at most
    :data:`MAX_MANIFEST_BYTES`, nested at most :data:`MAX_MANIFEST_DEPTH` deep (the format needs 5).

    Raises :class:`InvalidField`, never ``RecursionError`` or a JSON error.
    """
    reader = _Reader(where)
    if len(text) > MAX_MANIFEST_BYTES:
        raise reader.bad(
            "", tr("太大（超过 {n} MiB）", "is too large (over {n} MiB)", n=MAX_MANIFEST_BYTES >> 20)
        )
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise reader.bad("", tr("嵌套太深", "is nested too deeply")) from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a number of over 4300 digits
        raise reader.bad("", tr("不是 JSON（{e}）", "is not JSON ({e})", e=exc)) from exc
    if _deeper_than(data, MAX_MANIFEST_DEPTH):
        raise reader.bad(
            "", tr("嵌套超过 {n} 层", "is nested more than {n} levels deep", n=MAX_MANIFEST_DEPTH)
        )
    return reader.manifest(data)


def _deeper_than(data: object, limit: int) -> bool:
    """Whether lists and objects in ``data`` nest more than ``limit`` levels (iterative)."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        obj, depth = stack.pop()
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _show(value: object) -> str:
    """A value, short, for a message (a 400-digit number is not printed whole)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return tr("一个 {n} 位的数", "a {n}-bit number", n=value.bit_length())
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Reader:
    """Reads a manifest's JSON field by field; :meth:`bad` names the entry (``notebooks[0].name``)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def bad(self, at: str, problem: str) -> InvalidField:
        return InvalidField(
            "manifest",
            self.where,
            tr("中的 {at} {p}", "{at} {p}", at=at, p=problem) if at else problem,
            tr(
                "请传入 labkit release 写出的清单（或改正这一项）",
                "pass the manifest labkit release wrote (or fix that entry)",
            ),
        )

    def get(self, obj: Mapping[str, Any], key: str, at: str, kind: type, what: str) -> Any:
        path = f"{at}.{key}" if at else key
        if key not in obj:
            raise self.bad(path, tr("缺失", "is missing"))
        value = obj[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.bad(path, tr("是 {v}，应为{w}", "is {v}, not {w}", v=_show(value), w=what))
        return value

    def text(self, obj: Mapping[str, Any], key: str, at: str, pattern: re.Pattern[str] | None = None) -> str:
        value: str = self.get(obj, key, at, str, tr("文本", "text"))
        if (
            not value
            or len(value) > 255
            or "\x00" in value
            or (pattern is not None and not pattern.match(value))
        ):
            raise self.bad(
                f"{at}.{key}" if at else key,
                tr("是 {v}，不是有效的名称", "is {v}, not a valid name", v=_show(value)),
            )
        return value

    def optional_text(self, obj: Mapping[str, Any], key: str) -> str:
        return self.get(obj, key, "", str, tr("文本", "text")) if key in obj else ""

    def manifest(self, data: object) -> Manifest:
        if not isinstance(data, Mapping) or data.get("format") != MANIFEST_FORMAT:
            raise self.bad("", tr("不是 {f} 文件", "is not a {f} file", f=MANIFEST_FORMAT))
        course = self.text(data, "course", "", NAME_RE)
        assignment = self.text(data, "assignment", "", NAME_RE)
        items = self.get(data, "notebooks", "", list, tr("列表", "a list"))
        if not items:
            raise self.bad("notebooks", tr("是空的", "is empty"))
        notebooks = tuple(self.notebook(nb, f"notebooks[{i}]") for i, nb in enumerate(items))
        self.unique([(nb.name, f"notebooks[{i}].name") for i, nb in enumerate(notebooks)])
        self.unique([(nb.release, f"notebooks[{i}].release") for i, nb in enumerate(notebooks)])
        self.unique(
            [
                (c.check, f"notebooks[{i}].checks[{j}].check")
                for i, nb in enumerate(notebooks)
                for j, c in enumerate(nb.checks)
            ]
        )
        return Manifest(
            course=course,
            assignment=assignment,
            notebooks=notebooks,
            created=self.optional_text(data, "created"),
            labkit_version=self.optional_text(data, "labkit_version"),
        )

    def notebook(self, nb: object, at: str) -> NotebookSpec:
        if not isinstance(nb, Mapping):
            raise self.bad(at, tr("是 {v}，应为对象", "is {v}, not an object", v=_show(nb)))
        name = self.text(nb, "name", at)
        if "/" in name or "\\" in name:
            raise self.bad(f"{at}.name", tr("是 {v}，不是文件名", "is {v}, not a file name", v=_show(name)))
        release = self.text(nb, "release", at)
        items = self.get(nb, "checks", at, list, tr("列表", "a list"))
        if not items:
            raise self.bad(
                f"{at}.checks",
                tr("是空的：这个笔记本没有评分检查", "is empty: the notebook has no graded check"),
            )
        checks = tuple(self.check(c, f"{at}.checks[{j}]") for j, c in enumerate(items))
        self.unique([(c.index, f"{at}.checks[{j}].index") for j, c in enumerate(checks)])
        setup = self.get(nb, "setup", at, list, tr("列表", "a list")) if "setup" in nb else []
        for k, code in enumerate(setup):
            if not isinstance(code, str):
                raise self.bad(f"{at}.setup[{k}]", tr("是 {v}，应为文本", "is {v}, not text", v=_show(code)))
        return NotebookSpec(name, release, checks, tuple(setup))

    def check(self, c: object, at: str) -> CheckSpec:
        if not isinstance(c, Mapping):
            raise self.bad(at, tr("是 {v}，应为对象", "is {v}, not an object", v=_show(c)))
        check = self.text(c, "check", at, CHECK_ID_RE)
        points = self.get(c, "points", at, int, tr("整数", "a whole number"))
        if not 0 <= points <= MAX_POINTS:
            raise self.bad(
                f"{at}.points",
                tr("是 {v}，应在 0 到 {m} 之间", "is {v}, not from 0 to {m}", v=_show(points), m=MAX_POINTS),
            )
        digest = self.get(c, "source_sha256", at, str, tr("文本", "text"))
        if not _SHA256_RE.match(digest):
            raise self.bad(f"{at}.source_sha256", tr("不是 SHA-256 值", "is not a SHA-256 hex digest"))
        index = self.get(c, "index", at, int, tr("整数", "a whole number"))
        if index < 0:
            raise self.bad(f"{at}.index", tr("是负数", "is negative"))
        cell_id = c.get("cell_id")
        if cell_id is not None:
            cell_id = self.get(c, "cell_id", at, str, tr("文本或 null", "text or null"))
        rerun = self.get(c, "rerun", at, bool, "true / false") if "rerun" in c else False
        source = c.get("source")
        if source is not None:
            source = self.get(c, "source", at, str, tr("文本或 null", "text or null"))
        return CheckSpec(check, points, digest, cell_id, index, rerun, source)

    def unique(self, values: Sequence[tuple[object, str]]) -> None:
        seen: dict[object, str] = {}
        for value, at in values:
            if value in seen:
                raise self.bad(
                    at, tr("是 {v}，与 {o} 重复", "is {v}, the same as {o}", v=_show(value), o=seen[value])
                )
            seen[value] = at


def _points(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_POINTS:
        raise InvalidField(
            "points",
            _show(value),
            tr(
                "（{w}）不是 0 到 {m} 之间的整数",
                "of {w} is not a whole number from 0 to {m}",
                w=where,
                m=MAX_POINTS,
            ),
            tr('例如 "points": 2', 'e.g. "points": 2'),
        )
    return value


# -- course notebooks ----------------------------------------------------------------------------
def course_check_cells(nb: Mapping[str, Any], *, where: str = "notebook") -> list[tuple[int, dict[str, Any]]]:
    """``(index, cell)`` of every graded check cell of a course notebook, validated.

    A graded code cell is marked twice, so neither can be lost by accident::

        cell["metadata"]["labkit"] = {"check": "ch1.disk.create.qcow2", "points": 2}   # rerun: true optional
        cell["metadata"]["tags"]   = [..., "labkit-check"]

    ``"rerun": true`` marks a check whose result the grading machine can re-create from the files
    a run leaves in the work folder (``labkit grade --rerun``); the cells its code needs first
    (imports, ``work = session(...)``) carry ``{"labkit": {"setup": true}}``.

    The cell's output is the check result its step displays (:data:`labkit.checks.CHECK_MIME`).

    Raises :class:`InvalidField` for a half-marked cell (tag without metadata or the reverse), a
    malformed check id or points, or the same check id on two cells.
    """
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise InvalidField("notebook", where, "has no 'cells' list", "pass a Jupyter notebook (.ipynb)")
    found: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        meta = cell_labkit(cell)
        tagged = CHECK_TAG in cell_tags(cell)
        marked = meta is not None and "check" in meta
        if not tagged and not marked:
            continue
        if not (tagged and marked):
            raise InvalidField(
                "check cell",
                f"{where} cell[{index}]",
                "is only half marked" + (" (tag, no metadata)" if tagged else " (metadata, no tag)"),
                f'give it both the tag "{CHECK_TAG}" and metadata '
                '{"labkit": {"check": ..., "points": ...}}',
            )
        if cell.get("cell_type") != "code":
            raise InvalidField(
                "check cell", f"{where} cell[{index}]", "is not a code cell", "mark code cells"
            )
        assert meta is not None
        check = meta.get("check")
        if not isinstance(check, str) or not CHECK_ID_RE.match(check):
            raise InvalidField(
                "check", check, f"in {where} cell[{index}] is not a check id", "e.g. ch1.disk.create"
            )
        _points(meta.get("points"), f"{where} cell[{index}]")
        if not isinstance(meta.get("rerun", False), bool):
            raise InvalidField(
                "rerun", meta.get("rerun"), f"in {where} cell[{index}] is not true/false", '"rerun": true'
            )
        if check in seen:
            raise InvalidField(
                "check",
                check,
                f"marks cells {seen[check]} and {index} of {where}",
                "use one cell per check id",
            )
        seen[check] = index
        found.append((index, cell))
    return found


def _student_cell(cell: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(cell)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in _CELL_RUN_METADATA:
            meta.pop(key, None)
    if out.get("cell_type") == "code":
        out["outputs"] = []
        out["execution_count"] = None
    return out


def build_release(
    nb: Mapping[str, Any], *, name: str, course: str, assignment: str, release: str | None = None
) -> tuple[dict[str, Any], NotebookSpec]:
    """The student version of course notebook ``nb`` and its manifest entry.

    ``name`` is the notebook's file name; ``release`` defaults to a fresh random id. Raises
    :class:`InvalidField` for bad ids or check cells, or when the notebook has no graded cell.

    * The **student version**: outputs and execution counts cleared, cells tagged
      ``labkit-instructor`` dropped, and notebook metadata ``labkit = {course, assignment,
      release}`` (``release`` is a random id per notebook and release run). No checksum goes into a
      student's file: nbgrader keeps its checksums there, where the student can edit them along
      with the cell.
    * The **manifest** entry the instructor keeps: the notebook's release id and per check cell the
      check id, the points, the SHA-256 of the normalized source (:func:`normalize_source`), the
      cell's nbformat ``id`` and its index in the student version; for ``rerun`` checks also the
      cell's code, and the code of the cells marked ``setup`` (what ``labkit grade --rerun`` runs).
    """
    for fld, value in (("course", course), ("assignment", assignment)):
        if not isinstance(value, str) or not NAME_RE.match(value):
            raise InvalidField(
                fld, value, "is not a short id", "use letters, digits and _ - . e.g. bigdata-2026"
            )
    if nb.get("nbformat") != 4:
        raise InvalidField(
            "notebook", name, f"is nbformat {nb.get('nbformat')!r}", "save it with Jupyter 4+ (nbformat 4)"
        )
    course_check_cells(nb, where=name)  # validates every mark before anything is built
    release = release or new_release_id()
    kept = [c for c in nb["cells"] if isinstance(c, dict) and INSTRUCTOR_TAG not in cell_tags(c)]
    cells = [_student_cell(c) for c in kept]
    student: dict[str, Any] = {k: copy.deepcopy(v) for k, v in nb.items() if k != "cells"}
    student["cells"] = cells
    meta = student.setdefault("metadata", {})
    for key in _RUN_METADATA:
        meta.pop(key, None)
    old = meta.get("labkit") if isinstance(meta.get("labkit"), dict) else {}
    meta["labkit"] = {**old, "course": course, "assignment": assignment, "release": release}
    checks = []
    for index, cell in course_check_cells(student, where=name):
        lk = cell_labkit(cell) or {}
        cid = cell.get("id")
        rerun = lk.get("rerun", False) is True
        checks.append(
            CheckSpec(
                check=str(lk["check"]),
                points=int(lk["points"]),
                source_sha256=source_sha256(cell.get("source")),
                cell_id=cid if isinstance(cid, str) else None,
                index=index,
                rerun=rerun,
                source=normalize_source(cell.get("source")) if rerun else None,
            )
        )
    if not checks:
        raise InvalidField(
            "notebook",
            name,
            "has no graded check cell",
            f'mark check cells with the tag "{CHECK_TAG}" and metadata {{"labkit": {{"check", "points"}}}}',
        )
    setup = tuple(
        normalize_source(c.get("source"))
        for c in cells
        if c.get("cell_type") == "code" and (cell_labkit(c) or {}).get("setup") is True
    )
    return student, NotebookSpec(name=name, release=release, checks=tuple(checks), setup=setup)
