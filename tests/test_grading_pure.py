"""The pure parts of grading, fast: checksums, manifests, classification, gradebook, rendering.

Notebooks here are the committed course fixture (tests/data/grading/01-lab.ipynb) and the real
chapter-1 notebook, released in memory; the check outputs put into them are real
:class:`~labkit.checks.CheckResult` payloads, edited the way a student (or an attacker) would.
The real executions are in tests/test_grading.py.
"""

from __future__ import annotations

import ast
import copy
import csv
import html
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.checks import CHECK_MIME, CheckResult, payload_digest, verify_payload
from labkit.errors import Cancelled, ConsentRequired, InvalidField
from labkit.grading.classify import Submission, classify_notebook
from labkit.grading.collect import Source, compile_id_pattern, id_from_path, read_source
from labkit.grading.gradebook import assemble
from labkit.grading.manifest import (
    Manifest,
    build_release,
    course_check_cells,
    normalize_source,
    source_sha256,
)
from labkit.grading.render import feedback_html, gradebook_csv, lms_csv
from labkit.i18n import use_labels, use_lang
from labkit.identity import STUDENT_MIME, StudentIdentity, check_student_id, identify, whoami
from labkit.steps.base import Plan, Step, overwrite_label, refuse_replacing

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "tests" / "data" / "grading" / "01-lab.ipynb"
CH1 = ROOT / "notebooks" / "01-virtualization.ipynb"


@pytest.fixture(autouse=True)
def _english(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def released() -> tuple[dict[str, Any], Manifest]:
    student, spec = build_release(
        _load(COURSE), name="01-lab.ipynb", course="c1", assignment="a1", release="r1"
    )
    return student, Manifest("c1", "a1", (spec,))


def _cell(nb: dict[str, Any], check: str) -> dict[str, Any]:
    return next(c for c in nb["cells"] if (c["metadata"].get("labkit") or {}).get("check") == check)


def _out(payload: dict[str, Any] | str) -> dict[str, Any]:
    return {"output_type": "display_data", "metadata": {}, "data": {CHECK_MIME: payload}}


def _ran(nb: dict[str, Any], check: str, *results: CheckResult) -> dict[str, Any]:
    cell = _cell(nb, check)
    cell["outputs"] = [_out(r.to_payload()) for r in results]
    cell["execution_count"] = 7
    return cell


def _all_pass(released) -> dict[str, Any]:
    nb = copy.deepcopy(released[0])
    for check in ("t.add", "t.upper", "t.host"):
        _ran(nb, check, CheckResult.passed(check, "ok"))
    return nb


def _status(sub: Submission) -> dict[str, tuple[str, str]]:
    return {c.check: (c.status, c.reason) for c in sub.checks}


# -- checksums ---------------------------------------------------------------------------------------
_lines = st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=20), max_size=8)


@given(_lines)
def test_normalized_source_ignores_what_editors_change(lines):
    text = "\n".join(lines)
    as_list = [line + "\n" for line in lines]
    assert source_sha256(text) == source_sha256(as_list) == source_sha256(text.replace("\n", "\r\n"))
    assert source_sha256(text) == source_sha256("\n".join(line + "  \t" for line in lines) + "\n\n")
    assert "\r" not in normalize_source(text.replace("\n", "\r\n"))


@given(_lines, st.text(alphabet="abcxyz=()1", min_size=1, max_size=5))
def test_any_real_edit_changes_the_checksum(lines, extra):
    text = "\n".join(lines)
    assert source_sha256(text) != source_sha256(text + "\n" + extra)


# -- release / manifest ------------------------------------------------------------------------------
def test_release_of_chapter_1_marks_the_graded_checks_only():
    nb = _load(CH1)
    student, spec = build_release(nb, name=CH1.name, course="bigdata-2026", assignment="ch1")
    checks = {c.check: c.points for c in spec.checks}
    assert len(checks) == 14
    assert spec.total_points == 22
    assert not {"ch1.hyperv.disable", "ch1.hyperv.enable", "ch1.vbox.network", "ch1.pve.destroy"} & set(
        checks
    )
    assert not any("libvirt" in c for c in checks)
    assert set(student["metadata"]["labkit"]) >= {"course", "assignment", "release"}
    assert student["metadata"]["labkit"]["release"] == spec.release
    text = json.dumps(student, ensure_ascii=False)
    assert not any(c.source_sha256 in text for c in spec.checks)
    for c in spec.checks:
        cell = student["cells"][c.index]
        assert cell["metadata"]["labkit"] == {
            "check": c.check,
            "points": c.points,
            **({"rerun": True} if c.rerun else {}),
        }
        assert c.source == (normalize_source(cell["source"]) if c.rerun else None)
        assert "labkit-check" in cell["metadata"]["tags"]
        assert cell["id"] == c.cell_id
        assert source_sha256(cell["source"]) == c.source_sha256
    # issue 9: the checks whose artifacts a grading machine can re-create (no network, KVM, root,
    # guest or host facts) are redone by `labkit grade --rerun`, after the setup cell
    assert {c.check for c in spec.checks if c.rerun} == {
        "ch1.disk.create.qcow2",
        "ch1.disk.create.raw",
        "ch1.disk.info",
        "ch1.disk.create.vhd",
        "ch1.disk.convert.vhd",
        "ch1.disk.convert.compress",
        "ch1.disk.resize",
        "ch1.firmware.efi",
        "ch1.vm.command",
        "ch1.consolidation",
        "ch1.pve.kvm_off",
    }
    assert len(spec.setup) == 1 and "work = session(labkit_workdir, mode=mode)" in spec.setup[0]
    whoami_cells = [c for c in student["cells"] if "whoami(" in "".join(c["source"])]
    assert len(whoami_cells) == 1
    assert whoami_cells[0]["cell_type"] == "code"
    # the released notebook is otherwise the course notebook
    assert [c["id"] for c in student["cells"]] == [c["id"] for c in nb["cells"]]
    assert Manifest.from_json(
        json.loads(json.dumps(Manifest("bigdata-2026", "ch1", (spec,)).to_json()))
    ).notebooks == (spec,)


def test_course_check_cells_refuses_half_marked_or_duplicate_cells():
    nb = _load(COURSE)
    tagged = copy.deepcopy(nb)
    next(c for c in tagged["cells"] if c["id"] == "add")["metadata"]["tags"] = ["labkit-check"]
    with pytest.raises(InvalidField, match="half marked"):
        course_check_cells(tagged)
    dup = copy.deepcopy(nb)
    next(c for c in dup["cells"] if c["id"] == "host-check")["metadata"]["labkit"]["check"] = "t.add"
    with pytest.raises(InvalidField, match="marks cells"):
        course_check_cells(dup)
    bad = copy.deepcopy(nb)
    next(c for c in bad["cells"] if c["id"] == "host-check")["metadata"]["labkit"]["points"] = "2"
    with pytest.raises(InvalidField, match="points"):
        course_check_cells(bad)
    with pytest.raises(InvalidField, match="course"):
        build_release(nb, name="x.ipynb", course="has space", assignment="a")
    with pytest.raises(InvalidField, match="manifest"):
        Manifest.from_json({"format": "labkit-manifest/1", "course": "c"})


def test_release_keeps_the_manifest_out_of_the_student_folder_and_asks_before_overwriting(tmp_path):
    from labkit.grading import release

    kw = {"notebooks": [COURSE], "course": "c", "assignment": "a", "out_dir": tmp_path / "rel"}
    with pytest.raises(InvalidField, match="inside the student folder"):
        release.main(**kw, manifest=tmp_path / "rel" / "manifest.json")
    first = release.main(**kw, manifest=tmp_path / "m.json")
    with pytest.raises(ConsentRequired):
        release.main(**kw, manifest=tmp_path / "m.json")
    second = release.main(**kw, manifest=tmp_path / "m.json", overwrite=True)
    assert first.notebooks[0].release != second.notebooks[0].release
    assert list(tmp_path.glob("m.json.labkit-bak-*"))
    assert list((tmp_path / "rel").glob("*.labkit-bak-*"))


# -- classification ----------------------------------------------------------------------------------
def test_statuses_from_results(released):
    nb = copy.deepcopy(released[0])
    _ran(nb, "t.add", CheckResult.skipped("t.add", "no KVM on this host"))
    _ran(nb, "t.upper", CheckResult.skipped("t.upper", "plan only", mode="plan"))
    _ran(nb, "t.host", CheckResult.errored("t.host", "qemu-img crashed"))
    sub = classify_notebook(nb, released[1])
    assert _status(sub) == {
        "t.add": ("fail", "host-cannot-run"),
        "t.upper": ("fail", "plan-only"),
        "t.host": ("error", "check-error"),
    }
    add = sub.checks[0]
    assert "no KVM on this host" in add.message
    assert add.points == 0
    assert add.max_points == 2


class _Skips(Step):
    """A step that is skipped for one of the four reasons, the way real steps are (execute())."""

    check_id = "t.add"

    def __init__(self, why: str) -> None:
        self.why = why

    def plan(self) -> Plan:
        return Plan(self.check_id, "make disk.qcow2", [["qemu-img", "create", "disk.qcow2", "120G"]])

    def unavailable(self, ctx):
        return "VBoxManage is not installed" if self.why == "host" else None

    def run(self, ctx):
        if self.why == "consent":
            raise refuse_replacing("disk.qcow2", ["virtual size 130 GiB, this step makes 120 GiB"])
        raise Cancelled(["qemu-img", "convert", "a", "b"], None)

    def check(self, ctx, evidence):  # pragma: no cover - never reached
        raise AssertionError


@pytest.mark.parametrize(
    ("why", "mode", "reason", "says"),
    [
        ("plan", "plan", "plan-only", 'only planned, not run (the notebook ran with mode="plan")'),
        ("host", "auto", "host-cannot-run", "this machine could not run it: VBoxManage is not installed"),
        ("consent", "auto", "consent-refused", "virtual size 130 GiB, this step makes 120 GiB"),
        ("stopped", "auto", "stopped", "you pressed Stop while it ran"),
    ],
)
def test_each_reason_for_a_skipped_step_is_named_in_the_gradebook_and_the_feedback(
    released, why, mode, reason, says
):
    with use_labels({"overwrite": overwrite_label()}):  # run from its panel, as students do
        result = _Skips(why).execute(mode)
    assert result.status == "skipped"
    nb = _all_pass(released)
    _ran(nb, "t.add", result)
    sub = _sub(released, "2023000001_a_01-lab.ipynb", nb, "2023000001")
    assert _status(sub)["t.add"] == ("fail", reason)
    gb = assemble([sub], released[1])
    rows = list(csv.DictReader(io.StringIO(gradebook_csv(gb).lstrip("\ufeff"))))
    row = next(r for r in rows if r["check"] == "t.add")
    assert (row["status"], row["reason"], row["points"]) == ("fail", reason, "0")
    assert says in row["message"]
    assert ('mode="plan"' in row["message"]) == (why == "plan"), "plan mode is named only when it was"
    page = feedback_html(gb, gb.students[0])
    assert html.escape(says) in page
    assert ("mode=&quot;plan&quot;" in page) == (why == "plan")
    if why == "consent":
        assert "tick “Allow overwrite (keep a backup)”" in row["message"]  # the checkbox it showed
        assert "overwrite=True" not in row["message"]


def test_a_cell_that_raised_is_an_error_and_an_unrun_cell_is_missing(released):
    nb = copy.deepcopy(released[0])
    _cell(nb, "t.add")["outputs"] = [
        {
            "output_type": "error",
            "ename": "NameError",
            "evalue": "\x1b[31mname 'add' is not defined",
            "traceback": [],
        }
    ]
    sub = classify_notebook(nb, released[1])
    assert _status(sub)["t.add"] == ("error", "raised")
    assert "NameError" in sub.checks[0].message
    assert "\x1b" not in sub.checks[0].message
    assert _status(sub)["t.upper"] == ("missing", "not-run")


def test_last_result_in_a_cell_counts_and_json_strings_are_read(released):
    nb = _all_pass(released)
    _ran(nb, "t.add", CheckResult.failed("t.add", "first try"), CheckResult.passed("t.add", "second try"))
    _cell(nb, "t.upper")["outputs"] = [_out(json.dumps(CheckResult.failed("t.upper", "nope").to_payload()))]
    sub = classify_notebook(nb, released[1])
    assert _status(sub)["t.add"] == ("pass", "check-passed")
    assert sub.checks[0].points == 2
    assert _status(sub)["t.upper"] == ("fail", "check-failed")


def test_moving_copying_and_resaving_cells_is_not_tampering(released):
    nb = _all_pass(released)
    cells = nb["cells"]
    host = _cell(nb, "t.host")
    cells.remove(host)
    cells.insert(1, host)  # moved to the top
    upper = _cell(nb, "t.upper")
    upper["source"] = "".join(upper["source"]).replace("\n", "   \r\n") + "\n\n"  # another editor
    add = _cell(nb, "t.add")
    copy_of_add = copy.deepcopy(add)
    copy_of_add["id"] = "pasted"
    add["outputs"], add["execution_count"] = [], None  # the original stays unrun, the copy has the result
    cells.append(copy_of_add)
    sub = classify_notebook(nb, released[1])
    assert set(_status(sub).values()) == {("pass", "check-passed")}
    assert sub.checks[0].cell_index == len(cells) - 1


def test_a_cell_that_lost_its_metadata_is_found_by_its_source(released):
    nb = _all_pass(released)
    del _cell(nb, "t.upper")["metadata"]["labkit"]
    del nb["metadata"]["labkit"]  # cells pasted into a new notebook
    sub = classify_notebook(nb, released[1])
    assert sub.status == "ok"
    assert set(_status(sub).values()) == {("pass", "check-passed")}
    assert any("no labkit metadata" in n for n in sub.notes)


def test_an_edited_copy_that_ran_is_tampered_even_if_the_original_is_intact(released):
    nb = copy.deepcopy(released[0])
    add = _cell(nb, "t.add")
    edited = copy.deepcopy(add)
    edited["source"] = "display(CheckResult.passed('t.add', 'ok'))"
    edited["outputs"] = [_out(CheckResult.passed("t.add", "ok").to_payload())]
    nb["cells"].append(edited)
    assert _status(classify_notebook(nb, released[1]))["t.add"] == ("tampered", "source-changed")


def test_digest_rules(released):
    nb = _all_pass(released)
    forged = CheckResult.passed("t.add", "ok").to_payload()
    forged["status"] = "weird"
    forged["digest"] = payload_digest(forged)  # valid digest, impossible status
    _cell(nb, "t.add")["outputs"] = [_out(forged)]
    edited = CheckResult.failed("t.upper", "no").to_payload()
    edited["evidence"] = {"got": "HELLO"}
    _cell(nb, "t.upper")["outputs"] = [_out(edited)]
    sub = classify_notebook(nb, released[1])
    assert _status(sub)["t.add"] == ("tampered", "invalid-output")
    assert _status(sub)["t.upper"] == ("tampered", "edited-output")


def test_notebook_level_statuses(released):
    manifest = released[1]
    assert classify_notebook([1, 2], manifest).status == "unreadable"
    assert classify_notebook({"nbformat": 4, "cells": {}}, manifest).status == "unreadable"
    v3 = classify_notebook({"nbformat": 3, "worksheets": []}, manifest)
    assert v3.status == "unreadable"
    assert "nbformat 3" in v3.reason
    other = copy.deepcopy(released[0])
    other["metadata"]["labkit"]["course"] = "another-course"
    assert classify_notebook(other, manifest).status == "foreign"
    stranger = {
        "nbformat": 4,
        "metadata": {},
        "cells": [{"cell_type": "code", "source": "1+1", "outputs": []}],
    }
    assert classify_notebook(stranger, manifest).status == "foreign"
    old = _all_pass(released)
    old["metadata"]["labkit"]["release"] = "from-last-year"
    sub = classify_notebook(old, manifest)
    assert sub.status == "ok"
    assert any("release id" in n for n in sub.notes)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(
    ["cells", "metadata", "outputs", "data", "cell_type", "source", "labkit", "check", "points", CHECK_MIME]
)
_shaped = st.recursive(
    _json,
    lambda inner: st.dictionaries(_keys, inner, max_size=5) | st.lists(inner, max_size=4),
    max_leaves=30,
)


_FUZZ_MANIFEST: list[Manifest] = []


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {"nbformat": st.just(4), "cells": st.lists(_shaped, max_size=5)}, optional={"metadata": _shaped}
    )
)
def test_classification_never_crashes_on_arbitrary_json(nb):
    if not _FUZZ_MANIFEST:
        _, spec = build_release(
            _load(COURSE), name="01-lab.ipynb", course="c1", assignment="a1", release="r1"
        )
        _FUZZ_MANIFEST.append(Manifest("c1", "a1", (spec,)))
    sub = classify_notebook(nb, _FUZZ_MANIFEST[0])
    assert sub.status in ("ok", "unreadable", "foreign")
    assert all(c.status in ("pass", "fail", "missing", "tampered", "error") for c in sub.checks)


# -- identity ---------------------------------------------------------------------------------------
def test_whoami_shows_not_set_for_an_empty_id_and_refuses_a_bad_one(capsys):
    whoami("")
    assert "NOT SET" in capsys.readouterr().out
    whoami(" 2023123456 ", "张三")
    assert "2023123456 张三" in capsys.readouterr().out
    with pytest.raises(InvalidField, match="student_id"):
        check_student_id("../etc/passwd")
    with pytest.raises(InvalidField):
        check_student_id(2023123456)
    # whoami itself never raises: a typo shows what is wrong as a result, and records no identity
    for typo in ("2023 310101", "../etc/passwd"):
        whoami(student_id=typo)
        out = capsys.readouterr().out
        assert out.startswith("[INVALID] student_id: ") and repr(typo) in out, out
        assert "does not look like a student id" in out and "run this cell again" in out
        assert "Traceback" not in out
        assert STUDENT_MIME not in identify(typo)._repr_mimebundle_()
    with use_lang("zh"):
        whoami(student_id="2023 310101")
    out = capsys.readouterr().out
    assert out.startswith("[填写有误] student_id：'2023 310101' 不像学号"), out
    whoami("2023123456", name=3)
    assert "[INVALID] name: 3 is not text" in capsys.readouterr().out
    bundle = StudentIdentity("2023123456", "张三")._repr_mimebundle_()
    payload = bundle[STUDENT_MIME]
    assert verify_payload(payload)
    assert payload["student_id"] == "2023123456"
    assert len(payload["session"]) == 32
    assert "text/html" in bundle
    assert "text/plain" in bundle


def test_ids_from_file_names(released):
    m = released[1]
    assert id_from_path("2023123456_zhangsan_01-lab.ipynb", m) == "2023123456"
    assert id_from_path("2023123456-01-lab.ipynb", m) == "2023123456"
    assert id_from_path("sub/2023123456_01-lab (2).ipynb", m) == "2023123456"
    assert id_from_path("01-lab.ipynb", m) is None
    assert id_from_path("01-lab (1).ipynb", m) is None
    moodle = compile_id_pattern(r"_(?P<id>\d+)_assignsubmission")
    assert id_from_path("Zhang San_12345_assignsubmission_file_01-lab.ipynb", m, moodle) == "12345"
    assert id_from_path("2023123456/01-lab.ipynb", m, compile_id_pattern(r"^(?P<id>[^/]+)/")) == "2023123456"
    with pytest.raises(InvalidField, match="group named id"):
        compile_id_pattern(r"\d+")
    with pytest.raises(InvalidField):
        compile_id_pattern("(")


# -- reading --------------------------------------------------------------------------------------
def _src(path: Path, member: str | None = None) -> Source:
    return Source(str(path), member, path.name, member or path.name, path.stat().st_size, 0.0)


def test_unreadable_files_say_why(tmp_path):
    cases = {
        "truncated": b'{"cells": [',
        "latin1": b'{"cells": [], "x": "\xe9"}',
        "deep": b"[" * 200_000 + b"]" * 200_000,
        "empty": b"",
    }
    reasons = {}
    for name, data in cases.items():
        p = tmp_path / f"{name}.ipynb"
        p.write_bytes(data)
        nb, why = read_source(_src(p))
        assert nb is None and why, name
        reasons[name] = why
    assert "not valid JSON" in reasons["truncated"]
    assert "UTF-8" in reasons["latin1"]
    bom = tmp_path / "bom.ipynb"
    bom.write_bytes(b'\xef\xbb\xbf{"cells": []}')
    assert read_source(_src(bom)) == ({"cells": []}, None)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/1_01-lab.ipynb", json.dumps({"cells": []}))
    assert read_source(_src(archive, "x/1_01-lab.ipynb")) == ({"cells": []}, None)
    nb, why = read_source(_src(archive, "x/1_01-lab.ipynb"), max_bytes=5)
    assert nb is None
    assert "too large" in why


# -- gradebook and rendering ------------------------------------------------------------------------
def _sub(released, source: str, nb: dict[str, Any], file_id: str | None, mtime: float = 0.0) -> Submission:
    sub = classify_notebook(nb, released[1], source=source)
    sub.file_id, sub.mtime = file_id, mtime
    return sub


def test_gradebook_duplicates_copies_and_blank_totals(released):
    older = _all_pass(released)
    newer = copy.deepcopy(released[0])
    for check in ("t.add", "t.upper", "t.host"):
        result = CheckResult.failed(check, "later, broken")
        payload = result.to_payload()
        payload["at"] = "2999-01-01T00:00:00Z"
        payload["digest"] = payload_digest(payload)
        _cell(newer, check)["outputs"] = [_out(payload)]
    copied = _all_pass(released)
    subs = [
        _sub(released, "a1.ipynb", older, "A", mtime=9e9),  # newer file, older results
        _sub(released, "a2.ipynb", newer, "A"),
        _sub(released, "b.ipynb", copied, "B"),
        _sub(released, "c.ipynb", copy.deepcopy(copied), "C"),
        Submission(source="d.ipynb", status="unreadable", reason="not valid JSON", file_id="D"),
    ]
    gb = assemble(subs, released[1])
    st_ = {s.student_id: s for s in gb.students}
    assert st_["A"].notebooks[0].source == "a2.ipynb"
    assert subs[0].status == "duplicate"
    assert st_["A"].total == 0
    assert st_["A"].notebooks[0].others[0]["duplicate_of"] == "a2.ipynb"
    assert (
        {c.reason for c in st_["B"].notebooks[0].checks}
        == {"copied"}
        == {c.reason for c in st_["C"].notebooks[0].checks}
    )
    assert st_["D"].total is None
    assert st_["D"].status == "unreadable"
    lms = list(csv.DictReader(io.StringIO(lms_csv(gb))))
    assert [r["total"] for r in lms] == ["0", "0", "0", ""]
    rows = list(csv.DictReader(io.StringIO(gradebook_csv(gb).lstrip("\ufeff"))))
    assert {r["points"] for r in rows if r["student_id"] == "D"} == {""}
    assert gb.needs_attention()


def test_csv_and_html_neutralise_what_students_wrote(released):
    nb = copy.deepcopy(released[0])
    _ran(nb, "t.add", CheckResult.failed("t.add", '=HYPERLINK("http://x")', note="<script>alert(1)</script>"))
    sub = _sub(released, "e.ipynb", nb, "E")
    gb = assemble([sub], released[1])
    rows = list(csv.DictReader(io.StringIO(gradebook_csv(gb).lstrip("\ufeff"))))
    assert next(r for r in rows if r["check"] == "t.add")["message"].startswith("'=")
    page = feedback_html(gb, gb.students[0])
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "default-src 'none'" in page


# -- architecture ------------------------------------------------------------------------------------
def test_grading_modules_import_light_and_never_the_widget_layer():
    code = (
        "import sys, json, labkit.cli, labkit.identity; labkit.cli.build_parser();"
        "import labkit.grading.grade, labkit.grading.release, labkit.grading.collect, labkit.grading.render;"
        "heavy = ('labkit.ui', 'ipywidgets', 'matplotlib', 'papermill', 'nbformat', 'nbclient', 'IPython');"
        "print(json.dumps([m for m in heavy if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
    for path in [*(ROOT / "labkit" / "grading").glob("*.py"), ROOT / "labkit" / "identity.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imports |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {
            i for i in imports if i.startswith(("labkit.ui", "ipywidgets", "subprocess", "pickle"))
        }, path
        calls = {
            n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert not calls & {"eval", "exec", "compile", "__import__"}, path


def test_validate_refuses_a_bad_notebook_timeout(tmp_path):
    from labkit import validate

    with pytest.raises(InvalidField, match="notebook_timeout"):
        validate.main(notebooks=[COURSE], out_dir=tmp_path, notebook_timeout=0)


@pytest.mark.parametrize("pool", [False, True], ids=["in-process", "worker-processes"])
def test_two_graders_in_two_threads_keep_their_own_language(released, tmp_path, monkeypatch, pool):
    """Each grader speaks its own ``lang`` (in feedback, summary and the reasons its worker
    processes write), whatever runs beside it; the process environment is never written."""
    import threading

    from labkit.grading import collect, grade

    if pool:  # read even this small batch in worker processes: the language must travel with the work
        monkeypatch.setattr(collect, "_POOL_MIN_BYTES", 0)
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "2023000041_01-lab.ipynb").write_text(json.dumps(_all_pass(released)), encoding="utf-8")
    (subs / "2023000042_01-lab.ipynb").write_text('{"cells": [', encoding="utf-8")  # truncated
    before = dict(os.environ)
    barrier = threading.Barrier(2)
    runs: dict[str, Any] = {}

    def run(lang: str) -> None:
        try:
            runs[lang] = grade.main(
                submissions=[subs],
                manifest=released[1],
                out_dir=tmp_path / lang,
                plot=False,
                jobs=2,
                lang=lang,
                on_start=lambda _n: barrier.wait(10),  # both graders are reading at the same time
            )
        except BaseException as exc:
            runs[lang] = exc

    threads = [threading.Thread(target=run, args=(lang,)) for lang in ("zh", "en")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert isinstance(runs["zh"], grade.GradeRun), runs["zh"]
    assert isinstance(runs["en"], grade.GradeRun), runs["en"]
    (zh_reason,) = {s.reason for s in runs["zh"].gradebook.submissions} - {""}
    (en_reason,) = {s.reason for s in runs["en"].gradebook.submissions} - {""}
    assert zh_reason.startswith("不是有效的 JSON"), zh_reason
    assert en_reason.startswith("not valid JSON"), en_reason
    assert "成绩汇总" in (tmp_path / "zh" / "summary.html").read_text(encoding="utf-8")
    assert "Class summary" in (tmp_path / "en" / "summary.html").read_text(encoding="utf-8")
    assert "总分" in (tmp_path / "zh" / "feedback" / "2023000041.html").read_text(encoding="utf-8")
    assert "Total" in (tmp_path / "en" / "feedback" / "2023000041.html").read_text(encoding="utf-8")
    assert dict(os.environ) == before


def test_a_worker_process_speaks_the_language_it_is_given(released, tmp_path, monkeypatch):
    """Forked workers inherit the caller's context, spawned ones (macOS, Windows) do not: the
    language travels with each chunk of work."""
    from labkit.grading import collect
    from labkit.i18n import use_lang

    bad = tmp_path / "2023000042_01-lab.ipynb"
    bad.write_text('{"cells": [', encoding="utf-8")
    monkeypatch.setattr(collect, "_WORKER", {})  # what a worker process holds, here only for this test
    collect._init_worker(released[1], None, collect.DEFAULT_MAX_BYTES)
    (src,) = collect.find_sources([bad])
    with use_lang("en"):
        (sub,) = collect._grade_in_worker([src], "zh")
    assert sub.reason.startswith("不是有效的 JSON"), sub.reason


def test_lone_surrogates_and_undecodable_file_names_do_not_break_grading(released, tmp_path):
    from labkit.grading import grade

    nb = _all_pass(released)
    bad = CheckResult.failed("t.add", "x").to_payload()
    bad["message"], bad["evidence"] = "bad \ud800 text", {"k\udfff": "v\ud800"}
    _cell(nb, "t.add")["outputs"] = [_out(bad)]
    _cell(nb, "t.add")["source"].append("\n# \ud800")
    who = StudentIdentity("2023000031", "x").to_payload()
    who["name"] = "名\ud800"
    nb["cells"][0]["outputs"] = [{"output_type": "display_data", "data": {STUDENT_MIME: who}}]
    subs = tmp_path / "subs"
    subs.mkdir()
    name = os.fsdecode(b"2023000031_\xff_01-lab.ipynb")  # bytes that are not UTF-8 in a file name
    (subs / name).write_text(json.dumps(nb), encoding="utf-8")  # ensure_ascii keeps the surrogates as \ud800
    run = grade.main(submissions=[subs], manifest=released[1], out_dir=tmp_path / "g", plot=False)
    (student,) = run.gradebook.students
    assert student.student_id == "2023000031"
    assert {c.check: c.status for c in student.notebooks[0].checks}["t.add"] == "tampered"
    report = json.loads((tmp_path / "g" / "report.json").read_text(encoding="utf-8"))
    assert report["students"][0]["student_id"] == "2023000031"
    assert (tmp_path / "g" / "feedback" / "2023000031.html").is_file()


def test_an_assignment_of_two_notebooks():
    course = _load(COURSE)
    second = json.loads(json.dumps(course).replace('"t.', '"u.').replace("t.add", "u.add"))
    nb1, spec1 = build_release(course, name="01-lab.ipynb", course="c1", assignment="a1", release="r1")
    nb2, spec2 = build_release(second, name="02-lab.ipynb", course="c1", assignment="a1", release="r2")
    manifest = Manifest("c1", "a1", (spec1, spec2))
    assert manifest.total_points == 8
    assert {c.check for c in spec2.checks} == {"u.add", "u.upper", "u.host"}
    done = copy.deepcopy(nb2)
    for check in ("u.add", "u.upper", "u.host"):
        _ran(done, check, CheckResult.passed(check, "ok"))
    del done["metadata"]["labkit"]  # still recognised as 02-lab by its check cells
    subs = [
        classify_notebook(done, manifest, source="A_02-lab.ipynb"),
        Submission(source="B_01-lab.ipynb", status="unreadable", reason="truncated", notebook="01-lab.ipynb"),
        classify_notebook(copy.deepcopy(nb1), manifest, source="B_whatever.ipynb"),
    ]
    subs[0].file_id, subs[1].file_id, subs[2].file_id = "A", "B", "B"
    assert subs[0].notebook == "02-lab.ipynb"
    assert subs[2].notebook == "01-lab.ipynb"
    gb = assemble(subs, manifest)
    a, b = gb.students
    assert [(e.notebook, e.status, e.points) for e in a.notebooks] == [
        ("01-lab.ipynb", "missing", 0),
        ("02-lab.ipynb", "ok", 4),
    ]
    assert a.total == 4
    assert a.max_points == 8
    # B's readable 01-lab counts; the unreadable one is listed beside it, and 02-lab is missing
    assert [(e.notebook, e.status) for e in b.notebooks] == [
        ("01-lab.ipynb", "ok"),
        ("02-lab.ipynb", "missing"),
    ]
    assert b.notebooks[0].others[0]["status"] == "unreadable"
    assert b.total == 0
