"""The local image registry of chapter 2b (course 2.3, 2.4.8): pure builders and parsers.

The course pushes images to MicroK8s' registry at ``localhost:32000``. labkit runs the real
distribution registry (Debian's ``docker-registry``) on a loopback port with a config file it
writes (:func:`registry_config`), tags and pushes an image through the Docker engine
(:func:`tag_call`, :func:`push_call`: SDK call + CLI line, like :mod:`labkit.logic.docker`) and reads
the registry's HTTP API back: ``/v2/`` (alive), ``/v2/_catalog``, ``/v2/<name>/tags/list`` and the
manifest digest (``HEAD /v2/<name>/manifests/<tag>`` with :data:`MANIFEST_ACCEPT`). The HTTP reads
are shown in plans as their ``curl`` form (:func:`curl_argv`).

Docker treats a registry on ``127.0.0.0/8`` as insecure (plain HTTP) by default, so a loopback
registry needs no ``/etc/docker/daemon.json`` entry (:func:`needs_insecure_entry`); a registry on
another host does (:mod:`labkit.logic.daemon_json`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic.docker import DockerCall
from labkit.logic.docker_names import parse_reference

__all__ = [
    "DEFAULT_ADDRESS",
    "MANIFEST_ACCEPT",
    "PushOutcome",
    "Registry",
    "curl_argv",
    "needs_insecure_entry",
    "parse_address",
    "parse_catalog",
    "parse_push_stream",
    "parse_tags",
    "push_call",
    "registry_config",
    "serve_argv",
    "tag_call",
    "target_reference",
    "valid_digest",
]

#: MicroK8s' registry add-on listens on port 32000; labkit's own defaults to the same port on loopback.
DEFAULT_ADDRESS = "127.0.0.1:32000"
#: What a manifest HEAD accepts: without these the registry answers with a schema-1 conversion
#: (or 404 for OCI content) and a digest that does not match what ``docker push`` printed.
MANIFEST_ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")


@dataclass(frozen=True)
class Registry:
    """A registry address ``host:port`` and the URLs of the API calls labkit reads."""

    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.address}/v2/"

    def catalog_url(self) -> str:
        return self.base + "_catalog"

    def tags_url(self, name: str) -> str:
        return f"{self.base}{name}/tags/list"

    def manifest_url(self, name: str, reference: str) -> str:
        return f"{self.base}{name}/manifests/{reference}"


def _bad_address(value: object, problem: str) -> InvalidField:
    return InvalidField(
        "address",
        value,
        problem,
        tr("例如 {d}（只监听本机回环地址）", "e.g. {d} (loopback only)", d=DEFAULT_ADDRESS),
    )


def parse_address(value: object, *, loopback_only: bool = True) -> Registry:
    """``host:port`` → :class:`Registry`; with ``loopback_only`` the host must be 127.x or localhost.

    labkit's registry has no authentication and no TLS: it must never listen beyond this machine.
    """
    if not isinstance(value, str) or ":" not in value:
        raise _bad_address(value, tr("不是 主机:端口", "is not host:port"))
    if "/" in value or value.startswith(("http:", "https:")):
        raise _bad_address(
            value, tr("只写 主机:端口，不要协议和路径", "give host:port only, no scheme or path")
        )
    host, _, port_text = value.rpartition(":")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _bad_address(value, tr("端口应为 1–65535", "the port must be 1-65535"))
    host = host.lower()
    if not _HOST.match(host):
        raise _bad_address(value, tr("主机名不合法", "has an invalid host name"))
    if loopback_only and not _is_loopback(host):
        raise _bad_address(
            value,
            tr(
                "不是本机回环地址：这个注册表没有认证，不能对外监听",
                "is not a loopback address: this registry has no authentication and must not listen "
                "beyond this machine",
            ),
        )
    return Registry(host, int(port_text))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def needs_insecure_entry(registry_host: str) -> bool:
    """Whether Docker needs ``insecure-registries`` for this plain-HTTP registry host.

    The engine treats ``127.0.0.0/8`` as insecure by default (``localhost`` resolves there), so a
    loopback registry needs no ``daemon.json`` change; any other host does.
    """
    host = registry_host.rpartition(":")[0] if ":" in registry_host else registry_host
    return not _is_loopback(host.lower())


def registry_config(storage_dir: str, registry: Registry) -> str:
    """The ``config.yml`` the registry is started with: filesystem storage, delete enabled, HTTP on
    ``registry.address``, warnings and errors only (no access log: its output is piped to the
    kernel that started it for as long as it runs). JSON-quoted scalars are valid YAML, so no YAML
    library is needed."""
    return (
        "version: 0.1\n"
        "log:\n"
        "  level: warn\n"
        "  accesslog:\n"
        "    disabled: true\n"
        "  fields:\n"
        "    service: registry\n"
        "storage:\n"
        "  filesystem:\n"
        f"    rootdirectory: {json.dumps(storage_dir)}\n"
        "  delete:\n"
        "    enabled: true\n"
        "http:\n"
        f"  addr: {json.dumps(registry.address)}\n"
        "  headers:\n"
        "    X-Content-Type-Options: [nosniff]\n"
    )


def serve_argv(config_path: str) -> list[str]:
    """``docker-registry serve CONFIG`` (the distribution registry's own command)."""
    return ["docker-registry", "serve", config_path]


def curl_argv(url: str, *, head: bool = False, accept: Iterable[str] = ()) -> list[str]:
    """The ``curl`` form of one HTTP read labkit makes (shown in plans, made with urllib)."""
    argv = ["curl", "-fsS"]
    if head:
        argv.append("-I")
    for media in accept:
        argv += ["-H", f"Accept: {media}"]
    return [*argv, url]


def target_reference(source: str, registry: Registry, name: str = "", tag: str = "") -> str:
    """``host:port/NAME:TAG`` for ``source``: NAME defaults to the source's path, TAG to its tag."""
    src = parse_reference(source, "source")
    if src.digest and not (tag or src.tag):
        raise InvalidField("tag", tag, tr("按摘要引用的镜像需要给出标签", "a digest reference needs a tag"))
    path = name or src.path
    ref = parse_reference(f"{registry.address}/{path}:{tag or src.tag_or_latest}", "name")
    if ref.domain != registry.address:
        raise InvalidField("name", name, tr("不能包含注册表地址", "must not contain a registry address"))
    return str(ref)


def tag_call(source: str, target: str) -> DockerCall:
    """``docker tag SOURCE TARGET`` (``api.tag``): a second name for the same image id."""
    ref = parse_reference(target, "target")
    return DockerCall(
        tr("给镜像打标签", "tag the image"),
        "api.tag",
        ("docker", "tag", source, target),
        (source, ref.name),
        {"tag": ref.tag_or_latest},
    )


def push_call(target: str) -> DockerCall:
    """``docker push TARGET`` (``api.push``, streamed: the engine reports errors in the stream)."""
    ref = parse_reference(target, "target")
    return DockerCall(
        tr("推送镜像", "push the image"),
        "api.push",
        ("docker", "push", target),
        (ref.name,),
        {"tag": ref.tag_or_latest, "stream": True, "decode": True},
    )


@dataclass(frozen=True)
class PushOutcome:
    """What a ``docker push`` stream said: the manifest digest and size, or the error."""

    digest: str = ""
    size: int | None = None
    error: str = ""
    statuses: list[str] = field(default_factory=list)


def parse_push_stream(items: Iterable[Any]) -> PushOutcome:
    """Read the decoded push stream: ``aux.Digest`` / ``aux.Size`` on success, ``error`` otherwise.

    Anything that is not an object is ignored; the last status lines are kept for the evidence.
    """
    digest, size, error, statuses = "", None, "", []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if item.get("error") or item.get("errorDetail"):
            detail = item.get("errorDetail")
            text = item.get("error") or (detail.get("message") if isinstance(detail, Mapping) else "")
            error = str(text or detail)
        aux = item.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("Digest"), str):
            if _DIGEST.match(aux["Digest"]):
                digest = aux["Digest"]
            if isinstance(aux.get("Size"), int):
                size = aux["Size"]
        status = item.get("status")
        if isinstance(status, str) and not item.get("progressDetail"):
            statuses.append(status if not item.get("id") else f"{item['id']}: {status}")
    return PushOutcome(digest if not error else "", size, error, statuses[-8:])


def _json_object(body: bytes | str) -> Mapping[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, Mapping) else {}


def parse_catalog(body: bytes | str) -> list[str]:
    """``{"repositories": [...]}`` → the repository names (strings only; anything else → [])."""
    repos = _json_object(body).get("repositories")
    return [r for r in repos if isinstance(r, str)] if isinstance(repos, list) else []


def parse_tags(body: bytes | str) -> list[str]:
    """``{"name": ..., "tags": [...]}`` → the tags (``tags`` is ``null`` for an emptied repository)."""
    tags = _json_object(body).get("tags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def valid_digest(text: object) -> str:
    """``text`` if it is a ``sha256:<64 hex>`` digest, else ``""``."""
    return text if isinstance(text, str) and _DIGEST.match(text) else ""
