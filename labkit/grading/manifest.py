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
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit._version import __version__
from labkit.checks import now_iso
from labkit.errors import InvalidField
from labkit.notebooks import cell_labkit, cell_tags

__all__ = [
    "CHECK_ID_RE",
    "CHECK_TAG",
    "INSTRUCTOR_TAG",
    "MANIFEST_FORMAT",
    "NAME_RE",
    "CheckSpec",
    "Manifest",
    "NotebookSpec",
    "build_release",
    "course_check_cells",
    "new_release_id",
    "normalize_source",
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
        """Rebuild a manifest, raising :class:`InvalidField` naming what is wrong."""

        def bad(problem: str) -> InvalidField:
            return InvalidField(
                "manifest", where, problem, "pass the manifest.json written by labkit release"
            )

        if not isinstance(data, Mapping) or data.get("format") != MANIFEST_FORMAT:
            raise bad(f"is not a {MANIFEST_FORMAT} file")
        try:
            notebooks = []
            for nb in data["notebooks"]:
                checks = tuple(
                    CheckSpec(
                        check=str(c["check"]),
                        points=_points(c["points"], f"{nb['name']}: {c['check']}"),
                        source_sha256=str(c["source_sha256"]),
                        cell_id=None if c.get("cell_id") is None else str(c["cell_id"]),
                        index=int(c["index"]),
                        rerun=bool(c.get("rerun", False)),
                        source=_optional_text(c.get("source")),
                    )
                    for c in nb["checks"]
                )
                setup = tuple(str(s) for s in nb.get("setup", ()))
                notebooks.append(NotebookSpec(str(nb["name"]), str(nb["release"]), checks, setup))
            manifest = cls(
                course=str(data["course"]),
                assignment=str(data["assignment"]),
                notebooks=tuple(notebooks),
                created=str(data.get("created", "")),
                labkit_version=str(data.get("labkit_version", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"is malformed ({type(exc).__name__}: {exc})") from exc
        if not manifest.notebooks:
            raise bad("lists no notebook")
        return manifest


def _optional_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"check source is {type(value).__name__}, not text")


def _points(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidField("points", value, f"of {where} is not a whole number ≥ 0", 'e.g. "points": 2')
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
