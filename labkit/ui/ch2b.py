"""Chapter 2b (Kubernetes, course 2.3 and 2.4.8): one panel factory per notebook cell.

Each factory only wires widget fields to a step of :mod:`labkit.steps.k8s` (the manifest, written
and validated offline) or :mod:`labkit.steps.registry` (the local registry, the push, the practice
``daemon.json``). Files and folders go to the notebook's work directory (:func:`labkit.ui.session`);
one elsewhere only with the panel's "allow a file outside the work folder" checkbox.
"""

from __future__ import annotations

from typing import Any

from labkit.i18n import tr
from labkit.steps.base import overwrite_label
from labkit.ui import Session
from labkit.ui.panel import StepPanel, blank_is_none, step_factory

__all__ = ["insecure_registry", "manifest", "push_image", "registry_start", "registry_stop"]

#: The seed's registry (MicroK8s' add-on port), here served on loopback.
REGISTRY_ADDRESS = "127.0.0.1:32000"
#: Where the registry keeps its config, pid file and storage, inside the work folder.
REGISTRY_ROOT = "registry"
#: The image chapter 2a's "local base image" panel makes (``labkit.logic.docker_names``).
LOCAL_BASE = "labkit/busybox:local"


def manifest(work: Session, file: str = "nginx-deployment.yaml") -> StepPanel:
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
