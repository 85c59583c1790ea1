"""Proxmox VE steps of the course: turn KVM off in a guest's config, destroy a guest.

``ch1.pve.kvm_off`` replaces the course's ``echo "kvm: no" >> /etc/pve/qemu-server/100.conf``
with an edit that lands in the right section (see :mod:`labkit.logic.pve`), keeps a backup, writes
atomically and then proves that only the ``kvm`` line changed. Off a PVE host it works on a copy:
pass ``conf_path``, and ``sample=True`` to have the run write :func:`labkit.logic.pve.sample_conf`
there first when the file does not exist yet (never under ``/etc/pve``).

``ch1.pve.destroy`` runs ``qm stop`` + ``qm destroy`` only on a PVE host and only after the student
typed the guest id again (``confirm="100"``): the deletion cannot be undone.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import ConsentRequired
from labkit.files import replace_text, write_atomic
from labkit.i18n import field_name, fill_hint, tr
from labkit.logic import pve
from labkit.steps.base import Plan, RunContext, Step, consent_to_edit

__all__ = ["QmDestroy", "SetPveOption"]


class SetPveOption(Step):
    """Set ``key: value`` in the main section of a PVE guest config (default: ``kvm: no``)."""

    check_id = "ch1.pve.kvm_off"
    timeout = 30.0

    def __init__(
        self,
        conf_path: str | os.PathLike[str] | None = None,
        vmid: int = 100,
        key: str = "kvm",
        value: str = "no",
        consent: bool = False,
        sample: bool = False,
    ) -> None:
        self.vmid = vmid
        self.conf_path = conf_path
        self.key = key
        self.value = value
        self.consent = consent
        #: Write a practice config (:func:`labkit.logic.pve.sample_conf`) first if the file is missing.
        self.sample = sample
        self._old: str | None = None
        self._backup: Path | None = None

    @property
    def path(self) -> Path:
        return Path(self.conf_path) if self.conf_path is not None else Path(pve.conf_path(self.vmid))

    def _writes_sample(self) -> bool:
        """A practice copy is written only where none exists and never into a PVE host's configs."""
        return self.sample and not self.path.exists() and not pve.in_conf_dir(os.path.abspath(self.path))

    def plan(self) -> Plan:
        pve.validate_vmid(self.vmid)
        key = pve.validate_key(self.key)
        value = pve.validate_value(key, self.value)
        path = str(self.path)
        sample = {path: pve.sample_conf(self.vmid)} if self._writes_sample() else {}
        notes = [
            tr(
                "先备份为 {p}.labkit-bak-<时间>，再原子写入（临时文件 + 改名），最后核对只有 {k} 行变了",
                "a backup {p}.labkit-bak-<time> is kept, the file is written atomically (temp file + "
                "rename), then checked: only the {k} line may differ",
                p=path,
                k=key,
            ),
            tr(
                '课程里的 echo "{k}: {v}" >> 文件 会把行追加到最后一段：有快照时改的是快照',
                'the course\'s echo "{k}: {v}" >> file appends to the last section: with a snapshot '
                "present it edits the snapshot",
                k=key,
                v=value,
            ),
            tr(
                "真实 PVE 主机上推荐 {qm}（带配置锁），改完需重启虚拟机",
                "on a real PVE host prefer {qm} (it takes the config lock); restart the VM afterwards",
                qm=shlex.join(pve.qm_set_argv(self.vmid, key, value)),
            ),
        ]
        if sample:
            notes.append(
                tr(
                    "{p} 还不存在：先写入一份练习用的配置（见下）",
                    "{p} does not exist yet: a practice config (below) is written first",
                    p=path,
                )
            )
        return Plan(
            step=self.check_id,
            reason=tr(
                "在 {p} 的主配置段设置 {k}: {v}（替换已有的 {k} 行，或插在第一个 [段] 之前）",
                "set {k}: {v} in the main section of {p} (replacing an existing {k} line, or inserted "
                "before the first [section])",
                p=path,
                k=key,
                v=value,
            ),
            notes=notes,
            files=sample,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if self._writes_sample():
            return None
        if not self.path.is_file():
            if self.conf_path is None:
                return tr(
                    "不是 PVE 主机（没有 {p}）；可在「{f}」中给出一个副本来练习",
                    "not a PVE host (no {p}); give a copy in {f} to practise on",
                    p=self.path,
                    f=field_name("conf_path"),
                )
            return tr("配置文件 {p} 不存在", "config file {p} does not exist", p=self.path)
        return None

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        """The file already says ``key: value`` in its main section and editing would change no
        byte: nothing to do, no consent needed, no second line, no backup."""
        path = self.path
        if not path.is_file():
            return None
        old = path.read_text(encoding="utf-8")
        if pve.set_option(old, self.key, self.value) != old:
            return None
        self._old = old
        option = f"{self.key}: {pve.validate_value(self.key, self.value)}"
        return {
            "path": str(path),
            "option": option,
            "previous_value": pve.get_option(old, self.key),
            "echo_append_would_land_in": pve.append_lands_in(old) or "main",
            "echo_append_warnings": pve.seed_append_warnings(old, self.key),
            "sample_written": False,
            "changed": False,
            "backup": None,
            "diff": "",
            "verified_by": tr(
                "读回 {p}：主配置段已有 {o}，改写不会改变任何字节",
                "read back {p}: the main section already has {o}; editing would change no byte",
                p=path.name,
                o=option,
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        path = self.path
        if not self.consent:
            raise consent_to_edit(path)
        sample_written = self._writes_sample()
        if sample_written:
            write_atomic(path, pve.sample_conf(self.vmid))
        old = path.read_text(encoding="utf-8")
        self._old = old
        new = pve.set_option(old, self.key, self.value)
        warnings = pve.seed_append_warnings(old, self.key)
        evidence: dict[str, Any] = {
            "path": str(path),
            "option": f"{self.key}: {pve.validate_value(self.key, self.value)}",
            "previous_value": pve.get_option(old, self.key),
            "echo_append_would_land_in": pve.append_lands_in(old) or "main",
            "echo_append_warnings": warnings,
            "sample_written": sample_written,
        }
        if new == old:
            evidence.update(changed=False, backup=None, diff="")
            return evidence
        self._backup = replace_text(path, new)
        ctx.progress(1.0)
        evidence.update(changed=True, backup=str(self._backup), diff=pve.unified_diff(old, new, path.name))
        return evidence

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        assert self._old is not None
        now = self.path.read_text(encoding="utf-8")
        value = pve.validate_value(self.key, self.value)
        got = pve.get_option(now, self.key)
        if got != value:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "主配置段里 {k} 是 {g!r}，应为 {v!r}",
                    "{k} in the main section is {g!r}, expected {v!r}",
                    k=self.key,
                    g=got,
                    v=value,
                ),
                **evidence,
            )
        if not pve.other_lines_unchanged(self._old, now, self.key):
            return CheckResult.failed(
                self.check_id,
                tr("除 {k} 行外还有别的行变了", "lines other than {k} changed", k=self.key),
                **evidence,
                diff_now=pve.unified_diff(self._old, now, self.path.name),
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "{k}: {v} 已在主配置段，其余各行未变",
                "{k}: {v} is set in the main section; every other line is unchanged",
                k=self.key,
                v=value,
            ),
            **evidence,
        )


class QmDestroy(Step):
    """``qm stop <id>`` then ``qm destroy <id>``, after the student typed the id again."""

    check_id = "ch1.pve.destroy"
    timeout = 300.0

    def __init__(self, vmid: int, confirm: str = "", purge: bool = False) -> None:
        self.vmid = vmid
        self.confirm = confirm
        self.purge = purge

    def plan(self) -> Plan:
        cmds = pve.qm_destroy_commands(self.vmid, self.purge)
        return Plan(
            step=self.check_id,
            reason=tr(
                "停止并删除虚拟机 {id}（不可恢复）",
                "stop and delete guest {id} (cannot be undone)",
                id=cmds[0][2],
            ),
            commands=cmds,
            probes=[pve.qm_status_argv(self.vmid)],
            notes=[
                tr(
                    "删除前确认重要数据已备份；需把 confirm 设为虚拟机编号 {id} 才会执行",
                    "make sure important data is saved; runs only with confirm set to the guest id {id}",
                    id=cmds[0][2],
                ),
                tr(
                    "--purge 1 还会把该编号从备份任务、复制任务和 HA 配置中移除；"
                    "--destroy-unreferenced-disks 1 会删掉存储上带此编号但未被配置引用的磁盘",
                    "--purge 1 also removes the id from backup jobs, replication jobs and HA; "
                    "--destroy-unreferenced-disks 1 deletes disks on storages that carry the id but are "
                    "not referenced by the config",
                ),
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if shutil.which("qm") is None:
            return tr(
                "不是 PVE 主机（没有 qm 命令），只给出计划", "not a PVE host (no qm command); planned only"
            )
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        stop, destroy = pve.qm_destroy_commands(self.vmid, self.purge)
        vmid = stop[2]
        if str(self.confirm).strip() != vmid:
            raise ConsentRequired(
                tr("删除虚拟机 {id}", "destroy guest {id}", id=vmid),
                fill_hint("confirm", vmid) + tr("（再输入一次编号）", " (type the id again)"),
                keyword="confirm",
            )
        before = ctx.run(pve.qm_status_argv(vmid), timeout=30, check=False)
        ctx.run(stop, timeout=120)
        ctx.progress(0.5)
        ctx.run(destroy, timeout=240)
        ctx.progress(1.0)
        return {"vmid": vmid, "status_before": (before.stdout or before.stderr).strip()}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        vmid = evidence["vmid"]
        after = ctx.run(pve.qm_status_argv(vmid), timeout=30, check=False)
        text = (after.stdout + after.stderr).strip()
        if after.returncode != 0 and "does not exist" in text:
            return CheckResult.passed(
                self.check_id,
                tr("虚拟机 {id} 已删除", "guest {id} is gone", id=vmid),
                status_after=text,
                **evidence,
            )
        return CheckResult.failed(
            self.check_id,
            tr("虚拟机 {id} 仍然存在", "guest {id} still exists", id=vmid),
            status_after=text,
            **evidence,
        )
