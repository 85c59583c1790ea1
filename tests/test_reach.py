"""Reachability over a virtual LAN (chapter 3, ``ch3.zt.reach``): ping and timed TCP, for real.

The parsers are fed ping output captured on the ZeroTier lab (``tests/data/zt_capture``) and
hypothesis junk; the step runs for real on loopback (a listening socket of this test) and, in the
lab, from node 2 to node 1 over ZeroTier and to an address nobody has. No timing assertions.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planmatch import execute_and_match

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import reach as rc
from labkit.logic import zerotier as zt
from labkit.steps.reach import TCP_PROBE, ReachPeers

pytest_plugins = ["zerotier_lab"]

DATA = Path(__file__).parent / "data" / "zt_capture"


def _capture(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ pure


def test_ping_argv_with_and_without_prefix():
    assert rc.ping_argv("10.244.0.1") == ["ping", "-c", "3", "-W", "2", "-n", "10.244.0.1"]
    ns = ("ip", "netns", "exec", "ns2")
    assert rc.ping_argv("fd00::1", count=5, wait_s=1, prefix=ns) == [
        *ns,
        "ping",
        "-c",
        "5",
        "-W",
        "1",
        "-n",
        "fd00::1",
    ]
    assert rc.tcp_probe_argv("/py", "/t.py", "10.0.0.1", 9993, prefix=ns) == [
        *ns, "/py", "-I", "/t.py", "10.0.0.1", "9993", "3",
    ]  # fmt: skip


def test_parse_real_ping_outputs():
    ok = rc.parse_ping(_capture("ping_ok.txt"))
    assert (ok.sent, ok.received, ok.loss) == (3, 3, 0.0) and ok.reached
    assert (ok.rtt_min, ok.rtt_avg, ok.rtt_max) == (0.307, 1.634, 4.275) and not ok.problem
    lost = rc.parse_ping(_capture("ping_lost.txt"))
    assert (lost.sent, lost.received, lost.loss, lost.rtt_avg) == (3, 0, 100.0, None) and not lost.reached
    with use_lang("en"):
        assert "100% loss" in rc.parse_ping(_capture("ping_lost.txt")).problem
        assert "could not be resolved" in rc.parse_ping("", _capture("ping_unknown.txt")).problem
        assert rc.parse_ping("", "").problem == "ping printed nothing"
        assert "no statistics" in rc.parse_ping("hello\n").problem
    with use_lang("zh"):
        assert "丢包" in rc.parse_ping(_capture("ping_lost.txt")).problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10.244.0.1", "10.244.0.1"), (" 10.244.0.2/24 ", "10.244.0.2"), ("FD00::1/88", "fd00::1")],
)
def test_peer_addresses_normalised(value, expected):
    assert rc.validate_peer(value) == expected


@pytest.mark.parametrize("bad", ["10.244.0.256", "node1.lab", "", None, 42, "1" * 100])
def test_bad_peer_named_by_its_position(bad):
    with use_lang("en"), pytest.raises(InvalidField) as err:
        rc.validate_peers(["10.244.0.1", bad])
    assert err.value.field == "peers" and "(entry 2) is not an IPv4 or IPv6" in str(err.value)
    with use_lang("zh"), pytest.raises(InvalidField) as err:
        ReachPeers(["10.244.0.1", bad])
    assert "不是 IPv4 或 IPv6 地址" in str(err.value)


def test_step_arguments_checked():
    assert rc.validate_peers("10.0.0.1, 10.0.0.2 10.0.0.1") == ["10.0.0.1", "10.0.0.2"]
    for kw, field in (({"port": 0}, "port"), ({"count": 0}, "count"), ({"network": "12345"}, "network")):
        with pytest.raises(InvalidField) as err:
            ReachPeers(["10.0.0.1"], **kw)
        assert err.value.field == field
    for bad in ([], {}, b"10.0.0.1", ["10.0.0.1"] * 300):
        with pytest.raises(InvalidField) as err:
            rc.validate_peers(bad)
        assert err.value.field == "peers"


def test_tcp_probe_output_and_evidence_shape():
    assert rc.parse_tcp_probe('{"connected": true, "ms": 0.4123}\n') == rc.TcpResult(True, 0.412)
    assert rc.parse_tcp_probe('{"connected": false, "error": "refused"}').refused
    for junk in ("", "[]", '{"connected": true}', '{"connected": true, "ms": -1}', "nan", '{"error": "x"}'):
        res = rc.parse_tcp_probe(junk)
        assert not res.connected and res.error in ("error", "refused", "timeout", "unreachable")
    row = rc.peer_evidence("10.0.0.1", 9993, None, rc.TcpResult(True, 0.5))
    assert tuple(row) == rc.PEER_KEYS and row["reached"] and row["ping_ms"] is None


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(max_size=50))
def test_parsers_never_crash_on_junk(out, err):
    for text in (out, f"{out}\n3 packets transmitted, {len(out)} received, 7% packet loss\n"):
        res = rc.parse_ping(text, err)
        assert res.received <= res.sent and (res.loss is None or 0 <= res.loss <= 100)
        assert res.reached or res.problem or res.sent == 0 or res.loss is not None
    tcp = rc.parse_tcp_probe(out)
    assert tcp.connected == (tcp.ms is not None)


# ------------------------------------------------------------------------------ real, loopback


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def test_reach_loopback_for_real(listener):
    with use_lang("en"):
        result, ran = execute_and_match(ReachPeers(["127.0.0.1"], port=listener, count=1))
    assert result.status == "pass", result.message
    assert set(result.evidence) >= {"node", "nwid", "addresses", "peers"}
    (peer,) = result.evidence["peers"]
    assert tuple(peer) == rc.PEER_KEYS and peer["reached"] and peer["port"] == listener
    assert peer["tcp_ms"] is not None and peer["tcp_ms"] >= 0 and peer["loss"] == 0
    assert result.evidence["node"] == "" and result.evidence["addresses"] == []
    assert [sys.executable, "-I", TCP_PROBE, "127.0.0.1", str(listener), "3"] in ran


def test_closed_port_is_refused_but_ping_still_reaches():
    with socket.socket() as s:  # a port that was free a moment ago and has no listener now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with use_lang("en"):
        result, _ = execute_and_match(ReachPeers(["127.0.0.1"], port=port, count=1))
    (peer,) = result.evidence["peers"]
    assert peer["tcp_ms"] is None and peer["ping_ms"] is not None and peer["reached"]
    assert result.status == "pass"
    assert "refused" in result.message


def test_a_refused_connection_counts_as_reached_without_ping():
    """A peer that drops ping (a firewall) but answers TCP with a refusal was reached."""
    tcp = rc.parse_tcp_probe('{"connected": false, "error": "refused"}')
    lost = rc.PingResult(sent=1, received=0, rtt_avg=None, loss=100.0, problem="100% loss")
    assert rc.peer_evidence("10.244.0.1", 9993, lost, tcp)["reached"]
    timeout = rc.parse_tcp_probe('{"connected": false, "error": "timeout"}')
    assert not rc.peer_evidence("10.244.0.1", 9993, lost, timeout)["reached"]


def test_without_the_prefix_tool_it_is_planned_with_the_reason():
    with use_lang("en"):
        result = ReachPeers(["10.0.0.1"], prefix=("/nonexistent/ip", "netns", "exec", "x")).execute("auto")
    assert result.status == "skipped" and "not found" in result.message
    assert result.evidence["plan"]["commands"][-1][-3:] == ["10.0.0.1", "9993", "3"]


# ------------------------------------------------------------------------------ real, ZeroTier lab


def _node2(env):
    ns2 = ("ip", "netns", "exec", env["NS2"])
    client = zt.Client(os.path.join(env["ZT_BIN"], "zerotier-cli"), env["ZT_HOME2"], None, ns2)
    return {"prefix": ns2, "client": client, "network": env["NWID"], "port": int(env["ZT_PORT1"])}


@pytest.mark.zerotier
def test_node2_reaches_node1_over_zerotier(ztlab):
    with use_lang("en"):
        result, ran = execute_and_match(ReachPeers([ztlab["ADDR1"]], **_node2(ztlab)))
    assert result.status == "pass", result.message
    ev = result.evidence
    assert (ev["node"], ev["nwid"], ev["addresses"]) == (
        ztlab["NODE2"],
        ztlab["NWID"],
        [ztlab["ADDR2"] + "/24"],
    )
    (peer,) = ev["peers"]
    assert peer["address"] == ztlab["ADDR1"] and peer["reached"] and peer["loss"] == 0
    assert peer["ping_ms"] > 0 and peer["tcp_ms"] > 0 and peer["port"] == int(ztlab["ZT_PORT1"])
    assert all(argv[:4] == ["ip", "netns", "exec", ztlab["NS2"]] for argv in ran)


def test_own_addresses_are_normalised_like_peers():
    assert rc.own_addresses(["10.244.0.2/24", "fd00:0::1/88", "junk", None]) == {"10.244.0.2", "fd00::1"}
    assert rc.own_addresses([]) == set()


@pytest.mark.zerotier
def test_the_node_itself_is_not_a_peer(ztlab):
    """Typing node 2's own ZeroTier address reaches it (ping answers locally) but proves nothing
    about the virtual LAN: the check fails and says which address is this node's own."""
    own = ReachPeers([ztlab["ADDR1"], ztlab["ADDR2"]], count=1, **_node2(ztlab))
    with use_lang("en"):
        result = own.execute("live")
    assert result.status == "fail", result.message
    assert f"{ztlab['ADDR2']} is this node's own address" in result.message
    assert ztlab["ADDR1"] not in result.message.split(" is this node")[0]
    assert [p["address"] for p in result.evidence["peers"]] == [ztlab["ADDR1"], ztlab["ADDR2"]]


@pytest.mark.zerotier
def test_unknown_address_not_reached_and_said_so(ztlab):
    with use_lang("en"):
        result, _ = execute_and_match(
            ReachPeers([ztlab["ADDR1"], "10.244.0.99"], count=1, wait_s=1, tcp_timeout_s=1, **_node2(ztlab))
        )
    assert result.status == "fail"
    reached = {p["address"]: p["reached"] for p in result.evidence["peers"]}
    assert reached == {ztlab["ADDR1"]: True, "10.244.0.99": False}
    assert "1 of 2 peer(s) not reached: 10.244.0.99" in result.message
    assert "authorized" in result.message and "firewall" in result.message
    with use_lang("zh"):
        again = ReachPeers(["10.244.0.99"], count=1, wait_s=1, tcp_timeout_s=1, **_node2(ztlab)).execute(
            "live"
        )
    assert again.status == "fail" and "没有到达" in again.message
