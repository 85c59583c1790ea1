"""The plan-equals-execution rule, as a test helper every step test can use.

A plan shows exactly what runs: each argv the runner (or the Docker connector, as its CLI form)
received while a step executed must appear in ``plan.planned_argv()`` (commands, read-only
probes, alternatives), and every argv of ``plan.commands`` must have run when the step ran to the
end and did not take one of the plan's alternatives instead. Tests run
the real tools through :class:`RecordingRunner`, which wraps the real runner and records every
argv, so a step that bypasses ``ctx.run`` is caught too.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from labkit.checks import CheckResult
from labkit.steps.base import Plan, Step
from labkit.steps.runner import Runner, default_runner


class RecordingRunner:
    """A runner that records every argv (``run`` and ``start``) and passes it to a real runner."""

    def __init__(self, inner: Runner | None = None) -> None:
        self.inner = inner or default_runner()
        self.history: list[list[str]] = []

    def run(self, argv: Sequence[str], **kw: Any):
        self.history.append([str(a) for a in argv])
        return self.inner.run(argv, **kw)

    def start(self, argv: Sequence[str], **kw: Any):
        self.history.append([str(a) for a in argv])
        return self.inner.start(argv, **kw)


def executed_argv(result: CheckResult) -> list[list[str]]:
    """The commands a result says ran (``evidence["commands"]``, one shell line each)."""
    return [shlex.split(c) for c in result.evidence.get("commands", [])]


def assert_plan_matches(
    plan: Plan, result: CheckResult, runner_history: list[list[str]] | None = None
) -> list[list[str]]:
    """Assert the rule for one execution; return the argv lists that ran."""
    ran = executed_argv(result)
    if runner_history is not None:
        for argv in runner_history:
            assert argv in ran, f"ran outside the run context (not recorded): {shlex.join(argv)}"
    allowed = plan.planned_argv()
    for argv in ran:
        assert argv in allowed, f"ran but not planned: {shlex.join(argv)}\nplanned:\n{plan}"
    finished = result.mode == "run" and result.status in ("pass", "fail")
    took_alternative = any(argv in plan.alternatives for argv in ran)
    if finished and not result.evidence.get("already_present") and not took_alternative:
        for argv in plan.commands:
            assert argv in ran, f"planned but never ran: {shlex.join(argv)}"
    return ran


def execute_and_match(step: Step, mode: str = "live", **kw: Any) -> tuple[CheckResult, list[list[str]]]:
    """Plan, execute for real through a recording runner, and assert the rule."""
    plan = step.plan()
    runner = RecordingRunner(kw.pop("runner", None))
    result = step.execute(mode, runner=runner, **kw)
    ran = assert_plan_matches(plan, result, runner.history)
    return result, ran
