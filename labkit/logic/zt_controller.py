"""Authorizing ZeroTier members (chapter 3): one interface to two controllers, pure.

Two real controllers answer the same three questions (which nodes asked to join, is this one
authorized, authorize it), each in its own dialect:

* **ZeroTier Central** (``my.zerotier.com``), base ``https://api.zerotier.com/api/v1``. Its
  OpenAPI description (https://docs.zerotier.com/openapi/central/v1.json, "All API requests must
  have an API token header specified in the ``Authorization: token xxxxx`` format"; the same form
  in https://docs.zerotier.com/api-central-examples) gives ``GET /network/{nwid}/member`` (a list
  of member objects: ``nodeId``, ``name``, ``config.authorized``, ``config.ipAssignments``) and
  ``POST /network/{nwid}/member/{node}`` with ``{"config": {"authorized": true}}``. The token is
  an API token of the instructor's account.
* **a self-hosted controller**: the network controller embedded in every ``zerotier-one`` (what
  ``../shared/tools/zerotier/lab.sh`` uses), on the daemon's local API
  ``http://127.0.0.1:<port>/controller/network/{nwid}/member`` (``GET``: ``{node: revision}``),
  ``GET``/``POST /controller/network/{nwid}/member/{node}`` (``{"authorized": true}``, optionally
  ``ipAssignments``), header ``X-ZT1-Auth: <the controller's authtoken.secret>``.

A token lives in a :class:`Secret`: its ``repr``/``str`` are masked, and the ``curl`` form of a
request (:meth:`Request.curl_argv`, what plans and evidence show) names where the token comes
from instead of the token. Nothing here does I/O; ``labkit.steps.zt_controller`` sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from labkit.errors import InvalidField
from labkit.hidden import Hidden
from labkit.i18n import field_name, tr
from labkit.logic.zerotier import API_HEADER, validate_network_id

__all__ = [
    "ACTIONS",
    "CENTRAL_URL",
    "KINDS",
    "LOCAL_URL",
    "MAX_MEMBERS",
    "TOKEN_ENV",
    "Action",
    "Controller",
    "Member",
    "Request",
    "Secret",
    "authorize_request",
    "http_problem",
    "is_loopback",
    "member_list_request",
    "member_request",
    "parse_member",
    "parse_member_list",
    "plan_actions",
    "validate_node_id",
]

CENTRAL_URL = "https://api.zerotier.com/api/v1"
LOCAL_URL = "http://127.0.0.1:9993"
#: Where the CLI (and the steps, when no token is given) read a Central API token.
TOKEN_ENV = "ZEROTIER_CENTRAL_TOKEN"
KINDS = ("central", "local")
#: At most this many members are read from one controller (a class is far smaller).
MAX_MEMBERS = 5000
#: What authorizing does to each wanted node.
ACTIONS = ("would_authorize", "authorized", "already_authorized", "not_member")

_NODE = re.compile(r"^[0-9a-f]{10}$")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def validate_node_id(value: object, field_name: str = "node") -> str:
    """A ZeroTier node id (a member's address): exactly 10 hex digits, lower-cased."""
    text = value.strip().lower() if isinstance(value, str) else value
    if not isinstance(text, str) or not _NODE.match(text):
        raise InvalidField(
            field_name,
            value,
            tr(
                "不是 ZeroTier 节点 ID（应为 10 位十六进制数字）", "is not a ZeroTier node id (10 hex digits)"
            ),
            tr(
                "节点 ID 是 zerotier-cli info 输出的第 3 列，例如 792a0124ab",
                "the node id is the third column of zerotier-cli info, e.g. 792a0124ab",
            ),
        )
    return text


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOOPBACK


class Secret(Hidden):
    """A controller's API token (:class:`~labkit.hidden.Hidden`: never shown); a bad one is an
    error on the ``token`` field."""

    __slots__ = ()

    def __init__(self, value: str) -> None:
        token = value.strip() if isinstance(value, str) else ""
        if not token or any(c.isspace() or not c.isprintable() for c in token) or len(token) > 4096:
            raise InvalidField(
                "token",
                "<hidden>",
                tr(
                    "不是有效的令牌（空的或含有空白/控制字符）",
                    "is not a usable token (empty, or has spaces)",
                ),
                tr("检查令牌文件或环境变量 {e}", "check the token file or the variable {e}", e=TOKEN_ENV),
            )
        super().__init__(token)


@dataclass(frozen=True)
class Controller:
    """Which controller and network: ``kind`` (``central`` / ``local``), base ``url``, ``network``.

    ``url`` defaults to :data:`CENTRAL_URL` / :data:`LOCAL_URL`; a test points it at its own
    server. A Central token is sent only over HTTPS, or to this machine (loopback).
    """

    kind: str
    network: str
    url: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidField(
                "controller", self.kind, tr("不是控制器类型", "is not a controller kind"), "central / local"
            )
        object.__setattr__(self, "network", validate_network_id(self.network))
        url = (self.url or (CENTRAL_URL if self.kind == "central" else LOCAL_URL)).rstrip("/")
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and parts.hostname and not (parts.query or parts.fragment)
        if ok and self.kind == "central" and parts.scheme != "https" and not is_loopback(url):
            ok = False
        if not ok or any(c.isspace() for c in url):
            raise InvalidField(
                "url",
                self.url,
                tr("不是可用的控制器地址", "is not a usable controller address"),
                tr(
                    "例如 {c}（Central 只用 https）或 {l}",
                    "e.g. {c} (Central only over https) or {l}",
                    c=CENTRAL_URL,
                    l=LOCAL_URL,
                ),
            )
        object.__setattr__(self, "url", url)

    @property
    def header(self) -> str:
        return "Authorization" if self.kind == "central" else API_HEADER

    def token_placeholder(self) -> str:
        return f"token <${TOKEN_ENV}>" if self.kind == "central" else "<authtoken.secret>"

    def path(self, node: str | None = None) -> str:
        base = f"/network/{self.network}" if self.kind == "central" else f"/controller/network/{self.network}"
        return f"{base}/member" + (f"/{validate_node_id(node)}" if node is not None else "")


@dataclass(frozen=True)
class Request:
    """One controller call. ``token`` is kept apart from the shown headers and never printed."""

    controller: Controller
    method: str
    url: str
    body: bytes | None = None
    token: Secret | None = field(default=None, repr=False, compare=False)

    def headers(self) -> dict[str, str]:
        """The headers to send (with the token: for the sender only, never for display)."""
        out = {"Accept": "application/json"}
        if self.body is not None:
            out["Content-Type"] = "application/json"
        if self.token is not None:
            value = self.token.reveal()
            out[self.controller.header] = f"token {value}" if self.controller.kind == "central" else value
        return out

    def curl_argv(self) -> list[str]:
        """The ``curl`` form for plans and evidence; the token is a placeholder."""
        argv = ["curl", "-sS", "-X", self.method]
        argv += ["-H", f"{self.controller.header}: {self.controller.token_placeholder()}"]
        if self.body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", self.body.decode()]
        return [*argv, self.url]


def member_list_request(ctrl: Controller, token: Secret | None = None) -> Request:
    return Request(ctrl, "GET", ctrl.url + ctrl.path(), None, token)


def member_request(ctrl: Controller, node: str, token: Secret | None = None) -> Request:
    return Request(ctrl, "GET", ctrl.url + ctrl.path(node), None, token)


def authorize_request(
    ctrl: Controller, node: str, token: Secret | None = None, addresses: Sequence[str] = ()
) -> Request:
    """``POST …/member/<node>``: ``{"config": {"authorized": true}}`` on Central, ``{"authorized":
    true}`` on the embedded controller; ``addresses`` become ``ipAssignments`` (else the pool's)."""
    config: dict[str, Any] = {"authorized": True}
    if addresses:
        config["ipAssignments"] = [str(a) for a in addresses]
    body = {"config": config} if ctrl.kind == "central" else config
    return Request(ctrl, "POST", ctrl.url + ctrl.path(node), json.dumps(body).encode(), token)


@dataclass(frozen=True)
class Member:
    """One member as a controller knows it; ``authorized`` is ``None`` until its record was read."""

    node: str
    authorized: bool | None = None
    addresses: tuple[str, ...] = ()
    name: str = ""

    def to_evidence(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "authorized": self.authorized,
            "addresses": list(self.addresses),
            "name": self.name,
        }


def _short(value: Any, limit: int = 64) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _addresses(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(a[:64] for a in value[:64] if isinstance(a, str))


def parse_member(kind: str, obj: Any) -> Member:
    """One member record → :class:`Member` (``ValueError`` when it is not one)."""
    if not isinstance(obj, dict):
        raise ValueError("not a member object")
    if kind == "central":
        node = obj.get("nodeId")
        if not isinstance(node, str) and isinstance(obj.get("id"), str):
            node = obj["id"][-10:]  # "<nwid>-<node>"
        config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    else:
        node = obj.get("address") or obj.get("id") or ""
        config = obj
    if not isinstance(node, str) or not _NODE.match(node):
        raise ValueError("no node id in the member object")
    auth = config.get("authorized")
    return Member(
        node=node,
        authorized=auth if isinstance(auth, bool) else None,
        addresses=_addresses(config.get("ipAssignments")),
        name=_short(obj.get("name")),
    )


def parse_member_list(kind: str, obj: Any) -> list[Member]:
    """The member list: Central's list of member objects, the embedded controller's
    ``{node: revision}`` (then ``authorized`` stays ``None``: each record is read on its own).
    Entries that are not members are skipped; at most :data:`MAX_MEMBERS`; ``ValueError`` when the
    answer is not a member list at all."""
    out: dict[str, Member] = {}
    if kind == "central":
        if not isinstance(obj, list):
            raise ValueError("not a member list")
        for item in obj[:MAX_MEMBERS]:
            try:
                member = parse_member(kind, item)
            except ValueError:
                continue
            out.setdefault(member.node, member)
    else:
        if not isinstance(obj, dict):
            raise ValueError("not a member map")
        for key in list(obj)[:MAX_MEMBERS]:
            if isinstance(key, str) and _NODE.match(key):
                out.setdefault(key, Member(key))
    return list(out.values())


@dataclass(frozen=True)
class Action:
    """What authorizing does to one wanted node: one of :data:`ACTIONS`."""

    node: str
    action: str
    label: str = ""
    addresses: tuple[str, ...] = ()

    def to_evidence(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "action": self.action,
            "label": self.label,
            "addresses": list(self.addresses),
        }


def plan_actions(wanted: Mapping[str, str], members: Mapping[str, Member], *, apply: bool) -> list[Action]:
    """Per wanted node (node → label): already authorized, not a member yet (a node is listed only
    after it tried to join), or to authorize (``authorized`` once applied, ``would_authorize`` in a
    dry run). Idempotent: an authorized member is never posted again."""
    out = []
    for node, label in wanted.items():
        member = members.get(node)
        if member is None:
            action = "not_member"
        elif member.authorized:
            action = "already_authorized"
        else:
            action = "authorized" if apply else "would_authorize"
        out.append(Action(node, action, label, member.addresses if member else ()))
    return out


def http_problem(ctrl: Controller, status: int | None, reason: str = "") -> str:
    """A failed controller call explained (HTTP status, or ``None`` for no answer at all)."""
    where = "ZeroTier Central" if ctrl.kind == "central" else ctrl.url
    if status in (401, 403):
        if ctrl.kind == "central":
            return tr(
                "Central 拒绝了 API 令牌（HTTP {s}）：令牌错误、已过期，或这个账号无权管理网络 {n}；"
                "在 my.zerotier.com 的 Account 页面新建令牌，放进环境变量 {e}",
                "Central refused the API token (HTTP {s}): it is wrong, expired, or this account may "
                "not manage network {n}; create a token on the Account page of my.zerotier.com and put "
                "it into the variable {e}",
                s=status,
                n=ctrl.network,
                e=TOKEN_ENV,
            )
        return tr(
            "控制器拒绝了令牌（HTTP {s}）：它与控制器节点的 authtoken.secret 不一致（用 {f} 或 {h} "
            "指向控制器的令牌/目录）",
            "the controller refused the token (HTTP {s}): it does not match the controller node's "
            "authtoken.secret (point {f} or {h} at the controller's token/folder)",
            s=status,
            f=field_name("token_file"),
            h=field_name("home"),
        )
    if status == 404:
        return tr(
            "{w} 上没有网络 {n}：网络 ID 抄错了，或它属于另一个控制器/账号",
            "{w} has no network {n}: the id has a typo, or it belongs to another controller/account",
            w=where,
            n=ctrl.network,
        )
    if status is None:
        return tr(
            "连不上控制器 {u}：{r}",
            "cannot reach the controller at {u}: {r}",
            u=ctrl.url,
            r=reason or tr("没有回答", "no answer"),
        )
    return tr(
        "控制器 {u} 回答 HTTP {s}{r}",
        "the controller at {u} answered HTTP {s}{r}",
        u=ctrl.url,
        s=status,
        r=f" ({reason[:120]})" if reason else "",
    )
