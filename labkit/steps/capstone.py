"""Course 4.5 (practice): PVE + Ubuntu VM + Jupyter Server + Seafile, checked as one result.

:class:`Capstone` (``ch4.capstone``) runs the chapter's own checks again, as they are (the step
objects, not copies of their logic), and records one combined evidence listing every part:

* ``vm``: chapter 1's tiny aarch64 guest boots (:class:`~labkit.steps.guest_boot.BootGuest`;
  the VM of 4.5, a real guest under QEMU here since no PVE host is available);
* ``jupyter``: the Jupyter Server of 4.4 accepts the password and refuses a wrong one
  (:class:`~labkit.steps.jupyter_checks.VerifyLogin`);
* ``compose``: Seafile's compose file is valid for the real compose tool
  (:class:`~labkit.steps.seafile.ValidateCompose`);
* ``seafile``: Seafile answers over HTTP (:class:`~labkit.steps.seafile.SeafileHealth`).

The criterion (README, "What chapter 4 does"): the capstone **passes** when ``vm``, ``jupyter``
and ``compose`` pass and ``seafile`` either passes or cannot run on this machine (skipped with
``skip_reason: host``, e.g. no images and no registry: the part is listed as *planned* with its
reason, which a valid compose file makes the most this machine can show). It **fails** when any
part fails or errors (a Seafile that runs but does not answer fails it too). When a required part
is skipped (the server was not started, no QEMU), the capstone is *skipped* with that part's
reason: nothing was proven, nothing failed.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.steps.base import Plan, RunContext, Step

__all__ = ["OPTIONAL", "REQUIRED", "Capstone", "part_label"]

#: Parts that must pass, in the order they run.
REQUIRED = ("vm", "jupyter", "compose")
#: A part that may be planned (cannot run here) without failing the capstone.
OPTIONAL = ("seafile",)


def part_label(part: str) -> str:
    """How the result names a part."""
    return {
        "vm": tr("虚拟机启动", "VM boots"),
        "jupyter": tr("Jupyter 密码登录", "Jupyter login"),
        "compose": tr("Seafile 的 compose 文件有效", "Seafile's compose file is valid"),
        "seafile": tr("Seafile 可以访问", "Seafile reachable"),
    }.get(part, part)


def _status_word(status: str, skip_reason: str | None) -> str:
    if status == "pass":
        return tr("通过", "passed")
    if status == "skipped" and skip_reason == "host":
        return tr("只计划（本机无法运行）", "planned (cannot run here)")
    if status == "skipped":
        return tr("跳过", "skipped")
    return tr("失败", "failed") if status == "fail" else tr("出错", "error")


#: A part's own field → the capstone's (``for_work``'s keyword, the panel's field), so that a bad
#: value is named by the label the student sees (「Jupyter 端口」), not by the part's keyword.
_PART_FIELDS = {
    "jupyter": {"ip": "jupyter_ip", "port": "jupyter_port"},
    "compose": {"http_port": "seafile_port"},
    "seafile": {"http_port": "seafile_port"},
}


def _part_plan(name: str, step: Step) -> Plan:
    try:
        return step.plan()
    except InvalidField as exc:
        ours = _PART_FIELDS.get(name, {}).get(exc.field)
        if ours is None:
            raise
        raise InvalidField(ours, exc.value, exc.problem, exc.fix) from None


class Capstone(Step):
    """Run the chapter's checks (``parts``: name → step) and judge them together."""

    check_id = "ch4.capstone"
    timeout = 900.0

    def __init__(self, parts: Mapping[str, Step]) -> None:
        unknown = set(parts) - set(REQUIRED) - set(OPTIONAL)
        if unknown or not set(REQUIRED) <= set(parts):
            raise ValueError(f"capstone parts {sorted(parts)}: need {REQUIRED}, may have {OPTIONAL}")
        self.parts = {name: parts[name] for name in (*REQUIRED, *OPTIONAL) if name in parts}

    @classmethod
    def for_work(
        cls,
        workdir: str | os.PathLike[str],
        *,
        jupyter_ip: str = "127.0.0.1",
        jupyter_port: int = 8888,
        allow_root: bool = False,
        password: Any = None,
        seafile_port: int = 8000,
        boot_timeout: float = 60,
    ) -> Capstone:
        """The parts as the chapter's cells make them: the server in ``<workdir>/jupyter``, Seafile's
        project in ``<workdir>/seafile``, chapter 1's cached guest. ``password`` (a
        :class:`~labkit.logic.jupyter_server.Password`) is the login's; ``None``: the environment's
        or the generated one, as the login step finds it."""
        from labkit.steps.guest_boot import BootGuest
        from labkit.steps.host import collect_host_facts
        from labkit.steps.jupyter_checks import VerifyLogin
        from labkit.steps.seafile import SeafileHealth, ValidateCompose

        work = os.path.abspath(os.fspath(workdir))
        return cls(
            {
                "vm": BootGuest(timeout=boot_timeout, host=collect_host_facts(probe_kvm=False, tools=())),
                "jupyter": VerifyLogin(
                    os.path.join(work, "jupyter"),
                    ip=jupyter_ip,
                    port=jupyter_port,
                    allow_root=allow_root,
                    password=password,
                ),
                "compose": ValidateCompose(work, http_port=seafile_port),
                "seafile": SeafileHealth(work, http_port=seafile_port),
            }
        )

    def plan(self) -> Plan:
        commands: list[list[str]] = []
        probes: list[list[str]] = []
        alternatives: list[list[str]] = []
        notes: list[str] = []
        for name, step in self.parts.items():
            sub = _part_plan(name, step)
            commands += sub.commands
            probes += sub.probes
            alternatives += sub.alternatives
            notes.append(
                tr("{p}（{c}）：{r}", "{p} ({c}): {r}", p=part_label(name), c=step.check_id, r=sub.reason)
            )
        notes.append(
            tr(
                "通过条件：前三项都通过；Seafile 能访问，"
                "或者在本机无法运行时只列出计划和原因（compose 文件有效即可）",
                "passes when the first three pass and Seafile answers, or, where it cannot run here, is "
                "listed as planned with its reason (a valid compose file is enough)",
            )
        )
        return Plan(
            step=self.check_id,
            reason=tr(
                "4.5 综合检查：重新运行本章的检查（虚拟机、Jupyter 登录、compose、Seafile），记录一个总结果",
                "4.5 capstone: run the chapter's checks again (VM, Jupyter login, compose, Seafile) and "
                "record one combined result",
            ),
            commands=commands,
            probes=probes,
            alternatives=alternatives,
            notes=notes,
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        rows = []
        for n, (name, step) in enumerate(self.parts.items()):
            ctx.check_cancelled()
            ctx.say(tr("— {p} —", "— {p} —", p=part_label(name)))
            result = step.execute("auto", runner=ctx.runner, on_line=ctx.on_line, cancel=ctx.cancel)
            for line in result.evidence.get("commands", []):
                ctx.record(shlex.split(line))
            rows.append(
                {
                    "part": name,
                    "check": result.check,
                    "status": result.status,
                    "mode": result.mode,
                    "skip_reason": result.evidence.get("skip_reason"),
                    "message": result.message,
                }
            )
            ctx.progress((n + 1) / len(self.parts))
        ctx.check_cancelled()
        return {"parts": rows, "required": list(REQUIRED), "optional": list(OPTIONAL)}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        rows = evidence["parts"]
        listing = tr("；", "; ").join(
            tr(
                "{p}：{s}",
                "{p}: {s}",
                p=part_label(r["part"]),
                s=_status_word(r["status"], r["skip_reason"]),
            )
            for r in rows
        )
        bad = [r for r in rows if r["status"] in ("fail", "error")]
        if bad:
            first = bad[0]
            return CheckResult.failed(
                self.check_id,
                tr(
                    "{l}。「{p}」没有通过：{m}",
                    "{l}. {p} did not pass: {m}",
                    l=listing,
                    p=part_label(first["part"]),
                    m=first["message"],
                ),
                **evidence,
            )
        missing = [r for r in rows if r["part"] in REQUIRED and r["status"] != "pass"]
        if missing:
            first = missing[0]
            return CheckResult.skipped(
                self.check_id,
                tr(
                    "{l}。「{p}」没有运行：{m}",
                    "{l}. {p} did not run: {m}",
                    l=listing,
                    p=part_label(first["part"]),
                    m=first["message"],
                ),
                skip_reason=first["skip_reason"] or "host",
                **evidence,
            )
        planned = [r for r in rows if r["part"] in OPTIONAL and r["status"] != "pass"]
        if planned:
            first = planned[0]
            return CheckResult.passed(
                self.check_id,
                tr(
                    "{l}。「{p}」在本机只能计划：{m}",
                    "{l}. {p} can only be planned here: {m}",
                    l=listing,
                    p=part_label(first["part"]),
                    m=first["message"],
                ),
                **evidence,
            )
        return CheckResult.passed(self.check_id, listing, **evidence)
