"""Authorizing ZeroTier members (chapter 3, instructor side): controllers, grading facts, the CLI.

The self-hosted controller is the real one embedded in node 1 of ``lab.sh``'s two-node lab
(``tests/zerotier_lab.py``); node 2 is the student's machine. ZeroTier Central is never contacted:
its request path (URL, headers, body) is checked against :class:`CentralStandIn`, a test server on
127.0.0.1 that records requests and answers the way Central's API documents.
"""

from __future__ import annotations

import copy
import http.server
import ipaddress
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planmatch import execute_and_match
from zerotier_helpers import controller, in_netns

from labkit.checks import CHECK_MIME, CheckResult
from labkit.errors import InvalidField
from labkit.grading.classify import CheckGrade
from labkit.grading.facts import FACTS, MAX_ITEMS, MAX_STR, facts_for, nodes_from_report
from labkit.grading.manifest import Manifest, build_release
from labkit.i18n import use_lang
from labkit.logic import zt_controller as zc
from labkit.steps.zerotier import ZtJoin, ZtLeave
from labkit.steps.zt_controller import AuthorizeMembers, ListMembers, local_controller_url

pytest_plugins = ["zerotier_lab"]

ROOT = Path(__file__).resolve().parents[1]
NWID = "1d9a9f65a7d10e71"
TOKEN = "SECRET-TOKEN-7f3a9c21e4"  # recognisable: must appear nowhere it is not sent
CJK = re.compile(r"[\u4e00-\u9fff]")


# ------------------------------------------------------------------------------ pure


def test_central_request_builders():
    ctrl = zc.Controller("central", NWID.upper())
    assert ctrl.url == zc.CENTRAL_URL and ctrl.network == NWID
    req = zc.authorize_request(ctrl, "792A0124AB", zc.Secret(TOKEN))
    assert (req.method, req.url) == (
        "POST",
        f"https://api.zerotier.com/api/v1/network/{NWID}/member/792a0124ab",
    )
    assert json.loads(req.body) == {"config": {"authorized": True}}
    assert req.headers()["Authorization"] == f"token {TOKEN}"
    shown = " ".join(req.curl_argv()) + repr(req) + repr(ctrl)
    assert TOKEN not in shown and "Authorization: token <$ZEROTIER_CENTRAL_TOKEN>" in shown
    listing = zc.member_list_request(ctrl, zc.Secret(TOKEN))
    assert (listing.method, listing.url, listing.body) == (
        "GET",
        f"https://api.zerotier.com/api/v1/network/{NWID}/member",
        None,
    )


def test_local_request_builders_and_secret():
    ctrl = zc.Controller("local", NWID, "http://127.0.0.1:9994/")
    req = zc.authorize_request(ctrl, "792a0124ab", zc.Secret(TOKEN), ["10.245.0.7"])
    assert req.url == f"http://127.0.0.1:9994/controller/network/{NWID}/member/792a0124ab"
    assert json.loads(req.body) == {"authorized": True, "ipAssignments": ["10.245.0.7"]}
    assert req.headers()["X-ZT1-Auth"] == TOKEN and "X-ZT1-Auth: <authtoken.secret>" in req.curl_argv()
    secret = zc.Secret(f"  {TOKEN}\n")
    assert secret.reveal() == TOKEN and TOKEN not in f"{secret!r} {secret} {secret!s}"
    with pytest.raises(TypeError):
        __import__("pickle").dumps(secret)


@pytest.mark.parametrize(
    ("kind", "network", "url", "field"),
    [
        ("cloud", NWID, "", "controller"),
        ("local", "12345", "", "network"),
        ("central", NWID, "http://api.zerotier.com/api/v1", "url"),  # a token never goes out in clear
        ("local", NWID, "ftp://127.0.0.1", "url"),
        ("local", NWID, "http://127.0.0.1:9993/?x=1", "url"),
    ],
)
def test_bad_controller_values_name_the_field(kind, network, url, field):
    with use_lang("en"), pytest.raises(InvalidField) as err:
        zc.Controller(kind, network, url)
    assert err.value.field == field


def test_bad_node_ids_name_the_field():
    for bad in ("792a0124a", "792a0124abc", "zzzzzzzzzz", "", None, 7):
        with use_lang("en"), pytest.raises(InvalidField) as err:
            AuthorizeMembers(NWID, [bad], token=TOKEN)
        assert err.value.field == "nodes" and "10 hex digits" in str(err.value)
    with use_lang("zh"), pytest.raises(InvalidField) as err:
        AuthorizeMembers(NWID, [], token=TOKEN)
    assert CJK.search(str(err.value))


def test_member_parsers_and_actions():
    central = [
        {
            "nodeId": "aaaaaaaaaa",
            "name": "alice",
            "config": {"authorized": True, "ipAssignments": ["10.1.0.2"]},
        },
        {"id": f"{NWID}-bbbbbbbbbb", "config": {"authorized": False}},
        {"nodeId": "not-a-node"},
        "junk",
    ]
    members = {m.node: m for m in zc.parse_member_list("central", central)}
    assert members["aaaaaaaaaa"] == zc.Member("aaaaaaaaaa", True, ("10.1.0.2",), "alice")
    assert members["bbbbbbbbbb"].authorized is False and len(members) == 2
    local = zc.parse_member_list("local", {"aaaaaaaaaa": 3, "bad": 1})
    assert local == [zc.Member("aaaaaaaaaa")]
    wanted = {"aaaaaaaaaa": "s1", "bbbbbbbbbb": "s2", "cccccccccc": "s3"}
    dry = {a.node: a.action for a in zc.plan_actions(wanted, members, apply=False)}
    assert dry == {
        "aaaaaaaaaa": "already_authorized",
        "bbbbbbbbbb": "would_authorize",
        "cccccccccc": "not_member",
    }
    assert zc.plan_actions(wanted, members, apply=True)[1].action == "authorized"


@pytest.mark.parametrize("status", [401, 403, 404, None, 500])
def test_http_problems_in_both_languages(status):
    for kind in zc.KINDS:
        ctrl = zc.Controller(kind, NWID)
        with use_lang("en"):
            en = zc.http_problem(ctrl, status, "connection refused")
        with use_lang("zh"):
            zh = zc.http_problem(ctrl, status, "connection refused")
        assert not CJK.search(en) and CJK.search(zh)
        if status in (401, 403):
            assert "token" in en
        if status == 404:
            assert NWID in en and "no network" in en


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)
_node_like = st.one_of(st.from_regex(r"\A[0-9a-fA-F]{10}\Z"), st.text(max_size=12))


@settings(max_examples=200, deadline=None)
@given(_json, st.sampled_from(zc.KINDS))
def test_member_parsers_never_crash_on_junk(obj, kind):
    try:
        members = zc.parse_member_list(kind, obj)
    except ValueError:
        members = []
    assert len(members) <= zc.MAX_MEMBERS
    assert all(re.fullmatch(r"[0-9a-f]{10}", m.node) and m.authorized in (True, False, None) for m in members)
    try:
        m = zc.parse_member(kind, obj)
    except ValueError:
        return
    assert re.fullmatch(r"[0-9a-f]{10}", m.node) and len(m.addresses) <= 64


def _bounded(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_STR
    if isinstance(value, list):
        return len(value) <= MAX_ITEMS and all(_bounded(v) for v in value)
    if isinstance(value, dict):
        return all(_bounded(v) for v in value.values())
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int)


_evidence = st.dictionaries(
    st.sampled_from(["node", "nwid", "status", "addresses", "peers", "other"]),
    st.one_of(
        _json,
        _node_like,
        st.lists(st.text(max_size=100), max_size=100),
        st.lists(
            st.fixed_dictionaries(
                {
                    "address": st.one_of(
                        _node_like,
                        st.sampled_from(["10.244.0.1", "10.244.0.1/24", "fd00::1", "999.1.1.1", "x"]),
                    ),
                    "reached": _json,
                    "ping_ms": _json,
                    "tcp_ms": _json,
                    "port": _json,
                }
            ),
            max_size=80,
        ),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([*FACTS, "ch1.other"]), st.one_of(_json, _evidence))
def test_facts_are_validated_and_bounded(check, evidence):
    facts = facts_for(check, evidence)
    if check not in FACTS:
        assert facts is None
        return
    assert set(facts) <= set(FACTS[check]) and _bounded(facts)
    assert "node" not in facts or re.fullmatch(r"[0-9a-f]{10}", facts["node"])
    for peer in facts.get("peers", []):
        assert set(peer) == {"address", "reached", "ping_ms", "tcp_ms", "loss", "port"}
        assert isinstance(peer["reached"], bool)
        if not re.fullmatch(r"[0-9a-f]{10}", peer["address"]):
            ipaddress.ip_address(peer["address"])  # a node id or an IP address, nothing else
    json.dumps(facts, allow_nan=False)


_report = st.fixed_dictionaries(
    {
        "students": st.lists(
            st.fixed_dictionaries(
                {
                    "student_id": st.one_of(st.text(max_size=8), _json),
                    "identified": st.one_of(st.booleans(), _json),
                    "notebooks": st.lists(
                        st.fixed_dictionaries(
                            {
                                "checks": st.lists(
                                    st.fixed_dictionaries(
                                        {
                                            "check": st.sampled_from([*FACTS, "x"]),
                                            "facts": st.one_of(
                                                _json,
                                                st.fixed_dictionaries({"node": _node_like, "nwid": _json}),
                                            ),
                                        }
                                    ),
                                    max_size=4,
                                )
                            }
                        ),
                        max_size=2,
                    ),
                }
            ),
            max_size=5,
        )
    }
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_json, _report))
def test_report_reader_never_crashes_and_keeps_only_valid_ids(report):
    found = nodes_from_report(report, NWID)
    assert all(re.fullmatch(r"[0-9a-f]{10}", c.node) and c.student for c in found.claims)
    assert all(len(s) > 1 for s in found.shared.values())
    assert all(isinstance(n, str) for n in found.notes)


def test_check_grade_keeps_facts_pass_or_fail():
    grade = CheckGrade("ch3.zt.join", "pass", 2, 2, "check-passed", "ok", facts={"node": "792a0124ab"})
    assert grade.to_json()["facts"] == {"node": "792a0124ab"} and grade.to_json()["evidence"] == {}
    assert "facts" not in CheckGrade("t.add", "pass", 1, 1, "check-passed", "ok").to_json()


# ------------------------------------------------------------------------------ Central, by a stand-in


class CentralStandIn(http.server.ThreadingHTTPServer):
    """A test server for the Central request path only: on 127.0.0.1, it records each request
    (method, path, headers, body) and answers as https://docs.zerotier.com/openapi/central/v1.json
    describes (member objects with ``nodeId`` and ``config``; 401 without ``Authorization: token
    <TOKEN>``; 404 for another network). Nothing leaves the machine."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.members = {
            "aaaaaaaaaa": {"authorized": True, "ipAssignments": ["10.9.0.2"]},
            "bbbbbbbbbb": {"authorized": False, "ipAssignments": []},
        }
        super().__init__(("127.0.0.1", 0), _CentralHandler)


class _CentralHandler(http.server.BaseHTTPRequestHandler):
    server: CentralStandIn

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        m = re.fullmatch(r"/api/v1/network/([0-9a-f]{16})/member(?:/([0-9a-f]{10}))?", self.path)
        if self.headers.get("Authorization") != f"token {TOKEN}":
            return self._send(401, {"message": "unauthorized"})
        if not m or m.group(1) != NWID:
            return self._send(404, {"message": "not found"})
        node = m.group(2)
        if node is None:
            return self._send(200, [self._member(n) for n in self.server.members])
        if self.command == "POST":
            config = json.loads(body)["config"]
            self.server.members.setdefault(node, {"authorized": False, "ipAssignments": []}).update(config)
        if node not in self.server.members:
            return self._send(404, {"message": "not found"})
        return self._send(200, self._member(node))

    def _member(self, node: str) -> dict[str, Any]:
        return {
            "id": f"{NWID}-{node}",
            "networkId": NWID,
            "nodeId": node,
            "name": "",
            "config": self.server.members[node],
        }

    def _send(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


@pytest.fixture
def central() -> Iterator[CentralStandIn]:
    server = CentralStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _url(server: CentralStandIn) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/api/v1"


def _no_token_anywhere(*things: Any) -> None:
    for thing in things:
        text = thing if isinstance(thing, str) else json.dumps(thing, default=repr, ensure_ascii=False)
        assert TOKEN not in text


def test_central_request_path_dry_run_apply_and_idempotence(central):
    kw = {"controller": "central", "url": _url(central), "token": TOKEN}
    wanted = {"aaaaaaaaaa": "s1", "bbbbbbbbbb": "s2", "cccccccccc": "s3"}
    dry, _ = execute_and_match(AuthorizeMembers(NWID, wanted, **kw))
    assert dry.status == "pass" and [r["method"] for r in central.requests] == ["GET"]
    assert central.requests[0]["path"] == f"/api/v1/network/{NWID}/member"
    assert central.requests[0]["headers"]["Authorization"] == f"token {TOKEN}"
    assert {a["node"]: a["action"] for a in dry.evidence["actions"]} == {
        "aaaaaaaaaa": "already_authorized",
        "bbbbbbbbbb": "would_authorize",
        "cccccccccc": "not_member",
    }
    assert central.members["bbbbbbbbbb"]["authorized"] is False
    step = AuthorizeMembers(NWID, wanted, apply=True, **kw)
    applied, _ = execute_and_match(step)
    assert applied.status == "pass", applied.message
    posts = [r for r in central.requests if r["method"] == "POST"]
    assert [p["path"] for p in posts] == [f"/api/v1/network/{NWID}/member/bbbbbbbbbb"]
    assert json.loads(posts[0]["body"]) == {"config": {"authorized": True}}
    assert posts[0]["headers"]["Content-Type"] == "application/json"
    assert central.members["bbbbbbbbbb"]["authorized"] is True
    again, _ = execute_and_match(AuthorizeMembers(NWID, wanted, apply=True, **kw))
    assert len([r for r in central.requests if r["method"] == "POST"]) == 1  # nothing posted twice
    assert again.evidence["counts"] == {"already_authorized": 2, "not_member": 1}
    _no_token_anywhere(
        dry.to_payload(), applied.to_payload(), str(step.plan()), repr(step), again.to_payload()
    )


def test_a_saved_notebook_never_holds_the_central_token(central, tmp_path, monkeypatch):
    """A notebook that authorizes through Central with the token from the environment (and one
    with a wrong token, which fails): the saved .ipynb holds results, plans and errors, never the token."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv(zc.TOKEN_ENV, TOKEN)
    url = _url(central)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from labkit.steps.zt_controller import AuthorizeMembers\n"
            f"step = AuthorizeMembers({NWID!r}, {{'bbbbbbbbbb': 's2'}}, apply=True, controller='central', "
            f"url={url!r})\nprint(step.plan())\nstep"
        ),
        nbformat.v4.new_code_cell("result = step.execute('live')\nresult"),
        nbformat.v4.new_code_cell("import os\nprint(result.message, result.evidence)\nresult.to_payload()"),
        nbformat.v4.new_code_cell(
            "os.environ['ZEROTIER_CENTRAL_TOKEN'] = 'WRONG-' + os.environ['ZEROTIER_CENTRAL_TOKEN']\n"
            f"AuthorizeMembers({NWID!r}, ['aaaaaaaaaa'], controller='central', url={url!r}).execute('live')"
        ),
    ]
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    path = tmp_path / "authorize.ipynb"
    nbformat.write(nb, path)
    saved = path.read_text(encoding="utf-8")
    assert central.members["bbbbbbbbbb"]["authorized"] is True  # the token was really used
    assert CHECK_MIME in saved and "401" in saved  # results and the refusal were saved
    assert TOKEN not in saved


def test_central_refusals_are_explained_without_the_token(central):
    with use_lang("en"):
        bad = AuthorizeMembers(
            NWID, ["aaaaaaaaaa"], controller="central", url=_url(central), token="WRONG-1"
        ).execute("live")
        other = ListMembers("0123456789abcdef", controller="central", url=_url(central), token=TOKEN).execute(
            "live"
        )
    assert bad.status == "error" and "Central refused the API token (HTTP 401)" in bad.message
    assert other.status == "error" and "has no network 0123456789abcdef" in other.message
    _no_token_anywhere(other.to_payload(), other.message)


def test_unreachable_controller_and_missing_token(tmp_path, monkeypatch):
    monkeypatch.delenv(zc.TOKEN_ENV, raising=False)
    with use_lang("en"):
        refused = ListMembers(NWID, url="http://127.0.0.1:1", token=TOKEN).execute("live")
        missing = ListMembers(NWID, controller="central").execute("auto")
        no_file = ListMembers(NWID, token_file=str(tmp_path / "absent")).execute("auto")
    assert (
        refused.status == "error" and "cannot reach the controller at http://127.0.0.1:1" in refused.message
    )
    assert missing.status == "skipped" and zc.TOKEN_ENV in missing.message and "notebook" in missing.message
    assert no_file.status == "skipped" and "cannot read the token file" in no_file.message


def _vlan(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    argv = [*prefix, sys.executable, "-m", "labkit", "vlan", *args]
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env=full, stdin=subprocess.DEVNULL
    )


def _report_file(tmp_path: Path, results: dict[str, list[CheckResult]]) -> Path:
    """A report.json written by the real ``labkit grade`` (grading.grade.main) from notebooks
    whose check cells hold the given real check results (student id → results)."""
    from labkit.grading.grade import main as grade

    def cell(cid: str, source: str, **meta: Any) -> dict[str, Any]:
        return {
            "cell_type": "code",
            "id": cid,
            "metadata": meta,
            "source": source,
            "outputs": [],
            "execution_count": None,
        }

    course = {
        "cells": [
            cell(
                "s",
                "display(ZtStatus().execute(mode))",
                labkit={"check": "ch3.zt.status", "points": 1},
                tags=["labkit-check"],
            ),
            cell(
                "j",
                "display(ZtJoin(NWID).execute(mode))",
                labkit={"check": "ch3.zt.join", "points": 2},
                tags=["labkit-check"],
            ),
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    student_nb, spec = build_release(course, name="04-vlan.ipynb", course="c3", assignment="vlan")
    subs = tmp_path / "subs"
    subs.mkdir()
    for sid, checks in results.items():
        nb = copy.deepcopy(student_nb)
        for r in checks:
            c = next(c for c in nb["cells"] if c["metadata"]["labkit"]["check"] == r.check)
            c["outputs"] = [
                {"output_type": "display_data", "metadata": {}, "data": {CHECK_MIME: r.to_payload()}}
            ]
            c["execution_count"] = 1
        (subs / f"{sid}_04-vlan.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    out = tmp_path / "grades"
    grade(submissions=[subs], manifest=Manifest("c3", "vlan", (spec,)), out_dir=out, jobs=1, plot=False)
    return out / "report.json"


def test_cli_against_central_stand_in_keeps_the_token_secret(central, tmp_path):
    results = {
        "s001": [
            CheckResult.failed("ch3.zt.join", "denied", node="bbbbbbbbbb", nwid=NWID, status="ACCESS_DENIED")
        ],
        "s002": [CheckResult.passed("ch3.zt.status", "ok", node="aaaaaaaaaa", state="ONLINE", peers=[])],
        "s003": [CheckResult.passed("ch3.zt.status", "ok", node="bbbbbbbbbb", state="ONLINE", peers=[])],
    }
    report = _report_file(tmp_path, results)
    args = [
        "authorize",
        "--network",
        NWID,
        "--from-grades",
        str(report),
        "--controller",
        "central",
        "--url",
        _url(central),
        "--lang",
        "en",
    ]
    env = {"ZEROTIER_CENTRAL_TOKEN": TOKEN}
    dry = _vlan(*args, env=env)
    assert dry.returncode == 0, dry.stderr
    assert re.search(r"s001, s003 \*\s+bbbbbbbbbb\s+would authorize", dry.stdout), dry.stdout
    assert re.search(r"s002\s+aaaaaaaaaa\s+already authorized", dry.stdout)
    assert "several students" in dry.stderr and "dry run, nothing changed" in dry.stdout
    assert "--apply" in dry.stdout and central.members["bbbbbbbbbb"]["authorized"] is False
    applied = _vlan(*args, "--apply", env=env)
    assert applied.returncode == 0 and re.search(r"bbbbbbbbbb\s+authorized now", applied.stdout)
    assert central.members["bbbbbbbbbb"]["authorized"] is True
    bad = _vlan(*args, env={"ZEROTIER_CENTRAL_TOKEN": "WRONG-2"})
    assert bad.returncode == 1 and "Central refused the API token (HTTP 401)" in bad.stderr
    (tmp_path / "tok").write_text(TOKEN + "\n")
    by_file = _vlan(*args, "--token-file", str(tmp_path / "tok"), env={"ZEROTIER_CENTRAL_TOKEN": ""})
    assert by_file.returncode == 0 and "already authorized" in by_file.stdout
    none = _vlan(*args, env={"ZEROTIER_CENTRAL_TOKEN": ""})
    assert none.returncode == 2 and "ZEROTIER_CENTRAL_TOKEN" in none.stderr
    _no_token_anywhere(
        dry.stdout, dry.stderr, applied.stdout, applied.stderr, by_file.stdout, report.read_text()
    )
    for name in os.listdir(report.parent):
        if os.path.isfile(report.parent / name):
            assert TOKEN.encode() not in (report.parent / name).read_bytes()


def test_cli_bad_arguments_and_unreadable_reports(tmp_path):
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"students": []}')
    cases = [
        (["authorize", "--network", "12345", "--from-grades", "x"], "16 hex digits"),
        (["authorize", "--network", NWID, "--from-grades", str(tmp_path / "absent.json")], "cannot read"),
        (["authorize", "--network", NWID, "--from-grades", str(tmp_path / "junk.json")], "not a report.json"),
        (
            ["authorize", "--network", NWID, "--from-grades", str(tmp_path / "other.json")],
            "not a report.json",
        ),
        (["authorize", "--network", NWID], "--from-grades"),
        (["authorize", "--network", NWID, "--from-grades", "x", "--controller", "cloud"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
    ]
    for args, expected in cases:
        done = (
            _vlan(*args, "--lang", "en")
            if args[0] == "authorize" and "--controller" not in args
            else _vlan(*args)
        )
        assert done.returncode == 2, (args, done.stderr)
        assert expected in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)


# ------------------------------------------------------------------------------ the real lab


def _node2(env: dict[str, str], **kw: Any) -> dict[str, Any]:
    return {
        "cli": os.path.join(env["ZT_BIN"], "zerotier-cli"),
        "home": env["ZT_HOME2"],
        "prefix": ("ip", "netns", "exec", env["NS2"]),
        **kw,
    }


def _local(env: dict[str, str], **kw: Any) -> dict[str, Any]:
    return {
        "controller": "local",
        "url": f"http://127.0.0.1:{env['ZT_PORT1']}",
        "home": env["ZT_HOME1"],
        **kw,
    }


def _new_network(env: dict[str, str], name: str, subnet: str) -> str:
    body = {
        "name": name,
        "private": True,
        "v4AssignMode": {"zt": True},
        "ipAssignmentPools": [{"ipRangeStart": f"{subnet}.10", "ipRangeEnd": f"{subnet}.250"}],
        "routes": [{"target": f"{subnet}.0/24", "via": None}],
    }
    return json.loads(controller(env, "POST", f"/controller/network/{env['NODE1']}______", json.dumps(body)))[
        "id"
    ]


def _member(env: dict[str, str], nwid: str, node: str) -> dict[str, Any]:
    return json.loads(controller(env, "GET", f"/controller/network/{nwid}/member/{node}"))


def _denied_join(env: dict[str, str], nwid: str) -> CheckResult:
    """Node 2 joins the private network: not authorized, so the join fails, with its node id."""
    with use_lang("en"):
        denied, _ = execute_and_match(ZtJoin(nwid, wait_s=10, **_node2(env)))
    assert denied.status == "fail" and denied.evidence["node"] == env["NODE2"]
    assert denied.evidence["nwid"] == nwid and env["NODE2"] in denied.message
    deadline = time.monotonic() + 30  # the controller lists a node once its request arrived
    while env["NODE2"] not in json.loads(controller(env, "GET", f"/controller/network/{nwid}/member")):
        assert time.monotonic() < deadline, "node 2 never reached the controller"
        time.sleep(1)
    return denied


@pytest.mark.zerotier
def test_local_controller_dry_run_apply_then_ok(ztlab):
    env = ztlab
    nwid = _new_network(env, "labkit-authorize-test", "10.245.0")
    try:
        denied = _denied_join(env, nwid)
        facts = facts_for("ch3.zt.join", denied.evidence)
        assert facts["node"] == env["NODE2"] and facts["nwid"] == nwid
        listed = in_netns(
            env["NS1"], lambda: execute_and_match(ListMembers(nwid, nodes=[env["NODE2"]], **_local(env)))[0]
        )
        assert {"node": env["NODE2"], "authorized": False} in [
            {k: m[k] for k in ("node", "authorized")} for m in listed.evidence["members"]
        ]
        wanted = {env["NODE2"]: "s001", "0123456789": "s002"}
        dry = in_netns(
            env["NS1"], lambda: execute_and_match(AuthorizeMembers(nwid, wanted, **_local(env)))[0]
        )
        assert dry.status == "pass" and {a["node"]: a["action"] for a in dry.evidence["actions"]} == {
            env["NODE2"]: "would_authorize",
            "0123456789": "not_member",
        }
        assert _member(env, nwid, env["NODE2"])["authorized"] is False  # the dry run changed nothing
        assert not any("POST" in c for c in dry.evidence["commands"])
        step = AuthorizeMembers(nwid, wanted, apply=True, **_local(env))
        applied = in_netns(env["NS1"], lambda: execute_and_match(step)[0])
        assert applied.status == "pass", applied.message
        assert applied.evidence["counts"] == {"authorized": 1, "not_member": 1}
        assert _member(env, nwid, env["NODE2"])["authorized"] is True
        again = in_netns(
            env["NS1"],
            lambda: execute_and_match(AuthorizeMembers(nwid, wanted, apply=True, **_local(env)))[0],
        )
        assert again.evidence["counts"] == {"already_authorized": 1, "not_member": 1}
        assert not any("POST" in c for c in again.evidence["commands"])
        joined = ZtJoin(nwid, wait_s=45, **_node2(env)).execute("live")
        assert joined.status == "pass", joined.message
        assert joined.evidence["node"] == env["NODE2"] and joined.evidence["addresses"][0].startswith(
            "10.245.0."
        )
        token = Path(env["ZT_HOME1"], "authtoken.secret").read_text().strip()
        for r in (dry, applied, again):
            assert token not in json.dumps(r.to_payload()) and token not in str(step.plan())
    finally:
        ZtLeave(nwid, confirm=True, **_node2(env)).execute("live")


@pytest.mark.zerotier
def test_local_controller_bad_token_and_unknown_network(ztlab, tmp_path):
    env = ztlab
    (tmp_path / "bad").write_text(TOKEN + "\n")
    with use_lang("en"):
        bad = in_netns(
            env["NS1"],
            lambda: ListMembers(env["NWID"], **_local(env, token_file=str(tmp_path / "bad"))).execute("live"),
        )
        unknown = in_netns(
            env["NS1"], lambda: ListMembers(env["NODE1"] + "abcdef", **_local(env)).execute("live")
        )
    assert bad.status == "error" and "refused the token (HTTP 401)" in bad.message, bad.message
    assert "authtoken.secret" in bad.message
    _no_token_anywhere(bad.to_payload(), bad.message)
    assert unknown.status == "error" and "has no network" in unknown.message, unknown.message
    every = in_netns(env["NS1"], lambda: ListMembers(env["NWID"], **_local(env)).execute("live"))
    assert every.status == "pass", every.message
    assert {m["node"]: m["authorized"] for m in every.evidence["members"]} == {
        env["NODE1"]: True,
        env["NODE2"]: True,
    }
    assert [a for m in every.evidence["members"] for a in m["addresses"]] != []
    assert len(every.evidence["commands"]) == 3  # the list, then each member's record
    assert (
        in_netns(env["NS1"], lambda: local_controller_url(env["ZT_HOME1"]))
        == f"http://127.0.0.1:{env['ZT_PORT1']}"
    )


@pytest.mark.zerotier
def test_cli_authorizes_from_real_grades_against_the_lab(ztlab, tmp_path):
    env = ztlab
    nwid = _new_network(env, "labkit-cli-authorize", "10.246.0")
    try:
        denied = _denied_join(env, nwid)
        report = _report_file(
            tmp_path,
            {
                "s001": [denied],
                "s002": [
                    CheckResult.passed("ch3.zt.status", "ok", node="0123456789", state="ONLINE", peers=[])
                ],
            },
        )
        graded = {s["student_id"]: s for s in json.loads(report.read_text())["students"]}
        join = next(
            c for nb in graded["s001"]["notebooks"] for c in nb["checks"] if c["check"] == "ch3.zt.join"
        )
        assert join["status"] == "fail" and join["facts"]["node"] == env["NODE2"]
        assert join["facts"]["status"] in ("ACCESS_DENIED", "REQUESTING_CONFIGURATION")
        ns = ("ip", "netns", "exec", env["NS1"])
        args = [
            "authorize",
            "--network",
            nwid,
            "--from-grades",
            str(report),
            "--home",
            env["ZT_HOME1"],
            "--lang",
            "en",
        ]
        dry = _vlan(*args, prefix=ns)
        assert dry.returncode == 0, dry.stderr
        assert re.search(rf"s001\s+{env['NODE2']}\s+would authorize", dry.stdout), dry.stdout
        assert re.search(r"s002\s+0123456789\s+not a member yet", dry.stdout)
        assert _member(env, nwid, env["NODE2"])["authorized"] is False
        applied = _vlan(*args, "--apply", prefix=ns)
        assert applied.returncode == 0 and re.search(rf"{env['NODE2']}\s+authorized now", applied.stdout), (
            applied.stdout
        )
        assert _member(env, nwid, env["NODE2"])["authorized"] is True
        token = Path(env["ZT_HOME1"], "authtoken.secret").read_text().strip()
        assert token not in dry.stdout + dry.stderr + applied.stdout + applied.stderr
        joined = ZtJoin(nwid, wait_s=45, **_node2(env)).execute("live")
        assert joined.status == "pass" and joined.evidence["addresses"][0].startswith("10.246.0."), (
            joined.message
        )
        (tmp_path / "bad").write_text("not-the-token\n")
        bad = _vlan(*args, "--token-file", str(tmp_path / "bad"), prefix=ns)
        assert (
            bad.returncode == 1
            and "refused the token (HTTP 401)" in bad.stderr
            and "Traceback" not in bad.stderr
        )
    finally:
        ZtLeave(nwid, confirm=True, **_node2(env)).execute("live")


def test_cli_prompts_for_the_central_token_without_echo(central, tmp_path):
    """On a terminal with no token file or variable, the token is asked for with echo off."""
    import pty

    report = _report_file(
        tmp_path, {"s001": [CheckResult.failed("ch3.zt.join", "denied", node="bbbbbbbbbb", nwid=NWID)]}
    )
    argv = [
        sys.executable,
        "-m",
        "labkit",
        "vlan",
        "authorize",
        "--network",
        NWID,
        "--from-grades",
        str(report),
    ]
    argv += ["--controller", "central", "--url", _url(central), "--lang", "en"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZEROTIER_CENTRAL_TOKEN": ""}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on a terminal
        os.execve(sys.executable, argv, env)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while b"(hidden)" not in output and time.monotonic() < deadline:
            output += os.read(fd, 4096)
        os.write(fd, TOKEN.encode() + b"\n")
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        _, status = os.waitpid(pid, 0)
    text = output.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "ZeroTier Central API token (hidden)" in text and "would authorize" in text
    assert TOKEN not in text
    assert [r["headers"]["Authorization"] for r in central.requests] == [f"token {TOKEN}"]


def test_the_chinese_authorize_table_lines_up():
    """Column widths count a CJK character as two terminal columns (学生 / 本来已授权 …)."""
    import io

    from labkit.vlancli import _table, _width

    actions = [
        {"label": "s001", "node": "bbbbbbbbbb", "action": "already_authorized", "addresses": ["10.244.0.2"]},
        {"label": "张三", "node": "aaaaaaaaaa", "action": "not_member", "addresses": []},
    ]
    out = io.StringIO()
    with use_lang("zh"):
        _table({"actions": actions}, {}, out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "本来已授权" in lines[1] and "张三" in lines[2]
    node_col = {
        _width(line[: line.index(n)])
        for line, n in zip(lines, ("节点", "bbbbbbbbbb", "aaaaaaaaaa"), strict=True)
    }
    assert len(node_col) == 1, lines
    addr_col = {
        _width(line[: line.index(a)]) for line, a in zip(lines[:2], ("地址", "10.244.0.2"), strict=True)
    }
    assert len(addr_col) == 1, lines


def test_an_unusable_token_file_points_to_where_that_controllers_token_lives(tmp_path):
    """A Central token file that is empty: the hint is Central's Account page, not a controller
    node's authtoken.secret (and the other way round)."""
    from labkit.steps.zt_controller import ControllerFailed

    empty = tmp_path / "token"
    empty.write_text("")
    for kind, says, not_says in (
        ("central", "Account page of my.zerotier.com", "authtoken.secret"),
        ("local", "authtoken.secret", "my.zerotier.com"),
    ):
        url = None if kind == "central" else "http://127.0.0.1:9993"
        step = AuthorizeMembers(NWID, {"aaaaaaaaaa": "s1"}, controller=kind, url=url, token_file=str(empty))
        with use_lang("en"), pytest.raises(ControllerFailed) as bad:
            step.secret()
        assert says in str(bad.value) and not_says not in str(bad.value), str(bad.value)
