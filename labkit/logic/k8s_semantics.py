"""The mistakes Kubernetes' schemas accept and the API server (or the rollout) does not.

Pure, one named rule per concern, each returning findings at field paths: names (DNS-1123),
labels, a selector that does not select the template's pods, negative replicas, containers
(missing image, ``:latest``, duplicate names and ports, port range) and resources (a request
above its limit, quantities that are not quantities). Works on any shape: a rule that meets an
unexpected type skips (the schema already reports it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from labkit.findings import Finding
from labkit.i18n import tr
from labkit.logic.k8s_manifests import (
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    dns_fix,
    label_key_message,
    label_key_ok,
    label_value_message,
    label_value_ok,
)
from labkit.logic.k8s_yaml import Document, Path, format_path

__all__ = ["parse_quantity", "pod_spec_path", "semantic_findings"]

_SUFFIX = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
#: kind → where its pod template's spec is
_POD_SPEC: dict[str, Path] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_SELECTING = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")
#: kinds whose name must be a DNS-1123 label (shorter, no dots) rather than a subdomain
_LABEL_NAMED = ("Service", "Namespace")


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity (``500m``, ``0.5``, ``128Mi``, ``1e3``) as a number; ``None`` if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _QUANTITY.match(str(value).strip()) if isinstance(value, str) else None
    if not m:
        return None
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2) or ""]
    except InvalidOperation:
        return None


def _get(data: Any, path: Path) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[part] if isinstance(part, int) else data.get(part)
    return data


def pod_spec_path(kind: str) -> Path | None:
    return _POD_SPEC.get(kind)


def _f(doc: Document, path: Path, severity: str, message: str, fix: str = "", code: str = "") -> Finding:
    return Finding(format_path(path), severity, message, fix, code, doc.line_of(path))  # type: ignore[arg-type]


def _name_rule(doc: Document) -> list[Finding]:
    data = doc.data
    kind = data.get("kind")
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        return [
            _f(
                doc,
                ("metadata",),
                "error",
                tr("缺少 metadata", "metadata is missing"),
                tr("至少写 metadata.name", "write at least metadata.name"),
                "k8s.metadata",
            )
        ]
    name = meta.get("name")
    path = ("metadata", "name")
    if name is None and meta.get("generateName"):
        return []
    if not isinstance(name, str) or not name:
        return [_f(doc, path, "error", tr("缺少名称", "the name is missing"), code="k8s.name")]
    as_label = kind in _LABEL_NAMED
    ok = (
        (len(name) <= 63 and DNS1123_LABEL.match(name))
        if as_label
        else (len(name) <= 253 and DNS1123_SUBDOMAIN.match(name))
    )
    if as_label and ok and name[0].isdigit() and kind == "Service":
        ok = None
    if ok:
        return []
    return [
        _f(
            doc,
            path,
            "error",
            tr(
                "{v!r} 不是合法的名称（DNS-1123{w}）",
                "{v!r} is not a valid name (DNS-1123{w})",
                v=name,
                w=tr(" 标签", " label") if as_label else "",
            ),
            dns_fix(),
            "k8s.name",
        )
    ]


def _label_findings(doc: Document, path: Path) -> list[Finding]:
    labels = _get(doc.data, path)
    if not isinstance(labels, dict):
        return []
    out = []
    for key, value in labels.items():
        if not label_key_ok(key):
            out.append(_f(doc, (*path, key), "error", label_key_message(key), code="k8s.label_key"))
        if isinstance(value, str) and not label_value_ok(value):
            out.append(_f(doc, (*path, key), "error", label_value_message(value), code="k8s.label_value"))
    return out


def _labels_rule(doc: Document) -> list[Finding]:
    out = _label_findings(doc, ("metadata", "labels"))
    spec = pod_spec_path(str(doc.data.get("kind")))
    if spec is not None and len(spec) > 1:
        out += _label_findings(doc, (*spec[:-1], "metadata", "labels"))
    return out


def _expression_holds(expr: dict[str, Any], labels: dict[str, Any]) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return True  # unknown operator: the schema / server says so


def _selector_rule(doc: Document) -> list[Finding]:
    if doc.data.get("kind") not in _SELECTING:
        return []
    selector = _get(doc.data, ("spec", "selector"))
    labels = _get(doc.data, ("spec", "template", "metadata", "labels"))
    if not isinstance(selector, dict):
        return []
    labels = labels if isinstance(labels, dict) else {}
    shown = ", ".join(f"{k}={v}" for k, v in labels.items()) or tr("无", "none")
    out = []
    match = selector.get("matchLabels")
    if isinstance(match, dict):
        for key, value in match.items():
            if labels.get(key) != value:
                out.append(
                    _f(
                        doc,
                        ("spec", "selector", "matchLabels", key),
                        "error",
                        tr(
                            "选择器 {k}={v} 选不中模板的 Pod（spec.template.metadata.labels：{l}）",
                            "selector {k}={v} does not match the template's pods "
                            "(spec.template.metadata.labels: {l})",
                            k=key,
                            v=value,
                            l=shown,
                        ),
                        tr(
                            "让 selector.matchLabels 与 template.metadata.labels 一致",
                            "make selector.matchLabels equal template.metadata.labels",
                        ),
                        "k8s.selector",
                    )
                )
    exprs = selector.get("matchExpressions")
    for i, expr in enumerate(exprs if isinstance(exprs, list) else []):
        if isinstance(expr, dict) and not _expression_holds(expr, labels):
            out.append(
                _f(
                    doc,
                    ("spec", "selector", "matchExpressions", i),
                    "error",
                    tr(
                        "选择器条件选不中模板的 Pod（标签：{l}）",
                        "this selector expression does not match the template's pods (labels: {l})",
                        l=shown,
                    ),
                    code="k8s.selector",
                )
            )
    if not out and not match and not exprs:
        out.append(
            _f(
                doc,
                ("spec", "selector"),
                "error",
                tr("选择器是空的", "the selector is empty"),
                tr("写 matchLabels，与模板标签相同", "add matchLabels equal to the template labels"),
                "k8s.selector",
            )
        )
    return out


def _replicas_rule(doc: Document) -> list[Finding]:
    replicas = _get(doc.data, ("spec", "replicas"))
    if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas < 0:
        return [
            _f(
                doc,
                ("spec", "replicas"),
                "error",
                tr("副本数不能为负（{v}）", "replicas cannot be negative ({v})", v=replicas),
                code="k8s.replicas",
            )
        ]
    return []


def _containers(doc: Document) -> Iterator[tuple[Path, dict[str, Any]]]:
    spec = pod_spec_path(str(doc.data.get("kind")))
    if spec is None:
        return
    for group in ("initContainers", "containers"):
        items = _get(doc.data, (*spec, group))
        for i, c in enumerate(items if isinstance(items, list) else []):
            if isinstance(c, dict):
                yield (*spec, group, i), c


def _image_finding(doc: Document, path: Path, image: Any) -> list[Finding]:
    if not isinstance(image, str) or not image.strip():
        return [
            _f(
                doc,
                (*path, "image"),
                "error",
                tr("缺少镜像", "the image is missing"),
                tr("例如 image: nginx:1.14.2", "e.g. image: nginx:1.14.2"),
                "k8s.image",
            )
        ]
    last = image.rsplit("/", 1)[-1]
    if "@" not in last and (":" not in last or last.endswith(":latest")):
        return [
            _f(
                doc,
                (*path, "image"),
                "warning",
                tr(
                    "镜像 {v!r} 没有固定版本（等于 :latest，每次拉取可能不同）",
                    "image {v!r} has no pinned tag (means :latest, which can change between pulls)",
                    v=image,
                ),
                tr("写明版本，例如 nginx:1.14.2", "name a version, e.g. nginx:1.14.2"),
                "k8s.image_tag",
            )
        ]
    return []


def _container_rule(doc: Document) -> list[Finding]:
    out: list[Finding] = []
    names: dict[str, Path] = {}
    ports: dict[tuple[Any, Any], Path] = {}
    for path, c in _containers(doc):
        name = c.get("name")
        if isinstance(name, str):
            if not (len(name) <= 63 and DNS1123_LABEL.match(name)):
                out.append(
                    _f(
                        doc,
                        (*path, "name"),
                        "error",
                        tr(
                            "容器名 {v!r} 不合法（DNS-1123 标签）",
                            "container name {v!r} is not a DNS-1123 label",
                            v=name,
                        ),
                        dns_fix(),
                        "k8s.container_name",
                    )
                )
            elif name in names:
                out.append(
                    _f(
                        doc,
                        (*path, "name"),
                        "error",
                        tr(
                            "容器名 {v!r} 与 {o} 重复",
                            "container name {v!r} repeats {o}",
                            v=name,
                            o=format_path(names[name]),
                        ),
                        code="k8s.container_duplicate",
                    )
                )
            names.setdefault(name, (*path, "name"))
        out += _image_finding(doc, path, c.get("image"))
        out += _port_findings(doc, path, c.get("ports"), ports)
        out += _resource_findings(doc, path, c.get("resources"))
    return out


def _port_findings(doc: Document, path: Path, items: Any, seen: dict[tuple[Any, Any], Path]) -> list[Finding]:
    out = []
    for j, port in enumerate(items if isinstance(items, list) else []):
        if not isinstance(port, dict):
            continue
        number = port.get("containerPort")
        where = (*path, "ports", j, "containerPort")
        if isinstance(number, int) and not isinstance(number, bool):
            if not 1 <= number <= 65535:
                out.append(
                    _f(
                        doc,
                        where,
                        "error",
                        tr("端口 {v} 不在 1–65535", "port {v} is not in 1-65535", v=number),
                        code="k8s.port",
                    )
                )
                continue
            key = (number, port.get("protocol") or "TCP")
            if key in seen:
                out.append(
                    _f(
                        doc,
                        where,
                        "error",
                        tr(
                            "端口 {v}/{p} 与 {o} 重复",
                            "port {v}/{p} repeats {o}",
                            v=number,
                            p=key[1],
                            o=format_path(seen[key]),
                        ),
                        code="k8s.port_duplicate",
                    )
                )
            seen.setdefault(key, where)
    return out


def _resource_findings(doc: Document, path: Path, resources: Any) -> list[Finding]:
    if not isinstance(resources, dict):
        return []
    out = []
    amounts: dict[str, dict[str, Decimal]] = {}
    for part in ("requests", "limits"):
        given = resources.get(part)
        for name, value in given.items() if isinstance(given, dict) else []:
            number = parse_quantity(value)
            if number is None or number < 0:
                out.append(
                    _f(
                        doc,
                        (*path, "resources", part, name),
                        "error",
                        tr(
                            "{v!r} 不是数量（如 500m、128Mi）",
                            "{v!r} is not a quantity (e.g. 500m, 128Mi)",
                            v=value,
                        ),
                        code="k8s.quantity",
                    )
                )
            else:
                amounts.setdefault(part, {})[name] = number
    for name, request in amounts.get("requests", {}).items():
        limit = amounts.get("limits", {}).get(name)
        if limit is not None and request > limit:
            out.append(
                _f(
                    doc,
                    (*path, "resources", "requests", name),
                    "error",
                    tr(
                        "请求 {r} 大于上限 {l}",
                        "request {r} is above the limit {l}",
                        r=resources["requests"][name],
                        l=resources["limits"][name],
                    ),
                    tr("请求不能超过 limits.{n}", "a request cannot exceed limits.{n}", n=name),
                    "k8s.request_limit",
                )
            )
    return out


def semantic_findings(doc: Document) -> list[Finding]:
    """Every rule on one document (a mapping)."""
    if not isinstance(doc.data, dict):
        return []
    return [
        *_name_rule(doc),
        *_labels_rule(doc),
        *_selector_rule(doc),
        *_replicas_rule(doc),
        *_container_rule(doc),
    ]
