"""The Dockerfile generator and linter (pure): the course's Dockerfile is flagged, ours is clean."""

from __future__ import annotations

import io
import json
import re

import pytest
from dockerfile_parse import DockerfileParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.errors import InvalidField
from labkit.logic import cuda_images as ci
from labkit.logic import dockerfile as d

# Course 2.4.7, verbatim (seed-bigdata-course.md, the Dockerfile example).
SEED_DOCKERFILE = """\
# 使用 NVIDIA CUDA 12.5 基础镜像，基于 Ubuntu 22.04
FROM nvidia/cuda:12.5.0-runtime-ubuntu22.04

# 设置非交互式安装，避免安装过程中的提示
ENV DEBIAN_FRONTEND=noninteractive

# 安装 Python 3 和 pip
RUN apt-get update && apt-get install -y python3 python3-pip

# 安装 PyTorch (确保选择支持 CUDA 版本的 PyTorch)
RUN pip3 install --pre torch torchvision torchaudio --index-url https://download.pytorch.org/whl/nightly/cu124

# 设置工作目录
WORKDIR /workspace

# 当容器启动时，默认执行 bash
CMD ["/bin/bash"]
""".replace("python3-pip\n", "python3-pip \n")  # the course's line ends in a space


@pytest.fixture(autouse=True)
def _english(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")


def _parse(text: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(text.encode()))


def _docker_unquote(word: str) -> str:
    r"""What the Docker builder makes of a double-quoted LABEL value (\\ \" \$ are escapes)."""
    assert word.startswith('"'), word
    assert word.endswith('"'), word
    return re.sub(r"\\(.)", r"\1", word[1:-1])


def _codes(text: str, **kw) -> list[str]:
    return [f.code for f in d.lint_dockerfile(text, **kw)]


# -- the course's Dockerfile ----------------------------------------------------------------------
def test_seed_dockerfile_findings():
    findings = d.lint_dockerfile(SEED_DOCKERFILE)
    by_code = {f.code: f for f in findings}
    assert sorted(by_code) == sorted(
        [
            "debian-frontend-env",
            "apt-no-recommends",
            "apt-lists",
            "pip-cache",
            "pip-nightly",
            "cuda-mismatch",
            "root-user",
        ]
    )
    assert by_code["apt-no-recommends"].line == 8
    assert by_code["pip-cache"].line == 11
    assert by_code["cuda-mismatch"].line == 11
    assert "12.4.1" in by_code["cuda-mismatch"].fix
    assert by_code["debian-frontend-env"].severity == "info"
    assert by_code["root-user"].line is None
    assert {f.field for f in findings} == {"Dockerfile"}
    assert by_code["pip-cache"].to_dict() == {
        "field": "Dockerfile",
        "severity": "warning",
        "code": "pip-cache",
        "message": by_code["pip-cache"].message,
        "fix": "add --no-cache-dir",
        "line": 11,
    }
    assert "root-user" not in _codes(SEED_DOCKERFILE, require_user=False)


def test_seed_dockerfile_with_the_course_conda_line():
    text = SEED_DOCKERFILE.replace(
        "RUN pip3 install --pre torch torchvision torchaudio --index-url https://download.pytorch.org/whl/nightly/cu124",
        "RUN conda install pytorch torchvision torchaudio pytorch-cuda=12.4 -c pytorch-nightly -c nvidia",
    )
    finding = next(f for f in d.lint_dockerfile(text) if f.code == "conda-pytorch")
    assert finding.severity == "error"
    assert "download.pytorch.org/whl/cu124" in finding.fix


# -- single rules ----------------------------------------------------------------------------------
GOOD_TAIL = "USER 1000\n"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("# syntax=docker/dockerfile:1\nFROM debian:12\n", "syntax-directive"),
        ("FROM debian\n", "latest-tag"),
        ("FROM debian:latest\n", "latest-tag"),
        ("FROM debian:12\nRUN apt-get update\n", "apt-update-alone"),
        (
            "FROM debian:12\nRUN apt-get install --no-install-recommends x && rm -rf /var/lib/apt/lists/*\n",
            "apt-no-yes",
        ),
        ("FROM debian:12\nADD https://example.org/x.tgz /x\n", "add-url"),
        ("FROM debian:12\nRUN conda install -y pytorch\n", "conda-pytorch"),
        ("FROM ubuntu:24.04\nRUN python3 -m pip install --no-cache-dir six==1.16.0\n", "pep668"),
        (
            "FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04\nRUN pip install --no-cache-dir x "
            "--break-system-packages --index-url https://download.pytorch.org/whl/cu126\n",
            "cuda-mismatch",
        ),
    ],
)
def test_each_rule_fires(body, code):
    assert code in _codes(body + GOOD_TAIL)


@pytest.mark.parametrize(
    "body",
    [
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends x"
        " && rm -rf /var/lib/apt/lists/*\n",
        "FROM debian:12\nENV PIP_NO_CACHE_DIR=1 PIP_BREAK_SYSTEM_PACKAGES=1\nRUN pip install six==1.16.0\n",
        "FROM debian:12@sha256:" + "a" * 64 + "\n",
        "ARG B=debian:12\nFROM ${B}\n",
        "FROM ubuntu:22.04\nRUN pip3 install --no-cache-dir six==1.16.0\n",  # no PEP 668 marker on 22.04
        "FROM ubuntu:24.04\nRUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir six\n",
    ],
)
def test_good_practice_is_not_flagged(body):
    assert _codes(body + GOOD_TAIL) == []


def test_user_root_at_the_end_still_counts_as_root():
    assert "root-user" in _codes("FROM debian:12\nUSER lab\nUSER root\n")
    assert "root-user" not in _codes("FROM debian:12\nUSER lab:lab\n")


# -- the generator -------------------------------------------------------------------------------
def test_generated_dockerfile_is_clean_and_matched():
    text = d.build_dockerfile()
    assert d.lint_dockerfile(text) == []
    assert not text.lstrip().startswith("# syntax")
    parsed = _parse(text)
    pair = ci.matched_pair()
    assert parsed.baseimage == pair.image.tag
    assert parsed.labels[d.LABEL_TORCH] == pair.torch
    assert parsed.labels[d.LABEL_INDEX] == pair.index.name
    assert parsed.labels["org.labkit.created"] == "true"
    runs = [i["value"] for i in parsed.structure if i["instruction"] == "RUN"]
    assert sum("apt-get update" in r for r in runs) == 1
    assert json.loads(next(i for i in parsed.structure if i["instruction"] == "CMD")["value"]) == [
        "/bin/bash"
    ]


def test_build_args_swap_the_base_and_the_packages():
    text = d.build_dockerfile()
    declared = {i["value"].split("=")[0] for i in _parse(text).structure if i["instruction"] == "ARG"}
    assert set(d.BUILD_ARGS) <= declared
    swapped = DockerfileParser(
        fileobj=io.BytesIO(text.encode()), build_args={"BASE_IMAGE": "labkit/debian:bookworm-local"}
    )
    assert swapped.baseimage == "labkit/debian:bookworm-local"


def test_extra_ca_certs_and_root_option():
    text = d.build_dockerfile(d.ImageSpec(extra_ca_certs=True, user=None))
    assert f"COPY {d.CA_DIR}/ /usr/local/share/ca-certificates/labkit/" in text
    assert "update-ca-certificates" in text
    assert "\nUSER " not in text
    assert _codes(text) == ["root-user"]
    assert _codes(text, require_user=False) == []


def test_for_pair_records_the_pair():
    pair = ci.matched_pair("2.6", distro="ubuntu22.04")
    text = d.build_dockerfile(d.ImageSpec.for_pair(pair))
    labels = _parse(text).labels
    assert (labels[d.LABEL_TORCH], labels[d.LABEL_CUDA], labels[d.LABEL_INDEX]) == ("2.6.0", "12.6", "cu126")
    assert d.lint_dockerfile(text) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_image", "NVIDIA/CUDA:12"),
        ("torch_packages", "torch; rm -rf /"),
        ("torch_packages", "torch>=2"),  # '>' would be a shell redirection in the RUN line
        ("torch_packages", ""),
        ("torch_index_url", "ftp://x"),
        ("torch_index_url", 'https://x/"y'),
        ("torch_dist", "to rch"),
        ("user", "root"),
        ("user", "Bad User"),
        ("uid", 0),
        ("workdir", "relative/dir"),
        ("workdir", "/with space"),
        ("cmd", ()),
        ("apt_packages", ("python3",)),
        ("apt_packages", ("python3", "python3-pip", "bad;pkg")),
        ("labels", {"Bad Key": "x"}),
        ("labels", {"org.example.x": "two\nlines"}),
    ],
)
def test_bad_spec_fields_are_refused_by_name(field, value):
    with pytest.raises(InvalidField) as exc:
        d.build_dockerfile(d.ImageSpec(**{field: value}))
    assert exc.value.field == field


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_label_value = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=0, max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    packages=st.lists(
        st.tuples(
            _word, st.one_of(st.none(), st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}(\.[0-9])?", fullmatch=True))
        ),
        min_size=1,
        max_size=3,
    ),
    user=st.one_of(
        st.none(), st.from_regex(r"[a-z_][a-z0-9_-]{0,12}", fullmatch=True).filter(lambda u: u != "root")
    ),
    uid=st.integers(1, 60000),
    workdir=st.from_regex(r"/[a-z0-9_]{1,8}(/[a-z0-9._-]{1,8}){0,2}", fullmatch=True),
    labels=st.dictionaries(
        st.from_regex(r"org\.example\.[a-z0-9]{1,6}", fullmatch=True), _label_value, max_size=3
    ),
    cmd=st.lists(_label_value.filter(bool), min_size=1, max_size=3),
    extra_ca=st.booleans(),
)
def test_any_valid_spec_generates_a_clean_parseable_dockerfile(
    packages, user, uid, workdir, labels, cmd, extra_ca
):
    pkgs = " ".join(name + (f"=={ver}" if ver else "") for name, ver in packages)
    spec = d.ImageSpec(
        torch_packages=pkgs,
        torch_dist=packages[0][0],
        user=user,
        uid=uid,
        workdir=workdir,
        labels=labels,
        cmd=tuple(cmd),
        extra_ca_certs=extra_ca,
    )
    text = d.build_dockerfile(spec)
    assert d.lint_dockerfile(text, require_user=user is not None) == []
    parsed = _parse(text)
    structure = parsed.structure
    args = dict(
        i["value"].split("=", 1) for i in structure if i["instruction"] == "ARG" and "=" in i["value"]
    )
    assert args["TORCH_PACKAGES"].strip('"') == pkgs
    assert args["USER_UID"] == str(uid)
    for key, value in labels.items():
        line = next(x for x in text.splitlines() if x.strip().startswith(key + "="))
        assert _docker_unquote(line.strip().split("=", 1)[1].rstrip(" \\")) == value
    assert json.loads(next(i["value"] for i in structure if i["instruction"] == "CMD")) == cmd
    workdirs = [i["value"] for i in structure if i["instruction"] == "WORKDIR"]
    assert workdirs == [workdir]
    users = [i["value"] for i in structure if i["instruction"] == "USER"]
    assert users == ([user] if user else [])


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=40))
def test_label_quoting_round_trips(value):
    assert _docker_unquote(d._quote(value)) == value
