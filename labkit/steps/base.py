"""The step model every chapter reuses: plan → already there? → run → check → evidence.

Hooks a :class:`Step` subclass implements (the life cycle is drawn in ``ARCHITECTURE.md``):

* :meth:`Step.plan` – pure and cheap: the exact argv lists / files the step would run or write
  (built by ``labkit.logic``, the same builders ``run`` uses) and a one-line reason.
* :meth:`Step.unavailable` – why this host cannot run it (``auto`` mode then only plans).
* :meth:`Step.satisfied` – reads the current state; evidence (with ``verified_by``: how it was
  verified) when the system is already as the step would leave it, so a second run verifies
  instead of redoing (idempotent steps). The base then says so in the result, in one wording
  (:func:`mark_already_present`); a target that exists but differs is refused with
  :func:`refuse_replacing`, which names what differs and the checkbox that allows replacing it.
* :meth:`Step.run` / :meth:`Step.check` – do it through the :class:`RunContext`, then judge.

:meth:`Step.execute` is the template method (cf. papermill's ``Engine.execute_notebook``): mode,
timing, error translation into a check result and cleanup live there, once.
"""

from __future__ import annotations

import contextlib
import html
import os
import shlex
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit.checks import PLAN_MIME, CheckResult
from labkit.errors import (
    Cancelled,
    CommandFailed,
    ConsentRequired,
    InvalidField,
    LabkitError,
    NotSupportedHere,
    ToolMissing,
)
from labkit.i18n import consent_hint, fill_hint, tr
from labkit.steps.runner import Completed, LineCallback, Process, Runner, default_runner

__all__ = [
    "MODES",
    "SKIP_REASONS",
    "Plan",
    "RunContext",
    "Step",
    "check_mode",
    "consent_to_edit",
    "error_evidence",
    "mark_already_present",
    "overwrite_label",
    "refuse_replacing",
]

MODES = ("auto", "plan", "live")

#: Why a result is ``skipped``, stored as ``evidence["skip_reason"]`` so the notebook summary, the
#: validator and the grader name the right cause instead of guessing from ``mode``:
#: ``plan_only`` – the notebook ran in ``plan`` mode; ``host`` – this machine cannot run the step
#: (:meth:`Step.unavailable`, :class:`~labkit.errors.NotSupportedHere`); ``consent`` – a
#: destructive part waits for the student's explicit yes (the panel's checkbox); ``stopped`` – the
#: student pressed Stop; ``unanswered`` – an exercise ran with no question answered yet, or a
#: field only the student can fill is still empty (:meth:`Step.unfilled`).
SKIP_REASONS = ("plan_only", "host", "consent", "stopped", "unanswered")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidField(
            "mode",
            mode,
            tr("不是运行方式", "is not a run mode"),
            tr("可选：{m}", "use one of {m}", m=", ".join(MODES)),
        )
    return mode


def overwrite_label() -> str:
    """The checkbox a panel shows for ``overwrite=True``: one wording for panels and messages."""
    return tr("允许覆盖（保留备份）", "Allow overwrite (keep a backup)")


def refuse_replacing(
    target: str | os.PathLike[str], differences: Sequence[str], *, keyword: str = "overwrite"
) -> ConsentRequired:
    """The refusal for a target that exists but is not what the step would make (``raise`` it).

    It says *what* differs (e.g. "virtual size 130 GiB, this step makes 120 GiB") and how to
    allow the replacement (:func:`labkit.i18n.consent_hint`): the panel's checkbox
    (:func:`overwrite_label`) in a panel, ``keyword=True`` in Python; a backup of the old target
    is kept.
    """
    return ConsentRequired(
        tr(
            "覆盖已存在但不同的 {t}（{d}）",
            "replace {t}, which exists but differs ({d})",
            t=os.fspath(target),
            d=tr("；", "; ").join(differences),
        ),
        tr(
            "要替换它，请{c}，旧文件会保留备份；或者换一个文件名",
            "to replace it, {c} and the old one is kept as a backup; or choose another name",
            c=consent_hint(keyword),
        ),
        keyword=keyword,
    )


def consent_to_edit(target: str | os.PathLike[str], *, keyword: str = "consent") -> ConsentRequired:
    """The refusal of a config edit without the student's yes (``raise`` it): names the file and
    how to agree (:func:`labkit.i18n.consent_hint`: the panel's checkbox, ``consent=True`` in
    Python), and that a backup is kept."""
    return ConsentRequired(
        tr("修改 {p}", "edit {p}", p=os.fspath(target)),
        tr(
            "如果同意，请{c}（会先备份），再运行一次",
            "to go ahead, {c} (a backup is kept) and run again",
            c=consent_hint(keyword),
        ),
        keyword=keyword,
    )


def mark_already_present(result: CheckResult, verified_by: str) -> CheckResult:
    """The result of a step whose target was already there (:meth:`Step.satisfied`), in one wording.

    A pass says "already present, verified (<how>)" before the check's own message; the evidence
    always carries ``already_present: True`` and ``verified_by`` (how it was verified), so the
    notebook, ``labkit validate`` and the grader can tell a verified re-run from a fresh run.
    """
    message = result.message
    if result.status == "pass":
        message = tr(
            "已存在，已核实（{how}）：{m}",
            "already present, verified ({how}): {m}",
            how=verified_by,
            m=message,
        )
    evidence = {**result.evidence, "already_present": True, "verified_by": verified_by}
    return CheckResult(
        result.check,
        result.status,
        message,
        evidence,
        mode=result.mode,
        labkit_version=result.labkit_version,
        at=result.at,
        session=result.session,
    )


@dataclass(frozen=True)
class Plan:
    """What a step would do, shown to the student before anything happens."""

    step: str
    reason: str
    #: What ``run`` executes, in order: exactly these argv lists reach the runner (or the Docker
    #: engine, shown as the equivalent ``docker`` command line).
    commands: list[list[str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Read-only commands the step may run to read the state before and after (``qemu-img info``,
    #: ``qemu-img compare``): shown too, so nothing runs that the student was not shown.
    probes: list[list[str]] = field(default_factory=list)
    #: Commands ``run`` executes *instead of* the first ones when what it finds says so (e.g. the
    #: classic builder where no docker CLI supports BuildKit); the notes say when.
    alternatives: list[list[str]] = field(default_factory=list)

    def shell(self) -> str:
        """The commands as a copy-pasteable shell snippet (quoted with ``shlex.join``)."""
        return "\n".join(shlex.join(c) for c in self.commands)

    def planned_argv(self) -> list[list[str]]:
        """Every argv this plan allows to run: the commands, the probes, then the alternatives."""
        return [list(c) for c in (*self.commands, *self.probes, *self.alternatives)]

    def to_payload(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "reason": self.reason,
            "commands": [list(c) for c in self.commands],
            "files": dict(self.files),
            "notes": list(self.notes),
            "probes": [list(c) for c in self.probes],
            "alternatives": [list(c) for c in self.alternatives],
        }

    def __str__(self) -> str:
        parts = [f"# {self.reason}"] if self.reason else []
        parts += [shlex.join(c) for c in self.commands]
        for path, content in self.files.items():
            parts.append(f"# {tr('写入文件', 'write file')} {path}:\n{content}")
        parts += [f"# {tr('注意', 'note')}: {n}" for n in self.notes]
        parts += [f"# {tr('或者', 'or instead')}: {shlex.join(c)}" for c in self.alternatives]
        parts += [f"# {tr('检查', 'check')}: {shlex.join(c)}" for c in self.probes]
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        body = html.escape(self.shell()) if self.commands else ""
        files = "".join(
            f"<div>{tr('写入文件', 'write file')} <code>{html.escape(p)}</code>"
            f"<pre>{html.escape(c)}</pre></div>"
            for p, c in self.files.items()
        )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        probes = html.escape("\n".join(shlex.join(c) for c in self.probes))
        alternatives = html.escape("\n".join(shlex.join(c) for c in self.alternatives))
        return (
            f"<div class='labkit-plan'><b>{tr('计划', 'Plan')}</b> <code>{html.escape(self.step)}</code>"
            f" — {html.escape(self.reason)}"
            + (f"<pre>{body}</pre>" if body else "")
            + files
            + (f"<ul>{notes}</ul>" if notes else "")
            + (
                f"<div>{tr('或者改为运行', 'or instead')}<pre>{alternatives}</pre></div>"
                if self.alternatives
                else ""
            )
            + (
                f"<div>{tr('只读检查命令', 'read-only checks')}<pre>{probes}</pre></div>"
                if self.probes
                else ""
            )
            + "</div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {PLAN_MIME: self.to_payload(), "text/html": self._repr_html_(), "text/plain": str(self)}


@dataclass
class RunContext:
    """What a running step may use: the runner, the Docker engine connector, streaming, progress
    and cancel plumbing. Tests swap ``runner`` and ``docker`` the same way (``Step.execute``)."""

    runner: Runner
    cancel: threading.Event = field(default_factory=threading.Event)
    on_line: LineCallback | None = None
    on_progress: Callable[[float], None] | None = None
    #: Every argv that ran (runner) or its docker-CLI equivalent (engine calls), in order.
    commands: list[list[str]] = field(default_factory=list)
    #: The Docker engine connector (``labkit.steps.docker.engine``); ``None`` until first used.
    docker: Any = None

    def run(self, argv: Sequence[str], *, timeout: float | None = None, **kw: Any) -> Completed:
        """Run a command with this context's streaming and cancel event; records the argv."""
        self.commands.append([str(a) for a in argv])
        kw.setdefault("on_line", self.on_line)
        return self.runner.run(argv, timeout=timeout, cancel=self.cancel, **kw)

    def start(self, argv: Sequence[str], **kw: Any) -> Process:
        """Start a long-running command (a booting guest); records the argv like :meth:`run`.

        The caller owns the process and must stop it (``Step.cleanup``)."""
        self.record(argv)
        return self.runner.start(argv, **kw)

    def engine(self, action: str, **kw: Any) -> contextlib.AbstractContextManager[Any]:
        """``with ctx.engine(action) as client:`` – an SDK client from this context's connector,
        errors translated, always closed (:class:`labkit.steps.docker.engine.DockerEngine`)."""
        return self.docker_connector().session(action, **kw)

    def docker_unavailable(self, *, timeout: float = 5) -> str | None:
        """Why this context's Docker engine cannot be used (``None`` when it can)."""
        return self.docker_connector().unavailable(timeout=timeout)

    def docker_connector(self) -> Any:
        """This context's :class:`~labkit.steps.docker.engine.DockerEngine` (made on first use)."""
        if self.docker is None:
            from labkit.steps.docker.engine import DockerEngine

            self.docker = DockerEngine()
        return self.docker

    def record(self, argv: Sequence[str]) -> None:
        """Note a command that ran without the runner (an engine API call, as its CLI form)."""
        self.commands.append([str(a) for a in argv])

    def progress(self, fraction: float) -> None:
        if self.on_progress is not None:
            self.on_progress(max(0.0, min(1.0, fraction)))

    def say(self, text: str) -> None:
        """Emit an informational line into the same stream the student watches."""
        if self.on_line is not None:
            self.on_line("info", text)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled(["(step)"], None)


class Step:
    """Base class of every course step. Subclasses set ``check_id`` and implement the hooks."""

    check_id: str = "step"
    #: Seconds a single run may take before the runner stops it.
    timeout: float = 600.0

    # -- hooks for subclasses ---------------------------------------------------------------
    def plan(self) -> Plan:
        raise NotImplementedError

    def unavailable(self, ctx: RunContext) -> str | None:
        """Why this host cannot run the step (``None`` when it can). Used by ``auto`` mode.

        Cheap probes only (a tool on PATH, the engine answering); ``ctx`` carries the swappable
        runner and Docker connector so tests control this too."""
        return None

    def unfilled(self) -> tuple[str, str] | None:
        """``(keyword, example)`` of a field the student still has to fill (a classmate's address),
        else ``None``. Such a run is *skipped* with ``skip_reason: unanswered`` and a message naming
        the field, as an unanswered exercise is: a notebook run before the student filled it in is
        not a failed check, and the grader counts it as not done."""
        return None

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        """Read the current state; evidence if the system is already as ``run`` would leave it.

        Return ``None`` (the default) to run. Return evidence, with ``verified_by`` saying how it
        was verified (e.g. ``{"verified_by": "qemu-img info: qcow2, 120 GiB"}``), when the target
        exists and is exactly what the step would produce: then ``run`` is skipped, ``check``
        judges that evidence (with ``already_present: True``), the result says "already present,
        verified (<verified_by>)" (:func:`mark_already_present`), and a second "Run All" costs the
        student nothing. A target that exists but differs is not "satisfied": ``run`` then
        refuses without consent (:func:`refuse_replacing`). Only what ``plan()`` lists (its
        probes) may run here.
        """
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        raise NotImplementedError

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Release resources (temporary files, child processes) whatever happened."""

    # -- template method --------------------------------------------------------------------
    def execute(
        self,
        mode: str = "auto",
        *,
        runner: Runner | None = None,
        on_line: LineCallback | None = None,
        on_progress: Callable[[float], None] | None = None,
        cancel: threading.Event | None = None,
        docker: Any = None,
    ) -> CheckResult:
        """Plan, and unless ``mode`` says otherwise run and check; always return a result.

        ``plan``: only plan. ``auto``: run when :meth:`unavailable` returns ``None``, else plan and
        report *skipped* with the reason. ``live``: run, and report *error* if the host cannot.
        When :meth:`satisfied` finds the wanted state already there, ``run`` is skipped.
        Errors never escape as tracebacks: they become an ``error`` / ``skipped`` check result whose
        message says what to do. A destructive action refused for lack of consent is *skipped* (planned)
        in ``auto`` and an *error* in ``live``.
        """
        check_mode(mode)
        try:
            plan = self.plan()
        except LabkitError as exc:
            return CheckResult.errored(self.check_id, str(exc), **_error_fields(exc))
        planned = {"plan": plan.to_payload()}
        if mode == "plan":
            return CheckResult.skipped(
                self.check_id,
                tr("仅计划，未运行", "planned only, not run"),
                mode="plan",
                skip_reason="plan_only",
                **planned,
            )
        ctx = RunContext(
            runner=runner or default_runner(),
            cancel=cancel or threading.Event(),
            on_line=on_line,
            on_progress=on_progress,
            docker=docker,
        )
        try:
            reason = self.unavailable(ctx)
        except LabkitError as exc:
            reason = str(exc)
        if reason:
            if mode == "live":
                return CheckResult.errored(self.check_id, reason, **planned)
            return CheckResult.skipped(self.check_id, reason, mode="plan", skip_reason="host", **planned)
        missing = self.unfilled()
        if missing:
            keyword, example = missing
            return CheckResult.skipped(
                self.check_id,
                tr("还没有填写：{h}", "not filled in yet: {h}", h=fill_hint(keyword, example)),
                mode="plan",
                skip_reason="unanswered",
                **planned,
            )

        t0 = time.monotonic()
        try:
            result = self._run_and_check(ctx, mode, planned)
        finally:
            self.cleanup()
        if ctx.cancel.is_set() and result.status in ("fail", "error"):
            # Stop cut the run short and the check saw the damage: the student's stop, not a failure.
            result = self._stopped("", **result.evidence)
        extra = {"duration_s": round(time.monotonic() - t0, 3)}
        if ctx.commands:
            extra["commands"] = [shlex.join(c) for c in ctx.commands]
        return CheckResult(
            result.check,
            result.status,
            result.message,
            {**result.evidence, **{k: v for k, v in extra.items() if k not in result.evidence}},
            mode=result.mode,
        )

    def _stopped(self, command: str, **evidence: Any) -> CheckResult:
        """The result of a run the student stopped: "stopped by you", never an error or a log."""
        evidence.update(skip_reason="stopped", stopped_command=command)
        return CheckResult.skipped(self.check_id, tr("已由你停止", "stopped by you"), **evidence)

    def _run_and_check(self, ctx: RunContext, mode: str, planned: dict[str, Any]) -> CheckResult:
        """Already there? → run → check, with every error turned into a result (never a traceback)."""
        try:
            present = self.satisfied(ctx)
            if present is not None:
                how = str(present.get("verified_by") or tr("重新读取了状态", "state read back"))
                result = self.check(ctx, {**present, "already_present": True, "verified_by": how})
                return mark_already_present(result, how)
            return self.check(ctx, self.run(ctx))
        except NotSupportedHere as exc:
            return CheckResult.skipped(self.check_id, str(exc), skip_reason="host", **planned)
        except ConsentRequired as exc:
            # Not an error in "auto": the destructive part waits for the student's explicit yes.
            # The step did run up to that point (it read the state and found a target that
            # differs), so the mode stays "run" and the reason says "consent", never "plan".
            # "live" asked for everything to run: then it is an error.
            if mode == "live":
                return CheckResult.errored(self.check_id, str(exc), **_error_fields(exc))
            return CheckResult.skipped(
                self.check_id, str(exc), skip_reason="consent", **planned, **_error_fields(exc)
            )
        except Cancelled as exc:
            # The student pressed Stop: their decision, not a failure of the step or the host.
            return self._stopped(exc.command)
        except LabkitError as exc:
            if ctx.cancel.is_set():  # a command cut off by Stop failed in its own way: still a stop
                return self._stopped(getattr(exc, "command", ""))
            return CheckResult.errored(self.check_id, str(exc), **_error_fields(exc))
        except Exception as exc:  # a bug in labkit or an unexpected tool behaviour
            if ctx.cancel.is_set():
                return self._stopped("")
            tb = traceback.format_exception_only(type(exc), exc)
            return CheckResult.errored(
                self.check_id,
                tr("意外错误：", "unexpected error: ") + "".join(tb).strip(),
                exception=type(exc).__name__,
            )


def error_evidence(exc: LabkitError) -> Mapping[str, Any]:
    """Structured evidence for an error (the field and its label, the consent keyword, the tool,
    the command), for a result made outside :meth:`Step.execute` too (a panel that cannot build
    its step)."""
    return _error_fields(exc)


def _error_fields(exc: LabkitError) -> Mapping[str, Any]:
    """Structured evidence for an error, so the notebook shows fields instead of a traceback."""
    out: dict[str, Any] = {"error": type(exc).__name__}
    if isinstance(exc, InvalidField):
        out.update(field=exc.field, value=str(exc.value), fix=exc.fix)
        if exc.label != exc.field:
            out["label"] = exc.label
    elif isinstance(exc, ToolMissing):
        out.update(tool=exc.tool, install=exc.install)
    elif isinstance(exc, CommandFailed):
        out.update(argv=exc.argv, returncode=exc.returncode, stderr_tail=exc.stderr[-2000:])
    elif isinstance(exc, ConsentRequired):
        out.update(action=exc.action, how=exc.how)
        if exc.keyword:
            out["keyword"] = exc.keyword
    return out
