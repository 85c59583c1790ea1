"""Chapter 4 (cloud services): one panel factory per notebook cell.

The exercises on layers and service models (:mod:`labkit.ui.exercise`), the Jupyter Server of 4.4
(:mod:`labkit.steps.jupyter_server`, :mod:`labkit.steps.jupyter_checks`) in the work folder's
``jupyter/``, PVE guests (:mod:`labkit.steps.pve_create`), Seafile's compose project
(:mod:`labkit.steps.seafile`) in the work folder's ``seafile/``, and the 4.5 capstone
(:mod:`labkit.steps.capstone`).

The Jupyter password field is masked (:class:`~labkit.ui.panel.Masked`); its value is wrapped in
:class:`~labkit.logic.jupyter_server.Password` before any step sees it. Left blank, the steps use
``$LABKIT_JUPYTER_PASSWORD`` or the one they generated into ``jupyter/password.txt``.
``allow_root`` defaults to whether the kernel runs as root (the server refuses root without it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from labkit.i18n import tr
from labkit.ui import Session
from labkit.ui.panel import Masked, StepPanel, step_factory

__all__ = [
    "capstone",
    "jupyter_config",
    "jupyter_kernel",
    "jupyter_login",
    "jupyter_seed_demo",
    "jupyter_start",
    "jupyter_stop",
    "layers_quiz",
    "models_quiz",
    "pve_create",
    "seafile_compose",
    "seafile_down",
    "seafile_health",
    "seafile_up",
    "seafile_validate",
]


# -- 4.1 / 4.2 exercises --------------------------------------------------------------------------
def layers_quiz(answers: Mapping[str, Any] | None = None) -> StepPanel:
    """PVE, Jupyter, Seafile and a data API on the seed's layer table (``ch4.layers.quiz``)."""
    from labkit.ui.exercise import exercise_panel

    return exercise_panel("ch4.layers", answers)


def models_quiz(answers: Mapping[str, Any] | None = None) -> StepPanel:
    """IaaS, PaaS, SaaS, DaaS: who manages what (``ch4.models.quiz``)."""
    from labkit.ui.exercise import exercise_panel

    return exercise_panel("ch4.models", answers)


# -- 4.4 Jupyter Server ----------------------------------------------------------------------------
def _as_password(value: Any) -> Any:
    """The masked field's text as a ``Password`` (blank: ``None``, the steps find or make one)."""
    from labkit.logic.jupyter_server import Password

    if isinstance(value, str) and value:
        return Password(value)
    return None


def _root_default(allow_root: bool | None) -> bool:
    return os.geteuid() == 0 if allow_root is None else allow_root


def _server_fields(
    ip: str, port: int, allow_root: bool | None, *, password: bool = False
) -> dict[str, tuple[Any, ...]]:
    fields: dict[str, tuple[Any, ...]] = {
        "ip": (ip, tr("监听地址（--ip）", "listen address (--ip)")),
        "port": (port, tr("端口（--port）", "port (--port)")),
        "allow_root": (
            _root_default(allow_root),
            tr(
                "允许以 root 运行（--allow-root：登录的人就是 root）",
                "allow running as root (--allow-root: whoever logs in is root)",
            ),
        ),
    }
    if password:
        fields["password"] = (
            "",
            tr("密码（留空：用环境变量或生成）", "password (blank: from the environment or generated)"),
            Masked(),
        )
    return fields


def _jupyter(cls: type, work: Session, **fixed: Any) -> Any:
    return step_factory(cls, root=str(work.path / "jupyter"), convert={"password": _as_password}, **fixed)


def jupyter_config(
    work: Session,
    ip: str = "127.0.0.1",
    port: int = 8888,
    allow_root: bool | None = None,
    auth: str = "password",
    overwrite: bool = False,
) -> StepPanel:
    """Write ``jupyter/config/jupyter_server_config.py`` with the argon2 hash (``ch4.jupyter.config``)."""
    from labkit.logic.jupyter_server import AUTH_CHOICES
    from labkit.steps.jupyter_server import WriteServerConfig

    return StepPanel(
        tr("写入 Jupyter Server 配置（密码只存哈希）", "Write the Jupyter Server config (hash only)"),
        _jupyter(WriteServerConfig, work),
        {
            **_server_fields(ip, port, allow_root, password=True),
            "auth": (auth, tr("登录方式", "login"), AUTH_CHOICES),
            "overwrite": (overwrite, tr("允许覆盖（保留备份）", "allow overwriting (keep a backup)")),
        },
        console=False,
    )


def jupyter_seed_demo(work: Session, allow_root: bool | None = None) -> StepPanel:
    """The seed's ``jupyter_notebook_config.py`` on a copy: the right password gets 401
    (``ch4.jupyter.seed``)."""
    from labkit.steps.jupyter_checks import SEED_PORT, SeedConfigDemo

    return StepPanel(
        tr("演示：课程原文的配置为什么不生效", "Demo: why the seed's config is ignored"),
        _jupyter(SeedConfigDemo, work),
        {
            "port": (SEED_PORT, tr("演示用端口", "port for the demo")),
            "allow_root": _server_fields("127.0.0.1", SEED_PORT, allow_root)["allow_root"],
            "password": _server_fields("127.0.0.1", SEED_PORT, allow_root, password=True)["password"],
        },
    )


def jupyter_start(
    work: Session, ip: str = "127.0.0.1", port: int = 8888, allow_root: bool | None = None
) -> StepPanel:
    """Start the server in the background; the kernel owns it (``ch4.jupyter.start``)."""
    from labkit.steps.jupyter_server import StartServer

    fields = _server_fields(ip, port, allow_root)
    fields["restart"] = (False, tr("用新配置重启（停止旧的服务器）", "restart with the new config"))
    return StepPanel(tr("启动 Jupyter Server", "Start Jupyter Server"), _jupyter(StartServer, work), fields)


def jupyter_login(work: Session, ip: str = "127.0.0.1", port: int = 8888) -> StepPanel:
    """Log in over HTTP with the password; a wrong one and none are refused (``ch4.jupyter.login``)."""
    from labkit.steps.jupyter_checks import VerifyLogin

    fields = _server_fields(ip, port, None, password=True)
    del fields["allow_root"]
    return StepPanel(
        tr("检查登录：正确密码、错误密码、不带密码", "Check the login: right, wrong and no password"),
        _jupyter(VerifyLogin, work),
        fields,
        console=False,
    )


def jupyter_kernel(work: Session, ip: str = "127.0.0.1", port: int = 8888) -> StepPanel:
    """4.4.3: the PyTorch/CUDA check in a kernel started through the server (``ch4.jupyter.kernel``)."""
    from labkit.steps.jupyter_checks import KernelCheck

    fields = _server_fields(ip, port, None, password=True)
    del fields["allow_root"]
    return StepPanel(
        tr(
            "在服务器的内核里检查 PyTorch 与 CUDA（4.4.3）", "PyTorch and CUDA in the server's kernel (4.4.3)"
        ),
        _jupyter(KernelCheck, work),
        fields,
    )


def jupyter_stop(work: Session, ip: str = "127.0.0.1", port: int = 8888) -> StepPanel:
    """Stop the server by its own pid (``ch4.jupyter.stop``), never ``ps | grep | kill -9``."""
    from labkit.steps.jupyter_server import StopServer

    fields = _server_fields(ip, port, None)
    del fields["allow_root"]
    return StepPanel(
        tr("停止 Jupyter Server（按它自己的进程号）", "Stop Jupyter Server (by its own pid)"),
        _jupyter(StopServer, work),
        fields,
        console=False,
    )


# -- 4.3 PVE as IaaS -------------------------------------------------------------------------------
def pve_create(kind: str = "vm", vmid: int | None = None) -> StepPanel:
    """``qm create`` (``kind="vm"``) or ``pct create`` (``"ct"``); runs only on a PVE host
    (``ch4.pve.create.vm`` / ``ch4.pve.create.ct``)."""
    from labkit.logic import pve_create as pc
    from labkit.steps.host import collect_host_facts
    from labkit.steps.pve_create import CreateGuest

    vm = kind == "vm"
    fields: dict[str, tuple[Any, ...]] = {
        "vmid": (vmid or (100 if vm else 200), tr("编号（VMID）", "id (VMID)")),
        "name": (str(pc.KIND_DEFAULTS[kind]["name"]), tr("名字", "name")),
        "cores": (2 if vm else 1, tr("CPU 核数", "cores")),
        "memory_mib": (4096 if vm else 1024, tr("内存（MiB）", "memory (MiB)")),
        "storage": ("local-lvm", tr("存储", "storage")),
        "bridge": ("vmbr0", tr("网桥", "bridge")),
    }
    if vm:
        fields["iso"] = (pc.DEFAULT_ISO, tr("安装镜像（ISO 卷）", "installer (ISO volume)"))
    else:
        fields["template"] = (pc.DEFAULT_TEMPLATE, tr("容器模板", "container template"))
    return StepPanel(
        tr("在 PVE 上创建虚拟机（qm create）", "Create a VM on PVE (qm create)")
        if vm
        else tr("在 PVE 上创建 LXC 容器（pct create）", "Create an LXC container on PVE (pct create)"),
        step_factory(CreateGuest, kind=kind, host=collect_host_facts(probe_kvm=False, tools=())),
        fields,
        check_id=f"ch4.pve.create.{kind}",
    )


# -- Seafile as SaaS -------------------------------------------------------------------------------
def _seafile_fields(http_port: int, hostname: str | None = None) -> dict[str, tuple[Any, ...]]:
    fields: dict[str, tuple[Any, ...]] = {
        "http_port": (http_port, tr("网页端口", "web port")),
    }
    if hostname is not None:
        fields["hostname"] = (hostname, tr("服务器域名", "server host name"))
        fields["admin_email"] = ("admin@example.com", tr("管理员邮箱", "admin e-mail"))
        fields["data_dir"] = (
            "seafile-data",
            tr("数据文件夹（工作文件夹内）", "data folder (in the work folder)"),
        )
    return fields


def seafile_compose(work: Session, http_port: int = 8000, overwrite: bool = False) -> StepPanel:
    """Write ``seafile/docker-compose.yml`` and its 0600 ``.env`` (``ch4.seafile.compose``)."""
    from labkit.steps.seafile import WriteCompose

    return StepPanel(
        tr("生成 Seafile 的 compose 文件", "Write Seafile's compose file"),
        step_factory(WriteCompose, folder=str(work.path)),
        {
            **_seafile_fields(http_port, "seafile.local"),
            "overwrite": (overwrite, tr("允许覆盖（保留备份）", "allow overwriting (keep a backup)")),
        },
        console=False,
    )


def seafile_validate(work: Session, http_port: int = 8000) -> StepPanel:
    """The real compose tool's ``config -q`` plus ports and mounts (``ch4.seafile.validate``)."""
    from labkit.steps.seafile import ValidateCompose

    return StepPanel(
        tr(
            "检查 compose 文件（compose 工具 + 端口 + 挂载）",
            "Validate the compose file (tool, port, mounts)",
        ),
        step_factory(ValidateCompose, folder=str(work.path)),
        _seafile_fields(http_port),
        console=False,
    )


def seafile_up(work: Session, http_port: int = 8000) -> StepPanel:
    """``up -d`` where the three images are present; planned with the reason otherwise."""
    from labkit.steps.seafile import ComposeUp

    return StepPanel(
        tr("启动 Seafile（up -d）", "Start Seafile (up -d)"),
        step_factory(ComposeUp, folder=str(work.path)),
        _seafile_fields(http_port),
    )


def seafile_health(work: Session, http_port: int = 8000) -> StepPanel:
    from labkit.steps.seafile import SeafileHealth

    return StepPanel(
        tr("访问 Seafile 的网页（HTTP）", "Ask Seafile's web page (HTTP)"),
        step_factory(SeafileHealth, folder=str(work.path)),
        _seafile_fields(http_port),
        console=False,
    )


def seafile_down(work: Session, http_port: int = 8000, consent: bool = False) -> StepPanel:
    """``down`` once 「我同意停止并删除 Seafile 的容器」 is ticked; the data folder stays."""
    from labkit.steps.seafile import ComposeDown

    return StepPanel(
        tr("停止并删除 Seafile 的容器（down）", "Stop and remove Seafile's containers (down)"),
        step_factory(ComposeDown, folder=str(work.path)),
        {
            **_seafile_fields(http_port),
            "consent": (
                consent,
                tr(
                    "我同意停止并删除 Seafile 的容器（数据保留）",
                    "I agree to stop and remove them (data kept)",
                ),
            ),
        },
        console=False,
    )


# -- 4.5 capstone ------------------------------------------------------------------------------------
def capstone(
    work: Session,
    jupyter_port: int = 8888,
    seafile_port: int = 8000,
    allow_root: bool | None = None,
) -> StepPanel:
    """The chapter's checks run again and judged together (``ch4.capstone``)."""
    from labkit.steps.capstone import Capstone

    def build(**values: Any) -> Capstone:
        return Capstone.for_work(str(work.path), **values)

    fields = _server_fields("127.0.0.1", jupyter_port, allow_root, password=True)

    return StepPanel(
        tr(
            "4.5 综合检查：虚拟机 + Jupyter Server + Seafile",
            "4.5 capstone: VM + Jupyter Server + Seafile",
        ),
        step_factory(Capstone, build=build, convert={"password": _as_password}),
        {
            "jupyter_port": (jupyter_port, tr("Jupyter 端口", "Jupyter port")),
            "allow_root": fields["allow_root"],
            "password": fields["password"],
            "seafile_port": (seafile_port, tr("Seafile 网页端口", "Seafile web port")),
        },
    )
