"""``/etc/docker/daemon.json``: add an insecure registry by merging into the existing JSON (pure).

Course 2.4.8 writes ``{"insecure-registries": ["localhost:32000"]}`` into the file, which replaces
whatever was there (log options, data-root, proxies …). :func:`add_insecure_registry` parses the
current text, keeps every other key and their order, appends the registry to the list (once) and
returns the new text; text that is not a JSON object is refused with the line and column, so the
step leaves such a file untouched. The daemon reads the file only when it starts:
:data:`RESTART_ARGV`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import tr

__all__ = [
    "DAEMON_JSON",
    "KEY",
    "RESTART_ARGV",
    "Merge",
    "add_insecure_registry",
    "parse_daemon_json",
    "sample_daemon_json",
    "validate_registry",
]

DAEMON_JSON = "/etc/docker/daemon.json"
KEY = "insecure-registries"
#: What makes the engine read the file again (it is read only at start).
RESTART_ARGV = ("sudo", "systemctl", "restart", "docker")
_REGISTRY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")


@dataclass(frozen=True)
class Merge:
    """The result of a merge: the new text, whether it differs, the registries before and after."""

    text: str
    changed: bool
    before: list[str]
    after: list[str]


def validate_registry(value: object) -> str:
    """``host[:port]`` as ``insecure-registries`` takes it (a CIDR such as ``10.0.0.0/8`` too)."""
    if isinstance(value, str):
        host, slash, bits = value.partition("/")
        if _REGISTRY.match(host) and (not slash or bits.isdigit()):
            port = host.rpartition(":")[2] if ":" in host else "1"
            if 1 <= int(port) <= 65535:
                return value
    raise InvalidField(
        "registry",
        value,
        tr("不是 主机[:端口]", "is not host[:port]"),
        tr("例如 localhost:32000（不写 http:// 和路径）", "e.g. localhost:32000 (no http://, no path)"),
    )


def parse_daemon_json(text: str, path: str = DAEMON_JSON) -> dict[str, Any]:
    """The file's object; empty or blank text is ``{}``. Anything else that is not a JSON object
    (a syntax error, a list, a non-list ``insecure-registries``) raises :class:`InvalidField`."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidField(
            "daemon_json",
            path,
            tr(
                "不是合法的 JSON（第 {l} 行第 {c} 列：{m}），文件未改动",
                "is not valid JSON (line {l}, column {c}: {m}); the file was left untouched",
                l=exc.lineno,
                c=exc.colno,
                m=exc.msg,
            ),
            tr("先修好这个文件，再运行一次", "fix the file first, then run again"),
        ) from exc
    if not isinstance(data, dict):
        raise InvalidField(
            "daemon_json",
            path,
            tr("顶层不是 JSON 对象 {…}，文件未改动", "is not a JSON object {…} at the top; left untouched"),
            tr('daemon.json 应形如 {"键": 值}', 'daemon.json holds an object such as {"key": value}'),
        )
    current = data.get(KEY, [])
    if not isinstance(current, list) or not all(isinstance(r, str) for r in current):
        raise InvalidField(
            "daemon_json",
            path,
            tr("{k} 不是字符串列表，文件未改动", "{k} is not a list of strings; left untouched", k=KEY),
            tr('应形如 "{k}": ["localhost:32000"]', 'it should read "{k}": ["localhost:32000"]', k=KEY),
        )
    return data


def add_insecure_registry(text: str, registry: str, path: str = DAEMON_JSON) -> Merge:
    """Merge ``registry`` into ``text``'s ``insecure-registries`` (keeps every other key).

    Already listed → the text is returned unchanged (``changed=False``). The output is indented
    with two spaces and ends with a newline; non-ASCII text is kept as is.
    """
    registry = validate_registry(registry)
    data = parse_daemon_json(text, path)
    before = list(data.get(KEY, []))
    if registry in before:
        return Merge(text, False, before, before)
    after = [*before, registry]
    data[KEY] = after
    return Merge(json.dumps(data, indent=2, ensure_ascii=False) + "\n", True, before, after)


def sample_daemon_json() -> str:
    """A practice ``daemon.json`` with keys a real one often has (they must survive the merge)."""
    data = {
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "3"},
        "registry-mirrors": ["https://mirror.example.org"],
    }
    return json.dumps(data, indent=2) + "\n"
