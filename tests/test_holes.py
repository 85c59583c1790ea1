"""Issue 9, section 5: smaller holes, each reproduced first with the real tools.

* a file name starting with ``-`` (or with a ``:`` before any ``/``) reaches qemu-img as a file
  name, never as an option or a protocol;
* Docker cleanup owns only what labkit itself created (see ``test_docker_cleanup_*``);
* an upper-case image name is refused as "must be lower case", not left to fail as "does not exist".
"""

from __future__ import annotations

import json
import subprocess

import pytest

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import qemu_img as qi
from labkit.logic import qemu_img_facts as qf
from labkit.logic.docker_names import parse_reference
from labkit.steps.disk import ConvertImage, CreateImage, ImageInfo
from labkit.steps.docker.run import RunImage


# -- 5a: file names that look like options -----------------------------------------------------
@pytest.fixture
def odd_names(tmp_path, monkeypatch):
    """A work folder holding a qcow2 image named ``-U`` and a raw one named ``nbd:x``."""
    monkeypatch.chdir(tmp_path)
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "./-U", "1M"], check=True, capture_output=True)
    subprocess.run(["qemu-img", "create", "-f", "raw", "./nbd:x", "2M"], check=True, capture_output=True)
    return tmp_path


@pytest.mark.parametrize(("name", "fmt", "size"), [("-U", "qcow2", 1 << 20), ("nbd:x", "raw", 2 << 20)])
def test_image_info_reads_a_file_whose_name_looks_like_an_option_or_protocol(odd_names, name, fmt, size):
    result = ImageInfo(name).execute("live")
    assert result.status == "pass", result.message
    info = result.evidence["info"]
    assert (info["format"], info["virtual_size"]) == (fmt, size)
    assert result.evidence["path"] == str(odd_names / name)


def test_create_and_convert_write_files_named_like_options(odd_names):
    made = CreateImage("-disk.qcow2", "1M", "qcow2").execute("live")
    assert made.status == "pass", made.message
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "./-disk.qcow2"], check=True, capture_output=True, text=True
    )
    assert json.loads(out.stdout)["format"] == "qcow2"
    conv = ConvertImage("-U", "-c.qcow2", "qcow2", "qcow2").execute("live")
    assert conv.status == "pass", conv.message
    assert (odd_names / "-c.qcow2").is_file()


@pytest.mark.parametrize("name", ["-U", "--help", "-O.qcow2", "nbd:localhost", "json:{}", "a:b/c"])
def test_every_builder_passes_such_names_as_file_names(name):
    argvs = [
        qf.build_info(name),
        qf.build_measure(name),
        qf.build_check(name),
        qf.build_compare(name, "b.img"),
        qi.build_create(name, "1M", "qcow2"),
        qi.build_resize(name, "2M"),
        qi.build_convert(name, "x.qcow2"),
        qi.build_convert("x.raw", name),
    ]
    for argv in argvs:
        assert f"./{name}" in argv, argv
        assert name not in argv, argv


@pytest.mark.parametrize("name", ["/abs/-U", "dir/-U", "plain.qcow2", "./-U", "/tmp/nbd:x"])
def test_names_that_are_already_unambiguous_are_left_alone(name):
    assert qf.build_info(name)[-1] == name


# -- 5c: upper case in an image name ----------------------------------------------------------
@pytest.mark.parametrize(
    "ref", ["Labkit/busybox:local", "Chinageology/ailab:latest", "LABKIT/AILAB", "MyImage", "labkit/BusyBox"]
)
def test_upper_case_image_names_are_refused_as_not_lower_case(ref):
    for lang, words in (("en", "must be lowercase"), ("zh", "必须全部小写")):
        with use_lang(lang), pytest.raises(InvalidField) as info:
            parse_reference(ref)
        assert words in str(info.value)
        assert ref.lower().split(":")[0] in str(info.value)  # the suggested fix: the lower-case name


@pytest.mark.parametrize("ref", ["Docker.io/library/ubuntu", "localhost:5000/labkit/ailab", "quay.io/x/y:1"])
def test_registry_hosts_keep_their_own_rules(ref):
    assert parse_reference(ref).domain == ref.split("/")[0]


def test_running_an_upper_case_image_says_lower_case_not_missing():
    """Before: ``Labkit/busybox:local`` went to the engine as a pull from host ``Labkit``."""
    with use_lang("en"):
        result = RunImage("Labkit/busybox:local", ["true"]).execute("live")
    assert result.status == "error"
    assert result.evidence["field"] == "image"
    assert "must be lowercase" in result.message
    assert "does not exist" not in result.message
    assert "commands" not in result.evidence  # refused before anything ran
