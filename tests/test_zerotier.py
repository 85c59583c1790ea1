"""ZeroTier client (chapter 3): pure parsers/builders, and the steps against the real daemon.

The real-daemon tests use ``lab.sh``'s two-node lab (``tests/zerotier_lab.py``); node 2 is the
"student's machine", node 1 runs the embedded controller that authorizes it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planmatch import execute_and_match
from zerotier_helpers import controller, in_netns

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import zerotier as zt
from labkit.steps.zerotier import ZtJoin, ZtLeave, ZtListNetworks, ZtStatus

pytest_plugins = ["zerotier_lab"]

NWID = "1d9a9f65a7d10e71"
CJK = re.compile(r"[\u4e00-\u9fff]")

# ------------------------------------------------------------------------------ pure


@pytest.mark.parametrize(
    "bad", ["12345", "zzzzzzzzzzzzzzzz", "1d9a9f65a7d10e7", "1d9a9f65a7d10e711", "", None, 42]
)
def test_network_id_rejected_naming_the_field(bad):
    with use_lang("en"), pytest.raises(InvalidField) as err:
        zt.validate_network_id(bad)
    assert err.value.field == "network" and "16 hex digits" in str(err.value)
    with use_lang("zh"), pytest.raises(InvalidField) as err:
        ZtJoin(bad)
    assert "16 位十六进制" in str(err.value)


def test_network_id_normalised_and_argv():
    assert zt.validate_network_id(" 1D9A9F65A7D10E71 ") == NWID
    client = zt.Client("/opt/zt/zerotier-cli", "/tmp/home", 9994, ("ip", "netns", "exec", "ns2"))
    assert zt.cli_argv(client, "join", NWID.upper(), as_json=True) == [
        "ip", "netns", "exec", "ns2", "/opt/zt/zerotier-cli", "-D/tmp/home", "-p9994", "-j", "join", NWID,
    ]  # fmt: skip
    assert zt.cli_argv(zt.Client(), "listpeers") == ["zerotier-cli", "listpeers"]


def test_listnetworks_text_quirks():
    text = "\n".join(
        [
            "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>",
            f"200 listnetworks {NWID} labkit-zt-lab 72:77:fb:a6:41:34 OK PRIVATE ztpa6u426w 10.244.0.2/24",
            "200 listnetworks 1a356268463f5351  32:49:0a:24:00:24 REQUESTING_CONFIGURATION PRIVATE"
            " ztojzv2oyx -",
            "200 listnetworks 1a356268463f5352 my lab net 32:49:0a:24:00:25 OK PUBLIC ztx"
            " 10.1.0.2/24,fd00::1/88",
        ]
    )
    nets = zt.parse_listnetworks(text)
    assert [n.nwid for n in nets] == [NWID, "1a356268463f5351", "1a356268463f5352"]
    assert nets[0].name == "labkit-zt-lab" and nets[0].addresses == ("10.244.0.2/24",)
    assert nets[1].name == "" and nets[1].addresses == () and nets[1].status == "REQUESTING_CONFIGURATION"
    assert nets[2].name == "my lab net" and nets[2].addresses == ("10.1.0.2/24", "fd00::1/88")


def test_listpeers_text_unknowns():
    text = (
        "200 listpeers <ztaddr> <path> <latency> <version> <role>\n"
        "200 listpeers 1d9a9f65a7 10.241.0.1/9993;156;156 25 1.14.1 MOON\n"
        "200 listpeers 62f865ae71 - -1 - PLANET\n"
    )
    moon, planet = zt.parse_listpeers(text)
    assert (moon.path, moon.latency_ms, moon.version, moon.role) == ("10.241.0.1/9993", 25, "1.14.1", "MOON")
    assert (planet.path, planet.latency_ms, planet.version) == (None, None, None)


def test_cli_problems_judged_from_output_not_exit_code():
    with use_lang("en"):
        assert zt.cli_problem("info", "200 info 792a0124ab 1.14.1 ONLINE\n", "") is None
        assert "401" in zt.cli_problem("info", "401 info {}\n", "")
        msg = zt.cli_problem(
            "info", "", "zerotier-cli: authtoken.secret not found or readable in /x (try again as root)"
        )
        assert (
            "missing authentication token" in msg and "~/.zeroTierOneAuthToken" in msg and "chmod 600" in msg
        )
        assert "network id" in zt.cli_problem("join", "invalid network id\n", "")
        assert "running" in zt.cli_problem(
            "info", "Error connecting to the ZeroTier service: connection failed", ""
        )
        assert zt.cli_problem("foo", "", "usage: ...") is not None


@pytest.mark.parametrize("state", zt.JOIN_STATES)
def test_join_states_explained_in_both_languages(state):
    with use_lang("en"):
        en = zt.explain_state(state, NWID)
    with use_lang("zh"):
        zh = zt.explain_state(state, NWID)
    assert en.startswith(state) and zh.startswith(state)
    assert not CJK.search(en) and CJK.search(zh)


def test_api_request_and_masked_curl_form():
    req = zt.api_request(9994, "sekrit", f"/network/{NWID}", "POST", {})
    assert req.url == f"http://127.0.0.1:9994/network/{NWID}" and req.headers == {"X-ZT1-Auth": "sekrit"}
    assert req.body == b"{}" and "sekrit" not in " ".join(req.curl_argv())
    assert zt.parse_port("9993\n") == 9993 and zt.parse_token(" abc\n") == "abc"
    for bad in ("", "0", "70000", "x"):
        with pytest.raises(ValueError):
            zt.parse_port(bad)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_text_parsers_never_crash(text):
    for parse in (zt.parse_listnetworks, zt.parse_listpeers):
        assert isinstance(parse(text), list)
        assert isinstance(parse("200 listnetworks " + text), list)
        assert isinstance(parse("200 listpeers " + text), list)
    try:
        info = zt.parse_info("200 info " + text)
    except ValueError:
        return
    assert re.fullmatch(r"[0-9a-f]{10}", info.address) and info.state


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_json)
def test_json_parsers_never_crash(obj):
    for parse, kind in ((zt.parse_networks_json, zt.Network), (zt.parse_peers_json, zt.Peer)):
        try:
            items = parse(obj)
        except ValueError:
            continue
        assert all(isinstance(i, kind) for i in items)
        ids = [getattr(i, "nwid", "") or i.address for i in items]
        assert all(re.fullmatch(r"[0-9a-f]{10}|[0-9a-f]{16}", x) for x in ids)
    try:
        info = zt.parse_info_json(obj)
    except ValueError:
        return
    assert info.state in ("ONLINE", "OFFLINE", "TUNNELED")


# ------------------------------------------------------------------------------ real daemon


def _node2(env, **kw):
    return {
        "cli": os.path.join(env["ZT_BIN"], "zerotier-cli"),
        "home": env["ZT_HOME2"],
        "prefix": ("ip", "netns", "exec", env["NS2"]),
        **kw,
    }


def _cli(env, *args):
    argv = ["ip", "netns", "exec", env["NS2"], os.path.join(env["ZT_BIN"], "zerotier-cli"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=15, env={**os.environ, "HOME": "/nonexistent"}
    )


@pytest.mark.zerotier
@pytest.mark.parametrize("json_output", [False, True])
def test_status_and_peers_real(ztlab, json_output):
    with use_lang("en"):
        result, ran = execute_and_match(ZtStatus(**_node2(ztlab, json_output=json_output)))
    assert result.status == "pass", result.message
    assert result.evidence["node"] == ztlab["NODE2"] and result.evidence["state"] == "ONLINE"
    moon = next(p for p in result.evidence["peers"] if p["address"] == ztlab["NODE1"])
    assert moon["role"] == "MOON" and moon["path"].startswith(ztlab["UNDERLAY1"] + "/")
    assert ("-j" in ran[-1]) is json_output


@pytest.mark.zerotier
def test_listnetworks_text_and_json_agree_real(ztlab):
    text = zt.parse_listnetworks(_cli(ztlab, f"-D{ztlab['ZT_HOME2']}", "listnetworks").stdout)
    js = zt.parse_networks_json(
        json.loads(_cli(ztlab, f"-D{ztlab['ZT_HOME2']}", "-j", "listnetworks").stdout)
    )
    assert [(n.nwid, n.name, n.status, n.device, n.addresses) for n in text] == [
        (n.nwid, n.name, n.status, n.device, n.addresses) for n in js
    ]
    result, _ = execute_and_match(ZtListNetworks(**_node2(ztlab)))
    (net,) = [n for n in result.evidence["networks"] if n["nwid"] == ztlab["NWID"]]
    assert (
        net["status"] == "OK"
        and net["addresses"] == [ztlab["ADDR2"] + "/24"]
        and net["device"] == ztlab["ZT_DEV2"]
    )


@pytest.mark.zerotier
def test_cli_errors_real(ztlab, tmp_path):
    home = f"-D{ztlab['ZT_HOME2']}"
    bad = _cli(ztlab, home, "-Tnot-the-token", "info")
    with use_lang("en"):
        assert "401" in zt.cli_problem("info", bad.stdout, bad.stderr)
        nodaemon = _cli(ztlab, f"-D{tmp_path}", "info")  # no zerotier-one.port there: "missing port"
        assert "running" in zt.cli_problem("info", nodaemon.stdout, nodaemon.stderr)
        empty = _cli(ztlab, f"-D{tmp_path}", f"-p{ztlab['ZT_PORT2']}", "info")  # no token there or in $HOME
        assert "missing authentication token" in zt.cli_problem(
            "info", empty.stdout, empty.stderr, str(tmp_path)
        )
        short = _cli(ztlab, home, "join", "12345")
        assert "network id" in zt.cli_problem("join", short.stdout, short.stderr)


@pytest.mark.zerotier
def test_local_api_real_with_good_bad_and_missing_token(ztlab, tmp_path):
    kw = {"home": ztlab["ZT_HOME2"], "via": "api"}
    status = in_netns(ztlab["NS2"], lambda: execute_and_match(ZtStatus(**kw))[0])
    assert status.status == "pass" and status.evidence["node"] == ztlab["NODE2"]
    assert all("X-ZT1-Auth: <authtoken.secret>" in c for c in status.evidence["commands"])
    assert ztlab["ZT_TOKEN2"] not in json.dumps(
        status.to_payload() if hasattr(status, "to_payload") else status.evidence
    )
    nets = in_netns(ztlab["NS2"], lambda: execute_and_match(ZtListNetworks(**kw))[0])
    assert ztlab["NWID"] in [n["nwid"] for n in nets.evidence["networks"]]
    (tmp_path / "bad").write_text("wrongtoken\n")
    with use_lang("en"):
        bad = in_netns(ztlab["NS2"], lambda: ZtStatus(**kw, token_file=str(tmp_path / "bad")).execute("live"))
        missing = ZtStatus(**kw, token_file=str(tmp_path / "absent")).execute("auto")
    assert bad.status == "error" and "401" in bad.message and "rejected" in bad.message
    assert missing.status == "skipped" and "missing authentication token" in missing.message


@pytest.mark.zerotier
def test_join_denied_then_authorized_then_leave_real(ztlab):
    body = json.dumps(
        {
            "name": "labkit-join-test",
            "private": True,
            "v4AssignMode": {"zt": True},
            "ipAssignmentPools": [{"ipRangeStart": "10.245.0.10", "ipRangeEnd": "10.245.0.250"}],
            "routes": [{"target": "10.245.0.0/24", "via": None}],
        }
    )
    nwid = json.loads(controller(ztlab, "POST", f"/controller/network/{ztlab['NODE1']}______", body))["id"]
    with use_lang("en"):
        denied, _ = execute_and_match(ZtJoin(nwid, wait_s=8, **_node2(ztlab)))
    assert denied.status == "fail" and denied.evidence["states"][-1] in (
        "ACCESS_DENIED",
        "REQUESTING_CONFIGURATION",
    )
    with use_lang("en"):
        assert zt.explain_state(denied.evidence["status"], nwid) in denied.message
    controller(ztlab, "POST", f"/controller/network/{nwid}/member/{ztlab['NODE2']}", '{"authorized": true}')
    lines = []
    joined = ZtJoin(nwid, wait_s=40, **_node2(ztlab)).execute("live", on_line=lambda s, t: lines.append(t))
    assert joined.status == "pass", joined.message
    assert joined.evidence["addresses"] and joined.evidence["addresses"][0].startswith("10.245.0.")
    again, _ = execute_and_match(ZtJoin(nwid, **_node2(ztlab)))
    assert again.status == "pass" and again.evidence.get("already_present")
    refused = ZtLeave(nwid, **_node2(ztlab)).execute("auto")
    assert refused.status == "skipped" and refused.evidence.get("keyword") == "confirm"
    left, _ = execute_and_match(ZtLeave(nwid, confirm=True, **_node2(ztlab)))
    assert left.status == "pass" and left.evidence["left"] is True
    nets = zt.parse_listnetworks(_cli(ztlab, f"-D{ztlab['ZT_HOME2']}", "listnetworks").stdout)
    assert nwid not in [n.nwid for n in nets] and ztlab["NWID"] in [n.nwid for n in nets]
    gone, _ = execute_and_match(ZtLeave(nwid, confirm=True, **_node2(ztlab)))
    assert gone.status == "pass" and gone.evidence.get("already_present")


@pytest.mark.zerotier
def test_join_through_local_api_real(ztlab):
    body = json.dumps({"name": "labkit-api-join", "private": False})
    nwid = json.loads(controller(ztlab, "POST", f"/controller/network/{ztlab['NODE1']}______", body))["id"]
    kw = {"home": ztlab["ZT_HOME2"], "via": "api"}
    joined = in_netns(ztlab["NS2"], lambda: execute_and_match(ZtJoin(nwid, wait_s=40, **kw))[0])
    assert joined.status == "pass", joined.message
    assert any(c.startswith("curl -sS -X POST") and nwid in c for c in joined.evidence["commands"])
    left = in_netns(ztlab["NS2"], lambda: execute_and_match(ZtLeave(nwid, confirm=True, **kw))[0])
    assert left.status == "pass" and left.evidence["left"] is True


def test_unavailable_without_zerotier_cli():
    with use_lang("en"):
        result = ZtStatus(cli="/nonexistent/zerotier-cli").execute("auto")
    assert (
        result.status == "skipped" and "not found" in result.message and result.evidence["plan"]["commands"]
    )
