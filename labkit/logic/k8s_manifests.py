"""Course 2.4.8, Kubernetes manifests: Deployment, Service and ConfigMap from a panel's fields.

Pure: fields in, a manifest (a ``dict`` in the key order people write: ``apiVersion``, ``kind``,
``metadata``, ``spec``) and its YAML out. :class:`AppFields` defaults to the seed's example, the
``nginx-deployment`` with two ``nginx:1.14.2`` replicas on port 80, so ``build_deployment()``
reproduces the course text. Field mistakes are :class:`~labkit.findings.Finding` s naming the
field (:func:`check_fields`); :func:`require_valid` raises the first as
:class:`~labkit.errors.InvalidField`. Whole-manifest validation (schemas and the semantic rules
schemas miss) is :mod:`labkit.logic.k8s_rules`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from labkit.errors import InvalidField
from labkit.findings import Finding, first_error
from labkit.i18n import tr

__all__ = [
    "DNS1123_LABEL",
    "DNS1123_SUBDOMAIN",
    "AppFields",
    "build_configmap",
    "build_deployment",
    "build_service",
    "check_fields",
    "dump_yaml",
    "require_valid",
]

#: RFC 1123 label (Service, container and port names): lower case, digits, '-', at most 63.
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: RFC 1123 subdomain (most object names): labels joined by '.', at most 253 characters.
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


@dataclass(frozen=True)
class AppFields:
    """What a panel asks for one application; the defaults are the seed's nginx example."""

    name: str = "nginx-deployment"
    image: str = "nginx:1.14.2"
    replicas: int = 2
    ports: Sequence[int] = (80,)
    labels: Mapping[str, str] = field(default_factory=lambda: {"app": "nginx"})
    container: str = "nginx"
    #: ``{"requests": {"cpu": "100m"}, "limits": {"memory": "128Mi"}}``; empty: none.
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


def _is_dns_label(value: str) -> bool:
    return len(value) <= 63 and bool(DNS1123_LABEL.match(value))


def _is_dns_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(DNS1123_SUBDOMAIN.match(value))


def dns_fix() -> str:
    """How to write a DNS-1123 name (shared with :mod:`labkit.logic.k8s_semantics`)."""
    return tr(
        "只用小写字母、数字和 '-'，以字母或数字开头和结尾，例如 nginx-deployment",
        "use lower-case letters, digits and '-', starting and ending with a letter or digit, "
        "e.g. nginx-deployment",
    )


def label_key_ok(key: object) -> bool:
    """A label key's name part (after an optional ``prefix/``): ≤ 63 letters, digits, ``-_.``."""
    name = str(key).rsplit("/", 1)[-1]
    return len(name) <= 63 and bool(_LABEL_KEY_NAME.match(name))


def label_value_ok(value: str) -> bool:
    """A label value: empty, or ≤ 63 letters, digits, ``-_.`` starting and ending alphanumeric."""
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


def label_key_message(key: object) -> str:
    return tr("标签键 {k!r} 不合法", "label key {k!r} is not valid", k=key)


def label_value_message(value: object) -> str:
    return tr(
        "标签值 {v!r} 不合法（最多 63 个字母、数字、'-_.'）",
        "label value {v!r} is not valid (≤ 63 of letters, digits, '-_.')",
        v=value,
    )


def _name_rules(f: AppFields) -> list[Finding]:
    out = []
    if not _is_dns_subdomain(f.name):
        out.append(
            Finding(
                "name",
                "error",
                tr(
                    "{v!r} 不是合法的 Kubernetes 名称（DNS-1123）",
                    "{v!r} is not a valid Kubernetes name (DNS-1123)",
                    v=f.name,
                ),
                dns_fix(),
                "k8s.name",
            )
        )
    if not _is_dns_label(f.container):
        out.append(
            Finding(
                "container",
                "error",
                tr(
                    "容器名 {v!r} 不合法（DNS-1123 标签）",
                    "container name {v!r} is not a DNS-1123 label",
                    v=f.container,
                ),
                dns_fix(),
                "k8s.container",
            )
        )
    return out


def _image_rules(f: AppFields) -> list[Finding]:
    image = f.image.strip()
    if not image:
        return [
            Finding(
                "image",
                "error",
                tr("缺少镜像", "no image given"),
                tr("例如 nginx:1.14.2", "e.g. nginx:1.14.2"),
                "k8s.image",
            )
        ]
    if any(c.isspace() for c in image) or image != image.strip():
        return [
            Finding(
                "image",
                "error",
                tr("镜像名 {v!r} 含空白", "image {v!r} contains blanks", v=f.image),
                code="k8s.image",
            )
        ]
    last = image.rsplit("/", 1)[-1]
    if "@" not in last and (":" not in last or last.endswith(":latest")):
        return [
            Finding(
                "image",
                "warning",
                tr(
                    "镜像 {v!r} 没有固定版本（等于 :latest）",
                    "image {v!r} has no pinned tag (means :latest)",
                    v=image,
                ),
                tr("写明版本，例如 nginx:1.14.2", "name a version, e.g. nginx:1.14.2"),
                "k8s.image_tag",
            )
        ]
    return []


def _number_rules(f: AppFields) -> list[Finding]:
    out = []
    if isinstance(f.replicas, bool) or not isinstance(f.replicas, int) or f.replicas < 0:
        out.append(
            Finding(
                "replicas",
                "error",
                tr("副本数 {v!r} 必须是 ≥ 0 的整数", "replicas {v!r} must be an integer ≥ 0", v=f.replicas),
                code="k8s.replicas",
            )
        )
    seen: set[int] = set()
    for port in f.ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            out.append(
                Finding(
                    "ports",
                    "error",
                    tr("端口 {v!r} 不在 1–65535", "port {v!r} is not in 1-65535", v=port),
                    code="k8s.port",
                )
            )
        elif port in seen:
            out.append(
                Finding(
                    "ports",
                    "error",
                    tr("端口 {v} 重复", "port {v} is listed twice", v=port),
                    code="k8s.port_duplicate",
                )
            )
        seen.add(port)
    return out


def _label_rules(f: AppFields) -> list[Finding]:
    out = []
    if not f.labels:
        out.append(
            Finding(
                "labels",
                "error",
                tr(
                    "至少需要一个标签（选择器靠它找到 Pod）",
                    "needs at least one label (the selector finds the pods by it)",
                ),
                tr("例如 app=nginx", "e.g. app=nginx"),
                "k8s.labels",
            )
        )
    for key, value in f.labels.items():
        if not label_key_ok(key):
            out.append(Finding("labels", "error", label_key_message(key), code="k8s.label_key"))
        if not isinstance(value, str) or not label_value_ok(value):
            out.append(Finding("labels", "error", label_value_message(value), code="k8s.label_value"))
    return out


def _env_resource_rules(f: AppFields) -> list[Finding]:
    out = []
    for key in f.env:
        if not _ENV_NAME.match(str(key)):
            out.append(
                Finding(
                    "env",
                    "error",
                    tr("环境变量名 {v!r} 不合法", "environment variable name {v!r} is not valid", v=key),
                    code="k8s.env",
                )
            )
    for kind, amounts in f.resources.items():
        if kind not in ("requests", "limits"):
            out.append(
                Finding(
                    "resources",
                    "error",
                    tr("{v!r} 不是 requests 或 limits", "{v!r} is neither requests nor limits", v=kind),
                    code="k8s.resources",
                )
            )
            continue
        for resource, amount in amounts.items():
            if not _QUANTITY.match(str(amount)):
                out.append(
                    Finding(
                        "resources",
                        "error",
                        tr(
                            "{k}.{r} = {v!r} 不是数量（如 500m、128Mi）",
                            "{k}.{r} = {v!r} is not a quantity (e.g. 500m, 128Mi)",
                            k=kind,
                            r=resource,
                            v=amount,
                        ),
                        code="k8s.quantity",
                    )
                )
    return out


def check_fields(f: AppFields) -> list[Finding]:
    """Every problem with the fields (each rule names its field); request-above-limit and the
    other whole-manifest rules run on the built manifest (:mod:`labkit.logic.k8s_rules`)."""
    return [
        *_name_rules(f),
        *_image_rules(f),
        *_number_rules(f),
        *_label_rules(f),
        *_env_resource_rules(f),
    ]


def require_valid(f: AppFields) -> AppFields:
    """``f`` if no rule finds an error, else :class:`InvalidField` for the first error."""
    bad = first_error(check_fields(f))
    if bad is not None:
        raise InvalidField(bad.field, getattr(f, bad.field), bad.message, bad.fix)
    return f


def _container(f: AppFields) -> dict[str, Any]:
    container: dict[str, Any] = {"name": f.container, "image": f.image.strip()}
    if f.ports:
        container["ports"] = [{"containerPort": int(p)} for p in f.ports]
    if f.env:
        container["env"] = [{"name": str(k), "value": str(v)} for k, v in f.env.items()]
    if f.resources:
        container["resources"] = {k: {r: str(a) for r, a in v.items()} for k, v in f.resources.items() if v}
    return container


def build_deployment(f: AppFields | None = None) -> dict[str, Any]:
    """The Deployment of the course (``AppFields()``: the seed's nginx example, key for key)."""
    f = f or AppFields()
    labels = dict(f.labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f.name},
        "spec": {
            "replicas": f.replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [_container(f)]}},
        },
    }


def build_service(
    f: AppFields | None = None, *, name: str | None = None, kind: str = "ClusterIP"
) -> dict[str, Any]:
    """A Service in front of the Deployment's pods (same labels, same ports)."""
    f = f or AppFields()
    ports = [{"port": int(p), "targetPort": int(p)} for p in f.ports]
    if len(ports) > 1:  # several ports must be named
        for p in ports:
            p["name"] = f"port-{p['port']}"
    spec: dict[str, Any] = {"selector": dict(f.labels), "ports": ports}
    if kind != "ClusterIP":
        spec = {"type": kind, **spec}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name or f.name.removesuffix("-deployment") + "-service"},
        "spec": spec,
    }


def build_configmap(name: str, data: Mapping[str, str]) -> dict[str, Any]:
    """A ConfigMap (string values only, as Kubernetes wants them)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {str(k): str(v) for k, v in data.items()},
    }


class _BlockDumper(yaml.SafeDumper):
    """Block style, insertion order; multi-line strings as ``|`` blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_representer)


def dump_yaml(docs: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """The manifest(s) as people write them: block style, keys in build order, ``---`` between."""
    many = [docs] if isinstance(docs, dict) else list(docs)
    return "---\n".join(
        yaml.dump(d, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
        for d in many
    )
