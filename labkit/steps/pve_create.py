"""PVE as IaaS (course 4.3): create a VM (``qm create``) or an LXC container (``pct create``).

``ch4.pve.create`` runs only on a PVE host (``qm`` / ``pct`` on PATH); elsewhere it is planned with
``skip_reason: host``. It reads ``qm status`` / ``pct status`` first: a guest with that id that
already is what the fields describe is "already present, verified" (``qm config`` read back); a
guest with that id that differs is refused (naming what differs) and never overwritten or
destroyed. After creating it reads the config back and compares. The sizing (cores, memory) is
chapter 1's policy judged on this host's facts: an ``error`` finding refuses the run.
"""

from __future__ import annotations

import shlex
import shutil
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.findings import first_error
from labkit.i18n import tr
from labkit.logic import pve_create as pc
from labkit.logic.host import HostFacts
from labkit.steps.base import Plan, RunContext, Step

__all__ = ["CreateGuest"]


class CreateGuest(Step):
    """``qm create`` (``kind="vm"``) or ``pct create`` (``kind="ct"``) from keyword fields."""

    check_id = "ch4.pve.create"
    timeout = 600.0

    def __init__(
        self,
        kind: str = "vm",
        *,
        vmid: int = 100,
        name: str | None = None,
        cores: int = 2,
        memory_mib: int = 4096,
        disk_gib: int | None = None,
        storage: str = "local-lvm",
        bridge: str = "vmbr0",
        iso: str = pc.DEFAULT_ISO,
        template: str = pc.DEFAULT_TEMPLATE,
        sockets: int = 1,
        ssh_public_keys: str = "",
        host: HostFacts | None = None,
    ) -> None:
        self.fields: dict[str, Any] = dict(
            vmid=vmid,
            name=name,
            cores=cores,
            memory_mib=memory_mib,
            disk_gib=disk_gib,
            storage=storage,
            bridge=bridge,
            iso=iso,
            template=template,
            sockets=sockets,
            ssh_public_keys=ssh_public_keys,
        )
        self.kind = kind
        #: The PVE host's facts for the sizing rules (probed at run time when not given).
        self.host = host

    def spec(self) -> pc.GuestSpec:
        return pc.build_guest(self.kind, **self.fields)

    def plan(self) -> Plan:
        spec = self.spec()
        what = tr("虚拟机", "virtual machine") if spec.kind == "vm" else tr("LXC 容器", "LXC container")
        notes = [
            tr(
                "先用 {s} 看编号 {id} 是否已被占用：已是同样的客体则只核对；不同则拒绝，绝不覆盖",
                "{s} first: a guest {id} that matches is only verified; one that differs is refused, "
                "never overwritten",
                s=shlex.join(pc.status_argv(spec)),
                id=spec.vmid,
            ),
            tr("内存单位是 MiB，磁盘 {st}:{n} 表示在 {st} 上新建 {n} GiB", "memory is in MiB; disk "
               "{st}:{n} allocates a new {n} GiB volume on {st}", st=spec.storage, n=spec.disk_gib),
        ]  # fmt: skip
        if spec.kind == "ct":
            notes.append(
                tr(
                    "命令行上不放密码：用 --ssh-public-keys 让 root 以密钥登录；"
                    "否则在主机上 pct enter {id} 后运行 passwd",
                    "no password on the command line: --ssh-public-keys lets root log in with a key; "
                    "otherwise run passwd after pct enter {id} on the host",
                    id=spec.vmid,
                )
            )
        else:
            notes.append(
                tr(
                    "创建后 qm start {id}，在 PVE 网页控制台里安装系统",
                    "then qm start {id} and install the OS in the PVE web console",
                    id=spec.vmid,
                )
            )
        return Plan(
            step=self.check_id,
            reason=tr(
                "在 PVE 上创建{w} {id}（{n}）：{c} 核、{m} MiB 内存、{d} GiB 磁盘",
                "create {w} {id} ({n}) on PVE: {c} cores, {m} MiB memory, {d} GiB disk",
                w=what,
                id=spec.vmid,
                n=spec.name,
                c=spec.cores * spec.sockets,
                m=spec.memory_mib,
                d=spec.disk_gib,
            ),
            commands=[pc.create_argv(spec)],
            probes=[pc.status_argv(spec), pc.config_argv(spec)],
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        name = pc.tool(self.spec())
        if shutil.which(name) is None:
            return tr(
                "不是 PVE 主机（没有 {t} 命令），只给出计划",
                "not a PVE host (no {t} command); planned only",
                t=name,
            )
        return None

    def _config(self, ctx: RunContext, spec: pc.GuestSpec) -> dict[str, str]:
        done = ctx.run(pc.config_argv(spec), timeout=30)
        return pc.parse_config(done.stdout)

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        spec = self.spec()
        status = ctx.run(pc.status_argv(spec), timeout=30, check=False)
        said = (status.stdout + status.stderr).strip()
        if not pc.guest_exists(status.returncode, said):
            return None
        config = self._config(ctx, spec)
        differences = pc.config_differences(spec, config)
        if differences:
            raise InvalidField(
                "vmid",
                spec.vmid,
                tr(
                    "已被另一个客体使用（{d}）",
                    "is already used by another guest ({d})",
                    d=tr("；", "; ").join(differences),
                ),
                tr(
                    "换一个编号；labkit 不会覆盖已有的客体（要删除请用 ch1.pve.destroy）",
                    "choose another id; labkit never overwrites a guest (to delete it, use ch1.pve.destroy)",
                ),
            )
        return {
            **self._evidence(spec),
            "status": said,
            "config": config,
            "verified_by": tr(
                "{c}：配置与字段一致",
                "{c}: the configuration matches the fields",
                c=shlex.join(pc.config_argv(spec)),
            ),
        }

    def _evidence(self, spec: pc.GuestSpec) -> dict[str, Any]:
        return {
            "kind": spec.kind,
            "vmid": spec.vmid,
            "name": spec.name,
            "command": shlex.join(pc.create_argv(spec)),
        }

    def _host(self) -> HostFacts:
        if self.host is not None:
            return self.host
        from labkit.steps.host import collect_host_facts

        return collect_host_facts(probe_kvm=False, tools=())

    def run(self, ctx: RunContext) -> dict[str, Any]:
        spec = self.spec()
        findings = pc.sizing_findings(spec, self._host())
        bad = first_error(findings)
        if bad is not None:
            raise InvalidField(bad.field, self.fields.get(bad.field, ""), bad.message, bad.fix)
        ctx.run(pc.create_argv(spec), timeout=self.timeout)
        ctx.progress(1.0)
        return {**self._evidence(spec), "sizing": [f.to_dict() for f in findings]}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        spec = self.spec()
        config = evidence.get("config") or self._config(ctx, spec)
        differences = pc.config_differences(spec, config)
        ev = {**evidence, "config": config}
        if differences:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "读回的配置与字段不符：{d}",
                    "the config read back differs: {d}",
                    d=tr("；", "; ").join(differences),
                ),
                differences=differences,
                **{k: v for k, v in ev.items() if k != "differences"},
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "{t} config {id} 读回：{n} 与字段一致",
                "{t} config {id} read back: {n} matches the fields",
                t=pc.tool(spec),
                id=spec.vmid,
                n=spec.name,
            ),
            **ev,
        )
