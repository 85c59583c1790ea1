"""Validating Kubernetes manifests: every problem, each at its field path, in the course language.

Pure. :func:`validate_text` reads a (multi-document) YAML text (:mod:`labkit.logic.k8s_yaml`),
checks each document's ``apiVersion`` / ``kind`` (a removed API is an error naming its
replacement), asks a :class:`SchemaSource` for the schema errors of that Kubernetes version (the
boundary, :mod:`labkit.k8s_schemas`, validates against kubernetes-validate's strict schemas and
returns *all* errors as :class:`SchemaIssue` s) and adds the semantic rules schemas miss
(:mod:`labkit.logic.k8s_semantics`). Every :class:`Problem` names its document and a field path
like ``spec.template.spec.containers[0].image``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from labkit.findings import Finding
from labkit.i18n import tr
from labkit.logic.k8s_semantics import semantic_findings
from labkit.logic.k8s_yaml import Document, Path, format_path, read_documents

__all__ = [
    "REMOVED_APIS",
    "DocumentReport",
    "FileReport",
    "Problem",
    "SchemaIssue",
    "SchemaSource",
    "schema_findings",
    "validate_text",
]

#: (apiVersion, kind) → (replacement apiVersion or "" when there is none, the release that removed it)
REMOVED_APIS: dict[tuple[str, str], tuple[str, str]] = {
    **{("extensions/v1beta1", k): ("apps/v1", "1.16") for k in ("Deployment", "DaemonSet", "ReplicaSet")},
    **{
        (g, k): ("apps/v1", "1.16")
        for g in ("apps/v1beta1", "apps/v1beta2")
        for k in ("Deployment", "DaemonSet", "ReplicaSet", "StatefulSet")
    },
    ("extensions/v1beta1", "NetworkPolicy"): ("networking.k8s.io/v1", "1.16"),
    ("extensions/v1beta1", "Ingress"): ("networking.k8s.io/v1", "1.22"),
    ("extensions/v1beta1", "PodSecurityPolicy"): ("", "1.25"),
    ("networking.k8s.io/v1beta1", "Ingress"): ("networking.k8s.io/v1", "1.22"),
    ("networking.k8s.io/v1beta1", "IngressClass"): ("networking.k8s.io/v1", "1.22"),
    ("batch/v1beta1", "CronJob"): ("batch/v1", "1.25"),
    ("batch/v2alpha1", "CronJob"): ("batch/v1", "1.21"),
    ("policy/v1beta1", "PodDisruptionBudget"): ("policy/v1", "1.25"),
    ("policy/v1beta1", "PodSecurityPolicy"): ("", "1.25"),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): ("autoscaling/v2", "1.25"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): ("autoscaling/v2", "1.26"),
    ("discovery.k8s.io/v1beta1", "EndpointSlice"): ("discovery.k8s.io/v1", "1.25"),
    ("events.k8s.io/v1beta1", "Event"): ("events.k8s.io/v1", "1.25"),
    ("node.k8s.io/v1beta1", "RuntimeClass"): ("node.k8s.io/v1", "1.25"),
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity"): ("storage.k8s.io/v1", "1.27"),
    **{
        ("storage.k8s.io/v1beta1", k): ("storage.k8s.io/v1", "1.22")
        for k in ("CSIDriver", "CSINode", "StorageClass", "VolumeAttachment")
    },
    **{
        ("rbac.authorization.k8s.io/v1beta1", k): ("rbac.authorization.k8s.io/v1", "1.22")
        for k in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    },
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"): ("apiextensions.k8s.io/v1", "1.22"),
    ("apiregistration.k8s.io/v1beta1", "APIService"): ("apiregistration.k8s.io/v1", "1.22"),
    **{
        ("admissionregistration.k8s.io/v1beta1", k): ("admissionregistration.k8s.io/v1", "1.22")
        for k in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
    },
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"): ("certificates.k8s.io/v1", "1.22"),
    ("coordination.k8s.io/v1beta1", "Lease"): ("coordination.k8s.io/v1", "1.22"),
    ("scheduling.k8s.io/v1beta1", "PriorityClass"): ("scheduling.k8s.io/v1", "1.22"),
    **{
        (f"flowcontrol.apiserver.k8s.io/{v}", k): ("flowcontrol.apiserver.k8s.io/v1", r)
        for v, r in (("v1beta1", "1.26"), ("v1beta2", "1.29"), ("v1beta3", "1.32"))
        for k in ("FlowSchema", "PriorityLevelConfiguration")
    },
}


@dataclass(frozen=True)
class SchemaIssue:
    """One schema error as the boundary reports it (from jsonschema's ``iter_errors``)."""

    path: Path
    validator: str
    validator_value: Any
    instance: Any
    message: str
    #: the property names the schema allows at ``path`` (for "did you mean")
    known: tuple[str, ...] = ()


class SchemaSource(Protocol):
    """The schemas of one Kubernetes version (:class:`labkit.k8s_schemas.SchemaSet`)."""

    version: str

    def served(self, kind: str) -> list[str]:
        """The apiVersions that serve ``kind`` (``[]``: not a built-in kind)."""
        ...

    def issues(self, doc: dict[str, Any]) -> list[SchemaIssue]:
        """Every schema error of ``doc``; its apiVersion/kind are served."""
        ...


@dataclass(frozen=True)
class Problem:
    """A finding in one document (``doc`` 1-based, as the file's documents are numbered)."""

    doc: int
    finding: Finding

    @property
    def path(self) -> str:
        return self.finding.field

    def line_for(self, file: str) -> str:
        """``file:doc#:field.path: message`` (the CLI's line; warnings say so)."""
        f = self.finding
        level = "" if f.is_error else f"{f.level}: "
        fix = tr("（{x}）", " ({x})", x=f.fix) if f.fix else ""
        return f"{file}:{self.doc}:{f.field or '-'}: {level}{f.message}{fix}"


@dataclass(frozen=True)
class DocumentReport:
    index: int
    line: int
    api_version: str
    kind: str
    name: str

    def label(self) -> str:
        return f"{self.kind or '?'}/{self.name or '?'}"


@dataclass
class FileReport:
    """What validating one text found: the documents read and every problem."""

    version: str
    documents: list[DocumentReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.finding.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


def _err(path: Path, message: str, fix: str = "", code: str = "", doc: Document | None = None) -> Finding:
    line = doc.line_of(path) if doc is not None else None
    return Finding(format_path(path), "error", message, fix, code, line)


def _type_names(value: Any) -> str:
    names = [value] if isinstance(value, str) else list(value)
    words = {
        "string": tr("字符串", "a string"),
        "integer": tr("整数", "an integer"),
        "number": tr("数字", "a number"),
        "boolean": tr("true/false", "true/false"),
        "object": tr("映射（key: value）", "a mapping (key: value)"),
        "array": tr("列表（- item）", "a list (- item)"),
    }
    return tr(" 或 ", " or ").join(words.get(n, n) for n in names if n != "null")


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _issue_findings(issue: SchemaIssue, version: str, doc: Document) -> list[Finding]:
    if issue.validator == "required" and isinstance(issue.instance, dict):
        missing = [p for p in issue.validator_value if p not in issue.instance]
        return [
            _err(
                (*issue.path, p),
                tr("缺少必填字段", "required field is missing"),
                code="k8s.required",
                doc=doc,
            )
            for p in missing
        ]
    if issue.validator == "additionalProperties" and isinstance(issue.instance, dict):
        out = []
        for key in issue.instance:
            if key in issue.known:
                continue
            close = difflib.get_close_matches(str(key), issue.known, n=1)
            fix = tr("是不是 {c}？", "did you mean {c}?", c=close[0]) if close else ""
            out.append(
                _err(
                    (*issue.path, key),
                    tr("Kubernetes {v} 没有这个字段", "Kubernetes {v} has no such field", v=version),
                    fix,
                    "k8s.unknown_field",
                    doc,
                )
            )
        return out
    if issue.validator == "type":
        return [
            _err(
                issue.path,
                tr(
                    "应为{t}，而不是 {v!r}",
                    "must be {t}, not {v!r}",
                    t=_type_names(issue.validator_value),
                    v=issue.instance,
                ),
                code="k8s.type",
                doc=doc,
            )
        ]
    if issue.validator in ("oneOf", "anyOf"):
        types = [
            t for sub in issue.validator_value if isinstance(sub, dict) for t in _as_list(sub.get("type"))
        ]
        return [
            _err(
                issue.path,
                tr("应为{t}，而不是 {v!r}", "must be {t}, not {v!r}", t=_type_names(types), v=issue.instance),
                code="k8s.type",
                doc=doc,
            )
        ]
    if issue.validator == "enum":
        allowed = ", ".join(str(v) for v in issue.validator_value if v is not None)
        return [
            _err(
                issue.path,
                tr("{v!r} 不是可选值（{a}）", "{v!r} is not one of {a}", v=issue.instance, a=allowed),
                code="k8s.enum",
                doc=doc,
            )
        ]
    return [
        _err(
            issue.path,
            tr(
                "不符合 Kubernetes {v} 的结构定义：{m}",
                "does not match the Kubernetes {v} schema: {m}",
                v=version,
                m=issue.message,
            ),
            code="k8s.schema",
            doc=doc,
        )
    ]


def schema_findings(issues: Sequence[SchemaIssue], version: str, doc: Document) -> list[Finding]:
    """The schema errors as findings at their field paths, in the course language."""
    return [f for issue in issues for f in _issue_findings(issue, version, doc)]


def _api_findings(doc: Document, source: SchemaSource) -> tuple[list[Finding], bool]:
    """Problems with apiVersion/kind, and whether the schema can be asked about this document."""
    data = doc.data
    api, kind = data.get("apiVersion"), data.get("kind")
    out = []
    if not isinstance(api, str) or not api:
        out.append(
            _err(
                ("apiVersion",),
                tr("缺少 apiVersion", "apiVersion is missing"),
                tr("Deployment 用 apps/v1", "a Deployment uses apps/v1"),
                "k8s.api_missing",
                doc,
            )
        )
    if not isinstance(kind, str) or not kind:
        out.append(
            _err(
                ("kind",),
                tr("缺少 kind", "kind is missing"),
                tr("例如 Deployment", "e.g. Deployment"),
                "k8s.kind_missing",
                doc,
            )
        )
    if out:
        return out, False
    if (api, kind) in REMOVED_APIS:
        new, since = REMOVED_APIS[(api, kind)]
        fix = (
            tr("改用 apiVersion: {n}", "use apiVersion: {n}", n=new)
            if new
            else tr("这个 API 没有替代品，删除该对象", "this API has no replacement; remove the object")
        )
        return [
            _err(
                ("apiVersion",),
                tr(
                    "{a} 的 {k} 已在 Kubernetes {s} 中移除",
                    "{k} in {a} was removed in Kubernetes {s}",
                    a=api,
                    k=kind,
                    s=since,
                ),
                fix,
                "k8s.api_removed",
                doc,
            )
        ], False
    served = source.served(kind)
    if api in served:
        return [], True
    if served:
        return [
            _err(
                ("apiVersion",),
                tr(
                    "Kubernetes {v} 里的 {k} 不用 {a}",
                    "{k} is not served as {a} in Kubernetes {v}",
                    v=source.version,
                    k=kind,
                    a=api,
                ),
                tr("改用 apiVersion: {n}", "use apiVersion: {n}", n=" / ".join(served)),
                "k8s.api_wrong",
                doc,
            )
        ], False
    return _unknown_kind_findings(doc, source, api, kind), False


def _unknown_kind_findings(doc: Document, source: SchemaSource, api: str, kind: str) -> list[Finding]:
    """``kind`` is not a built-in kind: a misspelling, a wrong group, or perhaps a custom resource."""
    lower = _kinds_like(kind, source)
    if lower:
        return [
            _err(
                ("kind",),
                tr("没有 kind {k!r}", "there is no kind {k!r}", k=kind),
                tr("是不是 {c}？", "did you mean {c}?", c=lower[0]),
                "k8s.kind_unknown",
                doc,
            )
        ]
    group = api.split("/")[0] if "/" in api else ""
    if not group or "." not in group or group.endswith(".k8s.io"):
        return [
            _err(
                ("kind",),
                tr(
                    "Kubernetes {v} 没有 {a} 的 {k}",
                    "Kubernetes {v} has no {k} in {a}",
                    v=source.version,
                    a=api,
                    k=kind,
                ),
                code="k8s.kind_unknown",
                doc=doc,
            )
        ]
    note = Finding(
        "kind",
        "warning",
        tr(
            "{k}（{a}）不是内置类型，可能是自定义资源：只做了通用检查",
            "{k} ({a}) is not a built-in kind, perhaps a custom resource: only the generic checks ran",
            k=kind,
            a=api,
        ),
        code="k8s.custom_resource",
        line=doc.line_of(("kind",)),
    )
    return [note]


def _kinds_like(kind: str, source: SchemaSource) -> list[str]:
    """Built-in kinds spelled like ``kind`` apart from case (``deployment`` → ``Deployment``)."""
    for candidate in (kind.capitalize(), kind[:1].upper() + kind[1:]):
        if candidate != kind and source.served(candidate):
            return [candidate]
    return []


def _document_report(doc: Document) -> DocumentReport:
    data = doc.data if isinstance(doc.data, dict) else {}
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    return DocumentReport(
        doc.index,
        doc.line,
        str(data.get("apiVersion") or ""),
        str(data.get("kind") or ""),
        str(meta.get("name") or ""),
    )


def _check_document(doc: Document, source: SchemaSource) -> list[Finding]:
    if not isinstance(doc.data, dict):
        return [
            Finding(
                "",
                "error",
                tr(
                    "文档应是映射（apiVersion、kind、metadata…），而不是 {t}",
                    "a document must be a mapping (apiVersion, kind, metadata, ...), not {t}",
                    t=type(doc.data).__name__,
                ),
                code="k8s.not_mapping",
                line=doc.line,
            )
        ]
    found = [
        _err(
            path,
            tr("这个键写了两次（只有最后一个生效）", "this key is written twice (only the last one counts)"),
            tr("删掉多余的一个", "remove one of them"),
            "k8s.duplicate_key",
            doc,
        )
        for path in doc.duplicates
    ]
    api_found, schema_ok = _api_findings(doc, source)
    found += api_found
    if schema_ok:
        found += schema_findings(source.issues(doc.data), source.version, doc)
    known = {f.field for f in found if f.is_error}
    found += [f for f in semantic_findings(doc) if f.field not in known]
    return found


def validate_text(text: str, source: SchemaSource) -> FileReport:
    """Every problem of every document of ``text`` against ``source`` 's Kubernetes version."""
    report = FileReport(source.version)
    docs, stopped = read_documents(text)
    for doc in docs:
        report.documents.append(_document_report(doc))
        report.problems += [Problem(doc.index, f) for f in _check_document(doc, source)]
    if stopped is not None:
        report.problems.append(
            Problem(stopped.index, Finding("", "error", stopped.message, code="k8s.yaml", line=stopped.line))
        )
    elif not docs:
        report.problems.append(
            Problem(
                1,
                Finding(
                    "", "error", tr("文件里没有任何清单", "the file holds no manifest"), code="k8s.empty"
                ),
            )
        )
    return report
