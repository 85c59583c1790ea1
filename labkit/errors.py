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

    ``field`` is the name the user sees (widget label or keyword argument), ``fix`` tells how to
    correct it, e.g. ``InvalidField("memory", "8X", "not a size", "use a number with K/M/G/T, e.g. 8G")``.
    """

    def __init__(self, field: str, value: object, problem: str, fix: str = "") -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.fix = fix
        msg = f"{field}: {value!r} {problem}"
        if fix:
            msg += f"; {fix}"
        super().__init__(msg)


class ConsentRequired(LabkitError):
    """A destructive step (overwrite, delete, config edit) needs an explicit yes."""

    def __init__(self, action: str, how: str) -> None:
        self.action = action
        self.how = how
        super().__init__(f"refusing to {action} without consent; {how}")


class NotSupportedHere(LabkitError):
    """The host lacks a capability (KVM, GPU, ...). Steps turn this into a *skipped* check."""

    def __init__(self, reason: str, fix: str = "") -> None:
        self.reason = reason
        self.fix = fix
        super().__init__(reason + (f"; {fix}" if fix else ""))


class ToolMissing(LabkitError):
    """An executable is not on PATH. ``package`` is the Debian/Ubuntu package that provides it."""

    def __init__(self, tool: str, package: str | None = None) -> None:
        self.tool = tool
        self.package = package
        self.install = f"sudo apt-get install -y --no-install-recommends {package}" if package else ""
        msg = f"{tool} is not installed"
        if package:
            msg += f"; install it with: {self.install}"
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
        return f"exited with status {self.returncode}"

    def _describe(self) -> str:
        msg = f"`{self.command}` {self._what()}"
        tail = _tail(self.stderr) or _tail(self.stdout)
        if tail:
            msg += f":\n{tail}"
        if self.hint:
            msg += f"\nhint: {self.hint}"
        return msg


class CommandTimeout(CommandFailed):
    """A command ran longer than its timeout and was killed."""

    def __init__(self, argv: Sequence[str], timeout: float, stdout: str = "", stderr: str = "") -> None:
        self.timeout = timeout
        super().__init__(argv, None, stdout, stderr)

    def _what(self) -> str:
        return f"timed out after {self.timeout:g} s and was stopped"


class Cancelled(CommandFailed):
    """The user pressed stop (or the cancel event was set) while the command ran."""

    def _what(self) -> str:
        return "was stopped on request"
