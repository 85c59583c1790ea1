"""What a panel leaves in its cell's outputs: the graded result, and a note about a newer attempt.

The rule (explained in each notebook's first cell and in the README):

* The cell output holds **one** check result, the *recorded* one: the
  ``application/vnd.labkit.check+json`` payload the grader reads, labelled "评分用的结果" with the
  time it was recorded.
* A new attempt (the cell run again, or a click on 运行) replaces it unless the recorded result
  passed and the new attempt did not (:func:`keeps_recorded`): trying out a bad value or pressing
  停止 never destroys a pass the student earned. The student can still choose to record such an
  attempt (the panel's "记录这次结果（用于评分）" button).
* An attempt that was not recorded is shown as an :class:`AttemptNote` above the graded result:
  text only, no check payload, so the saved notebook shows the grader exactly what the student saw
  and the grader still reads the one recorded payload.

Pure presentation (no widgets, no I/O): :mod:`labkit.ui.panel` decides when to show what.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labkit.checks import CHECK_MIME, CheckResult
from labkit.i18n import tr

__all__ = [
    "AttemptNote",
    "GradedResult",
    "console_html",
    "keeps_recorded",
    "local_time",
    "outcome",
    "unrecorded_notice",
]

#: Readable on white and on JupyterLab's dark theme alike: dark text on a light panel (contrast ≈ 15:1).
_CONSOLE_STYLE = (
    "display:flex;flex-direction:column-reverse;overflow-y:auto;overflow-x:hidden;"
    "max-height:16.5em;background:#f6f8fa;color:#1f2328;border:1px solid #d0d7de;"
    "border-radius:4px;padding:4px 6px;margin:2px 0"
)
#: ``flex:none``/``overflow:visible``: the text must not shrink into a scroll box of its own (JupyterLab
#: gives ``pre`` ``overflow:auto``), or that inner box would sit at its top.
_PRE_STYLE = (
    "flex:none;overflow:visible;margin:0;font-family:var(--jp-code-font-family,monospace);font-size:85%;line-height:1.35;"
    "white-space:pre-wrap;overflow-wrap:anywhere;color:inherit;background:transparent"
)


def keeps_recorded(recorded: CheckResult | None, attempt: CheckResult) -> bool:
    """True when ``attempt`` must *not* replace ``recorded`` on its own: a recorded pass is kept
    against an attempt that did not pass (fail, error, skipped, stopped by the student)."""
    return recorded is not None and recorded.ok and not attempt.ok


def local_time(at: str) -> str:
    """``2026-03-01T12:00:05Z`` as the kernel's local time ``2026-03-01 20:00:05`` (as is if odd)."""
    try:
        when = _dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return at
    if when.tzinfo is None:
        return at
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def outcome(result: CheckResult) -> str:
    """What happened, in a few words: 通过 / 没有通过 / 出错 / 已由你停止 / 被跳过."""
    if result.evidence.get("skip_reason") == "stopped":
        return tr("已由你停止", "was stopped by you")
    return {
        "pass": tr("通过", "passed"),
        "fail": tr("没有通过", "did not pass"),
        "error": tr("出错", "ended in an error"),
    }.get(result.status, tr("被跳过", "was skipped"))


def _record_hint() -> str:
    return tr(
        "要改用这次的结果评分，点面板里的「记录这次结果（用于评分）」。",
        "To grade this attempt instead, click “Record this attempt for grading” in the panel.",
    )


def unrecorded_notice(recorded: CheckResult, attempt: CheckResult) -> str:
    """The panel's one line when ``attempt`` was not recorded (plain text)."""
    return tr(
        "这次尝试{o}，未记录：评分仍用 {t} 通过的结果（见下方）。",
        "This attempt {o} and was not recorded: grading still uses the pass from {t} (below).",
        o=outcome(attempt),
        t=local_time(recorded.at),
    )


@dataclass(frozen=True)
class GradedResult:
    """The recorded result as the cell output shows it: the check payload unchanged (digest and
    all), its HTML and text labelled as the result used for grading."""

    result: CheckResult

    def label(self) -> str:
        return tr(
            "评分用的结果 · 记录于 {t}",
            "Result used for grading · recorded {t}",
            t=local_time(self.result.at),
        )

    def _repr_html_(self) -> str:
        return (
            "<div class='labkit-graded' style='text-align:left'>"
            f"<div class='labkit-graded-label' style='font-size:90%;margin:2px 0'>"
            f"<b>{html.escape(self.label())}</b></div>{self.result._repr_html_()}</div>"
        )

    def __str__(self) -> str:
        return f"{self.label()}\n{self.result}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            CHECK_MIME: self.result.to_payload(),
            "text/html": self._repr_html_(),
            "text/plain": str(self),
        }


@dataclass(frozen=True)
class AttemptNote:
    """A newer attempt that was *not* recorded: shown (and saved) above the graded result, as text
    only – never a second check payload."""

    attempt: CheckResult
    recorded: CheckResult

    def label(self) -> str:
        return tr(
            "最近一次尝试（{t}）{o}，未用于评分；评分用的仍是下面 {r} 的结果。",
            "Latest attempt ({t}) {o}; not used for grading: the result below, from {r}, still is.",
            t=local_time(self.attempt.at),
            o=outcome(self.attempt),
            r=local_time(self.recorded.at),
        )

    def _repr_html_(self) -> str:
        return (
            "<div class='labkit-attempt' style='text-align:left;border:1px dashed #8c959f;"
            "padding:4px 6px;margin:2px 0'>"
            f"<div style='font-size:90%'><b>{html.escape(self.label())}</b> "
            f"{html.escape(_record_hint())}</div>{self.attempt._repr_html_()}</div>"
        )

    def __str__(self) -> str:
        return f"{self.label()} {_record_hint()}\n{self.attempt}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/html": self._repr_html_(), "text/plain": str(self)}


def console_html(lines: Sequence[str]) -> str:
    """The live console: dark text on a light box that wraps long lines (no horizontal scroll) and
    stays scrolled to the newest line (a ``column-reverse`` box starts at its end). stderr lines
    (``! …``) are marked."""
    body = "\n".join(
        f"<span class='labkit-stderr' style='color:#953800'>{html.escape(line)}</span>"
        if line.startswith("! ")
        else html.escape(line)
        for line in lines
    )
    pre = f"<pre style='{_PRE_STYLE}'>{body}</pre>"
    return f"<div class='labkit-console' style='{_CONSOLE_STYLE}'>{pre}</div>"
