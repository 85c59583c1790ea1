"""Nested-virtualization check of chapter 3 (``ch3.nested.check``): PVE inside VirtualBox.

:class:`NestedVirtCheck` runs the course's ``egrep -c '(vmx|svm)' /proc/cpuinfo`` as
``grep -Ec '(vmx|svm)' /proc/cpuinfo`` (no shell; exit 1 with ``0`` is a count, not a failure)
and reuses chapter 1's host probe (:func:`labkit.steps.host.collect_host_facts`, with its real KVM
test run) for the verdict, then says what it means for PVE in this machine
(:mod:`labkit.logic.nested`). The follow-up steps are chapter 1's, reused as they are:
``kvm: no`` is :class:`labkit.steps.pve.SetPveOption` (the safe edit with a backup) and
``qm stop`` / ``qm destroy`` is :class:`labkit.steps.pve.QmDestroy` (typed-id consent, only where
``qm`` exists). Only reads: every command it runs is a read-only probe of the plan.
"""

from __future__ import annotations

import platform
from typing import Any

from labkit.checks import CheckResult
from labkit.i18n import tr
from labkit.logic import nested
from labkit.logic.host import acceleration_meaning
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.host import ContextRunner, collect_host_facts, probe_commands

__all__ = ["NestedVirtCheck"]


class NestedVirtCheck(Step):
    """Count the CPUs reporting vmx/svm, test KVM, explain what that means for PVE in a VM."""

    check_id = "ch3.nested.check"
    timeout = 60.0

    def __init__(self, vm: str = "PVE", *, probe_kvm: bool = True) -> None:
        #: The VirtualBox VM's name, for the ``VBoxManage modifyvm`` advice.
        self.vm = vm
        self.probe_kvm = probe_kvm

    def plan(self) -> Plan:
        nested.vbox_nested_argv(self.vm)  # validates the name
        return Plan(
            step=self.check_id,
            reason=tr(
                "检查本机 CPU 是否提供硬件虚拟化（vmx/svm）以及 KVM 是否可用：PVE 能否在这里加速运行虚拟机",
                "check whether this machine's CPU offers hardware virtualization (vmx/svm) and KVM works: "
                "whether PVE here could run accelerated guests",
            ),
            probes=[nested.build_flag_count(), *probe_commands(probe_kvm=self.probe_kvm, tools=())],
            notes=[
                tr("课程命令：", "the course's command: ") + nested.SEED_COMMAND,
                tr(
                    "-E：扩展正则（egrep 即 grep -E）；-c：只输出匹配的行数，每个逻辑 CPU 一行 flags",
                    "-E: extended regex (egrep is grep -E); -c: print only the number of matching "
                    "lines, one flags line per logical CPU",
                ),
                tr(
                    "KVM 的判断复用第 1 章的主机检查（在单独进程里真正运行几条客户机指令）",
                    "the KVM verdict reuses chapter 1's host check (a few guest instructions really run "
                    "in a separate process)",
                ),
            ],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        done = ctx.run(nested.build_flag_count(), timeout=10, check=False)
        count = nested.parse_flag_count(done.returncode, done.stdout, done.stderr)
        facts = collect_host_facts(ContextRunner(ctx), probe_kvm=self.probe_kvm, tools=())
        return {
            "vmx_svm_count": count,
            "grep_exit": done.returncode,
            "grep_stderr": done.stderr.strip(),
            "arch": facts.arch or platform.machine(),
            "cpu_virt_flags": facts.virt_flags,
            "kvm_usable": facts.kvm_usable,
            "kvm_known": facts.kvm_known,
            "kvm_reason": facts.kvm_reason,
            "acceleration": acceleration_meaning(facts),
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        count = evidence["vmx_svm_count"]
        if count is None:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "grep 没能读出计数（退出码 {r}）：{e}",
                    "grep did not give a count (exit {r}): {e}",
                    r=evidence["grep_exit"],
                    e=evidence["grep_stderr"],
                ),
                **evidence,
            )
        kvm = evidence["kvm_usable"] if evidence["kvm_known"] else None
        meaning = nested.nested_meaning(count, kvm, evidence["arch"])
        advice = nested.nested_advice(count, evidence["kvm_usable"], self.vm)
        return CheckResult.passed(
            self.check_id,
            tr("vmx/svm 计数 {n}。{m}", "vmx/svm count {n}. {m}", n=count, m=meaning),
            **evidence,
            meaning=meaning,
            advice=advice,
        )
