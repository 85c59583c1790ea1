"""Reach the other members of a virtual LAN (course 3.3, ``ch3.zt.reach``): ping and TCP, timed.

:class:`ReachPeers` probes each peer address twice, both as commands through the runner with the
same argv ``prefix`` (empty on a student's machine, ``ip netns exec NS`` in ``lab.sh``'s lab):

* ``ping -c N -W T -n ADDR`` when ``ping`` is installed (otherwise the plan and the result say so
  and only TCP is tried); the average round-trip time and the loss are recorded;
* a TCP connection to ``port`` (default 9993: every ``zerotier-one`` listens there, so a peer's own
  daemon is the target), made by :mod:`labkit.steps.tcpprobe` run as ``python -I tcpprobe.py ADDR
  PORT TIMEOUT``. A command, not a socket in this process, so that in the lab it starts inside the
  namespace the prefix names; it times ``connect()`` itself, not the interpreter's start.

With ``network`` the step also reads this node's ZeroTier address and its addresses on that
network (``zerotier-cli info`` and ``listnetworks`` through ``client``), so the class matrix
(``labkit vlan matrix``) can tell whose evidence this is. The evidence is exactly
``{"node", "nwid", "addresses", "peers": [{address, reached, ping_ms, tcp_ms, port, loss}]}``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.i18n import field_name, tr
from labkit.logic import reach as rc
from labkit.logic import zerotier as zt
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.zerotier import ZeroTierFailed

__all__ = ["ReachPeers"]

TCP_PROBE = str(Path(__file__).with_name("tcpprobe.py"))


def _check_int(name: str, value: object, low: int, high: int, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidField(
            name,
            value,
            tr("应为 {a} 到 {b} 之间的整数", "must be a whole number from {a} to {b}", a=low, b=high),
            tr("例如 {e}", "e.g. {e}", e=example),
        )
    return value


class ReachPeers(Step):
    """Ping and a timed TCP connection to each peer; passes when every peer was reached."""

    check_id = "ch3.zt.reach"
    timeout = 600.0

    def __init__(
        self,
        peers: Sequence[str] | str,
        *,
        port: int = zt.DEFAULT_PORT,
        count: int = 3,
        prefix: Sequence[str] = (),
        network: str | None = None,
        client: zt.Client | None = None,
        wait_s: int = 2,
        tcp_timeout_s: int = 3,
    ) -> None:
        blank = peers is None or (isinstance(peers, str) and not peers.strip())
        #: Empty until the student types a classmate's address (:meth:`unfilled`).
        blank = blank or (isinstance(peers, list | tuple) and not peers)
        self.peers = [] if blank else rc.validate_peers(peers)
        self.port = _check_int("port", port, 1, 65535, "9993")
        self.count = _check_int("count", count, 1, 20, "3")
        self.wait_s = _check_int("wait_s", wait_s, 1, 10, "2")
        self.tcp_timeout_s = _check_int("tcp_timeout_s", tcp_timeout_s, 1, 30, "3")
        self.prefix = tuple(str(p) for p in prefix)
        self.network = zt.validate_network_id(network) if network is not None else None
        self.client = client if client is not None else zt.Client(prefix=self.prefix)
        #: Per peer, why it was not reached (filled by ``run``; the message names it).
        self._why: dict[str, str] = {}

    # -- what runs ------------------------------------------------------------------------------
    def _has_ping(self) -> bool:
        return shutil.which("ping") is not None

    def _zt_argv(self) -> list[list[str]]:
        if self.network is None:
            return []
        return [zt.cli_argv(self.client, "info"), zt.cli_argv(self.client, "listnetworks")]

    def _ping_argv(self, address: str) -> list[str]:
        return rc.ping_argv(address, count=self.count, wait_s=self.wait_s, prefix=self.prefix)

    def _tcp_argv(self, address: str) -> list[str]:
        return rc.tcp_probe_argv(
            sys.executable, TCP_PROBE, address, self.port, timeout_s=self.tcp_timeout_s, prefix=self.prefix
        )

    def _commands(self) -> list[list[str]]:
        cmds = self._zt_argv()
        for address in self.peers:
            if self._has_ping():
                cmds.append(self._ping_argv(address))
            cmds.append(self._tcp_argv(address))
        return cmds

    def plan(self) -> Plan:
        notes = [
            tr(
                "TCP 连接由 labkit 的小助手 tcpprobe.py 作为命令运行（与 ping 在同一网络环境），"
                "只计 connect() 的耗时；端口 {p} 是 zerotier-one 自己监听的端口",
                "the TCP connection is made by labkit's helper tcpprobe.py run as a command (where ping "
                "runs too) and only connect() is timed; port {p} is where zerotier-one itself listens",
                p=self.port,
            )
        ]
        if not self._has_ping():
            notes.append(
                tr(
                    "没有 ping 命令：只测 TCP（安装 Debian 包 iputils-ping）",
                    "no ping command: TCP only (install the Debian package iputils-ping)",
                )
            )
        if self.network:
            notes.append(
                tr(
                    "先读取本节点地址和它在网络 {n} 里的地址（zerotier-cli info、listnetworks）",
                    "first read this node's address and its addresses on network {n} (zerotier-cli info, "
                    "listnetworks)",
                    n=self.network,
                )
            )
        return Plan(
            "ReachPeers",
            tr(
                "用 ping 和 TCP（端口 {p}）测试能否到达 {a}",
                "test with ping and TCP (port {p}) whether {a} can be reached",
                p=self.port,
                a=", ".join(self.peers),
            ),
            commands=self._commands(),
            notes=notes,
        )

    def unfilled(self) -> tuple[str, str] | None:
        return None if self.peers else ("peers", "10.244.0.1")

    def unavailable(self, ctx: RunContext) -> str | None:
        if self.prefix and shutil.which(self.prefix[0]) is None:
            return tr("找不到 {t}", "{t} not found", t=self.prefix[0])
        if self.network and shutil.which(self.client.cli) is None:
            return tr(
                "找不到 {t}；先安装 ZeroTier（ZeroTier 官方软件包）",
                "{t} not found; install ZeroTier first (ZeroTier's own packages)",
                t=self.client.cli,
            )
        return None

    # -- run ------------------------------------------------------------------------------------
    def _zerotier(self, ctx: RunContext) -> tuple[str, list[str]]:
        """This node's address and its addresses on ``network`` (``""``, ``[]`` without one)."""
        if self.network is None:
            return "", []
        info_argv, nets_argv = self._zt_argv()
        out = []
        for verb, argv in (("info", info_argv), ("listnetworks", nets_argv)):
            done = ctx.run(argv, check=False, timeout=15)
            problem = zt.cli_problem(verb, done.stdout, done.stderr, self.client.home_dir)
            if problem:
                raise ZeroTierFailed(problem)
            out.append(done.stdout)
        try:
            node = zt.parse_info(out[0]).address
        except ValueError:
            node = ""
        net = zt.find_network(zt.parse_listnetworks(out[1]), self.network)
        if net is None or net.status != "OK":
            self._why["-"] = zt.explain_state(net.status if net else "-", self.network)
        return node, list(net.addresses) if net else []

    def _probe(self, ctx: RunContext, address: str) -> dict[str, Any]:
        ping = None
        if self._has_ping():
            budget = self.count * (self.wait_s + 1) + 10
            done = ctx.run(self._ping_argv(address), check=False, timeout=budget)
            ping = rc.parse_ping(done.stdout, done.stderr)
        done = ctx.run(self._tcp_argv(address), check=False, timeout=self.tcp_timeout_s + 15)
        tcp = rc.parse_tcp_probe(done.stdout)
        row = rc.peer_evidence(address, self.port, ping, tcp)
        if not row["reached"]:
            parts = [f"ping: {ping.problem}"] if ping and ping.problem else []
            parts.append(f"TCP {self.port}: {_tcp_words(tcp.error)}")
            self._why[address] = tr("；", "; ").join(parts)
        elif tcp.refused:
            self._why[address] = tr(
                "TCP {p} 被拒绝：对方在线，但该端口没有程序监听",
                "TCP {p} refused: the peer is up but nothing listens on that port",
                p=self.port,
            )
        return row

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self._why = {}
        node, addresses = self._zerotier(ctx)
        peers = []
        for i, address in enumerate(self.peers):
            ctx.check_cancelled()
            peers.append(self._probe(ctx, address))
            ctx.say(_peer_line(peers[-1]))
            ctx.progress((i + 1) / len(self.peers))
        return {"node": node, "nwid": self.network or "", "addresses": addresses, "peers": peers}

    # -- judge ----------------------------------------------------------------------------------
    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        peers = evidence["peers"]
        mine = [p["address"] for p in peers if p["address"] in rc.own_addresses(evidence["addresses"])]
        if mine:  # reaching yourself proves nothing about the virtual LAN
            return CheckResult.failed(
                self.check_id,
                tr(
                    "{a} 是本节点自己在网络里的地址，到达自己不能说明虚拟局域网连通；"
                    "在「{f}」里填其他成员的地址（在对端运行 zerotier-cli listnetworks 查看）",
                    "{a} is this node's own address on the network: reaching yourself says nothing about "
                    "the virtual LAN; put other members' addresses in “{f}” (run zerotier-cli "
                    "listnetworks on the peer)",
                    a=", ".join(mine),
                    f=field_name("peers"),
                ),
                **evidence,
            )
        missed = [p for p in peers if not p["reached"]]
        extra = "" if self._has_ping() else tr("（没有 ping，只测了 TCP）", " (no ping: TCP only)")
        if not missed:
            return CheckResult.passed(
                self.check_id,
                tr("到达了全部 {n} 个对端：", "reached all {n} peer(s): ", n=len(peers))
                + tr("；", "; ").join(
                    _peer_line(p)
                    + (tr("：", ": ") + self._why[p["address"]] if p["address"] in self._why else "")
                    for p in peers
                )
                + extra,
                **evidence,
            )
        lines = [f"{p['address']} ({self._why.get(p['address'], '-')})" for p in missed]
        hint = self._why.get("-") or tr(
            "检查：对端已在网络中获授权（管理员勾选 Auth）、对端防火墙放行 ICMP 和 TCP {p}、"
            "地址确实是对端的 ZeroTier 地址（在对端运行 zerotier-cli listnetworks）",
            "check that the peer is authorized on the network (the admin ticks Auth), that its "
            "firewall lets ICMP and TCP {p} in, and that the address is the peer's ZeroTier address "
            "(run zerotier-cli listnetworks on the peer)",
            p=self.port,
        )
        return CheckResult.failed(
            self.check_id,
            tr(
                "{k}/{n} 个对端没有到达：{l}。{h}",
                "{k} of {n} peer(s) not reached: {l}. {h}",
                k=len(missed),
                n=len(peers),
                l=", ".join(lines),
                h=hint,
            )
            + extra,
            **evidence,
        )


def _tcp_words(error: str) -> str:
    return {
        "refused": tr("被拒绝", "refused"),
        "timeout": tr("超时", "timed out"),
        "unreachable": tr("不可达", "unreachable"),
    }.get(error, tr("失败", "failed"))


def _peer_line(p: dict[str, Any]) -> str:
    ping = "-" if p["ping_ms"] is None else f"{p['ping_ms']:.2f} ms"
    tcp = "-" if p["tcp_ms"] is None else f"{p['tcp_ms']:.2f} ms"
    state = tr("已到达", "reached") if p["reached"] else tr("未到达", "not reached")
    return f"{p['address']} {state} (ping {ping}, TCP {p['port']} {tcp})"
