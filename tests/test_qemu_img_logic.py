"""Pure qemu-img logic: format names, argv builders, size rules and output parsers (nothing spawned)."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from labkit.errors import InvalidField
from labkit.logic import qemu_img as qi
from labkit.logic import qemu_img_facts as qf
from labkit.logic.sizes import MAX_SIZE, round_up

GiB = 1 << 30

# Real `qemu-img info --output=json` output of QEMU 7.2 for a fresh 120G qcow2 (captured, not invented).
QCOW2_INFO = """{
    "virtual-size": 128849018880,
    "filename": "u.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 200704,
    "format-specific": {
        "type": "qcow2",
        "data": {
            "compat": "1.1",
            "compression-type": "zlib",
            "lazy-refcounts": false,
            "refcount-bits": 16,
            "corrupt": false,
            "extended-l2": false
        }
    },
    "dirty-flag": false
}"""
MEASURE = '{\n    "required": 67436544,\n    "fully-allocated": 67436544\n}'
CHECK = """{
    "image-end-offset": 34078720, "compressed-clusters": 1024, "total-clusters": 1024,
    "check-errors": 0, "allocated-clusters": 1024, "filename": "dc.qcow2", "format": "qcow2",
    "fragmented-clusters": 1024
}"""


# -- format names ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*qi.FORMATS, "QCOW2", " Raw ", "VPC"])
def test_known_formats_pass_without_note(name):
    fmt, note = qi.normalize_format(name)
    assert fmt == name.strip().lower()
    assert note is None


@pytest.mark.parametrize("name", ["vhd", "VHD", " Vhd"])
def test_vhd_is_mapped_to_vpc_with_the_lesson(name, monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    fmt, note = qi.normalize_format(name, "src_format")
    assert fmt == "vpc"
    assert "Unknown driver 'vhd'" in note
    assert "-f vpc" in note


def test_img_is_raw_with_a_note():
    fmt, note = qi.normalize_format("img")
    assert fmt == "raw"
    assert note


@pytest.mark.parametrize("name", ["qcow", "iso", "", "  ", "vhd2", None, 3])
def test_unknown_formats_name_the_field_and_the_choices(name):
    with pytest.raises(InvalidField) as info:
        qi.normalize_format(name, "dst_format")
    assert info.value.field == "dst_format"
    assert "qcow2" in info.value.fix
    assert "vpc" in info.value.fix


def test_qcow_hint(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    with pytest.raises(InvalidField, match="did you mean qcow2"):
        qi.normalize_format("qcow")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.vhd", "vpc"),
        ("A.VHDX", "vhdx"),
        ("x/y.qcow2", "qcow2"),
        ("b.vmdk", "vmdk"),
        ("c.img", None),
        ("d", None),
    ],
)
def test_format_from_name(name, fmt):
    assert qi.format_from_name(name) == fmt


# -- the course's command lines ----------------------------------------------------------------
def test_course_create_lines():
    assert qi.build_create("ubuntu-arm64.qcow2", "120G", "qcow2") == [
        "qemu-img", "create", "-f", "qcow2", "ubuntu-arm64.qcow2", "120G"]  # fmt: skip
    # `qemu-img create ubuntu-arm64.img 120G`: raw is QEMU's default; labkit still says -f raw
    assert qi.build_create("ubuntu-arm64.img", "120G", None) == [
        "qemu-img", "create", "-f", "raw", "ubuntu-arm64.img", "120G"]  # fmt: skip
    assert qi.build_create("x.img", "120GiB")[-1] == "120G"  # normalised to a spelling QEMU accepts


def test_course_convert_lines():
    assert qi.build_convert("in.vhd", "out.qcow2", "vhd", "qcow2", progress=False) == [
        "qemu-img", "convert", "-f", "vpc", "-O", "qcow2", "in.vhd", "out.qcow2"]  # fmt: skip
    # exactly the course's `qemu-img convert -O qcow2 -c ubuntu-arm64.img ubuntu-arm64-compressed.qcow2`
    assert qi.build_convert(
        "ubuntu-arm64.img", "ubuntu-arm64-compressed.qcow2", None, "qcow2", True, progress=False
    ) == ["qemu-img", "convert", "-O", "qcow2", "-c", "ubuntu-arm64.img", "ubuntu-arm64-compressed.qcow2"]
    assert qi.build_convert("a.raw", "b.qcow2", "raw")[:3] == ["qemu-img", "convert", "-p"]


@pytest.mark.parametrize("dst_fmt", ["raw", "vpc", "vdi", "vmdk", "vhdx", "qed"])
def test_compress_is_only_for_qcow2(dst_fmt):
    with pytest.raises(InvalidField) as info:
        qi.build_convert("a.raw", "b.out", "raw", dst_fmt, compress=True)
    assert info.value.field == "compress"


def test_convert_refuses_same_file():
    with pytest.raises(InvalidField) as info:
        qi.build_convert("d/a.qcow2", "d/./a.qcow2")
    assert info.value.field == "dst"


def test_info_measure_compare_check_builders():
    assert qf.build_info("a.vhd", "vhd", force_share=True) == [
        "qemu-img", "info", "--output=json", "-f", "vpc", "-U", "a.vhd"]  # fmt: skip
    assert qf.build_info("a.img") == ["qemu-img", "info", "--output=json", "a.img"]
    assert qf.build_measure("a.raw", "qcow2", "raw") == [
        "qemu-img", "measure", "--output=json", "-f", "raw", "-O", "qcow2", "a.raw"]  # fmt: skip
    assert qf.build_compare("a.vhd", "b.qcow2", "vhd", "qcow2") == [
        "qemu-img", "compare", "-f", "vpc", "-F", "qcow2", "a.vhd", "b.qcow2"]  # fmt: skip
    assert qf.build_compare("a", "b", strict=True) == ["qemu-img", "compare", "-s", "a", "b"]
    assert qf.build_check("b.qcow2", "qcow2") == [
        "qemu-img",
        "check",
        "--output=json",
        "-f",
        "qcow2",
        "b.qcow2",
    ]


def test_resize_builder_rules():
    assert qi.build_resize("a.qcow2", "130G", "qcow2") == [
        "qemu-img",
        "resize",
        "-f",
        "qcow2",
        "a.qcow2",
        "130G",
    ]
    assert "--shrink" in qi.build_resize("a.raw", "1G", "raw", shrink=True)
    for fmt in ("vpc", "vdi", "vmdk", "vhdx"):
        with pytest.raises(InvalidField):
            qi.build_resize("a", "1G", fmt)
    with pytest.raises(InvalidField):
        qi.build_resize("a.qed", "1G", "qed", shrink=True)  # qed can grow, not shrink
    with pytest.raises(InvalidField) as info:
        qi.build_resize("a.qcow2", "1000", "qcow2")
    assert info.value.field == "size"


@pytest.mark.parametrize(
    ("fmt", "size"), [("vpc", "2041G"), ("vhd", "3T"), ("vhdx", "65T"), ("qed", "65T"), ("qcow2", "0")]
)
def test_sizes_beyond_a_formats_limit_are_refused(fmt, size):
    with pytest.raises(InvalidField) as info:
        qi.build_create("x", size, fmt)
    assert info.value.field == "size"


@pytest.mark.parametrize("bad", ["", "  ", None, 5])
def test_builders_reject_bad_paths(bad):
    with pytest.raises(InvalidField):
        qf.build_info(bad)


# -- expected sizes ----------------------------------------------------------------------------
@given(st.integers(min_value=1, max_value=qi.MAX_VIRTUAL_SIZE["vpc"]))
@example(120 * GiB)
@example(1)
def test_vpc_size_is_rounded_up_to_a_geometry(size):
    got = qi.expected_virtual_size(size, "vpc")
    assert got >= size
    assert got % 512 == 0
    sectors = got // 512
    cyls, heads, secs = qi.vpc_geometry(sectors)
    if sectors < 65535 * 16 * 255:  # below the maximum geometry the size *is* the geometry
        assert cyls * heads * secs == sectors


@given(st.integers(min_value=1, max_value=(2040 << 30) - 1))
def test_vpc_size_is_monotonic(size):
    assert qi.expected_virtual_size(size, "vpc") <= qi.expected_virtual_size(size + 1, "vpc")


@given(st.integers(min_value=0, max_value=1 << 40))
def test_vpc_geometry_stays_within_chs_limits(sectors):
    cyls, heads, secs = qi.vpc_geometry(sectors)
    assert 0 <= cyls <= 65535
    assert 4 <= heads <= 16
    assert secs in (17, 31, 63, 255)


@given(st.integers(min_value=1, max_value=MAX_SIZE - 512), st.sampled_from(["qcow2", "raw", "vmdk", "vdi"]))
def test_other_formats_round_to_sectors(size, fmt):
    assert qi.expected_virtual_size(size, fmt) == round_up(size, 512)


def _footer(disk_type: int, cookie: bytes = b"conectix") -> bytes:
    f = bytearray(512)
    f[:8] = cookie
    f[60:64] = disk_type.to_bytes(4, "big")
    return bytes(f)


def test_fixed_vhd_footer_detection():
    assert qi.looks_like_fixed_vhd(b"\0" * 4096 + _footer(2))
    assert not qi.looks_like_fixed_vhd(_footer(3))  # dynamic: QEMU probes those itself
    assert not qi.looks_like_fixed_vhd(_footer(2, b"notavhd!"))
    assert not qi.looks_like_fixed_vhd(_footer(2)[:511])


@given(st.binary(max_size=1024))
def test_fixed_vhd_detection_never_raises(data):
    assert qi.looks_like_fixed_vhd(data) in (True, False)


# -- parsers -----------------------------------------------------------------------------------
def test_parse_info_real_output():
    info = qf.parse_info(QCOW2_INFO)
    assert (info.format, info.virtual_size, info.actual_size, info.cluster_size) == (
        "qcow2", 128849018880, 200704, 65536)  # fmt: skip
    assert info.compression_type == "zlib"
    assert info.corrupt is False
    assert info.dirty is False
    assert info.backing_file is None
    ev = info.to_evidence()
    assert ev["virtual_size_human"] == "120 GiB"
    assert json.loads(json.dumps(ev)) == ev
    assert info.allocation_ratio < 0.001


def test_parse_info_backing_chain_list_and_bytes():
    info = qf.parse_info(("[" + QCOW2_INFO + "]").encode())
    assert info.format == "qcow2"


@pytest.mark.parametrize(
    "text",
    ["", "not json", "{", "[]", "null", "42", '"qcow2"', '{"format": "raw"}', '{"virtual-size": 5}',
     '{"format": 3, "virtual-size": 5}', '{"format": "raw", "virtual-size": -1}',
     '{"format": "raw", "virtual-size": "5"}', '{"format": "raw", "virtual-size": true}', "[" * 100000],
)  # fmt: skip
def test_parse_info_rejects_garbage_with_invalid_field(text):
    with pytest.raises(InvalidField) as info:
        qf.parse_info(text)
    assert info.value.field == "qemu-img info output"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
_KEYS = ["filename", "cluster-size", "actual-size", "dirty-flag", "encrypted", "backing-filename",
         "backing-filename-format", "full-backing-filename", "format-specific"]  # fmt: skip


@given(
    st.text(min_size=1, max_size=10),
    st.integers(min_value=0, max_value=MAX_SIZE),
    st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=8), _JSON, max_size=8),
)
def test_parse_info_survives_any_optional_keys(fmt, vsize, extra):
    data = {**extra, "format": fmt, "virtual-size": vsize}
    info = qf.parse_info(json.dumps(data))
    assert info.format == fmt
    assert info.virtual_size == vsize
    assert info.actual_size is None or info.actual_size == data.get("actual-size")
    assert isinstance(info.dirty, bool)
    assert isinstance(info.format_specific, dict)
    json.dumps(info.to_evidence())  # evidence is always storable


@given(st.text(max_size=60) | st.binary(max_size=60) | _JSON.map(json.dumps))
def test_parse_info_garbage_only_ever_raises_invalid_field(text):
    try:
        info = qf.parse_info(text)
    except InvalidField as exc:
        assert exc.field == "qemu-img info output"
    else:
        assert info.format
        assert info.virtual_size >= 0


def test_parse_measure_and_check():
    m = qf.parse_measure(MEASURE)
    assert (m.required, m.fully_allocated) == (67436544, 67436544)
    c = qf.parse_check(CHECK)
    assert c.compressed_clusters == 1024
    assert c.clean
    assert not qf.parse_check('{"check-errors": 0, "corruptions": 2}').clean
    for bad in ("", "{}", '{"required": 1}', "[1]", "x"):
        with pytest.raises(InvalidField):
            qf.parse_measure(bad)
    for bad in ("", "[]", "nope"):
        with pytest.raises(InvalidField):
            qf.parse_check(bad)


@given(st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_parse_measure_and_check_never_raise_anything_else(text):
    for parse, kind in ((qf.parse_measure, qf.Measure), (qf.parse_check, qf.ImageCheck)):
        try:
            result = parse(text)
        except InvalidField as exc:
            assert exc.field.startswith("qemu-img ")
        else:
            assert isinstance(result, kind)


@pytest.mark.parametrize(
    ("line", "value"),
    [("    (12.34/100%)", 0.1234), ("    (0.00/100%)", 0.0), ("    (100.00/100%)", 1.0), ("(50/100%)", 0.5)],
)
def test_parse_progress(line, value):
    assert qi.parse_progress(line) == pytest.approx(value)


@pytest.mark.parametrize("line", ["", "Images are identical.", "(12.34/200%)", "12.34%", "(abc/100%)", None])
def test_parse_progress_ignores_other_lines(line):
    assert qi.parse_progress(line) is None


@given(st.floats(min_value=0, max_value=100), st.integers(0, 8))
def test_parse_progress_reads_every_qemu_line(pct, indent):
    line = " " * indent + f"({pct:.2f}/100%)"
    assert qi.parse_progress(line) == pytest.approx(round(pct, 2) / 100)


@given(st.text(max_size=30))
def test_parse_progress_never_raises(line):
    v = qi.parse_progress(line)
    assert v is None or 0.0 <= v <= 1.0


def test_interpret_compare():
    assert qf.interpret_compare(0, "Images are identical.\n").identical is True
    diff = qf.interpret_compare(1, "Content mismatch at offset 1048576!\n")
    assert diff.identical is False
    assert diff.offset == 1048576
    err = qf.interpret_compare(2, "", "qemu-img: Could not open 'x': No such file")
    assert err.identical is None
    assert "Could not open" in err.message
