"""Course 2.4.8, the nginx Deployment: write the manifest and validate it offline (``ch2.k8s.manifest``).

:class:`ValidateManifest` writes the YAML a student built in the panel (by default the seed's
``nginx-deployment.yaml``) and validates it against the strict schemas of one Kubernetes version
(:mod:`labkit.k8s_schemas`) plus labkit's semantic rules (:mod:`labkit.logic.k8s_rules`). Nothing
talks to a cluster and no command runs. A second run finds the same file and validates it again
("already present, verified"); a different file there is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.files import write_atomic
from labkit.i18n import tr
from labkit.k8s_schemas import load_schemas, resolve_version
from labkit.logic.k8s_manifests import (
    AppFields,
    build_deployment,
    build_service,
    check_fields,
    dump_yaml,
    require_valid,
)
from labkit.logic.k8s_rules import FileReport, validate_text
from labkit.steps.base import Plan, RunContext, Step, refuse_replacing

__all__ = ["ValidateManifest"]


class ValidateManifest(Step):
    """Write a manifest (from fields, or given as YAML text) and validate it offline."""

    check_id = "ch2.k8s.manifest"

    def __init__(
        self,
        *,
        fields: AppFields | None = None,
        manifest: str | None = None,
        path: str | os.PathLike[str] = "nginx-deployment.yaml",
        service: bool = False,
        k8s_version: str | None = None,
        overwrite: bool = False,
    ) -> None:
        if fields is not None and manifest is not None:
            raise InvalidField("manifest", "…", tr("与 fields 二选一", "and fields exclude each other"))
        self.fields = fields
        self.manifest = manifest
        self.path = Path(path)
        self.service = service
        self.k8s_version = k8s_version
        self.overwrite = overwrite

    def _text(self) -> str:
        if self.manifest is not None:
            return self.manifest
        fields = require_valid(self.fields or AppFields())
        docs = [build_deployment(fields)] + ([build_service(fields)] if self.service else [])
        return dump_yaml(docs)

    def plan(self) -> Plan:
        version = resolve_version(self.k8s_version)
        notes = [
            tr(
                "离线校验：Kubernetes {v} 的严格结构定义（kubernetes-validate 自带）加上 labkit 的语义规则"
                "（选择器、名称、镜像版本、端口、资源）；不连接集群，不运行命令",
                "validated offline against the strict Kubernetes {v} schemas "
                "(shipped by kubernetes-validate) "
                "plus labkit's semantic rules (selector, names, image tag, ports, resources); no cluster, "
                "no command runs",
                v=version,
            )
        ]
        if self.fields is not None or self.manifest is None:
            notes += [str(f) for f in check_fields(self.fields or AppFields()) if not f.is_error]
        return Plan(
            step=tr("写出并校验 Kubernetes 清单", "write and validate the Kubernetes manifest"),
            reason=tr(
                "保存为 {p}，再用 Kubernetes {v} 的结构定义离线校验",
                "save as {p}, then validate it offline against the Kubernetes {v} schemas",
                p=self.path,
                v=version,
            ),
            files={str(self.path): self._text()},
            notes=notes,
        )

    def _validate(self, text: str) -> tuple[FileReport, dict[str, Any]]:
        report = validate_text(text, load_schemas(self.k8s_version))
        evidence = {
            "path": str(self.path),
            "schema_version": report.version,
            "manifest": text,
            "documents": [
                {"index": d.index, "apiVersion": d.api_version, "kind": d.kind, "name": d.name}
                for d in report.documents
            ],
            "problems": [{"doc": p.doc, **p.finding.to_dict()} for p in report.problems],
            "lines": [p.line_for(self.path.name) for p in report.problems],
        }
        return report, evidence

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        text = self._text()
        try:
            present = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        if present != text:
            return None
        _, evidence = self._validate(text)
        how = tr(
            "{p} 内容相同，已按 Kubernetes {v} 重新校验",
            "{p} identical, validated again against Kubernetes {v}",
            p=self.path.name,
            v=evidence["schema_version"],
        )
        return {**evidence, "verified_by": how}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        text = self._text()
        if self.path.exists() and not self.overwrite:
            raise refuse_replacing(
                self.path,
                [tr("内容与本步骤生成的清单不同", "its content differs from the manifest this step writes")],
            )
        write_atomic(self.path, text, overwrite=self.overwrite)
        ctx.say(tr("已写入 {p}", "wrote {p}", p=self.path))
        _, evidence = self._validate(self.path.read_text(encoding="utf-8"))
        return evidence

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        errors = [p for p in evidence["problems"] if p["severity"] == "error"]
        kinds = ", ".join(f"{d['kind']}/{d['name']}" for d in evidence["documents"]) or "-"
        if errors:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "{n} 个问题（Kubernetes {v}）：{first}",
                    "{n} problem(s) (Kubernetes {v}): {first}",
                    n=len(errors),
                    v=evidence["schema_version"],
                    first=evidence["lines"][0],
                ),
                **evidence,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "清单有效：{k}（Kubernetes {v} 结构定义，离线校验）",
                "manifest valid: {k} (Kubernetes {v} schemas, offline)",
                k=kinds,
                v=evidence["schema_version"],
            ),
            **evidence,
        )
