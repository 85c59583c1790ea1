"""Chapter 1 (virtualization): one panel factory per notebook cell.

Each factory only wires widget fields to a step of :mod:`labkit.steps`; no logic lives here. File
names are relative to the notebook's work directory (:func:`labkit.ui.session`).
"""

from __future__ import annotations

import getpass
import html
from pathlib import Path
from typing import Any

from labkit.i18n import tr
from labkit.steps.base import Plan, overwrite_label
from labkit.ui import Session
from labkit.ui.panel import StepPanel, blank_is_none, step_factory

__all__ = [
    "boot_guest",
    "consolidation",
    "convert_image",
    "create_image",
    "efi_image",
    "fill_image",
    "host_check",
    "hyperv",
    "image_info",
    "libvirt_install",
    "prepare_guest",
    "pve_destroy",
    "pve_kvm_off",
    "resize_image",
    "seed_commands",
    "virtualbox_networks",
    "vm_command",
]

_FORMATS = ("qcow2", "raw", "vpc", "vmdk", "vdi", "vhdx")


# -- 1.1 host --------------------------------------------------------------------------------
def host_check(vm_cores: int = 4, vm_memory: str = "8G") -> StepPanel:
    from labkit.steps.host import HostCheck

    return StepPanel(
        tr("宿主机检查", "Host check"),
        step_factory(HostCheck),
        {
            "vm_cores": (vm_cores, tr("虚拟机核数", "VM cores")),
            "vm_memory": (vm_memory, tr("虚拟机内存", "VM memory")),
        },
        console=False,
    )


# -- 1.2 disk images -------------------------------------------------------------------------
def create_image(
    work: Session, name: str, fmt: str = "qcow2", size: str = "120G", *, check: str | None = None
) -> StepPanel:
    """``check`` names this cell's result (e.g. ``ch1.disk.create.qcow2``) when several cells create
    images."""
    from labkit.steps.disk import CreateImage

    return StepPanel(
        tr("创建虚拟磁盘", "Create a disk image"),
        step_factory(CreateImage, work=work, paths=("name",), rename={"name": "path"}),
        {
            "name": (name, tr("文件名", "file name")),
            "fmt": (fmt, tr("格式", "format"), _FORMATS),
            "size": (size, tr("虚拟大小", "virtual size")),
            "overwrite": (False, overwrite_label()),
        },
        console=False,
        check_id=check,
    )


def image_info(work: Session, name: str) -> StepPanel:
    from labkit.steps.disk import ImageInfo

    return StepPanel(
        tr("查看镜像信息", "Image info"),
        step_factory(ImageInfo, work=work, paths=("name",), rename={"name": "path"}),
        {"name": (name, tr("文件名", "file name"))},
        console=False,
    )


def convert_image(
    work: Session,
    src: str,
    dst: str,
    src_format: str = "",
    dst_format: str = "qcow2",
    compress: bool = False,
    *,
    check: str | None = None,
) -> StepPanel:
    from labkit.steps.disk import ConvertImage

    return StepPanel(
        tr("转换镜像格式", "Convert an image"),
        step_factory(ConvertImage, work=work, paths=("src", "dst"), convert={"src_format": blank_is_none}),
        {
            "src": (src, tr("源文件", "source")),
            "src_format": (src_format, tr("源格式（空=自动识别）", "source format (empty = detect)")),
            "dst": (dst, tr("目标文件", "target")),
            "dst_format": (dst_format, tr("目标格式", "target format"), _FORMATS),
            "compress": (compress, tr("压缩（-c，仅 qcow2）", "compress (-c, qcow2 only)")),
            "overwrite": (False, overwrite_label()),
        },
        check_id=check,
    )


def fill_image(work: Session, name: str = "ubuntu-arm64.img", size: str = "8M") -> StepPanel:
    """Course logs at the start of a raw image, so the compression that follows has data to shrink."""
    from labkit.steps.disk import FillImage

    return StepPanel(
        tr("写入示例数据（课程服务器日志）", "Write sample data (course server logs)"),
        step_factory(FillImage, work=work, paths=("name",), rename={"name": "path"}),
        {
            "name": (name, tr("raw 镜像文件名", "raw image file")),
            "size": (size, tr("写入多少数据", "how much data")),
        },
        console=False,
    )


def resize_image(work: Session, name: str, size: str, *, create_size: str | None = None) -> StepPanel:
    """``create_size``: when ``name`` does not exist yet, a blank practice image of that size is
    created there first, so the cell works on an image of its own (and can run again)."""
    from labkit.steps.disk import ResizeImage

    return StepPanel(
        tr("调整虚拟磁盘大小", "Resize an image"),
        step_factory(
            ResizeImage, work=work, paths=("name",), rename={"name": "path"}, create_size=create_size
        ),
        {
            "name": (name, tr("文件名", "file name")),
            "size": (size, tr("新的虚拟大小", "new virtual size")),
            "allow_shrink": (
                False,
                tr("允许缩小（会丢数据，先备份）", "allow shrinking (loses data; backup kept)"),
            ),
        },
        console=False,
    )


# -- 1.3 firmware ----------------------------------------------------------------------------
def efi_image(work: Session, name: str = "efi.img") -> StepPanel:
    from labkit.steps.firmware import BuildEfiImage

    return StepPanel(
        tr("制作 efi.img", "Build efi.img"),
        step_factory(BuildEfiImage, work=work, paths=("name",), rename={"name": "dest"}),
        {
            "name": (name, tr("文件名", "file name")),
            "overwrite": (False, overwrite_label()),
        },
        console=False,
    )


# -- 1.4 VM command builder ------------------------------------------------------------------
def _host_sized_defaults():
    """This host's cheap facts (nothing spawned) and the vCPUs / memory that fit it: the sizing
    policy of :mod:`labkit.logic.sizing` decides (the course's 8 / 8G where the host allows)."""
    from labkit.logic.sizes import format_size
    from labkit.logic.sizing import vm_defaults
    from labkit.steps.host import collect_host_facts

    facts = collect_host_facts(probe_kvm=False, tools=())
    size = vm_defaults(facts)
    return facts, size.cores, format_size(size.memory_bytes)


def vm_command(work: Session, disk: str = "ubuntu-arm64.qcow2", efi: str = "efi.img") -> StepPanel:
    from labkit.logic.qemu_system import Disk, VMSpec
    from labkit.steps.vm import PlanVM

    facts, smp, memory = _host_sized_defaults()

    def plan_vm(disk: Path, disk_format: str, iso: Path | None, **spec: Any) -> PlanVM:
        """The fields are a VMSpec's, except the system disk (path + format) and the optional ISO."""
        system = Disk(str(disk), disk_format, "virtio", "system")
        vm = VMSpec(efi=str(work.file(efi)), disks=(system,), iso=str(iso) if iso else None, **spec)
        return PlanVM(vm, facts)

    return StepPanel(
        tr("虚拟机命令构建器", "VM command builder"),
        step_factory(
            PlanVM,
            work=work,
            paths=("disk", "iso"),
            convert={"machine": blank_is_none, "iso": blank_is_none},
            build=plan_vm,
        ),
        {
            "machine": ("virt", tr("机器类型 -M", "machine -M")),
            "cpu": ("max", tr("CPU 型号", "CPU model"), ("max", "cortex-a57", "cortex-a72", "neoverse-n1")),
            "pauth_impdef": (True, "pauth-impdef=on"),
            "smp": (smp, tr("vCPU 数 -smp", "vCPUs -smp")),
            "memory": (memory, tr("内存 -m", "memory -m")),
            "accel": ("tcg", tr("加速器", "accelerator"), ("tcg", "kvm")),
            "disk": (disk, tr("系统盘", "system disk")),
            "disk_format": ("qcow2", tr("系统盘格式", "disk format"), ("qcow2", "raw")),
            "iso": ("", tr("安装 ISO（可空）", "install ISO (optional)")),
            "nic": ("user", tr("网卡", "network"), ("user", "none")),
            "display": (
                "default",
                tr("显示", "display"),
                ("default", "none", "nographic", "vnc"),
            ),
        },
    )


def seed_commands(work: Session) -> None:
    """Show the course's three aarch64 lines and the x86_64 line for this host, plus what the
    course's exact values would hit on this host (as notes, not as a check)."""
    from IPython.display import display

    from labkit.logic import qemu_system as qs
    from labkit.steps.host import collect_host_facts

    facts = collect_host_facts(probe_kvm=True)
    cmds = qs.seed_commands()
    spec, notes = qs.plan_x86_64(facts, "ubuntu-x86_64.qcow2")
    problems = qs.validate_spec(qs.seed_spec(), facts)
    display(
        Plan(
            "ch1.vm.seed",
            tr("课程中的三条命令（安装 / 启动 raw / 启动 qcow2）", "the course's three command lines"),
            [cmds["install"], cmds["run_img"], cmds["run_qcow2"]],
            notes=[
                tr("课程原样参数在本机上的问题：", "the course's exact values on this host:"),
                *[str(p) for p in problems],
            ],
        )
    )
    display(
        Plan(
            "ch1.vm.x86_64",
            tr("同架构 x86_64 虚拟机（本机）", "same-architecture x86_64 guest (this host)"),
            [qs.build_qemu_argv(spec)],
            notes=notes,
        )
    )


# -- 1.5 a real guest ------------------------------------------------------------------------
def prepare_guest() -> StepPanel:
    from labkit.steps.guest import PrepareTinyGuest

    return StepPanel(
        tr("准备最小 aarch64 客户机", "Prepare the tiny aarch64 guest"),
        step_factory(PrepareTinyGuest),
        {"overwrite": (False, tr("重新下载并覆盖", "download again and overwrite"))},
    )


def boot_guest() -> StepPanel:
    """The guest's vCPUs and memory are judged against this host's facts (read once, cheap) before
    QEMU starts."""
    from labkit.steps.guest import BootGuest
    from labkit.steps.host import collect_host_facts

    return StepPanel(
        tr("启动 aarch64 客户机（TCG）", "Boot the aarch64 guest (TCG)"),
        step_factory(BootGuest, host=collect_host_facts(probe_kvm=False, tools=())),
        {
            "cpu": ("max", tr("CPU 型号", "CPU model"), ("max", "cortex-a57", "cortex-a72")),
            "pauth_impdef": (True, "pauth-impdef=on"),
            "memory": ("512M", tr("内存", "memory")),
            "smp": (1, tr("vCPU 数", "vCPUs")),
            "timeout": (60.0, tr("超时（秒）", "timeout (s)")),
        },
    )


# -- 1.6 consolidation -----------------------------------------------------------------------
def consolidation() -> StepPanel:
    from labkit.logic.consolidation import plot_placement
    from labkit.steps.consolidation import Consolidate

    def figure(step, result):
        """The placement plot as a PNG, so it shows without pyplot and is saved in the notebook."""
        if result.status != "pass":
            return None
        import io

        from IPython.display import Image

        buf = io.BytesIO()
        plot_placement(step.placement).savefig(buf, format="png", bbox_inches="tight", dpi=96)
        return Image(buf.getvalue())

    return StepPanel(
        tr("服务器整合规划", "Server consolidation planner"),
        step_factory(Consolidate, build=Consolidate.from_fields),
        {
            "hosts": (3, tr("物理服务器数", "servers")),
            "host_cores": (8, tr("每台核数", "cores each")),
            "host_memory_gb": (32, tr("每台内存 GB", "memory GB each")),
            "workloads": ("mail=30%, web=30%, business=30%", tr("工作负载", "workloads")),
            "target": (0.8, tr("目标利用率", "target utilization")),
        },
        console=False,
        extra=figure,
    )


# -- 1.7 VirtualBox, Hyper-V, PVE, libvirt ---------------------------------------------------
def virtualbox_networks() -> StepPanel:
    """Show the network-mode matrix and return a panel for ``VBoxManage modifyvm``."""
    from IPython.display import HTML, display

    from labkit.logic import hypervisors as hv
    from labkit.steps.vm import VirtualBoxNetwork

    rows = hv.reachability_table()
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows
    )
    advice = "".join(f"<li>{html.escape(a)}</li>" for a in hv.vbox_advice())
    display(HTML(f"<table style='margin-left:0'><tr>{head}</tr>{body}</table><ul>{advice}</ul>"))
    modes = tuple(m.key for m in hv.NETWORK_MODES)
    return StepPanel(
        tr("设置 VirtualBox 网卡", "Configure a VirtualBox NIC"),
        step_factory(VirtualBoxNetwork),
        {
            "vm": ("ubuntu-arm64", tr("虚拟机名", "VM name")),
            "mode": ("nat", tr("网络模式", "mode"), modes),
            "nic": (1, tr("网卡编号", "adapter")),
        },
        console=False,
    )


def hyperv(action: str = "disable") -> StepPanel:
    from labkit.steps.vm import HyperVCommands

    return StepPanel(
        tr("Hyper-V 停用 / 启用", "Disable / enable Hyper-V"),
        step_factory(HyperVCommands, action=action),
        {"consent": (False, tr("我确认要修改并会重启", "I consent (a reboot follows)"))},
        console=False,
        check_id=f"ch1.hyperv.{action}",
    )


def pve_kvm_off(
    work: Session, vmid: int = 100, consent: bool = False, *, check: str | None = None
) -> StepPanel:
    """``kvm: no`` on a practice copy of a realistic PVE config in the work directory (the step
    writes the copy first when it is missing). The config field follows the one path policy: a
    file outside the work folder (a real ``/etc/pve/qemu-server/<id>.conf``) only when the student
    ticks the panel's "allow a file outside the work folder" checkbox. ``check`` names the result
    (chapter 3 records its own, ``ch3.pve.kvm_off``)."""
    from labkit.steps.pve import SetPveOption

    return StepPanel(
        tr("PVE：在配置中禁用 KVM", "PVE: disable KVM in the VM config"),
        step_factory(SetPveOption, work=work, paths=("conf_path",), sample=True),
        {
            "conf_path": (f"pve-qemu-server/{vmid}.conf", tr("配置文件", "config file")),
            "vmid": (vmid, tr("虚拟机 ID", "VM ID")),
            "key": ("kvm", tr("配置项", "option")),
            "value": ("no", tr("值", "value")),
            "consent": (consent, tr("我同意修改（先备份）", "I consent (a backup is kept)")),
        },
        console=False,
        check_id=check,
    )


def pve_destroy(vmid: int = 100, *, check: str | None = None) -> StepPanel:
    from labkit.steps.pve import QmDestroy

    return StepPanel(
        tr("PVE：删除虚拟机（不可逆）", "PVE: destroy a VM (irreversible)"),
        step_factory(QmDestroy),
        {
            "vmid": (vmid, tr("虚拟机 ID", "VM ID")),
            "confirm": ("", tr("输入 ID 以确认", "type the ID to confirm")),
        },
        check_id=check,
    )


def libvirt_install(user: str | None = None) -> StepPanel:
    from labkit.steps.vm import LibvirtInstall

    return StepPanel(
        tr("安装 QEMU/KVM、libvirt 与 Cockpit", "Install QEMU/KVM, libvirt and Cockpit"),
        step_factory(LibvirtInstall),
        {
            "user": (
                user or getpass.getuser(),
                tr("加入 libvirt/kvm 组的用户", "user to add to libvirt/kvm"),
            ),
            "consent": (False, tr("我同意安装软件并修改用户组", "I consent to installing and group changes")),
        },
    )
