"""The CUDA image ↔ PyTorch wheel index ↔ driver table (pure): the course's pairs get flagged."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labkit.errors import InvalidField
from labkit.findings import Finding
from labkit.logic import cuda_images as ci

SEED_TAG = "nvidia/cuda:12.5.0-runtime-ubuntu22.04"  # course 2.4.7
SEED_INDEX = "https://download.pytorch.org/whl/nightly/cu124"
SEED_CONDA = "conda install pytorch torchvision torchaudio pytorch-cuda=12.4 -c pytorch-nightly -c nvidia"


@pytest.fixture(autouse=True)
def _english(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")


# -- the tables are consistent with each other --------------------------------------------------
def test_every_image_version_has_a_driver_and_every_wheel_cuda_an_image():
    for version in ci.IMAGE_TAGS:
        minor = ".".join(version.split(".")[:2])
        assert any(v.startswith(minor + ".") for v in ci.TOOLKIT_DRIVER), version
    for wheel in ci.WHEEL_INDEXES.values():
        pair = ci.matched_pair(index=wheel.name)
        assert pair.image.cuda == wheel.cuda, wheel
        assert pair.image.known, wheel
        assert ci.TORCH_LATEST[wheel.torch[-1]] == pair.torch
    for minor in ci.TORCH_LATEST:
        assert any(minor in w.torch for w in ci.WHEEL_INDEXES.values()), minor


def test_ubuntu_2404_images_start_with_cuda_12_5_1():
    assert "ubuntu24.04" not in ci.IMAGE_TAGS["12.4.1"]
    assert "ubuntu24.04" not in ci.IMAGE_TAGS["12.5.0"]
    assert "ubuntu24.04" in ci.IMAGE_TAGS["12.5.1"]


def test_driver_table_is_monotonic_in_the_toolkit_version():
    ordered = sorted(ci.TOOLKIT_DRIVER, key=ci.version_tuple)
    drivers = [ci.version_tuple(ci.TOOLKIT_DRIVER[v]) for v in ordered]
    assert drivers == sorted(drivers)


# -- defaults are matched ----------------------------------------------------------------------
def test_default_pair_is_matched_and_clean():
    pair = ci.matched_pair()
    assert pair.image.tag == "nvidia/cuda:12.8.1-runtime-ubuntu24.04"
    assert (pair.index.name, pair.torch) == ("cu128", "2.9.1")
    assert ci.check_pair(pair.image.tag, pair.index.url, pair.torch) == []


def test_a_torch_minor_resolves_to_its_newest_patch_on_the_newest_cuda12_index():
    pair = ci.matched_pair("2.6")
    assert pair.torch == "2.6.0"
    assert pair.index.name == "cu126"
    # 2.4 has no Ubuntu 24.04 image for its CUDA (12.4): the distro falls back instead of failing
    pair = ci.matched_pair("2.4")
    assert pair.index.name == "cu124"
    assert pair.image.distro == "ubuntu22.04"
    assert pair.image.known


def test_impossible_requests_name_the_field():
    with pytest.raises(InvalidField) as exc:
        ci.matched_pair("2.9.1", "cu124")
    assert exc.value.field == "torch"
    assert "cu126" in exc.value.fix
    with pytest.raises(InvalidField) as exc:
        ci.matched_pair(index="cu124", distro="ubuntu24.04")
    assert exc.value.field == "distro"
    with pytest.raises(InvalidField):
        ci.matched_pair("1.13")
    with pytest.raises(InvalidField):
        ci.matched_pair(index="cu999")


# -- the course's pair --------------------------------------------------------------------------
def test_seed_pair_is_a_cuda_mismatch_on_nightly_wheels():
    findings = ci.check_pair(SEED_TAG, SEED_INDEX)
    assert {f.code for f in findings} == {"cuda-mismatch", "nightly"}
    mismatch = next(f for f in findings if f.code == "cuda-mismatch")
    assert "driver" in mismatch.message
    assert "12.5" in mismatch.message
    assert "12.4" in mismatch.message
    assert "nvidia/cuda:12.4.1-runtime-ubuntu22.04" in mismatch.fix


def test_an_older_base_than_the_wheel_also_warns_about_the_driver_guard():
    findings = ci.check_pair("nvidia/cuda:12.4.1-runtime-ubuntu22.04", "cu128")
    mismatch = next(f for f in findings if f.code == "cuda-mismatch")
    assert "NVIDIA_REQUIRE_CUDA" in mismatch.message
    assert "ubuntu22.04" in mismatch.fix  # keeps the asked distro where the matched tag exists


def test_unknown_tags_devel_images_and_torch_not_on_the_index():
    codes = {f.code for f in ci.check_pair("nvidia/cuda:12.4.1-runtime-ubuntu24.04", "cu124")}
    assert codes == {"unknown-tag"}
    codes = {f.code for f in ci.check_pair("nvidia/cuda:12.8.1-devel-ubuntu24.04", "cu128", "2.6.0")}
    assert codes == {"devel-image", "torch-not-on-index"}


@pytest.mark.parametrize(
    "bad", ["ubuntu:24.04", "nvidia/cuda:latest", "nvidia/cuda:12.8.1", "nvidia/cuda:12.8.1-runtime"]
)
def test_non_cuda_tags_are_refused(bad):
    with pytest.raises(InvalidField) as exc:
        ci.parse_cuda_tag(bad)
    assert exc.value.field == "cuda_tag"


def test_registry_prefixes_parse():
    assert ci.parse_cuda_tag("docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04").tag == (
        "nvidia/cuda:12.8.1-base-ubuntu24.04"
    )
    assert ci.parse_cuda_tag("nvcr.io/nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04").known


# -- conda → pip ---------------------------------------------------------------------------------
def test_seed_conda_route_becomes_a_pinned_pip_route():
    findings, argv = ci.pip_route(SEED_CONDA)
    assert [f.code for f in findings] == ["conda-route", "nightly"]
    assert "138506" in findings[0].message
    assert argv[:7] == [
        "python3",
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "--index-url",
        ci.WHEEL_INDEXES["cu124"].url,
    ]
    assert argv[7:] == [f"torch=={ci.TORCH_LATEST['2.6']}", "torchvision", "torchaudio"]


def test_conda_route_keeps_an_explicit_pin_and_defaults_the_index():
    findings, argv = ci.pip_route("conda install pytorch==2.5.1 -c pytorch")
    assert [f.code for f in findings] == ["conda-route"]
    assert argv[-1] == "torch==2.5.1"
    assert ci.DEFAULT_INDEX in argv[-2]


@pytest.mark.parametrize("cmd", ["pip install torch", "conda install numpy", "conda install 'pytorch"])
def test_pip_route_refuses_other_commands(cmd):
    with pytest.raises(InvalidField):
        ci.pip_route(cmd)


# -- drivers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("driver", "cuda", "mode"),
    [
        ("550.54.14", "12.4", "full"),
        ("550.54.14", "12.4.1", "minor-compat"),  # 12.4 Update 1 wants 550.54.15
        ("550.54.15", "cu128", "minor-compat"),
        ("570.124.06", "nvidia/cuda:12.8.1-runtime-ubuntu24.04", "full"),
        ("525.60.13", "12.9", "minor-compat"),
        ("520.61.05", "12.0", "no"),
        ("575.57.08", "13.0", "no"),
        ("580.65.06", "cu130", "full"),
    ],
)
def test_driver_supports(driver, cuda, mode):
    target = ci.parse_cuda_tag(cuda) if cuda.startswith("nvidia/") else cuda
    verdict = ci.driver_supports(driver, target)
    assert verdict.mode == mode
    assert verdict.ok == (mode != "no")
    assert driver in verdict.message


def test_driver_supports_refuses_garbage():
    with pytest.raises(InvalidField):
        ci.driver_supports("latest", "12.8")
    with pytest.raises(InvalidField):
        ci.driver_supports("550.1", "10.2")


_drivers = st.tuples(st.integers(400, 700), st.integers(0, 200), st.integers(0, 20)).map(
    lambda t: ".".join(map(str, t))
)


@given(a=_drivers, b=_drivers, cuda=st.sampled_from(sorted(ci.TOOLKIT_DRIVER)))
def test_a_newer_driver_never_supports_less(a, b, cuda):
    rank = {"no": 0, "minor-compat": 1, "full": 2}
    lo, hi = sorted((a, b), key=ci.version_tuple)
    assert rank[ci.driver_supports(lo, cuda).mode] <= rank[ci.driver_supports(hi, cuda).mode]


@given(
    torch=st.one_of(st.none(), st.sampled_from(sorted(ci.TORCH_LATEST)), st.sampled_from(["2.9.0", "2.7.1"])),
    index=st.one_of(st.none(), st.sampled_from(sorted(ci.WHEEL_INDEXES))),
    distro=st.one_of(st.none(), st.sampled_from(["ubuntu20.04", "ubuntu22.04", "ubuntu24.04"])),
)
def test_any_matched_pair_checks_clean(torch, index, distro):
    try:
        pair = ci.matched_pair(torch, index, distro=distro)
    except InvalidField as exc:
        assert exc.field in ("torch", "distro")
        return
    assert ci.check_pair(pair.image.tag, pair.index.name, pair.torch) == []
    assert ci.driver_supports(pair.min_driver, pair.index).mode == "full"


# -- one diagnostic vocabulary ----------------------------------------------------------------------
def test_pairing_advice_is_the_shared_finding_naming_what_the_student_sees():
    findings = ci.check_pair(SEED_TAG, SEED_INDEX)
    assert all(isinstance(f, Finding) for f in findings)
    by_code = {f.code: f for f in findings}
    assert by_code["cuda-mismatch"].field == "base image"
    assert by_code["nightly"].field == "wheel index"
    data = by_code["cuda-mismatch"].to_dict()
    assert data["code"] == "cuda-mismatch"
    assert data["severity"] == "warning"
    assert "line" not in data


def test_the_pip_route_shows_the_argv_it_returns():
    findings, argv = ci.pip_route(SEED_CONDA)
    assert argv == ci.pip_argv(ci.WHEEL_INDEXES["cu124"], argv[7:])
    assert findings[0].fix.endswith(shlex.join(argv))
    assert findings[0].field == "install command"
