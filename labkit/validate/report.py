"""What ``labkit validate`` found: one :class:`NotebookResult` per notebook, the
:class:`ValidateReport` (``--report`` JSON) and its terminal table.

Notebook status: ``ok`` ran to the end and no check failed; ``failed`` ran to the end but a
check is ``fail`` / ``error``; ``error`` did not run to the end (a cell raised, a cell timed out,
the kernel died or could not start). Failures are short: cell index, ``In [n]``, exception name
and value and the first lines of the cell, never the traceback (it is in the executed notebook).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit._version import __version__
from labkit.i18n import tr
from labkit.notebooks import head_lines

__all__ = ["ICONS", "NotebookResult", "ValidateReport", "display_path"]

ICONS = {"ok": "✔", "failed": "✘", "error": "⚠"}


@dataclass
class NotebookResult:
    """The outcome of executing one notebook."""

    path: Path
    output: Path
    status: str  # ok | failed | error
    duration_s: float
    counts: dict[str, int]
    checks: list[dict[str, Any]]
    error: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": display_path(self.path),
            "output": display_path(self.output),
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "counts": dict(self.counts),
            "checks": list(self.checks),
            "error": self.error,
            "warnings": list(self.warnings),
        }


@dataclass
class ValidateReport:
    """Everything ``labkit validate`` found; ``to_json()`` is the ``--report`` file."""

    mode: str
    started: str
    duration_s: float
    jobs: int
    kernel: str
    notebooks: list[NotebookResult]
    labkit_version: str = __version__

    @property
    def ok(self) -> bool:
        return all(nb.ok for nb in self.notebooks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": "labkit validate",
            "labkit_version": self.labkit_version,
            "mode": self.mode,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
            "jobs": self.jobs,
            "kernel": self.kernel,
            "ok": self.ok,
            "notebooks": [nb.to_json() for nb in self.notebooks],
        }

    def table(self) -> str:
        """The human summary: one row per notebook, then what went wrong, briefly."""
        head = [
            tr("笔记本", "notebook"),
            tr("状态", "status"),
            tr("运行", "run"),
            tr("计划", "planned"),
            tr("跳过", "skipped"),
            tr("失败", "failed"),
            tr("耗时(s)", "time(s)"),
        ]
        rows = [head]
        for nb in self.notebooks:
            c = nb.counts
            rows.append(
                [
                    nb.path.name,
                    f"{ICONS.get(nb.status, '?')} {nb.status}",
                    str(c.get("run", 0)),
                    str(c.get("planned", 0)),
                    str(c.get("skipped", 0)),
                    str(c.get("failed", 0)),
                    f"{nb.duration_s:.1f}",
                ]
            )
        widths = [max(_width(r[i]) for r in rows) for i in range(len(head))]
        lines = []
        for n, row in enumerate(rows):
            cells = [_pad(v, widths[i], right=i >= 2) for i, v in enumerate(row)]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        for nb in self.notebooks:
            lines.extend(_problem_lines(nb))
        total = len(self.notebooks)
        bad = sum(not nb.ok for nb in self.notebooks)
        lines.append(
            tr(
                "{total} 个笔记本，{bad} 个未通过，模式 {mode}，用时 {t:.1f} s",
                "{total} notebook(s), {bad} not ok, mode {mode}, {t:.1f} s",
                total=total,
                bad=bad,
                mode=self.mode,
                t=self.duration_s,
            )
        )
        return "\n".join(lines)


def _width(text: str) -> int:
    """Terminal columns of ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def _problem_lines(nb: NotebookResult) -> list[str]:
    out: list[str] = []
    if nb.error:
        out.append(f"{ICONS['error']} {nb.path.name}: {nb.error['message']}")
        if nb.error.get("source"):
            out.extend("    | " + line for line in str(nb.error["source"]).splitlines())
        if nb.error.get("kernel_log"):
            out.append("    " + tr("内核日志末尾：", "kernel log tail:"))
            out.extend("    > " + line for line in str(nb.error["kernel_log"]).splitlines())
    for payload in nb.checks:
        if payload.get("status") in ("fail", "error"):
            msg = head_lines(str(payload.get("message", "")), 1)
            out.append(f"{ICONS['failed']} {nb.path.name}: {payload['check']} {payload['status']}: {msg}")
    out.extend(f"! {nb.path.name}: {w}" for w in nb.warnings)
    return out


def display_path(path: Path) -> str:
    """Relative to the current directory when below it (shorter reports), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())
