"""``labkit vlan matrix``: the class reachability matrix from a ``labkit grade`` report.json.

The reports are built from the grading objects (``CheckGrade`` / ``NotebookEntry`` /
``StudentGrade`` ``.to_json()``) with the ``facts`` key the grader adds to each check entry, the
facts in the shape :class:`labkit.steps.reach.ReachPeers` records. Hostile reports end in one
clear line and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.grading.classify import CheckGrade
from labkit.grading.facts import facts_for
from labkit.grading.gradebook import NotebookEntry, StudentGrade
from labkit.grading.vlan_matrix import (
    NOT_REACHED,
    REACHED,
    SELF,
    UNTRIED,
    MatrixError,
    add_matrix_arguments,
    build_matrix,
    matrix_cli,
    matrix_main,
    members_from_report,
)
from labkit.i18n import use_lang
from labkit.logic import reach as rc


def _peer(address, reached, port=9993):
    ping = rc.PingResult(3, 3, 0.0, 0.3, 0.4, 0.5) if reached else rc.PingResult(3, 0, 100.0)
    tcp = rc.TcpResult(True, 0.6) if reached else rc.TcpResult(False, None, "timeout")
    return rc.peer_evidence(address, port, ping, tcp)


def _student(sid, name, facts=None, other=True, raw=False):
    checks = []
    if other:
        checks.append(CheckGrade("ch3.zt.join", "pass", 1, 1, "ok", "ok").to_json())
    if facts is not None:  # as labkit grade writes it: the grader's facts of the check's evidence
        kept = facts_for("ch3.zt.reach", facts) if raw is False else facts
        checks.append(CheckGrade("ch3.zt.reach", "pass", 2, 2, "ok", "ok", facts=kept).to_json())
    nb = NotebookEntry("04-distributed-vlan.ipynb", "ok", 3).to_json()
    return StudentGrade(sid, name, True, []).to_json() | {"notebooks": [{**nb, "checks": checks}]}


def _facts(node, addresses, peers):
    return {"node": node, "nwid": "1d9a9f65a7d10e71", "addresses": addresses, "peers": peers}


@pytest.fixture
def report():
    return {
        "tool": "labkit grade",
        "students": [
            _student(
                "s1",
                "张三",
                _facts(
                    "aaaaaaaaaa",
                    ["10.244.0.1/24"],
                    [_peer("10.244.0.2", True), _peer("10.244.0.3", False), _peer("10.244.0.77", False)],
                ),
            ),
            _student("s2", "李四", _facts("bbbbbbbbbb", ["10.244.0.2/24"], [_peer("10.244.0.1", True)])),
            _student("s3", "王五", None),  # no ch3.zt.reach check in the notebook
            _student(
                "s4",
                "",
                _facts(
                    "cccccccccc",
                    ["10.244.0.3/24", "not-an-ip", 7],
                    [{"address": 5}, "junk", _peer("fd00::9", True)],
                ),
                raw=True,  # junk as a hand-edited report could carry it, past the grader's filter
            ),
            "not a student",
        ],
    }


def test_matrix_cells(report):
    members, skipped = members_from_report(report)
    matrix = build_matrix(members, skipped)
    assert [m.student for m in matrix.rows] == ["s1", "s2", "s3", "s4"]
    assert [c.label for c in matrix.columns] == [
        "s1 张三",
        "s2 李四",
        "s3 王五",
        "s4",
        "10.244.0.77",
        "fd00::9",
    ]
    s1, s2, s3, s4 = matrix.cells
    assert s1 == [SELF, REACHED, UNTRIED, NOT_REACHED, NOT_REACHED, UNTRIED]
    assert s2 == [REACHED, SELF, UNTRIED, UNTRIED, UNTRIED, UNTRIED]
    assert s3 == [UNTRIED, UNTRIED, SELF, UNTRIED, UNTRIED, UNTRIED] and not matrix.rows[2].has_check
    assert s4[-1] == REACHED and matrix.rows[3].addresses == ("10.244.0.3",)
    assert matrix.skipped == 5  # two addresses, two peers, one student entry
    assert matrix.counts() == {REACHED: 3, NOT_REACHED: 2}


def test_reached_anywhere_counts_across_notebooks():
    first = _student("s1", "", _facts("aaaaaaaaaa", ["10.244.0.1"], [_peer("10.244.0.2", False)]))
    again = _student("s1", "", _facts("aaaaaaaaaa", ["10.244.0.1"], [_peer("10.244.0.2", True)]))
    first["notebooks"] += again["notebooks"]
    other = _student("s2", "", _facts("bbbbbbbbbb", ["10.244.0.2"], []))
    matrix = build_matrix(members_from_report({"students": [first, other]})[0])
    assert matrix.cells[0] == [SELF, REACHED]


def test_cli_writes_png_csv_and_table(tmp_path, report):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_matrix_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    args = parser.parse_args([str(path), "--out", str(tmp_path / "m.png"), "--lang", "en"])
    assert matrix_cli(args) == 0
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (tmp_path / "m.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "student,name,has_check,s1 张三,s2 李四,s3 王五,s4,10.244.0.77,fd00::9"
    assert lines[1] == "s1,张三,yes,self,reached,,not_reached,not_reached,"
    with use_lang("zh"):
        assert matrix_main(report=path, out=tmp_path / "z.png", stdout=out, stderr=err) == 0
    assert "✓" in out.getvalue() and "✗" in out.getvalue() and "无 ch3.zt.reach 结果" in out.getvalue()
    assert "4 名学生" in err.getvalue() and (tmp_path / "z.csv").exists()


def test_csv_cells_cannot_become_formulas(tmp_path):
    student = _student("s1", "=HYPERLINK(1)", _facts("aaaaaaaaaa", ["10.0.0.1"], []))
    matrix = build_matrix(members_from_report({"students": [student]})[0])
    assert "'=HYPERLINK(1)" in matrix.csv()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "not JSON"),
        (b'{"students": [' + b"1" * 5000 + b"]}", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"\xff\xfe\x00junk", "not JSON"),
        (b'{"tool": "labkit grade", "students": {}}', "no students list"),
        (b'{"students": []}', "not a report.json written by labkit grade"),
        (b"[]", "not a report.json written by labkit grade"),
    ],
)
def test_hostile_reports_end_in_one_clear_line(tmp_path, content, says):
    path = tmp_path / "report.json"
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    with use_lang("en"):
        assert matrix_main(report=path, out=tmp_path / "m.png", stdout=out, stderr=err) == 2
    assert err.getvalue().startswith("labkit vlan matrix: ") and says in err.getvalue()
    assert "Traceback" not in err.getvalue() and not (tmp_path / "m.png").exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "第 1 行第 1 列有错"),
        (b"[" * 100_000, "嵌套太深"),
        (b"\xff\xfe\x00junk", "不是 UTF-8 文本"),
        (b'{"students": [' + b"1" * 5000 + b"]}", "含有无法读取的值"),
    ],
)
def test_not_json_is_said_in_chinese_without_pythons_words(tmp_path, content, says):
    """Python's own error texts (recursion depth, codec names) never reach the instructor."""
    path = tmp_path / "report.json"
    path.write_bytes(content)
    err = io.StringIO()
    with use_lang("zh"):
        assert matrix_main(report=path, out=tmp_path / "m.png", stderr=err) == 2
    line = err.getvalue()
    assert line.count("\n") == 1 and "不是 JSON" in line and says in line
    assert not any(w in line for w in ("recursion", "codec", "Expecting", "limit", "Traceback"))


def test_an_unwritable_picture_is_one_clear_line(tmp_path):
    path = tmp_path / "report.json"
    path.write_text('{"tool": "labkit grade", "students": []}')
    err = io.StringIO()
    with use_lang("zh"):
        assert matrix_main(report=path, out=tmp_path / "no" / "m.png", stderr=err) == 2
    assert err.getvalue().startswith(f"labkit vlan matrix: 写不了 {tmp_path / 'no' / 'm.png'}：")


def test_missing_big_and_unwritable(tmp_path, monkeypatch):
    err = io.StringIO()
    with use_lang("en"):
        assert matrix_main(report=tmp_path / "nope.json", out=tmp_path / "m.png", stderr=err) == 2
        assert "cannot read" in err.getvalue()
        big = tmp_path / "big.json"
        big.write_text(json.dumps({"tool": "labkit grade", "students": []}) + " " * 2000)
        monkeypatch.setattr("labkit.grading.vlan_matrix.MAX_REPORT_BYTES", 1000)
        err = io.StringIO()
        assert matrix_main(report=big, out=tmp_path / "m.png", stderr=err) == 2
        assert "too large" in err.getvalue()
        monkeypatch.undo()
        err = io.StringIO()
        assert matrix_main(report=big, out=tmp_path / "no" / "dir" / "m.png", stderr=err) == 2
        assert err.getvalue().startswith("labkit vlan matrix: ") and "Traceback" not in err.getvalue()
        err = io.StringIO()
        assert matrix_main(report=tmp_path, out=tmp_path / "m.png", stderr=err) == 2
        assert "cannot read" in err.getvalue()
    empty = tmp_path / "empty.json"
    empty.write_text('{"tool": "labkit grade", "students": []}')
    assert matrix_main(report=empty, out=tmp_path / "e.png", stdout=io.StringIO(), stderr=io.StringIO()) == 0
    header_only = (tmp_path / "e.csv").read_text(encoding="utf-8-sig").splitlines()
    assert (tmp_path / "e.png").exists() and header_only == ["student,name,has_check"]
    with pytest.raises(MatrixError):
        members_from_report({"students": [{}] * 3000})


_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "students",
                    "notebooks",
                    "checks",
                    "check",
                    "facts",
                    "addresses",
                    "peers",
                    "address",
                    "reached",
                    "x",
                ]
            ),
            inner | st.just("ch3.zt.reach") | st.just("10.244.0.5/24"),
            max_size=5,
        )
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(_junk)
def test_junk_reports_never_crash(obj):
    report = obj if isinstance(obj, dict) else {"students": [obj]}
    members, skipped = members_from_report(report)
    matrix = build_matrix(members, skipped)
    assert len(matrix.cells) == len(members) and all(len(r) == len(matrix.columns) for r in matrix.cells)
    assert {c for r in matrix.cells for c in r} <= {REACHED, NOT_REACHED, UNTRIED, SELF}


def test_real_reach_evidence_through_the_grader_facts(tmp_path):
    """A real ReachPeers run (loopback, a listening socket) → the grader's facts → the matrix."""
    import socket

    from labkit.steps.reach import ReachPeers

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        result = ReachPeers(["127.0.0.1", "10.244.0.2"], port=sock.getsockname()[1], count=1).execute("live")
    me = result.evidence | {"node": "aaaaaaaaaa", "addresses": ["10.244.0.1/24"]}
    other = _facts("bbbbbbbbbb", ["10.244.0.2/24"], [_peer("aaaaaaaaaa", True)])  # a peer named by node id
    report = {"students": [_student("s1", "", me), _student("s2", "", other)]}
    assert report["students"][0]["notebooks"][0]["checks"][1]["facts"]["peers"][0]["address"] == "127.0.0.1"
    matrix = build_matrix(*members_from_report(report))
    assert [c.label for c in matrix.columns] == ["s1", "s2", "127.0.0.1"]
    assert matrix.cells[1][0] == REACHED and matrix.cells[0][2] == REACHED
    assert matrix.cells[0][1] in (REACHED, NOT_REACHED)  # 10.244.0.2 exists nowhere on this host


def test_labkit_vlan_matrix_command(tmp_path, report):
    """The installed command: `labkit vlan matrix` writes the picture; bad arguments exit 2."""
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    labkit = [sys.executable, "-m", "labkit"]
    done = subprocess.run(
        [*labkit, "vlan", "matrix", str(path), "--out", str(tmp_path / "class.png"), "--lang", "en"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "class.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "4 students" in done.stderr and (tmp_path / "class.csv").is_file()
    bad = subprocess.run([*labkit, "vlan", "matrix"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
