"""Issue 9 §3, arguments and outputs of ``labkit grade`` and ``labkit validate``.

Every bad argument or manifest is refused *before* any submission is read or notebook run, with
exit status 2 and a message naming the option or the manifest entry, never a traceback (exit 1
means "graded, needs attention"). Outputs follow labkit's rule: what the command wrote earlier is
replaced, anything else is refused unless ``--overwrite`` asks for it, and then kept as a backup.

Nothing here executes a notebook except the last test (under ``flock /work/wt/docker.lock`` like
the other notebook-running tests).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from labkit.errors import ConsentRequired, InvalidField
from labkit.grading.manifest import MAX_MANIFEST_BYTES, Manifest, build_release, parse_manifest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "tests" / "data" / "grading" / "01-lab.ipynb"
VALIDATE_DATA = ROOT / "tests" / "data" / "validate"


@pytest.fixture(autouse=True)
def _english(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _labkit(*args: str | Path, lang: str = "en") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LABKIT_LANG": lang},
    )


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A release of the small test course for assignment a1 and a2, and one student file."""
    root = tmp_path_factory.mktemp("course")
    nb = _load(COURSE)
    paths: dict[str, Path] = {}
    for assignment in ("a1", "a2"):
        student, spec = build_release(nb, name="01-lab.ipynb", course="c1", assignment=assignment)
        manifest = root / f"{assignment}.json"
        manifest.write_text(json.dumps(Manifest("c1", assignment, (spec,)).to_json()), encoding="utf-8")
        paths[assignment] = manifest
        sub = root / assignment / "2023000001_alice_01-lab.ipynb"
        sub.parent.mkdir()
        sub.write_text(json.dumps(student), encoding="utf-8")
        paths[f"sub-{assignment}"] = sub
    paths["root"] = root
    return paths


# -- the manifest ------------------------------------------------------------------------------------
def _manifest_json(course: dict[str, Path]) -> dict[str, Any]:
    return _load(course["a1"])


def _twice(m: dict[str, Any]) -> None:
    m["notebooks"].append(copy.deepcopy(m["notebooks"][0]))  # one notebook counted twice: 8/8 for 4


def _dup_check(m: dict[str, Any]) -> None:
    m["notebooks"][0]["checks"][1]["check"] = m["notebooks"][0]["checks"][0]["check"]


def _other_notebook_same_check(m: dict[str, Any]) -> None:
    other = copy.deepcopy(m["notebooks"][0])
    other["name"], other["release"] = "02-lab.ipynb", "r2"
    m["notebooks"].append(other)


def _set(path: str, value: Any):
    def mutate(m: dict[str, Any]) -> None:
        *keys, last = path.split("/")
        obj: Any = m
        for k in keys:
            obj = obj[int(k)] if k.isdigit() else obj[k]
        obj[int(last) if last.isdigit() else last] = value

    return mutate


MANIFEST_DEFECTS = {
    "notebook listed twice": (_twice, "notebooks[1].name"),
    "duplicate check id": (_dup_check, "notebooks[0].checks[1].check"),
    "check id in two notebooks": (_other_notebook_same_check, "notebooks[1].checks[0].check"),
    "rerun as a string": (_set("notebooks/0/checks/2/rerun", "false"), "notebooks[0].checks[2].rerun"),
    "name null": (_set("notebooks/0/name", None), "notebooks[0].name"),
    "name a path": (_set("notebooks/0/name", "../01-lab.ipynb"), "notebooks[0].name"),
    "no checks": (_set("notebooks/0/checks", []), "notebooks[0].checks"),
    "points 10**400": (_set("notebooks/0/checks/0/points", 10**400), "notebooks[0].checks[0].points"),
    "points true": (_set("notebooks/0/checks/0/points", True), "notebooks[0].checks[0].points"),
    "points as text": (_set("notebooks/0/checks/0/points", "2"), "notebooks[0].checks[0].points"),
    "negative index": (_set("notebooks/0/checks/1/index", -1), "notebooks[0].checks[1].index"),
    "same cell twice": (
        lambda m: _set("notebooks/0/checks/1/index", m["notebooks"][0]["checks"][0]["index"])(m),
        "notebooks[0].checks[1].index",
    ),
    "bad digest": (_set("notebooks/0/checks/0/source_sha256", "x"), "notebooks[0].checks[0].source_sha256"),
    "cell id a number": (_set("notebooks/0/checks/0/cell_id", 3), "notebooks[0].checks[0].cell_id"),
    "course null": (_set("course", None), "course"),
    "assignment with a space": (_set("assignment", "lab 1"), "assignment"),
    "notebooks an object": (_set("notebooks", {}), "notebooks"),
    "no notebooks": (_set("notebooks", []), "notebooks"),
    "a check a list": (_set("notebooks/0/checks/0", []), "notebooks[0].checks[0]"),
}


@pytest.mark.parametrize("defect", MANIFEST_DEFECTS, ids=list(MANIFEST_DEFECTS))
def test_the_manifest_refuses_each_malformed_entry_naming_it(course, defect):
    mutate, entry = MANIFEST_DEFECTS[defect]
    m = _manifest_json(course)
    assert Manifest.from_json(copy.deepcopy(m)).total_points == 4
    mutate(m)
    with pytest.raises(InvalidField) as err:
        Manifest.from_json(m, where="m.json")
    assert err.value.field == "manifest"
    assert f"{entry} " in str(err.value), str(err.value)
    assert len(str(err.value)) < 400, "a huge value is not printed whole"


def test_the_manifest_is_read_bounded_and_never_raises_a_parser_error(course):
    text = course["a1"].read_text(encoding="utf-8")
    assert parse_manifest(text).course == "c1"
    deep = text.rstrip().rstrip("}") + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(InvalidField, match="nested too deeply"):
        parse_manifest(deep)
    nested = text.rstrip().rstrip("}") + ', "x": ' + "[" * 40 + "]" * 40 + "}"
    with pytest.raises(InvalidField, match="levels deep"):
        parse_manifest(nested)
    with pytest.raises(InvalidField, match="too large"):
        parse_manifest(" " * (MAX_MANIFEST_BYTES + 1))
    with pytest.raises(InvalidField, match="not JSON"):
        parse_manifest(text.replace('"points": 2', '"points": ' + "9" * 5000))
    with pytest.raises(InvalidField, match="not JSON"):
        parse_manifest(b"\xff\xfe\x00garbage")


def test_load_manifest_never_opens_a_fifo_or_a_folder(tmp_path):
    from labkit.grading.grade import load_manifest

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        with pytest.raises(InvalidField, match="not a file"):
            load_manifest(path)


def test_release_refuses_the_same_check_id_in_two_notebooks(tmp_path):
    from labkit.grading import release

    second = tmp_path / "02-lab.ipynb"
    second.write_bytes(COURSE.read_bytes())
    with pytest.raises(InvalidField, match=r"notebooks\[1\]\.checks\[0\]\.check"):
        release.main(
            notebooks=[COURSE, second],
            course="c1",
            assignment="a1",
            out_dir=tmp_path / "rel",
            manifest=tmp_path / "m.json",
        )
    assert not (tmp_path / "rel").exists()


# -- labkit grade: arguments --------------------------------------------------------------------------
def _bad_manifest(course: dict[str, Path], name: str, mutate) -> Path:
    m = _manifest_json(course)
    mutate(m)
    path = course["root"] / name
    path.write_text(json.dumps(m), encoding="utf-8")
    return path


GRADE_BAD_ARGS = {
    "out below /proc": (["--out", "/proc/labkit-x"], "--out"),
    "out below a file": (["--out", "{manifest}/sub"], "--out"),
    "out a file": (["--out", "{manifest}"], "--out"),
    "max-mb nan": (["--max-mb", "nan"], "--max-mb"),
    "max-mb inf": (["--max-mb", "inf"], "--max-mb"),
    "max-mb negative": (["--max-mb=-1"], "--max-mb"),
    "max-mb 0": (["--max-mb", "0"], "--max-mb"),
    "timeout nan with rerun": (["--rerun", "--timeout", "nan"], "--timeout"),
    "timeout inf": (["--timeout", "inf"], "--timeout"),
    "timeout 0": (["--timeout", "0"], "--timeout"),
    "notebook-timeout nan": (["--rerun", "--notebook-timeout", "nan"], "--notebook-timeout"),
    "notebook-timeout negative": (["--notebook-timeout=-5"], "--notebook-timeout"),
    "jobs 0": (["--jobs", "0"], "--jobs"),
    "jobs huge": (["--jobs", "100000"], "--jobs"),
    "id-pattern nested deep": (["--id-pattern", "(" * 5000 + "?P<id>x)" + ")" * 4999], "--id-pattern"),
    "id-pattern huge repeat": (["--id-pattern", "(?P<id>a{99999999999})"], "--id-pattern"),
    "manifest points 10**400": (["--manifest", "{points}"], "notebooks[0].checks[0].points"),
    "manifest nested deep": (["--manifest", "{deep}"], "nested too deeply"),
    "manifest notebook twice": (["--manifest", "{twice}"], "notebooks[1].name"),
}


@pytest.mark.parametrize("case", GRADE_BAD_ARGS, ids=list(GRADE_BAD_ARGS))
def test_grade_refuses_bad_arguments_and_manifests_up_front_with_exit_2(course, tmp_path, case):
    args, named = GRADE_BAD_ARGS[case]
    deep = course["root"] / "deep.json"
    deep.write_text(
        course["a1"].read_text(encoding="utf-8").rstrip().rstrip("}")
        + ', "x": '
        + "[" * 10**5
        + "]" * 10**5
        + "}",
        encoding="utf-8",
    )
    values = {
        "manifest": course["a1"],
        "points": _bad_manifest(course, "points.json", _set("notebooks/0/checks/0/points", 10**400)),
        "deep": deep,
        "twice": _bad_manifest(course, "twice.json", _twice),
    }
    for key, value in values.items():  # not str.format: the regexes hold braces
        args = [a.replace(f"{{{key}}}", str(value)) for a in args]
    base = ["grade", course["sub-a1"], "--manifest", course["a1"], "--out", tmp_path / "g"]
    proc = _labkit(*base, *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("labkit grade: ")
    assert named in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "g").exists()
    assert not [p for p in Path("/proc").iterdir() if "labkit" in p.name]
    assert not [p for p in course["root"].iterdir() if "labkit-tmp" in p.name], "no staging folder left"


def test_grade_refuses_before_reading_any_submission_in_the_course_language(course, tmp_path):
    from labkit.grading import grade

    started: list[int] = []
    for bad in ({"max_bytes": 0}, {"cell_timeout": float("nan")}, {"out_dir": "/proc/labkit-x"}):
        kwargs = {"submissions": [course["sub-a1"]], "manifest": course["a1"], "out_dir": tmp_path / "g"}
        with pytest.raises(InvalidField):
            grade.main(**(kwargs | bad), on_start=started.append)
    assert started == [], "refused before any submission was looked at"
    proc = _labkit(
        "grade", course["sub-a1"], "--manifest", course["a1"], "--out", tmp_path, "--max-mb", "nan", lang="zh"
    )
    assert proc.returncode == 2
    assert "MiB 数" in proc.stderr and "must be" not in proc.stderr


# -- labkit grade: the output folder ----------------------------------------------------------------
def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_regrading_the_same_assignment_replaces_the_output_and_keeps_earlier_reports(course, tmp_path):
    out = tmp_path / "g"
    args = ("grade", course["sub-a1"], "--manifest", course["a1"], "--out", out)
    assert _labkit(*args).returncode in (0, 1)
    first = (out / "report.json").read_bytes()
    for n in (2, 3):
        proc = _labkit(*args)
        assert proc.returncode in (0, 1), proc.stderr
        backups = sorted(p for p in out.iterdir() if p.name.startswith("report.json.labkit-bak-"))
        assert len(backups) == n - 1, "each re-grade keeps the report it replaces"
    assert first in [p.read_bytes() for p in backups]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]


def test_grading_another_assignment_into_the_same_out_needs_overwrite_and_keeps_the_old_folder(
    course, tmp_path
):
    out = tmp_path / "g"
    assert _labkit("grade", course["sub-a1"], "--manifest", course["a1"], "--out", out).returncode in (0, 1)
    before = _files(out)
    a2 = ("grade", course["sub-a2"], "--manifest", course["a2"], "--out", out)
    proc = _labkit(*a2)
    assert proc.returncode == 2
    assert "c1/a1" in proc.stderr and "c1/a2" in proc.stderr
    assert "--overwrite" in proc.stderr
    assert _files(out) == before, "refused: untouched"
    with pytest.raises(ConsentRequired):
        from labkit.grading import grade

        grade.main(submissions=[course["sub-a2"]], manifest=course["a2"], out_dir=out, plot=False)
    assert _files(out) == before
    proc = _labkit(*a2, "--overwrite")
    assert proc.returncode in (0, 1), proc.stderr
    assert _load(out / "report.json")["assignment"] == "a2"
    (backup,) = [p for p in tmp_path.iterdir() if p.name.startswith("g.labkit-bak-")]
    assert _files(backup) == before, "the earlier grades are kept whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["g", backup.name])


# -- labkit validate ---------------------------------------------------------------------------------
VALIDATE_BAD_ARGS = {
    "timeout nan": (["--timeout", "nan"], "--timeout"),
    "timeout inf": (["--timeout", "inf"], "--timeout"),
    "timeout negative": (["--timeout=-1"], "--timeout"),
    "jobs 0": (["--jobs", "0"], "--jobs"),
    "jobs huge": (["--jobs", "100000"], "--jobs"),
    "out below /proc": (["--out", "/proc/labkit-x"], "--out"),
    "out below a file": (["--out", "{file}/sub"], "--out"),
    "out a file": (["--out", "{file}"], "--out"),
    "report a folder": (["--report", "{tmp}"], "--report"),
    "report below a file": (["--report", "{file}/r.json"], "--report"),
    "workdir below a file": (["--workdir", "{file}/w"], "--workdir"),
}


@pytest.mark.parametrize("case", VALIDATE_BAD_ARGS, ids=list(VALIDATE_BAD_ARGS))
def test_validate_refuses_bad_arguments_with_exit_2(tmp_path, case):
    args, named = VALIDATE_BAD_ARGS[case]
    afile = tmp_path / "a-file"
    afile.write_text("mine")
    args = [a.format(file=afile, tmp=tmp_path) for a in args]
    proc = _labkit("validate", VALIDATE_DATA / "pass.ipynb", "--out", tmp_path / "o", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"labkit validate: {named}"), proc.stderr
    assert afile.read_text() == "mine"


def test_validate_never_overwrites_files_it_did_not_write(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "pass.ipynb").write_text("my own executed copy")
    proc = _labkit("validate", VALIDATE_DATA / "pass.ipynb", "--out", out)
    assert proc.returncode == 2
    assert "pass.ipynb" in proc.stderr and "--overwrite" in proc.stderr
    assert (out / "pass.ipynb").read_text() == "my own executed copy"
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    proc = _labkit("validate", VALIDATE_DATA / "pass.ipynb", "--out", tmp_path / "p", "--report", notes)
    assert proc.returncode == 2
    assert "--report" in proc.stderr and "--overwrite" in proc.stderr
    assert notes.read_text() == '{"mine": true}'
    assert not (tmp_path / "p").exists()


@pytest.mark.skipif(os.environ.get("LABKIT_NO_NOTEBOOKS") == "1", reason="runs a notebook")
def test_validate_replaces_its_own_outputs_and_backs_up_others_with_overwrite(tmp_path):
    """Runs pass.ipynb three times (run under flock /work/wt/docker.lock)."""
    out, report = tmp_path / "o", tmp_path / "r.json"
    out.mkdir()
    (out / "pass.ipynb").write_text("my own executed copy")
    report.write_text('{"mine": true}')
    nb = VALIDATE_DATA / "pass.ipynb"
    proc = _labkit("validate", nb, "--out", out, "--report", report, "--overwrite")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (nb_backup,) = out.glob("pass.ipynb.labkit-bak-*")
    assert nb_backup.read_text() == "my own executed copy"
    (report_backup,) = tmp_path.glob("r.json.labkit-bak-*")
    assert report_backup.read_text() == '{"mine": true}'
    assert _load(report)["tool"] == "labkit validate"
    proc = _labkit("validate", nb, "--out", out, "--report", report)  # its own outputs: no flag needed
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [n["status"] for n in _load(report)["notebooks"]] == ["ok"]
    assert len(list(out.glob("pass.ipynb.labkit-bak-*"))) == 1
    assert len(list(tmp_path.glob("r.json.labkit-bak-*"))) == 1


def test_a_write_error_after_grading_is_a_message_and_leaves_nothing_behind(course, tmp_path, monkeypatch):
    """A full disk while writing (injected: ENOSPC from the CSV writer) is exit 2 material, not a
    traceback; the previous output and the folder around it stay as they were."""
    import errno

    from labkit.grading import grade

    out = tmp_path / "g"
    grade.main(submissions=[course["sub-a1"]], manifest=course["a1"], out_dir=out, plot=False)
    before = _files(out)

    def full(_gb):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(grade, "lms_csv", full)
    with pytest.raises(InvalidField, match=r"out.*cannot be written"):
        grade.main(submissions=[course["sub-a1"]], manifest=course["a1"], out_dir=out, plot=False)
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]
