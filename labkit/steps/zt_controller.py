"""Authorizing ZeroTier members (chapter 3, instructor side): ``ListMembers``, ``AuthorizeMembers``.

One interface to two controllers (:mod:`labkit.logic.zt_controller` builds the requests and
parses the answers): ZeroTier Central (``controller="central"``, token from ``token=``,
``token_file=`` or the variable ``ZEROTIER_CENTRAL_TOKEN``) and a self-hosted controller, the one
embedded in ``zerotier-one`` (``controller="local"``, token from ``token_file=`` or
``<home>/authtoken.secret``). This module is the HTTP boundary: urllib, no proxy for loopback,
every failure translated once (:func:`send`) into :class:`ControllerFailed` whose message says
what to do. The token is held as a :class:`~labkit.logic.zt_controller.Secret` and appears in no
plan, evidence, message or ``repr``: requests are recorded in their ``curl`` form with a
placeholder.

Authorizing changes the controller's configuration, so ``AuthorizeMembers`` is a dry run unless
``apply=True``; members already authorized are reported, never posted again.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import InvalidField, LabkitError
from labkit.i18n import consent_hint, tr
from labkit.logic import zerotier as zt
from labkit.logic import zt_controller as zc
from labkit.steps.base import Plan, RunContext, Step

__all__ = [
    "AuthorizeMembers",
    "ControllerFailed",
    "ListMembers",
    "local_controller_url",
    "read_token",
    "send",
]

_MAX_ANSWER = 8_000_000


class ControllerFailed(LabkitError):
    """A controller call failed: refused token, unknown network, no answer, an odd answer."""


def send(req: zc.Request, timeout: float = 10.0) -> Any:
    """Send one request and return its parsed JSON; every failure → :class:`ControllerFailed`.

    Loopback URLs bypass any proxy (the embedded controller, a test server); Central honours the
    usual ``https_proxy`` settings. Error messages never carry the token or the answer's body.
    """
    handlers = [urllib.request.ProxyHandler({})] if zc.is_loopback(req.url) else []
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(req.url, data=req.body, method=req.method, headers=req.headers())
    try:
        with opener.open(request, timeout=timeout) as resp:
            data = resp.read(_MAX_ANSWER + 1)
    except urllib.error.HTTPError as exc:
        raise ControllerFailed(zc.http_problem(req.controller, exc.code)) from None
    except TimeoutError:
        reason = tr("{t:g} 秒内没有回答", "no answer within {t:g} s", t=timeout)
        raise ControllerFailed(zc.http_problem(req.controller, None, reason)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, ConnectionRefusedError):
            reason = tr(
                "连接被拒绝（控制器没有运行，或端口不对）", "connection refused (not running, or wrong port)"
            )
        raise ControllerFailed(zc.http_problem(req.controller, None, str(reason)[:200])) from None
    if len(data) > _MAX_ANSWER:
        raise ControllerFailed(zc.http_problem(req.controller, 200, tr("回答太大", "answer too large")))
    try:
        return zt.parse_json(data.decode("utf-8", "replace")) if data.strip() else None
    except ValueError:
        raise ControllerFailed(
            zc.http_problem(req.controller, 200, tr("回答不是 JSON", "not JSON"))
        ) from None


def read_token(path: str, kind: str = "local") -> zc.Secret:
    """The token in ``path`` (first 4 KiB, whitespace stripped) or :class:`ControllerFailed`;
    ``kind`` (``local`` / ``central``) says where the right token is found."""
    try:
        with open(path, encoding="utf-8") as fh:
            return zc.Secret(fh.read(4096))
    except (OSError, UnicodeDecodeError, InvalidField) as exc:
        why = (
            exc.strerror if isinstance(exc, OSError) and exc.strerror else tr("内容无效", "unusable content")
        )
        where = (
            tr(
                "Central 的 API 令牌在 my.zerotier.com 的 Account 页面新建",
                "a Central API token is created on the Account page of my.zerotier.com",
            )
            if kind == "central"
            else tr(
                "控制器节点的令牌在它的 authtoken.secret 里，只有 root 能读",
                "a controller node's token is its authtoken.secret, readable by root only",
            )
        )
        raise ControllerFailed(
            tr(
                "读不到令牌文件 {p}（{w}）；{x}",
                "cannot read the token file {p} ({w}); {x}",
                p=path,
                w=why,
                x=where,
            )
        ) from None


def local_controller_url(home: str = zt.DEFAULT_HOME) -> str:
    """``http://127.0.0.1:<port>`` of the daemon whose home is ``home`` (its ``zerotier-one.port``)."""
    path = os.path.join(home, "zerotier-one.port")
    try:
        with open(path, encoding="ascii") as fh:
            return f"http://127.0.0.1:{zt.parse_port(fh.read(64))}"
    except (OSError, ValueError, UnicodeDecodeError):
        raise ControllerFailed(
            tr(
                "读不到 {p}：控制器所在的 zerotier-one 没有运行？（或用 --url 指定地址）",
                "cannot read {p}: is the controller's zerotier-one running? (or give --url)",
                p=path,
            )
        ) from None


class _ControllerStep(Step):
    """Shared plumbing: the controller, where its token comes from, one call per request."""

    timeout = 300.0

    def __init__(
        self,
        network: str,
        *,
        controller: str = "local",
        url: str | None = None,
        token: str | zc.Secret | None = None,
        token_file: str | None = None,
        home: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.ctrl = zc.Controller(controller, network, url or "")
        self._token = token if isinstance(token, zc.Secret) or token is None else zc.Secret(token)
        self.token_file = token_file
        self.home = home or zt.DEFAULT_HOME
        if not isinstance(timeout_s, int | float) or not 0 < timeout_s <= 120:
            raise InvalidField("timeout_s", timeout_s, tr("不是 0–120 秒", "is not 0–120 s"), "10")
        self.timeout_s = float(timeout_s)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.ctrl.kind}, {self.ctrl.network}, {self.ctrl.url})"

    def token_source(self) -> str:
        """Where the token comes from, for plans and messages (never the token itself)."""
        if self._token is not None:
            return tr("调用方传入", "given by the caller")
        if self.token_file:
            return self.token_file
        if self.ctrl.kind == "central":
            return tr("环境变量 {e}", "the variable {e}", e=zc.TOKEN_ENV)
        return os.path.join(self.home, "authtoken.secret")

    def secret(self) -> zc.Secret:
        if self._token is not None:
            return self._token
        if self.token_file:
            return read_token(self.token_file, self.ctrl.kind)
        if self.ctrl.kind == "central":
            value = os.environ.get(zc.TOKEN_ENV, "")
            if not value.strip():
                raise ControllerFailed(
                    tr(
                        "没有 Central API 令牌：在 my.zerotier.com 的 Account 页面新建一个，放进环境变量 {e}"
                        "（或令牌文件），不要写进笔记本",
                        "no Central API token: create one on the Account page of my.zerotier.com and put "
                        "it into the variable {e} (or a token file), never into a notebook",
                        e=zc.TOKEN_ENV,
                    )
                )
            try:
                return zc.Secret(value)
            except InvalidField as exc:
                raise ControllerFailed(str(exc)) from None
        return read_token(os.path.join(self.home, "authtoken.secret"))

    def unavailable(self, ctx: RunContext) -> str | None:
        try:
            self.secret()
        except ControllerFailed as exc:
            return str(exc)
        return None

    def _notes(self) -> list[str]:
        return [
            tr(
                "控制器：{k}（{u}），令牌取自 {t}，不显示",
                "controller: {k} ({u}); token from {t}, never shown",
                k=self.ctrl.kind,
                u=self.ctrl.url,
                t=self.token_source(),
            )
        ]

    def call(self, ctx: RunContext, req: zc.Request) -> Any:
        ctx.check_cancelled()
        ctx.record(req.curl_argv())
        return send(req, self.timeout_s)

    def members(
        self, ctx: RunContext, secret: zc.Secret, detail: Sequence[str] | None
    ) -> dict[str, zc.Member]:
        """The controller's members; on the embedded controller each record in ``detail`` (all
        when ``None``) is read too, since its list holds only node ids."""
        answer = self.call(ctx, zc.member_list_request(self.ctrl, secret))
        try:
            found = {m.node: m for m in zc.parse_member_list(self.ctrl.kind, answer)}
        except ValueError:
            raise ControllerFailed(
                zc.http_problem(self.ctrl, 200, tr("回答不是成员列表", "not a member list"))
            ) from None
        if self.ctrl.kind == "local":
            for node in [n for n in found if detail is None or n in detail]:
                found[node] = self.member(ctx, secret, node)
        return found

    def member(self, ctx: RunContext, secret: zc.Secret, node: str) -> zc.Member:
        answer = self.call(ctx, zc.member_request(self.ctrl, node, secret))
        try:
            return zc.parse_member(self.ctrl.kind, answer)
        except ValueError:
            raise ControllerFailed(
                zc.http_problem(self.ctrl, 200, tr("回答不是成员记录", "not a member record"))
            ) from None

    def _where(self) -> dict[str, Any]:
        return {"controller": self.ctrl.kind, "url": self.ctrl.url, "network": self.ctrl.network}


class ListMembers(_ControllerStep):
    """The controller's members of one network: node id, authorized or not, addresses.

    The embedded controller lists node ids only, so each member's record is read too: all of
    them, or only ``nodes`` when given (then the plan names each request exactly).
    """

    check_id = "ch3.zt.members"

    def __init__(self, network: str, *, nodes: Sequence[str] | None = None, **kw: Any) -> None:
        super().__init__(network, **kw)
        self.nodes = None if nodes is None else list(_wanted(nodes))

    def plan(self) -> Plan:
        probes = [zc.member_list_request(self.ctrl).curl_argv()]
        if self.ctrl.kind == "local" and self.nodes is not None:
            probes += [zc.member_request(self.ctrl, n).curl_argv() for n in self.nodes]
        elif self.ctrl.kind == "local":
            each = zc.Request(self.ctrl, "GET", self.ctrl.url + self.ctrl.path() + "/<node>")
            probes.append(each.curl_argv())
        return Plan(
            "ListMembers",
            tr("列出网络 {n} 的成员", "list the members of network {n}", n=self.ctrl.network),
            probes=probes,
            notes=self._notes(),
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        found = self.members(ctx, self.secret(), self.nodes)
        if self.nodes is not None:
            found = {n: m for n, m in found.items() if n in self.nodes}
        return {**self._where(), "members": [m.to_evidence() for m in found.values()]}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        members = evidence["members"]
        auth = sum(1 for m in members if m["authorized"])
        return CheckResult.passed(
            self.check_id,
            tr(
                "网络 {n}：{k} 个成员，其中 {a} 个已授权",
                "network {n}: {k} member(s), {a} authorized",
                n=self.ctrl.network,
                k=len(members),
                a=auth,
            ),
            **evidence,
        )


def _wanted(nodes: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(nodes, str) or not isinstance(nodes, Sequence | Mapping):
        raise InvalidField(
            "nodes", nodes, tr("不是节点 ID 列表", "is not a list of node ids"), '["792a0124ab"]'
        )
    items = nodes.items() if isinstance(nodes, Mapping) else ((n, "") for n in nodes)
    out: dict[str, str] = {}
    for node, label in items:
        out.setdefault(zc.validate_node_id(node, "nodes"), str(label)[:200])
    if not out:
        raise InvalidField(
            "nodes", [], tr("是空的", "is empty"), tr("至少给一个节点 ID", "give at least one node id")
        )
    return out


class AuthorizeMembers(_ControllerStep):
    """Authorize ``nodes`` (node ids, or node → label such as a student id) on the controller.

    Dry run unless ``apply=True``: it reads the members and reports, per node, ``would_authorize``,
    ``already_authorized`` or ``not_member`` (a node appears on the controller only after it tried
    to join). With ``apply=True`` it posts only for members not yet authorized (``authorized``),
    then reads each one back. ``addresses`` (node → list of IPs) pins addresses; else the
    network's pool assigns them.
    """

    check_id = "ch3.zt.authorize"

    def __init__(
        self,
        network: str,
        nodes: Sequence[str] | Mapping[str, str],
        *,
        apply: bool = False,
        addresses: Mapping[str, Sequence[str]] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(network, **kw)
        self.wanted = _wanted(nodes)
        self.apply = bool(apply)
        self.addresses = {zc.validate_node_id(k, "addresses"): tuple(v) for k, v in (addresses or {}).items()}

    def _post(self, node: str, secret: zc.Secret | None = None) -> zc.Request:
        return zc.authorize_request(self.ctrl, node, secret, self.addresses.get(node, ()))

    def plan(self) -> Plan:
        probes = [zc.member_list_request(self.ctrl).curl_argv()]
        probes += [zc.member_request(self.ctrl, n).curl_argv() for n in self.wanted]
        if self.apply:
            note = tr(
                "只为尚未授权的成员发送 POST；已授权的只报告，不在控制器上的节点要先 join",
                "POST only for members not authorized yet; authorized ones are reported, nodes not on "
                "the controller must join first",
            )
        else:
            note = tr(
                "演练：只读取成员，什么都不改；要真正授权请{c}",
                "dry run: reads the members and changes nothing; to authorize, {c}",
                c=consent_hint("apply"),
            )
        return Plan(
            "AuthorizeMembers",
            tr(
                "在网络 {n} 上授权 {k} 个节点",
                "authorize {k} node(s) on network {n}",
                n=self.ctrl.network,
                k=len(self.wanted),
            ),
            alternatives=[self._post(n).curl_argv() for n in self.wanted] if self.apply else [],
            probes=probes,
            notes=[note, *self._notes()],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        secret = self.secret()
        found = self.members(ctx, secret, list(self.wanted))
        actions = zc.plan_actions(self.wanted, found, apply=self.apply)
        done: list[zc.Action] = []
        for act in actions:
            if act.action == "authorized":
                self.call(ctx, self._post(act.node, secret))
                back = self.member(ctx, secret, act.node)
                act = zc.Action(
                    act.node, "authorized" if back.authorized else "failed", act.label, back.addresses
                )
            done.append(act)
        counts = {a: sum(1 for x in done if x.action == a) for a in (*zc.ACTIONS, "failed")}
        return {
            **self._where(),
            "apply": self.apply,
            "members": len(found),
            "actions": [a.to_evidence() for a in done],
            "counts": {k: v for k, v in counts.items() if v},
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        c = evidence["counts"]
        summary = tr(
            "授权 {a}，本来已授权 {b}，尚未加入 {m}",
            "authorized {a}, already authorized {b}, not members yet {m}",
            a=c.get("authorized", c.get("would_authorize", 0)),
            b=c.get("already_authorized", 0),
            m=c.get("not_member", 0),
        )
        if c.get("failed"):
            return CheckResult.failed(
                self.check_id,
                tr(
                    "{k} 个成员发送授权后读回仍未授权；{s}",
                    "{k} member(s) still not authorized when read back; {s}",
                    k=c["failed"],
                    s=summary,
                ),
                **evidence,
            )
        if not self.apply:
            summary = tr(
                "演练，什么都没改：将要{s}；要真正授权请{c}",
                "dry run, nothing changed: would have {s}; to authorize, {c}",
                s=summary,
                c=consent_hint("apply"),
            )
        return CheckResult.passed(self.check_id, summary, **evidence)
