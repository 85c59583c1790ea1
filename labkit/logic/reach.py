"""Reachability over a virtual LAN (course 3.3, ``ch3.zt.reach``), pure part.

Two probes per peer, both built here and run by :mod:`labkit.steps.reach`:

* ``ping -c N -W T -n ADDR`` (iputils; busybox prints the same summary with ``round-trip``):
  :func:`parse_ping` reads the summary lines (packets sent/received, loss, ``rtt min/avg/max``),
  whatever language the rest of the output is in, and tells "no output", "unknown host" and
  "100 % loss" apart.
* a TCP connection to the peer's port (default 9993, where every ``zerotier-one`` listens), made
  by :mod:`labkit.steps.tcpprobe`, which prints one JSON line; :func:`parse_tcp_probe` reads it.

Peer addresses are checked before anything runs (:func:`validate_peer`: IPv4 or IPv6, the
``/24`` that ``listnetworks`` prints is stripped). :func:`peer_evidence` is the one evidence shape
per peer the check records and ``labkit vlan matrix`` reads back from graded notebooks.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import tr

__all__ = [
    "PEER_KEYS",
    "PingResult",
    "TcpResult",
    "parse_ping",
    "parse_tcp_probe",
    "peer_evidence",
    "ping_argv",
    "strip_prefix",
    "tcp_probe_argv",
    "validate_peer",
    "validate_peers",
]

#: The keys of one peer in the evidence, in order (the grader keeps exactly these as facts).
PEER_KEYS = ("address", "reached", "ping_ms", "tcp_ms", "port", "loss")
#: At most this many peers per step: a class list, not a scan.
MAX_PEERS = 256

_SENT = re.compile(
    r"(\d+) packets transmitted, (\d+) (?:packets )?received(?:, \+(\d+) errors)?(?:, \+\d+ duplicates)?"
    r"(?:, \+\d+ corrupted)?, ([0-9.]+)% packet loss"
)
_RTT = re.compile(r"(?:rtt|round-trip) min/avg/max(?:/mdev)? = ([0-9.]+)/([0-9.]+)/([0-9.]+)")


def strip_prefix(text: str) -> str:
    """``10.244.0.2/24`` → ``10.244.0.2`` (a ZeroTier assigned address as ``listnetworks`` prints it)."""
    return text.strip().split("/", 1)[0]


def own_addresses(addresses: Iterable[object]) -> set[str]:
    """This node's assigned addresses (``10.244.0.2/24`` as ``listnetworks`` prints them) in the
    form :func:`validate_peer` gives a peer, so that a peer typed as the node itself is recognised."""
    out = set()
    for a in addresses:
        try:
            out.add(str(ipaddress.ip_address(strip_prefix(str(a)))))
        except ValueError:
            continue
    return out


def validate_peer(value: object, field_name: str = "peers") -> str:
    """One peer address: IPv4 or IPv6 (a ``/len`` suffix is dropped); else :class:`InvalidField`."""
    if isinstance(value, str) and len(value) <= 64:
        try:
            return str(ipaddress.ip_address(strip_prefix(value)))
        except ValueError:
            pass
    raise InvalidField(
        field_name,
        value,
        tr("不是 IPv4 或 IPv6 地址", "is not an IPv4 or IPv6 address"),
        tr(
            "填对端在虚拟网络里的地址（在对端运行 zerotier-cli listnetworks 查看），例如 10.244.0.1",
            "give the peer's address on the virtual network (run zerotier-cli listnetworks on the peer), "
            "e.g. 10.244.0.1",
        ),
    )


def validate_peers(values: object, field_name: str = "peers") -> list[str]:
    """A list of peer addresses (order kept, duplicates dropped); names ``peers[i]`` when one is bad."""
    if isinstance(values, str):
        values = [v for v in re.split(r"[\s,]+", values) if v]
    if not isinstance(values, Sequence) or isinstance(values, bytes) or not values:
        raise InvalidField(
            field_name,
            values,
            tr("不是地址列表", "is not a list of addresses"),
            tr("例如 10.244.0.1, 10.244.0.3", "e.g. 10.244.0.1, 10.244.0.3"),
        )
    if len(values) > MAX_PEERS:
        raise InvalidField(
            field_name,
            f"<{len(values)} addresses>",
            tr("太多了", "is too many"),
            tr("最多 {n} 个", "at most {n}", n=MAX_PEERS),
        )
    out: list[str] = []
    for i, value in enumerate(values):
        try:
            address = validate_peer(value, field_name)
        except InvalidField as exc:  # the field keeps its name (a panel shows its label); say which entry
            if len(values) == 1:
                raise
            raise InvalidField(
                field_name,
                value,
                tr(
                    "（第 {n} 个）不是 IPv4 或 IPv6 地址",
                    "(entry {n}) is not an IPv4 or IPv6 address",
                    n=i + 1,
                ),
                exc.fix,
            ) from None
        if address not in out:
            out.append(address)
    return out


def ping_argv(address: str, *, count: int = 3, wait_s: int = 2, prefix: Sequence[str] = ()) -> list[str]:
    """``[prefix…] ping -c COUNT -W WAIT -n ADDR`` (``-n``: no reverse lookups, numbers only)."""
    return [*prefix, "ping", "-c", str(int(count)), "-W", str(int(wait_s)), "-n", address]


def tcp_probe_argv(
    python: str, script: str, address: str, port: int, *, timeout_s: float = 3.0, prefix: Sequence[str] = ()
) -> list[str]:
    """``[prefix…] PYTHON -I SCRIPT ADDR PORT TIMEOUT``: the TCP helper, run where the peer is seen.

    ``-I`` (isolated): the helper needs only the standard library, so neither ``PYTHONPATH`` nor the
    user's site packages can change what runs."""
    return [*prefix, python, "-I", script, address, str(int(port)), f"{float(timeout_s):g}"]


@dataclass(frozen=True)
class PingResult:
    """What one ``ping`` run said: sent/received, loss (0–100 %), rtt in ms; ``problem`` if none."""

    sent: int = 0
    received: int = 0
    loss: float | None = None
    rtt_min: float | None = None
    rtt_avg: float | None = None
    rtt_max: float | None = None
    problem: str = ""

    @property
    def reached(self) -> bool:
        return self.received > 0


def parse_ping(stdout: str, stderr: str = "") -> PingResult:
    """The summary of ``ping``'s output → :class:`PingResult` (never raises).

    ``problem`` says why there is no round-trip: the name could not be resolved, nothing was
    printed, every packet was lost, or the output was not ping's."""
    both = f"{stdout}\n{stderr}"
    sent = _SENT.search(both)
    rtt = _RTT.search(both)
    if sent is None:
        if re.search(r"unknown host|not known|name resolution|bad address", both, re.I):
            problem = tr("无法解析地址", "the address could not be resolved")
        elif not both.strip():
            problem = tr("ping 没有输出", "ping printed nothing")
        else:
            last = [line for line in both.strip().splitlines() if line.strip()][-1]
            problem = tr("ping 没有给出统计：{d}", "ping gave no statistics: {d}", d=last.strip()[:200])
        return PingResult(problem=problem)
    n_sent, n_received = int(sent.group(1)), int(sent.group(2))
    loss = min(100.0, float(sent.group(4)))
    result = PingResult(sent=n_sent, received=min(n_received, n_sent), loss=loss)
    if rtt and n_received:
        lo, avg, hi = (float(rtt.group(i)) for i in (1, 2, 3))
        return PingResult(n_sent, min(n_received, n_sent), loss, lo, avg, hi)
    if n_received == 0:
        return PingResult(
            n_sent, 0, loss, problem=tr("全部丢包（100%）", "every packet was lost (100% loss)")
        )
    return result


@dataclass(frozen=True)
class TcpResult:
    """One TCP connect: ``connected`` with the connect time in ms, or the error (``refused`` …)."""

    connected: bool
    ms: float | None = None
    error: str = ""

    @property
    def refused(self) -> bool:
        return self.error == "refused"


_TCP_ERRORS = ("refused", "timeout", "unreachable", "error")


def parse_tcp_probe(stdout: str) -> TcpResult:
    """The helper's JSON line (``{"connected": true, "ms": 0.31}`` or ``{"connected": false,
    "error": "timeout"}``) → :class:`TcpResult`; anything else is an ``error`` (never raises)."""
    line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    try:
        obj = json.loads(line[:1000])
    except (ValueError, RecursionError):
        return TcpResult(False, None, "error")
    if not isinstance(obj, dict):
        return TcpResult(False, None, "error")
    ms = obj.get("ms")
    if obj.get("connected") is True and isinstance(ms, int | float) and not isinstance(ms, bool) and ms >= 0:
        return TcpResult(True, round(float(ms), 3))
    error = obj.get("error")
    return TcpResult(False, None, error if error in _TCP_ERRORS else "error")


def peer_evidence(address: str, port: int, ping: PingResult | None, tcp: TcpResult | None) -> dict[str, Any]:
    """One peer in the check's evidence (:data:`PEER_KEYS`): reached when a ping came back or
    the peer answered the TCP connection, accepting it or refusing it (a refusal is the peer's
    own host answering: the virtual LAN carried the packets, only nothing listens on that port)."""
    reached = bool((ping and ping.reached) or (tcp and (tcp.connected or tcp.refused)))
    return {
        "address": address,
        "reached": reached,
        "ping_ms": ping.rtt_avg if ping else None,
        "tcp_ms": tcp.ms if tcp else None,
        "port": int(port),
        "loss": ping.loss if ping else None,
    }
