"""Chapter 3 ZeroTier steps: status, join (wait for OK), list networks, leave (with consent).

Each step talks to the local ``zerotier-one`` daemon through ``zerotier-cli`` (``via="cli"``, the
default: text output, or ``-j`` with ``json_output=True``) or through the daemon's local JSON API
(``via="api"``: ``http://127.0.0.1:<zerotier-one.port>`` with the ``X-ZT1-Auth`` header from
``authtoken.secret``). Argv, requests, parsers and explanations come from
:mod:`labkit.logic.zerotier`; the HTTP calls live here (urllib, no proxy: loopback only) and are
recorded in their ``curl`` form with the token masked, so a plan shows exactly what is asked.

``Client.prefix`` runs the CLI elsewhere, e.g. inside ``lab.sh``'s network namespace.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import ConsentRequired, InvalidField, LabkitError
from labkit.i18n import consent_hint, tr
from labkit.logic import zerotier as zt
from labkit.steps.base import Plan, RunContext, Step

__all__ = [
    "LAB_ENV_VAR",
    "SEED_NETWORK",
    "ZeroTierFailed",
    "ZtJoin",
    "ZtLeave",
    "ZtListNetworks",
    "ZtStatus",
    "ZtTarget",
    "find_target",
]

#: A lab folder of ``../shared/tools/zerotier/lab.sh up DIR`` (it holds ``lab.env``): the chapter's
#: panels then talk to the lab's node 2, the "student" machine, instead of this machine's daemon.
LAB_ENV_VAR = "LABKIT_ZT_LAB"
#: The course's example network id (3.3).
SEED_NETWORK = "8056c2e21c000001"

#: op → (CLI verb, API method, API path); ``{n}`` is the network id.
_OPS = {
    "info": ("info", "GET", "/status"),
    "listpeers": ("listpeers", "GET", "/peer"),
    "listnetworks": ("listnetworks", "GET", "/network"),
    "join": ("join", "POST", "/network/{n}"),
    "leave": ("leave", "DELETE", "/network/{n}"),
}
_HOST_PROBLEMS = ("authtoken.secret", "zerotier-one")


class ZeroTierFailed(LabkitError):
    """The daemon answered, but not with what was asked (bad token, refused id, odd output)."""


def _install_hint() -> str:
    return tr(
        "安装 ZeroTier：curl -s https://install.zerotier.com | sudo bash（或 ZeroTier 官方软件包）",
        "install ZeroTier: curl -s https://install.zerotier.com | sudo bash (or ZeroTier's own packages)",
    )


@dataclass(frozen=True)
class ZtTarget:
    """The daemon chapter 3's panels talk to, and what the lab knows beside it.

    ``network`` and ``peer`` (the other member's ZeroTier address) come from the lab; ``None`` on
    a student's machine, where the student types the network id."""

    client: zt.Client
    network: str | None = None
    peer: str | None = None
    lab_dir: str | None = None
    #: The lab only: node 1's address on the underlying veth (throughput's comparison link) and
    #: the argv prefix that runs a command in node 1's namespace (where the iperf3 server runs).
    peer_underlay: str | None = None
    peer_prefix: tuple[str, ...] = ()

    def step_kwargs(self) -> dict[str, Any]:
        """Keywords every ZeroTier step takes: ``cli``, ``home``, ``port``, ``prefix``."""
        c = self.client
        return {"cli": c.cli, "home": c.home, "port": c.port, "prefix": c.prefix}


def find_target(environ: Mapping[str, str] | None = None) -> ZtTarget:
    """``$LABKIT_ZT_LAB`` (a lab folder holding ``lab.env``, or that file) → the lab's node 2 with
    its network id and node 1's address; unset → this machine's daemon (``zerotier-cli`` on PATH,
    ``/var/lib/zerotier-one``). :class:`InvalidField` naming the variable when its lab is gone."""
    where = (os.environ if environ is None else environ).get(LAB_ENV_VAR, "").strip()
    if not where:
        return ZtTarget(zt.Client())
    path = where if os.path.isfile(where) else os.path.join(where, "lab.env")
    try:
        with open(path, encoding="utf-8") as fh:
            env = zt.parse_lab_env(fh.read(64_000))
    except (OSError, UnicodeDecodeError):
        raise InvalidField(
            LAB_ENV_VAR,
            where,
            tr("里没有可读的 lab.env（实验网络没有运行？）", "holds no readable lab.env (is the lab up?)"),
            tr("先运行 lab.sh up DIR，或取消这个环境变量", "run lab.sh up DIR first, or unset the variable"),
        ) from None
    return ZtTarget(
        zt.client_from_lab_env(env, 2),
        env.get("NWID") or None,
        env.get("ADDR1") or None,
        env.get("ZT_LAB_DIR") or os.path.dirname(path),
        env.get("UNDERLAY1") or None,
        zt.client_from_lab_env(env, 1).prefix,
    )


class _ZtStep(Step):
    """Shared plumbing: how to reach the daemon and one call per operation (CLI or API)."""

    timeout = 120.0

    def __init__(
        self,
        *,
        cli: str = "zerotier-cli",
        home: str | None = None,
        port: int | None = None,
        prefix: Sequence[str] = (),
        via: str = "cli",
        json_output: bool = False,
        token_file: str | None = None,
    ) -> None:
        if via not in ("cli", "api"):
            raise InvalidField(
                "via", via, tr("不是连接方式", "is not a way to reach the daemon"), "cli / api"
            )
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise InvalidField("port", port, tr("不是端口号", "is not a port"), tr("例如 9993", "e.g. 9993"))
        self.client = zt.Client(cli, home, port, tuple(str(p) for p in prefix))
        self.via = via
        self.json_output = json_output
        self.token_file = token_file

    # -- what is shown and run ----------------------------------------------------------------
    def _argv(self, op: str, nwid: str = "") -> list[str]:
        verb, method, path = _OPS[op]
        if self.via == "cli":
            return zt.cli_argv(self.client, verb, *([nwid] if nwid else []), as_json=self.json_output)
        port = str(self.client.port) if self.client.port else "<zerotier-one.port>"
        body = {} if method == "POST" else None
        shown = zt.api_request(1, "-", path.format(n=nwid), method, body)
        return [a.replace("127.0.0.1:1/", f"127.0.0.1:{port}/") for a in shown.curl_argv()]

    def _reach_notes(self) -> list[str]:
        if self.via == "api":
            return [
                tr(
                    "通过本地 JSON API（令牌取自 {t}，不显示）",
                    "through the local JSON API (token from {t}, never shown)",
                    t=self.token_file or f"{self.client.home_dir}/authtoken.secret",
                )
            ]
        return []

    # -- host checks --------------------------------------------------------------------------
    def unavailable(self, ctx: RunContext) -> str | None:
        if self.via == "api":
            try:
                self._port()
                self._token()
            except ZeroTierFailed as exc:
                return str(exc)
            return None
        tool = self.client.prefix[0] if self.client.prefix else self.client.cli
        for name in {tool, self.client.cli}:
            if shutil.which(name) is None:
                return tr("找不到 {t}；{h}", "{t} not found; {h}", t=name, h=_install_hint())
        done = ctx.run(self._argv("info"), check=False, timeout=15)
        problem = zt.cli_problem("info", done.stdout, done.stderr, self.client.home_dir)
        if problem and any(p in problem for p in _HOST_PROBLEMS):
            return problem
        return None

    def _port(self) -> int:
        if self.client.port:
            return self.client.port
        path = os.path.join(self.client.home_dir, "zerotier-one.port")
        try:
            with open(path, encoding="ascii") as fh:
                return zt.parse_port(fh.read(64))
        except (OSError, ValueError, UnicodeDecodeError):
            raise ZeroTierFailed(
                tr(
                    "读不到 {p}：zerotier-one 守护进程没有运行？（sudo systemctl start zerotier-one）",
                    "cannot read {p}: is the zerotier-one daemon running? "
                    "(sudo systemctl start zerotier-one)",
                    p=path,
                )
            ) from None

    def _token(self) -> str:
        paths = (
            [self.token_file]
            if self.token_file
            else [
                os.path.join(self.client.home_dir, "authtoken.secret"),
                os.path.expanduser("~/.zeroTierOneAuthToken"),
            ]
        )
        for path in paths:
            try:
                with open(path, encoding="utf-8") as fh:
                    return zt.parse_token(fh.read(4096))
            except (OSError, ValueError, UnicodeDecodeError):
                continue
        raise ZeroTierFailed(zt.token_unreadable(self.client.home_dir))

    # -- one operation --------------------------------------------------------------------------
    def call(self, ctx: RunContext, op: str, nwid: str = "") -> Any:
        """Run one operation and return its parsed answer (objects for JSON, text otherwise)."""
        if self.via == "api":
            return self._api(ctx, op, nwid)
        done = ctx.run(self._argv(op, nwid), check=False, timeout=15)
        problem = zt.cli_problem(op, done.stdout, done.stderr, self.client.home_dir)
        if problem:
            raise ZeroTierFailed(problem)
        if self.json_output and op not in ("join", "leave"):
            try:
                return zt.parse_json(done.stdout)
            except ValueError as exc:
                raise ZeroTierFailed(f"zerotier-cli -j {op}: {exc}") from None
        return done.stdout

    def _api(self, ctx: RunContext, op: str, nwid: str) -> Any:
        _verb, method, path = _OPS[op]
        req = zt.api_request(
            self._port(), self._token(), path.format(n=nwid), method, {} if method == "POST" else None
        )
        ctx.record(self._argv(op, nwid))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(req.url, data=req.body, method=req.method, headers=req.headers)
        try:
            with opener.open(request, timeout=10) as resp:
                text = resp.read(4_000_000).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                raise ZeroTierFailed(
                    tr(
                        "守护进程拒绝了认证令牌（401）：{t} 里的令牌与 {h}/authtoken.secret 不一致",
                        "the daemon rejected the authentication token (401): the token in {t} does "
                        "not match {h}/authtoken.secret",
                        t=self.token_file or f"{self.client.home_dir}/authtoken.secret",
                        h=self.client.home_dir,
                    )
                ) from None
            raise ZeroTierFailed(f"{req.method} {path.format(n=nwid)}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ZeroTierFailed(
                tr(
                    "连不上 zerotier-one 守护进程（{u}）：{e}",
                    "cannot reach the zerotier-one daemon ({u}): {e}",
                    u=req.url,
                    e=getattr(exc, "reason", exc),
                )
            ) from None
        try:
            return zt.parse_json(text)
        except ValueError as exc:
            raise ZeroTierFailed(f"{req.method} {path.format(n=nwid)}: {exc}") from None

    def node_info(self, ctx: RunContext) -> zt.NodeInfo:
        """``info`` / ``GET /status``: this node's 10-hex address, version and state."""
        info = self.call(ctx, "info")
        try:
            return zt.parse_info(info) if isinstance(info, str) else zt.parse_info_json(info)
        except ValueError as exc:
            raise ZeroTierFailed(f"info: {exc}") from None

    def networks(self, ctx: RunContext) -> list[zt.Network]:
        answer = self.call(ctx, "listnetworks")
        return zt.parse_listnetworks(answer) if isinstance(answer, str) else zt.parse_networks_json(answer)


class ZtStatus(_ZtStep):
    """``zerotier-cli info`` + ``listpeers``: this node's address, ONLINE or not, its peers."""

    check_id = "ch3.zt.status"

    def plan(self) -> Plan:
        return Plan(
            "ZtStatus",
            tr("读取本节点地址、在线状态和对端列表", "read this node's address, online state and peers"),
            commands=[self._argv("info"), self._argv("listpeers")],
            probes=[self._argv("info")],
            notes=self._reach_notes(),
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        node = self.node_info(ctx)
        peers = self.call(ctx, "listpeers")
        parsed = zt.parse_listpeers(peers) if isinstance(peers, str) else zt.parse_peers_json(peers)
        return {
            "node": node.address,
            "version": node.version,
            "state": node.state,
            "peers": [
                {"address": p.address, "role": p.role, "path": p.path, "latency_ms": p.latency_ms}
                for p in parsed
            ],
            "via": self.via,
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        reached = sum(1 for p in evidence["peers"] if p["path"])
        if evidence["state"] in ("ONLINE", "TUNNELED"):
            return CheckResult.passed(
                self.check_id,
                tr(
                    "节点 {n}（{v}）{s}，{r} 个对端有直连路径",
                    "node {n} ({v}) is {s}, {r} peer(s) with a path",
                    n=evidence["node"],
                    v=evidence["version"],
                    s=evidence["state"],
                    r=reached,
                ),
                **evidence,
            )
        return CheckResult.failed(
            self.check_id,
            tr(
                "节点 {n} 处于 OFFLINE：连不上根服务器（planet/moon），检查网络和防火墙（UDP 9993）",
                "node {n} is OFFLINE: it cannot reach the root servers (planet/moon); check the network "
                "and the firewall (UDP 9993)",
                n=evidence["node"],
            ),
            **evidence,
        )


class ZtListNetworks(_ZtStep):
    """``zerotier-cli listnetworks``: every joined network with its state explained."""

    check_id = "ch3.zt.listnetworks"

    def plan(self) -> Plan:
        return Plan(
            "ZtListNetworks",
            tr("列出已加入的网络及其状态", "list the joined networks and their state"),
            commands=[self._argv("listnetworks")],
            probes=[self._argv("info")],
            notes=self._reach_notes(),
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        nets = self.networks(ctx)
        return {
            "networks": [{**n.to_evidence(), "explained": zt.explain_state(n.status, n.nwid)} for n in nets],
            "via": self.via,
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        nets = evidence["networks"]
        lines = tr("；", "; ").join(n["explained"] for n in nets) or tr(
            "没有加入任何网络", "no network joined"
        )
        return CheckResult.passed(
            self.check_id, tr("{k} 个网络：{l}", "{k} network(s): {l}", k=len(nets), l=lines), **evidence
        )


class ZtJoin(_ZtStep):
    """``zerotier-cli join NWID``, then wait (with progress) until the network is OK.

    Already joined and OK → "already present, verified". A wait that ends before OK fails with
    the last state explained (ACCESS_DENIED: ask the admin to authorize this node …); NOT_FOUND
    and PORT_ERROR end the wait at once.
    """

    check_id = "ch3.zt.join"

    def __init__(self, network: str, *, wait_s: float = 60.0, poll_s: float = 1.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.network = zt.validate_network_id(network)
        if isinstance(wait_s, bool) or not isinstance(wait_s, (int, float)) or not 1 <= wait_s <= 600:
            raise InvalidField(
                "wait_s",
                wait_s,
                tr("应为 1 到 600 秒", "must be 1 to 600 seconds"),
                tr(
                    "例如 60；私有网络等管理员授权时可以填长一些",
                    "e.g. 60; longer while waiting for the admin",
                ),
            )
        self.wait_s = float(wait_s)
        self.poll_s = float(poll_s)

    def plan(self) -> Plan:
        return Plan(
            "ZtJoin",
            tr(
                "加入网络 {n}，最多等待 {w:.0f} 秒直到状态为 OK",
                "join network {n} and wait up to {w:.0f} s for the state OK",
                n=self.network,
                w=self.wait_s,
            ),
            commands=[self._argv("join", self.network)],
            probes=[self._argv("info"), self._argv("listnetworks")],
            notes=[
                tr(
                    "私有网络要先由管理员授权本节点，否则停在 ACCESS_DENIED",
                    "a private network stays ACCESS_DENIED until the admin authorizes this node",
                ),
                *self._reach_notes(),
            ],
        )

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        net = zt.find_network(self.networks(ctx), self.network)
        if net is None or net.status != "OK":
            return None
        return {
            "node": self.node_info(ctx).address,
            **net.to_evidence(),
            "states": ["OK"],
            "verified_by": tr("listnetworks：状态 OK", "listnetworks: status OK"),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        # The node id goes into the evidence first: a student stuck at ACCESS_DENIED hands it in,
        # and the instructor authorizes it from the grades (``labkit vlan authorize``).
        node = self.node_info(ctx).address
        self.call(ctx, "join", self.network)
        states: list[str] = []
        net: zt.Network | None = None
        start = time.monotonic()
        while True:
            ctx.check_cancelled()
            net = zt.find_network(self.networks(ctx), self.network)
            status = net.status if net else "-"
            if not states or states[-1] != status:
                states.append(status)
                ctx.say(zt.explain_state(status, self.network))
            elapsed = time.monotonic() - start
            ctx.progress(1.0 if status == "OK" else elapsed / self.wait_s)
            if status in ("OK", "NOT_FOUND", "PORT_ERROR") or elapsed >= self.wait_s:
                break
            time.sleep(self.poll_s)
        evidence = net.to_evidence() if net else {"nwid": self.network, "status": "-", "addresses": []}
        return {"node": node, **evidence, "states": states, "waited_s": round(time.monotonic() - start, 1)}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        status = evidence["status"]
        if status == "OK":
            return CheckResult.passed(
                self.check_id,
                tr(
                    "已加入 {n}，地址 {a}",
                    "joined {n}, address {a}",
                    n=self.network,
                    a=", ".join(evidence["addresses"]) or "-",
                ),
                **evidence,
            )
        return CheckResult.failed(
            self.check_id,
            tr(
                "没有等到 OK，最后状态 {e}（本节点 ID：{n}）",
                "did not reach OK; last state {e} (this node's id: {n})",
                e=zt.explain_state(status, self.network),
                n=evidence.get("node", "-"),
            ),
            **evidence,
        )


class ZtLeave(_ZtStep):
    """``zerotier-cli leave NWID`` (needs ``confirm=True``): the virtual interface goes away.

    ``leave`` of a network not joined still prints ``200 leave OK``, so the step reads
    ``listnetworks`` before and after instead of trusting that answer.
    """

    check_id = "ch3.zt.leave"

    def __init__(self, network: str, *, confirm: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.network = zt.validate_network_id(network)
        self.confirm = bool(confirm)

    def plan(self) -> Plan:
        return Plan(
            "ZtLeave",
            tr(
                "离开网络 {n}（虚拟网卡和地址会消失）",
                "leave network {n} (its interface and address go away)",
                n=self.network,
            ),
            commands=[self._argv("leave", self.network)],
            probes=[self._argv("info"), self._argv("listnetworks")],
            notes=[*([] if self.confirm else [consent_hint("confirm")]), *self._reach_notes()],
        )

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        if zt.find_network(self.networks(ctx), self.network) is not None:
            return None
        return {"left": True, "verified_by": tr("listnetworks：未加入该网络", "listnetworks: not joined")}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if not self.confirm:
            raise ConsentRequired(
                tr("离开网络 {n}", "leave network {n}", n=self.network),
                tr(
                    "离开后这台机器在该网络上的地址会消失；确认请{c}",
                    "this machine loses its address on that network; to go ahead, {c}",
                    c=consent_hint("confirm"),
                ),
                keyword="confirm",
            )
        self.call(ctx, "leave", self.network)
        still = zt.find_network(self.networks(ctx), self.network)
        return {"left": still is None, "status": still.status if still else "-"}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        if evidence["left"]:
            return CheckResult.passed(
                self.check_id, tr("已不在网络 {n} 中", "no longer in network {n}", n=self.network), **evidence
            )
        return CheckResult.failed(
            self.check_id,
            tr("leave 之后仍列出网络 {n}", "network {n} still listed after leave", n=self.network),
            **evidence,
        )
