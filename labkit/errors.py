"""Exceptions raised by labkit.

Every error a student can meet is a :class:`LabkitError` whose message says what went wrong
*and* what to do about it. Third-party errors (``OSError`` from spawning, docker / kubernetes
API errors) are translated into these once, at the runner / step boundary, with
``raise ... from exc`` so the original stays available for debugging.

Tree::

    LabkitError
    ├── InvalidField          bad user input: names the field, the value and the fix
    ├── ConsentRequired       a destructive action was not explicitly allowed
    ├── NotSupportedHere      this host cannot do it (no KVM, no GPU, ...); a check becomes "skipped"
    ├── ToolMissing           an executable is not installed; names the Debian/Ubuntu package
    └── CommandFailed         a command exited non-zero: argv, exit code, stdout, stderr
        ├── CommandTimeout    ... or ran past its timeout and was killed
        └── Cancelled         ... or was stopped by the user
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from labkit.i18n import consent_hint, field_name, tr

__all__ = [
    "Cancelled",
    "CommandFailed",
    "CommandTimeout",
    "ConsentRequired",
    "InvalidField",
    "LabkitError",
    "NotSupportedHere",
    "ToolMissing",
]


def _tail(text: str, lines: int = 12) -> str:
    parts = (text or "").rstrip().splitlines()
    return "\n".join(parts[-lines:])


class LabkitError(Exception):
    """Base class of every error labkit raises on purpose."""


class InvalidField(LabkitError, ValueError):
    """A user-supplied value is unusable.

    ``field`` is the keyword argument the value came in (structured evidence names it), ``fix``
    tells how to correct it, e.g. ``InvalidField("memory", "8X", tr("不是大小", "is not a size"),
    tr("例如 8G", "e.g. 8G"))``. The message names the field as the reader sees it
    (:func:`labkit.i18n.field_name`): the panel's label in a panel, the keyword elsewhere.
    """

    def __init__(self, field: str, value: object, problem: str, fix: str = "") -> None:
        self.field = field
        self.label = field_name(field)
        self.value = value
        self.problem = problem
        self.fix = fix
        msg = tr("{f}：{v!r} {p}", "{f}: {v!r} {p}", f=self.label, v=value, p=problem)
        if fix:
            msg += tr("；{x}", "; {x}", x=fix)
        super().__init__(msg)


class ConsentRequired(LabkitError):
    """A destructive step (overwrite, delete, config edit) needs an explicit yes.

    ``keyword`` is the step's keyword that grants it (``overwrite``, ``consent``, ``confirm``); the
    panel shows it as a checkbox or a text field. Without ``how`` the message says how to give
    that yes (:func:`labkit.i18n.consent_hint`: the checkbox's label in a panel).
    """

    def __init__(self, action: str, how: str = "", *, keyword: str | None = None) -> None:
        self.action = action
        self.keyword = keyword
        if not how and keyword:
            how = tr("如果同意，请{c}，再运行一次", "to go ahead, {c} and run again", c=consent_hint(keyword))
        self.how = how
        super().__init__(
            tr("未经你同意，不会{a}；{h}", "refusing to {a} without consent; {h}", a=action, h=self.how)
        )


class NotSupportedHere(LabkitError):
    """The host lacks a capability (KVM, GPU, ...). Steps turn this into a *skipped* check."""

    def __init__(self, reason: str, fix: str = "") -> None:
        self.reason = reason
        self.fix = fix
        super().__init__(reason + (tr("；{x}", "; {x}", x=fix) if fix else ""))


class ToolMissing(LabkitError):
    """An executable is not on PATH. ``package`` is the Debian/Ubuntu package that provides it."""

    def __init__(self, tool: str, package: str | None = None) -> None:
        self.tool = tool
        self.package = package
        self.install = f"sudo apt-get install -y --no-install-recommends {package}" if package else ""
        if package:
            msg = tr(
                "{t} 未安装；安装命令：{i}",
                "{t} is not installed; install it with: {i}",
                t=tool,
                i=self.install,
            )
        else:
            msg = tr("{t} 未安装", "{t} is not installed", t=tool)
        super().__init__(msg)


class CommandFailed(LabkitError):
    """A command exited non-zero. Carries everything needed to explain it without a traceback."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int | None,
        stdout: str = "",
        stderr: str = "",
        hint: str = "",
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.hint = hint
        super().__init__(self._describe())

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def _what(self) -> str:
        return tr("以状态 {n} 退出", "exited with status {n}", n=self.returncode)

    def _describe(self) -> str:
        msg = f"`{self.command}` {self._what()}"
        tail = _tail(self.stderr) or _tail(self.stdout)
        if tail:
            msg += f":\n{tail}"
        if self.hint:
            msg += tr("\n提示：{h}", "\nhint: {h}", h=self.hint)
        return msg


class CommandTimeout(CommandFailed):
    """A command ran longer than its timeout and was killed."""

    def __init__(self, argv: Sequence[str], timeout: float, stdout: str = "", stderr: str = "") -> None:
        self.timeout = timeout
        super().__init__(argv, None, stdout, stderr)

    def _what(self) -> str:
        return tr("运行超过 {t:g} 秒，已被停止", "timed out after {t:g} s and was stopped", t=self.timeout)


class Cancelled(CommandFailed):
    """The user pressed stop (or the cancel event was set) while the command ran."""

    def _what(self) -> str:
        return tr("已按你的要求停止", "was stopped on request")
