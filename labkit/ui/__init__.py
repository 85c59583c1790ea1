"""Top layer: thin ipywidgets panels for the course notebooks.

A notebook starts with ``work = session(labkit_workdir, mode=mode)`` and then shows one panel per
step (``ch1.create_image(work, ...).show(mode)``). The session knows the scratch directory for lab
files and collects every check result shown, for the chapter summary. ``session(..., lang="en")``
chooses the kernel's language once (a context variable: panels carry it into their Run thread).
"""

from __future__ import annotations

import contextvars
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.i18n import check_lang, set_lang, tr
from labkit.steps.base import check_mode
from labkit.ui.evidence import local_time, outcome

__all__ = ["OUTSIDE_FIELD", "Session", "current_session", "outside_label", "session"]

#: The checkbox every panel with a file field gets (added by :class:`labkit.ui.panel.StepPanel`):
#: only when the student ticks it may a file field name a file outside the work folder.
OUTSIDE_FIELD = "outside_work"


def outside_label() -> str:
    """The checkbox's label, in the current language."""
    return tr("允许选择工作目录之外的文件", "allow a file outside the work folder")


@dataclass
class Session:
    """Where this notebook keeps its lab files, and the results its panels recorded.

    ``results`` holds, per check, the result recorded for grading (what the cell output holds);
    ``attempts`` the newest attempt, which differs when a later try was not recorded (see
    :mod:`labkit.ui.evidence`).
    """

    path: Path
    mode: str = "auto"
    results: dict[str, CheckResult] = field(default_factory=dict)
    attempts: dict[str, CheckResult] = field(default_factory=dict)

    def file(self, name: str | os.PathLike[str], *, field: str = "name", outside: bool = False) -> Path:
        """A path inside the work directory (names only: no escaping it with ``..``).

        The one path policy of every panel field that names a file: inside the work folder, unless
        the student ticked the panel's :func:`outside_label` checkbox (``outside=True``); then an
        absolute path (or one with ``..`` or ``~``) may name a file elsewhere, and a relative one
        still starts in the work folder. ``field`` names the panel field the name came from, for
        the error message.
        """
        if not str(name).strip():
            raise InvalidField(field, name, tr("为空", "is empty"), tr("给出文件名", "give a file name"))
        if outside:
            return (self.path / Path(name).expanduser()).resolve()
        p = (self.path / name).resolve()
        if self.path.resolve() not in p.parents:
            raise InvalidField(
                field,
                name,
                tr("指向工作目录之外", "points outside the work directory"),
                tr(
                    "用不带 .. 的文件名；确实要用别处的文件时勾选「{c}」",
                    "use a plain file name; to use a file elsewhere on purpose, tick '{c}'",
                    c=outside_label(),
                ),
            )
        return p

    def record(self, result: CheckResult) -> None:
        """``result`` is now the check's recorded (graded) result."""
        self.results[result.check] = result
        self.attempts[result.check] = result

    def attempted(self, result: CheckResult) -> None:
        """``result`` is the check's newest attempt (recorded or not)."""
        self.attempts[result.check] = result

    def _unrecorded(self, result: CheckResult) -> str:
        newer = self.attempts.get(result.check, result)
        if newer is result:
            return ""
        return tr(
            "（之后 {t} 的一次尝试{o}，未记录）",
            " (a later attempt at {t} {o}; not recorded)",
            t=local_time(newer.at),
            o=outcome(newer),
        )

    @staticmethod
    def _status_name(result: CheckResult, names: dict[str, str]) -> str:
        if result.evidence.get("skip_reason") == "stopped":
            return tr("已停止", "stopped")
        return names[result.status]

    @staticmethod
    def _how(result: CheckResult) -> str:
        """How the result came about, in the student's words: ran, verified, or why not run."""
        ev = result.evidence
        if ev.get("already_present"):
            return tr("已存在，已核实", "already present, verified")
        if result.status == "skipped":
            return {
                "plan_only": tr("仅计划", "plan only"),
                "host": tr("本机无法运行", "this machine cannot run it"),
                "consent": tr("等你同意", "waits for your consent"),
                "stopped": tr("已由你停止", "stopped by you"),
                "unanswered": tr("等你作答或填写", "waits for your answer or input"),
            }.get(str(ev.get("skip_reason")), tr("仅计划", "plan only") if result.mode == "plan" else "")
        return tr("运行", "run")

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in ("pass", "fail", "error", "skipped")}
        for r in self.results.values():
            out[r.status] += 1
        return out

    def summary_html(self) -> str:
        td = "<td style='text-align:left;vertical-align:top;padding:1px 10px 1px 0;white-space:nowrap'>"
        names = {
            "pass": tr("通过", "pass"),
            "fail": tr("失败", "fail"),
            "error": tr("出错", "error"),
            "skipped": tr("跳过", "skipped"),
        }
        rows = "".join(
            f"<tr>{td}<code>{html.escape(r.check)}</code></td>{td}{self._status_name(r, names)}</td>"
            f"{td}{self._how(r)}</td>"
            f"<td style='text-align:left;vertical-align:top'>{html.escape(r.message[:160])}"
            f"{html.escape(self._unrecorded(r))}</td></tr>"
            for r in self.results.values()
        )
        c = self.counts()
        head = tr(
            "通过 {p} · 失败 {f} · 出错 {e} · 跳过 {s}",
            "pass {p} · fail {f} · error {e} · skipped {s}",
            p=c["pass"],
            f=c["fail"],
            e=c["error"],
            s=c["skipped"],
        )
        th = "<th style='text-align:left'>"
        cols = tr(
            f"{th}检查</th>{th}状态</th>{th}方式</th>{th}说明</th>",
            "<th>check</th><th>status</th><th>mode</th><th>message</th>",
        )
        what = tr("（各单元格记录用于评分的结果）", "(the result each cell recorded for grading)")
        return f"<p><b>{head}</b> {what}</p><table style='margin-left:0'><tr>{cols}</tr>{rows}</table>"

    def summary(self):
        """Display the table of results recorded so far (HTML; not itself a check)."""
        from IPython.display import HTML, display

        display(HTML(self.summary_html()))


#: The notebook's session: a context variable like the language, so a panel's Run thread (started
#: with a copy of the kernel's context) records into the session of the kernel that started it.
_SESSION: contextvars.ContextVar[Session | None] = contextvars.ContextVar("labkit_session", default=None)


def session(
    labkit_workdir: str | os.PathLike[str] | None = None, *, mode: str = "auto", lang: str | None = None
) -> Session:
    """Start (or restart) the notebook's session; creates the work directory.

    ``lang`` (``"zh"`` / ``"en"``) chooses the language of this kernel's panels and messages; without
    it the choice made earlier (or ``LABKIT_LANG``, else Chinese) stays.
    """
    check_mode(mode)
    if check_lang(lang) is not None:
        set_lang(lang)
    path = Path(labkit_workdir) if labkit_workdir else Path.cwd() / "labkit-work"
    path.mkdir(parents=True, exist_ok=True)
    current = Session(path.resolve(), mode)
    _SESSION.set(current)
    return current


def current_session() -> Session | None:
    """The session the notebook started last (``None`` before :func:`session`)."""
    return _SESSION.get()
