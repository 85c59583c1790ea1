""" "Who am I": the student writes their id into the notebook, the grader reads it back.

A kernel cannot write notebook metadata, so the identity travels the same way check results do:
as a cell *output* with its own MIME type, :data:`STUDENT_MIME` (the payload:
:meth:`StudentIdentity.to_payload`). An empty id is allowed and displays a clear "not set" result
instead of raising (why: :func:`check_student_id`); a malformed one displays what is wrong and how
to fix it (:class:`IdentityProblem`), never a traceback, and records no identity.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from labkit._version import __version__
from labkit.checks import now_iso, payload_digest, session_id
from labkit.errors import InvalidField
from labkit.i18n import tr

__all__ = [
    "STUDENT_ID_RE",
    "STUDENT_MIME",
    "IdentityProblem",
    "StudentIdentity",
    "check_student_id",
    "identify",
    "whoami",
]

STUDENT_MIME = "application/vnd.labkit.student+json"
#: What a student id may look like: it names feedback files, so no path separators or spaces.
STUDENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAME_MAX = 80


def check_student_id(student_id: object) -> str:
    """Return ``student_id`` stripped, or raise :class:`InvalidField` (empty is allowed: "not set").

    Empty is allowed because the course notebook ships with ``whoami(student_id="")`` and must
    still run headlessly (``labkit validate``); the grader then falls back to the submission's file
    name. A non-empty id must look like an id (letters, digits, ``_ - .``; it becomes part of file
    names in the grader's output).
    """
    if not isinstance(student_id, str):
        raise InvalidField(
            "student_id",
            student_id,
            tr("不是文字", "is not text"),
            tr('用引号括起来，例如 "2023123456"', 'write it in quotes, e.g. "2023123456"'),
        )
    value = student_id.strip()
    if value and not STUDENT_ID_RE.match(value):
        raise InvalidField(
            "student_id",
            student_id,
            tr("不像学号", "does not look like a student id"),
            tr(
                "只用字母、数字和 _ - .（最多 64 个字符），例如 2023123456",
                "use letters, digits and _ - . only (at most 64 characters), e.g. 2023123456",
            ),
        )
    return value


@dataclass(frozen=True)
class StudentIdentity:
    """Who executed this notebook, as the student declared it."""

    student_id: str
    name: str = ""
    session: str = field(default_factory=session_id)
    at: str = field(default_factory=now_iso)

    @property
    def is_set(self) -> bool:
        return bool(self.student_id)

    def to_payload(self) -> dict[str, Any]:
        """The payload stored under ``STUDENT_MIME``::

            {"student_id": "2023123456", "name": "张三", "session": "<32 hex>", "at": "2026-...Z",
             "labkit_version": "0.1.0", "digest": "<sha256 hex>"}

        ``session`` is the same per-kernel id the check results carry
        (:func:`labkit.checks.session_id`), so a grader can see which results were produced in the
        same kernel run as the identity. ``digest`` is computed like a check payload's; it is not a
        signature, it only exposes a payload edited by hand in a text editor.
        """
        payload: dict[str, Any] = {
            "student_id": self.student_id,
            "name": self.name,
            "session": self.session,
            "at": self.at,
            "labkit_version": __version__,
        }
        payload["digest"] = payload_digest(payload)
        return payload

    def __str__(self) -> str:
        if not self.is_set:
            return tr(
                "[未设置] 学号为空：请在上面填写 student_id 后重新运行本单元格",
                "[NOT SET] no student id: fill in student_id above and run this cell again",
            )
        who = f"{self.student_id} {self.name}".strip()
        return tr("[学生] {who}", "[student] {who}", who=who)

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.is_set else "#9a6700"
        return (
            f"<div class='labkit-student' style='border-left:4px solid {colour};padding:4px 8px'>"
            f"{html.escape(str(self))}</div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {STUDENT_MIME: self.to_payload(), "text/html": self._repr_html_(), "text/plain": str(self)}


@dataclass(frozen=True)
class IdentityProblem:
    """What :func:`whoami` shows for a malformed id or name: the problem and the fix, no identity.

    It carries no :data:`STUDENT_MIME` payload, so the grader falls back to the file name exactly as
    for an empty id, and the student sees a result instead of a traceback."""

    message: str

    def __str__(self) -> str:
        return tr(
            "[填写有误] {m}。改正后重新运行本单元格",
            "[INVALID] {m}. Fix it and run this cell again",
            m=self.message,
        )

    def _repr_html_(self) -> str:
        return (
            "<div class='labkit-student' style='border-left:4px solid #cf222e;padding:4px 8px'>"
            f"{html.escape(str(self))}</div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/html": self._repr_html_(), "text/plain": str(self)}


def identify(student_id: object, name: object = "") -> StudentIdentity | IdentityProblem:
    """The identity :func:`whoami` displays, or the problem with what was typed (never raises)."""
    try:
        sid = check_student_id(student_id)
        if not isinstance(name, str):
            raise InvalidField(
                "name",
                name,
                tr("不是文字", "is not text"),
                tr('用引号括起来，例如 "张三"', 'write it in quotes, e.g. "张三"'),
            )
    except InvalidField as exc:
        return IdentityProblem(str(exc))
    return StudentIdentity(sid, " ".join(name.split())[:_NAME_MAX])


def whoami(student_id: str, name: str = "") -> None:
    """Display the student's identity as a notebook output the grader reads back.

    An empty id shows "not set" (the grader then uses the file name); an id that is not id-like
    (``"2023 310101"``) shows what is wrong and how to fix it, as a result rather than a traceback.
    """
    from IPython.display import display

    display(identify(student_id, name))
