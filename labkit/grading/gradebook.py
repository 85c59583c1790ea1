"""From classified submissions to one grade per student (pure: lists in, data out).

Decided here, across submissions, each rule documented where it is applied: **who** a submission
belongs to (:func:`_student_key`), which of a student's files for one notebook is graded
(**duplicates**, :func:`_newest`), check results **copied between students**
(:func:`_detect_copies`), and the **totals**, where an unreadable notebook must never look like a
real zero (:attr:`StudentGrade.total`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit._version import __version__
from labkit.i18n import tr

from .classify import CHECK_STATUSES, CheckGrade, Submission
from .manifest import Manifest, NotebookSpec

__all__ = ["UNGRADED", "Gradebook", "NotebookEntry", "StudentGrade", "assemble", "pick_graded"]

#: Check rows of a notebook that has no readable submission carry this status and no points.
UNGRADED = "ungraded"


@dataclass
class NotebookEntry:
    """One student × one notebook of the assignment."""

    notebook: str
    status: str  # ok | unreadable | foreign | missing
    max_points: int
    source: str | None = None
    reason: str = ""
    checks: list[CheckGrade] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    others: list[dict[str, Any]] = field(default_factory=list)  # the student's other files

    @property
    def points(self) -> int | None:
        if self.status in ("ok", "missing"):
            return sum(c.points for c in self.checks)
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "status": self.status,
            "source": self.source,
            "reason": self.reason,
            "points": self.points,
            "max_points": self.max_points,
            "checks": [c.to_json() for c in self.checks],
            "notes": list(self.notes),
            "other_files": list(self.others),
        }


@dataclass
class StudentGrade:
    """Everything one student gets: per notebook entries, total, and what needs a look."""

    student_id: str
    name: str
    identified: bool
    notebooks: list[NotebookEntry]
    flags: list[str] = field(default_factory=list)  # reason codes an instructor should look at

    @property
    def total(self) -> int | None:
        """Points of ``pass`` checks. A notebook not submitted counts 0 (``missing``); a notebook
        whose only file is ``unreadable`` or ``foreign`` has no score (``None``), so the student's
        total is ``None`` too: it must never look like a real zero."""
        points = [nb.points for nb in self.notebooks]
        return None if any(p is None for p in points) else sum(p for p in points if p is not None)

    @property
    def max_points(self) -> int:
        return sum(nb.max_points for nb in self.notebooks)

    @property
    def status(self) -> str:
        """``ok`` when every notebook was graded or not submitted, else the first problem."""
        return next((nb.status for nb in self.notebooks if nb.points is None), "ok")

    def to_json(self) -> dict[str, Any]:
        return {
            "student_id": self.student_id,
            "name": self.name,
            "identified": self.identified,
            "status": self.status,
            "total": self.total,
            "max_points": self.max_points,
            "flags": list(self.flags),
            "notebooks": [nb.to_json() for nb in self.notebooks],
        }


@dataclass
class Gradebook:
    """The graded class."""

    manifest: Manifest
    students: list[StudentGrade]
    submissions: list[Submission]
    flags: list[dict[str, Any]]

    def check_stats(self) -> list[dict[str, Any]]:
        """Per check of the manifest: status counts over identified students' graded notebooks."""
        stats = []
        for nb in self.manifest.notebooks:
            for spec in nb.checks:
                counts = dict.fromkeys(CHECK_STATUSES, 0)
                for st in self.students:
                    if not st.identified:
                        continue
                    for entry in st.notebooks:
                        if entry.notebook != nb.name or entry.status != "ok":
                            continue
                        for c in entry.checks:
                            if c.check == spec.check:
                                counts[c.status] += 1
                graded = sum(counts.values())
                stats.append(
                    {
                        "notebook": nb.name,
                        "check": spec.check,
                        "points": spec.points,
                        "counts": counts,
                        "graded": graded,
                        "pass_rate": counts["pass"] / graded if graded else None,
                    }
                )
        return stats

    def file_counts(self) -> dict[str, int]:
        out = dict.fromkeys(("ok", "unreadable", "foreign", "duplicate"), 0)
        for s in self.submissions:
            out[s.status] = out.get(s.status, 0) + 1
        return out

    def needs_attention(self) -> bool:
        """Something an instructor should look at before publishing grades."""
        return (
            bool(self.flags)
            or any(set(st.flags) - {"duplicate"} for st in self.students)
            or any(s.status in ("unreadable", "foreign") for s in self.submissions)
        )

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "tool": "labkit grade",
            "labkit_version": __version__,
            "course": m.course,
            "assignment": m.assignment,
            "max_points": m.total_points,
            "files": self.file_counts(),
            "students": [s.to_json() for s in self.students],
            "checks": self.check_stats(),
            "flags": list(self.flags),
            "submissions": [s.to_json() for s in self.submissions],
        }


# -- assembling ----------------------------------------------------------------------------------
def _newest(subs: Sequence[Submission]) -> Submission:
    """Of several readable files of one student for one notebook, the newest is graded (the latest
    ``at`` of its check results, then the file's mtime); the others become ``duplicate`` with
    ``duplicate_of`` and are listed."""
    return max(subs, key=lambda s: (s.latest_at, s.mtime, s.source))


def _student_key(s: Submission) -> str:
    """Who: the id in the file name (the LMS knows who uploaded it), else the id the "who am I"
    output declares. When both exist and differ, the file name wins and the disagreement is flagged
    (``identity-conflict``): a notebook copied from a classmate still carries the classmate's id.
    A file with neither is graded under ``?<file>`` and flagged (``unidentified``); it never
    reaches the LMS file."""
    return s.file_id or s.declared_id or f"?{s.source}"


def pick_graded(submissions: Sequence[Submission]) -> list[Submission]:
    """The submissions :func:`assemble` will grade (one per student and notebook), in input order."""
    groups: dict[tuple[str, str | None], list[Submission]] = {}
    for s in submissions:
        if s.status == "ok":
            groups.setdefault((_student_key(s), s.notebook), []).append(s)
    chosen = {id(_newest(g)) for g in groups.values()}
    return [s for s in submissions if id(s) in chosen]


def _not_submitted(nb: NotebookSpec) -> NotebookEntry:
    msg = tr("没有提交这个笔记本", "this notebook was not submitted")
    checks = [CheckGrade(c.check, "missing", 0, c.points, "not-submitted", msg) for c in nb.checks]
    return NotebookEntry(nb.name, "missing", nb.total_points, checks=checks)


def _other(s: Submission) -> dict[str, Any]:
    return {"source": s.source, "status": s.status, "reason": s.reason, "duplicate_of": s.duplicate_of}


#: A graded notebook: whose, its entry, and the submission it came from (for copy detection).
_Graded = tuple[StudentGrade, NotebookEntry, Submission]


def assemble(
    submissions: Sequence[Submission], manifest: Manifest, inputs: Sequence[dict[str, Any]] = ()
) -> Gradebook:
    """Group submissions by student, pick one per notebook, detect copies, total the points.

    ``inputs``: report lines about the inputs themselves (files left out, zip members sharing a
    name, :class:`~labkit.grading.collect.Inputs`); they become flags, so the run needs a look."""
    flags = [dict(p) for p in inputs]
    flags.extend(_identity_conflicts(submissions))
    by_student: dict[str, list[Submission]] = {}
    for s in submissions:
        s.student = s.file_id or s.declared_id or ""
        by_student.setdefault(_student_key(s), []).append(s)
    students: list[StudentGrade] = []
    graded: list[_Graded] = []
    for key in sorted(by_student):
        students.append(_student(key, by_student[key], manifest, flags, graded))
    _detect_copies(graded, flags)
    for student, entry, _sub in graded:
        if any(c.status == "tampered" for c in entry.checks) and "tampered" not in student.flags:
            student.flags.append("tampered")
    conflicted = {f["file_id"] for f in flags if f["kind"] == "identity-conflict"}
    for st in students:
        if st.student_id in conflicted and "identity-conflict" not in st.flags:
            st.flags.append("identity-conflict")
    return Gradebook(manifest, students, list(submissions), flags)


def _identity_conflicts(submissions: Sequence[Submission]) -> list[dict[str, Any]]:
    """Note and flag every submission whose file-name id differs from its "who am I" id."""
    flags: list[dict[str, Any]] = []
    for s in submissions:
        if not (s.file_id and s.declared_id and s.file_id != s.declared_id):
            continue
        note = tr(
            "文件名中的学号 {f} 与笔记本中“我是谁”的学号 {d} 不一致；按文件名计",
            "the id in the file name ({f}) differs from the 'who am I' id ({d}); the file name counts",
            f=s.file_id,
            d=s.declared_id,
        )
        if note not in s.notes:
            s.notes.append(note)
        flags.append(
            {
                "kind": "identity-conflict",
                "source": s.source,
                "file_id": s.file_id,
                "declared_id": s.declared_id,
            }
        )
    return flags


def _student(
    key: str, subs: list[Submission], manifest: Manifest, flags: list[dict[str, Any]], graded: list[_Graded]
) -> StudentGrade:
    """One student's grade: an entry per notebook of the assignment (graded ones added to ``graded``)."""
    identified = not key.startswith("?")
    student = StudentGrade(key, "", identified, [])
    if not identified:
        student.flags.append("unidentified")
        flags.append({"kind": "unidentified", "source": subs[0].source})
    for nb in manifest.notebooks:
        entry = _entry(nb, subs, student, graded)
        entry.others = [_other(s) for s in subs if s.source != entry.source and s.notebook in (nb.name, None)]
        student.notebooks.append(entry)
        if not student.name:
            names = [s.declared_name for s in subs if s.declared_name and s.declared_id == s.student]
            student.name = names[-1] if names else ""
    return student


def _entry(
    nb: NotebookSpec, subs: list[Submission], student: StudentGrade, graded: list[_Graded]
) -> NotebookEntry:
    """The student's entry for notebook ``nb``: the newest readable file (others become
    ``duplicate``), else the newest unreadable / foreign one (ungraded), else not submitted."""
    ok = [s for s in subs if s.status == "ok" and s.notebook == nb.name]
    bad = [s for s in subs if s.status in ("unreadable", "foreign") and s.notebook in (nb.name, None)]
    if ok:
        chosen = _newest(ok)
        for s in ok:
            if s is not chosen:
                s.status, s.duplicate_of = "duplicate", chosen.source
        entry = NotebookEntry(
            nb.name, "ok", nb.total_points, chosen.source, "", chosen.checks, list(chosen.notes)
        )
        if chosen.rerun is not None:
            entry.notes.append(str(chosen.rerun.get("message", "")))
        graded.append((student, entry, chosen))
        if len(ok) > 1:
            student.flags.append("duplicate")
        return entry
    if bad:
        chosen = max(bad, key=lambda s: (s.mtime, s.source))
        entry = NotebookEntry(nb.name, chosen.status, nb.total_points, chosen.source, chosen.reason)
        entry.checks = [
            CheckGrade(c.check, UNGRADED, 0, c.points, chosen.status, chosen.reason) for c in nb.checks
        ]
        student.flags.append(chosen.status)
        return entry
    return _not_submitted(nb)


def _detect_copies(graded: Sequence[_Graded], flags: list[dict[str, Any]]) -> None:
    """The same check result – equal ``session`` + ``at`` + ``check``, which only one kernel run can
    produce – in the graded notebooks of two or more students makes that check ``tampered``
    (``copied``) for all of them, and the group is listed in the report. A kernel session shared
    by two students' notebooks (other checks) is reported, not scored."""
    owners: dict[tuple[str, str, str], dict[str, tuple[CheckGrade, Submission]]] = {}
    sessions: dict[str, dict[str, str]] = {}
    for student, entry, sub in graded:
        for c in entry.checks:
            if c.key is not None:
                owners.setdefault(c.key, {})[student.student_id] = (c, sub)
        for sess in [*sub.sessions, sub.declared_session]:
            if sess:
                sessions.setdefault(sess, {})[student.student_id] = sub.source
    groups: dict[frozenset[str], dict[str, Any]] = {}
    for (session, at, check), holders in owners.items():
        if len(holders) < 2:
            continue
        group = groups.setdefault(
            frozenset(holders), {"kind": "copied", "students": sorted(holders), "checks": [], "results": []}
        )
        group["checks"].append(check)
        group["results"].append({"check": check, "session": session, "at": at})
        group.setdefault("sources", set()).update(sub.source for _c, sub in holders.values())
        for c, _sub in holders.values():
            c.status, c.points, c.reason = "tampered", 0, "copied"
            c.message = tr(
                "这个检查结果与另一份提交中的完全相同（同一次内核运行、同一时刻）：结果是复制来的",
                "this result is identical to one in another submission (same kernel run, same moment): "
                "it was copied",
            )
    for group in groups.values():
        group["sources"] = sorted(group["sources"])
        flags.append(group)
    copied_pairs = set(groups)
    for session, holders in sessions.items():
        if len(holders) > 1 and frozenset(holders) not in copied_pairs:
            flags.append(
                {
                    "kind": "shared-session",
                    "session": session,
                    "students": sorted(holders),
                    "sources": sorted(holders.values()),
                }
            )
