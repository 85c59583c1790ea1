"""Grading facts: a few validated, bounded values a check's evidence contributes to ``report.json``.

``labkit grade`` drops a passing check's evidence and trims a failing one's to strings
(:func:`~labkit.grading.classify.trim_evidence`), which is right for feedback but loses what an
instructor needs afterwards, e.g. the ZeroTier node id to authorize (``labkit vlan authorize
--from-grades report.json``) or the peers each student reached (the class reachability matrix).
A check id listed in :data:`FACTS` keeps those keys as ``facts`` in its report entry, whether it
passed or failed. Every value is validated and bounded; a value that does not fit is dropped.

Shapes (``report.json``, ``students[].notebooks[].checks[].facts``)::

    node       "792a0124ab"          10 hex digits, else dropped
    nwid       "1d9a9f65a7d10e71"    16 hex digits, else dropped
    status     "ACCESS_DENIED"       a string, at most 64 characters
    addresses  ["10.244.0.2/24"]     at most 64 strings of at most 64 characters
    peers      [{"address": "10.244.0.1", "reached": true, "ping_ms": 0.4, "tcp_ms": 1.2,
                 "loss": 0.0, "port": 9993}]
                                     at most 64; address an IP address (a prefix length is
                                     dropped) or a 10-hex node id, else the item is dropped;
                                     reached bool, *_ms and loss finite numbers ≥ 0 or null,
                                     port 1–65535 or null

:func:`nodes_from_report` reads them back out of a report (pure; the CLI reads the file).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.i18n import tr

__all__ = ["FACTS", "MAX_ITEMS", "MAX_STR", "NodeClaim", "ReportNodes", "facts_for", "nodes_from_report"]

#: check id → the evidence keys kept as facts.
FACTS: dict[str, tuple[str, ...]] = {
    "ch3.zt.status": ("node",),
    "ch3.zt.join": ("node", "nwid", "status", "addresses"),
    "ch3.zt.reach": ("node", "nwid", "addresses", "peers"),
}
MAX_ITEMS = 64
MAX_STR = 64
_MAX_STUDENTS = 100_000

_NODE = re.compile(r"^[0-9a-f]{10}$")
_NWID = re.compile(r"^[0-9a-f]{16}$")


def _hex(value: Any, pattern: re.Pattern[str]) -> str | None:
    if isinstance(value, str):
        text = value.strip().lower()
        if len(text) <= 16 and pattern.match(text):
            return text
    return None


def _text(value: Any) -> str | None:
    return value[:MAX_STR] if isinstance(value, str) else None


def _strings(value: Any) -> list[str] | None:
    if not isinstance(value, list | tuple):
        return None
    return [v[:MAX_STR] for v in list(value)[:MAX_ITEMS] if isinstance(v, str)]


def _ms(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0 or value > 1e9:
        return None
    return value


def _peer_address(value: Any) -> str | None:
    """A peer is named by its address on the virtual LAN (IPv4/IPv6, as ``ReachPeers`` records
    it) or by its 10-hex ZeroTier node id."""
    node = _hex(value, _NODE)
    if node is not None:
        return node
    if not isinstance(value, str) or len(value) > MAX_STR:
        return None
    try:
        return str(ipaddress.ip_address(value.strip().split("/")[0]))
    except ValueError:
        return None


def _peer(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, Mapping):
        return None
    address = _peer_address(item.get("address"))
    if address is None:
        return None
    port = item.get("port")
    return {
        "address": address,
        "reached": item.get("reached") is True,
        "ping_ms": _ms(item.get("ping_ms")),
        "tcp_ms": _ms(item.get("tcp_ms")),
        "loss": _ms(item.get("loss")),
        "port": port if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536 else None,
    }


def _peers(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list | tuple):
        return None
    return [p for p in (_peer(i) for i in list(value)[:MAX_ITEMS]) if p is not None]


_RULES = {
    "node": lambda v: _hex(v, _NODE),
    "nwid": lambda v: _hex(v, _NWID),
    "status": _text,
    "addresses": _strings,
    "peers": _peers,
}


def facts_for(check: str, evidence: Any) -> dict[str, Any] | None:
    """The facts of ``check``'s ``evidence`` (``None`` when the check declares none); keys whose
    value does not fit its rule are left out."""
    keys = FACTS.get(check)
    if keys is None:
        return None
    if not isinstance(evidence, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key in keys:
        value = _RULES[key](evidence.get(key))
        if value is not None:
            out[key] = value
    return out


# -- reading them back ------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeClaim:
    """One identified student's node id, from one check of the report."""

    student: str
    node: str
    check: str
    nwid: str = ""


@dataclass
class ReportNodes:
    """The node ids a report's facts name: claims, nodes claimed by several students, notes."""

    claims: list[NodeClaim] = field(default_factory=list)
    shared: dict[str, list[str]] = field(default_factory=dict)  # node → students (2+)
    notes: list[str] = field(default_factory=list)

    def by_node(self) -> dict[str, list[str]]:
        """node → the students whose facts name it (first-seen order)."""
        out: dict[str, list[str]] = {}
        for c in self.claims:
            students = out.setdefault(c.node, [])
            if c.student not in students:
                students.append(c.student)
        return out


def _checks(student: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    out = []
    notebooks = student.get("notebooks")
    for nb in notebooks[:1000] if isinstance(notebooks, list) else []:
        checks = nb.get("checks") if isinstance(nb, Mapping) else None
        out += [c for c in (checks[:1000] if isinstance(checks, list) else []) if isinstance(c, Mapping)]
    return out


def nodes_from_report(report: Any, network: str | None = None) -> ReportNodes:
    """The node ids in a ``labkit grade`` report's facts, only for identified students.

    A node id that is not 10 hex digits is ignored with a note; a node named by several students is
    listed in ``shared`` (and noted); a ``ch3.zt.join`` whose ``nwid`` is not ``network`` is noted.
    Never raises on a malformed report: what cannot be read is skipped (a note says so)."""
    found = ReportNodes()
    students = report.get("students") if isinstance(report, Mapping) else None
    if not isinstance(students, list):
        found.notes.append(tr("报告里没有 students 列表", "the report has no 'students' list"))
        return found
    seen: set[tuple[str, str]] = set()
    for st in students[:_MAX_STUDENTS]:
        if not isinstance(st, Mapping) or st.get("identified") is not True:
            continue
        sid = st.get("student_id")
        if not isinstance(sid, str) or not sid:
            continue
        sid = sid[:MAX_STR]
        for c in _checks(st):
            check = c.get("check")
            facts = c.get("facts")
            if check not in FACTS or not isinstance(facts, Mapping) or "node" not in facts:
                continue
            node = _hex(facts.get("node"), _NODE)
            if node is None:
                found.notes.append(
                    tr(
                        "{s}：{c} 的节点 ID {v!r} 不是 10 位十六进制，忽略",
                        "{s}: the node id {v!r} of {c} is not 10 hex digits; ignored",
                        s=sid,
                        c=str(check),
                        v=str(facts.get("node"))[:MAX_STR],
                    )
                )
                continue
            nwid = _hex(facts.get("nwid"), _NWID) or ""
            if network and nwid and nwid != network:
                found.notes.append(
                    tr(
                        "{s}：{c} 记录的是另一个网络 {w}（不是 {n}）",
                        "{s}: {c} recorded another network {w} (not {n})",
                        s=sid,
                        c=str(check),
                        w=nwid,
                        n=network,
                    )
                )
            if (sid, node) not in seen:
                seen.add((sid, node))
                found.claims.append(NodeClaim(sid, node, str(check), nwid))
    for node, students_of in found.by_node().items():
        if len(students_of) > 1:
            found.shared[node] = students_of
            found.notes.append(
                tr(
                    "节点 {n} 同时出现在多名学生的提交里：{s}（共用一台机器？还是复制的？请核实）",
                    "node {n} appears in several students' submissions: {s} (a shared machine, or "
                    "copied? please check)",
                    n=node,
                    s=", ".join(students_of),
                )
            )
    return found
