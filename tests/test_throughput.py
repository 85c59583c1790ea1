"""Throughput with iperf3 (chapter 3.4, ``ch3.zt.throughput``): measured for real, never typed in.

The parser reads iperf3 3.12 ``-J`` reports captured on the ZeroTier lab (``tests/data/zt_capture``)
and hypothesis junk. The step runs iperf3 for real: on loopback (server started by the step), with
no server (the peer's ``iperf3 -s`` missing), and in the lab over ZeroTier and over the veth under
it. Every server the step starts is gone afterwards. No timing or ratio assertions.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.text import Text
from planmatch import execute_and_match

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import compression as cz
from labkit.logic import throughput as tp
from labkit.steps.compression import MeasureCompression
from labkit.steps.throughput import MeasureThroughput

pytest_plugins = ["zerotier_lab"]

DATA = Path(__file__).parent / "data" / "zt_capture"
needs_iperf3 = pytest.mark.skipif(
    shutil.which("iperf3") is None, reason="iperf3 not installed (apt install iperf3)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _servers(port: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if "iperf3" in " ".join(cmd) and "-s" in cmd and str(port) in cmd:
            found.append(proc)
    return found


# ------------------------------------------------------------------------------ pure


def test_argv():
    assert tp.server_argv("10.244.0.1", 5201, prefix=("ip", "netns", "exec", "n1")) == [
        "ip", "netns", "exec", "n1", "iperf3", "-s", "-1", "-B", "10.244.0.1", "-p", "5201", "--forceflush",
    ]  # fmt: skip
    assert tp.client_argv("10.244.0.1", 5202, seconds=4) == [
        "iperf3", "-c", "10.244.0.1", "-p", "5202", "-t", "4", "-J",
    ]  # fmt: skip
    assert tp.client_argv("fd00::1", reverse=True)[-1] == "-R"
    assert tp.server_ready("Server listening on 5201 (test #1)")
    assert not tp.server_ready("-----------------------------------------------------------")


def test_parse_real_reports():
    ok = tp.parse_iperf_json((DATA / "iperf_zt.json").read_text())
    assert ok.bps == ok.received_bps and ok.received_bps > 0 and ok.sent_bps > 0 and not ok.error
    assert ok.retransmits == 0
    refused = tp.parse_iperf_json((DATA / "iperf_refused.json").read_text())
    assert refused.error == "unable to connect to server: Connection refused" and refused.bps is None
    with use_lang("en"):
        assert "no report" in tp.parse_iperf_json("").error
        assert "not print JSON" in tp.parse_iperf_json("iperf3: error - unable to connect").error
        assert "no throughput" in tp.parse_iperf_json('{"end": {}}').error
    assert any(tp.server_ready(line) for line in (DATA / "iperf_server.txt").read_text().splitlines())


def test_rows_ratio_and_links_for_the_plot():
    ok = tp.parse_iperf_json((DATA / "iperf_zt.json").read_text())
    rows = [
        tp.result_row("ZeroTier", "10.244.0.1", ok),
        tp.result_row("veth", "10.241.0.1", tp.IperfResult(4e9)),
    ]
    assert rows[0] == {"link": "ZeroTier", "address": "10.244.0.1", "bps": round(ok.bps, 1), "retransmits": 0}
    assert tp.ratio(rows) == round(rows[0]["bps"] / 4e9, 4)
    assert tp.ratio(rows[:1]) is None and tp.ratio([{"link": "veth", "bps": 0}, rows[0]]) is None
    failed = tp.result_row("x", "10.0.0.9", tp.IperfResult(error="unable to connect"))
    assert tp.links([*rows, failed]) == {"ZeroTier": rows[0]["bps"], "veth": 4e9}


def test_targets_validated_naming_the_field():
    assert tp.validate_targets({"ZeroTier": "10.244.0.1/24"}) == {"ZeroTier": "10.244.0.1"}
    with pytest.raises(InvalidField) as err:
        tp.validate_targets({})
    assert err.value.field == "targets"
    with use_lang("en"):  # a step without targets waits for them: skipped, naming the field
        empty = MeasureThroughput({}).execute("auto")
    assert (empty.status, empty.evidence["skip_reason"]) == ("skipped", "unanswered")
    assert "targets=" in empty.message
    for bad, field in (
        ("10.0.0.1", "targets"),
        ({"": "10.0.0.1"}, "targets"),
        ({"ZeroTier": "nowhere"}, "targets['ZeroTier']"),
    ):
        with use_lang("en"), pytest.raises(InvalidField) as err:
            MeasureThroughput(bad)
        assert err.value.field == field
    for kw in ({"port": 70000}, {"seconds": 0}, {"seconds": True}):
        with pytest.raises(InvalidField) as err:
            MeasureThroughput({"a": "10.0.0.1"}, **kw)
        assert err.value.field == next(iter(kw))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["end", "sum_sent", "sum_received", "bits_per_second", "retransmits", "error", "x"]
    ), inner, max_size=5),
    max_leaves=25,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_json, st.text(max_size=200))
def test_parser_never_crashes_on_junk(obj, text):
    for blob in (json.dumps(obj), text):
        res = tp.parse_iperf_json(blob)
        assert bool(res.error) == (res.bps is None)
        assert res.bps is None or res.bps >= 0
        assert res.retransmits is None or res.retransmits >= 0
        row = tp.result_row("ZeroTier", "10.0.0.1", res)
        assert set(row) == {"link", "address", "bps", "retransmits"}


# ------------------------------------------------------------------------------ real iperf3


@needs_iperf3
def test_loopback_measured_and_server_gone():
    port = _free_port()
    step = MeasureThroughput({"loopback": "127.0.0.1"}, port=port, seconds=1, server_prefix=())
    with use_lang("en"):
        result, ran = execute_and_match(step)
    assert result.status == "pass", result.message
    (row,) = result.evidence["rows"]
    assert row["link"] == "loopback" and row["bps"] > 0 and result.evidence["ratio"] is None
    assert ran[0] == tp.server_argv("127.0.0.1", port) and ran[1] == tp.client_argv(
        "127.0.0.1", port, seconds=1
    )
    assert _servers(port) == []


@needs_iperf3
def test_no_peer_server_fails_with_the_command_to_run():
    port = _free_port()
    step = MeasureThroughput({"ZeroTier": "127.0.0.1"}, port=port, seconds=1)
    with use_lang("en"):
        assert f"first run on the peer: iperf3 -s -p {port}" in "\n".join(step.plan().notes)
        result, _ = execute_and_match(step)
    assert result.status == "fail" and "unable to connect" in result.message
    assert f"iperf3 -s -p {port}" in result.message and result.evidence["rows"][0]["bps"] == 0


@needs_iperf3
def test_server_on_an_address_not_here_is_an_error_and_stopped():
    port = _free_port()
    step = MeasureThroughput({"x": "192.0.2.7"}, port=port, seconds=1, server_prefix=())
    with use_lang("en"):
        result = step.execute("live")
    assert result.status == "error" and "did not start listening" in result.message
    assert _servers(port) == []


def test_without_iperf3_planned_with_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with use_lang("en"):
        result = MeasureThroughput({"ZeroTier": "10.244.0.1"}).execute("auto")
    assert result.status == "skipped" and "apt install iperf3" in result.message
    assert result.evidence["plan"]["commands"] == [tp.client_argv("10.244.0.1")]


# ------------------------------------------------------------------------------ real, ZeroTier lab


@pytest.mark.zerotier
@needs_iperf3
def test_zerotier_and_veth_measured_in_the_lab_and_plotted(ztlab, tmp_path):
    ns1, ns2 = ("ip", "netns", "exec", ztlab["NS1"]), ("ip", "netns", "exec", ztlab["NS2"])
    targets = {"ZeroTier": ztlab["ADDR1"], "veth": ztlab["UNDERLAY1"]}
    step = MeasureThroughput(targets, seconds=2, client_prefix=ns2, server_prefix=ns1)
    with use_lang("en"):
        result, ran = execute_and_match(step)
    assert result.status == "pass", result.message
    rows = {r["link"]: r for r in result.evidence["rows"]}
    assert rows["ZeroTier"]["address"] == ztlab["ADDR1"] and rows["veth"]["address"] == ztlab["UNDERLAY1"]
    assert rows["ZeroTier"]["bps"] > 0 and rows["veth"]["bps"] > 0
    assert result.evidence["ratio"] == tp.ratio(result.evidence["rows"]) and result.evidence["ratio"] > 0
    assert [tuple(a[:4]) for a in ran] == [ns1, ns2, ns1, ns2]
    assert _servers(5201) == []
    in_ns1 = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    assert not [c for c in in_ns1 if ztlab["NS1"] in c and "iperf3" in c]

    compression, _ = execute_and_match(MeasureCompression(str(tmp_path), size="256K", datasets=("csv",)))
    fig = cz.plot_transfer(compression.evidence["rows"], links=tp.links(result.evidence["rows"]))
    texts = [t.get_text() for t in fig.findobj(Text)]
    for label in ("ZeroTier", "veth"):
        marked = next(t for t in texts if t.startswith(label + "\n"))
        assert cz.format_bps(rows[label]["bps"]) in marked
    assert os.path.exists(str(tmp_path / "compression" / "logs.csv"))
