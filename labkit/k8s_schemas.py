"""The boundary to the real Kubernetes schemas: kubernetes-validate's shipped JSON schemas.

kubernetes-validate (PyPI) ships the strict schemas of Kubernetes 1.25 … 1.37; its own
``validate()`` re-reads the definitions for every document and stops at the first error
(``../shared/FINDINGS.md``). labkit reads the files itself: :func:`load_schemas` loads one
version's definitions once per process (cached) and builds one jsonschema validator per
(apiVersion, kind) on first use, and :meth:`SchemaSet.issues` returns *every* error
(``iter_errors``) as :class:`~labkit.logic.k8s_rules.SchemaIssue` s, which
:mod:`labkit.logic.k8s_rules` turns into findings. Third-party errors stop here.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from labkit.errors import InvalidField, LabkitError
from labkit.i18n import tr
from labkit.logic.k8s_rules import SchemaIssue

__all__ = [
    "SchemaSet",
    "import_jsonschema",
    "load_schemas",
    "resolve_version",
    "schema_root",
    "supported_versions",
]

_DIR = re.compile(r"^v(\d+)\.(\d+)\.\d+-local-strict$")


def schema_root() -> Path:
    """The folder of kubernetes-validate's schemas (no import of the package itself)."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise LabkitError(
            tr(
                "没有安装 kubernetes-validate（离线校验需要它的 Kubernetes 结构定义）："
                "pip install kubernetes-validate",
                "kubernetes-validate is not installed (offline validation needs its Kubernetes schemas): "
                "pip install kubernetes-validate",
            )
        )
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


@functools.cache
def supported_versions() -> tuple[str, ...]:
    """``("1.25", …, "1.37")``: the versions whose strict schemas are installed."""
    found = []
    for entry in schema_root().iterdir():
        m = _DIR.match(entry.name)
        if m:
            found.append((int(m.group(1)), int(m.group(2))))
    return tuple(f"{a}.{b}" for a, b in sorted(found))


def resolve_version(version: str | None, field: str = "k8s_version") -> str:
    """``None`` → the newest; ``"v1.30.2"`` / ``"1.30"`` → ``"1.30"``; else :class:`InvalidField`
    listing the supported versions."""
    versions = supported_versions()
    if version is None or not str(version).strip():
        return versions[-1]
    m = re.match(r"^v?(\d+)\.(\d+)(\.\d+)?$", str(version).strip())
    wanted = f"{int(m.group(1))}.{int(m.group(2))}" if m else None
    if wanted not in versions:
        raise InvalidField(
            field,
            version,
            tr("不是支持的 Kubernetes 版本", "is not a supported Kubernetes version"),
            tr("可选：{v}", "supported: {v}", v=", ".join(versions)),
        )
    return wanted


def import_jsonschema(*, fast: bool = False) -> Any:
    """Import jsonschema; with ``fast`` (the CLI) without ``rfc3987_syntax``.

    jsonschema imports ``rfc3987_syntax`` optionally, only to check the ``iri`` string formats,
    and building its grammar costs about 0.9 s here: most of a ``labkit k8s validate`` run. The
    Kubernetes schemas are checked without a format checker, so the CLI hides it during the import
    (as ``labkit validate`` does for papermill, :func:`labkit.validate.kernels.import_papermill`);
    the Python API leaves imports alone.
    """
    from labkit.imports import without_rfc3987_syntax

    with without_rfc3987_syntax(fast):
        import jsonschema
    return jsonschema


class SchemaSet:
    """The strict schemas of one Kubernetes version: served kinds and one validator per kind."""

    def __init__(self, version: str, folder: Path) -> None:
        jsonschema = import_jsonschema()
        from referencing import Registry, Resource

        self.version = version
        self._folder = folder
        self._jsonschema = jsonschema
        definitions = json.loads((folder / "_definitions.json").read_text(encoding="utf-8"))
        self._registry = Resource.from_contents(definitions) @ Registry()
        self._served: dict[str, list[str]] = {}
        for schema in definitions.get("$defs", {}).values():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                api = f"{gvk['group']}/{gvk['version']}" if gvk.get("group") else gvk["version"]
                served = self._served.setdefault(gvk["kind"], [])
                if api not in served:
                    served.append(api)
        self._validators: dict[tuple[str, str], Any] = {}

    def served(self, kind: str) -> list[str]:
        return list(self._served.get(kind, []))

    def _validator(self, api: str, kind: str) -> Any:
        key = (api, kind)
        if key not in self._validators:
            group, _, version = api.rpartition("/")
            stem = "-".join(p for p in (kind.lower(), group.split(".")[0], version) if p)
            path = self._folder / f"{stem}.json"
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise LabkitError(
                    tr(
                        "读不了 {k} 的结构定义 {p}：{e}",
                        "cannot read the schema of {k} at {p}: {e}",
                        k=kind,
                        p=path,
                        e=exc,
                    )
                ) from exc
            self._validators[key] = self._jsonschema.Draft202012Validator(schema, registry=self._registry)
        return self._validators[key]

    def issues(self, doc: dict[str, Any]) -> list[SchemaIssue]:
        """Every schema error of ``doc`` (its apiVersion and kind are served), in document order."""
        validator = self._validator(doc["apiVersion"], doc["kind"])
        out = []
        for error in validator.iter_errors(doc):
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            out.append(
                SchemaIssue(
                    tuple(error.absolute_path),
                    str(error.validator),
                    error.validator_value,
                    error.instance,
                    error.message,
                    tuple(known),
                )
            )
        return out


def load_schemas(version: str | None = None) -> SchemaSet:
    """One version's schemas, loaded once per process and reused (``None``: the newest)."""
    return _load(resolve_version(version))


@functools.cache
def _load(version: str) -> SchemaSet:
    major, minor = version.split(".")
    return SchemaSet(version, schema_root() / f"v{major}.{minor}.0-local-strict")
