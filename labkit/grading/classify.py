"""One submitted notebook (a dict from :func:`json.load`) → one explicit status per check (pure).

Nothing here executes, imports or evaluates anything from the notebook: cells are data. The
notebook statuses are listed at :func:`classify_notebook`, the check statuses and their reasons
(the tamper rules) at :func:`_classify_check`, each beside the code that decides them.

Not tampering: cells run in any order, several times, or after kernel restarts (execution
counts out of order, several ``session`` ids in one notebook); a check cell copied unchanged
(the copy that carries a result counts); re-saving with another editor (sources are normalized);
text added to other cells. The result that counts in a cell is the *last* check output in it
(Jupyter replaces a ``display_id`` output on update, so that is the final state the student left).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.checks import STATUSES, verify_payload
from labkit.i18n import tr
from labkit.identity import STUDENT_ID_RE, STUDENT_MIME
from labkit.logic.exercise import rejudge
from labkit.notebooks import (
    cell_labkit,
    cell_outputs,
    cell_source_text,
    check_payload,
    error_output,
    mime_payload,
)

from .facts import facts_for
from .manifest import CheckSpec, Manifest, NotebookSpec, source_sha256

__all__ = [
    "CHECK_STATUSES",
    "CheckGrade",
    "Submission",
    "classify_notebook",
    "clean",
    "trim_evidence",
]

CHECK_STATUSES = ("pass", "fail", "missing", "tampered", "error")
_MESSAGE_CHARS = 600
_EVIDENCE_KEYS = 16
_EVIDENCE_CHARS = 1500


@dataclass
class CheckGrade:
    """The grade of one check in one submission."""

    check: str
    status: str  # one of CHECK_STATUSES
    points: int  # earned
    max_points: int
    reason: str  # machine-readable cause (see the module docstring)
    message: str  # for the student, in the course language
    result_message: str = ""  # the check's own message, if a result was read
    evidence: dict[str, str] = field(default_factory=dict)  # trimmed, for feedback
    mode: str = ""
    at: str = ""
    session: str = ""
    cell_index: int | None = None
    rerun: bool = False  # the result comes from the grader's re-execution
    #: validated, bounded evidence values for check ids that declare them (:mod:`.facts`), kept
    #: whether the check passed or failed; ``None``: the check declares none (no key in the report)
    facts: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str, str] | None:
        """``(session, at, check)`` of the counted result: equal keys in two students' notebooks
        mean one copied the other's output."""
        if not self.session or self.rerun:
            return None
        return (self.session, self.at, self.check)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "points": self.points,
            "max_points": self.max_points,
            "reason": self.reason,
            "message": self.message,
            "result_message": self.result_message,
            "evidence": dict(self.evidence),
            "mode": self.mode,
            "at": self.at,
            "session": self.session,
            "cell_index": self.cell_index,
            "rerun": self.rerun,
            **({} if self.facts is None else {"facts": dict(self.facts)}),
        }


@dataclass
class Submission:
    """One submitted file: where it came from, what it is, and its check grades."""

    source: str  # display path: relative to the input folder, or "archive.zip:member"
    status: str  # ok | unreadable | foreign (the gradebook may set duplicate)
    reason: str = ""  # why it is not ok, for a person
    notebook: str | None = None  # manifest notebook name
    checks: list[CheckGrade] = field(default_factory=list)
    declared_id: str | None = None  # from the "who am I" output
    declared_name: str = ""
    declared_session: str = ""
    file_id: str | None = None  # from the file name
    latest_at: str = ""  # newest ``at`` of its check results
    mtime: float = 0.0
    size: int = 0
    sessions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rerun: dict[str, Any] | None = None
    # set by the gradebook
    student: str = ""
    duplicate_of: str | None = None

    @property
    def points(self) -> int:
        return sum(c.points for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "reason": self.reason,
            "notebook": self.notebook,
            "student": self.student,
            "file_id": self.file_id,
            "declared_id": self.declared_id,
            "declared_name": self.declared_name,
            "latest_at": self.latest_at,
            "size": self.size,
            "duplicate_of": self.duplicate_of,
            "notes": list(self.notes),
            "rerun": self.rerun,
        }


# -- helpers -------------------------------------------------------------------------------------
def clean(text: str) -> str:
    """``text`` without lone surrogates: JSON allows ``"\\ud800"``, UTF-8 files and HTML do not."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _short(text: object, limit: int = _MESSAGE_CHARS) -> str:
    s = text if isinstance(text, str) else str(text)
    return clean(s if len(s) <= limit else s[:limit] + " …")


def _verified(payload: Mapping[str, Any]) -> bool:
    """:func:`verify_payload`, but a payload that cannot even be hashed is simply not verified."""
    try:
        return verify_payload(payload)  # type: ignore[arg-type]
    except (TypeError, ValueError, UnicodeError, RecursionError):
        return False


def trim_evidence(evidence: object) -> dict[str, str]:
    """Evidence as at most 16 short strings: feedback shows it, nothing else needs more."""
    if not isinstance(evidence, Mapping):
        return {}
    out: dict[str, str] = {}
    for n, (key, value) in enumerate(evidence.items()):
        if n >= _EVIDENCE_KEYS:
            out["…"] = tr("另有 {n} 项", "{n} more", n=len(evidence) - n)
            break
        if isinstance(value, str):
            text = value[: _EVIDENCE_CHARS + 1]
        else:
            try:  # compact: the C encoder (indent= would use the pure-Python one, 10× slower)
                text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
            except (TypeError, ValueError, RecursionError):
                text = repr(type(value))
        out[_short(key, 80)] = _short(text, _EVIDENCE_CHARS)
    return out


def _error_output(cell: Mapping[str, Any]) -> dict[str, str] | None:
    found = error_output(cell)
    if found is None:
        return None
    ename, evalue = found
    return {"ename": _short(ename, 120), "evalue": _short(evalue.strip().splitlines()[0] if evalue else "")}


def _grade(spec: CheckSpec, status: str, reason: str, message: str, **kw: Any) -> CheckGrade:
    points = spec.points if status == "pass" else 0
    return CheckGrade(spec.check, status, points, spec.points, reason, message, **kw)


# -- one check -----------------------------------------------------------------------------------
@dataclass
class _Cells:
    """What one pass over a notebook's code cells found; indices are positions in ``cells``."""

    cells: list[Any]
    marked: dict[str, list[int]] = field(default_factory=dict)  # check id → cells whose metadata names it
    unmarked: list[int] = field(default_factory=list)  # code cells without a check id
    found: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # cell → its check payloads
    student_outputs: list[Mapping[str, Any]] = field(default_factory=list)
    latest: str = ""
    sessions: dict[str, None] = field(default_factory=dict)
    hashes: dict[int, str] = field(default_factory=dict)  # cell → source SHA-256, computed on demand
    unmarked_hashes: dict[str, list[int]] = field(default_factory=dict)  # wanted SHA-256 → unmarked cells

    def sha(self, i: int) -> str:
        """The source's SHA-256; a malformed source (a number, a list of non-strings) matches no
        check, so a check cell with one is ``tampered``, never a crash."""
        if i not in self.hashes:
            text = cell_source_text(self.cells[i])
            self.hashes[i] = "malformed-source" if text is None else source_sha256(text)
        return self.hashes[i]

    def payloads(self, i: int) -> list[dict[str, Any]]:
        return self.found.get(i, [])


def _locate(spec: CheckSpec, scan: _Cells) -> CheckGrade | int:
    """The cell that counts for ``spec`` (the last unchanged one, preferring one with a result),
    or the grade when there is none: ``missing`` (deleted) or ``tampered`` (source changed)."""
    candidates = scan.marked.get(spec.check) or scan.unmarked_hashes.get(spec.source_sha256, [])
    if not candidates:
        return _grade(
            spec,
            "missing",
            "deleted",
            tr("找不到这个检查单元格（被删除了？）", "this check cell is not in the notebook (deleted?)"),
        )
    good = [i for i in candidates if scan.sha(i) == spec.source_sha256]
    bad_run = [i for i in candidates if i not in good and scan.payloads(i)]
    good_run = [i for i in good if scan.payloads(i)]
    if not good_run and bad_run:
        return _grade(
            spec,
            "tampered",
            "source-changed",
            tr(
                "检查单元格的代码被改动过，结果来自改动后的代码",
                "the check cell's code was changed; its result came from the changed code",
            ),
            cell_index=bad_run[-1],
        )
    if not good:
        return _grade(
            spec,
            "tampered",
            "source-changed",
            tr("检查单元格的代码被改动过", "the check cell's code was changed"),
            cell_index=candidates[-1],
        )
    return (good_run or good)[-1]


def _points_changed(spec: CheckSpec, scan: _Cells, index: int) -> CheckGrade | None:
    meta = cell_labkit(scan.cells[index])
    if meta is None or "points" not in meta or meta.get("points") == spec.points:
        return None
    return _grade(
        spec,
        "tampered",
        "points-changed",
        tr(
            "单元格元数据里的分值被改成了 {p}（应为 {q}）",
            "the points in the cell metadata were changed to {p} (should be {q})",
            p=_short(meta.get("points"), 40),
            q=spec.points,
        ),
        cell_index=index,
    )


def _no_result(spec: CheckSpec, scan: _Cells, index: int) -> CheckGrade | None:
    if scan.payloads(index):
        return None
    err = _error_output(scan.cells[index])
    if err is not None:
        return _grade(
            spec,
            "error",
            "raised",
            tr(
                "单元格抛出 {ename}：{evalue}（没有得到检查结果）",
                "the cell raised {ename}: {evalue} (no check result)",
                **err,
            ),
            cell_index=index,
        )
    return _grade(
        spec,
        "missing",
        "not-run",
        tr("这个检查单元格没有运行（或没有运行完）", "this check cell was not run (or did not finish)"),
        cell_index=index,
    )


def _foreign_output(spec: CheckSpec, scan: _Cells, index: int) -> CheckGrade | None:
    foreign = sorted({str(p["check"]) for p in scan.payloads(index) if p["check"] != spec.check})
    if not foreign:
        return None
    return _grade(
        spec,
        "tampered",
        "foreign-output",
        tr(
            "单元格里有别的检查（{other}）的结果：这个单元格不可能产生它，是复制来的",
            "the cell holds a result of another check ({other}); this cell cannot have produced it",
            other=", ".join(_short(f, 80) for f in foreign[:3]),
        ),
        cell_index=index,
    )


def _edited_output(spec: CheckSpec, scan: _Cells, index: int) -> CheckGrade | None:
    if all(_verified(p) for p in scan.payloads(index)):
        return None
    return _grade(
        spec,
        "tampered",
        "edited-output",
        tr(
            "检查结果的 JSON 与其校验值不符（输出被手工编辑过）",
            "the check result's JSON does not match its digest (the output was edited by hand)",
        ),
        cell_index=index,
    )


#: Checked in this order on the cell that counts; the first that returns a grade decides.
_CELL_RULES = (_points_changed, _no_result, _foreign_output, _edited_output)


def _judge_result(spec: CheckSpec, last: Mapping[str, Any], index: int) -> CheckGrade:
    """The grade the cell's last (verified) check result earns."""
    status, mode = last.get("status"), last.get("mode", "run")
    kw = {
        "result_message": _short(last.get("message", "")),
        # Feedback shows evidence for what did not pass; a passing check's evidence is not copied.
        "evidence": {} if status == "pass" else trim_evidence(last.get("evidence")),
        "mode": _short(last.get("mode", ""), 16),
        "at": _short(last.get("at", ""), 64),
        "session": _short(last.get("session", ""), 64),
        "cell_index": index,
    }
    msg = kw["result_message"]
    if status in STATUSES:
        kw["facts"] = facts_for(spec.check, last.get("evidence"))
    if status not in STATUSES:
        return _grade(
            spec, "tampered", "invalid-output", tr("检查结果的状态无效", "invalid result status"), **kw
        )
    if status == "pass":
        rejudged = rejudge(spec.check, last.get("evidence"))
        if rejudged is not None:  # an exercise: its recorded choices judged again with our key
            kw["evidence"] = trim_evidence(last.get("evidence"))
            return _grade(
                spec, "fail", "rejudged-wrong", tr("{r}（{m}）", "{r} ({m})", r=rejudged, m=msg), **kw
            )
        return _grade(spec, "pass", "check-passed", msg or tr("通过", "passed"), **kw)
    if status == "fail":
        return _grade(spec, "fail", "check-failed", msg, **kw)
    if status == "error":
        return _grade(spec, "error", "check-error", msg, **kw)
    reason = _skip_reason(last, mode)
    if reason == "consent":
        return _grade(
            spec,
            "fail",
            "consent-refused",
            tr(
                "没有运行：这一步会覆盖或修改已有的东西，需要你明确同意（勾选面板里相应的复选框）：{m}",
                "not run: this step would replace or change something that exists and waits for your "
                "explicit consent (the panel's checkbox): {m}",
                m=msg,
            ),
            **kw,
        )
    if reason == "stopped":
        return _grade(
            spec,
            "fail",
            "stopped",
            tr("你在运行中按了停止：{m}", "you pressed Stop while it ran: {m}", m=msg),
            **kw,
        )
    if reason == "unanswered":
        return _grade(
            spec,
            "fail",
            "not-answered",
            tr(
                "还没有完成（练习未作答，或需要你填写的字段是空的）：{m}",
                "not done (an exercise not answered, or a field only you can fill left empty): {m}",
                m=msg,
            ),
            **kw,
        )
    if reason == "plan_only":
        return _grade(
            spec,
            "fail",
            "plan-only",
            tr(
                '只生成了计划，没有真正运行（笔记本以 mode="plan" 执行）：{m}',
                'only planned, not run (the notebook ran with mode="plan"): {m}',
                m=msg,
            ),
            **kw,
        )
    return _grade(
        spec,
        "fail",
        "host-cannot-run",
        tr("本机无法运行这一步：{m}", "this machine could not run it: {m}", m=msg),
        **kw,
    )


def _skip_reason(last: Mapping[str, Any], mode: Any) -> str:
    """Why a ``skipped`` result was skipped: ``evidence.skip_reason`` (see
    :data:`labkit.steps.base.SKIP_REASONS`); results saved before it existed are told apart by
    their error type and ``mode`` as well as they can be."""
    evidence = last.get("evidence")
    reason = evidence.get("skip_reason") if isinstance(evidence, Mapping) else None
    if reason in ("plan_only", "host", "consent", "stopped", "unanswered"):
        return str(reason)
    if isinstance(evidence, Mapping) and evidence.get("error") == "ConsentRequired":
        return "consent"
    return "plan_only" if mode == "plan" else "host"


def _classify_check(spec: CheckSpec, scan: _Cells) -> CheckGrade:
    """One check of the manifest: find its cell, apply the tamper rules, then judge its result.

    A check cell is found by its ``metadata.labkit.check`` (students insert, move and copy cells,
    so neither the index nor the cell ``id`` is reliable); a cell that lost its metadata is found
    by the SHA-256 of its normalized source. Check status, first matching rule wins:

    =============  ======================================================================
    ``missing``    no cell with that check id or source (``deleted``); the cell has no check
                   output (``not-run``: never run, or interrupted before its result was shown)
    ``tampered``   the cell source differs from the manifest's checksum (``source-changed``);
                   ``metadata.labkit.points`` differs from the manifest (``points-changed``);
                   a check output in the cell names another check (``foreign-output``: copied
                   from another cell); a check output whose digest does not match its content,
                   or has none (``edited-output``: JSON edited by hand); an impossible status
                   (``invalid-output``); and, decided by the gradebook across submissions, the
                   same ``session`` + ``at`` + ``check`` in two students' notebooks (``copied``)
    ``error``      the last result is ``error`` (``check-error``), or the cell raised before
                   it showed a result (``raised``); with ``--rerun``, a timeout or dead kernel
    ``fail``       the last result is ``fail`` (``check-failed``), or ``skipped``, each reason
                   named (``evidence.skip_reason``): only planned because the notebook ran
                   with ``mode="plan"`` (``plan-only``), the host could not run it
                   (``host-cannot-run``), a destructive part waited for consent, e.g. a target
                   that exists and differs (``consent-refused``), the student pressed Stop
                   (``stopped``), an exercise with no answer or a field only the student can fill
                   left empty (``not-answered``); it is not
                   ``missing``. (A target that was already as the step
                   makes it is a ``pass``: the step verified it, see ``Step.satisfied``.)
    ``pass``       the last result is ``pass``: the check's points; an exercise's pass whose
                   recorded choices the grader's answer key judges wrong is ``fail``
                   (``rejudged-wrong``)
    =============  ======================================================================
    """
    located = _locate(spec, scan)
    if isinstance(located, CheckGrade):
        return located
    for rule in _CELL_RULES:
        grade = rule(spec, scan, located)
        if grade is not None:
            return grade
    return _judge_result(spec, scan.payloads(located)[-1], located)


def _pick_notebook(
    manifest: Manifest, lk: Mapping[str, Any] | None, marked: dict[str, list[int]], name_hint: str
) -> NotebookSpec | None:
    if lk is not None:
        spec = manifest.by_release(lk.get("release"))
        if spec is not None:
            return spec
    scored = [(sum(c.check in marked for c in nb.checks), nb) for nb in manifest.notebooks]
    best = max(s for s, _ in scored)
    if best > 0:
        return next(nb for s, nb in scored if s == best)
    named = [nb for nb in manifest.notebooks if nb.stem and nb.stem in name_hint]
    if named:
        return max(named, key=lambda nb: len(nb.stem))
    return manifest.notebooks[0] if len(manifest.notebooks) == 1 else None


def _identity(sub: Submission, student_outputs: list[Mapping[str, Any]]) -> None:
    ids: list[str] = []
    for payload in student_outputs:
        sid = payload.get("student_id")
        if not isinstance(sid, str) or not sid.strip():
            continue
        sid = sid.strip()
        if not STUDENT_ID_RE.match(sid):
            sub.notes.append(tr("“我是谁”输出里的学号无效", "the 'who am I' output holds an invalid id"))
            continue
        if not _verified(payload):
            sub.notes.append(
                tr("“我是谁”输出被手工编辑过，未采用", "the 'who am I' output was edited by hand; ignored")
            )
            continue
        ids.append(sid)
        sub.declared_id = sid
        name = payload.get("name")
        sub.declared_name = _short(name, 80) if isinstance(name, str) else ""
        sub.declared_session = _short(payload.get("session", ""), 64)
    if len(set(ids)) > 1:
        sub.notes.append(
            tr(
                "笔记本里有多个不同的学号：{ids}；采用最后一个",
                "several student ids in the notebook: {ids}; the last one is used",
                ids=", ".join(dict.fromkeys(ids)),
            )
        )


def _unreadable(nb: Any) -> str | None:
    """Why ``nb`` is not a notebook labkit can grade, or ``None``."""
    if not isinstance(nb, dict):
        return tr("不是 JSON 对象", "not a JSON object")
    if nb.get("nbformat") != 4:
        return tr(
            "nbformat {v}：不是 Jupyter 4 笔记本，请用 Jupyter 打开并另存",
            "nbformat {v}: not a Jupyter 4 notebook; open it in Jupyter and save it again",
            v=_short(nb.get("nbformat"), 20),
        )
    if not isinstance(nb.get("cells"), list):
        return tr("没有 cells 列表", "no 'cells' list")
    return None


def _scan(cells: list[Any]) -> _Cells:
    """One pass over the code cells: check ids, check payloads, "who am I" outputs, sessions."""
    scan = _Cells(cells)
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        cm = cell_labkit(cell)
        if cm is not None and isinstance(cm.get("check"), str):
            scan.marked.setdefault(cm["check"], []).append(i)
        else:
            scan.unmarked.append(i)
        for out in cell_outputs(cell):
            student = mime_payload(out, STUDENT_MIME)
            if student is not None:
                scan.student_outputs.append(student)
            payload = check_payload(out)
            if payload is None:
                continue
            scan.found.setdefault(i, []).append(payload)
            at = payload.get("at")
            if isinstance(at, str) and at > scan.latest:
                scan.latest = at
            if isinstance(payload.get("session"), str):
                scan.sessions[payload["session"]] = None
    return scan


def _hash_unmarked(scan: _Cells, manifest: Manifest) -> None:
    """Find check cells that lost their metadata by source checksum (only when some check id is
    absent: hashing every cell is the slow path)."""
    specs = [c for nb_spec in manifest.notebooks for c in nb_spec.checks]
    if all(c.check in scan.marked for c in specs):
        return
    wanted = {c.source_sha256 for c in specs}
    for i in scan.unmarked:
        h = scan.sha(i)
        if h in wanted:
            scan.unmarked_hashes.setdefault(h, []).append(i)


def _other_assignment(lk: Mapping[str, Any] | None, manifest: Manifest) -> str | None:
    if lk is None or (lk.get("course"), lk.get("assignment")) == (manifest.course, manifest.assignment):
        return None
    return tr(
        "属于另一门课程或作业（{c} / {a}），应为 {mc} / {ma}",
        "belongs to another course or assignment ({c} / {a}); expected {mc} / {ma}",
        c=_short(lk.get("course"), 64),
        a=_short(lk.get("assignment"), 64),
        mc=manifest.course,
        ma=manifest.assignment,
    )


def _unrecognised(lk: Mapping[str, Any] | None, scan: _Cells, spec: NotebookSpec | None) -> str | None:
    """Why the notebook cannot be matched to a notebook of the assignment, or ``None``."""
    if (
        lk is None
        and not scan.unmarked_hashes
        and (spec is None or not any(c.check in scan.marked for c in spec.checks))
    ):
        return tr(
            "没有 labkit 元数据，也没有本作业的任何检查单元格",
            "no labkit metadata and none of this assignment's check cells",
        )
    if spec is None:
        return tr("无法判断是本作业的哪一个笔记本", "cannot tell which notebook of the assignment this is")
    return None


def _metadata_note(lk: Mapping[str, Any] | None, spec: NotebookSpec) -> str | None:
    if lk is None:
        return tr(
            "笔记本缺少 labkit 元数据（单元格被复制到了新笔记本？），按检查单元格识别",
            "the notebook has no labkit metadata (cells copied into a new notebook?); "
            "identified by its check cells",
        )
    if lk.get("release") != spec.release:
        return tr(
            "发布编号 {r} 不在清单中（旧版本？），按检查单元格识别",
            "release id {r} is not in the manifest (an older release?); identified by its check cells",
            r=_short(lk.get("release"), 40),
        )
    return None


def classify_notebook(nb: Any, manifest: Manifest, *, source: str = "") -> Submission:
    """Grade one parsed notebook against ``manifest``.

    ``source`` is the file's display path (also a hint for which notebook it is when its
    metadata is gone). Notebook status (before the gradebook compares submissions):

    ==============  =====================================================================
    ``ok``          a readable nbformat-4 notebook of this course and assignment
    ``unreadable``  not a JSON object, no ``cells`` list, or ``nbformat`` ≠ 4 (nbformat 3
                    included); truncated / invalid JSON is caught by :mod:`~.collect`
    ``foreign``     ``metadata.labkit`` names another course or assignment, or there is no
                    ``metadata.labkit`` and none of the manifest's check cells is present
    ==============  =====================================================================

    (:mod:`labkit.grading.gradebook` adds ``duplicate`` – a second file of the same student –
    and ``missing`` – nothing submitted for a notebook of the assignment.)
    """
    sub = Submission(source=source, status="ok")
    problem = _unreadable(nb)
    if problem is not None:
        sub.status, sub.reason = "unreadable", problem
        return sub
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    lk = meta.get("labkit") if isinstance(meta.get("labkit"), dict) else None
    scan = _scan(nb["cells"])
    sub.latest_at = scan.latest
    sub.sessions = list(scan.sessions)
    _identity(sub, scan.student_outputs)
    problem = _other_assignment(lk, manifest)
    if problem is None:
        _hash_unmarked(scan, manifest)
        spec = _pick_notebook(manifest, lk, scan.marked, source)
        problem = _unrecognised(lk, scan, spec)
    if problem is not None:
        sub.status, sub.reason = "foreign", problem
        return sub
    assert spec is not None
    sub.notebook = spec.name
    note = _metadata_note(lk, spec)
    if note is not None:
        sub.notes.append(note)
    sub.checks = [_classify_check(c, scan) for c in spec.checks]
    return sub
