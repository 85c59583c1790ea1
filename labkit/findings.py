"""One diagnostic type for every validator, linter, sizing rule and host report.

A :class:`Finding` says *which field* (the label the student sees, a Dockerfile line, a host fact),
*how bad* (``error``: it will not work; ``warning``: it works but something is wrong; ``info``: a
lesson worth knowing), *what* is wrong and *how to fix it*. ``code`` is a stable key for tests,
graders and evidence; the texts are already translated (``tr()``) when the finding is made.

Validators are written as small named rules, each returning a list of findings, and a public
function that concatenates them (see ``ARCHITECTURE.md``). Shared data type: imported by every
layer, imports nothing but the standard library and :mod:`labkit.i18n` (its text is shown in the
course language, its field as the label the reader sees: :func:`labkit.i18n.field_name`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from labkit.i18n import field_name, tr

__all__ = ["SEVERITIES", "Finding", "Severity", "errors", "first_error", "worst"]

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One judged rule: field, severity, message and fix (plus a stable code and a line)."""

    field: str
    severity: Severity
    message: str
    fix: str = ""
    code: str = ""
    line: int | None = None  # 1-based line in a file (Dockerfile, config), when there is one

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    @property
    def level(self) -> str:
        """The severity in the reader's language (错误 / 警告 / 提示)."""
        return {"error": tr("错误", "error"), "warning": tr("警告", "warning"), "info": tr("提示", "info")}[
            self.severity
        ]

    @property
    def where(self) -> str:
        """Line number in the reader's language, or ``""``."""
        return tr("（第 {n} 行）", " (line {n})", n=self.line) if self.line else ""

    def __str__(self) -> str:
        level = self.level
        where = (field_name(self.field) if self.field else "") + self.where
        text = f"[{level}] " + (
            tr("{w}：{m}", "{w}: {m}", w=where, m=self.message) if where else self.message
        )
        return text + (tr("；{x}", "; {x}", x=self.fix) if self.fix else "")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for check evidence; keys always present except an absent ``line``."""
        out: dict[str, Any] = {
            "field": self.field,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
        }
        if self.line is not None:
            out["line"] = self.line
        return out


def errors(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that make the thing unusable."""
    return [f for f in findings if f.severity == "error"]


def first_error(findings: Iterable[Finding]) -> Finding | None:
    return next((f for f in findings if f.severity == "error"), None)


def worst(findings: Iterable[Finding]) -> Severity | None:
    """The most severe level present (``None`` for no findings)."""
    levels = {f.severity for f in findings}
    return next((s for s in SEVERITIES if s in levels), None)
