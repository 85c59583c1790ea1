"""Chapter 2b (Kubernetes, course 2.3 and 2.4.8): one panel factory per notebook cell.

Each factory only wires widget fields to a step of :mod:`labkit.steps.k8s` (the manifest, written
and validated offline), :mod:`labkit.steps.registry` (the local registry, the push, the practice
``daemon.json``) or :mod:`labkit.steps.k8s_cluster` (MicroK8s, apply, rollout, scale, delete: planned
with the reason where no cluster is reachable). Files and folders go to the notebook's work
directory (:func:`labkit.ui.session`); one elsewhere only with the panel's "allow a file outside the
work folder" checkbox.
"""

from __future__ import annotations

from typing import Any

from labkit.i18n import tr
from labkit.steps.base import overwrite_label
from labkit.ui import Session
from labkit.ui.panel import StepPanel, blank_is_none, step_factory

__all__ = [
    "apply",
    "delete",
    "insecure_registry",
    "manifest",
    "microk8s_enable",
    "microk8s_status",
    "push_image",
    "registry_start",
    "registry_stop",
    "rollout",
    "scale",
]

#: The seed's registry (MicroK8s' add-on port), here served on loopback.
REGISTRY_ADDRESS = "127.0.0.1:32000"
#: Where the registry keeps its config, pid file and storage, inside the work folder.
REGISTRY_ROOT = "registry"
#: The seed's Deployment (the manifest panel's default name and file).
APP = "nginx-deployment"
#: The manifest panel's file, which the apply panel reads.
MANIFEST_FILE = "nginx-deployment.yaml"
#: The image chapter 2a's "local base image" panel makes (``labkit.logic.docker_names``).
LOCAL_BASE = "labkit/busybox:local"


def manifest(work: Session, file: str = MANIFEST_FILE) -> StepPanel:
    """The seed's nginx Deployment from fields (optionally with a Service), validated offline."""
    from labkit.logic.k8s_manifests import AppFields
    from labkit.steps.k8s import ValidateManifest

    def build(
        path: Any,
        name: str,
        ports: int,
        labels: str,
        service: bool,
        k8s_version: str | None,
        overwrite: bool,
        **fields: Any,
    ) -> ValidateManifest:
        """The fields are AppFields' own (so messages name their labels): one port and the value
        of the ``app`` label; the rest (image, replicas, container) as they are."""
        app = AppFields(name=name, ports=(ports,), labels={"app": labels}, **fields)
        return ValidateManifest(
            fields=app, path=path, service=service, k8s_version=k8s_version, overwrite=overwrite
        )

    default = AppFields()
    return StepPanel(
        tr("编写并校验 Deployment 清单", "Write and validate the Deployment manifest"),
        step_factory(
            ValidateManifest,
            work=work,
            paths=("path",),
            convert={"k8s_version": blank_is_none},
            build=build,
        ),
        {
            "path": (file, tr("清单文件名", "manifest file")),
            "name": (default.name, tr("Deployment 名称", "Deployment name")),
            "image": (default.image, tr("镜像", "image")),
            "replicas": (default.replicas, tr("副本数", "replicas")),
            "ports": (default.ports[0], tr("容器端口", "container port")),
            "labels": (default.labels["app"], tr("app 标签的值", "value of the app label")),
            "container": (default.container, tr("容器名", "container name")),
            "service": (False, tr("同时生成 Service", "add a Service")),
            "k8s_version": ("", tr("Kubernetes 版本（空=最新）", "Kubernetes version (empty = newest)")),
            "overwrite": (False, overwrite_label()),
        },
        console=False,
    )


def registry_start(work: Session, address: str = REGISTRY_ADDRESS) -> StepPanel:
    from labkit.steps.registry import StartRegistry

    return StepPanel(
        tr("启动本地镜像注册表", "Start the local image registry"),
        step_factory(StartRegistry, work=work, paths=("root",)),
        {
            "root": (REGISTRY_ROOT, tr("注册表目录", "registry folder")),
            "address": (address, tr("地址（仅本机回环）", "address (loopback only)")),
        },
    )


def push_image(source: str = LOCAL_BASE, address: str = REGISTRY_ADDRESS) -> StepPanel:
    """``source`` defaults to the local busybox base; ``labkit/ailab:latest`` is chapter 2a's image."""
    from labkit.steps.registry import PushImage

    return StepPanel(
        tr("把镜像推送到本地注册表", "Push an image to the local registry"),
        step_factory(PushImage),
        {
            "source": (source, tr("要推送的镜像", "image to push")),
            "address": (address, tr("注册表地址", "registry address")),
            "name": ("", tr("仓库名（空=与镜像相同）", "repository (empty = same as the image)")),
            "tag": ("", tr("标签（空=与镜像相同）", "tag (empty = same as the image)")),
            "overwrite": (
                False,
                tr("允许覆盖注册表中的同名标签", "overwrite the registry's tag of that name"),
            ),
        },
    )


def insecure_registry(work: Session, registry: str = "localhost:32000", consent: bool = False) -> StepPanel:
    """``insecure-registries`` merged into a practice copy ``docker/daemon.json`` in the work folder
    (written first when missing); the real ``/etc/docker/daemon.json`` only when the student ticks
    the panel's "allow a file outside the work folder" checkbox."""
    from labkit.steps.registry import AddInsecureRegistry

    return StepPanel(
        tr("daemon.json：添加 insecure registry", "daemon.json: add an insecure registry"),
        step_factory(AddInsecureRegistry, work=work, paths=("daemon_json",), sample=True),
        {
            "daemon_json": ("docker/daemon.json", tr("daemon.json 文件", "daemon.json file")),
            "registry": (registry, tr("注册表", "registry")),
            "consent": (consent, tr("我同意修改（先备份）", "I consent (a backup is kept)")),
        },
        console=False,
    )


def registry_stop(work: Session, address: str = REGISTRY_ADDRESS) -> StepPanel:
    from labkit.steps.registry import StopRegistry

    return StepPanel(
        tr("停止本地镜像注册表", "Stop the local image registry"),
        step_factory(StopRegistry, work=work, paths=("root",)),
        {
            "root": (REGISTRY_ROOT, tr("注册表目录", "registry folder")),
            "address": (address, tr("地址", "address")),
        },
        console=False,
    )


# -- on a cluster (MicroK8s or a kubeconfig) ----------------------------------------------------
def _namespace() -> tuple[str, str]:
    return ("default", tr("命名空间", "namespace"))


def _app(name: str) -> tuple[str, str]:
    return (name, tr("Deployment 名称", "Deployment name"))


def microk8s_status(inspect: bool = False) -> StepPanel:
    from labkit.steps.k8s_cluster import MicroK8sStatus

    return StepPanel(
        tr("MicroK8s 状态", "MicroK8s status"),
        step_factory(MicroK8sStatus),
        {"inspect": (inspect, tr("同时运行 microk8s inspect", "also run microk8s inspect"))},
    )


def microk8s_enable(addons: str = "dns registry dashboard") -> StepPanel:
    """``addons``: names separated by spaces or commas (the seed's three by default)."""
    from labkit.steps.k8s_cluster import MicroK8sEnable

    def names(value: Any) -> tuple[str, ...]:
        return tuple(str(value or "").replace(",", " ").split())

    return StepPanel(
        tr("启用 MicroK8s 插件", "Enable MicroK8s add-ons"),
        step_factory(MicroK8sEnable, convert={"addons": names}),
        {"addons": (addons, tr("插件（空格分隔）", "add-ons (separated by spaces)"))},
    )


def apply(work: Session, file: str = MANIFEST_FILE) -> StepPanel:
    """Server-side apply of the file the manifest panel wrote (read when the step runs)."""
    from labkit.steps.k8s_cluster import ApplyManifest

    return StepPanel(
        tr("把清单应用到集群", "Apply the manifest to the cluster"),
        step_factory(ApplyManifest, work=work, paths=("path",), from_file=True),
        {"path": (file, tr("清单文件名", "manifest file")), "namespace": _namespace()},
    )


def rollout(name: str = APP, timeout_s: int = 120) -> StepPanel:
    from labkit.steps.k8s_cluster import WaitRollout

    return StepPanel(
        tr("等待滚动更新完成", "Wait for the rollout"),
        step_factory(WaitRollout),
        {
            "name": _app(name),
            "namespace": _namespace(),
            "timeout_s": (timeout_s, tr("最多等待（秒）", "wait at most (s)")),
        },
    )


def scale(name: str = APP, replicas: int = 3) -> StepPanel:
    from labkit.steps.k8s_cluster import Scale

    return StepPanel(
        tr("调整副本数", "Scale the Deployment"),
        step_factory(Scale),
        {
            "name": _app(name),
            "namespace": _namespace(),
            "replicas": (replicas, tr("副本数", "replicas")),
        },
    )


def delete(name: str = APP, confirm: bool = False) -> StepPanel:
    """Deletes only once the confirmation checkbox is ticked (``confirm``)."""
    from labkit.steps.k8s_cluster import DeleteApp

    return StepPanel(
        tr("从集群删除 Deployment", "Delete the Deployment from the cluster"),
        step_factory(DeleteApp),
        {
            "name": _app(name),
            "namespace": _namespace(),
            "confirm": (confirm, tr("我确认删除这个 Deployment", "I confirm deleting this Deployment")),
        },
        console=False,
    )
