"""Property-based tests over every reader and parser that takes outside input (issue 9).

Each property: whatever the input, the function returns its documented result or raises its
documented error (:class:`~labkit.errors.InvalidField`, or ``ValueError`` where a docstring says
so), never another exception. Inputs are random text and bytes plus structured near-misses
(JSON of the right shape with wrong values). Examples are bounded (``max_examples``) and the
deadline is off (a slow shared machine is not a bug); the module runs in seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import string
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.checks import CHECK_MIME
from labkit.errors import InvalidField
from labkit.grading.classify import classify_notebook
from labkit.grading.collect import find_inputs, grade_source, id_from_path, read_source
from labkit.grading.manifest import Manifest, build_release, parse_manifest
from labkit.logic import docker as dk
from labkit.logic import docker_names as dn
from labkit.logic import qemu_img_facts as qf
from labkit.logic.sizes import format_size, parse_size
from labkit.notebooks import (
    count_results,
    first_error,
    iter_check_payloads,
    last_results_by_check,
    load_notebook_json,
)

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "tests" / "data" / "grading" / "01-lab.ipynb"

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------------
_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _shaped(keys: list[str]) -> st.SearchStrategy[Any]:
    """JSON whose dict keys are mostly the ones the reader looks for, with any values."""
    key = st.sampled_from(keys) | st.text(max_size=6)
    return st.recursive(
        _scalar,
        lambda inner: st.dictionaries(key, inner, max_size=6) | st.lists(inner, max_size=4),
        max_leaves=30,
    )


def _text_of(data: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """JSON text of ``data`` (NaN and Infinity included, as Python writes them), or any text."""
    return data.map(json.dumps) | st.text(max_size=200)


# -- sizes ----------------------------------------------------------------------------------------
_size_text = st.text(alphabet=string.digits + " .,-+_eEkKmMgGtTpPiIbB" + "千兆", max_size=14)


@MANY
@given(_size_text | st.text(max_size=20) | st.integers(min_value=-(2**80), max_value=2**80))
def test_parse_size_returns_bytes_or_invalid_field(text):
    try:
        value = parse_size(text)
    except InvalidField as exc:
        assert exc.field == "size"
        return
    assert isinstance(value, int) and value >= 0


@FAST
@given(st.integers(min_value=0, max_value=2**62))
def test_format_size_reads_back_as_the_same_bytes(n):
    assert parse_size(format_size(n)) == n


# -- qemu-img ------------------------------------------------------------------------------------
_INFO_KEYS = [
    "filename", "format", "virtual-size", "actual-size", "dirty-flag", "cluster-size",
    "backing-filename", "full-backing-filename", "backing-filename-format", "format-specific",
    "type", "data", "compat", "compression-type", "children", "snapshots",
]  # fmt: skip
_MEASURE_KEYS = ["required", "fully-allocated", "bitmaps"]
_CHECK_KEYS = ["filename", "format", "check-errors", "image-end-offset", "corruptions", "leaks"]


@MANY
@given(_text_of(_shaped(_INFO_KEYS)) | st.binary(max_size=200))
def test_parse_info_returns_an_image_info_or_invalid_field(text):
    try:
        info = qf.parse_info(text)
    except InvalidField:
        return
    assert isinstance(info, qf.ImageInfo)
    json.dumps(info.to_evidence())  # what a check result stores must be JSON


@MANY
@given(_text_of(_shaped(_MEASURE_KEYS)) | st.binary(max_size=100))
def test_parse_measure_returns_a_measure_or_invalid_field(text):
    with contextlib.suppress(InvalidField):
        assert isinstance(qf.parse_measure(text), qf.Measure)


@MANY
@given(_text_of(_shaped(_CHECK_KEYS)) | st.binary(max_size=100))
def test_parse_check_returns_a_check_or_invalid_field(text):
    with contextlib.suppress(InvalidField):
        assert isinstance(qf.parse_check(text), qf.ImageCheck)


@MANY
@given(
    st.integers(min_value=-300, max_value=300),
    st.text(max_size=120) | st.sampled_from(["Images are identical.\n", "Content mismatch at offset 512!\n"]),
    st.text(max_size=60),
)
def test_interpret_compare_always_answers(returncode, stdout, stderr):
    result = qf.interpret_compare(returncode, stdout, stderr)
    assert isinstance(result, qf.CompareResult)


# -- docker --------------------------------------------------------------------------------------
_ref_alphabet = string.ascii_letters + string.digits + "._-/:@" + "Ä "


@MANY
@given(st.text(alphabet=_ref_alphabet, max_size=40) | st.text(max_size=20))
def test_parse_reference_round_trips_or_refuses(ref):
    try:
        parsed = dn.parse_reference(ref)
    except InvalidField as exc:
        assert exc.field == "image"
        return
    again = dn.parse_reference(str(parsed))
    assert again == parsed
    assert str(parsed) == str(parsed).strip()
    assert not any(c.isupper() for c in parsed.path)  # never "does not exist" for upper case


@MANY
@given(st.text(max_size=300))
def test_classify_engine_error_always_names_a_known_kind(message):
    kinds = {
        "not-running", "permission", "api-version", "port-in-use", "name-conflict", "in-use",
        "not-found", "no-space", "zip", "bad-archive", "timeout", "other",
    }  # fmt: skip
    assert dn.classify_engine_error(message).kind in kinds


_load_item = (
    st.text(max_size=60)
    | st.sampled_from(["Loaded image: labkit/ailab:latest", "Loaded image ID: sha256:" + "a" * 64])
    | _shaped(["stream", "error", "errorDetail", "message", "status", "aux"])
)


@MANY
@given(st.lists(_load_item, max_size=6))
def test_parse_load_output_lists_names_or_raises_value_error(items):
    try:
        names = dn.parse_load_output(items)
    except ValueError:
        return
    assert all(isinstance(n, str) and n for n in names)


@MANY
@given(_text_of(_shaped(["format", "image_id", "sha256", "size", "tags", "created"])))
def test_parse_sidecar_returns_a_dict_or_invalid_field(text):
    with contextlib.suppress(InvalidField):
        assert isinstance(dn.parse_sidecar(text), dict)


@MANY
@given(st.text(max_size=200) | _text_of(_shaped(["status", "error", "id", "progressDetail"])))
def test_import_id_finds_an_id_or_raises_value_error(answer):
    try:
        image_id = dk.import_id(answer)
    except ValueError:
        return
    assert image_id.startswith("sha256:")


@MANY
@given(st.binary(max_size=300))
def test_archive_kind_always_names_a_kind(head):
    assert isinstance(dn.archive_kind(head), str)


@MANY
@given(st.lists(_text_of(_shaped(["id", "object"])), max_size=6).map("\n".join))
def test_the_created_record_reader_skips_what_it_cannot_read(text):
    pairs = dn.parse_created_records(text)
    assert all(isinstance(i, str) and i and isinstance(o, str) and o for i, o in pairs)


# -- notebooks (labkit/notebooks.py) ---------------------------------------------------------------
_NB_KEYS = [
    "cells", "metadata", "outputs", "data", "cell_type", "source", "labkit", "tags", "output_type",
    "ename", "evalue", "traceback", "execution_count", CHECK_MIME, "check", "status", "points",
]  # fmt: skip
_notebook = st.fixed_dictionaries(
    {"cells": st.lists(_shaped(_NB_KEYS), max_size=5)},
    optional={"metadata": _shaped(_NB_KEYS), "nbformat": st.sampled_from([3, 4, "4", None])},
)


@MANY
@given(_notebook | st.dictionaries(st.sampled_from(_NB_KEYS), _shaped(_NB_KEYS), max_size=4))
def test_notebook_readers_never_raise_on_a_json_object(nb):
    """What :func:`load_notebook_json` hands on is a JSON object; its contents can be anything."""
    payloads = iter_check_payloads(nb)
    assert all(isinstance(p, dict) for _, p in payloads)
    latest = last_results_by_check(nb)
    counts = count_results(latest.values())
    assert all(isinstance(v, int) and v >= 0 for v in counts.values())
    found = first_error(nb)
    assert found is None or isinstance(found, dict)


@FAST
@given(st.binary(max_size=300) | _text_of(_notebook).map(str.encode))
def test_load_notebook_json_returns_a_notebook_or_raises_value_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "x.ipynb")
        path.write_bytes(data)
        try:
            nb = load_notebook_json(path)
        except ValueError:
            return
    assert isinstance(nb, dict) and isinstance(nb.get("cells"), list)


# -- the manifest (labkit/grading/manifest.py) ----------------------------------------------------
_MANIFEST_KEYS = [
    "format", "course", "assignment", "notebooks", "name", "release", "checks", "check", "points",
    "source_sha256", "cell_id", "index", "rerun", "source", "setup", "total_points",
]  # fmt: skip
_manifest = st.fixed_dictionaries(
    {"format": st.sampled_from(["labkit-manifest/1", "x"]), "course": _scalar, "assignment": _scalar},
    optional={"notebooks": st.lists(_shaped(_MANIFEST_KEYS), max_size=3)},
)


@MANY
@given(_text_of(_manifest | _shaped(_MANIFEST_KEYS)) | st.binary(max_size=100))
def test_parse_manifest_returns_a_manifest_or_invalid_field(text):
    try:
        manifest = parse_manifest(text)
    except InvalidField:
        return
    assert isinstance(manifest, Manifest)
    assert parse_manifest(json.dumps(manifest.to_json())) == manifest  # what it writes, it reads


@FAST
@given(st.integers(min_value=1, max_value=3000))
def test_a_deeply_nested_manifest_is_refused_not_a_recursion_error(depth):
    text = '{"format": "labkit-manifest/1", "course": ' + "[" * depth + "]" * depth + "}"
    with contextlib.suppress(InvalidField):
        assert isinstance(parse_manifest(text), Manifest)


# -- the submission reader (labkit/grading/collect.py) ----------------------------------------------
def _course_manifest() -> Manifest:
    nb = json.loads(COURSE.read_text(encoding="utf-8"))
    _, spec = build_release(nb, name="01-lab.ipynb", course="c1", assignment="a1", release="r1")
    return Manifest("c1", "a1", (spec,))


MANIFEST = _course_manifest()


def _check_submission(sub) -> None:
    assert sub.status in ("ok", "unreadable", "foreign"), sub.status
    assert all(c.status in ("pass", "fail", "missing", "tampered", "error") for c in sub.checks)


@FAST
@given(
    st.binary(max_size=400) | _text_of(_notebook).map(str.encode),
    st.sampled_from(["2023123456_01-lab.ipynb", "x.ipynb", "s/2023000001/01-lab.ipynb"]),
)
def test_a_submission_file_always_grades_to_a_submission(data, rel):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, *rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        inputs = find_inputs([tmp])
        assert len(inputs.sources) == 1
        src = inputs.sources[0]
        parsed, problem = read_source(src, max_bytes=1 << 20)
        assert (parsed is None) != (problem is None)
        sub = grade_source(src, MANIFEST, max_bytes=1 << 20)
    _check_submission(sub)
    assert sub.file_id == id_from_path(src.rel, MANIFEST)  # whatever the file holds: the path's id
    if rel.startswith("2023"):
        assert sub.file_id == "2023123456"


_member = st.tuples(
    st.sampled_from(["01-lab.ipynb", "a/01-lab.ipynb", "../x.ipynb", "b.ipynb", "notes.txt", "/abs.ipynb"]),
    st.binary(max_size=200) | _text_of(_notebook).map(str.encode),
)


@FAST
@given(st.lists(_member, min_size=1, max_size=4))
def test_a_zip_of_anything_grades_each_member_or_reports_it(members):
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp, "2023123456.zip")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": a zip may hold them
            for name, data in members:
                zf.writestr(name, data)
        archive.write_bytes(buf.getvalue())
        inputs = find_inputs([archive])
        for src in inputs.sources:
            _check_submission(grade_source(src, MANIFEST, max_bytes=1 << 20))
        assert all(isinstance(line, dict) for line in getattr(inputs, "report", []))


@FAST
@given(st.binary(max_size=300))
def test_a_damaged_zip_is_refused_or_read_never_a_traceback(data):
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp, "s.zip")
        archive.write_bytes(b"PK\x03\x04" + data if data[:1] != b"P" else data)
        try:
            inputs = find_inputs([archive])
        except InvalidField:
            return
        for src in inputs.sources:
            _check_submission(grade_source(src, MANIFEST, max_bytes=1 << 20))


@MANY
@given(_notebook | _shaped(_NB_KEYS))
def test_classifying_any_parsed_json_gives_a_submission(nb):
    _check_submission(classify_notebook(nb, MANIFEST, source="x.ipynb"))
