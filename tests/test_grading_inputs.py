"""What ``labkit grade`` reads, and how much: hostile folders, zips and JSON (issue 9, section 2).

Each test builds the hostile input for real (links, FIFOs, a zip whose header lies, 40 MB of
``[[],[],...]``) and checks that grading reads only regular files inside its inputs, within a
byte cap and a memory ceiling, reports everything it left out in ``report.json``, and keeps every
file's student id whatever happens to the file. Peak memory is measured with ``getrusage`` in a
child process that runs nothing else.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import struct
import subprocess
import sys
import threading
import uuid
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from labkit.checks import CHECK_MIME, CheckResult, payload_digest
from labkit.grading import collect, grade
from labkit.grading.collect import Source, find_inputs, read_source
from labkit.grading.manifest import Manifest, build_release

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "tests" / "data" / "grading" / "01-lab.ipynb"
MiB = 2**20


@pytest.fixture(autouse=True)
def _english(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")


@pytest.fixture(scope="module")
def released() -> tuple[dict[str, Any], Manifest]:
    course = json.loads(COURSE.read_text(encoding="utf-8"))
    student, spec = build_release(course, name="01-lab.ipynb", course="c1", assignment="a1", release="r1")
    return student, Manifest("c1", "a1", (spec,))


def _cell(nb: dict[str, Any], check: str) -> dict[str, Any]:
    return next(c for c in nb["cells"] if (c["metadata"].get("labkit") or {}).get("check") == check)


def _all_pass(released) -> dict[str, Any]:
    """A notebook whose checks all passed, in a kernel session of its own (two students sharing
    one would be a copy)."""
    nb = copy.deepcopy(released[0])
    session = uuid.uuid4().hex
    for check in ("t.add", "t.upper", "t.host"):
        payload = CheckResult.passed(check, "ok").to_payload()
        payload["session"] = session
        payload["digest"] = payload_digest(payload)
        _cell(nb, check)["outputs"] = [
            {"output_type": "display_data", "metadata": {}, "data": {CHECK_MIME: payload}}
        ]
    return nb


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _totals(out: Path) -> dict[str, str]:
    """``lms.csv``: student id → total (empty when ungraded)."""
    rows = csv.DictReader(io.StringIO((out / "lms.csv").read_text(encoding="utf-8")))
    return {r["student_id"]: r["total"] for r in rows}


def _skipped(report: dict[str, Any]) -> dict[str, str]:
    return {f["source"]: f["reason"] for f in report["flags"] if f["kind"] == "skipped-input"}


def _manifest_file(released, tmp_path: Path) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(released[1].to_json()), encoding="utf-8")
    return path


# -- zip archives ----------------------------------------------------------------------------------
def test_two_zip_members_with_one_name_are_each_read_and_reported(released, tmp_path):
    """Before: both were read by name, i.e. both as the last one; the valid notebook was graded as
    the ``{}`` beside it and the student ended ungraded."""
    good = json.dumps(_all_pass(released))
    for order in ("good-first", "good-last"):
        archive = tmp_path / f"{order}.zip"
        members = [good, "{}"] if order == "good-first" else ["{}", good]
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Duplicate name"
            for text in members:
                zf.writestr("lab1/2023000001_01-lab.ipynb", text)
        out = tmp_path / f"g-{order}"
        run = grade.main(submissions=[archive], manifest=released[1], out_dir=out, plot=False)
        (student,) = run.gradebook.students
        assert student.total == released[1].total_points, order
        statuses = sorted((s.status, s.source) for s in run.gradebook.submissions)
        assert statuses == [
            ("ok", f"{order}.zip:lab1/2023000001_01-lab.ipynb ({1 if order == 'good-first' else 2}/2)"),
            (
                "unreadable",
                f"{order}.zip:lab1/2023000001_01-lab.ipynb ({2 if order == 'good-first' else 1}/2)",
            ),
        ]
        (flag,) = [f for f in _report(out)["flags"] if f["kind"] == "duplicate-member"]
        assert flag["source"] == f"{order}.zip:lab1/2023000001_01-lab.ipynb"
        assert "2 members" in flag["message"]
        assert run.exit_code == 1, "an archive with two members of one name needs a look"


def _lie_about_size(archive: Path, claimed: int) -> None:
    """Patch the (only) member's uncompressed size in its local header and central directory."""
    data = bytearray(archive.read_bytes())
    eocd = data.rindex(b"PK\x05\x06")
    (cd,) = struct.unpack_from("<I", data, eocd + 16)
    assert data[cd : cd + 4] == b"PK\x01\x02"
    (local,) = struct.unpack_from("<I", data, cd + 42)
    assert data[local : local + 4] == b"PK\x03\x04"
    struct.pack_into("<I", data, cd + 24, claimed)
    struct.pack_into("<I", data, local + 22, claimed)
    archive.write_bytes(bytes(data))


_PEAK = """
import json, resource, sys
from labkit.grading.collect import Source, read_source
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
nb, why = read_source(Source(*json.loads(sys.argv[1])), max_bytes=int(sys.argv[2]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"why": why, "grew_kib": after - before}))
"""


def _read_in_child(src: Source, max_bytes: int) -> dict[str, Any]:
    fields = [src.path, src.member, src.display, src.rel, src.size, src.mtime, src.index]
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, json.dumps(fields), str(max_bytes)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "LABKIT_LANG": "en"},
    )
    return json.loads(proc.stdout)


def test_a_zip_member_that_lies_about_its_size_is_never_inflated_in_full(tmp_path):
    """Before: the whole member was decompressed in one call before the CRC check (a 1 MB zip took
    GBs). Now reads are chunked: what the header claims, or the byte cap, is all that is inflated."""
    archive = tmp_path / "lies.zip"
    info = zipfile.ZipInfo("2023000001_01-lab.ipynb")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(archive, "w") as zf, zf.open(info, "w") as member:
        member.write(b'{"cells": []}')
        for _ in range(300):
            member.write(b" " * MiB)  # 300 MiB of JSON whitespace, about 300 KB compressed
    assert archive.stat().st_size < 2 * MiB
    _lie_about_size(archive, 100)
    (src,) = find_inputs([archive]).sources
    assert src.size == 100
    got = _read_in_child(src, collect.DEFAULT_MAX_BYTES)
    assert "CRC" in got["why"], got
    assert got["grew_kib"] < 64 * 1024, f"inflated {got['grew_kib'] // 1024} MiB for a 100-byte claim"
    # honest about its size, but over the cap: never inflated past the cap
    _lie_about_size(archive, 300 * MiB + 13)
    got = _read_in_child(find_inputs([archive]).sources[0], 8 * MiB)
    assert "too large" in got["why"]
    assert got["grew_kib"] < 64 * 1024


def test_traversal_names_and_links_in_a_zip_are_reported_not_read(released, tmp_path):
    archive = tmp_path / "subs.zip"
    good = json.dumps(_all_pass(released))
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("2023000001_01-lab.ipynb", good)
        zf.writestr("../2023000002_01-lab.ipynb", good)
        zf.writestr("/abs/2023000003_01-lab.ipynb", good)
        link = zipfile.ZipInfo("2023000004_01-lab.ipynb")
        link.external_attr = (0o120777 << 16) | 0
        zf.writestr(link, "/etc/passwd")
        zf.writestr(".hidden_01-lab.ipynb", good)  # noise, left out silently
    found = find_inputs([archive])
    assert [s.rel for s in found.sources] == ["2023000001_01-lab.ipynb"]
    assert {p["source"]: p["reason"] for p in found.problems} == {
        "subs.zip:../2023000002_01-lab.ipynb": "traversal",
        "subs.zip:/abs/2023000003_01-lab.ipynb": "traversal",
        "subs.zip:2023000004_01-lab.ipynb": "symlink",
    }
    out = tmp_path / "g"
    run = grade.main(submissions=[archive], manifest=released[1], out_dir=out, plot=False)
    assert len(_skipped(_report(out))) == 3
    assert run.exit_code == 1


# -- folders ---------------------------------------------------------------------------------------
def test_folders_yield_only_regular_files_inside_them_and_report_the_rest(released, tmp_path):
    """Before: links were followed out of the folder (a link to a classmate's file or to
    ``/proc/kmsg``, which blocks the grader), and dangling links vanished without a word."""
    good = json.dumps(_all_pass(released))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "theirs.ipynb").write_text(good, encoding="utf-8")
    (outside / "2023000009_01-lab.ipynb").write_text(good, encoding="utf-8")
    os.mkfifo(outside / "pipe")
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "2023000001_01-lab.ipynb").write_text(good, encoding="utf-8")
    (subs / "2023000002_01-lab.ipynb").symlink_to(outside / "theirs.ipynb")
    (subs / "2023000003_01-lab.ipynb").symlink_to("/proc/kmsg")
    (subs / "2023000004_01-lab.ipynb").symlink_to(outside / "pipe")
    (subs / "2023000005_01-lab.ipynb").symlink_to(tmp_path / "nothing-here")
    os.mkfifo(subs / "2023000006_01-lab.ipynb")
    (subs / "linked").symlink_to(outside, target_is_directory=True)
    (subs / ".ipynb_checkpoints").mkdir()
    (subs / ".ipynb_checkpoints" / "2023000001_01-lab-checkpoint.ipynb").write_text(good, encoding="utf-8")
    out, manifest = tmp_path / "g", _manifest_file(released, tmp_path)
    proc = subprocess.run(  # a hang (the old behaviour with /proc/kmsg or a FIFO) fails, not blocks
        [sys.executable, "-m", "labkit", "grade", str(subs), "--manifest", str(manifest), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LABKIT_LANG": "en"},
    )
    assert proc.returncode == 1, proc.stderr
    report = _report(out)
    assert [s["source"] for s in report["submissions"]] == ["2023000001_01-lab.ipynb"]
    assert _skipped(report) == {
        "2023000002_01-lab.ipynb": "symlink",
        "2023000003_01-lab.ipynb": "symlink",
        "2023000004_01-lab.ipynb": "symlink",
        "2023000005_01-lab.ipynb": "symlink",
        "2023000006_01-lab.ipynb": "not-regular",
        "linked": "symlink",
    }
    messages = {f["source"]: f["message"] for f in report["flags"] if f["kind"] == "skipped-input"}
    assert "does not exist" in messages["2023000005_01-lab.ipynb"]
    assert "/proc/kmsg" in messages["2023000003_01-lab.ipynb"]
    assert "not read: 2023000006_01-lab.ipynb" in proc.stdout
    assert _totals(out) == {"2023000001": str(released[1].total_points)}


def test_the_reader_refuses_a_link_or_a_fifo_it_is_handed_without_blocking(tmp_path):
    """A file swapped for a link or a FIFO after the folder was listed: ``O_NOFOLLOW``,
    ``O_NONBLOCK`` and a check on the open descriptor."""
    fifo = tmp_path / "2023000001_01-lab.ipynb"
    os.mkfifo(fifo)
    link = tmp_path / "2023000002_01-lab.ipynb"
    link.symlink_to("/proc/kmsg")
    results: dict[str, Any] = {}

    def read(path: Path) -> None:
        results[path.name] = read_source(Source(str(path), None, path.name, path.name, 0, 0.0))

    threads = [threading.Thread(target=read, args=(p,), daemon=True) for p in (fifo, link)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "reading blocked"
    assert results[fifo.name] == (None, "not a regular file")
    assert results[link.name][0] is None
    assert "symbolic link" in results[link.name][1]


# -- memory ----------------------------------------------------------------------------------------
_TREE_PEAK = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr)
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _grade_measured(*args: str | Path) -> tuple[int, int]:
    """``labkit grade ARGS`` in a child; its exit status and the peak RSS (KiB) of the largest
    process it and its workers ran."""
    proc = subprocess.run(
        [sys.executable, "-c", _TREE_PEAK, sys.executable, "-m", "labkit", "grade", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "LABKIT_LANG": "en"},
    )
    code, peak = proc.stdout.split()
    return int(code), int(peak)


def _lists(path: Path, megabytes: int) -> Path:
    """A legal JSON file of ``megabytes`` MB: ``[[],[],...]`` (about 26 bytes of memory per byte)."""
    path.write_bytes(b"[" + b"[]," * (megabytes * 10**6 // 3) + b"[]]")
    return path


@pytest.mark.parametrize("workers", ["in-process", "pool"])
def test_a_pathological_json_file_is_too_large_and_the_batch_stays_within_its_ceiling(
    released, tmp_path, workers
):
    """Before: 40 MB of ``[[],...]`` took about 1 GiB in whichever process read it (the grader
    itself for a small batch; a worker, then the grader again, for a big one)."""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "2023000001_01-lab.ipynb").write_text(json.dumps(_all_pass(released)), encoding="utf-8")
    _lists(subs / "2023000002_01-lab.ipynb", 40)
    if workers == "pool":  # over 64 MB in all: read by worker processes
        _lists(subs / "2023000003_01-lab.ipynb", 40)
    out = tmp_path / "g"
    manifest = _manifest_file(released, tmp_path)
    code, peak_kib = _grade_measured(
        subs, "--manifest", manifest, "--out", out, "--jobs", "2", "--max-mb", "64"
    )
    assert code == 1
    report = _report(out)
    bad = [s for s in report["submissions"] if s["status"] == "unreadable"]
    assert len(bad) == (2 if workers == "pool" else 1)
    assert all(s["reason"].startswith("too large: parsing it would need about") for s in bad), bad
    totals = _totals(out)
    assert totals["2023000001"] == str(released[1].total_points), "the batch goes on"
    assert totals["2023000002"] == "", "the student stays in lms.csv, ungraded"
    # 64 MiB cap → 256 MiB per file at most (about 100 MiB measured, interpreter and plot included)
    assert peak_kib < 300 * 1024, f"peak {peak_kib // 1024} MiB"


def test_a_worker_whose_estimate_is_wrong_hits_its_memory_limit_not_the_machine(
    released, tmp_path, monkeypatch
):
    """The estimate is the first line; ``RLIMIT_AS`` in every worker is the second: with the
    estimate switched off, the file ends as ``MemoryError`` → unreadable in its worker."""
    from labkit.grading import reading

    big = _lists(tmp_path / "2023000002_01-lab.ipynb", 60)
    good = tmp_path / "2023000001_01-lab.ipynb"
    good.write_text(json.dumps(_all_pass(released)), encoding="utf-8")
    monkeypatch.setattr(reading, "parse_cost", lambda text, within=None: 0)  # forked workers inherit it
    monkeypatch.setattr(collect, "_POOL_MIN_BYTES", 0)
    sources = collect.find_sources([good, big])
    subs = collect.grade_sources(sources, released[1], jobs=2, max_bytes=64 * MiB)
    assert subs[0].status == "ok"
    assert subs[1].status == "unreadable"
    assert subs[1].reason.startswith("too large: it ran out of memory"), subs[1].reason
    assert subs[1].file_id == "2023000002"


# -- what a file holds -----------------------------------------------------------------------------
def test_huge_integers_and_malformed_sources_neither_crash_nor_lose_the_student(
    released, tmp_path, monkeypatch
):
    """Before: a >4300-digit integer (ValueError) or a numeric ``source`` (TypeError) raised
    inside the reader; the file became unreadable *without* its student id, so the student
    vanished from lms.csv."""
    subs = tmp_path / "subs"
    subs.mkdir()
    big = _all_pass(released)
    big["metadata"]["huge"] = "HUGE"
    text = json.dumps(big).replace('"HUGE"', "9" * 5000)
    (subs / "2023000001_01-lab.ipynb").write_text(text, encoding="utf-8")
    numeric = _all_pass(released)
    numeric["cells"].append({"cell_type": "markdown", "metadata": {}, "source": 42})
    numeric["cells"].append({"cell_type": "code", "metadata": {}, "source": [1, None], "outputs": []})
    (subs / "2023000002_01-lab.ipynb").write_text(json.dumps(numeric), encoding="utf-8")
    check_numeric = _all_pass(released)
    _cell(check_numeric, "t.add")["source"] = 7
    (subs / "2023000003_01-lab.ipynb").write_text(json.dumps(check_numeric), encoding="utf-8")
    full = str(released[1].total_points)
    out = tmp_path / "g"
    run = grade.main(submissions=[subs], manifest=released[1], out_dir=out, plot=False)
    by_id = {st.student_id: st for st in run.gradebook.students}
    assert by_id["2023000001"].total == released[1].total_points
    assert by_id["2023000002"].total == released[1].total_points
    add = next(c for c in by_id["2023000003"].notebooks[0].checks if c.check == "t.add")
    assert (add.status, add.reason) == ("tampered", "source-changed")
    totals = _totals(out)
    assert totals["2023000001"] == full and totals["2023000002"] == full
    assert "2023000003" in totals

    def bug(*args: Any, **kw: Any) -> Any:
        raise ZeroDivisionError("a case no rule foresaw")

    monkeypatch.setattr(collect, "classify_notebook", bug)
    out2 = tmp_path / "g2"
    run = grade.main(submissions=[subs], manifest=released[1], out_dir=out2, plot=False)
    assert all(s.status == "unreadable" and s.file_id for s in run.gradebook.submissions)
    assert "ZeroDivisionError" in run.gradebook.submissions[0].reason
    assert _totals(out2) == {"2023000001": "", "2023000002": "", "2023000003": ""}


@pytest.mark.parametrize(
    "unit",
    [
        *("[],", "{},", "1.5,", "12345,", '"ab",', '"",', '{"a":1},', "[[1]],", "[1,2],"),
        *('{"a":"b","c":"d"},', "[[[[]]]],", '["x",[]],', '"\\ud83d\\ude00",', '"\\u0101",'),
        *('{"a":[],"b":[]},', '"[[[,,,{{{:::",'),
    ],
)
def test_the_parse_cost_estimate_bounds_what_json_loads_allocates(unit):
    """Measured with tracemalloc (exact, no timing): the estimate is never below the real peak."""
    import tracemalloc

    from labkit.grading.reading import parse_cost

    text = "[" + unit * (2 * 10**6 // len(unit)) + "0]"
    tracemalloc.start()
    try:
        json.loads(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert parse_cost(text) >= peak, (unit, parse_cost(text), peak)
    assert parse_cost(text, within=0) == parse_cost(text) <= parse_cost(text, within=2**40)


def test_an_archive_with_more_entries_than_a_class_download_is_refused(tmp_path, monkeypatch):
    from labkit.errors import InvalidField

    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(5):
            zf.writestr(f"{n}/x.txt", "")
    monkeypatch.setattr(collect, "MAX_ZIP_ENTRIES", 4)
    with pytest.raises(InvalidField, match="holds 5 entries"):
        find_inputs([archive])
    monkeypatch.setattr(collect, "MAX_ZIP_ENTRIES", 5)
    assert find_inputs([archive]).sources == []
