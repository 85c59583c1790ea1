"""Step ``ch1.consolidation``: plan the course's server consolidation and check every workload fits.

Pure computation (nothing is started): *run* computes the placement with
:func:`labkit.logic.consolidation.plan_placement`, *check* passes when every workload found a host
under the target utilization and leaves the per-host table and the freed hosts as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labkit.checks import CheckResult
from labkit.i18n import tr
from labkit.logic.consolidation import (
    Host,
    Placement,
    Workload,
    identical_hosts,
    parse_workloads,
    plan_placement,
)
from labkit.steps.base import Plan, RunContext, Step

__all__ = ["Consolidate"]


class Consolidate(Step):
    """Place ``workloads`` on ``hosts`` (first-fit decreasing) below ``target`` utilization."""

    check_id = "ch1.consolidation"
    timeout = 10.0

    def __init__(self, hosts: Sequence[Host], workloads: Sequence[Workload], target: float = 0.8) -> None:
        self.hosts = list(hosts)
        self.workloads = list(workloads)
        self.target = target
        self.placement: Placement | None = None

    @classmethod
    def from_fields(
        cls, hosts: int, host_cores: float, host_memory_gb: float, workloads: str, target: float = 0.8
    ) -> Consolidate:
        """The planner panel's form: ``hosts`` identical servers, workloads as ``"mail=30%, …"``
        (shares of one server)."""
        servers = identical_hosts(hosts, host_cores, host_memory_gb)
        return cls(servers, parse_workloads(workloads, servers[0]), target=target)

    def plan(self) -> Plan:
        placement = plan_placement(self.hosts, self.workloads, self.target)  # validates the input
        return Plan(
            step=self.check_id,
            reason=tr(
                "把 {w} 个服务按首次适应递减法放到 {h} 台主机上，每台 CPU 和内存都不超过 {t:.0%}",
                "place {w} workloads on {h} hosts by first-fit decreasing, keeping CPU and memory of "
                "every host at or below {t:.0%}",
                w=len(self.workloads),
                h=len(self.hosts),
                t=self.target,
            ),
            notes=[placement.summary()],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self.placement = plan_placement(self.hosts, self.workloads, self.target)
        ctx.progress(1.0)
        return {
            "table": self.placement.table(),
            "assignment": dict(self.placement.assignment),
            "hosts_freed": self.placement.hosts_freed,
            "unplaceable": list(self.placement.unplaceable),
            "target": self.target,
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        assert self.placement is not None
        if self.placement.all_placed:
            return CheckResult.passed(self.check_id, self.placement.summary(), **evidence)
        return CheckResult.failed(
            self.check_id,
            self.placement.summary() + tr("。加主机，或调高 target", ". Add a host, or raise target"),
            **evidence,
        )
