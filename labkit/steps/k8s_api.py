"""The one boundary to a Kubernetes API server: the official ``kubernetes`` client, errors translated.

:class:`Cluster` wraps a ``kubernetes.client.ApiClient`` (from a kubeconfig with
:meth:`Cluster.connect`, or given, e.g. by a test that records its HTTP requests). Every call
goes through :func:`translated`, which turns ``ApiException``, urllib3's connection errors and
kubeconfig errors into :class:`ClusterFailed` (a :class:`~labkit.errors.CommandFailed` whose
``argv`` is the equivalent ``kubectl`` line and ``returncode`` the HTTP status), once, with
``raise ... from exc``. Objects come back as plain dicts (``_preload_content=False``, the JSON
the server sent), never as generated models, so :mod:`labkit.logic.k8s_cluster` parses them.

``kubernetes`` is imported lazily, inside the functions: ``import labkit`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from labkit.errors import CommandFailed
from labkit.i18n import tr

__all__ = ["APPLY_CONTENT_TYPE", "Cluster", "ClusterFailed", "kubeconfig_path", "translated"]

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE = "application/merge-patch+json"
#: kind → (API class, method suffix, namespaced) for the kinds the chapter's builders make.
KINDS = {
    "Deployment": ("AppsV1Api", "deployment"),
    "Service": ("CoreV1Api", "service"),
    "ConfigMap": ("CoreV1Api", "config_map"),
    "Ingress": ("NetworkingV1Api", "ingress"),
}


class ClusterFailed(CommandFailed):
    """The API server refused a call or could not be reached; ``argv`` is the kubectl equivalent."""

    def __init__(self, argv: Sequence[str], status: int | None, message: str, hint: str = "") -> None:
        self.status = status
        super().__init__(list(argv), status, "", message, hint)

    def _what(self) -> str:
        if self.status:
            return tr(
                "被 API 服务器拒绝（HTTP {s}）", "was refused by the API server (HTTP {s})", s=self.status
            )
        return tr("无法连接 API 服务器", "could not reach the API server")


def kubeconfig_path() -> Path | None:
    """The kubeconfig kubectl would use: the first existing file of ``$KUBECONFIG``, else
    ``~/.kube/config``; ``None`` when there is none."""
    env = os.environ.get("KUBECONFIG", "")
    candidates = [Path(p) for p in env.split(os.pathsep) if p] or [Path.home() / ".kube" / "config"]
    return next((p for p in candidates if p.is_file()), None)


def _hint(status: int | None) -> str:
    if status in (401, 403):
        return tr(
            "kubeconfig 中的凭据无效或权限不够；MicroK8s 上用 microk8s config > ~/.kube/config 重新生成",
            "the kubeconfig's credentials are invalid or lack the permission; on MicroK8s "
            "regenerate it with microk8s config > ~/.kube/config",
        )
    if status == 404:
        return tr("对象或命名空间不存在", "the object or the namespace does not exist")
    if status == 409:
        return tr(
            "另一个字段管理者拥有这些字段（冲突）；labkit 以 force=true 应用",
            "another field manager owns these fields (conflict); labkit applies with force=true",
        )
    if status == 422:
        return tr(
            "API 服务器认为清单无效；先用「校验清单」一步离线检查",
            "the API server finds the manifest invalid; check it offline with the validate step first",
        )
    if status is None:
        return tr(
            "集群没有运行或地址不对：microk8s status --wait-ready；kubectl cluster-info",
            "the cluster is not running or the address is wrong: microk8s status --wait-ready; "
            "kubectl cluster-info",
        )
    return ""


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    try:
        return str(json.loads(body).get("message") or body)
    except (TypeError, ValueError, AttributeError):
        return str(body or getattr(exc, "reason", "") or exc)


@contextlib.contextmanager
def translated(argv: Sequence[str]) -> Iterator[None]:
    """Turn the client's errors into :class:`ClusterFailed` naming ``argv`` (the kubectl line)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    try:
        yield
    except ApiException as exc:
        status = exc.status or None
        raise ClusterFailed(argv, status, _server_message(exc), _hint(status)) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise ClusterFailed(argv, None, str(exc), _hint(None)) from exc
    except ConfigException as exc:
        raise ClusterFailed(
            argv,
            None,
            str(exc),
            tr("kubeconfig 无法使用：{e}", "the kubeconfig cannot be used: {e}", e=exc),
        ) from exc


def _json(resp: Any) -> dict[str, Any]:
    data = resp.data
    return json.loads(data) if data else {}


class Cluster:
    """The calls the chapter makes, each returning the server's JSON as a dict."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    @classmethod
    def connect(cls, *, context: str | None = None) -> Cluster:
        """An ``ApiClient`` from the kubeconfig kubectl would use (:func:`kubeconfig_path`)."""
        from kubernetes import config

        path = kubeconfig_path()
        with translated(["kubectl", "config", "view", "--minify"]):
            return cls(
                config.new_client_from_config(config_file=str(path) if path else None, context=context)
            )

    def _api(self, kind: str) -> tuple[Any, str]:
        from kubernetes import client

        api_name, suffix = KINDS[kind]
        return getattr(client, api_name)(self.api_client), suffix

    def apply(
        self, doc: Mapping[str, Any], namespace: str, *, argv: Sequence[str], force: bool = True
    ) -> dict:
        """Server-side apply: ``PATCH .../NAME?fieldManager=labkit&force=true`` with
        ``Content-Type: application/apply-patch+yaml`` (the JSON body is valid YAML)."""
        from labkit.logic.k8s_cluster import FIELD_MANAGER

        api, suffix = self._api(str(doc.get("kind")))
        name = str((doc.get("metadata") or {}).get("name"))
        with translated(argv):
            resp = getattr(api, f"patch_namespaced_{suffix}")(
                name,
                namespace,
                dict(doc),
                field_manager=FIELD_MANAGER,
                force=force,
                _content_type=APPLY_CONTENT_TYPE,
                _preload_content=False,
            )
            return _json(resp)

    def read(self, kind: str, name: str, namespace: str, *, argv: Sequence[str]) -> dict | None:
        """The object, or ``None`` when it does not exist (404)."""
        from kubernetes.client.exceptions import ApiException

        api, suffix = self._api(kind)
        try:
            with translated(argv):
                return _json(
                    getattr(api, f"read_namespaced_{suffix}")(name, namespace, _preload_content=False)
                )
        except ClusterFailed as exc:
            if exc.status == 404 and isinstance(exc.__cause__, ApiException):
                return None
            raise

    def watch_deployment(
        self, name: str, namespace: str, timeout_s: int, *, argv: Sequence[str]
    ) -> Iterator[dict]:
        """Each version of the Deployment the server sends for ``timeout_s`` seconds (a watch)."""
        from kubernetes import client, watch

        apps = client.AppsV1Api(self.api_client)
        with translated(argv):
            for event in watch.Watch().stream(
                apps.list_namespaced_deployment,
                namespace,
                field_selector=f"metadata.name={name}",
                timeout_seconds=timeout_s,
                deserialize=False,
            ):
                if event.get("type") in ("ADDED", "MODIFIED"):
                    yield event["object"]

    def pods(self, namespace: str, selector: str, *, argv: Sequence[str]) -> list[dict]:
        from kubernetes import client

        with translated(argv):
            resp = client.CoreV1Api(self.api_client).list_namespaced_pod(
                namespace, label_selector=selector, _preload_content=False
            )
            return list(_json(resp).get("items") or [])

    def events(self, namespace: str, *, argv: Sequence[str]) -> list[dict]:
        from kubernetes import client

        with translated(argv):
            resp = client.CoreV1Api(self.api_client).list_namespaced_event(namespace, _preload_content=False)
            return list(_json(resp).get("items") or [])

    def scale(self, name: str, namespace: str, replicas: int, *, argv: Sequence[str]) -> dict:
        """``PATCH .../deployments/NAME/scale`` (merge patch of ``spec.replicas``)."""
        from kubernetes import client

        with translated(argv):
            resp = client.AppsV1Api(self.api_client).patch_namespaced_deployment_scale(
                name,
                namespace,
                {"spec": {"replicas": replicas}},
                _content_type=MERGE_CONTENT_TYPE,
                _preload_content=False,
            )
            return _json(resp)

    def delete(self, kind: str, name: str, namespace: str, *, argv: Sequence[str]) -> dict:
        """``DELETE`` with foreground propagation (the pods go with the Deployment)."""
        api, suffix = self._api(kind)
        with translated(argv):
            resp = getattr(api, f"delete_namespaced_{suffix}")(
                name, namespace, propagation_policy="Foreground", _preload_content=False
            )
            return _json(resp)
