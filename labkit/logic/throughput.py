"""Throughput over a link, measured with iperf3 (course 3.4, ``ch3.zt.throughput``), pure part.

The server side is ``iperf3 -s -1 -B ADDR -p PORT --forceflush`` (one test, then it exits; bound
to the address under test so the ZeroTier and the underlying veth measurements cannot mix up;
``--forceflush`` makes its "Server listening" line arrive at once through a pipe, which is how the
step knows it is ready). The client is ``iperf3 -c ADDR -p PORT -t SECS -J`` (``-R``: the server
sends). :func:`parse_iperf_json` reads the client's JSON report: ``end.sum_sent`` /
``end.sum_received`` ``bits_per_second`` and the sender's ``retransmits``, or the ``error`` field
(``unable to connect to server: Connection refused``; iperf3 3.12 then still exits 0 with ``-J``,
so the report decides, never the exit status).

:func:`result_row` is the evidence row, :func:`ratio` the overlay's share of the underlay's
throughput, and :func:`links` the ``{label: bit/s}`` mapping :func:`labkit.logic.compression.plot_transfer`
marks on its figure.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import tr

__all__ = [
    "DEFAULT_PORT",
    "IperfResult",
    "client_argv",
    "links",
    "parse_iperf_json",
    "ratio",
    "result_row",
    "server_argv",
    "server_ready",
    "validate_targets",
]

DEFAULT_PORT = 5201
_LABEL = re.compile(r"^[\w][\w .+-]{0,39}$")


def validate_targets(targets: object, field_name: str = "targets") -> dict[str, str]:
    """``{"ZeroTier": "10.244.0.1", "veth": "10.241.0.1"}``: labels → IPv4/IPv6 addresses."""
    from labkit.logic.reach import validate_peer

    if not isinstance(targets, Mapping) or not targets or len(targets) > 8:
        raise InvalidField(
            field_name,
            targets,
            tr("应为 {名称: 地址}，1 到 8 项", "must be {label: address}, 1 to 8 entries"),
            tr("例如 {{'ZeroTier': '10.244.0.1'}}", "e.g. {{'ZeroTier': '10.244.0.1'}}"),
        )
    out = {}
    for label, address in targets.items():
        if not isinstance(label, str) or not _LABEL.match(label):
            raise InvalidField(
                field_name,
                label,
                tr("不是链路名称", "is not a link label"),
                tr("用字母、数字、空格、. + -，最多 40 个字符", "letters, digits, space, . + -, up to 40"),
            )
        out[label] = validate_peer(address, f"{field_name}[{label!r}]")
    return out


def server_argv(address: str, port: int = DEFAULT_PORT, *, prefix: Sequence[str] = ()) -> list[str]:
    """``[prefix…] iperf3 -s -1 -B ADDR -p PORT --forceflush``: serve one test on that address."""
    return [*prefix, "iperf3", "-s", "-1", "-B", address, "-p", str(int(port)), "--forceflush"]


def client_argv(
    address: str,
    port: int = DEFAULT_PORT,
    *,
    seconds: int = 3,
    reverse: bool = False,
    prefix: Sequence[str] = (),
) -> list[str]:
    """``[prefix…] iperf3 -c ADDR -p PORT -t SECS -J [-R]``: the JSON report on stdout."""
    argv = [*prefix, "iperf3", "-c", address, "-p", str(int(port)), "-t", str(int(seconds)), "-J"]
    return [*argv, "-R"] if reverse else argv


def server_ready(line: str) -> bool:
    """The server printed ``Server listening on PORT`` (it accepts a client now)."""
    return "Server listening on" in line


@dataclass(frozen=True)
class IperfResult:
    """One iperf3 client report: bit/s sent and received, the sender's retransmits, or the error."""

    sent_bps: float | None = None
    received_bps: float | None = None
    retransmits: int | None = None
    error: str = ""

    @property
    def bps(self) -> float | None:
        """The throughput that counts: what arrived (received), else what was sent."""
        return self.received_bps if self.received_bps is not None else self.sent_bps


def _bps(obj: Any) -> float | None:
    if not isinstance(obj, dict):
        return None
    value = obj.get("bits_per_second")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def parse_iperf_json(text: str) -> IperfResult:
    """``iperf3 -J`` output → :class:`IperfResult` (never raises: odd output is an ``error``)."""
    try:
        obj = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        return IperfResult(error=tr("iperf3 的输出不是 JSON", "iperf3 did not print JSON"))
    if not isinstance(obj, dict):
        return IperfResult(error=tr("iperf3 没有输出报告", "iperf3 printed no report"))
    error = obj.get("error")
    if isinstance(error, str) and error:
        return IperfResult(error=error[:300])
    end = obj.get("end") if isinstance(obj.get("end"), dict) else {}
    sent, received = end.get("sum_sent"), end.get("sum_received")
    retr = sent.get("retransmits") if isinstance(sent, dict) else None
    result = IperfResult(
        sent_bps=_bps(sent),
        received_bps=_bps(received),
        retransmits=retr if isinstance(retr, int) and not isinstance(retr, bool) and retr >= 0 else None,
    )
    if result.bps is None:
        return IperfResult(error=tr("iperf3 的报告里没有吞吐量", "the iperf3 report has no throughput"))
    return result


def result_row(label: str, address: str, result: IperfResult) -> dict[str, Any]:
    """One evidence row: ``{"link", "address", "bps", "retransmits"}`` (``bps`` 0.0 on an error)."""
    return {
        "link": label,
        "address": address,
        "bps": round(result.bps or 0.0, 1),
        "retransmits": result.retransmits,
    }


def ratio(
    rows: Iterable[Mapping[str, Any]], overlay: str = "ZeroTier", underlay: str | None = None
) -> float | None:
    """``overlay`` bit/s ÷ ``underlay`` bit/s when both were measured (``None`` otherwise);
    ``underlay`` defaults to the first other link (the lab's ``veth``, a student's ``LAN``)."""
    rows = list(rows)
    by = {r.get("link"): r.get("bps") for r in rows}
    if underlay is None:
        underlay = next((r.get("link") for r in rows if r.get("link") != overlay), None)
    a, b = by.get(overlay), by.get(underlay)
    if isinstance(a, int | float) and isinstance(b, int | float) and a > 0 and b > 0:
        return round(a / b, 4)
    return None


def links(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """``{label: bit/s}`` of the measured rows, for ``plot_transfer(..., links=...)``."""
    out = {}
    for r in rows:
        bps = r.get("bps")
        if isinstance(r.get("link"), str) and isinstance(bps, int | float) and bps > 0:
            out[r["link"]] = float(bps)
    return out
